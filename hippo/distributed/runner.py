"""The extract and embed stages as Ray Data stages: a drop-in :class:`hippo.reuse.StageRunner`.

The indexer hands the runner the parts it would have computed itself (the resume cache's
checkpoints: ``runtime.checkpoint_passages`` passages, ``runtime.checkpoint_strings``
length-sorted strings). Each part becomes one row of a Ray dataset, one block of its own,
processed by ``map_batches`` on an actor pool whose actors load spaCy or the embedder once:

* **Same calls.** An embed actor makes exactly the call the single-process build makes:
  ``encode_documents(part)`` on the same strings in the same order, so the batches inside
  are the same and the vectors are bit-identical (batch composition changes the last bits
  of MiniLM's output; the torch thread count did not, measured on this machine: each result
  records the actor's thread count).
* **Results through the object store.** A result row carries its part's output (pickled
  extractions, raw float32 vectors); the driver iterates the dataset as rows finish and the
  indexer checkpoints each one into its resume cache at once. Workers read no file of the
  driver's and write none.
* **Faults.** Actors restart (``max_restarts``) and their tasks are retried
  (``max_task_retries``); a lost part is simply computed again. A killed driver loses only
  the parts in flight: the next run takes the rest from the resume cache.

Graph assembly (knowledge base, synonymy, CSR, files) stays on the driver, in the indexer.
"""

from __future__ import annotations

import copy
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hippo.config import LLMConfig
from hippo.distributed.cluster import Cluster, import_ray, pool_size
from hippo.errors import HippoError
from hippo.extract.llm_ie import ExtractionRun, LLMExtractor
from hippo.protocols import Embedder, Extractor, FloatArray
from hippo.reuse import LocalRunner
from hippo.types import Extraction, Passage

ResultHook = Callable[[str, dict[str, Any]], None]
"""Called on the driver as ``hook(stage, record)`` for every finished part (tests, benchmarks)."""


# --------------------------------------------------------------------------- recipes


def _payloads(parts: Sequence[Sequence[Any]]) -> list[bytes]:
    return [pickle.dumps(list(p), protocol=pickle.HIGHEST_PROTOCOL) for p in parts]


def portable_extractor(extractor: Extractor) -> Any:
    """What an actor builds its extractor from: a spaCy extractor without its loaded model,
    any other extractor as it is (a precomputed one carries its OpenIE table with it)."""
    from hippo.extract.spacy_ie import SpacyExtractor

    if isinstance(extractor, SpacyExtractor):
        return ("spacy", extractor.model, extractor.batch_size)
    return ("object", extractor)


def build_extractor(recipe: Any) -> Extractor:
    """The extractor of a :func:`portable_extractor` recipe, model loaded."""
    kind = recipe[0]
    if kind == "spacy":
        from hippo.extract.spacy_ie import SpacyExtractor

        spacy_ex = SpacyExtractor(model=recipe[1], batch_size=recipe[2])
        _ = spacy_ex.nlp  # load once, at actor start
        return spacy_ex
    ex: Extractor = recipe[1]
    return ex


def portable_embedder(embedder: Embedder) -> Any:
    """What an actor builds its embedder from: a sentence-transformers model by name and
    settings (each node resolves its own installed copy), any other embedder as it is."""
    from hippo.embed.st import SentenceTransformerEmbedder

    if isinstance(embedder, SentenceTransformerEmbedder):
        return ("st", {"model": embedder._name, "batch_size": embedder.batch_size, "precision": embedder.precision,
                       "max_seq_length": embedder.max_seq_length, "device": embedder.device})
    if getattr(embedder, "_model", None) is not None:
        embedder = copy.copy(embedder)
    return ("object", embedder)


def build_embedder(recipe: Any, device: str | None) -> Embedder:
    """The embedder of a :func:`portable_embedder` recipe (on ``device`` when given), loaded."""
    if recipe[0] == "st":
        from hippo.embed.st import SentenceTransformerEmbedder

        kwargs = dict(recipe[1])
        if device:
            kwargs["device"] = device
        st = SentenceTransformerEmbedder(**kwargs)
        _ = st.dim  # load once, at actor start
        return st
    emb: Embedder = recipe[1]
    return emb


# --------------------------------------------------------------------------- actors


def _where() -> dict[str, Any]:
    import ray

    return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}


def _columns(rows: dict[str, list[Any]]) -> dict[str, Any]:
    """Numpy columns: bytes and strings as object arrays, numbers as numbers."""
    return {k: np.array(v, dtype=object) if k in ("payload", "node", "threads") else np.array(v) for k, v in rows.items()}


