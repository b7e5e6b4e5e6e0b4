"""Atomic-column recovery: find columns in a (denoised) frame and score them against the truth.

The analysis of Mohan et al. (2022): after denoising a simulated movie, are the
particle's atomic columns, and above all its *surface* columns, where the
atomic model says they are?  Columns are found as Laplacian-of-Gaussian blobs
at the column scale (:func:`detect_columns`) above a threshold set by the noise:
a stated number of false alarms per nm² of vacuum, measured on the vacuum of
the same frame.  The surface is the convex hull of the columns, as the paper's
Graham scan (:func:`surface_flags`; an alpha shape is an option).  Detections
are paired one-to-one with the true columns of the
:class:`temnb.simulation.structures.Scene` (:func:`true_columns`) inside the
particle's neighbourhood (:func:`particle_region`); detections in the vacuum
(:func:`vacuum_region`) are counted apart, as phantom columns.  The scores
(precision, recall, F1, Jaccard, phantoms) and their spread over noise
realisations are in :mod:`temnb.judge.column_scores`.

Coordinates: a :class:`ColumnSet` holds (row, column) pixel positions with
pixel centres at integer indices (the convention of ``skimage`` and of
``imshow``): pixel ``i`` spans ``[i - 0.5, i + 0.5)``, so a point ``d`` Angstrom
from the image's top-left corner is at ``d / pixel_size - 0.5``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.checks import positive
from ..core.errors import DataShapeError, DataValueError, ParameterError
from ..core.signals import unwrap
from ..io.calibration import pixel_size_angstrom

__all__ = [
    "PUBLISHED_SOURCE", "PUBLISHED_SURFACE", "ColumnSet", "detect_columns", "particle_region", "surface_flags",
    "true_columns", "vacuum_region",
]
# Matching, scores and realisations over noise are in temnb.judge.column_scores.

# Median surface-column recovery of the simulation-trained denoiser on simulated
# Pt/CeO2 HRTEM at 0.45 e-/px of 0.061 A, i.e. 121 e-/A² per frame (7.2 e-/px at
# 0.244 A; 0.45 e-/px of 0.25 A is 17 times less) (reference lines for plot_boxes).  The values are
# those quoted in temnb's issue 4; check them against the paper before citing.
PUBLISHED_SURFACE = {"f1": 0.96, "jaccard": 0.93}
PUBLISHED_SOURCE = ("S. Mohan, R. Manzorro, J. L. Vincent, B. Tang, D. Y. Sheth, E. P. Simoncelli, "
                    "D. S. Matteson, P. A. Crozier, C. Fernandez-Granda, 'Deep denoising for scientific "
                    "discovery: a case study in electron microscopy', IEEE Trans. Comput. Imaging 8 "
                    "(2022): surface columns of simulated Pt/CeO2 at 0.45 e-/px, medians over noise "
                    "realisations")

METRICS = ("precision", "recall", "f1", "jaccard")
SUBSETS = ("surface", "bulk", "all")

# Noise blobs per nm² of vacuum that the default threshold lets through: one in
# 20 nm², about one in the vacuum of a 64 A frame of the sample scene.
FALSE_ALARMS_PER_NM2 = 0.05
# How far (A) from a true column the scored neighbourhood reaches: a bit more
# than one column spacing (2.4-2.8 A), so a column invented on the next lattice
# site outside the surface is scored as a false surface column, not a phantom.
REACH_A = 3.0
# Which columns the convex hull calls surface: those within half a nearest-neighbour
# spacing (1.2 A) of a hull edge.  In the small, medium and large sample particles
# the nearest bulk column lies 0.82 spacings (1.96 A, one (100) row) inside the
# hull.  With noisy positions the hull's edges run through the outermost columns,
# so a facet column falls inside by its own error plus the edge's: the cut sits
# above the midpoint.  Jittering the true columns by 0.3 A rms keeps the hull's
# surface set in 99.6-100 % of 500 trials per particle (0.25 spacings, the old
# value: 31-92 %; 0.4: 93-100 %; 0.6: 99 %).
HULL_TOLERANCE = 0.5
# Default alpha of the alpha shape, in nearest-neighbour spacings.  Every Delaunay
# triangle of a perfect fcc <110> projection has a circumradius of 0.61 spacings;
# those outside it are slivers along the facets.  Jittering the true columns of the
# small, medium and large particles by 0.3 A rms (0.125 spacings) keeps the alpha
# shape's surface set in all of 1000 trials for every alpha from 0.9 to 1.05
# spacings, and in at least 999 from 0.85 to 1.25 (below, jittered bulk triangles
# open holes; above, facet slivers close); 1.0 sits in the middle and still holds
# at 0.4 A rms (the old 0.75: 54-85 % at 0.3 A).  The price: the triangle
# that bridges a single missing facet column has a circumradius of 0.87-1.15
# spacings, so at 1.0 the outline follows only 5 of the 15 single removals of the
# medium particle (alpha_A = 0.8 spacings follows all of them, for exact positions).
ALPHA_FACTOR = 1.0
# Weakest column kept, as a fraction of the median response of the peaks outside the
# vacuum (see detect_columns).
RELATIVE_FLOOR = 0.5
# The least response the noise rule accepts, as a fraction of the frame's median
# intensity: it matters only where the vacuum has (almost) no noise.
NOISE_FREE_FLOOR = 1e-3
# Below this many vacuum pixels the noise of the LoG response cannot be measured.
MIN_VACUUM_PIXELS = 256


def _pixel_size(value, what="pixel_size_A") -> float:
    return positive(value, what, hint="Angstrom per pixel, e.g. 0.25")


def _flags(value, n, name):
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise ParameterError(f"{name} flags have shape {arr.shape}, but there are {n} columns")
    return arr.astype(bool)


@dataclass
class ColumnSet:
    """Atomic columns in one image: (row, column) pixel positions and optional flags.

    *positions_px*: (n, 2) float, pixel centres at integer indices.  *surface* and
    *interface*: bool (n,) or None (unknown).  *strength*: the detector's response
    per column (None for true columns).  *ids*: column ids of the atomic model.
    *threshold* and *noise*: the detector's threshold and the standard deviation
    of its response in the vacuum (image units; None when not measured).
    """

    positions_px: np.ndarray
    pixel_size_A: float
    surface: np.ndarray | None = None
    interface: np.ndarray | None = None
    strength: np.ndarray | None = None
    ids: np.ndarray | None = None
    threshold: float | None = None
    noise: float | None = None

    def __post_init__(self):
        pos = np.asarray(self.positions_px, dtype=float)
        if pos.size == 0:
            pos = pos.reshape(0, 2)
        if pos.ndim != 2 or pos.shape[1] != 2:
            raise ParameterError(f"column positions have shape {pos.shape}, not (n, 2) (row, column) pixels")
        if not np.all(np.isfinite(pos)):
            raise DataValueError("column positions contain NaN or infinite values")
        self.positions_px = pos
        self.pixel_size_A = _pixel_size(self.pixel_size_A)
        n = len(pos)
        self.surface = _flags(self.surface, n, "surface")
        self.interface = _flags(self.interface, n, "interface")
        self.strength = None if self.strength is None else np.asarray(self.strength, float).reshape(n)
        self.ids = None if self.ids is None else np.asarray(self.ids).reshape(n)

    def __len__(self) -> int:
        return len(self.positions_px)

    @property
    def positions_A(self) -> np.ndarray:
        """(n, 2) (row, column) positions in Angstrom, ``positions_px * pixel_size_A``."""
        return self.positions_px * self.pixel_size_A

    def select(self, mask) -> ColumnSet:
        """The columns where *mask* (bool (n,) or indices) holds."""
        pick = lambda a: None if a is None else a[mask]
        return ColumnSet(self.positions_px[mask], self.pixel_size_A, pick(self.surface),
                         pick(self.interface), pick(self.strength), pick(self.ids), self.threshold, self.noise)

    def __repr__(self) -> str:
        n_surf = "?" if self.surface is None else int(self.surface.sum())
        return f"ColumnSet({len(self)} columns, {n_surf} on the surface, {self.pixel_size_A:g} A/px)"


# ---------------------------------------------------------------------------------------------
# Truth and the regions of a scene


def true_columns(scene, pixel_size_A: float, *, shift_px=(0.0, 0.0)) -> ColumnSet:
    """The particle's columns of *scene* as pixel positions in an image of *pixel_size_A*.

    ``scene.image_position`` gives Angstrom from the image's top-left corner; the
    centre of pixel ``i`` is at ``(i + 0.5) * pixel_size_A``, hence the half pixel
    taken off.  *shift_px* (down, right) adds drift.  Columns outside the field of
    view are left out.  Surface and interface flags are the scene's
    (:func:`temnb.simulation.structures.find_columns`: fewer than 6 projected neighbours).

    The bundled sample (temnb.simulation.hrtem, 5 simulation points per pixel) puts an atom
    0.1 px higher and 0.1 px further right than this (0.025 A): the binned pixel's
    centre lies 2 of its 5 grid points from its edge, not 2.5.  Far below any
    matching distance; pass ``shift_px=(-0.1, 0.1)`` to remove it.
    """
    p = _pixel_size(pixel_size_A)
    shift = np.asarray(shift_px, dtype=float).reshape(-1)
    if shift.shape != (2,) or not np.all(np.isfinite(shift)):
        raise ParameterError(f"shift_px {shift_px!r} is not a (down, right) pair of pixels")
    width, height = scene.field_of_view
    cols = [c for c in scene.columns() if 0 <= c.x <= width and 0 <= c.y <= height]
    pos = np.array([scene.image_position(c.x, c.y) for c in cols], dtype=float).reshape(-1, 2)
    return ColumnSet(pos / p - 0.5 + shift, p, surface=[c.surface for c in cols],
                     interface=[c.interface for c in cols], ids=[c.id for c in cols])


def _shape_of(shape, what):
    shape = tuple(getattr(getattr(shape, "data", shape), "shape", shape))
    if len(shape) != 2 or min(shape) < 1:
        raise DataShapeError(f"{what} needs a 2-D image shape, not {shape}")
    return shape


def _scene_pixel(scene, shape, pixel_size_A):
    """Angstrom per pixel of an image of *shape* showing *scene*'s field of view."""
    width, height = scene.field_of_view
    p = height / shape[0]
    if not np.isclose(width / shape[1], p, rtol=1e-3):
        raise ParameterError(f"the scene's {width:g} x {height:g} A field of view does not fit a "
                             f"{shape[1]} x {shape[0]} px image with square pixels",
                             hint="pass the shape of the image simulated from this scene")
    if pixel_size_A is not None and not np.isclose(_pixel_size(pixel_size_A), p, rtol=1e-3):
        raise ParameterError(f"pixel_size_A {pixel_size_A} does not match the scene ({p:g} A/px)")
    return p


