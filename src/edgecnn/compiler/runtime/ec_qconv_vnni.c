/* Fast integer pointwise convolution (1x1, stride 1, no padding; qdense shares it) with AVX-512
 * VNNI (ec_conv.h). VPDPBUSD multiplies four unsigned bytes by four signed bytes and adds the
 * four products to an int32 lane: 64 multiply-adds per instruction, each product exact in 16
 * bits (255 x 128 < 2^15) and no intermediate saturation (the saturating form is VPDPBUSDS).
 *
 * The 16 int32 lanes of an accumulator are 16 output channels; a tile of EC_VR pixels x EC_VV
 * channel blocks shares each weight load, and four input channels of a pixel are broadcast to
 * every lane. Weights come packed by packing.pack_qconv_vnni as int8 q = w - b,
 * [ceil(O / 16)][ceil(C / 4)][16][4], zero past O and C: b is the weight zero point when every
 * w - w_zp fits int8 (int8 models), else the nearest value that makes every q fit (uint8 models,
 * whose w - w_zp spans -255..255); d = b - w_zp. The activations enter unsigned, u = x (uint8)
 * or x + 128 (int8), so x - in_zp = u - a - in_zp (a = 0 or 128) and
 *
 *   acc = bias + sum((x - in_zp)(w - w_zp))
 *       = [bias - (a + in_zp) sum(w - w_zp)] + sum(u q) + d sum(u)
 *
 * The bracket is the folded bias of the packed requantization (packing.pack_qrequant); sum(u),
 * one per pixel, is taken before the tiles when d != 0. Every int32 sum wraps (VPDPBUSD, VPADDD,
 * unsigned C), and the true accumulator fits int32 (the compiler bounds the taps), so the
 * rearranged sums give it exactly. Requantization and clamp as the other fast kernels
 * (ec_qvec.h). */
#include "ec_conv.h"
#include "ec_qdot.h"
#include "ec_qvec.h"

#if !defined(__AVX512VNNI__) || !defined(__AVX512BW__) || EC_NB != 16 || defined(EC_NO_VECTOR_EXT)
#error "ec_qconv_vnni.c needs AVX-512 VNNI (-mavx512vnni) and EC_NB=16"
#endif
#include <immintrin.h>

#ifndef EC_VR /* a tile: EC_VR pixels x EC_VV channel blocks of accumulators */
#define EC_VR 6
#define EC_VV 4 /* 24 accumulators, 4 weight vectors and a broadcast of the 32 registers */
#endif

/* The scratch: the activations as unsigned bytes, channels padded to a multiple of 4 (when the
 * input is int8 or C is not such a multiple), then one int32 sum per pixel (packing.
 * qconv_vnni_scratch_bytes). */
static long vstride(const ec_qconv_params *p) { return (p->c + 3) / 4 * 4; }
static long vsums_offset(const ec_qconv_params *p)
{
    return ((long)p->oh * p->ow * vstride(p) + 63) / 64 * 64;
}

long ec_qconv_vnni_scratch_bytes(const ec_qconv_params *p)
{
    return vsums_offset(p) + (long)p->oh * p->ow * 4;
}

/* The sum of c bytes at x, each XOR flip (from 32: VPSADBW against zero, eight bytes to a 64-bit
 * lane) */
EC_QINLINE uint32_t vsum(const uint8_t *x, int c, uint8_t flip)
{
    if (c < 32) { /* a few bytes: cheaper than the vector's reduction */
        uint32_t s = 0;
        for (int k = 0; k < c; k++) s += (uint8_t)(x[k] ^ flip);
        return s;
    }
    const __m512i f = _mm512_set1_epi8((char)flip), zero = _mm512_setzero_si512();
    __m512i acc = zero;
    int k = 0;
    for (; k + 64 <= c; k += 64)
        acc = _mm512_add_epi64(
            acc, _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(x + k), f), zero));
    if (k < c) {
        const __mmask64 m = ~0ULL >> (64 - (c - k));
        const __m512i v =
            _mm512_maskz_mov_epi8(m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + k), f));
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, zero));
    }
    return (uint32_t)_mm512_reduce_add_epi64(acc);
}

