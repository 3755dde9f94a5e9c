/* edgecnn runtime: register-blocked direct convolution and depthwise convolution.
 *
 * Direct convolution (groups == 1). The output is computed in register tiles of EC_TW pixels
 * x 2 vectors of EC_NB output channels (8 x 32 on AVX-512): for every (ky, kx, ci) of the window
 * the tile loads two weight vectors and does 2 * EC_TW FMAs with a broadcast input value, so
 * the accumulators never leave the registers. Pixels of a tile are consecutive in the
 * flattened (y, x) order, so small maps (4x4, 2x2) still fill the tile. When the dilation along
 * x is 1 the kx and ci loops merge: the kw * Cin floats under one kernel row are contiguous in
 * NHWC, and so are their packed weights [kh][kw][Cin][EC_NB]. When Cout fits one vector (the
 * RGB first layer: 3 -> 16) tiles span two output rows instead of two blocks of channels.
 * Measured on one Zen 5 core (AVX-512, benchmarks/kernels.py): 83-97% of the FMA peak on the
 * seed model's 3x3 layers from 128x128x16 to 4x4x512, about 50% on its 256x256x3 first layer.
 */
#include "ec_conv_store.h"

#ifndef EC_TW_SINGLE
#define EC_TW_SINGLE (2 * EC_TW) /* pixels per tile when Cout fits one block */
#endif
#define EC_TW_MAX (EC_TW_SINGLE > 2 * EC_TW ? EC_TW_SINGLE : 2 * EC_TW)
/* Packed weight elements below which tiles run pixel-major (all blocks of channels for a tile of
 * pixels). 6144 floats = 24 KiB: the layer's whole weights then stay in a 32 KiB L1 data cache
 * (Cortex-A53/A72/A76; Zen has 32-48 KiB) with 8 KiB left for the tile's input rows, so
 * revisiting them per tile costs no extra memory traffic. */
#ifndef EC_DIRECT_L1_WEIGHTS
#define EC_DIRECT_L1_WEIGHTS 6144
#endif

typedef struct {
    const float *ip[EC_TW_MAX]; /* input at the window origin (top-left, padding included) */
    float *op[EC_TW_MAX];       /* output pixel */
} ec_tile_ptrs;

/* One register tile: TW pixels x TV vectors of output channels starting at channel c0.
 * w: packed weights of the first block (float32, or half bits when HALF); the next block is
 * `wblock` elements further. */
EC_INLINE void ec_direct_tile(const int TW, const int TV, const int HALF, const ec_conv_params *p,
                              const ec_tile_ptrs *t, int cin, int row_stride, const void *w,
                              size_t wblock, const float *bias, int c0, int cout)
{
    ec_vf a0[EC_TW_MAX], a1[EC_TW_MAX]; /* accumulators of the two blocks */
    const float *ip[EC_TW_MAX];
    EC_UNROLL
    for (int i = 0; i < TW; i++) {
        ip[i] = t->ip[i];
        a0[i] = a1[i] = ec_vzero();
    }
    /* kx and ci merge into one contiguous run when the dilation along x is 1 */
    const int contiguous = p->dw == 1;
    const int nseg = contiguous ? 1 : p->kw;
    const int len = contiguous ? p->kw * cin : cin;
    size_t wo = 0; /* element offset of (ky, segment) in the block */
    for (int ky = 0; ky < p->kh; ky++) {
        for (int s = 0; s < nseg; s++) {
            const ptrdiff_t off = (ptrdiff_t)ky * p->dh * row_stride + (ptrdiff_t)s * p->dw * cin;
            for (int j = 0; j < len; j++) {
                const size_t wj = wo + (size_t)j * EC_NB;
                const ec_vf w0 = ec_wload(HALF, w, wj);
                const ec_vf w1 = TV > 1 ? ec_wload(HALF, w, wj + wblock) : w0;
                EC_UNROLL
                for (int i = 0; i < TW; i++) {
                    const float x = ip[i][off + j];
                    a0[i] = ec_vfma_s(a0[i], w0, x);
                    if (TV > 1) a1[i] = ec_vfma_s(a1[i], w1, x);
                }
            }
            wo += (size_t)len * EC_NB;
        }
    }
    ec_store_pixels(TW, p, a0, t->op, c0, cout, bias);
    if (TV > 1) ec_store_pixels(TW, p, a1, t->op, c0 + EC_NB, cout, bias);
}

