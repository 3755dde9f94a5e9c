/* Fast integer depthwise convolution (ec_int8.h): groups = channels, multiplier 1, any kernel
 * up to EC_QDW_MAX_TAPS cells, stride and dilation.
 *
 * EC_NB channels are the int32 lanes of an accumulator: per output pixel and channel block,
 * one multiply-add per tap of the pixel's activations and the tap's weights, packed by
 * packing.pack_qdepthwise: [ceil(C / EC_NB)][kh][kw][EC_NB] int32 (a few KB: no widening in the
 * loop), the weight zero point subtracted. The input zero point is folded into the bias
 * (packing.pack_qrequant), so a tap on the padding multiplies the raw value in_zp. Pixels whose
 * window lies inside the input (a rectangle, found once) take no bounds checks: their taps are
 * fixed offsets from the window's corner. */
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

/* the accumulators of one pixel, every channel block: taps at x + off[t] (off[t] < 0: padding,
 * only where EDGE). A ragged last block (n < EC_NB channels) loads and stores whole vectors
 * where they stay inside the input (xn elements) and the output (up to yend): the lanes past n
 * read the next pixel's activations times zero weights, and write into the next pixel's
 * channels, which are computed after this pixel. */
EC_QINLINE void qpixel(const int S, const int TAPS, const int EDGE, const ec_qconv_params *p,
                       const uint8_t *x, long xn, const long *off, int taps, const int32_t *w,
                       const int32_t *rq, long cpad, int nblk, uint8_t *yp, const uint8_t *yend)
{
    const ec_qv zp = ec_qset1(p->in_zp);
    if (TAPS) taps = TAPS;
    for (int cb = 0; cb < nblk; cb++) {
        const int c0 = cb * EC_NB, n = p->c - c0 < EC_NB ? p->c - c0 : EC_NB;
        const int32_t *wb = w + (long)cb * taps * EC_NB;
        ec_qv acc = ec_qload32(rq + c0);
        if (!EDGE && n == EC_NB) {
            for (int t = 0; t < taps; t++)
                acc = ec_qmac(acc, ec_qloadx(S, x + off[t] + c0), ec_qload32(wb + t * EC_NB));
        } else {
            for (int t = 0; t < taps; t++) {
                ec_qv xv = zp;
                if (!EDGE || off[t] >= 0)
                    xv = off[t] + c0 + EC_NB <= xn ? ec_qloadx(S, x + off[t] + c0)
                                                   : ec_qloadx_part(S, x + off[t] + c0, n);
                acc = ec_qmac(acc, xv, ec_qload32(wb + t * EC_NB));
            }
        }
        ec_qoutput(S, yp + c0, yp + c0 + EC_NB <= yend ? EC_NB : n, acc, rq + c0, cpad, p);
    }
}

EC_QINLINE void qdepthwise(const int S, const int TAPS, const ec_qconv_params *p,
                           const uint8_t *x, const int32_t *w, const int32_t *rq, void *y)
{
    const int taps = TAPS ? TAPS : p->kh * p->kw; /* TAPS: a kernel size known here (3x3) */
    const int nblk = (p->c + EC_NB - 1) / EC_NB;
    const long cpad = (long)nblk * EC_NB;
    const long xn = (long)p->h * p->w * p->c;
    const uint8_t *yend = (const uint8_t *)y + (long)p->oh * p->ow * p->c;
    long off[EC_QDW_MAX_TAPS], delta[EC_QDW_MAX_TAPS];
    int y0, y1, x0, x1;
    inside(p->h, p->oh, p->sh, p->kh, p->dh, p->pad_top, &y0, &y1);
    inside(p->w, p->ow, p->sw, p->kw, p->dw, p->pad_left, &x0, &x1);
    for (int ky = 0, t = 0; ky < p->kh; ky++)
        for (int kx = 0; kx < p->kw; kx++, t++)
            delta[t] = ((long)ky * p->dh * p->w + (long)kx * p->dw) * p->c;
    for (int oy = 0; oy < p->oh; oy++)
        for (int ox = 0; ox < p->ow; ox++) {
            uint8_t *yp = (uint8_t *)y + ((long)oy * p->ow + ox) * p->c;
            const int iy = oy * p->sh - p->pad_top, ix = ox * p->sw - p->pad_left;
            if (oy >= y0 && oy < y1 && ox >= x0 && ox < x1) {
                const long base = ((long)iy * p->w + ix) * p->c;
                for (int t = 0; t < taps; t++) off[t] = base + delta[t];
                qpixel(S, TAPS, 0, p, x, xn, off, taps, w, rq, cpad, nblk, yp, yend);
                continue;
            }
            for (int ky = 0, t = 0; ky < p->kh; ky++)
                for (int kx = 0; kx < p->kw; kx++, t++) {
                    const int jy = iy + ky * p->dh, jx = ix + kx * p->dw;
                    const int in = jy >= 0 && jy < p->h && jx >= 0 && jx < p->w;
                    off[t] = in ? ((long)jy * p->w + jx) * p->c : -1;
                }
            qpixel(S, TAPS, 1, p, x, xn, off, taps, w, rq, cpad, nblk, yp, yend);
        }
}

void ec_qconv_depthwise_u8(const ec_qconv_params *p, const uint8_t *x, const int32_t *w,
                           const int32_t *rq, uint8_t *y)
{
    if (p->kh == 3 && p->kw == 3) qdepthwise(0, 9, p, x, w, rq, y);
    else qdepthwise(0, 0, p, x, w, rq, y);
}

void ec_qconv_depthwise_i8(const ec_qconv_params *p, const int8_t *x, const int32_t *w,
                           const int32_t *rq, int8_t *y)
{
    if (p->kh == 3 && p->kw == 3) qdepthwise(1, 9, p, (const uint8_t *)x, w, rq, y);
    else qdepthwise(1, 0, p, (const uint8_t *)x, w, rq, y);
}
