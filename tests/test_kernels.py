"""The fast float C kernels (runtime/ec_conv.h, ec_dense.h, ec_eltwise.h) against the numpy
layer references.

Every kernel is built into a small shared library (gcc for EC_NB = 16, 8 and 4, clang, a
plain-C99 build without vector extensions and an OpenMP build) and called through ctypes on
random data over a table of shapes. Tolerances, relative to the largest |output| of the case:
direct, depthwise and dense 2e-5 (float32 sums in another order; measured 1e-7 to 2e-6);
Winograd F(4x4, 3x3) and F(2x2, 5x5) 5e-5 (their transforms scale by up to 8 and 1/24:
measured 1e-6 to 1e-5, about 5x direct's error, on these cases and on the seed model's layers
at full size; F(2x2, 5x5) 1e-6 to 6e-6, on AlexNet's conv2 5e-6).
The cross test runs tests/c/kernels_check.c, a C driver with its own naive reference, under
qemu-arm / qemu-aarch64 to check the NEON builds.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import need
from edgecnn.compiler import packing, targets
from edgecnn.compiler.kernels import conv_algorithm
from edgecnn.layers.base import get_kind

RUNTIME = Path(__file__).resolve().parents[1] / "src" / "edgecnn" / "compiler" / "runtime"
DRIVER = Path(__file__).resolve().parent / "c" / "kernels_check.c"
SOURCES = ("ec_conv_direct.c", "ec_conv_depthwise.c", "ec_add_fast.c", "ec_winograd.c",
           "ec_dense_fast.c")
WARN = ["-Wall", "-Wextra", "-Werror"]
TOL = 2e-5
TOL_WINOGRAD = 5e-5

ACTS = {"none": 0, "relu": 1, "leaky_relu": 2, "relu6": 3, "sigmoid": 4, "tanh": 5, "prelu": 6}

pytestmark = pytest.mark.cc


# ---- ctypes view of ec_types.h ------------------------------------------------------------

class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_float)), ("h", ctypes.c_int),
                ("w", ctypes.c_int), ("c", ctypes.c_int), ("row_stride", ctypes.c_int),
                ("pad_h", ctypes.c_int), ("pad_w", ctypes.c_int)]


class Params(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in
                ("kh", "kw", "sh", "sw", "dh", "dw", "pad_t", "pad_l", "pad_b", "pad_r",
                 "groups", "act")] + [("act_alpha", ctypes.c_float),
                                      ("act_slope", ctypes.POINTER(ctypes.c_float))]


def fptr(a: np.ndarray | None, offset: int = 0):
    if a is None:
        return None
    assert a.dtype == np.float32 and a.flags.c_contiguous
    return ctypes.cast(a.ctypes.data + 4 * offset, ctypes.POINTER(ctypes.c_float))


class Buffer:
    """An (h + 2 ph) x (w + 2 pw) x c buffer holding an h x w x c tensor; border = `fill`."""

    def __init__(self, h, w, c, ph=0, pw=0, fill=0.0):
        self.a = np.full((h + 2 * ph, w + 2 * pw, c), fill, np.float32)
        self.ph, self.pw = ph, pw
        self.view = Tensor(fptr(self.a, (ph * (w + 2 * pw) + pw) * c), h, w, c,
                           (w + 2 * pw) * c, ph, pw)

    @property
    def interior(self) -> np.ndarray:
        h, w = self.view.h, self.view.w
        return self.a[self.ph:self.ph + h, self.pw:self.pw + w]


class Kernels:
    """The kernels of one build, called like the generated code calls them."""

    def __init__(self, path: Path, nb: int, openmp: bool = False):
        self.lib = ctypes.CDLL(str(path))
        self.nb, self.openmp = nb, openmp
        self.lib.ec_winograd_scratch_floats.restype = ctypes.c_size_t

    @staticmethod
    def params(a: dict, act: str, alpha: float, slope: np.ndarray | None) -> Params:
        t, l, b, r = a["padding"]
        return Params(*a["kernel"], *a["stride"], *a["dilation"], t, l, b, r, a["groups"],
                      ACTS[act], alpha, fptr(slope))

    def conv(self, algo, a, x, w, bias, act="none", alpha=0.1, slope=None, out_border=(0, 0),
             threads=None):
        """Run one conv on x (h, w, c); return the output buffer (border included)."""
        kh_pad = max(a["padding"][0], a["padding"][2])
        kw_pad = max(a["padding"][1], a["padding"][3])
        h, wd, c = x.shape
        src = Buffer(h, wd, c, kh_pad, kw_pad)
        src.interior[...] = x
        oh, ow, co = get_kind("conv2d").output_shape(a, [x.shape])
        dst = Buffer(oh, ow, co, *out_border, fill=7.0)
        p = self.params(a, act, alpha, slope)
        args = [ctypes.byref(p), ctypes.byref(src.view), ctypes.byref(dst.view)]
        if algo == "direct":
            wp = packing.pack_direct(w, self.nb)
            self.lib.ec_conv2d_direct(*args, fptr(wp), fptr(bias))
        elif algo == "direct_f16":
            wp = packing.pack_direct(w, self.nb, "float16")
            self.lib.ec_conv2d_direct_f16(*args, wp.ctypes.data_as(ctypes.c_void_p), fptr(bias))
        elif algo == "depthwise":
            wp = packing.pack_depthwise(w, self.nb)
            self.lib.ec_conv2d_depthwise(*args, fptr(wp), fptr(bias))
        else:
            k = a["kernel"][0]
            wp = packing.pack_winograd(w, self.nb)
            n = self.lib.ec_winograd_scratch_floats(*args)
            assert n == packing.winograd_scratch_floats(x.shape, (oh, ow, co), self.nb,
                                                        self.openmp, k)
            scratch = np.full(n + 16, np.nan, np.float32)  # NaN: reads of unwritten scratch show
            fn = getattr(self.lib, f"ec_conv{k}x{k}_winograd")
            fn(*args, fptr(wp), fptr(bias), fptr(scratch))
            assert np.isnan(scratch[n:]).all(), "wrote past the scratch size it asked for"
        return dst

    def dense(self, x, w, bias, act="none", alpha=0.1, dtype="float32"):
        units, n_in = w.shape
        wp = packing.pack_dense(w, self.nb, dtype)
        y = np.full(units + 8, 7.0, np.float32)
        fn = self.lib.ec_dense_fast_f16 if dtype == "float16" else self.lib.ec_dense_fast
        fn(n_in, units, fptr(x), fptr(y), wp.ctypes.data_as(ctypes.c_void_p), fptr(bias),
           ACTS[act], ctypes.c_float(alpha))
        assert (y[units:] == 7.0).all(), "wrote past the output"
        return y[:units]


def x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def width_target(nb: int) -> targets.Target:
    """The x86-64 level whose widest float vector has ``nb`` lanes, at the shipped -O3 flags."""
    march, needs = targets.X86_LEVELS[nb]
    return replace(targets.TARGETS["x86-64"], name=f"x86-64 EC_NB={nb}",
                   cflags=(march, "-O3", "-ffp-contract=fast"), nb=nb, needs=needs, openmp=False)


# Tile settings of the ARM builds (ec_vec_fast.h, ec_conv_direct.c, ec_conv_depthwise.c),
# compiled with EC_NB=4 on x86 too, so that their tile loops run natively here, not only in qemu.
ARM_TILES = {"aarch64": ["-DEC_TW=8", "-DEC_DW_TW=16"], "armv7": ["-DEC_TW=4", "-DEC_DW_TW=8"]}


def builds() -> dict[str, tuple[str, targets.Target, list[str]]]:
    """id -> (compiler, target, extra flags). Every build uses build.cflags (the flags that ship:
    -std=c99, -O3, -ffp-contract=fast, warnings as errors); the host build follows this CPU (or
    EDGECNN_HOST_ISA), the others name their ISA explicitly, so that every vector width is
    compiled on every x86 machine and run where the CPU can."""
    host = replace(targets.get("host"), openmp=False)
    out = {"host-gcc": ("gcc", host, []),
           "host-clang": ("clang", host, []),
           "host-openmp": ("gcc", replace(host, openmp=True), []),
           "c99-scalar": ("gcc", targets.get("c99"), []),
           "c99-clang": ("clang", targets.get("c99"), [])}
    if x86():
        for nb in (16, 8, 4):
            out[f"gcc-nb{nb}"] = ("gcc", width_target(nb), [])
        out["clang-nb16"] = ("clang", width_target(16), [])
        for arm, flags in ARM_TILES.items():
            out[f"gcc-{arm}-tiles"] = ("gcc", width_target(4), flags)
    return out


BUILDS = builds()


def build(tmp: Path, cc: str, t: targets.Target, extra: list[str]) -> Path:
    need("clang" if cc == "clang" else "cc", shutil.which(cc) is not None,
         f"{cc} not found (apt install {cc})")
    out = tmp / f"kernels_{cc}_{t.nb}_{seed_of((t, extra))}.so"
    cmd = [cc, *build_flags(t), "-shared", "-fPIC", *extra,
           *[str(RUNTIME / s) for s in SOURCES], "-o", str(out), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"$ {' '.join(cmd)}\n{r.stderr}"
    return out


def build_flags(t: targets.Target) -> list[str]:
    from edgecnn.compiler import build as cbuild

    return cbuild.cflags(t)


@pytest.fixture(scope="module", params=list(BUILDS))
def kernels(request, tmp_path_factory):
    cc, t, extra = BUILDS[request.param]
    path = build(tmp_path_factory.mktemp("k"), cc, t, extra)  # compiled on every machine
    if not targets.loadable(t):
        pytest.skip(f"compiled; not run: this CPU cannot run {t.name} "
                    f"(needs {', '.join(t.needs)})")
    k = Kernels(path, t.nb, t.openmp)
    if k.openmp:
        k.lib.omp_set_num_threads(2)
    return k


@pytest.fixture(scope="module")
def openmp_kernels(tmp_path_factory):
    """The host OpenMP build alone (2 threads), for the tests of thread counts."""
    cc, t, extra = BUILDS["host-openmp"]
    k = Kernels(build(tmp_path_factory.mktemp("k"), cc, t, extra), t.nb, t.openmp)
    k.lib.omp_set_num_threads(2)
    return k


@pytest.mark.parametrize("build_id", list(BUILDS))
def test_every_build_compiles(build_id, tmp_path):
    """Each vector width and tile setting compiles here with -Werror, runnable or not."""
    cc, t, extra = BUILDS[build_id]
    assert build(tmp_path, cc, t, extra).stat().st_size > 0


# ---- references -----------------------------------------------------------------------------

def conv_attrs(cin, cout, k, stride=1, pad=0, dil=1, groups=1):
    return get_kind("conv2d").normalize_attrs(
        {"filters": cout, "kernel": k, "stride": stride, "padding": pad, "dilation": dil,
         "groups": groups, "bias": True}, "test")


def reference(a, x, w, bias, act, alpha, slope):
    y = get_kind("conv2d").forward(a, [x[None]], {"weight": w, "bias": bias})
    if act != "none":
        k = get_kind("activation")
        y = k.forward(k.normalize_attrs({"function": act, "slope": alpha}, "test"), [y],
                      {"slope": slope})
    return y[0]


def seed_of(case) -> int:
    return zlib.crc32(repr(case).encode())


def case_data(seed, h, w, cin, cout, k, groups=1):
    rng = np.random.default_rng(seed)
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((h, w, cin)).astype(np.float32)
    fan_in = cin // groups * kh * kw
    wt = (rng.standard_normal((cout, cin // groups, kh, kw)) * np.sqrt(2 / fan_in)).astype(
        np.float32)
    bias = rng.standard_normal(cout).astype(np.float32) * 0.1
    slope = rng.uniform(0.05, 0.5, cout).astype(np.float32)
    return x, wt, bias, slope


def check(dst, ref, tol, out_border):
    got = dst.interior
    scale = max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(got - ref).max()) / scale
    assert err <= tol, f"max error {err:.2e} x {scale:.2f} > {tol:.0e}"
    if any(out_border):  # the border around the output view is left alone
        mask = np.ones(dst.a.shape[:2], bool)
        mask[dst.ph:dst.ph + ref.shape[0], dst.pw:dst.pw + ref.shape[1]] = False
        assert (dst.a[mask] == 7.0).all(), "the kernel wrote into the output border"
    return err


# (h, w, cin, cout, kernel, stride, pad, dilation, activation, output border)
DIRECT_CASES = [
    (16, 16, 3, 16, 3, 1, 1, 1, "relu", (1, 1)),        # seed layer 1 (reduced map)
    (12, 12, 16, 32, 3, 1, 1, 1, "relu", (1, 1)),       # seed layer 2
    (8, 8, 32, 64, 3, 1, 1, 1, "none", (0, 0)),
    (4, 4, 64, 128, 3, 1, 1, 1, "relu", (1, 1)),        # deep layers: small maps
    (2, 2, 128, 100, 1, 1, 0, 1, "none", (0, 0)),       # seed 1x1 classifier conv, reduced
    (7, 9, 10, 20, 3, 1, 1, 1, "leaky_relu", (2, 1)),   # Cout not a multiple of 8 or 16
    (5, 6, 7, 5, 3, 1, 1, 1, "relu6", (0, 0)),          # Cout < every vector width
    (9, 11, 8, 24, 3, 2, 1, 1, "relu", (1, 1)),         # stride 2
    (5, 7, 24, 40, 1, 1, 0, 1, "sigmoid", (0, 0)),      # 1x1 = GEMM
    (10, 9, 6, 12, 5, 1, 2, 1, "tanh", (2, 2)),         # 5x5 pad 2
    (35, 35, 3, 16, 11, 4, 2, 1, "relu", (0, 0)),       # AlexNet-style 11x11 / 4
    (12, 12, 8, 16, 3, 1, 2, 2, "prelu", (0, 0)),       # dilation 2
    (8, 8, 16, 48, 3, 1, (0, 0, 1, 1), 1, "none", (0, 0)),  # asymmetric (TF "same") padding
    (1, 1, 64, 37, 1, 1, 0, 1, "relu", (0, 0)),         # a single pixel
    (9, 13, 5, 12, 3, (1, 2), 1, 1, "relu", (1, 0)),    # strides differ; Cout <= 16: row pairs
    (6, 7, 4, 8, (1, 3), 1, (0, 1, 0, 1), 1, "none", (0, 0)),  # 1x3 kernel
    # 7x7 and 14x7 maps: 7-pixel tiles where the register tile is 8 pixels wide
    (7, 7, 40, 72, 1, 1, 0, 1, "relu6", (0, 0)),        # MobileNets' last stage, odd blocks
    (7, 7, 8, 48, 1, 1, 0, 1, "none", (0, 0)),          # small weights: pixel-major tiles
    (14, 7, 12, 40, 3, 1, 1, 1, "relu", (1, 1)),        # 98 pixels, 3x3
]


@pytest.mark.parametrize("case", DIRECT_CASES, ids=lambda c: "x".join(map(str, c[:6])))
def test_direct_matches_reference(kernels, case):
    h, w, cin, cout, k, s, pad, dil, act, border = case
    a = conv_attrs(cin, cout, k, s, pad, dil)
    x, wt, bias, slope = case_data(seed_of(case), h, w, cin, cout, k)
    dst = kernels.conv("direct", a, x, wt, bias, act, 0.1, slope, border)
    check(dst, reference(a, x, wt, bias, act, 0.1, slope), TOL, border)


@pytest.mark.parametrize("act", list(ACTS))
def test_direct_every_activation(kernels, act):
    a = conv_attrs(12, 20, 3, 1, 1)
    x, wt, bias, slope = case_data(5, 6, 5, 12, 20, 3)
    x *= 3  # reach relu6's upper clip and sigmoid/tanh saturation
    dst = kernels.conv("direct", a, x, wt, bias, act, 0.2, slope, (1, 1))
    check(dst, reference(a, x, wt, bias, act, 0.2, slope), TOL, (1, 1))


# (h, w, cin, cout, pad, activation, output border)
WINOGRAD_CASES = [
    (16, 16, 16, 32, 1, "relu", (1, 1)),     # seed layer 2 (reduced map)
    (8, 8, 64, 128, 1, "relu", (1, 1)),
    (10, 7, 10, 20, 1, "leaky_relu", (0, 0)),  # ragged tiles, Cin and Cout not multiples of NB
    (9, 9, 8, 5, 0, "none", (2, 2)),         # no padding (valid conv)
    (6, 13, 3, 16, 1, "prelu", (0, 0)),      # Cin = 3 still correct (though direct is faster)
    (40, 36, 16, 24, 1, "tanh", (0, 0)),     # several chunks of tiles
    (13, 13, 64, 96, 1, "relu", (1, 1)),     # one chunk (shared by the threads), AlexNet-like
]


@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=lambda c: "x".join(map(str, c[:5])))
def test_winograd_matches_reference(kernels, case):
    h, w, cin, cout, pad, act, border = case
    a = conv_attrs(cin, cout, 3, 1, pad)
    x, wt, bias, slope = case_data(seed_of(case), h, w, cin, cout, 3)
    dst = kernels.conv("winograd", a, x, wt, bias, act, 0.1, slope, border)
    check(dst, reference(a, x, wt, bias, act, 0.1, slope), TOL_WINOGRAD, border)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("act", list(ACTS))
def test_winograd_every_activation(kernels, act, k):
    a = conv_attrs(12, 20, k, 1, k // 2)
    x, wt, bias, slope = case_data(6, 9, 6, 12, 20, k)
    x *= 3
    dst = kernels.conv("winograd", a, x, wt, bias, act, 0.2, slope, (1, 1))
    check(dst, reference(a, x, wt, bias, act, 0.2, slope), TOL_WINOGRAD, (1, 1))


# F(2x2, 5x5): (h, w, cin, cout, pad, activation, output border)
WINOGRAD5_CASES = [
    (27, 27, 24, 40, 2, "relu", (0, 0)),     # AlexNet conv2's map (fewer channels), ragged tiles
    (5, 5, 16, 20, 2, "leaky_relu", (1, 1)),  # a map no larger than the filter
    (7, 9, 13, 21, 2, "prelu", (0, 0)),      # odd sizes, Cin and Cout not multiples of NB
    (9, 11, 8, 5, 0, "none", (2, 2)),        # no padding (valid conv)
    (12, 10, 10, 17, (2, 1, 1, 2), "relu6", (0, 0)),  # asymmetric padding
    (44, 40, 16, 24, 2, "tanh", (0, 0)),     # several chunks of tiles
    (6, 6, 64, 70, 2, "relu6", (1, 1)),      # one chunk (shared by the threads)
]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(13, 13, 64, 96, 3), (27, 27, 24, 40, 5), (6, 6, 64, 70, 5),
                                   (20, 20, 16, 24, 3)], ids=lambda s: "x".join(map(str, s)))
def test_winograd_thread_counts(openmp_kernels, shape, threads):
    """The OpenMP build with one thread, two and more threads than chunks: one chunk's steps
    split between the threads, or whole chunks per thread."""
    kernels = openmp_kernels
    h, w, cin, cout, k = shape
    a = conv_attrs(cin, cout, k, 1, k // 2)
    x, wt, bias, slope = case_data(seed_of(shape), h, w, cin, cout, k)
    kernels.lib.omp_set_num_threads(threads)
    try:
        dst = kernels.conv("winograd", a, x, wt, bias, "relu", 0.1, slope)
    finally:
        kernels.lib.omp_set_num_threads(2)
    check(dst, reference(a, x, wt, bias, "relu", 0.1, slope), TOL_WINOGRAD, (0, 0))


@pytest.mark.parametrize("case", WINOGRAD5_CASES, ids=lambda c: "x".join(map(str, c[:4])))
def test_winograd5_matches_reference(kernels, case):
    h, w, cin, cout, pad, act, border = case
    a = conv_attrs(cin, cout, 5, 1, pad)
    x, wt, bias, slope = case_data(seed_of(case), h, w, cin, cout, 5)
    dst = kernels.conv("winograd", a, x, wt, bias, act, 0.1, slope, border)
    check(dst, reference(a, x, wt, bias, act, 0.1, slope), TOL_WINOGRAD, border)


# (h, w, channels, multiplier, kernel, stride, pad, activation)
DEPTHWISE_CASES = [
    (10, 10, 32, 1, 3, 1, 1, "relu6"),       # MobileNet block
    (9, 8, 20, 1, 3, 2, 1, "relu"),          # stride 2, channels not a multiple of NB
    (6, 6, 8, 2, 3, 1, 1, "none"),           # multiplier 2
    (7, 7, 5, 3, 5, 1, 2, "prelu"),          # 5x5, multiplier 3, Cout = 15
    (6, 33, 20, 1, 3, 1, 1, "relu"),         # rows of tiles + an overlapping last one, ragged
    (9, 30, 40, 1, 3, 2, (0, 0, 1, 1), "relu6"),  # stride 2, TF "same" padding, ragged block
    (5, 14, 48, 1, 3, 1, 1, "none"),         # width 14 (MobileNet), no activation
    (4, 7, 64, 1, 3, 1, 1, "leaky_relu"),    # width 7, activation applied after the tile
    (5, 37, 8, 1, 3, 1, 1, "prelu"),         # 8 channels: pixels packed in vectors, odd width
    (6, 23, 4, 1, 3, 1, 1, "relu6"),         # 4 channels
    (7, 19, 2, 1, 5, 1, 2, "tanh"),          # 2 channels, 5x5
    (11, 20, 16, 1, 3, 3, 1, "sigmoid"),     # stride 3
    (3, 3, 24, 1, 3, 1, 1, "relu6"),         # map narrower than any tile
    (9, 10, 3, 1, 3, 2, 1, "relu"),          # 3 channels (do not divide a vector), stride 2
]


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_depthwise_matches_reference(kernels, case):
    h, w, c, m, k, s, pad, act = case
    a = conv_attrs(c, c * m, k, s, pad, groups=c)
    x, wt, bias, slope = case_data(seed_of(case), h, w, c, c * m, k, groups=c)
    dst = kernels.conv("depthwise", a, x, wt, bias, act, 0.1, slope, (1, 1))
    check(dst, reference(a, x, wt, bias, act, 0.1, slope), TOL, (1, 1))


@pytest.mark.parametrize("c,dil,act", [(24, 2, "relu6"), (8, 2, "none")])
def test_depthwise_dilated(kernels, c, dil, act):
    a = conv_attrs(c, c, 3, 1, dil, dil, groups=c)
    x, wt, bias, slope = case_data(c + dil, 9, 13, c, c, 3, groups=c)
    dst = kernels.conv("depthwise", a, x, wt, bias, act, 0.1, slope, (1, 1))
    check(dst, reference(a, x, wt, bias, act, 0.1, slope), TOL, (1, 1))


# (h, w, channels, activation): the residual add, borders (2, 1), (0, 0) and (1, 1)
ADD_CASES = [(5, 7, 24, "none"), (3, 9, 20, "relu6"), (4, 4, 3, "prelu"), (2, 5, 37, "leaky_relu")]


@pytest.mark.parametrize("case", ADD_CASES, ids=lambda c: "x".join(map(str, c)))
def test_add_matches_reference(kernels, case):
    h, w, c, act = case
    rng = np.random.default_rng(seed_of(case))
    a, b = Buffer(h, w, c, 2, 1), Buffer(h, w, c)
    a.interior[...] = rng.standard_normal((h, w, c))
    b.interior[...] = rng.standard_normal((h, w, c))
    slope = rng.uniform(0.05, 0.5, c).astype(np.float32)
    dst = Buffer(h, w, c, 1, 1, fill=7.0)
    kernels.lib.ec_add_fast(ctypes.byref(a.view), ctypes.byref(b.view), ctypes.byref(dst.view),
                            ACTS[act], ctypes.c_float(0.1), fptr(slope))
    s = a.interior + b.interior
    ref = {"none": s, "relu6": np.clip(s, 0, 6), "prelu": np.where(s > 0, s, s * slope),
           "leaky_relu": np.where(s > 0, s, s * np.float32(0.1))}[act]
    check(dst, ref, 1e-6, (1, 1))


@pytest.mark.parametrize("n_in,units,act", [(100, 37, "relu"), (4096, 1000, "none"),
                                            (3, 5, "sigmoid"), (64, 16, "leaky_relu")])
def test_dense_matches_reference(kernels, n_in, units, act):
    rng = np.random.default_rng(n_in + units)
    x = rng.standard_normal(n_in).astype(np.float32)
    w = (rng.standard_normal((units, n_in)) / np.sqrt(n_in)).astype(np.float32)
    bias = rng.standard_normal(units).astype(np.float32)
    d = get_kind("dense")
    ref = d.forward({"units": units, "bias": True}, [x.reshape(1, 1, 1, -1)],
                    {"weight": w, "bias": bias})
    if act != "none":
        k = get_kind("activation")
        ref = k.forward(k.normalize_attrs({"function": act, "slope": 0.1}, "t"), [ref], {})
    got = kernels.dense(x, w, bias, act, 0.1)
    scale = max(1.0, float(np.abs(ref).max()))
    assert np.abs(got - ref.ravel()).max() / scale <= TOL


# ---- half-precision weights ------------------------------------------------------------------

@pytest.mark.parametrize("case", [DIRECT_CASES[i] for i in (0, 3, 5, 7, 8, 11)],
                         ids=lambda c: "x".join(map(str, c[:6])))
def test_direct_f16_matches_reference_with_rounded_weights(kernels, case):
    """Half weights widen exactly: the result is float32 conv with the rounded weights."""
    h, w, cin, cout, k, s, pad, dil, act, border = case
    a = conv_attrs(cin, cout, k, s, pad, dil)
    x, wt, bias, slope = case_data(seed_of(case), h, w, cin, cout, k)
    dst = kernels.conv("direct_f16", a, x, wt, bias, act, 0.1, slope, border)
    w16 = wt.astype(np.float16).astype(np.float32)
    check(dst, reference(a, x, w16, bias, act, 0.1, slope), TOL, border)
    check(dst, reference(a, x, wt, bias, act, 0.1, slope), 2e-3, border)  # vs float32 weights


def test_half_to_float_is_exact_for_every_finite_half(kernels):
    """Dense with one input of 1.0: y = the weights, each finite half value once."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    halves = bits.view(np.float16)
    halves = halves[np.isfinite(halves)]
    got = kernels.dense(np.ones(1, np.float32), halves.astype(np.float32)[:, None], None,
                        dtype="float16")
    np.testing.assert_array_equal(got, halves.astype(np.float32))  # (0 + -0 is +0: == holds)


