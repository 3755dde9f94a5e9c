/* Fast integer convolution, groups 1 (ec_conv.h): the pointwise (1x1, stride 1, no padding)
 * case, which qdense shares, and every other kernel size, stride and dilation.
 *
 * EC_NB output channels are the int32 lanes of an accumulator; a tile of EC_QR output pixels x
 * two channel blocks shares each weight load, every activation is broadcast. Weights come
 * packed by packing.pack_qconv as int16, the weight zero point subtracted, zero past O. The
 * input zero point is folded into the bias (packing.pack_qrequant: acc = bias - in_zp * sum(w)
 * + sum(x * w)), so the padding is the raw value in_zp and no activation is shifted. Every sum
 * is exact in int32 (the compiler bounds the taps).
 *
 * With EC_QPAIRS (EC_NB >= 8: AVX2, AVX-512) the weights are [ceil(O / EC_NB)][kh][kw][C2][EC_NB]
 * [2], pairs of input channels (C2 = ceil(C / 2), the odd one out zero), and the kernel first
 * widens the input into the scratch as int16 pairs with its padding ([hp][wp][2 C2]), so that
 * one multiply-add instruction takes two channels of a pixel and the tile reads no bounds.
 * Otherwise the weights are [ceil(O / EC_NB)][kh][kw][C][EC_NB] and the activations are read
 * where they are, taps on the padding replaced by in_zp. */
#include "ec_conv.h"
#include "ec_qvec.h"

#ifndef EC_QR /* a tile: EC_QR pixels x EC_QV channel blocks of accumulators */
#if EC_NB >= 16
#define EC_QR 6
#define EC_QV 4 /* 24 accumulators of the 32 AVX-512 registers */
#else
#define EC_QR 4
#define EC_QV 2 /* 8 of the 16 AVX2 / 32-bit NEON ones */
#endif
#endif

/* EC_QPASS(V) for the nv (1 .. EC_QV) channel blocks left, V a constant (registers) */
#define EC_QBLOCKS(nv)                                                                             \
    if (nv == EC_QV) {                                                                             \
        EC_QPASS(EC_QV)                                                                            \
    } else if (nv == 1) {                                                                          \
        EC_QPASS(1)                                                                                \
    } else if (nv == 2) {                                                                          \
        EC_QPASS(2)                                                                                \
    } else {                                                                                       \
        EC_QPASS(EC_QV > 3 ? 3 : 1)                                                                \
    }

/* the input rows and columns the windows span, padding included (packing.qconv_scratch_bytes) */
static long span(int n, int pad, int on, int s, int k, int d)
{
    const long need = (long)(on - 1) * s + (long)(k - 1) * d + 1;
    return need > (long)n + pad ? need : (long)n + pad;
}

/* The jobs of one call, for OpenMP: channel quads outer (their weights stay in cache), then
 * rows, then tiles of EC_QR pixels; pointwise convolutions take all pixels as one row. The
 * parallel loop is in each exported function, where S and PW are constants: a parallel region
 * inside an inline function is outlined once, before inlining, with S and PW as variables. */
typedef struct {
    long rows, n, ntr, nq, cpad, wp, njobs, macs;
    int nblk, ce;
} qjobs;

static qjobs qjobs_of(const int PW, const ec_qconv_params *p)
{
    qjobs J;
    J.nblk = (p->o + EC_NB - 1) / EC_NB;
    J.ce = (p->c + 1) / 2 * 2;
    J.cpad = (long)J.nblk * EC_NB;
    J.wp = span(p->w, p->pad_left, p->ow, p->sw, p->kw, p->dw);
    J.rows = PW ? 1 : p->oh;
    J.n = PW ? (long)p->oh * p->ow : p->ow;
    J.ntr = (J.n + EC_QR - 1) / EC_QR;
    J.nq = (J.nblk + EC_QV - 1) / EC_QV;
    J.njobs = J.nq * J.rows * J.ntr;
    J.macs = J.rows * J.n * p->kh * p->kw * p->c * J.cpad;
    return J;
}

