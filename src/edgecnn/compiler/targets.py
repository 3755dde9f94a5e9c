"""The compile targets, in one table: compiler, flags, vector width EC_NB, threads, and what a
machine needs to run the result.

``nb`` is the float block width the fast kernels and the weight packer share (-DEC_NB): 16 for
AVX-512, 8 for AVX2 (x86-64-v3), 4 for NEON, SSE and the portable ``c99`` build. ``host`` is
resolved on the running machine (:func:`host_target`): -march=native and the widest vector its
CPU has on x86-64, -mcpu=native with NEON on ARM.

``EDGECNN_HOST_ISA=avx2`` makes ``host`` (and the tests) treat an AVX-512 CPU as AVX2-only:
-march=x86-64-v3, EC_NB=8, and AVX-512 builds count as not runnable here. It is how the
AVX2 code path is built and checked on a machine that has AVX-512.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass, field, replace

from ..errors import EdgecnnError
from . import armhost

HOST_ISA_ENV = "EDGECNN_HOST_ISA"


@dataclass(frozen=True)
class Machine:
    """What a running machine can execute: its architecture and CPU feature flags."""

    arch: str  # "x86_64", "aarch64", "armv7" or another platform.machine() value
    flags: frozenset[str]


def this_machine() -> Machine:
    """The running machine, as ``EDGECNN_HOST_ISA`` lets it appear (see the module doc)."""
    arch = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    if arch.startswith("armv7") or arch.startswith("armv8l"):
        arch = "armv7"  # a 32-bit userland on a v7 or v8 core: Raspberry Pi OS armhf
    flags = _cpu_flags()
    isa = os.environ.get(HOST_ISA_ENV, "").strip().lower()
    if isa not in ("", "native", "avx2"):
        raise EdgecnnError(f"{HOST_ISA_ENV}={isa!r} is not understood: use 'avx2' (treat the "
                           f"CPU as AVX2-only) or 'native'")
    if isa == "avx2" and arch == "x86_64":
        flags = {f for f in flags if not f.startswith("avx512")}
    return Machine(arch, frozenset(flags))


@dataclass(frozen=True)
class Target:
    name: str
    cc: str  # the C compiler command
    cflags: tuple[str, ...]  # architecture and optimization flags
    nb: int  # EC_NB
    openmp: bool = True
    # -std=c99 everywhere: gcc and clang accept the kernels' vector-extension attributes in c99
    # mode (the tests build every target with -Wall -Wextra -Werror); gnu99 if ever needed
    std: str = "c99"
    debian_package: str = ""  # where `cc` comes from, for the missing-compiler message
    qemu: str = ""  # the user-mode emulator that runs its binaries on another host
    sysroot: str = ""  # for qemu -L
    description: str = ""
    defines: tuple[str, ...] = field(default=())
    board: str = ""  # microcontrollers: the emulated board (compiler/mcu.py BOARDS), else ""
    # where its code runs: the machine architecture ("" = that of the compiler `cc`, i.e. the
    # build machine) and the CPU flags (/proc/cpuinfo names) its instructions need
    arch: str = ""
    needs: tuple[str, ...] = ()  # sorted, so that repr() (part of the build cache key) is stable

    def runs_on(self, m: Machine) -> bool:
        """Can ``m`` execute code built for this target?"""
        return (self.arch or m.arch) == m.arch and set(self.needs) <= m.flags

    def compiler_path(self) -> str | None:
        return shutil.which(self.cc)

    def require_compiler(self) -> str:
        path = self.compiler_path()
        if path is None:
            pkg = f" (Debian/Ubuntu: sudo apt install {self.debian_package})" \
                if self.debian_package else ""
            raise EdgecnnError(f"target {self.name!r} needs the C compiler {self.cc!r}, which is "
                               f"not installed{pkg}")
        return path


# the cross compilers' C libraries are separate packages (libc6-dev-*-cross), not dependencies
_ARMHF = dict(cc="arm-linux-gnueabihf-gcc", debian_package="gcc-arm-linux-gnueabihf "
              "libc6-dev-armhf-cross", qemu="qemu-arm", sysroot="/usr/arm-linux-gnueabihf",
              arch="armv7")
_ARM64 = dict(cc="aarch64-linux-gnu-gcc", debian_package="gcc-aarch64-linux-gnu "
              "libc6-dev-arm64-cross", qemu="qemu-aarch64", sysroot="/usr/aarch64-linux-gnu",
              arch="aarch64")
_X86 = dict(cc="cc", debian_package="gcc", arch="x86_64")
# x86-64 micro-architecture levels and the CPU flags each needs (the psABI's definition, as
# /proc/cpuinfo spells them); EC_NB follows the widest float vector of the level
X86_LEVELS = {
    16: ("-march=x86-64-v4", ("avx2", "avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl",
                              "fma")),
    8: ("-march=x86-64-v3", ("avx2", "bmi2", "f16c", "fma", "movbe")),
    4: ("-march=x86-64-v2", ("popcnt", "sse4_2", "ssse3")),
}
# AVX-512 VNNI (VPDPBUSD, 8-bit dot products; Ice Lake, Zen 4 and later) is no psABI level's:
# a flag on top of x86-64-v4, enabled where the CPU has it (kernels.features: "avx512vnni")
X86_VNNI = ("-mavx512vnni", ("avx512_vnni",))
# The ARMv8.2 dot product (SDOT/UDOT; Cortex-A76 and later, optional from ARMv8.2-A): AArch64
# targets whose -mcpu has it list its flag in `needs` (kernels.features: "dotprod"), and gcc
# defines __ARM_FEATURE_DOTPROD for them
ARM_DOTPROD = ("asimddp",)
_O3 = ("-O3", "-ffp-contract=fast")
# 32-bit ARM: gcc vectorizes float arithmetic with NEON only when allowed to ignore IEEE
# denormals (NEON flushes them to zero); without this flag the kernels compile to scalar VFP.
_ARMV7 = ("-mcpu=cortex-a53", "-mfpu=neon-fp-armv8", "-mfloat-abi=hard",
          "-funsafe-math-optimizations", *_O3)

# Cortex-M microcontrollers: bare metal, portable reference kernels in plain C, hard-float ABI;
# weights in flash, the caller's arena in RAM. Each runs on a qemu-system-arm board (mcu.py).
_PORTABLE = ("EC_PORTABLE", "EC_NO_VECTOR_EXT")
_MCU = ("-pedantic", "-O2", "-ffunction-sections", "-fdata-sections")  # ISO C99, each
# function and constant in its own section so that the linker drops what is unused
_CORTEX_M = [  # n, -mcpu/-mfpu, emulated board, description
    (4, ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16"), "mps2-an386",
     "Cortex-M4F (single-precision FPU), bare metal; emulated board mps2-an386"),
    (7, ("-mcpu=cortex-m7", "-mfpu=fpv5-d16"), "mps2-an500",
     "Cortex-M7 (double-precision FPU), bare metal; emulated board mps2-an500"),
    (55, ("-mcpu=cortex-m55",), "mps3-an547",
     "Cortex-M55 (Helium/MVE, FPU), bare metal; emulated board mps3-an547"),
]

TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("host", "cc", ("-march=native", *_O3), nb=0, debian_package="gcc",
           description="this machine (-march=native, OpenMP)"),
    Target("x86-64", cflags=(X86_LEVELS[8][0], *_O3), nb=8, needs=X86_LEVELS[8][1],
           description="portable x86-64 with AVX2/FMA (x86-64-v3)", **_X86),
    Target("x86-64-vnni", cflags=(X86_LEVELS[16][0], X86_VNNI[0], *_O3), nb=16,
           needs=tuple(sorted(X86_LEVELS[16][1] + X86_VNNI[1])),
           description="x86-64 with AVX-512 and VNNI (x86-64-v4 + avx512vnni)", **_X86),
    Target("x86-64-v2", cflags=(X86_LEVELS[4][0], *_O3), nb=4, needs=X86_LEVELS[4][1],
           description="older x86-64 without AVX (SSE4.2; the x86-64 fallback)", **_X86),
    Target("pi3", cflags=_ARMV7, nb=4,
           description="Raspberry Pi 3, 32-bit Raspberry Pi OS (armhf)", **_ARMHF),
    Target("armv7", cflags=_ARMV7, nb=4,
           description="32-bit ARMv7 with NEON (armhf), as pi3", **_ARMHF),
    Target("pi4", cflags=("-mcpu=cortex-a72", *_O3), nb=4,
           description="Raspberry Pi 4, 64-bit OS (aarch64)", **_ARM64),
    # Cortex-A76 code may use the ARMv8.2 dot product, half-precision and LSE atomics
    Target("pi5", cflags=("-mcpu=cortex-a76", *_O3), nb=4,
           needs=("asimddp", "asimdhp", "atomics"),
           description="Raspberry Pi 5, 64-bit OS (aarch64)", **_ARM64),
    Target("aarch64", cflags=("-march=armv8-a", *_O3), nb=4,
           description="generic 64-bit ARMv8-A", **_ARM64),
    # plain ISO C99 as a microcontroller toolchain needs it: no vector extensions, no threads
    Target("c99", "cc", ("-O2", "-pedantic"), nb=4, openmp=False, debian_package="gcc",
           description="portable C99: no SIMD, no threads, no malloc, caller-provided arena",
           defines=("EC_PORTABLE", "EC_NO_VECTOR_EXT")),
    *[Target(f"cortex-m{n}", "arm-none-eabi-gcc", (*cpu, "-mthumb", "-mfloat-abi=hard", *_MCU),
             nb=4, openmp=False, debian_package="gcc-arm-none-eabi libnewlib-arm-none-eabi",
             qemu="qemu-system-arm", description=desc, defines=_PORTABLE, board=board,
             arch="cortex-m")
      for n, cpu, board, desc in _CORTEX_M],
]}


def get(name: str, cc: str | None = None, machine: Machine | None = None) -> Target:
    """The target called ``name`` (with ``cc`` overriding its compiler, e.g. clang); ``host`` is
    resolved for ``machine`` (default: the running one)."""
    try:
        t = TARGETS[name]
    except KeyError:
        raise EdgecnnError(f"unknown target {name!r} (known: {', '.join(TARGETS)})") from None
    if name == "host":
        t = host_target(machine or this_machine())
    if cc:
        t = replace(t, cc=cc)
    return t


def host_target(m: Machine) -> Target:
    """``host`` for machine ``m``: its own ISA, built by its own compiler."""
    base = TARGETS["host"]
    if m.arch == "x86_64":
        nb = host_nb(m)
        # treated as AVX2-only (EDGECNN_HOST_ISA=avx2, which hides the AVX-512 flags): name the
        # AVX2 level, since -march=native would enable the AVX-512 the CPU still has
        avx2_only = os.environ.get(HOST_ISA_ENV, "").strip().lower() == "avx2" and nb == 8
        flags = (X86_LEVELS[8][0],) if avx2_only else ("-march=native",)
        # -march=native enables VNNI exactly where the CPU has it; the target says so
        vnni = X86_VNNI[1] if nb == 16 and set(X86_VNNI[1]) <= m.flags else ()
        return replace(base, cflags=(*flags, *_O3), nb=nb, arch=m.arch,
                       needs=tuple(sorted(X86_LEVELS[nb][1] + vnni)))
    if m.arch in ("aarch64", "armv7"):
        arm = armhost.detect()
        # a real 32-bit ARM core without NEON gets the scalar build below; under emulation
        # (no ARM cpuinfo) qemu's CPU has NEON
        if m.arch == "aarch64" or "neon" in m.flags or arm.source in ("emulated", "override"):
            return arm_host_target(m.arch, arm, m.flags)
    # another architecture: plain optimized C, the portable kernels' scalar fallback
    return replace(base, cflags=_O3, nb=4, arch=m.arch, defines=("EC_NO_VECTOR_EXT",),
                   description=f"this machine ({m.arch}, no SIMD kernels)")


def arm_host_target(arch: str, arm: armhost.ArmHost,
                    flags: frozenset[str] = frozenset()) -> Target:
    """``host`` on an ARM machine: NEON, tuned for its core (see :mod:`.armhost`). On AArch64
    the dot product (the integer kernels' SDOT) where the CPU lists it (``flags``: the
    Features of /proc/cpuinfo, a Pi 5's "asimddp") and the core the build targets has it."""
    extra = _ARMV7[3:] if arch == "armv7" else _O3  # armv7 keeps -funsafe-math (NEON floats)
    bits = "AArch64" if arch == "aarch64" else "32-bit ARM"
    dot = (arch == "aarch64" and set(ARM_DOTPROD) <= flags
           and arm.core in armhost.DOTPROD_CORES)
    return replace(TARGETS["host"], cflags=(*armhost.cflags(arch, arm), *extra), nb=4,
                   arch=arch, needs=ARM_DOTPROD if dot else (),
                   description=f"this machine ({bits}, NEON, OpenMP; "
                               f"{armhost.describe(arm)})")


def host_nb(m: Machine | None = None) -> int:
    """EC_NB for -march=native on an x86-64 machine: 16 with AVX-512, 8 with AVX2, else 4."""
    m = m or this_machine()
    for nb in (16, 8):
        if set(X86_LEVELS[nb][1]) <= m.flags:
            return nb
    return 4


def loadable(t: Target, m: Machine | None = None) -> bool:
    """Can the running machine (or ``m``) load and run a library built for ``t``?"""
    return t.runs_on(m or this_machine())


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()
