"""Speed and memory of the foundation: loading, counts/dose, Poisson tools, one multislice image.

Prints a table and writes ``benchmarks/results/foundation_<host>.json``. Each number is the
median of a few repeats on the same data in the same run; ratios compare temnb to the plain
library call doing the same arithmetic, so they are meaningful on any machine.

    python benchmarks/bench_foundation.py            # full sizes (about a minute on 2 cores)
    python benchmarks/bench_foundation.py --quick    # tiny sizes, for a smoke test
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import temnb
from temnb.classic import poisson
from temnb.io import bundled, counts
from temnb.simulation import synthetic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import finish  # noqa: E402


def timed(func, repeats: int):
    """Median wall time of *func()* over *repeats* calls (after one warm-up call)."""
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: results/foundation_<host>.json)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", temnb.TemnbWarning)

    size, n_frames, repeats = (128, 4, 1) if args.quick else (1024, 16, 3)
    movie, clean = synthetic.counted_movie(n_frames, (size, size), dose=0.45, seed=0)
    pixels = movie.data.size
    detector, _ = synthetic.detector_movie(1, (size, size), dose=20.0, seed=1)
    frame_du = detector.inav[0]
    rng = np.random.default_rng(0)
    rows = []

    def add(name, seconds, *, mpix=None, baseline=None, baseline_name=None, note=""):
        row = {"task": name, "seconds": seconds, "note": note}
        if mpix is not None:
            row["mpix_per_s"] = mpix / seconds
        if baseline is not None:
            row["baseline"] = baseline_name
            row["ratio_to_baseline"] = seconds / baseline
        rows.append(row)

    sample = bundled.sample_path("movie")
    import hyperspy.api as hs
    t_hs = timed(lambda: hs.load(sample), repeats)
    t_load = timed(lambda: temnb.load(sample), repeats)
    add("load sample movie (eager)", t_load, mpix=hs.load(sample).data.size / 1e6, baseline=t_hs,
        baseline_name="hyperspy.api.load", note="40 x 256 x 256 uint8 HSPY, gzip")
    add("load sample movie (lazy, header only)", timed(lambda: temnb.load(sample, lazy=True), repeats))
    lazy = temnb.load(sample, lazy=True)
    add("read one frame of the lazy movie", timed(lambda: np.asarray(lazy.inav[7].data.compute()), repeats))

    mp = pixels / 1e6
    add("estimate_dose (auto vacuum)", timed(lambda: counts.estimate_dose(movie), repeats), mpix=mp,
        note=f"{n_frames} x {size}^2 counted frames")
    add("estimate_gain_offset (single frame)", timed(lambda: counts.estimate_gain_offset(frame_du), repeats),
        mpix=size * size / 1e6, note="detector units, gain 7.3")
    add("to_counts (known gain/offset)",
        timed(lambda: counts.to_counts(frame_du, gain=7.3, offset=100.0), repeats), mpix=size * size / 1e6)
    expected = clean.data
    add("poisson_sample", timed(lambda: poisson.poisson_sample(expected, rng), repeats), mpix=mp,
        baseline=timed(lambda: rng.poisson(expected), repeats), baseline_name="numpy Generator.poisson")
    data = movie.data
    add("anscombe", timed(lambda: poisson.anscombe(data), repeats), mpix=mp,
        baseline=timed(lambda: 2.0 * np.sqrt(data + 0.375), repeats), baseline_name="numpy 2*sqrt(x+3/8)")
    transformed = poisson.anscombe(data.astype(np.float32))
    add("inverse_anscombe (exact unbiased)",
        timed(lambda: poisson.inverse_anscombe(transformed), repeats), mpix=mp,
        baseline=timed(lambda: (transformed / 2) ** 2 - 0.375, repeats), baseline_name="algebraic inverse")
    add("time_average (n=4)", timed(lambda: poisson.time_average(data, 4), repeats), mpix=mp,
        baseline=timed(lambda: data[: n_frames // 4 * 4].reshape(-1, 4, size, size).mean(axis=1), repeats),
        baseline_name="numpy reshape-mean")
    add("variance_mean_ratio", timed(lambda: poisson.variance_mean_ratio(data), repeats), mpix=mp)

    if not args.quick:
        from temnb.simulation import hrtem, structures

        scene = structures.build_scene("small", field_of_view=32.0, support_thickness=20.0)
        add("abTEM exit wave + image (32 A field, 0.05 A grid)",
            timed(lambda: hrtem.hrtem_image(scene, -8.0), 1), note="small Pt particle on 2 nm CeO2")

    finish("foundation", rows, quick=args.quick, out=args.out, frame_size=size, n_frames=n_frames,
           repeats=repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
