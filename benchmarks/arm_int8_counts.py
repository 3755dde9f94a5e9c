"""Instructions per inference of the ARM builds of the integer MobileNets, against their float
builds: evidence for the ARM int8 kernels without a Raspberry Pi.

For each model (the shared uint8 MobileNets, imported as an integer graph and with ``--float``
as a float graph) and each ARM target (pi3: 32-bit ARMv7 NEON; aarch64, pi4, pi5: AArch64),
the static ``predict`` program is built and run under qemu-user with the block-counting plugin
of ``edgecnn.publish.estimate``, once with one frame and once with two: the difference is one
frame's executed instructions. The program's disassembly then says which of those instructions
are NEON multiply-accumulates (integer or float) and in which function they ran.

Instruction counts are not time: an int8 build that executes as many instructions as the float
one may still be faster or slower on a Pi (latencies, dual issue, memory traffic). The table
says only how much work each build asks of the core.

Usage:  python benchmarks/arm_int8_counts.py [--models NAME,...] [--targets pi3,aarch64,...]
        [-o benchmarks/arm_int8] [--from-json]
Needs the ARM cross compilers, qemu-user, llvm (llvm-objdump, llvm-nm), gcc, and ../shared/data
(or EDGECNN_DATA) for the MobileNets. About 10 minutes on one core.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from estimate_validation import TFLITE, data_dir

from edgecnn.core.accounting import summarize
from edgecnn.core.fileio import write_text_atomic
from edgecnn.formats.importers import import_model
from edgecnn.publish import estimate as E

TARGETS = ("pi3", "aarch64", "pi4", "pi5")
PRECISIONS = ("float", "int8")
# NEON multiply-accumulates as llvm-objdump spells them, vector forms only (q/d/v registers):
# ARMv7 vmla/vmlal/vmull/vpadal/vsdot and VFPv4 vfma; AArch64 mla/smlal/umlal/sdot/udot/sadalp
# and fmla
INT_MAC = re.compile(r"^(vmla\.i(8|16|32)|vmlal\.[su](8|16)|vmull\.[su]8|vpadal\.[su](8|16)|"
                     r"v[su]dot\.[su]8)\s+[qd]|^(mla|smlal2?|umlal2?|[su]dot|sadalp)\s+v\d")
FLOAT_MAC = re.compile(r"^(vmla|vfma)\.f32\s+[qd]|^fmla\s+v\d")

# ncnn's published figures: Tencent/ncnn benchmark/README.md (benchncnn output, avg ms of the
# same network in fp32 and int8), as stored at commit 08c2dacbbff85d9eb592d4b9b4e5b9359091924f.
# Its Raspberry Pi 4 Model B section (Cortex-A72, 1.5 GHz, `benchncnn 8 4 0`: 4 threads) has
# int8 rows; its Raspberry Pi 3 Model B+ section has fp32 rows only. The Snapdragon 410 section
# (Cortex-A53 at 1.2 GHz, the Pi 3's core and clock; `benchncnn 4 1 0`: 1 thread) is given as
# the nearest int8 figure for a Pi 3. Copied by hand: published, not measured here.
NCNN_SOURCE = ("https://github.com/Tencent/ncnn/blob/08c2dacbbff85d9eb592d4b9b4e5b9359091924f/"
               "benchmark/README.md")
NCNN_PI = [  # board, threads, network, fp32 avg ms, int8 avg ms
    ("Raspberry Pi 4 Model B (Cortex-A72 1.5 GHz)", 4, "mobilenet", 86.01, 168.48),
    ("Raspberry Pi 4 Model B (Cortex-A72 1.5 GHz)", 4, "squeezenet", 58.73, 78.72),
    ("Raspberry Pi 4 Model B (Cortex-A72 1.5 GHz)", 4, "googlenet", 176.24, 187.99),
    ("Raspberry Pi 4 Model B (Cortex-A72 1.5 GHz)", 4, "resnet18", 233.89, 159.56),
    ("Raspberry Pi 4 Model B (Cortex-A72 1.5 GHz)", 4, "resnet50", 486.97, 421.58),
    ("Raspberry Pi 4 Model B (Cortex-A72 1.5 GHz)", 4, "mobilenet_ssd", 180.52, 261.29),
    ("Snapdragon 410 (Cortex-A53 1.2 GHz, not a Pi)", 1, "mobilenet", 244.93, 574.41),
    ("Snapdragon 410 (Cortex-A53 1.2 GHz, not a Pi)", 1, "squeezenet", 160.17, 236.36),
    ("Snapdragon 410 (Cortex-A53 1.2 GHz, not a Pi)", 1, "resnet18", 498.06, 653.40),
]


def functions(exe: Path) -> tuple[list[int], list[str]]:
    """(sorted start addresses, names) of the program's code symbols (llvm-nm)."""
    nm = shutil.which("llvm-nm") or "nm"
    r = subprocess.run([nm, "-n", "--defined-only", str(exe)], capture_output=True, text=True,
                       check=True)
    starts, names = [], []
    for line in r.stdout.split("\n"):
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTW" and not parts[2].startswith("$"):
            starts.append(int(parts[0], 16) & ~1)  # the Thumb bit off
            names.append(parts[2])
    return starts, names


