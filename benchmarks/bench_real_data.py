"""The series on real files of every format: notebook x file -> ran / stopped (which message), wall time,
peak memory.  Writes JSON and prints a Markdown table (the closing notes' table)::

    python benchmarks/bench_real_data.py                        # six formats, smoke preset
    python benchmarks/bench_real_data.py --files dm4_stack_3d --notebooks 07 08

Each (file, notebook) runs with papermill directly (``temnb.notebook.regression``), in a fresh kernel.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS  # noqa: E402

from temnb.io import bundled  # noqa: E402
from temnb.notebook.regression import expected_outcome, n_frames_of, run_notebook_on  # noqa: E402

FILES = {   # short name -> what it is
    "haadf_nanoparticle_series": "TIA, 5 x 128² uint16, detector units",
    "dm4_stack_3d": "DM4, 66 x 65 x 64 int16 ramp, not counts",
    "haadf_srtio3_noisy": "EMD (Berkeley), one 1024² frame, detector units",
    "random_scan_movie": "MRC, 348 x 16² uint16, pixel -1 nm in the file",
    "stack_saved_by_imagej": "TIFF (ImageJ), 2 x 68² float32",
    "adf_srtio3_110": "HSPY, one 400 x 380 float16 frame, no units",
}
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", default=list(FILES), choices=list(FILES))
    parser.add_argument("--notebooks", nargs="+", help="numbers, e.g. 07 08 (default: all)")
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        notebooks = [p for p in notebooks if p.stem[:2] in {n.zfill(2) for n in args.notebooks}]
    rows = []
    with tempfile.TemporaryDirectory(prefix="temnb_real_") as tmp:
        for name in args.files:
            path = bundled.real_path(name)
            frames = n_frames_of(path)
            for nb in notebooks:
                outcome = run_notebook_on(nb, path, Path(tmp) / name / nb.stem, preset=args.preset)
                row = {**outcome.as_dict(), "file_name": path.name, "what": FILES[name], "n_frames": frames,
                       "expected": expected_outcome(nb.stem, frames)}
                row.pop("records")
                rows.append(row)
                print(f"{path.name:<40} {nb.stem:<36} {outcome.status:<8} {outcome.wall_time_s:6.1f} s "
                      f"{outcome.peak_memory_mb or 0:6.0f} MB  {outcome.message[:70]}", flush=True)
    names = [p.stem for p in notebooks]
    print("\n| notebook | " + " | ".join(bundled.real_path(f).name for f in args.files) + " |")
    print("|---|" + "---|" * len(args.files))
    for nb in names:
        cells = []
        for f in args.files:
            r = next(r for r in rows if r["notebook"] == nb and r["file_name"] == bundled.real_path(f).name)
            if r["status"] == "ran":
                cells.append(f"ran, {r['wall_time_s']:.0f} s, {r['peak_memory_mb'] or 0:.0f} MB")
            else:
                cells.append(f"{r['status']} ({r['message'].split(':')[0]}), {r['wall_time_s']:.0f} s")
        print(f"| {nb} | " + " | ".join(cells) + " |")
    unexpected = [r for r in rows if r["status"] != r["expected"]]
    print(f"\n{len(rows)} runs; {len(unexpected)} not as expected")
    out = args.out or RESULTS / f"real_data_{args.preset}_{platform.node() or 'host'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "real_data", "preset": args.preset, "rows": rows}, indent=2))
    print("written", out)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