/* Pixels [0, n): x as u (xs, cs bytes a pixel, when not NULL) and sum(u) (sums, when not NULL) */
EC_QINLINE void vprepare(const int S, const uint8_t *x, int c, long n, uint8_t *xs, long cs,
                         int32_t *sums)
{
    const uint8_t flip = S ? 0x80 : 0;
    EC_OMP_FOR_IF(n * c >= EC_PARALLEL_MIN_FLOATS)
    for (long i = 0; i < n; i++) {
        const uint8_t *src = x + i * c;
        if (xs) {
            uint8_t *dst = xs + i * cs;
            for (int k = 0; k < c; k++) dst[k] = src[k] ^ flip;
            for (long k = c; k < cs; k++) dst[k] = 0;
        }
        if (sums) sums[i] = (int32_t)vsum(src, c, flip);
    }
}

/* The requantization of 16 channels (packing.pack_qrequant's rows), as ec_qrequant computes
 * it (ec_qvec.h), held in registers over a tile's stores */
typedef struct {
    __m512i mult, mult_odd, left, right, mask, half;
} vrq;

EC_QINLINE void vrq_load(vrq *q, const int32_t *rq, long cpad)
{
    q->mult = _mm512_loadu_si512(rq + cpad);
    q->mult_odd = _mm512_srli_epi64(q->mult, 32);
    q->left = _mm512_loadu_si512(rq + 2 * cpad);
    q->right = _mm512_loadu_si512(rq + 3 * cpad);
    q->mask =
        _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), q->right), _mm512_set1_epi32(1));
    q->half = _mm512_srli_epi32(q->mask, 1);
}

/* ec_qfinish: x = acc << left; the doubling high multiply floor((x m + 2^30) / 2^31) (bits 31..62
 * of the 64-bit sum: the even lanes' by a right shift, the odd lanes' by a left shift into the
 * high half); the rounding right shift, ties away from zero; the zero point; the clamp. */
EC_QINLINE __m512i vfinish(__m512i acc, const vrq *q, const ec_qconv_params *p)
{
    const __m512i x = _mm512_sllv_epi32(acc, q->left), round = _mm512_set1_epi64(1LL << 30);
    const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, q->mult), round);
    const __m512i odd =
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), q->mult_odd), round);
    const __m512i h =
        _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31), _mm512_slli_epi64(odd, 1));
    const __m512i threshold = _mm512_sub_epi32(q->half, _mm512_srai_epi32(h, 31));
    const __mmask16 up = _mm512_cmpgt_epi32_mask(_mm512_and_si512(h, q->mask), threshold);
    __m512i r = _mm512_srav_epi32(h, q->right);
    r = _mm512_mask_add_epi32(r, up, r, _mm512_set1_epi32(1));
    r = _mm512_add_epi32(r, _mm512_set1_epi32(p->out_zp));
    return _mm512_min_epi32(_mm512_max_epi32(r, _mm512_set1_epi32(p->act_min)),
                            _mm512_set1_epi32(p->act_max));
}

/* n (<= 16) lanes of v (in the 8-bit range: truncation is exact for either type) stored at y */
EC_QINLINE void vstore(const int S, void *y, int n, __m512i v)
{
    (void)S;
    if (n == 16)
        _mm_storeu_si128((__m128i *)y, _mm512_cvtepi32_epi8(v));
    else
        _mm_mask_storeu_epi8(y, (__mmask16)((1u << n) - 1), _mm512_cvtepi32_epi8(v));
}

/* acc + the 4-byte dot products of u (unsigned) and w (signed), lane by lane: VPDPBUSD. GCC 12
 * copies the accumulator of its intrinsic to a new register after every use (and spills the
 * tile's accumulators), so the instruction is written with its operand tied. */
EC_QINLINE __m512i vdot(__m512i acc, __m512i u, __m512i w)
{
#if defined(__GNUC__) && !defined(__clang__)
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(w));
    return acc;
#else
    return _mm512_dpbusd_epi32(acc, u, w);
#endif
}

