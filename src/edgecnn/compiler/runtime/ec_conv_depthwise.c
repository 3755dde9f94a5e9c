/* edgecnn runtime: depthwise convolution.
 *
 * Multiplier 1 (MobileNet's case): a job is one output row x a group of EC_DW_GROUP blocks of
 * channels; the row is cut into tiles of tw <= EC_DW_TW pixels along x (ec_dw_width: the even
 * split of the row, so MobileNet's widths waste no lane on repeated pixels), and for each tile
 * every block of channels is one register tile of tw accumulators that start at the bias,
 * with ReLU / ReLU6 applied as a clamp before the store. The input is bordered, so windows
 * need no bounds checks. On one Zen 5 core (AVX-512) MobileNet v2's 3x3 layers run at about
 * 50-120 GFLOP/s (2-3x the former 4-pixel tiles), the large stride-2 ones bound by memory.
 *  - 3x3, dilation 1, stride 1 or 2 (ec_dw_tile3): each input vector under a kernel row is
 *    loaded once and feeds the (up to 3) accumulators whose windows cover it, with that kernel
 *    row's 3 weight vectors in registers: 3 (tw + 2) loads for 9 tw FMAs at stride 1.
 *  - any other kernel / stride / dilation (ec_dw_tileg): one load per FMA (memory operands).
 *  - fewer channels than a vector (EC_NB % C == 0, stride 1 along x: MobileNet v1 0.25's
 *    8-channel layer on AVX-512): a vector holds EC_NB / C consecutive pixels, whose windows
 *    are EC_NB / C consecutive input pixels, so ec_dw_tileg runs on "vector pixels" with
 *    weights (and bias, PReLU slopes) repeated across the lanes.
 * A ragged last block loads whole vectors (lanes past Cout read the next pixel's channels and
 * are never stored) except where that would read past the input's buffer; there, and for
 * multipliers > 1, the lane-exact tiles (ec_dw_tile) of 4 pixels run. */
#include "ec_conv_store.h"

#ifndef EC_DW_TW /* pixels per tile (16 or 8): accumulators + 3 weights + inputs in registers */
#if EC_NB >= 16 || defined(__aarch64__)
#define EC_DW_TW 16 /* 32 vector registers */
#else
#define EC_DW_TW 8
#endif
#endif
#if defined(__GNUC__)
#define EC_NOINLINE static __attribute__((noinline))
#else
#define EC_NOINLINE static
#endif
/* Blocks of channels per job (OpenMP work item): with one output row per job, 4 blocks (64
 * channels at EC_NB=16, 16 at EC_NB=4) keep a job's weights (4 x 9 vectors for 3x3) in L1 while
 * a MobileNet row still gives rows x ceil(blocks / 4) >= 2 jobs per thread to balance. */
#define EC_DW_GROUP 4
#define EC_DW_PACK_MAX 25 /* kernel cells of the pixel-packed path (weights on the stack) */

/* Epilogue of a tile: acc[i] (bias included) -> op + i * ostep, n lanes. CLAMP: the activation
 * is max(lo, min(hi, v)) (ReLU, ReLU6); otherwise none here (others are applied afterwards
 * by ec_dw_post). Both known at compile time, so the accumulators stay in registers. */
typedef struct {
    ec_vf lo, hi;
} ec_clamp;

EC_INLINE void ec_dw_store(const int TW, const int CLAMP, const ec_vf *acc, float *op,
                           ptrdiff_t ostep, const ec_clamp *cl, int n)
{
    EC_UNROLL
    for (int i = 0; i < TW; i++) {
        const ec_vf v = CLAMP ? ec_vmin(ec_vmax(acc[i], cl->lo), cl->hi) : acc[i];
        if (n == EC_NB)
            ec_vstore(op + i * ostep, v);
        else
            ec_vstore_n(op + i * ostep, v, n);
    }
}

/* 3x3, dilation 1, stride S (1 or 2) along x: TW output pixels of one block. ip: the input at
 * the first window's origin and this block's first channel; c: the input pixel stride; rs:
 * its row stride; w: the block's 9 weight vectors. */
