"""``hippo index --extractor llm``: LLM OpenIE first, then the usual index build.

Extraction runs before the build so that passages whose extraction failed can be left out
and reported instead of being indexed without facts:

1. passages the index at ``out`` already extracted with this extractor are taken from it;
   the rest go to the LLM (replies already in the response cache cost nothing);
2. the passages that extracted are indexed (:func:`hippo.indexer.build_index`);
3. next to the index's generations, two files are (re)written atomically:
   ``openie_results_ner_<model>.json`` (every indexed passage, in HippoRAG's OpenIE file
   format, so ``hippo index --openie`` re-imports it) and ``openie_failures.json`` (the
   passages that failed and why; removed when none did).

Running the same command again asks the LLM only for the failed passages and adds them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hippo.config import Config
from hippo.corpus import dedupe_passages, read_corpus
from hippo.errors import ExtractionError, HippoError
from hippo.extract.llm_ie import ExtractionFailure, LLMExtractor, failure_message
from hippo.protocols import Embedder, LLMClient
from hippo.types import Extraction, Passage

FAILURES_FILE = "openie_failures.json"

Progress = Callable[[str, int, int], None]


def openie_file_name(model: str) -> str:
    """HippoRAG's name for the OpenIE results of ``model`` (slashes made safe)."""
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in model)
    return f"openie_results_ner_{safe}.json"


