/* edgecnn runtime: dense layer at batch 1, a matrix-vector product bound by memory.
 *
 * Weights are packed [ceil(units/EC_NB)][in_features][EC_NB] (pack_dense): each block of EC_NB
 * outputs is one contiguous stream of in_features * EC_NB floats, read exactly once. A job
 * reads EC_DENSE_STREAMS blocks side by side, so that many streams are in flight for the
 * hardware prefetchers: one stream at a time moved 13.5 GB/s on one Zen 4 core, four 22.5 GB/s
 * (AlexNet's 9216 x 4096 layer). Each stream has its own accumulator, x[i] is broadcast once
 * for all of them, and x stays in cache. Half-precision weights (ec_dense_fast_f16) halve the
 * streams.
 */
#include "ec_dense.h"
#include "ec_vec_fast.h"

#ifndef EC_DENSE_STREAMS
#define EC_DENSE_STREAMS 4
#endif

/* Blocks [b0, b0 + NS) of outputs; HALF: weights as IEEE half bits. */
EC_INLINE void ec_dense_blocks(const int HALF, const int NS, int b0, int in_features, int units,
                               const float *x, float *y, const void *w_packed, const float *bias,
                               int act, float alpha)
{
    const size_t bstride = (size_t)in_features * EC_NB; /* elements per block */
    const size_t w0 = (size_t)b0 * bstride;
    ec_vf a[EC_DENSE_STREAMS];
    EC_UNROLL
    for (int s = 0; s < NS; s++) a[s] = ec_vzero();
    for (int i = 0; i < in_features; i++) {
        const float xi = x[i];
        const size_t o = w0 + (size_t)i * EC_NB;
        EC_UNROLL
        for (int s = 0; s < NS; s++)
            a[s] = ec_vfma_s(a[s], ec_wload(HALF, w_packed, o + s * bstride), xi);
    }
    for (int s = 0; s < NS; s++) {
        const int c0 = (b0 + s) * EC_NB;
        const int n = units - c0 < EC_NB ? units - c0 : EC_NB;
        const ec_vf r = ec_vactivate(ec_vadd(a[s], ec_vbias(bias, c0, n)), act, alpha, NULL, c0, n);
        ec_vstore_n(y + c0, r, n);
    }
}

/* Job j: EC_DENSE_STREAMS blocks, or the last 1 .. 3 (EC_DENSE_STREAMS is 4). */
EC_INLINE void ec_dense_job(const int HALF, int j, int nblk, int in_features, int units,
                            const float *x, float *y, const void *w, const float *bias, int act,
                            float alpha)
{
    const int b0 = j * EC_DENSE_STREAMS;
    switch (nblk - b0) {
    case 1: ec_dense_blocks(HALF, 1, b0, in_features, units, x, y, w, bias, act, alpha); break;
    case 2: ec_dense_blocks(HALF, 2, b0, in_features, units, x, y, w, bias, act, alpha); break;
    case 3: ec_dense_blocks(HALF, 3, b0, in_features, units, x, y, w, bias, act, alpha); break;
    default:
        ec_dense_blocks(HALF, EC_DENSE_STREAMS, b0, in_features, units, x, y, w, bias, act, alpha);
    }
}

/* The OpenMP loops live in the exported functions, not in an inline one, so that HALF is a
 * constant inside the parallel region (GCC outlines a region before it inlines). */
#define EC_DENSE_JOBS(HALF)                                                                        \
    const int nblk = (units + EC_NB - 1) / EC_NB;                                                  \
    const int njob = (nblk + EC_DENSE_STREAMS - 1) / EC_DENSE_STREAMS;                             \
    EC_OMP_FOR                                                                                     \
    for (int j = 0; j < njob; j++)                                                                 \
        ec_dense_job(HALF, j, nblk, in_features, units, x, y, w_packed, bias, act, alpha);

void ec_dense_fast(int in_features, int units, const float *x, float *y, const float *w_packed,
                   const float *bias, int act, float alpha)
{
    EC_DENSE_JOBS(0)
}

void ec_dense_fast_f16(int in_features, int units, const float *x, float *y,
                       const uint16_t *w_packed, const float *bias, int act, float alpha)
{
    EC_DENSE_JOBS(1)
}