def test_half_packing_refuses_weights_out_of_range():
    with pytest.raises(ValueError, match="float16"):
        packing.pack_direct(np.full((4, 1, 1, 1), 1e5, np.float32), 4, "float16")


# ---- packing and the choice of kernel (no compiler needed) --------------------------------

@pytest.mark.parametrize("nb", [4, 8, 16])
def test_pack_direct_layout(nb):
    w = np.arange(20 * 3 * 3 * 2, dtype=np.float32).reshape(20, 3, 3, 2)  # Co Ci kh kw
    p = packing.pack_direct(w, nb)
    assert p.shape == (-(-20 // nb), 3, 2, 3, nb)
    o, i, ky, kx = 17, 2, 1, 0
    assert p[o // nb, ky, kx, i, o % nb] == w[o, i, ky, kx]
    tail = p[-1, ..., 20 - (p.shape[0] - 1) * nb:]
    assert (tail == 0).all()


@pytest.mark.parametrize("at, g_mat", [(packing.WINOGRAD_AT, packing.WINOGRAD_G),
                                        (packing.WINOGRAD5_AT, packing.WINOGRAD5_G)],
                         ids=["F(4,3)", "F(2,5)"])
def test_winograd_filter_transform_is_exact_in_1d(at, g_mat):
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal(6), rng.standard_normal(g_mat.shape[1])
    y = at @ ((g_mat @ g) * (packing.WINOGRAD_BT @ d))
    np.testing.assert_allclose(y, np.correlate(d, g, "valid"), atol=1e-12)


def test_winograd_g_solver_finds_the_published_3x3_transform():
    g = packing._solve_winograd_g(packing.WINOGRAD_AT, packing.WINOGRAD_BT, 3)
    np.testing.assert_allclose(g, packing.WINOGRAD_G, atol=1e-12)


def test_winograd5_g_closed_form():
    g5 = np.array([[1 / 4, 0, 0, 0, 0], [-1 / 6] * 5, [-1 / 6, 1 / 6, -1 / 6, 1 / 6, -1 / 6],
                   [1 / 24, 1 / 12, 1 / 6, 1 / 3, 2 / 3], [1 / 24, -1 / 12, 1 / 6, -1 / 3, 2 / 3],
                   [0, 0, 0, 0, 1]])
    np.testing.assert_allclose(packing.WINOGRAD5_G, g5, atol=1e-12)


def test_winograd_rejects_other_kernel_sizes():
    with pytest.raises(ValueError, match="3x3 or 5x5"):
        packing.winograd_filter_transform(np.zeros((2, 2, 7, 7)))


def test_choose_conv_algorithm():
    def choose(cin, cout, hw, k=3, s=1, groups=1, nb=16):
        a = conv_attrs(cin, cout, k, s, k // 2, groups=groups)
        return conv_algorithm(a, (hw, hw, cin), (hw // s, hw // s, cout), nb)

    assert choose(3, 16, 256) == "direct"          # RGB first layer
    assert choose(16, 32, 128) == "winograd"
    assert choose(128, 256, 16) == "winograd"
    assert choose(256, 512, 8) == "direct"         # few tiles for many transformed weights
    assert choose(96, 256, 27, k=5) == "winograd"  # AlexNet conv2: F(2x2, 5x5)
    assert choose(3, 16, 64, k=5) == "direct"
    assert choose(96, 256, 27, k=5, s=2) == "direct"
    assert choose(16, 32, 32, k=7) == "direct"
    assert choose(16, 32, 128, s=2) == "direct"
    assert choose(1024, 1000, 2, k=1) == "direct"
    assert choose(32, 32, 56, groups=32) == "depthwise"
    assert choose(32, 64, 56, groups=4) == "ref"   # grouped, not depthwise
    assert choose(16, 32, 128, nb=3) == "ref"


# ---- NEON builds under qemu ---------------------------------------------------------------

ARMV7 = ["-mcpu=cortex-a53", "-mfpu=neon-fp-armv8", "-mfloat-abi=hard"]
CROSS = {  # id: (compiler, qemu, flags)
    "armv7": ("arm-linux-gnueabihf-gcc", "qemu-arm", ARMV7),
    # GCC computes float vectors with NEON on ARMv7 only when allowed to flush denormals
    "armv7-neon": ("arm-linux-gnueabihf-gcc", "qemu-arm", [*ARMV7, "-funsafe-math-optimizations"]),
    "aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64", []),
}


@pytest.mark.cross
@pytest.mark.parametrize("target", list(CROSS))
def test_neon_builds_agree_under_qemu(target, tmp_path):
    cc, qemu, flags = CROSS[target]
    for tool in (cc, qemu):
        need("cross", shutil.which(tool) is not None,
             f"{tool} not found (apt install gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu "
             f"libc6-dev-armhf-cross libc6-dev-arm64-cross qemu-user)")
    exe = tmp_path / "kernels_check"
    subprocess.run([cc, "-O3", "-ffp-contract=fast", "-static", "-DEC_NB=4", *WARN, *flags,
                    f"-I{RUNTIME}",
                    str(DRIVER), *[str(RUNTIME / s) for s in SOURCES], "-o", str(exe), "-lm"],
                   check=True, capture_output=True, text=True)
    r = subprocess.run([qemu, str(exe)], capture_output=True, text=True, timeout=120,
                       env={**os.environ})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all ok" in r.stdout


def test_c_driver_passes_natively(tmp_path):
    need("cc", shutil.which("gcc") is not None, "gcc not found (apt install gcc)")
    t = targets.get("host")
    exe = tmp_path / "kernels_check"
    subprocess.run(["gcc", "-O3", "-ffp-contract=fast", f"-DEC_NB={t.nb}", *WARN, *t.cflags,
                    f"-I{RUNTIME}",
                    str(DRIVER), *[str(RUNTIME / s) for s in SOURCES], "-o", str(exe), "-lm"],
                   check=True, capture_output=True, text=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "all ok" in r.stdout, r.stdout + r.stderr
