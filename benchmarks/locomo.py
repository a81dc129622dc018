"""Conversations: evidence recall on LoCoMo (8 conversations) for hippo, hipporag2 and dense.

    python benchmarks/locomo.py --ablation --sweep   # index-time structures, then query-time settings (tuning split)
    python benchmarks/locomo.py --final              # the conversation defaults, streamed per session, all 8
    python benchmarks/locomo.py --diagnose           # why hippo lost in issue 23's setup (cheap parts)
    python benchmarks/locomo.py --render             # rewrite locomo.md from locomo.json

Each conversation is its own index (its questions are about it alone); a turn is a passage
(:func:`hippo.conversation.turn_passages`). Evidence recall@k of a question = the share of its
evidence turns in the top k; categories 1-4 (5, adversarial, has no evidence to find).
Tuning split: conversations 41, 42, 43, 44, 47, 48; held out (never looked at while
choosing): 49, 50.

The ablation and the sweep use one-shot builds (``build_index``) cached by variant, with a
vector cache by text and spaCy docs memoised by text (same results, less time). Query-time
settings, the time and speaker prior included, go through the engine as ``retrieval.*``
overrides. The final run is what a user of ``hippo.open_index(path, writable=True)`` gets:
a new conversation index (:func:`hippo.conversation.conversation_config`: the conversation
extractor with its default options and :data:`~hippo.conversation.CONVERSATION_SETTINGS`),
one ``mem.add(turn records)`` per session in conversation order, no caches, each add timed.
Results: ``benchmarks/results/locomo.{json,md}`` (each mode keeps the others' results).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "locomo8" / "conversations.json"
CACHE = HERE / ".cache" / "locomo"
RESULTS = HERE / "results"
TUNING: tuple[str, ...] = ("41", "42", "43", "44", "47", "48")
HELD_OUT: tuple[str, ...] = ("49", "50")
SMOKE = int(os.environ.get("LOCOMO_SMOKE", "0"))
if SMOKE:  # a code-path check on a few turns, not a measurement
    CACHE = Path("/tmp/locomo-smoke")
    RESULTS = CACHE / "results"
    TUNING, HELD_OUT = ("41",), ("49",)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (2, 5, 10)
ISSUE_DEV = ("41", "42", "43")
"""The conversations of issue 23's first measurement (a part of the tuning split)."""

# Index-time variants: passage title and text, extractor ("spacy" = the plain spaCy extractor
# of issue 23's first measurement; otherwise ConversationExtractor options, every option not
# named is off). The ablation adds the structures one at a time, greedily, and keeps one only
# if it helps (see ``ablation``).
OFF: dict[str, Any] = {"coref": False, "mentions": False, "captions": False, "speakers": "keep",
                       "session_nodes": False, "previous": False}
ISSUE = {"title": "speaker-session-date", "context": False, "extractor": "spacy"}
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("title 'speaker, date' (issue: 'speaker, session n, date')", {"title": "speaker-date"}),
    ("conversation extractor: coreference-lite I/my -> speaker (no title anchoring)", {"extractor": {"coref": True}}),
    ("speaker mentions: (speaker, mentions, X) for uncovered noun phrases", {"extractor": {"mentions": True}}),
    ("photo captions: no 'a photo of' boilerplate (a 'photo' hub in 20% of turns)", {"extractor": {"captions": True}}),
    ("speaker handling: speaker-session nodes instead of one speaker hub", {"extractor": {"speakers": "session"}}),
    ("session nodes: (conversation of <date>, includes, turn entity)", {"extractor": {"session_nodes": True}}),
    ("neighbouring turn: extract the predecessor's triples too", {"extractor": {"previous": True}}),
    ("neighbouring turn: predecessor in the embedded text", {"context": True}),
]
KEEP_GAIN = 0.003
"""A structure or setting is kept when it raises hippo's :func:`score` on the tuning split by this much."""
VARIANTS: dict[str, dict[str, Any]] = {"issue": ISSUE}
TIME = {"retrieval.time_boost": 2.0}
SPEAKER = {"retrieval.speaker_boost": 1.5}
"""The priors of the ablation's ``+time``/``+speaker`` rows (strengths are swept later)."""
PRIOR_KEYS = ("retrieval.time_boost", "retrieval.speaker_boost", "retrieval.prior_candidates")


def variant_name(v: dict[str, Any]) -> str:
    """A stable name for a variant (its cache folder)."""
    if v == ISSUE:
        return "issue"
    x = v["extractor"]
    ext = "spacy" if x == "spacy" else "conv-" + "-".join(
        f"{k}={int(val) if isinstance(val, bool) else val}" for k, val in sorted(x.items()) if OFF.get(k) != val)
    name = f"{v['title']}{'+ctx' if v['context'] else ''}_{ext}"
    VARIANTS[name] = v
    return name


