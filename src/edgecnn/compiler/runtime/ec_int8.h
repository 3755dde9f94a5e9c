/* Portable 8-bit integer kernels: TensorFlow Lite's integer arithmetic in C99, bit for bit the
 * numpy reference's (edgecnn/quant.py and the q* layer kinds). Tensors are NHWC, batch 1;
 * accumulators are int32. Each kernel exists for uint8 (_u8) and int8 (_i8) activations; the
 * weights have the activations' type. Integer tensors are contiguous (no border). The compiler
 * calls them for the integer layer kinds (the q* kinds' c_call); tests/test_int8_kernels.py and
 * tests/test_int8_compile.py check them against the numpy reference bit for bit. */
#ifndef EC_INT8_H
#define EC_INT8_H

#include <stdint.h>

#include "ec_types.h"

int32_t ec_srdhm(int32_t a, int32_t b); /* SaturatingRoundingDoublingHighMul */
int32_t ec_rounding_divide_by_pot(int32_t x, int exponent);
int32_t ec_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift);

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
void ec_qconv_depthwise_u8(const ec_qconv_params *p, const uint8_t *x, const int32_t *w,
                           const int32_t *rq, uint8_t *y);
void ec_qconv_depthwise_i8(const ec_qconv_params *p, const int8_t *x, const int32_t *w,
                           const int32_t *rq, int8_t *y);

typedef struct {
    int h, w, c, oh, ow, kh, kw, sh, sw, pad_top, pad_left;
    int32_t act_min, act_max;
} ec_qpool_params;

void ec_qavgpool_u8(const ec_qpool_params *p, const uint8_t *x, uint8_t *y);
void ec_qavgpool_i8(const ec_qpool_params *p, const int8_t *x, int8_t *y);
void ec_qmaxpool_u8(const ec_qpool_params *p, const uint8_t *x, uint8_t *y);
void ec_qmaxpool_i8(const ec_qpool_params *p, const int8_t *x, int8_t *y);

typedef struct {
    int32_t zp1, zp2, out_zp, act_min, act_max;
    int32_t m1, s1, m2, s2, mo, so; /* multipliers and shifts (edgecnn.quant.add_params) */
} ec_qadd_params;

void ec_qadd_u8(const ec_qadd_params *p, const uint8_t *a, const uint8_t *b, long n, uint8_t *y);
void ec_qadd_i8(const ec_qadd_params *p, const int8_t *a, const int8_t *b, long n, int8_t *y);
/* the same on vectors (ec_qadd_fast.c, ec_qvec.h): shifts -31..30, multipliers >= 0 */
void ec_qadd_fast_u8(const ec_qadd_params *p, const uint8_t *a, const uint8_t *b, long n,
                     uint8_t *y);
void ec_qadd_fast_i8(const ec_qadd_params *p, const int8_t *a, const int8_t *b, long n, int8_t *y);

/* The model's edges: float <-> integer (TFLite's QUANTIZE and DEQUANTIZE). */
void ec_quantize_u8(const ec_tensor *x, uint8_t *y, float scale, int32_t zero_point);
void ec_quantize_i8(const ec_tensor *x, int8_t *y, float scale, int32_t zero_point);
/* the same from n contiguous floats (the caller's input, read in place) */
void ec_quantize_flat_u8(const float *x, long n, uint8_t *y, float scale, int32_t zero_point);
void ec_quantize_flat_i8(const float *x, long n, int8_t *y, float scale, int32_t zero_point);
void ec_dequantize_u8(const uint8_t *x, ec_tensor *y, float scale, int32_t zero_point);
void ec_dequantize_i8(const int8_t *x, ec_tensor *y, float scale, int32_t zero_point);

/* relu / relu6 / leaky relu on their own (edgecnn.layers.qactivation), and any elementwise
 * function of one 8-bit input: y[i] = lut[x[i]] (int8: lut[x[i] + 128]), the 256-entry table
 * computed at compile time by the reference itself. */
void ec_qlut_u8(const uint8_t *x, long n, const uint8_t *lut, uint8_t *y);
void ec_qlut_i8(const int8_t *x, long n, const int8_t *lut, int8_t *y);

/* One input of a concatenation: its c_in channels of every pixel into channels c0.. of the
 * output's c_out; copied when it shares the output's scale and zero point (same = 1), else
 * round(q * s + b) + out_zp in float32 (s, b precomputed, TFLite's ConcatenationWithScaling). */
void ec_qconcat_u8(const uint8_t *x, int c_in, long pixels, uint8_t *y, int c_out, int c0, int same,
                   float s, float b, int32_t out_zp);
void ec_qconcat_i8(const int8_t *x, int c_in, long pixels, int8_t *y, int c_out, int c0, int same,
                   float s, float b, int32_t out_zp);

/* Softmax over the last axis (depth) of rows x depth values: gemmlowp's fixed-point exp and
 * reciprocal (TFLite's reference 8-bit softmax); output scale 1/256, zero point the minimum. */
void ec_qsoftmax_u8(const uint8_t *x, long rows, int depth, int32_t input_multiplier,
                    int input_left_shift, int32_t diff_min, uint8_t *y);
void ec_qsoftmax_i8(const int8_t *x, long rows, int depth, int32_t input_multiplier,
                    int input_left_shift, int32_t diff_min, int8_t *y);

/* Flatten of an integer tensor (contiguous: a copy), and an integer model output handed to the
 * float API as its raw values. */
void ec_qcopy(const void *x, void *y, long bytes);
void ec_u8_to_float(const uint8_t *x, long n, float *y);
void ec_i8_to_float(const int8_t *x, long n, float *y);

#endif
