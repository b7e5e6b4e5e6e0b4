"""Movies with a known truth: ASE structures (Pt on CeO2), abTEM multislice HRTEM images and simulated
movies with events and drift, training data sets, and small synthetic lattices for tests.
Imports only from ``temnb.core`` and ``temnb.io``."""
from ..core import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, (
    "structures", "hrtem", "training_data", "paper_regime", "synthetic",
))
