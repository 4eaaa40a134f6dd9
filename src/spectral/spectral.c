/* Spectral module: FFTW plan cache, FFT sizes, Hankel products by FFT,
 * frequency responses. The batched convolution and the streaming
 * convolvers are generated for double and float from spectral_tmpl.h. */
#include "spectral/spectral.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------------
 * Plan cache: an append-only list published with release stores, so that
 * lookups need no lock; misses plan under the lock and re-check first.
 * --------------------------------------------------------------------- */
typedef struct plan_node {
    size_t n;
    unsigned key;          /* dir | single << 1 | inplace << 2 | unaligned << 3 */
    void *plan;            /* fftw_plan or fftwf_plan */
    struct plan_node *next;
} plan_node;

static _Atomic(plan_node *) plan_head = NULL;
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

static void *find_plan(plan_node *p, size_t n, unsigned key)
{
    for (; p != NULL; p = p->next)
        if (p->n == n && p->key == key) return p->plan;
    return NULL;
}

static void *make_plan(size_t n, unsigned key)
{
    int dir = key & 1, single = (key >> 1) & 1, inplace = (key >> 2) & 1;
    unsigned flags = FFTW_ESTIMATE | ((key >> 3) & 1 ? FFTW_UNALIGNED : 0);
    size_t nc = n / 2 + 1;
    void *plan = NULL;
    /* Planning needs real buffers of the right shape; FFTW_ESTIMATE does
     * not touch their contents, and the plan does not keep them for
     * new-array execution. */
    if (single) {
        float *r = fftwf_malloc(sizeof(float) * 2 * nc);
        fftwf_complex *c = inplace ? (fftwf_complex *)r : fftwf_malloc(sizeof(fftwf_complex) * nc);
        if (r != NULL && c != NULL)
            plan = dir == CR__FFT_R2C ? (void *)fftwf_plan_dft_r2c_1d((int)n, r, c, flags)
                                      : (void *)fftwf_plan_dft_c2r_1d((int)n, c, r, flags);
        if (!inplace) fftwf_free(c);
        fftwf_free(r);
    } else {
        double *r = fftw_malloc(sizeof(double) * 2 * nc);
        fftw_complex *c = inplace ? (fftw_complex *)r : fftw_malloc(sizeof(fftw_complex) * nc);
        if (r != NULL && c != NULL)
            plan = dir == CR__FFT_R2C ? (void *)fftw_plan_dft_r2c_1d((int)n, r, c, flags)
                                      : (void *)fftw_plan_dft_c2r_1d((int)n, c, r, flags);
        if (!inplace) fftw_free(c);
        fftw_free(r);
    }
    return plan;
}

static void *get_plan(cr__fft_dir dir, int single, size_t n, const void *in, const void *out)
{
    if (n == 0 || n > (size_t)INT_MAX / 2) {
        cr__fail(n == 0 ? CR_EINVAL : CR_EOVERFLOW, "FFT size %zu out of range", n);
        return NULL;
    }
    int inplace = in == out;
    int unaligned = single ? (fftwf_alignment_of((float *)(uintptr_t)in) != 0 ||
                              fftwf_alignment_of((float *)(uintptr_t)out) != 0)
                           : (fftw_alignment_of((double *)(uintptr_t)in) != 0 ||
                              fftw_alignment_of((double *)(uintptr_t)out) != 0);
    unsigned key = (unsigned)dir | (unsigned)single << 1 | (unsigned)inplace << 2 |
                   (unsigned)unaligned << 3;
    void *plan = find_plan(atomic_load_explicit(&plan_head, memory_order_acquire), n, key);
    if (plan != NULL) return plan;

    pthread_mutex_lock(&plan_lock);
    plan = find_plan(atomic_load_explicit(&plan_head, memory_order_acquire), n, key);
    if (plan == NULL) {
        plan_node *node = malloc(sizeof *node);
        if (node != NULL) plan = make_plan(n, key);
        if (plan != NULL) {
            node->n = n;
            node->key = key;
            node->plan = plan;
            node->next = atomic_load_explicit(&plan_head, memory_order_relaxed);
            atomic_store_explicit(&plan_head, node, memory_order_release);
        } else {
            free(node);
        }
    }
    pthread_mutex_unlock(&plan_lock);
    if (plan == NULL) cr__fail(CR_ENOMEM, "FFTW could not plan a transform of size %zu", n);
    return plan;
}

