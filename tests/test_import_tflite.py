"""TFLite importer: the pretrained uint8 MobileNets on the 500 ImageNet samples, against LiteRT.

The accuracy targets are the figures the data README lists for LiteRT on the same images;
edgecnn's numpy reference must be within 1.5 points, and its top-1 must agree with LiteRT's
own predictions on >= 95% of the images. LiteRT outputs a uint8 softmax, so several classes
can tie for its top score (5% of the v1 images): a float graph "agrees" when its top-1 is one
of LiteRT's best-scoring classes; the fake-quantized graph (which rounds the output as LiteRT
does) must pick LiteRT's exact first index.
"""

from __future__ import annotations

import importlib
import re
from functools import cache

import numpy as np
import pytest

from conftest import need, need_module
from edgecnn.core import reference
from edgecnn.errors import ModelFileError
from edgecnn.formats.importers import UnsupportedModelError, import_model
from edgecnn.formats.importers.tflite import Tensor, same_padding

need_module("tflite", "tflite", "needs the tflite package (the tflite extra)")

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


def test_fake_quant_rounds_half_away_from_zero_and_clamps():
    from edgecnn.layers import get_kind

    k = get_kind("fake_quant")
    a = k.normalize_attrs({"scale": 0.5, "zero_point": 3, "qmin": 0, "qmax": 10}, "t")
    x = np.array([-3, -1.25, -0.25, 0, 0.25, 0.74, 0.75, 3.4, 100], np.float32)
    # worked by hand: q = clamp(round(x / 0.5) + 3, 0, 10); y = (q - 3) * 0.5
    want = [-1.5, -1.5, -0.5, 0, 0.5, 0.5, 1.0, 3.5, 3.5]
    np.testing.assert_array_equal(k.forward(a, [x], {}), np.float32(want))


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
    need("data", bool(paths), "no images in imagenet-samples")
    return paths, np.array([index[p.name.split("_")[0]] for p in paths])


@cache
def _pixels(paths: tuple, size: int, fraction: float) -> np.ndarray:
    """uint8 (N, size, size, 3): central crop and bilinear resize (the models' recipe)."""
    from edgecnn.core.graph import Preprocessing
    from edgecnn.core.preprocess import load_image, to_pixels

    p = Preprocessing(resize="center_crop", crop_fraction=fraction)
    return np.stack([to_pixels(load_image(f), p, (size, size)) for f in paths])


def pixels(g, paths) -> np.ndarray:
    h, _, _ = g.input_shape
    assert g.preprocessing.resize == "center_crop"
    return _pixels(tuple(paths), h, g.preprocessing.crop_fraction)


def edgecnn_scores(g, px: np.ndarray) -> np.ndarray:
    from edgecnn.core.preprocess import normalize

    out = [reference.predict(g, normalize(px[i:i + BATCH], g.preprocessing))
           for i in range(0, len(px), BATCH)]
    return np.concatenate(out)


def litert_scores(path, px: np.ndarray) -> np.ndarray:
    litert = need_module("litert", "ai_edge_litert.interpreter",
                         "needs ai-edge-litert to compare with LiteRT")
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
    need("data", False, f"the data README lists no LiteRT figures for {model}")


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
    g = import_model(path, fake_quant=fake_quant, as_float=True)
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
    g = import_model(shared_data / "tflite" / f"{V2}.tflite", as_float=True)
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


# ---- small models written here (flatbuffers), run by LiteRT and by edgecnn --------------------

