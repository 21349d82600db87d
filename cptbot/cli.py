"""The `cptbot` command line: ask, match, eval and check.

Exit codes: 0 ok, 1 no answer (declined or clarifying; `check`: conflicts found),
2 usage or content error. Results go to stdout, diagnostics to stderr; a `CptbotError`
becomes one line `cptbot: <message>` on stderr, never a traceback.

Adding a command (issues 3-5: `converse`, `chat`, `serve`, `review`): write
`_add_<name>(commands, common)` that registers a subparser with `set_defaults(run=...)`,
and a `_run_<name>(args) -> int`; append the former to `COMMANDS`. Import heavy modules
(prompt_toolkit, fastapi, http) inside `_run_<name>` only, so `cptbot ask` stays fast.
`_run_default` is what `cptbot` with no command does (the console, once issue 4 lands).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

from . import __version__
from .errors import CptbotError, InputError

if TYPE_CHECKING:
    from .evaluation import EvalReport
    from .knowledge import KnowledgeBase
    from .matching import Match, Matcher

OK, NO_ANSWER, ERROR = 0, 1, 2


# -- output helpers ------------------------------------------------------------------------


def _colour_enabled(stream: IO[str]) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


class _Style:
    """ANSI styles, or plain text when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def warn(self, text: str) -> str:
        return self._wrap("33", text)


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _source(label: str | None, kb: KnowledgeBase) -> str:
    """`FAQ 6.1` for a passage of the FAQ, the label itself for a behaviour."""
    if label is None:
        return "none"
    return f"FAQ {label}" if label in kb.sources else label


# -- loading ---------------------------------------------------------------------------------


def _knowledge(args: argparse.Namespace) -> KnowledgeBase:
    from .knowledge import load_faq

    return load_faq(args.faq)


def _matcher(args: argparse.Namespace) -> Matcher:
    from .matching import Matcher

    return Matcher(_knowledge(args))


# -- ask ---------------------------------------------------------------------------------------


def reply_once(matcher: Matcher, question: str) -> Match:
    """What `cptbot ask` says to one question.

    The single place a one-shot question is turned into a reply: the fee-estimate
    conversation (issue 3) and `--ticket` (issue 5) plug in here.
    """
    return matcher.match(question)


def render_match(match: Match, kb: KnowledgeBase, style: _Style) -> str:
    """A match as `cptbot ask` prints it: the reply, then where it comes from."""
    if match.decision == "answer":
        footer = f"Source: {_source(match.label, kb)} · confidence {match.score:.0f}"
        return f"{match.answer}\n\n{style.dim(footer)}"
    if match.decision == "clarify":
        head, _, options = match.answer.partition("\n")
        footer = f"Not sure: best confidence {match.score:.0f}"
        return f"{style.bold(head)}\n{options}\n\n{style.dim(footer)}"
    footer = f"Declined: best confidence {match.score:.0f}" if match.candidates else "Declined"
    return f"{style.warn(match.answer)}\n\n{style.dim(footer)}"


def _add_ask(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "ask",
        parents=[common],
        help="answer one question",
        description="Answer one question from the FAQ, with its source and confidence (0-100). "
        "Exit code 0 when answered, 1 when declined or clarifying.",
    )
    p.add_argument("question", nargs="+", metavar="QUESTION", help="the question (several words are joined)")
    p.add_argument("--json", action="store_true", help="print the match as one JSON object (as `cptbot match` does)")
    p.set_defaults(run=_run_ask)


def _run_ask(args: argparse.Namespace) -> int:
    import json

    matcher = _matcher(args)
    match = reply_once(matcher, " ".join(args.question))
    if match.notice:
        _err(f"cptbot: note: {match.notice}")
    if args.json:
        _out(json.dumps(match.to_dict(), ensure_ascii=False))
    else:
        _out(render_match(match, matcher.kb, _Style(_colour_enabled(sys.stdout))))
    return OK if match.decision == "answer" else NO_ANSWER


# -- match --jsonl -------------------------------------------------------------------------


def _add_match(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "match",
        parents=[common],
        help="match JSON lines, one result per line",
        description='Read JSON lines with a "text" string (other keys are ignored, so an evaluation file '
        "pipes straight in) and write one JSON object per input line, in order: text, decision, label, "
        "intent, score, answer, alternatives. A line that cannot be used, blank lines included, gets "
        '{"error": ..., "line": N} in its place, so output line N always answers input line N. '
        "Exit code 0, or 2 if any line was unusable.",
    )
    p.add_argument("--jsonl", action="store_true", required=True, help="input and output are JSON Lines (required)")
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="input file; - or nothing for stdin")
    p.set_defaults(run=_run_match)


