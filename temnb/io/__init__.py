"""Getting a movie in: load/save with calibration kept, per-frame file series, calibration and units,
counts and photon transfer (gain/offset, dose per px and per Å²), file surveys, the bundled data.
Imports only from ``temnb.core``."""
from ..core import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, (
    "files", "frame_files", "calibration", "counts", "photon_transfer", "survey", "bundled", "streaming",
))
