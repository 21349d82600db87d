"""The conversation: FAQ answers, and the fee estimate asked for one slot at a time.

Like h11, this module holds a state machine and no I/O.  The caller keeps the `State`,
feeds each message to `Conversation.respond(state, text)` and gets back the next state and
a `Reply` (text plus structured fields).  States are small frozen dataclasses that
serialise to JSON (`dump_state`) and are validated when loaded back (`load_state`).

The estimate follows "How the fee works" in the FAQ source (6.1, 6.2, 6.4): it asks for
the number of doctors, then users (offering the AMA default of users-per-doctor), and
shows the arithmetic.  A rejected answer leaves the state as it was, except for a count
of bad answers in a row; after three the bot offers to stop and hand off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, NamedTuple

from .errors import InputError, StateError
from .fee import (
    MAX_DOCTORS,
    MAX_USERS,
    Estimate,
    check_doctors,
    check_users,
    default_users,
    estimate_fee,
    format_money,
)
from .knowledge import KnowledgeBase
from .matching import Candidate, Match, Matcher, clean

Mode = Literal["idle", "offered", "estimate"]
Slot = Literal["doctors", "users"]

MODES: tuple[str, ...] = ("idle", "offered", "estimate")
DECISIONS: tuple[str, ...] = ("answer", "clarify", "decline", "ask")
SLOTS: tuple[str, ...] = ("doctors", "users")
MAX_STRIKES = 3
"""Bad answers in a row after which the bot offers to stop and hand off."""

STATE_VERSION = 1
_ESTIMATE = "estimate"
_NO_CODES = "6.4"
_FEE_LABELS = ("6.1", "6.2")


@dataclass(frozen=True)
class State:
    """Where a conversation is; everything the next reply depends on.

    mode        "idle", "offered" (the last reply offered an estimate) or "estimate"
    doctors     the practice's doctors, once known
    users       the practice's users (doctors included), once known
    use_default the customer took the AMA default users (users stays None)
    expecting   the slot the bot asked for ("doctors" / "users"), None when not asking
    proposal    a value the bot asked the customer to confirm for `expecting`
    strikes     bad answers in a row (0 to MAX_STRIKES)
    options     intent ids of the numbered options of the last clarify reply
    """

    mode: Mode = "idle"
    doctors: int | None = None
    users: int | None = None
    use_default: bool = False
    expecting: Slot | None = None
    proposal: int | None = None
    strikes: int = 0
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """What the bot says, and the structured facts behind it."""

    text: str
    decision: str  # "answer" | "clarify" | "decline" | "ask"
    label: str | None
    expecting: str | None
    estimate: Estimate | None = None
    match: Match | None = None
    options: tuple[Candidate, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """One line of the `cptbot converse --jsonl` protocol."""
        return {
            "reply": self.text,
            "decision": self.decision,
            "label": self.label,
            "expecting": self.expecting,
            "estimate": self.estimate.to_dict() if self.estimate is not None else None,
        }


UNSURE_NOTE = "You weren't sure of your user count, so I used the AMA's estimate. "
CHANGE_HINT = "To change a figure say, for example, 'actually 4 doctors'; or say 'start over'."


def one_shot(reply: Reply) -> Reply:
    """The reply for a single message with no conversation to follow (ask, tickets)."""
    return replace(reply, text=reply.text.replace("\n" + CHANGE_HINT, ""))


# -- reading counts out of a message ------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ONES = {
    word: n
    for n, word in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
        + ("thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
    )
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_VAGUE = _words("few several lots lot many some bunch handful tons ton loads plenty numerous multiple")

# What a number may count.  Doctors; users (every login, doctors included); staff-like
# words that may or may not include the doctors; and people who are surely not doctors.
_DOCTOR = _words(
    "doctor doctors physician physicians provider providers doc docs md mds dr drs clinician clinicians "
    "practitioner practitioners dentist dentists surgeon surgeons prescriber prescribers"
)
_TOTAL = _words("user users login logins seat seats account accounts")
_STAFF = _words(
    "staff staffers staffer people persons person employees employee individuals members member headcount us"
)
_OTHERS = _words(
    "others nurse nurses ma mas assistant assistants biller billers receptionist receptionists admin admins "
    "administrator administrators coder coders scribe scribes manager managers therapist therapists"
)
_OTHER_MARK = _words("other more additional extra non nondoctor support plus besides front desk office")
_TOTAL_MARK = _words("total totally altogether overall including inclusive all")
# Words that may stand between a number and its unit ("4 other office staff", "5 of us").
_FILLER = (
    _words(
        "of the our in full part time fulltime parttime clinical medical active named different separate individual"
        " team practice licensed dash"
    )
    | _OTHER_MARK
    | _TOTAL_MARK
)
# Words that may stand between a unit and a number after it ("doctors: about 3").
_BEFORE = _words("is are be about around roughly approximately approx maybe probably exactly say like of total")
_PER = _words("per each every apiece")

_TOKEN = re.compile(
    r"(?P<money>\$\s*\d[\d,]*(?:\.\d+)?)"
    r"|(?P<num>(?<![\w.])[-+\u2212]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?)"
    r"|(?P<word>[^\W\d_]+)"
    r"|(?P<sep>[.,;!?])"
    r"|(?P<dash>[-\u2013\u2014~])"
    r"|(?P<rest>\d+)"
)


# The parser's own records are named tuples: defined at import for a tenth of a dataclass's
# cost, which `cptbot ask` pays on every start.
class _Num(NamedTuple):
    value: int | None  # None when the text is not a usable count (see problem)
    raw: str
    start: int
    end: int  # index after the last token of the number
    problem: str | None = None  # "negative" | "fraction" | "exponent" | "vague"
    approx: bool = False  # "a couple": confirm before using


class _Count(NamedTuple):
    kind: str  # "doctors" | "total" | "staff" | "others" | "bare"
    num: _Num
    ranged: bool = False


class _Parsed(NamedTuple):
    counts: tuple[_Count, ...]
    solo: bool
    just_me: bool
    vague: str | None
    yes: bool
    no: bool
    unsure: bool
    empty: bool
    fee_word: bool
    our_word: bool
    no_codes: bool
    command: str | None  # "cancel" | "restart"

    def of(self, *kinds: str) -> list[_Count]:
        return [c for c in self.counts if c.kind in kinds]


_CANCEL = re.compile(
    r"^(?:ok(?:ay)? |please |oh )*(?:cancel|never ?mind|nvm|stop|quit|exit|forget (?:it|about it)|abort|no thanks)"
    r"(?: it| that| this| the estimate| estimating| please| thanks| thank you)*$"
)
_RESTART = re.compile(
    r"^(?:ok(?:ay)? |please |lets |let us |can we |can i )*"
    r"(?:start (?:over|again|afresh)|restart|reset|begin again|redo)(?: the estimate| it| please)*$"
)
_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|ya|y|sure|ok|okay|correct|right|exactly|please|yes please|thats right|that is right"
    r"|indeed|affirmative|go ahead|lets do it|do it)(?: please| thanks| thats right| correct)*$"
)
_NO = re.compile(r"^(?:no|nope|nah|n|not quite|wrong|incorrect)(?: thanks| its not| that is not| thats not)*$")
_UNSURE = re.compile(
    r"\b(?:not sure|unsure|dont know|do not know|dunno|no idea|idk|no clue|default|defaults|the standard|"
    r"standard amount|"
    r"whatever the ama|ama (?:assumption|estimate|number)|use (?:the )?(?:ama|default)|skip|pass|not certain|cant say|"
    r"go with (?:the )?(?:ama|default|standard))\b"
)
_NO_CODES_RE = re.compile(
    r"\b(?:dont|do not|doesnt|does not|didnt|did not|never|no longer|arent|are not|not|wont|will not)"
    r"(?: \w+){0,2}? (?:use|uses|using|bill with|bill using|billing with|work with|do|code with|need|have)"
    r"(?: any| the| a)? (?:cpt|cpts|cpt4|cpt 4)\b"
    r"|\b(?:no|without|not using|never use|never used) (?:any )?(?:cpt|cpts)\b"
)
_FEE_WORDS = re.compile(
    r"\b(?:fee|fees|cost|costs|price|pricing|priced|pay|paying|owe|charge|charged|bill|billed|estimate|estimated|"
    r"quote|total|how much|spend|expense|dollars|budget)\b"
)
_OUR_WORDS = re.compile(r"\b(?:we|us|our|ours|my|mine|i|im|were|weve|me)\b")
_SOLO = re.compile(
    r"\b(?:solo|single (?:doctor|physician|provider|doc)|one (?:man|woman|person) (?:practice|office|show|band))\b"
)
_JUST_ME = re.compile(r"\b(?:just|only) (?:me|myself)\b|\bby myself\b|\bits me\b$")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for found in _TOKEN.finditer(text):
        kind = found.lastgroup or "rest"
        out.append((kind, found.group()))
    return out


def _number_words(tokens: list[tuple[str, str]], i: int) -> tuple[int, int, bool] | None:
    """A number written in words starting at token i: (value, next index, approximate)."""
    words = [t[1] if t[0] == "word" else "" for t in tokens]
    n = len(words)
    if i < n and words[i] == "a" and i + 1 < n:
        nxt = words[i + 1]
        if nxt == "couple":
            j = i + 2 + (i + 2 < n and words[i + 2] == "of")
            return 2, j, True
        if nxt == "dozen" or nxt in _SCALES:
            i += 1
            if nxt == "dozen":
                return 12, i + 1 + (i + 1 < n and words[i + 1] == "of"), False
            total, current, last, j = 0, 1, "ones", i
        else:
            return None
    elif i < n and (words[i] in _ONES or words[i] in _TENS or words[i] == "dozen" or words[i] == "half"):
        total, current, last, j = 0, 0, "", i
    else:
        return None
    if words[j] == "half":
        if j + 2 < n and words[j + 1] == "a" and words[j + 2] == "dozen":
            return 6, j + 3, False
        return None
    consumed = False
    while j < n:
        w = words[j]
        if tokens[j][0] == "dash" and last == "tens" and j + 1 < n and 0 < _ONES.get(words[j + 1], 0) < 10:
            j += 1  # "twenty-five"
            continue
        if w in _ONES:
            if last in ("ones", "teen") or (last == "tens" and _ONES[w] >= 10):
                break
            current += _ONES[w]
            last = "teen" if _ONES[w] >= 10 else "ones"
        elif w in _TENS:
            if last in ("ones", "teen", "tens"):
                break
            current += _TENS[w]
            last = "tens"
        elif w == "dozen":
            current = (current or 1) * 12
            last = "scale"
        elif w in _SCALES:
            scale = _SCALES[w]
            if scale == 100:
                current = (current or 1) * 100
            else:
                total += (current or 1) * scale
                current = 0
            last = "scale"
        elif w == "and" and last == "scale" and j + 1 < n and (words[j + 1] in _ONES or words[j + 1] in _TENS):
            j += 1
            continue
        else:
            break
        consumed = True
        j += 1
    if not consumed:
        return None
    if j < n and words[j] == "of" and last == "scale":
        j += 1  # "a dozen of them"
    return total + current, j, False


def _digits(raw: str) -> tuple[int | None, str | None]:
    text = raw.replace("\u2212", "-").replace(",", "")
    if "e" in text:
        return None, "exponent"
    if "." in text:
        return None, "fraction"
    value = int(text)
    if value < 0 or text.startswith("-"):
        return value, "negative"
    return value, None


def _unit_kind(word: str) -> str | None:
    if word in _DOCTOR:
        return "doctors"
    if word in _TOTAL:
        return "total"
    if word in _STAFF:
        return "staff"
    if word in _OTHERS:
        return "others"
    return None


def _read_counts(tokens: list[tuple[str, str]]) -> tuple[list[_Count], str | None]:
    """Every count in the message with what it counts; and a vague amount word, if any."""
    nums: list[_Num] = []
    vague: str | None = None
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "num":
            value, problem = _digits(text)
            nums.append(_Num(value, text, i, i + 1, problem))
            i += 1
            continue
        if kind == "word":
            found = _number_words(tokens, i)
            if found:
                value, j, approx = found
                raw = " ".join(t[1] for t in tokens[i:j])
                nums.append(_Num(value, raw, i, j, None, approx))
                i = j
                continue
            if text in _VAGUE and vague is None:
                vague = text if not (i > 0 and tokens[i - 1][1] == "a") else f"a {text}"
        i += 1

    words = [t[1] if t[0] == "word" else t[0] for t in tokens]
    claimed: set[int] = set()
    counts: list[_Count] = []
    for num in nums:
        start, end = num.start, num.end
        prev = words[start - 1] if start else ""
        if prev in ("cpt", "icd", "cpt4", "version", "code", "codes", "page", "section", "option", "number") or (
            start and tokens[start - 1][0] == "money"
        ):
            continue
        # Look ahead for the unit: "4 other office staff", "5 of us".
        unit, marks, j = None, set(), end
        while j < len(words) and j - end <= 3:
            w = words[j]
            unit = _unit_kind(w)
            if unit:
                break
            if w not in _FILLER:
                break
            marks.add(w)
            j += 1
        if unit and unit == "staff" and words[j] == "us" and "of" not in marks:
            unit = None  # "give us 3" is not a head count
        if unit:
            after = j + 1
            # "4 users per doctor" and "$17 a user" describe the rate, not the practice.
            if after < len(words) and (
                words[after] in _PER
                or (words[after] == "a" and after + 1 < len(words) and _unit_kind(words[after + 1]))
            ):
                claimed.add(j)
                continue
            claimed.add(j)
            if after < len(words) and (
                words[after] in ("total", "altogether", "overall", "including", "inclusive")
                or (words[after] == "in" and after + 1 < len(words) and words[after + 1] == "total")
            ):
                marks.add("total")
            if start and words[start - 1] in ("plus", "and") and start >= 2 and words[start - 2] in ("plus",):
                marks.add("plus")
            if prev == "plus":
                marks.add("plus")
            if unit in ("total", "staff") and marks & (_OTHER_MARK | {"plus"}):
                unit = "others"
            elif (unit == "staff" and marks & _TOTAL_MARK) or (unit == "others" and "total" in marks):
                unit = "total"
            counts.append(_Count(unit, num))
            continue
        if end < len(words) and words[end] in _PER:
            continue  # "4 per doctor"
        # Look back for a unit with no number of its own: "doctors: 3", "number of users is 12".
        k = start - 1
        while k >= 0 and words[k] in _BEFORE:
            k -= 1
        if k >= 0 and _unit_kind(words[k]) and k not in claimed and not any(n.end == k for n in nums):
            claimed.add(k)
            counts.append(_Count(_unit_kind(words[k]) or "bare", num))
            continue
        counts.append(_Count("bare", num))

    # "3 or 4 doctors", "3-4 doctors", "3 to 4 doctors": a range, so the count is not known.
    ranged: list[_Count] = []
    for index, count in enumerate(counts):
        nxt = counts[index + 1] if index + 1 < len(counts) else None
        if (
            count.kind == "bare"
            and nxt is not None
            and nxt.num.start - count.num.end == 1
            and words[count.num.end] in ("or", "to", "dash")
        ):
            ranged.append(_Count(nxt.kind, count.num, ranged=True))
            continue
        prev = counts[index - 1] if index else None
        if (
            prev is not None
            and prev.kind == "bare"
            and count.num.start - prev.num.end == 1
            and words[prev.num.end] in ("or", "to", "dash")
        ):
            ranged.append(_Count(count.kind, count.num, ranged=True))
            continue
        ranged.append(count)
    return ranged, vague


def _parse(text: str) -> _Parsed:
    cleaned = " ".join(clean(text).split())
    simple = " ".join(re.findall(r"[^\W_]+", cleaned))
    tokens = _tokens(cleaned)
    counts, vague = _read_counts(tokens)
    if _NO_CODES_RE.search(simple):
        no_codes = True
    else:
        no_codes = False
    return _Parsed(
        counts=tuple(counts),
        solo=bool(_SOLO.search(simple)),
        just_me=bool(_JUST_ME.search(simple)),
        vague=vague,
        yes=bool(_YES.match(simple)),
        no=bool(_NO.match(simple)),
        unsure=bool(_UNSURE.search(simple)),
        empty=not simple,
        fee_word=bool(_FEE_WORDS.search(simple)),
        our_word=bool(_OUR_WORDS.search(simple)),
        no_codes=no_codes,
        command="cancel" if _CANCEL.match(simple) else "restart" if _RESTART.match(simple) else None,
    )


# -- what a message does to the estimate ----------------------------------------------------


class _Bad(NamedTuple):
    """A rejected answer: why, for the re-prompt."""

    slot: Slot
    reason: str


class _Unclear(NamedTuple):
    """An ambiguous count: ask again, maybe proposing a value, without a strike."""

    slot: Slot
    question: str
    proposal: int | None = None
    doctors: int | None = None


_SHOWN = 40


def _quote(raw: str) -> str:
    shown = "".join(ch if ch.isprintable() else " " for ch in raw).strip()
    if len(shown) > _SHOWN:
        shown = shown[: _SHOWN - 1] + "…"
    return f"'{shown}'"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _problem(num: _Num, slot: Slot) -> str | None:
    if num.problem == "negative":
        least = (
            "a practice has at least 1 doctor"
            if slot == "doctors"
            else "every doctor is a user, so there is at least 1"
        )
        return f"{_quote(num.raw)} is a negative number, and {least}"
    if num.problem == "fraction":
        return f"{_quote(num.raw)} is not a whole number of {slot}"
    if num.problem == "exponent":
        return f"{_quote(num.raw)} is written as a power of ten; I need a plain whole number of {slot}"
    return None


class Conversation:
    """The bot's side of a conversation over one knowledge base; holds no per-user data."""

    def __init__(self, kb: KnowledgeBase, matcher: Matcher | None = None) -> None:
        self.kb = kb
        self.matcher = matcher if matcher is not None else Matcher(kb)
        self._intent_ids = frozenset(intent.id for intent in kb.intents)
        self._estimate_intents = frozenset(i.id for i in kb.intents if i.source == _ESTIMATE)
        self._no_codes_intents = frozenset(i.id for i in kb.intents if i.source == _NO_CODES)

    # -- public API ------------------------------------------------------------------------

    def start(self) -> State:
        """The state of a new conversation."""
        return State()

    def respond(self, state: State, text: str) -> tuple[State, Reply]:
        """The next state and the bot's reply to `text`; pure, and never raises for any text."""
        if not isinstance(state, State):
            raise StateError(f"expected a State, got {type(state).__name__}")
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        notice = None
        if len(text) > self.kb.matching.max_chars:
            text = text[: self.kb.matching.max_chars]
            notice = self.kb.replies["truncated"]
        new_state, reply = self._respond(state, text)
        if notice and notice not in reply.text:
            reply = replace(reply, text=f"{notice}\n\n{reply.text}")
        return new_state, reply

    def dump_state(self, state: State) -> dict[str, Any]:
        """The state as a JSON-serialisable mapping (load it back with `load_state`)."""
        return {
            "version": STATE_VERSION,
            "mode": state.mode,
            "doctors": state.doctors,
            "users": state.users,
            "use_default": state.use_default,
            "expecting": state.expecting,
            "proposal": state.proposal,
            "strikes": state.strikes,
            "options": list(state.options),
        }

    def load_state(self, data: object) -> State:
        """A State from `dump_state` output; StateError for anything corrupt or tampered."""
        if not isinstance(data, dict):
            raise StateError(f"a saved state must be a JSON object, got {type(data).__name__}")
        expected = {"version"} | {f.name for f in fields(State)}
        unknown = sorted(str(k) for k in data if k not in expected)
        if unknown:
            raise StateError(f"saved state has unknown field {unknown[0]!r} (allowed: {', '.join(sorted(expected))})")
        missing = sorted(expected - set(data))
        if missing:
            raise StateError(f"saved state is missing field {missing[0]!r}")
        if data["version"] != STATE_VERSION or isinstance(data["version"], bool):
            raise StateError(f"saved state has version {data['version']!r}; this cptbot reads version {STATE_VERSION}")

        def count(name: str, low: int, high: int, *, optional: bool) -> int | None:
            value = data[name]
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                raise StateError(
                    f"saved state field {name!r} must be a whole number{' or null' if optional else ''}, got {value!r}"
                )
            if not low <= value <= high:
                raise StateError(f"saved state field {name!r} is {value}, allowed {low:,} to {high:,}")
            return value

        mode = data["mode"]
        if mode not in MODES:
            raise StateError(f"saved state field 'mode' is {mode!r} (allowed: {', '.join(MODES)})")
        expecting = data["expecting"]
        if expecting is not None and expecting not in SLOTS:
            raise StateError(f"saved state field 'expecting' is {expecting!r} (allowed: doctors, users or null)")
        use_default = data["use_default"]
        if not isinstance(use_default, bool):
            raise StateError(f"saved state field 'use_default' must be true or false, got {use_default!r}")
        doctors = count("doctors", 1, MAX_DOCTORS, optional=True)
        users = count("users", 1, MAX_USERS, optional=True)
        high = MAX_DOCTORS if expecting == "doctors" else MAX_USERS
        proposal = count("proposal", 1, high, optional=True)
        strikes = count("strikes", 0, MAX_STRIKES, optional=False)
        options = data["options"]
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise StateError(f"saved state field 'options' must be a list of intent ids, got {options!r}")
        for option in options:
            if option not in self._intent_ids:
                raise StateError(f"saved state names unknown intent {option!r} in 'options'")
        if len(options) > 10 or len(set(options)) != len(options):
            raise StateError("saved state field 'options' must hold at most 10 different intent ids")

        state = State(
            mode=mode,
            doctors=doctors,
            users=users,
            use_default=use_default,
            expecting=expecting,
            proposal=proposal,
            strikes=strikes,  # type: ignore[arg-type]
            options=tuple(options),
        )
        problem = self._inconsistency(state)
        if problem:
            raise StateError(f"saved state is inconsistent: {problem}")
        return state

    # -- consistency -----------------------------------------------------------------------

    def _inconsistency(self, s: State) -> str | None:
        if s.mode != "estimate":
            if (s.doctors, s.users, s.expecting, s.proposal) != (None, None, None, None) or s.use_default or s.strikes:
                return f"mode {s.mode!r} holds no estimate, yet it has counts, a question or strikes"
            return None
        if s.doctors is not None and s.users is not None and s.users < s.doctors:
            return f"{s.users} users is fewer than {s.doctors} doctors"
        if s.use_default and s.users is not None:
            return "use_default is set, yet users is given too"
        if s.proposal is not None and s.expecting is None:
            return "a proposed value without a question"
        if s.expecting is not None and s.options:
            return "numbered options while waiting for a number"
        if s.expecting == "doctors" and s.doctors is not None:
            return "waiting for doctors that are already known"
        if s.expecting == "users" and (s.users is not None or s.use_default):
            return "waiting for users that are already known"
        if s.expecting is None and (s.doctors is None or (s.users is None and not s.use_default)):
            return "an estimate that is neither complete nor asking for anything"
        return None

    # -- the machine -----------------------------------------------------------------------

    def _respond(self, state: State, text: str) -> tuple[State, Reply]:
        p = _parse(text)
        if state.mode == "estimate":
            return self._estimating(state, text, p)
        return self._idle(state, text, p)

    def _idle(self, state: State, text: str, p: _Parsed) -> tuple[State, Reply]:
        picked = self._pick(state, text)
        if picked is not None:
            return picked
        if p.no_codes:
            return self._no_codes(text, stopped=False)
        match = self.matcher.match(text)
        labelled = p.of("doctors", "total", "staff", "others") or p.solo
        wants_estimate = (match.decision == "answer" and match.label == _ESTIMATE) or (
            labelled and (p.fee_word or p.our_word or state.mode == "offered" or match.decision != "answer")
        )
        if state.mode == "offered" and (p.yes or (p.counts and match.decision != "answer")):
            wants_estimate = True
        if wants_estimate:
            return self._begin(p, match)
        return self._from_match(State(), match)

    def _estimating(self, state: State, text: str, p: _Parsed) -> tuple[State, Reply]:
        if p.command == "cancel":
            reply = Reply(
                text="OK, I've stopped the estimate. Ask me anything else about the CPT license.",
                decision="answer",
                label=_ESTIMATE,
                expecting=None,
            )
            return State(), reply
        if p.command == "restart":
            return self._ask(State(mode="estimate", expecting="doctors"), lead="Let's start over.")
        if p.no_codes:
            return self._no_codes(text, stopped=True)

        if state.expecting is None:  # the estimate is done: corrections, or anything else
            picked = self._pick(state, text)
            if picked is not None:
                return picked
            match = self.matcher.match(text)
            if p.of("doctors", "total", "staff", "others") or p.solo:
                if (
                    match.label == _ESTIMATE
                    and p.fee_word
                    and not re.search(r"\b(?:actually|make that|sorry|correction|i mean|instead|change)\b", clean(text))
                ):
                    return self._begin(p, match)
                return self._fill(state, text, p)
            if match.decision == "answer" and match.label == _ESTIMATE:
                new_state, reply = self._result(
                    state, lead="Here is your estimate again; say 'start over' for a new one."
                )
                return new_state, replace(reply, match=match)
            new_state, reply = self._from_match(state, match, offer=False)
            return replace(
                new_state,
                mode="estimate",
                doctors=state.doctors,
                users=state.users,
                use_default=state.use_default,
                strikes=0,
            ), reply

        slot = state.expecting
        if state.proposal is not None and p.yes:
            return self._fill(replace(state, proposal=None), text, p, outcome={slot: state.proposal})
        if state.proposal is not None and p.no:
            return self._ask(replace(state, proposal=None), lead="OK.")
        return self._fill(state, text, p)

    # -- filling slots ---------------------------------------------------------------------

    def _fill(
        self, state: State, text: str, p: _Parsed, *, outcome: dict[str, int | None] | _Bad | _Unclear | None = None
    ) -> tuple[State, Reply]:
        """Apply what the message says to the slots: a new state, a re-prompt, or an aside."""
        if outcome is None:
            outcome = self._read_slots(state, p)
        if isinstance(outcome, _Bad):
            return self._reject(state, outcome)
        if isinstance(outcome, _Unclear):
            doctors = outcome.doctors if outcome.doctors is not None else state.doctors
            asked = replace(
                state,
                doctors=None if outcome.slot == "doctors" else doctors,
                users=None if outcome.slot == "users" else state.users,
                use_default=False if outcome.slot == "users" else state.use_default,
                expecting=outcome.slot,
                proposal=outcome.proposal,
                options=(),
            )
            if asked.users is not None and asked.doctors is not None and asked.users < asked.doctors:
                asked = replace(asked, users=None)
            return asked, Reply(text=outcome.question, decision="ask", label=_ESTIMATE, expecting=outcome.slot)
        if not outcome:
            return self._aside(state, text, p)

        doctors = outcome.get("doctors", state.doctors)
        users = outcome.get("users", state.users)
        use_default = state.use_default
        if "users" in outcome:
            use_default = users is None
        try:
            if "doctors" in outcome:
                check_doctors(doctors)
            if users is not None and doctors is not None:
                check_users(users, doctors=doctors)
            elif users is not None:
                check_users(users, doctors=1)
        except InputError as exc:
            slot: Slot = "users" if "users" in outcome or (state.expecting == "users") else "doctors"
            return self._reject(state, _Bad(slot, str(exc)))
        new = State(mode="estimate", doctors=doctors, users=users, use_default=use_default)
        told = []
        if "doctors" in outcome:
            told.append(_plural(doctors, "doctor"))
        if "users" in outcome and users is not None:
            said = {c.num.value for c in p.counts}
            if doctors is not None and users not in said and users > doctors:
                # "3 doctors and 4 other staff": show the sum, it is ours, not theirs.
                told.append(
                    f"{_plural(users, 'user')} ({_plural(doctors, 'doctor')} + {users - doctors:,} other staff)"
                )
            else:
                told.append(_plural(users, "user"))
        lead = f"Got it: {' and '.join(told)}." if told else "OK, I'll use the AMA's default."
        return self._ask(new, lead=lead)

    def _read_slots(self, state: State, p: _Parsed) -> dict[str, int | None] | _Bad | _Unclear:
        """What the message sets: {"doctors": n, "users": n or None (default)}, or why not."""
        out: dict[str, int | None] = {}
        expecting = state.expecting

        doctor_counts = p.of("doctors")
        if doctor_counts:
            bad = self._bad_counts(doctor_counts, "doctors")
            if bad:
                return bad
            values = sorted({c.num.value for c in doctor_counts if c.num.value is not None})
            if any(c.ranged for c in doctor_counts) or len(values) > 1:
                shown = " and ".join(f"{v:,}" for v in values)
                return _Unclear("doctors", f"You mentioned {shown} doctors. {self._doctors_question()}")
            num = doctor_counts[0].num
            try:
                check_doctors(values[0])
            except InputError as exc:
                return _Bad("doctors", str(exc))
            if num.approx:
                return _Unclear(
                    "doctors",
                    f"Is that {num.value} doctors? Say yes, or tell me how many doctors your practice has.",
                    proposal=num.value,
                )
            out["doctors"] = values[0]
        elif p.solo or (p.just_me and (expecting == "doctors" or state.doctors is None)):
            out["doctors"] = 1

        doctors = out.get("doctors", state.doctors)
        totals, staff, others = p.of("total"), p.of("staff"), p.of("others")
        for group in (totals, staff, others):
            bad = self._bad_counts(group, "users")
            if bad:
                return bad
        if totals:
            values = sorted({c.num.value for c in totals})
            if any(c.ranged for c in totals) or len(values) > 1:
                shown = " and ".join(f"{v:,}" for v in values)
                return _Unclear(
                    "users", f"You mentioned {shown} users. {self._users_question(doctors)}", doctors=out.get("doctors")
                )
            out["users"] = values[0]
        elif others and doctors is not None:
            extra = sum(c.num.value for c in others)  # type: ignore[misc]
            out["users"] = doctors + extra
        elif staff:
            values = sorted({c.num.value for c in staff})
            if len(values) > 1 or any(c.ranged for c in staff):
                return _Unclear(
                    "users",
                    f"You mentioned {' and '.join(map(str, values))} staff. {self._users_question(doctors)}",
                    doctors=out.get("doctors"),
                )
            s = values[0]
            if s == 0:
                pass  # "0 staff": nothing to add
            elif doctors is None:
                out["users"] = s  # "we are 12 people": everyone
            elif s < doctors:
                out["users"] = doctors + s
            elif expecting == "users" and "doctors" not in out:
                out["users"] = s
            else:
                return _Unclear(
                    "users",
                    f"Do the {s:,} staff include the {_plural(doctors, 'doctor')}? Tell me how many users the practice "
                    f"has in all, doctors included: {s:,} if the doctors are among them, {doctors + s:,} if not.",
                    doctors=out.get("doctors"),
                )
        elif p.just_me and expecting == "users" and doctors == 1:
            out["users"] = 1

        bare = p.of("bare")
        if bare:
            target: str | None = None
            if expecting == "doctors" and "doctors" not in out:
                target = "doctors"
            elif expecting == "users" and "users" not in out:
                target = "users"
            elif expecting is None and state.mode != "estimate" and not out:
                target = "doctors"  # "what would 5 pay?": 5 what? confirm before guessing
                num = bare[0].num
                if (
                    len({c.num.value for c in bare}) == 1
                    and num.value is not None
                    and num.problem is None
                    and 1 <= num.value <= MAX_DOCTORS
                ):
                    return _Unclear(
                        "doctors",
                        f"Is that {num.value:,} {'doctor' if num.value == 1 else 'doctors'}? "
                        "Say yes, or tell me how many doctors your practice has.",
                        proposal=num.value,
                    )
                target = None
            if target is not None:
                slot: Slot = target  # type: ignore[assignment]
                bad = self._bad_counts(bare, slot)
                if bad:
                    return bad
                values = sorted({c.num.value for c in bare})
                if len(values) > 1 or any(c.ranged for c in bare):
                    question = self._doctors_question() if slot == "doctors" else self._users_question(doctors)
                    return _Unclear(
                        slot,
                        f"You mentioned {' and '.join(f'{v:,}' for v in values)}. {question}",
                        doctors=out.get("doctors"),
                    )
                num = bare[0].num
                if num.approx:
                    return _Unclear(
                        slot,
                        f"Is that {num.value} {slot}? Say yes, or tell me the number.",
                        proposal=num.value,
                        doctors=out.get("doctors"),
                    )
                out[slot] = values[0]

        if expecting == "users" and "users" not in out and (p.unsure or p.empty):
            out["users"] = None  # the AMA default
        if not out and expecting is not None and not p.counts:
            if p.vague:
                return _Bad(expecting, f"{_quote(p.vague)} is not a number of {expecting}")
            if expecting == "doctors" and (p.unsure or p.empty):
                return _Bad(
                    "doctors",
                    "I need the number of doctors: the AMA's fee is worked out per doctor (FAQ 6.1, 6.2). "
                    "For help with your practice's situation, Practice Fusion recommends contacting Optum360 (FAQ 6.3)",
                )
        return out

    def _bad_counts(self, counts: list[_Count], slot: Slot) -> _Bad | None:
        for c in counts:
            why = _problem(c.num, slot)
            if why:
                return _Bad(slot, why)
        return None

    def _reject(self, state: State, bad: _Bad) -> tuple[State, Reply]:
        strikes = min(state.strikes + 1, MAX_STRIKES)
        new = replace(state, strikes=strikes)
        slot = state.expecting or bad.slot
        question = self._question(new, slot)
        text = f"Sorry, {bad.reason}. {question}"
        if strikes >= MAX_STRIKES:
            text += (
                "\n\nThis doesn't seem to be working. Say 'cancel' to stop the estimate. For help with your "
                "practice's situation, Practice Fusion recommends contacting Optum360 (FAQ 6.3); Practice "
                "Fusion's Sales team is at (415) 993-4977."
            )
        return new, Reply(text=text, decision="ask", label=_ESTIMATE, expecting=state.expecting)

    def _aside(self, state: State, text: str, p: _Parsed) -> tuple[State, Reply]:
        """A message with no count while a question is pending: an FAQ question, or a bad answer."""
        assert state.expecting is not None
        match = self.matcher.match(text)
        question = self._question(state, state.expecting)
        if match.decision != "decline" and match.label == _ESTIMATE:
            return state, Reply(
                text=f"Let's work it out. {question}",
                decision="ask",
                label=_ESTIMATE,
                expecting=state.expecting,
                match=match,
            )
        if match.decision != "decline":
            options = match.candidates if match.decision == "clarify" else ()
            body = match.answer
            if options:
                body = match.answer + "\n(To pick one, ask it in words: a number now answers my question below.)"
            return state, Reply(
                text=f"{body}\n\nBack to your estimate: {question}",
                decision=match.decision,
                label=match.label,
                expecting=state.expecting,
                match=match,
                options=options,
            )
        shown = _quote(text) if text.strip() else "an empty answer"
        return self._reject(state, _Bad(state.expecting, f"{shown} is not a number of {state.expecting}"))

    # -- replies -----------------------------------------------------------------------------

    def _doctors_question(self) -> str:
        return f"How many doctors does your practice have? (a whole number from 1 to {MAX_DOCTORS:,})"

    def _users_question(self, doctors: int | None) -> str:
        if doctors is None:
            return f"How many users does your practice have, doctors included? (a whole number up to {MAX_USERS:,})"
        fee = self.kb.fee
        assumed = default_users(fee, doctors)
        return (
            f"How many users does your practice have in all, the {_plural(doctors, 'doctor')} included? "
            f"The AMA assumes {fee.users_per_doctor} users per doctor, so the default is {_plural(assumed, 'user')} "
            f"({format_money(assumed * fee.rate_per_user)} a year); say 'not sure' or send an empty message to use it. "
            f"(a whole number from {doctors:,} to {MAX_USERS:,})"
        )

    def _question(self, state: State, slot: str) -> str:
        if state.proposal is not None:
            low, high = (1, MAX_DOCTORS) if slot == "doctors" else (state.doctors or 1, MAX_USERS)
            return (
                f"Is that {state.proposal:,} {slot}? "
                f"Say yes, or tell me the number (a whole number from {low:,} to {high:,})."
            )
        return self._doctors_question() if slot == "doctors" else self._users_question(state.doctors)

    def _ask(self, state: State, *, lead: str = "") -> tuple[State, Reply]:
        """Ask for the first missing slot, or give the result when nothing is missing."""
        state = replace(state, mode="estimate", strikes=0, options=(), proposal=state.proposal)
        if state.doctors is None:
            state = replace(state, expecting="doctors")
        elif state.users is None and not state.use_default:
            state = replace(state, expecting="users", proposal=None)
        else:
            return self._result(replace(state, expecting=None, proposal=None), lead=lead)
        text = f"{lead} {self._question(state, state.expecting)}".strip()  # type: ignore[arg-type]
        return state, Reply(text=text, decision="ask", label=_ESTIMATE, expecting=state.expecting)

    def _begin(self, p: _Parsed, match: Match | None) -> tuple[State, Reply]:
        """Start an estimate, taking whatever counts the message already gives."""
        fee = self.kb.fee
        intro = (
            f"I can estimate your practice's annual CPT license fee: users × {format_money(fee.rate_per_user)} a year, "
            f"where the AMA assumes {fee.users_per_doctor} users per doctor, the doctor included (FAQ 6.1, 6.2)."
        )
        base = State(mode="estimate", expecting="doctors")
        outcome = self._read_slots(State(), p)
        if isinstance(outcome, dict) and not outcome:
            state, reply = self._ask(base, lead=intro)
        else:
            state, reply = self._fill(base, "", p, outcome=outcome)
            if reply.estimate is None:
                reply = replace(reply, text=f"{intro} {reply.text}")
        return state, replace(reply, match=match)

    def _result(self, state: State, *, lead: str = "") -> tuple[State, Reply]:
        fee = self.kb.fee
        assert state.doctors is not None
        est = estimate_fee(fee, doctors=state.doctors, users=None if state.use_default else state.users)
        money = format_money
        rate = money(est.rate)
        d = _plural(est.doctors, "doctor")
        lines = [
            f"Your estimated annual CPT license fee: {money(est.annual_fee)} a year.",
            (
                f"{_plural(est.users, 'user')} × {rate} = {money(est.annual_fee)} a year "
                f"(FAQ 6.1: the AMA's cost per user per year is {rate})."
            ),
        ]
        assumption = (
            f"The AMA assumes {fee.users_per_doctor} users per doctor, the doctor included: "
            f"{d} × {fee.users_per_doctor} = {_plural(est.default_users, 'user')}"
        )
        if state.use_default or est.users == est.default_users:
            why = UNSURE_NOTE if state.use_default else ""
            lines.append(f"{why}{assumption} (FAQ 6.2).")
        elif est.users < est.default_users:
            lines.append(
                f"{assumption}, or {money(est.default_fee)} a year (FAQ 6.2). "
                "Your practice has fewer users, and the FAQ says the annual fee may then be adjusted accordingly: "
                "that adjusted figure is the "
                f"{money(est.annual_fee)} above, against {money(est.default_fee)} at the AMA's default."
            )
        else:
            lines.append(
                f"{assumption}, or {money(est.default_fee)} a year (FAQ 6.2). Your practice has more users than that; "
                f"the FAQ does not say how that changes the fee, so check with Optum360."
            )
        lines.append(
            f"This is an estimate from public information (Practice Fusion's CPT license FAQ, figures current as of "
            f"{fee.as_of}). The binding terms come from Optum360, the AMA's distributor: for your practice's "
            f"situation, Practice Fusion recommends contacting Optum360 (FAQ 6.3)."
        )
        lines.append(CHANGE_HINT)
        text = "\n".join(lines)
        if lead:
            text = f"{lead}\n{text}"
        return state, Reply(text=text, decision="answer", label=_ESTIMATE, expecting=None, estimate=est)

    def _no_codes(self, text: str, *, stopped: bool) -> tuple[State, Reply]:
        match = self.matcher.match(text)
        if match.label != _NO_CODES:
            match = None  # type: ignore[assignment]
        body = (
            "For practices that do not use CPT codes, no CPT code license is necessary (FAQ 6.4), "
            f"so your practice would pay {format_money(0)} for one."
        )
        if stopped:
            body += " I've stopped the estimate; if your practice does use CPT codes, ask me for an estimate again."
        return State(), Reply(text=body, decision="answer", label=_NO_CODES, expecting=None, match=match)

    def _pick(self, state: State, text: str) -> tuple[State, Reply] | None:
        """After a clarify, "1", "2" or "3" picks that numbered option."""
        choice = text.strip().rstrip(".)")
        if not state.options or not choice.isascii() or not choice.isdigit():
            return None
        number = int(choice)
        if not 1 <= number <= len(state.options):
            return None
        intent = self.kb.intent(state.options[number - 1])
        if intent.id in self._estimate_intents:
            return self._begin(_parse(""), None)
        reply = Reply(text=intent.answer, decision="answer", label=intent.source, expecting=None)
        if intent.source in _FEE_LABELS:
            return State(mode="offered"), replace(reply, text=f"{intent.answer}\n{self._offer()}")
        base = (
            State(mode=state.mode, doctors=state.doctors, users=state.users, use_default=state.use_default)
            if state.mode == "estimate"
            else State()
        )
        return base, reply

    def _offer(self) -> str:
        return "I can also estimate your practice's annual fee: tell me how many doctors and users it has."

    def _from_match(self, state: State, match: Match, *, offer: bool = True) -> tuple[State, Reply]:
        """The matcher's verdict as a reply: answer, clarify with numbered options, or decline."""
        text = match.answer
        if match.notice:
            text = f"{match.notice}\n\n{text}"
        options: tuple[Candidate, ...] = ()
        new = State()
        if match.decision == "clarify":
            options = match.candidates
            new = State(options=tuple(dict.fromkeys(c.intent for c in options)))
        elif offer and match.decision == "answer" and match.label in _FEE_LABELS:
            text = f"{text}\n{self._offer()}"
            new = State(mode="offered")
        reply = Reply(
            text=text, decision=match.decision, label=match.label, expecting=None, match=match, options=options
        )
        return new, reply
