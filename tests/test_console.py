"""The support agent's console, driven the way an agent drives it.

Unit tests type into prompt_toolkit through `create_pipe_input()` and read what the
console printed from a `DummyOutput` that keeps the text written to it (DummyOutput
turns every escape sequence into a no-op, so what is kept is the text alone).  One test
runs the console in a real pseudo-terminal with pexpect.
"""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from cptbot import Matcher, load_faq, parse_faq
from cptbot.console import (
    Console,
    color_wanted,
    history_file,
    make_completer,
    run_console,
    run_pipe,
)
from cptbot.dialog import Conversation
from cptbot.fee import estimate_fee, format_money

ROOT = Path(__file__).resolve().parent.parent
WHO_SELLS = "who sells the cpt license"
NO_CODES = "do I need a license if we don't use cpt codes"
CTRL_C, CTRL_D = "\x03", "\x04"

# A FAQ where every question clarifies (no lead is ever wide enough to answer), so the
# clarify-and-pick test does not depend on how the real matcher is tuned.
CLARIFY_FAQ = """
title: Clarify fixture
sources:
  "2": "Any individual or entity using CPT codes needs an appropriate license from the AMA."
  "4": "The authorized AMA distributor for Practice Fusion customers is Optum360."
behaviours: [estimate]
settings:
  fee: {rate_per_user: 17, users_per_doctor: 4, as_of: 2021}
  matching: {answer_threshold: 65, clarify_margin: 100, clarify_threshold: 5, lead_threshold: 100,
             lead_margin: 100, smalltalk_threshold: 45, max_chars: 10000}
replies:
  decline: "I can't answer that. Call Sales at (415) 993-4977."
  clarify: "Which of these do you mean?"
  truncated: "Your message was long."
  empty: "Please type a question."
concepts:
  cpt: [cpt]
  license: [license, licence]
intents:
  - {id: who_needs_license, source: "2", question: "Who needs a CPT license?",
     answer: "Anyone who uses CPT codes needs a license.", examples: [who needs a cpt license]}
  - {id: who_sells_license, source: "4", question: "Who sells the CPT license?",
     answer: "Optum360 sells it.", examples: [who sells the cpt license]}
  - {id: fee_estimate, source: estimate, question: "What will my practice pay for its CPT license?",
     answer: "Let's work it out.", examples: [estimate my fee]}
"""


class Screen(DummyOutput):
    """A DummyOutput that keeps the text written to it; escape sequences never reach it."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, data: str) -> None:
        self.parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def words(self) -> str:
        """The text with every run of whitespace as one space (replies are wrapped)."""
        return " ".join(self.text.split())


@pytest.fixture(scope="module")
def kb():
    return load_faq()


@pytest.fixture(autouse=True)
def _no_user_state(tmp_path, monkeypatch):
    """No test reads or writes the real user's history, or inherits their colour choice."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("CPTBOT_NO_HISTORY", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


def console(kb, keys: str, *, history_path=None, debug=False, conversation=None) -> tuple[int, Screen]:
    """Type `keys` into a console (end with Ctrl-D or /quit) and return (exit code, screen)."""
    screen = Screen()
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        code = run_console(
            kb, history_path=history_path, input=pipe, output=screen, debug=debug, conversation=conversation
        )
    return code, screen


def lines(*messages: str) -> str:
    return "".join(m + "\r" for m in messages)


def test_answers_two_faq_questions_with_label_and_confidence(kb):
    code, screen = console(kb, lines(WHO_SELLS, NO_CODES) + CTRL_D)
    assert code == 0
    assert "Optum360" in screen.text
    assert re.search(r"\[FAQ 4 · confidence \d+/100\]", screen.text)
    assert re.search(r"\[FAQ 6\.4 · confidence \d+/100\]", screen.text)


def test_clarify_shows_numbered_options_and_typing_a_number_picks_one():
    faq = parse_faq(CLARIFY_FAQ)
    match = Matcher(faq).match("cpt license")
    assert match.decision == "clarify", "the fixture FAQ is meant to clarify every question"
    second = faq.intent(match.candidates[1].intent)
    code, screen = console(faq, lines("cpt license", "2") + CTRL_D)
    assert code == 0
    assert f"1. {match.candidates[0].question}" in screen.text
    assert f"2. {second.question}" in screen.text
    assert "type 1-" in screen.text
    assert second.answer in screen.words
    assert f"[FAQ {second.source} · your pick]" in screen.text


