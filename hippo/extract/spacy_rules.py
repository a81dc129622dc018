"""The dependency patterns of hippo's offline OpenIE (used by ``SpacyExtractor``).

No LLM, no network: a small spaCy pipeline (tagger, parser, NER) and dependency
patterns give raw triples between entities or compact noun phrases, tied to the title.

1. Verb frames: subject + verb (+ particle, negation) + dobj/attr/dative/oprd, agents,
   verb + preposition + object; conjuncts fan out; xcomp/to-clauses chain; acl/relcl
   and fronted participles inherit their subject; a lone object joins prep relations.
   "Hamlet was written by William Shakespeare." -> (Hamlet, written by, William
   Shakespeare); "He was born in 1956 in Paris." (title Tom Hanks) -> (Tom Hanks, born
   in, 1956), (Tom Hanks, born in, Paris); "Smith and Jones founded Apple and Google."
   -> 4 triples; "She went on to become a senator." -> (<title>, went on to become,
   senator); "Toyota did not give up its factory in Nagoya." -> (Toyota, not give up,
   factory), (Toyota, not give up factory in, Nagoya).
2. Copulas: "Paris is the capital of France." -> (Paris, is, capital), (Paris, capital
   of, France); "Its 2018 Impact Factor is 1.355" -> (<title>, 2018 Impact Factor,
   1.355); "JMP is a journal published by the AIP" -> (JMP, published by, AIP).
3. Appositives: "Barack Obama, the president of the United States," -> (Barack Obama,
   is, president), (Barack Obama, president of, United States); "Obama's wife
   Michelle" -> (Obama, wife, Michelle); "Paris, France" -> (Paris, in, France);
   "psychologist Carl Rogers" -> (Carl Rogers, is, psychologist).
4. Entity + preposition + entity in a noun phrase: "the University of Copenhagen in
   Denmark" -> (University of Copenhagen, in, Denmark); "Apple's iPhone" -> (Apple,
   has, iPhone).
5. Entity anchoring (HippoRAG links a passage only to entities in its triples): an
   unused entity copies its conjunct's triples ("Hiroshima and Nagasaki"), else links
   to the nearest covered noun or verb subject above it (path words as relation),
   else to the title: "Vienna." (title Anna Schmidt) -> (Anna Schmidt, related to,
   Vienna). A title in no triple is linked to its core or the first subject.
6. Arguments: entity spans, else the head noun with compound/amod/nummod modifiers
   (no relative clauses), determiners dropped, dates and numbers kept; numeric
   entities (CARDINAL, MONEY, ...) count only as arguments. Coreference-lite:
   he/she/his/her (person titles), it/its/they/their (others), "the journal" (the title
   is a journal) and a person's bare surname resolve to the title's core ("Splash
   (film)" -> "Splash"); without a title such triples are dropped.

Triples are deduplicated on their normalised form, in sentence order: deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hippo.ids import normalize
from hippo.types import Triple

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

NUMERIC_LABELS = frozenset({"CARDINAL", "ORDINAL", "PERCENT", "QUANTITY", "MONEY"})
"""NER labels that count as entities only when they are an argument of a triple."""

PERSON_PRONOUNS = frozenset({"he", "she", "him", "her", "his", "hers"})
THING_PRONOUNS = frozenset({"it", "its", "they", "them", "their", "theirs"})
PRONOUNS = PERSON_PRONOUNS | THING_PRONOUNS
"""Pronouns resolved to the passage title (coreference-lite)."""

RELATIVES = frozenset({"who", "whom", "which", "that", "whose"})
BE_FORMS = frozenset({"is", "was", "are", "were", "be", "been", "being", "am", "'s"})
DETERMINERS = frozenset({"the", "a", "an", "this", "that", "these", "those"})
MODIFIER_DEPS = frozenset({"compound", "amod", "nummod", "quantmod", "nmod", "npadvmod", "advmod"})
SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
OBJECT_DEPS = frozenset({"dobj", "attr", "dative", "oprd"})
NOUNISH = frozenset({"NOUN", "PROPN", "NUM"})
PLACE_LABELS = frozenset({"GPE", "LOC"})
QUANTIFIERS = frozenset({"one", "two", "three", "some", "many", "most", "all", "each", "part"})
RELATED = "related to"
_PAREN = re.compile(r"\s*\([^)]*\)\s*$")
_MAX_PATH = 8

def _strip(text: str) -> str:
    """Drop a leading determiner and a trailing possessive marker, tidy spaces."""
    words = text.split()
    while words and words[0].lower() in DETERMINERS:
        words = words[1:]
    if words and words[-1] in ("'s", "'", "’s"):
        words = words[:-1]
    elif words and words[-1][-2:] in ("'s", "’s") and len(words[-1]) > 2:
        words[-1] = words[-1][:-2]
    return " ".join(words)


class PassageIE:
    """Extraction state for one parsed passage."""

    def __init__(self, doc: Doc, title: str):
        self.doc = doc
        self.title = title
        self.title_key = normalize(title)
        self.core = _PAREN.sub("", title).strip() or title  # "Splash (film)" -> "Splash"
        words = self.core.split()
        self.surname = words[-1] if len(words) > 1 else ""
        self.ent_of: dict[int, Span] = {}
        for ent in doc.ents:
            if _sane_entity(ent):
                for tok in ent:
                    self.ent_of[tok.i] = ent
        self.resolvable = self._resolvable_pronouns()
        self.type_nouns: frozenset[str] = frozenset()
        self.triples: list[Triple] = []
        self.seen: set[tuple[str, str, str]] = set()
        self.covered: set[str] = set()
        self._args: dict[tuple[int, bool], str | None] = {}

    def run(self) -> tuple[tuple[str, ...], tuple[Triple, ...]]:
        """Return (entities, triples) for the passage."""
        if self.title:
            self.type_nouns = self._title_type_nouns()
            self._args.clear()
        for sent in self.doc.sents:
            for tok in sent:
                if tok.pos_ in ("VERB", "AUX") and tok.dep_ not in ("aux", "auxpass"):
                    self._verb_frame(tok)
            for tok in sent:
                if tok.dep_ == "appos":
                    self._appositive(tok.head, tok)
                elif tok.dep_ == "prep":
                    self._np_preposition(tok)
                elif tok.dep_ == "poss":
                    self._possessive(tok)
                elif tok.dep_ == "compound" and tok.pos_ == "NOUN":
                    self._name_description(tok)
        for sent in self.doc.sents:
            self._anchor_orphans(sent)
        self._ensure_title()
        return self._entities(), tuple(self.triples)

    def emit(self, subj: str | None, rel: str, obj: str | None) -> None:
        """Record a triple unless an argument is missing or it duplicates another."""
        if not subj or not obj:
            return
        key = (normalize(subj), normalize(rel), normalize(obj))
        if not all(key) or key[0] == key[2] or key in self.seen:
            return
        self.seen.add(key)
        self.covered.update((key[0], key[2]))
        self.triples.append((subj, rel, obj))

    def arg(self, tok: Token, with_poss: bool = True) -> str | None:
        """The argument phrase headed by ``tok``, or None if it is not a valid argument.

        ``with_poss=False`` gives the bare phrase: no possessor, no appositive name.
        """
        key = (tok.i, with_poss)
        if key not in self._args:
            self._args[key] = None  # guards against cycles in odd parses
            self._args[key] = self._arg(tok, with_poss)
        return self._args[key]

    def _arg(self, tok: Token, with_poss: bool) -> str | None:
        if tok.lower_ in QUANTIFIERS:  # "one of the largest cities"
            of = [p for p in tok.rights if p.dep_ == "prep" and p.lower_ == "of"]
            whole = self.arg(next(_pobjs(of[0]), tok)) if of else None
            if whole:
                return f"{tok.text} of {whole}"
        ent = self.ent_of.get(tok.i)
        if ent is not None:
            text = _strip(ent.text)
            person = ent.label_ == "PERSON" or self.resolvable is PERSON_PRONOUNS
            return self.core if self.surname and person and text == self.surname else text or None
        surname = self.resolvable is PERSON_PRONOUNS and tok.text == self.surname
        low = tok.lower_
        if low in RELATIVES or tok.tag_ in ("WDT", "WP", "WP$"):
            antecedent = _antecedent(tok)
            return self.arg(self.anchor(antecedent)) if antecedent is not None else None
        if tok.pos_ == "PRON" or low in PRONOUNS:
            return self.core if low in self.resolvable else None
        if tok.pos_ not in NOUNISH:
            return None
        if self._is_title_reference(tok) or (surname and not tok.n_lefts):
            return self.core
        if with_poss:
            named = [c for c in tok.rights if c.dep_ == "appos" and self._entity_like(c)]
            if named and not self._entity_like(tok):
                return self.arg(named[0])  # "his wife Michelle" -> "Michelle"
        start, poss = tok.i, None
        for child in reversed(list(tok.lefts)):
            if child.dep_ == "poss":
                poss = child
                break
            if child.dep_ in MODIFIER_DEPS or (child.dep_ == "punct" and child.tag_ == "HYPH"):
                start = min(start, child.left_edge.i)
            elif child.dep_ != "case":
                break
        text = _strip(self.doc[start : tok.i + 1].text)
        if with_poss and poss is not None:
            owner = self.arg(poss)
            if owner:
                text = f"{owner}'s {text}"
        return text or None

    def anchor(self, tok: Token) -> Token:
        """What a described noun stands for: X in "X is a journal", "X, a journal"."""
        for _ in range(4):
            if self._entity_like(tok):
                return tok
            head = tok.head
            if tok.dep_ == "attr" and head.lower_ in BE_FORMS:
                subs = self.subjects(head)
                if not subs:
                    return tok
                tok = subs[0]
            elif tok.dep_ == "appos":
                tok = head
            elif tok.dep_ == "pobj" and head.lower_ == "of" and head.head.dep_ in ("attr", "appos"):
                tok = head.head
            else:
                return tok
        return tok

    def _entity_like(self, tok: Token) -> bool:
        ent = self.ent_of.get(tok.i)
        return tok.pos_ == "PROPN" if ent is None else ent.label_ not in NUMERIC_LABELS

    def _resolvable_pronouns(self) -> frozenset[str]:
        """he/she/his/her for a person title, it/its/they/their for others, by NER label.

        A title not named in full is a person if he/she comes before any other person or
        proper-noun subject ("He was born ..." opening a paragraph about the title).
        """
        if not self.title:
            return frozenset()
        core, surname = normalize(self.core), normalize(self.surname)
        keyed = [(e.label_, normalize(_strip(e.text))) for e in self.doc.ents]
        full = {label for label, key in keyed if key == core}
        if full:
            return PERSON_PRONOUNS if "PERSON" in full else THING_PRONOUNS
        if surname and ("PERSON", surname) in keyed:
            return PERSON_PRONOUNS
        words = set(self.core.split())
        others = [e.start for e in self.doc.ents if e.label_ == "PERSON"]
        others += [
            t.i for t in self.doc if t.dep_ == "nsubj" and t.pos_ == "PROPN" and t.text not in words
        ]
        first_pronoun = next((t.i for t in self.doc if t.lower_ in PERSON_PRONOUNS), -1)
        if first_pronoun != -1 and (not others or first_pronoun < min(others)):
            return PERSON_PRONOUNS
        return THING_PRONOUNS

    def _is_title_reference(self, tok: Token) -> bool:
        """ "the journal" when the first sentence says the title is a journal."""
        if tok.pos_ != "NOUN" or tok.lower_ not in self.type_nouns:
            return False
        lefts = list(tok.lefts)
        return len(lefts) == 1 and lefts[0].lower_ in ("the", "this")

    def _title_type_nouns(self) -> frozenset[str]:
        """Nouns naming what the title is: "journal" from "X is a journal" in the first two
        sentences, from "Journal of ..." or a lower-case last word ("Person-centered therapy")."""
        words = self.core.split()
        nouns = {words[0].lower()} if len(words) > 2 and words[1] == "of" else set()
        if len(words) > 1 and words[-1].islower():
            nouns.add(words[-1])
        keys = {self.title_key, normalize(self.core)}
        for i, sent in enumerate(self.doc.sents):
            if i >= 2:
                break
            for tok in sent:
                described = None
                if tok.dep_ == "attr" and tok.head.lower_ in BE_FORMS and tok.pos_ == "NOUN":
                    described = self.subjects(tok.head)
                elif tok.dep_ == "appos" and tok.pos_ == "NOUN":
                    described = [tok.head]
                if described and any(normalize(self.arg(s) or "") in keys for s in described):
                    nouns.update(c.lower_ for c in (tok, *tok.conjuncts) if c.pos_ == "NOUN")
        return frozenset(nouns)

    def subjects(self, verb: Token, depth: int = 0) -> list[Token]:
        """Subject tokens of ``verb``, inherited through conj/xcomp/acl/relcl; conj-expanded."""
        subs = [c for c in verb.children if c.dep_ in SUBJECT_DEPS]
        if subs:
            return [s for sub in subs for s in _with_conjuncts(sub)]
        head = verb.head
        if depth > 6 or head is verb:
            return []
        if verb.dep_ in ("acl", "relcl"):
            return [self.anchor(head)]
        if head.pos_ in ("VERB", "AUX") and (
            verb.dep_ in ("conj", "xcomp")
            or (verb.dep_ == "advcl" and _inherits_subject(verb))
        ):
            return self.subjects(head, depth + 1)
        return []

    def relation(self, verb: Token, depth: int = 0) -> str:
        """Verb + particles (+ negation); xcomp and "to"-clauses chain onto their head."""
        words = [c for c in verb.children if c.dep_ in ("neg", "prt")]
        text = " ".join(t.text for t in sorted([verb, *words], key=lambda t: t.i))
        head = verb.head
        chained = verb.dep_ == "xcomp" or (verb.dep_ == "advcl" and _has_to(verb))
        verbal = head.pos_ in ("VERB", "AUX") and head.lower_ not in BE_FORMS
        if chained and verbal and depth < 4 and head is not verb:
            prefix = self.relation(head, depth + 1)
            return f"{prefix} to {text}" if _has_to(verb) else f"{prefix} {text}"
        return text

    def _verb_frame(self, verb: Token) -> None:
        subjects = self.subjects(verb)
        if verb.dep_ == "relcl" and not subjects:
            return
        rel = self.relation(verb)
        is_be = verb.lower_ in BE_FORMS
        objects = [c for c in verb.children if c.dep_ in OBJECT_DEPS]
        if verb.dep_ == "relcl" and not any(c.dep_ == "dobj" for c in objects):
            if not _has_relative(verb) and all(s.dep_ == "nsubj" for s in subjects):
                objects.append(verb.head)  # "the book he wrote"
        obj_text = self._single_object(objects)
        for subj, subj_arg in [(s, self.arg(s)) for s in subjects]:
            for obj in (o for first in objects for o in _with_conjuncts(first)):
                if is_be and obj.dep_ == "attr":
                    self._describe(subj, obj, rel)
                elif obj.dep_ == "oprd" and any(c.dep_ == "dobj" for c in verb.children):
                    dobj = next(c for c in verb.children if c.dep_ == "dobj")
                    self.emit(self.arg(dobj), rel, self.arg(obj))
                else:
                    self.emit(subj_arg, rel, self.arg(obj))
                    self._carry_prepositions(subj_arg, rel, obj)
            for child in verb.children:
                if child.dep_ == "agent":
                    for pobj in _pobjs(child):
                        self.emit(subj_arg, f"{rel} by", self.arg(pobj))
                elif child.dep_ == "prep":
                    prep_rel = " ".join(w for w in (rel, obj_text, child.text) if w)
                    for pobj in _pobjs(child):
                        self.emit(subj_arg, prep_rel, self.arg(pobj))
                elif child.dep_ == "acomp":
                    for prep in (c for c in child.children if c.dep_ == "prep"):
                        for pobj in _pobjs(prep):
                            self.emit(subj_arg, f"{rel} {child.text} {prep.text}", self.arg(pobj))
                elif child.dep_ == "advmod" and child.lower_ == "where" and verb.dep_ == "relcl":
                    self.emit(subj_arg, f"{rel} in", self.arg(verb.head))

    def _single_object(self, objects: list[Token]) -> str:
        """The object phrase folded into prepositional relations, when unambiguous."""
        direct = [o for o in objects if o.dep_ in ("dobj", "attr") and o.i > o.head.i]
        if len(direct) != 1 or direct[0].conjuncts:
            return ""
        text = self.arg(direct[0], with_poss=False) or ""
        return text if 0 < len(text.split()) <= 4 else ""

    def _carry_prepositions(self, subj_arg: str | None, rel: str, obj: Token) -> None:
        """(S, rel, N) with "N of Z", Z an entity -> (S, "rel N of", Z); copulas drop rel."""
        if self._entity_like(obj) or obj.i in self.ent_of:
            return
        core = self.arg(obj, with_poss=False)
        if not core:
            return
        for prep in (c for c in obj.children if c.dep_ == "prep"):
            for pobj in _pobjs(prep):
                if self._entity_like(pobj):
                    prefix = "" if rel.lower() in BE_FORMS else rel + " "
                    self.emit(subj_arg, f"{prefix}{core} {prep.text}", self.arg(pobj))

    def _describe(self, subj: Token, desc: Token, rel: str) -> None:
        """Copula or apposition: subject is/was ``desc`` (patterns 2 and 3)."""
        poss = next((c for c in subj.children if c.dep_ == "poss"), None)
        named = any(c.dep_ == "appos" and self._entity_like(c) for c in subj.children)
        if poss is not None and not named and subj.i not in self.ent_of and self.arg(poss):
            # "Its 2018 Impact Factor is 1.355" -> (title, "2018 Impact Factor", "1.355")
            self.emit(self.arg(poss), self.arg(subj, with_poss=False) or "", self.arg(desc))
            return
        subj_arg, desc_arg = self.arg(subj), self.arg(desc)
        if desc_arg and desc.i not in self.ent_of and desc.lower_ not in QUANTIFIERS:
            for prep in (c for c in desc.children if c.dep_ == "prep" and c.lower_ == "of"):
                pobj = next(_pobjs(prep), None)
                if pobj is not None and not self._entity_like(pobj) and self.arg(pobj):
                    desc_arg = f"{desc_arg} of {self.arg(pobj)}"  # "form of psychotherapy"
        self.emit(subj_arg, rel, desc_arg)
        self._carry_prepositions(subj_arg, rel, desc)

    def _appositive(self, head: Token, app: Token) -> None:
        head_ent, app_ent = self.ent_of.get(head.i), self.ent_of.get(app.i)
        if (head_ent is not None and head_ent is app_ent) or (_numeric(head) and _numeric(app)):
            return  # one entity, or a unit conversion "250 inches (640 cm)"
        if (
            head_ent is not None
            and app_ent is not None
            and {head_ent.label_, app_ent.label_} <= PLACE_LABELS
            and head.dep_ != "appos"
            and not any(c.dep_ in ("appos", "conj") for c in app.children)
        ):
            self.emit(self.arg(head), "in", self.arg(app))  # "Paris, France"
        elif self._entity_like(app) and not self._entity_like(head):
            poss = next((c for c in head.children if c.dep_ == "poss"), None)
            if poss is not None and self.arg(poss):  # "Obama's wife Michelle"
                self.emit(self.arg(poss), self.arg(head, with_poss=False) or "", self.arg(app))
            else:  # "the director, John Smith" -> (John Smith, is, director)
                self.emit(self.arg(app), "is", self.arg(head, with_poss=False))
        else:
            self._describe(head, app, "is")

    def _np_preposition(self, prep: Token) -> None:
        """Entity + preposition + entity inside a noun phrase (pattern 4)."""
        head = prep.head
        if head.pos_ not in NOUNISH or not self._entity_like(head):
            return
        head_ent = self.ent_of.get(head.i)
        if head_ent is not None and head_ent.start <= prep.i < head_ent.end:
            return
        for pobj in _pobjs(prep):
            if self._entity_like(pobj) and self.ent_of.get(pobj.i) is not head_ent:
                self.emit(self.arg(head), prep.text, self.arg(pobj))

    def _possessive(self, owner: Token) -> None:
        """ "Microsoft's Windows" -> (Microsoft, has, Windows); pronoun owners skipped."""
        head = owner.head
        if owner.pos_ == "PRON" or owner.lower_ in PRONOUNS | RELATIVES:
            return
        if owner.i in self.ent_of and self.ent_of[owner.i] is self.ent_of.get(head.i):
            return
        if head.dep_ in SUBJECT_DEPS and any(c.dep_ == "attr" for c in head.head.children):
            return  # "Y's X is Z" -> (Y, X, Z) by the copula pattern
        if head.pos_ in NOUNISH and not any(c.dep_ == "appos" for c in head.children):
            self.emit(self.arg(owner), "has", self.arg(head, with_poss=False))

    def _name_description(self, noun: Token) -> None:
        """ "psychologist Carl Rogers" -> (Carl Rogers, is, psychologist)."""
        ent = self.ent_of.get(noun.head.i)
        if ent is None or ent.label_ != "PERSON" or noun.i in self.ent_of:
            return
        if noun.i < ent.start:
            self.emit(self.arg(noun.head), "is", self.doc[noun.left_edge.i : noun.i + 1].text)

    def _anchor_orphans(self, sent: Span) -> None:
        """Attach every named entity that no pattern used (pattern 5)."""
        for ent in sent.ents:
            if ent.label_ in NUMERIC_LABELS or ent.root.i not in self.ent_of:
                continue
            if ent.label_ in ("DATE", "TIME") and ent.root.dep_ in MODIFIER_DEPS:
                continue  # "2018 Impact Factor": part of a larger phrase
            text = self.arg(ent.root)
            if not text or normalize(text) in self.covered or self._copy_conjunct(ent.root, text):
                continue
            if ent.label_ == "NORP" and ent.root.dep_ in ("amod", "compound"):
                described = self.anchor(ent.root.head)  # "X is a Canadian band"
                if described is not ent.root.head:
                    self.emit(self.arg(described), "is", text)
                continue
            target, rel = self._nearest_anchor(ent)
            if target is None and self.title:
                target, rel = self.core, RELATED
            self.emit(target, rel, text)

    def _copy_conjunct(self, tok: Token, text: str) -> bool:
        """Give "Nagasaki" in "Hiroshima and Nagasaki" the triples of "Hiroshima"."""
        first = tok
        while first.dep_ == "conj" and first.head is not first:
            first = first.head
        first_text = self.arg(first) if first is not tok else None
        if not first_text:
            return False
        before = len(self.triples)
        for subj, rel, obj in list(self.triples):
            if subj == first_text:
                self.emit(text, rel, obj)
            elif obj == first_text:
                self.emit(subj, rel, text)
        return len(self.triples) > before

    def _nearest_anchor(self, ent: Span) -> tuple[str | None, str]:
        """Closest covered noun or verb subject above ``ent``, with the path as relation."""
        path: list[Token] = []
        tok = ent.root
        for _ in range(_MAX_PATH):
            if tok.head is tok:
                break
            tok = tok.head
            if ent.start <= tok.i < ent.end:
                continue
            if tok.pos_ in NOUNISH:
                text = self.arg(tok)
                if text and normalize(text) in self.covered:
                    return text, _path_relation(path)
            elif tok.pos_ in ("VERB", "AUX"):
                for subj in self.subjects(tok):
                    text = self.arg(subj)
                    if text:
                        return text, _path_relation([*path, tok])
            if tok.pos_ in ("ADP", "VERB", "ADV", "NOUN", "ADJ") or (
                tok.pos_ == "AUX" and tok.lower_ not in BE_FORMS
            ):
                path.append(tok)
        return None, RELATED

    def _ensure_title(self) -> None:
        """Make the title an argument: link it to the passage's first subject."""
        if not self.title or self.title_key in self.covered:
            return
        if self.triples:
            core_used = normalize(self.core) in self.covered
            self.emit(self.title, RELATED, self.core if core_used else self.triples[0][0])
        else:
            for ent in self.doc.ents:
                if ent.label_ not in NUMERIC_LABELS and ent.root.i in self.ent_of:
                    self.emit(self.title, RELATED, self.arg(ent.root))

    def _entities(self) -> tuple[str, ...]:
        """Title, named entities (numeric ones only when an argument), deduplicated."""
        names: dict[str, str] = {}
        if self.title:
            names[self.title_key] = self.title
        for ent in self.doc.ents:
            if ent.root.i not in self.ent_of:
                continue
            text = _strip(ent.text)
            key = normalize(text)
            if key and key not in names:
                if ent.label_ not in NUMERIC_LABELS or key in self.covered:
                    names[key] = text
        return tuple(names.values())


