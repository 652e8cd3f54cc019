"""Errors that reach the user as one line, never as a traceback."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class PathboardError(Exception):
    """An expected failure: bad input, missing weights or data. The CLI prints it as one line."""


class UnknownIdError(PathboardError):
    pass


class WeightsNotFoundError(PathboardError):
    pass


class DatasetNotFoundError(PathboardError):
    pass


def first_line(exc: BaseException) -> str:
    """An error's message as one line (its first), or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unknown_id(kind: str, name: str, known: Iterable[str]) -> UnknownIdError:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known) or 'none'}"
    return UnknownIdError(f"unknown {kind} {name!r}; {hint}")
