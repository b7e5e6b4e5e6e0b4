"""Lazy movies are processed in time blocks: the same numbers as in memory, bounded blocks, files
written block by block, raw data never overwritten."""
from __future__ import annotations

import warnings

import dask.array as da
import mrcfile
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import temnb
from temnb.classic import align, filters
from temnb.core import metadata as md
from temnb.core.errors import DataFileError, TemnbWarning, UnsupportedFormatError
from temnb.io import streaming
from temnb.simulation import synthetic


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setenv(streaming.BLOCK_MB_ENV, "0.05")   # 3 frames of 64 x 64 float32 per block


@pytest.fixture(scope="module")
def movies():
    noisy, _ = synthetic.counted_movie(23, (64, 64), dose=2.0, seed=0)
    arr = np.asarray(noisy.data)
    eager = temnb.from_array(arr, pixel_size=0.0244, frame_time=0.025)
    lazy = temnb.from_array(da.from_array(arr, chunks=(4, 64, 64)), pixel_size=0.0244, frame_time=0.025)
    return eager, lazy


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), block=st.integers(1, 20), reach=st.integers(0, 9))
def test_time_blocks_keep_every_frame_once_and_read_its_reach(n, block, reach):
    kept = []
    for lo, hi, a, b in streaming.time_blocks(n, block, reach):
        assert 0 <= lo <= a < b <= hi <= n and b - a <= block
        assert a - lo == min(reach, a) and hi - b == min(reach, n - b), "the reach, clipped at the ends"
        kept.extend(range(a, b))
    assert kept == list(range(n))


def test_block_size_follows_the_budget_and_covers_the_overlap(monkeypatch):
    monkeypatch.setenv(streaming.BLOCK_MB_ENV, "256")
    assert streaming.block_frames((1024, 1024)) == 64          # 256 MB of float32 frames
    assert streaming.block_frames((1024, 1024), reach=16) == 96, "overlap at most a third of the block"
    monkeypatch.delenv(streaming.BLOCK_MB_ENV)
    assert streaming.block_frames((1024, 1024)) == 32          # the default: 128 MB


@pytest.mark.parametrize("name", [n for n in filters.FILTERS if n != "anscombe_bm3d"])
def test_a_lazy_movie_is_filtered_block_by_block_to_the_same_numbers(movies, small_blocks, name):
    eager, lazy = movies
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TemnbWarning)
        expected = filters.apply(name, eager)
        result = filters.apply(name, lazy, progress=False)
    assert result._lazy and result.data.shape == expected.data.shape
    np.testing.assert_array_equal(result.data.compute(), expected.data)
    assert md.get(result, "temporal_reach", 0) == md.get(expected, "temporal_reach", 0)
    assert result.axes_manager.navigation_axes[0].scale == 0.025


def test_blocks_are_what_the_function_sees(movies, small_blocks):
    _, lazy = movies
    seen = []

    def record(block):
        seen.append(block.data.shape[0])
        return filters.apply("gaussian_3d", block, sigma=1.0, sigma_time=0.5)

    streaming.map_frames(record, lazy, reach=2, progress=False).data.compute()
    assert max(seen) <= streaming.block_frames((64, 64), 2) + 2 * 2, "no call saw more than a block + overlap"
    assert sum(seen) < 23 * 3


def test_a_block_is_freed_before_the_next_is_read(movies, small_blocks, tmp_path):
    """HyperSpy signals are reference cycles: unless map_frames collects them, every block's signals
    (and their arrays) wait for Python's cyclic collector and pile up on a long movie."""
    import gc
    import weakref

    _, lazy = movies
    previous, alive = [], []

    def track(block):
        alive.append(sum(ref() is not None for ref in previous))
        result = filters.apply("gaussian", block, sigma=1.0)
        previous[:] = [weakref.ref(block), weakref.ref(result)]
        return result

    gc.disable()           # as when the collector's thresholds are not reached between blocks
    try:
        streaming.map_frames(track, lazy, reach=0, progress=False, out=tmp_path / "g.mrc")
    finally:
        gc.enable()
    # (the first call is the probe, whose result map_frames keeps as the template of the output)
    assert len(alive) > 3 and max(alive[2:]) == 0, alive


