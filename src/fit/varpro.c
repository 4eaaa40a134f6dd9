/* l2 refinement of poles by variable projection (Golub & Pereyra; MATH.md
 * "Variable projection"), driven by the damped least-squares driver of
 * lm.c with one of two evaluations.
 *
 * Parametrisation (poles stay inside |lambda| <= rho_max):
 *   pair  lambda = rho_max tanh(|u|) u / |u|, u = x + iy unconstrained,
 *   real  lambda = rho_max tanh(b).
 * (The polar form rho_max s(a) e^{i phi} of MATH.md has a dead end at the
 * origin: a pole driven towards 0 has a -> -inf and a vanishing gradient,
 * and never comes back. The radial tanh map is smooth through 0.)
 * A pair whose angle goes to 0 or pi stays a pair with a tiny imaginary
 * part: its two columns then span {lambda^n, n lambda^n} (a double real
 * pole), which is a legitimate order-2 model, so nothing is re-classified.
 *
 * Gram evaluation (fast): the Gram matrix of [Phi Psi h], Phi the design
 * matrix and Psi its derivative basis (cr__design), is known in closed
 * form for the [Phi Psi] block (cr__design_gram); the products with h
 * and with the residual need only Phi, since Psi^T v = Phi^T w with
 * w_j = (j + 1) v_{j+1} (Psi[i] = i Phi[i - 1]), so Psi is never formed
 * and each evaluation makes a few passes over one nr x P matrix. The
 * linear coefficients come from the normal equations plus
 * iterative refinement with residuals computed explicitly (corrected
 * semi-normal equations), so the residual and the gradient are as
 * accurate as a QR solve for moderately conditioned Phi; the Gauss-Newton
 * matrix (Kaufman) is the Schur complement of the Psi block, which only
 * has to be approximate. Infinite horizon: explicit rows k = 1 .. 2L-1
 * (target zero beyond L) plus the exact remainder beyond 2L in closed form
 * (tail Gram matrix added to the normal equations, its analytic gradient
 * to the gradient); the Gauss-Newton matrix neglects only the remainder's
 * curvature, so the fixed point is the exact infinite-horizon optimum.
 *
 * QR evaluation (precise, window horizon): the Gram path squares the
 * condition number of [Phi Psi]. When many poles crowd near 1 with angles
 * about one Rayleigh width 2 pi / L apart (trained S4D kernels), Phi is
 * well conditioned but Psi nearly lies in span(Phi), the Gauss-Newton
 * matrix has condition ~1e10, and the Gram path takes tiny steps or fails.
 * Here everything goes through Householder QR: Phi = Q R gives the
 * coefficients and the projection, and the full Golub-Pereyra Jacobian is
 * formed explicitly and handed to the driver as its triangular factor.
 * About 3x the cost of a Gram evaluation.
 */
#include "fit/fit.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* LM iterations when the caller gives none; the stall test usually stops
 * much earlier. */
#define VP_MAXIT 30
/* iterative refinements of the normal-equation coefficients, and the
 * relative size of a correction after which no further one is made
 * (on Hyena-style kernels the second correction was ~1e-16 relative in
 * 90% of the evaluations: a third of the passes over Phi saved) */
#define VP_REFINE 2
#define VP_REFINE_REL 1e-12
/* parameters for which the Gram evaluation keeps its small scratch on
 * the stack */
#define CR__VP_PMAX 256

/* (the parametrisation: cr__theta_to_poles / cr__poles_to_theta, lsq.c) */

/* ---------------------------------------------------------------------
 * Gram evaluation
 * --------------------------------------------------------------------- */
typedef struct vp_gram {
    cr__pole_param v;
    size_t nr, P, nc;             /* explicit rows, columns, Gram size 2P + 1 */
    int inf;
    double *A;                    /* nr x P: Phi column-major */
    double *hw;                   /* nr x 2: h and its weighted shift (j+1) h[j+1] */
    double hh;                    /* h^T h */
    double *G;                    /* nc x nc Gram */
    double *scale;                /* nc column scales */
    double *Grem;                 /* P x P remainder Gram (infinite) */
    double *C11;                  /* P x P Cholesky of scaled Phi block */
    double *c, *rhs, *psir;       /* P each */
    double *S, *W, *Mj;           /* P x P: Schur complement, scratch, derivative map */
    double complex *alpha, *mu;   /* column descriptors */
    double complex *lam, *dlam;   /* M poles; P: d lambda / d theta_p */
    size_t *nrc;                  /* P: near-real imaginary columns (gram_near_real) */
    double *X, *Y;                /* nr x 2P, P x 2P: vectors and their products (also the
                                   * residual r and w(r), and their products) */
    double *hgx;                  /* 2P: Phi^T [h, w(h)] when P > CR__VP_PMAX */
    double kmax;                  /* cancellation allowed (0 until the first evaluation) */
} vp_gram;

/* The cancellation of a modal fit: sum_q |c_q| ||Phi_q|| / ||Phi c||, the
 * size of the modes' contributions against the fit they sum to (1 when
 * they add up, huge when nearly coinciding poles carry large residues of
 * opposite sign). The model's output loses log10 of it in digits when it
 * runs: a float32 recurrence with cancellation 1e7 computes nothing. The
 * refinement may not raise it above VP_KAPPA_MAX, or above the start's
 * when that is higher: such steps are refused like non-finite ones. (The
 * unconstrained optimum of trained Hyena filters at N = 16 reached 3e8 on
 * some channels for a gain in window error of a few percent.) */
