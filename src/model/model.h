/* The model module (src/model): the modal core and the public model object.
 * Uses core, io and spectral; knows nothing of fits. Not installed.
 *
 * The modal core is the one owner of the per-channel modal form and of
 * everything done to it: allocation, copies, order, stability checks and
 * stabilisation, kernel materialisation, and the one error function of
 * both horizons. Fits build cr__modal channels with it; the public model
 * stores C channels side by side and hands each out as a cr__modal that
 * points into its arrays (cr__model_channel), so one code path serves both.
 *
 * Conventions (docs/MATH.md): hhat[0] = d, hhat[k] = sum_j w_j Re(r_j
 * lambda_j^(k-1)) for k >= 1, w_j = 2 for CR_MODE_PAIR (stored once, with
 * pole_im != 0), 1 for CR_MODE_REAL (pole_im = res_im = 0). Modes of kind
 * CR_MODE_UNUSED are skipped everywhere. The real order N is the sum of
 * the kinds. */
#ifndef CONVREC_MODEL_H
#define CONVREC_MODEL_H

#include "core/core.h"

#include <complex.h>

/* ---------------------------------------------------------------------
 * The modal core
 * --------------------------------------------------------------------- */

/* One channel in modal form with room for cap modes (n <= cap in use).
 * cap == 0 marks a borrowed channel (cr__model_channel): read it, never
 * free or grow it. */
typedef struct cr__modal {
    size_t n, cap;
    unsigned char *kind;
    double *pole_re, *pole_im, *res_re, *res_im;
    double d;
} cr__modal;

/* Allocate room for cap modes (n = 0, d = 0); one allocation, freed by
 * cr__modal_free (which also takes a zeroed or borrowed struct). */
cr_status cr__modal_alloc(cr__modal *m, size_t cap);
void cr__modal_free(cr__modal *m);
/* dst = src (dst->cap >= src->n: CR_EINVAL otherwise). */
cr_status cr__modal_copy(cr__modal *dst, const cr__modal *src);
/* Exchange two channels (no copy). */
void cr__modal_swap(cr__modal *a, cr__modal *b);
/* Real order N. */
size_t cr__modal_order(const cr__modal *m);
/* Largest |lambda| (0 without modes). */
double cr__modal_radius(const cr__modal *m);
/* Pull every pole inside |lambda| <= rmax. A pole with |lambda| > reflect
 * is reflected to 1 / conj(lambda) (same angle); one closer to the circle
 * is clipped to the radius rmax, which changes a response over a window
 * least. Returns how many poles moved; their residues are then stale and
 * must be refitted by the caller. */
size_t cr__modal_stabilize(cr__modal *m, double rmax, double reflect);
/* The pole bound 1 - margin of a stability margin in [0, 1): a margin of
 * 0 still keeps poles strictly inside (1 - 1e-15). */
static inline double cr__pole_bound(double margin)
{
    return margin > 0.0 ? 1.0 - margin : 1.0 - 1e-15;
}

/* hhat[0..L-1] in closed form (powers re-anchored every 64 samples, 8
 * modes side by side in SIMD lanes). L >= 1. */
void cr__modal_kernel(const cr__modal *m, size_t L, double *out);
/* sum_{k >= L} hhat[k]^2 in closed form (geometric sums); +Inf when a
 * mode with a nonzero residue has |lambda| >= 1. */
double cr__modal_tail2(const cr__modal *m, size_t L);
/* The cancellation of the modal sum over k < L (docs/MATH.md section 5):
 * the norms of its real columns w Re(r) Re(lambda^k), w Im(r) Im(lambda^k)
 * summed, over the norm of hhat[1..L-1]; 1 when nothing cancels, +Inf for
 * a zero kernel with nonzero residues. work: L doubles. */
double cr__modal_cancellation(const cr__modal *m, size_t L, double *work);
/* The squared error ||h - hhat||^2 for the horizon: over k < L (window),
 * or over all k >= 0 with h zero beyond L (infinite: the window sum plus
 * the closed-form tail). work: L doubles. Non-finite results are +Inf.
 * This is the only error function: fits compare candidates with it and
 * the records are computed from it. */
