/* Helpers shared by the subcommands: messages, strict numbers, inputs and
 * outputs. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static void vmessage(const char *cmd, const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "convrec %s: %s", cmd, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(cmd, "", fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(cmd, "", fmt, ap);
    va_end(ap);
    fprintf(stderr, "(see convrec %s --help)\n", cmd);
    return CLI_USAGE;
}

void cli_warn(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(cmd, "warning: ", fmt, ap);
    va_end(ap);
}

int cli_status(const char *cmd, cr_status st, const char *what)
{
    const char *d = cr_error_detail();
    if (d != NULL && d[0] != '\0') return cli_error(cmd, "%s: %s (%s)", what, d, cr_strerror(st));
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

int cli_parse_threads(const char *cmd, const char *s, int *n)
{
    *n = 0;
    if (s == NULL) return CLI_OK;
    if (cli_parse_int(s, n) != 0 || *n < 1 || *n > CLI_MAX_THREADS)
        return cli_usage(cmd, "--threads must be an integer from 1 to %d, not '%s'", CLI_MAX_THREADS, s);
    return CLI_OK;
}

int cli_check_output(const char *cmd, const char *out, const char *const *inputs, int n)
{
    struct stat so, si;
    if (out == NULL || stat(out, &so) != 0) return CLI_OK; /* nothing there yet to destroy */
    for (int i = 0; i < n; i++)
        if (inputs[i] != NULL && stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return cli_error(cmd, "%s is the same file as the input %s: refusing to overwrite an input", out,
                             inputs[i]);
    return CLI_OK;
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

int cli_is_npy(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
        unsigned char m[6];
        size_t n = fread(m, 1, 6, f);
        fclose(f);
        if (n == 6) return memcmp(m, "\x93NUMPY", 6) == 0;
    }
    /* unreadable or tiny: the extension decides which reader reports it */
    size_t l = strlen(path);
    return l >= 4 && strcmp(path + l - 4, ".npy") == 0;
}

int cli_is_npy_out(const char *path)
{
    size_t l = strlen(path);
    return l >= 4 && strcmp(path + l - 4, ".npy") == 0;
}

int cli_read_array(const char *cmd, const char *path, const char *what, cr_array *a, double *rate)
{
    cr_status st;
    *rate = 0.0;
    if (cli_is_npy(path)) {
        st = cr_npy_read(path, a);
    } else {
        cr_audio_info info;
        st = cr_audio_read(path, a, &info);
        if (st == CR_OK) *rate = info.rate;
    }
    if (st != CR_OK) return cli_status(cmd, st, what);
    return CLI_OK;
}

int cli_parse_rate(const char *cmd, const char *s, double *rate)
{
    if (s == NULL) return CLI_OK;
    if (cli_parse_double(s, rate) != 0 || !(*rate > 0) || *rate > 1e9)
        return cli_usage(cmd, "--rate must be a sample rate in Hz (a positive number), not '%s'", s);
    return CLI_OK;
}

int cli_merge_rate(const char *cmd, const char *path, double file_rate, double *rate)
{
    if (file_rate > 0 && *rate > 0 && file_rate != *rate)
        return cli_error(cmd, "%s is sampled at %g Hz but --rate says %g Hz", path, file_rate, *rate);
    if (file_rate > 0) *rate = file_rate;
    return CLI_OK;
}

int cli_is_safetensors(const char *path)
{
    size_t n = strlen(path);
    return n >= 12 && strcasecmp(path + n - 12, ".safetensors") == 0;
}

/* "name (F32, 64x1x1024), ..." of a listing's n tensors, in buf (cut
 * short with "..." when it does not fit). */
static void list_tensors(const cr_tensor_info *t, size_t n, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < n && len + 4 < size; i++) {
        char shape[96] = "";
        for (int d = 0; d < t[i].ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%zu", d ? "x" : "",
                     t[i].shape[d]);
        int w = snprintf(buf + len, size - len, "%s%s (%s, %s)", i ? ", " : "", t[i].name,
                         t[i].dtype, t[i].ndim ? shape : "scalar");
        if (w < 0 || (size_t)w >= size - len) {
            snprintf(buf + (len < size - 4 ? len : size - 4), 4, "...");
            break;
        }
        len += (size_t)w;
    }
    if (n == 0) snprintf(buf, size, "none");
}

int cli_load_kernels(const char *cmd, const char *path, const char *tensor, double **h, size_t *C,
                     size_t *L, double *rate)
{
    cr_array a;
    double r = 0.0;
    int rc;
    if (tensor != NULL && cli_is_npy(path)) {
        return cli_usage(cmd, "--tensor NAME picks a tensor of a safetensors checkpoint; %s is a .npy "
                         "array (leave --tensor out)", path);
    } else if (tensor != NULL) {
        /* one named tensor of a checkpoint */
        cr_status st = cr_safetensors_read(path, tensor, CR_FLOAT64, &a);
        if (st != CR_OK) return cli_status(cmd, st, "reading kernels");
    } else if (cli_is_safetensors(path)) {
        cr_tensor_info *t = NULL;
        size_t n = 0;
        cr_status st = cr_safetensors_list(path, &t, &n);
        if (st != CR_OK) return cli_status(cmd, st, "reading kernels");
        char names[2048];
        list_tensors(t, n, names, sizeof names);
        free(t);
        return cli_usage(cmd, "%s is a safetensors file: name the kernels' tensor with --tensor NAME "
                         "(tensors present: %s)", path, names);
    } else if ((rc = cli_read_array(cmd, path, "reading kernels", &a, &r)) != CLI_OK) {
        return rc;
    }
    if (rate != NULL) *rate = r;
    if (a.ndim > 2) {
        int nd = a.ndim;
        cr_array_free(&a);
        return cli_error(cmd, "%s: kernels must have shape (L,) or (C, L), got %d dimensions", path, nd);
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

cr_array cli_one_batch(const cr_array *a)
{
    cr_array v = *a;
    if (v.ndim == 3) {
        v.ndim = 2;
        v.shape[0] = v.shape[1];
        v.shape[1] = v.shape[2];
        v.shape[2] = 1;
    }
    return v;
}

void cli_signal_dims(const cr_array *u, size_t *B, size_t *C, size_t *T)
{
    *B = u->ndim == 3 ? u->shape[0] : 1;
    *C = u->ndim == 1 ? 1 : u->shape[u->ndim - 2];
    *T = u->shape[u->ndim - 1];
}
