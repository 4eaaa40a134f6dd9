/* The .safetensors model file (docs/FORMAT.md): 8-byte little-endian header
 * length N, N bytes of JSON (cJSON) padded with spaces, raw little-endian
 * tensors. Saving is atomic; loading validates every field. */
#include "core/core.h"
#include "io/io.h"
#include "model/model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_NAME "convrec-modal"
#define FORMAT_VERSION "1"

enum { DT_F64, DT_I64, DT_U8 };
static const char *const dt_name[] = {"F64", "I64", "U8"};
static const size_t dt_size[] = {8, 8, 1};

/* Per-channel record fields, in file order. The band errors came later:
 * files without them load with NaN (unknown). */
static const char *const rec_f64[] = {"err_window", "err_infinite", "err_hinf",
                                      "h_norm",     "sigma_next",   "bt_bound",
                                      "band_db_max", "band_db_rms", "band_worst_hz"};
#define N_REC_F64 9
#define N_REC_F64_REQUIRED 6

/* Tensors of a model file, in file order (8-byte types first so every
 * tensor is aligned when the data starts at a multiple of 8). */
enum {
    T_POLES, T_RESIDUES, T_D, T_REC0, /* T_REC0 .. T_REC0 + 8: rec_f64 */
    T_ORDERS = T_REC0 + N_REC_F64, T_LENGTH, T_KINDS, N_TENSORS
};

static const char *tensor_name(int t)
{
    switch (t) {
    case T_POLES: return "poles";
    case T_RESIDUES: return "residues";
    case T_D: return "d";
    case T_ORDERS: return "orders";
    case T_LENGTH: return "length";
    case T_KINDS: return "kinds";
    default: return rec_f64[t - T_REC0];
    }
}

/* Tensors that older files lack. */
static int tensor_optional(int t) { return t >= T_REC0 + N_REC_F64_REQUIRED && t < T_ORDERS; }

static int tensor_dtype(int t)
{
    if (t == T_KINDS) return DT_U8;
    if (t == T_ORDERS || t == T_LENGTH) return DT_I64;
    return DT_F64;
}

/* Expected shape of tensor t for C channels and M modes; returns ndim. */
static int tensor_shape(int t, size_t C, size_t M, size_t shape[3])
{
    shape[0] = C;
    shape[1] = shape[2] = 1;
    if (t == T_POLES || t == T_RESIDUES) {
        shape[1] = M;
        shape[2] = 2;
        return 3;
    }
    if (t == T_KINDS) {
        shape[1] = M;
        return 2;
    }
    return 1;
}

const char *cr_method_name(cr_method m)
{
    switch (m) {
    case CR_METHOD_AUTO: return "auto";
    case CR_METHOD_BT: return "bt";
    case CR_METHOD_HNA: return "hna";
    case CR_METHOD_PENCIL: return "pencil";
    case CR_METHOD_NONE: return "none";
    }
    return NULL;
}

