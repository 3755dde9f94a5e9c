/* edgecnn runtime: Winograd F(4x4, 3x3) and F(2x2, 5x5) convolutions (3x3 or 5x5, stride 1,
 * dilation 1, groups 1).
 *
 * Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016): every MxM output
 * tile is A^T [ U (.) (B^T d B) ] A, with d the 6x6 input patch and U = G g G^T the transformed
 * filter (packed by edgecnn.compiler.packing.pack_winograd). Both use the points 0, +-1, +-2
 * and infinity, so they share the 6x6 input transform B^T and the 36 GEMMs; they differ in G
 * (packing.py) and in the output tile: M = 4 for 3x3 (36 multiplies per output pixel and input
 * channel become 36 / 16 = 2.25, 4x fewer FMAs than direct), M = 2 for 5x5 (25 become
 * 36 / 4 = 9, 2.8x fewer). M is a compile-time constant of the specialized functions below.
 *
 * The tiles are processed in chunks of `tc` so that a chunk's transformed input V
 * [36][tc][Cin] and products M [36][tc][Cout'] stay in the L2 cache:
 *   1. input transform  V[e][k][ci] = (B^T d_k B)[e]                     (vectors over ci)
 *   2. 36 GEMMs         M[e][k][co] = sum_ci V[e][k][ci] U[e][ci][co]   (register tiles of
 *                       EC_TW tiles x 2 vectors of EC_NB output channels, as in direct conv)
 *   3. output transform out[4x4 of tile k] = act(A^T M_k A + bias)        (vectors over co)
 * With OpenMP every thread works on its own chunks in its own part of the scratch; the threads
 * of a map of one chunk split its pairs of output channel blocks instead (each transforms all
 * input tiles into its own scratch, then reads only its part of U: no barrier between steps).
 */
#include "ec_conv.h"
#include "ec_vec_fast.h"

#ifdef EC_OPENMP
#include <omp.h>
#endif

/* Threads the scratch has room for (the kernel uses no more than this many). The memory planner
 * sizes the scratch at compile time, before the thread count is known, so it must be bounded:
 * 4 is the core count of the Raspberry Pi 3, 4 and 5, the targets this runtime is tuned for
 * (mirrored by packing.WINOGRAD_MAX_THREADS). */
#ifndef EC_MAX_THREADS
#ifdef EC_OPENMP
#define EC_MAX_THREADS 4
#else
#define EC_MAX_THREADS 1
#endif
#endif

/* Floats of one chunk's scratch we aim for: 96 Ki floats = 384 KiB, well inside a 1 MiB L2
 * (mirrored in edgecnn.compiler.packing: change both). */
#ifndef EC_WINO_CHUNK_FLOATS
#define EC_WINO_CHUNK_FLOATS (96 * 1024)
#endif

static int ec_blocks(int n, int b) { return (n + b - 1) / b; }

/* Tiles per chunk: a multiple of 8, at least 8, at most all tiles; all of them when the whole
 * map's V and M are no larger than U, since every chunk reads all of U (few tiles of many
 * channels, e.g. 13x13 maps of 256-384 channels: one pass over U, not two). The same formula is
 * in edgecnn.compiler.packing.winograd_scratch_floats (the memory planner sizes the scratch). */
static int ec_wino_chunk_tiles(int cin, int cout, int ntiles)
{
    const int coutp = ec_blocks(cout, EC_NB) * EC_NB;
    if ((size_t)ntiles * (size_t)(cin + coutp) <= (size_t)cin * coutp) return ntiles;
    int tc = EC_WINO_CHUNK_FLOATS / (36 * (cin + coutp)) / 8 * 8;
    if (tc < 8) tc = 8;
    return tc < ntiles ? tc : ntiles;
}

static size_t ec_wino_chunk_floats(int cin, int cout, int tc)
{
    return (size_t)36 * tc * (size_t)(cin + ec_blocks(cout, EC_NB) * EC_NB);
}

/* The output tile of a kernel size: 4x4 for 3x3, 2x2 for 5x5. */
static int ec_wino_tile(const ec_conv_params *p) { return p->kh == 5 ? 2 : 4; }

