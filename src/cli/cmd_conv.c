/* convrec conv: the reference FFT convolution of signals with kernels. */
#include "args.h"
#include "core/core.h"

#include <stdlib.h>

int cmd_conv(int argc, char **argv)
{
    const char *out = NULL, *threads = NULL;
    args a = {.cmd = "conv"};
    const args_opt opts[] = {{"-o", &out, NULL}, {"--threads", &threads, NULL}, {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != CLI_OK) return rc;
    if (a.npos != 2 || out == NULL) return cli_usage(a.cmd, "usage: convrec conv KERNELS.npy IN.npy -o OUT.npy");
    int nth = 0;
    if (threads && (cli_parse_int(threads, &nth) || nth < 1)) return cli_usage(a.cmd, "--threads must be >= 1");

    cr_array h, u;
    cr_status st = cr_npy_read(a.pos[0], &h);
    if (st != CR_OK) return cli_status(a.cmd, st, "reading kernels");
    st = cr_npy_read(a.pos[1], &u);
    if (st != CR_OK) {
        cr_array_free(&h);
        return cli_status(a.cmd, st, "reading input");
    }
    rc = CLI_FAIL;
    size_t C = h.ndim == 1 ? 1 : h.shape[0], L = h.ndim == 1 ? h.shape[0] : h.shape[1];
    size_t B = 1, Cu, T;
    if (h.ndim > 2) {
        cli_error(a.cmd, "%s: kernels must have shape (L,) or (C, L)", a.pos[0]);
        goto done;
    }
    if (u.ndim == 1) { Cu = 1; T = u.shape[0]; }
    else if (u.ndim == 2) { Cu = u.shape[0]; T = u.shape[1]; }
    else { B = u.shape[0]; Cu = u.shape[1]; T = u.shape[2]; }
    if (Cu != C) {
        cli_error(a.cmd, "%s has %zu channels but %s has %zu kernels", a.pos[1], Cu, a.pos[0], C);
        goto done;
    }
    cr_array y = u;
    y.data = cr__alloc_big(cr_array_count(&u) * (size_t)u.dtype);
    if (y.data == NULL) {
        cli_error(a.cmd, "out of memory");
        goto done;
    }
    if (u.dtype == CR_FLOAT64) {
        if (cli_to_f64(&h) == 0) st = cr_conv_d(h.data, C, L, u.data, B, T, y.data, nth);
        else st = CR_ENOMEM;
    } else {
        if (cli_to_f32(&h) == 0) st = cr_conv_f(h.data, C, L, u.data, B, T, y.data, nth);
        else st = CR_ENOMEM;
    }
    if (st == CR_OK) st = cr_npy_write(out, &y);
    rc = st == CR_OK ? CLI_OK : cli_status(a.cmd, st, "convolution");
    free(y.data);
done:
    cr_array_free(&h);
    cr_array_free(&u);
    return rc;
}
