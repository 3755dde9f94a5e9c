/* Fast integer depthwise convolution (ec_int8.h): groups = channels, multiplier 1, any kernel
 * up to EC_QDW_MAX_TAPS cells, stride and dilation.
 *
 * EC_NB channels are the int32 lanes of an accumulator: per output pixel and channel block,
 * one multiply-add per tap of the pixel's activations and the tap's weights, packed by
 * packing.pack_qdepthwise: [ceil(C / EC_NB)][kh][kw][EC_NB] int16, the weight zero point
 * subtracted. The input zero point is folded into the bias (packing.pack_qrequant), so a tap
 * on the padding multiplies the raw value in_zp; interior pixels take no bounds checks. */
#include "ec_qvec.h"

EC_QINLINE void qdepthwise(const int S, const int TAPS, const ec_qconv_params *p, const void *x,
                           const int16_t *w, const int32_t *rq, void *y)
{
    const int taps = TAPS ? TAPS : p->kh * p->kw; /* TAPS: a kernel size known here (3x3) */
    const int nblk = (p->c + EC_NB - 1) / EC_NB;
    const long cpad = (long)nblk * EC_NB;
    const ec_qv zp = ec_qset1(p->in_zp);
    long off[EC_QDW_MAX_TAPS];
    for (int oy = 0; oy < p->oh; oy++)
        for (int ox = 0; ox < p->ow; ox++) {
            uint8_t *yp = (uint8_t *)y + ((long)oy * p->ow + ox) * p->c;
            int edge = 0, t = 0;
            for (int ky = 0; ky < p->kh; ky++)
                for (int kx = 0; kx < p->kw; kx++, t++) {
                    const int iy = oy * p->sh + ky * p->dh - p->pad_top;
                    const int ix = ox * p->sw + kx * p->dw - p->pad_left;
                    const int in = iy >= 0 && iy < p->h && ix >= 0 && ix < p->w;
                    off[t] = in ? ((long)iy * p->w + ix) * p->c : -1;
                    edge |= !in;
                }
            for (int cb = 0; cb < nblk; cb++) {
                const int c0 = cb * EC_NB, n = p->c - c0 < EC_NB ? p->c - c0 : EC_NB;
                const int16_t *wb = w + (long)cb * taps * EC_NB;
                ec_qv acc = ec_qload32(rq + c0);
                if (!edge && n == EC_NB) {
                    for (t = 0; t < taps; t++)
                        acc = ec_qmac(acc, ec_qloadx(S, (const uint8_t *)x + off[t] + c0),
                                      ec_qloadw(wb + t * EC_NB));
                } else {
                    for (t = 0; t < taps; t++) {
                        ec_qv xv = zp;
                        if (off[t] >= 0) {
                            const uint8_t *xt = (const uint8_t *)x + off[t] + c0;
                            xv = n == EC_NB ? ec_qloadx(S, xt) : ec_qloadx_part(S, xt, n);
                        }
                        acc = ec_qmac(acc, xv, ec_qloadw(wb + t * EC_NB));
                    }
                }
                ec_qoutput(S, yp + c0, n, acc, rq + c0, cpad, p);
            }
        }
}

void ec_qconv_depthwise_u8(const ec_qconv_params *p, const uint8_t *x, const int16_t *w,
                           const int32_t *rq, uint8_t *y)
{
    if (p->kh == 3 && p->kw == 3) qdepthwise(0, 9, p, x, w, rq, y);
    else qdepthwise(0, 0, p, x, w, rq, y);
}

void ec_qconv_depthwise_i8(const ec_qconv_params *p, const int8_t *x, const int16_t *w,
                           const int32_t *rq, int8_t *y)
{
    if (p->kh == 3 && p->kw == 3) qdepthwise(1, 9, p, x, w, rq, y);
    else qdepthwise(1, 0, p, x, w, rq, y);
}