#define VP_KAPPA_MAX 1e4
static int vp_cancelled(double *kmax, const double *c, const double *colnorm_inv, size_t P,
                        double fit2)
{
    double l1 = 0.0;
    for (size_t q = 0; q < P; q++)
        if (colnorm_inv[q] > 0.0) l1 += fabs(c[q]) / colnorm_inv[q];
    double kap = fit2 > 0.0 ? l1 / sqrt(fit2) : (l1 > 0.0 ? INFINITY : 1.0);
    if (*kmax == 0.0) {
        *kmax = fmax(VP_KAPPA_MAX, kap);
        return 0;
    }
    return !(kap <= *kmax);
}

/* Cholesky with a small diagonal lift when the scaled Gram matrix is
 * numerically singular (nearby poles); refinement recovers accuracy. */
static int chol_lift(double *C, const double *G, size_t n, size_t ldg)
{
    double lift = 0.0;
    for (int attempt = 0; attempt < 6; attempt++) {
        for (size_t q = 0; q < n; q++)
            for (size_t p = 0; p <= q; p++)
                C[p + q * n] = G[p + q * ldg] + (p == q ? lift : 0.0);
        if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', (lapack_int)n, C, (lapack_int)n) == 0) return 0;
        lift = lift == 0.0 ? 1e-14 * (double)n : lift * 100.0;
    }
    return -1;
}

/* Remainder E = sum_{i >= nr} (sum_a Re(beta_a lambda_a^i))^2 of the
 * infinite horizon: adds dE/(2 dtheta) to the gradient g:
 *   dE/dt = Re(lambda'_a g_a),
 *   g_a = beta_a sum_b [beta_b lambda_b S'(lambda_a lambda_b)
 *                       + conj(beta_b lambda_b) S'(lambda_a conj lambda_b)],
 *   S(mu) = mu^nr / (1 - mu). */
static void gram_tail_gradient(const vp_gram *w, double *g)
{
    const size_t e = w->nr, M = w->v.M;
    const unsigned char *kind = w->v.kind;
    size_t pa = 0;
    for (size_t a = 0; a < M; a++) {
        int pa2 = kind[a] == CR_MODE_PAIR;
        double complex la = w->lam[a];
        double complex ba = pa2 ? CMPLX(w->c[pa], -w->c[pa + 1]) : w->c[pa];
        double complex ga = 0.0;
        size_t pb = 0;
        for (size_t b = 0; b < M; b++) {
            int pb2 = kind[b] == CR_MODE_PAIR;
            double complex lb = w->lam[b];
            double complex bb = pb2 ? CMPLX(w->c[pb], -w->c[pb + 1]) : w->c[pb];
            double complex m1 = la * lb, m2 = la * conj(lb);
            double complex q1 = cr__cpow(m1, e - 1), q2 = cr__cpow(m2, e - 1);
            double complex d1 = q1 * ((double)e * (1.0 - m1) + m1) / ((1.0 - m1) * (1.0 - m1));
            double complex d2 = q2 * ((double)e * (1.0 - m2) + m2) / ((1.0 - m2) * (1.0 - m2));
            ga += bb * lb * d1 + conj(bb * lb) * d2;
            pb += pb2 ? 2 : 1;
        }
        ga *= ba;
        g[pa] += 0.5 * creal(w->dlam[pa] * ga);
        if (pa2) g[pa + 1] += 0.5 * creal(w->dlam[pa + 1] * ga);
        pa += pa2 ? 2 : 1;
    }
}

/* w_j = (j + 1) v_{j+1}, w_{n-1} = 0: then Psi^T v = Phi^T w */
static void weighted_shift(const double *v, size_t n, double *w)
{
    for (size_t j = 0; j + 1 < n; j++) w[j] = (double)(j + 1) * v[j + 1];
    if (n > 0) w[n - 1] = 0.0;
}

/* The closed-form Gram subtracts nearly equal sums for the imaginary
 * columns of a pair near the real axis (Im lambda^i = O(sin theta) while
 * the sums are O(1)): a relative error of about eps / sin^2 theta in
 * their entries. For pairs within NEAR_REAL (0.01 rad: errors below
 * 2e-12, as small as those of a direct product over 2000 rows) of the
 * axis (S4D keeps one at ~1e-8 rad in every channel), those rows and
 * columns are summed from the columns instead: for the imaginary column
 * x of Phi and y of Psi (y_i = i x_{i-1}), the vectors x, w(x), y, w(y)
 * give all four halves by one product with Phi. */
#define NEAR_REAL 0.01
static void gram_near_real(vp_gram *w)
{
    const size_t nr = w->nr, P = w->P, nc = w->nc;
    size_t p = 0, k = 0;
    for (size_t j = 0; j < w->v.M; j++) {
        if (w->v.kind[j] == CR_MODE_PAIR) {
            double a = cabs(w->lam[j]);
            if (!(fabs(cimag(w->lam[j])) >= NEAR_REAL * a) || !(a > 0.0)) w->nrc[k++] = p + 1;
        }
        p += w->v.kind[j] == CR_MODE_PAIR ? 2 : 1;
    }
    if (k == 0) return;
    for (size_t t = 0; t < k; t++) {
        const double *x = w->A + w->nrc[t] * nr;
        double *X = w->X + 4 * t * nr, *y = X + 2 * nr;
        memcpy(X, x, nr * sizeof *X);
        weighted_shift(x, nr, X + nr);
        y[0] = 0.0;
        for (size_t i = 1; i < nr; i++) y[i] = (double)i * x[i - 1];
        weighted_shift(y, nr, X + 3 * nr);
    }
    /* Y (P x 4k) = Phi^T X, one product for all pairs: at 4k >= 4
     * vectors BLAS-3 (vectorised for the machine at run time) beats the
     * column-by-column sums of dots */
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)P, (int)(4 * k), (int)nr, 1.0,
                w->A, (int)nr, w->X, (int)nr, 0.0, w->Y, (int)P);
    for (size_t t = 0; t < k; t++) {
        const double *Y = w->Y + 4 * t * P;
        size_t qx = w->nrc[t], qy = P + qx;
        for (size_t i = 0; i < P; i++) {
            w->G[i + qx * nc] = w->G[qx + i * nc] = Y[i];                /* Phi^T x */
            w->G[P + i + qx * nc] = w->G[qx + (P + i) * nc] = Y[P + i];  /* Psi^T x */
            w->G[i + qy * nc] = w->G[qy + i * nc] = Y[2 * P + i];        /* Phi^T y */
            w->G[P + i + qy * nc] = w->G[qy + (P + i) * nc] = Y[3 * P + i]; /* Psi^T y */
        }
    }
}

