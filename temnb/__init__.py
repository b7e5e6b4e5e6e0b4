"""temnb: denoising time-resolved, atomic-resolution in situ TEM movies, taught in notebooks.

The subpackages read as the pipeline: ``core`` (what every stage uses) -> ``io`` (load, calibrate,
count) -> ``simulation`` (abTEM + ASE truth) -> ``classic`` (Poisson statistics, filters, drift)
-> ``nets`` (networks, training, inference) -> ``judge`` (scores with and without truth) ->
``explain`` (effective filters, likelihood maps) -> ``notebook`` (presets, runner, widgets).  The names below are the everyday API.

The heavy libraries (hyperspy, abTEM, torch) are imported only when a function
that needs them is used, so ``import temnb`` is quick.
"""
from __future__ import annotations

import importlib

from .core.environment import TEMNB_VERSION as __version__  # noqa: F401  (re-exported)
from .core.errors import (  # noqa: F401  (re-exported)
    CalibrationWarning,
    CorruptFileError,
    CountsWarning,
    DataFileError,
    DataShapeError,
    DataValueError,
    MissingFileError,
    NotCountsError,
    ParameterError,
    TemnbError,
    TemnbWarning,
    TooFewFramesError,
    UnsupportedFormatError,
)

# name -> (module, attribute); resolved on first access (PEP 562).
_LAZY = {
    "load": ("temnb.io.files", "load"),
    "save": ("temnb.io.files", "save"),
    "from_array": ("temnb.io.files", "from_array"),
    "info": ("temnb.io.survey", "info"),
    "to_counts": ("temnb.io.counts", "to_counts"),
    "estimate_gain_offset": ("temnb.io.counts", "estimate_gain_offset"),
    "estimate_dose": ("temnb.io.counts", "estimate_dose"),
    "require_counts": ("temnb.io.counts", "require_counts"),
    "sample_path": ("temnb.io.bundled", "sample_path"),
    "load_sample": ("temnb.io.bundled", "load_sample"),
    "choose_device": ("temnb.core.device", "choose_device"),
    "device_report": ("temnb.core.device", "device_report"),
    "environment_report": ("temnb.core.environment", "environment_report"),
    "denoise": ("temnb.nets.inference", "denoise"),
    "load_model": ("temnb.nets.checkpoint", "load_model"),
    "save_model": ("temnb.nets.checkpoint", "save_model"),
    "NotebookRun": ("temnb.notebook.results", "NotebookRun"),
    "choose_preset": ("temnb.notebook.presets", "choose_preset"),
}

# The stages of the pipeline, lowest first; each imports only from those before it
# (tests/test_layout.py checks it).
STAGES = ("core", "io", "simulation", "classic", "nets", "judge", "explain", "notebook")
_SUBMODULES = set(STAGES)

__all__ = sorted(set(_LAZY) | {"__version__"})


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"temnb.{name}")
    raise AttributeError(f"module 'temnb' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
