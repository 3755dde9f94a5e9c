"""Validate `edgecnn estimate`'s method on x86, where the truth can be measured.

For each model: the estimate pipeline (static predict program, executed blocks counted under
qemu-x86_64, blocks priced with llvm-mca for this CPU, memory term) against the measured time of
the same program run natively on this CPU (`predict -t 1 -n N`, the median of several rounds).
Writes the error table as Markdown and JSON (max_abs_error = the largest |estimate/measured-1|,
which `edgecnn estimate --validation` attaches to every estimate).

Usage:  python benchmarks/estimate_validation.py [--models all|NAME,...] [--mcpu znver3]
        [--ghz 2.6] [-o benchmarks/estimate_validation]
Run it on a quiet machine: the measured side is a wall-clock time, and other work on the CPU
inflates it (the 1-minute load average is recorded next to every row).
Needs llvm (llvm-mca, llvm-objdump), qemu-user, gcc; ../shared/data for the MobileNets.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from edgecnn.apps.resolve import resolve
from edgecnn.core.fileio import write_text_atomic
from edgecnn.formats.importers import convert
from edgecnn.publish import estimate as E
from edgecnn.zoo import names

TFLITE = ["mobilenet_v1_0.25_128_quant", "mobilenet_v2_1.0_224_quant"]


def data_dir() -> Path:
    return Path(os.environ.get("EDGECNN_DATA") or
                Path(__file__).resolve().parents[2] / "shared" / "data")


def models(which: str, work: Path) -> list[tuple[str, str]]:
    """(name, MODEL argument) pairs: zoo names and the imported MobileNets (float graphs)."""
    wanted = names() + TFLITE if which == "all" else which.split(",")
    out = []
    for name in wanted:
        if name in TFLITE:
            src = data_dir() / "tflite" / f"{name}.tflite"
            if not src.is_file():
                print(f"skip {name}: {src} not found", file=sys.stderr)
                continue
            dst = work / f"{name}.safetensors"
            convert(str(src), str(dst))
            out.append((name, str(dst)))
        else:
            out.append((name, name))
    return out


def measure(exe: Path, rounds: int = 5, min_ms: float = 300.0) -> float:
    """Median ms/frame of the program run natively (1 thread), each round about min_ms."""
    probe = _run(exe, 1)
    n = max(3, int(min_ms / max(probe, 1e-3)))
    return statistics.median(_run(exe, n) for _ in range(rounds))


def _run(exe: Path, n: int) -> float:
    r = subprocess.run([str(exe), "-t", "1", "-n", str(n), "x.f32"], cwd=exe.parent,
                       capture_output=True, text=True, check=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    return float(re.search(r"([0-9.]+) ms/frame", r.stdout).group(1))


# a chain of dependent 64-bit adds: one per cycle on every x86 core, so adds / second = clock
_CLOCK_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec a, b;
    const long n = 200000000;
    unsigned long x = 1;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%f\n", 4.0 * n / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9) / 1e9);
    return x == 0;
}
"""


def measure_ghz(work: Path) -> float:
    """This core's running clock (GHz, turbo included; /proc/cpuinfo shows the base clock):
    the best of 5 timings of a dependent-add chain."""
    (work / "clock.c").write_text(_CLOCK_C)
    subprocess.run(["cc", "-O2", "-o", str(work / "clock"), str(work / "clock.c")], check=True)
    return max(float(subprocess.run([str(work / "clock")], capture_output=True, text=True,
                                    check=True).stdout) for _ in range(5))


def markdown(rows: list[dict], d: E.Device, max_err: float) -> str:
    lines = [
        "# `edgecnn estimate`: validation on x86",
        "",
        f"Method: {E.METHOD}. Device priced: llvm-mca -mcpu={d.mcpu} at {d.ghz:.2f} GHz; the "
        "clock measured with a chain of dependent adds; the "
        f"program is the AVX2 build (target {d.target}; qemu 7.2 cannot run AVX-512). Measured: "
        "the same static program run natively, 1 thread, median of 5 rounds. Load average: the "
        "machine's 1-minute load when the row was measured (other work inflates the measured "
        "time).",
        "",
        "| model | M instructions | estimated ms | measured ms | error | load |",
        "|---|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['instructions'] / 1e6:.1f} | {r['estimated_ms']:.2f} "
                     f"| {r['measured_ms']:.2f} | {r['error']:+.0%} | {r['load']:.1f} |")
    verdict = ("within" if max_err <= E.MAX_PUBLISHED_ERROR else "WORSE than")
    lines += ["", f"Largest error: ±{max_err:.0%}, {verdict} the "
              f"±{E.MAX_PUBLISHED_ERROR:.0%} needed to publish Raspberry Pi estimates as figures.",
              ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="all")
    p.add_argument("--mcpu", default="native", help="llvm-mca -mcpu for this CPU")
    p.add_argument("--ghz", type=float,
                   help="this CPU's clock (default: measured with a dependent-add chain)")
    p.add_argument("-o", "--output", default=str(Path(__file__).parent / "estimate_validation"))
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-validate-") as tmp:
        d = E.host_device(args.mcpu, args.ghz or measure_ghz(Path(tmp)))
        print(f"pricing with llvm-mca -mcpu={d.mcpu} at {d.ghz:.2f} GHz", flush=True)
        for name, model in models(args.models, Path(tmp)):
            work = Path(tmp) / name
            est = E.estimate(resolve(model), d, work=work, progress=print)
            measured = measure(work / "predict")
            row = {"model": name, "instructions": est["instructions"],
                   "estimated_ms": est["ms"], "compute_ms": est["compute_ms"],
                   "memory_ms": est["memory_ms"], "measured_ms": measured,
                   "error": est["ms"] / measured - 1, "load": os.getloadavg()[0]}
            print(json.dumps(row), flush=True)
            rows.append(row)
    max_err = max(abs(r["error"]) for r in rows)
    out = Path(args.output)
    write_text_atomic(out.with_suffix(".json"), json.dumps(
        {"method": E.METHOD, "mcpu": d.mcpu, "ghz": d.ghz, "target": d.target,
         "max_abs_error": max_err, "rows": rows}, indent=1) + "\n")
    write_text_atomic(out.with_suffix(".md"), markdown(rows, d, max_err))
    print(markdown(rows, d, max_err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