EC_INLINE void ec_dw_tile3(const int TW, const int S, const int CLAMP, const float *ip, ptrdiff_t c,
                           ptrdiff_t rs, const float *w, ec_vf b, float *op, ptrdiff_t ostep,
                           const ec_clamp *cl, int n)
{
    ec_vf acc[EC_DW_TW];
    EC_UNROLL
    for (int i = 0; i < TW; i++) acc[i] = b;
    EC_UNROLL
    for (int ky = 0; ky < 3; ky++) {
        const float *row = ip + ky * rs;
        const ec_vf w0 = ec_vload(w + (3 * ky) * EC_NB), w1 = ec_vload(w + (3 * ky + 1) * EC_NB),
                    w2 = ec_vload(w + (3 * ky + 2) * EC_NB);
        EC_UNROLL
        for (int j = 0; j < (TW - 1) * S + 3; j++) { /* input column j of the tile */
            ec_vf xv = ec_vload(row + j * c);
            EC_KEEP(xv); /* one load for its (up to) 3 FMAs */
            if (j % S == 0 && j / S < TW) acc[j / S] = ec_vfma(acc[j / S], xv, w0);
            if (j >= 1 && (j - 1) % S == 0 && (j - 1) / S < TW)
                acc[(j - 1) / S] = ec_vfma(acc[(j - 1) / S], xv, w1);
            if (j >= 2 && (j - 2) % S == 0 && (j - 2) / S < TW)
                acc[(j - 2) / S] = ec_vfma(acc[(j - 2) / S], xv, w2);
        }
    }
    ec_dw_store(TW, CLAMP, acc, op, ostep, cl, n);
}

/* Any kernel (K3: 3x3 known at compile time): TW accumulators xstep floats apart in the input
 * (dx, dy: one kernel column / row further), one load per FMA. */
EC_INLINE void ec_dw_tileg(const int TW, const int K3, const int CLAMP, const ec_conv_params *p,
                           const float *ip, ptrdiff_t xstep, ptrdiff_t dx, ptrdiff_t dy,
                           const float *w, ec_vf b, float *op, ptrdiff_t ostep, const ec_clamp *cl,
                           int n)
{
    ec_vf acc[EC_DW_TW];
    EC_UNROLL
    for (int i = 0; i < TW; i++) acc[i] = b;
    const int kh = K3 ? 3 : p->kh, kw = K3 ? 3 : p->kw;
    for (int ky = 0; ky < kh; ky++) {
        for (int kx = 0; kx < kw; kx++) {
            const float *px = ip + ky * dy + kx * dx;
            const ec_vf wv = ec_vload(w + (size_t)(ky * kw + kx) * EC_NB);
            EC_UNROLL
            for (int i = 0; i < TW; i++) acc[i] = ec_vfma(acc[i], ec_vload(px + i * xstep), wv);
        }
    }
    ec_dw_store(TW, CLAMP, acc, op, ostep, cl, n);
}

enum { EC_DW_T3S1, EC_DW_T3S2, EC_DW_G3, EC_DW_G };

/* One tile of the runtime width tw (1 .. EC_DW_TW) with kernel variant KIND. */
EC_INLINE void ec_dw_run(const int KIND, const int TW, const int CLAMP, const ec_conv_params *p,
                         const float *ip, ptrdiff_t xstep, ptrdiff_t dx, ptrdiff_t dy,
                         const float *w, ec_vf b, float *op, ptrdiff_t ostep, const ec_clamp *cl,
                         int n)
{
    if (KIND == EC_DW_T3S1)
        ec_dw_tile3(TW, 1, CLAMP, ip, dx, dy, w, b, op, ostep, cl, n);
    else if (KIND == EC_DW_T3S2)
        ec_dw_tile3(TW, 2, CLAMP, ip, dx, dy, w, b, op, ostep, cl, n);
    else
        ec_dw_tileg(TW, KIND == EC_DW_G3, CLAMP, p, ip, xstep, dx, dy, w, b, op, ostep, cl, n);
}

#define EC_DW_CASE(T)                                                                              \
    case T: /* widths above EC_DW_TW never come */                                                 \
        if (T <= EC_DW_TW)                                                                         \
            ec_dw_run(KIND, T <= EC_DW_TW ? T : 1, CLAMP, p, ip, xstep, dx, dy, w, b, op, ostep,   \
                      cl, n);                                                                      \
        break;

/* A tile of tw pixels (vectors), tw one of the widths ec_dw_width picks. Not inlined into the
 * loops over tiles and blocks, where GCC would give each of a tile's input addresses an
 * induction variable of its own and spill them. */
