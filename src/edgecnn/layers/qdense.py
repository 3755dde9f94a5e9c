"""Integer fully connected layer, TFLite's 8-bit rule.

acc[o] = bias[o] + sum_i (weight[o, i] - weight_zero_point) * (x_flat[i] - input_zero_point),
then requantized per output (or per layer) as in qconv2d. The input is flattened in H, W, C
order; the output is 1 x 1 x units.
"""

import numpy as np

from .base import Attr, register
from .dense import Dense
from .qconv2d import (
    QATTRS,
    c_qconv_call,
    check_qattrs,
    exact_matmul,
    int_spec,
    requant_specs,
    requantize_acc,
)


@register
class QDense(Dense):
    kind = "qdense"
    title = "FullyConnected"
    integer = True
    attrs = (Attr("units", "int"), *QATTRS, Attr("weight_zero_point", "int", 0),
             Attr("per_channel", "bool", False))

    def output_shape(self, a, ins):
        check_qattrs(a)
        return (1, 1, a["units"])

    def tensors(self, a, ins):
        h, w, c = ins[0]
        return {"weight": int_spec((a["units"], h * w * c), "weight", a["dtype"]),
                "bias": int_spec((a["units"],), "bias", "int32"),
                **requant_specs(a["units"], a["per_channel"])}

    def describe(self, a):
        return f"units={a['units']}, {a['dtype']}"

    def to_onnx(self, b, l, ins, out):
        """Flatten (C, H, W order on NCHW: the weight's columns are permuted to match, as the
        float dense does) → QDQ Gemm → Reshape to (N, units, 1, 1)."""
        from . import _qdq

        a = l.attrs
        (h, w, c), units = b.graph.input_shapes(l)[0], a["units"]
        if ins[0] in b.chw_flat:
            h, w, c = b.chw_flat[ins[0]]
        wt = np.asarray(b.graph.weights[f"{l.name}.weight"])
        if h * w > 1:
            wt = wt.reshape(units, h, w, c).transpose(0, 3, 1, 2).reshape(units, c * h * w)
        flat = ins[0] if ins[0] in b.chw_flat else b.tmp(l, "flat")
        if flat != ins[0]:
            b.node("Flatten", ins, [flat], l.name, axis=1)
        x = _qdq.dequantize(b, l, flat, a["input_scale"], a["input_zero_point"], a["dtype"], "x")
        wq, bias = _qdq.weights(b, l, a, wt)
        y = b.tmp(l, "gemm")
        b.node("Gemm", [x, wq, bias], [y], l.name, transB=1)
        q = _qdq.quantize(b, l, _qdq.clamp(b, l, y, a), a["output_scale"],
                          a["output_zero_point"], a["dtype"], b.tmp(l, "q"))
        shape = b.const(f"{l.name}/shape", np.array([0, units, 1, 1], dtype=np.int64))
        b.node("Reshape", [q, shape], [out], l.name)
        return out

    def to_torch(self, a, ins):
        raise NotImplementedError("integer kinds have no torch lowering")

    def c_geometry(self, op, c) -> tuple:
        """A 1x1 convolution of the flattened input (contiguous: integer tensors have no
        border), whose weights (units, H*W*C) are already [o][c][1][1]."""
        n = int(np.prod(c.shape(op.inputs[0])))
        return (1, 1, n, 1, 1, op.attrs["units"], 1, 1, 1, 1, 1, 1, 0, 0, 1)

    def c_call(self, op, c):
        return c_qconv_call(op, c, self.c_geometry(op, c))

    def forward(self, a, xs, w):
        x = xs[0].reshape(xs[0].shape[0], -1).astype(np.int32) - a["input_zero_point"]
        wt = w["weight"].astype(np.int32) - a["weight_zero_point"]
        acc = exact_matmul(x, wt.T)
        return requantize_acc(acc, a, w).reshape(-1, 1, 1, a["units"])
