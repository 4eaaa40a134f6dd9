/* Spectral module: FFT convolution, streaming convolvers, Hankel products
 * and frequency responses, each against a direct (dense / O(n^2))
 * reference; plan cache helpers; argument checks. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <limits.h>

#include "convrec.h"
#include "spectral/spectral.h"
#include "testutil.h"

#define TOL_D 1e-12
#define TOL_F 1e-5

/* y (B, C, T) = direct causal convolution, in double. */
static void direct_conv(const double *h, size_t C, size_t L, const double *u, size_t B, size_t T, double *y)
{
    for (size_t b = 0; b < B; b++)
        for (size_t c = 0; c < C; c++) {
            const double *hc = h + c * L, *uc = u + (b * C + c) * T;
            double *yc = y + (b * C + c) * T;
            for (size_t t = 0; t < T; t++) {
                double s = 0;
                size_t kmax = t < L - 1 ? t : L - 1;
                for (size_t k = 0; k <= kmax; k++) s += hc[k] * uc[t - k];
                yc[t] = s;
            }
        }
}

static double *rand_d(size_t n, uint64_t *seed)
{
    double *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    tu_fill(x, n, seed);
    return x;
}

static float *to_f(const double *x, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static double *to_d(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* One convolution case in both precisions, with the given thread count. */
static void check_conv(size_t C, size_t L, size_t B, size_t T, int nthreads, uint64_t seed)
{
    double *h = rand_d(C * L, &seed), *u = rand_d(B * C * T, &seed);
    double *ref = malloc(B * C * T * sizeof *ref), *y = malloc(B * C * T * sizeof *y);
    assert_non_null(ref);
    assert_non_null(y);
    direct_conv(h, C, L, u, B, T, ref);
    assert_int_equal(cr_conv_d(h, C, L, u, B, T, y, nthreads), CR_OK);
    double e = tu_rel_l2(y, ref, B * C * T);
    if (!(e <= TOL_D))
        fail_msg("double C=%zu L=%zu B=%zu T=%zu threads=%d: rel l2 %.3g", C, L, B, T, nthreads, e);

    float *hf = to_f(h, C * L), *uf = to_f(u, B * C * T), *yf = malloc(B * C * T * sizeof *yf);
    assert_non_null(yf);
    double *hd = to_d(hf, C * L), *ud = to_d(uf, B * C * T);
    direct_conv(hd, C, L, ud, B, T, ref);
    assert_int_equal(cr_conv_f(hf, C, L, uf, B, T, yf, nthreads), CR_OK);
    e = tu_rel_l2f(yf, ref, B * C * T);
    if (!(e <= TOL_F))
        fail_msg("float C=%zu L=%zu B=%zu T=%zu threads=%d: rel l2 %.3g", C, L, B, T, nthreads, e);
    free(h), free(u), free(ref), free(y), free(hf), free(uf), free(yf), free(hd), free(ud);
}

static const size_t sizes[] = {1, 2, 3, 7, 64, 100, 1000, 4097};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void test_conv_grid(void **state)
{
    (void)state;
    uint64_t seed = 1;
    for (size_t i = 0; i < NSIZES; i++)
        for (size_t j = 0; j < NSIZES; j++) {
            size_t L = sizes[i], T = sizes[j];
            /* Channel and stream counts shrink for the big cases so the
             * O(L T) reference stays cheap. */
            if (L * T <= 100000) {
                check_conv(1, L, 1, T, 0, seed++);
                check_conv(3, L, 3, T, 0, seed++);
                check_conv(2, L, 3, T, 1, seed++);
            } else if (L * T <= 500000) {
                check_conv(2, L, 1, T, 0, seed++);
                check_conv(1, L, 3, T, 2, seed++);
            } else {
                check_conv(1, L, 1, T, 0, seed++);
            }
        }
}

/* Any thread count is safe (convrec.h, "Thread counts"): 10^5 and INT_MAX
 * are clipped (10^5 threads used to crash inside libgomp), negative means
 * the default. */
static void test_conv_thread_domain(void **state)
{
    (void)state;
    const int counts[] = {100000, INT_MAX, -5, 1000};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        check_conv(3, 100, 2, 3000, counts[i], 40 + i);
        check_conv(1, 64, 1, 50000, counts[i], 50 + i); /* one channel: segments shared out */
    }
}

/* Long signals go through several overlap-save segments; check that the
 * size choice really segments, and both thread layouts (channels >= threads,
 * and fewer channels than threads: bank of spectra + segment chunks). */
static void test_conv_segments(void **state)
{
    (void)state;
    size_t N, S;
    assert_true(cr__conv_sizes(100, 30000, 1, &N, &S));
    assert_true(S < 30000);
    assert_true(N >= S + 100 - 1);
    assert_int_equal(cr_fft_good_size(N), N);
    check_conv(1, 100, 1, 30000, 2, 77);
    check_conv(1, 100, 2, 30000, 2, 78);
    check_conv(4, 33, 2, 9000, 2, 79);
    check_conv(3, 5, 1, 20001, 1, 80);
    /* T < L: only the first T taps matter; N is sized by T. */
    assert_true(cr__conv_sizes(100000, 10, 1, &N, &S));
    assert_true(N <= 32 && S >= 10);
    /* a very long signal is segmented, not transformed whole */
    assert_true(cr__conv_sizes(64, (size_t)1 << 34, 1, &N, &S));
    assert_true(N <= ((size_t)1 << 24) && S + 63 <= N);
    assert_false(cr__conv_sizes(0, 10, 1, &N, &S));
}

/* ---- streaming ------------------------------------------------------- */
typedef struct stream_case {
    size_t C, L, P, T;
} stream_case;

static void check_ols_d(const stream_case *sc, uint64_t seed)
{
    size_t C = sc->C, L = sc->L, P = sc->P, T = sc->T, maxc = 2 * P + 5;
    double *h = rand_d(C * L, &seed), *u = rand_d(C * T, &seed);
    double *ref = malloc(C * T * sizeof *ref), *y = calloc(C * T, sizeof *y);
    assert_non_null(ref);
    assert_non_null(y);
    direct_conv(h, C, L, u, 1, T, ref);
    cr_ols_d *s = NULL;
    assert_int_equal(cr_ols_d_create(&s, h, C, L, P, maxc), CR_OK);
    for (int pass = 0; pass < 2; pass++) {
        size_t in = 0, out = 0;
        double zeros[4] = {0}; /* one zero per channel, ldu = 1 */
        while (out < T) {
            size_t n = tu_next(&seed) % (maxc + 1); /* includes 0 */
            size_t room = cr_ols_d_room(s);
            if (in < T) {
                if (n > T - in) n = T - in;
                if (n > room) n = room;
                assert_int_equal(cr_ols_d_push(s, u + in, T, n), CR_OK);
                in += n;
            } else if (room > 0) {
                /* drain: pad the last partial block with zeros */
                assert_int_equal(cr_ols_d_push(s, zeros, 1, 1), CR_OK);
            }
            /* sometimes a partial pull, so that the output ring wraps */
            int all = tu_next(&seed) % 3 != 0;
            size_t got = 0, want = all ? T - out : 1 + tu_next(&seed) % (P + 1);
            if (want > T - out) want = T - out;
            assert_int_equal(cr_ols_d_pull(s, y + out, T, want, &got), CR_OK);
            out += got;
            /* latency contract: everything up to the last full block is out */
            if (all && in < T) assert_int_equal(out, in / P * P);
        }
        double e = tu_rel_l2(y, ref, C * T);
        if (!(e <= TOL_D)) fail_msg("ols double C=%zu L=%zu P=%zu pass %d: rel l2 %.3g", C, L, P, pass, e);
        memset(y, 0, C * T * sizeof *y);
        assert_int_equal(cr_ols_d_reset(s), CR_OK);
        assert_int_equal(cr_ols_d_available(s), 0);
    }
    cr_ols_d_destroy(s);
    free(h), free(u), free(ref), free(y);
}

/* Float: block-wise pushes of varying size, pulling everything each time. */
static void check_ols_f(const stream_case *sc, uint64_t seed)
{
    size_t C = sc->C, L = sc->L, P = sc->P, T = sc->T, maxc = P + 3;
    double *h = rand_d(C * L, &seed), *u = rand_d(C * T, &seed);
    float *hf = to_f(h, C * L), *uf = to_f(u, C * T);
    double *hd = to_d(hf, C * L), *ud = to_d(uf, C * T);
    double *ref = malloc(C * T * sizeof *ref);
    float *y = calloc(C * T, sizeof *y), *zero = calloc(C * P, sizeof *zero);
    assert_non_null(ref);
    assert_non_null(y);
    assert_non_null(zero);
    direct_conv(hd, C, L, ud, 1, T, ref);
    cr_ols_f *s = NULL;
    assert_int_equal(cr_ols_f_create(&s, hf, C, L, P, maxc), CR_OK);
    size_t in = 0, out = 0, got;
    while (in < T) {
        size_t n = 1 + tu_next(&seed) % maxc;
        if (n > T - in) n = T - in;
        assert_int_equal(cr_ols_f_push(s, uf + in, T, n), CR_OK);
        in += n;
        assert_int_equal(cr_ols_f_pull(s, y + out, T, T - out, &got), CR_OK);
        out += got;
    }
    size_t pad = (P - T % P) % P;
    assert_int_equal(cr_ols_f_push(s, zero, P, pad), CR_OK);
    assert_int_equal(cr_ols_f_pull(s, y + out, T, T - out, &got), CR_OK);
    out += got;
    assert_int_equal(out, T);
    double e = tu_rel_l2f(y, ref, C * T);
    if (!(e <= TOL_F)) fail_msg("ols float C=%zu L=%zu P=%zu: rel l2 %.3g", C, L, P, e);
    cr_ols_f_destroy(s);
    free(h), free(u), free(hf), free(uf), free(hd), free(ud), free(ref), free(y), free(zero);
}

static void test_ols(void **state)
{
    (void)state;
    const size_t Ps[] = {1, 3, 64, 256};
    const size_t Ls[] = {1, 5, 64, 300, 1000};
    uint64_t seed = 100;
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 5; j++) {
            size_t P = Ps[i], L = Ls[j];
            if (P == 1 && L == 1000) L = 200; /* 1000 partitions per sample is slow under ASan */
            stream_case sc = {2, L, P, 1200};
            check_ols_d(&sc, seed++);
            check_ols_f(&sc, seed++);
        }
    stream_case one = {1, 77, 3, 500};
    check_ols_d(&one, 5);
}

