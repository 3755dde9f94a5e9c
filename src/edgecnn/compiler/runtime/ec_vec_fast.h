/* edgecnn runtime: the vector of EC_NB floats the fast float kernels compute with (private
 * header of ec_conv_direct.c, ec_conv_depthwise.c, ec_winograd.c, ec_dense_fast.c and
 * ec_add_fast.c; they are declared in ec_conv.h, ec_dense.h and ec_eltwise.h).
 *
 * One portable source: the kernels use GCC/clang vector extensions of EC_NB floats (no
 * intrinsics), so the same code becomes AVX-512 (EC_NB=16), AVX2 (8), NEON/SSE (4) or plain
 * scalar code. Build with -DEC_NB=<n> -O3 (-ffp-contract=fast lets clang fuse a*b+c into FMA);
 * the Python weight packers (edgecnn.compiler.packing) take the same n. With -fopenmp and
 * -DEC_OPENMP the kernels split their work over OpenMP threads (Winograd uses at most
 * EC_MAX_THREADS, default 4, the number its scratch size allows for). Without GNU C (or with
 * -DEC_NO_VECTOR_EXT) the vector is a struct of EC_NB floats and the code is plain C99.
 * ARMv7: GCC computes float vectors with NEON only under -funsafe-math-optimizations (NEON
 * flushes denormals); without it the same code runs on scalar VFP. With the vector type,
 * `acc + w * s` becomes one FMA with a broadcast scalar on AVX-512 / AVX2 / NEON.
 */
#ifndef EC_VEC_FAST_H
#define EC_VEC_FAST_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ec_types.h"

#ifndef EC_NB
#define EC_NB 4
#endif

#if defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT)
#define EC_INLINE static inline __attribute__((always_inline))
typedef float ec_vf __attribute__((vector_size(EC_NB * 4)));
typedef int ec_vi __attribute__((vector_size(EC_NB * 4)));
/* Same vector, alignment 4: loads and stores of packed weights / NHWC pixels need not be
 * aligned to the vector size. */
typedef float ec_vfu __attribute__((vector_size(EC_NB * 4), aligned(4), may_alias));
#define EC_LANE(vec, i) ((vec)[i]) /* lane i of a vector (an lvalue) */

EC_INLINE ec_vf ec_vload(const float *p) { return *(const ec_vfu *)p; }
EC_INLINE void ec_vstore(float *p, ec_vf v) { *(ec_vfu *)p = v; }
EC_INLINE ec_vf ec_vzero(void) { return (ec_vf){0}; }
EC_INLINE ec_vf ec_vset1(float s) { return (ec_vf){0} + s; }
EC_INLINE ec_vf ec_vadd(ec_vf a, ec_vf b) { return a + b; }
EC_INLINE ec_vf ec_vsub(ec_vf a, ec_vf b) { return a - b; }
EC_INLINE ec_vf ec_vmul(ec_vf a, ec_vf b) { return a * b; }
EC_INLINE ec_vf ec_vscale(ec_vf a, float s) { return a * s; }
/* acc + w * s, s broadcast to every lane (one FMA with -ffp-contract=fast). */
EC_INLINE ec_vf ec_vfma_s(ec_vf acc, ec_vf w, float s) { return acc + w * s; }
EC_INLINE ec_vf ec_vfma(ec_vf acc, ec_vf a, ec_vf b) { return acc + a * b; }
/* Lane-wise select: a where m is all-ones, else b (C has no vector ?: operator). */
EC_INLINE ec_vf ec_vselect(ec_vi m, ec_vf a, ec_vf b)
{
    return (ec_vf)((m & (ec_vi)a) | (~m & (ec_vi)b));
}
EC_INLINE ec_vf ec_vmax(ec_vf a, ec_vf b) { return ec_vselect(a > b, a, b); }
EC_INLINE ec_vf ec_vmin(ec_vf a, ec_vf b) { return ec_vselect(a < b, a, b); }
/* x if x > 0 else x * s (s per lane). */
EC_INLINE ec_vf ec_vleaky(ec_vf x, ec_vf s) { return ec_vselect(x > 0, x, x * s); }
/* EC_NB IEEE half-precision floats (bits) to floats in 4 integer/float vector ops, no F16C or
 * FP16 extension needed (GCC 12 scalarizes _Float16 vector conversions): sign-extend to 32
 * bits and shift left 13, so the sign lands on bit 31 and exponent + mantissa on bits 13-27;
 * clear bits 28-30; the float read from those bits is the half's value x 2^-112 (exact for
 * normal, subnormal and zero halves; not for inf/NaN, which weights never are), so scale by
 * 2^112. */
