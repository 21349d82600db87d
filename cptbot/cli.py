"""The `cptbot` command line: ask, match, converse, eval, check, chat, serve and review.

Exit codes: 0 ok, 1 no answer (declined or clarifying; `check`: conflicts found),
2 usage or content error. Results go to stdout, diagnostics to stderr; a `CptbotError`
becomes one line `cptbot: <message>` on stderr, never a traceback.

Adding a command: write `_add_<name>(commands, common)` that registers a subparser with
`set_defaults(run=...)`, and a `_run_<name>(args) -> int`; add the former to
`COMMANDS` under its name. Import heavy modules (prompt_toolkit, fastapi, http) inside
`_run_<name>` only, so `cptbot ask` stays fast. `cptbot` with no command opens the console.
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
    from .dialog import Reply
    from .evaluation import EvalReport
    from .knowledge import KnowledgeBase
    from .matching import Matcher

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
    from .cache import load_matcher

    return load_matcher(args.faq)


# -- ask ---------------------------------------------------------------------------------------


def reply_once(matcher: Matcher, question: str) -> Reply:
    """What `cptbot ask` says to one question: the first turn of a fresh conversation.

    So a message that holds everything an estimate needs ("3 doctors and 8 users, how
    much?") is computed at once, and one that does not says what is missing.
    """
    from .dialog import Conversation, one_shot

    conversation = Conversation(matcher.kb, matcher)
    return one_shot(conversation.respond(conversation.start(), question)[1])


def ask_dict(reply: Reply, question: str) -> dict[str, Any]:
    """`cptbot ask --json`: the `cptbot match` object, plus `expecting` and `estimate`."""
    if reply.match is not None:
        data = reply.match.to_dict()
    else:
        data = {"text": question, "intent": None, "score": None, "alternatives": []}
    data.update(decision=reply.decision, label=reply.label, answer=reply.text, expecting=reply.expecting)
    data["estimate"] = reply.estimate.to_dict() if reply.estimate is not None else None
    return data


def render_reply(reply: Reply, kb: KnowledgeBase, style: _Style) -> str:
    """A reply as `cptbot ask` prints it: the text, then where it comes from."""
    score = reply.match.score if reply.match is not None else None
    confidence = f" · confidence {score:.0f}" if score is not None and reply.label != "estimate" else ""
    if reply.decision == "answer":
        return f"{reply.text}\n\n{style.dim(f'Source: {_source(reply.label, kb)}{confidence}')}"
    if reply.decision == "ask":
        footer = f"Needs: number of {reply.expecting} (add it to the question, or use `cptbot chat`)"
        return f"{reply.text}\n\n{style.dim(footer)}"
    if reply.decision == "clarify":
        head, _, options = reply.text.partition("\n")
        return f"{style.bold(head)}\n{options}\n\n{style.dim(f'Not sure: best confidence {score or 0:.0f}')}"
    footer = (
        f"Declined: best confidence {score:.0f}" if reply.match is not None and reply.match.candidates else "Declined"
    )
    return f"{style.warn(reply.text)}\n\n{style.dim(footer)}"


def _add_ask(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "ask",
        parents=[common],
        help="answer one question",
        description="Answer one question from the FAQ, with its source and confidence (0-100). "
        "Exit code 0 when answered, 1 when declined or clarifying.",
    )
    p.add_argument("question", nargs="*", metavar="QUESTION", help="the question (several words are joined)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: the `cptbot match` object plus expecting and estimate",
    )
    p.add_argument(
        "--ticket",
        metavar="FILE",
        help="answer a whole helpdesk ticket (- for stdin): one answer per distinct question",
    )
    p.set_defaults(run=_run_ask, parser=p)


def _run_ask(args: argparse.Namespace) -> int:
    import json

    if args.ticket is not None:
        if args.question:
            args.parser.error("give either a QUESTION or --ticket FILE, not both")
        from .ticket import ticket_command

        return ticket_command(_knowledge(args), args.ticket, as_json=args.json, out=sys.stdout, err=sys.stderr)
    if not args.question:
        args.parser.error('give a QUESTION (for example: cptbot ask "who sells the cpt license") or --ticket FILE')
    matcher = _matcher(args)
    kb = matcher.kb
    question = " ".join(args.question)
    if len(question) > kb.matching.max_chars:
        # Cut here so the notice goes to stderr rather than into the answer on stdout.
        question = question[: kb.matching.max_chars]
        _err(f"cptbot: note: {kb.replies['truncated']}")
    reply = reply_once(matcher, question)
    if args.json:
        _out(json.dumps(ask_dict(reply, question), ensure_ascii=False))
    else:
        _out(render_reply(reply, kb, _Style(_colour_enabled(sys.stdout))))
    return OK if reply.decision == "answer" else NO_ANSWER


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


def read_text_line(raw: bytes, number: int) -> str | dict[str, Any]:
    """The "text" of one JSON input line, or the error object to print in its place."""
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
    return text


def match_line(matcher: Matcher, raw: bytes, number: int) -> dict[str, Any]:
    """The output object for one input line of `cptbot match --jsonl`."""
    text = read_text_line(raw, number)
    return text if isinstance(text, dict) else matcher.match(text).to_dict()


def _json_lines(path: str, answer: Callable[[bytes, int], dict[str, Any]]) -> int:
    """Answer each input line with one JSON line, flushed at once; 2 if any line was unusable."""
    import json

    source = _open_binary(path)
    bad = total = 0
    try:
        for number, raw in enumerate(source, 1):
            result = answer(raw.rstrip(b"\r\n"), number)
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


def _run_match(args: argparse.Namespace) -> int:
    matcher = _matcher(args)
    return _json_lines(args.file, lambda raw, number: match_line(matcher, raw, number))


# -- converse --jsonl ------------------------------------------------------------------------


def _add_converse(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "converse",
        parents=[common],
        help="hold one conversation over JSON lines (the stdio protocol)",
        description='One process holds one conversation. Each input line is a JSON object with "text"; each '
        "output line is a JSON object with reply, decision (answer, clarify, decline or ask), label, "
        "expecting (doctors, users or null) and estimate (null, or doctors, users, rate, annual_fee, "
        'default_users, default_fee). A line that cannot be used gets {"error": ..., "line": N} and the '
        "conversation goes on unchanged. Exit code 0, or 2 if any line was unusable.",
    )
    p.add_argument("--jsonl", action="store_true", required=True, help="input and output are JSON Lines (required)")
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="input file; - or nothing for stdin")
    p.set_defaults(run=_run_converse)


def _run_converse(args: argparse.Namespace) -> int:
    from .dialog import Conversation

    conversation = Conversation(_knowledge(args))
    state = conversation.start()

    def turn(raw: bytes, number: int) -> dict[str, Any]:
        nonlocal state
        text = read_text_line(raw, number)
        if isinstance(text, dict):
            return text
        state, reply = conversation.respond(state, text)
        return reply.to_dict()

    return _json_lines(args.file, turn)


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


# -- chat (the console) -----------------------------------------------------------------------


def _chat_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-history",
        action="store_true",
        default=argparse.SUPPRESS,
        help="keep no history file (also: CPTBOT_NO_HISTORY=1); questions can hold patient details",
    )
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the details of unexpected errors"
    )
    parser.add_argument(
        "--log-declined",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="append questions the bot declined or clarified to FILE (JSON lines), for `cptbot review`",
    )


def _add_chat(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "chat",
        parents=[common],
        help="the support agent's console (also: cptbot with no command)",
        description="Open the interactive console on a terminal: answers with source and confidence, the fee "
        "estimate as a conversation, /help for commands. When stdin or stdout is not a terminal, read one "
        "message per line and print the replies.",
    )
    _chat_options(p)
    p.set_defaults(run=_run_chat)


def _run_chat(args: argparse.Namespace) -> int:
    from .console import run_from_cli

    matcher = _matcher(args)
    return run_from_cli(
        matcher.kb,
        matcher=matcher,
        no_history=getattr(args, "no_history", False),
        debug=getattr(args, "debug", False),
        log_declined=getattr(args, "log_declined", None),
    )


# -- serve and review ---------------------------------------------------------------------------


def _add_serve(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "serve",
        parents=[common],
        help="the HTTP service (needs: pip install 'cptbot[server]')",
        description="Serve POST /v1/match, /v1/converse, /v1/ticket, GET /v1/faq, /healthz and /openapi.json. "
        "Binds to 127.0.0.1 unless told otherwise. With a token (--token or CPTBOT_TOKEN) every /v1/ request "
        "needs 'Authorization: Bearer TOKEN'.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--token", default=None, help="bearer token required on /v1/ requests (or CPTBOT_TOKEN)")
    p.add_argument("--log-questions", action="store_true", help="put question text in the access log (off: privacy)")
    p.add_argument("--log-declined", metavar="FILE", default=None, help="append declined/clarified questions to FILE")
    p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    kb = _knowledge(args)
    try:
        from . import server
    except ImportError as exc:
        raise InputError(f"the HTTP service needs its extra: pip install 'cptbot[server]' ({exc})") from None
    return server.main(kb, args, err=sys.stderr)


def _add_review(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "review",
        parents=[common],
        help="group logged declined questions, to see what the FAQ does not cover",
        description="Read a --log-declined file and list groups of similar questions, largest first, with the "
        "nearest intent and sample questions: what customers ask that the FAQ does not answer yet.",
    )
    p.add_argument("file", metavar="FILE", help="the JSON-lines log written by --log-declined")
    p.add_argument("--json", action="store_true", help="print the groups as one JSON object")
    p.set_defaults(run=_run_review)


def _run_review(args: argparse.Namespace) -> int:
    from .traffic import review_command

    return review_command(args.file, _knowledge(args), as_json=args.json, out=sys.stdout, err=sys.stderr)


# -- the parser and main ----------------------------------------------------------------------

COMMANDS: dict[str, Callable[[Any, argparse.ArgumentParser], None]] = {
    "ask": _add_ask,
    "match": _add_match,
    "converse": _add_converse,
    "eval": _add_eval,
    "check": _add_check,
    "chat": _add_chat,
    "serve": _add_serve,
    "review": _add_review,
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of `cptbot`, every command with --help and --faq.

    With `command`, only that command's parser is built: `cptbot ask` then does not pay
    for the other seven (a few milliseconds of its start-up).
    """
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
    _chat_options(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, add in COMMANDS.items():
        if command in (None, name):
            add(commands, common)
    parser.set_defaults(run=_run_chat)
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command line; return the exit code (the console script exits with it)."""
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(words)
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
