/* Portable 8-bit integer kernels: TensorFlow Lite's integer arithmetic in C99, bit for bit the
 * numpy reference's (edgecnn/quant.py and the q* layer kinds). Tensors are NHWC, batch 1;
 * accumulators are int32. Each kernel exists for uint8 (_u8) and int8 (_i8) activations; the
 * weights have the activations' type. Not yet called by generated code (the compiler refuses
 * integer graphs); tests/test_int8_kernels.py checks them against the reference. */
#ifndef EC_INT8_H
#define EC_INT8_H

#include <stdint.h>

int32_t ec_srdhm(int32_t a, int32_t b);                 /* SaturatingRoundingDoublingHighMul */
int32_t ec_rounding_divide_by_pot(int32_t x, int exponent);
int32_t ec_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift);

typedef struct {
    int h, w, c;             /* input */
    int oh, ow, o;           /* output */
    int kh, kw, sh, sw, dh, dw;
    int pad_top, pad_left;   /* the rest of the padding is implied by the output size */
    int groups;
    int per_channel;         /* multiplier/shift per output channel, else one */
    int32_t in_zp, w_zp, out_zp, act_min, act_max;
} ec_qconv_params;

/* y[oh][ow][o] from x[h][w][c], weights [o][c / groups][kh][kw], bias [o] */
void ec_qconv2d_u8(const ec_qconv_params *p, const uint8_t *x, const uint8_t *wt,
                   const int32_t *bias, const int32_t *mult, const int32_t *shift, uint8_t *y);
void ec_qconv2d_i8(const ec_qconv_params *p, const int8_t *x, const int8_t *wt,
                   const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *y);

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
    int32_t m1, s1, m2, s2, mo, so;  /* multipliers and shifts (edgecnn.quant.add_params) */
} ec_qadd_params;

void ec_qadd_u8(const ec_qadd_params *p, const uint8_t *a, const uint8_t *b, long n, uint8_t *y);
void ec_qadd_i8(const ec_qadd_params *p, const int8_t *a, const int8_t *b, long n, int8_t *y);

#endif