/* room(): a push beyond it is refused and consumes nothing. */
static void test_ols_room(void **state)
{
    (void)state;
    double h[4] = {1, 2, 3, 4}, u[64] = {0}, y[64];
    for (int i = 0; i < 64; i++) u[i] = i + 1;
    cr_ols_d *s = NULL;
    assert_int_equal(cr_ols_d_create(&s, h, 1, 4, 4, 6), CR_OK);
    assert_int_equal(cr_ols_d_room(s), 9);
    assert_int_equal(cr_ols_d_push(s, u, 10, 10), CR_EINVAL);
    assert_int_equal(cr_ols_d_available(s), 0);
    assert_int_equal(cr_ols_d_push(s, u, 9, 9), CR_OK);
    assert_int_equal(cr_ols_d_available(s), 8);
    assert_int_equal(cr_ols_d_room(s), 0);
    assert_int_equal(cr_ols_d_push(s, u + 9, 1, 1), CR_EINVAL);
    size_t got;
    assert_int_equal(cr_ols_d_pull(s, y, 64, 64, &got), CR_OK);
    assert_int_equal(got, 8);
    double ref[8];
    direct_conv(h, 1, 4, u, 1, 8, ref);
    assert_true(tu_rel_l2(y, ref, 8) <= TOL_D);
    u[12] = NAN;
    assert_int_equal(cr_ols_d_push(s, u + 9, 8, 8), CR_ENONFINITE);
    assert_int_equal(cr_ols_d_room(s), 8);
    cr_ols_d_destroy(s);
}

