/* The fit layer (src/fit): private interfaces between its files. Uses
 * core, spectral, hankel and model. Not installed.
 *
 *   fit.c        cr_fit: options, validation, dispatch, the order search
 *                for a tolerance, model assembly (calls the methods; no
 *                method calls into it)
 *   ctx.c        the channel context: one kernel and the Hankel
 *                decompositions its methods share, computed on demand
 *   bt.c         balanced truncation         pencil.c   TLS-ESPRIT
 *   hna.c        Hankel-norm (minimax)       hna_glover.c  Glover's start
 *   auto.c       the default: starts refined by variable projection
 *   lsq.c        the design matrix, least-squares residues, tail rows
 *   varpro.c     variable projection (Gram and QR evaluations)
 *   lm.c         the damped least-squares driver every refinement uses
 *   weighted.c   the octave-weighted fit for audio (CR_WEIGHT_OCTAVE)
 */
#ifndef CONVREC_FIT_H
#define CONVREC_FIT_H

#include "hankel/hankel.h"
#include "model/model.h"

#include <complex.h>

/* cr_fit with the time spent and the iterations counted in *stats (NULL:
 * plain cr_fit); for bench_fit (fit.c). */
typedef struct cr__fit_stats cr__fit_stats;
cr_status cr__fit_bank(const double *h, size_t C, size_t L, const cr_fit_options *o,
                       cr_model **out, cr__fit_stats *stats);

/* ---------------------------------------------------------------------
 * The channel context (ctx.c)
 * --------------------------------------------------------------------- */

/* Where the time of a fit goes (optional, for bench_fit): seconds and
 * counts summed over the channel's fits. Filled only when
 * cr__fitctx.stats is set. */
typedef struct cr__fit_stats {
    double t_hsv, t_start, t_refine;   /* Hankel SVDs, starts, refinements */
    size_t lm_iter, lm_eval;           /* LM iterations (accepted steps), evaluations */
    size_t n_far;                      /* channels that took the far route */
} cr__fit_stats;

struct cr__fitctx;
struct cr__wgrid;
/* A method: see "Methods" below. */
typedef cr_status (*cr__method_fn)(struct cr__fitctx *c, size_t N, cr__modal *out);

typedef struct cr__fitctx {
    const double *h;
    size_t L;
    cr_horizon horizon;       /* the objective */
    double rmax;              /* every pole within |lambda| <= rmax = 1 - margin */
    double hn2;               /* ||h||^2 over k < L */
    cr__hsvd svd[2];          /* by cr_horizon; k == 0: not computed yet */
    double *work;             /* L doubles: scratch of the error function */
    cr__fit_stats *stats;     /* NULL: not measured */
    /* A squared error that is good enough (the tolerance of an order
     * search), 0 for none: methods may stop there, and long refinements
     * give up once their rate of progress cannot reach it. */
    double f_goal;
    /* the weighted fit (weighted.c); zero after cr__fitctx_init */
    cr_weight weight;         /* CR_WEIGHT_OCTAVE: cr__fit_weighted's objective */
    double rate;              /* sample rate in Hz (0: unknown) */
    cr__method_fn base;       /* the unweighted method it starts from (NULL: auto) */
    struct cr__wgrid *wgrid;  /* its frequency grid, built on first use */
} cr__fitctx;

/* h (length L >= 1, finite) must outlive the context; margin in [0, 1). */
cr_status cr__fitctx_init(cr__fitctx *c, const double *h, size_t L, cr_horizon horizon,
                          double margin);
void cr__fitctx_free(cr__fitctx *c);
/* The decomposition of the Hankel matrix of `which` with at least k
 * triplets and vectors (grown, by doubling, when more are asked for);
 * fewer only when the rank bound is smaller. */
cr_status cr__fitctx_svd(cr__fitctx *c, cr_horizon which, size_t k, const cr__hsvd **out);
/* The squared l2 error of m for the context's horizon (cr__modal_err2). */
double cr__fitctx_err2(cr__fitctx *c, const cr__modal *m);
/* Seconds since an arbitrary origin (monotonic), for the stats. */
double cr__fit_clock(void);

/* ---------------------------------------------------------------------
 * Methods: fit order N (1 <= N <= L - 1) into out, every pole within
 * c->rmax. out is an owned channel (cr__modal_alloc, cap >= N); a method
 * may exchange its arrays with scratch of the same capacity. The model
 * may have a lower order when the kernel is exactly represented by fewer
 * modes.
 * --------------------------------------------------------------------- */
cr_status cr__fit_bt(cr__fitctx *c, size_t N, cr__modal *out);      /* bt.c */
cr_status cr__fit_pencil(cr__fitctx *c, size_t N, cr__modal *out);  /* pencil.c */
cr_status cr__fit_hna(cr__fitctx *c, size_t N, cr__modal *out);     /* hna.c */
cr_status cr__fit_auto(cr__fitctx *c, size_t N, cr__modal *out);    /* auto.c */
/* weighted.c: the octave-weighted fit (c->weight, c->rate > 0), started
 * from c->base's fit of order N and a log-frequency grid of poles. */
