"""The model graph: layers in topological order, their weights, preprocessing and labels.

The Graph is the single source of truth every backend reads. Layers form a DAG (residual
``add`` and ``concat`` take several inputs); the first layer is the one ``input`` layer and the
last layer is the output.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import GraphError
from ..layers import get_kind
from ..layers.base import LayerKind, Shape, TensorSpec

RESIZE_POLICIES = ("center_crop", "central_fraction", "stretch")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass
class Layer:
    name: str
    kind: str
    inputs: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> LayerKind:
        """The kind's definition: attributes, shape rule, tensors, reference, lowerings."""
        return get_kind(self.kind, f"layer {self.name!r}")

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "inputs": list(self.inputs),
                "attrs": {k: list(v) if isinstance(v, tuple) else v for k, v in self.attrs.items()}}


@dataclass
class Preprocessing:
    """How an image becomes the model's input tensor.

    pixel = uint8 value / 255 * (range_hi - range_lo) + range_lo, then (pixel - mean) / std per
    channel (in the model's channel order). ``resize``:
    - "center_crop": the central square whose side is ``crop_fraction`` of the shorter side
      (torchvision's resize-256-crop-224 is crop_fraction 0.875; ELL crops the square, 1.0), then
      a resize to the input size;
    - "central_fraction": the central ``crop_fraction`` of the height and of the width (TF-slim's
      ``central_crop``; the aspect ratio is kept until the final resize stretches it);
    - "stretch": the whole image resized to the input size, ignoring its aspect ratio.
    """

    channel_order: str = "RGB"
    pixel_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: str = "center_crop"
    crop_fraction: float = 0.875
    interpolation: str = "bilinear"

    def __post_init__(self):
        if self.channel_order not in ("RGB", "BGR"):
            raise GraphError(f"preprocessing: channel_order must be RGB or BGR, "
                             f"got {self.channel_order!r}")
        if self.resize not in RESIZE_POLICIES:
            raise GraphError(f"preprocessing: resize must be one of {', '.join(RESIZE_POLICIES)}, "
                             f"got {self.resize!r}")
        if self.interpolation not in ("bilinear", "nearest", "bicubic"):
            raise GraphError(f"preprocessing: unknown interpolation {self.interpolation!r}")
        if not 0 < self.crop_fraction <= 1:
            raise GraphError(f"preprocessing: crop_fraction must be in (0, 1], "
                             f"got {self.crop_fraction}")
        self.pixel_range = tuple(float(v) for v in self.pixel_range)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        if len(self.pixel_range) != 2 or len(self.mean) != 3 or len(self.std) != 3:
            raise GraphError("preprocessing: pixel_range has 2 values, mean and std 3 each")
        if any(s == 0 for s in self.std):
            raise GraphError("preprocessing: std must not be zero")

    def to_json(self) -> dict:
        return {"channel_order": self.channel_order, "pixel_range": list(self.pixel_range),
                "mean": list(self.mean), "std": list(self.std), "resize": self.resize,
                "crop_fraction": self.crop_fraction, "interpolation": self.interpolation}

    @classmethod
    def from_json(cls, d: dict) -> Preprocessing:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise GraphError(f"preprocessing: unknown field(s) {', '.join(unknown)}")
        return cls(**d)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable: free memory plus
    the page cache it may reclaim), or None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


INIT_CHUNK = 1 << 20  # values drawn at a time: float64 scratch of 8 MiB, whatever the model


def _normal(rng: np.random.Generator, std: float, shape: tuple, dtype: str) -> np.ndarray:
    """rng.normal(0, std, shape) stored as ``dtype``, drawn in chunks: the same values (the
    generator's stream is sequential) without a float64 copy of the whole tensor."""
    out = np.empty(shape, dtype)
    flat = out.reshape(-1)
    for i in range(0, flat.size, INIT_CHUNK):
        n = min(INIT_CHUNK, flat.size - i)
        flat[i:i + n] = rng.normal(0.0, std, n)
    return out


def layer_shape(l: Layer, ins: list[Shape]) -> Shape:
    """The output shape (H, W, C) of layer ``l`` given its inputs' shapes; an error names it."""
    try:
        out = tuple(int(v) for v in l.spec.output_shape(l.attrs, ins))
    except GraphError as e:
        msg = str(e)
        raise GraphError(msg if msg.startswith("layer ")
                         else f"layer {l.name!r} ({l.kind}): {msg}") from None
    if len(out) != 3 or min(out) < 1:
        raise GraphError(f"layer {l.name!r} ({l.kind}): output shape {out} is empty")
    return out


