/* The hankel module (src/hankel): singular values and vectors of the Hankel
 * matrices of a kernel. Below the fits; uses core and spectral only. Not
 * installed.
 *
 * Two matrices of a kernel h of length L, both H[i,j] = h[i+j+1]:
 *   CR_HORIZON_INFINITE: zero-padded, i, j < L-1 (the FIR system's Hankel);
 *   CR_HORIZON_WINDOW:   the window Hankel, i < p = ceil((L-1)/2),
 *                        j < q = L - p, no zero padding.
 * Dense LAPACK for small matrices, otherwise Lanczos (symmetric when the
 * matrix is square, Golub-Kahan on the augmented matrix when it is not)
 * with FFT mat-vecs: no m x n matrix is ever formed. The Lanczos basis is
 * reorthogonalised fully for tight tolerances and partially (kept
 * semi-orthogonal) for loose ones (ttol sigma_need >= 1e-6 sigma_1). */
#ifndef CONVREC_HANKEL_H
#define CONVREC_HANKEL_H

#include "core/core.h"

typedef struct cr__hsvd {
    size_t m, n;        /* H is m x n */
    size_t r;           /* min(m, n): the rank bound */
    size_t k;           /* triplets held (columns of U and V) */
    size_t nsigma;      /* values held in sigma, >= k (= r when dense) */
    double *sigma;      /* nsigma values, descending */
    double *err;        /* nsigma absolute error estimates (0 when dense) */
    double *U, *V;      /* m x k and n x k, column-major; NULL without vectors */
    double fro2;        /* ||H||_F^2, exact (sum of multiplicity * h^2) */
    size_t nconv;       /* leading values whose err meets the tolerance */
    int dense;          /* 1: every singular value is known exactly */
} cr__hsvd;

typedef enum cr__hsvd_how {
    CR__HSVD_AUTO = 0,     /* dense for small matrices, Lanczos otherwise */
    CR__HSVD_DENSE = 1,    /* always dense LAPACK (tests, references) */
    CR__HSVD_LANCZOS = 2   /* Lanczos whenever the block fits (tests, benches) */
} cr__hsvd_how;

/* What to compute. k: triplets wanted (clipped to r); need <= k: how many
 * must converge (0 means k); vectors: 0 = values only. A triplet counts as
 * converged when its residual is <= max(rtol * sigma_1, ttol * sigma_need)
 * (ttol = 0: rtol alone; fits use ttol > 0, since their vectors need only
 * be accurate relative to the truncation level) and its value is accurate
 * to max(rtol * sigma_1, vrel * sigma_need) (the residual^2 / gap bound);
 * rtol <= 0 selects 1e-12. Values are never overstated (Ritz values). */
typedef struct cr__hsvd_req {
    size_t k, need;
    int vectors;
    double rtol, ttol;
    cr__hsvd_how how;
    double vrel;
} cr__hsvd_req;

/* Decompose the horizon's Hankel matrix of h (length L >= 1) into *out
 * (zeroed on failure; free with cr__hsvd_free). */
cr_status cr__hankel_svd(const double *h, size_t L, cr_horizon which, const cr__hsvd_req *req,
                         cr__hsvd *out);
void cr__hsvd_free(cr__hsvd *s);
/* sigma_{i+1} (0-based i); 0 beyond the rank; beyond the computed values
 * an upper bound (the last computed value plus its error). */
double cr__hsvd_value(const cr__hsvd *s, size_t i);
/* sum_{i>N} sigma_i: exact when dense, otherwise an upper bound: computed
 * values plus their error estimates, and the part beyond the computed K
 * values bounded by Cauchy-Schwarz with the exact Frobenius norm,
 * sqrt((r - K) (||H||_F^2 - sum_{i<=K} sigma_i^2)), exact up to rounding. */
double cr__hsvd_tail(const cr__hsvd *s, size_t N);

#endif