fftw_plan cr__plan_d(cr__fft_dir dir, size_t n, const void *in, const void *out)
{
    return (fftw_plan)get_plan(dir, 0, n, in, out);
}

fftwf_plan cr__plan_f(cr__fft_dir dir, size_t n, const void *in, const void *out)
{
    return (fftwf_plan)get_plan(dir, 1, n, in, out);
}

/* One-shot transforms through the plan cache, for each precision:
 * cr__rfft_X (forward, r2c) and cr__irfft_X (inverse, c2r, unnormalised). */
#define CR__ONESHOT(X, R, CPX, FFTW)                                                  \
    cr_status cr__rfft_##X(size_t n, R *in, CPX *out)                                 \
    {                                                                                  \
        if (in == NULL || out == NULL) return cr__fail(CR_EINVAL, "rfft: NULL buffer"); \
        FFTW(plan) p = cr__plan_##X(CR__FFT_R2C, n, in, out);                          \
        if (p == NULL) return n == 0 ? CR_EINVAL : CR_ENOMEM;                          \
        FFTW(execute_dft_r2c)(p, in, out);                                             \
        return CR_OK;                                                                  \
    }                                                                                  \
    cr_status cr__irfft_##X(size_t n, CPX *in, R *out)                                \
    {                                                                                  \
        if (in == NULL || out == NULL) return cr__fail(CR_EINVAL, "irfft: NULL buffer"); \
        FFTW(plan) p = cr__plan_##X(CR__FFT_C2R, n, in, out);                          \
        if (p == NULL) return n == 0 ? CR_EINVAL : CR_ENOMEM;                          \
        FFTW(execute_dft_c2r)(p, in, out);                                             \
        return CR_OK;                                                                  \
    }
#define CR__FFTW_D(name) fftw_##name
#define CR__FFTW_F(name) fftwf_##name
CR__ONESHOT(d, double, fftw_complex, CR__FFTW_D)
CR__ONESHOT(f, float, fftwf_complex, CR__FFTW_F)
#undef CR__ONESHOT
#undef CR__FFTW_D
#undef CR__FFTW_F

static void *fft_alloc(size_t count, size_t size)
{
    size_t bytes;
    if (count == 0) count = 1;
    if (count > CR_MAX_ELEMS * 2 || !cr__mul_ok(count, size, &bytes)) {
        cr__fail(CR_EOVERFLOW, "buffer of %zu elements is too large", count);
        return NULL;
    }
    void *p = fftw_malloc(bytes);
    if (p == NULL) cr__fail(CR_ENOMEM, "cannot allocate %zu bytes", bytes);
    return p;
}

double *cr__fft_alloc_d(size_t count) { return fft_alloc(count, sizeof(double)); }
float *cr__fft_alloc_f(size_t count) { return fft_alloc(count, sizeof(float)); }
fftw_complex *cr__fft_alloc_cd(size_t count) { return fft_alloc(count, sizeof(fftw_complex)); }
fftwf_complex *cr__fft_alloc_cf(size_t count) { return fft_alloc(count, sizeof(fftwf_complex)); }
void cr__fft_free(void *p)
{
    if (p != NULL) fftw_free(p);
}

/* ---------------------------------------------------------------------
 * FFT sizes
 * --------------------------------------------------------------------- */
size_t cr_fft_good_size(size_t n)
{
    if (n <= 1) return 1;
    if (n > SIZE_MAX / 8) return 0;
    size_t best = SIZE_MAX;
    /* For every odd 7-smooth part p <= n', scale by the least power of two. */
    for (size_t p7 = 1; p7 < best; p7 *= 7) {
        for (size_t p5 = p7; p5 < best; p5 *= 5) {
            for (size_t p3 = p5; p3 < best; p3 *= 3) {
                size_t v = p3;
                while (v < n) v *= 2;
                if (v < best) best = v;
                if (p3 > SIZE_MAX / 3) break;
            }
            if (p5 > SIZE_MAX / 5) break;
        }
        if (p7 > SIZE_MAX / 7) break;
    }
    return best;
}

