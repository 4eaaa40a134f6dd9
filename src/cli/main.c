/* convrec: the command-line tool. Dispatches to one function per
 * subcommand and holds the helpers they share. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: convrec COMMAND [ARGS]\n"
    "\n"
    "  fit KERNELS.npy -o MODEL.safetensors [--order N | --tol EPS]\n"
    "      [--horizon window|infinite] [--method auto|bt|hna|pencil]\n"
    "      [--margin M] [--max-order N] [--threads T] [--quiet]   (default --tol 1e-3)\n"
    "                                 fit a stable modal model to each kernel\n"
    "  kernel MODEL --length L -o OUT.npy\n"
    "                                 (C, L) float64 impulse responses of a model\n"
    "  filter MODEL IN.npy -o OUT.npy [--allow-unstable] [--threads T]\n"
    "                                 run the recurrence over (C, T) or (B, C, T)\n"
    "  conv KERNELS.npy IN.npy -o OUT.npy [--threads T]\n"
    "                                 reference FFT convolution, same shapes\n"
    "  hsv KERNELS.npy [-n K] [--horizon window|infinite] [-o OUT.npy] [--json]\n"
    "                                 Hankel singular values per channel\n"
    "  info MODEL [--json]            orders, poles, errors, bounds, stability\n"
    "  export MODEL --format c|sos|json [--name NAME] [--precision float|double]\n"
    "      [-o PATH]                  export for embedded targets\n"
    "  verify MODEL KERNELS.npy [--steps T] [--precision float|double]\n"
    "                                 stream through the recurrence and compare\n"
    "                                 with FFT convolution by the kernels\n"
    "\n"
    "  convrec --version | --help\n";

int cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "convrec %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "convrec %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see convrec --help)\n");
    return CLI_USAGE;
}

int cli_status(const char *cmd, cr_status st, const char *what)
{
    const char *d = cr_error_detail();
    if (d != NULL && d[0] != '\0')
        return cli_error(cmd, "%s: %s (%s)", what, d, cr_strerror(st));
    return cli_error(cmd, "%s: %s", what, cr_strerror(st));
}

int cli_parse_size(const char *s, size_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > SIZE_MAX) return -1;
    *out = (size_t)v;
    return 0;
}

int cli_parse_double(const char *s, double *out)
{
    if (s == NULL || *s == '\0') return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cli_parse_int(const char *s, int *out)
{
    if (s == NULL || *s == '\0') return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < -1000000 || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

int cli_to_f64(cr_array *a)
{
    if (a->dtype == CR_FLOAT64) return 0;
    size_t n = cr_array_count(a);
    double *d = malloc(n * sizeof *d);
    if (d == NULL) return -1;
    const float *f = a->data;
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    free(a->data);
    a->data = d;
    a->dtype = CR_FLOAT64;
    return 0;
}

int cli_to_f32(cr_array *a)
{
    if (a->dtype == CR_FLOAT32) return 0;
    size_t n = cr_array_count(a);
    float *f = malloc(n * sizeof *f);
    if (f == NULL) return -1;
    const double *d = a->data;
    for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
    free(a->data);
    a->data = f;
    a->dtype = CR_FLOAT32;
    return 0;
}

int cli_load_kernels(const char *cmd, const char *path, double **h, size_t *C, size_t *L)
{
    cr_array a;
    cr_status st = cr_npy_read(path, &a);
    if (st != CR_OK) return cli_status(cmd, st, "reading kernels");
    if (a.ndim > 2) {
        cr_array_free(&a);
        return cli_error(cmd, "%s: kernels must have shape (L,) or (C, L), got %d dimensions", path, a.ndim);
    }
    if (cli_to_f64(&a) != 0) {
        cr_array_free(&a);
        return cli_error(cmd, "%s: out of memory", path);
    }
    *C = a.ndim == 1 ? 1 : a.shape[0];
    *L = a.ndim == 1 ? a.shape[0] : a.shape[1];
    *h = a.data;
    return CLI_OK;
}

static const struct {
    const char *name;
    cli_cmd_fn fn;
} commands[] = {
    {"fit", cmd_fit},       {"kernel", cmd_kernel}, {"filter", cmd_filter},
    {"conv", cmd_conv},     {"hsv", cmd_hsv},       {"info", cmd_info},
    {"export", cmd_export}, {"verify", cmd_verify},
};

/* OpenBLAS (pthread build) starts a thread pool when it is loaded, and
 * those threads spin on sched_yield for a while, stealing the cores from
 * the OpenMP threads that do convrec's work (measured: ~6000 yields and
 * ~20 ms in a 70 ms `convrec conv`). convrec calls LAPACK only inside its
 * own per-channel OpenMP loops, single-threaded, so the pool is useless
 * here: run the command with OPENBLAS_NUM_THREADS=1 unless the user chose. */
static void single_threaded_blas(char **argv)
{
    if (getenv("OPENBLAS_NUM_THREADS") != NULL || getenv("CONVREC_NO_REEXEC") != NULL) return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0) return;
    execv("/proc/self/exe", argv); /* only returns on failure: carry on as we are */
}

int main(int argc, char **argv)
{
    single_threaded_blas(argv);
    if (argc < 2) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("convrec %s\n", cr_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "convrec: unknown command '%s'\n\n%s", argv[1], usage_text);
    return CLI_USAGE;
}