static void check_fir(size_t C, size_t L, size_t T, uint64_t seed)
{
    double *h = rand_d(C * L, &seed), *u = rand_d(C * T, &seed);
    double *ref = malloc(C * T * sizeof *ref), *y = malloc(C * T * sizeof *y);
    assert_non_null(ref);
    assert_non_null(y);
    direct_conv(h, C, L, u, 1, T, ref);
    cr_fir_d *s = NULL;
    assert_int_equal(cr_fir_d_create(&s, h, C, L), CR_OK);
    for (int pass = 0; pass < 2; pass++) {
        size_t t = 0;
        while (t < T) {
            size_t n = tu_next(&seed) % 300;
            if (n > T - t) n = T - t;
            assert_int_equal(cr_fir_d_process(s, u + t, T, y + t, T, n), CR_OK);
            t += n;
        }
        double e = tu_rel_l2(y, ref, C * T);
        if (!(e <= TOL_D)) fail_msg("fir double C=%zu L=%zu pass %d: rel l2 %.3g", C, L, pass, e);
        assert_int_equal(cr_fir_d_reset(s), CR_OK);
    }
    /* in place */
    memcpy(y, u, C * T * sizeof *y);
    assert_int_equal(cr_fir_d_process(s, y, T, y, T, T), CR_OK);
    assert_true(tu_rel_l2(y, ref, C * T) <= TOL_D);
    cr_fir_d_destroy(s);

    float *hf = to_f(h, C * L), *uf = to_f(u, C * T), *yf = malloc(C * T * sizeof *yf);
    double *hd = to_d(hf, C * L), *ud = to_d(uf, C * T);
    assert_non_null(yf);
    direct_conv(hd, C, L, ud, 1, T, ref);
    cr_fir_f *sf = NULL;
    assert_int_equal(cr_fir_f_create(&sf, hf, C, L), CR_OK);
    size_t t = 0;
    while (t < T) {
        size_t n = 1 + tu_next(&seed) % 97;
        if (n > T - t) n = T - t;
        assert_int_equal(cr_fir_f_process(sf, uf + t, T, yf + t, T, n), CR_OK);
        t += n;
    }
    double e = tu_rel_l2f(yf, ref, C * T);
    if (!(e <= TOL_F)) fail_msg("fir float C=%zu L=%zu: rel l2 %.3g", C, L, e);
    cr_fir_f_destroy(sf);
    free(h), free(u), free(ref), free(y), free(hf), free(uf), free(yf), free(hd), free(ud);
}