size_t ec_winograd_scratch_floats(const ec_conv_params *p, const ec_tensor *in,
                                  const ec_tensor *out)
{
    const int m = ec_wino_tile(p);
    const int ntiles = ec_blocks(out->h, m) * ec_blocks(out->w, m);
    const int tc = ec_wino_chunk_tiles(in->c, out->c, ntiles);
    const int nchunk = ec_blocks(ntiles, tc), npair = ec_blocks(ec_blocks(out->c, EC_NB), 2);
    const int ways = nchunk > 1 ? nchunk : npair; /* chunks, or pairs of blocks of one chunk */
    const int nt = ways < EC_MAX_THREADS ? ways : EC_MAX_THREADS;
    return (size_t)nt * ec_wino_chunk_floats(in->c, out->c, tc);
}

/* ---- 1. input transform ---------------------------------------------------------------- */

/* t = B^T d along one axis (6 vectors, stride 1 in the arrays). */
EC_INLINE void ec_wino_bt(const ec_vf d[6], ec_vf t[6])
{
    t[0] = ec_vadd(ec_vsub(ec_vscale(d[0], 4.0f), ec_vscale(d[2], 5.0f)), d[4]);
    t[1] = ec_vsub(ec_vadd(d[3], d[4]), ec_vscale(ec_vadd(d[1], d[2]), 4.0f));
    t[2] = ec_vadd(ec_vsub(d[4], d[3]), ec_vscale(ec_vsub(d[1], d[2]), 4.0f));
    t[3] = ec_vadd(ec_vsub(d[4], d[2]), ec_vscale(ec_vsub(d[3], d[1]), 2.0f));
    t[4] = ec_vsub(ec_vsub(d[4], d[2]), ec_vscale(ec_vsub(d[3], d[1]), 2.0f));
    t[5] = ec_vadd(ec_vsub(ec_vscale(d[1], 4.0f), ec_vscale(d[3], 5.0f)), d[5]);
}

/* V[e][k][c0..c0+n) for tile (ty, tx): the 6x6 patch from (M ty - pad_t, M tx - pad_l); cells
 * outside the input's buffer (only below/right of the last tiles, whose extra outputs are
 * dropped) read as zero. FULL: the patch lies inside the buffer and n == EC_NB, so the loads
 * need no checks (every tile but the ragged last ones). */
EC_INLINE void ec_wino_input_tile_impl(const int FULL, const int M, const ec_conv_params *p,
                                       const ec_tensor *in, int ty, int tx, int c0, int n, float *v,
                                       size_t estride)
{
    const int y0 = M * ty - p->pad_t, x0 = M * tx - p->pad_l;
    const float *org = in->data + (ptrdiff_t)y0 * in->row_stride + (ptrdiff_t)x0 * in->c + c0;
    ec_vf d[6][6], t[6][6], col[6], r[6];
    for (int a = 0; a < 6; a++) {
        const int y = y0 + a;
        const int yok = y >= -in->pad_h && y < in->h + in->pad_h;
        for (int b = 0; b < 6; b++) {
            const float *px = org + (ptrdiff_t)a * in->row_stride + (ptrdiff_t)b * in->c;
            const int x = x0 + b;
            if (FULL)
                d[a][b] = ec_vload(px);
            else if (!yok || x < -in->pad_w || x >= in->w + in->pad_w)
                d[a][b] = ec_vzero();
            else
                d[a][b] = n == EC_NB ? ec_vload(px) : ec_vload_n(px, n);
        }
    }
    for (int b = 0; b < 6; b++) { /* columns: t[.][b] = B^T d[.][b] */
        for (int a = 0; a < 6; a++) col[a] = d[a][b];
        ec_wino_bt(col, r);
        for (int a = 0; a < 6; a++) t[a][b] = r[a];
    }
    for (int a = 0; a < 6; a++) { /* rows: (B^T d) B = rows of t times B */
        ec_wino_bt(t[a], r);
        for (int b = 0; b < 6; b++) {
            float *dst = v + (size_t)(a * 6 + b) * estride;
            if (FULL || n == EC_NB)
                ec_vstore(dst, r[b]);
            else
                ec_vstore_n(dst, r[b], n);
        }
    }
}