def _support_row(scene, p):
    """Row (pixels from the top, fractional) of the support's top O plane, or None."""
    if scene.support is None:
        return None
    return scene.image_position(0.0, scene.support.top)[0] / p - 0.5


def _distance_to_columns_A(shape, scene, p):
    """Angstrom from every pixel centre to the nearest particle column (inf without columns)."""
    from scipy.spatial import cKDTree

    truth = true_columns(scene, p)
    if len(truth) == 0:
        return np.full(shape, np.inf)
    rows, cols = np.indices(shape)
    dist, _ = cKDTree(truth.positions_px).query(np.column_stack([rows.ravel(), cols.ravel()]))
    return dist.reshape(shape) * p


def particle_region(shape, scene=None, *, support_top_row=None, margin_A: float = 1.0,
                    pixel_size_A=None, reach_A=REACH_A) -> np.ndarray:
    """Boolean mask of the particle's neighbourhood: the region where columns are scored.

    *shape*: the image shape (or the image).  With *scene*: the pixels within
    *reach_A* (default 3 A, a bit more than one column spacing) of a true particle
    column, above the support.  ``reach_A=None`` gives every row above the support
    (the default before: it scores the vacuum too).  The support's top is taken
    from *scene* (``scene.support.top``, its top O plane) or given as
    *support_top_row* (pixels from the top; without a scene there are no columns
    to be near, so the mask is the rows above the support); rows less than
    *margin_A* above it are left out, so CeO2 columns are never counted.  With
    *scene*, the pixel size is its field of view over the shape; otherwise
    *pixel_size_A* is needed for a non-zero margin.
    """
    shape = _shape_of(shape, "particle_region")
    if not (np.isfinite(margin_A) and margin_A >= 0):
        raise ParameterError(f"margin_A {margin_A!r} must be a number of Angstrom >= 0")
    if reach_A is not None:
        reach_A = positive(reach_A, "reach_A", hint="Angstrom from the true columns, e.g. 3")
    near = None
    if scene is not None:
        p = _scene_pixel(scene, shape, pixel_size_A)
        if reach_A is not None:
            near = _distance_to_columns_A(shape, scene, p) <= reach_A
        if support_top_row is None:
            support_top_row = _support_row(scene, p)
            if support_top_row is None:
                return np.ones(shape, bool) if near is None else near
    elif support_top_row is None:
        raise ParameterError("particle_region needs a scene or support_top_row",
                             hint="pass the Scene the image was simulated from")
    else:
        p = None if pixel_size_A is None else _pixel_size(pixel_size_A)
        if p is None and margin_A > 0:
            raise ParameterError("a margin in Angstrom needs the pixel size",
                                 hint="pass pixel_size_A=... or margin_A=0")
    limit = float(support_top_row) - (margin_A / p if margin_A > 0 else 0.0)
    above = np.broadcast_to(np.arange(shape[0])[:, None] < limit, shape).copy()
    return above if near is None else above & near


