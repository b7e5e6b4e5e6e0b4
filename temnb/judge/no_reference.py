"""Judging a denoised movie without ground truth: uMSE / uPSNR, and checking them where the truth is known.

Real 0.45 e-/px data have no clean image to compare with, so PSNR (temnb.judge.metrics)
cannot be computed.  The unsupervised MSE of Marcos-Morales, Leibovich, Mohan,
Vincent, Haluai, Tan, Crozier & Fernandez-Granda, "Evaluating unsupervised denoising
requires unsupervised metrics", ICML 2023 (arXiv:2210.05553) replaces the clean image
by noisy references.  With a denoised estimate f of a clean image x and three noisy
images a, b, c of the SAME clean x whose noise is independent of f (a) and of each
other (b, c), zero-mean and of equal variance s^2::

    uMSE = mean((a - f)^2) - mean((b - c)^2) / 2

is unbiased: E[(a - f)^2] = MSE + s^2 and E[(b - c)^2] / 2 = s^2.  It needs no noise
model (Poisson, Gaussian, or a mix), only independence and equal variance.  A single
uMSE is noisy and can be negative when the error is small beside the noise; average
over many frames.  The assumptions, and where real data break them:

- *temporal* references are neighbouring frames, so the specimen must not change
  between them: correct drift first (temnb.classic.align).  A steady drift makes uMSE too
  LOW (uPSNR too high, more so for larger gaps); using both neighbours in turn (see
  :func:`umse`) keeps a single event's bias small;
- *spatial* references are the other pixels of 2 x 2 blocks, so the image must be
  smooth on the scale of one pixel (oversampled);
- the denoiser must not have seen the reference noise (see :func:`umse`).  temnb's filters and
  ``temnb.denoise`` record how many frames on each side they read (``temporal_reach`` in the
  signal's temnb metadata); a gap within that reach is flagged (:func:`references_seen`, a
  TemnbWarning, and ``seen`` in :func:`compare_unsupervised`'s rows), because uPSNR then scores
  the filter's own input and comes out optimistic.

On simulated movies the clean image IS known, so the estimate can be checked:
:func:`compare_unsupervised` gives, for several denoised movies, the uPSNR (with its standard
error) and the true PSNR on the SAME frames; :func:`signal_change_bias` the part of the uMSE bias
that comes from the clean movie changing between the reference frames (drift, moving atoms);
:func:`same_ranking` / :func:`kendall_tau` whether two scores order methods alike;
:func:`plot_upsnr_vs_psnr` the scatter with the identity line.  Contrast along lines is in
:mod:`temnb.judge.contrast`, power spectra in :mod:`temnb.judge.spectra`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..core import metadata as md
from ..core.errors import DataShapeError, DataValueError, ParameterError, TemnbWarning
from ..core.signals import float_array, is_signal, require_image_data, require_movie, source_label, unwrap

__all__ = ["UMSE", "umse", "umse_from_references", "umse_spatial", "split_parity", "upsnr", "Decibels",
           "mean_level", "UPSNR_PEAK_RULE", "temporal_reach", "references_seen",
           "compare_unsupervised", "format_unsupervised_table", "signal_change_bias", "kendall_tau",
           "same_ranking", "plot_upsnr_vs_psnr", "tune_filter"]

_PARITY = ((0, 0), (0, 1), (1, 0), (1, 1))


@dataclass
class UMSE:
    """uMSE result: ``value`` (mean over frames, data units squared), ``per_frame``,
    ``frames`` (the frame index of each value), ``mode`` and which ``references`` were used."""

    value: float
    per_frame: np.ndarray
    frames: np.ndarray
    mode: str
    references: str

    def __float__(self) -> float:
        return float(self.value)



def umse_from_references(denoised, a, b, c) -> float:
    """``mean((a - denoised)^2) - mean((b - c)^2) / 2`` for arrays of one shape (see module doc)."""
    f, a, b, c = (float_array(x, n) for x, n in ((denoised, "the denoised image"), (a, "reference a"),
                                            (b, "reference b"), (c, "reference c")))
    if not (f.shape == a.shape == b.shape == c.shape):
        raise DataShapeError(f"shapes differ: denoised {f.shape}, a {a.shape}, b {b.shape}, c {c.shape}",
                             hint="the references must be images of the same field of view")
    return float(np.mean((a - f) ** 2) - 0.5 * np.mean((b - c) ** 2))


def temporal_reach(denoised) -> int | None:
    """How many frames on each side of a frame the denoiser that made *denoised* read, when the
    signal records it (temnb filters and ``temnb.denoise`` do); None for a plain array."""
    if not is_signal(denoised):
        return None
    value = md.get(denoised, "temporal_reach", 0)
    return int(value or 0)


def references_seen(denoised, gap: int, *, name=None) -> bool:
    """True, with a TemnbWarning, when the references at *gap* are within the recorded reach of the
    denoiser: it then saw their noise and uMSE rewards it for copying its input (too optimistic)."""
    reach = temporal_reach(denoised)
    if reach is None or gap > reach:
        return False
    label = f"{name}: " if name else ""
    warnings.warn(f"{label}gap = {gap} is within the denoiser's temporal reach ({reach} frames on each side): "
                  f"its uMSE references were among its inputs, so uPSNR comes out too optimistic; use "
                  f"gap >= {reach + 1}", TemnbWarning, stacklevel=3)
    return True


def umse(denoised, noisy, *, mode: str = "temporal", gap: int = 1, sub=(0, 0)) -> UMSE:
    """Unsupervised MSE of *denoised* (without ground truth) from the *noisy* data.

    ``mode='temporal'`` (a movie, (T, H, W), *denoised* of the same shape): for each
    frame t with both neighbours at distance *gap*::

        uMSE_t = [mean((f_t - y[t+gap])^2) + mean((f_t - y[t-gap])^2)] / 2
                 - mean((y[t-gap] - y[t+gap])^2) / 2

    the average of the two mirror-image reference choices a = c = y[t+gap], b = y[t-gap]
    and a = c = y[t-gap], b = y[t+gap] (a and c may be the same frame: the estimator
    only needs each pair independent).  Each is unbiased; their average has a smaller
    spread (on a static simulated movie 0.082 against 0.099 of the MSE, frame to frame)
    and cancels the first-order bias a one-sided reference picks up from drift or from
    an error that follows the image gradient (under a steady drift of 0.36 px/frame the
    relative bias fell from 6.1 % to 3.0 %).  Frames within
    *gap* of either end get no value.  The reference y[t+gap] must not have been
    seen by the denoiser when it made f_t: a frame-by-frame denoiser is fine with
    gap=1; a video denoiser that reads frames t-k..t+k needs ``gap=k+1``.  The
    clean movie is assumed not to change over 2*gap frames (drift-correct first).

    ``mode='spatial'``: see :func:`umse_spatial`; *denoised* is then the denoised
    sub-image (or movie of sub-images) *sub* of :func:`split_parity`.
    """
    if mode == "spatial":
        return umse_spatial(denoised, noisy, sub=sub)
    if mode != "temporal":
        raise ParameterError(f"mode={mode!r}: use 'temporal' (neighbouring frames) or "
                             "'spatial' (2 x 2 pixels)")
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 1:
        raise ParameterError(f"gap={gap!r}: the distance to the reference frames is a whole number >= 1")
    y, _ = unwrap(noisy)
    require_movie(y, min_frames=2 * gap + 1, source=source_label(noisy), what=f"temporal uMSE with gap={gap}")
    f = float_array(denoised, "the denoised movie")
    if f.shape != y.shape:
        raise DataShapeError(f"the denoised movie has shape {f.shape}, the noisy one {y.shape}",
                             hint="pass the denoised movie and the noisy movie it was made from")
    references_seen(denoised, gap)
    y = y.astype(np.float64)
    frames = np.arange(gap, y.shape[0] - gap)
    later, earlier = y[frames + gap], y[frames - gap]
    values = (0.5 * (np.mean((later - f[frames]) ** 2, axis=(1, 2)) + np.mean((earlier - f[frames]) ** 2, axis=(1, 2)))
              - 0.5 * np.mean((earlier - later) ** 2, axis=(1, 2)))
    return UMSE(float(values.mean()), values, frames, "temporal",
                f"frames t-{gap} and t+{gap}, each in turn as a = c, the other as b (averaged)")


def split_parity(image) -> dict:
    """The four 2 x 2-subsampled images ``{(row parity, column parity): sub-image}``.

    Works on a frame (H, W) or a movie (T, H, W); an odd last row/column is dropped.
    Denoise ``split_parity(noisy)[(0, 0)]`` and pass it to :func:`umse_spatial`.
    """
    arr, _ = unwrap(image)
    require_image_data(arr, source=source_label(image), what="2 x 2 subsampling")
    h, w = (arr.shape[-2] // 2) * 2, (arr.shape[-1] // 2) * 2
    if h < 2 or w < 2:
        raise DataShapeError(f"is {arr.shape[-2]} x {arr.shape[-1]} pixels, too small to split "
                             "into 2 x 2 blocks")
    arr = arr[..., :h, :w]
    return {(r, c): arr[..., r::2, c::2] for r, c in _PARITY}


def umse_spatial(denoised_sub, noisy, *, sub=(0, 0)) -> UMSE:
    """Spatial uMSE for single images: the references are the other pixels of each 2 x 2 block.

    *noisy* (a frame or a movie) is split by pixel parity (:func:`split_parity`); the
    caller denoises only the sub-image *sub* (default the even rows and columns) and
    passes the result as *denoised_sub*.  References: a = the sub-image in the same
    rows, next column (one pixel away, like y); b, c = the two sub-images in the other
    rows (one pixel apart, so their clean difference resembles that between a and y
    and the correction partly cancels the bias from the one-pixel offset).  The
    estimate is unbiased only when the clean image barely changes over one pixel, so
    it suits oversampled images; it measures the error of denoising at half resolution.
    """
    if sub not in _PARITY:
        raise ParameterError(f"sub={sub!r}: use one of {_PARITY} (row parity, column parity)")
    parts = split_parity(noisy)
    r, c = sub
    y = parts[sub]
    a = parts[(r, 1 - c)].astype(np.float64)
    b = parts[(1 - r, c)].astype(np.float64)
    cc = parts[(1 - r, 1 - c)].astype(np.float64)
    f = float_array(denoised_sub, "the denoised sub-image")
    if f.shape != y.shape:
        raise DataShapeError(f"the denoised sub-image has shape {f.shape}, but sub-image {sub} of the noisy "
                             f"data has {y.shape}",
                             hint="denoise split_parity(noisy)[sub], not the full image")
    squeeze = f.ndim == 2
    if squeeze:
        f, a, b, cc = f[None], a[None], b[None], cc[None]
    values = np.mean((a - f) ** 2, axis=(1, 2)) - 0.5 * np.mean((b - cc) ** 2, axis=(1, 2))
    return UMSE(float(values.mean()), values, np.arange(len(values)), "spatial",
                f"y = sub-image {sub}, a = {(r, 1 - c)}, b = {(1 - r, c)}, c = {(1 - r, 1 - c)}")


#: How uPSNR takes its peak when none is given: the noisy movie's mean level.  Its expectation is the
#: clean movie's mean whatever the number of frames (the range of a time-averaged noisy frame, the
#: former rule, shrank with the movie's length and put an 8- and a 48-frame movie 3.9 dB apart).
UPSNR_PEAK_RULE = "peak = mean level of the noisy movie (in its units), independent of its length"


class Decibels(float):
    """A score in dB that says which peak it used (``.peak``, in the data's units, and ``.peak_rule``)."""

    def __new__(cls, value, peak: float, peak_rule: str):
        obj = super().__new__(cls, value)
        obj.peak, obj.peak_rule = float(peak), str(peak_rule)
        return obj


def mean_level(noisy) -> float:
    """The mean of the noisy data: uPSNR's default peak (:data:`UPSNR_PEAK_RULE`)."""
    level = float(np.mean(float_array(noisy, "the noisy data")))
    if not level > 0:
        raise DataValueError(f"the noisy data have mean {level:g}, so there is no peak for uPSNR",
                             hint="pass peak= explicitly (in the data's units)")
    return level


def _peak(peak, noisy):
    """(peak, rule): *peak* as given, or the mean level of *noisy*."""
    if peak is None:
        return mean_level(noisy), UPSNR_PEAK_RULE
    if isinstance(peak, bool) or not isinstance(peak, (int, float, np.integer, np.floating)) or not (
            np.isfinite(peak) and peak > 0):
        raise ParameterError(f"peak={peak!r}: it must be a positive number")
    return float(peak), f"peak = {float(peak):.4g} (given)"


def upsnr(denoised, noisy, *, peak=None, mode: str = "temporal", gap: int = 1, sub=(0, 0)) -> Decibels:
    """Unsupervised PSNR in dB: ``10 log10(peak^2 / uMSE)`` with uMSE from :func:`umse`.

    *peak* defaults to the mean level of *noisy* (:data:`UPSNR_PEAK_RULE`): there is no clean
    image, the denoised data's own range would differ from method to method, and the range of a
    time-averaged noisy frame depends on how many frames were averaged.  Give the same *peak* to
    compare with a PSNR.  The result is a float that carries ``.peak`` and ``.peak_rule``.  The
    mean uMSE over frames is used (not the mean of per-frame uPSNRs).  Returns inf, with a
    warning, when the uMSE is <= 0: the error is too small to measure against this much noise.
    """
    result = umse(denoised, noisy, mode=mode, gap=gap, sub=sub)
    peak, rule = _peak(peak, noisy)
    if result.value <= 0:
        warnings.warn(f"uMSE = {result.value:.3g} <= 0: the error cannot be resolved from the noise in "
                      f"{len(result.per_frame)} frames; uPSNR reported as inf", TemnbWarning, stacklevel=2)
        return Decibels(float("inf"), peak, rule)
    return Decibels(10.0 * np.log10(peak ** 2 / result.value), peak, rule)


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
    fairly; default: the maximum of *clean* when given (the paper's PSNR convention, as
    temnb.judge.metrics.psnr), else the mean level of *noisy* (:data:`UPSNR_PEAK_RULE`).
    Row keys: ``name, gap, seen, n_frames, umse, umse_se, upsnr, upsnr_se, peak, peak_rule`` (dB; from the
    spread of the per-frame uMSE), and with *clean* ``mse, psnr, error_db`` where
    the true values use only the frames the uMSE used and ``error_db = upsnr - psnr``.
    uPSNR is inf when the uMSE is <= 0 (the error is below what the noise resolves).
    ``seen`` is True when the gap is within the method's recorded ``temporal_reach`` (a warning
    says so): that row's uPSNR scores the method's own input.
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
    if peak is None and x is not None:
        peak, rule = float(x.max()), "peak = clean maximum (Mohan et al. 2022, Eq. 1)"
        if not peak > 0:
            raise DataValueError("the clean movie has no positive maximum", hint="pass peak= explicitly")
    else:
        peak, rule = _peak(peak, y)
    rows = []
    for name, est in estimates.items():
        g = _gap_of(gap, name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TemnbWarning)
            result = umse(est, noisy, gap=g)
        seen = temporal_reach(est) is not None and g <= temporal_reach(est)
        for w in caught:   # said again with the method's name, where the caller's filters decide
            text = str(w.message)
            warnings.warn(f"{name}: {text}" if seen and "temporal reach" in text else text, w.category,
                          stacklevel=2)
        n = len(result.per_frame)
        se = float(result.per_frame.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        value = result.value
        up = float(10 * np.log10(peak ** 2 / value)) if value > 0 else float("inf")
        row = {"name": str(name), "gap": g, "seen": seen, "n_frames": n, "umse": value, "umse_se": se, "upsnr": up,
               "upsnr_se": _DB * se / value if value > 0 else float("inf"), "peak": peak, "peak_rule": rule}
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
    rules = sorted({r.get("peak_rule", "?") for r in rows})
    lines = [f"uPSNR{' and PSNR' if truth else ''} with " + "; ".join(rules), header, "-" * len(header)]
    for r in rows:
        line = f"{r['name']:<18}{r['gap']:>4}{r['n_frames']:>7}{r['upsnr']:>10.2f}{r['upsnr_se']:>7.2f}"
        if truth:
            line += f"{r['psnr']:>9.2f}{r['error_db']:>+12.2f}"
        if r.get("seen"):
            line += "  (!) gap within the method's reach: optimistic"
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
        # A bias that cancels the whole MSE (bias <= -MSE) leaves an expected uMSE <= 0, which uPSNR
        # reports as inf (as upsnr and compare_unsupervised do), not as the NaN of a log of a negative.
        ratio = np.asarray(1 + bias / mse, dtype=np.float64)
        with np.errstate(divide="ignore"):
            db = np.where(ratio > 0, -10 * np.log10(np.where(ratio > 0, ratio, 1.0)), np.inf)
        return db if per_frame else float(db)
    return bias if per_frame else float(bias)


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


def tune_filter(name: str, noisy, *, gap: int, grid: dict | None = None, peak=None):
    """A classic filter with its settings chosen by **uPSNR** at *gap* -- the tuned baseline for data
    without truth (:func:`temnb.judge.metrics.tune_filter` tunes on the truth).  Only settings whose
    temporal reach stays below *gap* are tried: one that read the reference frames would score its own
    input and always win.  Returns a :class:`temnb.judge.metrics.Tuned` with ``upsnr`` (dB, one
    *peak* for every setting: by default the noisy movie's mean level), ``params``, ``estimate``,
    ``table`` (every setting tried) and ``on_edge``; ``skipped`` lists the settings left out."""
    import itertools

    from ..classic import filters
    from .metrics import TUNING_GRIDS, Tuned

    if grid is None:
        if name not in TUNING_GRIDS:
            raise ParameterError(f"no default tuning grid for {name!r}; pass grid={{setting: values}}")
        grid = TUNING_GRIDS[name]
    gap = _gap_of(gap, name)
    y, _ = unwrap(noisy)
    require_movie(y, min_frames=2 * gap + 1, source=source_label(noisy), what=f"tuning by uPSNR at gap {gap}")
    peak, rule = _peak(peak, y)
    best, table, skipped = None, [], []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        if filters.temporal_reach(name, **params) >= gap:
            skipped.append(params)
            continue
        estimate = filters.apply(name, noisy, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TemnbWarning)   # uMSE <= 0 gives inf: kept, and it wins
            score = float(upsnr(estimate, noisy, gap=gap, peak=peak))
        table.append({**params, "upsnr": score})
        if best is None or score > best[0]:
            best = (score, params, estimate)
    if best is None:
        raise ParameterError(f"every setting of {name!r} in the grid reads {gap} or more frames away, so none can "
                             f"be scored at gap {gap}", hint="use a larger gap (a longer movie) or a smaller grid")
    score, params, estimate = best
    tried = {k: sorted({row[k] for row in table}) for k in grid}
    on_edge = [k for k, v in params.items() if len(tried[k]) > 1 and v in (tried[k][0], tried[k][-1])]
    return Tuned(params=params, upsnr=score, peak=rule, gap=gap, estimate=estimate, table=table,
                 on_edge=on_edge, skipped=skipped)
