"""Photon-transfer internals behind :func:`temnb.io.counts.estimate_gain_offset`.

Noise samples (a structure-cancelling residual within one frame, or half the squared
difference of two frames), each paired with two independent estimates of the local
signal level, then binned by level and fitted with a weighted, robust line
``variance = intercept + gain * level``, returned as a :class:`GainEstimate`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, optimize, signal

from ..core.errors import DataShapeError, DataValueError

# [1,-2,1] x [1,-2,1] / 6 has unit noise gain (sum of squares 1) and annihilates every
# quadratic surface, and every row or column stripe, so smooth structure barely leaks in.
_D2 = np.array([1.0, -2.0, 1.0])


@dataclass
class GainEstimate:
    """A photon-transfer fit ``variance = gain * (level - offset) + read_noise**2``.

    ``levels``, ``variances`` (+- ``variance_errors``, ``n_per_bin`` pixels) are the
    binned curve to plot; ``intercept + gain * level`` is the fitted line.
    """
    gain: float
    offset: float
    read_noise: float
    method: str
    levels: np.ndarray
    variances: np.ndarray
    variance_errors: np.ndarray
    n_per_bin: np.ndarray
    intercept: float
    gain_stderr: float
    reduced_chi2: float
    r_squared: float
    notes: list = field(default_factory=list)

    def model(self, level):
        """Fitted noise variance at *level* (detector units)."""
        return self.intercept + self.gain * np.asarray(level, dtype=float)


# --------------------------------------------------------------------------- noise samples
def _ring_kernels(parity: int, outer: int = 5, order: int = 4):
    """Kernels fitting a polynomial to one checkerboard half of the ring 2..outer px away.

    Returns (level kernel, orthonormal-basis kernels, ones kernel, misfit dof).  A
    quartic over radius 2..5 follows atomic-scale structure (period >~ 25 px) to well
    under 1% of its contrast.
    """
    offs = [(dy, dx) for dy in range(-outer, outer + 1) for dx in range(-outer, outer + 1)
            if max(abs(dy), abs(dx)) > 1 and (dy + dx) % 2 == parity]
    terms = [(i, n - i) for n in range(order + 1) for i in range(n + 1)]
    design = np.array([[dx ** i * dy ** j for i, j in terms] for dy, dx in offs], float)
    # The residual's variance averages the pixel variances with weights k**2/36 over its
    # 3x3 support, so it is linear in that weighted mean, not in the centre value.
    k2 = np.outer(_D2, _D2) ** 2 / 36
    at = np.array([sum(k2[a + 1, b + 1] * b ** i * a ** j for a in (-1, 0, 1) for b in (-1, 0, 1))
                   for i, j in terms])

    def kern(values):
        k = np.zeros((2 * outer + 1, 2 * outer + 1))
        for (dy, dx), v in zip(offs, values):
            k[outer - dy, outer - dx] = v   # flipped: applied as a convolution
        return k
    basis = np.linalg.qr(design)[0]
    return (kern(at @ np.linalg.pinv(design)), [kern(q) for q in basis.T],
            kern(np.ones(len(offs))), len(offs) - len(terms))


_RING_A, _RING_B = _ring_kernels(0), _ring_kernels(1)


def _residual(x):
    return ndimage.correlate1d(ndimage.correlate1d(x, _D2, axis=0), _D2, axis=1) / 6.0


def _frame_samples(x, allowed):
    """Per pixel of one frame: bin level, reported level, squared residual, misfit of ring A.

    The levels are fits to the two disjoint halves of a ring around the residual's 3x3
    support: bins chosen on one and placed at the other cannot be biased by the noise
    of the level (no regression to the mean).  The misfit flags non-smooth structure;
    it uses ring A only, so selecting on it leaves the other two unbiased.
    """
    x = np.asarray(x, dtype=np.float64)
    level_a, basis, ones, dof = _RING_A

    def conv(img, k):
        return signal.fftconvolve(img, k, mode="same")
    rss = conv(x * x, ones) - sum(conv(x, q) ** 2 for q in basis)
    keep = np.zeros(x.shape, bool)
    keep[6:-6, 6:-6] = True
    keep &= allowed
    return (conv(x, level_a)[keep], conv(x, _RING_B[0])[keep], _residual(x)[keep] ** 2,
            rss[keep] / dof)


def _movie_samples(movie, allowed, window):
    """Per pair of frames: half the squared difference, levels from the *other* pairs.

    Non-overlapping pairs keep the differences independent; the even and the odd frames
    of the other pairs give two independent levels.  Running sums keep the memory at a
    few frames, whatever the length of the movie.
    """
    pairs = movie.shape[0] // 2
    w = pairs if window is None else max(1, int(window))
    lo = hi = 0
    sum_e = sum_o = 0.0
    for p in range(pairs):
        while hi < min(pairs, p + w + 1):
            sum_e, sum_o, hi = sum_e + movie[2 * hi], sum_o + movie[2 * hi + 1], hi + 1
        while lo < max(0, p - w):
            sum_e, sum_o, lo = sum_e - movie[2 * lo], sum_o - movie[2 * lo + 1], lo + 1
        e, o = movie[2 * p].astype(np.float64), movie[2 * p + 1].astype(np.float64)
        n = hi - lo - 1
        yield ((sum_e - e) / n)[allowed], ((sum_o - o) / n)[allowed], ((o - e) ** 2 / 2)[allowed]


def _bin_and_fit(chunks, n_bins, fixed, source):
    """Bin the samples by level (equal-count bins) and fit the line robustly."""
    edges, acc = None, np.zeros((4, n_bins))
    for la, lb, y in chunks:
        if edges is None:
            if la.size < 20 * n_bins:
                raise DataShapeError(
                    f"has only {la.size} usable pixels after leaving out borders and structure; "
                    f"a photon-transfer fit with {n_bins} levels needs {20 * n_bins}",
                    source=source, hint="use a larger field of view, more frames, or fewer n_bins")
            edges = np.quantile(la, np.linspace(0.005, 0.995, n_bins + 1))
        idx = np.searchsorted(edges, la, side="right") - 1
        ok = (idx >= 0) & (idx < n_bins)
        for row, vals in enumerate((np.ones_like(y), lb, y, y * y)):
            acc[row] += np.bincount(idx[ok], weights=vals[ok], minlength=n_bins)
    good = acc[0] >= 20
    if good.sum() < 3 or np.ptp(edges) <= 0:
        raise DataValueError("is too flat to fit a photon-transfer curve: its smooth regions span "
                             "fewer than three signal levels", source=source,
                             hint="use data with both bright and dark regions, or give a dark frame")
    n, sx, sy, syy = acc[:, good]
    x, y = sx / n, sy / n
    se = np.sqrt(np.maximum(syy / n - y * y, 1e-300) / np.maximum(n - 1, 1))
    off, rn2 = fixed if fixed is not None else (0.0, 0.0)
    if fixed is not None:   # offset and read noise known: only the gain is free
        def resid(p):
            return (y - rn2 - p[0] * (x - off)) / se
        p0 = [np.sum((y - rn2) * (x - off)) / max(np.sum((x - off) ** 2), 1e-300)]
    else:
        def resid(p):
            return (y - p[0] - p[1] * x) / se
        p0 = np.polyfit(x, y, 1, w=1 / se)[::-1]
    # soft_l1 down-weights bins spoilt by hot pixels or leftover structure.
    fit = optimize.least_squares(resid, p0, loss="soft_l1", f_scale=2.0)
    chi2 = float(np.sum(resid(fit.x) ** 2) / max(len(x) - len(p0), 1))
    gain = float(fit.x[-1])
    gain_se = float(np.sqrt(np.linalg.pinv(fit.jac.T @ fit.jac)[-1, -1] * max(chi2, 1.0)))
    intercept = rn2 - gain * off if fixed is not None else float(fit.x[0])
    r_sq = float(1 - np.sum((y - intercept - gain * x) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-300))
    if gain_se > 0.3 * abs(gain):
        raise DataValueError(f"is too flat to fit a gain (gain {gain:.3g} +- {gain_se:.2g}): the "
                             "signal levels do not span enough range", source=source,
                             hint="use data with both bright and dark regions, or more frames")
    if gain <= 0:
        raise DataValueError(
            f"gives a negative or zero gain ({gain:.3g}): the noise does not grow with the signal",
            source=source, hint="the data may already be denoised, clipped or not detector counts")
    return gain, gain_se, intercept, x, y, se, n, chi2, r_sq
