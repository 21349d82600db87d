"""A cache of built matchers, so `cptbot ask` does not parse YAML and index it on every start.

Keyed, as make does, by the size and modification time of the FAQ file and of the code
that builds the index, and by the Python version; kept in $XDG_CACHE_HOME/cptbot
(default ~/.cache/cptbot). A missing, stale or damaged entry is rebuilt, a cache that
cannot be written is skipped, only the KEEP most recently written entries are kept, and
CPTBOT_NO_CACHE=1 turns it off.
"""

from __future__ import annotations

import gc
import os
import pickle
import sys
import zlib
from pathlib import Path

from .knowledge import DEFAULT_FAQ
from .matching import Matcher

KEEP = 8  # entries: each FAQ edit or upgrade writes a new one (about 3 MB for the built-in FAQ)
_CODE = (Path(__file__).with_name("knowledge.py"), Path(__file__).with_name("matching.py"))


def cache_dir() -> Path:
    """Where built matchers are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cptbot"


def load_matcher(path: str | Path | None = None) -> Matcher:
    """The matcher of a FAQ file (the built-in one by default), from the cache when it is fresh.

    Raises `KnowledgeBaseError` for a broken file, exactly as `load_faq` does.
    """
    from .knowledge import load_faq

    file = Path(path) if path is not None else DEFAULT_FAQ
    if os.environ.get("CPTBOT_NO_CACHE"):
        return Matcher(load_faq(path))
    try:
        stamps = [os.stat(f) for f in (file, *_CODE)]
    except OSError:
        return Matcher(load_faq(path))  # load_faq says what is wrong with the path
    # Like make: the file's and the code's sizes and modification times, and the Python.
    key = repr([str(file.resolve()), sys.version, [(s.st_mtime_ns, s.st_size) for s in stamps]])
    entry = cache_dir() / f"{zlib.crc32(key.encode()):08x}-{len(key)}.pickle"
    try:
        # Unpickling makes some hundred thousand objects, none of them garbage: collecting while
        # it runs only costs time (1.4 ms of `cptbot ask`'s 62, median of 9 starts).
        collecting = gc.isenabled()
        gc.disable()
        try:
            with entry.open("rb") as handle:
                stored_key, matcher = pickle.load(handle)  # noqa: S301 - written by us, in the user's own cache dir
        finally:
            if collecting:
                gc.enable()
        if stored_key == key and isinstance(matcher, Matcher):
            return matcher
    except Exception:  # noqa: BLE001 - a missing, stale or damaged entry is simply rebuilt
        pass
    matcher = Matcher(load_faq(path))
    _store(entry, matcher, key)
    return matcher


def _store(entry: Path, matcher: Matcher, key: str) -> None:
    import tempfile

    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile("wb", dir=entry.parent, delete=False, suffix=".tmp") as handle:
            try:
                pickle.dump((key, matcher), handle, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                os.unlink(handle.name)
                raise
        os.replace(handle.name, entry)
        entries = sorted(entry.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[KEEP:]:
            old.unlink()
    except Exception:  # noqa: BLE001 - a read-only home or an unpicklable FAQ only costs the build
        pass
