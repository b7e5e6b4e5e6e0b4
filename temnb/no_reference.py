"""Judging a denoised movie without ground truth: uMSE / uPSNR, contrast, power spectra.

Real 0.45 e-/px data have no clean image to compare with, so PSNR (temnb.metrics)
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
  between them: correct drift first (temnb.align).  A steady drift makes uMSE too
  LOW (uPSNR too high, more so for larger gaps); using both neighbours in turn (see
  :func:`umse`) keeps a single event's bias small;
- *spatial* references are the other pixels of 2 x 2 blocks, so the image must be
  smooth on the scale of one pixel (oversampled);
- the denoiser must not have seen the reference noise (see :func:`umse`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._signals import require_image_data, require_movie, source_label, unwrap
from .errors import DataShapeError, DataValueError, ParameterError, TemnbWarning
from .fourier_filters import _pixel_size_angstrom

__all__ = ["UMSE", "umse", "umse_from_references", "umse_spatial", "split_parity", "upsnr",
           "michelson_contrast", "line_profile", "power_spectrum", "radial_profile",
           "spectrum_line_scan"]

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


def _float(data, what):
    """*data* as a float64 array; *what* names it in errors when it is an unnamed array."""
    arr, _ = unwrap(data, name=source_label(data) or what)
    return arr.astype(np.float64)


def umse_from_references(denoised, a, b, c) -> float:
    """``mean((a - denoised)^2) - mean((b - c)^2) / 2`` for arrays of one shape (see module doc)."""
    f, a, b, c = (_float(x, n) for x, n in ((denoised, "the denoised image"), (a, "reference a"),
                                            (b, "reference b"), (c, "reference c")))
    if not (f.shape == a.shape == b.shape == c.shape):
        raise DataShapeError(f"shapes differ: denoised {f.shape}, a {a.shape}, b {b.shape}, c {c.shape}",
                             hint="the references must be images of the same field of view")
    return float(np.mean((a - f) ** 2) - 0.5 * np.mean((b - c) ** 2))


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
    f = _float(denoised, "the denoised movie")
    if f.shape != y.shape:
        raise DataShapeError(f"the denoised movie has shape {f.shape}, the noisy one {y.shape}",
                             hint="pass the denoised movie and the noisy movie it was made from")
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
    f = _float(denoised_sub, "the denoised sub-image")
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


def upsnr(denoised, noisy, *, peak=None, mode: str = "temporal", gap: int = 1, sub=(0, 0)) -> float:
    """Unsupervised PSNR in dB: ``10 log10(peak^2 / uMSE)`` with uMSE from :func:`umse`.

    *peak* defaults to the range (max - min) of *denoised*: there is no clean image
    (temnb.metrics.psnr takes the clean range), and the noisy range is mostly noise.
    Give the same *peak* to compare methods fairly.  The mean uMSE over frames is
    used (not the mean of per-frame uPSNRs).  Returns inf, with a warning, when the
    uMSE is <= 0: the error is too small to measure against this much noise.
    """
    result = umse(denoised, noisy, mode=mode, gap=gap, sub=sub)
    if peak is None:
        f = _float(denoised, "the denoised data")
        peak = float(f.max() - f.min())
        if not peak > 0:
            raise DataValueError("the denoised data are flat (max = min), so there is no peak",
                                 hint="pass peak= explicitly")
    elif not (np.isfinite(peak) and peak > 0):
        raise ParameterError(f"peak={peak!r}: it must be a positive number")
    if result.value <= 0:
        warnings.warn(f"uMSE = {result.value:.3g} <= 0: the error cannot be resolved from the noise in "
                      f"{len(result.per_frame)} frames; uPSNR reported as inf", TemnbWarning, stacklevel=2)
        return float("inf")
    return float(10.0 * np.log10(peak ** 2 / result.value))


# --------------------------------------------------------------------------- contrast and profiles
def michelson_contrast(profile) -> float:
    """``(max - min) / (max + min)`` of a line profile (array or Signal1D) of intensities >= 0."""
    p = _float(profile, "the profile")
    if p.size < 2:
        raise DataShapeError(f"the profile has {p.size} value(s); contrast needs at least 2")
    lo, hi = float(p.min()), float(p.max())
    if lo < 0 or hi + lo <= 0:
        raise DataValueError(f"the profile runs from {lo:.3g} to {hi:.3g}; Michelson contrast needs "
                             "intensities >= 0 that are not all zero",
                             hint="use counts or intensities, not a background-subtracted profile")
    return (hi - lo) / (hi + lo)


def _to_pixels(template, point, what):
    """(row, col) pixel coordinates of *point* given as (y, x) in the signal's axis units."""
    try:
        y, x = (float(v) for v in point)
    except (TypeError, ValueError):
        raise ParameterError(f"{what}={point!r}: give two numbers (y, x)") from None
    if template is None:
        return y, x
    ax_x, ax_y = template.axes_manager.signal_axes
    return (y - ax_y.offset) / ax_y.scale, (x - ax_x.offset) / ax_x.scale


