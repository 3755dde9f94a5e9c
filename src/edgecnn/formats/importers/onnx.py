"""ONNX (opset >= 11) → Graph.

ONNX tensors are NCHW; edgecnn's are H, W, C. Convolution weights keep their (O, I/g, kh, kw)
layout; what changes is flattening: ONNX flattens C, H, W in that order and edgecnn in H, W, C
order, so the columns of a dense layer that reads a flattened C x H x W tensor are permuted.

Supported operators: Conv (groups, depthwise, auto_pad), BatchNormalization, Relu, LeakyRelu,
PRelu, Clip (min 0 and max 6 or none), Sigmoid, Tanh, MaxPool, AveragePool, GlobalAveragePool,
GlobalMaxPool, Gemm, MatMul (+ Add), Flatten, Reshape (to (N, -1), or (N, K) to (N, K, 1, 1)),
Softmax (over channels), Add, Concat (channels), LRN, Dropout, Identity, Pad (constant zeros
on H and W, folded into the next Conv or AveragePool), and Add/Sub/Mul/Div by a constant:
folded into the preprocessing's mean and std when applied to the model input, else a
per-channel ``scale_bias`` layer. An ONNX file stores no preprocessing: pass it, or the graph
gets the default (pixels in [0, 1], no mean or std) adjusted by the folded input arithmetic;
files written by ``edgecnn export`` carry theirs (and name and labels) in ``metadata_props``.

Any operator whose inputs are all constants (exporters' shape arithmetic: Shape, Gather,
Concat, Slice, Cast, …) is evaluated at import time with onnx's reference evaluator.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import numpy as np

from ...core.build import Build
from ...core.graph import Graph, Preprocessing
from ...errors import EdgecnnError, ModelFileError, require
from . import UnsupportedModelError, unsupported
from ._build import default_labels, same_padding

SUPPORTED = {"Conv", "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid",
             "Tanh", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Gemm",
             "MatMul", "Flatten", "Reshape", "Softmax", "Add", "Sub", "Mul", "Div", "Concat",
             "LRN", "Dropout", "Identity", "Pad", "Constant", "Transpose", "Unsqueeze"}
ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


class _Refused(Exception):
    """A node the importer cannot express (collected, then reported with all the others)."""


@dataclass
class Value:
    """An ONNX activation: the layer holding it and how its elements are ordered.

    ``chw`` is set on a flat vector made by flattening a C x H x W tensor (ONNX order C, H, W;
    edgecnn's H, W, C). ``pad`` is a pending zero padding (top, left, bottom, right).
    ``nhwc``: the tensor transposed to N, H, W, C — edgecnn's own order, so flattening it moves
    nothing (PyTorch modules that flatten channels-last export Transpose, Flatten). ``unsq``:
    trailing unit axes appended to a flat (N, K) vector by Unsqueeze, one at a time.
    """

    layer: str
    flat: bool = False
    chw: tuple[int, int, int] | None = None
    pad: tuple[int, int, int, int] | None = None
    nhwc: bool = False
    unsq: int = 0


def import_onnx(path: str | os.PathLike, preprocessing: Preprocessing | None = None) -> Graph:
    """Read an ``.onnx`` file into a Graph (see the module docstring)."""
    onnx = require("onnx", "onnx")
    path = os.fspath(path)
    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf raises DecodeError, or others on a truncated file
        raise ModelFileError(f"{path}: not a readable ONNX model; the file is truncated or "
                             f"corrupt ({type(e).__name__}: {e})") from None
    if not model.graph.node:
        raise ModelFileError(f"{path}: the ONNX file holds no graph (truncated or not a model)")
    return _Importer(path, model, preprocessing).run()


class _Importer:
    def __init__(self, path: str, model, preprocessing: Preprocessing | None):
        from onnx import numpy_helper

        self.path = path
        self.model = model
        self.graph = model.graph
        self.to_array = numpy_helper.to_array
        self.consts: dict[str, np.ndarray] = {t.name: self.to_array(t)
                                              for t in self.graph.initializer}
        self.vals: dict[str, Value] = {}
        self.props = {p.key: p.value for p in model.metadata_props}
        self.pre = preprocessing or self._stored_preprocessing() or Preprocessing()
        self.consumers: dict[str, list] = {}
        for n in self.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.done: set[int] = set()  # ids of nodes already absorbed by an earlier one
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          0)

    # ---- driver ------------------------------------------------------------------------------
    def run(self) -> Graph:
        if self.opset and self.opset < 11:
            raise UnsupportedModelError(f"{self.path}: opset {self.opset}; edgecnn imports "
                                        "ONNX opset 11 or later (convert with "
                                        "onnx.version_converter)")
        refused = self._check_all()
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        if len(inputs) != 1 or len(self.graph.output) != 1:
            raise UnsupportedModelError(f"{self.path}: edgecnn imports models with one input "
                                        f"and one output, this one has {len(inputs)} and "
                                        f"{len(self.graph.output)}")
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) != 4 or None in dims[1:]:
            raise UnsupportedModelError(f"{self.path}: input {inputs[0].name!r} has shape "
                                        f"{dims}; edgecnn imports images (N, C, H, W)")
        _, c, h, w = dims
        self.b = Build((h, w, c))
        self.input_name = inputs[0].name
        self.vals[inputs[0].name] = Value("input")
        problems: list[str] = []
        poisoned: set[str] = set()  # outputs of refused nodes: their readers are not judged
        for n in self.graph.node:
            if id(n) in self.done:
                continue
            if id(n) in refused:
                problems.append(refused[id(n)])
                poisoned.update(n.output)
                continue
            if poisoned.intersection(n.input):
                poisoned.update(n.output)
                continue
            self.node = n
            try:
                if not self._fold(n):
                    getattr(self, "_" + n.op_type)(n)
            except _Refused as e:
                problems.append(str(e))
                poisoned.update(n.output)
            except (KeyError, IndexError, TypeError, ValueError) as e:  # attributes missing
                problems.append(f"node {n.name or '(unnamed)'!r} ({n.op_type}): malformed "
                                f"({type(e).__name__}: {e})")
                poisoned.update(n.output)
        if problems:
            raise unsupported(self.path, problems)
        out = self.vals.get(self.graph.output[0].name)
        if out is None or out.layer != self.b.last:
            raise UnsupportedModelError(f"{self.path}: the output {self.graph.output[0].name!r} "
                                        "is not the result of the last operator")
        classes = int(np.prod(self.b.shapes[self.b.last]))
        meta = {"source": {"format": "onnx", "file": os.path.basename(self.path),
                           "opset": self.opset}}
        name = self.props.get("edgecnn.name") or os.path.splitext(os.path.basename(self.path))[0]
        return self.b.graph(name, self.pre, self._labels(classes), meta, self.path)

    # -- what an edgecnn export stores in metadata_props (edgecnn/onnx_export.py)
    def _stored_preprocessing(self) -> Preprocessing | None:
        text = self.props.get("edgecnn.preprocessing")
        if text is None:
            return None
        try:
            return Preprocessing.from_json(json.loads(text))
        except (ValueError, EdgecnnError) as e:
            raise ModelFileError(f"{self.path}: bad edgecnn.preprocessing metadata ({e})") from None

    def _labels(self, classes: int):
        text = self.props.get("edgecnn.labels")
        if text is None:
            return default_labels(classes)
        if text == "ilsvrc2012":
            return text
        try:
            labels = json.loads(text)
        except ValueError:
            raise ModelFileError(f"{self.path}: bad edgecnn.labels metadata") from None
        return labels

    def _check_all(self) -> dict[int, str]:
        """Operators edgecnn has no translation for (unless constant-foldable), by node id."""
        const = set(self.consts) | {""}
        problems = {}
        for n in self.graph.node:
            if n.op_type == "Shape" or (n.op_type not in ("Constant",) and n.input
                                        and all(i in const for i in n.input)):
                const.update(n.output)  # computed at import time (see _fold)
                continue
            if n.op_type == "Constant":
                const.update(n.output)
            reason = None
            if n.domain not in ("", "ai.onnx"):
                reason = f"domain {n.domain!r}"
            elif n.op_type not in SUPPORTED:
                reason = ""
            elif n.op_type == "MaxPool" and len(n.output) > 1 and n.output[1]:
                reason = "the indices output"
            elif n.op_type == "Pad" and self._attr(n, "mode", b"constant") != b"constant":
                reason = "a mode other than constant"
            if reason is not None:
                problems[id(n)] = (f"node {n.name or '(unnamed)'!r} ({n.op_type})"
                                   + (f": {reason}" if reason else ""))
        return problems

    def _fold(self, n) -> bool:
        """Evaluate a node on constants now (shape arithmetic of exporters); True if done."""
        if n.op_type == "Shape" and n.input[0] in self.vals:
            v = self.vals[n.input[0]]
            h, w, c = self.b.shapes[v.layer]
            shape = np.array([1, h * w * c] + [1] * v.unsq if v.flat
                             else [1, h, w, c] if v.nhwc else [1, c, h, w], np.int64)
            start, end = self._attr(n, "start", 0), self._attr(n, "end", None)
            self.consts[n.output[0]] = shape[start:end]
            return True
        if n.op_type == "Constant" or not n.input or not all(
                i in self.consts or i == "" for i in n.input):
            return False
        from onnx.reference import ReferenceEvaluator

        try:
            ev = ReferenceEvaluator(n, opsets={"": self.opset})
            outs = ev.run(None, {i: self.consts[i] for i in n.input if i})
        except Exception as e:
            raise self.fail(f"cannot evaluate it on its constant inputs ({e})") from None
        self.consts.update({name: np.asarray(v) for name, v in zip(n.output, outs,
                                                                    strict=False)})
        return True

    # ---- helpers -----------------------------------------------------------------------------
    def fail(self, why: str) -> _Refused:
        n = self.node
        return _Refused(f"node {n.name or '(unnamed)'!r} ({n.op_type}): {why}")

    @staticmethod
    def _attr(n, name: str, default=None):
        from onnx import helper

        for a in n.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def _val(self, name: str, allow_pad: bool = False) -> Value:
        v = self.vals.get(name)
        if v is None:
            raise self.fail(f"input {name!r} is neither the model input nor a computed value")
        if v.pad is not None and not allow_pad:
            raise self.fail("reads a Pad result; only Conv and AveragePool absorb a Pad")
        if v.nhwc and self.node.op_type not in ("Flatten", "Reshape", "Transpose"):
            raise self.fail("reads an N x H x W x C transpose; only Flatten, Reshape to (N, -1) "
                            "or the Transpose back may follow it")
        if v.unsq and self.node.op_type != "Unsqueeze":
            raise self.fail("reads a partly unsqueezed (N, K, 1) tensor")
        return v

    def _const(self, name: str) -> np.ndarray:
        if name not in self.consts:
            raise self.fail(f"input {name!r} must be a constant")
        return self.consts[name]

    def _set(self, n, v: Value) -> None:
        self.vals[n.output[0]] = v

    def _add(self, kind: str, inputs: list[str], weights=None, **attrs) -> str:
        return self.b.add(kind, self.node.name or self.node.output[0], inputs, weights, **attrs)

    def _spatial(self, name: str) -> Value:
        v = self._val(name, allow_pad=True)
        if v.flat:
            raise self.fail("expects an N x C x H x W input")
        return v

    def _hw(self, layer: str) -> tuple[int, int]:
        return self.b.shapes[layer][:2]

    def _window(self, n, v: Value, k: tuple[int, int], s: tuple[int, int],
                d: tuple[int, int] = (1, 1)) -> tuple[int, int, int, int]:
        """Padding (top, left, bottom, right) from pads or auto_pad, plus a pending Pad."""
        auto = self._attr(n, "auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        pads = list(self._attr(n, "pads", [0, 0, 0, 0]))
        pad = (pads[0], pads[1], pads[2], pads[3])  # ONNX: h_begin, w_begin, h_end, w_end
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            h, w = self._hw(v.layer)
            ph = same_padding(h, k[0], s[0], d[0])
            pw = same_padding(w, k[1], s[1], d[1])
            if auto == "SAME_LOWER":
                ph, pw = ph[::-1], pw[::-1]
            pad = (ph[0], pw[0], ph[1], pw[1])
        elif auto == "VALID":
            pad = (0, 0, 0, 0)
        if v.pad is not None:
            pad = tuple(a + b for a, b in zip(pad, v.pad, strict=True))
        return pad

    # ---- operators ---------------------------------------------------------------------------
    def _Constant(self, n) -> None:
        value = self._attr(n, "value")
        if value is None:
            raise self.fail("only a tensor 'value' constant is supported")
        self.consts[n.output[0]] = self.to_array(value)

    def _Identity(self, n) -> None:
        if n.input[0] in self.consts:
            self.consts[n.output[0]] = self.consts[n.input[0]]
        else:
            self._set(n, self._val(n.input[0], allow_pad=True))

    _Dropout = _Identity

    def _Conv(self, n) -> None:
        v = self._spatial(n.input[0])
        w = self._const(n.input[1]).astype(np.float32)  # (O, I / groups, kh, kw)
        if w.ndim != 4:
            raise self.fail(f"a {w.ndim - 2}-D convolution (only 2-D)")
        k = tuple(w.shape[2:])
        s = tuple(self._attr(n, "strides", [1, 1]))
        d = tuple(self._attr(n, "dilations", [1, 1]))
        weights = {"weight": w}
        if len(n.input) > 2 and n.input[2]:
            weights["bias"] = self._const(n.input[2])
        name = self._add("conv2d", [v.layer], weights, filters=w.shape[0], kernel=k, stride=s,
                         padding=self._window(n, v, k, s, d), dilation=d,
                         groups=self._attr(n, "group", 1), bias="bias" in weights)
        self._set(n, Value(name))

    def _BatchNormalization(self, n) -> None:
        v = self._val(n.input[0])
        scale, shift, mean, var = (self._const(i) for i in n.input[1:5])
        name = self._add("batchnorm", [v.layer], {"scale": scale, "shift": shift, "mean": mean,
                                                  "var": var},
                         eps=self._attr(n, "epsilon", 1e-5))
        self._set(n, Value(name, v.flat, v.chw))

    def _activation(self, n, function: str, weights=None, **attrs) -> None:
        v = self._val(n.input[0])
        name = self._add("activation", [v.layer], weights, function=function, **attrs)
        self._set(n, Value(name, v.flat, v.chw))

    def _Relu(self, n) -> None:
        self._activation(n, "relu")

    def _Sigmoid(self, n) -> None:
        self._activation(n, "sigmoid")

    def _Tanh(self, n) -> None:
        self._activation(n, "tanh")

    def _LeakyRelu(self, n) -> None:
        self._activation(n, "leaky_relu", slope=self._attr(n, "alpha", 0.01))

    def _PRelu(self, n) -> None:
        v = self._val(n.input[0])
        c = self.b.shapes[v.layer][2]
        slope = self._const(n.input[1]).astype(np.float32)
        if slope.size == 1:
            slope = np.full(c, slope.ravel()[0], np.float32)
        elif slope.size == c and (v.flat or slope.squeeze().ndim == 1 and slope.shape[-1] in
                                  (1, c) and (slope.ndim < 2 or slope.shape[-2] == 1)):
            slope = self._per_channel(slope, v)
        else:
            raise self.fail(f"slope of shape {slope.shape} (one per channel or one in all)")
        self._activation(n, "prelu", {"slope": slope})

    def _Clip(self, n) -> None:
        if self.opset < 11:  # pragma: no cover - refused in run()
            lo, hi = self._attr(n, "min"), self._attr(n, "max")
        else:
            lo = float(self._const(n.input[1])) if len(n.input) > 1 and n.input[1] else None
            hi = float(self._const(n.input[2])) if len(n.input) > 2 and n.input[2] else None
        if lo == 0 and hi == 6:
            self._activation(n, "relu6")
        elif lo == 0 and (hi is None or hi == np.inf):
            self._activation(n, "relu")
        else:
            raise self.fail(f"Clip to [{lo}, {hi}] (only [0, 6], i.e. relu6, and [0, inf))")

    def _pool_attrs(self, n, v: Value) -> dict:
        k = tuple(self._attr(n, "kernel_shape"))
        s = tuple(self._attr(n, "strides", [1, 1]))
        if tuple(self._attr(n, "dilations", [1, 1])) != (1, 1):
            raise self.fail("dilated pooling")
        return {"kernel": k, "stride": s, "padding": self._window(n, v, k, s),
                "ceil_mode": bool(self._attr(n, "ceil_mode", 0))}

    def _MaxPool(self, n) -> None:
        v = self._spatial(n.input[0])
        if v.pad is not None:
            raise self.fail("reads a Pad result (zero padding is not max pooling's)")
        self._set(n, Value(self._add("maxpool", [v.layer], **self._pool_attrs(n, v))))

    def _AveragePool(self, n) -> None:
        v = self._spatial(n.input[0])
        a = self._pool_attrs(n, v)
        include = bool(self._attr(n, "count_include_pad", 0))
        if v.pad is not None:
            if any(self._attr(n, "pads", [0, 0, 0, 0])) and not include:
                raise self.fail("reads a Pad result and pads itself without counting padding")
            include = True  # the explicit zeros of Pad are counted
        self._set(n, Value(self._add("avgpool", [v.layer], **a, count_include_pad=include)))

    def _GlobalAveragePool(self, n) -> None:
        v = self._val(n.input[0])
        self._set(n, Value(self._add("global_avgpool", [v.layer])))

    def _GlobalMaxPool(self, n) -> None:
        v = self._val(n.input[0])
        self._set(n, Value(self._add("maxpool", [v.layer], kernel=self._hw(v.layer))))

    def _flatten(self, n, v: Value) -> None:
        h, w, c = self.b.shapes[v.layer]
        if v.nhwc:  # already in edgecnn's H, W, C order: no permutation to remember
            self._set(n, Value(v.layer if (h, w) == (1, 1) else
                               self._add("flatten", [v.layer]), True))
            return
        if v.flat or (h, w) == (1, 1):
            self._set(n, Value(v.layer, True, v.chw))
        else:
            self._set(n, Value(self._add("flatten", [v.layer]), True, (c, h, w)))

    def _Flatten(self, n) -> None:
        if self._attr(n, "axis", 1) != 1:
            raise self.fail("axis other than 1")
        self._flatten(n, self._val(n.input[0]))

    def _Reshape(self, n) -> None:
        v = self._val(n.input[0])
        shape = [int(s) for s in self._const(n.input[1]).ravel()]
        total = int(np.prod(self.b.shapes[v.layer]))
        if len(shape) == 4 and shape[0] in (1, 0, -1) and shape[1] in (total, -1) \
                and shape[2:] == [1, 1] and self.b.shapes[v.layer][:2] == (1, 1):
            if v.chw is not None:  # the channels would stay in ONNX's C, H, W order
                raise self.fail("a C x H x W tensor flattened into channels")
            self._set(n, Value(v.layer))  # (N, K) → (N, K, 1, 1): nothing moves
            return
        if len(shape) != 2 or shape[0] not in (1, 0, -1) or shape[1] not in (-1, total) \
                or shape == [-1, -1]:
            raise self.fail(f"to shape {shape}: only flattening to (N, -1)")
        self._flatten(n, v)

    def _Transpose(self, n) -> None:
        v = self._val(n.input[0])
        perm = [int(p) for p in self._attr(n, "perm", [])]
        if not v.flat and not v.nhwc and perm == [0, 2, 3, 1]:
            self._set(n, Value(v.layer, nhwc=True))
        elif v.nhwc and perm == [0, 3, 1, 2]:
            self._set(n, Value(v.layer))
        else:
            raise self.fail(f"perm {perm}: only N, C, H, W → N, H, W, C before a Flatten "
                            "(and back)")

    def _Unsqueeze(self, n) -> None:
        v = self._val(n.input[0])
        axes = self._attr(n, "axes")  # opset < 13: an attribute; later: the second input
        axes = [int(a) for a in (axes if axes is not None else self._const(n.input[1]).ravel())]
        rank_in = 2 + v.unsq
        rank_out = rank_in + len(axes)
        axes = sorted(a + rank_out if a < 0 else a for a in axes)
        if not v.flat or self.b.shapes[v.layer][:2] != (1, 1) \
                or axes != list(range(rank_in, rank_out)) or v.unsq + len(axes) > 2:
            raise self.fail(f"axes {axes}: only (N, K) → (N, K, 1, 1)")
        if v.unsq + len(axes) == 2:
            if v.chw is not None:  # the channels would stay in ONNX's C, H, W order
                raise self.fail("a C x H x W tensor flattened into channels")
            self._set(n, Value(v.layer))  # (N, K, 1, 1): edgecnn's 1 x 1 x K
        else:
            self._set(n, Value(v.layer, True, v.chw, unsq=v.unsq + len(axes)))

    def _dense(self, n, v: Value, w: np.ndarray, bias: np.ndarray | None) -> str:
        """A dense layer; ``w`` is (units, features) with features in ONNX order."""
        if v.chw is not None:  # columns in C, H, W order → H, W, C
            c, h, ww = v.chw
            w = w.reshape(-1, c, h, ww).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        feats = int(np.prod(self.b.shapes[v.layer]))
        if w.shape[1] != feats:
            raise self.fail(f"weights for {w.shape[1]} inputs, the input has {feats}")
        weights = {"weight": w} if bias is None else {"weight": w, "bias": bias}
        return self._add("dense", [v.layer], weights, units=w.shape[0], bias=bias is not None)

    def _Gemm(self, n) -> None:
        v = self._val(n.input[0])
        if self._attr(n, "transA", 0):
            raise self.fail("transA=1")
        w = self._const(n.input[1]).astype(np.float32)
        w = w if self._attr(n, "transB", 0) else w.T  # → (units, features)
        w = w * np.float32(self._attr(n, "alpha", 1.0))
        bias = None
        if len(n.input) > 2 and n.input[2]:
            bias = np.broadcast_to(self._const(n.input[2]).astype(np.float32)
                                   * np.float32(self._attr(n, "beta", 1.0)),
                                   (1, w.shape[0])).reshape(-1).copy()
        if not v.flat:
            self._flatten_for_dense(v)
        self._set(n, Value(self._dense(n, self.vals[n.input[0]], w, bias), True))

    def _flatten_for_dense(self, v: Value) -> None:
        h, w, _ = self.b.shapes[v.layer]
        if (h, w) != (1, 1):
            raise self.fail("a matrix product on an N x C x H x W tensor (Flatten it first)")
        self.vals[self.node.input[0]] = Value(v.layer, True)

    def _MatMul(self, n) -> None:
        v = self._val(n.input[0])
        if not v.flat:
            self._flatten_for_dense(v)
            v = self.vals[n.input[0]]
        w = self._const(n.input[1]).astype(np.float32)
        if w.ndim != 2:
            raise self.fail(f"a {w.ndim}-D constant operand (only a 2-D weight matrix)")
        bias, out = None, n.output[0]
        users = self.consumers.get(out, [])
        if len(users) == 1 and users[0].op_type == "Add" and out not in self._graph_outputs():
            add = users[0]
            other = add.input[1] if add.input[0] == out else add.input[0]
            if other in self.consts and self.consts[other].size == w.shape[1]:
                bias, out = self.consts[other].reshape(-1).astype(np.float32), add.output[0]
                self.done.add(id(add))
        name = self._dense(n, v, w.T, bias)
        self.vals[out] = Value(name, True)

    def _graph_outputs(self) -> set[str]:
        return {o.name for o in self.graph.output}

    def _Softmax(self, n) -> None:
        v = self._val(n.input[0])
        h, w, _ = self.b.shapes[v.layer]
        axis = self._attr(n, "axis", 1 if self.opset < 13 else -1)
        over_channels = v.flat and axis in (1, -1) or axis == 1 and (
            self.opset >= 13 or (h, w) == (1, 1))
        if not over_channels:
            raise self.fail(f"axis {axis} (only over channels)")
        self._set(n, Value(self._add("softmax", [v.layer]), v.flat, v.chw))

    def _Concat(self, n) -> None:
        vs = [self._val(i) for i in n.input]
        axis = self._attr(n, "axis")
        if any(v.flat for v in vs) or axis not in (1, -3):
            raise self.fail(f"axis {axis} (only channels of N x C x H x W tensors)")
        self._set(n, Value(self._add("concat", [v.layer for v in vs])))

    def _LRN(self, n) -> None:
        v = self._val(n.input[0])
        name = self._add("lrn", [v.layer], size=self._attr(n, "size"),
                         alpha=self._attr(n, "alpha", 1e-4), beta=self._attr(n, "beta", 0.75),
                         k=self._attr(n, "bias", 1.0))
        self._set(n, Value(name))

    def _Pad(self, n) -> None:
        v = self._spatial(n.input[0])
        pads = [int(p) for p in (self._const(n.input[1]).ravel() if len(n.input) > 1
                                 else self._attr(n, "pads"))]
        value = 0.0
        if len(n.input) > 2 and n.input[2]:
            value = float(self._const(n.input[2]).ravel()[0])
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or value != 0 or min(pads) < 0:
            raise self.fail(f"pads {pads} value {value} (only zeros on H and W)")
        pad = (pads[2], pads[3], pads[6], pads[7])
        if v.pad is not None:
            pad = tuple(a + b for a, b in zip(pad, v.pad, strict=True))
        self._set(n, Value(v.layer, pad=pad))

    # -- elementwise arithmetic: two tensors (Add) or a tensor and a constant
    def _Add(self, n) -> None:
        self._arith(n)

    def _Sub(self, n) -> None:
        self._arith(n)

    def _Mul(self, n) -> None:
        self._arith(n)

    def _Div(self, n) -> None:
        self._arith(n)

    def _arith(self, n) -> None:
        a, b = n.input[0], n.input[1]
        if a in self.consts and b in self.consts:
            raise self.fail("arithmetic on two constants (fold constants before exporting)")
        if a not in self.consts and b not in self.consts:
            if n.op_type != "Add":
                raise self.fail("elementwise product or quotient of two tensors")
            va, vb = self._val(a), self._val(b)
            if self.b.shapes[va.layer] != self.b.shapes[vb.layer] or va.chw != vb.chw:
                raise self.fail("broadcasting addition (only tensors of one shape)")
            self._set(n, Value(self._add("add", [va.layer, vb.layer]), va.flat, va.chw))
            return
        const_first = a in self.consts
        x, c = (b, self.consts[a]) if const_first else (a, self.consts[b])
        if const_first and n.op_type in ("Sub", "Div"):
            raise self.fail("a constant minus or divided by a tensor")
        v = self._val(x)
        c = self._per_channel(c.astype(np.float64), v)
        if n.op_type == "Sub":
            c = -c
        elif n.op_type == "Div":
            c = 1 / c
        if v.layer == "input" and len(self.consumers.get(x, [])) == 1:
            self._fold_into_preprocessing(n.op_type in ("Mul", "Div"), c)
            self._set(n, Value("input"))
            return
        scale = n.op_type in ("Mul", "Div")
        weights = {"scale": c} if scale else {"bias": c}
        name = self._add("scale_bias", [v.layer], weights, scale=scale, bias=not scale)
        self._set(n, Value(name, v.flat, v.chw))

    def _per_channel(self, c: np.ndarray, v: Value) -> np.ndarray:
        """A constant that broadcasts per channel (or is one value) → one value per channel."""
        ch = self.b.shapes[v.layer][2]
        if c.size == 1:
            return np.full(ch, c.ravel()[0])
        if v.flat:
            if c.size != ch or c.squeeze().ndim != 1:
                raise self.fail(f"constant of shape {c.shape} (one per feature or one in all)")
            if v.chw is not None:  # features in C, H, W order → H, W, C
                c = c.reshape(v.chw).transpose(1, 2, 0)
            return c.reshape(-1)
        shape = (1,) * (4 - c.ndim) + c.shape
        if c.ndim > 4 or shape[0] != 1 or shape[1] != ch or shape[2:] != (1, 1):
            raise self.fail(f"constant of shape {c.shape} (only per channel: (C, 1, 1))")
        return c.reshape(-1)

    def _fold_into_preprocessing(self, scale: bool, c: np.ndarray) -> None:
        """x' = x * c or x' = x + c on the input: fold into (pixel - mean) / std."""
        p = self.pre
        if len(c) != 3:
            raise self.fail("input arithmetic on an input without 3 channels")
        mean, std = np.array(p.mean), np.array(p.std)
        if scale:
            std = std / c
        else:
            mean = mean - c * std
        self.pre = dataclasses.replace(p, mean=tuple(mean), std=tuple(std))
