"""Electron counts versus detector units: gain, offset, dose, and the counts check.

Poisson statistics hold for *electrons*, not for what a detector writes.  An
integrating camera or a HAADF detector reports ``value = gain * N + offset +
read noise`` with ``N ~ Poisson``, so its variance grows linearly with its mean:
``var = gain * (mean - offset) + read_noise**2``.  Measuring that line (the
photon-transfer curve) gives the gain and offset that turn values back into
electrons, which every Poisson method in temnb needs.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ..core import metadata as md
from ..core.errors import (
    CalibrationWarning,
    CountsWarning,
    DataShapeError,
    DataValueError,
    NotCountsError,
    ParameterError,
)
from ..core.signals import is_signal, require_image_data, require_movie, rewrap, source_label, unwrap
from .calibration import frame_time_s, pixel_area_A2
from .photon_transfer import _RING_A, GainEstimate, _bin_and_fit, _frame_samples, _movie_samples, _residual

__all__ = ["GainEstimate", "DoseEstimate", "CountsCheck", "estimate_gain_offset", "to_counts",
           "dark_statistics", "estimate_dose", "record_dose", "check_counts", "require_counts"]

_DISPERSION_OK = (0.7, 1.4)   # noise variance / mean accepted as "Poisson-like"


@dataclass
class DoseEstimate:
    """Electrons per pixel per frame in vacuum, and where it was measured."""
    dose_per_pixel: float
    dose_per_pixel_stderr: float
    dose_per_area: float | None   # e-/A^2 per frame, when the pixel size is known
    dose_rate: float | None       # e-/A^2/s, when pixel size and frame time are known
    region: np.ndarray            # boolean (y, x) mask of the pixels used
    dispersion: float             # variance/mean of the time-summed counts there (1: vacuum)
    n_frames: int
    method: str
    notes: list = field(default_factory=list)


@dataclass
class CountsCheck:
    """What :func:`check_counts` found: ``problems`` are certain, ``doubts`` suggestive."""
    flag: bool | None             # temnb.io.counts metadata (None: unknown)
    problems: list
    doubts: list
    dispersion: float | None      # noise variance / mean (1 for Poisson counts)
    n_negative: int

    @property
    def reasons(self) -> list:
        return list(self.problems) + list(self.doubts)

    @property
    def ok(self) -> bool:
        return not self.reasons


def dark_statistics(dark, *, name=None):
    """``(offset, read_noise, note)`` of a dark frame or stack, fixed pattern removed.

    For a stack the fixed pattern is each pixel's mean over time; in a single frame only
    row and column stripes can be told apart from the noise, so those are removed.
    """
    arr, _ = unwrap(dark, name=name)
    source = source_label(dark, name)
    require_image_data(arr, source=source, what="a dark reference")
    if arr.size < 100:
        raise DataShapeError(f"has only {arr.size} pixels: too few for a dark reference", source=source)
    arr = arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[0] >= 2:
        read = np.sqrt(arr.var(axis=0, ddof=1).mean())
        note = f"read noise from the temporal scatter of {arr.shape[0]} dark frames"
    else:
        f = arr if arr.ndim == 2 else arr[0]
        flat = f - f.mean(0, keepdims=True) - f.mean(1, keepdims=True) + f.mean()
        read = np.sqrt(np.sum(flat ** 2) / max((f.shape[0] - 1) * (f.shape[1] - 1), 1))
        note = "read noise from one dark frame with its row and column stripes removed"
    return float(arr.mean()), float(read), note


# --------------------------------------------------------------------------- gain and offset
def estimate_gain_offset(data, dark=None, *, n_bins: int = 16, method: str = "auto", mask=None,
                         window: int | None = None, max_frames: int = 8, name=None) -> GainEstimate:
    """Fit the photon-transfer curve ``var = gain * (mean - offset) + read_noise**2``.

    ``method='movie'`` (default for >= 4 frames): a frame difference cancels everything
    static, so ``var(f[t+1] - f[t]) / 2`` is pure noise, binned by the level of the
    pixel in the *other* frames.  Assumes the scene moves much less than a pixel per
    frame and much less than its features over the ``window`` pairs (default: all)
    that give the levels: align a drifting movie first.  ``method='frame'`` (one frame,
    or the first ``max_frames``): a residual that cancels locally quadratic structure
    (in the spirit of Foi et al. 2008), in the pixels where the surroundings are smooth;
    it assumes noise uncorrelated between neighbouring pixels (a camera that spreads
    each electron over several pixels reads too low a gain this way: use a movie).

    With a *dark* reference the offset and read noise are measured there and only the
    gain is fitted.  Without one they share the intercept: the read noise is taken as
    negligible (``read_noise = 0``) and the offset absorbs ``read_noise**2 / gain``.
    """
    arr, _ = unwrap(data, name=name)
    source = source_label(data, name)
    require_image_data(arr, source=source, what="a gain estimate")
    if n_bins < 3:
        raise ParameterError(f"n_bins={n_bins}: a line through the photon-transfer curve needs >= 3")
    if method == "auto":
        method = "movie" if arr.ndim == 3 and arr.shape[0] >= 4 else "frame"
    shape = arr.shape[-2:]
    allowed = np.ones(shape, bool) if mask is None else np.asarray(mask, bool)
    if allowed.shape != shape:
        raise DataShapeError(f"mask has shape {allowed.shape} but the frames are {shape}", source=source)
    notes, fixed = [], None
    if dark is not None:
        offset, read, note = dark_statistics(dark)
        fixed = (offset, read ** 2)
        notes.append(f"offset and read noise from the dark reference ({note})")
    if method == "movie":
        require_movie(arr, min_frames=4, source=source, what="the movie gain estimate")
        chunks = _movie_samples(arr, allowed, window)
        how = "movie: var(f[t+1]-f[t])/2 binned by the mean of the other frames (static scene)"
    elif method == "frame":
        if min(shape) < 32:
            raise DataShapeError(f"frames of {shape} are too small for a gain estimate (>= 32x32)",
                                 source=source)
        samples = [_frame_samples(f, allowed) for f in ([arr] if arr.ndim == 2 else arr[:max_frames])]
        # Smooth = ring A follows its polynomial within the noise (chi-square test at 1%);
        # the noise for the test comes from a first fit that keeps every pixel.
        q = stats.chi2.ppf(0.99, _RING_A[3]) / _RING_A[3]
        try:
            g0, _, c0, *_ = _bin_and_fit([samples[0][:3]], n_bins, fixed, source)
            limits = [q * np.maximum(c0 + g0 * la, 1e-12) for la, *_ in samples]
        except DataValueError:
            limits = [q * np.median(m) for *_, m in samples]
        chunks = [(la[m <= t], lb[m <= t], y[m <= t]) for (la, lb, y, m), t in zip(samples, limits)]
        kept = sum(c[0].size for c in chunks) / max(sum(s[0].size for s in samples), 1)
        how = f"frame: structure-cancelling residual in the smooth {kept:.0%} of {len(samples)} frame(s)"
    else:
        raise ParameterError(f"method={method!r}; choose 'auto', 'movie' or 'frame'")
    gain, gain_se, intercept, x, y, se, n, chi2, r_sq = _bin_and_fit(chunks, n_bins, fixed, source)
    if dark is None:
        offset, read = -intercept / gain, 0.0
        notes.append("no dark reference: read noise assumed negligible; the offset absorbs "
                     "read_noise**2/gain")
    how += "; dark reference" if dark is not None else "; no dark"
    return GainEstimate(gain, float(offset), float(read), how,
                        x, y, se, n.astype(int), float(intercept), gain_se, chi2, r_sq, notes)


def to_counts(data, gain=None, offset=None, *, dark=None, estimate: GainEstimate | None = None,
              name=None):
    """Convert detector units to electrons, ``(value - offset) / gain``, as float32.

    Not rounded: rounding would add noise of its own.  Missing numbers come from
    *estimate*, then *dark* (offset, read noise), then the signal's temnb metadata
    (e.g. after :func:`temnb.classic.poisson.time_average`), else are estimated from the data.
    The input is never changed.
    """
    arr, template = unwrap(data, name=name)
    source = source_label(data, name)
    if template is not None and md.get(template, "counts") is True:
        raise DataValueError("is already marked as electron counts; converting again would "
                             "divide by the gain twice", source=source)
    read = None
    if estimate is not None:
        gain = estimate.gain if gain is None else gain
        offset = estimate.offset if offset is None else offset
        read = estimate.read_noise
    if dark is not None:
        d_off, d_read, _ = dark_statistics(dark)
        offset = d_off if offset is None else offset
        read = d_read if read is None else read
    if template is not None and gain is None and md.get(template, "gain") is not None:
        gain = md.get(template, "gain")
        offset = md.get(template, "offset", 0.0) if offset is None else offset
        read = md.get(template, "read_noise", 0.0) if read is None else read
    if gain is None:
        estimate = estimate_gain_offset(data, dark=dark, name=name)
        gain, read = estimate.gain, estimate.read_noise
        offset = estimate.offset if offset is None else offset
    if offset is None:
        raise ParameterError("to_counts was given a gain but no offset", source=source,
                             hint="pass offset=..., a dark frame (dark=...), or an estimate")
    gain, offset, read = float(gain), float(offset), float(read or 0.0)
    if not np.isfinite(gain) or gain <= 0:
        raise ParameterError(f"gain={gain}: it must be a positive number of detector units per electron")
    out = ((arr.astype(np.float64) - offset) / gain).astype(np.float32)
    if template is None:
        return out
    sig = rewrap(out, template, quantity="Electrons (counts)")
    for key, value in (("counts", True), ("gain", gain), ("offset", offset), ("read_noise", read)):
        md.set(sig, key, value)
    md.set_variance_model(sig, 1.0, (read / gain) ** 2)
    md.add_note(sig, f"converted to electrons: (value - {offset:.6g}) / {gain:.6g}")
    return sig


# --------------------------------------------------------------------------- dose
def _block_dispersion(total, block):
    """Variance/mean of each block, and its standard error, after removing a fitted plane."""
    h, w = total.shape[0] // block, total.shape[1] // block
    b = total[:h * block, :w * block].reshape(h, block, w, block).transpose(0, 2, 1, 3)
    c = np.arange(block) - (block - 1) / 2
    norm = block * np.sum(c ** 2)
    mean = b.mean((2, 3))
    dev = b - mean[..., None, None]
    # A tilt of the illumination across a vacuum block is not specimen structure.
    slope_y, slope_x = np.einsum("ijkl,k->ij", dev, c) / norm, np.einsum("ijkl,l->ij", dev, c) / norm
    ss = (dev ** 2).sum((2, 3)) - (slope_y ** 2 + slope_x ** 2) * norm
    n, safe = block * block, np.maximum(mean, 1e-300)
    disp = np.where(mean > 0, ss / (n - 3) / safe, np.inf)
    return mean, disp, np.sqrt((2 + 1 / safe) / (n - 3))   # Poisson: var(s^2) ~ (mu + 2 mu^2)/n


def _default_block(frame_shape) -> int:
    """32 px, smaller on small frames so that about 4 x 4 blocks fit (never below 4 px)."""
    return max(4, min(32, min(int(n) for n in frame_shape[-2:]) // 4))


def estimate_dose(movie, vacuum="auto", *, block: int | None = None, flat_z: float = 3.0,
                  brightness_tol: float = 0.02, name=None) -> DoseEstimate:
    """Electrons per pixel per frame, measured in vacuum (a movie or a single frame).

    ``vacuum='auto'`` sums the movie over time, cuts it into ``block``-sized squares (default
    32 px, smaller on frames under 128 px so that about 4 x 4 blocks fit) and
    takes each block's index of dispersion (variance/mean, a fitted plane removed): pure
    Poisson gives ~1, specimen structure pushes it above 1.  Blocks within ``flat_z``
    standard errors of 1 are flat; of those, the ones within ``brightness_tol`` of the
    brightest are vacuum, as in TEM the vacuum is never darker than the specimen.
    Failure mode: with no vacuum in view but a featureless specimen area (thick
    amorphous film, or too few electrons for the lattice to show) that area is taken
    as vacuum and the dose comes out low; with no flat block at all a DataValueError
    is raised.  Or give the region: ``(slice_y, slice_x)`` or a boolean (y, x) mask.
    """
    from .streaming import is_lazy, stream_sum

    source = source_label(movie, name)
    require_counts(movie, what="estimate_dose", name=name)
    # A lazy movie is summed over time block by block: only the (y, x) sum is ever in memory.
    arr, template = unwrap(movie, name=name, compute=not is_lazy(movie))
    require_image_data(arr, source=source, what="estimate_dose")
    n_frames = arr.shape[0] if arr.ndim == 3 else 1
    if is_lazy(movie):
        total = stream_sum(arr) if arr.ndim == 3 else np.asarray(arr, dtype=np.float64)
    else:
        total = arr.sum(0, dtype=np.float64) if arr.ndim == 3 else arr.astype(np.float64)
    notes, auto = [], isinstance(vacuum, str) and vacuum == "auto"
    # Pure shot noise gives variance/mean 1; read noise left after to_counts adds to it,
    # as the hyperspy variance model (gain_factor * value + gain_offset) says.
    model = "Signal.Noise_properties.Variance_linear_model"
    vm = template.metadata.get_item(model, None) if template is not None else None
    gf = 1.0 if vm is None else vm.get_item("gain_factor", 1.0)
    go = 0.0 if vm is None else vm.get_item("gain_offset", 0.0)

    def expected_dispersion(level):
        return gf + n_frames * go / np.maximum(level, 1e-300)
    if auto:
        block = _default_block(total.shape) if block is None else block
        if block < 4 or (total.shape[0] // block) * (total.shape[1] // block) < 2:
            raise ParameterError(f"block={block} leaves fewer than 2 blocks in a {total.shape} frame",
                                 source=source, hint="use a smaller block, e.g. block=16")
        mean, disp, se = _block_dispersion(total, block)
        flat = (disp - expected_dispersion(mean)) / se < flat_z
        if not flat.any():
            raise DataValueError(
                f"has no vacuum-like region: every {block}x{block} block shows structure (the "
                f"flattest has variance/mean {np.min(disp):.2f}; shot noise alone gives ~1 +- "
                f"{float(np.median(se)):.2f})", source=source,
                hint="give the vacuum region yourself (vacuum=(slice_y, slice_x)) or a known dose")
        # Grow the vacuum from the brightest flat block down, while each next block is as
        # bright as the blocks taken so far (within brightness_tol and 3 Poisson s.e.).
        order = np.argsort(mean, axis=None)[::-1]
        order = order[flat.ravel()[order]]
        taken = [order[0]]
        for i in order[1:]:
            pooled = mean.ravel()[taken].mean()
            if mean.ravel()[i] < pooled * (1 - brightness_tol) - 3 * np.sqrt(pooled) / block:
                break
            taken.append(i)
        chosen = np.zeros(mean.size, bool)
        chosen[taken] = True
        chosen = chosen.reshape(mean.shape)
        region = np.zeros(total.shape, bool)
        region[:chosen.shape[0] * block, :chosen.shape[1] * block] = np.kron(
            chosen, np.ones((block, block))).astype(bool)
        how = f"auto: the {len(taken)} flattest, brightest of {chosen.size} {block}px blocks"
        resolution = 3 / np.sqrt(mean.ravel()[taken].mean() * block * block) + brightness_tol
        if resolution > 0.05:
            warnings.warn(f"{source or 'the data'}: with {mean.ravel()[taken].mean():.3g} electrons per "
                          f"pixel in the time sum, blocks less than {resolution:.0%} darker than the "
                          "vacuum (or with faint structure) cannot be told from it: the dose may "
                          "be low by up to that much; sum more frames, use a larger block or give "
                          "the vacuum region", CalibrationWarning, stacklevel=2)
    elif isinstance(vacuum, tuple) and len(vacuum) == 2 and all(isinstance(s, slice) for s in vacuum):
        region = np.zeros(total.shape, bool)
        region[vacuum] = True
    else:
        region = np.asarray(vacuum)
        if region.dtype != bool or region.shape != total.shape:
            raise ParameterError(f"vacuum must be 'auto', (slice_y, slice_x) or a boolean mask of "
                                 f"shape {total.shape}", source=source)
    if region.sum() < 2:
        raise ParameterError("the vacuum region contains fewer than 2 pixels", source=source)
    how = how if auto else f"given region of {int(region.sum())} pixels"
    vals = total[region]
    dispersion = float(vals.var(ddof=1) / vals.mean()) if vals.mean() > 0 else float("inf")
    if not auto and dispersion > expected_dispersion(vals.mean()) + 0.1 + 5 * np.sqrt(2 / vals.size):
        warnings.warn(f"{source or 'the data'}: the vacuum region has variance/mean {dispersion:.2f}, "
                      "not ~1: it may contain specimen, so the dose may be wrong", CalibrationWarning,
                      stacklevel=2)
    dose = float(vals.sum() / (vals.size * n_frames))
    area, ftime = (pixel_area_A2(template), frame_time_s(template)) if template is not None else (None, None)
    per_area = None if area is None else dose / area
    rate = None if per_area is None or not ftime else per_area / ftime
    if template is not None and rate is None:
        notes.append("no dose per area or rate: pixel size (A/nm/pm) or frame time unknown")
    return DoseEstimate(dose, float(np.sqrt(vals.sum()) / (vals.size * n_frames)), per_area, rate,
                        region, dispersion, n_frames, how, notes)


def record_dose(signal, estimate: DoseEstimate):
    """Write the dose into *signal*'s temnb metadata (in place) and return the signal."""
    if not is_signal(signal):
        raise ParameterError("record_dose needs a hyperspy signal; an array has no metadata")
    md.set(signal, "dose_per_pixel", float(estimate.dose_per_pixel))
    if estimate.dose_per_area is not None:
        md.set(signal, "dose_per_area", float(estimate.dose_per_area))
    md.set(signal, "dose_method", f"vacuum region ({estimate.method})")
    return signal


