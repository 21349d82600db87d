"""Match a question to the FAQ's intents: ranked candidates with scores and a decision.

A question is normalised (Unicode, case, punctuation), typos are corrected against the
FAQ's own vocabulary, words and phrases are mapped to the FAQ's concepts, and every
intent is scored by how much of the question it covers, weighted by how sure a naive
Bayes classifier over the example questions is of it (its classes include "none of our
business", learnt from out-of-scope and everyday examples).  An intent whose required
concepts the question does not mention is scored down; words the FAQ has never seen
count against every intent, so near-topic questions are declined.
"""

from __future__ import annotations

import math
import re
import unicodedata
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from typing import AbstractSet, Any, Collection, Iterable, Literal

from .knowledge import Intent, KnowledgeBase

Decision = Literal["answer", "clarify", "decline"]

# Generic English glue words: they never decide what a question is about. The last line
# is how support agents report a call ("caller asks ...", "cust wants ...").
STOPWORDS = frozenset(
    """a an the is are was were be been being am do does did doing done to of in on at for with by from
    about as it its this that these those there here and or but if so then than can could would should will
    shall may might have has had having just also too very really please pls plz kindly thank you your yours
    im ive id ill i me myself he she they them their his her him one ones some any all anyone anybody
    someone somebody something anything thing things stuff question questions quick wondering wonder
    curious know tell want wanted like would like okay ok yeah yes hey um uh well still even again
    into onto over under up down out off via re fyi btw lol hmm etc same such own other else
    get got getting let lets go going gonna wanna gotta which whom whose what whats whatever
    thats theres heres youve weve theyre youre
    cust custs caller callers asks says wants""".split()
)

# Chat spellings of plain English words, read as the words they stand for.
CHAT_WORDS = {
    "u": "you",
    "ya": "you",
    "r": "are",
    "ur": "your",
    "wat": "what",
    "wot": "what",
    "wht": "what",
    "abt": "about",
    "bc": "because",
    "cuz": "because",
    "w": "with",
    "kinda": "kind of",
    "sorta": "sort of",
    "gimme": "give me",
    "lemme": "let me",
    "plz": "please",
    "thx": "thanks",
    "yr": "year",
    "yrs": "years",
    "ppl": "people",
    "hw": "how",
    "howmuch": "how much",
    "hafta": "have to",
    "gotta": "have to",
    "wanna": "want to",
    "b4": "before",
    "thru": "through",
    "bcoz": "because",
    "coz": "because",
    "some1": "someone",
    "any1": "anyone",
    "every1": "everyone",
    "evry1": "everyone",
    "no1": "no one",
    "wtf": "what",
    "wth": "what",
}

# Set phrases of ticket English that carry no question: "please advise", "thanks in advance".
FILLER_PHRASES = (
    "please advise",
    "pls advise",
    "kindly advise",
    "advise the",
    "let me know",
    "i would like to know",
    "id like to know",
    "i need to know",
    "need to know",
    "want to know",
    "wants to know",
    "asking if",
    "asking whether",
    "asking about",
    "asked if",
    "asked whether",
    "not sure",
    "no clue",
    "no idea",
    "trying to figure out",
    "figure out",
    "trying to work out",
    "trying to understand",
    "would appreciate",
    "i was wondering",
    "just wondering",
    "quick question",
    "quick q",
    "dumb question",
    "silly question",
    "sorry to bother you",
    "sorry to bother",
    "sorry",
    "thanks in advance",
    "thank you in advance",
    "best regards",
    "kind regards",
    "warm regards",
    "many thanks in advance",
    "can you tell me",
    "could you tell me",
    "could you please",
    "i have a question",
    # swearing and exasperation: "who do we buy the damn license from"
    "damn",
    "damned",
    "dammit",
    "goddamn",
    "crap",
    "crappy",
    "heck",
    "the heck",
    "the hell",
    "freaking",
    "freakin",
    "frickin",
    "fricking",
    "friggin",
    "frigging",
    "effing",
    "bloody",
    "fucking",
    "fuckin",
    "ffs",
    "omg",
    "ugh",
    "jeez",
    "geez",
)

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'"})
# What `clean` does to plain ASCII, the usual case, in one pass: controls (but newline) to spaces.
_ASCII = str.maketrans({**{chr(c): " " for c in (*range(32), 127) if c != 10}, "`": "", "'": "", "$": " dollar "})
_WORD = re.compile(r"[^\W_]+")
_SEGMENT = re.compile(r"(?<=[.!?;])\s+|\n+")
_SUFFIXES = ("ies", "es", "s", "ed", "ing", "ly")
_NUMBER = "number"
_YEAR = "<year>"

