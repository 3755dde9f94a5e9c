/* edgecnn runtime: the int32 vector of EC_NB lanes the fast integer kernels compute with
 * (private header of the fast integer kernels: ec_qconv_*.c, ec_qadd_fast.c, ec_qelt_fast.c).
 *
 * With GCC or clang it is a vector-extension type (AVX-512, AVX2, NEON from one source);
 * elsewhere, or with -DEC_NO_VECTOR_EXT, a struct of EC_NB int32 with loops, plain C99.
 * Every operation is exact: products of 8-bit values and int16 weights summed in int32 lanes,
 * and the requantization is ec_multiply_by_quantized_multiplier's lane by lane.
 *
 * The packed requantization of a layer (packing.pack_qrequant): four int32 rows of cpad lanes,
 * the folded bias, the multiplier, the left shift and the right shift of each output channel.
 */
#ifndef EC_QVEC_H
#define EC_QVEC_H

#include <stdint.h>
#include <string.h>

#include "ec_conv.h" /* ec_qconv_params: the requantization epilogue */
#include "ec_quant.h"

#ifndef EC_NB
#error "build with -DEC_NB=<vector width>"
#endif

#if defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT)
#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif
#define EC_QINLINE static inline __attribute__((always_inline))
typedef int32_t ec_qv __attribute__((vector_size(EC_NB * 4)));
typedef uint32_t ec_qvu __attribute__((vector_size(EC_NB * 4)));
typedef int64_t ec_qv64 __attribute__((vector_size(EC_NB * 8)));
typedef uint64_t ec_qv64u __attribute__((vector_size(EC_NB * 8)));
/* unaligned views of packed weights and of NHWC pixels */
typedef int16_t ec_qh __attribute__((vector_size(EC_NB * 2), aligned(2), may_alias));
typedef int32_t ec_qwu __attribute__((vector_size(EC_NB * 4), aligned(4), may_alias));
typedef uint8_t ec_qbu __attribute__((vector_size(EC_NB), aligned(1), may_alias));
typedef int8_t ec_qbs __attribute__((vector_size(EC_NB), aligned(1), may_alias));

EC_QINLINE ec_qv ec_qset1(int32_t s) { return (ec_qv){0} + s; }
EC_QINLINE ec_qv ec_qload32(const int32_t *p) { return *(const ec_qwu *)p; }
EC_QINLINE ec_qv ec_qloadw(const int16_t *p)
{
#if defined(__ARM_NEON) && EC_NB == 4 /* GCC 12 widens the generic form lane by lane on AArch64 */
    return (ec_qv)vmovl_s16(vld1_s16(p));
#else
    return __builtin_convertvector(*(const ec_qh *)p, ec_qv);
#endif
}
/* EC_NB activations, uint8 (S = 0) or int8 (S = 1), widened; and EC_NB int32 in the 8-bit
 * range narrowed and stored. GCC 12 lowers these 4x conversions of vector-extension types to
 * one lane at a time, so the instruction sets at hand get their one-instruction widenings. */
#if defined(__AVX512F__) && EC_NB == 16
#include <immintrin.h>
EC_QINLINE ec_qv ec_qloadx(const int S, const void *p)
{
    const __m128i b = _mm_loadu_si128((const __m128i *)p);
    return (ec_qv)(S ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b));
}
EC_QINLINE void ec_qstorex(const int S, void *p, ec_qv v)
{
    (void)S; /* v is in range: truncation is exact for both types */
    _mm_storeu_si128((__m128i *)p, _mm512_cvtepi32_epi8((__m512i)v));
}
#elif defined(__AVX2__) && EC_NB == 8
#include <immintrin.h>
EC_QINLINE ec_qv ec_qloadx(const int S, const void *p)
{
    const __m128i b = _mm_loadl_epi64((const __m128i *)p);
    return (ec_qv)(S ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b));
}
EC_QINLINE void ec_qstorex(const int S, void *p, ec_qv v)
{
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128((__m256i)v),
                                      _mm256_extracti128_si256((__m256i)v, 1));
    _mm_storel_epi64((__m128i *)p, S ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w));
}
#elif defined(__ARM_NEON) && EC_NB == 4
EC_QINLINE ec_qv ec_qloadx(const int S, const void *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    {
        const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(u));
        return S ? (ec_qv)vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(b))))
                 : (ec_qv)vmovl_u16(vget_low_u16(vmovl_u8(b)));
    }
}
EC_QINLINE void ec_qstorex(const int S, void *p, ec_qv v)
{
    const int16x4_t h = vmovn_s32((int32x4_t)v);
    const int8x8_t b = vmovn_s16(vcombine_s16(h, h));
    (void)S;
    vst1_lane_u32((uint32_t *)p, vreinterpret_u32_s8(b), 0);
}
#else
EC_QINLINE ec_qv ec_qloadx(const int S, const void *p)
{
    return S ? __builtin_convertvector(*(const ec_qbs *)p, ec_qv)
             : __builtin_convertvector(*(const ec_qbu *)p, ec_qv);
}
EC_QINLINE void ec_qstorex(const int S, void *p, ec_qv v)
{
    if (S)
        *(ec_qbs *)p = __builtin_convertvector(v, ec_qbs);
    else
        *(ec_qbu *)p = __builtin_convertvector(v, ec_qbu);
}
#endif
EC_QINLINE ec_qv ec_qadd_s(ec_qv a, int32_t s) { return a + s; }
EC_QINLINE ec_qv ec_qadd(ec_qv a, ec_qv b) { return a + b; }
EC_QINLINE ec_qv ec_qmac_s(ec_qv acc, ec_qv w, int32_t s) { return acc + w * s; }
EC_QINLINE ec_qv ec_qmac(ec_qv acc, ec_qv a, ec_qv b) { return acc + a * b; }
EC_QINLINE ec_qv ec_qclamp(ec_qv v, int32_t lo, int32_t hi)
{
    const ec_qv l = ec_qset1(lo), h = ec_qset1(hi), above_lo = v > l;
    const ec_qv m = (above_lo & v) | (~above_lo & l), below_hi = m < h; /* max, then min */
    return (below_hi & m) | (~below_hi & h);
}
/* ec_multiply_by_quantized_multiplier per lane: the left shift wraps as its int32 cast; the
 * high multiply in int64 lanes (multipliers are non-negative, so it never saturates). Its
 * (ab + nudge) / 2^31, nudge 2^30 or 1 - 2^30 by the sign of ab and C's truncating division,
 * equals floor((ab + 2^30) / 2^31) for either sign (for ab < 0, truncation is the ceiling:
 * floor((ab + 1 - 2^30 + 2^31 - 1) / 2^31)), whose low 32 bits a logical shift gives: no
 * 64-bit comparisons, which GCC would do one lane at a time. Then the rounding right shift. */
