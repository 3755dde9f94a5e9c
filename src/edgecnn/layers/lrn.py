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
