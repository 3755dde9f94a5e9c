/* edgecnn runtime: what the two dot-product integer kernels share for a direct convolution
 * (private to ec_qconv_vnni.c, VPDPBUSD on unsigned bytes, and ec_qconv_sdot.c, SDOT on signed
 * bytes): the geometry of the padded copy of the input in the scratch, the scratch's size, and
 * the sum of the copy's bytes over each output pixel's window (the correction for d != 0). The
 * copy itself and the tiles are each instruction set's own.
 *
 * The copy has the input's padding (the zero point) and rows of rs bytes: along x a window
 * row is kw * C contiguous bytes, taken four at a time (k4 = ceil(kw C / 4) groups a row; the
 * bytes past kw C meet zero weights). The window sums follow it at `sums`: per output row, the
 * kh input rows summed byte by byte, their running sum, and a window's sum is the difference of
 * two of those (mod 2^32, as every sum of these kernels). */
#ifndef EC_QDOT_H
#define EC_QDOT_H

#include "ec_conv.h"
#include "ec_qvec.h"

typedef struct {
    long hp, wp, rs, k4, sums; /* padded rows, columns, bytes a row, groups a window row, offset */
} ec_qdot_geom;

/* the input rows and columns the windows span, padding included (as ec_qconv_direct.c) */
EC_QINLINE long ec_qdot_span(int n, int pad, int on, int s, int k, int d)
{
    const long need = (long)(on - 1) * s + (long)(k - 1) * d + 1;
    return need > (long)n + pad ? need : (long)n + pad;
}

EC_QINLINE ec_qdot_geom ec_qdot_geometry(const ec_qconv_params *p)
{
    ec_qdot_geom g;
    g.hp = ec_qdot_span(p->h, p->pad_top, p->oh, p->sh, p->kh, p->dh);
    g.wp = ec_qdot_span(p->w, p->pad_left, p->ow, p->sw, p->kw, p->dw);
    g.rs = (g.wp * p->c + 3) / 4 * 4 + 4; /* a window row's last group may read 3 bytes past */
    g.k4 = ((long)p->kw * p->c + 3) / 4;
    g.sums = (g.hp * g.rs + 63) / 64 * 64;
    return g;
}

/* the padded input, one window sum per output pixel, a running sum of wp C + 1 int32 */
EC_QINLINE long ec_qdot_direct_scratch(const ec_qconv_params *p)
{
    const ec_qdot_geom g = ec_qdot_geometry(p);
    return g.sums + ((long)p->oh * p->ow + g.wp * p->c + 1) * 4;
}

/* sums[oy][ox]: the sum of the copy's bytes over each window, read as int8 (SIGNED) or uint8;
 * run: scratch of wp C + 1 */
EC_QINLINE void ec_qdot_window_sums(const int SIGNED, const ec_qconv_params *p,
                                    const ec_qdot_geom *g, const void *xs, int32_t *sums,
                                    uint32_t *run)
{
    const long wc = g->wp * p->c, kc = (long)p->kw * p->c, step = (long)p->sw * p->c;
    for (int oy = 0; oy < p->oh; oy++) {
        const uint8_t *r0 = (const uint8_t *)xs + (long)oy * p->sh * g->rs;
        for (long j = 0; j < wc; j++)
            run[j + 1] = SIGNED ? (uint32_t)(int32_t)(int8_t)r0[j] : (uint32_t)r0[j];
        for (int ky = 1; ky < p->kh; ky++) {
            const uint8_t *r = r0 + (long)ky * p->dh * g->rs;
            for (long j = 0; j < wc; j++)
                run[j + 1] += SIGNED ? (uint32_t)(int32_t)(int8_t)r[j] : (uint32_t)r[j];
        }
        run[0] = 0;
        for (long j = 1; j <= wc; j++) run[j] += run[j - 1];
        for (int ox = 0; ox < p->ow; ox++)
            sums[(long)oy * p->ow + ox] = (int32_t)(run[ox * step + kc] - run[ox * step]);
    }
}

#endif /* EC_QDOT_H */