long ec_qconv_scratch_bytes(const ec_qconv_params *p)
{
    if (!EC_QPAIRS) return 0;
    return span(p->h, p->pad_top, p->oh, p->sh, p->kh, p->dh)
           * span(p->w, p->pad_left, p->ow, p->sw, p->kw, p->dw) * (p->c + 1) / 2 * 4;
}

/* The output of V channel blocks from ob for R pixels from pix */
EC_QINLINE void qstore(const int R, const int V, const int S, const ec_qconv_params *p,
                       ec_qv acc[EC_QR][EC_QV], const int32_t *rq, long cpad, long pix, int ob,
                       void *y)
{
    for (int v = 0; v < V; v++) { /* the rows in registers: the byte stores may alias them */
        const int o0 = (ob + v) * EC_NB, n = p->o - o0 < EC_NB ? p->o - o0 : EC_NB;
        const ec_qv mult = ec_qload32(rq + cpad + o0), left = ec_qload32(rq + 2 * cpad + o0);
        const ec_qv right = ec_qload32(rq + 3 * cpad + o0);
        for (int r = 0; r < R; r++)
            ec_qstore_n(S, (uint8_t *)y + (pix + r) * p->o + o0, n,
                        ec_qfinish(acc[r][v], mult, left, right, p));
    }
}

#if EC_QPAIRS
/* n activations widened to int16 */
EC_QINLINE void qwiden_n(const int S, const void *restrict x, int16_t *restrict y, long n)
{
    if (S)
        for (long i = 0; i < n; i++) y[i] = ((const int8_t *)x)[i];
    else
        for (long i = 0; i < n; i++) y[i] = ((const uint8_t *)x)[i];
}

EC_QINLINE void qfill(int16_t *y, long n, int16_t v)
{
    for (long i = 0; i < n; i++) y[i] = v;
}

/* x as int16 [hp][wp][ce] (ce = 2 C2): in_zp on the padding, 0 in the odd-one-out channel; an
 * even C widens each input row in one run */
EC_QINLINE void qwiden(const int S, const ec_qconv_params *p, const void *x, int16_t *xs, long hp,
                       long wp, int ce)
{
    const int16_t zp = (int16_t)p->in_zp;
    EC_OMP_FOR_IF(hp * wp * ce >= EC_PARALLEL_MIN_FLOATS)
    for (long yy = 0; yy < hp; yy++) {
        const long iy = yy - p->pad_top;
        int16_t *row = xs + yy * wp * ce;
        if (iy < 0 || iy >= p->h) {
            qfill(row, wp * ce, zp);
            continue;
        }
        if (ce == p->c) {
            const long left = (long)p->pad_left * ce, mid = (long)p->w * ce;
            qfill(row, left, zp);
            qwiden_n(S, (const uint8_t *)x + iy * mid, row + left, mid);
            qfill(row + left + mid, wp * ce - left - mid, zp);
            continue;
        }
        for (long xx = 0; xx < wp; xx++) {
            const long ix = xx - p->pad_left;
            int16_t *dst = row + xx * ce;
            if (ix >= 0 && ix < p->w)
                qwiden_n(S, (const uint8_t *)x + (iy * p->w + ix) * p->c, dst, p->c);
            else
                qfill(dst, p->c, zp);
            dst[p->c] = 0;
        }
    }
}

