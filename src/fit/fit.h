/* Internal interfaces between the fit modules. Not installed.
 *
 * Owners: hankel.c, fit.c, fit_bt.c, fit_pencil.c  -> "hankel/fit" work
 *         fit_lsq.c, fit_varpro.c, fit_hna.c       -> "refine" work
 */
#ifndef CONVREC_FIT_H
#define CONVREC_FIT_H

#include "hankel/hankel.h"
#include "model/model.h"

/* --- fit_lsq.c (refine work) ---------------------------------------- */
/* Given the poles (and kinds) in m, set the residues and d to the least-
 * squares optimum for the horizon: window = l2 over k < L; infinite = l2
 * over all k >= 0 with h zero beyond L (tail in closed form). */
cr_status cr__residues_ls(const double *h, size_t L, cr_horizon horizon,
                          cr__modal *m);

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

/* The same fits from a decomposition computed beforehand (cr_fit reuses
 * one for the records): bt needs the INFINITE (zero-padded) one with right
 * vectors, pencil the WINDOW one with left vectors, each with >= N
 * triplets. When the numerical rank (sigma_i > 1e-13 sigma_1) is below N,
 * the model has that smaller order: the kernel is then exactly
 * represented and extra modes would be noise. */
cr_status cr__fit_bt_svd(const double *h, size_t L, size_t N, double margin,
                         const cr__hsvd *s, cr__modal *out);
cr_status cr__fit_pencil_svd(const double *h, size_t L, size_t N, double rmax,
                             const cr__hsvd *s, cr__modal *out);
/* Decompose the horizon's Hankel (N triplets) and run fit on it (fit.c);
 * L < 2 or N == 0 give d = h[0] only. cr__fit_bt and cr__fit_pencil are
 * this with (INFINITE, cr__fit_bt_svd) and (WINDOW, cr__fit_pencil_svd). */
typedef cr_status (*cr__fit_svd_fn)(const double *h, size_t L, size_t N, double margin,
                                    const cr__hsvd *s, cr__modal *out);
cr_status cr__fit_with_svd(const double *h, size_t L, size_t N, double margin, cr_horizon horizon,
                           cr__fit_svd_fn fit, cr__modal *out);

#endif