class ExtractWorker:
    """An extraction actor: one extractor per actor, one part per call."""

    def __init__(self, recipe: Any) -> None:
        t = time.perf_counter()
        self.extractor = build_extractor(recipe)
        self.load_s = time.perf_counter() - t

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows: dict[str, list[Any]] = {k: [] for k in ("part", "payload", "node", "pid", "seconds", "load_s")}
        for part, payload in zip(batch["part"], batch["payload"]):
            passages: list[Passage] = pickle.loads(payload)
            t = time.perf_counter()
            extractions = self.extractor.extract(passages)
            seconds = time.perf_counter() - t
            where = _where()
            rows["part"].append(int(part))
            rows["payload"].append(pickle.dumps(extractions, protocol=pickle.HIGHEST_PROTOCOL))
            rows["node"].append(where["node"])
            rows["pid"].append(where["pid"])
            rows["seconds"].append(seconds)
            rows["load_s"].append(self.load_s)
        return _columns(rows)


class EmbedWorker:
    """An embedding actor: one model per actor, one ``encode_documents`` call per part."""

    def __init__(self, recipe: Any, threads: int) -> None:
        import ray

        t = time.perf_counter()
        self.gpu = bool(ray.get_gpu_ids())
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        self.embedder = build_embedder(recipe, "cuda" if self.gpu else None)
        self.load_s = time.perf_counter() - t

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import torch

        rows: dict[str, list[Any]] = {k: [] for k in ("part", "payload", "dim", "node", "pid", "seconds", "threads", "load_s")}
        for part, payload in zip(batch["part"], batch["payload"]):
            texts: list[str] = pickle.loads(payload)
            t = time.perf_counter()
            vecs = np.ascontiguousarray(self.embedder.encode_documents(texts), dtype=np.float32)
            seconds = time.perf_counter() - t
            where = _where()
            rows["part"].append(int(part))
            rows["payload"].append(vecs.tobytes())
            rows["dim"].append(int(vecs.shape[1]) if vecs.ndim == 2 else 0)
            rows["node"].append(where["node"])
            rows["pid"].append(where["pid"])
            rows["seconds"].append(seconds)
            rows["threads"].append("cuda" if self.gpu else str(torch.get_num_threads()))
            rows["load_s"].append(self.load_s)
        return _columns(rows)


# --------------------------------------------------------------------------- runner