EC_INLINE void ec_wino_input_tile(const int M, const ec_conv_params *p, const ec_tensor *in, int ty,
                                  int tx, int c0, int n, float *v, size_t estride)
{
    const int y0 = M * ty - p->pad_t, x0 = M * tx - p->pad_l;
    const int full = n == EC_NB && y0 >= -in->pad_h && y0 + 6 <= in->h + in->pad_h
                     && x0 >= -in->pad_w && x0 + 6 <= in->w + in->pad_w;
    if (full)
        ec_wino_input_tile_impl(1, M, p, in, ty, tx, c0, n, v, estride);
    else
        ec_wino_input_tile_impl(0, M, p, in, ty, tx, c0, n, v, estride);
}

/* ---- 2. the GEMMs ---------------------------------------------------------------------- */

/* M[k_i][c0 .. c0 + TV*EC_NB) = sum_ci V[k_i][ci] U[ci][.] for TW tiles k_i of one element e.
 * vrow[i]: V row of tile i (cin floats); u: U block of c0 ([cin][EC_NB]), next block
 * `ublock` floats further; mrow[i]: M row of tile i. */
EC_INLINE void ec_wino_gemm_tile(const int TW, const int TV, const float *const *vrow,
                                 float *const *mrow, int cin, const float *u, size_t ublock)
{
    ec_vf acc[EC_TW][2];
    const float *vr[EC_TW];
    for (int i = 0; i < TW; i++) {
        vr[i] = vrow[i];
        for (int v = 0; v < TV; v++) acc[i][v] = ec_vzero();
    }
    for (int j = 0; j < cin; j++) {
        ec_vf w0 = ec_vload(u + (size_t)j * EC_NB);
        ec_vf w1 = TV > 1 ? ec_vload(u + ublock + (size_t)j * EC_NB) : w0;
        EC_UNROLL
        for (int i = 0; i < TW; i++) {
            const float x = vr[i][j];
            acc[i][0] = ec_vfma_s(acc[i][0], w0, x);
            if (TV > 1) acc[i][1] = ec_vfma_s(acc[i][1], w1, x);
        }
    }
    for (int i = 0; i < TW; i++)
        for (int v = 0; v < TV; v++) ec_vstore(mrow[i] + v * EC_NB, acc[i][v]);
}

/* The GEMMs of output blocks b0 .. b1 (b0 even; pairs b, b + 1) for the 36 elements. */
static void ec_wino_gemm(int tc, int cin, int nblk, const float *u_all, const float *vbuf,
                         float *mbuf, int tcap, int b0, int b1)
{
    const int coutp = nblk * EC_NB;
    const size_t ublock = (size_t)cin * EC_NB;
    const int npair = ec_blocks(b1 - b0, 2);
    for (int item = 0; item < 36 * npair; item++) { /* e-major: V_e stays in L1 */
        const int e = item / npair, b = b0 + 2 * (item % npair);
        const float *u = u_all + (size_t)e * nblk * ublock;
        const float *ve = vbuf + (size_t)e * tcap * cin;
        float *me = mbuf + (size_t)e * tcap * coutp;
        for (int k0 = 0; k0 < tc; k0 += EC_TW) {
            const float *vrow[EC_TW];
            float *mrow[EC_TW];
            for (int i = 0; i < EC_TW; i++) {
                const int k = k0 + i < tc ? k0 + i : tc - 1;
                vrow[i] = ve + (size_t)k * cin;
                mrow[i] = me + (size_t)k * coutp + (size_t)b * EC_NB;
            }
            if (b + 1 < b1)
                ec_wino_gemm_tile(EC_TW, 2, vrow, mrow, cin, u + b * ublock, ublock);
            else
                ec_wino_gemm_tile(EC_TW, 1, vrow, mrow, cin, u + b * ublock, ublock);
        }
    }
}

/* ---- 3. output transform --------------------------------------------------------------- */

/* o = A^T m along one axis (6 vectors in, M out). F(4, 3):
 *   [1 1  1 1  1 0]      F(2, 5): [1 1  1 1  1 0]
 *   [0 1 -1 2 -2 0]               [0 1 -1 2 -2 1]
 *   [0 1  1 4  4 0]
 *   [0 1 -1 8 -8 1]   (rows: the powers 0 .. M-1 of the points; infinity's column is 1 in the
 * last row only). */
