/* Allocation failures, every one of them: each operation below runs once
 * per allocation it makes, with the k-th allocation failing (allocfail.h),
 * for k = 0, 1, ... until a run makes no more than k allocations (and then
 * must succeed). Every injected failure must give CR_ENOMEM (not a crash,
 * not another status, not a silent success), leave no file behind, and,
 * leak nothing: the wrappers count live blocks, and in the ASan build
 * LeakSanitizer checks again at exit.
 *
 * Covered: cr_fit (every method, fixed order and tolerance, both horizons),
 * cr_hsv, cr_conv_d, the model file (load, save), streams (create, copy,
 * FFT prefill), the export (C, SOS, JSON, to files and strings), .npy and
 * safetensors reading and writing, FFT streamers. The command line is
 * tested the same way by tests/test_cli_alloc.
 *
 * `test_alloc [-v] [-w] [NAME...]` runs only the operations whose names
 * start with one of the NAMEs; -v prints how many allocations each one
 * makes, -w a backtrace of each injected failure that is mishandled
 * (resolve it with addr2line -e tests/test_alloc ADDRESS). */
#include "config.h"

#include "core/core.h"
#include "allocfail.h"
#include "testutil.h"

#include <dirent.h>
#include <stdarg.h>


static int verbose, where, failures;
static char dir[256];   /* a scratch folder that must stay empty */
static char model_path[300], npy_path[300], st_path[300];
static cr_model *model; /* a fitted model, for the operations that read one */
#define C 2
#define L 48
static double bank[C * L];

