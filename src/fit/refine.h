/* Private helpers shared by fit_lsq.c, fit_varpro.c and fit_hna.c (the
 * "refine" work). Not installed, not used elsewhere. */
#ifndef CONVREC_FIT_REFINE_H
#define CONVREC_FIT_REFINE_H

#include "fit/fit.h"
#include <complex.h>

/* Validate a modal model's structure: sizes, kinds, finite poles. */
cr_status cr__refine_check_modal(const cr__modal *m);
/* Number of real design columns (= real order N). */
size_t cr__refine_ncols(const cr__modal *m);
/* Tail Gram matrix G (P x P, column-major, leading dimension ldg) of the
 * columns phi_p[i] = Re(alpha_p mu_p^i) summed over i >= L - 1. */
void cr__refine_tail_gram(size_t P, const double complex *alpha,
                          const double complex *mu, size_t L, double *G,
                          size_t ldg);
/* Rows R (P x P, leading dimension ldr) with R^T R = G (PSD square root
 * from the eigen-decomposition; G is overwritten). */
cr_status cr__refine_tail_rows(double *G, size_t P, double *R, size_t ldr);

/* fit_hna_glover.c: the stable part of Glover's optimal Hankel-norm
 * approximant of order N (1 <= N < L - 1), computed on an intermediate
 * projection of order cr__hna_glover_order(L, N), mapped to discrete
 * modes; out->d is Glover's feedthrough. Poles beyond 1 - margin are
 * clipped radially (*moved counts them; residues are then stale). */
size_t cr__hna_glover_order(size_t L, size_t N);
cr_status cr__hna_glover(const double *h, size_t L, size_t N, double margin, cr__modal *out,
                         size_t *moved);

#endif
