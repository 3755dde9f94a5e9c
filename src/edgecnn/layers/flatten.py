"""Flatten H x W x C into 1 x 1 x (H*W*C), in H, W, C order."""

import numpy as np

from .base import LayerKind, register


@register
class Flatten(LayerKind):
    kind = "flatten"
    title = "Flatten"

    def output_shape(self, a, ins):
        h, w, c = ins[0]
        return (1, 1, h * w * c)

    def output_dtype(self, a, in_dtypes):
        return in_dtypes[0]  # a view of its input, float or integer

    def forward(self, a, xs, w):
        return xs[0].reshape(xs[0].shape[0], 1, 1, -1)

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import Fn

        return Fn(lambda m, x: x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 1, 1))  # H, W, C order

    def to_onnx(self, b, l, ins, out):
        h, w, c = b.graph.input_shapes(l)[0]
        x = ins[0]
        readers = [b.graph.layer(r).kind for r in b.graph.consumers[l.name]]
        if h * w > 1 and out != b.output_name and readers and set(readers) == {"dense"}:
            # only dense layers read it: ONNX Flatten of NCHW, (N, C*H*W) in C, H, W order (the one
            # value that is not 4-D), and each dense permutes its weight columns to match; so no
            # Transpose runs and importers see the usual Flatten → Gemm
            b.chw_flat[out] = (h, w, c)
            b.node("Flatten", ins, [out], l.name, axis=1)
            return out
        if h * w > 1:  # (N, C, H, W) → (N, H, W, C) so the flatten runs in H, W, C order
            x = b.tmp(l, "nhwc")
            b.node("Transpose", ins, [x], l.name, perm=[0, 2, 3, 1])
        shape = b.const(f"{l.name}/shape", np.array([0, -1, 1, 1], dtype=np.int64))
        b.node("Reshape", [x, shape], [out], l.name)  # (N, H*W*C, 1, 1)
        return out

    def c_call(self, op, c):
        if c.dtype(op.inputs[0]) != "float32":  # integer tensors are contiguous: a copy
            n = int(np.prod(c.shape(op.output)))
            return f"    ec_qcopy({c.ins[0]}, {c.out}, {n});"
        return f"    ec_store_hwc(&{c.ins[0]}, {c.out}.data);"

