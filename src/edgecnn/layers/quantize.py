"""The edges of an integer graph: ``quantize`` (float → int) and ``dequantize`` (int → float).

quantize: q = clamp(round(x / scale) + zero_point) with the division in float32 and rounding
half away from zero (TFLite's QUANTIZE). dequantize: scale * (q - zero_point) as float32.
"""

from .. import quant
from .base import Attr, LayerKind, register


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

    def output_bytes(self, a, in_bytes):
        return 4

    def forward(self, a, xs, w):
        return quant.dequantize(xs[0], a["scale"], a["zero_point"])
