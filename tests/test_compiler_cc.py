"""Compiled C against the numpy reference: every conformance case (reference C kernels and the
fast path), whole models, the predict program, gcc and clang with -Wall -Wextra -Werror, and the
portable c99 build (caller arena, no heap)."""

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
from edgecnn.compiler.api import CompiledModel
from edgecnn.compiler.api import compile as ec_compile
from edgecnn.core import reference
from test_compiler import _chain, _dag, _random

pytestmark = pytest.mark.cc


@pytest.fixture(autouse=True)
def _needs_cc():
    need("cc", shutil.which("cc") is not None, "no C compiler (cc) on PATH (apt install gcc)")


# Compiled vs reference: float32 sums in another order (and FMA contraction) differ by a few
# ulps of the output's magnitude; the conformance cases state their own tolerances.
RTOL, ATOL = 1e-4, 1e-5


# ---- the conformance table, every case in one library per kernel set ------------------------

def _build_bundle(root: Path, ref_only: bool) -> tuple[Path, list]:
    """Generate every conformance case (C prefix case<i>) and link them into one library."""
    t = targets.get("host")
    gens = []
    for i, case in enumerate(conformance.CASES):
        g, _ = conformance.build(case)
        gens.append(build.generate(g, root / f"case{i}", t, name=f"case{i}", arena="caller",
                                   ref_kernels=ref_only))
    flags = build.cflags(t, "-O1") + ["-fPIC"]
    runtime = list(build.CORE_SOURCES) + ([] if ref_only else
                              [s for s in build.FAST_SOURCES if (build.RUNTIME_DIR / s).is_file()])
    jobs = [(root / "rt", build.RUNTIME_DIR / s, f"rt_{s[:-2]}.o") for s in runtime]
    jobs += [(gen.dir, gen.dir / "model.c", "model.o") for gen in gens]
    (root / "rt").mkdir()

    def cc(job):
        cwd, src, obj = job
        subprocess.run([t.cc, *flags, "-I", str(build.RUNTIME_DIR), "-c", str(src), "-o", obj],
                       cwd=cwd, check=True, capture_output=True)
        return str(cwd / obj)

    with ThreadPoolExecutor(2) as ex:
        objs = list(ex.map(cc, jobs))
    lib = root / "libconformance.so"
    subprocess.run([t.cc, *flags, "-shared", "-o", str(lib), *objs, "-lm", "-fopenmp"],
                   check=True, capture_output=True)
    return lib, gens


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    built = {}

    def get(kernels: str):
        if kernels not in built:
            built[kernels] = _build_bundle(tmp_path_factory.mktemp(f"conf-{kernels}"),
                                           kernels == "ref")
        return built[kernels]
    return get


@pytest.mark.parametrize("kernels", ["ref", "fast"])
@pytest.mark.parametrize("case", conformance.CASES, ids=conformance.IDS)
def test_conformance(case, kernels, bundles):
    lib, gens = bundles(kernels)
    i = conformance.CASES.index(case)
    g, x = conformance.build(case)
    m = CompiledModel(g, gens[i], threads=1, library=lib)
    expected = reference.run(g, x)
    got = m.predict(x).reshape(expected.shape)
    conformance.assert_close(got, expected, case, f"compiled C ({kernels} kernels)")


# ---- whole models ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _inputs(g, n=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *g.input_shape)).astype(np.float32)


@pytest.mark.parametrize("ref_kernels", [True, False], ids=["ref", "fast"])
def test_dag_model_matches_reference(ref_kernels, cache):
    g = _dag()
    x = _inputs(g)
    m = ec_compile(g, threads=1, ref_kernels=ref_kernels, opt_level="-O1", cache_dir=cache)
    np.testing.assert_allclose(m.predict(x), reference.predict(g, x), rtol=RTOL, atol=ATOL)
    assert m.arena_bytes > 0 and m.metadata["name"] == "dag"


