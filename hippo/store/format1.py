"""Read a format-1 index (one ``gen-N`` folder per write, named by ``CURRENT``) for ``hippo upgrade``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from hippo.errors import IndexFormatError
from hippo.store.segments import POINTER
from hippo.store.strings import StringTable


def read_format1(root: str | Path) -> dict[str, Any]:
    """Everything a format-1 index holds, by name: its manifest, strings (lists or tables),
    arrays (memory maps), raw extractions (or None) and write history."""
    base = Path(root)
    name = (base / POINTER).read_text(encoding="utf-8").strip()
    gen = base / name
    if not name.startswith("gen-") or not (gen / "manifest.json").is_file():
        raise IndexFormatError(f"{base}: {POINTER} names {name!r}, which is not a format-1 generation; rebuild the index")
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))

    def array(fname: str) -> Any:
        return np.load(gen / fname, mmap_mode="r", allow_pickle=False)

    def table(stem: str) -> Any:
        off = array(f"{stem}.off.npy")
        path = gen / f"{stem}.bin"
        data = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
        return StringTable(data, off)

    def jsonl(fname: str) -> list[Any]:
        with open(gen / fname, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    out: dict[str, Any] = {"manifest": manifest, "generation": gen}
    if (gen / "passage_ids.off.npy").exists():
        for stem in ("passage_ids", "passage_titles", "passage_contents", "entity_names", "fact_relations"):
            out[stem] = table(stem)
    else:
        passages = jsonl("passages.jsonl")
        out["passage_ids"] = [p["id"] for p in passages]
        out["passage_titles"] = [p["title"] for p in passages]
        out["passage_contents"] = [p["content"] for p in passages]
        out["entity_names"] = json.loads((gen / "entities.json").read_text(encoding="utf-8"))["names"]
        out["fact_relations"] = [f["r"] for f in jsonl("facts.jsonl")]
    for fname in ("fact_subject", "fact_object", "passage_fact_indptr", "passage_fact_indices",
                  "passage_vectors", "entity_vectors", "fact_vectors"):
        out[fname] = array(f"{fname}.npy")
    if (gen / "synonym_candidates.npy").exists():
        pairs = np.asarray(array("synonym_candidates.npy"), dtype=np.int64).reshape(-1, 2)
        out["synonyms"] = (pairs[:, 0].copy(), pairs[:, 1].copy(), np.asarray(array("synonym_candidate_cos.npy"), dtype=np.float32))
    else:
        out["synonyms"] = None
    out["extractions"] = jsonl("extractions.jsonl") if (gen / "extractions.jsonl").exists() else None
    try:
        out["history"] = json.loads((gen / "stats.json").read_text(encoding="utf-8")).get("history", [])
    except (OSError, ValueError):
        out["history"] = []
    return out


def remove_format1(root: str | Path) -> list[str]:
    """Delete the ``gen-N`` folders of a format-1 index (after its upgrade committed)."""
    gone = []
    for p in sorted(Path(root).glob("gen-*")):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p.name)
    return gone