def line_profile(image, start, end, *, width: int = 1, order: int = 1):
    """Intensity along the line *start* -> *end* (both ends included), averaged over *width* pixels.

    Points are (y, x): pixels (row, column) for an array; the signal's axis units
    (e.g. nm, with its offsets) for a signal.  Uses skimage.measure.profile_line
    (about one sample per pixel).  Returns an array, or for a signal a Signal1D whose
    axis is the distance along the line in the image's units.  A movie gives one
    profile per frame.
    """
    from skimage.measure import profile_line

    arr, template = unwrap(image)
    require_image_data(arr, source=source_label(image), what="a line profile")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ParameterError(f"width={width!r}: the line width is a whole number of pixels >= 1")
    src = _to_pixels(template, start, "start")
    dst = _to_pixels(template, end, "end")
    h, w = arr.shape[-2:]
    for name, (r, c) in (("start", src), ("end", dst)):
        if not (-0.5 <= r <= h - 0.5 and -0.5 <= c <= w - 0.5):
            raise ParameterError(f"{name} point is at pixel (row {r:.1f}, column {c:.1f}), outside the "
                                 f"{h} x {w} image", hint="give (y, x) in the image's axis units")
    frames = arr.reshape((-1, h, w)).astype(np.float64)
    prof = np.stack([profile_line(fr, src, dst, linewidth=width, order=order, mode="reflect")
                     for fr in frames])
    prof = prof[0] if arr.ndim == 2 else prof
    if template is None:
        return prof
    import hyperspy.api as hs

    ax_x, ax_y = template.axes_manager.signal_axes
    length = np.hypot((dst[0] - src[0]) * ax_y.scale, (dst[1] - src[1]) * ax_x.scale)
    out = hs.signals.Signal1D(prof)
    axis = out.axes_manager.signal_axes[0]
    axis.name, axis.units, axis.offset = "distance", ax_x.units, 0.0
    axis.scale = length / max(prof.shape[-1] - 1, 1)
    if arr.ndim == 3:
        nav, src_nav = out.axes_manager.navigation_axes[0], template.axes_manager.navigation_axes[0]
        for attr in ("name", "units", "scale", "offset"):
            setattr(nav, attr, getattr(src_nav, attr))
    out.metadata.General.title = f"line profile of {template.metadata.General.title}".strip()
    return out


