"""Screenshots of the explorers for the docs: docs/effective_filter_explorer.png and
docs/likelihood_explorer.png.

The same machinery as tests/test_widgets_browser.py: Voilà serves tests/explorers_demo.ipynb, headless
Debian chromium (through chromedriver and selenium) clicks a pixel and a column, and each widget is
photographed.  Run from the repository root:  python3 docs/make_screenshots.py
(needs the [test] extra and ``apt-get install chromium chromium-driver``)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_pages import browser_tools, click_png_point, readout, voila_page, wait_until


def main() -> int:
    from selenium.webdriver.common.by import By

    from temnb.notebook.explorers import EffectiveFilterExplorer, LikelihoodExplorer

    tools, why_not = browser_tools()
    if tools is None:
        print(why_not, file=sys.stderr)
        return 1
    from explorer_demo import FILTER_OPTIONS, LIKELIHOOD_OPTIONS, filter_demo, likelihood_demo

    # Where to click, from the same explorers built here.
    filters = EffectiveFilterExplorer(*filter_demo(), **FILTER_OPTIONS)
    llr = LikelihoodExplorer(*likelihood_demo(), **LIKELIHOOD_OPTIONS)

    def point(explorer, row, col):
        x0, y0, x1, y1 = explorer.layout_box["frame"]
        rows, cols = explorer.layout_box["shape"]
        return x0 + (col + 0.5) / cols * (x1 - x0), y0 + (row + 0.5) / rows * (y1 - y0)

    filters.click(18, 14)
    llr.click(36, 36)
    wait = (".temnb-filter-readout pre", ".temnb-llr-readout pre")
    with voila_page(ROOT / "tests" / "explorers_demo.ipynb", tools, wait_for=wait) as page:
        click_png_point(page, ".temnb-filter-image", *point(filters, 18, 14))
        wait_until(page, lambda d: "row 18, col 14" in readout(d, ".temnb-filter-readout"))
        click_png_point(page, ".temnb-llr-image", *point(llr, 36, 36))
        wait_until(page, lambda d: "column 3 at" in readout(d, ".temnb-llr-readout"))
        time.sleep(0.5)  # let the new PNGs paint
        for selector, name in ((".temnb-filter", "effective_filter_explorer.png"),
                               (".temnb-llr", "likelihood_explorer.png")):
            element = page.find_element(By.CSS_SELECTOR, f"{selector}.widget-vbox, {selector}")
            page.execute_script("arguments[0].scrollIntoView({block: 'start'});", element)
            element.screenshot(str(ROOT / "docs" / name))
            print("wrote", ROOT / "docs" / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
