/* edgecnn runtime: the elementwise kernels: activations, per-channel scale and bias, and the
 * add of two tensors (residual), float (ec_ref.c, ec_add_fast.c) and integer (ec_int8.c,
 * ec_qadd_fast.c). Integer activations on their own are tables (ec_qlut, ec_quant.h).
 */
#ifndef EC_ELTWISE_H
#define EC_ELTWISE_H

#include <stdint.h>

#include "ec_types.h"

/* The activation functions, through expf only (no other libm function): sigmoid 1/(1+e^-x),
 * tanh 1 - 2/(e^2x + 1). `slope` is PReLU's slope for this channel. */
float ec_activate(float v, int act, float alpha, float slope);

/* Elementwise ops; `out` may be `in` (in place). slope/scale/bias: per channel, may be NULL. */
void ec_activation_ref(const ec_tensor *in, ec_tensor *out, int act, float alpha,
                       const float *slope);
void ec_scale_bias_ref(const ec_tensor *in, ec_tensor *out, const float *scale, const float *bias);

/* out = act(a + b); out may be a or b. */
void ec_add_ref(const ec_tensor *a, const ec_tensor *b, ec_tensor *out, int act, float alpha,
                const float *slope);
/* out = act(a + b) for tensors of one shape (any borders; out may be a or b): a residual add,
 * in vectors along the contiguous w * c floats of each row. act as in conv (PReLU: `slope`
 * per channel, else NULL). */
void ec_add_fast(const ec_tensor *a, const ec_tensor *b, ec_tensor *out, int act, float alpha,
                 const float *slope);

/* The integer add of n contiguous values, uint8 (_u8) or int8 (_i8). */
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

#endif /* EC_ELTWISE_H */
