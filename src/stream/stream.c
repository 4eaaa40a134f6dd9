/* The recurrence executor: streams of a modal model, float and double.
 *
 * Layout (chosen for the hot loop, see plan_layout):
 *  - Every used mode of every channel gets a "slot"; a stream's state and the
 *    coefficients are split real/imaginary arrays over slots.
 *  - Many channels (C >= CR__LANES_MIN): channels are the vector lanes.
 *    Channels are cut into blocks of CB lanes; slot (c, q) sits at
 *    ((c / CB) * J + q) * CB + c % CB, where J is the largest number of used
 *    modes of any channel (channels with fewer get zero-coefficient padding).
 *    The inner loop runs over the CB lanes of one mode row: unit stride,
 *    no gathers, one accumulator per lane, no horizontal sums.
 *  - Few channels: the modes of one channel are the lanes, slot (c, q) at
 *    c * J + q, and the output is a reduction over the channel's modes.
 *  - The residues are stored premultiplied by the weight w (2 for pairs).
 *
 * The precision-specific code is generated twice from recurrence_impl.h.
 */
#include "core/core.h"
#include "spectral/spectral.h"

/* -std=c11 turns floating-point contraction off; the kernels want fused
 * multiply-adds where the target has them (step and block share the same
 * kernels, so they still agree bit for bit). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

#include <complex.h>
#include "model/model.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CR__LANES_MIN 8      /* channels needed for the channels-as-lanes layout */
#define CR__CB_MAX 64        /* channels per block (lanes) */
/* Lanes kept in registers at once by block_step: enough independent
 * accumulator chains to hide the add latency, few enough not to spill
 * (16 vector registers below AVX-512, 32 with it). */
#if defined(__AVX512F__)
#define CR__VL_F 32
#define CR__VL_D 16
#else
#define CR__VL_F 16
#define CR__VL_D 8
#endif
#define CR__TILE 16          /* time samples per transposed tile in block() */
#define CR__ALIGN 64
/* Slot-steps (B * slots * T) below which a call stays in the calling thread:
 * an OpenMP fork/join costs a few microseconds. */
#define CR__PAR_MIN ((size_t)1 << 16)

#define CR__ALL_FLAGS (CR_STREAM_ALLOW_UNSTABLE | CR_STREAM_NO_CHECK | \
                       CR_STREAM_NO_THREADS | CR_STREAM_F32_FAST)

enum { CR__LAYOUT_LANES_CH = 0, CR__LAYOUT_LANES_MODE = 1 };

typedef struct cr__rec_plan {
    size_t B, C, M;
    int layout;
    size_t J;       /* slots per channel (max used modes) */
    size_t CB;      /* lanes per channel block (channels-as-lanes layout) */
    size_t nblk;    /* channel blocks */
    size_t S;       /* slots per stream */
    int comp;       /* float: hi + lo poles */
    unsigned flags;
} cr__rec_plan;

static size_t round_up(size_t a, size_t m) { return (a + m - 1) / m * m; }

static size_t slot_index(const cr__rec_plan *p, size_t c, size_t q)
{
    if (p->layout == CR__LAYOUT_LANES_CH)
        return ((c / p->CB) * p->J + q) * p->CB + c % p->CB;
    return c * p->J + q;
}

/* Validate the model and the flags, choose the layout. `prec_float` enables
 * hi + lo poles unless CR_STREAM_F32_FAST. */
static cr_status plan_layout(const char *fn, const cr_model *m, size_t B,
                             unsigned flags, int prec_float, cr__rec_plan *p)
{
    memset(p, 0, sizeof *p);
    if (!m) return cr__fail(CR_EINVAL, "%s: NULL model", fn);
    if (B == 0) return cr__fail(CR_EINVAL, "%s: zero streams (B = 0)", fn);
    if (flags & ~CR__ALL_FLAGS)
        return cr__fail(CR_EINVAL, "%s: unknown flags 0x%x", fn, flags & ~CR__ALL_FLAGS);
    if (m->C == 0) return cr__fail(CR_EINVAL, "%s: model has zero channels", fn);
    size_t CM;
    if (!cr__mul_ok(m->C, m->M, &CM) || CM > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "%s: model size %zu x %zu is absurd", fn, m->C, m->M);
    size_t J = 0;
    for (size_t c = 0; c < m->C; c++) {
        size_t n = 0;
        if (!isfinite(m->d[c]))
            return cr__fail(CR_ENONFINITE, "%s: channel %zu: feedthrough is not finite", fn, c);
        for (size_t j = 0; j < m->M; j++) {
            size_t i = c * m->M + j;
            if (m->kind[i] == CR_MODE_UNUSED) continue;
            if (m->kind[i] != CR_MODE_REAL && m->kind[i] != CR_MODE_PAIR)
                return cr__fail(CR_EINVAL, "%s: channel %zu mode %zu: bad kind %d", fn, c, j,
                                (int)m->kind[i]);
            if (!isfinite(m->pole_re[i]) || !isfinite(m->pole_im[i]) ||
                !isfinite(m->res_re[i]) || !isfinite(m->res_im[i]))
                return cr__fail(CR_ENONFINITE, "%s: channel %zu mode %zu: non-finite pole or residue",
                                fn, c, j);
            double a = hypot(m->pole_re[i], m->pole_im[i]);
            if (a >= 1.0 && !(flags & CR_STREAM_ALLOW_UNSTABLE))
                return cr__fail(CR_EUNSTABLE,
                                "%s: channel %zu mode %zu: |lambda| = %.17g >= 1 "
                                "(pass CR_STREAM_ALLOW_UNSTABLE to run it anyway)", fn, c, j, a);
            n++;
        }
        if (n > J) J = n;
    }
    p->B = B; p->C = m->C; p->M = m->M; p->J = J; p->flags = flags;
    p->comp = prec_float && !(flags & CR_STREAM_F32_FAST);
    if (m->C >= CR__LANES_MIN) {
        p->layout = CR__LAYOUT_LANES_CH;
        p->CB = m->C >= CR__CB_MAX ? CR__CB_MAX : round_up(m->C, 32);
        p->nblk = (m->C + p->CB - 1) / p->CB;
        if (!cr__mul_ok(p->nblk * p->CB, J, &p->S))
            return cr__fail(CR_EOVERFLOW, "%s: too many modes", fn);
    } else {
        p->layout = CR__LAYOUT_LANES_MODE;
        p->CB = 1;
        p->nblk = m->C;
        p->S = m->C * J;
    }
    size_t BS;
    if (!cr__mul_ok(p->S, B, &BS) || BS > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "%s: %zu streams x %zu slots is absurd", fn, B, p->S);
    return CR_OK;
}