def vacuum_region(shape, scene, *, clearance_A=REACH_A, pixel_size_A=None) -> np.ndarray:
    """Boolean mask of the vacuum: farther than *clearance_A* from every particle column
    and more than *clearance_A* above the support's top O plane.

    With the default clearance (that of :func:`particle_region`'s reach) the two
    masks touch: every detection above the support is either scored or a phantom,
    except in the strip just above the support beside the particle.  The same mask
    serves :func:`detect_columns` (where its noise sets the threshold) and
    :func:`temnb.judge.column_scores.score` (where detections in it are phantoms).
    """
    shape = _shape_of(shape, "vacuum_region")
    clearance = positive(clearance_A, "clearance_A", hint="Angstrom from the atoms, e.g. 3")
    p = _scene_pixel(scene, shape, pixel_size_A)
    mask = _distance_to_columns_A(shape, scene, p) > clearance
    top = _support_row(scene, p)
    if top is not None:
        mask &= np.arange(shape[0])[:, None] < top - clearance / p
    return mask


# ---------------------------------------------------------------------------------------------
# Detection


def _image(image, pixel_size_A, what):
    """(2-D float array, Angstrom per pixel) of a frame or signal, with microscopist errors."""
    array, template = unwrap(image, name=None)
    if array.ndim == 3:
        how = "image.inav[k]" if template is not None else "movie[k]"
        raise DataShapeError(f"is a movie of {array.shape[0]} frames, but {what} works on one frame",
                             hint=f"pass one frame ({how}) or a denoised average")
    if array.ndim != 2:
        raise DataShapeError(f"has shape {tuple(array.shape)}, but {what} needs one 2-D frame",
                             hint="index the frame you want")
    if pixel_size_A is None and template is not None:
        pixel_size_A = pixel_size_angstrom(template)
        if pixel_size_A is None:
            raise ParameterError(f"the image is not calibrated in length units, so {what} cannot size "
                                 "the atomic columns", hint="pass pixel_size_A=... (Angstrom per pixel)")
    if pixel_size_A is None:
        raise ParameterError(f"{what} on a plain array needs the pixel size",
                             hint="pass pixel_size_A=... (Angstrom per pixel), or a calibrated hyperspy signal")
    return np.asarray(array, dtype=np.float64), _pixel_size(pixel_size_A)