/* The evaluate callback (lm.c): f = ||r||^2 (+ tail); with want, the
 * Gauss-Newton matrix H and the gradient g of f/2 (normal form). */
static int gram_eval(void *ctx, double *th, int want, double *fout, double *H, double *g)
{
    vp_gram *w = ctx;
    const size_t nr = w->nr, P = w->P, nc = w->nc;
    cr__theta_to_poles(&w->v, th, w->lam, w->dlam);
    /* Gram of [Phi Psi h]: the [Phi Psi] block in closed form, the last
     * column Phi^T [h, w(h)] = [Phi^T h, Psi^T h] while Phi is formed */
    double hg[2 * CR__VP_PMAX];
    double *hgp = P <= CR__VP_PMAX ? hg : w->hgx; /* P x 2 */
    cr__design_dot(w->v.kind, w->lam, w->v.M, nr, w->A, nr, w->hw, 2, hgp);
    cr__design_gram(w->v.kind, w->lam, w->v.M, nr, w->G, nc);
    gram_near_real(w);
    for (size_t i = 0; i < P; i++) {
        w->G[i + 2 * P * nc] = hgp[i];
        w->G[P + i + 2 * P * nc] = hgp[P + i];
    }
    w->G[2 * P + 2 * P * nc] = w->hh;
    if (w->inf) {
        cr__design_desc(w->v.kind, w->lam, w->v.M, w->alpha, w->mu);
        cr__tail_gram(P, w->alpha, w->mu, nr + 1, w->Grem, P);
        for (size_t q = 0; q < P; q++)
            for (size_t i = 0; i <= q; i++) w->G[i + q * nc] += w->Grem[i + q * P];
    }
    for (size_t q = 0; q < nc; q++) {
        double d = w->G[q + q * nc];
        w->scale[q] = d > 0.0 ? 1.0 / sqrt(d) : 0.0;
    }
    for (size_t q = 0; q < nc; q++)
        for (size_t i = 0; i <= q; i++) w->G[i + q * nc] *= w->scale[i] * w->scale[q];
    for (size_t q = 0; q < P; q++)
        if (w->scale[q] == 0.0) w->G[q + q * nc] = 1.0; /* empty column: coefficient 0 */
    if (chol_lift(w->C11, w->G, P, nc) != 0) return -1;
    /* c_s = G11^{-1} (Phi_s^T h_s); then refine with explicit residuals */
    const double hs = w->scale[2 * P];
    for (size_t i = 0; i < P; i++) w->c[i] = w->G[i + 2 * P * nc];
    LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', (lapack_int)P, 1, w->C11, (lapack_int)P, w->c,
                   (lapack_int)P);
    /* unscale: c = scale_phi * c_s / hs */
    for (size_t i = 0; i < P; i++) w->c[i] = hs > 0.0 ? w->c[i] * w->scale[i] / hs : 0.0;
    /* Corrected semi-normal equations: r = h - Phi c explicitly, then
     * c += G11^{-1} Phi^T r, at most VP_REFINE times. Phi^T r and
     * Psi^T r = Phi^T w(r) (the gradient's) come from one product with
     * [r, w(r)]. Once a correction is below VP_REFINE_REL of c (the next
     * would be smaller by the same factor again: each contracts the error
     * by ~ cond^2 eps), it is applied to r's products in closed form
     * instead of by two more passes over Phi:
     *   ||r - Phi d||^2 = ||r||^2 - 2 d^T Phi^T r + d^T G11 d,
     *   Psi^T (r - Phi d) = Psi^T r - G21 d. */
    double *r = w->X, *rw = w->X + nr, *prod = w->Y; /* prod: P x 2 */
    const double *hcol = w->hw;
    double f = 0.0;
    for (int it = 0;; it++) {
        memcpy(r, hcol, nr * sizeof *r);
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)nr, (int)P, -1.0, w->A, (int)nr, w->c, 1,
                    1.0, r, 1);
        weighted_shift(r, nr, rw);
        cblas_dgemv(CblasColMajor, CblasTrans, (int)nr, (int)P, 1.0, w->A, (int)nr, r, 1, 0.0,
                    prod, 1);
        cblas_dgemv(CblasColMajor, CblasTrans, (int)nr, (int)P, 1.0, w->A, (int)nr, rw, 1, 0.0,
                    prod + P, 1);
        f = cblas_ddot((int)nr, r, 1, r, 1);
        memcpy(w->psir, prod + P, P * sizeof *w->psir);
        if (it == VP_REFINE) break;
        for (size_t i = 0; i < P; i++) w->rhs[i] = prod[i];
        if (w->inf)
            cblas_dsymv(CblasColMajor, CblasUpper, (int)P, -1.0, w->Grem, (int)P, w->c, 1, 1.0,
                        w->rhs, 1);
        for (size_t i = 0; i < P; i++) w->rhs[i] *= w->scale[i];
        LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', (lapack_int)P, 1, w->C11, (lapack_int)P, w->rhs,
                       (lapack_int)P);
        double dn = 0.0, cn = 0.0;
        for (size_t i = 0; i < P; i++) {
            double d = w->rhs[i] * w->scale[i];
            w->rhs[i] = d;
            w->c[i] += d;
            dn += d * d;
            cn += w->c[i] * w->c[i];
        }
        if (dn <= VP_REFINE_REL * VP_REFINE_REL * cn) {
            /* the closed form, with the scaled Gram matrix (upper
             * triangle): G11 d and G21 d from d_s = d / scale (0 for an
             * empty column), in scratch W and S (rebuilt below) */
            const double *d = w->rhs;
            double *ds = w->W, *t = w->S;
            for (size_t q = 0; q < P; q++) ds[q] = w->scale[q] > 0.0 ? d[q] / w->scale[q] : 0.0;
            double dPr = cblas_ddot((int)P, d, 1, prod, 1);
            cblas_dsymv(CblasColMajor, CblasUpper, (int)P, 1.0, w->G, (int)nc, ds, 1, 0.0, t, 1);
            double dGd = cblas_ddot((int)P, ds, 1, t, 1);
            if (w->inf) { /* G11 holds the remainder too; its part comes with the tail */
                cblas_dsymv(CblasColMajor, CblasUpper, (int)P, 1.0, w->Grem, (int)P, d, 1, 0.0, t, 1);
                dGd -= cblas_ddot((int)P, d, 1, t, 1);
            }
            /* G21 d: rows P..2P-1 of the Phi columns = (G12)^T ds */
            cblas_dgemv(CblasColMajor, CblasTrans, (int)P, (int)P, 1.0, w->G + P * nc, (int)nc, ds, 1,
                        0.0, t, 1);
            for (size_t i = 0; i < P; i++)
                if (w->scale[P + i] > 0.0) w->psir[i] -= t[i] / w->scale[P + i];
            f = fmax(f - 2.0 * dPr + dGd, 0.0);
            break;
        }
    }
    if (w->inf) {
        double *tmp = w->rhs;
        cblas_dsymv(CblasColMajor, CblasUpper, (int)P, 1.0, w->Grem, (int)P, w->c, 1, 0.0, tmp, 1);
        double tail = cblas_ddot((int)P, w->c, 1, tmp, 1);
        f += tail > 0.0 ? tail : 0.0;
    }
    *fout = f;
    if (!isfinite(f)) return -1;
    /* ||Phi c||^2 = ||h||^2 - f at the least-squares c (the residual is
     * orthogonal to the fit, tail included) */
    if (vp_cancelled(&w->kmax, w->c, w->scale, P, w->hh - f)) return -1;
    if (!want) return 0;

    /* Kaufman: J = -P_perp Psi M; J^T J = M^T S M with S the Schur
     * complement of the Psi block; gradient of f/2 = -M^T Psi^T r exactly
     * (r is orthogonal to Phi), plus the remainder term. */
    const double *G12 = w->G + P * nc;  /* rows 0..P-1, cols P..2P-1 (scaled) */
    for (size_t q = 0; q < P; q++)
        for (size_t i = 0; i < P; i++) w->W[i + q * P] = G12[i + q * nc];
    cblas_dtrsm(CblasColMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, (int)P, (int)P,
                1.0, w->C11, (int)P, w->W, (int)P);
    for (size_t q = 0; q < P; q++)
        for (size_t i = 0; i <= q; i++) w->S[i + q * P] = w->G[(P + i) + (P + q) * nc];
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (int)P, (int)P, -1.0, w->W, (int)P, 1.0,
                w->S, (int)P);
    for (size_t q = 0; q < P; q++) /* unscale S to the Psi columns, fill lower */
        for (size_t i = 0; i <= q; i++) {
            double sc = (w->scale[P + i] > 0 && w->scale[P + q] > 0)
                            ? 1.0 / (w->scale[P + i] * w->scale[P + q]) : 0.0;
            double v = w->S[i + q * P] * sc;
            w->S[i + q * P] = v;
            w->S[q + i * P] = v;
        }
    /* psi_r = Psi^T r = Phi^T w(r), from the last residual pass */
    double *psir = w->psir;
    /* derivative map Mj (rows: Psi columns, cols: parameters), block diagonal:
     * d/dt Re(gamma lambda^n) = Re(kappa psi), kappa = gamma lambda',
     * psi = n lambda^(n-1), gamma = c_p - i c_{p+1} */
    memset(w->Mj, 0, P * P * sizeof *w->Mj);
    size_t p = 0;
    for (size_t j = 0; j < w->v.M; j++) {
        if (w->v.kind[j] == CR_MODE_PAIR) {
            double complex gam = CMPLX(w->c[p], -w->c[p + 1]);
            for (int t = 0; t < 2; t++) {
                double complex kap = gam * w->dlam[p + t];
                w->Mj[p + (p + t) * P] = creal(kap);
                w->Mj[(p + 1) + (p + t) * P] = -cimag(kap);
            }
            p += 2;
        } else {
            w->Mj[p + p * P] = w->c[p] * creal(w->dlam[p]);
            p += 1;
        }
    }
    /* H = Mj^T S Mj ; g = -Mj^T psir */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)P, (int)P, (int)P, 1.0, w->S,
                (int)P, w->Mj, (int)P, 0.0, w->W, (int)P);
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)P, (int)P, (int)P, 1.0, w->Mj,
                (int)P, w->W, (int)P, 0.0, H, (int)P);
    cblas_dgemv(CblasColMajor, CblasTrans, (int)P, (int)P, -1.0, w->Mj, (int)P, psir, 1, 0.0, g,
                1);
    if (w->inf) gram_tail_gradient(w, g);
    return 0;
}