EC_QINLINE void qtile(const int R, const int V, const int S, const int PW, const ec_qconv_params *p,
                      const int16_t *xs, long wp, int ce, const int16_t *w, const int32_t *rq,
                      long cpad, long pix, int ob, void *y)
{
    const long bstep = (long)p->kh * p->kw * ce * EC_NB; /* one block of packed weights */
    const int16_t *wb = w + ob * bstep;
    ec_qv acc[EC_QR][EC_QV];
    long off[EC_QR];
    for (int r = 0; r < R; r++) {
        for (int v = 0; v < V; v++) acc[r][v] = ec_qload32(rq + (long)(ob + v) * EC_NB);
        off[r] =
            PW ? (pix + r) * ce : ((pix / p->ow) * p->sh * wp + (pix % p->ow + r) * p->sw) * ce;
    }
    for (int ky = 0; ky < p->kh; ky++)
        for (int kx = 0; kx < p->kw; kx++) {
            const int16_t *xt = xs + ((long)ky * p->dh * wp + (long)kx * p->dw) * ce;
            const int16_t *wt = wb + ((long)ky * p->kw + kx) * ce * EC_NB;
            for (int j = 0; j < ce; j += 2) {
                const int32_t *wj = (const int32_t *)(const void *)(wt + (long)j * EC_NB);
                ec_qv wv[EC_QV];
                for (int v = 0; v < V; v++) wv[v] = ec_qload32(wj + v * bstep / 2);
                for (int r = 0; r < R; r++) {
                    int32_t x2;
                    memcpy(&x2, xt + off[r] + j, 4);
                    for (int v = 0; v < V; v++) acc[r][v] = ec_qmadd(acc[r][v], wv[v], x2);
                }
            }
        }
    qstore(R, V, S, p, acc, rq, cpad, pix, ob, y);
}

/* Before the jobs: the input widened into scratch (padded rows of channel pairs). */
EC_QINLINE void qprepare(const int S, const ec_qconv_params *p, const void *x, void *scratch,
                         const qjobs *J)
{
    const long hp = span(p->h, p->pad_top, p->oh, p->sh, p->kh, p->dh);
    qwiden(S, p, x, (int16_t *)scratch, hp, J->wp, J->ce);
}

/* One job: EC_QR pixels (or the ragged rest of a row) x one quad of channel blocks. */
EC_QINLINE void qjob(const int S, const int PW, const ec_qconv_params *p, const void *x,
                     const int16_t *w, const int32_t *rq, void *scratch, void *y, const qjobs *J,
                     long job)
{
    const int16_t *xs = (const int16_t *)scratch;
    const long wp = J->wp, cpad = J->cpad, n = J->n;
    const int ce = J->ce, ob = (int)(job / (J->rows * J->ntr)) * EC_QV,
              nv = J->nblk - ob < EC_QV ? J->nblk - ob : EC_QV;
    const long row = job / J->ntr % J->rows, i = job % J->ntr * EC_QR;
    (void)x;
    if (i + EC_QR <= n) {
#define EC_QPASS(V) qtile(EC_QR, V, S, PW, p, xs, wp, ce, w, rq, cpad, row *n + i, ob, y);
        EC_QBLOCKS(nv)
#undef EC_QPASS
    } else {
        for (long k = i; k < n; k++) {
#define EC_QPASS(V) qtile(1, V, S, PW, p, xs, wp, ce, w, rq, cpad, row *n + k, ob, y);
            EC_QBLOCKS(nv)
#undef EC_QPASS
        }
    }
}
#else
/* acc[r][v] += x[off[r] + c] * w(block v, c) over the C channels of one tap; with EDGE, an
 * off[r] < 0 is a padding cell: the input zero point */
EC_QINLINE void qtap(const int R, const int V, const int S, const int EDGE, ec_qv acc[EC_QR][EC_QV],
                     const void *x, const long *off, const int16_t *w, long wstep, int C,
                     int32_t zp)
{
    for (int c = 0; c < C; c++) {
        ec_qv wv[EC_QV];
        for (int v = 0; v < V; v++) wv[v] = ec_qloadw(w + v * wstep + (long)c * EC_NB);
        for (int r = 0; r < R; r++) {
            const int32_t s = EDGE && off[r] < 0 ? zp : ec_qat(S, x, off[r] + c);
            for (int v = 0; v < V; v++) acc[r][v] = ec_qmac_s(acc[r][v], wv[v], s);
        }
    }
}

/* R output pixels from pixel index pix (oy * ow + ox; one output row unless PW) x V channel
 * blocks from block ob */