/* Relative cost of one real FFT of size n: n log2 n, with mild penalties
 * for odd factors (FFTW_ESTIMATE plans for them are slower) and for sizes
 * that spill out of cache. */
static double fft_cost(size_t n)
{
    double c = (double)n * (log2((double)n) + 1.0);
    size_t m = n;
    while (m % 2 == 0) m /= 2;
    if (m % 3 == 0) c *= 1.10;
    if (m % 5 == 0) c *= 1.15;
    if (m % 7 == 0) c *= 1.20;
    if (n > ((size_t)1 << 17)) c *= 1.3;
    return c;
}

int cr__conv_sizes(size_t L, size_t T, size_t B, size_t *n_out, size_t *S_out)
{
    /* Largest FFT considered for one segment: long signals are cut into
     * overlap-save segments rather than transformed whole. */
    const size_t cap = (size_t)1 << 24;
    if (L == 0 || T == 0) return 0;
    size_t Le = L < T ? L : T; /* taps beyond T never reach an output */
    if (Le > (size_t)INT_MAX / 8 || T > CR_MAX_ELEMS) return 0;
    size_t nmax = T + Le - 1 <= cap ? cr_fft_good_size(T + Le - 1) : cr_fft_good_size(cap > 4 * Le ? cap : 4 * Le);
    size_t nmin = cr_fft_good_size(Le + 1 > 2 ? Le + 1 : 2);
    if (nmin > nmax) nmin = nmax;
    if (B == 0) B = 1;
    double best = INFINITY;
    size_t bn = nmax, bS = nmax - Le + 1;
    /* Enumerate the 7-smooth sizes in [nmin, nmax]; overlap-save with
     * segments of S = n - Le + 1 outputs costs one kernel transform plus two
     * transforms and a product per segment and stream. */
    for (size_t p7 = 1; p7 <= nmax; p7 *= 7)
        for (size_t p5 = p7; p5 <= nmax; p5 *= 5)
            for (size_t p3 = p5; p3 <= nmax; p3 *= 3)
                for (size_t n = p3; n <= nmax; n *= 2) {
                    if (n < nmin) continue;
                    size_t S = n - Le + 1;
                    size_t nseg = (T + S - 1) / S;
                    double c = fft_cost(n) * (1.0 + 2.0 * (double)B * (double)nseg) +
                               1.5 * (double)n * (double)B * (double)nseg;
                    if (c < best || (c == best && n > bn)) {
                        best = c;
                        bn = n;
                        bS = S;
                    }
                }
    *n_out = bn;
    *S_out = bS;
    return 1;
}

/* ---------------------------------------------------------------------
 * Shared helpers for the generated code
 * --------------------------------------------------------------------- */
static int ranges_overlap(const void *a, size_t abytes, const void *b, size_t bbytes)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + bbytes && b0 < a0 + abytes;
}

/* The domain of every nthreads argument (convrec.h, "Threading"): <= 0 is
 * the OpenMP default; any count is then clipped to CR_THREADS_PER_PROC per
 * processor and to the number of work items. libgomp crashes when asked for
 * 10^5 threads (each needs a stack), and threads beyond the cores or the
 * work only add start-up and contention. */
static int resolve_threads(int nthreads, size_t work)
{
#ifdef _OPENMP
    long n = nthreads > 0 ? nthreads : omp_get_max_threads();
    long cap = (long)CR_THREADS_PER_PROC * omp_get_num_procs();
    if (n > cap) n = cap;
    if (work < (size_t)n) n = (long)work;
    return n < 1 ? 1 : (int)n;
#else
    (void)nthreads;
    (void)work;
    return 1;
#endif
}

/* Element strides rounded so that every row of a 2-D buffer starts as
 * aligned as the buffer itself (FFTW's fast plans need that). */
static size_t round_up(size_t n, size_t q) { return (n + q - 1) / q * q; }