typedef int16_t ec_vhs __attribute__((vector_size(EC_NB * 2), aligned(2), may_alias));
typedef int32_t ec_vs __attribute__((vector_size(EC_NB * 4)));
typedef uint32_t ec_vu __attribute__((vector_size(EC_NB * 4)));
EC_INLINE ec_vf ec_vload_h(const uint16_t *p)
{
    const ec_vu u = (ec_vu) __builtin_convertvector(*(const ec_vhs *)p, ec_vs); /* sign-extended */
    return (ec_vf)((u << 13) & 0x8fffe000u) * 0x1p112f;
}
#else
#define EC_INLINE static inline
typedef struct {
    float v[EC_NB];
} ec_vf;
#define EC_LANE(vec, i) ((vec).v[i])

EC_INLINE ec_vf ec_vload(const float *p)
{
    ec_vf r;
    memcpy(r.v, p, sizeof r.v);
    return r;
}
EC_INLINE void ec_vstore(float *p, ec_vf v) { memcpy(p, v.v, sizeof v.v); }
EC_INLINE ec_vf ec_vzero(void)
{
    ec_vf r;
    memset(r.v, 0, sizeof r.v);
    return r;
}
EC_INLINE ec_vf ec_vset1(float s)
{
    ec_vf r;
    for (int i = 0; i < EC_NB; i++) r.v[i] = s;
    return r;
}
#define EC_VOP2(name, expr)                                                                        \
    EC_INLINE ec_vf name(ec_vf a, ec_vf b)                                                         \
    {                                                                                              \
        ec_vf r;                                                                                   \
        for (int i = 0; i < EC_NB; i++) r.v[i] = (expr);                                           \
        return r;                                                                                  \
    }
EC_VOP2(ec_vadd, a.v[i] + b.v[i])
EC_VOP2(ec_vsub, a.v[i] - b.v[i])
EC_VOP2(ec_vmul, a.v[i] * b.v[i])
EC_VOP2(ec_vmax, a.v[i] > b.v[i] ? a.v[i] : b.v[i])
EC_VOP2(ec_vmin, a.v[i] < b.v[i] ? a.v[i] : b.v[i])
EC_VOP2(ec_vleaky, a.v[i] > 0 ? a.v[i] : a.v[i] * b.v[i])
EC_INLINE ec_vf ec_vscale(ec_vf a, float s)
{
    for (int i = 0; i < EC_NB; i++) a.v[i] *= s;
    return a;
}
EC_INLINE ec_vf ec_vfma_s(ec_vf acc, ec_vf w, float s)
{
    for (int i = 0; i < EC_NB; i++) acc.v[i] += w.v[i] * s;
    return acc;
}
EC_INLINE ec_vf ec_vfma(ec_vf acc, ec_vf a, ec_vf b)
{
    for (int i = 0; i < EC_NB; i++) acc.v[i] += a.v[i] * b.v[i];
    return acc;
}
EC_INLINE ec_vf ec_vload_h(const uint16_t *p) /* as above, one lane at a time */
{
    ec_vf r;
    for (int i = 0; i < EC_NB; i++) {
        const uint32_t u = p[i], bits = (u & 0x7fffu) << 13;
        float mag;
        memcpy(&mag, &bits, 4);
        mag *= 0x1p112f;
        uint32_t m;
        memcpy(&m, &mag, 4);
        m |= (u & 0x8000u) << 16;
        memcpy(&r.v[i], &m, 4);
    }
    return r;
}
#endif

/* Packed weights as float32 (HALF = 0) or IEEE half bits (HALF = 1): vector at element i. */
EC_INLINE ec_vf ec_wload(const int HALF, const void *w, size_t i)
{
    return HALF ? ec_vload_h((const uint16_t *)w + i) : ec_vload((const float *)w + i);
}

/* Pixels (or Winograd tiles) per register tile of 2 vectors of output channels: 2 * EC_TW
 * accumulators, 2 weight vectors and the broadcasts must fit the register file (32 zmm on
 * AVX-512, 16 ymm on AVX2, 32 q on AArch64, 16 q on ARMv7). */
#ifndef EC_TW
#if EC_NB >= 16 || defined(__aarch64__)
#define EC_TW 8
#elif defined(__arm__)
#define EC_TW 4
#else
#define EC_TW 6
#endif
#endif

/* EC_KEEP(v): v stays in a register. GCC folds a vector loaded once and used by several FMAs
 * back into each FMA as a memory operand, loading it again for every use; on tiles bound by
 * loads (depthwise) that costs a third of the speed. An empty asm statement with a vector
 * register operand (no instruction), only where the vector fits one register of the enabled
 * ISA: "v" (any of zmm/ymm/xmm 0-31) with AVX-512, "x" (ymm/xmm 0-15) for 32 bytes with AVX
 * and 16 bytes with SSE, "w" for 16 bytes on AArch64; nothing elsewhere. */
#if defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT) && (defined(__x86_64__) || defined(__i386__))
/* A vector wider than the enabled ISA's registers is split by the compiler and passed in
 * memory (GCC's -Wpsabi): a build for EC_NB lanes needs that ISA (e.g. -march=x86-64-v4). */
