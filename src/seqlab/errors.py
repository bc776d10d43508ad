"""Errors a user can act on.

The CLI turns every ``SeqlabError`` into one line on stderr and a non-zero exit code
(no traceback unless ``--debug``). Messages name the file, line or key at fault and say
what to do about it.
"""

from __future__ import annotations


class SeqlabError(Exception):
    """Base class: a problem with the user's input, not a bug in seqlab."""

    exit_code = 2


class ConfigError(SeqlabError):
    """Unknown or ill-typed configuration key, or an invalid value."""


class DataError(SeqlabError):
    """Missing, unreadable, malformed or empty data file."""


class RunDirError(SeqlabError):
    """A run directory that is missing, incomplete, or already holds a run."""


class TrainingError(SeqlabError):
    """Training cannot go on (for example the loss became NaN or infinite)."""

    exit_code = 3


def where(path: object, line: int | None = None) -> str:
    """Format a location as ``path:line`` (or just ``path``) for error messages."""
    return f"{path}:{line}" if line is not None else str(path)
