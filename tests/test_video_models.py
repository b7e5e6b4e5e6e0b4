"""Blind-spot networks of temnb.nets.blind_spot_models: blindness by autograd, frozen centre weights,
circular padding, the FFT low-pass, configs, self-supervised batches and a short training run."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import uniform_filter

from temnb.core.errors import DataShapeError, ParameterError, TemnbWarning, TooFewFramesError
from temnb.judge import metrics
from temnb.nets import blind_spot_models, registry, self_supervised
from temnb.nets.config import N2VConfig, UDVDConfig, WCIDConfig, WCVDConfig, receptive_field
from temnb.simulation import synthetic


pytestmark = pytest.mark.usefixtures("one_torch_thread")


SIZE = 24
PIXELS = [(0, 0), (7, 12), (12, 12), (23, 23), (5, 22)]


def _input_gradient(model, x, y, x_):
    """d output[0, 0, y, x_] / d input, shape (T, H, W)."""
    x = x.clone().requires_grad_(True)
    model(x)[0, 0, y, x_].backward()
    return x.grad[0]


def _small_udvd(**kw):
    return blind_spot_models.UDVD(UDVDConfig(channels=8, **kw))


BLIND_MODELS = {
    "udvd": lambda: blind_spot_models.UDVD(),  # the default config (3 scales)
    "udvd-2scale-bias": lambda: _small_udvd(n_scales=2, bias=True),
    "udvd-stack-blind3": lambda: _small_udvd(n_scales=1, blind_region=3),
    "udvd-blind3": lambda: _small_udvd(blind_region=3),
    "udvd-two-stage": lambda: _small_udvd(n_scales=2, two_stage=True),
    "udvd-two-stage-blind3-7frames": lambda: _small_udvd(frames=7, n_scales=1, blind_region=3, two_stage=True),
    "wcvd": lambda: blind_spot_models.WCVD(WCVDConfig(features=8, bias=True)),
    "wcvd-blind3": lambda: blind_spot_models.WCVD(WCVDConfig(features=8, blind_region=3)),
    "wcid": lambda: blind_spot_models.WCID(WCIDConfig(features=8)),
    "wcid-blind3": lambda: blind_spot_models.WCID(WCIDConfig(features=8, kernel_sizes=(5, 7), blind_region=3)),
    # the low-pass is applied by temnb.denoise, never inside the model: it must still be blind
    "wcvd-lowpass-train": lambda: blind_spot_models.WCVD(WCVDConfig(features=8, lowpass_cutoff=1.35)).train(),
}


@pytest.mark.parametrize("name", list(BLIND_MODELS))
def test_output_pixel_does_not_see_its_own_input_pixel(name):
    torch.manual_seed(0)
    model = BLIND_MODELS[name]()
    r = model.config.blind_region // 2
    centre = model.temporal_window // 2
    x = torch.rand(1, model.temporal_window, SIZE, SIZE) + 0.1
    used = 0
    for y, x_ in PIXELS:
        grad = _input_gradient(model, x, y, x_)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if 0 <= y + dy < SIZE and 0 <= x_ + dx < SIZE:
                    assert grad[centre, y + dy, x_ + dx] == 0.0, (y + dy, x_ + dx)
        # ...but it does use other pixels: the next one outside the blind region (inwards).
        # (WCVD/WCID end in a ReLU: where it is off, every gradient is 0, hence a count.)
        step = r + 1 if x_ + r + 1 < SIZE else -(r + 1)
        used += int(grad[centre, y, x_ + step] != 0.0)
    assert used >= 3


def test_wcvd_uses_the_same_pixel_in_the_neighbouring_frames():
    torch.manual_seed(1)
    for blind in (1, 3):
        model = blind_spot_models.WCVD(WCVDConfig(features=8, blind_region=blind))
        x = torch.rand(1, 3, 24, 24) + 0.1
        y, x_ = torch.nonzero(model(x)[0, 0] > 0)[len(PIXELS)].tolist()  # a pixel where the ReLU is on
        grad = _input_gradient(model, x, y, x_)
        assert grad[1, y, x_] == 0.0
        assert grad[0, y, x_] != 0.0 and grad[2, y, x_] != 0.0


BANDED_CONFIGS = {
    "wcvd-bias-depth2": WCVDConfig(features=8, depth=2, bias=True),
    "wcvd-blind3-depth0": WCVDConfig(features=4, depth=0, blind_region=3, kernel_sizes=(3, 7)),
    "wcid": WCIDConfig(features=8, kernel_sizes=(5, 3)),
}


@pytest.mark.parametrize("name", list(BANDED_CONFIGS))
def test_banded_inference_equals_the_layers(name):
    # Inference (no gradients) runs _forward_banded; training runs the layers.  Bands of 8 rows on
    # a 29-row frame end in a short band; mixing weights away from uniform check their folding.
    torch.manual_seed(5)
    model = registry.build_model(BANDED_CONFIGS[name]).eval()
    with torch.no_grad():
        model.mix_logits.copy_(torch.linspace(-1, 1, len(model.mix_logits)))
    x = torch.rand(2, model.temporal_window, 29, 37) * 3
    with torch.no_grad():
        reference = model._forward_layers(x)
        banded = model._forward_banded(x, band_bytes=1)  # the smallest bands: 8 rows
        whole = model(x)
    assert torch.count_nonzero(reference) > reference.numel() // 4
    assert torch.allclose(banded, reference, atol=1e-5, rtol=1e-5)
    assert torch.allclose(whole, reference, atol=1e-5, rtol=1e-5)


def test_banded_inference_is_blind_to_its_own_pixel():
    # No autograd in the fast path, so perturb: a changed centre pixel of the centre frame leaves
    # its own output unchanged (exactly: its weight is exactly 0) but changes its neighbours'.
    torch.manual_seed(6)
    for blind in (1, 3):
        model = blind_spot_models.WCVD(WCVDConfig(features=8, blind_region=blind)).eval()
        x = torch.rand(1, 3, 40, 40) + 0.5
        bumped = x.clone()
        bumped[0, 1, 20, 20] += 100.0
        with torch.no_grad():
            change = (model(bumped) - model(x))[0, 0].abs()
        r = blind // 2
        assert torch.all(change[20 - r: 21 + r, 20 - r: 21 + r] == 0)
        assert change.sum() > 0


def test_udvd_receptive_field_is_exact(monkeypatch):
    # Gradients through max-pooling reach only the maximum; average pooling has the same support.
    monkeypatch.setattr(F, "max_pool2d", F.avg_pool2d)
    torch.manual_seed(2)
    for kw in ({"n_scales": 2, "blocks_per_scale": 1}, {"n_scales": 1, "blind_region": 3},
               {"n_scales": 3, "blocks_per_scale": 1}, {"n_scales": 2, "blocks_per_scale": 1, "two_stage": True}):
        model = _small_udvd(**kw)
        half = (model.receptive_field - 1) // 2
        size = -(-(2 * half + 8) // model.size_multiple) * model.size_multiple
        x = torch.rand(1, 5, size, size)
        reach = 0
        for y in range(half, half + 8):  # every residue of the pooling grid
            rows = torch.nonzero(_input_gradient(model, x, y, size // 2).abs().sum((0, 2)))
            assert y - rows.min() <= half and rows.max() - y <= half
            reach = max(reach, y - int(rows.min()))
        assert reach == half, kw


def _blind_convs(model):
    return [m for m in model.modules() if isinstance(m, blind_spot_models._BlindConv)]


@pytest.mark.parametrize("cls,cfg", [(blind_spot_models.WCVD, WCVDConfig(features=8)),
                                     (blind_spot_models.WCVD, WCVDConfig(features=8, blind_region=3)),
                                     (blind_spot_models.WCID, WCIDConfig(features=8, kernel_sizes=(5, 7), blind_region=3))])
def test_centre_weights_stay_exactly_zero_under_adam(cls, cfg):
    torch.manual_seed(3)
    model = cls(cfg)
    before = [c.weight.detach().clone() for c in _blind_convs(model)]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(20):
        x = torch.rand(4, model.temporal_window, 16, 16)
        loss = self_supervised.blind_spot_loss(model(x), x[:, model.temporal_window // 2:][:, :1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for conv, old in zip(_blind_convs(model), before):
        blind = conv.mask == 0
        assert int(blind.sum()) == cfg.blind_region ** 2
        assert torch.all(conv.weight[:, :, blind] == 0)
        assert not torch.allclose(conv.weight, old)  # the other weights did train


def test_gradient_hook_masks_the_centre_weight():
    conv = blind_spot_models._BlindConv(4, 5, True, 1)
    (conv.weight ** 2 + conv.weight).sum().backward()  # not through forward: only the hook masks it
    assert torch.all(conv.weight.grad[:, :, 1, 2, 2] == 0)
    assert torch.count_nonzero(conv.weight.grad) == conv.weight.numel() - 4


def test_wcvd_ensemble_keeps_the_frame_shape_with_circular_padding():
    torch.manual_seed(4)
    model = blind_spot_models.WCVD(WCVDConfig(features=8)).eval()
    x = torch.rand(2, 3, 20, 33)
    out = model(x)
    assert out.shape == (2, 1, 20, 33)
    # periodic padding: a circular shift of the input circularly shifts the output
    shifted = model(torch.roll(x, (5, -7), (2, 3)))
    assert torch.allclose(shifted, torch.roll(out, (5, -7), (2, 3)), atol=1e-6)
    assert torch.allclose(torch.softmax(model.mix_logits, 0).sum(), torch.tensor(1.0))


def test_fft_lowpass_keeps_the_mean_and_removes_a_fine_cosine():
    y, x = np.mgrid[0:64, 0:64]
    coarse = 0.5 * np.cos(2 * np.pi * 2 * y / 64)            # 2/64 cycles per pixel: kept
    image = 3.0 + coarse + np.cos(2 * np.pi * 20 * x / 64)    # 20/64 cycles per pixel: removed
    out = blind_spot_models.fft_lowpass(image, 1 / 14)
    assert isinstance(out, np.ndarray) and out.shape == image.shape
    assert out.mean() == pytest.approx(image.mean(), abs=1e-12)
    assert np.allclose(out, 3.0 + coarse, atol=1e-9)
    # The same cut-off in 1/Å on 0.25 Å pixels.
    assert np.allclose(blind_spot_models.fft_lowpass(image, 4 / 14, pixel_size_A=0.25), out, atol=1e-12)
    tensor = blind_spot_models.fft_lowpass(torch.tensor(image, dtype=torch.float32)[None, None], 1 / 14)
    assert torch.is_tensor(tensor) and np.allclose(tensor[0, 0].numpy(), 3.0 + coarse, atol=1e-5)
    with pytest.raises(ParameterError):
        blind_spot_models.fft_lowpass(image, 0)


def test_the_lowpass_cutoff_is_in_inverse_angstrom_and_applied_by_denoise():
    import hyperspy.api as hs

    from temnb.nets.inference import denoise

    torch.manual_seed(5)
    plain = blind_spot_models.WCVD(WCVDConfig(features=8)).eval()
    smooth = blind_spot_models.WCVD(WCVDConfig(features=8, lowpass_cutoff=1.0)).eval()
    smooth.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 42, 42)
    assert torch.allclose(smooth(x), plain(x))              # never inside the model
    movie = np.random.default_rng(0).poisson(2.0, (5, 48, 48)).astype(np.float32)
    signal = hs.signals.Signal2D(movie)
    for ax in signal.axes_manager.signal_axes:
        ax.scale, ax.units = 0.025, "nm"                     # 0.25 Å pixels
    expected = blind_spot_models.fft_lowpass(denoise(movie, plain, dose=2.0, progress=False), 1.0, 0.25)
    got = denoise(signal, smooth, dose=2.0, progress=False).data
    assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(denoise(movie, smooth, dose=2.0, pixel_size_A=0.25, progress=False), expected, atol=1e-5)
    with pytest.raises(ParameterError, match="pixel size"):
        denoise(movie, smooth, dose=2.0, progress=False)     # an array has no calibration
    with pytest.raises(ParameterError, match="1/Å"):
        WCVDConfig.from_dict({"architecture": "WCVD", "lowpass": True})
    with pytest.raises(ParameterError):
        WCVDConfig(lowpass_cutoff=-1.0)


def test_a_cutoff_that_removes_the_lattice_warns():
    import warnings

    from temnb.classic.fourier import warn_if_cutoff_removes_lattice

    y, x = np.mgrid[0:64, 0:64]
    clean = 5.0 + 2.0 * np.cos(2 * np.pi * x / 4.0)      # period 4 px = 1 Å on 0.25 Å pixels: k = 1 1/Å
    lattice = np.random.default_rng(1).poisson(np.broadcast_to(clean, (8, 64, 64))).astype(float)
    with pytest.warns(TemnbWarning, match="strongest Bragg spot"):
        lost = warn_if_cutoff_removes_lattice(lattice, 0.8, 0.25)
    assert len(lost) >= 1 and np.allclose(np.abs(lost.k[0]), [0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = warn_if_cutoff_removes_lattice(lattice, 1.35, 0.25)      # no warning: the lattice is kept
    assert not np.any(np.isclose(np.hypot(kept.k[:, 0], kept.k[:, 1]), 1.0))


CONFIGS = [UDVDConfig(frames=3, channels=16, n_scales=2, blind_region=3, bias=True),
           UDVDConfig(frames=5, channels=4, n_scales=2, two_stage=True),
           WCVDConfig(kernel_sizes=(5, 9), features=4, depth=1, lowpass_cutoff=1.35),
           WCIDConfig(blind_region=3, kernel_sizes=(5,)),
           N2VConfig(n_scales=2, base_channels=8, mask_fraction=0.02)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.architecture)
def test_config_round_trip_through_json_and_build_model(config):
    d = json.loads(json.dumps(config.to_dict()))
    assert d["architecture"] == config.architecture
    again = registry.config_from_dict(d)
    assert again == config and type(again) is type(config)
    model = registry.build_model(d)
    assert model.config == config
    assert receptive_field(config) == model.receptive_field
    out = model(torch.rand(1, model.temporal_window, 16, 16))
    assert out.shape == (1, 1, 16, 16)


@pytest.mark.parametrize("make", [
    lambda: UDVDConfig(frames=4), lambda: UDVDConfig(channels=0), lambda: UDVDConfig(blind_region=2),
    lambda: UDVDConfig(n_scales=2.0), lambda: UDVDConfig(bias=1),
    lambda: UDVDConfig(frames=3, two_stage=True), lambda: UDVDConfig(two_stage="yes"),
    lambda: WCVDConfig(kernel_sizes=(3, 4)), lambda: WCVDConfig(kernel_sizes=()),
    lambda: WCVDConfig(kernel_sizes=(5, 5)), lambda: WCVDConfig(features=True),
    lambda: WCVDConfig(kernel_sizes=[[3]]), lambda: WCVDConfig(kernel_sizes=7),
    lambda: WCIDConfig(blind_region=3), lambda: N2VConfig(mask_fraction=0.5),
    lambda: N2VConfig(n_scales=1), lambda: UDVDConfig.from_dict({"chanels": 8}),
    lambda: WCIDConfig.from_dict({"architecture": "WCVD"}),
])
def test_bad_configs_raise_parameter_error(make):
    with pytest.raises(ParameterError):
        make()


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(DataShapeError, match="N, 5, H, W"):
        blind_spot_models.UDVD(UDVDConfig(channels=4))(torch.rand(1, 3, 16, 16))
    with pytest.raises(DataShapeError, match="multiples of 4"):
        blind_spot_models.UDVD(UDVDConfig(channels=4))(torch.rand(1, 5, 18, 16))


def test_checkpoint_round_trip_keeps_blindness(tmp_path):
    checkpoint = pytest.importorskip("temnb.nets.checkpoint")
    model = blind_spot_models.WCVD(WCVDConfig(features=4))
    checkpoint.save_model(model, tmp_path / "wcvd")
    loaded = checkpoint.load_model(tmp_path / "wcvd", expected="WCVD")
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded(x), model.eval()(x))
    assert _input_gradient(loaded, x, 8, 8)[1, 8, 8] == 0.0


def test_self_supervised_batches_and_too_short_movies():
    movie = np.random.default_rng(0).poisson(0.45, (7, 40, 48)).astype(np.uint16)
    batches = self_supervised.self_supervised_batches(movie, 5, 32, 4, generator=0, dose=0.45)
    for _ in range(3):
        inputs, targets = next(batches)
        assert inputs.shape == (4, 5, 32, 32) and targets.shape == (4, 1, 32, 32)
        assert torch.equal(targets, inputs[:, 2:3])
        assert set(np.unique(inputs.numpy() * 0.45).round(4)) <= set(np.arange(0, 20).astype(float))
    with pytest.raises(TooFewFramesError, match="4 frame"):
        self_supervised.self_supervised_batches(movie[:4], 5, 32, 4)
    with pytest.raises(TooFewFramesError):
        self_supervised.self_supervised_batches(movie[0], 3, 32, 4)
    single = next(self_supervised.self_supervised_batches(movie[0], 1, 32, 2))[0]  # a frame is fine for 1-frame models
    assert single.shape == (2, 1, 32, 32)
    with pytest.raises(DataShapeError):
        self_supervised.self_supervised_batches(movie, 5, 64, 4)


def test_n2v_mask_hides_the_masked_values():
    g = torch.Generator().manual_seed(6)
    batch = torch.randn(3, 1, 20, 24, generator=g)
    masked, mask = self_supervised.n2v_mask(batch, 0.02, g)
    assert mask.shape == (3, 1, 20, 24) and mask.sum((1, 2, 3)).tolist() == [10, 10, 10]
    hit = mask.bool()
    assert torch.all(masked[hit] != batch[hit])  # the masked pixels' own values are gone
    assert torch.equal(masked[~hit], batch[~hit])
    padded = F.pad(batch, (2, 2, 2, 2), mode="reflect")
    for n, _, y, x in torch.nonzero(hit).tolist():
        window = padded[n, 0, y: y + 5, x: x + 5]
        assert (window == masked[n, 0, y, x]).any()  # a value from the 5x5 neighbourhood
    # the loss sees masked pixels only
    out = torch.zeros_like(batch)
    changed = out.clone()
    changed[~hit] = 5.0
    assert self_supervised.n2v_loss(out, batch, mask) == self_supervised.n2v_loss(changed, batch, mask)


def test_poisson_loss_is_smallest_at_the_mean():
    y = torch.tensor([0.0, 1.0, 0.0, 3.0])
    losses = [float(self_supervised.blind_spot_loss(torch.full((4,), c), y, "poisson")) for c in (0.5, 1.0, 1.5)]
    assert losses[1] < losses[0] and losses[1] < losses[2]
    with pytest.raises(ParameterError):
        self_supervised.blind_spot_loss(y, y, "l1")


def test_fit_runs_for_video_and_masked_models():
    noisy, _ = synthetic.counted_movie(n_frames=6, shape=(32, 32), dose=0.45, seed=9)  # a hyperspy signal
    for model in (blind_spot_models.UDVD(UDVDConfig(channels=4, n_scales=1, two_stage=True)),
                  blind_spot_models.UDVD(UDVDConfig(channels=4, n_scales=2)), blind_spot_models.N2V(N2VConfig(n_scales=2, base_channels=4))):
        steps = []
        losses = self_supervised.fit_self_supervised(model, noisy, steps=3, patch_size=16, batch_size=2, device="cpu",
                                        progress=False, callback=lambda step, loss: steps.append(step))
        assert steps == [0, 1, 2] and np.all(np.isfinite(losses)) and not model.training
    with pytest.raises(ParameterError, match="multiple of 2"):
        self_supervised.fit_self_supervised(model, noisy, steps=1, patch_size=15, progress=False)


def test_short_self_supervised_training_beats_the_raw_counts():
    noisy, clean = synthetic.counted_movie(n_frames=1, shape=(128, 128), dose=0.45, seed=7, as_signal=False)
    torch.manual_seed(8)
    model = blind_spot_models.WCID(WCIDConfig(features=16))
    losses = self_supervised.fit_self_supervised(model, noisy[0], steps=50, patch_size=64, batch_size=8, lr=1e-2,
                                    dose=0.45, device="cpu", progress=False)
    assert len(losses) == 50 and not model.training
    with torch.no_grad():
        denoised = model(torch.from_numpy(noisy[0] / 0.45).float()[None, None])[0, 0].numpy() * 0.45
    raw, learned = metrics.psnr(noisy[0].astype(float), clean[0]), metrics.psnr(denoised, clean[0])
    box3 = metrics.psnr(uniform_filter(noisy[0].astype(float), 3, mode="wrap"), clean[0])
    assert learned > raw + 10, (raw, learned)  # about -7.9 dB -> 7.4 dB
    assert learned > box3 + 3, (box3, learned)  # it learned more than a 3x3 mean (1.7 dB)


def test_training_on_an_interpolated_alignment_warns():
    # Sub-pixel interpolation mixes neighbouring pixels' noise: the blind spot would see its own.
    from temnb.classic import align
    from temnb.core.errors import TemnbWarning

    noisy, _ = synthetic.counted_movie(n_frames=6, shape=(48, 48), dose=0.45, seed=1,
                                        drift_px_per_frame=(0.3, 0.2))
    drift = align.estimate_drift(noisy, max_shift_px=3.0, progress=False)
    with pytest.warns(TemnbWarning, match="order=0"):
        next(self_supervised.self_supervised_batches(align.apply_drift(noisy, drift, order=1), 3, 16, 2))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", TemnbWarning)
        next(self_supervised.self_supervised_batches(align.apply_drift(noisy, drift, order=0), 3, 16, 2))
        next(self_supervised.self_supervised_batches(noisy, 3, 16, 2))



def test_the_lattice_warning_uses_the_strongest_spot_by_power_not_by_ratio():
    import warnings

    from temnb.classic.fourier import warn_if_cutoff_removes_lattice

    y, x = np.mgrid[0:128, 0:128]
    # A strong 2 Å fringe (k = 0.5 1/Å on 0.25 Å pixels) and a weak 0.8 Å one (k = 1.25 1/Å):
    # on a clean image the weak one stands far above its tiny background, but it is not the lattice.
    clean = 5.0 + 2.0 * np.cos(2 * np.pi * x / 8.0) + 0.02 * np.cos(2 * np.pi * y / 3.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_cutoff_removes_lattice(clean, 1.0, 0.25)             # keeps the 2 Å fringe: no warning
    with pytest.warns(TemnbWarning, match="2.00 Å"):
        warn_if_cutoff_removes_lattice(clean, 0.4, 0.25)


def test_training_patches_smaller_than_the_receptive_field_warn():
    from temnb.nets.self_supervised import warn_if_patch_below_receptive_field

    udvd = registry.build_model(UDVDConfig(channels=4))            # receptive field 95 px
    with pytest.warns(TemnbWarning, match="receptive field.*95 px"):
        assert warn_if_patch_below_receptive_field(udvd, 48)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_patch_below_receptive_field(udvd, 96)
        assert not warn_if_patch_below_receptive_field(registry.build_model(WCVDConfig()), 16)
    movie = np.random.default_rng(0).poisson(2.0, (6, 48, 48)).astype(np.float32)
    with pytest.warns(TemnbWarning, match="patch borders"):
        self_supervised.fit_self_supervised(udvd, movie, steps=1, patch_size=32, batch_size=1, progress=False)
