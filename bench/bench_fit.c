/* Fit speed benchmark. One key=value line per measurement.
 *
 *   bench_fit [--no-hsv] [--no-sweep] [--no-families] [--dense-max L]
 *             [--family NAME]... [--threads T] [--save DIR] [--no-ref]
 *
 * --no-ref skips the in-process references of the families (for a
 * profile of the fit alone: perf record bench_fit --no-ref ...).
 * --save DIR writes each family's bank as DIR/NAME.npy (for
 * bench/compare_fit.py, which times two convrec commands on them).
 *
 * hsv:      dense vs Lanczos (leading 17 triplets, fit tolerances, one
 *           thread), to place the dense / iterative switch (HK_DENSE_MAX
 *           in src/hankel/hankel.c).
 * sweep:    seconds per kernel (1 thread) at L in {512, 2048, 8192, 65536},
 *           N in {8, 16, 32}, for bt and auto on the synthetic family, with
 *           a dense LAPACK balanced truncation (dgesdd of the formed
 *           (L-1) x (L-1) Hankel, then the same projection) as the
 *           in-process reference when L <= dense-max (default 2048).
 * families: whole banks at N = 16 with auto on all threads, one line per
 *           family: seconds, median, 90th-percentile and geometric-mean error,
 *           LM iterations and evaluations per kernel, where the time goes
 *           (Hankel SVDs, starts, refinements: thread-seconds), far-route
 *           channels, peak RSS; and the in-process reference (the same
 *           bank by bt alone; dense LAPACK bt of one kernel when L <= 2048).
 *   synthetic 864 x 2048   damped sinusoids plus noise under a decay window
 *   hyena     864 x 2048   Hyena implicit filters at initialisation: an MLP
 *                          (33 -> 64 -> 64 -> 64 -> C, sine activations,
 *                          PyTorch's default uniform init) of sinusoidal
 *                          position features times the exponential decay
 *                          window of the Hyena paper (Poli et al. 2023)
 *   noise     32 x 65536   white noise under exponential decays with time
 *                          constants 0.05 .. 0.3 L
 *   s4d       512 x 1024   trained S4D kernels (../shared/data)
 *   ckconv    256 x 784    trained CKConv kernels (../shared/data)
 *   rir       3 x 16384    measured room responses (../shared/data), infinite
 *                          horizon
 * Shared-data families are skipped when the folder is absent. */
#include "config.h"
#include "fit/fit.h"
#include "convrec.h"

#include <lapacke.h>
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
#include <cblas.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double rng_u(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
static double rng_n(uint64_t *s)
{
    double u1 = rng_u(s) + 1e-300, u2 = rng_u(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void synth_kernel(double *h, size_t L, uint64_t seed)
{
    uint64_t s = seed * 0x2545f4914f6cdd1dULL + 1;
    double tau = (0.05 + 0.25 * rng_u(&s)) * (double)L;   /* decay window */
    memset(h, 0, L * sizeof *h);
    for (int m = 0; m < 12; m++) {
        double f = 3.14159 * rng_u(&s) * rng_u(&s), ph = 6.283 * rng_u(&s);
        double a = rng_n(&s), dec = 1.0 / (0.02 + rng_u(&s)) / (double)L;
        for (size_t k = 0; k < L; k++) h[k] += a * exp(-dec * (double)k) * cos(f * (double)k + ph);
    }
    for (size_t k = 0; k < L; k++) h[k] = (h[k] + 0.02 * rng_n(&s)) * exp(-(double)k / tau);
}

static double maxrss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Dense reference: dgesdd of the formed zero-padded Hankel, then the same
 * balanced-truncation projection. */
static cr_status dense_bt(const double *h, size_t L, size_t N, cr__modal *m)
{
    size_t n = L - 1;
    cr__hsvd s;
    memset(&s, 0, sizeof s);
    double *H = malloc(n * n * sizeof *H), *U = malloc(n * n * sizeof *U);
    double *VT = malloc(n * n * sizeof *VT);
    s.sigma = malloc(n * sizeof *s.sigma);
    s.err = calloc(n, sizeof *s.err);
    s.V = malloc(n * N * sizeof *s.V);
    cr_status st = CR_ENOMEM;
    if (H && U && VT && s.sigma && s.err && s.V) {
        for (size_t j = 0; j < n; j++)
            for (size_t i = 0; i < n; i++) H[i + j * n] = i + j + 1 < L ? h[i + j + 1] : 0.0;
        lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)n, H,
                                         (lapack_int)n, s.sigma, U, (lapack_int)n, VT, (lapack_int)n);
        st = info == 0 ? CR_OK : CR_ELAPACK;
        if (st == CR_OK) {
            for (size_t c = 0; c < N; c++)
                for (size_t i = 0; i < n; i++) s.V[i + c * n] = VT[c + i * n];
            s.m = s.n = s.r = n;
            s.k = N;
            s.nsigma = s.nconv = n;
            s.dense = 1;
            st = cr__bt_from_svd(h, L, N, 1.0 - 1e-6, &s, m);
        }
    }
    free(H); free(U); free(VT);
    cr__hsvd_free(&s);
    return st;
}

