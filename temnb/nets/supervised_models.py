"""The supervised denoisers, trained on clean simulations: a U-Net and a DnCNN, bias-free by default.

Bias-free (Mohan et al. 2020, "Robust and interpretable blind image denoising via
bias-free CNNs"): no additive constant anywhere, so in eval mode the network is
positively homogeneous, ``f(a*x) = a*f(x)`` for ``a > 0``, and locally linear,
``f(x) = J(x) @ x``.  A net trained at one dose then generalises to others once
the input is divided by the dose (what :func:`temnb.denoise` does).

Every model in temnb has ``.config``, ``.temporal_window`` (frames per input),
``.size_multiple`` (H and W must be multiples of it) and ``.receptive_field``
(pixels); the configs are in :mod:`temnb.nets.config`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ParameterError
from .config import DnCNNConfig, UNetConfig, receptive_field


# --------------------------------------------------------------------------- layers
class BiasFreeBatchNorm2d(nn.Module):
    """Batch norm without mean subtraction or bias: ``y = gain * x / sd``.

    Training: ``sd`` is the per-channel standard deviation of the batch (and a
    running average is kept); eval: the running ``sd``.  With no additive term
    the layer is linear in eval mode, which keeps the whole network bias-free.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.register_buffer("running_sd", torch.ones(1, num_features, 1, 1))

    def forward(self, x):
        if self.training:
            sd = torch.sqrt(x.float().var(dim=(0, 2, 3), keepdim=True, unbiased=False) + self.eps)
            with torch.no_grad():
                self.running_sd.mul_(1 - self.momentum).add_(self.momentum * sd.detach())
            sd = sd.to(x.dtype)
        else:
            sd = self.running_sd.to(x.dtype)
        return x / sd * self.weight.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


def _conv_block(c_in: int, c_out: int, bias_free: bool, padding_mode: str = "zeros") -> nn.Sequential:
    norm = BiasFreeBatchNorm2d(c_out) if bias_free else nn.BatchNorm2d(c_out)
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=not bias_free, padding_mode=padding_mode)
    return nn.Sequential(conv, norm, nn.ReLU(inplace=True))


def _stage(widths, bias_free: bool, padding_mode: str = "zeros") -> nn.Sequential:
    """conv-BN-ReLU blocks from widths[0] through each of widths[1:]."""
    return nn.Sequential(*[_conv_block(c_in, c_out, bias_free, padding_mode)
                           for c_in, c_out in zip(widths[:-1], widths[1:])])


def _kaiming_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- networks
class UNet(nn.Module):
    """U-Net: encoder stages joined by 2x2 max-pooling, decoder stages that upsample
    bilinearly (x2), concatenate the skip connection and apply conv-BN-ReLU blocks;
    a final 1x1 convolution (no bias when bias-free).  (N, C_in, H, W) -> (N, C_out, H, W)
    with H and W multiples of ``size_multiple = 2**(n_scales-1)``.

    With ``channel_plan="paper"`` the widths and padding are those of the paper's U-Net
    (:class:`~temnb.nets.config.UNetConfig`); one difference is kept on purpose: bilinear upsampling
    with ``align_corners=False`` (the reference's ``True`` makes what a pixel reads depend on the
    image size, so a crop would be filtered differently from the whole frame)."""

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        config = UNetConfig() if config is None else config
        if not isinstance(config, UNetConfig):
            raise ParameterError(f"UNet needs a UNetConfig, not {type(config).__name__}")
        self.config = config
        self.temporal_window = 1
        self.size_multiple = 2 ** (config.n_scales - 1)
        self.receptive_field = receptive_field(config)
        n, b, bf = config.n_scales, config.blocks_per_scale, config.bias_free
        widths = config.widths()
        self.encoders = nn.ModuleList()
        c_in = config.in_channels * self.temporal_window
        if config.channel_plan == "paper":
            for s in range(n):
                self.encoders.append(_stage([c_in, widths[s], widths[s]], bf, "replicate"))
                c_in = widths[s]
            # decoder at scale s: cat(upsampled w_s, skip w_s) -> w_s -> w_(s-1) (the base width at s = 0)
            self.decoders = nn.ModuleList(
                _stage([2 * widths[s], widths[s], widths[s - 1] if s else widths[0]], bf, "replicate")
                for s in range(n - 1))
        else:
            for s in range(n):
                self.encoders.append(_stage([c_in] + [widths[s]] * b, bf))
                c_in = widths[s]
            self.decoders = nn.ModuleList(_stage([widths[s + 1] + widths[s]] + [widths[s]] * b, bf)
                                          for s in range(n - 1))
        self.head = nn.Conv2d(widths[0], config.out_channels, 1, bias=not bf)
        self.pool = nn.MaxPool2d(2)
        _kaiming_init(self)

    def forward(self, x):
        skips = []
        for s, encoder in enumerate(self.encoders):
            if s > 0:
                x = self.pool(x)
            x = encoder(x)
            skips.append(x)
        for s in range(len(self.decoders) - 1, -1, -1):
            skip = skips[s]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.decoders[s](torch.cat([x, skip], dim=1))
        return self.head(x)


class DnCNN(nn.Module):
    """DnCNN: conv-ReLU, (depth-2) x conv-BN-ReLU, conv; it estimates the noise and
    returns ``x - noise(x)`` (residual learning; still homogeneous when bias-free)."""

    def __init__(self, config: DnCNNConfig | None = None):
        super().__init__()
        config = DnCNNConfig() if config is None else config
        if not isinstance(config, DnCNNConfig):
            raise ParameterError(f"DnCNN needs a DnCNNConfig, not {type(config).__name__}")
        if config.out_channels != config.in_channels:
            raise ParameterError(
                "DnCNN subtracts the predicted noise from its input, so out_channels must equal "
                f"in_channels (got {config.out_channels} and {config.in_channels})"
            )
        self.config = config
        self.temporal_window = 1
        self.size_multiple = 1
        self.receptive_field = receptive_field(config)
        bf, c = config.bias_free, config.channels
        layers = [nn.Conv2d(config.in_channels, c, 3, padding=1, bias=not bf), nn.ReLU(inplace=True)]
        for _ in range(config.depth - 2):
            layers.append(_conv_block(c, c, bf))
        layers.append(nn.Conv2d(c, config.out_channels, 3, padding=1, bias=not bf))
        self.body = nn.Sequential(*layers)
        _kaiming_init(self)

    def forward(self, x):
        return x - self.body(x)
