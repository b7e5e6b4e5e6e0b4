"""The movie viewer: the pure functions it draws from, and the widget wiring."""
import numpy as np
import pytest

from temnb.core import plotting
from temnb.core.errors import DataShapeError, ParameterError
from temnb.notebook import widgets
from temnb.simulation import synthetic


@pytest.fixture(scope="module")
def movies():
    return synthetic.counted_movie(12, (48, 64), seed=3)


def test_frame_averages_the_requested_frames(movies):
    noisy, _ = movies
    expected = noisy.data[2:6].astype(float).mean(axis=0)
    np.testing.assert_allclose(plotting.frame(noisy, 2, average=4), expected)


def test_frame_average_stops_at_the_end_of_the_movie(movies):
    noisy, _ = movies
    np.testing.assert_allclose(plotting.frame(noisy, 10, average=8), noisy.data[10:].mean(axis=0))


def test_frame_reads_lazy_movies(movies):
    noisy, _ = movies
    lazy = noisy.as_lazy()
    np.testing.assert_allclose(plotting.frame(lazy, 5, average=2), noisy.data[5:7].mean(axis=0))


def test_frame_index_outside_movie_is_a_clear_error(movies):
    noisy, _ = movies
    with pytest.raises(ParameterError, match="outside the movie"):
        plotting.frame(noisy, 12)


def test_frame_of_a_spectrum_is_a_shape_error():
    with pytest.raises(DataShapeError, match="1-D spectrum"):
        plotting.frame(np.arange(10.0))


def test_viewer_state_labels_time_from_calibration(movies):
    noisy, clean = movies
    state = plotting.viewer_state(noisy, clean, index=4, average=1)
    assert state["label"] == "frame 4, t = 0.100 s"
    assert [title for title, _ in state["panels"]] == ["raw", "processed"]
    np.testing.assert_allclose(state["panels"][1][1], clean.data[4])
    assert state["unit"] == "nm" and state["pixel_size"] == pytest.approx(0.0122)


def test_viewer_state_refuses_movies_of_different_length(movies):
    noisy, clean = movies
    with pytest.raises(ParameterError, match="differ in length"):
        plotting.viewer_state(noisy, clean.inav[:5])


def test_widget_follows_its_sliders(movies):
    noisy, clean = movies
    viewer = widgets.movie_viewer(noisy, clean)
    assert viewer.state["index"] == 0
    viewer.frame_slider.value = 7
    viewer.average_slider.value = 3
    assert viewer.state["index"] == 7 and viewer.state["average"] == 3
    np.testing.assert_allclose(viewer.state["panels"][0][1], noisy.data[7:10].mean(axis=0))
    assert viewer.frame_slider.max == 11
    # the drawn image is the state's image
    drawn = viewer.axes[0][0].images[0].get_array()
    np.testing.assert_allclose(np.asarray(drawn), viewer.state["panels"][0][1])


def test_widget_on_a_single_frame_disables_sliders(movies):
    noisy, _ = movies
    viewer = widgets.movie_viewer(noisy.inav[0])
    assert viewer.frame_slider.disabled and len(viewer.state["panels"]) == 1


def test_widget_image_is_a_png_of_the_current_frame(movies):
    noisy, clean = movies
    viewer = widgets.movie_viewer(noisy, clean)
    first = viewer.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    viewer.frame_slider.value = 5
    assert viewer.image.value != first
