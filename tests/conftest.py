"""Shared fixtures. Tests needing optional pieces skip with a reason when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """$EDGECNN_DATA, else ../shared/data beside the repository; None when neither exists."""
    env = os.environ.get("EDGECNN_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared test data folder (ImageNet samples, reference models)."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared test data not found: set EDGECNN_DATA or provide ../shared/data "
                    "next to the repository")
    return path


@pytest.fixture(scope="module")
def torch_one_thread():
    """torch on one thread while a test module runs (restored after): for tiny tensors the
    thread pool only adds latency, about 10 ms per op on a busy 2-core machine. A no-op
    without torch."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium driven by selenium (Debian's chromium and chromium-driver)."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("needs Debian's chromium and chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", f"--user-data-dir={tmp_path / 'profile'}",
                 "--window-size=1100,900"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts,
                              service=webdriver.ChromeService(executable_path=driver_path))
    yield driver
    driver.quit()
