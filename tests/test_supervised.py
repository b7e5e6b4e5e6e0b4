"""Experiment design of notebook 05: held-out structures, contrast subsets, receptive-field maps."""
import json

import hyperspy.api as hs
import numpy as np
import pytest
import torch

from temnb import models, supervised
from temnb.errors import DataShapeError, ParameterError

TABLE = [{"structure": s, "defocus_nm": d} for s in range(8) for d in (-16.0, -8.0, 0.0)]


def test_split_holds_out_whole_structures_and_is_seeded():
    train, test = supervised.split_by_structure(TABLE, test_fraction=0.25, seed=3)
    train_structures = {TABLE[i]["structure"] for i in train}
    test_structures = {TABLE[i]["structure"] for i in test}
    assert not train_structures & test_structures, "a structure leaked from test into training"
    assert len(test_structures) == 2 and len(train) + len(test) == len(TABLE)
    again = supervised.split_by_structure(TABLE, test_fraction=0.25, seed=3)
    assert np.array_equal(test, again[1])
    assert not np.array_equal(test, supervised.split_by_structure(TABLE, test_fraction=0.25, seed=4)[1])


def test_split_refuses_a_single_structure_and_bad_fractions():
    with pytest.raises(DataShapeError):
        supervised.split_by_structure([{"structure": 0}] * 3)
    with pytest.raises(ParameterError):
        supervised.split_by_structure(TABLE, test_fraction=1.0)


def test_select_images_by_contrast_and_defocus():
    white = supervised.select_images(TABLE, contrast="white")
    assert {TABLE[i]["defocus_nm"] for i in white} == {-16.0}
    both = supervised.select_images(TABLE, range(6), contrast=["white", "black"])
    assert list(both) == [0, 2, 3, 5]
    assert list(supervised.select_images(TABLE, range(6), defoci=[-8.0])) == [1, 4]
    assert supervised.contrast_of_defocus(-8.0) == "intermediate"
    with pytest.raises(ParameterError):
        supervised.select_images(TABLE, contrast="grey")
    with pytest.raises(ParameterError):
        supervised.contrast_of_defocus(35.0)


def test_take_images_keeps_dose_calibration_and_the_image_table():
    stack = hs.signals.Signal2D(np.arange(5 * 4 * 4, dtype=np.float32).reshape(5, 4, 4))
    stack.axes_manager.signal_axes[0].scale = 0.025
    stack.axes_manager.signal_axes[0].units = "nm"
    stack.metadata.set_item("temnb.dose_per_pixel", 0.45)
    stack.metadata.set_item("temnb.simulation_images", json.dumps([{"i": i} for i in range(5)]))
    part = supervised.take_images(stack, [4, 1])
    assert np.array_equal(part.data, stack.data[[4, 1]])
    assert part.metadata.temnb.dose_per_pixel == 0.45
    assert part.axes_manager.signal_axes[0].scale == 0.025 and part.axes_manager.signal_axes[0].units == "nm"
    assert json.loads(part.metadata.temnb.simulation_images) == [{"i": 4}, {"i": 1}]
    with pytest.raises(ParameterError):
        supervised.take_images(stack, [])
    with pytest.raises(DataShapeError):
        supervised.take_images(np.zeros((2, 4, 4)), [0])


def test_receptive_field_map_stays_inside_the_theoretical_field():
    torch.manual_seed(0)
    model = models.build_model(models.DnCNNConfig(depth=3, channels=4))   # receptive field 7 px
    field = supervised.receptive_field_map(model, size=21)
    ys, xs = np.nonzero(field)
    half = model.receptive_field // 2
    assert field.max() == pytest.approx(1.0)
    assert ys.min() >= 10 - half and ys.max() <= 10 + half and xs.min() >= 10 - half and xs.max() <= 10 + half
    assert 0 < supervised.effective_radius(field) <= half * np.sqrt(2)
    with pytest.raises(DataShapeError):
        supervised.receptive_field_map(model, np.zeros((2, 8, 8)))
