"""The layer conformance table: one list of cases every backend runs.

A case is one layer kind with attributes, the shapes of its input(s), a seed and a tolerance.
``build(case)`` turns it into a small Graph with random weights and a random input batch:

- one input: ``input -> op``;
- several inputs (add, concat): ``input -> in0, in1, ... (1x1 conv2d each) -> op``, so that the
  op reads distinct tensors of the case's shapes.

The layer under test is always named ``op`` (:data:`OP`) and is the graph's output. A backend
test runs the graph (or the op alone on ``op_inputs``) and compares with the numpy reference by
:func:`assert_close`.

Tolerance: ``|actual - expected| <= atol * scale + rtol * |expected|`` elementwise, where
``scale = max(1, max |expected|)``: float32 sums of a few hundred terms in another order differ
by a few ulps of the output's magnitude, so atol is relative to that magnitude.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from edgecnn.core.graph import Graph, GraphBuilder, Layer
from edgecnn.layers.base import Shape

OP = "op"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    attrs: dict = field(default_factory=dict)
    inputs: tuple[Shape, ...] = ((8, 8, 4),)
    seed: int = 0
    atol: float = 1e-5
    rtol: float = 1e-4
    batch: int = 2
    input_scale: float = 1.0  # standard deviation of the random input


def _c(id, kind, inputs, attrs=None, **kw) -> Case:
    if isinstance(inputs[0], int):
        inputs = (inputs,)
    # the seed follows the id, so adding a case does not change the others' data
    return Case(id, kind, dict(attrs or {}), tuple(tuple(s) for s in inputs),
                seed=zlib.crc32(id.encode()), **kw)


CASES: list[Case] = []


def _add(*args, **kw) -> None:
    CASES.append(_c(*args, **kw))


# ---- conv2d ----------------------------------------------------------------------------------
_add("conv2d-1x1", "conv2d", (6, 5, 4), {"filters": 8, "kernel": 1})
_add("conv2d-1x1-from-1ch", "conv2d", (5, 5, 1), {"filters": 3, "kernel": 1})
_add("conv2d-1x1-one-pixel", "conv2d", (1, 1, 40), {"filters": 37, "kernel": 1})  # as dense
_add("conv2d-3x3-pad1", "conv2d", (8, 8, 5), {"filters": 8, "kernel": 3, "padding": 1})
_add("conv2d-5x5-pad2", "conv2d", (9, 9, 3), {"filters": 6, "kernel": 5, "padding": 2})
_add("conv2d-11x11-s4-alexnet", "conv2d", (35, 35, 3),
     {"filters": 16, "kernel": 11, "stride": 4})
_add("conv2d-3x3-s2-pad1", "conv2d", (9, 10, 4),
     {"filters": 8, "kernel": 3, "stride": 2, "padding": 1})
_add("conv2d-3x3-s2-nopad", "conv2d", (10, 9, 4), {"filters": 5, "kernel": 3, "stride": 2})
_add("conv2d-groups2", "conv2d", (7, 7, 6),
     {"filters": 8, "kernel": 3, "padding": 1, "groups": 2})
_add("conv2d-groups3-s2", "conv2d", (8, 8, 6),
     {"filters": 9, "kernel": 3, "stride": 2, "padding": 1, "groups": 3})
_add("conv2d-depthwise", "conv2d", (7, 7, 6),
     {"filters": 6, "kernel": 3, "padding": 1, "groups": 6})
_add("conv2d-depthwise-s2", "conv2d", (9, 9, 8),
     {"filters": 8, "kernel": 3, "stride": 2, "padding": 1, "groups": 8, "bias": False})
_add("conv2d-depthwise-mult2", "conv2d", (7, 7, 4),
     {"filters": 8, "kernel": 3, "padding": 1, "groups": 4})
_add("conv2d-depthwise-5x5-mult3", "conv2d", (9, 9, 3),
     {"filters": 9, "kernel": 5, "padding": 2, "groups": 3})
_add("conv2d-dilation2", "conv2d", (9, 9, 3),
     {"filters": 5, "kernel": 3, "padding": 2, "dilation": 2})
_add("conv2d-dilation-1x3", "conv2d", (9, 11, 3),
     {"filters": 4, "kernel": 3, "padding": (1, 3), "dilation": (1, 3)})
_add("conv2d-asym-pad-same-s2", "conv2d", (8, 8, 3),
     {"filters": 4, "kernel": 3, "stride": 2, "padding": (0, 0, 1, 1)})
_add("conv2d-asym-pad-1201", "conv2d", (7, 6, 3),
     {"filters": 4, "kernel": 3, "padding": (1, 2, 0, 1)})
_add("conv2d-rect-kernel-1x3", "conv2d", (6, 7, 4),
     {"filters": 5, "kernel": (1, 3), "padding": (0, 1)})
_add("conv2d-stride-2x1", "conv2d", (9, 7, 3),
     {"filters": 4, "kernel": 3, "stride": (2, 1), "padding": 1})
_add("conv2d-nobias", "conv2d", (6, 6, 4), {"filters": 6, "kernel": 3, "bias": False})
# one input channel, strided: torch 2.13 miscomputes these when the input's strides also read
# as channels_last (edgecnn.layers._torch.plain_strides)
_add("conv2d-1ch-4x4-s1x2", "conv2d", (7, 5, 1), {"filters": 3, "kernel": 4, "stride": (1, 2)})
_add("conv2d-1ch-asym-pad-s1x2", "conv2d", (1, 2, 1),
     {"filters": 1, "kernel": (2, 4), "stride": (1, 2), "padding": (1, 0, 3, 3), "bias": False})
_add("conv2d-3x3-pad1-wide", "conv2d", (8, 8, 64), {"filters": 32, "kernel": 3, "padding": 1})

# ---- normalization and affine ----------------------------------------------------------------
_add("batchnorm", "batchnorm", (6, 6, 8))
_add("batchnorm-eps1e-3", "batchnorm", (5, 4, 3), {"eps": 1e-3})
_add("scale_bias", "scale_bias", (6, 6, 5))
_add("scale_bias-scale-only", "scale_bias", (4, 4, 3), {"bias": False})
_add("scale_bias-bias-only", "scale_bias", (4, 4, 3), {"scale": False})
_add("lrn-alexnet", "lrn", (5, 5, 16), {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
     input_scale=30.0)
_add("lrn-size3-strong", "lrn", (4, 4, 7), {"size": 3, "alpha": 1.0, "beta": 0.5, "k": 1.0},
     input_scale=2.0)
_add("lrn-size4-even", "lrn", (4, 4, 9), {"size": 4, "alpha": 0.5, "beta": 0.75, "k": 1.0},
     input_scale=2.0)
_add("lrn-size1", "lrn", (3, 3, 4), {"size": 1, "alpha": 0.3, "beta": 1.0, "k": 1.0})

# ---- activations -----------------------------------------------------------------------------
_add("activation-relu", "activation", (6, 6, 4), {"function": "relu"})
_add("activation-leaky_relu", "activation", (6, 6, 4), {"function": "leaky_relu", "slope": 0.1})
_add("activation-leaky_relu-default", "activation", (4, 4, 3), {"function": "leaky_relu"})
_add("activation-relu6", "activation", (6, 6, 4), {"function": "relu6"}, input_scale=5.0)
_add("activation-sigmoid", "activation", (6, 6, 4), {"function": "sigmoid"}, input_scale=8.0)
_add("activation-tanh", "activation", (6, 6, 4), {"function": "tanh"}, input_scale=3.0)
_add("activation-prelu", "activation", (6, 6, 5), {"function": "prelu"})

# ---- pooling ---------------------------------------------------------------------------------
_add("maxpool-2x2-s2", "maxpool", (8, 8, 4), {"kernel": 2})
_add("maxpool-2x2-s2-odd", "maxpool", (7, 7, 3), {"kernel": 2, "stride": 2})
_add("maxpool-3x3-s2-pad1", "maxpool", (8, 8, 4), {"kernel": 3, "stride": 2, "padding": 1})
_add("maxpool-3x3-s2-alexnet", "maxpool", (13, 13, 4), {"kernel": 3, "stride": 2})
_add("maxpool-3x3-s2-ceil", "maxpool", (8, 8, 4),
     {"kernel": 3, "stride": 2, "ceil_mode": True})
_add("maxpool-2x2-s2-ceil-odd", "maxpool", (7, 9, 3),
     {"kernel": 2, "stride": 2, "ceil_mode": True})
_add("maxpool-3x3-s2-pad1-ceil", "maxpool", (8, 8, 4),
     {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True})
_add("maxpool-3x3-s1-pad1", "maxpool", (6, 6, 4), {"kernel": 3, "stride": 1, "padding": 1})
_add("maxpool-asym-pad", "maxpool", (8, 8, 3),
     {"kernel": 3, "stride": 2, "padding": (0, 0, 1, 1)})
_add("maxpool-pad2-k3", "maxpool", (6, 6, 3), {"kernel": 3, "stride": 1, "padding": 2})
_add("avgpool-2x2-s2", "avgpool", (8, 8, 4), {"kernel": 2})
_add("avgpool-3x3-s2-pad1-exclude", "avgpool", (8, 8, 4),
     {"kernel": 3, "stride": 2, "padding": 1, "count_include_pad": False})
_add("avgpool-3x3-s2-pad1-include", "avgpool", (8, 8, 4),
     {"kernel": 3, "stride": 2, "padding": 1, "count_include_pad": True})
_add("avgpool-3x3-s2-ceil", "avgpool", (8, 8, 4),
     {"kernel": 3, "stride": 2, "ceil_mode": True})
_add("avgpool-3x3-s2-pad1-ceil-exclude", "avgpool", (8, 8, 4),
     {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True})
_add("avgpool-3x3-s2-pad1-ceil-include", "avgpool", (8, 8, 4),
     {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": True})
_add("avgpool-2x2-s2-ceil-odd-include", "avgpool", (7, 7, 3),
     {"kernel": 2, "stride": 2, "ceil_mode": True, "count_include_pad": True})
_add("avgpool-3x3-s1-pad1-exclude", "avgpool", (6, 6, 4), {"kernel": 3, "stride": 1,
                                                            "padding": 1})
_add("avgpool-asym-pad-exclude", "avgpool", (8, 8, 3),
     {"kernel": 3, "stride": 2, "padding": (0, 0, 1, 1)})
_add("avgpool-asym-pad-include", "avgpool", (8, 8, 3),
     {"kernel": 3, "stride": 2, "padding": (1, 0, 0, 1), "count_include_pad": True})
_add("avgpool-pad2-k3-include", "avgpool", (6, 6, 3),
     {"kernel": 3, "stride": 1, "padding": 2, "count_include_pad": True})
_add("maxpool-ceil-window-wider-than-input", "maxpool", (3, 3, 2),
     {"kernel": 4, "stride": 3, "ceil_mode": True})
_add("avgpool-ceil-window-wider-than-input", "avgpool", (3, 3, 2),
     {"kernel": 4, "stride": 3, "ceil_mode": True})
_add("avgpool-ceil-pad1-include-partial", "avgpool", (3, 3, 2),
     {"kernel": 4, "stride": 3, "padding": 1, "ceil_mode": True, "count_include_pad": True})
_add("global_avgpool", "global_avgpool", (5, 7, 6))
_add("global_avgpool-1x1", "global_avgpool", (1, 1, 6))

# ---- the rest --------------------------------------------------------------------------------
_add("dropout", "dropout", (5, 5, 4), {"rate": 0.5})
_add("dense-from-1x1xC", "dense", (1, 1, 16), {"units": 10})
_add("dense-from-HxWxC", "dense", (3, 4, 5), {"units": 7})
_add("dense-nobias", "dense", (2, 2, 6), {"units": 5, "bias": False})
_add("flatten", "flatten", (3, 4, 5))
_add("softmax-1x1xC", "softmax", (1, 1, 10), input_scale=4.0)
_add("softmax-per-pixel", "softmax", (3, 3, 7), input_scale=4.0)
_add("add-2", "add", ((5, 5, 4), (5, 5, 4)))
_add("add-3", "add", ((4, 6, 3), (4, 6, 3), (4, 6, 3)))
_add("concat-2", "concat", ((5, 5, 3), (5, 5, 6)))
_add("concat-3", "concat", ((4, 4, 2), (4, 4, 5), (4, 4, 1)))

# ---- fake quantization: values on both sides of the clamp range ------------------------------
_add("fake_quant-uint8", "fake_quant", (5, 5, 4), {"scale": 0.05, "zero_point": 128},
     input_scale=3.0)
_add("fake_quant-int8", "fake_quant", (5, 5, 4),
     {"scale": 0.02, "zero_point": 0, "qmin": -128, "qmax": 127}, input_scale=1.5)
_add("fake_quant-uint8-zp0", "fake_quant", (4, 4, 3), {"scale": 0.1, "zero_point": 0},
     input_scale=5.0)

# ---- binary convolution: exact integer sums times a scale ------------------------------------
_add("binary_conv2d-3x3-pad1", "binary_conv2d", (6, 6, 8), {"filters": 8})
_add("binary_conv2d-3x3-s2-pad1", "binary_conv2d", (9, 9, 4), {"filters": 6, "stride": 2})
_add("binary_conv2d-1x1", "binary_conv2d", (5, 5, 16), {"filters": 4, "kernel": 1,
                                                         "padding": 0})
_add("binary_conv2d-asym-pad", "binary_conv2d", (6, 6, 3),
     {"filters": 4, "kernel": 3, "stride": 2, "padding": (0, 0, 1, 1)})

IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS), "conformance case ids must be unique"


# ---- whole graphs: a chain of many kinds, and a DAG -------------------------------------------

def chain_graph():
    """A chain of the single-input kinds (17x16x3 -> 10 classes); the DAG has global_avgpool.

    fake_quant is left out: a rounding step flipped by another backend's float32 order would
    move the output by a whole quantization step; its cases test it alone."""
    b = GraphBuilder("chain", (17, 16, 3))
    b.add("conv2d", filters=8, kernel=3, padding=1)
    b.add("batchnorm")
    b.add("activation", function="relu")
    b.add("maxpool", kernel=2)
    b.add("conv2d", filters=16, kernel=3, padding=1, groups=8)
    b.add("activation", function="prelu")
    b.add("conv2d", filters=12, kernel=1, bias=False)
    b.add("lrn", size=5, alpha=1e-2, beta=0.75, k=1.0)
    b.add("avgpool", kernel=3, stride=2, padding=1, ceil_mode=True)
    b.add("binary_conv2d", filters=8)
    b.add("scale_bias")
    b.add("activation", function="leaky_relu", slope=0.1)
    b.add("dropout", rate=0.3)
    b.add("flatten")
    b.add("dense", units=10)
    b.add("softmax")
    return b.build()


def dag_graph():
    """Residual add of three branches, then concat with an earlier tensor (12x12x3 -> 5)."""
    b = GraphBuilder("dag", (12, 12, 3))
    stem = b.add("conv2d", "stem.conv", filters=8, kernel=3, stride=2, padding=(0, 0, 1, 1))
    b.add("batchnorm", "stem.bn")
    act = b.add("activation", "stem.relu", function="relu6")
    left = b.add("conv2d", "left", inputs=act, filters=8, kernel=3, padding=1)
    right = b.add("conv2d", "right", inputs=act, filters=8, kernel=1)
    res = b.add("add", "res", inputs=[left, right, stem])
    b.add("concat", "cat", inputs=[res, act])
    b.add("maxpool", kernel=3, stride=2, padding=1)
    b.add("global_avgpool")
    b.add("dense", units=5)
    return b.build()


GRAPHS = [chain_graph, dag_graph]


# ---- building a case -------------------------------------------------------------------------

def input_names(case: Case) -> list[str]:
    """The layers the op reads: the graph input, or one 1x1 conv per input shape."""
    if len(case.inputs) == 1:
        return ["input"]
    return [f"in{i}" for i in range(len(case.inputs))]


def build(case: Case) -> tuple[Graph, np.ndarray]:
    """The case's graph (random weights, seeded) and a random NHWC float32 input batch."""
    layers = [Layer("input", "input", (), {"shape": case.inputs[0]})]
    names = input_names(case)
    if len(case.inputs) > 1:
        for name, shape in zip(names, case.inputs, strict=True):
            layers.append(Layer(name, "conv2d", ("input",), {"filters": shape[2], "kernel": 1}))
    layers.append(Layer(OP, case.kind, tuple(names), dict(case.attrs)))
    g = Graph(f"conformance-{case.id}", layers)
    rng = np.random.default_rng(case.seed)
    g.weights = random_weights(g, rng)
    x = (rng.standard_normal((case.batch, *case.inputs[0])) * case.input_scale)
    return g, x.astype(np.float32)


