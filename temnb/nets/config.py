"""One validated configuration object per model and per training recipe, saved beside the weights.

Configs are frozen dataclasses with ``to_dict``/``from_dict`` (JSON in ``config.json``); their
fields are checked when they are made, so a wrong setting fails with a message naming it, before
any network is built.  :func:`receptive_field` and :func:`receptive_field_bounds` give each
architecture's exact receptive field from its config alone (layer arithmetic, no network built).

Supervised (trained on clean simulations): :class:`UNetConfig`, :class:`DnCNNConfig`, trained with
:class:`TrainConfig`.  Blind-spot (trained on the noisy movie itself): :class:`UDVDConfig`,
:class:`WCVDConfig`, :class:`WCIDConfig`, :class:`N2VConfig`.  The networks they describe are in
:mod:`temnb.nets.supervised_models` and :mod:`temnb.nets.blind_spot_models`.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np

from ..core.checks import positive
from ..core.errors import ParameterError


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

    def receptive_field(self) -> int:
        """The exact receptive field of this architecture, in pixels (:func:`receptive_field`)."""
        return receptive_field(self)

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


UNET_CHANNEL_PLANS = ("doubling", "paper")
PAPER_UNET_DOWNSAMPLINGS, PAPER_UNET_BASE_CHANNELS = 6, 128


@dataclass(frozen=True)
class UNetConfig(_ConfigMixin):
    """A U-Net with ``n_scales`` resolutions (2..7, i.e. ``n_scales - 1`` down-samplings, which is
    how the paper counts), ``base_channels`` features at full resolution and ``blocks_per_scale``
    conv-BN-ReLU blocks per scale.

    ``channel_plan="doubling"`` (default, temnb's): ``base_channels * 2**s`` features at scale s,
    the decoder as wide as the encoder, zero padding.  ``channel_plan="paper"``: the widths of the
    simulation-trained paper's U-Net (Mohan et al., sreyas-mohan/electron-microscopy-denoising
    ``unet2``): B, B, B, 2B, 4B, 8B, ... with the coarsest scale as wide as the one above it, decoder
    blocks of 2 w_s -> w_s -> w_(s-1), replicate padding, two blocks per scale.
    :meth:`UNetConfig.paper` is that network as published: 6 down-samplings of 128 channels (70.5 M
    parameters, receptive field 950 px); smaller ones are named as CPU variants (:attr:`label`)."""

    architecture: ClassVar[str] = "UNet"
    n_scales: int = 4
    base_channels: int = 32
    blocks_per_scale: int = 2
    bias_free: bool = True
    in_channels: int = 1
    out_channels: int = 1
    channel_plan: str = "doubling"

    def __post_init__(self):
        _check_int(self, "n_scales", 2, 7)
        _check_int(self, "base_channels", 1, 128)
        _check_int(self, "blocks_per_scale", 1, 8)
        _check_bool(self, "bias_free")
        _check_int(self, "in_channels", 1, 64)
        _check_int(self, "out_channels", 1, 64)
        if self.channel_plan not in UNET_CHANNEL_PLANS:
            raise ParameterError(f"UNetConfig.channel_plan = {self.channel_plan!r}; it must be one of "
                                 f"{', '.join(UNET_CHANNEL_PLANS)}", hint="'paper' is Mohan et al.'s U-Net")
        if self.channel_plan == "paper" and self.blocks_per_scale != 2:
            raise ParameterError(f"UNetConfig: the paper's U-Net has 2 convolutions per scale, not "
                                 f"blocks_per_scale = {self.blocks_per_scale}", hint="leave blocks_per_scale at 2")
        if self.channel_plan == "doubling" and self.base_channels * 2 ** (self.n_scales - 1) > 2048:
            raise ParameterError(f"UNetConfig: {self.base_channels} channels doubled over {self.n_scales} scales is "
                                 f"{self.base_channels * 2 ** (self.n_scales - 1)} at the coarsest scale",
                                 hint="use fewer scales or channels, or channel_plan='paper'")

    @classmethod
    def paper(cls, downsamplings: int = PAPER_UNET_DOWNSAMPLINGS, base_channels: int = PAPER_UNET_BASE_CHANNELS,
              **settings) -> "UNetConfig":
        """The paper's U-Net plan with *downsamplings* poolings (6 in the paper) and *base_channels*
        (128 in the paper), bias-free unless ``bias_free=False``."""
        if isinstance(downsamplings, bool) or not isinstance(downsamplings, numbers.Integral):
            raise ParameterError(f"downsamplings = {downsamplings!r} must be a whole number 1..6")
        return cls(n_scales=int(downsamplings) + 1, base_channels=base_channels, channel_plan="paper", **settings)

    @property
    def downsamplings(self) -> int:
        """Poolings between the finest and the coarsest scale (the paper's "scales")."""
        return self.n_scales - 1

    def widths(self) -> tuple:
        """Encoder features per scale, finest first."""
        b, n = self.base_channels, self.n_scales
        if self.channel_plan == "doubling":
            return tuple(b * 2**s for s in range(n))
        inner = [b * max(1, 2 ** (s - 2)) for s in range(n - 1)]
        return tuple(inner + [inner[-1]])

    @property
    def label(self) -> str:
        """A name for tables that says whether this is the paper's network."""
        if self.channel_plan == "paper" and (self.downsamplings, self.base_channels) == (
                PAPER_UNET_DOWNSAMPLINGS, PAPER_UNET_BASE_CHANNELS):
            return "the paper's U-Net (6 down-samplings, 128 channels)"
        if self.channel_plan == "paper":
            return (f"U-Net, the paper's plan with {self.downsamplings} down-samplings and {self.base_channels} channels "
                    "(smaller: CPU variant)")
        return f"U-Net {self.n_scales} scales, base {self.base_channels} (temnb's doubling plan; CPU variant)"


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


def _blind(cfg):
    if cfg.blind_region not in (1, 3) or isinstance(cfg.blind_region, bool):
        raise ParameterError(
            f"{type(cfg).__name__}.blind_region = {cfg.blind_region!r}; it must be 1 (the pixel) or 3 "
            "(the pixel and its 8 neighbours)", hint="use 3 for detectors whose neighbouring pixels are correlated")


# --------------------------------------------------------------------------- configs
UDVD_VARIANTS = ("compact", "reference")


@dataclass(frozen=True)
class UDVDConfig(_ConfigMixin):
    """UDVD (Sheth et al., "Unsupervised Deep Video Denoising", ICCV 2021), in two variants.

    ``variant="reference"`` is the published network (sreyas-mohan/udvd ``blind-video-net-4``; with
    ``blind_region=3`` crozier-del's TEM ``blind-video-net-5``): 5 frames in 3 overlapping triplets
    through one shared blind U-Net (3 levels; 3 convolutions of ``channels`` = 48 per encoder level,
    96 in the bottleneck, 4 of 96 per decoder level, the block's input fed to its last decoder,
    replicate padding, 32 features out), a second blind U-Net on their 96 features, a 384 -> 384 ->
    96 -> 1 head: 2,123,664 parameters, receptive field 291 px.  About 8 M multiply-adds per pixel:
    minutes per frame to train on a CPU, so notebook 07 uses it in its ``full`` preset.

    ``variant="compact"`` (default) is temnb's CPU variant: all frames enter one blind U-Net as
    channels (``n_scales`` resolutions, ``blocks_per_scale`` shifted 3x3 convolutions of ``channels``
    features per stage, zero padding) and a 4c -> c -> c -> 1 head; the defaults have 108 k
    parameters and a receptive field of 95 px.  ``two_stage=True`` adds UDVD's cascade of triplets
    (187 px with the defaults, still 9x fewer parameters than the reference).

    Both: ``frames`` (odd) input frames, LeakyReLU(0.1), blind spot by four rotations of convolutions
    that only look upwards and a final shift of ``blind_region // 2 + 1`` rows; ``bias=False``
    (default, as the reference's default) keeps the network bias-free, so it works at doses other
    than the one it was trained at.  ``n_scales``, ``blocks_per_scale`` and ``two_stage`` describe the
    compact network; the reference fixes them (leave them unset).  ``channels`` defaults to 32
    (compact) or 48 (reference)."""

    architecture: ClassVar[str] = "UDVD"
    frames: int = 5
    channels: int | None = None
    n_scales: int | None = None
    blocks_per_scale: int | None = None
    blind_region: int = 1
    bias: bool = False
    two_stage: bool | None = None
    variant: str = "compact"

    def __post_init__(self):
        if self.variant not in UDVD_VARIANTS:
            raise ParameterError(f"UDVDConfig.variant = {self.variant!r}; it must be one of {', '.join(UDVD_VARIANTS)}",
                                 hint="'reference' is the published UDVD, 'compact' temnb's smaller CPU variant")
        reference = self.variant == "reference"
        if reference:
            fixed = [name for name in ("n_scales", "blocks_per_scale", "two_stage") if getattr(self, name) is not None]
            if fixed and not (self.n_scales in (None, 3) and self.blocks_per_scale is None
                              and self.two_stage in (None, True)):
                raise ParameterError(f"UDVDConfig: the reference UDVD fixes {', '.join(fixed)} (3 levels, 3 and 4 "
                                     "convolutions per encoder and decoder level, two stages)",
                                     hint="leave them unset, or use variant='compact' to choose them")
            for name, value in (("n_scales", 3), ("two_stage", True)):
                object.__setattr__(self, name, value)
        for name, default in (("channels", 48 if reference else 32), ("n_scales", 3), ("blocks_per_scale", 2),
                              ("two_stage", False)):
            if getattr(self, name) is None and not (reference and name == "blocks_per_scale"):
                object.__setattr__(self, name, default)
        _check_int(self, "frames", 1, 15, odd=True)
        _check_int(self, "channels", 1, 256)
        _check_int(self, "n_scales", 1, 5)
        if not reference:
            _check_int(self, "blocks_per_scale", 1, 8)
        _blind(self)
        _check_bool(self, "bias")
        _check_bool(self, "two_stage")
        if self.two_stage and self.frames < 5:
            what = "the reference UDVD" if reference else "UDVDConfig.two_stage"
            raise ParameterError(f"{what} needs frames >= 5 (runs of 3 frames, then their combination), not "
                                 f"frames = {self.frames}", hint="use variant='compact', two_stage=False for 3 frames")

    @classmethod
    def reference(cls, **settings) -> "UDVDConfig":
        """The published UDVD (``variant="reference"``), e.g. ``UDVDConfig.reference(blind_region=3)``."""
        return cls(variant="reference", **settings)

    @property
    def label(self) -> str:
        """A name for tables: "UDVD (reference)" or "UDVD-compact (CPU variant)"."""
        return "UDVD (reference)" if self.variant == "reference" else "UDVD-compact (CPU variant)"


@dataclass(frozen=True)
class N2VConfig(_ConfigMixin):
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

    def unet_config(self) -> UNetConfig:
        return UNetConfig(n_scales=self.n_scales, base_channels=self.base_channels,
                                 blocks_per_scale=self.blocks_per_scale, bias_free=False)


@dataclass(frozen=True)
class _WCConfig(_ConfigMixin):
    """Weight-centric blind net: an ensemble over ``kernel_sizes`` (odd, 3..15) of a blind first
    convolution with ``features`` outputs followed by ``depth`` hidden 1x1 layers (LeakyReLU(0.1)) and
    a 1x1 output layer with ReLU.  ``lowpass_cutoff`` (1/Å, e.g. 1.35, the paper's low-pass: the
    information limit of its microscope): an ideal circular FFT low-pass that :func:`temnb.denoise`
    applies to the whole denoised frame, with the pixel size from the movie's calibration -- never
    while training (the FFT mixes all pixels and would undo the blind spot).  None (default): none.

    Default 8 features and 1 hidden layer (2.2k multiply-adds per pixel, 12 Mpix/s on 2 CPU cores):
    on the sample movie 32 features and 2 hidden layers (15k per pixel, 4x slower) denoised no
    better (9.6 against 9.6 dB, 12.3 against 12.0 dB with the low-pass)."""

    kernel_sizes: tuple = (3, 5, 7)
    features: int = 8
    depth: int = 1
    blind_region: int = 1
    lowpass_cutoff: float | None = None
    bias: bool = False

    def __post_init__(self):
        ks, where = self.kernel_sizes, f"{type(self).__name__}.kernel_sizes"
        if isinstance(ks, list):
            object.__setattr__(self, "kernel_sizes", ks := tuple(ks))  # from JSON: a list
        if not isinstance(ks, tuple) or not ks or any(
                isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k % 2 == 0 or not 3 <= k <= 15
                for k in ks) or len(set(ks)) != len(ks):
            raise ParameterError(f"{where} = {ks!r}; it must be distinct odd whole numbers 3..15, e.g. (3, 5, 7)")
        _check_int(self, "features", 1, 256)
        _check_int(self, "depth", 0, 8)
        _blind(self)
        if self.blind_region == 3 and self.architecture == "WCID" and min(ks) < 5:
            raise ParameterError(f"{where} = {ks!r}: a 3x3 kernel with a 3x3 blind region sees nothing",
                                 hint="use kernel sizes of 5 or more with blind_region=3")
        cut = self.lowpass_cutoff
        if cut is not None:
            if isinstance(cut, bool) or not isinstance(cut, (int, float, np.integer, np.floating)) or not (
                    np.isfinite(cut) and cut > 0):
                raise ParameterError(f"{type(self).__name__}.lowpass_cutoff = {cut!r}; it must be None or a "
                                     "spatial frequency in 1/Å", hint="1.35 1/Å is the paper's low-pass")
            object.__setattr__(self, "lowpass_cutoff", float(cut))
        _check_bool(self, "bias")

    @classmethod
    def from_dict(cls, d: dict):
        if isinstance(d, dict) and "lowpass" in d:
            raise ParameterError(
                f"this {cls.architecture} config has 'lowpass' (a cut-off in pixels: min(H, W) / max(kernel_sizes) "
                "frequency pixels), which temnb no longer uses: a cut-off must be a spatial frequency",
                hint="replace it by lowpass_cutoff in 1/Å (e.g. 1.35), or remove it")
        return super().from_dict(d)


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
class TrainConfig:
    """How to train.  patch_size: pixels (a multiple of the model's size_multiple).  dose: e-/px in
    vacuum to rescale the clean images to (None: their own dose).  max_rotation_deg / scale_range:
    random rotation (degrees, +-) and field-of-view scale of the clean patches, on top of random
    flips and quarter turns when augment=True.  val_fraction: share of the images kept for
    validation (unless train() gets val_clean).  mixed_precision: 'auto' (bfloat16 on CUDA), True, False."""

    patch_size: int = 64
    batch_size: int = 8
    epochs: int = 10
    steps_per_epoch: int = 50
    lr: float = 1e-3
    lr_factor: float = 0.5
    plateau_patience: int = 2
    early_stopping_patience: int = 5
    dose: float | None = None
    augment: bool = True
    max_rotation_deg: float = 45.0
    scale_range: tuple = (0.955, 1.055)
    val_fraction: float = 0.1
    n_val_patches: int = 32
    mixed_precision: object = "auto"
    seed: int = 0

    def __post_init__(self):
        def fix(name, value):
            object.__setattr__(self, name, value)

        for name, low in [("patch_size", 8), ("batch_size", 1), ("epochs", 1), ("steps_per_epoch", 1),
                          ("plateau_patience", 0), ("early_stopping_patience", 1), ("n_val_patches", 1),
                          ("seed", 0)]:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ParameterError(f"TrainConfig.{name} = {value!r} must be an integer >= {low}")
            fix(name, int(value))
        for name, ok, rule in [("lr", lambda v: v > 0, "positive"), ("lr_factor", lambda v: 0 < v < 1, "in (0, 1)"),
                               ("max_rotation_deg", lambda v: 0 <= v <= 180, "in 0..180 degrees"),
                               ("val_fraction", lambda v: 0 <= v < 1, "in [0, 1)")]:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(float(value)):
                raise ParameterError(f"TrainConfig.{name} = {value!r} must be a number {rule}")
            fix(name, float(value))
        if self.dose is not None:
            fix("dose", positive(self.dose, "TrainConfig.dose",
                                  hint="0.45 e-/px matches the sample movies; None keeps the images' own dose"))
        try:
            low, high = (float(v) for v in self.scale_range)
        except (TypeError, ValueError):
            raise ParameterError(f"TrainConfig.scale_range = {self.scale_range!r} must be two numbers") from None
        if not 0.5 <= low <= high <= 2:
            raise ParameterError(f"TrainConfig.scale_range = {self.scale_range!r} must be (low, high) "
                                 "with 0.5 <= low <= high <= 2", hint="(0.955, 1.055) is +-5 % magnification")
        fix("scale_range", (low, high))
        if not isinstance(self.augment, bool):
            raise ParameterError(f"TrainConfig.augment = {self.augment!r} must be True or False")
        if not (self.mixed_precision == "auto" or isinstance(self.mixed_precision, bool)):
            raise ParameterError(f"TrainConfig.mixed_precision = {self.mixed_precision!r} must be 'auto', True or False")

    def to_dict(self) -> dict:
        """JSON-ready dict (scale_range as a list)."""
        d = asdict(self)
        d["scale_range"] = list(self.scale_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ParameterError(f"unknown TrainConfig field(s) {', '.join(unknown)}",
                                 hint=f"known fields: {', '.join(sorted(names))}")
        return cls(**d)


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


_BLIND_SPOT_CONFIGS = (UDVDConfig, _WCConfig, N2VConfig)


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
    if isinstance(config, N2VConfig):
        return receptive_field_bounds(config.unet_config(), position)
    if isinstance(config, _BLIND_SPOT_CONFIGS):  # UDVD, WCVD/WCID: odd and centred
        half = _blind_spot_receptive_field(config) // 2
        return -half, half
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
    if isinstance(config, _BLIND_SPOT_CONFIGS):
        return _blind_spot_receptive_field(config)
    raise ParameterError(f"no receptive-field rule for {type(config).__name__}")


def _blind_spot_receptive_field(config) -> int:
    """Side of the square of input pixels an output pixel can depend on (exact, maximum over positions)."""
    if isinstance(config, UDVDConfig) and config.variant == "reference":
        up = _reference_udvd_reach(config.frames)
        return 2 * (up + config.blind_region // 2 + 1) + 1
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
        return receptive_field(config.unet_config())
    raise ParameterError(f"{config!r} is not a blind-spot model config")


def _reference_udvd_reach(frames: int) -> int:
    """Rows above its own that one upward-looking branch of the reference UDVD reads (before the
    final shift), the largest over positions on the pooling grid: interval arithmetic through its
    layers.  A blind 3x3 convolution at row y reads rows y-2..y; a shift-and-pool row r reads rows
    2r-1, 2r; a nearest upsample row y reads floor(y/2)."""

    def conv(lo, hi, n):
        return lo - 2 * n, hi

    def pool(lo, hi):
        return 2 * lo - 1, 2 * hi

    def up(lo, hi):
        return lo // 2, hi // 2

    def union(*intervals):
        return min(i[0] for i in intervals), max(i[1] for i in intervals)

    def unet(lo, hi):
        """Input rows of the block that its output rows [lo, hi] read."""
        d1_in = conv(lo, hi, 4)  # dec1: cat(up(dec2), block input)
        d2_out = up(*d1_in)
        d2_in = conv(*d2_out, 4)  # dec2: cat(up(enc3), x1)
        e3_in = conv(*up(*d2_in), 3)  # enc3 at scale 2 reads x2 = pool(enc2(x1))
        x1_rows = union(d2_in, conv(*pool(*e3_in), 3))  # x1 = pool(enc1(input)) at scale 1
        return union(d1_in, conv(*pool(*x1_rows), 3))

    reach = 0
    for y in range(4):  # the pooling grid repeats every 4 rows
        lo, _ = unet(*unet(y, y))  # stage 2 reads stage-1 features, which read the frames
        reach = max(reach, y - lo)
    return reach