class Graph:
    """A DAG of layers with weights (``"<layer>.<tensor>"`` → array), preprocessing and labels.

    ``labels`` is ``"ilsvrc2012"`` (the 1000 classes in standard order) or a list of names.
    """

    def __init__(self, name: str, layers: list[Layer], weights: dict[str, np.ndarray] | None = None,
                 preprocessing: Preprocessing | None = None, labels: str | list[str] = "ilsvrc2012",
                 meta: dict | None = None):
        self.name = name
        self.layers = list(layers)
        self.weights: dict[str, np.ndarray] = dict(weights or {})
        self.preprocessing = preprocessing or Preprocessing()
        self.labels = labels
        self.meta = dict(meta or {})  # free-form notes (origin, departures, training)
        self._validate()

    # ---- structure ------------------------------------------------------------------------
    def _validate(self) -> None:
        if not self.layers:
            raise GraphError(f"graph {self.name!r} has no layers")
        seen: dict[str, Layer] = {}
        for i, l in enumerate(self.layers):
            where = f"layer {l.name!r}"
            if not isinstance(l.name, str) or not NAME_RE.match(l.name):
                raise GraphError(f"{where}: a layer name is letters, digits, '_', '.', '-' "
                                 "and starts with a letter or '_'")
            if l.name in seen:
                raise GraphError(f"{where}: the name is used twice")
            kind = get_kind(l.kind, where)
            if (l.kind == "input") != (i == 0):
                raise GraphError(f"{where}: the first layer, and only it, must be an input layer")
            l.inputs = tuple(l.inputs)
            n = len(l.inputs)
            if n < kind.min_inputs or (kind.max_inputs is not None and n > kind.max_inputs):
                want = (f"{kind.min_inputs}" if kind.max_inputs == kind.min_inputs
                        else f"at least {kind.min_inputs}")
                raise GraphError(f"{where}: kind {l.kind!r} takes {want} input(s), got {n}")
            for src in l.inputs:
                if src not in seen:
                    raise GraphError(f"{where}: input {src!r} is not an earlier layer")
            l.attrs = kind.normalize_attrs(l.attrs, where)
            seen[l.name] = l
        self._by_name = seen
        _ = self.shapes  # shape errors surface at construction

    def layer(self, name: str) -> Layer:
        try:
            return self._by_name[name]
        except KeyError:
            raise GraphError(f"graph {self.name!r} has no layer {name!r}") from None

    @property
    def input(self) -> Layer:
        return self.layers[0]

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    @cached_property
    def consumers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {l.name: [] for l in self.layers}
        for l in self.layers:
            for src in l.inputs:
                out[src].append(l.name)
        return out

    @cached_property
    def shapes(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {}
        for l in self.layers:
            shapes[l.name] = layer_shape(l, [shapes[s] for s in l.inputs])
        return shapes

    def input_shapes(self, l: Layer) -> list[Shape]:
        return [self.shapes[s] for s in l.inputs]

    @property
    def input_shape(self) -> Shape:
        return self.shapes[self.input.name]

    @property
    def output_shape(self) -> Shape:
        return self.shapes[self.output.name]

    @property
    def num_classes(self) -> int:
        h, w, c = self.output_shape
        return h * w * c

    # ---- weights --------------------------------------------------------------------------
    def tensor_specs(self) -> dict[str, TensorSpec]:
        """Every tensor the graph stores, keyed ``"<layer>.<tensor>"``, in layer order."""
        specs = {}
        for l in self.layers:
            for t, spec in l.spec.tensors(l.attrs, self.input_shapes(l)).items():
                specs[f"{l.name}.{t}"] = spec
        return specs

    def derive(self, layers: list[Layer] | None = None, *, name: str | None = None,
               labels: str | list[str] | None = None, meta: dict | None = None) -> Graph:
        """A new graph made from this one: ``layers`` (default: this graph's) copied, so that
        changing the new graph's attributes leaves this one alone; the weights of the layers
        it keeps; this graph's preprocessing, and its name, labels and meta unless given."""
        layers = [Layer(l.name, l.kind, tuple(l.inputs), dict(l.attrs))
                  for l in (self.layers if layers is None else layers)]
        out = Graph(self.name if name is None else name, layers,
                    preprocessing=self.preprocessing,
                    labels=self.labels if labels is None else labels,
                    meta=dict(self.meta) if meta is None else meta)
        kept = {l.name for l in layers}
        out.weights = {k: v for k, v in self.weights.items() if k.rsplit(".", 1)[0] in kept}
        return out

    def layer_weights(self, l: Layer) -> dict[str, np.ndarray]:
        prefix = l.name + "."
        return {k[len(prefix):]: v for k, v in self.weights.items() if k.startswith(prefix)
                and "." not in k[len(prefix):]}

    def check_weights(self, where: str = "") -> None:
        """Every expected tensor present with its shape; nothing unexpected."""
        prefix = f"{where}: " if where else ""
        specs = self.tensor_specs()
        for key, spec in specs.items():
            if key not in self.weights:
                raise GraphError(f"{prefix}missing tensor {key!r} (shape {spec.shape})")
            got = tuple(self.weights[key].shape)
            if got != spec.shape:
                raise GraphError(f"{prefix}tensor {key!r} has shape {got}, "
                                 f"layer expects {spec.shape}")
            if spec.dtype != "float32" and self.weights[key].dtype != np.dtype(spec.dtype):
                raise GraphError(f"{prefix}tensor {key!r} is {self.weights[key].dtype}, "
                                 f"layer expects {spec.dtype}")
        extra = sorted(set(self.weights) - set(specs))
        if extra:
            raise GraphError(f"{prefix}tensor(s) {', '.join(extra)} belong to no layer")

    def init_weights(self, seed: int = 0) -> Graph:
        """He-initialize weights (normal, std sqrt(2 / fan_in)); biases 0; BN identity."""
        rng = np.random.default_rng(seed)
        specs = self.tensor_specs()
        need = sum(spec.size * np.dtype(spec.dtype).itemsize for spec in specs.values())
        have = available_memory()
        if have is not None and need > have:
            raise GraphError(f"model {self.name!r}: its weights would take {need:,} bytes, more "
                             f"than the {have:,} bytes of memory available; check the layer "
                             "sizes (a mistyped filters or size value?)")
        self.weights = {}
        for key, spec in specs.items():
            if spec.init == "he":
                fan_in = int(np.prod(spec.shape[1:])) if len(spec.shape) > 1 else 1
                w = _normal(rng, np.sqrt(2.0 / max(fan_in, 1)), spec.shape, spec.dtype)
            elif spec.init == "zeros":
                w = np.zeros(spec.shape)
            elif spec.init == "ones":
                w = np.ones(spec.shape)
            elif spec.init.startswith("const:"):
                w = np.full(spec.shape, float(spec.init[6:]))
            else:  # pragma: no cover - a kind declared an init this method does not know
                raise AssertionError(spec.init)
            self.weights[key] = w.astype(spec.dtype, copy=False)
        return self

    # ---- serialization ----------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"name": self.name, "layers": [l.to_json() for l in self.layers],
                "preprocessing": self.preprocessing.to_json(), "labels": self.labels,
                "meta": self.meta}

    @classmethod
    def from_json(cls, d: dict, weights: dict[str, np.ndarray] | None = None) -> Graph:
        if not isinstance(d, dict) or not isinstance(d.get("layers"), list):
            raise GraphError("the graph description has no 'layers' list")
        layers = []
        for i, ld in enumerate(d["layers"]):
            if not isinstance(ld, dict) or "name" not in ld or "kind" not in ld:
                raise GraphError(f"layer #{i} of the graph has no name or kind")
            layers.append(Layer(ld["name"], ld["kind"], tuple(ld.get("inputs", ())),
                                dict(ld.get("attrs", {}))))
        labels = d.get("labels", "ilsvrc2012")
        if not (labels == "ilsvrc2012" or (isinstance(labels, list)
                                            and all(isinstance(s, str) for s in labels))):
            raise GraphError("labels must be 'ilsvrc2012' or a list of names")
        return cls(str(d.get("name", "model")), layers, weights,
                   Preprocessing.from_json(d.get("preprocessing", {})), labels,
                   d.get("meta", {}))

    def copy(self) -> Graph:
        g = Graph.from_json(self.to_json())
        g.weights = {k: v.copy() for k, v in self.weights.items()}
        return g

    def __repr__(self) -> str:
        h, w, c = self.input_shape
        return f"Graph({self.name!r}, {len(self.layers)} layers, input {h}x{w}x{c})"


