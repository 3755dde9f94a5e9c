/* edgecnn runtime: dense layer at batch 1, a matrix-vector product bound by memory.
 *
 * Weights are packed [ceil(units/EC_NB)][in_features][EC_NB] (pack_dense): each block of EC_NB
 * outputs reads one contiguous stream, in_features * EC_NB floats, exactly once, which the
 * hardware prefetchers follow. Four accumulators hide the FMA latency; x stays in cache.
 * Half-precision weights (ec_dense_fast_f16) halve the stream.
 */
#include "ec_dense.h"
#include "ec_vec_fast.h"

/* HALF: weights as IEEE half bits. */
EC_INLINE void ec_dense(const int HALF, int in_features, int units, const float *x, float *y,
                        const void *w_packed, const float *bias, int act, float alpha)
{
    const int nblk = (units + EC_NB - 1) / EC_NB;
    EC_OMP_FOR
    for (int b = 0; b < nblk; b++) {
        const size_t w = (size_t)b * in_features * EC_NB; /* element offset of the block */
        ec_vf a0 = ec_vzero(), a1 = ec_vzero(), a2 = ec_vzero(), a3 = ec_vzero();
        int i = 0;
        for (; i + 4 <= in_features; i += 4) {
            const size_t o = w + (size_t)i * EC_NB;
            a0 = ec_vfma_s(a0, ec_wload(HALF, w_packed, o), x[i]);
            a1 = ec_vfma_s(a1, ec_wload(HALF, w_packed, o + EC_NB), x[i + 1]);
            a2 = ec_vfma_s(a2, ec_wload(HALF, w_packed, o + 2 * EC_NB), x[i + 2]);
            a3 = ec_vfma_s(a3, ec_wload(HALF, w_packed, o + 3 * EC_NB), x[i + 3]);
        }
        for (; i < in_features; i++)
            a0 = ec_vfma_s(a0, ec_wload(HALF, w_packed, w + (size_t)i * EC_NB), x[i]);
        const int c0 = b * EC_NB;
        const int n = units - c0 < EC_NB ? units - c0 : EC_NB;
        ec_vf r = ec_vadd(ec_vadd(a0, a1), ec_vadd(a2, a3));
        r = ec_vactivate(ec_vadd(r, ec_vbias(bias, c0, n)), act, alpha, NULL, c0, n);
        ec_vstore_n(y + c0, r, n);
    }
}

void ec_dense_fast(int in_features, int units, const float *x, float *y, const float *w_packed,
                   const float *bias, int act, float alpha)
{
    ec_dense(0, in_features, units, x, y, w_packed, bias, act, alpha);
}

void ec_dense_fast_f16(int in_features, int units, const float *x, float *y,
                       const uint16_t *w_packed, const float *bias, int act, float alpha)
{
    ec_dense(1, in_features, units, x, y, w_packed, bias, act, alpha);
}
