"""edgecnn on emulated Cortex-M boards, and beside TensorFlow Lite Micro (TFLM).

    python benchmarks/mcu.py                      # Markdown tables on stdout
    python benchmarks/mcu.py -o benchmarks/mcu.md --json mcu.json

Part 1, for each model and board (qemu-system-arm): flash (code, weights) and RAM (arena, stack
high-water mark, bss) of the build, the largest difference from the numpy reference (logits),
and the instructions of one inference (SysTick under ``-icount shift=0``: one tick = 40
instructions at MPS2's 25 MHz, 31.25 at MPS3's 32 MHz; instructions, not time).

Part 2, TFLM (the pip ``tflite-micro`` interpreter, x86): for int8 ``.tflite`` files written by
``tests/tflite_int8.py`` (TFLM runs int8 only), the smallest arena it accepts (bisection) and its
outputs; beside them edgecnn's build of the same file as an integer graph (the portable int8
kernels, 1-byte activations) on the board, whose output must equal TFLM's exactly, and the
arena the float graph of the same file would need.

Needs: arm-none-eabi-gcc + newlib, qemu-system-arm, the tflite extra, ``tflite-micro`` (part 2)
and the shared data (the MobileNet row).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import tflite_int8  # noqa: E402 - the int8 .tflite writer the tests use too
from edgecnn.apps.resolve import resolve  # noqa: E402
from edgecnn.compiler import build, mcu, targets  # noqa: E402
from edgecnn.core import reference  # noqa: E402
from edgecnn.core.surgery import cut  # noqa: E402

DATA = Path(os.environ.get("EDGECNN_DATA", Path(__file__).resolve().parents[1].parent
                           / "shared" / "data"))
MOBILENET = DATA / "tflite" / "mobilenet_v1_0.25_128_quant.tflite"


def logits(g):
    last = g.layers[-1]
    return cut(g, last.inputs[0]) if last.kind == "softmax" else g


def import_file(path, as_float: bool = True):
    from edgecnn.formats.importers.tflite import import_tflite

    return logits(import_tflite(path, as_float=as_float))


# ---- part 1: edgecnn on the boards ------------------------------------------------------------

def on_board(g, target: str, x: np.ndarray, work: Path) -> dict:
    kind = "integer" if any(l.spec.integer for l in g.layers) else "float"
    gen = mcu.generate(g, work / f"{target}-{kind}-{g.name[:24]}", target)
    mcu.build_images(gen)
    sz = mcu.sizes(gen, g)
    r = mcu.run(gen.target, gen.dir / "model.elf", x, g.num_classes, icount=True)
    if r.report.get("rc") != 0:
        return {"model": f"{g.name} ({kind})", "target": target, "error": r.report}
    want = reference.predict(g, x[None])[0].ravel()
    return {"model": f"{g.name} ({kind})", "target": target, "board": gen.target.board,
            "flash_code": sz["flash"]["text"] + sz["flash"]["rodata"],
            "flash_weights": sz["flash"]["weights"], "flash_total": sz["flash"]["total"],
            "arena": sz["ram"]["arena"], "stack": r.report["stack_bytes"],
            "bss_data": sz["ram"]["bss_other"] + sz["ram"]["data"],
            "ram_total": sz["ram"]["arena"] + r.report["stack_bytes"] + sz["ram"]["bss_other"]
            + sz["ram"]["data"],
            "max_abs_error": float(np.abs(r.output - want).max()),
            "max_abs_logit": float(np.abs(want).max()),
            "top1_same": int(np.argmax(r.output) == np.argmax(want)),
            "instructions": r.report["instructions"],
            "output": r.output}


# ---- part 2: TFLM -----------------------------------------------------------------------------

@contextlib.contextmanager
def quiet_stderr():
    """TFLM prints every failed allocation to the C stderr: hide it during the bisection."""
    fd = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(fd, 2)
            os.close(fd)


def tflm_run(data: bytes, arena: int, x_q: np.ndarray):
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(data, arena_size=arena)
    it.set_input(x_q, 0)
    it.invoke()
    return it.get_output(0)


def tflm_allocations(data: bytes, arena: int, x_q: np.ndarray) -> dict:
    """TFLM's own allocation report (RecordingMicroAllocator): total, head (the activations'
    plan) and tail (persistent data: tensor structs, per-channel quantization) in bytes."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(data, arena_size=arena)
    it.set_input(x_q, 0)
    it.invoke()
    with tempfile.TemporaryFile() as f:  # TFLM logs (MicroPrintf) to the C stderr
        sys.stderr.flush()
        fd = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            it.print_allocations()
            ctypes.CDLL(None).fflush(None)  # the C library's buffers, into the file
        finally:
            os.dup2(fd, 2)
            os.close(fd)
        f.seek(0)
        text = f.read().decode(errors="replace")
    found = dict(re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text))
    return {k: int(v) for k, v in found.items()}


