/* The threading contract (convrec.h), run under ThreadSanitizer by
 * `./build.sh check` (build-tsan) and natively by every `make check`:
 * 8 threads share one fitted model (const queries, kernels, errors, exports,
 * copies, each thread its own float and double streams on heap and caller
 * memory) while 2 more threads fit other banks with every method and
 * convolve by FFT (the plan cache). Every result must equal, bit for bit,
 * the one computed alone before the threads start; TSan must report
 * nothing.
 *
 * Defect 5 (cr_fit set OpenBLAS's global thread count and restored it, so
 * two concurrent fits raced on it) happens inside OpenBLAS, which TSan does
 * not see. The two interposers below stand in for it: they keep the count
 * in a plain int, so two threads setting it at once is a race TSan reports,
 * and the test also asserts that the library never calls them.
 *
 * OpenMP and OpenBLAS: neither runtime is instrumented, so under TSan the
 * hand-offs between their threads are invisible and its reports would be
 * false. The TSan build uses clang's libomp, whose Archer tool (loaded by
 * libomp by itself when the program runs under TSan) tells TSan about
 * OpenMP's synchronisation: so one fitter here runs its fits with 2 OpenMP
 * threads, the other with 1. OpenBLAS's own thread pool has no such
 * annotations: build.sh runs this test with OPENBLAS_NUM_THREADS=1 (as the
 * convrec command runs itself) and TSAN_OPTIONS=ignore_noninstrumented_modules=1. */
#include "config.h"

#include "convrec.h"
#include "testutil.h"

#include <dlfcn.h>
#include <pthread.h>

#define NREADERS 8
#define NFITTERS 2

/* ---- stand-ins for OpenBLAS's thread-count calls (see above) ---- */
static int blas_threads = 1; /* deliberately plain: concurrent writes race */
static int blas_calls;
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int n)
{
    blas_calls++;
    blas_threads = n;
    void (*real)(int) = (void (*)(int))dlsym(RTLD_NEXT, "openblas_set_num_threads");
    if (real) real(n);
}
int openblas_get_num_threads(void)
{
    blas_calls++;
    return blas_threads;
}

static int failures; /* written under fail_lock */
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            pthread_mutex_lock(&fail_lock);                                                  \
            failures++;                                                                      \
            fprintf(stderr, "test_threads: %s:%d: %s failed (%s)\n", __FILE__, __LINE__,     \
                    #cond, cr_error_detail());                                               \
            pthread_mutex_unlock(&fail_lock);                                                \
        }                                                                                    \
    } while (0)

/* the shared model and what it gives alone */
#define NC 3
#define NL 160
#define LK 300 /* kernel length asked of the model */
#define NB 2
#define NT 400
static const cr_model *shared;
static double bank[NC * NL];
static double ref_kernel[NC * LK];
static cr_fit_record ref_rec[NC];
static char *ref_json, *ref_sos;
static float ref_yf[NT][NB * NC];
static double ref_yd[NT][NB * NC];
static double inputs[NT][NB * NC];
static int rounds = 3;

/* banks of the fitting threads, and their results alone */
#define CF 2
#define LF 128
static const cr_method methods[] = {CR_METHOD_AUTO, CR_METHOD_BT, CR_METHOD_HNA, CR_METHOD_PENCIL};
#define NMETH 4
static double fbank[NFITTERS][CF * LF];
static cr_fit_record fref[NFITTERS][NMETH][CF];
static double conv_ref[NFITTERS][CF * 700];
static double conv_u[CF * 700];

static void make_bank(double *h, size_t nc, size_t len, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t c = 0; c < nc; c++) {
        double r1 = 0.9 + 0.08 * tu_uniform(&s), r2 = 0.7 + 0.2 * tu_uniform(&s);
        double w1 = 0.3 + 0.2 * tu_uniform(&s), w2 = 1.5 + 0.5 * tu_uniform(&s);
        double p1 = 1.0, p2 = 1.0;
        for (size_t k = 0; k < len; k++) {
            h[c * len + k] = p1 * cos(w1 * (double)k) + 0.5 * p2 * sin(w2 * (double)k) +
                             1e-3 * tu_uniform(&s);
            p1 *= r1;
            p2 *= r2;
        }
    }
}