static void fail(const char *op, long k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(const char *op, long k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_alloc: %s, allocation %ld failing: ", op, k);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}


static char *out_path(const char *name)
{
    static char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* ---- the operations: each cleans up what it made on success ---- */

static cr_status fit_with(cr_method meth, cr_horizon hz, size_t order, double tol)
{
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.method = meth;
    o.horizon = hz;
    o.order = order;
    o.tol = tol;
    o.nthreads = 1; /* a reproducible k */
    cr_model *m = NULL;
    cr_status s = cr_fit(bank, C, L, &o, &m);
    if ((s == CR_OK) != (m != NULL)) return CR_EINVAL; /* must not happen: reported */
    cr_model_destroy(m);
    return s;
}
static cr_status op_fit_auto(void) { return fit_with(CR_METHOD_AUTO, CR_HORIZON_WINDOW, 4, 0); }
static cr_status op_fit_bt(void) { return fit_with(CR_METHOD_BT, CR_HORIZON_WINDOW, 4, 0); }
static cr_status op_fit_hna(void) { return fit_with(CR_METHOD_HNA, CR_HORIZON_INFINITE, 4, 0); }
static cr_status op_fit_pencil(void) { return fit_with(CR_METHOD_PENCIL, CR_HORIZON_WINDOW, 4, 0); }
static cr_status op_fit_bt_inf(void) { return fit_with(CR_METHOD_BT, CR_HORIZON_INFINITE, 4, 0); }
static cr_status op_fit_tol(void) { return fit_with(CR_METHOD_AUTO, CR_HORIZON_WINDOW, 0, 1e-2); }

static cr_status op_hsv(void)
{
    double s[8];
    size_t k;
    cr_status st = cr_hsv(bank, L, CR_HORIZON_INFINITE, 8, s, &k, NULL);
    if (st == CR_OK) st = cr_hsv(bank, L, CR_HORIZON_WINDOW, 8, s, &k, NULL);
    return st;
}

static cr_status op_conv(void)
{
    double u[C * 100], y[C * 100];
    for (size_t i = 0; i < C * 100; i++) u[i] = (double)(i % 7) - 3.0;
    return cr_conv_d(bank, C, L, u, 1, 100, y, 1);
}

static cr_status op_model_load(void)
{
    cr_model *m = (cr_model *)1;
    cr_status s = cr_model_load(&m, model_path);
    if (s != CR_OK && m != NULL) return CR_EINVAL;
    cr_model_destroy(m);
    return s;
}

static cr_status op_model_save(void) { return cr_model_save(model, out_path("m.safetensors")); }

static cr_status op_model_kernel(void)
{
    double k[C * 300];
    cr_fit_record r;
    cr_status s = cr_model_kernel(model, 300, k);
    if (s == CR_OK) s = cr_model_errors(model, 1, bank + L, L, &r);
    return s;
}

static cr_status op_model_copy_poly(void)
{
    cr_model *cp = NULL, *pm = NULL;
    cr_status s = cr_model_copy(model, &cp);
    double b[16], a[17], d, err;
    size_t N = cr_model_order(model, 0);
    if (s == CR_OK) s = cr_model_to_poly(cp, 0, b, a, &d, &err);
    if (s == CR_OK) s = cr_model_create(&pm, 1, N);
    if (s == CR_OK) s = cr_model_set_channel_poly(pm, 0, N, b, a, d, &err);
    if (s == CR_ESINGULAR) s = CR_OK; /* accuracy, not memory */
    cr_model_destroy(cp);
    cr_model_destroy(pm);
    return s;
}

static cr_status op_stream_f(void)
{
    cr_stream_f *s = NULL, *cp = NULL;
    cr_status st = cr_stream_f_create(&s, model, 3, 0);
    if (st == CR_OK) st = cr_stream_f_copy(s, &cp);
    float u[3 * C * 64], y[3 * C * 64];
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) u[i] = (float)(i % 5) - 2.0f;
    if (st == CR_OK) st = cr_stream_f_prefill(s, u, 64, NULL, CR_PREFILL_FFT);
    if (st == CR_OK) st = cr_stream_f_block(cp, u, 64, y);
    cr_stream_f_destroy(s);
    cr_stream_f_destroy(cp);
    return st;
}

static cr_status op_stream_d(void)
{
    cr_stream_d *s = NULL, *cp = NULL;
    cr_status st = cr_stream_d_create(&s, model, 2, 0);
    if (st == CR_OK) st = cr_stream_d_copy(s, &cp);
    double u[2 * C * 64];
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) u[i] = (double)(i % 5) - 2.0;
    if (st == CR_OK) st = cr_stream_d_prefill(s, u, 64, NULL, CR_PREFILL_FFT);
    cr_stream_d_destroy(s);
    cr_stream_d_destroy(cp);
    return st;
}

/* one output each: a failing call must leave nothing; files of an earlier
 * successful call would rightly stay */
static cr_status op_export_c_float(void) { return cr_export_c(model, dir, "flt", CR_EXPORT_FLOAT); }
static cr_status op_export_c_double(void) { return cr_export_c(model, dir, "dbl", CR_EXPORT_DOUBLE); }

static cr_status op_export_sos_string(void)
{
    char *a = NULL;
    cr_status s = cr_export_sos_string(model, &a);
    free(a);
    return s;
}

static cr_status op_export_json_string(void)
{
    char *a = NULL;
    cr_status s = cr_export_json_string(model, &a);
    free(a);
    return s;
}

static cr_status op_export_sos_file(void) { return cr_export_sos_file(model, out_path("sos.json")); }
static cr_status op_export_json_file(void) { return cr_export_json(model, out_path("model.json")); }

static cr_status op_npy_read(void)
{
    cr_array a;
    cr_status s = cr_npy_read(npy_path, &a);
    cr_array_free(&a);
    return s;
}

static cr_status op_npy_write(void)
{
    cr_array a = {CR_FLOAT64, 2, {C, L, 1}, bank};
    return cr_npy_write(out_path("copy.npy"), &a);
}

static cr_status op_safetensors(void)
{
    cr_array a;
    cr_tensor_info *info = NULL;
    size_t n;
    cr_status s = cr_safetensors_read(st_path, "poles", CR_FLOAT64, &a);
    /* poles are (C, M, 2): a shape refusal, after the file was checked */
    if (s == CR_ESHAPE) s = cr_safetensors_read(st_path, "d", CR_FLOAT32, &a);
    cr_array_free(&a);
    if (s == CR_OK) s = cr_safetensors_list(st_path, &info, &n);
    free(info);
    return s;
}

static cr_status op_ols_fir(void)
{
    cr_ols_d *o = NULL;
    cr_fir_f *f = NULL;
    float hf[C * L];
    for (size_t i = 0; i < C * L; i++) hf[i] = (float)bank[i];
    cr_status s = cr_ols_d_create(&o, bank, C, L, 16, 0);
    if (s == CR_OK) s = cr_fir_f_create(&f, hf, C, L);
    cr_ols_d_destroy(o);
    cr_fir_f_destroy(f);
    return s;
}

static const struct {
    const char *name;
    cr_status (*fn)(void);
} ops[] = {
    {"fit_auto", op_fit_auto},       {"fit_bt", op_fit_bt},
    {"fit_hna", op_fit_hna},         {"fit_pencil", op_fit_pencil},
    {"fit_bt_infinite", op_fit_bt_inf}, {"fit_tol", op_fit_tol},
    {"hsv", op_hsv},                 {"conv", op_conv},
    {"model_load", op_model_load},   {"model_save", op_model_save},
    {"model_kernel", op_model_kernel}, {"model_copy_poly", op_model_copy_poly},
    {"stream_f", op_stream_f},       {"stream_d", op_stream_d},
    {"export_c_float", op_export_c_float}, {"export_c_double", op_export_c_double},
    {"export_sos_string", op_export_sos_string}, {"export_json_string", op_export_json_string},
    {"export_sos_file", op_export_sos_file}, {"export_json_file", op_export_json_file},
    {"npy_read", op_npy_read},       {"npy_write", op_npy_write},
    {"safetensors", op_safetensors}, {"ols_fir", op_ols_fir},
};

/* Known defects in code this test's author does not own (src/fit,
 * src/hankel), reported to its owner with file and line. Until they are
 * fixed they print as KNOWN and do not fail the test; CR_ALLOCFAIL_STRICT=1
 * makes them fail (to check a fix). Each is matched on the operation's name
 * prefix and what happened:
 *  - lapack: LAPACKE's own workspace malloc failed (-1010) and the status
 *    is CR_ELAPACK, not CR_ENOMEM (hankel.c hk_dense dsyevd, bt.c dgeev,
 *    pencil.c dgesdd/dgeev, lsq.c dgelsd, hna_glover.c);
 *  - swallowed: the fit succeeds anyway (lm.c ignores a failed dsyev and
 *    takes it as a bad step; varpro.c vp_finish keeps its input model when
 *    cr__residues_ls fails with CR_ENOMEM; hna.c takes a failed Glover start
 *    as "no start"), so the model depends on memory pressure. */
enum { KNOWN_LAPACK = 1, KNOWN_SWALLOWED = 2 };
static const struct {
    const char *op;
    int what;
} known[] = {
    {"fit_", KNOWN_LAPACK}, {"hsv", KNOWN_LAPACK},
    {"fit_auto", KNOWN_SWALLOWED}, {"fit_hna", KNOWN_SWALLOWED}, {"fit_tol", KNOWN_SWALLOWED},
};
static int strict, nknown;

static int is_known(const char *op, cr_status s)
{
    int what = s == CR_OK ? KNOWN_SWALLOWED
             : s == CR_ELAPACK && strstr(cr_error_detail(), "(info -1010)") ? KNOWN_LAPACK
                                                                            : 0;
    if (strict || !what) return 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].what == what && strncmp(op, known[i].op, strlen(known[i].op)) == 0) {
            nknown++;
            if (verbose)
                printf("KNOWN %s: %s\n", op, s == CR_OK ? "swallowed" : cr_error_detail());
            return 1;
        }
    return 0;
}

