"""Supervised training of a denoiser on clean images, with Poisson noise drawn on the fly.

The whole method in five lines (see :func:`train`)::

    for each epoch e:                  # every random choice of epoch e comes from SeedSequence(seed, spawn_key=(e,))
        for each step:
            clean = random patches of random clean images, flipped / turned / rotated / scaled
            counts = Poisson(clean)    # fresh noise every time: the net never sees the same noise twice
            loss = MSE(net(counts / dose), clean / dose); one Adam step
        val PSNR on fixed noisy validation patches -> learning-rate schedule, early stopping, checkpoints

Units: the clean images are EXPECTED electrons per pixel (``temnb.simulation.training_data.load_dataset``
gives them at the spec dose, vacuum = dose).  Dividing by the vacuum dose puts vacuum at 1 at
any dose, and :func:`temnb.nets.inference.denoise` divides by the dose the same way, so the network
sees at inference what it saw in training.

Reproducibility: the model's initial weights are the caller's (``build_model`` seeds them, with
``seed=0`` by default); everything else is seeded by ``TrainConfig.seed``.  Because epoch e draws its
randomness from its own generator, resuming after epoch e needs only what the checkpoint holds
(weights, optimizer, scheduler, history) and gives the same weights as an uninterrupted run
(bit for bit on the CPU; on a GPU cuDNN's non-deterministic kernels may add rounding-level differences).
"""
from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core import metadata as md
from ..core.device import choose_device, torch_threads
from ..core.dose import Dose
from ..core.errors import CorruptFileError, DataShapeError, DataValueError, ParameterError, TemnbWarning
from ..core.signals import is_signal, require_image_data, source_label, unwrap
from ..io.calibration import pixel_size_angstrom
from .checkpoint import load_model, save_model
from .config import TrainConfig
from .patches import _random_crops, crop_size, sample_clean_patches

__all__ = ["TrainResult", "train", "patch_psnr"]

STATE_FILE, CONFIG_FILE = "training_state.pt", "train_config.json"
_VAL_KEY = 2**31  # spawn key of the validation split and patches; epochs use (e,) and never get here


@dataclass
class TrainResult:
    """model: the best-validation network (the caller's module, eval mode, on *device*); history: one dict
    per epoch (epoch, train_loss, val_psnr in dB, lr, seconds; the last also 'stopped', the reason);
    noisy_val_psnr: PSNR of the noisy validation input itself, the baseline to beat."""

    model: torch.nn.Module
    history: list
    best_val_psnr: float
    out_dir: Path
    device: str
    noisy_val_psnr: float = float("nan")
    stopped: str = ""


# -- data ------------------------------------------------------------------------------------

def _images(data, name):
    """(N, H, W) float32 expected electrons, their vacuum dose if the metadata has it, and a summary."""
    array, _ = unwrap(data, name=name)
    source = source_label(data, name)
    require_image_data(array, source=source, what="training")
    array = np.array(array, dtype=np.float32)  # a copy: it is rescaled in place, the caller's data must not be
    array = array[None] if array.ndim == 2 else array
    if array.min() < 0:
        raise DataValueError(f"has negative values (min {array.min():.3g}), but clean images must be expected "
                             "electrons (>= 0) to draw Poisson noise from", source=source,
                             hint="pass the clean simulated images in electrons (training_data.load_dataset)")
    summary = {"n_images": int(array.shape[0]), "image_shape": list(array.shape[1:])}
    dose = None
    if is_signal(data):
        dose = md.get(data, "dose_per_pixel")
        axis = data.axes_manager.signal_axes[0]
        summary.update(pixel_size=float(axis.scale), pixel_size_units=str(axis.units),
                       pixel_size_A=pixel_size_angstrom(data), title=str(data.metadata.General.title))
        spec = md.get(data, "simulation")
        if spec is not None:
            summary["simulation"] = spec.as_dictionary() if hasattr(spec, "as_dictionary") else spec
    return array, dose, summary


def training_regime(dose: float, data_summary: dict) -> dict:
    """What a model was trained on, for its card: the dose per px and per Å² (when the pixel size is
    known), the pixel size and, for simulated data, the defocus range."""
    pixel = data_summary.get("pixel_size_A")
    regime = Dose(dose, pixel).as_dict()
    regime.pop("frame_time_s"), regime.pop("dose_rate")
    spec = (data_summary.get("simulation") or {}).get("spec") or {}
    if spec.get("defoci"):
        regime["defocus_nm"] = [float(min(spec["defoci"])), float(max(spec["defoci"]))]
    return regime