def classify(exe: Path, frame: dict[int, list[int]]) -> dict:
    """Executed instructions of one frame: total, NEON integer and float multiply-accumulates,
    and per function."""
    insns = E.disassemble(exe)
    addrs = sorted(insns)
    starts, names = functions(exe)
    total = int_mac = float_mac = unknown = 0
    per_fn: Counter[str] = Counter()
    for a, (n, k, _) in frame.items():
        total += n * k
        f = bisect.bisect_right(starts, a) - 1
        per_fn[names[f] if f >= 0 else "?"] += n * k
        i = bisect.bisect_left(addrs, a)
        run = addrs[i:i + k]
        if len(run) != k or run[0] != a:
            unknown += n * k
            continue
        for addr in run:
            text = insns[addr]
            int_mac += n * bool(INT_MAC.match(text))
            float_mac += n * bool(FLOAT_MAC.match(text))
    return {"instructions": total, "int_mac": int_mac, "float_mac": float_mac,
            "undisassembled": unknown, "functions": dict(per_fn.most_common(8))}


def count(g, target: str, work: Path) -> dict:
    """One frame's executed instructions of ``g``'s predict program for ``target``."""
    work.mkdir(parents=True, exist_ok=True)
    exe = E.build_program(g, target, work)
    plugin = E.build_plugin(work)
    frame = E.per_frame(E.count_blocks(exe, target, plugin, 0),
                        E.count_blocks(exe, target, plugin, 1))
    return classify(exe, frame)


def graphs(name: str) -> dict:
    src = data_dir() / "tflite" / f"{name}.tflite"
    return {p: import_model(src, as_float=p == "float") for p in PRECISIONS}