def with_change(v: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(v)
    for key, value in change.items():
        if key == "extractor":
            base = {} if v["extractor"] == "spacy" else dict(v["extractor"])
            out["extractor"] = {**OFF, **base, **value}
        else:
            out[key] = value
    return out


def variant_named(name: str) -> dict[str, Any]:
    """The variant called ``name``: the issue's, the default, or one step of :data:`STEPS` from either
    (a later process, e.g. ``--sweep`` after ``--ablation``, knows them by name only)."""
    for base in (ISSUE, default_variant()):
        for v in (base, *(with_change(base, change) for _, change in STEPS)):
            variant_name(v)
    if name not in VARIANTS:
        raise SystemExit(f"locomo.py: unknown variant {name!r}; known: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[name]


def default_variant() -> dict[str, Any]:
    """What a conversation index uses: the default title and text, the extractor's default options."""
    from hippo.conversation.extractor import ConversationExtractor
    from hippo.conversation.schema import DEFAULT_TITLE

    params = inspect.signature(ConversationExtractor.__init__).parameters
    return {"title": DEFAULT_TITLE, "context": False, "extractor": {k: params[k].default for k in OFF}}


def load(conv_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Conversations with their turns and their category 1-4 questions (evidence as turn ids)."""
    from hippo.conversation import read_conversations

    raw = {str(c["conversation"]): c for c in json.loads(DATA.read_text())}
    convs = {c.id: c for c in read_conversations(DATA)}
    out = []
    for cid in conv_ids:
        known = {t.id for t in convs[cid].turns}
        questions = []
        for q in raw[cid]["qa"]:
            if q["category"] not in CATEGORIES:
                continue
            ev = [f"{cid}/{e.strip()}" for x in q["evidence"] for e in str(x).replace(",", ";").split(";") if e.strip()]
            questions.append({"question": q["question"], "category": q["category"], "evidence": ev,
                              "missing": sum(e not in known for e in ev)})
        turns = convs[cid].turns
        if SMOKE:
            turns = turns[:SMOKE]
            kept = {t.id for t in turns}
            questions = [q for q in questions if q["evidence"] and set(q["evidence"]) <= kept]
        out.append({"id": cid, "turns": turns, "questions": questions})
    return out


class _MemoNlp:
    """spaCy's ``pipe`` remembering its docs by text: variants that parse the same texts
    (most of the ablation) parse them once per process. Output is unchanged."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self.docs: dict[str, Any] = {}
        self.max_length = nlp.max_length

    def pipe(self, texts: Any, batch_size: int = 64, n_process: int = 1) -> Any:
        texts = list(texts)
        todo = list(dict.fromkeys(t for t in texts if t not in self.docs))
        for t, doc in zip(todo, self.nlp.pipe(todo, batch_size=batch_size)):
            self.docs[t] = doc
        return iter([self.docs[t] for t in texts])


class CachedEmbedder:
    """The default embedder with a vector cache by text: identical strings give identical
    vectors, so results equal uncached ones. ``documents=True`` also caches passage and entity
    vectors (shared by every variant of the ablation, kept in ``benchmarks/.cache/locomo/vectors``);
    the final run caches only question vectors (its adds embed everything they write)."""

    def __init__(self, documents: bool = True) -> None:
        from hippo.config import Config
        from hippo.embed import make_embedder

        self.inner = make_embedder(Config().embed)
        self.documents = documents
        self.docs: dict[str, Any] = {}
        self.queries: dict[tuple[str, str], Any] = {}
        self.fresh = 0
        folder = CACHE / "vectors"
        if documents and (folder / "keys.json").exists():
            keys = json.loads((folder / "keys.json").read_text())
            mat = np.load(folder / "vectors.npy")
            self.docs = {k: mat[i] for i, k in enumerate(keys)}

    @property
    def id(self) -> str:
        return str(self.inner.id)

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def encode_documents(self, texts: Sequence[str]) -> Any:
        if not self.documents:
            return self.inner.encode_documents(texts)
        todo = list(dict.fromkeys(t for t in texts if t not in self.docs))
        if todo:
            vecs = self.inner.encode_documents(todo)
            self.docs.update(zip(todo, vecs))
            self.fresh += len(todo)
        return np.stack([self.docs[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_queries(self, texts: Sequence[str], instruction: str = "") -> Any:
        todo = list(dict.fromkeys(t for t in texts if (instruction, t) not in self.queries))
        if todo:
            self.queries.update(zip(((instruction, t) for t in todo), self.inner.encode_queries(todo, instruction)))
        return np.stack([self.queries[(instruction, t)] for t in texts])

    def save(self) -> None:
        if not self.documents or not self.fresh:
            return
        folder = CACHE / "vectors"
        folder.mkdir(parents=True, exist_ok=True)
        keys = list(self.docs)
        np.save(folder / "vectors.npy", np.stack([self.docs[k] for k in keys]).astype(np.float32))
        (folder / "keys.json").write_text(json.dumps(keys))
        self.fresh = 0


_SHARED: dict[str, Any] = {}


def embedder() -> CachedEmbedder:
    """The shared embedder with the vector cache (ablation, sweep, diagnosis)."""
    if "embedder" not in _SHARED:
        _SHARED["embedder"] = CachedEmbedder()
    return _SHARED["embedder"]  # type: ignore[no-any-return]


def make_extractor(variant: dict[str, Any]) -> Any:
    """The extractor of a variant, every option explicit, parsing through the shared memo."""
    from hippo.conversation.extractor import ConversationExtractor
    from hippo.extract.spacy_ie import SpacyExtractor

    base = SpacyExtractor()
    if "nlp" not in _SHARED:
        _SHARED["nlp"] = _MemoNlp(base.nlp)
    base._nlp = _SHARED["nlp"]
    if variant["extractor"] == "spacy":
        return base
    return ConversationExtractor(base, **{**OFF, **variant["extractor"]})


def build(name: str, conv: dict[str, Any]) -> Path:
    """The one-shot index of one conversation under one variant (cached by variant)."""
    from hippo.conversation import turn_passages
    from hippo.indexer import build_index

    variant = variant_named(name)
    out: Path = CACHE / name / str(conv["id"])
    if (out / "CURRENT").exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    passages = turn_passages(conv["turns"], title=variant["title"], context=variant["context"])
    build_index(passages, out, extractor=make_extractor(variant), embedder=embedder())
    embedder().save()
    return out


def stream(conv: dict[str, Any], emb: Any, extractor: Any) -> tuple[Path, dict[str, Any]]:
    """A new conversation index of ``conv`` written by one writable engine, one ``add`` of turn
    records per session in order; each add timed with the size of the index before it."""
    import hippo
    from hippo.conversation import conversation_config, turn_passages

    out = CACHE / "stream" / conv["id"]
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sessions: dict[str, list[Any]] = {}
    for t in conv["turns"]:
        sessions.setdefault(t.session, []).append(t)
    adds = []
    t0 = time.perf_counter()
    with hippo.open_index(out, writable=True, create=True, config=conversation_config(), embedder=emb,
                          extractor=extractor) as mem:
        opened = time.perf_counter() - t0
        size = 0
        for session, turns in sessions.items():
            records = [{"id": t.id, "speaker": t.speaker, "session": t.session, "time": t.time, "text": t.text,
                        "metadata": dict(t.metadata)} for t in turns]
            t1 = time.perf_counter()
            ids = mem.add(records)
            adds.append({"session": session, "turns": len(turns), "index_turns": size,
                         "seconds": round(time.perf_counter() - t1, 4)})
            if ids != [t.id for t in turns]:
                raise AssertionError(f"conversation {conv['id']} session {session}: add returned other ids")
            size += len(turns)
    reader = hippo.open_index(out, embedder=emb)
    want = {p.id: p.content for p in turn_passages(conv["turns"])}
    got = dict(zip(reader.passage_ids, reader.passage_contents))
    differ = sum(got.get(pid) != content for pid, content in want.items())
    return out, {"seconds": round(time.perf_counter() - t0, 2), "open_seconds": round(opened, 3),
                 "turns": size, "adds": adds, "passages_differing_from_index_format": differ,
                 "segments": len(reader.snapshot.views)}


def top(engine: Any, questions: Sequence[str], retriever: str, overrides: dict[str, Any], k: int = max(KS)) -> list[list[str]]:
    """Each question's top ``k`` passage ids under query-time ``overrides``."""
    e = engine.with_overrides(overrides) if overrides else engine
    return [r.passage_ids for r in e.retrieve_many(list(questions), k=k, retriever=retriever)]


def recall_table(ranked: Sequence[Sequence[str]], qs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Evidence recall@k overall and per category (and question counts)."""
    def rec(idx: list[int], k: int) -> float:
        vals = [len(set(ranked[i][:k]) & set(qs[i]["evidence"])) / max(1, len(set(qs[i]["evidence"]))) for i in idx]
        return round(float(np.mean(vals)), 4) if vals else 0.0

    everything = list(range(len(qs)))
    table = {"all": {"n": len(qs), **{str(k): rec(everything, k) for k in KS}}}
    for c in CATEGORIES:
        idx = [i for i, q in enumerate(qs) if q["category"] == c]
        table[str(c)] = {"n": len(idx), **{str(k): rec(idx, k) for k in KS}}
    return table


Row = tuple[str, str, dict[str, Any]]
"""(label, retriever, query-time overrides)."""


def evaluate(engines: Sequence[tuple[dict[str, Any], Any]], rows: Sequence[Row]) -> dict[str, Any]:
    """Recall tables for ``rows`` pooled over (conversation, opened index) pairs, and the
    retrieval time of each row."""
    ranked: dict[str, list[list[str]]] = {label: [] for label, *_ in rows}
    seconds = dict.fromkeys(ranked, 0.0)
    qs_all: list[dict[str, Any]] = []
    owner: list[str] = []
    for conv, engine in engines:
        questions = [q["question"] for q in conv["questions"]]
        engine.retrieve_many(questions, k=1, retriever="dense")  # untimed: question vectors cached, models loaded
        for label, retriever, over in rows:
            t = time.perf_counter()
            ranked[label] += top(engine, questions, retriever, over)
            seconds[label] += time.perf_counter() - t
        qs_all += conv["questions"]
        owner += [conv["id"]] * len(conv["questions"])
    issue = [i for i, c in enumerate(owner) if c in ISSUE_DEV]
    return {"questions": len(qs_all), "evidence_missing": sum(q["missing"] for q in qs_all),
            "rows": {label: recall_table(ranked[label], qs_all) for label in ranked},
            "rows_41_43": {label: recall_table([ranked[label][i] for i in issue], [qs_all[i] for i in issue])
                           for label in ranked} if issue else {},
            "query_ms": {label: round(1000 * s / max(1, len(qs_all)), 2) for label, s in seconds.items()}}


def fmt(row: dict[str, Any], key: str = "all") -> str:
    return "/".join(f"{row[key][str(k)]:.3f}".lstrip("0") for k in KS)


def show(rows: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    for label, row in rows.items():
        tail = f"   41-43: {fmt(extra[label])}" if extra else ""
        print(f"  {label:30s} {fmt(row)}  " + " ".join(f"c{c} {fmt(row, str(c))}" for c in CATEGORIES) + tail,
              file=sys.stderr, flush=True)


_ENGINES: dict[Path, Any] = {}


def opened(name: str, convs: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """(conversation, reader) pairs for variant ``name``'s one-shot indexes (built if missing)."""
    from hippo import open_index

    out = []
    for conv in convs:
        path = build(name, conv)
        if path not in _ENGINES:
            _ENGINES[path] = open_index(path, embedder=embedder())
        out.append((conv, _ENGINES[path]))
    return out


def score(row: dict[str, Any]) -> float:
    """The selection criterion: mean of R@5 and R@10 over every tuning question (issue 23's targets)."""
    return float(row["all"]["5"] + row["all"]["10"]) / 2


BASE_ROWS: list[Row] = [("dense", "dense", {}), ("hipporag2", "hipporag2", {}), ("hippo", "hippo", {})]
ABLATION_ROWS: list[Row] = [*BASE_ROWS, ("dense+time", "dense", TIME), ("hippo+time", "hippo", TIME),
                            ("hippo+speaker", "hippo", SPEAKER)]


def ablation() -> dict[str, Any]:
    """Greedy: from the issue's setup, add each structure of :data:`STEPS` to the current
    variant; keep it when hippo's :func:`score` rises by :data:`KEEP_GAIN` (tuning split)."""
    convs = load(TUNING)
    steps: list[dict[str, Any]] = []
    current = ISSUE
    results: dict[str, Any] = {}

    def run(v: dict[str, Any]) -> dict[str, Any]:
        name = variant_name(v)
        if name not in results:
            t = time.perf_counter()
            print(f"[{name}]", file=sys.stderr, flush=True)
            results[name] = evaluate(opened(name, convs), ABLATION_ROWS)
            results[name]["seconds"] = round(time.perf_counter() - t, 1)
            print(f"  ({results[name]['seconds']:.0f} s)", file=sys.stderr)
            show(results[name]["rows"], results[name]["rows_41_43"])
        return results[name]  # type: ignore[no-any-return]

    before = run(current)
    for label, change in STEPS:
        cand = with_change(current, change)
        after = run(cand)
        gain = score(after["rows"]["hippo"]) - score(before["rows"]["hippo"])
        kept = gain >= KEEP_GAIN
        steps.append({"structure": label, "from": variant_name(current), "to": variant_name(cand),
                      "gain": round(gain, 4), "kept": kept})
        print(f"== {label}: {gain:+.4f} -> {'kept' if kept else 'dropped'}", file=sys.stderr, flush=True)
        if kept:
            current, before = cand, after
    return {"steps": steps, "chosen": variant_name(current), "default": variant_name(default_variant()),
            "variants": results}


GRAPH_GRID: list[tuple[str, tuple[Any, ...]]] = [
    ("retrieval.dense_fusion", (0.0, 1.5, 3.0, 5.0)),
    ("retrieval.passage_node_weight", (0.02, 0.05, 0.1, 0.2)),
    ("retrieval.query_entity_weight", (0.0, 3.0, 6.0, 12.0)),
    ("retrieval.damping", (0.3, 0.5, 0.7)),
    ("retrieval.linking_top_k", (3, 5, 10)),
    ("retrieval.seed_top_k", (3, 5, 10)),
]
"""Graph and fusion settings of ``hippo``, one coordinate at a time (defaults included)."""
TIME_BOOSTS = (1.0, 1.5, 2.0, 3.0)
SPEAKER_BOOSTS = (1.0, 1.25, 1.5, 2.0)
PRIOR_CANDIDATES = (50, 200, 1000)


def sweep(name: str) -> dict[str, Any]:
    """Query-time settings of ``hippo`` on variant ``name``'s tuning indexes: graph and fusion
    settings by coordinate ascent from the defaults (a change is kept when :func:`score` rises
    by :data:`KEEP_GAIN`), then the time and speaker prior on a grid, then how many candidates
    the prior re-weights. ``hipporag2`` and ``dense`` are measured with the chosen priors too."""
    from hippo.config import Config

    engines = opened(name, load(TUNING))
    defaults = Config().retrieval
    chosen: dict[str, Any] = {}
    graph: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}

    def hippo_row(over: dict[str, Any]) -> dict[str, Any]:
        key = json.dumps(over, sort_keys=True)
        if key not in seen:
            seen[key] = evaluate(engines, [("hippo", "hippo", over)])["rows"]["hippo"]
            print(f"  {over} {fmt(seen[key])} ({score(seen[key]):.4f})", file=sys.stderr, flush=True)
        return seen[key]

    def over_of(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
        out = {k: v for k, v in base.items() if k != key}
        if value != getattr(defaults, key.split(".", 1)[1]):
            out[key] = value
        return out

    for key, values in GRAPH_GRID:  # coordinate ascent, each key once
        tried = {v: hippo_row(over_of(chosen, key, v)) for v in values}
        graph += [{"overrides": over_of(chosen, key, v), "recall": row} for v, row in tried.items()]
        pick = max(values, key=lambda v: score(tried[v]))
        if score(tried[pick]) - score(hippo_row(chosen)) >= KEEP_GAIN:
            chosen = over_of(chosen, key, pick)
    best = hippo_row(chosen)
    print(f"== graph settings: {chosen}", file=sys.stderr, flush=True)
    priors: list[dict[str, Any]] = []
    for tb in TIME_BOOSTS:
        for sb in SPEAKER_BOOSTS:
            over = {**chosen, **({"retrieval.time_boost": tb} if tb != 1.0 else {}),
                    **({"retrieval.speaker_boost": sb} if sb != 1.0 else {})}
            priors.append({"time": tb, "speaker": sb, "hippo": hippo_row(over)})
    top_prior = max(priors, key=lambda r: score(r["hippo"]))
    with_prior = dict(chosen)
    if score(top_prior["hippo"]) - score(best) >= KEEP_GAIN:
        with_prior = {**chosen, **({"retrieval.time_boost": top_prior["time"]} if top_prior["time"] != 1.0 else {}),
                      **({"retrieval.speaker_boost": top_prior["speaker"]} if top_prior["speaker"] != 1.0 else {})}
    candidates: list[dict[str, Any]] = []
    if with_prior != chosen:
        for n in PRIOR_CANDIDATES:
            over = {**with_prior, "retrieval.prior_candidates": n} if n != defaults.prior_candidates else with_prior
            candidates.append({"prior_candidates": n, "hippo": hippo_row(over)})
        pick = max(candidates, key=lambda r: score(r["hippo"]))
        default_row = hippo_row(with_prior)
        if score(pick["hippo"]) - score(default_row) >= KEEP_GAIN:
            with_prior = {**with_prior, "retrieval.prior_candidates": pick["prior_candidates"]}
    print(f"== chosen: {with_prior}", file=sys.stderr, flush=True)
    prior_only = {k: v for k, v in with_prior.items() if k in PRIOR_KEYS}
    others = evaluate(engines, [("dense", "dense", {}), ("dense+priors", "dense", prior_only),
                                ("hipporag2", "hipporag2", {}), ("hipporag2+priors", "hipporag2", prior_only),
                                ("hippo (defaults)", "hippo", {}), ("hippo (chosen)", "hippo", with_prior)])
    show(others["rows"])
    return {"variant": name, "graph": graph, "graph_chosen": chosen, "priors": priors, "prior_candidates": candidates,
            "chosen": with_prior, "rows": others["rows"]}


def final(hgmem_held_out: bool = True) -> dict[str, Any]:
    """The conversation defaults on all 8 conversations, streamed one session per ``add`` with
    no caches (what a user gets), reported for the tuning and the held-out split separately."""
    from hippo.config import Config
    from hippo.conversation import CONVERSATION_SETTINGS, conversation_config
    from hippo.extract import make_extractor as config_extractor
    from hippo.types import Passage

    emb = CachedEmbedder(documents=False)  # question vectors only
    extractor = config_extractor(conversation_config().extract)
    t = time.perf_counter()
    extractor.extract([Passage("warm", "Ada went to Lisbon.", metadata={"speaker": "Ada"})])
    emb.inner.encode_documents(["warm up"])
    warm = time.perf_counter() - t
    defaults = {k: getattr(Config().retrieval, k.split(".", 1)[1]) for k in CONVERSATION_SETTINGS}
    rows: list[Row] = [("dense", "dense", defaults), ("hipporag2 (defaults)", "hipporag2", defaults),
                       ("hippo (defaults)", "hippo", defaults), ("dense (conversation priors)", "dense", {}),
                       ("hipporag2 (conversation)", "hipporag2", {}), ("hippo (conversation)", "hippo", {})]
    out: dict[str, Any] = {"settings": dict(CONVERSATION_SETTINGS), "variant": variant_name(default_variant()),
                           "extractor": extractor.settings(), "warm_up_s": round(warm, 1)}
    for split, ids in (("tuning", TUNING), ("held_out", HELD_OUT)):
        convs = load(ids)
        print(f"[final {split}]", file=sys.stderr, flush=True)
        engines, builds = [], {}
        for conv in convs:
            import hippo

            path, stats = stream(conv, emb, extractor)
            builds[conv["id"]] = stats
            per = [a["seconds"] for a in stats["adds"]]
            print(f"  {conv['id']}: {stats['turns']} turns in {len(per)} adds, {stats['seconds']} s "
                  f"(p50 {np.median(per):.2f} s, max {max(per):.2f} s)", file=sys.stderr, flush=True)
            engines.append((conv, hippo.open_index(path, embedder=emb)))
        res = evaluate(engines, rows + ([("hgmem (conversation, 3 steps)", "hgmem", {})]
                                        if split == "tuning" or hgmem_held_out else []))
        show(res["rows"])
        out[split] = {"conversations": list(ids), "questions": res["questions"],
                      "evidence_missing": res["evidence_missing"], "rows": res["rows"], "query_ms": res["query_ms"],
                      "adds": add_stats([a for st in builds.values() for a in st["adds"]]), "builds": builds}
    return out


def add_stats(adds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Latency of the adds: per add (p50/p95/max), per turn, and how it grows with the index."""
    secs = np.array([a["seconds"] for a in adds])
    turns = np.array([a["turns"] for a in adds], dtype=float)
    size = np.array([a["index_turns"] for a in adds], dtype=float)
    per_turn = 1000 * secs / turns
    buckets = {}
    for lo, hi in ((0, 150), (150, 300), (300, 450), (450, 10**9)):
        sel = (size >= lo) & (size < hi)
        if sel.any():
            buckets[f"{lo}-{hi if hi < 10**9 else ''}"] = {
                "adds": int(sel.sum()), "p50_s": round(float(np.median(secs[sel])), 3),
                "ms_per_turn": round(float(per_turn[sel].mean()), 1)}
    slope = float(np.polyfit(size, per_turn, 1)[0]) * 100 if len(adds) > 2 else 0.0
    return {"writes": len(adds), "turns": int(turns.sum()), "seconds_total": round(float(secs.sum()), 1),
            "per_write_s": {"p50": round(float(np.percentile(secs, 50)), 3), "p95": round(float(np.percentile(secs, 95)), 3),
                            "max": round(float(secs.max()), 3)},
            "ms_per_turn": {"mean": round(float(per_turn.mean()), 1), "p50": round(float(np.median(per_turn)), 1)},
            "by_index_turns": buckets, "ms_per_turn_growth_per_100_indexed": round(slope, 2)}


def diagnose(name: str) -> dict[str, Any]:
    """Issue 23's hypotheses on variant ``name``'s tuning indexes, per evidence turn (a question
    with two evidence turns counts twice): is it in hippo's and in dense's top 5, split by
    what the hypothesis is about: turns without a fact (chit-chat), answers whose question is
    closer to the turn before them, temporal questions that name a date; and the entities
    in the most turns (hubs)."""
    from collections import Counter

    from hippo.conversation import turn_passages
    from hippo.conversation.time import conversation_now, question_dates
    from hippo.ids import normalize

    variant = variant_named(name)
    ev_rows: list[dict[str, Any]] = []
    hubs: dict[str, Any] = {}
    zero = total = 0
    for conv, engine in opened(name, load(TUNING)):
        passages = turn_passages(conv["turns"], title=variant["title"], context=variant["context"])
        triples = {p.id: e.triples for p, e in zip(passages, make_extractor(variant).extract(passages))}
        zero += sum(not t for t in triples.values())
        total += len(triples)
        counts: Counter[str] = Counter()
        for tr in triples.values():
            counts.update({normalize(x) for t in tr for x in (t[0], t[2])})
        speakers = {normalize(t.speaker) for t in conv["turns"]}
        hubs[conv["id"]] = {"top": counts.most_common(3), "speaker_turns": {s: counts.get(s, 0) for s in speakers}}
        questions = [q["question"] for q in conv["questions"]]
        dense, hippo = top(engine, questions, "dense", {}, 5), top(engine, questions, "hippo", {}, 5)
        qv = embedder().encode_queries(questions)
        pv = {p.id: v for p, v in zip(passages, embedder().encode_documents([p.content for p in passages]))}
        now = conversation_now([t.time for t in conv["turns"]])
        index = {t.id: i for i, t in enumerate(conv["turns"])}
        for qi, q in enumerate(conv["questions"]):
            for ev in q["evidence"]:
                if ev not in index:
                    continue
                i = index[ev]
                prev = conv["turns"][i - 1] if i and conv["turns"][i - 1].session == conv["turns"][i].session else None
                ev_rows.append({"category": q["category"], "triples": len(triples[ev]),
                                "dated": bool(question_dates(q["question"], now)),
                                "prev_closer": prev is not None and float(pv[prev.id] @ qv[qi]) > float(pv[ev] @ qv[qi]),
                                "dense5": ev in dense[qi], "hippo5": ev in hippo[qi]})

    def share(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"evidence": len(rows), "dense@5": round(float(np.mean([r["dense5"] for r in rows])), 3) if rows else None,
                "hippo@5": round(float(np.mean([r["hippo5"] for r in rows])), 3) if rows else None}

    return {
        "index": name, "turns_without_facts": round(zero / max(1, total), 3),
        "groups": {
            "chit-chat: evidence turn without a fact": share([r for r in ev_rows if r["triples"] == 0]),
            "evidence turn with facts": share([r for r in ev_rows if r["triples"] > 0]),
            "previous turn closer to the question": share([r for r in ev_rows if r["prev_closer"]]),
            "evidence turn closer to the question": share([r for r in ev_rows if not r["prev_closer"]]),
            "temporal question naming a date": share([r for r in ev_rows if r["category"] == 2 and r["dated"]]),
            "temporal question naming no date": share([r for r in ev_rows if r["category"] == 2 and not r["dated"]]),
        },
        "hubs": hubs,
    }


def environment() -> dict[str, Any]:
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(), "load_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--ablation", action="store_true", help="index-time structures, greedy, tuning split")
    ap.add_argument("--sweep", nargs="?", const="", metavar="VARIANT",
                    help="query-time settings on VARIANT's tuning indexes (default: the ablation's choice)")
    ap.add_argument("--diagnose", action="store_true", help="issue 23's hypotheses on the issue's and the chosen variant")
    ap.add_argument("--final", action="store_true", help="the conversation defaults, streamed, all 8 conversations")
    ap.add_argument("--no-hgmem-held-out", action="store_true", help="final: hgmem on the tuning split only")
    ap.add_argument("--render", action="store_true", help="only rewrite locomo.md from locomo.json")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "locomo.json"
    data = json.loads(path.read_text()) if path.exists() else {}

    def save() -> None:
        path.write_text(json.dumps(data, indent=1) + "\n")
        (RESULTS / "locomo.md").write_text(render(data))

    if not args.render:
        for mode in ("ablation", "sweep", "diagnose", "final"):
            if getattr(args, mode) not in (False, None):
                t = time.perf_counter()
                env = environment()
                if mode == "ablation":
                    data["ablation"] = ablation()
                elif mode == "sweep":
                    data["sweep"] = sweep(args.sweep or data["ablation"]["chosen"])
                elif mode == "diagnose":
                    chosen = data.get("ablation", {}).get("chosen", variant_name(default_variant()))
                    data["diagnose"] = {"variants": [diagnose(n) for n in dict.fromkeys(("issue", chosen))]}
                else:
                    data["final"] = final(hgmem_held_out=not args.no_hgmem_held_out)
                data[mode]["env"] = {**env, "minutes": round((time.perf_counter() - t) / 60, 1),
                                     "load_1min_end": round(os.getloadavg()[0], 2)}
                save()
    save()
    print((RESULTS / "locomo.md").read_text())


HEAD = "| | all | 1 multi-hop | 2 temporal | 3 open-domain | 4 single-hop |\n|---|---|---|---|---|---|"


def _cells(row: dict[str, Any]) -> str:
    return " | ".join(fmt(row, key) for key in ("all", *map(str, CATEGORIES)))


def _env(env: dict[str, Any] | None) -> str:
    if not env:
        return ""
    return (f"Run {env['date']} UTC, {env['machine']}, Python {env['python']}, {env['minutes']} min "
            f"(1-minute load average {env['load_1min']} at the start, {env['load_1min_end']} at the end).")


def _table(rows: dict[str, Any], counts: bool = True) -> list[str]:
    first = next(iter(rows.values()))
    head = HEAD
    if counts:
        head = HEAD.replace("| all |", f"| all ({first['all']['n']}) |")
        for c, label in CATEGORIES.items():
            head = head.replace(f"| {c} {label} |", f"| {c} {label} ({first[str(c)]['n']}) |")
    return [head, *(f"| {label} | {_cells(row)} |" for label, row in rows.items())]


def targets(rows: dict[str, Any], ours: str, dense: str = "dense") -> list[str]:
    """Issue 23's targets, checked: hippo >= dense + 5 points at R@5 and R@10 overall; no
    category more than 2 points below dense at any k."""
    h, d = rows[ours], rows[dense]
    out = []
    for k in ("5", "10"):
        gap = 100 * (h["all"][k] - d["all"][k])
        out.append(f"R@{k} overall: {gap:+.1f} points ({'met' if gap >= 5 else 'NOT met'}: target +5)")
    worst = min(((100 * (h[str(c)][str(k)] - d[str(c)][str(k)]), c, k) for c in CATEGORIES for k in KS))
    out.append(f"worst category gap: {worst[0]:+.1f} points (category {worst[1]} at R@{worst[2]}; "
               f"{'met' if worst[0] >= -2 else 'NOT met'}: target no worse than -2)")
    return out


def render(data: dict[str, Any]) -> str:
    """``locomo.md`` from ``locomo.json``."""
    lines = ["# Conversations: LoCoMo evidence recall@2/5/10", "",
             "Each conversation of `../shared/data/locomo8/` is its own index; a turn is a passage. Recall@k = the share "
             "of a question's evidence turns in the top k, categories 1-4. Tuning split: "
             f"{', '.join(TUNING)}; held out: {', '.join(HELD_OUT)} (run only by `--final`). Cells: R@2/R@5/R@10.", ""]
    fin = data.get("final")
    if fin:
        lines += ["## Final: the conversation defaults, streamed one session per `add`", "",
                  f"`python benchmarks/locomo.py --final`. {_env(fin.get('env'))} A new conversation index "
                  f"(`hippo.conversation.conversation_config()`: the conversation extractor `{fin['extractor']}` "
                  f"and `CONVERSATION_SETTINGS = {fin['settings']}`), one writable engine per conversation, "
                  "`mem.add(turn records)` once per session in order, then a reader. `(defaults)` rows reset the "
                  "settings to hippo's defaults on the same index; `dense` is plain cosine ranking; `dense "
                  "(conversation priors)` is dense with the same time/speaker prior.", ""]
        for split in ("tuning", "held_out"):
            res = fin.get(split)
            if not res:
                continue
            a = res["adds"]
            lines += [f"### {split.replace('_', '-')}: conversations {', '.join(res['conversations'])} "
                      f"({res['questions']} questions; {res['evidence_missing']} evidence ids not in the conversation)", "",
                      *_table(res["rows"]), "",
                      "Issue 23's targets, `hippo (conversation)` against `dense`: " + "; ".join(
                          targets(res["rows"], "hippo (conversation)")) + ".", "",
                      "Query time per question (ms, batch of the split's questions): " + ", ".join(
                          f"{k} {v}" for k, v in res["query_ms"].items()) + ".", "",
                      f"Add latency: {a['writes']} adds (one per session) of {a['turns']} turns in {a['seconds_total']} s; "
                      f"per add p50 {a['per_write_s']['p50']} s, p95 {a['per_write_s']['p95']} s, max "
                      f"{a['per_write_s']['max']} s; {a['ms_per_turn']['mean']} ms per turn (mean). By the number of "
                      "turns already in the index: " + "; ".join(
                          f"{b}: {v['adds']} adds, p50 {v['p50_s']} s, {v['ms_per_turn']} ms/turn"
                          for b, v in a["by_index_turns"].items())
                      + f" (linear fit: {a['ms_per_turn_growth_per_100_indexed']:+.2f} ms per turn for every 100 turns "
                      "indexed).", ""]
            differ = sum(b["passages_differing_from_index_format"] for b in res["builds"].values())
            lines += [f"Passages written by `add` that differ from `hippo index --format conversation`'s: {differ}.", ""]
    sw = data.get("sweep")
    if sw:
        lines += [f"## Query-time sweep (tuning split, variant `{sw['variant']}`, one-shot builds)", "",
                  f"`python benchmarks/locomo.py --sweep`. {_env(sw.get('env'))} `hippo`'s graph and fusion settings by "
                  f"coordinate ascent from the defaults (a change kept when the mean of R@5 and R@10 rises by at least "
                  f"{KEEP_GAIN}), then the time and speaker prior on a grid, then the prior's candidates.", "",
                  "| overrides | hippo R@2/5/10 |", "|---|---|"]
        lines += [f"| `{r['overrides'] or 'defaults'}` | {fmt(r['recall'])} |" for r in sw["graph"]]
        lines += ["", f"Graph settings chosen: `{sw['graph_chosen'] or 'defaults'}`.", "",
                  "| time_boost | speaker_boost | hippo R@2/5/10 |", "|---|---|---|"]
        lines += [f"| {r['time']} | {r['speaker']} | {fmt(r['hippo'])} |" for r in sw["priors"]]
        if sw["prior_candidates"]:
            lines += ["", "| prior_candidates | hippo R@2/5/10 |", "|---|---|"]
            lines += [f"| {r['prior_candidates']} | {fmt(r['hippo'])} |" for r in sw["prior_candidates"]]
        lines += ["", f"Chosen (`CONVERSATION_SETTINGS`): `{sw['chosen']}`. Every retriever with and without them:", "",
                  *_table(sw["rows"]), ""]
    abl = data.get("ablation")
    if abl:
        lines += ["## Ablation (tuning split, one-shot builds)", "",
                  f"`python benchmarks/locomo.py --ablation`. {_env(abl.get('env'))} Greedy from issue 23's setup "
                  "(plain spaCy extractor, title `speaker, session n, date`): each structure is added to the current "
                  f"variant and kept when hippo's mean of R@5 and R@10 rises by at least {KEEP_GAIN}. Chosen: "
                  f"`{abl['chosen']}` (the conversation defaults: `{abl['default']}`).", "",
                  "| structure | gain (mean R@5, R@10) | kept |", "|---|---|---|"]
        lines += [f"| {st['structure']} | {st['gain']:+.4f} | {'yes' if st['kept'] else 'no'} |" for st in abl["steps"]]
        lines += ["", f"Every variant (`+time`: `{TIME}`; `+speaker`: `{SPEAKER}`), and hippo/dense on 41-43 only "
                  "(issue 23's first measurement):", ""]
        for name, res in abl["variants"].items():
            lines += [f"**{name}**", "", *_table(res["rows"], counts=False),
                      f"| (41-43) hippo / dense | {fmt(res['rows_41_43']['hippo'])} / {fmt(res['rows_41_43']['dense'])} | | | | |", ""]
    diag = data.get("diagnose")
    if diag:
        lines += ["## Why hippo lost in issue 23's setup: per evidence turn, share in the top 5 (tuning split)", "",
                  f"`python benchmarks/locomo.py --diagnose`. {_env(diag.get('env'))}", ""]
        for d in diag["variants"]:
            lines += [f"**{d['index']}** (turns without a fact: {d['turns_without_facts']})", "",
                      "| evidence turns | n | dense@5 | hippo@5 |", "|---|---|---|---|"]
            lines += [f"| {g} | {v['evidence']} | {v['dense@5']} | {v['hippo@5']} |" for g, v in d["groups"].items()]
            lines += ["", "Entities in the most turns (turns), and the speakers': " + "; ".join(
                f"{c}: " + ", ".join(f"{n} ({k})" for n, k in h["top"]) + " / " + ", ".join(
                    f"{s} ({k})" for s, k in h["speaker_turns"].items()) for c, h in d["hubs"].items()), ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