static void bench_hsv(void)
{
    /* 1 dense, 2 Lanczos (square) / Golub-Kahan (rectangular) */
    static const char *const path[] = { "auto", "dense", "lanczos" };
    const size_t Ls[] = { 64, 96, 128, 192, 256, 512, 2048, 2049 };
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
#endif
    for (size_t t = 0; t < sizeof Ls / sizeof *Ls; t++) {
        size_t L = Ls[t], reps = L > 512 ? 10 : 20;
        double *h = malloc(L * sizeof *h);
        synth_kernel(h, L, 1 + L);
        for (int w = 0; w < 2; w++)
        for (int mode = L > 512 ? 2 : 1; mode <= 2; mode++) {
            const cr__hsvd_req req = { 17, 17, 1, 1e-12, 1e-2, (cr__hsvd_how)mode, 0.0 };
            cr_horizon hz = w ? CR_HORIZON_WINDOW : CR_HORIZON_INFINITE;
            double t0 = now();
            for (size_t r = 0; r < reps; r++) {
                cr__hsvd s;
                if (cr__hankel_svd(h, L, hz, &req, &s) != CR_OK) {
                    printf("bench=hsv L=%zu error=\"%s\"\n", L, cr_error_detail());
                    break;
                }
                cr__hsvd_free(&s);
            }
            printf("bench=hsv L=%zu horizon=%s k=17 path=%s sec=%.6g\n", L, w ? "window" : "infinite",
                   path[mode], (now() - t0) / (double)reps);
        }
        free(h);
    }
}

/* Seconds per kernel with one thread; median window error. */
static void run_fit(const char *name, cr_method meth, const double *h, size_t C, size_t L,
                    size_t N, int threads, const char *tag)
{
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.method = meth;
    o.order = N;
    o.nthreads = threads;
    cr_model *m = NULL;
    double t0 = now();
    cr_status st = cr_fit(h, C, L, &o, &m);
    double sec = now() - t0;
    if (st != CR_OK) {
        printf("bench=%s method=%s L=%zu N=%zu error=\"%s\"\n", tag, name, L, N, cr_error_detail());
        return;
    }
    cr_model_view v;
    cr_model_get_view(m, &v);
    double *e = malloc(C * sizeof *e), *hi = malloc(C * sizeof *hi);
    for (size_t c = 0; c < C; c++) {
        e[c] = v.record[c].err_window;
        hi[c] = v.record[c].err_hinf / v.record[c].sigma_next;
    }
    qsort(e, C, sizeof *e, cmp_d);
    qsort(hi, C, sizeof *hi, cmp_d);
    printf("bench=%s method=%s L=%zu N=%zu kernels=%zu threads=%d sec=%.4g sec_per_kernel=%.4g "
           "err_window_median=%.3e hinf_over_sigma_median=%.3f maxrss_mib=%.1f\n",
           tag, name, L, N, C, threads, sec, sec / (double)C, e[C / 2], hi[C / 2], maxrss_mib());
    fflush(stdout);
    free(e);
    free(hi);
    cr_model_destroy(m);
}

