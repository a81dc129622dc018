"""Documents in: loaders by file type, structure-aware chunking, and re-run planning.

``read_documents(folder)`` reads Markdown, text, HTML, PDF and JSON/JSONL documents
(:mod:`hippo.ingest.loaders`); a :class:`Chunker` turns each into passages that carry
their citation (document id, source, heading path, character span); :mod:`hippo.ingest.plan`
decides what a re-run over a folder re-indexes. :func:`index_documents` does all of it into
an index directory.
"""

from __future__ import annotations

from hippo.ingest.chunking import Chunk, Chunker, Tokenizer, embedder_tokenizer
from hippo.ingest.collect import DocumentSet, Skipped, read_documents
from hippo.ingest.document import Document, Heading, MissingExtra, SkipFile, heading_path
from hippo.ingest.loaders import LOADERS, Loader, loader_for, register_loader

__all__ = [
    "Chunk",
    "Chunker",
    "Document",
    "DocumentSet",
    "Heading",
    "LOADERS",
    "Loader",
    "MissingExtra",
    "SkipFile",
    "Skipped",
    "Tokenizer",
    "embedder_tokenizer",
    "heading_path",
    "loader_for",
    "read_documents",
    "register_loader",
]
