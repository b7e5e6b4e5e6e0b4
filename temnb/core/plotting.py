"""Pure functions that prepare and draw what the notebooks show.

Nothing here holds state or needs a widget: the widgets in :mod:`temnb.notebook.widgets`
call these, and tests call them directly.
"""
from __future__ import annotations

import numpy as np

from .errors import ParameterError
from .signals import is_signal, require_image_data, source_label


def _axis_info(data):
    """(pixel size, unit, frame time, time unit) from a signal; Nones for arrays."""
    if not is_signal(data):
        return None, None, None, None
    am = data.axes_manager
    sig = am.signal_axes[0]
    unit = None if str(sig.units) in ("None", "", "<undefined>") else str(sig.units)
    frame_time = time_unit = None
    if am.navigation_dimension:
        nav = am.navigation_axes[0]
        frame_time = nav.scale
        time_unit = None if str(nav.units) in ("None", "", "<undefined>") else str(nav.units)
    return float(sig.scale), unit, frame_time, time_unit


def n_frames(data) -> int:
    """Number of frames of a movie (1 for a single frame)."""
    shape = data.data.shape if is_signal(data) else np.shape(data)
    return int(shape[0]) if len(shape) == 3 else 1


def frame(data, index: int = 0, average: int = 1) -> np.ndarray:
    """Frame *index* of a movie, or the mean of *average* frames starting there.

    Averaging a few frames is how a microscopist first sees atoms in a
    0.45 e-/px movie.  Only the frames needed are read from a lazy signal.
    """
    array = data.data if is_signal(data) else np.asarray(data)
    require_image_data(array, source=source_label(data), what="the movie viewer")
    if array.ndim == 2:
        return np.asarray(array, dtype=np.float64)
    total = array.shape[0]
    if not 0 <= index < total:
        raise ParameterError(f"frame index {index} is outside the movie (0..{total - 1})")
    if average < 1:
        raise ParameterError(f"average must be at least 1 frame, got {average}")
    stop = min(total, index + int(average))
    block = array[index:stop]
    if hasattr(block, "compute"):
        block = block.compute()
    return np.asarray(block, dtype=np.float64).mean(axis=0)


def viewer_state(raw, processed=None, index: int = 0, average: int = 1, *,
                 titles=("raw", "processed")) -> dict:
    """Everything the movie viewer draws for one position of its sliders."""
    panels = [(titles[0], frame(raw, index, average))]
    if processed is not None:
        if n_frames(processed) != n_frames(raw):
            raise ParameterError(
                f"raw and processed movies differ in length ({n_frames(raw)} vs {n_frames(processed)} frames)"
            )
        panels.append((titles[1], frame(processed, index, average)))
    pixel, unit, frame_time, time_unit = _axis_info(raw)
    label = f"frame {index}"
    if average > 1:
        label = f"frames {index}-{min(n_frames(raw), index + average) - 1} (mean of {average})"
    if frame_time is not None and time_unit:
        label += f", t = {index * frame_time:.3f} {time_unit}"
    return {"panels": panels, "index": index, "average": average, "label": label,
            "pixel_size": pixel, "unit": unit}


def _extent(shape, pixel, unit):
    if pixel is None or unit is None:
        return None, "pixels"
    ny, nx = shape
    return (0, nx * pixel, ny * pixel, 0), unit


def draw_state(axes, state, *, percentiles=(0.5, 99.5), cmap="gray"):
    """Draw a :func:`viewer_state` into matplotlib *axes* (one per panel)."""
    axes = np.atleast_1d(axes)
    for ax, (title, image) in zip(axes, state["panels"]):
        ax.clear()
        extent, unit = _extent(image.shape, state["pixel_size"], state["unit"])
        lo, hi = np.percentile(image, percentiles)
        ax.imshow(image, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1, extent=extent)
        ax.set_title(f"{title}\n{state['label']}", fontsize=9)
        ax.set_xlabel(f"x ({unit})")
        ax.set_ylabel(f"y ({unit})")
    return axes


def show_images(images, titles=None, *, pixel_size=None, unit=None, ncols=None, size=3.2,
                percentiles=(0.5, 99.5), suptitle=None):
    """A row (or grid) of images with physical axes; returns the figure."""
    import matplotlib.pyplot as plt

    images = [frame(im) if (is_signal(im) or np.ndim(im) == 2) else np.asarray(im) for im in images]
    titles = titles or [""] * len(images)
    ncols = ncols or len(images)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat[len(images):]:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        extent, label_unit = _extent(image.shape, pixel_size, unit)
        lo, hi = np.percentile(image, percentiles)
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, extent=extent)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"x ({label_unit})")
        ax.set_ylabel(f"y ({label_unit})")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def calibration_of(signal):
    """(pixel size, unit) of a signal, for :func:`show_images`."""
    pixel, unit, _, _ = _axis_info(signal)
    return pixel, unit


