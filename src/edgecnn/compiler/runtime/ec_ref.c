/* edgecnn runtime: reference kernels. Plain C99 loops written for clarity, with explicit
 * bounds checks on padding; the fast kernels are tested against these. */
#include "ec_conv.h"
#include "ec_dense.h"
#include "ec_eltwise.h"
#include "ec_norm.h"
#include "ec_pool.h"
#include "ec_quant.h"
#include "ec_tensor.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

float ec_activate(float v, int act, float alpha, float slope)
{
    switch (act) {
    case EC_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case EC_ACT_LEAKY: return v > 0.0f ? v : v * alpha;
    case EC_ACT_RELU6: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
    case EC_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case EC_ACT_TANH: return 1.0f - 2.0f / (expf(2.0f * v) + 1.0f);
    case EC_ACT_PRELU: return v > 0.0f ? v : v * slope;
    default: return v;
    }
}

static float slope_of(const float *slope, int c) { return slope ? slope[c] : 0.0f; }

void ec_conv2d_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                   const float *w_oihw, const float *bias)
{
    const int cig = in->c / p->groups, cog = out->c / p->groups;
    const int wsize = cig * p->kh * p->kw; /* floats per output channel */
    int oy;
    EC_OMP_FOR
    for (oy = 0; oy < out->h; oy++) {
        int ox, o, i, ky, kx;
        for (ox = 0; ox < out->w; ox++) {
            float *dst = EC_AT(out, oy, ox);
            for (o = 0; o < out->c; o++) {
                const int g = o / cog;
                const float *wo = w_oihw + (ptrdiff_t)o * wsize;
                float acc = bias ? bias[o] : 0.0f;
                for (ky = 0; ky < p->kh; ky++) {
                    const int y = oy * p->sh + ky * p->dh - p->pad_t;
                    if (y < 0 || y >= in->h) continue;
                    for (kx = 0; kx < p->kw; kx++) {
                        const int x = ox * p->sw + kx * p->dw - p->pad_l;
                        const float *src;
                        if (x < 0 || x >= in->w) continue;
                        src = EC_AT(in, y, x) + g * cig;
                        for (i = 0; i < cig; i++) acc += src[i] * wo[(i * p->kh + ky) * p->kw + kx];
                    }
                }
                dst[o] = ec_activate(acc, p->act, p->act_alpha, slope_of(p->act_slope, o));
            }
        }
    }
}

void ec_binary_conv2d_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                          const float *w_sign_oihw, const float *scale, const float *bias)
{
    const int cin = in->c, wsize = cin * p->kh * p->kw;
    int oy;
    EC_OMP_FOR
    for (oy = 0; oy < out->h; oy++) {
        int ox, o, i, ky, kx;
        for (ox = 0; ox < out->w; ox++) {
            float *dst = EC_AT(out, oy, ox);
            for (o = 0; o < out->c; o++) {
                const float *wo = w_sign_oihw + (ptrdiff_t)o * wsize;
                float acc = 0.0f;
                for (ky = 0; ky < p->kh; ky++) {
                    const int y = oy * p->sh + ky - p->pad_t;
                    if (y < 0 || y >= in->h) continue;
                    for (kx = 0; kx < p->kw; kx++) {
                        const int x = ox * p->sw + kx - p->pad_l;
                        const float *src;
                        if (x < 0 || x >= in->w) continue;
                        src = EC_AT(in, y, x);
                        for (i = 0; i < cin; i++) {
                            const float s = src[i] > 0.0f ? 1.0f : -1.0f;
                            acc += s * wo[(i * p->kh + ky) * p->kw + kx];
                        }
                    }
                }
                acc = acc * scale[o] + (bias ? bias[o] : 0.0f);
                dst[o] = ec_activate(acc, p->act, p->act_alpha, slope_of(p->act_slope, o));
            }
        }
    }
}

static void window(const ec_conv_params *p, const ec_tensor *in, int oy, int ox, int *y0, int *y1,
                   int *x0, int *x1)
{
    ec_pool_window(oy, ox, p->sh, p->sw, p->pad_t, p->pad_l, p->kh, p->kw, in->h, in->w, y0, y1, x0,
                   x1);
}

void ec_maxpool_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out)
{
    int oy;
    EC_OMP_FOR
    for (oy = 0; oy < out->h; oy++) {
        int ox, y, x, c, y0, y1, x0, x1;
        for (ox = 0; ox < out->w; ox++) {
            float *dst = EC_AT(out, oy, ox);
            window(p, in, oy, ox, &y0, &y1, &x0, &x1);
            for (c = 0; c < out->c; c++) dst[c] = -INFINITY;
            for (y = y0; y < y1; y++)
                for (x = x0; x < x1; x++) {
                    const float *src = EC_AT(in, y, x);
                    for (c = 0; c < out->c; c++)
                        if (src[c] > dst[c]) dst[c] = src[c];
                }
        }
    }
}

