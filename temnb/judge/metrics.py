"""Image-quality metrics against a known clean image: PSNR, SSIM and comparison tables.

Both need ground truth, so they are for simulated data (temnb.simulation.synthetic,
temnb.simulation.hrtem).  The PSNR peak is the CLEAN image's, never the noisy estimate's (whose
extremes are mostly noise and would flatter it), under one of two conventions, named in every
table:

* ``peak="max"`` (the default): the clean image's maximum, Eq. 1 of Mohan et al. (2022) -- the
  convention of every published number temnb compares with (:data:`PUBLISHED_045`);
* ``peak="range"``: the clean image's max - min, skimage's ``data_range``.  On the bundled sample
  it is about 10 dB below the paper's convention at the same error (the vacuum is not at zero).

SSIM follows the same choice for its ``data_range``.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from ..core.errors import DataShapeError, DataValueError, ParameterError
from ..core.signals import require_image_data, source_label, unwrap

__all__ = ["psnr", "psnr_per_frame", "ssim", "compare", "format_table", "PUBLISHED_045", "PUBLISHED_PEAK",
           "PUBLISHED_SOURCE", "PEAKS", "peak_value", "describe_peak", "tune_filter", "TUNING_GRIDS", "Tuned"]

PEAKS = ("max", "range")

#: Table 1 of Mohan, Manzorro, Vincent, Tang, Sheth, Simoncelli, Matteson, Crozier &
#: Fernandez-Granda, "Deep denoising for scientific discovery: a case study in electron
#: microscopy", IEEE Transactions on Computational Imaging 8 (2022): mean PSNR (dB, peak = the
#: clean image's maximum) and SSIM on the simulated Pt/CeO2 validation set at 0.45 e-/px on
#: 0.061 Å pixels (121 e-/Å² per frame).  Keys are temnb's filter names where temnb has the method.
PUBLISHED_045 = {
    "raw": {"psnr": 3.56, "ssim": 0.00},
    "adaptive_wiener": {"psnr": 21.59, "ssim": 0.44},
    "lowpass": {"psnr": 22.42, "ssim": 0.63},
    "anscombe_nlm": {"psnr": 26.55, "ssim": 0.73},       # VST + NLM
    "anscombe_bm3d": {"psnr": 22.57, "ssim": 0.80},      # VST + BM3D
    "pure_let": {"psnr": 28.36, "ssim": 0.93},           # PURE-LET (not in temnb)
    "sbd_dncnn": {"psnr": 30.47, "ssim": 0.93},          # DnCNN trained by Noise2Self/blind-spot (not in temnb)
    "sbd_small_unet": {"psnr": 30.87, "ssim": 0.93},     # a small U-Net, likewise (not in temnb)
    "unet": {"psnr": 42.87, "ssim": 0.99},               # the paper's U-Net, trained on simulations
}
PUBLISHED_PEAK = "max"
PUBLISHED_SOURCE = ("Mohan et al., IEEE Trans. Comput. Imaging 8 (2022), Table 1: simulated Pt/CeO2 validation "
                    "set, 0.45 e-/px at 0.061 Å/px = 121 e-/Å² per frame, PSNR peak = clean maximum")


def describe_peak(peak) -> str:
    """How a PSNR's peak was chosen, for table headers and records."""
    if isinstance(peak, str):
        return {"max": "peak = clean maximum (Mohan et al. 2022, Eq. 1)",
                "range": "peak = clean max - min (skimage data_range)"}[_check_peak(peak)]
    return f"peak = {float(peak):.4g} (given)"


def _check_peak(peak):
    if isinstance(peak, str):
        if peak not in PEAKS:
            raise ParameterError(f"peak={peak!r} is not a PSNR convention",
                                 hint="'max' (the clean maximum, as the paper), 'range' (max - min) or a number")
        return peak
    if isinstance(peak, bool) or not isinstance(peak, (int, float, np.floating, np.integer)) or not (
            np.isfinite(peak) and peak > 0):
        raise ParameterError(f"peak={peak!r}: it must be 'max', 'range' or a positive number")
    return float(peak)


def _pair(estimate, clean):
    """Both as float64 arrays of one shape (a 2-D frame or a movie)."""
    a, _ = unwrap(estimate)
    b, _ = unwrap(clean)
    source = source_label(estimate)
    require_image_data(b, source=source_label(clean), what="an image-quality metric")
    if a.shape != b.shape:
        raise DataShapeError(f"estimate of shape {a.shape} and clean image of shape {b.shape} do not match",
                             source=source, hint="compare a frame with a frame and a movie with a movie")
    return a.astype(np.float64), b.astype(np.float64)


def peak_value(clean, peak="max", *, source=None) -> float:
    """The PSNR peak of *clean* under *peak* ('max', 'range' or a number)."""
    peak = _check_peak(peak)
    if not isinstance(peak, str):
        return peak
    clean = np.asarray(clean, dtype=np.float64)
    value = float(clean.max()) if peak == "max" else float(clean.max() - clean.min())
    if not value > 0:
        what = "has no positive maximum" if peak == "max" else "is flat (max = min)"
        raise DataValueError(f"the clean image {what}, so PSNR has no peak", source=source,
                             hint="pass peak= explicitly (a number in the data's units)")
    return value


def _psnr(a, b, peak):
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak ** 2 / mse))


