"""Notebook parameters are checked against the types their parameters cell declares: by ``temnb run``
before a kernel starts, and by the notebook's own first cell under papermill directly."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from temnb.core.errors import ParameterError
from temnb.notebook import cli
from temnb.notebook.parameters import check_parameters, check_value, declared_types, describe_type
from temnb.notebook.run import run_series

SERIES = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

PARAMETERS = '''DATA: str = "sample"
PRESET: str = "smoke"
SEED: int = 0
OUT_DIR: str = "x"
DOSES: list[float] = [0.45, 1.8]
FRAME: int = 0
MODEL: str | None = None
'''
BODY = '''import os, temnb
temnb.notebook.parameters.check_parameters(globals(), notebook="00_typed")
run = temnb.NotebookRun("00_typed", out_dir=OUT_DIR, seed=SEED, params=dict(PRESET=PRESET))
run.record("doses", DOSES)
run.record("data", DATA)
run.record("data_exists", os.path.exists(DATA))
run.finish()
'''


def _series(folder: Path):
    folder.mkdir(parents=True)
    cell = nbformat.v4.new_code_cell(PARAMETERS)
    cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell(BODY)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, str(folder / "00_typed.ipynb"))
    return folder


@pytest.mark.parametrize("value, annotation, expected", [
    (1, float, 1.0), (2.0, int, 2), ([1, 2.5], list[float], [1.0, 2.5]), (None, str | None, None),
    ("x", str | None, "x"), ([[1, 2], [3, 4]], list[list[int]], [[1, 2], [3, 4]]), (True, bool, True),
])
def test_values_of_the_declared_type_pass_and_ints_become_floats(value, annotation, expected):
    out = check_value("P", value, annotation)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("value, annotation", [
    ("banana", list[float]), ("banana", int), (1.5, int), (True, int), (True, float), (3, str),
    ([1, "a"], list[float]), (None, str), ("x", bool),
])
def test_a_wrong_type_names_the_parameter_the_type_and_the_value(value, annotation):
    with pytest.raises(ParameterError) as err:
        check_value("DOSES", value, annotation, notebook="02_poisson_statistics")
    text = str(err.value)
    assert "DOSES" in text and "02_poisson_statistics" in text and describe_type(annotation) in text
    assert repr(value) in text


def test_check_parameters_reads_the_annotations_a_kernel_keeps():
    namespace = {"__annotations__": {"FRAME": int, "SIGMA": float}, "FRAME": 3.0, "SIGMA": 2}
    assert check_parameters(namespace) == {"FRAME": 3, "SIGMA": 2.0}
    assert type(namespace["SIGMA"]) is float
    namespace["FRAME"] = "banana"
    with pytest.raises(ParameterError, match="FRAME"):
        check_parameters(namespace)


@pytest.mark.parametrize("path", SERIES, ids=lambda p: p.stem)
def test_every_notebook_of_the_series_declares_readable_types(path):
    types = declared_types(path)
    assert {"DATA", "PRESET", "SEED", "DEVICE", "OUT_DIR"} <= set(types)
    assert types["DATA"] is str and types["SEED"] is int


def test_an_annotation_that_is_not_a_plain_type_is_reported(tmp_path):
    cell = nbformat.v4.new_code_cell("X: numpy.ndarray = 0\n")
    cell.metadata["tags"] = ["parameters"]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), str(tmp_path / "00_bad.ipynb"))
    with pytest.raises(ParameterError, match="cannot read the annotation"):
        declared_types(tmp_path / "00_bad.ipynb")


def test_temnb_run_refuses_a_wrong_type_before_any_notebook_starts(tmp_path, monkeypatch, capsys):
    folder = _series(tmp_path / "notebooks")
    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", "-p", "DOSES", "banana", "--no-html", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "DOSES" in err and "list[float]" in err and "'banana'" in err
    assert not (tmp_path / "runs").exists(), "nothing ran, no run folder"
    assert folder.is_dir()


@pytest.mark.notebook
def test_papermill_directly_stops_in_the_first_cell_with_the_same_message(tmp_path):
    import papermill

    folder = _series(tmp_path / "notebooks")
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(folder / "00_typed.ipynb", tmp_path / "out.ipynb",
                                   parameters={"FRAME": "banana", "OUT_DIR": str(tmp_path / "o")},
                                   progress_bar=False)
    assert err.value.ename == "ParameterError" and "FRAME" in err.value.evalue and "int" in err.value.evalue
    assert err.value.exec_count == 3, "parameters [1], injected [2]: stopped in the next cell"


@pytest.mark.notebook
def test_relative_paths_are_read_from_where_the_command_was_typed(tmp_path, monkeypatch):
    _series(tmp_path / "project" / "notebooks")
    work = tmp_path / "my_data"
    work.mkdir()
    (work / "movie.hspy").write_bytes(b"")
    monkeypatch.chdir(work)
    run_dir = run_series(notebooks_dir=tmp_path / "project" / "notebooks", parameters={"DATA": "movie.hspy"},
                         html=False, progress=False)
    assert run_dir.parent == work / "runs", "the run folder is in the current folder, not the package"
    records = json.loads((run_dir / "00_typed.json").read_text())["records"]
    assert records["data"]["value"] == str(work / "movie.hspy")
    assert records["data_exists"]["value"] is True
    assert records["doses"]["value"] == [0.45, 1.8]