/* ---- Cout <= EC_NB with stride 1: tiles of two output rows ------------------------------
 * With a single vector of output channels, a one-row tile would need one broadcast load per
 * FMA, more loads than the core issues. Output rows y and y+1 read the same input rows
 * shifted by one kernel row, so a tile of EC_TW pixels x 2 rows loads every input value once
 * for two FMAs (weights of kernel rows r and r-1): the RGB first layer's case. */
EC_INLINE void ec_rowpair_tile(const int HALF, const ec_conv_params *p, const float *const *ip,
                               float *const *op0, float *const *op1, int cin, int row_stride,
                               const void *w, const float *bias, int cout)
{
    ec_vf a0[EC_TW], a1[EC_TW];
    EC_UNROLL
    for (int i = 0; i < EC_TW; i++) a0[i] = a1[i] = ec_vzero();
    const int len = p->kw * cin; /* one kernel row, contiguous in NHWC */
    const size_t wrow = (size_t)len * EC_NB;
    /* input row 0: kernel row 0 of output row y */
    for (int j = 0; j < len; j++) {
        const ec_vf wa = ec_wload(HALF, w, (size_t)j * EC_NB);
        EC_UNROLL
        for (int i = 0; i < EC_TW; i++) a0[i] = ec_vfma_s(a0[i], wa, ip[i][j]);
    }
    /* input rows 1 .. kh-1: kernel row r of row y and r-1 of row y+1 */
    for (int r = 1; r < p->kh; r++) {
        const ptrdiff_t off = (ptrdiff_t)r * row_stride;
        const size_t w0 = (size_t)r * wrow, w1 = w0 - wrow; /* kernel rows r, r-1 */
        for (int j = 0; j < len; j++) {
            const ec_vf wa = ec_wload(HALF, w, w0 + (size_t)j * EC_NB);
            const ec_vf wb = ec_wload(HALF, w, w1 + (size_t)j * EC_NB);
            EC_UNROLL
            for (int i = 0; i < EC_TW; i++) {
                const float x = ip[i][off + j];
                a0[i] = ec_vfma_s(a0[i], wa, x);
                a1[i] = ec_vfma_s(a1[i], wb, x);
            }
        }
    }
    /* input row kh: kernel row kh-1 of output row y+1 */
    const ptrdiff_t off = (ptrdiff_t)p->kh * row_stride;
    const size_t wl = (size_t)(p->kh - 1) * wrow;
    for (int j = 0; j < len; j++) {
        const ec_vf wb = ec_wload(HALF, w, wl + (size_t)j * EC_NB);
        EC_UNROLL
        for (int i = 0; i < EC_TW; i++) a1[i] = ec_vfma_s(a1[i], wb, ip[i][off + j]);
    }
    ec_store_pixels(EC_TW, p, a0, op0, 0, cout, bias);
    ec_store_pixels(EC_TW, p, a1, op1, 0, cout, bias);
}

/* Rows [0, oh - oh % 2) in pairs (stride 1 along y, any along x); the caller does a last odd
 * row. */
