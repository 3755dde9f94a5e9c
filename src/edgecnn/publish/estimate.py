"""A speed estimate for a board edgecnn cannot measure here: executed instructions × their cost.

Method (each step a function below):

1. build the model's ``predict`` program for the board's target (static, cross compiler);
2. run it under qemu-user with a small TCG plugin (``data/qemu_block_counts.c``) that counts
   how often each translated block executes; once with one inference and once with two: the
   difference is one frame's work, without start-up and weight loading;
3. disassemble the program (``llvm-objdump``) and price every block that ran with ``llvm-mca``
   for the board's core: steady-state cycles per execution of the block;
4. time = Σ executions × cycles / clock, plus a memory term: the bytes of weights and of each
   layer's activations that exceed the core's last-level cache, at the board's DRAM bandwidth.

llvm-mca assumes every load hits the L1 cache and prices blocks in isolation; the memory term
is a first-order correction, nothing more. The method is validated on x86 (the same pipeline
with qemu-x86_64 against the measured time of the same program on this CPU, see
``benchmarks/estimate_validation.py``); an estimate carries its method and that error.

The Pi 3 has no AArch32 Cortex-A53 model in LLVM 14's llvm-mca: its estimate prices the 64-bit
(aarch64) build with the AArch64 Cortex-A53 model, i.e. a Pi 3 running a 64-bit OS.
"""

from __future__ import annotations

import bisect
import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..compiler import build, targets
from ..core.accounting import summarize
from ..core.graph import Graph
from ..errors import EdgecnnError

PLUGIN_SOURCE = Path(__file__).resolve().parent.parent / "data" / "qemu_block_counts.c"
METHOD = ("executed basic blocks counted under qemu-user (TCG plugin) x llvm-mca cycles for "
          "the core at its clock, plus DRAM traffic beyond the last-level cache")


@dataclass(frozen=True)
class Device:
    """A board to estimate: how its program is built and its core priced."""

    key: str
    label: str
    target: str  # edgecnn compile target of the program
    triple: str  # llvm-mca -mtriple
    mcpu: str  # llvm-mca -mcpu
    ghz: float  # core clock
    cache_bytes: int  # last-level cache
    dram_gbps: float  # sustained DRAM read bandwidth (assumed)
    note: str = ""


# Clocks and caches: the Raspberry Pi product briefs (Pi 3 B: 1.2 GHz, 512 KB L2; Zero 2 W:
# 1 GHz; Pi 4 B: 1.5 GHz, 1 MB L2; Pi 5: 2.4 GHz, 2 MB L3). DRAM bandwidths are round
# assumptions of sustained single-core reads (LPDDR2 ≈ 2 GB/s, LPDDR4 ≈ 4, LPDDR4X ≈ 8).
DEVICES = {d.key: d for d in [
    Device("pi3", "Raspberry Pi 3", "aarch64", "aarch64-linux-gnu", "cortex-a53", 1.2, 512 << 10,
           2.0, "64-bit build priced as AArch64 (LLVM has no AArch32 Cortex-A53 model)"),
    Device("pizero2", "Raspberry Pi Zero 2 W", "aarch64", "aarch64-linux-gnu", "cortex-a53",
           1.0, 512 << 10, 1.5, "64-bit build priced as AArch64"),
    Device("pi4", "Raspberry Pi 4", "pi4", "aarch64-linux-gnu", "cortex-a72", 1.5, 1 << 20, 4.0),
    Device("pi5", "Raspberry Pi 5", "pi5", "aarch64-linux-gnu", "cortex-a76", 2.4, 2 << 20, 8.0),
]}
# an estimate is published (cards, gallery) only when the method's x86 validation error is
# within this
MAX_PUBLISHED_ERROR = 0.35
QEMU = {"x86_64": "qemu-x86_64", "armv7": "qemu-arm", "aarch64": "qemu-aarch64"}


def host_device(mcpu: str = "native", ghz: float | None = None, cache_bytes: int = 32 << 20,
                dram_gbps: float = 20.0) -> Device:
    """This x86 machine, for validation: the AVX2 build (qemu 7.2's TCG has no AVX-512)."""
    return Device("x86", "this x86 CPU", "x86-64", "x86_64-linux-gnu", mcpu,
                  ghz or cpu_ghz(), cache_bytes, dram_gbps)


def cpu_ghz() -> float:
    """The running CPU's clock from /proc/cpuinfo (the first 'cpu MHz'; 0 when unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return 0.0
    m = re.search(r"^cpu MHz\s*:\s*([0-9.]+)", text, re.M)
    return float(m.group(1)) / 1000 if m else 0.0


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EdgecnnError(f"edgecnn estimate needs {name!r}, which is not installed "
                           f"(Debian: apt install {package})")
    return path


def build_plugin(work: Path) -> Path:
    """The block-counting plugin, built with the host's C compiler."""
    cc = _tool("cc", "gcc")
    out = work / "libblockcounts.so"
    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(PLUGIN_SOURCE)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise EdgecnnError(f"building the qemu plugin {PLUGIN_SOURCE.name} failed:\n{r.stderr}")
    return out