EC_QINLINE ec_qv ec_qrequant(ec_qv acc, ec_qv mult, ec_qv left, ec_qv right)
{
    const ec_qv x = (ec_qv)((ec_qvu)acc << (ec_qvu)left);
#if defined(__ARM_NEON) && EC_NB == 4 /* NEON's VQRDMULH is that: (2 ab + 2^31) >> 32 */
    const ec_qv q = (ec_qv)vqrdmulhq_s32((int32x4_t)x, (int32x4_t)mult);
#else
    const ec_qv64 ab = __builtin_convertvector(x, ec_qv64) * __builtin_convertvector(mult, ec_qv64);
    const ec_qv64u t = (ec_qv64u)(ab + (1 << 30)) >> 31;
    const ec_qv q = (ec_qv) __builtin_convertvector(t, ec_qvu);
#endif
    const ec_qv mask = (ec_qv)((((ec_qvu){0} + 1) << (ec_qvu)right) - 1);
    const ec_qv threshold = (mask >> 1) - (q < 0);
    return (q >> right) - ((q & mask) > threshold);
}
#else
#define EC_QINLINE static inline
typedef struct {
    int32_t v[EC_NB];
} ec_qv;

EC_QINLINE ec_qv ec_qset1(int32_t s)
{
    ec_qv r;
    for (int i = 0; i < EC_NB; i++) r.v[i] = s;
    return r;
}
EC_QINLINE ec_qv ec_qload32(const int32_t *p)
{
    ec_qv r;
    memcpy(r.v, p, sizeof r.v);
    return r;
}
EC_QINLINE ec_qv ec_qloadw(const int16_t *p)
{
    ec_qv r;
    for (int i = 0; i < EC_NB; i++) r.v[i] = p[i];
    return r;
}
EC_QINLINE ec_qv ec_qloadx(const int S, const void *p)
{
    ec_qv r;
    for (int i = 0; i < EC_NB; i++) r.v[i] = S ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
    return r;
}
EC_QINLINE ec_qv ec_qadd_s(ec_qv a, int32_t s)
{
    for (int i = 0; i < EC_NB; i++) a.v[i] += s;
    return a;
}
EC_QINLINE ec_qv ec_qadd(ec_qv a, ec_qv b)
{
    for (int i = 0; i < EC_NB; i++) a.v[i] += b.v[i];
    return a;
}
EC_QINLINE ec_qv ec_qmac_s(ec_qv acc, ec_qv w, int32_t s)
{
    for (int i = 0; i < EC_NB; i++) acc.v[i] += w.v[i] * s;
    return acc;
}
EC_QINLINE ec_qv ec_qmac(ec_qv acc, ec_qv a, ec_qv b)
{
    for (int i = 0; i < EC_NB; i++) acc.v[i] += a.v[i] * b.v[i];
    return acc;
}
EC_QINLINE ec_qv ec_qclamp(ec_qv v, int32_t lo, int32_t hi)
{
    for (int i = 0; i < EC_NB; i++) v.v[i] = v.v[i] < lo ? lo : (v.v[i] > hi ? hi : v.v[i]);
    return v;
}
EC_QINLINE ec_qv ec_qrequant(ec_qv acc, ec_qv mult, ec_qv left, ec_qv right)
{
    for (int i = 0; i < EC_NB; i++) {
        const int32_t x = (int32_t)((uint32_t)acc.v[i] << left.v[i]);
        acc.v[i] = ec_rounding_divide_by_pot(ec_srdhm(x, mult.v[i]), right.v[i]);
    }
    return acc;
}
EC_QINLINE void ec_qstorex(const int S, void *p, ec_qv v)
{
    for (int i = 0; i < EC_NB; i++) {
        if (S)
            ((int8_t *)p)[i] = (int8_t)v.v[i];
        else
            ((uint8_t *)p)[i] = (uint8_t)v.v[i];
    }
}
#endif

