"""``hippo upgrade``: turn a format-1 index into a format-2 (segmented) one, in place."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hippo.cli.common import print_json
from hippo.config import from_dict
from hippo.errors import HippoError
from hippo.live.base import BaseInput
from hippo.live.build import write_base
from hippo.store import is_format1, writer_lock
from hippo.store.format1 import read_format1, remove_format1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "upgrade", help="upgrade a format-1 index to the segmented format, in place",
        description="Rewrite a format-1 index (written before segments) as one base segment of the current "
        "format, from its stored extractions, vectors and synonymy candidates: nothing is extracted or "
        "embedded. The old generation folders are deleted once the new index is committed.",
    )
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("--json", action="store_true", help="print counts and timing as JSON")
    p.set_defaults(func=run)


def upgrade(root: Path) -> dict[str, object]:
    """Upgrade the format-1 index at ``root`` in place; returns counts and seconds."""
    if not is_format1(root):
        raise HippoError(f"{root} is not a format-1 index (nothing to upgrade)")
    t0 = time.perf_counter()
    with writer_lock(root):
        old = read_format1(root)
        m = old["manifest"]
        config = from_dict(m["config"], source=f"{old['generation']}/manifest.json")
        base = BaseInput(
            passage_ids=old["passage_ids"], passage_titles=old["passage_titles"], passage_contents=old["passage_contents"],
            entity_names=old["entity_names"], fact_relations=old["fact_relations"],
            fact_subject=old["fact_subject"], fact_object=old["fact_object"],
            passage_fact_indptr=old["passage_fact_indptr"], passage_fact_indices=old["passage_fact_indices"],
            passage_vectors=old["passage_vectors"], entity_vectors=old["entity_vectors"], fact_vectors=old["fact_vectors"],
            extractions=old["extractions"], synonyms=old["synonyms"],
            triples_dropped=int(m.get("counts", {}).get("triples_dropped", 0)),
        )
        manifest = write_base(root, base, config, {"embedder": m["embedder"], "extractor": m["extractor"]}, "upgrade",
                              f"format 1 ({old['generation'].name})")
        removed = remove_format1(root)
    return {"counts": manifest["counts"], "removed": removed, "seconds": round(time.perf_counter() - t0, 3)}


def run(args: argparse.Namespace) -> int:
    report = upgrade(Path(args.index))
    if args.json:
        print_json(report)
    else:
        c = report["counts"]
        assert isinstance(c, dict)
        print(f"upgraded {args.index}: {c['passages']} passages, {c['entities']} entities, {c['facts']} facts "
              f"in one segment ({report['seconds']}s)")
    return 0
