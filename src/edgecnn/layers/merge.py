"""Layers joining branches: elementwise ``add`` (residual) and channel ``concat``."""

import numpy as np

from ..errors import GraphError
from .base import LayerKind, register


@register
class Add(LayerKind):
    kind = "add"
    title = "Add"
    min_inputs = 2
    max_inputs = None

    def output_shape(self, a, ins):
        if any(s != ins[0] for s in ins):
            raise GraphError(f"add needs inputs of one shape, got "
                             f"{', '.join('x'.join(map(str, s)) for s in ins)}")
        return ins[0]

    def forward(self, a, xs, w):
        out = xs[0].copy()
        for x in xs[1:]:
            out += x
        return out


@register
class Concat(LayerKind):
    kind = "concat"
    title = "Concat"
    min_inputs = 2
    max_inputs = None

    def output_shape(self, a, ins):
        if any(s[:2] != ins[0][:2] for s in ins):
            raise GraphError(f"concat needs inputs of one height and width, got "
                             f"{', '.join('x'.join(map(str, s)) for s in ins)}")
        return (*ins[0][:2], sum(s[2] for s in ins))

    def forward(self, a, xs, w):
        return np.concatenate(xs, axis=-1)
