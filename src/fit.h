/* Internal interfaces between the fit modules. Not installed.
 *
 * Owners: hankel.c, fit.c, fit_bt.c, fit_pencil.c  -> "hankel/fit" work
 *         fit_lsq.c, fit_varpro.c, fit_hna.c       -> "refine" work
 */
#ifndef CONVREC_FIT_H
#define CONVREC_FIT_H

#include "internal.h"

/* One channel in modal form, with room for `cap` modes. Conventions of
 * DESIGN.md: hhat[0] = d, hhat[k] = sum_j w_j Re(r_j lambda_j^(k-1)),
 * w_j = 2 for CR_MODE_PAIR (pole_im != 0 stored once), 1 for CR_MODE_REAL
 * (pole_im = res_im = 0). Real order N = sum of kinds (1 or 2 per mode). */
typedef struct cr__modal {
    size_t cap;             /* allocated modes */
    size_t n;               /* modes in use, n <= cap */
    unsigned char *kind;
    double *pole_re, *pole_im, *res_re, *res_im;
    double d;
} cr__modal;

cr_status cr__modal_alloc(cr__modal *m, size_t cap);   /* fit.c */
void cr__modal_free(cr__modal *m);                     /* fit.c */
size_t cr__modal_order(const cr__modal *m);            /* fit.c */

/* --- fit_lsq.c (refine work) ---------------------------------------- */
/* Given the poles (and kinds) in m, set the residues and d to the least-
 * squares optimum for the horizon: window = l2 over k < L; infinite = l2
 * over all k >= 0 with h zero beyond L (tail in closed form). */
cr_status cr__residues_ls(const double *h, size_t L, cr_horizon horizon,
                          cr__modal *m);
/* Sum_{k >= L} hhat[k]^2 in closed form (geometric sums). */
double cr__tail_energy(const cr__modal *m, size_t L);

/* --- fit_varpro.c (refine work) ------------------------------------- */
/* Refine poles, residues and d of m (in place) to a local minimum of the
 * l2 error for the horizon, by variable projection with Levenberg-
 * Marquardt steps; every pole stays within |lambda| <= 1 - margin.
 * Never returns a model worse than the one passed in. */
cr_status cr__refine_varpro(const double *h, size_t L, cr_horizon horizon,
                            double margin, cr__modal *m);

/* --- fit_hna.c (refine work) ---------------------------------------- */
/* Hankel-norm style fit of order N for the infinite horizon, aiming at
 * H-inf error near sigma_{N+1}. */
cr_status cr__fit_hna(const double *h, size_t L, size_t N, double margin,
                      cr__modal *out);

/* --- fit_bt.c, fit_pencil.c (hankel/fit work) ------------------------ */
cr_status cr__fit_bt(const double *h, size_t L, size_t N, double margin,
                     cr__modal *out);
cr_status cr__fit_pencil(const double *h, size_t L, size_t N, double margin,
                         cr__modal *out);

/* Per-channel errors of a modal fit (model.c / fit.c): fills err_window,
 * err_infinite, err_hinf, h_norm, order, length. */
cr_status cr__modal_errors(const cr__modal *m, const double *h, size_t L,
                           cr_fit_record *rec);

#endif
