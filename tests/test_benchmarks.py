"""The benchmark scripts run and write their tables (speed itself is never asserted in tests)."""
import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_foundation.py"


def test_foundation_benchmark_quick_run_writes_its_table(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_foundation", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    assert module.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    tasks = {row["task"] for row in report["rows"]}
    assert {"estimate_dose (auto vacuum)", "poisson_sample", "inverse_anscombe (exact unbiased)"} <= tasks
    assert all(row["seconds"] > 0 for row in report["rows"])
    assert "Mpix/s" in capsys.readouterr().out


def test_filters_benchmark_quick_run_covers_every_filter(tmp_path):
    from temnb.filters import FILTERS

    path = BENCH.parent / "bench_filters_simulation.py"
    spec = importlib.util.spec_from_file_location("bench_filters_simulation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "filters.json"
    assert module.main(["--quick", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {f"filter {name}" for name in FILTERS} <= {row["task"] for row in rows}
    assert all(row["seconds"] > 0 for row in rows)
