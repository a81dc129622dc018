"""``hippo eval``: Recall@k on a questions file; with ``--qa``, EM and F1 of the LLM reader."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hippo.cli.common import add_config_args, overrides_dict, print_json, set_threads
from hippo.cli.llm_args import add_llm_args
from hippo.cli.query_cmd import filter_overrides
from hippo.engine import DEFAULT_RETRIEVER, RETRIEVERS, open_index
from hippo.errors import ConfigError
from hippo.evaluation import evaluate, load_questions, qa_metrics
from hippo.hgmem import REASONERS
from hippo.retrieval.retrievers import get_retriever


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "eval", help="Recall@k on a questions file",
        description="Recall@1/2/5/10/20 of index DIR on HippoRAG 2-format questions (MuSiQue paragraphs "
        "with is_supporting, or HotpotQA/2Wiki supporting_facts).",
    )
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("--questions", required=True, metavar="FILE", help="questions file")
    p.add_argument(
        "--retriever", choices=RETRIEVERS, default=DEFAULT_RETRIEVER,
        help="hippo (default: HippoRAG 2 + query-entity seeds + dense fusion), hipporag2 (the reference algorithm), "
        "dense, or hgmem (multi-step with a hypergraph memory)",
    )
    p.add_argument(
        "--reasoner", choices=REASONERS,
        help="hgmem: offline (default, no LLM) or llm (the --llm-* endpoint); needs --retriever hgmem",
    )
    p.add_argument("--per-question", metavar="FILE", help="write per-question results as JSON Lines")
    p.add_argument("--limit", type=int, help="evaluate only the first N questions")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--qa", action="store_true", help="also answer each question with the LLM reader and report EM and F1")
    p.add_argument("--filter", choices=["none", "llm"], help="recognition memory on (llm) or off; default: the llm.filter setting")
    add_config_args(p)
    add_llm_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    questions = load_questions(args.questions)[: args.limit]
    if args.reasoner is not None and not get_retriever(args.retriever).multi_step:
        raise ConfigError(f"--reasoner applies to a multi-step retriever (--retriever hgmem), not {args.retriever}")
    engine = open_index(args.index, {**overrides_dict(args), **filter_overrides(args)})
    set_threads(engine.config.runtime.threads)
    if args.reasoner is not None:
        engine.memory_reasoner = args.reasoner
    report = evaluate(engine, questions, args.retriever)
    per_question = report.pop("per_question")
    if engine.config.llm.filter and get_retriever(args.retriever).filters_facts:
        report["filter"] = {"model": engine.config.llm.model,
                            "fell_back_to_dense": sum(p["mode"] == "dense" for p in per_question)}
    if args.qa:
        answers = engine.answer_many([q.question for q in questions], retriever=args.retriever)
        report["qa"] = {
            "model": engine.config.llm.model, "passages_read": engine.config.llm.qa_top_k,
            **qa_metrics([a.answer for a in answers], [q.answers for q in questions]),
            "unanswered": sum(bool(a.error) for a in answers),
        }
        for row, a, q in zip(per_question, answers, questions):
            row["answer"], row["gold_answers"] = a.answer, list(q.answers)
    if args.reasoner == "llm":
        report["reasoner"] = {"name": "llm", "model": engine.config.llm.model}
    if args.qa or engine.config.llm.filter or args.reasoner == "llm":
        report["llm_usage"] = engine.llm.usage()
    if args.per_question:
        path = Path(args.per_question)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in per_question), encoding="utf-8")
    if args.json:
        print_json(report)
        return 0
    r = report["recall"]
    print(f"{report['retriever']} on {report['questions']} questions")
    print("Recall@" + "  ".join(f"{k}: {v:.3f}" for k, v in r.items()))
    print(f"gold passages not found in the index: {report['gold_missing']}")
    print(f"latency per query: p50 {report['latency_ms']['p50']:.1f} ms, p95 {report['latency_ms']['p95']:.1f} ms")
    if "qa" in report:
        qa = report["qa"]
        print(f"QA ({qa['model']}, {qa['passages_read']} passages read): EM {qa['em']:.3f}  F1 {qa['f1']:.3f}"
              + (f"  ({qa['unanswered']} unanswered)" if qa["unanswered"] else ""))
    return 0
