"""Integer joins: ``qadd`` (residual) and ``qconcat`` (channels), TFLite's 8-bit rules.

qadd: both inputs are rescaled to 2 x the larger input scale with 2^20 of headroom, summed,
and requantized to the output (edgecnn.quant.add); the multipliers are attributes.
qconcat: inputs sharing the output's scale and zero point are copied, the others rescaled in
float32 (edgecnn.quant.rescale_concat_input); per-input scales and zero points are tensors.
"""

import numpy as np

from .. import quant
from ..errors import GraphError
from .base import Attr, TensorSpec, register
from .merge import Add, Concat
from .qconv2d import check_qattrs, int_spec

_SFX = {"uint8": "u8", "int8": "i8"}
_ADD_PARAMS = ("input1_multiplier", "input1_shift", "input2_multiplier", "input2_shift",
               "output_multiplier", "output_shift")


def c_qadd_call(op, c, fn: str) -> str:
    """``<fn>_<u8|i8>`` (ec_eltwise.h: ec_qadd, or the compiler's ec_qadd_fast) for a qadd op."""
    a = op.attrs
    fields = (a["input1_zero_point"], a["input2_zero_point"], a["output_zero_point"],
              a["act_min"], a["act_max"], *(a[n] for n in _ADD_PARAMS))
    n = int(np.prod(c.shape(op.output)))
    return c.block("{" + ", ".join(map(str, fields)) + "}",
                   f"{fn}_{_SFX[a['dtype']]}(&p, {c.ins[0]}, {c.ins[1]}, {n}, {c.out});",
                   ctype="ec_qadd_params")


@register
class QAdd(Add):
    kind = "qadd"
    integer = True
    max_inputs = 2
    attrs = (Attr("dtype", "str", choices=("uint8", "int8")),
             Attr("input1_scale", "float"), Attr("input1_zero_point", "int"),
             Attr("input2_scale", "float"), Attr("input2_zero_point", "int"),
             Attr("output_scale", "float"), Attr("output_zero_point", "int"),
             Attr("act_min", "int"), Attr("act_max", "int"),
             *(Attr(n, "int") for n in _ADD_PARAMS))

    def output_shape(self, a, ins):
        check_qattrs(a)
        return super().output_shape(a, ins)

    def c_call(self, op, c):
        return c_qadd_call(op, c, "ec_qadd")

    def to_onnx(self, b, l, ins, out):
        from . import _qdq

        a = l.attrs
        xs = [_qdq.dequantize(b, l, v, a[f"input{i}_scale"], a[f"input{i}_zero_point"],
                              a["dtype"], f"x{i}") for i, v in enumerate(ins, start=1)]
        y = b.tmp(l, "add")
        b.node("Add", xs, [y], l.name)
        return _qdq.quantize(b, l, _qdq.clamp(b, l, y, a), a["output_scale"],
                             a["output_zero_point"], a["dtype"], out)

    def to_torch(self, a, ins):
        raise NotImplementedError("integer kinds have no torch lowering")

    def forward(self, a, xs, w):
        return quant.add(xs[0], xs[1], a["input1_zero_point"], a["input2_zero_point"],
                         {n: a[n] for n in _ADD_PARAMS}, a["output_zero_point"], a["act_min"],
                         a["act_max"], a["dtype"])


@register
class QConcat(Concat):
    kind = "qconcat"
    integer = True
    attrs = (Attr("dtype", "str", choices=("uint8", "int8")), Attr("output_scale", "float"),
             Attr("output_zero_point", "int"))

    def output_shape(self, a, ins):
        check_qattrs(a)
        return super().output_shape(a, ins)

    def tensors(self, a, ins):
        return {"input_scale": TensorSpec((len(ins),), "state", "ones"),
                "input_zero_point": int_spec((len(ins),), "state", "int32")}

    def c_call(self, op, c):
        """One ec_qconcat call per input, with TFLite's float32 rescale constants."""
        a, w = op.attrs, op.weights
        oh, ow, co = c.shape(op.output)
        out_s = np.float32(a["output_scale"])
        lines, c0 = [], 0
        for v, name, s, z in zip(c.ins, op.inputs, w["input_scale"], w["input_zero_point"],
                                 strict=True):
            s, z = np.float32(s), int(z)
            same = int(s == out_s and z == a["output_zero_point"])
            mul = s * (np.float32(1) / out_s)
            add = np.float32(-z) * mul
            ci = c.shape(name)[2]
            lines.append(f"    ec_qconcat_{_SFX[a['dtype']]}({v}, {ci}, {oh * ow}, {c.out}, {co}, "
                         f"{c0}, {same}, {c.flt(mul)}, {c.flt(add)}, {a['output_zero_point']});")
            c0 += ci
        return "\n".join(lines)

    def to_onnx(self, b, l, ins, out):
        from . import _qdq

        a, g = l.attrs, b.graph.weights
        scales, zps = g[f"{l.name}.input_scale"], g[f"{l.name}.input_zero_point"]
        xs = [_qdq.dequantize(b, l, v, float(s), int(z), a["dtype"], f"x{i}")
              for i, (v, s, z) in enumerate(zip(ins, scales, zps, strict=True))]
        y = b.tmp(l, "concat")
        b.node("Concat", xs, [y], l.name, axis=1)
        return _qdq.quantize(b, l, y, a["output_scale"], a["output_zero_point"], a["dtype"],
                             out)

    def to_torch(self, a, ins):
        raise NotImplementedError("integer kinds have no torch lowering")

    def forward(self, a, xs, w):
        scales, zps = w["input_scale"], w["input_zero_point"]
        if len(xs) != len(scales):
            raise GraphError(f"qconcat has {len(scales)} input scales for {len(xs)} inputs")
        return np.concatenate([
            quant.rescale_concat_input(x, float(s), int(z), a["output_scale"],
                                       a["output_zero_point"], a["dtype"])
            for x, s, z in zip(xs, scales, zps, strict=True)], axis=-1)
