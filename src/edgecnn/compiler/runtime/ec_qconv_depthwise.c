/* Fast integer depthwise convolution (ec_conv.h): groups = channels, multiplier 1, any kernel
 * up to EC_QDW_MAX_TAPS cells, stride and dilation.
 *
 * EC_NB channels are the int32 lanes of an accumulator: per output pixel and channel block,
 * one multiply-add per tap of the pixel's activations and the tap's weights, packed by
 * packing.pack_qdepthwise: [ceil(C / EC_NB)][kh][kw][EC_NB] int32 (a few KB: no widening in the
 * loop), the weight zero point subtracted. The input zero point is folded into the bias
 * (packing.pack_qrequant), so a tap on the padding multiplies the raw value in_zp. Pixels whose
 * window lies inside the input (a rectangle, found once) take no bounds checks: their taps are
 * fixed offsets from the window's corner. One output row at a time, channel block by channel
 * block, so that a block's weights stay in registers. */
#include "ec_conv.h"
#include "ec_qvec.h"

/* the first output index whose window starts inside (>= 0), and the end of those ending inside */
static void inside(int n, int on, int s, int k, int d, int pad, int *lo, int *hi)
{
    int a = 0, b = on;
    while (a < on && a * s - pad < 0) a++;
    while (b > a && (b - 1) * s - pad + (k - 1) * d >= n) b--;
    *lo = a;
    *hi = b;
}

/* One output row oy, one channel block from c0 (n channels), every pixel: the block's weights
 * and requantization rows held in registers. Taps at x + off (off < 0: padding, only where
 * EDGE). A ragged block (n < EC_NB) loads and stores whole vectors where they stay inside the
 * input (xn elements) and the output (up to yend): the lanes past n read activations times
 * zero weights, and write into channels of the next pixels of the row, which a later pass
 * rewrites (the ragged block goes first, qdepthwise); yend is the row's end, so that rows are
 * independent jobs (threads). */
EC_QINLINE void qrow(const int S, const int TAPS, const ec_qconv_params *p, const uint8_t *x,
                     long xn, const long *delta, int taps, const int *xr, int oy, int edge_row,
                     int c0, int n, const int32_t *wb, const int32_t *rq, long cpad, uint8_t *y,
                     const uint8_t *yend)
{
    const ec_qv zp = ec_qset1(p->in_zp);
    const ec_qv mult = ec_qload32(rq + cpad + c0), left = ec_qload32(rq + 2 * cpad + c0);
    const ec_qv right = ec_qload32(rq + 3 * cpad + c0), bias = ec_qload32(rq + c0);
    ec_qv wv[EC_QDW_MAX_TAPS];
    const int iy = oy * p->sh - p->pad_top;
    if (TAPS) taps = TAPS;
    for (int t = 0; t < taps; t++) wv[t] = ec_qload32(wb + t * EC_NB);
    for (int ox = 0; ox < p->ow; ox++) {
        uint8_t *yp = y + ((long)oy * p->ow + ox) * p->c + c0;
        const int ix = ox * p->sw - p->pad_left;
        const long at = ((long)iy * p->w + ix) * p->c + c0; /* the window's corner */
        ec_qv acc = bias;
        if (!edge_row && ox >= xr[0] && ox < xr[1]
            && (n == EC_NB || at + delta[taps - 1] + EC_NB <= xn)) {
            for (int t = 0; t < taps; t++)
                acc = ec_qmac(acc, ec_qloadx(S, x + at + delta[t]), wv[t]);
        } else {
            for (int ky = 0, t = 0; ky < p->kh; ky++)
                for (int kx = 0; kx < p->kw; kx++, t++) {
                    const int jy = iy + ky * p->dh, jx = ix + kx * p->dw;
                    ec_qv xv = zp;
                    if (jy >= 0 && jy < p->h && jx >= 0 && jx < p->w) {
                        const long at = ((long)jy * p->w + jx) * p->c + c0;
                        xv = at + EC_NB <= xn ? ec_qloadx(S, x + at) : ec_qloadx_part(S, x + at, n);
                    }
                    acc = ec_qmac(acc, xv, wv[t]);
                }
        }
        ec_qstore_n(S, yp, yp + EC_NB <= yend ? EC_NB : n, ec_qfinish(acc, mult, left, right, p));
    }
}

