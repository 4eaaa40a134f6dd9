/* convrec kernel: a model's impulse responses, as a (C, L) kernel bank. */
#include "args.h"

#include <unistd.h>

static const char help[] =
    "usage: convrec kernel MODEL.safetensors --length L -o OUT.npy\n"
    "\n"
    "Write the impulse responses of every channel of a model, samples 0 to\n"
    "L - 1, as a (C, L) float64 .npy file.\n"
    "\n"
    "  --length L             samples per channel, L >= 1; the output (C x L x 8\n"
    "                         bytes) may take at most 16 GiB and at most half of\n"
    "                         the machine's memory\n"
    "  -o OUT.npy             the file to write (never the model itself)\n"
    "  -h, --help             show this help\n";

static double gib(double bytes) { return bytes / (double)((size_t)1 << 30); }

/* Bytes one output array may take: CLI_MAX_OUTPUT_BYTES, and half of the
 * physical memory so that the machine does not start swapping. */
static size_t output_limit(void)
{
    size_t lim = CLI_MAX_OUTPUT_BYTES;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psize > 0 && (size_t)pages / 2 < lim / (size_t)psize) lim = (size_t)pages / 2 * (size_t)psize;
    return lim;
}

int cmd_kernel(int argc, char **argv)
{
    const char *out = NULL, *length = NULL;
    args a = {.cmd = "kernel", .help = help};
    const args_opt opts[] = {{"-o", &out, NULL}, {"--length", &length, NULL}, {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 1 || out == NULL || length == NULL)
        return cli_usage(a.cmd, "usage: convrec kernel MODEL.safetensors --length L -o OUT.npy");
    size_t L;
    if (cli_parse_size(length, &L) || L == 0) return cli_usage(a.cmd, "--length must be a positive integer");
    if ((rc = cli_check_output(a.cmd, out, &a.pos[0], 1)) != CLI_OK) return rc;
    cr_model *m;
    cr_status st = cr_model_load(&m, a.pos[0]);
    if (st != CR_OK) return cli_status(a.cmd, st, "loading the model");
    cr_model_view v;
    cr_model_get_view(m, &v);
    size_t limit = output_limit();
    /* check the size before allocating: say how much it would take */
    if (L > limit / sizeof(double) / v.C) {
        rc = cli_error(a.cmd, "--length %zu: %zu channels x %zu samples need %.1f GiB, more than the limit of %.1f GiB",
                       L, v.C, L, gib((double)v.C * (double)L * 8.0), gib((double)limit));
        cr_model_destroy(m);
        return rc;
    }
    const size_t shape[3] = {v.C, L, 1};
    cr_array k;
    st = cr_array_alloc(&k, CR_FLOAT64, 2, shape);
    if (st == CR_OK) st = cr_model_kernel(m, L, k.data);
    if (st != CR_OK) rc = cli_status(a.cmd, st, "computing the kernels");
    else if ((st = cr_npy_write(out, &k)) != CR_OK) rc = cli_status(a.cmd, st, "writing the kernels");
    else rc = CLI_OK;
    cr_array_free(&k);
    cr_model_destroy(m);
    return rc;
}
