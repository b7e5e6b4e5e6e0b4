"""The networks: validated configs, supervised (U-Net, DnCNN) and blind-spot (UDVD, WCVD/WCID, N2V)
architectures, the registry, supervised and self-supervised training, patches, checkpoints, inference.
Imports only from lower stages (``core``, ``io``, ``simulation``, ``classic``)."""
from ..core import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, (
    "config", "supervised_models", "blind_spot_models", "registry", "checkpoint", "inference", "patches",
    "train", "self_supervised", "diagnostics",
))
