"""The demo page in a real browser: headless Debian Chromium driven by Selenium.

Draws a stroke with pointer events, waits for both outputs, checks they changed and are not
blank, reads the latency figures from the page, uploads an image, presses benchmark; the label
mode paints label indices and fills. Skipped only where no Chromium / chromedriver is installed
(scripts/setup.sh installs Debian's `chromium` and `chromium-driver`; no browser is downloaded).
"""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import quiet
from PIL import Image

pytest.importorskip("starlette", reason="the demo extra is not installed: pip install .[demo]")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(the demo extra)")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from gancompress.serve.runners import Demo  # noqa: E402
from gancompress.serve.server import Served, create_app  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SCREENSHOT = os.environ.get("GANCOMPRESS_DEMO_SCREENSHOT")  # where to keep a page screenshot


@pytest.fixture(scope="module")
def browser():
    # scripts/setup.sh (and so CI) installs them: a missing browser is a failed setup
    assert CHROMIUM and DRIVER, ("no chromium / chromedriver on PATH (Debian: apt-get install "
                                 "chromium chromium-driver; scripts/setup.sh does it as root)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1250", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def canvas_pixels(driver, canvas_id: str) -> np.ndarray:
    url = driver.execute_script(
        "return document.getElementById(arguments[0]).toDataURL('image/png');", canvas_id)
    from io import BytesIO

    img = Image.open(BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    return np.asarray(img).astype(int)


def frames(driver, key: str) -> int:
    return int(driver.find_element(By.ID, f"pane-{key}").get_attribute("data-frames") or 0)


def wait_frames(driver, key: str, more_than: int, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout).until(lambda d: frames(d, key) > more_than)


def wait_idle(driver, keys, timeout: float = 60) -> None:
    """Until no pane has a request in flight for two consecutive polls."""
    def idle(d):
        return d.execute_script(
            "return arguments[0].every(k => document.getElementById('pane-' + k)"
            ".dataset.frames === window.__last?.[k]) || (window.__last = Object.fromEntries("
            "arguments[0].map(k => [k, document.getElementById('pane-' + k).dataset.frames])),"
            " false);", list(keys))
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.4)
        if idle(driver):
            return


def stroke(driver, element, points) -> None:
    """A pointer stroke through `points` (offsets from the element's centre, CSS px)."""
    chain = ActionChains(driver, duration=20)
    chain.move_to_element_with_offset(element, *points[0]).click_and_hold()
    for x, y in points[1:]:
        chain.move_to_element_with_offset(element, x, y)
    chain.release().perform()


def test_draw_upload_benchmark(browser, demo_run, tmp_path, one_thread):
    demo = Demo.open([demo_run["run"]], size=(64, 64), backend="torch", threads=1, log=quiet)
    with Served(create_app(demo)) as served:
        browser.get(served.url)
        WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors  # no CSP violations or script errors
        for key in ("compact", "teacher"):
            wait_frames(browser, key, 0)
        wait_idle(browser, ("compact", "teacher"))
        before = {k: canvas_pixels(browser, f"out-{k}") for k in ("compact", "teacher")}
        counts = {k: frames(browser, k) for k in before}

        canvas = browser.find_element(By.ID, "input-canvas")
        browser.execute_script("document.getElementById('brush-size').value = 20;")
        stroke(browser, canvas, [(-100, -100), (-40, -60), (20, 0), (90, 60), (110, 100)])
        for key in before:
            wait_frames(browser, key, counts[key])
        wait_idle(browser, before)
        drawn = canvas_pixels(browser, "input-canvas")
        assert (drawn < 128).any(axis=-1).sum() > 100  # the stroke is on the input
        for key in before:
            after = canvas_pixels(browser, f"out-{key}")
            assert np.abs(after - before[key]).mean() > 0.5, f"{key} output did not change"
            assert after.std() > 2, f"{key} output is blank"
            pane = browser.find_element(By.ID, f"pane-{key}")
            server_ms = float(pane.find_element(By.CLASS_NAME, "server-ms").text)
            round_trip = float(pane.find_element(By.CLASS_NAME, "rt-ms").text)
            assert 0 < server_ms <= round_trip
            assert int(pane.find_element(By.CLASS_NAME, "fps").text) >= 0
            assert pane.find_element(By.CLASS_NAME, "macs").text.endswith(("K", "M", "G"))
        assert "L1 0.2500" in browser.find_element(By.ID, "pane-compact").text

        # undo restores the blank input; redo brings the stroke back
        browser.find_element(By.ID, "undo").click()
        assert canvas_pixels(browser, "input-canvas").min() == 255
        browser.find_element(By.ID, "redo").click()
        assert (canvas_pixels(browser, "input-canvas") == drawn).all()

        # upload through the file input: the server decodes and resizes it onto the canvas
        picture = tmp_path / "upload.png"
        gradient = np.zeros((40, 80, 3), np.uint8)
        gradient[..., 0] = np.linspace(0, 255, 80, dtype=np.uint8)[None]
        Image.fromarray(gradient).save(picture)
        counts = {k: frames(browser, k) for k in before}
        browser.find_element(By.ID, "upload").send_keys(str(picture))
        WebDriverWait(browser, 30).until(
            lambda d: "loaded upload.png" in d.find_element(By.ID, "status").text)
        uploaded = canvas_pixels(browser, "input-canvas")
        assert uploaded[:, -1, 0].mean() > 200 and uploaded[:, 0, 0].mean() < 60
        for key in before:
            wait_frames(browser, key, counts[key])

        # a corrupt upload shows the server's message
        broken = tmp_path / "broken.png"
        broken.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
        browser.find_element(By.ID, "upload").send_keys(str(broken))
        WebDriverWait(browser, 30).until(
            lambda d: "cannot decode the image" in d.find_element(By.ID, "status").text)

        # benchmark: medians, measured speed-up and MAC ratio per model
        browser.find_element(By.ID, "bench-runs").clear()
        browser.find_element(By.ID, "bench-runs").send_keys("3")
        browser.find_element(By.ID, "benchmark").click()
        WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.ID, "bench-result").get_attribute("data-done") == "1")
        rows = browser.find_elements(By.CSS_SELECTOR, "#bench-result tbody tr")
        assert {r.get_attribute("data-key") for r in rows} == {"compact", "teacher"}
        compact = next(r for r in rows if r.get_attribute("data-key") == "compact")
        cells = [c.text for c in compact.find_elements(By.TAG_NAME, "td")]
        assert float(cells[2]) > 0 and cells[4].endswith("\u00d7") and cells[5].endswith("\u00d7")

        # sub-network slider: the other point of the front replaces the compact pane
        count = frames(browser, "compact")
        browser.execute_script(
            "const s = document.getElementById('subnet-slider'); s.value = 0;"
            "s.dispatchEvent(new Event('change'));")
        WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.ID, "pane-compact").get_attribute("data-config")
            == demo_run["other"])
        wait_frames(browser, "compact", count)
        if SCREENSHOT:
            Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(SCREENSHOT)


