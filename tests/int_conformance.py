"""The integer column of the conformance table: one case per integer kind and attribute case.

Each case is a graph ``input (float) → quantize → [the integer layer] → dequantize`` (a join's
second input comes from a second quantize with its own scale and zero point), with random but
valid quantization parameters: scales and zero points of the type, int8 per-channel or uint8
per-tensor weights (with a weight zero point), int32 biases at input scale x weight scale, and
the fixed-point multipliers edgecnn.quant derives, as the TFLite importer and the quantizer do.
The cases cover what a vectorized integer kernel must get right: ragged channel counts (not a
multiple of any vector width), strides, padding on every side, dilation, groups, depthwise
multipliers, fused clamps that bite, a rescaling concatenation. A dequantized output is an
injective function of the integer tensor, so comparing it with ``==`` compares integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgecnn import quant
from edgecnn.core.graph import Graph, Layer
from edgecnn.layers.qactivation import activation_params

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class IntCase:
    id: str
    kind: str
    dtype: str
    attrs: dict = field(default_factory=dict)
    inputs: tuple[Shape, ...] = ((8, 8, 4),)
    seed: int = 0
    per_channel: bool = True  # int8 weights per output channel (uint8: per tensor, always)
    act: str | None = None  # fused activation: a clamp on the output grid
    batch: int = 2


CASES: list[IntCase] = []


def _add(id, kind, inputs, attrs=None, dtypes=("uint8", "int8"), **kw) -> None:
    for i, dt in enumerate(dtypes):
        CASES.append(IntCase(f"{id}-{dt}", kind, dt, attrs or {}, inputs, seed=len(CASES) + i,
                             **kw))


# qconv2d: pointwise, 3x3, strides, padding, dilation, groups, depthwise; ragged channels
_add("qconv-1x1", "qconv2d", ((6, 5, 20),), {"filters": 24, "kernel": 1})
_add("qconv-1x1-relu6", "qconv2d", ((7, 9, 33),), {"filters": 17, "kernel": 1}, act="relu6")
_add("qconv-3x3-pad1", "qconv2d", ((9, 8, 5),), {"filters": 8, "kernel": 3, "padding": 1})
_add("qconv-3x3-s2-asym", "qconv2d", ((11, 10, 3),),
     {"filters": 16, "kernel": 3, "stride": 2, "padding": (0, 0, 1, 1)}, act="relu")
_add("qconv-5x5-dil2", "qconv2d", ((12, 12, 6),),
     {"filters": 7, "kernel": 5, "dilation": 2, "padding": 4})
_add("qconv-3x3-groups2", "qconv2d", ((8, 8, 12),),
     {"filters": 10, "kernel": 3, "padding": 1, "groups": 2})
_add("qconv-7x7-s2-rgb", "qconv2d", ((17, 15, 3),),
     {"filters": 9, "kernel": 7, "stride": 2, "padding": 3})
_add("qconv-1x1-per-tensor-int8", "qconv2d", ((5, 5, 19),), {"filters": 21, "kernel": 1},
     dtypes=("int8",), per_channel=False)
_add("qdw-3x3-s1", "qconv2d", ((10, 9, 20),),
     {"filters": 20, "kernel": 3, "padding": 1, "groups": 20}, act="relu6")
_add("qdw-3x3-s2", "qconv2d", ((13, 12, 36),),
     {"filters": 36, "kernel": 3, "stride": 2, "padding": (0, 0, 1, 1), "groups": 36})
_add("qdw-3x3-mult2", "qconv2d", ((7, 7, 6),),
     {"filters": 12, "kernel": 3, "padding": 1, "groups": 6})
_add("qdw-5x5-s2", "qconv2d", ((14, 14, 9),),
     {"filters": 9, "kernel": 5, "stride": 2, "padding": 2, "groups": 9})
# qdense
_add("qdense-flat", "qdense", ((3, 3, 16),), {"units": 10})
_add("qdense-1x1", "qdense", ((1, 1, 300),), {"units": 37}, act="relu")
_add("qdense-per-channel", "qdense", ((2, 2, 9),), {"units": 5}, dtypes=("int8",))
# pools
_add("qmaxpool-2x2", "qmaxpool", ((8, 8, 5),), {"kernel": 2})
_add("qmaxpool-3x3-s2-pad", "qmaxpool", ((9, 9, 6),), {"kernel": 3, "stride": 2, "padding": 1})
_add("qmaxpool-ceil", "qmaxpool", ((7, 7, 3),), {"kernel": 2, "stride": 2, "ceil_mode": True})
_add("qavgpool-3x3-pad", "qavgpool", ((8, 7, 5),), {"kernel": 3, "stride": 1, "padding": 1})
_add("qavgpool-global", "qavgpool", ((7, 7, 19),), {"kernel": 7})
_add("qavgpool-ceil", "qavgpool", ((7, 7, 4),), {"kernel": 3, "stride": 2, "ceil_mode": True})
# joins
_add("qadd", "qadd", ((6, 6, 20), (6, 6, 20)))
_add("qadd-relu", "qadd", ((5, 4, 7), (5, 4, 7)), act="relu")
_add("qconcat-rescale", "qconcat", ((4, 4, 5), (4, 4, 11), (4, 4, 3)))
# elementwise
for _f in ("relu", "relu6", "leaky_relu"):
    _add(f"qactivation-{_f}", "qactivation", ((5, 6, 13),), {"function": _f})
_add("qsoftmax", "qsoftmax", ((1, 1, 37),))
_add("qsoftmax-pixels", "qsoftmax", ((3, 2, 10),))
_add("quantize-dequantize", "quantize", ((6, 7, 9),))
# max pools over whole vectors of channels and a ragged rest (ec_qelt_fast.c)
_add("qmaxpool-2x2-c17", "qmaxpool", ((8, 6, 17),), {"kernel": 2})
_add("qmaxpool-3x3-c100-ceil", "qmaxpool", ((7, 6, 100),),
     {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True})


# ---- building a case ----------------------------------------------------------------------------

def _qparams(rng, dtype: str, lo_real: float, hi_real: float) -> tuple[float, int]:
    """A scale and zero point that represent [lo_real, hi_real] (0 inside) in the type."""
    qlo, qhi = quant.qrange(dtype)
    scale = (hi_real - lo_real) / (qhi - qlo)
    zp = int(np.clip(round(qlo - lo_real / scale), qlo, qhi))
    return float(np.float32(scale)), zp


def build(case: IntCase) -> tuple[Graph, np.ndarray]:
    """The case's graph (weights included) and a float input batch covering the input range."""
    rng = np.random.default_rng(1000 + case.seed)
    dt = case.dtype
    layers = [Layer("input", "input", (), {"shape": case.inputs[0]})]
    weights: dict[str, np.ndarray] = {}
    ins = []
    # relu6 must bite: the output range reaches past 6
    top = rng.uniform(7, 9) if case.act == "relu6" else rng.uniform(1, 6)
    out_s, out_z = _qparams(rng, dt, -rng.uniform(1, 6), top)
    for i, shape in enumerate(case.inputs):
        s, z = _qparams(rng, dt, -rng.uniform(0.5, 3), rng.uniform(0.5, 3))
        if case.kind == "qconcat" and i == 1:  # shares the output's parameters: a plain copy
            s, z = out_s, out_z
        name = f"q{i}"
        src = "input"
        if i > 0:  # a join's other inputs: a 1x1 float conv of the input, then its own quantize
            src = f"branch{i}"
            layers.append(Layer(src, "conv2d", ("input",), {"filters": shape[2], "kernel": 1}))
            weights[f"{src}.weight"] = rng.normal(0, 0.5, (shape[2], case.inputs[0][2], 1, 1)
                                                  ).astype(np.float32)
            weights[f"{src}.bias"] = rng.normal(0, 0.3, shape[2]).astype(np.float32)
        layers.append(Layer(name, "quantize", (src,), {"dtype": dt, "scale": s, "zero_point": z}))
        ins.append((name, s, z))
    attrs, w = _layer(case, rng, ins, out_s, out_z)
    layers.append(Layer("op", case.kind, tuple(n for n, _, _ in ins), attrs))
    weights.update({f"op.{k}": v for k, v in w.items()})
    if case.kind == "qsoftmax":
        out_s, out_z = 1 / 256, quant.qrange(dt)[0]
    if case.kind == "quantize":  # the case is the edge pair itself
        layers.pop()
        out_s, out_z, last = ins[0][1], ins[0][2], ins[0][0]
    else:
        last = "op"
        if case.kind in ("qmaxpool", "qavgpool"):
            out_s, out_z = ins[0][1], ins[0][2]
    layers.append(Layer("dq", "dequantize", (last,), {"scale": out_s, "zero_point": out_z}))
    g = Graph(f"int-{case.id}", layers)
    g.weights = weights
    g.check_weights(g.name)
    h, wd, c = case.inputs[0]
    x = rng.uniform(-3.5, 3.5, (case.batch, h, wd, c)).astype(np.float32)
    return g, x


