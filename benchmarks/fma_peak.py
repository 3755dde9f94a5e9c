"""The FMA peak of one core, two ways: nominal from the CPU's ISA and clock, and measured.

- nominal = FLOP/cycle x clock. FLOP/cycle = 2 (an FMA is a multiply and an add) x 2 FMA pipes
  x the floats one pipe takes per cycle: the vector width of the build's ISA (16 for AVX-512,
  8 for AVX2, 4 for NEON/SSE), except where the pipes are narrower than the ISA's registers,
  known from /proc/cpuinfo's family and model: AMD Zen 1 (family 23, model < 48) splits a
  256-bit FMA in two 128-bit halves, Zen 3/4 (family 25) an AVX-512 one in two 256-bit halves.
  So AVX-512 on Zen 4 is 32 FLOP/cycle, on Zen 5 (family 26) 64. The clock is the highest
  "cpu MHz" in /proc/cpuinfo, which a virtual machine often reports as the base clock, below
  the boost clock the core runs at: the nominal figure can be low for that reason;
- measured: a loop of independent FMAs on vectors of ``lanes`` floats (12 chains, more than
  FMA latency x pipes, so the pipes never wait), compiled with the compile target's own
  -march, timed on one thread: the best of many 2 ms runs (short enough that some run has a
  core to itself on a busy machine). It includes the real clock and the real width of the FMA
  pipes, so it is the figure the "% of peak" columns use; measured / (FLOP/cycle) is the
  effective clock.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import tempfile
import time

_LOOP_C = r"""
typedef float vf __attribute__((vector_size(LANES * 4)));
#define K 12
/* K independent chains a[k] = a[k] * b + c (-ffp-contract=fast makes each an FMA), started
   from different values so that the compiler cannot merge them; returns a sum so that nothing
   is optimized away. FLOP = n * K * LANES * 2. */
float fma_loop(long n) {
    vf b, c, a[K];
    for (int i = 0; i < LANES; i++) {
        b[i] = 0.999f;
        c[i] = 1e-3f;
        for (int k = 0; k < K; k++) a[k][i] = 1e-4f * (float)(k + 1);
    }
    for (long i = 0; i < n; i++)
        for (int k = 0; k < K; k++) a[k] = a[k] * b + c;
    float r = 0;
    for (int k = 0; k < K; k++)
        for (int i = 0; i < LANES; i++) r += a[k][i];
    return r;
}
"""


_CHAINS = 12  # K in the C loop


def clock_ghz() -> float | None:
    """The highest "cpu MHz" in /proc/cpuinfo, in GHz (None where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", f.read(), re.M)]
    except OSError:
        return None
    return max(mhz) / 1e3 if mhz else None


def nominal(lanes: int, ghz: float | None) -> float | None:
    """Nominal GFLOP/s of one core: FLOP/cycle x clock (None without a clock)."""
    return None if ghz is None else flop_per_cycle(lanes) * ghz


def flop_per_cycle(lanes: int, fma_units: int = 2) -> int:
    """FLOP per cycle of one core for vectors of ``lanes`` floats (see the module doc)."""
    return 2 * fma_units * min(lanes, _pipe_lanes() or lanes)


def _pipe_lanes() -> int | None:
    """Floats per FMA pipe where known to be narrower than the registers (AMD Zen 1, 3, 4)."""
    vendor, fam, mod = _cpu_ids()
    if vendor != "AuthenticAMD" or fam is None:
        return None
    if fam == 23 and mod < 48:
        return 4  # Zen 1 / Zen+: 128-bit FMA pipes
    if fam == 25:
        return 8  # Zen 3 / Zen 4: 256-bit FMA pipes (AVX-512 double-pumped on Zen 4)
    return None


def family_model() -> str:
    """E.g. "AuthenticAMD family 25 model 17, Zen 4": names the CPU where "model name" is
    only "AMD EPYC" (the core generation from AMD's family/model numbering)."""
    vendor, fam, mod = _cpu_ids()
    if fam is None:
        return "family/model unknown"
    text = f"{vendor} family {fam} model {mod}"
    zen = None
    if vendor == "AuthenticAMD":
        zen = {23: "Zen 1/Zen+" if mod < 48 else "Zen 2", 26: "Zen 5"}.get(fam)
        if fam == 25:
            zen = "Zen 4" if 16 <= mod < 32 or 96 <= mod < 128 or 160 <= mod < 176 else "Zen 3"
    return f"{text}, {zen}" if zen else text


def _cpu_ids() -> tuple[str | None, int | None, int | None]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None, None, None
    vendor = re.search(r"^vendor_id\s*:\s*(\S+)", text, re.M)
    family = re.search(r"^cpu family\s*:\s*(\d+)", text, re.M)
    model = re.search(r"^model\s*:\s*(\d+)", text, re.M)
    if not (family and model):
        return (vendor.group(1) if vendor else None), None, None
    return (vendor.group(1) if vendor else None), int(family.group(1)), int(model.group(1))


def measured_gflops(cflags: tuple[str, ...], lanes: int, cc: str = "cc",
                    seconds: float = 0.002, repeats: int = 200) -> float:
    """GFLOP/s of the FMA loop on one thread, the best of ``repeats`` runs of ``seconds``."""
    fn = _build(cflags, lanes, cc)
    n = 1000
    while True:  # grow n until one call takes ``seconds``
        start = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - start
        if dt >= seconds / 4:
            break
        n *= 4
    n = int(n * seconds / dt)
    best = min(_timed(fn, n) for _ in range(repeats))
    return n * _CHAINS * lanes * 2 / best / 1e9


def _timed(fn, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return time.perf_counter() - start


def _build(cflags: tuple[str, ...], lanes: int, cc: str):
    # -O3 (unrolls the chains into registers) and the target's -march; -ffp-contract=fast
    # turns a * b + c into one FMA
    flags = [f for f in cflags if f.startswith(("-march", "-mcpu", "-mfpu", "-mfloat-abi"))]
    with tempfile.TemporaryDirectory(prefix="edgecnn-fma-") as tmp:
        src, lib = os.path.join(tmp, "fma.c"), os.path.join(tmp, "libfma.so")
        with open(src, "w", encoding="utf-8") as f:
            f.write(_LOOP_C)
        subprocess.run([cc, "-O3", "-ffp-contract=fast", *flags, f"-DLANES={lanes}",
                        "-shared", "-fPIC", "-o", lib, src], check=True, capture_output=True)
        fn = ctypes.CDLL(lib).fma_loop  # loaded: the file may go
    fn.argtypes, fn.restype = [ctypes.c_long], ctypes.c_float
    return fn