def test_label_mode_paints_indices(browser, tmp_path, label_generator, one_thread):
    from gancompress.models.checkpoint import save_generator

    model = label_generator(label_nc=35, ngf=4, n_blocks=3)
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    save_generator(model.eval(), tmp_path / "spade-standin.pth")
    demo = Demo.open([tmp_path / "spade-standin.pth"], size=(32, 64), backend="torch",
                     threads=1, log=quiet, cache=tmp_path / "cache")
    with Served(create_app(demo)) as served:
        browser.get(served.url)
        WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        key = "spade-standin"
        assert browser.find_element(By.ID, "mode").get_attribute("value") == "stroke"
        swatches = browser.find_elements(By.CSS_SELECTOR, "#swatches .swatch")
        assert len(swatches) == 35
        wait_frames(browser, key, 0)
        before = canvas_pixels(browser, f"out-{key}")
        count = frames(browser, key)
        browser.find_element(By.CSS_SELECTOR, "#swatches .swatch[data-index='26']").click()  # car
        canvas = browser.find_element(By.ID, "input-canvas")
        stroke(browser, canvas, [(-100, 0), (0, 10), (100, 0)])
        wait_frames(browser, key, count)
        labels = browser.execute_script("return Array.from(new Set(Array.from("
                                        "document.getElementById('input-canvas').getContext('2d')"
                                        ".getImageData(0,0,64,32).data)))")
        # painted colours are exact palette entries: car (0,0,142) over the unlabeled black,
        # with the white edge overlay; no blended (anti-aliased) values
        assert set(labels) <= {0, 142, 255}
        assert np.abs(canvas_pixels(browser, f"out-{key}") - before).mean() > 0.5
        count = frames(browser, key)
        browser.find_element(By.ID, "tool-fill").click()
        browser.find_element(By.CSS_SELECTOR, "#swatches .swatch[data-index='23']").click()  # sky
        ActionChains(browser).move_to_element_with_offset(canvas, -120, -60).click().perform()
        wait_frames(browser, key, count)
        sky = canvas_pixels(browser, "input-canvas")
        assert (sky[0, 0] == [70, 130, 180]).all()


def test_label_painter_runs_live_with_incremental_inference(browser, tmp_path, one_thread):
    """During a stroke the GauGAN painter updates with incremental previews (changed area and
    incremental ms on the pane); at stroke end a dense pass replaces the preview."""
    from gancompress.models.checkpoint import save_generator
    from gancompress.models.spade import SpadeGenerator

    torch.manual_seed(0)
    save_generator(SpadeGenerator(ngf=2, in_channels=6, upsampling="normal").eval(),
                   tmp_path / "gaugan.pth")
    demo = Demo.open([tmp_path / "gaugan.pth"], size=(64, 128), backend="torch", threads=1,
                     log=quiet, cache=tmp_path / "cache")
    with Served(create_app(demo)) as served:
        browser.get(served.url)
        WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        key = "gaugan"
        assert browser.find_element(By.ID, "incremental").is_selected()
        wait_frames(browser, key, 0)
        pane = browser.find_element(By.ID, f"pane-{key}")
        assert pane.get_attribute("data-incremental-ms") is None
        browser.find_element(By.CSS_SELECTOR, "#swatches .swatch[data-index='2']").click()
        canvas = browser.find_element(By.ID, "input-canvas")
        chain = ActionChains(browser, duration=80)  # a slow stroke: several previews
        chain.move_to_element_with_offset(canvas, -150, -20).click_and_hold()
        for i in range(24):
            chain.move_to_element_with_offset(canvas, -150 + 12 * i, -20 + (i % 5) * 4)
        chain.release().perform()
        WebDriverWait(browser, 60).until(lambda d: pane.get_attribute("data-incremental-ms"))
        wait_idle(browser, [key])
        assert 0 < float(pane.get_attribute("data-changed")) < 0.5
        assert float(pane.find_element(By.CSS_SELECTOR, ".inc-ms").text) > 0
        assert float(pane.find_element(By.CSS_SELECTOR, ".dense-ms").text) > 0
        assert pane.find_element(By.CSS_SELECTOR, ".changed").text.endswith("%")
        assert pane.get_attribute("data-approximate") == "0"  # the dense pass came last
