"""The support agent's console: a prompt over the conversation, plus a few commands.

This module does input, output and presentation only.  Every message the agent types,
including a clarify pick ("2") and the numbers of a fee estimate, goes to
`Conversation.respond`; the console decides how the reply looks and what the prompt
says the bot is waiting for.

prompt_toolkit is imported only inside `run_console`, so `cptbot ask` and the pipe mode
(stdin not a terminal: one message per line in, plain replies out) never load it.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import sys
import textwrap
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .dialog import Conversation, Reply
from .fee import format_money
from .knowledge import KnowledgeBase
from .traffic import DeclinedLog

if TYPE_CHECKING:
    from .matching import Match, Matcher

Fragments = list[tuple[str, str]]
"""Styled text as prompt_toolkit takes it: (style class, text) pairs."""

HISTORY_ENV = "CPTBOT_NO_HISTORY"

WAITING = {
    "doctors": "estimate: number of doctors",
    "users": "estimate: number of users",
}
"""What the prompt and toolbar say while the conversation waits for a slot."""

_ESTIMATE_FROM = ("6.1", "6.2")
"""The FAQ passages an estimate is worked out from (shown by /source after one)."""

_MAX_WIDTH = 100
_NUMBERED = re.compile(r"^\d+\.\s")

STYLE = {
    "prompt": "bold",
    "prompt.waiting": "ansiyellow bold",
    "meta": "ansibrightblack",
    "label": "ansicyan",
    "notice": "ansiyellow",
    "decline": "",
    "option": "ansicyan",
    "heading": "bold",
    "error": "ansired",
}


# -- settings from the environment -------------------------------------------------------


def history_file(*, no_history: bool = False, environ: Mapping[str, str] | None = None) -> Path | None:
    """Where history is kept ($XDG_STATE_HOME/cptbot/history), or None when it is off.

    History is off with `--no-history` or when CPTBOT_NO_HISTORY is set to anything but
    "" or "0": agents' questions can contain patient details.
    """
    env = os.environ if environ is None else environ
    if no_history or env.get(HISTORY_ENV, "") not in ("", "0"):
        return None
    base = env.get("XDG_STATE_HOME", "")
    # The XDG spec says relative paths are invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "cptbot" / "history"


def color_wanted(stream: Any, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


# -- presentation ------------------------------------------------------------------------


def wrap(text: str, width: int, *, indent: str = "") -> str:
    """Wrap every line of `text` to `width` columns; numbered lines hang under their text."""
    out: list[str] = []
    for line in text.split("\n"):
        hang = indent + " " * len(found.group(0)) if (found := _NUMBERED.match(line)) else indent
        out.extend(
            textwrap.wrap(
                line,
                width,
                initial_indent=indent,
                subsequent_indent=hang,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [""]
        )
    return "\n".join(out)


def plain(fragments: Fragments) -> str:
    """The text of styled fragments, without the styles."""
    return "".join(text for _, text in fragments)


class Console:
    """The console's state between prompts and what it shows; no terminal I/O.

    `handle(line)` sends a message to the conversation (or runs a /command) and returns
    the styled text to show, or None when the agent asked to quit.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        conversation: Conversation | None = None,
        history_note: str = "",
        declined_log: DeclinedLog | None = None,
    ) -> None:
        self.kb = kb
        self.declined_log = declined_log
        self.conversation = conversation if conversation is not None else Conversation(kb)
        self.history_note = history_note
        self.state = self.conversation.start()
        self.reply: Reply | None = None
        self.last_label: str | None = None
        self.last_match: Match | None = None
        self.commands: dict[str, tuple[Callable[[int], Fragments | None], str]] = {
            "/help": (self._help, "this list"),
            "/topics": (self._topics, "every question I can answer, by FAQ section"),
            "/source": (self._source, "the FAQ passage behind the last answer, word for word"),
            "/why": (self._why, "the best matches and their scores for the last question"),
            "/estimate": (self._estimate, "estimate a practice's annual CPT license fee"),
            "/reset": (self._reset, "start the conversation over"),
            "/quit": (self._quit, "leave the console (or Ctrl-D)"),
        }

    # -- what the prompt shows -----------------------------------------------------------

    @property
    def waiting(self) -> str | None:
        """What the bot is waiting for, in words ("estimate: number of doctors"), if anything."""
        reply = self.reply
        if reply is None:
            return None
        if reply.expecting:
            return WAITING.get(reply.expecting, f"waiting for: {reply.expecting}")
        if reply.options:
            return f"clarify: type 1-{len(reply.options)} to pick"
        return None

    def prompt(self) -> Fragments:
        """The prompt: `cptbot> `, or what the bot waits for."""
        waiting = self.waiting
        if waiting:
            return [("class:prompt.waiting", waiting), ("class:prompt", "> ")]
        return [("class:prompt", "cptbot> ")]

    def toolbar(self) -> Fragments:
        """The bottom toolbar: what the bot waits for, then the keys worth knowing."""
        waiting = self.waiting
        if waiting:
            return [("class:bottom-toolbar.text", f" {waiting} | /reset cancels | Ctrl-D quits ")]
        return [
            ("class:bottom-toolbar.text", " Ask about the CPT license | /help /topics | Tab completes | Ctrl-D quits ")
        ]

    def completions(self) -> list[str]:
        """What Tab offers: the commands and every answerable FAQ question."""
        return list(self.commands) + [i.question for i in self.kb.intents if not i.smalltalk]

    # -- handling a line -----------------------------------------------------------------

    def handle(self, line: str, *, width: int = 80) -> Fragments | None:
        """Run one line typed by the agent; returns what to show, or None to quit."""
        text = line.strip()
        if not text and not (self.reply and self.reply.expecting):
            return []  # Enter on an empty line just gives a fresh prompt ...
        # ... unless the bot is asking: then an empty answer is one ("use the default").
        width = max(20, min(width, _MAX_WIDTH) - 1)
        if text.startswith("/"):
            name = text.split()[0].lower()
            command = self.commands.get(name)
            if command is None:
                return self._unknown(name)
            return command[0](width)
        return self.send(text, width=width)

    def send(self, text: str, *, width: int = 80) -> Fragments:
        """Send a message to the conversation and show its reply."""
        offered = bool(self.reply and self.reply.options)
        self.state, reply = self.conversation.respond(self.state, text)
        self.reply = reply
        if reply.match is not None:
            self.last_match = reply.match
            if self.declined_log is not None:
                self.declined_log.record(reply.match)
        if reply.label is not None and reply.decision in ("answer", "ask"):
            self.last_label = reply.label
        # An answer with no matcher verdict right after numbered options is the agent's pick.
        return self.render(reply, width, picked=offered and reply.match is None and reply.decision == "answer")

    def source_name(self, label: str) -> str:
        """`FAQ 6.1` for a passage of the FAQ; behaviours (`estimate`) by their own name."""
        return f"FAQ {label}" if label in self.kb.sources else label

    def render(self, reply: Reply, width: int, *, picked: bool = False) -> Fragments:
        """A reply as the agent sees it: text, then its source label and confidence."""
        out: Fragments = []
        notice = reply.match.notice if reply.match is not None else None
        if notice and notice not in reply.text:
            out.append(("class:notice", wrap(notice, width) + "\n"))
        text = reply.text
        options = reply.options
        listed = all(f"{n}. {c.question}" in text for n, c in enumerate(options, 1))
        out.append((f"class:{reply.decision}", wrap(text, width) + "\n"))
        if options and not listed:
            for n, candidate in enumerate(options, 1):
                out.append(("class:option", wrap(f"{n}. {candidate.question}", width, indent="  ") + "\n"))
        meta = self._meta(reply, picked=picked)
        if meta:
            out.append(("class:meta", wrap(meta, width) + "\n"))
        return out

    def _meta(self, reply: Reply, *, picked: bool) -> str:
        if reply.decision == "clarify":
            return f"(type 1-{len(reply.options)} to pick, or ask in other words)" if reply.options else ""
        if reply.decision == "decline":
            return "(declined: /topics lists what I can answer, /why shows the near misses)"
        parts = []
        if reply.label is not None:
            parts.append(self.source_name(reply.label))
        if reply.estimate is not None:
            est = reply.estimate
            parts.append(f"{est.users:,} users × {format_money(est.rate)} = {format_money(est.annual_fee)} a year")
        elif reply.match is not None and reply.match.decision == "answer":
            parts.append(f"confidence {reply.match.score:.0f}/100")
        elif picked:
            parts.append("your pick")
        return f"[{' · '.join(parts)}]" if parts else ""

    # -- commands ------------------------------------------------------------------------

    def _help(self, width: int) -> Fragments:
        out: Fragments = [("", wrap("Ask a question about the CPT license in your own words, or type:", width) + "\n")]
        for name, (_, summary) in self.commands.items():
            out.append(("class:option", f"  {name:<11}"))
            out.append(("", wrap(summary, width - 13).replace("\n", "\n" + " " * 13) + "\n"))
        tips = (
            "After a 'which one?' reply, type 1, 2 or 3 to pick. Tab completes commands and "
            "questions, Ctrl-R searches earlier questions, Ctrl-C clears the line."
        )
        out.append(("class:meta", wrap(tips, width) + "\n"))
        if self.history_note:
            out.append(("class:meta", wrap(self.history_note, width) + "\n"))
        return out

    def _topics(self, width: int) -> Fragments:
        by_label: dict[str, list[str]] = {}
        for intent in self.kb.intents:
            if not intent.smalltalk:
                by_label.setdefault(intent.source, []).append(intent.question)
        out: Fragments = []
        for label in self.kb.labels:
            if label in by_label:
                out.append(("class:heading", self.source_name(label) + "\n"))
                for question in by_label[label]:
                    out.append(("", wrap(question, width, indent="  ") + "\n"))
        out.append(
            (
                "class:meta",
                wrap("(/source shows the FAQ passage behind an answer; /estimate works out a fee)", width) + "\n",
            )
        )
        return out

    def _source(self, width: int) -> Fragments:
        label = self.last_label
        if label is None:
            return [
                (
                    "class:meta",
                    wrap("No answer yet: ask a question, then /source shows the FAQ passage behind it.", width) + "\n",
                )
            ]
        labels = (
            (label,)
            if label in self.kb.sources
            else tuple(x for x in _ESTIMATE_FROM if label == "estimate" and x in self.kb.sources)
        )
        if not labels:
            return [
                (
                    "class:meta",
                    wrap(f"The last answer ({label}) is the bot's own reply, not an FAQ passage.", width) + "\n",
                )
            ]
        out: Fragments = []
        if label not in self.kb.sources:
            out.append(("class:meta", wrap(f"The {label} is worked out from these FAQ passages:", width) + "\n"))
        for name in labels:
            out.append(("class:heading", f"FAQ {name}\n"))
            out.append(("", wrap(self.kb.sources[name], width, indent="  ") + "\n"))
        return out

    def _why(self, width: int) -> Fragments:
        match = self.last_match
        if match is None:
            return [("class:meta", wrap("No question yet: ask one, then /why shows how it was matched.", width) + "\n")]
        settings = self.kb.matching
        out: Fragments = [("", wrap(f'"{match.text}" was matched as: {match.decision}', width) + "\n")]
        if not match.candidates:
            out.append(("class:meta", "  (no FAQ question shares any words with it)\n"))
        for candidate in match.candidates:
            head = f"  {candidate.score:5.1f}  {self.source_name(candidate.label):<14} "
            out.append(("class:option", head))
            out.append(("", wrap(candidate.question, width - len(head)).replace("\n", "\n" + " " * len(head)) + "\n"))
        rule = (
            f"(answered at {settings.answer_threshold:g} or more with a lead of {settings.clarify_margin:g} "
            f"when the classifier gives it {settings.answer_probability:.0%} or more, "
            f"or at {settings.lead_threshold:g} with a lead of {settings.lead_margin:g}; "
            f"{self._sure_rule()}"
            f"{self._topic_rule()}"
            f"otherwise clarified when the best match's word similarity (before the classifier's "
            f"weighting) reaches {settings.clarify_threshold:g} and its score reaches "
            f"{settings.clarify_score:g}; declined below)"
        )
        out.append(("class:meta", wrap(rule, width) + "\n"))
        return out

    def _sure_rule(self) -> str:
        settings = self.kb.matching
        if settings.sure_threshold is None:
            return ""
        return (
            f"at {settings.sure_threshold:g} with a lead of {settings.sure_margin:g} when the classifier "
            f"gives it {settings.sure_probability:.0%} or more; "
        )

    def _topic_rule(self) -> str:
        settings = self.kb.matching
        topics = sorted(self.conversation.matcher.topics)
        if settings.topic_threshold is None or not topics:
            return ""
        return (
            f"a question naming one of this FAQ's own topics ({', '.join(topics)}) is answered at "
            f"{settings.topic_threshold:g} with a lead of {settings.topic_margin:g} when the classifier "
            f"gives it {settings.topic_probability:.0%} or more; "
        )

    def _estimate(self, width: int) -> Fragments:
        # The console does not run the estimate itself: it asks the conversation for one,
        # in the words of the FAQ's own estimate question, which the matcher knows best.
        question = next((i.question for i in self.kb.intents if i.source == "estimate"), "estimate my fee")
        return self.send(question, width=width)

    def _reset(self, width: int) -> Fragments:
        self.state = self.conversation.start()
        self.reply = None
        self.last_label = None
        self.last_match = None
        return [("class:meta", "Started over. (Your input history is kept.)\n")]

    def _quit(self, width: int) -> None:
        return None

    def _unknown(self, name: str) -> Fragments:
        close = difflib.get_close_matches(name, list(self.commands), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        return [("class:error", f"Unknown command {name}: {hint}/help lists the commands.\n")]


def failure(exc: BaseException, *, debug: bool) -> Fragments:
    """One line about an unexpected error (and the traceback with --debug)."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    line = f"Something went wrong ({type(exc).__name__}{': ' + message[:120] if message else ''}); the console goes on."
    if debug:
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return [("class:error", line + "\n"), ("class:meta", details)]
    return [("class:error", line + " Start it with --debug for details.\n")]


# -- pipe mode ---------------------------------------------------------------------------


def run_pipe(
    kb: KnowledgeBase,
    *,
    stdin: IO[str],
    stdout: IO[str],
    stderr: IO[str] | None = None,
    debug: bool = False,
    conversation: Conversation | None = None,
    declined_log: DeclinedLog | None = None,
) -> int:
    """One message per line in, plain replies out (a blank line after each); no prompt_toolkit.

    An unexpected error is one line on stderr and the next message is still read; the
    exit status is then 1, so a script can tell (0 otherwise, 130 on Ctrl-C).
    """
    errors = sys.stderr if stderr is None else stderr
    console = Console(kb, conversation=conversation, declined_log=declined_log)
    width = shutil.get_terminal_size((80, 24)).columns
    status = 0
    try:
        for line in stdin:
            try:
                shown = console.handle(line.rstrip("\r\n"), width=width)
            except Exception as exc:  # noqa: BLE001 - one line, never a traceback
                errors.write(plain(failure(exc, debug=debug)))
                errors.flush()
                status = 1
                continue
            if shown is None:
                break
            if shown:
                stdout.write(plain(shown) + "\n")
                stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return status
    return status


# -- the interactive console -------------------------------------------------------------


def _open_history(path: Path | None) -> tuple[Any, str]:
    """A FileHistory at `path` (file mode 0600, directory 0700), else in memory, with a note."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    if path is None:
        return InMemoryHistory(), "History is off: nothing you type is saved."
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    except OSError as exc:
        return InMemoryHistory(), f"History is off: cannot write {path} ({exc.strerror or exc})."
    note = f"History is saved in {path}; turn it off with --no-history or {HISTORY_ENV}=1."
    return FileHistory(str(path)), note


def make_completer(words: list[str]) -> Any:
    """Tab completion: fuzzy over the whole line, so "monthly fee" finds a FAQ question."""
    from prompt_toolkit.completion import FuzzyCompleter, WordCompleter

    # FuzzyCompleter's default pattern looks at the last word only, and hands the rest of
    # the line to WordCompleter as a prefix; "^.*" makes the whole line the fuzzy needle.
    return FuzzyCompleter(WordCompleter(words, sentence=True), pattern=r"^.*")


def run_console(
    kb: KnowledgeBase,
    *,
    history_path: Path | None,
    input: Any = None,
    output: Any = None,
    debug: bool = False,
    color: bool | None = None,
    conversation: Conversation | None = None,
    declined_log: DeclinedLog | None = None,
) -> int:
    """Run the interactive console until /quit or Ctrl-D; returns the exit code.

    `input`/`output` are prompt_toolkit Input/Output objects (tests pass
    `create_pipe_input()` and `DummyOutput()`); None means the terminal.
    `history_path=None` keeps history in memory only.  `color=None` decides from the
    terminal and NO_COLOR.
    """
    from prompt_toolkit import PromptSession, print_formatted_text
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.output import ColorDepth
    from prompt_toolkit.styles import Style

    if color is None:
        color = color_wanted(sys.stdout) if output is None else False
    history, note = _open_history(history_path)
    console = Console(kb, conversation=conversation, history_note=note, declined_log=declined_log)
    style = Style.from_dict(STYLE if color else {})
    depth = ColorDepth.DEFAULT if color else ColorDepth.MONOCHROME
    session: PromptSession[str] = PromptSession(
        history=history,
        auto_suggest=AutoSuggestFromHistory(),
        completer=make_completer(console.completions()),
        complete_while_typing=False,
        bottom_toolbar=console.toolbar,
        style=style,
        color_depth=depth,
        include_default_pygments_style=False,
        input=input,
        output=output,
    )

    def show(fragments: Fragments) -> None:
        print_formatted_text(
            FormattedText(fragments),
            style=style,
            color_depth=depth,
            output=session.output,
            include_default_pygments_style=False,
        )

    if "History is off: cannot" in note:
        show([("class:notice", note + "\n")])
    # The terminal stays in raw mode between prompts too (restored on the way out), so
    # Ctrl-D or Ctrl-C typed while an answer is printing reaches the next prompt as a key
    # instead of being eaten by the tty driver as end-of-file or turned into a signal.
    with session.input.raw_mode():
        return _loop(session, console, show, debug=debug)


def _loop(session: Any, console: Console, show: Callable[[Fragments], None], *, debug: bool) -> int:
    failures = 0
    while True:
        try:
            line = session.prompt(console.prompt)
        except KeyboardInterrupt:
            continue  # Ctrl-C: the line is dropped, the console goes on
        except EOFError:
            return 0  # Ctrl-D
        except Exception as exc:  # noqa: BLE001 - e.g. the history file became unwritable
            failures += 1
            show(failure(exc, debug=debug))
            if failures >= 3:
                return 1  # the prompt itself keeps failing: stop rather than spin
            continue
        failures = 0
        try:
            shown = console.handle(line, width=session.output.get_size().columns)
        except KeyboardInterrupt:
            continue
        except Exception as exc:  # noqa: BLE001 - the agent sees one line, never a traceback
            shown = failure(exc, debug=debug)
        if shown is None:
            return 0
        if shown:
            show(shown + [("", "\n")])


def run_from_cli(
    kb: KnowledgeBase,
    *,
    no_history: bool = False,
    debug: bool = False,
    log_declined: str | None = None,
    matcher: Matcher | None = None,
) -> int:
    """What `cptbot` (no arguments) and `cptbot chat [--no-history] [--debug] [--log-declined FILE]` run.

    On a terminal it opens the console; otherwise (stdin or stdout redirected) it reads
    one message per line from stdin and prints plain replies. `matcher`, if given, is
    one already built for `kb` (the CLI's cached one).
    """
    declined = DeclinedLog(log_declined) if log_declined else None
    conversation = Conversation(kb, matcher)
    stdin, stdout = sys.stdin, sys.stdout
    if not (stdin.isatty() and stdout.isatty()):
        return run_pipe(kb, stdin=stdin, stdout=stdout, debug=debug, declined_log=declined, conversation=conversation)
    history = history_file(no_history=no_history)
    return run_console(kb, history_path=history, debug=debug, declined_log=declined, conversation=conversation)