double cr__modal_err2(const cr__modal *m, const double *h, size_t L, cr_horizon horizon,
                      double *work);
/* The errors of the record: err_window, err_infinite, err_hinf, h_norm,
 * order and length (sigma_next and bt_bound are left alone). */
cr_status cr__modal_errors(const cr__modal *m, const double *h, size_t L, cr_fit_record *rec);

/* Validates one mode of channel c (kinds 1/2, finite values, the
 * imaginary-part conventions); shared by every way into a model. */
cr_status cr__modal_check_mode(unsigned char kind, double pr, double pi, double rr, double ri,
                               size_t c, size_t j);

/* The table re[i] + i im[i] = x^i for i < n by the serial recurrence
 * (x = xr + i xi), in real arithmetic; returns x^n. The blocked power
 * loops (the design columns, the kernel) start from it. */
static inline double complex cr__pow_table(double xr, double xi, size_t n, double *restrict re,
                                           double *restrict im)
{
    double zr = 1.0, zi = 0.0;
    for (size_t i = 0; i < n; i++) {
        re[i] = zr;
        im[i] = zi;
        double t = zr * xr - zi * xi;
        zi = zr * xi + zi * xr;
        zr = t;
    }
    return CMPLX(zr, zi);
}

/* z^p by binary powering: the relative error grows like log2(p) eps, not
 * like p eps as for repeated multiplication. */
static inline double complex cr__cpow(double complex z, size_t p)
{
    double complex r = 1.0;
    while (p) {
        if (p & 1) r *= z;
        z *= z;
        p >>= 1;
    }
    return r;
}

/* ---------------------------------------------------------------------
 * The public model object
 * --------------------------------------------------------------------- */

/* Arrays are (C, M) row-major; a channel's used modes come first. */
struct cr_model {
    size_t C, M;
    unsigned char *kind;
    double *pole_re, *pole_im, *res_re, *res_im;
    double *d;              /* (C) */
    cr_fit_record *record;  /* (C) */
    cr_method method;
    cr_horizon horizon;
    double rate;            /* sample rate in Hz, 0 = unknown */
};

/* Channel c as a borrowed cr__modal (n = M, unused modes included and
 * skipped by the core; cap = 0). Valid while the model lives; read only. */
cr__modal cr__model_channel(const cr_model *m, size_t c);
/* Channel c = x (x->n <= M; modes validated as cr_model_set_channel does). */
cr_status cr__model_set_modal(cr_model *m, size_t c, const cr__modal *x);

/* ---------------------------------------------------------------------
 * Audio measures (audio.c): third-octave band errors
 * --------------------------------------------------------------------- */

/* The band errors of channel m against h (length L) at rate (see
 * cr_model_band_errors); band_db (optional, cap >= nbands) receives the
 * signed errors. CR_EINVAL for a rate with no band. */
cr_status cr__modal_band_errors(const cr__modal *m, const double *h, size_t L, double rate,
                                cr_band_errors *out, double *band_db, size_t cap);
/* The size of the frequency grid of the band errors: the FFTW-friendly
 * n >= max(8 L, 4 rate); 0 on overflow. */
size_t cr__band_grid(size_t L, double rate);
/* Bins [j0[b], j1[b]) of the nb bands with edges lo, hi (from
 * cr_third_octave_bands) on the n-point grid f_j = j rate / n. */
void cr__band_bins(double rate, size_t n, size_t nb, const double *lo, const double *hi,
                   size_t *j0, size_t *j1);
/* The modal transfer function Hhat(z) at z = e^{i w}, w = 2 pi j / n for
 * j = j0 .. j1-1, into H (interleaved re, im), in closed form. */
void cr__modal_freqresp(const cr__modal *m, size_t n, size_t j0, size_t j1, double *H);

#endif
