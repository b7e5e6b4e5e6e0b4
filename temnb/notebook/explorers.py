"""Explorers of what a denoiser did: thin ipywidgets shells over :mod:`temnb.notebook.explorer_views`.

:class:`EffectiveFilterExplorer` shows a network's effective filter at a clicked (or typed) pixel
(:mod:`temnb.explain.jacobian`); :class:`LikelihoodExplorer` the Poisson log-likelihood ratio of
each column and the clicked column's LLR over time (:mod:`temnb.explain.likelihood`).  Each widget
only wires its controls to the pure state and drawing functions and redraws; every number it prints
can be computed without it (tests do exactly that, and simulate clicks by calling the handlers).

The widget stack, chosen deliberately: a matplotlib figure rendered to a PNG in an
``ipywidgets.Image`` (as :class:`temnb.notebook.widgets.MovieViewer` does) and clicks on that
image through ``ipyevents`` -- not ``ipympl``.

* Headless runs: papermill and nbval execute the notebooks without a front end.  An Image's value
  is plain widget state, computed in the kernel when the cell runs (no front end needs to ask for
  a draw, as an ipympl canvas does), and it is stored with the notebook's widget state, so an
  executed notebook shows the picture without a kernel; output capture into an ``Output`` widget
  is what made headless runs of the movie viewer hang now and then.
* Browsers: JupyterLab and Voilà show an Image the same way, and ipyevents (a small pure
  front-end extension, ``pip install ipyevents`` ships it for JupyterLab >= 3, Notebook 7 and
  Voilà) reports the click in the image's own pixels whatever size the page draws it at; the
  pixel under the click follows from the panel's box in the PNG (:func:`explorer_views.pixel_at`).
  ipympl would give matplotlib's own event loop instead, with zoom and pan we do not need, and a
  second widget manager extension for Voilà to load.
* Tests: the PNG bytes, the state and the printed text are plain Python values, so a click or a
  slider move is simulated by calling the handler or setting the slider's value.

Without ipyevents (an old environment) the explorers still work from their row/col boxes and
sliders; ``clicks_enabled`` says whether clicks reach them.
"""
from __future__ import annotations

import html

import ipywidgets as widgets

from . import explorer_views as views

__all__ = ["EffectiveFilterExplorer", "LikelihoodExplorer", "effective_filter_explorer", "likelihood_explorer"]


def _click_source(image, handler):
    """An ipyevents Event reporting clicks on *image* to *handler*; None when ipyevents is missing."""
    try:
        from ipyevents import Event
    except ImportError:  # the explorers still work from their boxes and sliders
        return None
    event = Event(source=image, watched_events=["click"], prevent_default_action=True)
    event.on_dom_event(handler)
    return event


