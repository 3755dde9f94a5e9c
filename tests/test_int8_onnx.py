"""Integer graphs exported to ONNX as QDQ (DequantizeLinear → operator → QuantizeLinear) run in
ONNX Runtime.

ONNX Runtime is an independent integer engine here: it fuses the QDQ patterns into its own
kernels, requantizes in float and rounds half to even, where edgecnn (and LiteRT's reference
kernels) use TFLite's fixed-point multipliers and round half away from zero. So its outputs are
compared with tolerances, measured and stated: on real photos, the shared uint8 MobileNet v1
0.25/128 agrees on the top class for >= 95% of the photos and on >= 98% of all output values
exactly (measured: 98% and 99.1% on 50 photos); on the small test-written models (ending in a
softmax, which amplifies a step) and the quantizer's graphs (logits), the outputs are within a
few output steps on random inputs, most of them exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need_module
from edgecnn.core import reference
from edgecnn.core.graph import GraphBuilder


def _session(g):
    ort = need_module("onnx", "onnxruntime")
    need_module("onnx", "onnx")
    from edgecnn.formats.onnx_export import to_onnx

    model = to_onnx(g)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return model, sess


def _run(sess, g, x):
    out = sess.run(None, {"input": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]
    return out.reshape(len(x), -1)


def _steps(g, got, want):
    return np.abs(got - want) / g.layers[-1].attrs["scale"]


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_small_tflite_models_as_qdq(tmp_path, dtype):
    from test_int8_compile import _tflite_graph

    g = _tflite_graph(tmp_path, dtype)
    model, sess = _session(g)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm", "Add", "Concat"} <= ops, ops
    inits = {i.name: i for i in model.graph.initializer}
    conv = next(l for l in g.layers if l.kind == "qconv2d")
    w = inits[f"{conv.name}.weight"]
    assert w.data_type == {"uint8": 2, "int8": 3}[dtype]  # TensorProto UINT8 / INT8
    assert inits[f"{conv.name}.bias"].data_type == 6  # INT32
    x = np.random.default_rng(1).normal(0, 1, (16, *g.input_shape)).astype(np.float32)
    want = reference.predict(g, x)
    got = _run(sess, g, x)
    steps = _steps(g, got, want)
    print(f"{dtype}: max {steps.max():.0f} steps, exact {np.mean(steps < 0.5):.3f}")
    # measured: uint8 7 steps / 91.9% exact, int8 12 steps / 96.3% (a softmax amplifies)
    assert steps.max() <= 16 and np.mean(steps < 0.5) >= 0.9


def test_quantizer_graph_as_qdq():
    """Leaky relu as an integer layer, ceil-mode max pools, global pool, dense: the logits."""
    from edgecnn import zoo
    from test_int8_compile import _join_model, _quantized

    for i, g in enumerate([zoo.get("dr_I32x32x3CMCMC1AS"), _join_model()]):
        gi, x = _quantized(g, 20 + i)
        _, sess = _session(gi)
        x = np.asarray(x, np.float32)
        want = reference.predict(gi, x)
        steps = _steps(gi, _run(sess, gi, x), want)
        assert steps.max() <= 4, (g.name, steps.max())


def test_mobilenet_v1_agrees_with_onnx_runtime(shared_data):
    need_module("tflite", "tflite")
    from edgecnn.core.preprocess import load_image, normalize, to_pixels
    from edgecnn.formats.importers import import_model

    g = import_model(shared_data / "tflite" / "mobilenet_v1_0.25_128_quant.tflite")
    photos = sorted((shared_data / "imagenet-samples").glob("*.JPEG"))[:50]
    h, w, _ = g.input_shape
    x = normalize(np.stack([to_pixels(load_image(p), g.preprocessing, (h, w)) for p in photos]),
                  g.preprocessing)
    _, sess = _session(g)
    want = reference.predict(g, x)
    got = _run(sess, g, x)
    steps = _steps(g, got, want)
    top1 = np.mean(got.argmax(1) == want.argmax(1))
    print(f"MobileNet v1 vs ONNX Runtime (QDQ): top-1 {top1:.2%}, exact {np.mean(steps < 0.5):.2%}"
          f", max {steps.max():.0f} steps")
    assert top1 >= 0.95 and np.mean(steps < 0.5) >= 0.98


def test_quantize_dequantize_edges_round_as_onnx_defines():
    """QuantizeLinear rounds half to even (ONNX), edgecnn half away from zero (TFLite): they
    differ exactly on the ties, which this input is full of, and nowhere else."""
    b = GraphBuilder("edges", (1, 1, 64))
    b.add("quantize", "q", dtype="int8", scale=0.5, zero_point=3)
    b.add("dequantize", "dq", scale=0.5, zero_point=3)
    g = b.build().init_weights(0)
    _, sess = _session(g)
    x = (np.arange(64, dtype=np.float32) * 0.25 - 8).reshape(1, 1, 1, 64)  # ties at odd quarters
    want = reference.predict(g, x).ravel()
    got = _run(sess, g, x).ravel()
    q = x.ravel() / 0.5
    tie = (q - np.floor(q)) == 0.5
    assert np.array_equal(got[~tie], want[~tie])
    assert np.array_equal(got[tie], (np.round(q[tie]) + 3 - 3) * 0.5)  # numpy rounds half even
    assert not np.array_equal(got[tie], want[tie])
