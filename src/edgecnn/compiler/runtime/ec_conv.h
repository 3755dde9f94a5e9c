/* edgecnn runtime: every convolution kernel, float and integer.
 *
 *  - ec_conv2d_ref: the reference (ec_ref.c), any groups, the oracle the others are tested on;
 *  - ec_binary_conv2d_ref / ec_binary_conv2d_bits: XNOR convolution (ec_ref.c, ec_binary.c);
 *  - ec_conv2d_direct(_f16), ec_conv2d_depthwise, ec_conv3x3_winograd: the fast float kernels
 *    (ec_conv_direct.c, ec_conv_depthwise.c, ec_winograd.c), on weights packed for EC_NB (see
 *    ec_vec_fast.h for how they build);
 *  - ec_qconv2d: the portable integer convolution (ec_int8.c, TFLite's arithmetic);
 *  - ec_qconv_pointwise / _direct / _depthwise: the fast integer ones (ec_qconv_direct.c,
 *    ec_qconv_depthwise.c), and their AVX-512 VNNI (ec_qconv_vnni.c) and AArch64 dot product
 *    (ec_qconv_sdot.c) forms.
 *
 * Float kernels read and write NHWC ec_tensor views (batch 1) and touch only the logical
 * interior of `out`: borders are the caller's business (see ec_zero_border). Integer tensors
 * are contiguous (no border).
 */
#ifndef EC_CONV_H
#define EC_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "ec_types.h"

/* ---- float ---------------------------------------------------------------------------- */

/* out = act(conv(in, w) + bias); weights OIHW (C_out, C_in/groups, kh, kw); bias may be NULL. */
void ec_conv2d_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                   const float *w_oihw, const float *bias);

/* XNOR convolution: out[o] = act(scale[o] * sum sign(w) * sign(in) + bias[o]), padded cells
 * count 0. `w_sign_oihw` holds +1/-1 (binarized by the compiler); bias may be NULL. */
void ec_binary_conv2d_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                          const float *w_sign_oihw, const float *scale, const float *bias);
/* The same on bit-packed signs (ec_binary.c), kh * kw <= 121: w_bits [C_out][kh][kw]
 * [ceil(C_in/64)] 64-bit words (2 floats each); scratch: ec_binary_scratch_floats(in) floats. */
size_t ec_binary_scratch_floats(const ec_tensor *in);
void ec_binary_conv2d_bits(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                           const float *w_bits, const float *scale, const float *bias,
                           float *scratch);

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

/* Winograd F(4x4, 3x3) and F(2x2, 5x5) (ec_winograd.c): 3x3 or 5x5, stride 1, dilation 1,
 * groups 1; any padding within the input's border. w_transformed: [36][ceil(Cout/EC_NB)][Cin]
 * [EC_NB] = G g G^T (from pack_winograd). scratch: ec_winograd_scratch_floats(...) floats from
 * the caller (p->kh tells the two apart). */
size_t ec_winograd_scratch_floats(const ec_conv_params *p, const ec_tensor *in,
                                  const ec_tensor *out);
void ec_conv3x3_winograd(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                         const float *w_transformed, const float *bias, float *scratch);
void ec_conv5x5_winograd(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                         const float *w_transformed, const float *bias, float *scratch);

/* ---- integer (uint8 _u8 / int8 _i8 activations, weights of the same type, int32 sums) --- */

typedef struct {
    int h, w, c;   /* input */
    int oh, ow, o; /* output */
    int kh, kw, sh, sw, dh, dw;
    int pad_top, pad_left; /* the rest of the padding is implied by the output size */
    int groups;
    int per_channel; /* multiplier/shift per output channel, else one */
    int32_t in_zp, w_zp, out_zp, act_min, act_max;
} ec_qconv_params;

/* y[oh][ow][o] from x[h][w][c], weights [o][c / groups][kh][kw], bias [o] */
void ec_qconv2d_u8(const ec_qconv_params *p, const uint8_t *x, const uint8_t *wt,
                   const int32_t *bias, const int32_t *mult, const int32_t *shift, uint8_t *y);
void ec_qconv2d_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *wt, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift, int8_t *y);

