/* Fast integer pointwise convolution (1x1, stride 1, no padding; qdense shares it), and the
 * direct one below, with the ARMv8.2 dot product on AArch64 (ec_conv.h; Cortex-A76 and later,
 * the Raspberry Pi 5). SDOT multiplies four signed bytes by four signed bytes and adds the four
 * products to an int32 lane: 16 multiply-adds per instruction, each product exact
 * (128 x 128 = 2^14) and the lane sum wrapping, never saturating.
 *
 * The 4 int32 lanes of an accumulator are 4 output channels; a tile of EC_SR pixels x EC_SV
 * channel blocks shares each weight load. SDOT's by-element form takes four input channels of
 * a pixel from one 32-bit lane of a register, so one 16-byte load of a pixel serves 16 input
 * channels. Weights come packed by packing.pack_qconv_sdot as int8 q = w - b,
 * [ceil(O / 4)][ceil(C / 4)][4][4], zero past O and C: b is the weight zero point when every
 * w - w_zp fits int8 (int8 models), else the nearest value that makes every q fit (uint8
 * models, whose w - w_zp spans -255..255); d = b - w_zp. The activations enter signed,
 * s = x (int8) or x - 128 (uint8: x XOR 0x80), so x - in_zp = s + a - in_zp (a = 0 or 128) and
 *
 *   acc = bias + sum((x - in_zp)(w - w_zp))
 *       = [bias - (in_zp - a) sum(w - w_zp)] + sum(s q) + d sum(s)
 *
 * The bracket is the folded bias of the packed requantization (packing.pack_qrequant); sum(s),
 * one per pixel, is taken before the tiles when d != 0. Every int32 sum wraps (SDOT, ADD,
 * unsigned C), and the true accumulator fits int32 (the compiler bounds the taps), so the
 * rearranged sums give it exactly. Requantization and clamp as the other fast kernels
 * (ec_qvec.h). */
#include "ec_conv.h"
#include "ec_qdot.h"
#include "ec_qvec.h"

#if !defined(__aarch64__) || !defined(__ARM_FEATURE_DOTPROD) || EC_NB != 4                         \
    || defined(EC_NO_VECTOR_EXT)
#error "ec_qconv_sdot.c needs AArch64 with the dot product (-mcpu=cortex-a76) and EC_NB=4"
#endif
#include <arm_neon.h>

#ifndef EC_SR /* a tile: EC_SR pixels x EC_SV blocks of 4 channels of accumulators */
#define EC_SR 4
#define EC_SV 4 /* 16 accumulators, 4 pixel vectors and 4 weight vectors of the 32 registers */
#endif

/* The scratch: the activations as signed bytes, channels padded to a multiple of 4 (when the
 * input is uint8 or C is not such a multiple), then one int32 sum per pixel (packing.
 * qconv_sdot_scratch_bytes). */
static long sstride(const ec_qconv_params *p) { return (p->c + 3) / 4 * 4; }
static long ssums_offset(const ec_qconv_params *p)
{
    return ((long)p->oh * p->ow * sstride(p) + 63) / 64 * 64;
}

long ec_qconv_sdot_scratch_bytes(const ec_qconv_params *p)
{
    return ssums_offset(p) + (long)p->oh * p->ow * 4;
}

/* The c bytes at src XOR flip as s: copied to dst (when not NULL), their sum returned
 * (|sum| <= 128 c); 16 and 8 bytes at a time, then one by one */
EC_QINLINE int32_t sflip(const uint8_t *src, int c, uint8_t flip, int8_t *dst)
{
    int32x4_t acc = vdupq_n_s32(0);
    int k = 0;
    for (; k + 16 <= c; k += 16) {
        const int8x16_t v = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(src + k), vdupq_n_u8(flip)));
        if (dst) vst1q_s8(dst + k, v);
        acc = vpadalq_s16(acc, vpaddlq_s8(v));
    }
    if (k + 8 <= c) {
        const int8x8_t v = vreinterpret_s8_u8(veor_u8(vld1_u8(src + k), vdup_n_u8(flip)));
        if (dst) vst1_s8(dst + k, v);
        acc = vaddq_s32(acc, vmovl_s16(vpaddl_s8(v)));
        k += 8;
    }
    int32_t sum = vaddvq_s32(acc);
    for (; k < c; k++) {
        const int8_t v = (int8_t)(src[k] ^ flip);
        if (dst) dst[k] = v;
        sum += v;
    }
    return sum;
}

