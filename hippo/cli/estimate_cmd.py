"""``hippo estimate``: tokens, calls and cost of LLM OpenIE over a corpus, before spending."""

from __future__ import annotations

import argparse
from pathlib import Path

from hippo.cli.common import add_config_args, print_json, resolve_config
from hippo.cli.llm_args import add_llm_args, with_llm_args
from hippo.corpus import read_corpus
from hippo.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "estimate", help="tokens, calls and cost of LLM OpenIE over a corpus (no LLM call is made)",
        description="Count the prompt tokens hippo's LLM OpenIE would send for CORPUS (both steps), the "
        "expected reply tokens, the number of calls, and the cost at the given prices. Requests already in "
        "the response cache are left out. Nothing is sent to any server.",
    )
    p.add_argument("corpus", help="corpus file or folder (as for hippo index)")
    p.add_argument("--extractor", choices=["llm"], default="llm", help="only llm has a cost (default)")
    p.add_argument("--price-in", type=float, metavar="USD", help="price per million input tokens")
    p.add_argument("--price-out", type=float, metavar="USD", help="price per million output tokens")
    p.add_argument("--tokenizer", default="auto",
                   help="auto (tiktoken when it can load the model's encoding, else approx), approx, "
                   "tiktoken:<encoding>, or the path of the served model's tokenizer.json")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    add_config_args(p)
    add_llm_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hippo.llm.estimate import estimate_openie, make_counter

    for name in ("price_in", "price_out"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    config = with_llm_args(resolve_config(args), args)
    passages = read_corpus(args.corpus)
    count, described = make_counter(args.tokenizer, config.llm.model)
    cache = None
    if config.llm.cache != "off":
        from hippo.llm.cache import ResponseCache, default_cache_path

        path = Path(config.llm.cache) if config.llm.cache else default_cache_path()
        cache = ResponseCache(path) if path.exists() else None  # estimating never creates a cache
    est = estimate_openie(
        passages, config.llm.model, count, described, price_in=args.price_in, price_out=args.price_out,
        cache=cache, params={"temperature": config.llm.temperature, "max_tokens": config.llm.max_tokens},
    )
    if args.json:
        print_json({"model": config.llm.model, **est.to_dict()})
        return 0
    tin, tout = est.input_tokens, est.output_tokens
    print(f"LLM OpenIE of {est.passages} passages with {config.llm.model} (tokens counted by {est.tokenizer}):")
    if est.cached_passages:
        print(f"  {est.cached_passages} passages are already in the response cache and cost nothing")
    print(f"  calls:          {est.calls:,}")
    print(f"  input tokens:   {sum(tin.values()):,} (entities {tin['entities']:,}, triples {tin['triples']:,})")
    print(f"  output tokens:  {sum(tout.values()):,} expected (entities {tout['entities']:,}, triples {tout['triples']:,})")
    if est.cost is not None:
        print(f"  cost:           {est.cost:.2f} at {args.price_in} / {args.price_out} per million input / output tokens")
    else:
        print("  cost:           give --price-in and --price-out (per million tokens) to price it")
    return 0
