"""temnb.load / temnb.save: every real file with its calibration, folders of frames, MRC/TIFF/NPY, lazy, round trips."""
from __future__ import annotations

import os
import warnings

import dask.array as da
import hyperspy.api as hs
import mrcfile
import numpy as np
import pytest
import tifffile

import temnb
from temnb.core import metadata as md
from temnb.core.errors import CalibrationWarning, DataFileError, TemnbError, TemnbWarning, UnsupportedFormatError
from temnb.io.calibration import normalise_unit, unit_kind

# file, shape, dtype, (pixel y, pixel x) as the file says (nm when unit is nm), unit,
# frame time (s) or None, navigation axis (name, units, scale) or None, CalibrationWarning expected
REAL_FILES = [
    ("ceta_dark_frame.emd", (512, 512), "int16", (3.1388370544, 3.1388370544), "nm", None, None, None),
    ("format_dm4_stack_3d.dm4", (66, 65, 64), "int16", (3.0, 0.002), "nm", None, ("z", "µm", 4.0), "is not time"),
    ("stem_adf_srtio3_110.hspy", (400, 380), "float16", (0.0093262702, 0.0093262702), None, None, None,
     "pixel size unknown"),
    ("stem_haadf_multi_signal.dm3", (512, 512), "uint16", (0.0177515782, 0.0177515782), "nm", None, None, None),
    ("stem_haadf_nanoparticles_series.emi", (5, 128, 128), "uint16", (0.3843524875, 0.3843524875), "nm", None,
     ("time", None, 1.0), "frame time unknown"),
    ("stem_haadf_nanoparticles_series_1.ser", (5, 128, 128), "uint16", (0.3843524875, 0.3843524875), "nm", None,
     ("time", None, 1.0), "frame time unknown"),
    ("stem_haadf_srtio3_clean.emi", (1024, 1024), "uint16", (0.0100127042, 0.0100127042), "nm", None, None, None),
    ("stem_haadf_srtio3_clean_1.ser", (1024, 1024), "uint16", (0.0100127042, 0.0100127042), "nm", None, None, None),
    ("stem_haadf_srtio3_noisy.emd", (1024, 1024), "uint16", (0.0122465249, 0.0122465249), "nm", None, None, None),
    ("tem_stack_velox.emd", (2, 3, 3), "int16", (0.0081728832, 0.0081728832), "nm", 0.8, ("time", "s", 0.8), None),
    ("stack_stackbuilder.dm3", (3, 2, 16), "uint32", (59.9829033017, 59.9829033017), "nm", None,
     ("time", None, 1.0), "frame time unknown"),
    ("tem_preview_series.emi", (5, 64, 64), "float32", (6.2818336163, 6.2818336163), "nm", None,
     ("time", None, 1.0), "frame time unknown"),
    ("tem_preview_series_1.ser", (5, 64, 64), "float32", (6.2818336163, 6.2818336163), "nm", None,
     ("time", None, 1.0), "frame time unknown"),
    ("random_scan_movie.mrc", (348, 16, 16), "uint16", (1.0, 1.0), "nm", None, ("time", None, 1.0),
     "negative pixel size (-1 nm)"),
    ("haadf_scan.mrc", (16, 16), "uint16", (5.6791313171, 5.6791313171), "nm", None, None, None),
    ("stack_saved_by_dm.tif", (2, 68, 68), "float32", (1686.74004078, 168.674007058), "nm", 2.5, ("time", "s", 2.5),
     "pixels are not square"),
    ("stack_saved_by_imagej.tif", (2, 68, 68), "float32", (168.674710989, 168.674710989), "nm", None,
     ("time", None, 2.5), "frame time unknown"),
    ("stack_3d_small.dm4", (2, 2, 2), "int16", (1.0, 1.0), None, None, ("time", None, 1.0), "pixel size unknown"),
]


def _units(axis):
    return None if str(axis.units) in ("", "<undefined>") else str(axis.units)


def _image_axes(signal):
    rows, cols = sorted(signal.axes_manager.signal_axes, key=lambda a: a.index_in_array)
    return rows, cols


def _calibration_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, CalibrationWarning)]