def _png_size(png: bytes):
    """(width, height) from a PNG's IHDR chunk."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


class _ClickableFigure(widgets.VBox):
    """A PNG of a figure in an Image, a readout below it, and clicks turned into frame pixels."""

    css_name = "temnb-explorer"

    def _setup_figure(self, figure, controls):
        self.figure = figure
        self.image = widgets.Image(format="png")
        self.image.add_class(f"{self.css_name}-image")
        self.readout = widgets.HTML()
        self.readout.add_class(f"{self.css_name}-readout")
        self.layout_box = None
        self.state = None
        self.text = ""
        self.events = _click_source(self.image, self._on_click)
        self.clicks_enabled = self.events is not None
        super().__init__([*controls, self.image, self.readout])
        self.add_class(self.css_name)

    def _show(self, draw, state):
        self.layout_box = draw(self.figure, state)
        self.state = state
        self.text = state["text"]
        self.image.value = views.png_bytes(self.figure)
        self.readout.value = f'<pre style="font-size:11px;line-height:1.3">{html.escape(self.text)}</pre>'

    def pixel_under(self, x, y):
        """(row, col) of the frame under PNG point (*x*, *y*), or None outside the frame panel."""
        return views.pixel_at(self.layout_box["frame"], self.layout_box["shape"], x, y)

    def _on_click(self, event):
        x, y = views.image_point(event, _png_size(self.image.value))
        pixel = self.pixel_under(x, y)
        if pixel is not None:
            self.click(*pixel)

    def _repr_png_(self):  # a static picture where widgets cannot be shown (nbconvert without state)
        return bytes(self.image.value)   # ipywidgets 8 holds a memoryview, which IPython refuses


class EffectiveFilterExplorer(_ClickableFigure):
    """Click a pixel of the denoised frame (or type its row and column): the noisy and denoised crops
    around it and the network's effective filter there, one panel per input frame for a video
    network, with its sum, residual and size printed.  A frame slider moves through the movie.

    >>> explorer = EffectiveFilterExplorer(model, movie)        # doctest: +SKIP
    >>> explorer                                                # doctest: +SKIP

    *model*: a temnb network (eval mode) or model folder; *movie*: its input, a frame or a movie of
    counts (array or signal); *denoised*: ``temnb.denoise(movie, model)`` (computed here when not
    given); *pixel*: the first (row, col) shown (default the frame's centre); *half*: half-side of
    the crops (px).  Other keyword arguments go to :func:`temnb.explain.jacobian.effective_filter`
    (``dose``, ``pixel_size_A``, ``include_lowpass``, ``device``...).
    """

    css_name = "temnb-filter"

    def __init__(self, model, movie, *, denoised=None, frame: int = 0, pixel=None, half: int = views.DEFAULT_HALF,
                 panel_size: float = 2.6, dpi: int = 80, device: str = "cpu", **options):
        import numpy as np

        self.network, self.movie, self.half = model, movie, int(half)
        self.options = {"device": device, **options}
        if denoised is None:
            from ..nets.inference import denoise

            denoise_options = {k: v for k, v in self.options.items() if k in ("dose", "pixel_size_A", "device")}
            denoised = denoise(movie, model, progress=False, **denoise_options)
        self.denoised = denoised
        shape = np.shape(views._array(movie))
        rows, cols = shape[-2:]
        last = shape[0] - 1 if len(shape) == 3 else 0
        row, col = pixel if pixel is not None else (rows // 2, cols // 2)
        self.frame_slider = widgets.IntSlider(value=int(frame), min=0, max=max(last, 0), description="frame",
                                              continuous_update=False, disabled=last == 0)
        self.row_box = widgets.BoundedIntText(value=int(row), min=0, max=rows - 1, description="row",
                                              layout=widgets.Layout(width="150px"))
        self.col_box = widgets.BoundedIntText(value=int(col), min=0, max=cols - 1, description="col",
                                              layout=widgets.Layout(width="150px"))
        for control in (self.frame_slider, self.row_box, self.col_box):
            control.add_class(f"{self.css_name}-{control.description}")
        self._holding = False
        self.panel_size = panel_size
        figure = views.new_figure((panel_size * 3 + 0.6, panel_size * 2 + 0.4), dpi)
        self._setup_figure(figure, [widgets.HBox([self.frame_slider, self.row_box, self.col_box])])
        for control in (self.frame_slider, self.row_box, self.col_box):
            control.observe(self._on_change, names="value")
        self._redraw()

    def _on_change(self, _change):
        if not self._holding:
            self._redraw()

    def click(self, row: int, col: int):
        """Show the filter at (*row*, *col*) of the current frame (what a click on the frame does)."""
        self._holding = True
        try:
            self.row_box.value, self.col_box.value = int(row), int(col)
        finally:
            self._holding = False
        self._redraw()

    def _redraw(self):
        state = views.filter_state(self.network, self.movie, self.denoised, self.frame_slider.value,
                                   self.row_box.value, self.col_box.value, half=self.half, **self.options)
        self._show(lambda figure, s: views.draw_filter(figure, s, panel_size=self.panel_size), state)


class LikelihoodExplorer(_ClickableFigure):
    """The Poisson LLR map of a denoised frame with each column's verdict, threshold sliders, a frame
    slider, and the LLR over time of a clicked column.

    >>> explorer = LikelihoodExplorer(noisy_movie, denoised_movie)   # doctest: +SKIP

    *noisy*: raw counts (a frame or a movie); *denoised*: the same shape (or one frame); *columns*:
    (n, 2) pixel positions or a ColumnSet (default: detected once on the denoised frame / time
    average).  Other keyword arguments go to :func:`temnb.explain.likelihood.llr_over_time`
    (``vacuum_level``, ``thresholds``, ``radius_A``, ``radius_px``, ``pixel_size_A``, ``detect``,
    ``strict``).  The sliders start at those thresholds (default: the paper's, carried to this
    vacuum level and region size).
    """

    css_name = "temnb-llr"

    def __init__(self, noisy, denoised, *, columns=None, frame: int = 0, column: int = 0, panel_size: float = 3.6,
                 dpi: int = 80, **options):
        import numpy as np

        self.noisy, self.denoised = noisy, denoised
        self.setup = views.likelihood_setup(noisy, denoised, columns=columns, **options)
        th = self.setup["thresholds"]
        llr = self.setup["llr"]
        finite = np.abs(llr[np.isfinite(llr)])
        # beyond every LLR of the movie, so that the sliders can call every column real or spurious
        span = 1.2 * max(3 * max(abs(th.real), abs(th.spurious)), float(finite.max()) if finite.size else 0.0, 1e-3)
        step = span / 500
        last = self.setup["n_frames"] - 1
        self.frame_slider = widgets.IntSlider(value=int(frame), min=0, max=max(last, 0), description="frame",
                                              continuous_update=False, disabled=last == 0)
        self.real_slider = widgets.FloatSlider(value=th.real, min=-span, max=span, step=step, description="real ≥",
                                               continuous_update=False, readout_format=".4f")
        self.spurious_slider = widgets.FloatSlider(value=th.spurious, min=-span, max=span, step=step,
                                                   description="spurious ≤", continuous_update=False,
                                                   readout_format=".4f")
        for control, name in ((self.frame_slider, "frame"), (self.real_slider, "real"),
                              (self.spurious_slider, "spurious")):
            control.add_class(f"{self.css_name}-{name}")
        n_columns = len(self.setup["positions"])
        self.column = int(column) if n_columns and 0 <= int(column) < n_columns else None
        self._holding = False
        figure = views.new_figure((panel_size * 2.3, panel_size + 0.3), dpi)
        self._setup_figure(figure, [widgets.HBox([self.frame_slider]),
                                    widgets.HBox([self.real_slider, self.spurious_slider])])
        self.frame_slider.observe(self._on_change, names="value")
        self.real_slider.observe(lambda change: self._on_threshold("real"), names="value")
        self.spurious_slider.observe(lambda change: self._on_threshold("spurious"), names="value")
        self._redraw()

    def _on_change(self, _change):
        if not self._holding:
            self._redraw()

    def _on_threshold(self, moved):
        if self._holding:
            return
        real, spurious = views.clamp_thresholds(self.real_slider.value, self.spurious_slider.value, moved)
        self._holding = True
        try:
            self.real_slider.value, self.spurious_slider.value = real, spurious
        finally:
            self._holding = False
        self._redraw()

    def click(self, row: float, col: float):
        """Choose the column nearest to (*row*, *col*) (within three region radii; else keep the
        current one) and show its LLR over time: what a click on the map does."""
        k = views.nearest_column(self.setup["positions"], row, col, 3 * self.setup["radius_px"])
        if k is not None:
            self.column = k
            self._redraw()

    def select_column(self, k: int):
        """Show column *k*'s LLR over time."""
        self.column = int(k)
        self._redraw()

    def _redraw(self):
        state = views.likelihood_state(self.noisy, self.denoised, self.setup, self.frame_slider.value,
                                       real=self.real_slider.value, spurious=self.spurious_slider.value,
                                       column=self.column)
        self._show(views.draw_likelihood, state)


def effective_filter_explorer(model, movie, **kwargs) -> EffectiveFilterExplorer:
    """Build an :class:`EffectiveFilterExplorer` (click a pixel: the network's filter there)."""
    return EffectiveFilterExplorer(model, movie, **kwargs)


def likelihood_explorer(noisy, denoised, **kwargs) -> LikelihoodExplorer:
    """Build a :class:`LikelihoodExplorer` (the LLR map, its verdicts, a column over time)."""
    return LikelihoodExplorer(noisy, denoised, **kwargs)
