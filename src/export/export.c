/* Export of a model for embedded targets: self-contained C99 source (real
 * 2x2 rotation block per pair, MATH.md "Real 2x2 block recurrence"),
 * second-order sections (scipy and CMSIS-DSP df2T layouts, MATH.md
 * "Modal <-> second-order sections") and a readable JSON dump. */
#include "export/export.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------
 * Shared helpers (export.h)
 * --------------------------------------------------------------------- */
void cr__sb_printf(cr__sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->n + (size_t)w < b->cap) {
            b->n += (size_t)w;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + (size_t)w + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
}

int cr__export_valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64) return 0;
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

cr_status cr__export_check_model(const cr_model *m, const char *who)
{
    if (!m) return cr__fail(CR_EINVAL, "%s: NULL model", who);
    for (size_t i = 0; i < m->C * m->M; i++)
        if (!isfinite(m->pole_re[i]) || !isfinite(m->pole_im[i]) || !isfinite(m->res_re[i]) ||
            !isfinite(m->res_im[i]))
            return cr__fail(CR_ENONFINITE, "%s: non-finite pole or residue", who);
    return CR_OK;
}

/* ---------------------------------------------------------------------
 * C source
 * --------------------------------------------------------------------- */

/* A coefficient literal that round-trips in the target precision. */
static void sb_num(cr__sbuf *b, double x, int dbl)
{
    char t[40];
    snprintf(t, sizeof t, dbl ? "%.17g" : "%.9g", dbl ? x : (double)(float)x);
    /* "1" would be an integer constant (and "1f" invalid): make it "1.0" */
    const char *dot = strpbrk(t, ".eE") ? "" : ".0";
    cr__sb_printf(b, "%s%s%s", t, dot, dbl ? "" : "f");
}

static void sb_array(cr__sbuf *b, const char *type, const char *name, const double *v, size_t n,
                     int dbl)
{
    cr__sb_printf(b, "static const %s %s[%zu] = {", type, name, n ? n : 1);
    if (n == 0) cr__sb_printf(b, "0");
    for (size_t i = 0; i < n; i++) {
        cr__sb_printf(b, "%s", i ? (i % 4 ? ", " : ",\n    ") : "\n    ");
        sb_num(b, v[i], dbl);
    }
    cr__sb_printf(b, "%s};\n", n ? "\n" : "");
}

static void sb_index_array(cr__sbuf *b, const char *name, const size_t *v, size_t n)
{
    cr__sb_printf(b, "static const unsigned long %s[%zu] = {", name, n);
    for (size_t i = 0; i < n; i++) cr__sb_printf(b, "%s%zuUL", i ? ", " : "", v[i]);
    cr__sb_printf(b, "};\n");
}

