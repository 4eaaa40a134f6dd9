/* convrec fit / kernel / hsv / info: from kernels to models and back. */
#include "args.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_horizon(const char *cmd, const char *s, cr_horizon *h)
{
    if (s == NULL) return CLI_OK;
    if (strcmp(s, "window") == 0) *h = CR_HORIZON_WINDOW;
    else if (strcmp(s, "infinite") == 0) *h = CR_HORIZON_INFINITE;
    else return cli_usage(cmd, "--horizon must be 'window' or 'infinite', not '%s'", s);
    return CLI_OK;
}

static const char *method_name(cr_method m)
{
    switch (m) {
    case CR_METHOD_AUTO: return "auto";
    case CR_METHOD_BT: return "bt";
    case CR_METHOD_HNA: return "hna";
    case CR_METHOD_PENCIL: return "pencil";
    case CR_METHOD_NONE: return "none";
    }
    return "?";
}

static const char *horizon_name(cr_horizon h)
{
    return h == CR_HORIZON_INFINITE ? "infinite" : "window";
}

/* ---- progress on stderr ---- */
/* A progress bar, only when stderr is a terminal (scripts get a quiet
 * stderr that holds errors only). */
typedef struct progress {
    int last; /* last percentage shown */
} progress;

static void show_progress(void *ctx, size_t done, size_t total)
{
    progress *p = ctx;
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
    if (pct == p->last) return;
    int w = 40, fill = pct * w / 100;
    fprintf(stderr, "\rfitting [%.*s%*s] %3d%% (%zu/%zu)", fill, "########################################",
            w - fill, "", pct, done, total);
    if (done == total) fputc('\n', stderr);
    p->last = pct;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median and max of the finite values of n numbers; returns the count */
static size_t med_max(const double *v, size_t n, size_t stride, double *med, double *mx)
{
    double *t = malloc((n ? n : 1) * sizeof *t);
    size_t k = 0;
    if (t == NULL) return 0;
    for (size_t i = 0; i < n; i++) {
        double x = v[i * stride];
        if (isfinite(x)) t[k++] = x;
    }
    if (k) {
        qsort(t, k, sizeof *t, cmp_double);
        *med = k % 2 ? t[k / 2] : 0.5 * (t[k / 2 - 1] + t[k / 2]);
        *mx = t[k - 1];
    } else {
        *med = *mx = NAN;
    }
    free(t);
    return k;
}

static void print_summary(FILE *f, const cr_model *m)
{
    cr_model_view v;
    if (cr_model_get_view(m, &v) != CR_OK) return;
    size_t C = v.C;
    double *col = malloc(C * 4 * sizeof *col);
    if (col == NULL) return;
    size_t omin = SIZE_MAX, omax = 0;
    double rad = 0;
    for (size_t c = 0; c < C; c++) {
        const cr_fit_record *r = &v.record[c];
        size_t o = cr_model_order(m, c);
        if (o < omin) omin = o;
        if (o > omax) omax = o;
        double sr = cr_model_spectral_radius(m, c);
        if (sr > rad) rad = sr;
        col[c] = r->err_window;
        col[C + c] = r->err_infinite;
        col[2 * C + c] = r->err_hinf / r->sigma_next;
        col[3 * C + c] = r->err_hinf <= r->bt_bound * (1 + 1e-9) ? 1.0 : 0.0;
    }
    double med, mx;
    fprintf(f, "channels %zu  method %s  horizon %s  order %zu..%zu  max |pole| %.9f\n", C,
            method_name(v.method), horizon_name(v.horizon), omin, omax, rad);
    if (med_max(col, C, 1, &med, &mx)) fprintf(f, "window l2 error    median %.3e  max %.3e\n", med, mx);
    if (med_max(col + C, C, 1, &med, &mx)) fprintf(f, "infinite l2 error  median %.3e  max %.3e\n", med, mx);
    if (med_max(col + 2 * C, C, 1, &med, &mx))
        fprintf(f, "H-inf / sigma_N+1  median %.3f  max %.3f\n", med, mx);
    size_t within = 0;
    for (size_t c = 0; c < C; c++) within += col[3 * C + c] > 0;
    fprintf(f, "H-inf within the balanced-truncation bound 2*sum(sigma_i>N): %zu of %zu channels\n", within, C);
    free(col);
}

int cmd_fit(int argc, char **argv)
{
    const char *out = NULL, *order = NULL, *tol = NULL, *horizon = NULL, *method = NULL;
    const char *margin = NULL, *maxo = NULL, *threads = NULL;
    int quiet = 0;
    args a = {.cmd = "fit"};
    const args_opt opts[] = {{"-o", &out, NULL},           {"--order", &order, NULL},
                             {"--tol", &tol, NULL},        {"--horizon", &horizon, NULL},
                             {"--method", &method, NULL},  {"--margin", &margin, NULL},
                             {"--max-order", &maxo, NULL}, {"--threads", &threads, NULL},
                             {"--quiet", NULL, &quiet},    {"-q", NULL, &quiet},
                             {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != CLI_OK) return rc;
    if (a.npos != 1 || out == NULL)
        return cli_usage(a.cmd, "usage: convrec fit KERNELS.npy -o MODEL.safetensors [--order N | --tol EPS]");
    cr_fit_options o;
    cr_fit_options_default(&o);
    if (order && tol) return cli_usage(a.cmd, "give --order or --tol, not both");
    if (order && (cli_parse_size(order, &o.order) || o.order == 0))
        return cli_usage(a.cmd, "--order must be a positive integer, not '%s'", order);
    if (tol && (cli_parse_double(tol, &o.tol) || !(o.tol > 0)))
        return cli_usage(a.cmd, "--tol must be a positive number, not '%s'", tol);
    if (!order && !tol) o.tol = 1e-3;
    if (order) o.tol = 0;
    if ((rc = parse_horizon(a.cmd, horizon, &o.horizon)) != CLI_OK) return rc;
    if (method) {
        if (strcmp(method, "auto") == 0) o.method = CR_METHOD_AUTO;
        else if (strcmp(method, "bt") == 0) o.method = CR_METHOD_BT;
        else if (strcmp(method, "hna") == 0) o.method = CR_METHOD_HNA;
        else if (strcmp(method, "pencil") == 0) o.method = CR_METHOD_PENCIL;
        else return cli_usage(a.cmd, "--method must be auto, bt, hna or pencil, not '%s'", method);
    }
    if (margin && (cli_parse_double(margin, &o.margin) || !(o.margin >= 0) || !(o.margin < 1)))
        return cli_usage(a.cmd, "--margin must be in [0, 1), not '%s'", margin);
    if (maxo && (cli_parse_size(maxo, &o.max_order) || o.max_order == 0))
        return cli_usage(a.cmd, "--max-order must be a positive integer");
    if (threads && (cli_parse_int(threads, &o.nthreads) || o.nthreads < 1))
        return cli_usage(a.cmd, "--threads must be >= 1");

    double *h;
    size_t C, L;
    if ((rc = cli_load_kernels(a.cmd, a.pos[0], &h, &C, &L)) != CLI_OK) return rc;
    progress pr = {-1};
    if (!quiet && isatty(STDERR_FILENO)) {
        o.progress = show_progress;
        o.progress_ctx = &pr;
    }
    cr_model *m = NULL;
    cr_status st = cr_fit(h, C, L, &o, &m);
    free(h);
    if (st != CR_OK) return cli_status(a.cmd, st, a.pos[0]);
    st = cr_model_save(m, out);
    if (st != CR_OK) {
        cr_model_destroy(m);
        return cli_status(a.cmd, st, "saving the model");
    }
    if (!quiet) print_summary(stdout, m);
    cr_model_destroy(m);
    return CLI_OK;
}

int cmd_kernel(int argc, char **argv)
{
    const char *out = NULL, *length = NULL;
    args a = {.cmd = "kernel"};
    const args_opt opts[] = {{"-o", &out, NULL}, {"--length", &length, NULL}, {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != CLI_OK) return rc;
    if (a.npos != 1 || out == NULL || length == NULL)
        return cli_usage(a.cmd, "usage: convrec kernel MODEL.safetensors --length L -o OUT.npy");
    size_t L;
    if (cli_parse_size(length, &L) || L == 0) return cli_usage(a.cmd, "--length must be a positive integer");
    cr_model *m;
    cr_status st = cr_model_load(&m, a.pos[0]);
    if (st != CR_OK) return cli_status(a.cmd, st, "loading the model");
    cr_model_view v;
    cr_model_get_view(m, &v);
    size_t n;
    double *k = NULL;
    n = v.C * L;
    if (L > ((size_t)1 << 34) / v.C)
        st = CR_EOVERFLOW;
    else if ((k = malloc(n * sizeof *k)) == NULL)
        st = CR_ENOMEM;
    else
        st = cr_model_kernel(m, L, k);
    if (st == CR_OK) {
        cr_array arr = {CR_FLOAT64, 2, {v.C, L, 1}, k};
        st = cr_npy_write(out, &arr);
    }
    rc = st == CR_OK ? CLI_OK
                     : (st == CR_EOVERFLOW ? cli_error(a.cmd, "--length %zu is too large for %zu channels", L, v.C)
                                           : cli_status(a.cmd, st, "computing the kernels"));
    free(k);
    cr_model_destroy(m);
    return rc;
}

int cmd_hsv(int argc, char **argv)
{
    const char *out = NULL, *nstr = NULL, *horizon = NULL;
    int json = 0;
    args a = {.cmd = "hsv"};
    const args_opt opts[] = {{"-o", &out, NULL},           {"-n", &nstr, NULL}, {"--horizon", &horizon, NULL},
                             {"--json", NULL, &json},      {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != CLI_OK) return rc;
    if (a.npos != 1) return cli_usage(a.cmd, "usage: convrec hsv KERNELS.npy [-n K] [-o OUT.npy]");
    size_t K = 10;
    if (nstr && (cli_parse_size(nstr, &K) || K == 0 || K > 100000))
        return cli_usage(a.cmd, "-n must be a positive integer (at most 100000)");
    cr_horizon hz = CR_HORIZON_INFINITE;
    if ((rc = parse_horizon(a.cmd, horizon, &hz)) != CLI_OK) return rc;
    double *h;
    size_t C, L;
    if ((rc = cli_load_kernels(a.cmd, a.pos[0], &h, &C, &L)) != CLI_OK) return rc;
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
        printf("{\"horizon\": \"%s\", \"hsv\": [", horizon_name(hz));
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

static cJSON *json_num(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull();
}

static int info_json(const cr_model *m, const char *path)
{
    cr_model_view v;
    cr_model_get_view(m, &v);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddStringToObject(root, "method", method_name(v.method));
    cJSON_AddStringToObject(root, "horizon", horizon_name(v.horizon));
    cJSON_AddNumberToObject(root, "channels", (double)v.C);
    cJSON_AddNumberToObject(root, "max_modes", (double)v.M);
    cJSON *chs = cJSON_AddArrayToObject(root, "channel");
    int stable = 1;
    for (size_t c = 0; c < v.C; c++) {
        const cr_fit_record *r = &v.record[c];
        cJSON *o = cJSON_CreateObject();
        double rad = cr_model_spectral_radius(m, c);
        if (!(rad < 1)) stable = 0;
        cJSON_AddNumberToObject(o, "order", (double)cr_model_order(m, c));
        cJSON_AddItemToObject(o, "d", json_num(v.d[c]));
        cJSON_AddItemToObject(o, "spectral_radius", json_num(rad));
        cJSON_AddItemToObject(o, "stability_margin", json_num(1 - rad));
        cJSON_AddBoolToObject(o, "stable", rad < 1);
        cJSON_AddNumberToObject(o, "length", (double)r->length);
        cJSON_AddItemToObject(o, "err_window", json_num(r->err_window));
        cJSON_AddItemToObject(o, "err_infinite", json_num(r->err_infinite));
        cJSON_AddItemToObject(o, "err_hinf", json_num(r->err_hinf));
        cJSON_AddItemToObject(o, "h_norm", json_num(r->h_norm));
        cJSON_AddItemToObject(o, "sigma_next", json_num(r->sigma_next));
        cJSON_AddItemToObject(o, "bt_bound", json_num(r->bt_bound));
        cJSON_AddItemToObject(o, "hinf_over_sigma", json_num(r->err_hinf / r->sigma_next));
        cJSON_AddBoolToObject(o, "within_bt_bound", r->err_hinf <= r->bt_bound * (1 + 1e-9));
        cJSON *modes = cJSON_AddArrayToObject(o, "modes");
        for (size_t j = 0; j < v.M; j++) {
            size_t i = c * v.M + j;
            if (v.kind[i] == CR_MODE_UNUSED) continue;
            cJSON *md = cJSON_CreateObject();
            cJSON_AddStringToObject(md, "kind", v.kind[i] == CR_MODE_PAIR ? "pair" : "real");
            cJSON *p = cJSON_AddArrayToObject(md, "pole");
            cJSON_AddItemToArray(p, json_num(v.pole_re[i]));
            cJSON_AddItemToArray(p, json_num(v.pole_im[i]));
            cJSON *q = cJSON_AddArrayToObject(md, "residue");
            cJSON_AddItemToArray(q, json_num(v.res_re[i]));
            cJSON_AddItemToArray(q, json_num(v.res_im[i]));
            cJSON_AddItemToArray(modes, md);
        }
        cJSON_AddItemToArray(chs, o);
    }
    cJSON_AddBoolToObject(root, "stable", stable);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (s == NULL) return cli_error("info", "out of memory");
    puts(s);
    free(s);
    return CLI_OK;
}

int cmd_info(int argc, char **argv)
{
    int json = 0;
    args a = {.cmd = "info"};
    const args_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != CLI_OK) return rc;
    if (a.npos != 1) return cli_usage(a.cmd, "usage: convrec info MODEL.safetensors [--json]");
    cr_model *m;
    cr_status st = cr_model_load(&m, a.pos[0]);
    if (st != CR_OK) return cli_status(a.cmd, st, "loading the model");
    if (json) {
        rc = info_json(m, a.pos[0]);
    } else {
        cr_model_view v;
        cr_model_get_view(m, &v);
        printf("%s\n", a.pos[0]);
        print_summary(stdout, m);
        printf("%7s %5s %11s %10s %10s %10s %10s %10s %8s\n", "channel", "order", "max|pole|", "err_window",
               "err_inf", "H-inf", "sigma_N+1", "bt_bound", "H/sigma");
        for (size_t c = 0; c < v.C; c++) {
            const cr_fit_record *r = &v.record[c];
            printf("%7zu %5zu %11.8f %10.3e %10.3e %10.3e %10.3e %10.3e %8.3f\n", c, cr_model_order(m, c),
                   cr_model_spectral_radius(m, c), r->err_window, r->err_infinite, r->err_hinf, r->sigma_next,
                   r->bt_bound, r->err_hinf / r->sigma_next);
        }
        rc = CLI_OK;
    }
    cr_model_destroy(m);
    return rc;
}
