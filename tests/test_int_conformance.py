"""The integer conformance table (tests/int_conformance.py) on every target: each case compiled
with the kernels the compiler picks for the target, run natively or under qemu-user, equal to
the numpy integer reference bit for bit. One static program per target holds every case (the
driver of test_conformance_targets)."""

from __future__ import annotations

import numpy as np
import pytest

import int_conformance as IC
from edgecnn.compiler import kernels as kernel_table
from edgecnn.compiler import targets
from edgecnn.core import reference
from edgecnn.layers import all_kinds
from test_conformance_targets import cached_runs

pytestmark = pytest.mark.cc

# one of each instruction set and flag family (armv7 and pi4 build as pi3 and aarch64 do, with
# another -mcpu; test_int8_compile runs the graphs on all of them; pi5 has the dot product,
# hence the SDOT kernels); x86-64-vnni runs only on a CPU with AVX-512 VNNI
# (elsewhere: compiled, then skipped)
TARGETS = ["host", "x86-64", "x86-64-vnni", "c99", "pi3", "aarch64", "pi5"]
PROGRAMS = [(c.id, *IC.build(c), None) for c in IC.CASES]


def test_every_integer_kind_has_a_case():
    integer = {k for k, kind in all_kinds().items() if kind.integer}
    covered = {c.kind for c in IC.CASES} | {"dequantize"}  # every case ends in one
    assert integer <= covered, integer - covered


def test_cases_exercise_what_they_claim():
    """The clamps bite, the rescaling concatenation rescales, the inputs span the type."""
    expected = {pid: reference.run(g, x, outputs=["q0"])["q0"] for pid, g, x, _ in PROGRAMS}
    for pid, q in expected.items():
        lo, hi = int(q.min()), int(q.max())
        assert hi - lo > 100, (pid, lo, hi)  # the input uses most of the 8-bit range
    relu6 = next(g for pid, g, _, _ in PROGRAMS if pid == "qconv-1x1-relu6-uint8")
    a = relu6.layer("op").attrs
    assert a["act_max"] < 255 and a["act_min"] > 0


@pytest.fixture(scope="module")
def expected():
    return [reference.run(g, x) for _, g, x, _ in PROGRAMS]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return cached_runs(tmp_path_factory, "intconf", PROGRAMS)


@pytest.mark.parametrize("target", TARGETS)
def test_integer_cases_bit_exact_on_target(target, runs, expected):
    outs, algos = runs(target)
    if outs is None:
        pytest.skip(f"compiled; not run: this CPU cannot run {target} code")
    bad = [pid for (pid, _, _, _), got, want in zip(PROGRAMS, outs, expected, strict=True)
           if not np.array_equal(got, want)]
    assert not bad, f"{target}: {len(bad)} of {len(PROGRAMS)} cases differ: {bad}"
    kernels = sorted({algos[pid]["op"] for pid, *_ in PROGRAMS if "op" in algos[pid]})
    print(f"{target}: {len(PROGRAMS)} integer cases bit-exact; kernels {kernels}")
    # the pointwise and direct cases ran on VPDPBUSD exactly where the target has AVX-512 VNNI
    # (the dilated direct case stays on the int16 kernel)
    vnni = "avx512vnni" in kernel_table.features(targets.get(target))
    assert ("int8_pointwise_vnni" in kernels) == ("int8_direct_vnni" in kernels) == vnni, kernels
    assert not (vnni and "int8_pointwise" in kernels), kernels
    # and on SDOT exactly where the target has the AArch64 dot product
    sdot = "dotprod" in kernel_table.features(targets.get(target))
    assert ("int8_pointwise_sdot" in kernels) == ("int8_direct_sdot" in kernels) == sdot, kernels
    assert not (sdot and "int8_pointwise" in kernels), kernels