def _prepare_data(clean, val_clean, config):
    """Train and val images scaled to the training dose, the dose, and a summary for the model card."""
    train, source_dose, summary = _images(clean, "the training images")
    # No dose in the metadata: the mean of the images, as temnb.nets.inference.denoise assumes too.
    source_dose = float(source_dose) if source_dose else float(train.mean())
    if not source_dose > 0:
        raise DataValueError("the training images are all zero", source=source_label(clean))
    dose = config.dose or source_dose
    train *= np.float32(dose / source_dose)
    if val_clean is not None:
        val, val_dose, _ = _images(val_clean, "the validation images")
        val *= np.float32(dose / (float(val_dose) if val_dose else source_dose))
    else:
        if config.val_fraction == 0:
            raise ParameterError("val_fraction = 0 and no val_clean: there is nothing to validate on",
                                 hint="give val_clean= or a val_fraction such as 0.1")
        n_val = max(1, round(config.val_fraction * len(train)))
        if n_val >= len(train):
            raise DataShapeError(f"only {len(train)} training image(s): none would be left after splitting off "
                                 f"{n_val} for validation", source=source_label(clean),
                                 hint="pass more images, or separate validation images as val_clean=")
        order = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_VAL_KEY, 0))).permutation(
            len(train))
        train, val = train[np.sort(order[n_val:])], train[np.sort(order[:n_val])]
    summary.update(n_images=len(train), n_val_images=len(val), dose=dose, source_dose=source_dose)
    return train, val, dose, summary


def _check_sizes(train, val, config, multiple):
    if config.patch_size % multiple:
        raise ParameterError(f"patch_size {config.patch_size} is not a multiple of {multiple}, which this model "
                             "needs (2**(n_scales-1) for a UNet)",
                             hint=f"use patch_size={max(multiple, config.patch_size // multiple * multiple)}")
    need = crop_size(config)
    if min(train.shape[1:]) < need:
        fits = [p for p in range(multiple, config.patch_size, multiple)
                if crop_size(config, p) <= min(train.shape[1:])]
        raise DataShapeError(
            f"training images of {train.shape[1]} x {train.shape[2]} px are smaller than the {need} px crop that "
            f"patch_size={config.patch_size} needs (rotation up to {config.max_rotation_deg:g} deg, scale up to "
            f"{config.scale_range[1]:g})", hint=(f"use patch_size={fits[-1]} or smaller" if fits else
                                                 "use larger images") + ", or less rotation / augment=False")
    if min(val.shape[1:]) < multiple:
        raise DataShapeError(f"validation images of {val.shape[1]} x {val.shape[2]} px are smaller than the "
                             f"{multiple} px this model needs", hint="use larger validation images")


def _validation_set(val, config, multiple, dose):
    """Fixed validation patches (clean / dose, noisy / dose, PSNR peak): patch_size, or the whole val image
    (cut to the size multiple) when smaller.  The peak is the range of the clean IMAGE a patch comes
    from, not of the patch: a patch of vacuum has almost no range and its PSNR would mean nothing."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_VAL_KEY, 1)))
    shape = [min(config.patch_size, s - s % multiple) for s in val.shape[1:]]
    clean, index = _random_crops(val, rng, config.n_val_patches, shape)
    peak = np.ptp(val, axis=(1, 2))[index].astype(np.float64) / dose
    if not peak.max() > 0:
        raise DataValueError("the validation images are flat (max = min), so PSNR cannot be measured",
                             hint="use validation images with some contrast")
    clean, peak = clean[peak > 0].astype(np.float64), peak[peak > 0]
    noisy = rng.poisson(clean)
    return (clean / dose).astype(np.float32), (noisy / dose).astype(np.float32), peak


def patch_psnr(estimate, clean, peak) -> float:
    """Mean over patches of the PSNR in dB, 10 log10(peak**2 / MSE) as temnb.judge.metrics.psnr, one peak per patch."""
    estimate, clean = np.asarray(estimate, np.float64), np.asarray(clean, np.float64)
    mse = np.mean((estimate - clean) ** 2, axis=(-2, -1))
    return float(np.mean(10 * np.log10(np.asarray(peak, np.float64) ** 2 / np.maximum(mse, 1e-30))))


# -- the loop --------------------------------------------------------------------------------

def _train_epoch(model, optimizer, images, rng, config, dose, device, amp, bar):
    """One epoch of steps_per_epoch Adam steps; returns the mean training loss."""
    model.train()
    losses = []
    for _ in range(config.steps_per_epoch):
        clean = sample_clean_patches(images, rng, config)
        counts = rng.poisson(clean)  # the noise: a fresh draw every step
        x = torch.as_tensor(counts / dose, dtype=torch.float32)[:, None].to(device)
        y = torch.as_tensor(clean / dose, dtype=torch.float32)[:, None].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        loss = F.mse_loss(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4g}")
    return float(np.mean(losses))


@torch.no_grad()
def _validate(model, val, device, amp, batch_size):
    """Mean PSNR (dB) of the network's output on the fixed validation patches."""
    model.eval()
    clean, noisy, peak = val
    out = []
    for i in range(0, len(noisy), batch_size):
        x = torch.as_tensor(noisy[i:i + batch_size])[:, None].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out.append(model(x).float()[:, 0].cpu().numpy())
    return patch_psnr(np.concatenate(out), clean, peak)