def test_works_out_a_fee_estimate_and_shows_what_it_waits_for(kb):
    fee = format_money(estimate_fee(kb.fee, doctors=3, users=10).annual_fee)
    code, screen = console(kb, lines("/estimate", "3", "10") + CTRL_D)
    assert code == 0
    # the prompt and the toolbar say what the bot is waiting for
    assert "estimate: number of doctors" in screen.text
    assert "estimate: number of users" in screen.text
    assert f"[estimate · 10 users × {format_money(kb.fee.rate_per_user)} = {fee} a year]" in screen.text


def test_source_shows_the_faq_passage_behind_the_last_answer_verbatim(kb):
    code, screen = console(kb, lines(WHO_SELLS, "/source") + CTRL_D)
    assert code == 0
    assert kb.sources["4"] in screen.words


def test_an_empty_line_answers_a_question_the_bot_asked(kb):
    est = estimate_fee(kb.fee, doctors=2)
    code, screen = console(kb, lines("", "/estimate", "2", "") + CTRL_D)
    assert code == 0
    assert (
        f"[estimate · {est.users} users × {format_money(est.rate)} = {format_money(est.annual_fee)} a year]"
        in screen.text
    )
    assert kb.replies["empty"] not in screen.words  # the first, idle Enter is not a message


def test_source_after_an_estimate_shows_the_passages_it_is_worked_out_from(kb):
    _, screen = console(kb, lines("/estimate", "2", "not sure", "/source") + CTRL_D)
    assert kb.sources["6.1"] in screen.words
    assert kb.sources["6.2"] in screen.words


def test_source_before_any_answer_says_to_ask_first(kb):
    _, screen = console(kb, lines("/source") + CTRL_D)
    assert "No answer yet" in screen.text


def test_why_lists_the_top_candidates_with_scores(kb):
    match = Matcher(kb).match(WHO_SELLS)
    _, screen = console(kb, lines(WHO_SELLS, "/why") + CTRL_D)
    for candidate in match.candidates:
        assert re.search(rf"{candidate.score:.1f}\s+FAQ {re.escape(candidate.label)}\s", screen.text), candidate


def test_why_states_the_lower_bar_for_questions_naming_the_faqs_own_topics(kb):
    _, screen = console(kb, lines(WHO_SELLS, "/why") + CTRL_D)
    topics = ", ".join(sorted(Matcher(kb).topics))
    assert "cpt" in topics and f"own topics ({topics}) is answered at" in screen.words


def test_topics_lists_every_question_the_bot_answers_grouped_by_label(kb):
    _, screen = console(kb, lines("/topics") + CTRL_D)
    for intent in kb.intents:
        if not intent.smalltalk:
            assert intent.question in screen.words
    assert "FAQ 6.1" in screen.text


@pytest.mark.parametrize(
    ("typed", "hint"),
    [("/frobnicate", "Unknown command /frobnicate: /help lists the commands."), ("/sorce", "did you mean /source?")],
)
def test_unknown_command_gets_a_one_line_hint(kb, typed, hint):
    _, screen = console(kb, lines(typed) + CTRL_D)
    assert hint in screen.text
    assert "Traceback" not in screen.text


def test_help_lists_every_command(kb):
    _, screen = console(kb, lines("/help") + CTRL_D)
    for name in ("/help", "/topics", "/source", "/why", "/estimate", "/reset", "/quit"):
        assert name in screen.text


def test_reset_forgets_the_estimate_in_progress(kb):
    _, screen = console(kb, lines("/estimate", "/reset", "/source") + CTRL_D)
    assert "Started over" in screen.text
    assert "No answer yet" in screen.text


def test_ctrl_d_exits_with_status_zero(kb):
    code, screen = console(kb, CTRL_D)
    assert code == 0
    assert "cptbot> " in screen.text


def test_quit_exits_and_ignores_what_follows(kb):
    code, screen = console(kb, lines("/quit", WHO_SELLS))
    assert code == 0
    assert "Optum360" not in screen.text


def test_ctrl_c_drops_the_line_and_the_console_goes_on(kb):
    code, screen = console(kb, "who sells the" + CTRL_C + lines(NO_CODES) + CTRL_D)
    assert code == 0
    assert "FAQ 6.4" in screen.text
    assert "FAQ 4 " not in screen.text


