"""Cortex-M builds: a model as bare-metal C, built with arm-none-eabi-gcc, measured, and run on a
board emulated by qemu-system-arm.

``generate`` writes the model (caller-provided arena, const weights in flash, reference kernels
in plain C99) plus the example program of ``boards/``: ``main.c`` (input and output through
semihosting files), ``startup.c`` (vector table, reset, SysTick) and ``board.ld`` (the board's
memory map + the sections). ``build`` compiles two images: ``model.elf``, the example, and
``size.elf``, the model with its arena and startup only, which is what ``sizes`` reads with
``arm-none-eabi-size`` (flash = text + rodata, weights separately; RAM = arena + bss). ``run``
boots an image on the emulated board and returns the output and the board's JSON report (stack
high-water mark from a painted stack, return code, SysTick count). ``report`` puts it together:
what ``edgecnn compile --target cortex-m4`` prints and writes to ``mcu.json``.

The example and board files are test fixtures and a starting point, not the product API: a real
firmware calls ``<name>_predict_checked`` from its own main loop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.fileio import write_bytes_atomic
from ..core.graph import Graph
from ..errors import EdgecnnError
from . import build, targets

BOARD_DIR = Path(__file__).parent / "boards"
STACK_BYTES = 64 * 1024  # the example's stack (the run reports how much of it is used)
HEAP_BYTES = 16 * 1024  # newlib's semihosting stdio buffers (the example only)
LIBS = ("-Wl,--start-group", "-lc", "-lrdimon", "-lgcc", "-lm", "-Wl,--end-group")
K = 1024
M = K * K


@dataclass(frozen=True)
class Board:
    """An emulated board: its qemu machine and the memory the linker places the image in.
    Regions are (origin, length); ``vectors`` is where the core reads its vector table at reset
    when that is not the start of ``flash``."""

    machine: str
    flash: tuple[int, int]
    ram: tuple[int, int]
    vectors: tuple[int, int] | None = None
    clock_hz: int = 25_000_000  # the core clock SysTick counts (qemu's sysclk for the board)

    def instructions(self, systicks: int) -> int:
        """Emulated instructions in ``systicks`` SysTick ticks under -icount shift=0 (one
        instruction per virtual nanosecond; tests/test_mcu.py checks it with a timed loop)."""
        return round(systicks * 1e9 / self.clock_hz)

    def memory_ld(self) -> str:
        def region(name, attrs, r):
            return f"    {name} ({attrs}) : ORIGIN = {r[0]:#010x}, LENGTH = {r[1] // K}K\n"

        text = "MEMORY\n{\n" + region("FLASH", "rx", self.flash) + region("RAM", "rwx", self.ram)
        if self.vectors:
            text += region("VECTORS", "rx", self.vectors) + "}\n"
        else:
            text += "}\nREGION_ALIAS(\"VECTORS\", FLASH);\n"
        return text


# qemu's MPS2/MPS3 FPGA images (hw/arm/mps2.c, mps2-tz.c). AN386/AN500: ZBT SSRAM1 (4 MB at 0,
# standing in for flash) and SSRAM2/3 (4 MB at 0x20000000). AN547 (SSE-300): the vector table in
# ITCM at 0, code and weights in the QSPI flash (8 MB), data in ISRAM (4 MB).
BOARDS = {
    "mps2-an386": Board("mps2-an386", (0, 4 * M), (0x20000000, 4 * M)),
    "mps2-an500": Board("mps2-an500", (0, 4 * M), (0x20000000, 4 * M)),
    "mps3-an547": Board("mps3-an547", (0x28000000, 8 * M), (0x21000000, 4 * M),
                        vectors=(0, 512 * K), clock_hz=32_000_000),
}


def board_of(t: targets.Target) -> Board:
    if not t.board:
        raise EdgecnnError(f"target {t.name!r} is not a microcontroller (known: "
                           f"{', '.join(n for n, x in targets.TARGETS.items() if x.board)})")
    return BOARDS[t.board]


def linker_script(board: Board) -> str:
    return (f"/* {board.machine}: written by edgecnn for the example image */\n"
            f"{board.memory_ld()}EC_STACK_BYTES = {STACK_BYTES};\n"
            f"EC_HEAP_BYTES = {HEAP_BYTES};\n\n"
            + (BOARD_DIR / "cortexm.ld").read_text())


# ---- generate ---------------------------------------------------------------------------------

def generate(g: Graph, out_dir: str | os.PathLike, target: str = "cortex-m4",
             name: str | None = None,
             progress: Callable[[str], None] | None = None) -> build.Generated:
    """The model's C (caller arena, const weights, reference kernels) and the example image's
    files: main.c, startup.c, board.ld, Makefile, README.md."""
    t = targets.get(target)
    board = board_of(t)
    gen = build.generate(g, out_dir, t, name, arena="caller", weights="const", ref_kernels=True,
                         progress=progress)
    out = gen.dir
    (out / "predict.c").unlink(missing_ok=True)  # the host program: not for a microcontroller
    shutil.copyfile(BOARD_DIR / "cortexm_main.c", out / "main.c")
    shutil.copyfile(BOARD_DIR / "cortexm_startup.c", out / "startup.c")
    write_bytes_atomic(out / "board.ld", linker_script(board).encode())
    write_bytes_atomic(out / "Makefile", makefile(gen, board).encode())
    write_bytes_atomic(out / "README.md", readme(g, gen, board).encode())
    return gen


def _cflags(t: targets.Target) -> list[str]:
    return build.cflags(t)


def _ldflags(t: targets.Target) -> list[str]:
    return [f for f in t.cflags if f.startswith(("-mcpu", "-mfpu", "-mthumb", "-mfloat-abi"))] + \
        ["-mthumb", "-nostartfiles", "-T", "board.ld", "-Wl,--gc-sections"]


def makefile(gen: build.Generated, board: Board) -> str:
    t = gen.target
    objs = " ".join(s[:-2] + ".o" for s in gen.sources)
    return f"""# Generated by edgecnn for target {t.name}: the example image model.elf for the