def openie_document(passages: Sequence[Passage], extractions: Sequence[Extraction]) -> dict[str, Any]:
    """The HippoRAG 2 OpenIE file (v2: ``idx`` = ``chunk-<md5>``) of these extractions."""
    docs = [
        {
            "idx": "chunk-" + hashlib.md5(p.content.encode("utf-8")).hexdigest(),
            "passage": p.content,
            "extracted_entities": list(e.entities),
            "extracted_triples": [list(t) for t in e.triples],
        }
        for p, e in zip(passages, extractions)
    ]
    ents: list[str] = [x for e in extractions for x in e.entities]
    return {
        "docs": docs,
        "avg_ent_chars": round(sum(len(x) for x in ents) / len(ents), 4) if ents else 0.0,
        "avg_ent_words": round(sum(len(x.split()) for x in ents) / len(ents), 4) if ents else 0.0,
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file beside ``path``, fsync, rename over it."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class LLMIndexReport:
    """What :func:`index_with_llm` did: the build report, the failures, the LLM usage."""

    build: Any
    """The :class:`hippo.indexer.BuildReport`, or None when no passage extracted."""
    failures: list[ExtractionFailure]
    usage: dict[str, dict[str, Any]]
    extracted: int
    reused: int
    openie_file: Path | None = None
    failures_file: Path | None = None
    truncated_entities: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the LLM extraction."""

    @property
    def partial(self) -> bool:
        """True when some passages failed and were left out of the index."""
        return bool(self.failures)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of ``hippo index --extractor llm --json``."""
        out: dict[str, Any] = self.build.to_dict() if self.build is not None else {}
        out["openie"] = {
            "extracted": self.extracted, "reused_from_index": self.reused, "failed": len(self.failures),
            "seconds": round(self.seconds, 3),
            "truncated_entity_replies": len(self.truncated_entities),
            "failures": [f.to_dict() for f in self.failures],
            "file": str(self.openie_file) if self.openie_file else None,
            "failures_file": str(self.failures_file) if self.failures_file else None,
        }
        out["llm_usage"] = self.usage
        return out


def _read_live(out: Path) -> tuple[dict[str, Any], list[Passage], dict[str, Extraction]] | None:
    """(manifest, live passages, extraction by passage id) of the index at ``out``, or None."""
    from hippo.live.snapshot import Snapshot
    from hippo.store import read_manifest

    if not out.is_dir() or read_manifest(out) is None:
        return None
    snap = Snapshot.open(out)
    try:
        records = [r for v in snap.views for r in v.extractions()]
        alive = snap.passage_alive
        rows = [p for p in range(snap.n_passages) if alive is None or alive[p]]
        passages = [Passage(snap.passage_ids[p], snap.passage_contents[p], snap.passage_titles[p]) for p in rows]
        extractions = {
            e["passage_id"]: Extraction(
                e["passage_id"], tuple(e["entities"]), tuple((str(s), str(r), str(o)) for s, r, o in e["triples"])
            )
            for e in records
        }
        return snap.manifest, passages, extractions
    finally:
        snap.close()


def _write_side_files(out: Path, model: str, failures: Sequence[ExtractionFailure], total: int) -> tuple[Path, Path | None]:
    """The OpenIE file of the live index and the failure report (removed when empty)."""
    live = _read_live(out)
    if live is None:  # pragma: no cover - called right after a build committed
        raise ExtractionError(f"{out}: no index to describe")
    _, passages, by_id = live
    openie_path = out / openie_file_name(model)
    write_json_atomic(openie_path, openie_document(passages, [by_id[p.id] for p in passages]))
    failures_path = out / FAILURES_FILE
    if not failures:
        failures_path.unlink(missing_ok=True)
        return openie_path, None
    write_json_atomic(failures_path, {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "passages": total,
        "failed": len(failures),
        "fix": "run the same `hippo index` command again: only these passages are asked again",
        "failures": [f.to_dict() for f in failures],
    })
    return openie_path, failures_path


def index_with_llm(
    corpus: str | Path | Sequence[Passage],
    out: str | Path,
    config: Config,
    *,
    client: LLMClient | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    update: bool = False,
    rebuild: bool = False,
    runner: Any = None,
) -> LLMIndexReport:
    """Index ``corpus`` into ``out`` with LLM OpenIE; failed passages are reported, not indexed.

    Raises ExtractionError, with nothing written, when no passage could be extracted.
    ``client`` defaults to :func:`hippo.llm.make_llm_client` of ``config.llm``. ``update`` and
    ``rebuild`` are :func:`hippo.indexer.build_index`'s (a rebuild takes nothing from the index;
    replies in the response cache are still reused). ``runner`` (a
    :class:`hippo.distributed.RayRunner`) runs the LLM OpenIE and the build's embedding on a cluster.
    """
    from hippo.indexer import build_index

    root = Path(out)
    if client is None:
        from hippo.llm import make_llm_client

        client = make_llm_client(config.llm)
    extractor = LLMExtractor(client)
    passages = read_corpus(corpus) if isinstance(corpus, (str, Path)) else dedupe_passages(corpus)
    reused = 0
    live = None if rebuild else _read_live(root)
    built_with = (live[0].get("extractor") or {}).get("name") if live is not None else None
    if built_with is not None and built_with != extractor.name:
        raise HippoError(
            f"{root} was built with extractor {built_with}, not {extractor.name}; add to it with the same "
            f"extractor, or build the LLM index into another directory"
        )
    if live is not None:
        _, indexed, extractions = live
        content = {p.id: p.content for p in indexed}
        for p in passages:
            if content.get(p.id) == p.content and p.id in extractions:
                extractor.remember(p, extractions[p.id])
                reused += 1
    t0 = time.perf_counter()
    step = (lambda done, total: progress("llm openie", done, total)) if progress else None
    if runner is not None:
        run = runner.llm_run(extractor, passages, config.llm, config.runtime.checkpoint_passages, step)
    else:
        run = extractor.run(passages, step)
    seconds = time.perf_counter() - t0
    failed = {f.passage_id for f in run.failures}
    ok = [p for p in passages if p.id not in failed]
    if not ok:
        raise ExtractionError(failure_message(run.failures, len(passages)) + "; nothing was written")
    build = build_index(ok, root, config, extractor=extractor, embedder=embedder, progress=progress,
                        update=update, rebuild=rebuild, runner=runner)
    openie_path, failures_path = _write_side_files(root, client.model, run.failures, len(passages))
    return LLMIndexReport(
        build, run.failures, client.usage(), len(passages) - reused - len(run.failures), reused,
        openie_path, failures_path, run.truncated_entities, seconds,
    )
