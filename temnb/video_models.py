"""Self-supervised blind-spot networks, trained on the noisy movie itself (no clean data needed).

A blind-spot network predicts each pixel from its neighbours only, never from the pixel itself.
Shot noise is independent from pixel to pixel, so the best blind predictor of the *noisy* centre
frame is the clean signal: the noisy movie is both the input and the target (Noise2Self/Noise2Void).

* :class:`UDVD` (Sheth et al., "Unsupervised Deep Video Denoising", ICCV 2021, simplified to one
  stage): the window of frames goes, in 4 rotations, through one shared network of "shifted" 3x3
  convolutions that only look at their own row and the rows above (Laine et al. 2019); a final
  downward shift by ``blind_region // 2 + 1`` rows hides the pixel itself (and, for
  ``blind_region=3``, its 8 neighbours, for detectors whose neighbouring pixels are correlated).
  The branches are rotated back, concatenated and mixed by 1x1 convolutions.  UDVD's two-stage
  cascade (triplets of frames, then their combination) is replaced by all frames entering one blind
  U-Net as channels; default: 3 scales, 32 channels, 108k parameters, receptive field 95 px.
* :class:`WCVD` / :class:`WCID` (weight-centric blind kernels): a bias-free first convolution
  (3 frames x Ks x Ks, or Ks x Ks) whose centre weight is zero and stays zero, then 1x1 layers only,
  so an output pixel never sees its own input pixel (it does see the same pixel in the neighbouring
  frames).  An ensemble over Ks, mixed with learned softmax weights; circular spatial padding.
* :class:`N2V` (Noise2Void, Krull et al. 2019): an ordinary (not blind) U-Net; blindness comes from
  :func:`n2v_mask` at training time and the loss on masked pixels only (:func:`n2v_loss`).

Each model has ``.config``, ``.temporal_window``, ``.size_multiple`` and ``.receptive_field``, takes
(N, temporal_window, H, W) and returns the centre frame (N, 1, H, W).  Inputs are counts divided by
the dose, as in :func:`temnb.inference.denoise`.  Importing this module registers the four
architectures with :mod:`temnb.models`.  Training: :func:`fit_self_supervised` in :mod:`temnb.self_supervised`
(re-exported here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import models
from .errors import DataShapeError, ParameterError

__all__ = [
    "UDVDConfig", "UDVD", "WCVDConfig", "WCVD", "WCIDConfig", "WCID", "N2VConfig", "N2V",
    "receptive_field", "fft_lowpass", "blind_spot_loss", "n2v_mask", "n2v_loss",
    "self_supervised_batches", "fit_self_supervised",
]


# --------------------------------------------------------------------------- configs
def _int(cfg, name, lo, hi, odd=False):
    value = getattr(cfg, name)
    where = f"{type(cfg).__name__}.{name}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{where} must be a whole number, not {value!r}")
    if not lo <= value <= hi:
        raise ParameterError(f"{where} = {value} is out of range; it must be {lo}..{hi}")
    if odd and value % 2 == 0:
        raise ParameterError(f"{where} = {value} must be odd, so that there is a centre")


def _flag(cfg, name):
    if not isinstance(getattr(cfg, name), bool):
        raise ParameterError(f"{type(cfg).__name__}.{name} must be True or False, not {getattr(cfg, name)!r}")


def _blind(cfg):
    if cfg.blind_region not in (1, 3) or isinstance(cfg.blind_region, bool):
        raise ParameterError(
            f"{type(cfg).__name__}.blind_region = {cfg.blind_region!r}; it must be 1 (the pixel) or 3 "
            "(the pixel and its 8 neighbours)", hint="use 3 for detectors whose neighbouring pixels are correlated")


class _VideoConfig(models._ConfigMixin):
    """Adds the receptive-field hooks that temnb.models.receptive_field looks for."""

    def receptive_field(self) -> int:
        return receptive_field(self)

    def receptive_field_bounds(self, position: int = 0) -> tuple[int, int]:
        half = receptive_field(self) // 2
        return -half, half


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
class _WCConfig(_VideoConfig):
    """Weight-centric blind net: an ensemble over ``kernel_sizes`` (odd, 3..15) of a blind first
    convolution with ``features`` outputs followed by ``depth`` hidden 1x1 layers (LeakyReLU(0.1)) and
    a 1x1 output layer with ReLU.  ``lowpass``: at inference only (eval mode), an ideal circular FFT
    low-pass of diameter min(H, W) / max(kernel_sizes) frequency pixels on the output, i.e. it keeps
    periods >= 2 * max(kernel_sizes) px -- off by default, as it blurs lattice fringes finer than that.

    Default 8 features and 1 hidden layer (2.2k multiply-adds per pixel, 12 Mpix/s on 2 CPU cores):
    on the sample movie 32 features and 2 hidden layers (15k per pixel, 4x slower) denoised no
    better (9.6 against 9.6 dB, 12.3 against 12.0 dB with the low-pass)."""

    kernel_sizes: tuple = (3, 5, 7)
    features: int = 8
    depth: int = 1
    blind_region: int = 1
    lowpass: bool = False
    bias: bool = False

    def __post_init__(self):
        ks, where = self.kernel_sizes, f"{type(self).__name__}.kernel_sizes"
        if isinstance(ks, list):
            object.__setattr__(self, "kernel_sizes", ks := tuple(ks))  # from JSON: a list
        if not isinstance(ks, tuple) or not ks or any(
                isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k % 2 == 0 or not 3 <= k <= 15
                for k in ks) or len(set(ks)) != len(ks):
            raise ParameterError(f"{where} = {ks!r}; it must be distinct odd whole numbers 3..15, e.g. (3, 5, 7)")
        _int(self, "features", 1, 256)
        _int(self, "depth", 0, 8)
        _blind(self)
        if self.blind_region == 3 and self.architecture == "WCID" and min(ks) < 5:
            raise ParameterError(f"{where} = {ks!r}: a 3x3 kernel with a 3x3 blind region sees nothing",
                                 hint="use kernel sizes of 5 or more with blind_region=3")
        _flag(self, "lowpass")
        _flag(self, "bias")


@dataclass(frozen=True)
class WCVDConfig(_WCConfig):
    """WCVD (video, 3 frames in, centre frame out); see the fields of the shared docstring below."""

    __doc__ += "\n\n" + _WCConfig.__doc__
    architecture: ClassVar[str] = "WCVD"


@dataclass(frozen=True)
class WCIDConfig(_WCConfig):
    """WCID (single frames); the 2-D sibling of WCVD."""

    __doc__ += "\n\n" + _WCConfig.__doc__
    architecture: ClassVar[str] = "WCID"


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


def _init(module):
    # He initialisation for LeakyReLU(0.1) keeps the signal's scale through the layers.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, _BlindConv)):
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
    """Blind-spot video denoiser (UDVD, single stage): (N, frames, H, W) -> centre frame (N, 1, H, W).
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


