"""``hippo query``: retrieve passages for one question."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from hippo.cli.common import add_config_args, overrides_dict, print_json, set_threads
from hippo.cli.llm_args import add_llm_args, llm_overrides
from hippo.engine import DEFAULT_RETRIEVER, RETRIEVERS, open_index
from hippo.hgmem import REASONERS
from hippo.retrieval.retrievers import get_retriever
from hippo.types import Hit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("query", help="retrieve passages for a question", description="Retrieve the top passages of index DIR for QUESTION.")
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("question", help="the question")
    p.add_argument("-k", type=int, default=5, help="passages to return (default 5)")
    p.add_argument(
        "--retriever", choices=RETRIEVERS, default=DEFAULT_RETRIEVER,
        help="hippo (default: HippoRAG 2 + query-entity seeds + dense fusion), hipporag2 (the reference algorithm), "
        "dense, or hgmem (multi-step with a hypergraph memory)",
    )
    p.add_argument("--memory", choices=["none", "hgmem"], default="none", help="hgmem: multi-step retrieval with a hypergraph working memory (same as --retriever hgmem)")
    p.add_argument("--steps", type=int, help="hgmem: retrieval steps (default: retrieval.memory_steps, 3)")
    p.add_argument(
        "--reasoner", choices=REASONERS,
        help="hgmem: who evolves the memory and plans the steps: offline (default, rules, no LLM) or llm "
        "(the --llm-* endpoint: concerns and subqueries); implies --memory hgmem",
    )
    p.add_argument("--explain", action="store_true", help="hgmem: print how the memory evolved, step by step")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--to-neo4j", action="store_true", help="store the seeds and top passages in Neo4j (NEO4J_URI or the local server)")
    p.add_argument(
        "--filter", choices=["none", "llm"],
        help="recognition memory: llm lets the LLM keep only the linked facts that help (HippoRAG 2); "
        "default: the llm.filter setting (off)",
    )
    add_config_args(p)
    add_llm_args(p)
    p.set_defaults(func=run)


def filter_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The ``llm.*`` overrides of ``--filter`` and the ``--llm-*`` flags."""
    out: dict[str, object] = dict(llm_overrides(args))
    if getattr(args, "filter", None):
        out["llm.filter"] = args.filter == "llm"
    return out


def run(args: argparse.Namespace) -> int:
    engine = open_index(args.index, {**overrides_dict(args), **filter_overrides(args)})
    set_threads(engine.config.runtime.threads)
    multi = args.memory == "hgmem" or args.steps is not None or args.reasoner is not None
    retriever = "hgmem" if multi else args.retriever
    hgmem = get_retriever(retriever).multi_step
    result = engine.retrieve(
        args.question, k=args.k, retriever=retriever, steps=args.steps if hgmem else None,
        reasoner=args.reasoner if hgmem else None,
    )
    if args.to_neo4j:
        from hippo.export.neo4j_bolt import resolve_target, write_query_activation

        target = resolve_target()
        wrote = write_query_activation(engine.path, result, target)
        print(f"stored query {wrote['id']} in Neo4j at {target.uri}: {wrote['seeds']} seeds, {wrote['retrieved']} passages", file=sys.stderr)
    if args.json:
        print_json(dataclasses.asdict(result))
        return 0
    how = {"ppr": "graph (Personalized PageRank)", "hgmem": "multi-step graph retrieval with a hypergraph memory"}.get(result.mode, "dense similarity")
    if result.mode == "ppr" and engine.config.retrieval.dense_fusion and get_retriever(retriever).names_entities:
        how += " fused with dense similarity"
    print(f"{len(result.hits)} passages by {how}:")
    for h in result.hits:
        snippet = " ".join(h.content.split("\n", 1)[-1].split())
        snippet = snippet[:160] + ("…" if len(snippet) > 160 else "")
        said = ""
        if h.metadata.get("speaker"):  # a conversation turn: who said it, in which session, when
            said = f"  {h.metadata['speaker']}, session {h.metadata.get('session', '?')}, {h.metadata.get('time') or 'no time'}"
        print(f"{h.rank + 1:>3}. [{h.score:.4f}] {h.title or h.passage_id}  ({h.passage_id}){said}\n     {snippet}")
        if h.source:
            print(f"     {citation(h)}")
    if result.prior:
        print(f"conversation prior: {result.prior}")
    if result.filter:
        print(f"recognition filter ({engine.config.llm.model}): {result.filter}")
    if result.facts:
        print("linked facts" + (" kept by the filter:" if result.filter else ":"))
        for f in result.facts:
            print(f"     {f.score:.3f}  ({f.fact.subject} | {f.fact.relation} | {f.fact.object})")
    if result.rejected_facts:
        print("linked facts the filter dropped:")
        for f in result.rejected_facts:
            print(f"     {f.score:.3f}  ({f.fact.subject} | {f.fact.relation} | {f.fact.object})")
    if result.seeds:
        mark = {"fact": "", "query": ", named", "fact+query": ", fact+named"}
        print("seed entities: " + ", ".join(f"{s.name} ({s.weight:.3f}{mark.get(s.source, '')})" for s in result.seeds))
    if result.memory is not None and args.explain:
        print_memory(result.memory)
    return 0


def citation(h: Hit) -> str:
    """Where a chunk comes from: ``from SOURCE § Heading > Sub, chars START-END (page N)``."""
    where = f"from {h.source}"
    if h.headings:
        where += " § " + " > ".join(h.headings)
    where += f", chars {h.span[0]}-{h.span[1]}"
    page = h.metadata.get("page")
    return where + (f" (page {page})" if page else "")


def print_memory(memory: dict) -> None:  # type: ignore[type-arg]
    """The ``--explain`` trace of an ``hgmem`` run."""
    print(f"reasoner: {memory.get('reasoner', 'offline')}")
    for st in memory["steps"]:
        seeds = f" from {', '.join(st['seeds'])}" if st["seeds"] else ""
        shown = [t or i for t, i in zip(st.get("titles") or st["passages"], st["passages"])]
        print(f"step {st['step']} ({st['mode']}{seeds}): top passages: {'; '.join(shown)}")
        for op in st["operations"]:
            print(f"     memory: {op}")
        for c in st["concerns"]:
            print(f"     concern: {c}")
        for q in st["subqueries"]:
            print(f"     subquery: {q}")
        nxt = "stop" if st["stop"] else "next: " + (", ".join(st["next"]) or "global exploration")
        print(f"     {nxt} ({st['reason']})")
    print("memory points:")
    for i, pt in enumerate(memory["points"]):
        desc = pt["description"][:200] + ("…" if len(pt["description"]) > 200 else "")
        print(f"  #{i} {{{', '.join(pt['vertices'])}}}  {desc}")
