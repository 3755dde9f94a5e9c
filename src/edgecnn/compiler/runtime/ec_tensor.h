/* edgecnn runtime: what generated models call between kernels to move tensors, computing
 * nothing: views into the arena, zero borders, the input and output copies, concatenation
 * and flatten (float in ec_ref.c, integer in ec_int8.c).
 */
#ifndef EC_TENSOR_H
#define EC_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "ec_types.h"

/* The view of an h x w x c tensor whose buffer (border included) starts `offset` floats into
 * `base`, with a border of pad_h rows and pad_w columns. */
ec_tensor ec_view(float *base, size_t offset, int h, int w, int c, int pad_h, int pad_w);
/* Zero the border of out's buffer (pad_h rows / pad_w columns around the logical tensor). */
void ec_zero_border(ec_tensor *t);
/* Copy a contiguous HWC image into a (possibly bordered) tensor, and back. */
void ec_load_hwc(ec_tensor *t, const float *src);
void ec_store_hwc(const ec_tensor *t, float *dst);

/* Copies `in` into channels [c0, c0 + in->c) of out (concat). */
void ec_copy_channels(const ec_tensor *in, ec_tensor *out, int c0);
/* One input of an integer concatenation: its c_in channels of every pixel into channels c0..
 * of the output's c_out; copied when it shares the output's scale and zero point (same = 1),
 * else round(q * s + b) + out_zp in float32 (s, b precomputed, TFLite's
 * ConcatenationWithScaling). */
void ec_qconcat_u8(const uint8_t *x, int c_in, long pixels, uint8_t *y, int c_out, int c0, int same,
                   float s, float b, int32_t out_zp);
void ec_qconcat_i8(const int8_t *x, int c_in, long pixels, int8_t *y, int c_out, int c0, int same,
                   float s, float b, int32_t out_zp);

/* Flatten of an integer tensor (contiguous: a copy), and an integer model output handed to the
 * float API as its raw values. */
void ec_qcopy(const void *x, void *y, long bytes);
void ec_u8_to_float(const uint8_t *x, long n, float *y);
void ec_i8_to_float(const int8_t *x, long n, float *y);

#endif /* EC_TENSOR_H */
