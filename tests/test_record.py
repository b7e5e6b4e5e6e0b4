"""Presets, NotebookRun's JSON record, read_results and the environment report."""
from __future__ import annotations

import json

import numpy as np
import pytest

import temnb
from temnb.core.errors import CorruptFileError, MissingFileError, ParameterError
from temnb.notebook.presets import choose_preset
from temnb.notebook.results import NotebookRun, read_results

TABLE = dict(smoke=dict(n_frames=8, sizes=[1, 2]), workshop=dict(n_frames=40), full=dict(n_frames=None))


def test_choose_preset_returns_a_copy_of_the_chosen_entry():
    cfg = choose_preset("smoke", **TABLE)
    assert cfg == {"n_frames": 8, "sizes": [1, 2]}
    cfg["sizes"].append(3)
    assert TABLE["smoke"]["sizes"] == [1, 2], "changing the result must not change the table"
    assert choose_preset("full", **TABLE) == {"n_frames": None}


def test_choose_preset_refuses_unknown_and_miscased_names():
    with pytest.raises(ParameterError, match="'smoke', 'workshop', 'full'"):
        choose_preset("quick", **TABLE)
    with pytest.raises(ParameterError, match="did you mean 'smoke'"):
        choose_preset("Smoke", **TABLE)
    with pytest.raises(ParameterError, match="smok"):
        choose_preset("smoke", smok=dict(n=1))


def test_lazy_exports_are_the_record_functions():
    assert temnb.NotebookRun is NotebookRun and temnb.choose_preset is choose_preset


def test_record_writes_json_immediately_and_converts_numpy(tmp_path):
    run = NotebookRun("02_test", out_dir=tmp_path / "out", seed=5, params=dict(DATA=None, PRESET="smoke"))
    returned = run.record("ratio", np.float32(1.25), unit="", note="variance over mean")
    run.record("counts", np.array([1, 2, 3], dtype=np.int64), unit="e")
    run.record("ok", np.bool_(True))

    assert isinstance(returned, np.float32), "record() hands back the value it was given"
    data = json.loads((tmp_path / "out" / "02_test.json").read_text())  # no finish(): as after a crash
    assert data["notebook"] == "02_test"
    assert data["params"] == {"DATA": None, "PRESET": "smoke"}
    assert data["records"]["ratio"] == {"value": 1.25, "unit": "", "note": "variance over mean"}
    assert data["records"]["counts"]["value"] == [1, 2, 3]
    assert data["records"]["ok"]["value"] is True
    assert data["finished"] is None
    assert data["environment"]["packages"]["numpy"] == np.__version__


def test_record_refuses_nan_inf_and_unrecordable_values(tmp_path):
    run = NotebookRun("t", out_dir=tmp_path)
    with pytest.raises(ParameterError, match="must mean something"):
        run.record("snr", float("nan"))
    with pytest.raises(ParameterError, match="inf"):
        run.record("snr", np.array([1.0, np.inf]))
    with pytest.raises(ParameterError, match="dict"):
        run.record("snr", {"a": 1})
    assert json.loads((tmp_path / "t.json").read_text())["records"] == {}, "refused values are not written"


def test_seed_makes_rng_reproducible(tmp_path):
    a = NotebookRun("a", out_dir=tmp_path, seed=7).rng.normal(size=3)
    b = NotebookRun("b", out_dir=tmp_path, seed=7).rng.normal(size=3)
    c = NotebookRun("c", out_dir=tmp_path, seed=8).rng.normal(size=3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    torch = pytest.importorskip("torch")
    NotebookRun("d", out_dir=tmp_path, seed=7)
    first = torch.rand(2)
    NotebookRun("e", out_dir=tmp_path, seed=7)
    assert torch.equal(first, torch.rand(2)), "torch is seeded too"


def test_finish_writes_time_memory_and_shows_table(tmp_path, capsys):
    run = NotebookRun("fin", out_dir=tmp_path)
    run.record("dose", 12.5, unit="e/px")
    summary = run.finish()
    data = json.loads((tmp_path / "fin.json").read_text())
    assert data["finished"] is not None and data["wall_time_s"] >= 0
    assert data["peak_memory_mb"] > 10, "a Python process with numpy uses more than 10 MB"
    assert data["environment"]["python"]
    assert summary["records"]["dose"]["value"] == 12.5
    out = capsys.readouterr().out
    assert "dose" in out and "12.5" in out and "e/px" in out


def test_read_results_merges_a_run_folder(tmp_path):
    NotebookRun("00_a", out_dir=tmp_path).record("x", 1)
    NotebookRun("01_b", out_dir=tmp_path).record("y", 2.5)
    (tmp_path / "other.json").write_text('{"unrelated": true}')
    merged = read_results(tmp_path)
    assert set(merged) == {"00_a", "01_b"}
    assert merged["01_b"]["records"]["y"]["value"] == 2.5
    assert read_results(tmp_path / "00_a.json") == {"00_a": merged["00_a"]}
    (tmp_path / "results.json").write_text(json.dumps(merged))
    assert read_results(tmp_path / "results.json") == merged
    with pytest.raises(MissingFileError):
        read_results(tmp_path / "nope")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CorruptFileError, match="bad.json"):
        read_results(tmp_path / "bad.json")


def test_environment_report_lists_versions():
    from temnb.core.environment import environment_report, format_environment_report

    report = environment_report()
    assert report["packages"]["numpy"] == np.__version__
    assert report["packages"]["temnb"] == temnb.__version__
    assert set(report["packages"]) >= {"hyperspy", "rosettasciio", "scikit-image", "abtem", "torch", "papermill"}
    assert report["cpu_count"] >= 1 and report["total_ram_gb"] > 0
    assert np.__version__ in format_environment_report(report)


def test_the_preset_environment_variable_forces_a_preset_and_is_recorded(monkeypatch, tmp_path, capsys):
    from temnb.notebook.presets import PRESET_ENV

    monkeypatch.setenv(PRESET_ENV, "smoke")
    assert choose_preset("full", **TABLE) == TABLE["smoke"]
    assert "overridden" in capsys.readouterr().out
    run = NotebookRun("nb", out_dir=tmp_path, params={"PRESET": "workshop"})
    assert run.params["PRESET"] == "smoke" and run.params["PRESET_written"] == "workshop"
    monkeypatch.setenv(PRESET_ENV, "Smoke")
    with pytest.raises(ParameterError, match=PRESET_ENV):
        choose_preset("full", **TABLE)
    monkeypatch.setenv(PRESET_ENV, "")
    assert choose_preset("full", **TABLE) == TABLE["full"]
