"""Which kernel runs each op: the one place that decides between reference and fast kernels.

``choose(op, prog, nb, ref_only)`` returns the algorithm name for an op; the emitter and the
memory planner both read it (a fast convolution needs a zero border around its input, Winograd
needs scratch). A fast kernel is used only when its C source ships in the runtime directory, so
the compiler keeps working while kernels are added.
"""

from __future__ import annotations

from pathlib import Path

from .passes import Op, Program

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"

# algorithm -> the runtime source that implements it
SOURCES = {"direct": "ec_conv_fast.c", "depthwise": "ec_conv_fast.c",
           "winograd": "ec_winograd.c", "dense_fast": "ec_dense_fast.c"}


def available(algo: str) -> bool:
    src = SOURCES.get(algo)
    return src is None or (RUNTIME_DIR / src).is_file()


def choose(op: Op, prog: Program, nb: int, ref_only: bool) -> str:
    """"ref", "direct", "depthwise", "winograd" (conv2d) or "dense_fast" (dense)."""
    if ref_only:
        return "ref"
    if op.kind == "conv2d":
        return _choose_conv(op, prog, nb)
    if op.kind == "dense" and available("dense_fast"):
        return "dense_fast"
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
