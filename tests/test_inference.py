"""temnb.nets.inference.denoise: kinds in and out, padding, tiling, dose scaling, provenance, video windows."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from temnb.core import metadata as md
from temnb.core.errors import DataShapeError, DataValueError, ParameterError, TooFewFramesError
from temnb.nets.checkpoint import save_model
from temnb.nets.config import DnCNNConfig, UNetConfig
from temnb.nets.inference import denoise, tile_starts, tile_weights
from temnb.nets.registry import build_model


def _net(config, seed=0):
    torch.manual_seed(seed)
    return build_model(config).eval()


UNET = UNetConfig(n_scales=3, base_channels=4)
DNCNN = DnCNNConfig(depth=4, channels=6)  # receptive field 9 px


def _movie(shape=(3, 32, 32), seed=0):
    return np.random.default_rng(seed).poisson(2.0, shape).astype(np.float32)


class _Window(nn.Module):
    """A toy 'video model': the mean of its temporal_window input channels."""

    def __init__(self, window):
        super().__init__()
        self.temporal_window = window
        self.size_multiple = 1
        self.receptive_field = 1
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x.mean(dim=1, keepdim=True) * self.scale


def test_numpy_frame_and_movie():
    net = _net(UNET)
    frame = _movie((32, 32))[...]
    out = denoise(frame, net, progress=False)
    assert isinstance(out, np.ndarray) and out.shape == frame.shape and out.dtype == np.float32
    movie = _movie((3, 32, 48))
    out = denoise(movie, net, progress=False, batch_size=2)
    assert out.shape == movie.shape
    # Frames are processed independently: frame 1 alone gives the same answer (same dose).
    one = denoise(movie[1], net, progress=False, dose=float(movie.mean()))
    np.testing.assert_allclose(out[1], one, rtol=1e-5, atol=1e-5)
    assert not net.training


def test_dose_scaling_is_what_the_network_sees():
    # Bias-free + input/dose, output*dose: the result does not depend on the dose chosen.
    net = _net(DNCNN)
    frame = _movie((24, 24))
    a = denoise(frame, net, dose=0.45, progress=False)
    b = denoise(frame, net, dose=7.0, progress=False)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        direct = net(torch.from_numpy(frame / 2.0)[None, None])[0, 0].numpy() * 2.0
    np.testing.assert_allclose(denoise(frame, net, dose=2.0, progress=False), direct, rtol=1e-5, atol=1e-5)


def test_hyperspy_movie_keeps_calibration_and_records_provenance(tmp_path):
    import hyperspy.api as hs

    net = _net(UNET)
    folder = save_model(net, tmp_path / "unet", card={"training_data": "simulated Pt, 0.45 e/px"})
    sig = hs.signals.Signal2D(_movie((3, 32, 32)))
    sig.metadata.General.title = "Pt movie"
    for ax, (scale, units, offset) in zip(sig.axes_manager._axes, [(0.1, "s", 2.0), (0.05, "nm", 1.0),
                                                                   (0.05, "nm", -1.0)]):
        ax.scale, ax.units, ax.offset = scale, units, offset
    md.set(sig, "dose_per_pixel", 2.0)
    out = denoise(sig, str(folder), progress=False)
    assert isinstance(out, hs.signals.Signal2D) and out.data.shape == sig.data.shape
    for a, b in zip(out.axes_manager._axes, sig.axes_manager._axes):
        assert (a.scale, a.units, a.offset) == (b.scale, b.units, b.offset)
    assert out.metadata.General.title == "Pt movie (denoised: UNet)"
    assert out.metadata.Signal.quantity == "Electrons (denoised)"
    prov = out.metadata.temnb.denoised.as_dictionary()
    assert prov["architecture"] == "UNet" and prov["config"] == UNET.to_dict()
    assert prov["model_folder"] == str(folder) and prov["trained_on"] == "simulated Pt, 0.45 e/px"
    assert prov["dose_used"] == 2.0  # from metadata.temnb.dose_per_pixel, not the data mean
    assert "denoised" not in sig.metadata.temnb  # input untouched
    np.testing.assert_allclose(out.data, denoise(sig.data, net, dose=2.0, progress=False), atol=1e-5)


def test_sizes_that_are_not_multiples_are_padded_and_cropped():
    net = _net(UNET)
    frame = _movie((37, 53))
    out = denoise(frame, net, progress=False)
    assert out.shape == (37, 53)
    # Cropping, not resampling: equal to running the net on the reflect-padded frame.
    dose = float(frame.mean())
    padded = np.pad(frame / dose, ((0, 3), (0, 3)), mode="reflect").astype(np.float32)
    with torch.no_grad():
        direct = net(torch.from_numpy(padded)[None, None])[0, 0].numpy()[:37, :53] * dose
    np.testing.assert_allclose(out, direct, rtol=1e-5, atol=1e-5)


def test_tile_weights_sum_to_one():
    for length, tile, overlap in [(100, 32, 8), (64, 32, 8), (37, 16, 4), (20, 32, 8), (96, 32, 0)]:
        starts = tile_starts(length, min(tile, length), overlap)
        t = min(tile, length)
        w = tile_weights(length, starts, t, overlap)
        total = np.zeros(length)
        for s, row in zip(starts, w):
            total[s:s + t] += row
        np.testing.assert_allclose(total, 1.0, atol=1e-12)
        assert starts[0] == 0 and starts[-1] + t == length and np.all(w >= 0)
        assert all(b - a <= t - overlap for a, b in zip(starts, starts[1:]))


def _clean_mask(length, tile, overlap, margin):
    """Pixels covered by exactly one tile and more than *margin* from its inner edges."""
    starts = tile_starts(length, tile, overlap)
    count = np.zeros(length, int)
    for s in starts:
        count[s:s + tile] += 1
    ok = count == 1
    for s in starts:
        for edge in (s, s + tile):
            if 0 < edge < length:
                ok[max(0, edge - margin):edge + margin] = False
    return ok


@pytest.mark.parametrize("config,size,tile,overlap,tol,global_tol", [
    (DNCNN, (70, 90), 32, 12, 1e-5, 0.1),
    (UNetConfig(n_scales=2, base_channels=4), (64, 72), 32, 8, 1e-3, None),  # rf 20 > overlap
])
def test_tiled_equals_whole_frame_away_from_seams(config, size, tile, overlap, tol, global_tol):
    net = _net(config)
    frame = _movie(size, seed=4)
    whole = denoise(frame, net, progress=False, dose=2.0)
    tiled = denoise(frame, net, progress=False, dose=2.0, tile=tile, overlap=overlap, batch_size=3)
    assert tiled.shape == whole.shape
    margin = net.receptive_field // 2 + 1
    mask = np.outer(_clean_mask(size[0], tile, overlap, margin), _clean_mask(size[1], tile, overlap, margin))
    assert mask.sum() > 50
    scale = np.abs(whole).max()
    assert np.abs(tiled - whole)[mask].max() <= tol * scale
    if global_tol is not None:
        # The residual DnCNN output is image-like, so the average seam error can be judged against it.
        assert np.abs(tiled - whole).mean() < global_tol * np.abs(whole).mean()


def test_tiling_on_by_default_for_huge_frames(monkeypatch):
    import temnb.nets.inference as inf

    monkeypatch.setattr(inf, "_WHOLE_FRAME_PIXELS", {"cpu": 32 * 32, "cuda": 32 * 32})
    monkeypatch.setattr(inf, "_DEFAULT_TILE", 32)
    net = _net(DNCNN)
    frame = _movie((80, 80), seed=5)
    calls = []
    net.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    denoise(frame, net, progress=False, dose=2.0, batch_size=1)
    assert len(calls) > 1 and all(shape[-2:] == (32, 32) for shape in calls)


def test_model_folder_path_works(tmp_path):
    net = _net(DNCNN)
    folder = save_model(net, tmp_path / "dn")
    frame = _movie((20, 20))
    np.testing.assert_allclose(denoise(frame, folder, progress=False), denoise(frame, net, progress=False),
                               atol=1e-6)


def test_bad_input():
    net = _net(DNCNN)
    frame = _movie((20, 20))
    frame[3, 4] = np.nan
    with pytest.raises(DataValueError):
        denoise(frame, net, progress=False)
    with pytest.raises(DataShapeError):
        denoise(np.ones(50, np.float32), net, progress=False)
    with pytest.raises(TooFewFramesError):
        denoise(_movie((3, 16, 16)), _Window(5), progress=False)
    with pytest.raises(TooFewFramesError):
        denoise(_movie((16, 16)), _Window(3), progress=False)
    with pytest.raises(ParameterError):
        denoise(_movie((16, 16)), nn.Conv2d(1, 1, 3), progress=False)
    with pytest.raises(ParameterError):
        denoise(_movie((16, 16)), net, dose=-1, progress=False)
    with pytest.raises(ParameterError):
        denoise(_movie((16, 16)), net, batch_size=0, progress=False)
    with pytest.raises(DataValueError):
        denoise(np.zeros((16, 16), np.float32), net, progress=False)  # mean 0: no dose to scale by


def test_sliding_window_video_model():
    movie = _movie((5, 8, 9), seed=2)
    out = denoise(movie, _Window(3), progress=False, dose=1.0)
    padded = np.concatenate([movie[1:2], movie, movie[-2:-1]])  # reflect at the ends
    expected = np.stack([padded[t:t + 3].mean(0) for t in range(5)])
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[0], (movie[1] + movie[0] + movie[1]) / 3, rtol=1e-6)


def test_windows_across_batches_and_tiles_and_the_input_is_never_changed():
    # 5-frame windows gathered per batch of 2 (a batch reads frames the next one reads again), on
    # tiles; float32 input (which denoise could use without a copy) and read-only input.
    movie = _movie((6, 20, 23), seed=3) + 0.5
    keep = movie.copy()
    movie.flags.writeable = False
    out = denoise(movie, _Window(5), progress=False, dose=0.7, batch_size=2, tile=12, overlap=4)
    padded = np.concatenate([movie[2:0:-1], movie, movie[-2:-4:-1]])  # reflect at the ends
    expected = np.stack([padded[t:t + 5].mean(0) for t in range(6)])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(movie, keep)


def test_progress_bar_counts_batches(capsys):
    net = _net(DNCNN)
    denoise(_movie((5, 16, 16)), net, progress=True, batch_size=2)
    err = capsys.readouterr().err
    assert "3/3" in err


def test_a_model_warns_outside_the_regime_it_was_trained_in():
    import warnings

    import hyperspy.api as hs

    from temnb.core.errors import TemnbWarning
    from temnb.nets.config import UNetConfig
    from temnb.nets.inference import denoise, warn_if_outside_regime
    from temnb.nets.registry import build_model

    model = build_model(UNetConfig(n_scales=2, base_channels=4))
    model.model_card = {"regime": {"dose_per_pixel": 7.2, "dose_per_area": 121.0, "pixel_size_A": 0.244}}
    movie = hs.signals.Signal2D(np.random.default_rng(0).poisson(7.2, (2, 32, 32)).astype(np.float32))
    for ax in movie.axes_manager.signal_axes:
        ax.scale, ax.units = 0.0244, "nm"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        denoise(movie, model, progress=False)                           # in its regime: silent
    with pytest.warns(TemnbWarning, match="0.45 e-/px, where it was trained at 7.2"):
        denoise(movie, model, dose=0.45, progress=False)
    with pytest.warns(TemnbWarning, match="0.61 Å pixels"):
        denoise(movie.data, model, pixel_size_A=0.61, progress=False)
    assert warn_if_outside_regime({}, 100.0, 5.0) == []                 # no regime on the card: no check


@pytest.mark.parametrize("tile", [None, 32])
def test_denoise_with_two_worker_threads_gives_the_one_thread_result(tile):
    from temnb.nets.config import UNetConfig, WCVDConfig
    from temnb.nets.registry import build_model

    movie = np.random.default_rng(0).poisson(2.0, (5, 48, 48)).astype(np.float32)
    for config in (WCVDConfig(), UNetConfig(n_scales=2, base_channels=4)):
        net = build_model(config)
        one = denoise(movie, net, dose=2.0, tile=tile, threads=1, progress=False)
        two = denoise(movie, net, dose=2.0, tile=tile, threads=2, progress=False)
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
    with pytest.raises(ParameterError, match="threads"):
        denoise(movie, net, dose=2.0, threads="many", progress=False)


def test_self_ensemble_is_equivariant_and_averages_the_turns():
    from temnb.nets.config import WCVDConfig
    from temnb.nets.registry import build_model

    movie = np.random.default_rng(1).poisson(3.0, (4, 24, 32)).astype(np.float32)
    net = build_model(WCVDConfig())
    ens = denoise(movie, net, dose=3.0, ensemble=8, progress=False)
    turned = denoise(np.ascontiguousarray(np.rot90(movie, 1, axes=(1, 2))), net, dose=3.0, ensemble=8, progress=False)
    np.testing.assert_allclose(turned, np.rot90(ens, 1, axes=(1, 2)), rtol=1e-4, atol=1e-5)
    by_hand = np.mean([np.rot90(denoise(np.ascontiguousarray(np.rot90(movie, k, axes=(1, 2))), net, dose=3.0,
                                        progress=False), -k, axes=(1, 2)) for k in range(4)], axis=0)
    np.testing.assert_allclose(denoise(movie, net, dose=3.0, ensemble=4, progress=False), by_hand, rtol=1e-5, atol=1e-6)
    for bad in (2, True, "8"):
        with pytest.raises(ParameterError, match="ensemble"):
            denoise(movie, net, dose=3.0, ensemble=bad, progress=False)
