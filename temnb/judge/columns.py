"""Atomic-column recovery: find columns in a (denoised) frame and score them against the truth.

The analysis of Mohan et al. (2022): after denoising a simulated movie, are the
particle's atomic columns, and above all its *surface* columns, where the
atomic model says they are?  Columns are found as Laplacian-of-Gaussian blobs
(:func:`detect_columns`), paired one-to-one with the true columns of the
:class:`temnb.simulation.structures.Scene` (:func:`true_columns`, :func:`match_columns`),
and counted as precision, recall, F1 and Jaccard index (:func:`score`), over
many noise realisations (:func:`recovery_over_realisations`).

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
    "PUBLISHED_SURFACE", "PUBLISHED_SOURCE", "ColumnSet", "true_columns", "detect_columns",
    "particle_region", "surface_flags",
]
# Matching, scores and realisations over noise are in temnb.judge.column_scores.

# Median surface-column recovery of the simulation-trained denoiser on simulated
# Pt/CeO2 HRTEM at 0.45 e-/px (reference lines for plot_boxes).  The values are
# those quoted in temnb's issue 4; check them against the paper before citing.
PUBLISHED_SURFACE = {"f1": 0.96, "jaccard": 0.93}
PUBLISHED_SOURCE = ("S. Mohan, R. Manzorro, J. L. Vincent, B. Tang, D. Y. Sheth, E. P. Simoncelli, "
                    "D. S. Matteson, P. A. Crozier, C. Fernandez-Granda, 'Deep denoising for scientific "
                    "discovery: a case study in electron microscopy', IEEE Trans. Comput. Imaging 8 "
                    "(2022): surface columns of simulated Pt/CeO2 at 0.45 e-/px, medians over noise "
                    "realisations")

METRICS = ("precision", "recall", "f1", "jaccard")
SUBSETS = ("surface", "bulk", "all")
# Default alpha of the alpha shape, in units of the median nearest-neighbour spacing.
# In an fcc <110> projection every Delaunay triangle of the bulk has a circumradius
# of 0.61 spacings, and every triangle that bridges a missing surface column at
# least 0.87 (measured on the sample particle with each surface
# column removed in turn); 0.75 sits in the gap.  Then the alpha shape's boundary
# is exactly the scene's own surface definition (fewer than 6 neighbours) for the
# intact particle and for all 20 single-column removals; 1.5 (or the convex hull)
# would miss the 34 columns that those removals expose.
ALPHA_FACTOR = 0.75


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
    """

    positions_px: np.ndarray
    pixel_size_A: float
    surface: np.ndarray | None = None
    interface: np.ndarray | None = None
    strength: np.ndarray | None = None
    ids: np.ndarray | None = None

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
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return ColumnSet(self.positions_px[mask], self.pixel_size_A, pick(self.surface),
                         pick(self.interface), pick(self.strength), pick(self.ids))

    def __repr__(self) -> str:
        n_surf = "?" if self.surface is None else int(self.surface.sum())
        return f"ColumnSet({len(self)} columns, {n_surf} on the surface, {self.pixel_size_A:g} A/px)"


# ---------------------------------------------------------------------------------------------
# Truth and detection


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


def _region_mask(region, shape):
    if region is None:
        return np.ones(shape, bool)
    if callable(region):
        region = region(shape)
    mask = np.asarray(region)
    if mask.shape != tuple(shape) or mask.dtype != bool:
        raise ParameterError(f"region must be a boolean mask of the image's shape {tuple(shape)} (got "
                             f"{mask.dtype} of shape {mask.shape})",
                             hint="use particle_region(image.shape, scene), or a callable shape -> mask")
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


