"""Recipes of notebook 05: held-out splits of a simulated data set, contrast subsets, and the
receptive field a trained network actually uses.

The network (:mod:`temnb.models`), its training (:mod:`temnb.train`) and inference
(:mod:`temnb.inference`) live in their own modules; this one holds the small pieces of
experiment design that would otherwise sit as long cells in the notebook.
"""
from __future__ import annotations

import numpy as np

from .errors import DataShapeError, ParameterError

__all__ = ["CONTRAST_BY_DEFOCUS", "contrast_of_defocus", "split_by_structure", "select_images", "take_images",
           "receptive_field_map", "effective_radius"]

# Column contrast of the Pt particle against defocus for temnb.simulate.Microscope (Cs -13 um,
# C5 5 mm, 300 kV), measured with temnb.training_data.column_contrast on the small particle:
# bright (white) columns in overfocus, dark (black) near Gaussian focus and underfocus.
CONTRAST_BY_DEFOCUS = (("white", -20.0, -10.0), ("intermediate", -9.0, -3.0), ("black", -2.0, 20.0))


def contrast_of_defocus(defocus_nm: float) -> str:
    """'white', 'intermediate' or 'black': the Pt column contrast at *defocus_nm* (abTEM sign)."""
    d = float(defocus_nm)
    for kind, low, high in CONTRAST_BY_DEFOCUS:
        if low <= d <= high:
            return kind
    raise ParameterError(f"defocus {d} nm is outside the measured range -20..20 nm",
                         hint="use temnb.training_data.column_contrast on your own images")


def split_by_structure(table, test_fraction: float = 0.25, seed: int = 0):
    """``(train, test)`` index arrays into *table* with whole STRUCTURES held out.

    Images of one structure at different defoci share every atom, so splitting images at
    random would leak test structures into training; the split is over ``table[i]['structure']``.
    """
    if not 0 < test_fraction < 1:
        raise ParameterError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    structures = np.array([row["structure"] for row in table])
    unique = np.unique(structures)
    if len(unique) < 2:
        raise DataShapeError(f"the data set has {len(unique)} structure(s); a held-out split needs at least 2",
                             hint="build a larger data set (DatasetSpec n_structures)")
    rng = np.random.default_rng(seed)
    n_test = min(len(unique) - 1, max(1, round(test_fraction * len(unique))))
    test_structures = rng.choice(unique, size=n_test, replace=False)
    is_test = np.isin(structures, test_structures)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def select_images(table, indices=None, *, contrast=None, defoci=None) -> np.ndarray:
    """Indices (among *indices*, default all) whose column contrast is in *contrast* (a kind or
    a list of kinds, see :func:`contrast_of_defocus`) and whose defocus is in *defoci*."""
    chosen = np.arange(len(table)) if indices is None else np.asarray(indices, dtype=int)
    kinds = {contrast} if isinstance(contrast, str) else set(contrast or ())
    unknown = kinds - {k for k, _, _ in CONTRAST_BY_DEFOCUS}
    if unknown:
        raise ParameterError(f"unknown contrast {sorted(unknown)}", hint="use 'white', 'intermediate' or 'black'")
    keep = []
    for i in chosen:
        d = float(table[i]["defocus_nm"])
        if kinds and contrast_of_defocus(d) not in kinds:
            continue
        if defoci is not None and not any(abs(d - float(x)) < 1e-6 for x in defoci):
            continue
        keep.append(int(i))
    return np.array(keep, dtype=int)


def take_images(stack, indices):
    """The images *indices* of a hyperspy stack (navigation = image) as a new stack with the same
    calibration and metadata (dose, simulation spec), so training knows their dose.  hyperspy's
    ``inav`` takes slices, not index lists."""
    import hyperspy.api as hs

    from ._signals import is_signal

    if not is_signal(stack) or stack.axes_manager.navigation_dimension != 1:
        raise DataShapeError("take_images needs a hyperspy stack of images (one navigation axis)")
    indices = np.asarray(indices, dtype=int)
    if indices.size == 0:
        raise ParameterError("no images selected", hint="check the split or the contrast / defocus filter")
    out = hs.signals.Signal2D(np.asarray(stack.data)[indices], metadata=stack.metadata.as_dictionary())
    for new, old in zip(out.axes_manager.signal_axes, stack.axes_manager.signal_axes):
        new.scale, new.offset, new.units, new.name = old.scale, old.offset, old.units, old.name
    out.axes_manager.navigation_axes[0].name = stack.axes_manager.navigation_axes[0].name
    if "simulation_images" in out.metadata.get_item("temnb", {}):
        import json

        table = json.loads(out.metadata.temnb.simulation_images)
        out.metadata.temnb.simulation_images = json.dumps([table[i] for i in indices], default=float)
    return out


def receptive_field_map(model, image=None, *, size: int = 129, device="cpu") -> np.ndarray:
    """|d output(centre) / d input| (normalised to max 1) at *image* (a 2-D array, e.g. a noisy
    frame divided by its dose) or, without one, at a *size* x *size* input of ones.

    The pixels a trained network really uses for one output pixel; compare with its
    theoretical receptive field (``model.receptive_field``).  For a bias-free network the map
    depends on the input (it is one row of the Jacobian there).
    """
    import torch

    window = int(getattr(model, "temporal_window", 1))
    channels = int(getattr(model.config, "in_channels", 1)) * window
    if image is None:
        x = torch.ones(1, channels, size, size, device=device)
    else:
        arr = np.asarray(image, dtype=np.float32)
        if arr.ndim != 2:
            raise DataShapeError(f"receptive_field_map needs one 2-D frame, got shape {arr.shape}")
        size = arr.shape[0]
        x = torch.from_numpy(arr)[None, None].repeat(1, channels, 1, 1).to(device)
    x.requires_grad_(True)
    h, w = x.shape[-2:]
    was_training = model.training
    model.eval()
    try:
        out = model(x)
        out[0, 0, h // 2, w // 2].backward()
    finally:
        model.train(was_training)
    grad = x.grad.detach().abs().sum(dim=1)[0].cpu().numpy()
    return grad / grad.max() if grad.max() > 0 else grad


def effective_radius(field: np.ndarray, fraction: float = 0.95) -> float:
    """Radius (px) of the disc around the centre that holds *fraction* of a receptive-field map."""
    h, w = field.shape
    yy, xx = np.indices(field.shape)
    r = np.hypot(yy - h // 2, xx - w // 2).ravel()
    order = np.argsort(r)
    cumulative = np.cumsum(field.ravel()[order])
    if cumulative[-1] <= 0:
        return 0.0
    return float(r[order][np.searchsorted(cumulative, fraction * cumulative[-1])])
