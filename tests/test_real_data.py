"""Issue 13, item 8: every notebook of the series on three real files of different formats (a short
movie in detector units, a long stack that is not counts, a single image), smoke preset, papermill
directly: each runs to the end, or stops in its first cell with the documented "needs N frames"."""
from __future__ import annotations

from pathlib import Path

import pytest

from temnb.io import bundled
from temnb.notebook.data import MIN_FRAMES
from temnb.notebook.regression import expected_outcome, n_frames_of, run_notebook_on

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
REAL = {
    "tia_5_frames_detector_units": "haadf_nanoparticle_series",   # TIA, 5 x 128^2 uint16 -> to_counts
    "dm4_66_frames_not_counts": "dm4_stack_3d",                  # DM4, 66 x 65 x 64 int16 ramp
    "emd_single_image": "haadf_srtio3_noisy",                    # Berkeley EMD, one 1024^2 frame
}


def test_the_series_and_the_frame_table_agree():
    assert {p.stem for p in NOTEBOOKS} == set(MIN_FRAMES)


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem[:2])
@pytest.mark.parametrize("label", list(REAL))
def test_a_notebook_runs_on_a_real_file_or_stops_in_its_first_cell(tmp_path, label, notebook):
    path = bundled.real_path(REAL[label])
    outcome = run_notebook_on(notebook, path, tmp_path)
    expected = expected_outcome(notebook.stem, n_frames_of(path))
    assert outcome.status == expected, f"{notebook.stem} on {path.name}: {outcome.status} {outcome.message}"
    if expected == "stopped":
        assert outcome.cell == 3, "stopped in the first cell after the parameters (1) and papermill's (2)"
        needed = MIN_FRAMES[notebook.stem][0]
        assert f"needs at least {needed}" in outcome.message and path.name in outcome.message
    else:
        assert outcome.records.get("data_has_truth") is False, "a real file has no truth, and says so"
        assert outcome.peak_memory_mb and outcome.recorded_wall_time_s