#if EC_NB == 16 && !defined(__AVX512F__)
#error "EC_NB=16 needs AVX-512 (-march=x86-64-v4, or -march=native on an AVX-512 CPU)"
#elif EC_NB == 8 && !defined(__AVX__)
#error "EC_NB=8 needs AVX (-march=x86-64-v3, or -march=native on an AVX2 CPU)"
#endif
#if defined(__AVX512F__)
#define EC_KEEP(v) __asm__("" : "+v"(v))
#else
#define EC_KEEP(v) __asm__("" : "+x"(v))
#endif
#elif defined(__GNUC__) && !defined(EC_NO_VECTOR_EXT) && EC_NB == 4 && defined(__aarch64__)
#define EC_KEEP(v) __asm__("" : "+w"(v))
#else
#define EC_KEEP(v) ((void)0)
#endif

/* Before a loop over the pixels of a register tile: unroll it completely, so the accumulator
 * arrays become registers (clang needs this for loops the kernels index them in). */
#if defined(EC_NO_VECTOR_EXT) /* struct vectors: nothing to keep in registers, and clang
                               * cannot fully unroll their lane loops (-Wpass-failed) */
#define EC_UNROLL
#elif defined(__clang__)
#define EC_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define EC_UNROLL _Pragma("GCC unroll 40")
#else
#define EC_UNROLL
#endif

/* The first n (<= EC_NB) lanes from p, the rest zero; store the first n lanes to p. A whole
 * vector is one plain load or store; a ragged one goes lane by lane (a variable-length memcpy
 * through a stack buffer costs a library call and, for the load, a store-forwarding stall on
 * every tile's bias). */
EC_INLINE ec_vf ec_vload_n(const float *p, int n)
{
    if (n >= EC_NB) return ec_vload(p);
    ec_vf r = ec_vzero();
    for (int i = 0; i < n; i++) EC_LANE(r, i) = p[i];
    return r;
}
EC_INLINE void ec_vstore_n(float *p, ec_vf v, int n)
{
    if (n >= EC_NB) {
        ec_vstore(p, v);
        return;
    }
    float t[EC_NB]; /* one wide store, then pieces of 8, 4, 2, 1 lanes (fixed-size copies) */
    ec_vstore(t, v);
    int i = 0;
    if (EC_NB > 8 && (n & 8)) {
        memcpy(p + i, t + i, 8 * sizeof(float));
        i += 8;
    }
    if (EC_NB > 4 && (n & 4)) {
        memcpy(p + i, t + i, 4 * sizeof(float));
        i += 4;
    }
    if (EC_NB > 2 && (n & 2)) {
        memcpy(p + i, t + i, 2 * sizeof(float));
        i += 2;
    }
    if (n & 1) p[i] = t[i];
}

/* Scalar sigmoid and tanh through expf only (as the reference kernels do). */
EC_INLINE float ec_fast_sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }
EC_INLINE float ec_fast_tanh(float v)
{
    if (v > 20.0f) return 1.0f;
    if (v < -20.0f) return -1.0f;
    return 1.0f - 2.0f / (expf(2.0f * v) + 1.0f);
}

/* Sigmoid or tanh lane by lane, out of line: libm calls, not worth inlining into every tile. */
#if defined(__GNUC__)
#define EC_OUT_OF_LINE __attribute__((noinline, unused))
#else
#define EC_OUT_OF_LINE
#endif
EC_OUT_OF_LINE static ec_vf ec_vact_libm(ec_vf v, int act)
{
    float t[EC_NB];
    ec_vstore(t, v);
    for (int i = 0; i < EC_NB; i++)
        t[i] = act == EC_ACT_SIGMOID ? ec_fast_sigmoid(t[i]) : ec_fast_tanh(t[i]);
    return ec_vload(t);
}

/* act(v) for one vector of output channels c0 .. c0+EC_NB-1; `slope` is PReLU's per-channel
 * slope array (read at c0, n valid lanes) or NULL. */
EC_INLINE ec_vf ec_vactivate(ec_vf v, int act, float alpha, const float *slope, int c0, int n)
{
    switch (act) {
    case EC_ACT_RELU: return ec_vmax(v, ec_vzero());
    case EC_ACT_LEAKY: return ec_vleaky(v, ec_vset1(alpha));
    case EC_ACT_RELU6: return ec_vmin(ec_vmax(v, ec_vzero()), ec_vset1(6.0f));
    case EC_ACT_PRELU: return slope ? ec_vleaky(v, ec_vload_n(slope + c0, n)) : v;
    case EC_ACT_SIGMOID:
    case EC_ACT_TANH: return ec_vact_libm(v, act);
    default: return v;
    }
}

/* Bias for channels c0 .. c0+n-1 as a vector (zero when bias is NULL). */
EC_INLINE ec_vf ec_vbias(const float *bias, int c0, int n)
{
    return bias ? ec_vload_n(bias + c0, n) : ec_vzero();
}

#endif /* EC_VEC_FAST_H */
