"""Contrast without and with the truth: line profiles and their Michelson contrast, the share of the
true contrast a denoiser keeps, and how much it fluctuates in the vacuum (fringes it invents)."""
from __future__ import annotations

import numpy as np

from ..core import metadata as md
from ..core.errors import DataShapeError, DataValueError, ParameterError
from ..core.signals import float_array, require_image_data, source_label, unwrap


# --------------------------------------------------------------------------- contrast and profiles
def michelson_contrast(profile) -> float:
    """``(max - min) / (max + min)`` of a line profile (array or Signal1D) of intensities >= 0."""
    p = float_array(profile, "the profile")
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


def contrast_along_line(images: dict, start, end, *, width: int = 1) -> dict:
    """``{name: (profile, Michelson contrast)}`` along the line *start* -> *end* of each image.

    Points are (row, column) pixels for arrays, axis units for signals (see
    :func:`temnb.judge.contrast.line_profile`).  For a movie the contrast is that of
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


# --------------------------------------------------------------------------- vacuum
def vacuum_rows(signal, margin: int = 10) -> tuple[int, int] | None:
    """Rows (start, stop) of *signal* that are vacuum in every frame of a simulated movie, from
    ``metadata.temnb.simulation.vacuum_rows`` and the signal's y-axis offset (so a crop made with
    :func:`temnb.io.bundled.crop_movie` is handled); *margin* rows next to the specimen are left out
    (its Fresnel fringes are real).  None when the movie says nothing about vacuum."""
    sim = md.get(signal, "simulation") if hasattr(signal, "metadata") else None
    try:
        rows = sim["vacuum_rows"]  # a dict or hyperspy's DictionaryTreeBrowser
    except (KeyError, TypeError, AttributeError):
        rows = None
    if rows is None or len(rows) != 2:
        return None
    y_axis = signal.axes_manager.signal_axes[1]
    first = int(round(y_axis.offset / y_axis.scale))  # the crop's first row in the simulated frame
    stop = min(int(rows[1]) - margin, first + y_axis.size) - first
    start = max(int(rows[0]) - first, 0)
    return (start, stop) if stop - start >= 4 else None


def region_std(data, rows=None, cols=None) -> float:
    """Mean over frames of the standard deviation inside ``[rows[0]:rows[1], cols[0]:cols[1]]``
    of a frame or movie (array or signal), in the data's units.  Flat vacuum gives ~0 for a clean
    movie; a denoiser that invents fringes there gives more."""
    arr, _ = unwrap(data, name="the data")
    arr = arr[None] if arr.ndim == 2 else arr
    r = slice(*rows) if rows is not None else slice(None)
    c = slice(*cols) if cols is not None else slice(None)
    region = arr[:, r, c].astype(np.float64)
    if region.size == 0 or region.shape[1] < 2 or region.shape[2] < 2:
        raise DataShapeError(f"the region rows={rows}, cols={cols} of frames {arr.shape[1:]} is empty")
    return float(np.mean(region.std(axis=(1, 2))))


def contrast_kept(estimate, clean, rows=None, cols=None) -> float:
    """How much of the clean image's contrast an estimate reproduces inside a region: the regression
    slope ``cov(estimate, clean) / var(clean)`` per frame, averaged over frames.  1: all of it;
    0: none (e.g. a low-pass that removed a lattice).  Noise left in the estimate is uncorrelated
    with the clean image and does not bias it; a lattice shifted by half a period gives < 0."""
    a, _ = unwrap(estimate, name="the estimate")
    b, _ = unwrap(clean, name="the clean data")
    if a.shape != b.shape:
        raise DataShapeError(f"the estimate has shape {a.shape}, the clean data {b.shape}")
    a, b = (x[None] if x.ndim == 2 else x for x in (a, b))
    r = slice(*rows) if rows is not None else slice(None)
    c = slice(*cols) if cols is not None else slice(None)
    a, b = (x[:, r, c].reshape(x.shape[0], -1).astype(np.float64) for x in (a, b))
    b = b - b.mean(axis=1, keepdims=True)
    var = np.mean(b**2, axis=1)
    if a.shape[1] < 4 or not np.all(var > 0):
        raise DataShapeError(f"the region rows={rows}, cols={cols} is empty or flat in the clean data")
    return float(np.mean(np.mean((a - a.mean(axis=1, keepdims=True)) * b, axis=1) / var))
