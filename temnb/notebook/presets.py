"""The three presets of every notebook -- smoke (seconds, what the tests run), workshop (minutes on a
laptop or Binder), full (everything) -- and the environment variable that forces one for a whole run."""
from __future__ import annotations

import copy
import os

from ..core.errors import ParameterError

PRESETS = ("smoke", "workshop", "full")


# Set this environment variable to run every notebook with one preset whatever its PRESET says (the
# test suite sets it to 'smoke' for nbval, so that CI stays within its time budget).
PRESET_ENV = "TEMNB_PRESET"


def forced_preset() -> str | None:
    """The preset forced by the ``TEMNB_PRESET`` environment variable, or None when it is unset or empty."""
    value = os.environ.get(PRESET_ENV, "").strip()
    if not value:
        return None
    if value not in PRESETS:
        raise ParameterError(f"{PRESET_ENV}={value!r} is not a preset",
                             hint=f"use one of {', '.join(PRESETS)}, or unset it")
    return value


def choose_preset(preset: str, **table) -> dict:
    """Return (a copy of) ``table[preset]``.

    ``choose_preset(PRESET, smoke=dict(n_frames=8), workshop=dict(n_frames=40),
    full=dict(n_frames=None))``.  The match is exact: ``'Smoke'`` is refused
    with a did-you-mean, because a preset that silently means something else
    than written would make runs incomparable.
    """
    unknown = [name for name in table if name not in PRESETS]
    if unknown:
        raise ParameterError(
            f"choose_preset() got table entries {unknown} that are not presets; "
            f"presets are {', '.join(map(repr, PRESETS))}"
        )
    if not table:
        raise ParameterError("choose_preset() needs at least one preset, e.g. smoke=dict(...)")
    valid = ", ".join(map(repr, table))
    if not isinstance(preset, str) or preset not in table:
        hint = f"set PRESET to one of {valid}"
        if isinstance(preset, str) and preset.strip().lower() in table:
            hint = f"did you mean {preset.strip().lower()!r}? Preset names are lower case"
        raise ParameterError(f"unknown preset {preset!r}; this notebook knows {valid}", hint=hint)
    forced = forced_preset()
    if forced is not None and forced != preset:
        if forced not in table:
            raise ParameterError(f"{PRESET_ENV}={forced!r} forces a preset this notebook does not have ({valid})")
        print(f"PRESET {preset!r} overridden by the environment: {PRESET_ENV}={forced!r}")
        preset = forced
    return copy.deepcopy(table[preset])
