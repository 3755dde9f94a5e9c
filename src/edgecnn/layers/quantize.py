"""The edges of an integer graph: ``quantize`` (float → int) and ``dequantize`` (int → float).

quantize: q = clamp(round(x / scale) + zero_point) with the division in float32 and rounding
half away from zero (TFLite's QUANTIZE). dequantize: scale * (q - zero_point) as float32.
"""

from .. import quant
from .base import Attr, LayerKind, register


def c_quantize_flat_call(op, c, fn: str) -> str:
    """``<fn>_<u8|i8>`` (ec_quant.h: ec_quantize_flat, or the compiler's ec_quantize_flat_fast)
    on the caller's contiguous floats."""
    sfx = "u8" if op.attrs["dtype"] == "uint8" else "i8"
    q = f"{c.flt(op.attrs['scale'])}, {op.attrs['zero_point']}"
    n = 1
    for d in c.shape(op.inputs[0]):
        n *= d
    return f"    {fn}_{sfx}({c.external[op.inputs[0]]}, {n}, {c.out}, {q});"


@register
class Quantize(LayerKind):
    kind = "quantize"
    title = "Quantize"
    integer = True
    elementwise = True
    attrs = (Attr("dtype", "str", choices=("uint8", "int8")), Attr("scale", "float"),
             Attr("zero_point", "int"))

    def describe(self, a):
        return f"scale={a['scale']:g}, zero_point={a['zero_point']}, {a['dtype']}"

    def to_onnx(self, b, l, ins, out):
        from . import _qdq

        a = l.attrs
        return _qdq.quantize(b, l, ins[0], a["scale"], a["zero_point"], a["dtype"], out)

    def c_call(self, op, c):
        if op.inputs[0] in c.external:  # the caller's contiguous floats
            return c_quantize_flat_call(op, c, "ec_quantize_flat")
        sfx = "u8" if op.attrs["dtype"] == "uint8" else "i8"
        q = f"{c.flt(op.attrs['scale'])}, {op.attrs['zero_point']}"
        return f"    ec_quantize_{sfx}(&{c.ins[0]}, {c.out}, {q});"

    def forward(self, a, xs, w):
        return quant.quantize(xs[0], a["scale"], a["zero_point"], a["dtype"])


@register
class Dequantize(LayerKind):
    kind = "dequantize"
    title = "Dequantize"
    integer = True
    elementwise = True
    attrs = (Attr("scale", "float"), Attr("zero_point", "int"))

    def describe(self, a):
        return f"scale={a['scale']:g}, zero_point={a['zero_point']}"

    def output_dtype(self, a, in_dtypes):
        return "float32"

    def to_onnx(self, b, l, ins, out):
        from . import _qdq

        a = l.attrs
        return _qdq.dequantize(b, l, ins[0], a["scale"], a["zero_point"],
                               _qdq.value_dtype(b.graph, l.inputs[0]), "x", name=out)

    def c_call(self, op, c):
        sfx = "u8" if c.dtype(op.inputs[0]) == "uint8" else "i8"
        return (f"    ec_dequantize_{sfx}({c.ins[0]}, &{c.out}, {c.flt(op.attrs['scale'])}, "
                f"{op.attrs['zero_point']});")

    def forward(self, a, xs, w):
        return quant.dequantize(xs[0], a["scale"], a["zero_point"])
