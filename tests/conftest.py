"""Shared fixtures. Tests needing optional pieces skip with a reason when they are absent.

A missing piece (a compiler, an emulator, a package, the shared data, a browser) is reported by
:func:`need`: it skips the test, unless the piece is named in ``EDGECNN_REQUIRE`` (a comma
list, or ``all``), where it fails instead, so that a missing install step in CI cannot pass as a
skip. The pieces: cc, clang, cross (cross compilers + qemu-user), mcu (arm-none-eabi and
qemu-system-arm), data, browser, torch, onnx, tflite, litert, video, fuzz, llvm (llvm-mca and
llvm-objdump, Debian's llvm); and peers (the ``bench`` extra's engines: OpenVINO, ncnn with
pnnx, MNN), which ``all`` does not include because the test extra does not install them (name
it to require it).
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PIECES = ("cc", "clang", "cross", "mcu", "data", "browser", "torch", "onnx", "tflite", "litert",
          "video", "fuzz", "llvm", "peers")
NOT_IN_ALL = ("peers",)  # the bench extra, outside the test extra


def pytest_configure(config):
    """Builds in the tests treat warnings as errors. Tests never write into the user's
    ~/.cache: builds and downloads go to a temporary EDGECNN_CACHE, removed at the end.
    Hypothesis keeps no database in the repository, and in CI (CI=true) draws derandomized
    examples, so a run is repeatable."""
    config._edgecnn_cache = tempfile.mkdtemp(prefix="edgecnn-test-cache-")
    os.environ["EDGECNN_CACHE"] = config._edgecnn_cache
    os.environ["EDGECNN_WERROR"] = "1"  # the C the compiler writes must stay warning-free
    try:
        from hypothesis import settings
        from hypothesis.database import DirectoryBasedExampleDatabase
    except ImportError:
        return
    db = Path(tempfile.gettempdir()) / "edgecnn-hypothesis"
    settings.register_profile("local", database=DirectoryBasedExampleDatabase(db))
    settings.register_profile("ci", derandomize=True, database=None)
    settings.load_profile("ci" if os.environ.get("CI") else "local")


def pytest_unconfigure(config):
    cache = getattr(config, "_edgecnn_cache", None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)


def required(piece: str) -> bool:
    """Is ``piece`` named in EDGECNN_REQUIRE (where its absence is a failure)?"""
    names = {n.strip() for n in os.environ.get("EDGECNN_REQUIRE", "").split(",") if n.strip()}
    return piece in names or ("all" in names and piece not in NOT_IN_ALL)


def need(piece: str, ok: bool, reason: str) -> None:
    """Skip (or, when ``piece`` is required, fail) unless ``ok``: ``reason`` says what is missing
    and how to install it."""
    assert piece in PIECES, piece
    if ok:
        return
    if required(piece):
        pytest.fail(f"EDGECNN_REQUIRE names {piece!r}, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def need_module(piece: str, module: str, reason: str | None = None):
    """``import module`` or skip/fail as :func:`need` does; returns the module."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        need(piece, False, reason or f"needs {module} ({e})")


def shared_data_dir() -> Path | None:
    """$EDGECNN_DATA, else ../shared/data beside the repository; None when neither exists."""
    env = os.environ.get("EDGECNN_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared test data folder (ImageNet samples, reference models)."""
    path = shared_data_dir()
    need("data", path is not None, "shared test data not found: set EDGECNN_DATA or provide "
         "../shared/data next to the repository")
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
    need("browser", bool(chromium and driver_path),
         "needs Debian's chromium and chromium-driver (apt install chromium chromium-driver)")
    webdriver = need_module("browser", "selenium.webdriver", "needs selenium (the test extra)")
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
