"""Export a Graph to an ONNX model that ONNX Runtime (or any ONNX consumer) runs.

The exported model
- takes one input named ``"input"``: float32 ``(N, C, H, W)`` (NCHW, the ONNX convention), the
  *preprocessed* image (the graph's ``preprocessing`` is not part of the ONNX graph; it travels in
  the metadata), N symbolic;
- returns one output named ``"output"``: float32 ``(N, C, H, W)`` of the graph's last layer (a
  classifier's is ``(N, classes, 1, 1)``);
- carries the graph's name, preprocessing (JSON) and labels (``"ilsvrc2012"`` or a JSON list) in
  ``metadata_props`` under ``edgecnn.*`` keys, and the tensors under their graph keys
  (``"<layer>.<tensor>"``).

Layout choices. Inside, every value is NCHW. A ``dense`` layer flattens its input in H, W, C order
while ONNX's Flatten on NCHW flattens in C, H, W order; rather than transposing the activations at
run time (NCHW → NHWC before every Flatten), the export permutes the dense weight's columns once
into C, H, W order. The result is the standard ``Flatten → Gemm`` classifier head that ONNX
Runtime and ONNX importers expect, with no run-time cost, and the permutation is exact (a
reordering, no arithmetic). A ``flatten`` layer read only by dense layers is a plain Reshape and
its readers permute their columns the same way; a ``flatten`` that anything else reads (or that
is the output) is exported as ``Transpose(NHWC) → Reshape`` so its values are exactly the graph's.

``binary_conv2d`` follows layers/binary_conv2d.py: the input is binarized with
``Where(Greater(x, 0), ...)``, the weights are binarized at export (stored as int8 ±1), the sums
are exact integers (``ConvInteger``, whose padding contributes 0 as the reference's does), then
``Cast`` and ``Mul`` by the per-filter scale (see :func:`_binary_conv2d` for why not a float Conv).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..core.fileio import write_bytes_atomic
from ..core.graph import Graph, Layer
from ..errors import EdgecnnError, require
from ..layers.base import Shape

INPUT_NAME = "input"
OUTPUT_NAME = "output"
MIN_OPSET = 13  # Softmax over one axis, Clip with min/max inputs
DEFAULT_OPSET = 17


def export(graph: Graph, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``graph`` as an ONNX file (atomically: temp file, then rename); return the path."""
    data = to_onnx(graph, opset).SerializeToString()
    try:
        return write_bytes_atomic(path, data)
    except OSError as e:
        raise EdgecnnError(f"{path}: cannot write the ONNX file ({e.strerror or e})") from None


def to_onnx(graph: Graph, opset: int = DEFAULT_OPSET):
    """The ONNX ModelProto of ``graph``, checked by ``onnx.checker`` (with shape inference)."""
    onnx = require("onnx", "onnx")
    max_opset = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= max_opset:
        raise EdgecnnError(f"ONNX export: opset {opset} is not supported; use {MIN_OPSET} to "
                           f"{max_opset} (default {DEFAULT_OPSET})")
    graph.check_weights(f"model {graph.name!r}")
    b = _Builder(graph)
    for i, l in enumerate(graph.layers[1:], start=1):
        out = OUTPUT_NAME if i == len(graph.layers) - 1 else b.fresh(l.name)
        emit = _EMITTERS.get(l.kind)
        if emit is None:
            raise EdgecnnError(f"ONNX export: layer {l.name!r} of kind {l.kind!r} is not "
                               "supported by the exporter")
        value = emit(b, l, [b.values[s] for s in l.inputs], out)
        if value != out and out == OUTPUT_NAME:  # an alias (dropout) as the last layer
            b.node("Identity", [value], [out], l.name)
            value = out
        b.values[l.name] = value
    if len(graph.layers) == 1:  # only an input layer: the output is the input
        b.node("Identity", [INPUT_NAME], [OUTPUT_NAME], graph.input.name)
    model = _model(onnx, graph, b, opset)
    try:  # only an exporter bug fails the checker
        onnx.checker.check_model(model, full_check=b.exact_shapes)
    except (onnx.checker.ValidationError,
            onnx.shape_inference.InferenceError) as e:  # pragma: no cover
        raise EdgecnnError(f"ONNX export of {graph.name!r} failed the ONNX checker: {e}") from None
    return model