def train(model, clean, *, config: TrainConfig | None = None, out_dir, val_clean=None, resume: bool = True,
          device="auto", threads="auto", progress: bool = True, callback=None) -> TrainResult:
    """Train *model* to denoise Poisson noise on the *clean* images; see the module docstring.

    clean / val_clean: (N, H, W) numpy or hyperspy stacks of expected electrons per pixel (their vacuum
    dose from metadata temnb.dose_per_pixel, else their mean).  Checkpoints: out_dir/'last' after every
    epoch (with training_state.pt for resuming) and out_dir/'best' (best val PSNR).  resume=True continues
    from out_dir/'last' when it exists (same model and config; only epochs may grow); resume=False starts
    over.  callback(history) runs after every epoch (e.g. LiveCurves()).  The initial weights are the
    model's: :func:`temnb.nets.registry.build_model` seeds them (``seed=0`` unless given), everything
    else is seeded by ``config.seed``.  *threads*: CPU threads (:func:`temnb.core.device.choose_threads`).
    Returns the best model, in eval mode.
    """
    with torch_threads(threads):
        return _train(model, clean, config=config, out_dir=out_dir, val_clean=val_clean, resume=resume,
                      device=device, progress=progress, callback=callback)


def _train(model, clean, *, config, out_dir, val_clean, resume, device, progress, callback) -> TrainResult:
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ParameterError(f"config must be a TrainConfig, not {type(config).__name__}")
    train_images, val_images, dose, data_summary = _prepare_data(clean, val_clean, config)
    _check_sizes(train_images, val_images, config, int(model.size_multiple))
    device = choose_device(device)
    amp = _use_amp(config.mixed_precision, device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    # An absolute threshold in dB: torch's default relative one misbehaves for negative PSNR.
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.lr_factor, patience=config.plateau_patience,
        threshold=0.01, threshold_mode="abs")
    out_dir = Path(out_dir)
    state = {"epoch": 0, "history": [], "best_val_psnr": -math.inf, "best_epoch": 0, "seconds": 0.0,
             "data": _fingerprint(train_images, val_images)}
    if resume and (out_dir / "last" / STATE_FILE).exists():
        state = _resume(model, optimizer, scheduler, out_dir / "last", config, state["data"], device)
    val = _validation_set(val_images, config, int(model.size_multiple), dose)
    card = {"training_data": data_summary, "train_config": config.to_dict(), "dose": dose, "device": str(device),
            "regime": training_regime(dose, data_summary), "noisy_val_psnr": patch_psnr(val[1], val[0], val[2])}
    history = state["history"]
    early_stopped = bool(history) and history[-1].get("stopped", "").startswith("early")
    epochs = [] if early_stopped else range(state["epoch"] + 1, config.epochs + 1)
    if history and epochs:
        history[-1].pop("stopped", None)  # it only marked where an earlier, shorter run ended
    from tqdm.auto import tqdm
    with tqdm(total=len(epochs) * config.steps_per_epoch, disable=not progress or not epochs, unit="step") as bar:
        for epoch in epochs:
            start = time.perf_counter()
            rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(epoch,)))
            lr = optimizer.param_groups[0]["lr"]
            loss = _train_epoch(model, optimizer, train_images, rng, config, dose, device, amp, bar)
            val_psnr = _validate(model, val, device, amp, config.batch_size)
            scheduler.step(val_psnr)
            improved = _record_epoch(state, config, epoch, loss, val_psnr, lr, time.perf_counter() - start)
            bar.set_description(f"epoch {epoch}/{config.epochs}, val PSNR {val_psnr:.2f} dB")
            card.update(best_val_psnr=state["best_val_psnr"], epochs=epoch, seconds=state["seconds"])
            if improved:  # best before last: a crash in between just repeats this epoch on resume
                _save_checkpoint(out_dir / "best", model, card, config)
            _save_checkpoint(out_dir / "last", model, card, config,
                             {**state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                              "train_config": config.to_dict()})
            if callback is not None:
                callback(history)
            if "stopped" in history[-1]:
                break
    best = load_model(out_dir / "best", device=device)
    model.load_state_dict(best.state_dict())
    model.eval()
    # So that temnb.denoise records where these weights live and what they were trained on.
    model.model_folder, model.model_card = best.model_folder, best.model_card
    return TrainResult(model=model, history=history, best_val_psnr=state["best_val_psnr"], out_dir=out_dir,
                       device=str(device), noisy_val_psnr=card["noisy_val_psnr"],
                       stopped=history[-1].get("stopped", ""))