EC_NOINLINE void ec_dw_dispatch(const int KIND, const int CLAMP, int tw, const ec_conv_params *p,
                                const float *ip, ptrdiff_t xstep, ptrdiff_t dx, ptrdiff_t dy,
                                const float *w, ec_vf b, float *op, ptrdiff_t ostep,
                                const ec_clamp *cl, int n)
{
    switch (tw) {
        EC_DW_CASE(16)
        EC_DW_CASE(14)
        EC_DW_CASE(12)
        EC_DW_CASE(8)
        EC_DW_CASE(7)
        EC_DW_CASE(4)
        EC_DW_CASE(2)
        EC_DW_CASE(1)
    default: break;
    }
}
#undef EC_DW_CASE

/* The tile width for a row of r > 0 pixels: the even split ceil(r / ceil(r / EC_DW_TW)) rounded
 * up to a width ec_dw_dispatch has (no more than r); the row's last tile is moved back to end
 * at the row's end, recomputing a few pixels when the width does not divide r (MobileNets'
 * widths 112, 56, 28, 14, 7 and 64 ... 2 divide exactly). */
static int ec_dw_width(int r)
{
    static const int widths[] = {1, 2, 4, 7, 8, 12, 14, 16};
    const int ntile = (r + EC_DW_TW - 1) / EC_DW_TW, even = (r + ntile - 1) / ntile;
    int best = 1;
    for (int i = 0; i < (int)(sizeof widths / sizeof *widths); i++) {
        const int wd = widths[i];
        if (wd > EC_DW_TW || wd > r) break;
        best = wd;
        if (wd >= even) break;
    }
    return best;
}

/* Input channels under output channels c0 .. c0+EC_NB-1 of pixel `px` (channel o reads input
 * channel o / mult); lanes past cout are zero. */
EC_INLINE ec_vf ec_dw_input(const float *px, int c0, int cout, int mult)
{
    const int n = cout - c0 < EC_NB ? cout - c0 : EC_NB;
    if (mult == 1) return ec_vload_n(px + c0, n);
    ec_vf t = ec_vzero();
    for (int i = 0; i < n; i++) EC_LANE(t, i) = px[(c0 + i) / mult];
    return t;
}

/* Lane-exact tiles of 4 pixels along x (the last repeated at the row's end) for one block of
 * channels, any multiplier: the fallback. */
#define EC_DW_TW_EXACT 4

static void ec_dw_tile_exact(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out, int y,
                             int x0, int c0, const float *w, const float *bias)
{
    const int cout = out->c, mult = out->c / in->c;
    const float *org[EC_DW_TW_EXACT];
    float *op[EC_DW_TW_EXACT];
    for (int i = 0; i < EC_DW_TW_EXACT; i++) {
        const int x = x0 + i < out->w ? x0 + i : out->w - 1;
        org[i] = in->data + (ptrdiff_t)(y * p->sh - p->pad_t) * in->row_stride
                 + (ptrdiff_t)(x * p->sw - p->pad_l) * in->c;
        op[i] = out->data + (ptrdiff_t)y * out->row_stride + (ptrdiff_t)x * cout;
    }
    ec_vf acc[EC_DW_TW_EXACT];
    for (int i = 0; i < EC_DW_TW_EXACT; i++) acc[i] = ec_vzero();
    for (int ky = 0; ky < p->kh; ky++) {
        for (int kx = 0; kx < p->kw; kx++) {
            const ptrdiff_t off =
                (ptrdiff_t)ky * p->dh * in->row_stride + (ptrdiff_t)kx * p->dw * in->c;
            const ec_vf wv = ec_vload(w + (size_t)(ky * p->kw + kx) * EC_NB);
            EC_UNROLL
            for (int i = 0; i < EC_DW_TW_EXACT; i++)
                acc[i] = ec_vfma(acc[i], ec_dw_input(org[i] + off, c0, cout, mult), wv);
        }
    }
    ec_store_pixels(EC_DW_TW_EXACT, p, acc, op, c0, cout, bias);
}

/* Pixels [x0, x1) of row y, block b, lane-exact. */
static void ec_dw_exact_span(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out, int y,
                             int x0, int x1, int b, const float *w_packed, const float *bias)
{
    const float *w = w_packed + (size_t)b * p->kh * p->kw * EC_NB;
    for (int x = x0; x < x1; x += EC_DW_TW_EXACT)
        ec_dw_tile_exact(p, in, out, y, x, b * EC_NB, w, bias);
}

