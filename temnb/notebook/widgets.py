"""Thin ipywidgets shells over the pure functions in :mod:`temnb.core.plotting`.

Each widget only wires sliders to a pure function and redraws; every number it
shows can be computed without it (tests do exactly that).

The picture is a PNG in an ``ipywidgets.Image`` rather than a figure displayed
into an ``Output`` widget: output capture depends on the front end (and made
headless papermill runs hang now and then), while an image value is plain
widget state that every front end shows the same way.
"""
from __future__ import annotations

import io

import ipywidgets as widgets

from ..core import plotting


class MovieViewer(widgets.VBox):
    """Frame slider (and frames-to-average slider) showing raw beside processed.

    >>> viewer = MovieViewer(raw_movie, denoised_movie)   # doctest: +SKIP
    >>> viewer                                            # doctest: +SKIP
    """

    def __init__(self, raw, processed=None, *, titles=("raw", "processed"), max_average: int = 16,
                 panel_size: float = 4.0, dpi: int = 80):
        from matplotlib.figure import Figure

        self.raw, self.processed, self.titles, self.dpi = raw, processed, titles, dpi
        last = plotting.n_frames(raw) - 1
        self.frame_slider = widgets.IntSlider(value=0, min=0, max=max(last, 0), description="frame",
                                              continuous_update=False, disabled=last == 0)
        self.average_slider = widgets.IntSlider(value=1, min=1, max=max(1, min(max_average, last + 1)),
                                                description="average", continuous_update=False,
                                                disabled=last == 0)
        n_panels = 1 if processed is None else 2
        # A bare Figure (not pyplot) so no backend ever shows it on its own.
        self.figure = Figure(figsize=(panel_size * n_panels, panel_size), dpi=dpi)
        self.axes = self.figure.subplots(1, n_panels, squeeze=False)
        self.image = widgets.Image(format="png")
        self.state = None
        self.frame_slider.observe(self._on_change, names="value")
        self.average_slider.observe(self._on_change, names="value")
        super().__init__([widgets.HBox([self.frame_slider, self.average_slider]), self.image])
        self._redraw()

    def _on_change(self, _change):
        self._redraw()

    def _redraw(self):
        self.state = plotting.viewer_state(self.raw, self.processed, self.frame_slider.value,
                                           self.average_slider.value, titles=self.titles)
        plotting.draw_state(self.axes[0], self.state)
        self.figure.tight_layout()
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=self.dpi)
        self.image.value = buffer.getvalue()


def movie_viewer(raw, processed=None, **kwargs) -> MovieViewer:
    """Build a :class:`MovieViewer` (raw beside processed, frame and averaging sliders)."""
    return MovieViewer(raw, processed, **kwargs)
