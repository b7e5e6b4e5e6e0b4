"""Seconds per classic filter on a 1024 x 1024 counted frame, and per simulated image.

Prints a table and writes ``benchmarks/results/filters_simulation_<host>.json``. The filters run
on one dummy counted frame at 0.45 e-/px (a movie of 5 frames for the time filters); each is
compared with ``scipy.ndimage.gaussian_filter`` on the same frame in the same run.

    python benchmarks/bench_filters_simulation.py           # 1024^2 frames (BM3D takes about a minute)
    python benchmarks/bench_filters_simulation.py --quick   # 128^2, for a smoke test
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

import temnb
from temnb.classic import filters
from temnb.simulation import synthetic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import finish  # noqa: E402


def seconds(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", temnb.TemnbWarning)
    size = 128 if args.quick else 1024
    movie, _ = synthetic.counted_movie(5, (size, size), dose=0.45, seed=0)
    frame = movie.inav[2]
    baseline = min(seconds(lambda: ndimage.gaussian_filter(frame.data.astype(np.float32), 2.0)) for _ in range(3))
    rows = [{"task": "scipy.ndimage.gaussian_filter (baseline)", "seconds": baseline,
             "mpix_per_s": size * size / 1e6 / baseline}]
    for name in filters.FILTERS:
        data = movie if name in ("gaussian_3d", "time_average") else frame
        n_frames = 5 if data is movie else 1
        filters.apply(name, frame if data is frame else movie)  # warm-up (imports, FFT plans)
        t = seconds(lambda: filters.apply(name, data)) / n_frames
        rows.append({"task": f"filter {name}", "seconds": t, "mpix_per_s": size * size / 1e6 / t,
                     "ratio_to_baseline": t / baseline, "baseline": "scipy gaussian_filter"})
    if not args.quick:
        from temnb.simulation import hrtem, structures

        scene = structures.build_scene("medium", field_of_view=64.0)
        t_wave = seconds(lambda: hrtem.exit_wave(scene, pixel_size=0.25))
        wave = hrtem.exit_wave(scene, pixel_size=0.25)
        microscope = hrtem.Microscope()
        t_ctf = seconds(lambda: [wave.image(d, microscope) for d in (-16, -8, 0, 8)]) / 4
        rows.append({"task": "abTEM multislice, 64 A field (256 px), 0.05 A grid", "seconds": t_wave})
        rows.append({"task": "one more defocus from the same exit wave", "seconds": t_ctf})
    finish("filters_simulation", rows, quick=args.quick, out=args.out, frame_size=size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
