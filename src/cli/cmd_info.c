/* convrec info: what a model file holds (orders, poles, errors, Hankel
 * bounds, stability), and the summary that fit prints too. */
#include "args.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: convrec info MODEL.safetensors [--json]\n"
    "\n"
    "Describe a model: per channel its order, largest |pole|, errors over the\n"
    "window and the infinite horizon, H-infinity error, sigma_N+1 and the\n"
    "balanced-truncation bound; when the sample rate is known, the third-octave\n"
    "band errors (largest and RMS over the bands from 20 Hz to rate/2, in dB,\n"
    "and the worst band). Unstable models are shown too (and marked).\n"
    "\n"
    "  --json                 everything, poles and residues included, as JSON\n"
    "  -h, --help             show this help\n";

const char *cli_method_name(cr_method m)
{
    const char *s = cr_method_name(m);
    return s ? s : "?";
}

const char *cli_horizon_name(cr_horizon h)
{
    return h == CR_HORIZON_INFINITE ? "infinite" : "window";
}

int cli_parse_horizon(const char *cmd, const char *s, cr_horizon *h)
{
    if (s == NULL) return CLI_OK;
    if (strcmp(s, "window") == 0) *h = CR_HORIZON_WINDOW;
    else if (strcmp(s, "infinite") == 0) *h = CR_HORIZON_INFINITE;
    else return cli_usage(cmd, "--horizon must be 'window' or 'infinite', not '%s'", s);
    return CLI_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median and max of the finite values of n numbers, sorted in t (room for
 * n); returns the count */
static size_t med_max(const double *v, size_t n, size_t stride, double *t, double *med, double *mx)
{
    size_t k = 0;
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
    return k;
}

/* Returns 0, or -1 (nothing printed) when out of memory. */
int cli_print_summary(FILE *f, const cr_model *m)
{
    cr_model_view v;
    if (cr_model_get_view(m, &v) != CR_OK) return -1;
    size_t C = v.C;
    double *col = malloc(C * 7 * sizeof *col), *t = col + 6 * C; /* t: med_max's room */
    if (col == NULL) return -1;
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
        col[4 * C + c] = r->band_db_max;
        col[5 * C + c] = r->band_db_rms;
    }
    double med, mx;
    fprintf(f, "channels %zu  method %s  horizon %s  order %zu..%zu  max |pole| %.9f%s\n", C,
            cli_method_name(v.method), cli_horizon_name(v.horizon), omin, omax, rad,
            rad < 1 ? "" : "  UNSTABLE");
    if (med_max(col, C, 1, t, &med, &mx)) fprintf(f, "window l2 error    median %.3e  max %.3e\n", med, mx);
    if (med_max(col + C, C, 1, t, &med, &mx)) fprintf(f, "infinite l2 error  median %.3e  max %.3e\n", med, mx);
    if (med_max(col + 2 * C, C, 1, t, &med, &mx))
        fprintf(f, "H-inf / sigma_N+1  median %.3f  max %.3f\n", med, mx);
    size_t within = 0;
    for (size_t c = 0; c < C; c++) within += col[3 * C + c] > 0;
    fprintf(f, "H-inf within the balanced-truncation bound 2*sum(sigma_i>N): %zu of %zu channels\n", within, C);
    if (v.rate > 0) {
        fprintf(f, "sample rate %g Hz\n", v.rate);
        if (med_max(col + 4 * C, C, 1, t, &med, &mx)) {
            size_t w = 0;
            for (size_t c = 1; c < C; c++)
                if (v.record[c].band_db_max > v.record[w].band_db_max) w = c;
            fprintf(f, "1/3-octave band error (20 Hz..%g Hz)  max over bands: median %.2f dB  max %.2f dB "
                    "(channel %zu, band %.0f Hz)\n", v.rate / 2, med, mx, w, v.record[w].band_worst_hz);
        }
        if (med_max(col + 5 * C, C, 1, t, &med, &mx))
            fprintf(f, "1/3-octave band error  rms over bands: median %.2f dB  max %.2f dB\n", med, mx);
    }
    free(col);
    return 0;
}

static cJSON *json_num(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull();
}

/* Attach item (may be NULL: a failed allocation) under key, or free it:
 * a failure clears *ok and leaks nothing (the root's delete frees the rest). */
static void put(cJSON *o, const char *key, cJSON *item, int *ok)
{
    if (*ok && item && (key ? cJSON_AddItemToObject(o, key, item) : cJSON_AddItemToArray(o, item)))
        return;
    cJSON_Delete(item);
    *ok = 0;
}

