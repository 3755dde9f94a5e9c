"""The portable C int8/uint8 kernels (runtime/ec_int8.c) against the numpy integer reference
(the q* layer kinds), bit for bit: built with gcc and clang as C99 with -Wall -Wextra -Werror
and called through ctypes, and cross-built for ARM (armhf, aarch64) and run under qemu-user
through tests/c/int8_check.c. The fast kernels (ec_qconv_direct.c, ec_qconv_depthwise.c,
ec_qadd_fast.c, ec_qelt_fast.c) are built at every vector width (explicit -march, run where
this CPU can) and as portable C99, and called on the weights as the compiler packs them; on
ARM, test_int8_compile.py and test_int_conformance.py run them in whole graphs under qemu."""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import need
from edgecnn import quant
from edgecnn.compiler import kernels as kernel_table
from edgecnn.compiler import packing, targets
from edgecnn.compiler.build import RUNTIME_DIR
from edgecnn.layers import get_kind
from edgecnn.layers.qactivation import activation_params

I32 = ctypes.c_int32
WARN = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
CHECK_MAIN = Path(__file__).parent / "c" / "int8_check.c"


class QConv(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ("h", "w", "c", "oh", "ow", "o", "kh", "kw", "sh",
                                            "sw", "dh", "dw", "pad_top", "pad_left", "groups",
                                            "per_channel")] + \
               [(n, I32) for n in ("in_zp", "w_zp", "out_zp", "act_min", "act_max")]


class QPool(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ("h", "w", "c", "oh", "ow", "kh", "kw", "sh", "sw",
                                            "pad_top", "pad_left")] + \
               [(n, I32) for n in ("act_min", "act_max")]


class QAdd(ctypes.Structure):
    _fields_ = [(n, I32) for n in ("zp1", "zp2", "out_zp", "act_min", "act_max", "m1", "s1",
                                   "m2", "s2", "mo", "so")]


@dataclass
class Case:
    """One kernel call: the C symbol, its id in int8_check.c, parameters, input arrays (in
    argument order), an element count (add only) and the reference output."""

    symbol: str
    kid: int
    params: ctypes.Structure
    arrays: list
    want: np.ndarray
    count: int | None = None


CONVS = [  # (h, w, c, filters, kernel, stride, padding (t, l, b, r), dilation, groups)
    (9, 8, 5, 7, 3, 1, (1, 1, 1, 1), 1, 1),
    (11, 10, 6, 12, 3, 2, (0, 0, 1, 1), 1, 6),  # depthwise, multiplier 2, TF "SAME" at stride 2
    (8, 8, 4, 6, 3, 1, (2, 2, 2, 2), 2, 2),  # grouped, dilated
    (5, 7, 16, 9, 1, 1, (0, 0, 0, 0), 1, 1),  # pointwise
]
POOLS = [(7, 7, 7, 1, (0, 0, 0, 0)), (9, 8, 3, 2, (1, 1, 1, 1)), (6, 6, 2, 2, (0, 0, 0, 0))]
SUFFIX = {"uint8": "u8", "int8": "i8"}


def conv_case(case, dtype) -> Case:
    a, wts, x, want, p = conv_setup(case, dtype, sum(map(hash, map(str, case))) % 1000)
    return Case(f"ec_qconv2d_{SUFFIX[dtype]}", int(dtype == "int8"), p,
                [x[0], wts["weight"], wts["bias"], wts["multiplier"], wts["shift"]], want)