/* Pixels [0, n): x as s (xs, cs bytes a pixel, when not NULL) and sum(s) (sums, when not NULL) */
EC_QINLINE void sprepare(const int S, const uint8_t *x, int c, long n, int8_t *xs, long cs,
                         int32_t *sums)
{
    const uint8_t flip = S ? 0 : 0x80;
    EC_OMP_FOR_IF(n * c >= EC_PARALLEL_MIN_FLOATS)
    for (long i = 0; i < n; i++) {
        int8_t *dst = xs ? xs + i * cs : NULL;
        const int32_t sum = sflip(x + i * c, c, flip, dst);
        if (dst)
            for (long k = c; k < cs; k++) dst[k] = 0;
        if (sums) sums[i] = sum;
    }
}

/* acc + the dot products of w's four 4-byte groups with group g (a constant) of x */
EC_QINLINE int32x4_t sdot_lane(int32x4_t acc, int8x16_t w, int8x16_t x, const int g)
{
    switch (g) { /* the lane is an immediate of the instruction */
    case 0: return vdotq_laneq_s32(acc, w, x, 0);
    case 1: return vdotq_laneq_s32(acc, w, x, 1);
    case 2: return vdotq_laneq_s32(acc, w, x, 2);
    default: return vdotq_laneq_s32(acc, w, x, 3);
    }
}

/* The first n (<= 16) bytes of four blocks of 4 outputs (int32 in the 8-bit range: truncation
 * is exact for either type) stored at y */
EC_QINLINE void sstore(void *y, int n, int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d)
{
    const int16x8_t lo = vcombine_s16(vmovn_s32(a), vmovn_s32(b));
    const int16x8_t hi = vcombine_s16(vmovn_s32(c), vmovn_s32(d));
    const int8x16_t v = vcombine_s8(vmovn_s16(lo), vmovn_s16(hi));
    if (n == 16) {
        vst1q_s8((int8_t *)y, v);
    } else {
        int8_t tmp[16];
        vst1q_s8(tmp, v);
        memcpy(y, tmp, (size_t)n);
    }
}

/* The end of a tile of R pixels (pix, pix + 1, ...; their sums of s) x V blocks from ob:
 * d sum(s), the requantization, the stores */
EC_QINLINE void sfinish(const int R, const int V, const ec_qconv_params *p,
                        int32x4_t acc[EC_SR][EC_SV], const int32_t *rq, long cpad,
                        const int32_t *sums, int32_t d, long pix, int ob, void *y)
{
    if (sums)
        for (int r = 0; r < R; r++) {
            const int32x4_t corr = vdupq_n_s32((int32_t)((uint32_t)d * (uint32_t)sums[pix + r]));
            for (int v = 0; v < V; v++) acc[r][v] = vaddq_s32(acc[r][v], corr);
        }
    for (int v = 0; v < V; v++) {
        const long o0 = (long)(ob + v) * 4;
        const ec_qv mult = ec_qload32(rq + cpad + o0), left = ec_qload32(rq + 2 * cpad + o0),
                    right = ec_qload32(rq + 3 * cpad + o0);
        for (int r = 0; r < R; r++)
            acc[r][v] = (int32x4_t)ec_qfinish((ec_qv)acc[r][v], mult, left, right, p);
    }
    const int o0 = ob * 4, n = p->o - o0 < 4 * V ? p->o - o0 : 4 * V;
    const int32x4_t z = vdupq_n_s32(0);
    for (int r = 0; r < R; r++)
        sstore((uint8_t *)y + (pix + r) * p->o + o0, n, acc[r][0], V > 1 ? acc[r][1] : z,
               V > 2 ? acc[r][2] : z, V > 3 ? acc[r][3] : z);
}

