/* edgecnn runtime: the residual add in vectors. */
#include "ec_eltwise.h"
#include "ec_vec_fast.h"

/* out = act(a + b), same shape (borders may differ; out may be a or b). The w * c floats of a
 * row are contiguous in every view, so rows stream as whole vectors; PReLU (per-channel
 * slopes) goes pixel by pixel. */
void ec_add_fast(const ec_tensor *a, const ec_tensor *b, ec_tensor *out, int act, float alpha,
                 const float *slope)
{
    const int c = out->c, len = out->w * c;
    const int prelu = act == EC_ACT_PRELU && slope;
    EC_OMP_FOR_IF((size_t)out->h * len >= EC_PARALLEL_MIN_FLOATS)
    for (int y = 0; y < out->h; y++) {
        const float *pa = a->data + (ptrdiff_t)y * a->row_stride;
        const float *pb = b->data + (ptrdiff_t)y * b->row_stride;
        float *po = out->data + (ptrdiff_t)y * out->row_stride;
        if (prelu) {
            for (int x = 0; x < len; x += c)
                for (int c0 = 0; c0 < c; c0 += EC_NB) {
                    const int n = c - c0 < EC_NB ? c - c0 : EC_NB;
                    const ec_vf v = ec_vadd(ec_vload_n(pa + x + c0, n), ec_vload_n(pb + x + c0, n));
                    ec_vstore_n(po + x + c0, ec_vactivate(v, act, alpha, slope, c0, n), n);
                }
            continue;
        }
        int i = 0;
        for (; i + EC_NB <= len; i += EC_NB)
            ec_vstore(po + i, ec_vactivate(ec_vadd(ec_vload(pa + i), ec_vload(pb + i)), act, alpha,
                                           NULL, 0, EC_NB));
        if (i < len) {
            const int n = len - i;
            const ec_vf v = ec_vadd(ec_vload_n(pa + i, n), ec_vload_n(pb + i, n));
            ec_vstore_n(po + i, ec_vactivate(v, act, alpha, NULL, 0, n), n);
        }
    }
}