def metadata(graph: Graph) -> dict[str, str]:
    """The ``metadata_props`` of the exported model."""
    from .._version import __version__

    labels = graph.labels if isinstance(graph.labels, str) else json.dumps(graph.labels)
    return {"edgecnn.version": __version__, "edgecnn.name": graph.name,
            "edgecnn.preprocessing": json.dumps(graph.preprocessing.to_json()),
            "edgecnn.labels": labels, "edgecnn.input_layout": "NCHW",
            "edgecnn.output_layout": "NCHW"}


# ---- building the ONNX graph ---------------------------------------------------------------

class _Builder:
    """Collects nodes and initializers; hands out unique value names."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.used: set[str] = {INPUT_NAME, OUTPUT_NAME, *graph.weights}
        self.values: dict[str, str] = {graph.input.name: INPUT_NAME}  # layer → its value name
        self.exact_shapes = True  # onnx's shape inference agrees with ours (see _ceil_mode)
        self.chw_flat: dict[str, Shape] = {}  # (N, C*H*W) values from _flatten: their H, W, C

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, name: str, array) -> str:
        """An initializer; ``name`` is a graph tensor key or a helper's name (made unique)."""
        if name not in self.graph.weights:
            name = self.fresh(name)
        self.inits[name] = np.asarray(array)
        return name

    def weight(self, l: Layer, tensor: str, shape: tuple[int, ...] | None = None) -> str:
        """The graph tensor ``<layer>.<tensor>`` as a float32 initializer (optionally reshaped)."""
        w = np.asarray(self.graph.weights[f"{l.name}.{tensor}"], dtype=np.float32)
        return self.const(f"{l.name}.{tensor}", w if shape is None else w.reshape(shape))

    def node(self, op: str, ins: list[str], outs: list[str], layer: str, **attrs) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, ins, outs, name=self.fresh(f"{layer}/{op}"),
                                           **attrs))

    def tmp(self, l: Layer, what: str) -> str:
        return self.fresh(f"{l.name}/{what}")


def _model(onnx, graph: Graph, b: _Builder, opset: int):
    from onnx import TensorProto, helper, numpy_helper

    h, w, c = graph.input_shape
    oh, ow, oc = graph.output_shape
    inp = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", c, h, w])
    out = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", oc, oh, ow])
    inits = [numpy_helper.from_array(v, k) for k, v in b.inits.items()]
    g = helper.make_graph(b.nodes, _safe_name(graph.name), [inp], [out], inits,
                          doc_string="input: preprocessed image, float32 NCHW; "
                                     "output: the last layer's output, float32 NCHW")
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="edgecnn", producer_version=metadata(graph)[
                                  "edgecnn.version"])
    # the oldest IR version that carries this opset: runtimes accept a range of IR versions
    model.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    helper.set_model_props(model, metadata(graph))
    return model


def _safe_name(name: str) -> str:
    return name or "model"


# ---- one emitter per layer kind: (builder, layer, input values, output name) → output value ---

def _conv_attrs(a: dict, dilation=(1, 1), groups: int = 1) -> dict:
    return {"kernel_shape": list(a["kernel"]), "strides": list(a["stride"]),
            "pads": list(a["padding"]),  # ONNX: (top, left, bottom, right), ours exactly
            "dilations": list(dilation), "group": groups}