def _region_mask(region, shape, name="region"):
    if region is None:
        return np.ones(shape, bool)
    if callable(region):
        region = region(shape)
    mask = np.asarray(region)
    if mask.shape != tuple(shape) or mask.dtype != bool:
        helper = "particle_region(image.shape, scene)" if name == "region" else "vacuum_region(image.shape, scene)"
        raise ParameterError(f"{name} must be a boolean mask of the image's shape {tuple(shape)} (got "
                             f"{mask.dtype} of shape {mask.shape})",
                             hint=f"use {helper}, or a callable shape -> mask")
    return mask


def _log_response(image, sigma):
    from scipy.ndimage import gaussian_laplace

    # Scale-normalised, sign flipped: bright blobs give positive peaks (as blob_log).
    return -sigma**2 * gaussian_laplace(image, sigma)


def _refine(response, rc):
    """Sub-pixel peak of *response* around integer (row, col) *rc*: a parabola along each axis."""
    r, c = int(rc[0]), int(rc[1])
    out = np.array([r, c], dtype=float)
    for axis, (i, n) in enumerate(((r, response.shape[0]), (c, response.shape[1]))):
        if 0 < i < n - 1:
            lo = response[i - 1, c] if axis == 0 else response[r, i - 1]
            hi = response[i + 1, c] if axis == 0 else response[r, i + 1]
            mid = response[r, c]
            curvature = lo - 2 * mid + hi
            if curvature < 0:
                out[axis] += float(np.clip(0.5 * (lo - hi) / curvature, -0.5, 0.5))
    return out


