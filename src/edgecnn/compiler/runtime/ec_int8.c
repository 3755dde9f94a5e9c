/* Portable 8-bit integer kernels (declared in ec_conv.h, ec_pool.h, ec_eltwise.h, ec_norm.h,
 * ec_quant.h and ec_tensor.h): TFLite's reference arithmetic.
 * Sources of the rules: tensorflow/lite/kernels/internal/common.h (MultiplyByQuantizedMultiplier),
 * gemmlowp fixedpoint.h (SaturatingRoundingDoublingHighMul, RoundingDivideByPOT),
 * reference conv / pooling / add kernels; edgecnn/quant.py documents them once. */
#include "ec_conv.h"
#include "ec_eltwise.h"
#include "ec_norm.h"
#include "ec_pool.h"
#include "ec_quant.h"
#include "ec_tensor.h"

/* The float steps of the integer kernels (quantize, dequantize, the concatenation's rescale)
 * must round exactly as TFLite and numpy do. The ARMv7 targets build with
 * -funsafe-math-optimizations (NEON floats), under which GCC turns x / scale into
 * x * (1 / scale) and changes a quantized value: not in this file. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-unsafe-math-optimizations")
#endif

#include <limits.h>
#include <math.h>
#include <string.h>

int32_t ec_srdhm(int32_t a, int32_t b)
{
    /* round(a * b / 2^31), half away from zero; the only overflow saturates */
    int64_t ab, nudge;
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates */
}

int32_t ec_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* x >> e on a negative int32 is an arithmetic shift on every target we build for */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t ec_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return ec_rounding_divide_by_pot(
        ec_srdhm((int32_t)((int64_t)x * ((int64_t)1 << left)), multiplier), right);
}

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* One kernel body for both types: T is uint8_t or int8_t. */
#define EC_QCONV2D(NAME, T)                                                                        \
    void NAME(const ec_qconv_params *p, const T *x, const T *wt, const int32_t *bias,              \
              const int32_t *mult, const int32_t *shift, T *y)                                     \
    {                                                                                              \
        const int cin_g = p->c / p->groups, cout_g = p->o / p->groups;                             \
        int oy, ox, o, i, ky, kx;                                                                  \
        for (oy = 0; oy < p->oh; oy++)                                                             \
            for (ox = 0; ox < p->ow; ox++)                                                         \
                for (o = 0; o < p->o; o++) {                                                       \
                    const int g = o / cout_g, q = p->per_channel ? o : 0;                          \
                    int32_t acc = bias ? bias[o] : 0;                                              \
                    for (ky = 0; ky < p->kh; ky++) {                                               \
                        const int iy = oy * p->sh + ky * p->dh - p->pad_top;                       \
                        if (iy < 0 || iy >= p->h) continue; /* padding: the zero point */          \
                        for (kx = 0; kx < p->kw; kx++) {                                           \
                            const int ix = ox * p->sw + kx * p->dw - p->pad_left;                  \
                            const T *xp, *wp;                                                      \
                            if (ix < 0 || ix >= p->w) continue;                                    \
                            xp = x + ((long)iy * p->w + ix) * p->c + g * cin_g;                    \
                            wp = wt + (((long)o * cin_g) * p->kh + ky) * p->kw + kx;               \
                            for (i = 0; i < cin_g; i++)                                            \
                                acc += ((int32_t)xp[i] - p->in_zp)                                 \
                                       * ((int32_t)wp[(long)i * p->kh * p->kw] - p->w_zp);         \
                        }                                                                          \
                    }                                                                              \
                    acc = ec_multiply_by_quantized_multiplier(acc, mult[q], shift[q]) + p->out_zp; \
                    y[((long)oy * p->ow + ox) * p->o + o] =                                        \
                        (T)clamp32(acc, p->act_min, p->act_max);                                   \
                }                                                                                  \
    }

EC_QCONV2D(ec_qconv2d_u8, uint8_t)
EC_QCONV2D(ec_qconv2d_i8, int8_t)

/* Average: real cells only, (sum + n/2) / n rounded half away from zero. Max: real cells.
 * The window is clipped to the input once per output pixel, and the channels are the inner loop
 * (contiguous in NHWC, in chunks of EC_QPOOL_CHUNK accumulators), so it vectorizes. */
