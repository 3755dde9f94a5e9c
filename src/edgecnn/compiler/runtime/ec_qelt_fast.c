/* Fast integer kernels around the convolutions (ec_pool.h, ec_quant.h): max pooling, the
 * activations' tables and the model's float input quantized, bit for bit the portable ones of
 * ec_int8.c (and the numpy reference: edgecnn/layers/qpool.py, qactivation.py,
 * quant.quantize). Max pooling compares 8-bit lanes of whole registers; the tables translate
 * registers of bytes where the instruction set has a byte permute; the quantization divides,
 * rounds and clamps EC_NB float lanes (ec_qvec.h).
 * Not on microcontrollers (kernels.py), which keep ec_int8.c. */

/* x / scale must be the correctly rounded float32 quotient, as in ec_int8.c: the ARMv7 targets'
 * -funsafe-math-optimizations would turn it into x * (1 / scale). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-unsafe-math-optimizations")
#endif

#include "ec_pool.h"
#include "ec_quant.h"
#include "ec_qvec.h"

/* ---- max pooling: channels in 8-bit lanes -------------------------------------------------- */

#if defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT)
#define EC_QB (EC_NB * 4) /* the bytes of one int32 vector: a register */
typedef uint8_t qbu_wide __attribute__((vector_size(EC_QB), aligned(1), may_alias));
typedef int8_t qbs_wide __attribute__((vector_size(EC_QB), aligned(1), may_alias));
typedef uint8_t qbu_16 __attribute__((vector_size(16), aligned(1), may_alias));
typedef int8_t qbs_16 __attribute__((vector_size(16), aligned(1), may_alias));

/* Channels c0 .. while a whole V fits of output pixel dst: the max over the clipped window
 * (rows ky0..ky1, columns kx0..kx1 of the input), clamped to [lo, hi]; returns the next c0.
 * Lanes compare to masks of -1 / 0 that select (max, then the clamp's max and min). */
#define EC_QMAX_LANES(NAME, V, T)                                                                  \
    EC_QINLINE int NAME(const ec_qpool_params *p, const T *x, T *dst, int c0, int ky0, int ky1,    \
                        int kx0, int kx1, T lo, T hi)                                              \
    {                                                                                              \
        const V vlo = (V){0} + lo, vhi = (V){0} + hi;                                              \
        for (; c0 + (int)sizeof(V) <= p->c; c0 += (int)sizeof(V)) {                                \
            V m = *(const V *)(x + ((long)ky0 * p->w + kx0) * p->c + c0), g;                       \
            for (int ky = ky0; ky < ky1; ky++)                                                     \
                for (int kx = kx0; kx < kx1; kx++) {                                               \
                    const V v = *(const V *)(x + ((long)ky * p->w + kx) * p->c + c0);              \
                    g = (V)(v > m);                                                                \
                    m = (v & g) | (m & ~g);                                                        \
                }                                                                                  \
            g = (V)(m > vlo);                                                                      \
            m = (m & g) | (vlo & ~g);                                                              \
            g = (V)(m < vhi);                                                                      \
            *(V *)(dst + c0) = (m & g) | (vhi & ~g);                                               \
        }                                                                                          \
        return c0;                                                                                 \
    }

EC_QMAX_LANES(qmax_wide_u8, qbu_wide, uint8_t)
EC_QMAX_LANES(qmax_wide_i8, qbs_wide, int8_t)
EC_QMAX_LANES(qmax_16_u8, qbu_16, uint8_t)
EC_QMAX_LANES(qmax_16_i8, qbs_16, int8_t)
#define EC_QMAX_VECTOR(SFX)                                                                        \
    c0 = qmax_wide_##SFX(p, x, dst, c0, ky0, ky1, kx0, kx1, lo, hi);                               \
    if (EC_QB > 16) c0 = qmax_16_##SFX(p, x, dst, c0, ky0, ky1, kx0, kx1, lo, hi);
#else
#define EC_QMAX_VECTOR(SFX)
#endif

/* Output row oy: each pixel's window clipped to the input (padding and ceil mode's partial
 * windows are skipped, an empty window gives act_min, as ec_int8.c), whole vectors of channels
 * first, then the last channels one at a time. */
#define EC_QMAXPOOL_ROW(NAME, T, SFX)                                                              \
    EC_QINLINE void NAME(const ec_qpool_params *p, const T *x, T *y, int oy)                       \
    {                                                                                              \
        const T lo = (T)p->act_min, hi = (T)p->act_max;                                            \
        for (int ox = 0; ox < p->ow; ox++) {                                                       \
            T *dst = y + ((long)oy * p->ow + ox) * p->c;                                           \
            int ky0, ky1, kx0, kx1, c0 = 0;                                                        \
            ec_pool_window(oy, ox, p->sh, p->sw, p->pad_top, p->pad_left, p->kh, p->kw, p->h,      \
                           p->w, &ky0, &ky1, &kx0, &kx1);                                          \
            if (ky1 <= ky0 || kx1 <= kx0) {                                                        \
                for (int i = 0; i < p->c; i++) dst[i] = lo;                                        \
                continue;                                                                          \
            }                                                                                      \
            EC_QMAX_VECTOR(SFX)                                                                    \
            for (; c0 < p->c; c0++) {                                                              \
                int32_t m = x[((long)ky0 * p->w + kx0) * p->c + c0];                               \
                for (int ky = ky0; ky < ky1; ky++)                                                 \
                    for (int kx = kx0; kx < kx1; kx++) {                                           \
                        const int32_t v = x[((long)ky * p->w + kx) * p->c + c0];                   \
                        m = v > m ? v : m;                                                         \
                    }                                                                              \
                dst[c0] = (T)(m < lo ? lo : (m > hi ? hi : m));                                    \
            }                                                                                      \
        }                                                                                          \
    }