/* The activations the tiles leave out (leaky, PReLU, sigmoid, tanh), applied to a stored tile
 * while it is in L1: tw vectors ostep floats apart, n lanes; slopes / bias at channel c0. */
static void ec_dw_post(const ec_conv_params *p, float *op, int tw, ptrdiff_t ostep,
                       const float *slope, int c0, int n)
{
    for (int i = 0; i < tw; i++) {
        float *o = op + i * ostep;
        ec_vstore_n(o, ec_vactivate(ec_vload_n(o, n), p->act, p->act_alpha, slope, c0, n), n);
    }
}

/* CLAMP: ReLU and ReLU6 as a clamp in the tiles (the bounds in *cl); 0 when there is no
 * activation or ec_dw_post applies it. */
static int ec_dw_clamp(const ec_conv_params *p, ec_clamp *cl)
{
    cl->lo = ec_vzero();
    cl->hi = ec_vset1(p->act == EC_ACT_RELU6 ? 6.0f : INFINITY);
    return p->act == EC_ACT_RELU || p->act == EC_ACT_RELU6;
}

/* Multiplier 1, blocks of channels (see above). */
EC_INLINE void ec_dw_blocks(const int KIND, const int CLAMP, const ec_conv_params *p,
                            const ec_tensor *in, ec_tensor *out, const float *w_packed,
                            const float *bias, const ec_clamp *cl)
{
    const int c = in->c, ow = out->w;
    const int nblk = (c + EC_NB - 1) / EC_NB, ngrp = (nblk + EC_DW_GROUP - 1) / EC_DW_GROUP;
    const int post = !CLAMP && p->act != EC_ACT_NONE, tw = ec_dw_width(ow);
    const size_t wblock = (size_t)p->kh * p->kw * EC_NB;
    const ptrdiff_t rs = in->row_stride, xstep = (ptrdiff_t)p->sw * c;
    const ptrdiff_t dx = (ptrdiff_t)p->dw * c, dy = (ptrdiff_t)p->dh * rs;
    /* the farthest float a tile reads past its first window's origin, and the buffer's end */
    const ptrdiff_t reach = (ptrdiff_t)(p->kh - 1) * dy + (ptrdiff_t)(p->kw - 1) * dx + EC_NB;
    const float *end =
        in->data + (ptrdiff_t)(in->h - 1 + in->pad_h) * rs + (ptrdiff_t)(in->w + in->pad_w) * c;
    const int njob = out->h * ngrp;
    EC_OMP_FOR
    for (int job = 0; job < njob; job++) {
        const int y = job / ngrp, b0 = job % ngrp * EC_DW_GROUP;
        const int b1 = b0 + EC_DW_GROUP < nblk ? b0 + EC_DW_GROUP : nblk;
        const float *irow = in->data + (ptrdiff_t)(y * p->sh - p->pad_t) * rs;
        float *orow = out->data + (ptrdiff_t)y * out->row_stride;
        for (int x = 0; x < ow; x += tw) {
            const int x0 = x + tw <= ow ? x : ow - tw;
            const float *ip = irow + (ptrdiff_t)(x0 * p->sw - p->pad_l) * c;
            float *op = orow + (ptrdiff_t)x0 * c;
            for (int b = b0; b < b1; b++) {
                const int c0 = b * EC_NB, n = c - c0 < EC_NB ? c - c0 : EC_NB;
                if (n < EC_NB
                    && ip + c0 + (tw - 1) * xstep + reach > end) { /* whole vectors would overrun */
                    ec_dw_exact_span(p, in, out, y, x0, x0 + tw, b, w_packed, bias);
                    continue;
                }
                ec_dw_dispatch(KIND, CLAMP, tw, p, ip + c0, xstep, dx, dy, w_packed + b * wblock,
                               ec_vbias(bias, c0, n), op + c0, c, cl, n);
                if (post) ec_dw_post(p, op + c0, tw, c, p->act_slope, c0, n);
            }
        }
    }
}

/* Multiplier 1, C < EC_NB with EC_NB % C == 0, stride 1 along x: vectors of EC_NB / C pixels
 * (see above); the last ow % (EC_NB / C) pixels of each row lane-exact. */