#define EC_QPOOL_CHUNK 64
#define EC_QPOOL(NAME, T, AVG)                                                                     \
    void NAME(const ec_qpool_params *p, const T *x, T *y)                                          \
    {                                                                                              \
        int oy, ox, c0, ky, kx, i;                                                                 \
        for (oy = 0; oy < p->oh; oy++)                                                             \
            for (ox = 0; ox < p->ow; ox++) {                                                       \
                const int y0 = oy * p->sh - p->pad_top, x0 = ox * p->sw - p->pad_left;             \
                int ky0, ky1, kx0, kx1; /* the clipped window, then relative to (y0, x0) */        \
                ec_pool_window(oy, ox, p->sh, p->sw, p->pad_top, p->pad_left, p->kh, p->kw, p->h,  \
                               p->w, &ky0, &ky1, &kx0, &kx1);                                      \
                ky0 -= y0, ky1 -= y0, kx0 -= x0, kx1 -= x0;                                        \
                const int32_t n = ky1 > ky0 && kx1 > kx0 ? (ky1 - ky0) * (kx1 - kx0) : 0;          \
                T *dst = y + ((long)oy * p->ow + ox) * p->c;                                       \
                for (c0 = 0; c0 < p->c; c0 += EC_QPOOL_CHUNK) {                                    \
                    const int cn = p->c - c0 < EC_QPOOL_CHUNK ? p->c - c0 : EC_QPOOL_CHUNK;        \
                    int32_t acc[EC_QPOOL_CHUNK];                                                   \
                    for (i = 0; i < cn; i++) acc[i] = AVG ? 0 : INT32_MIN;                         \
                    for (ky = ky0; ky < ky1; ky++)                                                 \
                        for (kx = kx0; kx < kx1; kx++) {                                           \
                            const T *src = x + ((long)(y0 + ky) * p->w + x0 + kx) * p->c + c0;     \
                            for (i = 0; i < cn; i++) {                                             \
                                const int32_t v = src[i];                                          \
                                if (AVG)                                                           \
                                    acc[i] += v;                                                   \
                                else                                                               \
                                    acc[i] = v > acc[i] ? v : acc[i];                              \
                            }                                                                      \
                        }                                                                          \
                    for (i = 0; i < cn; i++) {                                                     \
                        int32_t v = acc[i];                                                        \
                        if (AVG && n > 0) v = v >= 0 ? (v + n / 2) / n : (v - n / 2) / n;          \
                        dst[c0 + i] = (T)clamp32(v, p->act_min, p->act_max);                       \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
    }

EC_QPOOL(ec_qavgpool_u8, uint8_t, 1)
EC_QPOOL(ec_qavgpool_i8, int8_t, 1)
EC_QPOOL(ec_qmaxpool_u8, uint8_t, 0)
EC_QPOOL(ec_qmaxpool_i8, int8_t, 0)

/* TFLite's 8-bit add: both inputs to a common scale with 2^20 headroom, then the output's */
#define EC_QADD(NAME, T)                                                                           \
    void NAME(const ec_qadd_params *p, const T *a, const T *b, long n, T *y)                       \
    {                                                                                              \
        long i;                                                                                    \
        for (i = 0; i < n; i++) {                                                                  \
            const int32_t va = ((int32_t)a[i] - p->zp1) * (1 << 20);                               \
            const int32_t vb = ((int32_t)b[i] - p->zp2) * (1 << 20);                               \
            const int32_t sum = ec_multiply_by_quantized_multiplier(va, p->m1, p->s1)              \
                                + ec_multiply_by_quantized_multiplier(vb, p->m2, p->s2);           \
            const int32_t out =                                                                    \
                ec_multiply_by_quantized_multiplier(sum, p->mo, p->so) + p->out_zp;                \
            y[i] = (T)clamp32(out, p->act_min, p->act_max);                                        \
        }                                                                                          \
    }

EC_QADD(ec_qadd_u8, uint8_t)
EC_QADD(ec_qadd_i8, int8_t)

/* ---- the model's edges --------------------------------------------------------------------- */

/* round(v) half away from zero (roundf), clamped in float first so the conversion is defined */
static int32_t round_clamped(float v)
{
    float r = roundf(v);
    if (!(r > -1e6f)) r = -1e6f; /* NaN too: the type's minimum, as the reference */
    if (r > 1e6f) r = 1e6f;
    return (int32_t)r;
}

#define EC_QUANTIZE(NAME, T, LO, HI)                                                               \
    void NAME(const ec_tensor *x, T *y, float scale, int32_t zero_point)                           \
    {                                                                                              \
        int yy, xx, ch;                                                                            \
        for (yy = 0; yy < x->h; yy++)                                                              \
            for (xx = 0; xx < x->w; xx++) {                                                        \
                const float *src = EC_AT(x, yy, xx);                                               \
                T *dst = y + ((long)yy * x->w + xx) * x->c;                                        \
                for (ch = 0; ch < x->c; ch++) /* the division in float32, as TFLite */             \
                    dst[ch] = (T)clamp32(round_clamped(src[ch] / scale) + zero_point, LO, HI);     \
            }                                                                                      \
    }

EC_QUANTIZE(ec_quantize_u8, uint8_t, 0, 255)
EC_QUANTIZE(ec_quantize_i8, int8_t, -128, 127)

#define EC_QUANTIZE_FLAT(NAME, T, LO, HI)                                                          \
    void NAME(const float *x, long n, T *y, float scale, int32_t zero_point)                       \
    {                                                                                              \
        long i;                                                                                    \
        for (i = 0; i < n; i++)                                                                    \
            y[i] = (T)clamp32(round_clamped(x[i] / scale) + zero_point, LO, HI);                   \
    }

EC_QUANTIZE_FLAT(ec_quantize_flat_u8, uint8_t, 0, 255)
EC_QUANTIZE_FLAT(ec_quantize_flat_i8, int8_t, -128, 127)

/* scale * (q - zero_point): the product in double, rounded once to float32 (TFLite widens) */
#define EC_DEQUANTIZE(NAME, T)                                                                     \
    void NAME(const T *x, ec_tensor *y, float scale, int32_t zero_point)                           \
    {                                                                                              \
        int yy, xx, ch;                                                                            \
        for (yy = 0; yy < y->h; yy++)                                                              \
            for (xx = 0; xx < y->w; xx++) {                                                        \
                const T *src = x + ((long)yy * y->w + xx) * y->c;                                  \
                float *dst = EC_AT(y, yy, xx);                                                     \
                for (ch = 0; ch < y->c; ch++)                                                      \
                    dst[ch] = (float)((double)scale * (double)((int32_t)src[ch] - zero_point));    \
            }                                                                                      \
    }

EC_DEQUANTIZE(ec_dequantize_u8, uint8_t)
EC_DEQUANTIZE(ec_dequantize_i8, int8_t)

/* y = lut[x]: an elementwise integer function of one 8-bit input as its 256 values (computed
 * at compile time by the reference itself, so exact by construction). */
void ec_qlut_u8(const uint8_t *x, long n, const uint8_t *lut, uint8_t *y)
{
    long i;
    for (i = 0; i < n; i++) y[i] = lut[x[i]];
}

void ec_qlut_i8(const int8_t *x, long n, const int8_t *lut, int8_t *y)
{
    long i;
    for (i = 0; i < n; i++) y[i] = lut[(int)x[i] + 128];
}

/* q * s and + b each rounded to float32 as numpy and TFLite do: the double product of an
 * 8-bit integer and a float is exact, and a double sum of two floats rounds to the float sum;
 * no fused multiply-add can form across the conversions. */
#define EC_QCONCAT(NAME, T, LO, HI)                                                                \
    void NAME(const T *x, int c_in, long pixels, T *y, int c_out, int c0, int same, float s,       \
              float b, int32_t out_zp)                                                             \
    {                                                                                              \
        long i;                                                                                    \
        int ch;                                                                                    \
        for (i = 0; i < pixels; i++) {                                                             \
            const T *src = x + i * c_in;                                                           \
            T *dst = y + i * c_out + c0;                                                           \
            if (same) {                                                                            \
                memcpy(dst, src, (size_t)c_in * sizeof(T));                                        \
                continue;                                                                          \
            }                                                                                      \
            for (ch = 0; ch < c_in; ch++) {                                                        \
                const float prod = (float)((double)src[ch] * (double)s);                           \
                const float sum = (float)((double)prod + (double)b);                               \
                dst[ch] = (T)clamp32(round_clamped(sum) + out_zp, LO, HI);                         \
            }                                                                                      \
        }                                                                                          \
    }

EC_QCONCAT(ec_qconcat_u8, uint8_t, 0, 255)
EC_QCONCAT(ec_qconcat_i8, int8_t, -128, 127)

void ec_qcopy(const void *x, void *y, long bytes)
{
    if (x != y) memmove(y, x, (size_t)bytes);
}

void ec_u8_to_float(const uint8_t *x, long n, float *y)
{
    long i;
    for (i = 0; i < n; i++) y[i] = (float)x[i];
}

void ec_i8_to_float(const int8_t *x, long n, float *y)
{
    long i;
    for (i = 0; i < n; i++) y[i] = (float)x[i];
}

/* ---- softmax: gemmlowp's fixed point (edgecnn.quant.softmax, step for step) ---------------- */

static int32_t sat_left_shift(int32_t x, int e)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - e)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((int64_t)x * ((int64_t)1 << e));
}

static int64_t rdbp64(int64_t x, int e) /* RoundingDivideByPOT on 64 bits (e may pass 31) */
{
    const int64_t mask = ((int64_t)1 << e) - 1;
    const int64_t remainder = x & mask, threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

static int32_t exp_quarter_interval(int32_t a) /* exp(a), a in [-1/4, 0), Q0.31 */
{
    const int32_t constant_term = 1895147668, one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = ec_srdhm(x, x), x3 = ec_srdhm(x2, x), x4 = ec_srdhm(x2, x2);
    const int32_t x4_over_4 = ec_rounding_divide_by_pot(x4, 2);
    const int32_t poly = ec_rounding_divide_by_pot(ec_srdhm(x4_over_4 + x3, one_third) + x2, 1);
    return constant_term + ec_srdhm(constant_term, x + poly);
}

static int32_t exp_on_negative_values(int32_t a) /* a <= 0 in Q5.26, result Q0.31 */
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535,   720401,     242}; /* exp(-2^k), k = -2 .. 4 */
    const int32_t quarter = 1 << 24;
    const int32_t mod_minus_quarter = (a & (quarter - 1)) - quarter;
    const int32_t remainder = mod_minus_quarter - a;
    int32_t result = exp_quarter_interval(sat_left_shift(mod_minus_quarter, 5));
    int k;
    for (k = 0; k < 7; k++)
        if (remainder & ((int32_t)1 << (24 + k))) result = ec_srdhm(result, barrel[k]);
    return a == 0 ? INT32_MAX : result;
}