EC_INLINE void ec_wino_at(const int M, const ec_vf m[6], ec_vf o[4])
{
    const ec_vf s12 = ec_vadd(m[1], m[2]), d12 = ec_vsub(m[1], m[2]);
    const ec_vf s34 = ec_vadd(m[3], m[4]), d34 = ec_vsub(m[3], m[4]);
    o[0] = ec_vadd(ec_vadd(m[0], s12), s34);
    if (M == 2) {
        o[1] = ec_vadd(ec_vadd(d12, ec_vscale(d34, 2.0f)), m[5]);
        return;
    }
    o[1] = ec_vadd(d12, ec_vscale(d34, 2.0f));
    o[2] = ec_vadd(s12, ec_vscale(s34, 4.0f));
    o[3] = ec_vadd(ec_vadd(d12, ec_vscale(d34, 8.0f)), m[5]);
}

/* out[MxM pixels of tile (ty, tx)][c0 ..] = act(A^T m A + bias). ACT: the activation as a
 * compile-time constant (its switch folds away); FULL: all M*M pixels inside the map and a
 * whole vector of channels. */
EC_INLINE void ec_wino_output_tile_impl(const int ACT, const int FULL, const int M,
                                        const ec_conv_params *p, ec_tensor *out, int ty, int tx,
                                        int c0, const float *m, size_t estride, const float *bias)
{
    const int n = out->c - c0 < EC_NB ? out->c - c0 : EC_NB;
    ec_vf t[4][6], col[6], r[4], row[4];
    for (int b = 0; b < 6; b++) { /* columns: t[.][b] = A^T m[.][b] */
        for (int a = 0; a < 6; a++) col[a] = ec_vload(m + (size_t)(a * 6 + b) * estride);
        ec_wino_at(M, col, r);
        for (int a = 0; a < M; a++) t[a][b] = r[a];
    }
    const ec_vf bv = FULL && bias ? ec_vload(bias + c0) : ec_vbias(bias, c0, n);
    float *org = out->data + (ptrdiff_t)M * ty * out->row_stride + (ptrdiff_t)M * tx * out->c + c0;
    for (int a = 0; a < M; a++) {
        if (!FULL && M * ty + a >= out->h) break;
        ec_wino_at(M, t[a], row);
        for (int b = 0; b < M; b++) {
            if (!FULL && M * tx + b >= out->w) break;
            ec_vf v = ec_vactivate(ec_vadd(row[b], bv), ACT, p->act_alpha, p->act_slope, c0, n);
            float *dst = org + (ptrdiff_t)a * out->row_stride + (ptrdiff_t)b * out->c;
            if (FULL || n == EC_NB)
                ec_vstore(dst, v);
            else
                ec_vstore_n(dst, v, n);
        }
    }
}

#define EC_WINO_OUT(ACT)                                                                           \
    do {                                                                                           \
        if (full)                                                                                  \
            ec_wino_output_tile_impl(ACT, 1, M, p, out, ty, tx, c0, m, estride, bias);             \
        else                                                                                       \
            ec_wino_output_tile_impl(ACT, 0, M, p, out, ty, tx, c0, m, estride, bias);             \
    } while (0)

EC_INLINE void ec_wino_output_tile(const int M, const ec_conv_params *p, ec_tensor *out, int ty,
                                   int tx, int c0, const float *m, size_t estride,
                                   const float *bias)
{
    const int full = c0 + EC_NB <= out->c && M * ty + M <= out->h && M * tx + M <= out->w;
    switch (p->act) {
    case EC_ACT_RELU: EC_WINO_OUT(EC_ACT_RELU); break;
    case EC_ACT_LEAKY: EC_WINO_OUT(EC_ACT_LEAKY); break;
    case EC_ACT_RELU6: EC_WINO_OUT(EC_ACT_RELU6); break;
    case EC_ACT_PRELU: EC_WINO_OUT(EC_ACT_PRELU); break;
    case EC_ACT_NONE: EC_WINO_OUT(EC_ACT_NONE); break;
    default: EC_WINO_OUT(p->act); break; /* sigmoid, tanh: libm dominates anyway */
    }
}

