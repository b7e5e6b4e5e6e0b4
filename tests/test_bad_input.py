"""Bad input to temnb.load / temnb.save: the right temnb error, the file named, the file untouched."""
from __future__ import annotations

import logging
import os

import hyperspy.api as hs
import mrcfile
import numpy as np
import pytest

import temnb
from temnb.core import metadata as md
from temnb.core.errors import (
    CorruptFileError,
    DataFileError,
    DataShapeError,
    DataValueError,
    MissingFileError,
    ParameterError,
    UnsupportedFormatError,
)


def _truncate(path, keep):
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(int(size * keep) if keep < 1 else size - int(keep))


def _load_fails(path, error, *, lazy=False, match=None, file_state=None, **kwargs):
    """Load must raise *error* naming the file, and leave the file as it was."""
    before = file_state(path) if file_state and os.path.isfile(path) else None
    with pytest.raises(error) as info:
        temnb.load(path, lazy=lazy, **kwargs)
    assert os.path.basename(str(path).rstrip("/")) in str(info.value)
    if match:
        assert match in str(info.value), str(info.value)
    if before is not None:
        assert file_state(path) == before
    return info.value


# ------------------------------------------------------------ missing / unsupported

def test_missing_file(tmp_path):
    _load_fails(tmp_path / "nope.dm4", MissingFileError, match="does not exist")


def test_glob_matching_nothing(tmp_path):
    _load_fails(str(tmp_path / "Hour_*" / "*.dm4"), MissingFileError, match="matches no files")


def test_folder_without_frames(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no frames here")
    _load_fails(tmp_path / "empty", MissingFileError, match=".dm4")


def test_unknown_extension_lists_supported_ones(tmp_path, file_state):
    path = tmp_path / "movie.xyz"
    path.write_bytes(b"\x00" * 64)
    error = _load_fails(path, UnsupportedFormatError, file_state=file_state)
    assert all(ext in str(error) for ext in (".dm4", ".mrc", ".tif", ".hspy", ".emd", ".npy"))


def test_folder_with_two_formats(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 4)))
    hs.signals.Signal2D(np.zeros((4, 4))).save(tmp_path / "b.hspy")
    _load_fails(tmp_path, DataFileError, match="several formats")


# ------------------------------------------------------------------- corrupt

@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize("name, keep", [("format_dm4_stack_3d.dm4", 0.5), ("format_dm4_stack_3d.dm4", 16),
                                        ("stem_haadf_multi_signal.dm3", 0.9), ("stem_adf_srtio3_110.hspy", 0.5),
                                        ("ceta_dark_frame.emd", 0.5), ("stem_haadf_srtio3_clean_1.ser", 0.5)])
