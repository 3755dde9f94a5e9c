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

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import Fn, torch

        zp, scale = a["zero_point"], a["scale"]

        def forward(m, x):
            """The reference's rounding (half away from zero, in float64; torch.fake_quantize_*
            rounds half to even); in training the gradient passes straight through inside the
            representable range."""
            v = x.double() / scale
            q = (torch.sign(v) * torch.floor(v.abs() + 0.5) + zp).clamp(a["qmin"], a["qmax"])
            y = ((q - zp) * scale).to(x.dtype)
            if torch.is_grad_enabled() and x.requires_grad:
                xc = x.clamp((a["qmin"] - zp) * scale, (a["qmax"] - zp) * scale)
                y = xc + (y - xc).detach()
            return y

        return Fn(forward)

    def to_onnx(self, b, l, ins, out):
        """(clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale in float ops, as the reference.

        Not QuantizeLinear/DequantizeLinear: those round half to even and clamp to the integer
        type's range, and runtimes may fuse them into integer kernels with other arithmetic.
        """
        a = l.attrs

        def c(what, v):
            return b.const(f"{l.name}/{what}", np.float32(v))

        v, mag, fl, sg, q, qz, cl, back = (b.tmp(l, w) for w in (
            "scaled", "abs", "floor", "sign", "round", "shifted", "clamped", "centered"))
        b.node("Div", [ins[0], c("scale", a["scale"])], [v], l.name)
        b.node("Abs", [v], [mag], l.name)  # round half away from zero: sign(v) * floor(|v| + 0.5)
        half = b.tmp(l, "half_up")
        b.node("Add", [mag, c("half", 0.5)], [half], l.name)
        b.node("Floor", [half], [fl], l.name)
        b.node("Sign", [v], [sg], l.name)
        b.node("Mul", [sg, fl], [q], l.name)
        b.node("Add", [q, c("zero_point", a["zero_point"])], [qz], l.name)
        b.node("Clip", [qz, c("qmin", a["qmin"]), c("qmax", a["qmax"])], [cl], l.name)
        b.node("Sub", [cl, c("zero_point", a["zero_point"])], [back], l.name)
        b.node("Mul", [back, c("scale", a["scale"])], [out], l.name)
        return out

    def c_call(self, op, c):
        a = op.attrs
        return (f"    ec_fake_quant_ref(&{c.ins[0]}, &{c.out}, {float(a['scale'])!r}, "
                f"{a['zero_point']}, {a['qmin']}, {a['qmax']});")

