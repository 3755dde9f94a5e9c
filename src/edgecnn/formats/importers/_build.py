"""A graph under construction: layers, weights and each layer's shape as it is added.

The one builder of the importers (ONNX, Darknet, TFLite float and integer): each turns its
format's operators into :meth:`Build.add` calls.
"""

from __future__ import annotations

import numpy as np

from ...core.graph import Graph, Layer, Preprocessing, layer_shape
from ...errors import ModelFileError
from ...layers import get_kind
from ...layers.base import Shape
from . import Names


class Build:
    """Layers added one by one; the output shape of each is known at once (H, W, C)."""

    def __init__(self, input_shape: Shape):
        self.layers = [Layer("input", "input", (), {"shape": tuple(input_shape)})]
        self.shapes: dict[str, Shape] = {"input": tuple(input_shape)}
        self.weights: dict[str, np.ndarray] = {}
        self.names = Names()

    @property
    def last(self) -> str:
        return self.layers[-1].name

    def add(self, kind: str, raw_name: str, inputs: list[str], weights: dict | None = None,
            **attrs) -> str:
        """Append a layer (named after ``raw_name``) and its tensors; returns its name.

        A float kind's tensors are stored as float32; an integer kind's keep their dtype
        (uint8/int8 weights, int32 biases and requantization, float32 scales)."""
        name = self.names.make(raw_name, kind)
        k = get_kind(kind)
        layer = Layer(name, kind, tuple(inputs), k.normalize_attrs(attrs, f"layer {name!r}"))
        self.shapes[name] = layer_shape(layer, [self.shapes[i] for i in inputs])
        self.layers.append(layer)
        dtype = None if k.integer else np.float32
        for t, arr in (weights or {}).items():
            self.weights[f"{name}.{t}"] = np.ascontiguousarray(arr, dtype=dtype)
        return name

    def graph(self, name: str, preprocessing: Preprocessing, labels, meta: dict,
              where: str) -> Graph:
        g = Graph(name, self.layers, self.weights, preprocessing, labels, meta)
        g.check_weights(where)
        return g


MAX_CLASSES = 100_000


def default_labels(classes: int) -> str | list[str]:
    """ILSVRC2012 for 1000 outputs, with "background" first for 1001, else numbered classes."""
    if classes == 1000:
        return "ilsvrc2012"
    if classes == 1001:
        from . import ilsvrc2012_with_background

        return ilsvrc2012_with_background()
    if classes > MAX_CLASSES:  # found by fuzzing: 224x224x1000 outputs = 50 M label strings
        raise ModelFileError(f"the model's output has {classes:,} values, too many for a "
                             f"classifier (at most {MAX_CLASSES:,}); a classifier ends in "
                             "1x1xclasses: end the network with a global average pool or a "
                             "fully connected layer")
    return [f"class_{i}" for i in range(classes)]


def same_padding(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TF "SAME" / ONNX SAME_UPPER padding (before, after): out = ceil(size / s), the odd extra
    pad after (bottom/right)."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2
