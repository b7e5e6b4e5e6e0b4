"""The denoising networks: a bias-free U-Net and a bias-free DnCNN, and their configs.

Bias-free (Mohan et al. 2020, "Robust and interpretable blind image denoising via
bias-free CNNs"): no additive constant anywhere, so in eval mode the network is
positively homogeneous, ``f(a*x) = a*f(x)`` for ``a > 0``, and locally linear,
``f(x) = J(x) @ x``.  A net trained at one dose then generalises to others once
the input is divided by the dose (what :func:`temnb.inference.denoise` does).

Every model in temnb has ``.config``, ``.temporal_window`` (frames per input),
``.size_multiple`` (H and W must be multiples of it) and ``.receptive_field``
(pixels).  Configs are frozen dataclasses with ``to_dict``/``from_dict``;
:func:`config_from_dict` dispatches on ``d["architecture"]`` through the
registry :data:`ARCHITECTURES` that other modules extend with :func:`register`.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import numbers
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from .errors import ParameterError

__all__ = [
    "BiasFreeBatchNorm2d",
    "UNetConfig",
    "DnCNNConfig",
    "UNet",
    "DnCNN",
    "ARCHITECTURES",
    "register",
    "config_from_dict",
    "build_model",
    "count_parameters",
    "receptive_field",
    "receptive_field_bounds",
]


# --------------------------------------------------------------------------- configs
def _check_int(config, name: str, lo: int, hi: int, *, odd: bool = False) -> None:
    cls_name, value = type(config).__name__, getattr(config, name)
    # numbers.Integral admits numpy integers (e.g. a config read back from an .hspy file).
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ParameterError(
            f"{cls_name}.{name} must be a whole number, not {value!r} ({type(value).__name__})"
        )
    if not lo <= value <= hi:
        raise ParameterError(f"{cls_name}.{name} = {value} is out of range; it must be {lo}..{hi}")
    if odd and value % 2 == 0:
        raise ParameterError(f"{cls_name}.{name} = {value} must be odd, so that there is a centre")
    object.__setattr__(config, name, int(value))  # frozen dataclass: store a plain int


def _check_bool(config, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{type(config).__name__}.{name} must be True or False, not {value!r}")
    object.__setattr__(config, name, bool(value))


class _ConfigMixin:
    """to_dict / from_dict shared by every model config."""

    architecture: ClassVar[str] = "?"

    def to_dict(self) -> dict:
        """The config as plain JSON-able data, with an ``"architecture"`` key."""
        return {"architecture": self.architecture, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict):
        """Build the config from :meth:`to_dict` output (missing fields take defaults)."""
        if not isinstance(d, dict):
            raise ParameterError(f"a {cls.__name__} needs a dict, not {type(d).__name__}")
        d = dict(d)
        arch = d.pop("architecture", cls.architecture)
        if arch != cls.architecture:
            raise ParameterError(f"this config is for {arch!r}, not {cls.architecture!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ParameterError(
                f"unknown {cls.architecture} setting(s) {', '.join(unknown)}; "
                f"known settings: {', '.join(sorted(fields))}"
            )
        return cls(**d)


@dataclass(frozen=True)
class UNetConfig(_ConfigMixin):
    """A U-Net: ``n_scales`` resolutions (2..6), ``base_channels`` features at full resolution
    (doubled at each coarser scale), ``blocks_per_scale`` conv-BN-ReLU blocks per scale."""

    architecture: ClassVar[str] = "UNet"
    n_scales: int = 4
    base_channels: int = 32
    blocks_per_scale: int = 2
    bias_free: bool = True
    in_channels: int = 1
    out_channels: int = 1

    def __post_init__(self):
        _check_int(self, "n_scales", 2, 6)
        _check_int(self, "base_channels", 1, 128)
        _check_int(self, "blocks_per_scale", 1, 8)
        _check_bool(self, "bias_free")
        _check_int(self, "in_channels", 1, 64)
        _check_int(self, "out_channels", 1, 64)


@dataclass(frozen=True)
class DnCNNConfig(_ConfigMixin):
    """A DnCNN (Zhang et al. 2017): ``depth`` 3x3 convolutions of ``channels`` features;
    it predicts the noise and subtracts it from the input (residual learning)."""

    architecture: ClassVar[str] = "DnCNN"
    depth: int = 17
    channels: int = 64
    bias_free: bool = True
    in_channels: int = 1
    out_channels: int = 1

    def __post_init__(self):
        _check_int(self, "depth", 3, 64)
        _check_int(self, "channels", 1, 256)
        _check_bool(self, "bias_free")
        _check_int(self, "in_channels", 1, 64)
        _check_int(self, "out_channels", 1, 64)


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


def _conv_block(c_in: int, c_out: int, bias_free: bool) -> nn.Sequential:
    norm = BiasFreeBatchNorm2d(c_out) if bias_free else nn.BatchNorm2d(c_out)
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=not bias_free), norm, nn.ReLU(inplace=True))


def _stage(c_in: int, c_out: int, n_blocks: int, bias_free: bool) -> nn.Sequential:
    return nn.Sequential(*[_conv_block(c_in if i == 0 else c_out, c_out, bias_free) for i in range(n_blocks)])


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
    with H and W multiples of ``size_multiple = 2**(n_scales-1)``."""

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
        widths = [config.base_channels * 2**s for s in range(n)]
        self.encoders = nn.ModuleList()
        c_in = config.in_channels * self.temporal_window
        for s in range(n):
            self.encoders.append(_stage(c_in, widths[s], b, bf))
            c_in = widths[s]
        self.decoders = nn.ModuleList(
            _stage(widths[s + 1] + widths[s], widths[s], b, bf) for s in range(n - 1)
        )
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


