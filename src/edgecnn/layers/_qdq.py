"""ONNX export of the integer kinds as QDQ: DequantizeLinear → the float operator →
QuantizeLinear, the form ONNX Runtime fuses into its integer kernels (QLinearConv, QLinearAdd...).

Integer values stay uint8/int8 tensors between layers (NCHW, like every exported value); each
integer layer dequantizes its inputs, runs the float operator, clamps to its fused activation's
real range and quantizes with its output scale and zero point. Weights stay 8-bit (per-channel
scales on axis 0) and biases int32 with scale input scale x weight scale, so ONNX Runtime sees
the standard quantized-convolution pattern. ONNX rounds half to even where TFLite rounds half
away from zero, and ONNX Runtime requantizes in float: its results may differ from edgecnn's
(and LiteRT's) by a step; the benchmarks report the agreement.
"""

from __future__ import annotations

import numpy as np

from .. import quant

_NP = {"uint8": np.uint8, "int8": np.int8, "int32": np.int32}


def value_dtype(graph, name: str) -> str:
    """uint8 or int8: the type of integer value ``name`` (through shape-only layers)."""
    layer = graph.layer(name)
    while "dtype" not in layer.attrs:
        layer = graph.layer(layer.inputs[0])
    return layer.attrs["dtype"]


def dequantize(b, l, x: str, scale, zero_point, dtype: str, what: str, axis: int | None = None,
               name: str | None = None) -> str:
    """DequantizeLinear of value ``x`` (scale/zero point: scalars, or 1-D along ``axis``)."""
    s = np.asarray(scale, np.float32)
    z = np.asarray(zero_point).astype(_NP[dtype])
    out = name or b.tmp(l, f"{what}_dq")
    args = [x, b.const(f"{l.name}/{what}_scale", s), b.const(f"{l.name}/{what}_zp", z)]
    b.node("DequantizeLinear", args, [out], l.name, **({"axis": axis} if s.ndim else {}))
    return out


def quantize(b, l, y: str, scale: float, zero_point: int, dtype: str, out: str) -> str:
    """QuantizeLinear of float value ``y`` into ``out`` (dtype from the zero point's type)."""
    args = [y, b.const(f"{l.name}/out_scale", np.float32(scale)),
            b.const(f"{l.name}/out_zp", np.asarray(zero_point).astype(_NP[dtype]))]
    b.node("QuantizeLinear", args, [out], l.name)
    return out


def clamp(b, l, y: str, a: dict) -> str:
    """The fused activation (``act_min``..``act_max`` on the output grid) as a float Clip, when
    narrower than the type's range (which QuantizeLinear saturates to anyway)."""
    lo, hi = quant.qrange(a["dtype"])
    if a["act_min"] == lo and a["act_max"] == hi:
        return y
    s, z = np.float32(a["output_scale"]), a["output_zero_point"]
    out = b.tmp(l, "clip")
    b.node("Clip", [y, b.const(f"{l.name}/min", np.float32((a["act_min"] - z) * s)),
                    b.const(f"{l.name}/max", np.float32((a["act_max"] - z) * s))], [out], l.name)
    return out


def weights(b, l, a: dict, wt: np.ndarray) -> tuple[str, str]:
    """(weight, bias) dequantized: 8-bit weights per channel (axis 0) or per tensor, int32 bias
    at input scale x weight scale."""
    g = b.graph.weights
    ws = np.asarray(g[f"{l.name}.weight_scale"], np.float32)
    wz = np.full(ws.shape, a["weight_zero_point"])
    axis = 0 if ws.size > 1 else None
    wname = b.const(f"{l.name}.weight", np.ascontiguousarray(wt))
    w = dequantize(b, l, wname, ws if axis is not None else ws[0],
                   wz if axis is not None else wz[0], a["dtype"], "weight", axis)
    bs = np.float32(a["input_scale"]) * ws
    bias = dequantize(b, l, b.const(f"{l.name}.bias", np.asarray(g[f"{l.name}.bias"], np.int32)),
                      bs if axis is not None else bs[0], np.zeros(bs.shape, np.int32)
                      if axis is not None else 0, "int32", "bias", axis)
    return w, bias
