/*
 * convrec: long convolution kernels -> small stable state-space recurrences.
 *
 * One header, one section per module. Conventions (see docs/ and DESIGN.md):
 *   kernel h[0..L-1] is causal, y[t] = sum_k h[k] u[t-k]; banks are row-major
 *   (C, L); signals are (C, T) or (B, C, T). N ("order") is the dimension of
 *   the real state: a conjugate pair of modes counts 2, a real mode 1.
 *
 * Errors: every function returns a cr_status. Negative codes are bad
 * arguments or bad input, positive codes are numerical failures. The library
 * never prints, exits or aborts. cr_error_detail() gives a one-line
 * description of the last failure in the calling thread.
 *
 * Threading: functions that take a `const` object may be called concurrently
 * on the same object. Objects passed non-const must not be shared between
 * threads without external locking. OpenMP is used only at the top level,
 * across channels; BLAS runs single-threaded inside those regions.
 */
#ifndef CONVREC_H
#define CONVREC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CR_API __attribute__((visibility("default")))
#else
#define CR_API
#endif

/* ======================================================================
 * Status
 * ====================================================================== */
typedef enum cr_status {
    CR_OK = 0,
    /* bad arguments or input (negative) */
    CR_EINVAL = -1,      /* invalid argument: NULL pointer, zero length, out of range */
    CR_ESHAPE = -2,      /* mismatched or unsupported array shape */
    CR_EOVERFLOW = -3,   /* a size overflows or is absurdly large */
    CR_ENONFINITE = -4,  /* NaN or Inf in input data */
    CR_ENOMEM = -5,      /* allocation failed */
    CR_EIO = -6,         /* file could not be opened, read or written */
    CR_EFORMAT = -7,     /* malformed file */
    CR_EDTYPE = -8,      /* unsupported data type */
    CR_EUNSUPPORTED = -9,/* valid request this build or method cannot do */
    /* numerical failures (positive) */
    CR_EUNSTABLE = 1,    /* model has a pole with |lambda| >= 1 (or above the margin) */
    CR_ENOCONV = 2,      /* an iteration did not converge */
    CR_ESINGULAR = 3,    /* singular or numerically rank-deficient system */
    CR_ELAPACK = 4       /* LAPACK reported a failure */
} cr_status;

/* Short, static description of a status code. Never NULL. */
CR_API const char *cr_strerror(cr_status s);
/* Detail of the last failure in this thread (e.g. "header: missing 'shape'"),
 * or "" if none. Valid until the next convrec call in this thread. */
CR_API const char *cr_error_detail(void);
/* Library version string, e.g. "0.1.0". */
CR_API const char *cr_version(void);

/* ======================================================================
 * Arrays and .npy files (io_npy.c)
 * ====================================================================== */
typedef enum cr_dtype { CR_FLOAT32 = 4, CR_FLOAT64 = 8 } cr_dtype;

/* A dense, C-ordered, native-endian array of 1..3 dimensions.
 * data is owned by the array when filled by cr_npy_read (free with
 * cr_array_free). */
typedef struct cr_array {
    cr_dtype dtype;
    int ndim;            /* 1..3 */
    size_t shape[3];     /* unused trailing entries are 1 */
    void *data;
} cr_array;

/* Number of elements (product of shape). */
CR_API size_t cr_array_count(const cr_array *a);
/* Read a .npy file (format 1.0, 2.0, 3.0; '<f4', '<f8', '>f4', '>f8';
 * C or Fortran order, converted to C order; 1 to 3 dimensions).
 * Rejects NaN/Inf with CR_ENONFINITE. On failure *out is zeroed. */
CR_API cr_status cr_npy_read(const char *path, cr_array *out);
/* Write a .npy file (format 1.0, little-endian, C order) atomically:
 * to a temporary file in the same folder, then renamed over path. */
CR_API cr_status cr_npy_write(const char *path, const cr_array *a);
CR_API void cr_array_free(cr_array *a);

/* ======================================================================
 * Spectral module (spectral.c): FFT convolution, streaming convolution,
 * frequency responses, Hankel products by FFT.
 *
 * Plan cache: FFTW plans are created once per (size, precision) under a
 * lock and then executed with the new-array interface, which is
 * thread-safe; all functions below may be called from several threads.
 * ====================================================================== */

/* Smallest n' >= n of the form 2^a 3^b 5^c 7^d (FFTW's fast sizes). */
CR_API size_t cr_fft_good_size(size_t n);

/* Batched causal convolution: h (C, L), u (B, C, T), y (B, C, T),
 * y[b,c,t] = sum_{k<=min(t,L-1)} h[c,k] u[b,c,t-k].
 * nthreads <= 0 uses the OpenMP default. y must not overlap h or u. */
