"""Weight-centric blind kernels: WCVD (3 frames) and WCID (single frames).

A bias-free first convolution (3 frames x Ks x Ks, or Ks x Ks) whose centre weight is zero and stays
zero -- zeroed at init, its gradient masked, masked again in forward -- then 1x1 layers only, so an
output pixel never sees its own input pixel (WCVD does see the same pixel in the neighbouring
frames).  An ensemble over Ks, mixed with learned softmax weights; circular spatial padding, valid in
time; an optional FFT low-pass at inference (:func:`fft_lowpass`).  Inference without gradients runs
a faster, equivalent path (:meth:`_WCNet._forward_banded`).  The classes are re-exported and
registered by :mod:`temnb.video_models`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._video_base import _VideoConfig, _blind, _check_input, _flag, _init, _int
from .errors import DataShapeError, ParameterError

__all__ = ["WCVDConfig", "WCIDConfig", "WCVD", "WCID", "fft_lowpass"]


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



class _BlindConv(nn.Module):
    """Bias-free first convolution with circular spatial padding whose centre weight (centre frame,
    centre pixel, or its 3x3) is zero: zeroed at init, its gradient masked by a hook, and -- so that
    weights loaded from elsewhere cannot break the blind spot -- masked again in forward."""

    he_init = True  # temnb._video_base._init re-initialises its weight

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
        self.receptive_field = self._min_size = max(config.kernel_sizes)
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
