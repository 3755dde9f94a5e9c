/* edgecnn runtime: fast kernels (register-blocked direct convolution, Winograd F(4x4, 3x3),
 * depthwise convolution, streaming dense layer).
 *
 * One portable source: the kernels use GCC/clang vector extensions of EC_NB floats (no
 * intrinsics), so the same code becomes AVX-512 (EC_NB=16), AVX2 (8), NEON/SSE (4) or plain
 * scalar code. Build with -DEC_NB=<n> -O3 (-ffp-contract=fast lets clang fuse a*b+c into FMA);
 * the Python weight packers (edgecnn.compiler.packing) take the same n. With -fopenmp and
 * -DEC_OPENMP the kernels split their work over OpenMP threads (Winograd uses at most
 * EC_MAX_THREADS, default 4, the number its scratch size allows for). Without GNU C (or with
 * -DEC_NO_VECTOR_EXT) the vector is a struct of EC_NB floats and the code is plain C99.
 * ARMv7: GCC computes float vectors with NEON only under -funsafe-math-optimizations (NEON
 * flushes denormals); without it the same code runs on scalar VFP.
 *
 * All kernels read NHWC views (ec_types.h) and write only the logical interior of `out`.
 */
#ifndef EC_FAST_H
#define EC_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "ec_types.h"

#ifndef EC_NB
#define EC_NB 4
#endif

/* Direct convolution, groups == 1, any kernel / stride / dilation.
 * Requires in->pad_h >= max(pad_t, pad_b) and in->pad_w >= max(pad_l, pad_r): the kernel reads
 * the zero border instead of checking bounds. w_packed: [ceil(Cout/EC_NB)][kh][kw][Cin][EC_NB]
 * (zero past Cout, from pack_direct); bias may be NULL. out = act(conv + bias). */
void ec_conv2d_direct(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                      const float *w_packed, const float *bias);

/* The same with weights stored in IEEE half precision (the bits, same layout; from
 * pack_direct(w, nb, "float16")), computed in float32: half the weight bytes (the seed model's
 * 4x4x512 -> 1024 layer reads 18.9 MB in float32) and a smaller model file. Widening costs a
 * few vector ops per weight vector: on a Zen 5 core it is 1.3-1.4x slower than float32 even
 * with cold caches (benchmarks/kernels.py --cold); meant for boards short of memory
 * bandwidth, where it is still to be measured. */
void ec_conv2d_direct_f16(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                          const uint16_t *w_packed, const float *bias);

/* Depthwise convolution: groups == Cin, Cout = Cin * multiplier; output channel o reads input
 * channel o / multiplier. Same border requirement. w_packed: [ceil(Cout/EC_NB)][kh][kw][EC_NB]
 * (from pack_depthwise). With multiplier 1 a ragged last block of channels may read (never
 * write) up to EC_NB floats past a pixel's channels inside the input's buffer (its border or
 * the next pixel), never past the buffer's end. */
void ec_conv2d_depthwise(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                         const float *w_packed, const float *bias);

/* out = act(a + b) for tensors of one shape (any borders; out may be a or b): a residual add,
 * in vectors along the contiguous w * c floats of each row. act as in conv (PReLU: `slope`
 * per channel, else NULL). */
void ec_add_fast(const ec_tensor *a, const ec_tensor *b, ec_tensor *out, int act, float alpha,
                 const float *slope);

/* Winograd F(4x4, 3x3): 3x3, stride 1, dilation 1, groups 1; any padding within the input's
 * border. w_transformed: [36][ceil(Cout/EC_NB)][Cin][EC_NB] = G g G^T (from pack_winograd).
 * scratch: ec_winograd_scratch_floats(...) floats from the caller. */
size_t ec_winograd_scratch_floats(const ec_conv_params *p, const ec_tensor *in,
                                  const ec_tensor *out);
void ec_conv3x3_winograd(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                         const float *w_transformed, const float *bias, float *scratch);

/* y[units] = act(W x + bias) at batch 1 (any act but PRELU, which has no slopes here);
 * w_packed: [ceil(units/EC_NB)][in_features][EC_NB] (from pack_dense), so each block of EC_NB
 * outputs streams its weights once. */
void ec_dense_fast(int in_features, int units, const float *x, float *y, const float *w_packed,
                   const float *bias, int act, float alpha);
/* The same with half-precision weights (pack_dense(w, nb, "float16")). */
void ec_dense_fast_f16(int in_features, int units, const float *x, float *y,
                       const uint16_t *w_packed, const float *bias, int act, float alpha);

#endif /* EC_FAST_H */
