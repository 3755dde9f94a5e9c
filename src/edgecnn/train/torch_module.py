"""The PyTorch backend: a Graph as a trainable ``torch.nn.Module``, and trained weights back.

``to_module(graph)`` builds one submodule per layer (the input layer has none) and runs them in
the graph's order, so any DAG (``add``, ``concat``) works. The module takes NCHW float32 (torch's
native layout) and returns the output layer's result as NCHW; a dense layer's ``(1, 1, units)``
comes out as ``(N, units, 1, 1)``.

Every layer means exactly what its numpy reference in ``edgecnn.layers`` computes:
- asymmetric padding is an explicit ``F.pad`` (torch layers pad symmetrically);
- pooling with padding wider than torch allows (more than half the kernel), asymmetric padding
  or ceil mode is computed from an explicitly padded input, divided by the reference's counts;
- LRN sums the ONNX channel window (floor((size-1)/2) before, ceil after), which equals
  ``F.local_response_norm`` only for odd sizes;
- dense and flatten read the input in H, W, C order (permuted to NHWC first);
- binary_conv2d binarizes with sign() (+1 if v > 0 else -1) in the forward pass and passes the
  gradient straight through where |v| <= 1 (the clipped straight-through estimator of
  BinaryNet, Courbariaux et al. 2016) so that it trains.

Parameter names: the submodule of layer ``L`` is ``module.layers[module.key_of[L]]`` (the name
with "." replaced, since torch forbids dots in module names), and ``module.state_keys`` maps
every graph tensor key ``"L.t"`` to its state_dict key, e.g. ``"bn1.mean"`` →
``"layers.bn1.running_mean"``, ``"conv1.weight"`` → ``"layers.conv1.conv.weight"``.
Batch normalization is ``nn.BatchNorm2d`` (so training updates the running statistics and
``nn.SyncBatchNorm.convert_sync_batchnorm`` applies).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.graph import Graph, Layer
from ..errors import EdgecnnError, GraphError, require

# graph tensor name -> torch state_dict name, for kinds whose torch module names them differently
TORCH_NAMES = {
    "batchnorm": {"scale": "weight", "shift": "bias", "mean": "running_mean",
                  "var": "running_var"},
}


def _torch():
    return require("torch", "torch")


def to_module(graph: Graph):
    """An ``nn.Module`` computing ``graph`` (weights copied from ``graph.weights``)."""
    graph.check_weights(f"model {graph.name!r}")
    module = _make_graph_module_class()(graph)
    load_graph_weights(module, graph)
    return module


def load_graph_weights(module, graph: Graph) -> None:
    """Copy ``graph.weights`` into the module's parameters and buffers (in place)."""
    torch = _torch()
    state = module.state_dict()
    with torch.no_grad():
        for key, torch_key in module.state_keys.items():
            value = torch.from_numpy(np.asarray(graph.weights[key], dtype=np.float32))
            if tuple(state[torch_key].shape) != tuple(value.shape):
                raise GraphError(f"tensor {key!r} has shape {tuple(value.shape)}, the torch "
                                 f"module expects {tuple(state[torch_key].shape)}")
            state[torch_key].copy_(value)


def to_graph_weights(module, graph: Graph) -> dict[str, np.ndarray]:
    """The module's trained tensors as graph weights (float32, keyed ``"<layer>.<tensor>"``)."""
    state = module.state_dict()
    out = {}
    for key, torch_key in module.state_keys.items():
        out[key] = state[torch_key].detach().cpu().numpy().astype(np.float32).copy()
    missing = sorted(set(graph.tensor_specs()) - set(out))
    if missing:
        raise EdgecnnError(f"the torch module has no tensor for {', '.join(missing)}: it was "
                           f"not built from model {graph.name!r}")
    return out


def update_graph(graph: Graph, module) -> Graph:
    """Write the module's trained weights (and batch-norm running statistics) into ``graph``."""
    graph.weights = to_graph_weights(module, graph)
    graph.check_weights(f"model {graph.name!r}")
    return graph


# ---- the module classes (defined on first use so that importing this file needs no torch) ----

_CLASSES: dict[str, Any] = {}


def _make_graph_module_class():
    if "GraphModule" not in _CLASSES:
        _CLASSES.update(_define_classes())
    return _CLASSES["GraphModule"]