static cr_status fit(const double *h, size_t nc, size_t len, cr_method meth, size_t order,
                     int nthreads, cr_model **out)
{
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.method = meth;
    o.order = order;
    o.nthreads = nthreads;
    return cr_fit(h, nc, len, &o, out);
}

static void run_streams(const cr_model *m, float (*yf)[NB * NC], double (*yd)[NB * NC], int caller_mem)
{
    cr_stream_f *sf = NULL;
    cr_stream_d *sd = NULL;
    void *memf = NULL, *memd = NULL;
    if (caller_mem) {
        size_t bf = 0, bd = 0;
        CHECK(cr_stream_f_mem_size(m, NB, CR_STREAM_NO_THREADS, &bf) == CR_OK);
        CHECK(cr_stream_d_mem_size(m, NB, CR_STREAM_NO_THREADS, &bd) == CR_OK);
        memf = malloc(bf);
        memd = malloc(bd);
        CHECK(cr_stream_f_init(&sf, m, NB, CR_STREAM_NO_THREADS, memf, bf) == CR_OK);
        CHECK(cr_stream_d_init(&sd, m, NB, CR_STREAM_NO_THREADS, memd, bd) == CR_OK);
    } else {
        CHECK(cr_stream_f_create(&sf, m, NB, 0) == CR_OK);
        CHECK(cr_stream_d_create(&sd, m, NB, 0) == CR_OK);
    }
    if (!sf || !sd) goto done;
    for (int t = 0; t < NT; t++) {
        float uf[NB * NC];
        for (int i = 0; i < NB * NC; i++) uf[i] = (float)inputs[t][i];
        CHECK(cr_stream_f_step(sf, uf, yf[t]) == CR_OK);
        CHECK(cr_stream_d_step(sd, inputs[t], yd[t]) == CR_OK);
    }
done:
    if (caller_mem) {
        free(memf);
        free(memd);
    } else {
        cr_stream_f_destroy(sf);
        cr_stream_d_destroy(sd);
    }
}

static void *reader(void *arg)
{
    int id = (int)(intptr_t)arg;
    double *k = malloc(sizeof ref_kernel);
    float (*yf)[NB * NC] = malloc(sizeof ref_yf);
    double (*yd)[NB * NC] = malloc(sizeof ref_yd);
    for (int r = 0; r < rounds && k && yf && yd; r++) {
        cr_model_view v;
        CHECK(cr_model_get_view(shared, &v) == CR_OK && v.C == NC);
        for (size_t c = 0; c < NC; c++) {
            CHECK(cr_model_order(shared, c) == ref_rec[c].order);
            CHECK(cr_model_spectral_radius(shared, c) < 1.0);
        }
        CHECK(cr_model_check_stable(shared, 0.0) == CR_OK);
        CHECK(cr_model_kernel(shared, LK, k) == CR_OK);
        CHECK(memcmp(k, ref_kernel, sizeof ref_kernel) == 0);
        for (size_t c = 0; c < NC; c++) {
            cr_fit_record rec = ref_rec[c];
            CHECK(cr_model_errors(shared, c, bank + c * NL, NL, &rec) == CR_OK);
            CHECK(rec.err_window == ref_rec[c].err_window && rec.err_hinf == ref_rec[c].err_hinf);
        }
        /* a failure's detail belongs to the thread that failed */
        CHECK(cr_model_kernel(shared, 0, k) == CR_EINVAL);
        CHECK(strstr(cr_error_detail(), "") != NULL && cr_error_detail()[0] != '\0');
        char *js = NULL, *sos = NULL;
        CHECK(cr_export_json_string(shared, &js) == CR_OK && js && strcmp(js, ref_json) == 0);
        CHECK(cr_export_sos_string(shared, &sos) == CR_OK && sos && strcmp(sos, ref_sos) == 0);
        free(js);
        free(sos);
        cr_model *cp = NULL;
        CHECK(cr_model_copy(shared, &cp) == CR_OK);
        cr_model_destroy(cp);
        run_streams(shared, yf, yd, (id + r) % 2);
        CHECK(memcmp(yf, ref_yf, sizeof ref_yf) == 0);
        CHECK(memcmp(yd, ref_yd, sizeof ref_yd) == 0);
    }
    free(k);
    free(yf);
    free(yd);
    return NULL;
}

