"""The compile targets, in one table: compiler, flags, vector width EC_NB, threads.

``nb`` is the float block width the fast kernels and the weight packer share (-DEC_NB): 16 for
AVX-512, 8 for AVX2 (x86-64-v3), 4 for NEON, SSE and the portable scalar ``c99`` build. For
``host`` it is detected from the CPU the compiler will target (-march=native).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace

from ..errors import EdgecnnError


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


_ARMHF = dict(cc="arm-linux-gnueabihf-gcc", debian_package="gcc-arm-linux-gnueabihf",
              qemu="qemu-arm", sysroot="/usr/arm-linux-gnueabihf")
_ARM64 = dict(cc="aarch64-linux-gnu-gcc", debian_package="gcc-aarch64-linux-gnu",
              qemu="qemu-aarch64", sysroot="/usr/aarch64-linux-gnu")
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
    Target("x86-64", "cc", ("-march=x86-64-v3", *_O3), nb=8, debian_package="gcc",
           description="portable x86-64 with AVX2/FMA (x86-64-v3)"),
    Target("x86-64-v2", "cc", ("-march=x86-64-v2", *_O3), nb=4, debian_package="gcc",
           description="older x86-64 without AVX (SSE4.2; the x86-64 fallback)"),
    Target("pi3", cflags=_ARMV7, nb=4,
           description="Raspberry Pi 3, 32-bit Raspberry Pi OS (armhf)", **_ARMHF),
    Target("armv7", cflags=_ARMV7, nb=4,
           description="32-bit ARMv7 with NEON (armhf), as pi3", **_ARMHF),
    Target("pi4", cflags=("-mcpu=cortex-a72", *_O3), nb=4,
           description="Raspberry Pi 4, 64-bit OS (aarch64)", **_ARM64),
    Target("pi5", cflags=("-mcpu=cortex-a76", *_O3), nb=4,
           description="Raspberry Pi 5, 64-bit OS (aarch64)", **_ARM64),
    Target("aarch64", cflags=("-march=armv8-a", *_O3), nb=4,
           description="generic 64-bit ARMv8-A", **_ARM64),
    Target("c99", "cc", ("-O2",), nb=4, openmp=False, debian_package="gcc",
           description="portable C99: no SIMD, no threads, no malloc, caller-provided arena",
           defines=("EC_PORTABLE",)),
    *[Target(f"cortex-m{n}", "arm-none-eabi-gcc", (*cpu, "-mthumb", "-mfloat-abi=hard", *_MCU),
             nb=4, openmp=False, debian_package="gcc-arm-none-eabi libnewlib-arm-none-eabi",
             qemu="qemu-system-arm", description=desc, defines=_PORTABLE, board=board)
      for n, cpu, board, desc in _CORTEX_M],
]}


def get(name: str, cc: str | None = None) -> Target:
    """The target called ``name`` (with ``cc`` overriding its compiler, e.g. clang)."""
    try:
        t = TARGETS[name]
    except KeyError:
        raise EdgecnnError(f"unknown target {name!r} (known: {', '.join(TARGETS)})") from None
    if t.nb == 0:
        t = replace(t, nb=host_nb())
    if cc:
        t = replace(t, cc=cc)
    return t


def host_nb() -> int:
    """EC_NB for -march=native on this machine: 16 with AVX-512, 8 with AVX2, else 4."""
    flags = _cpu_flags()
    if "avx512f" in flags:
        return 16
    if "avx2" in flags and "fma" in flags:
        return 8
    return 4


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()
