"""The classic denoising filters, the baselines every learned denoiser is compared with.

Each takes a 2-D frame or a (time, y, x) movie -- a numpy array or a hyperspy
signal -- and returns the same kind; a signal keeps its axes (scale, units), its
title says which filter ran with which parameters, and ``metadata.temnb.counts``
becomes None because a filtered image is an estimate of the mean, not counts.
Spatial filters work frame by frame; :func:`gaussian_3d` and :func:`time_average`
also use time.  The Fourier-domain filters live in :mod:`temnb.classic.fourier`
and are re-exported here.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from ..core import metadata as md
from ..core.errors import ParameterError, TemnbError
from ..core.signals import require_movie
from ..io.calibration import pixel_size_angstrom
from ..io.counts import require_counts
from . import poisson as noise
from ..io.streaming import block_frames, is_lazy, map_frames
from .fourier import PAPER_LOWPASS_CUTOFF, BraggSpots, _finish, _prepare, bragg_mask, find_bragg_spots, lowpass

__all__ = ["gaussian", "gaussian_3d", "median", "adaptive_wiener", "lowpass", "bragg_mask",
           "find_bragg_spots", "BraggSpots", "anscombe_nlm", "anscombe_bm3d", "time_average",
           "FILTERS", "apply"]


def _float(arr):
    return arr.astype(np.float64 if arr.dtype == np.float64 else np.float32)


def _spatial(arr, value):
    """Per-axis parameter that leaves the time axis of a movie alone."""
    return (0, value, value) if arr.ndim == 3 else value


def _check_nonnegative(value, what, source, unit="pixels"):
    if isinstance(value, bool) or not np.isscalar(value) or not np.isfinite(value) or value < 0:
        raise ParameterError(f"{what}={value!r}: it must be a number of {unit} >= 0", source=source)


# --------------------------------------------------------------------------- smoothing
def gaussian(data, sigma=None, *, sigma_nm=None, name=None):
    """Gaussian blur of each frame, *sigma* in pixels (or *sigma_nm* via the calibration).

    The simplest denoiser: every pixel becomes a weighted mean of its neighbours,
    trading resolution (~2.35 sigma FWHM) for noise (down by ~1/(2 sqrt(pi) sigma)).
    """
    arr, template, source = _prepare(data, "gaussian", name=name)
    if (sigma is None) == (sigma_nm is None):
        raise ParameterError("give exactly one of sigma (pixels) and sigma_nm (nanometres)", source=source)
    if sigma_nm is not None:
        _check_nonnegative(sigma_nm, "sigma_nm", source, "nanometres")
        pixel = pixel_size_angstrom(template)
        if pixel is None:
            raise ParameterError(f"sigma_nm={sigma_nm} needs a length calibration of the image axes",
                                 source=source, hint="give sigma= in pixels instead")
        sigma, label = 10.0 * sigma_nm / pixel, f"{sigma_nm:g} nm"
    else:
        label = f"{sigma:g} px"
    _check_nonnegative(sigma, "sigma", source)
    out = ndimage.gaussian_filter(_float(arr), _spatial(arr, sigma), mode="reflect")
    return _finish(out, template, f"Gaussian sigma {label}")


def gaussian_3d(movie, sigma, sigma_time, *, name=None):
    """Gaussian blur in space (*sigma* px) and time (*sigma_time* frames) of a movie.

    Blurring along time averages neighbouring frames as well, so a static specimen
    gains dose without losing resolution; anything that moves gets smeared.
    """
    arr, template, source = _prepare(movie, "gaussian_3d", name=name)
    require_movie(arr, min_frames=2, source=source, what="gaussian_3d")
    _check_nonnegative(sigma, "sigma", source)
    _check_nonnegative(sigma_time, "sigma_time", source, "frames")
    out = _float(arr)   # a new array: filtered in place, which halves the memory on long movies
    ndimage.gaussian_filter(out, (sigma_time, sigma, sigma), mode="reflect", output=out)
    return _finish(out, template, f"Gaussian 3-D sigma {sigma:g} px, {sigma_time:g} frames",
                   reach=min(gaussian_reach(sigma_time), arr.shape[0] - 1))


def median(data, size, *, name=None):
    """Median of a *size* x *size* window in each frame: robust to hot pixels, blocky at low dose.

    With most pixels 0 or 1 at 0.45 e-/px a small median is 0 almost everywhere;
    it needs windows of ~5 px or more before it shows any structure.
    """
    arr, template, source = _prepare(data, "median", name=name)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ParameterError(f"size={size!r}: it must be a whole number of pixels >= 1", source=source)
    # Frame by frame: scipy 1.17's rank filters reject a (1, size, size) window on 3-D input.
    frames = _float(arr).reshape((-1,) + arr.shape[-2:])
    out = np.stack([ndimage.median_filter(f, size=int(size), mode="reflect") for f in frames])
    out = out.reshape(arr.shape)
    return _finish(out, template, f"median {size} px")


def _disk(radius):
    r = int(np.floor(radius))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (y * y + x * x <= radius * radius).astype(np.float64)


def adaptive_wiener(data, radius, noise_variance=None, *, name=None):
    """Local Wiener filter: shrink each pixel toward the mean of a disk of *radius* px.

    ``out = mean + max(var - noise, 0) / var * (x - mean)`` with the local mean and
    variance over the disk, so flat regions are averaged and high-contrast ones kept.
    The noise variance is *noise_variance* when given; for counts (metadata
    ``counts=True``, or a non-negative integer array) it is the Poisson variance,
    the local mean itself; otherwise the mean of the local variances (the rule of
    ``scipy.signal.wiener``).
    """
    arr, template, source = _prepare(data, "adaptive_wiener", name=name)
    _check_nonnegative(radius, "radius", source)
    if noise_variance is not None:
        _check_nonnegative(noise_variance, "noise_variance", source, "squared intensity units")
    x = arr.astype(np.float64)
    kernel = _disk(radius)
    kernel /= kernel.sum()
    if arr.ndim == 3:
        kernel = kernel[None]
    mean = ndimage.correlate(x, kernel, mode="reflect")
    var = np.maximum(ndimage.correlate(x * x, kernel, mode="reflect") - mean * mean, 0.0)
    if template is not None:
        counts = md.get(template, "counts") is True
    else:
        counts = arr.dtype.kind in "biu" and (arr.size == 0 or arr.min() >= 0)
    if noise_variance is not None:
        noise_var, rule = float(noise_variance), f"noise {noise_variance:g}"
    elif counts:
        noise_var, rule = mean, "Poisson noise"
    else:
        axes = (-2, -1)                      # one estimate per frame of a movie
        noise_var, rule = var.mean(axis=axes, keepdims=True), "estimated noise"
    gain = np.maximum(var - noise_var, 0.0) / np.maximum(var, np.finfo(float).tiny)
    out = _float(mean + gain * (x - mean)) if arr.dtype == np.float64 else (mean + gain * (x - mean)).astype(np.float32)
    return _finish(out, template, f"adaptive Wiener radius {radius:g} px ({rule})")


# --------------------------------------------------------------------------- Anscombe + denoiser
def _anscombe_denoise(data, what, denoise_frame, title, name):
    """Anscombe transform, a Gaussian-noise denoiser on each frame, exact unbiased inverse."""
    arr, template, source = _prepare(data, what, name=name)
    require_counts(template if template is not None else arr, what=what, strict=False, name=source)
    transformed = noise.anscombe(arr).astype(np.float64)
    if transformed.ndim == 2:
        estimate = denoise_frame(transformed)
    else:
        estimate = np.stack([denoise_frame(frame) for frame in transformed])
    out = noise.inverse_anscombe(estimate, method="exact_unbiased")
    return _finish(out.astype(np.float64 if arr.dtype == np.float64 else np.float32), template, title)


def anscombe_nlm(data, h: float = 0.6, patch_size: int = 5, patch_distance: int = 6, *, name=None):
    """Anscombe transform, non-local means (skimage, sigma=1, fast mode), exact unbiased inverse.

    Non-local means averages pixels whose surrounding patches look alike, wherever
    they are, so a periodic lattice is averaged over many unit cells.  *h* is the
    patch-distance cut-off.  Note: at 0.45 e-/px the Anscombe variance is ~0.43, not 1,
    so with sigma=1 almost every patch counts as similar and NLM tends to a plain mean
    over the search window (PSNR then barely depends on *h*) -- see notebook 03.
    """
    from skimage.restoration import denoise_nl_means

    def frame(a):
        return denoise_nl_means(a, h=h, sigma=1.0, patch_size=int(patch_size),
                                patch_distance=int(patch_distance), fast_mode=True)

    title = f"Anscombe + NLM h {h:g}, patch {patch_size}, distance {patch_distance}"
    return _anscombe_denoise(data, "anscombe_nlm", frame, title, name)


def anscombe_bm3d(data, sigma: float = 1.0, profile: str = "np", *, name=None):
    """Anscombe transform, BM3D (the reference ``bm3d`` package), exact unbiased inverse.

    BM3D stacks similar blocks and shrinks them jointly in a 3-D transform domain.
    *sigma* is the noise standard deviation after the transform (1 in theory; lower
    at 0.45 e-/px, where the Anscombe variance is ~0.43); *profile* is bm3d's
    ('np' normal, 'refilter', 'lc' fast).
    """
    try:
        import bm3d
    except ImportError:
        raise TemnbError("anscombe_bm3d needs the 'bm3d' package, which is not installed",
                         hint="pip install 'bm3d>=4.0'") from None
    _check_nonnegative(sigma, "sigma", None, "Anscombe units")

    def frame(a):
        return np.asarray(bm3d.bm3d(a, sigma_psd=float(sigma), profile=profile), dtype=np.float64)

    return _anscombe_denoise(data, "anscombe_bm3d", frame, f"Anscombe + BM3D sigma {sigma:g} ({profile})",
                             name)


# --------------------------------------------------------------------------- time
def time_average(movie, n: int, *, name=None):
    """Centred running mean over *n* frames; same number of frames as the input.

    Inside the movie each frame becomes the mean of the *n* frames around it
    (:func:`temnb.classic.poisson.time_average` with ``running=True``); the first and last
    ``n // 2`` frames average the frames that exist, so they are noisier.
    """
    arr, template, source = _prepare(movie, "time_average", name=name)
    require_movie(arr, min_frames=1, source=source, what="time_average")
    t = arr.shape[0]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= t:
        raise ParameterError(f"n={n!r}: it must be a whole number of frames from 1 to {t}", source=source)
    before = (n - 1) // 2
    inner = noise.time_average(arr, int(n), running=True).astype(np.float64)
    out = np.empty(arr.shape, dtype=np.float64)
    out[before:before + len(inner)] = inner
    for i in list(range(before)) + list(range(before + len(inner), t)):
        out[i] = arr[max(0, i - before): i - before + n].mean(axis=0)
    return _finish(_float(out) if arr.dtype.kind == "f" else out.astype(np.float32), template,
                   f"running mean of {n} frames", reach=n // 2)


# --------------------------------------------------------------------------- registry
# Defaults for frames at ~0.25 Å/px (columns ~10 px apart, ~4 px wide), chosen on
# temnb.simulation.synthetic movies with that geometry for the best PSNR that still resolves the
# columns.  The low-pass is the paper's, in 1/Å (it needs a length calibration: pass cutoff_px= for
# an uncalibrated array); the Bragg mask works in FFT pixels.  Tune them for your dose: notebook 03.
FILTERS = {
    "gaussian": functools.partial(gaussian, sigma=2.0),
    "gaussian_3d": functools.partial(gaussian_3d, sigma=1.5, sigma_time=2.0),
    "median": functools.partial(median, size=5),
    "adaptive_wiener": functools.partial(adaptive_wiener, radius=3),
    "lowpass": functools.partial(lowpass, cutoff=PAPER_LOWPASS_CUTOFF),   # 1/Å: the paper's information limit
    "bragg_mask": functools.partial(bragg_mask, threshold=30.0, radius=3.0),
    "anscombe_nlm": functools.partial(anscombe_nlm, h=0.6, patch_size=5, patch_distance=6),
    "anscombe_bm3d": functools.partial(anscombe_bm3d, sigma=1.0, profile="np"),
    "time_average": functools.partial(time_average, n=5),
}


def temporal_reach(name: str, **params) -> int:
    """Frames on each side of a frame that the filter *name* reads with *params* (0: frame by frame)."""
    keywords = {**FILTERS[name].keywords, **params}
    if name == "gaussian_3d":
        return gaussian_reach(keywords["sigma_time"])
    if name == "time_average":
        return int(keywords["n"]) // 2
    return 0


def apply(name: str, data, *, out=None, overwrite: bool = False, progress: bool = True, **params):
    """Run the filter called *name* from :data:`FILTERS`; *params* override its defaults.

    A lazy movie (``temnb.load(path, lazy=True)``) is filtered in time blocks with the overlap the
    filter's temporal reach needs (:mod:`temnb.io.streaming`): the memory stays that of a few blocks
    whatever the movie's length, and each frame comes out as the in-memory call gives it.  The result
    is lazy, or written to *out* (``.hspy``/``.mrc``) block by block and returned loaded lazily.
    ``bragg_mask`` on a lazy movie finds its spots on the first block (pass ``spots=`` to choose).
    With an in-memory movie, *out* saves the result (:func:`temnb.save`) and returns it.
    """
    if name not in FILTERS:
        raise ParameterError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")
    preset = FILTERS[name]
    defaults = dict(preset.keywords)
    # An alternative way of giving the same setting replaces the default rather than clashing with it.
    for given, dropped in (("cutoff_px", "cutoff"), ("sigma_nm", "sigma")):
        if given in params and name in ("lowpass", "gaussian"):
            defaults.pop(dropped, None)
    keywords = {**defaults, **params}
    if is_lazy(data):
        reach = temporal_reach(name, **params)
        if name == "bragg_mask" and keywords.get("spots") is None:
            # Spots from the whole movie would need all of it in memory; the first block shows the lattice.
            first = data.inav[:min(int(data.axes_manager.navigation_size or 1), block_frames(
                data.axes_manager.signal_shape, reach))]
            keywords["spots"] = find_bragg_spots(np.asarray(first.data), n_spots=keywords.get("n_spots"),
                                                 threshold=keywords["threshold"])
        return map_frames(lambda block: preset.func(block, **keywords), data, reach=reach, out=out,
                          overwrite=overwrite, progress=progress, desc=name)
    result = preset.func(data, **keywords)
    if out is not None:
        from ..io.files import save

        save(result, out, overwrite=overwrite)
    return result


# --------------------------------------------------------------------------- scores
def gaussian_reach(sigma_time: float, truncate: float = 4.0) -> int:
    """How many frames on each side a temporal Gaussian of *sigma_time* frames reads
    (scipy.ndimage truncates at ``truncate`` sigma)."""
    return int(truncate * float(sigma_time) + 0.5)
