"""Experiment design of notebook 05: held-out structures, contrast subsets, receptive-field maps."""
import json

import hyperspy.api as hs
import numpy as np
import pytest
import torch

from temnb.core.errors import DataShapeError, ParameterError
from temnb.nets import diagnostics, registry
from temnb.nets.config import DnCNNConfig
from temnb.simulation import training_data

TABLE = [{"structure": s, "defocus_nm": d} for s in range(8) for d in (-16.0, -8.0, 0.0)]


def test_split_holds_out_whole_structures_and_is_seeded():
    train, test = training_data.split_by_structure(TABLE, test_fraction=0.25, seed=3)
    train_structures = {TABLE[i]["structure"] for i in train}
    test_structures = {TABLE[i]["structure"] for i in test}
    assert not train_structures & test_structures, "a structure leaked from test into training"
    assert len(test_structures) == 2 and len(train) + len(test) == len(TABLE)
    again = training_data.split_by_structure(TABLE, test_fraction=0.25, seed=3)
    assert np.array_equal(test, again[1])
    assert not np.array_equal(test, training_data.split_by_structure(TABLE, test_fraction=0.25, seed=4)[1])


def test_split_refuses_a_single_structure_and_bad_fractions():
    with pytest.raises(DataShapeError):
        training_data.split_by_structure([{"structure": 0}] * 3)
    with pytest.raises(ParameterError):
        training_data.split_by_structure(TABLE, test_fraction=1.0)


def test_select_images_by_contrast_and_defocus():
    white = training_data.select_images(TABLE, contrast="white")
    assert {TABLE[i]["defocus_nm"] for i in white} == {-16.0}
    both = training_data.select_images(TABLE, range(6), contrast=["white", "black"])
    assert list(both) == [0, 2, 3, 5]
    assert list(training_data.select_images(TABLE, range(6), defoci=[-8.0])) == [1, 4]
    assert training_data.contrast_of_defocus(-8.0) == "intermediate"
    with pytest.raises(ParameterError):
        training_data.select_images(TABLE, contrast="grey")
    with pytest.raises(ParameterError):
        training_data.contrast_of_defocus(35.0)


def test_take_images_keeps_dose_calibration_and_the_image_table():
    stack = hs.signals.Signal2D(np.arange(5 * 4 * 4, dtype=np.float32).reshape(5, 4, 4))
    stack.axes_manager.signal_axes[0].scale = 0.025
    stack.axes_manager.signal_axes[0].units = "nm"
    stack.metadata.set_item("temnb.dose_per_pixel", 0.45)
    stack.metadata.set_item("temnb.simulation_images", json.dumps([{"i": i} for i in range(5)]))
    part = training_data.take_images(stack, [4, 1])
    assert np.array_equal(part.data, stack.data[[4, 1]])
    assert part.metadata.temnb.dose_per_pixel == 0.45
    assert part.axes_manager.signal_axes[0].scale == 0.025 and part.axes_manager.signal_axes[0].units == "nm"
    assert json.loads(part.metadata.temnb.simulation_images) == [{"i": 4}, {"i": 1}]
    with pytest.raises(ParameterError):
        training_data.take_images(stack, [])
    with pytest.raises(DataShapeError):
        training_data.take_images(np.zeros((2, 4, 4)), [0])


def test_receptive_field_map_stays_inside_the_theoretical_field():
    torch.manual_seed(0)
    model = registry.build_model(DnCNNConfig(depth=3, channels=4))   # receptive field 7 px
    field = diagnostics.receptive_field_map(model, size=21)
    ys, xs = np.nonzero(field)
    half = model.receptive_field // 2
    assert field.max() == pytest.approx(1.0)
    assert ys.min() >= 10 - half and ys.max() <= 10 + half and xs.min() >= 10 - half and xs.max() <= 10 + half
    assert 0 < diagnostics.effective_radius(field) <= half * np.sqrt(2)
    with pytest.raises(DataShapeError):
        diagnostics.receptive_field_map(model, np.zeros((2, 8, 8)))