def detect_columns(image, *, pixel_size_A=None, column_radius_A: float = 0.7, threshold=None,
                   polarity: str = "bright", region=None, min_separation_A=None) -> ColumnSet:
    """Atomic columns of one frame as Laplacian-of-Gaussian blobs (``skimage.feature.blob_log``).

    *image*: a 2-D array or Signal2D (a movie raises DataShapeError: pass
    ``movie.inav[k]``).  *pixel_size_A*: Angstrom per pixel, read from a signal's
    axes when not given (required for arrays).  *column_radius_A*: the apparent
    column radius; blobs are searched with sigma from 0.5 to 1.5 x
    ``column_radius_A / sqrt(2)`` (a Gaussian blob's LoG radius is sqrt(2) sigma).

    *polarity*: 'bright' columns (Pt at -8 nm defocus in the sample), 'dark'
    (the image is inverted first), or 'auto': the sign of the stronger LoG peaks
    inside the region (the 99.9th percentile of the response at the column size).
    On the sample scene simulated at -15, -8, 0, +5 and +10 nm it picks the right
    one; near the contrast reversal (-4 nm) neither polarity finds the columns.

    *threshold*: how strong a blob must be, as a fraction (0-1) of the strongest
    blob inside the region, i.e. relative to the image's own column contrast
    (blob strength: the scale-normalised LoG response of the image scaled to its
    contrast).  On the clean sample frame the 43 Pt columns reach 0.59-1 of the
    strongest and the Fresnel fringe around the particle at most 0.2, so the
    default 0.3 keeps every column and no fringe; a region with no columns at all
    (only noise) gets its noise peaks, so give a region that holds the particle.

    *region*: a boolean mask of the image's shape, or a callable ``shape -> mask``
    (e.g. ``lambda s: particle_region(s, scene)``); blobs outside it are dropped
    (the image is not cut, so there are no false edges).  *min_separation_A*: of
    two columns closer than this (default 2 x column_radius_A), the weaker goes.

    Peaks on the frame's outermost pixels are dropped (their column may lie
    outside).  Positions are refined to sub-pixel accuracy by a parabola through the LoG
    response; surface flags come from :func:`surface_flags` (alpha shape).
    """
    from skimage.feature import blob_log

    array, p = _image(image, pixel_size_A, "column detection")
    if polarity not in ("bright", "dark", "auto"):
        raise ParameterError(f"polarity {polarity!r} is not 'bright', 'dark' or 'auto'",
                             hint="'bright' for white columns, 'dark' for black ones")
    if not (np.isfinite(column_radius_A) and column_radius_A > 0):
        raise ParameterError(f"column_radius_A {column_radius_A!r} must be a positive number of Angstrom")
    threshold = 0.3 if threshold is None else float(threshold)
    if not (np.isfinite(threshold) and 0 <= threshold <= 1):
        raise ParameterError(f"threshold {threshold!r} must be a fraction (0-1) of the strongest column's "
                             "response", hint="0.3 suits clean and well-denoised frames")
    min_sep = 2 * column_radius_A if min_separation_A is None else float(min_separation_A)
    mask = _region_mask(region, array.shape)
    sigma = column_radius_A / p / np.sqrt(2)
    if sigma < 0.5:
        raise ParameterError(f"columns of radius {column_radius_A} A are only {column_radius_A / p:.2f} "
                             f"pixels of {p:g} A: too small to find", hint="check pixel_size_A")
    if polarity == "auto":
        polarity = _auto_polarity(array, mask, sigma)
    work = -array if polarity == "dark" else array
    empty = ColumnSet(np.zeros((0, 2)), p, surface=np.zeros(0, bool), strength=np.zeros(0))
    if not mask.any():
        return empty
    level = np.median(work[mask])
    contrast = np.percentile(work[mask], 99.5) - level
    if not contrast > 0:  # a flat region has no columns
        return empty
    work = (work - level) / contrast
    # Every LoG maximum above a few percent of the contrast is a candidate; the
    # threshold proper is relative to the strongest candidate inside the region.
    blobs = blob_log(work, min_sigma=0.5 * sigma, max_sigma=1.5 * sigma, num_sigma=5, threshold=0.02,
                     overlap=0.5)
    rc = blobs[:, :2].astype(int)
    # A peak on the outermost pixels may belong to a column outside the frame and
    # cannot be located (no pixel beyond it): drop it with those outside the region.
    inner = (rc > 0).all(1) & (rc < np.array(array.shape) - 1).all(1)
    blobs = blobs[inner & mask[rc[:, 0], rc[:, 1]]]
    if len(blobs) == 0:
        return empty
    responses = {s: _log_response(work, s) for s in np.unique(blobs[:, 2])}
    strength = np.array([responses[b[2]][int(b[0]), int(b[1])] for b in blobs])
    strong = strength >= threshold * strength.max()
    blobs, strength = blobs[strong], strength[strong]
    pos = np.array([_refine(responses[b[2]], b[:2]) for b in blobs]).reshape(-1, 2)
    # Strongest first, then drop any column closer than min_sep to a stronger one.
    order = np.argsort(-strength, kind="stable")
    pos, strength = pos[order], strength[order]
    if min_sep > 0 and len(pos) > 1:
        from scipy.spatial import cKDTree

        kept = np.ones(len(pos), bool)
        for i, j in sorted(cKDTree(pos).query_pairs(min_sep / p)):
            if kept[i]:
                kept[j] = False
        pos, strength = pos[kept], strength[kept]
    return ColumnSet(pos, p, surface=surface_flags(pos), strength=strength)