/* a model's method is always one of the five (cr_model_set_*) */
static const char *method_name(cr_method m)
{
    const char *s = cr_method_name(m);
    return s ? s : "none";
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_f64(unsigned char *p, double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    put_le64(p, u);
}

static double get_f64(const unsigned char *p)
{
    uint64_t u = cr__le64(p);
    double x;
    memcpy(&x, &u, 8);
    return x;
}

/* ---------------------------------------------------------------------
 * Save
 * --------------------------------------------------------------------- */

static int add_str(cJSON *o, const char *k, const char *v)
{
    return cJSON_AddStringToObject(o, k, v) != NULL;
}

cr_status cr_model_save(const cr_model *m, const char *path)
{
    if (!m || !path) return cr__fail(CR_EINVAL, "cr_model_save: NULL argument");
    if (!*path) return cr__fail(CR_EINVAL, "cr_model_save: empty path");
    const size_t C = m->C, M = m->M;
    size_t off[N_TENSORS + 1], total = 0;
    for (int t = 0; t < N_TENSORS; t++) {
        size_t shape[3], nb = dt_size[tensor_dtype(t)];
        int nd = tensor_shape(t, C, M, shape);
        for (int i = 0; i < nd; i++) nb *= shape[i]; /* bounded by create */
        off[t] = total;
        total += nb;
    }
    off[N_TENSORS] = total;

    cJSON *root = cJSON_CreateObject();
    cJSON *meta = root ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
    char buf[64];
    int ok = meta != NULL;
    ok = ok && add_str(meta, "format", FORMAT_NAME);
    ok = ok && add_str(meta, "format_version", FORMAT_VERSION);
    ok = ok && add_str(meta, "method", method_name(m->method));
    ok = ok && add_str(meta, "horizon",
                       m->horizon == CR_HORIZON_INFINITE ? "infinite" : "window");
    snprintf(buf, sizeof buf, "%zu", C);
    ok = ok && add_str(meta, "channels", buf);
    snprintf(buf, sizeof buf, "%zu", M);
    ok = ok && add_str(meta, "max_modes", buf);
    ok = ok && add_str(meta, "convrec_version", cr_version());
    if (m->rate > 0.0) {
        snprintf(buf, sizeof buf, "%.17g", m->rate);
        ok = ok && add_str(meta, "sample_rate", buf);
    }
    for (int t = 0; ok && t < N_TENSORS; t++) {
        cJSON *e = cJSON_AddObjectToObject(root, tensor_name(t));
        size_t shape[3];
        int nd = tensor_shape(t, C, M, shape);
        double sh[3] = {(double)shape[0], (double)shape[1], (double)shape[2]};
        double of[2] = {(double)off[t], (double)off[t + 1]};
        ok = e && add_str(e, "dtype", dt_name[tensor_dtype(t)]);
        /* attached at creation (cJSON_Add*ToObject), so nothing leaks when
         * a later allocation fails: the root's delete frees it all */
        cJSON *a = ok ? cJSON_AddArrayToObject(e, "shape") : NULL;
        for (int i = 0; a && i < nd; i++) ok = ok && cJSON_AddItemToArray(a, cJSON_CreateNumber(sh[i]));
        ok = ok && a;
        cJSON *b = ok ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        for (int i = 0; b && i < 2; i++) ok = ok && cJSON_AddItemToArray(b, cJSON_CreateNumber(of[i]));
        ok = ok && b;
    }
    char *js = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!js) return cr__fail(CR_ENOMEM, "%s: out of memory building the header", path);
    size_t jl = strlen(js), hl = (jl + 7) / 8 * 8;
    unsigned char *file = malloc(8 + hl + total);
    if (!file) {
        cJSON_free(js);
        return cr__fail(CR_ENOMEM, "%s: out of memory (%zu bytes)", path, 8 + hl + total);
    }
    put_le64(file, hl);
    memcpy(file + 8, js, jl);
    memset(file + 8 + jl, ' ', hl - jl);
    cJSON_free(js);

    unsigned char *data = file + 8 + hl;
    for (size_t i = 0; i < C * M; i++) {
        put_f64(data + off[T_POLES] + 16 * i, m->pole_re[i]);
        put_f64(data + off[T_POLES] + 16 * i + 8, m->pole_im[i]);
        put_f64(data + off[T_RESIDUES] + 16 * i, m->res_re[i]);
        put_f64(data + off[T_RESIDUES] + 16 * i + 8, m->res_im[i]);
        data[off[T_KINDS] + i] = m->kind[i];
    }
    for (size_t c = 0; c < C; c++) {
        const cr_fit_record *r = &m->record[c];
        double rv[N_REC_F64] = {r->err_window,  r->err_infinite, r->err_hinf,
                                r->h_norm,      r->sigma_next,   r->bt_bound,
                                r->band_db_max, r->band_db_rms,  r->band_worst_hz};
        put_f64(data + off[T_D] + 8 * c, m->d[c]);
        for (int k = 0; k < N_REC_F64; k++) put_f64(data + off[T_REC0 + k] + 8 * c, rv[k]);
        put_le64(data + off[T_ORDERS] + 8 * c, (uint64_t)cr_model_order(m, c));
        put_le64(data + off[T_LENGTH] + 8 * c, (uint64_t)r->length);
    }
    cr_status s = cr__write_atomic(path, file, 8 + hl + total);
    free(file);
    return s;
}

/* ---------------------------------------------------------------------
 * Load: the generic reader (io/safetensors.c) checks the container (header
 * length before anything else, JSON, entries, duplicates); this file checks
 * the schema (names, dtypes, metadata, shapes) before the byte ranges, so
 * that a wrong shape is reported as one; only then is the data read: at most
 * the data section, whose size the file's real length bounds.
 * --------------------------------------------------------------------- */

static int parse_size(const char *s, size_t *out)
{
    if (!s || !*s || strlen(s) > 15) return 0;
    size_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (size_t)(*p - '0');
    }
    *out = v;
    return 1;
}

