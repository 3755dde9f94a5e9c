"""Graph → the compiler's op list: lowering and the passes that simplify it.

An :class:`Op` is one kernel call: it reads values (tensors named after the layer that made
them) and writes one value. The passes, in order:

1. drop dropout (the identity at inference);
2. fold batchnorm and scale_bias into the conv2d or dense layer before them, when that layer's
   output has no other reader (w'[o] = w[o] * s[o], b'[o] = b[o] * s[o] + t[o]), or into a
   binary_conv2d (its per-filter scale times s, plus a bias t: only the weights' signs
   matter there); a batchnorm that cannot be folded becomes a scale_bias op;
3. fuse activations into their producer (conv2d, binary_conv2d, dense, add) when the producer's
   output has no other reader.

softmax, pooling, lrn, add, concat and flatten stay ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.accounting import value_dtypes
from ..core.graph import Graph
from ..errors import EdgecnnError
from ..layers import all_kinds, lowers_to
from ..layers.base import Shape

ACT_CODES = {None: "EC_ACT_NONE", "relu": "EC_ACT_RELU", "leaky_relu": "EC_ACT_LEAKY",
             "relu6": "EC_ACT_RELU6", "sigmoid": "EC_ACT_SIGMOID", "tanh": "EC_ACT_TANH",
             "prelu": "EC_ACT_PRELU"}

# kinds no op keeps: a pass removes them (dropout) or rewrites them (batchnorm: folded into
# its producer, or a scale_bias op), so they need no C call of their own
REWRITTEN = {"dropout": "drop_dropout", "batchnorm": "fold_affine"}
# the kinds the compiler lowers (a C reference call, or a rewrite); anything else fails at
# compile time naming the layer
SUPPORTED = frozenset({k for k, kind in all_kinds().items() if lowers_to(kind, "c")}
                      | REWRITTEN.keys())
# producers an activation can be fused into: the linear kinds and add, whose C kernels apply
# it (prelu needs per-channel slopes: not into dense)
FUSE_INTO = frozenset({k for k, kind in all_kinds().items() if kind.linear} | {"add"})


@dataclass
class Op:
    name: str  # the layer it came from (C comments, error messages)
    kind: str
    inputs: list[str]
    output: str
    attrs: dict
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    act: str | None = None  # fused activation function
    act_alpha: float = 0.0  # leaky slope
    folded: list[str] = field(default_factory=list)  # layers merged into this op


@dataclass
class Program:
    """The lowered model: ops in execution order over named values."""

    name: str
    input: str  # the input value
    input_shape: Shape
    output: str  # the value copied to the caller's output
    shapes: dict[str, Shape]
    ops: list[Op]
    dtypes: dict[str, str] = field(default_factory=dict)  # value -> float32, uint8 or int8
    # the first op quantizes the input straight from the caller's buffer: the float input
    # never enters the arena (an integer model's arena holds integers only)
    external_input: bool = False

    def dtype(self, value: str) -> str:
        return self.dtypes.get(value, "float32")

    def readers(self, value: str) -> list[Op]:
        return [op for op in self.ops if value in op.inputs]


def lower(g: Graph) -> Program:
    """Lower ``g`` (weights complete) into a Program and run the passes."""
    for l in g.layers[1:]:
        if l.kind not in SUPPORTED:
            raise EdgecnnError(f"not yet supported by the compiler: layer {l.name!r} of kind "
                               f"{l.kind!r}; run the model with --backend reference")
    g.check_weights(f"model {g.name!r}")
    dtypes = value_dtypes(g)
    for l in g.layers[1:]:
        _check_input_types(l, [dtypes[v] for v in l.inputs])
    ops = [Op(l.name, l.kind, list(l.inputs), l.name, dict(l.attrs),
              {k: _weight(v, l.spec.integer) for k, v in g.layer_weights(l).items()})
           for l in g.layers[1:]]
    prog = Program(g.name, g.input.name, g.input_shape, g.output.name, dict(g.shapes), ops,
                   dtypes)
    drop_dropout(prog)
    fold_affine(prog)
    fuse_activations(prog)
    prog.external_input = quantized_input(prog) is not None
    return prog


def quantized_input(prog: Program) -> Op | None:
    """The quantize op that, first and alone, reads the model's input (an integer model's
    usual edge), or None."""
    readers = prog.readers(prog.input)
    if len(readers) == 1 and readers[0].kind == "quantize" and prog.ops[0] is readers[0]:
        return readers[0]
    return None


def _weight(v: np.ndarray, integer: bool) -> np.ndarray:
    """Float kinds compute in float32; integer kinds keep their stored types (int8, int32...)."""
    return np.asarray(v) if integer else np.asarray(v, np.float32)


def _check_input_types(l, types: list[str]) -> None:
    """Float kinds read float32 (flatten reads either); integer kinds read integers, except
    quantize, which reads float32: a graph mixing them otherwise is refused, naming the layer."""
    floats = {t == "float32" for t in types}
    if l.kind == "flatten":
        return
    if l.kind == "quantize" or not l.spec.integer:
        if floats != {True}:
            raise EdgecnnError(f"layer {l.name!r} ({l.kind}) reads an integer tensor but "
                               "computes in float: put a dequantize layer before it")
    elif floats != {False} or len(set(types)) != 1:
        raise EdgecnnError(f"layer {l.name!r} ({l.kind}) needs integer inputs of one type, "
                           f"got {', '.join(types)}: put a quantize layer before it")


def _remove(prog: Program, op: Op) -> None:
    """Remove a single-input op whose output equals its input: readers read the input."""
    src = op.inputs[0]
    prog.ops.remove(op)
    for other in prog.ops:
        other.inputs = [src if v == op.output else v for v in other.inputs]
    if prog.output == op.output:
        prog.output = src


def _merge_into_producer(prog: Program, producer: Op, op: Op) -> None:
    """``op`` disappears; ``producer`` now writes op's output value (op was its only reader)."""
    prog.ops.remove(op)
    producer.output = op.output
    producer.folded.append(op.name)


