"""The public Python API: exactly the documented names, and what the CLI does, for embedding."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import cptbot
from cptbot import Labelled, Matcher, check_faq, evaluate, inject_typo, load_faq, parse_labelled

ROOT = Path(__file__).resolve().parent.parent
MINI = Path(__file__).parent / "data" / "mini_faq.yaml"

# The public surface as README.md ("Python API") documents it.
DOCUMENTED = {
    "__version__",
    # knowledge
    "load_faq",
    "parse_faq",
    "DEFAULT_FAQ",
    "KnowledgeBase",
    "Intent",
    "FeeSettings",
    "MatchSettings",
    # matching
    "Matcher",
    "Match",
    "Candidate",
    # ticket answering
    "answer_ticket",
    "Ticket",
    "TicketAnswer",
    # the fee-estimate conversation
    "Conversation",
    "State",
    "Reply",
    "Estimate",
    "estimate_fee",
    "format_money",
    # evaluation (cptbot eval)
    "evaluate",
    "read_labelled",
    "parse_labelled",
    "Labelled",
    "EvalReport",
    # checking (cptbot check)
    "check_faq",
    "inject_typo",
    "CheckReport",
    "Finding",
    # errors
    "CptbotError",
    "KnowledgeBaseError",
    "InputError",
    "StateError",
}


def test_all_is_exactly_the_documented_surface():
    assert sorted(cptbot.__all__) == sorted(DOCUMENTED)
    for name in cptbot.__all__:
        assert getattr(cptbot, name) is not None


def test_readme_documents_every_public_name():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in DOCUMENTED if not re.search(rf"(?<![\w.]){re.escape(name)}\b", readme)]
    assert not missing


def test_errors_share_one_root():
    for name in ("KnowledgeBaseError", "InputError", "StateError"):
        assert issubclass(getattr(cptbot, name), cptbot.CptbotError)


def test_ask_path_imports_no_console_server_or_tool_modules():
    code = (
        "import sys, cptbot.cli; "
        "heavy = [m for m in ('prompt_toolkit', 'fastapi', 'uvicorn', 'httpx', 'http.client', "
        "'cptbot.checking', 'cptbot.evaluation') if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_evaluate_counts_what_the_bot_did():
    matcher = Matcher(load_faq(MINI))
    rows = [
        Labelled("when is the library open", ("hours",)),
        Labelled("when is the library open", ("card",)),
        Labelled("hello", ("greeting",)),
        Labelled("what's the weather", ()),
    ]
    report = evaluate(matcher, rows, name="mini")
    assert (report.in_scope.lines, report.in_scope.right, report.in_scope.wrong) == (2, 1, 1)
    assert (report.small_talk.lines, report.small_talk.right) == (1, 1)
    assert (report.out_of_scope.lines, report.out_of_scope.declined) == (1, 1)
    (confusion,) = report.worst()
    assert (confusion.expected, confusion.got, confusion.count) == ("card", "hours", 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("nope", r"not JSON"),
        ('["a"]', r"expected a JSON object, got list"),
        ('{"accept": []}', r'"text" must be a string'),
        ('{"text": "hi", "accept": "greeting"}', r'"accept" must be a list of source labels'),
    ],
)
def test_bad_labelled_lines_say_what_is_wrong(line, message):
    with pytest.raises(cptbot.InputError, match=message):
        parse_labelled(line, 1)


def test_inject_typo_swaps_two_letters_of_the_longest_word_deterministically():
    assert inject_typo("who sells the cpt license") == "who sells the cpt liecnse"
    assert inject_typo("who sells the cpt license") == inject_typo("who sells the cpt license")
    assert inject_typo("?!") is None
    assert inject_typo("aa") is None


def test_check_faq_finds_an_example_that_belongs_to_another_intent(tmp_path):
    faq = tmp_path / "faq.yaml"
    faq.write_text(
        MINI.read_text().replace("      - opening hours\n", "      - opening hours\n      - card price please\n")
    )
    report = check_faq(load_faq(faq), typos=False)
    (conflict,) = report.conflicts
    assert (conflict.intent, conflict.got, conflict.line) == ("opening_hours", "card_price", 39)
    assert conflict.describe().startswith("conflict: intent 'opening_hours': example \"card price please\"")
