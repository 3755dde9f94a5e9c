"""The compiler's kernels, one table row each: what it serves, what it needs, how it is called.

A :class:`Kernel` holds every fact of one C kernel: the layer kinds and attribute cases it
serves (``serves``), the instruction-set features it needs, the zero border it reads around its
input, its scratch, its weight packing and its C call. :func:`choose` picks, for each op, the
first row (in :data:`KERNELS` order, fastest first) that serves the op on the target; the
``ref`` row, the kind's own reference call (``LayerKind.c_call``), serves every kind the
compiler lowers. The integer kernels of one instruction set are new rows here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..layers import all_kinds, get_kind
from ..layers.conv2d import c_conv_params
from ..layers.lrn import c_lrn_call
from ..layers.merge import c_add_calls
from ..layers.pool import c_pool_call
from ..layers.qactivation import c_qlut_call
from ..layers.qconv2d import C_SUFFIX, c_qconv_params
from ..layers.qmerge import c_qadd_call
from ..layers.qpool import c_qpool_call
from ..layers.quantize import c_quantize_flat_call
from . import packing, targets
from .passes import Op, Program
from .targets import Target

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
# The runtime's headers, one per operation: every kernel below is declared in one of them (the
# model includes those whose functions it calls). ec_types.h holds the types they share.
OPERATION_HEADERS = ("ec_conv.h", "ec_pool.h", "ec_dense.h", "ec_eltwise.h", "ec_norm.h",
                     "ec_quant.h", "ec_tensor.h")

Views = dict  # value name -> plan.View (the planned buffer, its border included)


def _no_border(op: Op) -> tuple[int, int]:
    return (0, 0)


def _no_scratch(op: Op, prog: Program, views: Views, t: Target) -> int:
    return 0


def _same_weights(op: Op, nb: int) -> dict[str, np.ndarray]:
    return op.weights


@dataclass(frozen=True)
class Kernel:
    name: str  # the algorithm, as build.json, the profile and the C comments show it
    kinds: frozenset[str]  # layer kinds it serves (after the compiler's passes)
    source: str  # the runtime C file that defines it
    needs: frozenset[str]  # instruction-set features of the target (see :func:`features`)
    serves: Callable[[Op, Program, Target], bool]  # attribute cases, and when it wins
    call: Callable[[Op, object], str]  # the C statement(s); the object is emit's context
    border: Callable[[Op], tuple[int, int]] = _no_border  # zero rows/columns read around input
    scratch: Callable[[Op, Program, Views, Target], int] = _no_scratch  # floats of the arena
    pack: Callable[[Op, int], dict[str, np.ndarray]] = _same_weights  # weights as it reads them
    fast: bool = False  # a fast float kernel (build.FAST_SOURCES: built together)


def features(t: Target) -> frozenset[str]:
    """What a target's build offers the kernels: ``c99`` always; ``vector`` when EC_NB is a width
    the block kernels compile for (ec_vec_fast.h: GCC/clang vector extensions, or scalar loops
    under EC_PORTABLE); the instruction set EC_NB was chosen for."""
    out = {"c99"}
    if t.nb in packing.VECTOR_WIDTHS:
        out.add("vector")
    arm = any(a in t.cc for a in ("arm", "aarch64"))
    out |= {"neon"} if arm else {16: {"avx512f"}, 8: {"avx2", "fma"}}.get(t.nb, set())
    if t.nb == 16 and set(targets.X86_VNNI[1]) <= set(t.needs):
        out.add("avx512vnni")  # the target's code may use VPDPBUSD (targets.X86_VNNI)
    if t.arch == "aarch64" and set(targets.ARM_DOTPROD) <= set(t.needs):
        out.add("dotprod")  # SDOT (targets.ARM_DOTPROD: the pi5's Cortex-A76)
    return frozenset(out)


# ---- the rows -------------------------------------------------------------------------------

def _always(op: Op, prog: Program, t: Target) -> bool:
    return True


def _ref_call(op: Op, c) -> str:
    return get_kind(op.kind).c_call(op, c)


def _ref_scratch(op: Op, prog: Program, views: Views, t: Target) -> int:
    return _dense_gather(op, prog, views, t) if op.kind == "dense" else 0


def _dense_gather(op: Op, prog: Program, views: Views, t: Target) -> int:
    """A dense layer reading a bordered tensor gathers it into contiguous scratch first."""
    vw = views[op.inputs[0]]
    return vw.h * vw.w * vw.c if (vw.pad_h or vw.pad_w) else 0


def _conv_algorithm_is(name: str):
    def serves(op: Op, prog: Program, t: Target) -> bool:
        return conv_algorithm(op.attrs, prog.shapes[op.inputs[0]], prog.shapes[op.output],
                              t.nb) == name
    return serves


def _conv_border(op: Op) -> tuple[int, int]:
    """The fast convolutions read the padding as a zero border, without bounds checks."""
    t, l, b, r = op.attrs["padding"]
    return (max(t, b), max(l, r))


def _conv_block(fn: str, weights: str):
    def call(op: Op, c) -> str:
        params = c_conv_params(op, c)  # the weight blob's order: slopes, bias, weight
        bias = c.ptr(op.weights.get("bias"))
        w = c.ptr(c.packed(op)[weights])
        return c.block(params, f"{fn}(&p, &{c.ins[0]}, &{c.out}, {w}, {bias});")
    return call


def _winograd_scratch(op: Op, prog: Program, views: Views, t: Target) -> int:
    return int(packing.winograd_scratch_floats(prog.shapes[op.inputs[0]], prog.shapes[op.output],
                                               t.nb, t.openmp, op.attrs["kernel"][0]))


def _winograd_call(op: Op, c) -> str:
    off, n = c.scratch(op)
    params = c_conv_params(op, c)
    bias = c.ptr(op.weights.get("bias"))
    w = c.ptr(c.packed(op)["winograd"])
    k = op.attrs["kernel"][0]
    # the planned scratch must match the kernel's own count (else: error 3, no overrun)
    return c.block(params,
                   f"if (ec_winograd_scratch_floats(&p, &{c.ins[0]}, &{c.out}) > {n}u) return 3;",
                   f"ec_conv{k}x{k}_winograd(&p, &{c.ins[0]}, &{c.out}, {w}, {bias}, A + {off});")


def _dense_fast_call(op: Op, c) -> str:
    n_in = int(np.prod(c.shape(op.inputs[0])))
    gather, x = c.flat_input(op)
    bias = c.ptr(op.weights.get("bias"))
    w = c.ptr(c.packed(op)["dense"])
    return "\n".join([*gather, f"    ec_dense_fast({n_in}, {op.attrs['units']}, {x}, "
                               f"{c.out}.data, {w}, {bias}, {c.fused_act(op, slope=False)});"])


def _conv_as_dense_serves(op: Op, prog: Program, t: Target) -> bool:
    """A 1x1 convolution of a 1x1 map (MobileNets' classifier) is a matrix-vector product:
    the dense kernel streams its weights (several blocks at once) instead of filling register
    tiles with copies of the one pixel. Not with PReLU (the dense kernel has no slopes)."""
    a = op.attrs
    return (prog.shapes[op.inputs[0]][:2] == (1, 1) and prog.shapes[op.output][:2] == (1, 1)
            and tuple(a["kernel"]) == (1, 1) and a.get("groups", 1) == 1
            and not any(a["padding"]) and op.act != "prelu")


def _conv_as_dense_pack(op: Op, nb: int) -> dict[str, np.ndarray]:
    w = op.weights["weight"]  # (Co, Ci, 1, 1): pack_direct's layout is pack_dense's here
    return {"dense": packing.pack_dense(w.reshape(w.shape[0], w.shape[1]), nb)}


def _conv_as_dense_call(op: Op, c) -> str:
    cin, cout = c.shape(op.inputs[0])[2], c.shape(op.output)[2]
    bias = c.ptr(op.weights.get("bias"))
    w = c.ptr(c.packed(op)["dense"])
    # one pixel: its channels are contiguous whatever the buffers' borders
    return (f"    ec_dense_fast({cin}, {cout}, {c.ins[0]}.data, {c.out}.data, {w}, {bias}, "
            f"{c.fused_act(op, slope=False)});")


def _lrn_fast_serves(op: Op, prog: Program, t: Target) -> bool:
    """ec_lrn_fast calls libm's sqrtf and powf and keeps two rows of channels on the stack: not
    in the portable builds (expf is their only libm call) nor on microcontrollers."""
    return not t.board and "EC_PORTABLE" not in t.defines


BINARY_MAX_CELLS = 121  # EC_BINARY_MAX_CELLS in ec_binary.c: up to an 11x11 window


def _binary_bits_serves(op: Op, prog: Program, t: Target) -> bool:
    return op.attrs["kernel"][0] * op.attrs["kernel"][1] <= BINARY_MAX_CELLS


def _binary_bits_scratch(op: Op, prog: Program, views: Views, t: Target) -> int:
    h, w, c = prog.shapes[op.inputs[0]]  # the input's signs, [h][w][ceil(c / 64)] 64-bit words
    return h * w * -(-c // 64) * 2


def _binary_bits_call(op: Op, c) -> str:
    off, _ = c.scratch(op)
    wt = op.weights
    params = c_conv_params(op, c)
    return c.block(params,
                   f"ec_binary_conv2d_bits(&p, &{c.ins[0]}, &{c.out}, "
                   f"{c.ptr(c.packed(op)['bits'])}, {c.ptr(wt['scale'])}, "
                   f"{c.ptr(wt.get('bias'))}, A + {off});")


def pack_sign_bits(w_oihw: np.ndarray) -> np.ndarray:
    """Weight signs as bits for ec_binary_conv2d_bits: (O, I, kh, kw) -> [O][kh][kw][words]
    little-endian 64-bit words (bit b of word j: input channel 64 j + b, 1 = positive), returned
    as their float32 bit patterns (two per word) to sit in the weight blob."""
    o, i, kh, kw = w_oihw.shape
    words = -(-i // 64)
    bits = np.zeros((o, kh, kw, words * 64), np.uint8)
    bits[..., :i] = (np.asarray(w_oihw) > 0).transpose(0, 2, 3, 1)
    packed = np.packbits(bits, axis=-1, bitorder="little")  # (o, kh, kw, words * 8) bytes
    return np.ascontiguousarray(packed).view("<f4")


def _packer(name: str, fn: Callable[..., np.ndarray], with_nb: bool = True):
    def pack(op: Op, nb: int) -> dict[str, np.ndarray]:
        w = op.weights["weight"]
        return {name: fn(w, nb) if with_nb else fn(w)}
    return pack


QDW_MAX_TAPS = 49  # EC_QDW_MAX_TAPS in ec_conv.h: depthwise kernels up to 7x7


def qconv_algorithm(op: Op, prog: Program) -> str:
    """"int8_pointwise", "int8_direct", "int8_depthwise" or "int8" (the portable kernel) for a
    qconv2d or qdense op. The fast kernels serve groups 1 (pointwise: 1x1, stride 1, no
    padding, and every qdense) and depthwise with multiplier 1, when their folded int32 sums
    are exact (:func:`_qconv_exact`)."""
    a = op.attrs
    if op.kind == "qdense":
        algo = "int8_pointwise"
    elif a["groups"] == 1:
        one = tuple(a["kernel"]) == (1, 1) and tuple(a["stride"]) == (1, 1)
        algo = "int8_pointwise" if one and not any(a["padding"]) else "int8_direct"
    elif (a["groups"] == prog.shapes[op.inputs[0]][2] == prog.shapes[op.output][2]
          and a["kernel"][0] * a["kernel"][1] <= QDW_MAX_TAPS):
        algo = "int8_depthwise"
    else:
        return "int8"
    return algo if _qconv_exact(op) else "int8"


def _qconv_exact(op: Op) -> bool:
    """Can no int32 lane overflow? Every partial sum of the folded accumulator, bias - in_zp *
    sum(w') + sum(x * w') with raw |x| <= 255 and w' = w - w_zp, fits int32, and the
    requantization is in the range ec_qrequant handles (multiplier >= 0, shift -31..30)."""
    a, w = op.attrs, op.weights
    zp = a["weight_zero_point"]
    folded = packing.qconv_folded_bias(w["weight"], w["bias"], a["input_zero_point"], zp)
    wt = np.asarray(w["weight"], np.int64).reshape(len(folded), -1) - zp
    bound = np.abs(folded) + 255 * np.abs(wt).sum(axis=1)
    shift = np.asarray(w["shift"])
    return (bool(bound.max() < 1 << 31) and bool((np.asarray(w["multiplier"]) >= 0).all())
            and bool(((shift >= -31) & (shift <= 30)).all()))


def _qconv_serves(name: str):
    def serves(op: Op, prog: Program, t: Target) -> bool:
        # not on microcontrollers: int16 weights would double the flash of the portable kernel
        return not t.board and qconv_algorithm(op, prog) == name
    return serves


def _qconv_geometry(op: Op, shapes) -> tuple:
    return get_kind(op.kind).c_geometry(op, SimpleNamespace(shape=shapes.__getitem__))


def _qconv_scratch(op: Op, prog: Program, views: Views, t: Target) -> int:
    """Floats of arena for the input as int16 channel pairs (EC_NB >= 8), 0 otherwise."""
    return -(-packing.qconv_scratch_bytes(_qconv_geometry(op, prog.shapes), t.nb) // 4)


def _qconv_call(fn: str):
    def call(op: Op, c) -> str:
        packed = c.packed(op)
        params = c_qconv_params(op, get_kind(op.kind).c_geometry(op, c))
        args = ", ".join([c.ins[0], c.ptr(packed["qweight"]), c.ptr(packed["requant"])])
        sfx = C_SUFFIX[op.attrs["dtype"]]
        if fn == "ec_qconv_depthwise":
            return c.block(params, f"{fn}_{sfx}(&p, {args}, {c.out});", ctype="ec_qconv_params")
        if op.name not in c.plan.scratch:
            return c.block(params, f"{fn}_{sfx}(&p, {args}, NULL, {c.out});",
                           ctype="ec_qconv_params")
        off, n = c.scratch(op)
        # the planned scratch must match the kernel's own count (else: error 3, no overrun)
        return c.block(params, f"if (ec_qconv_scratch_bytes(&p) > {4 * n}) return 3;",
                       f"{fn}_{sfx}(&p, {args}, A + {off}, {c.out});", ctype="ec_qconv_params")
    return call


def _qconv_pack(depthwise: bool):
    def pack(op: Op, nb: int) -> dict[str, np.ndarray]:
        a, w = op.attrs, op.weights
        wt = np.asarray(w["weight"])
        wt = wt.reshape(*wt.shape, 1, 1) if wt.ndim == 2 else wt  # qdense: (units, n, 1, 1)
        zp = a["weight_zero_point"]
        folded = packing.qconv_folded_bias(wt, w["bias"], a["input_zero_point"], zp)
        qweight = (packing.pack_qdepthwise if depthwise else packing.pack_qconv)(wt, zp, nb)
        return {"qweight": qweight,
                "requant": packing.pack_qrequant(folded, w["multiplier"], w["shift"], nb)}
    return pack


def _qconv_dot_scratch(count: Callable[[tuple], int]):
    """The arena of a dot-product kernel (VNNI, SDOT), in floats: ``count`` gives its bytes
    (the input as bytes of one signedness, padded for direct, and its sums: per pixel, or per
    window and a running sum)."""
    def scratch(op: Op, prog: Program, views: Views, t: Target) -> int:
        return -(-count(_qconv_geometry(op, prog.shapes)) // 4)
    return scratch


def _qconv_dot_serves(name: str):
    def serves(op: Op, prog: Program, t: Target) -> bool:
        # the direct kernel reads a window row as kw x C contiguous bytes: dilation 1 along x
        plain = op.kind == "qdense" or op.attrs["dilation"][1] == 1
        return plain and _qconv_serves(name)(op, prog, t)
    return serves


def _qconv_dot_pack(signed: bool):
    """int8 weights w - b and the requantization of a dot-product kernel, whose folded bias also
    takes the activations' shift to the signedness the instruction wants: unsigned for VNNI's
    VPDPBUSD (int8 input: x = u - 128, ec_qconv_vnni.c), signed for SDOT (uint8 input:
    x = s + 128, ec_qconv_sdot.c); "d" (b - w_zp) is a literal of the call, not in the weight
    blob."""
    pack_weights, nb = ((packing.pack_qconv_sdot, packing.SDOT_NB) if signed else
                        (packing.pack_qconv_vnni, packing.VNNI_NB))

    def pack(op: Op, _nb: int) -> dict[str, np.ndarray]:
        a, w = op.attrs, op.weights
        wt = np.asarray(w["weight"])
        wt = wt.reshape(*wt.shape, 1, 1) if wt.ndim == 2 else wt  # qdense: (units, n, 1, 1)
        zp = a["weight_zero_point"]
        shift = ((-128 if a["dtype"] == "uint8" else 0) if signed else
                 (128 if a["dtype"] == "int8" else 0))
        folded = packing.qconv_folded_bias(wt, w["bias"], a["input_zero_point"] + shift, zp)
        qweight, d = pack_weights(wt, zp)
        return {"qweight": qweight, "d": np.array([d], np.int32),
                "requant": packing.pack_qrequant(folded, w["multiplier"], w["shift"], nb)}
    return pack


def _qconv_dot_call(fn: str, count: str):
    """The call of a dot-product kernel (VNNI, SDOT): weights, requantization, d, scratch."""
    def call(op: Op, c) -> str:
        packed = c.packed(op)
        params = c_qconv_params(op, get_kind(op.kind).c_geometry(op, c))
        args = ", ".join([c.ins[0], c.ptr(packed["qweight"]), c.ptr(packed["requant"]),
                          str(int(packed["d"][0]))])
        off, n = c.scratch(op)
        # the planned scratch must match the kernel's own count (else: error 3, no overrun)
        return c.block(params, f"if ({count}(&p) > {4 * n}) return 3;",
                       f"{fn}_{C_SUFFIX[op.attrs['dtype']]}(&p, {args}, A + {off}, {c.out});",
                       ctype="ec_qconv_params")
    return call


def _qadd_serves(op: Op, prog: Program, t: Target) -> bool:
    """ec_qadd_fast: ec_qrequant's range (shifts -31..30, multipliers >= 0); not on
    microcontrollers, which keep the one portable add."""
    a = op.attrs
    shifts = [a[f"{n}_shift"] for n in ("input1", "input2", "output")]
    mults = [a[f"{n}_multiplier"] for n in ("input1", "input2", "output")]
    return not t.board and all(-31 <= s <= 30 for s in shifts) and min(mults) >= 0


def _quantize_flat_serves(op: Op, prog: Program, t: Target) -> bool:
    """ec_quantize_flat_fast: the caller's float input, read in place; not on
    microcontrollers, nor on 32-bit ARM, whose NEON has no vector division or float-to-int
    rounding: there it executed 2.2 M instructions for MobileNet v1 0.25's 128x128x3 input
    against the portable loop's 0.9 M (benchmarks/arm_int8_counts.py, qemu)."""
    return (not t.board and t.arch != "armv7" and prog.external_input
            and op.inputs[0] == prog.input)


_VEC = frozenset({"vector"})
_C99 = frozenset({"c99"})
_QCONV = frozenset({"qconv2d", "qdense"})
_VNNI = frozenset({"avx512vnni"})
_DOTPROD = frozenset({"dotprod"})

KERNELS: tuple[Kernel, ...] = (
    # conv2d: conv_algorithm decides between the three fast rows; ref takes the rest
    Kernel("winograd", frozenset({"conv2d"}), "ec_winograd.c", _VEC,
           _conv_algorithm_is("winograd"), _winograd_call, _conv_border, _winograd_scratch,
           _packer("winograd", packing.pack_winograd), fast=True),
    Kernel("conv_as_dense", frozenset({"conv2d"}), "ec_dense_fast.c", _VEC, _conv_as_dense_serves,
           _conv_as_dense_call, pack=_conv_as_dense_pack, fast=True),
    Kernel("depthwise", frozenset({"conv2d"}), "ec_conv_depthwise.c", _VEC,
           _conv_algorithm_is("depthwise"), _conv_block("ec_conv2d_depthwise", "depthwise"),
           _conv_border, pack=_packer("depthwise", packing.pack_depthwise), fast=True),
    Kernel("direct", frozenset({"conv2d"}), "ec_conv_direct.c", _VEC,
           _conv_algorithm_is("direct"), _conv_block("ec_conv2d_direct", "direct"),
           _conv_border, pack=_packer("direct", packing.pack_direct), fast=True),
    Kernel("dense_fast", frozenset({"dense"}), "ec_dense_fast.c", _VEC, _always,
           _dense_fast_call, scratch=_dense_gather,
           pack=_packer("dense", packing.pack_dense), fast=True),
    Kernel("lrn_fast", frozenset({"lrn"}), "ec_norm_fast.c", _VEC, _lrn_fast_serves,
           lambda op, c: c_lrn_call("ec_lrn_fast", op, c), fast=True),
    Kernel("add_fast", frozenset({"add"}), "ec_add_fast.c", _VEC, _always,
           lambda op, c: c_add_calls("ec_add_fast", op, c), fast=True),
    # integer convolutions: qconv_algorithm decides; the portable INT8 row takes the rest
    Kernel("int8_pointwise_vnni", _QCONV, "ec_qconv_vnni.c", _VNNI,
           _qconv_serves("int8_pointwise"),
           _qconv_dot_call("ec_qconv_pointwise_vnni", "ec_qconv_vnni_scratch_bytes"),
           scratch=_qconv_dot_scratch(packing.qconv_vnni_scratch_bytes),
           pack=_qconv_dot_pack(signed=False)),
    Kernel("int8_direct_vnni", _QCONV, "ec_qconv_vnni.c", _VNNI,
           _qconv_dot_serves("int8_direct"),
           _qconv_dot_call("ec_qconv_direct_vnni", "ec_qconv_vnni_direct_scratch_bytes"),
           scratch=_qconv_dot_scratch(packing.qconv_vnni_direct_scratch_bytes),
           pack=_qconv_dot_pack(signed=False)),
    Kernel("int8_pointwise_sdot", _QCONV, "ec_qconv_sdot.c", _DOTPROD,
           _qconv_serves("int8_pointwise"),
           _qconv_dot_call("ec_qconv_pointwise_sdot", "ec_qconv_sdot_scratch_bytes"),
           scratch=_qconv_dot_scratch(packing.qconv_sdot_scratch_bytes),
           pack=_qconv_dot_pack(signed=True)),
    Kernel("int8_direct_sdot", _QCONV, "ec_qconv_sdot.c", _DOTPROD,
           _qconv_dot_serves("int8_direct"),
           _qconv_dot_call("ec_qconv_direct_sdot", "ec_qconv_sdot_direct_scratch_bytes"),
           scratch=_qconv_dot_scratch(packing.qconv_sdot_direct_scratch_bytes),
           pack=_qconv_dot_pack(signed=True)),
    Kernel("int8_pointwise", _QCONV, "ec_qconv_direct.c", _VEC, _qconv_serves("int8_pointwise"),
           _qconv_call("ec_qconv_pointwise"), scratch=_qconv_scratch, pack=_qconv_pack(False)),
    Kernel("int8_direct", _QCONV, "ec_qconv_direct.c", _VEC, _qconv_serves("int8_direct"),
           _qconv_call("ec_qconv_direct"), scratch=_qconv_scratch, pack=_qconv_pack(False)),
    Kernel("int8_depthwise", _QCONV, "ec_qconv_depthwise.c", _VEC,
           _qconv_serves("int8_depthwise"), _qconv_call("ec_qconv_depthwise"),
           pack=_qconv_pack(True)),
    Kernel("int8_add", frozenset({"qadd"}), "ec_qadd_fast.c", _VEC, _qadd_serves,
           lambda op, c: c_qadd_call(op, c, "ec_qadd_fast")),
    # the 8-bit kernels around the convolutions (ec_qelt_fast.c), not on microcontrollers
    Kernel("int8_maxpool", frozenset({"qmaxpool"}), "ec_qelt_fast.c", _VEC,
           lambda op, prog, t: not t.board,
           lambda op, c: c_qpool_call(op, c, "ec_qmaxpool_fast")),
    Kernel("int8_lut", frozenset({"qactivation"}), "ec_qelt_fast.c", _VEC,
           lambda op, prog, t: not t.board, lambda op, c: c_qlut_call(op, c, "ec_qlut_fast")),
    Kernel("int8_quantize", frozenset({"quantize"}), "ec_qelt_fast.c", _VEC,
           _quantize_flat_serves, lambda op, c: c_quantize_flat_call(op, c,
                                                                    "ec_quantize_flat_fast")),
    # pooling with vectorizable loops over channels (ec_pool.c: built into every model)
    Kernel("vector", frozenset({"maxpool", "avgpool"}), "ec_pool.c", _C99, _always,
           lambda op, c: c_pool_call(f"ec_{op.kind}", op, c)),
    Kernel("bits", frozenset({"binary_conv2d"}), "ec_binary.c", _C99, _binary_bits_serves,
           _binary_bits_call, scratch=_binary_bits_scratch,
           pack=_packer("bits", pack_sign_bits, with_nb=False)),
)
# the reference kernel of every kind the compiler lowers (ec_ref.c): always last
REF = Kernel("ref", frozenset(), "ec_ref.c", _C99, _always, _ref_call, scratch=_ref_scratch)
# the portable integer kernels (ec_int8.c, TFLite's arithmetic): every integer kind's own call
INT8 = Kernel("int8", frozenset(k for k, kind in all_kinds().items() if kind.integer),
              "ec_int8.c", _C99, _always, _ref_call)


def choose(op: Op, prog: Program, t: Target, ref_only: bool = False) -> Kernel:
    """The first row serving ``op`` on target ``t``; the reference when ``ref_only``."""
    if not ref_only:
        have = features(t)
        for k in KERNELS:
            if op.kind in k.kinds and k.needs <= have and k.serves(op, prog, t):
                return k
    return INT8 if op.kind in INT8.kinds else REF


def choose_all(prog: Program, t: Target, ref_only: bool = False) -> dict[str, Kernel]:
    """op name → its kernel: the pipeline's second stage (after ``passes.lower``)."""
    return {op.name: choose(op, prog, t, ref_only) for op in prog.ops}


def pack_all(prog: Program, chosen: dict[str, Kernel], nb: int) -> dict[str, dict]:
    """op name → the weights as its kernel reads them (packed for EC_NB = ``nb``)."""
    return {op.name: chosen[op.name].pack(op, nb) for op in prog.ops}


# ---- the convolution algorithm --------------------------------------------------------------

WINOGRAD_MIN_CIN = 8     # below, the input transform costs more than the GEMMs save
WINOGRAD_MIN_TILES = 16  # output tiles (4x4 for 3x3, 2x2 for 5x5): a 13x13 map or larger
WINOGRAD_MAX_U_PER_TILE = 1 << 19  # transformed weight floats per tile (their reuse)


def conv_algorithm(attrs: dict, in_shape: tuple[int, int, int],
                   out_shape: tuple[int, int, int], target_nb: int) -> str:
    """"winograd", "direct", "depthwise" or "ref" for a conv2d layer (normalized attrs).

    The fast kernels need groups == 1 (or depthwise) and a vector width they compile for;
    anything else goes to the reference kernel. Winograd F(4x4, 3x3) replaces direct 3x3
    stride-1 convolutions where it measured faster (benchmarks/kernels.py, one Zen 5 core,
    EC_NB=16: 1.7-2.8x on the seed model's 128x128 ... 16x16 layers): enough input channels
    that the transforms are cheap beside the 36 GEMMs (not the RGB first layer: 5x slower), and
    enough tiles to reuse the transformed weights, 4x larger than the direct ones (an 8x8
    map has 4 tiles for 18.9 MB of weights at 256->512 channels: no faster than direct in
    cache and slower once the weights come from DRAM). A map small enough to be one chunk of
    tiles reads them once: AlexNet's 13x13 layers (16 tiles, 14-21 MB of them) run faster than
    direct on a Zen 4 core, 1.35-2.2x at EC_NB=16 (1 or 2 threads, caches cold or warm) and
    1.1-1.6x at EC_NB=8 and 4. Winograd F(2x2, 5x5) serves 5x5 layers under the same rules
    (AlexNet's conv2 27x27x96->256: 2.0x at EC_NB=16, 1.4x at 8 and 4).
    """
    target_nb = getattr(target_nb, "nb", target_nb)  # an EC_NB or a compile target
    if target_nb not in packing.VECTOR_WIDTHS:
        return "ref"
    cin, cout, groups = in_shape[2], out_shape[2], attrs.get("groups", 1)
    if groups != 1:
        if groups == cin and cout % cin == 0:
            return "depthwise"
        return "ref"
    k = tuple(attrs["kernel"])
    square = k[0] == k[1] and k[0] in packing.WINOGRAD_FORMS
    plain = (tuple(attrs.get("stride", (1, 1))) == (1, 1)
             and tuple(attrs.get("dilation", (1, 1))) == (1, 1))
    if (square and plain and cin >= WINOGRAD_MIN_CIN
            and _winograd_pays(cin, cout, out_shape, k[0])):
        return "winograd"
    return "direct"


def _winograd_pays(cin: int, cout: int, out_shape: tuple[int, int, int], kernel: int) -> bool:
    tiles = packing.winograd_tiles(out_shape, kernel)
    u_floats = 36 * cin * cout
    return tiles >= WINOGRAD_MIN_TILES and u_floats <= WINOGRAD_MAX_U_PER_TILE * tiles