class TFLiteWriter:
    """Writes a one-subgraph .tflite with the schema's generated builders (the tflite package)."""

    TYPES = {np.float32: 0, np.int32: 2, np.uint8: 3, np.int8: 9}

    def __init__(self):
        self.tensors: list[dict] = []
        self.ops: list[tuple] = []

    def tensor(self, name, shape, dtype=np.float32, data=None, quant=None) -> int:
        """``quant``: (scales, zero points[, quantized dimension]) of an integer tensor."""
        self.tensors.append({"name": name, "shape": list(shape), "dtype": dtype,
                             "data": None if data is None else np.asarray(data, dtype),
                             "quant": quant})
        return len(self.tensors) - 1

    def const(self, name, data, dtype=np.float32, quant=None) -> int:
        data = np.asarray(data, dtype)
        return self.tensor(name, data.shape, dtype, data, quant)

    def op(self, code: str, inputs, outputs, options: str | None = None, **fields):
        self.ops.append((code, list(inputs), list(outputs), options, fields))

    @staticmethod
    def _quantization(b, quant):
        import tflite

        scales, zps, *dim = quant
        scales, zps = np.atleast_1d(scales), np.atleast_1d(zps)
        tflite.QuantizationParametersStartScaleVector(b, len(scales))
        for v in reversed(scales):
            b.PrependFloat32(float(v))
        sv = b.EndVector()
        tflite.QuantizationParametersStartZeroPointVector(b, len(zps))
        for v in reversed(zps):
            b.PrependInt64(int(v))
        zv = b.EndVector()
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, sv)
        tflite.QuantizationParametersAddZeroPoint(b, zv)
        tflite.QuantizationParametersAddQuantizedDimension(b, dim[0] if dim else 0)
        return tflite.QuantizationParametersEnd(b)

    def build(self, inputs, outputs) -> bytes:
        import flatbuffers
        import tflite

        b = flatbuffers.Builder(1024)

        def ivec(start, values):
            start(b, len(values))
            for v in reversed(values):
                b.PrependInt32(v)
            return b.EndVector()

        buffers = [None] + [t["data"] for t in self.tensors if t["data"] is not None]
        buf_offsets = []
        for data in buffers:
            vec = b.CreateByteVector(data.tobytes()) if data is not None else None
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buf_offsets.append(tflite.BufferEnd(b))
        tensor_offsets, next_buf = [], 1
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = ivec(tflite.TensorStartShapeVector, t["shape"])
            q = self._quantization(b, t["quant"]) if t["quant"] is not None else None
            tflite.TensorStart(b)
            if q is not None:
                tflite.TensorAddQuantization(b, q)
            tflite.TensorAddName(b, name)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, self.TYPES[t["dtype"]])
            if t["data"] is not None:
                tflite.TensorAddBuffer(b, next_buf)
                next_buf += 1
            tensor_offsets.append(tflite.TensorEnd(b))
        codes = sorted({c for c, *_ in self.ops})
        op_offsets = []
        for code, ins, outs, options, fields in self.ops:
            opt = None
            if options:
                getattr(tflite, f"{options}Start")(b)
                for k, v in fields.items():
                    getattr(tflite, f"{options}Add{k}")(b, v)
                opt = getattr(tflite, f"{options}End")(b)
            iv = ivec(tflite.OperatorStartInputsVector, ins)
            ov = ivec(tflite.OperatorStartOutputsVector, outs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, codes.index(code))
            tflite.OperatorAddInputs(b, iv)
            tflite.OperatorAddOutputs(b, ov)
            if opt is not None:
                tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, options))
                tflite.OperatorAddBuiltinOptions(b, opt)
            op_offsets.append(tflite.OperatorEnd(b))
        code_offsets = []
        for code in codes:
            n = getattr(tflite.BuiltinOperator, code)
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddBuiltinCode(b, n)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(n, 127))
            tflite.OperatorCodeAddVersion(b, 1)
            code_offsets.append(tflite.OperatorCodeEnd(b))

        def tvec(start, offsets):
            start(b, len(offsets))
            for o in reversed(offsets):
                b.PrependUOffsetTRelative(o)
            return b.EndVector()

        tv = tvec(tflite.SubGraphStartTensorsVector, tensor_offsets)
        ov = tvec(tflite.SubGraphStartOperatorsVector, op_offsets)
        iv = ivec(tflite.SubGraphStartInputsVector, inputs)
        outv = ivec(tflite.SubGraphStartOutputsVector, outputs)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tv)
        tflite.SubGraphAddOperators(b, ov)
        tflite.SubGraphAddInputs(b, iv)
        tflite.SubGraphAddOutputs(b, outv)
        sg = tflite.SubGraphEnd(b)
        sgv = tvec(tflite.ModelStartSubgraphsVector, [sg])
        cv = tvec(tflite.ModelStartOperatorCodesVector, code_offsets)
        bv = tvec(tflite.ModelStartBuffersVector, buf_offsets)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, cv)
        tflite.ModelAddSubgraphs(b, sgv)
        tflite.ModelAddBuffers(b, bv)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def small_float_model(rng) -> bytes:
    """PAD → CONV_2D (VALID, RELU6) → DEPTHWISE x2 (SAME, RELU) → MAX_POOL (SAME) and a 1x1
    CONV_2D branch → CONCATENATION → ADD → MEAN; and RESHAPE → FULLY_CONNECTED → SOFTMAX."""
    w = TFLiteWriter()
    f = rng.normal(0, 0.4, (4, 3, 3, 3))  # (O, kh, kw, I)
    x = w.tensor("x", (1, 10, 9, 3))
    p = w.tensor("padded", (1, 11, 10, 3))
    w.op("PAD", [x, w.const("pads", [[0, 0], [1, 0], [0, 1], [0, 0]], np.int32)], [p])
    c1 = w.tensor("c1", (1, 5, 4, 4))
    w.op("CONV_2D", [p, w.const("f1", f), w.const("b1", rng.normal(0, .5, 4))], [c1],
         "Conv2DOptions", Padding=1, StrideH=2, StrideW=2, FusedActivationFunction=3)
    d1 = w.tensor("d1", (1, 5, 4, 8))
    w.op("DEPTHWISE_CONV_2D", [c1, w.const("dw", rng.normal(0, .4, (1, 3, 3, 8))),
                               w.const("db", rng.normal(0, .5, 8))], [d1],
         "DepthwiseConv2DOptions", Padding=0, StrideH=1, StrideW=1, DepthMultiplier=2,
         FusedActivationFunction=1)
    m1 = w.tensor("m1", (1, 3, 2, 8))
    w.op("MAX_POOL_2D", [d1], [m1], "Pool2DOptions", Padding=0, StrideH=2, StrideW=2,
         FilterHeight=2, FilterWidth=3)
    c2 = w.tensor("c2", (1, 3, 2, 8))
    w.op("CONV_2D", [m1, w.const("f2", rng.normal(0, .4, (8, 1, 1, 8))),
                     w.const("b2", rng.normal(0, .5, 8))], [c2],
         "Conv2DOptions", Padding=1, StrideH=1, StrideW=1)
    cat = w.tensor("cat", (1, 3, 2, 16))
    w.op("CONCATENATION", [m1, c2], [cat], "ConcatenationOptions", Axis=3)
    s = w.tensor("sum", (1, 3, 2, 16))
    w.op("ADD", [cat, cat], [s], "AddOptions", FusedActivationFunction=0)
    flat = w.tensor("flat", (1, 96))
    w.op("RESHAPE", [s, w.const("shape", [1, -1], np.int32)], [flat])
    fc = w.tensor("fc", (1, 5))
    w.op("FULLY_CONNECTED", [flat, w.const("fw", rng.normal(0, .2, (5, 96))),
                             w.const("fb", rng.normal(0, .5, 5))], [fc],
         "FullyConnectedOptions", FusedActivationFunction=0)
    y = w.tensor("y", (1, 5))
    w.op("SOFTMAX", [fc], [y], "SoftmaxOptions", Beta=1.0)
    return w.build([x], [y])