# emulated board {board.machine} (`make run`), and size.elf, the model alone (`make size`).
CC = {t.cc}
CFLAGS = {" ".join(_cflags(t))}
LDFLAGS = {" ".join(_ldflags(t))}
LDLIBS = {" ".join(LIBS)}
OBJS = {objs}

all: model.elf size.elf

model.elf: main.o startup.o $(OBJS)
\t$(CC) $(LDFLAGS) -Wl,-Map=model.map -o $@ $^ $(LDLIBS)

size.elf: main_size.o startup.o $(OBJS)
\t$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

main_size.o: main.c *.h
\t$(CC) $(CFLAGS) -DEC_SIZE_ONLY -DEC_ARENA_GUARD=0 -c -o $@ $<

%.o: %.c *.h
\t$(CC) $(CFLAGS) -c -o $@ $<

# reads input.f32 and writes output.f32 in this directory
run: model.elf
\tqemu-system-arm -M {board.machine} -nographic -monitor none -serial null \\
\t    -semihosting-config enable=on,target=native -kernel model.elf

size: size.elf
\tarm-none-eabi-size -A size.elf

clean:
\trm -f *.o *.elf *.map

.PHONY: all run size clean
"""


def readme(g: Graph, gen: build.Generated, board: Board) -> str:
    p = gen.name
    h, w, c = g.input_shape
    return f"""# {g.name} for `{gen.target.name}` (compiled by edgecnn)

{gen.target.description}.

- `model.c`, `model.h`, `ec_*.c`, `ec_*.h`: the model: weights as `const` data (flash), reference
  kernels in plain C99, no malloc, no threads, no OS. The caller provides the arena.
- `main.c`, `startup.c`, `board.ld`: an example image for the emulated board `{board.machine}`
  (input.f32 in, output.f32 out through semihosting). A test fixture and a starting point: a
  product links `model.c` and the runtime into its own firmware.
- `make` builds `model.elf` and `size.elf` (the model alone, for `arm-none-eabi-size`);
  `make run` runs the example under qemu-system-arm.

From a bare-metal or RTOS loop:

    static float arena[{p.upper()}_ARENA_BYTES / sizeof(float)];   /* {gen.arena_bytes} bytes */
    float input[{h} * {w} * {c}], scores[{g.num_classes}];
    for (;;) {{
        /* fill input: {h}x{w}x{c} float32 HWC, preprocessed */
        if ({p}_predict_checked(input, scores, arena, sizeof arena) != 0) break;
    }}