def _sane_entity(ent: Span) -> bool:
    """An NER span usable as an argument: a noun phrase, not a clause fragment."""
    if ent.root.pos_ not in ("NOUN", "PROPN", "NUM", "X", "SYM") and not (
        ent.root.pos_ == "ADJ" and ent.label_ in ("NORP", "LANGUAGE")
    ):
        return False
    if any(t.pos_ in ("VERB", "AUX") and t.dep_ not in ("amod", "compound") for t in ent):
        return False
    return bool(_strip(ent.text))


def _numeric(tok: Token) -> bool:
    return tok.pos_ == "NUM" or (tok.ent_type_ in NUMERIC_LABELS and tok.pos_ != "PROPN")


def _with_conjuncts(tok: Token) -> Iterator[Token]:
    """``tok`` then the tokens coordinated with it ("Apple and Google")."""
    yield tok
    yield from (c for c in tok.conjuncts if c.i > tok.i)


def _pobjs(prep: Token) -> Iterator[Token]:
    """Objects of a preposition, conj-expanded."""
    for child in prep.children:
        if child.dep_ == "pobj":
            yield from _with_conjuncts(child)


def _inherits_subject(verb: Token) -> bool:
    """Participle or to-clause sharing its head's subject ("Born in X, she ...")."""
    if verb.tag_ == "VBN":
        return verb.i < verb.head.i and not any(c.dep_ == "mark" for c in verb.children)
    return verb.tag_ == "VBG" or _has_to(verb)


def _has_to(verb: Token) -> bool:
    return any(c.dep_ == "aux" and c.lower_ == "to" for c in verb.children)


def _has_relative(verb: Token) -> bool:
    """Whether a relative clause has its own wh-word ("where", "in which")."""
    wh = ("WRB", "WDT", "WP")
    return any(t.lower_ in RELATIVES or t.tag_ in wh for t in verb.subtree if t.i < verb.i)


def _antecedent(rel_pronoun: Token) -> Token | None:
    """The noun a relative pronoun refers to: the head of its relative clause."""
    tok = rel_pronoun
    for _ in range(4):
        if tok.dep_ == "relcl":
            return tok.head
        if tok.head is tok:
            return None
        tok = tok.head
    return None


def _path_relation(path: list[Token]) -> str:
    """Relation words along a dependency path, in sentence order."""
    words = [t.text for t in sorted(path, key=lambda t: t.i)][:5]
    return " ".join(words) if words else RELATED