def conv_setup(case, dtype, seed: int):
    """(attrs, weights, input, reference output, QConv) of one random qconv2d case: uint8
    per tensor with a weight zero point, int8 per channel."""
    h, w, c, o, k, s, pad, d, g = case
    rng = np.random.default_rng(seed)
    lo, hi = quant.qrange(dtype)
    per_channel = dtype == "int8"
    kind = get_kind("qconv2d")
    a = kind.normalize_attrs(dict(
        filters=o, kernel=k, stride=s, padding=pad, dilation=d, groups=g, dtype=dtype,
        input_scale=0.05, input_zero_point=int(rng.integers(lo, hi)), output_scale=0.2,
        output_zero_point=int(rng.integers(lo, hi)), act_min=lo + 3, act_max=hi - 9,
        weight_zero_point=0 if per_channel else 131, per_channel=per_channel), "t")
    oh, ow, _ = kind.output_shape(a, [(h, w, c)])
    n = o if per_channel else 1
    m, e = quant.conv_multipliers(0.05, rng.uniform(0.002, 0.02, n), 0.2, legacy=False)
    wts = {"weight": rng.integers(lo, hi + 1, (o, c // g, k, k)).astype(dtype),
           "bias": rng.integers(-5000, 5000, o).astype(np.int32),
           "weight_scale": np.ones(n, np.float32), "multiplier": m, "shift": e}
    x = rng.integers(lo, hi + 1, (1, h, w, c)).astype(dtype)
    want = kind.forward(a, [x], wts)[0]
    assert len(np.unique(want)) > 10  # not a saturated, constant output
    p = QConv(h, w, c, oh, ow, o, k, k, s, s, d, d, pad[0], pad[1], g, int(per_channel),
              a["input_zero_point"], a["weight_zero_point"], a["output_zero_point"],
              a["act_min"], a["act_max"])
    return a, wts, x, want, p


def pool_case(kind_name, dtype, geometry) -> Case:
    h, w, k, s, pad = geometry
    rng = np.random.default_rng(h * w + k)
    lo, hi = quant.qrange(dtype)
    kind = get_kind(kind_name)
    a = kind.normalize_attrs(dict(kernel=k, stride=s, padding=pad, dtype=dtype, scale=0.1,
                                  zero_point=0, act_min=lo + 1, act_max=hi - 2), "t")
    oh, ow, c = kind.output_shape(a, [(h, w, 5)])
    x = rng.integers(lo, hi + 1, (1, h, w, 5)).astype(dtype)
    kid = 2 + (kind_name == "qmaxpool") * 2 + (dtype == "int8")
    return Case(f"ec_{kind_name}_{SUFFIX[dtype]}", kid,
                QPool(h, w, 5, oh, ow, k, k, s, s, pad[0], pad[1], lo + 1, hi - 2), [x[0]],
                kind.forward(a, [x], {})[0])


def add_case(dtype) -> Case:
    rng = np.random.default_rng(8)
    lo, hi = quant.qrange(dtype)
    a_, b_ = (rng.integers(lo, hi + 1, 5000).astype(dtype) for _ in range(2))
    zp1, zp2, zo = (int(v) for v in rng.integers(lo, hi, 3))
    pr = quant.add_params(0.05, 0.08, 0.11)
    want = quant.add(a_, b_, zp1, zp2, pr, zo, lo, hi, dtype)
    p = QAdd(zp1, zp2, zo, lo, hi, pr["input1_multiplier"], pr["input1_shift"],
             pr["input2_multiplier"], pr["input2_shift"], pr["output_multiplier"],
             pr["output_shift"])
    return Case(f"ec_qadd_{SUFFIX[dtype]}", 6 + (dtype == "int8"), p, [a_, b_], want, len(a_))


def all_cases() -> list[Case]:
    out = []
    for dtype in ("uint8", "int8"):
        out += [conv_case(c, dtype) for c in CONVS]
        out += [pool_case(k, dtype, geo) for k in ("qavgpool", "qmaxpool") for geo in POOLS]
        out.append(add_case(dtype))
    return out


# ---- host, through ctypes ----------------------------------------------------------------------

@pytest.fixture(scope="module", params=["gcc", "clang"])
def lib(request, tmp_path_factory):
    cc = shutil.which(request.param)
    need("clang" if request.param == "clang" else "cc", cc is not None,
         f"needs {request.param}")
    out = tmp_path_factory.mktemp("int8") / "libec_int8.so"
    subprocess.run([cc, *WARN, "-shared", "-fPIC", "-o", str(out),
                    str(RUNTIME_DIR / "ec_int8.c")], check=True)
    return ctypes.CDLL(str(out))


def run_ctypes(lib, case: Case) -> np.ndarray:
    got = np.zeros_like(case.want)
    fn = getattr(lib, case.symbol)
    fn.restype = None
    args = [np.ascontiguousarray(a).ctypes.data_as(ctypes.c_void_p) for a in case.arrays]
    if case.count is not None:  # add: (params, a, b, n, y)
        args.append(ctypes.c_long(case.count))
    fn(ctypes.byref(case.params), *args, got.ctypes.data_as(ctypes.c_void_p))
    return got


@pytest.mark.parametrize("index", range(len(all_cases())))
def test_kernel_bit_exact_on_the_host(lib, index):
    case = all_cases()[index]
    np.testing.assert_array_equal(run_ctypes(lib, case), case.want, err_msg=case.symbol)


def test_fixed_point_helpers_match_numpy(lib):
    rng = np.random.default_rng(9)
    lib.ec_srdhm.restype = I32
    lib.ec_multiply_by_quantized_multiplier.restype = I32
    a = rng.integers(-(1 << 31), 1 << 31, 2000)
    b = rng.integers(-(1 << 31), 1 << 31, 2000)
    got = [lib.ec_srdhm(I32(int(x)), I32(int(y))) for x, y in zip(a, b, strict=True)]
    assert got == quant.srdhm(a, b).tolist()
    x = rng.integers(-(1 << 24), 1 << 24, 2000)
    for real in (0.0003, 0.02, 0.7, 1.9):
        m, s = quant.quantize_multiplier(real)
        got = [lib.ec_multiply_by_quantized_multiplier(I32(int(v)), I32(m), s) for v in x]
        assert got == quant.multiply_by_quantized_multiplier(x, m, s).tolist()


# ---- ARM under qemu-user -----------------------------------------------------------------------

def stream(case: Case) -> bytes:
    data = struct.pack("<i", case.kid) + bytes(case.params)
    if case.count is not None:
        data += struct.pack("<q", case.count)
    for a in case.arrays:
        raw = np.ascontiguousarray(a).tobytes()  # little-endian on every target here
        data += struct.pack("<q", len(raw)) + raw
    return data


@pytest.mark.cross
@pytest.mark.parametrize("target", ["pi3", "aarch64"])
def test_kernels_bit_exact_on_arm_under_qemu(target, tmp_path):
    t = targets.get(target)
    need("cross", t.compiler_path() is not None and shutil.which(t.qemu) is not None,
         f"needs {t.cc} and {t.qemu} (apt install {t.debian_package} qemu-user)")
    exe = tmp_path / "int8_check"
    subprocess.run([t.compiler_path(), *WARN, *t.cflags, "-static", f"-I{RUNTIME_DIR}", "-o",
                    str(exe), str(CHECK_MAIN), str(RUNTIME_DIR / "ec_int8.c")], check=True)
    for case in all_cases():
        r = subprocess.run([t.qemu, "-L", t.sysroot, str(exe)], input=stream(case),
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr.decode()
        got = np.frombuffer(r.stdout, case.want.dtype).reshape(case.want.shape)
        np.testing.assert_array_equal(got, case.want, err_msg=f"{target} {case.symbol}")


class QQuantize(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("zp", I32)]


class NoParams(ctypes.Structure):
    _fields_ = []


def qelt_fast_cases() -> list[Case]:
    """ec_qelt_fast.c's kernels on the inputs of the host tests: every pool geometry, tricky
    quantization inputs, activation tables over every 8-bit value (kernel ids 8-13)."""
    out = []
    for dtype in ("uint8", "int8"):
        s8 = int(dtype == "int8")
        for geometry in FAST_POOLS:
            case = fast_pool_case(geometry, dtype)
            case.kid = 8 + s8
            out.append(case)
        for scale, zp in QUANTIZE_PARAMS[:3]:
            x = tricky_floats(scale)
            out.append(Case(f"ec_quantize_flat_fast_{SUFFIX[dtype]}", 10 + s8,
                            QQuantize(scale, zp), [x], quant.quantize(x, scale, zp, dtype),
                            len(x)))
        for function in ("relu6", "leaky_relu"):
            table, x, want = activation_table_case(function, dtype)
            out.append(Case(f"ec_qlut_fast_{SUFFIX[dtype]}", 12 + s8, NoParams(),
                            [x, table], want, len(x)))
    return out


@pytest.mark.cross
@pytest.mark.parametrize("target", ["pi3", "aarch64", "pi5"])
def test_fast_elementwise_kernels_bit_exact_on_arm_under_qemu(target, tmp_path):
    """ec_qelt_fast.c as each ARM target builds it (its flags, its EC_NB; one thread)."""
    from edgecnn.compiler import build as cbuild

    t = replace(targets.get(target), openmp=False)
    need("cross", t.compiler_path() is not None and shutil.which(t.qemu) is not None,
         f"needs {t.cc} and {t.qemu} (apt install {t.debian_package} qemu-user)")
    exe = tmp_path / "int8_check"
    subprocess.run([t.compiler_path(), *cbuild.cflags(t), "-Werror", "-DEC_QELT_FAST",
                    "-static", f"-I{RUNTIME_DIR}", "-o", str(exe), str(CHECK_MAIN),
                    str(RUNTIME_DIR / "ec_int8.c"), str(RUNTIME_DIR / "ec_qelt_fast.c"), "-lm"],
                   check=True)
    for case in qelt_fast_cases():
        r = subprocess.run([t.qemu, "-L", t.sysroot, str(exe)], input=stream(case),
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr.decode()
        got = np.frombuffer(r.stdout, case.want.dtype).reshape(case.want.shape)
        np.testing.assert_array_equal(got, case.want, err_msg=f"{target} {case.symbol}")


# ---- the fast convolutions (ec_qconv_direct.c, ec_qconv_depthwise.c) at every vector width ------

FAST_SOURCES = ("ec_int8.c", "ec_qconv_direct.c", "ec_qconv_depthwise.c", "ec_qadd_fast.c",
                "ec_qelt_fast.c")
FAST_CONVS = [  # (h, w, c, filters, kernel, stride, padding (t, l, b, r), dilation, groups)
    (5, 7, 16, 9, 1, 1, (0, 0, 0, 0), 1, 1),     # pointwise
    (6, 5, 37, 40, 1, 1, (0, 0, 0, 0), 1, 1),    # pointwise, ragged channels, 30 pixels
    (2, 3, 100, 21, 1, 1, (0, 0, 0, 0), 1, 1),   # fewer pixels than a tile, 100 channels
    (9, 8, 5, 7, 3, 1, (1, 1, 1, 1), 1, 1),      # direct, padded
    (11, 10, 3, 20, 3, 2, (0, 0, 1, 1), 1, 1),   # MobileNet's first layer, TF "SAME" at stride 2
    (8, 8, 4, 35, 3, 1, (2, 2, 2, 2), 2, 1),     # dilated, three blocks of 16
    (7, 9, 6, 17, 5, 1, (2, 2, 2, 2), 1, 1),     # 5x5
    (9, 9, 12, 24, 1, 2, (0, 0, 0, 0), 1, 1),    # 1x1 stride 2: direct
    (10, 10, 32, 32, 3, 1, (1, 1, 1, 1), 1, 32),  # depthwise
    (11, 10, 20, 20, 3, 2, (0, 0, 1, 1), 1, 20),  # depthwise stride 2, ragged
    (9, 8, 37, 37, 3, 2, (1, 1, 1, 1), 1, 37),   # depthwise stride 2, padded both sides
    (8, 9, 5, 5, 5, 1, (2, 2, 2, 2), 1, 5),      # depthwise 5x5, fewer channels than lanes
    (10, 10, 17, 17, 3, 1, (2, 2, 2, 2), 2, 17),  # depthwise dilated
]


def fast_builds() -> dict[str, tuple[str, targets.Target]]:
    """id -> (compiler, target): this machine (gcc, clang), the portable C99 build, and on x86
    every vector width by its explicit -march (compiled everywhere, run where the CPU can)."""
    from test_kernels import width_target, x86

    host = replace(targets.get("host"), openmp=False)
    out = {"host-gcc": ("gcc", host), "host-clang": ("clang", host),
           "c99-gcc": ("gcc", targets.get("c99")), "c99-clang": ("clang", targets.get("c99"))}
    if x86():
        for nb in (16, 8, 4):
            out[f"gcc-nb{nb}"] = ("gcc", width_target(nb))
            out[f"clang-nb{nb}"] = ("clang", width_target(nb))
    return out


FAST_BUILDS = fast_builds()


def build_fast(tmp: Path, cc: str, t: targets.Target) -> Path:
    from edgecnn.compiler import build as cbuild

    need("clang" if cc == "clang" else "cc", shutil.which(cc) is not None, f"needs {cc}")
    out = tmp / f"libec_qfast_{cc}_{t.nb}.so"
    cmd = [cc, *cbuild.cflags(t), "-shared", "-fPIC", "-o", str(out),
           *[str(RUNTIME_DIR / f) for f in FAST_SOURCES]]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"$ {' '.join(cmd)}\n{r.stderr}"
    return out


@pytest.mark.parametrize("build_id", list(FAST_BUILDS))
def test_fast_build_compiles(build_id, tmp_path):
    """Every vector width compiles here warning-free, runnable or not."""
    assert build_fast(tmp_path, *FAST_BUILDS[build_id]).stat().st_size > 0


@pytest.fixture(scope="module", params=list(FAST_BUILDS))
def fast_lib(request, tmp_path_factory):
    cc, t = FAST_BUILDS[request.param]
    path = build_fast(tmp_path_factory.mktemp("qfast"), cc, t)
    if not targets.loadable(t):
        pytest.skip(f"compiled; not run: this CPU cannot run {t.name}")
    return ctypes.CDLL(str(path)), t.nb


def run_fast(fast_lib, a: dict, wts: dict, x: np.ndarray, p: QConv, shape) -> np.ndarray:
    """The fast kernel the compiler picks for this qconv2d, called on packed weights."""
    lib, nb = fast_lib
    op = SimpleNamespace(kind="qconv2d", attrs=a, weights=wts, inputs=["x"], output="y")
    prog = SimpleNamespace(shapes={"x": x.shape[1:], "y": shape})
    algo = kernel_table.qconv_algorithm(op, prog)
    row = next(k for k in kernel_table.KERNELS if k.name == algo)
    packed = row.pack(op, nb)
    got = np.zeros(shape, x.dtype)
    fn = getattr(lib, f"ec_qconv_{algo[5:]}_{SUFFIX[a['dtype']]}")
    fn.restype = None
    args = [np.ascontiguousarray(v).ctypes.data_as(ctypes.c_void_p) for v in
            (x[0], packed["qweight"], packed["requant"])]
    if algo != "int8_depthwise":  # the scratch the compiler plans, guarded for overruns
        n = packing.qconv_scratch_bytes(tuple(getattr(p, f) for f, _ in p._fields_[:15]), nb)
        lib.ec_qconv_scratch_bytes.restype = ctypes.c_long
        assert lib.ec_qconv_scratch_bytes(ctypes.byref(p)) == n
        scratch = np.full(n + 64, 0x5A, np.uint8)
        args.append(scratch.ctypes.data_as(ctypes.c_void_p) if n else None)
    fn(ctypes.byref(p), *args, got.ctypes.data_as(ctypes.c_void_p))
    if algo != "int8_depthwise":
        assert (scratch[n:] == 0x5A).all(), "wrote past its scratch"
    return got, algo


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("case", FAST_CONVS, ids=lambda c: "x".join(map(str, c[:6])))
def test_fast_conv_bit_exact(fast_lib, case, dtype):
    a, wts, x, want, p = conv_setup(case, dtype, zlib.crc32(repr((case, dtype)).encode()))
    got, algo = run_fast(fast_lib, a, wts, x, p, want.shape)
    assert algo == ("int8_depthwise" if case[-1] > 1 else
                    "int8_pointwise" if case[4] == case[5] == 1 else "int8_direct")
    np.testing.assert_array_equal(got, want, err_msg=algo)


def requant_setup(dtype):
    """(attrs, weights, input, reference output, QConv) of a 1x1 conv of one channel with weight
    1 over a 16x16 input holding every 8-bit value: 256 consecutive accumulators bias + x -
    in_zp per output channel, of both signs, through the rounding ties of the right shift;
    multipliers include 2^30 (exact halves at the high multiply), shifts -10..2 (left too)."""
    rng = np.random.default_rng(11)
    lo, hi = quant.qrange(dtype)
    o = 70
    shift = rng.integers(-10, 3, o).astype(np.int32)
    mult = rng.integers(1 << 30, (1 << 31) - 1, o).astype(np.int32)
    mult[::3] = 1 << 30
    bias = rng.integers(-200, 200, o) << np.maximum(-shift, 0)  # outputs near -200..200
    kind = get_kind("qconv2d")
    a = kind.normalize_attrs(dict(
        filters=o, kernel=1, dtype=dtype, input_scale=1.0, input_zero_point=lo + 128,
        output_scale=1.0, output_zero_point=lo + 128, act_min=lo, act_max=hi,
        weight_zero_point=0, per_channel=True), "t")
    wts = {"weight": np.ones((o, 1, 1, 1), dtype), "bias": bias.astype(np.int32),
           "weight_scale": np.ones(o, np.float32), "multiplier": mult, "shift": shift}
    x = np.arange(lo, hi + 1).astype(dtype).reshape(1, 16, 16, 1)
    want = kind.forward(a, [x], wts)[0]
    assert len(np.unique(want)) > 200
    p = QConv(16, 16, 1, 16, 16, o, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, a["input_zero_point"], 0,
              a["output_zero_point"], lo, hi)
    return a, wts, x, want, p


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_fast_requantization_bit_exact(fast_lib, dtype):
    """The vector requantization against edgecnn.quant (see requant_setup)."""
    a, wts, x, want, p = requant_setup(dtype)
    got, algo = run_fast(fast_lib, a, wts, x, p, want.shape)
    assert algo == "int8_pointwise"
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_fast_add_bit_exact(fast_lib, dtype):
    """ec_qadd_fast on 4999 elements (a ragged tail at every width) equals the reference."""
    case = add_case(dtype)
    case.symbol = case.symbol.replace("ec_qadd", "ec_qadd_fast")
    case.arrays, case.want, case.count = [v[:4999] for v in case.arrays], case.want[:4999], 4999
    np.testing.assert_array_equal(run_ctypes(fast_lib[0], case), case.want)


# ---- max pooling and the input's quantization on vectors (ec_qelt_fast.c) ------------------------

FAST_POOLS = [  # (h, w, c, kernel, stride, padding (t, l, b, r), ceil_mode)
    (8, 8, 16, 2, 2, (0, 0, 0, 0), False),     # the seed model's 2x2/2 on 16 channels
    (7, 9, 3, 2, 2, (0, 0, 0, 0), True),       # RGB; ceil mode's partial windows
    (9, 8, 17, 3, 2, (1, 1, 1, 1), False),     # padded; 17 channels: a vector and one more
    (6, 7, 100, 3, 1, (1, 1, 1, 1), True),     # 100 channels: whole registers, 16, a ragged rest
    (5, 5, 64, 2, 2, (0, 0, 0, 0), True),      # whole registers at every width; ceil mode
    (6, 5, 80, 3, 3, (1, 0, 1, 1), True),      # asymmetric padding, stride = kernel
    (4, 4, 33, 4, 1, (2, 2, 2, 2), False),     # windows of one real row or column
]


def fast_pool_case(geometry, dtype) -> Case:
    """ec_qmaxpool_fast on one geometry, clamps that bite, against the reference."""
    h, w, c, k, s, pad, ceil = geometry
    rng = np.random.default_rng(zlib.crc32(repr((geometry, dtype)).encode()))
    lo, hi = quant.qrange(dtype)
    kind = get_kind("qmaxpool")
    a = kind.normalize_attrs(dict(kernel=k, stride=s, padding=pad, ceil_mode=ceil, dtype=dtype,
                                  scale=0.1, zero_point=0, act_min=lo + 20, act_max=hi - 30),
                             "t")
    oh, ow, _ = kind.output_shape(a, [(h, w, c)])
    x = rng.integers(lo, hi + 1, (1, h, w, c)).astype(dtype)
    return Case(f"ec_qmaxpool_fast_{SUFFIX[dtype]}", -1,
                QPool(h, w, c, oh, ow, k, k, s, s, pad[0], pad[1], lo + 20, hi - 30), [x[0]],
                kind.forward(a, [x], {})[0])


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("geometry", FAST_POOLS, ids=lambda g: "x".join(map(str, g[:5])))
def test_fast_maxpool_bit_exact(fast_lib, geometry, dtype):
    """ec_qmaxpool_fast equals the reference and the portable ec_qmaxpool."""
    case = fast_pool_case(geometry, dtype)
    np.testing.assert_array_equal(run_ctypes(fast_lib[0], case), case.want)
    case.symbol = case.symbol.replace("_fast", "")
    np.testing.assert_array_equal(run_ctypes(fast_lib[0], case), case.want)


def tricky_floats(scale: float) -> np.ndarray:
    """Inputs whose quotient by ``scale`` is a rounding tie (+-k.5), near one, huge (+-1e7,
    +-2^23 and around, +-1e6 +- 0.5), infinite, NaN, a signed zero or denormal, and random."""
    s = np.float64(scale)
    ties = (np.arange(-300, 300) + 0.5) * s
    t = ties[::7].astype(np.float32)
    inf = np.float32(np.inf)
    near = np.concatenate([np.nextafter(t, -inf), np.nextafter(t, inf)])
    big = np.array([1e7, 2.0 ** 23, 2.0 ** 23 - 1, 2.0 ** 23 + 2, 2.0 ** 24 + 1, 1e6 - 0.5,
                    1e6 + 0.5, 1e6 + 0.25, 3e38]) * s
    special = [np.inf, np.nan, 0.0, 1e-40, 1e-45]
    rng = np.random.default_rng(3)
    x = np.concatenate([ties, near, big, -big, special, [-v for v in special],
                        rng.normal(0, 200 * s, 1000)])
    return x.astype(np.float32)


QUANTIZE_PARAMS = [(0.5, 3), (0.25, -7), (0.0173, 0), (1 / 255, -128), (2.0 ** -10, 130)]


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("scale,zp", QUANTIZE_PARAMS)
def test_fast_quantize_bit_exact(fast_lib, scale, zp, dtype):
    """ec_quantize_flat_fast equals quant.quantize and the portable ec_quantize_flat on tricky
    inputs, at every length up to two vectors and one ragged (the tail's lanes)."""
    lo, hi = quant.qrange(dtype)
    zp = min(max(zp, lo), hi)
    x = tricky_floats(scale)
    want = quant.quantize(x, scale, zp, dtype)
    assert {lo, hi} <= set(want.tolist()) and len(np.unique(want)) > 200
    lib = fast_lib[0]
    for fn in ("ec_quantize_flat_fast", "ec_quantize_flat"):
        f = getattr(lib, f"{fn}_{SUFFIX[dtype]}")
        f.restype = None
        for n in (len(x), len(x) - 1, 33, 17, 16, 5, 1):
            got = np.zeros(n, dtype)
            f(x.ctypes.data_as(ctypes.c_void_p), ctypes.c_long(n),
              got.ctypes.data_as(ctypes.c_void_p), ctypes.c_float(scale), I32(zp))
            np.testing.assert_array_equal(got, want[:n], err_msg=f"{fn}, n={n}")


def activation_table_case(function: str, dtype: str):
    """(the table the compiler emits for a qactivation, every 8-bit value 5 times shuffled,
    the reference's output on them)"""
    lo, hi = quant.qrange(dtype)
    kind = get_kind("qactivation")
    slope = 0.1 if function == "leaky_relu" else 0
    a = kind.normalize_attrs(dict(function=function, slope=slope, dtype=dtype,
                                  input_scale=0.05, input_zero_point=lo + 100,
                                  output_scale=0.04, output_zero_point=lo + 90,
                                  act_min=lo + (function != "leaky_relu") * 90,
                                  act_max=hi - (function == "relu6") * 5,
                                  **activation_params(slope, 0.05, 0.04)), "t")
    table = kind.forward(a, [np.arange(lo, hi + 1).astype(dtype).reshape(1, 1, 1, -1)], {})
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.permutation(np.arange(lo, hi + 1)) for _ in range(5)]).astype(dtype)
    want = kind.forward(a, [x.reshape(1, 1, 1, -1)], {}).ravel()
    assert len(np.unique(want)) > 100
    return np.ascontiguousarray(table.ravel()), x, want


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("function", ["relu", "relu6", "leaky_relu"])
def test_fast_activation_table_bit_exact(fast_lib, function, dtype):
    """ec_qlut_fast with the table the compiler emits for a qactivation equals its reference on
    every 8-bit value, shuffled, at lengths with and without a ragged tail."""
    table, x, want = activation_table_case(function, dtype)
    f = getattr(fast_lib[0], f"ec_qlut_fast_{SUFFIX[dtype]}")
    f.restype = None
    for n in (len(x), len(x) - 1, 200, 64, 63, 17, 1):
        got = np.zeros(n, dtype)
        f(x.ctypes.data_as(ctypes.c_void_p), ctypes.c_long(n),
          table.ctypes.data_as(ctypes.c_void_p), got.ctypes.data_as(ctypes.c_void_p))
        np.testing.assert_array_equal(got, want[:n], err_msg=f"n={n}")


@pytest.fixture(scope="module")
def omp_lib(tmp_path_factory):
    """The fast integer kernels for this machine with OpenMP (gcc, libgomp)."""
    from edgecnn.compiler import build as cbuild

    t = targets.get("host")
    need("cc", shutil.which("gcc") is not None and targets.loadable(t), "needs gcc")
    out = tmp_path_factory.mktemp("qomp") / "libec_qomp.so"
    cmd = ["gcc", *cbuild.cflags(t), "-shared", "-fPIC", "-o", str(out),
           *[str(RUNTIME_DIR / f) for f in FAST_SOURCES]]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"$ {' '.join(cmd)}\n{r.stderr}"
    lib = ctypes.CDLL(str(out))
    return lib, ctypes.CDLL("libgomp.so.1")


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_fast_maxpool_and_quantize_threads(omp_lib, dtype):
    """Rows of a pool and blocks of the quantization large enough to split over 2 threads give
    what 1 thread gives: the reference."""
    lib, gomp = omp_lib
    pool = fast_pool_case((64, 66, 67, 2, 2, (0, 0, 0, 0), True), dtype)
    x = np.random.default_rng(5).normal(0, 40, 100_003).astype(np.float32)
    want = quant.quantize(x, 0.3, 2, dtype)
    f = getattr(lib, f"ec_quantize_flat_fast_{SUFFIX[dtype]}")
    f.restype = None
    for n in (1, 2):
        gomp.omp_set_num_threads(n)
        np.testing.assert_array_equal(run_ctypes(lib, pool), pool.want, err_msg=f"{n} threads")
        got = np.zeros_like(want)
        f(x.ctypes.data_as(ctypes.c_void_p), ctypes.c_long(len(x)),
          got.ctypes.data_as(ctypes.c_void_p), ctypes.c_float(0.3), I32(2))
        np.testing.assert_array_equal(got, want, err_msg=f"{n} threads")


# ---- the AVX-512 VNNI pointwise kernel (ec_qconv_vnni.c) ----------------------------------------

VNNI_CONVS = [  # (h, w, c, filters): pointwise
    (5, 7, 16, 9),     # one ragged block of outputs
    (6, 5, 37, 40),    # input channels not a multiple of 4, 30 pixels: full and partial tiles
    (2, 3, 100, 21),   # fewer pixels than a tile
    (1, 1, 300, 70),   # qdense's shape: one pixel
    (9, 9, 3, 64),     # three input channels (the tiles read the padded copy)
    (4, 5, 64, 130),   # nine blocks of outputs: two full quads and one block
]
# weights: "zp" uint8 per tensor, weight zero point 131, w - w_zp spans beyond int8 (d != 0);
# "sym" int8 per channel, zero point 0 (d = 0); "zp-int8" int8 per tensor, zero point 50;
# "fits" uint8 within 128 of their zero point (d = 0)
VNNI_WEIGHTS = ["zp", "sym", "zp-int8", "fits"]


@pytest.fixture(scope="module", params=["gcc", "clang"])
def vnni_lib(request, tmp_path_factory):
    """ec_qconv_vnni.c for x86-64-vnni, with OpenMP (the tiles split over this machine's
    cores): compiled on any x86-64, run where the CPU has AVX-512 VNNI."""
    from test_kernels import x86

    need("cc", x86(), "the VNNI kernel is x86-64 code")
    t = targets.get("x86-64-vnni")
    need("clang" if request.param == "clang" else "cc", shutil.which(request.param) is not None,
         f"needs {request.param}")
    from edgecnn.compiler import build as cbuild

    out = tmp_path_factory.mktemp("vnni") / f"libec_vnni_{request.param}.so"
    cmd = [request.param, *cbuild.cflags(t), "-Werror", "-shared", "-fPIC", "-o", str(out),
           *[str(RUNTIME_DIR / f) for f in ("ec_int8.c", "ec_qconv_vnni.c")]]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"$ {' '.join(cmd)}\n{r.stderr}"
    if not targets.loadable(t):
        pytest.skip("compiled; not run: this CPU lacks AVX-512 VNNI (avx512_vnni in "
                    "/proc/cpuinfo; the host build keeps the int16 pointwise kernel)")
    return ctypes.CDLL(str(out))


def run_vnni(lib, a: dict, wts: dict, x: np.ndarray, p: QConv, shape) -> tuple[np.ndarray, int]:
    """The VNNI kernel the compiler picks (ec_qconv_pointwise_vnni or _direct_vnni) on the
    weights as it packs them, in the scratch it plans (guarded for overruns); returns the
    output and d."""
    op = SimpleNamespace(kind="qconv2d", attrs=a, weights=wts, inputs=["x"], output="y")
    prog = SimpleNamespace(shapes={"x": x.shape[1:], "y": shape})
    algo = kernel_table.qconv_algorithm(op, prog) + "_vnni"
    row = next(k for k in kernel_table.KERNELS if k.name == algo)
    assert row.serves(op, prog, targets.get("x86-64-vnni"))
    packed = row.pack(op, 16)
    geometry = tuple(getattr(p, f) for f, _ in p._fields_[:15])
    direct = algo == "int8_direct_vnni"
    n = (packing.qconv_vnni_direct_scratch_bytes if direct else
         packing.qconv_vnni_scratch_bytes)(geometry)
    count = getattr(lib, "ec_qconv_vnni_direct_scratch_bytes" if direct else
                    "ec_qconv_vnni_scratch_bytes")
    count.restype = ctypes.c_long
    assert count(ctypes.byref(p)) == n
    scratch = np.full(n + 64, 0x5A, np.uint8)
    got = np.zeros(shape, x.dtype)
    fn = getattr(lib, f"ec_qconv_{algo[5:-5]}_vnni_{SUFFIX[a['dtype']]}")
    fn.restype = None
    d = int(packed["d"][0])
    args = [np.ascontiguousarray(v).ctypes.data_as(ctypes.c_void_p)
            for v in (x[0], packed["qweight"], packed["requant"])]
    fn(ctypes.byref(p), *args, I32(d), scratch.ctypes.data_as(ctypes.c_void_p),
       got.ctypes.data_as(ctypes.c_void_p))
    assert (scratch[n:] == 0x5A).all(), "wrote past its scratch"
    return got, d


def vnni_setup(case, weights: str, seed: int):
    """A pointwise (h, w, c, filters) or any conv_setup case, with the weights of VNNI_WEIGHTS."""
    case = (*case, 1, 1, (0, 0, 0, 0), 1, 1) if len(case) == 4 else case
    h, w, c, o, k = case[:5]
    dtype = "uint8" if weights in ("zp", "fits") else "int8"
    a, wts, x, _, p = conv_setup(case, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    if weights in ("zp-int8", "fits"):
        zp = 50 if weights == "zp-int8" else 131
        a = {**a, "weight_zero_point": zp, "per_channel": False}
        lo, hi = (-128, 127) if weights == "zp-int8" else (zp - 100, zp + 100)
        wt = rng.integers(lo, hi + 1, (o, c, k, k))
        xz = x.reshape(-1, c).astype(np.int64) - a["input_zero_point"]
        acc = xz @ (wt.sum(axis=(2, 3)) - k * k * zp).T  # about the accumulators' spread
        mid = np.median(acc)  # the bias centres the outputs on the zero point
        m, e = quant.quantize_multiplier(60 / np.abs(acc - mid).max())
        wts = {**wts, "weight": wt.astype(dtype), "bias": np.full(o, -round(mid), np.int32),
               "multiplier": np.array([m], np.int32),
               "shift": np.array([e], np.int32), "weight_scale": np.ones(1, np.float32)}
        p.w_zp, p.per_channel = zp, 0
    want = get_kind("qconv2d").forward(a, [x], wts)[0]
    assert len(np.unique(want)) > 10
    return a, wts, x, want, p


@pytest.mark.parametrize("weights", VNNI_WEIGHTS)
@pytest.mark.parametrize("case", VNNI_CONVS, ids=lambda c: "x".join(map(str, c)))
def test_vnni_pointwise_bit_exact(vnni_lib, case, weights):
    a, wts, x, want, p = vnni_setup(case, weights, zlib.crc32(repr((case, weights)).encode()))
    got, d = run_vnni(vnni_lib, a, wts, x, p, want.shape)
    assert (d == 0) == (weights in ("sym", "fits")), d  # both packings are exercised
    np.testing.assert_array_equal(got, want)


VNNI_DIRECT = [  # (h, w, c, filters, kernel, stride, padding (t, l, b, r), dilation, groups)
    (9, 8, 5, 7, 3, 1, (1, 1, 1, 1), 1, 1),      # padded, a ragged block; windows of 15 bytes
    (11, 10, 3, 20, 3, 2, (0, 0, 1, 1), 1, 1),   # MobileNet's first layer, TF "SAME" at stride 2
    (17, 15, 3, 9, 7, 2, (3, 3, 3, 3), 1, 1),    # 7x7 RGB, stride 2
    (8, 9, 33, 40, 3, 1, (1, 1, 1, 1), 1, 1),    # ragged channels in and out, 3 blocks
    (7, 13, 64, 70, 3, 1, (1, 1, 1, 1), 1, 1),   # 5 blocks: a quad and one; rows of 13 pixels
    (6, 6, 4, 16, 1, 2, (0, 0, 0, 0), 1, 1),     # 1x1 at stride 2 (not pointwise)
]


@pytest.mark.parametrize("weights", ["zp", "sym"])
@pytest.mark.parametrize("case", VNNI_DIRECT, ids=lambda c: "x".join(map(str, c[:6])))
def test_vnni_direct_bit_exact(vnni_lib, case, weights):
    a, wts, x, want, p = vnni_setup(case, weights, zlib.crc32(repr((case, weights)).encode()))
    got, d = run_vnni(vnni_lib, a, wts, x, p, want.shape)
    assert (d == 0) == (weights == "sym"), d
    np.testing.assert_array_equal(got, want)


def test_vnni_direct_needs_unit_dilation_along_x():
    """A dilated window row is not contiguous: the int16 direct kernel keeps it."""
    a, wts, x, want, p = conv_setup((12, 12, 6, 7, 5, 1, (4, 4, 4, 4), 2, 1), "int8", 5)
    op = SimpleNamespace(kind="qconv2d", attrs=a, weights=wts, inputs=["x"], output="y")
    prog = SimpleNamespace(shapes={"x": x.shape[1:], "y": want.shape})
    t = targets.get("x86-64-vnni")
    assert kernel_table.choose(op, prog, t).name == "int8_direct"


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_vnni_requantization_bit_exact(vnni_lib, dtype):
    """The AVX-512 requantization against edgecnn.quant (see requant_setup)."""
    a, wts, x, want, p = requant_setup(dtype)
    got, _ = run_vnni(vnni_lib, a, wts, x, p, want.shape)
    np.testing.assert_array_equal(got, want)


def _extreme_pointwise(dtype: str, seed: int, in_zp: int, w_zp: int, span: int, corner: int):
    """A 1x1 layer (64 -> 48 channels, 7x6 pixels) whose activations and weights sit at the ends
    of their range, the first pixel all ``corner`` (the extreme sum), scaled so that outputs span
    about -100 .. 100 when the products reach ``span``: (attrs, weights, x, reference, params)."""
    lo, hi = quant.qrange(dtype)
    o, c = 48, 64
    rng = np.random.default_rng(seed)
    kind = get_kind("qconv2d")
    a = kind.normalize_attrs(dict(
        filters=o, kernel=1, dtype=dtype, input_scale=1.0, input_zero_point=in_zp,
        output_scale=1.0, output_zero_point=lo + 128, act_min=lo, act_max=hi,
        weight_zero_point=w_zp, per_channel=False), "t")
    m, e = quant.quantize_multiplier(100 / (c * span))
    wts = {"weight": rng.choice([lo, hi], (o, c, 1, 1)).astype(dtype),
           "bias": np.zeros(o, np.int32), "weight_scale": np.ones(1, np.float32),
           "multiplier": np.array([m], np.int32), "shift": np.array([e], np.int32)}
    x = rng.choice([lo, hi], (1, 7, 6, c)).astype(dtype)
    x[0, 0, 0] = corner
    want = kind.forward(a, [x], wts)[0]
    assert len(np.unique(want)) > 20
    p = QConv(7, 6, c, 7, 6, o, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, in_zp, w_zp, lo + 128, lo, hi)
    return a, wts, x, want, p


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_vnni_extreme_products_do_not_saturate(vnni_lib, dtype):
    """Activations and weights at the ends of their range: products 255 x -128 four to an int32
    lane (VPMADDUBSW's int16 pair sums would saturate at 2 x 255 x 128; VPDPBUSD must not),
    the per-pixel sums at 64 x 255."""
    lo, hi = quant.qrange(dtype)
    a, wts, x, want, p = _extreme_pointwise(dtype, 3, lo, 128 if dtype == "uint8" else 0,
                                            255 * 128, hi)
    got, _ = run_vnni(vnni_lib, a, wts, x, p, want.shape)
    np.testing.assert_array_equal(got, want)


# ---- the AArch64 dot-product pointwise kernel (ec_qconv_sdot.c), under qemu-user --------------

SDOT_CHECK = Path(__file__).parent / "c" / "sdot_check.c"
SDOT_CONVS = [*VNNI_CONVS,  # and: outputs in whole tiles (4 x 16), channels in whole vectors
              (4, 4, 48, 64), (3, 3, 20, 12)]  # 16 + one group of 4, three blocks of 4


@pytest.fixture(scope="module")
def sdot_exe(tmp_path_factory):
    """tests/c/sdot_check.c with ec_qconv_sdot.c, built for pi5 (Cortex-A76: the dot product)
    with OpenMP, static: run under qemu-aarch64, whose default CPU has the dot product."""
    from edgecnn.compiler import build as cbuild

    t = targets.get("pi5")
    need("cross", t.compiler_path() is not None and shutil.which(t.qemu) is not None,
         f"needs {t.cc} and {t.qemu} (apt install {t.debian_package} qemu-user)")
    exe = tmp_path_factory.mktemp("sdot") / "sdot_check"
    cmd = [t.cc, *cbuild.cflags(t), "-Werror", "-static", f"-I{RUNTIME_DIR}", "-o", str(exe),
           str(SDOT_CHECK), str(RUNTIME_DIR / "ec_qconv_sdot.c")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"$ {' '.join(cmd)}\n{r.stderr}"
    return t, exe


def run_sdot(sdot_exe, a: dict, wts: dict, x: np.ndarray, p: QConv, shape) -> tuple:
    """The kernel the compiler picks for pi5 (ec_qconv_pointwise_sdot or _direct_sdot) on the
    weights as it packs them, in the scratch it plans (sdot_check.c guards it); returns the
    output and d."""
    t, exe = sdot_exe
    op = SimpleNamespace(kind="qconv2d", attrs=a, weights=wts, inputs=["x"], output="y")
    prog = SimpleNamespace(shapes={"x": x.shape[1:], "y": shape})
    row = kernel_table.choose(op, prog, t)
    direct = row.name == "int8_direct_sdot"
    assert row.name == "int8_pointwise_sdot" or direct, row.name
    packed = row.pack(op, t.nb)
    d = int(packed["d"][0])
    kid = int(a["dtype"] == "int8") + 2 * direct
    data = struct.pack("<i", kid) + bytes(p) + struct.pack("<i", d)
    for v in (x[0], packed["qweight"], packed["requant"]):
        raw = np.ascontiguousarray(v).tobytes()
        data += struct.pack("<q", len(raw)) + raw
    r = subprocess.run([t.qemu, "-L", t.sysroot, str(exe)], input=data, capture_output=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    geometry = tuple(getattr(p, f) for f, _ in p._fields_[:15])
    count = packing.qconv_sdot_direct_scratch_bytes if direct else packing.qconv_sdot_scratch_bytes
    assert struct.unpack("<Q", r.stdout[:8])[0] == count(geometry)
    return np.frombuffer(r.stdout[8:], x.dtype).reshape(shape), d


@pytest.mark.cross
@pytest.mark.parametrize("weights", VNNI_WEIGHTS)
@pytest.mark.parametrize("case", SDOT_CONVS, ids=lambda c: "x".join(map(str, c)))
def test_sdot_pointwise_bit_exact(sdot_exe, case, weights):
    a, wts, x, want, p = vnni_setup(case, weights, zlib.crc32(repr((case, weights)).encode()))
    got, d = run_sdot(sdot_exe, a, wts, x, p, want.shape)
    assert (d == 0) == (weights in ("sym", "fits")), d  # both packings are exercised
    np.testing.assert_array_equal(got, want)


@pytest.mark.cross
@pytest.mark.parametrize("weights", ["zp", "sym"])
@pytest.mark.parametrize("case", VNNI_DIRECT, ids=lambda c: "x".join(map(str, c[:6])))
def test_sdot_direct_bit_exact(sdot_exe, case, weights):
    a, wts, x, want, p = vnni_setup(case, weights, zlib.crc32(repr((case, weights)).encode()))
    got, d = run_sdot(sdot_exe, a, wts, x, p, want.shape)
    assert (d == 0) == (weights == "sym"), d
    np.testing.assert_array_equal(got, want)


@pytest.mark.cross
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_sdot_requantization_bit_exact(sdot_exe, dtype):
    """The NEON requantization after SDOT against edgecnn.quant (see requant_setup)."""
    a, wts, x, want, p = requant_setup(dtype)
    got, _ = run_sdot(sdot_exe, a, wts, x, p, want.shape)
    np.testing.assert_array_equal(got, want)


@pytest.mark.cross
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_sdot_extreme_values_are_exact(sdot_exe, dtype):
    """Activations and weights at the ends of their range (products of -128 x -128 four to a
    lane, uint8 weights 255 from a zero point of 0: w - w_zp beyond int8), the per-pixel sums
    at 64 x 128."""
    lo, hi = quant.qrange(dtype)
    a, wts, x, want, p = _extreme_pointwise(dtype, 4, hi, 0, 255 * 255, lo)
    got, _ = run_sdot(sdot_exe, a, wts, x, p, want.shape)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case, algo", [
    ((5, 7, 16, 9, 1, 1, (0, 0, 0, 0), 1, 1), "int8_pointwise"),
    ((9, 8, 5, 7, 3, 1, (1, 1, 1, 1), 1, 1), "int8_direct")])
def test_sdot_only_where_the_target_has_the_dot_product(case, algo):
    """pi5 (Cortex-A76) takes the SDOT kernels; pi4 (Cortex-A72), generic AArch64 and 32-bit
    ARM keep the int16 ones."""
    a, wts, x, want, p = conv_setup(case, "int8", 5)
    op = SimpleNamespace(kind="qconv2d", attrs=a, weights=wts, inputs=["x"], output="y")
    prog = SimpleNamespace(shapes={"x": x.shape[1:], "y": want.shape})
    chosen = {n: kernel_table.choose(op, prog, targets.get(n)).name
              for n in ("pi5", "pi4", "aarch64", "pi3", "armv7")}
    assert chosen == {"pi5": f"{algo}_sdot", "pi4": algo, "aarch64": algo, "pi3": algo,
                      "armv7": algo}


def test_sdot_direct_needs_unit_dilation_along_x():
    """A dilated window row is not contiguous: the int16 direct kernel keeps it on pi5."""
    a, wts, x, want, p = conv_setup((12, 12, 6, 7, 5, 1, (4, 4, 4, 4), 2, 1), "int8", 5)
    op = SimpleNamespace(kind="qconv2d", attrs=a, weights=wts, inputs=["x"], output="y")
    prog = SimpleNamespace(shapes={"x": x.shape[1:], "y": want.shape})
    assert kernel_table.choose(op, prog, targets.get("pi5")).name == "int8_direct"