/* ---- driver ---------------------------------------------------------------------------- */

/* Tiles t0 .. t0 + tc of the map, output blocks b0 .. b1 (b0 even; all blocks but for a chunk
 * whose blocks are split between threads), in a scratch of tcap tiles. */
EC_INLINE void ec_wino_chunk(const int M, const ec_conv_params *p, const ec_tensor *in,
                             ec_tensor *out, const float *u, const float *bias, int t0, int tc,
                             int tcap, float *scratch, int b0, int b1)
{
    const int cin = in->c, nblk = ec_blocks(out->c, EC_NB), coutp = nblk * EC_NB;
    const int tiles_x = ec_blocks(out->w, M);
    float *vbuf = scratch;                           /* [36][tcap][cin] */
    float *mbuf = scratch + (size_t)36 * tcap * cin; /* [36][tcap][coutp] */
    for (int k = 0; k < tc; k++) {
        const int t = t0 + k;
        for (int c0 = 0; c0 < cin; c0 += EC_NB) {
            const int n = cin - c0 < EC_NB ? cin - c0 : EC_NB;
            ec_wino_input_tile(M, p, in, t / tiles_x, t % tiles_x, c0, n,
                               vbuf + (size_t)k * cin + c0, (size_t)tcap * cin);
        }
    }
    ec_wino_gemm(tc, cin, nblk, u, vbuf, mbuf, tcap, b0, b1);
    for (int k = 0; k < tc; k++) {
        const int t = t0 + k;
        for (int b = b0; b < b1; b++)
            ec_wino_output_tile(M, p, out, t / tiles_x, t % tiles_x, b * EC_NB,
                                mbuf + (size_t)k * coutp + (size_t)b * EC_NB, (size_t)tcap * coutp,
                                bias);
    }
}

EC_INLINE void ec_wino_run(const int M, const ec_conv_params *p, const ec_tensor *in,
                           ec_tensor *out, const float *w_transformed, const float *bias,
                           float *scratch)
{
    const int ntiles = ec_blocks(out->h, M) * ec_blocks(out->w, M);
    const int tcap = ec_wino_chunk_tiles(in->c, out->c, ntiles);
    const int nchunk = ec_blocks(ntiles, tcap);
#ifdef EC_OPENMP
    const size_t per = ec_wino_chunk_floats(in->c, out->c, tcap);
    int nt = omp_get_max_threads();
    nt = nt < EC_MAX_THREADS ? nt : EC_MAX_THREADS;
    const int nblk = ec_blocks(out->c, EC_NB), npair = ec_blocks(nblk, 2);
    if (nchunk == 1 && nt > 1 && npair > 1) { /* one chunk: the threads split its blocks */
        nt = nt < npair ? nt : npair;
#pragma omp parallel num_threads(nt)
        {
            const int id = omp_get_thread_num(), n = omp_get_num_threads();
            const int b0 = 2 * (npair * id / n), b1 = 2 * (npair * (id + 1) / n);
            ec_wino_chunk(M, p, in, out, w_transformed, bias, 0, ntiles, tcap,
                          scratch + (size_t)id * per, b0, b1 < nblk ? b1 : nblk);
        }
        return;
    }
    nt = nt < nchunk ? nt : nchunk;
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int c = 0; c < nchunk; c++) {
#ifdef EC_OPENMP
        float *s = scratch + (size_t)omp_get_thread_num() * per;
#else
        float *s = scratch;
#endif
        const int t0 = c * tcap;
        const int tc = ntiles - t0 < tcap ? ntiles - t0 : tcap;
        ec_wino_chunk(M, p, in, out, w_transformed, bias, t0, tc, tcap, s, 0,
                      ec_blocks(out->c, EC_NB));
    }
}

void ec_conv3x3_winograd(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                         const float *w_transformed, const float *bias, float *scratch)
{
    ec_wino_run(4, p, in, out, w_transformed, bias, scratch);
}

void ec_conv5x5_winograd(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                         const float *w_transformed, const float *bias, float *scratch)
{
    ec_wino_run(2, p, in, out, w_transformed, bias, scratch);
}
