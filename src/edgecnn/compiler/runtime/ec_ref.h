/* edgecnn runtime: reference kernels (plain C99 loops, bounds-checked, the oracle in C) and the
 * small support functions generated models call between kernels.
 *
 * Every kernel reads and writes ec_tensor views (NHWC, batch 1) and touches only the logical
 * interior of its output: borders are the caller's business (see ec_zero_border).
 */
#ifndef EC_REF_H
#define EC_REF_H

#include "ec_types.h"

/* The activation functions, through expf only (no other libm function): sigmoid 1/(1+e^-x),
 * tanh 1 - 2/(e^2x + 1). `slope` is PReLU's slope for this channel. */
float ec_activate(float v, int act, float alpha, float slope);

/* out = act(conv(in, w) + bias); weights OIHW (C_out, C_in/groups, kh, kw); bias may be NULL. */
void ec_conv2d_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                   const float *w_oihw, const float *bias);

/* XNOR convolution: out[o] = act(scale[o] * sum sign(w) * sign(in) + bias[o]), padded cells
 * count 0. `w_sign_oihw` holds +1/-1 (binarized by the compiler); bias may be NULL. */
void ec_binary_conv2d_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                          const float *w_sign_oihw, const float *scale, const float *bias);
/* The same on bit-packed signs (ec_binary.c), kh * kw <= 121: w_bits [C_out][kh][kw]
 * [ceil(C_in/64)] 64-bit words (2 floats each); scratch: ec_binary_scratch_floats(in) floats. */
size_t ec_binary_scratch_floats(const ec_tensor *in);
void ec_binary_conv2d_bits(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                           const float *w_bits, const float *scale, const float *bias,
                           float *scratch);

/* Pooling over p->kh x p->kw windows with stride and padding from p (groups, act unused).
 * Windows are clipped to the input (ceil mode's partial windows included). Max ignores padded
 * cells; average divides by the real cells, or by the cells inside the declared padding when
 * count_include_pad is set. */
void ec_maxpool_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out);
void ec_avgpool_ref(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                    int count_include_pad);
void ec_global_avgpool_ref(const ec_tensor *in, ec_tensor *out);
/* The same pooling, vectorizable and threaded (ec_pool.c); the compiler's default. */
void ec_maxpool(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out);
void ec_avgpool(const ec_conv_params *p, const ec_tensor *in, ec_tensor *out,
                int count_include_pad);

/* y[units] = act(W x + bias); W is (units, in_features) row-major; x contiguous. */
void ec_dense_ref(int in_features, int units, const float *x, float *y, const float *w,
                  const float *bias, int act, float alpha);

/* Elementwise ops; `out` may be `in` (in place). slope/scale/bias: per channel, may be NULL. */
void ec_activation_ref(const ec_tensor *in, ec_tensor *out, int act, float alpha,
                       const float *slope);
void ec_scale_bias_ref(const ec_tensor *in, ec_tensor *out, const float *scale, const float *bias);
void ec_softmax_ref(const ec_tensor *in, ec_tensor *out); /* over channels, per pixel */
void ec_lrn_ref(const ec_tensor *in, ec_tensor *out, int size, float alpha, float beta,
                float k); /* not in place */
/* Fake quantization: (clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale, rounding half
 * away from zero, x / scale in double (as the reference). out may be in. */
void ec_fake_quant_ref(const ec_tensor *in, ec_tensor *out, double scale, int zero_point, int qmin,
                       int qmax);
/* out = act(a + b); out may be a or b. */
void ec_add_ref(const ec_tensor *a, const ec_tensor *b, ec_tensor *out, int act, float alpha,
                const float *slope);
/* Copies `in` into channels [c0, c0 + in->c) of out (concat). */
void ec_copy_channels(const ec_tensor *in, ec_tensor *out, int c0);

/* ---- support for generated code -------------------------------------------------------- */
/* The view of an h x w x c tensor whose buffer (border included) starts `offset` floats into
 * `base`, with a border of pad_h rows and pad_w columns. */
ec_tensor ec_view(float *base, size_t offset, int h, int w, int c, int pad_h, int pad_w);
/* Zero the border of out's buffer (pad_h rows / pad_w columns around the logical tensor). */
void ec_zero_border(ec_tensor *t);
/* Copy a contiguous HWC image into a (possibly bordered) tensor, and back. */
void ec_load_hwc(ec_tensor *t, const float *src);
void ec_store_hwc(const ec_tensor *t, float *dst);

#endif /* EC_REF_H */
