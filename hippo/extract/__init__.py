"""OpenIE extractors: offline spaCy (default), precomputed HippoRAG files, and LLM OpenIE."""

from __future__ import annotations

from hippo.config import ExtractConfig, LLMConfig
from hippo.errors import ConfigError
from hippo.extract.precomputed import PrecomputedExtractor
from hippo.protocols import Extractor

__all__ = ["PrecomputedExtractor", "make_extractor"]


def _spacy(config: ExtractConfig) -> Extractor:
    from hippo.extract.spacy_ie import SpacyExtractor

    return SpacyExtractor(model=config.spacy_model, batch_size=config.spacy_batch_size)


def _llm(config: LLMConfig) -> Extractor:
    from hippo.extract.llm_ie import LLMExtractor
    from hippo.llm import make_llm_client

    return LLMExtractor(make_llm_client(config))


def make_extractor(config: ExtractConfig, llm: LLMConfig | None = None) -> Extractor:
    """The extractor a config names (``llm`` gives the endpoint of the ``llm`` extractor)."""
    if config.extractor == "llm":
        if llm is None:
            raise ConfigError(
                "the llm extractor needs the llm.* settings: index with hippo.llm.indexing.index_with_llm(), "
                "or pass extractor=LLMExtractor(make_llm_client(config.llm)) to build_index"
            )
        return _llm(llm)
    if config.extractor == "precomputed":
        if not config.openie:
            raise ConfigError("extract.extractor=precomputed needs an OpenIE file: pass --openie FILE")
        fallback = _spacy(config) if config.missing == "spacy" else None
        return PrecomputedExtractor(config.openie, fallback=fallback)
    if config.extractor == "spacy":
        return _spacy(config)
    if config.extractor == "conversation":
        from hippo.conversation.extractor import ConversationExtractor
        from hippo.extract.spacy_ie import SpacyExtractor

        return ConversationExtractor(SpacyExtractor(model=config.spacy_model, batch_size=config.spacy_batch_size))
    raise ConfigError(f"unknown extractor {config.extractor!r}; valid: spacy, precomputed, llm, conversation")
