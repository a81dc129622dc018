"""The facade: open an index, retrieve from it, and answer questions with an LLM reader."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hippo.config import QUERY_TIME, Config, from_dict, load_config
from hippo.embed import make_embedder
from hippo.embed.st import check_embedder
from hippo.errors import ConfigError, HippoError, IndexFormatError
from hippo.graph.ppr import PPRSolver
from hippo.hgmem import REASONERS, GraphView, HGMemResult, HypergraphMemory, LLMReasoner, OfflineReasoner, Reasoner
from hippo.hgmem import run as run_memory
from hippo.ids import entity_id, normalize
from hippo.llm.base import ChatReply, ChatRequest, ParseError
from hippo.llm.parse import parse_facts
from hippo.llm.prompts import answer_of, filter_messages, qa_messages
from hippo.protocols import Embedder, Extractor, FloatArray, LLMClient
from hippo.retrieval.hipporag import GraphRanking, HippoRAG2Ranker, ppr_plan
from hippo.retrieval.query_entities import link_mentions, match_names, name_index
from hippo.retrieval.recognition import kept_facts, map_to_candidates
from hippo.live.snapshot import Snapshot
from hippo.retrieval.vectors import IVFSearch, SegmentedSearch, floor_rows
from hippo.types import Answer, Fact, Hit, LinkedFact, Passage, QueryResult, Seed

RETRIEVERS = ("hippo", "hipporag2", "dense", "hgmem")
"""``hippo``: HippoRAG 2 plus query-entity seeds and dense fusion (the default);
``hipporag2``: the reference algorithm (both additions off); ``dense``: cosine only;
``hgmem``: multi-step ``hippo`` with a hypergraph working memory (offline or LLM reasoner)."""
DEFAULT_RETRIEVER = "hippo"
FILTER_STAGE = "filter"
QA_STAGE = "qa"
PUSH_FILES = ("adj_indptr.npy", "adj_indices.npy", "adj_colnorm.npy", "node_degree.npy")
"""The arrays forward push reads at random (:meth:`Engine.warm` reads them in order first)."""
WARM_QUERY = "Where was the founder of the Halvorsen Mill Company born?"
"""The query :meth:`Engine.warm` ranks. It names an organisation that is unlikely to be an
entity of the index, so the mention is embedded and matched to its nearest entity too."""


@dataclass(frozen=True)
class QueryBatch:
    """Queries made ready for ranking: vectors (B, d) and the entities each names."""

    queries: tuple[str, ...]
    fact_vectors: FloatArray
    passage_vectors: FloatArray
    entities: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, which: slice) -> QueryBatch:
        """A sub-batch, e.g. ``batch[i : i + 1]`` for one query."""
        if not isinstance(which, slice):
            raise TypeError("index a QueryBatch with a slice: batch[i : i + 1]")
        return QueryBatch(
            self.queries[which], self.fact_vectors[which], self.passage_vectors[which], self.entities[which]
        )


class Engine:
    """An opened index: ``retrieve`` and ``retrieve_many`` over its passages.

    Build one with :func:`open_index`. Arrays are memory-mapped; the graph's CSR
    adjacency is built once here, never per query.
    """

    def __init__(
        self, snapshot: Snapshot, config: Config, embedder: Embedder, llm: LLMClient | None = None, writer: Any = None,
    ) -> None:
        self.config = config
        self.embedder = embedder
        self._llm = llm
        self._writer = writer
        """The :class:`hippo.live.memory.MemoryWriter` of a writable engine (None: read-only)."""
        self._recognizer: Any = None
        self._scorer_cache: dict[int, tuple[Any, Any]] = {}
        self._ivf: dict[str, IVFSearch] = {}
        self._checked = time.monotonic()
        self._install(snapshot)

    def _install(self, snap: Snapshot) -> None:
        """Make ``snap`` the commit this engine answers from. What ranking needs (the solver,
        the searches, the ranker) is made on first use, keeping what depends only on the base."""
        old = getattr(self, "snapshot", None)
        if old is not None and old.base.name != snap.base.name:
            self._scorer_cache, self._ivf = {}, {}
        self.snapshot = snap
        self._ranker: HippoRAG2Ranker | None = None
        self._names: Mapping[str, int] | None = None
        self._entity_vectors: Any = None
        self._hgmem_view: GraphView | None = None

    @property
    def passage_ids(self) -> Sequence[str]:
        """Id of every passage row (tombstoned ones included: see ``snapshot.passage_alive``)."""
        return self.snapshot.passage_ids

    @property
    def passage_titles(self) -> Sequence[str]:
        """Title of every passage row."""
        return self.snapshot.passage_titles

    @property
    def passage_contents(self) -> Sequence[str]:
        """Content of every passage row."""
        return self.snapshot.passage_contents

    @property
    def entity_names(self) -> Sequence[str]:
        """Normalised name of every entity row."""
        return self.snapshot.entity_names

    @property
    def entity_ids(self) -> Sequence[str]:
        """Id of every entity row."""
        return self.snapshot.entity_ids

    @property
    def facts(self) -> Sequence[Fact]:
        """Every fact row."""
        return self.snapshot.facts

    @property
    def solver(self) -> PPRSolver:
        """PageRank over the commit's graph."""
        return self.ranker.solver

    @property
    def ranker(self) -> HippoRAG2Ranker:
        """The ranker over the commit this engine answers from (made on first use)."""
        if self._ranker is None:
            self._ranker = self._make_ranker(self.snapshot)
        return self._ranker

    @property
    def _search(self) -> dict[str, Any]:
        self.ranker  # noqa: B018 - made with the ranker
        return self._searches

    def _make_ranker(self, snap: Snapshot) -> HippoRAG2Ranker:
        rcfg = self.config.retrieval
        search: dict[str, Any] = {}
        for which, alive in (("passage", snap.passage_alive), ("fact", snap.fact_alive), ("entity", snap.entity_alive)):
            path = snap.ann_path(f"{which}_vectors")
            if path is None:
                continue
            if which not in self._ivf:
                base_vecs = snap.base.vectors(which)
                b = snap.base.files
                floor = b.array(f"{which}_vectors.floor.npy") if b.has(f"{which}_vectors.floor.npy") else floor_rows(base_vecs)
                self._ivf[which] = IVFSearch(path, base_vecs, floor, rcfg.ann_nprobe, rcfg.ann_candidates)
            later = snap.vectors(which)[1]
            search[which] = self._ivf[which] if later is None and alive is None else SegmentedSearch(self._ivf[which], later, alive)
        self._searches = search
        p_base, p_later = snap.vectors("passage")
        f_base, f_later = snap.vectors("fact")
        return HippoRAG2Ranker(
            [x for x in (p_base, p_later) if x is not None], [x for x in (f_base, f_later) if x is not None],
            snap.fact_subject, snap.fact_object, snap.entity_passage_count,
            PPRSolver(snap.graph), search.get("passage"), search.get("fact"),
            passage_alive=snap.passage_alive, fact_alive=snap.fact_alive, scorer_cache=self._scorer_cache,
        )

    @property
    def llm(self) -> LLMClient:
        """The LLM client of the recognition filter and the reader (``llm.*`` settings;
        made on first use, so an engine that never asks the LLM needs no ``openai``)."""
        if self._llm is None:
            from hippo.llm import make_llm_client

            self._llm = make_llm_client(self.config.llm)
        return self._llm

    @property
    def path(self) -> Path:
        """The index directory."""
        return self.snapshot.root

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest of the commit this engine answers from (a writable engine's last commit,
        merges made in the background included)."""
        if self._writer is not None:
            self._follow()
        return self.snapshot.manifest

    @property
    def writable(self) -> bool:
        """Whether this engine holds the index's writer lock (``open_index(..., writable=True)``)."""
        return self._writer is not None

    def with_overrides(self, overrides: dict[str, Any]) -> Engine:
        """The same index with other query-time settings (``{"retrieval.damping": 0.6}``);
        shares every array and model with this engine (and never writes)."""
        self.ranker  # noqa: B018 - made now, so that the twin shares it
        twin = copy.copy(self)
        twin.config = _override(self.config, overrides)
        twin._writer = None
        if twin.config.llm != self.config.llm:
            twin._llm = None  # another endpoint or model: made anew on first use
        return twin

    def refresh(self) -> bool:
        """Follow the index to its newest commit, if a write committed one since this engine
        last looked; True when it moved. Only the new segments are opened (plus a pass over
        the small later segments): the base stays mapped. A reader calls this on its own
        before every query (at most every ``runtime.refresh_seconds``)."""
        newer = self.snapshot.refresh()
        self._checked = time.monotonic()
        if newer is None:
            return False
        check_embedder(newer.manifest["embedder"]["id"], int(newer.manifest["embedder"]["dim"]), self.embedder) \
            if newer.manifest.get("embedder") else None
        self._install(newer)
        return True

    def reload(self) -> bool:
        """:meth:`refresh` (the name of earlier versions)."""
        return self.refresh()

    def _follow(self) -> None:
        """Pick up new commits before answering: a writer's own (and its merges'), or, for a
        reader, others' (at most every ``runtime.refresh_seconds``)."""
        if self._writer is not None:
            if self._writer.snapshot is not self.snapshot:
                self._install(self._writer.snapshot)
            return
        if time.monotonic() - self._checked >= self.config.runtime.refresh_seconds:
            self.refresh()

    def info(self) -> dict[str, Any]:
        """Counts, embedder, extractor, config, versions and segments of the index."""
        return describe(self.snapshot)

    def warm(self, retriever: str = DEFAULT_RETRIEVER) -> dict[str, float]:
        """Pay now what the first query would otherwise pay, and return the seconds it took
        (``prefetch``: when PageRank is a forward push, the graph arrays it walks at random
        are read once in order, which a cold page cache serves far faster than scattered
        faults; ``prepare``: spaCy's NER model, the query embedder, the nearest-entity search
        of a mention; ``rank``: the compiled push kernel or the conjugate-gradient matrices,
        in-RAM vector copies, first pages of the memory maps; ``memory``: the hypergraph view,
        for ``hgmem``, whose steps rank like ``hippo``).

        Prepares and ranks one fixed query (:data:`WARM_QUERY`) without the LLM filter, so it
        makes no LLM call and changes no result. A server calls it once after
        :func:`open_index`; twins made by :meth:`with_overrides` before it do not share what it
        loads, and :meth:`reload` keeps only the NER model.
        """
        _check_retriever(retriever)
        out: dict[str, float] = {}
        t0 = time.perf_counter()
        if retriever != "dense" and ppr_plan(self.config.retrieval, self.solver.n)[0] == "push":
            self.snapshot.base.files.prefetch(PUSH_FILES)
            out["prefetch"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        batch = self.prepare([WARM_QUERY], retriever)
        t2 = time.perf_counter()
        self.rank_prepared(batch, 10, "hippo" if retriever == "hgmem" else retriever)
        out.update(prepare=t2 - t1, rank=time.perf_counter() - t2)
        if retriever == "hgmem":
            t3 = time.perf_counter()
            self._memory_view()
            out["memory"] = time.perf_counter() - t3
        return out

    def encode_queries(self, queries: Sequence[str]) -> tuple[FloatArray, FloatArray]:
        """Query vectors for fact linking and for passages, each (B, d); encoded once when
        the two instructions are equal."""
        cfg = self.config.embed
        qf = self.embedder.encode_queries(queries, cfg.fact_instruction)
        qp = qf if cfg.passage_instruction == cfg.fact_instruction else self.embedder.encode_queries(queries, cfg.passage_instruction)
        return qf, qp

    def prepare(self, queries: Sequence[str], retriever: str = DEFAULT_RETRIEVER) -> QueryBatch:
        """Embed the queries and find the entities they name (for ``hippo``): everything a
        ranking needs except the graph. Feed the result to :meth:`rank_prepared`.

        NER mentions that need an embedding are encoded in the same call as the queries.
        """
        _check_retriever(retriever)
        cfg, rcfg = self.config.embed, self.config.retrieval
        named = retriever in ("hippo", "hgmem") and rcfg.query_entity_weight > 0 and len(self.entity_ids) > 0
        mentions: list[list[str]] = [[] for _ in queries]
        if named and rcfg.query_ner:
            if self._recognizer is None:
                from hippo.extract.spacy_ie import SpacyMentionRecognizer

                self._recognizer = SpacyMentionRecognizer(self.config.extract.spacy_model)
            mentions = self._recognizer.mentions(queries)
        names = self.name_index() if named else {}
        pending = list(dict.fromkeys(m for ms in mentions for m in ms if normalize(m) not in names))
        vectors = self.embedder.encode_queries([*queries, *pending], cfg.fact_instruction)
        qf = vectors[: len(queries)]
        qp = qf if cfg.passage_instruction == cfg.fact_instruction else self.embedder.encode_queries(queries, cfg.passage_instruction)
        nearest: dict[str, tuple[int, float]] = {}
        if pending:
            best, cos = self._nearest_entities(vectors[len(queries):])
            nearest = {m: (int(b), float(c)) for m, b, c in zip(pending, best, cos)}

        def lookup(ms: Sequence[str]) -> tuple[Any, Any]:
            pairs = [nearest[m] for m in ms]
            return np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs])

        entities = tuple(
            tuple(dict.fromkeys([
                *match_names(q, names),
                *link_mentions(ms, names, lookup, rcfg.query_entity_threshold),
            ])) if named else ()
            for q, ms in zip(queries, mentions)
        )
        return QueryBatch(tuple(queries), qf, qp, entities)

    def name_index(self) -> Mapping[str, int]:
        """Normalised entity name -> entity row, live entities only: a hashed lookup over the
        base's packed names plus the later segments' names."""
        if self._names is None:
            names = self.snapshot.names
            alive = self.snapshot.entity_alive
            self._names = names if alive is None else _LiveNames(names, alive)
        return self._names

    def _nearest_entities(self, vectors: FloatArray) -> tuple[Any, Any]:
        ann = self._search.get("entity")
        if ann is not None:
            idx, cos = ann.search(np.asarray(vectors, dtype=np.float32), 1)
            return idx[:, 0], cos[:, 0]
        if self._entity_vectors is None:
            base, later = self.snapshot.vectors("entity")
            parts = [np.asarray(base, dtype=np.float32)] + ([later] if later is not None else [])
            parts = [x for x in parts if len(x)] or parts[:1]  # an empty base (create=True) has no columns
            self._entity_vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
        sims = np.einsum("ed,md->me", self._entity_vectors, np.asarray(vectors, dtype=np.float32))
        alive = self.snapshot.entity_alive
        if alive is not None:
            sims[:, ~alive] = -np.inf
        best = sims.argmax(axis=1)
        return best, sims[np.arange(len(best)), best]

    def recognize(
        self, queries: Sequence[str], linked: Sequence[tuple[Any, Any]]
    ) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]], list[str]]:
        """Recognition memory (HippoRAG 2, step 4): the LLM keeps the linked facts that help.

        ``linked[b]`` are query ``b``'s candidate facts (indices, scores). Returns, per query,
        the kept facts, the dropped ones, and the status (``kept``, ``none kept``, or
        ``failed: <reason>``, when the reply was unusable: then every candidate is kept).
        Replies are mapped back strictly (:mod:`hippo.retrieval.recognition`).
        """
        limit = self.config.retrieval.linking_top_k
        todo = [b for b, (idx, _) in enumerate(linked) if len(idx)]
        requests = [
            ChatRequest(
                filter_messages(queries[b], [self.facts[f].triple for f in linked[b][0].tolist()]),
                FILTER_STAGE, self.config.llm.filter_max_tokens,
            )
            for b in todo
        ]
        outcomes = self.llm.chat_many(requests, _filter_reply)
        kept: list[tuple[Any, Any]] = list(linked)
        dropped: list[tuple[Any, Any]] = [(np.zeros(0, np.int64), np.zeros(0))] * len(linked)
        status = ["none kept"] * len(linked)
        for b, outcome in zip(todo, outcomes):
            idx, scores = linked[b]
            if outcome.value is None:
                status[b] = f"failed: {outcome.error}"
                continue
            candidates = [self.facts[f].triple for f in idx.tolist()]
            positions = map_to_candidates(candidates, outcome.value, limit)
            rest = [i for i in range(len(idx)) if i not in positions]
            kept[b] = kept_facts(idx, scores, positions)
            dropped[b] = kept_facts(idx, scores, rest)
            status[b] = "kept" if positions else "none kept"
        return kept, dropped, status

    def answer(self, question: str, k: int | None = None, retriever: str = DEFAULT_RETRIEVER) -> Answer:
        """Retrieve for ``question``, then let the LLM reader answer from the top passages."""
        return self.answer_many([question], k, retriever)[0]

    def answer_many(
        self, questions: Sequence[str], k: int | None = None, retriever: str = DEFAULT_RETRIEVER
    ) -> list[Answer]:
        """:meth:`answer` for many questions: one retrieval batch, concurrent reader calls.
        ``k`` passages are read (default ``llm.qa_top_k``, 5 as HippoRAG 2)."""
        if isinstance(questions, str):
            raise TypeError("answer_many takes a list of questions; use answer() for one")
        k = self.config.llm.qa_top_k if k is None else k
        return self.read_many(self.retrieve_many(questions, k, retriever), k)

    def read_many(self, results: Sequence[QueryResult], k: int | None = None) -> list[Answer]:
        """The reader over retrieval results already made: the top ``k`` hits of each."""
        k = self.config.llm.qa_top_k if k is None else k
        requests = [
            ChatRequest(qa_messages(r.query, [h.content for h in r.hits[:k]]), QA_STAGE, json=False) for r in results
        ]
        outcomes = self.llm.chat_many(requests, _qa_reply)
        return [
            Answer(r.query, answer_of(o.value) if o.value is not None else "", r.hits[:k], o.value or "", r, o.error or "")
            for r, o in zip(results, outcomes)
        ]

    def _result(self, query: str, retriever: str, r: GraphRanking, timings: dict[str, float]) -> QueryResult:
        hits = tuple(
            _hit(rank, self.passage_ids[i], float(s), self.passage_titles[i], self.passage_contents[i], self.snapshot.metadata(i))
            for rank, (i, s) in enumerate(zip(r.passages.tolist(), r.scores.tolist()))
        )
        facts = tuple(LinkedFact(self.facts[f], float(s)) for f, s in zip(r.facts.tolist(), r.fact_scores.tolist()))
        sources = r.seed_sources or ("fact",) * len(r.seed_entities)
        seeds = tuple(
            Seed(self.entity_ids[e], self.entity_names[e], float(w), src)
            for e, w, src in zip(r.seed_entities.tolist(), r.seed_weights.tolist(), sources)
        )
        return QueryResult(query, retriever, r.mode, hits, facts, seeds, timings)

    def retrieve_many(
        self,
        queries: Sequence[str],
        k: int | None = None,
        retriever: str = DEFAULT_RETRIEVER,
        memories: Sequence[HypergraphMemory] | None = None,
        steps: int | None = None,
        reasoner: str | None = None,
    ) -> list[QueryResult]:
        """Retrieve for many queries at once: one embedding batch, one batched PageRank.

        ``timings_ms`` of each result holds the batch's per-query average. ``memories`` (one
        per query), ``steps`` and ``reasoner`` apply to ``retriever="hgmem"``: see :meth:`run_memory`.
        """
        if memories is not None and len(memories) != len(queries):
            raise HippoError(f"{len(memories)} memories for {len(queries)} queries")
        self._follow()
        _check_retriever(retriever)
        if isinstance(queries, str):
            raise TypeError("retrieve_many takes a list of queries; use retrieve() for one")
        if not queries:
            return []
        k = self.config.retrieval.top_k if k is None else k
        if k < 1:
            raise HippoError(f"k must be >= 1, got {k}")
        t0 = time.perf_counter()
        batch = self.prepare(queries, retriever)
        t1 = time.perf_counter()
        n = len(queries)
        timings = {"embed": 1000 * (t1 - t0) / n}
        linked = None
        if self.config.llm.filter and retriever not in ("dense", "hgmem"):  # hgmem links facts per step itself
            candidates = self.ranker.link_facts(batch.fact_vectors, self.config.retrieval.linking_top_k)
            linked, dropped, status = self.recognize(batch.queries, candidates)
            t1b = time.perf_counter()
            timings["filter"] = 1000 * (t1b - t1) / n
            t1 = t1b
        if retriever == "hgmem":
            reasoner = self.memory_reasoner if reasoner is None else reasoner
            runs = self.run_memory(batch, k, memories, steps, reasoner)
            timings["rank"] = 1000 * (time.perf_counter() - t1) / n
            return [
                dataclasses.replace(self._result(q, retriever, r, dict(timings)), memory=self._memory_report(m, reasoner))
                for q, (r, m) in zip(queries, runs)
            ]
        rankings = self.rank_prepared(batch, k, retriever, linked)
        timings["rank"] = 1000 * (time.perf_counter() - t1) / n
        results = [self._result(q, retriever, r, dict(timings)) for q, r in zip(queries, rankings)]
        if linked is not None:
            results = [
                dataclasses.replace(
                    res, filter=st,
                    rejected_facts=tuple(
                        LinkedFact(self.facts[f], float(s)) for f, s in zip(dr[0].tolist(), dr[1].tolist())
                    ),
                )
                for res, dr, st in zip(results, dropped, status)
            ]
        return results

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        retriever: str = DEFAULT_RETRIEVER,
        memory: HypergraphMemory | None = None,
        steps: int | None = None,
        reasoner: str | None = None,
    ) -> QueryResult:
        """Top-``k`` passages for ``query``, with the facts and seed entities used.

        Given a ``memory`` (from :meth:`memory`), ``steps`` or a ``reasoner`` (``offline``,
        ``llm``), retrieval is multi-step with that hypergraph memory (``retriever="hgmem"``);
        ``result.memory`` explains each step.
        """
        if memory is not None or steps is not None or reasoner is not None:
            retriever = "hgmem"
        return self.retrieve_many([query], k, retriever, [memory] if memory is not None else None, steps, reasoner)[0]

    memory_reasoner: str = "offline"
    """The reasoner of ``hgmem`` retrieval when a call names none: ``offline`` (no LLM) or
    ``llm`` (the ``llm.*`` endpoint). Set it on an engine to change its default."""

    def memory(self) -> HypergraphMemory:
        """An empty hypergraph working memory over this index's entities."""
        return HypergraphMemory(len(self.entity_ids))

    def run_memory(
        self,
        batch: QueryBatch,
        k: int,
        memories: Sequence[HypergraphMemory | None] | None = None,
        steps: int | None = None,
        reasoner: str = "offline",
    ) -> list[tuple[GraphRanking, HGMemResult]]:
        """Multi-step retrieval with a hypergraph memory, per query (:mod:`hippo.hgmem`).
        ``steps`` defaults to ``retrieval.memory_steps``; ``reasoner`` is ``offline`` (rules,
        no LLM) or ``llm`` (:class:`~hippo.hgmem.LLMReasoner` on :attr:`llm`; its subqueries
        are embedded with :meth:`encode_queries`)."""
        cfg = self.config.retrieval
        steps = cfg.memory_steps if steps is None else steps
        if steps < 1:
            raise HippoError(f"steps must be >= 1, got {steps}")
        if reasoner not in REASONERS:
            raise ConfigError(f"unknown reasoner {reasoner!r}; valid: {', '.join(REASONERS)}")
        view = self._memory_view()
        out = []
        for b in range(len(batch)):
            ents = batch.entities[b]
            offline = OfflineReasoner(view, ents, bridges_per_step=cfg.memory_bridges)
            chosen: Reasoner = offline
            if reasoner == "llm":
                chosen = LLMReasoner(
                    self.llm, view, ents, lambda p: self.passage_contents[p], lambda f: self.facts[f].triple,
                    fallback=offline, entity_index=self.name_index(),
                )
            res = run_memory(
                view, batch.queries[b], batch.fact_vectors[b], batch.passage_vectors[b], ents, chosen,
                steps=steps, memory=memories[b] if memories is not None else None, k=k,
                bridge_weight=cfg.memory_bridge_weight, hops=cfg.memory_hops or None, encode=self.encode_queries,
            )
            empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
            out.append((GraphRanking(res.passages, res.scores, empty_i, empty_f, empty_i, empty_f, "hgmem"), res))
        return out

    def _memory_view(self) -> GraphView:
        if self._hgmem_view is None:
            self._hgmem_view = GraphView(
                self.ranker, self.config.retrieval,
                *self.snapshot.passage_facts,
                self.entity_names, lambda f: self.facts[f].as_text(), self.solver.adj,
            )
        return dataclasses.replace(self._hgmem_view, config=self.config.retrieval)

    def _memory_report(self, res: HGMemResult, reasoner: str = "offline") -> dict[str, Any]:
        """The memory and the steps of an ``hgmem`` run, with names and ids instead of indices."""

        def name(v: int) -> str:
            if v >= 0:
                return self.entity_names[v]
            return next((n for n, i in res.memory.provisional.items() if i == v), str(v))

        return {
            "reasoner": reasoner,
            "points": [
                {"vertices": sorted(name(v) for v in p.vertices), "description": p.description,
                 "passages": sorted(self.passage_ids[i] for i in p.passages), "step": p.step}
                for p in res.memory.points
            ],
            "steps": [
                {"step": t.step, "mode": t.mode, "queries": list(t.queries), "seeds": [name(v) for v in t.seeds],
                 "passages": [self.passage_ids[i] for i in t.passages[:5]],
                 "titles": [self.passage_titles[i] for i in t.passages[:5]], "operations": list(t.operations),
                 "stop": t.plan.stop, "next": [name(v) for v in t.plan.seeds], "reason": t.plan.reason,
                 "concerns": list(t.plan.concerns), "subqueries": list(t.plan.subqueries)}
                for t in res.trace
            ],
        }

    # ---------------------------------------------------------------- writes
    def _writing(self) -> Any:
        if self._writer is None:
            raise HippoError(
                f"this engine over {self.path} is read-only; open it with hippo.open_index(path, writable=True) to write"
            )
        return self._writer

    def add(self, items: Sequence[Mapping[str, Any] | Passage], update: bool = False) -> list[str]:
        """Add passages and return, once the write is durable, the id each item has in the index.

        An item is a :class:`~hippo.types.Passage` or a dict ``{"text", "title"?, "id"?,
        "metadata"?}`` (the keys of :data:`~hippo.types.META_KEYS`, e.g. ``speaker``, ``session``,
        ``time``, may also be given at the top level). A new id (or, without one, the content
        hash) is added; an id already present with the same text is kept as it is; with other
        text it is refused (nothing is written) unless ``update``; a text the index already
        holds under another id is not added twice (that id is returned). The write is one new
        segment: it costs what it adds, and the engine sees it at once."""
        ids = list(self._writing().add(items, update))
        self._follow()
        return ids

    def delete(self, ids: Sequence[str], missing_ok: bool = False) -> list[str]:
        """Delete passages by id (tombstones: gone from results at once) and return the ids
        deleted. Unknown ids are an error naming them, and nothing is deleted, unless ``missing_ok``."""
        if isinstance(ids, str):
            raise TypeError("delete takes a list of ids")
        deleted = list(self._writing().delete(ids, missing_ok))
        self._follow()
        return deleted

    def compact(self) -> dict[str, Any]:
        """Merge every segment into one new base, as a from-scratch build of the live passages
        would write it; returns what it did. Readers keep answering meanwhile."""
        report = dict(self._writing().compact())
        self._follow()
        return report

    def close(self) -> None:
        """Release the writer lock (a writable engine) and the segments this engine pins."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rank_prepared(
        self,
        batch: QueryBatch,
        k: int,
        retriever: str = DEFAULT_RETRIEVER,
        linked: Sequence[tuple[Any, Any]] | None = None,
    ) -> list[GraphRanking]:
        """Rank a :class:`QueryBatch` from :meth:`prepare` (for benchmarks and batch jobs).

        ``linked`` replaces the linked facts of each query (e.g. those :meth:`recognize` kept).
        """
        _check_retriever(retriever)
        if retriever == "dense":
            return self.ranker.rank_dense_many(batch.passage_vectors, k)
        if retriever == "hgmem":
            return [ranking for ranking, _ in self.run_memory(batch, k)]
        cfg = self.config.retrieval
        if retriever == "hipporag2":
            cfg = dataclasses.replace(cfg, query_entity_weight=0.0, dense_fusion=0.0)
        return self.ranker.rank_many(batch.fact_vectors, batch.passage_vectors, k, cfg, batch.entities, linked)


def _hit(rank: int, pid: str, score: float, title: str, content: str, meta: Mapping[str, Any]) -> Hit:
    """A hit with its citation: the document and span from the passage metadata, else the
    passage itself (a passage corpus: the document is the passage, the span all of it)."""
    span = meta.get("span")
    return Hit(
        rank, pid, score, title, content,
        document_id=str(meta.get("document_id", pid)),
        source=str(meta.get("source", "")),
        headings=tuple(str(h) for h in meta.get("headings", ())),
        span=(int(span[0]), int(span[1])) if span else (0, len(content)),
        metadata=dict(meta),
    )


class _LiveNames(Mapping[str, int]):
    """A name lookup that does not find dead entities (no live passage names them)."""

    def __init__(self, names: Mapping[str, int], alive: Any) -> None:
        self.names = names
        self.alive = alive

    def get(self, name: str, default: Any = None) -> Any:
        row = self.names.get(name)
        return row if row is not None and bool(self.alive[row]) else default

    def __getitem__(self, name: str) -> int:
        row = self.get(name)
        if row is None:
            raise KeyError(name)
        return int(row)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return int(self.alive.sum())

    def __iter__(self) -> Any:
        return (n for n in self.names if n in self)


def describe(snap: Snapshot) -> dict[str, Any]:
    """What ``hippo info --json`` prints: counts, embedder, extractor, config, versions, segments."""
    m = snap.manifest
    return {
        "path": str(snap.root), "generation": m["generation"], "format_version": m["format_version"],
        "counts": m["counts"], "embedder": m.get("embedder"), "extractor": m.get("extractor"), "config": m["config"],
        "versions": m.get("versions", {}),
        "segments": [{k: e[k] for k in ("name", "kind", "rows", "bytes")} for e in m["segments"]],
        "bytes": sum(int(e["bytes"]) for e in m["segments"]),
    }


def _filter_reply(reply: ChatReply) -> list[tuple[str, str, str]]:
    return parse_facts(reply.content)


def _qa_reply(reply: ChatReply) -> str:
    if not reply.content.strip():
        raise ParseError("empty reply")
    return reply.content


def _override(config: Config, overrides: dict[str, Any]) -> Config:
    bad = [key for key in overrides if not key.startswith(QUERY_TIME)]
    if bad:
        raise ConfigError(
            f"{', '.join(bad)} cannot change after indexing (only retrieval.*, runtime.* and llm.* can); "
            f"rebuild the index to change them"
        )
    return config.replace(overrides).validate()


def _check_retriever(retriever: str) -> None:
    if retriever not in RETRIEVERS:
        raise ConfigError(f"unknown retriever {retriever!r}; valid: {', '.join(RETRIEVERS)}")


def open_index(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    embedder: Embedder | None = None,
    llm: LLMClient | None = None,
    *,
    writable: bool = False,
    create: bool = False,
    config: Config | None = None,
    wait: float = 0.0,
    extractor: Extractor | None = None,
) -> Engine:
    """Open the index at ``path``. Its saved config is the base; ``overrides``
    (``{"retrieval.damping": 0.6}``) may change query-time settings only.

    The embedder is rebuilt from the manifest unless one is given, and must match.
    ``llm`` serves the recognition filter and the reader (default: made from ``llm.*``).

    ``writable=True`` takes the index's writer lock (waiting up to ``wait`` seconds for another
    writer, then failing with the holder's PID) and keeps it until :meth:`Engine.close`; the
    engine then has :meth:`~Engine.add`, :meth:`~Engine.delete` and :meth:`~Engine.compact`.
    ``create=True`` makes an empty index when ``path`` holds none (with ``config``, or the
    defaults); ``extractor`` replaces the one the config names (e.g. a scripted one in tests).
    A read-only engine follows the writes of others on its own.
    """
    from hippo.live.memory import MemoryWriter

    root = Path(path)
    if not writable:
        if create:
            raise HippoError("create=True needs writable=True")
        snap = Snapshot.open(root)
        return _engine(snap, overrides, embedder, llm, None)
    writer = MemoryWriter.open(root, create=create, config=config, embedder=embedder, wait=wait, extractor=extractor,
                               overrides=overrides)
    try:
        return _engine(writer.snapshot, overrides, writer.embedder_or(embedder), llm, writer)
    except BaseException:
        writer.close()
        raise


def _engine(snap: Snapshot, overrides: dict[str, Any] | None, embedder: Embedder | None, llm: LLMClient | None,
            writer: Any) -> Engine:
    config = from_dict(snap.manifest["config"], source=f"{snap.root}/CURRENT")
    if overrides:
        config = _override(config, overrides)
    expected = snap.manifest.get("embedder")
    if embedder is None:
        embedder = make_embedder(config.embed, config.llm)
    if expected:
        check_embedder(expected["id"], int(expected["dim"]), embedder)
    engine = Engine(snap, config, embedder, llm, writer)
    if writer is not None:
        writer.attach(engine)
    return engine