CR_API cr_status cr_conv_d(const double *h, size_t C, size_t L,
                           const double *u, size_t B, size_t T,
                           double *y, int nthreads);
CR_API cr_status cr_conv_f(const float *h, size_t C, size_t L,
                           const float *u, size_t B, size_t T,
                           float *y, int nthreads);

/* Frequency response of a kernel bank on the n-point grid of the unit
 * circle: H[c,j] = sum_k h[c,k] exp(-2 pi i j k / n), j = 0..n/2,
 * stored interleaved (re, im): out has C * (n/2 + 1) * 2 doubles.
 * n >= L. */
CR_API cr_status cr_freqresp(const double *h, size_t C, size_t L, size_t n,
                             double *out);

/* Hankel operator H[i,j] = h[i+j+1], 0 <= i < m, 0 <= j < n, with h zero
 * beyond L; applied by FFT in O((L + m + n) log) without forming H. */
typedef struct cr_hankel_op cr_hankel_op;
CR_API cr_status cr_hankel_op_create(cr_hankel_op **op, const double *h,
                                     size_t L, size_t m, size_t n);
/* Y = H X for k column vectors: X is n x k column-major with leading
 * dimension ldx >= n, Y is m x k with ldy >= m. Thread-safe on a const op. */
CR_API cr_status cr_hankel_op_apply(const cr_hankel_op *op, size_t k,
                                    const double *X, size_t ldx,
                                    double *Y, size_t ldy);
/* Y = H^T X: X is m x k (ldx >= m), Y is n x k (ldy >= n). */
CR_API cr_status cr_hankel_op_apply_t(const cr_hankel_op *op, size_t k,
                                      const double *X, size_t ldx,
                                      double *Y, size_t ldy);
CR_API void cr_hankel_op_destroy(cr_hankel_op *op);

/* Streaming convolution peers (declared by the spectral module below). */
/* @@SPECTRAL-STREAMING@@ */

/* ======================================================================
 * Hankel singular values (hankel.c)
 * ====================================================================== */
typedef enum cr_horizon {
    CR_HORIZON_WINDOW = 0,   /* error on k < L only; response beyond L is free */
    CR_HORIZON_INFINITE = 1  /* h is zero beyond L; the model's tail is error */
} cr_horizon;

/* Leading k Hankel singular values of one kernel h (length L).
 * CR_HORIZON_INFINITE: zero-padded H[i,j] = h[i+j+1], i,j < L-1 (the FIR
 * system's HSV). CR_HORIZON_WINDOW: the window Hankel, i + j + 1 < L,
 * p = ceil((L-1)/2) rows, q = L-1-p+1 columns.
 * k is clipped to the matrix rank bound; *k_out (optional) receives the
 * number written. err_est (optional, may be NULL) receives an estimate of
 * the absolute error of each value (0 for dense LAPACK). */
CR_API cr_status cr_hsv(const double *h, size_t L, cr_horizon horizon,
                        size_t k, double *sigma, size_t *k_out,
                        double *err_est);

/* ======================================================================
 * Model (model.c, io_safetensors.c)
 *
 * A model holds C channels; channel c has up to M modes. Mode j of channel c
 * has a kind (unused, real, conjugate pair), a pole lambda and a residue r
 * (one representative per pair), and the channel has a feedthrough d:
 *   hhat[0] = d, hhat[k] = sum_m w_m Re(r_m lambda_m^(k-1)), w = 2 for pairs.
 * A model is immutable after it is built; share it freely across threads.
 * ====================================================================== */
typedef enum cr_mode_kind {
    CR_MODE_UNUSED = 0,
    CR_MODE_REAL = 1,
    CR_MODE_PAIR = 2
} cr_mode_kind;

typedef enum cr_method {
    CR_METHOD_AUTO = 0,
    CR_METHOD_BT = 1,
    CR_METHOD_HNA = 2,
    CR_METHOD_PENCIL = 3,
    CR_METHOD_NONE = 4       /* built by hand (cr_model_set_channel) */
} cr_method;

/* Fit record of one channel. Errors are NaN when unknown. */
typedef struct cr_fit_record {
    size_t order;         /* real state dimension N */
    size_t length;        /* kernel length L the errors refer to (0: unknown) */
    double err_window;    /* ||h - hhat|| / ||h|| over k < L */
    double err_infinite;  /* same over all k >= 0 (tail of hhat in closed form) */
    double err_hinf;      /* max |H - Hhat| on an FFT grid of >= 8L points (absolute) */
    double h_norm;        /* ||h||_2 over k < L */
    double sigma_next;    /* sigma_{N+1} of the zero-padded (FIR) Hankel */
    double bt_bound;      /* 2 sum_{i>N} sigma_i (an upper bound when estimated) */
} cr_fit_record;

