"""Pure functions behind the explorers of :mod:`temnb.notebook.explorers`: what they show, drawn.

``filter_state`` / ``draw_filter`` (a network's effective filter at a pixel, through
:mod:`temnb.explain.jacobian`) and ``likelihood_state`` / ``draw_likelihood`` (the Poisson
log-likelihood ratio of each column, through :mod:`temnb.explain.likelihood`) compute and draw
everything an explorer shows for one position of its controls; ``panel_box``, ``image_point`` and
``pixel_at`` turn a click on the PNG into a pixel of the frame.  Nothing here holds state or
imports ipywidgets: tests (and notebooks without a front end) call these directly.
"""
from __future__ import annotations

import io

import numpy as np

from ..core.errors import ParameterError
from ..core.signals import is_signal

__all__ = [
    "DEFAULT_HALF",
    "VERDICT_COLOURS",
    "clamp_thresholds",
    "draw_filter",
    "draw_likelihood",
    "filter_state",
    "format_filter",
    "format_likelihood",
    "image_point",
    "likelihood_setup",
    "likelihood_state",
    "nearest_column",
    "new_figure",
    "panel_box",
    "pixel_at",
    "png_bytes",
    "verdicts_for",
]

#: Half-side (px) of the crops around the chosen pixel: 25 x 25 px, a few column spacings at
#: 0.061 Å/px and more than the 90 % radius of the networks of notebooks 05-08.
DEFAULT_HALF = 12
#: Colour of a column's marker by its verdict.
VERDICT_COLOURS = {"real": "#1a9850", "undetermined": "#fdae61", "spurious": "#d73027"}


# --------------------------------------------------------------------------- data helpers
def _array(data) -> np.ndarray:
    array = data.data if is_signal(data) else data
    if hasattr(array, "compute"):
        array = array.compute()
    return np.asarray(array)


def _frame_of(array: np.ndarray, index: int) -> np.ndarray:
    if array.ndim == 2:
        return np.asarray(array, dtype=np.float64)
    if not 0 <= index < array.shape[0]:
        raise ParameterError(f"frame index {index} is outside the movie (0..{array.shape[0] - 1})")
    return np.asarray(array[index], dtype=np.float64)


def _window(centre, half, shape):
    """(r0, r1, c0, c1): the crop of side 2 * half + 1 around *centre*, clipped to the frame."""
    r, c = centre
    return (max(0, r - half), min(shape[0], r + half + 1), max(0, c - half), min(shape[1], c + half + 1))


def _crop_weights(weights2d, origin, window):
    """The filter over the frame window *window*, zero where the filter's region does not reach."""
    r0, r1, c0, c1 = window
    out = np.zeros((r1 - r0, c1 - c0))
    o_r, o_c = origin
    rows, cols = weights2d.shape
    a0, a1 = max(r0, o_r), min(r1, o_r + rows)
    b0, b1 = max(c0, o_c), min(c1, o_c + cols)
    if a0 < a1 and b0 < b1:
        out[a0 - r0:a1 - r0, b0 - c0:b1 - c0] = weights2d[a0 - o_r:a1 - o_r, b0 - o_c:b1 - o_c]
    return out


