/* Checks the fast float kernels (ec_conv.h, ec_dense.h) against naive loops, for builds that
 * cannot be called from Python (NEON cross builds run under qemu-user). Prints one line per
 * case and "all ok"; exits 1 on the first error above the tolerance (relative to the case's
 * largest |output|).
 *
 * Build: cc -O2 -DEC_NB=4 -I<runtime> kernels_check.c ec_conv_direct.c ec_conv_depthwise.c
 *        ec_add_fast.c ec_winograd.c ec_dense_fast.c -lm
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_conv.h"
#include "ec_dense.h"

static unsigned rng_state = 12345u;

static float frand(void) /* uniform in [-1, 1) from a 32-bit LCG: the same on every target */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

/* A bordered buffer: (h + 2 ph) x (w + 2 pw) x c, zero border. */
typedef struct {
    float *buf;
    ec_tensor t;
} buffer;

static buffer make_buffer(int h, int w, int c, int ph, int pw)
{
    buffer b;
    const int rs = (w + 2 * pw) * c;
    b.buf = calloc((size_t)(h + 2 * ph) * rs, sizeof(float));
    b.t.data = b.buf + ph * rs + pw * c;
    b.t.h = h, b.t.w = w, b.t.c = c, b.t.row_stride = rs, b.t.pad_h = ph, b.t.pad_w = pw;
    return b;
}

static float act(float v, int a, float alpha) { return a == EC_ACT_RELU ? (v > 0 ? v : 0) :
                                                       a == EC_ACT_LEAKY ? (v > 0 ? v : alpha * v) :
                                                       v; }

/* Naive conv, OIHW weights, groups 1 or depthwise (groups == Cin). */
static void conv_naive(const ec_conv_params *p, const ec_tensor *in, float *out, int oh, int ow,
                       int co, const float *w, const float *bias)
{
    const int cig = in->c / p->groups, cog = co / p->groups;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int o = 0; o < co; o++) {
                const int g = o / cog;
                double s = bias[o];
                for (int i = 0; i < cig; i++)
                    for (int ky = 0; ky < p->kh; ky++)
                        for (int kx = 0; kx < p->kw; kx++) {
                            const int iy = y * p->sh + ky * p->dh - p->pad_t;
                            const int ix = x * p->sw + kx * p->dw - p->pad_l;
                            if (iy < 0 || ix < 0 || iy >= in->h || ix >= in->w) continue;
                            s += (double)w[((o * cig + i) * p->kh + ky) * p->kw + kx] *
                                 in->data[iy * in->row_stride + ix * in->c + g * cig + i];
                        }
                out[(y * ow + x) * co + o] = act((float)s, p->act, p->act_alpha);
            }
}

static float *pack_blocks(const float *w, int co, int inner) /* [co][inner] -> [blk][inner][NB] */
{
    const int nblk = (co + EC_NB - 1) / EC_NB;
    float *p = calloc((size_t)nblk * inner * EC_NB, sizeof(float));
    for (int o = 0; o < co; o++)
        for (int j = 0; j < inner; j++)
            p[((size_t)(o / EC_NB) * inner + j) * EC_NB + o % EC_NB] = w[(size_t)o * inner + j];
    return p;
}

/* OIHW -> [blk][kh][kw][ci][NB] through the [co][kh][kw][ci] order. */
static float *pack_direct(const float *w, int co, int ci, int kh, int kw)
{
    float *t = malloc(sizeof(float) * co * ci * kh * kw);
    for (int o = 0; o < co; o++)
        for (int i = 0; i < ci; i++)
            for (int k = 0; k < kh * kw; k++)
                t[((size_t)o * kh * kw + k) * ci + i] = w[((size_t)o * ci + i) * kh * kw + k];
    float *p = pack_blocks(t, co, ci * kh * kw);
    free(t);
    return p;
}