/* Channel pairs (EC_NB >= 8, packing.QCONV_PAIRS_MIN_NB): each int32 lane of w holds the
 * int16 weights of two input channels (the even one in the low half), x2 the two int16
 * activations; acc + w_lo * x_lo + w_hi * x_hi, exact in int32 (VPMADDWD, VPDPWSSD). */
#define EC_QPAIRS (EC_NB >= 8)
#if defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT) && defined(__AVX512BW__) && EC_NB == 16
EC_QINLINE ec_qv ec_qmadd(ec_qv acc, ec_qv w, int32_t x2)
{
#ifdef __AVX512VNNI__
    return (ec_qv)_mm512_dpwssd_epi32((__m512i)acc, (__m512i)w, _mm512_set1_epi32(x2));
#else
    return acc + (ec_qv)_mm512_madd_epi16((__m512i)w, _mm512_set1_epi32(x2));
#endif
}
#elif defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT) && defined(__AVX2__) && EC_NB == 8
EC_QINLINE ec_qv ec_qmadd(ec_qv acc, ec_qv w, int32_t x2)
{
    return acc + (ec_qv)_mm256_madd_epi16((__m256i)w, _mm256_set1_epi32(x2));
}
#elif defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT)
EC_QINLINE ec_qv ec_qmadd(ec_qv acc, ec_qv w, int32_t x2)
{
    const int32_t x_lo = (int16_t)(x2 & 0xffff), x_hi = x2 >> 16;
    return acc + ((ec_qv)((ec_qvu)w << 16) >> 16) * x_lo + (w >> 16) * x_hi;
}
#else
EC_QINLINE ec_qv ec_qmadd(ec_qv acc, ec_qv w, int32_t x2)
{
    const int32_t x_lo = (int16_t)(x2 & 0xffff), x_hi = x2 >> 16;
    for (int i = 0; i < EC_NB; i++)
        acc.v[i] += (int16_t)(w.v[i] & 0xffff) * x_lo + (w.v[i] >> 16) * x_hi;
    return acc;
}
#endif

/* Below this many multiply-adds a convolution runs on one thread (a parallel region's fork and
 * join costs microseconds, EC_PARALLEL_MIN_FLOATS in ec_types.h). The fast integer kernels
 * split their output into jobs (tiles, rows) that write disjoint bytes, so a result does not
 * depend on the number of threads. */
#define EC_QPARALLEL_MIN_MACS (1L << 18)

/* The first n (< EC_NB) activations of a ragged channel block, the rest of the lanes 0. */
EC_QINLINE ec_qv ec_qloadx_part(const int S, const void *p, int n)
{
    uint8_t tmp[EC_NB] = {0};
    memcpy(tmp, p, (size_t)n);
    return ec_qloadx(S, tmp);
}

/* n (<= EC_NB) lanes of v stored at y */
EC_QINLINE void ec_qstore_n(const int S, void *y, int n, ec_qv v)
{
    if (n == EC_NB) {
        ec_qstorex(S, y, v);
    } else {
        uint8_t tmp[EC_NB];
        ec_qstorex(S, tmp, v);
        memcpy(y, tmp, (size_t)n);
    }
}

/* The output of accumulators: requantized (mult, left, right: the packed rows of their
 * channels), plus the zero point, clamped */
EC_QINLINE ec_qv ec_qfinish(ec_qv acc, ec_qv mult, ec_qv left, ec_qv right,
                            const ec_qconv_params *p)
{
    return ec_qclamp(ec_qadd_s(ec_qrequant(acc, mult, left, right), p->out_zp), p->act_min,
                     p->act_max);
}

/* The output of a block of EC_NB channels at channel offset c of the packed requantization
 * (rows cpad apart); n lanes stored at y. */
EC_QINLINE void ec_qoutput(const int S, void *y, int n, ec_qv acc, const int32_t *rq, long cpad,
                           const ec_qconv_params *p)
{
    ec_qstore_n(S, y, n,
                ec_qfinish(acc, ec_qload32(rq + cpad), ec_qload32(rq + 2 * cpad),
                           ec_qload32(rq + 3 * cpad), p));
}

/* One activation as int32: uint8 (S = 0) or int8 (S = 1) */
EC_QINLINE int32_t ec_qat(const int S, const void *x, long i)
{
    return S ? (int32_t)((const int8_t *)x)[i] : (int32_t)((const uint8_t *)x)[i];
}

#endif
