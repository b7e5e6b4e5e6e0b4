"""How temnb.denoise scales with CPU threads, beside scipy's 3-D Gaussian in the same run.

For each network: Mpix/s through ``temnb.denoise`` with ``threads=1`` and ``threads=2`` (2 or more
threads run batches of frames side by side, one torch thread each), the speed-up, and the ratio to
``scipy.ndimage.gaussian_filter`` in 3-D on the same movie with 1 worker thread (the baseline
issue 12 set: at least 0.3x the Gaussian on 2 cores).  Also what 2 *intra-op* torch threads on one
batch give, which is what torch does when left alone.  Prints a table and writes JSON::

    python benchmarks/bench_threads.py             # 16 x 1024^2 frames, 0.45 e-/px
    python benchmarks/bench_threads.py --quick     # 4 x 128^2, seconds (the test runs this)

Load the machine with nothing else: the speed-up from a second thread is only there when the second
core is free (the load average before and after is in the JSON).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import finish  # noqa: E402

import temnb  # noqa: E402
from temnb.simulation import synthetic  # noqa: E402

DOSE = 0.45


def _best(func, repeats):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 4 x 128^2 movie, one repeat")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--networks", default="wcvd,udvd,unet", help="comma-separated: wcvd, udvd, unet")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", temnb.TemnbWarning)
    import torch

    from temnb.core.device import torch_threads, usable_cores
    from temnb.nets.config import UDVDConfig, UNetConfig, WCVDConfig
    from temnb.nets.inference import denoise
    from temnb.nets.registry import build_model

    size = args.size or (128 if args.quick else 1024)
    n = args.frames or (6 if args.quick else 16)
    repeats = args.repeats or (1 if args.quick else 2)
    load_before = os.getloadavg()
    movie, _ = synthetic.counted_movie(n, (size, size), dose=DOSE, seed=0, as_signal=False)
    movie = np.ascontiguousarray(movie, dtype=np.float32)
    mpix = n * size * size / 1e6
    gauss = _best(lambda: ndimage.gaussian_filter(movie, (1.0, 2.0, 2.0)), repeats)
    rows = [{"task": "scipy 3-D gaussian sigma (1,2,2) (baseline)", "kind": "baseline", "threads": 1,
             "seconds": gauss, "mpix_per_s": mpix / gauss}]
    networks = {"wcvd": ("WCVD (default)", WCVDConfig()), "udvd": ("UDVD-compact (CPU variant)", UDVDConfig()),
                "unet": ("U-Net n_scales=4 base 16 (workshop)", UNetConfig(n_scales=4, base_channels=16))}
    networks = [networks[key.strip()] for key in args.networks.split(",")]
    for label, config in networks:
        net = build_model(config).eval()
        frames = movie if config.architecture == "WCVD" else movie[: max(net.temporal_window, 4)]
        fmpix = frames.shape[0] * size * size / 1e6
        denoise(frames[:net.temporal_window, :64, :64], net, dose=DOSE, progress=False, threads=1)  # warm-up
        timings = {}
        for threads in (1, 2):
            timings[threads] = _best(lambda: denoise(frames, net, dose=DOSE, progress=False, threads=threads),
                                     repeats)
        with torch_threads(2):  # torch left alone: 2 intra-op threads on one batch at a time
            def intra():
                with torch.inference_mode():
                    for t in range(frames.shape[0] - net.temporal_window + 1):
                        x = torch.from_numpy(frames[t:t + net.temporal_window][None] / DOSE)
                        net(x)
            timings["intra2"] = _best(intra, repeats) * frames.shape[0] / (frames.shape[0] - net.temporal_window + 1)
        for key, seconds in timings.items():
            row = {"task": f"denoise {label}, " + ("2 intra-op torch threads" if key == "intra2"
                                                   else f"threads={key}"),
                   "kind": "inference", "architecture": config.architecture, "threads": 2 if key == "intra2" else key,
                   "seconds": seconds, "mpix_per_s": fmpix / seconds, "baseline": "scipy 3-D gaussian",
                   "ratio_to_baseline": (fmpix / seconds) / (mpix / gauss)}
            if key == 2:
                row["speedup_over_1_thread"] = timings[1] / timings[2]
            rows.append(row)
        print(f"  done: {label} (2 threads {timings[1] / timings[2]:.2f}x faster than 1)", flush=True)
    finish("threads", rows, quick=args.quick, out=args.out, frame_size=size, frames=n, dose=DOSE,
           usable_cores=usable_cores(), load_average_before=load_before, load_average_after=os.getloadavg())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
