/* edgecnn runtime: the int32 vector of EC_NB lanes the fast integer kernels compute with
 * (private header of ec_qconv_direct.c and ec_qconv_depthwise.c).
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

#include "ec_int8.h"

#ifndef EC_NB
#error "build with -DEC_NB=<vector width>"
#endif

#if defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT)
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
EC_QINLINE ec_qv ec_qloadw(const int16_t *p) { return __builtin_convertvector(*(const ec_qh *)p, ec_qv); }
/* EC_NB activations, uint8 (S = 0) or int8 (S = 1) */
EC_QINLINE ec_qv ec_qloadx(const int S, const void *p)
{
    return S ? __builtin_convertvector(*(const ec_qbs *)p, ec_qv)
             : __builtin_convertvector(*(const ec_qbu *)p, ec_qv);
}
EC_QINLINE ec_qv ec_qadd_s(ec_qv a, int32_t s) { return a + s; }
EC_QINLINE ec_qv ec_qmac_s(ec_qv acc, ec_qv w, int32_t s) { return acc + w * s; }
EC_QINLINE ec_qv ec_qmac(ec_qv acc, ec_qv a, ec_qv b) { return acc + a * b; }
EC_QINLINE ec_qv ec_qclamp(ec_qv v, int32_t lo, int32_t hi)
{
    const ec_qv l = ec_qset1(lo), h = ec_qset1(hi), below = v < l, above = v > h;
    return (below & l) | (above & h) | (~(below | above) & v);
}
/* ec_multiply_by_quantized_multiplier per lane: the left shift wraps as its int32 cast; the
 * high multiply in int64 lanes (multipliers are non-negative, so it never saturates) rounds
 * half away from zero and truncates as C division does; then the rounding right shift. */
EC_QINLINE ec_qv ec_qrequant(ec_qv acc, ec_qv mult, ec_qv left, ec_qv right)
{
    const ec_qv x = (ec_qv)((ec_qvu)acc << (ec_qvu)left);
    const ec_qv64 ab = __builtin_convertvector(x, ec_qv64) * __builtin_convertvector(mult, ec_qv64);
    const ec_qv64 v = ab + ((1 << 30) + ((ab < 0) & (1 - ((int64_t)1 << 31))));
    /* v / 2^31 truncated: a negative v gains 2^31 - 1; the low 32 bits of the shift suffice */
    const ec_qv64u t = (ec_qv64u)(v + ((v < 0) & 0x7fffffff)) >> 31;
    const ec_qv q = (ec_qv)__builtin_convertvector(t, ec_qvu);
    const ec_qv mask = (ec_qv)((((ec_qvu){0} + 1) << (ec_qvu)right) - 1);
    const ec_qv threshold = (mask >> 1) - (q < 0);
    return (q >> right) - ((q & mask) > threshold);
}
EC_QINLINE void ec_qstorex(const int S, void *p, ec_qv v)
{
    if (S) *(ec_qbs *)p = __builtin_convertvector(v, ec_qbs);
    else *(ec_qbu *)p = __builtin_convertvector(v, ec_qbu);
}
#else
#define EC_QINLINE static inline
typedef struct { int32_t v[EC_NB]; } ec_qv;

EC_QINLINE ec_qv ec_qset1(int32_t s)
{
    ec_qv r;
    for (int i = 0; i < EC_NB; i++) r.v[i] = s;
    return r;
}
EC_QINLINE ec_qv ec_qload32(const int32_t *p) { ec_qv r; memcpy(r.v, p, sizeof r.v); return r; }
EC_QINLINE ec_qv ec_qloadw(const int16_t *p)
{
    ec_qv r;
    for (int i = 0; i < EC_NB; i++) r.v[i] = p[i];
    return r;
}
EC_QINLINE ec_qv ec_qloadx(const int S, const void *p)
{
    ec_qv r;
    for (int i = 0; i < EC_NB; i++)
        r.v[i] = S ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
    return r;
}
EC_QINLINE ec_qv ec_qadd_s(ec_qv a, int32_t s)
{
    for (int i = 0; i < EC_NB; i++) a.v[i] += s;
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
        if (S) ((int8_t *)p)[i] = (int8_t)v.v[i];
        else ((uint8_t *)p)[i] = (uint8_t)v.v[i];
    }
}
#endif

/* The first n (< EC_NB) activations of a ragged channel block, the rest of the lanes 0. */
EC_QINLINE ec_qv ec_qloadx_part(const int S, const void *p, int n)
{
    uint8_t tmp[EC_NB] = {0};
    memcpy(tmp, p, (size_t)n);
    return ec_qloadx(S, tmp);
}

/* The output of a block of EC_NB channels at channel offset c of the packed requantization
 * (rows cpad apart): requantized, plus the zero point, clamped; n lanes stored at y. */
EC_QINLINE void ec_qoutput(const int S, void *y, int n, ec_qv acc, const int32_t *rq, long cpad,
                           const ec_qconv_params *p)
{
    const ec_qv r = ec_qrequant(acc, ec_qload32(rq + cpad), ec_qload32(rq + 2 * cpad),
                                ec_qload32(rq + 3 * cpad));
    const ec_qv v = ec_qclamp(ec_qadd_s(r, p->out_zp), p->act_min, p->act_max);
    if (n == EC_NB) {
        ec_qstorex(S, y, v);
    } else {
        uint8_t tmp[EC_NB];
        ec_qstorex(S, tmp, v);
        memcpy(y, tmp, (size_t)n);
    }
}

/* One activation as int32: uint8 (S = 0) or int8 (S = 1) */
EC_QINLINE int32_t ec_qat(const int S, const void *x, long i)
{
    return S ? (int32_t)((const int8_t *)x)[i] : (int32_t)((const uint8_t *)x)[i];
}

#endif