void ec_avgpool_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                    int count_include_pad)
{
    int oy;
    EC_OMP_FOR
    for (oy = 0; oy < out->h; oy++) {
        int ox, y, x, c, y0, y1, x0, x1;
        for (ox = 0; ox < out->w; ox++) {
            float *dst = EC_AT(out, oy, ox);
            float n;
            window(p, in, oy, ox, &y0, &y1, &x0, &x1);
            if (count_include_pad) { /* cells inside the declared padding count as zeros */
                int a = oy * p->sh - p->pad_t, b = ox * p->sw - p->pad_l;
                int ya = a < -p->pad_t ? -p->pad_t : a, yb = a + p->kh;
                int xa = b < -p->pad_l ? -p->pad_l : b, xb = b + p->kw;
                if (yb > in->h + p->pad_b) yb = in->h + p->pad_b;
                if (xb > in->w + p->pad_r) xb = in->w + p->pad_r;
                n = (float)((yb - ya) * (xb - xa));
            } else {
                n = (float)((y1 - y0) * (x1 - x0));
            }
            for (c = 0; c < out->c; c++) dst[c] = 0.0f;
            for (y = y0; y < y1; y++)
                for (x = x0; x < x1; x++) {
                    const float *src = EC_AT(in, y, x);
                    for (c = 0; c < out->c; c++) dst[c] += src[c];
                }
            for (c = 0; c < out->c; c++) dst[c] /= n;
        }
    }
}

void ec_global_avgpool_ref(const ec_tensor *in, ec_tensor *out)
{
    int y, x, c;
    const float n = (float)(in->h * in->w);
    for (c = 0; c < in->c; c++) out->data[c] = 0.0f;
    for (y = 0; y < in->h; y++)
        for (x = 0; x < in->w; x++) {
            const float *src = EC_AT(in, y, x);
            for (c = 0; c < in->c; c++) out->data[c] += src[c];
        }
    for (c = 0; c < in->c; c++) out->data[c] /= n;
}

void ec_dense_ref(int in_features, int units, const float *x, float *y, const float *w,
                  const float *bias, int act, float alpha)
{
    int o;
    EC_OMP_FOR
    for (o = 0; o < units; o++) {
        const float *wo = w + (ptrdiff_t)o * in_features;
        float acc = bias ? bias[o] : 0.0f;
        int i;
        for (i = 0; i < in_features; i++) acc += wo[i] * x[i];
        y[o] = ec_activate(acc, act, alpha, 0.0f);
    }
}

void ec_activation_ref(const ec_tensor *in, ec_tensor *out, int act, float alpha,
                       const float *slope)
{
    int y, x, c;
    for (y = 0; y < in->h; y++)
        for (x = 0; x < in->w; x++) {
            const float *src = EC_AT(in, y, x);
            float *dst = EC_AT(out, y, x);
            for (c = 0; c < in->c; c++)
                dst[c] = ec_activate(src[c], act, alpha, slope_of(slope, c));
        }
}

void ec_scale_bias_ref(const ec_tensor *in, ec_tensor *out, const float *scale, const float *bias)
{
    int y, x, c;
    for (y = 0; y < in->h; y++)
        for (x = 0; x < in->w; x++) {
            const float *src = EC_AT(in, y, x);
            float *dst = EC_AT(out, y, x);
            for (c = 0; c < in->c; c++)
                dst[c] = src[c] * (scale ? scale[c] : 1.0f) + (bias ? bias[c] : 0.0f);
        }
}

void ec_softmax_ref(const ec_tensor *in, ec_tensor *out)
{
    int y, x, c;
    for (y = 0; y < in->h; y++)
        for (x = 0; x < in->w; x++) {
            const float *src = EC_AT(in, y, x);
            float *dst = EC_AT(out, y, x);
            float m = src[0], sum = 0.0f;
            for (c = 1; c < in->c; c++) m = src[c] > m ? src[c] : m;
            for (c = 0; c < in->c; c++) {
                dst[c] = expf(src[c] - m);
                sum += dst[c];
            }
            for (c = 0; c < in->c; c++) dst[c] /= sum;
        }
}

/* base^expo for base > 0. The portable build (EC_PORTABLE: libm's expf only) computes
 * expf(expo * ln(base)) with ln from the float's exponent and atanh series of the mantissa
 * (|s| <= 0.172, terms to s^11: relative error below 1e-9 before the final expf). */
static float ec_powf(float base, float expo)
{
#ifdef EC_PORTABLE
    uint32_t bits;
    double m, s, s2, ln;
    int e;
    memcpy(&bits, &base, sizeof bits);
    e = (int)((bits >> 23) & 255u) - 127;
    bits = (bits & 0x7fffffu) | 0x3f800000u; /* mantissa in [1, 2) */
    memcpy(&base, &bits, sizeof bits);
    m = base;
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e += 1;
    }
    s = (m - 1.0) / (m + 1.0);
    s2 = s * s;
    ln =
        e * 0.6931471805599453
        + 2.0 * s
              * (1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 / 11)))));
    return expf((float)(expo * ln));