static void fit_all(int f, cr_fit_record (*recs)[CF], double *conv)
{
    for (int i = 0; i < NMETH; i++) {
        cr_model *m = NULL;
        CHECK(fit(fbank[f], CF, LF, methods[i], 6, 1 + f % 2, &m) == CR_OK);
        cr_model_view v;
        if (m && cr_model_get_view(m, &v) == CR_OK)
            memcpy(recs[i], v.record, sizeof recs[i]);
        cr_model_destroy(m);
    }
    /* FFT sizes differ between the threads: plans are made concurrently */
    size_t Tc = 500 + 100 * (size_t)f;
    CHECK(cr_conv_d(fbank[f], CF, LF, conv_u, 1, Tc, conv, 1) == CR_OK);
}

static void *fitter(void *arg)
{
    int f = (int)(intptr_t)arg;
    cr_fit_record (*recs)[CF] = malloc(sizeof fref[f]);
    double *conv = malloc(sizeof conv_ref[f]);
    for (int r = 0; r < rounds && recs && conv; r++) {
        memset(conv, 0, sizeof conv_ref[f]);
        fit_all(f, recs, conv);
        for (int i = 0; i < NMETH; i++)
            for (int c = 0; c < CF; c++)
                CHECK(recs[i][c].err_window == fref[f][i][c].err_window &&
                      recs[i][c].order == fref[f][i][c].order);
        CHECK(memcmp(conv, conv_ref[f], sizeof conv_ref[f]) == 0);
    }
    free(recs);
    free(conv);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1) rounds = atoi(argv[1]);
    /* everything computed alone first */
    make_bank(bank, NC, NL, 1);
    cr_model *m = NULL;
    if (fit(bank, NC, NL, CR_METHOD_AUTO, 8, 1, &m) != CR_OK) {
        fprintf(stderr, "test_threads: fit failed: %s\n", cr_error_detail());
        return 1;
    }
    shared = m;
    cr_model_view v;
    cr_model_get_view(m, &v);
    memcpy(ref_rec, v.record, sizeof ref_rec);
    if (cr_model_kernel(m, LK, ref_kernel) != CR_OK || cr_export_json_string(m, &ref_json) != CR_OK ||
        cr_export_sos_string(m, &ref_sos) != CR_OK)
        return 1;
    uint64_t s = 7;
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < NB * NC; i++) inputs[t][i] = tu_uniform(&s);
    run_streams(m, ref_yf, ref_yd, 0);
    for (int f = 0; f < NFITTERS; f++) make_bank(fbank[f], CF, LF, 100 + (uint64_t)f);
    for (size_t i = 0; i < sizeof conv_u / sizeof conv_u[0]; i++) conv_u[i] = tu_uniform(&s);
    for (int f = 0; f < NFITTERS; f++) fit_all(f, fref[f], conv_ref[f]);
    if (failures) return 1;
    int calls_alone = blas_calls;

    pthread_t th[NREADERS + NFITTERS];
    for (int i = 0; i < NREADERS; i++) pthread_create(&th[i], NULL, reader, (void *)(intptr_t)i);
    for (int f = 0; f < NFITTERS; f++)
        pthread_create(&th[NREADERS + f], NULL, fitter, (void *)(intptr_t)f);
    for (int i = 0; i < NREADERS + NFITTERS; i++) pthread_join(th[i], NULL);

    /* defect 5: the library leaves OpenBLAS's global thread count alone */
    CHECK(calls_alone == 0 && blas_calls == 0);
    cr_model_destroy(m);
    free(ref_json);
    free(ref_sos);
    printf("test_threads: %d readers x %d rounds, %d fitters x %d methods: %s\n", NREADERS,
           rounds, NFITTERS, NMETH, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
