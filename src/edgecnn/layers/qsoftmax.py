"""Integer softmax over channels, TFLite's 8-bit reference rule (gemmlowp fixed point).

The output has scale 1/256 and zero point 0 (uint8) or -128 (int8). The input multiplier,
left shift and diff_min come from edgecnn.quant.softmax_params(input_scale, beta).
"""

from .. import quant
from .base import Attr, LayerKind, register


@register
class QSoftmax(LayerKind):
    kind = "qsoftmax"
    title = "Softmax"
    integer = True
    elementwise = True
    attrs = (Attr("dtype", "str", choices=("uint8", "int8")), Attr("input_scale", "float"),
             Attr("beta", "float", 1.0), Attr("input_multiplier", "int"),
             Attr("input_left_shift", "int"), Attr("diff_min", "int"))

    def to_onnx(self, b, l, ins, out):
        from . import _qdq

        a = l.attrs
        lo, _ = quant.qrange(a["dtype"])
        # softmax is shift-invariant: the input's zero point (not stored) does not matter
        x = _qdq.dequantize(b, l, ins[0], a["input_scale"], 0, a["dtype"], "x")
        y = b.tmp(l, "softmax")
        b.node("Softmax", [x], [y], l.name, axis=1)
        return _qdq.quantize(b, l, y, 1 / 256, lo, a["dtype"], out)

    def c_call(self, op, c):
        h, w, ch = c.shape(op.output)
        sfx = "u8" if op.attrs["dtype"] == "uint8" else "i8"
        return (f"    ec_qsoftmax_{sfx}({c.ins[0]}, {h * w}, {ch}, {op.attrs['input_multiplier']}, "
                f"{op.attrs['input_left_shift']}, {op.attrs['diff_min']}, {c.out});")

    def forward(self, a, xs, w):
        p = {k: a[k] for k in ("input_multiplier", "input_left_shift", "diff_min")}
        return quant.softmax(xs[0], p, a["dtype"])
