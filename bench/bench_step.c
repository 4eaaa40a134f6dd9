/* Step latency of the recurrence executor, against a roofline reference
 * and the streaming convolution peers, in one run.
 *
 * Output: one JSON object per line.
 *   {"bench":"step", ...}      ns per step (all B*C channels) and per mode,
 *                              the roofline reference and the ratio.
 *   {"bench":"peer", ...}      ns per sample and channel for the recurrence
 *                              (step, and block of 64) against the direct
 *                              FIR streamer (latency 0) and the overlap-save
 *                              streamer (P = 64), with ratios.
 *   {"bench":"prefill", ...}   state after a prompt of T samples: recurrence
 *                              against FFT (the AUTO crossover).
 * The roofline reference reads and writes the same bytes as a step (state,
 * poles, residues: the same arrays, sizes and stream count) with one
 * multiply-add per written value.
 *
 * Usage: bench_step [seconds per measurement, default 0.05] [quick]
 *   "quick" runs only the acceptance cases (C = 1024, N = 16, float, B = 1;
 *   peers at L = 8192).
 */
#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double min_time = 0.05;
static volatile double sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef void (*bench_fn)(void *ctx, size_t iters);

/* Seconds per iteration: grow the count until one run lasts min_time / 4,
 * then take the best of 4 runs. */
static double time_per_iter(bench_fn f, void *ctx)
{
    size_t n = 1;
    double t;
    for (;;) {
        double t0 = now();
        f(ctx, n);
        t = now() - t0;
        if (t >= min_time / 4 || n > ((size_t)1 << 40)) break;
        n = t > 0 ? (size_t)((double)n * (min_time / 4) / t * 1.2) + 1 : n * 10;
    }
    double best = t / (double)n;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        f(ctx, n);
        double tr = (now() - t0) / (double)n;
        if (tr < best) best = tr;
    }
    return best;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* C channels of N/2 conjugate pairs (N >= 2 even), |lambda| in [0.9, 0.999]. */
static cr_model *make_model(size_t C, size_t N)
{
    size_t J = N / 2;
    cr_model *m = NULL;
    if (cr_model_create(&m, C, J) != CR_OK) return NULL;
    unsigned char kind[64];
    double pr[64], pi[64], rr[64], ri[64];
    for (size_t c = 0; c < C; c++) {
        for (size_t j = 0; j < J; j++) {
            double rad = 0.9 + 0.099 * fabs(urand()), th = 3.0 * fabs(urand()) + 1e-3;
            kind[j] = CR_MODE_PAIR;
            pr[j] = rad * cos(th);
            pi[j] = rad * sin(th);
            rr[j] = urand();
            ri[j] = urand();
        }
        if (cr_model_set_channel(m, c, J, kind, pr, pi, rr, ri, urand()) != CR_OK) {
            cr_model_destroy(m);
            return NULL;
        }
    }
    return m;
}

/* ---- the recurrence, both precisions ----------------------------------- */

typedef struct {
    cr_stream_d *sd;
    cr_stream_f *sf;
    double *ud, *yd;
    float *uf, *yf;
    size_t T;           /* block length for block benchmarks */
} rec_ctx;

static void run_step_d(void *p, size_t n)
{
    rec_ctx *c = p;
    for (size_t i = 0; i < n; i++) cr_stream_d_step(c->sd, c->ud, c->yd);
    sink += c->yd[0];
}
static void run_step_f(void *p, size_t n)
{
    rec_ctx *c = p;
    for (size_t i = 0; i < n; i++) cr_stream_f_step(c->sf, c->uf, c->yf);
    sink += c->yf[0];
}
static void run_block_f(void *p, size_t n)
{
    rec_ctx *c = p;
    for (size_t i = 0; i < n; i++) cr_stream_f_block(c->sf, c->uf, c->T, c->yf);
    sink += c->yf[0];
}

/* ---- roofline reference ------------------------------------------------ */

typedef struct {
    size_t B, S, narr;   /* narr: coefficient arrays (4, or 6 with lo poles) */
    int par;
    double *xd[2], *cd[6];
    float *xf[2], *cf[6];
} roof_ctx;

static void roof_range_d(roof_ctx *r, size_t lo, size_t hi)
{
    const size_t S = r->S;
    for (size_t b = 0; b < r->B; b++) {
        double *restrict xr = r->xd[0] + b * S, *restrict xi = r->xd[1] + b * S;
        const double *restrict a0 = r->cd[0], *restrict a1 = r->cd[1], *restrict a2 = r->cd[2],
                                *restrict a3 = r->cd[3];
#pragma omp simd
        for (size_t k = lo; k < hi; k++) {
            xr[k] = xr[k] * a0[k] + a2[k];
            xi[k] = xi[k] * a1[k] + a3[k];
        }
    }
}

