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
