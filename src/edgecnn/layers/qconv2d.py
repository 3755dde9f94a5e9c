"""Integer 2-D convolution (grouped and depthwise included), TFLite's 8-bit rule.

acc[n, y, x, o] = bias[o] + sum_{i, ky, kx} (w[o, i, ky, kx] - weight_zero_point)
                  * (in_pad[n, y*sh + ky*dh, x*sw + kx*dw, g*cin_g + i] - input_zero_point)
out = clamp(requantize(acc, multiplier[o], shift[o]) + output_zero_point, act_min, act_max)

The input is padded with its zero point (real 0). Tensors: weight (C_out, C_in / groups, kh, kw)
int8 (symmetric, per channel) or uint8 (legacy, per tensor), bias int32 (scale = input scale x
weight scale), weight_scale float32 and the fixed-point multiplier / shift int32, one per
output channel or one for the layer (see edgecnn.quant for the arithmetic).
"""

import numpy as np

from .. import quant
from ..errors import GraphError
from .base import Attr, TensorSpec, pad_nhwc, register, windows
from .conv2d import Conv2d

# quantization attributes shared by the integer kinds that requantize
QATTRS = (
    Attr("dtype", "str", choices=("uint8", "int8"), doc="activation type"),
    Attr("input_scale", "float"),
    Attr("input_zero_point", "int"),
    Attr("output_scale", "float"),
    Attr("output_zero_point", "int"),
    Attr("act_min", "int", doc="fused activation clamp, on the output grid"),
    Attr("act_max", "int"),
)


def check_qattrs(a: dict) -> None:
    lo, hi = quant.qrange(a["dtype"])
    for key in ("input_zero_point", "output_zero_point"):
        if key in a and not lo <= a[key] <= hi:
            raise GraphError(f"{key} {a[key]} is outside the {a['dtype']} range {lo}..{hi}")
    for key in ("input_scale", "output_scale"):
        if key in a and not a[key] > 0:
            raise GraphError(f"{key} must be positive, got {a[key]}")
    if "act_min" in a and not lo <= a["act_min"] <= a["act_max"] <= hi:
        raise GraphError(f"activation clamp {a['act_min']}..{a['act_max']} is not inside "
                         f"{lo}..{hi}")


def int_spec(shape, role: str, dtype: str) -> TensorSpec:
    return TensorSpec(tuple(shape), role, "zeros", bits=np.dtype(dtype).itemsize * 8,
                      dtype=dtype)


def requant_specs(channels: int, per_channel: bool) -> dict[str, TensorSpec]:
    n = channels if per_channel else 1
    return {"weight_scale": TensorSpec((n,), "state", "ones"),
            "multiplier": int_spec((n,), "state", "int32"),
            "shift": int_spec((n,), "state", "int32")}


def requantize_acc(acc: np.ndarray, a: dict, w: dict) -> np.ndarray:
    """int accumulator (..., C_out) + bias → the output type (per-channel multipliers)."""
    return quant.requantize(acc + w["bias"].astype(np.int64), w["multiplier"], w["shift"],
                            a["output_zero_point"], a["act_min"], a["act_max"], a["dtype"])


C_SUFFIX = {"uint8": "u8", "int8": "i8"}


def c_qconv_params(op, geometry: tuple) -> str:
    """The ``ec_qconv_params`` initializer (ec_conv.h) of a qconv2d or qdense op; ``geometry``
    is (h, w, c, oh, ow, o, kh, kw, sh, sw, dh, dw, pad_top, pad_left, groups)."""
    a = op.attrs
    fields = (*geometry, int(a["per_channel"]), a["input_zero_point"], a["weight_zero_point"],
              a["output_zero_point"], a["act_min"], a["act_max"])
    return "{" + ", ".join(map(str, fields)) + "}"


def c_qconv_call(op, c, geometry: tuple) -> str:
    """``ec_qconv2d_<u8|i8>`` (ec_conv.h) for a qconv2d or qdense op (see c_qconv_params)."""
    a, w = op.attrs, op.weights
    args = ", ".join([c.ins[0], c.ptr(w["weight"]), c.ptr(w["bias"]), c.ptr(w["multiplier"]),
                      c.ptr(w["shift"]), c.out])
    return c.block(c_qconv_params(op, geometry),
                   f"ec_qconv2d_{C_SUFFIX[a['dtype']]}(&p, {args});", ctype="ec_qconv_params")