#define CR_CAT_(a, b) a##_##b
#define CR_CAT(a, b) CR_CAT_(a, b)
#define NAME(base) CR_CAT(base, SFX)
#define CR_CAT3_(a, b, c) a##_##b##_##c
#define CR_CAT3(a, b, c) CR_CAT3_(a, b, c)
#define FN(obj, verb) CR_CAT3(obj, SFX, verb) /* FN(cr_ols, push) -> cr_ols_d_push */

/* ---------------------------------------------------------------------
 * Double and float instances
 * --------------------------------------------------------------------- */
#define R double
#define CPX fftw_complex
#define FPLAN fftw_plan
#define FFTW(name) fftw_##name
#define SFX d
#define PLAN cr__plan_d
#define ALLOC_R cr__fft_alloc_d
#define ALLOC_C cr__fft_alloc_cd
#include "spectral_tmpl.h"
#undef R
#undef CPX
#undef FPLAN
#undef FFTW
#undef SFX
#undef PLAN
#undef ALLOC_R
#undef ALLOC_C

#define R float
#define CPX fftwf_complex
#define FPLAN fftwf_plan
#define FFTW(name) fftwf_##name
#define SFX f
#define PLAN cr__plan_f
#define ALLOC_R cr__fft_alloc_f
#define ALLOC_C cr__fft_alloc_cf
#include "spectral_tmpl.h"
#undef R
#undef CPX
#undef FPLAN
#undef FFTW
#undef SFX
#undef PLAN
#undef ALLOC_R
#undef ALLOC_C

/* ---------------------------------------------------------------------
 * Frequency response
 * --------------------------------------------------------------------- */
static int all_finite(const double *x, size_t n)
{
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) acc += x[i] * 0.0;
    return acc == 0.0;
}

cr_status cr_freqresp(const double *h, size_t C, size_t L, size_t n, double *out)
{
    size_t CL, nc, tot;
    if (h == NULL || out == NULL) return cr__fail(CR_EINVAL, "freqresp: NULL argument");
    if (C == 0 || L == 0 || n == 0) return cr__fail(CR_EINVAL, "freqresp: zero size (C=%zu, L=%zu, n=%zu)", C, L, n);
    if (n < L) return cr__fail(CR_EINVAL, "freqresp: grid n=%zu shorter than kernel L=%zu", n, L);
    if (!cr__mul_ok(C, L, &CL) || CL > CR_MAX_ELEMS || n > (size_t)INT_MAX / 2 ||
        !cr__mul_ok(C, n / 2 + 1, &nc) || nc > CR_MAX_ELEMS / 2)
        return cr__fail(CR_EOVERFLOW, "freqresp: sizes too large (C=%zu, L=%zu, n=%zu)", C, L, n);
    tot = nc * 2;
    if (ranges_overlap(h, CL * sizeof(double), out, tot * sizeof(double)))
        return cr__fail(CR_EINVAL, "freqresp: output overlaps the kernels");
    for (size_t c = 0; c < C; c++)
        if (!all_finite(h + c * L, L)) return cr__fail(CR_ENONFINITE, "freqresp: NaN or Inf in kernel %zu", c);

    int nt = resolve_threads(0, C);
    int failed = 0;
#pragma omp parallel num_threads(nt) if (C > 1)
    {
        double *buf = cr__fft_alloc_d(n);
        if (buf == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t c = 0; c < C; c++) {
            if (buf == NULL) continue;
            memcpy(buf, h + c * L, L * sizeof(double));
            memset(buf + L, 0, (n - L) * sizeof(double));
            fftw_complex *o = (fftw_complex *)(out + c * (n / 2 + 1) * 2);
            fftw_plan p = cr__plan_d(CR__FFT_R2C, n, buf, o);
            if (p == NULL) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            fftw_execute_dft_r2c(p, buf, o);
        }
        cr__fft_free(buf);
    }
    if (failed) return cr__fail(CR_ENOMEM, "freqresp: out of memory");
    return CR_OK;
}

/* ---------------------------------------------------------------------
 * Hankel operator by FFT (MATH.md): y_i = sum_j g[i+j] x_j with g = h[1:]
 * is z = g * reverse(x), y_i = z[i + n - 1]. Circular convolution of size
 * N >= m + n - 1 leaves the needed entries unaliased; only g[0 .. m+n-2]
 * matters. H^T is the same operation with m and n swapped.
 * --------------------------------------------------------------------- */