def build_program(g: Graph, target: str, work: Path) -> Path:
    """The static ``predict`` program for ``target`` and a random input file beside it."""
    t = targets.get(target)
    gen = build.generate(g, work, t)
    build.build_dir(gen, library=False, static=True)
    x = np.random.default_rng(0).standard_normal(g.input_shape).astype(np.float32)
    x.tofile(work / "x.f32")
    return gen.predict


def count_blocks(exe: Path, target: str, plugin: Path, repeats: int) -> dict[int, list[int]]:
    """{block address: [executions, instructions, bytes]} of ``predict -n repeats`` (1 thread)
    under qemu-user with the counting plugin."""
    t = targets.get(target)
    qemu = _tool(QEMU.get(t.arch or "x86_64", t.qemu), "qemu-user")
    out = exe.parent / f"blocks-{repeats}.txt"
    cmd = [qemu, "-plugin", f"{plugin},out={out}"]
    if t.sysroot:
        cmd += ["-L", t.sysroot]
    cmd += [str(exe), "-t", "1", "-n", str(repeats), "x.f32"]
    r = subprocess.run(cmd, cwd=exe.parent, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    if r.returncode != 0 or not out.is_file():
        raise EdgecnnError(f"{' '.join(cmd)} failed:\n{r.stderr.strip()[:2000]}")
    blocks: dict[int, list[int]] = {}
    for line in out.read_text().split("\n"):
        if line:
            a, n, insns, size = line.split()
            b = blocks.setdefault(int(a, 16), [0, int(insns), int(size)])
            b[0] += int(n)  # the same block translated twice: add the counts
    return blocks


def per_frame(one: dict[int, list[int]], two: dict[int, list[int]]) -> dict[int, list[int]]:
    """Block executions of one more frame: the counts of a 2-frame run minus a 1-frame run."""
    out = {}
    for a, (n, insns, size) in two.items():
        d = n - one.get(a, [0])[0]
        if d > 0:
            out[a] = [d, insns, size]
    return out


_OBJDUMP_LINE = re.compile(r"^\s*([0-9a-f]+):\s+(.*)$")


def disassemble(exe: Path) -> dict[int, str]:
    """{instruction address: assembly text} of the program (AT&T syntax on x86)."""
    objdump = _tool("llvm-objdump", "llvm")
    r = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(exe)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise EdgecnnError(f"llvm-objdump failed on {exe}: {r.stderr.strip()[:500]}")
    insns = {}
    for line in r.stdout.split("\n"):
        m = _OBJDUMP_LINE.match(line)
        if m:
            insns[int(m.group(1), 16)] = m.group(2).split("//")[0].split(" # ")[0].strip()
    return insns


def _asm_for_mca(text: str) -> str:
    """An objdump line as llvm-mca's assembler takes it: branch targets become '.'."""
    text = re.sub(r"\s*<[^>]*>", "", text).replace("\t", " ").strip()
    return re.sub(r"^(\S+\s+)(?:0x)?[0-9a-f]+$", r"\1.", text) if re.match(
        r"^(j|b|call|bl|cb|tb)", text) else text


def block_texts(insns: dict[int, str], frame: dict[int, list[int]]) -> dict[int, list[str]]:
    """{block address: its instructions as llvm-mca input}, for the blocks whose instructions
    the disassembly has (address order; a block's ``n`` instructions from its first address)."""
    addrs = sorted(insns)
    out = {}
    for a, (_, n, _) in frame.items():
        i = bisect.bisect_left(addrs, a)
        run = addrs[i:i + n]
        if len(run) == n and run[0] == a:
            out[a] = [_asm_for_mca(insns[k]) for k in run]
    return out


def price_blocks(blocks: dict[int, list[str]], triple: str, mcpu: str,
                 iterations: int = 200) -> dict[int, float]:
    """Steady-state cycles per execution of each block, from one llvm-mca run (one code region
    per block). Blocks llvm-mca cannot parse are dropped (the caller prices them at the mean)."""
    mca = _tool("llvm-mca", "llvm")
    todo = dict(blocks)
    for _ in range(50):  # each failure names a line: drop that block and retry
        src, owner = [], {}
        for a, lines in todo.items():
            src.append(f"# LLVM-MCA-BEGIN b{a:x}")
            for line in lines:
                owner[len(src) + 1] = a
                src.append(line)
            src.append(f"# LLVM-MCA-END b{a:x}")
        r = subprocess.run([mca, f"-mtriple={triple}", f"-mcpu={mcpu}",
                            f"-iterations={iterations}", "-summary-view", "-resource-pressure=0",
                            "-instruction-info=0", "-"], input="\n".join(src) + "\n",
                           capture_output=True, text=True)
        if r.returncode == 0:
            return _parse_mca(r.stdout, iterations)
        bad = {owner[int(m)] for m in re.findall(r"<stdin>:(\d+):", r.stderr)
               if int(m) in owner}
        if not bad:
            raise EdgecnnError(f"llvm-mca failed: {r.stderr.strip()[:1000]}")
        for a in bad:
            del todo[a]
    raise EdgecnnError("llvm-mca: too many blocks it cannot parse")


def _parse_mca(text: str, iterations: int) -> dict[int, float]:
    out = {}
    for m in re.finditer(r"Code Region - b([0-9a-f]+)\s+Iterations:\s+\d+\s+Instructions:\s+"
                         r"\d+\s+Total Cycles:\s+(\d+)", text):
        out[int(m.group(1), 16)] = int(m.group(2)) / iterations
    return out


def memory_seconds(g: Graph, d: Device) -> float:
    """Bytes beyond the last-level cache (the weights if they do not fit; each layer's output
    and input if together they do not) at the device's DRAM bandwidth."""
    s = summarize(g)
    traffic = s.weight_bytes if s.weight_bytes > d.cache_bytes else 0
    prev = int(np.prod(g.input_shape)) * 4
    for l in s.layers:
        out = int(np.prod(l.padded_output_shape)) * 4
        if prev + out + l.weight_bytes > d.cache_bytes:
            traffic += prev + out
        prev = out
    return traffic / (d.dram_gbps * 1e9)


def estimate(g: Graph, d: Device, work: str | os.PathLike | None = None,
             progress: Callable[[str], None] | None = None) -> dict:
    """The estimate for one model on one device, with the figures it is made of."""
    say = progress or (lambda s: None)
    with tempfile.TemporaryDirectory(prefix="edgecnn-estimate-") as tmp:
        w = Path(work or tmp)
        w.mkdir(parents=True, exist_ok=True)
        say(f"{d.key}: building predict for target {d.target}")
        exe = build_program(g, d.target, w)
        plugin = build_plugin(w)
        say(f"{d.key}: counting executed blocks under qemu-user (1 and 2 frames)")
        frame = per_frame(count_blocks(exe, d.target, plugin, 0),
                          count_blocks(exe, d.target, plugin, 1))
        insns = disassemble(exe)
        texts = block_texts(insns, frame)
        say(f"{d.key}: pricing {len(texts)} blocks with llvm-mca -mcpu={d.mcpu}")
        cycles = price_blocks(texts, d.triple, d.mcpu)
    executed = sum(n * k for n, k, _ in frame.values())
    priced = sum(frame[a][0] * frame[a][1] for a in cycles)
    core = sum(frame[a][0] * c for a, c in cycles.items())
    # blocks llvm-mca could not price: at the priced blocks' cycles per instruction
    cpi = core / priced if priced else 1.0
    core += (executed - priced) * cpi
    compute_s = core / (d.ghz * 1e9)
    mem_s = memory_seconds(g, d)
    return {"device": d.key, "label": d.label, "target": d.target, "mcpu": d.mcpu,
            "ghz": d.ghz, "instructions": executed, "priced_fraction": priced / executed,
            "cycles": core, "compute_ms": compute_s * 1e3, "memory_ms": mem_s * 1e3,
            "ms": (compute_s + mem_s) * 1e3, "note": d.note}


def report(g: Graph, results: list[dict], validation_error: float | None) -> dict:
    """An estimate report in the shape of a bench report (its entries say ``estimated``), so
    that `edgecnn card --bench` reads it; each entry carries the method and validation error."""
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ok = validation_error is not None and validation_error <= MAX_PUBLISHED_ERROR
    entries = [{"backend": "compiled", "threads": 1, "available": True, "target": r["target"],
                "device": f"{r['label']} (estimated)", "board": r["device"], "date": date,
                "ms_median": r["ms"], "estimated": True, "method": METHOD,
                "validation_error": validation_error, "publishable": ok, "details": r}
               for r in results]
    return {"model": g.name, "graph_name": g.name, "total_macs": summarize(g).total_macs,
            "date": date, "estimate": True, "validation_error": validation_error,
            "entries": entries}


def read_validation(path: str | os.PathLike) -> float:
    """The method's error from a validation table (``benchmarks/estimate_validation.py``): the
    largest relative error |estimated / measured - 1| over its models."""
    try:
        d = json.loads(Path(path).read_text())
        return float(d["max_abs_error"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EdgecnnError(f"{path}: not an estimate validation table ({e}); write it with "
                           "benchmarks/estimate_validation.py") from None
