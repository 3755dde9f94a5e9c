"""Which targets a machine can run, and what ``host`` means on it (no compiler needed).

Machines are described by their architecture and /proc/cpuinfo flags, so the decisions are
checked here for machines this test does not run on: an AVX-512 and an AVX2-only x86-64, an old
SSE-only one, a Raspberry Pi 4 (Cortex-A72) and 5 (Cortex-A76), a Pi 3 with a 32-bit userland.
"""

from __future__ import annotations

import pytest

from edgecnn.compiler import api, targets
from edgecnn.compiler.targets import Machine
from edgecnn.errors import EdgecnnError


def cpu(flags: str) -> frozenset[str]:
    """/proc/cpuinfo's flags line, as a set."""
    return frozenset(flags.split())


ZEN4 = Machine("x86_64", cpu("sse4_2 popcnt ssse3 avx avx2 fma bmi2 f16c movbe avx512f "
                                   "avx512bw avx512cd avx512dq avx512vl avx512_vnni"))
SKX = Machine("x86_64", cpu("sse4_2 popcnt ssse3 avx avx2 fma bmi2 f16c movbe avx512f "
                                  "avx512bw avx512cd avx512dq avx512vl"))  # AVX-512, no VNNI
ZEN1 = Machine("x86_64", cpu("sse4_2 popcnt ssse3 avx avx2 fma bmi2 f16c movbe"))
OLD_X86 = Machine("x86_64", cpu("sse4_2 popcnt ssse3"))
PI4 = Machine("aarch64", cpu("fp asimd evtstrm crc32 cpuid"))
PI5 = Machine("aarch64", cpu("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
                                   "asimdhp cpuid asimdrdm lrcpc dcpop asimddp"))
PI3_32 = Machine("armv7", cpu("half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva "
                                    "idivt vfpd32 lpae evtstrm crc32"))


def runnable(m: Machine) -> set[str]:
    return {n for n in targets.TARGETS if targets.get(n, machine=m).runs_on(m)}


@pytest.mark.parametrize("m, expected", [
    (ZEN4, {"host", "x86-64-vnni", "x86-64", "x86-64-v2", "c99"}),
    (SKX, {"host", "x86-64", "x86-64-v2", "c99"}),
    (ZEN1, {"host", "x86-64", "x86-64-v2", "c99"}),
    (OLD_X86, {"host", "x86-64-v2", "c99"}),
    (PI4, {"host", "pi4", "aarch64", "c99"}),
    (PI5, {"host", "pi4", "pi5", "aarch64", "c99"}),
    (PI3_32, {"host", "pi3", "armv7", "c99"}),
])
def test_runnable_targets_follow_the_machine(m, expected):
    assert runnable(m) == expected


@pytest.mark.parametrize("m, nb, flag", [(ZEN4, 16, "-march=native"), (SKX, 16, "-march=native"),
                                         (ZEN1, 8, "-march=native"),
                                         (OLD_X86, 4, "-march=native"),
                                         (PI4, 4, "-m"), (PI3_32, 4, "-m")])
def test_host_is_resolved_for_the_machine(m, nb, flag, monkeypatch):
    """x86: -march=native; ARM: the board's core (-mcpu=…, tests/test_armhost.py) or a
    generic -march when the CPU is unknown, as here, where /proc/cpuinfo is this x86's."""
    monkeypatch.delenv(targets.HOST_ISA_ENV, raising=False)  # the machine as described
    t = targets.get("host", machine=m)
    assert t.nb == nb and t.arch == m.arch
    if flag == "-m":
        assert any(f.startswith(("-mcpu=", "-march=")) for f in t.cflags), t.cflags
    else:
        assert flag in t.cflags
    if m is PI3_32:  # 32-bit ARM: NEON float code needs these (targets._ARMV7)
        assert {"-mfloat-abi=hard", "-funsafe-math-optimizations"} <= set(t.cflags)
        assert any(f.startswith("-mfpu=neon") for f in t.cflags), t.cflags


@pytest.mark.parametrize("m, vnni", [(ZEN4, True), (SKX, False), (ZEN1, False)])
def test_vnni_kernels_follow_the_cpu(m, vnni, monkeypatch):
    """The VNNI integer kernels are chosen for host only where the CPU has AVX-512 VNNI (which
    -march=native then enables), and always for the x86-64-vnni target, which runs only there."""
    from edgecnn.compiler import kernels

    monkeypatch.delenv(targets.HOST_ISA_ENV, raising=False)
    assert ("avx512vnni" in kernels.features(targets.get("host", machine=m))) == vnni
    t = targets.get("x86-64-vnni")
    assert "avx512vnni" in kernels.features(t) and "-mavx512vnni" in t.cflags
    assert t.runs_on(m) == vnni
    assert "avx512vnni" not in kernels.features(targets.get("x86-64"))


def test_unknown_architecture_gets_plain_c():
    m = Machine("riscv64", frozenset())
    t = targets.get("host", machine=m)
    assert "EC_NO_VECTOR_EXT" in t.defines and t.runs_on(m)
    assert runnable(m) == {"host", "c99"}


def test_avx2_switch_hides_avx512(monkeypatch):
    monkeypatch.setenv(targets.HOST_ISA_ENV, "avx2")
    m = targets.this_machine()
    assert not any(f.startswith("avx512") for f in m.flags)
    if m.arch == "x86_64":
        t = targets.get("host")
        assert t.nb <= 8 and "-march=native" not in t.cflags
        if t.nb == 8:
            assert "-march=x86-64-v3" in t.cflags


def test_avx2_switch_rejects_an_unknown_value(monkeypatch):
    monkeypatch.setenv(targets.HOST_ISA_ENV, "avx1024")
    with pytest.raises(EdgecnnError, match="EDGECNN_HOST_ISA"):
        targets.this_machine()


def test_require_loadable_names_the_reason_and_the_alternatives():
    with pytest.raises(EdgecnnError, match=r"lacks avx2.*loadable here: host, x86-64-v2, c99"):
        api.require_loadable(targets.get("x86-64"), OLD_X86)
    with pytest.raises(EdgecnnError, match=r"armv7 code and this machine is x86_64"):
        api.require_loadable(targets.get("pi3"), ZEN1)
    with pytest.raises(EdgecnnError, match=r"lacks asimddp"):
        api.require_loadable(targets.get("pi5"), PI4)
    api.require_loadable(targets.get("pi4"), PI5)  # no error


def test_build_cache_key_is_stable_across_processes():
    """repr(target) is part of the build cache key: it must not depend on hash ordering."""
    t = targets.get("x86-64")
    assert isinstance(t.needs, tuple) and list(t.needs) == sorted(t.needs)