/* U = G g G^T, [36][blk][ci][NB], for k x k filters (k = 3: F(4x4, 3x3); 5: F(2x2, 5x5)) */
static float *pack_winograd(const float *w, int co, int ci, int k)
{
    static const double G3[6][5] = {{0.25, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    static const double G5[6][5] = {
        {0.25, 0, 0, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
        {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3}, {0, 0, 0, 0, 1}};
    const double(*G)[5] = k == 5 ? G5 : G3;
    const int nblk = (co + EC_NB - 1) / EC_NB;
    float *p = calloc((size_t)36 * nblk * ci * EC_NB, sizeof(float));
    for (int o = 0; o < co; o++)
        for (int i = 0; i < ci; i++) {
            const float *g = w + ((size_t)o * ci + i) * k * k;
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++) {
                    double s = 0;
                    for (int y = 0; y < k; y++)
                        for (int x = 0; x < k; x++) s += G[a][y] * g[y * k + x] * G[b][x];
                    p[(((size_t)(a * 6 + b) * nblk + o / EC_NB) * ci + i) * EC_NB + o % EC_NB] =
                        (float)s;
                }
        }
    return p;
}

static int compare(const char *name, const ec_tensor *got, const float *ref, float tol)
{
    double scale = 1, err = 0;
    const int n = got->h * got->w * got->c;
    for (int i = 0; i < n; i++) scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    for (int y = 0; y < got->h; y++)
        for (int x = 0; x < got->w; x++)
            for (int c = 0; c < got->c; c++) {
                const double d = fabs(got->data[y * got->row_stride + x * got->c + c] -
                                      ref[(y * got->w + x) * got->c + c]);
                err = d > err ? d : err;
            }
    printf("%-44s max error %.2e (scale %.2f)\n", name, err / scale, scale);
    return err / scale <= tol;
}

enum { DIRECT, WINOGRAD, DEPTHWISE };

static int conv_case(const char *name, int algo, int h, int w, int ci, int co, int k, int s,
                     int pad, int act_kind)
{
    ec_conv_params p = {k, k, s, s, 1, 1, pad, pad, pad, pad, 1, act_kind, 0.1f, NULL};
    if (algo == DEPTHWISE) p.groups = ci;
    const int oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1;
    const int cig = ci / p.groups;
    buffer in = make_buffer(h, w, ci, pad, pad), out = make_buffer(oh, ow, co, 1, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * ci; x++) in.t.data[y * in.t.row_stride + x] = frand();
    const size_t nw = (size_t)co * cig * k * k;
    float *wt = malloc(nw * sizeof(float)), *bias = malloc(co * sizeof(float));
    float *ref = malloc(sizeof(float) * oh * ow * co), *packed;
    for (size_t i = 0; i < nw; i++) wt[i] = frand() * 0.3f;
    for (int i = 0; i < co; i++) bias[i] = frand() * 0.1f;
    conv_naive(&p, &in.t, ref, oh, ow, co, wt, bias);
    if (algo == DIRECT) {
        packed = pack_direct(wt, co, ci, k, k);
        ec_conv2d_direct(&p, &in.t, &out.t, packed, bias);
    } else if (algo == DEPTHWISE) {
        packed = pack_blocks(wt, co, k * k);
        ec_conv2d_depthwise(&p, &in.t, &out.t, packed, bias);
    } else {
        packed = pack_winograd(wt, co, ci, k);
        float *scratch = malloc(sizeof(float) * ec_winograd_scratch_floats(&p, &in.t, &out.t));
        if (k == 5)
            ec_conv5x5_winograd(&p, &in.t, &out.t, packed, bias, scratch);
        else
            ec_conv3x3_winograd(&p, &in.t, &out.t, packed, bias, scratch);
        free(scratch);
    }
    const int ok = compare(name, &out.t, ref, algo == WINOGRAD ? 5e-5f : 2e-5f);
    free(in.buf), free(out.buf), free(wt), free(bias), free(ref), free(packed);
    return ok;
}

static int dense_case(int n_in, int units)
{
    float *w = malloc(sizeof(float) * n_in * units), *x = malloc(sizeof(float) * n_in);
    float *bias = malloc(sizeof(float) * units), *y = malloc(sizeof(float) * units);
    float *ref = malloc(sizeof(float) * units);
    for (int i = 0; i < n_in * units; i++) w[i] = frand() * 0.1f;
    for (int i = 0; i < n_in; i++) x[i] = frand();
    for (int o = 0; o < units; o++) {
        double s = bias[o] = frand();
        for (int i = 0; i < n_in; i++) s += (double)w[o * n_in + i] * x[i];
        ref[o] = act((float)s, EC_ACT_RELU, 0);
    }
    float *packed = pack_blocks(w, units, n_in);
    ec_dense_fast(n_in, units, x, y, packed, bias, EC_ACT_RELU, 0);
    ec_tensor t = {y, 1, 1, units, units, 0, 0};
    const int ok = compare("dense 100 -> 37 relu", &t, ref, 2e-5f);
    free(w), free(x), free(bias), free(y), free(ref), free(packed);
    return ok;
}

/* A random half (bits) of magnitude in [2^-6, 2^1) and its exact float value. */
static uint16_t random_half(float *value)
{
    const unsigned r = (unsigned)((frand() + 1.0f) * 8388607.0f);
    const unsigned sign = r & 1, exponent = 9 + (r >> 1) % 7, mantissa = (r >> 4) & 0x3ff;
    *value = (sign ? -1.0f : 1.0f) * ldexpf(1.0f + (float)mantissa / 1024.0f, (int)exponent - 15);
    return (uint16_t)(sign << 15 | exponent << 10 | mantissa);
}

/* ec_conv2d_direct_f16 against the naive conv with the same (exactly widened) weights. */
static int direct_f16_case(void)
{
    const int h = 7, w = 9, ci = 12, co = 20, k = 3;
    ec_conv_params p = {k, k, 1, 1, 1, 1, 1, 1, 1, 1, 1, EC_ACT_NONE, 0.0f, NULL};
    buffer in = make_buffer(h, w, ci, 1, 1), out = make_buffer(h, w, co, 0, 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * ci; x++) in.t.data[y * in.t.row_stride + x] = frand();
    const int nw = co * ci * k * k, nblk = (co + EC_NB - 1) / EC_NB;
    float *wt = malloc(sizeof(float) * nw), *bias = calloc(co, sizeof(float));
    float *ref = malloc(sizeof(float) * h * w * co);
    uint16_t *bits = malloc(sizeof(uint16_t) * nw);
    uint16_t *packed = calloc((size_t)nblk * k * k * ci * EC_NB, sizeof(uint16_t));
    for (int i = 0; i < nw; i++) bits[i] = random_half(&wt[i]);
    for (int o = 0; o < co; o++) /* OIHW -> [blk][kh][kw][ci][NB] */
        for (int i = 0; i < ci; i++)
            for (int kk = 0; kk < k * k; kk++)
                packed[(((size_t)(o / EC_NB) * k * k + kk) * ci + i) * EC_NB + o % EC_NB] =
                    bits[(o * ci + i) * k * k + kk];
    conv_naive(&p, &in.t, ref, h, w, co, wt, bias);
    ec_conv2d_direct_f16(&p, &in.t, &out.t, packed, bias);
    const int ok = compare("direct f16 weights 7x9x12 -> 20, 3x3", &out.t, ref, 2e-5f);
    free(in.buf), free(out.buf), free(wt), free(bias), free(ref), free(bits), free(packed);
    return ok;
}

int main(void)
{
    printf("EC_NB = %d\n", EC_NB);
    int ok = 1;
    ok &= conv_case("direct 8x8x16 -> 20, 3x3 pad 1, relu", DIRECT, 8, 8, 16, 20, 3, 1, 1,
                    EC_ACT_RELU);
    ok &= conv_case("direct 9x11x8 -> 24, 3x3 stride 2", DIRECT, 9, 11, 8, 24, 3, 2, 1,
                    EC_ACT_NONE);
    ok &= conv_case("direct 5x7x24 -> 40, 1x1, leaky", DIRECT, 5, 7, 24, 40, 1, 1, 0,
                    EC_ACT_LEAKY);
    ok &= conv_case("direct 12x12x3 -> 16, 3x3 pad 1 (RGB)", DIRECT, 12, 12, 3, 16, 3, 1, 1,
                    EC_ACT_RELU);
    ok &= conv_case("winograd 10x7x10 -> 20, pad 1", WINOGRAD, 10, 7, 10, 20, 3, 1, 1,
                    EC_ACT_RELU);
    ok &= conv_case("winograd 16x16x16 -> 32, pad 1", WINOGRAD, 16, 16, 16, 32, 3, 1, 1,
                    EC_ACT_NONE);
    ok &= conv_case("winograd 11x9x13 -> 21, 5x5 pad 2", WINOGRAD, 11, 9, 13, 21, 5, 1, 2,
                    EC_ACT_RELU);
    ok &= conv_case("depthwise 9x8x20, 3x3 stride 2", DEPTHWISE, 9, 8, 20, 20, 3, 2, 1,
                    EC_ACT_RELU);
    ok &= conv_case("depthwise 6x6x8 x2, 3x3", DEPTHWISE, 6, 6, 8, 16, 3, 1, 1, EC_ACT_NONE);
    ok &= dense_case(100, 37);
    ok &= direct_f16_case();
    puts(ok ? "all ok" : "FAILED");
    return ok ? 0 : 1;
}
