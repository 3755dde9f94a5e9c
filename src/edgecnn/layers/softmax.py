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