static void ec_direct_rowpairs(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                               const void *w, int half, const float *bias)
{
    const int xt = (out->w + EC_TW - 1) / EC_TW, njob = out->h / 2 * xt;
    EC_OMP_FOR
    for (int job = 0; job < njob; job++) {
        const int y = job / xt * 2, x0 = job % xt * EC_TW;
        const float *ip[EC_TW];
        float *op0[EC_TW], *op1[EC_TW];
        for (int i = 0; i < EC_TW; i++) {
            const int x = x0 + i < out->w ? x0 + i : out->w - 1;
            ip[i] = in->data + (ptrdiff_t)(y - p->pad_t) * in->row_stride
                    + (ptrdiff_t)(x * p->sw - p->pad_l) * in->c;
            op0[i] = out->data + (ptrdiff_t)y * out->row_stride + (ptrdiff_t)x * out->c;
            op1[i] = op0[i] + out->row_stride;
        }
        if (half)
            ec_rowpair_tile(1, p, ip, op0, op1, in->c, in->row_stride, w, bias, out->c);
        else
            ec_rowpair_tile(0, p, ip, op0, op1, in->c, in->row_stride, w, bias, out->c);
    }
}

/* Input and output pointers of the `tw` flattened pixels from q0 (the last ones repeated when
 * the map ends inside the tile: they recompute and rewrite the last pixel). */
static void ec_tile_pointers(const ec_conv_params *p, const ec_tensor *in, const ec_tensor *out,
                             int q0, int tw, ec_tile_ptrs *t)
{
    const int npix = out->h * out->w;
    const ptrdiff_t istep = (ptrdiff_t)p->sw * in->c;
    int y = q0 / out->w, x = q0 % out->w;
    const float *ip = in->data + (ptrdiff_t)(y * p->sh - p->pad_t) * in->row_stride
                      + (ptrdiff_t)(x * p->sw - p->pad_l) * in->c;
    float *op = out->data + (ptrdiff_t)y * out->row_stride + (ptrdiff_t)x * out->c;
    for (int i = 0; i < tw; i++) {
        t->ip[i] = ip;
        t->op[i] = op;
        if (q0 + i + 1 >= npix) continue; /* past the end: repeat the last pixel */
        if (++x < out->w) {
            ip += istep;
            op += out->c;
        } else { /* next row */
            x = 0, y++;
            ip = in->data + (ptrdiff_t)(y * p->sh - p->pad_t) * in->row_stride
                 - (ptrdiff_t)p->pad_l * in->c;
            op = out->data + (ptrdiff_t)y * out->row_stride;
        }
    }
}

/* A tile of the width tw (EC_TW, or 7 where ec_direct_tiles picks it) x TV blocks. */
EC_INLINE void ec_direct_tile_w(const int TV, const int HALF, int tw, const ec_conv_params *p,
                                const ec_tile_ptrs *t, int cin, int row_stride, const void *w,
                                size_t wblock, const float *bias, int c0, int cout)
{
#if EC_TW == 8
    if (tw == 7) {
        ec_direct_tile(7, TV, HALF, p, t, cin, row_stride, w, wblock, bias, c0, cout);
        return;
    }
#endif
    (void)tw;
    ec_direct_tile(EC_TW, TV, HALF, p, t, cin, row_stride, w, wblock, bias, c0, cout);
}

