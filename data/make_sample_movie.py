"""Write the bundled SIMULATED sample movie: data/sample/pt_ceo2_movie{,_truth}.hspy.

    python data/make_sample_movie.py [--out data/sample] [--seed 20240611]

A Wulff-shaped Pt particle (~1.9 nm, 201 atoms) on a 4 nm thick CeO2(111)
support, seen along [1-10], imaged by abTEM multislice at 300 kV with a
negative-Cs lens, 40 frames at 40 frames/s, four surface events and ~3 px of
smooth drift.  The dose is the paper's (Mohan et al. 2022) per area: 121 e-/Å²
per frame in vacuum, on 0.244 Å pixels -- the paper's 0.061 Å pixels binned
4 x 4 -- i.e. 7.2 e-/px.  Same seed, same files (up to library versions).
Takes about a minute on 2 CPU cores; see data/sample/README.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from temnb.core.dose import PAPER
from temnb.simulation import hrtem, structures

SEED = 20240611
BINNING = 4
PIXEL_SIZE = BINNING * PAPER.pixel_size_A  # 0.244 Å per pixel: 256 px = 6.2 nm field of view
SHAPE = 256
SETTINGS = dict(n_frames=40, events=4, drift=3.0, defocus_nm=-8.0, dose_per_area=PAPER.per_area,
                pixel_size=PIXEL_SIZE, frame_time=PAPER.frame_time_s, sampling=0.05, slice_thickness=2.0)


def make(out: Path, seed: int = SEED, progress: bool = True):
    fov = SHAPE * PIXEL_SIZE
    # Support up to a quarter of the height, particle above it: the top ~45%
    # of the frame is vacuum, where dose estimates are made.
    scene = structures.build_scene("medium", field_of_view=fov, support_thickness=40.0,
                                   support_top=0.25 * fov, margin=8.0)
    clean, noisy = hrtem.simulate_movie(scene, seed=seed, progress=progress, **SETTINGS)
    if noisy.data.max() < 256:  # counts at 7.2 e-/px never come close; keep the file small
        noisy.change_dtype("uint8")
    clean.change_dtype("float32")
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "pt_ceo2_movie.hspy", out / "pt_ceo2_movie_truth.hspy"
    noisy.save(paths[0], overwrite=True, compression="gzip")
    clean.save(paths[1], overwrite=True, compression="gzip")
    return clean, noisy, paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "sample",
                        help="output folder (default: data/sample next to this script)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    clean, noisy, paths = make(args.out, args.seed, progress=not args.quiet)
    rows = noisy.metadata.temnb.simulation.vacuum_rows[1]
    print(f"done in {time.perf_counter() - start:.0f} s")
    for path in paths:
        print(f"  {path}  {path.stat().st_size / 1e6:.2f} MB")
    print(f"  vacuum (top {rows} rows): mean {noisy.data[:, :rows].mean():.4f} counts/px/frame "
          f"(expected {clean.data[:, :rows].mean():.4f}) = {noisy.data[:, :rows].mean() / PIXEL_SIZE**2:.1f} e-/Å²")
    for ev in noisy.metadata.temnb.simulation_events:
        print(f"  frame {ev['frame']:2d}: column {ev['column_id']} {ev['kind']} at {ev['position_nm']} nm")


if __name__ == "__main__":
    main()