class GraphBuilder:
    """Builds a graph layer by layer; each new layer reads the previous one unless told."""

    def __init__(self, name: str, input_shape: Shape, **graph_kw):
        self.name = name
        self.layers: list[Layer] = [Layer("input", "input", (), {"shape": tuple(input_shape)})]
        self.graph_kw = graph_kw
        self._counts: dict[str, int] = {}

    @property
    def last(self) -> str:
        return self.layers[-1].name

    def add(self, kind: str, name: str | None = None, inputs: list[str] | str | None = None,
            **attrs) -> str:
        if name is None:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            name = f"{kind}{self._counts[kind]}"
        if inputs is None:
            inputs = [self.last]
        elif isinstance(inputs, str):
            inputs = [inputs]
        self.layers.append(Layer(name, kind, tuple(inputs), attrs))
        return name

    def build(self, init_seed: int | None = None) -> Graph:
        g = Graph(self.name, self.layers, **self.graph_kw)
        if init_seed is not None:
            g.init_weights(init_seed)
        return g


def fingerprint(g: Graph) -> str:
    """sha256 of the graph description and weights: which model a report was made with."""
    h = hashlib.sha256(json.dumps(g.to_json(), sort_keys=True).encode())
    for k in sorted(g.weights):
        h.update(k.encode())
        h.update(np.ascontiguousarray(g.weights[k], dtype=np.float32).tobytes())
    return h.hexdigest()
