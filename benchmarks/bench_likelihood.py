"""The likelihood test's thresholds re-derived in the paper's own regime, beside the paper's.

The paper (Mohan et al.'s simulation-trained U-Net, "Quantifying the agreement...", Eq. 6) called a
column real at LLR >= +0.0050 and spurious at <= -0.0060, from ~65,000 LLRs of 1,540 simulated
images at 0.45 e-/px on 0.061 Å pixels (121 e-/Å² per frame), defocus 0-20 nm.  Here the medium
Pt particle on CeO2 (43 columns) is simulated with abTEM on those pixels, at each defocus, scaled
to that dose, and ``temnb.explain.likelihood.derive_thresholds`` measures the thresholds (1 %
phantoms called real, 1 % real columns called spurious) and the ROC AUC of real against phantom
columns, at each defocus and pooled over the paper's 0-20 nm (as the paper pooled its images).
The sample's -8 nm is in the table too: there the columns hardly differ from the vacuum
over the 0.7 Å disk and the test cannot separate them.  ``seconds`` is the derivation's (the abTEM
exit wave is computed once and timed on its own row).

    python benchmarks/bench_likelihood.py           # 0.061 Å pixels, 5 defoci, 100 noise draws (a minute)
    python benchmarks/bench_likelihood.py --quick   # 0.244 Å pixels, 2 defoci, 5 draws (seconds)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from temnb.core.dose import PAPER, Dose
from temnb.explain import likelihood as L
from temnb.judge import columns
from temnb.simulation import hrtem, structures

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import finish

FIELD_OF_VIEW_A = 40.0  # Å: the medium particle with vacuum above it


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarse pixels, two defoci, few noise draws")
    parser.add_argument("--out", type=Path, help="JSON report (default benchmarks/results/likelihood_*.json)")
    args = parser.parse_args(argv)
    if args.quick:
        pixel, defoci, n_noise = 0.244, (5.0, -8.0), 5
    else:
        pixel, defoci, n_noise = PAPER.pixel_size_A, (0.0, 5.0, 10.0, 20.0, -8.0), 100
    dose = Dose.from_area(PAPER.per_area, pixel)
    side = int(round(FIELD_OF_VIEW_A / pixel))
    scene = structures.build_scene("medium", field_of_view=side * pixel, support_thickness=20.0)
    start = time.perf_counter()
    wave = hrtem.exit_wave(scene, pixel_size=pixel, sampling=min(pixel, 0.05))
    rows = [{"task": f"abTEM exit wave, {side}^2 px of {pixel} Å", "seconds": time.perf_counter() - start,
             "mpix_per_s": side**2 / 1e6 / (time.perf_counter() - start)}]
    vacuum = columns.vacuum_region((side, side), scene)
    truth = columns.true_columns(scene, pixel, shift_px=(-0.1, 0.1))   # as notebook 11 and tests/test_likelihood.py
    print(f"{len(truth)} true columns, {dose}, {n_noise} noise draws per defocus; paper: {L.PAPER_THRESHOLDS}")
    images = {df: wave.image(df).astype(np.float64) for df in defoci}
    in_range = [df for df in defoci if 0 <= df <= 20]
    for df in [*defoci, "pooled"] if len(in_range) > 1 else defoci:
        pooled = df == "pooled"
        image = [images[d] for d in in_range] if pooled else images[df]
        contrast = float(np.median([L.contrast_over_disk(im, truth, vacuum, pixel_size_A=pixel)
                                    for im in (image if pooled else [image])]))
        start = time.perf_counter()
        if pooled:
            d = L.derive_thresholds(image, [truth] * len(image), [vacuum] * len(image), dose=dose, pixel_size_A=pixel,
                                    n_noise=n_noise, seed=0)
        else:
            d = L.derive_thresholds(image, truth, vacuum, dose=dose, pixel_size_A=pixel, n_noise=n_noise, seed=0)
        seconds = time.perf_counter() - start
        at_paper = L.scale_thresholds(d.thresholds, dose_per_pixel=PAPER.per_pixel, region_px=414)
        name = f"pooled {min(in_range):.0f} to {max(in_range):.0f} nm" if pooled else f"{df:+.0f} nm"
        rows.append({"task": f"thresholds at defocus {name}", "seconds": seconds, "defocus_nm": name if pooled else df,
                     "pixel_size_A": pixel, "dose_per_pixel": d.vacuum_level, "dose_per_A2": dose.per_area,
                     "region_px": d.region_px, "contrast_over_disk": contrast, "auc": d.auc,
                     "threshold_real": d.thresholds.real, "threshold_spurious": d.thresholds.spurious,
                     "threshold_real_at_paper_pixels": at_paper.real,
                     "threshold_spurious_at_paper_pixels": at_paper.spurious,
                     "measured_false_real": d.measured_false_real,
                     "measured_false_spurious": d.measured_false_spurious,
                     "n_real": len(d.real_llr), "n_phantom": len(d.phantom_llr),
                     "paper_real": L.PAPER_THRESHOLDS.real, "paper_spurious": L.PAPER_THRESHOLDS.spurious})
    print(f"\n{'defocus':>9} {'contrast':>9} {'|R| px':>7} {'AUC':>6} {'real >=':>9} {'spurious <=':>12}"
          f"   {'at 0.45 e-/px, |R| 414':>24}   paper")
    for r in rows[1:]:
        where = r["defocus_nm"] if isinstance(r["defocus_nm"], str) else f"{r['defocus_nm']:+6.0f} nm"
        print(f"{where:>9} {r['contrast_over_disk']:+9.1%} {r['region_px']:7.0f} {r['auc']:6.3f} "
              f"{r['threshold_real']:+9.4f} {r['threshold_spurious']:+12.4f}   "
              f"{r['threshold_real_at_paper_pixels']:+.4f} / {r['threshold_spurious_at_paper_pixels']:+.4f}"
              f"      +0.0050 / -0.0060")
    print()
    finish("likelihood", rows, quick=args.quick, out=args.out, pixel_size_A=pixel, n_noise=n_noise,
           false_rates=0.01, paper_thresholds=[L.PAPER_THRESHOLDS.real, L.PAPER_THRESHOLDS.spurious])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
