"""Do the noisy counts support a column of the denoised frame?  Poisson log-likelihood-ratio maps.

A denoiser can paint a column where the raw counts hold only vacuum.  The test of the seed paper
("Quantifying the agreement...", after Mohan et al.; its Eq. 6 and Figs. 6-7) asks, column by
column, which of two Poisson models explains the raw counts ``x_i`` of the pixels ``i`` in a disk
``R`` of 0.7 Å around the column better: the denoised image's level ``lambda_c`` (the mean of the
denoised image over ``R``) or the vacuum's ``lambda_v``.  Per pixel of ``R``::

    LLR = (1/|R|) sum_{i in R} [ln Pois(x_i; lambda_c) - ln Pois(x_i; lambda_v)]
        = xbar_R ln(lambda_c / lambda_v) - (lambda_c - lambda_v)

(the ``ln x_i!`` terms cancel).  Positive: the counts look like the column; negative: like vacuum.
The paper's heuristics, from about 65,000 values on 1,540 simulated images at 0.061 Å/px and
0.45 e-/px (|R| about 410 px), are ``LLR >= 0.0050`` real, ``LLR <= -0.0060`` spurious, and
undetermined in between (:data:`PAPER_THRESHOLDS`).

Those numbers belong to that regime.  The expected LLR of a real column (counts drawn at
``lambda_c``) is ``KL(Pois lambda_c || Pois lambda_v)``, of a spurious one (counts at ``lambda_v``)
``-KL(Pois lambda_v || Pois lambda_c)``, both about ``(lambda_c - lambda_v)^2 / (2 lambda_v)``: at a
fixed relative contrast they grow in proportion to the dose per pixel.  Their spread,
``|ln(lambda_c / lambda_v)| sqrt(lambda / |R|)``, shrinks with the electrons that cross ``R``.
:func:`expected_llr` and :func:`llr_spread` give both; :func:`scale_thresholds` carries thresholds
to another dose and |R|; :func:`derive_thresholds` measures them again on simulated frames with
truth (real columns against phantom columns painted into the vacuum, as a hallucinating denoiser
would), with the ROC AUC of the two distributions.

Results: :func:`column_llr` gives a map (Signal2D, NaN outside the regions, calibration kept) and a
table per column; :func:`llr_over_time` the LLR of fixed columns in every frame of a movie.
Positions are (row, column) pixels with pixel centres at integer indices, as in
:mod:`temnb.judge.columns`, whose LoG detection (:func:`temnb.judge.columns.detect_columns`) finds
the columns when they are not given.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..core import metadata as md
from ..core.checks import positive
from ..core.dose import Dose
from ..core.errors import DataShapeError, DataValueError, ParameterError
from ..core.signals import is_signal, rewrap, unwrap
from ..io.calibration import pixel_size_angstrom
from ..io.counts import DoseEstimate, estimate_dose, require_counts
from ..judge.columns import ColumnSet, detect_columns

__all__ = [
    "LAMBDA_FLOOR",
    "PAPER_THRESHOLDS",
    "REGION_RADIUS_A",
    "ColumnLLR",
    "ColumnLLRSeries",
    "LLRThresholds",
    "ThresholdDerivation",
    "add_phantom_columns",
    "column_llr",
    "contrast_over_disk",
    "derive_thresholds",
    "disk_region",
    "expected_llr",
    "llr_over_time",
    "llr_spread",
    "phantom_sites",
    "poisson_llr",
    "roc_auc",
    "scale_thresholds",
]

#: Radius (Å) of the disk around a column whose counts are tested: the paper's 0.7 Å, about the
#: apparent radius of a Pt column (the scale temnb's LoG detection looks for, too).
REGION_RADIUS_A = 0.7
#: Least level (e-/px) a Poisson mean is given before the logarithm.  A denoiser may output 0 or
#: slightly negative values; the likelihood of a count under a mean of 0 is undefined.  1e-6 e-/px
#: is five orders below the paper's 0.45 e-/px, so it changes no level a detector can record.
LAMBDA_FLOOR = 1e-6
# Default error rates of derive_thresholds: a phantom called real, a real column called spurious.
FALSE_REAL_RATE = 0.01
FALSE_SPURIOUS_RATE = 0.01
VERDICTS = ("real", "undetermined", "spurious")


def _floor(value):
    return np.maximum(np.asarray(value, dtype=np.float64), LAMBDA_FLOOR)


# ---------------------------------------------------------------------------------------------
# The formula and its expectation


def poisson_llr(mean_counts, lambda_c, lambda_v):
    """Per-pixel Poisson log-likelihood ratio of column against vacuum (the paper's Eq. 6).

    ``mean_counts`` is ``xbar_R``, the mean raw count over the region; *lambda_c* the denoised
    level there, *lambda_v* the vacuum level (e-/px).  Because ``ln Pois(x; l) = x ln l - l -
    ln x!``, the sum over ``R`` divided by ``|R|`` needs only ``xbar_R``:
    ``xbar_R ln(lambda_c / lambda_v) - (lambda_c - lambda_v)``.  Both levels are floored at
    :data:`LAMBDA_FLOOR` first.  Broadcasts over arrays.
    """
    lc, lv = _floor(lambda_c), _floor(lambda_v)
    return np.asarray(mean_counts, dtype=np.float64) * np.log(lc / lv) - (lc - lv)


def expected_llr(lambda_true, lambda_c, lambda_v):
    """The mean LLR when the counts are Poisson with mean *lambda_true* (e-/px) in the region.

    ``lambda_true = lambda_c`` (a real column) gives ``KL(Pois lambda_c || Pois lambda_v)``;
    ``lambda_true = lambda_v`` (a phantom) gives ``-KL(Pois lambda_v || Pois lambda_c)``.  For a
    small contrast both are ``(lambda_c - lambda_v)^2 / (2 lambda_v)``, so at a fixed relative
    contrast they scale with the dose per pixel: the reason the paper's thresholds do not travel
    to another dose or pixel size unchanged.
    """
    return poisson_llr(lambda_true, lambda_c, lambda_v)


def llr_spread(lambda_true, lambda_c, lambda_v, region_px):
    """Standard deviation of the per-pixel LLR from shot noise: ``|ln(lambda_c/lambda_v)| sqrt(lambda_true/|R|)``.

    ``xbar_R`` of *region_px* Poisson counts with mean *lambda_true* has variance
    ``lambda_true / |R|``; the LLR is linear in it.  The spread falls with the electrons that
    cross the region, ``|R| lambda_true``, which is why the per-pixel normalisation keeps the
    expectation independent of |R| but not the noise.
    """
    n = np.asarray(region_px, dtype=np.float64)
    if np.any(n < 1):
        raise ParameterError(f"region_px {region_px!r} must be at least one pixel")
    return np.abs(np.log(_floor(lambda_c) / _floor(lambda_v))) * np.sqrt(_floor(lambda_true) / n)


# ---------------------------------------------------------------------------------------------
# Thresholds


@dataclass(frozen=True)
class LLRThresholds:
    """Verdict thresholds on the per-pixel LLR, and the regime they belong to.

    ``LLR >= real`` -> 'real', ``LLR <= spurious`` -> 'spurious', otherwise 'undetermined'.
    *dose_per_pixel* (the vacuum level, e-/px), *region_px* (|R|) and *pixel_size_A* say where they
    hold.  When they were measured (:func:`derive_thresholds`), *real_model* and *spurious_model*
    keep ``(mean, std, z)`` of the distribution each was cut from (phantoms for *real*, real
    columns for *spurious*), so that :func:`scale_thresholds` can move the mean and the spread
    apart; published numbers (:data:`PAPER_THRESHOLDS`) have None there.
    """

    real: float
    spurious: float
    dose_per_pixel: float
    region_px: float
    pixel_size_A: float | None = None
    real_model: tuple | None = None
    spurious_model: tuple | None = None
    source: str = ""

    def __post_init__(self):
        for name in ("real", "spurious"):
            if not np.isfinite(getattr(self, name)):
                raise ParameterError(f"the {name} threshold {getattr(self, name)!r} is not a finite LLR")
        if self.real < self.spurious:
            raise ParameterError(f"the real threshold {self.real:g} lies below the spurious one "
                                 f"{self.spurious:g}: a column could be both",
                                 hint="real >= spurious; equal values leave no undetermined band")
        object.__setattr__(self, "dose_per_pixel", positive(self.dose_per_pixel, "dose_per_pixel (e-/px)"))
        object.__setattr__(self, "region_px", positive(self.region_px, "region_px (|R|, pixels)"))

    def verdict(self, llr):
        """'real', 'spurious' or 'undetermined' for one LLR (NaN: 'undetermined')."""
        if llr >= self.real:
            return "real"
        if llr <= self.spurious:
            return "spurious"
        return "undetermined"

    def __str__(self) -> str:
        where = f"{self.dose_per_pixel:.3g} e-/px, |R| = {self.region_px:.0f} px"
        if self.pixel_size_A is not None:
            where += f", {self.pixel_size_A:.3g} Å/px"
        return f"real >= {self.real:.4g}, spurious <= {self.spurious:.4g} ({where})"


#: The paper's heuristics: 0.45 e-/px on 0.061 Å pixels (121 e-/Å² per frame), |R| about 410 px
#: (the disk of 0.7 Å = 11.5 px holds 410-421 pixel centres, by the column's sub-pixel position).
PAPER_THRESHOLDS = LLRThresholds(0.0050, -0.0060, 0.45, 410, 0.061,
                                 source="the paper's heuristics (~65,000 LLRs of 1,540 simulated images)")


def _as_thresholds(thresholds, lambda_v, region_px, pixel_size_A):
    if thresholds is None:
        return scale_thresholds(PAPER_THRESHOLDS, dose_per_pixel=lambda_v, region_px=region_px,
                                pixel_size_A=pixel_size_A)
    if isinstance(thresholds, LLRThresholds):
        return thresholds
    try:
        real, spurious = (float(t) for t in thresholds)
    except (TypeError, ValueError):
        raise ParameterError(f"thresholds {thresholds!r} are not an LLRThresholds or a (real, spurious) pair",
                             hint="e.g. thresholds=(0.005, -0.006), or None for the paper's, scaled") from None
    return LLRThresholds(real, spurious, lambda_v, region_px, pixel_size_A, source="given")


def _settle(real, spurious):
    """Thresholds that never overlap: where the two distributions separate (the real cut below
    the spurious one) both move to the midpoint, which keeps both error rates and leaves no band."""
    if real < spurious:
        mid = 0.5 * (real + spurious)
        return mid, mid
    return real, spurious


def scale_thresholds(thresholds: LLRThresholds, *, dose_per_pixel=None, region_px=None,
                     pixel_size_A=None) -> LLRThresholds:
    """*thresholds* carried to another vacuum level (*dose_per_pixel*, e-/px) and region size (|R|).

    At a fixed relative contrast ``lambda_c / lambda_v`` the expected LLR (a KL divergence,
    :func:`expected_llr`) is proportional to the dose per pixel ``k = lambda_v' / lambda_v`` and
    does not depend on |R|; its shot-noise spread (:func:`llr_spread`) goes as
    ``sqrt(lambda_v / |R|)``, i.e. by ``sqrt(k / m)`` with ``m = |R|' / |R|``.  Measured thresholds
    (with ``real_model``/``spurious_model``, from :func:`derive_thresholds`) are ``mean + z std`` of
    their distribution; both parts are moved, and thresholds that would cross are settled at their
    midpoint.  Published ones (no model) are scaled by ``k`` alone, the KL scaling of the mean.  That
    is exact when the electrons through the region, ``|R| lambda_v``, stay the same -- the paper's
    0.7 Å disk at the same dose per Å² on another pixel size: the summed counts then have the same
    Poisson law, and the per-pixel LLR is that sum's over |R| -- and approximate otherwise.
    *pixel_size_A* only records the new regime's pixel (the old one is kept when not given).
    """
    if not isinstance(thresholds, LLRThresholds):
        raise ParameterError(f"scale_thresholds needs an LLRThresholds, not {type(thresholds).__name__}",
                             hint="use PAPER_THRESHOLDS or derive_thresholds(...).thresholds")
    lv = thresholds.dose_per_pixel if dose_per_pixel is None else positive(dose_per_pixel, "dose_per_pixel (e-/px)")
    n = thresholds.region_px if region_px is None else positive(region_px, "region_px (|R|, pixels)")
    k, m = lv / thresholds.dose_per_pixel, n / thresholds.region_px

    def move(value, model):
        if model is None:
            return value * k, None
        mean, std, z = model
        mean, std = mean * k, std * np.sqrt(k / m)
        return mean + z * std, (mean, std, z)

    real, real_model = move(thresholds.real, thresholds.real_model)
    spurious, spurious_model = move(thresholds.spurious, thresholds.spurious_model)
    real, spurious = _settle(real, spurious)
    return replace(thresholds, real=float(real), spurious=float(spurious), dose_per_pixel=lv, region_px=n,
                   pixel_size_A=thresholds.pixel_size_A if pixel_size_A is None else pixel_size_A,
                   real_model=real_model, spurious_model=spurious_model,
                   source=f"{thresholds.source or 'thresholds'}, scaled to {lv:.3g} e-/px and |R| = {n:.0f} px")


# ---------------------------------------------------------------------------------------------
# Regions


def _radius_px(radius_A, radius_px, pixel_size_A, what):
    if radius_px is not None:
        return positive(radius_px, "radius_px", hint="the region's radius in pixels, e.g. 11.5")
    r = positive(radius_A, "radius_A", hint="the region's radius in Angstrom, the paper's 0.7")
    if pixel_size_A is None:
        raise ParameterError(f"{what} needs the pixel size to turn the {r:g} Å region radius into pixels, and "
                             "the image is not calibrated in length units",
                             hint="pass pixel_size_A=... (Angstrom per pixel), a calibrated hyperspy signal, "
                                  "or the radius in pixels (radius_px=...)")
    return r / pixel_size_A


def disk_region(position_px, radius_px, shape) -> np.ndarray:
    """Flat indices of the pixels whose centres lie within *radius_px* of *position_px* (row, col).

    The disk is clipped at the frame's edges, never wrapped: a column near the edge gets a smaller
    |R| and no pixels from the opposite side (a periodic image would test it against counts from
    elsewhere in the frame).
    """
    r0, c0 = (float(v) for v in position_px)
    rows, cols = int(shape[0]), int(shape[1])
    lo_r, hi_r = max(0, int(np.ceil(r0 - radius_px))), min(rows - 1, int(np.floor(r0 + radius_px)))
    lo_c, hi_c = max(0, int(np.ceil(c0 - radius_px))), min(cols - 1, int(np.floor(c0 + radius_px)))
    if lo_r > hi_r or lo_c > hi_c:
        return np.zeros(0, dtype=np.intp)
    rr, cc = np.mgrid[lo_r:hi_r + 1, lo_c:hi_c + 1]
    inside = (rr - r0) ** 2 + (cc - c0) ** 2 <= radius_px**2
    return (rr[inside] * cols + cc[inside]).astype(np.intp)


def _positions(columns, what="columns"):
    if isinstance(columns, ColumnSet):
        return columns.positions_px
    pos = np.asarray(columns, dtype=float)
    if pos.size == 0:
        return pos.reshape(0, 2)
    if pos.ndim != 2 or pos.shape[1] != 2 or not np.all(np.isfinite(pos)):
        raise ParameterError(f"{what} of shape {pos.shape} are not finite (n, 2) (row, column) pixel positions",
                             hint="pass a ColumnSet (detect_columns(...)) or an (n, 2) array")
    return pos


# ---------------------------------------------------------------------------------------------
# Inputs


def _pixel_size(pixel_size_A, *templates):
    if pixel_size_A is not None:
        return positive(pixel_size_A, "pixel_size_A", hint="Angstrom per pixel, e.g. 0.061")
    for template in templates:
        if template is not None:
            p = pixel_size_angstrom(template)
            if p is not None:
                return p
    return None


def _counts_and_denoised(noisy, denoised, *, movie: bool, strict: bool):
    what = "the Poisson likelihood-ratio test"
    require_counts(noisy, what=what + " (it compares models of the raw electron counts)", strict=strict)
    counts, noisy_template = unwrap(noisy, name=None if is_signal(noisy) else "the noisy counts")
    level, den_template = unwrap(denoised, name=None if is_signal(denoised) else "the denoised image")
    counts, level = np.asarray(counts, dtype=np.float64), np.asarray(level, dtype=np.float64)
    if movie:
        if counts.ndim != 3:
            raise DataShapeError(f"the noisy counts have shape {counts.shape}, but llr_over_time needs a "
                                 "(time, rows, columns) movie", hint="for one frame use column_llr")
        if level.shape != counts.shape and level.shape != counts.shape[1:]:
            raise DataShapeError(f"the denoised data have shape {level.shape}, the noisy counts {counts.shape}: "
                                 "they must be the same movie, or one denoised frame of the same size",
                                 hint="denoise the same (cropped, binned) movie you pass as counts")
    else:
        if counts.ndim != 2:
            raise DataShapeError(f"the noisy counts have shape {counts.shape}, but column_llr tests one frame",
                                 hint="pass one frame (movie.inav[k]), or use llr_over_time for a movie")
        if level.shape != counts.shape:
            raise DataShapeError(f"the denoised image has shape {level.shape}, the noisy counts {counts.shape}: "
                                 "the test compares them pixel by pixel",
                                 hint="denoise the same (cropped, binned) frame you pass as counts")
    return counts, level, noisy_template, den_template


def _vacuum_level(vacuum_level, noisy, vacuum):
    """(lambda_v, how): given, from a DoseEstimate, or estimated from the raw counts' vacuum."""
    if isinstance(vacuum_level, DoseEstimate):
        return positive(vacuum_level.dose_per_pixel, "the DoseEstimate's dose_per_pixel"), vacuum_level.method
    if vacuum_level is not None:
        return positive(vacuum_level, "vacuum_level (e-/px)", hint="the vacuum's counts per pixel, e.g. 0.45"), "given"
    # From the raw counts, not the denoised frame: a denoiser that brightens or darkens the
    # vacuum would otherwise move lambda_v towards its own columns.
    estimate = estimate_dose(noisy, "auto" if vacuum is None else vacuum)
    return estimate.dose_per_pixel, f"raw counts' vacuum ({estimate.method})"


def _find_columns(level, template, pixel_size_A, detect):
    if pixel_size_A is None:
        raise ParameterError("finding the columns (LoG blobs at the column scale) needs the pixel size",
                             hint="pass pixel_size_A=..., a calibrated signal, or the columns yourself (columns=...)")
    image = level if template is None else template._deepcopy_with_new_data(level)
    return detect_columns(image, pixel_size_A=pixel_size_A, **(detect or {}))


# ---------------------------------------------------------------------------------------------
# One frame: map and table


@dataclass
class ColumnLLR:
    """The test on one frame: ``map`` (Signal2D of the LLR, NaN outside the regions), ``rows``
    (one dict per column: row_px, col_px, row_A, col_A, region_px, lambda_c, lambda_v, mean_counts,
    llr, verdict), the ``columns`` tested and the ``thresholds`` used."""

    map: object
    rows: list
    columns: ColumnSet | None
    thresholds: LLRThresholds
    vacuum_level: float
    vacuum_source: str
    radius_px: float
    pixel_size_A: float | None

    @property
    def llr(self) -> np.ndarray:
        return np.array([r["llr"] for r in self.rows], dtype=float)

    @property
    def verdicts(self) -> list:
        return [r["verdict"] for r in self.rows]

    def counts(self) -> dict:
        """How many columns got each verdict."""
        return {v: self.verdicts.count(v) for v in VERDICTS}

    def format_table(self) -> str:
        """The table as text, one line per column, with the thresholds and the vacuum level."""
        head = (f"{'#':>3} {'row px':>7} {'col px':>7} {'row Å':>7} {'col Å':>7} {'|R|':>5} {'λc':>8} "
                f"{'λv':>8} {'x̄_R':>8} {'LLR':>9}  verdict")
        lines = [(f"Poisson LLR per column (Eq. 6), region radius {self.radius_px:.2f} px; "
                 f"λv = {self.vacuum_level:.4g} e-/px ({self.vacuum_source})"),
                 f"thresholds: {self.thresholds}", head]
        fmt = lambda v: "   -" if v is None else f"{v:7.2f}"
        for i, r in enumerate(self.rows):
            lines.append(f"{i:3d} {r['row_px']:7.2f} {r['col_px']:7.2f} {fmt(r['row_A'])} {fmt(r['col_A'])} "
                         f"{r['region_px']:5d} {r['lambda_c']:8.4g} {r['lambda_v']:8.4g} {r['mean_counts']:8.4g} "
                         f"{r['llr']:9.4g}  {r['verdict']}")
        tally = self.counts()
        lines.append(", ".join(f"{tally[v]} {v}" for v in VERDICTS))
        return "\n".join(lines)


def _column_statistics(counts_flat, level_flat, regions, lambda_v):
    """(region_px, lambda_c, mean_counts, llr) per region; counts_flat may be (pixels,) or (frames, pixels)."""
    sizes = np.array([len(idx) for idx in regions], dtype=int)
    lead = counts_flat.shape[:-1]
    lam = np.full(lead + (len(regions),), np.nan)
    xbar = np.full(lead + (len(regions),), np.nan)
    for j, idx in enumerate(regions):
        if len(idx):
            lam[..., j] = level_flat[..., idx].mean(-1)
            xbar[..., j] = counts_flat[..., idx].mean(-1)
    with np.errstate(invalid="ignore"):
        llr = poisson_llr(xbar, lam, lambda_v)
    return sizes, lam, xbar, llr


def _map_signal(values, shape, positions, regions, noisy_template, den_template, pixel_size_A):
    """NaN outside the regions; where disks overlap, a pixel shows its nearest column's LLR."""
    out = np.full(int(np.prod(shape)), np.nan)
    best = np.full(out.shape, np.inf)
    cols = int(shape[1])
    for j, idx in enumerate(regions):
        if not len(idx):
            continue
        d = (idx // cols - positions[j, 0]) ** 2 + (idx % cols - positions[j, 1]) ** 2
        nearer = d < best[idx]
        out[idx[nearer]], best[idx[nearer]] = values[j], d[nearer]
    out = out.reshape(shape)
    title, quantity = "Poisson LLR per column (column vs vacuum, per pixel)", "LLR per pixel (nats)"
    # The denoised signal's axes and metadata; never the raw counts' (the map is not counts).
    if den_template is not None and den_template.axes_manager.navigation_dimension == 0:
        sig = rewrap(out, den_template, title=title, quantity=quantity)
        md.set(sig, "counts", False)
        return sig
    import hyperspy.api as hs

    template = den_template if den_template is not None else noisy_template

    sig = hs.signals.Signal2D(out)
    sig.metadata.General.title = title
    sig.metadata.set_item("Signal.quantity", quantity)
    src = template.axes_manager.signal_axes if template is not None else None
    for k, ax in enumerate(sig.axes_manager.signal_axes):
        if src is not None:
            ax.name, ax.scale, ax.offset, ax.units = src[k].name, src[k].scale, src[k].offset, src[k].units
        elif pixel_size_A is not None:
            ax.name, ax.scale, ax.units = ("x", "y")[k], pixel_size_A, "Å"
    return sig


def column_llr(noisy, denoised, *, columns=None, vacuum_level=None, vacuum=None, thresholds=None,
               radius_A: float = REGION_RADIUS_A, radius_px=None, pixel_size_A=None, detect=None,
               strict: bool = True) -> ColumnLLR:
    """Which columns of a denoised frame do the raw counts support?  The paper's Eq. 6 per column.

    *noisy*: the raw frame in electron counts (2-D array or Signal2D; detector units raise
    :class:`NotCountsError`: convert with ``temnb.to_counts`` first).  *denoised*: the denoised
    frame, same shape, in the same units (expected electrons per pixel).  *columns*: a
    :class:`ColumnSet` or (n, 2) (row, column) pixel positions; by default the LoG blobs of the
    denoised frame (:func:`temnb.judge.columns.detect_columns`, with the keyword arguments in
    *detect*, e.g. ``{"polarity": "dark"}``).  The region of each column is the disk of
    *radius_A* (0.7 Å, the paper's) around it, in pixels from *pixel_size_A* or the signal's
    calibration (or *radius_px* directly), clipped at the frame's edges.

    *vacuum_level* (e-/px): given, a :class:`temnb.io.counts.DoseEstimate`, or None to measure it
    on the raw counts (:func:`temnb.io.counts.estimate_dose`, in the *vacuum* region when given):
    the raw vacuum is the unbiased choice, the denoised one carries the denoiser's errors.
    *thresholds*: :class:`LLRThresholds`, a (real, spurious) pair, or None for
    :data:`PAPER_THRESHOLDS` carried to this vacuum level and |R| (:func:`scale_thresholds`).
    *strict*: data not marked as counts are checked (:func:`temnb.io.counts.require_counts`);
    negative values always raise, ``strict=False`` turns the suggestive checks (non-integers, a
    noise variance far from the mean) into a :class:`CountsWarning`.

    Returns a :class:`ColumnLLR`: the map (NaN outside the regions), the table and the verdicts.
    """
    counts, level, noisy_t, den_t = _counts_and_denoised(noisy, denoised, movie=False, strict=strict)
    p = _pixel_size(pixel_size_A, den_t, noisy_t)
    r_px = _radius_px(radius_A, radius_px, p, "column_llr")
    lambda_v, how = _vacuum_level(vacuum_level, noisy, vacuum)
    if columns is None:
        columns = _find_columns(level, den_t, p, detect)
    elif detect is not None:
        raise ParameterError("detect=... sets up the column detection, but the columns were given",
                             hint="pass either columns=... or detect=..., not both")
    positions = _positions(columns)
    regions = [disk_region(pos, r_px, counts.shape) for pos in positions]
    sizes, lam, xbar, llr = _column_statistics(counts.ravel(), level.ravel(), regions, lambda_v)
    tested = sizes[sizes > 0]
    th = _as_thresholds(thresholds, lambda_v, float(np.median(tested)) if len(tested) else np.pi * r_px**2, p)
    rows = []
    for j, pos in enumerate(positions):
        rows.append({
            "row_px": float(pos[0]), "col_px": float(pos[1]),
            "row_A": None if p is None else float(pos[0] * p), "col_A": None if p is None else float(pos[1] * p),
            "region_px": int(sizes[j]), "lambda_c": float(lam[j]), "lambda_v": float(lambda_v),
            "mean_counts": float(xbar[j]), "llr": float(llr[j]),
            "verdict": "undetermined" if sizes[j] == 0 else th.verdict(llr[j]),
        })
    map_signal = _map_signal(llr, counts.shape, positions, regions, noisy_t, den_t, p)
    return ColumnLLR(map_signal, rows, columns if isinstance(columns, ColumnSet) else None, th,
                     float(lambda_v), how, float(r_px), p)


# ---------------------------------------------------------------------------------------------
# A movie: fixed columns, every frame


@dataclass
class ColumnLLRSeries:
    """The LLR of fixed columns in every frame: ``llr`` and ``lambda_c`` and ``mean_counts`` are
    (columns, frames); ``positions_px`` (columns, 2), ``positions_A`` (or None), ``region_px``
    (columns,), the vacuum level and the thresholds; ``verdicts`` (columns, frames) of str."""

    llr: np.ndarray
    lambda_c: np.ndarray
    mean_counts: np.ndarray
    positions_px: np.ndarray
    positions_A: np.ndarray | None
    region_px: np.ndarray
    vacuum_level: float
    vacuum_source: str
    thresholds: LLRThresholds
    verdicts: np.ndarray = field(repr=False)

    def fraction(self, verdict: str = "real") -> np.ndarray:
        """Per column, the fraction of frames with that verdict."""
        if verdict not in VERDICTS:
            raise ParameterError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
        return (self.verdicts == verdict).mean(axis=1)


def llr_over_time(noisy_movie, denoised, *, columns=None, vacuum_level=None, vacuum=None, thresholds=None,
                  radius_A: float = REGION_RADIUS_A, radius_px=None, pixel_size_A=None,
                  detect=None, strict: bool = True) -> ColumnLLRSeries:
    """The paper's Eq. 6 for every frame of a movie, at fixed column positions.

    *noisy_movie*: raw counts (time, rows, columns).  *denoised*: the denoised movie of the same
    shape, or one denoised frame (e.g. a time average) that every frame is tested against.
    *columns*: fixed positions; by default the LoG blobs of the denoised movie's time average (or of
    the one frame).  The vacuum level is one number for the movie (given, or measured on the raw
    movie's vacuum with :func:`temnb.io.counts.estimate_dose`), so that a column's LLR changes only
    with its own counts and level.  Other arguments as :func:`column_llr`.  Columns whose region
    falls outside the frame get NaN.
    """
    counts, level, noisy_t, den_t = _counts_and_denoised(noisy_movie, denoised, movie=True, strict=strict)
    p = _pixel_size(pixel_size_A, den_t, noisy_t)
    r_px = _radius_px(radius_A, radius_px, p, "llr_over_time")
    lambda_v, how = _vacuum_level(vacuum_level, noisy_movie, vacuum)
    if columns is None:
        reference = level.mean(0) if level.ndim == 3 else level
        template = None if den_t is None or level.ndim == 3 else den_t
        columns = _find_columns(reference, template, p, detect)
    elif detect is not None:
        raise ParameterError("detect=... sets up the column detection, but the columns were given",
                             hint="pass either columns=... or detect=..., not both")
    positions = _positions(columns)
    frames, shape = counts.shape[0], counts.shape[1:]
    regions = [disk_region(pos, r_px, shape) for pos in positions]
    level_flat = level.reshape(frames, -1) if level.ndim == 3 else np.broadcast_to(level.ravel(), (frames, level.size))
    sizes, lam, xbar, llr = _column_statistics(counts.reshape(frames, -1), level_flat, regions, lambda_v)
    tested = sizes[sizes > 0]
    th = _as_thresholds(thresholds, lambda_v, float(np.median(tested)) if len(tested) else np.pi * r_px**2, p)
    llr_t = llr.T
    verdicts = np.full(llr_t.shape, "undetermined", dtype=object)
    verdicts[llr_t >= th.real] = "real"
    verdicts[llr_t <= th.spurious] = "spurious"
    return ColumnLLRSeries(llr_t, lam.T, xbar.T, positions, None if p is None else positions * p, sizes,
                           float(lambda_v), how, th, verdicts)


# ---------------------------------------------------------------------------------------------
# Deriving the thresholds again: real columns against phantoms on simulated frames with truth


def phantom_sites(vacuum, footprint_px: float, *, spacing_px=None, n=None, seed=0) -> np.ndarray:
    """(n, 2) integer pixel positions in the vacuum where a phantom of radius *footprint_px* fits.

    Candidates lie on a square grid of *spacing_px* (default three footprints, so two phantoms
    never touch), at least *footprint_px* inside the vacuum mask and the frame; *n* of them
    (default all) are drawn with *seed*.
    """
    from scipy.ndimage import binary_erosion

    mask = np.asarray(vacuum)
    if mask.dtype != bool or mask.ndim != 2:
        raise ParameterError(f"vacuum must be a 2-D boolean mask, not {mask.dtype} of shape {mask.shape}",
                             hint="e.g. temnb.judge.columns.vacuum_region(image.shape, scene)")
    radius = positive(footprint_px, "footprint_px")
    spacing = 3 * radius if spacing_px is None else positive(spacing_px, "spacing_px")
    k = int(np.ceil(radius))
    disk = np.add.outer(np.arange(-k, k + 1) ** 2, np.arange(-k, k + 1) ** 2) <= radius**2
    room = binary_erosion(mask, disk, border_value=0)
    step = max(1, round(spacing))
    grid = np.zeros_like(room)
    grid[k::step, k::step] = True
    sites = np.argwhere(room & grid)
    if n is not None and len(sites) > n:
        sites = sites[np.sort(np.random.default_rng(seed).choice(len(sites), int(n), replace=False))]
    return sites.astype(float)


def _mean_column(clean, positions, radius_px, background):
    """The mean excess over *background* of the patches of radius *radius_px* around *positions*."""
    k = int(np.ceil(radius_px))
    rr, cc = np.mgrid[-k:k + 1, -k:k + 1]
    disk = rr**2 + cc**2 <= radius_px**2
    patches = []
    for r, c in np.round(positions).astype(int):
        if k <= r < clean.shape[0] - k and k <= c < clean.shape[1] - k:
            patches.append(clean[r - k:r + k + 1, c - k:c + k + 1] - background)
    if not patches:
        raise DataValueError("no real column lies far enough from the frame's edge to copy as a phantom",
                             hint="pass columns inside the frame, or a larger frame")
    return np.where(disk, np.mean(patches, axis=0), 0.0)


def add_phantom_columns(clean, phantom_positions_px, real_positions_px, *, radius_px, vacuum_level=None,
                        vacuum=None) -> np.ndarray:
    """*clean* with copies of its mean column painted at *phantom_positions_px*: a hallucinated image.

    What a denoiser that invents columns outputs: the mean excess over the vacuum of the real
    columns' patches (radius *radius_px*, e.g. twice the test's region), added to the clean image
    at the (rounded) phantom positions, where the raw counts hold only vacuum.  The vacuum level is
    *vacuum_level* or the clean image's mean over *vacuum*.
    """
    image = np.array(clean, dtype=np.float64)
    if vacuum_level is None:
        if vacuum is None:
            raise ParameterError("add_phantom_columns needs the vacuum level or the vacuum mask")
        vacuum_level = float(image[np.asarray(vacuum, bool)].mean())
    column = _mean_column(image, _positions(real_positions_px), radius_px, vacuum_level)
    k = column.shape[0] // 2
    for r, c in np.round(_positions(phantom_positions_px, "phantom positions")).astype(int):
        r0, r1, c0, c1 = max(r - k, 0), min(r + k + 1, image.shape[0]), max(c - k, 0), min(c + k + 1, image.shape[1])
        image[r0:r1, c0:c1] += column[r0 - (r - k):r1 - (r - k), c0 - (c - k):c1 - (c - k)]
    return image


def contrast_over_disk(image, columns, vacuum, *, radius_A: float = REGION_RADIUS_A, radius_px=None,
                       pixel_size_A=None) -> float:
    """What the test has to work with: the median over *columns* of (the mean of *image* over the
    column's disk) / (its mean over the boolean *vacuum* mask) - 1.  About -0.2 for Pt at +5 nm
    defocus, a few per cent at the sample's -8 nm, where no dose makes the test decide; the expected
    LLR goes as its square (:func:`expected_llr`).  *image*: a clean frame (array or Signal2D)."""
    arr, template = unwrap(image, name="the image")
    if np.ndim(arr) != 2:
        raise DataShapeError(f"needs one frame (rows, columns), got shape {np.shape(arr)}")
    arr = np.asarray(arr, dtype=np.float64)
    mask = np.asarray(vacuum, dtype=bool)
    if mask.shape != arr.shape or not mask.any():
        raise ParameterError(f"vacuum must be a non-empty boolean mask of the image's shape {arr.shape}")
    r_px = _radius_px(radius_A, radius_px, _pixel_size(pixel_size_A, template), "the disk")
    level = arr[mask].mean()
    flat = arr.ravel()
    regions = [disk_region(p, r_px, arr.shape) for p in _positions(columns)]
    means = [flat[r].mean() for r in regions if r.size]          # disks wholly outside the frame: none
    if not means:
        raise ParameterError("no column's disk lies inside the image", hint="give columns in the image's pixels")
    return float(np.median(means) / level - 1)


def roc_auc(positives, negatives) -> float:
    """Area under the ROC curve: the probability that a real column's LLR beats a phantom's (ties half).

    The Mann-Whitney U statistic over the product of the two sample sizes.
    """
    from scipy.stats import rankdata

    pos, neg = np.asarray(positives, float).ravel(), np.asarray(negatives, float).ravel()
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if not len(pos) or not len(neg):
        raise DataValueError("the ROC AUC needs at least one real and one phantom LLR")
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@dataclass
class ThresholdDerivation:
    """The LLR distributions of real and phantom columns on simulated frames, and what they give.

    ``real_llr`` and ``phantom_llr`` (all noise draws), ``auc`` (real over phantom),
    ``thresholds`` (:class:`LLRThresholds` at the chosen error rates), the measured error rates of
    those thresholds, the mean vacuum level and |R|.
    """

    real_llr: np.ndarray
    phantom_llr: np.ndarray
    auc: float
    thresholds: LLRThresholds
    false_real_rate: float
    false_spurious_rate: float
    measured_false_real: float
    measured_false_spurious: float
    vacuum_level: float
    region_px: float
    pixel_size_A: float | None
    n_images: int
    n_noise: int

    def summary(self) -> str:
        undecided = lambda x: float(np.mean((x > self.thresholds.spurious) & (x < self.thresholds.real)))
        return (f"{len(self.real_llr)} real and {len(self.phantom_llr)} phantom LLRs ({self.n_images} images x "
                f"{self.n_noise} noise draws) at {self.vacuum_level:.3g} e-/px, |R| = {self.region_px:.0f} px: "
                f"ROC AUC {self.auc:.3f}; {self.thresholds}; phantoms called real {self.measured_false_real:.1%} "
                f"(asked {self.false_real_rate:.1%}), real called spurious {self.measured_false_spurious:.1%} "
                f"(asked {self.false_spurious_rate:.1%}); undetermined: real {undecided(self.real_llr):.1%}, "
                f"phantoms {undecided(self.phantom_llr):.1%}")


def _per_image(value, n, what):
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ParameterError(f"{what}: {len(value)} given for {n} images", hint="one per image")
        return list(value)
    return [value] * n


def _rate(value, name):
    v = float(value)
    if not 0 < v < 0.5:
        raise ParameterError(f"{name} {value!r} must be a fraction between 0 and 0.5, e.g. 0.01")
    return v


def derive_thresholds(clean, real_columns, vacuum, *, dose=None, pixel_size_A=None,
                      radius_A: float = REGION_RADIUS_A, radius_px=None, phantoms=None,
                      false_real_rate: float = FALSE_REAL_RATE, false_spurious_rate: float = FALSE_SPURIOUS_RATE,
                      n_noise: int = 50, seed=0) -> ThresholdDerivation:
    """The verdict thresholds for the regime at hand, measured as the paper did on simulated frames.

    *clean*: noise-free frames with truth (one 2-D image or Signal2D, a (n, rows, cols) stack or a
    list), in expected electrons per pixel, or scaled so that their vacuum is *dose* (e-/px, or a
    :class:`temnb.core.dose.Dose`: ``Dose.from_area(121, pixel_size)`` is the paper's 121 e-/Å²
    per frame on this pixel).  *real_columns*: the true columns per image (ColumnSet or (n, 2)
    pixels, e.g. :func:`temnb.judge.columns.true_columns`).  *vacuum*: the vacuum mask per image
    (:func:`temnb.judge.columns.vacuum_region`); phantoms go there, and the vacuum level of each
    noise draw is the mean raw count in it (the unbiased estimate used in practice).

    Each image becomes the output of an oracle that hallucinates: the clean image with copies of
    its mean column (:func:`add_phantom_columns`, footprint twice the region) at *phantoms* (default
    :func:`phantom_sites`, as many as real columns).  For *n_noise* seeded Poisson draws of the
    clean image (without the phantoms) the LLR of every real column and phantom is computed as in
    :func:`column_llr`.  The real threshold is the (1 - *false_real_rate*) quantile of the phantoms'
    LLRs (so that share of phantoms is called real), the spurious one the *false_spurious_rate*
    quantile of the real columns' (that share of real columns is called spurious); where the two
    distributions separate so well that the cuts cross, both sit at their midpoint.  The cuts are
    tail quantiles: beyond a 1 % cut of 2,000 values lie about 20, so on one image they move by a
    fair part of the distribution's spread from one seed to the next; pool images (a list) and
    noise draws until they settle.
    """
    rates = _rate(false_real_rate, "false_real_rate"), _rate(false_spurious_rate, "false_spurious_rate")
    n_noise = int(n_noise)
    if n_noise < 1:
        raise ParameterError(f"n_noise {n_noise!r} must be at least one noise draw per image")
    if isinstance(clean, (list, tuple)):
        images = [unwrap(c, name=f"clean[{i}]") for i, c in enumerate(clean)]
    else:
        arr, template = unwrap(clean, name=None if is_signal(clean) else "the clean images")
        images = [(a, None) for a in arr] if np.ndim(arr) == 3 else [(arr, template)]
    if isinstance(real_columns, (list, tuple)) and len(images) > 1:
        truths = _per_image(real_columns, len(images), "real_columns")
    else:
        truths = [real_columns] * len(images)
    vacua = _per_image(vacuum, len(images), "vacuum")
    phantom_lists = _per_image(phantoms, len(images), "phantoms")
    per_pixel = dose.per_pixel if isinstance(dose, Dose) else (None if dose is None else positive(dose, "dose (e-/px)"))
    p = _pixel_size(pixel_size_A, *(t for _, t in images))
    if p is None and isinstance(dose, Dose):
        p = dose.pixel_size_A
    if isinstance(dose, Dose) and dose.pixel_size_A is not None and p is not None \
            and not np.isclose(dose.pixel_size_A, p, rtol=1e-3):
        raise ParameterError(f"the dose is given on {dose.pixel_size_A:g} Å pixels, the images have {p:g} Å",
                             hint=f"Dose.from_area(dose.per_area, {p:g}) is the same dose per Å² on these pixels")
    r_px = _radius_px(radius_A, radius_px, p, "derive_thresholds")
    rng = np.random.default_rng(seed)
    real_llr, phantom_llr, levels, sizes = [], [], [], []
    for (image, _), truth, vac, sites in zip(images, truths, vacua, phantom_lists):
        image = np.asarray(image, dtype=np.float64)
        if image.ndim != 2:
            raise DataShapeError(f"a clean image has shape {image.shape}, not (rows, columns)")
        vac = np.asarray(vac)
        if vac.dtype != bool or vac.shape != image.shape:
            raise ParameterError(f"vacuum must be a boolean mask of the image's shape {image.shape}",
                                 hint="temnb.judge.columns.vacuum_region(image.shape, scene)")
        level = float(image[vac].mean())
        if not level > 0:
            raise DataValueError(f"the clean image's vacuum level is {level:g}: not a count rate",
                                 hint="pass clean images in expected electrons (or intensity) per pixel")
        if per_pixel is not None:
            image = image * (per_pixel / level)
            level = per_pixel
        real_pos = _positions(truth, "real_columns")
        sites = phantom_sites(vac, 2 * r_px, n=len(real_pos), seed=rng) if sites is None \
            else _positions(sites, "phantoms")
        if not len(sites):
            raise DataValueError("no room for a phantom in the vacuum", hint="pass a frame with more vacuum, "
                                 "or the phantom positions (phantoms=...)")
        hallucinated = add_phantom_columns(image, sites, real_pos, radius_px=2 * r_px, vacuum_level=level)
        regions = [disk_region(pos, r_px, image.shape) for pos in np.vstack([real_pos, np.round(sites)])]
        for _ in range(n_noise):
            counts = rng.poisson(image).astype(np.float64)
            lambda_v = float(counts[vac].mean())
            size, _, _, llr = _column_statistics(counts.ravel(), hallucinated.ravel(), regions, lambda_v)
            real_llr.append(llr[:len(real_pos)])
            phantom_llr.append(llr[len(real_pos):])
            levels.append(lambda_v)
        sizes.append(size)
    real_llr, phantom_llr = np.concatenate(real_llr), np.concatenate(phantom_llr)
    real_llr, phantom_llr = real_llr[np.isfinite(real_llr)], phantom_llr[np.isfinite(phantom_llr)]
    real_cut = float(np.quantile(phantom_llr, 1 - rates[0]))
    spurious_cut = float(np.quantile(real_llr, rates[1]))
    # Keep each cut as mean + z std of its distribution, so that scale_thresholds moves both parts.
    models = []
    for values, cut in ((phantom_llr, real_cut), (real_llr, spurious_cut)):
        mean, std = float(values.mean()), float(values.std(ddof=1))
        models.append((mean, std, (cut - mean) / std if std > 0 else 0.0))
    real_t, spurious_t = _settle(real_cut, spurious_cut)
    n_region = float(np.median(np.concatenate(sizes)))
    lv = float(np.mean(levels))
    th = LLRThresholds(real_t, spurious_t, lv, n_region, p, models[0], models[1],
                       source=f"derived at {lv:.3g} e-/px (phantoms called real {rates[0]:.1%}, "
                              f"real columns called spurious {rates[1]:.1%})")
    return ThresholdDerivation(real_llr, phantom_llr, roc_auc(real_llr, phantom_llr), th, rates[0], rates[1],
                               float(np.mean(phantom_llr >= th.real)), float(np.mean(real_llr <= th.spurious)),
                               lv, n_region, p, len(images), n_noise)