def test_written_model_matches_litert(tmp_path):
    litert = need_module("litert", "ai_edge_litert.interpreter",
                         "needs ai-edge-litert to compare with LiteRT")
    rng = np.random.default_rng(0)
    path = tmp_path / "small.tflite"
    path.write_bytes(small_float_model(rng))
    g = import_model(path)
    assert [l.kind for l in g.layers] == [
        "input", "conv2d", "activation", "conv2d", "activation", "maxpool", "conv2d", "concat",
        "add", "flatten", "dense", "softmax"]
    assert g.layers[1].attrs["padding"] == (1, 0, 0, 1)  # the PAD, folded into the VALID conv
    assert g.layers[3].attrs["padding"] == (1, 1, 1, 1) and g.layers[3].attrs["groups"] == 4
    assert g.layers[5].attrs["padding"] == (0, 0, 1, 1)  # SAME 2x3 / 2 on 5x4: extra after
    x = rng.normal(0, 1, (4, 10, 9, 3)).astype(np.float32)
    it = litert.Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    want = []
    for xi in x:
        it.set_tensor(it.get_input_details()[0]["index"], xi[None])
        it.invoke()
        want.append(it.get_tensor(it.get_output_details()[0]["index"])[0])
    np.testing.assert_allclose(reference.predict(g, x), np.array(want), atol=1e-5, rtol=1e-4)