/* One call's geometry, shared by its rows. The parallel loop over rows is in each exported
 * function, where S and TAPS are constants: a parallel region inside an inline function is
 * outlined once, before inlining, with them as variables (and the 3x3 case not unrolled). */
typedef struct {
    long cpad, xn, delta[EC_QDW_MAX_TAPS], macs;
    int taps, nblk, yr[2], xr[2];
} qdw;

static void qdw_of(const ec_qconv_params *p, qdw *G)
{
    G->taps = p->kh * p->kw;
    G->nblk = (p->c + EC_NB - 1) / EC_NB;
    G->cpad = (long)G->nblk * EC_NB;
    G->xn = (long)p->h * p->w * p->c;
    G->macs = (long)p->oh * p->ow * p->c * G->taps;
    inside(p->h, p->oh, p->sh, p->kh, p->dh, p->pad_top, &G->yr[0], &G->yr[1]);
    inside(p->w, p->ow, p->sw, p->kw, p->dw, p->pad_left, &G->xr[0], &G->xr[1]);
    for (int ky = 0, t = 0; ky < p->kh; ky++)
        for (int kx = 0; kx < p->kw; kx++, t++)
            G->delta[t] = ((long)ky * p->dh * p->w + (long)kx * p->dw) * p->c;
}

/* Output row oy, every channel block (the ragged last one first). TAPS: a kernel size known
 * here (3x3), or 0. */
EC_QINLINE void qdw_row(const int S, const int TAPS, const ec_qconv_params *p, const uint8_t *x,
                        const int32_t *w, const int32_t *rq, void *y, const qdw *G, int oy)
{
    const int taps = TAPS ? TAPS : G->taps;
    const uint8_t *yend = (const uint8_t *)y + (long)(oy + 1) * p->ow * p->c; /* the row's */
    for (int k = 0; k < G->nblk; k++) {
        const int cb = k == 0 ? G->nblk - 1 : k - 1, c0 = cb * EC_NB;
        const int n = p->c - c0 < EC_NB ? p->c - c0 : EC_NB;
        qrow(S, TAPS, p, x, G->xn, G->delta, taps, G->xr, oy, oy < G->yr[0] || oy >= G->yr[1], c0,
             n, w + (long)cb * taps * EC_NB, rq, G->cpad, (uint8_t *)y, yend);
    }
}

#define EC_QDW(S, TAPS, x)                                                                         \
    {                                                                                              \
        EC_OMP_FOR_IF(G.macs >= EC_QPARALLEL_MIN_MACS)                                             \
        for (int oy = 0; oy < p->oh; oy++) qdw_row(S, TAPS, p, x, w, rq, y, &G, oy);               \
    }

void ec_qconv_depthwise_u8(const ec_qconv_params *p, const uint8_t *x, const int32_t *w,
                           const int32_t *rq, uint8_t *y)
{
    qdw G;
    qdw_of(p, &G);
    if (p->kh == 3 && p->kw == 3)
        EC_QDW(0, 9, x)
    else
        EC_QDW(0, 0, x)
}

void ec_qconv_depthwise_i8(const ec_qconv_params *p, const int8_t *x, const int32_t *w,
                           const int32_t *rq, int8_t *y)
{
    qdw G;
    qdw_of(p, &G);
    if (p->kh == 3 && p->kw == 3)
        EC_QDW(1, 9, (const uint8_t *)x)
    else
        EC_QDW(1, 0, (const uint8_t *)x)
}
