"""A reader that follows a writer's commits (as ``hippo serve`` readers do) keeps what it
copies bounded: the float32 copies of the commits it left are freed with them."""

from __future__ import annotations

import gc

from hippo import load_config, open_index
from hippo.embed import HashingEmbedder

EMB = HashingEmbedder(64)


def test_following_commits_does_not_keep_the_vectors_of_old_commits(tmp_path):
    config = load_config().replace({"embed.model": "hashing:64", "runtime.auto_compact": False})
    with open_index(tmp_path / "mem", writable=True, create=True, embedder=EMB, config=config) as mem:
        mem.add([{"text": f"Person{i} Vale lives in City{i}."} for i in range(12)])
        mem.compact()  # a base with rows, then later segments one per write
        reader = open_index(tmp_path / "mem", embedder=EMB)
        sizes = []
        for i in range(12):
            mem.add([{"id": f"h{i}", "text": f"Human{i} Rhee works in Town{i}."}])
            q = f"Where does Human{i} Rhee work?"
            assert reader.retrieve(q, k=5).passage_ids == mem.retrieve(q, k=5).passage_ids  # it follows the writer
            gc.collect()
            sizes.append(len(reader._cache.scorer))
    assert max(sizes) <= 4, sizes  # base and later passage and fact vectors: not one more per commit