def exact_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Integer matrix product through float64 BLAS: exact, since every partial sum of 8-bit
    products stays below 2^53 (|x|, |w| <= 255, so up to 2^37 terms)."""
    return np.rint(x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)


@register
class QConv2d(Conv2d):
    kind = "qconv2d"
    title = "Convolution"
    integer = True
    attrs = (*Conv2d.attrs[:-1], *QATTRS, Attr("weight_zero_point", "int", 0),
             Attr("per_channel", "bool", True))

    def output_shape(self, a, ins):
        check_qattrs(a)
        return super().output_shape({**a, "bias": True}, ins)

    def tensors(self, a, ins):
        cin = ins[0][2] // a["groups"]
        wdtype = a["dtype"]
        return {"weight": int_spec((a["filters"], cin, *a["kernel"]), "weight", wdtype),
                "bias": int_spec((a["filters"],), "bias", "int32"),
                **requant_specs(a["filters"], a["per_channel"])}

    def describe(self, a):
        return f"{super().describe(a)}, {a['dtype']}"

    def to_onnx(self, b, l, ins, out):
        from . import _qdq
        from .conv2d import onnx_conv_attrs

        a = l.attrs
        x = _qdq.dequantize(b, l, ins[0], a["input_scale"], a["input_zero_point"], a["dtype"],
                            "x")
        w, bias = _qdq.weights(b, l, a, b.graph.weights[f"{l.name}.weight"])
        y = b.tmp(l, "conv")
        b.node("Conv", [x, w, bias], [y], l.name,
               **onnx_conv_attrs(a, a["dilation"], a["groups"]))
        return _qdq.quantize(b, l, _qdq.clamp(b, l, y, a), a["output_scale"],
                             a["output_zero_point"], a["dtype"], out)

    def to_torch(self, a, ins):
        raise NotImplementedError("integer kinds have no torch lowering")

    def c_geometry(self, op, c) -> tuple:
        """(h, w, c, oh, ow, o, kh, kw, sh, sw, dh, dw, pad_top, pad_left, groups)"""
        a = op.attrs
        t, l, _, _ = a["padding"]
        return (*c.shape(op.inputs[0]), *c.shape(op.output), *a["kernel"], *a["stride"],
                *a["dilation"], t, l, a["groups"])

    def c_call(self, op, c):
        return c_qconv_call(op, c, self.c_geometry(op, c))

    def forward(self, a, xs, w):
        x = pad_nhwc(xs[0].astype(np.int32) - a["input_zero_point"], a["padding"])
        n, _, _, c = x.shape
        oh, ow, co = self.output_shape(a, [(xs[0].shape[1], xs[0].shape[2], c)])
        wt = w["weight"].astype(np.int32) - a["weight_zero_point"]  # (O, I/g, kh, kw)
        g = a["groups"]
        if g == c and g > 1:
            acc = _depthwise(x, wt.reshape(c, co // g, *a["kernel"]), a, (oh, ow))
        else:
            win = windows(x, a["kernel"], a["stride"], (oh, ow), a["dilation"])
            cig, cog = c // g, co // g
            acc = np.concatenate([
                exact_matmul(win[..., gi * cig:(gi + 1) * cig].reshape(n * oh * ow, -1),
                             wt[gi * cog:(gi + 1) * cog].transpose(2, 3, 1, 0).reshape(-1, cog))
                for gi in range(g)], axis=-1).reshape(n, oh, ow, co)
        return requantize_acc(acc, a, w)


def _depthwise(x: np.ndarray, wd: np.ndarray, a: dict, out_hw: tuple[int, int]) -> np.ndarray:
    """Depthwise accumulators as kh*kw shifted multiply-adds in int32 (exact: at most
    kh*kw*255*255 per output): x padded (N, H, W, C), wd (C, M, kh, kw) → (N, OH, OW, C*M)."""
    n, c = x.shape[0], x.shape[3]
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["stride"], a["dilation"]
    oh, ow = out_hw
    acc = np.zeros((n, oh, ow, c, wd.shape[1]), np.int32)
    for i in range(kh):
        for j in range(kw):
            xs = x[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            acc += xs[..., None] * wd[:, :, i, j]
    return acc.reshape(n, oh, ow, -1).astype(np.int64)
