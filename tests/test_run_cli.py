"""run_series and the `temnb` command on tiny throwaway notebooks (real papermill kernels)."""
from __future__ import annotations

import json

import nbformat
import pytest

from temnb.core.errors import ParameterError
from temnb.notebook import cli
from temnb.notebook.results import read_results
from temnb.notebook.run import parse_parameter_value, read_parameters_file, run_series, select_notebooks

RECORDING_BODY = """
import os, temnb
run = temnb.NotebookRun(NAME, out_dir=OUT_DIR, seed=SEED, params=dict(PRESET=PRESET))
run.record("n_frames", N_FRAMES)
run.record("n_frames_type", type(N_FRAMES).__name__)
run.record("label", LABEL)
run.record("preset", PRESET)
run.record("cwd", os.getcwd())
run.finish()
"""


def _notebook(path, parameters: str | None, body: str):
    cells = [nbformat.v4.new_markdown_cell("# tiny test notebook")]
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells.append(nbformat.v4.new_code_cell(body))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _params(name: str) -> str:
    return (f'NAME = "{name}"\nOUT_DIR = "should-be-replaced"\nPRESET = "smoke"\nSEED = 0\n'
            'N_FRAMES = 1\nLABEL = "default"  # "default" = nothing chosen\n')


@pytest.fixture
def series(tmp_path, monkeypatch):
    """tmp_path/notebooks with two recording notebooks and one that fails; cwd = tmp_path."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_first.ipynb", _params("00_first"), RECORDING_BODY)
    _notebook(folder / "01_second.ipynb", _params("01_second"), RECORDING_BODY)
    _notebook(folder / "02_broken.ipynb", 'OUT_DIR = "x"\n', 'raise ValueError("deliberate failure")')
    (folder / "notes.ipynb").write_text("{}")  # not part of the series: no NN_ prefix
    monkeypatch.chdir(tmp_path)
    return folder


def test_cli_run_injects_typed_and_yaml_parameters(series, tmp_path, capsys, caplog):
    params = tmp_path / "params.yaml"
    params.write_text("LABEL: everyone\nN_FRAMES: 3\n01_second:\n  LABEL: only-second\n")

    code = cli.main(["run", "00", "second", "-p", "N_FRAMES", "8", "-f", str(params),
                     "--preset", "workshop", "--no-progress"])

    assert code == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, "a new time-stamped run folder under runs/"
    run_dir = runs[0]
    for stem in ("00_first", "01_second"):
        assert (run_dir / f"{stem}.ipynb").is_file()
        assert "<html" in (run_dir / f"{stem}.html").read_text()[:2000].lower()
    assert not (run_dir / "02_broken.ipynb").exists(), "unselected notebook must not run"

    results = json.loads((run_dir / "results.json").read_text())
    assert set(results) == {"00_first", "01_second"}
    first, second = results["00_first"]["records"], results["01_second"]["records"]
    assert first["n_frames"]["value"] == 8 and first["n_frames_type"]["value"] == "int", "-p beats the file"
    assert first["label"]["value"] == "everyone"
    assert second["label"]["value"] == "only-second"
    assert first["preset"]["value"] == "workshop"
    assert first["cwd"]["value"] == str(series.resolve()), "notebooks run inside their folder"
    assert results["00_first"]["finished"] is not None

    out = capsys.readouterr().out
    assert str(run_dir) in out and "only-second" in out
    assert "unknown parameter" not in caplog.text, "declared names are not reported as unknown"


def test_cli_run_failing_notebook_exits_nonzero_and_names_it(series, tmp_path, capsys):
    out_dir = tmp_path / "myrun"
    code = cli.main(["run", "0", "2", "--out", str(out_dir), "--no-html", "--no-progress"])

    assert code == 1
    err = capsys.readouterr().err
    assert "02_broken.ipynb" in err and "deliberate failure" in err
    assert str(out_dir.resolve()) in err
    saved = nbformat.read(str(out_dir / "02_broken.ipynb"), as_version=4)
    assert any(o.get("ename") == "ValueError" for c in saved.cells for o in c.get("outputs", []))
    assert set(read_results(out_dir / "results.json")) == {"00_first"}, "earlier results are kept"
    assert not (out_dir / "00_first.html").exists()


def test_run_series_refuses_existing_run_folder_and_unknown_parameters(series, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "results.json").write_text("{}")
    with pytest.raises(ParameterError, match="already exists"):
        run_series(["00"], out_dir=used, progress=False)
    with pytest.raises(ParameterError, match="N_FRMES"):
        run_series(["00"], parameters={"N_FRMES": 3}, out_dir=tmp_path / "new", progress=False)
    with pytest.raises(ParameterError, match="OUT_DIR"):
        run_series(["00"], parameters={"OUT_DIR": "."}, out_dir=tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists(), "bad parameters are caught before a run folder is made"


def test_cli_bad_parameter_is_a_usage_error(series, capsys):
    assert cli.main(["run", "07", "--no-progress"]) == 2
    assert "00_first" in capsys.readouterr().err, "the message lists the notebooks there are"


def test_select_notebooks_by_number_and_name(tmp_path):
    paths = [tmp_path / n for n in ("00_setup.ipynb", "01_load_data.ipynb", "02_poisson_statistics.ipynb")]
    assert select_notebooks(paths, ["02", "0"]) == [paths[0], paths[2]], "series order, not argument order"
    assert select_notebooks(paths, [1]) == [paths[1]]
    assert select_notebooks(paths, ["poisson_statistics", "notebooks/01_load_data.ipynb"]) == paths[1:]
    assert select_notebooks(paths, None) == paths
    with pytest.raises(ParameterError, match="01_load_data"):
        select_notebooks(paths, ["05"])


def test_parse_parameter_value_types():
    assert parse_parameter_value("8") == 8 and isinstance(parse_parameter_value("8"), int)
    assert parse_parameter_value("0.5") == 0.5
    assert parse_parameter_value("1e-3") == pytest.approx(1e-3)
    assert parse_parameter_value("true") is True
    assert parse_parameter_value("../data/x.hspy") == "../data/x.hspy"
    assert parse_parameter_value("[1, 2]") == [1, 2]


def test_read_parameters_file_sections_and_errors(tmp_path):
    nbs = [tmp_path / "00_setup.ipynb", tmp_path / "02_poisson_statistics.ipynb"]
    good = tmp_path / "good.yaml"
    good.write_text("PRESET: full\nROI: {x: 1}\n02_poisson_statistics:\n  N_FRAMES: 40\n")
    for_all, per_notebook = read_parameters_file(good, nbs)
    assert for_all == {"PRESET": "full", "ROI": {"x": 1}}
    assert per_notebook == {"02_poisson_statistics": {"N_FRAMES": 40}}

    typo = tmp_path / "typo.yaml"
    typo.write_text("02_poison_statistics:\n  N_FRAMES: 40\n")
    with pytest.raises(ParameterError, match="02_poisson_statistics"):
        read_parameters_file(typo, nbs)
    reserved = tmp_path / "reserved.yaml"
    reserved.write_text("OUT_DIR: somewhere\n")
    with pytest.raises(ParameterError, match="OUT_DIR"):
        read_parameters_file(reserved, nbs)


def test_cli_version_and_device(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert "temnb 0.1.0" in capsys.readouterr().out
    assert cli.main(["device"]) == 0
    out = capsys.readouterr().out
    assert "Computing on   cpu" in out and "numpy" in out


def test_cli_info_prints_metadata_table(monkeypatch, capsys, tmp_path):

    import hyperspy.api as hs
    import numpy as np

    from temnb.core.errors import MissingFileError

    def fake_load(path, lazy=False, **kwargs):
        if "missing" in str(path):
            raise MissingFileError("does not exist", source=path)
        signal = hs.signals.Signal2D(np.zeros((4, 6, 5), dtype="uint16"))
        signal.axes_manager.signal_axes[0].scale = 0.05
        signal.axes_manager.signal_axes[0].units = "nm"
        return signal

    # The CLI only needs temnb.io.files.load (imported when a file is described).
    import temnb.io.files

    monkeypatch.setattr(temnb.io.files, "load", fake_load)

    assert cli.main(["info", "movie.hspy"]) == 0
    out = capsys.readouterr().out
    assert "movie.hspy" in out and "(4, 6, 5)" in out and "0.05" in out and "nm" in out
    assert cli.main(["info", "missing.tif"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_info_shows_both_pixel_sides_of_a_non_square_pixel(capsys):
    from temnb.io import bundled

    assert cli.main(["info", str(bundled.real_path("stack_saved_by_dm"))]) == 0
    out = capsys.readouterr().out
    assert "pixel size x    168.7 nm" in out and "pixel size y    1687 nm" in out
    assert "NOT square: y/x = 10" in out and "pixels are not square" in out


def test_a_notebook_the_movie_is_too_short_for_is_skipped_and_the_series_goes_on(series, capsys):
    too_short = ('from temnb.core.errors import TooFewFramesError\n'
                 'raise TooFewFramesError("has 2 frames, but notebook 01_short needs at least 5", source="m.tif")')
    _notebook(series / "01_short.ipynb", 'OUT_DIR = "x"\n', too_short)
    (series / "02_broken.ipynb").unlink()
    code = cli.main(["run", "--no-html", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, "a notebook skipped for a short movie is not a failure of the series"
    assert "01_short  SKIPPED: TooFewFramesError" in out and "needs at least 5" in out
    assert "00_first" in out and "01_second" in out, "the notebooks after it still ran"
    run_dir = next((series.parent / "runs").iterdir())
    assert json.loads((run_dir / "skipped.json").read_text()) == {
        "01_short": "TooFewFramesError: 'm.tif': has 2 frames, but notebook 01_short needs at least 5"}
