/* edgecnn runtime: binary (XNOR) convolution on bit-packed signs.
 *
 * Signs are bits (1 = positive, v > 0): the input is packed per pixel into words of 64
 * channels (scratch from the arena), the weights by the compiler (edgecnn.compiler.emit:
 * [C_out][kh][kw][words], bit b of word j = input channel 64 j + b; unused bits are 0 in both,
 * so they agree and cancel below). For the window cells inside the input (padded cells count
 * 0, as in the reference):
 *     sum sign(w) sign(x) = cells * C_in - 2 * popcount(w XOR x)
 * out[o] = act(scale[o] * sum + bias[o]). The reference is ec_binary_conv2d_ref. */
#include "ec_conv.h"
#include "ec_eltwise.h"

#include <stdint.h>
#include <string.h>

static int popcount64(uint64_t v)
{
#if (defined(__GNUC__) || defined(__clang__)) && !defined(EC_PORTABLE)
    return __builtin_popcountll(v); /* one instruction where the CPU has it, else libgcc's */
#else                               /* SWAR: bits per 2, 4, 8, then a multiply sums the bytes */
    v = v - ((v >> 1) & 0x5555555555555555u);
    v = (v & 0x3333333333333333u) + ((v >> 2) & 0x3333333333333333u);
    v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return (int)((v * 0x0101010101010101u) >> 56);
#endif
}

/* 64-bit words through memcpy: the arena and weights are float arrays (no aliasing rules
 * broken; compilers emit one load or store). */
static uint64_t ld64(const float *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void st64(float *p, uint64_t v) { memcpy(p, &v, sizeof v); }

/* window cells the kernel handles (11 x 11); larger kernels use the reference */
#define EC_BINARY_MAX_CELLS 121

size_t ec_binary_scratch_floats(const ec_tensor *in)
{
    return (size_t)in->h * (size_t)in->w * (size_t)((in->c + 63) / 64) * 2u;
}

void ec_binary_conv2d_bits(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                           const float *w_bits, const float *scale, const float *bias,
                           float *scratch)
{
    const int words = (in->c + 63) / 64;
    const int wsize = p->kh * p->kw * words; /* words per output channel */
    int y, oy;
    /* 1. the input's signs, [h][w][words] */
    EC_OMP_FOR_IF(in->h * in->w * in->c >= EC_PARALLEL_MIN_FLOATS)
    for (y = 0; y < in->h; y++) {
        int x, j, b;
        for (x = 0; x < in->w; x++) {
            const float *src = EC_AT(in, y, x);
            float *dst = scratch + ((size_t)y * in->w + x) * words * 2;
            for (j = 0; j < words; j++) {
                uint64_t v = 0;
                const int n = in->c - 64 * j < 64 ? in->c - 64 * j : 64;
                for (b = 0; b < n; b++) v |= (uint64_t)(src[64 * j + b] > 0.0f) << b;
                st64(dst + 2 * j, v);
            }
        }
    }
    /* 2. every output pixel: the window's cells inside the input, then every channel */
    EC_OMP_FOR_IF(out->h * out->w * out->c * wsize >= EC_PARALLEL_MIN_FLOATS)
    for (oy = 0; oy < out->h; oy++) {
        const float *xs[EC_BINARY_MAX_CELLS];
        int woff[EC_BINARY_MAX_CELLS];
        int ox, o, ky, kx, j, k;
        for (ox = 0; ox < out->w; ox++) {
            float *dst = EC_AT(out, oy, ox);
            int cells = 0;
            for (ky = 0; ky < p->kh; ky++) {
                const int iy = oy * p->sh + ky - p->pad_t;
                if (iy < 0 || iy >= in->h) continue;
                for (kx = 0; kx < p->kw; kx++) {
                    const int ix = ox * p->sw + kx - p->pad_l;
                    if (ix < 0 || ix >= in->w) continue;
                    xs[cells] = scratch + ((size_t)iy * in->w + ix) * words * 2;
                    woff[cells++] = (ky * p->kw + kx) * words * 2;
                }
            }
            for (o = 0; o < out->c; o++) {
                const float *wo = w_bits + (size_t)o * wsize * 2;
                int diff = 0;
                float acc;
                for (k = 0; k < cells; k++)
                    for (j = 0; j < words; j++)
                        diff += popcount64(ld64(xs[k] + 2 * j) ^ ld64(wo + woff[k] + 2 * j));
                acc = (float)(cells * in->c - 2 * diff) * scale[o] + (bias ? bias[o] : 0.0f);
                dst[o] =
                    ec_activate(acc, p->act, p->act_alpha, p->act_slope ? p->act_slope[o] : 0.0f);
            }
        }
    }
}
