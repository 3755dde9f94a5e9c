"""Max and average pooling over k x k windows.

Max pooling ignores padded cells (they act as -inf); average pooling divides by the number of
real cells in the window unless ``count_include_pad`` is set (then padding counts as zeros).
``ceil_mode`` rounds the output size up (a last, partial window), as in PyTorch/ONNX.
"""

import numpy as np

from ..errors import GraphError
from .base import Attr, LayerKind, fmt_hw, pad_nhwc, register, window_out, windows

ATTRS = (Attr("kernel", "int2"), Attr("stride", "int2", None), Attr("padding", "pad4", 0),
         Attr("ceil_mode", "bool", False))


class _Pool(LayerKind):
    title = "Pooling"
    operation = ""

    def normalize_attrs(self, attrs, where):
        attrs = dict(attrs)
        if attrs.get("stride") is None and "kernel" in attrs:
            attrs["stride"] = attrs["kernel"]
        return super().normalize_attrs(attrs, where)

    def _out_hw(self, a, h, w):
        t, l, b, r = a["padding"]
        (kh, kw), (sh, sw) = a["kernel"], a["stride"]
        if max(t, b) >= kh or max(l, r) >= kw:
            raise GraphError(f"padding {a['padding']} must be smaller than the kernel "
                             f"{fmt_hw(a['kernel'])}")
        oh = window_out(h, kh, sh, t, b, a["ceil_mode"])
        ow = window_out(w, kw, sw, l, r, a["ceil_mode"])
        if oh < 1 or ow < 1:
            raise GraphError(f"kernel {fmt_hw(a['kernel'])} does not fit input {h}x{w}")
        return oh, ow

    def output_shape(self, a, ins):
        h, w, c = ins[0]
        return (*self._out_hw(a, h, w), c)

    def border(self, a):
        t, l, b, r = a["padding"]
        return (max(t, b), max(l, r))

    def describe(self, a):
        return f"size={fmt_hw(a['kernel'])}, stride={a['stride'][0]}, operation={self.operation}"

    def _windows(self, a, x, fill):
        n, h, w, c = x.shape
        oh, ow = self._out_hw(a, h, w)
        t, l, _, _ = a["padding"]
        # pad enough on the bottom/right for ceil mode's partial last window
        need_h = (oh - 1) * a["stride"][0] + a["kernel"][0]
        need_w = (ow - 1) * a["stride"][1] + a["kernel"][1]
        pad = (t, l, max(0, need_h - h - t), max(0, need_w - w - l))
        return windows(pad_nhwc(x, pad, fill), a["kernel"], a["stride"], (oh, ow)), pad

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import Fn

        return Fn(lambda m, x: _torch_pool(x, a, self.kind))

    def to_onnx(self, b, l, ins, out):
        if self.kind == "maxpool":
            b.node("MaxPool", ins, [out], l.name, **_onnx_pool_attrs(b, l))
        else:
            b.node("AveragePool", ins, [out], l.name, **_onnx_pool_attrs(b, l),
                   count_include_pad=int(l.attrs["count_include_pad"]))
        return out

    def c_call(self, op, c):
        return c_pool_call(f"ec_{self.kind}_ref", op, c)



@register
class MaxPool(_Pool):
    kind = "maxpool"
    attrs = ATTRS
    operation = "max"

    def forward(self, a, xs, w):
        win, _ = self._windows(a, xs[0], -np.inf)
        return win.max(axis=(3, 4)).astype(np.float32)


