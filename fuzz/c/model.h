/* A stand-in for a compiled model's model.h, enough to build the predict program's input
 * reader into the fuzz harness (predict_input_fuzz.c); the model is never run. */
#ifndef EC_FUZZ_MODEL_H
#define EC_FUZZ_MODEL_H
#define EC_MODEL_PIXEL_RANGE {0.0f, 1.0f}
#define EC_MODEL_MEAN {0.5f, 0.5f, 0.5f}
#define EC_MODEL_STD {0.25f, 0.25f, 0.25f}
#define EC_MODEL_BGR 1
static int ec_model_predict(const float *x, float *y) { (void)x; (void)y; return 0; }
static void ec_model_set_threads(int n) { (void)n; }
static void ec_model_input_shape(int *h, int *w, int *c) { *h = 5; *w = 4; *c = 3; }
static int ec_model_output_size(void) { return 10; }
#endif
