/* edgecnn runtime: pooling written for the compiler's vectorizer (the plain versions in
 * ec_ref.c stay the oracle). Same contract as ec_maxpool_ref / ec_avgpool_ref: windows are
 * clipped to the input; only the interior of `out` is written.
 *
 * The channel loops run over `restrict` rows with a branch-free max, so gcc and clang turn
 * them into vector max/add instructions; output rows are split over OpenMP threads. */
#include "ec_pool.h"

#include <string.h>

static void max_into(float *restrict d, const float *restrict s, int n)
{
    int c;
    for (c = 0; c < n; c++) d[c] = s[c] > d[c] ? s[c] : d[c];
}

static void add_into(float *restrict d, const float *restrict s, int n)
{
    int c;
    for (c = 0; c < n; c++) d[c] += s[c];
}

static void clip(const ec_conv_params *p, const ec_tensor *in, int oy, int ox, int *y0, int *y1,
                 int *x0, int *x1)
{
    ec_pool_window(oy, ox, p->sh, p->sw, p->pad_t, p->pad_l, p->kh, p->kw, in->h, in->w, y0, y1, x0,
                   x1);
}

void ec_maxpool(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out)
{
    const int n = out->c;
    int oy;
    EC_OMP_FOR_IF(out->h * out->w * n >= EC_PARALLEL_MIN_FLOATS)
    for (oy = 0; oy < out->h; oy++) {
        int ox, y, x, y0, y1, x0, x1;
        for (ox = 0; ox < out->w; ox++) {
            float *dst = EC_AT(out, oy, ox);
            clip(p, in, oy, ox, &y0, &y1, &x0, &x1);
            memcpy(dst, EC_AT(in, y0, x0), (size_t)n * sizeof(float)); /* windows never empty */
            for (y = y0; y < y1; y++)
                for (x = (y == y0 ? x0 + 1 : x0); x < x1; x++) max_into(dst, EC_AT(in, y, x), n);
        }
    }
}

void ec_avgpool(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out, int count_include_pad)
{
    const int n = out->c;
    int oy;
    EC_OMP_FOR_IF(out->h * out->w * n >= EC_PARALLEL_MIN_FLOATS)
    for (oy = 0; oy < out->h; oy++) {
        int ox, y, x, c, y0, y1, x0, x1;
        for (ox = 0; ox < out->w; ox++) {
            float *dst = EC_AT(out, oy, ox);
            float inv;
            clip(p, in, oy, ox, &y0, &y1, &x0, &x1);
            if (count_include_pad) { /* cells inside the declared padding count as zeros */
                const int a = oy * p->sh - p->pad_t, b = ox * p->sw - p->pad_l;
                int ya = a < -p->pad_t ? -p->pad_t : a, yb = a + p->kh;
                int xa = b < -p->pad_l ? -p->pad_l : b, xb = b + p->kw;
                if (yb > in->h + p->pad_b) yb = in->h + p->pad_b;
                if (xb > in->w + p->pad_r) xb = in->w + p->pad_r;
                inv = 1.0f / (float)((yb - ya) * (xb - xa));
            } else {
                inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
            }
            memcpy(dst, EC_AT(in, y0, x0), (size_t)n * sizeof(float));
            for (y = y0; y < y1; y++)
                for (x = (y == y0 ? x0 + 1 : x0); x < x1; x++) add_into(dst, EC_AT(in, y, x), n);
            for (c = 0; c < n; c++) dst[c] *= inv;
        }
    }
}