/* Names, dtypes, metadata and shapes; fills ti (by tensor; NULL for a
 * missing optional one), C, M, method, horizon, rate (0: unknown). */
static cr_status check_schema(const cr__st_file *sf, const cr__st_tensor **ti, size_t *Cp,
                              size_t *Mp, cr_method *method, cr_horizon *horizon, double *rate)
{
    const char *path = sf->path;
    for (size_t i = 0; i < sf->n; i++) {
        const cr__st_tensor *x = &sf->t[i];
        int t = 0;
        while (t < N_TENSORS && strcmp(tensor_name(t), x->name) != 0) t++;
        if (t == N_TENSORS)
            return cr__fail(CR_EFORMAT, "%s: header: unexpected tensor '%s'", path, x->name);
        ti[t] = x; /* names are unique (the reader refuses duplicates) */
    }
    for (int t = 0; t < N_TENSORS; t++) {
        if (!ti[t] && tensor_optional(t)) continue;
        if (!ti[t])
            return cr__fail(CR_EFORMAT, "%s: header: missing tensor '%s'", path, tensor_name(t));
        if (strcmp(ti[t]->dtype, dt_name[tensor_dtype(t)]) != 0)
            return cr__fail(CR_EDTYPE, "%s: tensor '%s': dtype %s, expected %s", path,
                            tensor_name(t), ti[t]->dtype, dt_name[tensor_dtype(t)]);
    }
    if (!sf->has_meta) return cr__fail(CR_EFORMAT, "%s: header: missing __metadata__", path);
    const char *fmt = NULL, *ver = NULL, *meth = NULL, *hor = NULL, *ch = NULL, *mm = NULL;
    const char *sr = NULL;
    for (size_t i = 0; i < sf->nmeta; i++) {
        const char *k = sf->meta[i].key, *v = sf->meta[i].value; /* unique keys, strings */
        if (strcmp(k, "format") == 0) fmt = v;
        else if (strcmp(k, "format_version") == 0) ver = v;
        else if (strcmp(k, "method") == 0) meth = v;
        else if (strcmp(k, "horizon") == 0) hor = v;
        else if (strcmp(k, "channels") == 0) ch = v;
        else if (strcmp(k, "max_modes") == 0) mm = v;
        else if (strcmp(k, "sample_rate") == 0) sr = v;
        /* other keys (convrec_version, user notes) are informative */
    }
    if (!fmt || strcmp(fmt, FORMAT_NAME) != 0)
        return cr__fail(CR_EFORMAT, "%s: __metadata__ format is '%s', expected '" FORMAT_NAME "'",
                        path, fmt ? fmt : "(missing)");
    if (!ver || strcmp(ver, FORMAT_VERSION) != 0)
        return cr__fail(CR_EUNSUPPORTED,
                        "%s: format_version '%s' is not supported (this build reads '" FORMAT_VERSION
                        "')",
                        path, ver ? ver : "(missing)");
    *method = CR_METHOD_NONE;
    if (meth) {
        cr_method ms[] = {CR_METHOD_AUTO, CR_METHOD_BT, CR_METHOD_HNA, CR_METHOD_PENCIL,
                          CR_METHOD_NONE};
        int found = 0;
        for (int i = 0; i < 5; i++)
            if (strcmp(meth, method_name(ms[i])) == 0) {
                *method = ms[i];
                found = 1;
            }
        if (!found) return cr__fail(CR_EFORMAT, "%s: unknown method '%s'", path, meth);
    }
    *horizon = CR_HORIZON_WINDOW;
    if (hor) {
        if (strcmp(hor, "infinite") == 0) *horizon = CR_HORIZON_INFINITE;
        else if (strcmp(hor, "window") != 0)
            return cr__fail(CR_EFORMAT, "%s: unknown horizon '%s'", path, hor);
    }
    *rate = 0.0; /* files without it: unknown */
    if (sr) {
        char *e = NULL;
        double v = strtod(sr, &e);
        if (e == sr || *e != '\0' || !(v > 0.0) || !isfinite(v))
            return cr__fail(CR_EFORMAT, "%s: __metadata__ sample_rate '%s' is not a positive "
                            "number", path, sr);
        *rate = v;
    }
    size_t C, M;
    if (!ch || !parse_size(ch, &C) || !mm || !parse_size(mm, &M))
        return cr__fail(CR_EFORMAT, "%s: __metadata__ channels/max_modes missing or not integers",
                        path);
    if (C == 0) return cr__fail(CR_EFORMAT, "%s: zero channels", path);
    size_t CM;
    if (!cr__mul_ok(C, M, &CM) || CM > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "%s: %zu channels x %zu modes is absurdly large", path, C,
                        M);
    for (int t = 0; t < N_TENSORS; t++) {
        if (!ti[t]) continue; /* optional */
        size_t shape[3];
        int nd = tensor_shape(t, C, M, shape);
        int bad = ti[t]->ndim != nd;
        for (int i = 0; !bad && i < nd; i++) bad = ti[t]->shape[i] != shape[i];
        if (bad) {
            char got[160], want[64] = "(";
            cr__st_shape_str(ti[t], got, sizeof got);
            for (int i = 0; i < nd; i++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%zu", i ? ", " : "",
                         shape[i]);
            strcat(want, nd == 1 ? ",)" : ")");
            return cr__fail(CR_ESHAPE, "%s: tensor '%s': shape %s, expected %s", path,
                            tensor_name(t), got, want);
        }
    }
    *Cp = C;
    *Mp = M;
    return CR_OK;
}

