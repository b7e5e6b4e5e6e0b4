"""Voilà plus headless Debian chromium through selenium: the machinery of tests/test_widgets_browser.py
and docs/make_screenshots.py.

``browser_tools()`` finds chromium and chromedriver (None and the reason when either is missing);
``voila_page(notebook)`` serves a notebook with Voilà on a free local port and yields a selenium
driver on the rendered page; ``click_png_point`` clicks a point given in the pixels of a widget's
PNG, whatever size the page draws it at.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("chromedriver",)
#: Where Debian's chromium-driver puts the driver, in case it is not on PATH.
DRIVER_PATHS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def browser_tools():
    """((chromium, chromedriver) paths, None) or (None, why not)."""
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = next((p for p in map(shutil.which, DRIVERS) if p), None) or next(
        (p for p in DRIVER_PATHS if os.access(p, os.X_OK)), None)
    missing = [name for name, path in (("chromium", browser), ("chromedriver", driver)) if path is None]
    if missing:
        return None, (f"no {' and no '.join(missing)} installed: the browser test needs Debian's chromium and "
                      "chromium-driver (apt-get install chromium chromium-driver)")
    return (browser, driver), None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def voila_server(notebook: Path, *, timeout: float = 60, log=None):
    """Serve *notebook* with Voilà on a free local port; yields its URL."""
    notebook = Path(notebook).resolve()
    port = _free_port()
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(notebook.parent), root, env.get("PYTHONPATH")) if p)
    env.setdefault("TEMNB_THREADS", "1")
    command = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
               "--Voila.ip=127.0.0.1", "--show_tracebacks=True", "--ServerApp.open_browser=False"]
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=notebook.parent, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for_port(port, process, timeout)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()


def _wait_for_port(port, process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited with {process.returncode} before listening on port {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"voila did not listen on port {port} within {timeout} s")


def chrome(tools, *, width=1400, height=1800):
    """A headless chromium driven by chromedriver (selenium)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = tools
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@contextlib.contextmanager
def voila_page(notebook, tools, *, timeout=90, wait_for=(), log=None):
    """A selenium driver on *notebook* served by Voilà, once every CSS selector in *wait_for* is shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    with voila_server(notebook, timeout=timeout, log=log) as url:
        driver = chrome(tools)
        try:
            driver.set_page_load_timeout(timeout)
            driver.get(url)
            for selector in wait_for:
                WebDriverWait(driver, timeout).until(EC.visibility_of_element_located((By.CSS_SELECTOR, selector)))
            yield driver
        finally:
            driver.quit()


def wait_until(driver, condition, timeout=30, message=""):
    """Wait until ``condition(driver)`` is truthy; returns its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d), message)


def image_src(driver, selector) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"{selector} img, img{selector}").get_attribute("src")


def readout(driver, selector) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"{selector} pre").text


def click_png_point(driver, selector, x, y):
    """Click the image *selector* at (*x*, *y*) in the pixels of its PNG (scaled to its drawn size)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    img = driver.find_element(By.CSS_SELECTOR, f"{selector} img, img{selector}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", img)
    natural_w, natural_h, drawn_w, drawn_h = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [arguments[0].naturalWidth, arguments[0].naturalHeight, r.width, r.height];", img)
    dx = x * drawn_w / natural_w - drawn_w / 2   # selenium 4: offsets from the element's centre
    dy = y * drawn_h / natural_h - drawn_h / 2
    ActionChains(driver).move_to_element_with_offset(img, round(dx), round(dy)).click().perform()


def press_slider(driver, selector, key, times=1):
    """Move the slider *selector* with the keyboard (noUiSlider handles take arrow keys)."""
    from selenium.webdriver.common.by import By

    handle = driver.find_element(By.CSS_SELECTOR, f"{selector} .noUi-handle")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();", handle)
    for _ in range(times):
        handle.send_keys(key)
