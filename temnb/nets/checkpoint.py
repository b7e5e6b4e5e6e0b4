"""Model folders: a trained network as three plain files.

::

    my_model/
        weights.pt        the state_dict (tensors only; loaded with weights_only=True)
        config.json       {"architecture": "UNet", "n_scales": 4, ...}
        model_card.json   what it was trained on, how well it did, versions, date...

Every file is written to a temporary name and renamed, so an interrupted save
never leaves a half-written model behind.  Loading checks each file and says
which one is wrong and why.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import torch
from torch import nn

from ..core.errors import CorruptFileError, DataFileError, MissingFileError, ParameterError, TemnbError
from ..core.record import atomic_write, write_json_atomically
from .config import receptive_field
from .registry import config_from_dict, count_parameters

__all__ = ["save_model", "load_model", "read_model_card", "WEIGHTS", "CONFIG", "CARD"]

WEIGHTS = "weights.pt"
CONFIG = "config.json"
CARD = "model_card.json"


def _write_json(path: Path, payload: dict) -> None:
    write_json_atomically(path, payload, default=str)


def save_model(model: nn.Module, folder, *, card: dict | None = None) -> Path:
    """Save *model* as a model folder (created if needed); returns the folder's Path.

    *card* adds free information (training data, metrics, dose...) to the model
    card; temnb fills in architecture, n_parameters, receptive_field, versions and date.
    """
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise ParameterError(
            f"{type(model).__name__} has no temnb config, so it cannot be saved as a model folder",
            hint="build the network with temnb.nets.registry.build_model(config)",
        )
    if card is not None and not isinstance(card, dict):
        raise ParameterError(f"card must be a dict, not {type(card).__name__}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataFileError("exists and is a file, not a model folder", source=folder)
    folder.mkdir(parents=True, exist_ok=True)
    from ..core.environment import TEMNB_VERSION as __version__

    full_card = {
        "architecture": config.architecture,
        "n_parameters": count_parameters(model),
        "receptive_field": int(model.receptive_field if hasattr(model, "receptive_field")
                               else receptive_field(config)),
        "temporal_window": int(getattr(model, "temporal_window", 1)),
        "temnb_version": __version__,
        "torch_version": torch.__version__,
        "saved": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    full_card.update(card or {})
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(folder / WEIGHTS, lambda tmp: torch.save(state, tmp))
    _write_json(folder / CONFIG, config.to_dict())
    _write_json(folder / CARD, full_card)
    return folder


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise MissingFileError(
            "is missing from the model folder",
            source=path,
            hint="a model folder holds weights.pt, config.json and model_card.json (written by save_model)",
        )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"is not valid JSON ({exc})", source=path) from None
    if not isinstance(payload, dict):
        raise CorruptFileError("does not hold a JSON object", source=path)
    return payload


def _check_folder(folder) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise MissingFileError(
            "does not exist", source=folder, hint="check the path to the model folder (written by save_model)"
        )
    if not folder.is_dir():
        raise DataFileError("is a file, not a model folder", source=folder)
    return folder


def read_model_card(folder) -> dict:
    """The model card (a dict) of a model folder."""
    return _read_json(_check_folder(folder) / CARD)


def _describe_mismatch(model_state: dict, saved: dict) -> str:
    missing = [k for k in model_state if k not in saved]
    unexpected = [k for k in saved if k not in model_state]
    wrong = [
        f"{k} {tuple(saved[k].shape)} vs {tuple(model_state[k].shape)}"
        for k in model_state
        if k in saved and tuple(saved[k].shape) != tuple(model_state[k].shape)
    ]

    def short(items):
        return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} layer(s) the config needs are absent ({short(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} layer(s) are not in this architecture ({short(unexpected)})")
    if wrong:
        parts.append(f"{len(wrong)} layer(s) have the wrong shape (saved vs expected: {short(wrong)})")
    return "; ".join(parts)


def load_model(folder, *, device="cpu", expected: str | None = None) -> nn.Module:
    """The network saved in *folder*, on *device*, in eval mode.

    *expected* (e.g. ``"UNet"``) makes loading fail unless the folder holds that
    architecture.  The returned model carries ``model_folder`` (str) and
    ``model_card`` (dict) attributes for provenance.
    """
    from ..core.device import choose_device
    from .registry import build_model

    folder = _check_folder(folder)
    config_path, weights_path = folder / CONFIG, folder / WEIGHTS
    config_dict = _read_json(config_path)
    try:
        config = config_from_dict(config_dict)
    except ParameterError as exc:
        raise DataFileError(exc.problem, source=config_path, hint=exc.hint) from None
    if expected is not None and config.architecture != expected:
        raise DataFileError(
            f"holds a {config.architecture} model, but a {expected} model was expected",
            source=config_path,
            hint=f"pick a folder with a {expected} model, or leave out expected=",
        )
    if not weights_path.is_file():
        raise MissingFileError("is missing from the model folder", source=weights_path)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise CorruptFileError(
            f"could not be read as PyTorch weights ({type(exc).__name__}: {str(exc)[:200]})",
            source=weights_path,
            hint="the file is truncated or not a temnb weights file; save the model again",
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CorruptFileError("does not hold a dict of weight tensors (a state_dict)", source=weights_path)
    model = build_model(config)
    problem = _describe_mismatch(model.state_dict(), state)
    if problem:
        raise DataFileError(
            f"does not fit the {config.architecture} described in {CONFIG}: {problem}",
            source=weights_path,
            hint="weights.pt and config.json must come from the same save_model call",
        )
    try:
        model.load_state_dict(state)
    except (RuntimeError, TemnbError) as exc:
        raise DataFileError(f"could not be loaded into the model ({exc})", source=weights_path) from None
    card_path = folder / CARD
    try:
        card = _read_json(card_path) if card_path.exists() else {}
    except CorruptFileError:
        card = {}  # the card is documentation; a damaged one should not block denoising
    model.model_folder = str(folder)
    model.model_card = card
    return model.to(choose_device(device)).eval()