static cr_status check_record_value(const char *path, size_t c, const char *name, double v)
{
    /* NaN marks an unknown value; errors and norms are never negative. */
    if (v < 0.0)
        return cr__fail(CR_EFORMAT, "%s: channel %zu: %s = %g is negative", path, c, name, v);
    return CR_OK;
}

/* Bytes a loaded model of C channels and M modes holds: the file's data
 * section (read whole) and the model's arrays. */
static int model_bytes(size_t C, size_t M, uint64_t dlen, size_t *out)
{
    size_t CM = C * M; /* checked by check_schema */
    size_t per_mode = 1 + 4 * sizeof(double), per_ch = sizeof(double) + sizeof(cr_fit_record);
    size_t a, b;
    if (!cr__mul_ok(CM, per_mode, &a) || !cr__mul_ok(C, per_ch, &b) || a > SIZE_MAX - b ||
        dlen > SIZE_MAX - a - b)
        return 0;
    *out = a + b + (size_t)dlen;
    return 1;
}

cr_status cr_model_load_ex(cr_model **out, const char *path, unsigned flags)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_model_load: NULL output pointer");
    *out = NULL;
    if (!path) return cr__fail(CR_EINVAL, "cr_model_load: NULL path");
    if (flags & ~CR_LOAD_ALLOW_UNSTABLE)
        return cr__fail(CR_EINVAL, "cr_model_load_ex: unknown flags 0x%x", flags);
    cr__st_file sf;
    cr_status s = cr__st_open(&sf, path, CR__ST_STRICT | CR__ST_DEFER_RANGES);
    if (s != CR_OK) return s;
    unsigned char *buf = NULL;
    cr_model *m = NULL;
    const cr__st_tensor *ti[N_TENSORS] = {NULL};
    size_t C = 0, M = 0;
    cr_method method = CR_METHOD_NONE;
    cr_horizon horizon = CR_HORIZON_WINDOW;
    double rate = 0.0;
    s = check_schema(&sf, ti, &C, &M, &method, &horizon, &rate);
    if (s != CR_OK) goto fail;
    s = cr__st_check_ranges(&sf);
    if (s != CR_OK) goto fail;
    /* the ranges tile the data section and match the shapes, so the section
     * is exactly the model's size, which the file's real length bounds */
    uint64_t dlen = sf.size - sf.data_start;
    size_t need;
    if (!model_bytes(C, M, dlen, &need) || need > CR_MAX_ALLOC) {
        s = cr__fail(CR_EOVERFLOW,
                     "%s: a model of %zu channels x %zu modes would need more than %zu bytes "
                     "(CR_MAX_ALLOC)",
                     path, C, M, (size_t)CR_MAX_ALLOC);
        goto fail;
    }
    buf = cr__alloc_big((size_t)dlen);
    if (!buf) {
        s = cr__fail(CR_ENOMEM, "%s: out of memory (%llu bytes of tensors)", path,
                     (unsigned long long)dlen);
        goto fail;
    }
    s = cr__st_read(&sf, 0, (size_t)dlen, buf);
    if (s != CR_OK) goto fail;

    s = cr_model_create(&m, C, M);
    if (s != CR_OK) goto fail;
    const unsigned char *data = buf;
