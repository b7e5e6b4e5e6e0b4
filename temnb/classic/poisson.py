"""Poisson statistics of electron counts, the subject of notebook 02.

At ~0.45 electrons per pixel per frame most pixels record 0 and the rest 1 or 2:
the noise is Poisson shot noise, whose variance equals its mean, so the
signal-to-noise ratio of a pixel is sqrt(dose).  Averaging n frames multiplies
the dose and hence the SNR by sqrt(n).  The Anscombe transform 2*sqrt(x + 3/8)
makes Poisson noise roughly Gaussian with unit variance -- but only for means of
a few electrons and more, which is the point notebook 02 makes with the
functions here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import interpolate, stats

from ..core import metadata as md
from ..core.errors import DataShapeError, DataValueError, NotCountsError, ParameterError
from ..core.signals import require_movie, rewrap, source_label, unwrap

__all__ = ["poisson_sample", "snr_of_dose", "snr", "VarianceMeanRatio", "variance_mean_ratio",
           "time_average", "AveragingGain", "averaging_gain", "anscombe", "inverse_anscombe",
           "anscombe_expectation", "anscombe_variance", "anscombe_bias", "inverse_anscombe_bias"]

_A0 = 2.0 * np.sqrt(3.0 / 8.0)      # Anscombe transform of zero counts
_TABLE_MAX_MEAN = 400.0             # beyond this the asymptotic inverse is exact to ~1e-5


def _scale_variance_model(sig, factor_gain: float, factor_offset: float):
    """Rescale hyperspy's variance model, when there is one, after averaging or summing."""
    node = "Signal.Noise_properties.Variance_linear_model"
    if sig.metadata.has_item(node):
        g = sig.metadata.get_item(f"{node}.gain_factor", 1.0)
        o = sig.metadata.get_item(f"{node}.gain_offset", 0.0)
        md.set_variance_model(sig, g * factor_gain, o * factor_offset)


def _drop_variance_model(sig):
    if sig.metadata.has_item("Signal.Noise_properties.Variance_linear_model"):
        del sig.metadata.Signal.Noise_properties.Variance_linear_model


# --------------------------------------------------------------------------- dose and SNR
def poisson_sample(expected, rng=None, *, name=None):
    """Draw electron counts ``N ~ Poisson(expected)`` (int32), e.g. a movie at a given dose.

    *rng* is a ``numpy.random.Generator``, a seed, or None.  A signal comes back marked
    as counts, with hyperspy's variance model ``variance = 1 * counts``.
    """
    arr, template = unwrap(expected, name=name)
    if arr.size and arr.min() < 0:
        raise DataValueError(f"has {int(np.count_nonzero(arr < 0))} negative expected values: a "
                             "Poisson mean cannot be negative", source=source_label(expected, name),
                             hint="clip the simulated image at zero or add the background first")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    counts = gen.poisson(arr).astype(np.int32 if arr.max(initial=0) < 2e9 else np.int64)
    if template is None:
        return counts
    out = rewrap(counts, template, quantity="Electrons (counts)")
    md.set(out, "counts", True)
    md.set_variance_model(out, 1.0, 0.0)
    return out


def snr_of_dose(dose):
    """Signal-to-noise ratio of a pixel that received *dose* electrons on average: sqrt(dose)."""
    dose = np.asarray(dose, dtype=float)
    if np.any(~np.isfinite(dose)) or np.any(dose < 0):
        raise ParameterError("dose must be finite and >= 0 electrons per pixel")
    return np.sqrt(dose) if dose.ndim else float(np.sqrt(dose))


def snr(noisy, clean):
    """Measured SNR: mean of *clean* over the RMS of ``noisy - clean``.

    *clean* may be one frame for a whole movie.  For Poisson noise on a flat image
    this is sqrt(dose).
    """
    a, _ = unwrap(noisy)
    b, _ = unwrap(clean)
    try:
        diff = a.astype(np.float64) - b
    except ValueError:
        raise DataShapeError(f"noisy data of shape {a.shape} and clean data of shape {b.shape} "
                             "do not match", source=source_label(noisy)) from None
    rms = float(np.sqrt(np.mean(diff ** 2)))
    return float(np.mean(b)) / rms if rms > 0 else float("inf")


# --------------------------------------------------------------------------- variance / mean
@dataclass
class VarianceMeanRatio:
    """Pooled noise variance / mean of a static movie: 1 for Poisson counts, the gain otherwise."""

    ratio: float               # per-pixel temporal variance / temporal mean, pooled
    stderr: float
    difference_ratio: float    # from var(f[t+1] - f[t]) / 2: insensitive to slow drift
    difference_stderr: float
    n_pixels: int
    n_frames: int