cr_status cr_export_c(const cr_model *m, const char *dir, const char *name,
                      cr_export_precision precision)
{
    cr_status s = cr__export_check_model(m, "cr_export_c");
    if (s != CR_OK) return s;
    if (!dir || !*dir) return cr__fail(CR_EINVAL, "cr_export_c: NULL or empty folder");
    if (!cr__export_valid_name(name))
        return cr__fail(CR_EINVAL,
                        "cr_export_c: name '%s' is not a C identifier of at most 64 characters",
                        name ? name : "(null)");
    if (precision != CR_EXPORT_FLOAT && precision != CR_EXPORT_DOUBLE)
        return cr__fail(CR_EINVAL, "cr_export_c: unknown precision %d", (int)precision);
    s = cr_model_check_stable(m, 0.0);
    if (s != CR_OK) return s; /* an exported filter runs unattended: refuse to diverge */
    const int dbl = precision == CR_EXPORT_DOUBLE;
    const char *T = dbl ? "double" : "float";
    const size_t C = m->C, M = m->M;

    /* Coefficients, struct-of-arrays over all channels; channel c owns
     * pairs pair_off[c] .. pair_off[c+1]-1 (likewise real modes). */
    size_t np = 0, nr = 0;
    for (size_t i = 0; i < C * M; i++) {
        np += m->kind[i] == CR_MODE_PAIR;
        nr += m->kind[i] == CR_MODE_REAL;
    }
    double *pa = malloc((4 * np + 2 * nr + 1) * sizeof(double));
    size_t *off = malloc(2 * (C + 1) * sizeof(size_t));
    cr__sbuf h = {0}, c = {0};
    if (!pa || !off) {
        free(pa);
        free(off);
        return cr__fail(CR_ENOMEM, "cr_export_c: out of memory");
    }
    double *pb = pa + np, *pgr = pa + 2 * np, *pgi = pa + 3 * np;
    double *rl = pa + 4 * np, *rg = rl + nr;
    size_t *poff = off, *roff = off + C + 1, ip = 0, ir = 0;
    for (size_t ch = 0; ch < C; ch++) {
        poff[ch] = ip;
        roff[ch] = ir;
        for (size_t j = 0; j < M; j++) {
            size_t i = ch * M + j;
            if (m->kind[i] == CR_MODE_PAIR) {
                pa[ip] = m->pole_re[i];
                pb[ip] = m->pole_im[i];
                pgr[ip] = 2.0 * m->res_re[i];
                pgi[ip] = 2.0 * m->res_im[i];
                ip++;
            } else if (m->kind[i] == CR_MODE_REAL) {
                rl[ir] = m->pole_re[i];
                rg[ir] = m->res_re[i];
                ir++;
            }
        }
    }
    poff[C] = ip;
    roff[C] = ir;

    char up[80];
    cr__export_upper(name, up);

    /* ---- header ---- */
    cr__sb_printf(&h,
              "/* %s: a %zu-channel IIR filter exported by convrec %s.\n"
              " * Modal state-space recurrence in real arithmetic (%s precision):\n"
              " * per channel, y[t] = d u[t] + sum of the mode outputs (zero latency).\n"
              " * C99, no allocation, no libm, no dependency on convrec. */\n"
              "#ifndef %s_H\n#define %s_H\n\n#include <stddef.h>\n\n",
              name, C, cr_version(), T, up, up);
    cr__sb_printf(&h,
              "#define %s_CHANNELS %zu\n#define %s_PAIRS %zu /* conjugate pairs, all channels */\n"
              "#define %s_REALS %zu /* real modes, all channels */\n\n",
              up, C, up, np, up, nr);
    cr__sb_printf(&h,
              "/* Filter state: zero it with %s_init; place it anywhere (static,\n"
              " * stack, a DMA-safe region). pair[2j], pair[2j+1] are (Re, Im) of pair\n"
              " * j's state, real[j] the state of real mode j. */\n"
              "typedef struct %s_state {\n    %s pair[%zu];\n    %s real[%zu];\n} %s_state;\n\n",
              name, name, T, np ? 2 * np : 1, T, nr ? nr : 1, name);
    cr__sb_printf(&h,
              "/* Reset the state (no input yet). */\n"
              "void %s_init(%s_state *s);\n"
              "/* Filter n samples of every channel. in and out are channel-major\n"
              " * (%s_CHANNELS, n) buffers: sample t of channel c at [c * n + t].\n"
              " * Successive calls continue the stream. in and out may be the same\n"
              " * buffer. */\n"
              "void %s_process(%s_state *s, const %s *in, %s *out, size_t n);\n\n"
              "#endif\n",
              name, name, up, name, name, T, T);

    /* ---- source ---- */
    cr__sb_printf(&c, "/* %s: generated by convrec %s; see %s.h. */\n#include \"%s.h\"\n\n", name,
              cr_version(), name, name);
    cr__sb_printf(&c,
              "/* Pair j: pole a + ib, output weights gr = 2 Re r, gi = 2 Im r.\n"
              " * Real mode j: pole l, residue g. */\n");
    sb_array(&c, T, "pair_a", pa, np, dbl);
    sb_array(&c, T, "pair_b", pb, np, dbl);
    sb_array(&c, T, "pair_gr", pgr, np, dbl);
    sb_array(&c, T, "pair_gi", pgi, np, dbl);
    sb_array(&c, T, "real_l", rl, nr, dbl);
    sb_array(&c, T, "real_g", rg, nr, dbl);
    sb_array(&c, T, "feed_d", m->d, C, dbl);
    sb_index_array(&c, "pair_off", poff, C + 1);
    sb_index_array(&c, "real_off", roff, C + 1);
    cr__sb_printf(&c,
              "\nvoid %s_init(%s_state *s)\n{\n    size_t j;\n"
              "    for (j = 0; j < sizeof s->pair / sizeof s->pair[0]; j++) s->pair[j] = 0;\n"
              "    for (j = 0; j < sizeof s->real / sizeof s->real[0]; j++) s->real[j] = 0;\n}\n\n",
              name, name);
    cr__sb_printf(&c,
              "void %s_process(%s_state *s, const %s *in, %s *out, size_t n)\n{\n"
              "    size_t c, t, j;\n"
              "    for (c = 0; c < %s_CHANNELS; c++) {\n"
              "        const %s *u = in + c * n;\n"
              "        %s *y = out + c * n;\n"
              "        const %s d = feed_d[c];\n"
              "        for (t = 0; t < n; t++) {\n"
              "            const %s x = u[t];\n"
              "            %s acc = d * x;\n"
              "            /* output from the state before the update (zero latency:\n"
              "             * x reaches the modes one sample later, through d now) */\n"
              "            for (j = pair_off[c]; j < pair_off[c + 1]; j++) {\n"
              "                const %s sr = s->pair[2 * j], si = s->pair[2 * j + 1];\n"
              "                acc += pair_gr[j] * sr - pair_gi[j] * si;\n"
              "                s->pair[2 * j] = pair_a[j] * sr - pair_b[j] * si + x;\n"
              "                s->pair[2 * j + 1] = pair_b[j] * sr + pair_a[j] * si;\n"
              "            }\n"
              "            for (j = real_off[c]; j < real_off[c + 1]; j++) {\n"
              "                const %s sr = s->real[j];\n"
              "                acc += real_g[j] * sr;\n"
              "                s->real[j] = real_l[j] * sr + x;\n"
              "            }\n"
              "            y[t] = acc;\n"
              "        }\n"
              "    }\n}\n",
              name, name, T, T, up, T, T, T, T, T, T, T);
    free(pa);
    free(off);
    return cr__export_write_pair(dir, name, &h, &c, "cr_export_c");
}

