"""Small uint8 and int8 .tflite models written with the flatbuffer builders (no TensorFlow),
and helpers to run them through LiteRT's reference kernels beside edgecnn's integer graph."""

from __future__ import annotations

import numpy as np

from edgecnn import quant
from edgecnn.core import reference
from test_import_tflite import TFLiteWriter

TYPES = {"uint8": np.uint8, "int8": np.int8}


class QModel:
    """Adds quantized operators to a TFLiteWriter, drawing weights from ``rng``."""

    def __init__(self, dtype: str, rng: np.random.Generator):
        self.w = TFLiteWriter()
        self.dtype, self.np = dtype, TYPES[dtype]
        self.lo, self.hi = quant.qrange(dtype)
        self.rng = rng
        self.q: dict[int, tuple[float, int]] = {}

    def act(self, name, shape, scale, zp) -> int:
        i = self.w.tensor(name, shape, self.np, quant=([scale], [zp]))
        self.q[i] = (scale, zp)
        return i

    def weights(self, name, shape, per_channel_axis: int | None):
        """int8 symmetric per channel, or uint8 per tensor with a zero point."""
        if self.dtype == "int8":
            n = shape[per_channel_axis]
            scales = self.rng.uniform(0.004, 0.02, n).astype(np.float32)
            q = self.rng.integers(-127, 128, shape)
            return self.w.const(name, q, np.int8, quant=(scales, [0] * n, per_channel_axis)), \
                scales
        scale = np.float32(self.rng.uniform(0.004, 0.02))
        zp = int(self.rng.integers(100, 156))
        q = self.rng.integers(0, 256, shape)
        return self.w.const(name, q, np.uint8, quant=([scale], [zp])), np.array([scale])

    def dense_weights(self, name, shape):
        """Per-tensor weights (TFLite's FULLY_CONNECTED): int8 symmetric or uint8."""
        if self.dtype == "uint8":
            return self.weights(name, shape, None)
        scale = np.float32(self.rng.uniform(0.004, 0.02))
        q = self.rng.integers(-127, 128, shape)
        return self.w.const(name, q, np.int8, quant=([scale], [0])), np.array([scale])

    def bias(self, name, x: int, scales, n: int) -> int:
        """n int32 biases, scale = input scale x weight scale(s)."""
        s = self.q[x][0] * scales.astype(np.float64)
        return self.w.const(name, self.rng.integers(-3000, 3000, n), np.int32,
                            quant=(s, [0] * len(s)))

    def conv(self, x, cout, k, stride, padding, act, out_q, depthwise=False, name="conv"):
        _, h, wd, cin = self.w.tensors[x]["shape"]
        if depthwise:
            wt, sc = self.weights(f"{name}_w", (1, k, k, cout), 3)
        else:
            wt, sc = self.weights(f"{name}_w", (cout, k, k, cin), 0)
        oh, ow = ((h - k) // stride + 1, (wd - k) // stride + 1) if padding == 1 else \
            (-(-h // stride), -(-wd // stride))
        y = self.act(name, (1, oh, ow, cout), *out_q)
        opts = dict(Padding=padding, StrideH=stride, StrideW=stride, FusedActivationFunction=act)
        if depthwise:
            self.w.op("DEPTHWISE_CONV_2D", [x, wt, self.bias(f"{name}_b", x, sc, cout)], [y],
                      "DepthwiseConv2DOptions", DepthMultiplier=cout // cin, **opts)
        else:
            self.w.op("CONV_2D", [x, wt, self.bias(f"{name}_b", x, sc, cout)], [y], "Conv2DOptions",
                      **opts)
        return y


def small_model(dtype: str, seed: int = 0) -> bytes:
    """input 12x12x3 → conv 3x3/2 SAME relu6 → depthwise 3x3 x2 SAME relu → two 1x1 convs →
    ADD → average pool 3x3/2 SAME and max pool 2x2/2 → CONCATENATION (rescaling, uint8) →
    RESHAPE → FULLY_CONNECTED → SOFTMAX. int8: per-channel weights; uint8: per-tensor."""
    m = QModel(dtype, np.random.default_rng(seed))
    z = 0 if dtype == "int8" else 128
    x = m.act("x", (1, 12, 12, 3), 0.05, z - 3)
    c1 = m.conv(x, 8, 3, 2, 0, 3, (0.03, m.lo), name="c1")  # relu6: clamp at q(6) < max
    d1 = m.conv(c1, 16, 3, 1, 0, 1, (0.04, m.lo + 5), depthwise=True, name="d1")  # relu
    a = m.conv(d1, 8, 1, 1, 1, 0, (0.05, z + 2), name="pa")
    b = m.conv(d1, 8, 1, 1, 1, 0, (0.08, z - 7), name="pb")
    s = m.act("sum", (1, 6, 6, 8), 0.07, z - 5)
    m.w.op("ADD", [a, b], [s], "AddOptions", FusedActivationFunction=0)
    ap = m.act("avg", (1, 3, 3, 8), 0.07, z - 5)
    m.w.op("AVERAGE_POOL_2D", [s], [ap], "Pool2DOptions", Padding=0, StrideH=2, StrideW=2,
           FilterHeight=3, FilterWidth=3, FusedActivationFunction=0)
    mp = m.act("max", (1, 3, 3, 8), 0.07, z - 5)
    m.w.op("MAX_POOL_2D", [s], [mp], "Pool2DOptions", Padding=1, StrideH=2, StrideW=2,
           FilterHeight=2, FilterWidth=2, FusedActivationFunction=0)
    cat_q = (0.07, z - 5) if dtype == "int8" else (0.09, z + 10)  # int8 concat cannot rescale
    cat = m.act("cat", (1, 3, 3, 16), *cat_q)
    m.w.op("CONCATENATION", [ap, mp], [cat], "ConcatenationOptions", Axis=3)
    flat = m.act("flat", (1, 144), *cat_q)
    m.w.op("RESHAPE", [cat, m.w.const("shape", [1, -1], np.int32)], [flat])
    fw, fs = m.dense_weights("fc_w", (10, 144))
    logits = m.act("logits", (1, 10), 0.1, z + 1)
    m.w.op("FULLY_CONNECTED", [flat, fw, m.bias("fc_b", flat, fs, 10)], [logits],
           "FullyConnectedOptions", FusedActivationFunction=0)
    y = m.act("probs", (1, 10), 1 / 256, m.lo)
    m.w.op("SOFTMAX", [logits], [y], "SoftmaxOptions", Beta=1.0)
    return m.w.build([x], [y])


def ragged_model(dtype: str, seed: int = 0) -> bytes:
    """For the fast integer kernels: channel counts that are no multiple of a vector width,
    stride-2 depthwise, padded edges. input 19x17x3 → conv 3x3/2 SAME relu6 (20) → depthwise
    3x3/2 SAME relu → 1x1 conv (37) → depthwise 3x3/1 SAME → conv 3x3/1 SAME relu (19) →
    RESHAPE → FULLY_CONNECTED (10)."""
    m = QModel(dtype, np.random.default_rng(seed))
    z = 0 if dtype == "int8" else 128
    x = m.act("x", (1, 19, 17, 3), 0.05, z - 3)
    c1 = m.conv(x, 20, 3, 2, 0, 3, (0.03, m.lo), name="c1")
    d1 = m.conv(c1, 20, 3, 2, 0, 1, (0.02, m.lo + 5), depthwise=True, name="d1")
    p1 = m.conv(d1, 37, 1, 1, 1, 0, (0.03, z + 2), name="p1")
    d2 = m.conv(p1, 37, 3, 1, 0, 0, (0.03, z - 4), depthwise=True, name="d2")
    c2 = m.conv(d2, 19, 3, 1, 0, 1, (0.1, m.lo + 2), name="c2")
    flat = m.act("flat", (1, 5 * 5 * 19), *m.q[c2])
    m.w.op("RESHAPE", [c2, m.w.const("shape", [1, -1], np.int32)], [flat])
    fw, fs = m.dense_weights("fc_w", (10, 5 * 5 * 19))
    # uint8 weights (zero point 100..155) sum far from 0: a coarser grid keeps it unclamped
    logits = m.act("logits", (1, 10), 20.0 if dtype == "uint8" else 2.0, z + 1)
    m.w.op("FULLY_CONNECTED", [flat, fw, m.bias("fc_b", flat, fs, 10)], [logits],
           "FullyConnectedOptions", FusedActivationFunction=0)
    return m.w.build([x], [logits])


def litert_ref(path, litert, preserve: bool = False):
    """A LiteRT interpreter with the reference (BUILTIN_REF) kernels, or the default (XNNPACK)."""
    kw = {"experimental_preserve_all_tensors": True} if preserve else {}
    if preserve is not None:
        kw["experimental_op_resolver_type"] = litert.OpResolverType.BUILTIN_REF
    it = litert.Interpreter(model_path=str(path), num_threads=1, **kw)
    it.allocate_tensors()
    return it


def run_litert(it, q: np.ndarray, tensors: list[int] | None = None):
    """Outputs (and, given their indices, other tensors) for each image of the batch ``q``."""
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    outs, extra = [], []
    for x in q:
        it.set_tensor(i, x[None])
        it.invoke()
        outs.append(it.get_tensor(o)[0].copy())
        extra.append([it.get_tensor(t).copy() for t in tensors or ()])
    return np.array(outs), extra


def run_integer(g, q: np.ndarray, outputs: list[str]) -> dict:
    """Run edgecnn's integer graph on the integer input tensor ``q`` (N, H, W, C): it is fed
    as its real value, which the graph's first ``quantize`` layer must turn back into ``q``."""
    first = g.layers[1]
    assert first.kind == "quantize"
    x = quant.dequantize(q, first.attrs["scale"], first.attrs["zero_point"])
    out = reference.run(g, x, outputs=[first.name, *outputs])
    np.testing.assert_array_equal(out[first.name], q)
    return out
