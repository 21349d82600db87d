"""Ticket answering: one answer per distinct question in a helpdesk ticket, in order.

A ticket is a few sentences with a greeting, some context, one or more questions and a
signature. `answer_ticket` cuts off the signature, splits the rest into sentences,
drops pleasantries (small-talk intents), answers each question once (two phrasings
of the same intent share one answer), and works the fee out through the
`Conversation`, reading the practice's size from anywhere in the ticket ("we are a
two doctor office ... how much will this cost"). A ticket cannot answer a follow-up
question, so when it names the doctors but not the users the estimate takes the AMA
default users, as the conversation does for "not sure"; when it names no doctors the
answer is the conversation's question, and `state` lets the helpdesk carry on.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from .dialog import UNSURE_NOTE, Conversation, Reply, one_shot
from .errors import InputError
from .fee import Estimate
from .knowledge import KnowledgeBase
from .matching import Match, clean

FEE_LABELS = frozenset({"estimate", "6.1", "6.2"})
"""Source labels whose questions the fee estimate answers when the ticket gives a size."""

MAX_TICKET_CHARS = 20_000
"""Longest ticket read; the rest is ignored (and `truncated` is set)."""

_SIGN_OFF = re.compile(
    r"^(?:thanks|thank you|thx|many thanks|thanks again|thanks in advance|thank you in advance|regards|best|"
    r"best regards|kind regards|warm regards|warmly|sincerely|yours sincerely|yours truly|respectfully|cheers|"
    r"all the best|take care|sent from my \w+)\b[\w ]{0,30}[,.!]*$",
    re.IGNORECASE,
)
_ABBREVIATIONS = re.compile(r"\b(?:dr|mr|mrs|ms|st|no|vs|etc|e\.g|i\.e|inc|ltd|approx)\.$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_ASKING = re.compile(
    r"^(?:(?:hi|hello|hey|also|and|so|but|ok|okay|well|finally|lastly|one more thing|secondly|first|second)\b[\s,:-]*)*"
    r"(?:who|whom|whose|what|whats|when|where|why|how|which|do|does|did|is|are|am|was|were|can|could|would|will|"
    r"should|shall|may|might|must|have|has|please|pls|tell me|let me know|id like to know|i would like to know|"
    r"i want to know|wondering|i was wondering|im wondering|i need to know|any idea)\b"
)


@dataclass(frozen=True)
class TicketAnswer:
    """One distinct question of a ticket and the bot's answer to it."""

    question: str
    decision: str  # "answer" | "clarify" | "decline" | "ask"
    label: str | None
    intent: str | None
    answer: str
    expecting: str | None = None
    estimate: Estimate | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "decision": self.decision,
            "label": self.label,
            "intent": self.intent,
            "answer": self.answer,
            "expecting": self.expecting,
            "estimate": self.estimate.to_dict() if self.estimate is not None else None,
        }


@dataclass(frozen=True)
class Ticket:
    """The answers to a ticket, in the order its questions came, and what was set aside."""

    answers: tuple[TicketAnswer, ...]
    ignored: tuple[str, ...]
    state: dict[str, Any]
    truncated: bool = False

    @property
    def estimate(self) -> Estimate | None:
        """The fee estimate the ticket allowed, if any."""
        return next((a.estimate for a in self.answers if a.estimate is not None), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answers": [a.to_dict() for a in self.answers],
            "ignored": list(self.ignored),
            "state": self.state,
            "truncated": self.truncated,
        }


# -- splitting -------------------------------------------------------------------------------


def split_ticket(text: str) -> tuple[list[str], list[str]]:
    """The ticket's sentences before its signature, and the signature lines."""
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    body, signature = lines, []
    for n, line in enumerate(lines):
        if n and (line.startswith("--") or line == "__") or (n and _SIGN_OFF.match(line) and len(lines) - n <= 6):
            body, signature = lines[:n], [s for s in lines[n:] if s]
            break
    sentences: list[str] = []
    for line in body:
        pending = ""
        for piece in _SENTENCE_END.split(line):
            pending = f"{pending} {piece}".strip() if pending else piece.strip()
            if pending and not _ABBREVIATIONS.search(pending):
                sentences.append(pending)
                pending = ""
        if pending:
            sentences.append(pending)
    return [s for s in sentences if s], signature


def _asks(sentence: str) -> bool:
    return sentence.rstrip().endswith("?") or bool(_ASKING.match(clean(sentence).replace("'", "")))


# -- answering -----------------------------------------------------------------------------