EC_INLINE void ec_dw_packed(const int KIND, const int CLAMP, const ec_conv_params *p,
                            const ec_tensor *in, ec_tensor *out, const float *w_packed,
                            const float *bias, const ec_clamp *cl)
{
    const int c = in->c, g = EC_NB / c, cells = p->kh * p->kw;
    const int nv = out->w / g, xr = nv * g; /* whole vectors; pixels [xr, ow) lane-exact */
    const int post = !CLAMP && p->act != EC_ACT_NONE, tw = nv ? ec_dw_width(nv) : 0;
    float wr[EC_DW_PACK_MAX * EC_NB], br[EC_NB], sr[EC_NB];
    for (int k = 0; k < cells; k++)
        for (int l = 0; l < EC_NB; l++) wr[k * EC_NB + l] = w_packed[k * EC_NB + l % c];
    for (int l = 0; l < EC_NB; l++) {
        br[l] = bias ? bias[l % c] : 0.0f;
        sr[l] = p->act_slope ? p->act_slope[l % c] : 0.0f;
    }
    const float *slope = p->act_slope ? sr : NULL;
    const ptrdiff_t rs = in->row_stride, dx = (ptrdiff_t)p->dw * c, dy = (ptrdiff_t)p->dh * rs;
    EC_OMP_FOR
    for (int y = 0; y < out->h; y++) {
        const float *irow = in->data + (ptrdiff_t)(y * p->sh - p->pad_t) * rs;
        float *orow = out->data + (ptrdiff_t)y * out->row_stride;
        for (int v = 0; v < nv; v += tw) {
            const int v0 = v + tw <= nv ? v : nv - tw;
            const float *ip = irow + (ptrdiff_t)(v0 * g - p->pad_l) * c;
            float *op = orow + (ptrdiff_t)v0 * EC_NB;
            ec_dw_dispatch(KIND, CLAMP, tw, p, ip, EC_NB, dx, dy, wr, ec_vload(br), op, EC_NB, cl,
                           EC_NB);
            if (post) ec_dw_post(p, op, tw, EC_NB, slope, 0, EC_NB);
        }
        if (xr < out->w) ec_dw_exact_span(p, in, out, y, xr, out->w, 0, w_packed, bias);
    }
}

void ec_conv2d_depthwise(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                         const float *w_packed, const float *bias)
{
    const int nblk = (out->c + EC_NB - 1) / EC_NB;
    if (out->c != in->c) { /* multiplier > 1: lane-exact tiles */
        EC_OMP_FOR
        for (int y = 0; y < out->h; y++)
            for (int b = 0; b < nblk; b++)
                ec_dw_exact_span(p, in, out, y, 0, out->w, b, w_packed, bias);
        return;
    }
    ec_clamp cl;
    const int clamp = ec_dw_clamp(p, &cl);
    const int k3 = p->kh == 3 && p->kw == 3;
    if (in->c < EC_NB && EC_NB % in->c == 0 && p->sw == 1 && p->kh * p->kw <= EC_DW_PACK_MAX) {
        if (k3 && clamp)
            ec_dw_packed(EC_DW_G3, 1, p, in, out, w_packed, bias, &cl);
        else if (k3)
            ec_dw_packed(EC_DW_G3, 0, p, in, out, w_packed, bias, &cl);
        else
            ec_dw_packed(EC_DW_G, 0, p, in, out, w_packed, bias, &cl); /* clamp: post */
        return;
    }
    const int kind = !k3          ? EC_DW_G
                     : p->dw != 1 ? EC_DW_G3
                     : p->sw == 1 ? EC_DW_T3S1
                     : p->sw == 2 ? EC_DW_T3S2
                                  : EC_DW_G3;
    if (kind == EC_DW_T3S1 && clamp)
        ec_dw_blocks(EC_DW_T3S1, 1, p, in, out, w_packed, bias, &cl);
    else if (kind == EC_DW_T3S1)
        ec_dw_blocks(EC_DW_T3S1, 0, p, in, out, w_packed, bias, &cl);
    else if (kind == EC_DW_T3S2 && clamp)
        ec_dw_blocks(EC_DW_T3S2, 1, p, in, out, w_packed, bias, &cl);
    else if (kind == EC_DW_T3S2)
        ec_dw_blocks(EC_DW_T3S2, 0, p, in, out, w_packed, bias, &cl);
    else if (kind == EC_DW_G3)
        ec_dw_blocks(EC_DW_G3, 0, p, in, out, w_packed, bias, &cl); /* clamp: post */
    else
        ec_dw_blocks(EC_DW_G, 0, p, in, out, w_packed, bias, &cl);
}