static int32_t one_over_one_plus_x(int32_t a) /* 1 / (1 + a), a in [0, 1), Q0.31 */
{
    const int32_t half_denominator = (int32_t)(((int64_t)a + INT32_MAX + 1) >> 1);
    int32_t x = 1515870810 + ec_srdhm(half_denominator, -1010580540);
    int i;
    for (i = 0; i < 3; i++) {
        const int32_t one_minus = (1 << 29) - ec_srdhm(half_denominator, x);
        x = x + sat_left_shift(ec_srdhm(x, one_minus), 2);
    }
    return sat_left_shift(x, 1);
}

#define EC_QSOFTMAX(NAME, T, LO, HI)                                                               \
    void NAME(const T *x, long rows, int depth, int32_t input_multiplier, int input_left_shift,    \
              int32_t diff_min, T *y)                                                              \
    {                                                                                              \
        long r;                                                                                    \
        int i;                                                                                     \
        for (r = 0; r < rows; r++) {                                                               \
            const T *xr = x + r * depth;                                                           \
            T *yr = y + r * depth;                                                                 \
            int32_t max = xr[0], total = 0, headroom = 0, scale;                                   \
            int exponent;                                                                          \
            for (i = 1; i < depth; i++)                                                            \
                if (xr[i] > max) max = xr[i];                                                      \
            for (i = 0; i < depth; i++) {                                                          \
                const int32_t diff = (int32_t)xr[i] - max;                                         \
                if (diff >= diff_min)                                                              \
                    total += ec_rounding_divide_by_pot(                                            \
                        exp_on_negative_values(                                                    \
                            ec_srdhm(diff * (1 << input_left_shift), input_multiplier)),           \
                        12);                                                                       \
            }                                                                                      \
            while (headroom < 32 && !((uint32_t)total & (0x80000000u >> headroom))) headroom++;    \
            scale = one_over_one_plus_x((int32_t)(((uint32_t)total << headroom) - 0x80000000u));   \
            exponent = 12 - headroom + 31 - 8;                                                     \
            for (i = 0; i < depth; i++) {                                                          \
                const int32_t diff = (int32_t)xr[i] - max;                                         \
                int64_t out = LO;                                                                  \
                if (diff >= diff_min) {                                                            \
                    const int32_t e = exp_on_negative_values(                                      \
                        ec_srdhm(diff * (1 << input_left_shift), input_multiplier));               \
                    out = rdbp64(ec_srdhm(scale, e), exponent) + LO;                               \
                    if (out > HI) out = HI;                                                        \
                    if (out < LO) out = LO;                                                        \
                }                                                                                  \
                yr[i] = (T)out;                                                                    \
            }                                                                                      \
        }                                                                                          \
    }

EC_QSOFTMAX(ec_qsoftmax_u8, uint8_t, 0, 255)
EC_QSOFTMAX(ec_qsoftmax_i8, int8_t, -128, 127)