/* Bytes for an array of n elements of size es, padded to the alignment. */
static int add_array(size_t *total, size_t n, size_t es)
{
    size_t b;
    if (!cr__mul_ok(n, es, &b)) return 0;
    b = round_up(b, CR__ALIGN);
    if (*total > SIZE_MAX - b) return 0;
    *total += b;
    return 1;
}

static void *align_ptr(void *p)
{
    uintptr_t a = (uintptr_t)p;
    return (void *)((a + CR__ALIGN - 1) & ~(uintptr_t)(CR__ALIGN - 1));
}

/* The Cauchy-sum half of FFT prefill, for one channel: given U = rfft of the
 * prompt front-padded to n samples, and the channel's poles, returns in
 * (sr, si) the sum_j lambda^(T-1-j) u_j for every pole:
 *   x = (lambda^n - 1) / n * sum_{k<n} U_k / (lambda - w^k),  w = e^{2 pi i/n},
 * with the sum over k > n/2 folded onto conj(U_k) (u is real).
 * tw holds w^k = (cos, sin) for k <= n/2. */
static void cauchy_state(size_t n, const fftw_complex *U, const double *twr,
                         const double *twi, size_t nm, const double *lr,
                         const double *li, double *sr, double *si)
{
    size_t half = n / 2;
    size_t kmax = (n % 2 == 0) ? half - 1 : half;    /* pairs k, n-k */
    for (size_t q = 0; q < nm; q++) {
        double a = lr[q], b = li[q];
        double accr = 0, acci = 0;
#pragma omp simd reduction(+ : accr, acci)
        for (size_t k = 1; k <= kmax; k++) {
            double Ur = U[k][0], Ui = U[k][1];
            /* U / (lambda - w) with lambda - w = (p + i q1) */
            double p = a - twr[k], q1 = b - twi[k];
            double inv1 = 1.0 / (p * p + q1 * q1);
            /* conj(U) / (lambda - conj w) with lambda - conj w = (p + i q2) */
            double q2 = b + twi[k];
            double inv2 = 1.0 / (p * p + q2 * q2);
            accr += (Ur * p + Ui * q1) * inv1 + (Ur * p - Ui * q2) * inv2;
            acci += (Ui * p - Ur * q1) * inv1 + (-Ui * p - Ur * q2) * inv2;
        }
        double complex lam = CMPLX(a, b);
        double complex sum = CMPLX(accr, acci) + CMPLX(U[0][0], U[0][1]) / (lam - 1.0);
        if (n % 2 == 0) sum += CMPLX(U[half][0], U[half][1]) / (lam + 1.0);
        double complex x = (cr__cpow(lam, n) - 1.0) / (double)n * sum;
        sr[q] = creal(x);
        si[q] = cimag(x);
    }
}

/* Crossover for CR_PREFILL_AUTO. The Cauchy sum costs two complex
 * divisions per (frequency, mode) against one complex multiply-add per
 * (sample, mode) for the recurrence, so both are O(T * modes) and the FFT
 * route never won when measured (bench_step "prefill" lines, T = 64 ..
 * 262144, C = 1 and 64, N = 2 and 16: FFT 1.35x to 2.9x slower, even in the
 * latency-bound case of one mode). AUTO therefore runs the recurrence; the
 * FFT route stays available (CR_PREFILL_FFT) and tested as a cross-check. */
static int prefill_use_fft(const cr__rec_plan *p, size_t T)
{
    (void)p;
    (void)T;
    return 0;
}

/* Threads for `jobs` independent units: the OpenMP default clipped to
 * CR_THREADS_PER_PROC per processor and to the jobs (convrec.h, "Thread
 * counts"), so that OMP_NUM_THREADS=100000 cannot make libgomp fail. */
static int stream_threads(size_t jobs)
{
#ifdef _OPENMP
    long n = omp_get_max_threads(), cap = (long)CR_THREADS_PER_PROC * omp_get_num_procs();
    if (n > cap) n = cap;
    if (jobs < (size_t)n) n = (long)jobs;
    return n < 1 ? 1 : (int)n;
#else
    (void)jobs;
    return 1;
#endif
}

#define CR__TYPE double
#define CR__SFX d
#define CR__IS_FLOAT 0
#include "stream_tmpl.h"
#undef CR__TYPE
#undef CR__SFX
#undef CR__IS_FLOAT

#define CR__TYPE float
#define CR__SFX f
#define CR__IS_FLOAT 1
#include "stream_tmpl.h"
#undef CR__TYPE
#undef CR__SFX
#undef CR__IS_FLOAT
