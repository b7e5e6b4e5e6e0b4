"""What a network looks at, measured with autograd: the receptive field it actually uses, its
effective radius, the blind spot of a self-supervised network and the centre weight of a blind kernel."""
from __future__ import annotations

import numpy as np

from ..core.errors import DataShapeError, ParameterError


def receptive_field_map(model, image=None, *, size: int = 129, device="cpu") -> np.ndarray:
    """|d output(centre) / d input| (normalised to max 1) at *image* (a 2-D array, e.g. a noisy
    frame divided by its dose) or, without one, at a *size* x *size* input of ones.

    The pixels a trained network really uses for one output pixel; compare with its
    theoretical receptive field (``model.receptive_field``).  For a bias-free network the map
    depends on the input (it is one row of the Jacobian there).
    """
    import torch

    window = int(getattr(model, "temporal_window", 1))
    channels = int(getattr(model.config, "in_channels", 1)) * window
    if image is None:
        x = torch.ones(1, channels, size, size, device=device)
    else:
        arr = np.asarray(image, dtype=np.float32)
        if arr.ndim != 2:
            raise DataShapeError(f"receptive_field_map needs one 2-D frame, got shape {arr.shape}")
        size = arr.shape[0]
        x = torch.from_numpy(arr)[None, None].repeat(1, channels, 1, 1).to(device)
    x.requires_grad_(True)
    h, w = x.shape[-2:]
    was_training = model.training
    model.eval()
    try:
        out = model(x)
        out[0, 0, h // 2, w // 2].backward()
    finally:
        model.train(was_training)
    grad = x.grad.detach().abs().sum(dim=1)[0].cpu().numpy()
    return grad / grad.max() if grad.max() > 0 else grad


def effective_radius(field: np.ndarray, fraction: float = 0.95) -> float:
    """Radius (px) of the disc around the centre that holds *fraction* of a receptive-field map."""
    h, w = field.shape
    yy, xx = np.indices(field.shape)
    r = np.hypot(yy - h // 2, xx - w // 2).ravel()
    order = np.argsort(r)
    cumulative = np.cumsum(field.ravel()[order])
    if cumulative[-1] <= 0:
        return 0.0
    return float(r[order][np.searchsorted(cumulative, fraction * cumulative[-1])])


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