def tflm_smallest_arena(data: bytes, x_q: np.ndarray, hi: int = 8 << 20) -> int | None:
    """The smallest arena (bytes, to 16) with which TFLM allocates and runs the model."""
    def ok(n):
        try:
            with quiet_stderr():
                tflm_run(data, n, x_q)
            return True
        except RuntimeError:
            return False

    if not ok(hi):
        return None
    lo = 0  # fails
    while hi - lo > 16:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def calibrated(layers, shape, x: np.ndarray, work: Path) -> bytes:
    """Write ``layers`` twice: the second time with activation ranges measured by the float
    graph of the first on ``x``."""
    first = work / "first.tflite"
    first.write_bytes(tflite_int8.write(layers, shape))
    g = import_file(first)
    names = [l.name for l in g.layers if l.name.endswith("_relu6")] + [g.layers[-1].name]
    acts = reference.run(g, x[None], outputs=names)
    it = iter(float(np.abs(acts[n]).max()) for n in names)
    ranges = [next(it) if layer[0] != "avgpool" else 0.0 for layer in layers]
    return tflite_int8.write(layers, shape, ranges)


def tflm_row(name, layers, shape, target, work: Path, seed=0) -> dict:
    from edgecnn.formats.importers.tflite import read_model

    rng = np.random.default_rng(seed)
    x_q = rng.integers(-128, 128, (1, *shape)).astype(np.int8)
    x = x_q[0].astype(np.float32) / 128  # the input's quantization: scale 1/128, zero point 0
    data = calibrated(layers, shape, x, work)
    path = work / f"{name}.tflite"
    path.write_bytes(data)
    arena = tflm_smallest_arena(data, x_q)
    y_q = tflm_run(data, arena, x_q)[0].astype(np.float32)
    tensors, _, _, outs = read_model(str(path))
    out_t = tensors[outs[0]]
    scale, zp = float(out_t.scale[0]), float(out_t.zero_point[0])
    y_tflm = (y_q - zp) * scale
    g = import_file(path, as_float=False)
    ours = on_board(g, target, x, work)
    _, pl_float = build.lower_and_plan(import_file(path), targets.get(target), ref_kernels=True)
    return {"model": name, "tflite_bytes": len(data), "tflm_arena": arena,
            "tflm_allocations": tflm_allocations(data, 1 << 22, x_q),
            "edgecnn_float_graph_arena": pl_float.arena_bytes,
            "tflm_top1": int(np.argmax(y_tflm)), "edgecnn": {k: v for k, v in ours.items()
                                                           if k != "output"},
            "edgecnn_top1": int(np.argmax(ours["output"])),
            "max_diff_in_output_steps": float(np.abs(ours["output"] - y_tflm).max() / scale),
            "output_scale": scale}


def tflm_refuses_uint8() -> str:
    from tflite_micro.python.tflite_micro import runtime

    try:
        with quiet_stderr():
            runtime.Interpreter.from_file(str(MOBILENET), arena_size=8 << 20)
    except RuntimeError as e:
        return f"refused ({e})"
    return "accepted"


# ---- tables -----------------------------------------------------------------------------------

