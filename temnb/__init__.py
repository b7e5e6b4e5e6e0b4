"""temnb: denoising time-resolved, atomic-resolution in situ TEM movies, taught in notebooks.

The heavy libraries (hyperspy, abTEM, torch) are imported only when a function
that needs them is used, so ``import temnb`` is quick.
"""
from __future__ import annotations

import importlib

from .errors import (  # noqa: F401  (re-exported)
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

__version__ = "0.1.0"

# name -> (module, attribute); resolved on first access (PEP 562).
_LAZY = {
    "load": ("temnb.io", "load"),
    "save": ("temnb.io", "save"),
    "info": ("temnb.metadata", "info"),
    "to_counts": ("temnb.counts", "to_counts"),
    "estimate_gain_offset": ("temnb.counts", "estimate_gain_offset"),
    "estimate_dose": ("temnb.counts", "estimate_dose"),
    "require_counts": ("temnb.counts", "require_counts"),
    "NotebookRun": ("temnb.record", "NotebookRun"),
    "choose_preset": ("temnb.record", "choose_preset"),
    "choose_device": ("temnb.device", "choose_device"),
    "device_report": ("temnb.device", "device_report"),
    "environment_report": ("temnb.environment", "environment_report"),
    "sample_path": ("temnb.datasets", "sample_path"),
    "load_sample": ("temnb.datasets", "load_sample"),
    "denoise": ("temnb.inference", "denoise"),
    "load_model": ("temnb.checkpoint", "load_model"),
    "save_model": ("temnb.checkpoint", "save_model"),
}

_SUBMODULES = {
    "io", "metadata", "counts", "noise", "simulate", "datasets", "dummy_data", "record",
    "device", "environment", "widgets", "plotting", "cli", "run", "errors", "survey", "calibration",
    "structures", "training_data", "filters", "fourier_filters", "metrics",
    "models", "checkpoint", "inference", "train", "supervised", "columns", "column_scores", "video_models",
    "blind_kernels",
    "self_supervised", "align", "no_reference", "evaluation", "video_experiments", "patches",
}

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