EC_QINLINE void qtile(const int R, const int V, const int S, const int PW, const ec_qconv_params *p,
                      const void *x, const int16_t *w, const int32_t *rq, long cpad, long pix,
                      int ob, void *y)
{
    const long bstep = (long)p->kh * p->kw * p->c * EC_NB; /* one block of packed weights */
    const int16_t *wb = w + ob * bstep;
    ec_qv acc[EC_QR][EC_QV];
    long off[EC_QR];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) acc[r][v] = ec_qload32(rq + (long)(ob + v) * EC_NB);
    if (PW) {
        for (int r = 0; r < R; r++) off[r] = (pix + r) * p->c;
        qtap(R, V, S, 0, acc, x, off, wb, bstep, p->c, 0);
    } else {
        const int oy = (int)(pix / p->ow), ox = (int)(pix % p->ow);
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                const int iy = oy * p->sh + ky * p->dh - p->pad_top;
                const int16_t *wt = wb + ((long)ky * p->kw + kx) * p->c * EC_NB;
                int edge = 0;
                for (int r = 0; r < R; r++) {
                    const int ix = (ox + r) * p->sw + kx * p->dw - p->pad_left;
                    const int in = iy >= 0 && iy < p->h && ix >= 0 && ix < p->w;
                    off[r] = in ? ((long)iy * p->w + ix) * p->c : -1;
                    edge |= !in;
                }
                if (edge)
                    qtap(R, V, S, 1, acc, x, off, wt, bstep, p->c, p->in_zp);
                else
                    qtap(R, V, S, 0, acc, x, off, wt, bstep, p->c, p->in_zp);
            }
    }
    qstore(R, V, S, p, acc, rq, cpad, pix, ob, y);
}

EC_QINLINE void qprepare(const int S, const ec_qconv_params *p, const void *x, void *scratch,
                         const qjobs *J)
{
    (void)S, (void)p, (void)x, (void)scratch, (void)J; /* nothing: the taps read x in place */
}

/* One job: EC_QR pixels (or the ragged rest of a row) x one quad of channel blocks. */
EC_QINLINE void qjob(const int S, const int PW, const ec_qconv_params *p, const void *x,
                     const int16_t *w, const int32_t *rq, void *scratch, void *y, const qjobs *J,
                     long job)
{
    const long cpad = J->cpad, n = J->n;
    const int ob = (int)(job / (J->rows * J->ntr)) * EC_QV,
              nv = J->nblk - ob < EC_QV ? J->nblk - ob : EC_QV;
    const long row = job / J->ntr % J->rows, i = job % J->ntr * EC_QR;
    (void)scratch;
    if (i + EC_QR <= n) {
#define EC_QPASS(V) qtile(EC_QR, V, S, PW, p, x, w, rq, cpad, row *n + i, ob, y);
        EC_QBLOCKS(nv)
#undef EC_QPASS
    } else {
        for (long k = i; k < n; k++) {
#define EC_QPASS(V) qtile(1, V, S, PW, p, x, w, rq, cpad, row *n + k, ob, y);
            EC_QBLOCKS(nv)
#undef EC_QPASS
        }
    }
}
#endif

#define EC_QCONV(S, PW)                                                                            \
    const qjobs J = qjobs_of(PW, p);                                                               \
    qprepare(S, p, x, scratch, &J);                                                                \
    EC_OMP_FOR_IF(J.macs >= EC_QPARALLEL_MIN_MACS)                                                 \
    for (long job = 0; job < J.njobs; job++) qjob(S, PW, p, x, w, rq, scratch, y, &J, job);

void ec_qconv_pointwise_u8(const ec_qconv_params *p, const uint8_t *x, const int16_t *w,
                           const int32_t *rq, void *scratch, uint8_t *y)
{
    EC_QCONV(0, 1)
}

void ec_qconv_pointwise_i8(const ec_qconv_params *p, const int8_t *x, const int16_t *w,
                           const int32_t *rq, void *scratch, int8_t *y)
{
    EC_QCONV(1, 1)
}

void ec_qconv_direct_u8(const ec_qconv_params *p, const uint8_t *x, const int16_t *w,
                        const int32_t *rq, void *scratch, uint8_t *y)
{
    EC_QCONV(0, 0)
}

void ec_qconv_direct_i8(const ec_qconv_params *p, const int8_t *x, const int16_t *w,
                        const int32_t *rq, void *scratch, int8_t *y)
{
    EC_QCONV(1, 0)
}
