"""Fully connected layer: out[o] = bias[o] + sum_i weight[o, i] * x_flat[i].

The input of any shape H x W x C is flattened in H, W, C order; the output is 1 x 1 x units.
"""

import numpy as np

from .base import Attr, LayerKind, TensorSpec, register


@register
class Dense(LayerKind):
    kind = "dense"
    linear = True
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

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import Fn, nn

        h, w, c = ins[0]

        def forward(m, x):  # flatten in H, W, C order; output (N, units, 1, 1)
            y = m.linear(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))
            return y[:, :, None, None]

        return Fn(forward, linear=nn.Linear(h * w * c, a["units"], bias=a["bias"]))

    def torch_names(self, a):
        return {"weight": "linear.weight", "bias": "linear.bias"}

    def to_onnx(self, b, l, ins, out):
        (h, w, c), units = b.graph.input_shapes(l)[0], l.attrs["units"]
        if ins[0] in b.chw_flat:  # reads a flatten left in C, H, W order (see Flatten.to_onnx)
            h, w, c = b.chw_flat[ins[0]]
        wt = np.asarray(b.graph.weights[f"{l.name}.weight"], dtype=np.float32)  # (units, H*W*C)
        if h * w > 1:  # columns from H, W, C order to the C, H, W order of Flatten on NCHW
            wt = wt.reshape(units, h, w, c).transpose(0, 3, 1, 2).reshape(units, c * h * w)
        flat, y = b.tmp(l, "flat"), b.tmp(l, "gemm")
        if ins[0] in b.chw_flat:
            flat = ins[0]  # already (N, C*H*W)
        else:
            b.node("Flatten", ins, [flat], l.name, axis=1)  # (N, C*H*W)
        args = [flat, b.const(f"{l.name}.weight", np.ascontiguousarray(wt))]
        if l.attrs["bias"]:
            args.append(b.weight(l, "bias"))
        b.node("Gemm", args, [y], l.name, transB=1)  # (N, units)
        shape = b.const(f"{l.name}/shape", np.array([0, units, 1, 1], dtype=np.int64))
        b.node("Reshape", [y, shape], [out], l.name)  # (N, units, 1, 1)
        return out

    def c_call(self, op, c):
        n_in = int(np.prod(c.shape(op.inputs[0])))
        gather, x = c.flat_input(op)
        bias = c.ptr(op.weights.get("bias"))
        w = c.ptr(op.weights["weight"])
        return "\n".join([*gather, f"    ec_dense_ref({n_in}, {op.attrs['units']}, {x}, "
                                    f"{c.out}.data, {w}, {bias}, {c.fused_act(op, slope=False)});"])

