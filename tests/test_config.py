import pytest

from hippo.config import Config, from_dict, load_config
from hippo.errors import ConfigError


def test_defaults_are_hipporag2():
    c = Config()
    assert c.retrieval.damping == 0.5
    assert c.retrieval.passage_node_weight == 0.05
    assert c.retrieval.linking_top_k == 5
    assert c.graph.synonymy_threshold == 0.8


def test_precedence_file_env_set(tmp_path):
    f = tmp_path / "hippo.toml"
    f.write_text("[retrieval]\ndamping = 0.6\nlinking_top_k = 7\n")
    env = {"HIPPO_RETRIEVAL__DAMPING": "0.7", "HIPPO_EMBED__BATCH_SIZE": "8"}
    c = load_config(f, ["retrieval.linking_top_k=9"], env=env)
    assert c.retrieval.damping == 0.7  # env beats file
    assert c.retrieval.linking_top_k == 9  # --set beats file
    assert c.embed.batch_size == 8


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match="unknown config key 'retrieval.dampin'.*retrieval.damping"):
        load_config(overrides=["retrieval.dampin=1"], env={})


def test_bad_values_are_rejected():
    with pytest.raises(ConfigError, match="expected float"):
        load_config(overrides=["retrieval.damping=abc"], env={})
    with pytest.raises(ConfigError, match="retrieval.damping"):
        load_config(overrides=["retrieval.damping=1.5"], env={})
    with pytest.raises(ConfigError, match="valid: reference, single"):
        load_config(overrides=["graph.edge_weights=triple"], env={})
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(overrides=["damping"], env={})


def test_bad_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[retrieval\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(f, env={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.toml", env={})


def test_round_trip_through_dict():
    c = load_config(overrides=["graph.edge_weights=single"], env={})
    assert from_dict(c.to_dict()) == c


def test_config_is_frozen():
    with pytest.raises(Exception):
        Config().retrieval.damping = 0.1  # type: ignore[misc]


def test_integers_are_not_silently_truncated():
    for bad in ("2.9", "true", '"5"'):
        with pytest.raises(ConfigError, match="expected int"):
            load_config(overrides=[f"retrieval.linking_top_k={bad}"], env={})
    with pytest.raises(ConfigError, match="retrieval.ppr_tol"):
        load_config(overrides=["retrieval.ppr_tol=0"], env={})
    with pytest.raises(ConfigError, match="retrieval.top_k"):
        load_config(overrides=["retrieval.top_k=0"], env={})


def test_query_overrides_include_values_equal_to_defaults(tmp_path):
    from hippo.config import query_overrides

    f = tmp_path / "c.toml"
    f.write_text("[embed]\nbatch_size = 8\n[retrieval]\nlinking_top_k = 7\n")
    got = query_overrides(f, ["retrieval.damping=0.5", "graph.synonymy_threshold=0.7"], env={"HIPPO_RETRIEVAL__TOP_K": "3"})
    # damping=0.5 equals the default but is still an override; embed.* from a shared file is ignored;
    # a --set of an index-time key is passed on so that opening the index rejects it.
    assert got == {"retrieval.linking_top_k": 7, "retrieval.top_k": 3, "retrieval.damping": 0.5,
                   "graph.synonymy_threshold": "0.7"}


def test_override_back_to_default_reaches_the_engine(tmp_path):
    from hippo import open_index
    from hippo.embed import HashingEmbedder
    from hippo.testing import make_engine

    built = make_engine(tmp_path / "idx", **{"retrieval.damping": 0.6})
    assert built.config.retrieval.damping == 0.6
    reopened = open_index(tmp_path / "idx", {"retrieval.damping": 0.5}, embedder=HashingEmbedder(64))
    assert reopened.config.retrieval.damping == 0.5
