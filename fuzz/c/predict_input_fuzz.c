/* libFuzzer harness for the generated `predict` program's input reader (PPM P6 or raw HWC).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I fuzz/c \
 *         fuzz/c/predict_input_fuzz.c -o predict_input_fuzz && ./predict_input_fuzz CORPUS
 *
 * Without libFuzzer (gcc, or clang lacking its runtime) build with -DEC_FUZZ_STANDALONE: the
 * program then reads each file named on its command line once (replay), under ASan/UBSan.
 * The input is copied to a buffer of exactly its size, so any read past the end is reported.
 * Run with -close_fd_mask=2: the reader explains every rejection on stderr.
 */
#define main ec_predict_main /* the harness brings its own entry point */
#include "../../src/edgecnn/compiler/runtime/ec_predict_main.c"
#undef main

#include <stddef.h>
#include <stdint.h>

static int parse_one(const uint8_t *data, size_t size, int h, int w, int c)
{
    float x[6 * 5 * 3];
    unsigned char *copy = (unsigned char *)malloc(size ? size : 1);
    int rc;
    if (!copy) return 0;
    memcpy(copy, data, size);
    rc = parse_input(copy, (long)size, "fuzz", x, h, w, c);
    free(copy);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_one(data, size, 5, 4, 3);
    parse_one(data, size, 6, 5, 1);
    return 0;
}

#ifdef EC_FUZZ_STANDALONE
int main(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        long n;
        unsigned char *b = read_file(argv[i], &n);
        if (b) LLVMFuzzerTestOneInput(b, (size_t)n);
        free(b);
    }
    return 0;
}
#endif
