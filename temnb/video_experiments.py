"""Small experiment helpers for the self-supervised video notebooks (07 UDVD, 08 WCVD).

The notebooks narrate; the few steps that would otherwise be repeated in cells live here:

* :func:`fit` -- build a :mod:`temnb.video_models` network from its config, train it on a noisy movie
  with :func:`temnb.self_supervised.fit_self_supervised`, and time it (:class:`VideoFit`).
* :func:`blind_spot_map` -- which input pixels one output pixel depends on (autograd), to *see* the
  blind spot; :func:`centre_weight` -- the largest centre weight of a WCVD/WCID first layer (must be 0).
* :func:`vacuum_rows`, :func:`region_std` -- where the vacuum of a simulated movie is, and how much a
  denoised movie fluctuates there (faint fringes a network invents in empty space).
* :func:`correcting_shifts`, :func:`drift_error` -- compare an estimated :class:`temnb.align.Drift`
  with the drift a simulation applied (``metadata.temnb.simulation_drift``).
* :func:`gaussian_reach` -- how far in time a 3-D Gaussian reads, hence the uPSNR reference gap;
  the scores themselves (PSNR and the truth-free uPSNR on the same frames) come from
  :func:`temnb.evaluation.compare_unsupervised`.

torch is imported inside the functions that need it, so importing this module is light.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import metadata as md
from ._signals import unwrap
from .errors import DataShapeError, ParameterError

__all__ = ["VideoFit", "fit", "blind_spot_map", "centre_weight", "vacuum_rows", "region_std",
           "contrast_kept", "correcting_shifts", "DriftError", "drift_error", "gaussian_reach"]


# --------------------------------------------------------------------------- training
@dataclass
class VideoFit:
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


def fit(config, movie, *, steps: int, batch_size: int = 4, patch_size: int = 48, lr: float = 3e-3,
        kind: str = "mse", seed: int = 0, device="auto", progress: bool = False) -> VideoFit:
    """Build the network of *config* (UDVDConfig, WCVDConfig, WCIDConfig or N2VConfig) with its
    initial weights seeded by *seed*, train it on the noisy *movie* (T, H, W counts, array or signal)
    for *steps* Adam steps of *batch_size* random *patch_size* px crops, and return a :class:`VideoFit`."""
    import torch

    from . import models, video_models  # noqa: F401  (importing video_models registers the networks)
    from .self_supervised import fit_self_supervised

    array, _ = unwrap(movie, name="the movie")
    if array.ndim != 3:
        raise DataShapeError(f"needs a movie (frames, height, width), got shape {array.shape}")
    torch.manual_seed(seed)
    model = models.build_model(config)
    start = time.perf_counter()
    losses = fit_self_supervised(model, movie, steps=steps, batch_size=batch_size, patch_size=patch_size,
                                 lr=lr, kind=kind, seed=seed, device=device, progress=progress)
    return VideoFit(model, np.asarray(losses), time.perf_counter() - start, array.shape[0], array.shape[1:])


# --------------------------------------------------------------------------- blind spots
def blind_spot_map(model, size: int = 32, seed: int = 0) -> np.ndarray:
    """``|d output(centre pixel) / d input|`` of *model* for a random positive input window,
    shape (temporal_window, size, size), scaled to a maximum of 1.

    A blind-spot network has exactly 0 at the centre pixel of the centre frame (and, with
    ``blind_region=3``, at its 8 neighbours).  *size* is rounded up to the model's size multiple."""
    import torch

    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ParameterError(f"size = {size!r}; it must be a whole number of pixels >= 8")
    m = int(model.size_multiple)
    size = max(-(-size // m) * m, int(getattr(model, "_min_size", 1)))
    param = next(model.parameters())
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, model.temporal_window, size, size, generator=g).to(param.device).requires_grad_(True)
    was_training = model.training
    model.eval()  # batch norm (N2V) in eval mode: one image must not be normalised by its own statistics
    try:
        out = model(x)
        out[0, 0, size // 2, size // 2].backward()
    finally:
        model.train(was_training)
    grad = x.grad[0].abs().cpu().numpy()
    return grad / grad.max() if grad.max() > 0 else grad


def centre_weight(model) -> float:
    """Largest |weight| at the blind centre of the first (blind) layer of a WCVD/WCID network, read
    from the stored parameters (not the masked copy used in forward): 0.0 when the blind spot holds."""
    branches = getattr(model, "branches", None)
    if branches is None:
        raise ParameterError(f"{type(model).__name__} is not a weight-centric network (WCVD or WCID)")
    largest = 0.0
    for branch in branches:
        blind = branch[0]
        hidden = (blind.mask == 0)  # the centre pixel (or 3x3) of the centre frame
        largest = max(largest, float(blind.weight.detach()[:, 0][:, hidden].abs().max()))
    return largest


# --------------------------------------------------------------------------- vacuum
def vacuum_rows(signal, margin: int = 10) -> tuple[int, int] | None:
    """Rows (start, stop) of *signal* that are vacuum in every frame of a simulated movie, from
    ``metadata.temnb.simulation.vacuum_rows`` and the signal's y-axis offset (so a crop made with
    :func:`temnb.datasets.crop_movie` is handled); *margin* rows next to the specimen are left out
    (its Fresnel fringes are real).  None when the movie says nothing about vacuum."""
    sim = md.get(signal, "simulation") if hasattr(signal, "metadata") else None
    try:
        rows = sim["vacuum_rows"]  # a dict or hyperspy's DictionaryTreeBrowser
    except (KeyError, TypeError, AttributeError):
        rows = None
    if rows is None or len(rows) != 2:
        return None
    y_axis = signal.axes_manager.signal_axes[1]
    first = int(round(y_axis.offset / y_axis.scale))  # the crop's first row in the simulated frame
    stop = min(int(rows[1]) - margin, first + y_axis.size) - first
    start = max(int(rows[0]) - first, 0)
    return (start, stop) if stop - start >= 4 else None


def region_std(data, rows=None, cols=None) -> float:
    """Mean over frames of the standard deviation inside ``[rows[0]:rows[1], cols[0]:cols[1]]``
    of a frame or movie (array or signal), in the data's units.  Flat vacuum gives ~0 for a clean
    movie; a denoiser that invents fringes there gives more."""
    arr, _ = unwrap(data, name="the data")
    arr = arr[None] if arr.ndim == 2 else arr
    r = slice(*rows) if rows is not None else slice(None)
    c = slice(*cols) if cols is not None else slice(None)
    region = arr[:, r, c].astype(np.float64)
    if region.size == 0 or region.shape[1] < 2 or region.shape[2] < 2:
        raise DataShapeError(f"the region rows={rows}, cols={cols} of frames {arr.shape[1:]} is empty")
    return float(np.mean(region.std(axis=(1, 2))))


def contrast_kept(estimate, clean, rows=None, cols=None) -> float:
    """How much of the clean image's contrast an estimate reproduces inside a region: the regression
    slope ``cov(estimate, clean) / var(clean)`` per frame, averaged over frames.  1: all of it;
    0: none (e.g. a low-pass that removed a lattice).  Noise left in the estimate is uncorrelated
    with the clean image and does not bias it; a lattice shifted by half a period gives < 0."""
    a, _ = unwrap(estimate, name="the estimate")
    b, _ = unwrap(clean, name="the clean data")
    if a.shape != b.shape:
        raise DataShapeError(f"the estimate has shape {a.shape}, the clean data {b.shape}")
    a, b = (x[None] if x.ndim == 2 else x for x in (a, b))
    r = slice(*rows) if rows is not None else slice(None)
    c = slice(*cols) if cols is not None else slice(None)
    a, b = (x[:, r, c].reshape(x.shape[0], -1).astype(np.float64) for x in (a, b))
    b = b - b.mean(axis=1, keepdims=True)
    var = np.mean(b**2, axis=1)
    if a.shape[1] < 4 or not np.all(var > 0):
        raise DataShapeError(f"the region rows={rows}, cols={cols} is empty or flat in the clean data")
    return float(np.mean(np.mean((a - a.mean(axis=1, keepdims=True)) * b, axis=1) / var))


# --------------------------------------------------------------------------- drift
def correcting_shifts(true_drift) -> np.ndarray:
    """The shifts (T, 2) that undo a simulated specimen drift (T, 2) (down, right), centred on the
    average position -- the convention of :func:`temnb.align.estimate_drift` (``reference='mean'``)."""
    d = np.asarray(true_drift, dtype=float)
    if d.ndim != 2 or d.shape[1] != 2:
        raise DataShapeError(f"the drift must have shape (frames, 2), got {d.shape}")
    return -(d - d.mean(axis=0))


@dataclass
class DriftError:
    """Distance in pixels between estimated and true correcting shifts: ``mean_px``, ``max_px``,
    ``rms_px`` over frames, ``per_frame`` (T,), and ``drift_rms_px``: the RMS of the true shifts
    themselves (the error if nothing were corrected)."""

    mean_px: float
    max_px: float
    rms_px: float
    drift_rms_px: float
    per_frame: np.ndarray


def drift_error(drift, true_drift) -> DriftError:
    """Compare a :class:`temnb.align.Drift` (or (T, 2) shifts) with the simulated specimen drift
    (T, 2); both are centred first, as the mean reference fixes the average position only."""
    est = np.asarray(getattr(drift, "shifts_px", drift), dtype=float)
    want = correcting_shifts(true_drift)
    if est.shape != want.shape:
        raise DataShapeError(f"the estimated drift has shape {est.shape}, the true drift {want.shape}",
                             hint="slice the true drift to the frames that were registered")
    err = np.hypot(*(est - est.mean(axis=0) - want).T)
    return DriftError(float(err.mean()), float(err.max()), float(np.sqrt(np.mean(err**2))),
                      float(np.sqrt(np.mean(np.sum(want**2, axis=1)))), err)


# --------------------------------------------------------------------------- scores
def gaussian_reach(sigma_time: float, truncate: float = 4.0) -> int:
    """How many frames on each side a temporal Gaussian of *sigma_time* frames reads
    (scipy.ndimage truncates at ``truncate`` sigma)."""
    return int(truncate * float(sigma_time) + 0.5)
