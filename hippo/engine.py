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
import scipy.sparse as sp

from hippo.config import QUERY_TIME, Config, from_dict
from hippo.embed import make_embedder
from hippo.embed.st import check_embedder
from hippo.errors import ConfigError, HippoError
from hippo.graph.build import Graph
from hippo.graph.ppr import PPRSolver
from hippo.hgmem import REASONERS, GraphView, HGMemResult, HypergraphMemory, LLMReasoner, OfflineReasoner, Reasoner
from hippo.hgmem import run as run_memory
from hippo.ids import entity_id, normalize
from hippo.llm.base import ChatReply, ChatRequest, ParseError
from hippo.llm.parse import parse_facts
from hippo.llm.prompts import answer_of, filter_messages, qa_messages
from hippo.protocols import Embedder, FloatArray, LLMClient
from hippo.retrieval.hipporag import GraphRanking, HippoRAG2Ranker, ppr_plan
from hippo.retrieval.query_entities import link_mentions, match_names, name_index
from hippo.retrieval.recognition import kept_facts, map_to_candidates
from hippo.store import IndexFiles, read_index_files
from hippo.store.strings import DerivedIds, FactTable, NameLookup
from hippo.retrieval.vectors import IVFSearch, floor_rows
from hippo.types import Answer, Fact, Hit, LinkedFact, QueryResult, Seed

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

    def __init__(self, files: IndexFiles, config: Config, embedder: Embedder, llm: LLMClient | None = None) -> None:
        self.files = files
        self.config = config
        self.embedder = embedder
        fact_subject = np.asarray(files.array("fact_subject.npy"))
        fact_object = np.asarray(files.array("fact_object.npy"))
        self.compact = files.has("passage_ids.off.npy")
        """Whether the generation has packed string tables and CSR arrays (opens without parsing)."""
        if self.compact:
            self.passage_ids: Sequence[str] = files.strings("passage_ids")
            self.passage_titles: Sequence[str] = files.strings("passage_titles")
            self.passage_contents: Sequence[str] = files.strings("passage_contents")
            self.entity_names: Sequence[str] = files.strings("entity_names")
            self.entity_ids: Sequence[str] = DerivedIds(self.entity_names, entity_id)
            self.facts: Sequence[Fact] = FactTable(self.entity_names, fact_subject, fact_object, files.strings("fact_relations"))
        else:  # generations written before the packed tables existed
            passages = files.jsonl("passages.jsonl")
            self.passage_ids = [p["id"] for p in passages]
            self.passage_titles = [p["title"] for p in passages]
            self.passage_contents = [p["content"] for p in passages]
            entities = files.json("entities.json")
            self.entity_ids = entities["ids"]
            self.entity_names = entities["names"]
            self.facts = [Fact(f["id"], f["s"], f["r"], f["o"]) for f in files.jsonl("facts.jsonl")]
        self.graph = Graph(
            len(self.passage_ids), len(self.entity_ids),
            files.array("edge_src.npy"), files.array("edge_dst.npy"),
            files.array("edge_weight.npy"), files.array("edge_kind.npy"),
        )
        if files.has("adj_indptr.npy"):
            n = self.graph.n_nodes
            adj = sp.csr_matrix(
                (files.array("adj_data.npy"), files.array("adj_indices.npy"), files.array("adj_indptr.npy")), shape=(n, n)
            )
            colnorm = files.array("adj_colnorm.npy") if files.has("adj_colnorm.npy") else None  # older generations: made on first push
            self.solver = PPRSolver(adj, degree=files.array("node_degree.npy"), colnorm=colnorm)
        else:
            self.solver = PPRSolver(self.graph.adjacency())
        rcfg = config.retrieval
        self._ann = {
            name: _open_ivf(files, name, rcfg.ann_nprobe, rcfg.ann_candidates)
            for name in ("passage_vectors", "fact_vectors", "entity_vectors") if files.has(f"{name}.ivf")
        }
        self.ranker = HippoRAG2Ranker(
            files.array("passage_vectors.npy"),
            files.array("fact_vectors.npy"),
            fact_subject,
            fact_object,
            np.asarray(files.array("entity_passage_count.npy")),
            self.solver,
            self._ann.get("passage_vectors"),
            self._ann.get("fact_vectors"),
        )
        self._names: Mapping[str, int] | None = None
        self._recognizer: Any = None
        self._entity_vectors: Any = None
        self._llm = llm
        self._hgmem_view: GraphView | None = None

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
        return self.files.root

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest of the opened generation."""
        return self.files.manifest

    def with_overrides(self, overrides: dict[str, Any]) -> Engine:
        """The same index with other query-time settings (``{"retrieval.damping": 0.6}``);
        shares every array and model with this engine."""
        twin = copy.copy(self)
        twin.config = _override(self.config, overrides)
        if twin.config.llm != self.config.llm:
            twin._llm = None  # another endpoint or model: made anew on first use
        return twin

    def reload(self) -> bool:
        """Switch to the index's live generation if a write committed a newer one since this
        engine opened it; True when it switched. Until then the engine keeps answering from
        the generation it opened, which stays on disk while any engine uses it. Query-time
        overrides stay."""
        files = read_index_files(self.files.root)
        if files.generation == self.files.generation:
            files.close()
            return False
        check_embedder(files.manifest["embedder"]["id"], int(files.manifest["embedder"]["dim"]), self.embedder)
        # The old generation stays pinned while a with_overrides twin still reads it.
        recognizer = self._recognizer  # spaCy's NER model does not depend on the generation
        self.__dict__.update(Engine(files, self.config, self.embedder, self._llm).__dict__)
        self._recognizer = recognizer
        return True

    def info(self) -> dict[str, Any]:
        """Counts, embedder, extractor, config and versions of the index."""
        return self.files.describe()

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
            self.files.prefetch(PUSH_FILES)
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
        """Normalised entity name -> entity index: a hashed lookup over the packed names, or a
        dict built on first use for older generations."""
        if self._names is None:
            if self.compact:
                self._names = NameLookup(
                    self.entity_names, self.files.array("entity_name_hash.npy"), self.files.array("entity_name_rows.npy")
                )
            else:
                self._names = name_index(self.entity_names)
        return self._names

    def _nearest_entities(self, vectors: FloatArray) -> tuple[Any, Any]:
        ann = self._ann.get("entity_vectors")
        if ann is not None:
            idx, cos = ann.search(np.asarray(vectors, dtype=np.float32), 1)
            return idx[:, 0], cos[:, 0]
        if self._entity_vectors is None:
            self._entity_vectors = np.asarray(self.files.array("entity_vectors.npy"), dtype=np.float32)
        sims = np.einsum("ed,md->me", self._entity_vectors, np.asarray(vectors, dtype=np.float32))
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
            _hit(rank, self.passage_ids[i], float(s), self.passage_titles[i], self.passage_contents[i], {})
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
                np.asarray(self.files.array("passage_fact_indptr.npy")),
                np.asarray(self.files.array("passage_fact_indices.npy")),
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


def _open_ivf(files: IndexFiles, name: str, nprobe: int, candidates: int) -> IVFSearch:
    vectors = files.array(f"{name}.npy")
    floor = files.array(f"{name}.floor.npy") if files.has(f"{name}.floor.npy") else floor_rows(vectors)  # older generations
    return IVFSearch(files.generation / f"{name}.ivf", vectors, floor, nprobe, candidates)


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
) -> Engine:
    """Open the index at ``path``. Its saved config is the base; ``overrides``
    (``{"retrieval.damping": 0.6}``) may change query-time settings only.

    The embedder is rebuilt from the manifest unless one is given, and must match.
    ``llm`` serves the recognition filter and the reader (default: made from ``llm.*``).
    """
    files = read_index_files(path)
    config = from_dict(files.manifest["config"], source=f"{files.generation}/manifest.json")
    if overrides:
        config = _override(config, overrides)
    expected = files.manifest["embedder"]
    if embedder is None:
        embedder = make_embedder(config.embed, config.llm)
    check_embedder(expected["id"], int(expected["dim"]), embedder)
    return Engine(files, config, embedder, llm)