static void bench_sweep(size_t dense_max)
{
    const size_t Ls[] = { 512, 2048, 8192, 65536 };
    const size_t Ns[] = { 8, 16, 32 };
    for (size_t t = 0; t < 4; t++) {
        size_t L = Ls[t];
        size_t C = L <= 512 ? 16 : L <= 2048 ? 8 : L <= 8192 ? 4 : 2;
        double *h = malloc(C * L * sizeof *h);
        for (size_t c = 0; c < C; c++) synth_kernel(h + c * L, L, 100 * t + c);
        for (size_t q = 0; q < 3; q++) {
            size_t N = Ns[q];
            run_fit("bt", CR_METHOD_BT, h, C, L, N, 1, "sweep");
            run_fit("auto", CR_METHOD_AUTO, h, C, L, N, 1, "sweep");
            if (L > dense_max) {
                printf("bench=sweep method=dense_bt L=%zu N=%zu skipped=1 reason=\"L > dense-max %zu\"\n",
                       L, N, dense_max);
                continue;
            }
            /* the dense SVD dominates: one kernel is enough */
            cr__modal m;
            cr__modal_alloc(&m, N);
            double t0 = now();
            cr_status st = dense_bt(h, L, N, &m);
            double sec = now() - t0;
            cr_fit_record rec;
            if (st == CR_OK) st = cr__modal_errors(&m, h, L, &rec);
            /* the FFT/randomized bt on the same kernel, for a like-for-like error */
            cr__modal mf;
            cr_fit_record rf;
            cr__modal_alloc(&mf, N);
            cr__fitctx fc;
            cr_status sf = cr__fitctx_init(&fc, h, L, CR_HORIZON_INFINITE, 1e-6);
            if (sf == CR_OK) sf = cr__fit_bt(&fc, N, &mf);
            cr__fitctx_free(&fc);
            if (sf == CR_OK) sf = cr__modal_errors(&mf, h, L, &rf);
            if (st == CR_OK && sf == CR_OK)
                printf("bench=sweep method=dense_bt L=%zu N=%zu kernels=1 threads=1 sec_per_kernel=%.4g "
                       "err_window=%.3e err_hinf=%.3e fast_bt_err_window=%.3e fast_bt_err_hinf=%.3e "
                       "maxrss_mib=%.1f\n", L, N, sec, rec.err_window, rec.err_hinf, rf.err_window,
                       rf.err_hinf, maxrss_mib());
            else
                printf("bench=sweep method=dense_bt L=%zu N=%zu error=%d\n", L, N, (int)st);
            fflush(stdout);
            cr__modal_free(&m);
            cr__modal_free(&mf);
        }
        free(h);
    }
}

/* ---------------------------------------------------------------------
 * Families
 * --------------------------------------------------------------------- */

/* y (n x o) = sin(w (x (n x i) W + b)), W (i x o) and b uniform in
 * +-1/sqrt(i) (PyTorch's nn.Linear default), row-major. */
static void mlp_layer(const double *x, size_t n, size_t i, size_t o, double w, int act,
                      uint64_t *s, double *y)
{
    double bound = 1.0 / sqrt((double)i);
    double *W = malloc(i * o * sizeof *W), *b = malloc(o * sizeof *b);
    for (size_t q = 0; q < i * o; q++) W[q] = bound * (2.0 * rng_u(s) - 1.0);
    for (size_t q = 0; q < o; q++) b[q] = act ? bound * (2.0 * rng_u(s) - 1.0) : 0.0;
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < o; c++) {
            double a = b[c];
            for (size_t q = 0; q < i; q++) a += x[r * i + q] * W[q * o + c];
            y[r * o + c] = act ? sin(w * a) : a;
        }
    free(W);
    free(b);
}

/* Hyena implicit filters (C, L) at initialisation (see the file comment). */
static void hyena_bank(double *h, size_t C, size_t L, uint64_t seed)
{
    const size_t emb = 33, bands = (emb - 1) / 2, order = 64;
    uint64_t s = seed;
    double *z = malloc(L * emb * sizeof *z), *a = malloc(L * order * sizeof *a);
    double *b = malloc(L * order * sizeof *b), *y = malloc(L * C * sizeof *y);
    for (size_t t = 0; t < L; t++) {
        double tn = L > 1 ? (double)t / (double)(L - 1) : 0.0, wt = 2.0 * M_PI * (double)t / (double)L;
        z[t * emb] = tn;
        for (size_t f = 0; f < bands; f++) {
            double fr = 1e-4 + (double)f * ((double)(bands - 1) - 1e-4) / (double)(bands - 1);
            z[t * emb + 1 + f] = cos(fr * wt);
            z[t * emb + 1 + bands + f] = -sin(fr * wt);
        }
    }
    mlp_layer(z, L, emb, order, 1.0, 1, &s, a);
    mlp_layer(a, L, order, order, 1.0, 1, &s, b);
    mlp_layer(b, L, order, order, 1.0, 1, &s, a);
    mlp_layer(a, L, order, C, 1.0, 0, &s, y);
    /* decay rates linspace(log(1e-2) / 1.5, log(1e-2) / 0.3, C) */
    for (size_t c = 0; c < C; c++) {
        double mn = log(1e-2) / 1.5, mx = log(1e-2) / 0.3;
        double dl = C > 1 ? mn + (mx - mn) * (double)c / (double)(C - 1) : mn;
        for (size_t t = 0; t < L; t++) {
            double tn = L > 1 ? (double)t / (double)(L - 1) : 0.0;
            h[c * L + t] = y[t * C + c] * exp(-tn * fabs(dl));
        }
    }
    free(z); free(a); free(b); free(y);
}

