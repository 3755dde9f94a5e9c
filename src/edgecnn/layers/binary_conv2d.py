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
from .conv2d import Conv2d


@register
class BinaryConv2d(LayerKind):
    kind = "binary_conv2d"
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