static void test_fir(void **state)
{
    (void)state;
    const size_t Ls[] = {1, 2, 3, 64, 257, 1000};
    for (size_t j = 0; j < 6; j++) check_fir(3, Ls[j], 1500, 200 + j);
    check_fir(1, 4097, 600, 300);
}

/* ---- Hankel ------------------------------------------------------------ */
static void check_hankel(size_t L, size_t m, size_t n, uint64_t seed)
{
    const size_t k = 3, ldx = n + 2, ldy = m + 1, ldxt = m + 3, ldyt = n + 1;
    double *h = rand_d(L, &seed), *X = rand_d(ldx * k, &seed), *Xt = rand_d(ldxt * k, &seed);
    double *Y = malloc(ldy * k * sizeof *Y), *Yt = malloc(ldyt * k * sizeof *Yt);
    double *R = calloc(m * k, sizeof *R), *Rt = calloc(n * k, sizeof *Rt);
    assert_non_null(Y);
    assert_non_null(Yt);
    assert_non_null(R);
    assert_non_null(Rt);
    for (size_t c = 0; c < k; c++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double Hij = i + j + 1 < L ? h[i + j + 1] : 0.0;
                R[c * m + i] += Hij * X[c * ldx + j];
                Rt[c * n + j] += Hij * Xt[c * ldxt + i];
            }
    cr_hankel_op *op = NULL;
    assert_int_equal(cr_hankel_op_create(&op, h, L, m, n), CR_OK);
    assert_int_equal(cr_hankel_op_apply(op, k, X, ldx, Y, ldy), CR_OK);
    assert_int_equal(cr_hankel_op_apply_t(op, k, Xt, ldxt, Yt, ldyt), CR_OK);
    for (size_t c = 0; c < k; c++) {
        double e = tu_rel_l2(Y + c * ldy, R + c * m, m);
        double et = tu_rel_l2(Yt + c * ldyt, Rt + c * n, n);
        if (!(e <= TOL_D && et <= TOL_D))
            fail_msg("hankel L=%zu m=%zu n=%zu col %zu: rel l2 %.3g (transpose %.3g)", L, m, n, c, e, et);
    }
    cr_hankel_op_destroy(op);
    free(h), free(X), free(Xt), free(Y), free(Yt), free(R), free(Rt);
}