# Similarity: the share of the question's weight that an intent's vocabulary covers; a
# word the FAQ has never seen weighs UNKNOWN_WEIGHT of the rarest known term; unmet
# required concepts or small talk beside a real question multiply the score by
# UNMET_FACTOR; words only out-of-scope examples use weigh FOREIGN_WEIGHT times the
# rarest known term.
UNKNOWN_WEIGHT = 0.8
UNMET_FACTOR = 0.5
# ... and by this for a `strict` intent, whose answer is wrong without them ("No license is
# needed if you don't use the codes" to "do I need a license?").
STRICT_UNMET_FACTOR = 0.1
# An `implied` intent's topic left unsaid ("how much per year?") is taken as met, a little
# less surely: "what year is it" stays a guess, not an answer.
IMPLIED_FACTOR = 0.8
FOREIGN_WEIGHT = 3.0
# A concept the out-of-scope examples name at least FOREIGN_RATIO times as often as the
# answers' examples (and at least FOREIGN_LEAST times) is a topic the FAQ does not cover:
# every score is multiplied by FOREIGN_FACTOR.
FOREIGN_RATIO = 10
FOREIGN_LEAST = 5
FOREIGN_FACTOR = 0.3
# Naive Bayes over TF-IDF vectors of the examples: add-NB_SMOOTHING smoothing; its
# log-odds are divided by NB_TEMPERATURE (below 1 sharpens them; chosen on the tuning sets).
NB_SMOOTHING = 0.02
NB_TEMPERATURE = 0.8
# A feature only out-of-scope examples use is kept when at least MIN_DF of them use it: the
# everyday background has thousands of one-off words, which would only slow loading.
MIN_DF = 2


@dataclass(frozen=True)
class Candidate:
    """One ranked intent: its id, source label, score (0-100) and readable question."""

    intent: str
    label: str
    score: float
    question: str

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "intent": self.intent, "score": self.score, "question": self.question}


@dataclass(frozen=True)
class Match:
    """The matcher's verdict on one question: decision, ranked candidates, reply text."""

    text: str
    decision: Decision
    candidates: tuple[Candidate, ...]
    answer: str
    notice: str | None = None

    @property
    def best(self) -> Candidate | None:
        """The top candidate, whatever the decision."""
        return self.candidates[0] if self.candidates else None

    @property
    def label(self) -> str | None:
        """Source label of the answer; None when declined."""
        return self.best.label if self.best and self.decision != "decline" else None

    @property
    def intent(self) -> str | None:
        """Intent id of the answer; None when declined."""
        return self.best.intent if self.best and self.decision != "decline" else None

    @property
    def score(self) -> float:
        """Score of the top candidate (0 when there is none)."""
        return self.best.score if self.best else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `cptbot match` prints for this question."""
        return {
            "text": self.text,
            "decision": self.decision,
            "label": self.label,
            "intent": self.intent,
            "score": self.score,
            "answer": self.answer,
            "alternatives": [c.to_dict() for c in self.candidates],
        }


def clean(text: str) -> str:
    """Unicode-normalise, case-fold and strip accents, quotes and control characters."""
    return text.lower().translate(_ASCII) if text.isascii() else _clean_unicode(text)


def _clean_unicode(text: str) -> str:
    """`clean` for any text; plain ASCII, the usual question, takes the one-pass table above."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\n" else ch
        for ch in unicodedata.normalize("NFKD", text)
        if not unicodedata.combining(ch)
    )
    return text.replace("'", "").replace("$", " dollar ")


def _misses(
    requires: tuple[frozenset[str], ...],
    excludes: tuple[frozenset[str], frozenset[str]],
    present: AbstractSet[str],
    message: frozenset[str],
) -> bool:
    """Whether a sentence's terms lack a required concept, or name an excluded one.

    `excludes` holds the concepts excluded anywhere in the message, then those excluded in the
    sentence only: in "We don't use codes. Do we need the license?" the negation is in another
    sentence, while "Are you a bot? I want a person." still asks for a person.
    """
    anywhere, here = excludes
    return any(map(present.isdisjoint, requires)) or not (
        anywhere.isdisjoint(present) and anywhere.isdisjoint(message) and here.isdisjoint(present)
    )


