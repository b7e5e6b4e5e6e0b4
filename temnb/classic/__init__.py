"""Denoising without learning: Poisson statistics (sampling, √N averaging, Anscombe), classic filters,
Fourier filters in Å⁻¹, and drift correction (registration on a pre-denoised copy, whole-pixel shifts).
Imports only from ``temnb.core``, ``temnb.io`` and ``temnb.simulation``."""
from ..core import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, (
    "poisson", "filters", "fourier", "align",
))