/* R pixels from pix x V channel blocks from ob */
EC_QINLINE void vtile(const int R, const int V, const int S, const ec_qconv_params *p,
                      const uint8_t *xs, long cs, const int8_t *w, const int32_t *rq, long cpad,
                      const int32_t *sums, int32_t d, long pix, int ob, void *y)
{
    const long bstep = cs * 16; /* bytes of one packed block */
    const int8_t *wb = w + ob * bstep;
    const uint8_t *xr[EC_VR];
    __m512i acc[EC_VR][EC_VV];
    for (int r = 0; r < R; r++) {
        xr[r] = xs + (pix + r) * cs;
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_loadu_si512(rq + (long)(ob + v) * 16);
    }
    for (long j = 0; j < cs; j += 4) {
        __m512i wv[EC_VV];
        for (int v = 0; v < V; v++) wv[v] = _mm512_loadu_si512(wb + v * bstep + j * 16);
        for (int r = 0; r < R; r++) {
            int32_t u;
            memcpy(&u, xr[r] + j, 4);
            const __m512i xb = _mm512_set1_epi32(u);
            for (int v = 0; v < V; v++) acc[r][v] = vdot(acc[r][v], xb, wv[v]);
        }
    }
    if (sums)
        for (int r = 0; r < R; r++) {
            const __m512i corr =
                _mm512_set1_epi32((int32_t)((uint32_t)d * (uint32_t)sums[pix + r]));
            for (int v = 0; v < V; v++) acc[r][v] = _mm512_add_epi32(acc[r][v], corr);
        }
    for (int v = 0; v < V; v++) { /* the rows in registers: the byte stores may alias them */
        const int o0 = (ob + v) * 16, n = p->o - o0 < 16 ? p->o - o0 : 16;
        vrq q;
        vrq_load(&q, rq + o0, cpad);
        for (int r = 0; r < R; r++)
            vstore(S, (uint8_t *)y + (pix + r) * p->o + o0, n, vfinish(acc[r][v], &q, p));
    }
}

/* vtile for the nv (1 .. EC_VV) blocks left, as a constant (the accumulators in registers) */
EC_QINLINE void vtile_nv(const int R, int nv, const int S, const ec_qconv_params *p,
                         const uint8_t *xs, long cs, const int8_t *w, const int32_t *rq, long cpad,
                         const int32_t *sums, int32_t d, long pix, int ob, void *y)
{
    if (nv == EC_VV)
        vtile(R, EC_VV, S, p, xs, cs, w, rq, cpad, sums, d, pix, ob, y);
    else if (nv == 1)
        vtile(R, 1, S, p, xs, cs, w, rq, cpad, sums, d, pix, ob, y);
    else if (nv == 2)
        vtile(R, 2, S, p, xs, cs, w, rq, cpad, sums, d, pix, ob, y);
    else
        vtile(R, EC_VV > 3 ? 3 : 1, S, p, xs, cs, w, rq, cpad, sums, d, pix, ob, y);
}

EC_QINLINE void vconv(const int S, const ec_qconv_params *p, const void *x, const int8_t *w,
                      const int32_t *rq, int32_t d, void *scratch, void *y)
{
    const long npix = (long)p->oh * p->ow, cs = vstride(p);
    const int nblk = (p->o + 15) / 16, nq = (nblk + EC_VV - 1) / EC_VV;
    const long cpad = (long)nblk * 16, ntile = (npix + EC_VR - 1) / EC_VR;
    const int copy = S || cs != p->c; /* else the tiles read x in place */
    uint8_t *xs = copy ? (uint8_t *)scratch : NULL;
    int32_t *sums = d ? (int32_t *)(void *)((uint8_t *)scratch + vsums_offset(p)) : NULL;
    if (xs || sums) vprepare(S, (const uint8_t *)x, p->c, npix, xs, cs, sums);
    const uint8_t *u = copy ? xs : (const uint8_t *)x;
    /* jobs: channel quads outer (their weights stay in L1 over the pixel tiles), tiles inner */
    EC_OMP_FOR_IF(npix * cs * cpad >= EC_QPARALLEL_MIN_MACS)
    for (long job = 0; job < nq * ntile; job++) {
        const int ob = (int)(job / ntile) * EC_VV, nv = nblk - ob < EC_VV ? nblk - ob : EC_VV;
        const long pix = job % ntile * EC_VR;
        if (pix + EC_VR <= npix)
            vtile_nv(EC_VR, nv, S, p, u, cs, w, rq, cpad, sums, d, pix, ob, y);
        else
            for (long i = pix; i < npix; i++)
                vtile_nv(1, nv, S, p, u, cs, w, rq, cpad, sums, d, i, ob, y);
    }
}