void cr_export_options_default(cr_export_options *o)
{
    if (!o) return;
    o->numeric = CR_NUMERIC_FLOAT;
    o->max_error = 0.0;
    o->output_shift = CR_EXPORT_SHIFT_AUTO;
}

cr_status cr_export_c_ex(const cr_model *m, const char *dir, const char *name,
                         const cr_export_options *o, cr_export_report *report)
{
    cr_export_options def;
    if (!o) {
        cr_export_options_default(&def);
        o = &def;
    }
    if (report) {
        report->error = report->coef_error = report->noise = NAN;
        report->budget = report->mode_error = NAN;
        report->channel = report->horizon = 0;
        report->mode = SIZE_MAX;
        report->output_shift = 0;
    }
    cr_status s = cr__export_check_model(m, "cr_export_c_ex");
    if (s != CR_OK) return s;
    if (!dir || !*dir) return cr__fail(CR_EINVAL, "cr_export_c_ex: NULL or empty folder");
    if (!cr__export_valid_name(name))
        return cr__fail(CR_EINVAL,
                        "cr_export_c_ex: name '%s' is not a C identifier of at most 64 characters",
                        name ? name : "(null)");
    if (!(o->max_error >= 0.0)) /* also NaN */
        return cr__fail(CR_EINVAL, "cr_export_c_ex: max_error %g must be >= 0 (0: default)",
                        o->max_error);
    if (o->output_shift != CR_EXPORT_SHIFT_AUTO && (o->output_shift < 0 || o->output_shift > 40))
        return cr__fail(CR_EINVAL, "cr_export_c_ex: output_shift %d is not in 0..40 or auto (-1)",
                        o->output_shift);
    switch (o->numeric) {
    case CR_NUMERIC_FLOAT: return cr_export_c(m, dir, name, CR_EXPORT_FLOAT);
    case CR_NUMERIC_DOUBLE: return cr_export_c(m, dir, name, CR_EXPORT_DOUBLE);
    case CR_NUMERIC_Q31:
    case CR_NUMERIC_Q15:
        s = cr_model_check_stable(m, 0.0);
        if (s != CR_OK) return s;
        return cr__export_c_fixed(m, dir, name, o, report);
    }
    return cr__fail(CR_EINVAL, "cr_export_c_ex: unknown numeric format %d", (int)o->numeric);
}

void cr__export_upper(const char *name, char *up)
{
    size_t k = 0;
    for (; name[k]; k++) up[k] = (name[k] >= 'a' && name[k] <= 'z') ? (char)(name[k] - 32) : name[k];
    up[k] = '\0';
}