static void sweep(const char *name, cr_status (*fn)(void))
{
    long k = 0;
    /* once without failures first: caches that live as long as the process
     * (FFT plans) are filled now, not counted as leaks below */
    allocfail_arm(-1);
    if (fn() != CR_OK) fail(name, -1, "fails without an injected failure (%s)", cr_error_detail());
    for (;; k++) {
        allocfail_dir_empty(dir);
        cr__clear_error();
        long live0 = allocfail_live();
        allocfail_arm(k);
        cr_status s = fn();
        int fired = allocfail_fired();
        allocfail_arm(-1);
        char first[256] = "";
        if (!fired) {
            if (s != CR_OK) fail(name, -1, "fails without an injected failure: %d (%s)", s, cr_error_detail());
            break;
        }
        int bad = s != CR_ENOMEM && !is_known(name, s);
        if (!bad)
            ;
        else if (s == CR_OK)
            fail(name, k, "succeeds anyway (the failure is swallowed)");
        else if (s != CR_ENOMEM)
            fail(name, k, "status %d (%s), not CR_ENOMEM (detail: %s)", s, cr_strerror(s),
                 cr_error_detail());
        if (bad && where) { /* once more, showing where the failure is injected */
            allocfail_backtrace(1);
            allocfail_arm(k);
            (void)fn();
            allocfail_arm(-1);
            allocfail_backtrace(0);
            allocfail_dir_empty(dir);
        }
        if (s != CR_OK && allocfail_dir_entries(dir, first, sizeof first) > 0)
            fail(name, k, "left a file behind: %s", first);
        long now = allocfail_live();
        if (now != live0 && live0 >= 0 && now >= 0)
            fail(name, k, "leaks %ld blocks", now - live0);
    }
    allocfail_dir_empty(dir);
    if (verbose) printf("%-18s %5ld allocations, each failed once\n", name, k);
}

