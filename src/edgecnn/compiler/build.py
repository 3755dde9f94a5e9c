"""Generate a model's C sources into a directory and build them for a target.

``generate`` writes model.c, model.h, the runtime sources it calls, predict.c, a Makefile and
(weights="file") weights.bin. ``build_dir`` runs the target's compiler on them (the same
commands the Makefile holds): ``lib<name>.so`` and the ``predict`` program.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..core.fileio import write_bytes_atomic
from ..core.graph import Graph
from ..errors import EdgecnnError
from . import emit, kernels, passes, plan, targets

RUNTIME_DIR = kernels.RUNTIME_DIR
PREDICT_MAIN = "ec_predict_main.c"
CORE_SOURCES = ("ec_ref.c", "ec_pool.c", "ec_binary.c")  # always built
FAST_SOURCES = ("ec_conv_direct.c", "ec_conv_depthwise.c", "ec_add_fast.c", "ec_winograd.c",
                "ec_dense_fast.c", "ec_norm_fast.c")  # the fast float kernels
INT_SOURCE = "ec_int8.c"  # the integer kernels, built into models with integer layers
INT_FAST_SOURCES = ("ec_qconv_direct.c", "ec_qconv_depthwise.c", "ec_qadd_fast.c",
                    "ec_qconv_vnni.c", "ec_qconv_sdot.c", "ec_qelt_fast.c")  # if chosen
WARNINGS = ("-Wall", "-Wextra")
# Warnings are errors where EDGECNN_WERROR=1 (the test suite sets it: the generated C and the
# runtime must stay warning-free), never in what users build: a newer compiler's new warning
# must not break their build.
WERROR_ENV = "EDGECNN_WERROR"


@dataclass
class Generated:
    """What ``generate`` wrote and the figures of the plan."""

    dir: Path
    name: str  # the C prefix
    target: targets.Target
    options: emit.Options
    arena_bytes: int
    weight_floats: int
    sources: list[str]  # the .c files of the library (relative to dir)
    algos: dict[str, str] = field(default_factory=dict)
    scratch_bytes: int = 0
    ops: list[list[str]] = field(default_factory=list)  # [layer, what it computes, kernel]

    @property
    def library(self) -> Path:
        return self.dir / f"lib{self.name}.so"

    @property
    def predict(self) -> Path:
        return self.dir / "predict"


def _version() -> str:
    from .._version import __version__

    return __version__


def _write(path: Path, data: str | bytes) -> None:
    write_bytes_atomic(path, data.encode() if isinstance(data, str) else data)


def lower_and_plan(g: Graph, target: targets.Target, ref_kernels: bool = False):
    """The pipeline's first three stages: (program, memory plan)."""
    prog = passes.lower(g)
    chosen = kernels.choose_all(prog, target, ref_kernels)
    return prog, plan.make_plan(prog, chosen, target)


