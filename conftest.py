"""Root conftest: applies to the notebooks collected by nbval as well as to tests/.

(A hook in tests/conftest.py would only see the items under tests/.)
"""
from __future__ import annotations

import pytest

# nbval executes the committed notebooks as a user opens them; to keep CI within its time budget it
# runs them with the smoke preset (temnb.notebook.presets.PRESET_ENV), unless the caller set TEMNB_PRESET
# (e.g. ``TEMNB_PRESET=workshop python3 -m pytest notebooks`` checks them at their committed preset).
_NBVAL_PRESET = {"set_by_us": False}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    import os

    from temnb.notebook.presets import PRESET_ENV

    is_notebook_cell = type(item).__name__ == "IPyNbCell"   # nbval's item class
    if is_notebook_cell and PRESET_ENV not in os.environ:
        os.environ[PRESET_ENV] = "smoke"
        _NBVAL_PRESET["set_by_us"] = True
    elif not is_notebook_cell and _NBVAL_PRESET["set_by_us"]:
        os.environ.pop(PRESET_ENV, None)
        _NBVAL_PRESET["set_by_us"] = False
