"""Learning from traffic: log the questions the bot could not answer, then review them.

Opt-in (`--log-declined FILE` for the console and the server). Each declined or
clarified question is appended to FILE as one JSON line::

    {"time": "2025-01-31T12:00:00Z", "text": "...", "decision": "decline",
     "candidates": [{"intent": "...", "label": "...", "score": 41.2, "question": "..."}]}

Writers are safe together: the file is opened with O_APPEND, an exclusive `flock` is held
for the write, and each line goes out in one `os.write` (looped only if the kernel takes
less). A writer that dies mid-line leaves a torn last line; the next writer starts on a
fresh line so its own record stays whole, and the reader skips the torn one.

`review(path, kb)` groups similar logged questions (rapidfuzz `token_set_ratio` through
`process.extract`, greedy threshold clustering) and lists the groups by size with the
intent each is nearest to, so a content author sees what the FAQ does not cover yet.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rapidfuzz import fuzz, process

from .errors import InputError
from .knowledge import KnowledgeBase
from .matching import STOPWORDS, Match, Matcher, clean

MAX_TEXT_CHARS = 2_000
"""Longest question text kept in the log; longer ones are cut (a log line stays small)."""

LOGGED_DECISIONS = ("decline", "clarify")
"""The decisions worth a content author's attention."""

DEFAULT_THRESHOLD = 70.0
"""token_set_ratio (0-100) at or above which two logged questions are one group."""


@dataclass(frozen=True)
class LoggedQuestion:
    """One line of a declined-questions log."""

    time: str
    text: str
    decision: str
    candidates: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Group:
    """Similar logged questions: how many, the intent they come nearest to, samples."""

    size: int
    nearest_intent: str | None
    nearest_question: str | None
    nearest_score: float
    samples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "nearest_intent": self.nearest_intent,
            "nearest_question": self.nearest_question,
            "nearest_score": self.nearest_score,
            "samples": list(self.samples),
        }


@dataclass(frozen=True)
class Review:
    """The groups of a log, largest first, and how many lines could not be read."""

    path: str
    total: int
    skipped: int
    groups: tuple[Group, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "total": self.total,
            "skipped": self.skipped,
            "groups": [g.to_dict() for g in self.groups],
        }


class DeclinedLog:
    """Appends declined and clarified questions to a JSON-lines file, one line per call."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def record(self, match: Match, *, now: float | None = None) -> bool:
        """Append `match` if it was declined or clarified; True when a line was written.

        Raises `InputError` when the file cannot be opened or written, naming the file.
        """
        if match.decision not in LOGGED_DECISIONS or not match.text.strip():
            return False
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
        entry = {
            "time": stamp,
            "text": match.text[:MAX_TEXT_CHARS],
            "decision": match.decision,
            "candidates": [c.to_dict() for c in match.candidates],
        }
        self.append(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
        return True

    def append(self, line: str) -> None:
        """Append one line (no newline inside) atomically with respect to other writers."""
        data = line.replace("\n", " ").encode("utf-8") + b"\n"
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open the declined-questions log: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            # A writer that died mid-line left no newline: start ours on a fresh line.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write the declined-questions log: {exc.strerror}") from None
        finally:
            os.close(fd)  # closing releases the lock


def read_log(path: str | Path) -> tuple[list[LoggedQuestion], int]:
    """The readable entries of a log and the count of lines skipped (torn or not ours).

    Raises `InputError` when the file cannot be read at all.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; pass the file given to --log-declined") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the log: {exc.strerror}") from None
    entries: list[LoggedQuestion] = []
    skipped = 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        entry = _parse(line)
        if entry is None:
            skipped += 1
        else:
            entries.append(entry)
    return entries, skipped


def _parse(line: bytes) -> LoggedQuestion | None:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
        return None
    candidates = obj.get("candidates")
    if not isinstance(candidates, list):
        candidates = []
    return LoggedQuestion(
        time=str(obj.get("time", "")),
        text=obj["text"],
        decision=str(obj.get("decision", "")),
        candidates=tuple(c for c in candidates if isinstance(c, dict)),
    )


