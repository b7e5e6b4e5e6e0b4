"""Self-supervised blind-spot networks, trained on the noisy movie itself (no clean data needed).

A blind-spot network predicts each pixel from its neighbours only, never from the pixel itself.
Shot noise is independent from pixel to pixel, so the best blind predictor of the *noisy* centre
frame is the clean signal: the noisy movie is both the input and the target (Noise2Self/Noise2Void).

* :class:`UDVD` (Sheth et al., "Unsupervised Deep Video Denoising", ICCV 2021): the window of
  frames goes, in 4 rotations, through one shared network of "shifted" 3x3
  convolutions that only look at their own row and the rows above (Laine et al. 2019); a final
  downward shift by ``blind_region // 2 + 1`` rows hides the pixel itself (and, for
  ``blind_region=3``, its 8 neighbours, for detectors whose neighbouring pixels are correlated).
  The branches are rotated back, concatenated and mixed by 1x1 convolutions.  By default all frames
  enter one blind U-Net as channels (3 scales, 32 channels, 108k parameters, receptive field 95 px);
  ``two_stage=True`` is UDVD's own cascade (triplets of frames, then their combination).
* :class:`WCVD` / :class:`WCID` (weight-centric blind kernels): a bias-free first convolution
  (3 frames x Ks x Ks, or Ks x Ks) whose centre weight is zero and stays zero, then 1x1 layers only,
  so an output pixel never sees its own input pixel (it does see the same pixel in the neighbouring
  frames).  An ensemble over Ks, mixed with learned softmax weights; circular spatial padding.
  Defined in :mod:`temnb.blind_kernels`, re-exported here.
* :class:`N2V` (Noise2Void, Krull et al. 2019): an ordinary (not blind) U-Net; blindness comes from
  :func:`n2v_mask` at training time and the loss on masked pixels only (:func:`n2v_loss`).

Each model has ``.config``, ``.temporal_window``, ``.size_multiple`` and ``.receptive_field``, takes
(N, temporal_window, H, W) and returns the centre frame (N, 1, H, W).  Inputs are counts divided by
the dose, as in :func:`temnb.inference.denoise`.  Importing this module registers the four
architectures with :mod:`temnb.models`.  Training: :func:`fit_self_supervised` in :mod:`temnb.self_supervised`
(re-exported here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from . import models
from ._video_base import _VideoConfig, _blind, _check_input, _flag, _init, _int
from .blind_kernels import WCID, WCVD, WCIDConfig, WCVDConfig, _BlindConv, _WCConfig, fft_lowpass  # noqa: F401
from .errors import ParameterError

__all__ = [
    "UDVDConfig", "UDVD", "WCVDConfig", "WCVD", "WCIDConfig", "WCID", "N2VConfig", "N2V",
    "receptive_field", "fft_lowpass", "blind_spot_loss", "n2v_mask", "n2v_loss",
    "self_supervised_batches", "fit_self_supervised",
]


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class UDVDConfig(_VideoConfig):
    """UDVD: ``frames`` (odd) input frames; a blind U-Net of ``n_scales`` resolutions (1 = a plain stack)
    with ``blocks_per_scale`` shifted 3x3 convolutions of ``channels`` features per stage; LeakyReLU(0.1).

    ``bias=False`` (default) keeps the network bias-free, like the supervised temnb models, so it
    works at doses other than the one it was trained at.  Default receptive field: 95 px.

    ``two_stage=True`` is UDVD's own cascade: one blind U-Net, shared, reads every run of 3
    consecutive frames (frames - 2 of them), a second blind U-Net combines their features.  It
    needs frames >= 5, costs about frames - 1 times the compute of the single stage and doubles the
    receptive field (187 px with the defaults)."""

    architecture: ClassVar[str] = "UDVD"
    frames: int = 5
    channels: int = 32
    n_scales: int = 3
    blocks_per_scale: int = 2
    blind_region: int = 1
    bias: bool = False
    two_stage: bool = False

    def __post_init__(self):
        _int(self, "frames", 1, 15, odd=True)
        _int(self, "channels", 1, 256)
        _int(self, "n_scales", 1, 5)
        _int(self, "blocks_per_scale", 1, 8)
        _blind(self)
        _flag(self, "bias")
        _flag(self, "two_stage")
        if self.two_stage and self.frames < 5:
            raise ParameterError(f"UDVDConfig.two_stage needs frames >= 5 (runs of 3 frames, then their "
                                 f"combination), not frames = {self.frames}", hint="use two_stage=False for 3 frames")


@dataclass(frozen=True)
class N2VConfig(_VideoConfig):
    """Noise2Void: a U-Net (conv-BN-ReLU, with biases) for single frames, trained with
    ``mask_fraction`` (0.1-5 %) of the pixels of each patch replaced by a random neighbour."""

    architecture: ClassVar[str] = "N2V"
    n_scales: int = 3
    base_channels: int = 32
    blocks_per_scale: int = 2
    mask_fraction: float = 0.005

    def __post_init__(self):
        self.unet_config()  # validates the U-Net settings
        f = self.mask_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.001 <= f <= 0.05:
            raise ParameterError(f"N2VConfig.mask_fraction = {f!r}; it must be 0.001..0.05",
                                 hint="Noise2Void masks about 0.2-2 % of the pixels of a patch")

    def unet_config(self) -> models.UNetConfig:
        return models.UNetConfig(n_scales=self.n_scales, base_channels=self.base_channels,
                                 blocks_per_scale=self.blocks_per_scale, bias_free=False)


def receptive_field(config) -> int:
    """Side of the square of input pixels an output pixel can depend on (exact, maximum over positions)."""
    if isinstance(config, UDVDConfig):
        # Rows above the output pixel, before the final shift, for the one upward-looking branch:
        # each shifted conv at scale s reaches 2 rows of that scale up (2 * 2**s px), each
        # shift-pool / nearest-upsample pair 2 rows of the finer scale (at odd rows).
        n, b = config.n_scales, config.blocks_per_scale
        up = sum((b if s == n - 1 else 2 * b) * 2 * 2**s for s in range(n)) + sum(2 * 2**s for s in range(n - 1))
        up *= 2 if config.two_stage else 1  # two upward-only U-Nets in a row: their reaches add
        return 2 * (up + config.blind_region // 2 + 1) + 1
    if isinstance(config, _WCConfig):
        return max(config.kernel_sizes)
    if isinstance(config, N2VConfig):
        return models.receptive_field(config.unet_config())
    raise ParameterError(f"{config!r} is not a video model config")


# --------------------------------------------------------------------------- UDVD
def _shift_down(x, n):
    """Move the image down by *n* rows (zeros enter at the top): row y then holds row y - n.
    (A negative pad crops the bottom in the same contiguous copy.)"""
    return F.pad(x, (0, 0, n, -n))


class _ShiftConv(nn.Conv2d):
    """3x3 convolution that sees its own row and the 2 rows above only (zero padding: reflection
    at the top border would bring in rows from below and break the blind spot).  Written as 2 zero
    rows on top and none below, which is a shift down by one row of an ordinarily padded 3x3
    convolution done in one contiguous copy."""

    def __init__(self, c_in, c_out, bias):
        super().__init__(c_in, c_out, 3, padding=0, bias=bias)

    def forward(self, x):
        return super().forward(F.pad(x, (1, 1, 2, 0)))


def _shift_stage(c_in, c_out, n, bias):
    layers = []
    for i in range(n):
        layers += [_ShiftConv(c_in if i == 0 else c_out, c_out, bias), nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


class _UpwardUNet(nn.Module):
    """A U-Net whose output at row y depends on input rows <= y only: shifted convs, a 1-row shift
    before each 2x2 max-pool, nearest-neighbour upsampling (bilinear would look one row down)."""

    def __init__(self, c_in, c, n_scales, blocks, bias):
        super().__init__()
        self.encoders = nn.ModuleList(_shift_stage(c_in if s == 0 else c, c, blocks, bias) for s in range(n_scales))
        self.decoders = nn.ModuleList(_shift_stage(2 * c, c, blocks, bias) for _ in range(n_scales - 1))

    def forward(self, x):
        skips = []
        for s, encoder in enumerate(self.encoders):
            if s:
                x = F.max_pool2d(_shift_down(x, 1), 2)
            x = encoder(x)
            skips.append(x)
        for s in range(len(self.decoders) - 1, -1, -1):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = self.decoders[s](torch.cat([x, skips[s]], 1))
        return x


class _Cascade(nn.Module):
    """UDVD's two stages: *first* (shared) on each run of 3 frames, *second* on their features.
    Both only look upwards, so the whole does too and the final shift still hides the pixel."""

    def __init__(self, first, second):
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x):
        runs = [self.first(x[:, t: t + 3]) for t in range(x.shape[1] - 2)]
        return self.second(torch.cat(runs, 1))


class UDVD(nn.Module):
    """Blind-spot video denoiser (UDVD): (N, frames, H, W) -> centre frame (N, 1, H, W).
    H and W must be multiples of ``size_multiple = 2**(n_scales - 1)``."""

    def __init__(self, config: UDVDConfig | None = None):
        super().__init__()
        config = UDVDConfig() if config is None else config
        if not isinstance(config, UDVDConfig):
            raise ParameterError(f"UDVD needs a UDVDConfig, not {type(config).__name__}")
        self.config, c = config, config.channels
        self.temporal_window = config.frames
        self.size_multiple = 2 ** (config.n_scales - 1)
        self.receptive_field = receptive_field(config)
        if config.two_stage:
            self.branch = _Cascade(_UpwardUNet(3, c, config.n_scales, config.blocks_per_scale, config.bias), _UpwardUNet(
                (config.frames - 2) * c, c, config.n_scales, config.blocks_per_scale, config.bias))
        else:
            self.branch = _UpwardUNet(config.frames, c, config.n_scales, config.blocks_per_scale, config.bias)
        self.head = nn.Sequential(nn.Conv2d(4 * c, c, 1, bias=config.bias), nn.LeakyReLU(0.1),
                                  nn.Conv2d(c, c, 1, bias=config.bias), nn.LeakyReLU(0.1),
                                  nn.Conv2d(c, 1, 1, bias=config.bias))
        _init(self)

    def forward(self, x):
        _check_input(self, x)
        rotated = [torch.rot90(x, k, (2, 3)) for k in range(4)]
        if x.shape[-1] == x.shape[-2]:  # one batched pass is faster than four
            looks = self.branch(torch.cat(rotated, 0)).chunk(4, 0)
        else:
            looks = [self.branch(r) for r in rotated]
        shift = self.config.blind_region // 2 + 1  # now each branch sees rows <= y - shift only
        looks = [torch.rot90(_shift_down(y, shift), -k, (2, 3)) for k, y in enumerate(looks)]
        return self.head(torch.cat(looks, 1))


# --------------------------------------------------------------------------- N2V
class N2V(nn.Module):
    """Noise2Void network: a :class:`temnb.models.UNet` with biases, (N, 1, H, W) -> (N, 1, H, W).
    Not blind by itself: train it with :func:`n2v_mask` and :func:`n2v_loss` (fit_self_supervised does)."""

    def __init__(self, config: N2VConfig | None = None):
        super().__init__()
        config = N2VConfig() if config is None else config
        if not isinstance(config, N2VConfig):
            raise ParameterError(f"N2V needs an N2VConfig, not {type(config).__name__}")
        self.config = config
        self.net = models.UNet(config.unet_config())
        self.temporal_window = 1
        self.size_multiple = self.net.size_multiple
        self.receptive_field = self.net.receptive_field

    def forward(self, x):
        _check_input(self, x)
        return self.net(x)


for _config, _module in ((UDVDConfig, UDVD), (WCVDConfig, WCVD), (WCIDConfig, WCID), (N2VConfig, N2V)):
    models.register(_config, _module)

# At the end: self_supervised needs the model classes above.
from .self_supervised import (  # noqa: E402
    blind_spot_loss, fit_self_supervised, n2v_loss, n2v_mask, self_supervised_batches,
)