# --------------------------------------------------------------------------- WCVD / WCID
class _BlindConv(nn.Module):
    """Bias-free first convolution with circular spatial padding whose centre weight (centre frame,
    centre pixel, or its 3x3) is zero: zeroed at init, its gradient masked by a hook, and -- so that
    weights loaded from elsewhere cannot break the blind spot -- masked again in forward."""

    def __init__(self, features, ks, video, blind_region):
        super().__init__()
        shape = (features, 1, 3, ks, ks) if video else (features, 1, ks, ks)
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_normal_(self.weight, a=0.1, nonlinearity="leaky_relu")
        mask = torch.ones(shape[2:])
        c, r = ks // 2, blind_region // 2
        centre = mask[1] if video else mask
        centre[c - r: c + r + 1, c - r: c + r + 1] = 0
        self.register_buffer("mask", mask, persistent=False)
        with torch.no_grad():
            self.weight.mul_(mask)
        self.weight.register_hook(lambda grad: grad * self.mask)
        self.video, self.pad = video, ks // 2

    def forward(self, x):
        p = self.pad
        if self.video:  # valid in time, circular in space
            return F.conv3d(F.pad(x, (p, p, p, p, 0, 0), mode="circular"), self.weight * self.mask)
        return F.conv2d(F.pad(x, (p, p, p, p), mode="circular"), self.weight * self.mask)


