"""Every notebook of the series on real files: does it run to the end, or stop in its first cell saying
how many frames it needs?  Used by ``tests/test_real_data.py`` (three files, smoke preset, in CI) and by
``benchmarks/bench_real_data.py`` (every format, the table of the closing notes).

Each (file, notebook) runs with papermill directly -- the path a microscopist takes without
``temnb run`` -- in the notebooks folder, with ``DATA`` the file's absolute path.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .data import MIN_FRAMES

__all__ = ["Outcome", "expected_outcome", "run_notebook_on", "n_frames_of"]


@dataclass
class Outcome:
    notebook: str
    file: str
    status: str                  # "ran" | "stopped" | "failed"
    message: str                 # the first line of the error, for stopped / failed
    cell: int | None             # the execution count of the cell that stopped
    wall_time_s: float           # papermill's whole run, kernel start included
    recorded_wall_time_s: float | None    # what the notebook recorded (its own cells)
    peak_memory_mb: float | None
    records: dict

    def as_dict(self) -> dict:
        return asdict(self)


def n_frames_of(path) -> int:
    import warnings

    from ..io.files import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal = load(path, lazy=True)
    am = signal.axes_manager
    return int(am.navigation_size) if am.navigation_dimension else 1


def expected_outcome(notebook: str, n_frames: int) -> str:
    """'ran' when the movie has the frames the notebook needs, else 'stopped'."""
    return "ran" if n_frames >= MIN_FRAMES[notebook][0] else "stopped"


def run_notebook_on(notebook: Path, data, out_dir: Path, *, preset: str = "smoke", timeout: int = 1800) -> Outcome:
    """Execute *notebook* on *data* into *out_dir* (executed copy and the notebook's JSON)."""
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    start = time.perf_counter()
    status, message, cell = "ran", "", None
    try:
        papermill.execute_notebook(notebook, target, parameters={"DATA": str(data), "PRESET": preset,
                                                                 "OUT_DIR": str(out_dir)},
                                   cwd=str(notebook.parent), progress_bar=False, execution_timeout=timeout)
    except papermill.PapermillExecutionError as exc:
        stopped = exc.ename == "TooFewFramesError"
        status = "stopped" if stopped else "failed"
        message = f"{exc.ename}: {str(exc.evalue).splitlines()[0]}"
        cell = exc.exec_count
    wall = time.perf_counter() - start
    record = out_dir / f"{notebook.stem}.json"
    payload = json.loads(record.read_text()) if record.is_file() else {}
    return Outcome(notebook.stem, str(data), status, message, cell, wall, payload.get("wall_time_s"),
                   payload.get("peak_memory_mb"),
                   {k: v.get("value") for k, v in (payload.get("records") or {}).items()})