/* ---------------------------------------------------------------------
 * QR evaluation (window horizon)
 * --------------------------------------------------------------------- */
typedef struct vp_qr {
    cr__pole_param v;
    size_t nr, P;
    const double *h1;        /* h[1..L-1] */
    double *Q;               /* nr x P: scaled Phi, then its QR factors */
    double *tau, *colsc;     /* P, P */
    double *qh, *r;          /* nr: Q^T h; residual */
    double *c;               /* P unscaled coefficients */
    double *J, *D;           /* nr x P: Jacobian; the derivative basis */
    double *DTr;             /* P x P: D^T r, block diagonal by mode */
    double *tauJ;            /* P */
    double complex *lam, *dlam;
    int lifted;              /* tiny pivots of R were lifted */
    double kmax;             /* cancellation allowed (vp_cancelled) */
} vp_qr;

/* f, c, r at th; with want, the triangular factor of J (R) and Q_J^T r.
 * Returns -1 when the design is numerically singular (coinciding poles)
 * or not finite. */
static int qr_eval(void *ctx, double *th, int want, double *fout, double *RJ, double *b)
{
    vp_qr *w = ctx;
    const size_t nr = w->nr, P = w->P, M = w->v.M;
    cr__theta_to_poles(&w->v, th, w->lam, w->dlam);
    cr__design(w->v.kind, w->lam, M, nr, w->Q, nr, want ? w->D : NULL);
    for (size_t q = 0; q < P; q++) {
        double s = cblas_dnrm2((int)nr, w->Q + q * nr, 1);
        if (!(s > 0.0) || !isfinite(s)) return -1;
        w->colsc[q] = 1.0 / s;
        cblas_dscal((int)nr, w->colsc[q], w->Q + q * nr, 1);
    }
    if (LAPACKE_dgeqrf(LAPACK_COL_MAJOR, (lapack_int)nr, (lapack_int)P, w->Q, (lapack_int)nr,
                       w->tau) != 0)
        return -1;
    double dmax = 0.0, dmin = INFINITY;
    for (size_t q = 0; q < P; q++) {
        double d = fabs(w->Q[q + q * nr]);
        dmax = fmax(dmax, d);
        dmin = fmin(dmin, d);
    }
    if (!(dmax > 0.0)) return -1;
    /* Nearly coinciding poles (e.g. a padded start): Q still gives the
     * exact projection; bound c by lifting tiny pivots instead of failing,
     * so that LM can pull the poles apart. */
    w->lifted = !(dmin > 1e-13 * dmax);
    if (w->lifted)
        for (size_t q = 0; q < P; q++) {
            double *d = &w->Q[q + q * nr];
            if (fabs(*d) < 1e-13 * dmax) *d = *d < 0 ? -1e-13 * dmax : 1e-13 * dmax;
        }
    memcpy(w->qh, w->h1, nr * sizeof *w->qh);
    if (LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'T', (lapack_int)nr, 1, (lapack_int)P, w->Q,
                       (lapack_int)nr, w->tau, w->qh, (lapack_int)nr) != 0)
        return -1;
    memcpy(w->c, w->qh, P * sizeof *w->c);
    cblas_dtrsv(CblasColMajor, CblasUpper, CblasNoTrans, CblasNonUnit, (int)P, w->Q, (int)nr,
                w->c, 1);
    double f = 0.0;
    for (size_t n = P; n < nr; n++) f += w->qh[n] * w->qh[n];
    for (size_t q = 0; q < P; q++) w->c[q] *= w->colsc[q];
    *fout = f;
    if (!isfinite(f)) return -1;
    for (size_t q = 0; q < P; q++)
        if (!isfinite(w->c[q])) return -1;
    double fit2 = 0.0; /* ||Phi c||^2: the projected part of h */
    for (size_t n = 0; n < P; n++) fit2 += w->qh[n] * w->qh[n];
    if (vp_cancelled(&w->kmax, w->c, w->colsc, P, fit2)) return -1;
    if (!want) return 0;
    /* residual r = Q [0; qh2] (accurate even when c is large) */
    memset(w->r, 0, P * sizeof *w->r);
    memcpy(w->r + P, w->qh + P, (nr - P) * sizeof *w->r);
    if (LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)nr, 1, (lapack_int)P, w->Q,
                       (lapack_int)nr, w->tau, w->r, (lapack_int)nr) != 0)
        return -1;
    /* J~[:, t] = d(Phi c)/d theta_t: for a pair, Re(kappa_t psi) with
     * psi = n lambda^(n-1) (the derivative basis D: Re and Im columns),
     * kappa_t = gamma dlambda/dtheta_t, gamma = c_p - i c_{p+1};
     * D^T r per mode gives the term Kaufman drops. */
    memset(w->DTr, 0, P * P * sizeof *w->DTr);
    size_t p = 0;
    for (size_t j = 0; j < M; j++) {
        const double *ps0 = w->D + p * nr;
        if (w->v.kind[j] == CR_MODE_PAIR) {
            const double *ps1 = w->D + (p + 1) * nr;
            double complex gam = CMPLX(w->c[p], -w->c[p + 1]);
            double sr = cblas_ddot((int)nr, w->r, 1, ps0, 1);
            double si = cblas_ddot((int)nr, w->r, 1, ps1, 1);
            double complex S = CMPLX(sr, si);
            for (size_t t = 0; t < 2; t++) {
                double complex k = gam * w->dlam[p + t];
                double a = creal(k), bb = cimag(k);
                double *col = w->J + (p + t) * nr;
                for (size_t n = 0; n < nr; n++) col[n] = a * ps0[n] - bb * ps1[n];
                /* columns p, p+1 of Phi depend on theta_t as Re / Im of lambda^n */
                double complex e = S * w->dlam[p + t];
                w->DTr[p + (p + t) * P] = creal(e);
                w->DTr[p + 1 + (p + t) * P] = cimag(e);
            }
            p += 2;
        } else {
            double k0 = w->c[p] * creal(w->dlam[p]);
            double *col = w->J + p * nr;
            for (size_t n = 0; n < nr; n++) col[n] = k0 * ps0[n];
            w->DTr[p + p * P] = cblas_ddot((int)nr, w->r, 1, ps0, 1) * creal(w->dlam[p]);
            p += 1;
        }
    }
    /* Full Golub-Pereyra Jacobian (not Kaufman's): near the optimum of
     * these problems J has singular values down to ~1e-3 of the largest,
     * and the term Kaufman drops, (Phi^+)^T D_t^T r, is then not small
     * against J s: with it, Gauss-Newton converges quadratically instead
     * of linearly. With Phi diag(colsc) = Q R:
     * J = -P_perp D - Q R^-T diag(colsc) (D^T r) = -Q [Z; (Q^T D)_2],
     * Z = R^-T diag(colsc) (D^T r), column t for parameter t. */
    if (LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'T', (lapack_int)nr, (lapack_int)P, (lapack_int)P,
                       w->Q, (lapack_int)nr, w->tau, w->J, (lapack_int)nr) != 0)
        return -1;
    if (w->lifted) {
        /* R is not trustworthy: Kaufman's approximation */
        for (size_t q = 0; q < P; q++) memset(w->J + q * nr, 0, P * sizeof *w->J);
    } else {
        /* D^T r is block diagonal (a mode's parameters touch its own
         * columns only) */
        p = 0;
        for (size_t j = 0; j < M; j++) {
            size_t bs = w->v.kind[j] == CR_MODE_PAIR ? 2 : 1;
            for (size_t t = p; t < p + bs; t++) {
                double *col = w->J + t * nr;
                memset(col, 0, P * sizeof *col);
                for (size_t i = p; i < p + bs; i++) col[i] = w->colsc[i] * w->DTr[i + t * P];
                cblas_dtrsv(CblasColMajor, CblasUpper, CblasTrans, CblasNonUnit, (int)P, w->Q,
                            (int)nr, col, 1);
            }
            p += bs;
        }
    }
    if (LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)nr, (lapack_int)P, (lapack_int)P,
                       w->Q, (lapack_int)nr, w->tau, w->J, (lapack_int)nr) != 0)
        return -1;
    for (size_t i = 0; i < nr * P; i++) {
        w->J[i] = -w->J[i];
        if (!isfinite(w->J[i])) return -1;
    }
    /* J = Q_J R_J: hand the driver R_J and (Q_J^T r)[0:P] */
    if (LAPACKE_dgeqrf(LAPACK_COL_MAJOR, (lapack_int)nr, (lapack_int)P, w->J, (lapack_int)nr,
                       w->tauJ) != 0)
        return -1;
    memcpy(w->qh, w->r, nr * sizeof *w->qh);
    if (LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'T', (lapack_int)nr, 1, (lapack_int)P, w->J,
                       (lapack_int)nr, w->tauJ, w->qh, (lapack_int)nr) != 0)
        return -1;
    for (size_t q = 0; q < P; q++)
        for (size_t i = 0; i < P; i++) RJ[i + q * P] = i <= q ? w->J[i + q * nr] : 0.0;
    memcpy(b, w->qh, P * sizeof *b);
    return 0;
}

