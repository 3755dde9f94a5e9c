/* edgecnn runtime: local response normalization across channels (AlexNet), vectorized over the
 * channels of a pixel and parallel over rows.
 *
 *   out[c] = in[c] / (k + alpha / size * sum_{c - before <= j <= c + after} in[j]^2)^beta
 *
 * The squares of a pixel go into a zero-bordered row, so every channel's window is `size`
 * loads with no bounds checks, summed in the reference's order (ascending j from 0; the zeros
 * add nothing). beta = 0.75 (AlexNet, Caffe, ONNX's default) is d^0.75 = sqrt(d) sqrt(sqrt(d)),
 * which the compiler vectorizes (the build's -fno-math-errno: sqrtf then sets no errno);
 * other exponents call powf per channel. Pixels with more than EC_LRN_MAX_C channels take the
 * reference kernel.
 */
#include "ec_norm.h"

#ifdef EC_PORTABLE
/* The portable builds (libm's expf only) never choose this kernel (kernels._lrn_fast_serves)
 * but compile every fast source: this keeps sqrtf and powf out of them. */
void ec_lrn_fast(const ec_tensor *in, ec_tensor *out, int size, float alpha, float beta, float k)
{
    ec_lrn_ref(in, out, size, alpha, beta, k);
}
#else
#include <math.h>

#ifndef EC_LRN_MAX_C
#define EC_LRN_MAX_C 2048
#endif
#define EC_LRN_MAX_SIZE 15 /* window sizes up to this use the bordered row */

static void ec_lrn_pixel(const float *src, float *dst, int c, int size, int before, float scale,
                         float beta, float k)
{
    float sq[EC_LRN_MAX_C + EC_LRN_MAX_SIZE], s[EC_LRN_MAX_C];
    for (int j = 0; j < before; j++) sq[j] = 0.0f;
    for (int i = 0; i < c; i++) sq[before + i] = src[i] * src[i];
    for (int j = before + c; j < c + size; j++) sq[j] = 0.0f;
    for (int i = 0; i < c; i++) s[i] = 0.0f;
    for (int j = 0; j < size; j++) /* window cell j of every channel: channel i - before + j */
        for (int i = 0; i < c; i++) s[i] += sq[i + j];
    if (beta == 0.75f) {
        for (int i = 0; i < c; i++) {
            const float d = k + scale * s[i], r = sqrtf(d);
            dst[i] = src[i] / (r * sqrtf(r));
        }
    } else {
        for (int i = 0; i < c; i++) dst[i] = src[i] / powf(k + scale * s[i], beta);
    }
}

void ec_lrn_fast(const ec_tensor *in, ec_tensor *out, int size, float alpha, float beta, float k)
{
    if (in->c > EC_LRN_MAX_C || size > EC_LRN_MAX_SIZE || size < 1) {
        ec_lrn_ref(in, out, size, alpha, beta, k);
        return;
    }
    const float scale = alpha / (float)size;
    EC_OMP_FOR
    for (int y = 0; y < in->h; y++)
        for (int x = 0; x < in->w; x++)
            ec_lrn_pixel(EC_AT(in, y, x), EC_AT(out, y, x), in->c, size, (size - 1) / 2, scale,
                         beta, k);
}

#endif /* EC_PORTABLE */
