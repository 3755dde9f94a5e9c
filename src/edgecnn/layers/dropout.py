"""Dropout: the identity at inference (the rate matters only to training)."""

from .base import Attr, LayerKind, register


@register
class Dropout(LayerKind):
    kind = "dropout"
    title = "Dropout"
    attrs = (Attr("rate", "float", 0.5),)
    elementwise = True

    def describe(self, a):
        return f"rate={a['rate']:g}"

    def forward(self, a, xs, w):
        return xs[0]

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import nn

        return nn.Dropout(a["rate"])

    def to_onnx(self, b, l, ins, out):
        return ins[0]  # the identity at inference: no node, the next layer reads the input