def test_truncated_real_file_is_corrupt(real_copy, file_state, caplog, name, keep, lazy):
    path = real_copy(name if not name.endswith(".ser") else "stem_haadf_srtio3_clean.emi")
    path = path.with_name(name)
    _truncate(path, keep)
    with caplog.at_level(logging.DEBUG):
        _load_fails(path, CorruptFileError, lazy=lazy, file_state=file_state, match="could not be read")
    # hyperspy's 'please report this error' log is replaced by temnb's own explanation.
    assert not any("report this error" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_truncated_mrc_and_npy_are_caught_even_lazily(tmp_path, file_state, lazy):
    with mrcfile.new(tmp_path / "movie.mrc") as mrc:
        mrc.set_data(np.zeros((4, 16, 12), np.float32))
    np.save(tmp_path / "movie.npy", np.zeros((4, 16, 12), np.float32))
    for path in (tmp_path / "movie.mrc", tmp_path / "movie.npy"):
        _truncate(path, 200)
        _load_fails(path, CorruptFileError, lazy=lazy, file_state=file_state)


@pytest.mark.parametrize("content", [b"", b"hello world" * 10], ids=["empty", "text"])
@pytest.mark.parametrize("ext", [".dm4", ".hspy", ".emd", ".tif", ".mrc", ".npy", ".emi"])
def test_not_really_that_format(tmp_path, file_state, ext, content):
    path = tmp_path / f"junk{ext}"
    path.write_bytes(content)
    _load_fails(path, CorruptFileError, file_state=file_state)


# ------------------------------------------------------------ shape and values

def test_nan_in_float_data_is_counted(tmp_path, file_state):
    movie = np.ones((3, 8, 8), np.float32)
    movie[1, 2, 3] = np.nan
    movie[2, 0, :2] = np.inf
    np.save(tmp_path / "movie.npy", movie)
    hs.signals.Signal2D(movie).save(tmp_path / "movie.hspy")
    for path in (tmp_path / "movie.npy", tmp_path / "movie.hspy"):
        _load_fails(path, DataValueError, match="3 NaN or infinite", file_state=file_state)
    # Lazily, nothing is scanned on load; the helper counts when asked.
    lazy = temnb.load(tmp_path / "movie.npy", lazy=True, pixel_size=1, frame_time=1)
    assert temnb.io.files.count_nonfinite(lazy.data) == 3


def test_nan_in_a_frame_file_names_that_file(tmp_path):
    for i in range(3):
        frame = np.full((4, 4), float(i), np.float32)
        if i == 2:
            frame[0, 0] = np.nan
        np.save(tmp_path / f"frame_{i}.npy", frame)
    _load_fails(tmp_path, DataValueError, match="frame_2.npy")


def test_complex_data(tmp_path):
    np.save(tmp_path / "fft.npy", np.ones((8, 8), np.complex64))
    _load_fails(tmp_path / "fft.npy", DataValueError, match="complex")


def test_line_profile_where_an_image_is_expected(tmp_path, real_dir):
    np.save(tmp_path / "profile.npy", np.arange(50.0))
    _load_fails(tmp_path / "profile.npy", DataShapeError, match="1-D")
    hs.signals.Signal1D(np.arange(50.0)).save(tmp_path / "spectrum.hspy")
    _load_fails(tmp_path / "spectrum.hspy", DataShapeError, match="1-D")
    _load_fails(real_dir / "stem_haadf_multi_signal.dm3", DataShapeError, select=1, match="1-D")


def test_four_dimensional_data(tmp_path):
    np.save(tmp_path / "scan.npy", np.zeros((2, 3, 4, 5)))
    _load_fails(tmp_path / "scan.npy", DataShapeError, match="(2, 3, 4, 5)")


def test_frames_of_different_sizes(tmp_path):
    np.save(tmp_path / "frame_1.npy", np.zeros((4, 4)))
    np.save(tmp_path / "frame_2.npy", np.zeros((4, 5)))
    _load_fails(tmp_path, DataShapeError, match="frame_2.npy")


def test_select_out_of_range_lists_titles_and_shapes(real_dir):
    error = _load_fails(real_dir / "stem_haadf_multi_signal.dm3", ParameterError, select=7)
    assert "'HAADF' (image, 512x512)" in str(error) and "'Plot' (1-D, 512)" in str(error)
    _load_fails(real_dir / "stem_haadf_multi_signal.dm3", ParameterError, select="DF4", match="'HAADF'")


def test_several_images_need_select(tmp_path, monkeypatch):
    path = tmp_path / "two.hspy"
    hs.signals.Signal2D(np.zeros((4, 4))).save(path)
    images = []
    for title in ("HAADF", "DF2"):
        image = hs.signals.Signal2D(np.zeros((4, 4)))
        image.metadata.General.title = title
        images.append(image)
    monkeypatch.setattr(hs, "load", lambda *a, **k: list(images))  # a Velox-like file with two detectors
    error = _load_fails(path, ParameterError, match="select=")
    assert "'HAADF'" in str(error) and "'DF2'" in str(error)
    assert temnb.load(path, select="DF2", pixel_size=1).metadata.General.title == "DF2"


@pytest.mark.parametrize("kwargs", [{"pixel_size": -1}, {"pixel_size": (1, 2, 3)}, {"pixel_unit": "s"},
                                    {"frame_time": 0}, {"frame_time": float("nan")}, {"pixel_size": "big"}])
def test_bad_calibration_parameters(real_dir, kwargs):
    with pytest.raises(ParameterError, match=next(iter(kwargs))):
        temnb.load(real_dir / "stem_haadf_multi_signal.dm3", **kwargs)


# ------------------------------------------------------------------- saving

def test_save_refuses_to_overwrite_raw_data(real_copy, file_state):
    raw = real_copy("stem_haadf_nanoparticles_series.emi")
    ser = raw.with_name("stem_haadf_nanoparticles_series_1.ser")
    states = {p: file_state(p) for p in (raw, ser)}
    signal = temnb.load(raw, frame_time=0.2)
    for target in (raw, ser):
        with pytest.raises(DataFileError, match="raw data") as info:
            temnb.save(signal, target, overwrite=True)
        assert target.name in str(info.value)
    assert {p: file_state(p) for p in states} == states


def test_save_refuses_to_overwrite_the_lazy_source(real_copy, file_state):
    raw = real_copy("stem_adf_srtio3_110.hspy")
    before = file_state(raw)
    signal = temnb.load(raw, lazy=True, pixel_unit="nm")
    with pytest.raises(DataFileError, match="raw data"):
        temnb.save(signal, str(raw), overwrite=True)
    with pytest.raises(DataFileError, match="raw data"):  # the same file by another spelling
        temnb.save(signal, raw.parent / "." / raw.name, overwrite=True)
    assert file_state(raw) == before


def test_save_refuses_existing_file(tmp_path, file_state):
    signal = hs.signals.Signal2D(np.zeros((4, 4)))
    target = tmp_path / "result.hspy"
    target.write_bytes(b"someone's result")
    before = file_state(target)
    with pytest.raises(DataFileError, match="already exists") as info:
        temnb.save(signal, target)
    assert "result.hspy" in str(info.value)
    assert file_state(target) == before


def test_save_bad_targets(tmp_path):
    signal = hs.signals.Signal2D(np.zeros((4, 4)))
    with pytest.raises(UnsupportedFormatError, match=".hspy"):
        temnb.save(signal, tmp_path / "result.xyz")
    with pytest.raises(MissingFileError, match="does not exist"):
        temnb.save(signal, tmp_path / "no_such_folder" / "result.hspy")
    with pytest.raises(ParameterError, match="ndarray"):
        temnb.save(np.zeros((4, 4)), tmp_path / "result.hspy")
    with pytest.raises(DataFileError, match="result.png"):  # hyperspy's writer refuses a 4-D signal
        temnb.save(hs.signals.Signal2D(np.zeros((2, 2, 4, 4))), tmp_path / "result.png")
    assert os.listdir(tmp_path) == []
    assert md.get(signal, "source") is None


def test_single_frame_file_where_a_movie_is_needed_names_the_file(real_dir):
    import temnb
    from temnb.core.errors import TooFewFramesError

    image = temnb.load(real_dir / "stem_haadf_srtio3_clean.emi")
    with pytest.raises(TooFewFramesError, match="stem_haadf_srtio3_clean.*single frame"):
        temnb.classic.poisson.averaging_gain(image)


def test_negative_counts_in_a_file_name_the_file(tmp_path, file_state):
    import numpy as np

    import temnb
    from temnb.core.errors import NotCountsError

    path = tmp_path / "signed_counts.npy"
    np.save(path, np.array([[[0, 1], [-2, 1]], [[1, 0], [0, 2]]], dtype=np.int16))
    before = file_state(path)
    movie = temnb.load(path)
    with pytest.raises(NotCountsError, match="signed_counts.npy.*negative"):
        temnb.estimate_dose(movie)
    assert file_state(path) == before


def test_poisson_self_supervised_training_refuses_detector_units_and_says_the_way_out():
    import temnb
    from temnb.core.errors import NotCountsError
    from temnb.nets.config import N2VConfig
    from temnb.nets.registry import build_model
    from temnb.nets.self_supervised import fit_self_supervised

    rng = np.random.default_rng(0)
    counts = rng.poisson(4.0, (6, 32, 32)).astype(np.float32)
    detector = temnb.from_array(100.0 + 37.5 * counts + rng.normal(0, 3, counts.shape).astype(np.float32))
    net = build_model(N2VConfig(base_channels=4, n_scales=2))
    with pytest.raises(NotCountsError) as err:
        fit_self_supervised(net, detector, steps=1, batch_size=2, patch_size=16, kind="poisson",
                            device="cpu", progress=False)
    text = str(err.value)
    assert "kind='poisson'" in text and "to_counts" in text and "kind='mse'" in text
    # The same movie in counts, and the MSE loss on detector units, both train.
    assert len(fit_self_supervised(net, temnb.to_counts(detector, gain=37.5, offset=100.0), steps=1,
                                   batch_size=2, patch_size=16, kind="poisson", device="cpu", progress=False)) == 1
    assert len(fit_self_supervised(net, detector, steps=1, batch_size=2, patch_size=16, kind="mse",
                                   device="cpu", progress=False)) == 1
