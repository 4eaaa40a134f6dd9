/* convrec hsv: the Hankel singular values of each kernel, the bounds every
 * model of a given order is measured against. */
#include "args.h"

#include <stdlib.h>

static const char help[] =
    "usage: convrec hsv KERNELS.npy [-n K] [--horizon H] [-o OUT.npy | --json]\n"
    "\n"
    "The K largest Hankel singular values sigma_1 >= sigma_2 >= ... of each\n"
    "kernel of a bank (L,) or (C, L) (.npy, or an audio file whose channels are\n"
    "the kernels, or a checkpoint's tensor with --tensor): one line per channel, or a (C, K) float64\n"
    "array with -o, or JSON. Every stable model of order N has an H-infinity\n"
    "error >= sigma_N+1 (infinite horizon).\n"
    "\n"
    "  --tensor NAME          KERNELS is a safetensors checkpoint: the kernels are\n"
    "                         its tensor NAME, (L,), (C, L) or a conv1d weight\n"
    "                         (C, 1, L), F32, F64, F16 or BF16\n"
    "  -n K                   how many values per channel, 1 to 100000 (default\n"
    "                         10; at most L - 1)\n"
    "  --horizon window|infinite\n"
    "                         infinite (default): the zero-padded Hankel matrix\n"
    "                         of the FIR system; window: the Hankel matrix of the\n"
    "                         window k < L alone\n"
    "  -o OUT.npy             write the values as a (C, K) float64 .npy file\n"
    "                         (never one of the inputs)\n"
    "  --json                 print {\"horizon\": .., \"hsv\": [[..], ..]}\n"
    "  -h, --help             show this help\n";

int cmd_hsv(int argc, char **argv)
{
    const char *out = NULL, *nstr = NULL, *horizon = NULL, *tensor = NULL;
    int json = 0;
    args a = {.cmd = "hsv", .help = help};
    const args_opt opts[] = {{"-o", &out, NULL},           {"-n", &nstr, NULL}, {"--horizon", &horizon, NULL},
                             {"--json", NULL, &json},      {"--tensor", &tensor, NULL},
                             {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 1) return cli_usage(a.cmd, "usage: convrec hsv KERNELS.npy [-n K] [-o OUT.npy]");
    size_t K = 10;
    if (nstr && (cli_parse_size(nstr, &K) || K == 0 || K > 100000))
        return cli_usage(a.cmd, "-n must be a positive integer (at most 100000)");
    cr_horizon hz = CR_HORIZON_INFINITE;
    if ((rc = cli_parse_horizon(a.cmd, horizon, &hz)) != CLI_OK) return rc;
    if ((rc = cli_check_output(a.cmd, out, &a.pos[0], 1)) != CLI_OK) return rc;
    double *h;
    size_t C, L;
    if ((rc = cli_load_kernels(a.cmd, a.pos[0], tensor, &h, &C, &L, NULL)) != CLI_OK) return rc;
    if (L < 2) {
        free(h);
        return cli_error(a.cmd, "%s: kernels of length %zu have no Hankel singular values", a.pos[0], L);
    }
    if (K > L - 1) K = L - 1;
    double *s = calloc(C * K, sizeof *s);
    if (s == NULL) {
        free(h);
        return cli_error(a.cmd, "out of memory");
    }
    cr_status st = CR_OK;
    for (size_t c = 0; c < C && st == CR_OK; c++) {
        size_t got = 0;
        st = cr_hsv(h + c * L, L, hz, K, s + c * K, &got, NULL);
    }
    free(h);
    if (st != CR_OK) {
        free(s);
        return cli_status(a.cmd, st, "Hankel singular values");
    }
    if (out) {
        cr_array arr = {CR_FLOAT64, 2, {C, K, 1}, s};
        st = cr_npy_write(out, &arr);
        if (st != CR_OK) {
            free(s);
            return cli_status(a.cmd, st, "writing");
        }
    } else if (json) {
        printf("{\"horizon\": \"%s\", \"hsv\": [", cli_horizon_name(hz));
        for (size_t c = 0; c < C; c++) {
            printf("%s[", c ? ", " : "");
            for (size_t i = 0; i < K; i++) printf("%s%.17g", i ? ", " : "", s[c * K + i]);
            printf("]");
        }
        printf("]}\n");
    } else {
        for (size_t c = 0; c < C; c++) {
            for (size_t i = 0; i < K; i++) printf("%s%.10e", i ? " " : "", s[c * K + i]);
            printf("\n");
        }
    }
    free(s);
    return CLI_OK;
}