/* ---- direct: any kernel size and stride, dilation 1 along x ---------------------------------
 *
 * The input is copied to the scratch as u with its padding (u of in_zp) and rows of rs bytes:
 * along x a window row is kw * C contiguous bytes, taken four at a time (K4 = ceil(kw C / 4)
 * broadcasts a row; the bytes past kw C meet zero weights), so three channels (an RGB first
 * layer) waste one byte in 12, not one in 4. Weights: [ceil(O / 16)][kh][K4][16][4]
 * (packing.pack_qconv_vnni; a 1x1 kernel is the pointwise layout). When d != 0, the sum of u
 * over each output pixel's window follows the rows: per output row, the kh input rows summed
 * byte by byte, their running sum, and a window's sum is the difference of two of those. */

long ec_qconv_vnni_direct_scratch_bytes(const ec_qconv_params *p)
{
    return ec_qdot_direct_scratch(p);
}

/* The padded copy of x as u */
EC_QINLINE void vpad(const int S, const ec_qconv_params *p, const uint8_t *x, const ec_qdot_geom *g,
                     uint8_t *xs)
{
    const uint8_t flip = S ? 0x80 : 0, pad = (uint8_t)((uint8_t)p->in_zp ^ flip);
    const long left = (long)p->pad_left * p->c, mid = (long)p->w * p->c, wc = g->wp * p->c;
    EC_OMP_FOR_IF(g->hp * g->rs >= EC_PARALLEL_MIN_FLOATS)
    for (long yy = 0; yy < g->hp; yy++) {
        const long iy = yy - p->pad_top;
        uint8_t *row = xs + yy * g->rs;
        if (iy >= 0 && iy < p->h) {
            const uint8_t *src = x + iy * mid;
            memset(row, pad, (size_t)left);
            for (long k = 0; k < mid; k++) row[left + k] = src[k] ^ flip;
            memset(row + left + mid, pad, (size_t)(wc - left - mid));
        } else {
            memset(row, pad, (size_t)wc);
        }
        memset(row + wc, 0, (size_t)(g->rs - wc));
    }
}

/* R output pixels from (oy, ox) along the row x V channel blocks from ob */
EC_QINLINE void dtile(const int R, const int V, const int S, const ec_qconv_params *p,
                      const ec_qdot_geom *g, const uint8_t *xs, const int8_t *w, const int32_t *rq,
                      long cpad, const int32_t *sums, int32_t d, int oy, int ox, int ob, void *y)
{
    const long bstep = (long)p->kh * g->k4 * 64; /* bytes of one packed block */
    const int8_t *wb = w + ob * bstep;
    __m512i acc[EC_VR][EC_VV];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_loadu_si512(rq + (long)(ob + v) * 16);
    for (int ky = 0; ky < p->kh; ky++) {
        const uint8_t *row =
            xs + ((long)oy * p->sh + (long)ky * p->dh) * g->rs + (long)ox * p->sw * p->c;
        const int8_t *wk = wb + (long)ky * g->k4 * 64;
        for (long j = 0; j < g->k4; j++) {
            __m512i wv[EC_VV];
            for (int v = 0; v < V; v++) wv[v] = _mm512_loadu_si512(wk + v * bstep + j * 64);
            for (int r = 0; r < R; r++) {
                int32_t u;
                memcpy(&u, row + (long)r * p->sw * p->c + 4 * j, 4);
                const __m512i xb = _mm512_set1_epi32(u);
                for (int v = 0; v < V; v++) acc[r][v] = vdot(acc[r][v], xb, wv[v]);
            }
        }
    }
    if (sums)
        for (int r = 0; r < R; r++) {
            const uint32_t s = (uint32_t)sums[(long)oy * p->ow + ox + r];
            const __m512i corr = _mm512_set1_epi32((int32_t)((uint32_t)d * s));
            for (int v = 0; v < V; v++) acc[r][v] = _mm512_add_epi32(acc[r][v], corr);
        }
    for (int v = 0; v < V; v++) {
        const int o0 = (ob + v) * 16, n = p->o - o0 < 16 ? p->o - o0 : 16;
        vrq q;
        vrq_load(&q, rq + o0, cpad);
        for (int r = 0; r < R; r++)
            vstore(S, (uint8_t *)y + ((long)oy * p->ow + ox + r) * p->o + o0, n,
                   vfinish(acc[r][v], &q, p));
    }
}