typedef struct cr_model cr_model;

/* An empty model: C channels, room for M modes each, all unused, d = 0. */
CR_API cr_status cr_model_create(cr_model **m, size_t C, size_t M);
CR_API void cr_model_destroy(cr_model *m);
CR_API cr_status cr_model_copy(const cr_model *m, cr_model **out);
/* Set channel c: n modes (n <= M) with kinds, poles (re, im) and residues
 * (re, im), and feedthrough d. Real modes must have im parts 0; pairs are
 * stored once with im(pole) != 0 (either sign). Values must be finite. */
CR_API cr_status cr_model_set_channel(cr_model *m, size_t c, size_t n,
                                      const unsigned char *kind,
                                      const double *pole_re, const double *pole_im,
                                      const double *res_re, const double *res_im,
                                      double d);
/* Read access. Pointers stay valid while the model lives; arrays are
 * (C, M) row-major; unused modes have kind 0 and zero pole and residue. */
typedef struct cr_model_view {
    size_t C, M;
    const unsigned char *kind;
    const double *pole_re, *pole_im, *res_re, *res_im;
    const double *d;               /* (C) */
    const cr_fit_record *record;   /* (C) */
    cr_method method;
    cr_horizon horizon;
} cr_model_view;
CR_API cr_status cr_model_get_view(const cr_model *m, cr_model_view *v);
CR_API size_t cr_model_order(const cr_model *m, size_t c);     /* N of channel c */
/* Largest |lambda| of channel c (0 for a model with d only). */
CR_API double cr_model_spectral_radius(const cr_model *m, size_t c);
/* CR_OK if every |lambda| <= 1 - margin (margin >= 0), else CR_EUNSTABLE
 * with the detail naming the channel and |lambda|. */
CR_API cr_status cr_model_check_stable(const cr_model *m, double margin);
CR_API void cr_model_set_record(cr_model *m, size_t c, const cr_fit_record *r);
CR_API void cr_model_set_info(cr_model *m, cr_method method, cr_horizon horizon);

/* Impulse responses of all channels, out (C, L) row-major. */
CR_API cr_status cr_model_kernel(const cr_model *m, size_t L, double *out);
/* Errors of channel c of the model against kernel h (length L): fills
 * err_window, err_infinite, err_hinf, h_norm, length and order of *rec;
 * leaves sigma_next and bt_bound untouched. */
CR_API cr_status cr_model_errors(const cr_model *m, size_t c, const double *h,
                                 size_t L, cr_fit_record *rec);
/* Save / load the .safetensors model file (docs/FORMAT.md). Saving is
 * atomic (temporary file + rename); loading validates every field. */
CR_API cr_status cr_model_save(const cr_model *m, const char *path);
CR_API cr_status cr_model_load(cr_model **m, const char *path);
/* @@MODEL-EXTRA@@ */

/* ======================================================================
 * Fitting (fit.c, fit_bt.c, fit_pencil.c, fit_hna.c, fit_varpro.c)
 * ====================================================================== */
typedef void (*cr_progress_fn)(void *ctx, size_t done, size_t total);

typedef struct cr_fit_options {
    cr_method method;      /* default CR_METHOD_AUTO */
    cr_horizon horizon;    /* default CR_HORIZON_WINDOW */
    size_t order;          /* N > 0: fixed order; 0: choose by tol */
    double tol;            /* used when order == 0: smallest N with rel l2 <= tol */
    size_t max_order;      /* cap for tol selection; 0 = min(L - 1, 256) */
    double margin;         /* every |lambda| <= 1 - margin; default 1e-6 */
    int nthreads;          /* <= 0: OpenMP default */
    cr_progress_fn progress; /* may be NULL; called from the calling thread only */
    void *progress_ctx;
} cr_fit_options;

CR_API void cr_fit_options_default(cr_fit_options *o);
/* Fit every channel of the bank h (C, L). On success *out is a new model
 * whose records hold the errors and Hankel bounds of each channel. */
CR_API cr_status cr_fit(const double *h, size_t C, size_t L,
                        const cr_fit_options *o, cr_model **out);
/* @@FIT-EXTRA@@ */

/* ======================================================================
 * Recurrence executor (recurrence.c)
 * ====================================================================== */
/* @@RECURRENCE@@ */

/* ======================================================================
 * Export (export.c)
 * ====================================================================== */
/* @@EXPORT@@ */

#ifdef __cplusplus
}
#endif
#endif /* CONVREC_H */
