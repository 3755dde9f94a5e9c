/* edgecnn runtime: the types every kernel shares.
 *
 * Activations are NHWC float32 (batch 1), channels contiguous. A tensor view points at element
 * (y=0, x=0, c=0) of the logical tensor inside its buffer; the buffer may hold a zero border of
 * pad_h rows and pad_w columns around it (the ELL padding convention), so a convolution whose
 * padding fits inside that border can read it without bounds checks.
 */
#ifndef EC_TYPES_H
#define EC_TYPES_H

#include <stddef.h>

/* Below this many floats of output an op runs on one thread: 64 Ki floats (256 KiB) is a few
 * tens of microseconds of memory-bound work, the order of an OpenMP fork and join (a few
 * microseconds per thread), so smaller ops would spend as long starting threads as working. */
#define EC_PARALLEL_MIN_FLOATS 65536

/* Pointer to element (y, x, 0) of a tensor view (y, x may reach into its border). */
#define EC_AT(t, y, x) ((t)->data + (ptrdiff_t)(y) * (t)->row_stride + (ptrdiff_t)(x) * (t)->c)

typedef struct {
    float *data;      /* element (y=0, x=0, c=0) of the logical tensor, inside its buffer */
    int h, w, c;      /* logical size */
    int row_stride;   /* floats from (y, x, c) to (y+1, x, c): padded width * c */
    int pad_h, pad_w; /* zero border present around the logical tensor in the buffer (>= 0) */
} ec_tensor;          /* pixel stride is always c */

enum {
    EC_ACT_NONE,
    EC_ACT_RELU,
    EC_ACT_LEAKY,
    EC_ACT_RELU6,
    EC_ACT_SIGMOID,
    EC_ACT_TANH,
    EC_ACT_PRELU
};

typedef struct {
    int kh, kw, sh, sw, dh, dw;
    int pad_t, pad_l, pad_b, pad_r;
    int groups;
    int act;
    float act_alpha;        /* leaky slope */
    const float *act_slope; /* prelu: one slope per output channel, else NULL */
} ec_conv_params;

/* `EC_OMP_FOR` before a for loop splits it over OpenMP threads when the build defines EC_OPENMP
 * (and passes -fopenmp); otherwise it expands to nothing, so -Wall sees no unknown pragma. */
/* `EC_OMP_FOR_IF(cond)`: the same, only when `cond` holds (small ops stay on one thread: a
 * parallel region costs microseconds). */
#define EC_PRAGMA(x) _Pragma(#x)
#ifdef EC_OPENMP
#define EC_OMP_FOR _Pragma("omp parallel for schedule(static)")
#define EC_OMP_FOR_IF(cond) EC_PRAGMA(omp parallel for schedule(static) if(cond))
#else
#define EC_OMP_FOR
#define EC_OMP_FOR_IF(cond)
#endif

#endif /* EC_TYPES_H */
