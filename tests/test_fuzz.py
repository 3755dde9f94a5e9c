"""Fuzzing: every saved finding replays cleanly, and each harness runs for a short budget.

The harnesses live in fuzz/ (atheris for the Python readers, libFuzzer for the C `predict`
input reader); fuzz/regressions/<target>/ holds every input a campaign found that once failed.
A longer campaign and its figures: benchmarks/reliability.md.
"""

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, need, need_module
from edgecnn.errors import GraphError, ModelFileError

FUZZ = REPO_ROOT / "fuzz"
PY_TARGETS = ["model_file", "onnx", "tflite", "darknet", "image", "serve"]
SECONDS = 8  # per harness: 6 Python + 1 C harness stay under two minutes with start-up


def _env():
    src = str(REPO_ROOT / "src")
    return dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.mark.parametrize("target", PY_TARGETS)
def test_saved_findings_replay_cleanly(target):
    files = sorted((FUZZ / "regressions" / target).glob("*"))
    if target == "onnx":
        need_module("onnx", "onnx")
    if target == "tflite":
        need_module("tflite", "tflite")
    if not files:
        return  # nothing found for this target yet: nothing to replay
    r = subprocess.run([sys.executable, str(FUZZ / "run.py"), target, "--replay",
                        *map(str, files)], capture_output=True, text=True, timeout=300,
                       env=_env())
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"replayed {len(files)} input(s)" in r.stdout


