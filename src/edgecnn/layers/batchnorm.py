"""Batch normalization at inference: y = (x - mean) / sqrt(var + eps) * scale + shift, per channel.

scale and shift are learnable parameters; mean and var are running statistics (stored, not
counted as params).
"""

import numpy as np

from .base import Attr, LayerKind, TensorSpec, register


@register
class BatchNorm(LayerKind):
    kind = "batchnorm"
    title = "BatchNormalization"
    attrs = (Attr("eps", "float", 1e-5),)
    elementwise = True

    def tensors(self, a, ins):
        c = ins[0][2]
        return {"scale": TensorSpec((c,), "weight", "ones"),
                "shift": TensorSpec((c,), "bias", "zeros"),
                "mean": TensorSpec((c,), "state", "zeros"),
                "var": TensorSpec((c,), "state", "ones")}

    def describe(self, a):
        return f"epsilon={a['eps']:g}"

    def forward(self, a, xs, w):
        inv = w["scale"] / np.sqrt(w["var"].astype(np.float64) + a["eps"])
        return (xs[0] * inv.astype(np.float32)
                + (w["shift"] - w["mean"] * inv).astype(np.float32)).astype(np.float32)

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import nn

        # nn.BatchNorm2d: training updates the running statistics, and
        # nn.SyncBatchNorm.convert_sync_batchnorm applies
        return nn.BatchNorm2d(ins[0][2], eps=a["eps"])

    def torch_names(self, a):
        return {"scale": "weight", "shift": "bias", "mean": "running_mean", "var": "running_var"}

    def to_onnx(self, b, l, ins, out):
        args = [ins[0]] + [b.weight(l, t) for t in ("scale", "shift", "mean", "var")]
        b.node("BatchNormalization", args, [out], l.name, epsilon=l.attrs["eps"])
        return out