/* ---------------------------------------------------------------------
 * Early stop against a reference model
 * --------------------------------------------------------------------- */
typedef struct vp_watch {
    const cr__pole_param *v;
    const cr__modal *ref;
    double e_ref, tol;
    double complex *lam;
} vp_watch;

/* Every pole lam[j] within tol of a distinct pole of ref of the same kind
 * (greedy nearest match; orders are small). */
static int poles_match(const vp_watch *w)
{
    const cr__modal *ref = w->ref;
    if (ref->n != w->v->M || ref->n > 64) return 0;
    unsigned char used[64] = {0};
    for (size_t j = 0; j < w->v->M; j++) {
        size_t kbest = SIZE_MAX;
        double dbest = w->tol;
        for (size_t k = 0; k < ref->n; k++) {
            if (used[k] || ref->kind[k] != w->v->kind[j]) continue;
            double d = cabs(w->lam[j] - CMPLX(ref->pole_re[k], ref->pole_im[k]));
            if (d <= dbest) {
                dbest = d;
                kbest = k;
            }
        }
        if (kbest == SIZE_MAX) return 0;
        used[kbest] = 1;
    }
    return 1;
}

static int watch_accepted(void *ctx, const double *theta, double f)
{
    vp_watch *w = ctx;
    if (f < w->e_ref) return 0;
    cr__theta_to_poles(w->v, theta, w->lam, NULL);
    return poles_match(w);
}

