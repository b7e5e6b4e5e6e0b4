"""Seconds per frame and Mpix/s of the denoising networks, and seconds per training step and epoch.

Inference: ``temnb.nets.inference.denoise`` on a dummy counted movie at 0.45 e-/px (``--frames`` frames of
``--size`` x ``--size`` px), for the U-Net (base 32, and base 16 = the notebook-05 workshop size), the
DnCNN and the issue-5 self-supervised models of ``temnb.nets.config`` (WCVD, WCID, UDVD, N2V; skipped
with a note if that module is missing or a model fails).  Every row is compared with a baseline timed
in the same run: ``scipy.ndimage.gaussian_filter`` (sigma 2) frame by frame for single-frame networks,
a 3-D Gaussian (sigma (1, 2, 2) frames/px) on the whole movie for networks that read several frames.
``seconds`` is per output frame; Mpix/s counts output pixels.  The weights are random (speed does
not depend on them).

On the CPU a network row denoises as many frames of the movie as fit in ``--budget`` seconds
(estimated from a warm-up on a small crop; at least one window), so a slow DnCNN does not take ten
minutes; the row says how many frames it timed.  UDVD runs with batch_size=1 on the CPU (see
``CPU_BATCH_SIZE``: denoise's default batch needs > 21 GB of RAM at 1024^2).  On CUDA every row
denoises the whole movie, best of ``--repeats``, after a full-size warm-up, with
``torch.cuda.synchronize`` around each timing; ``denoise`` itself autocasts on CUDA.  CUDA rows also
give the peak GPU memory and the throughput of the bare forward pass (no host transfers or tile
blending).

Training: ``temnb.nets.train.train`` of the base-32 U-Net on 16 dummy lattice images (256 x 256, vacuum
0.45 e-/px) with patch 64 / batch 8 on the CPU (128 / 16 on CUDA): seconds per epoch and per step
(sampling, augmentation, Poisson noise and the epoch's validation included), the bare
forward + backward + Adam step for comparison, and the validation PSNR reached against training time.

    python benchmarks/bench_networks.py                  # CPU, 8 frames of 1024^2 (several minutes)
    python benchmarks/bench_networks.py --quick          # 128^2, 3 frames, 1 epoch of 3 steps
    python benchmarks/bench_networks.py --device cuda    # writes results/networks_gpu_<host>.json
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

import temnb
from temnb.core import metadata as md
from temnb.simulation import synthetic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, finish  # noqa: E402

from temnb.core.record import peak_memory_mb

DOSE = 0.45  # e-/px per frame in vacuum, as in the sample movies
# denoise's CPU default batch (4 windows) of UDVD at 1024^2 needs more than 21 GB of RAM (its 4 rotations
# run as one batch of 16): it was OOM-killed on a 24 GB machine.  Batch 1 peaks at about 6.4 GB.
CPU_BATCH_SIZE = {"UDVD": 1}


def _sync(device) -> None:
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        torch.cuda.synchronize(device)


def timed(func, device, repeats: int = 1) -> float:
    """Best of *repeats* wall-clock seconds of func(), synchronising CUDA before and after."""
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        func()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def network_specs() -> list:
    """(task label, config) for every network row."""
    from temnb.nets.config import DnCNNConfig, N2VConfig, UDVDConfig, UNetConfig, WCIDConfig, WCVDConfig

    return [("denoise UNet n_scales=4 base_channels=32", UNetConfig(n_scales=4, base_channels=32)),
            ("denoise UNet n_scales=4 base_channels=16 (workshop)", UNetConfig(n_scales=4, base_channels=16)),
            ("denoise DnCNN depth=17 channels=64", DnCNNConfig()),
            ("denoise WCVD kernels 3,5,7 features=8 depth=1 (3 frames; default)", WCVDConfig()),
            ("denoise WCVD kernels 3,5,7 features=32 depth=2 (3 frames)", WCVDConfig(features=32, depth=2)),
            ("denoise WCID kernels 3,5,7 features=8 depth=1", WCIDConfig()),
            ("denoise UDVD channels=32 n_scales=3 (5 frames)", UDVDConfig()),
            ("denoise N2V (U-Net n_scales=3 base=32)", N2VConfig())]


def bench_network(label, config, movie, device, *, budget, repeats, baselines):
    """One inference row: denoise the movie (or its first frames within *budget* seconds on the CPU)."""
    import torch

    from temnb.nets.inference import denoise
    from temnb.nets.registry import build_model, count_parameters

    torch.manual_seed(0)
    net = build_model(config).to(device)
    tw, sm = int(net.temporal_window), int(net.size_multiple)
    n_total, size = movie.shape[0], movie.shape[1]
    if n_total < tw:
        raise ValueError(f"reads {tw} frames at a time; the movie has only {n_total} (use --frames {tw})")
    cuda = device.type == "cuda"
    batch_size = None if cuda else CPU_BATCH_SIZE.get(config.architecture)  # None: denoise's default

    def run(frames):
        return denoise(frames, net, device=device, dose=DOSE, progress=False, batch_size=batch_size)

    if cuda:
        run(movie)  # full-size warm-up with the timed batch shapes: kernels, cuDNN algorithms, allocator
        n = n_total
    else:
        crop = max(sm, min(size // 2, 128) // sm * sm)
        run(movie[:tw, :crop, :crop])  # first call: thread pools, allocator
        n = n_total
        if budget and size > 256:  # how many frames fit in the budget, from a crop scaled by pixel count
            estimate = timed(lambda: run(movie[:tw, :crop, :crop]), device) / tw * (size / crop) ** 2
            n = int(np.clip(budget // max(estimate, 1e-9), tw, n_total))
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    total = timed(lambda: run(movie[:n]), device, repeats)
    per_frame = total / n
    base_kind = "gaussian_3d" if tw > 1 else "gaussian_2d"
    row = {"task": label, "kind": "inference", "architecture": config.architecture, "config": config.to_dict(),
           "seconds": per_frame, "mpix_per_s": size * size / 1e6 / per_frame,
           "ratio_to_baseline": per_frame / baselines[base_kind][0], "baseline": baselines[base_kind][1],
           "frames_timed": n, "batch_size": batch_size or "denoise default", "frame_size": size,
           "seconds_total": total, "temporal_window": tw,
           "n_parameters": count_parameters(net), "receptive_field_px": int(net.receptive_field)}
    if cuda:
        row["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        row.update(bench_forward(net, movie, device, repeats))
    return row


def bench_forward(net, movie, device, repeats) -> dict:
    """Bare forward pass on CUDA (as denoise calls it: bfloat16 autocast, inference mode) on up to 8 windows."""
    import torch

    tw = int(net.temporal_window)
    n = max(1, min(8, movie.shape[0] - tw + 1))
    x = torch.stack([torch.from_numpy(movie[t:t + tw] / np.float32(DOSE)) for t in range(n)]).to(device)
    sm = int(net.size_multiple)
    x = x[..., :x.shape[-2] // sm * sm, :x.shape[-1] // sm * sm]

    def forward():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            net(x)

    forward()
    seconds = timed(forward, device, max(repeats, 3)) / n
    return {"forward_only_seconds": seconds, "forward_only_mpix_per_s": x.shape[-1] * x.shape[-2] / 1e6 / seconds,
            "forward_only_batch": n, "autocast_dtype": "torch.bfloat16"}


def clean_training_images(n: int, size: int) -> "object":
    """n clean lattice images (expected electrons; vacuum DOSE e-/px) as a signal stack with the dose."""
    import hyperspy.api as hs

    rng = np.random.default_rng(0)
    images = np.stack([DOSE * synthetic.lattice_image((size, size), spacing_px=float(rng.uniform(7, 14)),
                                                       sigma_px=float(rng.uniform(1.2, 2.4)),
                                                       shift=tuple(rng.uniform(0, 10, 2)))
                       for _ in range(n)]).astype(np.float32)
    stack = hs.signals.Signal2D(images)
    md.set(stack, "dose_per_pixel", DOSE)
    return stack


def bench_step(config, images, device, steps: int, warmup: int) -> float:
    """Seconds of one bare training step (forward, MSE, backward, Adam; bf16 autocast on CUDA)."""
    import torch
    import torch.nn.functional as F

    from temnb.nets.config import UNetConfig
    from temnb.nets.registry import build_model

    torch.manual_seed(0)
    net = build_model(UNetConfig(n_scales=4, base_channels=32)).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    p, b = config.patch_size, config.batch_size
    clean = np.asarray(images)[np.arange(b) % len(images), :p, :p]
    x = torch.as_tensor(np.random.default_rng(0).poisson(clean) / DOSE, dtype=torch.float32)[:, None].to(device)
    y = torch.as_tensor(clean / DOSE, dtype=torch.float32)[:, None].to(device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = net(x)
        loss = F.mse_loss(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    return timed(lambda: [step() for _ in range(steps)], device) / steps


def bench_training(device, *, quick: bool, epochs: int, steps: int, details: dict) -> list:
    """Rows for training the base-32 U-Net; PSNR against time into *details*."""
    import torch

    from temnb.nets.config import TrainConfig, UNetConfig
    from temnb.nets.registry import build_model
    from temnb.nets.train import train

    cuda = device.type == "cuda"
    patch, batch = (128, 16) if cuda else (32, 4) if quick else (64, 8)
    images = clean_training_images(8 if quick else 16, 128 if quick else 256)
    config = TrainConfig(patch_size=patch, batch_size=batch, epochs=epochs, steps_per_epoch=steps,
                         early_stopping_patience=max(5, epochs), n_val_patches=8 if quick else 32, seed=0)
    torch.manual_seed(0)
    net = build_model(UNetConfig(n_scales=4, base_channels=32))
    with tempfile.TemporaryDirectory() as out_dir:
        result = train(net, images, config=config, out_dir=out_dir, device=device, progress=False, resume=False)
    history = result.history
    cumulative, curve = 0.0, []
    for entry in history:
        cumulative += entry["seconds"]
        curve.append({"epoch": entry["epoch"], "seconds": round(cumulative, 3), "val_psnr": entry["val_psnr"],
                      "train_loss": entry["train_loss"]})
    later = [e["seconds"] for e in history[1:]] or [history[0]["seconds"]]  # epoch 1 includes warm-up
    epoch_s = float(np.median(later))
    label = f"UNet32 (patch {patch}, batch {batch})"
    mpix_step = batch * patch * patch / 1e6
    bare = bench_step(config, images.data, device, steps=2 if quick else 10, warmup=1 if quick else 3)
    rows = [
        {"task": f"train {label}: epoch of {steps} steps", "kind": "training", "seconds": epoch_s,
         "mpix_per_s": steps * mpix_step / epoch_s, "first_epoch_seconds": history[0]["seconds"],
         "epochs": len(history), "steps_per_epoch": steps},
        {"task": f"train {label}: one step, in train()", "kind": "training", "seconds": epoch_s / steps,
         "mpix_per_s": mpix_step / (epoch_s / steps),
         "note": "epoch seconds / steps: includes patch sampling, augmentation, Poisson noise and validation"},
        {"task": f"train {label}: bare fwd+bwd+Adam step", "kind": "training", "seconds": bare,
         "mpix_per_s": mpix_step / bare, "note": "fixed batch already on the device"},
    ]
    details.update(train_config=config.to_dict(), psnr_vs_time=curve, noisy_val_psnr=result.noisy_val_psnr,
                   best_val_psnr=result.best_val_psnr, train_device=result.device,
                   training_data=f"{len(images.data)} dummy lattice images {images.data.shape[1]}^2 px, "
                                 f"vacuum {DOSE} e-/px (90/10 train/val split)")
    print(f"validation PSNR against training time (noisy input: {result.noisy_val_psnr:.2f} dB):")
    for point in curve:
        print(f"  epoch {point['epoch']:>3}  {point['seconds']:9.1f} s  {point['val_psnr']:7.2f} dB")
    return rows


def self_supervised_specs(quick: bool) -> list:
    """(label, config, steps, evaluate every, batch, patch) for the training-to-stable-uPSNR rows."""
    from temnb.nets.config import UDVDConfig, WCVDConfig

    if quick:
        return [("WCVD default", WCVDConfig(), 6, 3, 4, 32),
                ("UDVD channels=8 n_scales=2", UDVDConfig(channels=8, n_scales=2), 4, 2, 2, 32)]
    return [("WCVD default", WCVDConfig(), 300, 25, 4, 48),
            ("UDVD channels=8 n_scales=2 (workshop)", UDVDConfig(channels=8, n_scales=2), 300, 25, 4, 48),
            ("UDVD channels=32 n_scales=3 (default)", UDVDConfig(), 150, 25, 4, 48)]


def stable_after(curve: list, tolerance_db: float = 0.5):
    """Training seconds from which uPSNR stays within *tolerance_db* of its last value (None if never)."""
    final = curve[-1]["upsnr"]
    stable = None
    for point in reversed(curve):
        if abs(point["upsnr"] - final) > tolerance_db:
            break
        stable = point["train_seconds"]
    return stable


def bench_self_supervised(device, *, quick: bool, details: dict) -> list:
    """Train each blind-spot network on a dummy counted movie (no clean data); every few steps
    denoise the movie and score it with uPSNR (references one frame beyond the window) and with
    the true PSNR.  Row: training seconds until uPSNR is stable (within 0.5 dB of its final value)."""
    import torch

    from temnb.judge import metrics, no_reference
    from temnb.nets.inference import denoise
    from temnb.nets.registry import build_model
    from temnb.nets.self_supervised import fit_self_supervised

    n, size = (8, 64) if quick else (16, 128)
    noisy, clean = synthetic.counted_movie(n, (size, size), dose=DOSE, seed=1, as_signal=False)
    noisy = np.ascontiguousarray(noisy, dtype=np.float32)
    rows, curves = [], {}
    for label, config, steps, every, batch, patch in self_supervised_specs(quick):
        torch.manual_seed(0)
        net = build_model(config)
        gap = net.temporal_window // 2 + 1
        curve, clock = [], {"train": 0.0, "start": time.perf_counter()}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        def evaluate(step, loss, net=net, curve=curve, clock=clock, every=every, steps=steps, gap=gap):
            if (step + 1) % every and step + 1 != steps:
                return
            _sync(device)
            clock["train"] += time.perf_counter() - clock["start"]
            out = denoise(noisy, net, device=device, dose=DOSE, progress=False)
            peak = float(np.ptp(clean))
            curve.append({"step": step + 1, "train_seconds": round(clock["train"], 3), "loss": loss,
                          "upsnr": no_reference.upsnr(out, noisy, gap=gap, peak=peak),
                          "psnr": metrics.psnr(out, clean)})
            clock["start"] = time.perf_counter()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # uPSNR warns (inf) while the error is below the noise
            fit_self_supervised(net, noisy, steps=steps, batch_size=batch, patch_size=patch, lr=3e-3,
                                kind="poisson" if config.architecture == "WCVD" else "mse", dose=DOSE,
                                device=device, progress=False, callback=evaluate)
        stable = stable_after(curve)
        row = {"task": f"train {label} to a stable uPSNR (patch {patch}, batch {batch})", "kind": "training",
               "architecture": config.architecture, "config": config.to_dict(),
               "seconds": stable, "seconds_total": curve[-1]["train_seconds"], "steps": steps,
               "seconds_per_step": curve[-1]["train_seconds"] / steps,
               "mpix_per_s": steps * batch * patch * patch / 1e6 / curve[-1]["train_seconds"],
               "final_upsnr": curve[-1]["upsnr"], "final_psnr": curve[-1]["psnr"],
               "note": f"{n} frames of {size}^2 px at {DOSE} e-/px; seconds = training time after which uPSNR "
                       "stays within 0.5 dB of its final value (evaluation time excluded)"}
        if device.type == "cuda":
            row["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            row["process_peak_rss_mb"] = peak_memory_mb()  # a running maximum for the process, not per row
        rows.append(row)
        curves[label] = curve
        print(f"  done: {row['task']}: stable after {stable} s, uPSNR {row['final_upsnr']:.2f} dB, "
              f"PSNR {row['final_psnr']:.2f} dB", flush=True)
    details["self_supervised_curves"] = curves
    details["self_supervised_movie"] = {"frames": n, "size": size, "dose": DOSE, "noisy_psnr": metrics.psnr(noisy, clean)}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="128^2 frames, 3 frames, 1 epoch of 3 steps (patch 32, batch 4 on the CPU)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--size", type=int, default=None, help="frame side in px (default 1024; 128 with --quick)")
    parser.add_argument("--frames", type=int, default=None, help="frames in the movie (default 8; 3 with --quick)")
    parser.add_argument("--budget", type=float, default=None,
                        help="CPU seconds per network row (default 60; 0 = whole movie); ignored on CUDA")
    parser.add_argument("--repeats", type=int, default=None, help="timings per row, best kept (default 3 CUDA, 1 CPU)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 3 CPU, 10 CUDA; 1 quick)")
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch (default 20 CPU, 100 CUDA; 3 quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice); 1 is steadier on a busy machine")
    parser.add_argument("--no-training", action="store_true", help="inference rows only")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", temnb.TemnbWarning)

    import torch

    threads = torch.get_num_threads()
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        return _run(args)
    finally:
        torch.set_num_threads(threads)  # process-wide: leave it as it was (tests call main() in-process)


def _run(args) -> int:
    import torch

    from temnb.core.device import choose_device

    device = torch.device(choose_device(args.device))
    cuda = device.type == "cuda"
    size = args.size or (128 if args.quick else 1024)
    n_frames = args.frames or (3 if args.quick else 8)
    budget = 0.0 if cuda else (60.0 if args.budget is None else args.budget)
    repeats = args.repeats or (3 if cuda else 1)
    epochs = args.epochs or (1 if args.quick else 10 if cuda else 3)
    steps = args.steps or (3 if args.quick else 100 if cuda else 20)
    load_before = os.getloadavg()

    movie, _ = synthetic.counted_movie(n_frames, (size, size), dose=DOSE, seed=0, as_signal=False)
    movie = np.ascontiguousarray(movie, dtype=np.float32)
    g2 = timed(lambda: [ndimage.gaussian_filter(f, 2.0) for f in movie], "cpu", 3) / n_frames
    g3 = timed(lambda: ndimage.gaussian_filter(movie, (1.0, 2.0, 2.0)), "cpu", 3) / n_frames
    baselines = {"gaussian_2d": (g2, "scipy gaussian_filter"), "gaussian_3d": (g3, "scipy 3-D gaussian")}
    rows = [{"task": "scipy.ndimage.gaussian_filter sigma 2 (baseline)", "kind": "baseline", "seconds": g2,
             "mpix_per_s": size * size / 1e6 / g2, "frames_timed": n_frames},
            {"task": "scipy 3-D gaussian sigma (1,2,2) (baseline)", "kind": "baseline", "seconds": g3,
             "mpix_per_s": size * size / 1e6 / g3, "frames_timed": n_frames}]
    skipped = []
    for label, config in network_specs():
        try:
            rows.append(bench_network(label, config, movie, device, budget=budget, repeats=repeats,
                                      baselines=baselines))
        except Exception as exc:  # noqa: BLE001 - one failing network must not lose the other rows
            if config.architecture in ("UNet", "DnCNN"):
                raise
            skipped.append({"task": label, "note": f"{type(exc).__name__}: {exc}"})
        print(f"  done: {label}", flush=True)
    details = {}
    if not args.no_training:
        rows += bench_training(device, quick=args.quick, epochs=epochs, steps=steps, details=details)
        rows += bench_self_supervised(device, quick=args.quick, details=details)
    for item in skipped:
        print(f"skipped {item['task']}: {item['note']}")
    machine = {"device": str(device), "torch_threads": torch.get_num_threads(),
               "load_average_before": load_before, "load_average_after": os.getloadavg()}
    if cuda:
        machine["gpu"] = torch.cuda.get_device_name(device)
    out = args.out
    if out is None and cuda:
        out = RESULTS / f"networks_gpu{'_quick' if args.quick else ''}_{platform.node() or 'host'}.json"
    finish("networks", rows, quick=args.quick, out=out, frame_size=size, frames=n_frames, dose=DOSE,
           cpu_budget_s=budget, repeats=repeats, skipped=skipped, compute=machine, **details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
