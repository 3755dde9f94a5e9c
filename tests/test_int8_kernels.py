"""The portable C int8/uint8 kernels (runtime/ec_int8.c) against the numpy integer reference
(the q* layer kinds), bit for bit, built with gcc and clang in C99 with -Wall -Wextra -Werror.
(They are not yet called by generated code: the compiler refuses integer graphs.)"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from conftest import need
from edgecnn import quant
from edgecnn.compiler.build import RUNTIME_DIR
from edgecnn.layers import get_kind

I32 = ctypes.c_int32


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


@pytest.fixture(scope="module", params=["gcc", "clang"])
def lib(request, tmp_path_factory):
    cc = shutil.which(request.param)
    need("clang" if request.param == "clang" else "cc", cc is not None,
         f"needs {request.param}")
    out = tmp_path_factory.mktemp("int8") / "libec_int8.so"
    subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    "-o", str(out), str(RUNTIME_DIR / "ec_int8.c")], check=True)
    return ctypes.CDLL(str(out))


def ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def call(fn, params, *arrays):
    fn.restype = None
    fn(ctypes.byref(params), *(a if isinstance(a, int) else ptr(a) for a in arrays))


CONVS = [  # (h, w, c, filters, kernel, stride, padding (t, l, b, r), dilation, groups)
    (9, 8, 5, 7, 3, 1, (1, 1, 1, 1), 1, 1),
    (11, 10, 6, 12, 3, 2, (0, 0, 1, 1), 1, 6),  # depthwise, multiplier 2, TF "SAME" at stride 2
    (8, 8, 4, 6, 3, 1, (2, 2, 2, 2), 2, 2),  # grouped, dilated
    (5, 7, 16, 9, 1, 1, (0, 0, 0, 0), 1, 1),  # pointwise
]


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qconv2d_bit_exact(lib, case, dtype):
    h, w, c, o, k, s, pad, d, g = case
    rng = np.random.default_rng(hash(case) % 1000)
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
    p = QConv(h, w, c, oh, ow, o, k, k, s, s, d, d, pad[0], pad[1], g, int(per_channel),
              a["input_zero_point"], a["weight_zero_point"], a["output_zero_point"],
              a["act_min"], a["act_max"])
    got = np.zeros_like(want)
    fn = lib.ec_qconv2d_i8 if dtype == "int8" else lib.ec_qconv2d_u8
    call(fn, p, np.ascontiguousarray(x[0]), wts["weight"], wts["bias"], m, e, got)
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) > 10  # not a saturated, constant output


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("kind_name", ["qavgpool", "qmaxpool"])
def test_qpool_bit_exact(lib, dtype, kind_name):
    rng = np.random.default_rng(7)
    lo, hi = quant.qrange(dtype)
    kind = get_kind(kind_name)
    for h, w, k, s, pad in ((7, 7, 7, 1, (0, 0, 0, 0)), (9, 8, 3, 2, (1, 1, 1, 1)),
                            (6, 6, 2, 2, (0, 0, 0, 0))):
        a = kind.normalize_attrs(dict(kernel=k, stride=s, padding=pad, dtype=dtype, scale=0.1,
                                      zero_point=0, act_min=lo + 1, act_max=hi - 2), "t")
        oh, ow, c = kind.output_shape(a, [(h, w, 5)])
        x = rng.integers(lo, hi + 1, (1, h, w, 5)).astype(dtype)
        want = kind.forward(a, [x], {})[0]
        got = np.zeros_like(want)
        fn = getattr(lib, f"ec_{kind_name}_{'i8' if dtype == 'int8' else 'u8'}")
        call(fn, QPool(h, w, 5, oh, ow, k, k, s, s, pad[0], pad[1], lo + 1, hi - 2),
             np.ascontiguousarray(x[0]), got)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qadd_bit_exact(lib, dtype):
    rng = np.random.default_rng(8)
    lo, hi = quant.qrange(dtype)
    a_, b_ = (rng.integers(lo, hi + 1, 5000).astype(dtype) for _ in range(2))
    zp1, zp2, zo = (int(v) for v in rng.integers(lo, hi, 3))
    pr = quant.add_params(0.05, 0.08, 0.11)
    want = quant.add(a_, b_, zp1, zp2, pr, zo, lo, hi, dtype)
    got = np.zeros_like(want)
    p = QAdd(zp1, zp2, zo, lo, hi, pr["input1_multiplier"], pr["input1_shift"],
             pr["input2_multiplier"], pr["input2_shift"], pr["output_multiplier"],
             pr["output_shift"])
    fn = lib.ec_qadd_i8 if dtype == "int8" else lib.ec_qadd_u8
    fn.restype = None
    fn(ctypes.byref(p), ptr(a_), ptr(b_), ctypes.c_long(len(a_)), ptr(got))
    np.testing.assert_array_equal(got, want)


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
