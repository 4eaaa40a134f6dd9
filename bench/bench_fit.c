/* Fit speed benchmark. One key=value line per measurement.
 *
 *   bench_fit [--no-hsv] [--no-sweep] [--no-accept] [--dense-max L]
 *
 * hsv:    dense vs Lanczos vs the former subspace iteration (leading 17
 *         triplets, fit tolerances, one thread), to place the dense /
 *         iterative switch (HK_DENSE_MAX in src/hankel.c).
 * sweep:  seconds per kernel (1 thread) at L in {512, 2048, 8192, 65536},
 *         N in {8, 16, 32}, for bt and auto, with a dense LAPACK balanced
 *         truncation (dgesdd of the formed (L-1) x (L-1) Hankel, then the
 *         same projection) as the in-process reference when L <= dense-max
 *         (default 2048: beyond, the dense SVD takes minutes and GBs).
 * accept: 864 kernels x L = 2048 at N = 16 (auto, all threads), target
 *         <= 3 s on 2 cores; 32 kernels x L = 65536 at N = 16, target
 *         <= 60 s and peak RSS <= 1 GiB (getrusage maxrss).
 * Kernels are synthetic Hyena-style filters: a random sum of damped
 * oscillations plus noise, under an exponential decay window. */
#include "config.h"
#include "fit/fit.h"

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

static void hyena_kernel(double *h, size_t L, uint64_t seed)
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
    openblas_set_num_threads(1);   /* as inside cr_fit */
#endif
    for (size_t t = 0; t < sizeof Ls / sizeof *Ls; t++) {
        size_t L = Ls[t], reps = L > 512 ? 10 : 20;
        double *h = malloc(L * sizeof *h);
        hyena_kernel(h, L, 1 + L);
        for (int w = 0; w < 2; w++)
        for (int mode = L > 512 ? 2 : 1; mode <= 2; mode++) {
            const cr__hsvd_req req = { 17, 17, 1, 1e-12, 1e-2, (cr__hsvd_how)mode };
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
        for (size_t c = 0; c < C; c++) hyena_kernel(h + c * L, L, 100 * t + c);
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

static void bench_accept(void)
{
    int th = 0;
#ifdef _OPENMP
    th = omp_get_max_threads();
#endif
    size_t C = 864, L = 2048;
    double *h = malloc(C * L * sizeof *h);
    for (size_t c = 0; c < C; c++) hyena_kernel(h + c * L, L, 7000 + c);
    run_fit("auto", CR_METHOD_AUTO, h, C, L, 16, th, "accept_864x2048");
    printf("bench=accept_864x2048 target_sec=3 cores=2\n");
    free(h);
    C = 32;
    L = 65536;
    h = malloc(C * L * sizeof *h);
    for (size_t c = 0; c < C; c++) hyena_kernel(h + c * L, L, 9000 + c);
    run_fit("auto", CR_METHOD_AUTO, h, C, L, 16, th, "accept_32x65536");
    printf("bench=accept_32x65536 target_sec=60 target_maxrss_mib=1024 maxrss_mib=%.1f\n", maxrss_mib());
    free(h);
}

int main(int argc, char **argv)
{
    int hsv = 1, sweep = 1, accept = 1;
    size_t dense_max = 2048;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-hsv")) hsv = 0;
        else if (!strcmp(argv[i], "--no-sweep")) sweep = 0;
        else if (!strcmp(argv[i], "--no-accept")) accept = 0;
        else if (!strcmp(argv[i], "--dense-max") && i + 1 < argc) dense_max = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--no-hsv] [--no-sweep] [--no-accept] [--dense-max L]\n", argv[0]);
            return 2;
        }
    }
    if (hsv) bench_hsv();
    if (sweep) bench_sweep(dense_max);
    if (accept) bench_accept();
    return 0;
}
