"""Counting, defined once: shapes, params, MACs, weight bytes, activation memory, padded shapes.

- params: stored learnable values (tensors whose role is weight or bias; batch-norm running
  statistics are not params). "weights" and "biases" split that total by role.
- MACs: multiply-accumulates of one forward pass at batch 1 (convolutions and dense layers;
  elementwise layers, pooling and softmax count 0).
- weight bytes: every stored tensor at its storage width (float32; binary weights 1 bit;
  integer layers' int8/uint8 weights 1 byte, int32 biases and multipliers 4).
- peak activation bytes: buffers (float32, or 1 byte per value for integer layers) of a
  sequential execution in layer order, each buffer freed after its last reader; an elementwise
  layer whose input has no other reader writes in place. The input image buffer counts.
- padded output shape (ELL): the logical output plus the zero border its readers read (a 3x3
  convolution with padding 1 reads one row/column around its input).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..layers.base import Shape
from .graph import Graph

FLOAT_BYTES = 4


@dataclass
class LayerStats:
    name: str
    kind: str
    inputs: list[str]
    output_shape: Shape
    padded_output_shape: Shape
    params: int
    weights: int
    biases: int
    macs: int
    weight_bytes: int

    def to_json(self) -> dict:
        d = asdict(self)
        d["output_shape"] = list(self.output_shape)
        d["padded_output_shape"] = list(self.padded_output_shape)
        return d


@dataclass
class Summary:
    name: str
    input: Shape
    layers: list[LayerStats]
    total_params: int
    total_weights: int
    total_biases: int
    total_macs: int
    weight_bytes: int
    peak_activation_bytes: int

    def to_json(self) -> dict:
        return {"name": self.name, "input": list(self.input),
                "layers": [l.to_json() for l in self.layers],
                "total_params": self.total_params, "total_weights": self.total_weights,
                "total_biases": self.total_biases, "total_macs": self.total_macs,
                "weight_bytes": self.weight_bytes,
                "peak_activation_bytes": self.peak_activation_bytes}


def padded_shapes(g: Graph) -> dict[str, Shape]:
    """Each layer's output plus the largest border any of its readers reads."""
    out = {}
    for l in g.layers:
        h, w, c = g.shapes[l.name]
        bh = bw = 0
        for reader in g.consumers[l.name]:
            r = g.layer(reader)
            rh, rw = r.spec.border(r.attrs)
            bh, bw = max(bh, rh), max(bw, rw)
        out[l.name] = (h + 2 * bh, w + 2 * bw, c)
    return out


def value_dtypes(g: Graph) -> dict[str, str]:
    """Layer name → the element type of its output (float32, uint8 or int8)."""
    dt: dict[str, str] = {}
    for l in g.layers:
        dt[l.name] = l.spec.output_dtype(l.attrs, [dt[s] for s in l.inputs])
    return dt


def peak_activation_bytes(g: Graph, shapes: dict[str, Shape] | None = None) -> int:
    """Peak of live buffers when layers run in order and buffers die after last use."""
    shapes = shapes or g.shapes
    width = {n: np.dtype(t).itemsize for n, t in value_dtypes(g).items()}
    size = {n: s[0] * s[1] * s[2] * width.get(n, FLOAT_BYTES) for n, s in shapes.items()}
    last_use = {l.name: i for i, l in enumerate(g.layers)}
    for i, l in enumerate(g.layers):
        for src in l.inputs:
            last_use[src] = max(last_use[src], i)
    last_use[g.output.name] = len(g.layers)  # the result stays
    buffer_of: dict[str, str] = {}  # layer -> the buffer holding its output
    live: dict[str, int] = {}  # buffer -> bytes
    peak = 0
    for i, l in enumerate(g.layers):
        inplace = (l.spec.elementwise and len(l.inputs) == 1 and last_use[l.inputs[0]] == i
                   and size[l.inputs[0]] == size[l.name])
        if inplace:
            buffer_of[l.name] = buffer_of[l.inputs[0]]
        else:
            buffer_of[l.name] = l.name
            live[l.name] = size[l.name]
        peak = max(peak, sum(live.values()))
        for src in l.inputs:
            if last_use[src] == i and buffer_of[src] != buffer_of[l.name]:
                live.pop(buffer_of[src], None)
    return peak


def summarize(g: Graph) -> Summary:
    padded = padded_shapes(g)
    rows = []
    for l in g.layers:
        ins = g.input_shapes(l)
        specs = l.spec.tensors(l.attrs, ins)
        weights = sum(s.size for s in specs.values() if s.role == "weight")
        biases = sum(s.size for s in specs.values() if s.role == "bias")
        rows.append(LayerStats(
            name=l.name, kind=l.kind, inputs=list(l.inputs), output_shape=g.shapes[l.name],
            padded_output_shape=padded[l.name], params=weights + biases, weights=weights,
            biases=biases, macs=int(l.spec.macs(l.attrs, ins, g.shapes[l.name])),
            weight_bytes=sum(s.nbytes for s in specs.values())))
    return Summary(
        name=g.name, input=g.input_shape, layers=rows,
        total_params=sum(r.params for r in rows), total_weights=sum(r.weights for r in rows),
        total_biases=sum(r.biases for r in rows), total_macs=sum(r.macs for r in rows),
        weight_bytes=sum(r.weight_bytes for r in rows),
        peak_activation_bytes=peak_activation_bytes(g))
