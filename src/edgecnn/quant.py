"""Integer semantics, written once: TensorFlow Lite's 8-bit quantization scheme.

Every integer layer kind, the TFLite importer and the quantizer use these functions; nothing
else re-derives them.

Scheme (TFLite's, see tensorflow/lite/kernels/internal/common.h and quantization_util.cc):

- A real value r is stored as q with ``r = scale * (q - zero_point)``.
- Activations are uint8 (0..255) or int8 (-128..127), asymmetric: one scale and zero point per
  tensor. The zero point is itself an integer of the tensor's type, so real 0 is exact (the
  padding of a convolution is the zero point).
- Weights are int8 and symmetric (zero point 0) with one scale per output channel, or, in
  legacy uint8 models, uint8 with one scale and zero point for the whole tensor.
- Biases are int32 with scale = input scale x weight scale and zero point 0, so they add
  straight into the int32 accumulator.
- Requantization: a conv/dense accumulator ``acc`` (int32) becomes the output by the real
  multiplier M = input_scale * weight_scale / output_scale, held as a Q31 fixed-point
  multiplier ``m`` in [2^30, 2^31) and a power-of-two exponent ``shift`` (M = m * 2^(shift-31)):
  ``out = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc << max(shift, 0), m),
  max(-shift, 0)) + output_zero_point``, then clamped. Both roundings are gemmlowp's: the high
  multiply rounds half away from zero, the divide by 2^e rounds half away from zero.
- A fused activation (relu, relu6) is a clamp of the output's quantized range.
- Average pooling sums the window's raw values and divides rounding half away from zero
  (input and output share scale and zero point). Max pooling compares raw values.
- Add rescales both inputs to a common scale (2 x the larger input scale) with 20 extra bits
  of headroom, adds, and requantizes to the output (TFLite's legacy 8-bit Add).
- Concatenation copies inputs that share the output's parameters; others are rescaled in
  float32 with round-half-away (TFLite's ConcatenationWithScaling, a float step TFLite has).
- Softmax (8-bit) is gemmlowp's fixed-point exp and reciprocal (tflite reference_ops::Softmax).

Arrays: the numpy functions below take int64 arrays holding int32 values (numpy has no
widening int32 multiply); results are int64 arrays holding int32 values.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import GraphError

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
RANGES = {"uint8": (0, 255), "int8": (-128, 127)}
DTYPES = {"uint8": np.uint8, "int8": np.int8, "int32": np.int32}


def qrange(dtype: str) -> tuple[int, int]:
    try:
        return RANGES[dtype]
    except KeyError:
        raise GraphError(f"integer type must be uint8 or int8, got {dtype!r}") from None


# ---- fixed-point parameters -------------------------------------------------------------------

def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = m * 2^(shift - 31), m in [2^30, 2^31) (or 0).

    frexp gives real = f * 2^shift with f in [0.5, 1); m = round(f * 2^31) (half away from
    zero); a rounding up to 2^31 moves one bit into the exponent."""
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0:
        raise GraphError(f"a requantization multiplier must be finite and positive, got {real}")
    f, shift = math.frexp(real)
    m = int(math.floor(abs(f) * (1 << 31) + 0.5))
    if m == 1 << 31:
        m //= 2
        shift += 1
    if shift < -31:  # too small to represent: the product is always 0
        return 0, 0
    return m, shift