static void noise_bank(double *h, size_t C, size_t L, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t c = 0; c < C; c++) {
        double tau = (0.05 + 0.25 * rng_u(&s)) * (double)L;
        for (size_t k = 0; k < L; k++) h[c * L + k] = rng_n(&s) * exp(-(double)k / tau);
    }
}

/* A (C, L) bank from a shared .npy file (rows taken as they are, each
 * truncated to at most Lmax), or NULL when the data folder is absent. */
static double *shared_bank(const char *rel, size_t Lmax, size_t *C, size_t *L)
{
    char path[1024];
    const char *dir = getenv("CONVREC_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : CR_BENCH_DATA_DIR, rel);
    cr_array a;
    if (cr_npy_read(path, &a) != CR_OK) return NULL;
    size_t rows = a.ndim == 1 ? 1 : a.shape[0], cols = a.ndim == 1 ? a.shape[0] : a.shape[1];
    size_t n = cols < Lmax ? cols : Lmax;
    double *h = malloc(rows * n * sizeof *h);
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < n; k++)
            h[r * n + k] = a.dtype == CR_FLOAT64 ? ((double *)a.data)[r * cols + k]
                                                 : ((float *)a.data)[r * cols + k];
    cr_array_free(&a);
    *C = rows;
    *L = n;
    return h;
}

/* One family: auto at order N on every thread, with the time split. */
static const char *save_dir; /* --save DIR: each family's bank as DIR/NAME.npy */
static int no_ref;            /* --no-ref: no in-process references */

static void run_family(const char *fam, const double *h, size_t C, size_t L, size_t N,
                       cr_horizon hz, int threads)
{
    if (save_dir) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.npy", save_dir, fam);
        cr_array a = { CR_FLOAT64, 2, { C, L, 1 }, (void *)h };
        if (cr_npy_write(path, &a) != CR_OK)
            fprintf(stderr, "bench_fit: cannot write %s: %s\n", path, cr_error_detail());
    }
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.order = N;
    o.horizon = hz;
    o.nthreads = threads;
    cr__fit_stats fs;
    memset(&fs, 0, sizeof fs);
    cr_model *m = NULL;
    double t0 = now();
    cr_status st = cr__fit_bank(h, C, L, &o, &m, &fs);
    double sec = now() - t0;
    if (st != CR_OK) {
        printf("bench=family family=%s error=\"%s\"\n", fam, cr_error_detail());
        return;
    }
    cr_model_view v;
    cr_model_get_view(m, &v);
    double *e = malloc(C * sizeof *e);
    for (size_t c = 0; c < C; c++)
        e[c] = hz == CR_HORIZON_WINDOW ? v.record[c].err_window : v.record[c].err_infinite;
    qsort(e, C, sizeof *e, cmp_d);
    double lg = 0.0; /* geometric mean over the nonzero errors */
    size_t nz = 0;
    for (size_t c = 0; c < C; c++)
        if (e[c] > 0.0) {
            lg += log(e[c]);
            nz++;
        }
    double gmean = nz ? exp(lg / (double)nz) : 0.0;
    cr_model_destroy(m);
    /* the in-process references: the same bank by balanced truncation */
    double sec_bt = -1.0, sec_dense = -1.0;
    if (!no_ref) {
        o.method = CR_METHOD_BT;
        t0 = now();
        st = cr_fit(h, C, L, &o, &m);
        sec_bt = now() - t0;
        if (st == CR_OK) cr_model_destroy(m);
    }
    if (!no_ref && L <= 2048) {
        cr__modal dm;
        cr__modal_alloc(&dm, N);
        t0 = now();
        if (dense_bt(h, L, N, &dm) == CR_OK) sec_dense = now() - t0;
        cr__modal_free(&dm);
    }
    printf("bench=family family=%s horizon=%s kernels=%zu L=%zu N=%zu threads=%d sec=%.4g "
           "ms_per_kernel=%.4g err_median=%.4e err_p90=%.4e err_gmean=%.4e lm_iter_per_kernel=%.2f "
           "lm_eval_per_kernel=%.2f thread_sec_hsv=%.4g thread_sec_start=%.4g "
           "thread_sec_refine=%.4g far_channels=%zu sec_bt_bank=%.4g ratio_to_bt=%.3g "
           "sec_dense_bt_one_kernel=%.4g maxrss_mib=%.1f\n",
           fam, hz == CR_HORIZON_WINDOW ? "window" : "infinite", C, L, N, threads, sec,
           1e3 * sec / (double)C, e[C / 2], e[(9 * C) / 10 < C ? (9 * C) / 10 : C - 1], gmean,
           (double)fs.lm_iter / (double)C, (double)fs.lm_eval / (double)C, fs.t_hsv, fs.t_start,
           fs.t_refine, fs.n_far, sec_bt, sec_bt > 0 ? sec / sec_bt : NAN, sec_dense, maxrss_mib());
    fflush(stdout);
    free(e);
}

