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
/* dst = src; dst->cap >= src->n is the caller's duty (fit.c). */
void cr__modal_copy(cr__modal *dst, const cr__modal *src);
/* Pull every pole inside |lambda| <= 1 - margin (fit.c). A pole with
 * |lambda| > reflect_above is reflected to 1 / conj(lambda) (same angle);
 * one closer to the circle is clipped to the radius 1 - margin, which
 * changes a response over a window least. Returns how many poles moved;
 * the residues are then stale and must be refitted by the caller. */
size_t cr__modal_stabilize(cr__modal *m, double margin, double reflect_above);

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
/* The same with the pole bound |lambda| <= rho_max given directly
 * (window horizon: rho_max < 2 may exceed 1, for continuation from an
 * unstable start; infinite: rho_max < 1) and maxit > 0 LM iterations
 * (0: the default). */
cr_status cr__refine_varpro_ex(const double *h, size_t L, cr_horizon horizon, double rho_max,
                               int maxit, cr__modal *m);
/* cr__refine_varpro that gives up once its poles have all come within
 * 1e-4 of the poles of ref (same kinds) while its error is still >= e_ref
 * (ref's squared error): it is then converging to ref's minimum and cannot
 * end meaningfully lower. ref may be NULL (plain refinement). */
cr_status cr__refine_varpro_vs(const double *h, size_t L, cr_horizon horizon, double margin,
                               const cr__modal *ref, double e_ref, cr__modal *m);
/* Window horizon, QR-based (no Gram matrices): for poles crowded near
 * the unit circle where the default path stalls. Stops after maxit LM
 * iterations, when the squared error reaches f_stop, or on stagnation.
 * Never returns a model worse than the input (unless the input is
 * outside rho_max). */
cr_status cr__refine_varpro_precise(const double *h, size_t L, double rho_max, int maxit,
                                    double f_stop, cr__modal *m);

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

/* --- hankel.c (hankel/fit work) --------------------------------------- */
/* Leading singular triplets of a Hankel matrix of h (length L):
 * CR_HORIZON_INFINITE: zero-padded H[i,j] = h[i+j+1], i,j < L-1;
 * CR_HORIZON_WINDOW:   window Hankel, i < p = ceil((L-1)/2), j < q = L - p.
 * Dense LAPACK for small matrices, otherwise Lanczos (symmetric, or Golub-Kahan for rectangular) with FFT mat-vecs
 * with FFT mat-vecs (no m x n matrix formed), iterated until the leading
 * `need` triplets have residual <= rtol * sigma_1 (or an iteration cap). */
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

/* k: triplets wanted (clipped to r); need <= k: how many must converge
 * (0 means k); vectors: 0 = values only. A value counts as converged when
 * its residual is <= max(rtol * sigma_1, ttol * sigma_need) (ttol = 0:
 * rtol alone; fits use ttol > 0: vectors need only be accurate relative to
 * the truncation level); rtol <= 0 selects 1e-12. */
cr_status cr__hankel_svd(const double *h, size_t L, cr_horizon which,
                         size_t k, size_t need, int vectors, double rtol,
                         double ttol, cr__hsvd *out);
void cr__hsvd_free(cr__hsvd *s);
/* sigma_{i+1} (0-based i); 0 beyond the rank; beyond the computed values
 * an upper bound (the last computed value). */
double cr__hsvd_value(const cr__hsvd *s, size_t i);
/* sum_{i>N} sigma_i: exact when dense, otherwise an upper bound: computed
 * values plus their error estimates, and the part beyond the computed K
 * values bounded by Cauchy-Schwarz with the exact Frobenius norm,
 * sqrt((r - K) (||H||_F^2 - sum_{i<=K} sigma_i^2)), exact up to rounding. */
double cr__hsvd_tail(const cr__hsvd *s, size_t N);
/* The block size at or above which cr__hankel_svd uses the randomized
 * path (measured; see bench/bench_fit.c); exposed for tests and benches:
 * mode 0 = automatic, 1 = force dense, 2 = force randomized. */
void cr__hankel_set_mode(int mode);

/* The same fits from a decomposition computed beforehand (cr_fit reuses
 * one for the records): bt needs the INFINITE (zero-padded) one with right
 * vectors, pencil the WINDOW one with left vectors, each with >= N
 * triplets. When the numerical rank (sigma_i > 1e-13 sigma_1) is below N,
 * the model has that smaller order: the kernel is then exactly
 * represented and extra modes would be noise. */
cr_status cr__fit_bt_svd(const double *h, size_t L, size_t N, double margin,
                         const cr__hsvd *s, cr__modal *out);
cr_status cr__fit_pencil_svd(const double *h, size_t L, size_t N, double margin,
                             const cr__hsvd *s, cr__modal *out);
/* Decompose the horizon's Hankel (N triplets) and run fit on it (fit.c);
 * L < 2 or N == 0 give d = h[0] only. cr__fit_bt and cr__fit_pencil are
 * this with (INFINITE, cr__fit_bt_svd) and (WINDOW, cr__fit_pencil_svd). */
typedef cr_status (*cr__fit_svd_fn)(const double *h, size_t L, size_t N, double margin,
                                    const cr__hsvd *s, cr__modal *out);
cr_status cr__fit_with_svd(const double *h, size_t L, size_t N, double margin, cr_horizon horizon,
                           cr__fit_svd_fn fit, cr__modal *out);

/* Per-channel errors of a modal fit (model.c / fit.c): fills err_window,
 * err_infinite, err_hinf, h_norm, order, length. */
cr_status cr__modal_errors(const cr__modal *m, const double *h, size_t L,
                           cr_fit_record *rec);

#endif