static int info_json(const cr_model *m, const char *path)
{
    cr_model_view v;
    cr_model_get_view(m, &v);
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    put(root, "file", cJSON_CreateString(path), &ok);
    put(root, "method", cJSON_CreateString(cli_method_name(v.method)), &ok);
    put(root, "horizon", cJSON_CreateString(cli_horizon_name(v.horizon)), &ok);
    put(root, "channels", cJSON_CreateNumber((double)v.C), &ok);
    put(root, "max_modes", cJSON_CreateNumber((double)v.M), &ok);
    put(root, "sample_rate", json_num(v.rate > 0 ? v.rate : NAN), &ok);
    cJSON *chs = ok ? cJSON_AddArrayToObject(root, "channel") : NULL;
    ok = ok && chs;
    int stable = 1;
    for (size_t c = 0; ok && c < v.C; c++) {
        const cr_fit_record *r = &v.record[c];
        cJSON *o = cJSON_CreateObject();
        put(chs, NULL, o, &ok);
        double rad = cr_model_spectral_radius(m, c);
        if (!(rad < 1)) stable = 0;
        put(o, "order", cJSON_CreateNumber((double)cr_model_order(m, c)), &ok);
        put(o, "d", json_num(v.d[c]), &ok);
        put(o, "spectral_radius", json_num(rad), &ok);
        put(o, "stability_margin", json_num(1 - rad), &ok);
        put(o, "stable", cJSON_CreateBool(rad < 1), &ok);
        put(o, "length", cJSON_CreateNumber((double)r->length), &ok);
        put(o, "err_window", json_num(r->err_window), &ok);
        put(o, "err_infinite", json_num(r->err_infinite), &ok);
        put(o, "err_hinf", json_num(r->err_hinf), &ok);
        put(o, "h_norm", json_num(r->h_norm), &ok);
        put(o, "sigma_next", json_num(r->sigma_next), &ok);
        put(o, "bt_bound", json_num(r->bt_bound), &ok);
        put(o, "hinf_over_sigma", json_num(r->err_hinf / r->sigma_next), &ok);
        put(o, "within_bt_bound", cJSON_CreateBool(r->err_hinf <= r->bt_bound * (1 + 1e-9)), &ok);
        put(o, "band_db_max", json_num(r->band_db_max), &ok);
        put(o, "band_db_rms", json_num(r->band_db_rms), &ok);
        put(o, "band_worst_hz", json_num(r->band_worst_hz), &ok);
        cJSON *modes = ok ? cJSON_AddArrayToObject(o, "modes") : NULL;
        ok = ok && modes;
        for (size_t j = 0; ok && j < v.M; j++) {
            size_t i = c * v.M + j;
            if (v.kind[i] == CR_MODE_UNUSED) continue;
            cJSON *md = cJSON_CreateObject();
            put(modes, NULL, md, &ok);
            put(md, "kind", cJSON_CreateString(v.kind[i] == CR_MODE_PAIR ? "pair" : "real"), &ok);
            cJSON *p = ok ? cJSON_AddArrayToObject(md, "pole") : NULL;
            ok = ok && p;
            put(p, NULL, json_num(v.pole_re[i]), &ok);
            put(p, NULL, json_num(v.pole_im[i]), &ok);
            cJSON *q = ok ? cJSON_AddArrayToObject(md, "residue") : NULL;
            ok = ok && q;
            put(q, NULL, json_num(v.res_re[i]), &ok);
            put(q, NULL, json_num(v.res_im[i]), &ok);
        }
    }
    put(root, "stable", cJSON_CreateBool(stable), &ok);
    char *s = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (s == NULL) return cli_error("info", "out of memory");
    puts(s);
    free(s);
    return CLI_OK;
}

int cmd_info(int argc, char **argv)
{
    int json = 0;
    args a = {.cmd = "info", .help = help};
    const args_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 1) return cli_usage(a.cmd, "usage: convrec info MODEL.safetensors [--json]");
    cr_model *m;
    /* an unstable model is shown (and marked), not refused: this is where one looks at it */
    cr_status st = cr_model_load_ex(&m, a.pos[0], CR_LOAD_ALLOW_UNSTABLE);
    if (st != CR_OK) return cli_status(a.cmd, st, "loading the model");
    if (json) {
        rc = info_json(m, a.pos[0]);
    } else {
        cr_model_view v;
        cr_model_get_view(m, &v);
        printf("%s\n", a.pos[0]);
        if (cli_print_summary(stdout, m) != 0) {
            cr_model_destroy(m);
            return cli_error(a.cmd, "out of memory");
        }
        int bands = v.rate > 0;
        printf("%7s %5s %11s %10s %10s %10s %10s %10s %8s", "channel", "order", "max|pole|", "err_window",
               "err_inf", "H-inf", "sigma_N+1", "bt_bound", "H/sigma");
        if (bands) printf(" %8s %8s %8s", "band_max", "band_rms", "worst_Hz");
        printf("\n");
        for (size_t c = 0; c < v.C; c++) {
            const cr_fit_record *r = &v.record[c];
            printf("%7zu %5zu %11.8f %10.3e %10.3e %10.3e %10.3e %10.3e %8.3f", c, cr_model_order(m, c),
                   cr_model_spectral_radius(m, c), r->err_window, r->err_infinite, r->err_hinf, r->sigma_next,
                   r->bt_bound, r->err_hinf / r->sigma_next);
            if (bands) printf(" %8.2f %8.2f %8.0f", r->band_db_max, r->band_db_rms, r->band_worst_hz);
            printf("\n");
        }
        rc = CLI_OK;
    }
    cr_model_destroy(m);
    return rc;
}