def _open_binary(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "number", float: "number", str: "string", list: "list", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def match_line(matcher: Matcher, raw: bytes, number: int) -> dict[str, Any]:
    """The output object for one input line of `cptbot match --jsonl`."""
    import json

    expected = 'expected a JSON object with a "text" string, like {"text": "who sells the cpt license"}'
    try:
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError:
        return {"error": f"line is not UTF-8 text; {expected}", "line": number}
    if not line.strip():
        return {"error": f"blank line; {expected}", "line": number}
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"error": f"not JSON ({exc.msg} at column {exc.colno}); {expected}", "line": number}
    if not isinstance(data, dict):
        return {"error": f"got a JSON {_json_type(data)}; {expected}", "line": number}
    text = data.get("text")
    if not isinstance(text, str):
        found = 'no "text" key' if "text" not in data else f'"text" is a {_json_type(text)}'
        return {"error": f"{found}; {expected}", "line": number}
    return matcher.match(text).to_dict()


def _run_match(args: argparse.Namespace) -> int:
    import json

    matcher = _matcher(args)
    source = _open_binary(args.file)
    bad = total = 0
    try:
        for number, raw in enumerate(source, 1):
            result = match_line(matcher, raw.rstrip(b"\r\n"), number)
            total += 1
            bad += "error" in result
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
            sys.stdout.flush()
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if bad:
        _err(f"cptbot: {bad} of {total} lines could not be used; see their error objects")
        return ERROR
    return OK


# -- eval ------------------------------------------------------------------------------------