class _Exploding(Conversation):
    """A conversation with a bug: it raises on one message (the real one never does)."""

    def respond(self, state, text):
        if text == "boom":
            raise RuntimeError("simulated bug")
        return super().respond(state, text)


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_prints_one_line_and_the_console_goes_on(kb, debug):
    code, screen = console(kb, lines("boom", WHO_SELLS) + CTRL_D, debug=debug, conversation=_Exploding(kb))
    assert code == 0
    assert "Something went wrong (RuntimeError: simulated bug); the console goes on." in screen.text
    assert "FAQ 4" in screen.text
    assert ("Traceback" in screen.text) is debug


def test_history_is_saved_in_the_xdg_state_dir_readable_only_by_the_user(kb, tmp_path):
    path = history_file()
    assert path == tmp_path / "state" / "cptbot" / "history"
    console(kb, lines(WHO_SELLS) + CTRL_D, history_path=path)
    assert WHO_SELLS in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_history_is_off_when_cptbot_no_history_is_set(kb, tmp_path, monkeypatch):
    monkeypatch.setenv("CPTBOT_NO_HISTORY", "1")
    path = history_file()
    assert path is None
    _, screen = console(kb, lines(WHO_SELLS, "/help") + CTRL_D, history_path=path)
    assert "FAQ 4" in screen.text
    assert "History is off" in screen.text
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("flag", "environ", "expected"),
    [
        (False, {"XDG_STATE_HOME": "/xdg"}, Path("/xdg/cptbot/history")),
        (False, {"XDG_STATE_HOME": "relative/ignored"}, Path.home() / ".local/state/cptbot/history"),
        (False, {}, Path.home() / ".local/state/cptbot/history"),
        (False, {"CPTBOT_NO_HISTORY": "0"}, Path.home() / ".local/state/cptbot/history"),
        (False, {"CPTBOT_NO_HISTORY": "yes"}, None),
        (True, {"XDG_STATE_HOME": "/xdg"}, None),
    ],
)
def test_history_file_follows_xdg_and_the_off_switches(flag, environ, expected):
    assert history_file(no_history=flag, environ=environ) == expected


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "environ", "expected"),
    [
        (_Tty(), {}, True),
        (_Tty(), {"NO_COLOR": "1"}, False),
        (io.StringIO(), {}, False),
        (_Tty(), {"NO_COLOR": ""}, True),
    ],
)
def test_colour_only_on_a_terminal_and_never_with_no_color(stream, environ, expected):
    assert color_wanted(stream, environ) is expected


def test_the_prompt_says_what_the_bot_waits_for(kb):
    agent = Console(kb)
    assert agent.waiting is None
    agent.handle("/estimate")
    assert agent.waiting == "estimate: number of doctors"
    assert "estimate: number of doctors" in "".join(text for _, text in agent.prompt())
    assert "estimate: number of doctors" in "".join(text for _, text in agent.toolbar())
    for shown in (agent.prompt(), agent.toolbar(), Console(kb).toolbar()):
        assert len("".join(text for _, text in shown)) <= 79  # one line of an 80-column terminal


@pytest.mark.parametrize(
    ("typed", "offered"),
    [
        ("/sou", "/source"),
        ("who sel", "Who sells the CPT license to Practice Fusion customers?"),
        ("monthly fee", "Why isn't the CPT license included in Practice Fusion's monthly fee?"),
    ],
)
def test_tab_completes_commands_and_faq_questions_fuzzily(kb, typed, offered):
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    completer = make_completer(Console(kb).completions())
    found = [c.text for c in completer.get_completions(Document(typed), CompleteEvent(completion_requested=True))]
    assert found[0] == offered


