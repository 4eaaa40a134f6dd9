/* Soak test of the float recurrence: very long runs with poles close to the
 * unit circle (|lambda| in [0.9999, 0.99999]), against the double stream on
 * the same input. Two questions:
 *  - does the float error grow with the run's length? The relative l2
 *    error of the float outputs against the double ones is reported for
 *    every decade of steps [10^(k-1), 10^k);
 *  - does the step become slow on the way? The input comes in bursts (noise
 *    for 1/16 of every 2^23 steps, then silence), so in every silence the
 *    states decay through the smallest floats; if they stayed denormal
 *    (about 100x slower per operation on x86 without flush-to-zero), the
 *    silent windows would be slower than the noisy ones. The time per step
 *    is reported for the first and the last window (2^19 steps each), as
 *    the median of the noisy windows and of the late silent ones (the last
 *    half of each silence, where stalled denormal states would sit), and
 *    as the slowest window.
 *
 * Output: one JSON object per line:
 *   {"bench":"soak","case":..,"decade":k,"steps":..,"rel_l2":..}
 *   {"bench":"soak","case":..,"summary":1,"steps":..,"ns_per_step_first":..,
 *    "ns_per_step_last":..,"ns_per_step_noisy":..,"ns_per_step_silent":..,
 *    "silent_over_noisy":..,"ns_per_step_max":..}
 * Usage: bench_soak [STEPS_C1 [STEPS_C64]]   (default 1e9 and 1e8; the
 * whole default run takes several minutes, not for make check).
 */
#include "convrec.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T 4096                      /* samples per block call */
#define PERIOD ((uint64_t)1 << 23)  /* burst period */
#define ACTIVE (PERIOD / 16)        /* noisy part of each period */
#define WIN ACTIVE                  /* timing window: 16 per period, the first noisy */
#define NPAIR 8

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x1234567887654321ULL;
static double urand(void) /* [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* C channels of 8 pairs with |lambda| spread over [0.9999, 0.99999] and one
 * real mode at 0.9999 each (order 17). */