def _outsiders(
    inside: list[set[str]], outside: list[set[str]], concepts: Iterable[str], topics: frozenset[str], *, topical: bool
) -> frozenset[str]:
    """Concepts far more common in out-of-scope lines than in answers' examples, among lines that do (or do not) name a topic."""

    def counts(lines: list[set[str]]) -> dict[str, int]:
        found: dict[str, int] = {}
        for terms in lines:
            if topics.isdisjoint(terms) != topical:
                for term in terms:
                    found[term] = found.get(term, 0) + 1
        return found

    ins, outs = counts(inside), counts(outside)
    return frozenset(c for c in concepts if outs.get(c, 0) >= max(FOREIGN_LEAST, FOREIGN_RATIO * ins.get(c, 0)))


def _dropped_letter(words: Iterable[str], *, last: bool) -> dict[str, str]:
    """Each spelling of a word with one letter dropped (never the first; the last only if
    `last` or as in "makin") -> the word, where no other word gives the same spelling."""
    found: dict[str, str | None] = {}
    for word in words:
        if word.isalpha():
            for cut in range(1, len(word) if last or word.endswith("ing") else len(word) - 1):
                typo = word[:cut] + word[cut + 1 :]
                found[typo] = word if found.get(typo, word) == word else None  # "ther": there or their?
    return {typo: word for typo, word in found.items() if word}


class _SortedRows:
    """The classifier's feature names, sorted, as one string: each name's row is its position.

    A dict of 40,000 names takes 5 ms to unpickle, which `cptbot ask` would pay to look
    up a few dozen; this loads at once and is searched by bisection until enough lookups
    (a few questions' worth) make building the dict worth it.
    """

    DICT_AFTER = 500  # lookups

    def __init__(self, names: list[str]) -> None:
        self.text = "\n".join(names)
        self.starts = array("l", [0])
        for name in names:
            self.starts.append(self.starts[-1] + len(name) + 1)
        self.lookups = 0

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, row: int) -> str:
        return self.text[self.starts[row] : self.starts[row + 1] - 1]

    def get(self, name: str) -> int | None:
        row = bisect_left(self, name)
        return row if row < len(self) and self[row] == name else None

    def spend(self, lookups: int) -> bool:
        """Count `lookups` about to be made; True once a dict would now be cheaper."""
        self.lookups += lookups
        return self.lookups > self.DICT_AFTER

    def to_dict(self) -> dict[str, int]:
        return {name: row for row, name in enumerate(self.text.split("\n"))} if self.text else {}


