"""Measure a matcher on labelled questions: what `cptbot eval` reports.

A labelled file is JSON Lines, one object per line: `{"text": "...", "accept": [labels]}`.
`accept` lists the source labels whose answer is right; an empty list means the question
is out of scope and the bot should decline it. Lines whose labels are all small talk
(`greeting`, `thanks`, `goodbye`, `help`) are counted on their own: the bot should
recognise them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .matching import Matcher

SMALL_TALK = frozenset({"greeting", "thanks", "goodbye", "help"})
OUT_OF_SCOPE = "(decline)"


@dataclass(frozen=True)
class Labelled:
    """One labelled question: its text, the labels whose answer is right, its line."""

    text: str
    accept: tuple[str, ...]
    line: int = 0

    @property
    def group(self) -> str:
        """`in_scope`, `small_talk` or `out_of_scope`."""
        if not self.accept:
            return "out_of_scope"
        return "small_talk" if set(self.accept) <= SMALL_TALK else "in_scope"


def parse_labelled(line: str, number: int = 0) -> Labelled:
    """One line of a labelled file (`number` is kept as its line); InputError saying what is wrong."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, got {type(data).__name__}")
    text, accept = data.get("text"), data.get("accept")
    if not isinstance(text, str):
        raise InputError('"text" must be a string')
    if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
        raise InputError('"accept" must be a list of source labels ([] for out of scope)')
    return Labelled(text=text, accept=tuple(accept), line=number)


def read_labelled(path: str | Path) -> tuple[list[Labelled], list[str]]:
    """The usable lines of a labelled JSONL file, and a message for each unusable one."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the file: {exc}") from None
    rows: list[Labelled] = []
    problems: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(parse_labelled(line, number))
        except InputError as exc:
            problems.append(f"{path}:{number}: {exc}")
    return rows, problems


@dataclass
class GroupStats:
    """Outcome counts for one group of lines."""

    lines: int = 0
    right: int = 0
    wrong: int = 0
    clarified: int = 0
    clarified_offered: int = 0
    declined: int = 0

    def add(self, other: GroupStats) -> None:
        for name in ("lines", "right", "wrong", "clarified", "clarified_offered", "declined"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def share(self, count: int) -> float:
        """`count` as a percentage of the group's lines (0 for an empty group)."""
        return 100.0 * count / self.lines if self.lines else 0.0

    @property
    def answered(self) -> int:
        return self.right + self.wrong


@dataclass
class Confusion:
    """Questions labelled `expected` that the bot answered with `got`."""

    expected: str
    got: str
    count: int
    example: str


@dataclass
class EvalReport:
    """What the matcher did with one or more labelled files."""

    name: str
    in_scope: GroupStats = field(default_factory=GroupStats)
    small_talk: GroupStats = field(default_factory=GroupStats)
    out_of_scope: GroupStats = field(default_factory=GroupStats)
    seconds: float = 0.0
    skipped: int = 0
    confusions: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    @property
    def lines(self) -> int:
        return self.in_scope.lines + self.small_talk.lines + self.out_of_scope.lines

    @property
    def per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    def group(self, name: str) -> GroupStats:
        return getattr(self, name)

    def worst(self, top: int = 5) -> list[Confusion]:
        """The most frequent wrong answers, most frequent first (ties: alphabetical)."""
        ranked = sorted(self.confusions.items(), key=lambda item: (-item[1], item[0]))
        return [Confusion(exp, got, count, self.examples[(exp, got)]) for (exp, got), count in ranked[:top]]

    def add(self, other: EvalReport) -> None:
        for name in ("in_scope", "small_talk", "out_of_scope"):
            self.group(name).add(other.group(name))
        self.seconds += other.seconds
        self.skipped += other.skipped
        self.confusions.update(other.confusions)
        for key, example in other.examples.items():
            self.examples.setdefault(key, example)

    def to_dict(self, *, top: int = 5) -> dict[str, Any]:
        """Counts, percentages and the worst confusions, as `cptbot eval --json` prints them."""

        def group(stats: GroupStats) -> dict[str, Any]:
            counts = {
                "lines": stats.lines,
                "right": stats.right,
                "wrong": stats.wrong,
                "clarified": stats.clarified,
                "clarified_offered": stats.clarified_offered,
                "declined": stats.declined,
            }
            percent = {k: round(stats.share(v), 2) for k, v in counts.items() if k != "lines"}
            percent["answered"] = round(stats.share(stats.answered), 2)
            return {**counts, "percent": percent}

        return {
            "name": self.name,
            "lines": self.lines,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 4),
            "questions_per_second": round(self.per_second, 1),
            "in_scope": group(self.in_scope),
            "small_talk": group(self.small_talk),
            "out_of_scope": group(self.out_of_scope),
            "confusions": [c.__dict__ for c in self.worst(top)],
        }


def evaluate(matcher: Matcher, rows: Iterable[Labelled], *, name: str = "") -> EvalReport:
    """Match every labelled question and count the outcomes.

    in scope and small talk: `right` = answered with an accepted label, `wrong` = answered
    with another, `clarified` (and `clarified_offered` when an accepted label was among the
    options), `declined`. Out of scope lines have no right answer, so every answer is
    `wrong`; declining them is what the bot should do.
    """
    report = EvalReport(name=name)
    rows = list(rows)
    start = time.perf_counter()
    matches = [matcher.match(row.text) for row in rows]
    report.seconds = time.perf_counter() - start
    for row, match in zip(rows, matches, strict=True):
        stats = report.group(row.group)
        stats.lines += 1
        accept = set(row.accept)
        if match.decision == "decline":
            stats.declined += 1
        elif match.decision == "clarify":
            stats.clarified += 1
            if accept & {c.label for c in match.candidates}:
                stats.clarified_offered += 1
        elif match.label in accept:
            stats.right += 1
        else:
            stats.wrong += 1
            key = ("/".join(row.accept) or OUT_OF_SCOPE, str(match.label))
            report.confusions[key] += 1
            report.examples.setdefault(key, row.text)
    return report