def generate(g: Graph, out_dir: str | os.PathLike, target: str | targets.Target = "host",
             name: str | None = None, arena: str = "static", weights: str = "const",
             ref_kernels: bool = False, cc: str | None = None,
             progress: Callable[[str], None] | None = None) -> Generated:
    """Write the C sources of ``g`` for ``target`` into ``out_dir``."""
    t = target if isinstance(target, targets.Target) else targets.get(target, cc)
    opt = emit.Options(emit.c_prefix(g.name, name), arena, weights, t.nb, ref_kernels,
                       portable=t.name == "c99" or bool(t.board))
    say = progress or (lambda s: None)
    say(f"generate: lowering {g.name!r} for target {t.name} (EC_NB={t.nb})")
    # the pipeline: lower → choose kernels → plan memory → pack weights → emit C (→ build_dir)
    prog = passes.lower(g)
    chosen = kernels.choose_all(prog, t, ref_kernels)
    pl = plan.make_plan(prog, chosen, t)
    packed = kernels.pack_all(prog, chosen, t.nb)
    e = emit.emit(g, prog, chosen, pl, packed, opt, _version())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "model.c", e.model_c)
    _write(out / "model.h", e.model_h)
    if weights == "file":
        _write(out / "weights.bin", emit.weights_file_bytes(e))
    sources = ["model.c", *CORE_SOURCES]
    if e.uses_fast:
        sources += FAST_SOURCES
    if e.uses_int:
        sources.append(INT_SOURCE)
        sources += [s for s in INT_FAST_SOURCES if any(k.source == s for k in chosen.values())]
    for h in runtime_headers([e.model_c, *((RUNTIME_DIR / s).read_text() for s in sources[1:])]):
        shutil.copyfile(RUNTIME_DIR / h, out / h)
    for s in sources[1:]:
        shutil.copyfile(RUNTIME_DIR / s, out / s)
    shutil.copyfile(RUNTIME_DIR / PREDICT_MAIN, out / "predict.c")
    ops = [[op.name, "+".join([op.kind, *([op.act] if op.act else [])]), pl.algos[op.name]]
           for op in prog.ops]
    gen = Generated(out, opt.name, t, opt, pl.arena_bytes, len(e.weights), sources,
                    dict(pl.algos), 4 * sum(n for _, n in pl.scratch.values()), ops)
    _write(out / "Makefile", makefile(gen))
    _write(out / "README.md", readme(g, gen))
    say(f"generate: {out / 'model.c'} ({len(prog.ops)} ops, arena {pl.arena_bytes} bytes, "
        f"{4 * len(e.weights)} bytes of weights)")
    return gen


def runtime_headers(sources: list[str]) -> list[str]:
    """The runtime headers the C texts ``sources`` include, directly or through one another."""
    todo, seen = list(sources), set()
    while todo:
        for h in re.findall(r'^#include "(ec_\w+\.h)"', todo.pop(), re.M):
            if h not in seen:
                seen.add(h)
                todo.append((RUNTIME_DIR / h).read_text())
    return sorted(seen)


# ---- flags and commands ---------------------------------------------------------------------

def cflags(t: targets.Target, opt_level: str | None = None,
           warnings: bool = True) -> list[str]:
    # -fno-math-errno: nothing reads errno, and without it sqrtf must keep a scalar call for
    # the case that sets it, so no loop calling it vectorizes (ec_norm_fast.c's LRN)
    flags = [f"-std={t.std}", *t.cflags, "-fno-math-errno", f"-DEC_NB={t.nb}",
             *(f"-D{d}" for d in t.defines)]
    if opt_level:
        flags = [f for f in flags if not f.startswith("-O")] + [opt_level]
    if t.openmp:
        flags += ["-fopenmp", "-DEC_OPENMP"]
    if not warnings:
        return flags
    werror = os.environ.get(WERROR_ENV, "") not in ("", "0")
    return flags + list(WARNINGS) + (["-Werror"] if werror else [])


def _libs(t: targets.Target) -> list[str]:
    return ["-lm"] + (["-fopenmp"] if t.openmp else [])


def makefile(gen: Generated) -> str:
    t = gen.target
    objs = " ".join(s[:-2] + ".o" for s in gen.sources)
    return f"""# Generated by edgecnn {_version()} for target {t.name}: lib{gen.name}.so, predict.
# `make CC=...` picks another compiler; `make STATIC=1` links predict statically.
CC = {t.cc}
CFLAGS = {" ".join(cflags(t, warnings=False) + list(WARNINGS))} -fPIC
LDLIBS = {" ".join(_libs(t))}
OBJS = {objs}
ifeq ($(STATIC),1)
PREDICT_LDFLAGS = -static
endif

all: lib{gen.name}.so predict

lib{gen.name}.so: $(OBJS)
\t$(CC) $(CFLAGS) -shared -o $@ $(OBJS) $(LDLIBS)

predict: predict.o $(OBJS)
\t$(CC) $(CFLAGS) $(PREDICT_LDFLAGS) -o $@ predict.o $(OBJS) $(LDLIBS)

%.o: %.c *.h
\t$(CC) $(CFLAGS) -c -o $@ $<

clean:
\trm -f *.o lib{gen.name}.so predict

.PHONY: all clean
"""