class Matcher:
    """Scores questions against one knowledge base; build once, call `match` many times."""

    def __init__(self, kb: KnowledgeBase, *, exclude: Collection[tuple[str, int]] = ()) -> None:
        """Index `kb`; `exclude` names examples, as (intent id, position), to leave out."""
        self.kb = kb
        settings = kb.matching
        self._clarify_at = settings.clarify_threshold
        self._clarify_score = settings.clarify_score
        self._smalltalk_at = settings.smalltalk_threshold
        self._classifier_weight = settings.classifier_weight
        # Bars to answer at: (least top score, least lead over the runner-up, least probability).
        self._bars = (
            (settings.answer_threshold, settings.clarify_margin, settings.answer_probability),
            (settings.lead_threshold, settings.lead_margin, 0.0),
        ) + (
            ()
            if settings.sure_threshold is None
            else ((settings.sure_threshold, settings.sure_margin, settings.sure_probability),)
        )
        self._topic_bar = (
            None
            if settings.topic_threshold is None
            else (settings.topic_threshold, settings.topic_margin, settings.topic_probability)
        )

        self._qualified = frozenset(settings.qualified_concepts)
        self._phrases: dict[tuple[str, ...], str] = {tuple(p.split()): "" for p in FILLER_PHRASES}
        for concept, terms in kb.concepts.items():
            for term in terms:
                words = tuple(_WORD.findall(clean(term)))
                if words:
                    self._phrases[words] = concept
        self._longest = max((len(p) for p in self._phrases), default=1)
        singles = {p[0] for p in self._phrases if len(p) == 1}
        phrase_words = {w for p in self._phrases if len(p) > 1 for w in p}
        self._intents = kb.intents
        self._requires = [tuple(frozenset(slot) for slot in intent.requires) for intent in kb.intents]
        self._excludes = [(frozenset(intent.excludes), frozenset(intent.excludes_in_sentence)) for intent in kb.intents]
        self._unmet = [STRICT_UNMET_FACTOR if intent.strict else UNMET_FACTOR for intent in kb.intents]
        self._strict = [index for index, intent in enumerate(kb.intents) if intent.strict]
        # Greetings and thanks in a ticket-style example are pleasantry, not what it asks.
        chatter = {c for i in kb.intents if i.smalltalk for slot in i.requires for c in slot}
        chatter -= {c for i in kb.intents if not i.smalltalk for slot in i.requires for c in slot}
        # Every text learnt from, as words: each intent's, the out-of-scope and the background lines.
        taught = [
            [_WORD.findall(clean(t)) for n, t in enumerate([i.question, *i.examples]) if (i.id, n - 1) not in exclude]
            for i in kb.intents
        ]
        outside_words = [_WORD.findall(clean(t)) for t in kb.out_of_scope]
        background_words = [_WORD.findall(clean(t)) for t in kb.background]
        example_words = {w for texts in (*taught, outside_words) for words in texts for w in words}
        # A customer's typo kept in an example ("we nevr use codes") is read as the concept or
        # glue word it drops a letter of, in examples and questions alike; not an everyday word.
        spelled = singles | phrase_words | STOPWORDS
        written = example_words - {w for words in background_words for w in words} - spelled
        self._respell = {
            typo: word
            for typo, word in _dropped_letter((w for w in spelled if len(w) >= 4), last=False).items()
            if typo in written
        }
        profiles: list[set[str]] = []
        # The classifier's documents: (class, feature counts); the intents, then out of scope.
        documents: list[tuple[int, dict[str, int]]] = []
        everyday: set[str] = set()
        # The terms of each of the answers' examples (small talk aside), a set per example.
        inside: list[set[str]] = []
        # Every term of each answer's examples, a set per answer (small talk aside).
        answers: list[set[str]] = []
        for index, intent in enumerate(kb.intents):
            vocabulary: set[str] = set()
            if not intent.smalltalk:
                answers.append(set())
            for words in taught[index]:
                terms = self._terms(words, fuzzy=False)
                documents.append((index, self._features(words, terms)))
                vocabulary.update(terms if intent.smalltalk else set(terms) - chatter)
                if not intent.smalltalk:
                    inside.append(set(terms))
                    answers[-1].update(terms)
            profiles.append(vocabulary)
        # Small talk customers wrap around questions of every kind ("hi", "thanks") is pleasantry:
        # it does not dilute what the rest of the message asks.
        self._pleasantry = frozenset(c for c in chatter if 2 * sum(c in terms for terms in answers) >= len(answers))
        outside = len(kb.intents)
        oos_terms: set[str] = set()
        outside_lines: list[set[str]] = []
        for words in outside_words:
            terms = self._terms(words, fuzzy=False)
            oos_terms.update(terms)
            outside_lines.append(set(terms))
            documents.append((outside, self._features(words, terms)))
        for words in background_words:
            terms = self._terms(words, fuzzy=False)
            documents.append((outside, self._features(words, terms)))
            everyday.update(terms)
        # The FAQ's own topics ("CPT", "Optum"): concepts at least 1% of the answers' examples
        # name and no everyday background line does. A question naming one is answered on a
        # lower bar; without a background list nothing is known to be everyday, so none is.
        named: dict[str, int] = {}
        for concept in (c for terms in inside for c in terms if c in kb.concepts):
            named[concept] = named.get(concept, 0) + 1
        common = max(1.0, len(inside) / 100)
        self.topics = (
            frozenset(c for c, n in named.items() if c not in everyday and n >= common) if everyday else frozenset()
        )

        self._vocabulary = sorted((singles | phrase_words | example_words) - STOPWORDS)
        self._known = frozenset(self._vocabulary) | STOPWORDS
        # Words of the everyday background are real words, not typos of the FAQ's: "tank" is
        # no "thank", "pride" no "price".
        self._everyday = frozenset(w for words in background_words for w in words) - self._known
        self._glue = sorted(STOPWORDS)
        # A short word with one letter dropped: "evry" -> "every".
        self._dropped = {
            typo: word
            for typo, word in _dropped_letter((w for w in self._known if 4 <= len(w) <= 5), last=True).items()
            if typo not in self._known
        }
        n = len(profiles)
        self._w_max = 1.0 + math.log(n)
        df: dict[str, int] = {}
        for profile in profiles:
            for term in profile:
                df[term] = df.get(term, 0) + 1
        self._weight = {t: 1.0 + math.log(n / d) for t, d in df.items()}
        # Topics only out-of-scope examples name: a concept of the FAQ's ("penalty"), or a long
        # word ("refund"); short ones ("move", "back") are too common to count as a topic.
        foreign = {t for t in oos_terms - set(df) if t in kb.concepts or len(t) >= 6}
        for term in foreign:
            self._weight[term] = FOREIGN_WEIGHT * self._w_max
        # Of those, the concepts veto: the author grouped them as a topic the FAQ does not cover.
        # So do concepts the out-of-scope examples name far more often than the answers' do,
        # counted apart with and without one of the FAQ's topics: "who maintains ICD-10?" is
        # not about CPT, "we use ICD-10, not CPT: do we need it?" is.
        vetoes = frozenset(t for t in foreign if t in kb.concepts)
        self._foreign = tuple(
            vetoes | _outsiders(inside, outside_lines, kb.concepts.keys(), self.topics, topical=topical)
            for topical in (False, True)
        )
        # "How much per year?" names none of the FAQ's topics, yet asks about them: for an
        # `implied` intent, the entries of `requires` that name a topic count as met then.
        self._implied = [
            tuple(slot for slot in slots if slot.isdisjoint(self.topics)) or slots if intent.implied else slots
            for slots, intent in zip(self._requires, kb.intents)
        ]
        # term -> intents that know it
        self._postings: dict[str, list[int]] = {}
        for index, profile in enumerate(profiles):
            for term in profile:
                self._postings.setdefault(term, []).append(index)
        self._train(documents, classes=outside + 1)
        self._correct = lru_cache(maxsize=65536)(self._correct_word)

    def __getstate__(self) -> dict[str, Any]:
        # The typo cache wraps a bound method, which pickle cannot carry; it is rebuilt.
        state = dict(self.__dict__)
        del state["_correct"]
        if isinstance(self._rows, dict):
            state["_rows"] = _SortedRows(list(self._rows))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._correct = lru_cache(maxsize=65536)(self._correct_word)

    # -- text to terms -------------------------------------------------------------------

    def _correct_word(self, word: str) -> str:
        if word in self._known or word.isdigit():
            return word
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                stem = word[: -len(suffix)]
                for candidate in (stem, stem + "e", stem + "y"):
                    if candidate in self._known:
                        return candidate
        if word.endswith("in") and word + "g" in self._known:
            return word + "g"  # "makin", "anythin"
        if word in self._everyday:
            return word
        if len(word) < 5:
            # Short words are corrected only for a dropped letter ("evry", "nevr", "hav"):
            # one letter swapped makes another real word too often ("dogs", "docs").
            return self._dropped.get(word) or word
        limit = 1 if len(word) < 9 else 2
        from rapidfuzz import process  # imported on the first unknown word, not at start-up
        from rapidfuzz.distance import OSA

        for choices in (self._vocabulary, self._glue):
            found = process.extractOne(word, choices, scorer=OSA.distance, score_cutoff=limit)
            # Short real words one letter apart ("lost" and "cost") are rarely typos of each
            # other unless they start alike; long ones usually are.
            if found and (len(word) >= 7 or found[0][0] == word[0]):
                return found[0]
        return word

    def _terms(self, words: list[str], *, fuzzy: bool = True) -> list[str]:
        words = [self._respell.get(w, w) for w in words]
        if fuzzy:
            words = [w for word in words for w in CHAT_WORDS.get(word, word).split()]
            words = [self._correct(w) for w in words]
        terms: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(self._longest, len(words) - i), 0, -1):
                concept = self._phrases.get(tuple(words[i : i + size]))
                if concept is not None:
                    if concept:
                        if (
                            fuzzy
                            and concept in self._qualified
                            and terms
                            and terms[-1] == words[i - 1]
                            and terms[-1] not in self._known
                        ):
                            # "SNOMED licensing", "ICD10 codes": an unknown word naming another kind of license.
                            terms[-1] = "!" + terms[-1]
                        terms.append(concept)
                    i += size
                    break
            else:
                word = words[i]
                if word.isdigit():
                    terms.append(_YEAR if len(word) == 4 and word[:2] in ("19", "20") else _NUMBER)
                elif word not in STOPWORDS:
                    terms.append(word)
                i += 1
        return terms

    @staticmethod
    def _features(words: list[str], terms: list[str]) -> dict[str, int]:
        """Counts of the classifier's features: terms and plain words, single and in pairs.

        Terms carry the FAQ's concepts and typo corrections; plain words keep what terms drop
        ("who", "how", "why"), which tells "who sells it" from "how do I get it".
        """
        counts: dict[str, int] = {}
        for kind, tokens in (
            ("t", terms),
            ("w", ["#" if w.isdigit() else w for w in words if len(w) > 1 or w.isdigit()]),
        ):
            grams = [f"{kind} {t}" for t in tokens] + [f"{kind} {a} {b}" for a, b in zip(tokens, tokens[1:])]
            for gram in grams:
                counts[gram] = counts.get(gram, 0) + 1
        return counts

    def _vector(self, counts: dict[str, int]) -> dict[int, float]:
        """TF-IDF weights of known features by row, each kind (terms, words) scaled to unit length."""
        weighted: list[tuple[int, str, float]] = []
        norms = {"t": 0.0, "w": 0.0}
        rows, idf = self._rows, self._idf
        if not isinstance(rows, dict) and rows.spend(len(counts)):
            self._rows = rows = rows.to_dict()
        for feature, count in counts.items():
            row = rows.get(feature)
            if row is not None:
                value = (1.0 + math.log(count)) * idf[row]
                weighted.append((row, feature[0], value))
                norms[feature[0]] += value * value
        scale = {kind: 1.0 / math.sqrt(norm) for kind, norm in norms.items() if norm}
        return {row: value * scale[kind] for row, kind, value in weighted}

    def _train(self, documents: list[tuple[int, dict[str, int]]], *, classes: int) -> None:
        """Fit multinomial naive Bayes on TF-IDF vectors of (class, feature counts) documents."""
        df: dict[str, int] = {}
        answerable: set[str] = set()
        for index, counts in documents:
            for feature in counts:
                df[feature] = df.get(feature, 0) + 1
            if index < classes - 1:
                answerable.update(counts)
        size = len(documents)
        kept = sorted(f for f, d in df.items() if d >= MIN_DF or f in answerable)
        # Features by row number (in sorted order, see _SortedRows), the model in flat arrays:
        # a cached matcher loads in a few ms.
        self._rows: dict[str, int] | _SortedRows = {f: row for row, f in enumerate(kept)}
        self._idf = array("d", (math.log((1 + size) / (1 + df[f])) + 1.0 for f in kept))
        mass: list[dict[int, float]] = [{} for _ in kept]
        totals = [0.0] * classes
        members = [0] * classes
        for index, counts in documents:
            members[index] += 1
            for row, value in self._vector(counts).items():
                mass[row][index] = mass[row].get(index, 0.0) + value
                totals[index] += value
        alpha, features = NB_SMOOTHING, len(df)
        # log P(feature | class) = log(mass + alpha) - log(total + alpha * features): kept sparse
        # as the class's `_base` for a feature it never saw plus `_evidence` for one it did.
        # `features` counts the pruned one-off words too (the thresholds were chosen so).
        self._prior = [math.log(m / size) if m else -math.inf for m in members]
        self._base = [math.log(alpha) - math.log(t + alpha * features) for t in totals]
        # Row r's classes and evidence are `_classes[j]`, `_evidence[j]` for j in `_start[r]` .. `_start[r + 1]`.
        self._start = array("l", [0])
        self._classes = array("H")
        self._evidence = array("d")
        for row in mass:
            for index, value in row.items():
                self._classes.append(index)
                self._evidence.append(math.log(value + alpha) - math.log(alpha))
            self._start.append(len(self._classes))

    # -- scoring -------------------------------------------------------------------------

    def _scores(self, terms: Iterable[str], message: frozenset[str] = frozenset()) -> tuple[list[float], float]:
        """Each intent's score for one sentence, and the best answer's score with pleasantry counted.

        `message` holds the terms of the whole message.
        """
        present = set(terms)
        total = 0.0
        # "hi there, who sells it?": the greeting's weight does not dilute what the rest asks.
        pleasantry = 0.0
        foreign = False
        topical = not self.topics.isdisjoint(message or present)
        vetoes = self._foreign[topical]
        covered = [0.0] * len(self._intents)
        for term in present:
            weight = self._weight.get(term)
            if weight is None:
                if term[0] == "!":
                    weight = FOREIGN_WEIGHT * self._w_max
                    foreign = True
                else:
                    weight = UNKNOWN_WEIGHT * self._w_max if len(term) > 2 else 0.0
            elif term in vetoes:
                foreign = True
            total += weight
            if term in self._pleasantry:
                pleasantry += weight
            for index in self._postings.get(term, ()):
                covered[index] += weight
        if not total:
            return covered, 0.0
        scores = []
        asking = 0.0
        asked = total - pleasantry
        # Only when every word is the answers' own: "how much is my comcast bill" is not implied.
        implied = not topical and self._postings.keys() >= present
        for requires, said, excludes, unmet, cover, intent in zip(
            self._implied if implied else self._requires,
            self._requires,
            self._excludes,
            self._unmet,
            covered,
            self._intents,
        ):
            score = 100.0 * cover / total
            missed = _misses(requires, excludes, present, message)
            if missed:
                score *= unmet
            elif requires is not said and _misses(said, excludes, present, message):
                score *= IMPLIED_FACTOR
            # A topic only the out-of-scope examples name ("refund") is one no intent answers.
            elif foreign:
                score *= FOREIGN_FACTOR
            if not intent.smalltalk:
                asking = max(asking, score)
                # An answer the question fits is scored on what it asks, pleasantry aside.
                if asked and not missed:
                    score *= total / asked
            scores.append(score)
        return scores, asking

    def _segment_scores(self, parts: list[frozenset[str]]) -> list[float]:
        """Each intent's best score over the whole message and each of its sentences.

        `parts` holds the terms of the whole message, then of each sentence if there are
        several. Small talk in a message that also asks something real ("Hi! Who sells the
        license?") is pleasantry, not the question: it is scored down.
        """
        message = parts[0]
        best = [0.0] * len(self._intents)
        # The best an answer covers a whole part, pleasantry counted:
        # "thanks for the answer" is mostly thanks, however well "answer" alone is covered.
        asking = 0.0
        for number, terms in enumerate(parts):
            scores, part_asking = self._scores(terms, message)
            asking = max(asking, part_asking)
            for index, score in enumerate(scores):
                # A greeting line on top of a long ticket does not make the ticket small talk.
                if score > best[index] and (number == 0 or not self._intents[index].smalltalk):
                    best[index] = score
        if asking >= self._clarify_at:
            best = [s * UNMET_FACTOR if i.smalltalk else s for s, i in zip(best, self._intents)]
        return best

    # -- the verdict ---------------------------------------------------------------------

    def match(self, text: str, *, limit: int = 3) -> Match:
        """Rank the intents for `text` and decide: answer, clarify or decline."""
        replies = self.kb.replies
        notice = None
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        max_chars = self.kb.matching.max_chars
        if len(text) > max_chars:
            text = text[:max_chars]
            notice = replies["truncated"]
        cleaned = clean(text)
        if not _WORD.search(cleaned):
            return Match(text=text, decision="decline", candidates=(), answer=replies["empty"], notice=notice)
        words = _WORD.findall(cleaned)
        terms = self._terms(words)
        message = frozenset(terms)
        sentences = [s for s in _SEGMENT.split(cleaned) if s.strip()]
        parts = [message] + [frozenset(self._terms(_WORD.findall(s))) for s in sentences if len(sentences) > 1]
        similarity = self._segment_scores(parts)
        scores = similarity
        posterior = self._posterior(self._features(words, terms))
        # A strict intent that no part of the question fits cannot be its answer: the classifier's
        # belief in it ("if we use codes, do we need it?" sounds like 6.4) goes to the others.
        ruled_out = [
            k
            for k in self._strict
            if all(_misses(self._requires[k], self._excludes[k], part, message) for part in parts)
        ]
        if ruled_out:
            kept = 1.0 - sum(posterior[k] for k in ruled_out)
            if kept > 0:
                posterior = [0.0 if k in ruled_out else p / kept for k, p in enumerate(posterior)]
        weight = self._classifier_weight
        keep = 1.0 - weight
        if weight:
            scores = [
                s if i.smalltalk else s * (keep + weight * p) for s, p, i in zip(similarity, posterior, self._intents)
            ]
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        best = order[0]
        probability = posterior[best]
        rivals = order[1:]
        family = self._intents[best].family
        if weight and family and rivals and scores[rivals[0]] > 0 and self._intents[rivals[0]].family == family:
            # "How much is it?" is answered by the fee rule and the estimate alike: the two
            # best of one family are judged together, their belief added, against the rest.
            probability += posterior[rivals[0]]
            scores[best] = similarity[best] * (keep + weight * probability)
            rivals = rivals[1:]
        candidates = tuple(self._candidate(i, scores[i]) for i in order[:limit] if scores[i] > 0)
        if not candidates:
            return Match(text=text, decision="decline", candidates=(), answer=replies["decline"], notice=notice)
        decision = self._decide(
            [candidates[0].score] + [round(scores[i], 1) for i in rivals[:1] if scores[i] > 0],
            smalltalk=self._intents[best].smalltalk,
            similarity=similarity[best],
            probability=probability,
            topical=not self.topics.isdisjoint(message),
        )
        if decision == "answer":
            answer = self._intents[best].answer
        elif decision == "clarify":
            candidates = (
                tuple(c for c, i in zip(candidates, order) if similarity[i] >= self._clarify_at) or candidates[:1]
            )
            lead = replies["clarify_one" if len(candidates) == 1 else "clarify"]
            answer = lead + "\n" + "\n".join(f"{n}. {c.question}" for n, c in enumerate(candidates, 1))
        else:
            answer = replies["decline"]
        return Match(text=text, decision=decision, candidates=candidates, answer=answer, notice=notice)

    def _posterior(self, features: dict[str, int]) -> list[float]:
        """How likely each class is (the intents, then out of scope), by naive Bayes."""
        vector = self._vector(features)
        mass = sum(vector.values())
        logs = [prior + base * mass for prior, base in zip(self._prior, self._base)]
        start, classes, evidence = self._start, self._classes, self._evidence
        for row, value in vector.items():
            first, end = start[row], start[row + 1]
            for index, weight in zip(classes[first:end], evidence[first:end]):
                logs[index] += value * weight
        top = max(logs)
        odds = [math.exp((log - top) / NB_TEMPERATURE) for log in logs]
        total = sum(odds)
        return [o / total for o in odds]

    def _decide(
        self, scores: list[float], *, smalltalk: bool, similarity: float, probability: float, topical: bool
    ) -> Decision:
        """Answer on a clear, confident lead; clarify what is similar and scored enough; else decline.

        `topical`: the question names one of the FAQ's own topics, so a lower bar is safe.
        """
        top = scores[0]
        lead = top - (scores[1] if len(scores) > 1 else 0.0)
        if smalltalk:
            # "Did you mean: Hello?" helps nobody: small talk is answered or declined.
            return "answer" if top >= self._smalltalk_at else "decline"
        bars = self._bars + (self._topic_bar,) if topical and self._topic_bar else self._bars
        if any(top >= least and lead >= ahead and probability >= sure for least, ahead, sure in bars):
            return "answer"
        # Similar words with the classifier sure it is none of these ("is the fee tax
        # deductible?"): offering the options would only suggest answers that do not fit.
        if similarity >= self._clarify_at and top >= self._clarify_score:
            return "clarify"
        return "decline"

    def _candidate(self, index: int, score: float) -> Candidate:
        intent: Intent = self._intents[index]
        return Candidate(intent=intent.id, label=intent.source, score=round(score, 1), question=intent.question)