static cr_model *soak_model(size_t C)
{
    cr_model *m = NULL;
    if (cr_model_create(&m, C, NPAIR + 1) != CR_OK) return NULL;
    unsigned char kind[NPAIR + 1];
    double pr[NPAIR + 1], pi[NPAIR + 1], rr[NPAIR + 1], ri[NPAIR + 1];
    for (size_t c = 0; c < C; c++) {
        for (int j = 0; j < NPAIR; j++) {
            double rad = 1.0 - 1e-4 * pow(0.1, (double)j / (NPAIR - 1)); /* 0.9999 .. 0.99999 */
            double th = 0.01 + 3.0 * (double)(j + 1) / (NPAIR + 1) + 0.001 * (double)c;
            kind[j] = CR_MODE_PAIR;
            pr[j] = rad * cos(th);
            pi[j] = rad * sin(th);
            rr[j] = urand();
            ri[j] = urand();
        }
        kind[NPAIR] = CR_MODE_REAL;
        pr[NPAIR] = 0.9999;
        pi[NPAIR] = ri[NPAIR] = 0.0;
        rr[NPAIR] = 0.5;
        if (cr_model_set_channel(m, c, NPAIR + 1, kind, pr, pi, rr, ri, 0.1) != CR_OK) {
            cr_model_destroy(m);
            return NULL;
        }
    }
    return m;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int soak(const char *name, size_t C, uint64_t steps)
{
    cr_model *m = soak_model(C);
    cr_stream_f *sf = NULL;
    cr_stream_d *sd = NULL;
    float *uf = malloc(C * T * sizeof *uf), *yf = malloc(C * T * sizeof *yf);
    double *ud = malloc(C * T * sizeof *ud), *yd = malloc(C * T * sizeof *yd);
    size_t nwin = (size_t)(steps / WIN) + 2;
    double *wt = calloc(nwin, sizeof *wt);
    if (!m || !uf || !yf || !ud || !yd || !wt ||
        cr_stream_f_create(&sf, m, 1, CR_STREAM_NO_THREADS) != CR_OK ||
        cr_stream_d_create(&sd, m, 1, CR_STREAM_NO_THREADS) != CR_OK) {
        fprintf(stderr, "bench_soak: setup failed: %s\n", cr_error_detail());
        return 1;
    }
    long double e2 = 0, n2 = 0;
    uint64_t decade_end = 10;
    int decade = 1;
    size_t w = 0;
    double wsum = 0;
    uint64_t wsteps = 0;
    for (uint64_t t0 = 0; t0 < steps; t0 += T) {
        int active = (t0 % PERIOD) < ACTIVE;
        for (size_t c = 0; c < C; c++)
            for (size_t k = 0; k < T; k++) {
                float v = active ? (float)urand() : 0.0f;
                uf[c * T + k] = v;
                ud[c * T + k] = v; /* the same input, exactly */
            }
        double a = now();
        cr_status s = cr_stream_f_block(sf, uf, T, yf);
        wsum += now() - a;
        if (s != CR_OK || cr_stream_d_block(sd, ud, T, yd) != CR_OK) {
            fprintf(stderr, "bench_soak: stream failed: %s\n", cr_error_detail());
            return 1;
        }
        /* errors sample by sample, closing each decade where it ends */
        for (size_t k = 0; k < T; k++) {
            uint64_t t = t0 + k + 1; /* steps done */
            for (size_t c = 0; c < C; c++) {
                long double dv = (long double)yf[c * T + k] - yd[c * T + k];
                e2 += dv * dv;
                n2 += (long double)yd[c * T + k] * yd[c * T + k];
            }
            if (t == decade_end || (t == steps && t < decade_end)) {
                printf("{\"bench\":\"soak\",\"case\":\"%s\",\"C\":%zu,\"decade\":%d,\"steps\":%llu,"
                       "\"rel_l2\":%.3e}\n",
                       name, C, decade, (unsigned long long)t,
                       n2 > 0 ? (double)sqrtl(e2 / n2) : 0.0);
                fflush(stdout);
                e2 = n2 = 0;
                decade++;
                decade_end *= 10;
            }
        }
        wsteps += T;
        if (wsteps == WIN) {
            wt[w++] = wsum / (double)WIN * 1e9;
            wsum = 0;
            wsteps = 0;
        }
    }
    if (wsteps) wt[w++] = wsum / (double)wsteps * 1e9;
    double first = wt[0], last = wt[w - 1];
    /* window i covers steps [i WIN, (i + 1) WIN): noisy when i % 16 == 0,
     * late silent when i % 16 >= 8 */
    double *noisy = malloc(w * sizeof *noisy), *silent = malloc(w * sizeof *silent), mx = 0;
    size_t nn = 0, ns = 0;
    for (size_t i = 0; i < w; i++) {
        if (i % 16 == 0) noisy[nn++] = wt[i];
        else if (i % 16 >= 8) silent[ns++] = wt[i];
        if (wt[i] > mx) mx = wt[i];
    }
    qsort(noisy, nn, sizeof *noisy, cmp_d);
    qsort(silent, ns, sizeof *silent, cmp_d);
    double mn = nn ? noisy[nn / 2] : NAN, ms = ns ? silent[ns / 2] : NAN;
    printf("{\"bench\":\"soak\",\"case\":\"%s\",\"C\":%zu,\"summary\":1,\"steps\":%llu,"
           "\"windows\":%zu,\"ns_per_step_first\":%.2f,\"ns_per_step_last\":%.2f,"
           "\"ns_per_step_noisy\":%.2f,\"ns_per_step_silent\":%.2f,\"silent_over_noisy\":%.3f,"
           "\"ns_per_step_max\":%.2f}\n",
           name, C, (unsigned long long)steps, w, first, last, mn, ms, ms / mn, mx);
    free(noisy);
    free(silent);
    cr_stream_f_destroy(sf);
    cr_stream_d_destroy(sd);
    cr_model_destroy(m);
    free(uf);
    free(yf);
    free(ud);
    free(yd);
    free(wt);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t s1 = argc > 1 ? (uint64_t)strtod(argv[1], NULL) : 1000000000ULL;
    uint64_t s64 = argc > 2 ? (uint64_t)strtod(argv[2], NULL) : 100000000ULL;
    if (soak("C1", 1, s1)) return 1;
    if (s64 && soak("C64", 64, s64)) return 1;
    return 0;
}
