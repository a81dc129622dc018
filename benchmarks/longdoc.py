"""Long documents: MuSiQue-100's paragraphs joined into Markdown documents, chunked, indexed,
and retrieved with hippo, hipporag2 and dense.

    flock /tmp/hippo-cpu.lock python benchmarks/longdoc.py            # sweep + variants, writes results
    python benchmarks/longdoc.py --sizes 192 --variants none          # one configuration

Two corpora are written under benchmarks/.cache/longdoc/:

* ``per-question``: one Markdown document per question, its 20 paragraphs in their given
  order, each under a ``## <paragraph title>`` heading (100 documents, 2,000 paragraphs);
* ``shuffled``: the 1,890 distinct paragraphs shuffled (seed 0) into 10 documents of 189.

Each is indexed as ``hippo index FOLDER --out DIR`` does (:func:`hippo.ingest.pipeline.index_documents`:
the Markdown loader, the chunker, a base built with the spaCy extractor, the texts and the
document registry); every hit's citation comes from the index. Gold-paragraph recall: a supporting paragraph is found when a retrieved
chunk of a document holding it covers at least half of its text (characters of the
paragraph's span in that document). Measured at k = 2, 5, 10 chunks and at a budget of
1,000 and 2,000 retrieved tokens (the chunks' contents in rank order, breadcrumb included,
counted with the embedder's tokenizer; the chunk that crosses the budget counts up to it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "musique100"
CACHE = HERE / ".cache" / "longdoc"
RESULTS = HERE / "results"
RETRIEVERS = ("hippo", "hipporag2", "dense")
KS = (2, 5, 10)
BUDGETS = (1000, 2000)
FETCH = 60


def write_corpora() -> dict[str, dict[str, Any]]:
    """Write both corpora; return, per corpus, where every paragraph is: {(title, text): [(doc id, start, end)]}."""
    questions = json.loads((DATA / "questions.json").read_text())
    where: dict[str, dict[str, Any]] = {}
    per_q: list[tuple[str, list[tuple[str, str]]]] = [
        (f"q{i:03d}.md", [(p["title"], p["paragraph_text"]) for p in q["paragraphs"]]) for i, q in enumerate(questions)
    ]
    unique = list(dict.fromkeys(p for _, ps in per_q for p in ps))
    random.Random(0).shuffle(unique)
    n = len(unique)
    shuffled = [(f"part{j:02d}.md", unique[j * n // 10 : (j + 1) * n // 10]) for j in range(10)]
    for name, docs in (("per-question", per_q), ("shuffled", shuffled)):
        folder = CACHE / "corpora" / name
        folder.mkdir(parents=True, exist_ok=True)
        spans: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
        for fname, paras in docs:
            text = ""
            for title, body in paras:
                text += f"## {title}\n\n"
                spans[(title, body)].append((fname, len(text), len(text) + len(body)))
                text += body + "\n\n"
            target = folder / fname
            if not target.exists() or target.read_text() != text:
                target.write_text(text)
        where[name] = {"folder": folder, "spans": spans, "documents": len(docs), "paragraphs": sum(len(p) for _, p in docs)}
    return where


def gold_of(questions: list[dict[str, Any]]) -> list[list[tuple[str, str]]]:
    """Supporting paragraphs (title, text) of each question."""
    return [[(p["title"], p["paragraph_text"]) for p in q["paragraphs"] if p["is_supporting"]] for q in questions]


def covered(retrieved: list[tuple[str, int, int]], occurrences: list[tuple[str, int, int]]) -> bool:
    """Whether the retrieved spans cover at least half of some occurrence of a paragraph."""
    for doc, s, e in occurrences:
        got = 0
        merged: list[tuple[int, int]] = sorted((a, b) for d, a, b in retrieved if d == doc and a < e and b > s)
        last = s
        for a, b in merged:
            a, b = max(a, last), min(b, e)
            if b > a:
                got += b - a
                last = b
        if got * 2 >= e - s:
            return True
    return False


def evaluate(engine: Any, questions: list[dict[str, Any]], spans: dict[Any, Any], cites: dict[str, list[tuple[str, int, int]]],
             count: Any, cut: Any) -> dict[str, dict[str, float]]:
    """Recall at k and at token budgets, per retriever."""
    golds = gold_of(questions)
    texts = [q["question"] for q in questions]
    out: dict[str, dict[str, float]] = {}
    for retriever in RETRIEVERS:
        t = time.perf_counter()
        results = engine.retrieve_many(texts, k=FETCH, retriever=retriever)
        elapsed = time.perf_counter() - t
        sums: dict[str, float] = defaultdict(float)
        for gold, res in zip(golds, results):
            ranked = []  # (doc, start, end, content tokens, title tokens) per hit in rank order
            for h in res.hits:
                assert (h.document_id, *h.span) in cites[h.passage_id], h  # the hit cites its chunk from the index
                for doc, s, e in cites[h.passage_id]:
                    ranked.append((h.passage_id, doc, s, e))
            for k in KS:
                ids = set(res.passage_ids[:k])
                got = [(d, s, e) for pid, d, s, e in ranked if pid in ids]
                sums[f"R@{k}"] += sum(covered(got, spans[g]) for g in gold) / len(gold)
            for budget in BUDGETS:
                got, used = [], 0
                for h in res.hits:
                    n = count(h.content)
                    if used >= budget:
                        break
                    keep = n if used + n <= budget else budget - used
                    for doc, s, e in cites[h.passage_id]:
                        got.append((doc, s, s + cut(h, keep)))
                    used += keep
                sums[f"B@{budget}"] += sum(covered(got, spans[g]) for g in gold) / len(gold)
        out[retriever] = {k: round(v / len(questions), 4) for k, v in sums.items()}
        out[retriever]["ms_per_query"] = round(1000 * elapsed / len(questions), 2)
    return out


def run_config(name: str, corpus: dict[str, Any], size: int, breadcrumb: str, sections: bool, questions: list[dict[str, Any]],
               rebuild: bool, overrides: list[str]) -> dict[str, Any]:
    from hippo import load_config, open_index
    from hippo.ingest import Chunker, embedder_tokenizer, read_documents
    from hippo.ingest.pipeline import index_documents

    config = load_config(overrides=[f"ingest.chunk_tokens={size}", "extract.extractor=spacy", *overrides])
    tok = embedder_tokenizer(load_config().embed)  # budgets and chunk sizes always in MiniLM tokens
    out = CACHE / "indexes" / name
    result_file = CACHE / f"{name}.json"
    chunker = Chunker(tok, size, config.ingest.chunk_overlap, breadcrumb=breadcrumb, sections=sections)
    docs = read_documents(corpus["folder"])
    passages = [p for d in docs.documents for p in chunker.passages(d)]
    cites: dict[str, list[tuple[str, int, int]]] = defaultdict(list)  # every place a chunk's text is (a shared chunk: several)
    for p in passages:
        s, e = p.metadata["span"]
        cites[p.id].append((p.metadata["document_id"], s, e))
    cached = json.loads(result_file.read_text()) if result_file.exists() else {}
    if cached.get("format") == 2 and out.exists() and not rebuild:
        build = cached["build"]
    else:  # what `hippo index FOLDER --out DIR` does: read, chunk, build the base, store the texts and the registry
        load = os.getloadavg()[0]
        report = index_documents(corpus["folder"], out, config, rebuild=out.exists(), chunker=chunker)
        build = {"counts": report.counts, "timings_s": report.timings_s, "stages_s": report.writes["build"]["timings_s"],
                 "load_average_1m": [round(load, 2), round(os.getloadavg()[0], 2)]}
    engine = open_index(out)

    def cut(hit: Any, keep: int) -> int:
        """Characters of the hit's chunk text within its first ``keep`` content tokens."""
        enc = tok.hf.encode(hit.content, add_special_tokens=False)
        if keep >= len(enc.ids):
            return len(hit.content) - (len(hit.title) + 1 if hit.title else 0)
        end_char = enc.offsets[keep - 1][1] if keep > 0 else 0
        return max(0, end_char - (len(hit.title) + 1 if hit.title else 0))

    recall = evaluate(engine, questions, corpus["spans"], cites, tok.count, cut)
    chunk_tokens = [tok.count(p.content) for p in passages]
    record = {
        "format": 2, "corpus": name.split("__")[0], "chunk_tokens": size, "breadcrumb": breadcrumb, "sections": sections,
        "documents": len(docs.documents), "chunks": len(passages),
        "text_mb": round(sum(len(d.text.encode()) for d in docs.documents) / 1e6, 3), "distinct_passages": build["counts"]["passages"],
        "mean_chunk_tokens": round(sum(chunk_tokens) / len(chunk_tokens), 1), "max_chunk_tokens": max(chunk_tokens),
        "build": build, "recall": recall,
    }
    result_file.write_text(json.dumps(record, indent=1))
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="192,128,254", help="chunk sizes of the sweep (tokens), in the order they run")
    ap.add_argument("--default", type=int, default=192, help="the size the variants are measured at")
    ap.add_argument("--variants", default="title,none,merge", help="breadcrumb/sections variants at the default size (or none)")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override (smoke tests: embed.model=hashing:64)")
    ap.add_argument("--tag", default="", help="suffix of the cache names and the results file (smoke tests)")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    questions = json.loads((DATA / "questions.json").read_text())
    corpora = write_corpora()
    meta = {"command": "python benchmarks/longdoc.py " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "corpora": {k: {"documents": v["documents"], "paragraphs": v["paragraphs"]} for k, v in corpora.items()}}
    sizes = [int(s) for s in args.sizes.split(",")]
    # in order of what a cut-short run should have measured first: the sweep on the long documents,
    # the default on both corpora, the breadcrumb and section variants, then the rest of the sweep
    plan = [("shuffled", size, "path") for size in sizes] + [("per-question", args.default, "path")]
    if args.variants != "none":
        plan += [("per-question", args.default, v) for v in args.variants.split(",")]
    plan += [("per-question", size, "path") for size in sizes if size != args.default]
    runs = []
    RESULTS.mkdir(exist_ok=True)
    for cname, size, variant in plan:
        print(f"== {cname} size {size} {variant}", flush=True)
        crumb, sections = (variant, True) if variant in ("path", "title", "none") else ("path", False)
        runs.append(run_config(f"{cname}__{size}__{variant}{args.tag}", corpus=corpora[cname], size=size, breadcrumb=crumb,
                               sections=sections, questions=questions, rebuild=args.rebuild, overrides=args.overrides))
        # written after every run: an interrupted sweep keeps what it measured
        (RESULTS / f"longdoc{args.tag}.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
        (RESULTS / f"longdoc{args.tag}.md").write_text(render(meta, runs, args.default))
    print((RESULTS / f"longdoc{args.tag}.md").read_text())


def render(meta: dict[str, Any], runs: list[dict[str, Any]], default: int) -> str:
    """The Markdown report of the runs."""
    cols = [f"R@{k}" for k in KS] + [f"B@{b}" for b in BUDGETS]
    lines = [
        "# Long documents: MuSiQue-100 paragraphs joined into Markdown documents", "",
        f"`{meta['command']}` on {meta['date']}, {meta['machine']}. Embedder all-MiniLM-L6-v2, spaCy OpenIE.", "",
        "Corpora: " + "; ".join(f"`{k}` {v['documents']} documents, {v['paragraphs']} paragraphs" for k, v in meta["corpora"].items())
        + ". Gold-paragraph recall: a supporting paragraph counts when retrieved chunks of a document holding it cover at "
        "least half of its text; R@k over the top k chunks, B@n over the first n tokens retrieved (chunk contents in rank "
        "order, breadcrumb included, MiniLM tokens).", "",
    ]
    for title, pick in (
        (f"Chunk-size sweep (breadcrumb = title and heading path, cut at headings)",
         lambda r: r["breadcrumb"] == "path" and r["sections"]),
        (f"Variants at {default} tokens (per-question corpus)", lambda r: r["chunk_tokens"] == default and r["corpus"] == "per-question"),
    ):
        lines += [f"## {title}", "", "| corpus | tokens | breadcrumb | cut at headings | chunks | retriever | " + " | ".join(cols) + " |",
                  "|---|---|---|---|---|---|" + "---|" * len(cols)]
        for r in runs:
            if not pick(r):
                continue
            for ret in RETRIEVERS:
                rec = r["recall"][ret]
                lines.append(f"| {r['corpus']} | {r['chunk_tokens']} | {r['breadcrumb']} | {'yes' if r['sections'] else 'no'} | "
                             f"{r['chunks']} | {ret} | " + " | ".join(f"{rec[c]:.3f}" for c in cols) + " |")
        lines.append("")
    lines += ["## hippo against dense at the default", "", "| corpus | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for r in runs:
        if r["chunk_tokens"] == default and r["breadcrumb"] == "path" and r["sections"]:
            h, d = r["recall"]["hippo"], r["recall"]["dense"]
            lines.append(f"| {r['corpus']} | " + " | ".join(f"{h[c] - d[c]:+.3f}" for c in cols) + " |")
    lines += ["", "## Ingestion throughput (default chunking)", "",
              "`hippo index FOLDER` as a first run (a base), each corpus in its own run; the 1-minute load average of "
              "the machine (2 cores, shared) before and after.", "",
              "| corpus | documents | chunks | MB of text | seconds | documents/s | chunks/s | MB/minute | load before, after | extract s | embed s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    at_default = [r for r in runs if r["chunk_tokens"] == default and r["breadcrumb"] == "path" and r["sections"]]
    for r in at_default:
        t, st, la = r["build"]["timings_s"], r["build"]["stages_s"], r["build"]["load_average_1m"]
        mb = r.get("text_mb", 0.0)
        lines.append(f"| {r['corpus']} | {r['documents']} | {r['chunks']} | {mb} | {t['total']:.1f} | {r['documents'] / t['total']:.3f} | "
                     f"{r['chunks'] / t['total']:.1f} | {60 * mb / t['total']:.2f} | {la[0]}, {la[1]} | {st['extract']:.1f} | {st['embed']:.1f} |")
    for r in at_default:
        if r["corpus"] == "shuffled":
            t, st = r["build"]["timings_s"], r["build"]["stages_s"]
            total = t["total"]
            stages = {"read (hash, load, parse)": t["read"], "chunk": t["chunk"],
                      **{f"index: {k}": v for k, v in st.items() if k != "total"}, "texts and registry": t["registry"]}
            lines += ["", f"Stages on the 10-document corpus (reading and chunking alone: "
                      f"{r['chunks'] / (t['read'] + t['chunk']):.0f} chunks/s):", "", "| stage | seconds | share |", "|---|---|---|"]
            lines += [f"| {k} | {v:.2f} | {100 * v / total:.1f}% |" for k, v in stages.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
