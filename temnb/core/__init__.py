"""What every stage uses: errors, checks of user numbers, doses per px and per Å², the metadata node,
arrays inside / signals at the edges, device choice, the environment report, atomic JSON records, plots.
Imports nothing from temnb outside ``core``; every other subpackage may import from here."""
from __future__ import annotations

import importlib


def lazy_submodules(package: str, names):
    """``__getattr__`` and ``__dir__`` for a subpackage whose modules load on first attribute access,
    so that ``temnb.nets.config`` works after ``import temnb`` without importing torch up front."""
    names = tuple(names)

    def __getattr__(name):
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(names) | {"__doc__", "__name__"})

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_submodules(__name__, (
    "checks", "device", "dose", "environment", "errors", "metadata", "plotting", "record", "signals"))
