"""`--target host` on ARM: the core and board from /proc texts (fake ones here), the override,
and the generic fallback under qemu-user, where /proc/cpuinfo is the x86 host's."""

import pytest

from edgecnn.compiler import armhost, targets
from edgecnn.errors import EdgecnnError

# abridged /proc/cpuinfo of a Raspberry Pi 4 running 32-bit Raspberry Pi OS
PI4_ARMHF = """processor\t: 0
model name\t: ARMv7 Processor rev 3 (v7l)
BogoMIPS\t: 108.00
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Hardware\t: BCM2711
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
PI3_ARM64 = """processor\t: 0
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd03
CPU revision\t: 4
"""
PI5 = PI3_ARM64.replace("0xd03", "0xd0b")
# an x86 host's cpuinfo, as a process under qemu-user reads it
X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B45
flags\t\t: fpu vme de pse tsc msr avx2 fma avx512f
"""
# a core that is not in the table (implementer Broadcom)
OTHER = PI3_ARM64.replace("0x41", "0x42")


@pytest.mark.parametrize("cpuinfo, model, core, board, source", [
    (PI4_ARMHF, "Raspberry Pi 4 Model B Rev 1.4\0", "cortex-a72", "pi4", "cpuinfo"),
    (PI3_ARM64, "Raspberry Pi 3 Model B Plus Rev 1.3", "cortex-a53", "pi3", "cpuinfo"),
    (PI3_ARM64, "Raspberry Pi Zero 2 W Rev 1.0", "cortex-a53", "pizero2", "cpuinfo"),
    (PI5, "Raspberry Pi 5 Model B Rev 1.0", "cortex-a76", "pi5", "cpuinfo"),
    (OTHER, "Raspberry Pi 4 Model B Rev 1.1", "cortex-a72", "pi4", "device tree"),
    (OTHER, "", "native", "", "native"),
    (X86, "", "", "", "emulated"),
    ("", "", "", "", "emulated"),
])
def test_detect_from_proc_texts(cpuinfo, model, core, board, source):
    assert armhost.detect(cpuinfo, model, override="") == armhost.ArmHost(core, board, source)


def test_override_names_a_board_or_a_core():
    assert armhost.detect(X86, "", override="pi5") == armhost.ArmHost("cortex-a76", "pi5",
                                                                      "override")
    assert armhost.detect(PI3_ARM64, "", override="Cortex-A72").core == "cortex-a72"
    with pytest.raises(EdgecnnError, match=armhost.ARM_CPU_ENV):
        armhost.detect(X86, "", override="pi9")


@pytest.mark.parametrize("arch, host, flags", [
    ("aarch64", armhost.ArmHost("cortex-a72", "pi4", "cpuinfo"), ("-mcpu=cortex-a72",)),
    ("aarch64", armhost.ArmHost("", "", "emulated"), ("-march=armv8-a",)),
    ("armv7", armhost.ArmHost("cortex-a53", "pi3", "cpuinfo"),
     ("-mcpu=cortex-a53", "-mfpu=neon-fp-armv8", "-mfloat-abi=hard")),
    ("armv7", armhost.ArmHost("", "", "emulated"),
     ("-march=armv7-a", "-mfpu=neon-vfpv4", "-mfloat-abi=hard")),
    ("armv7", armhost.ArmHost("cortex-a7", "", "cpuinfo"),
     ("-mcpu=cortex-a7", "-mfpu=neon-vfpv4", "-mfloat-abi=hard")),
])
def test_cflags(arch, host, flags):
    assert armhost.cflags(arch, host) == flags


def _host(monkeypatch, arch, features, cpuinfo, model=""):
    monkeypatch.setattr(armhost, "read_text",
                        lambda p: {"/proc/cpuinfo": cpuinfo,
                                   "/proc/device-tree/model": model}.get(p, ""))
    monkeypatch.delenv(armhost.ARM_CPU_ENV, raising=False)
    return targets.host_target(targets.Machine(arch, frozenset(features)))


def test_host_target_on_a_pi4_armhf(monkeypatch):
    t = _host(monkeypatch, "armv7", {"neon", "vfpv4"}, PI4_ARMHF,
              "Raspberry Pi 4 Model B Rev 1.4")
    assert t.cflags[:3] == ("-mcpu=cortex-a72", "-mfpu=neon-fp-armv8", "-mfloat-abi=hard")
    assert "-funsafe-math-optimizations" in t.cflags and t.nb == 4 and t.arch == "armv7"
    assert "Raspberry Pi 4" in t.description
    assert t.runs_on(targets.Machine("armv7", frozenset({"neon"})))


def test_host_target_on_a_pi5_uses_the_dot_product(monkeypatch):
    """A Pi 5 lists asimddp and gets -mcpu=cortex-a76: the integer kernels' SDOT rows; a Pi 4
    (no asimddp) and an emulated AArch64 (generic -march=armv8-a) do not."""
    from edgecnn.compiler import kernels

    pi5 = PI5.replace("evtstrm crc32", "evtstrm crc32 atomics fphp asimdhp asimddp")
    t = _host(monkeypatch, "aarch64", {"fp", "asimd", "asimddp"}, pi5,
              "Raspberry Pi 5 Model B Rev 1.0")
    assert t.cflags[0] == "-mcpu=cortex-a76" and "dotprod" in kernels.features(t)
    assert t.runs_on(targets.Machine("aarch64", frozenset({"asimd", "asimddp"})))
    t = _host(monkeypatch, "aarch64", {"fp", "asimd"}, PI3_ARM64.replace("0xd03", "0xd08"),
              "Raspberry Pi 4 Model B Rev 1.4")
    assert "dotprod" not in kernels.features(t)
    t = _host(monkeypatch, "aarch64", {"avx2"}, X86)
    assert "dotprod" not in kernels.features(t)


def test_host_target_under_qemu_user_is_generic(monkeypatch):
    t = _host(monkeypatch, "aarch64", {"avx2"}, X86)
    assert t.cflags[0] == "-march=armv8-a" and "-mcpu=native" not in t.cflags
    t = _host(monkeypatch, "armv7", {"avx2"}, X86)
    assert t.cflags[:2] == ("-march=armv7-a", "-mfpu=neon-vfpv4")
    assert "EC_NO_VECTOR_EXT" not in t.defines


def test_host_target_on_armv7_without_neon_is_scalar(monkeypatch):
    t = _host(monkeypatch, "armv7", {"vfp", "vfpv3d16"},
              PI4_ARMHF.replace("0xd08", "0xc09").replace(" neon", ""))
    assert "EC_NO_VECTOR_EXT" in t.defines
    assert not any(f.startswith("-mfpu") for f in t.cflags)


def test_bench_labels_emulator_figures(monkeypatch):
    from edgecnn.publish import bench
    _host(monkeypatch, "armv7", set(), X86)
    m = bench.arm_machine("armv7l", "AMD EPYC 9B45")
    assert m["emulated"] is True and "emulator figures" in m["cpu"]
    _host(monkeypatch, "aarch64", set(), PI5, "Raspberry Pi 5 Model B Rev 1.0")
    m = bench.arm_machine("aarch64", "")
    assert m == {"emulated": False, "board": "pi5", "cpu": m["cpu"]}
    assert "Raspberry Pi 5" in m["cpu"] and "cortex-a76" in m["cpu"]
    assert bench.arm_machine("x86_64", "AMD EPYC 9B45") == {}
