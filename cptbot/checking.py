"""Audit a FAQ's example questions before customers meet them: what `cptbot check` reports.

Every example question is matched by a matcher built without it (leave-one-out; for a
FAQ of more than LEAVE_ONE_OUT_LIMIT examples, without its tenth of them), the way an
unseen customer phrasing would be:

- a *conflict* is an example answered with another intent than its own;
- a *weak* example is only clarified or declined;
- a *typo-fragile* example reaches its own intent, but no longer does once one
  deterministic typo is injected (two adjacent letters of its longest word swapped).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .knowledge import KnowledgeBase
from .matching import Match, Matcher

Kind = Literal["conflict", "weak", "typo"]
LEAVE_ONE_OUT_LIMIT = 500
FOLDS = 10
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Finding:
    """One example question that does not reliably reach its own intent."""

    kind: Kind
    intent: str
    example: str
    line: int
    decision: str
    got: str | None
    score: float
    options: tuple[str, ...] = ()
    typo: str | None = None

    def describe(self) -> str:
        """One readable sentence (without the file:line prefix)."""
        said = f'"{self.typo}"' if self.typo else f'"{self.example}"'
        if self.decision == "answer":
            outcome = f"is answered by '{self.got}' (score {self.score:g})"
        elif self.decision == "clarify":
            outcome = f"is only clarified (options: {', '.join(self.options)})"
        else:
            outcome = f"is declined (best score {self.score:g})"
        if self.kind == "typo":
            return f"typo: intent '{self.intent}': example \"{self.example}\" typed as {said} {outcome}"
        return f"{self.kind}: intent '{self.intent}': example {said} {outcome}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, options=list(self.options))


@dataclass(frozen=True)
class CheckReport:
    """The findings of `check_faq`, in file order."""

    path: str
    intents: int
    examples: int
    findings: tuple[Finding, ...]

    def of_kind(self, kind: Kind) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == kind)

    @property
    def conflicts(self) -> tuple[Finding, ...]:
        return self.of_kind("conflict")


def inject_typo(text: str) -> str | None:
    """`text` with two adjacent letters of its longest word swapped (None if impossible).

    Deterministic: the first longest word, the pair nearest its middle that differs.
    """
    words = sorted(_WORD.finditer(text), key=lambda m: -len(m.group()))
    for found in words:
        word = found.group()
        middle = len(word) // 2
        for offset in sorted(range(len(word) - 1), key=lambda i: (abs(i + 1 - middle), i)):
            a, b = word[offset], word[offset + 1]
            if a.casefold() != b.casefold():
                swapped = word[:offset] + b + a + word[offset + 2 :]
                return text[: found.start()] + swapped + text[found.end() :]
    return None


def example_lines(kb: KnowledgeBase, text: str | None) -> dict[tuple[str, int], int]:
    """The file line of every example, found by scanning the file text after its intent's line.

    An example the scan cannot find (an unusual YAML quoting) gets its intent's line.
    """
    lines = [" ".join(line.split()) for line in text.splitlines()] if text else []
    found: dict[tuple[str, int], int] = {}
    for intent in kb.intents:
        cursor = max(intent.line - 1, 0)
        for number, example in enumerate(intent.examples):
            line = intent.line
            for index in range(cursor, len(lines)):
                if example in lines[index]:
                    line, cursor = index + 1, index + 1
                    break
            found[(intent.id, number)] = line
    return found


def check_faq(
    kb: KnowledgeBase,
    *,
    text: str | None = None,
    typos: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Conflicts, weak examples and typo fragility of every example, each judged without it.

    `text` is the FAQ file's text, used only to report each example's own line (by default
    it is read from `kb.path`; without it, findings carry their intent's line).
    `progress(done, total)` is called after each example, for a front end's progress bar.
    """
    if text is None:
        try:
            text = Path(kb.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
    where = example_lines(kb, text)
    every = [(intent.id, number, example) for intent in kb.intents for number, example in enumerate(intent.examples)]
    total = len(every)
    # Leave-one-out builds one matcher per example, which takes minutes past a few hundred
    # examples; then each of FOLDS folds (every FOLDS-th example) is left out at once.
    folds = total if total <= LEAVE_ONE_OUT_LIMIT else FOLDS
    found: list[tuple[int, Finding]] = []
    done = 0
    for fold in range(folds):
        matcher = Matcher(kb, exclude={(intent, number) for intent, number, _ in every[fold::folds]})
        for position in range(fold, total, folds):
            intent, number, example = every[position]
            line = where[(intent, number)]
            match = matcher.match(example)
            if match.decision == "answer" and match.intent != intent:
                found.append((position, _finding("conflict", intent, example, line, match)))
            elif match.decision != "answer":
                found.append((position, _finding("weak", intent, example, line, match)))
            elif typos:
                typo = inject_typo(example)
                if typo is not None:
                    typed = matcher.match(typo)
                    if typed.decision != "answer" or typed.intent != intent:
                        found.append((position, _finding("typo", intent, example, line, typed, typo=typo)))
            done += 1
            if progress is not None:
                progress(done, total)
    findings = [finding for _, finding in sorted(found, key=lambda pair: pair[0])]
    return CheckReport(path=kb.path, intents=len(kb.intents), examples=total, findings=tuple(findings))


def _finding(kind: Kind, intent: str, example: str, line: int, match: Match, *, typo: str | None = None) -> Finding:
    return Finding(
        kind=kind,
        intent=intent,
        example=example,
        line=line,
        decision=match.decision,
        got=match.intent,
        score=match.score,
        options=tuple(c.intent for c in match.candidates) if match.decision == "clarify" else (),
        typo=typo,
    )