/* R pixels from pix x V channel blocks from ob */
EC_QINLINE void stile(const int R, const int V, const ec_qconv_params *p, const int8_t *xs, long cs,
                      const int8_t *w, const int32_t *rq, long cpad, const int32_t *sums, int32_t d,
                      long pix, int ob, void *y)
{
    const long bstep = cs * 4; /* bytes of one packed block */
    const int8_t *wb = w + ob * bstep;
    const int8_t *xr[EC_SR];
    int32x4_t acc[EC_SR][EC_SV];
    for (int r = 0; r < R; r++) {
        xr[r] = xs + (pix + r) * cs;
        for (int v = 0; v < V; v++) acc[r][v] = vld1q_s32(rq + (long)(ob + v) * 4);
    }
    long j = 0;
    for (; j + 16 <= cs; j += 16) { /* 16 input channels: 4 groups of a pixel vector */
        int8x16_t xv[EC_SR];
        for (int r = 0; r < R; r++) xv[r] = vld1q_s8(xr[r] + j);
#pragma GCC unroll 4 /* GCC 12 keeps the group loop, and the tile's accumulators in memory */
        for (int g = 0; g < 4; g++)
            for (int v = 0; v < V; v++) {
                const int8x16_t wv = vld1q_s8(wb + v * bstep + (j + 4 * g) * 4);
                for (int r = 0; r < R; r++) acc[r][v] = sdot_lane(acc[r][v], wv, xv[r], g);
            }
    }
    for (; j < cs; j += 4) { /* the last groups of 4, broadcast */
        int8x16_t xv[EC_SR];
        for (int r = 0; r < R; r++) {
            int32_t u;
            memcpy(&u, xr[r] + j, 4);
            xv[r] = vreinterpretq_s8_s32(vdupq_n_s32(u));
        }
        for (int v = 0; v < V; v++) {
            const int8x16_t wv = vld1q_s8(wb + v * bstep + j * 4);
            for (int r = 0; r < R; r++) acc[r][v] = vdotq_s32(acc[r][v], wv, xv[r]);
        }
    }
    sfinish(R, V, p, acc, rq, cpad, sums, d, pix, ob, y);
}

/* stile for the nv (1 .. EC_SV) blocks left, as a constant (the accumulators in registers) */
EC_QINLINE void stile_nv(const int R, int nv, const ec_qconv_params *p, const int8_t *xs, long cs,
                         const int8_t *w, const int32_t *rq, long cpad, const int32_t *sums,
                         int32_t d, long pix, int ob, void *y)
{
    if (nv == EC_SV)
        stile(R, EC_SV, p, xs, cs, w, rq, cpad, sums, d, pix, ob, y);
    else if (nv == 1)
        stile(R, 1, p, xs, cs, w, rq, cpad, sums, d, pix, ob, y);
    else if (nv == 2)
        stile(R, 2, p, xs, cs, w, rq, cpad, sums, d, pix, ob, y);
    else
        stile(R, EC_SV > 3 ? 3 : 1, p, xs, cs, w, rq, cpad, sums, d, pix, ob, y);
}

EC_QINLINE void sconv(const int S, const ec_qconv_params *p, const void *x, const int8_t *w,
                      const int32_t *rq, int32_t d, void *scratch, void *y)
{
    const long npix = (long)p->oh * p->ow, cs = sstride(p);
    const int nblk = (p->o + 3) / 4, nq = (nblk + EC_SV - 1) / EC_SV;
    const long cpad = (long)nblk * 4, ntile = (npix + EC_SR - 1) / EC_SR;
    const int copy = !S || cs != p->c; /* else the tiles read x in place */
    int8_t *xs = copy ? (int8_t *)scratch : NULL;
    int32_t *sums = d ? (int32_t *)(void *)((uint8_t *)scratch + ssums_offset(p)) : NULL;
    if (xs || sums) sprepare(S, (const uint8_t *)x, p->c, npix, xs, cs, sums);
    const int8_t *s = copy ? xs : (const int8_t *)x;
    /* jobs: channel groups outer (their weights stay in L1 over the pixel tiles), tiles inner */
    EC_OMP_FOR_IF(npix * cs * cpad >= EC_QPARALLEL_MIN_MACS)
    for (long job = 0; job < nq * ntile; job++) {
        const int ob = (int)(job / ntile) * EC_SV, nv = nblk - ob < EC_SV ? nblk - ob : EC_SV;
        const long pix = job % ntile * EC_SR;
        if (pix + EC_SR <= npix)
            stile_nv(EC_SR, nv, p, s, cs, w, rq, cpad, sums, d, pix, ob, y);
        else
            for (long i = pix; i < npix; i++)
                stile_nv(1, nv, p, s, cs, w, rq, cpad, sums, d, i, ob, y);
    }
}