cr_status cr__export_write_pair(const char *dir, const char *name, cr__sbuf *h, cr__sbuf *c,
                                const char *who)
{
    cr_status s = CR_OK;
    size_t dl = strlen(dir), nl = strlen(name);
    char *path = h->oom || c->oom ? NULL : malloc(dl + nl + 8);
    if (!path) {
        free(h->p);
        free(c->p);
        return cr__fail(CR_ENOMEM, "%s: out of memory", who);
    }
    snprintf(path, dl + nl + 8, "%s/%s.h", dir, name);
    s = cr__write_atomic(path, h->p, h->n);
    if (s == CR_OK) {
        snprintf(path, dl + nl + 8, "%s/%s.c", dir, name);
        s = cr__write_atomic(path, c->p, c->n);
        if (s != CR_OK) { /* no half export: drop the header too */
            char d0[512];
            snprintf(d0, sizeof d0, "%s", cr_error_detail());
            snprintf(path, dl + nl + 8, "%s/%s.h", dir, name);
            remove(path);
            s = cr__fail(s, "%s", d0);
        }
    }
    free(path);
    free(h->p);
    free(c->p);
    return s;
}

/* ---------------------------------------------------------------------
 * Second-order sections
 * --------------------------------------------------------------------- */

size_t cr_export_sos_count(const cr_model *m, size_t c)
{
    if (!m || c >= m->C) return 0;
    size_t n = 0;
    for (size_t j = 0; j < m->M; j++) n += m->kind[c * m->M + j] != CR_MODE_UNUSED;
    return n;
}

cr_status cr_export_sos(const cr_model *m, size_t c, cr_sos_format format, double *coef,
                        size_t cap, size_t *nsec, double *d)
{
    cr_status s = cr__export_check_model(m, "cr_export_sos");
    if (s != CR_OK) return s;
    if (c >= m->C)
        return cr__fail(CR_EINVAL, "cr_export_sos: channel %zu out of range (C = %zu)", c, m->C);
    if (format != CR_SOS_SCIPY && format != CR_SOS_CMSIS_DF2T)
        return cr__fail(CR_EINVAL, "cr_export_sos: unknown format %d", (int)format);
    size_t ns = cr_export_sos_count(m, c), w = format == CR_SOS_SCIPY ? 6 : 5;
    if (nsec) *nsec = ns;
    if (d) *d = m->d[c];
    if (ns > 0 && !coef) return cr__fail(CR_EINVAL, "cr_export_sos: NULL coefficient buffer");
    if (cap < ns)
        return cr__fail(CR_EINVAL, "cr_export_sos: room for %zu sections, %zu needed", cap, ns);
    size_t q = 0;
    for (size_t j = 0; j < m->M; j++) {
        size_t i = c * m->M + j;
        double b1, b2, a1, a2;
        if (m->kind[i] == CR_MODE_PAIR) {
            double lr = m->pole_re[i], li = m->pole_im[i];
            b1 = 2.0 * m->res_re[i];
            b2 = -2.0 * (m->res_re[i] * lr + m->res_im[i] * li); /* -2 Re(r conj lambda) */
            a1 = -2.0 * lr;
            a2 = lr * lr + li * li;
        } else if (m->kind[i] == CR_MODE_REAL) {
            b1 = m->res_re[i];
            b2 = 0.0;
            a1 = -m->pole_re[i];
            a2 = 0.0;
        } else
            continue;
        double *r = coef + w * q++;
        if (format == CR_SOS_SCIPY) {
            r[0] = 0.0;
            r[1] = b1;
            r[2] = b2;
            r[3] = 1.0;
            r[4] = a1;
            r[5] = a2;
        } else { /* CMSIS df2T: {b0, b1, b2, -a1, -a2} */
            r[0] = 0.0;
            r[1] = b1;
            r[2] = b2;
            r[3] = -a1 + 0.0;
            r[4] = -a2 + 0.0;
        }
    }
    return CR_OK;
}

/* A JSON number that round-trips exactly (cJSON's own printer may drop the
 * last bit), or null for NaN/Inf (JSON has no NaN). */
static cJSON *jnum(double x)
{
    if (!isfinite(x)) return cJSON_CreateNull();
    char t[40];
    snprintf(t, sizeof t, "%.17g", x);
    return cJSON_CreateRaw(t);
}

