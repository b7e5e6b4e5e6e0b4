"""Scores of atomic-column recovery: one-to-one matching, precision / recall / F1 / Jaccard for the
surface and the bulk inside the particle's neighbourhood, phantom columns in the vacuum, and their
spread over many noise realisations (box plots, curves against dose).

The detection, the surface flags and the regions (:func:`temnb.judge.columns.particle_region`,
:func:`temnb.judge.columns.vacuum_region`) are in :mod:`temnb.judge.columns`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.checks import positive
from ..core.errors import DataShapeError, DataValueError, ParameterError
from ..core.signals import is_signal, unwrap
from ..io.calibration import pixel_size_angstrom
from .columns import METRICS, SUBSETS, ColumnSet, _region_mask, detect_columns, surface_flags

# ---------------------------------------------------------------------------------------------
# Matching and scores


@dataclass
class Match:
    """One-to-one pairing of detected and true columns.

    *pairs*: (k, 2) indices (detected, true); *distances_A*: (k,) Angstrom;
    *unmatched_detected* / *unmatched_truth*: indices left over (false positives /
    false negatives).
    """

    pairs: np.ndarray
    distances_A: np.ndarray
    unmatched_detected: np.ndarray
    unmatched_truth: np.ndarray


def _check_set(obj, name):
    if not isinstance(obj, ColumnSet):
        raise ParameterError(f"{name} is a {type(obj).__name__}, not a ColumnSet",
                             hint="use detect_columns(...) or true_columns(scene, pixel_size_A)")


def _check_distance(max_distance_A):
    try:
        d = float(max_distance_A)
    except (TypeError, ValueError):
        d = float("nan")
    if not (np.isfinite(d) and d > 0):
        raise ParameterError(f"max_distance_A {max_distance_A!r} must be a positive distance in Angstrom",
                             hint="about a third of the column spacing, e.g. 0.8 A for Pt")
    return d


def match_columns(detected: ColumnSet, truth: ColumnSet, *, max_distance_A: float = 0.8) -> Match:
    """Pair detected and true columns one-to-one, never further apart than *max_distance_A*.

    The pairing is an optimal assignment (``scipy.optimize.linear_sum_assignment``):
    as many pairs as possible within the cut, and of those the smallest total
    distance, so two detections near one column give one pair and one leftover.
    Distances are in Angstrom (each set's own pixel size).
    """
    from scipy.optimize import linear_sum_assignment

    _check_set(detected, "detected")
    _check_set(truth, "truth")
    cut = _check_distance(max_distance_A)
    nd, nt = len(detected), len(truth)
    if nd == 0 or nt == 0:
        return Match(np.zeros((0, 2), int), np.zeros(0), np.arange(nd), np.arange(nt))
    dist = np.linalg.norm(detected.positions_A[:, None] - truth.positions_A[None], axis=-1)
    allowed = dist <= cut
    # A pair beyond the cut costs more than any set of allowed pairs could, so the
    # assignment first maximises the number of allowed pairs, then minimises distance.
    cost = np.where(allowed, dist, cut * (min(nd, nt) + 1) + 1.0)
    rows, cols = linear_sum_assignment(cost)
    ok = allowed[rows, cols]
    rows, cols = rows[ok], cols[ok]
    return Match(np.column_stack([rows, cols]).astype(int), dist[rows, cols],
                 np.setdiff1d(np.arange(nd), rows), np.setdiff1d(np.arange(nt), cols))


def _rates(tp, fp, fn):
    # Empty cases: no claims -> precision 1; nothing to find -> recall 1; F1 and
    # Jaccard as 2tp/(2tp+fp+fn) and tp/(tp+fp+fn), 1 when all three are 0.
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    jaccard = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    return float(precision), float(recall), float(f1), float(jaccard)


def _inside(columns: ColumnSet, mask) -> np.ndarray:
    """True for the columns whose nearest pixel (clipped to the frame) is in *mask*."""
    idx = np.clip(np.round(columns.positions_px).astype(int), 0, np.array(mask.shape) - 1)
    return mask[idx[:, 0], idx[:, 1]]


def _mask(value, name):
    mask = np.asarray(value)
    if mask.ndim != 2 or mask.dtype != bool:
        helper = "particle_region(image.shape, scene)" if name == "region" else "vacuum_region(image.shape, scene)"
        raise ParameterError(f"{name} must be a 2-D boolean mask of the image (got {mask.dtype} of shape "
                             f"{mask.shape})", hint=f"use {helper}")
    return mask


def score(detected: ColumnSet, truth: ColumnSet, *, max_distance_A: float = 0.8, subset=None,
          surface_method=None, region=None, vacuum=None) -> dict:
    """Precision, recall, F1, Jaccard, counts, mean position error and phantoms of *detected*
    against *truth*.

    *region* (a boolean mask of the image, e.g. ``particle_region(shape, scene)``):
    only the columns, detected and true, inside it are scored; the others are
    neither found nor missed.  *vacuum* (e.g. ``vacuum_region(shape, scene)``): the
    detections in it (and not in *region*) are ``phantoms``, reported apart with
    ``phantoms_per_nm2`` of vacuum and not counted in the rates; both are NaN
    without *vacuum*.

    The two sets are matched once (:func:`match_columns`).  *subset* None: every
    column.  'surface': the true surface columns (the truth's own flags, the
    scene's) against the detected columns that look like surface: their own
    flags, or, when they have none, a *region* is given or a *surface_method* is
    named, :func:`surface_flags` ('hull' unless named) of the scored detections.
    A pair counts as a true positive only when both are surface; a detected
    surface column paired with a true bulk one, or with nothing, is a false
    positive; a true surface column paired with a detected bulk one, or with
    nothing, a false negative.  'bulk': the same with the flags negated.

    Empty cases never give NaN rates: precision is 1 when nothing is claimed,
    recall is 1 when there is nothing to find, and F1 = 2tp/(2tp+fp+fn) and
    Jaccard = tp/(tp+fp+fn) are 1 when both sets are empty (0 when only one is).
    ``mean_error_A`` (mean distance of the true-positive pairs) is NaN when there
    are no true positives.
    """
    if subset not in (None, "all", "surface", "bulk"):
        raise ParameterError(f"subset {subset!r} is not None, 'surface' or 'bulk'")
    _check_set(detected, "detected")
    _check_set(truth, "truth")
    phantoms, density = float("nan"), float("nan")
    scored = np.ones(len(detected), bool)
    if region is not None:
        region = _mask(region, "region")
        scored = _inside(detected, region)
        truth = truth.select(_inside(truth, region))
    if vacuum is not None:
        vacuum = _mask(vacuum, "vacuum")
        if region is not None and vacuum.shape != region.shape:
            raise ParameterError(f"the vacuum mask {vacuum.shape} and the region {region.shape} differ in shape",
                                 hint="build both for the same image")
        phantoms = int((_inside(detected, vacuum) & ~scored).sum())
        area_nm2 = float(vacuum.sum()) * (detected.pixel_size_A / 10.0) ** 2
        density = phantoms / area_nm2 if area_nm2 > 0 else float("nan")
    own_flags = detected.surface is not None and region is None and surface_method is None
    detected = detected.select(scored)
    match = match_columns(detected, truth, max_distance_A=max_distance_A)
    nd, nt = len(detected), len(truth)
    if subset in (None, "all"):
        det_in, true_in = np.ones(nd, bool), np.ones(nt, bool)
    else:
        det_surface = detected.surface if own_flags else surface_flags(detected, method=surface_method or "hull")
        true_surface = truth.surface if truth.surface is not None else surface_flags(truth)
        det_in, true_in = (det_surface, true_surface) if subset == "surface" else (~det_surface, ~true_surface)
    d, t = match.pairs[:, 0], match.pairs[:, 1]
    both = det_in[d] & true_in[t]
    tp = int(both.sum())
    fp = int(det_in.sum()) - tp
    fn = int(true_in.sum()) - tp
    precision, recall, f1, jaccard = _rates(tp, fp, fn)
    error = float(match.distances_A[both].mean()) if tp else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "jaccard": jaccard, "tp": tp, "fp": fp, "fn": fn,
            "mean_error_A": error, "phantoms": phantoms, "phantoms_per_nm2": density}


# ---------------------------------------------------------------------------------------------
# Many noise realisations


def _expected_counts(clean_image, dose):
    """The clean frame as expected electrons per pixel (array), and its Angstrom per pixel or None."""
    from ..core import metadata as md

    array, template = unwrap(clean_image, name="the clean image")
    if array.ndim != 2:
        how = "clean.inav[k]" if template is not None else "clean[k]"
        raise DataShapeError(f"the clean image has shape {tuple(array.shape)}, but one frame is needed",
                             hint=f"pass one frame of the clean movie ({how})")
    pixel = pixel_size_angstrom(template) if template is not None else None
    expected = np.asarray(array, dtype=np.float64)
    if (expected < 0).any():
        raise DataValueError("the clean image has negative values, so it is not expected electrons",
                             hint="pass the clean (truth) frame, scaled to electrons per pixel")
    if dose is not None:
        dose = positive(dose, "dose", hint="electrons per pixel in the vacuum, e.g. 0.45")
        current = md.get(template, "dose_per_pixel") if template is not None else None
        if current is None:
            # An array without a dose is taken as an image normalised to vacuum = 1.
            level = float(np.median(expected))
            if not 0.5 <= level <= 2.0:
                raise ParameterError(f"the clean image's median is {level:.3g}, so it is not normalised to "
                                     "vacuum = 1 and its dose is unknown",
                                     hint="pass dose=None if it is already in electrons per pixel")
            current = 1.0
        expected = expected * (float(dose) / float(current))
    return expected, pixel


def recovery_over_realisations(clean_image, truth: ColumnSet, denoiser, *, n: int = 20, dose=None,
                               seed=0, region=None, vacuum=None, detect_kwargs=None,
                               max_distance_A: float = 0.8, surface_method=None,
                               progress: bool = True) -> list[dict]:
    """Column recovery after denoising, over *n* Poisson realisations of one clean frame.

    *clean_image*: one clean frame in expected electrons per pixel (array or signal,
    e.g. ``temnb.load_sample('truth').inav[0]``); with *dose* (e-/px in vacuum) it
    is rescaled first: by the signal's ``dose_per_pixel`` metadata, or, for an
    array, taken as normalised to vacuum = 1.  Each realisation draws Poisson
    counts (seeded by *seed*), calls ``denoiser(noisy_frame)`` (given a signal when
    *clean_image* is one, else a float array; it must return the same shape),
    detects columns on the whole frame (:func:`detect_columns` with *vacuum* and
    *detect_kwargs*; the pixel size is *truth*'s unless given) and scores them
    (:func:`score` with *region*, *vacuum* and *surface_method*).  *region* and
    *vacuum*: boolean masks or callables ``shape -> mask``, e.g.
    ``particle_region(frame.shape, scene)`` and ``vacuum_region(frame.shape, scene)``.
    Without *region* the whole frame counts, support columns included; without
    *vacuum* the threshold comes from the flattest part of each frame and no
    phantoms are counted.

    Returns one row per realisation and subset ('surface', 'bulk', 'all'):
    realisation, subset, precision, recall, f1, jaccard, tp, fp, fn, mean_error_A,
    phantoms, phantoms_per_nm2, n_detected, threshold and noise (the detector's level and the
    vacuum's noise, image units).
    """
    from tqdm.auto import tqdm

    from ..core import metadata as md
    from ..core.signals import rewrap

    _check_set(truth, "truth")
    _check_distance(max_distance_A)
    if not callable(denoiser):
        raise ParameterError(f"denoiser is a {type(denoiser).__name__}, not a function of a noisy frame",
                             hint="pass e.g. lambda frame: temnb.classic.filters.gaussian(frame, 2)")
    if int(n) != n or n < 1:
        raise ParameterError(f"n = {n!r} realisations: give a whole number of at least 1")
    expected, pixel = _expected_counts(clean_image, dose)
    template = clean_image if is_signal(clean_image) else None
    kwargs = {"pixel_size_A": truth.pixel_size_A, **(detect_kwargs or {})}
    if pixel is not None and not np.isclose(pixel, kwargs["pixel_size_A"], rtol=1e-3):
        raise ParameterError(f"the clean image has {pixel:g} A pixels but the true columns {truth.pixel_size_A:g} A",
                             hint="build the truth with the image's pixel size: true_columns(scene, pixel)")
    region = None if region is None else _region_mask(region, expected.shape)
    if vacuum is not None:
        vacuum = _region_mask(vacuum, expected.shape, "vacuum")
        kwargs.setdefault("vacuum", vacuum)
    if region is not None:  # the support is never detected; the vacuum is, for its phantoms
        kwargs.setdefault("region", region if vacuum is None else region | vacuum)
    rng = np.random.default_rng(seed)
    rows = []
    for k in tqdm(range(int(n)), desc="realisations", disable=not progress):
        noisy = rng.poisson(expected).astype(np.float32)
        if template is not None:
            noisy = rewrap(noisy, template, title=f"Poisson realisation {k}")
            if dose is not None:  # the realisation is at the requested dose, whatever the clean frame's was
                md.set(noisy, "dose_per_pixel", float(dose))
        frame = denoiser(noisy)
        out = np.asarray(getattr(frame, "data", frame))
        if out.shape != expected.shape:
            raise DataShapeError(f"the denoiser returned shape {out.shape} for a {expected.shape} frame",
                                 hint="the denoiser must return one frame of the same size")
        if not np.all(np.isfinite(out)):
            raise DataValueError("the denoiser returned NaN or infinite values",
                                 hint="check the denoiser on one noisy frame first")
        detected = detect_columns(out, **kwargs)
        for subset in SUBSETS:
            result = score(detected, truth, max_distance_A=max_distance_A, region=region, vacuum=vacuum,
                           subset=None if subset == "all" else subset, surface_method=surface_method)
            rows.append({"realisation": k, "subset": subset, **result, "n_detected": len(detected),
                         "threshold": detected.threshold, "noise": detected.noise})
    return rows


def recovery_against_dose(clean_image, truth: ColumnSet, denoisers: dict, doses, *, n: int = 3,
                          subset: str = "surface", metric: str = "f1", **kwargs) -> dict:
    """Median *metric* of *subset* columns for every denoiser at every dose.

    *denoisers* maps names to functions of a noisy frame (as for
    :func:`recovery_over_realisations`, which each cell runs with *n* realisations and the
    other keywords, e.g. ``seed``, ``region``, ``vacuum``, ``max_distance_A``, ``progress``).
    *metric*: one of precision, recall, f1, jaccard, or 'phantoms' (needs ``vacuum``).
    Returns ``{name: [median at each dose]}`` in the order of *doses*.  The check that the
    whole draw -> denoise -> detect -> score chain works: F1 must approach 1 as the dose grows."""
    if metric not in METRICS + ("phantoms",):
        raise ParameterError(f"metric = {metric!r}; use one of {', '.join(METRICS)} or phantoms")
    if subset not in SUBSETS:
        raise ParameterError(f"subset = {subset!r}; use one of {', '.join(SUBSETS)}")
    doses = [float(d) for d in doses]
    if not doses or not isinstance(denoisers, dict) or not denoisers:
        raise ParameterError("give at least one dose and a dict {name: denoiser}")
    return {name: [summarise(recovery_over_realisations(clean_image, truth, denoiser, n=n, dose=dose,
                                                        **kwargs))[subset][metric] for dose in doses]
            for name, denoiser in denoisers.items()}


def plot_recovery_against_dose(doses, medians: dict, reference: float | None = None, *, ax=None,
                               ylabel: str = "median surface F1", reference_label: str = "published U-Net at 0.45"):
    """One line per denoiser of :func:`recovery_against_dose` on a logarithmic dose axis."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.4))
    for name, values in medians.items():
        ax.semilogx(list(doses), values, "o-", label=name)
    if reference is not None:
        ax.axhline(reference, ls="--", color="k", lw=0.8, label=reference_label)
    ax.set(xlabel="dose (e⁻/px)", ylabel=ylabel, ylim=(0, 1.05))
    ax.legend(fontsize=8)
    return ax.figure


def summarise(rows: list[dict]) -> dict:
    """Medians per subset and metric: ``{subset: {metric: median, 'phantoms': median, 'n': realisations}}``
    (phantoms NaN when the rows have none)."""
    if not rows:
        raise ParameterError("there are no rows to summarise", hint="run recovery_over_realisations first")
    out = {}
    for subset in dict.fromkeys(r["subset"] for r in rows):
        mine = [r for r in rows if r["subset"] == subset]
        out[subset] = {m: float(np.median([r[m] for r in mine])) for m in METRICS}
        phantoms = np.array([r.get("phantoms", np.nan) for r in mine], dtype=float)
        out[subset]["phantoms"] = float(np.median(phantoms)) if np.isfinite(phantoms).all() else float("nan")
        out[subset]["n"] = len(mine)
    return out


def plot_boxes(rows: list[dict], reference: dict | None = None, *, subsets=("surface", "bulk"), ax=None,
               reference_label: str = "Mohan et al. 2022"):
    """Box plots of precision, recall, F1 and Jaccard over realisations, one colour per subset.

    *reference*: e.g. :data:`PUBLISHED_SURFACE`; its values are drawn as dashed
    lines across the first subset's boxes.  Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    if not rows:
        raise ParameterError("there are no rows to plot", hint="run recovery_over_realisations first")
    subsets = [s for s in subsets if any(r["subset"] == s for r in rows)]
    if not subsets:
        raise ParameterError("none of the rows belongs to the subsets asked for")
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.6 * len(METRICS) * len(subsets) + 1, 3.2))
    else:
        fig = ax.figure
    width = 0.8 / len(subsets)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, subset in enumerate(subsets):
        data = [[r[m] for r in rows if r["subset"] == subset] for m in METRICS]
        where = np.arange(len(METRICS)) + (j - (len(subsets) - 1) / 2) * width
        box = ax.boxplot(data, positions=where, widths=0.9 * width, patch_artist=True, manage_ticks=False)
        for patch in box["boxes"]:
            patch.set_facecolor(colours[j % len(colours)])
            patch.set_alpha(0.5)
        box["boxes"][0].set_label(subset)
        if reference and j == 0:
            label = reference_label
            for i, metric in enumerate(METRICS):
                if metric in reference:
                    ax.hlines(reference[metric], where[i] - width / 2, where[i] + width / 2, colors="k",
                              linestyles="--", label=label)
                    label = None  # one legend entry
    ax.set_xticks(np.arange(len(METRICS)), [m if m != "f1" else "F1" for m in METRICS])
    ax.set_ylabel("column recovery")
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
    ax.legend(loc="lower left", fontsize="small")
    return fig