/* ---- direct: any kernel size and stride, dilation 1 along x ---------------------------------
 *
 * As ec_qconv_vnni.c's: the input is copied to the scratch as s with its padding (s of in_zp)
 * and rows of rs bytes; along x a window row is kw * C contiguous bytes, taken four at a time
 * (K4 = ceil(kw C / 4) groups a row; the bytes past kw C meet zero weights), 16 bytes (four
 * groups) to a load. Weights: [ceil(O / 4)][kh][K4][4][4] (packing.pack_qconv_sdot). When
 * d != 0, the sum of s over each output pixel's window follows the rows: per output row, the kh
 * input rows summed byte by byte, their running sum, and a window's sum is the difference of
 * two of those. */

long ec_qconv_sdot_direct_scratch_bytes(const ec_qconv_params *p)
{
    return ec_qdot_direct_scratch(p);
}

/* The padded copy of x as s */
EC_QINLINE void spad(const int S, const ec_qconv_params *p, const uint8_t *x, const ec_qdot_geom *g,
                     int8_t *xs)
{
    const uint8_t flip = S ? 0 : 0x80;
    const int pad = (int8_t)((uint8_t)p->in_zp ^ flip);
    const long left = (long)p->pad_left * p->c, mid = (long)p->w * p->c, wc = g->wp * p->c;
    EC_OMP_FOR_IF(g->hp * g->rs >= EC_PARALLEL_MIN_FLOATS)
    for (long yy = 0; yy < g->hp; yy++) {
        const long iy = yy - p->pad_top;
        int8_t *row = xs + yy * g->rs;
        if (iy >= 0 && iy < p->h) {
            memset(row, pad, (size_t)left);
            sflip(x + iy * mid, (int)mid, flip, row + left);
            memset(row + left + mid, pad, (size_t)(wc - left - mid));
        } else {
            memset(row, pad, (size_t)wc);
        }
        memset(row + wc, 0, (size_t)(g->rs - wc));
    }
}

/* R output pixels from (oy, ox) along the row x V channel blocks from ob */
EC_QINLINE void dtile(const int R, const int V, const ec_qconv_params *p, const ec_qdot_geom *g,
                      const int8_t *xs, const int8_t *w, const int32_t *rq, long cpad,
                      const int32_t *sums, int32_t d, int oy, int ox, int ob, void *y)
{
    /* the geometry in locals: the loops then read no int the accumulators' stores might alias */
    const long k4 = g->k4, xstep = (long)p->sw * p->c, bstep = (long)p->kh * k4 * 16;
    const int8_t *wb = w + ob * bstep;
    int32x4_t acc[EC_SR][EC_SV];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) acc[r][v] = vld1q_s32(rq + (long)(ob + v) * 4);
    for (int ky = 0; ky < p->kh; ky++) {
        const int8_t *row = xs + ((long)oy * p->sh + (long)ky * p->dh) * g->rs + ox * xstep;
        const int8_t *wk = wb + ky * k4 * 16;
        long j = 0;
        for (; j + 4 <= k4; j += 4) { /* four groups: one load of each pixel */
            int8x16_t xv[EC_SR];
            for (int r = 0; r < R; r++) xv[r] = vld1q_s8(row + r * xstep + 4 * j);
#pragma GCC unroll 4 /* as stile's */
            for (int q = 0; q < 4; q++)
                for (int v = 0; v < V; v++) {
                    const int8x16_t wv = vld1q_s8(wk + v * bstep + (j + q) * 16);
                    for (int r = 0; r < R; r++) acc[r][v] = sdot_lane(acc[r][v], wv, xv[r], q);
                }
        }
        for (; j < k4; j++) { /* the last groups, broadcast */
            int8x16_t xv[EC_SR];
            for (int r = 0; r < R; r++) {
                int32_t u;
                memcpy(&u, row + r * xstep + 4 * j, 4);
                xv[r] = vreinterpretq_s8_s32(vdupq_n_s32(u));
            }
            for (int v = 0; v < V; v++) {
                const int8x16_t wv = vld1q_s8(wk + v * bstep + j * 16);
                for (int r = 0; r < R; r++) acc[r][v] = vdotq_s32(acc[r][v], wv, xv[r]);
            }
        }
    }
    const long pix = (long)oy * p->ow + ox;
    sfinish(R, V, p, acc, rq, cpad, sums, d, pix, ob, y);
}

