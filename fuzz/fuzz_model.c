/* libFuzzer harness: the model file loader and everything a loaded model
 * offers. Whatever the bytes, cr_model_load must return a status; a model
 * it accepts must then survive every query, cr_model_kernel at a small
 * length, cr_model_errors, the polynomial form, float and double streams
 * (heap and caller memory, step, block, prefill, state round trip), the
 * exports to strings (valid JSON), and a save/load round trip that gives
 * the same model. A model accepted only with CR_LOAD_ALLOW_UNSTABLE must be
 * refused by the streams. */
#include "fuzzutil.h"

#include "convrec.h"

#include <cjson/cJSON.h>
#include <math.h>

#define KL 16 /* kernel length asked of the model */
#define NB 2  /* streams */

static void streams(const cr_model *m, size_t C)
{
    size_t n = NB * C * 8;
    float *uf = calloc(n, sizeof *uf), *yf = calloc(n, sizeof *yf);
    double *ud = calloc(n, sizeof *ud), *yd = calloc(n, sizeof *yd);
    CHECK(uf && yf && ud && yd);
    for (size_t i = 0; i < n; i++) ud[i] = uf[i] = (float)((int)(i % 7) - 3);
    cr_stream_f *sf = NULL;
    cr_stream_d *sd = NULL;
    CHECK(cr_stream_f_create(&sf, m, NB, 0) == CR_OK);
    CHECK(cr_stream_d_create(&sd, m, NB, CR_STREAM_NO_THREADS) == CR_OK);
    for (int t = 0; t < 3; t++) {
        CHECK(cr_stream_f_step(sf, uf, yf) == CR_OK);
        CHECK(cr_stream_d_step(sd, ud, yd) == CR_OK);
    }
    CHECK(cr_stream_f_block(sf, uf, 8, yf) == CR_OK);
    CHECK(cr_stream_d_prefill(sd, ud, 8, NULL, CR_PREFILL_FFT) == CR_OK);
    /* exact state round trip */
    size_t sl = cr_stream_d_state_len(sd);
    double *st = malloc((sl ? sl : 1) * sizeof *st);
    CHECK(st);
    CHECK(cr_stream_d_get_state(sd, st, sl) == CR_OK);
    CHECK(cr_stream_d_set_state(sd, st, sl) == CR_OK);
    free(st);
    /* caller memory */
    size_t bytes = 0;
    CHECK(cr_stream_f_mem_size(m, 1, 0, &bytes) == CR_OK);
    void *mem = malloc(bytes);
    cr_stream_f *sm = NULL;
    CHECK(mem && cr_stream_f_init(&sm, m, 1, 0, mem, bytes) == CR_OK);
    CHECK(cr_stream_f_step(sm, uf, yf) == CR_OK);
    free(mem);
    cr_stream_f_destroy(sf);
    cr_stream_d_destroy(sd);
    free(uf);
    free(yf);
    free(ud);
    free(yd);
}

