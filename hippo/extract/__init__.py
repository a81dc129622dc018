"""OpenIE extractors: offline spaCy (default) and precomputed HippoRAG files."""

from __future__ import annotations

from hippo.config import ExtractConfig
from hippo.errors import ConfigError
from hippo.extract.precomputed import PrecomputedExtractor
from hippo.protocols import Extractor

__all__ = ["PrecomputedExtractor", "make_extractor"]


def _spacy(config: ExtractConfig) -> Extractor:
    from hippo.extract.spacy_ie import SpacyExtractor

    return SpacyExtractor(model=config.spacy_model, batch_size=config.spacy_batch_size)


def make_extractor(config: ExtractConfig) -> Extractor:
    """The extractor a config names."""
    if config.extractor == "precomputed":
        if not config.openie:
            raise ConfigError("extract.extractor=precomputed needs an OpenIE file: pass --openie FILE")
        fallback = _spacy(config) if config.missing == "spacy" else None
        return PrecomputedExtractor(config.openie, fallback=fallback)
    if config.extractor == "spacy":
        return _spacy(config)
    raise ConfigError(f"unknown extractor {config.extractor!r}; valid: spacy, precomputed")