`{p}_predict_checked` returns 4 and touches nothing when the arena is smaller than
`{p}_arena_size()` bytes.
"""


# ---- build ------------------------------------------------------------------------------------

def build_images(gen: build.Generated, arena_bytes: int | None = None, jobs: int = 2,
                 progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Compile the model and link model.elf (the example) and size.elf (the model alone).

    ``arena_bytes`` overrides the example's arena (the tests pass one byte less than the
    model's size to see it refuse to run); the images are then named model-arena<N>.elf."""
    t = gen.target
    cc = t.require_compiler()
    say = progress or (lambda s: None)
    flags = _cflags(t)
    units = [(s, s[:-2] + ".o", []) for s in gen.sources + ["startup.c"]]
    suffix = "" if arena_bytes is None else f"-arena{arena_bytes}"
    defs = [] if arena_bytes is None else [f"-DEC_ARENA_BYTES={arena_bytes}"]
    units += [("main.c", f"main{suffix}.o", defs),
              ("main.c", "main_size.o", ["-DEC_SIZE_ONLY", "-DEC_ARENA_GUARD=0"])]
    todo = [u for u in units if not _fresh(gen.dir / u[1], gen.dir / u[0])]
    say(f"compile: {len(todo)} files with {t.cc} {' '.join(flags)}")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, jobs)) as ex:
        list(ex.map(lambda u: build._run([cc, *flags, *u[2], "-c", "-o", u[1], u[0]], gen.dir),
                    todo))
    objs = [s[:-2] + ".o" for s in gen.sources] + ["startup.o"]
    images = {"model": gen.dir / f"model{suffix}.elf", "size": gen.dir / "size.elf"}
    say(f"link: {images['model']}")
    build._run([cc, *_ldflags(t), f"-Wl,-Map=model{suffix}.map", "-o", images["model"].name,
                f"main{suffix}.o", *objs, *LIBS], gen.dir)
    build._run([cc, *_ldflags(t), "-o", "size.elf", "main_size.o", *objs, *LIBS], gen.dir)
    return images


def _fresh(obj: Path, src: Path) -> bool:
    return obj.is_file() and obj.stat().st_mtime >= src.stat().st_mtime


# ---- sizes ------------------------------------------------------------------------------------

FLASH_SECTIONS = (".vectors", ".text", ".rodata", ".ARM.exidx", ".ARM.extab", ".init_array")


def section_sizes(elf: Path) -> dict[str, int]:
    """``arm-none-eabi-size -A``: allocated section -> bytes."""
    out = _tool("arm-none-eabi-size", "-A", "-d", str(elf))
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in (*FLASH_SECTIONS, ".data", ".bss"):
            sizes[parts[0]] = int(parts[1])
    return sizes


def symbol_size(elf: Path, symbol: str) -> int:
    for line in _tool("arm-none-eabi-nm", "-S", str(elf)).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == symbol:
            return int(parts[1], 16)
    return 0


def _tool(*cmd: str) -> str:
    if shutil.which(cmd[0]) is None:
        raise EdgecnnError(f"{cmd[0]} is not installed (Debian/Ubuntu: sudo apt install "
                           "gcc-arm-none-eabi binutils-arm-none-eabi)")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise EdgecnnError(f"{' '.join(cmd)} failed: {r.stderr.strip()[:2000]}")
    return r.stdout


def sizes(gen: build.Generated, g: Graph) -> dict:
    """Flash and RAM of size.elf (the model, its arena and I/O buffers, the startup code)."""
    elf = gen.dir / "size.elf"
    sec = section_sizes(elf)
    weights = symbol_size(elf, "ec_w")
    h, w, c = g.input_shape
    io = 4 * (h * w * c + g.num_classes)
    text = sum(n for s, n in sec.items() if s in (".vectors", ".text"))
    rodata = sum(n for s, n in sec.items() if s in FLASH_SECTIONS) - text
    data, bss = sec.get(".data", 0), sec.get(".bss", 0)
    return {
        "flash": {"text": text, "rodata": rodata - weights, "weights": weights,
                  "data_init": data, "total": text + rodata + data},
        "ram": {"arena": gen.arena_bytes, "io_buffers": io,
                "bss_other": bss - gen.arena_bytes - io, "data": data},
        "sections": sec,
    }


# ---- run on the emulated board ----------------------------------------------------------------

@dataclass
class RunResult:
    report: dict  # the board's JSON line: rc, stack_bytes, guard_ok, systicks ...
    output: np.ndarray | None  # None when the model returned an error
    exit_code: int


def qemu_command(board: Board, elf: Path, icount: bool = False) -> list[str]:
    cmd = ["qemu-system-arm", "-M", board.machine, "-nographic", "-monitor", "none",
           "-serial", "null", "-semihosting-config", "enable=on,target=native",
           "-kernel", str(elf)]
    # -icount shift=0: one emulated instruction = 1 ns of virtual time, so SysTick (at the
    # board's core clock, 25 MHz on MPS2) counts one tick per 40 instructions
    return cmd + (["-icount", "shift=0"] if icount else [])


