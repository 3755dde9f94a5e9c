/* Runs an AArch64 dot-product kernel (ec_qconv_sdot.c) on data read from stdin and writes the
 * scratch size and its output to stdout, so that the tests can run it under qemu-user. The
 * stream: an int32 id (0: pointwise uint8, 1: pointwise int8, 2: direct uint8, 3: direct
 * int8), the ec_qconv_params bytes, the int32 d, then the activations,
 * the packed weights and the packed requantization, each as an int64 byte count and the
 * bytes. The scratch is the kernel's own count plus a guard that must stay untouched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_conv.h"

#define GUARD 64

static void read_exact(void *p, size_t n)
{
    if (n && fread(p, 1, n, stdin) != n) {
        fprintf(stderr, "sdot_check: short input\n");
        exit(2);
    }
}

static void *blob(void)
{
    int64_t n;
    void *p;
    read_exact(&n, sizeof n);
    p = malloc(n > 0 ? (size_t)n : 1);
    read_exact(p, (size_t)n);
    return p;
}

int main(void)
{
    int32_t id, d;
    ec_qconv_params p;
    void *x, *w, *rq, *y;
    uint8_t *scratch;
    size_t n, ns;
    read_exact(&id, sizeof id);
    read_exact(&p, sizeof p);
    read_exact(&d, sizeof d);
    x = blob(); w = blob(); rq = blob();
    n = (size_t)p.oh * p.ow * p.o;
    ns = (size_t)(id < 2 ? ec_qconv_sdot_scratch_bytes(&p)
                         : ec_qconv_sdot_direct_scratch_bytes(&p));
    y = malloc(n);
    scratch = malloc(ns + GUARD);
    memset(scratch, 0x5A, ns + GUARD);
    if (id == 0) ec_qconv_pointwise_sdot_u8(&p, x, w, rq, d, scratch, y);
    else if (id == 1) ec_qconv_pointwise_sdot_i8(&p, x, w, rq, d, scratch, y);
    else if (id == 2) ec_qconv_direct_sdot_u8(&p, x, w, rq, d, scratch, y);
    else ec_qconv_direct_sdot_i8(&p, x, w, rq, d, scratch, y);
    for (size_t i = ns; i < ns + GUARD; i++)
        if (scratch[i] != 0x5A) {
            fprintf(stderr, "sdot_check: wrote past its scratch\n");
            return 4;
        }
    if (fwrite(&ns, sizeof ns, 1, stdout) != 1 || fwrite(y, 1, n, stdout) != n) return 3;
    return 0;
}
