"""Checks of the numbers a user passes (doses, sizes, counts of steps), with messages that name them."""
from __future__ import annotations

import math

import numpy as np

from .errors import ParameterError


def positive(value, name, *, hint=None, source=None):
    """*value* as a float, or a ParameterError naming *name* (doses, pixel sizes, frame times)."""
    try:
        if isinstance(value, bool):  # float(True) would pass as 1.0
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} is not a number", hint=hint, source=source) from None
    if not math.isfinite(number) or number <= 0:
        raise ParameterError(f"{name}={value!r} must be a positive, finite number", hint=hint, source=source)
    return number


def positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return int(value)