static void same_models(const cr_model *a, const cr_model *b)
{
    cr_model_view x, y;
    CHECK(cr_model_get_view(a, &x) == CR_OK && cr_model_get_view(b, &y) == CR_OK);
    CHECK(x.C == y.C && x.M == y.M && x.method == y.method && x.horizon == y.horizon);
    size_t CM = x.C * x.M;
    CHECK(memcmp(x.kind, y.kind, CM) == 0);
    CHECK(memcmp(x.pole_re, y.pole_re, CM * sizeof(double)) == 0);
    CHECK(memcmp(x.pole_im, y.pole_im, CM * sizeof(double)) == 0);
    CHECK(memcmp(x.res_re, y.res_re, CM * sizeof(double)) == 0);
    CHECK(memcmp(x.res_im, y.res_im, CM * sizeof(double)) == 0);
    CHECK(memcmp(x.d, y.d, x.C * sizeof(double)) == 0);
    for (size_t c = 0; c < x.C; c++) {
        const cr_fit_record *r = &x.record[c], *q = &y.record[c];
        CHECK(r->order == q->order && r->length == q->length);
        /* NaN marks unknown values: compare the bits */
        CHECK(memcmp(&r->err_window, &q->err_window, 6 * sizeof(double)) == 0 ||
              (isnan(r->err_window) && isnan(q->err_window)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *p = fz_path(d, n);
    cr_model *m = (cr_model *)1;
    cr_status s = cr_model_load(&m, p);
    int unstable = 0;
    if (s == CR_EUNSTABLE) {
        CHECK(m == NULL);
        s = cr_model_load_ex(&m, p, CR_LOAD_ALLOW_UNSTABLE);
        CHECK(s == CR_OK); /* refused for stability alone */
        unstable = 1;
    }
    if (s != CR_OK) {
        CHECK(m == NULL);
        return 0;
    }
    cr_model_view v;
    CHECK(cr_model_get_view(m, &v) == CR_OK);
    size_t C = v.C, M = v.M;
    CHECK(C >= 1);
    CHECK((cr_model_check_stable(m, 0.0) == CR_OK) == !unstable);
    for (size_t c = 0; c < C; c++) {
        size_t order = cr_model_order(m, c);
        CHECK(order <= 2 * M && order == v.record[c].order);
        double r = cr_model_spectral_radius(m, c);
        CHECK(unstable || r < 1.0);
    }
    /* kernels and errors (against a fixed kernel) */
    cr_status e;
    double *k = malloc(C * KL * sizeof *k), h[KL];
    CHECK(k);
    for (int i = 0; i < KL; i++) h[i] = 1.0 / (1 + i);
    CHECK(cr_model_kernel(m, KL, k) == CR_OK);
    for (size_t c = 0; c < C; c++) {
        cr_fit_record rec;
        e = cr_model_errors(m, c, h, KL, &rec);
        CHECK(e == CR_OK || unstable);
        if (!unstable) CHECK(rec.err_window >= 0 && rec.h_norm > 0);
        size_t N = cr_model_order(m, c);
        double *b = malloc((N + 1) * sizeof *b), *a = malloc((N + 1) * sizeof *a), dd, rel;
        CHECK(b && a);
        cr_status q = cr_model_to_poly(m, c, b, a, &dd, &rel);
        CHECK(q == CR_OK || q == CR_ESINGULAR || q == CR_ENONFINITE || unstable);
        free(a);
        free(b);
        size_t ns = cr_export_sos_count(m, c), got;
        double *coef = malloc((ns ? ns : 1) * 6 * sizeof *coef);
        CHECK(coef);
        e = cr_export_sos(m, c, CR_SOS_SCIPY, coef, ns, &got, NULL);
        CHECK((e == CR_OK && got == ns) || unstable);
        free(coef);
    }
    free(k);
    if (unstable) {
        cr_stream_f *sf = (cr_stream_f *)1;
        CHECK(cr_stream_f_create(&sf, m, 1, 0) == CR_EUNSTABLE && sf == NULL);
    } else {
        streams(m, C);
    }
    /* exports to strings: valid JSON */
    char *js = NULL;
    e = cr_export_json_string(m, &js);
    CHECK(e == CR_OK);
    cJSON *root = cJSON_Parse(js);
    CHECK(root != NULL);
    cJSON_Delete(root);
    free(js);
    js = NULL;
    e = cr_export_sos_string(m, &js);
    CHECK(e == CR_OK || (unstable && e == CR_EUNSTABLE));
    if (e == CR_OK) {
        root = cJSON_Parse(js);
        CHECK(root != NULL);
        cJSON_Delete(root);
    }
    free(js);
    /* save and load again: the same model */
    const char *sp = fz_scratch(".safetensors");
    CHECK(cr_model_save(m, sp) == CR_OK);
    cr_model *m2 = NULL;
    CHECK(cr_model_load_ex(&m2, sp, CR_LOAD_ALLOW_UNSTABLE) == CR_OK);
    unlink(sp);
    same_models(m, m2);
    cr_model_destroy(m2);
    cr_model_destroy(m);
    return 0;
}
