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
  Inference without gradients runs a faster, equivalent banded path (:meth:`_WCNet._forward_banded`).
* :class:`N2V` (Noise2Void, Krull et al. 2019): an ordinary (not blind) U-Net; blindness comes from
  :func:`n2v_mask` at training time and the loss on masked pixels only (:func:`n2v_loss`).

Each model has ``.config``, ``.temporal_window``, ``.size_multiple`` and ``.receptive_field``, takes
(N, temporal_window, H, W) and returns the centre frame (N, 1, H, W).  Inputs are counts divided by
the dose, as in :func:`temnb.nets.inference.denoise`.  Their configs are in :mod:`temnb.nets.config`;
training: :func:`temnb.nets.self_supervised.fit_self_supervised`.
"""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import DataShapeError, ParameterError
from .config import N2VConfig, UDVDConfig, WCIDConfig, WCVDConfig, receptive_field
from .supervised_models import UNet


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
            hint=f"pass windows of {model.temporal_window} frame(s); temnb.nets.inference.denoise does this")
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


class _ReplicateShiftConv(nn.Conv2d):
    """The reference UDVD's blind convolution: replicate padding left and right, 2 zero rows on top
    (its zero row, then that row replicated) and none below, so it too sees its own row and the 2
    rows above only."""

    def __init__(self, c_in, c_out, bias):
        super().__init__(c_in, c_out, 3, padding=0, bias=bias)

    def forward(self, x):
        return super().forward(F.pad(F.pad(x, (1, 1, 0, 0), mode="replicate"), (0, 0, 2, 0)))


def _reference_stage(widths, bias):
    layers = []
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        layers += [_ReplicateShiftConv(c_in, c_out, bias), nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


class _ReferenceUpwardUNet(nn.Module):
    """The blind U-Net of the published UDVD: 3 levels; encoders of 3 convolutions (c, c, then
    2c -> 2c -> c in the bottleneck), decoders of 4 convolutions of 2c; the first level's pooled
    features are the only skip, and the block's own input is fed to its last decoder."""

    def __init__(self, c_in, c_out, c, bias):
        super().__init__()
        self.enc1 = _reference_stage([c_in, c, c, c], bias)
        self.enc2 = _reference_stage([c, c, c, c], bias)
        self.enc3 = _reference_stage([c, 2 * c, 2 * c, c], bias)
        self.dec2 = _reference_stage([2 * c, 2 * c, 2 * c, 2 * c, 2 * c], bias)
        self.dec1 = _reference_stage([2 * c + c_in, 2 * c, 2 * c, 2 * c, c_out], bias)

    def forward(self, x):
        x1 = F.max_pool2d(_shift_down(self.enc1(x), 1), 2)
        x2 = F.max_pool2d(_shift_down(self.enc2(x1), 1), 2)
        y = F.interpolate(self.enc3(x2), scale_factor=2, mode="nearest")
        y = F.interpolate(self.dec2(torch.cat([y, x1], 1)), scale_factor=2, mode="nearest")
        return self.dec1(torch.cat([y, x], 1))


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
        if config.variant == "reference":  # 32 features per triplet, 96 = 2c from the second stage
            second = 2 * c
            self.branch = _Cascade(_ReferenceUpwardUNet(3, 32, c, config.bias),
                                   _ReferenceUpwardUNet((config.frames - 2) * 32, second, c, config.bias))
            self.head = nn.Sequential(nn.Conv2d(4 * second, 4 * second, 1, bias=config.bias), nn.LeakyReLU(0.1),
                                      nn.Conv2d(4 * second, second, 1, bias=config.bias), nn.LeakyReLU(0.1),
                                      nn.Conv2d(second, 1, 1, bias=config.bias))
        elif config.two_stage:
            self.branch = _Cascade(_UpwardUNet(3, c, config.n_scales, config.blocks_per_scale, config.bias), _UpwardUNet(
                (config.frames - 2) * c, c, config.n_scales, config.blocks_per_scale, config.bias))
        else:
            self.branch = _UpwardUNet(config.frames, c, config.n_scales, config.blocks_per_scale, config.bias)
        if config.variant == "compact":
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
    """Noise2Void network: a :class:`temnb.nets.supervised_models.UNet` with biases, (N, 1, H, W) -> (N, 1, H, W).
    Not blind by itself: train it with :func:`n2v_mask` and :func:`n2v_loss` (fit_self_supervised does)."""

    def __init__(self, config: N2VConfig | None = None):
        super().__init__()
        config = N2VConfig() if config is None else config
        if not isinstance(config, N2VConfig):
            raise ParameterError(f"N2V needs an N2VConfig, not {type(config).__name__}")
        self.config = config
        self.net = UNet(config.unet_config())
        self.temporal_window = 1
        self.size_multiple = self.net.size_multiple
        self.receptive_field = self.net.receptive_field

    def forward(self, x):
        _check_input(self, x)
        return self.net(x)


class _BlindConv(nn.Module):
    """Bias-free first convolution with circular spatial padding whose centre weight (centre frame,
    centre pixel, or its 3x3) is zero: zeroed at init, its gradient masked by a hook, and -- so that
    weights loaded from elsewhere cannot break the blind spot -- masked again in forward."""

    he_init = True  # temnb.nets.blind_spot_models._init re-initialises its weight

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
    low_memory_inference: ClassVar[bool] = True  # banded inference: temnb.denoise may run frames side by side

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
        return out  # the optional low-pass (config.lowpass_cutoff) is applied by temnb.denoise, in 1/Å


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


def fft_lowpass(x, cutoff, pixel_size_A: float = 1.0):
    """Ideal circular low-pass over the last two axes of a numpy array or torch tensor.

    Keeps the spatial frequencies |k| <= *cutoff*, in 1/Å for pixels of *pixel_size_A* Å (or in
    cycles per pixel with the default ``pixel_size_A=1``), i.e. periods of at least 1 / *cutoff*.
    Zero frequency is always kept, so the mean is unchanged.  Returns the same kind (numpy in, numpy
    out)."""
    for name, value in (("cutoff", cutoff), ("pixel_size_A", pixel_size_A)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
                math.isfinite(value) and value > 0):
            raise ParameterError(f"{name} = {value!r}; it must be a positive number",
                                 hint="the cut-off is a spatial frequency, e.g. 1.35 1/Å with pixel_size_A")
    is_numpy = not torch.is_tensor(x)
    t = torch.as_tensor(np.asarray(x, dtype=np.float64) if is_numpy else x)
    if t.ndim < 2:
        raise DataShapeError(f"fft_lowpass needs images (..., H, W), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.float()
    h, w = t.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=t.dtype, device=t.device)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=t.dtype, device=t.device)[None, :]
    keep = (fy**2 + fx**2 <= (float(cutoff) * float(pixel_size_A)) ** 2).to(t.dtype)  # cycles per pixel
    out = torch.fft.irfft2(torch.fft.rfft2(t) * keep, s=(h, w))
    return out.numpy() if is_numpy else out
