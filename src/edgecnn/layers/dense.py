"""Fully connected layer: out[o] = bias[o] + sum_i weight[o, i] * x_flat[i].

The input of any shape H x W x C is flattened in H, W, C order; the output is 1 x 1 x units.
"""

import numpy as np

from .base import Attr, LayerKind, TensorSpec, register


@register
class Dense(LayerKind):
    kind = "dense"
    title = "FullyConnected"
    attrs = (Attr("units", "int"), Attr("bias", "bool", True))

    def output_shape(self, a, ins):
        return (1, 1, a["units"])

    def tensors(self, a, ins):
        h, w, c = ins[0]
        t = {"weight": TensorSpec((a["units"], h * w * c), "weight", "he")}
        if a["bias"]:
            t["bias"] = TensorSpec((a["units"],), "bias", "zeros")
        return t

    def macs(self, a, ins, out):
        h, w, c = ins[0]
        return h * w * c * a["units"]

    def describe(self, a):
        return f"units={a['units']}"

    def forward(self, a, xs, w):
        x = xs[0].reshape(xs[0].shape[0], -1)
        y = x @ w["weight"].T
        if a["bias"]:
            y = y + w["bias"]
        return y.reshape(-1, 1, 1, a["units"]).astype(np.float32, copy=False)
