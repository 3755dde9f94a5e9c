"""Which kernel runs each op: the one place that decides between reference and fast kernels.

``choose(op, prog, nb, ref_only)`` returns the algorithm name for an op; the emitter and the
memory planner both read it (a fast convolution needs a zero border around its input, Winograd
needs scratch). A fast kernel is used only when its C source ships in the runtime directory, so
the compiler keeps working while kernels are added.
"""

from __future__ import annotations

from pathlib import Path

from .passes import Op, Program

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"

# algorithm -> the runtime source that implements it
SOURCES = {"direct": "ec_conv_fast.c", "depthwise": "ec_conv_fast.c", "add_fast": "ec_conv_fast.c",
           "winograd": "ec_winograd.c", "dense_fast": "ec_dense_fast.c", "vector": "ec_pool.c",
           "bits": "ec_binary.c"}


def available(algo: str) -> bool:
    src = SOURCES.get(algo)
    if algo == "winograd" and not _packing_has("winograd_scratch_floats"):
        return False  # the planner must know the kernel's scratch at compile time
    return src is None or (RUNTIME_DIR / src).is_file()


def _packing_has(name: str) -> bool:
    try:
        from . import packing
    except ImportError:
        return False
    return hasattr(packing, name)


def choose(op: Op, prog: Program, nb: int, ref_only: bool) -> str:
    """"ref", "direct", "depthwise", "winograd" (conv2d), "dense_fast" (dense), "add_fast"
    (add, ec_conv_fast.c), "vector" (pooling, ec_pool.c) or "bits" (binary_conv2d on packed
    signs, ec_binary.c)."""
    if ref_only:
        return "ref"
    if op.kind == "conv2d":
        return _choose_conv(op, prog, nb)
    if op.kind == "dense" and available("dense_fast"):
        return "dense_fast"
    if op.kind == "add" and available("add_fast"):
        return "add_fast"
    if op.kind in ("maxpool", "avgpool"):
        return "vector"
    if op.kind == "binary_conv2d" and available("bits") and \
            op.attrs["kernel"][0] * op.attrs["kernel"][1] <= 121:  # EC_BINARY_MAX_CELLS
        return "bits"
    return "ref"


def _choose_conv(op: Op, prog: Program, nb: int) -> str:
    try:
        from .packing import choose_conv_algorithm
    except ImportError:  # the packer is not there: reference kernels only
        return "ref"
    algo = choose_conv_algorithm(op.attrs, prog.shapes[op.inputs[0]], prog.shapes[op.output], nb)
    if algo == "winograd" and not available("winograd"):
        algo = "direct"
    return algo if available(algo) else "ref"


def needs_border(op: Op, algo: str) -> tuple[int, int]:
    """The zero border (rows, columns) op's kernel reads around its input without checks."""
    if op.kind == "conv2d" and algo in ("direct", "depthwise", "winograd"):
        t, l, b, r = op.attrs["padding"]
        return (max(t, b), max(l, r))
    return (0, 0)
