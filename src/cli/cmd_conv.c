/* convrec conv: the reference FFT convolution of signals with kernels. */
#include "args.h"

static const char help[] =
    "usage: convrec conv KERNELS.npy IN.npy -o OUT.npy [--threads T]\n"
    "\n"
    "Causal convolution y[t] = sum_k h[k] u[t-k] of each channel of a signal\n"
    "(T,), (C, T) or (B, C, T) with its kernel of a bank (L,) or (C, L), by FFT.\n"
    "The output has the shape and dtype (float32 or float64) of the signal.\n"
    "\n"
    "  -o OUT.npy             the file to write (never one of the inputs)\n"
    "  --threads T            threads, 1 to 1024 (default: OMP_NUM_THREADS, else\n"
    "                         one per core; at most 4 per core are used)\n"
    "  -h, --help             show this help\n";

int cmd_conv(int argc, char **argv)
{
    const char *out = NULL, *threads = NULL;
    args a = {.cmd = "conv", .help = help};
    const args_opt opts[] = {{"-o", &out, NULL}, {"--threads", &threads, NULL}, {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 2 || out == NULL) return cli_usage(a.cmd, "usage: convrec conv KERNELS.npy IN.npy -o OUT.npy");
    int nth;
    if ((rc = cli_parse_threads(a.cmd, threads, &nth)) != CLI_OK) return rc;
    if ((rc = cli_check_output(a.cmd, out, a.pos, 2)) != CLI_OK) return rc;

    cr_array h, u, y = {0};
    cr_status st = cr_npy_read(a.pos[0], &h);
    if (st != CR_OK) return cli_status(a.cmd, st, "reading kernels");
    st = cr_npy_read(a.pos[1], &u);
    if (st != CR_OK) {
        cr_array_free(&h);
        return cli_status(a.cmd, st, "reading input");
    }
    rc = CLI_FAIL;
    size_t C = h.ndim == 1 ? 1 : h.shape[0], L = h.ndim == 1 ? h.shape[0] : h.shape[1];
    size_t B, Cu, T;
    cli_signal_dims(&u, &B, &Cu, &T);
    if (h.ndim > 2) {
        cli_error(a.cmd, "%s: kernels must have shape (L,) or (C, L)", a.pos[0]);
        goto done;
    }
    if (Cu != C) {
        cli_error(a.cmd, "%s has %zu channels but %s has %zu kernels", a.pos[1], Cu, a.pos[0], C);
        goto done;
    }
    /* a fresh 16 MiB output faults in far faster on huge pages */
    st = cr_array_alloc(&y, u.dtype, u.ndim, u.shape);
    if (st != CR_OK) {
        cli_status(a.cmd, st, "allocating the output");
        goto done;
    }
    if (u.dtype == CR_FLOAT64) {
        if (cli_to_f64(&h) == 0) st = cr_conv_d(h.data, C, L, u.data, B, T, y.data, nth);
        else st = CR_ENOMEM;
    } else {
        if (cli_to_f32(&h) == 0) st = cr_conv_f(h.data, C, L, u.data, B, T, y.data, nth);
        else st = CR_ENOMEM;
    }
    if (st != CR_OK) {
        cli_status(a.cmd, st, "convolution");
        goto done;
    }
    st = cr_npy_write(out, &y);
    rc = st == CR_OK ? CLI_OK : cli_status(a.cmd, st, "writing the output");
done:
    cr_array_free(&y);
    cr_array_free(&h);
    cr_array_free(&u);
    return rc;
}
