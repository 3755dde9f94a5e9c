"""The portable C int8/uint8 kernels (runtime/ec_int8.c) against the numpy integer reference
(the q* layer kinds), bit for bit: built with gcc and clang as C99 with -Wall -Wextra -Werror
and called through ctypes, and cross-built for ARM (armhf, aarch64) and run under qemu-user
through tests/c/int8_check.c. (Generated code does not call them yet: the compiler refuses
integer graphs.)"""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import need
from edgecnn import quant
from edgecnn.compiler import targets
from edgecnn.compiler.build import RUNTIME_DIR
from edgecnn.layers import get_kind

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
    h, w, c, o, k, s, pad, d, g = case
    rng = np.random.default_rng(sum(map(hash, map(str, case))) % 1000)
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
    return Case(f"ec_qconv2d_{SUFFIX[dtype]}", int(dtype == "int8"), p,
                [x[0], wts["weight"], wts["bias"], m, e], want)


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
