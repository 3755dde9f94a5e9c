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

Each kind's nodes come from its own module (``LayerKind.to_onnx``). ``binary_conv2d`` follows
layers/binary_conv2d.py: the input is binarized with ``Where(Greater(x, 0), ...)``, the weights
are binarized at export (stored as int8 ±1), the sums are exact integers (``ConvInteger``,
whose padding contributes 0 as the reference's does), then ``Cast`` and ``Mul`` by the
per-filter scale (see ``BinaryConv2d.to_onnx`` for why not a float Conv).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..core.fileio import write_bytes_atomic
from ..core.graph import Graph, Layer
from ..errors import EdgecnnError, require
from ..layers import lowers_to
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
        if not lowers_to(l.spec, "onnx"):
            raise EdgecnnError(f"ONNX export: layer {l.name!r} of kind {l.kind!r} is not "
                               "supported by the exporter")
        value = l.spec.to_onnx(b, l, [b.values[s] for s in l.inputs], out)
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
    """Collects nodes and initializers; hands out unique value names. Each kind's
    ``to_onnx(b, layer, inputs, out)`` adds its nodes through it."""

    output_name = OUTPUT_NAME

    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.used: set[str] = {INPUT_NAME, OUTPUT_NAME, *graph.weights}
        self.values: dict[str, str] = {graph.input.name: INPUT_NAME}  # layer → its value name
        # onnx's shape inference agrees with ours (see layers/pool.py, _onnx_ceil_mode)
        self.exact_shapes = True
        self.chw_flat: dict[str, Shape] = {}  # (N, C*H*W) values of a flatten: their H, W, C

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