def test_zero_stride_in_a_model_file_is_one_error(tmp_path):
    """Found by the model_file harness: stride 0 divided by zero in the shape rule."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from edgecnn.formats.modelfile import load, save
    from edgecnn.layers.base import window_out
    from testutil import tiny_cnn

    path = save(tiny_cnn(), tmp_path / "m.safetensors")
    with safe_open(str(path), framework="np") as f:
        meta = dict(f.metadata())
    desc = json.loads(meta["edgecnn.graph"])
    next(l for l in desc["layers"] if l["kind"] == "conv2d")["attrs"]["stride"] = [0, 1]
    meta["edgecnn.graph"] = json.dumps(desc)
    save_file(load_file(path), tmp_path / "bad.safetensors", metadata=meta)
    with pytest.raises(ModelFileError, match="stride 0"):
        load(tmp_path / "bad.safetensors")
    with pytest.raises(GraphError, match="at least 1"):
        window_out(8, 3, 0, 1, 1)


def test_onnx_initializer_of_the_wrong_size_is_one_error(tmp_path):
    onnx = need_module("onnx", "onnx")
    from edgecnn.formats.importers import import_model
    from edgecnn.formats.onnx_export import export
    from testutil import tiny_cnn

    path = export(tiny_cnn(), tmp_path / "m.onnx")
    model = onnx.load(str(path))
    t = model.graph.initializer[0]
    t.raw_data = t.raw_data[:-4] if t.raw_data else b"\0" * 4  # one float short
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(model.SerializeToString())
    with pytest.raises(ModelFileError, match="malformed ONNX model"):
        import_model(bad)


@pytest.mark.parametrize("target", PY_TARGETS)
def test_harness_runs_a_short_budget_without_findings(target, tmp_path):
    need_module("fuzz", "atheris", "needs atheris (pip install atheris; the test extra)")
    if target == "onnx":
        need_module("onnx", "onnx")
    if target == "tflite":
        need_module("tflite", "tflite")
    r = subprocess.run([sys.executable, str(FUZZ / "run.py"), target, "--seconds", str(SECONDS),
                        "--corpus", str(tmp_path / "corpus"), "--artifacts",
                        str(tmp_path / "found")], capture_output=True, text=True,
                       timeout=SECONDS * 10 + 120, env=_env())
    found = list((tmp_path / "found").glob("*"))
    assert r.returncode == 0 and not found, (found, r.stderr[-4000:])
    assert "Done " in r.stderr  # libFuzzer's summary: it ran


def test_predict_input_reader_under_libfuzzer_and_asan(tmp_path):
    clang = shutil.which("clang")
    need("clang", clang is not None, "needs clang (apt install clang libclang-rt-14-dev)")
    exe = tmp_path / "predict_input_fuzz"
    r = subprocess.run([clang, "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
                        "-fno-sanitize-recover=all", "-I", str(FUZZ / "c"),
                        str(FUZZ / "c" / "predict_input_fuzz.c"), "-o", str(exe)],
                       capture_output=True, text=True)
    need("fuzz", r.returncode == 0, "clang cannot link libFuzzer + ASan: apt install "
         f"libclang-rt-14-dev ({r.stderr.strip()[-300:]})")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ppm").write_bytes(b"P6\n4 5\n255\n" + bytes(range(60)))
    (corpus / "raw").write_bytes(bytes(60))
    (corpus / "comment").write_bytes(b"P6 # c\n4\n5 255\n" + bytes(60))
    r = subprocess.run([str(exe), f"-max_total_time={SECONDS}", "-close_fd_mask=2",
                        f"-artifact_prefix={tmp_path}/", str(corpus)], capture_output=True,
                       text=True, timeout=SECONDS * 10 + 60)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done " in r.stderr


def test_broken_png_chunk_is_an_image_error_and_eval_goes_on(tmp_path):
    """Found by the image harness: Pillow raises SyntaxError for a broken PNG chunk."""
    from edgecnn.apps.evaluate import evaluate
    from edgecnn.core.preprocess import load_image
    from edgecnn.errors import ImageError
    from testutil import tiny_cnn, write_image

    bad = (FUZZ / "regressions" / "image" / "broken-png-chunk").read_bytes()
    with pytest.raises(ImageError, match="cannot decode"):
        load_image(io.BytesIO(bad))
    data = tmp_path / "data" / "a"
    data.mkdir(parents=True)
    for i in range(3):
        write_image(data / f"{i}.png", seed=i)
    (data / "broken.png").write_bytes(bad)
    g = tiny_cnn(classes=2, labels=["a", "b"])
    r = evaluate(g, tmp_path / "data", workers=1)
    assert r["images"] == 3 and "broken.png" in r["skipped"][0]["image"]


def test_darknet_cfg_with_a_huge_output_is_one_error_not_an_oom(tmp_path):
    """Found by the darknet harness: 224x224x1000 outputs made 50 M label strings (3 GB)."""
    from edgecnn.formats.importers import import_model

    cfg = tmp_path / "big.cfg"
    cfg.write_text("[net]\nheight=224\nwidth=224\nchannels=3\n\n[convolutional]\nfilters=1000\n"
                   "size=1\nstride=1\npad=1\nactivation=linear\n")
    with pytest.raises(ModelFileError, match="too many for a classifier"):
        import_model(cfg)


def test_a_size_beyond_any_layer_is_one_graph_error():
    """Found by the Darknet harness: a [maxpool] size of 89 digits reached numpy.pad (TypeError).
    Integer attributes are bounded where every importer's layers are checked."""
    from edgecnn.core.graph import GraphBuilder
    from edgecnn.errors import GraphError
    from edgecnn.formats.importers.darknet import import_darknet

    with pytest.raises(GraphError, match=r"layer 'maxpool4': attribute 'kernel' is .*beyond any "
                                         r"real layer"):
        import_darknet(FUZZ / "regressions" / "darknet" / "huge-pool-size")
    b = GraphBuilder("m", (4, 4, 3))
    b.add("conv2d", "c", filters=1 << 31, kernel=1)
    with pytest.raises(GraphError, match="at most 2,147,483,647 in magnitude"):
        b.build()
    b = GraphBuilder("m", (4, 4, 3))
    b.add("conv2d", "c", filters=(1 << 31) - 1, kernel=1)
    assert b.build().shapes["c"] == (4, 4, (1 << 31) - 1)  # the limit itself is allowed


def test_weights_beyond_memory_are_refused_and_drawn_without_a_float64_copy(monkeypatch):
    """Found by the Darknet harness: a cfg of 805 M parameters took 9.2 GB to He-initialize
    (a float64 draw of its largest tensor, then a float32 copy); it now takes its own 3.2 GB,
    drawn in chunks (the same values), and a model larger than the memory available is one
    GraphError naming it."""
    import edgecnn.core.graph as graph_module
    from edgecnn import zoo
    from edgecnn.errors import GraphError

    g = zoo.get("alexnet")
    monkeypatch.setattr(graph_module, "available_memory", lambda: 100_000_000)
    with pytest.raises(GraphError, match=r"model 'alexnet': its weights would take "
                                         r"249,\d{3},\d{3} bytes, more than the 100,000,000"):
        g.init_weights(0)
    monkeypatch.setattr(graph_module, "INIT_CHUNK", 1000)  # chunked draws: the same values
    small = zoo.get("d_I32x32x3CMCMCF10S")
    a = small.init_weights(3).weights
    monkeypatch.setattr(graph_module, "INIT_CHUNK", 1 << 30)
    b = zoo.get("d_I32x32x3CMCMCF10S").init_weights(3).weights
    assert all(np.array_equal(a[k], b[k]) for k in a)