@pytest.mark.parametrize("reference", ["mean", "first", "previous"])
def test_drift_of_a_lazy_movie_matches_the_in_memory_drift(movies, small_blocks, reference):
    eager, lazy = movies
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TemnbWarning)
        a = align.estimate_drift(eager, reference=reference, max_shift_px=4.0, progress=False)
        b = align.estimate_drift(lazy, reference=reference, max_shift_px=4.0, progress=False)
    np.testing.assert_allclose(b.shifts_px, a.shifts_px, atol=1e-12)
    shifted = align.apply_drift(lazy, a, order=1, crop=True, progress=False)
    expected = align.apply_drift(eager, a, order=1, crop=True)
    np.testing.assert_array_equal(shifted.data.compute(), expected.data)
    assert shifted.axes_manager.signal_axes[0].offset == expected.axes_manager.signal_axes[0].offset
    np.testing.assert_array_equal(md.get(shifted, "drift_correction")["shifts_px"], a.shifts_px)


def test_dose_of_a_lazy_movie_is_summed_block_by_block(movies, small_blocks):
    eager, lazy = movies
    region = (slice(0, 16), slice(0, 64))
    assert temnb.estimate_dose(lazy, vacuum=region).dose_per_pixel == pytest.approx(
        temnb.estimate_dose(eager, vacuum=region).dose_per_pixel, rel=1e-12)


def test_a_video_network_denoises_a_lazy_movie_with_its_window(movies, small_blocks):
    from temnb.nets.config import UDVDConfig
    from temnb.nets.registry import build_model

    eager, lazy = movies
    net = build_model(UDVDConfig(frames=5, channels=4, n_scales=2))
    expected = temnb.denoise(eager, net, device="cpu", progress=False)
    result = temnb.denoise(lazy, net, device="cpu", progress=False)
    np.testing.assert_allclose(result.data.compute(), expected.data, atol=1e-6)
    assert md.get(result, "denoised")["architecture"] == "UDVD"


@pytest.mark.parametrize("suffix", [".hspy", ".mrc"])
def test_out_writes_the_result_block_by_block_and_returns_it_lazily(movies, small_blocks, tmp_path, suffix):
    eager, lazy = movies
    expected = filters.apply("gaussian_3d", eager)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TemnbWarning)     # MRC keeps no temnb metadata: said once
        back = filters.apply("gaussian_3d", lazy, out=tmp_path / f"g3d{suffix}", progress=False)
    assert back._lazy and (tmp_path / f"g3d{suffix}").is_file()
    np.testing.assert_allclose(back.data.compute(), expected.data, rtol=1e-6)
    assert back.axes_manager.signal_axes[0].scale == pytest.approx(0.0244)
    assert not list(tmp_path.glob(".*partial*")), "no half-written file left"


def test_out_never_overwrites_the_raw_file(tmp_path, small_blocks):
    raw = tmp_path / "movie.mrc"
    data = np.random.default_rng(0).poisson(2.0, (9, 32, 32)).astype(np.uint16)
    with mrcfile.new(str(raw)) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = 0.5
    before = raw.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TemnbWarning)
        movie = temnb.load(raw, lazy=True)
        with pytest.raises(DataFileError, match="raw data"):
            filters.apply("gaussian", movie, out=raw, overwrite=True, progress=False)
        with pytest.raises(DataFileError, match="raw data"):
            temnb.save(filters.apply("gaussian", movie, progress=False), raw, overwrite=True)
        with pytest.raises(UnsupportedFormatError, match="block by block"):
            filters.apply("gaussian", movie, out=tmp_path / "x.tif", progress=False)
    assert raw.read_bytes() == before


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_hyperspys_own_save_refuses_the_raw_file_for_the_signal_and_what_comes_from_it(tmp_path, lazy):
    import shutil

    from temnb.io import bundled

    raw = tmp_path / "adf.hspy"
    shutil.copy(bundled.real_path("adf_srtio3_110"), raw)
    before = raw.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        movie = temnb.load(raw, lazy=lazy)
        derived = {"loaded": movie, "deepcopy": movie.deepcopy(), "sliced": movie.isig[0:8, 0:8],
                   "arithmetic": movie + 1, "filtered": filters.apply("gaussian", movie, progress=False)}
        for what, signal in derived.items():
            with pytest.raises(DataFileError, match="hyperspy's save was stopped"):
                signal.save(raw, overwrite=True)
        with pytest.raises(DataFileError, match="raw data"):
            movie.save(overwrite=True)            # hyperspy's default file name: the one it was read from
        movie.save(tmp_path / "copy.hspy")        # any other name is hyperspy's save as usual
    assert raw.read_bytes() == before
    assert (tmp_path / "copy.hspy").is_file()