class _WCNet(nn.Module):
    video: ClassVar[bool]
    config_cls: ClassVar[type]

    def __init__(self, config=None):
        super().__init__()
        config = self.config_cls() if config is None else config
        if not isinstance(config, self.config_cls):
            raise ParameterError(f"{type(self).__name__} needs a {self.config_cls.__name__}, "
                                 f"not {type(config).__name__}")
        self.config, f = config, config.features
        self.temporal_window = 3 if self.video else 1
        self.size_multiple = 1
        self.receptive_field = self._min_size = receptive_field(config)
        conv = nn.Conv3d if self.video else nn.Conv2d
        self.branches = nn.ModuleList()
        for ks in config.kernel_sizes:
            layers = [_BlindConv(f, ks, self.video, config.blind_region), nn.LeakyReLU(0.1)]
            for _ in range(config.depth):
                layers += [conv(f, f, 1, bias=config.bias), nn.LeakyReLU(0.1)]
            self.branches.append(nn.Sequential(*layers, conv(f, 1, 1, bias=config.bias), nn.ReLU()))
        self.mix_logits = nn.Parameter(torch.zeros(len(config.kernel_sizes)))
        _init(self)
        with torch.no_grad():
            for branch in self.branches:
                branch[0].weight.mul_(branch[0].mask)
                # LeakyReLU features are positive on average, so non-negative output weights start the
                # final ReLU switched on; one off everywhere (likely for positive counts) never trains.
                branch[-2].weight.abs_()

    def forward(self, x):
        _check_input(self, x)
        if torch.is_grad_enabled():
            out = self._forward_layers(x)
        else:  # inference: the same arithmetic, reordered to stay in the CPU cache
            out = self._forward_banded(x)
        if self.config.lowpass and not self.training:
            # Never while training: the FFT mixes all pixels and would undo the blind spot.
            out = fft_lowpass(out, min(out.shape[-2:]) / max(self.config.kernel_sizes))
        return out


    def _forward_layers(self, x):
        """The layers as built: what training (and anything needing gradients) runs through."""
        if self.video:
            x = x.unsqueeze(1)  # (N, 1, 3 frames, H, W)
        weights = torch.softmax(self.mix_logits, 0)
        out = sum(w * branch(x) for w, branch in zip(weights, self.branches))
        return out[:, :, 0] if self.video else out  # the valid temporal conv leaves the centre frame

    def _inference_plan(self):
        """Per branch: (kernel size, first weight (F, frames, Ks, Ks), hidden 1x1 (weight, bias) pairs,
        output 1x1 (weight, bias) with the branch's mixing weight folded in -- ReLU(w z) = w ReLU(z) for
        the positive softmax weights.  A Conv3d with 3 frames and valid time padding is a Conv2d with
        the 3 frames as input channels."""
        plan = []
        for mix, branch in zip(torch.softmax(self.mix_logits, 0), self.branches):
            first = branch[0]
            w_first = first.weight * first.mask
            w_first = w_first[:, 0] if self.video else w_first
            convs = [m for m in branch if isinstance(m, (nn.Conv2d, nn.Conv3d))]
            flat = [(c.weight.reshape(c.out_channels, c.in_channels, 1, 1), c.bias) for c in convs]
            w_out, b_out = flat[-1]
            plan.append((w_first.shape[-1], w_first, flat[:-1],
                         (w_out * mix, None if b_out is None else b_out * mix)))
        return plan

    def _forward_banded(self, x, band_bytes: int = 4 * 2**20):
        """Inference in bands of rows sized so that one layer's features (*band_bytes*) stay in cache:
        at 1024^2 this is 3-4x faster than whole frames on 2 CPU cores, where every layer otherwise
        streams 32-128 MB through main memory.  Equal to _forward_layers up to float rounding."""
        n, _, h, w = x.shape
        pad = max(self.config.kernel_sizes) // 2
        padded = F.pad(x, (pad, pad, pad, pad), mode="circular")
        plan = self._inference_plan()
        if x.device.type == "cpu":
            rows = int(max(8, min(h, band_bytes // (n * self.config.features * w * x.element_size()))))
        else:  # a GPU wants whole frames in few large kernels
            rows = h
        out = x.new_empty((n, 1, h, w))
        for top in range(0, h, rows):
            bottom = min(h, top + rows)
            band = padded[:, :, top: bottom + 2 * pad]
            total = None
            for ks, w_first, hidden, (w_out, b_out) in plan:
                o = pad - ks // 2
                y = F.leaky_relu_(F.conv2d(band[:, :, o: band.shape[-2] - o, o: band.shape[-1] - o], w_first), 0.1)
                for weight, bias in hidden:
                    y = F.leaky_relu_(F.conv2d(y, weight, bias), 0.1)
                y = F.relu_(F.conv2d(y, w_out, b_out))
                total = y if total is None else total.add_(y)
            out[:, :, top:bottom] = total
        return out


class WCVD(_WCNet):
    """Weight-centric blind video denoiser: (N, 3, H, W) -> centre frame (N, 1, H, W), any H, W >= max Ks."""

    video, config_cls = True, WCVDConfig


class WCID(_WCNet):
    """Weight-centric blind image denoiser: (N, 1, H, W) -> (N, 1, H, W), any H, W >= max Ks."""

    video, config_cls = False, WCIDConfig


def fft_lowpass(x, diameter_px: float):
    """Ideal circular low-pass over the last two axes of a numpy array or torch tensor.

    Keeps the spatial frequencies inside a disk of *diameter_px* frequency pixels (counted on the
    shorter side; for an N x N frame this is the disk in its N x N FFT), i.e. periods of at least
    ``2 * min(H, W) / diameter_px`` px.  Zero frequency is always kept, so the mean is unchanged.
    Returns the same kind (numpy in, numpy out)."""
    if isinstance(diameter_px, bool) or not isinstance(diameter_px, (int, float)) or not (
            math.isfinite(diameter_px) and diameter_px > 0):
        raise ParameterError(f"diameter_px = {diameter_px!r}; it must be a positive number of frequency pixels")
    is_numpy = not torch.is_tensor(x)
    t = torch.as_tensor(np.asarray(x, dtype=np.float64) if is_numpy else x)
    if t.ndim < 2:
        raise DataShapeError(f"fft_lowpass needs images (..., H, W), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.float()
    h, w = t.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=t.dtype, device=t.device)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=t.dtype, device=t.device)[None, :]
    keep = (fy**2 + fx**2 <= (diameter_px / (2 * min(h, w))) ** 2).to(t.dtype)
    out = torch.fft.irfft2(torch.fft.rfft2(t) * keep, s=(h, w))
    return out.numpy() if is_numpy else out


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
