"""Drift correction for low-dose movies: estimate the shift of every frame, then undo it.

At 0.45 e-/px a raw frame is mostly empty pixels and single electrons, so its
cross-correlation with anything is dominated by shot noise.  Each frame is
therefore pre-denoised first (a Gaussian blur by default, or any callable such as
a trained network) and only then registered with
:func:`skimage.registration.phase_cross_correlation` (the upsampled-DFT method of
Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33, 156 (2008)) to a fraction of a
pixel.  Shifts are in pixels, (row, column) = (down, right), and are the shift to
APPLY to each frame to align it (the opposite of the specimen's drift).

>>> aligned, drift = align(movie)          # or: drift = estimate_drift(movie)
>>> drift.plot()                           #     aligned = apply_drift(movie, drift)
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..core import metadata as md
from ..core.errors import DataShapeError, ParameterError, TemnbWarning
from ..core.signals import require_movie, rewrap, source_label, unwrap
from ..io.calibration import pixel_size_angstrom

__all__ = ["Drift", "estimate_drift", "apply_drift", "align"]

_REFERENCES = ("mean", "first", "previous")


@dataclass
class Drift:
    """Per-frame shifts that align a movie.

    ``shifts_px`` (T, 2): the (row, column) shift in pixels to apply to each frame;
    ``errors`` (T,): skimage's registration error of each frame (0 = perfect match,
    1 = no match); ``time``: the frame times (seconds when the movie says so, else
    the frame index) with ``time_units``; ``pixel_size_A``: Å per pixel or None.
    """

    shifts_px: np.ndarray
    errors: np.ndarray
    reference: str
    method: dict = field(default_factory=dict)
    pixel_size_A: float | None = None
    time: np.ndarray | None = None
    time_units: str = "frame"

    def __len__(self) -> int:
        return len(self.shifts_px)

    @property
    def shifts_A(self) -> np.ndarray:
        """The shifts in Å (needs a length calibration of the movie)."""
        if self.pixel_size_A is None:
            raise ParameterError("the movie had no length calibration, so the drift is known only in pixels",
                                 hint="use drift.shifts_px, or calibrate the movie's axes before estimating")
        return self.shifts_px * self.pixel_size_A

    @property
    def specimen_drift_px(self) -> np.ndarray:
        """How far the specimen moved (the opposite of the correcting shift), pixels."""
        return -self.shifts_px

    def as_dict(self) -> dict:
        """Plain-Python summary (what is written to ``metadata.temnb.drift_correction``)."""
        return {"shifts_px": self.shifts_px.tolist(), "errors": self.errors.tolist(),
                "reference": self.reference, "pixel_size_A": self.pixel_size_A, **self.method}

    def plot(self, ax=None):
        """Correcting shift (row, column) against time; in Å when calibrated. Returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3))
        t = np.arange(len(self)) if self.time is None else self.time
        scale, unit = (1.0, "px") if self.pixel_size_A is None else (self.pixel_size_A, "Å")
        ax.plot(t, self.shifts_px[:, 0] * scale, ".-", label="row (down)")
        ax.plot(t, self.shifts_px[:, 1] * scale, ".-", label="column (right)")
        ax.set_xlabel("frame" if self.time_units == "frame" else f"time ({self.time_units})")
        ax.set_ylabel(f"correcting shift ({unit})")
        ax.set_title(f"drift correction (reference: {self.reference})")
        ax.legend()
        return ax


# --------------------------------------------------------------------------- helpers
_FEWEST_DRIFT_FRAMES = 3
# skimage's registration error sqrt(1 - peak^2 / norm): 0.996 on frames of pure shot noise at 0.45 e-/px,
# 0.85-0.92 on the sample movie's frames at 7.2 e-/px.
_NO_MATCH_ERROR = 0.99


