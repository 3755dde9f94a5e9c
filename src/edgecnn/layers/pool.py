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
