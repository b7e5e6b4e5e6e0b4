"""Seeing what a denoiser did: a network's effective filter at a pixel (``jacobian``) and whether the
noisy counts support a column of a denoised frame (Poisson log-likelihood ratios, ``likelihood``).
Imports only from lower stages (``core``, ``io``, ``simulation``, ``classic``, ``nets``, ``judge``)."""
from ..core import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, (
    "jacobian", "likelihood",
))