# --------------------------------------------------------------------------- power spectrum
def power_spectrum(image, *, window: str | None = "hann", log: bool = True):
    """|FFT|^2 of a frame (centred, k = 0 in the middle); a movie gives the mean over frames.

    The frame's mean is subtracted and a Hann *window* applied (None: no window), so
    the wrap-around edges do not paint a cross through the spectrum.  Averaging
    per-frame spectra (not the FFT of the mean) keeps the lattice spots even when the
    movie drifts.  ``log=True`` returns ``log(1 + power)``.  For a signal with a
    length calibration the result is a Signal2D with reciprocal axes in 1/nm
    (1/<unit> otherwise, 1/px without units); for an array, an array.
    """
    arr, template = unwrap(image)
    require_image_data(arr, source=source_label(image), what="a power spectrum")
    h, w = arr.shape[-2:]
    if window is None or window == "none":
        win = np.ones((h, w))
    elif window == "hann":
        win = np.outer(np.hanning(h), np.hanning(w))
    else:
        raise ParameterError(f"window={window!r}: use 'hann' or None")
    power = np.zeros((h, w))
    frames = arr.reshape((-1, h, w))
    for frame in frames:
        frame = frame.astype(np.float64)
        power += np.abs(np.fft.fftshift(np.fft.fft2((frame - frame.mean()) * win))) ** 2
    power /= len(frames)
    if log:
        power = np.log1p(power)
    if template is None:
        return power
    import hyperspy.api as hs

    pixel_A = _pixel_size_angstrom(template)
    sx, sy = template.axes_manager.signal_axes
    out = hs.signals.Signal2D(power)
    for ax, n, src in zip(out.axes_manager.signal_axes, (w, h), (sx, sy)):
        if pixel_A is not None:
            step, units = src.scale * (pixel_A / sx.scale) / 10.0, "1/nm"   # pixel size in nm
        else:
            unit = str(src.units)
            step, units = src.scale, ("1/px" if unit in ("", "None", "<undefined>") else f"1/{unit}")
        ax.scale = 1.0 / (n * step)
        ax.offset = -(n // 2) * ax.scale
        ax.units, ax.name = units, f"k{src.name}" if src.name not in (None, "<undefined>") else "k"
    out.metadata.General.title = f"power spectrum of {template.metadata.General.title}".strip()
    out.metadata.set_item("Signal.quantity", "log(1 + power)" if log else "power")
    return out


def radial_profile(ps, *, bin_width: float = 1.0):
    """Azimuthal average of a centred power spectrum: ``(k, profile)`` arrays.

    *ps* from :func:`power_spectrum` (``log=False`` is better here: averaging the
    logarithm dilutes a few bright spots in a ring of noise).  k is in the spectrum's axis units (1/nm when
    calibrated) for a signal, FFT pixels from the centre for an array; bins are
    *bin_width* FFT pixels wide.  A ring of Bragg spots shows as a peak at 1/d.
    """
    arr, template = unwrap(ps)
    require_image_data(arr, source=source_label(ps), what="a radial profile", allow_movie=False)
    if not (np.isfinite(bin_width) and bin_width > 0):
        raise ParameterError(f"bin_width={bin_width!r}: use a positive number of FFT pixels")
    h, w = arr.shape
    y, x = np.indices((h, w))
    if template is None:
        ky, kx, step = y - h // 2, x - w // 2, 1.0
    else:
        ax_x, ax_y = template.axes_manager.signal_axes
        ky, kx = ax_y.offset + y * ax_y.scale, ax_x.offset + x * ax_x.scale
        step = min(ax_x.scale, ax_y.scale)
    k = np.hypot(ky, kx)
    bins = np.floor(k / (bin_width * step)).astype(int).ravel()
    counts = np.bincount(bins)
    sums = np.bincount(bins, weights=arr.astype(np.float64).ravel())
    keep = counts > 0
    centres = (np.arange(len(counts)) + 0.5) * bin_width * step
    return centres[keep], sums[keep] / counts[keep]


def spectrum_line_scan(ps, k_start, k_end, *, width: int = 1):
    """Line profile across a power spectrum, e.g. through a row of Bragg spots.

    *k_start*, *k_end* are (ky, kx) from the centre: in the spectrum's units (1/nm)
    for a signal from :func:`power_spectrum`, in FFT pixels for an array.
    """
    arr, template = unwrap(ps)
    require_image_data(arr, source=source_label(ps), what="a spectrum line scan", allow_movie=False)
    if template is not None:
        return line_profile(ps, k_start, k_end, width=width)
    h, w = arr.shape
    centre = np.array([h // 2, w // 2], dtype=float)
    return line_profile(arr, tuple(np.asarray(k_start, float) + centre),
                        tuple(np.asarray(k_end, float) + centre), width=width)