# --------------------------------------------------------------------------- effective filter
def filter_state(model, noisy, denoised, frame: int = 0, row: int = 0, col: int = 0, *, half: int = DEFAULT_HALF,
                 **options) -> dict:
    """Everything the effective-filter explorer shows for output pixel (*frame*, *row*, *col*).

    *noisy*: the network's input (a frame or a movie of counts, array or signal); *denoised*: what
    the network made of it (``temnb.denoise(noisy, model)``), shown for orientation; *half*: the
    crops are ``2 * half + 1`` px square around the pixel (clipped at the frame's edges).
    *options* go to :func:`temnb.explain.jacobian.effective_filter` (``dose``, ``pixel_size_A``,
    ``include_lowpass``, ``device``...).

    Returns a dict: ``filter`` (the :class:`~temnb.explain.jacobian.EffectiveFilter`), ``frame``,
    ``pixel`` (row, col), ``window`` (r0, r1, c0, c1), ``denoised_frame`` (the whole frame),
    ``noisy_crop``, ``denoised_crop``, ``filter_crops`` (one per input frame, with ``filter_titles``),
    ``limit`` (the symmetric colour limit of the filter panels: the largest |weight| shown),
    ``crop_share`` (the share of ``sum |a|`` inside the crop), ``lines`` and ``text`` (the printed
    numbers).
    """
    from ..explain.jacobian import effective_filter

    half = int(half)
    if half < 1:
        raise ParameterError(f"half = {half!r}: the crops need a half-side of at least 1 px")
    noisy_a, den_a = _array(noisy), _array(denoised)
    if noisy_a.shape != den_a.shape:
        raise ParameterError(f"the noisy data {noisy_a.shape} and the denoised data {den_a.shape} differ in shape",
                             hint="pass temnb.denoise(noisy, model) as the denoised data")
    frame = int(frame) if noisy_a.ndim == 3 else 0
    row, col = int(row), int(col)
    pixel = (frame, row, col) if noisy_a.ndim == 3 else (row, col)
    f = effective_filter(noisy, model, pixel, **options)
    noisy_frame, den_frame = _frame_of(noisy_a, frame), _frame_of(den_a, frame)
    window = _window((row, col), half, noisy_frame.shape)
    r0, r1, c0, c1 = window
    crops = [_crop_weights(w, f.origin, window) for w in np.asarray(f.weights, dtype=np.float64)]
    titles = [f"filter, input frame {k}" + (" (this frame)" if k == frame else f" ({k - frame:+d})")
              for k in f.input_frames] if len(f.input_frames) > 1 else ["effective filter"]
    limit = max((float(np.abs(c).max()) for c in crops), default=0.0)
    total = float(np.abs(f.weights).sum())
    shown = float(sum(np.abs(c).sum() for c in crops))
    state = {
        "filter": f, "frame": frame, "pixel": (row, col), "window": window, "half": half,
        "denoised_frame": den_frame, "noisy_crop": noisy_frame[r0:r1, c0:c1],
        "denoised_crop": den_frame[r0:r1, c0:c1], "filter_crops": crops, "filter_titles": titles,
        "limit": limit if limit > 0 else 1.0, "crop_share": shown / total if total > 0 else 1.0,
        "architecture": f.model.get("architecture", "network"),
    }
    state["lines"] = format_filter(state)
    state["text"] = "\n".join(state["lines"])
    return state


def format_filter(state) -> list[str]:
    """The printed numbers of a :func:`filter_state`: pixel and value, sum, residual, size."""
    f = state["filter"]
    t, r, c = f.pixel
    where = f"frame {t}, row {r}, col {c}"
    size = f"{f.radius_px:.2f} px" + ("" if f.radius_A is None else f" ({f.radius_A:.3f} Å)")
    lines = [
        (f"{state['architecture']} at {where}: denoised {f.value:.4f} e-, filter applied to the input "
         f"{f.linear_part:.4f} e-"),
        f"sum {f.filter_sum:.4f}",
        f"residual {f.residual:.3e} e- (relative {f.relative_residual:.2e})",
        f"size: 90 % of sum |a| within {size}; weight of the pixel itself {f.centre_weight:.4f}",
        (f"crop {2 * state['half'] + 1} px: shows {100 * state['crop_share']:.1f} % of sum |a|; "
         f"colour limits ±{state['limit']:.4f}"),
    ]
    if len(f.input_frames) > 1:
        lines.append("weight per input frame: " + ", ".join(
            f"{k}: {w:.3f}" for k, w in zip(f.input_frames, f.frame_weights)))
    return lines


