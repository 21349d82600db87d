"""The matcher cache: `cptbot ask` starts fast, and never answers from a stale FAQ."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from cptbot import Matcher, load_faq
from cptbot.cache import KEEP, cache_dir, load_matcher

MINI = Path(__file__).parent / "data" / "mini_faq.yaml"


@pytest.fixture
def faq(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CPTBOT_NO_CACHE", raising=False)
    path = tmp_path / "faq.yaml"
    shutil.copy(MINI, path)
    return path


def test_second_load_comes_from_the_cache_and_answers_the_same(faq):
    first = load_matcher(faq)
    assert len(list(cache_dir().glob("*.pickle"))) == 1
    second = load_matcher(faq)
    assert second is not first
    assert second.match("when is the library open").to_dict() == first.match("when is the library open").to_dict()


def test_an_edited_faq_is_never_answered_from_the_old_entry(faq):
    assert load_matcher(faq).match("when is the library open").answer.startswith("The library is open from 9")
    faq.write_text(faq.read_text().replace("open from 9", "open from 10"))
    assert load_matcher(faq).match("when is the library open").answer.startswith("The library is open from 10")


def test_a_damaged_entry_is_rebuilt(faq):
    load_matcher(faq)
    (entry,) = cache_dir().glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    assert load_matcher(faq).match("when is the library open").decision == "answer"


def test_no_cache_when_turned_off(faq, monkeypatch):
    monkeypatch.setenv("CPTBOT_NO_CACHE", "1")
    load_matcher(faq)
    assert not cache_dir().exists()


def test_an_unwritable_cache_only_costs_the_build(faq, tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert load_matcher(faq).match("when is the library open").decision == "answer"


def test_a_cached_matcher_answers_every_question_as_the_one_it_was_built_from():
    # The cached copy looks features up in a sorted string until a dict pays off (500
    # lookups): the dev questions cross that switch.
    built = Matcher(load_faq())
    cached = pickle.loads(pickle.dumps(built))  # noqa: S301 - our own object
    lines = (Path(__file__).parent / "data" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["text"] for line in lines] + ["", "zzzz qqqq", "cpt"]
    assert [cached.match(q).to_dict() for q in questions] == [built.match(q).to_dict() for q in questions]


def test_only_the_most_recent_entries_are_kept(faq):
    for n in range(KEEP + 3):
        faq.write_text(faq.read_text().replace("open from", f"open{' ' * (n + 1)}from", 1))
        load_matcher(faq)
    assert len(list(cache_dir().glob("*.pickle"))) == KEEP
    assert load_matcher(faq).match("when is the library open").decision == "answer"