EC_QINLINE void dtile_nv(const int R, int nv, const ec_qconv_params *p, const ec_qdot_geom *g,
                         const int8_t *xs, const int8_t *w, const int32_t *rq, long cpad,
                         const int32_t *sums, int32_t d, int oy, int ox, int ob, void *y)
{
    if (nv == EC_SV)
        dtile(R, EC_SV, p, g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
    else if (nv == 1)
        dtile(R, 1, p, g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
    else if (nv == 2)
        dtile(R, 2, p, g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
    else
        dtile(R, EC_SV > 3 ? 3 : 1, p, g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
}

EC_QINLINE void dconv(const int S, const ec_qconv_params *p, const void *x, const int8_t *w,
                      const int32_t *rq, int32_t d, void *scratch, void *y)
{
    const ec_qdot_geom g = ec_qdot_geometry(p);
    const int nblk = (p->o + 3) / 4, nq = (nblk + EC_SV - 1) / EC_SV;
    const long cpad = (long)nblk * 4, ntr = (p->ow + EC_SR - 1) / EC_SR;
    int8_t *xs = (int8_t *)scratch;
    int32_t *sums = d ? (int32_t *)(void *)(xs + g.sums) : NULL;
    spad(S, p, (const uint8_t *)x, &g, xs);
    if (sums) ec_qdot_window_sums(1, p, &g, xs, sums, (uint32_t *)(sums + (long)p->oh * p->ow));
    /* jobs: channel groups outer (their weights stay in cache), then rows, then tiles */
    EC_OMP_FOR_IF((long)p->oh * p->ow * p->kh * g.k4 * 4 * cpad >= EC_QPARALLEL_MIN_MACS)
    for (long job = 0; job < nq * p->oh * ntr; job++) {
        const int ob = (int)(job / (p->oh * ntr)) * EC_SV,
                  nv = nblk - ob < EC_SV ? nblk - ob : EC_SV;
        const int oy = (int)(job / ntr % p->oh), ox = (int)(job % ntr * EC_SR);
        if (ox + EC_SR <= p->ow)
            dtile_nv(EC_SR, nv, p, &g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
        else
            for (int i = ox; i < p->ow; i++)
                dtile_nv(1, nv, p, &g, xs, w, rq, cpad, sums, d, oy, i, ob, y);
    }
}

void ec_qconv_direct_sdot_u8(const ec_qconv_params *p, const uint8_t *x, const int8_t *w,
                             const int32_t *rq, int32_t d, void *scratch, uint8_t *y)
{
    dconv(0, p, x, w, rq, d, scratch, y);
}

void ec_qconv_direct_sdot_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *w,
                             const int32_t *rq, int32_t d, void *scratch, int8_t *y)
{
    dconv(1, p, x, w, rq, d, scratch, y);
}

void ec_qconv_pointwise_sdot_u8(const ec_qconv_params *p, const uint8_t *x, const int8_t *w,
                                const int32_t *rq, int32_t d, void *scratch, uint8_t *y)
{
    sconv(0, p, x, w, rq, d, scratch, y);
}

void ec_qconv_pointwise_sdot_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *w,
                                const int32_t *rq, int32_t d, void *scratch, int8_t *y)
{
    sconv(1, p, x, w, rq, d, scratch, y);
}
