"""The benchmark scripts run and write their tables (speed itself is never asserted in tests)."""
import importlib.util
import json
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_foundation.py"


def _load(script: str):
    """Import benchmarks/<script>.py as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(script, BENCH.parent / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_foundation_benchmark_quick_run_writes_its_table(tmp_path, capsys):
    module = _load("bench_foundation")
    out = tmp_path / "bench.json"
    assert module.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    tasks = {row["task"] for row in report["rows"]}
    assert {"estimate_dose (auto vacuum)", "poisson_sample", "inverse_anscombe (exact unbiased)"} <= tasks
    assert all(row["seconds"] > 0 for row in report["rows"])
    assert "Mpix/s" in capsys.readouterr().out


def test_filters_benchmark_quick_run_covers_every_filter(tmp_path):
    from temnb.classic.filters import FILTERS

    module = _load("bench_filters_simulation")
    out = tmp_path / "filters.json"
    assert module.main(["--quick", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {f"filter {name}" for name in FILTERS} <= {row["task"] for row in rows}
    assert all(row["seconds"] > 0 for row in rows)


def test_networks_benchmark_quick_run_times_inference_and_training(tmp_path):
    from pytest import approx

    module = _load("bench_networks")
    out = tmp_path / "networks.json"
    # One torch thread: steady on a busy CI machine; main() restores the process-wide setting.
    assert module.main(["--quick", "--threads", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["rows"]
    by_kind = {kind: [row for row in rows if row["kind"] == kind] for kind in ("baseline", "inference", "training")}
    assert len(by_kind["baseline"]) == 2  # 2-D Gaussian per frame and 3-D Gaussian on the movie
    assert {"UNet", "DnCNN"} <= {row["architecture"] for row in by_kind["inference"]}
    assert sum(row["architecture"] == "UNet" for row in by_kind["inference"]) == 2  # base 32 and workshop base 16
    for row in by_kind["baseline"] + by_kind["inference"]:
        assert row["seconds"] > 0 and row["mpix_per_s"] > 0
    for row in by_kind["inference"]:
        assert row["ratio_to_baseline"] > 0 and row["frames_timed"] >= 1
        assert row["mpix_per_s"] * row["seconds"] == approx(128 * 128 / 1e6)  # per-frame figures agree
    assert len(by_kind["training"]) == 5 and all(row["seconds"] > 0 for row in by_kind["training"])
    assert "WCVD" in {row["architecture"] for row in by_kind["inference"]}  # UDVD needs 5 frames, quick has 3
    blind = [row for row in by_kind["training"] if row.get("architecture") in ("WCVD", "UDVD")]
    assert [row["architecture"] for row in blind] == ["WCVD", "UDVD"]
    for row in blind:
        assert 0 < row["seconds"] <= row["seconds_total"] and np.isfinite(row["final_psnr"])
        steps = [point["step"] for point in report["self_supervised_curves"][row["task"].split(" to a")[0][6:]]]
        assert steps == list(range(steps[0], row["steps"] + 1, steps[0]))
    curve = report["psnr_vs_time"]
    assert [point["epoch"] for point in curve] == [1] and curve[0]["seconds"] > 0
    assert report["frame_size"] == 128 and report["frames"] == 3


def test_stable_upsnr_time_is_where_the_curve_settles():
    module = _load("bench_networks")
    curve = [{"train_seconds": t, "upsnr": u} for t, u in [(1, 5.0), (2, 9.0), (3, 11.8), (4, 12.3), (5, 12.0)]]
    assert module.stable_after(curve) == 3  # from 11.8 dB on, within 0.5 dB of the final 12.0
    assert module.stable_after(curve, tolerance_db=0.1) == 5
    curve[0]["upsnr"] = 12.1  # a lucky early point does not count: it fell away again
    assert module.stable_after(curve) == 3


def test_threads_benchmark_quick_run_times_one_and_two_threads(tmp_path):
    module = _load("bench_threads")
    out = tmp_path / "threads.json"
    assert module.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert rows[0]["kind"] == "baseline" and rows[0]["mpix_per_s"] > 0
    two = [row for row in rows if row.get("speedup_over_1_thread")]
    assert {row["architecture"] for row in two} == {"WCVD", "UDVD", "UNet"}
    assert all(row["speedup_over_1_thread"] > 0 and row["ratio_to_baseline"] > 0 for row in two)
    assert report["usable_cores"] >= 1 and len(report["load_average_before"]) == 3


def test_quality_benchmark_quick_run_scores_every_method_against_the_tuned_gaussian(tmp_path):
    module = _load("bench_quality")
    out = tmp_path / "quality.json"
    assert module.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert {row["movie"] for row in rows} == {"sample Pt", "second Au"}
    methods = {row["method"] for row in rows}
    assert {"raw", "gaussian 3-D (sigma tuned on truth)", "N2V", "U-Net (bundled, supervised on simulations)"} <= methods
    assert any(m.startswith("UDVD-compact (CPU variant)") for m in methods)
    assert any("self-ensemble" in m for m in methods) and any("low-pass" in m for m in methods)
    for row in rows:
        assert np.isfinite(row["psnr_max_dB"]) and np.isfinite(row["psnr_range_dB"])
        assert row["psnr_max_dB"] > row["psnr_range_dB"]  # the clean maximum exceeds the clean range
    raw = {row["movie"]: row["psnr_max_dB"] for row in rows if row["method"] == "raw"}
    for summary in report["summaries"]:
        assert summary["tuned_gaussian_3d_dB"] > raw[summary["movie"]] + 5  # the tuned baseline denoises
        assert summary["target_met"] == (summary["margin_dB"] >= 2.0)
    assert report["reference_udvd_step_s"] > 0 and "clean maximum" in report["convention"]


def test_streaming_benchmark_quick_run_measures_both_paths(tmp_path):
    module = _load("bench_streaming")
    out = tmp_path / "streaming.json"
    assert module.main(["--quick", "--tasks", "gaussian_3d", "estimate_dose", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {(row["name"], row["mode"]): row for row in report["rows"]}
    assert set(rows) == {(t, m) for t in ("gaussian_3d", "estimate_dose") for m in ("in_memory", "lazy")}
    assert all(row["peak_rss_mb"] > 0 and row["seconds"] > 0 for row in rows.values())
    assert rows[("gaussian_3d", "lazy")]["ratio_to_baseline"] > 0
    assert report["bound_mb"] == 2048


def test_likelihood_benchmark_quick_run_derives_thresholds_beside_the_papers(tmp_path):
    module = _load("bench_likelihood")
    out = tmp_path / "likelihood.json"
    assert module.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {row.get("defocus_nm"): row for row in report["rows"][1:]}
    assert set(rows) == {5.0, -8.0} and report["paper_thresholds"] == [0.005, -0.006]
    for row in rows.values():
        assert row["threshold_real"] >= row["threshold_spurious"]
        assert row["dose_per_A2"] == 121.0 or abs(row["dose_per_A2"] - 121) < 1
    assert rows[5.0]["auc"] > 0.9 > rows[-8.0]["auc"]  # contrast over the disk, or none