@register
class AvgPool(_Pool):
    kind = "avgpool"
    attrs = (*ATTRS, Attr("count_include_pad", "bool", False))
    operation = "average"

    def forward(self, a, xs, w):
        x = xs[0]
        win, pad = self._windows(a, x, 0.0)
        total = win.sum(axis=(3, 4), dtype=np.float64)
        n, h, wd, _ = x.shape
        t, l, b, r = a["padding"]
        # cells counted per window: real ones, plus the declared padding if count_include_pad
        ones = np.zeros((1, h + pad[0] + pad[2], wd + pad[1] + pad[3], 1))
        if a["count_include_pad"]:
            ones[:, :h + t + b, :wd + l + r] = 1
        else:
            ones[:, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = 1
        cnt = windows(ones, a["kernel"], a["stride"], win.shape[1:3]).sum(axis=(3, 4))
        return (total / cnt).astype(np.float32)


@register
class GlobalAvgPool(LayerKind):
    kind = "global_avgpool"
    title = "Pooling"

    def output_shape(self, a, ins):
        return (1, 1, ins[0][2])

    def describe(self, a):
        return "size=global, operation=average"

    def forward(self, a, xs, w):
        return xs[0].mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(np.float32)

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import Fn

        return Fn(lambda m, x: x.mean(dim=(2, 3), keepdim=True))

    def to_onnx(self, b, l, ins, out):
        b.node("GlobalAveragePool", ins, [out], l.name)
        return out

    def c_call(self, op, c):
        return f"    ec_global_avgpool_ref(&{c.ins[0]}, &{c.out});"



def c_pool_call(fn: str, op, c) -> str:
    """``fn`` (the reference pool or ec_pool.c's) with the window as ``ec_conv_params``."""
    a = op.attrs
    pad = ", ".join(map(str, a["padding"]))
    params = (f"{{{a['kernel'][0]}, {a['kernel'][1]}, {a['stride'][0]}, {a['stride'][1]}, 1, 1, "
              f"{pad}, 1, EC_ACT_NONE, 0.0f, NULL}}")
    extra = "" if op.kind == "maxpool" else f", {int(a['count_include_pad'])}"
    return c.block(params, f"{fn}(&p, &{c.ins[0]}, &{c.out}{extra});")


def _onnx_pool_attrs(b, l) -> dict:
    return {"kernel_shape": list(l.attrs["kernel"]), "strides": list(l.attrs["stride"]),
            "pads": list(l.attrs["padding"]), "ceil_mode": _onnx_ceil_mode(b, l)}


def _onnx_ceil_mode(b, l) -> int:
    """ONNX's ceil_mode for a pool, 1 only where flooring would give a different size.

    Our sizes follow the PyTorch rule (a last window starting in the bottom/right padding is
    dropped). ONNX Runtime applies that rule too, but onnx's shape inference does not; when the
    rule drops a window, flooring gives the same size and the same windows, so ceil_mode=0 is
    exact and every ONNX tool agrees on the shapes. A pool that needs ceil in one dimension and
    the rule in the other keeps ceil_mode=1 and turns off the checker's shape inference.
    """
    a = l.attrs
    if not a["ceil_mode"]:
        return 0
    (h, w, _), (oh, ow, _) = b.graph.input_shapes(l)[0], b.graph.shapes[l.name]
    t, le, bo, r = a["padding"]
    (kh, kw), (sh, sw) = a["kernel"], a["stride"]
    floor_h, floor_w = (h + t + bo - kh) // sh + 1, (w + le + r - kw) // sw + 1
    if (floor_h, floor_w) == (oh, ow):
        return 0
    naive_h, naive_w = -(-(h + t + bo - kh) // sh) + 1, -(-(w + le + r - kw) // sw) + 1
    if (naive_h, naive_w) != (oh, ow):
        b.exact_shapes = False
    return 1


def _torch_pool(x, a: dict, kind: str):
    """maxpool / avgpool on NCHW exactly as the reference: torch's pooling where its rules
    coincide (symmetric padding of at most half the kernel), else from an explicitly padded
    input divided by the reference's counts."""
    from ._torch import F, torch

    t, l, b, r = a["padding"]
    (kh, kw), (sh, sw) = a["kernel"], a["stride"]
    if t == b and l == r and 2 * t <= kh and 2 * l <= kw:
        if kind == "maxpool":
            return F.max_pool2d(x, (kh, kw), (sh, sw), (t, l), ceil_mode=a["ceil_mode"])
        return F.avg_pool2d(x, (kh, kw), (sh, sw), (t, l), ceil_mode=a["ceil_mode"],
                            count_include_pad=a["count_include_pad"])
    n, c, h, w = x.shape
    oh = window_out(h, kh, sh, t, b, a["ceil_mode"])
    ow = window_out(w, kw, sw, l, r, a["ceil_mode"])
    # pad top/left as declared, bottom/right as far as the last window reaches
    eb = max(0, (oh - 1) * sh + kh - h - t)
    er = max(0, (ow - 1) * sw + kw - w - l)
    if kind == "maxpool":
        xp = F.pad(x, (l, er, t, eb), value=float("-inf"))
        return F.max_pool2d(xp, (kh, kw), (sh, sw))[:, :, :oh, :ow]
    xp = F.pad(x, (l, er, t, eb))
    total = F.avg_pool2d(xp, (kh, kw), (sh, sw), divisor_override=1)[:, :, :oh, :ow]
    # cells counted per window: the real ones, plus the declared padding if asked
    ones = torch.zeros((1, 1, h + t + eb, w + l + er), dtype=x.dtype, device=x.device)
    if a["count_include_pad"]:
        ones[:, :, :h + t + b, :w + l + r] = 1
    else:
        ones[:, :, t:t + h, l:l + w] = 1
    cnt = F.avg_pool2d(ones, (kh, kw), (sh, sw), divisor_override=1)[:, :, :oh, :ow]
    return total / cnt