static void roof_range_f(roof_ctx *r, size_t lo, size_t hi)
{
    const size_t S = r->S;
    for (size_t b = 0; b < r->B; b++) {
        float *restrict xr = r->xf[0] + b * S, *restrict xi = r->xf[1] + b * S;
        const float *restrict a0 = r->cf[0], *restrict a1 = r->cf[1], *restrict a2 = r->cf[2],
                               *restrict a3 = r->cf[3];
        if (r->narr == 6) {   /* the lo parts of the poles are read too */
            const float *restrict a4 = r->cf[4], *restrict a5 = r->cf[5];
#pragma omp simd
            for (size_t k = lo; k < hi; k++) {
                xr[k] = xr[k] * a0[k] + (a2[k] + a4[k]);
                xi[k] = xi[k] * a1[k] + (a3[k] + a5[k]);
            }
        } else {
#pragma omp simd
            for (size_t k = lo; k < hi; k++) {
                xr[k] = xr[k] * a0[k] + a2[k];
                xi[k] = xi[k] * a1[k] + a3[k];
            }
        }
    }
}

/* Same threading rule as the stream: split the slots over threads when the
 * stream would, and make no OpenMP call at all otherwise (as the stream). */
static void roof_run(roof_ctx *r, int fl)
{
    if (!r->par) {
        if (fl) roof_range_f(r, 0, r->S);
        else roof_range_d(r, 0, r->S);
        return;
    }
#pragma omp parallel
    {
        size_t nt = 1, id = 0;
#ifdef _OPENMP
        nt = (size_t)omp_get_num_threads();
        id = (size_t)omp_get_thread_num();
#endif
        size_t lo = r->S * id / nt, hi = r->S * (id + 1) / nt;
        if (fl) roof_range_f(r, lo, hi);
        else roof_range_d(r, lo, hi);
    }
}

static void roof_d(void *p, size_t n)
{
    roof_ctx *r = p;
    for (size_t i = 0; i < n; i++) roof_run(r, 0);
    sink += r->xd[0][0];
}

static void roof_f(void *p, size_t n)
{
    roof_ctx *r = p;
    for (size_t i = 0; i < n; i++) roof_run(r, 1);
    sink += r->xf[0][0];
}

static int threads_for(size_t B, size_t S, size_t C, unsigned flags)
{
    /* Mirrors CR__PAR_MIN in recurrence.c. */
    return !(flags & CR_STREAM_NO_THREADS) && B * (S + C) >= ((size_t)1 << 16);
}

