"""Integer max and average pooling, TFLite's 8-bit rules.

Input and output share one scale and zero point, so pooling works on the raw values.
Average: the sum of the window's real cells (padding is not counted) divided by their number,
rounding half away from zero: (sum + count/2) / count in C integer division, negated for a
negative sum. Max: the largest real cell. Both then clamp to the fused activation's range.
A global pool is an average pool whose kernel is the whole input. Ceil mode (not in TFLite)
adds partial windows at the end, whose missing cells count as padding does.
"""

import numpy as np

from .. import quant
from ..errors import GraphError
from .base import Attr, register, windows
from .pool import ATTRS, AvgPool, MaxPool

QPOOL_ATTRS = (*ATTRS, Attr("dtype", "str", choices=("uint8", "int8")), Attr("scale", "float"),
               Attr("zero_point", "int"), Attr("act_min", "int"), Attr("act_max", "int"))


def _check(a: dict) -> None:
    lo, hi = quant.qrange(a["dtype"])
    if not lo <= a["act_min"] <= a["act_max"] <= hi:
        raise GraphError(f"activation clamp {a['act_min']}..{a['act_max']} is not inside "
                         f"{lo}..{hi}")


def onnx_qpool(b, l, ins, out) -> str:
    """QDQ around the float pool: input and output share scale and zero point."""
    from . import _qdq
    from .pool import _onnx_pool_attrs

    a = l.attrs
    x = _qdq.dequantize(b, l, ins[0], a["scale"], a["zero_point"], a["dtype"], "x")
    y = b.tmp(l, "pool")
    if l.kind == "qmaxpool":
        b.node("MaxPool", [x], [y], l.name, **_onnx_pool_attrs(b, l))
    else:
        b.node("AveragePool", [x], [y], l.name, **_onnx_pool_attrs(b, l), count_include_pad=0)
    y = _qdq.clamp(b, l, y, {**a, "output_scale": a["scale"], "output_zero_point": a["zero_point"]})
    return _qdq.quantize(b, l, y, a["scale"], a["zero_point"], a["dtype"], out)


def c_qpool_call(op, c, fn: str | None = None) -> str:
    """``ec_q<max|avg>pool_<u8|i8>`` (or ``<fn>_<u8|i8>``, the compiler's ec_qmaxpool_fast):
    cells outside the input (padding, ceil mode's partial windows) are skipped, as the
    reference does."""
    a = op.attrs
    h, w, ch = c.shape(op.inputs[0])
    oh, ow, _ = c.shape(op.output)
    fields = (h, w, ch, oh, ow, *a["kernel"], *a["stride"], a["padding"][0], a["padding"][1],
              a["act_min"], a["act_max"])
    fn = f"{fn or 'ec_' + op.kind}_{'u8' if a['dtype'] == 'uint8' else 'i8'}"
    return c.block("{" + ", ".join(map(str, fields)) + "}", f"{fn}(&p, {c.ins[0]}, {c.out});",
                   ctype="ec_qpool_params")


class _QPoolLowerings:
    """The lowerings both integer pools share (ahead of the float pools' in the MRO)."""

    def c_call(self, op, c):
        return c_qpool_call(op, c)

    def to_onnx(self, b, l, ins, out):
        return onnx_qpool(b, l, ins, out)

    def to_torch(self, a, ins):
        raise NotImplementedError("integer kinds have no torch lowering")


@register
class QMaxPool(_QPoolLowerings, MaxPool):
    kind = "qmaxpool"
    integer = True
    attrs = QPOOL_ATTRS

    def output_shape(self, a, ins):
        _check(a)
        return super().output_shape(a, ins)

    def forward(self, a, xs, w):
        lo, _ = quant.qrange(a["dtype"])
        win, _ = self._windows(a, xs[0].astype(np.int32), lo - 1)  # padding never wins
        out = win.max(axis=(3, 4))
        return np.clip(out, a["act_min"], a["act_max"]).astype(quant.DTYPES[a["dtype"]])


@register
class QAvgPool(_QPoolLowerings, AvgPool):
    kind = "qavgpool"
    integer = True
    attrs = QPOOL_ATTRS

    def output_shape(self, a, ins):
        _check(a)
        return super().output_shape({**a, "count_include_pad": False}, ins)

    def forward(self, a, xs, w):
        x = xs[0].astype(np.int64)
        win, pad = self._windows(a, x, 0)
        total = win.sum(axis=(3, 4))
        n, h, wd, _ = x.shape
        ones = np.zeros((1, h + pad[0] + pad[2], wd + pad[1] + pad[3], 1), np.int64)
        ones[:, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = 1
        cnt = windows(ones, a["kernel"], a["stride"], win.shape[1:3]).sum(axis=(3, 4))
        half = cnt // 2
        out = np.where(total >= 0, (total + half) // cnt, -((half - total) // cnt))
        return np.clip(out, a["act_min"], a["act_max"]).astype(quant.DTYPES[a["dtype"]])
