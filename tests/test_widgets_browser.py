"""The explorers in a real browser: Voilà serves tests/explorers_demo.ipynb, and JupyterLab opens a
copy of it and runs its cells; in each, headless chromium (driven by chromedriver through selenium)
clicks a pixel and a column and moves the frame sliders, and the page's picture (the image's src)
and printed numbers must change to what the same explorers print when driven in this process.
Skips only where chromium or chromedriver is not installed (Debian: ``apt-get install chromium
chromium-driver``); about 30-60 s each on 2 busy cores, most of it the kernel's imports."""
from __future__ import annotations

from pathlib import Path

import pytest
from browser_pages import (browser_tools, click_png_point, image_src, lab_page, press_slider, readout, voila_page,
                           wait_until)

TOOLS, WHY_NOT = browser_tools()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(TOOLS is None, reason=WHY_NOT or "")]

NOTEBOOK = Path(__file__).with_name("explorers_demo.ipynb")
FILTER, LLR = ".temnb-filter", ".temnb-llr"


def _lines(text):
    return [line.strip() for line in text.strip().splitlines()]


@pytest.fixture
def local(one_torch_thread_module):
    """The same explorers, built afresh in this process for each page: what it must show after each step."""
    from explorer_demo import FILTER_OPTIONS, LIKELIHOOD_OPTIONS, filter_demo, likelihood_demo

    from temnb.notebook.explorers import EffectiveFilterExplorer, LikelihoodExplorer

    model, movie = filter_demo()
    noisy, denoised = likelihood_demo()
    return (EffectiveFilterExplorer(model, movie, **FILTER_OPTIONS),
            LikelihoodExplorer(noisy, denoised, **LIKELIHOOD_OPTIONS))


@pytest.fixture(scope="module")
def one_torch_thread_module():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _png_point(explorer, row, col):
    """The PNG point at the centre of frame pixel (row, col) of an explorer's clickable panel."""
    x0, y0, x1, y1 = explorer.layout_box["frame"]
    rows, cols = explorer.layout_box["shape"]
    return x0 + (col + 0.5) / cols * (x1 - x0), y0 + (row + 0.5) / rows * (y1 - y0)


READOUTS = (f"{FILTER}-readout pre", f"{LLR}-readout pre", f"img{FILTER}-image", f"img{LLR}-image")


def test_explorers_follow_clicks_and_sliders_in_voila(local, tmp_path):
    with voila_page(NOTEBOOK, TOOLS, wait_for=READOUTS, log=tmp_path / "voila.log") as page:
        _drive(page, *local)


def test_explorers_follow_clicks_and_sliders_in_jupyterlab(local, tmp_path):
    with lab_page(NOTEBOOK, TOOLS, workdir=tmp_path / "lab", wait_for=READOUTS, log=tmp_path / "lab.log") as page:
        _drive(page, *local)


def _drive(page, filters, llr):
    """Click, slide and compare the page with the explorers *filters* and *llr* driven here."""
    from selenium.webdriver.common.keys import Keys

    # --- the effective filter: as rendered, then a click on pixel (20, 12), then frame 2
    assert _lines(readout(page, f"{FILTER}-readout")) == _lines(filters.text)
    before = image_src(page, f"{FILTER}-image")
    click_png_point(page, f"{FILTER}-image", *_png_point(filters, 20, 12))
    filters.click(20, 12)
    assert "row 20, col 12" in filters.text
    wait_until(page, lambda d: _lines(readout(d, f"{FILTER}-readout")) == _lines(filters.text),
               message="the filter readout did not follow the click")
    wait_until(page, lambda d: image_src(d, f"{FILTER}-image") != before, message="the picture did not change")
    before = image_src(page, f"{FILTER}-image")
    press_slider(page, f"{FILTER}-frame", Keys.ARROW_RIGHT, times=2)
    filters.frame_slider.value = 2
    assert "frame 2, row 20, col 12" in filters.text
    wait_until(page, lambda d: _lines(readout(d, f"{FILTER}-readout")) == _lines(filters.text),
               message="the filter readout did not follow the frame slider")
    wait_until(page, lambda d: image_src(d, f"{FILTER}-image") != before, message="the picture did not change")

    # --- the likelihood map: a click near column 3, then frame 1
    assert _lines(readout(page, f"{LLR}-readout")) == _lines(llr.text)
    before = image_src(page, f"{LLR}-image")
    click_png_point(page, f"{LLR}-image", *_png_point(llr, 35, 37))
    llr.click(35, 37)
    assert llr.state["column"] == 3
    wait_until(page, lambda d: _lines(readout(d, f"{LLR}-readout")) == _lines(llr.text),
               message="the likelihood readout did not follow the click")
    wait_until(page, lambda d: image_src(d, f"{LLR}-image") != before, message="the picture did not change")
    before = image_src(page, f"{LLR}-image")
    press_slider(page, f"{LLR}-frame", Keys.ARROW_RIGHT)
    llr.frame_slider.value = 1
    wait_until(page, lambda d: _lines(readout(d, f"{LLR}-readout")) == _lines(llr.text),
               message="the likelihood readout did not follow the frame slider")
    wait_until(page, lambda d: "frame 1:" in readout(d, f"{LLR}-readout"), message="the frame did not move")
    wait_until(page, lambda d: image_src(d, f"{LLR}-image") != before, message="the picture did not change")