/* One line of the step grid. */
static void bench_step(int fl, size_t C, size_t N, size_t B, unsigned flags)
{
    cr_model *m = make_model(C, N);
    if (!m) return;
    size_t J = N / 2, S = C * J;   /* every channel has J modes: no padding */
    rec_ctx rc = { 0 };
    roof_ctx rf = { 0 };
    rf.B = B;
    rf.S = S;
    rf.narr = (fl && !(flags & CR_STREAM_F32_FAST)) ? 6 : 4;
    rf.par = threads_for(B, S, C, flags);
    int ok = 1;
    if (fl) {
        ok = cr_stream_f_create(&rc.sf, m, B, flags) == CR_OK;
        rc.uf = malloc(B * C * sizeof(float));
        rc.yf = malloc(B * C * sizeof(float));
        for (int k = 0; k < 2; k++) rf.xf[k] = calloc(B * S, sizeof(float));
        for (size_t k = 0; k < rf.narr; k++) rf.cf[k] = calloc(S, sizeof(float));
        ok = ok && rc.uf && rc.yf && rf.xf[0] && rf.xf[1];
        for (size_t k = 0; k < rf.narr; k++) ok = ok && rf.cf[k];
        if (ok) {
            for (size_t i = 0; i < B * C; i++) rc.uf[i] = (float)urand();
            for (size_t k = 0; k < rf.narr; k++)
                for (size_t i = 0; i < S; i++) rf.cf[k][i] = (float)(0.5 * urand());
        }
    } else {
        ok = cr_stream_d_create(&rc.sd, m, B, flags) == CR_OK;
        rc.ud = malloc(B * C * sizeof(double));
        rc.yd = malloc(B * C * sizeof(double));
        for (int k = 0; k < 2; k++) rf.xd[k] = calloc(B * S, sizeof(double));
        for (size_t k = 0; k < rf.narr; k++) rf.cd[k] = calloc(S, sizeof(double));
        ok = ok && rc.ud && rc.yd && rf.xd[0] && rf.xd[1];
        for (size_t k = 0; k < rf.narr; k++) ok = ok && rf.cd[k];
        if (ok) {
            for (size_t i = 0; i < B * C; i++) rc.ud[i] = urand();
            for (size_t k = 0; k < rf.narr; k++)
                for (size_t i = 0; i < S; i++) rf.cd[k][i] = 0.5 * urand();
        }
    }
    if (ok) {
        double ts = time_per_iter(fl ? run_step_f : run_step_d, &rc);
        double tr = time_per_iter(fl ? roof_f : roof_d, &rf);
        double modes = (double)(B * C * J);
        printf("{\"bench\":\"step\",\"prec\":\"%s\",\"C\":%zu,\"N\":%zu,\"B\":%zu,"
               "\"flags\":%u,\"threads\":%d,\"ns_per_step\":%.2f,\"ns_per_mode\":%.4f,"
               "\"ns_per_state\":%.4f,\"roofline_ns\":%.2f,\"ratio_roofline\":%.3f}\n",
               fl ? "f32" : "f64", C, N, B, flags, rf.par ? 2 : 1, ts * 1e9,
               ts * 1e9 / modes, ts * 1e9 / (2 * modes), tr * 1e9, ts / tr);
        fflush(stdout);
    }
    cr_stream_d_destroy(rc.sd);
    cr_stream_f_destroy(rc.sf);
    free(rc.ud); free(rc.yd); free(rc.uf); free(rc.yf);
    for (int k = 0; k < 2; k++) { free(rf.xd[k]); free(rf.xf[k]); }
    for (int k = 0; k < 6; k++) { free(rf.cd[k]); free(rf.cf[k]); }
    cr_model_destroy(m);
}

/* ---- peers: FIR and overlap-save streamers ----------------------------- */

typedef struct {
    cr_fir_f *fir;
    cr_ols_f *ols;
    float *u, *y;
    size_t C, P;
} peer_ctx;

static void run_fir1(void *p, size_t n)    /* one sample per call: latency 0 */
{
    peer_ctx *c = p;
    for (size_t i = 0; i < n; i++) cr_fir_f_process(c->fir, c->u, c->P, c->y, c->P, 1);
    sink += c->y[0];
}
static void run_ols(void *p, size_t n)     /* one block of P per iteration */
{
    peer_ctx *c = p;
    size_t got;
    for (size_t i = 0; i < n; i++) {
        cr_ols_f_push(c->ols, c->u, c->P, c->P);
        cr_ols_f_pull(c->ols, c->y, c->P, c->P, &got);
    }
    sink += c->y[0];
}

static void bench_peers(size_t C, size_t N, size_t L)
{
    const size_t P = 64;
    cr_model *m = make_model(C, N);
    double *h = malloc(C * L * sizeof *h);
    float *hf = malloc(C * L * sizeof *hf);
    peer_ctx pc = { 0 };
    rec_ctx rc = { 0 };
    pc.C = C;
    pc.P = P;
    pc.u = malloc(C * P * sizeof(float));
    pc.y = malloc(C * P * sizeof(float));
    rc.uf = malloc(C * P * sizeof(float));
    rc.yf = malloc(C * P * sizeof(float));
    if (!m || !h || !hf || !pc.u || !pc.y || !rc.uf || !rc.yf) goto out;
    if (cr_model_kernel(m, L, h) != CR_OK) goto out;
    for (size_t i = 0; i < C * L; i++) hf[i] = (float)h[i];
    for (size_t i = 0; i < C * P; i++) pc.u[i] = rc.uf[i] = (float)urand();
    if (cr_stream_f_create(&rc.sf, m, 1, 0) != CR_OK) goto out;
    if (cr_fir_f_create(&pc.fir, hf, C, L) != CR_OK) goto out;
    if (cr_ols_f_create(&pc.ols, hf, C, L, P, P) != CR_OK) goto out;
    /* Per sample and channel. Recurrence: step (latency 0) and block of P. */
    double t_step = time_per_iter(run_step_f, &rc) / (double)C;
    rc.T = P;
    double t_blk = time_per_iter(run_block_f, &rc) / (double)(C * P);
    double t_ols = time_per_iter(run_ols, &pc) / (double)(C * P);
    double t_fir = time_per_iter(run_fir1, &pc) / (double)C;
    printf("{\"bench\":\"peer\",\"prec\":\"f32\",\"C\":%zu,\"N\":%zu,\"L\":%zu,\"P\":%zu,"
           "\"rec_step_ns\":%.3f,\"rec_block64_ns\":%.3f,\"fir_step_ns\":%.3f,"
           "\"ols_ns\":%.3f,\"ratio_ols_over_rec_step\":%.2f,"
           "\"ratio_fir_over_rec_step\":%.2f}\n",
           C, N, L, P, t_step * 1e9, t_blk * 1e9, t_fir * 1e9, t_ols * 1e9, t_ols / t_step,
           t_fir / t_step);
    fflush(stdout);
out:
    cr_stream_f_destroy(rc.sf);
    cr_fir_f_destroy(pc.fir);
    cr_ols_f_destroy(pc.ols);
    cr_model_destroy(m);
    free(h); free(hf); free(pc.u); free(pc.y); free(rc.uf); free(rc.yf);
}