def readme(g: Graph, gen: Generated) -> str:
    p, t = gen.name, gen.target
    h, w, c = g.input_shape
    static = gen.options.arena == "static"
    call = (f"{p}_predict(input, output)" if static else
            f"{p}_predict_with_arena(input, output, arena)  /* arena: {p}_arena_size() bytes */")
    load = (f"{p}_load_weights(\"weights.bin\");  /* once, before predicting */\n    "
            if gen.options.weights == "file" else "")
    return f"""# {g.name}, compiled by edgecnn {_version()} for `{t.name}`

Target: {t.description}. `make` builds `lib{p}.so` and the `predict` program
with `{t.cc}` (`make CC=...` for another compiler).

    ./predict [-t threads] [-n repeats] [-o out.f32] IMAGE

IMAGE: a binary PPM (P6) of exactly {w}x{h} pixels, raw uint8 RGB pixels, or raw float32
preprocessed input ({h}x{w}x{c}, HWC). The top-5 output indices and values are printed.

From C (see model.h): input is {h}x{w}x{c} float32 HWC, preprocessed; output is
{g.num_classes} floats; the activation arena is {gen.arena_bytes} bytes.

    {load}int rc = {call};  /* 0 = success */
"""


def _run(cmd: list[str], cwd: Path) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise EdgecnnError(f"the C compiler failed in {cwd}:\n$ {' '.join(cmd)}\n"
                           f"{(r.stderr or r.stdout).strip()[:4000]}")


def build_dir(gen: Generated, library: bool = True, program: bool = True,
              opt_level: str | None = None, static: bool = False, jobs: int = 2,
              extra_flags: tuple[str, ...] = (),
              progress: Callable[[str], None] | None = None) -> Generated:
    """Compile the generated sources: objects, lib<name>.so, predict.

    ``extra_flags``: e.g. ("-DEC_PROFILE",) for per-op timing (``<name>_profile``)."""
    t = gen.target
    cc = t.require_compiler()
    say = progress or (lambda s: None)
    flags = cflags(t, opt_level) + ["-fPIC", *extra_flags]
    units = gen.sources + (["predict.c"] if program else [])
    say(f"compile: {len(units)} files with {t.cc} {' '.join(flags)}")
    with ThreadPoolExecutor(max(1, jobs)) as ex:
        list(ex.map(lambda s: _run([cc, *flags, "-c", "-o", s[:-2] + ".o", s], gen.dir), units))
    objs = [s[:-2] + ".o" for s in gen.sources]
    if library:
        say(f"link: {gen.library}")
        _run([cc, *flags, "-shared", "-o", gen.library.name, *objs, *_libs(t)], gen.dir)
    if program:
        say(f"link: {gen.predict}")
        _run([cc, *flags, *(["-static"] if static else []), "-o", "predict", "predict.o", *objs,
              *_libs(t)], gen.dir)
    return gen


def compile_to_dir(g: Graph, out_dir: str | os.PathLike, target: str = "host",
                   name: str | None = None, arena: str = "static", weights: str = "const",
                   ref_kernels: bool = False, build: bool = True,
                   progress: Callable[[str], None] | None = None) -> Generated:
    """``edgecnn compile``: generate, then build when the target's compiler is installed."""
    t = targets.get(target)
    if t.board:
        raise EdgecnnError(f"{t.name} builds a bare-metal image, not a library: use "
                           "edgecnn.compiler.mcu.compile_mcu (or `edgecnn compile`)")
    gen = generate(g, out_dir, t, name, arena, weights, ref_kernels, progress=progress)
    if build:
        try:
            t.require_compiler()
        except EdgecnnError as e:
            raise EdgecnnError(f"{e}; the sources are written to {gen.dir}: install it and run "
                               f"`make -C {gen.dir}`, or run make on the device") from None
        build_dir(gen, progress=progress)
    return gen
