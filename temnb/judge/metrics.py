"""Image-quality metrics against a known clean image: PSNR, SSIM and comparison tables.

Both need ground truth, so they are for simulated data (temnb.simulation.synthetic,
temnb.simulation.hrtem).  PSNR takes its peak from the CLEAN image's range
(max - min), as in Mohan et al. (2022) and as skimage's ``data_range``: the
noisy estimate's own extremes are mostly noise and would flatter it.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from ..core.errors import DataShapeError, DataValueError, ParameterError
from ..core.signals import require_image_data, source_label, unwrap

__all__ = ["psnr", "psnr_per_frame", "ssim", "compare", "format_table", "PUBLISHED_045"]

#: Published results at 0.45 e-/px on simulated Pt/CeO2 frames: Mohan, Manzorro, Vincent,
#: Tang, Sheth, Simoncelli, Matteson, Crozier & Fernandez-Granda, "Deep denoising for
#: scientific discovery: a case study in electron microscopy", IEEE Transactions on
#: Computational Imaging 8 (2022).  PSNR in dB; SSIM None where the comparison did not give it.
PUBLISHED_045 = {
    "raw": {"psnr": 3.6, "ssim": None},
    "adaptive_wiener": {"psnr": 21.6, "ssim": None},
    "lowpass": {"psnr": 22.4, "ssim": None},
    "anscombe_nlm": {"psnr": 26.6, "ssim": None},
    "anscombe_bm3d": {"psnr": 22.6, "ssim": 0.80},
    # The supervised U-Net trained on simulations (the paper's text: about 43 dB, some 12 dB
    # above the next network).
    "unet": {"psnr": 43.0, "ssim": None},
}


def _pair(estimate, clean):
    """Both as float64 arrays of one shape (a 2-D frame or a movie)."""
    a, _ = unwrap(estimate)
    b, _ = unwrap(clean)
    source = source_label(estimate)
    require_image_data(b, source=source_label(clean), what="an image-quality metric")
    if a.shape != b.shape:
        raise DataShapeError(f"estimate of shape {a.shape} and clean image of shape {b.shape} do not match",
                             source=source, hint="compare a frame with a frame and a movie with a movie")
    return a.astype(np.float64), b.astype(np.float64)


def _range(clean, source=None):
    peak = float(clean.max() - clean.min())
    if not peak > 0:
        raise DataValueError("the clean image is flat (max = min), so PSNR has no peak", source=source,
                             hint="pass peak= explicitly")
    return peak


def _psnr(a, b, peak):
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak ** 2 / mse))


def psnr(estimate, clean, *, peak=None) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(peak^2 / MSE)``.

    *peak* defaults to the clean image's range (max - min).  For a movie the MSE and
    the range are over the whole array; see :func:`psnr_per_frame`.
    """
    a, b = _pair(estimate, clean)
    if peak is not None and not (np.isfinite(peak) and peak > 0):
        raise ParameterError(f"peak={peak!r}: it must be a positive number")
    return _psnr(a, b, _range(b, source_label(clean)) if peak is None else float(peak))


def psnr_per_frame(estimate, clean, *, peak=None) -> np.ndarray:
    """PSNR of each frame of a movie (peak from each clean frame unless given)."""
    a, b = _pair(estimate, clean)
    if a.ndim == 2:
        a, b = a[None], b[None]
    return np.array([psnr(x, y, peak=peak) for x, y in zip(a, b)])


def ssim(estimate, clean) -> float:
    """Structural similarity (skimage) with ``data_range`` from the clean image; a movie's is the frame mean."""
    a, b = _pair(estimate, clean)
    if a.ndim == 2:
        a, b = a[None], b[None]
    values = [structural_similarity(x, y, data_range=_range(y, source_label(clean))) for x, y in zip(a, b)]
    return float(np.mean(values))


def compare(estimates: dict, clean, *, timings: dict | None = None) -> list[dict]:
    """One row per estimate: ``{'name', 'psnr', 'ssim', 'seconds'}`` against *clean*.

    *timings* maps names to seconds (None when absent), so a table can show the cost.
    """
    if not isinstance(estimates, dict) or not estimates:
        raise ParameterError("estimates must be a non-empty dict name -> array or signal")
    timings = timings or {}
    return [{"name": str(name), "psnr": psnr(est, clean), "ssim": ssim(est, clean),
             "seconds": timings.get(name)} for name, est in estimates.items()]


def _cell(value, fmt):
    width = int(fmt.split(".")[0])
    return "-".rjust(width) if value is None else format(value, fmt)


def format_table(rows: list[dict], reference: dict | None = None) -> str:
    """A plain-text table of :func:`compare` rows, beside *reference* numbers (e.g. PUBLISHED_045).

    Returns the text; ``print(format_table(rows, PUBLISHED_045))`` in a notebook.
    """
    header = f"{'method':<18}{'PSNR dB':>9}{'SSIM':>7}{'seconds':>9}"
    if reference is not None:
        header += f"  |{'published PSNR':>15}{'SSIM':>7}"
    lines = [header, "-" * len(header)]
    for row in rows:
        line = (f"{row['name']:<18}{_cell(row.get('psnr'), '9.2f')}{_cell(row.get('ssim'), '7.3f')}"
                f"{_cell(row.get('seconds'), '9.2f')}")
        if reference is not None:
            ref = reference.get(row["name"], {})
            line += f"  |{_cell(ref.get('psnr'), '15.1f')}{_cell(ref.get('ssim'), '7.2f')}"
        lines.append(line)
    return "\n".join(lines)