static void test_hankel(void **state)
{
    (void)state;
    check_hankel(10, 5, 5, 1);      /* window m + n = L */
    check_hankel(10, 9, 9, 2);      /* zero padded m = n = L - 1 */
    check_hankel(101, 50, 51, 3);   /* window */
    check_hankel(101, 100, 100, 4); /* zero padded */
    check_hankel(300, 7, 40, 5);    /* only a corner of h matters */
    check_hankel(50, 80, 3, 6);     /* taller than L */
    check_hankel(2, 1, 1, 7);
    check_hankel(1000, 999, 999, 8);
    /* L = 1: H is zero */
    double h1 = 3, x[4] = {1, 2, 3, 4}, y[4] = {9, 9, 9, 9};
    cr_hankel_op *op = NULL;
    assert_int_equal(cr_hankel_op_create(&op, &h1, 1, 4, 4), CR_OK);
    assert_int_equal(cr_hankel_op_apply(op, 1, x, 4, y, 4), CR_OK);
    for (int i = 0; i < 4; i++) assert_true(y[i] == 0.0);
    cr_hankel_op_destroy(op);
}

/* ---- frequency response ------------------------------------------------ */
static void test_freqresp(void **state)
{
    (void)state;
    const size_t cases[][2] = {{1, 1}, {1, 8}, {7, 7}, {7, 56}, {100, 801}, {100, 1000}, {5, 9}};
    uint64_t seed = 9;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        size_t L = cases[ci][0], n = cases[ci][1], C = 3, nb = n / 2 + 1;
        double *h = rand_d(C * L, &seed), *out = malloc(C * nb * 2 * sizeof *out);
        double *ref = malloc(C * nb * 2 * sizeof *ref);
        assert_non_null(out);
        assert_non_null(ref);
        for (size_t c = 0; c < C; c++)
            for (size_t j = 0; j < nb; j++) {
                long double re = 0, im = 0;
                for (size_t k = 0; k < L; k++) {
                    long double a = -2.0L * 3.14159265358979323846264338327950288L * (long double)((j * k) % n) / n;
                    re += h[c * L + k] * cosl(a);
                    im += h[c * L + k] * sinl(a);
                }
                ref[(c * nb + j) * 2] = (double)re;
                ref[(c * nb + j) * 2 + 1] = (double)im;
            }
        assert_int_equal(cr_freqresp(h, C, L, n, out), CR_OK);
        double e = tu_rel_l2(out, ref, C * nb * 2);
        if (!(e <= TOL_D)) fail_msg("freqresp L=%zu n=%zu: rel l2 %.3g", L, n, e);
        /* an unaligned output row layout still works */
        double *out2 = malloc((C * nb * 2 + 1) * sizeof *out2);
        assert_non_null(out2);
        assert_int_equal(cr_freqresp(h, C, L, n, out2 + 1), CR_OK);
        assert_true(tu_rel_l2(out2 + 1, ref, C * nb * 2) <= TOL_D);
        free(h), free(out), free(ref), free(out2);
    }
}

/* ---- sizes and the internal FFT helpers --------------------------------- */
static int smooth7(size_t n)
{
    const size_t p[] = {2, 3, 5, 7};
    for (int i = 0; i < 4; i++)
        while (n % p[i] == 0) n /= p[i];
    return n == 1;
}

static void test_good_size(void **state)
{
    (void)state;
    assert_int_equal(cr_fft_good_size(0), 1);
    assert_int_equal(cr_fft_good_size(1), 1);
    size_t prev = 1;
    for (size_t n = 2; n <= 5000; n++) {
        size_t g = cr_fft_good_size(n);
        assert_true(g >= n && smooth7(g));
        if (smooth7(n)) assert_int_equal(g, n);
        assert_true(g >= prev);
        for (size_t m = n; m < g; m++) assert_false(smooth7(m)); /* minimal */
        prev = g;
    }
    assert_int_equal(cr_fft_good_size(16385), 16464); /* 2^4 3 7^3 */
    assert_int_equal(cr_fft_good_size((size_t)1 << 40), (size_t)1 << 40);
    assert_int_equal(cr_fft_good_size(SIZE_MAX), 0);
}

