"""Content-hash ids with a type prefix, and text normalisation.

Ids are ``<prefix>-<first 16 hex digits of md5(text)>``: stable across runs and
machines, so the same corpus always yields the same index.
"""

from __future__ import annotations

import hashlib
import unicodedata

PASSAGE_PREFIX = "p"
ENTITY_PREFIX = "e"
FACT_PREFIX = "f"


def content_id(prefix: str, text: str) -> str:
    """Return ``prefix-<16 hex>``, a stable id for ``text``."""
    return f"{prefix}-{hashlib.md5(text.encode('utf-8')).hexdigest()[:16]}"


def passage_id(content: str) -> str:
    """Id of a passage from its full content (``title + "\\n" + text``)."""
    return content_id(PASSAGE_PREFIX, content)


def entity_id(name: str) -> str:
    """Id of an entity from its normalised name."""
    return content_id(ENTITY_PREFIX, name)


def fact_id(subject: str, relation: str, obj: str) -> str:
    """Id of a fact from its normalised (subject, relation, object)."""
    return content_id(FACT_PREFIX, "\x1f".join((subject, relation, obj)))


def normalize(text: str) -> str:
    """Normalise a phrase as HippoRAG 2 does, but Unicode-aware.

    NFKC, lower-case, every character that is not a letter, mark or digit (in any
    script) becomes a space, then runs of spaces collapse. HippoRAG 2 keeps only
    ``[A-Za-z0-9 ]``, so "東京" or "Zürich" would lose characters or vanish; here
    they survive ("zürich", "東京").
    """
    text = unicodedata.normalize("NFKC", text).lower()
    out = [ch if unicodedata.category(ch)[0] in "LMN" else " " for ch in text]
    return " ".join("".join(out).split())


def alnum_count(text: str) -> int:
    """Number of letters and digits in ``text`` (any script)."""
    return sum(1 for ch in text if unicodedata.category(ch)[0] in "LN")