def answer_ticket(bot: Conversation | KnowledgeBase, text: str) -> Ticket:
    """Answer every distinct question in `text`, in order; pure, never raises for any text.

    `bot` is a `Conversation` (reuse one across tickets) or a `KnowledgeBase`.
    """
    conversation = bot if isinstance(bot, Conversation) else Conversation(bot)
    matcher = conversation.matcher
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    truncated = len(text) > MAX_TICKET_CHARS
    sentences, signature = split_ticket(text[:MAX_TICKET_CHARS])
    smalltalk = {i.id for i in conversation.kb.intents if i.smalltalk}

    # First pass: what each sentence is.
    matches: list[Match] = [matcher.match(s) for s in sentences]
    kinds: list[str] = []
    for sentence, match in zip(sentences, matches, strict=True):
        if match.decision == "answer" and match.intent in smalltalk:
            kinds.append("pleasantry")
        elif match.decision == "answer" and match.label in FEE_LABELS:
            kinds.append("fee")
        elif match.decision == "answer":
            kinds.append("question")
        elif _asks(sentence):
            kinds.append(
                "fee" if match.best and match.best.label in FEE_LABELS and match.decision == "clarify" else "question"
            )
        else:
            kinds.append("context")

    # "We are a two doctor office and got the CPT letter." tells the size but asks nothing:
    # when another sentence asks about the fee, it is context for that one.
    asked = [k == "fee" and _asks(s) for s, k in zip(sentences, kinds, strict=True)]
    if any(asked):
        kinds = ["context" if k == "fee" and not a else k for k, a in zip(kinds, asked, strict=True)]
    # What the ticket says about the practice: everything but the other questions.
    about = " ".join(s for s, k in zip(sentences, kinds, strict=True) if k in ("fee", "context", "pleasantry"))

    answers: list[TicketAnswer] = []
    ignored: list[str] = []
    where: dict[str, int] = {}  # intent id or other key -> index of its answer
    state = conversation.start()

    def repeat(key: str, sentence: str) -> bool:
        """Fold a second phrasing into the answer it repeats; True when it was one."""
        if key not in where:
            return False
        first = answers[where[key]]
        answers[where[key]] = replace(first, question=f"{first.question} {sentence}")
        return True

    for sentence, match, kind in zip(sentences, matches, kinds, strict=True):
        if kind in ("pleasantry", "context"):
            ignored.append(sentence)
        elif kind == "fee":
            if repeat("fee", sentence):
                continue
            state, answer = _estimate(conversation, about, sentence)
            if answer.intent and repeat(answer.intent, sentence):
                continue
            where["fee"] = len(answers)
            if answer.intent:
                where[answer.intent] = len(answers)
            answers.append(answer)
        else:
            key = _key(match)
            if repeat(key, sentence) or (match.decision == "clarify" and repeat(match.intent or "", sentence)):
                continue
            where[key] = len(answers)
            answers.append(
                TicketAnswer(
                    question=sentence,
                    decision=match.decision,
                    label=match.label,
                    intent=match.intent,
                    answer=match.answer,
                )
            )
    return Ticket(
        answers=tuple(answers),
        ignored=tuple(ignored + signature),
        state=conversation.dump_state(state),
        truncated=truncated,
    )


def _key(match: Match) -> str:
    """What makes two questions the same: their intent, their options, or their words."""
    if match.decision == "answer":
        return match.intent or ""
    if match.decision == "clarify":
        return "clarify:" + ",".join(c.intent for c in match.candidates)
    return "decline:" + " ".join(clean(match.text).split())


def _estimate(conversation: Conversation, about: str, sentence: str) -> tuple[Any, TicketAnswer]:
    """Ask the conversation for the fee with everything the ticket says about the practice."""
    state, reply = conversation.respond(conversation.start(), about or sentence)
    if reply.estimate is None and reply.expecting == "users":
        # The ticket names the doctors but not the users: take the AMA default, as the
        # conversation does when a customer is not sure, and say why in place of the
        # conversation's "OK, ..." acknowledgement.
        state, reply = conversation.respond(state, "")
        if reply.estimate is not None:
            first, _, rest = reply.text.partition("\n")
            doctors = reply.estimate.doctors
            lead = (
                f"The ticket gives {doctors:,} doctor{'s' if doctors != 1 else ''} but not the number of users, "
                f"so this uses the AMA's default of {reply.estimate.default_users:,} users."
            )
            body = (rest if first.startswith("OK") and rest else reply.text).replace(UNSURE_NOTE, "")
            reply = replace(reply, text=f"{lead}\n{body}")
    if reply.estimate is None and reply.expecting is None and reply.decision != "answer":
        # Nothing about a fee came of the context; answer the question on its own.
        state, reply = conversation.respond(conversation.start(), sentence)
    return state, _from_reply(sentence, one_shot(reply))


def _from_reply(sentence: str, reply: Reply) -> TicketAnswer:
    intent = reply.match.intent if reply.match is not None and reply.decision != "ask" else None
    if reply.estimate is not None or reply.decision == "ask":
        intent = intent or "fee_estimate"
    return TicketAnswer(
        question=sentence,
        decision=reply.decision,
        label=reply.label,
        intent=intent,
        answer=reply.text,
        expecting=reply.expecting,
        estimate=reply.estimate,
    )


# -- the command ---------------------------------------------------------------------------


def format_ticket(ticket: Ticket) -> str:
    """The answers as text for a helpdesk agent."""
    if not ticket.answers:
        return "No question found in the ticket.\n"
    blocks = []
    for n, answer in enumerate(ticket.answers, 1):
        blocks.append(f"{n}. {answer.question}\n{answer.answer}")
    return "\n\n".join(blocks) + "\n"


def ticket_command(
    bot: Conversation | KnowledgeBase,
    source: str,
    *,
    as_json: bool = False,
    out: IO[str],
    err: IO[str],
    stdin: IO[str] | None = None,
) -> int:
    """`cptbot ask --ticket FILE|- [--json]`: 0 when answered, 2 when the file cannot be read."""
    try:
        text = read_ticket(source, stdin=stdin)
    except InputError as exc:
        err.write(f"cptbot ask: {exc}\n")
        return 2
    ticket = answer_ticket(bot, text)
    if as_json:
        out.write(json.dumps(ticket.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(format_ticket(ticket))
    return 0


def read_ticket(source: str, *, stdin: IO[str] | None = None) -> str:
    """The text of a ticket file, or of standard input for '-'; InputError names the file."""
    if source == "-":
        return (stdin or sys.stdin).read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{source}: no such ticket file") from None
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read the ticket: {exc.strerror}") from None
