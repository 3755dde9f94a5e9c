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
