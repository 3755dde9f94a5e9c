"""Which ARM core and board the running machine is, for ``--target host`` and for bench reports.

A Raspberry Pi names its board in ``/proc/device-tree/model`` ("Raspberry Pi 4 Model B Rev 1.4")
and its core in ``/proc/cpuinfo`` ("CPU part : 0xd08" = Cortex-A72). The core picks ``-mcpu``:

=========  ==========  ===========
board      core        CPU part
=========  ==========  ===========
Pi 3       Cortex-A53  0xd03
Zero 2 W   Cortex-A53  0xd03
Pi 4       Cortex-A72  0xd08
Pi 5       Cortex-A76  0xd0b
=========  ==========  ===========

(CPU part numbers: Arm's Technical Reference Manuals, the MIDR_EL1 PartNum field.)

Under qemu-user (an emulated Raspberry Pi OS on an x86 machine) ``/proc/cpuinfo`` is the x86
host's: no ARM core can be read, and gcc's ``-mcpu=native`` would have nothing to go by. Then
``host`` uses a generic ARMv8-A (64-bit) or ARMv7-A with NEON (32-bit) instead; qemu's default
CPU executes both. ``EDGECNN_ARM_CPU`` overrides the detection with a board (pi3, pi4, pi5,
pizero2) or a gcc core name (cortex-a72).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import EdgecnnError

ARM_CPU_ENV = "EDGECNN_ARM_CPU"

# ARM Ltd (implementer 0x41) part numbers → gcc -mcpu names
ARM_PARTS = {0xC07: "cortex-a7", 0xD03: "cortex-a53", 0xD04: "cortex-a35", 0xD05: "cortex-a55",
             0xD07: "cortex-a57", 0xD08: "cortex-a72", 0xD09: "cortex-a73", 0xD0B: "cortex-a76"}
# cores whose -mcpu enables the ARMv8.2 dot product (SDOT), and -mcpu=native on a CPU that
# lists it
DOTPROD_CORES = frozenset({"cortex-a55", "cortex-a76", "native"})
BOARD_CORES = {"pi3": "cortex-a53", "pizero2": "cortex-a53", "pi4": "cortex-a72",
               "pi5": "cortex-a76"}
# device-tree model text → board key (the Zero 2 before the Pi 3 rule's digits cannot clash)
_BOARD_PATTERNS = (("pizero2", r"Raspberry Pi Zero 2"), ("pi5", r"Raspberry Pi 5"),
                   ("pi4", r"Raspberry Pi (4|Compute Module 4|400)"),
                   ("pi3", r"Raspberry Pi (3|Compute Module 3)"))
# 32-bit code on an ARMv8 core keeps the armhf ABI and uses the v8 NEON/FP unit
_ARMV8_FPU_32 = ("-mfpu=neon-fp-armv8", "-mfloat-abi=hard")
_ARMV7_GENERIC = ("-march=armv7-a", "-mfpu=neon-vfpv4", "-mfloat-abi=hard")


@dataclass(frozen=True)
class ArmHost:
    """The ARM core the compiler should tune for, and how that was decided."""

    core: str  # gcc -mcpu name, "native" (a real ARM core gcc knows better) or "" (generic)
    board: str  # "pi4", ... or "" when not a known Raspberry Pi
    source: str  # "override", "device tree", "cpuinfo", "native" or "emulated"


def read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\0", "").strip()
    except OSError:
        return ""


def board_from_model(model: str) -> str:
    """``"Raspberry Pi 4 Model B Rev 1.4"`` → ``"pi4"``; ``""`` for any other machine."""
    for key, pattern in _BOARD_PATTERNS:
        if re.search(pattern, model):
            return key
    return ""


def core_from_cpuinfo(cpuinfo: str) -> str | None:
    """The gcc core name of an ARM ``/proc/cpuinfo``; ``""`` for an ARM core not in the table;
    ``None`` when the text is not an ARM CPU's (an x86 host's seen through qemu-user)."""
    impl = re.search(r"^CPU implementer\s*:\s*(0x[0-9a-fA-F]+)", cpuinfo, re.M)
    part = re.search(r"^CPU part\s*:\s*(0x[0-9a-fA-F]+)", cpuinfo, re.M)
    if not impl or not part:
        return None
    if int(impl.group(1), 16) != 0x41:
        return ""
    return ARM_PARTS.get(int(part.group(1), 16), "")


def detect(cpuinfo: str | None = None, model: str | None = None,
           override: str | None = None) -> ArmHost:
    """The running ARM machine (or the texts given, for tests)."""
    override = os.environ.get(ARM_CPU_ENV, "") if override is None else override
    override = override.strip().lower()
    cpuinfo = read_text("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    model = read_text("/proc/device-tree/model") if model is None else model
    board = board_from_model(model)
    if override:
        return _from_override(override)
    core = core_from_cpuinfo(cpuinfo)
    if core is None:
        return ArmHost("", board, "emulated")
    if core:
        return ArmHost(core, board, "cpuinfo")
    if board:
        return ArmHost(BOARD_CORES[board], board, "device tree")
    return ArmHost("native", board, "native")


def _from_override(value: str) -> ArmHost:
    if value in BOARD_CORES:
        return ArmHost(BOARD_CORES[value], value, "override")
    if re.fullmatch(r"cortex-a[0-9]+|native", value):
        return ArmHost(value, "", "override")
    raise EdgecnnError(f"{ARM_CPU_ENV}={value!r} is not understood: use a board "
                       f"({', '.join(BOARD_CORES)}) or a gcc core name such as cortex-a72")


def cflags(arch: str, host: ArmHost) -> tuple[str, ...]:
    """gcc architecture flags for ``arch`` ("aarch64" or "armv7") on ``host``."""
    if arch == "aarch64":
        return (f"-mcpu={host.core}",) if host.core else ("-march=armv8-a",)
    if not host.core:
        return _ARMV7_GENERIC
    if host.core == "cortex-a7":  # ARMv7 (Pi 2): VFPv4 with NEON
        return ("-mcpu=cortex-a7", "-mfpu=neon-vfpv4", "-mfloat-abi=hard")
    if host.core == "native":
        return ("-mcpu=native", "-mfpu=neon-vfpv4", "-mfloat-abi=hard")
    return (f"-mcpu={host.core}", *_ARMV8_FPU_32)


def describe(host: ArmHost) -> str:
    """A short text for reports: ``"Raspberry Pi 4 (cortex-a72, from cpuinfo)"``."""
    board = {"pi3": "Raspberry Pi 3", "pi4": "Raspberry Pi 4", "pi5": "Raspberry Pi 5",
             "pizero2": "Raspberry Pi Zero 2 W"}.get(host.board, "")
    core = host.core or "generic"
    return (f"{board} " if board else "") + f"({core}, {host.source})"
