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


def test_reference_table_lists_every_key_once():
    from hippo.config import keys, query_time, reference_markdown, valid_keys

    table = reference_markdown()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    listed = [row.split("`")[1] for row in rows]
    assert listed == valid_keys()
    for spec, row in zip(keys(), rows):
        assert ("may change" in row) == query_time(spec.key)
    assert "HIPPO_<SECTION>__<KEY>" in table


def test_query_time_keys_are_todays_sections():
    from hippo.config import QUERY_TIME, query_time, valid_keys

    assert QUERY_TIME == ("retrieval.", "runtime.", "llm.")  # engine._override: key.startswith(QUERY_TIME)
    assert {k for k in valid_keys() if query_time(k)} == {k for k in valid_keys() if k.startswith(QUERY_TIME)}
    # an unknown key of a query-time section is refused as unknown, not as fixed at indexing
    with pytest.raises(ConfigError, match="unknown config key 'retrieval.dampin'"):
        Config().replace({"retrieval.dampin": 0.6})


def _bad_values(spec):
    """(raw value, words the error must contain) for each way this key's value can be bad."""
    wrong_type = {int: "2.5", float: "abc", bool: "maybe", str: 7}[spec.type]
    out = [(wrong_type, f"expected {spec.type.__name__}")]
    if spec.choices:
        out.append(("nonsense", ", ".join(spec.choices)))
    if spec.nonblank:
        out.append(("  ", "non-empty"))
    for bound, step in ((spec.ge, -1), (spec.gt, 0), (spec.le, 1), (spec.lt, 0)):
        if bound is not None:
            value = bound + step if spec.type is int or step else bound
            out.append((value if spec.type is float else int(value), "valid:"))
    return out


def test_every_key_refuses_each_kind_of_bad_value():
    from hippo.config import keys

    tried = 0
    for spec in keys():
        for raw, words in _bad_values(spec):
            with pytest.raises(ConfigError) as err:
                Config().replace({spec.key: raw}).validate()
            assert spec.key in str(err.value) and repr(raw) in str(err.value) and words in str(err.value), str(err.value)
            tried += 1
        assert Config().replace({spec.key: spec.default}).validate() == Config()
    assert tried > len(keys()) + 40  # a wrong type for every key, a range or choice for 40-odd


def test_env_and_set_parse_every_type():
    c = load_config(overrides=["retrieval.query_ner=off", "llm.timeout=5", "embed.model=hashing:8"],
                    env={"HIPPO_RETRIEVAL__TOP_K": "7", "HIPPO_GRAPH__SYNONYMY_THRESHOLD": "0.9"})
    assert (c.retrieval.query_ner, c.llm.timeout, c.embed.model) == (False, 5.0, "hashing:8")
    assert (c.retrieval.top_k, c.graph.synonymy_threshold) == (7, 0.9)