/* Attach item to o under key; on failure (cJSON copies the key, which may
 * fail) the item is freed, not leaked. A NULL item is a failure too. */
static int add_item(cJSON *o, const char *key, cJSON *item)
{
    if (!item) return 0;
    if (cJSON_AddItemToObject(o, key, item)) return 1;
    cJSON_Delete(item);
    return 0;
}

static int add_rows(cJSON *parent, const char *key, const double *v, size_t rows, size_t w)
{
    cJSON *a = cJSON_AddArrayToObject(parent, key);
    if (!a) return 0;
    for (size_t r = 0; r < rows; r++) {
        cJSON *row = w ? cJSON_CreateArray() : NULL;
        if (w && !row) return 0;
        for (size_t k = 0; k < (w ? w : 1); k++) {
            cJSON *x = jnum(v[r * (w ? w : 1) + k]);
            if (!x) {
                cJSON_Delete(row);
                return 0;
            }
            cJSON_AddItemToArray(w ? row : a, x);
        }
        if (w) cJSON_AddItemToArray(a, row);
    }
    return 1;
}

static cr_status write_json(cJSON *root, const char *path, const char *who)
{
    char *js = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!js) return cr__fail(CR_ENOMEM, "%s: out of memory", who);
    size_t n = strlen(js);
    js[n] = '\n'; /* replace the terminator: files end with a newline */
    cr_status s = cr__write_atomic(path, js, n + 1);
    cJSON_free(js);
    return s;
}

/* All channels' sections as a cJSON tree, or NULL (detail set). */
static cJSON *sos_json(const cr_model *m, const char *who, cr_status *st)
{
    if ((*st = cr__export_check_model(m, who)) != CR_OK) return NULL;
    double *buf = malloc((m->M ? m->M : 1) * 6 * sizeof(double));
    cJSON *root = cJSON_CreateObject();
    cJSON *chs = root ? cJSON_AddArrayToObject(root, "channels") : NULL;
    int ok = buf && chs && cJSON_AddStringToObject(root, "format", "convrec-sos") &&
             cJSON_AddStringToObject(root, "layout",
                                     "y = d u + sum of the sections run in parallel on u; "
                                     "sos rows [b0 b1 b2 a0 a1 a2] (scipy.signal); "
                                     "cmsis_df2t rows {b0 b1 b2 -a1 -a2} "
                                     "(arm_biquad_cascade_df2T_f32, one stage per section)");
    for (size_t c = 0; ok && c < m->C; c++) {
        cJSON *o = cJSON_CreateObject();
        ok = o != NULL;
        if (ok) cJSON_AddItemToArray(chs, o);
        size_t ns;
        double d;
        ok = ok && add_item(o, "d", jnum(m->d[c]));
        ok = ok && cr_export_sos(m, c, CR_SOS_SCIPY, buf, m->M, &ns, &d) == CR_OK;
        ok = ok && add_rows(o, "sos", buf, ns, 6);
        ok = ok && cr_export_sos(m, c, CR_SOS_CMSIS_DF2T, buf, m->M, &ns, &d) == CR_OK;
        ok = ok && add_rows(o, "cmsis_df2t", buf, ns, 5);
    }
    free(buf);
    if (!ok) {
        cJSON_Delete(root);
        *st = cr__fail(CR_ENOMEM, "%s: out of memory", who);
        return NULL;
    }
    return root;
}

cr_status cr_export_sos_file(const cr_model *m, const char *path)
{
    if (!path || !*path) return cr__fail(CR_EINVAL, "cr_export_sos_file: NULL or empty path");
    cr_status st;
    cJSON *root = sos_json(m, "cr_export_sos_file", &st);
    if (!root) return st;
    return write_json(root, path, "cr_export_sos_file");
}

/* ---------------------------------------------------------------------
 * JSON
 * --------------------------------------------------------------------- */