def _time_axis(template, n):
    """Frame times from the signal's navigation axis, or (None, 'frame')."""
    if template is None or not template.axes_manager.navigation_axes:
        return None, "frame"
    ax = template.axes_manager.navigation_axes[0]
    units = str(ax.units)
    if units in ("", "None", "<undefined>"):
        return None, "frame"
    return np.asarray(ax.axis, dtype=float)[:n], units


def _prefilter(data, arr, prefilter, sigma_A, sigma_px, template, source):
    """The pre-denoised movie (float64) that is registered, and a description of the filter."""
    if callable(prefilter):
        out, _ = unwrap(prefilter(data), name="the prefilter's output")
        if out.shape != arr.shape:
            raise DataShapeError(f"the prefilter returned shape {out.shape}, not the movie's {arr.shape}",
                                 source=source, hint="the prefilter must return a movie of the same shape")
        return out.astype(np.float64), getattr(prefilter, "__name__", type(prefilter).__name__)
    if prefilter is None or prefilter == "none":
        return arr.astype(np.float64), "none"
    if prefilter != "gaussian":
        raise ParameterError(f"prefilter={prefilter!r}: use 'gaussian', None or a function movie -> movie")
    if sigma_A is not None:
        pixel = pixel_size_angstrom(template)
        if pixel is None:
            raise ParameterError(f"sigma_A={sigma_A} needs a length calibration, which this data has not",
                                 source=source, hint="give sigma_px= (the blur in pixels) instead")
        sigma_px = float(sigma_A) / pixel
    if not (np.isfinite(sigma_px) and sigma_px >= 0):
        raise ParameterError(f"sigma_px={sigma_px!r}: the Gaussian blur must be >= 0 pixels")
    smooth = ndimage.gaussian_filter(arr.astype(np.float64), sigma=(0, sigma_px, sigma_px))
    return smooth, f"gaussian sigma {sigma_px:.3g} px"


def _window(shape):
    # A Tukey (tapered cosine) window: the image border does not move with the specimen,
    # and without tapering its wrap-around edge in the FFT pulls every estimate toward
    # zero shift.  Tapering only the outer 12.5 % keeps most of the (few) electrons.
    def tukey(n, alpha=0.25):
        # scipy.signal.windows.tukey, written out: importing scipy.signal takes seconds.
        x = np.linspace(0.0, 1.0, n)
        w = np.ones(n)
        edge = x < alpha / 2
        w[edge] = 0.5 * (1 + np.cos(2 * np.pi / alpha * (x[edge] - alpha / 2)))
        w[edge[::-1]] = w[edge][::-1]
        return w

    return np.outer(tukey(shape[0]), tukey(shape[1]))


def _register(ref, mov, window, upsample, max_shift):
    """(shift, error) registering *mov* onto *ref* (both pre-denoised frames)."""
    a = (ref - ref.mean()) * window
    if max_shift is None:
        b = (mov - mov.mean()) * window
        from skimage.registration import phase_cross_correlation

        # normalization=None: plain cross-correlation.  Phase normalisation whitens the
        # spectrum and so gives the noise-only high frequencies full weight again.
        shift, error, _ = phase_cross_correlation(a, b, upsample_factor=upsample, normalization=None)
        return np.asarray(shift, dtype=float), float(error)
    # Bounded search: only the reference needs the taper.  Its tapered border is wider
    # than any allowed shift, so the frame's own wrap-around edge always meets zeros,
    # and the frame keeps all its electrons (about 15 % better precision at 0.45 e-/px).
    b = mov - mov.mean()
    if max_shift >= 0.125 * min(mov.shape):  # small frame: the taper is narrower than the bound
        b = b * window
    return _register_bounded(a, b, max_shift, upsample)


