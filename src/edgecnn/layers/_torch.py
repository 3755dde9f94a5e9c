"""torch building blocks for the kinds' ``to_torch`` lowerings.

Imported only from inside ``to_torch`` methods, so that importing a kind needs numpy only: this
module imports torch at its top. It holds what several kinds share, and the two
``torch.autograd.Function`` classes (they need torch to be defined).
"""

from __future__ import annotations

from ..errors import require

torch = require("torch", "torch")
nn = torch.nn
F = torch.nn.functional


class Fn(nn.Module):
    """A layer as a function ``forward(module, *inputs)``; ``parts`` (parameters, buffers'
    owners, submodules) become attributes under the names the state_dict will show."""

    def __init__(self, forward, **parts):
        super().__init__()
        self._forward = forward
        for name, part in parts.items():
            setattr(self, name, part)

    def forward(self, *xs):
        return self._forward(self, *xs)


def pad_lrtb(pad):
    """(top, left, bottom, right) → F.pad's (left, right, top, bottom)."""
    t, l, b, r = pad
    return (l, r, t, b)


def plain_strides(x):
    """x with default NCHW strides when it has one channel. torch 2.13's CPU conv2d reads
    uninitialized memory for some strided convolutions of a one-channel input whose strides
    also read as channels_last, such as F.pad's output (about 1 in 100 random shapes; found
    by tests/test_layers_torch.py; a relative of pytorch/pytorch#82060). A copy of a
    one-channel tensor is cheap."""
    n, c, h, w = x.shape
    if c == 1 and x.stride() != (h * w, h * w, w, 1):
        return x.clone(memory_format=torch.contiguous_format)
    return x


class BinarySign(torch.autograd.Function):
    """binary_conv2d's sign() forward (+1 if v > 0 else -1); the gradient passes through where
    |v| <= 1 (the clipped straight-through estimator of BinaryNet, Courbariaux et al. 2016)."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return torch.where(v > 0, 1.0, -1.0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * (v.abs() <= 1).to(grad.dtype)


def lrn(x, size, alpha, beta, k):
    """Across-channel LRN with the ONNX window: (size-1)//2 channels before, size//2 after."""
    sq = F.pad((x * x).unsqueeze(1), (0, 0, 0, 0, (size - 1) // 2, size // 2))
    s = F.avg_pool3d(sq, (size, 1, 1), stride=1, divisor_override=1).squeeze(1)
    return x / (k + alpha / size * s) ** beta


class OnnxLRN(torch.autograd.Function):
    """lrn, exported by torch.onnx as one ONNX LRN node (torch's own LRN exports as a dozen
    elementwise ops)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return lrn(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)
