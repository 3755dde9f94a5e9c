"""Does a model fit a microcontroller? Flash and RAM from the compiler's plan, before any build.

Exact (the compiler's own figures, as the build will have them): the weight bytes (the packed
blob placed in flash) and the arena (the memory plan). Estimated: the code and the rest of the
image (runtime kernels, startup, libm), the stack and the C library's data, from the builds
measured on the emulated boards (see ``CODE_BYTES``). The peak is explained by the op whose live
buffers reach the end of the arena.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.graph import Graph
from ..errors import EdgecnnError
from . import emit, kernels, passes, plan, targets

# Measured with arm-none-eabi-gcc 12 -O2 on cortex-m4 (size.elf of `compile`): code + other
# constants 3.8 KB for an ELL model, 5.6 KB for MobileNet v1; stack high-water 0.6-1.3 KB;
# newlib data ~1.1 KB. Rounded up, these are the estimates.
CODE_BYTES = 8 * 1024
STACK_BYTES = 2 * 1024
LIBC_RAM_BYTES = 2 * 1024

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]i?[bB]?|[bB]?)\s*$")


def parse_size(text: str) -> int:
    """ "1M" -> 1048576, "256K" -> 262144, "4096" -> 4096 (K and M are binary, as in data
    sheets' flash and RAM sizes)."""
    m = _SIZE.match(str(text))
    if not m:
        raise EdgecnnError(f"cannot read the size {text!r}: write e.g. 1M, 256K or 65536")
    unit = m.group(2)[:1].upper()
    return int(float(m.group(1)) * {"K": 1024, "M": 1024 * 1024}.get(unit, 1))


@dataclass
class Peak:
    op: str  # the op during which the arena is fullest
    buffers: list[tuple[str, tuple[int, int, int], int]]  # live value, padded H x W x C, bytes


def memory_peak(prog, pl: plan.Plan) -> Peak:
    """The op whose live buffers (and scratch) end highest in the arena, with those buffers."""
    last = plan._last_use(prog)
    first = {prog.input: -1, **{op.output: i for i, op in enumerate(prog.ops)}}
    best, best_end, best_live = "", -1, []
    for i, op in enumerate(prog.ops):
        live = [v for v in pl.views if first[v] <= i <= last[v]]
        ends = [pl.views[v].offset + pl.views[v].floats for v in live]
        if op.name in pl.scratch:
            off, n = pl.scratch[op.name]
            ends.append(off + n)
        end = max(ends, default=0)
        if end > best_end:
            best, best_end, best_live = op.name, end, live
    seen, bufs = set(), []
    for v in best_live:  # values sharing a buffer (in-place ops) once
        vw = pl.views[v]
        if vw.offset in seen:
            continue
        seen.add(vw.offset)
        bufs.append((v, (vw.h + 2 * vw.pad_h, vw.w + 2 * vw.pad_w, vw.c), 4 * vw.floats))
    if best in pl.scratch:
        bufs.append((f"{best} (kernel scratch)", (0, 0, 0), 4 * pl.scratch[best][1]))
    return Peak(best, bufs)


def fit(g: Graph, target: str = "cortex-m4", flash: int | None = None,
        ram: int | None = None) -> dict:
    """Flash and RAM the model will need on ``target`` and whether it fits ``flash``/``ram``
    bytes (None: not checked)."""
    t = targets.get(target)
    if not t.board:
        raise EdgecnnError(f"--flash/--ram fit checks are for microcontroller targets "
                           f"(cortex-m4, cortex-m7, cortex-m55), not {target!r}")
    prog = passes.lower(g)
    chosen = kernels.choose_all(prog, t, True)
    pl = plan.make_plan(prog, chosen, t)
    packed = kernels.pack_all(prog, chosen, t.nb)
    opt = emit.Options("fit", "caller", "file", t.nb, True)  # the blob without the C text
    weights = 4 * len(emit.emit(g, prog, chosen, pl, packed, opt, "").weights)
    need_flash = weights + CODE_BYTES
    need_ram = pl.arena_bytes + STACK_BYTES + LIBC_RAM_BYTES
    peak = memory_peak(prog, pl)
    rep = {"model": g.name, "target": t.name,
           "flash": {"weights": weights, "code_estimate": CODE_BYTES, "total": need_flash},
           "ram": {"arena": pl.arena_bytes, "stack_estimate": STACK_BYTES,
                   "libc_estimate": LIBC_RAM_BYTES, "total": need_ram},
           "peak": {"op": peak.op, "buffers": [
               {"value": v, "shape": list(s), "bytes": b} for v, s, b in peak.buffers]}}
    for key, have in (("flash", flash), ("ram", ram)):
        if have is not None:
            rep[key]["available"] = have
            rep[key]["fits"] = rep[key]["total"] <= have
            rep[key]["over_by"] = max(0, rep[key]["total"] - have)
    rep["fits"] = all(rep[k].get("fits", True) for k in ("flash", "ram"))
    return rep


def format_fit(rep: dict) -> str:
    f, r = rep["flash"], rep["ram"]
    lines = [f"{rep['model']} on {rep['target']}:",
             f"  flash {f['total']:,} bytes = {f['weights']:,} weights + ~{f['code_estimate']:,} "
             f"code (estimate){_verdict(f)}",
             f"  RAM   {r['total']:,} bytes = {r['arena']:,} arena + ~{r['stack_estimate']:,} "
             f"stack + ~{r['libc_estimate']:,} C library (estimates){_verdict(r)}",
             f"  the arena peaks during {rep['peak']['op']}, whose live buffers are "
             f"({sum(b['bytes'] for b in rep['peak']['buffers']):,} bytes; the rest of the "
             "arena up to their end is space left between placed buffers):"]
    for b in rep["peak"]["buffers"]:
        shape = "x".join(map(str, b["shape"])) if any(b["shape"]) else "scratch"
        lines.append(f"    {b['value']}: {shape} floats, {b['bytes']:,} bytes")
    return "\n".join(lines) + "\n"


def _verdict(part: dict) -> str:
    if "available" not in part:
        return ""
    if part["fits"]:
        return f": fits in {part['available']:,} ({part['available'] - part['total']:,} spare)"
    return f": does NOT fit in {part['available']:,} (over by {part['over_by']:,} bytes)"
