/* Fast integer add (ec_eltwise.h): ec_qadd's arithmetic (TFLite's 8-bit Add: both inputs to a
 * common scale with 2^20 of headroom, summed, requantized to the output) on EC_NB int32 lanes
 * (ec_qvec.h), bit for bit. The compiler calls it when every shift is in -31..30 and every
 * multiplier non-negative (kernels.py), the range ec_qrequant takes. */
#include "ec_eltwise.h"
#include "ec_qvec.h"

/* ec_multiply_by_quantized_multiplier(x, m, s) on every lane */
EC_QINLINE ec_qv qscale(ec_qv x, int32_t m, int32_t s)
{
    return ec_qrequant(x, ec_qset1(m), ec_qset1(s > 0 ? s : 0), ec_qset1(s > 0 ? 0 : -s));
}

EC_QINLINE ec_qv qadd_block(const ec_qadd_params *p, ec_qv a, ec_qv b)
{
    const ec_qv zero = ec_qset1(0);
    const ec_qv va = ec_qmac_s(zero, ec_qadd_s(a, -p->zp1), 1 << 20);
    const ec_qv vb = ec_qmac_s(zero, ec_qadd_s(b, -p->zp2), 1 << 20);
    const ec_qv sum = ec_qadd(qscale(va, p->m1, p->s1), qscale(vb, p->m2, p->s2));
    return ec_qclamp(ec_qadd_s(qscale(sum, p->mo, p->so), p->out_zp), p->act_min, p->act_max);
}

/* Blocks k of EC_NB elements; the parallel loop is in each exported function, where S is a
 * constant (a parallel region inside an inline function is outlined with S as a variable). */
EC_QINLINE void qadd_full(const int S, const ec_qadd_params *p, const void *a, const void *b,
                          long k, void *y)
{
    ec_qstorex(S, (uint8_t *)y + k * EC_NB,
               qadd_block(p, ec_qloadx(S, (const uint8_t *)a + k * EC_NB),
                          ec_qloadx(S, (const uint8_t *)b + k * EC_NB)));
}

/* The ragged rest, elements i .. n - 1 */
EC_QINLINE void qadd_rest(const int S, const ec_qadd_params *p, const void *a, const void *b,
                          long i, long n, void *y)
{
    if (i < n) {
        uint8_t tmp[EC_NB];
        ec_qstorex(S, tmp,
                   qadd_block(p, ec_qloadx_part(S, (const uint8_t *)a + i, (int)(n - i)),
                              ec_qloadx_part(S, (const uint8_t *)b + i, (int)(n - i))));
        memcpy((uint8_t *)y + i, tmp, (size_t)(n - i));
    }
}

#define EC_QADD(S)                                                                                 \
    const long nfull = n / EC_NB;                                                                  \
    EC_OMP_FOR_IF(n >= EC_PARALLEL_MIN_FLOATS)                                                     \
    for (long k = 0; k < nfull; k++) qadd_full(S, p, a, b, k, y);                                  \
    qadd_rest(S, p, a, b, nfull *EC_NB, n, y);

void ec_qadd_fast_u8(const ec_qadd_params *p, const uint8_t *a, const uint8_t *b, long n,
                     uint8_t *y)
{
    EC_QADD(0)
}

void ec_qadd_fast_i8(const ec_qadd_params *p, const int8_t *a, const int8_t *b, long n, int8_t *y)
{
    EC_QADD(1)
}