static cJSON *model_json(const cr_model *m)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    int ok = cJSON_AddStringToObject(root, "format", "convrec-model-json") &&
             cJSON_AddStringToObject(root, "convrec_version", cr_version()) &&
             cJSON_AddStringToObject(root, "method", cr_method_name(m->method) ? cr_method_name(m->method) : "none") &&
             cJSON_AddStringToObject(root, "horizon",
                                     m->horizon == CR_HORIZON_INFINITE ? "infinite" : "window") &&
             cJSON_AddNumberToObject(root, "channels", (double)m->C) &&
             cJSON_AddNumberToObject(root, "max_modes", (double)m->M) &&
             add_item(root, "sample_rate", jnum(m->rate > 0 ? m->rate : NAN)) &&
             cJSON_AddStringToObject(root, "convention",
                                     "h[0] = d; h[k] = sum_m w_m Re(r_m lambda_m^(k-1)), "
                                     "w = 2 for a pair (stored once, pole im > 0), 1 for real");
    cJSON *chs = ok ? cJSON_AddArrayToObject(root, "channel") : NULL;
    ok = ok && chs;
    for (size_t c = 0; ok && c < m->C; c++) {
        cJSON *o = cJSON_CreateObject();
        ok = o != NULL;
        if (!ok) break;
        cJSON_AddItemToArray(chs, o);
        const cr_fit_record *r = &m->record[c];
        ok = cJSON_AddNumberToObject(o, "order", (double)cr_model_order(m, c)) &&
             add_item(o, "d", jnum(m->d[c])) &&
             add_item(o, "spectral_radius", jnum(cr_model_spectral_radius(m, c))) &&
             cJSON_AddNumberToObject(o, "length", (double)r->length);
        const char *rk[] = {"err_window",  "err_infinite", "err_hinf",
                            "h_norm",      "sigma_next",   "bt_bound",
                            "band_db_max", "band_db_rms",  "band_worst_hz"};
        double rv[] = {r->err_window,  r->err_infinite, r->err_hinf,
                       r->h_norm,      r->sigma_next,   r->bt_bound,
                       r->band_db_max, r->band_db_rms,  r->band_worst_hz};
        for (int t = 0; ok && t < 9; t++) {
            ok = add_item(o, rk[t], jnum(rv[t]));
        }
        cJSON *modes = ok ? cJSON_AddArrayToObject(o, "modes") : NULL;
        ok = ok && modes;
        for (size_t j = 0; ok && j < m->M; j++) {
            size_t i = c * m->M + j;
            if (m->kind[i] == CR_MODE_UNUSED) continue;
            cJSON *md = cJSON_CreateObject();
            ok = md != NULL;
            if (!ok) break;
            cJSON_AddItemToArray(modes, md);
            double pole[2] = {m->pole_re[i], m->pole_im[i]};
            double res[2] = {m->res_re[i], m->res_im[i]};
            ok = cJSON_AddStringToObject(md, "kind",
                                         m->kind[i] == CR_MODE_PAIR ? "pair" : "real") &&
                 add_rows(md, "pole", pole, 2, 0) && add_rows(md, "residue", res, 2, 0);
        }
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

cr_status cr_export_json(const cr_model *m, const char *path)
{
    if (!m) return cr__fail(CR_EINVAL, "cr_export_json: NULL model");
    if (!path || !*path) return cr__fail(CR_EINVAL, "cr_export_json: NULL or empty path");
    cJSON *root = model_json(m);
    if (!root) return cr__fail(CR_ENOMEM, "cr_export_json: out of memory");
    return write_json(root, path, "cr_export_json");
}

/* Print root (consumed) into a malloc'ed string for the caller. */
static cr_status json_to_string(cJSON *root, char **out, const char *who)
{
    char *js = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!js) return cr__fail(CR_ENOMEM, "%s: out of memory", who);
    /* Hand back memory the caller frees with free() (cJSON may use its
     * own allocator hooks). */
    size_t n = strlen(js);
    char *p = malloc(n + 1);
    if (!p) {
        cJSON_free(js);
        return cr__fail(CR_ENOMEM, "%s: out of memory", who);
    }
    memcpy(p, js, n + 1);
    cJSON_free(js);
    *out = p;
    return CR_OK;
}

cr_status cr_export_json_string(const cr_model *m, char **out)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_export_json_string: NULL output");
    *out = NULL;
    if (!m) return cr__fail(CR_EINVAL, "cr_export_json_string: NULL model");
    return json_to_string(model_json(m), out, "cr_export_json_string");
}

cr_status cr_export_sos_string(const cr_model *m, char **out)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_export_sos_string: NULL output");
    *out = NULL;
    cr_status st;
    cJSON *root = sos_json(m, "cr_export_sos_string", &st);
    if (!root) return st;
    return json_to_string(root, out, "cr_export_sos_string");
}
