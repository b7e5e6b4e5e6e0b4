"""Training the blind-spot networks of :mod:`temnb.nets.config` on the noisy movie itself.

Noise2Void masking (:func:`n2v_mask`, :func:`n2v_loss`), the self-supervised loss against the
noisy centre frame (:func:`blind_spot_loss`: MSE, or the Poisson likelihood for counts), endless
batches of frame windows cut from a movie (:func:`self_supervised_batches`), and a short, readable
training loop (:func:`fit_self_supervised`).  Re-exported by :mod:`temnb.nets.config`.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..core import metadata as md
from ..core.checks import positive_int
from ..core.errors import DataShapeError, ParameterError, TemnbWarning, TooFewFramesError
from ..core.signals import require_image_data, source_label, unwrap
from .inference import _choose_dose


def n2v_mask(batch, fraction: float = 0.005, generator=None):
    """Noise2Void masking of a batch (N, C, H, W): ``(masked_input, mask)``.

    In each image ``round(fraction * H * W)`` (at least 1) distinct pixels take the value of a random
    other pixel of their 5x5 neighbourhood (reflected at the border; never the pixel itself, taken
    from the unmasked batch); *mask* (N, 1, H, W) is 1 there and 0 elsewhere."""
    if not torch.is_tensor(batch) or batch.ndim != 4 or min(batch.shape[-2:]) < 5:
        raise DataShapeError(f"n2v_mask needs a tensor (N, C, H, W) with H, W >= 5, "
                             f"got {tuple(getattr(batch, 'shape', ())) or type(batch).__name__}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
        raise ParameterError(f"fraction = {fraction!r}; it must be in (0, 0.5], typically 0.002-0.02")
    n_img, c, h, w = batch.shape
    n = max(1, round(fraction * h * w))
    idx = torch.stack([torch.randperm(h * w, generator=generator)[:n] for _ in range(n_img)])
    off = torch.randint(0, 24, (n_img, n), generator=generator)
    off = off + (off >= 12)  # 25 offsets of the 5x5 window minus the centre (index 12)
    y, x, dy, dx = idx // w, idx % w, off // 5 - 2, off % 5 - 2
    sy = torch.where((y + dy < 0) | (y + dy >= h), y - dy, y + dy)
    sx = torch.where((x + dx < 0) | (x + dx >= w), x - dx, x + dx)
    flat = batch.reshape(n_img, c, h * w)
    idx, src = idx.to(batch.device), (sy * w + sx).to(batch.device)
    values = torch.gather(flat, 2, src[:, None, :].expand(n_img, c, n))
    masked = flat.clone().scatter_(2, idx[:, None, :].expand(n_img, c, n), values)
    mask = torch.zeros(n_img, 1, h * w, dtype=batch.dtype, device=batch.device)
    mask.scatter_(2, idx[:, None, :], 1.0)
    return masked.reshape(batch.shape), mask.reshape(n_img, 1, h, w)


# --------------------------------------------------------------------------- training
def blind_spot_loss(output, noisy_centre, kind: str = "mse", *, mask=None, eps: float = 1e-6):
    """Self-supervised loss of a blind prediction against the noisy centre frame.

    ``"mse"``: mean squared error.  ``"poisson"``: Poisson negative log-likelihood for counts,
    ``output - y * log(output + eps)`` (constant terms dropped; negative outputs count as 0, so the
    model should end in a ReLU like WCVD).  With *mask*, the mean over masked pixels only."""
    if output.shape != noisy_centre.shape:
        raise DataShapeError(f"output {tuple(output.shape)} and target {tuple(noisy_centre.shape)} differ in shape")
    if kind == "mse":
        per_pixel = (output - noisy_centre) ** 2
    elif kind == "poisson":
        rate = output.clamp_min(0)
        per_pixel = rate - noisy_centre * torch.log(rate + eps)
    else:
        raise ParameterError(f"kind = {kind!r}; it must be 'mse' or 'poisson'")
    if mask is None:
        return per_pixel.mean()
    return (per_pixel * mask).sum() / (mask.sum() * output.shape[1]).clamp_min(1)


def n2v_loss(output, noisy, mask, kind: str = "mse"):
    """Noise2Void loss: :func:`blind_spot_loss` on the masked pixels only."""
    return blind_spot_loss(output, noisy, kind, mask=mask)


def _as_generator(generator):
    if generator is None or isinstance(generator, (int, np.integer)):
        g = torch.Generator()
        g.manual_seed(0 if generator is None else int(generator))
        return g
    if isinstance(generator, torch.Generator):
        return generator
    raise ParameterError(f"generator must be a torch.Generator, a seed or None, not {type(generator).__name__}")


def _warn_if_interpolated(template, source) -> None:
    """A blind spot assumes each pixel's noise is its own.  A sub-pixel (interpolated) drift
    correction spreads every electron over neighbouring pixels, so the network can read the noise
    of the pixel it predicts from them: on the sample movie WCVD fell from 9.6 to -2.8 dB."""
    if template is None:
        return
    record = md.get(template, "drift_correction")
    order = None if record is None else (record.get("interpolation_order") if isinstance(record, dict)
                                        else getattr(record, "interpolation_order", None))
    if order:
        warnings.warn(f"{source or 'the movie'}: it was drift-corrected with interpolation (order {order}), which "
                      "correlates the noise of neighbouring pixels and breaks the blind spot; align with "
                      "whole-pixel shifts for self-supervised training: temnb.classic.align.apply_drift(movie, drift, "
                      "order=0) (notebook 08 shows the difference)", TemnbWarning, stacklevel=3)


def self_supervised_batches(movie, window: int, patch_size: int = 64, batch_size: int = 8, generator=None, *,
                            dose: float | None = None, augment: bool = True, name=None):
    """Endless batches ``(inputs, targets)`` from a noisy movie (T, H, W) or frame, array or signal.

    *inputs* (batch_size, window, p, p) are random crops of *window* consecutive frames; *targets*
    (batch_size, 1, p, p) the noisy centre frame of each.  Both are divided by the dose (the argument,
    else metadata temnb.dose_per_pixel, else the movie mean), as temnb.nets.inference.denoise does.
    *augment*: random flips and 90-degree rotations.  Raises TooFewFramesError when T < window."""
    array, template = unwrap(movie, name=name)
    source = source_label(movie, name)
    require_image_data(array, source=source, what="self-supervised training")
    if array.ndim == 2:
        array = array[None]
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ParameterError(f"window = {window!r}; it must be an odd number of frames (the model's temporal_window)")
    if array.shape[0] < window:
        raise TooFewFramesError(f"has {array.shape[0]} frame(s), but a {window}-frame model needs at least {window}",
                                source=source, hint="use a longer movie, or a single-frame model (WCID, N2V)")
    patch_size, batch_size = positive_int("patch_size", patch_size), positive_int("batch_size", batch_size)
    if patch_size > min(array.shape[1:]):
        raise DataShapeError(f"frames of {array.shape[1]} x {array.shape[2]} px are smaller than patch_size={patch_size}",
                             source=source, hint="use a smaller patch_size")
    _warn_if_interpolated(template, source)
    dose = _choose_dose(dose, template, array, source)  # as temnb.denoise scales the same movie
    data = torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32)) / dose
    g, half = _as_generator(generator), window // 2

    def batches():
        t_count, h, w = data.shape
        while True:
            ts = torch.randint(half, t_count - half, (batch_size,), generator=g)
            ys = torch.randint(0, h - patch_size + 1, (batch_size,), generator=g)
            xs = torch.randint(0, w - patch_size + 1, (batch_size,), generator=g)
            crops = torch.stack([data[t - half: t + half + 1, y: y + patch_size, x: x + patch_size]
                                 for t, y, x in zip(ts.tolist(), ys.tolist(), xs.tolist())])
            if augment:
                k, flip = torch.randint(0, 4, (2,), generator=g).tolist()
                crops = torch.rot90(crops, k, (2, 3))
                crops = crops.flip(3) if flip % 2 else crops
            yield crops, crops[:, half: half + 1].clone()

    return batches()


def fit_self_supervised(model, movie, *, steps: int = 500, batch_size: int = 8, patch_size: int = 64,
                        lr: float = 1e-3, kind: str = "mse", dose: float | None = None, seed: int = 0,
                        device="auto", threads="auto", progress: bool = True, callback=None) -> list[float]:
    """Train *model* (UDVD, WCVD, WCID or N2V) on the noisy movie itself with Adam; returns the loss
    of every step.  N2V batches are masked with :func:`n2v_mask` and scored on masked pixels only;
    the blind networks are scored on every pixel.  ``callback(step, loss)`` is called each step.
    The model is trained in place and left in eval mode on *device*.  Its initial weights are the
    caller's (:func:`temnb.nets.registry.build_model` seeds them); the batches are seeded by *seed*,
    so the same call on the same model gives the same losses.  *threads*: CPU threads
    (:func:`temnb.core.device.choose_threads`)."""
    from ..core.device import torch_threads

    with torch_threads(threads):
        return _fit(model, movie, steps=steps, batch_size=batch_size, patch_size=patch_size, lr=lr, kind=kind,
                    dose=dose, seed=seed, device=device, progress=progress, callback=callback)


def _fit(model, movie, *, steps, batch_size, patch_size, lr, kind, dose, seed, device, progress, callback):
    from tqdm.auto import tqdm

    from ..core.device import choose_device

    steps = positive_int("steps", steps)
    if isinstance(patch_size, int) and patch_size % model.size_multiple:
        raise ParameterError(f"patch_size = {patch_size} must be a multiple of {model.size_multiple} for this model")
    warn_if_patch_below_receptive_field(model, patch_size)
    if kind == "poisson":   # the Poisson likelihood is wrong for detector units: refuse, as estimate_dose does
        from ..core.errors import NotCountsError
        from ..io.counts import require_counts

        try:
            require_counts(movie, what="self-supervised training with kind='poisson'")
        except NotCountsError as exc:
            raise NotCountsError(exc.problem, source=exc.source,
                                 hint=f"{exc.hint}; or train with kind='mse', which assumes no noise model") from None
    torch_device = choose_device(device)
    batches = self_supervised_batches(movie, model.temporal_window, patch_size, batch_size, seed, dose=dose)
    generator = _as_generator(seed + 1)
    model.to(torch_device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in tqdm(range(steps), disable=not progress, desc=f"training {model.config.architecture}"):
        inputs, targets = next(batches)
        mask = None
        if getattr(model.config, "architecture", None) == "N2V":  # blind only through masking
            inputs, mask = n2v_mask(inputs, model.config.mask_fraction, generator)
            mask = mask.to(torch_device)
        output = model(inputs.to(torch_device))
        loss = blind_spot_loss(output, targets.to(torch_device), kind, mask=mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if callback is not None:
            callback(step, losses[-1])
    model.eval()
    return losses


def warn_if_patch_below_receptive_field(model, patch_size) -> bool:
    """Warn (TemnbWarning) when training patches are smaller than the network's receptive field:
    then every output pixel sees a patch border while training, the network learns to use the
    borders, and on whole frames, where most pixels see none, its output drifts.  On the sample a
    3-scale UDVD-compact (95 px) trained on 48 px patches scored 14.6 dB with its mean 16 % high;
    on 96 px patches, 26.8 dB and the right mean.  Returns whether it warned."""
    field = int(getattr(model, "receptive_field", 0) or 0)
    if isinstance(patch_size, int) and 0 < patch_size < field:
        name = getattr(getattr(model, "config", None), "label", None) or type(model).__name__
        warnings.warn(f"training patches of {patch_size} px are smaller than the receptive field of {name} "
                      f"({field} px): it will learn the patch borders and its output on whole frames drifts "
                      f"(on the sample movie: -12 dB, mean +16 %); use patch_size >= {field} "
                      "(fewer patches per batch keep the cost)", TemnbWarning, stacklevel=3)
        return True
    return False


# --------------------------------------------------------------------------- training
@dataclass
class FitResult:
    """A trained self-supervised network: ``model`` (eval mode), the ``losses`` of every step,
    the training wall time ``seconds`` and the ``frames`` and frame ``shape`` it was trained on."""

    model: object
    losses: np.ndarray
    seconds: float
    frames: int
    shape: tuple

    @property
    def final_loss(self) -> float:
        """Mean loss over the last 10 % of the steps (a single step's loss is noisy)."""
        tail = max(1, len(self.losses) // 10)
        return float(np.mean(self.losses[-tail:]))


def build_and_fit(config, movie, *, steps: int, batch_size: int = 4, patch_size: int = 48, lr: float = 3e-3,
        kind: str = "mse", seed: int = 0, device="auto", progress: bool = False) -> FitResult:
    """Build the network of *config* (UDVDConfig, WCVDConfig, WCIDConfig or N2VConfig) with its
    initial weights seeded by *seed*, train it on the noisy *movie* (T, H, W counts, array or signal)
    for *steps* Adam steps of *batch_size* random *patch_size* px crops, and return a :class:`FitResult`."""
    from .registry import build_model

    array, _ = unwrap(movie, name="the movie")
    if array.ndim != 3:
        raise DataShapeError(f"needs a movie (frames, height, width), got shape {array.shape}")
    model = build_model(config, seed=seed)
    start = time.perf_counter()
    losses = fit_self_supervised(model, movie, steps=steps, batch_size=batch_size, patch_size=patch_size,
                                 lr=lr, kind=kind, seed=seed, device=device, progress=progress)
    return FitResult(model, np.asarray(losses), time.perf_counter() - start, array.shape[0], array.shape[1:])
