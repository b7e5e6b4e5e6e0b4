"""Is a simulation in the regime of the paper?  The numbers that say so, measured on clean images.

Mohan, Manzorro, Vincent, ... Crozier & Fernandez-Granda, "Deep denoising for scientific
discovery: a case study in electron microscopy", IEEE TCI 8 (2022) record 5,000 e-/A^2/s in
25 ms frames on 0.061 A pixels: 0.45 e-/px = 121 e-/A^2 per frame (:data:`temnb.core.dose.PAPER`,
from :mod:`temnb.simulation.hrtem`).  Their Table 1 gives the raw (noisy) validation frames
3.56 +- 0.03 dB PSNR with the CLEAN image's maximum as the peak (their Eq. 1).

For shot noise the expected squared error of a pixel is its expected count, so that PSNR is
about ``10 log10((max / vacuum)^2 * dose)``: with the image mean near the vacuum level, 3.56 dB
at 0.45 e-/px needs a clean maximum of about 2.2 x the vacuum.  :func:`regime_numbers` measures,
per image, the raw PSNR on a seeded Poisson draw, its noise-free expectation, the clean maximum
over the vacuum and the Pt column contrast; :func:`dataset_regime_numbers` does it for a data
set built by :func:`temnb.simulation.training_data.build_dataset`.

Measured with ``data/measure_paper_regime.py`` (24 images: 4 structures x C1 = 0..20 nm at
0.061 A/px, 0.45 e-/px): the paper's settings give -0.9 +- 1.7 dB (max/vacuum 1.34); without the
50 pm vibration blur 3.5 +- 2.4 dB (2.27).  The pixel size (binning at a fixed dose per pixel),
the defocus sign, 0.167 A slices and the potential change the maximum by under 3%.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import DataShapeError, DataValueError, ParameterError
from ..core.signals import unwrap
from . import hrtem as sim
from . import training_data as td

__all__ = [
    "PAPER_RAW_PSNR_DB", "PAPER_RAW_PSNR_SPREAD_DB", "raw_psnr", "expected_raw_psnr",
    "RegimeNumbers", "regime_numbers", "dataset_regime_numbers",
]

#: Table 1 of the paper: mean PSNR of the raw validation frames, peak = clean maximum (dB), and its +-.
PAPER_RAW_PSNR_DB = 3.56
PAPER_RAW_PSNR_SPREAD_DB = 0.03


def _images(data, what: str) -> list[np.ndarray]:
    """A list of 2-D float64 images from one image, a stack (n, rows, columns), a Signal2D or a list."""
    if isinstance(data, (list, tuple)):
        out = []
        for i, item in enumerate(data):
            out.extend(_images(item, f"{what}[{i}]"))
        if not out:
            raise ParameterError(f"no {what} given", hint="pass at least one image")
        return out
    array, _ = unwrap(data, name=what)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 2:
        return [array]
    if array.ndim == 3 and array.shape[0] >= 1:
        return list(array)
    raise DataShapeError(f"{what} has shape {array.shape}; expected an image (rows, columns) or a stack of them",
                         hint="pass clean images in expected electrons per pixel")


def _peak(clean: np.ndarray) -> float:
    peak = float(clean.max())
    if not peak > 0:
        raise DataValueError("the clean image has no positive value, so PSNR has no peak",
                             hint="pass clean images in expected electrons (vacuum = dose), not vacuum-subtracted")
    return peak


def raw_psnr(noisy, clean) -> float:
    """PSNR in dB of *noisy* against *clean* with the clean MAXIMUM as peak (the paper's Eq. 1):
    ``10 log10(max(clean)^2 / mean((noisy - clean)^2))``; both in electrons per pixel."""
    (a,), (b,) = _images(noisy, "noisy"), _images(clean, "clean")
    if a.shape != b.shape:
        raise DataShapeError(f"noisy image of shape {a.shape} and clean image of shape {b.shape} do not match")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(_peak(b) ** 2 / mse)


def expected_raw_psnr(clean) -> float:
    """The value :func:`raw_psnr` scatters about for Poisson counts drawn from *clean* (expected
    electrons): the mean squared error of shot noise is the mean count, so
    ``10 log10(max(clean)^2 / mean(clean))``."""
    (b,) = _images(clean, "clean")
    mean = float(b.mean())
    if not mean > 0:
        raise DataValueError("the clean image's mean is not positive: it is not in expected electrons")
    return 10.0 * math.log10(_peak(b) ** 2 / mean)


@dataclass(frozen=True)
class RegimeNumbers:
    """Per-image numbers of :func:`regime_numbers` (arrays of one value per image).

    raw_psnr_db: on a seeded Poisson draw, peak = clean max.  expected_psnr_db: its noise-free
    expectation (:func:`expected_raw_psnr`).  max_over_vacuum: the clean maximum over the vacuum
    level.  column_contrast: mean intensity at the Pt columns over the vacuum
    (:func:`temnb.simulation.training_data.column_contrast`; NaN without a scene).  vacuum: the
    vacuum level used, electrons per pixel.
    """

    raw_psnr_db: np.ndarray
    expected_psnr_db: np.ndarray
    max_over_vacuum: np.ndarray
    column_contrast: np.ndarray
    vacuum: np.ndarray

    @property
    def n_images(self) -> int:
        return len(self.raw_psnr_db)

    def summary(self) -> dict:
        """Means and standard deviations over the images, plain floats (for a notebook record)."""
        out = {"n_images": self.n_images}
        for name in ("raw_psnr_db", "expected_psnr_db", "max_over_vacuum", "column_contrast", "vacuum"):
            values = np.asarray(getattr(self, name), dtype=np.float64)
            finite = values[np.isfinite(values)]
            out[name] = float(finite.mean()) if finite.size else math.nan
            out[name + "_std"] = float(finite.std()) if finite.size else math.nan
        out["paper_raw_psnr_db"] = PAPER_RAW_PSNR_DB
        return out


def _per_image(value, n: int, what: str, one: str) -> list:
    if value is None or np.isscalar(value) or not isinstance(value, (list, tuple, np.ndarray)):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ParameterError(f"{len(value)} {what} for {n} images", hint=f"give one {one} per image, or one for all")
    return value


def _vacuum_level(image: np.ndarray, scene, given) -> float:
    if scene is not None:
        rows = int(scene.vacuum_height() / (scene.field_of_view[1] / image.shape[0]))
        if rows >= 1:
            return float(image[:rows].mean())
    if given is None:
        raise ParameterError("no vacuum level: the image has no scene with vacuum rows above the atoms",
                             hint="pass vacuum= (the dose per pixel of the clean images, e-/px)")
    level = float(given)
    if not (np.isfinite(level) and level > 0):
        raise ParameterError(f"vacuum {given!r} e-/px must be a positive number")
    return level


def regime_numbers(clean, *, vacuum=None, scenes=None, noisy=None, seed: int | None = 0) -> RegimeNumbers:
    """Raw PSNR (peak = clean max), clean max / vacuum and column contrast of *clean* images.

    *clean*: images in expected electrons per pixel (an image, a stack, a Signal2D or a list).
    *scenes*: the :class:`~temnb.simulation.structures.Scene` of each image (or one for all),
    whose field of view the image covers; it places the Pt columns and the vacuum rows (the
    rows above every atom).  *vacuum*: electrons per pixel in vacuum (the dose), used where
    there is no scene or no vacuum row.  *noisy*: counted images to score; by default one
    Poisson draw per image from a generator seeded by *seed*.
    """
    images = _images(clean, "clean")
    n = len(images)
    scenes = _per_image(scenes, n, "scenes", "scene")
    vacua = _per_image(vacuum, n, "vacuum levels", "vacuum level")
    draws = _images(noisy, "noisy") if noisy is not None else None
    if draws is not None and len(draws) != n:
        raise ParameterError(f"{len(draws)} noisy images for {n} clean ones", hint="give one noisy image per clean one")
    rng = np.random.default_rng(seed)
    psnr, expected, ratio, contrast, levels = [], [], [], [], []
    for i, image in enumerate(images):
        if (image < 0).any():
            raise DataValueError(f"clean image {i} has negative values: it is not in expected electrons")
        counts = draws[i] if draws is not None else sim.poisson_counts(image, rng)
        level = _vacuum_level(image, scenes[i], vacua[i])
        psnr.append(raw_psnr(counts, image))
        expected.append(expected_raw_psnr(image))
        ratio.append(float(image.max()) / level)
        # Normalised to vacuum = 1, which column_contrast assumes when the field has no vacuum rows.
        contrast.append(td.column_contrast(image / level, scenes[i]) if scenes[i] is not None else math.nan)
        levels.append(level)
    return RegimeNumbers(*(np.asarray(v, dtype=np.float64) for v in (psnr, expected, ratio, contrast, levels)))


def dataset_regime_numbers(path, *, seed: int | None = 0) -> RegimeNumbers:
    """:func:`regime_numbers` of every image of a data set built by
    :func:`~temnb.simulation.training_data.build_dataset`, at its spec dose.

    The structures are rebuilt from ``spec.json`` (no multislice) to place the columns and the
    vacuum; the noise is :func:`~temnb.simulation.training_data.load_dataset`'s draw for *seed*.
    """
    clean, noisy, table = td.load_dataset(path, seed=seed)
    path = Path(path)
    spec = td.DatasetSpec.load((path.parent if path.is_file() else path) / td.SPEC_FILE)
    plan = {e["structure"]: e for e in td.plan_structures(spec)}
    scenes = {}
    for row in table:
        index = row["structure"]
        if index not in scenes:
            scene, extra = td.make_structure(spec, plan[index])
            scenes[index] = td.assemble_scene(scene, spec.pixel_size, tilt_x=plan[index]["tilt_x_deg"],
                                              tilt_y=plan[index]["tilt_y_deg"], step=extra["step"])
    return regime_numbers(clean.data, vacuum=spec.dose, scenes=[scenes[r["structure"]] for r in table],
                          noisy=noisy.data, seed=seed)
