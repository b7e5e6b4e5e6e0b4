"""What every benchmark script does at the end: print its table and write its JSON."""
from __future__ import annotations

import json
import platform
from pathlib import Path

import temnb
from temnb.core.record import peak_memory_mb

RESULTS = Path(__file__).resolve().parent / "results"


def finish(name: str, rows: list[dict], *, quick: bool, out: Path | None = None, **details) -> Path:
    """Print *rows* (task, seconds, Mpix/s, ratio to the row's baseline) and write the JSON report."""
    peak_mb = peak_memory_mb()
    print(f"{'task':<55} {'seconds':>9} {'Mpix/s':>9} {'x baseline':>11}  baseline")
    for row in rows:
        mpix = f"{row['mpix_per_s']:9.2f}" if "mpix_per_s" in row else " " * 9
        ratio = f"{row['ratio_to_baseline']:11.2f}" if "ratio_to_baseline" in row else " " * 11
        print(f"{row['task']:<55} {row['seconds']:9.4f} {mpix} {ratio}  {row.get('baseline', '')}")
    print(f"peak memory {peak_mb:.0f} MB")
    env = temnb.environment_report()
    report = {"benchmark": name, "quick": quick, **details,
              "machine": {"host": platform.node(), **{k: v for k, v in env.items() if k != "packages"}},
              "packages": env["packages"], "peak_memory_mb": peak_mb, "rows": rows}
    out = out or RESULTS / f"{name}_{'quick' if quick else 'cpu'}_{platform.node() or 'host'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print("written", out)
    return out