@dataclass
class StageRecord:
    """What one stage did across the cluster."""

    rows: int = 0
    parts: int = 0
    workers: int = 0
    gpus_per_worker: float = 0.0
    seconds: float = 0.0
    compute_s: float = 0.0
    """Sum over parts of the time inside the extractor / embedder call."""
    load_s: float = 0.0
    parts_by_node: dict[str, int] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)
    threads: set[Any] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape for ``--json``."""
        out: dict[str, Any] = {
            "rows": self.rows, "parts": self.parts, "workers": self.workers, "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds, 2) if self.seconds else None,
            "compute_s": round(self.compute_s, 3), "model_load_s": round(self.load_s, 3),
            "parts_by_node": dict(sorted(self.parts_by_node.items())), "worker_processes": len(self.pids),
        }
        if self.gpus_per_worker:
            out["gpus_per_worker"] = self.gpus_per_worker
        if self.threads:
            out["torch_threads"] = sorted(self.threads, key=str)
        return out


class RayRunner:
    """Extract and embed on a Ray cluster; the indexer's drop-in for :class:`hippo.reuse.LocalRunner`.

    ``workers`` caps each stage's actor pool (default: what the cluster fits, one CPU per
    actor, or one GPU per embed actor when the cluster has GPUs and ``gpus`` is not 0).
    ``embed_threads`` is each embed actor's torch thread count (default: its CPUs).
    """

    def __init__(
        self, cluster: Cluster, *, workers: int | None = None, gpus: float | None = None,
        embed_threads: int = 0, on_result: ResultHook | None = None,
    ) -> None:
        self.cluster = cluster
        self.workers = workers
        self.gpus = gpus
        self.embed_threads = embed_threads
        self.on_result = on_result
        self.stages: dict[str, StageRecord] = {}
        self.extra: dict[str, Any] = {}

    def summary(self) -> dict[str, Any]:
        """The cluster and, per stage, rows, rows/s, workers and parts per node."""
        return {"cluster": self.cluster.to_dict(), **{k: v.to_dict() for k, v in self.stages.items()}, **self.extra}

    # -- the StageRunner protocol ---------------------------------------------------
    def extract(self, extractor: Extractor, parts: Sequence[Sequence[Passage]]) -> Iterator[tuple[Sequence[Passage], list[Extraction]]]:
        """Extract the parts on the cluster; yields ``(part, extractions)`` as each finishes."""
        if isinstance(extractor, LLMExtractor):
            # LLM OpenIE ran on the cluster before the build (hippo.distributed.llm); the
            # extractor now only returns what it remembered: nothing left to distribute.
            yield from LocalRunner().extract(extractor, parts)
            return
        rec = self.stages["extract"] = StageRecord(rows=sum(len(p) for p in parts), parts=len(parts))
        rec.workers = pool_size(self.cluster, len(parts), 1.0, 0.0, self.workers)
        for i, row in self._run("extract", ExtractWorker, (portable_extractor(extractor),), _payloads(parts), parts, rec, 1.0, 0.0):
            extractions: list[Extraction] = pickle.loads(row["payload"])
            part = parts[i]
            if [e.passage_id for e in extractions] != [p.id for p in part]:
                raise HippoError(f"internal error: the extractions of part {i} do not match its passages")  # pragma: no cover
            yield part, extractions

    def embed(self, embedder: Embedder, parts: Sequence[Sequence[str]]) -> Iterator[tuple[Sequence[str], FloatArray]]:
        """Embed the parts on the cluster (one ``encode_documents`` call each, as locally)."""
        use_gpus = self.cluster.gpus > 0 if self.gpus is None else self.gpus > 0
        gpus = (self.gpus or 1.0) if use_gpus else 0.0
        cpus = 1.0 if not self.embed_threads else float(self.embed_threads)
        rec = self.stages["embed"] = StageRecord(rows=sum(len(p) for p in parts), parts=len(parts), gpus_per_worker=gpus)
        rec.workers = pool_size(self.cluster, len(parts), cpus, gpus, self.workers)
        threads = self.embed_threads or int(cpus)
        for i, row in self._run("embed", EmbedWorker, (portable_embedder(embedder), threads), _payloads(parts), parts, rec, cpus, gpus):
            part = parts[i]
            vecs = np.frombuffer(row["payload"], dtype=np.float32).reshape(len(part), int(row["dim"]))
            rec.threads.add(row["threads"])
            yield part, vecs

    def llm_run(self, extractor: LLMExtractor, passages: Sequence[Passage], config: LLMConfig, part_size: int,
                progress: Callable[[int, int], None] | None = None) -> ExtractionRun:
        """LLM OpenIE of ``passages`` on the cluster (:mod:`hippo.distributed.llm`): what
        ``extractor.run`` returns, with the driver's response cache updated as parts finish."""
        from hippo.distributed.llm import LLMWorker, cached_replies, llm_parts, merge_part

        out, todo = extractor.split_known(passages)
        parts = llm_parts(todo, part_size)
        rec = self.stages["llm_openie"] = StageRecord(rows=len(todo), parts=len(parts))
        rec.workers = pool_size(self.cluster, len(parts), 1.0, 0.0, self.workers)
        payloads = [pickle.dumps((part, cached_replies(extractor, part)), protocol=pickle.HIGHEST_PROTOCOL) for part in parts]
        key = os.environ.get(config.api_key_env)
        env = {"env_vars": {config.api_key_env: key}} if key else None
        done = 0
        for i, row in self._run("llm_openie", LLMWorker, (config, extractor.max_tokens), payloads, parts, rec, 1.0, 0.0, env):
            merge_part(extractor, parts[i], pickle.loads(row["payload"]), out)
            done += len(parts[i])
            if progress is not None:
                progress(done, len(todo))
        order = {p.id: i for i, p in enumerate(passages)}
        out.failures.sort(key=lambda f: order[f.passage_id])
        return out

    # -- the Ray Data pipeline ------------------------------------------------------
    def _run(
        self, stage: str, worker: type, args: tuple[Any, ...], payloads: list[bytes], parts: Sequence[Sequence[Any]],
        rec: StageRecord, cpus: float, gpus: float, runtime_env: dict[str, Any] | None = None,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        ray = import_ray()
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the driver draws one bar across the cluster's work
        ctx.print_on_execution_start = False
        t = time.perf_counter()
        if not parts:
            return
        items = [{"part": i, "payload": payload} for i, payload in enumerate(payloads)]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        # Ray Data's actor pools restart a dead actor (max_restarts=-1) and retry its
        # tasks (max_task_retries=-1) unless told otherwise: the defaults are what we want.
        ds = ds.map_batches(
            worker, fn_constructor_args=args, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=rec.workers), num_cpus=cpus, num_gpus=gpus or None,
            runtime_env=runtime_env,
        )
        seen: set[int] = set()
        for row in ds.iter_rows():
            i = int(row["part"])
            if i in seen:  # pragma: no cover - Ray Data hands each output block over once
                continue
            seen.add(i)
            rec.compute_s += float(row["seconds"])
            rec.load_s = max(rec.load_s, float(row["load_s"]))
            node = str(row["node"])
            rec.parts_by_node[node] = rec.parts_by_node.get(node, 0) + 1
            rec.pids.add(int(row["pid"]))
            if self.on_result is not None:
                self.on_result(stage, {"part": i, "rows": len(parts[i]), "node": node, "pid": int(row["pid"])})
            yield i, row
            rec.seconds = time.perf_counter() - t
        if len(seen) != len(parts):
            raise HippoError(f"the Ray {stage} stage returned {len(seen)} of {len(parts)} parts; run the command again "
                             f"to finish (finished parts are in the resume cache)")
        rec.seconds = time.perf_counter() - t
