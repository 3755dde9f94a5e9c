"""Integer relu / relu6 / leaky relu on its own (not fused), TFLite's LEAKY_RELU int8 rule.

out = output_zero_point + requantize(x - input_zero_point, identity multiplier) for
x >= input_zero_point, else with the slope's multiplier (slope 0 for relu), then clamped to
[act_min, act_max] (relu6's upper bound). The multipliers are input_scale / output_scale and
slope x input_scale / output_scale (edgecnn.quant.quantize_multiplier).
"""

import numpy as np

from .. import quant
from .base import Attr, LayerKind, get_kind, register
from .qconv2d import QATTRS, check_qattrs

_PARAMS = ("identity_multiplier", "identity_shift", "slope_multiplier", "slope_shift")


@register
class QActivation(LayerKind):
    kind = "qactivation"
    title = "Activation"
    integer = True
    elementwise = True
    attrs = (Attr("function", "str", choices=("relu", "relu6", "leaky_relu")),
             Attr("slope", "float", 0.0), *QATTRS, *(Attr(n, "int") for n in _PARAMS))

    def output_shape(self, a, ins):
        check_qattrs(a)
        return ins[0]

    def describe(self, a):
        return f"function={a['function']}, {a['dtype']}"

    def to_onnx(self, b, l, ins, out):
        from . import _qdq

        a = l.attrs
        x = _qdq.dequantize(b, l, ins[0], a["input_scale"], a["input_zero_point"], a["dtype"],
                            "x")
        y = b.tmp(l, a["function"])
        if a["function"] == "leaky_relu":
            b.node("LeakyRelu", [x], [y], l.name, alpha=a["slope"])
        else:  # relu, relu6: their upper bound is the clamp
            b.node("Relu", [x], [y], l.name)
        return _qdq.quantize(b, l, _qdq.clamp(b, l, y, a), a["output_scale"],
                             a["output_zero_point"], a["dtype"], out)

    def c_call(self, op, c):
        """A table of the 256 outputs, made by this kind's own forward: exact by construction,
        and one load per value in C (the two fixed-point multiplies per value cost 10x)."""
        return c_qlut_call(op, c, "ec_qlut")

    def forward(self, a, xs, w):
        x = xs[0].astype(np.int64) - a["input_zero_point"]
        pos = quant.multiply_by_quantized_multiplier(x, a["identity_multiplier"],
                                                     a["identity_shift"])
        neg = quant.multiply_by_quantized_multiplier(x, a["slope_multiplier"], a["slope_shift"])
        out = np.where(x >= 0, pos, neg) + a["output_zero_point"]
        return np.clip(out, a["act_min"], a["act_max"]).astype(quant.DTYPES[a["dtype"]])


def c_qlut_call(op, c, fn: str) -> str:
    """``<fn>_<u8|i8>`` (ec_quant.h: ec_qlut, or the compiler's ec_qlut_fast) on the table of
    the 256 outputs of ``op``'s kind."""
    a = op.attrs
    lo, hi = quant.qrange(a["dtype"])
    x = np.arange(lo, hi + 1).astype(quant.DTYPES[a["dtype"]]).reshape(1, 1, 1, -1)
    lut = get_kind(op.kind).forward(a, [x], {}).ravel()
    n = int(np.prod(c.shape(op.output)))
    sfx = "u8" if a["dtype"] == "uint8" else "i8"
    return f"    {fn}_{sfx}({c.ins[0]}, {n}, {c.ptr(lut)}, {c.out});"


def activation_params(slope: float, input_scale: float, output_scale: float) -> dict:
    """The two multipliers of a qactivation layer."""
    mi, si = quant.quantize_multiplier(input_scale / output_scale)
    ms, ss = quant.quantize_multiplier(slope * input_scale / output_scale) if slope > 0 else (0, 0)
    return {"identity_multiplier": mi, "identity_shift": si, "slope_multiplier": ms,
            "slope_shift": ss}