/* ---- prefill: recurrence vs FFT ---------------------------------------- */

typedef struct {
    cr_stream_d *s;
    double *u;
    size_t T;
    cr_prefill_method how;
} pre_ctx;

static void run_prefill(void *p, size_t n)
{
    pre_ctx *c = p;
    for (size_t i = 0; i < n; i++) {
        cr_stream_d_reset(c->s);
        cr_stream_d_prefill(c->s, c->u, c->T, NULL, c->how);
    }
}

static void bench_prefill(size_t C, size_t N, size_t T)
{
    cr_model *m = make_model(C, N);
    pre_ctx pc = { 0 };
    pc.u = malloc(C * T * sizeof(double));
    pc.T = T;
    if (!m || !pc.u || cr_stream_d_create(&pc.s, m, 1, 0) != CR_OK) goto out;
    for (size_t i = 0; i < C * T; i++) pc.u[i] = urand();
    pc.how = CR_PREFILL_RECURRENCE;
    double tr = time_per_iter(run_prefill, &pc);
    pc.how = CR_PREFILL_FFT;
    double tf = time_per_iter(run_prefill, &pc);
    pc.how = CR_PREFILL_AUTO;
    double ta = time_per_iter(run_prefill, &pc);
    printf("{\"bench\":\"prefill\",\"prec\":\"f64\",\"C\":%zu,\"N\":%zu,\"T\":%zu,"
           "\"recurrence_us\":%.2f,\"fft_us\":%.2f,\"auto_us\":%.2f,\"ratio_fft_over_rec\":%.3f}\n",
           C, N, T, tr * 1e6, tf * 1e6, ta * 1e6, tf / tr);
    fflush(stdout);
out:
    cr_stream_d_destroy(pc.s);
    cr_model_destroy(m);
    free(pc.u);
}

int main(int argc, char **argv)
{
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "quick") == 0) quick = 1;
        else if (atof(argv[i]) > 0) min_time = atof(argv[i]);
    }
    if (quick) {
        bench_step(1, 1024, 16, 1, 0);
        bench_step(1, 1024, 16, 1, CR_STREAM_F32_FAST);
        bench_peers(64, 16, 8192);
        return 0;
    }
    const size_t Cs[] = { 1, 64, 1024 }, Ns[] = { 4, 16, 64 }, Bs[] = { 1, 16 };
    for (int fl = 1; fl >= 0; fl--)
        for (size_t ib = 0; ib < 2; ib++)
            for (size_t ic = 0; ic < 3; ic++)
                for (size_t in = 0; in < 3; in++)
                    bench_step(fl, Cs[ic], Ns[in], Bs[ib], 0);
    /* Float with poles rounded to float (no hi + lo), the acceptance case. */
    bench_step(1, 1024, 16, 1, CR_STREAM_F32_FAST);
    bench_step(1, 1024, 16, 16, CR_STREAM_F32_FAST);
    const size_t Ls[] = { 2048, 8192, 65536 };
    for (size_t il = 0; il < 3; il++) bench_peers(64, 16, Ls[il]);
    const size_t Ts[] = { 64, 512, 4096, 32768, 262144 };
    for (size_t it = 0; it < 5; it++) {
        bench_prefill(1, 2, Ts[it]);
        bench_prefill(1, 16, Ts[it]);
        bench_prefill(64, 16, Ts[it]);
    }
    return 0;
}