def _auto_polarity(work, mask, sigma):
    """'bright' or 'dark': the sign whose strongest blobs (99.9th percentile of the
    LoG response inside the region) are stronger."""
    response = _log_response(work, sigma)[mask]
    if response.size == 0:
        return "bright"
    bright, dark = np.percentile(response, 99.9), np.percentile(-response, 99.9)
    return "bright" if bright >= dark else "dark"


def _robust_std(values):
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _flattest(response, p):
    """The frame's vacuum when none is given: where the LoG energy averaged over 5 A is
    within 1.5 x its 5th percentile (the flattest part; at least MIN_VACUUM_PIXELS)."""
    from scipy.ndimage import gaussian_filter

    energy = gaussian_filter(response**2, 5.0 / p)
    share = max(5.0, 100.0 * MIN_VACUUM_PIXELS / energy.size)
    return energy <= 1.5 * np.percentile(energy, min(share, 100.0))


def _noise_threshold(response, vacuum, rate_per_nm2, p, sigma):
    """(threshold, noise): the LoG level that noise blobs exceed *rate_per_nm2* times per nm²
    of vacuum, and the robust standard deviation of the response there.

    The vacuum's response is taken as a smooth Gaussian field (median m, robust
    standard deviation s, gradient spread from its finite differences); above a
    level m + u s it has on average sqrt(det L) (2 pi)^-3/2 u exp(-u²/2) local
    maxima per pixel (the Euler-characteristic density, L the covariance of the
    standardised field's gradient), which is solved for u, then corrected for the
    skew of shot noise (Cornish-Fisher: u + skew (u² - 1) / 6).  Features beyond
    6 s (no noise reaches them) are masked out, with 3 LoG sigmas around them,
    before the gradient and the skew are measured, so a phantom in the vacuum
    does not move the level.
    """
    from scipy.ndimage import binary_dilation, binary_erosion
    from scipy.optimize import brentq

    n = int(vacuum.sum())
    if n < MIN_VACUUM_PIXELS:
        raise DataValueError(f"the vacuum holds only {n} pixels ({n * p * p:.0f} A²): too few to measure "
                             "the noise that sets the detection threshold",
                             hint="pass a larger vacuum=... mask (vacuum_region(image.shape, scene)), "
                                  "or threshold=... explicitly")
    values = response[vacuum]
    centre, noise = float(np.median(values)), _robust_std(values)
    if not noise > 0:  # a noise-free (or flattened) vacuum: any blob above it counts
        return centre, 0.0
    radius = max(1, int(np.ceil(3 * sigma)))
    disk = np.add.outer(np.arange(-radius, radius + 1) ** 2, np.arange(-radius, radius + 1) ** 2) <= radius**2
    features = binary_dilation(vacuum & (np.abs(response - centre) > 6 * noise), disk)
    quiet = vacuum & ~features
    if quiet.sum() < MIN_VACUUM_PIXELS // 2:
        quiet = vacuum
    inner = binary_erosion(quiet)
    if inner.sum() < MIN_VACUUM_PIXELS // 4:
        inner = quiet
    grad_r, grad_c = np.gradient(response)
    spread = _robust_std(grad_r[inner]) * _robust_std(grad_c[inner]) / noise**2  # sqrt(det L)
    target = rate_per_nm2 * (p / 10.0) ** 2 * (2 * np.pi) ** 1.5 / max(spread, 1e-12)

    def excess(u):
        return u * np.exp(-0.5 * u * u) - target

    # u exp(-u²/2) falls from its peak at u = 1; below the peak the level is 1 sigma.
    u = 1.0 if excess(1.0) <= 0 else brentq(excess, 1.0, 40.0)
    z = (response[quiet] - centre) / noise
    skew = float(np.mean((z - z.mean()) ** 3) / max(np.var(z), 1e-12) ** 1.5)
    u += skew / 6 * (u * u - 1)
    return centre + u * noise, noise


