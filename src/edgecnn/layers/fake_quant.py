"""Fake quantization: round a tensor to an integer grid and back, as a quantized runtime does.

y = (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale, round half away
from zero (TFLite's and gemmlowp's rounding of requantized activations). Imported uint8/int8
models use it to reproduce LiteRT's requantized activations in float arithmetic.
"""

import numpy as np

from ..errors import GraphError
from .base import Attr, LayerKind, register


@register
class FakeQuant(LayerKind):
    kind = "fake_quant"
    title = "FakeQuantize"
    attrs = (Attr("scale", "float"), Attr("zero_point", "int", 0), Attr("qmin", "int", 0),
             Attr("qmax", "int", 255))
    elementwise = True

    def output_shape(self, a, ins):
        if not a["scale"] > 0 or a["qmin"] >= a["qmax"]:
            raise GraphError(f"fake_quant needs scale > 0 and qmin < qmax, got scale "
                             f"{a['scale']}, range {a['qmin']}..{a['qmax']}")
        return ins[0]

    def describe(self, a):
        return f"scale={a['scale']:g}, zero_point={a['zero_point']}"

    def forward(self, a, xs, w):
        q = xs[0] / np.float32(a["scale"])  # float32 throughout: these tensors are large
        sign = np.sign(q)
        np.abs(q, out=q)
        q += np.float32(0.5)
        np.floor(q, out=q)
        q *= sign
        q += np.float32(a["zero_point"])
        np.clip(q, a["qmin"], a["qmax"], out=q)
        q -= np.float32(a["zero_point"])
        q *= np.float32(a["scale"])
        return q.astype(np.float32, copy=False)
