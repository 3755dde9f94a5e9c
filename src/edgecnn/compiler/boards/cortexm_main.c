/* Example bare-metal program for an edgecnn model on a Cortex-M board (a test fixture and a
 * starting point, not the product API). The input comes in and the output goes out through
 * semihosting files (newlib's rdimon): input.f32 (H x W x C float32, preprocessed) and
 * output.f32 (the model's output floats). One JSON line on stdout gives the return code, the
 * stack high-water mark (stack painted with a pattern before the call), whether the bytes after
 * the arena are untouched, and the SysTick count of one inference (instructions under
 * qemu -icount 0).
 *
 * Build-time settings: EC_ARENA_BYTES (default: the model's arena size; the tests build one byte
 * less to see the model refuse to run), EC_ARENA_GUARD bytes of pattern after the arena. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EC_MODEL_ALIASES 1
#include "model.h"

#ifndef EC_ARENA_BYTES
#define EC_ARENA_BYTES EC_MODEL_ARENA_BYTES
#endif
#ifndef EC_ARENA_GUARD
#define EC_ARENA_GUARD 64
#endif
#define EC_PAINT 0xC5C5C5C5u

/* the caller-provided arena (8-byte aligned; the model needs float alignment) and its guard */
static union { uint64_t align; uint8_t b[EC_ARENA_BYTES + EC_ARENA_GUARD]; } arena;
static float input[EC_MODEL_INPUT_H * EC_MODEL_INPUT_W * EC_MODEL_INPUT_C];
static float output[EC_MODEL_OUTPUT_SIZE];

#ifndef EC_SIZE_ONLY
extern void initialise_monitor_handles(void); /* newlib rdimon: semihosting stdio */
extern uint32_t __stack_limit[], __stack_top[];
uint64_t ec_cycles(void);

static uint32_t *stack_pointer(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Fill the unused stack below this frame with EC_PAINT, but for the 64 bytes just below the
 * stack pointer: gcc may push this function's registers after reading sp. So a figure below
 * 64 bytes reads as 64 (the measurement is an upper bound). */
static __attribute__((noinline)) void paint_stack(void) {
    volatile uint32_t *p = __stack_limit;
    uint32_t *sp = stack_pointer() - 16;
    while (p < (volatile uint32_t *)sp) *p++ = EC_PAINT;
}

/* The lowest stack address written since paint_stack (scanning up from the limit). */
static uint32_t *stack_low_water(void) {
    uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == EC_PAINT) p++;
    return p;
}

static int read_file(const char *path, void *dst, size_t bytes) {
    FILE *f = fopen(path, "rb");
    size_t got;
    if (!f) return 1;
    got = fread(dst, 1, bytes, f);
    fclose(f);
    return got != bytes;
}

static int write_file(const char *path, const void *src, size_t bytes) {
    FILE *f = fopen(path, "wb");
    size_t put;
    if (!f) return 1;
    put = fwrite(src, 1, bytes, f);
    return (fclose(f) != 0) | (put != bytes);
}

#endif

#ifdef EC_SIZE_ONLY
/* The image that `edgecnn compile` measures for flash and RAM: the model, its arena, its input
 * and output buffers and the startup code, without the semihosting stdio of the example. */
int main(void) { return ec_model_predict_checked(input, output, arena.b, EC_ARENA_BYTES); }
#else
int main(void) {
    uint32_t *sp, *low;
    uint64_t t0, t1;
    int rc, guard_ok = 1;
    size_t i, touched = 0;
    initialise_monitor_handles();
    if (read_file("input.f32", input, sizeof input)) {
        printf("{\"error\": \"cannot read input.f32 (%u bytes)\"}\n", (unsigned)sizeof input);
        return 2;
    }
    memset(arena.b, 0xA5, sizeof arena.b);
    sp = stack_pointer();
    paint_stack();
    t0 = ec_cycles();
    rc = ec_model_predict_checked(input, output, arena.b, EC_ARENA_BYTES);
    t1 = ec_cycles();
    low = stack_low_water();
    for (i = 0; i < EC_ARENA_BYTES; i++) touched += arena.b[i] != 0xA5;
    for (i = EC_ARENA_BYTES; i < sizeof arena.b; i++) guard_ok &= arena.b[i] == 0xA5;
    if (rc == 0 && write_file("output.f32", output, sizeof output)) return 3;
    printf("{\"rc\": %d, \"arena_bytes\": %u, \"arena_bytes_written\": %u, \"guard_ok\": %d, "
           "\"stack_bytes\": %u, \"predict_stack_bytes\": %u, \"stack_size\": %u, "
           "\"systicks\": %llu}\n",
           rc, (unsigned)EC_ARENA_BYTES, (unsigned)touched, guard_ok,
           (unsigned)((uint8_t *)__stack_top - (uint8_t *)low),
           (unsigned)((uint8_t *)sp - (uint8_t *)low),
           (unsigned)((uint8_t *)__stack_top - (uint8_t *)__stack_limit),
           (unsigned long long)(t1 - t0));
    return rc == 0 ? 0 : 10 + rc;
}
#endif
