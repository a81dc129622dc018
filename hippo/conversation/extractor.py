"""OpenIE for conversation turns: a wrapper around an extractor (spaCy's by default) that
reads the turn's metadata (``speaker``, ``session``, ``time``, ``previous``).

Each structure is an option (measured one by one in ``benchmarks/locomo.py``):

* ``coref``: coreference-lite before parsing: "I", "me", "my", "myself", "mine" (and "I'm",
  "I've", ...) become the speaker, so "I went to the support group" gives (Caroline, went
  to, support group) instead of nothing;
* ``captions``: a shared photo's caption loses its "a photo of" boilerplate before parsing
  (:func:`strip_caption_boilerplate`), so "photo" does not become a hub;
* ``speakers``: ``keep`` leaves the speaker an entity of every turn it appears in (a hub
  across the whole conversation); ``session`` renames it to the speaker in that session
  (``"Caroline (8 May 2023)"``), so a speaker node links the turns of one session only;
* ``session_nodes``: every turn gets a fact (``<session node>``, ``includes``, ``<the turn's
  first entity>``) that ties it to a node of its session (named by its date), the way
  passage nodes tie entities;
* ``previous``: the triples of the preceding turn (``metadata["previous"]``) are added to the
  turn's own, so an answer ("Yeah, last week!") links to what it answers.

A passage without a ``speaker`` in its metadata is passed to the wrapped extractor as is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from hippo.conversation.schema import PREVIOUS_KEY, human_date
from hippo.extract.spacy_ie import SpacyExtractor
from hippo.extract.spacy_rules import PRONOUNS, PassageIE
from hippo.ids import normalize
from hippo.types import Extraction, Passage, Triple

SPEAKER_MODES = ("keep", "session")
_CONTRACTIONS = (
    (re.compile(r"\bI'm\b|\bI’m\b"), "{s} is"),
    (re.compile(r"\bI've\b|\bI’ve\b"), "{s} has"),
    (re.compile(r"\bI'll\b|\bI’ll\b"), "{s} will"),
    (re.compile(r"\bI'd\b|\bI’d\b"), "{s} would"),
    (re.compile(r"\b(?:my|My)\b"), "{s}'s"),
    (re.compile(r"\b(?:mine|Mine)\b"), "{s}'s"),
    (re.compile(r"\b(?:I|me|Me|myself|Myself)\b"), "{s}"),
)


_CAPTION = re.compile(r"\[shares an? (?:photo|picture|image): (?:(?:an? |the )?(?:photo|picture|image|close up|closeup)(?: of)? )?", re.I)


def strip_caption_boilerplate(text: str) -> str:
    """``[shares a photo: a photo of a beagle]`` -> ``[shares a beagle]``: "photo" is no entity
    of every turn that shares one (LoCoMo's captions made it one of the largest hubs)."""
    return _CAPTION.sub("[shares ", text)


def resolve_first_person(text: str, speaker: str) -> str:
    """``text`` with the first person replaced by ``speaker`` ("my kids" -> "Caroline's kids")."""
    if not speaker:
        return text
    for pat, repl in _CONTRACTIONS:
        text = pat.sub(repl.format(s=speaker).replace("\\", "\\\\"), text)
    return text


class ConversationExtractor:
    """Conversation-aware OpenIE on the spaCy extractor ``base`` (options: the module docstring)."""

    name = "hippo.extractor.conversation.v1"

    def __init__(
        self,
        base: SpacyExtractor,
        coref: bool = True,
        mentions: bool = True,
        captions: bool = False,
        speakers: str = "keep",
        session_nodes: bool = False,
        previous: bool = False,
    ) -> None:
        if speakers not in SPEAKER_MODES:
            raise ValueError(f"unknown speakers mode {speakers!r}; valid: {', '.join(SPEAKER_MODES)}")
        self.base = base
        self.coref = coref
        self.mentions = mentions
        self.captions = captions
        self.speakers = speakers
        self.session_nodes = session_nodes
        self.previous = previous

    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings, saved into the index manifest."""
        return {"base": {"name": self.base.name, **self.base.settings()}, "coref": self.coref, "mentions": self.mentions, "captions": self.captions,
                "speakers": self.speakers, "session_nodes": self.session_nodes, "previous": self.previous}

    def _texts(self, p: Passage) -> list[str]:
        """What is parsed for a turn: its text (first person resolved), then its predecessor's."""
        speaker = str(p.metadata.get("speaker", ""))
        own = strip_caption_boilerplate(p.text) if self.captions else p.text
        texts = [resolve_first_person(own, speaker) if self.coref else own]
        prev = p.metadata.get(PREVIOUS_KEY)
        if self.previous and isinstance(prev, str) and ": " in prev:
            who, _, text = prev.partition(": ")
            text = strip_caption_boilerplate(text) if self.captions else text
            texts.append(resolve_first_person(text, who) if self.coref else text)
        return texts

    def extract(
        self, passages: Sequence[Passage], progress: Callable[[int, int], None] | None = None
    ) -> list[Extraction]:
        """One extraction per passage, in input order."""
        if not passages:
            return []
        turns = [i for i, p in enumerate(passages) if p.metadata.get("speaker")]
        is_turn = set(turns)
        plain = [p for i, p in enumerate(passages) if i not in is_turn]
        done = iter(self.base.extract(plain) if plain else [])
        jobs: list[tuple[int, str, str]] = []  # (passage, speaker, text)
        speakers_of: dict[int, list[str]] = {}
        for i in turns:
            p = passages[i]
            speakers = speakers_of[i] = [str(p.metadata["speaker"]), str(p.metadata.get(PREVIOUS_KEY, "")).partition(": ")[0]]
            for who, text in zip(speakers, self._texts(p)):
                jobs.append((i, who, " ".join(text.split())))
        found: dict[int, list[Triple]] = {i: [] for i in turns}
        nlp = self.base.nlp
        docs = nlp.pipe([t for _, _, t in jobs], batch_size=self.base.batch_size)
        for n, ((i, who, _), doc) in enumerate(zip(jobs, docs)):
            _, triples = PassageIE(doc, "").run()  # no title: the speaker is not an anchor for everything
            found[i].extend(triples)
            if self.mentions:
                found[i].extend(_mentions(doc, who, triples, speakers_of[i]))
            if progress is not None and n + 1 == len(jobs):
                progress(len(passages), len(passages))
        out: list[Extraction] = []
        for i, p in enumerate(passages):
            if i not in is_turn:
                out.append(next(done))
                continue
            kept = list(dict.fromkeys(self._structure(p, found[i])))
            names = tuple(dict.fromkeys(x for t in kept for x in (t[0], t[2])))
            out.append(Extraction(p.id, names, tuple(kept)))
        return out

    def _structure(self, p: Passage, triples: list[Triple]) -> list[Triple]:
        speaker = str(p.metadata.get("speaker", ""))
        time = str(p.metadata.get("time", ""))
        session = str(p.metadata.get("session", ""))
        date = human_date(time) if time else (f"session {session}" if session else "")
        if self.speakers == "session" and date:
            who = {normalize(x): f"{x} ({date})" for x in (speaker, str(p.metadata.get(PREVIOUS_KEY, "")).partition(": ")[0]) if x}
            triples = [(who.get(normalize(s), s), r, who.get(normalize(o), o)) for s, r, o in triples]
        if self.session_nodes and date:
            anchor = triples[0][2] if triples else f"{speaker} ({date})" if speaker else ""
            if anchor:
                triples.append((f"conversation of {date}", "includes", anchor))
        return triples


MENTION = "mentions"
_SKIP_CHUNK = PRONOUNS | {"i", "me", "you", "we", "us", "what", "that", "this", "something", "anything", "everything",
                          "thing", "things", "lot", "one", "time", "way", "day", "today", "tomorrow", "yesterday", "stuff",
                          "hey", "hi", "wow", "woah", "whoa", "cool", "yeah", "yes", "haha", "awesome", "omg", "lol",
                          "congrats", "congratulations", "thanks", "thank", "dude", "man", "buddy", "pal", "bye"}


def _mentions(doc: Any, speaker: str, triples: Sequence[Triple], people: Sequence[str] = ()) -> list[Triple]:
    """(speaker, mentions, X) for noun chunks and names of the turn that no triple covers;
    the speakers themselves (``people``: "Hey John!") and interjections are not mentions."""
    if not speaker:
        return []
    covered = {normalize(x) for t in triples for x in (t[0], t[2])} | {normalize(x) for x in people}
    out = []
    for span in [*doc.ents, *doc.noun_chunks]:
        words = [t for t in span if not t.is_stop and not t.is_punct and t.pos_ in ("NOUN", "PROPN", "ADJ", "NUM")]
        if not words or not any(t.pos_ in ("NOUN", "PROPN") for t in words):
            continue
        text = doc[words[0].i : words[-1].i + 1].text
        for person in people:  # "Ada's sister" (coreference-lite of "my sister"): the sister
            if person and text.startswith(person + "'s "):
                text = text[len(person) + 3 :]
        key = normalize(text)
        if not key or key in covered or key in _SKIP_CHUNK or key == normalize(speaker):
            continue
        covered.add(key)
        out.append((speaker, MENTION, text))
    return out
