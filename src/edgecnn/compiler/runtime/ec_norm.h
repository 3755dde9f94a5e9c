/* edgecnn runtime: the kernels that normalize over the channels of each pixel: softmax (float,
 * ec_ref.c; integer, ec_int8.c) and local response normalization (ec_ref.c; ec_norm_fast.c).
 */
#ifndef EC_NORM_H
#define EC_NORM_H

#include <stdint.h>

#include "ec_types.h"

void ec_softmax_ref(const ec_tensor *in, ec_tensor *out); /* over channels, per pixel */
void ec_lrn_ref(const ec_tensor *in, ec_tensor *out, int size, float alpha, float beta,
                float k); /* not in place */
/* The same, vectorized over channels and parallel over rows (ec_norm_fast.c). */
void ec_lrn_fast(const ec_tensor *in, ec_tensor *out, int size, float alpha, float beta, float k);

/* Softmax over the last axis (depth) of rows x depth values: gemmlowp's fixed-point exp and
 * reciprocal (TFLite's reference 8-bit softmax); output scale 1/256, zero point the minimum. */
void ec_qsoftmax_u8(const uint8_t *x, long rows, int depth, int32_t input_multiplier,
                    int input_left_shift, int32_t diff_min, uint8_t *y);
void ec_qsoftmax_i8(const int8_t *x, long rows, int depth, int32_t input_multiplier,
                    int input_left_shift, int32_t diff_min, int8_t *y);

#endif /* EC_NORM_H */