# --------------------------------------------------------------------------- receptive field
def _grow(lo: int, hi: int, n: int) -> tuple[int, int]:
    return lo - n, hi + n  # n 3x3 convolutions (padding 1)


def _unet_encoder(s: int, lo: int, hi: int, b: int) -> tuple[int, int]:
    """Input interval that encoder features at scale s over [lo, hi] depend on."""
    lo, hi = _grow(lo, hi, b)
    if s == 0:
        return lo, hi
    return _unet_encoder(s - 1, 2 * lo, 2 * hi + 1, b)  # 2x2 max-pool, stride 2


def _unet_decoder(s: int, lo: int, hi: int, n: int, b: int) -> tuple[int, int]:
    """Input interval that decoder output at scale s over [lo, hi] depends on."""
    lo, hi = _grow(lo, hi, b)
    skip = _unet_encoder(s, lo, hi, b)
    # Bilinear x2 upsampling, align_corners=False: fine pixel i reads coarse
    # pixels floor((i-1)/2) .. floor((i+1)/2).
    clo, chi = (lo - 1) // 2, (hi + 1) // 2
    if s + 1 == n - 1:
        up = _unet_encoder(s + 1, clo, chi, b)
    else:
        up = _unet_decoder(s + 1, clo, chi, n, b)
    return min(skip[0], up[0]), max(skip[1], up[1])


def receptive_field_bounds(config, position: int = 0) -> tuple[int, int]:
    """Offsets (first, last), relative to *position*, of the input pixels (along one axis)
    that the output pixel at *position* depends on, away from the image borders.

    For a U-Net the support depends on the position modulo ``2**(n_scales-1)``
    (the pooling grid); for DnCNN it is always ``(-depth, depth)``.
    """
    if isinstance(config, DnCNNConfig):
        return -config.depth, config.depth
    if isinstance(config, UNetConfig):
        lo, hi = _unet_decoder(0, position, position, config.n_scales, config.blocks_per_scale)
        return lo - position, hi - position
    rf = getattr(config, "receptive_field_bounds", None)
    if callable(rf):
        return rf(position)
    raise ParameterError(f"no receptive-field rule for {type(config).__name__}")


def receptive_field(config) -> int:
    """Width in pixels of the input region one output pixel depends on (the largest over
    positions on the pooling grid), exact for the layer arithmetic of these networks."""
    if isinstance(config, DnCNNConfig):
        return 2 * config.depth + 1
    if isinstance(config, UNetConfig):
        period = 2 ** (config.n_scales - 1)
        widths = []
        for p in range(period):
            lo, hi = receptive_field_bounds(config, p)
            widths.append(hi - lo + 1)
        return max(widths)
    rf = getattr(config, "receptive_field", None)
    if callable(rf):
        return int(rf())
    raise ParameterError(f"no receptive-field rule for {type(config).__name__}")


# --------------------------------------------------------------------------- registry
ARCHITECTURES: dict[str, tuple[type, type]] = {}


def register(config_cls: type, module_cls: type) -> None:
    """Make an architecture known to :func:`config_from_dict` and :func:`build_model`
    under ``config_cls.architecture``."""
    name = getattr(config_cls, "architecture", None)
    if not isinstance(name, str) or not name:
        raise ParameterError(f"{config_cls!r} has no 'architecture' name to register under")
    ARCHITECTURES[name] = (config_cls, module_cls)


register(UNetConfig, UNet)
register(DnCNNConfig, DnCNN)


def _try_video_models() -> None:
    # Video models (issue 5) register themselves on import; import them only when needed.
    try:
        if importlib.util.find_spec("temnb.video_models") is not None:
            importlib.import_module("temnb.video_models")
    except ImportError:
        pass


def config_from_dict(d: dict):
    """The config object described by *d* (as written by ``config.to_dict()``)."""
    if not isinstance(d, dict) or "architecture" not in d:
        raise ParameterError(
            "a model config must be a dict with an 'architecture' key",
            hint=f"known architectures: {', '.join(sorted(ARCHITECTURES))}",
        )
    name = d["architecture"]
    if name not in ARCHITECTURES:
        _try_video_models()
    if name not in ARCHITECTURES:
        raise ParameterError(
            f"unknown architecture {name!r}; known architectures: {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[name][0].from_dict(d)


def build_model(config) -> nn.Module:
    """A freshly initialised network for *config* (a config object or its dict)."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    name = getattr(type(config), "architecture", None)
    if name not in ARCHITECTURES:
        _try_video_models()
    if name not in ARCHITECTURES or not isinstance(config, ARCHITECTURES[name][0]):
        raise ParameterError(
            f"{config!r} is not a model config; known architectures: {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[name][1](config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
