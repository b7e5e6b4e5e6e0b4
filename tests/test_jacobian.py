"""Effective filters (``temnb.explain.jacobian``): exact local linearity of bias-free networks, the
batched path against the one-pixel autograd loop, blind spots, crops, video frames, bad input.

Tiny seeded networks on small frames, one torch thread: each test takes well under a second, except
the brief training of a bias-free denoiser for the constant-image test (about 3 s)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from temnb.core.errors import DataShapeError, ParameterError, TemnbWarning, TooFewFramesError
from temnb.explain.jacobian import EffectiveFilter, effective_filter, effective_filters
from temnb.nets.config import DnCNNConfig, N2VConfig, UDVDConfig, UNetConfig, WCVDConfig
from temnb.nets.registry import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DOSE = 3.0


def _frame(shape=(40, 44), seed=0):
    return np.random.default_rng(seed).poisson(DOSE, shape).astype(np.float32)


def _movie(frames=6, shape=(40, 44), seed=0):
    return np.random.default_rng(seed).poisson(DOSE, (frames, *shape)).astype(np.float32)


def _net(config):
    return build_model(config, seed=0).eval()


def _with_biases(model, seed=0):
    """The network with random biases and batch-norm shifts: build_model starts biases at zero, which
    would leave a biased architecture exactly linear at initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
    return model


# --------------------------------------------------------------------------- linearity
def test_a_bias_free_unet_is_exactly_its_local_filter():
    net = _net(UNetConfig(n_scales=3, base_channels=8))
    filters = effective_filters(_frame(), net, [(5, 7), (20, 30), (39, 43)], dose=DOSE)
    for f in filters:
        assert f.relative_residual < 1e-5, f.summary()
        assert abs(f.residual) < 1e-5 * max(1.0, abs(f.value))
        assert f.weights.shape == (1, 40, 44) and f.region["kind"] == "whole frame"


def test_a_unet_with_biases_is_not():
    net = _with_biases(_net(UNetConfig(n_scales=3, base_channels=8, bias_free=False)))
    filters = effective_filters(_frame(), net, [(5, 7), (20, 30)], dose=DOSE)
    assert min(abs(f.residual) for f in filters) > 1e-2
    assert min(f.relative_residual for f in filters) > 1e-3


