"""Pointwise activations.

relu max(x, 0); leaky_relu x if x > 0 else slope * x; relu6 min(max(x, 0), 6);
sigmoid 1 / (1 + exp(-x)); tanh; prelu x if x > 0 else slope[c] * x (a learned slope per
channel, stored as the tensor ``slope``).
"""

import numpy as np

from .base import Attr, LayerKind, TensorSpec, register

FUNCTIONS = ("relu", "leaky_relu", "relu6", "sigmoid", "tanh", "prelu")
WORDS = {"relu": "relu", "leaky_relu": "leaky relu", "relu6": "relu6", "sigmoid": "sigmoid",
         "tanh": "tanh", "prelu": "parametric relu"}


@register
class Activation(LayerKind):
    kind = "activation"
    title = "Activation"
    attrs = (Attr("function", "str", choices=FUNCTIONS),
             Attr("slope", "float", 0.01, doc="leaky_relu's negative slope"))
    elementwise = True

    def tensors(self, a, ins):
        if a["function"] == "prelu":
            return {"slope": TensorSpec((ins[0][2],), "weight", "const:0.25")}
        return {}

    def describe(self, a):
        return f"activation={WORDS[a['function']]}"

    def forward(self, a, xs, w):
        x = xs[0]
        f = a["function"]
        if f == "relu":
            y = np.maximum(x, 0)
        elif f == "leaky_relu":
            y = np.where(x > 0, x, x * np.float32(a["slope"]))
        elif f == "relu6":
            y = np.clip(x, 0, 6)
        elif f == "sigmoid":
            y = 0.5 * (1 + np.tanh(0.5 * x))  # = 1/(1+exp(-x)) without overflow
        elif f == "tanh":
            y = np.tanh(x)
        else:
            y = np.where(x > 0, x, x * w["slope"])
        return y.astype(np.float32, copy=False)

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import F, Fn, nn, torch

        f, negative_slope = a["function"], a["slope"]
        plain = {"relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
        if f in plain:
            return Fn(lambda m, x: plain[f](x))
        if f == "leaky_relu":
            return Fn(lambda m, x: F.leaky_relu(x, negative_slope))
        # prelu: a learned slope per channel (graph tensor "slope")
        slope = nn.Parameter(torch.full((ins[0][2],), 0.25))
        return Fn(lambda m, x: F.prelu(x, m.slope), slope=slope)

    def to_onnx(self, b, l, ins, out):
        f = l.attrs["function"]
        if f in ("relu", "sigmoid", "tanh"):
            b.node({"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}[f], ins, [out], l.name)
        elif f == "leaky_relu":
            b.node("LeakyRelu", ins, [out], l.name, alpha=l.attrs["slope"])
        elif f == "relu6":
            lo = b.const(f"{l.name}/min", np.float32(0.0))
            hi = b.const(f"{l.name}/max", np.float32(6.0))
            b.node("Clip", [ins[0], lo, hi], [out], l.name)
        else:  # prelu
            c = b.graph.shapes[l.name][2]
            b.node("PRelu", [ins[0], b.weight(l, "slope", (c, 1, 1))], [out], l.name)
        return out

    def c_call(self, op, c):
        f = op.attrs["function"]
        alpha = c.flt(op.attrs["slope"]) if f == "leaky_relu" else "0.0f"
        return (f"    ec_activation_ref(&{c.ins[0]}, &{c.out}, {c.act_code(f)}, {alpha}, "
                f"{c.ptr(op.weights.get('slope'))});")

