"""The exceptions cptbot raises; every one derives from `CptbotError`.

- `KnowledgeBaseError`: a FAQ file that cannot be used (names file, line and field).
- `InputError`: a value from the user outside what is allowed (names value and range).
- `StateError`: a saved conversation state that is corrupt or was tampered with.
"""

from __future__ import annotations


class CptbotError(Exception):
    """Base class of every error cptbot raises on purpose."""


class KnowledgeBaseError(CptbotError):
    """A FAQ file is missing, malformed or inconsistent."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.detail = message
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")


class InputError(CptbotError):
    """A value given by the user is outside what cptbot accepts."""


class StateError(CptbotError):
    """A conversation state could not be loaded: corrupt, tampered or from another FAQ."""