cr_status cr__fit_weighted(cr__fitctx *c, size_t N, cr__modal *out);
void cr__wgrid_free(struct cr__wgrid *g);
/* For tests: the largest difference between the analytic gradient of the
 * weighted objective at m's poles (with least-squares coefficients) and
 * central differences, relative to the gradient's largest entry. */
cr_status cr__weighted_gradcheck(cr__fitctx *c, const cr__modal *m, double *maxrel);

/* The same from a decomposition computed beforehand: bt needs the
 * INFINITE (zero-padded) one with right vectors, pencil the WINDOW one
 * with left vectors, each with >= N triplets. When the numerical rank
 * (sigma_i > 1e-13 sigma_1) is below N, the model has that smaller order:
 * the kernel is then exactly represented and extra modes would be noise.
 * pencil: poles beyond rmax are reflected (|lambda| > 1.01) or clipped;
 * rmax may exceed 1 for a deliberately unstable start. */
cr_status cr__bt_from_svd(const double *h, size_t L, size_t N, double rmax, const cr__hsvd *s,
                          cr__modal *out);
cr_status cr__pencil_from_svd(const double *h, size_t L, size_t N, double rmax,
                              const cr__hsvd *s, cr__modal *out);

/* hna_glover.c: the stable part of Glover's optimal Hankel-norm
 * approximant of order N (1 <= N < L - 1), computed on an intermediate
 * projection of order cr__hna_glover_order(L, N), mapped to discrete
 * modes; out->d is Glover's feedthrough. Poles beyond rmax are clipped
 * radially (*moved counts them; residues are then stale). */
size_t cr__hna_glover_order(size_t L, size_t N);
cr_status cr__hna_glover(const double *h, size_t L, size_t N, double rmax, cr__modal *out,
                         size_t *moved);

/* ---------------------------------------------------------------------
 * The design matrix and linear least squares (lsq.c)
 * --------------------------------------------------------------------- */

/* The unconstrained parameters theta of the refinements' poles, which
 * keep every pole strictly inside |lambda| < rho:
 *   pair  lambda = rho tanh(|u|) u / |u|, u = theta_p + i theta_p+1,
 *   real  lambda = rho tanh(theta_p).
 * theta -> poles lam (M of them); dl (optional) receives d lambda /
 * d theta_p for every parameter p. And back: the theta of m's poles
 * (clipped to just inside rho). */
typedef struct cr__pole_param {
    size_t M;                  /* modes */
    const unsigned char *kind; /* their kinds (fixed) */
    double rho;                /* the bound */
} cr__pole_param;
void cr__theta_to_poles(const cr__pole_param *w, const double *th, double complex *lam,
                        double complex *dl);
void cr__poles_to_theta(const cr__pole_param *w, const cr__modal *m, double *th);

/* Validate a modal channel's structure: sizes, kinds, finite poles. */
cr_status cr__modal_check(const cr__modal *m);
/* Real design columns of the modes (= the real order). */
size_t cr__design_ncols(const cr__modal *m);
/* The design matrix of the poles lam[0..M) with kinds kind[0..M): for
 * rows i = 0..nr-1 (i = k - 1), a pair gives the columns Re lambda^i and
 * Im lambda^i, a real mode lambda^i (column-major, leading dimension ld).
 * With dPhi != NULL also the derivative basis: the same columns of
 * i lambda^(i-1) (Re and Im for a pair), by block products (lsq.c). */
void cr__design(const unsigned char *kind, const double complex *lam, size_t M, size_t nr,
                double *Phi, size_t ld, double *dPhi);
/* cr__design without dPhi, and Y = Phi^T V (P x nv, ld P) for nv vectors
 * V (nr x nv) in the same pass, while each column is in cache. */
void cr__design_dot(const unsigned char *kind, const double complex *lam, size_t M, size_t nr,
                    double *Phi, size_t ld, const double *V, size_t nv, double *Y);
/* The Gram matrix of [Phi dPhi] over nr rows in closed form, (2P x 2P,
 * both triangles, column-major, leading dimension ldg): O(P^2 log nr)
 * instead of O(nr P^2), and without the rounding of the recurrences. */
void cr__design_gram(const unsigned char *kind, const double complex *lam, size_t M, size_t nr,
                     double *G, size_t ldg);
/* Column descriptors: column p is Re(alpha_p mu_p^i). */
void cr__design_desc(const unsigned char *kind, const double complex *lam, size_t M,
                     double complex *alpha, double complex *mu);
/* Tail Gram matrix G (P x P, column-major, leading dimension ldg) of the
 * columns Re(alpha_p mu_p^i) summed over i >= L - 1 (closed form). */
void cr__tail_gram(size_t P, const double complex *alpha, const double complex *mu, size_t L,
                   double *G, size_t ldg);
