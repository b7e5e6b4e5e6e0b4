"""Exceptions and warnings that speak a microscopist's language.

Every error raised on bad input is a :class:`TemnbError` whose message names the
file (when there is one) and the problem, and says what to do about it.  The
subclasses also derive from the matching built-in exception so that generic
``except FileNotFoundError`` / ``except ValueError`` code keeps working.
"""
from __future__ import annotations

from pathlib import Path

__all__ = [
    "TemnbError",
    "DataFileError",
    "MissingFileError",
    "UnsupportedFormatError",
    "CorruptFileError",
    "DataShapeError",
    "TooFewFramesError",
    "DataValueError",
    "NotCountsError",
    "ParameterError",
    "TemnbWarning",
    "CalibrationWarning",
    "CountsWarning",
    "describe_source",
]


def describe_source(source) -> str:
    """A short human label for where data came from: a file path or 'the array'."""
    if source is None:
        return "the input data"
    if isinstance(source, (str, Path)):
        return f"'{source}'"
    if isinstance(source, (list, tuple)) and source:
        first = source[0]
        more = f" (and {len(source) - 1} more files)" if len(source) > 1 else ""
        return f"'{first}'{more}"
    return str(source)


class TemnbError(Exception):
    """Base class of every error temnb raises on purpose."""

    def __init__(self, message: str, *, source=None, hint: str | None = None):
        self.source = source
        self.problem = message
        self.hint = hint
        text = message
        if source is not None:
            text = f"{describe_source(source)}: {message}"
        if hint:
            text = f"{text}\n  What to do: {hint}"
        super().__init__(text)


class DataFileError(TemnbError, OSError):
    """A file could not be read as microscope data."""


class MissingFileError(DataFileError, FileNotFoundError):
    """The path does not exist (or a glob matched nothing)."""


class UnsupportedFormatError(DataFileError):
    """The file's extension is not a format temnb can read."""


class CorruptFileError(DataFileError):
    """The file exists but is truncated, corrupt or not what its extension says."""


class DataShapeError(TemnbError, ValueError):
    """The data has the wrong dimensionality for the requested operation."""


class TooFewFramesError(DataShapeError):
    """A movie is shorter than a method needs."""


class DataValueError(TemnbError, ValueError):
    """The data contain values that make the result meaningless (NaN, negative counts...)."""


class NotCountsError(DataValueError):
    """A Poisson-based tool was given data that are not electron counts."""


class ParameterError(TemnbError, ValueError):
    """A parameter (preset, cut-off, region...) is out of range or of the wrong kind."""


class TemnbWarning(UserWarning):
    """Base class of temnb's warnings."""


class CalibrationWarning(TemnbWarning):
    """Calibration is missing or ambiguous; the value was kept, not guessed."""


class CountsWarning(TemnbWarning):
    """Data may not be electron counts; Poisson statistics may not apply."""
