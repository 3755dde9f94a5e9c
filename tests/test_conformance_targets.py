"""The whole correctness chain per target: every conformance case, compiled for each target at
the flags that ship (``build.cflags``: -O3, -ffp-contract=fast, -funsafe-math-optimizations on
ARMv7, OpenMP where the target has it, -Werror), runs against the numpy reference.

One static program per (target, kernel set) holds every case (C prefix ``m<i>``): it reads all
inputs from one file and writes all outputs to another, so a target costs one build and one run —
natively where this CPU can run it, under qemu-user for the ARM targets. Where a target's code
cannot run here (an AVX-512 build on an AVX2 CPU) it is still compiled, and the run is skipped.

Besides the per-kind cases, a few small graphs exercise what only appears in combination: a
MobileNet block (1x1 expand + relu6, depthwise stride 1 and 2, ragged channel counts, multiplier
2, residual add), a Winograd-sized 3x3 layer with a fused leaky ReLU, binary convolution (the
portable popcount on c99), the chain and the DAG of the conformance table. Tolerances are the
cases' own (conformance.assert_close); the graphs use the whole-model tolerance of
test_compiler_cc (rtol 1e-4, atol 1e-5 relative to the output's magnitude).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import conformance
from conftest import need
from edgecnn import GraphBuilder
from edgecnn.compiler import build, targets
from edgecnn.core import reference

pytestmark = pytest.mark.cc

TARGETS = ["host", "x86-64", "x86-64-v2", "c99", "pi3", "armv7", "aarch64", "pi4", "pi5"]
RTOL, ATOL = 1e-4, 1e-5

DRIVER = r"""/* Runs every case on the inputs in argv[1]; writes the outputs to argv[2]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
%(includes)s
typedef int (*predict_fn)(const float *, float *, void *);
typedef void (*shape_fn)(int *, int *, int *);
typedef int (*size_fn)(void);
typedef size_t (*arena_fn)(void);
struct model { predict_fn predict; shape_fn shape; size_fn out; arena_fn arena; int batch; };
static const struct model models[] = {
%(table)s
};

int main(int argc, char **argv)
{
    FILE *in, *out;
    size_t i;
    if (argc != 3) return 2;
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (!in || !out) return 2;
    for (i = 0; i < sizeof models / sizeof models[0]; i++) {
        const struct model *m = &models[i];
        int h, w, c, b;
        m->shape(&h, &w, &c);
        for (b = 0; b < m->batch; b++) {
            size_t n = (size_t)h * w * c, k = (size_t)m->out();
            float *x = malloc(n * sizeof *x), *y = malloc(k * sizeof *y);
            void *arena = malloc(m->arena() + 64);
            if (!x || !y || !arena || fread(x, sizeof *x, n, in) != n) return 3;
            memset(y, 0, k * sizeof *y);
            if (m->predict(x, y, arena) != 0) return 4;
            if (fwrite(y, sizeof *y, k, out) != k) return 5;
            free(x);
            free(y);
            free(arena);
        }
    }
    return fclose(out) != 0;
}
"""


# ---- what runs: the conformance cases and a few graphs ----------------------------------------

def mobilenet_block():
    """Expand 1x1 + relu6, depthwise 3x3 s1 (20 channels: ragged for every vector width),
    project, residual add, depthwise s2, depthwise multiplier 2, dense head."""
    b = GraphBuilder("mb_block", (11, 13, 20))
    e = b.add("conv2d", "expand", filters=40, kernel=1, bias=False)
    b.add("batchnorm", "expand.bn")
    b.add("activation", "expand.relu6", function="relu6")
    b.add("conv2d", "dw1", filters=40, kernel=3, padding=1, groups=40)
    b.add("activation", "dw1.relu6", function="relu6")
    p = b.add("conv2d", "project", filters=20, kernel=1)
    b.add("add", "res", inputs=[p, "input"])
    b.add("conv2d", "dw2", filters=20, kernel=3, stride=2, padding=(0, 0, 1, 1), groups=20)
    b.add("activation", "dw2.relu6", function="relu6")
    b.add("conv2d", "dw3", filters=40, kernel=3, padding=1, groups=20)
    b.add("activation", "dw3.leaky", function="leaky_relu", slope=0.1)
    b.add("global_avgpool", "gap")
    b.add("dense", "fc", units=7)
    del e
    return b.build()


def winograd_layer():
    """A 3x3 layer big enough for the compiler to pick Winograd, with a fused leaky ReLU, then a
    5x5 one (F(2x2, 5x5)) with a fused ReLU."""
    b = GraphBuilder("winograd", (24, 20, 16))
    b.add("conv2d", "conv", filters=32, kernel=3, padding=1, bias=False)
    b.add("batchnorm", "bn")
    b.add("activation", "leaky", function="leaky_relu", slope=0.1)
    b.add("maxpool", "pool", kernel=2)
    b.add("conv2d", "conv5", filters=20, kernel=5, padding=2)
    b.add("activation", "relu", function="relu")
    return b.build()


def binary_model():
    """ELL-style binary 3x3 convolutions between real ones."""
    b = GraphBuilder("binary", (10, 10, 3))
    b.add("conv2d", filters=16, kernel=3, padding=1)
    b.add("activation", function="relu")
    b.add("binary_conv2d", filters=24)
    b.add("scale_bias")
    b.add("activation", function="leaky_relu", slope=0.1)
    b.add("binary_conv2d", filters=20, stride=2)
    b.add("global_avgpool")
    return b.build()


GRAPHS = {"chain": conformance.chain_graph, "dag": conformance.dag_graph,
          "mobilenet_block": mobilenet_block, "winograd": winograd_layer, "binary": binary_model}


def programs():
    """[(id, graph, input batch, case or None)]: every conformance case, then the graphs."""
    out = []
    for case in conformance.CASES:
        g, x = conformance.build(case)
        out.append((case.id, g, x, case))
    for i, (name, make) in enumerate(GRAPHS.items()):
        g = make()
        rng = np.random.default_rng(100 + i)
        g.weights = conformance.random_weights(g, rng)
        x = rng.standard_normal((2, *g.input_shape)).astype(np.float32)
        out.append((name, g, x, None))
    return out


PROGRAMS = programs()


# ---- one build and one run per (target, kernel set) --------------------------------------------

def _flags_key(t: targets.Target) -> str:
    return json.dumps([t.cc, build.cflags(t)])


def _require(t: targets.Target) -> None:
    need("cross" if t.qemu else "cc", t.compiler_path() is not None,
         f"{t.cc} not installed (apt install {t.debian_package})")
    if t.qemu:
        need("cross", shutil.which(t.qemu) is not None,
             f"{t.qemu} not installed (apt install qemu-user)")


def build_and_run(t: targets.Target, ref: bool, root: Path,
                  programs: list | None = None) -> tuple[list, dict]:
    """Generate every program for ``t``, build one static executable, run it (when this
    machine can, natively or under qemu); returns (outputs or None, {id: algorithms}).
    ``programs`` defaults to :data:`PROGRAMS` (the same tuples: id, graph, inputs, case)."""
    progs = PROGRAMS if programs is None else programs
    gens = []
    for i, (_, g, _, _) in enumerate(progs):
        gens.append(build.generate(g, root / f"m{i}", t, name=f"m{i}", arena="caller",
                                   ref_kernels=ref))
    runtime = list(build.CORE_SOURCES) + ([] if ref else list(build.FAST_SOURCES))
    runtime += sorted({s for gen in gens for s in gen.sources[1:]} - set(runtime))
    (root / "rt").mkdir()
    includes = "\n".join(f'#include "m{i}/model.h"' for i in range(len(gens)))
    table = "\n".join(f"    {{m{i}_predict_with_arena, m{i}_input_shape, m{i}_output_size, "
                      f"m{i}_arena_size, {len(x)}}}," for i, (_, _, x, _) in enumerate(progs))
    (root / "driver.c").write_text(DRIVER % {"includes": includes, "table": table})
    flags = build.cflags(t) + ["-I", str(build.RUNTIME_DIR)]
    jobs = [(root / "rt", build.RUNTIME_DIR / s) for s in runtime]
    jobs += [(gen.dir, gen.dir / "model.c") for gen in gens] + [(root, root / "driver.c")]

    def cc(job):
        cwd, src = job
        obj = cwd / (src.stem + ".o")
        r = subprocess.run([t.cc, *flags, "-c", str(src), "-o", str(obj)], cwd=cwd,
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{t.name}: {src.name}:\n{r.stderr[:3000]}"
        return str(obj)

    with ThreadPoolExecutor(2) as ex:
        objs = list(ex.map(cc, jobs))
    exe = root / "conformance"
    link = [t.cc, *flags, *(["-static"] if t.qemu else []), "-o", str(exe), *objs, "-lm"]
    r = subprocess.run(link, capture_output=True, text=True)
    assert r.returncode == 0, f"{t.name}: link:\n{r.stderr[:3000]}"
    algos = {pid: gen.algos for (pid, *_), gen in zip(progs, gens, strict=True)}
    if not t.qemu and not targets.loadable(t):
        return None, algos
    np.concatenate([x.ravel() for _, _, x, _ in progs]).astype(np.float32).tofile(
        root / "in.f32")
    cmd = [t.qemu, str(exe)] if t.qemu else [str(exe)]
    r = subprocess.run([*cmd, "in.f32", "out.f32"], cwd=root, capture_output=True, text=True,
                       timeout=600, env={"OMP_NUM_THREADS": "2"})
    assert r.returncode == 0, f"{t.name}: the program failed ({r.returncode}): {r.stderr}"
    y = np.fromfile(root / "out.f32", np.float32)
    outs, at = [], 0
    for _, g, x, _ in progs:
        n = len(x) * int(np.prod(g.output_shape))
        outs.append(y[at:at + n].reshape(len(x), *g.output_shape))
        at += n
    assert at == y.size, f"{t.name}: {y.size} output values, expected {at}"
    return outs, algos


def cached_runs(tmp_path_factory, prefix: str, programs: list, ref: bool = False):
    """name -> build_and_run of ``programs`` for that target, once per distinct compiler and
    flags (targets that build alike share a run)."""
    done: dict = {}

    def get(name: str):
        t = targets.get(name)
        _require(t)
        key = _flags_key(t)
        if key not in done:
            done[key] = build_and_run(t, ref, tmp_path_factory.mktemp(f"{prefix}-{name}"),
                                      programs)
        return done[key]
    return get


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(target, ref) -> (outputs, algorithms), built once per distinct compiler + flags."""
    done: dict = {}

    def get(name: str, ref: bool):
        t = targets.get(name)
        _require(t)
        key = (_flags_key(t), ref)
        if key not in done:
            root = tmp_path_factory.mktemp(f"conf-{name}-{'ref' if ref else 'fast'}")
            done[key] = build_and_run(t, ref, root)
        return done[key]
    return get


@pytest.fixture(scope="module")
def expected():
    return [reference.run(g, x) for _, g, x, _ in PROGRAMS]


@pytest.mark.parametrize("kernels", ["fast", "ref"])
@pytest.mark.parametrize("target", TARGETS)
def test_every_case_on_target(target, kernels, runs, expected):
    outs, algos = runs(target, kernels == "ref")
    if outs is None:
        pytest.skip(f"compiled; not run: this CPU cannot run {target} code")
    worst = 0.0
    for (pid, _, _, case), got, want in zip(PROGRAMS, outs, expected, strict=True):
        if case is not None:
            worst = max(worst, conformance.assert_close(got, want, case, f"{target} {kernels}"))
        else:
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * scale,
                                       err_msg=f"{pid} on {target} ({kernels} kernels)")
            worst = max(worst, conformance.max_error(got, want))
    print(f"{target} {kernels}: {len(PROGRAMS)} programs, max abs error {worst:.3g}")


@pytest.mark.parametrize("target", ["host", "x86-64", "pi3", "aarch64", "c99"])
def test_fast_algorithms_are_exercised(target, runs):
    """The graphs reach the kernels they were written for: Winograd, depthwise, direct."""
    _, algos = runs(target, False)
    used = {a for prog in algos.values() for a in prog.values()}
    assert {"winograd", "depthwise", "direct"} <= used, used
    assert algos["winograd"]["conv"] == "winograd"
    assert algos["winograd"]["conv5"] == "winograd"
