/* edgecnn runtime: the dense (fully connected) kernels at batch 1: the reference (ec_ref.c)
 * and the streaming one on weights packed for EC_NB (ec_dense_fast.c). Integer dense layers
 * run as 1x1 integer convolutions (ec_conv.h).
 */
#ifndef EC_DENSE_H
#define EC_DENSE_H

#include <stdint.h>

#include "ec_types.h"

/* y[units] = act(W x + bias); W is (units, in_features) row-major; x contiguous. */
void ec_dense_ref(int in_features, int units, const float *x, float *y, const float *w,
                  const float *bias, int act, float alpha);

/* y[units] = act(W x + bias) at batch 1 (any act but PRELU, which has no slopes here);
 * w_packed: [ceil(units/EC_NB)][in_features][EC_NB] (from pack_dense), so each block of EC_NB
 * outputs streams its weights once. */
void ec_dense_fast(int in_features, int units, const float *x, float *y, const float *w_packed,
                   const float *bias, int act, float alpha);
/* The same with half-precision weights (pack_dense(w, nb, "float16")). */
void ec_dense_fast_f16(int in_features, int units, const float *x, float *y,
                       const uint16_t *w_packed, const float *bias, int act, float alpha);

#endif /* EC_DENSE_H */
