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

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import Fn

        def forward(m, *xs):
            out = xs[0]
            for x in xs[1:]:  # ((x0 + x1) + x2) + ...: the reference's order of float additions
                out = out + x
            return out

        return Fn(forward)

    def to_onnx(self, b, l, ins, out):
        acc = ins[0]  # ((x0 + x1) + x2) + ...: the reference's order of float additions
        for i, x in enumerate(ins[1:], start=1):
            y = out if i == len(ins) - 1 else b.tmp(l, f"partial{i}")
            b.node("Add", [acc, x], [y], l.name)
            acc = y
        return out

    def c_call(self, op, c):
        return c_add_calls("ec_add_ref", op, c)



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

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import Fn, torch

        return Fn(lambda m, *xs: torch.cat(xs, dim=1))

    def to_onnx(self, b, l, ins, out):
        b.node("Concat", ins, [out], l.name, axis=1)
        return out

    def c_call(self, op, c):
        lines, c0 = [], 0
        for v, name in zip(c.ins, op.inputs, strict=True):
            lines.append(f"    ec_copy_channels(&{v}, &{c.out}, {c0});")
            c0 += c.shape(name)[2]
        return "\n".join(lines)



def c_add_calls(fn: str, op, c) -> str:
    """``fn`` (ec_add_ref or a fast add) over 2+ inputs, left to right; the fused activation
    applies to the last sum only."""
    act, none = c.fused_act(op), "EC_ACT_NONE, 0.0f, NULL"
    lines = [f"    {fn}(&{c.ins[0]}, &{c.ins[1]}, &{c.out}, {act if len(c.ins) == 2 else none});"]
    for j, v in enumerate(c.ins[2:], start=2):
        lines.append(f"    {fn}(&{c.out}, &{v}, &{c.out}, {act if j == len(c.ins) - 1 else none});")
    return "\n".join(lines)