#define AT(t, i, sz) (data + ti[t]->begin + (size_t)(i) * (sz))
    for (size_t c = 0; c < C; c++) {
        size_t order = 0;
        for (size_t j = 0; j < M; j++) {
            size_t i = c * M + j;
            unsigned char k = *AT(T_KINDS, i, 1);
            double pr = get_f64(AT(T_POLES, i, 16)), pi = get_f64(AT(T_POLES, i, 16) + 8);
            double rr = get_f64(AT(T_RESIDUES, i, 16)), ri = get_f64(AT(T_RESIDUES, i, 16) + 8);
            if (k == CR_MODE_UNUSED) {
                if (pr != 0.0 || pi != 0.0 || rr != 0.0 || ri != 0.0) {
                    s = cr__fail(CR_EFORMAT,
                                 "%s: channel %zu mode %zu: unused mode with a nonzero pole or "
                                 "residue",
                                 path, c, j);
                    goto fail;
                }
                continue;
            }
            if (k > CR_MODE_PAIR) {
                s = cr__fail(CR_EFORMAT, "%s: channel %zu mode %zu: kind %u out of range (0..2)",
                             path, c, j, (unsigned)k);
                goto fail;
            }
            s = cr__modal_check_mode(k, pr, pi, rr, ri, c, j);
            if (s != CR_OK) {
                char d0[512];
                snprintf(d0, sizeof d0, "%s", cr_error_detail());
                s = cr__fail(s == CR_ENONFINITE ? CR_ENONFINITE : CR_EFORMAT, "%s: %s", path, d0);
                goto fail;
            }
            if (k == CR_MODE_PAIR && pi < 0.0) {
                s = cr__fail(CR_EFORMAT,
                             "%s: channel %zu mode %zu: pair stored with pole_im < 0 (the file "
                             "stores the representative with pole_im > 0)",
                             path, c, j);
                goto fail;
            }
            m->kind[i] = k;
            m->pole_re[i] = pr;
            m->pole_im[i] = pi;
            m->res_re[i] = rr;
            m->res_im[i] = ri;
            order += k;
        }
        double d = get_f64(AT(T_D, c, 8));
        if (!isfinite(d)) {
            s = cr__fail(CR_ENONFINITE, "%s: channel %zu: non-finite d", path, c);
            goto fail;
        }
        m->d[c] = d;
        uint64_t ord = cr__le64(AT(T_ORDERS, c, 8)), lg = cr__le64(AT(T_LENGTH, c, 8));
        if (ord != order) {
            s = cr__fail(CR_EFORMAT, "%s: channel %zu: orders = %lld but the kinds sum to %zu",
                         path, c, (long long)ord, order);
            goto fail;
        }
        if (lg > CR_MAX_ELEMS) { /* also catches negative I64 */
            s = cr__fail(CR_EFORMAT, "%s: channel %zu: length %lld is negative or absurd", path,
                         c, (long long)lg);
            goto fail;
        }
        cr_fit_record *r = &m->record[c];
        double *rv[N_REC_F64] = {&r->err_window,  &r->err_infinite, &r->err_hinf,
                                 &r->h_norm,      &r->sigma_next,   &r->bt_bound,
                                 &r->band_db_max, &r->band_db_rms,  &r->band_worst_hz};
        for (int t = 0; t < N_REC_F64; t++) {
            *rv[t] = ti[T_REC0 + t] ? get_f64(AT(T_REC0 + t, c, 8)) : NAN;
            s = check_record_value(path, c, rec_f64[t], *rv[t]);
            if (s != CR_OK) goto fail;
        }
        r->order = order;
        r->length = (size_t)lg;
    }
#undef AT
    m->method = method;
    m->horizon = horizon;
    m->rate = rate;
    if (!(flags & CR_LOAD_ALLOW_UNSTABLE)) {
        s = cr_model_check_stable(m, 0.0);
        if (s != CR_OK) {
            char d0[512];
            snprintf(d0, sizeof d0, "%s", cr_error_detail());
            s = cr__fail(CR_EUNSTABLE,
                         "%s: unstable model: %s (load with CR_LOAD_ALLOW_UNSTABLE to accept)",
                         path, d0);
            goto fail;
        }
    }
    cr__st_close(&sf);
    free(buf);
    *out = m;
    return CR_OK;
fail:
    cr__st_close(&sf);
    cr_model_destroy(m);
    free(buf);
    return s;
}

cr_status cr_model_load(cr_model **m, const char *path) { return cr_model_load_ex(m, path, 0); }