/* The fast convolutions (ec_qconv_direct.c, ec_qconv_depthwise.c; ec_qvec.h): the same
 * parameters (per_channel and w_zp unused), weights packed for EC_NB with the weight zero point
 * subtracted (packing.pack_qconv: int16, pack_qdepthwise: int32), and rq the packed
 * requantization (packing.pack_qrequant: folded bias, multiplier, left and right shifts). The
 * groups-1 kernels take ec_qconv_scratch_bytes(p) bytes of scratch (64-byte aligned; 0 below
 * EC_NB = 8, where they take NULL). */
#define EC_QDW_MAX_TAPS 49 /* depthwise kernels up to 7x7 */
long ec_qconv_scratch_bytes(const ec_qconv_params *p);
void ec_qconv_pointwise_u8(const ec_qconv_params *p, const uint8_t *x, const int16_t *w,
                           const int32_t *rq, void *scratch, uint8_t *y);
void ec_qconv_pointwise_i8(const ec_qconv_params *p, const int8_t *x, const int16_t *w,
                           const int32_t *rq, void *scratch, int8_t *y);
void ec_qconv_direct_u8(const ec_qconv_params *p, const uint8_t *x, const int16_t *w,
                        const int32_t *rq, void *scratch, uint8_t *y);
void ec_qconv_direct_i8(const ec_qconv_params *p, const int8_t *x, const int16_t *w,
                        const int32_t *rq, void *scratch, int8_t *y);
/* The pointwise convolution with AVX-512 VNNI (ec_qconv_vnni.c, built with EC_NB = 16 and
 * -mavx512vnni): int8 weights (packing.pack_qconv_vnni), d the weight offset of their packing,
 * ec_qconv_vnni_scratch_bytes(p) bytes of scratch (64-byte aligned). */
long ec_qconv_vnni_scratch_bytes(const ec_qconv_params *p);
void ec_qconv_pointwise_vnni_u8(const ec_qconv_params *p, const uint8_t *x, const int8_t *w,
                                const int32_t *rq, int32_t d, void *scratch, uint8_t *y);
void ec_qconv_pointwise_vnni_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *w,
                                const int32_t *rq, int32_t d, void *scratch, int8_t *y);
/* ... and the direct one (any kernel and stride, dilation 1 along x), the same arguments */
long ec_qconv_vnni_direct_scratch_bytes(const ec_qconv_params *p);
void ec_qconv_direct_vnni_u8(const ec_qconv_params *p, const uint8_t *x, const int8_t *w,
                             const int32_t *rq, int32_t d, void *scratch, uint8_t *y);
void ec_qconv_direct_vnni_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *w,
                             const int32_t *rq, int32_t d, void *scratch, int8_t *y);
/* The pointwise convolution with the AArch64 dot product (ec_qconv_sdot.c, built with EC_NB = 4
 * where __ARM_FEATURE_DOTPROD is defined, e.g. -mcpu=cortex-a76): int8 weights
 * (packing.pack_qconv_sdot), d the weight offset of their packing,
 * ec_qconv_sdot_scratch_bytes(p) bytes of scratch (64-byte aligned). */
long ec_qconv_sdot_scratch_bytes(const ec_qconv_params *p);
void ec_qconv_pointwise_sdot_u8(const ec_qconv_params *p, const uint8_t *x, const int8_t *w,
                                const int32_t *rq, int32_t d, void *scratch, uint8_t *y);
void ec_qconv_pointwise_sdot_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *w,
                                const int32_t *rq, int32_t d, void *scratch, int8_t *y);
/* ... and the direct one (any kernel and stride, dilation 1 along x), the same arguments */
long ec_qconv_sdot_direct_scratch_bytes(const ec_qconv_params *p);
void ec_qconv_direct_sdot_u8(const ec_qconv_params *p, const uint8_t *x, const int8_t *w,
                             const int32_t *rq, int32_t d, void *scratch, uint8_t *y);
void ec_qconv_direct_sdot_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *w,
                             const int32_t *rq, int32_t d, void *scratch, int8_t *y);
void ec_qconv_depthwise_u8(const ec_qconv_params *p, const uint8_t *x, const int32_t *w,
                           const int32_t *rq, uint8_t *y);
void ec_qconv_depthwise_i8(const ec_qconv_params *p, const int8_t *x, const int32_t *w,
                           const int32_t *rq, int8_t *y);

#endif /* EC_CONV_H */
