"""Errors hippo raises. Each message names the problem and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence


class HippoError(Exception):
    """Base class of every error hippo raises on bad input or state (CLI exit code 1)."""


class CorpusError(HippoError):
    """The corpus file or folder cannot be read as passages."""


class ConfigError(HippoError):
    """A configuration key or value is invalid."""


class IndexFormatError(HippoError):
    """An index directory is missing, torn, or of an unknown format version."""


class EmbedderMismatchError(HippoError):
    """The embedder requested does not match the one that built the index."""


class ExtractionError(HippoError):
    """OpenIE could not produce extractions for some passages."""


class QuestionsError(HippoError):
    """A questions file for evaluation cannot be read."""


class Neo4jError(HippoError):
    """A Neo4j server is unreachable, refuses the credentials, or cannot be started or written."""


class PassageIdsError(HippoError):
    """A write refused because of some passage ids, listed in ``ids``; nothing was written."""

    def __init__(self, message: str, ids: Sequence[str]) -> None:
        super().__init__(message)
        self.ids = list(ids)


class IdConflictError(PassageIdsError):
    """An add (without ``update``) gave ids that the index holds with other text."""


class UnknownIdsError(PassageIdsError):
    """A delete gave ids that the index does not hold."""