struct cr_hankel_op {
    size_t L, m, n, N;
    int zero;               /* H == 0 (L == 1) */
    fftw_complex *G;        /* spectrum of g, scaled by 1/N, N/2 + 1 */
    fftw_plan fwd, inv;     /* out-of-place, aligned, size N (from the cache) */
};

/* The raw apply's work buffer: the real signal (N doubles, rounded up to
 * 8 so that the spectrum after it stays SIMD-aligned), then the spectrum.
 * Out of place because FFTW_ESTIMATE's in-place r2c/c2r plans were
 * slower: a transform pair of size 4096 took 10-14 us in place, 7 us out
 * of place (65536: 0.26 against 0.23 ms). */
static size_t hankel_real_len(size_t N)
{
    return (N + 7) / 8 * 8;
}

cr_status cr_hankel_op_create(cr_hankel_op **op, const double *h, size_t L, size_t m, size_t n)
{
    if (op == NULL) return cr__fail(CR_EINVAL, "hankel_op_create: NULL op");
    *op = NULL;
    if (h == NULL) return cr__fail(CR_EINVAL, "hankel_op_create: NULL kernel");
    if (L == 0 || m == 0 || n == 0)
        return cr__fail(CR_EINVAL, "hankel_op_create: zero size (L=%zu, m=%zu, n=%zu)", L, m, n);
    if (L > CR_MAX_ELEMS || m > (size_t)INT_MAX / 4 || n > (size_t)INT_MAX / 4)
        return cr__fail(CR_EOVERFLOW, "hankel_op_create: sizes too large (L=%zu, m=%zu, n=%zu)", L, m, n);
    if (!all_finite(h, L)) return cr__fail(CR_ENONFINITE, "hankel_op_create: NaN or Inf in kernel");
    cr_hankel_op *o = calloc(1, sizeof *o);
    if (o == NULL) return cr__fail(CR_ENOMEM, "hankel_op_create: out of memory");
    o->L = L;
    o->m = m;
    o->n = n;
    o->N = cr_fft_good_size(m + n - 1);
    size_t Lg = L - 1 < m + n - 1 ? L - 1 : m + n - 1;
    o->zero = Lg == 0;
    size_t N = o->N, nc = N / 2 + 1;
    o->G = cr__fft_alloc_cd(nc);
    double *g = cr__fft_alloc_d(N);
    cr_status st = CR_OK;
    if (o->G == NULL || g == NULL) {
        st = CR_ENOMEM;
    } else {
        memset(g, 0, N * sizeof(double));
        if (Lg > 0) memcpy(g, h + 1, Lg * sizeof(double));
        st = cr__rfft_d(N, g, o->G);
        /* Plans for the in-place aligned work buffers of the raw apply,
         * fetched once here rather than per call. */
        o->fwd = cr__plan_d(CR__FFT_R2C, N, g, o->G);
        o->inv = cr__plan_d(CR__FFT_C2R, N, o->G, g);
        if (st == CR_OK && (o->fwd == NULL || o->inv == NULL)) st = CR_ENOMEM;
        double s = 1.0 / (double)N;
        for (size_t k = 0; k < nc; k++) {
            o->G[k][0] *= s;
            o->G[k][1] *= s;
        }
    }
    cr__fft_free(g);
    if (st != CR_OK) {
        cr_hankel_op_destroy(o);
        return cr__fail(st, "hankel_op_create: %s", st == CR_ENOMEM ? "out of memory" : "FFT failed");
    }
    *op = o;
    return CR_OK;
}

void cr_hankel_op_destroy(cr_hankel_op *op)
{
    if (op == NULL) return;
    cr__fft_free(op->G);
    free(op);
}