def psnr(estimate, clean, *, peak="max") -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(peak^2 / MSE)``.

    *peak*: ``"max"`` (default; the clean image's maximum, as Mohan et al. 2022), ``"range"``
    (its max - min) or a number.  For a movie the MSE and the peak are over the whole array;
    see :func:`psnr_per_frame`.
    """
    a, b = _pair(estimate, clean)
    return _psnr(a, b, peak_value(b, peak, source=source_label(clean)))


def psnr_per_frame(estimate, clean, *, peak="max") -> np.ndarray:
    """PSNR of each frame of a movie (the peak from each clean frame unless a number is given)."""
    a, b = _pair(estimate, clean)
    if a.ndim == 2:
        a, b = a[None], b[None]
    return np.array([psnr(x, y, peak=peak) for x, y in zip(a, b)])


def ssim(estimate, clean, *, peak="max") -> float:
    """Structural similarity (skimage) with ``data_range`` from the clean image under *peak* (as
    :func:`psnr`); a movie's is the mean over frames."""
    a, b = _pair(estimate, clean)
    if a.ndim == 2:
        a, b = a[None], b[None]
    values = [structural_similarity(x, y, data_range=peak_value(y, peak, source=source_label(clean)))
              for x, y in zip(a, b)]
    return float(np.mean(values))


def compare(estimates: dict, clean, *, timings: dict | None = None, peak="max") -> list[dict]:
    """One row per estimate: ``{'name', 'psnr', 'ssim', 'seconds', 'peak'}`` against *clean*.

    *timings* maps names to seconds (None when absent), so a table can show the cost; *peak* is the
    convention of :func:`psnr` (``'peak'`` in each row says which).
    """
    if not isinstance(estimates, dict) or not estimates:
        raise ParameterError("estimates must be a non-empty dict name -> array or signal")
    timings = timings or {}
    return [{"name": str(name), "psnr": psnr(est, clean, peak=peak), "ssim": ssim(est, clean, peak=peak),
             "seconds": timings.get(name), "peak": peak} for name, est in estimates.items()]


def _cell(value, fmt):
    width = int(fmt.split(".")[0])
    return "-".rjust(width) if value is None else format(value, fmt)


def format_table(rows: list[dict], reference: dict | None = None) -> str:
    """A plain-text table of :func:`compare` rows, beside *reference* numbers (e.g. PUBLISHED_045),
    headed by the PSNR convention.  A reference is shown only beside rows in its convention.

    Returns the text; ``print(format_table(rows, PUBLISHED_045))`` in a notebook.
    """
    peaks = {row.get("peak", "max") for row in rows}
    if len(peaks) > 1:
        raise ParameterError(f"the rows mix PSNR conventions {sorted(map(str, peaks))}",
                             hint="compare every method with one peak")
    peak = peaks.pop() if peaks else "max"
    comparable = reference is not None and peak == PUBLISHED_PEAK
    header = f"{'method':<18}{'PSNR dB':>9}{'SSIM':>7}{'seconds':>9}"
    if comparable:
        header += f"  |{'published PSNR':>15}{'SSIM':>7}"
    lines = [f"PSNR and SSIM with {describe_peak(peak)}", header, "-" * len(header)]
    for row in rows:
        line = (f"{row['name']:<18}{_cell(row.get('psnr'), '9.2f')}{_cell(row.get('ssim'), '7.3f')}"
                f"{_cell(row.get('seconds'), '9.2f')}")
        if comparable:
            ref = reference.get(row["name"], {})
            line += f"  |{_cell(ref.get('psnr'), '15.2f')}{_cell(ref.get('ssim'), '7.2f')}"
        lines.append(line)
    if reference is not None and not comparable:
        lines.append(f"(published numbers not shown: they use {describe_peak(PUBLISHED_PEAK)})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- tuned baselines
#: The default search grids of :func:`tune_filter`: widths in pixels and frames.
TUNING_GRIDS = {
    "gaussian": {"sigma": (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)},
    "gaussian_3d": {"sigma": (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0),
                    "sigma_time": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)},
}


class Tuned(dict):
    """What :func:`tune_filter` found: ``params`` (the best settings), ``psnr`` (dB, with ``peak``),
    ``estimate`` (the filtered data) and ``table`` (every setting tried with its PSNR)."""

    __getattr__ = dict.__getitem__


def tune_filter(name: str, noisy, clean, *, grid: dict | None = None, peak="max") -> Tuned:
    """A classic filter of :data:`temnb.classic.filters.FILTERS` with its settings chosen to maximise
    the PSNR against the truth (an oracle choice, available only for simulations): the strongest
    classic baseline a learned denoiser must beat.  *grid*: {setting: values}, by default
    :data:`TUNING_GRIDS`.  A best value on the edge of the grid is flagged in ``on_edge``."""
    import itertools

    from ..classic import filters

    if grid is None:
        if name not in TUNING_GRIDS:
            raise ParameterError(f"no default tuning grid for {name!r}; pass grid={{setting: values}}",
                                 hint=f"filters with a default grid: {', '.join(TUNING_GRIDS)}")
        grid = TUNING_GRIDS[name]
    if not isinstance(grid, dict) or not grid or any(len(v) == 0 for v in grid.values()):
        raise ParameterError(f"grid = {grid!r}; it must map each setting to a non-empty list of values")
    clean_arr, _ = unwrap(clean, name="the clean data")
    best, table = None, []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        estimate = filters.apply(name, noisy, **params)
        score = psnr(estimate, clean_arr, peak=peak)
        table.append({**params, "psnr": score})
        if best is None or score > best[0]:
            best = (score, params, estimate)
    score, params, estimate = best
    on_edge = [k for k, v in params.items() if len(grid[k]) > 1 and v in (min(grid[k]), max(grid[k]))]
    return Tuned(params=params, psnr=score, peak=describe_peak(peak), estimate=estimate, table=table, on_edge=on_edge)