def _register_bounded(a, b, max_shift, upsample):
    """Cross-correlation peak within |shift| <= max_shift, refined by an upsampled DFT.

    The same method as skimage's (Guizar-Sicairos et al. 2008), with the whole-pixel
    peak searched only inside the bound: a crystal's correlation has a peak at every
    lattice vector, and at low dose noise decides which one is highest.
    """
    spec = np.fft.fft2(a) * np.conj(np.fft.fft2(b))
    cc = np.fft.ifft2(spec).real
    ny, nx = cc.shape
    ky = np.fft.fftfreq(ny) * ny
    kx = np.fft.fftfreq(nx) * nx
    allowed = np.hypot(ky[:, None], kx[None, :]) <= max_shift
    iy, ix = np.unravel_index(int(np.argmax(np.where(allowed, cc, -np.inf))), cc.shape)
    shift = np.array([ky[iy], kx[ix]])
    if upsample > 1:
        # Evaluate the correlation on a 1/upsample grid over +-0.75 px around the peak
        # by a matrix DFT of the cross-power spectrum (cheap: a few dozen points).
        m = int(np.ceil(1.5 * upsample))
        offsets = (np.arange(m) - m // 2) / upsample
        rows = np.exp(2j * np.pi * np.outer(shift[0] + offsets, ky) / ny)
        cols = np.exp(2j * np.pi * np.outer(kx, shift[1] + offsets) / nx)
        fine = (rows @ (spec @ cols)).real  # this order: the big product is (n x n)(n x m)
        jy, jx = np.unravel_index(int(np.argmax(fine)), fine.shape)
        shift = shift + np.array([offsets[jy], offsets[jx]])
        peak = fine[jy, jx] / cc.size
    else:
        peak = cc[iy, ix]
    norm = np.sqrt(np.sum(a * a) * np.sum(b * b))
    error = float(np.sqrt(max(0.0, 1.0 - (peak / norm) ** 2))) if norm > 0 else 1.0
    return shift, error


_SHORTEST_SPACING_A = 2.0


def _auto_bound(arr):
    """0.45 x the shortest spacing of the strongest Bragg spots (pixels), or None (no lattice)."""
    from .fourier import find_bragg_spots

    # threshold 8: a frame-averaged noise spectrum hardly ever stands 8x above its median.
    spots = find_bragg_spots(arr, threshold=8.0)
    cycles = spots.pixels / np.array(spots.shape)                  # cycles per pixel, strongest first
    # Near Nyquist the radial median is ~0 on clean or smooth data, so anything there
    # "stands out"; a lattice sampled that finely could not be registered anyway.
    cycles = cycles[np.abs(cycles).max(axis=1) < 0.4][:4]
    if len(cycles) == 0:
        return None
    return float(0.45 / np.hypot(cycles[:, 0], cycles[:, 1]).max())


def _shift_frames(frames, shifts, order, mode):
    out = np.empty(frames.shape, dtype=np.float64)
    for t, (frame, s) in enumerate(zip(frames, shifts)):
        # Float input: on integer counts ndimage.shift would interpolate into the integer dtype.
        out[t] = ndimage.shift(frame.astype(np.float64), s, order=order, mode=mode, cval=0.0)
    return out


# --------------------------------------------------------------------------- public API
def estimate_drift(movie, *, prefilter="gaussian", sigma_A=None, sigma_px: float = 2.0,
                   reference: str = "mean", upsample_factor: int = 20, max_shift_px="auto",
                   smooth_frames: int | None = None, progress: bool = True) -> Drift:
    """Estimate the (row, column) shift that aligns each frame of a (T, H, W) movie.

    *prefilter*: ``'gaussian'`` (blur of *sigma_px* pixels, or *sigma_A* Å on a
    calibrated signal), None, or a function movie -> movie of the same shape (it is
    given the movie as passed in, so a network such as WCID can be used).
    *reference*:

    - ``'mean'`` (default): each frame is registered to the mean of the OTHER
      pre-denoised frames (leaving the frame out keeps its own noise from pulling its
      shift toward zero), then once more to the mean of the frames aligned by that
      first estimate, which is much sharper than the drift-blurred plain mean.
      The shifts are then centred (their mean is zero), i.e. frames are aligned to
      the average position, which keeps interpolation and cropping small.
    - ``'first'``: every frame to frame 0 (shift 0 for frame 0); one noisy reference.
    - ``'previous'``: each frame to the one before, shifts summed (frame 0 fixed).
      Follows large or changing structure, but errors accumulate like a random walk.

    *upsample_factor*: the shifts are found on a 1/upsample_factor pixel grid.

    *max_shift_px* bounds the search for each registration (pixels).  A crystal
    correlates with itself at every lattice vector, and at low dose the noise decides
    which of those peaks is highest, so an unbounded search jumps by lattice vectors.
    ``'auto'`` (default): 0.45 x the shortest lattice-plane spacing among the strongest
    Bragg spots of the frame-averaged power spectrum (:func:`temnb.classic.fourier.find_bragg_spots`),
    or, when no spot stands out and the movie is calibrated, 0.45 x 2 A (the shortest
    spacing lattices commonly show); a quarter of the frame without either.  None: unbounded
    (skimage's search).  Pass a number for drifts larger than the bound.  With
    ``'mean'`` the bound applies to each frame's offset from the average position.

    *smooth_frames*: an odd number of frames; when given, the shift trajectory is
    smoothed with a Savitzky-Golay filter (quadratic) over that many frames.  Stage
    drift is smooth in time while the per-frame photon noise is not, so this lowers
    the error by about sqrt(smooth_frames) for slow drift, but it blurs sudden jumps.

    Precision to expect (simulated lattice, 0.45 e-/px): about 0.3 px RMS per frame
    for 128 x 128 frames, 0.15 px for 256 x 256 (the error scales as 1/sqrt(electrons)).
    Frames are Tukey-windowed before the correlation.
    """
    from ..io.streaming import block_frames, is_lazy, time_blocks

    source = source_label(movie)
    lazy = is_lazy(movie)
    if lazy:   # a long movie on disk: read it block by block, several times, never all at once
        arr, template = movie.data, movie
    else:
        arr, template = unwrap(movie)
    require_movie(arr, min_frames=2, source=source, what="drift correction")
    if reference not in _REFERENCES:
        raise ParameterError(f"reference={reference!r}: use one of {', '.join(map(repr, _REFERENCES))}")
    if isinstance(upsample_factor, bool) or not isinstance(upsample_factor, (int, np.integer)) \
            or upsample_factor < 1:
        raise ParameterError(f"upsample_factor={upsample_factor!r}: use a whole number >= 1 (e.g. 20)")
    if isinstance(max_shift_px, str):
        if max_shift_px != "auto":
            raise ParameterError(f"max_shift_px={max_shift_px!r}: use 'auto', a number of pixels or None")
    elif max_shift_px is not None and not (np.isfinite(max_shift_px) and max_shift_px > 0):
        raise ParameterError(f"max_shift_px={max_shift_px!r}: use a positive number of pixels, "
                             "'auto' or None")
    if smooth_frames is not None and (isinstance(smooth_frames, bool)
                                      or not isinstance(smooth_frames, (int, np.integer))
                                      or smooth_frames < 3 or smooth_frames % 2 == 0):
        raise ParameterError(f"smooth_frames={smooth_frames!r}: use an odd whole number of frames "
                             ">= 3, or None")
    from tqdm.auto import tqdm

    n = int(arr.shape[0])
    if lazy:
        blocks = [(lo, hi) for lo, hi, _, _ in time_blocks(n, block_frames(arr.shape[1:], bytes_per_value=8))]

        def prefiltered():
            """(first frame, pre-denoised frames) block by block."""
            for lo, hi in blocks:
                part = movie.inav[lo:hi]
                values = np.asarray(arr[lo:hi])
                from ..core.signals import rewrap

                block = rewrap(values, part)
                yield lo, _prefilter(block, values, prefilter, sigma_A, sigma_px, template, source)[0]

        filter_label = _prefilter(movie.inav[:1], np.asarray(arr[:1]), prefilter, sigma_A, sigma_px, template,
                                  source)[1] if prefilter is not None and not callable(prefilter) else (
            "none" if prefilter in (None, "none") else getattr(prefilter, "__name__", type(prefilter).__name__))
        sample = np.asarray(arr[:blocks[0][1]])   # the lattice bound from the first block
    else:
        pre, filter_label = _prefilter(movie, arr, prefilter, sigma_A, sigma_px, template, source)

        def prefiltered():
            yield 0, pre

        sample = arr
    if max_shift_px == "auto":
        max_shift_px = _auto_bound(sample)
        pixel_A = pixel_size_angstrom(template) if template is not None else None
        if max_shift_px is None and pixel_A:
            # No Bragg spot stands out of the raw spectrum (a small crystal at 0.45 e-/px), but the
            # specimen is still a lattice: bound the search by 0.45 x 2 A, the shortest spacing
            # that metal and oxide lattices show in projection.
            max_shift_px = 0.45 * _SHORTEST_SPACING_A / pixel_A
        if max_shift_px is None:
            # Neither a lattice nor a calibration: still bound the search, at a quarter of the frame.
            # Unbounded, noise decides where the correlation peaks (+-90 px on 256^2 frames of pure noise).
            max_shift_px = min(arr.shape[1:]) / 4
    if n < _FEWEST_DRIFT_FRAMES:
        warnings.warn(f"{source}: drift from {n} frames: each frame is registered to one other noisy frame, so "
                      f"every shift carries the noise of two frames; use {_FEWEST_DRIFT_FRAMES} or more frames, "
                      "or check the result with drift.plot()", TemnbWarning, stacklevel=2)
    window = _window(arr.shape[1:])
    shifts = np.zeros((n, 2))
    errors = np.zeros(n)

    def to_mean(frame_blocks, desc):
        """Register each pre-denoised frame to the mean of the other frames of *frame_blocks()*, which
        yields (first frame, reference frames, pre-denoised frames): the same frames in pass 1, the
        frames aligned by pass 1 in pass 2 (a sharper mean; the frame itself still moves from scratch)."""
        blocks_now = list(frame_blocks()) if not lazy else None   # in memory: one block, made once
        again = (lambda: iter(blocks_now)) if blocks_now is not None else frame_blocks
        total = np.zeros(arr.shape[1:])
        for _, references, _ in again():
            total += references.sum(axis=0)
        bar = tqdm(total=n, desc=desc, unit="frame", disable=not progress, leave=False)
        for lo, references, frames in again():
            for i, frame in enumerate(frames):
                ref = (total - references[i]) / (n - 1)
                shifts[lo + i], errors[lo + i] = _register(ref, frame, window, upsample_factor, max_shift_px)
                bar.update()
        bar.close()

    def as_is():
        for lo, frames in prefiltered():
            yield lo, frames, frames

    def aligned():
        first_pass = shifts.copy()
        for lo, frames in prefiltered():
            yield lo, _shift_frames(frames, first_pass[lo:lo + len(frames)], order=3, mode="nearest"), frames

    def frame_pairs():
        """(t, frame t - 1, frame t) over the movie, block by block."""
        previous = None
        for lo, frames in prefiltered():
            for i, frame in enumerate(frames):
                if previous is not None:
                    yield lo + i, previous, frame
                previous = frame

    if reference == "mean" and not lazy:
        to_mean(as_is, "drift: pass 1")
        to_mean(aligned, "drift: pass 2")
        shifts -= shifts.mean(axis=0)
    elif reference == "mean":
        # Each pass reads its frames twice (the sum, then each frame against it): the pre-denoised and
        # the aligned blocks are computed once and kept on disk, not recomputed, nor held in memory.
        from ..io.streaming import BlockCache

        pre = BlockCache(prefiltered)
        to_mean(lambda: ((lo, frames, frames) for lo, frames in pre), "drift: pass 1")
        first_pass = shifts.copy()
        moved = BlockCache(lambda: ((lo, _shift_frames(frames, first_pass[lo:lo + len(frames)], order=3,
                                                       mode="nearest")) for lo, frames in pre))
        to_mean(lambda: ((lo, ref, frames) for (lo, ref), (_, frames) in zip(moved, pre)), "drift: pass 2")
        moved.close()
        pre.close()
        shifts -= shifts.mean(axis=0)
    elif reference == "first":
        first_frame = next(prefiltered())[1][0]
        for t, _, frame in tqdm(frame_pairs(), total=n - 1, desc="drift", unit="frame", disable=not progress,
                                leave=False):
            shifts[t], errors[t] = _register(first_frame, frame, window, upsample_factor, max_shift_px)
    else:
        for t, before, frame in tqdm(frame_pairs(), total=n - 1, desc="drift", unit="frame",
                                     disable=not progress, leave=False):
            step, errors[t] = _register(before, frame, window, upsample_factor, max_shift_px)
            shifts[t] = shifts[t - 1] + step

    if smooth_frames is not None:
        from scipy.signal import savgol_filter

        if smooth_frames > n:
            raise ParameterError(f"smooth_frames={smooth_frames} is longer than the movie ({n} frames)")
        shifts = savgol_filter(shifts, int(smooth_frames), 2, axis=0, mode="interp")
        if reference == "mean":
            shifts -= shifts.mean(axis=0)
    if float(np.median(errors[errors > 0] if np.any(errors > 0) else errors)) > _NO_MATCH_ERROR:
        warnings.warn(f"{source}: the frames do not correlate above their noise (median registration error "
                      f"{np.median(errors):.4f}; 1 = no match): there is no structure to register, so these "
                      "shifts are noise; denoise more before registering (sigma_px=, prefilter=), or leave the "
                      "movie unaligned", TemnbWarning, stacklevel=2)
    time, time_units = _time_axis(template, n)
    method = {"registration": "cross-correlation, upsampled DFT (skimage phase_cross_correlation)"
              if max_shift_px is None else
              f"cross-correlation within {max_shift_px:.3g} px, upsampled DFT",
              "prefilter": filter_label, "upsample_factor": int(upsample_factor),
              "max_shift_px": None if max_shift_px is None else float(max_shift_px),
              "smooth_frames": smooth_frames}
    return Drift(shifts_px=shifts, errors=errors, reference=reference, method=method,
                 pixel_size_A=pixel_size_angstrom(template), time=time, time_units=time_units)


def _crop_box(shifts, shape):
    """Rows/columns [r0, r1) x [c0, c1) that hold data in every shifted frame."""
    bounds = []
    for axis in (0, 1):
        s = shifts[:, axis]
        lo = int(np.ceil(max(s.max(), 0.0) - 1e-9))
        hi = int(np.floor(shape[axis] - 1 + min(s.min(), 0.0) + 1e-9)) + 1
        if hi - lo < 2:
            raise ParameterError(f"the drift ({np.ptp(s):.1f} px along axis {axis}) leaves no region "
                                 "that every frame covers", hint="use crop=False")
        bounds.append((lo, hi))
    return bounds


def _record(sig, drift, order, mode, crop):
    record = {**drift.as_dict(), "interpolation_order": int(order), "mode": mode, "crop": bool(crop)}
    md.set(sig, "drift_correction", record)


def apply_drift(movie, drift, *, order: int = 1, mode: str = "nearest", crop: bool = False, out=None,
                overwrite: bool = False, progress: bool = True):
    """The movie with each frame shifted by ``drift.shifts_px`` (a Drift or a (T, 2) array).

    Frames are moved with :func:`scipy.ndimage.shift`, by default with linear
    interpolation (``order=1``).  Why not a Fourier shift: on sparse counts a Fourier
    shift rings (negative values, halos around single electrons) and wraps one edge
    onto the other; linear interpolation weights sum to one, so the local mean number
    of electrons is kept and values stay >= 0.  It does average neighbouring pixels,
    which lowers the variance below the Poisson value (by up to 2x at half-pixel
    shifts): for methods that rely on exact Poisson statistics use ``order=0``
    (whole-pixel shifts; counts stay integer and Poisson, the dtype is kept).

    *mode*: ``'nearest'`` repeats the edge pixels into the uncovered border,
    ``'constant'`` fills it with 0.  ``crop=True`` keeps only the region that every
    frame covers (a signal's axis offsets are updated).  The input is never modified;
    a signal comes back as a signal with its calibration and
    ``metadata.temnb.drift_correction`` recording the shifts and the method.

    A lazy movie is shifted block by block (:mod:`temnb.io.streaming`; bounded memory); the result
    is lazy, or written to *out* (``.hspy``/``.mrc``) and returned loaded lazily.
    """
    from ..io.streaming import is_lazy, map_frames

    target = out   # `out` names the shifted frames below
    source = source_label(movie)
    if is_lazy(movie):
        require_movie(movie.data, min_frames=2, source=source, what="drift correction")
        shifts = np.asarray(drift.shifts_px if isinstance(drift, Drift) else drift, dtype=float)
        n = movie.data.shape[0]
        if shifts.shape != (n, 2):
            raise DataShapeError(f"the drift has shifts of shape {shifts.shape}, but the movie has {n} frames "
                                 f"(needs ({n}, 2))", source=source, hint="estimate the drift on this same movie")

        def shift_block(block, first):
            return apply_drift(block, shifts[first:first + block.data.shape[0]], order=order, mode=mode)

        result = map_frames(shift_block, movie, pass_index=True, progress=progress, desc="drift correction")
        if not isinstance(drift, Drift):
            drift = Drift(shifts_px=shifts, errors=np.full(n, np.nan), reference="given",
                          method={"registration": "shifts given by the caller"})
        if crop:
            box = _crop_box(np.round(shifts) if order == 0 else shifts, movie.data.shape[1:])
            result = result.isig[box[1][0]:box[1][1], box[0][0]:box[0][1]]
        _record(result, drift, order, mode, crop)
        if target is not None:
            from ..io.files import load
            from ..io.streaming import write_lazy

            return load(write_lazy(result, target, overwrite=overwrite), lazy=True)
        return result
    arr, template = unwrap(movie)
    require_movie(arr, min_frames=2, source=source, what="drift correction")
    if mode not in ("nearest", "constant"):
        raise ParameterError(f"mode={mode!r}: use 'nearest' (repeat the edge) or 'constant' (fill with 0)")
    if isinstance(order, bool) or order not in (0, 1, 2, 3, 4, 5):
        raise ParameterError(f"order={order!r}: the interpolation order is a whole number 0..5 "
                             "(0 whole pixels, 1 linear, 3 cubic spline)")
    if not isinstance(drift, Drift):
        try:
            shifts = np.asarray(drift, dtype=float)
        except (TypeError, ValueError):
            raise ParameterError("drift must be a Drift (from estimate_drift) or a (frames, 2) "
                                 "array") from None
        drift = Drift(shifts_px=shifts, errors=np.full(len(shifts), np.nan), reference="given",
                      method={"registration": "shifts given by the caller"})
    shifts = np.asarray(drift.shifts_px, dtype=float)
    if shifts.shape != (arr.shape[0], 2):
        raise DataShapeError(f"the drift has shifts of shape {shifts.shape}, but the movie has "
                             f"{arr.shape[0]} frames (needs ({arr.shape[0]}, 2))", source=source,
                             hint="estimate the drift on this same movie")
    if not np.all(np.isfinite(shifts)):
        raise ParameterError("the drift contains NaN or infinite shifts")
    if order == 0:
        whole = np.round(shifts)
        out = np.stack([ndimage.shift(f, s, order=0, mode=mode, cval=0) for f, s in zip(arr, whole)])
        out = out.astype(arr.dtype, copy=False)
    else:
        out = _shift_frames(arr, shifts, order, mode)
        if order > 1 and arr.dtype.kind in "iu" and arr.min() >= 0:
            np.clip(out, 0, None, out=out)  # spline overshoot would give negative counts
        out = out.astype(np.float64 if arr.dtype == np.float64 else np.float32)
    box = _crop_box(np.round(shifts) if order == 0 else shifts, arr.shape[1:]) if crop else None
    if template is None:
        return out if box is None else out[:, box[0][0]:box[0][1], box[1][0]:box[1][1]]
    sig = rewrap(out, template, title=f"{template.metadata.General.title} (drift corrected)".strip())
    if order != 0 and md.get(sig, "counts") is not None:
        md.set(sig, "counts", None)  # interpolated values are no longer whole electrons
        if sig.metadata.has_item("Signal.Noise_properties.Variance_linear_model"):
            del sig.metadata.Signal.Noise_properties.Variance_linear_model
    if box is not None:
        # isig takes (x, y) and updates the axes' offsets.
        sig = sig.isig[box[1][0]:box[1][1], box[0][0]:box[0][1]]
    _record(sig, drift, order, mode, crop)
    md.add_note(sig, f"drift corrected ({drift.reference} reference, order {order})")
    if target is not None:
        from ..io.files import save

        save(sig, target, overwrite=overwrite)
    return sig


def align(movie, *, order: int = 1, mode: str = "nearest", crop: bool = False, **kw):
    """Estimate and correct drift in one go: ``(aligned, drift)``.

    Keywords other than *order*, *mode*, *crop* (which go to :func:`apply_drift`) go to
    :func:`estimate_drift`.
    """
    drift = estimate_drift(movie, **kw)
    return apply_drift(movie, drift, order=order, mode=mode, crop=crop), drift


# --------------------------------------------------------------------------- drift
def correcting_shifts(true_drift) -> np.ndarray:
    """The shifts (T, 2) that undo a simulated specimen drift (T, 2) (down, right), centred on the
    average position -- the convention of :func:`temnb.classic.align.estimate_drift` (``reference='mean'``)."""
    d = np.asarray(true_drift, dtype=float)
    if d.ndim != 2 or d.shape[1] != 2:
        raise DataShapeError(f"the drift must have shape (frames, 2), got {d.shape}")
    return -(d - d.mean(axis=0))


@dataclass
class DriftError:
    """Distance in pixels between estimated and true correcting shifts: ``mean_px``, ``max_px``,
    ``rms_px`` over frames, ``per_frame`` (T,), and ``drift_rms_px``: the RMS of the true shifts
    themselves (the error if nothing were corrected)."""

    mean_px: float
    max_px: float
    rms_px: float
    drift_rms_px: float
    per_frame: np.ndarray


def drift_error(drift, true_drift) -> DriftError:
    """Compare a :class:`temnb.classic.align.Drift` (or (T, 2) shifts) with the simulated specimen drift
    (T, 2); both are centred first, as the mean reference fixes the average position only."""
    est = np.asarray(getattr(drift, "shifts_px", drift), dtype=float)
    want = correcting_shifts(true_drift)
    if est.shape != want.shape:
        raise DataShapeError(f"the estimated drift has shape {est.shape}, the true drift {want.shape}",
                             hint="slice the true drift to the frames that were registered")
    err = np.hypot(*(est - est.mean(axis=0) - want).T)
    return DriftError(float(err.mean()), float(err.max()), float(np.sqrt(np.mean(err**2))),
                      float(np.sqrt(np.mean(np.sum(want**2, axis=1)))), err)
