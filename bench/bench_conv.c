/* Benchmark of the spectral module.
 *
 *   bench_conv [C [L [T [reps]]]]      defaults: 256 8192 8192 5
 *
 * For float and double, prints one line of key=value pairs per measurement:
 *   what=lower_bound  the FFTW transforms a batched FFT convolution cannot
 *                     avoid: C kernel transforms, and per channel and
 *                     overlap-save segment one forward and one inverse
 *                     transform, of the very sizes cr_conv_* picks, with the
 *                     same plans, threads and OpenMP schedule (best of reps)
 *   what=conv         cr_conv_d / cr_conv_f on (C, L) x (C, T) (best of reps)
 *   what=direct       direct O(L T) convolution of a few channels on one
 *                     thread, scaled to C channels and divided by the thread
 *                     count (the ideal parallel time)
 *   what=ols          overlap-save streamer, P = 64, pushes of P samples
 *   what=fir          direct-form FIR streamer, pushes of 64 samples
 * Every line has seconds= (for all C channels and T samples), ns_per_sample=
 * (seconds / (C T), per channel and sample) and ratio_lb= (seconds / lower
 * bound). Streamers run on one thread over a subset of channels; their
 * seconds are scaled to C channels. Acceptance: conv ratio_lb <= 1.5. */
#ifndef BENCH_TEMPLATE
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "convrec.h"
#include "spectral/spectral.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x12345678;
static double urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static int nthreads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static size_t C, L, T;
static int reps;
static double lb_seconds;

static void report(const char *prec, const char *what, double sec, const char *extra)
{
    printf("bench=conv prec=%s what=%s C=%zu L=%zu T=%zu threads=%d seconds=%.6f ns_per_sample=%.3f "
           "ratio_lb=%.3f%s%s\n",
           prec, what, C, L, T, nthreads(), sec, 1e9 * sec / ((double)C * (double)T),
           lb_seconds > 0 ? sec / lb_seconds : 0.0, extra ? " " : "", extra ? extra : "");
    fflush(stdout);
}

/* The per-precision part is this file included again with BENCH_TEMPLATE. */
#define BENCH_TEMPLATE
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(x) CAT(x, SFX)
#define CAT3_(a, b, c) a##_##b##_##c
#define CAT3(a, b, c) CAT3_(a, b, c)
#define FN(obj, verb) CAT3(obj, SFX, verb)

#define R double
#define CPX fftw_complex
#define FPLAN fftw_plan
#define FFTW(x) fftw_##x
#define PLAN cr__plan_d
#define ALLOC_R cr__fft_alloc_d
#define ALLOC_C cr__fft_alloc_cd
#define SFX d
#define PREC "double"
#include __FILE__
#undef R
#undef CPX
#undef FPLAN
#undef FFTW
#undef PLAN
#undef ALLOC_R
#undef ALLOC_C
#undef SFX
#undef PREC

#define R float
#define CPX fftwf_complex
#define FPLAN fftwf_plan
#define FFTW(x) fftwf_##x
#define PLAN cr__plan_f
#define ALLOC_R cr__fft_alloc_f
#define ALLOC_C cr__fft_alloc_cf
#define SFX f
#define PREC "float"
#include __FILE__

static size_t arg(int argc, char **argv, int i, size_t dflt)
{
    if (argc <= i) return dflt;
    char *end;
    unsigned long long v = strtoull(argv[i], &end, 10);
    if (*end != '\0' || v == 0) {
        fprintf(stderr, "usage: %s [C [L [T [reps]]]] (positive integers)\n", argv[0]);
        exit(2);
    }
    return (size_t)v;
}

int main(int argc, char **argv)
{
    C = arg(argc, argv, 1, 256);
    L = arg(argc, argv, 2, 8192);
    T = arg(argc, argv, 3, 8192);
    reps = (int)arg(argc, argv, 4, 5);
    int rc = bench_d() | bench_f();
    return rc;
}

#else /* BENCH_TEMPLATE: one precision */

