"""A plain (non-editable) install into a fresh virtualenv answers from any directory.

Slow (builds a wheel, makes a venv); it runs in CI. The wheel is installed with --no-deps
and must carry the FAQ inside the package; its dependencies are borrowed from the test's
own environment through a .pth file (a path, not a site dir, so an editable cptbot there
is not seen), so nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import prompt_toolkit
import pytest
import rapidfuzz
import yaml

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, ROOT, cwd=out)
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("cptbot-*.whl")
    return path


def test_wheel_carries_the_faq_inside_the_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "cptbot/faq/cpt_license.yaml" in names
    assert "cptbot/cli.py" in names and "cptbot/__main__.py" in names
    assert not any(name.startswith(("tests/", "faq/")) for name in names)


def test_installed_wheel_answers_from_another_directory(wheel, tmp_path):
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    purelib = run(bindir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    deps = {str(Path(m.__file__).resolve().parent.parent) for m in (rapidfuzz, yaml, prompt_toolkit)}
    (Path(purelib.stdout.strip()) / "cptbot_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    installed = run(bindir / "python", "-m", "pip", "install", "--no-deps", "--quiet", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run(bindir / "python", "-c", "import cptbot; print(cptbot.DEFAULT_FAQ)", cwd=elsewhere)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr

    result = run(bindir / "cptbot", "ask", "who sells the cpt license", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "Optum360" in result.stdout and "Source: FAQ 4" in result.stdout

    as_module = run(bindir / "python", "-m", "cptbot", "ask", "--json", "hi", cwd=elsewhere)
    assert as_module.returncode == 0 and '"label": "greeting"' in as_module.stdout