EC_QMAXPOOL_ROW(qmaxpool_row_u8, uint8_t, u8)
EC_QMAXPOOL_ROW(qmaxpool_row_i8, int8_t, i8)

/* the cells compared: the threads' work */
#define EC_QMAXPOOL_CELLS(p) ((long)(p)->oh * (p)->ow * (p)->c * (p)->kh * (p)->kw)

void ec_qmaxpool_fast_u8(const ec_qpool_params *p, const uint8_t *x, uint8_t *y)
{
    EC_OMP_FOR_IF(EC_QMAXPOOL_CELLS(p) >= EC_QPARALLEL_MIN_MACS)
    for (int oy = 0; oy < p->oh; oy++) qmaxpool_row_u8(p, x, y, oy);
}

void ec_qmaxpool_fast_i8(const ec_qpool_params *p, const int8_t *x, int8_t *y)
{
    EC_OMP_FOR_IF(EC_QMAXPOOL_CELLS(p) >= EC_QPARALLEL_MIN_MACS)
    for (int oy = 0; oy < p->oh; oy++) qmaxpool_row_i8(p, x, y, oy);
}

/* ---- relu, relu6, leaky relu: their 256-entry table, looked up in vectors ------------------ */

/* ec_qlut's y[i] = lut[x[i]] (int8: lut[x[i] + 128], the index x ^ 0x80): the table the
 * reference computed (qactivation.py), so exact by construction. The table is four registers
 * of 64 entries; an instruction set with a 128-entry byte permute (AVX-512 VBMI's VPERMI2B:
 * two, then the index's top bit picks one) or a 64-entry lookup (AArch64's TBL / TBX: four)
 * translates a register of bytes at a time. Elsewhere one byte at a time, as ec_qlut. The two
 * fixed-point multiplies per value on int32 lanes cost more than the byte loads: the
 * requantization itself does not pay as a vector kernel. */
#if defined(__AVX512VBMI__) && defined(__AVX512BW__) && !defined(EC_NO_VECTOR_EXT)
#include <immintrin.h>
#define EC_QLUT_BLOCK 64
EC_QINLINE void qlut_block(const uint8_t *x, const uint8_t *lut, uint8_t flip, uint8_t *y)
{
    const __m512i i = _mm512_xor_si512(_mm512_loadu_si512(x), _mm512_set1_epi8((char)flip));
    const __m512i lo =
        _mm512_permutex2var_epi8(_mm512_loadu_si512(lut), i, _mm512_loadu_si512(lut + 64));
    const __m512i hi =
        _mm512_permutex2var_epi8(_mm512_loadu_si512(lut + 128), i, _mm512_loadu_si512(lut + 192));
    _mm512_storeu_si512(y, _mm512_mask_blend_epi8(_mm512_movepi8_mask(i), lo, hi));
}
#elif defined(__aarch64__) && defined(__ARM_NEON) && !defined(EC_NO_VECTOR_EXT)
#define EC_QLUT_BLOCK 16
EC_QINLINE uint8x16x4_t qlut_quarter(const uint8_t *t)
{
    uint8x16x4_t q;
    q.val[0] = vld1q_u8(t), q.val[1] = vld1q_u8(t + 16);
    q.val[2] = vld1q_u8(t + 32), q.val[3] = vld1q_u8(t + 48);
    return q;
}
/* TBX leaves lanes whose index is out of its 64 entries: i - 64 k wraps above 63 elsewhere */
EC_QINLINE void qlut_block(const uint8_t *x, const uint8_t *lut, uint8_t flip, uint8_t *y)
{
    const uint8x16_t i = veorq_u8(vld1q_u8(x), vdupq_n_u8(flip));
    uint8x16_t r = vqtbl4q_u8(qlut_quarter(lut), i);
    r = vqtbx4q_u8(r, qlut_quarter(lut + 64), vsubq_u8(i, vdupq_n_u8(64)));
    r = vqtbx4q_u8(r, qlut_quarter(lut + 128), vsubq_u8(i, vdupq_n_u8(128)));
    vst1q_u8(y, vqtbx4q_u8(r, qlut_quarter(lut + 192), vsubq_u8(i, vdupq_n_u8(192))));
}
#endif