@pytest.mark.parametrize("ref_kernels", [True, False], ids=["ref", "fast"])
def test_readers_of_bordered_tensors(ref_kernels, cache):
    """A tensor read by a padded conv (so it has a border) and by dense, flatten, pool and an
    in-place activation: those readers see the interior only (dense gathers it)."""
    b = GraphBuilder("bordered", (7, 6, 4))
    a = b.add("conv2d", filters=5, kernel=3, padding=1)
    d = b.add("dense", units=6, inputs=a)
    c = b.add("conv2d", filters=3, kernel=3, padding=2, dilation=2, inputs=a)
    p = b.add("maxpool", kernel=3, stride=2, padding=1, inputs=a)
    b.add("activation", function="sigmoid", inputs=c)
    f1 = b.add("flatten")
    f2 = b.add("flatten", inputs=p)
    b.add("concat", inputs=[d, f1, f2])
    g = _random(b.build(), 11)
    x = _inputs(g, 2)
    m = ec_compile(g, threads=1, ref_kernels=ref_kernels, opt_level="-O1", cache_dir=cache)
    np.testing.assert_allclose(m.predict(x), reference.predict(g, x), rtol=RTOL, atol=ATOL)


def _binary_net():
    b = GraphBuilder("xnor", (10, 9, 70))  # 70 channels: two 64-bit words, one partial
    b.add("binary_conv2d", filters=12)
    b.add("batchnorm")
    b.add("activation", function="leaky_relu", slope=0.1)
    b.add("binary_conv2d", filters=5, stride=2, padding=(0, 0, 1, 1))
    b.add("scale_bias")
    b.add("activation", function="relu")
    b.add("global_avgpool")
    return _random(b.build(), 13)