def _conv2d(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    a = l.attrs
    args = [ins[0], b.weight(l, "weight")]  # (C_out, C_in/groups, kh, kw): ONNX's layout
    if a["bias"]:
        args.append(b.weight(l, "bias"))
    b.node("Conv", args, [out], l.name, **_conv_attrs(a, a["dilation"], a["groups"]))
    return out


def _binary_conv2d(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    """sign(x) as uint8 {0, 2} with zero point 1, ConvInteger with int8 ±1 weights, Cast, Mul.

    The sums are exact int32, as a popcount kernel's; padded cells hold the zero point and so
    contribute 0, as in the reference. A float Conv with ±1 weights would let ONNX Runtime fold
    the scale and a following batch norm into the weights: the sums (0 for about 3% of the
    outputs of a 3x3x64 layer) would then round to tiny non-zero values and flip the next
    binary layer's sign(0) = -1.
    """
    a = l.attrs
    w = np.asarray(b.graph.weights[f"{l.name}.weight"])
    wb = b.const(f"{l.name}.weight", np.where(w > 0, 1, -1).astype(np.int8))
    zero = b.const(f"{l.name}/zero", np.float32(0.0))
    two, low = b.const(f"{l.name}/plus", np.uint8(2)), b.const(f"{l.name}/minus", np.uint8(0))
    zp = b.const(f"{l.name}/zero_point", np.uint8(1))
    gt, xq, yi, y = b.tmp(l, "positive"), b.tmp(l, "sign"), b.tmp(l, "sums"), b.tmp(l, "float")
    b.node("Greater", [ins[0], zero], [gt], l.name)
    b.node("Where", [gt, two, low], [xq], l.name)  # sign(x) + 1: +1 -> 2, -1 -> 0
    b.node("ConvInteger", [xq, wb, zp], [yi], l.name, **_conv_attrs(a))  # int32 sums
    b.node("Cast", [yi], [y], l.name, to=1)  # 1 = TensorProto.FLOAT
    c = a["filters"]
    b.node("Mul", [y, b.weight(l, "scale", (c, 1, 1))], [out], l.name)
    return out


def _batchnorm(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    args = [ins[0]] + [b.weight(l, t) for t in ("scale", "shift", "mean", "var")]
    b.node("BatchNormalization", args, [out], l.name, epsilon=l.attrs["eps"])
    return out


def _scale_bias(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    c = b.graph.shapes[l.name][2]
    x = ins[0]
    if l.attrs["scale"]:
        y = out if not l.attrs["bias"] else b.tmp(l, "scaled")
        b.node("Mul", [x, b.weight(l, "scale", (c, 1, 1))], [y], l.name)
        x = y
    if l.attrs["bias"]:
        b.node("Add", [x, b.weight(l, "bias", (c, 1, 1))], [out], l.name)
    return out


def _activation(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    f = l.attrs["function"]
    if f == "relu":
        b.node("Relu", ins, [out], l.name)
    elif f == "leaky_relu":
        b.node("LeakyRelu", ins, [out], l.name, alpha=l.attrs["slope"])
    elif f == "relu6":
        lo, hi = b.const(f"{l.name}/min", np.float32(0.0)), b.const(f"{l.name}/max",
                                                                    np.float32(6.0))
        b.node("Clip", [ins[0], lo, hi], [out], l.name)
    elif f == "sigmoid":
        b.node("Sigmoid", ins, [out], l.name)
    elif f == "tanh":
        b.node("Tanh", ins, [out], l.name)
    elif f == "prelu":
        c = b.graph.shapes[l.name][2]
        b.node("PRelu", [ins[0], b.weight(l, "slope", (c, 1, 1))], [out], l.name)
    else:  # pragma: no cover - a new activation the exporter does not know yet
        raise EdgecnnError(f"ONNX export: layer {l.name!r}: activation {f!r} is not supported")
    return out


def _pool_attrs(b: _Builder, l: Layer) -> dict:
    return {"kernel_shape": list(l.attrs["kernel"]), "strides": list(l.attrs["stride"]),
            "pads": list(l.attrs["padding"]), "ceil_mode": _ceil_mode(b, l)}


def _ceil_mode(b: _Builder, l: Layer) -> int:
    """ONNX's ceil_mode for a pool, 1 only where flooring would give a different size.

    Our sizes follow the PyTorch rule (a last window starting in the bottom/right padding is
    dropped). ONNX Runtime applies that rule too, but onnx's shape inference does not; when the
    rule drops a window, flooring gives the same size and the same windows, so ceil_mode=0 is
    exact and every ONNX tool agrees on the shapes. A pool that needs ceil in one dimension and
    the rule in the other keeps ceil_mode=1 and turns off the checker's shape inference.
    """
    a = l.attrs
    if not a["ceil_mode"]:
        return 0
    (h, w, _), (oh, ow, _) = b.graph.input_shapes(l)[0], b.graph.shapes[l.name]
    t, le, bo, r = a["padding"]
    (kh, kw), (sh, sw) = a["kernel"], a["stride"]
    floor_h, floor_w = (h + t + bo - kh) // sh + 1, (w + le + r - kw) // sw + 1
    if (floor_h, floor_w) == (oh, ow):
        return 0
    naive_h, naive_w = -(-(h + t + bo - kh) // sh) + 1, -(-(w + le + r - kw) // sw) + 1
    if (naive_h, naive_w) != (oh, ow):
        b.exact_shapes = False
    return 1


def _maxpool(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    b.node("MaxPool", ins, [out], l.name, **_pool_attrs(b, l))
    return out


def _avgpool(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    b.node("AveragePool", ins, [out], l.name, **_pool_attrs(b, l),
           count_include_pad=int(l.attrs["count_include_pad"]))
    return out


def _global_avgpool(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    b.node("GlobalAveragePool", ins, [out], l.name)
    return out


def _lrn(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    a = l.attrs
    if a["size"] % 2 == 1:  # ONNX LRN: the same window, alpha divided by size, as ours
        b.node("LRN", ins, [out], l.name, size=a["size"], alpha=a["alpha"], beta=a["beta"],
               bias=a["k"])
        return out
    # ONNX Runtime's LRN takes odd sizes only: sum the squares over the window with a 1x1 Conv
    # whose (C, C, 1, 1) weight is the 0/1 band matrix of the window (floor((size-1)/2) before c,
    # size // 2 after), then x / (k + alpha / size * sum) ** beta.
    c = b.graph.shapes[l.name][2]
    before, after = (a["size"] - 1) // 2, a["size"] // 2
    i = np.arange(c)
    band = ((i[None, :] >= i[:, None] - before) & (i[None, :] <= i[:, None] + after))
    band = band.astype(np.float32).reshape(c, c, 1, 1)
    sq, ssum, den, pw = (b.tmp(l, w) for w in ("square", "window_sum", "base", "power"))
    b.node("Mul", [ins[0], ins[0]], [sq], l.name)
    b.node("Conv", [sq, b.const(f"{l.name}/window", band)], [ssum], l.name, kernel_shape=[1, 1])
    scaled = b.tmp(l, "scaled")
    b.node("Mul", [ssum, b.const(f"{l.name}/alpha", np.float32(a["alpha"] / a["size"]))],
           [scaled], l.name)
    b.node("Add", [scaled, b.const(f"{l.name}/k", np.float32(a["k"]))], [den], l.name)
    b.node("Pow", [den, b.const(f"{l.name}/beta", np.float32(a["beta"]))], [pw], l.name)
    b.node("Div", [ins[0], pw], [out], l.name)
    return out


def _dropout(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    return ins[0]  # the identity at inference: no node, the next layer reads the input


def _dense(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    (h, w, c), units = b.graph.input_shapes(l)[0], l.attrs["units"]
    if ins[0] in b.chw_flat:  # reads a flatten left in C, H, W order (see _flatten)
        h, w, c = b.chw_flat[ins[0]]
    wt = np.asarray(b.graph.weights[f"{l.name}.weight"], dtype=np.float32)  # (units, H*W*C)
    if h * w > 1:  # columns from H, W, C order to the C, H, W order of Flatten on NCHW
        wt = wt.reshape(units, h, w, c).transpose(0, 3, 1, 2).reshape(units, c * h * w)
    flat, y = b.tmp(l, "flat"), b.tmp(l, "gemm")
    if ins[0] in b.chw_flat:
        flat = ins[0]  # already (N, C*H*W)
    else:
        b.node("Flatten", ins, [flat], l.name, axis=1)  # (N, C*H*W)
    args = [flat, b.const(f"{l.name}.weight", np.ascontiguousarray(wt))]
    if l.attrs["bias"]:
        args.append(b.weight(l, "bias"))
    b.node("Gemm", args, [y], l.name, transB=1)  # (N, units)
    shape = b.const(f"{l.name}/shape", np.array([0, units, 1, 1], dtype=np.int64))
    b.node("Reshape", [y, shape], [out], l.name)  # (N, units, 1, 1)
    return out


def _flatten(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    h, w, c = b.graph.input_shapes(l)[0]
    x = ins[0]
    readers = [b.graph.layer(r).kind for r in b.graph.consumers[l.name]]
    if h * w > 1 and out != OUTPUT_NAME and readers and set(readers) == {"dense"}:
        # only dense layers read it: ONNX Flatten of NCHW, (N, C*H*W) in C, H, W order (the one
        # value that is not 4-D), and each dense permutes its weight columns to match; so no
        # Transpose runs and importers see the usual Flatten → Gemm
        b.chw_flat[out] = (h, w, c)
        b.node("Flatten", ins, [out], l.name, axis=1)
        return out
    if h * w > 1:  # (N, C, H, W) → (N, H, W, C) so the flatten runs in H, W, C order
        x = b.tmp(l, "nhwc")
        b.node("Transpose", ins, [x], l.name, perm=[0, 2, 3, 1])
    shape = b.const(f"{l.name}/shape", np.array([0, -1, 1, 1], dtype=np.int64))
    b.node("Reshape", [x, shape], [out], l.name)  # (N, H*W*C, 1, 1)
    return out


def _softmax(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    b.node("Softmax", ins, [out], l.name, axis=1)  # over channels, per pixel
    return out


def _add(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    acc = ins[0]  # ((x0 + x1) + x2) + ...: the reference's order of float additions
    for i, x in enumerate(ins[1:], start=1):
        y = out if i == len(ins) - 1 else b.tmp(l, f"partial{i}")
        b.node("Add", [acc, x], [y], l.name)
        acc = y
    return out


def _concat(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    b.node("Concat", ins, [out], l.name, axis=1)
    return out


def _fake_quant(b: _Builder, l: Layer, ins: list[str], out: str) -> str:
    """(clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale in float ops, as the reference.

    Not QuantizeLinear/DequantizeLinear: those round half to even and clamp to the integer
    type's range, and runtimes may fuse them into integer kernels with other arithmetic.
    """
    a = l.attrs
    f32 = np.float32

    def c(what, v):
        return b.const(f"{l.name}/{what}", f32(v))

    v, mag, fl, sg, q, qz, cl, back = (b.tmp(l, w) for w in (
        "scaled", "abs", "floor", "sign", "round", "shifted", "clamped", "centered"))
    b.node("Div", [ins[0], c("scale", a["scale"])], [v], l.name)
    b.node("Abs", [v], [mag], l.name)  # round half away from zero: sign(v) * floor(|v| + 0.5)
    half = b.tmp(l, "half_up")
    b.node("Add", [mag, c("half", 0.5)], [half], l.name)
    b.node("Floor", [half], [fl], l.name)
    b.node("Sign", [v], [sg], l.name)
    b.node("Mul", [sg, fl], [q], l.name)
    b.node("Add", [q, c("zero_point", a["zero_point"])], [qz], l.name)
    b.node("Clip", [qz, c("qmin", a["qmin"]), c("qmax", a["qmax"])], [cl], l.name)
    b.node("Sub", [cl, c("zero_point", a["zero_point"])], [back], l.name)
    b.node("Mul", [back, c("scale", a["scale"])], [out], l.name)
    return out


_EMITTERS = {
    "conv2d": _conv2d, "binary_conv2d": _binary_conv2d, "batchnorm": _batchnorm,
    "scale_bias": _scale_bias, "activation": _activation, "maxpool": _maxpool,
    "avgpool": _avgpool, "global_avgpool": _global_avgpool, "lrn": _lrn, "dropout": _dropout,
    "dense": _dense, "flatten": _flatten, "softmax": _softmax, "add": _add, "concat": _concat,
    "fake_quant": _fake_quant,
}
