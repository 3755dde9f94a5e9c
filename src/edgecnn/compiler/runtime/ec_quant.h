/* edgecnn runtime: quantization: TensorFlow Lite's fixed-point arithmetic that every integer
 * kernel shares, the model's float <-> integer edges (quantize, dequantize), fake quantization,
 * and elementwise functions of one 8-bit input as lookup tables. Bit for bit the numpy
 * reference's (edgecnn/quant.py); defined in ec_int8.c, fake quantization in ec_ref.c.
 */
#ifndef EC_QUANT_H
#define EC_QUANT_H

#include <stdint.h>

#include "ec_types.h"

int32_t ec_srdhm(int32_t a, int32_t b); /* SaturatingRoundingDoublingHighMul */
int32_t ec_rounding_divide_by_pot(int32_t x, int exponent);
int32_t ec_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift);

/* The model's edges: float <-> integer (TFLite's QUANTIZE and DEQUANTIZE). */
void ec_quantize_u8(const ec_tensor *x, uint8_t *y, float scale, int32_t zero_point);
void ec_quantize_i8(const ec_tensor *x, int8_t *y, float scale, int32_t zero_point);
/* the same from n contiguous floats (the caller's input, read in place) */
void ec_quantize_flat_u8(const float *x, long n, uint8_t *y, float scale, int32_t zero_point);
void ec_quantize_flat_i8(const float *x, long n, int8_t *y, float scale, int32_t zero_point);
/* the same on vectors (ec_qelt_fast.c) */
void ec_quantize_flat_fast_u8(const float *x, long n, uint8_t *y, float scale, int32_t zero_point);
void ec_quantize_flat_fast_i8(const float *x, long n, int8_t *y, float scale, int32_t zero_point);
void ec_dequantize_u8(const uint8_t *x, ec_tensor *y, float scale, int32_t zero_point);
void ec_dequantize_i8(const int8_t *x, ec_tensor *y, float scale, int32_t zero_point);

/* Fake quantization: (clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale, rounding half
 * away from zero, x / scale in double (as the reference). out may be in. */
void ec_fake_quant_ref(const ec_tensor *in, ec_tensor *out, double scale, int zero_point, int qmin,
                       int qmax);

/* relu / relu6 / leaky relu on their own (edgecnn.layers.qactivation), and any elementwise
 * function of one 8-bit input: y[i] = lut[x[i]] (int8: lut[x[i] + 128]), the 256-entry table
 * computed at compile time by the reference itself. */
void ec_qlut_u8(const uint8_t *x, long n, const uint8_t *lut, uint8_t *y);
void ec_qlut_i8(const int8_t *x, long n, const int8_t *lut, int8_t *y);
/* the same, a register of bytes at a time with AVX-512 VBMI or AArch64 NEON, parallel over
 * blocks (ec_qelt_fast.c) */
void ec_qlut_fast_u8(const uint8_t *x, long n, const uint8_t *lut, uint8_t *y);
void ec_qlut_fast_i8(const int8_t *x, long n, const int8_t *lut, int8_t *y);

#endif /* EC_QUANT_H */