/* The driver's problem with a watcher wrapped around an evaluation. */
typedef struct vp_watched {
    void *eval_ctx;
    int (*eval)(void *, double *, int, double *, double *, double *);
    vp_watch watch;
} vp_watched;

static int watched_eval(void *ctx, double *th, int want, double *f, double *A, double *b)
{
    vp_watched *w = ctx;
    return w->eval(w->eval_ctx, th, want, f, A, b);
}
static int watched_accepted(void *ctx, const double *theta, double f)
{
    vp_watched *w = ctx;
    return watch_accepted(&w->watch, theta, f);
}

/* ---------------------------------------------------------------------
 * The refinement
 * --------------------------------------------------------------------- */

/* Poles lam[0..n) into m, residues by the robust least-squares solve, and
 * back to the input (in, of squared error e_in) unless the result is at
 * least as good. */
static cr_status vp_finish(const double *h, size_t L, cr_horizon horizon,
                           const double complex *lam, double e_in, const cr__modal *in,
                           cr__modal *m, double *work)
{
    for (size_t j = 0; j < m->n; j++) {
        m->pole_re[j] = creal(lam[j]);
        m->pole_im[j] = m->kind[j] == CR_MODE_PAIR ? cimag(lam[j]) : 0.0;
    }
    cr_status st = cr__residues_ls(h, L, horizon, m);
    double e_out = st == CR_OK ? cr__modal_err2(m, h, L, horizon, work) : INFINITY;
    /* The final residues are solved afresh (the evaluations' solve is
     * lifted for nearby poles): poles an ulp apart on the bound can get
     * residues of +-1e9 there. Such a model is refused like a worse one. */
    if (e_out <= e_in && isfinite(e_in)) {
        double k_out = cr__modal_cancellation(m, L, work);
        if (k_out > VP_KAPPA_MAX && k_out > (in ? cr__modal_cancellation(in, L, work) : 0.0))
            e_out = INFINITY;
    }
    if (!(e_out <= e_in)) {
        if (isfinite(e_in)) {
            cr__modal_copy(m, in);
            st = CR_OK;
        } else if (st == CR_OK && !isfinite(e_out)) {
            st = cr__fail(CR_ENOCONV, "varpro: no finite model");
        }
    }
    return st;
}