def _clamp(case: IntCase, s: float, z: int) -> dict:
    lo, hi = quant.activation_range(case.act, s, z, case.dtype)
    return {"act_min": lo, "act_max": hi}


def _layer(case: IntCase, rng, ins, out_s: float, out_z: int) -> tuple[dict, dict]:
    """(attributes, tensors) of the integer layer."""
    dt, kind = case.dtype, case.kind
    (x, si, zi) = ins[0]
    a = dict(case.attrs)
    if kind in ("qconv2d", "qdense"):
        cin = case.inputs[0][2]
        if kind == "qconv2d":
            groups = a.get("groups", 1)
            kh, kw = (a["kernel"],) * 2 if isinstance(a["kernel"], int) else a["kernel"]
            wshape = (a["filters"], cin // groups, kh, kw)
        else:
            wshape = (a["units"], int(np.prod(case.inputs[0])))
        n = wshape[0]
        per_channel = dt == "int8" and case.per_channel
        if dt == "int8":
            ws = rng.uniform(0.002, 0.03, n if per_channel else 1).astype(np.float32)
            wt, wz = rng.integers(-127, 128, wshape).astype(np.int8), 0
        else:
            ws = np.array([rng.uniform(0.002, 0.03)], np.float32)
            wz = int(rng.integers(90, 166))
            wt = rng.integers(0, 256, wshape).astype(np.uint8)
        m, e = quant.conv_multipliers(si, ws, out_s, legacy=not per_channel)
        bias = rng.integers(-20000, 20000, n).astype(np.int32)
        a.update(dtype=dt, input_scale=si, input_zero_point=zi, output_scale=out_s,
                 output_zero_point=out_z, weight_zero_point=wz, per_channel=per_channel,
                 **_clamp(case, out_s, out_z))
        return a, {"weight": wt, "bias": bias, "weight_scale": ws, "multiplier": m, "shift": e}
    if kind in ("qmaxpool", "qavgpool"):
        clamp = _clamp(case, si, zi)
        return {**a, "dtype": dt, "scale": si, "zero_point": zi, **clamp}, {}
    if kind == "qadd":
        (_, s2, z2) = ins[1]
        return {"dtype": dt, "input1_scale": si, "input1_zero_point": zi, "input2_scale": s2,
                "input2_zero_point": z2, "output_scale": out_s, "output_zero_point": out_z,
                **_clamp(case, out_s, out_z), **quant.add_params(si, s2, out_s)}, {}
    if kind == "qconcat":
        scales = np.array([s for _, s, _ in ins], np.float32)
        zps = np.array([z for _, _, z in ins], np.int32)
        return ({"dtype": dt, "output_scale": out_s, "output_zero_point": out_z},
                {"input_scale": scales, "input_zero_point": zps})
    if kind == "qactivation":
        f = a["function"]
        slope = 0.1 if f == "leaky_relu" else 0.0
        clamp = _clamp(IntCase("", "", dt, act=f if f != "leaky_relu" else None), out_s, out_z)
        return {"function": f, "slope": slope, "dtype": dt, "input_scale": si,
                "input_zero_point": zi, "output_scale": out_s, "output_zero_point": out_z,
                **clamp, **activation_params(slope, si, out_s)}, {}
    if kind == "qsoftmax":
        return {"dtype": dt, "input_scale": si, **quant.softmax_params(si)}, {}
    if kind == "quantize":
        return {}, {}
    raise AssertionError(kind)
