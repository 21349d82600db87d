"""Benchmark the matcher and `cptbot ask`, each figure beside a baseline measured in the same run.

    python bench/bench_matcher.py [--rounds 5] [--ask-runs 15]

- per-question latency p50 / p99 and batch throughput of `Matcher.match` on the dev
  questions, beside `rapidfuzz.process.extractOne(q, examples, scorer=fuzz.WRatio,
  processor=utils.default_process)` over the same example questions;
- `cptbot ask` start-to-finish wall time beside the floor any implementation on these
  libraries has, `python -c "import rapidfuzz.process, yaml"`;
- the same latencies on a generated FAQ of 1,000 intents x 10 examples.

Every figure is the median over rounds. Targets (issue 2): p50 <= 100 us, p99 <= 1 ms,
>= 10,000 questions/s on one core, `cptbot ask` <= 1.5x the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rapidfuzz import fuzz, process, utils

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cptbot import Matcher, load_faq  # noqa: E402


def percentile(sorted_values: Sequence[float], share: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


def latencies(fn: Callable[[str], object], questions: Sequence[str], rounds: int) -> dict[str, float]:
    """Median over rounds of p50, p99 (microseconds) and batch throughput (questions/s)."""
    p50s, p99s, rates = [], [], []
    for _ in range(rounds):
        times = []
        for q in questions:
            start = time.perf_counter_ns()
            fn(q)
            times.append((time.perf_counter_ns() - start) / 1000)
        times.sort()
        p50s.append(percentile(times, 0.50))
        p99s.append(percentile(times, 0.99))
        start = time.perf_counter()
        for q in questions:
            fn(q)
        rates.append(len(questions) / (time.perf_counter() - start))
    return {"p50": statistics.median(p50s), "p99": statistics.median(p99s), "qps": statistics.median(rates)}


def wall_time(command: list[str], runs: int) -> float:
    """Median wall time in milliseconds of running `command` (after one warm-up run)."""
    # Bytecode is allowed (and written by the warm-up run) as it is in an installed wheel,
    # even where the environment sets PYTHONDONTWRITEBYTECODE: compiling the source on
    # every start is not what a user's `cptbot ask` pays.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(command, capture_output=True, env=env, cwd=ROOT, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env, cwd=ROOT, check=False)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def baseline(examples: Sequence[str]) -> Callable[[str], object]:
    def match(q: str) -> object:
        return process.extractOne(q, examples, scorer=fuzz.WRatio, processor=utils.default_process)

    return match


def generated_faq(directory: Path, intents: int = 1000, examples: int = 10, seed: int = 7) -> tuple[Path, list[str]]:
    """A valid FAQ of `intents` x `examples` made-up questions, and some queries for it."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qui", "dro", "fen", "gal", "hup"]
    vocabulary = sorted({"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(6000)})
    glue = ["how", "do", "i", "the", "my", "what", "is", "a", "for", "can", "we"]
    lines = [
        "title: Generated FAQ",
        "sources:",
        '  main: "A generated passage."',
        "behaviours: []",
        "settings:",
        "  fee: {rate_per_user: 17, users_per_doctor: 4, as_of: 2021}",
        "  matching: {answer_threshold: 70, clarify_threshold: 35, clarify_margin: 3, lead_threshold: 60,",
        "             lead_margin: 15, smalltalk_threshold: 40, max_chars: 10000}",
        "replies:",
        '  decline: "I do not know."',
        '  clarify: "Which one?"',
        '  truncated: "Cut."',
        '  empty: "Ask something."',
        "concepts:",
        "  thing: [thing, things]",
        "intents:",
    ]
    queries: list[str] = []
    for number in range(intents):
        topic = rng.sample(vocabulary, 6)
        lines += [
            f"  - id: intent_{number}",
            "    source: main",
            f"    question: What about {topic[0]} {topic[1]}?",
            f'    answer: "Answer {number}."',
            "    examples:",
        ]
        for _ in range(examples):
            words = rng.sample(topic, 3) + rng.sample(glue, 3) + rng.sample(vocabulary, 1)
            rng.shuffle(words)
            lines.append(f"      - {' '.join(words)}")
        if number % 5 == 0:
            query = rng.sample(topic, 3) + rng.sample(glue, 2)
            queries.append(" ".join(query))
    path = directory / "generated.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, queries


def row(name: str, ours: float, base: float, unit: str, target: str, *, lower_is_better: bool = True) -> str:
    ratio = ours / base if base else float("nan")
    return f"{name:<28} {ours:>11,.1f} {base:>11,.1f} {unit:<6} {ratio:>7.2f}x   {target}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per latency figure (median taken)")
    parser.add_argument("--ask-runs", type=int, default=15, help="subprocess runs of `cptbot ask` (median taken)")
    args = parser.parse_args()

    kb = load_faq()
    questions = [json.loads(line)["text"] for line in (ROOT / "tests" / "data" / "dev.jsonl").read_text().splitlines()]
    examples = [e for intent in kb.intents for e in intent.examples]
    matcher = Matcher(kb)
    ours = latencies(matcher.match, questions, args.rounds)
    base = latencies(baseline(examples), questions, args.rounds)

    ask = wall_time([sys.executable, "-m", "cptbot", "ask", "who sells the cpt license"], args.ask_runs)
    floor = wall_time([sys.executable, "-c", "import rapidfuzz.process, yaml"], args.ask_runs)

    with tempfile.TemporaryDirectory() as tmp:
        path, queries = generated_faq(Path(tmp))
        start = time.perf_counter()
        big_kb = load_faq(path)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        big = Matcher(big_kb)
        build_s = time.perf_counter() - start
        big_examples = [e for intent in big_kb.intents for e in intent.examples]
        big_ours = latencies(big.match, queries, args.rounds)
        big_base = latencies(baseline(big_examples), queries[:50], max(1, args.rounds // 2))
        right = sum(big.match(q).intent == f"intent_{5 * n}" for n, q in enumerate(queries))

    print(
        f"cptbot matcher benchmark: {len(questions)} dev questions, {len(examples)} example questions, "
        f"median of {args.rounds} rounds; Python {sys.version.split()[0]}"
    )
    print(f"{'':<28} {'cptbot':>11} {'baseline':>11} {'unit':<6} {'ratio':>8}   target")
    print(row("latency p50", ours["p50"], base["p50"], "us", "<= 100 us"))
    print(row("latency p99", ours["p99"], base["p99"], "us", "<= 1,000 us"))
    print(row("batch throughput", ours["qps"], base["qps"], "q/s", ">= 10,000 q/s"))
    print(row("`cptbot ask` wall time", ask, floor, "ms", "<= 1.5x floor (import rapidfuzz, yaml)"))
    print(
        f"generated FAQ: {len(big_kb.intents):,} intents x 10 examples; load {load_s * 1000:,.0f} ms, "
        f"build {build_s * 1000:,.0f} ms; {right}/{len(queries)} queries reach their intent"
    )
    print(
        row(
            "  latency p50 (1,000x10)",
            big_ours["p50"],
            big_base["p50"],
            "us",
            f"grows {big_ours['p50'] / ours['p50']:.1f}x over the CPT FAQ",
        )
    )
    print(
        row(
            "  latency p99 (1,000x10)",
            big_ours["p99"],
            big_base["p99"],
            "us",
            f"grows {big_ours['p99'] / ours['p99']:.1f}x over the CPT FAQ",
        )
    )
    print(row("  throughput (1,000x10)", big_ours["qps"], big_base["qps"], "q/s", ""))
    print(
        "baseline: rapidfuzz.process.extractOne(q, examples, scorer=fuzz.WRatio, processor=utils.default_process); "
        "ask floor: python -c 'import rapidfuzz.process, yaml'"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
