"""CSV files for ``neo4j-admin database import full``: the offline bulk load for large graphs.

One file per label and per relationship type, with typed headers (``id:ID(Entity)``,
``weight:double``, ``predicates:string[]``) and the same properties and row digests as
the Bolt sync, so ``hippo export neo4j INDEX`` after an import finds nothing to write and
only adds the constraints and indexes. ``import.json`` lists the files and arguments;
``hippo neo4j import DIR`` runs the import into the local server's home.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hippo.errors import HippoError
from hippo.export.graph_rows import ExportGraph, build_export_graph, digest
from hippo.export.neo4j_bolt import META_KEY
from hippo.live.flat import FlatIndex

ARRAY_DELIMITER = ";"

# Neo4j import types of every property the rows carry.
_TYPES = {
    "idx": "int", "passages": "int", "weight": "double", "similarity": "double",
    "span_start": "int", "span_end": "int", "chunks": "int", "chunk": "int",
    "predicates": "string[]", "facts": "string[]", "embedding": "float[]", "schema_version": "int",
}


def _column(name: str) -> str:
    kind = _TYPES.get(name)
    return f"{name}:{kind}" if kind else name


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        parts = [str(v) for v in value]
        if any(ARRAY_DELIMITER in p for p in parts):
            raise HippoError(f"array value {value!r} contains the CSV array delimiter {ARRAY_DELIMITER!r}; use the Bolt export")
        return ARRAY_DELIMITER.join(parts)
    if isinstance(value, float):
        return repr(value)
    return value


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def write_csv(graph: ExportGraph, out: Path) -> dict[str, Any]:
    """Write ``graph`` as import files into the (new, empty) folder ``out``; returns the plan."""
    plan: dict[str, Any] = {
        "nodes": [], "relationships": [],
        "args": ["--multiline-fields=true", f"--array-delimiter={ARRAY_DELIMITER}", "--id-type=string"],
        "counts": graph.counts(),
    }
    for nodes in graph.nodes:
        keys = list(nodes.rows[0]["props"]) if nodes.rows else ["id"]
        extra = ["embedding"] if nodes.rows and "embedding" in nodes.rows[0] else []
        header = [f"id:ID({nodes.label})", *(_column(k) for k in keys if k != "id"), *(_column(k) for k in extra), "h"]
        rows = [
            [r["id"], *(_cell(r["props"][k]) for k in keys if k != "id"), *(_cell(r[k]) for k in extra), r["h"]]
            for r in nodes.rows
        ]
        name = f"{nodes.label.lower()}.csv"
        _write(out / name, header, rows)
        plan["nodes"].append([nodes.label, name])
    meta = {**graph.meta, "key": META_KEY}
    meta_header = [f"key:ID(HippoIndex)", *(_column(k) for k in meta if k != "key"), "h", "exported_at:datetime"]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _write(out / "hippoindex.csv", meta_header, [[META_KEY, *(meta[k] for k in meta if k != "key"), digest(meta), now]])
    plan["nodes"].append(["HippoIndex", "hippoindex.csv"])
    for rel in graph.rels:
        keys = list(rel.rows[0]["props"]) if rel.rows else []
        header = [f":START_ID({rel.start})", f":END_ID({rel.end})", *(_column(k) for k in keys), "h"]
        rows = [[r["s"], r["t"], *(_cell(r["props"][k]) for k in keys), r["h"]] for r in rel.rows]
        name = f"{rel.type.lower()}.csv"
        _write(out / name, header, rows)
        plan["relationships"].append([rel.type, name])
    files = [f"--nodes={label}={name}" for label, name in plan["nodes"]]
    files += [f"--relationships={t}={name}" for t, name in plan["relationships"]]
    plan["command"] = " ".join(["neo4j-admin database import full neo4j --overwrite-destination", *plan["args"], *files])
    (out / "import.json").write_text(json.dumps(plan, indent=1) + "\n")
    return plan


def export_neo4j_csv(index: str | Path | FlatIndex, out: str | Path, vectors: bool = False) -> dict[str, Any]:
    """Write the import files of ``index`` into the folder ``out``, atomically: a failure
    leaves the previous folder (or none). ``out`` may be a previous CSV export, never
    another non-empty folder. Returns the plan of ``import.json`` plus ``seconds``."""
    files = index if isinstance(index, FlatIndex) else FlatIndex.open(index)
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "import.json").exists())):
        raise HippoError(f"{out} exists and is not a hippo CSV export; choose an empty or new folder for --csv")
    t0 = time.perf_counter()
    graph = build_export_graph(files, vectors=vectors)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        plan = write_csv(graph, tmp)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**plan, "path": str(out), "seconds": round(time.perf_counter() - t0, 3)}
