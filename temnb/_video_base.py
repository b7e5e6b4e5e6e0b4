"""What the self-supervised video networks share: config validation, the receptive-field hooks,
He initialisation and the input check.  Private: the models live in :mod:`temnb.video_models`
(UDVD, N2V) and :mod:`temnb.blind_kernels` (WCVD, WCID)."""
from __future__ import annotations

import torch
from torch import nn

from . import models
from .errors import DataShapeError, ParameterError


# The supervised models' validators, under the short names the video configs use.
_int, _flag = models._check_int, models._check_bool


def _blind(cfg):
    if cfg.blind_region not in (1, 3) or isinstance(cfg.blind_region, bool):
        raise ParameterError(
            f"{type(cfg).__name__}.blind_region = {cfg.blind_region!r}; it must be 1 (the pixel) or 3 "
            "(the pixel and its 8 neighbours)", hint="use 3 for detectors whose neighbouring pixels are correlated")


class _VideoConfig(models._ConfigMixin):
    """Adds the receptive-field hooks that temnb.models.receptive_field looks for."""

    def receptive_field(self) -> int:
        from .video_models import receptive_field

        return receptive_field(self)

    def receptive_field_bounds(self, position: int = 0) -> tuple[int, int]:
        half = self.receptive_field() // 2
        return -half, half


def _init(module):
    # He initialisation for LeakyReLU(0.1) keeps the signal's scale through the layers.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)) or getattr(m, "he_init", False):
            nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


def _check_input(model, x):
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != model.temporal_window:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise DataShapeError(
            f"{model.config.architecture} needs a tensor (N, {model.temporal_window}, H, W), got {shape}",
            hint=f"pass windows of {model.temporal_window} frame(s); temnb.inference.denoise does this")
    h, w = x.shape[-2:]
    m, least = model.size_multiple, getattr(model, "_min_size", 1)
    if h % m or w % m or min(h, w) < least:
        raise DataShapeError(f"{model.config.architecture} needs H and W multiples of {m} and at least "
                             f"{least} px, got {h} x {w}", hint="pad or crop the frames")
