"""The Python example in docs/api.md runs as written and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_docs_have_one_python_example():
    assert len(python_blocks()) == 1


def test_the_python_example_runs_and_prints_what_its_comments_promise():
    (code,) = python_blocks()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})  # noqa: S102 - our own document
    printed = out.getvalue().splitlines()
    promised = [c.strip() for c in re.findall(r"print\(.*\)[ \t]+# (.+)", code)]
    assert len(promised) == 5
    for promise in promised:
        expected = promise.split(":")[0].strip()
        assert any(line.startswith(expected) for line in printed), (expected, printed)
