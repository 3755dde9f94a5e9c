"""edgecnn.quant: TFLite's integer arithmetic, checked against Python integers and fractions
(exact, independent of numpy's int64 tricks) and worked examples."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from edgecnn import quant

INT32 = (-(1 << 31), (1 << 31) - 1)


def py_srdhm(a: int, b: int) -> int:
    """gemmlowp's definition, in Python integers: (ab + nudge) / 2^31 truncated toward 0."""
    if a == b == INT32[0]:
        return INT32[1]
    ab = a * b
    t = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    q = abs(t) >> 31
    return q if t >= 0 else -q


def py_round_half_away(f: Fraction) -> int:
    n = abs(f)
    r = int(n)  # floor of a non-negative fraction
    if n - r >= Fraction(1, 2):
        r += 1
    return r if f >= 0 else -r


def test_srdhm_against_python_integers():
    rng = np.random.default_rng(0)
    a = rng.integers(*INT32, 4000, endpoint=True)
    b = rng.integers(*INT32, 4000, endpoint=True)
    a[:4] = [INT32[0], INT32[0], INT32[1], 0]
    b[:4] = [INT32[0], INT32[1], INT32[1], 5]
    got = quant.srdhm(a, b)
    assert got.tolist() == [py_srdhm(int(x), int(y)) for x, y in zip(a, b, strict=True)]
    assert got[0] == INT32[1]  # the one saturating case


@pytest.mark.parametrize("e", [0, 1, 2, 5, 13, 31])
def test_rounding_divide_by_pot_rounds_half_away(e):
    rng = np.random.default_rng(e)
    x = np.concatenate([rng.integers(*INT32, 2000), np.arange(-40, 41),
                        [(1 << e) // 2, -((1 << e) // 2)]]).astype(np.int64)
    want = [py_round_half_away(Fraction(int(v), 1 << e)) for v in x]
    assert quant.rounding_divide_by_pot(x, e).tolist() == want


def test_quantize_multiplier_worked_examples():
    assert quant.quantize_multiplier(0.5) == (1 << 30, 0)
    assert quant.quantize_multiplier(1.0) == (1 << 30, 1)
    assert quant.quantize_multiplier(0.75) == (3 << 29, 0)
    assert quant.quantize_multiplier(1 - 2.0 ** -40) == (1 << 30, 1)  # rounds up to 2^31
    assert quant.quantize_multiplier(2.0 ** -40) == (0, 0)  # below 2^-31: zero
    assert quant.quantize_multiplier(0.0) == (0, 0)


def test_quantize_multiplier_is_accurate():
    for real in np.random.default_rng(1).uniform(1e-5, 4.0, 500):
        m, shift = quant.quantize_multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31)
        assert abs(Fraction(m) * Fraction(2) ** (shift - 31) - Fraction(real)) <= \
            Fraction(2) ** (shift - 32)


def test_multiply_by_quantized_multiplier_is_within_one_of_exact():
    """Double rounding (high multiply, then divide) is at most 1 from the exact product."""
    rng = np.random.default_rng(2)
    x = rng.integers(-(1 << 24), 1 << 24, 3000)
    for real in (0.0007, 0.013, 0.4, 0.999, 1.7, 3.2):
        m, s = quant.quantize_multiplier(real)
        got = quant.multiply_by_quantized_multiplier(x, m, s)
        exact = [py_round_half_away(Fraction(int(v)) * m * Fraction(2) ** (s - 31)) for v in x]
        diff = np.abs(got - np.array(exact))
        assert diff.max() <= 1
        # and is gemmlowp's composition exactly
        left, right = max(s, 0), max(-s, 0)
        want = [py_round_half_away(Fraction(py_srdhm(int(v) << left, m), 1 << right))
                for v in x[:300]]
        assert got[:300].tolist() == want


def test_activation_range_relu6_and_relu():
    # MobileNet's relu6 outputs: scale 6/255, zero point 0 → the full uint8 range
    assert quant.activation_range("relu6", 0.023528477, 0, "uint8") == (0, 255)
    # int8, scale 0.03, zero point -128: relu6 stops at -128 + round(6 / 0.03) = 72
    assert quant.activation_range("relu6", 0.03, -128, "int8") == (-128, 72)
    assert quant.activation_range("relu", 0.1, 10, "uint8") == (10, 255)
    assert quant.activation_range(None, 0.1, 10, "int8") == (-128, 127)


def test_quantize_dequantize_round_trip_and_ties():
    q = np.arange(-128, 128).astype(np.int8)
    for scale, zp in ((1 / 128, 0), (0.0371, -7), (0.2, 100 - 128)):
        assert np.array_equal(quant.quantize(quant.dequantize(q, scale, zp), scale, zp, "int8"),
                              q)
    x = np.array([-0.25, -0.15, -0.05, 0.05, 0.15, 0.25, 100.0, -100.0], np.float32)
    # x / 0.1 = -2.5 → -3 (half away), -1.5 → -2, ... then + 3 and clamp
    assert quant.quantize(x, 0.1, 3, "int8").tolist() == [0, 1, 2, 4, 5, 6, 127, -128]


def test_softmax_is_close_to_the_real_softmax():
    """Not the exactness check (that is LiteRT's, tests/test_int_tflite.py): the fixed-point
    exp and reciprocal must land within 1/256 of the float softmax."""
    rng = np.random.default_rng(3)
    for scale in (0.05, 0.0989, 0.2):
        q = rng.integers(0, 256, (50, 1001)).astype(np.uint8)
        q[:, 7] = 255  # one clear winner as well
        p = quant.softmax(q, quant.softmax_params(scale), "uint8")
        real = scale * q.astype(np.float64)
        e = np.exp(real - real.max(1, keepdims=True))
        want = e / e.sum(1, keepdims=True)
        assert np.abs(p / 256 - want).max() <= 1.5 / 256
        assert p.dtype == np.uint8


def test_add_matches_the_real_sum_within_a_step():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, 5000).astype(np.uint8)
    b = rng.integers(0, 256, 5000).astype(np.uint8)
    (s1, z1), (s2, z2), (so, zo) = (0.05, 120), (0.08, 131), (0.11, 128)
    p = quant.add_params(s1, s2, so)
    got = quant.add(a, b, z1, z2, p, zo, 0, 255, "uint8")
    real = s1 * (a.astype(float) - z1) + s2 * (b.astype(float) - z2)
    want = np.clip(np.round(real / so) + zo, 0, 255)
    assert np.abs(got.astype(int) - want).max() <= 1