static int wanted(const char *fam, const char *const *only, int nonly)
{
    if (nonly == 0) return 1;
    for (int i = 0; i < nonly; i++)
        if (!strcmp(only[i], fam)) return 1;
    return 0;
}

static void bench_families(int threads, const char *const *only, int nonly)
{
    size_t C, L;
    double *h;
    if (wanted("synthetic", only, nonly)) {
        C = 864, L = 2048;
        h = malloc(C * L * sizeof *h);
        for (size_t c = 0; c < C; c++) synth_kernel(h + c * L, L, 7000 + c);
        run_family("synthetic", h, C, L, 16, CR_HORIZON_WINDOW, threads);
        free(h);
    }
    if (wanted("hyena", only, nonly)) {
        C = 864, L = 2048;
        h = malloc(C * L * sizeof *h);
        hyena_bank(h, C, L, 12345);
        run_family("hyena", h, C, L, 16, CR_HORIZON_WINDOW, threads);
        free(h);
    }
    if (wanted("noise", only, nonly)) {
        C = 32, L = 65536;
        h = malloc(C * L * sizeof *h);
        noise_bank(h, C, L, 777);
        run_family("noise", h, C, L, 16, CR_HORIZON_WINDOW, threads);
        free(h);
    }
    static const struct { const char *fam, *file; size_t Lmax; cr_horizon hz; } sh[] = {
        { "s4d", "s4d_scifar/kernels.npy", 1024, CR_HORIZON_WINDOW },
        { "ckconv", "ckconv_smnist/kernels.npy", 784, CR_HORIZON_WINDOW },
    };
    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) {
        if (!wanted(sh[i].fam, only, nonly)) continue;
        if ((h = shared_bank(sh[i].file, sh[i].Lmax, &C, &L)) == NULL) {
            printf("bench=family family=%s skipped=1 reason=\"no shared data\"\n", sh[i].fam);
            continue;
        }
        run_family(sh[i].fam, h, C, L, 16, sh[i].hz, threads);
        free(h);
    }
    if (wanted("rir", only, nonly)) {
        size_t C1, L1, C2, L2;
        double *a = shared_bank("rir/rir_clap.npy", 16384, &C1, &L1);
        double *b = shared_bank("rir/brir_sweep.npy", 16384, &C2, &L2);
        if (a && b && L1 == L2) {
            h = malloc((C1 + C2) * L1 * sizeof *h);
            memcpy(h, a, C1 * L1 * sizeof *h);
            memcpy(h + C1 * L1, b, C2 * L2 * sizeof *h);
            run_family("rir", h, C1 + C2, L1, 16, CR_HORIZON_INFINITE, threads);
            free(h);
        } else {
            printf("bench=family family=rir skipped=1 reason=\"no shared data\"\n");
        }
        free(a);
        free(b);
    }
}

int main(int argc, char **argv)
{
    int hsv = 1, sweep = 1, families = 1, threads = 0, nonly = 0;
    const char *only[16];
    size_t dense_max = 2048;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-hsv")) hsv = 0;
        else if (!strcmp(argv[i], "--no-sweep")) sweep = 0;
        else if (!strcmp(argv[i], "--no-families")) families = 0;
        else if (!strcmp(argv[i], "--dense-max") && i + 1 < argc) dense_max = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--family") && i + 1 < argc && nonly < 16) only[nonly++] = argv[++i];
        else if (!strcmp(argv[i], "--save") && i + 1 < argc) save_dir = argv[++i];
        else if (!strcmp(argv[i], "--no-ref")) no_ref = 1;
        else {
            fprintf(stderr, "usage: %s [--no-hsv] [--no-sweep] [--no-families] [--dense-max L] "
                    "[--family NAME]... [--threads T] [--save DIR] [--no-ref]\n", argv[0]);
            return 2;
        }
    }
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_max_threads();
#else
    threads = 1;
#endif
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    /* BLAS threading is the caller's business (convrec.h): this caller
     * runs BLAS inside its own per-channel threads */
    openblas_set_num_threads(1);
#endif
    if (hsv) bench_hsv();
    if (sweep) bench_sweep(dense_max);
    if (families) bench_families(threads, only, nonly);
    return 0;
}