def particle_region(shape, scene=None, *, support_top_row=None, margin_A: float = 1.0,
                    pixel_size_A=None) -> np.ndarray:
    """Boolean mask of the rows above the support: where the Pt particle's columns are.

    *shape*: the image shape (or the image).  The support's top is taken from
    *scene* (``scene.support.top``, its top O plane) or given as *support_top_row*
    (pixels from the top); rows less than *margin_A* above it are left out too, so
    CeO2 columns are never counted.  With *scene*, the pixel size is its field of
    view over the shape; otherwise *pixel_size_A* is needed for a non-zero margin.
    A scene without a support gives an all-True mask.
    """
    shape = tuple(getattr(getattr(shape, "data", shape), "shape", shape))
    if len(shape) != 2 or min(shape) < 1:
        raise DataShapeError(f"particle_region needs a 2-D image shape, not {shape}")
    if not (np.isfinite(margin_A) and margin_A >= 0):
        raise ParameterError(f"margin_A {margin_A!r} must be a number of Angstrom >= 0")
    if scene is not None:
        width, height = scene.field_of_view
        p = height / shape[0]
        if not np.isclose(width / shape[1], p, rtol=1e-3):
            raise ParameterError(f"the scene's {width:g} x {height:g} A field of view does not fit a "
                                 f"{shape[1]} x {shape[0]} px image with square pixels",
                                 hint="pass the shape of the image simulated from this scene")
        if pixel_size_A is not None and not np.isclose(_pixel_size(pixel_size_A), p, rtol=1e-3):
            raise ParameterError(f"pixel_size_A {pixel_size_A} does not match the scene ({p:g} A/px)")
        if support_top_row is None:
            if scene.support is None:
                return np.ones(shape, bool)
            support_top_row = scene.image_position(0.0, scene.support.top)[0] / p - 0.5
    elif support_top_row is None:
        raise ParameterError("particle_region needs a scene or support_top_row",
                             hint="pass the Scene the image was simulated from")
    else:
        p = None if pixel_size_A is None else _pixel_size(pixel_size_A)
        if p is None and margin_A > 0:
            raise ParameterError("a margin in Angstrom needs the pixel size",
                                 hint="pass pixel_size_A=... or margin_A=0")
    limit = float(support_top_row) - (margin_A / p if margin_A > 0 else 0.0)
    rows = np.arange(shape[0])[:, None]
    return np.broadcast_to(rows < limit, shape).copy()


# ---------------------------------------------------------------------------------------------
# Surface columns


def _circumradii(points, simplices):
    a, b, c = (points[simplices[:, k]] for k in range(3))
    ab, bc, ca = (np.linalg.norm(u - v, axis=1) for u, v in ((a, b), (b, c), (c, a)))
    area2 = np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area2 > 0, ab * bc * ca / (2 * area2), np.inf)


def surface_flags(positions_px, *, method: str = "alpha", alpha_A=None, pixel_size_A=None) -> np.ndarray:
    """True for the columns on the particle's outline.

    *positions_px*: (n, 2) pixel positions, or a :class:`ColumnSet` (which brings
    its pixel size).  *method* 'hull': columns on the convex hull's edges (within a
    quarter of the nearest-neighbour spacing, so columns along a facet count, not
    just the corners).  'alpha' (default): the boundary of the alpha shape, the
    union of the Delaunay triangles whose circumradius is below *alpha_A*
    (default 0.75 x the median nearest-neighbour spacing, see ``ALPHA_FACTOR``;
    *alpha_A* in Angstrom needs the pixel size).  Columns in no such triangle
    count as surface too.

    Why not the hull: when a surface column is missing (or not detected), its
    neighbours become surface; the alpha shape follows that notch, the convex hull
    (and any alpha above ~0.87 spacings) bridges it and keeps calling them bulk.
    With the default, the alpha shape of the true columns reproduces the scene's
    neighbour-count flags exactly.  Fewer than 3 columns (or all on one line)
    are all surface.
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
        raise ParameterError(f"surface method {method!r} is not 'alpha' or 'hull'")
    n = len(pts)
    if n < 3:
        return np.ones(n, bool)
    spacing = float(np.median(cKDTree(pts).query(pts, k=2)[0][:, 1]))
    try:
        if method == "hull":
            hull = ConvexHull(pts)
            dist = np.abs(pts @ hull.equations[:, :2].T + hull.equations[:, 2])
            return (dist < 0.25 * spacing).any(axis=1)
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
