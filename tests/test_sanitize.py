"""Compiled C under AddressSanitizer + UndefinedBehaviorSanitizer on real images.

A representative subset of `scripts/sanitize_sweep.py` (the full sweep: every zoo model and
both MobileNets, reference and fast kernels, host and c99): a small binary-conv model with
reference and fast kernels on host and c99, and the small shared MobileNet v1 with fast kernels
on host. Zero sanitizer reports, and the outputs match the numpy reference.
"""

import importlib.util
import shutil

import pytest

from conftest import REPO_ROOT, need

pytestmark = pytest.mark.slow


def _sweep():
    spec = importlib.util.spec_from_file_location(
        "sanitize_sweep", REPO_ROOT / "scripts" / "sanitize_sweep.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    need("cc", shutil.which("cc") is not None, "needs a C compiler (apt install gcc)")
    return _sweep()


CASES = [("d_I64x64x3CMCMBMC1AS", "host", "reference"), ("d_I64x64x3CMCMBMC1AS", "host", "fast"),
         ("d_I64x64x3CMCMBMC1AS", "c99", "fast"),
         ("tflite/mobilenet_v1_0.25_128_quant.tflite", "host", "fast")]


@pytest.mark.parametrize("model,target,kernels", CASES)
def test_sanitized_build_runs_real_images_clean(sweep, shared_data, tmp_path, monkeypatch,
                                                model, target, kernels):
    monkeypatch.setenv("EDGECNN_CACHE", str(tmp_path / "cache"))
    spec = str(shared_data / model) if model.endswith(".tflite") else model
    g = sweep.load_model(spec)
    images = sorted((shared_data / "imagenet-samples").glob("*.JPEG"))[:1]
    work = tmp_path / "build"
    work.mkdir()
    rec = sweep.run_case(g, target, kernels == "reference", images, work)
    assert rec["findings"] == [], rec["findings"]
    assert rec["images"] == 1
    # the sanitized program computes what the numpy reference does (float reassociation only)
    assert rec["max_abs_diff"] < 1e-3 and rec["top1_agree"] == 1, rec
