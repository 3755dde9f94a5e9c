"""Quantized ``.tflite`` → an integer Graph that computes what LiteRT's reference kernels do.

The default import of uint8/int8 models (``import --float`` keeps the float graph of
tflite.py). Every tensor keeps its type and quantization: weights stay uint8 (legacy,
per-tensor) or int8 (per-channel), biases int32, and each operator becomes the integer layer
kind with TFLite's arithmetic (edgecnn.quant). The graph takes the same float input as the
float graph (the preprocessing is shared): a ``quantize`` layer makes it the model's input
tensor, and a ``dequantize`` layer makes the output tensor float (probabilities, for a softmax).

Integer operators: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D, MAX_POOL_2D,
ADD, CONCATENATION, SOFTMAX, RESHAPE/SQUEEZE (flattening), PAD (folded into a convolution),
QUANTIZE (float to int) and DEQUANTIZE (int to float); fused NONE, RELU, RELU6.
"""

from __future__ import annotations

import numpy as np

from ... import quant
from ...core.graph import Graph
from . import UnsupportedModelError
from ._build import default_labels
from .tflite import FUSED, VALID, Op, Tensor, _Importer

INT_TYPES = {np.uint8: "uint8", np.int8: "int8"}


def is_quantized(tensors: list[Tensor], ops: list[Op]) -> bool:
    """Does any operator compute on uint8/int8 activations?"""
    return any(tensors[i].dtype in INT_TYPES and tensors[i].data is None and
               tensors[i].scale is not None for op in ops for i in op.outputs)


