"""What the notebook series runs on: presets, the numbers a notebook records, the papermill runner and
the ``temnb`` command line, and the widgets (thin shells over pure functions).
May import from every other stage; nothing imports from here."""
from ..core import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, (
    "presets", "parameters", "data", "results", "run", "regression", "cli", "widgets",
    "explorer_views", "explorers",
))
