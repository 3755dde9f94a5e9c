/* edgecnn runtime: every pooling kernel: the references (ec_ref.c), the vectorizable and
 * threaded float pooling the compiler calls by default (ec_pool.c), and the integer pooling
 * (ec_int8.c, TFLite's arithmetic).
 */
#ifndef EC_POOL_H
#define EC_POOL_H

#include <stdint.h>

#include "ec_types.h"

/* The one window geometry of every pooling kernel: the kh x kw window of output (oy, ox), with
 * stride (sh, sw) and top/left padding (pt, pl), clipped to an h x w input: rows [*y0, *y1),
 * columns [*x0, *x1) (empty when *y1 <= *y0 or *x1 <= *x0). */
static inline void ec_pool_window(int oy, int ox, int sh, int sw, int pt, int pl, int kh, int kw,
                                  int h, int w, int *y0, int *y1, int *x0, int *x1)
{
    const int a = oy * sh - pt, b = ox * sw - pl;
    *y0 = a < 0 ? 0 : a;
    *y1 = a + kh > h ? h : a + kh;
    *x0 = b < 0 ? 0 : b;
    *x1 = b + kw > w ? w : b + kw;
}

/* Pooling over p->kh x p->kw windows with stride and padding from p (groups, act unused).
 * Windows are clipped to the input (ceil mode's partial windows included). Max ignores padded
 * cells; average divides by the real cells, or by the cells inside the declared padding when
 * count_include_pad is set. Only the logical interior of `out` is written. */
void ec_maxpool_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out);
void ec_avgpool_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                    int count_include_pad);
void ec_global_avgpool_ref(const ec_tensor *in, ec_tensor *out);
/* The same pooling, vectorizable and threaded (ec_pool.c); the compiler's default. */
void ec_maxpool(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out);
void ec_avgpool(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                int count_include_pad);

/* Integer pooling on contiguous NHWC tensors, uint8 (_u8) or int8 (_i8). */
typedef struct {
    int h, w, c, oh, ow, kh, kw, sh, sw, pad_top, pad_left;
    int32_t act_min, act_max;
} ec_qpool_params;

void ec_qavgpool_u8(const ec_qpool_params *p, const uint8_t *x, uint8_t *y);
void ec_qavgpool_i8(const ec_qpool_params *p, const int8_t *x, int8_t *y);
void ec_qmaxpool_u8(const ec_qpool_params *p, const uint8_t *x, uint8_t *y);
void ec_qmaxpool_i8(const ec_qpool_params *p, const int8_t *x, int8_t *y);
/* the same max, 8-bit lanes of whole registers, parallel over rows (ec_qelt_fast.c) */
void ec_qmaxpool_fast_u8(const ec_qpool_params *p, const uint8_t *x, uint8_t *y);
void ec_qmaxpool_fast_i8(const ec_qpool_params *p, const int8_t *x, int8_t *y);

#endif /* EC_POOL_H */