def _key(text: str) -> str:
    """Text as the grouping compares it: cleaned, punctuation dropped, stopwords out."""
    words = "".join(ch if ch.isalnum() else " " for ch in clean(text)).split()
    kept = [w for w in words if w not in STOPWORDS]
    return " ".join(kept or words)


def group_questions(texts: Iterable[str], *, threshold: float = DEFAULT_THRESHOLD) -> list[list[str]]:
    """Cluster texts: greedy leaders (most neighbours first) take every unassigned
    neighbour whose token_set_ratio is at least `threshold`. Exact repeats (after
    cleaning) count once for similarity and fully for size. Groups come largest first."""
    by_key: dict[str, list[str]] = {}
    for text in texts:
        by_key.setdefault(_key(text), []).append(text)
    keys = list(by_key)
    if not keys:
        return []
    # process.extract, not cdist: cdist returns a NumPy matrix, and NumPy is no dependency of ours.
    neighbours = [
        {
            index
            for _, _, index in process.extract(
                key, keys, scorer=fuzz.token_set_ratio, score_cutoff=threshold, limit=None
            )
        }
        for key in keys
    ]
    weight = [len(by_key[k]) for k in keys]
    order = sorted(range(len(keys)), key=lambda i: (-sum(weight[j] for j in neighbours[i]), i))
    taken: set[int] = set()
    groups: list[list[str]] = []
    for leader in order:
        if leader in taken:
            continue
        members = [leader] + sorted(j for j in neighbours[leader] if j not in taken and j != leader)
        taken.update(members)
        groups.append([text for j in members for text in by_key[keys[j]]])
    groups.sort(key=lambda g: -len(g))
    return groups


def review(
    path: str | Path,
    kb: KnowledgeBase,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    samples: int = 5,
    matcher: Matcher | None = None,
) -> Review:
    """Group the questions logged in `path` and name the intent each group is nearest to."""
    entries, skipped = read_log(path)
    matcher = matcher or Matcher(kb)
    groups = []
    for texts in group_questions((e.text for e in entries), threshold=threshold):
        votes: Counter[str] = Counter()
        best: dict[str, float] = {}
        for text in dict.fromkeys(texts):
            top = matcher.match(text, limit=1).best
            if top is not None:
                votes[top.intent] += 1
                best[top.intent] = max(best.get(top.intent, 0.0), top.score)
        nearest = min(votes, key=lambda i: (-votes[i], -best[i], i)) if votes else None
        groups.append(
            Group(
                size=len(texts),
                nearest_intent=nearest,
                nearest_question=kb.intent(nearest).question if nearest else None,
                nearest_score=best.get(nearest, 0.0) if nearest else 0.0,
                samples=tuple(list(dict.fromkeys(texts))[:samples]),
            )
        )
    return Review(path=str(path), total=len(entries), skipped=skipped, groups=tuple(groups))


def format_review(result: Review) -> str:
    """The review as text for a content author."""
    lines = [f"{result.path}: {result.total} logged question(s) in {len(result.groups)} group(s)"]
    if result.skipped:
        lines.append(f"({result.skipped} unreadable line(s) skipped)")
    for n, group in enumerate(result.groups, 1):
        nearest = (
            f'nearest: {group.nearest_intent} ({group.nearest_score:g}) "{group.nearest_question}"'
            if group.nearest_intent
            else "nearest: none"
        )
        lines.append("")
        lines.append(f"{n}. {group.size} question(s); {nearest}")
        lines.extend(f"   - {text}" for text in group.samples)
    return "\n".join(lines) + "\n"


def review_command(path: str, kb: KnowledgeBase, *, as_json: bool = False, out: IO[str], err: IO[str]) -> int:
    """`cptbot review FILE [--json]`: print the groups; 0 on success, 2 when the log cannot be read."""
    try:
        result = review(path, kb)
    except InputError as exc:
        err.write(f"cptbot review: {exc}\n")
        return 2
    if as_json:
        out.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(format_review(result))
    return 0