def detect_columns(image, *, pixel_size_A=None, column_radius_A: float = 0.7,
                   false_alarms_per_nm2: float = FALSE_ALARMS_PER_NM2, vacuum=None, threshold=None,
                   relative_floor: float = RELATIVE_FLOOR, polarity: str = "bright", region=None,
                   min_separation_A=None, surface_method: str = "hull") -> ColumnSet:
    """Atomic columns of one frame as Laplacian-of-Gaussian blobs at the column scale.

    *image*: a 2-D array or Signal2D (a movie raises DataShapeError: pass
    ``movie.inav[k]``).  *pixel_size_A*: Angstrom per pixel, read from a signal's
    axes when not given (required for arrays).  *column_radius_A*: the apparent
    column radius; the LoG has sigma ``column_radius_A / sqrt(2)`` (a Gaussian
    blob's LoG radius is sqrt(2) sigma).  A column is a local maximum of the
    scale-normalised, sign-flipped LoG response (image units, kept as
    ``found.strength``) that passes two tests:

    1. *Significance*, set by the noise, never by the columns:
       *false_alarms_per_nm2* (default 0.05) is how many noise blobs may pass per
       nm² of vacuum.  The response in *vacuum* (a boolean mask or a callable
       ``shape -> mask``, e.g. ``vacuum_region(image.shape, scene)``) is modelled
       as a smooth Gaussian field (median, MAD, spread of its gradient, skewness):
       the level where its expected number of local maxima per area (the
       Euler-characteristic density, with a Cornish-Fisher correction for the
       skew of shot noise) equals that rate.  Measured on pure Poisson noise from
       0.7 to 72 e-/px, raw or Gaussian-filtered: 0.03-0.07 per nm² for 0.05.
       Without *vacuum*, the flattest part of the frame is taken (where the LoG
       energy over 5 A is within 1.5 x its 5th percentile): right for a frame
       with a fair patch of vacuum (on the sample scene the threshold is within
       6 % of the one from its true vacuum); a frame without any gets the level of
       its least textured part, higher than its noise needs.  Where the vacuum
       has no noise the level is 0.1 % of the frame's median intensity (columns
       give 5-10 %).  *threshold*: an explicit level of the response instead
       (image units; ``found.threshold`` of an earlier detection is one).  The
       level used and the vacuum's noise (its robust standard deviation) are kept
       as ``found.threshold`` and ``found.noise``.
    2. *Contrast*: a response of at least *relative_floor* (default 0.5) x the
       median response of the significant peaks outside the vacuum (inside
       *region* when given).  On a clean frame the Fresnel halo around the
       particle breaks into peaks at the next lattice sites at 0.1-0.45 x the
       columns' median, and the columns 0.7-2 x (thicker columns are brighter);
       at low dose the median is near the noise level and the test does nothing.
       0 turns it off.

    *polarity*: 'bright' columns (Pt at -8 nm defocus in the sample), 'dark'
    (the image is inverted first), or 'auto': the sign of the stronger LoG peaks
    inside the region (the 99.9th percentile of the response at the column size).
    On the sample scene simulated at -15, -8, 0, +5 and +10 nm it picks the right
    one; near the contrast reversal (-4 nm) neither polarity finds the columns.

    *region*: a boolean mask of the image's shape, or a callable ``shape -> mask``;
    blobs outside it are dropped (the image is not cut, so there are no false
    edges).  To count phantoms, include the vacuum in it (e.g. ``particle_region
    | vacuum_region``) and give both regions to :func:`temnb.judge.column_scores.score`.
    *min_separation_A*: of two columns closer than this (default 2 x
    column_radius_A), the weaker goes.

    Peaks on the frame's outermost pixels are dropped (their column may lie
    outside).  Positions are refined to sub-pixel accuracy by a parabola through
    the LoG response; surface flags are :func:`surface_flags` (*surface_method*)
    of all the columns found.
    """
    from scipy.ndimage import maximum_filter

    array, p = _image(image, pixel_size_A, "column detection")
    if polarity not in ("bright", "dark", "auto"):
        raise ParameterError(f"polarity {polarity!r} is not 'bright', 'dark' or 'auto'",
                             hint="'bright' for white columns, 'dark' for black ones")
    if not (np.isfinite(column_radius_A) and column_radius_A > 0):
        raise ParameterError(f"column_radius_A {column_radius_A!r} must be a positive number of Angstrom")
    if threshold is None:
        rate = positive(false_alarms_per_nm2, "false_alarms_per_nm2",
                        hint="noise blobs allowed per nm² of vacuum, e.g. 0.05")
    else:
        threshold = float(threshold)
        if not np.isfinite(threshold):
            raise ParameterError(f"threshold {threshold!r} must be a finite level of the LoG response",
                                 hint="leave threshold=None to set it from the vacuum's noise")
    relative_floor = float(relative_floor)
    if not (np.isfinite(relative_floor) and 0 <= relative_floor < 1):
        raise ParameterError(f"relative_floor {relative_floor!r} must be a fraction (0-1) of the typical "
                             "column's response", hint="0.5 rejects the Fresnel halo; 0 turns the test off")
    min_sep = 2 * column_radius_A if min_separation_A is None else float(min_separation_A)
    mask = _region_mask(region, array.shape)
    sigma = column_radius_A / p / np.sqrt(2)
    if sigma < 0.5:
        raise ParameterError(f"columns of radius {column_radius_A} A are only {column_radius_A / p:.2f} "
                             f"pixels of {p:g} A: too small to find", hint="check pixel_size_A")
    if polarity == "auto":
        polarity = _auto_polarity(array, mask, sigma)
    work = -array if polarity == "dark" else array
    response = _log_response(work, sigma)
    noise = None
    if vacuum is not None:
        vac = _region_mask(vacuum, array.shape, "vacuum")
    else:
        vac = _flattest(response, p) if threshold is None else np.zeros(array.shape, bool)
    if threshold is None:
        threshold, noise = _noise_threshold(response, vac, rate, p, sigma)
        # A noise-free vacuum would let ripples of 1e-4 through: columns give 5-10 %.
        threshold = max(threshold, NOISE_FREE_FLOOR * float(np.median(np.abs(work))))
    peaks = (response == maximum_filter(response, size=3, mode="nearest")) & (response > threshold) & mask
    # A peak on the outermost pixels may belong to a column outside the frame and
    # cannot be located (no pixel beyond it).
    peaks[[0, -1], :] = False
    peaks[:, [0, -1]] = False
    rc = np.argwhere(peaks)
    strength = response[peaks]
    # Strongest first, then drop any column closer than min_sep to a stronger one.
    order = np.argsort(-strength, kind="stable")
    rc, strength = rc[order], strength[order]
    pos = np.array([_refine(response, x) for x in rc]).reshape(-1, 2)
    if min_sep > 0 and len(pos) > 1:
        from scipy.spatial import cKDTree

        kept = np.ones(len(pos), bool)
        for i, j in sorted(cKDTree(pos).query_pairs(min_sep / p)):
            if kept[i]:
                kept[j] = False
        pos, strength = pos[kept], strength[kept]
    if relative_floor > 0 and len(pos):
        # The halo of a clean image is significant but weak: compare with the typical
        # column, the median of the peaks outside the vacuum (all inside the region).
        idx = np.clip(np.round(pos).astype(int), 0, np.array(array.shape) - 1)
        typical = strength[~vac[idx[:, 0], idx[:, 1]]]
        if len(typical):
            keep = strength >= relative_floor * float(np.median(typical))
            pos, strength = pos[keep], strength[keep]
    return ColumnSet(pos, p, surface=surface_flags(pos, method=surface_method), strength=strength,
                     threshold=float(threshold), noise=noise)


