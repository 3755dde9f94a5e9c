/* edgecnn: the `predict` program built beside a compiled model (copied as predict.c).
 *
 *   predict [-w weights.bin] [-t threads] [-n repeats] [-o out.f32] IMAGE
 *
 * IMAGE is a binary PPM (P6, maxval 255) of exactly the model's input size, or raw HWC input
 * of that size: float32 (already preprocessed, h*w*c*4 bytes) or uint8 pixels (h*w*c bytes,
 * RGB). PPM and uint8 pixels get the model's preprocessing (pixel range, channel order, mean,
 * std); nothing is resized. Prints the top-5 output indices and values; -o writes all outputs
 * as float32; -n runs the model n more times and prints the mean time per frame.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EC_MODEL_ALIASES /* ec_model_predict etc. name this model's functions */
#include "model.h"

static int fail(const char *msg, const char *arg)
{
    fprintf(stderr, "predict: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return 2;
}

static unsigned char *read_file(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (*size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = (unsigned char *)malloc((size_t)*size + 1);
    if (buf && fread(buf, 1, (size_t)*size, f) != (size_t)*size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* Skip whitespace and # comments of a PPM header; parse one decimal number. */
static long ppm_number(const unsigned char *b, long n, long *pos)
{
    long v = -1;
    while (*pos < n) {
        if (b[*pos] == '#') {
            while (*pos < n && b[*pos] != '\n') (*pos)++;
        } else if (b[*pos] == ' ' || b[*pos] == '\t' || b[*pos] == '\n' || b[*pos] == '\r') {
            (*pos)++;
        } else {
            break;
        }
    }
    while (*pos < n && b[*pos] >= '0' && b[*pos] <= '9') {
        v = (v < 0 ? 0 : v * 10) + (b[*pos] - '0');
        if (v > 1000000) return -1;
        (*pos)++;
    }
    return v;
}

/* uint8 RGB pixels -> the model's input: range, channel order, (x - mean) / std. */
static void preprocess(const unsigned char *rgb, float *x, int pixels, int c)
{
    const float range[2] = EC_MODEL_PIXEL_RANGE, mean[3] = EC_MODEL_MEAN, std[3] = EC_MODEL_STD;
    int i, k;
    for (i = 0; i < pixels; i++)
        for (k = 0; k < c; k++) {
            int src = (EC_MODEL_BGR && c == 3) ? 2 - k : k;
            float v = rgb[i * c + src] / 255.0f * (range[1] - range[0]) + range[0];
            x[i * c + k] = (v - mean[k < 3 ? k : 0]) / std[k < 3 ? k : 0];
        }
}

/* The n bytes b of file `path` (a PPM or raw input, see the top) -> x (h*w*c floats).
 * Returns 0, or 2 after printing what is wrong. b needs no terminator; nothing past b[n-1]
 * is read (the fuzz harness in fuzz/ checks this under AddressSanitizer). */
static int parse_input(const unsigned char *b, long n, const char *path, float *x, int h, int w,
                       int c)
{
    long pos = 2;
    const long count = (long)h * w * c;
    int rc = 0;
    if (n >= 2 && b[0] == 'P' && b[1] == '6') {
        long pw = ppm_number(b, n, &pos), ph = ppm_number(b, n, &pos);
        long maxval = ppm_number(b, n, &pos);
        pos++; /* the single whitespace byte before the pixels */
        if (pw < 1 || ph < 1 || maxval != 255) {
            rc = fail("not a binary PPM with maxval 255", path);
        } else if (pw != w || ph != h || c != 3) {
            fprintf(stderr,
                    "predict: %s is %ldx%ld, the model takes %dx%dx%d: resize it "
                    "first (this program does not resize)\n",
                    path, pw, ph, w, h, c);
            rc = 2;
        } else if (n - pos < count) {
            rc = fail("truncated PPM", path);
        } else {
            preprocess(b + pos, x, h * w, c);
        }
    } else if (n == count * 4) {
        memcpy(x, b, (size_t)count * 4); /* float32, already preprocessed */
    } else if (n == count) {
        preprocess(b, x, h * w, c);
    } else {
        fprintf(stderr,
                "predict: %s has %ld bytes: not a P6 PPM, nor %ld float32 or %ld uint8 "
                "values of the %dx%dx%d input\n",
                path, n, count, count, h, w, c);
        rc = 2;
    }
    return rc;
}

static int load_input(const char *path, float *x, int h, int w, int c)
{
    long n;
    unsigned char *b = read_file(path, &n);
    int rc;
    if (!b) return fail("cannot read", path);
    rc = parse_input(b, n, path, x, h, w, c);
    free(b);
    return rc;
}

/* The 5 largest outputs, best first: "index value" lines. */
static void print_top5(const float *y, int n)
{
    int top[5], k, i, j, m = n < 5 ? n : 5;
    for (k = 0; k < m; k++) {
        int best = -1;
        for (i = 0; i < n; i++) {
            int taken = 0;
            for (j = 0; j < k; j++) taken |= top[j] == i;
            if (!taken && (best < 0 || y[i] > y[best])) best = i;
        }
        top[k] = best;
        printf("%d %.6f\n", best, y[best]);
    }
}

/* One inference: the model's static arena, or the one this program allocated. */
static int run(const float *x, float *y, void *arena)
{
#ifdef EC_MODEL_CALLER_ARENA
    return ec_model_predict_with_arena(x, y, arena);
#else
    (void)arena;
    return ec_model_predict(x, y);
#endif
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    const char *weights = "weights.bin", *out_path = NULL, *image = NULL;
    int threads = 0, repeats = 0, h, w, c, n, i, k, rc = 0;
    float *x, *y;
    void *arena = NULL;
    for (i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "-w") == 0)
            weights = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "-t") == 0)
            threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-n") == 0)
            repeats = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-o") == 0)
            out_path = argv[++i];
        else if (argv[i][0] == '-')
            return fail("usage: predict [-w weights.bin] [-t threads] "
                        "[-n repeats] [-o out.f32] IMAGE",
                        NULL);
        else
            image = argv[i];
    }
    if (!image)
        return fail("usage: predict [-w weights.bin] [-t threads] [-n repeats] "
                    "[-o out.f32] IMAGE",
                    NULL);
    (void)weights;
#ifdef EC_MODEL_WEIGHTS_FILE
    if (ec_model_load_weights(weights) != 0) return fail("cannot load the weights file", weights);
#endif
    if (threads > 0) ec_model_set_threads(threads);
    ec_model_input_shape(&h, &w, &c);
    n = ec_model_output_size();
    x = (float *)malloc(sizeof(float) * (size_t)h * w * c);
    y = (float *)malloc(sizeof(float) * (size_t)n);
#ifdef EC_MODEL_CALLER_ARENA
    arena = malloc(ec_model_arena_size() + 64);
#else
    arena = malloc(1); /* the model has its own arena */
#endif
    if (!x || !y || !arena) return fail("out of memory", NULL);
    rc = load_input(image, x, h, w, c);
    if (rc == 0) rc = run(x, y, arena); /* also warms the caches before timing */
    if (rc == 0 && repeats > 0) {
        double t0 = now_ms();
        for (k = 0; rc == 0 && k < repeats; k++) rc = run(x, y, arena);
        printf("%.3f ms/frame (%d runs)\n", (now_ms() - t0) / repeats, repeats);
    }
    if (rc != 0 && rc != 2)
        fprintf(stderr, "predict: the model failed with code %d%s\n", rc,
                rc == 1 ? " (weights not loaded)" : "");
    if (rc == 0 && out_path) {
        FILE *f = fopen(out_path, "wb");
        if (!f || fwrite(y, sizeof(float), (size_t)n, f) != (size_t)n)
            rc = fail("cannot write", out_path);
        if (f) fclose(f);
    }
    if (rc == 0) print_top5(y, n);
    free(x);
    free(y);
    free(arena);
    return rc;
}