static int NAME(bench)(void)
{
    size_t N, S;
    if (!cr__conv_sizes(L, T, 1, &N, &S)) return 1;
    size_t nc = N / 2 + 1, nseg = (T + S - 1) / S;
    R *h = malloc(C * L * sizeof(R)), *u = malloc(C * T * sizeof(R)), *y = malloc(C * T * sizeof(R));
    if (h == NULL || u == NULL || y == NULL) return 1;
    for (size_t i = 0; i < C * L; i++) h[i] = (R)(urand() * exp(-3.0 * (double)(i % L) / (double)L));
    for (size_t i = 0; i < C * T; i++) u[i] = (R)urand();
    char extra[160];
    snprintf(extra, sizeof extra, "fft_n=%zu segments=%zu", N, nseg);

    /* Lower bound: the same transforms with the same plans and threads. The
     * inputs are never overwritten (r2c keeps its input), so values do not
     * grow from one repetition to the next. The lower bound and cr_conv are
     * timed alternately so that both see the same machine load; best of
     * reps for each, after one warm-up round (plans, pages). */
    double best = INFINITY, best_conv = INFINITY;
    int failed = 0;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
#pragma omp parallel reduction(| : failed)
        {
            R *in = ALLOC_R(N), *out = ALLOC_R(N);
            CPX *X = ALLOC_C(nc);
            FPLAN f = NULL, b = NULL;
            if (in != NULL && out != NULL && X != NULL) {
                for (size_t i = 0; i < N; i++) in[i] = (R)(i < L ? 1.0 / (double)(i + 1) : 0.0);
                f = PLAN(CR__FFT_R2C, N, in, X);
                b = PLAN(CR__FFT_C2R, N, X, out);
            }
            if (f == NULL || b == NULL) failed = 1;
            /* C kernel transforms, then one forward and one inverse
             * transform per (channel, segment), shared out item by item so
             * the reference is parallel even when C < threads. */
#pragma omp for schedule(static)
            for (size_t c = 0; c < C; c++)
                if (f != NULL) FFTW(execute_dft_r2c)(f, in, X);
#pragma omp for schedule(dynamic, 1)
            for (size_t it = 0; it < C * nseg; it++) {
                if (f == NULL || b == NULL) continue;
                FFTW(execute_dft_r2c)(f, in, X);
                FFTW(execute_dft_c2r)(b, X, out);
            }
            cr__fft_free(in);
            cr__fft_free(out);
            cr__fft_free(X);
        }
        double dt = now() - t0;
        if (r > 0 && dt < best) best = dt;
        if (failed) {
            fprintf(stderr, "lower bound: allocation or planning failed\n");
            return 1;
        }
        t0 = now();
        cr_status st = NAME(cr_conv)(h, C, L, u, 1, T, y, 0);
        dt = now() - t0;
        if (st != CR_OK) {
            fprintf(stderr, "conv: %s: %s\n", cr_strerror(st), cr_error_detail());
            return 1;
        }
        if (r > 0 && dt < best_conv) best_conv = dt;
    }
    lb_seconds = best;
    report(PREC, "lower_bound", best, extra);
    report(PREC, "conv", best_conv, extra);

    /* Direct convolution of a few channels on one thread, scaled. */
    size_t cd = C < 2 ? C : 2;
    double t0 = now(), sink = 0;
    for (size_t c = 0; c < cd; c++) {
        const R *hc = h + c * L, *uc = u + c * T;
        for (size_t t = 0; t < T; t++) {
            size_t kmax = t < L - 1 ? t : L - 1;
            R acc = 0;
#pragma omp simd reduction(+ : acc)
            for (size_t k = 0; k <= kmax; k++) acc += hc[k] * uc[t - k];
            y[c * T + t] = acc;
        }
    }
    double dt = now() - t0;
    for (size_t i = 0; i < cd * T; i++) sink += (double)y[i];
    snprintf(extra, sizeof extra, "measured_channels=%zu threads_used=1 scaled_to_threads=%d checksum=%.6g", cd,
             nthreads(), sink);
    report(PREC, "direct", dt * (double)C / (double)cd / (double)nthreads(), extra);

    /* Streamers on one thread, a subset of channels, scaled to C. */
    size_t P = 64, cs = C < 16 ? C : 16, got = 0;
    NAME(cr_ols) *ols = NULL;
    if (FN(cr_ols, create)(&ols, h, cs, L, P, P) != CR_OK) return 1;
    t0 = now();
    for (size_t t = 0; t + P <= T; t += P) {
        if (FN(cr_ols, push)(ols, u + t, T, P) != CR_OK) return 1;
        if (FN(cr_ols, pull)(ols, y + t, T, P, &got) != CR_OK || got != P) return 1;
    }
    dt = now() - t0;
    FN(cr_ols, destroy)(ols);
    size_t Tb = T / P * P;
    snprintf(extra, sizeof extra, "P=%zu latency=%zu measured_channels=%zu threads_used=1", P, P, cs);
    if (Tb > 0) report(PREC, "ols", dt * (double)C * (double)T / ((double)cs * (double)Tb), extra);

    size_t cf = C < 4 ? C : 4;
    NAME(cr_fir) *fir = NULL;
    if (FN(cr_fir, create)(&fir, h, cf, L) != CR_OK) return 1;
    t0 = now();
    for (size_t t = 0; t < T; t += P) {
        size_t n = T - t < P ? T - t : P;
        if (FN(cr_fir, process)(fir, u + t, T, y + t, T, n) != CR_OK) return 1;
    }
    dt = now() - t0;
    FN(cr_fir, destroy)(fir);
    snprintf(extra, sizeof extra, "latency=0 measured_channels=%zu threads_used=1", cf);
    report(PREC, "fir", dt * (double)C / (double)cf, extra);

    free(h);
    free(u);
    free(y);
    return 0;
}

#endif /* BENCH_TEMPLATE */