class IntImporter(_Importer):
    """Makes the integer graph; the tensor bookkeeping is the float importer's."""

    def build(self, ops: list[Op], input_index: int, output_index: int) -> Graph:
        tin = self.start(input_index)
        if tin.dtype in INT_TYPES:  # the float input (preprocessed image) → the input tensor
            s, z, dtype = self.q(input_index)
            self.src[input_index] = self.b.add("quantize", "quantize_input", ["input"],
                                               dtype=dtype, scale=s, zero_point=z)
        for op in ops:
            getattr(self, "_op_" + op.type.lower())(op)
        self.check_output(output_index)
        probabilities = self.b.layers[-1].kind == "qsoftmax"
        if self.t[output_index].dtype in INT_TYPES:
            s, z, _ = self.q(output_index)
            self.b.add("dequantize", "dequantize_output", [self.b.last], scale=s, zero_point=z)
        meta = self._meta(tin)
        if probabilities:  # a dequantized softmax: classify must not apply another
            meta["output"] = "probabilities"
        meta.setdefault("notes", []).append(
            "integer graph: computes as LiteRT's reference (BUILTIN_REF) kernels")
        return self.b.graph(self.name, self._preprocessing(tin),
                            default_labels(self.t[output_index].shape[-1]), meta, self.path)

    # -- quantization of one tensor
    def q(self, idx: int) -> tuple[float, int, str]:
        t = self.t[idx]
        if t.dtype not in INT_TYPES or t.scale is None or t.scale.size != 1:
            raise UnsupportedModelError(f"{self.path}: tensor {t.name!r} ({t.dtype.__name__}) "
                                        "is not a per-tensor uint8/int8 activation; import "
                                        "with --float")
        zp = int(t.zero_point[0]) if t.zero_point is not None else 0
        return float(np.float32(t.scale[0])), zp, INT_TYPES[t.dtype]

    def qattrs(self, op: Op) -> dict:
        si, zi, dtype = self.q(op.inputs[0])
        so, zo, dtype_out = self.q(op.outputs[0])
        if dtype_out != dtype:
            raise UnsupportedModelError(f"{self.path}: operator #{op.index} {op.type} turns "
                                        f"{dtype} into {dtype_out}; import with --float")
        act = FUSED[op.options.get("FusedActivationFunction", 0)]
        lo, hi = quant.activation_range(act, so, zo, dtype)
        return dict(dtype=dtype, input_scale=si, input_zero_point=zi, output_scale=so,
                    output_zero_point=zo, act_min=lo, act_max=hi)

    def weights_of(self, op: Op, w: np.ndarray, axis_scales: np.ndarray,
                   legacy: bool) -> tuple[dict, dict]:
        """The layer's weight, bias and requantization tensors, and its extra attrs."""
        wt = self.t[op.inputs[1]]
        a = self.qattrs(op)
        if INT_TYPES.get(wt.dtype) != a["dtype"]:
            raise UnsupportedModelError(f"{self.path}: operator #{op.index} {op.type}: "
                                        f"{wt.dtype.__name__} weights with {a['dtype']} "
                                        "activations; import with --float")
        zps = wt.zero_point if wt.zero_point is not None else np.zeros(1)
        per_channel = axis_scales.size > 1
        if per_channel and np.any(zps != 0):
            raise UnsupportedModelError(f"{self.path}: {wt.name!r}: per-channel weights must be "
                                        "symmetric (zero point 0)")
        bias = self.int_bias(op, w.shape[0])
        m, e = quant.conv_multipliers(a["input_scale"], axis_scales, a["output_scale"], legacy)
        weights = {"weight": w, "bias": bias, "weight_scale": axis_scales.astype(np.float32),
                   "multiplier": m, "shift": e}
        return weights, {"weight_zero_point": int(zps[0]), "per_channel": per_channel}

    def int_bias(self, op: Op, units: int) -> np.ndarray:
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            return np.zeros(units, np.int32)
        b = self.t[op.inputs[2]]
        if b.dtype != np.int32 or b.data is None:
            raise UnsupportedModelError(f"{self.path}: bias {b.name!r} must be a constant int32")
        return np.ascontiguousarray(b.data, np.int32)

    def finish(self, op: Op, name: str) -> None:
        self.src[op.outputs[0]] = name

    # -- operators
    def _op_conv_2d(self, op: Op) -> None:
        wt = self.t[op.inputs[1]]  # (O, kh, kw, I), raw integers
        w = wt.data
        o = op.options
        k, s = w.shape[1:3], (o["StrideH"], o["StrideW"])
        d = (o["DilationHFactor"], o["DilationWFactor"])
        cin = self.t[op.inputs[0]].shape[3]
        pad = self._take_pad(op.inputs[0], self._spatial_padding(op, k, s, d))
        a = self.qattrs(op)
        weights, extra = self.weights_of(op, w.transpose(0, 3, 1, 2), wt.scale,
                                         legacy=a["dtype"] == "uint8")
        name = self.b.add("qconv2d", self._raw(op), [self.src[op.inputs[0]]], weights,
                          filters=w.shape[0], kernel=k, stride=s, padding=pad, dilation=d,
                          groups=cin // w.shape[3], **a, **extra)
        self.finish(op, name)

    def _op_depthwise_conv_2d(self, op: Op) -> None:
        wt = self.t[op.inputs[1]]  # (1, kh, kw, C * multiplier)
        w = wt.data
        o = op.options
        k, s = w.shape[1:3], (o["StrideH"], o["StrideW"])
        d = (o["DilationHFactor"], o["DilationWFactor"])
        cin = self.t[op.inputs[0]].shape[3]
        pad = self._take_pad(op.inputs[0], self._spatial_padding(op, k, s, d))
        a = self.qattrs(op)
        weights, extra = self.weights_of(op, w[0].transpose(2, 0, 1)[:, None], wt.scale,
                                         legacy=a["dtype"] == "uint8")
        name = self.b.add("qconv2d", self._raw(op), [self.src[op.inputs[0]]], weights,
                          filters=w.shape[3], kernel=k, stride=s, padding=pad, dilation=d,
                          groups=cin, **a, **extra)
        self.finish(op, name)

    def _op_fully_connected(self, op: Op) -> None:
        wt = self.t[op.inputs[1]]  # (units, in)
        a = self.qattrs(op)
        src = self._input(op.inputs[0])
        weights, extra = self.weights_of(op, wt.data, wt.scale, legacy=wt.scale.size == 1)
        name = self.b.add("qdense", self._raw(op), [src], weights, units=wt.data.shape[0], **a,
                          **extra)
        self.finish(op, name)

    def _pool(self, op: Op, kind: str) -> None:
        o = op.options
        k, s = (o["FilterHeight"], o["FilterWidth"]), (o["StrideH"], o["StrideW"])
        a = self.qattrs(op)
        if (a["input_scale"], a["input_zero_point"]) != (a["output_scale"],
                                                          a["output_zero_point"]):
            raise UnsupportedModelError(f"{self.path}: operator #{op.index} {op.type}: input and "
                                        "output quantization differ; import with --float")
        pad = (0, 0, 0, 0) if o["Padding"] == VALID else self._spatial_padding(op, k, s)
        name = self.b.add("q" + kind, self._raw(op), [self._input(op.inputs[0])], kernel=k,
                          stride=s, padding=pad, dtype=a["dtype"], scale=a["output_scale"],
                          zero_point=a["output_zero_point"], act_min=a["act_min"],
                          act_max=a["act_max"])
        self.finish(op, name)

    def _op_softmax(self, op: Op) -> None:
        si, _, dtype = self.q(op.inputs[0])
        so, zo, _ = self.q(op.outputs[0])
        lo, _ = quant.qrange(dtype)
        if abs(so - 1 / 256) > 1e-9 or zo != lo:
            raise UnsupportedModelError(f"{self.path}: operator #{op.index} SOFTMAX: output "
                                        f"scale {so} / zero point {zo}, TFLite needs 1/256, {lo}")
        beta = float(op.options.get("Beta", 1.0))
        name = self.b.add("qsoftmax", self._raw(op), [self._input(op.inputs[0])], dtype=dtype,
                          input_scale=si, beta=beta, **quant.softmax_params(si, beta))
        self.finish(op, name)

    def _op_add(self, op: Op) -> None:
        s1, z1, dtype = self.q(op.inputs[0])
        s2, z2, _ = self.q(op.inputs[1])
        a = self.qattrs(op)
        name = self.b.add("qadd", self._raw(op), [self._input(i) for i in op.inputs],
                          dtype=dtype, input1_scale=s1, input1_zero_point=z1, input2_scale=s2,
                          input2_zero_point=z2, output_scale=a["output_scale"],
                          output_zero_point=a["output_zero_point"], act_min=a["act_min"],
                          act_max=a["act_max"], **quant.add_params(s1, s2, a["output_scale"]))
        self.finish(op, name)

    def _op_concatenation(self, op: Op) -> None:
        if FUSED[op.options.get("FusedActivationFunction", 0)] is not None:
            raise UnsupportedModelError(f"{self.path}: operator #{op.index} CONCATENATION with "
                                        "a fused activation; import with --float")
        so, zo, dtype = self.q(op.outputs[0])
        qs = [self.q(i) for i in op.inputs]
        weights = {"input_scale": np.array([s for s, _, _ in qs], np.float32),
                   "input_zero_point": np.array([z for _, z, _ in qs], np.int32)}
        name = self.b.add("qconcat", self._raw(op), [self._input(i) for i in op.inputs],
                          weights, dtype=dtype, output_scale=so, output_zero_point=zo)
        self.finish(op, name)

    def _op_mean(self, op: Op) -> None:
        raise UnsupportedModelError(f"{self.path}: operator #{op.index} MEAN has no integer "
                                    "form in edgecnn yet; import with --float")

    def _op_quantize(self, op: Op) -> None:
        if self.t[op.inputs[0]].dtype in INT_TYPES:
            raise UnsupportedModelError(f"{self.path}: operator #{op.index} QUANTIZE between "
                                        "integer types (requantize) is not supported yet; "
                                        "import with --float")
        s, z, dtype = self.q(op.outputs[0])
        name = self.b.add("quantize", self._raw(op), [self._input(op.inputs[0])], dtype=dtype,
                          scale=s, zero_point=z)
        self.finish(op, name)

    def _op_dequantize(self, op: Op) -> None:
        if self.t[op.inputs[0]].data is not None:
            raise UnsupportedModelError(f"{self.path}: operator #{op.index} DEQUANTIZE of a "
                                        "constant (float weights); import with --float")
        s, z, _ = self.q(op.inputs[0])
        name = self.b.add("dequantize", self._raw(op), [self._input(op.inputs[0])], scale=s,
                          zero_point=z)
        self.finish(op, name)
