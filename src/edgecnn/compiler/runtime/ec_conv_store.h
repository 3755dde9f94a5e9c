/* edgecnn runtime: the epilogue the register-tiled convolutions share (ec_conv_direct.c,
 * ec_conv_depthwise.c): bias, activation and store of a tile of output pixels. */
#ifndef EC_CONV_STORE_H
#define EC_CONV_STORE_H

#include "ec_conv.h"
#include "ec_vec_fast.h"

/* out[op[i] + c] = act(r[i] + bias[c..]) for TW pixels, the first n = min(EC_NB, cout - c)
 * channels of the vector (bias + activation epilogue of every tile). */
EC_INLINE void ec_store_pixels(const int TW, const ec_conv_params *p, const ec_vf *r,
                               float *const *op, int c, int cout, const float *bias)
{
    const int n = cout - c < EC_NB ? cout - c : EC_NB;
    const ec_vf b = ec_vbias(bias, c, n);
    const int act = p->act;
    if (act == EC_ACT_RELU || act == EC_ACT_RELU6 || act == EC_ACT_NONE) {
        /* the common activations decided once per tile, not per vector (whose switch keeps
         * GCC from holding the tile in registers) */
        const ec_vf hi = ec_vset1(act == EC_ACT_RELU6 ? 6.0f : INFINITY);
        EC_UNROLL
        for (int i = 0; i < TW; i++) {
            ec_vf v = ec_vadd(r[i], b);
            if (act != EC_ACT_NONE) v = ec_vmin(ec_vmax(v, ec_vzero()), hi);
            if (n == EC_NB)
                ec_vstore(op[i] + c, v);
            else
                ec_vstore_n(op[i] + c, v, n);
        }
        return;
    }
    EC_UNROLL
    for (int i = 0; i < TW; i++) {
        ec_vf v = ec_vactivate(ec_vadd(r[i], b), p->act, p->act_alpha, p->act_slope, c, n);
        if (n == EC_NB)
            ec_vstore(op[i] + c, v);
        else
            ec_vstore_n(op[i] + c, v, n);
    }
}

#endif /* EC_CONV_STORE_H */
