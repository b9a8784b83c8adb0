"""``ovss app`` driven in a real headless Chromium: upload, type classes, run, compare with ``ovss segment``.

Needs gradio (pip install 'ovss[app]'), selenium, and Debian's chromium + chromium-driver
(apt-get install -y chromium chromium-driver); without them the tests are skipped with the reason.
``OVSS_APP_SCREENSHOT=docs/img/app.png`` also saves the README's screenshot of the page.
"""
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("OVSS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OVSS_CHROMEDRIVER", "/usr/bin/chromedriver")
EXAMPLE_CLASSES = "sky, snow, pine tree, rock"  # the classes present in ShapesWorld 2 scene 7


def _missing() -> str | None:
    if importlib.util.find_spec("gradio") is None:
        return "gradio is not installed (pip install 'ovss[app]')"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install 'ovss[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) or shutil.which(path)):
            return f"{path} is missing (apt-get install -y chromium chromium-driver)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=f"browser test skipped: {_missing()}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``ovss app`` in a subprocess on a free port; yields its URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("app") / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(log.parent)}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ovss", "app", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read(100)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"ovss app did not start:\n{log.read_text()}")
                time.sleep(0.3)
        yield url, proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM) or CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1400", "--force-device-scale-factor=1", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which(CHROMEDRIVER) or CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout=60, what="the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message=f"waiting for {what}")


def _status(driver, number: int) -> str:
    """The status line of the page's ``number``-th run ("run N: ..."), or "" while it is not there
    (gradio overlays a "processing" line while a run is pending)."""
    text = driver.find_element("css selector", "#ovss-status").text
    return next((line for line in text.splitlines() if line.startswith(f"run {number}:")), "")


def _run(driver, classes: str, number: int) -> str:
    """Type ``classes``, press Segment, and return the status line of this, the ``number``-th run."""
    box = driver.find_element("css selector", "#ovss-classes textarea")
    box.clear()
    box.send_keys(classes)
    driver.find_element("css selector", "#ovss-run").click()
    _wait(driver, lambda d: _status(d, number) and "processing" not in d.find_element("css selector", "#ovss-status").text,
          what=f"the status line of run {number}")
    return _status(driver, number)


def _table(driver) -> dict[str, float]:
    rows = driver.find_elements("css selector", "#ovss-share-table tr.ovss-share")
    return {r.find_element("css selector", ".ovss-name").text: float(r.find_element("css selector", ".ovss-pct").text.rstrip("%"))
            for r in rows}


@pytest.fixture(scope="module")
def example_image(tmp_path_factory):
    from ovss.app.examples import write_examples

    path, classes = write_examples(tmp_path_factory.mktemp("img"), seeds=(7,))[0]
    assert classes == EXAMPLE_CLASSES
    return path


def test_page_segments_like_the_command_and_shows_errors(server, browser, example_image, tmp_path):
    from ovss.cli import main

    url, proc, log = server
    browser.get(url)
    _wait(browser, lambda d: d.find_elements("css selector", "#ovss-run"), what="the Segment button")

    # upload the ShapesWorld image, type classes, run
    browser.find_element("css selector", "#ovss-image input[type=file]").send_keys(str(example_image))
    _wait(browser, lambda d: d.find_elements("css selector", "#ovss-image img"), what="the uploaded image preview")
    status = _run(browser, EXAMPLE_CLASSES, 1)
    assert "encoded the image, then decoded" in status, status
    _wait(browser, lambda d: d.execute_script(
        "const i = document.querySelector('#ovss-overlay img'); return i && i.complete && i.naturalWidth > 0;"),
        what="the overlay image")
    width, height = browser.execute_script(
        "const i = document.querySelector('#ovss-overlay img'); return [i.naturalWidth, i.naturalHeight];")
    assert height == 224 and width > 224  # the image plus the legend, as ovss segment draws it

    # the listed classes and shares are what `ovss segment` writes for the same file
    assert main(["segment", str(example_image), "--classes", EXAMPLE_CLASSES, "--out", str(tmp_path / "cli")]) == 0
    cli = json.loads((tmp_path / "cli" / f"{example_image.stem}.json").read_text())["pixel_share"]
    page = _table(browser)
    assert list(page) == list(cli)
    assert page == {n: round(100 * s, 2) for n, s in cli.items()}
    assert abs(sum(page.values()) - 100) < 0.05

    # another class list decodes the cached features again, without re-encoding
    status = _run(browser, EXAMPLE_CLASSES + ", boat", 2)
    assert "no re-encoding" in status, status
    assert set(_table(browser)) <= set(EXAMPLE_CLASSES.split(", ") + ["boat"])

    # clicking a pixel of the overlay names its class and score
    browser.find_element("css selector", "#ovss-overlay img").click()  # its centre lies on the picture
    _wait(browser, lambda d: "pixel (" in d.find_element("css selector", "#ovss-inspect textarea").get_attribute("value"),
          what="the pixel read-out")
    where = browser.find_element("css selector", "#ovss-inspect textarea").get_attribute("value")
    assert "probability" in where and any(name in where for name in page), where

    shot = os.environ.get("OVSS_APP_SCREENSHOT")
    if shot:
        _screenshot(browser, Path(shot))

    # errors are messages on the page, and the server keeps serving
    status = _run(browser, " , ", 3)
    assert "error:" in status and "empty" in status, status
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    browser.find_element("css selector", "#ovss-image-file input[type=file]").send_keys(str(not_image))
    _wait(browser, lambda d: "notes" in d.find_element("css selector", "#ovss-image-file").text, what="the file upload")
    status = _run(browser, EXAMPLE_CLASSES, 4)
    assert "error:" in status and "cannot read notes.png as an image" in status, status
    assert proc.poll() is None

    # nothing was fetched from anywhere but this server
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    outside = [r for r in resources if not r.startswith(url) and not r.startswith("data:") and not r.startswith("blob:")]
    assert resources and not outside, outside


def _screenshot(driver, path: Path) -> None:
    """The page as a palette PNG (small enough for the README)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw.png")
    driver.save_screenshot(str(raw))
    Image.open(raw).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    raw.unlink()
