"""Integer graphs imported from quantized .tflite files against LiteRT, byte for byte.

LiteRT's reference kernels (OpResolverType.BUILTIN_REF) are the oracle: for the same input
tensor, every operator's output of edgecnn's integer graph must equal LiteRT's exactly. The
small models are written here (tests/int_models.py); the shared MobileNets are uint8.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need_module
from edgecnn.importers import import_model
from edgecnn.importers.tflite import read_model
from int_models import litert_ref, run_integer, run_litert, small_model


def litert():
    return need_module("litert", "ai_edge_litert.interpreter",
                       "needs ai-edge-litert to compare with LiteRT (the test extra)")


def layer_per_op(g, path) -> list[tuple[int, str]]:
    """(tflite tensor index, edgecnn layer name) for each operator's output, in order:
    RESHAPE makes no layer (a flatten at most, which changes no value)."""
    _, ops, _, _ = read_model(str(path))
    layers = [l for l in g.layers[2:] if l.kind not in ("flatten", "dequantize")]
    ops = [op for op in ops if op.type not in ("RESHAPE", "SQUEEZE")]
    assert len(ops) == len(layers), ([o.type for o in ops], [l.kind for l in layers])
    return [(op.outputs[0], l.name) for op, l in zip(ops, layers, strict=True)]


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_small_model_equals_litert_reference(tmp_path, dtype):
    lr = litert()
    need_module("tflite", "tflite")
    path = tmp_path / f"small_{dtype}.tflite"
    path.write_bytes(small_model(dtype))
    g = import_model(path)
    kinds = [l.kind for l in g.layers]
    assert kinds == ["input", "quantize", "qconv2d", "qconv2d", "qconv2d", "qconv2d", "qadd",
                     "qavgpool", "qmaxpool", "qconcat", "flatten", "qdense", "qsoftmax",
                     "dequantize"]
    per_channel = [l.attrs["per_channel"] for l in g.layers if l.kind == "qconv2d"]
    assert per_channel == [dtype == "int8"] * 4
    pairs = layer_per_op(g, path)
    it = litert_ref(path, lr, preserve=True)
    info = it.get_input_details()[0]
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    q = np.random.default_rng(1).integers(lo, hi + 1, (16, *info["shape"][1:])).astype(
        info["dtype"])
    want, tensors = run_litert(it, q, [t for t, _ in pairs])
    ours = run_integer(g, q, [name for _, name in pairs])
    for k, (_, name) in enumerate(pairs):
        got = ours[name]
        ref = np.stack([t[k] for t in tensors]).reshape(got.shape)
        assert got.dtype == ref.dtype, name
        np.testing.assert_array_equal(got, ref, err_msg=f"layer {name}")
    np.testing.assert_array_equal(ours[pairs[-1][1]].reshape(want.shape), want)
    # the clamps and the rescaling were exercised, not skipped by chance
    c1 = ours[pairs[0][1]]
    assert (c1 == g.layers[2].attrs["act_max"]).any() and (c1 == lo).any()
