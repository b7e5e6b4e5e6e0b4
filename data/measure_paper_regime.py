"""Measure temnb's simulations in the regime of Mohan et al. (2022), one setting changed at a time.

    python data/measure_paper_regime.py [--out runs/paper_regime.json] [--no-slices]

The paper's Table 1 gives raw (noisy) validation frames 3.56 dB PSNR, peak = the clean image's
maximum, at 0.45 e-/px on 0.061 A pixels.  This script simulates four validation-like structures
(small and medium Pt particles on 3-6 nm CeO2, tilts 0-4 degrees, defects) at 0.061 A/px with
the paper's settings (temnb.simulation.hrtem.Microscope defaults, 2 A slices), at six defoci
C1 = 0..20 nm (abTEM defocus 0..-20 nm), and measures with
temnb.simulation.paper_regime.regime_numbers the raw PSNR, the clean maximum over the vacuum and
the Pt column contrast for: the pixel size at the same e-/A^2 (0.061, 0.122, 0.244 A), the
vibration (0-50 pm), the sign of the defocus, explicit focal averaging instead of abTEM's
quasi-coherent envelope, and (structure 0 only) 0.5 and 0.167 A slices, Kirkland's
parametrisation and finite projection.  One multislice serves every setting but the slicing
ones.  Seeded; about 6 minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from temnb.core.dose import PAPER, per_pixel
from temnb.simulation import hrtem as sim
from temnb.simulation import paper_regime as pr
from temnb.simulation import training_data as td

PS = PAPER.pixel_size_A
SIZE = 656  # 40.0 A; divisible by 4, so 0.122 and 0.244 A pixels are exact 2 x 2 and 4 x 4 bins
MARGIN = 6.0
DEFOCI = (-20.0, -16.0, -12.0, -8.0, -4.0, 0.0)  # abTEM sign: the paper's C1 = 0..20 nm
STRUCTURES = (
    dict(size="small", thickness_nm=3.0, tilt_x_deg=0.0, tilt_y_deg=0.0, defect="none"),
    dict(size="medium", thickness_nm=5.0, tilt_x_deg=2.0, tilt_y_deg=0.0, defect="column_vacancy"),
    dict(size="small", thickness_nm=6.0, tilt_x_deg=0.0, tilt_y_deg=4.0, defect="adatom"),
    dict(size="medium", thickness_nm=4.0, tilt_x_deg=0.7, tilt_y_deg=0.7, defect="none"),
)
SEED = 1000
# Gauss-Hermite nodes for a Gaussian focal spread of 1/e half-width Delta: defoci d + Delta * t.
NODES, WEIGHTS = np.polynomial.hermite.hermgauss(11)


def explicit_focal_average(wave: sim.ExitWave, defocus_nm: float, microscope: sim.Microscope) -> np.ndarray:
    """Dr. Probe's coherence model 1: coherent images averaged over the focal spread (spatial coherence
    and vibration as in temnb), instead of abTEM's envelope on the wave, which also damps the
    non-linear (beam-beam) terms."""
    sharp = replace(microscope, focal_spread_nm=0.0)
    total = sum(w / np.sqrt(np.pi) * wave.padded_image(defocus_nm + microscope.focal_spread_nm * t, sharp)
                for t, w in zip(NODES, WEIGHTS))
    return wave.crop(np.asarray(total, dtype=np.float64))


def binned(image: np.ndarray, f: int) -> np.ndarray:
    return image.reshape(image.shape[0] // f, f, image.shape[1] // f, f).mean(axis=(1, 3))


def scenes():
    spec = td.DatasetSpec(sizes=("small", "medium"), defects=td.DEFECTS, image_size=SIZE, pixel_size=PS,
                          sampling=PS, margin=MARGIN, defoci=DEFOCI)
    for k, s in enumerate(STRUCTURES):
        entry = dict(structure=k, seed=SEED + k, tilt_deg=float(np.hypot(s["tilt_x_deg"], s["tilt_y_deg"])), **s)
        scene, extra = td.make_structure(spec, entry)
        yield td.assemble_scene(scene, PS, tilt_x=s["tilt_x_deg"], tilt_y=s["tilt_y_deg"], step=extra["step"])


def slicing_variants(full, name_of, add):
    """Structure 0 again with other slices / potentials (the multislice itself changes)."""
    import abtem

    margin_px = int(np.ceil(MARGIN / PS))
    atoms = full.to_atoms(extent=((SIZE + 2 * margin_px) * PS,) * 2, offset=(margin_px * PS,) * 2)
    for label, kwargs in (("slices 2 A (structure 0)", dict(slice_thickness=2.0)),
                          ("slices 0.5 A (structure 0)", dict(slice_thickness=0.5)),
                          ("slices 0.167 A (structure 0)", dict(slice_thickness=0.167)),
                          ("Kirkland potential (structure 0)", dict(slice_thickness=2.0, parametrization="kirkland")),
                          ("finite projection (structure 0)", dict(slice_thickness=2.0, projection="finite"))):
        start = time.perf_counter()
        options = dict(parametrization="lobato", projection="infinite") | kwargs
        with sim._abtem_settings():
            potential = abtem.Potential(atoms, gpts=(SIZE + 2 * margin_px,) * 2, **options)
            plane = abtem.PlaneWave(energy=300e3, normalize=False)
            waves = plane.multislice(potential).compute(progress_bar=False)
        wave = sim.ExitWave(waves, full, PS, 1, (SIZE, SIZE), margin_px, 300.0, 1.0)
        for d in DEFOCI:
            add(label, wave.image(d, sim.Microscope()), full, PS)
        name_of[label] = time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/paper_regime.json"))
    parser.add_argument("--no-slices", action="store_true", help="skip the slicing / potential variants")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    groups: dict[str, tuple[list, list, float]] = {}

    def add(label, image, scene, pixel_size, dose=None):
        dose = per_pixel(PAPER.per_area, pixel_size) if dose is None else dose
        images, owners, _ = groups.setdefault(label, ([], [], dose))
        images.append(np.asarray(image, dtype=np.float64) * dose)
        owners.append(scene)

    seconds = {"multislice": []}
    first = None
    for full in scenes():
        first = first or full
        t0 = time.perf_counter()
        wave = sim.exit_wave(full, pixel_size=PS, sampling=PS, slice_thickness=2.0)
        seconds["multislice"].append(time.perf_counter() - t0)
        for d in DEFOCI:
            base = wave.image(d, sim.Microscope())
            add("paper settings (0.061 A)", base, full, PS)
            add("pixel 0.122 A (2 x 2 bin)", binned(base, 2), full, 2 * PS)
            add("pixel 0.244 A (4 x 4 bin)", binned(base, 4), full, 4 * PS)
            add("pixel 0.244 A at 0.45 e-/px (old temnb)", binned(base, 4), full, 4 * PS, dose=0.45)
            add("defocus sign flipped (abTEM 0..+20 nm)", wave.image(-d, sim.Microscope()), full, PS)
            for vib in (40.0, 30.0, 20.0, 10.0, 0.0):
                add(f"vibration {vib:g} pm", wave.image(d, sim.Microscope(vibration_pm=vib)), full, PS)
            still = wave.image(d, sim.Microscope(vibration_pm=0.0))
            add("vibration 0 pm, pixel 0.244 A", binned(still, 4), full, 4 * PS)
            for vib in (50.0, 20.0, 0.0):
                add(f"explicit focal averaging, vibration {vib:g} pm",
                    explicit_focal_average(wave, d, sim.Microscope(vibration_pm=vib)), full, PS)
        print(f"structure done, {time.perf_counter() - start:.0f} s", flush=True)
    if not args.no_slices:
        slicing_variants(first, seconds, add)

    rows = []
    for label, (images, owners, dose) in groups.items():
        numbers = pr.regime_numbers(images, scenes=owners, vacuum=dose, seed=0)
        rows.append({"setting": label, "pixel_size_A": round(PS * images[0].shape[0] ** -1 * SIZE, 4),
                     "dose_e_per_px": dose, **numbers.summary()})
    print(f"{'setting':46s} {'A/px':>6s} {'e-/px':>6s} {'n':>3s} {'raw PSNR dB':>14s} {'max/vac':>13s} "
          f"{'contrast':>13s}")
    for r in rows:
        print(f"{r['setting']:46s} {r['pixel_size_A']:6.3f} {r['dose_e_per_px']:6.2f} {r['n_images']:3d} "
              f"{r['raw_psnr_db']:7.2f} +-{r['raw_psnr_db_std']:5.2f} "
              f"{r['max_over_vacuum']:6.3f} +-{r['max_over_vacuum_std']:5.3f} "
              f"{r['column_contrast']:6.3f} +-{r['column_contrast_std']:5.3f}")
    total = time.perf_counter() - start
    print(f"paper: {pr.PAPER_RAW_PSNR_DB} dB; multislice {np.mean(seconds['multislice']):.1f} s a structure; "
          f"total {total:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "seconds": seconds, "total_seconds": total}, indent=1, default=float))
    print("written", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