/* Rows R (P x P, leading dimension ldr) with R^T R = G (PSD square root
 * from the eigen-decomposition; G is overwritten). */
cr_status cr__tail_rows(double *G, size_t P, double *R, size_t ldr);
/* Given the poles (and kinds) of m, set the residues and d to the least-
 * squares optimum for the horizon: window = l2 over k < L; infinite = l2
 * over all k >= 0 with h zero beyond L (tail in closed form). */
cr_status cr__residues_ls(const double *h, size_t L, cr_horizon horizon, cr__modal *m);

/* ---------------------------------------------------------------------
 * The damped least-squares driver (lm.c)
 *
 * Minimises f(theta) = ||r(theta)||^2 (or any objective with a Gauss-
 * Newton model) over P parameters by Levenberg-Marquardt steps with
 * More's scaling (a running maximum of the curvature of each parameter)
 * and Nielsen's damping update. The evaluate callback returns f and, when
 * asked, the model at theta in one of two forms:
 *   normal:   H = J^T J (P x P, column-major, upper triangle) and g = J^T r;
 *   factored: R (P x P upper triangular, column-major) and b = (Q^T r)[0:P]
 *             with J = Q R (H = R^T R, g = R^T b), which keeps the
 *             accuracy of a QR-based evaluation.
 * The normal form is solved by Cholesky per trial; the factored one is
 * decomposed (SVD) once per accepted point, so that trying another damping
 * costs O(P^2).
 * --------------------------------------------------------------------- */
typedef struct cr__lm_problem {
    size_t P;
    int factored;
    void *ctx;
    /* f at theta; with want != 0 also the model (A = H or R, b = g or Q^T r).
     * May project theta onto the feasible set in place (the projected
     * point is the one evaluated). Returns 0, or -1 when theta cannot be
     * evaluated (the step is then rejected). */
    int (*eval)(void *ctx, double *theta, int want, double *f, double *A, double *b);
    /* Called after each accepted step (may be NULL); nonzero stops. */
    int (*accepted)(void *ctx, const double *theta, double f);
} cr__lm_problem;

typedef struct cr__lm_opts {
    int maxit;          /* accepted steps at most */
    int max_rejects;    /* consecutive rejected steps before giving up */
    double f_stop;      /* stop once f <= f_stop */
    double rtol;        /* an accepted step "stalls" when (f - f_new) / f < rtol */
    int nstall;         /* stop after this many consecutive stalled steps */
    double floor;       /* smallest scale relative to the largest (More) */
    /* 0, or a goal: every LM_WINDOW accepted steps, stop when the decrease
     * over the last window, continued at the same rate for the remaining
     * budget, would still end above 4 f_goal (the goal is out of reach). */
    double f_goal;
} cr__lm_opts;

typedef struct cr__lm_result {
    double f;           /* objective at the returned theta */
    int iter, evals;
} cr__lm_result;

/* theta (P values) is updated in place to the best point found; returns
 * CR_OK (also when no step was accepted), CR_ENOMEM, or CR_ENOCONV when
 * the start itself cannot be evaluated. */
cr_status cr__lm(const cr__lm_problem *pb, const cr__lm_opts *o, double *theta,
                 cr__lm_result *res);

/* ---------------------------------------------------------------------
 * Variable projection (varpro.c)
 * --------------------------------------------------------------------- */
typedef enum cr__vp_eval {
    CR__VP_GRAM = 0,   /* normal equations with explicit residuals (fast) */
    CR__VP_QR = 1      /* Householder QR, full Golub-Pereyra Jacobian
                        * (precise; window horizon only) */
} cr__vp_eval;

typedef struct cr__vp_opts {
    cr__vp_eval how;
    double rho_max;    /* poles within |lambda| <= rho_max (window: < 2, so
                        * an unstable start can be continued inwards;
                        * infinite: < 1) */
    int maxit;         /* LM iterations; 0: the default */
    double f_stop;     /* stop once the squared error is <= f_stop (0: never) */
    /* Stop early once every pole is within 1e-4 of a pole of ref (same
     * kinds) while the squared error is still >= e_ref: the refinement is
     * then converging to ref's minimum. ref may be NULL. */
    const cr__modal *ref;
    double e_ref;
    double f_goal;     /* 0, or a goal out of whose reach to stop (cr__lm_opts) */
    /* 0: the fits' stop (two accepted steps in a row gaining < 1e-4 of
     * the squared error); > 0: stop after one step gaining < rtol (tests
     * that need the exact minimum) */
    double rtol;
} cr__vp_opts;

/* Refine poles, residues and d of m in place to a local minimum of the
 * l2 error for the horizon. Never returns a model worse than the one
 * passed in (by cr__modal_err2), unless that one has poles outside
 * rho_max. stats may be NULL. */
cr_status cr__varpro(const double *h, size_t L, cr_horizon horizon, const cr__vp_opts *o,
                     cr__modal *m, cr__fit_stats *stats);

#endif
