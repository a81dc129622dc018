"""``hippo ask``: retrieve, then let the LLM reader answer with the passages it read."""

from __future__ import annotations

import argparse
import dataclasses

from hippo.cli.common import add_config_args, overrides_dict, print_json, set_threads
from hippo.cli.llm_args import add_llm_args
from hippo.cli.query_cmd import citation, filter_overrides
from hippo.engine import DEFAULT_RETRIEVER, RETRIEVERS, open_index
from hippo.errors import HippoError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ask", help="answer a question from the index with an LLM reader",
        description="Retrieve the top passages of index DIR for QUESTION, then ask the LLM (any OpenAI-"
        "compatible server) to answer from them, HippoRAG 2's QA step. Prints the answer and the passages read.",
    )
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("question", help="the question")
    p.add_argument("-k", type=int, help="passages the reader sees (default llm.qa_top_k = 5)")
    p.add_argument("--retriever", choices=RETRIEVERS, default=DEFAULT_RETRIEVER, help="retriever (default hippo)")
    p.add_argument("--filter", choices=["none", "llm"], help="recognition memory before ranking (default: llm.filter, off)")
    p.add_argument("--show-reasoning", action="store_true", help="print the reader's whole reply")
    p.add_argument("--json", action="store_true", help="print the answer, the passages and the usage as JSON")
    add_config_args(p)
    add_llm_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.k is not None and args.k < 1:
        raise HippoError(f"-k must be >= 1, got {args.k}")
    engine = open_index(args.index, {**overrides_dict(args), **filter_overrides(args)})
    set_threads(engine.config.runtime.threads)
    answer = engine.answer(args.question, k=args.k, retriever=args.retriever)
    if answer.error:
        raise HippoError(f"the reader gave no usable answer: {answer.error}")
    if args.json:
        data = dataclasses.asdict(answer)
        data["llm_usage"] = engine.llm.usage()
        print_json(data)
        return 0
    print(f"Answer: {answer.answer}")
    if args.show_reasoning:
        print(f"\nReasoning ({engine.config.llm.model}):\n{answer.reply.strip()}")
    print(f"\nPassages read ({len(answer.passages)}):")
    for h in answer.passages:
        snippet = " ".join(h.content.split("\n", 1)[-1].split())
        snippet = snippet[:140] + ("…" if len(snippet) > 140 else "")
        print(f"  [{h.rank + 1}] {h.title or h.passage_id}  ({h.passage_id})\n      {snippet}")
        if h.source:
            print(f"      {citation(h)}")
    return 0