#else
    return powf(base, expo);
#endif
}

void ec_lrn_ref(const ec_tensor *in, ec_tensor *out, int size, float alpha, float beta, float k)
{
    const int before = (size - 1) / 2, after = size / 2;
    int y, x, c, j;
    for (y = 0; y < in->h; y++)
        for (x = 0; x < in->w; x++) {
            const float *src = EC_AT(in, y, x);
            float *dst = EC_AT(out, y, x);
            for (c = 0; c < in->c; c++) {
                int lo = c - before < 0 ? 0 : c - before;
                int hi = c + after + 1 > in->c ? in->c : c + after + 1;
                float s = 0.0f;
                for (j = lo; j < hi; j++) s += src[j] * src[j];
                dst[c] = src[c] / ec_powf(k + alpha / (float)size * s, beta);
            }
        }
}

void ec_fake_quant_ref(const ec_tensor *in, ec_tensor *out, double scale, int zero_point, int qmin,
                       int qmax)
{
    int y, x, c;
    for (y = 0; y < in->h; y++)
        for (x = 0; x < in->w; x++) {
            const float *src = EC_AT(in, y, x);
            float *dst = EC_AT(out, y, x);
            for (c = 0; c < in->c; c++) {
                double v = (double)src[c] / scale, a = v < 0.0 ? -v : v, q;
                if (a > 1e9) a = 1e9; /* far outside any integer range: clamped below anyway */
                q = (double)(long)(a + 0.5); /* round half away from zero, without libm */
                q = (v < 0.0 ? -q : q) + zero_point;
                q = q < qmin ? qmin : (q > qmax ? qmax : q);
                dst[c] = (float)((q - zero_point) * scale);
            }
        }
}

void ec_add_ref(const ec_tensor *a, const ec_tensor *b, ec_tensor *out, int act, float alpha,
                const float *slope)
{
    int y, x, c;
    for (y = 0; y < out->h; y++)
        for (x = 0; x < out->w; x++) {
            const float *pa = EC_AT(a, y, x), *pb = EC_AT(b, y, x);
            float *dst = EC_AT(out, y, x);
            for (c = 0; c < out->c; c++)
                dst[c] = ec_activate(pa[c] + pb[c], act, alpha, slope_of(slope, c));
        }
}

void ec_copy_channels(const ec_tensor *in, ec_tensor *out, int c0)
{
    int y, x;
    for (y = 0; y < in->h; y++)
        for (x = 0; x < in->w; x++)
            memcpy(EC_AT(out, y, x) + c0, EC_AT(in, y, x), (size_t)in->c * sizeof(float));
}

ec_tensor ec_view(float *base, size_t offset, int h, int w, int c, int pad_h, int pad_w)
{
    ec_tensor t;
    t.h = h;
    t.w = w;
    t.c = c;
    t.pad_h = pad_h;
    t.pad_w = pad_w;
    t.row_stride = (w + 2 * pad_w) * c;
    t.data = base + offset + (size_t)pad_h * (size_t)t.row_stride + (size_t)pad_w * (size_t)c;
    return t;
}

void ec_zero_border(ec_tensor *t)
{
    const int pw = t->w + 2 * t->pad_w; /* padded width */
    float *base = t->data - (ptrdiff_t)t->pad_h * t->row_stride - (ptrdiff_t)t->pad_w * t->c;
    int y;
    if (t->pad_h == 0 && t->pad_w == 0) return;
    for (y = 0; y < t->h + 2 * t->pad_h; y++) {
        float *row = base + (ptrdiff_t)y * t->row_stride;
        if (y < t->pad_h || y >= t->h + t->pad_h) {
            memset(row, 0, (size_t)pw * (size_t)t->c * sizeof(float));
        } else {
            memset(row, 0, (size_t)t->pad_w * (size_t)t->c * sizeof(float));
            memset(row + (ptrdiff_t)(t->pad_w + t->w) * t->c, 0,
                   (size_t)t->pad_w * (size_t)t->c * sizeof(float));
        }
    }
}

void ec_load_hwc(ec_tensor *t, const float *src)
{
    const size_t row = (size_t)t->w * (size_t)t->c;
    int y;
    for (y = 0; y < t->h; y++) memcpy(EC_AT(t, y, 0), src + (size_t)y * row, row * sizeof(float));
}

void ec_store_hwc(const ec_tensor *t, float *dst)
{
    const size_t row = (size_t)t->w * (size_t)t->c;
    int y;
    for (y = 0; y < t->h; y++) memcpy(dst + (size_t)y * row, EC_AT(t, y, 0), row * sizeof(float));
}
