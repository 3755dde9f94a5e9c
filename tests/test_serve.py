"""The demo page: the HTTP API, and the page itself in headless Chromium."""

import json
import os
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from edgecnn.apps.serve import make_server
from edgecnn.core import reference
from edgecnn.core.preprocess import load_image, preprocess
from testutil import tiny_cnn, write_image


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


def test_page_in_headless_chromium_renders_the_labels(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    g, url = server
    img = write_image(tmp_path / "photo.png", size=(64, 48))
    browser.get(url)
    browser.find_element(By.ID, "file").send_keys(str(img))
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li")) == 5)
    items = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#results li")]
    shot = tmp_path / "page.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("EDGECNN_KEEP_SCREENSHOT"):
        browser.save_screenshot(os.environ["EDGECNN_KEEP_SCREENSHOT"])
    p = reference.predict(g, preprocess(load_image(img), g.preprocessing, (16, 16)))[0]
    from edgecnn.core.labels import ilsvrc2012

    best = ilsvrc2012()[int(np.argmax(p))]
    assert best[1] in items[0] and best[0] in items[0]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[0] > 300 and pixels.std() > 10  # a rendered page, not a blank one
    # the probability bars are drawn: the bar colour appears in the screenshot
    bar = np.all(np.abs(pixels - [0x1F, 0x77, 0xB4]) < 8, axis=-1)
    assert bar.sum() > 50
