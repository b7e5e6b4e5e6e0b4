"""The explorers of what a denoiser did (temnb.notebook.explorers): the pure state and drawing
functions (temnb.notebook.explorer_views) against temnb.explain computed directly, and the widgets'
callbacks -- a click or a slider move simulated in Python -- changing state, picture and printed numbers.

Tiny seeded networks on 32 x 32 frames, one torch thread: seconds in all."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from temnb.core.errors import ParameterError
from temnb.explain.jacobian import effective_filter
from temnb.explain.likelihood import column_llr, llr_over_time
from temnb.nets.config import DnCNNConfig, UDVDConfig
from temnb.nets.registry import build_model
from temnb.notebook import explorer_views as views
from temnb.notebook import explorers
from temnb.simulation import synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DOSE = 3.0


@pytest.fixture(scope="module")
def movie():
    return np.random.default_rng(0).poisson(DOSE, (6, 32, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def dncnn():
    return build_model(DnCNNConfig(depth=3, channels=4), seed=0).eval()


@pytest.fixture(scope="module")
def udvd():
    return build_model(UDVDConfig(channels=4, n_scales=2, blocks_per_scale=1), seed=0).eval()


@pytest.fixture(scope="module")
def counted():
    """A counted movie with columns (signals, 0.122 Å pixels) and its truth as the 'denoised' movie."""
    return synthetic.counted_movie(4, (48, 48), dose=2.0, seed=1)


def _denoised(movie, net):
    from temnb.nets.inference import denoise

    return denoise(movie, net, dose=DOSE, device="cpu", progress=False, threads=1)


# --------------------------------------------------------------------------- pure: clicks
def test_pixel_at_maps_the_panel_box_to_frame_pixels():
    box = (10.0, 20.0, 110.0, 70.0)          # 100 x 50 PNG px showing a 25 x 50 frame (rows x cols)
    assert views.pixel_at(box, (25, 50), 10.0, 20.0) == (0, 0)
    assert views.pixel_at(box, (25, 50), 109.9, 69.9) == (24, 49)
    assert views.pixel_at(box, (25, 50), 10 + 2 * 7 + 1, 20 + 2 * 3 + 1) == (3, 7)
    assert views.pixel_at(box, (25, 50), 9.0, 30.0) is None and views.pixel_at(box, (25, 50), 50.0, 71.0) is None


def test_image_point_prefers_natural_pixels_and_else_scales_the_drawn_size():
    assert views.image_point({"dataX": 12, "dataY": 34, "relativeX": 1, "relativeY": 2}) == (12.0, 34.0)
    event = {"relativeX": 50, "relativeY": 25, "boundingRectWidth": 200, "boundingRectHeight": 100}
    assert views.image_point(event, (400, 200)) == (100.0, 50.0)


def test_thresholds_never_cross_and_verdicts_follow_them():
    assert views.clamp_thresholds(0.01, -0.01) == (0.01, -0.01)
    assert views.clamp_thresholds(-0.02, -0.01, "real") == (-0.02, -0.02)
    assert views.clamp_thresholds(0.01, 0.03, "spurious") == (0.03, 0.03)
    assert list(views.verdicts_for([0.02, 0.0, -0.02, np.nan], 0.01, -0.01)) == [
        "real", "undetermined", "spurious", "undetermined"]
    assert views.nearest_column([[5, 5], [20, 20]], 18, 19, 4) == 1
    assert views.nearest_column([[5, 5], [20, 20]], 12, 12, 4) is None


# --------------------------------------------------------------------------- pure: effective filter
def test_filter_state_is_the_jacobian_row_cropped(movie, dncnn):
    denoised = _denoised(movie, dncnn)
    state = views.filter_state(dncnn, movie, denoised, 2, 10, 20, half=5, dose=DOSE, device="cpu")
    direct = effective_filter(movie, dncnn, (2, 10, 20), dose=DOSE, device="cpu")
    assert state["window"] == (5, 16, 15, 26)
    np.testing.assert_allclose(state["filter_crops"][0], direct.weights[0, 5:16, 15:26], atol=1e-7)
    np.testing.assert_allclose(state["noisy_crop"], movie[2, 5:16, 15:26])
    np.testing.assert_allclose(state["denoised_crop"], denoised[2, 5:16, 15:26])
    assert state["limit"] == pytest.approx(np.abs(direct.weights[0, 5:16, 15:26]).max())
    # the printed numbers are the filter's
    assert f"sum {direct.filter_sum:.4f}" in state["text"]
    assert f"residual {direct.residual:.3e}" in state["text"]
    assert f"within {direct.radius_px:.2f} px" in state["text"]
    assert "frame 2, row 10, col 20" in state["text"]
    # a bias-free DnCNN is exactly its local filter; its 7 px reach fits the 11 px crop
    assert abs(direct.residual) < 1e-4 and state["crop_share"] == pytest.approx(1.0)


def test_filter_state_at_the_edge_clips_the_crop(movie, dncnn):
    state = views.filter_state(dncnn, movie[0], _denoised(movie[0], dncnn), 0, 0, 31, half=4, dose=DOSE)
    assert state["window"] == (0, 5, 27, 32) and state["noisy_crop"].shape == (5, 5)
    assert state["filter"].pixel == (0, 0, 31)


def test_a_video_network_gets_one_panel_per_input_frame(movie, udvd):
    denoised = _denoised(movie, udvd)
    state = views.filter_state(udvd, movie, denoised, 3, 16, 16, half=6, dose=DOSE)
    assert state["filter"].input_frames == (1, 2, 3, 4, 5)
    assert len(state["filter_crops"]) == 5 and "(this frame)" in state["filter_titles"][2]
    assert "weight per input frame" in state["text"]
    figure = views.new_figure()
    layout = views.draw_filter(figure, state)
    filters = [ax for ax in figure.axes if ax.images and ax.images[0].get_cmap().name == "RdBu_r"]
    assert len(filters) == 5
    for ax in filters:        # diverging colormap at symmetric limits
        assert ax.images[0].get_clim() == (-state["limit"], state["limit"])
    assert layout["shape"] == (32, 32)


def test_draw_filter_marks_the_pixel_and_its_box_maps_back(movie, dncnn):
    state = views.filter_state(dncnn, movie, _denoised(movie, dncnn), 0, 9, 23, half=5, dose=DOSE)
    figure = views.new_figure()
    layout = views.draw_filter(figure, state)
    png = views.png_bytes(figure)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    x0, y0, x1, y1 = layout["frame"]
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    # the centre of pixel (9, 23) in the PNG maps back to it
    x, y = x0 + (23.5 / 32) * (x1 - x0), y0 + (9.5 / 32) * (y1 - y0)
    assert views.pixel_at(layout["frame"], layout["shape"], x, y) == (9, 23)
    marker = figure.axes[1].lines[0]
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (23, 9)


# --------------------------------------------------------------------------- widget: effective filter
def test_filter_explorer_follows_clicks_boxes_and_the_frame_slider(movie, dncnn):
    explorer = explorers.effective_filter_explorer(dncnn, movie, dose=DOSE, half=5, pixel=(4, 4))
    assert explorer.state["filter"].pixel == (0, 4, 4)
    first_png, first_text = explorer.image.value, explorer.text
    # a click on the frame panel at the centre of pixel (20, 12)
    x0, y0, x1, y1 = explorer.layout_box["frame"]
    explorer._on_click({"dataX": x0 + (12.5 / 32) * (x1 - x0), "dataY": y0 + (20.5 / 32) * (y1 - y0)})
    assert (explorer.row_box.value, explorer.col_box.value) == (20, 12)
    expected = effective_filter(movie, dncnn, (0, 20, 12), dose=DOSE, device="cpu")
    assert explorer.state["filter"].pixel == (0, 20, 12)
    assert f"sum {expected.filter_sum:.4f}" in explorer.text and explorer.text != first_text
    assert explorer.image.value != first_png
    assert "sum " in explorer.readout.value and "row 20, col 12" in explorer.readout.value
    # a click outside the frame panel changes nothing
    explorer._on_click({"dataX": 1, "dataY": 1})
    assert explorer.state["filter"].pixel == (0, 20, 12)
    # the frame slider, then a typed column
    explorer.frame_slider.value = 4
    assert explorer.state["filter"].pixel == (4, 20, 12)
    explorer.col_box.value = 30
    expected = effective_filter(movie, dncnn, (4, 20, 30), dose=DOSE, device="cpu")
    assert explorer.state["filter"].pixel == (4, 20, 30)
    assert f"sum {expected.filter_sum:.4f}" in explorer.text
    assert explorer.frame_slider.max == 5 and explorer.clicks_enabled in (True, False)


def test_filter_explorer_on_one_frame_disables_the_frame_slider(movie, dncnn):
    explorer = explorers.EffectiveFilterExplorer(dncnn, movie[0], dose=DOSE, half=4)
    assert explorer.frame_slider.disabled and explorer.state["filter"].pixel == (0, 16, 16)


def test_filter_explorer_refuses_a_pixel_outside_the_frame(movie, dncnn):
    explorer = explorers.EffectiveFilterExplorer(dncnn, movie[0], dose=DOSE, half=4)
    with pytest.raises(ParameterError):
        views.filter_state(dncnn, movie[0], explorer.denoised, 0, 40, 3, dose=DOSE)


# --------------------------------------------------------------------------- pure: likelihood
COLUMNS = [[12.0, 12.0], [12.0, 36.0], [36.0, 12.0], [36.0, 36.0], [24.0, 24.0]]


def test_likelihood_state_is_column_llr_of_the_frame(counted):
    noisy, clean = counted
    setup = views.likelihood_setup(noisy, clean, columns=COLUMNS, vacuum_level=2.0)
    series = llr_over_time(noisy, clean, columns=COLUMNS, vacuum_level=2.0)
    np.testing.assert_allclose(setup["llr"], series.llr)
    state = views.likelihood_state(noisy, clean, setup, 2, real=0.01, spurious=-0.01, column=1)
    direct = column_llr(noisy.inav[2], clean.inav[2], columns=COLUMNS, vacuum_level=2.0, thresholds=(0.01, -0.01))
    np.testing.assert_allclose(state["result"].llr, direct.llr)
    assert state["verdicts"] == direct.verdicts
    np.testing.assert_allclose(state["series_llr"], series.llr[1])
    np.testing.assert_allclose(state["result"].llr, series.llr[:, 2])
    assert f"LLR {direct.rows[1]['llr']:.4g}" in state["text"]
    c = direct.counts()
    assert f"frame 2: {c['real']} real, {c['undetermined']} undetermined, {c['spurious']} spurious" in state["text"]
    figure = views.new_figure()
    layout = views.draw_likelihood(figure, state)
    assert layout["shape"] == (48, 48)
    assert figure.axes[0].images[1].get_clim() == (-state["limit"], state["limit"])


def test_moving_a_threshold_moves_the_verdicts(counted):
    noisy, clean = counted
    setup = views.likelihood_setup(noisy, clean, columns=COLUMNS, vacuum_level=2.0)
    llr = setup["llr"][:, 0]
    low = views.likelihood_state(noisy, clean, setup, 0, real=llr.min() - 1, spurious=llr.min() - 2)
    assert low["counts"]["real"] == len(COLUMNS)
    high = views.likelihood_state(noisy, clean, setup, 0, real=llr.max() + 2, spurious=llr.max() + 1)
    assert high["counts"]["spurious"] == len(COLUMNS)


def test_likelihood_setup_on_one_frame(counted):
    noisy, clean = counted
    setup = views.likelihood_setup(noisy.inav[0], clean.inav[0], columns=COLUMNS, vacuum_level=2.0)
    direct = column_llr(noisy.inav[0], clean.inav[0], columns=COLUMNS, vacuum_level=2.0)
    assert setup["n_frames"] == 1 and setup["llr"].shape == (len(COLUMNS), 1)
    np.testing.assert_allclose(setup["llr"][:, 0], direct.llr)
    assert setup["thresholds"].real == pytest.approx(direct.thresholds.real)
    state = views.likelihood_state(noisy.inav[0], clean.inav[0], setup, 0, column=2)
    assert state["verdicts"] == direct.verdicts and "over 1 frame:" in state["text"]


# --------------------------------------------------------------------------- widget: likelihood
def test_likelihood_explorer_follows_clicks_and_sliders(counted):
    noisy, clean = counted
    explorer = explorers.likelihood_explorer(noisy, clean, columns=COLUMNS, vacuum_level=2.0)
    assert explorer.state["column"] == 0 and explorer.state["frame"] == 0
    assert explorer.real_slider.value == pytest.approx(explorer.setup["thresholds"].real)
    first_png = explorer.image.value
    # click near column 3 at (36, 36): its LLR over time is shown
    x0, y0, x1, y1 = explorer.layout_box["frame"]
    explorer._on_click({"dataX": x0 + (35.5 / 48) * (x1 - x0), "dataY": y0 + (37.5 / 48) * (y1 - y0)})
    assert explorer.state["column"] == 3 and explorer.image.value != first_png
    series = llr_over_time(noisy, clean, columns=COLUMNS, vacuum_level=2.0)
    np.testing.assert_allclose(explorer.state["series_llr"], series.llr[3])
    assert f"column 3 at row 36.0, col 36.0: LLR {series.llr[3, 0]:.4g}" in explorer.text
    # the frame slider
    explorer.frame_slider.value = 2
    assert f"LLR {series.llr[3, 2]:.4g}" in explorer.text and explorer.state["frame"] == 2
    # the thresholds: everything real, then everything spurious; they never cross
    explorer.real_slider.value = explorer.real_slider.min      # the spurious threshold gives way
    assert explorer.spurious_slider.value == explorer.real_slider.min
    assert explorer.state["counts"]["real"] == len(COLUMNS)
    assert f"frame 2: {len(COLUMNS)} real, 0 undetermined, 0 spurious" in explorer.text
    explorer.spurious_slider.value = explorer.spurious_slider.max
    assert explorer.real_slider.value == explorer.spurious_slider.value == explorer.spurious_slider.max
    assert explorer.state["counts"]["spurious"] == len(COLUMNS)
    assert "spurious 4" in explorer.text  # column 3 over the 4 frames


def test_a_click_far_from_every_column_keeps_the_choice(counted):
    noisy, clean = counted
    explorer = explorers.LikelihoodExplorer(noisy, clean, columns=[[10.0, 10.0]], vacuum_level=2.0, radius_px=2.0)
    explorer.click(40, 40)
    assert explorer.state["column"] == 0
    explorer.select_column(0)
    assert "column 0 at row 10.0" in explorer.text


def test_explorers_show_a_still_picture_where_no_widget_can_be_drawn(movie, dncnn, counted):
    """IPython's PNG formatter takes the explorers' picture (bytes, not ipywidgets' memoryview): what
    nbconvert and papermill keep when no front end draws the widget."""
    import warnings

    from IPython.core.formatters import PNGFormatter

    noisy, denoised = counted
    shown = (explorers.EffectiveFilterExplorer(dncnn, movie, dose=DOSE, half=6),
             explorers.LikelihoodExplorer(noisy, denoised, columns=[[12.0, 12.0], [36.0, 36.0]]))
    for explorer in shown:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            png = PNGFormatter()(explorer)
        assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")


def test_likelihood_explorer_says_when_it_found_no_columns(counted):
    """A lattice without vacuum: the flattest part is lattice and no blob passes; the readout says
    so and how to give the columns, instead of asking for a click on nothing."""
    import warnings

    noisy, denoised = counted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the vacuum search warns that a lattice frame may be no vacuum
        explorer = explorers.LikelihoodExplorer(noisy, denoised)
    assert explorer.state["column"] is None and not len(explorer.state["verdicts"])
    assert "no columns found" in explorer.text and "columns=" in explorer.text
