"""TensorFlow Lite flatbuffers (``.tflite``) → Graph, float or uint8/int8 quantized.

Reads the file with the ``tflite`` package (the flatbuffer schema; the tflite extra).
Quantized models become float graphs: weights are dequantized ((q - zero_point) * scale, per
tensor or per output channel), int32 biases with their own scale (= input_scale * weight_scale),
and the input quantization becomes the preprocessing: a uint8 pixel p is the real value
(p - zero_point) * scale, i.e. pixel_range (0, 255), mean zero_point, std 1 / scale.
A float graph differs slightly from LiteRT's integer arithmetic, which requantizes every
activation; ``fake_quant=True`` models that rounding with ``fake_quant`` layers.

Supported operators: CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D,
FULLY_CONNECTED, RESHAPE, SQUEEZE (to a flat vector), SOFTMAX (beta 1), ADD, CONCATENATION
(channels), PAD (folded into the next convolution), MEAN (over H and W), QUANTIZE,
DEQUANTIZE; fused activations NONE, RELU, RELU6. TF "SAME" padding puts the odd extra row and
column on the bottom/right. Schema: tensorflow/compiler/mlir/lite/schema/schema.fbs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ...core.build import Build
from ...core.graph import Graph, Preprocessing
from ...errors import ModelFileError, require
from . import UnsupportedModelError, unsupported
from ._build import default_labels, same_padding

# TensorType enum values → numpy dtypes (schema.fbs)
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16,
          9: np.int8}
FUSED = {0: None, 1: "relu", 3: "relu6"}  # ActivationFunctionType NONE, RELU, RELU6
FUSED_NAMES = {2: "RELU_N1_TO_1", 4: "TANH", 5: "SIGN_BIT"}
SAME, VALID = 0, 1
SUPPORTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "FULLY_CONNECTED",
             "RESHAPE", "SQUEEZE", "SOFTMAX", "ADD", "CONCATENATION", "PAD", "MEAN", "QUANTIZE",
             "DEQUANTIZE"}


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: type
    scale: np.ndarray | None = None  # quantization scale(s), None when not quantized
    zero_point: np.ndarray | None = None
    qdim: int = 0  # the axis of per-channel scales
    data: np.ndarray | None = None  # constant contents (raw, not dequantized)

    def dequantized(self) -> np.ndarray:
        """The constant as float32: (q - zero_point) * scale, along ``qdim`` if per channel."""
        q = self.data.astype(np.float64)
        if self.scale is None or self.dtype in (np.float32, np.float16):
            return q.astype(np.float32)
        shape = [1] * q.ndim
        if self.scale.size > 1:
            shape[self.qdim] = -1
        zp = self.zero_point if self.zero_point is not None else np.zeros(1)
        return ((q - zp.reshape(shape)) * self.scale.reshape(shape)).astype(np.float32)


@dataclass
class Op:
    index: int
    type: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


def import_tflite(path: str | os.PathLike, fake_quant: bool = False,
                  as_float: bool = False) -> Graph:
    """Read a ``.tflite`` file into a Graph: a quantized model becomes an integer graph
    (importers/tflite_int.py) unless ``as_float`` or ``fake_quant``; a float model a float
    graph (see the module docstring)."""
    from .tflite_int import IntImporter, is_quantized

    path = os.fspath(path)
    tensors, ops, inputs, outputs = read_model(path)
    problems = [p for op in ops if (p := _check(op, tensors))]
    if problems:
        raise unsupported(path, problems)
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedModelError(f"{path}: edgecnn imports models with one input and one "
                                    f"output, this one has {len(inputs)} and {len(outputs)}")
    integer = not (as_float or fake_quant) and is_quantized(tensors, ops)
    importer = IntImporter if integer else _Importer
    try:
        return importer(path, tensors, fake_quant).build(ops, inputs[0], outputs[0])
    except (KeyError, IndexError) as e:  # an operator missing its options or operands
        raise ModelFileError(f"{path}: an operator's options or operands are missing or "
                             f"inconsistent ({type(e).__name__}: {e}); the file is "
                             "corrupt") from None


# ---- reading the flatbuffer -------------------------------------------------------------------

def read_model(path: str) -> tuple[list[Tensor], list[Op], list[int], list[int]]:
    """Tensors, operators, input and output tensor indices of the first subgraph."""
    tfl = require("tflite", "tflite")
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelFileError(f"{path}: not a TensorFlow Lite model (no 'TFL3' identifier)")
    try:
        model = tfl.Model.GetRootAs(buf, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        sg = model.Subgraphs(0)
        names = _opcode_names(tfl)
        tensors = [_read_tensor(model, sg.Tensors(i), buf) for i in range(sg.TensorsLength())]
        ops = [_read_op(model, sg.Operators(i), i, names) for i in range(sg.OperatorsLength())]
        inputs = [int(i) for i in sg.InputsAsNumpy()]
        outputs = [int(i) for i in sg.OutputsAsNumpy()]
    except ModelFileError:
        raise
    except Exception as e:  # a truncated or corrupt flatbuffer fails anywhere while parsing
        raise ModelFileError(f"{path}: the TensorFlow Lite file is truncated or corrupt "
                             f"({type(e).__name__}: {e})") from None
    return tensors, ops, inputs, outputs


def _opcode_names(tfl) -> dict[int, str]:
    return {v: k for k, v in vars(tfl.BuiltinOperator).items()
            if not k.startswith("_") and isinstance(v, int)}


def _read_tensor(model, t, buf: bytes) -> Tensor:
    name = t.Name().decode("utf-8", "replace")
    shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    dtype = DTYPES.get(t.Type())
    scale = zp = None
    qdim = 0
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        scale = q.ScaleAsNumpy().astype(np.float64)
        zp = q.ZeroPointAsNumpy().astype(np.float64) if q.ZeroPointLength() else None
        qdim = q.QuantizedDimension()
    data = None
    b = model.Buffers(t.Buffer())
    raw = None
    if b is not None and b.DataLength() > 0:
        raw = b.DataAsNumpy().tobytes()
    elif b is not None and b.Offset() > 1:  # data stored after the flatbuffer (large models)
        raw = buf[b.Offset():b.Offset() + b.Size()]
    if raw is not None:
        if dtype is None:
            raise ValueError(f"tensor {name!r} has unsupported type {t.Type()}")
        n = int(np.prod(shape, dtype=np.int64))
        if len(raw) != n * np.dtype(dtype).itemsize:
            raise ValueError(f"tensor {name!r} holds {len(raw)} bytes, its shape {shape} needs "
                             f"{n * np.dtype(dtype).itemsize}")
        data = np.frombuffer(raw, dtype=dtype).reshape(shape)
    return Tensor(name, shape, dtype, scale, zp, qdim, data)


def _read_op(model, op, index: int, names: dict[int, str]) -> Op:
    oc = model.OperatorCodes(op.OpcodeIndex())
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    name = names.get(code, f"builtin code {code}")
    if name == "CUSTOM":
        name = f"CUSTOM {oc.CustomCode().decode('utf-8', 'replace')}"
    ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
    outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
    return Op(index, name, ins, outs, _read_options(op, name))


def _read_options(op, name: str) -> dict:
    import tflite

    table = op.BuiltinOptions()
    if table is None:
        return {}
    cls, fields = {
        "CONV_2D": (tflite.Conv2DOptions, ("Padding", "StrideH", "StrideW", "DilationHFactor",
                                           "DilationWFactor", "FusedActivationFunction")),
        "DEPTHWISE_CONV_2D": (tflite.DepthwiseConv2DOptions,
                              ("Padding", "StrideH", "StrideW", "DilationHFactor",
                               "DilationWFactor", "DepthMultiplier", "FusedActivationFunction")),
        "AVERAGE_POOL_2D": (tflite.Pool2DOptions, ("Padding", "StrideH", "StrideW",
                                                   "FilterHeight", "FilterWidth",
                                                   "FusedActivationFunction")),
        "MAX_POOL_2D": (tflite.Pool2DOptions, ("Padding", "StrideH", "StrideW", "FilterHeight",
                                               "FilterWidth", "FusedActivationFunction")),
        "FULLY_CONNECTED": (tflite.FullyConnectedOptions, ("FusedActivationFunction",
                                                           "WeightsFormat")),
        "SOFTMAX": (tflite.SoftmaxOptions, ("Beta",)),
        "ADD": (tflite.AddOptions, ("FusedActivationFunction",)),
        "CONCATENATION": (tflite.ConcatenationOptions, ("Axis", "FusedActivationFunction")),
        "MEAN": (tflite.ReducerOptions, ("KeepDims",)),
    }.get(name, (None, ()))
    if cls is None:
        return {}
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return {f: getattr(opts, f)() for f in fields}


# ---- what is supported ------------------------------------------------------------------------

def _check(op: Op, tensors: list[Tensor]) -> str | None:
    """None if the operator can be imported, else a line naming it and the reason."""
    out = tensors[op.outputs[0]].name if op.outputs else "?"
    where = f"operator #{op.index} {op.type} (output {out!r})"
    if op.type not in SUPPORTED:
        return where
    o = op.options
    act = o.get("FusedActivationFunction", 0)
    if act not in FUSED:
        return f"{where}: fused activation {FUSED_NAMES.get(act, act)}"
    if op.type == "SOFTMAX" and abs(o.get("Beta", 1.0) - 1.0) > 1e-6:
        return f"{where}: beta {o['Beta']} (only 1)"
    if op.type == "CONCATENATION" and o.get("Axis") not in (3, -1):
        return f"{where}: axis {o.get('Axis')} (only the channel axis)"
    if op.type == "FULLY_CONNECTED" and o.get("WeightsFormat", 0) != 0:
        return f"{where}: shuffled weights format"
    if op.type == "MEAN":
        axes = tensors[op.inputs[1]].data
        if axes is None or sorted(int(a) % 4 for a in axes.ravel()) != [1, 2]:
            return f"{where}: only a mean over height and width"
    if op.type == "PAD":
        pads = tensors[op.inputs[1]].data
        if pads is None or pads.shape != (4, 2) or pads[0].any() or pads[3].any():
            return f"{where}: only constant spatial padding"
    if op.type == "ADD" and any(tensors[i].data is not None for i in op.inputs):
        return f"{where}: adding a constant"
    return None


# ---- building the graph -----------------------------------------------------------------------

class _Importer:
    """TFLite operators → layers of one :class:`Build`, a method per operator; tracks which
    layer holds each tensor, PADs waiting to be folded and constants made by DEQUANTIZE."""

    def __init__(self, path: str, tensors: list[Tensor], fake_quant: bool):
        self.path = path
        self.t = tensors
        self.fake_quant = fake_quant
        self.b: Build  # made by start(), once the input is known
        self.src: dict[int, str] = {}  # tensor index → the layer holding it
        self.pad: dict[int, tuple[int, int, int, int]] = {}  # pending PAD of a tensor
        self.consts: dict[int, np.ndarray] = {}  # float constants made by DEQUANTIZE

    def build(self, ops: list[Op], input_index: int, output_index: int) -> Graph:
        tin = self.start(input_index)
        for op in ops:
            getattr(self, "_op_" + op.type.lower())(op)
        self.check_output(output_index)
        return self.b.graph(self.name, self._preprocessing(tin),
                            default_labels(self.t[output_index].shape[-1]), self._meta(tin),
                            self.path)

    # -- helpers
    @property
    def name(self) -> str:
        return os.path.splitext(os.path.basename(self.path))[0]

    def start(self, input_index: int) -> Tensor:
        """The builder, with the model's input (1, H, W, C) as the layer "input"."""
        tin = self.t[input_index]
        if len(tin.shape) != 4 or tin.shape[0] != 1:
            raise UnsupportedModelError(f"{self.path}: input {tin.name!r} has shape "
                                        f"{tin.shape}; edgecnn imports image inputs (1, H, W, C)")
        self.b = Build(tin.shape[1:])
        self.src[input_index] = "input"  # uint8 pixels are on the input's grid already
        return tin

    def check_output(self, output_index: int) -> None:
        if self.src.get(output_index) != self.b.last:
            raise UnsupportedModelError(f"{self.path}: the model's output is not its last "
                                        "operator's result")

    def _input(self, idx: int) -> str:
        if idx in self.pad:
            raise UnsupportedModelError(f"{self.path}: tensor {self.t[idx].name!r} is padded by "
                                        "PAD and read by an operator that cannot absorb it")
        return self.src[idx]

    def _const(self, idx: int) -> np.ndarray:
        if idx in self.consts:
            return self.consts[idx]
        t = self.t[idx]
        if t.data is None:
            raise UnsupportedModelError(f"{self.path}: tensor {t.name!r} must be a constant")
        return t.dequantized()

    def _bias(self, op: Op, units: int) -> np.ndarray:
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            return np.zeros(units, np.float32)
        t = self.t[op.inputs[2]]
        if t.dtype == np.int32 and t.scale is None:  # scale implied: input_scale * weight_scale
            scale = self.t[op.inputs[0]].scale * self.t[op.inputs[1]].scale
            return (t.data * scale).astype(np.float32)
        return self._const(op.inputs[2])

    def _finish(self, op: Op, name: str) -> None:
        """Fused activation, then (optionally) the output's requantization."""
        act = FUSED[op.options.get("FusedActivationFunction", 0)]
        if act is not None:
            name = self.b.add("activation", f"{name}_{act}", [name], function=act)
        self.src[op.outputs[0]] = name
        self._quantize_output(op.outputs[0])

    def _quantize_output(self, idx: int) -> None:
        t = self.t[idx]
        if not self.fake_quant or t.scale is None or t.dtype not in (np.uint8, np.int8):
            return
        lo, hi = (0, 255) if t.dtype == np.uint8 else (-128, 127)
        name = self.b.add("fake_quant", f"{self.src[idx]}_q", [self.src[idx]],
                          scale=float(t.scale[0]), zero_point=int(t.zero_point[0]), qmin=lo,
                          qmax=hi)
        self.src[idx] = name

    def _spatial_padding(self, op: Op, k: tuple[int, int], s: tuple[int, int],
                         d: tuple[int, int] = (1, 1)) -> tuple[int, int, int, int]:
        _, h, w, _ = self.t[op.inputs[0]].shape
        if op.options["Padding"] == SAME:
            t, b = same_padding(h, k[0], s[0], d[0])
            l, r = same_padding(w, k[1], s[1], d[1])
            return (t, l, b, r)
        return (0, 0, 0, 0)

    def _take_pad(self, idx: int, pad: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        extra = self.pad.pop(idx, (0, 0, 0, 0))
        return tuple(a + b for a, b in zip(pad, extra, strict=True))

    # -- operators
    def _op_conv_2d(self, op: Op) -> None:
        w = self._const(op.inputs[1])  # (O, kh, kw, I)
        o = op.options
        k, s, d = w.shape[1:3], (o["StrideH"], o["StrideW"]), (o["DilationHFactor"],
                                                                o["DilationWFactor"])
        cin = self.t[op.inputs[0]].shape[3]
        groups = cin // w.shape[3]
        pad = self._take_pad(op.inputs[0], self._spatial_padding(op, k, s, d))
        weights = {"weight": w.transpose(0, 3, 1, 2), "bias": self._bias(op, w.shape[0])}
        name = self.b.add("conv2d", self._raw(op), [self.src[op.inputs[0]]], weights,
                          filters=w.shape[0], kernel=k, stride=s, padding=pad, dilation=d,
                          groups=groups)
        self._finish(op, name)

    def _op_depthwise_conv_2d(self, op: Op) -> None:
        w = self._const(op.inputs[1])  # (1, kh, kw, C * multiplier); channel o reads o // mult
        o = op.options
        k, s, d = w.shape[1:3], (o["StrideH"], o["StrideW"]), (o["DilationHFactor"],
                                                                o["DilationWFactor"])
        cin = self.t[op.inputs[0]].shape[3]
        pad = self._take_pad(op.inputs[0], self._spatial_padding(op, k, s, d))
        weights = {"weight": w[0].transpose(2, 0, 1)[:, None], "bias": self._bias(op, w.shape[3])}
        name = self.b.add("conv2d", self._raw(op), [self.src[op.inputs[0]]], weights,
                          filters=w.shape[3], kernel=k, stride=s, padding=pad, dilation=d,
                          groups=cin)
        self._finish(op, name)

    def _pool(self, op: Op, kind: str) -> None:
        o = op.options
        k, s = (o["FilterHeight"], o["FilterWidth"]), (o["StrideH"], o["StrideW"])
        _, h, w, _ = self.t[op.inputs[0]].shape
        src = self._input(op.inputs[0])
        if kind == "avgpool" and k == (h, w) and o["Padding"] == VALID:
            name = self.b.add("global_avgpool", self._raw(op), [src])
        else:
            name = self.b.add(kind, self._raw(op), [src], kernel=k, stride=s,
                              padding=self._spatial_padding(op, k, s))
        self._finish(op, name)

    def _op_average_pool_2d(self, op: Op) -> None:
        self._pool(op, "avgpool")

    def _op_max_pool_2d(self, op: Op) -> None:
        self._pool(op, "maxpool")

    def _op_fully_connected(self, op: Op) -> None:
        w = self._const(op.inputs[1])  # (units, in), the input flattened in NHWC = H, W, C order
        src = self._input(op.inputs[0])
        name = self.b.add("dense", self._raw(op), [src],
                          {"weight": w, "bias": self._bias(op, w.shape[0])}, units=w.shape[0])
        self._finish(op, name)

    def _op_reshape(self, op: Op) -> None:
        src, shape = self.t[op.inputs[0]], self.t[op.outputs[0]].shape
        total = int(np.prod(src.shape))
        if shape[-1] != total // max(src.shape[0], 1) or int(np.prod(shape[:-1])) != src.shape[0]:
            raise UnsupportedModelError(f"{self.path}: operator #{op.index} {op.type} to shape "
                                        f"{shape}: only flattening to (N, features) is supported")
        name = self._input(op.inputs[0])
        if len(src.shape) == 4 and src.shape[1:3] != (1, 1):
            name = self.b.add("flatten", self._raw(op), [name])
        self.src[op.outputs[0]] = name

    _op_squeeze = _op_reshape

    def _op_softmax(self, op: Op) -> None:
        self._finish(op, self.b.add("softmax", self._raw(op), [self._input(op.inputs[0])]))

    def _op_add(self, op: Op) -> None:
        ins = [self._input(i) for i in op.inputs]
        self._finish(op, self.b.add("add", self._raw(op), ins))

    def _op_concatenation(self, op: Op) -> None:
        ins = [self._input(i) for i in op.inputs]
        self._finish(op, self.b.add("concat", self._raw(op), ins))

    def _op_pad(self, op: Op) -> None:
        p = self.t[op.inputs[1]].data  # [[0, 0], [top, bottom], [left, right], [0, 0]]
        self.src[op.outputs[0]] = self._input(op.inputs[0])
        self.pad[op.outputs[0]] = (int(p[1, 0]), int(p[2, 0]), int(p[1, 1]), int(p[2, 1]))

    def _op_mean(self, op: Op) -> None:
        name = self.b.add("global_avgpool", self._raw(op), [self._input(op.inputs[0])])
        self._finish(op, name)

    def _op_quantize(self, op: Op) -> None:
        self.src[op.outputs[0]] = self._input(op.inputs[0])
        self._quantize_output(op.outputs[0])

    def _op_dequantize(self, op: Op) -> None:
        if self.t[op.inputs[0]].data is not None:  # a float16 / int8 weight made float
            self.consts[op.outputs[0]] = self.t[op.inputs[0]].dequantized()
        else:
            self.src[op.outputs[0]] = self._input(op.inputs[0])

    def _raw(self, op: Op) -> str:
        """A readable layer name from the output tensor's name (its last two scopes)."""
        name = self.t[op.outputs[0]].name.split(";")[0]
        return ".".join(name.split("/")[-3:-1]) or op.type.lower()

    # -- preprocessing and labels
    def _preprocessing(self, tin: Tensor) -> Preprocessing:
        base = dict(channel_order="RGB", resize="center_crop", crop_fraction=0.875,
                    interpolation="bilinear")
        if tin.scale is None:  # float input: the TF-slim convention maps pixels to [-1, 1]
            return Preprocessing(pixel_range=(-1.0, 1.0), **base)
        scale, zp = float(tin.scale[0]), float(tin.zero_point[0])
        if tin.dtype == np.int8:  # an int8 input is the uint8 pixel minus 128
            zp += 128
        return Preprocessing(pixel_range=(0.0, 255.0), mean=(zp,) * 3, std=(1 / scale,) * 3,
                             **base)

    def _meta(self, tin: Tensor) -> dict:
        meta: dict = {"source": {"format": "tflite", "file": os.path.basename(self.path)}}
        notes = []
        if tin.scale is None:
            notes.append("float input: preprocessing assumed to be TF-slim's [-1, 1] range")
        if self.fake_quant:
            notes.append("activations fake-quantized to their uint8/int8 grid as in LiteRT")
        if notes:
            meta["notes"] = notes
        return meta