@pytest.mark.parametrize("ref_kernels", [True, False], ids=["ref", "fast"])
def test_binary_model_folded_and_packed(ref_kernels, cache):
    g = _binary_net()
    x = _inputs(g, 2)
    m = ec_compile(g, threads=2, ref_kernels=ref_kernels, opt_level="-O1", cache_dir=cache)
    assert [op[1] for op in m.ops][:2] == ["binary_conv2d+leaky_relu", "binary_conv2d+relu"]
    assert m.algorithms["binary_conv2d1"] == ("ref" if ref_kernels else "bits")
    np.testing.assert_allclose(m.predict(x), reference.predict(g, x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("act", ["relu6", "prelu", None])
def test_classifier_conv_on_a_pixel_runs_as_dense(act, cache):
    """A 1x1 convolution of a 1x1 map (MobileNets' classifier) after a global pool, read from a
    bordered buffer: the dense kernel serves it (not with PReLU, which the dense kernel cannot
    apply), with the fused activation, at 2 threads; 37 and 70 outputs leave ragged blocks."""
    b = GraphBuilder("head", (3, 3, 24))
    b.add("conv2d", filters=40, kernel=3, padding=1)
    b.add("global_avgpool")
    b.add("conv2d", name="logits", filters=70, kernel=1)
    if act:
        b.add("activation", function=act)
    b.add("conv2d", name="logits2", filters=37, kernel=1)
    g = _random(b.build(), 14)
    x = _inputs(g, 2)
    m = ec_compile(g, threads=2, opt_level="-O1", cache_dir=cache)
    assert m.algorithms["logits"] == ("direct" if act == "prelu" else "conv_as_dense")
    assert m.algorithms["logits2"] == "conv_as_dense"
    np.testing.assert_allclose(m.predict(x), reference.predict(g, x), rtol=RTOL, atol=ATOL)


def test_layer_names_that_sanitize_alike(cache):
    """'a.b' and 'a_b' (and '-'): distinct C variables."""
    b = GraphBuilder("names", (5, 5, 3))
    b.add("conv2d", name="a.b", filters=4, kernel=3, padding=1)
    b.add("conv2d", name="a_b", filters=4, kernel=1)
    b.add("add", name="a-b", inputs=["a.b", "a_b"])
    g = _random(b.build(), 12)
    x = _inputs(g, 1)
    m = ec_compile(g, threads=1, opt_level="-O1", cache_dir=cache)
    np.testing.assert_allclose(m.predict(x), reference.predict(g, x), rtol=RTOL, atol=ATOL)


def test_winograd_sized_layers_match_reference(cache):
    """Maps large enough for the kernel choice to pick Winograd (and odd sizes, asymmetric
    padding, fused prelu) against the reference."""
    b = GraphBuilder("wino", (33, 30, 8))
    b.add("conv2d", filters=20, kernel=3, padding=1)
    b.add("activation", function="prelu")
    b.add("conv2d", filters=16, kernel=3, padding=(1, 2, 0, 1))
    b.add("batchnorm")
    b.add("activation", function="relu6")
    b.add("conv2d", filters=24, kernel=5, padding=2)  # F(2x2, 5x5)
    b.add("activation", function="relu")
    b.add("global_avgpool")
    g = _random(b.build(), 9)
    x = _inputs(g, 2)
    m = ec_compile(g, threads=2, opt_level="-O1", cache_dir=cache)
    np.testing.assert_allclose(m.predict(x), reference.predict(g, x), rtol=RTOL, atol=ATOL)
    if (build.RUNTIME_DIR / "ec_winograd.c").is_file():
        assert "winograd" in m.algorithms.values(), m.algorithms


def test_compile_is_cached_and_checks_input(cache):
    g = _chain()
    m1 = ec_compile(g, opt_level="-O1", cache_dir=cache)
    m2 = ec_compile(g.copy(), opt_level="-O1", cache_dir=cache)
    assert m1.dir == m2.dir
    x = _inputs(g, 2)
    np.testing.assert_allclose(m2.predict(x[0]), reference.predict(g, x[:1]), rtol=RTOL,
                               atol=ATOL)
    from edgecnn.errors import EdgecnnError

    with pytest.raises(EdgecnnError, match=r"shape \(N, 8, 8, 3\)"):
        m1.predict(x[:, :4])
    # integer input is taken as the reference takes it (one input check for every backend)
    x8 = np.random.default_rng(4).integers(0, 256, x.shape, dtype=np.uint8)
    np.testing.assert_array_equal(m1.predict(x8), m1.predict(x8.astype(np.float32)))
    with pytest.raises(EdgecnnError, match="compiled model 'chain' takes a numeric input, got "
                                           "dtype bool"):
        m1.predict(np.zeros(x.shape, bool))
    with pytest.raises(EdgecnnError, match="cannot run on this machine"):
        ec_compile(g, target="pi3", cache_dir=cache)
    # per-op timing (the bench command's --profile): one row per op, in execution order
    rows = m1.profile(x, repeats=2)
    assert [r["layer"] for r in rows] == [op[0] for op in m1.ops]
    assert rows[0]["op"] == "conv2d+leaky_relu" and all(r["ms"] >= 0 for r in rows)


ZOO_SMALL = ["d_I128x128x3CMCMCMCMCMCMC1AS", "v_I64x64x3CCMCCMCCCMCCCMCCCMF2048S"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_SMALL)
def test_zoo_models_same_top1(name, cache):
    from edgecnn import zoo

    g = conformance.logits(_random(zoo.get(name), 1))
    x = _inputs(g, 3, seed=2)
    m = ec_compile(g, threads=1, cache_dir=cache)
    got, want = m.predict(x), reference.predict(g, x)
    assert (got.argmax(1) == want.argmax(1)).all()
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * scale)


@pytest.mark.slow
def test_seed_model_full_size(cache):
    from edgecnn import zoo

    g = conformance.logits(_random(zoo.get("dr_I256x256x3CMCMCMCMCMCMCMC1AS"), 4))
    x = _inputs(g, 2, seed=5)
    m = ec_compile(g, cache_dir=cache)
    got, want = m.predict(x), reference.predict(g, x)
    assert (got.argmax(1) == want.argmax(1)).all()
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * scale)


# ---- compilers, warnings, the portable build ----------------------------------------------------

@pytest.mark.parametrize("cc, target", [("gcc", "host"), ("clang", "host"), ("gcc", "c99"),
                                        ("clang", "c99"), ("gcc", "x86-64"),
                                        ("clang", "x86-64-v2")])
def test_builds_warning_free_and_agrees(cc, target, tmp_path):
    """gcc and clang, -std=c99 -Wall -Wextra -Werror (build.WARNINGS, EDGECNN_WERROR), every
    source."""
    assert "-Werror" in build.cflags(targets.get(target, cc))
    need("clang" if cc == "clang" else "cc", shutil.which(cc) is not None,
         f"{cc} is not installed (apt install {cc})")
    if not targets.loadable(targets.get(target, cc)):
        pytest.skip(f"this CPU cannot run {target} code")
    g = _dag()
    arena = "caller" if target == "c99" else "static"
    gen = build.generate(g, tmp_path, targets.get(target, cc), arena=arena)
    build.build_dir(gen, opt_level="-O1")
    x = _inputs(g, 2)
    m = CompiledModel(g, gen, threads=1)
    want = reference.predict(g, x)
    np.testing.assert_allclose(m.predict(x), want, rtol=RTOL, atol=ATOL)
    if gen.target.openmp:  # the OpenMP split gives the same result
        m.set_threads(2)
        np.testing.assert_allclose(m.predict(x), want, rtol=RTOL, atol=ATOL)


