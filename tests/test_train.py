"""Training loop: learning, exact resume, reproducibility, augmentation, checkpoints, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from temnb.core.errors import DataShapeError, DataValueError, ParameterError, TemnbWarning
from temnb.core.plotting import LiveCurves, plot_history
from temnb.nets.checkpoint import load_model, read_model_card
from temnb.nets.config import DnCNNConfig, TrainConfig, UNetConfig
from temnb.nets.patches import augment, crop_size, sample_clean_patches
from temnb.nets.supervised_models import DnCNN, UNet
from temnb.nets.train import patch_psnr, train


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny nets on a busy 2-core machine: several torch threads only wait for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def images(n=4, size=40, dose=5.0):
    """Smooth lattice-like clean images in expected electrons, vacuum about *dose*."""
    y, x = np.mgrid[:size, :size]
    return np.stack([dose * (1 + 0.6 * np.sin(x / 2.5 + i) * np.cos(y / 3.0 - i)) for i in range(n)]).astype(np.float32)


def unet():
    torch.manual_seed(0)  # the model's initial weights are the caller's to seed
    return UNet(UNetConfig(n_scales=2, base_channels=4))


def dncnn():
    torch.manual_seed(0)
    return DnCNN(DnCNNConfig(depth=3, channels=4))


SMALL = dict(patch_size=16, batch_size=4, epochs=2, steps_per_epoch=4, val_fraction=0.25, n_val_patches=4)


def run(model, out_dir, data=None, **kw):
    return train(model, images() if data is None else data, config=TrainConfig(**{**SMALL, **kw}),
                 out_dir=out_dir, progress=False)


def values(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def test_tiny_unet_learns_to_denoise(tmp_path):
    result = run(unet(), tmp_path, epochs=4, steps_per_epoch=25, lr=1e-2)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] / 4
    assert result.best_val_psnr > result.noisy_val_psnr + 3
    assert result.history[-1]["stopped"] == "completed 4 epochs"
    assert result.device == "cpu" and not result.model.training


def test_resume_is_exact(tmp_path):
    straight = run(unet(), tmp_path / "a")
    first = run(unet(), tmp_path / "b", epochs=1)
    assert len(first.history) == 1
    resumed = train(unet(), images(), config=TrainConfig(**SMALL), out_dir=tmp_path / "b", progress=False)
    assert values(resumed.history) == values(straight.history)
    assert same_weights(resumed.model, straight.model)
    assert same_weights(load_model(tmp_path / "a" / "last"), load_model(tmp_path / "b" / "last"))
    # Finished already: returns at once with the saved history and the best model.
    again = train(dncnn(), images(), config=TrainConfig(**SMALL), out_dir=tmp_path / "x", progress=False)
    before = (tmp_path / "x" / "last" / "weights.pt").stat().st_mtime_ns
    repeat = train(dncnn(), images(), config=TrainConfig(**SMALL), out_dir=tmp_path / "x", progress=False)
    assert (tmp_path / "x" / "last" / "weights.pt").stat().st_mtime_ns == before
    assert values(repeat.history) == values(again.history) and same_weights(repeat.model, again.model)


def test_same_seed_same_result_other_seed_differs(tmp_path):
    a = run(dncnn(), tmp_path / "a")
    b = run(dncnn(), tmp_path / "b")
    c = run(dncnn(), tmp_path / "c", seed=1)
    assert values(a.history) == values(b.history) and same_weights(a.model, b.model)
    assert values(a.history) != values(c.history) and not same_weights(a.model, c.model)


def test_resume_with_other_settings_is_refused(tmp_path):
    run(unet(), tmp_path, epochs=1)
    with pytest.raises(ParameterError, match="patch_size=16 before, 24 now"):
        run(unet(), tmp_path, patch_size=24)
    with pytest.raises(ParameterError, match="different model"):
        run(UNet(UNetConfig(n_scales=2, base_channels=8)), tmp_path)
    with pytest.raises(ParameterError, match="other images"):
        run(unet(), tmp_path, data=images(dose=3.0))
    fresh = train(unet(), images(), config=TrainConfig(**{**SMALL, "patch_size": 24}), out_dir=tmp_path,
                  resume=False, progress=False)  # resume=False starts over in the same folder
    assert [h["epoch"] for h in fresh.history] == [1, 2]


def test_checkpoint_folders_and_card(tmp_path):
    import hyperspy.api as hs

    from temnb.core import metadata as md

    stack = hs.signals.Signal2D(images(dose=1.0))
    for axis in stack.axes_manager.signal_axes:
        axis.scale, axis.units = 0.025, "nm"
    stack.metadata.General.title = "toy set"
    md.set(stack, "dose_per_pixel", 1.0)
    md.set(stack, "simulation", {"generator": "temnb.simulation.training_data", "spec": {"defoci": [-8.0, 0.0]}})
    result = run(dncnn(), tmp_path, data=stack, dose=5.0)
    for name in ("last", "best"):
        files = {p.name for p in (tmp_path / name).iterdir()}
        assert {"weights.pt", "config.json", "model_card.json", "train_config.json"} <= files
    assert (tmp_path / "last" / "training_state.pt").exists()
    assert TrainConfig.from_dict(json.loads((tmp_path / "best" / "train_config.json").read_text())) == \
        TrainConfig(**SMALL, dose=5.0)
    card = read_model_card(tmp_path / "best")
    data = card["training_data"]
    assert data["dose"] == 5.0 and data["source_dose"] == 1.0 and data["pixel_size"] == pytest.approx(0.025)
    assert data["n_images"] == 3 and data["n_val_images"] == 1 and data["title"] == "toy set"
    assert data["simulation"]["spec"]["defoci"] == [-8.0, 0.0]
    assert card["best_val_psnr"] == pytest.approx(result.best_val_psnr) and card["device"] == "cpu"
    assert card["epochs"] == 2 and card["seconds"] > 0 and card["train_config"]["dose"] == 5.0


def test_dose_rescales_the_clean_images(tmp_path):
    # At 5x the dose the noise is relatively weaker: the raw validation PSNR rises by ~10 log10(5) dB.
    data = images()
    before = data.copy()
    low = run(dncnn(), tmp_path / "a", data=data, epochs=1, steps_per_epoch=1, n_val_patches=32, dose=1.0)
    assert np.array_equal(data, before)  # rescaled a copy, not the caller's array
    high = run(dncnn(), tmp_path / "b", epochs=1, steps_per_epoch=1, n_val_patches=32, dose=5.0)
    assert high.noisy_val_psnr - low.noisy_val_psnr == pytest.approx(10 * np.log10(5), abs=1.5)


def test_separate_validation_images(tmp_path):
    result = train(dncnn(), images(), config=TrainConfig(**{**SMALL, "epochs": 1, "augment": False}),
                   val_clean=images(n=1, size=24)[0], out_dir=tmp_path, progress=False)
    data = read_model_card(result.out_dir / "best")["training_data"]
    assert data["n_images"] == 4 and data["n_val_images"] == 1


def test_early_stopping_when_nothing_improves(tmp_path):
    model = dncnn()
    for module in model.modules():
        if hasattr(module, "momentum"):
            module.momentum = 0.0  # keep the batch-norm running statistics fixed as well
    result = run(model, tmp_path, epochs=20, lr=1e-12, early_stopping_patience=2, plateau_patience=5)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.stopped.startswith("early stopping") and result.history[-1]["stopped"] == result.stopped
    scheduler = torch.load(tmp_path / "last" / "training_state.pt", weights_only=False)["scheduler"]
    assert scheduler["mode"] == "max" and scheduler["num_bad_epochs"] == 2  # it watches val PSNR too


def test_mixed_precision_true_on_cpu_warns_and_trains(tmp_path):
    with pytest.warns(TemnbWarning, match="float32"):
        result = run(dncnn(), tmp_path, epochs=1, steps_per_epoch=1, mixed_precision=True)
    assert np.isfinite(result.best_val_psnr)


@pytest.mark.parametrize("data, kw, error, match", [
    (images(size=20), {}, DataShapeError, "patch_size=12 or smaller"),
    (np.where(np.eye(40, dtype=bool), np.nan, images()), {}, DataValueError, "NaN"),
    (images() - 10, {}, DataValueError, "negative"),
    (images(n=1), {}, DataShapeError, "val_clean"),
    (images(), {"patch_size": 17}, ParameterError, "multiple of 2"),
])
def test_bad_input(tmp_path, data, kw, error, match):
    with pytest.raises(error, match=match):
        run(unet(), tmp_path, data=data, **kw)
    assert not (tmp_path / "last").exists()


@pytest.mark.parametrize("kw", [dict(patch_size=4), dict(lr=0), dict(lr_factor=1.0), dict(dose=-1.0),
                                dict(scale_range=(1.1, 0.9)), dict(mixed_precision="yes"), dict(val_fraction=1.0),
                                dict(epochs=2.5), dict(augment="no")])
def test_bad_config(kw):
    with pytest.raises(ParameterError):
        TrainConfig(**kw)


def test_config_round_trip():
    config = TrainConfig(patch_size=32, dose=0.45, scale_range=[0.9, 1.1], mixed_precision=False)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ParameterError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"patch": 3})


# -- augmentation ------------------------------------------------------------------------------

def pattern(size=12):
    return np.arange(size * size, dtype=np.float32).reshape(1, size, size)


def test_flips_and_quarter_turns_map_pixels_exactly():
    crop = pattern(12)
    centre = crop[0, 2:10, 2:10]
    assert np.allclose(augment(crop, 8)[0], centre, atol=1e-4)
    assert np.allclose(augment(crop, 8, flip=[True])[0], centre[:, ::-1], atol=1e-4)
    for k in range(4):
        assert np.allclose(augment(crop, 8, quarter_turns=[k])[0], np.rot90(centre, k), atol=1e-3)
    assert np.allclose(augment(crop, 8, angle_deg=[90.0])[0], np.rot90(centre, 1), atol=1e-3)


def test_scale_widens_the_field_of_view():
    ramp = np.tile(np.arange(40, dtype=np.float32), (40, 1))[None]  # value = x
    out = augment(ramp, 16, scale=[1.5])[0].numpy()
    assert np.allclose(np.diff(out, axis=1), 1.5, atol=1e-3) and np.allclose(np.diff(out, axis=0), 0, atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(st.floats(-45, 45), st.floats(0.955, 1.055), st.booleans(), st.integers(0, 3), st.floats(0.1, 100))
def test_augmenting_a_constant_image_keeps_its_value(angle, scale, flip, turns, level):
    config = TrainConfig(patch_size=16)
    crop = np.full((1, crop_size(config), crop_size(config)), level, np.float32)
    out = augment(crop, 16, flip=[flip], quarter_turns=[turns], angle_deg=[angle], scale=[scale])
    assert out.shape == (1, 16, 16) and np.allclose(out, level, rtol=1e-5)  # no corner came from outside


def test_augmented_patches_keep_the_mean_and_stay_in_range():
    data = images(n=3, size=60)
    config = TrainConfig(patch_size=16, batch_size=64)
    patches = sample_clean_patches(data, np.random.default_rng(0), config)
    assert patches.shape == (64, 16, 16)
    assert data.min() - 1e-4 <= patches.min() and patches.max() <= data.max() + 1e-4
    assert patches.mean() == pytest.approx(data.mean(), rel=0.05)


def test_without_augmentation_patches_are_plain_crops():
    data = images(n=2)
    patches = sample_clean_patches(data, np.random.default_rng(0), TrainConfig(patch_size=16, augment=False))
    windows = np.lib.stride_tricks.sliding_window_view(data, (16, 16), axis=(1, 2)).reshape(-1, 16, 16)
    assert all(any(np.array_equal(p, w) for w in windows) for p in patches)


def test_patch_psnr_matches_metrics_psnr():
    from temnb.judge.metrics import psnr

    rng = np.random.default_rng(1)
    clean, noisy, peak = rng.random((3, 8, 8)), rng.random((3, 8, 8)), [1.0, 2.0, 3.0]
    expected = np.mean([psnr(n, c, peak=p) for n, c, p in zip(noisy, clean, peak)])
    assert patch_psnr(noisy, clean, peak) == pytest.approx(expected)


# -- curves ------------------------------------------------------------------------------------

HISTORY = [{"epoch": 1, "train_loss": 0.5, "val_psnr": 10.0, "lr": 1e-3, "seconds": 1.0},
           {"epoch": 2, "train_loss": 0.2, "val_psnr": 12.0, "lr": 1e-3, "seconds": 1.0, "stopped": "completed 2 epochs"}]


def test_plot_history():
    import matplotlib.pyplot as plt

    fig = plot_history(HISTORY)
    loss_ax, psnr_ax = fig.axes
    assert list(psnr_ax.lines[0].get_ydata()) == [10.0, 12.0] and loss_ax.get_yscale() == "log"
    plt.close(fig)


def test_live_curves_updates_one_display(monkeypatch):
    import IPython
    import IPython.display
    import matplotlib.pyplot as plt

    LiveCurves()(HISTORY)  # outside IPython: nothing happens, no error
    calls = []

    class Handle:
        def update(self, fig):
            calls.append(("update", fig))

    def display(fig, display_id=False):
        calls.append(("display", fig))
        assert display_id is True
        return Handle()

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", display)
    live = LiveCurves()
    for n in (1, 2, 2):
        live(HISTORY[:n])
    assert [c[0] for c in calls] == ["display", "update", "update"]
    assert not any(plt.fignum_exists(c[1].number) for c in calls)  # each figure closed


def test_the_model_card_regime_says_dose_per_pixel_and_per_area():
    from temnb.nets.train import training_regime

    summary = {"pixel_size_A": 0.244, "simulation": {"spec": {"defoci": [-20.0, -8.0, 0.0]}}}
    regime = training_regime(7.2, summary)
    assert regime["dose_per_pixel"] == 7.2 and regime["pixel_size_A"] == 0.244
    assert regime["dose_per_area"] == pytest.approx(7.2 / 0.244**2)          # 121 e-/Å² per frame
    assert regime["defocus_nm"] == [-20.0, 0.0]
    unknown = training_regime(0.45, {})                                        # an array: no calibration
    assert unknown["dose_per_area"] is None and unknown["pixel_size_A"] is None