def conv_multipliers(input_scale: float, weight_scales, output_scale: float,
                     legacy: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (or one) (multiplier, shift) of a conv/dense layer, int32 arrays.

    TFLite computes the uint8 (legacy, per-tensor) multiplier from the float32 product
    input_scale * weight_scale (GetQuantizedConvolutionMultipler), and the int8 per-channel
    ones in double (PopulateConvolutionQuantizationParams); we follow both to the bit."""
    ws = np.atleast_1d(np.asarray(weight_scales, np.float32))
    si, so = np.float32(input_scale), np.float32(output_scale)
    pairs = []
    for s in ws:
        # legacy: the float32 product, widened; else the product in double
        real = float(np.float32(si * s)) / float(so) if legacy else float(si) * float(s) / float(so)
        pairs.append(quantize_multiplier(real))
    m, e = zip(*pairs, strict=True)
    return np.array(m, np.int32), np.array(e, np.int32)


def activation_range(function: str | None, scale: float, zero_point: int,
                     dtype: str) -> tuple[int, int]:
    """The clamp of a fused activation on the output grid (CalculateActivationRangeQuantized):
    relu [q(0), max], relu6 [q(0), q(6)], none the type's range; q(r) = zp + round(r / s) in
    float32, rounding half away from zero."""
    lo, hi = qrange(dtype)

    def q(r: float) -> int:
        return zero_point + int(round_half_away(np.float32(r) / np.float32(scale)))

    if function is None:
        return lo, hi
    if function == "relu":
        return max(lo, q(0.0)), hi
    if function == "relu6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    raise GraphError(f"fused activation {function!r} has no integer form (relu, relu6 or none)")


def round_half_away(v: np.ndarray) -> np.ndarray:
    """std::round, exactly: the fraction |v| - floor(|v|) is exact in floating point."""
    a = np.abs(v)
    r = np.floor(a)
    return np.sign(v) * (r + (a - r >= 0.5))


# ---- gemmlowp arithmetic, vectorized -----------------------------------------------------------

def srdhm(a: np.ndarray, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul: round(a * b / 2^31) half away from zero, int32 range.

    gemmlowp adds a nudge of 2^30 (1 - 2^30 when negative) and divides by 2^31 truncating;
    here, the same on the magnitude: (|ab| + 2^30 - [ab < 0]) >> 31, sign restored. The only
    overflow (a = b = INT32_MIN) saturates to INT32_MAX. In place on one temporary: the
    reference spends most of its time here."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    neg = ab < 0
    np.abs(ab, out=ab)
    ab += 1 << 30
    np.subtract(ab, neg, out=ab, casting="unsafe")
    ab >>= 31
    np.negative(ab, out=ab, where=neg)
    if np.any(b == INT32_MIN):
        ab = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, ab)
    return ab


def rounding_divide_by_pot(x: np.ndarray, exponent) -> np.ndarray:
    """RoundingDivideByPOT: x / 2^exponent rounded half away from zero (exponent 0..31):
    floor(x / 2^e) + [remainder > (2^e - 1) / 2 (rounded down), plus 1 when x < 0]."""
    x = np.asarray(x, np.int64)
    e = np.asarray(exponent, np.int64)
    if e.ndim == 0 and e == 0:
        return x
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    np.subtract(remainder, x < 0, out=remainder, casting="unsafe")
    out = x >> e
    np.add(out, remainder > (mask >> 1), out=out, casting="unsafe")
    return out


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier (double rounding): x * m * 2^(shift - 31).

    ``multiplier`` and ``shift`` broadcast against x (per channel on the last axis)."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(srdhm(np.asarray(x, np.int64) << left, multiplier), right)


def saturating_left_shift(x: np.ndarray, e: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingMultiplyByPOT for a positive exponent."""
    threshold = (1 << (31 - e)) - 1
    out = np.asarray(x, np.int64) << e
    out = np.where(x > threshold, INT32_MAX, out)
    return np.where(x < -threshold, INT32_MIN, out)


def requantize(acc: np.ndarray, multiplier, shift, zero_point: int, lo: int, hi: int,
               dtype: str) -> np.ndarray:
    """int32 accumulator → the output type: scale, add the zero point, clamp to [lo, hi]."""
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + zero_point
    return np.clip(out, lo, hi).astype(DTYPES[dtype])


# ---- tensors ---------------------------------------------------------------------------------

def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """float → integer as TFLite's QUANTIZE: round(x / scale) (float32, half away) + zp."""
    lo, hi = qrange(dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN: clamped below
        r = round_half_away(np.asarray(x, np.float32) / np.float32(scale))
    # clamped to +-1e6 before the integer cast, NaN to -1e6 (the type's minimum), as the C
    # runtime's round_clamped: +inf saturates to the maximum
    r = np.nan_to_num(np.clip(r, -1e6, 1e6), nan=-1e6)
    return np.clip(r.astype(np.int64) + zero_point, lo, hi).astype(DTYPES[dtype])


def dequantize(q: np.ndarray, scale, zero_point) -> np.ndarray:
    """integer → float32: scale * (q - zero_point), the product in double (TFLite's
    DEQUANTIZE widens the float32 scale), then rounded to float32."""
    return (np.float64(np.float32(scale)) * (np.asarray(q, np.int64) - int(zero_point))
            ).astype(np.float32)


# ---- joins and softmax -----------------------------------------------------------------------

ADD_LEFT_SHIFT = 20  # headroom bits of TFLite's 8-bit Add


def add_params(scale1: float, scale2: float, out_scale: float) -> dict:
    """Multipliers of TFLite's 8-bit Add: inputs to 2 * max(scale) (with 2^20 headroom), sum
    to the output. Float32 scales widened to double, as TFLite's Prepare does."""
    twice_max = float(2 * max(np.float32(scale1), np.float32(scale2)))
    m1, e1 = quantize_multiplier(float(np.float32(scale1)) / twice_max)
    m2, e2 = quantize_multiplier(float(np.float32(scale2)) / twice_max)
    mo, eo = quantize_multiplier(twice_max / float(np.float32((1 << ADD_LEFT_SHIFT)
                                                              * np.float32(out_scale))))
    return {"input1_multiplier": m1, "input1_shift": e1, "input2_multiplier": m2,
            "input2_shift": e2, "output_multiplier": mo, "output_shift": eo}


def add(x1: np.ndarray, x2: np.ndarray, zp1: int, zp2: int, p: dict, out_zp: int, lo: int,
        hi: int, dtype: str) -> np.ndarray:
    """TFLite's 8-bit Add on two same-shaped tensors; ``p`` from :func:`add_params`."""
    a = (x1.astype(np.int64) - zp1) << ADD_LEFT_SHIFT
    b = (x2.astype(np.int64) - zp2) << ADD_LEFT_SHIFT
    a = multiply_by_quantized_multiplier(a, p["input1_multiplier"], p["input1_shift"])
    b = multiply_by_quantized_multiplier(b, p["input2_multiplier"], p["input2_shift"])
    return requantize(a + b, p["output_multiplier"], p["output_shift"], out_zp, lo, hi, dtype)


def rescale_concat_input(x: np.ndarray, scale: float, zp: int, out_scale: float, out_zp: int,
                         dtype: str) -> np.ndarray:
    """One input of TFLite's ConcatenationWithScaling: round(q * s + b) + out_zp in float32,
    s = scale * (1 / out_scale), b = -zp * s; identical parameters copy the values."""
    if np.float32(scale) == np.float32(out_scale) and zp == out_zp:
        return x
    lo, hi = qrange(dtype)
    s = np.float32(scale) * (np.float32(1) / np.float32(out_scale))
    b = np.float32(-zp) * s
    r = round_half_away(x.astype(np.float32) * s + b)
    return np.clip(r.astype(np.int64) + out_zp, lo, hi).astype(DTYPES[dtype])


SOFTMAX_DIFF_BITS = 5  # the exp input is Q5.26
SOFTMAX_ACCUM_BITS = 12  # the sum of exps is Q12.19


def softmax_params(input_scale: float, beta: float = 1.0) -> dict:
    """PreprocessSoftmaxScaling and CalculateInputRadius of TFLite's reference softmax."""
    real = min(beta * float(np.float32(input_scale)) * (1 << (31 - SOFTMAX_DIFF_BITS)),
               float((1 << 31) - 1))
    m, left = quantize_multiplier(real)
    radius = ((1 << SOFTMAX_DIFF_BITS) - 1) * (1 << (31 - SOFTMAX_DIFF_BITS)) / (1 << left)
    return {"input_multiplier": m, "input_left_shift": left, "diff_min": -math.floor(radius)}


def _exp_quarter_interval(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 → Q0.31: Taylor series around -1/8 (gemmlowp)."""
    constant_term = 1895147668  # exp(-1/8)
    one_third = 715827883
    x = a + (1 << 28)  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, one_third) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


# exp(-2^k) in Q0.31 for the bits k = -2..4 of a Q5.26 magnitude (gemmlowp's barrel shifter)
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    """exp(a) for a <= 0 in Q5.26, result Q0.31 (gemmlowp's exp_on_negative_values)."""
    quarter = 1 << (26 - 2)
    mod_minus_quarter = (a & (quarter - 1)) - quarter
    result = _exp_quarter_interval(saturating_left_shift(mod_minus_quarter, SOFTMAX_DIFF_BITS))
    remainder = mod_minus_quarter - a
    for k, mult in _EXP_BARREL:
        bit = (remainder & (1 << (26 + k))) != 0
        result = np.where(bit, srdhm(result, mult), result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1), Q0.31 → Q0.31: Newton-Raphson in Q2.29 (gemmlowp)."""
    half_denominator = (a + np.int64(INT32_MAX) + 1) >> 1  # RoundingHalfSum(a, one), a >= 0
    x = 1515870810 + srdhm(half_denominator, -1010580540)  # 48/17 - 32/17 * d, Q2.29
    for _ in range(3):
        one_minus = (1 << 29) - srdhm(half_denominator, x)
        x = x + saturating_left_shift(srdhm(x, one_minus), 2)
    return saturating_left_shift(x, 1)


def softmax(x: np.ndarray, p: dict, dtype: str) -> np.ndarray:
    """TFLite's reference 8-bit softmax over the last axis; output scale 1/256, zero point
    the type's minimum (0 for uint8, -128 for int8)."""
    lo, hi = qrange(dtype)
    q = x.astype(np.int64)
    diff = q - q.max(axis=-1, keepdims=True)
    used = diff >= p["diff_min"]
    scaled = srdhm(diff << p["input_left_shift"], p["input_multiplier"])
    e = np.where(used, exp_on_negative_values(scaled), 0)
    total = rounding_divide_by_pot(e, SOFTMAX_ACCUM_BITS).sum(axis=-1, keepdims=True)
    # GetReciprocal: normalise the Q12.19 sum to [1, 2), invert, remember the shift
    headroom = 32 - np.frexp(total.astype(np.float64))[1].astype(np.int64)  # clz of uint32
    bits_over_unit = SOFTMAX_ACCUM_BITS - headroom
    shifted = ((total << headroom) & 0xFFFFFFFF) - (1 << 31)
    scale = _one_over_one_plus_x(shifted)
    exponent = bits_over_unit + 31 - 8
    out = rounding_divide_by_pot(srdhm(scale, e), exponent) + lo
    return np.where(used, np.clip(out, lo, hi), lo).astype(DTYPES[dtype])