def photon_transfer(estimate, ax=None, *, title=None):
    """Plot a :class:`temnb.io.counts.GainEstimate`: binned noise variance against level, and the fit.

    The slope is the gain (detector units per electron); where the line reaches
    the read-noise variance is the offset.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.errorbar(estimate.levels, estimate.variances, yerr=estimate.variance_errors, fmt="o", ms=4,
                label="measured")
    span = np.linspace(min(estimate.offset, np.min(estimate.levels)), np.max(estimate.levels), 100)
    ax.plot(span, estimate.model(span), "-",
            label=f"fit: gain {estimate.gain:.3g}, offset {estimate.offset:.4g}")
    ax.set_xlabel("mean level (detector units)")
    ax.set_ylabel("noise variance (detector units²)")
    ax.set_title(title or "photon-transfer curve", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def poisson_histogram(counts, mean: float, ax=None, *, max_count: int | None = None, title=None):
    """Histogram of integer counts beside the Poisson probabilities for *mean*."""
    import matplotlib.pyplot as plt
    from scipy import stats

    values = np.asarray(counts).ravel()
    if max_count is None:
        max_count = int(max(values.max(), stats.poisson.ppf(0.9999, mean)))
    k = np.arange(max_count + 1)
    observed = np.bincount(values.astype(np.int64), minlength=k.size)[: k.size] / values.size
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.bar(k, observed, width=0.8, alpha=0.6, label=f"measured ({values.size} pixels)")
    ax.plot(k, stats.poisson.pmf(k, mean), "o-", color="k", label=f"Poisson, mean {mean:.3f}")
    ax.set_xlabel("electrons in a pixel")
    ax.set_ylabel("fraction of pixels")
    ax.set_title(title or "counts in vacuum", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def show_columns(images, detections, titles=None, *, truth=None, ncols=None, size=3.2, suptitle=None,
                 percentiles=(0.5, 99.5)):
    """Frames with atomic columns marked: *truth* (a ColumnSet) as open circles — surface
    columns red, bulk ones white — and each frame's detected ColumnSet as '+' (yellow).
    Axes in pixels (the column positions are pixel positions).  Returns the Figure."""
    import matplotlib.pyplot as plt

    images = list(images)
    detections = list(detections)
    if len(detections) != len(images):
        raise ParameterError(f"{len(images)} images but {len(detections)} column sets")
    titles = list(titles) if titles is not None else [None] * len(images)
    ncols = ncols or len(images)
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel()[len(images):]:
        ax.axis("off")
    for ax, image, found, title in zip(axes.ravel(), images, detections, titles):
        array = np.asarray(image.data if is_signal(image) else image, dtype=float)
        low, high = np.percentile(array, percentiles)
        ax.imshow(array, cmap="gray", vmin=low, vmax=high)
        if truth is not None and len(truth):
            surface = truth.surface if truth.surface is not None else np.zeros(len(truth), bool)
            for mask, colour in ((surface, "red"), (~surface, "white")):
                r, c = truth.positions_px[mask].T
                ax.scatter(c, r, s=60, facecolors="none", edgecolors=colour, linewidths=1.0)
        if found is not None and len(found):
            r, c = found.positions_px.T
            ax.scatter(c, r, marker="+", s=40, color="yellow", linewidths=1.0)
        ax.set_title(title or "", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


# -- training curves (temnb.nets.train re-exports these) ------------------------------------------

def plot_history(history):
    """Training loss (log scale) and validation PSNR against epoch; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(9, 3.3))
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-")
    ax_loss.set(xlabel="epoch", ylabel="training loss (MSE)", yscale="log" if history else "linear")
    psnr = [h["val_psnr"] for h in history]
    ax_psnr.plot(epochs, psnr, "o-", color="C1")
    if history:
        best = int(np.argmax(psnr))
        ax_psnr.plot(epochs[best], psnr[best], "*", ms=14, color="C3", label=f"best {psnr[best]:.2f} dB")
        ax_psnr.legend(loc="lower right")
        fig.suptitle(history[-1].get("stopped", f"epoch {epochs[-1]}"), fontsize=10)
    ax_psnr.set(xlabel="epoch", ylabel="validation PSNR (dB)")
    fig.tight_layout()
    return fig


class LiveCurves:
    """``train(..., callback=LiveCurves())``: redraws the curves in ONE notebook output after every epoch.
    Uses display(display_id=True) / update (no ipywidgets.Output, which hangs papermill); does nothing
    outside IPython."""

    def __init__(self):
        self.handle = None

    def __call__(self, history):
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        import matplotlib.pyplot as plt

        fig = plot_history(history)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)  # else the inline backend shows it once more at the end of the cell