cr_status cr__varpro(const double *h, size_t L, cr_horizon horizon, const cr__vp_opts *o,
                     cr__modal *m, cr__fit_stats *stats)
{
    if (!h || !o) return cr__fail(CR_EINVAL, "varpro: kernel or options are NULL");
    if (L == 0) return cr__fail(CR_EINVAL, "varpro: kernel length is 0");
    if (horizon != CR_HORIZON_WINDOW && horizon != CR_HORIZON_INFINITE)
        return cr__fail(CR_EINVAL, "varpro: invalid horizon %d", (int)horizon);
    const int inf = horizon == CR_HORIZON_INFINITE;
    const double rho_max = o->rho_max;
    if (!(rho_max > 0.0 && rho_max < (inf ? 1.0 : 2.0)))
        return cr__fail(CR_EINVAL, "varpro: pole bound %g outside (0, %g)", rho_max,
                        inf ? 1.0 : 2.0);
    cr_status st = cr__modal_check(m);
    if (st != CR_OK) return st;
    if (o->ref && (st = cr__modal_check(o->ref)) != CR_OK) return st;
    for (size_t k = 0; k < L; k++)
        if (!isfinite(h[k])) return cr__fail(CR_ENONFINITE, "varpro: kernel has NaN/Inf at %zu", k);
    const size_t P = cr__design_ncols(m), M = m->n;
    cr__vp_eval how = inf ? CR__VP_GRAM : o->how;
    /* too few rows for the QR path: the Gram path handles it */
    if (how == CR__VP_QR && (L < 3 || L - 1 < 2 * P)) how = CR__VP_GRAM;
    double t0 = stats ? cr__fit_clock() : 0.0;

    /* the input's own error (the one error function): the result must
     * not be worse; an input with poles outside the bound is not an
     * acceptable fallback, so its error counts as infinite */
    double *work = malloc(L * sizeof *work);
    cr__modal in = {0};
    if (!work || cr__modal_alloc(&in, M) != CR_OK) {
        free(work);
        return cr__fail(CR_ENOMEM, "varpro: out of memory");
    }
    cr__modal_copy(&in, m);
    double e_in = cr__modal_err2(m, h, L, horizon, work);
    if (cr__modal_radius(m) > rho_max) e_in = INFINITY;

    cr__pole_param v = { M, m->kind, rho_max };
    vp_gram g = {0};
    vp_qr q = {0};
    double *th = NULL;
    double complex *lam = NULL, *wlam = NULL;
    if (P == 0 || L < 3) { /* nothing to refine: residues only */
        st = cr__residues_ls(h, L, horizon, m);
        if (st == CR_OK && !(cr__modal_err2(m, h, L, horizon, work) <= e_in)) cr__modal_copy(m, &in);
        if (st != CR_OK && isfinite(e_in)) {
            cr__modal_copy(m, &in);
            st = CR_OK;
        }
        goto done;
    }
    size_t nr = how == CR__VP_GRAM && inf ? 2 * L - 1 : L - 1, nA, ncol = P;
    if (!cr__mul_ok(nr, ncol, &nA) || nA > CR_MAX_ELEMS) {
        st = cr__fail(CR_EOVERFLOW, "varpro: problem too large");
        goto done;
    }
    th = malloc(P * sizeof *th);
    lam = malloc(M * sizeof *lam);
    wlam = malloc(M * sizeof *wlam);
    int ok = th && lam && wlam;
    cr__lm_problem pb = { P, 0, NULL, NULL, NULL };
    cr__lm_opts lo;
    if (how == CR__VP_GRAM) {
        g.v = v;
        g.nr = nr;
        g.P = P;
        g.nc = 2 * P + 1;
        g.inf = inf;
        g.A = malloc(nA * sizeof *g.A);
        g.hw = malloc(2 * nr * sizeof *g.hw);
        g.G = malloc(g.nc * g.nc * sizeof *g.G);
        g.scale = malloc(g.nc * sizeof *g.scale);
        g.Grem = calloc(P * P, sizeof *g.Grem);
        g.C11 = malloc(P * P * sizeof *g.C11);
        g.c = malloc(P * sizeof *g.c);
        g.rhs = malloc(P * sizeof *g.rhs);
        g.psir = malloc(P * sizeof *g.psir);
        g.S = malloc(P * P * sizeof *g.S);
        g.W = malloc(P * P * sizeof *g.W);
        g.Mj = malloc(P * P * sizeof *g.Mj);
        g.alpha = malloc(P * sizeof *g.alpha);
        g.mu = malloc(P * sizeof *g.mu);
        g.lam = malloc(M * sizeof *g.lam);
        g.dlam = malloc(P * sizeof *g.dlam);
        g.nrc = malloc(P * sizeof *g.nrc);
        g.X = malloc(2 * nr * P * sizeof *g.X);   /* 4 vectors per near-real pair */
        g.Y = malloc(2 * P * P * sizeof *g.Y);
        g.hgx = malloc(2 * P * sizeof *g.hgx);
        ok = ok && g.A && g.hw && g.G && g.scale && g.Grem && g.C11 && g.c && g.rhs && g.psir &&
             g.S && g.W &&
             g.Mj && g.alpha && g.mu && g.lam && g.dlam && g.nrc && g.X && g.Y && g.hgx;
        if (ok) {
            /* explicit rows: h[1..L-1], then zeros (infinite) */
            memcpy(g.hw, h + 1, (L - 1) * sizeof *h);
            for (size_t n = L - 1; n < nr; n++) g.hw[n] = 0.0;
            weighted_shift(g.hw, nr, g.hw + nr);
            g.hh = cblas_ddot((int)nr, g.hw, 1, g.hw, 1);
        }
        pb.ctx = &g;
        pb.eval = gram_eval;
        /* stop after two accepted steps in a row that gain less than 1e-4
         * of f (5e-5 of the error): on the bench_fit families the medians
         * move by at most 0.06% against a 1e-9 stop, for a third fewer
         * iterations (docs/RESULTS.md, issue 7) */
        lo = (cr__lm_opts){ o->maxit > 0 ? o->maxit : VP_MAXIT, 12, 0.0, 1e-4, 2, 1e-5, 0.0 };
        if (o->rtol > 0) {
            lo.rtol = o->rtol;
            lo.nstall = 1;
        }
    } else {
        q.v = v;
        q.nr = nr;
        q.P = P;
        q.h1 = h + 1;
        q.Q = malloc(nA * sizeof *q.Q);
        q.J = malloc(nA * sizeof *q.J);
        q.D = malloc(nA * sizeof *q.D);
        q.tau = malloc(P * sizeof *q.tau);
        q.tauJ = malloc(P * sizeof *q.tauJ);
        q.colsc = malloc(P * sizeof *q.colsc);
        q.qh = malloc(nr * sizeof *q.qh);
        q.r = malloc(nr * sizeof *q.r);
        q.c = malloc(P * sizeof *q.c);
        q.DTr = malloc(P * P * sizeof *q.DTr);
        q.lam = malloc(M * sizeof *q.lam);
        q.dlam = malloc(P * sizeof *q.dlam);
        ok = ok && q.Q && q.J && q.D && q.tau && q.tauJ && q.colsc && q.qh && q.r && q.c &&
             q.DTr && q.lam && q.dlam;
        pb.ctx = &q;
        pb.eval = qr_eval;
        pb.factored = 1;
        lo = (cr__lm_opts){ o->maxit > 0 ? o->maxit : VP_MAXIT, 20, 0.0, 1e-6, 5, 1e-12, 0.0 };
    }
    if (!ok) {
        st = cr__fail(CR_ENOMEM, "varpro: out of memory");
        goto done;
    }
    double hn2 = 0.0;
    for (size_t k = 0; k < L; k++) hn2 += h[k] * h[k];
    lo.f_stop = fmax(o->f_stop, 1e-30 * (hn2 > 0 ? hn2 : 1.0));
    lo.f_goal = o->f_goal;
    /* the same minimum: poles within 0.15 Rayleigh widths (2 pi / L),
     * which the window cannot tell apart */
    vp_watched wt = { pb.ctx, pb.eval, { &v, o->ref, o->e_ref, 0.0, wlam } };
    if (o->ref) {
        wt.watch.tol = fmin(1e-3, 0.15 * 2.0 * 3.141592653589793 / (double)L);
        pb.ctx = &wt;
        pb.eval = watched_eval;
        pb.accepted = watched_accepted;
    }
    cr__poles_to_theta(&v, m, th);
    cr__lm_result res;
    st = cr__lm(&pb, &lo, th, &res);
    if (stats) {
        stats->lm_iter += (size_t)res.iter;
        stats->lm_eval += (size_t)res.evals;
    }
    if (st == CR_ENOCONV) st = CR_OK; /* cannot even evaluate: keep the input's poles */
    if (st != CR_OK) goto done;
    cr__theta_to_poles(&v, th, lam, NULL);
    st = vp_finish(h, L, horizon, lam, e_in, &in, m, work);
done:
    if (stats) stats->t_refine += cr__fit_clock() - t0;
    free(g.A); free(g.hw); free(g.G); free(g.scale); free(g.Grem); free(g.C11); free(g.c);
    free(g.rhs); free(g.psir);
    free(g.S); free(g.W); free(g.Mj); free(g.alpha); free(g.mu); free(g.lam);
    free(g.dlam); free(g.nrc); free(g.X); free(g.Y); free(g.hgx);
    free(q.Q); free(q.J); free(q.D); free(q.tau); free(q.tauJ); free(q.colsc); free(q.qh);
    free(q.r); free(q.c); free(q.DTr); free(q.lam); free(q.dlam);
    free(th);
    free(lam);
    free(wlam);
    free(work);
    cr__modal_free(&in);
    return st;
}
