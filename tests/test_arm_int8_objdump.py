"""The ARM builds of the fast integer kernels (ec_qconv_direct.c, ec_qconv_depthwise.c,
ec_qadd_fast.c, and on the pi5 ec_qconv_sdot.c) compute with NEON. Each kernel function,
cross-compiled for the target with its flags and disassembled with the cross binutils'
``objdump -d``, must have a NEON integer multiply-accumulate in an innermost loop (from a
backward branch's target to the branch, with no other loop inside: the hot loop) and the NEON
requantization (VQRDMULH / SQRDMULH) in a loop. The checker is shown to reject builds without
them: the portable ec_int8.c convolution and, on AArch64, the fast kernels built without SIMD
registers. That the kernels are exact is the business of test_int8_kernels.py and
test_int8_compile.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import need
from edgecnn.compiler import build, kernels, targets
from edgecnn.compiler.build import RUNTIME_DIR

ARM_TARGETS = ("pi3", "aarch64", "pi4", "pi5")
# NEON integer multiply-accumulates (the kernels' current one first: int32 lanes,
# acc + w * x), and the widening / dot-product forms a future kernel may use instead
MAC = {
    "armv7": re.compile(r"^(vmla\.i32|vmlal\.s(8|16)|vpadal\.s(8|16)|vsdot\.s8)\s+[qd]"),
    "aarch64": re.compile(r"^(mla|smlal2?|sadalp|sdot)\s+v\d"),
}
REQUANT = {  # the rounding doubling high multiply of ec_qrequant
    "armv7": re.compile(r"^vqrdmulh\.s32\s+[qd]"),
    "aarch64": re.compile(r"^sqrdmulh\s+v\d"),
}
KERNELS = {  # source -> its kernel functions and what each must have in a loop
    "ec_qconv_direct.c": {f"ec_qconv_{k}_{s}": ("mac", "requant")
                          for k in ("pointwise", "direct") for s in ("u8", "i8")},
    "ec_qconv_depthwise.c": {f"ec_qconv_depthwise_{s}": ("mac", "requant")
                             for s in ("u8", "i8")},
    "ec_qadd_fast.c": {f"ec_qadd_fast_{s}": ("requant",) for s in ("u8", "i8")},
}

_FUNC = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
_TARGET = re.compile(r"\b([0-9a-f]+) <[^>+]+(?:\+0x[0-9a-f]+)?>")
_BRANCH = re.compile(r"^(b|b\.\w+|b[a-z]{2}(\.[nw])?|cbn?z|tbn?z)$")


def objdump_tool(t: targets.Target) -> str:
    """The cross binutils' objdump beside the target's gcc (arm-linux-gnueabihf-objdump)."""
    need("cross", t.compiler_path() is not None, f"needs {t.cc} ({t.debian_package})")
    tool = t.cc.removesuffix("gcc") + "objdump"
    need("cross", shutil.which(tool) is not None, f"needs {tool} (binutils of the cross gcc)")
    return tool


def compile_object(t: targets.Target, source: str, out: Path, extra: tuple = ()) -> Path:
    """``source`` of the runtime compiled for ``t`` with its flags (no OpenMP: the kernels'
    loops are the same, the outlined parallel regions would only rename them)."""
    cmd = [t.cc, *build.cflags(replace(t, openmp=False)), *extra, "-c", "-o", str(out),
           str(RUNTIME_DIR / source)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"$ {' '.join(cmd)}\n{r.stderr}"
    return out


def functions(objdump: str, obj: Path) -> dict[str, list[tuple[int, str, str]]]:
    """{function: [(address, mnemonic, operands)]} of ``objdump -d obj``."""
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(obj)], capture_output=True,
                          text=True, check=True).stdout
    out: dict[str, list] = {}
    insns: list = []
    for line in text.split("\n"):
        if m := _FUNC.match(line):
            insns = out.setdefault(m.group(2), [])
        elif (m := re.match(r"^\s*([0-9a-f]+):\t(\S+)(?:\t(.*))?$", line)) and insns is not None:
            insns.append((int(m.group(1), 16), m.group(2), (m.group(3) or "").strip()))
    return out


def loops(insns: list[tuple[int, str, str]]) -> list[tuple[int, int]]:
    """The loops of a function: (first, last address) from the target of each backward branch
    within it to the branch."""
    spans = []
    for addr, op, args in insns:
        m = _TARGET.search(args)
        if _BRANCH.match(op) and m and int(m.group(1), 16) < addr:
            spans.append((int(m.group(1), 16), addr))
    return spans


def innermost(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The loops that hold no other loop: the hot loops of a kernel."""
    return [s for s in spans
            if not any(o != s and s[0] <= o[0] and o[1] <= s[1] for o in spans)]