def drop_dropout(prog: Program) -> None:
    for op in [o for o in prog.ops if o.kind == "dropout"]:
        _remove(prog, op)


def _producer(prog: Program, value: str) -> Op | None:
    return next((o for o in prog.ops if o.output == value), None)


def _sole_reader(prog: Program, op: Op) -> Op | None:
    """The producer of op's input, if op is its only reader and it is not the model output."""
    prod = _producer(prog, op.inputs[0])
    if prod is None or prog.output == prod.output or len(prog.readers(prod.output)) != 1:
        return None
    return prod


def _affine(op: Op) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(scale, shift) per channel of a batchnorm or scale_bias op, in float64."""
    w = {k: v.astype(np.float64) for k, v in op.weights.items()}
    if op.kind == "batchnorm":
        s = w["scale"] / np.sqrt(w["var"] + op.attrs["eps"])
        return s, w["shift"] - w["mean"] * s
    return w.get("scale"), w.get("bias")


def fold_affine(prog: Program) -> None:
    for op in [o for o in prog.ops if o.kind in ("batchnorm", "scale_bias")]:
        scale, shift = _affine(op)
        prod = _sole_reader(prog, op)
        if prod is not None and prod.kind == "binary_conv2d" and prod.act is None:
            _fold_into_binary(prod, scale, shift)
            _merge_into_producer(prog, prod, op)
        elif prod is not None and prod.kind in ("conv2d", "dense") and prod.act is None:
            w = prod.weights["weight"].astype(np.float64)
            n = w.shape[0]
            b = prod.weights.get("bias", np.zeros(n)).astype(np.float64)
            if scale is not None:
                w = w * scale.reshape((n,) + (1,) * (w.ndim - 1))
                b = b * scale
            if shift is not None:
                b = b + shift
            prod.weights = {"weight": w.astype(np.float32), "bias": b.astype(np.float32)}
            prod.attrs["bias"] = True
            _merge_into_producer(prog, prod, op)
        else:  # stays an op: a scale_bias with both parts explicit (None = absent)
            op.kind = "scale_bias"
            op.weights = {k: v.astype(np.float32) for k, v in
                          (("scale", scale), ("bias", shift)) if v is not None}
            op.attrs = {"scale": scale is not None, "bias": shift is not None}


def _fold_into_binary(prod: Op, scale, shift) -> None:
    """out = s * (alpha * sum) + b * s + t: the per-filter scale absorbs s, the bias the rest."""
    alpha = prod.weights["scale"].astype(np.float64)
    bias = prod.weights.get("bias", np.zeros_like(alpha)).astype(np.float64)
    if scale is not None:
        alpha, bias = alpha * scale, bias * scale
    if shift is not None:
        bias = bias + shift
    prod.weights.update(scale=alpha.astype(np.float32), bias=bias.astype(np.float32))


def fuse_activations(prog: Program) -> None:
    for op in [o for o in prog.ops if o.kind == "activation"]:
        prod = _sole_reader(prog, op)
        f = op.attrs["function"]
        if prod is None or prod.kind not in FUSE_INTO or prod.act is not None:
            continue
        if f == "prelu" and prod.kind == "dense":
            continue
        prod.act = f
        prod.act_alpha = float(op.attrs.get("slope", 0.0)) if f == "leaky_relu" else 0.0
        if f == "prelu":
            prod.weights["act_slope"] = op.weights["slope"]
        _merge_into_producer(prog, prod, op)