def test_the_value_is_what_denoise_gives_and_the_dose_cancels_in_the_filter():
    from temnb.nets.inference import denoise

    frame, net = _frame(), _net(UNetConfig(n_scales=3, base_channels=8))
    at_dose = effective_filter(frame, net, (20, 30), dose=DOSE)
    denoised = denoise(frame, net, dose=DOSE, device="cpu", progress=False, threads=1)
    assert at_dose.value == pytest.approx(float(denoised[20, 30]), rel=1e-5)
    # Bias-free: f(y) = d g(y / d) has the same Jacobian at any dose d.
    other = effective_filter(frame, net, (20, 30), dose=2 * DOSE)
    np.testing.assert_allclose(other.weights, at_dose.weights, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*low-pass.*:temnb.core.errors.TemnbWarning")  # random counts, no lattice
def test_the_lowpass_of_wcvd_is_part_of_the_filter():
    from temnb.nets.inference import denoise

    movie = _movie()
    net = _net(WCVDConfig(lowpass_cutoff=0.3))
    f = effective_filter(movie, net, (3, 20, 30), dose=DOSE, pixel_size_A=1.0)
    denoised = denoise(movie, net, dose=DOSE, pixel_size_A=1.0, device="cpu", progress=False, threads=1)
    assert f.lowpass_cutoff == 0.3 and f.value == pytest.approx(float(denoised[3, 20, 30]), rel=1e-5)
    assert f.relative_residual < 1e-5                       # the low-pass is linear: still exact
    bare = effective_filter(movie, net, (3, 20, 30), dose=DOSE, include_lowpass=False)
    assert bare.lowpass_cutoff is None and bare.radius_px < f.radius_px  # the FFT spreads the filter
    with pytest.raises(ParameterError, match="whole frame"):
        effective_filter(movie, net, (3, 20, 30), dose=DOSE, pixel_size_A=1.0, crop="auto")


# --------------------------------------------------------------------------- batched against loop
@pytest.mark.parametrize("config, video", [
    (UNetConfig(n_scales=3, base_channels=8), False),
    (DnCNNConfig(depth=5, channels=8), False),
    (N2VConfig(n_scales=2, base_channels=8), False),
    (UDVDConfig(channels=8, n_scales=2, blocks_per_scale=1), True),
    (WCVDConfig(), True),
], ids=["unet", "dncnn", "n2v", "udvd", "wcvd"])
def test_the_batched_filters_equal_one_pixel_autograd(config, video):
    data = _movie() if video else _frame()
    # Far-apart pixels share a backward pass where their receptive fields do not overlap (DnCNN, WCVD
    # here), neighbours do not; batch_size=2 makes several vmapped groups.
    spatial = [(5, 7), (20, 30), (39, 43), (5, 30), (30, 5), (21, 31), (0, 0), (39, 0)]
    pixels = [(t % 6, r, c) for t, (r, c) in zip([3, 3, 3, 3, 0, 3, 5, 3], spatial)] if video else spatial
    net = _net(config)
    batched = effective_filters(data, net, pixels, dose=DOSE, batch_size=2)
    looped = effective_filters(data, net, pixels, dose=DOSE, method="loop")
    for b, loop in zip(batched, looped):
        assert (b.method, loop.method) == ("batched", "loop")
        assert b.input_frames == loop.input_frames and b.pixel == loop.pixel
        np.testing.assert_allclose(b.weights, loop.weights, rtol=0, atol=1e-6 * np.abs(loop.weights).max())
        assert b.value == pytest.approx(loop.value, rel=1e-6, abs=1e-6)


# --------------------------------------------------------------------------- blind spots, video
@pytest.mark.parametrize("config", [UDVDConfig(channels=8, n_scales=2, blocks_per_scale=1), WCVDConfig(),
                                    UDVDConfig(channels=8, n_scales=2, blocks_per_scale=1, blind_region=3)],
                         ids=["udvd", "wcvd", "udvd-blind-3x3"])
def test_a_blind_spot_network_gives_its_own_pixel_no_weight(config):
    movie = _movie()
    for f in effective_filters(movie, _net(config), [(3, 20, 30), (0, 0, 0), (5, 39, 43)], dose=DOSE):
        own = f.weights[f.input_frames.index(f.pixel[0])]
        r, c = f.pixel[1] - f.origin[0], f.pixel[2] - f.origin[1]
        assert f.centre_weight == 0.0 and own[r, c] == 0.0
        assert np.abs(f.weights).sum() > 0
        if config.blind_region == 3:
            assert not own[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2].any()


def test_video_weights_per_frame_add_up_to_the_filter_sum():
    movie = _movie(frames=7)
    net = _net(UDVDConfig(channels=8, n_scales=2, blocks_per_scale=1))
    middle, start = effective_filters(movie, net, [(3, 20, 30), (0, 20, 30)], dose=DOSE)
    assert middle.input_frames == (1, 2, 3, 4, 5) and middle.weights.shape == (5, 40, 44)
    assert start.input_frames == (0, 1, 2)            # the window [2, 1, 0, 1, 2], reflected in time
    for f in (middle, start):
        assert f.frame_weights.sum() == pytest.approx(f.filter_sum, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(f.frame_weights, f.weights.astype(np.float64).sum(axis=(1, 2)), rtol=1e-5)
        assert f.frame_centroid_shift_px.shape == (len(f.input_frames), 2)
        assert np.all(np.abs(f.frame_centroid_shift_px) < 44)
    # A single-frame network on a movie reads only its own frame.
    unet = effective_filter(movie, _net(UNetConfig(n_scales=2, base_channels=4)), (4, 10, 10), dose=DOSE)
    assert unet.input_frames == (4,) and unet.weights.shape == (1, 40, 44)


def test_a_centroid_shift_follows_a_shift_of_the_input():
    # A linear "video network" that reads frame t-1 two columns to the right: its weights in that
    # frame sit 2 px right of the pixel, which the centroid shift reports.
    class ShiftedAverage(torch.nn.Module):
        temporal_window, size_multiple, receptive_field = 3, 1, 5

        def forward(self, x):
            return (torch.roll(x[:, :1], -2, dims=-1) + x[:, 1:2] + x[:, 2:])[:, :1] / 3

    f = effective_filter(_movie(), ShiftedAverage().eval(), (3, 20, 20), dose=DOSE)
    np.testing.assert_allclose(f.frame_centroid_shift_px, [[0, 2], [0, 0], [0, 0]], atol=1e-9)
    np.testing.assert_allclose(f.frame_weights, [1 / 3] * 3, rtol=1e-6)
    assert f.radius_px == 2.0 and f.filter_sum == pytest.approx(1.0, rel=1e-6)


# --------------------------------------------------------------------------- a trained denoiser
def test_a_briefly_trained_bias_free_denoiser_averages_a_flat_image_with_weights_summing_to_one():
    # 150 Adam steps on smooth positive fields with Poisson noise at 5 e-/px (about 3 s): enough for a
    # bias-free DnCNN to keep the mean of a flat region.  (The bundled U-Net does not: its filter sums to
    # about 0.81 on a flat 7.2 e-/px frame, so it is not the network for this test.)
    from scipy import ndimage

    torch.manual_seed(0)
    rng, dose = np.random.default_rng(0), 5.0
    net = build_model(DnCNNConfig(depth=4, channels=8), seed=0)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        fields = ndimage.gaussian_filter(rng.standard_normal((8, 32, 32)), (0, 3, 3), mode="wrap")
        clean = np.clip(1.0 + 0.5 * fields / fields.std(), 0.05, None)
        noisy = rng.poisson(clean * dose) / dose
        loss = torch.mean((net(torch.from_numpy(noisy[:, None]).float())
                           - torch.from_numpy(clean[:, None]).float()) ** 2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()
    flat = np.full((32, 32), dose, np.float32)
    for f in effective_filters(flat, net, [(16, 16), (5, 9), (24, 20)], dose=dose):
        assert f.filter_sum == pytest.approx(1.0, abs=0.05), f.summary()
        assert f.value == pytest.approx(dose * f.filter_sum, rel=1e-5)   # f(c 1) = c sum(a), exactly
        assert 1.0 <= f.radius_px <= 8.0                                 # a local average, not a copy


# --------------------------------------------------------------------------- crops
def test_an_auto_crop_gives_the_whole_frames_filter():
    frame = _frame((90, 101))
    for config, pixel in [(UNetConfig(n_scales=3, base_channels=4, blocks_per_scale=1), (45, 50)),
                          (UNetConfig(n_scales=3, base_channels=4, blocks_per_scale=1), (89, 100)),
                          (DnCNNConfig(depth=5, channels=8), (5, 7))]:
        net = _net(config)
        whole = effective_filter(frame, net, pixel, dose=DOSE)
        crop = effective_filter(frame, net, pixel, dose=DOSE, crop="auto")
        (r0, r1), (c0, c1) = crop.region["rows"], crop.region["cols"]
        assert crop.region["kind"] == "crop" and crop.region["covers_receptive_field"]
        assert crop.weights.shape[1:] == (r1 - r0, c1 - c0) and r1 - r0 < 90
        assert r0 % net.size_multiple == 0 and crop.region["padded_shape"][0] % net.size_multiple == 0
        np.testing.assert_allclose(crop.weights, whole.weights[:, r0:r1, c0:c1], atol=1e-6)
        assert np.abs(whole.weights).sum() == pytest.approx(np.abs(crop.weights).sum(), rel=1e-5)
        assert crop.value == pytest.approx(whole.value, rel=1e-5, abs=1e-6)
    # A video network with circular padding: a pixel at the edge needs the whole axis.
    movie = _movie(shape=(60, 60))
    wcvd = _net(WCVDConfig())
    edge = effective_filter(movie, wcvd, (3, 0, 30), dose=DOSE, crop="auto")
    assert edge.region["rows"] == (0, 60)
    np.testing.assert_allclose(edge.weights, effective_filter(movie, wcvd, (3, 0, 30), dose=DOSE).weights[
        :, :, slice(*edge.region["cols"])], atol=1e-6)


def test_a_crop_smaller_than_the_receptive_field_is_refused_or_flagged():
    frame, net = _frame((96, 96)), _net(UNetConfig(n_scales=3, base_channels=4, blocks_per_scale=1))
    with pytest.raises(ParameterError, match="receptive field"):
        effective_filter(frame, net, (48, 48), dose=DOSE, crop=12)
    with pytest.warns(TemnbWarning, match="receptive field"):
        small = effective_filter(frame, net, (48, 48), dose=DOSE, crop=12, strict=False)
    assert small.region["covers_receptive_field"] is False and small.weights.shape[1:] == (12, 12)
    big = effective_filter(frame, net, (48, 48), dose=DOSE, crop=net.receptive_field + 8)
    assert big.region["covers_receptive_field"] is True


# --------------------------------------------------------------------------- signals
def test_as_signal_keeps_the_calibration_and_centres_the_pixel():
    import temnb

    movie = temnb.from_array(_movie(), pixel_size=0.025, pixel_unit="nm", frame_time=0.1)
    f = effective_filter(movie, _net(UDVDConfig(channels=8, n_scales=2, blocks_per_scale=1)), (3, 20, 30),
                         dose=DOSE)
    assert f.radius_A == pytest.approx(f.radius_px * 0.25)
    np.testing.assert_allclose(f.frame_centroid_shift_A, f.frame_centroid_shift_px * 0.25)
    signal = f.as_signal()
    time_axis, y_axis, x_axis = (signal.axes_manager[name] for name in ("time", "y", "x"))
    assert signal.data.shape == (5, 40, 44)
    assert y_axis.scale == pytest.approx(0.025) and y_axis.units == "nm"
    assert y_axis.value2index(0.0) == 20 and x_axis.value2index(0.0) == 30
    assert time_axis.value2index(0.0) == 2 and time_axis.scale == pytest.approx(0.1)
    node = signal.metadata.Effective_filter
    assert node.architecture == "UDVD" and list(node.pixel) == [3, 20, 30]
    assert "effective filter of UDVD" in signal.metadata.General.title
    frame = effective_filter(_frame(), _net(UNetConfig(n_scales=2, base_channels=4)), (5, 6), dose=DOSE)
    image = frame.as_signal()
    assert image.data.shape == (40, 44) and image.axes_manager.signal_axes[0].offset == -6
    assert frame.radius_A is None
    json.dumps(frame.summary())                                   # plain data, for tables and metadata


def test_a_model_folder_works_like_the_model(tmp_path):
    from temnb.nets.checkpoint import save_model

    net = _net(UNetConfig(n_scales=2, base_channels=4))
    folder = save_model(net, tmp_path / "unet")
    a = effective_filter(_frame(), net, (5, 6), dose=DOSE)
    b = effective_filter(_frame(), str(folder), (5, 6), dose=DOSE, device="cpu")
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-7)
    assert b.model["model_folder"] == str(folder)


# --------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_temnb_errors():
    frame, movie = _frame(), _movie(frames=2)
    unet = _net(UNetConfig(n_scales=2, base_channels=4))
    udvd = _net(UDVDConfig(channels=8, n_scales=2, blocks_per_scale=1))
    with pytest.raises(ParameterError, match="outside the frame"):
        effective_filter(frame, unet, (40, 3), dose=DOSE)
    with pytest.raises(ParameterError, match="outside"):
        effective_filter(frame, unet, (-1, 3), dose=DOSE)
    with pytest.raises(ParameterError, match=r"\(frame, row, col\)"):
        effective_filter(movie, unet, (3, 3), dose=DOSE)
    with pytest.raises(ParameterError, match="outside the movie"):
        effective_filter(movie, unet, (2, 3, 3), dose=DOSE)
    with pytest.raises(TooFewFramesError, match="at least 5"):
        effective_filter(movie, udvd, (1, 3, 3), dose=DOSE)
    with pytest.raises(TooFewFramesError):
        effective_filter(frame, udvd, (3, 3), dose=DOSE)
    with pytest.raises(DataShapeError):
        effective_filter(np.ones(10), unet, (3,), dose=DOSE)
    training = build_model(UNetConfig(n_scales=2, base_channels=4))   # nn.Module starts in train mode
    with pytest.raises(ParameterError, match="training mode"):
        effective_filter(frame, training, (3, 3), dose=DOSE)
    assert training.training                                           # refused, not changed
    with pytest.raises(ParameterError, match="method"):
        effective_filter(frame, unet, (3, 3), dose=DOSE, method="fast")
    with pytest.raises(ParameterError, match="crop"):
        effective_filter(frame, unet, (3, 3), dose=DOSE, crop="small")
    with pytest.raises(ParameterError, match="batch_size"):
        effective_filter(frame, unet, (3, 3), dose=DOSE, batch_size=0)
    with pytest.raises(ParameterError, match="torch.nn.Module"):
        effective_filter(frame, object(), (3, 3), dose=DOSE)
    assert isinstance(effective_filter(frame, unet, (3, 3), dose=DOSE), EffectiveFilter)


# --------------------------------------------------------------------------- the benchmark
def test_the_jacobian_benchmark_quick_run_writes_its_table(tmp_path, capsys):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_jacobian.py"
    spec = importlib.util.spec_from_file_location("bench_jacobian", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "jacobian.json"
    assert module.main(["--quick", "--threads", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    methods = {(row["architecture"], row["method"]) for row in report["rows"]}
    assert methods == {("UNet", "loop"), ("UNet", "batched"), ("UDVD", "loop"), ("UDVD", "batched")}
    assert all(row["ms_per_filter"] > 0 and "peak_extra_mb" in row for row in report["rows"])
    assert max(report["largest_batched_minus_loop"].values()) < 1e-4
    assert "ms/filter" in capsys.readouterr().out