def random_weights(g: Graph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random tensors of every layer: weights ~ N(0, 1/fan_in), biases ~ N(0, 0.5²), batch
    norm with positive variance and non-trivial mean/scale/shift, prelu slopes of both signs."""
    out = {}
    for key, spec in g.tensor_specs().items():
        layer, name = key.rsplit(".", 1)
        kind = g.layer(layer).kind
        shape = spec.shape
        if kind == "batchnorm" and name == "var":
            w = rng.uniform(0.3, 2.0, shape)
        elif kind == "batchnorm" and name == "mean":
            w = rng.normal(0.0, 0.5, shape)
        elif name == "scale":  # batchnorm, scale_bias, binary_conv2d
            w = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
        elif name == "slope":
            w = rng.uniform(-0.5, 0.8, shape)
        elif spec.role == "bias":
            w = rng.normal(0.0, 0.5, shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            w = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        out[key] = w.astype(np.float32)
    return out


def op_inputs(g: Graph, x: np.ndarray, case: Case) -> list[np.ndarray]:
    """The NHWC arrays the op reads (the input, or the 1x1 convs' outputs by the reference)."""
    from edgecnn.core import reference

    names = input_names(case)
    if names == ["input"]:
        return [x]
    acts = reference.run(g, x, outputs=names)
    return [acts[n] for n in names]


def op_weights(g: Graph) -> dict[str, np.ndarray]:
    return g.layer_weights(g.layer(OP))


def logits(g: Graph) -> Graph:
    """``g`` without its final softmax. Whole graphs are compared on logits: a softmax squashes
    differences (a saturated one hides them entirely), so comparing its output is too weak."""
    if g.output.kind != "softmax":
        return g
    return Graph(g.name, g.layers[:-1], g.weights, g.preprocessing, g.labels, g.meta)


def max_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(actual, np.float64) - expected), initial=0.0))


def assert_close(actual: np.ndarray, expected: np.ndarray, case: Case, what: str = "") -> float:
    """Check the case's tolerance; return the max abs error."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (
        f"{case.id} {what}: shape {actual.shape} != expected {expected.shape}")
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    bound = case.atol * scale + case.rtol * np.abs(expected)
    err = np.abs(actual - expected)
    bad = err > bound
    if bad.any():
        i = tuple(int(v) for v in np.unravel_index(np.argmax(err - bound), err.shape))
        raise AssertionError(
            f"{case.id} {what}: {int(bad.sum())} of {err.size} values off; worst at {i}: "
            f"{actual[i]!r} vs expected {expected[i]!r} (max abs error {err.max():.3g}, "
            f"atol {case.atol}*{scale:.3g}, rtol {case.rtol})")
    return float(err.max(initial=0.0))
