"""A graph under construction: layers, weights and each layer's shape as it is added.

The one builder of graphs made from other graphs or model files: the importers (ONNX,
Darknet, TFLite float and integer) turn their format's operators into :meth:`Build.add` calls,
and the post-training quantizer (``apps.quantize``) turns float layers into integer ones with
:meth:`Build.add_named`.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import GraphError
from ..layers import get_kind
from ..layers.base import Shape
from .graph import Graph, Layer, Preprocessing, layer_shape


class Names:
    """Unique, valid layer names made from a source model's tensor or node names."""

    def __init__(self):
        self.used: set[str] = {"input"}

    def make(self, raw: str, fallback: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", raw or "").strip("_.-")
        if not name or not re.match(r"[A-Za-z_]", name):
            name = fallback if not name else f"{fallback}_{name}"
        base, i = name, 1
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name


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
        """Append a layer (named after ``raw_name``, made valid and unique) and its tensors;
        returns its name.

        A float kind's tensors are stored as float32; an integer kind's keep their dtype
        (uint8/int8 weights, int32 biases and requantization, float32 scales)."""
        return self._append(kind, self.names.make(raw_name, kind), inputs, weights, attrs)

    def add_named(self, kind: str, name: str, inputs: list[str], weights: dict | None = None,
                  **attrs) -> str:
        """:meth:`add` with ``name`` kept as it is (a graph's own names); a name already used
        is an error."""
        if name in self.names.used:
            raise GraphError(f"layer {name!r}: the name is used twice")
        self.names.used.add(name)
        return self._append(kind, name, inputs, weights, attrs)

    def _append(self, kind: str, name: str, inputs: list[str], weights: dict | None,
                attrs: dict) -> str:
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
