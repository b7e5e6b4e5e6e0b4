"""Checking the no-reference metrics against the truth: uPSNR beside PSNR, ranking, biases.

:mod:`temnb.no_reference` estimates a denoiser's error without a clean image
(uMSE / uPSNR).  On simulated movies the clean image IS known, so the estimate can
be checked; this module does that bookkeeping for notebook 09:

- :func:`compare_unsupervised`: for several denoised movies, the uPSNR (with its
  standard error) and, when the truth is given, the true PSNR on the SAME frames;
- :func:`signal_change_bias`: the part of the uMSE bias that comes from the clean
  movie changing between the reference frames (drift, moving atoms), computed
  without noise from the truth;
- :func:`same_ranking` / :func:`kendall_tau`: do two scores order methods alike;
- :func:`contrast_along_line`: Michelson contrast of line profiles of several images;
- :func:`plot_upsnr_vs_psnr`: the scatter with the identity line.
"""
from __future__ import annotations

import numpy as np

from ._signals import require_movie, source_label, unwrap
from .errors import DataShapeError, ParameterError
from .no_reference import line_profile, michelson_contrast, umse

__all__ = ["compare_unsupervised", "format_unsupervised_table", "signal_change_bias", "kendall_tau",
           "same_ranking", "contrast_along_line", "plot_upsnr_vs_psnr"]

_DB = 10.0 / np.log(10.0)   # d(10 log10 x) / d(ln x)


def _gap_of(gap, name):
    value = gap.get(name, 1) if isinstance(gap, dict) else gap
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"gap for {name!r} is {value!r}: use a whole number of frames >= 1")
    return int(value)