EC_QINLINE void dtile_nv(const int R, int nv, const int S, const ec_qconv_params *p,
                         const ec_qdot_geom *g, const uint8_t *xs, const int8_t *w,
                         const int32_t *rq, long cpad, const int32_t *sums, int32_t d, int oy,
                         int ox, int ob, void *y)
{
    if (nv == EC_VV)
        dtile(R, EC_VV, S, p, g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
    else if (nv == 1)
        dtile(R, 1, S, p, g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
    else if (nv == 2)
        dtile(R, 2, S, p, g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
    else
        dtile(R, EC_VV > 3 ? 3 : 1, S, p, g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
}

EC_QINLINE void dconv(const int S, const ec_qconv_params *p, const void *x, const int8_t *w,
                      const int32_t *rq, int32_t d, void *scratch, void *y)
{
    const ec_qdot_geom g = ec_qdot_geometry(p);
    const int nblk = (p->o + 15) / 16, nq = (nblk + EC_VV - 1) / EC_VV;
    const long cpad = (long)nblk * 16, ntr = (p->ow + EC_VR - 1) / EC_VR;
    uint8_t *xs = (uint8_t *)scratch;
    int32_t *sums = d ? (int32_t *)(void *)(xs + g.sums) : NULL;
    vpad(S, p, (const uint8_t *)x, &g, xs);
    if (sums) ec_qdot_window_sums(0, p, &g, xs, sums, (uint32_t *)(sums + (long)p->oh * p->ow));
    /* jobs: channel quads outer (their weights stay in cache), then rows, then tiles */
    EC_OMP_FOR_IF((long)p->oh * p->ow * p->kh * g.k4 * 4 * cpad >= EC_QPARALLEL_MIN_MACS)
    for (long job = 0; job < nq * p->oh * ntr; job++) {
        const int ob = (int)(job / (p->oh * ntr)) * EC_VV,
                  nv = nblk - ob < EC_VV ? nblk - ob : EC_VV;
        const int oy = (int)(job / ntr % p->oh), ox = (int)(job % ntr * EC_VR);
        if (ox + EC_VR <= p->ow)
            dtile_nv(EC_VR, nv, S, p, &g, xs, w, rq, cpad, sums, d, oy, ox, ob, y);
        else
            for (int i = ox; i < p->ow; i++)
                dtile_nv(1, nv, S, p, &g, xs, w, rq, cpad, sums, d, oy, i, ob, y);
    }
}

void ec_qconv_direct_vnni_u8(const ec_qconv_params *p, const uint8_t *x, const int8_t *w,
                             const int32_t *rq, int32_t d, void *scratch, uint8_t *y)
{
    dconv(0, p, x, w, rq, d, scratch, y);
}

void ec_qconv_direct_vnni_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *w,
                             const int32_t *rq, int32_t d, void *scratch, int8_t *y)
{
    dconv(1, p, x, w, rq, d, scratch, y);
}

void ec_qconv_pointwise_vnni_u8(const ec_qconv_params *p, const uint8_t *x, const int8_t *w,
                                const int32_t *rq, int32_t d, void *scratch, uint8_t *y)
{
    vconv(0, p, x, w, rq, d, scratch, y);
}

void ec_qconv_pointwise_vnni_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *w,
                                const int32_t *rq, int32_t d, void *scratch, int8_t *y)
{
    vconv(1, p, x, w, rq, d, scratch, y);
}
