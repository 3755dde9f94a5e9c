/* Runs one portable integer kernel on data read from stdin and writes its output to stdout, so that the
 * tests can run the kernels under qemu-user on ARM. The stream: an int32 kernel id, the kernel's
 * parameter struct (plain int32 fields: the same bytes on every target), then each array as an
 * int64 byte count and the bytes, in the kernel's argument order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ec_conv.h"
#include "ec_eltwise.h"
#include "ec_pool.h"
#include "ec_quant.h"

static void read_exact(void *p, size_t n)
{
    if (n && fread(p, 1, n, stdin) != n) {
        fprintf(stderr, "int8_check: short input\n");
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

static void write_out(const void *y, size_t n)
{
    if (fwrite(y, 1, n, stdout) != n) exit(3);
}

int main(void)
{
    int32_t id;
    read_exact(&id, sizeof id);
    if (id == 0 || id == 1) {  /* conv u8, i8 */
        ec_qconv_params p;
        void *x, *w, *b, *m, *s, *y;
        size_t n;
        read_exact(&p, sizeof p);
        x = blob(); w = blob(); b = blob(); m = blob(); s = blob();
        n = (size_t)p.oh * p.ow * p.o;
        y = malloc(n);
        if (id == 0) ec_qconv2d_u8(&p, x, w, b, m, s, y);
        else ec_qconv2d_i8(&p, x, w, b, m, s, y);
        write_out(y, n);
    } else if (id >= 2 && id <= 5) {  /* avg u8, avg i8, max u8, max i8 */
        ec_qpool_params p;
        void *x, *y;
        size_t n;
        read_exact(&p, sizeof p);
        x = blob();
        n = (size_t)p.oh * p.ow * p.c;
        y = malloc(n);
        if (id == 2) ec_qavgpool_u8(&p, x, y);
        else if (id == 3) ec_qavgpool_i8(&p, x, y);
        else if (id == 4) ec_qmaxpool_u8(&p, x, y);
        else ec_qmaxpool_i8(&p, x, y);
        write_out(y, n);
    } else if (id == 6 || id == 7) {  /* add u8, i8 */
        ec_qadd_params p;
        int64_t n;
        void *a, *b, *y;
        read_exact(&p, sizeof p);
        read_exact(&n, sizeof n);
        a = blob(); b = blob();
        y = malloc((size_t)n);
        if (id == 6) ec_qadd_u8(&p, a, b, (long)n, y);
        else ec_qadd_i8(&p, a, b, (long)n, y);
        write_out(y, (size_t)n);
#ifdef EC_QELT_FAST /* the fast kernels of ec_qelt_fast.c, built with it */
    } else if (id == 8 || id == 9) { /* fast max u8, i8 */
        ec_qpool_params p;
        void *x, *y;
        size_t n;
        read_exact(&p, sizeof p);
        x = blob();
        n = (size_t)p.oh * p.ow * p.c;
        y = malloc(n);
        if (id == 8) ec_qmaxpool_fast_u8(&p, x, y);
        else ec_qmaxpool_fast_i8(&p, x, y);
        write_out(y, n);
    } else if (id == 10 || id == 11) { /* fast quantize u8, i8: {scale, zero point}, n, x */
        struct {
            float scale;
            int32_t zp;
        } p;
        int64_t n;
        void *x, *y;
        read_exact(&p, sizeof p);
        read_exact(&n, sizeof n);
        x = blob();
        y = malloc((size_t)n + 1);
        if (id == 10) ec_quantize_flat_fast_u8(x, (long)n, y, p.scale, p.zp);
        else ec_quantize_flat_fast_i8(x, (long)n, y, p.scale, p.zp);
        write_out(y, (size_t)n);
    } else if (id == 12 || id == 13) { /* fast table u8, i8: n, x, lut */
        int64_t n;
        void *x, *lut, *y;
        read_exact(&n, sizeof n);
        x = blob(); lut = blob();
        y = malloc((size_t)n + 1);
        if (id == 12) ec_qlut_fast_u8(x, (long)n, lut, y);
        else ec_qlut_fast_i8(x, (long)n, lut, y);
        write_out(y, (size_t)n);
#endif
    } else {
        fprintf(stderr, "int8_check: unknown kernel %d\n", (int)id);
        return 2;
    }
    return 0;
}