# what the portable library may call: string.h copies and expf from libm
C99_ALLOWED = {"memcpy", "memset", "expf"}


def test_c99_build_uses_no_heap_and_no_threads(tmp_path):
    """The portable library compiles freestanding and calls nothing but memcpy/memset/expf."""
    g = _dag()
    gen = build.generate(g, tmp_path, "c99", arena="caller")
    flags = build.cflags(gen.target)
    assert "-fopenmp" not in flags
    for src in gen.sources:
        subprocess.run([gen.target.cc, *flags, "-ffreestanding", "-c", src, "-o",
                        src[:-2] + ".o"], cwd=tmp_path, check=True)
    undefined, defined = set(), set()
    for src in gen.sources:
        for flag, into in (("-u", undefined), ("--defined-only", defined)):
            out = subprocess.run(["nm", flag, src[:-2] + ".o"], cwd=tmp_path,
                                 capture_output=True, text=True, check=True).stdout
            into |= {line.split()[-1] for line in out.splitlines() if line.strip()}
    external = undefined - defined
    assert external <= C99_ALLOWED, external - C99_ALLOWED


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_c99_reference_build_is_pedantic_c99(cc, tmp_path):
    """With --ref-kernels the c99 output is plain ISO C99 (no vector extensions; weights as a
    number list, not a string longer than C99 promises): -std=c99 -pedantic -Werror."""
    need("clang" if cc == "clang" else "cc", shutil.which(cc) is not None,
         f"{cc} is not installed (apt install {cc})")
    gen = build.generate(_dag(), tmp_path, targets.get("c99", cc), arena="caller",
                         ref_kernels=True)
    assert "ec_conv_direct.c" not in gen.sources
    for src in gen.sources:
        subprocess.run([cc, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O1",
                        "-DEC_PORTABLE", "-c", src, "-o", src[:-2] + ".o"],
                       cwd=tmp_path, check=True)


# ---- the predict program and the command --------------------------------------------------------

def _ppm(path: Path, img: np.ndarray) -> None:
    h, w, _ = img.shape
    path.write_bytes(f"P6\n# test image\n{w} {h}\n255\n".encode() + img.tobytes())


def _preprocess(g, img: np.ndarray) -> np.ndarray:
    pp = g.preprocessing
    lo, hi = pp.pixel_range
    x = img.astype(np.float32) / 255 * (hi - lo) + lo
    if pp.channel_order == "BGR":
        x = x[..., ::-1]
    return ((x - np.float32(pp.mean)) / np.float32(pp.std)).astype(np.float32)