def markdown(rows: list[dict]) -> str:
    by = {(r["model"], r["target"], r["precision"]): r for r in rows}
    lines = [
        "# ARM builds under qemu: instructions per frame, int8 against float",
        "",
        "Written by `python benchmarks/arm_int8_counts.py` (see benchmarks/README.md). Each "
        "model's static `predict` program, built for the target with the Debian cross "
        "compiler, runs under qemu-user with the block-counting TCG plugin of "
        "`edgecnn estimate` (src/edgecnn/data/qemu_block_counts.c), once with one frame and "
        "once with two: the difference is one frame (1 thread, quantize and dequantize of the "
        "float input and output included). float: the model imported with `edgecnn import "
        "--float`; int8: the integer graph (default import), on the fast integer kernels.",
        "",
        "**Instruction counts are not time.** They measure how much work a build asks of the "
        "core, not how long a Cortex-A53/A72/A76 takes for it: latencies, dual issue and memory "
        "traffic differ between the integer and float instructions. No Pi was used.",
        "",
        "| model | target | float M instr | int8 M instr | int8 / float |",
        "|---|---|--:|--:|--:|"]
    keys = sorted({(r["model"], r["target"]) for r in rows},
                  key=lambda k: (k[0], TARGETS.index(k[1])))
    for m, t in keys:
        f, q = by.get((m, t, "float")), by.get((m, t, "int8"))
        ratio = f"{q['instructions'] / f['instructions']:.2f}" if f and q else "-"
        lines.append(f"| {m} | {t} | {_m(f)} | {_m(q)} | {ratio} |")
    lines += [
        "",
        "Where the instructions go: NEON multiply-accumulates among the executed instructions "
        "(integer `vmla.i32`/`vmlal`/`mla`/`smlal`/`sdot`, float `vmla.f32`/`vfma.f32`/"
        "`fmla`), the model's MACs per such instruction (4 = one full 4-lane vector per "
        "instruction), and the function that executed most instructions.",
        "",
        "| model | target | precision | M MACs | NEON MAC instr (M) | share of instr | "
        "MACs / MAC instr | hottest function (share) |",
        "|---|---|---|--:|--:|--:|--:|---|"]
    for m, t in keys:
        for p in PRECISIONS:
            r = by.get((m, t, p))
            if not r:
                continue
            mac = r["int_mac"] if p == "int8" else r["float_mac"]
            fn, n = next(iter(r["functions"].items()))
            per = f"{r['macs'] / mac:.2f}" if mac else "-"
            lines.append(f"| {m} | {t} | {p} | {r['macs'] / 1e6:.1f} | {mac / 1e6:.1f} | "
                         f"{mac / r['instructions']:.0%} | {per} | `{fn}` "
                         f"({n / r['instructions']:.0%}) |")
    lines += ["", *ncnn_section(), ""]
    return "\n".join(lines)


def ncnn_section() -> list[str]:
    lines = [
        "## ncnn's published int8 and fp32 times on a Raspberry Pi", "",
        f"From ncnn's benchmark/README.md ({NCNN_SOURCE}; benchncnn, avg ms), copied by hand: "
        "times measured by ncnn's authors on the board, unlike the instruction counts above. "
        "Its Raspberry Pi 4 Model B section has int8 rows (4 threads); its Raspberry Pi 3 "
        "Model B+ section has fp32 rows only, so the Pi 3's core (Cortex-A53 at 1.2 GHz) is "
        "represented by the Snapdragon 410 section (1 thread), which is not a Pi. There is no "
        "MobileNet v2 int8 row. int8 / fp32 below 1: int8 is faster.", "",
        "| board | threads | network | fp32 ms | int8 ms | int8 / fp32 |",
        "|---|--:|---|--:|--:|--:|"]
    for board, threads, net, fp32, int8 in NCNN_PI:
        lines.append(f"| {board} | {threads} | {net} | {fp32:.2f} | {int8:.2f} | "
                     f"{int8 / fp32:.2f} |")
    return lines


def _m(r: dict | None) -> str:
    return f"{r['instructions'] / 1e6:.1f}" if r else "-"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(TFLITE))
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("-o", "--output", default=str(Path(__file__).parent / "arm_int8"))
    p.add_argument("--from-json", action="store_true",
                   help="rewrite the Markdown from OUTPUT.json without running anything")
    args = p.parse_args(argv)
    out = Path(args.output)
    if args.from_json:
        rows = json.loads(out.with_suffix(".json").read_text())["rows"]
        write_text_atomic(out.with_suffix(".md"), markdown(rows))
        print(markdown(rows))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-armcount-") as tmp:
        for name in args.models.split(","):
            gs = graphs(name)
            for target in args.targets.split(","):
                for prec, g in gs.items():
                    r = count(g, target, Path(tmp) / f"{name}-{target}-{prec}")
                    row = {"model": name, "target": target, "precision": prec,
                           "macs": summarize(g).total_macs, **r}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    write_text_atomic(out.with_suffix(".json"), json.dumps(
        {"method": "executed instructions of one frame under qemu-user (TCG block counts)",
         "rows": rows}, indent=1) + "\n")
    write_text_atomic(out.with_suffix(".md"), markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
