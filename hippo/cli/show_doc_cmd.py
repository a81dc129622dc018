"""``hippo show-doc``: list an index's documents, or print one (or a span of it)."""

from __future__ import annotations

import argparse

from hippo.cli.common import print_json
from hippo.documents import document, list_documents
from hippo.errors import HippoError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "show-doc", help="list the documents of an index, or print one",
        description="Without DOC: list the documents of index DIR. With DOC (a document id or source path): print its "
        "extracted text, the text a hit's span [start, end) indexes, or only --span START:END of it.",
    )
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("doc", nargs="?", metavar="DOC", help="document id or source path")
    p.add_argument("--span", metavar="START:END", help="print only these character offsets of the text")
    p.add_argument("--json", action="store_true", help="print as JSON (with the chunks, their headings and spans)")
    p.set_defaults(func=run)


def parse_span(raw: str, length: int) -> tuple[int, int]:
    """``START:END`` as offsets within ``[0, length]``."""
    start, sep, end = raw.partition(":")
    try:
        s, e = int(start or 0), int(end) if end else length
    except ValueError:
        raise HippoError(f"--span {raw!r} must look like START:END, e.g. --span 120:480") from None
    if not sep or not 0 <= s <= e <= length:
        raise HippoError(f"--span {raw!r} must be START:END with 0 <= START <= END <= {length} (the text's length)")
    return s, e


def run(args: argparse.Namespace) -> int:
    if args.doc is None:
        if args.span:
            raise HippoError("--span needs a document: hippo show-doc DIR DOC --span START:END")
        docs = list_documents(args.index)
        if args.json:
            print_json(docs)
            return 0
        if not docs:
            print(f"{args.index} has no documents (it was built from a passage corpus: each passage is its own document)")
        for d in docs:
            print(f"{d['id']}  ({d['kind']}, {d['chunks']} chunks)  {d['title']}  [{d['source']}]")
        return 0
    doc = document(args.index, args.doc)
    text: str = doc["text"]
    if args.span:
        s, e = parse_span(args.span, len(text))
        doc = {**doc, "span": [s, e], "text": text[s:e]}
    if args.json:
        print_json(doc)
    else:
        print(doc["text"])
    return 0
