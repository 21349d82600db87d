"""The declined-questions log: safe appends, tolerant reads, and the review's groups."""

from __future__ import annotations

import io
import json
import multiprocessing

import pytest

from cptbot import InputError, Matcher, load_faq
from cptbot.traffic import (
    DeclinedLog,
    group_questions,
    read_log,
    review,
    review_command,
)

KB = load_faq()
MATCHER = Matcher(KB)

WRITERS = 4
LINES_EACH = 150


def _write_many(path: str, writer: int) -> None:
    log = DeclinedLog(path)
    padding = "x" * 3000  # lines far above PIPE_BUF: only the lock keeps them whole
    for n in range(LINES_EACH):
        log.append(json.dumps({"time": "t", "text": f"writer {writer} line {n} {padding}", "decision": "decline"}))


def test_concurrent_writers_from_several_processes_lose_no_line(tmp_path):
    path = str(tmp_path / "declined.jsonl")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_many, args=(path, w)) for w in range(WRITERS)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=60)
        assert p.exitcode == 0
    entries, skipped = read_log(path)
    assert skipped == 0
    seen = {tuple(e.text.split()[:4]) for e in entries}
    assert len(entries) == WRITERS * LINES_EACH
    assert seen == {("writer", str(w), "line", str(n)) for w in range(WRITERS) for n in range(LINES_EACH)}


def test_records_declined_and_clarified_questions_only(tmp_path):
    log = DeclinedLog(tmp_path / "declined.jsonl")
    assert log.record(MATCHER.match("what is the weather in paris tomorrow")) is True
    assert log.record(MATCHER.match("who sells the cpt license")) is False
    entries, skipped = read_log(log.path)
    assert skipped == 0
    assert [e.text for e in entries] == ["what is the weather in paris tomorrow"]
    assert entries[0].decision == "decline"
    assert entries[0].time.endswith("Z")


def test_torn_last_line_is_skipped_and_the_next_writer_starts_a_fresh_line(tmp_path):
    path = tmp_path / "declined.jsonl"
    log = DeclinedLog(path)
    log.record(MATCHER.match("what is the weather in paris tomorrow"))
    with open(path, "ab") as f:
        f.write(b'{"time": "2025-01-01T00:00:00Z", "text": "a writer died he')  # crash mid-write
    entries, skipped = read_log(path)
    assert [e.text for e in entries] == ["what is the weather in paris tomorrow"]
    assert skipped == 1
    log.record(MATCHER.match("can i pay with a credit card"))
    entries, skipped = read_log(path)
    assert [e.text for e in entries] == ["what is the weather in paris tomorrow", "can i pay with a credit card"]
    assert skipped == 1


def test_reading_a_missing_log_names_the_file(tmp_path):
    with pytest.raises(InputError, match="nope.jsonl: no such file"):
        read_log(tmp_path / "nope.jsonl")


def test_similar_questions_are_grouped_largest_first():
    groups = group_questions(
        [
            "how do I reset my password",
            "what is the weather today",
            "I forgot my password",
            "reset password please",
            "weather forecast for tomorrow",
            "reset my password",
        ]
    )
    assert [len(g) for g in groups] == [4, 2]
    assert set(groups[0]) == {
        "how do I reset my password",
        "I forgot my password",
        "reset password please",
        "reset my password",
    }


def _log(path, texts):
    log = DeclinedLog(path)
    for text in texts:
        log.append(json.dumps({"time": "t", "text": text, "decision": "decline", "candidates": []}))


def test_review_lists_groups_with_nearest_intent_and_samples(tmp_path):
    path = tmp_path / "declined.jsonl"
    _log(
        path,
        [
            "can I pay with a credit card",
            "do you accept credit cards for payment",
            "credit card payment accepted?",
            "what is the weather today",
            "can I pay with a credit card",
        ],
    )
    result = review(path, KB)
    assert result.total == 5
    assert [g.size for g in result.groups] == [4, 1]
    first = result.groups[0]
    assert first.samples[0] == "can I pay with a credit card"
    assert len(first.samples) == 3  # repeats are counted in size, shown once
    assert first.nearest_intent in {i.id for i in KB.intents}
    assert first.nearest_question == KB.intent(first.nearest_intent).question


def test_review_command_prints_text_or_json_and_fails_cleanly(tmp_path):
    path = tmp_path / "declined.jsonl"
    _log(path, ["what is the weather today", "weather forecast for tomorrow"])
    out, err = io.StringIO(), io.StringIO()
    assert review_command(str(path), KB, out=out, err=err) == 0
    assert "2 logged question(s) in 1 group(s)" in out.getvalue()
    out = io.StringIO()
    assert review_command(str(path), KB, as_json=True, out=out, err=err) == 0
    assert json.loads(out.getvalue())["groups"][0]["size"] == 2
    err = io.StringIO()
    assert review_command(str(tmp_path / "missing.jsonl"), KB, out=out, err=err) == 2
    assert err.getvalue().startswith("cptbot review: ") and "Traceback" not in err.getvalue()
