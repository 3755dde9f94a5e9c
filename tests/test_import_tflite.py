"""TFLite importer: the pretrained uint8 MobileNets on the 500 ImageNet samples, against LiteRT.

The accuracy targets are the figures the data README lists for LiteRT on the same images;
edgecnn's numpy reference must be within 1.5 points, and its top-1 must agree with LiteRT's
own predictions on >= 95% of the images. LiteRT outputs a uint8 softmax, so several classes
can tie for its top score (5% of the v1 images): a float graph "agrees" when its top-1 is one
of LiteRT's best-scoring classes; the fake-quantized graph (which rounds the output as LiteRT
does) must pick LiteRT's exact first index.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pytest

from edgecnn import reference
from edgecnn.errors import ModelFileError
from edgecnn.importers import import_model
from edgecnn.importers.tflite import Tensor, same_padding

pytest.importorskip("tflite", reason="needs the tflite package (the tflite extra)")

V1 = "mobilenet_v1_0.25_128_quant"
V2 = "mobilenet_v2_1.0_224_quant"
BATCH = 50


# ---- without data ----------------------------------------------------------------------------

@pytest.mark.parametrize("size,k,s,want", [(224, 3, 2, (0, 1)), (225, 3, 2, (1, 1)),
                                           (7, 1, 1, (0, 0)), (112, 3, 1, (1, 1)),
                                           (10, 4, 3, (1, 2))])
def test_same_padding_puts_the_extra_after(size, k, s, want):
    assert same_padding(size, k, s) == want
    before, after = want  # and the output is ceil(size / s), as TF defines SAME
    assert (size + before + after - k) // s + 1 == -(-size // s)


def test_per_channel_dequantization():
    q = np.array([[[[10, 200]]], [[[0, 255]]]], np.uint8)  # (O=2, 1, 1, 2), per output channel
    t = Tensor("w", q.shape, np.uint8, np.array([0.5, 0.25]), np.array([10.0, 128.0]), 0, q)
    np.testing.assert_allclose(t.dequantized().ravel(), [0, 95, -32, 31.75])
    t = Tensor("w", (1, 2), np.int8, np.array([0.1]), np.array([0.0]), 0,
               np.array([[-128, 127]], np.int8))
    np.testing.assert_allclose(t.dequantized(), [[-12.8, 12.7]], rtol=1e-6)


def test_not_a_tflite_file(tmp_path):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"\0" * 64)
    with pytest.raises(ModelFileError, match="x.tflite: not a TensorFlow Lite model"):
        import_model(p)


# ---- the pretrained models --------------------------------------------------------------------

@pytest.fixture(scope="module")
def samples(shared_data):
    """(paths, ILSVRC2012 class indices) of imagenet-samples, sorted by file name."""
    wnids = (shared_data / "ilsvrc2012_wnids.txt").read_text().split()
    index = {w: i for i, w in enumerate(wnids)}
    paths = sorted((shared_data / "imagenet-samples").glob("*.JPEG"))
    if not paths:
        pytest.skip("no images in imagenet-samples")
    return paths, np.array([index[p.name.split("_")[0]] for p in paths])


@cache
def _pixels(paths: tuple, size: int, fraction: float) -> np.ndarray:
    """uint8 (N, size, size, 3): central crop and bilinear resize (the models' recipe)."""
    from edgecnn.graph import Preprocessing
    from edgecnn.preprocess import load_image, to_pixels

    p = Preprocessing(resize="center_crop", crop_fraction=fraction)
    return np.stack([to_pixels(load_image(f), p, (size, size)) for f in paths])


def pixels(g, paths) -> np.ndarray:
    h, _, _ = g.input_shape
    assert g.preprocessing.resize == "center_crop"
    return _pixels(tuple(paths), h, g.preprocessing.crop_fraction)


def edgecnn_scores(g, px: np.ndarray) -> np.ndarray:
    from edgecnn.preprocess import normalize

    out = [reference.predict(g, normalize(px[i:i + BATCH], g.preprocessing))
           for i in range(0, len(px), BATCH)]
    return np.concatenate(out)


def litert_scores(path, px: np.ndarray) -> np.ndarray:
    litert = pytest.importorskip("ai_edge_litert.interpreter",
                                 reason="needs ai-edge-litert to compare with LiteRT")
    it = litert.Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for x in px:
        it.set_tensor(i, x[None])
        it.invoke()
        out.append(it.get_tensor(o)[0].astype(np.float32))
    return np.array(out)


def accuracy(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """top-1, top-5 of 1001-way scores (output i >= 1 is ILSVRC2012 class i - 1)."""
    best = np.argsort(-scores[:, 1:], axis=1, kind="stable")[:, :5]
    return float((best[:, 0] == truth).mean()), float((best == truth[:, None]).any(1).mean())


def readme_figures(shared_data, model: str) -> tuple[float, float]:
    """LiteRT's top-1 / top-5 on imagenet-samples, from the data README's table."""
    for line in (shared_data / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == model and re.fullmatch(r"0\.\d+", cells[1]):
            return float(cells[1]), float(cells[2])
    pytest.skip(f"the data README lists no LiteRT figures for {model}")


def agreement(ours: np.ndarray, litert: np.ndarray, exact: bool) -> float:
    top = ours.argmax(1)
    if exact:
        return float((top == litert.argmax(1)).mean())
    rows = np.arange(len(top))
    return float((litert[rows, top] == litert.max(1)).mean())


def check_model(shared_data, samples, model: str, fake_quant: bool, subset: int = 1):
    paths, truth = samples
    paths, truth = paths[::subset], truth[::subset]
    path = shared_data / "tflite" / f"{model}.tflite"
    g = import_model(path, fake_quant=fake_quant)
    assert g.labels[0] == "background" and g.labels[1] == "n01440764" and len(g.labels) == 1001
    assert g.num_classes == 1001
    px = pixels(g, paths)
    ours = edgecnn_scores(g, px)
    if subset == 1:
        want1, want5 = readme_figures(shared_data, model)
        top1, top5 = accuracy(ours, truth)
        assert abs(top1 - want1) <= 0.015 and abs(top5 - want5) <= 0.015, (top1, top5)
    rate = agreement(ours, litert_scores(path, px), exact=fake_quant)
    assert rate >= 0.95, rate


@pytest.mark.data
@pytest.mark.parametrize("fake_quant", [False, True], ids=["float", "fake_quant"])
def test_mobilenet_v1(shared_data, samples, fake_quant):
    check_model(shared_data, samples, V1, fake_quant)


@pytest.mark.data
@pytest.mark.slow
def test_mobilenet_v2(shared_data, samples):  # about a minute: 500 x 300 M MACs in numpy
    check_model(shared_data, samples, V2, fake_quant=False)


@pytest.mark.data
@pytest.mark.slow
def test_mobilenet_v2_fake_quant_subset(shared_data, samples):  # every fifth image
    check_model(shared_data, samples, V2, fake_quant=True, subset=5)


@pytest.mark.data
def test_imported_structure(shared_data):
    g = import_model(shared_data / "tflite" / f"{V2}.tflite")
    kinds = [l.kind for l in g.layers]
    assert kinds.count("add") == 10 and kinds.count("conv2d") == 53  # 36 conv + 17 depthwise
    first = g.layers[1]
    assert first.attrs["stride"] == (2, 2) and first.attrs["padding"] == (0, 0, 1, 1)  # SAME
    assert g.preprocessing.mean == (128.0,) * 3 and g.preprocessing.std == (128.0,) * 3
    assert g.preprocessing.pixel_range == (0.0, 255.0)  # uint8 p → (p - 128) / 128
    dw = next(l for l in g.layers if l.kind == "conv2d" and l.attrs["groups"] > 1)
    assert dw.attrs["groups"] == g.shapes[dw.inputs[0]][2] == dw.attrs["filters"]


@pytest.mark.data
def test_truncated_tflite(shared_data, tmp_path):
    data = (shared_data / "tflite" / f"{V1}.tflite").read_bytes()
    for n in (len(data) // 2, 4096):
        cut = tmp_path / "cut.tflite"
        cut.write_bytes(data[:n])
        with pytest.raises(ModelFileError, match="cut.tflite: the TensorFlow Lite file is "
                                                 "truncated or corrupt"):
            import_model(cut)