def variance_mean_ratio(movie, *, mask=None, name=None) -> VarianceMeanRatio:
    """Noise variance over mean of a (nearly) static movie, pooled over pixels.

    Pooled as a ratio of sums over the pixels with mean > 0 (inside *mask*), so dark
    pixels with a handful of counts do not dominate.  The standard errors treat pixels
    as independent samples, which they are for shot noise.
    """
    arr, _ = unwrap(movie, name=name)
    source = source_label(movie, name)
    require_movie(arr, min_frames=2, source=source, what="variance_mean_ratio")
    t = arr.shape[0]
    ref = arr[0].astype(np.float64)   # shifting by one frame keeps the sums well conditioned
    s1 = np.zeros_like(ref)
    s2 = np.zeros_like(ref)
    sd = np.zeros_like(ref)
    prev = ref
    for i in range(t):
        f = arr[i].astype(np.float64)
        s1 += f - ref
        s2 += (f - ref) ** 2
        if i:
            sd += (f - prev) ** 2
        prev = f
    mean = ref + s1 / t
    var = (s2 - s1 ** 2 / t) / (t - 1)
    dvar = sd / (2 * (t - 1))
    use = mean > 0
    if mask is not None:
        m = np.asarray(mask, bool)
        if m.shape != mean.shape:
            raise DataShapeError(f"mask has shape {m.shape} but the frames are {mean.shape}",
                                 source=source)
        use &= m
    n = int(use.sum())
    if n < 2:
        raise DataValueError("has fewer than 2 pixels with a positive mean to pool", source=source)
    m_used = mean[use]

    def pooled(v):
        r = float(v.sum() / m_used.sum())
        return r, float(np.std(v - r * m_used, ddof=1) / np.sqrt(n) / m_used.mean())
    r, r_se = pooled(var[use])
    d, d_se = pooled(dvar[use])
    return VarianceMeanRatio(r, r_se, d, d_se, n, t)


# --------------------------------------------------------------------------- averaging
def time_average(movie, n: int, *, running: bool = False, reduce: str = "mean", name=None):
    """Average (or sum) groups of *n* frames: n times the dose, sqrt(n) times the SNR.

    Non-overlapping groups drop the last ``T % n`` frames; ``running=True`` gives
    ``T - n + 1`` overlapping averages (neighbouring outputs then share noise).  On a
    signal the time axis is rescaled and the metadata follow: the sum of counts is
    still counts; the mean of counts is "detector units" with gain 1/n, so
    :func:`temnb.to_counts` turns it back into the sum.
    """
    arr, template = unwrap(movie, name=name)
    source = source_label(movie, name)
    require_movie(arr, min_frames=1, source=source, what="time_average")
    t = arr.shape[0]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= t:
        raise ParameterError(f"n={n!r}: it must be a whole number of frames from 1 to {t}",
                             source=source)
    if reduce not in ("mean", "sum"):
        raise ParameterError(f"reduce={reduce!r}; choose 'mean' or 'sum'")
    acc = np.int64 if arr.dtype.kind in "biu" else np.float64
    if running:
        c = np.cumsum(arr, axis=0, dtype=acc)
        out = c[n - 1:].copy()
        out[1:] -= c[:-n]
    else:
        k = t // n
        out = arr[:k * n].reshape((k, n) + arr.shape[1:]).sum(axis=1, dtype=acc)
    if reduce == "mean":
        out = (out / n).astype(np.float64 if arr.dtype == np.float64 else np.float32)
    if template is None:
        return out
    sig = rewrap(out, template)
    sig.get_dimensions_from_data()
    if sig.axes_manager.navigation_dimension:
        ax = sig.axes_manager.navigation_axes[0]
        step = ax.scale
        ax.offset = ax.offset + (n - 1) * step / 2   # time of a group = mean time of its frames
        if not running:
            ax.scale = step * n
    ft, dose = md.get(sig, "frame_time"), md.get(sig, "dose_per_pixel")
    if ft is not None and not running:
        md.set(sig, "frame_time", ft * n)
    if dose is not None:
        md.set(sig, "dose_per_pixel", dose * n)
    if reduce == "sum":
        _scale_variance_model(sig, 1.0, n)
    else:
        _scale_variance_model(sig, 1.0 / n, 1.0 / n)
        gain, read = md.get(sig, "gain") or 1.0, md.get(sig, "read_noise") or 0.0
        if md.get(sig, "counts") is True:
            md.set(sig, "counts", False)
            md.set(sig, "gain", 1.0 / n)
            md.set(sig, "offset", 0.0)
            md.set(sig, "read_noise", read / gain / np.sqrt(n))
        elif md.get(sig, "read_noise") is not None:
            md.set(sig, "read_noise", read / np.sqrt(n))
    md.add_note(sig, f"{'running ' if running else ''}{reduce} of {n} frames")
    return sig


