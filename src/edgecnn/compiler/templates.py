"""The text of the generated files (filled in by :mod:`.emit`, ``str.format`` fields).

Doubled braces are C braces.
"""

MODEL_C = """{banner}
#ifdef EC_PROFILE
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#endif
#include <stddef.h>
#include <stdint.h>
{stdio}
#include "model.h"
{runtime_includes}#ifdef EC_OPENMP
#include <omp.h>
#endif

{nb_check}#if defined(__GNUC__) || defined(__clang__)
#define EC_ALIGN64 __attribute__((aligned(64)))
#else
#define EC_ALIGN64
#endif

{weights}
{arena}
#ifdef EC_PROFILE
/* Per-op timing (builds with -DEC_PROFILE): {p}_profile adds each op's milliseconds to
 * ms[0 .. {nops}) (ops in the order of the comments below). */
#include <time.h>
static double *ec_prof_ms;
static double ec_prof_t0;
static double ec_now_ms(void) {{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}}
#define EC_TICK(i) do {{ if (ec_prof_ms) {{ double t_ = ec_now_ms(); \\
    ec_prof_ms[i] += t_ - ec_prof_t0; ec_prof_t0 = t_; }} }} while (0)
#else
#define EC_TICK(i) do {{ }} while (0)
#endif

void {p}_input_shape(int *h, int *w, int *c) {{ *h = {h}; *w = {w}; *c = {c}; }}
int {p}_output_size(void) {{ return {out}; }}
size_t {p}_arena_size(void) {{ return {arena_bytes}u; }}
const char *{p}_metadata(void) {{
    return {meta};
}}

void {p}_set_threads(int n) {{
#ifdef EC_OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}}

/* input_hwc: the preprocessed H x W x C input; output: {out} floats; arena: {arena_bytes}
 * bytes, float-aligned (64-byte alignment is faster). Returns 0; 1 if the weights are not loaded;
 * 3 if a kernel wants more scratch than planned (a compiler bug, reported instead of overrun). */
{predict_fn}
/* As {p}_predict_with_arena, for a caller that passes its arena's size: returns 4 and touches
 * nothing if arena_bytes < {arena_bytes} or the arena is not float-aligned (a microcontroller
 * build refuses to run rather than overrun the caller's memory). */
int {p}_predict_checked(const float *input_hwc, float *output, void *arena,
                        size_t arena_bytes) {{
    if (arena_bytes < {arena_bytes}u || (uintptr_t)arena % sizeof(float) != 0) return 4;
    return {p}_predict_with_arena(input_hwc, output, arena);
}}
{predict}
#ifdef EC_PROFILE
int {p}_profile(const float *input_hwc, float *output, void *arena, double *ms) {{
    int rc;
    ec_prof_ms = ms;
    ec_prof_t0 = ec_now_ms();
    rc = {p}_predict_with_arena(input_hwc, output, arena);
    ec_prof_ms = NULL;
    return rc;
}}
#endif
"""

CONST_WEIGHTS_C = """/* {floats} floats of weights: their little-endian bytes, one string literal */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) \\
    && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the weights are stored little-endian; this target is big-endian"
#endif
static const union {{ unsigned char bytes[{bytes}]; float f[{n}]; }} ec_w EC_ALIGN64 = {{
{data}
}};
#define W (ec_w.f)
"""

PREDICT_FN = """int {p}_predict_with_arena(const float *input_hwc, float *output, void *arena) {{
    float *A = (float *)arena;
{weights_check}{body}
    return 0;
}}
"""

# An integer model whose input is quantized first also takes the quantized input directly:
# both entry points share one body, which skips the quantize op when given integers.
PREDICT_FN_QUANTIZED = """static int ec_run(const float *input_hwc, const {t} *input_q,
                  float *output, void *arena) {{
    float *A = (float *)arena;
{weights_check}{body}
    return 0;
}}

int {p}_predict_with_arena(const float *input_hwc, float *output, void *arena) {{
    return ec_run(input_hwc, NULL, output, arena);
}}

/* input_q: the model's input already quantized ({n} values of {t}: scale {scale},
 * zero point {zp}), as a camera pipeline or another integer engine hands it over. */
int {p}_predict_quantized_with_arena(const {t} *input_q, float *output,
        void *arena) {{
    return ec_run(NULL, input_q, output, arena);
}}
"""

PREDICT_STATIC = """
int {p}_predict(const float *input_hwc, float *output) {{
    return {p}_predict_with_arena(input_hwc, output, ec_arena);
}}
"""

WEIGHTS_FILE_C = """/* weights: {n} floats read from weights.bin by {p}_load_weights */
static float ec_w[{n}] EC_ALIGN64;
static int ec_w_loaded;
#define W ec_w
#define EC_MODEL_ID {model_id}u

static uint32_t ec_le32(const unsigned char *b) {{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}}

/* Returns 0 on success, 1 if the file cannot be opened, 2 if it is not this model's weights
 * file, 3 if it is truncated. The floats are little-endian, as on every supported target. */
int {p}_load_weights(const char *path) {{
    unsigned char hdr[16];
    FILE *f = fopen(path, "rb");
    size_t got;
    if (!f) return 1;
    if (fread(hdr, 1, 16, f) != 16 || hdr[0] != 'E' || hdr[1] != 'C' || hdr[2] != 'W'
        || hdr[3] != '1' || ec_le32(hdr + 4) != {n}u || ec_le32(hdr + 8) != EC_MODEL_ID) {{
        fclose(f);
        return 2;
    }}
    got = fread(ec_w, sizeof(float), {n}, f);
    fclose(f);
    if (got != {n}) return 3;
    ec_w_loaded = 1;
    return 0;
}}
"""

MODEL_H = """{banner}
#ifndef {P}_MODEL_H
#define {P}_MODEL_H

#include <stddef.h>
{stdint_include}
#ifdef __cplusplus
extern "C" {{
#endif

#define {P}_INPUT_H {h}
#define {P}_INPUT_W {w}
#define {P}_INPUT_C {c}
#define {P}_OUTPUT_SIZE {out}
#define {P}_ARENA_BYTES {arena_bytes}

{predict_decl}int {p}_predict_with_arena(const float *input_hwc, float *output, void *arena);
{quantized_decl}int {p}_predict_checked(const float *input_hwc, float *output, void *arena,
                        size_t arena_bytes);  /* 4 = arena too small */
void {p}_input_shape(int *h, int *w, int *c);
int {p}_output_size(void);
size_t {p}_arena_size(void);
const char *{p}_metadata(void);
void {p}_set_threads(int n);
{load_decl}
#ifdef __cplusplus
}}
#endif

/* generic names for a program built with one model (predict.c defines EC_MODEL_ALIASES) */
#ifdef EC_MODEL_ALIASES
{aliases}
#endif

#endif
"""