static void test_fft_helpers(void **state)
{
    (void)state;
    const size_t ns[] = {1, 2, 15, 64, 1000, 4097};
    uint64_t seed = 3;
    for (size_t i = 0; i < 6; i++) {
        size_t n = ns[i], nc = n / 2 + 1;
        /* aligned, unaligned (+1) and in-place buffers, double and float */
        double *x = cr__fft_alloc_d(2 * nc + 2), *y = cr__fft_alloc_d(2 * nc + 2);
        fftw_complex *X = cr__fft_alloc_cd(nc + 1);
        assert_non_null(x);
        assert_non_null(y);
        assert_non_null(X);
        tu_fill(x, n + 1, &seed);
        for (int off = 0; off < 2; off++) {
            double *xi = x + off;
            fftw_complex *Xo = (fftw_complex *)((double *)X + off);
            assert_int_equal(cr__rfft_d(n, xi, Xo), CR_OK);
            /* DC term is the sum */
            double s = 0;
            for (size_t k = 0; k < n; k++) s += xi[k];
            assert_true(fabs(Xo[0][0] - s) <= 1e-12 * (1 + fabs(s)) * n);
            assert_int_equal(cr__irfft_d(n, Xo, y + off), CR_OK);
            for (size_t k = 0; k < n; k++) y[off + k] /= (double)n;
            assert_true(tu_rel_l2(y + off, xi, n) <= TOL_D);
        }
        memcpy(y, x, n * sizeof *y);
        assert_int_equal(cr__rfft_d(n, y, (fftw_complex *)y), CR_OK);
        assert_int_equal(cr__irfft_d(n, (fftw_complex *)y, y), CR_OK);
        for (size_t k = 0; k < n; k++) y[k] /= (double)n;
        assert_true(tu_rel_l2(y, x, n) <= TOL_D);

        float *xf = cr__fft_alloc_f(2 * nc + 2), *yf = cr__fft_alloc_f(2 * nc + 2);
        fftwf_complex *Xf = cr__fft_alloc_cf(nc + 1);
        assert_non_null(xf);
        assert_non_null(yf);
        assert_non_null(Xf);
        for (size_t k = 0; k < n + 1; k++) xf[k] = (float)x[k];
        for (int off = 0; off < 2; off++) {
            assert_int_equal(cr__rfft_f(n, xf + off, (fftwf_complex *)((float *)Xf + off)), CR_OK);
            assert_int_equal(cr__irfft_f(n, (fftwf_complex *)((float *)Xf + off), yf + off), CR_OK);
            double *a = to_d(yf + off, n), *b = to_d(xf + off, n);
            for (size_t k = 0; k < n; k++) a[k] /= (double)n;
            assert_true(tu_rel_l2(a, b, n) <= TOL_F);
            free(a), free(b);
        }
        cr__fft_free(x), cr__fft_free(y), cr__fft_free(X);
        cr__fft_free(xf), cr__fft_free(yf), cr__fft_free(Xf);
    }
    assert_null(cr__plan_d(CR__FFT_R2C, 0, NULL, NULL));
    assert_null(cr__plan_d(CR__FFT_R2C, (size_t)1 << 40, NULL, NULL));
    cr__fft_free(NULL);
}

/* Many threads planning different sizes at once, then executing. */
static void test_plan_threads(void **state)
{
    (void)state;
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(4) reduction(+ : bad)
    for (int i = 0; i < 64; i++) {
        size_t n = 100 + (size_t)(i % 16) * 37;
        double *x = cr__fft_alloc_d(2 * (n / 2 + 1));
        fftw_complex *X = cr__fft_alloc_cd(n / 2 + 1);
        if (x == NULL || X == NULL) {
            bad++;
        } else {
            for (size_t k = 0; k < n; k++) x[k] = (double)((k * 7 + (size_t)i) % 11) - 5.0;
            double s = 0;
            for (size_t k = 0; k < n; k++) s += x[k];
            if (cr__rfft_d(n, x, X) != CR_OK || fabs(X[0][0] - s) > 1e-9) bad++;
        }
        cr__fft_free(x);
        cr__fft_free(X);
    }
    assert_int_equal(bad, 0);
}

