"""Voilà or JupyterLab plus headless Debian chromium through selenium: the machinery of
tests/test_widgets_browser.py and docs/make_screenshots.py.

``browser_tools()`` finds chromium and chromedriver (None and the reason when either is missing);
``voila_page(notebook)`` serves a notebook with Voilà on a free local port and yields a selenium
driver on the rendered page; ``lab_page(notebook)`` opens a copy of it in JupyterLab, runs all its
cells from the Run menu, and yields the driver once the widgets are drawn; ``click_png_point``
clicks a point given in the pixels of a widget's PNG, whatever size the page draws it at.
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


def _environment(folder: Path) -> dict:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), root, env.get("PYTHONPATH")) if p)
    env.setdefault("TEMNB_THREADS", "1")
    return env


@contextlib.contextmanager
def _server(command, *, cwd, env, port, timeout, log, name):
    """Run a Jupyter server *command* until the block ends; yields once it listens on *port*."""
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, timeout, name)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()


@contextlib.contextmanager
def voila_server(notebook: Path, *, timeout: float = 60, log=None):
    """Serve *notebook* with Voilà on a free local port; yields its URL."""
    notebook = Path(notebook).resolve()
    port = _free_port()
    command = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
               "--Voila.ip=127.0.0.1", "--show_tracebacks=True", "--ServerApp.open_browser=False"]
    with _server(command, cwd=notebook.parent, env=_environment(notebook.parent), port=port, timeout=timeout,
                 log=log, name="voila"):
        yield f"http://127.0.0.1:{port}/"


@contextlib.contextmanager
def lab_server(folder: Path, *, timeout: float = 90, log=None):
    """Serve *folder* with JupyterLab on a free local port, with its settings and workspaces kept in
    *folder* (nothing of the user's is read or written); yields the URL of its tree, token included."""
    folder = Path(folder).resolve()
    port, token = _free_port(), "temnb-browser-test"
    env = _environment(folder)
    env["JUPYTERLAB_SETTINGS_DIR"] = str(folder / ".lab-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(folder / ".lab-workspaces")
    # No "would you like Jupyter news?" prompt over the page
    news = folder / ".lab-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false"}')
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False", f"--ServerApp.root_dir={folder}",
               "--allow-root",
               # nothing from the network: no news, no update check, no PyPI extension manager
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]
    with _server(command, cwd=folder, env=env, port=port, timeout=timeout, log=log, name="jupyterlab"):
        yield f"http://127.0.0.1:{port}", token


def _wait_for_port(port, process, timeout, name):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before listening on port {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{name} did not listen on port {port} within {timeout} s")


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


@contextlib.contextmanager
def lab_page(notebook, tools, *, workdir, timeout=120, wait_for=(), log=None):
    """A selenium driver on a copy of *notebook* (and the ``.py`` files beside it) in *workdir*,
    opened in JupyterLab, all cells run from the Run menu, once every selector in *wait_for* is shown.
    The copy keeps JupyterLab's autosave away from the committed notebook."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    notebook = Path(notebook).resolve()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for path in [notebook, *notebook.parent.glob("*.py")]:
        shutil.copy(path, workdir / path.name)
    with lab_server(workdir, timeout=timeout, log=log) as (url, token):
        driver = chrome(tools)
        try:
            driver.set_page_load_timeout(timeout)
            driver.get(f"{url}/lab/tree/{notebook.name}?reset&token={token}")
            wait = WebDriverWait(driver, timeout)
            # the kernel is started and idle: the notebook can run
            wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
            wait.until(lambda d: d.execute_script(
                "const s = document.querySelector('.jp-Notebook-ExecutionIndicator');"
                "return s !== null && s.getAttribute('data-status') === 'idle';"))
            menu = wait.until(EC.element_to_be_clickable(
                (By.XPATH, "//div[contains(@class, 'lm-MenuBar-itemLabel') and text()='Run']")))
            menu.click()
            wait.until(EC.element_to_be_clickable(
                (By.CSS_SELECTOR, "li.lm-Menu-item[data-command='runmenu:run-all']"))).click()
            for selector in wait_for:
                wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, selector)))
            yield driver
        finally:
            driver.quit()


def wait_until(driver, condition, timeout=30, message=""):
    """Wait until ``condition(driver)`` is truthy; returns its value.  An element that the widget
    re-rendered between finding it and reading it (stale) or not yet drawn just means "not yet"."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
                         ).until(lambda d: condition(d), message)


def _read(driver, script, selector, what):
    """Find and read in one JavaScript call, so that a re-render in between cannot make it stale."""
    from selenium.common.exceptions import NoSuchElementException

    value = driver.execute_script(script, selector)
    if value is None:
        raise NoSuchElementException(f"no {what} for {selector!r} on the page")
    return value


def image_src(driver, selector) -> str:
    return _read(driver, "const e = document.querySelector(`${arguments[0]} img, img${arguments[0]}`);"
                         "return e === null ? null : e.getAttribute('src');", selector, "image")


def readout(driver, selector) -> str:
    return _read(driver, "const e = document.querySelector(`${arguments[0]} pre`);"
                         "return e === null ? null : e.innerText;", selector, "readout")


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