# --------------------------------------------------------------------------- counts check
def _noise_dispersion(arr):
    """Noise variance / mean from frame differences, or from the structure-cancelling residual."""
    if arr.ndim == 3 and arr.shape[0] >= 2:
        a = arr[:17].astype(np.float64)
        var, mean = np.mean(np.diff(a, axis=0) ** 2) / 2, a.mean()
    else:
        f = (arr if arr.ndim == 2 else arr[0])[:1024, :1024].astype(np.float64)
        if min(f.shape) < 5:
            return None
        var, mean = np.mean(_residual(f)[1:-1, 1:-1] ** 2), f[1:-1, 1:-1].mean()
    return float(var / mean) if mean > 0 else None


def check_counts(data, *, name=None) -> CountsCheck:
    """Reasons the data may not be electron counts (cheap: the first frames or a sample)."""
    arr, template = unwrap(data, name=name, compute=False)
    if not isinstance(arr, np.ndarray):   # lazy: look at (and NaN-check) the first frames only
        arr, _ = unwrap(np.asarray(arr[:17] if arr.ndim == 3 else arr), name=source_label(data, name))
    flag = md.get(template, "counts") if template is not None else None
    problems, doubts, disp = [], [], None
    if flag is False:
        problems.append("the metadata say the values are detector units, not electron counts")
    n_neg = int(np.count_nonzero(arr < 0)) if arr.dtype.kind in "if" else 0
    if n_neg:
        problems.append(f"{n_neg} negative values (min {arr.min():.4g}): counts cannot be negative")
    # Measured whatever the metadata say, so a wrong conversion shows up in the number.
    disp = _noise_dispersion(arr)
    if flag is None:
        sample = arr.ravel()[:: max(1, arr.size // 1_000_000)]
        if arr.dtype.kind == "f" and np.any(sample != np.round(sample)):
            doubts.append("non-integer values: counted data are whole numbers of electrons")
        if disp is not None and not _DISPERSION_OK[0] <= disp <= _DISPERSION_OK[1]:
            doubts.append(f"noise variance / mean is {disp:.3g}, not ~1 as for Poisson counts "
                          "(detector units with a gain and an offset?)")
    return CountsCheck(flag, problems, doubts, disp, n_neg)


def require_counts(data, *, what: str = "this Poisson method", strict: bool = True, name=None):
    """Raise :class:`NotCountsError` unless *data* are (or look like) electron counts.

    Data marked ``counts=True`` pass at once; ``counts=False`` fails; unknown data are
    checked cheaply (negative values, non-integers, noise variance/mean far from 1).
    With ``strict=False`` the suggestive checks only warn (:class:`CountsWarning`).
    Returns the :class:`CountsCheck`.
    """
    source = source_label(data, name)
    check = check_counts(data, name=name)
    hint = "convert with temnb.to_counts(data) (it estimates gain and offset) or give gain/offset"
    if check.flag is True:
        return check
    if check.problems:
        raise NotCountsError(f"cannot be used by {what}: " + "; ".join(check.problems),
                             source=source, hint=hint)
    if check.doubts:
        text = f"may not be electron counts, which {what} needs: " + "; ".join(check.doubts)
        if strict:
            raise NotCountsError(text, source=source, hint=hint + ", or pass strict=False")
        warnings.warn(f"{source or 'the data'}: {text}", CountsWarning, stacklevel=2)
    return check
