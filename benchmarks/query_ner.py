"""Query-time entity mentions: spaCy NER against a matcher over the index's entity names (issue 22).

    python benchmarks/query_ner.py musique=benchmarks/.cache/musique100-openie:/work/shared/data/musique100/questions.json \
        2wiki=benchmarks/.cache/2wiki-spacy:benchmarks/data/2wiki_handwritten.json
    python benchmarks/query_ner.py --automaton-names 5000000      # + build cost of a matcher over 5M names

For each index and question file, the entities each question links to, found four ways:

* ``spacy`` (``retrieval.query_ner=true``, the default before and after): capitalised n-grams
  equal to an entity name, plus spaCy NER mentions, each linked by exact name or, when none
  matches, to the nearest entity by embedding (cosine >= ``query_entity_threshold``);
* ``names`` (``query_ner=false``): the capitalised n-grams only;
* ``matcher``: an Aho-Corasick automaton (``ahocorasick_rs``) over the entity names, folded
  (normalised and accents removed) on both sides, every word-aligned occurrence in the
  question, longest first, kept under the same proper-noun cue as ``names``;
* ``matcher-nocue``: the same without the cue (every occurrence);
* ``caps``: as ``spacy``, with runs of capitalised words as the mentions instead of NER's.

Reported per variant: recall of the entities ``spacy`` links (and how many more it links),
milliseconds per question of finding and linking them (for ``spacy``: NER, embedding the
mentions that match no name and the nearest-entity search; the question's own embedding is
excluded everywhere), and Recall@1/2/5/10/20 of the ``hippo`` retriever with those entities.
``--automaton-names`` also builds the automaton over that many synthetic names (time, memory):
what a matcher would cost at 10^6 passages (~5M entity names).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
KS = (1, 2, 5, 10, 20)


def fold(text: str) -> str:
    """:func:`hippo.ids.normalize` with accents removed (``Aschenbrödel`` -> ``aschenbrodel``)."""
    from hippo.ids import normalize

    decomposed = unicodedata.normalize("NFKD", normalize(text))
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


class NameMatcher:
    """Aho-Corasick over folded entity names; finds word-aligned occurrences in a question."""

    def __init__(self, names: Sequence[str]) -> None:
        import ahocorasick_rs

        folded: dict[str, int] = {}
        for i, name in enumerate(names):
            key = fold(name)
            if key:
                folded.setdefault(key, i)
        self.patterns = list(folded)
        self.rows = np.fromiter(folded.values(), dtype=np.int64, count=len(folded))
        self.automaton = ahocorasick_rs.AhoCorasick(self.patterns, implementation=ahocorasick_rs.Implementation.ContiguousNFA)

    def find(self, query: str, cue: bool, min_single: int = 3) -> list[int]:
        """Entity rows named in ``query``: longest occurrences first, non-overlapping; with
        ``cue``, only spans holding a capitalised word that does not open the question."""
        from hippo.retrieval.query_entities import _words

        words = _words(query)
        folded_words = [fold(w) for w in words]
        text = " ".join(folded_words)
        starts, pos = {}, 0
        for i, w in enumerate(folded_words):
            starts[pos] = i
            pos += len(w) + 1
        capital = [i > 0 and w[:1].isupper() for i, w in enumerate(words)]
        spans = []
        for pattern, start, end in self.automaton.find_matches_as_indexes(text, overlapping=True):
            if start not in starts or (end < len(text) and text[end] != " "):
                continue  # not word-aligned
            first = starts[start]
            last = first + text[start:end].count(" ")
            if first == last and end - start < min_single:
                continue
            if cue and not any(capital[first : last + 1]):
                continue
            spans.append((last - first + 1, first, last, int(self.rows[pattern])))
        taken = [False] * len(words)
        found = []
        for _, first, last, row in sorted(spans, key=lambda s: (-s[0], s[1])):
            if not any(taken[first : last + 1]):
                taken[first : last + 1] = [True] * (last - first + 1)
                found.append(row)
        return list(dict.fromkeys(found))


CONNECTORS = {"of", "the", "and", "de", "del", "la", "le", "von", "van", "der", "du", "da", "for", "in", "on", "at", "to", "a"}
OPENERS = {"who", "what", "when", "where", "which", "why", "how", "whose", "whom", "in", "the", "a", "an", "is", "was",
           "are", "were", "did", "does", "do", "during", "besides", "after", "before", "since", "from", "on", "at", "for",
           "of", "by", "as", "with", "this", "that", "there", "it", "if", "about"}


def capital_mentions(query: str) -> list[str]:
    """Runs of capitalised words (and numbers), joined through lower-case connectors
    ("Judiciary Act of 1869"); the opening word only when it is not a question or function word."""
    from hippo.retrieval.query_entities import _words

    words = _words(query)
    strong = [(w[:1].isupper() or w.isdigit()) and not (i == 0 and w.lower() in OPENERS) for i, w in enumerate(words)]
    out, run = [], []
    for i, w in enumerate(words):
        if strong[i]:
            run.append(w)
        elif run and w.lower() in CONNECTORS and i + 1 < len(words) and strong[i + 1]:
            run.append(w)
        elif run:
            out.append(" ".join(run))
            run = []
    if run:
        out.append(" ".join(run))
    return list(dict.fromkeys(m for m in out if not m.isdigit()))


def pct(ms: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 3), "p95": round(float(np.percentile(ms, 95)), 3)}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(index: str, questions_file: str, rounds: int) -> dict[str, Any]:
    from hippo import open_index
    from hippo.engine import QueryBatch
    from hippo.evaluation import GoldMatcher, load_questions, recall_at
    from hippo.ids import normalize
    from hippo.retrieval.query_entities import link_mentions, match_names

    engine = open_index(index)
    engine.warm()
    questions = load_questions(questions_file)
    texts = [q.question for q in questions]
    names = engine.name_index()
    cfg = engine.config.retrieval
    recognizer = engine._recognizer
    t = time.perf_counter()
    before = rss_mb()
    matcher = NameMatcher(engine.entity_names)
    build = {"seconds": round(time.perf_counter() - t, 3), "rss_mb": round(rss_mb() - before, 1),
             "names": len(engine.entity_names), "patterns": len(matcher.patterns)}

    def linked_mentions(q: str, mentions: list[str]) -> list[int]:
        pending = [m for m in mentions if normalize(m) not in names]
        nearest: dict[str, tuple[int, float]] = {}
        if pending:
            best, cos = engine._nearest_entities(engine.embedder.encode_queries(pending))
            nearest = {m: (int(b), float(c)) for m, b, c in zip(pending, best, cos)}

        def lookup(ms: Sequence[str]) -> tuple[Any, Any]:
            return np.array([nearest[m][0] for m in ms], dtype=np.int64), np.array([nearest[m][1] for m in ms])

        return list(dict.fromkeys([*match_names(q, names), *link_mentions(mentions, names, lookup, cfg.query_entity_threshold)]))

    variants = {
        "spacy": lambda q: linked_mentions(q, recognizer.mentions([q])[0]),
        "caps": lambda q: linked_mentions(q, capital_mentions(q)),
        "names": lambda q: match_names(q, names),
        "matcher": lambda q: list(dict.fromkeys([*match_names(q, names), *matcher.find(q, cue=True)])),
        "matcher-nocue": lambda q: list(dict.fromkeys([*match_names(q, names), *matcher.find(q, cue=False)])),
    }
    linked = {name: [fn(q) for q in texts] for name, fn in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for q in texts:
            for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
                s = time.perf_counter()
                variants[name](q)
                times[name].append(1000 * (time.perf_counter() - s))

    prepared = engine.prepare(texts)
    gold_of = GoldMatcher(engine.passage_ids, engine.passage_titles, engine.passage_contents)
    golds = [[gold_of.match(t, c)[0] or f"\x00missing{i}" for i, (t, c) in enumerate(q.gold)] for q in questions]
    reference = linked["spacy"]
    assert [list(e) for e in prepared.entities] == reference, "spacy variant differs from Engine.prepare"
    out: dict[str, Any] = {"index": index, "questions": questions_file, "n": len(texts), "matcher_build": build, "variants": {}}
    for name in variants:
        batch = QueryBatch(prepared.queries, prepared.fact_vectors, prepared.passage_vectors, tuple(tuple(e) for e in linked[name]))
        rankings = engine.rank_prepared(batch, max(KS), "hippo")
        ranked = [[engine.passage_ids[i] for i in r.passages.tolist()] for r in rankings]
        recall = {str(k): round(float(np.mean([recall_at(rk, g, k) for rk, g in zip(ranked, golds)])), 4) for k in KS}
        ref_total = sum(len(e) for e in reference)
        hit = sum(len(set(a) & set(b)) for a, b in zip(linked[name], reference))
        extra = sum(len(set(a) - set(b)) for a, b in zip(linked[name], reference))
        out["variants"][name] = {
            "entities_linked": sum(len(e) for e in linked[name]),
            "recall_of_spacy_links": round(hit / max(ref_total, 1), 4), "links_spacy_does_not": extra,
            "ms_per_question": pct(times[name]), f"recall_at_k_{'hippo'}": recall,
        }
        print(f"{Path(index).name:24s} {name:14s} links {out['variants'][name]['entities_linked']:4d} "
              f"recall-of-spacy {out['variants'][name]['recall_of_spacy_links']:.3f} extra {extra:3d} "
              f"ms p50 {pct(times[name])['p50']:.3f} p95 {pct(times[name])['p95']:.3f}  R@ {recall}", file=sys.stderr)
    return out


def automaton_cost(n: int, seed: int = 0) -> dict[str, Any]:
    """Build the automaton over ``n`` synthetic entity names shaped like real ones (1-4 words
    drawn from a Zipf-like vocabulary): seconds and resident memory."""
    import ahocorasick_rs

    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10))) for _ in range(200_000)]
    names = list({" ".join(vocab[min(int(rng.paretovariate(0.7)) - 1, len(vocab) - 1)] if j == 0 else rng.choice(vocab)
                           for j in range(rng.choice((1, 2, 2, 3, 3, 4))))
                  for _ in range(n)})
    gc.collect()
    before = rss_mb()
    t = time.perf_counter()
    automaton = ahocorasick_rs.AhoCorasick(names, implementation=ahocorasick_rs.Implementation.ContiguousNFA)
    seconds = time.perf_counter() - t
    grown = rss_mb() - before
    query = " ".join(rng.choice(vocab) for _ in range(20))
    s = time.perf_counter()
    for _ in range(1000):
        automaton.find_matches_as_indexes(query, overlapping=True)
    return {"names": len(names), "name_chars_mb": round(sum(map(len, names)) / 2**20, 1), "build_s": round(seconds, 2),
            "automaton_rss_mb": round(grown, 1), "search_us_per_question": round(1e6 * (time.perf_counter() - s) / 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", help="NAME=INDEX_DIR:QUESTIONS_FILE")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--automaton-names", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results" / "query_ner.json"))
    args = ap.parse_args()
    result: dict[str, Any] = {"sets": {}, "command": " ".join(["python", "benchmarks/query_ner.py", *sys.argv[1:]])}
    for item in args.sets:
        name, _, rest = item.partition("=")
        index, _, qfile = rest.partition(":")
        result["sets"][name] = measure(index, qfile, args.rounds)
    if args.automaton_names:
        result["automaton"] = automaton_cost(args.automaton_names)
        print(json.dumps(result["automaton"]), file=sys.stderr)
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: {v: r["recall_at_k_hippo"] for v, r in s["variants"].items()} for k, s in result["sets"].items()}))


if __name__ == "__main__":
    main()