def test_mean_becomes_global_average(tmp_path):
    w = TFLiteWriter()
    x = w.tensor("x", (1, 4, 6, 3))
    y = w.tensor("y", (1, 3))
    w.op("MEAN", [x, w.const("axes", [1, 2], np.int32)], [y], "ReducerOptions", KeepDims=False)
    path = tmp_path / "mean.tflite"
    path.write_bytes(w.build([x], [y]))
    g = import_model(path)
    assert [l.kind for l in g.layers] == ["input", "global_avgpool"]
    v = np.random.default_rng(1).normal(0, 1, (2, 4, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(reference.predict(g, v), v.mean(axis=(1, 2)), atol=1e-6)
    assert g.labels == ["class_0", "class_1", "class_2"]


def test_every_unsupported_operator_is_listed(tmp_path):
    w = TFLiteWriter()
    x = w.tensor("x", (1, 8, 8, 3))
    a = w.tensor("hs", (1, 8, 8, 3))
    w.op("HARD_SWISH", [x], [a])
    r = w.tensor("up", (1, 16, 16, 3))
    w.op("RESIZE_BILINEAR", [a, w.const("size", [16, 16], np.int32)], [r])
    c = w.tensor("conv_tanh", (1, 16, 16, 2))
    w.op("CONV_2D", [r, w.const("f", np.ones((2, 1, 1, 3))), w.const("b", np.zeros(2))], [c],
         "Conv2DOptions", Padding=1, StrideH=1, StrideW=1, FusedActivationFunction=4)
    y = w.tensor("y", (1, 16, 16, 2))
    w.op("SOFTMAX", [c], [y], "SoftmaxOptions", Beta=1.0)
    path = tmp_path / "bad.tflite"
    path.write_bytes(w.build([x], [y]))
    with pytest.raises(UnsupportedModelError) as e:
        import_model(path)
    msg = str(e.value)
    assert "3 operator(s)" in msg and "bad.tflite" in msg
    assert "#0 HARD_SWISH (output 'hs')" in msg and "#1 RESIZE_BILINEAR (output 'up')" in msg
    assert "#2 CONV_2D (output 'conv_tanh'): fused activation TANH" in msg
    assert "SOFTMAX" not in msg


@pytest.mark.data
@pytest.mark.onnx
def test_imported_mobilenet_through_onnx(shared_data, tmp_path):
    """TFLite → Graph → ONNX (edgecnn.formats.onnx_export) → ONNX Runtime and → Graph again."""
    export = importlib.import_module("edgecnn.formats.onnx_export")
    ort = need_module("onnx", "onnxruntime", "needs onnxruntime")
    g = import_model(shared_data / "tflite" / f"{V1}.tflite", as_float=True)
    path = export.export(g, tmp_path / "v1.onnx")
    x = np.random.default_rng(0).normal(0, 1, (4, *g.input_shape)).astype(np.float32)
    want = reference.predict(g, x)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5)
    back = import_model(path)
    np.testing.assert_allclose(reference.predict(back, x), want, atol=1e-6)
    assert back.labels == g.labels and back.preprocessing == g.preprocessing


@pytest.mark.data
@pytest.mark.cc
@pytest.mark.parametrize("model", ["mobilenet_v1_0.25_128_quant", "mobilenet_v2_1.0_224_quant"])
def test_compiled_mobilenets_score_like_litert(shared_data, samples, model):
    """The imported models compiled to C: top-1/top-5 on all 500 images within 1.5 points of
    LiteRT's published figures, and top-1 equal to the numpy reference's (every 10th image)."""
    import shutil

    need("cc", bool(shutil.which("cc")), "needs a C compiler (apt install gcc)")
    import edgecnn
    from edgecnn.core.preprocess import normalize

    paths, truth = samples
    g = import_model(shared_data / "tflite" / f"{model}.tflite", as_float=True)
    px = pixels(g, paths)
    compiled = edgecnn.compile(g, target="host")
    ours = np.concatenate([compiled.predict(normalize(px[i:i + BATCH], g.preprocessing))
                           for i in range(0, len(px), BATCH)])
    want1, want5 = readme_figures(shared_data, model)
    top1, top5 = accuracy(ours, truth)
    assert abs(top1 - want1) <= 0.015 and abs(top5 - want5) <= 0.015, (top1, top5)
    ref = edgecnn_scores(g, px[::10])
    assert (ours[::10].argmax(1) == ref.argmax(1)).all()
    np.testing.assert_allclose(ours[::10], ref, atol=1e-4)
