"""The `cptbot` command as a user runs it: exit codes, stdout/stderr, JSON shapes, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
MATCH_KEYS = {"text", "decision", "label", "intent", "score", "answer", "alternatives"}
ALTERNATIVE_KEYS = {"label", "intent", "score", "question"}


CACHE = tempfile.mkdtemp(prefix="cptbot-test-cache-")


def cptbot(
    *args: str, stdin: str | bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m cptbot ARGS` from the repository root, as the README does."""
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env["XDG_CACHE_HOME"] = CACHE  # the matcher cache, kept out of the user's home
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cptbot", *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        cwd=ROOT,
        env=full_env,
        timeout=60,
    )


def out(result: subprocess.CompletedProcess) -> str:
    return result.stdout.decode()


def err(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode()


# -- ask -------------------------------------------------------------------------------------


def test_ask_answers_with_source_and_confidence():
    result = cptbot("ask", "who sells the cpt license")
    assert result.returncode == 0, err(result)
    assert "Optum360" in out(result)
    confidence = re.search(r"Source: FAQ 4 · confidence (\d+)", out(result))
    assert confidence and 80 <= int(confidence.group(1)) <= 100, out(result)
    assert err(result) == ""


def test_ask_joins_several_words_into_one_question():
    assert "Source: FAQ 4" in out(cptbot("ask", "who", "sells", "the", "cpt", "license"))


def test_ask_declines_with_exit_code_1():
    result = cptbot("ask", "how much is my credit card bill")
    assert result.returncode == 1
    assert "I don't know that from the CPT license FAQ" in out(result)


def test_ask_json_prints_the_match_object_with_what_the_conversation_adds():
    result = cptbot("ask", "--json", "who sells the cpt license")
    data = json.loads(out(result))
    assert set(data) == MATCH_KEYS | {"expecting", "estimate"}
    assert (data["expecting"], data["estimate"]) == (None, None)
    assert (data["decision"], data["label"], data["intent"]) == ("answer", "4", "who_sells_license")
    assert all(set(alt) == ALTERNATIVE_KEYS for alt in data["alternatives"])
    assert out(result).count("\n") == 1


def test_ask_truncation_notice_goes_to_stderr_not_stdout():
    result = cptbot("ask", "--json", "who sells the cpt license " + "x" * 12_000)
    assert "read only its first part" in err(result)
    assert "read only its first part" not in out(result)
    json.loads(out(result))


def test_no_colour_when_output_is_not_a_terminal_or_no_color_is_set():
    assert "\033[" not in out(cptbot("ask", "who sells the cpt license"))
    assert "\033[" not in out(cptbot("ask", "who sells the cpt license", env={"NO_COLOR": "1"}))


def test_colour_on_a_terminal_unless_no_color():
    pexpect = pytest.importorskip("pexpect")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NO_COLOR", None)
    coloured = pexpect.run(f"{sys.executable} -m cptbot ask 'who sells the cpt license'", env=env, cwd=str(ROOT))
    assert b"\033[2m" in coloured
    plain = pexpect.run(
        f"{sys.executable} -m cptbot ask 'who sells the cpt license'", env={**env, "NO_COLOR": ""}, cwd=str(ROOT)
    )
    assert b"\033[" not in plain and b"Optum360" in plain


# -- --faq and errors ----------------------------------------------------------------------


def test_faq_option_loads_another_faq_before_or_after_the_command():
    for args in (
        ["--faq", str(DATA / "mini_faq.yaml"), "ask", "when is the library open"],
        ["ask", "when is the library open", "--faq", str(DATA / "mini_faq.yaml")],
    ):
        result = cptbot(*args)
        assert result.returncode == 0, err(result)
        assert "open from 9 to 5" in out(result)
        assert "Source: FAQ hours" in out(result)


@pytest.mark.parametrize("command", [["ask", "hi"], ["match", "--jsonl"], ["eval", str(DATA / "dev.jsonl")], ["check"]])
def test_broken_faq_is_one_line_on_stderr_and_exit_2(tmp_path, command):
    broken = tmp_path / "broken.yaml"
    broken.write_text((DATA / "mini_faq.yaml").read_text().replace("source: card\n", "source: cards\n"))
    result = cptbot(*command, "--faq", str(broken), stdin="")
    assert result.returncode == 2
    assert (
        err(result)
        == f"cptbot: {broken}:41: intent 'card_price': unknown source label 'cards' (known: hours, card, greeting)\n"
    )
    assert out(result) == ""


def test_missing_faq_file_is_a_content_error_not_a_traceback(tmp_path):
    result = cptbot("ask", "hi", "--faq", str(tmp_path / "none.yaml"))
    assert result.returncode == 2
    assert "Traceback" not in err(result) and err(result).startswith("cptbot: ")


@pytest.mark.parametrize("args", [["ask"], ["frobnicate"], ["eval", "--top", "many", "x.jsonl"], ["match"]])
def test_usage_errors_exit_2(args):
    result = cptbot(*args)
    assert result.returncode == 2
    assert "usage:" in err(result) and "Traceback" not in err(result)


@pytest.mark.parametrize("command", ["ask", "match", "eval", "check"])
def test_every_command_has_help_and_the_faq_option(command):
    result = cptbot(command, "--help")
    assert result.returncode == 0
    assert "--faq PATH" in out(result)


def test_no_command_in_a_pipe_answers_one_message_per_line():
    result = cptbot(stdin="who sells the cpt license\nthanks\n")
    assert result.returncode == 0
    assert "Optum360" in out(result) and "welcome" in out(result)


def test_help_lists_every_command():
    result = cptbot("--help")
    assert result.returncode == 0
    for command in ("ask", "match", "converse", "eval", "check", "chat", "serve", "review"):
        assert command in out(result)


# -- match --jsonl -------------------------------------------------------------------------


def test_match_jsonl_answers_each_line_in_order_and_reports_bad_lines_in_place():
    lines = [
        '{"text": "who sells the cpt license", "accept": ["4"]}',
        "",
        "not json",
        "[1, 2]",
        '{"text": 5}',
        '{"question": "hi"}',
        '{"text": "bye"}',
    ]
    result = cptbot("match", "--jsonl", stdin="\n".join(lines) + "\n")
    rows = [json.loads(line) for line in out(result).splitlines()]
    assert len(rows) == len(lines)
    assert set(rows[0]) == MATCH_KEYS and rows[0]["label"] == "4"
    assert rows[6]["label"] == "goodbye"
    for number in (2, 3, 4, 5, 6):
        assert set(rows[number - 1]) == {"error", "line"}
        assert rows[number - 1]["line"] == number
        assert '"text" string' in rows[number - 1]["error"]
    assert "not JSON" in rows[2]["error"] and "blank line" in rows[1]["error"]
    assert result.returncode == 2
    assert err(result) == "cptbot: 5 of 7 lines could not be used; see their error objects\n"


def test_match_jsonl_reads_a_file_and_exits_0_when_every_line_is_usable():
    result = cptbot("match", "--jsonl", str(DATA / "holdout.jsonl"))
    assert result.returncode == 0
    rows = [json.loads(line) for line in out(result).splitlines()]
    texts = [json.loads(line)["text"] for line in (DATA / "holdout.jsonl").read_text().splitlines()]
    assert [row["text"] for row in rows] == texts
    assert all(set(row) == MATCH_KEYS for row in rows)


def test_match_jsonl_missing_file_is_exit_2(tmp_path):
    result = cptbot("match", "--jsonl", str(tmp_path / "none.jsonl"))
    assert result.returncode == 2 and err(result).startswith("cptbot: ") and "Traceback" not in err(result)


# -- eval ------------------------------------------------------------------------------------


def test_eval_reports_every_group_with_a_compact_summary_last(tmp_path):
    labelled = tmp_path / "mini.jsonl"
    labelled.write_text(
        '{"text": "who sells the cpt license", "accept": ["4"]}\n'
        '{"text": "hello", "accept": ["greeting"]}\n'
        '{"text": "what is the weather in paris", "accept": []}\n'
        "broken line\n"
    )
    result = cptbot("eval", str(labelled))
    assert result.returncode == 0, err(result)
    tail = out(result).splitlines()[-4:]
    assert tail[0] == f"{labelled}: 3 lines, " + tail[0].split(", ")[1] + ", 1 unusable lines skipped"
    assert tail[1].split()[:5] == ["in", "scope", "1", "right", "100.0%"]
    assert tail[2].split()[:5] == ["small", "talk", "1", "recognised", "100.0%"]
    assert tail[3].split()[:6] == ["out", "of", "scope", "1", "answered", "0.0%"]
    assert f"cptbot: skipped {labelled}:4: not JSON" in err(result)


def test_eval_json_has_per_file_and_total_figures():
    result = cptbot("eval", "--json", "--top", "2", str(DATA / "dev.jsonl"), str(DATA / "holdout.jsonl"))
    data = json.loads(out(result))
    assert [f["name"] for f in data["files"]] == [str(DATA / "dev.jsonl"), str(DATA / "holdout.jsonl")]
    total = data["total"]
    assert total["lines"] == sum(f["lines"] for f in data["files"])
    group = total["in_scope"]
    assert group["lines"] == group["right"] + group["wrong"] + group["clarified"] + group["declined"]
    assert set(group["percent"]) >= {"right", "wrong", "clarified", "clarified_offered", "declined", "answered"}
    assert len(total["confusions"]) <= 2
    assert all(set(c) == {"expected", "got", "count", "example"} for c in total["confusions"])
    assert total["questions_per_second"] > 0


# -- check -----------------------------------------------------------------------------------


def test_check_reports_findings_with_file_and_line(tmp_path):
    faq = tmp_path / "faq.yaml"
    # An example of opening_hours that reads like a card question: a conflict.
    faq.write_text(
        (DATA / "mini_faq.yaml")
        .read_text()
        .replace(
            "      - what time do you close\n", "      - what time do you close\n      - how much does a card cost\n"
        )
    )
    result = cptbot("check", str(faq))
    lines = out(result).splitlines()
    assert lines[0] == f"{faq}: valid, 3 intents, 9 example questions"
    conflict = (
        f"{faq}:40: conflict: intent 'opening_hours': example \"how much does a card cost\" is answered by 'card_price'"
    )
    assert any(line.startswith(conflict) for line in lines), lines
    assert lines[-1].startswith(f"{faq}: 1 conflicts,")
    assert result.returncode == 1


def test_check_of_a_clean_faq_exits_0():
    result = cptbot("check", "--no-typos", str(DATA / "mini_faq.yaml"))
    assert result.returncode == 0, out(result)
    assert out(result).splitlines()[-1] == "tests/data/mini_faq.yaml: 0 conflicts, 0 weak, 0 typo-fragile of 8 examples"
