"""Binary (XNOR) convolution, the ELL gallery's ``B`` layers.

Reference semantics: the weights and inputs are binarized to +1 / -1 (``sign(v) = +1 if
v > 0 else -1``); padded cells contribute 0 (they are neither +1 nor -1); each output channel
is scaled by a per-filter scale (XNOR-Net's alpha, initialized to 1 and learned or set to
mean |w|):

    out[n, y, x, o] = scale[o] * sum_{i, ky, kx} sign(w[o, i, ky, kx])
                                                 * sign(in[n, y*s+ky-p, x*s+kx-p, i])

With bitwise packing this is popcount(xnor(w_bits, x_bits)) corrected for padding, which is
what a compiled kernel computes. The stored weights are real-valued (kept for training); only
their signs matter at inference, so they count 1 bit each towards weight bytes.
"""

import numpy as np

from .base import Attr, LayerKind, TensorSpec, register
from .conv2d import Conv2d, c_conv_params, onnx_conv_attrs


@register
class BinaryConv2d(LayerKind):
    kind = "binary_conv2d"
    linear = True
    title = "Convolution"
    attrs = (Attr("filters", "int"), Attr("kernel", "int2", 3), Attr("stride", "int2", 1),
             Attr("padding", "pad4", 1))

    def _conv_attrs(self, a):
        return dict(a, dilation=(1, 1), groups=1, bias=False)

    def output_shape(self, a, ins):
        return Conv2d.output_shape(self, self._conv_attrs(a), ins)

    def tensors(self, a, ins):
        return {"weight": TensorSpec((a["filters"], ins[0][2], *a["kernel"]), "weight", "he",
                                     bits=1),
                "scale": TensorSpec((a["filters"],), "weight", "ones")}

    def macs(self, a, ins, out):
        return Conv2d.macs(self, self._conv_attrs(a), ins, out)

    def border(self, a):
        return Conv2d.border(self, a)

    def describe(self, a):
        return f"size={a['kernel'][0]}x{a['kernel'][1]}, stride={a['stride'][0]}, type=binary"

    def forward(self, a, xs, w):
        # sign() of real cells; the zero padding Conv2d adds stays 0 and so contributes nothing
        x = np.where(xs[0] > 0, 1.0, -1.0).astype(np.float32)
        wb = np.where(w["weight"] > 0, 1.0, -1.0).astype(np.float32)
        y = Conv2d.forward(self, self._conv_attrs(a), [x], {"weight": wb})
        return (y * w["scale"]).astype(np.float32)

    # ---- lowerings
    def to_torch(self, a, ins):
        from ._torch import BinarySign, F, Fn, nn, pad_lrtb, plain_strides, torch

        pad = pad_lrtb(a["padding"])

        def forward(m, x):  # scale[o] * conv(sign(x) zero-padded, sign(w))
            xb = plain_strides(F.pad(BinarySign.apply(x), pad))  # the padding stays 0
            y = F.conv2d(xb, BinarySign.apply(m.weight), stride=a["stride"])
            return y * m.scale.view(1, -1, 1, 1)

        return Fn(forward, weight=nn.Parameter(torch.zeros(a["filters"], ins[0][2], *a["kernel"])),
                  scale=nn.Parameter(torch.ones(a["filters"])))

    def to_onnx(self, b, l, ins, out):
        """sign(x) as uint8 {0, 2} with zero point 1, ConvInteger with int8 ±1 weights, Cast, Mul.

        The sums are exact int32, as a popcount kernel's; padded cells hold the zero point and so
        contribute 0, as in the reference. A float Conv with ±1 weights would let ONNX Runtime fold
        the scale and a following batch norm into the weights: the sums (0 for about 3% of the
        outputs of a 3x3x64 layer) would then round to tiny non-zero values and flip the next
        binary layer's sign(0) = -1.
        """
        a = l.attrs
        w = np.asarray(b.graph.weights[f"{l.name}.weight"])
        wb = b.const(f"{l.name}.weight", np.where(w > 0, 1, -1).astype(np.int8))
        zero = b.const(f"{l.name}/zero", np.float32(0.0))
        two, low = b.const(f"{l.name}/plus", np.uint8(2)), b.const(f"{l.name}/minus", np.uint8(0))
        zp = b.const(f"{l.name}/zero_point", np.uint8(1))
        gt, xq, yi, y = b.tmp(l, "positive"), b.tmp(l, "sign"), b.tmp(l, "sums"), b.tmp(l, "float")
        b.node("Greater", [ins[0], zero], [gt], l.name)
        b.node("Where", [gt, two, low], [xq], l.name)  # sign(x) + 1: +1 -> 2, -1 -> 0
        b.node("ConvInteger", [xq, wb, zp], [yi], l.name, **onnx_conv_attrs(a))  # int32 sums
        b.node("Cast", [yi], [y], l.name, to=1)  # 1 = TensorProto.FLOAT
        c = a["filters"]
        b.node("Mul", [y, b.weight(l, "scale", (c, 1, 1))], [out], l.name)
        return out

    def c_call(self, op, c):
        wt = op.weights
        params = c_conv_params(op, c)
        wsign = np.where(wt["weight"] > 0, 1.0, -1.0)
        call = (f"ec_binary_conv2d_ref(&p, &{c.ins[0]}, &{c.out}, {c.ptr(wsign)}, "
                f"{c.ptr(wt['scale'])}, {c.ptr(wt.get('bias'))});")
        return c.block(params, call)

