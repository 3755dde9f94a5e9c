"""Softmax over the channel axis (per pixel): exp(x - max) / sum exp(x - max)."""

import numpy as np

from .base import LayerKind, register


@register
class Softmax(LayerKind):
    kind = "softmax"
    title = "Softmax"
    elementwise = True

    def forward(self, a, xs, w):
        x = xs[0].astype(np.float64)
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import F, Fn

        return Fn(lambda m, x: F.softmax(x, dim=1))  # over channels, per pixel

    def to_onnx(self, b, l, ins, out):
        b.node("Softmax", ins, [out], l.name, axis=1)  # over channels, per pixel
        return out

    def c_call(self, op, c):
        return f"    ec_softmax_ref(&{c.ins[0]}, &{c.out});"