def _record_epoch(state, config, epoch, loss, val_psnr, lr, seconds) -> bool:
    """Append the epoch to the history, note a new best and why training stops; True if val PSNR improved."""
    state["history"].append({"epoch": epoch, "train_loss": loss, "val_psnr": val_psnr, "lr": lr, "seconds": seconds})
    improved = val_psnr > state["best_val_psnr"]
    if improved:
        state.update(best_val_psnr=val_psnr, best_epoch=epoch)
    if epoch - state["best_epoch"] >= config.early_stopping_patience:
        state["history"][-1]["stopped"] = (f"early stopping: val PSNR has not improved for "
                                           f"{config.early_stopping_patience} epochs")
    elif epoch == config.epochs:
        state["history"][-1]["stopped"] = f"completed {epoch} epochs"
    state.update(epoch=epoch, seconds=state["seconds"] + seconds)
    return improved


def _use_amp(setting, device) -> bool:
    if setting == "auto":
        return device.type == "cuda"
    if setting and device.type != "cuda":
        warnings.warn(f"mixed_precision=True needs a CUDA GPU; training in float32 on {device}", TemnbWarning,
                      stacklevel=3)
        return False
    return bool(setting)


def _fingerprint(train_images, val_images) -> list:
    """Shapes and sums of the data: enough to notice that a resumed run got different images."""
    return [[list(a.shape), round(float(np.sum(a, dtype=np.float64)), 3),
             round(float(np.sum(np.square(a, dtype=np.float64))), 3)] for a in (train_images, val_images)]


def _resume(model, optimizer, scheduler, folder, config, data, device) -> dict:
    """Load folder's weights, optimizer and scheduler into the live objects; return the saved state."""
    try:
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or not a torch file
        raise CorruptFileError(f"cannot be read ({type(exc).__name__})", source=str(folder / STATE_FILE),
                               hint="delete the folder's 'last' checkpoint or train with resume=False") from None
    hint = (f"use the same model and TrainConfig as before (only epochs may change), another out_dir, "
            f"or resume=False to start over (this overwrites {folder.parent})")
    saved = load_model(folder, device="cpu")
    if saved.config.to_dict() != model.config.to_dict():
        raise ParameterError(f"the checkpoint in {folder} is a different model: {saved.config.to_dict()} "
                             f"vs {model.config.to_dict()} now", source=str(folder), hint=hint)
    old, new = state["train_config"], config.to_dict()
    changed = [f"{k}={old.get(k)!r} before, {new[k]!r} now" for k in new if k != "epochs" and old.get(k) != new[k]]
    if changed:
        raise ParameterError(f"the training in {folder} used other settings: {'; '.join(changed)}",
                             source=str(folder), hint=hint)
    if state["data"] != data:
        raise ParameterError(f"the training in {folder} used other images (shapes or values differ)",
                             source=str(folder), hint=hint)
    model.load_state_dict(saved.state_dict())
    model.to(device)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return {k: state[k] for k in ("epoch", "history", "best_val_psnr", "best_epoch", "seconds", "data")}


def _save_checkpoint(folder, model, card, config, state=None):
    """Write a model folder next to *folder*, then swap it in, so a crash never leaves half a checkpoint."""
    folder = Path(folder)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp, card=card)
    (tmp / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2))
    if state is not None:
        torch.save(state, tmp / STATE_FILE)
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
