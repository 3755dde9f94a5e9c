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