def run(t: targets.Target, elf: Path, x: np.ndarray, outputs: int, icount: bool = False,
        timeout: float = 600) -> RunResult:
    """Boot ``elf`` on ``t``'s emulated board with ``x`` (H x W x C float32) as input.f32."""
    board = board_of(t)
    if shutil.which("qemu-system-arm") is None:
        raise EdgecnnError("qemu-system-arm is not installed (Debian/Ubuntu: sudo apt install "
                           "qemu-system-arm)")
    with tempfile.TemporaryDirectory(prefix="edgecnn-mcu-") as tmp:
        np.ascontiguousarray(x, "<f4").tofile(os.path.join(tmp, "input.f32"))
        try:
            r = subprocess.run(qemu_command(board, elf.resolve(), icount), cwd=tmp,
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EdgecnnError(f"{elf} did not finish on {board.machine} within "
                               f"{timeout:.0f} s") from None
        report = _last_json(r.stdout)
        if report is None:
            raise EdgecnnError(f"{elf} on {board.machine}: no report (exit {r.returncode}; "
                               f"70 = a fault):\n{(r.stdout + r.stderr).strip()[-2000:]}")
        if icount and "systicks" in report:
            report["instructions"] = board.instructions(report["systicks"])
        out = None
        path = os.path.join(tmp, "output.f32")
        if report.get("rc") == 0 and os.path.isfile(path):
            out = np.fromfile(path, "<f4")
            if out.size != outputs:
                raise EdgecnnError(f"{elf}: output.f32 has {out.size} floats, not {outputs}")
        return RunResult(report, out, r.returncode)


def _last_json(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


# ---- compile ----------------------------------------------------------------------------------

def report(gen: build.Generated, g: Graph, measured: dict, result: RunResult | None) -> dict:
    """The figures `compile` prints and writes: flash, RAM (with the stack high-water mark of an
    emulated run when there was one)."""
    rep = {"model": g.name, "target": gen.target.name, "board": gen.target.board,
           "c_prefix": gen.name, **measured}
    ram = rep["ram"]
    if result is not None:
        ram["stack_high_water"] = result.report["stack_bytes"]
        rep["run"] = result.report
    ram["total"] = ram["arena"] + ram.get("stack_high_water", 0) + ram["bss_other"] + \
        ram["data"]
    ram["total_with_io_buffers"] = ram["total"] + ram["io_buffers"]
    return rep


def compile_mcu(g: Graph, out_dir: str | os.PathLike, target: str = "cortex-m4",
                name: str | None = None, run_board: bool = True,
                progress: Callable[[str], None] | None = None) -> dict:
    """``edgecnn compile --target cortex-m*``: generate, build, measure, run once on the emulated
    board (zero input) for the stack high-water mark when qemu-system-arm is installed; writes
    mcu.json beside the sources and returns it."""
    gen = generate(g, out_dir, target, name, progress)
    t = gen.target
    try:
        t.require_compiler()
    except EdgecnnError as e:
        raise EdgecnnError(f"{e}; the sources are written to {gen.dir}: install it and run "
                           f"`make -C {gen.dir}`") from None
    images = build_images(gen, progress=progress)
    measured = sizes(gen, g)
    result = None
    if run_board and shutil.which("qemu-system-arm"):
        (progress or (lambda s: None))(f"run: {images['model'].name} on {t.board} (qemu)")
        result = run(t, images["model"], np.zeros(g.input_shape, np.float32), g.num_classes)
        if result.report.get("rc") != 0:
            raise EdgecnnError(f"the example returned {result.report.get('rc')} on {t.board}")
        if result.report["stack_bytes"] >= result.report["stack_size"]:
            raise EdgecnnError(f"the model used all {result.report['stack_size']} bytes of the "
                               f"example's stack on {t.board}: raise mcu.STACK_BYTES")
    rep = report(gen, g, measured, result)
    write_bytes_atomic(gen.dir / "mcu.json", (json.dumps(rep, indent=2) + "\n").encode())
    return rep


def format_report(rep: dict) -> str:
    f, r = rep["flash"], rep["ram"]
    hw = (f"{r['stack_high_water']:,} stack (high-water mark on {rep['board']})"
          if "stack_high_water" in r else "stack not measured (no qemu-system-arm)")
    return (f"flash: {f['total']:,} bytes = {f['text']:,} code + {f['weights']:,} weights + "
            f"{f['rodata']:,} other constants + {f['data_init']:,} data initializers\n"
            f"RAM: {r['total']:,} bytes = {r['arena']:,} arena + {hw} + "
            f"{r['bss_other'] + r['data']:,} bss/data; plus {r['io_buffers']:,} for the "
            f"example's float input and output buffers")


__all__ = ["BOARDS", "Board", "RunResult", "build_images", "compile_mcu", "format_report",
           "generate", "qemu_command", "report", "run", "sizes"]
