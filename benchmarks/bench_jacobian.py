"""Milliseconds per effective filter (one Jacobian row, ``temnb.explain.jacobian``) and the memory it
takes: the batched path (one forward pass, vmapped vector-Jacobian products) against the loop (a
forward and a backward pass per pixel), for a U-Net on a 256^2 frame and UDVD-compact on a 5 x 128^2
window.

For each network the same pixels (spread over the frame, seeded) are computed by both methods, the
batched one at two batch sizes (pixels per vmapped backward pass: more is faster per pixel up to a
point, and memory grows with it), after a warm-up call of each (the first vmap call sets itself up,
a second or so).  ``seconds`` is per filter, best of ``--repeats``; ``ratio_to_baseline`` is that
time over the loop's (below 1: batched is faster).  ``peak_extra_mb`` is the largest resident memory
above what the process held before the call (Linux: /proc/self/status VmHWM after resetting it via
/proc/self/clear_refs; elsewhere the process's peak, which only grows, so it reads the largest so
far); on CUDA the peak of torch's allocator.  The batched and loop filters are also compared (their
largest difference is in the JSON).  The weights are random: the cost does not depend on them.

    python benchmarks/bench_jacobian.py                 # U-Net 256^2, UDVD 5 x 128^2 (a few minutes)
    python benchmarks/bench_jacobian.py --quick         # 64^2 / 5 x 32^2, tiny networks (seconds)
    python benchmarks/bench_jacobian.py --device cuda   # on a GPU
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import temnb
from temnb.simulation import synthetic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import finish

DOSE = 0.45  # e-/px per frame in vacuum, as in the sample movies


class PeakMemory:
    """Peak memory (MB) above the start, of one block: resident memory on a CPU, torch's allocator on CUDA."""

    def __init__(self, device):
        self.cuda = getattr(device, "type", str(device)) == "cuda"
        self.how = "torch.cuda.max_memory_allocated" if self.cuda else "VmHWM (reset via /proc/self/clear_refs)"

    @staticmethod
    def _status(key):
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def __enter__(self):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated() / 2**20
            return self
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")   # resets VmHWM to the current resident size
            self.start = self._status("VmRSS")
        except OSError:
            self.start = None
        if self.start is None:
            from temnb.core.record import peak_memory_mb

            self.how, self.start = "ru_maxrss (process peak so far)", 0.0
            self._peak = peak_memory_mb
        return self

    def __exit__(self, *exc):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.extra_mb = torch.cuda.max_memory_allocated() / 2**20 - self.start
        elif hasattr(self, "_peak"):
            self.extra_mb = self._peak() or math.nan
        else:
            self.extra_mb = (self._status("VmHWM") or math.nan) - self.start
        return False


def _pixels(shape, count, frames, seed):
    """*count* pixels spread over a frame of *shape* (seeded), in the centre frame of a window."""
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)
    if frames is None:
        return [(int(r), int(c)) for r, c in zip(rows, cols)]
    return [(frames // 2, int(r), int(c)) for r, c in zip(rows, cols)]


def _cases(quick):
    """(label, config, frames or None, size, pixels batched, pixels in the loop, batch sizes); a batch
    size of None is effective_filters' default (on a CPU: about 32k input values per backward)."""
    from temnb.nets.config import UDVDConfig, UNetConfig, WCVDConfig

    if quick:
        return [("U-Net 3 scales base 8", UNetConfig(n_scales=3, base_channels=8), None, 64, 8, 4, (None, 4)),
                ("UDVD-compact channels 8", UDVDConfig(channels=8, n_scales=2), 5, 32, 8, 4, (None, 4))]
    return [("U-Net 4 scales base 32 (default)", UNetConfig(), None, 256, 32, 12, (None, 8)),
            ("UDVD-compact (default CPU variant)", UDVDConfig(), 5, 128, 32, 12, (None, 8)),
            ("WCVD (default)", WCVDConfig(), 3, 128, 256, 32, (None,))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small frames and networks: seconds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every usable core)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", temnb.TemnbWarning)
    import torch

    from temnb.core.device import choose_device, torch_threads
    from temnb.explain.jacobian import effective_filters
    from temnb.nets.registry import build_model

    device = choose_device(args.device)
    repeats = args.repeats or (1 if args.quick else 2)
    rows, compared = [], {}
    with torch_threads(args.threads or "auto") as threads:
        for label, config, frames, size, n_batched, n_loop, batch_sizes in _cases(args.quick):
            torch.manual_seed(0)
            net = build_model(config, seed=0).eval().to(device)
            n_frames = frames or 1
            movie, _ = synthetic.counted_movie(n_frames, (size, size), dose=DOSE, seed=0, as_signal=False)
            data = np.ascontiguousarray(movie if frames else movie[0], dtype=np.float32)
            pixels = _pixels((size, size), n_batched, frames, seed=1)
            shape = f"{frames} x {size}^2" if frames else f"{size}^2"

            def run(method, chosen, batch_size, data=data, net=net):
                return effective_filters(data, net, chosen, dose=DOSE, method=method, batch_size=batch_size,
                                         device=device)

            timings = {}
            for method, batch_size, chosen in [("loop", 1, pixels[:n_loop])] + [
                    ("batched", b, pixels) for b in batch_sizes]:
                run(method, chosen[:2], batch_size)                       # warm-up
                best, peak = math.inf, None
                for _ in range(repeats):
                    with PeakMemory(device) as memory:
                        start = time.perf_counter()
                        result = run(method, chosen, batch_size)
                        if device.type == "cuda":
                            torch.cuda.synchronize()
                        seconds = time.perf_counter() - start
                    best, peak = min(best, seconds), memory.extra_mb if peak is None else max(peak, memory.extra_mb)
                per_filter = best / len(chosen)
                key = "loop" if method == "loop" else f"batched {batch_size or 'default'}"
                timings[key] = (per_filter, result, peak, memory.how)
            loop_seconds, loop_filters = timings["loop"][0], timings["loop"][1]
            for key, (per_filter, result, peak, how) in timings.items():
                rows.append({"task": f"{label} {shape}: {key}", "architecture": config.architecture,
                             "shape": shape, "method": key.split()[0],
                             "batch_size": 1 if key == "loop" else key.split()[1],
                             "pixels": len(result), "seconds": per_filter, "ms_per_filter": 1e3 * per_filter,
                             "peak_extra_mb": round(float(peak), 1), "memory_measured_by": how,
                             "ratio_to_baseline": per_filter / loop_seconds, "baseline": "loop"})
                if key != "loop":
                    diffs = [float(np.abs(a.weights - b.weights).max()) for a, b in zip(result, loop_filters)]
                    compared[f"{label}: {key}"] = max(diffs)
    for row in rows:
        print(f"  {row['task']:<60} {row['ms_per_filter']:9.1f} ms/filter  peak +{row['peak_extra_mb']:.0f} MB")
    finish("jacobian", rows, quick=args.quick, out=args.out, device=str(device), threads=threads,
           repeats=repeats, dose=DOSE, largest_batched_minus_loop=compared)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