/* Y (rows x k, ldy) = correlation of g with each column of X (cols x k). */
static cr_status hankel_apply(const cr_hankel_op *op, int trans, size_t k, const double *X,
                              size_t ldx, double *Y, size_t ldy, const char *who)
{
    size_t tx, ty;
    if (op == NULL || X == NULL || Y == NULL) return cr__fail(CR_EINVAL, "%s: NULL argument", who);
    size_t rows = trans ? op->n : op->m, cols = trans ? op->m : op->n;
    if (k == 0) return cr__fail(CR_EINVAL, "%s: zero columns", who);
    if (ldx < cols || ldy < rows)
        return cr__fail(CR_EINVAL, "%s: leading dimension too small (ldx=%zu < %zu or ldy=%zu < %zu)", who,
                        ldx, cols, ldy, rows);
    if (!cr__mul_ok(ldx, k - 1, &tx) || !cr__mul_ok(ldy, k - 1, &ty) || tx > CR_MAX_ELEMS ||
        ty > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "%s: k=%zu columns too many", who, k);
    if (ranges_overlap(X, (tx + cols) * sizeof(double), Y, (ty + rows) * sizeof(double)))
        return cr__fail(CR_EINVAL, "%s: Y overlaps X", who);
    for (size_t j = 0; j < k; j++)
        if (!all_finite(X + j * ldx, cols)) return cr__fail(CR_ENONFINITE, "%s: NaN or Inf in column %zu", who, j);
    if (op->zero) {
        for (size_t j = 0; j < k; j++) memset(Y + j * ldy, 0, rows * sizeof(double));
        return CR_OK;
    }
    double *buf = cr__fft_alloc_d(cr__hankel_op_work(op));
    if (buf == NULL) return CR_ENOMEM;
    cr__hankel_op_apply_raw(op, trans, k, X, ldx, Y, ldy, buf);
    cr__fft_free(buf);
    return CR_OK;
}

size_t cr__hankel_op_work(const cr_hankel_op *op)
{
    return hankel_real_len(op->N) + 2 * (op->N / 2 + 1);
}

/* Correlation of g with each column: reverse x into the buffer, one r2c,
 * the product with G, one c2r, and the wanted window copied out. */
CR_CLONES static void hankel_apply_cols(const cr_hankel_op *op, int trans, size_t k,
                                        const double *X, size_t ldx, double *Y, size_t ldy,
                                        double *restrict work)
{
    size_t rows = trans ? op->n : op->m, cols = trans ? op->m : op->n;
    if (op->zero) {
        for (size_t j = 0; j < k; j++) memset(Y + j * ldy, 0, rows * sizeof(double));
        return;
    }
    size_t N = op->N, nc = N / 2 + 1;
    fftw_complex *Z = (fftw_complex *)(work + hankel_real_len(N));
    const fftw_complex *G = op->G;
    for (size_t j = 0; j < k; j++) {
        const double *restrict x = X + j * ldx;
        for (size_t i = 0; i < cols; i++) work[i] = x[cols - 1 - i];
        memset(work + cols, 0, (N - cols) * sizeof(double));
        fftw_execute_dft_r2c(op->fwd, work, Z);
        for (size_t q = 0; q < nc; q++) {
            double a = Z[q][0], b = Z[q][1];
            Z[q][0] = a * G[q][0] - b * G[q][1];
            Z[q][1] = a * G[q][1] + b * G[q][0];
        }
        fftw_execute_dft_c2r(op->inv, Z, work);
        memcpy(Y + j * ldy, work + cols - 1, rows * sizeof(double));
    }
}

void cr__hankel_op_apply_raw(const cr_hankel_op *op, int trans, size_t k, const double *X,
                             size_t ldx, double *Y, size_t ldy, double *restrict work)
{
    hankel_apply_cols(op, trans, k, X, ldx, Y, ldy, work);
}

cr_status cr_hankel_op_apply(const cr_hankel_op *op, size_t k, const double *X, size_t ldx, double *Y,
                             size_t ldy)
{
    if (op == NULL) return cr__fail(CR_EINVAL, "hankel_op_apply: NULL op");
    return hankel_apply(op, 0, k, X, ldx, Y, ldy, "hankel_op_apply");
}

cr_status cr_hankel_op_apply_t(const cr_hankel_op *op, size_t k, const double *X, size_t ldx, double *Y,
                               size_t ldy)
{
    if (op == NULL) return cr__fail(CR_EINVAL, "hankel_op_apply_t: NULL op");
    return hankel_apply(op, 1, k, X, ldx, Y, ldy, "hankel_op_apply_t");
}