def _define_classes() -> dict[str, Any]:
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    def pad_lrtb(pad):  # (top, left, bottom, right) -> F.pad's (left, right, top, bottom)
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

    class Conv(nn.Module):
        """conv2d: nn.Conv2d, with asymmetric padding applied by F.pad."""

        def __init__(self, a, cin):
            super().__init__()
            t, l, b, r = a["padding"]
            self.symmetric = (t == b and l == r)
            self.pad = pad_lrtb(a["padding"])
            self.conv = nn.Conv2d(cin, a["filters"], a["kernel"], a["stride"],
                                  padding=(t, l) if self.symmetric else 0,
                                  dilation=a["dilation"], groups=a["groups"], bias=a["bias"])

        def forward(self, x):
            if not self.symmetric:
                x = F.pad(x, self.pad)
            return self.conv(plain_strides(x))

    class BinarySign(torch.autograd.Function):
        """sign() forward (+1 if v > 0 else -1); gradient passed through where |v| <= 1."""

        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return torch.where(v > 0, 1.0, -1.0).to(v.dtype)

        @staticmethod
        def backward(ctx, grad):
            (v,) = ctx.saved_tensors
            return grad * (v.abs() <= 1).to(grad.dtype)

    class BinaryConv(nn.Module):
        """binary_conv2d: scale[o] * conv(sign(x) zero-padded, sign(w))."""

        def __init__(self, a, cin):
            super().__init__()
            self.a = a
            self.weight = nn.Parameter(torch.zeros(a["filters"], cin, *a["kernel"]))
            self.scale = nn.Parameter(torch.ones(a["filters"]))

        def forward(self, x):
            xb = F.pad(BinarySign.apply(x), pad_lrtb(self.a["padding"]))  # padding stays 0
            xb = plain_strides(xb)
            y = F.conv2d(xb, BinarySign.apply(self.weight), stride=self.a["stride"])
            return y * self.scale.view(1, -1, 1, 1)

    class ScaleBias(nn.Module):
        def __init__(self, a, c):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(c)) if a["scale"] else None
            self.bias = nn.Parameter(torch.zeros(c)) if a["bias"] else None

        def forward(self, x):
            if self.scale is not None:
                x = x * self.scale.view(1, -1, 1, 1)
            if self.bias is not None:
                x = x + self.bias.view(1, -1, 1, 1)
            return x

    class Activation(nn.Module):
        def __init__(self, a, c):
            super().__init__()
            self.function, self.negative_slope = a["function"], a["slope"]
            # prelu: a learned slope per channel (graph tensor "slope")
            self.slope = nn.Parameter(torch.full((c,), 0.25)) if self.function == "prelu" else None

        def forward(self, x):
            f = self.function
            if f == "relu":
                return F.relu(x)
            if f == "leaky_relu":
                return F.leaky_relu(x, self.negative_slope)
            if f == "relu6":
                return F.relu6(x)
            if f == "sigmoid":
                return torch.sigmoid(x)
            if f == "tanh":
                return torch.tanh(x)
            return F.prelu(x, self.slope)

    class Pool(nn.Module):
        """maxpool / avgpool exactly as the reference: native torch pooling where its rules
        coincide (symmetric padding of at most half the kernel), else explicit padding."""

        def __init__(self, a, op):
            super().__init__()
            self.a, self.op = a, op
            t, l, b, r = a["padding"]
            (kh, kw) = a["kernel"]
            self.native = t == b and l == r and 2 * t <= kh and 2 * l <= kw

        def forward(self, x):
            a = self.a
            t, l, _, _ = a["padding"]
            if self.native:
                if self.op == "max":
                    return F.max_pool2d(x, a["kernel"], a["stride"], (t, l),
                                        ceil_mode=a["ceil_mode"])
                return F.avg_pool2d(x, a["kernel"], a["stride"], (t, l),
                                    ceil_mode=a["ceil_mode"],
                                    count_include_pad=a["count_include_pad"])
            return self._general(x)

        def _general(self, x):
            from ..layers.base import window_out

            a = self.a
            n, c, h, w = x.shape
            t, l, b, r = a["padding"]
            (kh, kw), (sh, sw) = a["kernel"], a["stride"]
            oh = window_out(h, kh, sh, t, b, a["ceil_mode"])
            ow = window_out(w, kw, sw, l, r, a["ceil_mode"])
            # pad top/left as declared, bottom/right as far as the last window reaches
            eb = max(0, (oh - 1) * sh + kh - h - t)
            er = max(0, (ow - 1) * sw + kw - w - l)
            if self.op == "max":
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

    class FakeQuant(nn.Module):
        """fake_quant with the reference's rounding (half away from zero, computed in float64;
        torch.fake_quantize_* rounds half to even); in training the gradient passes straight
        through inside the representable range."""

        def __init__(self, a):
            super().__init__()
            self.a = a

        def forward(self, x):
            a = self.a
            v = x.double() / a["scale"]
            q = torch.sign(v) * torch.floor(v.abs() + 0.5) + a["zero_point"]
            q = q.clamp(a["qmin"], a["qmax"])
            y = ((q - a["zero_point"]) * a["scale"]).to(x.dtype)
            if torch.is_grad_enabled() and x.requires_grad:
                lo, hi = ((q_ - a["zero_point"]) * a["scale"] for q_ in (a["qmin"], a["qmax"]))
                xc = x.clamp(lo, hi)
                y = xc + (y - xc).detach()
            return y

    class GlobalAvgPool(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3), keepdim=True)

    class LRN(nn.Module):
        """Across-channel LRN with the ONNX window: (size-1)//2 channels before, size//2 after."""

        def __init__(self, a):
            super().__init__()
            self.a = a

        def forward(self, x):
            size = self.a["size"]
            if torch.onnx.is_in_onnx_export():  # one ONNX LRN node (same window and formula)
                return OnnxLRN.apply(x, size, self.a["alpha"], self.a["beta"], self.a["k"])
            return lrn(x, size, self.a["alpha"], self.a["beta"], self.a["k"])

    def lrn(x, size, alpha, beta, k):
        sq = F.pad((x * x).unsqueeze(1), (0, 0, 0, 0, (size - 1) // 2, size // 2))
        s = F.avg_pool3d(sq, (size, 1, 1), stride=1, divisor_override=1).squeeze(1)
        return x / (k + alpha / size * s) ** beta

    class OnnxLRN(torch.autograd.Function):
        """Exports as ONNX LRN (torch's own LRN exports as a dozen elementwise ops)."""

        @staticmethod
        def forward(ctx, x, size, alpha, beta, k):
            return lrn(x, size, alpha, beta, k)

        @staticmethod
        def symbolic(g, x, size, alpha, beta, k):
            return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)

    class Dense(nn.Module):
        """dense: flatten in H, W, C order, nn.Linear, output (N, units, 1, 1)."""

        def __init__(self, a, features):
            super().__init__()
            self.linear = nn.Linear(features, a["units"], bias=a["bias"])

        def forward(self, x):
            y = self.linear(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))
            return y[:, :, None, None]

    class Flatten(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 1, 1)

    class Softmax(nn.Module):
        def forward(self, x):
            return F.softmax(x, dim=1)  # over channels, per pixel

    class Add(nn.Module):
        def forward(self, *xs):
            out = xs[0]
            for x in xs[1:]:
                out = out + x
            return out

    class Concat(nn.Module):
        def forward(self, *xs):
            return torch.cat(xs, dim=1)

    def make_layer(l: Layer, ins: list[tuple[int, int, int]]):
        a, kind = l.attrs, l.kind
        c = ins[0][2]
        if kind == "conv2d":
            return Conv(a, c)
        if kind == "binary_conv2d":
            return BinaryConv(a, c)
        if kind == "batchnorm":
            return nn.BatchNorm2d(c, eps=a["eps"])
        if kind == "scale_bias":
            return ScaleBias(a, c)
        if kind == "activation":
            return Activation(a, c)
        if kind in ("maxpool", "avgpool"):
            return Pool(a, "max" if kind == "maxpool" else "avg")
        if kind == "global_avgpool":
            return GlobalAvgPool()
        if kind == "lrn":
            return LRN(a)
        if kind == "fake_quant":
            return FakeQuant(a)
        if kind == "dropout":
            return nn.Dropout(a["rate"])
        if kind == "dense":
            return Dense(a, ins[0][0] * ins[0][1] * c)
        if kind == "flatten":
            return Flatten()
        if kind == "softmax":
            return Softmax()
        if kind == "add":
            return Add()
        if kind == "concat":
            return Concat()
        raise GraphError(f"layer {l.name!r}: the torch backend has no layer of kind {kind!r}")

    # the name of a graph tensor inside each torch submodule (for wrapped torch layers)
    inner = {"conv2d": "conv.", "dense": "linear."}

    class GraphModule(nn.Module):
        """Runs the graph's layers in order; input and output NCHW float32."""

        def __init__(self, graph: Graph):
            super().__init__()
            self.graph_name = graph.name
            self.order: list[tuple[str, str, tuple[str, ...]]] = []  # (layer, key, inputs)
            self.key_of: dict[str, str] = {}
            self.state_keys: dict[str, str] = {}
            self.layers = nn.ModuleDict()
            self.input_name = graph.input.name
            self.output_name = graph.output.name
            self.input_shape = graph.input_shape
            for l in graph.layers[1:]:
                key = _module_key(l.name, self.key_of)
                self.key_of[l.name] = key
                self.layers[key] = make_layer(l, graph.input_shapes(l))
                self.order.append((l.name, key, l.inputs))
                names = TORCH_NAMES.get(l.kind, {})
                for t in l.k.tensors(l.attrs, graph.input_shapes(l)):
                    self.state_keys[f"{l.name}.{t}"] = (
                        f"layers.{key}.{inner.get(l.kind, '')}{names.get(t, t)}")
            self._last_use = {}
            for i, (_, _, inputs) in enumerate(self.order):
                for src in inputs:
                    self._last_use[src] = i

        def forward(self, x):
            h, w, c = self.input_shape
            if x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
                raise EdgecnnError(f"model {self.graph_name!r} takes NCHW input of shape "
                                   f"(N, {c}, {h}, {w}), got {tuple(x.shape)}")
            acts = {self.input_name: x}
            for i, (name, key, inputs) in enumerate(self.order):
                acts[name] = self.layers[key](*[acts[s] for s in inputs])
                for src in inputs:  # free buffers after their last reader
                    if self._last_use[src] == i and src != self.output_name:
                        acts.pop(src, None)
            return acts[self.output_name]

    return {"GraphModule": GraphModule, "BinarySign": BinarySign}


def _module_key(name: str, taken: dict[str, str]) -> str:
    """A torch module name for a layer name: no dots (torch forbids them), unique."""
    key = name.replace(".", "_")
    used = set(taken.values())
    n = 1
    base = key
    while key in used:
        n += 1
        key = f"{base}_{n}"
    return key
