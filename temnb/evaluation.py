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
- :func:`spot_to_background`: how far Bragg spots stand above the noise in a power spectrum;
- :func:`plot_upsnr_vs_psnr`: the scatter with the identity line.
"""
from __future__ import annotations

import numpy as np

from ._signals import require_movie, source_label, unwrap
from .errors import DataShapeError, ParameterError
from .no_reference import line_profile, michelson_contrast, umse

__all__ = ["compare_unsupervised", "format_unsupervised_table", "signal_change_bias", "kendall_tau",
           "same_ranking", "spot_to_background", "contrast_along_line", "plot_upsnr_vs_psnr"]

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


def signal_change_bias(denoised, clean, *, gap: int = 1, per_frame: bool = False, as_db: bool = False):
    """The uMSE bias caused by the clean movie changing over 2 * *gap* frames.

    Temporal uMSE uses frames t-gap and t+gap, in turn, as the reference for frame t
    and their difference as the noise estimate, assuming the clean movie is the same
    in all three.  With the truth *clean* the expected bias is exactly
    ``(mean((x[t+g] - f[t])^2) + mean((x[t-g] - f[t])^2)) / 2 - mean((x[t] - f[t])^2)
    - mean((x[t-g] - x[t+g])^2) / 2`` (noise terms cancel when the denoiser saw neither
    reference).  0 for a static specimen.  A steady drift makes it NEGATIVE (the noise
    estimate spans 2 * gap frames of change, the error term only gap: uPSNR flatters
    the denoiser); a sudden change D between t-gap and t+gap leaves only D (x[t] - f[t]),
    small when the denoised frame follows frame t (with one reference it would add
    D^2 / 2 more).  Data units squared, averaged over frames (``per_frame=True``: one
    value per frame ``gap .. T-gap-1``).  ``as_db=True`` gives instead the error it
    causes in uPSNR, ``-10 log10(1 + bias / MSE)`` dB.
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
    axes = (1, 2)
    mse = np.mean((x[t] - f[t]) ** 2, axis=axes)
    bias = (0.5 * (np.mean((x[t + gap] - f[t]) ** 2, axis=axes) + np.mean((x[t - gap] - f[t]) ** 2, axis=axes))
            - mse - 0.5 * np.mean((x[t - gap] - x[t + gap]) ** 2, axis=axes))
    if not per_frame:
        bias, mse = bias.mean(), mse.mean()
    if as_db:
        return -10 * np.log10(1 + bias / mse)
    return bias if per_frame else float(bias)


def spot_to_background(ps, spots_px, *, radius: int = 1) -> np.ndarray:
    """Power at each Bragg spot over the azimuthal mean power at the same |k|.

    *ps*: a centred power spectrum array from
    :func:`temnb.no_reference.power_spectrum` with ``log=False``; *spots_px*: (n, 2)
    spot positions (ky, kx) in FFT pixels from the centre.  The spot's power is the
    maximum within *radius* pixels (spots fall between FFT pixels).  1 means the spot
    is lost in the noise.  A linear filter (Gaussian, low-pass) multiplies spot and
    background at one |k| alike, so it cannot raise this ratio; only a denoiser that
    adapts to the image can.
    """
    arr, _ = unwrap(ps)
    if arr.ndim != 2:
        raise DataShapeError(f"needs one power spectrum (2-D), got shape {arr.shape}")
    spots = np.atleast_2d(np.asarray(spots_px, dtype=float))
    if spots.shape[1] != 2:
        raise ParameterError("spots_px must be (ky, kx) pairs in FFT pixels from the centre")
    h, w = arr.shape
    y, x = np.indices(arr.shape)
    k = np.hypot(y - h // 2, x - w // 2)
    ring_index = np.floor(k).astype(int).ravel()
    ring_mean = np.bincount(ring_index, weights=arr.ravel()) / np.maximum(np.bincount(ring_index), 1)
    out = []
    for ky, kx in spots:
        r, c = int(round(ky)) + h // 2, int(round(kx)) + w // 2
        if not (0 <= r < h and 0 <= c < w):
            raise ParameterError(f"spot ({ky:g}, {kx:g}) lies outside the {h} x {w} spectrum")
        patch = arr[max(r - radius, 0):r + radius + 1, max(c - radius, 0):c + radius + 1]
        out.append(patch.max() / ring_mean[int(np.floor(np.hypot(ky, kx)))])
    return np.array(out)


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
    :func:`temnb.no_reference.line_profile`).  For a movie the contrast is that of
    each frame's profile, averaged over frames (a drifting specimen would blur a
    time-averaged profile), and the profile returned is the frame mean.  The
    contrast of a noisy profile is inflated by the noise itself (its max and min
    are noise extremes): compare with the truth, or average over a wide *width*.
    Small negative undershoots of a denoiser are set to 0 first (an intensity cannot
    be negative, and Michelson contrast needs values >= 0).
    """
    out = {}
    for name, image in images.items():
        arr, _ = unwrap(line_profile(image, start, end, width=width))
        frames = np.clip(arr.reshape((-1, arr.shape[-1])), 0, None)
        out[name] = (frames.mean(axis=0), float(np.mean([michelson_contrast(p) for p in frames])))
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
