"""How quick the console is for an agent: start to a ready prompt, and Enter to answer.

    python3 bench/bench_console.py [--runs 10]

Both are measured in a real pseudo-terminal (pexpect, 80x24).  The start-up time is set
next to `python3 -c "import rapidfuzz.process, yaml, prompt_toolkit"` run the same way
in the same process, alternating, so a busy machine slows both alike.  Enter-to-answer
is from sending Enter to the answer's label line on screen, set next to the in-process
time of `Conversation.respond` for the same questions.  Medians are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pexpect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# What an agent starts: `cptbot chat`, through the CLI and its matcher cache.
CONSOLE = "import sys; from cptbot.cli import main; sys.exit(main(['chat']))"
BASELINE = "import rapidfuzz.process, yaml, prompt_toolkit"
QUESTIONS = (
    "who sells the cpt license",
    "do I need a license if we don't use cpt codes",
    "how is the annual fee calculated",
    "why isn't the cpt license in the monthly fee",
    "who owns cpt codes",
)


def _env(state: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_STATE_HOME": state,
        "NO_COLOR": "1",
        "TERM": "xterm",
        # A pty has no terminal to answer cursor-position requests; without this the
        # toolbar waits for an answer that never comes (a real terminal answers at once).
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }


def _spawn(code: str, env: dict[str, str]) -> tuple[pexpect.spawn, float]:
    start = time.perf_counter()
    child = pexpect.spawn(sys.executable, ["-c", code], env=env, dimensions=(24, 80), encoding="utf-8", timeout=30)
    child.delaybeforesend = None  # pexpect sleeps 50 ms before every send by default
    return child, start


def time_to_prompt(env: dict[str, str]) -> float:
    child, start = _spawn(CONSOLE, env)
    child.expect_exact("cptbot>")
    elapsed = time.perf_counter() - start
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return elapsed


def time_baseline(env: dict[str, str]) -> float:
    child, start = _spawn(BASELINE, env)
    child.expect(pexpect.EOF)
    elapsed = time.perf_counter() - start
    child.close()
    return elapsed


def times_enter_to_answer(env: dict[str, str], rounds: int) -> list[float]:
    child, _ = _spawn(CONSOLE, env)
    child.expect_exact("cptbot>")
    found = []
    for n in range(rounds):
        question = QUESTIONS[n % len(QUESTIONS)]
        child.send(question)
        child.expect_exact(question[-12:])  # the prompt has drawn what was typed
        start = time.perf_counter()
        child.send("\r")
        child.expect(r"\[FAQ [^\]\r\n]+\]")
        found.append(time.perf_counter() - start)
        child.expect_exact("cptbot>")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return found


def times_respond(rounds: int) -> list[float]:
    from cptbot import load_faq
    from cptbot.dialog import Conversation

    conversation = Conversation(load_faq())
    state = conversation.start()
    found = []
    for n in range(rounds):
        start = time.perf_counter()
        conversation.respond(state, QUESTIONS[n % len(QUESTIONS)])
        found.append(time.perf_counter() - start)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="start-ups of each kind (default 10)")
    parser.add_argument("--rounds", type=int, default=20, help="questions for Enter-to-answer (default 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        env = _env(state)
        time_to_prompt(env)  # warm the page cache and .pyc files
        prompt, baseline = [], []
        for _ in range(args.runs):
            prompt.append(time_to_prompt(env))
            baseline.append(time_baseline(env))
        enter = times_enter_to_answer(env, args.rounds)
    respond = times_respond(args.rounds)

    ms = 1000.0
    p, b = statistics.median(prompt), statistics.median(baseline)
    e, r = statistics.median(enter), statistics.median(respond)
    print(
        f"start to ready prompt     {p * ms:7.1f} ms  "
        f"(median of {args.runs}; min {min(prompt) * ms:.1f}, max {max(prompt) * ms:.1f})"
    )
    print(f'import baseline           {b * ms:7.1f} ms  python3 -c "{BASELINE}"')
    print(f"  ratio                   {p / b:7.2f} x")
    print(f"Enter to answer on screen {e * ms:7.1f} ms  (median of {args.rounds}; max {max(enter) * ms:.1f})")
    print(f"Conversation.respond      {r * ms:7.2f} ms  in-process, same questions")
    print(f"  ratio                   {e / r:7.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