@pytest.mark.parametrize("weights, arena", [("const", "static"), ("file", "caller")])
def test_predict_program_on_ppm(weights, arena, tmp_path, capsys):
    from edgecnn.cli.main import main
    from edgecnn.core.graph import Preprocessing

    b = GraphBuilder("ppm-net", (12, 10, 3),
                     preprocessing=Preprocessing("BGR", (-1.0, 1.0), (0.1, 0.2, 0.3),
                                                 (0.5, 0.6, 0.7)))
    b.add("conv2d", filters=6, kernel=3, padding=1)
    b.add("activation", function="relu")
    b.add("global_avgpool")
    b.add("dense", units=20)
    b.add("softmax")
    g = _random(b.build(), 7)
    from edgecnn.formats import modelfile

    model = modelfile.save(g, tmp_path / "m.safetensors")
    out = tmp_path / "out"
    rc = main(["compile", str(model), "--target", "host", "-o", str(out), "--weights", weights,
               "--arena", arena])
    printed = capsys.readouterr().out
    assert rc == 0
    for step in ("generate:", "compile:", "link:", "arena:"):
        assert step in printed
    img = np.random.default_rng(3).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    _ppm(tmp_path / "x.ppm", img)
    r = subprocess.run(["./predict", str(tmp_path / "x.ppm")], cwd=out, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    want = reference.predict(g, _preprocess(g, img))[0]
    rows = [line.split() for line in r.stdout.splitlines()]
    assert len(rows) == 5
    idx = [int(i) for i, _ in rows]
    assert idx[0] == int(want.argmax())
    np.testing.assert_allclose([float(p) for _, p in rows], want[idx], atol=2e-6)
    assert sorted(want[idx], reverse=True) == list(want[idx])
    # the wrong size is refused with the reason, nothing is resized
    _ppm(tmp_path / "big.ppm", np.zeros((20, 20, 3), np.uint8))
    r = subprocess.run(["./predict", str(tmp_path / "big.ppm")], cwd=out, capture_output=True,
                       text=True)
    assert r.returncode == 2 and "resize it first" in r.stderr


# ---- the planner's Winograd scratch (packing.winograd_scratch_floats) against the kernel's -------

WINO_SHAPES = [(16, 128, 128, 32), (32, 64, 64, 64), (64, 32, 32, 128), (8, 9, 13, 5),
               (256, 16, 16, 512), (3, 4, 4, 1000), (96, 27, 27, 256), (256, 13, 13, 384),
               (384, 13, 13, 384)]  # (cin, out h, out w, cout)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("target", ["host", "c99"])
def test_winograd_scratch_bound_covers_the_kernel(target, kernel, tmp_path):
    from edgecnn.compiler import packing

    t = targets.get(target)
    k, pad = kernel, kernel // 2
    prog = ["#include <stdio.h>", '#include "ec_conv.h"', "int main(void) {",
            f"    ec_conv_params p = {{{k}, {k}, 1, 1, 1, 1, {pad}, {pad}, {pad}, {pad}, 1, 0, "
            "0.0f, 0};",
            "    ec_tensor a, b;"]
    for cin, h, w, cout in WINO_SHAPES:
        prog += [f"    a.h = {h}; a.w = {w}; a.c = {cin}; b.h = {h}; b.w = {w}; b.c = {cout};",
                 '    printf("%lu\\n", (unsigned long)ec_winograd_scratch_floats(&p, &a, &b));']
    (tmp_path / "probe.c").write_text("\n".join(prog + ["    return 0;", "}", ""]))
    flags = build.cflags(t, warnings=False)
    subprocess.run([t.cc, *flags, "-I", str(build.RUNTIME_DIR), "probe.c",
                    str(build.RUNTIME_DIR / "ec_winograd.c"), "-o", "probe", "-lm"],
                   cwd=tmp_path, check=True)
    c_counts = [int(v) for v in subprocess.run(["./probe"], cwd=tmp_path, capture_output=True,
                                               text=True, check=True).stdout.split()]
    for (cin, h, w, cout), c_count in zip(WINO_SHAPES, c_counts, strict=True):
        py = packing.winograd_scratch_floats((h, w, cin), (h, w, cout), t.nb, t.openmp, kernel)
        assert py == c_count, (cin, h, w, cout)


def test_generated_makefile_builds(tmp_path):
    """The Makefile written beside the sources builds the same library and program."""
    need("cc", shutil.which("make") is not None, "make is not installed (apt install make)")
    g = _chain()
    build.compile_to_dir(g, tmp_path, "c99", build=False)
    assert not (tmp_path / "predict").exists()
    cflags = next(line for line in (tmp_path / "Makefile").read_text().splitlines()
                  if line.startswith("CFLAGS ="))
    # users keep the warnings but not -Werror: a newer compiler must not break their build
    assert "-Wall" in cflags.split() and "-Werror" not in cflags.split(), cflags
    subprocess.run(["make", "-j2"], cwd=tmp_path, check=True, capture_output=True)
    x = _inputs(g, 1)
    x.tofile(tmp_path / "x.f32")
    subprocess.run(["./predict", "-o", "y.f32", "x.f32"], cwd=tmp_path, check=True,
                   capture_output=True)
    np.testing.assert_allclose(np.fromfile(tmp_path / "y.f32", np.float32),
                               reference.predict(g, x)[0], rtol=RTOL, atol=ATOL)
    assert (tmp_path / "libchain.so").is_file() and (tmp_path / "README.md").is_file()