def new_figure(size=(8.4, 5.6), dpi: int = 80):
    """A bare matplotlib Figure (*size* in inches) with an Agg canvas and constrained layout: no
    pyplot, so no backend ever shows it on its own."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _marker(ax, row, col, colour="#00e5ff", size=8.0):
    ax.plot([col], [row], marker="+", color=colour, ms=size, mew=1.5)


def draw_filter(figure, state, *, panel_size: float = 2.6) -> dict:
    """Draw a :func:`filter_state` into *figure* (cleared first): the whole denoised frame (the panel
    to click, the crop outlined), the noisy and the denoised crop with the pixel marked, then one
    panel per input frame of the filter in a diverging colormap at symmetric limits ``±limit``.
    The figure is resized to fit: *panel_size* inches a panel, ``max(3, input frames)`` across.

    Returns the layout: ``{"frame": (x0, y0, x1, y1)}``, the PNG-pixel box of the whole-frame panel
    (:func:`panel_box`) and its image ``shape``, for :func:`pixel_at`."""
    from matplotlib.patches import Rectangle

    figure.clear()
    crops = state["filter_crops"]
    ncols = max(3, len(crops))
    figure.set_size_inches(panel_size * ncols + 0.6, panel_size * 2 + 0.4)
    grid = figure.add_gridspec(2, ncols)
    row, col = state["pixel"]
    r0, r1, c0, c1 = state["window"]
    extent = (c0 - 0.5, c1 - 0.5, r1 - 0.5, r0 - 0.5)

    whole = figure.add_subplot(grid[0, 0])
    image = state["denoised_frame"]
    lo, hi = np.percentile(image, (0.5, 99.5))
    whole.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
    whole.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, ec="#00e5ff", lw=1))
    _marker(whole, row, col, size=6)
    whole.set_xlim(-0.5, image.shape[1] - 0.5)
    whole.set_ylim(image.shape[0] - 0.5, -0.5)
    whole.set_title(f"denoised, frame {state['frame']}: click a pixel", fontsize=8)

    for k, (key, title) in enumerate((("noisy_crop", "noisy (input)"), ("denoised_crop", "denoised"))):
        ax = figure.add_subplot(grid[0, k + 1])
        crop = state[key]
        lo, hi = float(crop.min()), float(crop.max())
        ax.imshow(crop, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, extent=extent,
                  interpolation="nearest")
        _marker(ax, row, col)
        ax.set_title(f"{title}, row {row}, col {col}", fontsize=8)

    f = state["filter"]
    limit = state["limit"]
    shown = None
    for k, (crop, title) in enumerate(zip(crops, state["filter_titles"])):
        ax = figure.add_subplot(grid[1, k])
        shown = ax.imshow(crop, cmap="RdBu_r", vmin=-limit, vmax=limit, extent=extent, interpolation="nearest")
        _marker(ax, row, col, colour="black", size=6)
        ax.set_title(f"{title}\nsum {float(crop.sum()):.3f}", fontsize=8)
    if shown is not None:
        bar = figure.colorbar(shown, ax=figure.axes[3:], shrink=0.8)
        bar.set_label("weight (e- out per e- in)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    for ax in figure.axes[:3 + len(crops)]:
        ax.tick_params(labelsize=7)
    figure.suptitle(f"effective filter of {state['architecture']} at frame {f.pixel[0]}, row {row}, col {col}:"
                    f" sum {f.filter_sum:.3f}, residual {f.residual:.1e} e-, 90 % within {f.radius_px:.1f} px",
                    fontsize=9)
    figure.canvas.draw()
    return {"frame": panel_box(figure, whole), "shape": image.shape}


# --------------------------------------------------------------------------- clicks
def panel_box(figure, ax) -> tuple:
    """(x0, y0, x1, y1) of the data area of *ax* in the pixels of the figure's PNG (origin top left),
    as :func:`png_bytes` writes it (the figure's dpi, no tight bounding box).  Call after drawing."""
    figure.canvas.draw()
    box = ax.get_window_extent()
    height = figure.bbox.height
    return (float(box.x0), float(height - box.y1), float(box.x1), float(height - box.y0))


def pixel_at(box, shape, x, y):
    """The (row, col) of a frame of *shape* shown by ``imshow`` (default extent) in the PNG box *box*
    under the PNG point (*x*, *y*); None when the point lies outside the panel."""
    x0, y0, x1, y1 = box
    if not (x0 <= x < x1 and y0 <= y < y1):
        return None
    col = int(np.floor((x - x0) / (x1 - x0) * shape[1]))
    row = int(np.floor((y - y0) / (y1 - y0) * shape[0]))
    return min(max(row, 0), shape[0] - 1), min(max(col, 0), shape[1] - 1)


def image_point(event, png_size=None):
    """(x, y) in the PNG's own pixels from an ipyevents mouse event on an ``ipywidgets.Image``.

    ipyevents reports ``dataX``/``dataY`` for images (the natural pixels, whatever size the browser
    draws the image at); otherwise the position relative to the element is scaled by the drawn size
    (``relativeX * width / boundingRectWidth``; *png_size* is (width, height) of the PNG)."""
    if event.get("dataX") is not None and event.get("dataY") is not None:
        return float(event["dataX"]), float(event["dataY"])
    if png_size is None or not event.get("boundingRectWidth") or not event.get("boundingRectHeight"):
        return float(event.get("relativeX", 0.0)), float(event.get("relativeY", 0.0))
    return (float(event["relativeX"]) * png_size[0] / float(event["boundingRectWidth"]),
            float(event["relativeY"]) * png_size[1] / float(event["boundingRectHeight"]))


def png_bytes(figure) -> bytes:
    """The figure as PNG bytes at its own dpi (so that :func:`panel_box` holds for it)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    return buffer.getvalue()


# --------------------------------------------------------------------------- likelihood
def likelihood_setup(noisy, denoised, *, columns=None, **options) -> dict:
    """What stays fixed while the likelihood explorer runs: the columns and their LLR in every frame.

    *noisy*: raw counts, a frame or a movie; *denoised*: the same shape (or one frame for a movie).
    The columns are *columns* or, by default, the LoG blobs of the denoised frame (its time average
    for a movie), found once so that a column keeps its number in every frame; *options* go to
    :func:`temnb.explain.likelihood.llr_over_time` (:func:`~temnb.explain.likelihood.column_llr` for
    one frame): ``vacuum_level``, ``vacuum``, ``thresholds``, ``radius_A``, ``radius_px``,
    ``pixel_size_A``, ``detect``, ``strict``.

    Returns ``positions`` (columns, 2), ``llr`` (columns, frames), ``vacuum_level``, ``thresholds``
    (:class:`~temnb.explain.likelihood.LLRThresholds`, the default the sliders start at),
    ``radius_px``, ``pixel_size_A``, ``n_frames`` and ``strict``, for :func:`likelihood_state`.
    """
    from ..explain.likelihood import column_llr, llr_over_time

    movie = _array(noisy).ndim == 3
    strict = options.get("strict", True)
    if movie:
        series = llr_over_time(noisy, denoised, columns=columns, **options)
        positions, llr = series.positions_px, series.llr
        vacuum_level, thresholds = series.vacuum_level, series.thresholds
        first = column_llr(_frame_signal(noisy, 0), _frame_signal(denoised, 0), columns=positions,
                           vacuum_level=vacuum_level, thresholds=thresholds, radius_A=options.get("radius_A", 0.7),
                           radius_px=options.get("radius_px"), pixel_size_A=options.get("pixel_size_A"),
                           strict=strict)
    else:
        first = column_llr(noisy, denoised, columns=columns, **options)
        positions = np.array([[r["row_px"], r["col_px"]] for r in first.rows], dtype=float).reshape(-1, 2)
        llr, vacuum_level, thresholds = first.llr[:, None], first.vacuum_level, first.thresholds
    return {"positions": np.asarray(positions, dtype=float), "llr": np.asarray(llr, dtype=float),
            "vacuum_level": float(vacuum_level), "thresholds": thresholds, "radius_px": float(first.radius_px),
            "pixel_size_A": first.pixel_size_A, "n_frames": int(_array(noisy).shape[0]) if movie else 1,
            "strict": strict}


def _frame_signal(data, index):
    """Frame *index* of a movie (``inav`` for a signal, so the counts marker stays), or the frame itself."""
    if is_signal(data):
        return data.inav[index] if data.axes_manager.navigation_dimension else data
    array = np.asarray(data)
    return array[index] if array.ndim == 3 else array


def verdicts_for(llr, real: float, spurious: float) -> np.ndarray:
    """'real' (``llr >= real``), 'spurious' (``llr <= spurious``) or 'undetermined', elementwise."""
    llr = np.asarray(llr, dtype=float)
    out = np.full(llr.shape, "undetermined", dtype=object)
    out[llr >= real] = "real"
    out[llr <= spurious] = "spurious"
    return out


def clamp_thresholds(real: float, spurious: float, moved: str = "real") -> tuple[float, float]:
    """(real, spurious) with ``real >= spurious``: the threshold not *moved* gives way."""
    real, spurious = float(real), float(spurious)
    if real < spurious:
        if moved == "real":
            spurious = real
        else:
            real = spurious
    return real, spurious


def nearest_column(positions, row: float, col: float, max_distance: float):
    """Index of the column nearest to (*row*, *col*), or None when none lies within *max_distance* px."""
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    if not len(positions):
        return None
    d = np.hypot(positions[:, 0] - row, positions[:, 1] - col)
    k = int(np.argmin(d))
    return k if d[k] <= max_distance else None


def likelihood_state(noisy, denoised, setup, frame: int = 0, *, real=None, spurious=None, column=0) -> dict:
    """Everything the likelihood explorer shows for one frame, one pair of thresholds and one column.

    The map is :func:`temnb.explain.likelihood.column_llr` of frame *frame* at the fixed columns of
    *setup* (:func:`likelihood_setup`), with the thresholds *real* / *spurious* (default: those of
    the setup: the paper's, carried to this vacuum level and |R|); *column* is the column whose LLR
    over time is shown (None: none).

    Returns a dict: ``result`` (:class:`~temnb.explain.likelihood.ColumnLLR`), ``frame``,
    ``denoised_frame``, ``map`` (ndarray, NaN outside the regions), ``positions``, ``verdicts`` (this
    frame), ``counts`` (verdict -> number), ``real``, ``spurious``, ``column``, ``series_llr`` and
    ``series_verdicts`` (the column's, over the frames), ``limit`` (symmetric colour limit of the map),
    ``lines`` and ``text``.
    """
    from ..explain.likelihood import column_llr

    n = setup["n_frames"]
    frame = int(frame)
    if not 0 <= frame < n:
        raise ParameterError(f"frame index {frame} is outside the movie (0..{n - 1})")
    real = setup["thresholds"].real if real is None else float(real)
    spurious = setup["thresholds"].spurious if spurious is None else float(spurious)
    real, spurious = clamp_thresholds(real, spurious)
    den_frame = _frame_signal(denoised, frame if _array(denoised).ndim == 3 else 0)
    result = column_llr(_frame_signal(noisy, frame), den_frame, columns=setup["positions"],
                        vacuum_level=setup["vacuum_level"], thresholds=(real, spurious), radius_px=setup["radius_px"],
                        pixel_size_A=setup["pixel_size_A"], strict=setup["strict"])
    data = result.map.data if is_signal(result.map) else np.asarray(result.map)
    finite = np.abs(data[np.isfinite(data)])
    n_columns = len(setup["positions"])
    if column is not None and not 0 <= int(column) < n_columns:
        column = None
    state = {
        "result": result, "frame": frame, "n_frames": n, "denoised_frame": _frame_of(_array(den_frame), 0),
        "map": np.asarray(data, dtype=float), "positions": setup["positions"],
        "verdicts": result.verdicts, "counts": result.counts(), "real": real, "spurious": spurious,
        "column": None if column is None else int(column), "vacuum_level": setup["vacuum_level"],
        "limit": float(finite.max()) if finite.size and finite.max() > 0 else 1.0,
        "series_llr": None, "series_verdicts": None, "radius_px": setup["radius_px"],
    }
    if state["column"] is not None:
        llr = setup["llr"][state["column"]]
        state["series_llr"] = llr
        state["series_verdicts"] = verdicts_for(llr, real, spurious)
    state["lines"] = format_likelihood(state)
    state["text"] = "\n".join(state["lines"])
    return state


def format_likelihood(state) -> list[str]:
    """The printed numbers of a :func:`likelihood_state`: the tally of the frame and the chosen column."""
    c = state["counts"]
    lines = [(f"frame {state['frame']}: {c['real']} real, {c['undetermined']} undetermined, {c['spurious']} spurious "
              f"of {len(state['verdicts'])} columns"),
             (f"thresholds: real >= {state['real']:.4g}, spurious <= {state['spurious']:.4g}; "
              f"vacuum {state['vacuum_level']:.4g} e-/px, region radius {state['radius_px']:.2f} px")]
    k = state["column"]
    if not len(state["verdicts"]):
        lines.append("no columns found on the denoised frame (LoG blobs above the noise of its flattest part): "
                     "give columns=[(row, col), ...], or detect={'polarity': 'auto'} for dark columns")
        return lines
    if k is None:
        lines.append("no column chosen: click one on the map")
        return lines
    row = state["result"].rows[k]
    verdicts = list(state["series_verdicts"])
    n = len(verdicts)
    lines.append(f"column {k} at row {row['row_px']:.1f}, col {row['col_px']:.1f}: LLR {row['llr']:.4g} "
                 f"({row['verdict']}); λc {row['lambda_c']:.4g}, x̄_R {row['mean_counts']:.4g}, |R| {row['region_px']}")
    lines.append(f"column {k} over {n} frame{'s' if n != 1 else ''}: real {verdicts.count('real')}, "
                 f"undetermined {verdicts.count('undetermined')}, spurious {verdicts.count('spurious')}")
    return lines


def draw_likelihood(figure, state) -> dict:
    """Draw a :func:`likelihood_state` into *figure* (cleared first): the denoised frame with the LLR
    map over it (diverging colormap, symmetric limits) and each column marked in its verdict's colour
    (the chosen one circled), beside the chosen column's LLR over the frames with the thresholds.

    Returns the layout (``{"frame": box, "shape": shape}``) for :func:`pixel_at`."""
    from matplotlib.lines import Line2D

    figure.clear()
    grid = figure.add_gridspec(1, 2, width_ratios=(1.0, 1.1))
    ax = figure.add_subplot(grid[0, 0])
    image = state["denoised_frame"]
    lo, hi = np.percentile(image, (0.5, 99.5))
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
    limit = state["limit"]
    shown = ax.imshow(np.ma.masked_invalid(state["map"]), cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.6,
                      interpolation="nearest")
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    bar = figure.colorbar(shown, ax=ax, shrink=0.8)
    bar.set_label("LLR per pixel (nats)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    pos = state["positions"]
    for k, ((r, c), verdict) in enumerate(zip(pos, state["verdicts"])):
        ax.plot([c], [r], "o", ms=4, color=VERDICT_COLOURS[verdict], mec="black", mew=0.5)
    if state["column"] is not None:
        r, c = pos[state["column"]]
        ax.plot([c], [r], "o", ms=14, mfc="none", mec="#00e5ff", mew=1.5)
    ax.set_title(f"LLR map, frame {state['frame']}: click a column", fontsize=8)
    ax.tick_params(labelsize=7)
    handles = [Line2D([], [], ls="", marker="o", color=col, mec="black", label=v) for v, col in VERDICT_COLOURS.items()]
    ax.legend(handles=handles, fontsize=6, loc="lower right", framealpha=0.7)

    right = figure.add_subplot(grid[0, 1])
    if state["series_llr"] is not None:
        t = np.arange(len(state["series_llr"]))
        right.plot(t, state["series_llr"], "-", color="0.5", lw=1)
        for verdict, colour in VERDICT_COLOURS.items():
            sel = np.asarray(state["series_verdicts"]) == verdict
            right.plot(t[sel], state["series_llr"][sel], "o", ms=4, color=colour, label=verdict)
        right.axvline(state["frame"], color="#00e5ff", lw=1)
        right.set_title(f"column {state['column']}: LLR over time", fontsize=8)
    else:
        right.set_title("no columns found" if not len(state["verdicts"]) else "no column chosen", fontsize=8)
    right.axhline(state["real"], color=VERDICT_COLOURS["real"], ls="--", lw=1)
    right.axhline(state["spurious"], color=VERDICT_COLOURS["spurious"], ls="--", lw=1)
    right.set_xlabel("frame", fontsize=8)
    right.set_ylabel("LLR per pixel (nats)", fontsize=8)
    right.tick_params(labelsize=7)
    c = state["counts"]
    figure.suptitle(f"frame {state['frame']}: {c['real']} real, {c['undetermined']} undetermined, "
                    f"{c['spurious']} spurious (real >= {state['real']:.3g}, spurious <= {state['spurious']:.3g})",
                    fontsize=9)
    figure.canvas.draw()
    return {"frame": panel_box(figure, ax), "shape": image.shape}
