"""The demo page: the HTTP API, and the page itself in headless Chromium."""

import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from edgecnn import reference
from edgecnn.preprocess import load_image, preprocess
from edgecnn.serve import make_server
from testutil import tiny_cnn, write_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def server():
    g = tiny_cnn(classes=1000)
    httpd = make_server(g, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield g, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _post(url, data):
    req = urllib.request.Request(url + "classify", data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_classify_endpoint_matches_reference(server, tmp_path):
    g, url = server
    img = write_image(tmp_path / "a.png")
    status, out = _post(url, img.read_bytes())
    assert status == 200 and len(out["top"]) == 5
    p = reference.predict(g, preprocess(load_image(img), g.preprocessing, (16, 16)))[0]
    assert [t["index"] for t in out["top"]] == list(np.argsort(-p, kind="stable")[:5])
    status, out = _post(url, b"not an image")
    assert status == 400 and "cannot decode" in out["error"]
    with urllib.request.urlopen(url, timeout=10) as r:
        assert b"Drop an image" in r.read()


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="needs Debian's chromium and chromium-driver")
def test_page_in_headless_chromium_renders_the_labels(server, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    g, url = server
    img = write_image(tmp_path / "photo.png", size=(64, 48))
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", f"--user-data-dir={tmp_path / 'profile'}",
                 "--window-size=900,700"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        driver.get(url)
        driver.find_element(By.ID, "file").send_keys(str(img))
        WebDriverWait(driver, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li")) == 5)
        items = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#results li")]
        shot = tmp_path / "page.png"
        driver.save_screenshot(str(shot))
        if os.environ.get("EDGECNN_KEEP_SCREENSHOT"):
            driver.save_screenshot(os.environ["EDGECNN_KEEP_SCREENSHOT"])
    finally:
        driver.quit()
    p = reference.predict(g, preprocess(load_image(img), g.preprocessing, (16, 16)))[0]
    from edgecnn.labels import ilsvrc2012

    best = ilsvrc2012()[int(np.argmax(p))]
    assert best[1] in items[0] and best[0] in items[0]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[0] > 300 and pixels.std() > 10  # a rendered page, not a blank one
    # the probability bars are drawn: the bar colour appears in the screenshot
    bar = np.all(np.abs(pixels - [0x1F, 0x77, 0xB4]) < 8, axis=-1)
    assert bar.sum() > 50
