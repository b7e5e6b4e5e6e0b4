"""Scoring a denoiser: PSNR/SSIM with the truth (convention stated), uMSE/uPSNR without it, contrast
along lines, power spectra, atomic-column detection and recovery scores.
Imports only from lower stages (``core``, ``io``, ``simulation``, ``classic``, ``nets``)."""
from ..core import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, (
    "metrics", "no_reference", "contrast", "spectra", "columns", "column_scores",
))