@dataclass
class AveragingGain:
    """Measured SNR after averaging n frames, with the ideal sqrt(n) law for comparison."""

    ns: np.ndarray
    snr: np.ndarray
    reference: np.ndarray     # snr[0] * sqrt(ns / ns[0])
    gain: np.ndarray          # snr / snr[0]
    method: str


def averaging_gain(noisy_movie, clean=None, ns=None, *, name=None) -> AveragingGain:
    """SNR of non-overlapping n-frame averages versus n, for a plot against sqrt(n).

    With *clean* (a frame, or a movie averaged the same way) the noise is the RMS
    difference from it; without, it is estimated from differences of consecutive
    averaged frames, ``var(A[k+1] - A[k]) / 2``, which cancels a static specimen.
    """
    arr, _ = unwrap(noisy_movie, name=name)
    source = source_label(noisy_movie, name)
    require_movie(arr, min_frames=2 if clean is not None else 4, source=source, what="averaging_gain")
    t = arr.shape[0]
    ref = None if clean is None else unwrap(clean)[0].astype(np.float64)
    if ref is not None and ref.shape not in (arr.shape, arr.shape[1:]):
        raise DataShapeError(f"clean data of shape {ref.shape} match neither the movie {arr.shape} "
                             "nor one of its frames", source=source)
    need = 1 if clean is not None else 2
    if ns is None:
        ns = [2 ** i for i in range(int(np.log2(t)) + 1) if t // 2 ** i >= need]
    ns = np.asarray(ns, dtype=int)
    if ns.size == 0 or ns.min() < 1 or ns.max() > t // need:
        raise ParameterError(f"ns={ns.tolist()}: each n must be from 1 to {t // need} for {t} frames",
                             source=source)
    values = []
    for n in ns:
        avg = time_average(arr, int(n)).astype(np.float64)
        if ref is not None:
            target = time_average(ref, int(n)) if ref.ndim == 3 else ref
            values.append(snr(avg, target))
        else:
            var = np.mean(np.diff(avg, axis=0) ** 2) / 2
            values.append(float(avg.mean() / np.sqrt(var)) if var > 0 else float("inf"))
    values = np.asarray(values)
    how = "RMS difference from the clean data" if ref is not None else "consecutive-average differences"
    return AveragingGain(ns, values, values[0] * np.sqrt(ns / ns[0]), values / values[0], how)


def variance_by_level(noisy, clean, *, n_bins: int = 12, name=None):
    """Noise variance against the expected value, binned by the clean level.

    With ground truth this is the photon-transfer curve of counted data without
    any assumption about the specimen: for Poisson counts every bin lies on the
    line variance = level.  Returns ``(levels, variances, stderr, slope)`` where
    *slope* is the least-squares slope of a line through the origin.
    """
    a, _ = unwrap(noisy, name=name)
    b, _ = unwrap(clean)
    if a.shape != b.shape:
        raise DataShapeError(f"noisy data of shape {a.shape} and clean data of shape {b.shape} do not match",
                             source=source_label(noisy, name))
    level = b.astype(np.float64).ravel()
    residual2 = (a.astype(np.float64).ravel() - level) ** 2
    edges = np.quantile(level, np.linspace(0, 1, n_bins + 1))
    if not np.all(np.diff(edges) > 0):
        raise DataValueError("the clean data are too flat to bin by level", source=source_label(noisy, name))
    which = np.clip(np.searchsorted(edges, level, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    levels = np.bincount(which, level, n_bins) / count
    variances = np.bincount(which, residual2, n_bins) / count
    spread = np.bincount(which, residual2 ** 2, n_bins) / count - variances ** 2
    stderr = np.sqrt(np.maximum(spread, 0) / count)
    slope = float(np.sum(levels * variances) / np.sum(levels ** 2))
    return levels, variances, stderr, slope


# --------------------------------------------------------------------------- Anscombe
def anscombe(x, *, name=None):
    """Anscombe transform ``2 * sqrt(x + 3/8)``: Poisson noise of unit variance, roughly.

    "Roughly" means for means above a few electrons; see :func:`anscombe_variance`.
    """
    arr, template = unwrap(x, name=name)
    source = source_label(x, name)
    if template is not None and md.get(template, "counts") is False:
        raise NotCountsError("is in detector units; the Anscombe transform is for electron counts",
                             source=source, hint="convert with temnb.to_counts first")
    if arr.size and arr.min() < -3 / 8:
        raise DataValueError(f"has values down to {arr.min():.3g}, below -3/8, where the Anscombe "
                             "transform is undefined", source=source,
                             hint="use electron counts (non-negative), e.g. temnb.to_counts(data)")
    out = 2.0 * np.sqrt(arr.astype(np.float64) + 3.0 / 8.0)
    out = out.astype(np.float64 if arr.dtype == np.float64 else np.float32)
    if template is None:
        return out
    sig = rewrap(out, template, quantity="Anscombe-transformed counts")
    md.set(sig, "counts", False)
    _drop_variance_model(sig)
    return sig


def _poisson_expectation(mean, func):
    """E[func(z)] for z ~ Poisson(mean), by summing the pmf far into the tail."""
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    kmax = int(np.max(mean) + 12 * np.sqrt(np.max(mean)) + 40)
    k = np.arange(kmax + 1)
    out = np.empty_like(mean)
    for s in range(0, mean.size, 256):          # chunks bound the memory of the pmf table
        mu = mean[s:s + 256, None]
        out[s:s + 256] = stats.poisson.pmf(k[None, :], mu) @ func(k)
    return out


def _check_means(mean):
    mean = np.asarray(mean, dtype=np.float64)
    if np.any(~np.isfinite(mean)) or np.any(mean < 0):
        raise ParameterError("Poisson means must be finite and >= 0")
    return mean


def anscombe_expectation(mean):
    """E[2 sqrt(z + 3/8)] for z ~ Poisson(mean), computed exactly from the pmf."""
    mean = _check_means(mean)
    out = _poisson_expectation(mean.ravel(), lambda k: 2.0 * np.sqrt(k + 3.0 / 8.0))
    return out.reshape(mean.shape) if mean.ndim else float(out[0])


def anscombe_variance(mean):
    """Var[2 sqrt(z + 3/8)]: near 1 for means above ~4, far below 1 at 0.45 e-/px."""
    mean = _check_means(mean)
    return 4.0 * (mean + 3.0 / 8.0) - np.asarray(anscombe_expectation(mean)) ** 2


def anscombe_bias(mean):
    """E[A(z)] - A(mean): how far the transformed mean is from the transform of the mean."""
    mean = _check_means(mean)
    return np.asarray(anscombe_expectation(mean)) - 2.0 * np.sqrt(mean + 3.0 / 8.0)


@functools.lru_cache(maxsize=1)
def _exact_table():
    """Interpolant mean(E[A]): the exact unbiased inverse of Makitalo & Foi (2011)."""
    means = np.concatenate([[0.0], np.geomspace(1e-4, _TABLE_MAX_MEAN, 1500)])
    expect = anscombe_expectation(means)
    return interpolate.PchipInterpolator(expect, means), expect[-1]


def inverse_anscombe(y, method: str = "exact_unbiased", *, name=None):
    """Back from the Anscombe domain to a mean number of electrons.

    A denoiser estimates E[A(z)], not A(E[z]), so the inverse must undo the
    expectation: ``'exact_unbiased'`` (Makitalo & Foi 2011) inverts the tabulated
    E[A(z)] as a function of the mean (0 below A(0)); ``'algebraic'`` ``(y/2)**2 - 3/8``
    is biased low at low counts; ``'asymptotic'`` ``(y/2)**2 - 1/8`` is right only for
    large means.
    """
    arr, template = unwrap(y, name=name)
    y64 = arr.astype(np.float64)
    if method == "algebraic":
        out = (y64 / 2) ** 2 - 3.0 / 8.0
    elif method == "asymptotic":
        out = (y64 / 2) ** 2 - 1.0 / 8.0
    elif method == "exact_unbiased":
        table, y_max = _exact_table()
        out = np.where(y64 <= _A0, 0.0, table(np.clip(y64, _A0, y_max)))
        big = y64 > y_max
        if np.any(big):
            # Beyond the table the asymptotic form is off by ~0.3/y; carry the gap measured
            # at the table's end along that 1/y decay so the inverse stays continuous.
            gap = _TABLE_MAX_MEAN - ((y_max / 2) ** 2 - 1.0 / 8.0)
            out[big] = (y64[big] / 2) ** 2 - 1.0 / 8.0 + gap * y_max / y64[big]
    else:
        raise ParameterError(f"method={method!r}; choose 'exact_unbiased', 'algebraic' or 'asymptotic'")
    out = out.astype(np.float64 if arr.dtype == np.float64 else np.float32)
    if template is None:
        return out if out.ndim else float(out)
    sig = rewrap(out, template, quantity="Electrons (mean estimate)")
    md.set(sig, "counts", None)      # an estimated mean, not Poisson counts
    _drop_variance_model(sig)
    return sig


def inverse_anscombe_bias(mean, method: str = "algebraic"):
    """inverse(E[A(z)]) - mean: the error of an inverse applied to a perfect denoiser's output."""
    mean = _check_means(mean)
    return np.asarray(inverse_anscombe(np.asarray(anscombe_expectation(mean)), method)) - mean