#ifdef EC_QLUT_BLOCK
#define EC_QLUT_BLOCKS(FLIP)                                                                       \
    const long nfull = n / EC_QLUT_BLOCK;                                                          \
    EC_OMP_FOR_IF(n >= EC_PARALLEL_MIN_FLOATS)                                                     \
    for (long k = 0; k < nfull; k++)                                                               \
        qlut_block((const uint8_t *)x + k * EC_QLUT_BLOCK, (const uint8_t *)lut, FLIP,             \
                   (uint8_t *)y + k * EC_QLUT_BLOCK);                                              \
    const long i0 = nfull * EC_QLUT_BLOCK;
#else
#define EC_QLUT_BLOCKS(FLIP) const long i0 = 0;
#endif

void ec_qlut_fast_u8(const uint8_t *x, long n, const uint8_t *lut, uint8_t *y)
{
    EC_QLUT_BLOCKS(0)
    for (long i = i0; i < n; i++) y[i] = lut[x[i]];
}

void ec_qlut_fast_i8(const int8_t *x, long n, const int8_t *lut, int8_t *y)
{
    EC_QLUT_BLOCKS(0x80)
    for (long i = i0; i < n; i++) y[i] = lut[(int)x[i] + 128];
}

/* ---- the float input quantized ------------------------------------------------------------- */

/* round_clamped (ec_int8.c) of x / scale, plus the zero point, clamped to [lo, hi]. Clamping to
 * +-1e6 before rounding equals clamping after (rounding is monotone and keeps the integers
 * +-1e6); NaN fails x > -1e6 and becomes -1e6. Then |v| < 2^23: the truncation t is exact, so
 * is v - t, and rounding half away from zero adds the sign where |v - t| >= 1/2. */
#if defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT)
typedef float ec_qf __attribute__((vector_size(EC_NB * 4)));
typedef float ec_qfu __attribute__((vector_size(EC_NB * 4), aligned(4), may_alias));

EC_QINLINE ec_qv quantize_block(ec_qf x, float scale, int32_t zp, int32_t lo, int32_t hi)
{
    const ec_qf q = x / scale, big = (ec_qf){0} + 1e6f;
    const ec_qv keep = q > -big, above = q > big;
    const ec_qf v =
        (ec_qf)((((ec_qv)q & keep) | ((ec_qv)-big & ~keep)) & ~above) + (ec_qf)((ec_qv)big & above);
    const ec_qv t = __builtin_convertvector(v, ec_qv);
    const ec_qf frac = v - __builtin_convertvector(t, ec_qf);
    const ec_qv r = t - (frac >= 0.5f) + (frac <= -0.5f); /* the masks are -1 where true */
    return ec_qclamp(r + zp, lo, hi);
}

#define EC_QUANTIZE_FAST(S, LO, HI)                                                                \
    const long nfull = n / EC_NB;                                                                  \
    EC_OMP_FOR_IF(n >= EC_PARALLEL_MIN_FLOATS)                                                     \
    for (long k = 0; k < nfull; k++)                                                               \
        ec_qstorex(S, (uint8_t *)y + k * EC_NB,                                                    \
                   quantize_block(*(const ec_qfu *)(x + k * EC_NB), scale, zero_point, LO, HI));   \
    if (nfull * EC_NB < n) {                                                                       \
        const long i = nfull * EC_NB;                                                              \
        float in[EC_NB] = {0};                                                                     \
        uint8_t out[EC_NB];                                                                        \
        memcpy(in, x + i, (size_t)(n - i) * sizeof(float));                                        \
        ec_qstorex(S, out, quantize_block(*(const ec_qfu *)in, scale, zero_point, LO, HI));        \
        memcpy((uint8_t *)y + i, out, (size_t)(n - i));                                            \
    }
#else
EC_QINLINE int32_t quantize_one(float x, float scale, int32_t zp, int32_t lo, int32_t hi)
{
    float v = x / scale, frac;
    int32_t t;
    if (!(v > -1e6f)) v = -1e6f;
    if (v > 1e6f) v = 1e6f;
    t = (int32_t)v;
    frac = v - (float)t;
    t += (frac >= 0.5f) - (frac <= -0.5f);
    t += zp;
    return t < lo ? lo : (t > hi ? hi : t);
}

#define EC_QUANTIZE_FAST(S, LO, HI)                                                                \
    for (long i = 0; i < n; i++) {                                                                 \
        const int32_t v = quantize_one(x[i], scale, zero_point, LO, HI);                           \
        if (S)                                                                                     \
            ((int8_t *)y)[i] = (int8_t)v;                                                          \
        else                                                                                       \
            ((uint8_t *)y)[i] = (uint8_t)v;                                                        \
    }
#endif

void ec_quantize_flat_fast_u8(const float *x, long n, uint8_t *y, float scale, int32_t zero_point)
{
    EC_QUANTIZE_FAST(0, 0, 255)
}

void ec_quantize_flat_fast_i8(const float *x, long n, int8_t *y, float scale, int32_t zero_point)
{
    EC_QUANTIZE_FAST(1, -128, 127)
}