def compare_unsupervised(estimates: dict, noisy, clean=None, *, gap=1, peak=None) -> list[dict]:
    """One row per denoised movie: uMSE, uPSNR and, with *clean*, the true MSE and PSNR.

    *estimates* maps names to denoised movies of the shape of *noisy* (T, H, W).
    *gap* is the temporal-reference distance, one number or a dict name -> gap
    (missing names get 1); a denoiser that reads frames t-k..t+k needs k + 1.
    *peak* (same units as the data) is used for every score, so methods compare
    fairly; default: the range of *clean* when given, else of the mean noisy frame.
    Row keys: ``name, gap, n_frames, umse, umse_se, upsnr, upsnr_se`` (dB; from the
    spread of the per-frame uMSE), and with *clean* ``mse, psnr, error_db`` where
    the true values use only the frames the uMSE used and ``error_db = upsnr - psnr``.
    uPSNR is inf when the uMSE is <= 0 (the error is below what the noise resolves).
    """
    if not isinstance(estimates, dict) or not estimates:
        raise ParameterError("estimates must be a non-empty dict name -> denoised movie")
    y, _ = unwrap(noisy)
    require_movie(y, min_frames=3, source=source_label(noisy), what="uPSNR against the truth")
    x = None
    if clean is not None:
        x, _ = unwrap(clean)
        if x.shape != y.shape:
            raise DataShapeError(f"the clean movie has shape {x.shape}, the noisy one {y.shape}")
        x = x.astype(np.float64)
    if peak is None:
        ref = x if x is not None else y.astype(np.float64).mean(axis=0)
        peak = float(ref.max() - ref.min())
    if not (np.isfinite(peak) and peak > 0):
        raise ParameterError(f"peak={peak!r}: it must be a positive number")
    rows = []
    for name, est in estimates.items():
        g = _gap_of(gap, name)
        result = umse(est, noisy, gap=g)
        n = len(result.per_frame)
        se = float(result.per_frame.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        value = result.value
        up = float(10 * np.log10(peak ** 2 / value)) if value > 0 else float("inf")
        row = {"name": str(name), "gap": g, "n_frames": n, "umse": value, "umse_se": se, "upsnr": up,
               "upsnr_se": _DB * se / value if value > 0 else float("inf")}
        if x is not None:
            f, _ = unwrap(est)
            mse = float(np.mean((f[result.frames].astype(np.float64) - x[result.frames]) ** 2))
            row["mse"] = mse
            row["psnr"] = float(10 * np.log10(peak ** 2 / mse)) if mse > 0 else float("inf")
            row["error_db"] = row["upsnr"] - row["psnr"]
        rows.append(row)
    return rows


def format_unsupervised_table(rows: list[dict]) -> str:
    """Plain-text table of :func:`compare_unsupervised` rows (print it)."""
    truth = "psnr" in rows[0]
    header = f"{'method':<18}{'gap':>4}{'frames':>7}{'uPSNR dB':>10}{'± se':>7}"
    if truth:
        header += f"{'PSNR dB':>9}{'uPSNR-PSNR':>12}"
    lines = [header, "-" * len(header)]
    for r in rows:
        line = f"{r['name']:<18}{r['gap']:>4}{r['n_frames']:>7}{r['upsnr']:>10.2f}{r['upsnr_se']:>7.2f}"
        if truth:
            line += f"{r['psnr']:>9.2f}{r['error_db']:>+12.2f}"
        lines.append(line)
    return "\n".join(lines)


def signal_change_bias(denoised, clean, *, gap: int = 1) -> float:
    """The uMSE bias caused by the clean movie changing over 2 * *gap* frames.

    Temporal uMSE uses frame t+gap as the reference for frame t and the difference
    between frames t-gap and t+gap as the noise estimate, assuming the clean movie
    is the same in all three.  With the truth *clean* the expected bias is exactly
    ``mean((x[t+g] - f[t])^2) - mean((x[t] - f[t])^2) - mean((x[t-g] - x[t+g])^2) / 2``
    averaged over frames (noise terms cancel when the denoiser did not see frame
    t+gap).  0 for a static specimen; drift and moving atoms make it nonzero
    (mostly positive: uPSNR then under-rates the denoiser).  Data units squared.
    """
    f, _ = unwrap(denoised)
    x, _ = unwrap(clean)
    if f.shape != x.shape:
        raise DataShapeError(f"the denoised movie has shape {f.shape}, the clean one {x.shape}")
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 1:
        raise ParameterError(f"gap={gap!r}: use a whole number of frames >= 1")
    require_movie(x, min_frames=2 * gap + 1, source=source_label(clean), what=f"a bias with gap={gap}")
    f, x = f.astype(np.float64), x.astype(np.float64)
    t = np.arange(gap, x.shape[0] - gap)
    return float(np.mean((x[t + gap] - f[t]) ** 2) - np.mean((x[t] - f[t]) ** 2)
                 - 0.5 * np.mean((x[t - gap] - x[t + gap]) ** 2))


def kendall_tau(a, b) -> float:
    """Kendall's rank correlation of two score lists (1: same order, -1: reversed)."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ParameterError("give two lists of the same length, at least 2 scores each")
    return float(kendalltau(a, b).statistic)


def same_ranking(a, b) -> bool:
    """True when the two score lists order the methods identically (ties broken alike)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ParameterError("give two lists of the same length")
    return bool(np.array_equal(np.argsort(-a, kind="stable"), np.argsort(-b, kind="stable")))


def contrast_along_line(images: dict, start, end, *, width: int = 1) -> dict:
    """``{name: (profile, Michelson contrast)}`` along the line *start* -> *end* of each image.

    Points are (row, column) pixels for arrays, axis units for signals (see
    :func:`temnb.no_reference.line_profile`).  A movie gives the profile averaged
    over its frames.  Contrast of a noisy profile is inflated by the noise itself
    (the max and min are noise extremes): compare with a wide *width* or the truth.
    """
    out = {}
    for name, image in images.items():
        profile = line_profile(image, start, end, width=width)
        arr, _ = unwrap(profile)
        if arr.ndim == 2:
            arr = arr.mean(axis=0)
        out[name] = (arr, michelson_contrast(arr))
    return out


def plot_upsnr_vs_psnr(rows: list[dict], ax=None, *, title=None):
    """Scatter of uPSNR (with ± 2 standard errors) against true PSNR, and the identity line."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    finite = [r for r in rows if np.isfinite(r["upsnr"]) and np.isfinite(r["psnr"])]
    for r in finite:
        ax.errorbar(r["psnr"], r["upsnr"], yerr=2 * r["upsnr_se"], fmt="o", capsize=3, label=r["name"])
    if finite:
        lo = min(min(r["psnr"], r["upsnr"]) for r in finite) - 1
        hi = max(max(r["psnr"], r["upsnr"]) for r in finite) + 1
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="uPSNR = PSNR")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xlabel("true PSNR (dB)")
    ax.set_ylabel("uPSNR, no ground truth (dB)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