/* ---- argument checks --------------------------------------------------- */
static void test_args(void **state)
{
    (void)state;
    double h[8] = {1, 2, 3, 4, 5, 6, 7, 8}, u[8] = {1, 0, 0, 0, 0, 0, 0, 0}, y[64];
    float hf[8] = {1}, uf[8] = {1}, yf[8];
    size_t huge = (size_t)1 << 62;
    assert_int_equal(cr_conv_d(NULL, 1, 8, u, 1, 8, y, 0), CR_EINVAL);
    assert_int_equal(cr_conv_d(h, 1, 8, NULL, 1, 8, y, 0), CR_EINVAL);
    assert_int_equal(cr_conv_d(h, 1, 8, u, 1, 8, NULL, 0), CR_EINVAL);
    assert_int_equal(cr_conv_d(h, 0, 8, u, 1, 8, y, 0), CR_EINVAL);
    assert_int_equal(cr_conv_d(h, 1, 0, u, 1, 8, y, 0), CR_EINVAL);
    assert_int_equal(cr_conv_d(h, 1, 8, u, 0, 8, y, 0), CR_EINVAL);
    assert_int_equal(cr_conv_d(h, 1, 8, u, 1, 0, y, 0), CR_EINVAL);
    assert_int_equal(cr_conv_d(h, huge, 8, u, 1, 8, y, 0), CR_EOVERFLOW);
    assert_int_equal(cr_conv_d(h, 1, 8, u, huge, huge, y, 0), CR_EOVERFLOW);
    assert_int_equal(cr_conv_d(h, 1, huge, u, 1, 8, y, 0), CR_EOVERFLOW);
    assert_int_equal(cr_conv_f(hf, 4, SIZE_MAX, uf, 1, 8, yf, 0), CR_EOVERFLOW);
    assert_int_equal(cr_conv_f(NULL, 1, 8, uf, 1, 8, yf, 0), CR_EINVAL);
    assert_int_equal(cr_conv_d(h, 1, 8, u, 1, 8, u, 0), CR_EINVAL); /* overlap */
    assert_string_not_equal(cr_error_detail(), "");
    h[3] = NAN;
    assert_int_equal(cr_conv_d(h, 1, 8, u, 1, 8, y, 0), CR_ENONFINITE);
    h[3] = 4;
    u[5] = INFINITY;
    assert_int_equal(cr_conv_d(h, 1, 8, u, 1, 8, y, 0), CR_ENONFINITE);
    u[5] = 0;
    assert_int_equal(cr_conv_d(h, 1, 8, u, 1, 8, y, 0), CR_OK);

    assert_int_equal(cr_freqresp(NULL, 1, 8, 8, y), CR_EINVAL);
    assert_int_equal(cr_freqresp(h, 1, 8, 4, y), CR_EINVAL);
    assert_int_equal(cr_freqresp(h, 0, 8, 8, y), CR_EINVAL);
    assert_int_equal(cr_freqresp(h, huge, 8, 8, y), CR_EOVERFLOW);
    assert_int_equal(cr_freqresp(h, 1, 8, SIZE_MAX, y), CR_EOVERFLOW);

    cr_hankel_op *op = (cr_hankel_op *)1;
    assert_int_equal(cr_hankel_op_create(NULL, h, 8, 4, 4), CR_EINVAL);
    assert_int_equal(cr_hankel_op_create(&op, NULL, 8, 4, 4), CR_EINVAL);
    assert_null(op);
    assert_int_equal(cr_hankel_op_create(&op, h, 0, 4, 4), CR_EINVAL);
    assert_int_equal(cr_hankel_op_create(&op, h, 8, 0, 4), CR_EINVAL);
    assert_int_equal(cr_hankel_op_create(&op, h, 8, huge, 4), CR_EOVERFLOW);
    assert_int_equal(cr_hankel_op_create(&op, h, 8, 4, 4), CR_OK);
    assert_int_equal(cr_hankel_op_apply(NULL, 1, u, 4, y, 4), CR_EINVAL);
    assert_int_equal(cr_hankel_op_apply(op, 0, u, 4, y, 4), CR_EINVAL);
    assert_int_equal(cr_hankel_op_apply(op, 1, u, 3, y, 4), CR_EINVAL);
    assert_int_equal(cr_hankel_op_apply_t(op, 1, u, 4, y, 3), CR_EINVAL);
    assert_int_equal(cr_hankel_op_apply(op, huge, u, 4, y, 4), CR_EOVERFLOW);
    assert_int_equal(cr_hankel_op_apply(op, 1, u, 4, u + 2, 4), CR_EINVAL);
    cr_hankel_op_destroy(op);
    cr_hankel_op_destroy(NULL);

    cr_ols_d *s = (cr_ols_d *)1;
    assert_int_equal(cr_ols_d_create(&s, NULL, 1, 8, 4, 0), CR_EINVAL);
    assert_null(s);
    assert_int_equal(cr_ols_d_create(&s, h, 1, 8, 0, 0), CR_EINVAL);
    assert_int_equal(cr_ols_d_create(&s, h, 0, 8, 4, 0), CR_EINVAL);
    assert_int_equal(cr_ols_d_create(&s, h, 1, 8, huge, 0), CR_EOVERFLOW);
    assert_int_equal(cr_ols_d_create(&s, h, huge, huge, 4, 0), CR_EOVERFLOW);
    assert_int_equal(cr_ols_d_push(NULL, u, 1, 1), CR_EINVAL);
    assert_int_equal(cr_ols_d_pull(NULL, y, 1, 1, NULL), CR_EINVAL);
    assert_int_equal(cr_ols_d_available(NULL), 0);
    assert_int_equal(cr_ols_d_room(NULL), 0);
    assert_int_equal(cr_ols_d_reset(NULL), CR_EINVAL);
    assert_int_equal(cr_fir_f_reset(NULL), CR_EINVAL);
    cr_ols_d_destroy(NULL);
    cr_ols_f *sf = NULL;
    assert_int_equal(cr_ols_f_create(&sf, hf, 2, 4, 2, 0), CR_OK);
    assert_int_equal(cr_ols_f_push(sf, NULL, 2, 2), CR_EINVAL);
    assert_int_equal(cr_ols_f_push(sf, uf, 1, 2), CR_EINVAL); /* ldu < n with C = 2 */
    assert_int_equal(cr_ols_f_push(sf, uf, 2, 0), CR_OK);
    cr_ols_f_destroy(sf);

    cr_fir_d *fs = NULL;
    assert_int_equal(cr_fir_d_create(&fs, h, 0, 8), CR_EINVAL);
    assert_int_equal(cr_fir_d_create(&fs, h, 1, huge), CR_EOVERFLOW);
    assert_int_equal(cr_fir_d_create(NULL, h, 1, 8), CR_EINVAL);
    assert_int_equal(cr_fir_d_create(&fs, h, 2, 4), CR_OK);
    assert_int_equal(cr_fir_d_process(fs, u, 4, y, 4, 4), CR_OK);
    assert_int_equal(cr_fir_d_process(fs, u, 4, u + 1, 4, 4), CR_EINVAL); /* overlap */
    assert_int_equal(cr_fir_d_process(fs, u, 3, y, 4, 4), CR_EINVAL);
    assert_int_equal(cr_fir_d_process(fs, NULL, 4, y, 4, 4), CR_EINVAL);
    assert_int_equal(cr_fir_d_process(NULL, u, 4, y, 4, 4), CR_EINVAL);
    h[0] = NAN;
    assert_int_equal(cr_fir_d_process(fs, h, 4, y, 4, 4), CR_ENONFINITE);
    cr_fir_f *ff = NULL;
    hf[1] = NAN;
    assert_int_equal(cr_fir_f_create(&ff, hf, 1, 8), CR_ENONFINITE);
    assert_int_equal(cr_ols_f_create(&sf, hf, 1, 8, 2, 0), CR_ENONFINITE);
    assert_null(ff);
    cr_fir_d_destroy(fs);
    cr_fir_f_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_size),
        cmocka_unit_test(test_fft_helpers),
        cmocka_unit_test(test_plan_threads),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_conv_thread_domain),
        cmocka_unit_test(test_hankel),
        cmocka_unit_test(test_freqresp),
        cmocka_unit_test(test_conv_grid),
        cmocka_unit_test(test_conv_segments),
        cmocka_unit_test(test_ols_room),
        cmocka_unit_test(test_ols),
        cmocka_unit_test(test_fir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
