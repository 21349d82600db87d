"""cptbot: answers questions about Practice Fusion's CPT license FAQ.

The public API (everything else is internal and may change):

    from cptbot import load_faq, Matcher
    kb = load_faq()                      # or load_faq("other_faq.yaml"); KnowledgeBaseError if broken
    match = Matcher(kb).match("who sells the cpt license")
    match.decision, match.label, match.score, match.answer, match.candidates

- knowledge: `load_faq`, `parse_faq`, `DEFAULT_FAQ`, `KnowledgeBase`, `Intent`, `FeeSettings`,
  `MatchSettings`
- matching: `Matcher`, `Match`, `Candidate`
- dialog (the fee-estimate conversation): `Conversation`, `State`, `Reply`; fee: `Estimate`,
  `estimate_fee`, `format_money`
- evaluation (`cptbot eval`): `evaluate`, `read_labelled`, `parse_labelled`, `Labelled`, `EvalReport`
- checking (`cptbot check`): `check_faq`, `inject_typo`, `CheckReport`, `Finding`
- ticket (`cptbot ask --ticket`): `answer_ticket`, `Ticket`, `TicketAnswer`
- errors: `CptbotError` and its subclasses `KnowledgeBaseError`, `InputError`, `StateError`
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .dialog import Conversation, Reply, State
from .errors import CptbotError, InputError, KnowledgeBaseError, StateError
from .fee import Estimate, estimate_fee, format_money
from .knowledge import DEFAULT_FAQ, FeeSettings, Intent, KnowledgeBase, MatchSettings, load_faq, parse_faq
from .matching import Candidate, Match, Matcher

if TYPE_CHECKING:
    from .checking import CheckReport, Finding, check_faq, inject_typo
    from .evaluation import EvalReport, Labelled, evaluate, parse_labelled, read_labelled
    from .ticket import Ticket, TicketAnswer, answer_ticket

__version__ = "0.1.0"

# The eval and check tools are imported on first use, so `cptbot ask` does not pay for them.
_LAZY = {
    **dict.fromkeys(("CheckReport", "Finding", "check_faq", "inject_typo"), "checking"),
    **dict.fromkeys(("EvalReport", "Labelled", "evaluate", "parse_labelled", "read_labelled"), "evaluation"),
    **dict.fromkeys(("Ticket", "TicketAnswer", "answer_ticket"), "ticket"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cptbot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_FAQ",
    "Candidate",
    "CheckReport",
    "Conversation",
    "CptbotError",
    "EvalReport",
    "Estimate",
    "FeeSettings",
    "Finding",
    "InputError",
    "Intent",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "Labelled",
    "Match",
    "MatchSettings",
    "Matcher",
    "Reply",
    "State",
    "StateError",
    "Ticket",
    "TicketAnswer",
    "__version__",
    "check_faq",
    "estimate_fee",
    "evaluate",
    "format_money",
    "inject_typo",
    "load_faq",
    "parse_faq",
    "parse_labelled",
    "read_labelled",
    "answer_ticket",
]