# ---------------------------------------------------------------------------------------------
# Surface columns


def _circumradii(points, simplices):
    a, b, c = (points[simplices[:, k]] for k in range(3))
    ab, bc, ca = (np.linalg.norm(u - v, axis=1) for u, v in ((a, b), (b, c), (c, a)))
    area2 = np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area2 > 0, ab * bc * ca / (2 * area2), np.inf)


def _distance_to_edges(points, edges):
    """Distance from each of *points* (n, 2) to the nearest of the segments *edges* (m, 2, 2)."""
    a, b = edges[:, 0], edges[:, 1]
    ab = b - a
    t = np.einsum("nmk,mk->nm", points[:, None] - a[None], ab) / np.maximum((ab**2).sum(1), 1e-300)
    foot = a[None] + np.clip(t, 0, 1)[..., None] * ab[None]
    return np.linalg.norm(points[:, None] - foot, axis=-1).min(axis=1)


def surface_flags(positions_px, *, method: str = "hull", alpha_A=None, pixel_size_A=None) -> np.ndarray:
    """True for the columns on the particle's outline.

    *positions_px*: (n, 2) pixel positions, or a :class:`ColumnSet` (which brings
    its pixel size).  *method* 'hull' (default, the paper's Graham scan): columns
    within half a nearest-neighbour spacing of a convex-hull edge (``HULL_TOLERANCE``),
    so columns along a facet count, not just the corners, and 0.3 A of position
    error does not move a column on or off it.  'alpha': the boundary of the alpha
    shape, the union of the Delaunay triangles whose circumradius is below
    *alpha_A* (default 1.0 x the median nearest-neighbour spacing, which tolerates
    0.3 A rms of position error, see ``ALPHA_FACTOR``; *alpha_A* in Angstrom needs
    the pixel size); columns in no such triangle count as surface too.

    The two agree with the scene's neighbour-count flags on an intact particle.
    They differ where a facet column is missing: its neighbours become surface,
    the hull bridges the notch and keeps calling them bulk, and so does the
    default alpha shape at most sites (a smaller *alpha_A* follows the notch but
    no longer tolerates noisy positions).  Fewer than 3 columns (or all on one
    line) are all surface.
    """
    from scipy.spatial import ConvexHull, Delaunay, QhullError, cKDTree

    if isinstance(positions_px, ColumnSet):
        pixel_size_A = positions_px.pixel_size_A if pixel_size_A is None else pixel_size_A
        positions_px = positions_px.positions_px
    pts = np.asarray(positions_px, dtype=float)
    if pts.size == 0:
        return np.zeros(0, bool)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.all(np.isfinite(pts)):
        raise ParameterError(f"positions of shape {pts.shape} are not finite (n, 2) pixel positions")
    if method not in ("alpha", "hull"):
        raise ParameterError(f"surface method {method!r} is not 'hull' or 'alpha'",
                             hint="'hull' (convex hull, the paper's) or 'alpha' (alpha shape)")
    if alpha_A is not None and method != "alpha":
        raise ParameterError(f"alpha_A is the size of the alpha shape, but method is {method!r}",
                             hint="pass method='alpha' with alpha_A, or leave alpha_A out")
    n = len(pts)
    if n < 3:
        return np.ones(n, bool)
    spacing = float(np.median(cKDTree(pts).query(pts, k=2)[0][:, 1]))
    try:
        if method == "hull":
            hull = ConvexHull(pts)
            return _distance_to_edges(pts, pts[hull.simplices]) < HULL_TOLERANCE * spacing
        tri = Delaunay(pts)
    except QhullError:  # all on one line (or coincident): every column is exposed
        return np.ones(n, bool)
    if alpha_A is None:
        alpha = ALPHA_FACTOR * spacing
    else:
        if pixel_size_A is None:
            raise ParameterError("alpha_A in Angstrom needs the pixel size",
                                 hint="pass pixel_size_A=... or a ColumnSet")
        alpha = float(alpha_A) / _pixel_size(pixel_size_A)
        if not alpha > 0:
            raise ParameterError(f"alpha_A {alpha_A!r} must be positive")
    simplices = tri.simplices[_circumradii(pts, tri.simplices) < alpha]
    surface = np.ones(n, bool)
    if len(simplices):
        surface[np.unique(simplices)] = False
        edges = np.sort(np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [2, 0]]]), 1)
        unique, counts = np.unique(edges, axis=0, return_counts=True)
        surface[unique[counts == 1].ravel()] = True
    return surface
