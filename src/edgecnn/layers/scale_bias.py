"""Per-channel affine map: y = x * scale + bias (either part optional)."""

from ..errors import GraphError
from .base import Attr, LayerKind, TensorSpec, register


@register
class ScaleBias(LayerKind):
    kind = "scale_bias"
    title = "Scaling"
    attrs = (Attr("scale", "bool", True), Attr("bias", "bool", True))
    elementwise = True

    def output_shape(self, a, ins):
        if not (a["scale"] or a["bias"]):
            raise GraphError("scale_bias needs scale, bias or both")
        return ins[0]

    def tensors(self, a, ins):
        c = ins[0][2]
        t = {}
        if a["scale"]:
            t["scale"] = TensorSpec((c,), "weight", "ones")
        if a["bias"]:
            t["bias"] = TensorSpec((c,), "bias", "zeros")
        return t

    def forward(self, a, xs, w):
        y = xs[0]
        if a["scale"]:
            y = y * w["scale"]
        if a["bias"]:
            y = y + w["bias"]
        return y.astype("float32", copy=False)

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import Fn, nn, torch

        c = ins[0][2]

        def forward(m, x):
            if m.scale is not None:
                x = x * m.scale.view(1, -1, 1, 1)
            if m.bias is not None:
                x = x + m.bias.view(1, -1, 1, 1)
            return x

        return Fn(forward, scale=nn.Parameter(torch.ones(c)) if a["scale"] else None,
                  bias=nn.Parameter(torch.zeros(c)) if a["bias"] else None)

    def to_onnx(self, b, l, ins, out):
        c = b.graph.shapes[l.name][2]
        x = ins[0]
        if l.attrs["scale"]:
            y = out if not l.attrs["bias"] else b.tmp(l, "scaled")
            b.node("Mul", [x, b.weight(l, "scale", (c, 1, 1))], [y], l.name)
            x = y
        if l.attrs["bias"]:
            b.node("Add", [x, b.weight(l, "bias", (c, 1, 1))], [out], l.name)
        return out

    def c_call(self, op, c):
        return (f"    ec_scale_bias_ref(&{c.ins[0]}, &{c.out}, {c.ptr(op.weights.get('scale'))}, "
                f"{c.ptr(op.weights.get('bias'))});")

