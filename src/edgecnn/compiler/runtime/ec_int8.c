/* Portable 8-bit integer kernels (see ec_int8.h): TFLite's reference arithmetic.
 * Sources of the rules: tensorflow/lite/kernels/internal/common.h (MultiplyByQuantizedMultiplier),
 * gemmlowp fixedpoint.h (SaturatingRoundingDoublingHighMul, RoundingDivideByPOT),
 * reference conv / pooling / add kernels; edgecnn/quant.py documents them once. */
#include "ec_int8.h"

#include <limits.h>

int32_t ec_srdhm(int32_t a, int32_t b)
{
    /* round(a * b / 2^31), half away from zero; the only overflow saturates */
    int64_t ab, nudge;
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));  /* C division truncates */
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
    return ec_rounding_divide_by_pot(ec_srdhm((int32_t)((int64_t)x * ((int64_t)1 << left)),
                                              multiplier), right);
}

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* One kernel body for both types: T is uint8_t or int8_t. */
#define EC_QCONV2D(NAME, T)                                                                   \
void NAME(const ec_qconv_params *p, const T *x, const T *wt, const int32_t *bias,            \
          const int32_t *mult, const int32_t *shift, T *y)                                   \
{                                                                                            \
    const int cin_g = p->c / p->groups, cout_g = p->o / p->groups;                           \
    int oy, ox, o, i, ky, kx;                                                                \
    for (oy = 0; oy < p->oh; oy++)                                                           \
        for (ox = 0; ox < p->ow; ox++)                                                       \
            for (o = 0; o < p->o; o++) {                                                     \
                const int g = o / cout_g, q = p->per_channel ? o : 0;                        \
                int32_t acc = bias ? bias[o] : 0;                                            \
                for (ky = 0; ky < p->kh; ky++) {                                             \
                    const int iy = oy * p->sh + ky * p->dh - p->pad_top;                     \
                    if (iy < 0 || iy >= p->h) continue; /* padding: the zero point */        \
                    for (kx = 0; kx < p->kw; kx++) {                                         \
                        const int ix = ox * p->sw + kx * p->dw - p->pad_left;                \
                        const T *xp, *wp;                                                    \
                        if (ix < 0 || ix >= p->w) continue;                                  \
                        xp = x + ((long)iy * p->w + ix) * p->c + g * cin_g;                  \
                        wp = wt + (((long)o * cin_g) * p->kh + ky) * p->kw + kx;             \
                        for (i = 0; i < cin_g; i++)                                          \
                            acc += ((int32_t)xp[i] - p->in_zp)                               \
                                 * ((int32_t)wp[(long)i * p->kh * p->kw] - p->w_zp);         \
                    }                                                                        \
                }                                                                            \
                acc = ec_multiply_by_quantized_multiplier(acc, mult[q], shift[q]) + p->out_zp; \
                y[((long)oy * p->ow + ox) * p->o + o] = (T)clamp32(acc, p->act_min, p->act_max); \
            }                                                                                \
}

EC_QCONV2D(ec_qconv2d_u8, uint8_t)
EC_QCONV2D(ec_qconv2d_i8, int8_t)

/* Average: real cells only, (sum + n/2) / n rounded half away from zero. Max: real cells. */
#define EC_QPOOL(NAME, T, AVG)                                                               \
void NAME(const ec_qpool_params *p, const T *x, T *y)                                        \
{                                                                                            \
    int oy, ox, ch, ky, kx;                                                                  \
    for (oy = 0; oy < p->oh; oy++)                                                           \
        for (ox = 0; ox < p->ow; ox++)                                                       \
            for (ch = 0; ch < p->c; ch++) {                                                  \
                int32_t acc = AVG ? 0 : INT32_MIN, n = 0;                                    \
                for (ky = 0; ky < p->kh; ky++) {                                             \
                    const int iy = oy * p->sh + ky - p->pad_top;                             \
                    if (iy < 0 || iy >= p->h) continue;                                      \
                    for (kx = 0; kx < p->kw; kx++) {                                         \
                        const int ix = ox * p->sw + kx - p->pad_left;                        \
                        int32_t v;                                                           \
                        if (ix < 0 || ix >= p->w) continue;                                  \
                        v = x[((long)iy * p->w + ix) * p->c + ch];                           \
                        if (AVG) acc += v; else if (v > acc) acc = v;                        \
                        n++;                                                                 \
                    }                                                                        \
                }                                                                            \
                if (AVG && n > 0)                                                            \
                    acc = acc >= 0 ? (acc + n / 2) / n : (acc - n / 2) / n;                  \
                y[((long)oy * p->ow + ox) * p->c + ch] = (T)clamp32(acc, p->act_min, p->act_max); \
            }                                                                                \
}

EC_QPOOL(ec_qavgpool_u8, uint8_t, 1)
EC_QPOOL(ec_qavgpool_i8, int8_t, 1)
EC_QPOOL(ec_qmaxpool_u8, uint8_t, 0)
EC_QPOOL(ec_qmaxpool_i8, int8_t, 0)

/* TFLite's 8-bit add: both inputs to a common scale with 2^20 headroom, then the output's */
#define EC_QADD(NAME, T)                                                                     \
void NAME(const ec_qadd_params *p, const T *a, const T *b, long n, T *y)                     \
{                                                                                            \
    long i;                                                                                  \
    for (i = 0; i < n; i++) {                                                                \
        const int32_t va = ((int32_t)a[i] - p->zp1) * (1 << 20);                             \
        const int32_t vb = ((int32_t)b[i] - p->zp2) * (1 << 20);                             \
        const int32_t sum = ec_multiply_by_quantized_multiplier(va, p->m1, p->s1)            \
                          + ec_multiply_by_quantized_multiplier(vb, p->m2, p->s2);           \
        const int32_t out = ec_multiply_by_quantized_multiplier(sum, p->mo, p->so) + p->out_zp; \
        y[i] = (T)clamp32(out, p->act_min, p->act_max);                                      \
    }                                                                                        \
}

EC_QADD(ec_qadd_u8, uint8_t)
EC_QADD(ec_qadd_i8, int8_t)