int main(int argc, char **argv)
{
    int first_name = 1;
    while (first_name < argc && argv[first_name][0] == '-') {
        if (strcmp(argv[first_name], "-v") == 0) verbose = 1;
        if (strcmp(argv[first_name], "-w") == 0) where = 1;
        first_name++;
    }
    strict = getenv("CR_ALLOCFAIL_STRICT") != NULL;
    uint64_t seed = 3;
    for (size_t c = 0; c < C; c++) {
        double r = c ? 0.8 : 0.93, w = c ? 1.1 : 0.35, p = 1.0;
        for (size_t k = 0; k < L; k++, p *= r)
            bank[c * L + k] = p * cos(w * (double)k) + 1e-3 * tu_uniform(&seed);
    }
    snprintf(dir, sizeof dir, "%s/out", tu_tmpdir());
    mkdir(dir, 0755);
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", tu_tmpdir());
    snprintf(st_path, sizeof st_path, "%s", model_path);
    snprintf(npy_path, sizeof npy_path, "%s/bank.npy", tu_tmpdir());
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.order = 4;
    o.nthreads = 1;
    cr_array a = {CR_FLOAT64, 2, {C, L, 1}, bank};
    if (cr_fit(bank, C, L, &o, &model) != CR_OK || cr_model_save(model, model_path) != CR_OK ||
        cr_npy_write(npy_path, &a) != CR_OK) {
        fprintf(stderr, "test_alloc: setup failed: %s\n", cr_error_detail());
        return 1;
    }
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        int run = argc <= first_name;
        for (int j = first_name; j < argc; j++)
            if (strncmp(ops[i].name, argv[j], strlen(argv[j])) == 0) run = 1;
        if (run) sweep(ops[i].name, ops[i].fn);
    }
    cr_model_destroy(model);
    unlink(model_path);
    unlink(npy_path);
    rmdir(dir);
    rmdir(tu_tmpdir());
    if (nknown)
        printf("test_alloc: %d injected failures mishandled by known defects (not counted; "
               "-v lists them, CR_ALLOCFAIL_STRICT=1 counts them)\n", nknown);
    if (failures) fprintf(stderr, "test_alloc: %d failures\n", failures);
    return failures ? 1 : 0;
}
