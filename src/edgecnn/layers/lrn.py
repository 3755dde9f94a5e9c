"""Local response normalization across channels (AlexNet).

b[c] = a[c] / (k + alpha / size * sum_{c' in window(c)} a[c']^2) ** beta, the window being
``size`` channels centred on c (floor((size-1)/2) before, ceil((size-1)/2) after), clipped at
the edges. This is the ONNX convention; PyTorch's ``local_response_norm`` agrees for odd sizes
but puts the extra channel of an even window before c. Both divide alpha by size. AlexNet's paper
(k=2, n=5, alpha=1e-4, beta=0.75) writes alpha without the division; import such models with
alpha multiplied by size.
"""

import numpy as np

from .base import Attr, LayerKind, register


@register
class LRN(LayerKind):
    kind = "lrn"
    title = "LocalResponseNormalization"
    attrs = (Attr("size", "int", 5), Attr("alpha", "float", 1e-4), Attr("beta", "float", 0.75),
             Attr("k", "float", 2.0))
    elementwise = True

    def describe(self, a):
        return f"size={a['size']}, alpha={a['alpha']:g}, beta={a['beta']:g}, k={a['k']:g}"

    def forward(self, a, xs, w):
        x = xs[0].astype(np.float64)
        c = x.shape[-1]
        before, after = (a["size"] - 1) // 2, a["size"] // 2
        sq = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x * x, axis=-1)], axis=-1)
        hi = np.minimum(np.arange(c) + after + 1, c)
        lo = np.maximum(np.arange(c) - before, 0)
        s = sq[..., hi] - sq[..., lo]
        return (x / (a["k"] + a["alpha"] / a["size"] * s) ** a["beta"]).astype(np.float32)

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import Fn, OnnxLRN, lrn, torch

        args = (a["size"], a["alpha"], a["beta"], a["k"])

        def forward(m, x):
            if torch.onnx.is_in_onnx_export():  # one ONNX LRN node (same window and formula)
                return OnnxLRN.apply(x, *args)
            return lrn(x, *args)

        return Fn(forward)

    def to_onnx(self, b, l, ins, out):
        a = l.attrs
        if a["size"] % 2 == 1:  # ONNX LRN: the same window, alpha divided by size, as ours
            b.node("LRN", ins, [out], l.name, size=a["size"], alpha=a["alpha"], beta=a["beta"],
                   bias=a["k"])
            return out
        # ONNX Runtime's LRN takes odd sizes only: sum the squares over the window with a 1x1 Conv
        # whose (C, C, 1, 1) weight is the 0/1 band matrix of the window (floor((size-1)/2) before
        # c, size // 2 after), then x / (k + alpha / size * sum) ** beta.
        c = b.graph.shapes[l.name][2]
        before, after = (a["size"] - 1) // 2, a["size"] // 2
        i = np.arange(c)
        band = ((i[None, :] >= i[:, None] - before) & (i[None, :] <= i[:, None] + after))
        band = band.astype(np.float32).reshape(c, c, 1, 1)
        sq, ssum, den, pw = (b.tmp(l, w) for w in ("square", "window_sum", "base", "power"))
        b.node("Mul", [ins[0], ins[0]], [sq], l.name)
        b.node("Conv", [sq, b.const(f"{l.name}/window", band)], [ssum], l.name,
               kernel_shape=[1, 1])
        scaled = b.tmp(l, "scaled")
        b.node("Mul", [ssum, b.const(f"{l.name}/alpha", np.float32(a["alpha"] / a["size"]))],
               [scaled], l.name)
        b.node("Add", [scaled, b.const(f"{l.name}/k", np.float32(a["k"]))], [den], l.name)
        b.node("Pow", [den, b.const(f"{l.name}/beta", np.float32(a["beta"]))], [pw], l.name)
        b.node("Div", [ins[0], pw], [out], l.name)
        return out

    def c_call(self, op, c):
        return c_lrn_call("ec_lrn_ref", op, c)


def c_lrn_call(fn: str, op, c) -> str:
    """The C call of an LRN kernel (``ec_lrn_ref``, ``ec_lrn_fast``: the same arguments)."""
    a = op.attrs
    return (f"    {fn}(&{c.ins[0]}, &{c.out}, {a['size']}, {c.flt(a['alpha'])}, "
            f"{c.flt(a['beta'])}, {c.flt(a['k'])});")