def test_table_covers_every_real_file(real_dir):
    data_files = [n for n in os.listdir(real_dir) if os.path.splitext(n)[1].lower() in temnb.io.files.FORMATS]
    assert sorted(data_files) == sorted(row[0] for row in REAL_FILES)


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize("name, shape, dtype, pixel, unit, frame_time, nav, warning", REAL_FILES,
                         ids=[row[0] for row in REAL_FILES])
def test_real_file_loads_with_its_calibration(real_dir, file_state, name, shape, dtype, pixel, unit, frame_time,
                                              nav, warning, lazy):
    path = real_dir / name
    before = file_state(path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        signal = temnb.load(path, lazy=lazy)
    assert isinstance(signal, hs.signals.Signal2D)
    assert signal.data.shape == shape and str(signal.data.dtype) == dtype
    rows, cols = _image_axes(signal)
    assert (rows.name, cols.name) == ("y", "x")
    assert (rows.scale, cols.scale) == pytest.approx(pixel, rel=1e-8)
    assert _units(rows) == _units(cols) == unit
    assert md.get(signal, "frame_time") == frame_time
    if nav is None:
        assert signal.axes_manager.navigation_dimension == 0
    else:
        axis = signal.axes_manager.navigation_axes[0]
        assert (axis.name, _units(axis), axis.scale) == nav
    found = _calibration_warnings(record)
    if warning is None:
        assert found == []
    else:
        assert any(warning in text and name in text for text in found), found
        assert any(warning in note for note in md.get(signal, "calibration_notes"))
    assert md.get(signal, "source")[0] == os.path.abspath(path)
    assert md.get(signal, "counts") is None
    assert signal._lazy is lazy and isinstance(signal.data, da.Array) is lazy
    if lazy:
        signal.data.compute()
    assert file_state(path) == before


def test_tia_sources_name_both_emi_and_ser(real_dir):
    with pytest.warns(CalibrationWarning, match="0.235930 s"):  # the TIA scan time is quoted, not used
        signal = temnb.load(real_dir / "stem_haadf_nanoparticles_series.emi")
    assert [os.path.basename(p) for p in md.get(signal, "source")] == [
        "stem_haadf_nanoparticles_series.emi", "stem_haadf_nanoparticles_series_1.ser"]


def test_frame_time_supplies_the_time_axis(real_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        signal = temnb.load(real_dir / "stem_haadf_nanoparticles_series.emi", frame_time=0.23593)
    axis = signal.axes_manager.navigation_axes[0]
    assert (axis.name, axis.units, axis.scale) == ("time", "s", 0.23593)
    assert md.get(signal, "frame_time") == 0.23593


def test_undefined_units_are_declared_by_pixel_unit(real_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        signal = temnb.load(real_dir / "stem_adf_srtio3_110.hspy", pixel_unit="Å")
    rows, cols = _image_axes(signal)
    assert (rows.units, cols.units) == ("nm", "nm")
    assert rows.scale == pytest.approx(0.00093262702, rel=1e-8)


def test_pixel_size_overrides_the_file_and_says_so(real_dir):
    signal = temnb.load(real_dir / "stem_haadf_multi_signal.dm3", pixel_size=(0.02, 0.03))
    rows, cols = _image_axes(signal)
    assert (rows.scale, cols.scale, rows.units) == (0.02, 0.03, "nm")
    assert any("file said 0.0177" in note for note in md.get(signal, "calibration_notes"))


def test_emd_units_and_axis_names_are_normalised(real_dir):
    signal = temnb.load(real_dir / "stem_haadf_srtio3_noisy.emd")
    notes = " | ".join(md.get(signal, "calibration_notes"))
    assert "'n_m' read as 'nm'" in notes and "renamed ('y', 'x')" in notes


def test_multi_signal_file_keeps_the_image_and_notes_it(real_dir):
    signal = temnb.load(real_dir / "stem_haadf_multi_signal.dm3")
    assert signal.metadata.General.title == "HAADF"
    assert any("'Plot'" in note for note in md.get(signal, "calibration_notes"))
    assert temnb.load(real_dir / "stem_haadf_multi_signal.dm3", select="HAADF").data.shape == (512, 512)
    assert temnb.load(real_dir / "stem_haadf_multi_signal.dm3", select=0).data.shape == (512, 512)
    # Acquisition metadata stay as the file gives them.
    assert signal.metadata.Acquisition_instrument.TEM.beam_energy == 300.0


# ------------------------------------------------------------ folders of frames

def _write_hspy_frame(path, value, scale=0.5, units="Å"):
    frame = hs.signals.Signal2D(np.full((8, 6), value, dtype=np.uint16))
    for axis in frame.axes_manager.signal_axes:
        axis.scale, axis.units = scale, units
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.save(path)


def _nested_movie(root, ext="hspy"):
    """Gatan in situ layout; the frame value is its time index.  Plain string sorting gets it wrong."""
    paths = []
    for minute, seconds in ((0, (0, 2, 9, 10)), (1, (0,))):
        for second in seconds:
            for frame in (1, 2, 10):
                folder = root / "Hour_00" / f"Minute_{minute:02d}" / f"Second_{second}"
                paths.append(folder / f"Hour_00_Minute_{minute:02d}_Second_{second}_Frame_{frame}.{ext}")
    assert sorted(map(str, paths)) != list(map(str, paths))
    for index, path in enumerate(paths):
        if ext == "hspy":
            _write_hspy_frame(path, index)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(path, np.full((8, 6), index, dtype=np.uint16))
    return paths


@pytest.mark.parametrize("ext", ["hspy", "tif"])
def test_nested_frame_folders_load_in_time_order(tmp_path, ext):
    paths = _nested_movie(tmp_path / "movie", ext)
    (tmp_path / "movie" / "notes.txt").write_text("not a frame")
    with pytest.warns(CalibrationWarning, match="frame time unknown"):
        signal = temnb.load(tmp_path / "movie", pixel_size=0.2 if ext == "tif" else None)
    assert signal.data.shape == (len(paths), 8, 6)
    np.testing.assert_array_equal(signal.data[:, 0, 0], np.arange(len(paths)))
    assert md.get(signal, "source") == [os.path.abspath(p) for p in paths]
    rows, cols = _image_axes(signal)
    assert (rows.name, cols.name, rows.units) == ("y", "x", "nm")
    assert rows.scale == pytest.approx(0.05 if ext == "hspy" else 0.2)
    assert signal.axes_manager.navigation_axes[0].name == "time"
    assert signal.metadata.General.title == "movie"


def test_frame_folder_with_frame_time(tmp_path):
    _nested_movie(tmp_path / "movie")
    signal = temnb.load(tmp_path / "movie", frame_time=0.0025)
    axis = signal.axes_manager.navigation_axes[0]
    assert (axis.name, axis.units, axis.scale) == ("time", "s", 0.0025)
    assert md.get(signal, "frame_time") == 0.0025


def test_lazy_frame_folder_reads_nothing_until_computed(tmp_path, monkeypatch):
    paths = _nested_movie(tmp_path / "movie")
    calls = []
    real_read = temnb.io.files._read_frames
    monkeypatch.setattr(temnb.io.files, "_read_frames", lambda *a: calls.append(a) or real_read(*a))
    with pytest.warns(CalibrationWarning):
        signal = temnb.load(tmp_path / "movie", lazy=True)
    assert signal._lazy and isinstance(signal.data, da.Array)
    assert calls == []
    np.testing.assert_array_equal(signal.data[:, 0, 0].compute(), np.arange(len(paths)))
    assert len(calls) == len(paths)


def test_glob_loads_in_time_order(tmp_path):
    paths = _nested_movie(tmp_path / "movie")
    with pytest.warns(CalibrationWarning):
        signal = temnb.load(str(tmp_path / "movie" / "**" / "*.hspy"))
    np.testing.assert_array_equal(signal.data[:, 0, 0], np.arange(len(paths)))
    with pytest.warns(CalibrationWarning):
        minute_one = temnb.load(str(tmp_path / "movie" / "Hour_00" / "Minute_01" / "*" / "*.hspy"))
    np.testing.assert_array_equal(minute_one.data[:, 0, 0], np.arange(len(paths) - 3, len(paths)))


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_real_dm4_stacks_in_nested_folders_concatenate(tmp_path, real_copy, real_dir, lazy):
    folders = ["Hour_00/Minute_00/Second_9", "Hour_00/Minute_00/Second_10", "Hour_00/Minute_01/Second_0"]
    copies = [real_copy("format_dm4_stack_3d.dm4", tmp_path / "capture" / f) for f in reversed(folders)][::-1]
    with pytest.warns(CalibrationWarning, match="is not time"):
        signal = temnb.load(tmp_path / "capture", lazy=lazy)
    assert md.get(signal, "source") == [os.path.abspath(p) for p in copies]
    original = hs.load(real_dir / "format_dm4_stack_3d.dm4").data
    data = signal.data.compute() if lazy else signal.data
    np.testing.assert_array_equal(data, np.concatenate([original] * 3))
    rows, cols = _image_axes(signal)
    assert (rows.scale, cols.scale) == pytest.approx((3.0, 0.002))


# ------------------------------------------------------------- MRC, TIFF, NPY

def _write_mrc(path, frames=4):
    data = (np.arange(frames)[:, None, None] * 100 + np.arange(16 * 12).reshape(16, 12)).astype(np.float32)
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.set_image_stack()
        mrc.voxel_size = (1.5, 2.0, 1.0)  # x, y, z in Å
    return data


def test_mrc_movie_voxel_size_in_angstrom_becomes_nm(tmp_path):
    data = _write_mrc(tmp_path / "movie.mrc")
    with pytest.warns(CalibrationWarning, match="frame time unknown"):
        signal = temnb.load(tmp_path / "movie.mrc")
    np.testing.assert_array_equal(signal.data, data)
    rows, cols = _image_axes(signal)
    assert (rows.scale, cols.scale, rows.units, cols.units) == (pytest.approx(0.2), pytest.approx(0.15), "nm", "nm")
    time = signal.axes_manager.navigation_axes[0]
    assert (time.name, time.scale) == ("time", 1.0)  # the z voxel size is not a frame time
    timed = temnb.load(tmp_path / "movie.mrc", frame_time=0.04)
    assert (timed.axes_manager[0].units, timed.axes_manager[0].scale, md.get(timed, "frame_time")) == ("s", 0.04, 0.04)


def test_lazy_mrc_reads_pixels_only_when_computed(tmp_path, monkeypatch):
    path = tmp_path / "movie.mrc"
    data = _write_mrc(path)
    monkeypatch.setattr(temnb.io.files, "count_nonfinite", lambda *a: pytest.fail("lazy load scanned the data"))
    signal = temnb.load(path, lazy=True, frame_time=0.04)
    assert isinstance(signal.data, da.Array)
    # Change the pixels on disk after loading (a tmp copy): the lazy signal must see the new values.
    with mrcfile.open(path, mode="r+") as mrc:
        mrc.data[...] = -1
    np.testing.assert_array_equal(signal.data.compute(), np.full_like(data, -1))


def test_tiff_stack_with_and_without_pixel_size(tmp_path):
    stack = np.arange(3 * 10 * 7, dtype=np.uint16).reshape(3, 10, 7)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    with pytest.warns(CalibrationWarning, match="pixel size unknown"):
        plain = temnb.load(tmp_path / "stack.tif", frame_time=0.1)
    np.testing.assert_array_equal(plain.data, stack)
    assert [a.name for a in plain.axes_manager._axes] == ["time", "y", "x"]
    assert _units(_image_axes(plain)[0]) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        calibrated = temnb.load(tmp_path / "stack.tif", pixel_size=(2.0, 1.5), pixel_unit="A", frame_time=0.1)
    rows, cols = _image_axes(calibrated)
    assert (rows.scale, cols.scale, rows.units) == (pytest.approx(0.2), pytest.approx(0.15), "nm")


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_npy_without_calibration_warns_and_keeps_scale_one(tmp_path, lazy):
    movie = np.random.default_rng(0).poisson(3, (4, 9, 5)).astype(np.float32)
    np.save(tmp_path / "movie.npy", movie)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        signal = temnb.load(tmp_path / "movie.npy", lazy=lazy)
    assert any("pixel size unknown" in text for text in _calibration_warnings(record))
    assert signal.data.shape == (4, 9, 5) and isinstance(signal.data, da.Array) is lazy
    rows, cols = _image_axes(signal)
    assert (rows.scale, cols.scale, _units(rows)) == (1.0, 1.0, None)
    np.testing.assert_array_equal(np.asarray(signal.data), movie)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        calibrated = temnb.load(tmp_path / "movie.npy", lazy=lazy, pixel_size=0.25)
    assert not any("pixel size" in text for text in _calibration_warnings(record))
    assert _image_axes(calibrated)[1].scale == 0.25 and _image_axes(calibrated)[1].units == "nm"


def test_npy_single_frame(tmp_path):
    np.save(tmp_path / "frame.npy", np.ones((6, 4), dtype=np.uint8))
    signal = temnb.load(tmp_path / "frame.npy", pixel_size=0.1)
    assert signal.data.shape == (6, 4) and signal.axes_manager.navigation_dimension == 0


# -------------------------------------------------------------------- saving

def _timed_movie(tmp_path):
    _write_mrc(tmp_path / "movie.mrc")
    return temnb.load(tmp_path / "movie.mrc", frame_time=0.04)


def _assert_same_calibration(a, b):
    assert [(x.name, _units(x)) for x in a.axes_manager._axes] == [(x.name, _units(x)) for x in b.axes_manager._axes]
    assert [x.scale for x in a.axes_manager._axes] == pytest.approx([x.scale for x in b.axes_manager._axes])


def test_hspy_round_trip_keeps_calibration_and_metadata(tmp_path, real_dir):
    signal = temnb.load(real_dir / "stem_haadf_multi_signal.dm3")
    md.set(signal, "counts", True)
    written = temnb.save(signal, tmp_path / "out.hspy")
    assert written == tmp_path / "out.hspy"
    back = temnb.load(tmp_path / "out.hspy")
    np.testing.assert_array_equal(back.data, signal.data)
    _assert_same_calibration(back, signal)
    assert md.get(back, "counts") is True
    assert md.get(back, "calibration_notes") == md.get(signal, "calibration_notes")
    assert md.get(back, "source") == [str(tmp_path / "out.hspy")]
    assert back.metadata.Acquisition_instrument.TEM.beam_energy == 300.0
    assert back.metadata.General.title == "HAADF"


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_movie_round_trips_keep_frame_time(tmp_path, lazy):
    movie = _timed_movie(tmp_path)
    if lazy:
        movie = temnb.load(tmp_path / "movie.mrc", frame_time=0.04, lazy=True)
    temnb.save(movie, tmp_path / "movie.hspy")
    back = temnb.load(tmp_path / "movie.hspy")
    np.testing.assert_array_equal(back.data, np.asarray(movie.data))
    _assert_same_calibration(back, movie)
    assert md.get(back, "frame_time") == 0.04


def test_tiff_round_trip_keeps_calibration_and_warns_about_metadata(tmp_path):
    movie = _timed_movie(tmp_path)
    with pytest.warns(TemnbWarning, match="not stored"):
        temnb.save(movie, tmp_path / "movie.tif")
    back = temnb.load(tmp_path / "movie.tif")
    np.testing.assert_array_equal(back.data, movie.data)
    _assert_same_calibration(back, movie)
    assert md.get(back, "frame_time") == pytest.approx(0.04)


def test_zspy_round_trip(tmp_path):
    movie = _timed_movie(tmp_path)
    try:
        temnb.save(movie, tmp_path / "movie.zspy")
    except UnsupportedFormatError as exc:
        # rosettasciio 0.15 writes ZSPY only with zarr 2; the error must say so and leave nothing behind.
        assert "zarr" in str(exc) and os.listdir(tmp_path) == ["movie.mrc"]
        pytest.skip(f"ZSPY cannot be written in this environment: {exc.problem}")
    back = temnb.load(tmp_path / "movie.zspy")
    np.testing.assert_array_equal(back.data, movie.data)
    _assert_same_calibration(back, movie)
    assert md.get(back, "frame_time") == 0.04


def test_save_overwrites_only_when_asked(tmp_path):
    movie = _timed_movie(tmp_path)
    target = temnb.save(movie, tmp_path / "out.hspy")
    first = target.read_bytes()
    with pytest.raises(DataFileError, match="already exists"):
        temnb.save(movie.inav[:2], target)
    assert target.read_bytes() == first
    temnb.save(movie.inav[:2], target, overwrite=True)
    assert temnb.load(target).data.shape == (2, 16, 12)


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    movie = _timed_movie(tmp_path)

    def broken_save(filename, **kwargs):
        with open(filename, "wb") as fh:
            fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(movie, "save", broken_save)
    with pytest.raises(DataFileError, match="disk full") as info:
        temnb.save(movie, tmp_path / "out.hspy")
    assert "out.hspy" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["movie.mrc"]


def test_save_into_a_copy_folder_keeps_raw_copy_intact(tmp_path, real_copy, file_state):
    raw = real_copy("stem_haadf_srtio3_noisy.emd")
    before = file_state(raw)
    signal = temnb.load(raw, lazy=True)
    temnb.save(signal, tmp_path / "processed.hspy")
    assert file_state(raw) == before


# ------------------------------------------------------------ unit normalisation

@pytest.mark.parametrize("raw, unit, kind", [
    ("n_m", "nm", "length"), ("nm", "nm", "length"), ("um", "µm", "length"), ("μm", "µm", "length"),
    ("micron", "µm", "length"), ("A", "Å", "length"), ("Å", "Å", "length"), ("\u212b", "Å", "length"),
    ("angstrom", "Å", "length"), ("p_m", "pm", "length"), ("1/n_m", "1/nm", "reciprocal"),
    ("nm^-1", "1/nm", "reciprocal"), ("ms", "ms", "time"), ("us", "µs", "time"), ("sec", "s", "time"),
    ("mrad", "mrad", "angle"), ("eV", "eV", "energy"), ("frames", "frames", "unknown"),
    ("px", None, None), ("<undefined>", None, None), ("", None, None), (None, None, None),
])
def test_unit_spellings(raw, unit, kind):
    assert normalise_unit(raw) == unit
    assert unit_kind(raw) == kind


def _movie_file(tmp_path, nav_name, nav_units, nav_scale):
    movie = hs.signals.Signal2D(np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6))
    nav = movie.axes_manager.navigation_axes[0]
    nav.name, nav.units, nav.scale = nav_name, nav_units, nav_scale
    for axis in movie.axes_manager.signal_axes:
        axis.units, axis.scale = "um", 0.001
    movie.save(tmp_path / "movie.hspy")
    return tmp_path / "movie.hspy"


def test_time_axis_in_ms_becomes_seconds(tmp_path):
    path = _movie_file(tmp_path, "Time", "ms", 2.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        signal = temnb.load(path)
    axis = signal.axes_manager.navigation_axes[0]
    assert (axis.name, axis.units, axis.scale) == ("time", "s", 0.0025)
    assert md.get(signal, "frame_time") == 0.0025
    assert _image_axes(signal)[0].scale == pytest.approx(1.0) and _image_axes(signal)[0].units == "nm"


def test_frame_time_replaces_a_spatial_axis_only_when_asked(tmp_path):
    path = _movie_file(tmp_path, "z", "nm", 2.0)
    with pytest.warns(CalibrationWarning, match="is not time"):
        kept = temnb.load(path)
    assert (kept.axes_manager[0].name, kept.axes_manager[0].units) == ("z", "nm")
    assert md.get(kept, "frame_time") is None
    replaced = temnb.load(path, frame_time=0.5)
    assert (replaced.axes_manager[0].name, replaced.axes_manager[0].units, replaced.axes_manager[0].scale) == (
        "time", "s", 0.5)
    assert any("replaced by time" in note for note in md.get(replaced, "calibration_notes"))


# ----------------------------------------------------------------- arrays and plain HDF5 (issue 13, item 6)
def _plain_hdf5(path, data):
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("/meta/tiny", data=np.zeros((3, 3)))
        f.create_dataset("/data/images", data=data)
    return path


def test_from_array_gives_the_signal_load_would(tmp_path):
    import temnb

    movie = np.random.default_rng(0).poisson(2.0, (4, 32, 24)).astype(np.uint16)
    signal = temnb.from_array(movie, pixel_size=0.5, pixel_unit="Å", frame_time=0.025)
    axes = signal.axes_manager
    assert [a.name for a in axes.signal_axes] == ["x", "y"] and axes.navigation_axes[0].name == "time"
    assert axes.signal_axes[0].scale == pytest.approx(0.05) and axes.signal_axes[0].units == "nm"
    assert axes.navigation_axes[0].scale == pytest.approx(0.025)
    assert np.shares_memory(signal.data, movie)  # a view: nothing copied, nothing written
    assert temnb.from_array(movie[0]).data.shape == (32, 24)
    for bad, match in [(np.ones((2, 2, 2, 2)), "shape"), (np.ones((8, 8), complex), "real numbers"),
                       (np.full((8, 8), np.nan), "NaN")]:
        with pytest.raises(TemnbError, match=match):
            temnb.from_array(bad)


def test_plain_hdf5_by_dataset_read_only_and_a_message_that_lists_the_datasets(tmp_path):
    import temnb
    from temnb.core.errors import DataFileError, MissingFileError, UnsupportedFormatError

    data = np.random.default_rng(1).poisson(3.0, (5, 16, 16)).astype(np.uint16)
    path = _plain_hdf5(tmp_path / "atomnet.h5", data)
    before = path.read_bytes()
    with pytest.raises(UnsupportedFormatError, match="plain HDF5") as info:
        temnb.load(path)
    assert "/data/images 5x16x16 uint16" in str(info.value) and "/meta/tiny" not in str(info.value)
    signal = temnb.load(path, dataset="/data/images", pixel_size=0.02, frame_time=0.01)
    np.testing.assert_array_equal(signal.data, data)
    assert signal.axes_manager.signal_axes[0].scale == pytest.approx(0.02)
    lazy = temnb.load(path, dataset="data/images", lazy=True, pixel_size=0.02, frame_time=0.01)
    np.testing.assert_array_equal(np.asarray(lazy.data), data)
    with pytest.raises(MissingFileError, match="no dataset '/nope'"):
        temnb.load(path, dataset="/nope")
    with pytest.raises(DataFileError, match="raw data"):
        temnb.save(signal, path, overwrite=True)
    assert path.read_bytes() == before  # the raw file was never written
    # a .hdf5 that HyperSpy's readers fight over: the readers named, the datasets listed, not "corrupt"
    other = _plain_hdf5(tmp_path / "atomap.hdf5", data)
    with pytest.raises(UnsupportedFormatError, match="not one HyperSpy wrote") as info:
        temnb.load(other)
    assert "dataset=" in str(info.value) and "reader=" in str(info.value)
    assert "HSPY" in str(info.value) and "USID" in str(info.value), "the competing readers are named"
    with pytest.raises(TemnbError):     # the reader chosen: HyperSpy's own refuses a file it did not write
        temnb.load(other, reader="HSPY")
    from temnb.io import bundled

    assert temnb.load(bundled.real_path("adf_srtio3_110"), reader="HSPY").data.shape == (400, 380)


def test_a_negative_pixel_size_is_reported_and_its_magnitude_kept(tmp_path):
    """Issue 13, item 7: a file's -1 nm pixel was accepted silently (and made doses per Å² negative)."""
    import hyperspy.api as hs

    import temnb
    from temnb.core.errors import DataValueError
    from temnb.io.calibration import pixel_size_angstrom

    data = np.random.default_rng(0).poisson(2.0, (3, 16, 16)).astype(np.uint16)
    signal = hs.signals.Signal2D(data)
    for axis in signal.axes_manager.signal_axes:
        axis.scale, axis.units = -1.0, "nm"
    signal.save(tmp_path / "backwards.hspy")
    with pytest.warns(CalibrationWarning, match="negative pixel size"):
        loaded = temnb.load(tmp_path / "backwards.hspy", frame_time=0.025)
    assert pixel_size_angstrom(loaded) == pytest.approx(10.0)
    np.testing.assert_array_equal(loaded.data, data)  # not flipped
    assert any("negative pixel size" in note for note in loaded.metadata.temnb.calibration_notes)
    for axis in signal.axes_manager.signal_axes:
        axis.scale = 0.0
    signal.save(tmp_path / "flat.hspy")
    with pytest.raises(DataValueError, match="pixel size of 0"):
        temnb.load(tmp_path / "flat.hspy")