/* Flattened-pixel tiles over the whole map (any stride / dilation); HALF: half weights. */
EC_INLINE void ec_direct_tiles(const int HALF, const ec_conv_params *p, const ec_tensor *in,
                               ec_tensor *out, const void *w_packed, const float *bias)
{
    const int cin = in->c, cout = out->c;
    const int nblk = (cout + EC_NB - 1) / EC_NB;
    const size_t wblock = (size_t)p->kh * p->kw * cin * EC_NB; /* elements per packed block */
    const int npix = out->h * out->w;
    /* one block of channels: single-vector tiles of more pixels keep as many FMAs in flight;
     * otherwise pairs of blocks (the last one alone when nblk is odd) */
    const int single = nblk == 1;
    const int tiny = !single && npix <= 4 && EC_TW > 4; /* 2x2 maps: no repeated pixels */
    /* 8-pixel tiles over a 7x7 map (MobileNets' last stage) would compute 56 pixels for 49:
     * 7-pixel tiles compute none twice */
    const int seven = !single && !tiny && EC_TW == 8 && npix % 8 != 0 && npix % 7 == 0;
    const int tw = single ? EC_TW_SINGLE : tiny ? 4 : seven ? 7 : EC_TW;
    const int ntile = (npix + tw - 1) / tw;
    const int npair = single ? 1 : (nblk + 1) / 2;
    if (!single && !tiny && npair > 1 && wblock * nblk <= EC_DIRECT_L1_WEIGHTS) {
        /* small weights (1x1 convolutions of a few input channels): every pair of blocks of
         * one pixel tile in a row, so its pointers are set once and its input stays in L1 */
        EC_OMP_FOR
        for (int tile = 0; tile < ntile; tile++) {
            ec_tile_ptrs t;
            ec_tile_pointers(p, in, out, tile * tw, tw, &t);
            for (int b0 = 0; b0 < nblk; b0 += 2) {
                const void *w =
                    HALF ? (const void *)((const uint16_t *)w_packed + (size_t)b0 * wblock)
                         : (const void *)((const float *)w_packed + (size_t)b0 * wblock);
                if (b0 + 1 < nblk)
                    ec_direct_tile_w(2, HALF, tw, p, &t, cin, in->row_stride, w, wblock, bias,
                                     b0 * EC_NB, cout);
                else
                    ec_direct_tile_w(1, HALF, tw, p, &t, cin, in->row_stride, w, wblock, bias,
                                     b0 * EC_NB, cout);
            }
        }
        return;
    }
    const int njob = npair * ntile;
    EC_OMP_FOR
    for (int job = 0; job < njob; job++) {
        const int pair = job / ntile, tile = job % ntile;
        ec_tile_ptrs t;
        ec_tile_pointers(p, in, out, tile * tw, tw, &t);
        const int b0 = single ? 0 : 2 * pair;
        const void *w = HALF ? (const void *)((const uint16_t *)w_packed + (size_t)b0 * wblock)
                             : (const void *)((const float *)w_packed + (size_t)b0 * wblock);
        if (single)
            ec_direct_tile(EC_TW_SINGLE, 1, HALF, p, &t, cin, in->row_stride, w, wblock, bias, 0,
                           cout);
        else if (tiny)
            ec_direct_tile(4, b0 + 1 < nblk ? 2 : 1, HALF, p, &t, cin, in->row_stride, w, wblock,
                           bias, b0 * EC_NB, cout);
        else if (b0 + 1 < nblk)
            ec_direct_tile_w(2, HALF, tw, p, &t, cin, in->row_stride, w, wblock, bias, b0 * EC_NB,
                             cout);
        else
            ec_direct_tile_w(1, HALF, tw, p, &t, cin, in->row_stride, w, wblock, bias, b0 * EC_NB,
                             cout);
    }
}

static void ec_direct_tiles_any(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                                const void *w, int half, const float *bias)
{
    if (half)
        ec_direct_tiles(1, p, in, out, w, bias);
    else
        ec_direct_tiles(0, p, in, out, w, bias);
}

static void ec_direct(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out, const void *w,
                      int half, const float *bias)
{
    const int nblk = (out->c + EC_NB - 1) / EC_NB;
    if (nblk == 1 && p->sh == 1 && p->dh == 1 && p->dw == 1 && out->h >= 2) {
        ec_direct_rowpairs(p, in, out, w, half, bias);
        if (out->h % 2 == 0) return;
        /* the last odd row: its pixels are the last out->w of the flattened map */
        ec_tensor last = *out, src = *in;
        last.data += (ptrdiff_t)(out->h - 1) * out->row_stride;
        last.h = 1;
        src.data += (ptrdiff_t)(out->h - 1) * in->row_stride;
        ec_direct_tiles_any(p, &src, &last, w, half, bias);
        return;
    }
    ec_direct_tiles_any(p, in, out, w, half, bias);
}

void ec_conv2d_direct(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                      const float *w_packed, const float *bias)
{
    ec_direct(p, in, out, w_packed, 0, bias);
}

void ec_conv2d_direct_f16(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                          const uint16_t *w_packed, const float *bias)
{
    ec_direct(p, in, out, w_packed, 1, bias);
}