def test_pipe_mode_reads_one_message_per_line_and_prints_plain_replies(kb, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    code = run_pipe(
        kb, stdin=io.StringIO(f"{WHO_SELLS}\n\n/topics\n/estimate\n3\nnot sure\n/quit\n{NO_CODES}\n"), stdout=out
    )
    text = out.getvalue()
    assert code == 0
    assert "[FAQ 4 · confidence" in text
    assert format_money(estimate_fee(kb.fee, doctors=3).annual_fee) in text
    assert "[FAQ 6.4" not in text  # asked after /quit
    assert "\x1b" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_pipe_mode_reports_an_unexpected_error_on_stderr_and_goes_on(kb):
    out, err = io.StringIO(), io.StringIO()
    code = run_pipe(kb, stdin=io.StringIO(f"boom\n{WHO_SELLS}\n"), stdout=out, stderr=err, conversation=_Exploding(kb))
    assert code == 1
    assert err.getvalue().count("\n") == 1
    assert "RuntimeError: simulated bug" in err.getvalue()
    assert "[FAQ 4 · confidence" in out.getvalue()


def _run_cli(stdin: str, *extra_env: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from cptbot import load_faq; from cptbot.console import run_from_cli; "
        "status = run_from_cli(load_faq(), no_history=False, debug=False); "
        "print('prompt_toolkit loaded:', 'prompt_toolkit' in sys.modules, file=sys.stderr); sys.exit(status)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), **dict(extra_env)}
    return subprocess.run(
        [sys.executable, "-c", code], input=stdin, check=False, capture_output=True, text=True, env=env, timeout=60
    )


def test_when_stdin_is_not_a_terminal_the_console_answers_line_by_line_without_prompt_toolkit(tmp_path):
    done = _run_cli(f"{WHO_SELLS}\n{NO_CODES}\n", ("XDG_STATE_HOME", str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "[FAQ 4 · confidence" in done.stdout
    assert "[FAQ 6.4 · confidence" in done.stdout
    assert "prompt_toolkit loaded: False" in done.stderr
    assert "cptbot>" not in done.stdout
    assert not (tmp_path / "cptbot").exists()  # pipes keep no history


def test_importing_the_console_does_not_load_prompt_toolkit():
    code = "import sys, cptbot.console; print('prompt_toolkit' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "False", done.stderr


# -- end to end, in a real pseudo-terminal -------------------------------------------------

CLARIFYING = ("cpt license", "license", "cpt license fee", "cpt codes", "cpt", "fee", "the license")


def clarifying_phrase(kb) -> tuple[str, Matcher]:
    """A short question the real FAQ clarifies today (the matcher is still being tuned)."""
    matcher = Matcher(kb)
    for phrase in CLARIFYING:
        match = matcher.match(phrase)
        if match.decision == "clarify" and len(match.candidates) >= 2:
            return phrase, match
    pytest.fail(f"none of {CLARIFYING} clarifies with the current matcher; add a phrase that does")


def test_end_to_end_in_a_pseudo_terminal(kb, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    phrase, match = clarifying_phrase(kb)
    picked = match.candidates[0]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_STATE_HOME": str(tmp_path),
        "NO_COLOR": "1",
        "TERM": "xterm",
        "PROMPT_TOOLKIT_NO_CPR": "1",  # nobody answers cursor-position requests in a test pty
    }
    code = (
        "import sys, termios; from cptbot import load_faq; from cptbot.console import run_from_cli; "
        "before = termios.tcgetattr(0); status = run_from_cli(load_faq(), no_history=False, debug=False); "
        "print('terminal restored:', termios.tcgetattr(0) == before); sys.exit(status)"
    )
    child = pexpect.spawn(sys.executable, ["-c", code], env=env, dimensions=(24, 80), encoding="utf-8", timeout=20)
    try:
        child.expect_exact("cptbot>")
        child.sendline(WHO_SELLS)
        child.expect(r"\[FAQ 4 · confidence \d+/100\]")
        child.sendline(NO_CODES)
        child.expect(r"\[FAQ 6\.4 · confidence \d+/100\]")
        child.sendline(phrase)
        child.expect_exact("type 1-")
        child.sendline("1")
        child.expect_exact(f"[FAQ {picked.label} · your pick]")
        child.sendline("/estimate")
        child.expect_exact("estimate: number of doctors")
        child.sendline("3")
        child.expect_exact("estimate: number of users")
        child.sendline("10")
        fee = format_money(estimate_fee(kb.fee, doctors=3, users=10).annual_fee)
        child.expect_exact(f"= {fee} a year]")
        child.send("/sou\t")  # Tab completes the command
        child.expect_exact("/source")
        child.send("\r")
        child.expect_exact("FAQ 6.2")
        child.expect_exact(" ".join(kb.sources["6.2"].split()[:6]))
        child.sendcontrol("d")
        child.expect_exact("terminal restored: True")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    assert "Traceback" not in (child.before or "")
    history = (tmp_path / "cptbot" / "history").read_text()
    assert WHO_SELLS in history
    assert "/estimate" in history