def inside(insns: list[tuple[int, str, str]], spans: list[tuple[int, int]]) -> list[str]:
    """The instructions (``mnemonic operands``) within ``spans``."""
    return [f"{op} {args}" for addr, op, args in insns
            if any(lo <= addr <= hi for lo, hi in spans)]


def missing(insns: list[tuple[int, str, str]], arch: str, wants: tuple[str, ...]) -> list[str]:
    """Which of ``wants`` the function lacks: "mac", a NEON integer multiply-accumulate in an
    innermost loop; "requant", the NEON requantization in a loop (after the innermost
    accumulation loop: once per block of outputs)."""
    spans = loops(insns)
    where = {"mac": (MAC[arch], inside(insns, innermost(spans))),
             "requant": (REQUANT[arch], inside(insns, spans))}
    return [w for w in wants if not any(where[w][0].match(i) for i in where[w][1])]


@pytest.mark.cross
@pytest.mark.parametrize("target", ARM_TARGETS)
@pytest.mark.parametrize("source", list(KERNELS))
def test_fast_kernels_use_neon_integer_instructions_in_their_loops(target, source, tmp_path):
    t = targets.get(target)
    objdump = objdump_tool(t)
    funcs = functions(objdump, compile_object(t, source, tmp_path / "k.o"))
    for name, wants in KERNELS[source].items():
        assert name in funcs, f"{target}: {name} not in {source}'s object ({sorted(funcs)})"
        assert loops(funcs[name]), f"{target}: no loop found in {name}"
        lacking = missing(funcs[name], t.arch, wants)
        assert not lacking, f"{target}: {name} lacks the NEON {' and '.join(lacking)} in its loops"


@pytest.mark.cross
@pytest.mark.parametrize("target", ["pi3", "aarch64"])
def test_portable_int8_convolution_is_rejected(target, tmp_path):
    """The check discriminates: the portable ec_int8.c convolution (which GCC partly
    auto-vectorizes) has no NEON requantization in its loops."""
    t = targets.get(target)
    funcs = functions(objdump_tool(t), compile_object(t, "ec_int8.c", tmp_path / "p.o"))
    for name in ("ec_qconv2d_u8", "ec_qconv2d_i8"):
        assert loops(funcs[name])
        assert "requant" in missing(funcs[name], t.arch, ("mac", "requant")), name


@pytest.mark.cross
def test_fast_kernels_without_simd_registers_are_rejected(tmp_path):
    """The check discriminates: the fast kernels built for AArch64 with -mgeneral-regs-only
    and the plain C99 vectors (-DEC_NO_VECTOR_EXT: no NEON intrinsics possible) have neither
    instruction."""
    t = targets.get("aarch64")
    obj = compile_object(t, "ec_qconv_direct.c", tmp_path / "g.o",
                         ("-mgeneral-regs-only", "-DEC_NO_VECTOR_EXT"))
    funcs = functions(objdump_tool(t), obj)
    for name in KERNELS["ec_qconv_direct.c"]:
        assert loops(funcs[name])
        assert missing(funcs[name], t.arch, ("mac", "requant")) == ["mac", "requant"], name


@pytest.mark.cross
def test_pi5_build_uses_the_dot_product(tmp_path):
    """The pi5's pointwise and direct kernels (the rows the compiler picks there:
    ec_qconv_sdot.c) have SDOT, 16 multiply-adds per instruction, in their innermost loops, and
    the NEON requantization."""
    t = targets.get("pi5")
    assert "dotprod" in kernels.features(t)
    row = next(k for k in kernels.KERNELS if k.name == "int8_pointwise_sdot")
    funcs = functions(objdump_tool(t), compile_object(t, row.source, tmp_path / "d.o"))
    for name in (f"ec_qconv_{k}_sdot_{s}" for k in ("pointwise", "direct") for s in ("u8", "i8")):
        insns = funcs[name]
        assert any(i.startswith("sdot ") for i in inside(insns, innermost(loops(insns)))), name
        assert not missing(insns, t.arch, ("mac", "requant")), name


@pytest.mark.cross
@pytest.mark.parametrize("target", ["pi4", "aarch64"])
def test_dot_product_kernel_refuses_cores_without_it(target, tmp_path):
    """Cortex-A72 (pi4) and generic ARMv8-A have no dot product: ec_qconv_sdot.c does not
    build for them, and the compiler does not pick it there."""
    t = targets.get(target)
    objdump_tool(t)
    assert "dotprod" not in kernels.features(t)
    cmd = [t.cc, *build.cflags(replace(t, openmp=False)), "-c", "-o", str(tmp_path / "x.o"),
           str(RUNTIME_DIR / "ec_qconv_sdot.c")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode != 0 and "needs AArch64 with the dot product" in r.stderr
