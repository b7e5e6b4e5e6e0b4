"""Which network each configuration builds: the architecture registry, :func:`build_model` and
:func:`config_from_dict` (for a ``config.json``), and :func:`count_parameters`.

The six temnb architectures are registered here; :func:`register` adds one of your own (a config
dataclass with an ``architecture`` name and a module class taking that config)."""
from __future__ import annotations

import torch
from torch import nn

from ..core.errors import ParameterError
from .blind_spot_models import N2V, UDVD, WCID, WCVD
from .config import DnCNNConfig, N2VConfig, UDVDConfig, UNetConfig, WCIDConfig, WCVDConfig
from .supervised_models import DnCNN, UNet

# --------------------------------------------------------------------------- registry
ARCHITECTURES: dict[str, tuple[type, type]] = {}


def register(config_cls: type, module_cls: type) -> None:
    """Make an architecture known to :func:`config_from_dict` and :func:`build_model`
    under ``config_cls.architecture``."""
    name = getattr(config_cls, "architecture", None)
    if not isinstance(name, str) or not name:
        raise ParameterError(f"{config_cls!r} has no 'architecture' name to register under")
    ARCHITECTURES[name] = (config_cls, module_cls)


for _config, _module in ((UNetConfig, UNet), (DnCNNConfig, DnCNN), (UDVDConfig, UDVD), (WCVDConfig, WCVD),
                         (WCIDConfig, WCID), (N2VConfig, N2V)):
    register(_config, _module)


def config_from_dict(d: dict):
    """The config object described by *d* (as written by ``config.to_dict()``)."""
    if not isinstance(d, dict) or "architecture" not in d:
        raise ParameterError(
            "a model config must be a dict with an 'architecture' key",
            hint=f"known architectures: {', '.join(sorted(ARCHITECTURES))}",
        )
    name = d["architecture"]
    if name not in ARCHITECTURES:
        raise ParameterError(
            f"unknown architecture {name!r}; known architectures: {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[name][0].from_dict(d)


def build_model(config, *, seed: int | None = 0) -> nn.Module:
    """A freshly initialised network for *config* (a config object or its dict).

    *seed* (default 0): the initial weights are drawn from a generator seeded with it, so the same
    call gives the same network, and torch's global random state is left as it was.  None draws
    them from the global state instead (seed it with ``torch.manual_seed``)."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    name = getattr(type(config), "architecture", None)
    if name not in ARCHITECTURES or not isinstance(config, ARCHITECTURES[name][0]):
        raise ParameterError(
            f"{config!r} is not a model config; known architectures: {', '.join(sorted(ARCHITECTURES))}"
        )
    if seed is None:
        return ARCHITECTURES[name][1](config)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed={seed!r}: use a whole number >= 0, or None")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHITECTURES[name][1](config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
