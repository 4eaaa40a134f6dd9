/* Internal FFT services of the spectral module (spectral.c). Not installed.
 *
 * Plan cache. FFTW's planner is not thread-safe, but executing a plan is,
 * and the new-array interface (fftw_execute_dft_r2c/c2r) lets one plan serve
 * any buffers of the same size, in-place-ness and alignment. So plans are
 * created once per (direction, size, precision, in-place, aligned) under one
 * global lock with FFTW_ESTIMATE (cheap: process start-up matters more than
 * the last few percent), kept for the life of the process, and looked up
 * without a lock afterwards.
 *
 * Threading contract: every function here may be called from any thread,
 * including inside OpenMP regions. All FFTW planning in libconvrec must go
 * through this cache (a direct fftw_plan_* call elsewhere would race with
 * it). Plans returned here must never be destroyed by the caller.
 *
 * Transform conventions (FFTW's): a real transform of size n maps n reals to
 * n/2 + 1 complex values (interleaved re, im), X[j] = sum_k x[k] e^{-2 pi i jk/n};
 * the inverse is unnormalised (irfft(rfft(x)) = n x) and DESTROYS its
 * complex input. Buffers from cr__fft_alloc_* are aligned for the fast
 * (aligned) plans; any other buffer works too, through a slower unaligned
 * plan chosen automatically. An in-place r2c needs 2 (n/2 + 1) reals.
 * fftw_complex is FFTW's double[2] here (FFTW_NO_Complex below); if
 * <complex.h> and <fftw3.h> were included before this header it is C99's
 * double _Complex instead: same layout, so these functions work either way.
 *
 * Typical use in a loop (plan fetched once, executed many times):
 *     double *x = cr__fft_alloc_d(n);  fftw_complex *X = cr__fft_alloc_cd(n / 2 + 1);
 *     fftw_plan p = cr__plan_d(CR__FFT_R2C, n, x, X);
 *     if (p == NULL) ... return CR_ENOMEM (detail already set);
 *     for (...) { fill x; fftw_execute_dft_r2c(p, x, X); ... }
 *     cr__fft_free(x); cr__fft_free(X);     (never destroy p)
 */
#ifndef CONVREC_SPECTRAL_H
#define CONVREC_SPECTRAL_H

#include "core/core.h"
/* core.h includes <complex.h>, which would make fftw_complex C99's double
 * _Complex; the spectral code indexes it as FFTW's own double[2]. */
#define FFTW_NO_Complex
#include <fftw3.h>

typedef enum cr__fft_dir {
    CR__FFT_R2C = 0,   /* real -> half complex (forward) */
    CR__FFT_C2R = 1    /* half complex -> real (backward, unnormalised) */
} cr__fft_dir;

/* A cached plan valid for a transform of size n (1 <= n <= INT_MAX) from
 * `in` to `out` (the pointers are only inspected for in-place-ness and
 * alignment; they may be any buffers of the right kind, e.g. the ones the
 * caller will execute on). Returns NULL on failure, with cr__fail set
 * (CR_EOVERFLOW for n too large, CR_ENOMEM if FFTW cannot plan).
 * Execute with fftw_execute_dft_r2c(p, in, out) / fftw_execute_dft_c2r(p,
 * in, out) on buffers with the same in-place-ness and alignment. */
fftw_plan cr__plan_d(cr__fft_dir dir, size_t n, const void *in, const void *out);
fftwf_plan cr__plan_f(cr__fft_dir dir, size_t n, const void *in, const void *out);

/* One-shot transforms through the cache (plan lookup + execute).
 * rfft: in has n reals, out n/2 + 1 complex; in is preserved.
 * irfft: in has n/2 + 1 complex (destroyed), out n reals, unnormalised.
 * in == out is allowed (in-place; then the buffer holds 2 (n/2 + 1) reals). */
cr_status cr__rfft_d(size_t n, double *in, fftw_complex *out);
cr_status cr__irfft_d(size_t n, fftw_complex *in, double *out);
cr_status cr__rfft_f(size_t n, float *in, fftwf_complex *out);
cr_status cr__irfft_f(size_t n, fftwf_complex *in, float *out);

/* Aligned buffers of `count` elements (count 0 gives a valid 1-element
 * buffer); NULL with cr__fail(CR_ENOMEM / CR_EOVERFLOW) on failure.
 * Free with cr__fft_free (NULL is ignored). */
double *cr__fft_alloc_d(size_t count);
float *cr__fft_alloc_f(size_t count);
fftw_complex *cr__fft_alloc_cd(size_t count);
fftwf_complex *cr__fft_alloc_cf(size_t count);
void cr__fft_free(void *p);

/* The FFT size n and output segment length S that cr_conv_* uses for
 * kernels of length L and signals of length T with B streams (overlap-save
 * with segments of S outputs; a single segment when S >= T). Exposed so the
 * benchmark can time the same transforms. Returns 0 on overflow. */
int cr__conv_sizes(size_t L, size_t T, size_t B, size_t *n, size_t *S);

/* Hankel operator internals (cr_hankel_op_*), for callers that apply one
 * operator many times (the Hankel SVDs): no argument checks, no
 * allocation. work must hold cr__hankel_op_work(op) doubles from
 * cr__fft_alloc_d (aligned: the op's cached plans are the aligned
 * out-of-place ones, signal and spectrum both in work); one work buffer
 * per thread. trans = 1 applies H^T. */
size_t cr__hankel_op_work(const cr_hankel_op *op);
void cr__hankel_op_apply_raw(const cr_hankel_op *op, int trans, size_t k,
                             const double *X, size_t ldx, double *Y, size_t ldy,
                             double *restrict work);

#endif