def board_table(rows) -> str:
    lines = ["| model | target (board) | flash: code + weights = total | RAM: arena + stack + "
             "bss/data = total | max abs error (max abs logit) | instructions |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['target']} | failed: {r['error']} |||||")
            continue
        lines.append(
            f"| {r['model']} | {r['target']} ({r['board']}) | {r['flash_code']:,} + "
            f"{r['flash_weights']:,} = {r['flash_total']:,} | {r['arena']:,} + {r['stack']:,} "
            f"+ {r['bss_data']:,} = {r['ram_total']:,} | {r['max_abs_error']:.2g} "
            f"({r['max_abs_logit']:.3g}) | {r['instructions'] / 1e6:.1f} M |")
    return "\n".join(lines) + "\n"


def tflm_table(rows) -> str:
    lines = ["| model (int8 .tflite) | file bytes | TFLM arena: smallest accepted (its report: "
             "activations + persistent) | edgecnn arena, int8 (built, on the board) | edgecnn "
             "RAM total: arena + stack + bss/data | edgecnn arena of the float graph | edgecnn "
             "flash | top-1 TFLM / edgecnn | max diff (output steps) | edgecnn instructions "
             "(cortex-m4) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e, a = r["edgecnn"], r["tflm_allocations"]
        lines.append(
            f"| {r['model']} | {r['tflite_bytes']:,} | {r['tflm_arena']:,} ({a.get('head', 0):,}"
            f" + {a.get('tail', 0):,}) | {e['arena']:,} | {e['ram_total']:,} | "
            f"{r['edgecnn_float_graph_arena']:,} | {e['flash_total']:,} | "
            f"{r['tflm_top1']} / {r['edgecnn_top1']} | "
            f"{r['max_diff_in_output_steps']:.1f} | {e['instructions'] / 1e6:.1f} M |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", help="write the Markdown here too")
    ap.add_argument("--json", help="write the figures as JSON")
    ap.add_argument("--targets", default="cortex-m4,cortex-m7,cortex-m55")
    args = ap.parse_args(argv)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="edgecnn-mcu-bench-") as tmp:
        work = Path(tmp)
        models = [resolve("d_I32x32x3CMCMCMF10"), resolve("d_I32x32x3CMBMBMF10")]
        if MOBILENET.is_file():  # as a float graph and as the integer graph it is
            models += [import_file(MOBILENET), import_file(MOBILENET, as_float=False)]
        board_rows = []
        for g in models:
            x = np.random.default_rng(0).uniform(-1, 1, g.input_shape).astype(np.float32)
            for t in args.targets.split(","):
                targets.get(t)
                print(f"board: {g.name} on {t}", file=sys.stderr)
                board_rows.append(on_board(g, t, x, work))
        tflm_rows = []
        for name, layers, shape in (("small_int8_32x32", tflite_int8.SMALL, (32, 32, 3)),
                                    ("mobilenet_v1_0.25_128_int8", tflite_int8.MOBILENET_V1_025,
                                     (128, 128, 3))):
            print(f"tflm: {name}", file=sys.stderr)
            tflm_rows.append(tflm_row(name, layers, shape, "cortex-m4", work))
        refusal = tflm_refuses_uint8() if MOBILENET.is_file() else "not run (no shared data)"
    md = ("## edgecnn on emulated Cortex-M boards\n\n" + board_table(board_rows)
          + "\n## Beside TensorFlow Lite Micro (int8 files, run as integers by both)\n\n"
          + tflm_table(tflm_rows)
          + f"\nTFLM on the shared uint8 MobileNet v1 0.25/128: {refusal}\n"
          + f"\n(measured in {time.time() - t0:.0f} s)\n")
    print(md)
    if args.output:
        Path(args.output).write_text(md)
    if args.json:
        for r in board_rows:
            r.pop("output", None)
        Path(args.json).write_text(json.dumps({"boards": board_rows, "tflm": tflm_rows,
                                               "tflm_uint8_mobilenet": refusal}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