def _add_eval(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "eval",
        parents=[common],
        help="measure the bot on labelled JSON lines",
        description='Match every line of labelled JSONL files ({"text": ..., "accept": [labels]}; [] = out of '
        "scope) and report, per file and in total: in-scope questions answered right or wrong, clarified "
        "(and whether the right option was offered) or declined; small talk recognised; out-of-scope "
        "questions answered; the worst confusions; throughput. The summary comes last.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="labelled JSONL file(s)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every figure")
    p.add_argument("--top", type=_positive, default=5, metavar="N", help="how many confusions to list (default 5)")
    p.set_defaults(run=_run_eval)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {number}")
    return number


def _pct(count: int, whole: int) -> str:
    return f"{100.0 * count / whole:.1f}%" if whole else "-"


def format_eval(report: EvalReport, *, top: int, title: str) -> Iterator[str]:
    """The human-readable lines of one eval report: confusions, then a compact summary."""
    import json

    worst = report.worst(top)
    if worst:
        yield f"{title}: worst confusions (expected -> got, count, example)"
        for c in worst:
            example = c.example if len(c.example) <= 60 else c.example[:57] + "..."
            yield f"  {c.expected:>12} -> {c.got:<10} {c.count:>5}  {json.dumps(example, ensure_ascii=False)}"
    yield (
        f"{title}: {report.lines:,} lines, {report.per_second:,.0f} questions/s"
        + (f", {report.skipped} unusable lines skipped" if report.skipped else "")
    )
    s = report.in_scope
    if s.lines:
        yield (
            f"  in scope     {s.lines:>6,}  right {_pct(s.right, s.lines)}  wrong {_pct(s.wrong, s.lines)}  "
            f"clarified {_pct(s.clarified, s.lines)} (right offered {_pct(s.clarified_offered, s.lines)})  "
            f"declined {_pct(s.declined, s.lines)}"
        )
    t = report.small_talk
    if t.lines:
        yield (
            f"  small talk   {t.lines:>6,}  recognised {_pct(t.right, t.lines)}  wrong {_pct(t.wrong, t.lines)}  "
            f"clarified {_pct(t.clarified, t.lines)}  declined {_pct(t.declined, t.lines)}"
        )
    o = report.out_of_scope
    if o.lines:
        yield (
            f"  out of scope {o.lines:>6,}  answered {_pct(o.wrong, o.lines)} ({o.wrong:,})  "
            f"clarified {_pct(o.clarified, o.lines)}  declined {_pct(o.declined, o.lines)}"
        )


def _run_eval(args: argparse.Namespace) -> int:
    import json

    from .evaluation import EvalReport, evaluate, read_labelled

    matcher = _matcher(args)
    total = EvalReport(name="total")
    reports = []
    for path in args.files:
        rows, problems = read_labelled(path)
        for problem in problems[:5]:
            _err(f"cptbot: skipped {problem}")
        if len(problems) > 5:
            _err(f"cptbot: ... and {len(problems) - 5} more unusable lines in {path}")
        report = evaluate(matcher, rows, name=path)
        report.skipped = len(problems)
        reports.append(report)
        total.add(report)
    if args.json:
        data = {"files": [r.to_dict(top=args.top) for r in reports], "total": total.to_dict(top=args.top)}
        _out(json.dumps(data, ensure_ascii=False, indent=2))
        return OK
    for report in reports:
        for line in format_eval(report, top=args.top, title=report.name):
            _out(line)
    if len(reports) > 1:
        for line in format_eval(total, top=0, title="TOTAL"):
            _out(line)
    return OK


# -- check ------------------------------------------------------------------------------------


def _add_check(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "check",
        parents=[common],
        help="validate a FAQ file and find colliding example questions",
        description="Validate a FAQ file (exit 2 with file:line: message if it is broken), then match each "
        "example question leaving it out of the matcher: conflicts (answered with another intent), weak "
        "examples (only clarified or declined) and typo-fragile ones (lost after one swapped letter pair). "
        "Exit code 1 when there are conflicts, else 0.",
    )
    p.add_argument("path", nargs="?", metavar="PATH", help="the FAQ file (default: --faq, else the built-in FAQ)")
    p.add_argument("--no-typos", action="store_true", help="skip the typo-fragility pass")
    p.set_defaults(run=_run_check)


def _shown_path(path: str) -> str:
    """A path below the working directory relative to it (the built-in FAQ is absolute)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def _run_check(args: argparse.Namespace) -> int:
    from .checking import check_faq
    from .knowledge import load_faq

    kb = load_faq(args.path if args.path is not None else args.faq)
    report = check_faq(kb, typos=not args.no_typos)
    style = _Style(_colour_enabled(sys.stdout))
    path = _shown_path(kb.path)
    _out(f"{path}: valid, {report.intents} intents, {report.examples} example questions")
    for finding in report.findings:
        text = f"{path}:{finding.line}: {finding.describe()}"
        _out(style.warn(text) if finding.kind == "conflict" else text)
    counts = {kind: len(report.of_kind(kind)) for kind in ("conflict", "weak", "typo")}
    _out(
        f"{path}: {counts['conflict']} conflicts, {counts['weak']} weak, "
        f"{counts['typo']} typo-fragile of {report.examples} examples"
    )
    return NO_ANSWER if report.conflicts else OK


# -- the parser and main ----------------------------------------------------------------------

COMMANDS: list[Callable[[Any, argparse.ArgumentParser], None]] = [_add_ask, _add_match, _add_eval, _add_check]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `cptbot`, every command with --help and --faq."""
    # --faq is accepted before and after the command; SUPPRESS keeps a subcommand's
    # default from overwriting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--faq", metavar="PATH", default=argparse.SUPPRESS, help="FAQ YAML file to use (default: the built-in CPT FAQ)"
    )
    parser = argparse.ArgumentParser(
        prog="cptbot",
        description="Answers questions about Practice Fusion's CPT license FAQ.",
        epilog="Exit codes: 0 ok, 1 no answer (declined, clarifying, or check found conflicts), "
        "2 usage or content error. Set NO_COLOR to turn colour off.",
    )
    parser.add_argument(
        "--faq", metavar="PATH", default=None, help="FAQ YAML file to use (default: the built-in CPT FAQ)"
    )
    parser.add_argument("--version", action="version", version=f"cptbot {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in COMMANDS:
        add(commands, common)
    parser.set_defaults(run=_run_default)
    return parser


def _run_default(args: argparse.Namespace) -> int:
    """`cptbot` with no command: help for now (the interactive console comes with issue 4)."""
    build_parser().print_help(sys.stdout)
    return OK


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command line; return the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        return args.run(args)
    except CptbotError as exc:
        _err(f"cptbot: {exc}")
        return ERROR
    except BrokenPipeError:
        # The reader went away (`cptbot match --jsonl big.jsonl | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return OK
    except KeyboardInterrupt:
        _err("cptbot: interrupted")
        return 130
