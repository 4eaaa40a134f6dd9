/* l2 refinement of poles by variable projection (Golub-Pereyra) with
 * Kaufman's Jacobian and Levenberg-Marquardt steps (MATH.md "Variable
 * projection").
 *
 * Parametrisation (poles stay inside |lambda| <= rho_max = 1 - margin):
 *   pair  lambda = rho_max tanh(|u|) u / |u|, u = x + iy unconstrained,
 *   real  lambda = rho_max tanh(b).
 * (The polar form rho_max s(a) e^{i phi} of MATH.md has a dead end at the
 * origin: a pole driven towards 0 has a -> -inf and a vanishing gradient,
 * and never comes back. The radial tanh map is smooth through 0.)
 * A pair whose angle goes to 0 or pi stays a pair with a tiny imaginary
 * part: its two columns then span {lambda^n, n lambda^n} (a double real
 * pole), which is a legitimate order-2 model, so nothing is re-classified.
 *
 * Speed: each evaluation forms the design matrix Phi (columns Re/Im
 * lambda^n or lambda^n), the derivative basis Psi (Re/Im n lambda^(n-1)
 * or n lambda^(n-1)) and h, and one Gram product
 * [Phi Psi h]^T [Phi Psi h] by BLAS (dsyrk). The linear coefficients come
 * from the normal equations plus iterative refinement with residuals
 * computed explicitly (corrected semi-normal equations), so the residual
 * and the gradient are as accurate as a QR solve for moderately
 * conditioned Phi; the Gauss-Newton matrix (Kaufman) is the Schur
 * complement of the Psi block, which only has to be approximate.
 *
 * Infinite horizon: explicit rows k = 1 .. 2L-1 (target zero beyond L)
 * plus the exact remainder beyond 2L in closed form (tail Gram matrix
 * added to the normal equations, its analytic gradient added to the
 * gradient). The Gauss-Newton matrix neglects only the remainder's
 * curvature, so the fixed point is the exact infinite-horizon optimum.
 */
#include "fit/refine.h"

#include <cblas.h>
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct vp_ws {
    size_t L, nr, P, nc, M;       /* window length, explicit rows, columns, Gram size, modes */
    int inf;
    double rho_max;
    const unsigned char *kind;    /* mode kinds (fixed) */
    double *A;                    /* nr x nc: [Phi | Psi | h] column-major */
    double *G;                    /* nc x nc Gram */
    double *scale;                /* nc column scales */
    double *Grem;                 /* P x P remainder Gram (infinite) */
    double *C11;                  /* P x P Cholesky of scaled Phi block */
    double *c, *rhs, *r;          /* P, P, nr */
    double *S;                    /* P x P Schur complement (scaled) */
    double *W;                    /* P x P */
    double complex *alpha, *mu;   /* column descriptors */
    double complex *lam;          /* M poles */
    double complex *dlam;         /* P: d lambda / d theta_p (of its mode) */
    double *H, *g;                /* P x P Gauss-Newton matrix, P gradient */
    double *Mj;                   /* P x P derivative map */
    double f;                     /* objective: ||r||^2 + tail */
} vp_ws;


/* tanh(s)/s and its derivative, with the series near 0 */
static inline void tanh_ratio(double sabs, double *q, double *dq)
{
    if (sabs < 1e-4) {
        double s2 = sabs * sabs;
        *q = 1.0 - s2 / 3.0;
        *dq = -2.0 * sabs / 3.0;
    } else {
        double t = tanh(sabs);
        *q = t / sabs;
        *dq = ((1.0 - t * t) * sabs - t) / (sabs * sabs);
    }
}

/* theta -> poles; dl (optional) receives d lambda / d theta_p per parameter */
static void theta_to_poles(const vp_ws *w, const double *th, double complex *lam,
                           double complex *dl)
{
    size_t p = 0;
    for (size_t j = 0; j < w->M; j++) {
        if (w->kind[j] == CR_MODE_PAIR) {
            double x = th[p], y = th[p + 1], sabs = hypot(x, y), q, dq;
            tanh_ratio(sabs, &q, &dq);
            double complex u = CMPLX(x, y);
            lam[j] = w->rho_max * q * u;
            if (dl) {
                double ux = sabs > 0 ? x / sabs : 0.0, uy = sabs > 0 ? y / sabs : 0.0;
                dl[p] = w->rho_max * (q + dq * ux * u);
                dl[p + 1] = w->rho_max * (I * q + dq * uy * u);
            }
            p += 2;
        } else {
            double t = tanh(th[p]);
            lam[j] = w->rho_max * t;
            if (dl) dl[p] = w->rho_max * (1.0 - t * t);
            p += 1;
        }
    }
}

static void poles_to_theta(const vp_ws *w, const cr__modal *m, double *th)
{
    const double smax = 1.0 - 1e-13;
    size_t p = 0;
    for (size_t j = 0; j < w->M; j++) {
        if (w->kind[j] == CR_MODE_PAIR) {
            double s = hypot(m->pole_re[j], m->pole_im[j]) / w->rho_max;
            if (s > smax) s = smax;
            double a = atanh(s), phi = atan2(m->pole_im[j], m->pole_re[j]);
            th[p] = a * cos(phi);
            th[p + 1] = a * sin(phi);
            p += 2;
        } else {
            double s = m->pole_re[j] / w->rho_max;
            if (s > smax) s = smax;
            if (s < -smax) s = -smax;
            th[p] = atanh(s);
            p += 1;
        }
    }
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

/* Columns Re/Im lambda^n and Re/Im n lambda^(n-1) of VP_G pairs
 * (parameter columns pc[t]). Each pair is a serial complex recurrence
 * whose multiply latency dominates the evaluation; running VP_G of them
 * in one loop (fully unrolled, so the state stays in registers) overlaps
 * the chains. The arithmetic per pair is unchanged. */
#define VP_G 4
static void vp_pair_cols(double *A, size_t nr, size_t P, const size_t *pc, const double *lr,
                         const double *li)
{
    double zr[VP_G], zi[VP_G], pr[VP_G], pi[VP_G], ar[VP_G], ai[VP_G];
    double *f0[VP_G], *f1[VP_G], *d0[VP_G], *d1[VP_G];
#pragma GCC unroll 4
    for (size_t t = 0; t < VP_G; t++) {
        zr[t] = 1.0;
        zi[t] = pr[t] = pi[t] = 0.0;
        ar[t] = lr[t];
        ai[t] = li[t];
        f0[t] = A + pc[t] * nr;
        f1[t] = A + (pc[t] + 1) * nr;
        d0[t] = A + (P + pc[t]) * nr;
        d1[t] = A + (P + pc[t] + 1) * nr;
    }
    for (size_t n = 0; n < nr; n++) {
        const double dn = (double)n;
#pragma GCC unroll 4
        for (size_t t = 0; t < VP_G; t++) {
            f0[t][n] = zr[t];
            f1[t][n] = zi[t];
            d0[t][n] = dn * pr[t]; /* n lambda^(n-1) */
            d1[t][n] = dn * pi[t];
            pr[t] = zr[t];
            pi[t] = zi[t];
            double u = zr[t] * ar[t] - zi[t] * ai[t];
            zi[t] = zr[t] * ai[t] + zi[t] * ar[t];
            zr[t] = u;
        }
    }
}

/* One pair's columns (the remainder of the groups above). */
static void vp_pair_col1(double *A, size_t nr, size_t P, size_t p, double lr, double li)
{
    double *restrict f0 = A + p * nr, *restrict f1 = A + (p + 1) * nr;
    double *restrict d0 = A + (P + p) * nr, *restrict d1 = A + (P + p + 1) * nr;
    double zr = 1.0, zi = 0.0, pr = 0.0, pi = 0.0;
    for (size_t n = 0; n < nr; n++) {
        f0[n] = zr;
        f1[n] = zi;
        d0[n] = (double)n * pr; /* n lambda^(n-1) */
        d1[n] = (double)n * pi;
        pr = zr;
        pi = zi;
        double t = zr * lr - zi * li;
        zi = zr * li + zi * lr;
        zr = t;
    }
}

/* Evaluate at poles lam: fills c (unscaled), r, f; with want_jac also
 * H (Gauss-Newton matrix) and g (gradient of f/2) for parameters th. */
static int vp_eval(vp_ws *w, const double *th, int want_jac)
{
    const size_t nr = w->nr, P = w->P, nc = w->nc, L = w->L;
    theta_to_poles(w, th, w->lam, w->dlam);
    /* columns; pairs in groups of VP_G (see vp_pair_cols) */
    size_t p = 0, pc[VP_G], g = 0;
    double glr[VP_G], gli[VP_G];
    for (size_t j = 0; j < w->M; j++) {
        double complex l = w->lam[j];
        if (w->kind[j] == CR_MODE_PAIR) {
            pc[g] = p;
            glr[g] = creal(l);
            gli[g] = cimag(l);
            if (++g == VP_G) {
                vp_pair_cols(w->A, nr, P, pc, glr, gli);
                g = 0;
            }
            w->alpha[p] = 1.0;
            w->mu[p] = l;
            w->alpha[p + 1] = -I;
            w->mu[p + 1] = l;
            p += 2;
        } else {
            double *restrict f0 = w->A + p * nr, *restrict d0 = w->A + (P + p) * nr;
            double z = 1.0, zp = 0.0, lr = creal(l);
            for (size_t n = 0; n < nr; n++) {
                f0[n] = z;
                d0[n] = (double)n * zp; /* n lambda^(n-1) */
                zp = z;
                z *= lr;
            }
            w->alpha[p] = 1.0;
            w->mu[p] = lr;
            p += 1;
        }
    }
    for (size_t t = 0; t < g; t++) vp_pair_col1(w->A, nr, P, pc[t], glr[t], gli[t]);
    /* Gram of [Phi Psi h] (upper triangle) */
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (int)nc, (int)nr, 1.0, w->A, (int)nr,
                0.0, w->G, (int)nc);
    if (w->inf) {
        cr__refine_tail_gram(P, w->alpha, w->mu, nr + 1, w->Grem, P);
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
    LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', (lapack_int)P, 1, w->C11, (lapack_int)P, w->c, (lapack_int)P);
    /* unscale: c = scale_phi * c_s / hs */
    for (size_t i = 0; i < P; i++) w->c[i] = hs > 0.0 ? w->c[i] * w->scale[i] / hs : 0.0;
    const double *hcol = w->A + 2 * P * nr;
    for (int it = 0; it < 3; it++) {
        memcpy(w->r, hcol, nr * sizeof *w->r);
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)nr, (int)P, -1.0, w->A, (int)nr, w->c, 1,
                    1.0, w->r, 1);
        if (it == 2) break;
        cblas_dgemv(CblasColMajor, CblasTrans, (int)nr, (int)P, 1.0, w->A, (int)nr, w->r, 1, 0.0,
                    w->rhs, 1);
        if (w->inf)
            cblas_dsymv(CblasColMajor, CblasUpper, (int)P, -1.0, w->Grem, (int)P, w->c, 1, 1.0,
                        w->rhs, 1);
        for (size_t i = 0; i < P; i++) w->rhs[i] *= w->scale[i];
        LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', (lapack_int)P, 1, w->C11, (lapack_int)P, w->rhs,
                       (lapack_int)P);
        for (size_t i = 0; i < P; i++) w->c[i] += w->rhs[i] * w->scale[i];
    }
    double f = 0.0;
    for (size_t n = 0; n < nr; n++) f += w->r[n] * w->r[n];
    double tail = 0.0;
    if (w->inf) {
        double *tmp = w->rhs;
        cblas_dsymv(CblasColMajor, CblasUpper, (int)P, 1.0, w->Grem, (int)P, w->c, 1, 0.0, tmp, 1);
        tail = cblas_ddot((int)P, w->c, 1, tmp, 1);
        if (tail < 0.0) tail = 0.0;
    }
    w->f = f + tail;
    if (!isfinite(w->f)) return -1;
    (void)L;
    if (!want_jac) return 0;

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
    /* psi_r = Psi^T r */
    double *psir = w->rhs;
    cblas_dgemv(CblasColMajor, CblasTrans, (int)nr, (int)P, 1.0, w->A + P * nr, (int)nr, w->r, 1,
                0.0, psir, 1);
    /* derivative map Mj (rows: Psi columns, cols: parameters), block diag */
    memset(w->Mj, 0, P * P * sizeof *w->Mj);
    p = 0;
    for (size_t j = 0; j < w->M; j++) {
        if (w->kind[j] == CR_MODE_PAIR) {
            /* d/dt Re(gamma lambda^n) = Re(kappa psi), kappa = gamma lambda',
             * psi = n lambda^(n-1), gamma = c_p - i c_{p+1} */
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
    double *T = w->W;
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)P, (int)P, (int)P, 1.0, w->S,
                (int)P, w->Mj, (int)P, 0.0, T, (int)P);
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)P, (int)P, (int)P, 1.0, w->Mj,
                (int)P, T, (int)P, 0.0, w->H, (int)P);
    cblas_dgemv(CblasColMajor, CblasTrans, (int)P, (int)P, -1.0, w->Mj, (int)P, psir, 1, 0.0,
                w->g, 1);
    if (w->inf) {
        /* remainder E = sum_{i >= nr} (sum_a Re(beta_a lambda_a^i))^2:
         * dE/dt = Re(lambda'_a g_a),
         * g_a = beta_a sum_b [beta_b lambda_b S'(lambda_a lambda_b)
         *                     + conj(beta_b lambda_b) S'(lambda_a conj lambda_b)],
         * S(mu) = mu^nr / (1 - mu). */
        const size_t e = nr;
        p = 0;
        size_t pa = 0;
        for (size_t a = 0; a < w->M; a++) {
            int pa2 = w->kind[a] == CR_MODE_PAIR;
            double complex la = w->lam[a];
            double complex ba = pa2 ? CMPLX(w->c[pa], -w->c[pa + 1]) : w->c[pa];
            double complex ga = 0.0;
            size_t pb = 0;
            for (size_t b = 0; b < w->M; b++) {
                int pb2 = w->kind[b] == CR_MODE_PAIR;
                double complex lb = w->lam[b];
                double complex bb = pb2 ? CMPLX(w->c[pb], -w->c[pb + 1]) : w->c[pb];
                double complex m1 = la * lb, m2 = la * conj(lb);
                double complex q1 = 1.0, q2 = 1.0, x1 = m1, x2 = m2;
                for (size_t k = e - 1; k; k >>= 1) { /* mu^(e-1) */
                    if (k & 1u) { q1 *= x1; q2 *= x2; }
                    x1 *= x1;
                    x2 *= x2;
                }
                double complex d1 = q1 * ((double)e * (1.0 - m1) + m1) / ((1.0 - m1) * (1.0 - m1));
                double complex d2 = q2 * ((double)e * (1.0 - m2) + m2) / ((1.0 - m2) * (1.0 - m2));
                ga += bb * lb * d1 + conj(bb * lb) * d2;
                pb += pb2 ? 2 : 1;
            }
            ga *= ba;
            /* g is the gradient of f/2: add dE/(2 dt) */
            w->g[pa] += 0.5 * creal(w->dlam[pa] * ga);
            if (pa2) w->g[pa + 1] += 0.5 * creal(w->dlam[pa + 1] * ga);
            pa += pa2 ? 2 : 1;
        }
    }
    return 0;
}

static void vp_free(vp_ws *w)
{
    free(w->A);
    free(w->G);
    free(w->scale);
    free(w->Grem);
    free(w->C11);
    free(w->c);
    free(w->rhs);
    free(w->r);
    free(w->S);
    free(w->W);
    free(w->alpha);
    free(w->mu);
    free(w->lam);
    free(w->dlam);
    free(w->H);
    free(w->g);
    free(w->Mj);
}

/* Exact squared error of a modal model for the horizon (direct window sum,
 * closed-form tail). */
static double model_err2(const cr__modal *m, const double *h, size_t L, int inf)
{
    double e = (m->d - h[0]) * (m->d - h[0]);
    double *acc = calloc(L, sizeof *acc);
    if (!acc) return NAN;
    /* Modes are accumulated in their order (so the sum is the same), but
     * runs of up to 4 pairs share one loop to overlap their recurrences. */
    for (size_t j = 0; j < m->n;) {
        if (m->kind[j] == CR_MODE_PAIR) {
            size_t G = 0;
            double zr[4], zi[4], lr[4], li[4], rr[4], ri[4];
            while (G < 4 && j + G < m->n && m->kind[j + G] == CR_MODE_PAIR) {
                zr[G] = 1.0;
                zi[G] = 0.0;
                lr[G] = m->pole_re[j + G];
                li[G] = m->pole_im[j + G];
                rr[G] = 2.0 * m->res_re[j + G];
                ri[G] = 2.0 * m->res_im[j + G];
                G++;
            }
            for (size_t k = 1; k < L; k++) {
                double a = acc[k];
                for (size_t t = 0; t < G; t++) {
                    a += rr[t] * zr[t] - ri[t] * zi[t];
                    double u = zr[t] * lr[t] - zi[t] * li[t];
                    zi[t] = zr[t] * li[t] + zi[t] * lr[t];
                    zr[t] = u;
                }
                acc[k] = a;
            }
            j += G;
        } else {
            double z = 1.0, l = m->pole_re[j], r = m->res_re[j];
            for (size_t k = 1; k < L; k++) {
                acc[k] += r * z;
                z *= l;
            }
            j++;
        }
    }
    for (size_t k = 1; k < L; k++) e += (h[k] - acc[k]) * (h[k] - acc[k]);
    free(acc);
    if (inf) e += cr__modal_tail2(m, L);
    return e;
}

/* The last step of both refinements: take the poles lam[0..n), set the
 * residues by the robust least-squares solve, and fall back to best (the
 * input, of squared error e_in) unless that is at least as good. */
static cr_status vp_finish(const double *h, size_t L, cr_horizon horizon, const double complex *lam,
                           size_t n, double e_in, const cr__modal *best, cr__modal *m)
{
    for (size_t j = 0; j < n; j++) {
        m->pole_re[j] = creal(lam[j]);
        m->pole_im[j] = m->kind[j] == CR_MODE_PAIR ? cimag(lam[j]) : 0.0;
    }
    cr_status st = cr__residues_ls(h, L, horizon, m);
    double e_out = st == CR_OK ? model_err2(m, h, L, horizon == CR_HORIZON_INFINITE) : INFINITY;
    if (!(e_out <= e_in)) {
        if (isfinite(e_in)) {
            cr__modal_copy(m, best);
            st = CR_OK;
        } else if (st == CR_OK && !isfinite(e_out)) {
            st = cr__fail(CR_ENOCONV, "varpro: no finite model");
        }
    }
    return st;
}

static cr_status modal_clone(const cr__modal *m, cr__modal *c)
{
    size_t n = m->n ? m->n : 1;
    c->cap = n;
    c->n = m->n;
    c->d = m->d;
    c->kind = malloc(n);
    c->pole_re = malloc(n * sizeof(double));
    c->pole_im = malloc(n * sizeof(double));
    c->res_re = malloc(n * sizeof(double));
    c->res_im = malloc(n * sizeof(double));
    if (!c->kind || !c->pole_re || !c->pole_im || !c->res_re || !c->res_im) return CR_ENOMEM;
    memcpy(c->kind, m->kind, m->n);
    memcpy(c->pole_re, m->pole_re, m->n * sizeof(double));
    memcpy(c->pole_im, m->pole_im, m->n * sizeof(double));
    memcpy(c->res_re, m->res_re, m->n * sizeof(double));
    memcpy(c->res_im, m->res_im, m->n * sizeof(double));
    return CR_OK;
}
static void modal_release(cr__modal *c)
{
    free(c->kind);
    free(c->pole_re);
    free(c->pole_im);
    free(c->res_re);
    free(c->res_im);
}
/* Maximum LM iterations; the relative-improvement test usually stops
 * much earlier. Overridable for studies through CONVREC_VARPRO_MAXIT. */
#define VP_MAXIT 30

/* Every pole lam[j] within tol of a distinct pole of ref of the same kind
 * (greedy nearest match; orders are small). */
static int poles_match(const vp_ws *w, const double complex *lam, const cr__modal *ref, double tol)
{
    if (ref->n != w->M || ref->n > 64) return 0;
    unsigned char used[64] = {0};
    for (size_t j = 0; j < w->M; j++) {
        size_t kbest = SIZE_MAX;
        double dbest = tol;
        for (size_t k = 0; k < ref->n; k++) {
            if (used[k] || ref->kind[k] != w->kind[j]) continue;
            double d = cabs(lam[j] - CMPLX(ref->pole_re[k], ref->pole_im[k]));
            if (d <= dbest) { dbest = d; kbest = k; }
        }
        if (kbest == SIZE_MAX) return 0;
        used[kbest] = 1;
    }
    return 1;
}

static cr_status refine_core(const double *h, size_t L, cr_horizon horizon, double rho_max,
                             int maxit_in, const cr__modal *ref, double e_ref, cr__modal *m);

cr_status cr__refine_varpro(const double *h, size_t L, cr_horizon horizon,
                            double margin, cr__modal *m)
{
    return cr__refine_varpro_vs(h, L, horizon, margin, NULL, 0.0, m);
}

cr_status cr__refine_varpro_vs(const double *h, size_t L, cr_horizon horizon, double margin,
                               const cr__modal *ref, double e_ref, cr__modal *m)
{
    if (!(margin >= 0.0 && margin < 1.0))
        return cr__fail(CR_EINVAL, "varpro: margin %g outside [0, 1)", margin);
    if (ref) {
        cr_status st = cr__refine_check_modal(ref);
        if (st != CR_OK) return st;
    }
    return refine_core(h, L, horizon, margin > 0.0 ? 1.0 - margin : 1.0 - 1e-15, 0, ref, e_ref,
                       m);
}

cr_status cr__refine_varpro_ex(const double *h, size_t L, cr_horizon horizon, double rho_max,
                               int maxit_in, cr__modal *m)
{
    return refine_core(h, L, horizon, rho_max, maxit_in, NULL, 0.0, m);
}

static cr_status refine_core(const double *h, size_t L, cr_horizon horizon, double rho_max,
                             int maxit_in, const cr__modal *ref, double e_ref, cr__modal *m)
{
    if (!h) return cr__fail(CR_EINVAL, "varpro: kernel is NULL");
    if (L == 0) return cr__fail(CR_EINVAL, "varpro: kernel length is 0");
    if (horizon != CR_HORIZON_WINDOW && horizon != CR_HORIZON_INFINITE)
        return cr__fail(CR_EINVAL, "varpro: invalid horizon %d", (int)horizon);
    if (!(rho_max > 0.0 && rho_max < (horizon == CR_HORIZON_INFINITE ? 1.0 : 2.0)))
        return cr__fail(CR_EINVAL, "varpro: pole bound %g outside (0, %g)", rho_max,
                        horizon == CR_HORIZON_INFINITE ? 1.0 : 2.0);
    cr_status st = cr__refine_check_modal(m);
    if (st != CR_OK) return st;
    for (size_t k = 0; k < L; k++)
        if (!isfinite(h[k])) return cr__fail(CR_ENONFINITE, "varpro: kernel has NaN/Inf at %zu", k);
    const int inf = horizon == CR_HORIZON_INFINITE;
    size_t P = cr__refine_ncols(m);

    /* The input's own error: the result must not be worse. An input with
     * poles outside the margin is not acceptable as the fallback, so its
     * error counts as infinite. */
    double e_in = model_err2(m, h, L, inf);
    for (size_t j = 0; j < m->n; j++)
        if (hypot(m->pole_re[j], m->kind[j] == CR_MODE_PAIR ? m->pole_im[j] : 0.0) > rho_max)
            e_in = INFINITY;
    if (isnan(e_in)) return cr__fail(CR_ENOMEM, "varpro: out of memory");
    if (P == 0 || L < 3) {
        cr__modal save;
        if (modal_clone(m, &save) != CR_OK) {
            modal_release(&save);
            return cr__fail(CR_ENOMEM, "varpro: out of memory");
        }
        st = cr__residues_ls(h, L, horizon, m);
        if (st == CR_OK && !(model_err2(m, h, L, inf) <= e_in)) cr__modal_copy(m, &save);
        if (st != CR_OK && isfinite(e_in)) { cr__modal_copy(m, &save); st = CR_OK; }
        modal_release(&save);
        return st;
    }

    vp_ws w;
    memset(&w, 0, sizeof w);
    w.L = L;
    w.inf = inf;
    w.nr = inf ? 2 * L - 1 : L - 1;
    w.P = P;
    w.nc = 2 * P + 1;
    w.M = m->n;
    w.kind = m->kind;
    w.rho_max = rho_max;
    size_t nA;
    if (!cr__mul_ok(w.nr, w.nc, &nA) || nA > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "varpro: problem too large");
    w.A = malloc(nA * sizeof *w.A);
    w.G = malloc(w.nc * w.nc * sizeof *w.G);
    w.scale = malloc(w.nc * sizeof *w.scale);
    w.Grem = calloc(P * P, sizeof *w.Grem);
    w.C11 = malloc(P * P * sizeof *w.C11);
    w.c = malloc(P * sizeof *w.c);
    w.rhs = malloc(P * sizeof *w.rhs);
    w.r = malloc(w.nr * sizeof *w.r);
    w.S = malloc(P * P * sizeof *w.S);
    w.W = malloc(P * P * sizeof *w.W);
    w.alpha = malloc(P * sizeof *w.alpha);
    w.mu = malloc(P * sizeof *w.mu);
    w.lam = malloc(w.M * sizeof *w.lam);
    w.dlam = malloc(P * sizeof *w.dlam);
    w.H = malloc(P * P * sizeof *w.H);
    w.g = malloc(P * sizeof *w.g);
    w.Mj = malloc(P * P * sizeof *w.Mj);
    double *th = malloc(P * sizeof *th), *th_new = malloc(P * sizeof *th_new);
    double *Hs = malloc(P * P * sizeof *Hs), *step = malloc(P * sizeof *step);
    double *gsave = malloc(P * sizeof *gsave), *Hsave = malloc(P * P * sizeof *Hsave);
    double *dscale = calloc(P, sizeof *dscale);
    cr__modal best = {0};
    st = modal_clone(m, &best);
    if (st != CR_OK || !w.A || !w.G || !w.scale || !w.Grem || !w.C11 || !w.c || !w.rhs || !w.r ||
        !w.S || !w.W || !w.alpha || !w.mu || !w.lam || !w.dlam || !w.H || !w.g || !w.Mj || !th || !th_new ||
        !Hs || !step || !gsave || !Hsave || !dscale) {
        st = cr__fail(CR_ENOMEM, "varpro: out of memory");
        goto done;
    }
    /* explicit rows: h[1..L-1], then zeros (infinite) */
    memcpy(w.A + 2 * P * w.nr, h + 1, (L - 1) * sizeof *h);
    for (size_t n = L - 1; n < w.nr; n++) w.A[2 * P * w.nr + n] = 0.0;

    poles_to_theta(&w, m, th);
    int maxit = maxit_in > 0 ? maxit_in : VP_MAXIT;
    /* same minimum: poles within 0.15 Rayleigh widths (2 pi / L), which
     * the window cannot tell apart */
    const double match_tol = fmin(1e-3, 0.15 * 2.0 * 3.141592653589793 / (double)L);
    double hn2 = h[0] * h[0];
    for (size_t k = 1; k < L; k++) hn2 += h[k] * h[k];
    const double ftiny = 1e-30 * (hn2 > 0 ? hn2 : 1.0);

    if (vp_eval(&w, th, 1) != 0) {
        st = CR_OK; /* cannot even evaluate: keep input (refit residues below) */
        maxit = 0;
    }
    double f = w.f, lm = 1e-3, nu = 2.0;
    memcpy(gsave, w.g, P * sizeof *gsave);
    memcpy(Hsave, w.H, P * P * sizeof *Hsave);
    int rejects = 0;
    for (int it = 0; it < maxit && f > ftiny; it++) {
        /* Marquardt scaling with More's running maximum: a direction whose
         * curvature vanishes (a pair's imaginary part near the real axis)
         * keeps the damping it had, so it cannot absorb huge steps that
         * stall every other direction. */
        double dmax = 0.0;
        for (size_t i = 0; i < P; i++) {
            dscale[i] = fmax(dscale[i], Hsave[i + i * P]);
            dmax = fmax(dmax, dscale[i]);
        }
        if (!(dmax > 0.0)) break;
        for (size_t i = 0; i < P * P; i++) Hs[i] = Hsave[i];
        for (size_t i = 0; i < P; i++) {
            double di = fmax(dscale[i], 1e-10 * dmax);
            Hs[i + i * P] += lm * di;
            step[i] = -gsave[i];
        }
        if (LAPACKE_dposv(LAPACK_COL_MAJOR, 'U', (lapack_int)P, 1, Hs, (lapack_int)P, step,
                          (lapack_int)P) != 0) {
            lm *= 10.0;
            if (++rejects > 12) break;
            continue;
        }
        /* predicted decrease of f/2 by the quadratic model */
        double pred = 0.0;
        for (size_t i = 0; i < P; i++) {
            double hs = 0.0;
            for (size_t q = 0; q < P; q++) hs += Hsave[i + q * P] * step[q];
            pred -= step[i] * gsave[i] + 0.5 * step[i] * hs;
        }
        for (size_t i = 0; i < P; i++) th_new[i] = th[i] + step[i];
        int ok = vp_eval(&w, th_new, 1) == 0;
        double fn = ok ? w.f : INFINITY;
        if (ok && fn < f) {
            double rho = pred > 0.0 ? 0.5 * (f - fn) / pred : 1.0;
            double rel = (f - fn) / f;
            memcpy(th, th_new, P * sizeof *th);
            f = fn;
            memcpy(gsave, w.g, P * sizeof *gsave);
            memcpy(Hsave, w.H, P * P * sizeof *Hsave);
            double t = 2.0 * rho - 1.0;
            lm *= fmax(1.0 / 3.0, 1.0 - t * t * t);
            nu = 2.0;
            rejects = 0;
            if (rel < 1e-9) break; /* converged for l2 purposes */
            if (ref && f >= e_ref && poles_match(&w, w.lam, ref, match_tol)) break;
        } else {
            lm *= nu;
            nu *= 2.0;
            if (++rejects > 12) break;
        }
    }
    /* final: poles from theta, residues by the robust SVD solve */
    theta_to_poles(&w, th, w.lam, NULL);
    st = vp_finish(h, L, horizon, w.lam, w.M, e_in, &best, m);
done:
    vp_free(&w);
    free(th);
    free(th_new);
    free(Hs);
    free(step);
    free(gsave);
    free(Hsave);
    free(dscale);
    modal_release(&best);
    return st;
}

/* ---- Precise variant (window horizon) ---------------------------------
 * The Gram-based evaluation above squares the condition number of
 * [Phi Psi]. When many poles crowd near 1 with angles about one Rayleigh
 * width 2 pi / L apart (trained S4D kernels), Phi itself is well
 * conditioned but the derivative columns Psi nearly lie in span(Phi), the
 * Gauss-Newton matrix has condition ~1e10, and the Gram path takes tiny
 * steps or fails outright. Here everything goes through Householder QR:
 * Phi = Q R gives the coefficients and the projection, Kaufman's
 * Jacobian J = -P_perp D (D = d(Phi c)/d theta) is formed explicitly, and
 * each LM step comes from the SVD of the triangular factor of J, so any
 * damping costs only O(P^2). About 3x the cost of a Gram iteration. */

typedef struct vq_ws {
    vp_ws v;                 /* parametrisation only: M, kind, rho_max */
    size_t nr, P;
    double *Q;               /* nr x P: scaled Phi, then its QR factors */
    double *tau;             /* P */
    double *colsc;           /* P */
    double *qh;              /* nr: Q^T h */
    double *c;               /* P unscaled coefficients */
    double *r;               /* nr residual */
    double *J;               /* nr x P Jacobian (then its QR factors) */
    double *tauJ;            /* P */
    double *qr;              /* nr: Q_J^T r */
    double *RJ, *U, *VT, *sv;/* P x P, P x P, P x P, P */
    double complex *lam, *dlam;
    double f;
    int lifted;              /* tiny pivots of R were lifted */
} vq_ws;

/* f, c, r at th; with want_jac also J. Returns 0, or -1 when the design
 * is numerically singular (coinciding poles) or not finite. */
static int vq_eval(vq_ws *w, const double *h1, const double *th, int want_jac)
{
    const size_t nr = w->nr, P = w->P;
    theta_to_poles(&w->v, th, w->lam, w->dlam);
    size_t p = 0;
    for (size_t j = 0; j < w->v.M; j++) {
        double lr = creal(w->lam[j]), li = cimag(w->lam[j]);
        if (w->v.kind[j] == CR_MODE_PAIR) {
            double *restrict f0 = w->Q + p * nr, *restrict f1 = w->Q + (p + 1) * nr;
            double zr = 1.0, zi = 0.0;
            for (size_t n = 0; n < nr; n++) {
                f0[n] = zr;
                f1[n] = zi;
                double t = zr * lr - zi * li;
                zi = zr * li + zi * lr;
                zr = t;
            }
            p += 2;
        } else {
            double *restrict f0 = w->Q + p * nr, z = 1.0;
            for (size_t n = 0; n < nr; n++) {
                f0[n] = z;
                z *= lr;
            }
            p += 1;
        }
    }
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
    memcpy(w->qh, h1, nr * sizeof *h1);
    if (LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'T', (lapack_int)nr, 1, (lapack_int)P, w->Q,
                       (lapack_int)nr, w->tau, w->qh, (lapack_int)nr) != 0)
        return -1;
    memcpy(w->c, w->qh, P * sizeof *w->c);
    cblas_dtrsv(CblasColMajor, CblasUpper, CblasNoTrans, CblasNonUnit, (int)P, w->Q, (int)nr,
                w->c, 1);
    double f = 0.0;
    for (size_t n = P; n < nr; n++) f += w->qh[n] * w->qh[n];
    w->f = f;
    for (size_t q = 0; q < P; q++) w->c[q] *= w->colsc[q];
    /* residual r = Q [0; qh2] (accurate even when c is large) */
    memset(w->r, 0, P * sizeof *w->r);
    memcpy(w->r + P, w->qh + P, (nr - P) * sizeof *w->r);
    if (LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)nr, 1, (lapack_int)P, w->Q,
                       (lapack_int)nr, w->tau, w->r, (lapack_int)nr) != 0)
        return -1;
    if (!isfinite(w->f)) return -1;
    for (size_t q = 0; q < P; q++)
        if (!isfinite(w->c[q])) return -1;
    if (!want_jac) return 0;
    /* D[:, t] = d(Phi c)/d theta_t: for a pair, Re(kappa_t n lambda^(n-1)),
     * kappa_t = gamma dlambda/dtheta_t, gamma = c_p - i c_{p+1}. */
    p = 0;
    for (size_t j = 0; j < w->v.M; j++) {
        double lr = creal(w->lam[j]), li = cimag(w->lam[j]);
        if (w->v.kind[j] == CR_MODE_PAIR) {
            double complex gam = CMPLX(w->c[p], -w->c[p + 1]);
            double complex k0 = gam * w->dlam[p], k1 = gam * w->dlam[p + 1];
            double a0 = creal(k0), b0 = cimag(k0), a1 = creal(k1), b1 = cimag(k1);
            double *restrict d0 = w->J + p * nr, *restrict d1 = w->J + (p + 1) * nr;
            double zr = 1.0, zi = 0.0; /* lambda^(n-1) */
            double sr = 0.0, si = 0.0;  /* S_j = sum_n r_n n lambda^(n-1) */
            const double *restrict rr = w->r;
            d0[0] = d1[0] = 0.0;
            for (size_t n = 1; n < nr; n++) {
                double pr = (double)n * zr, pi = (double)n * zi;
                d0[n] = a0 * pr - b0 * pi;
                d1[n] = a1 * pr - b1 * pi;
                sr += rr[n] * pr;
                si += rr[n] * pi;
                double t = zr * lr - zi * li;
                zi = zr * li + zi * lr;
                zr = t;
            }
            /* (D_t^T r) for t = p, p+1: columns p, p+1 of Phi depend on
             * theta_t as Re / Im of lambda^n */
            double complex S = CMPLX(sr, si), e0 = S * w->dlam[p], e1 = S * w->dlam[p + 1];
            w->RJ[p + p * P] = creal(e0);
            w->RJ[p + 1 + p * P] = cimag(e0);
            w->RJ[p + (p + 1) * P] = creal(e1);
            w->RJ[p + 1 + (p + 1) * P] = cimag(e1);
            p += 2;
        } else {
            double k0 = w->c[p] * creal(w->dlam[p]), z = 1.0;
            double *restrict d0 = w->J + p * nr;
            double sr = 0.0;
            d0[0] = 0.0;
            for (size_t n = 1; n < nr; n++) {
                d0[n] = k0 * (double)n * z;
                sr += w->r[n] * (double)n * z;
                z *= lr;
            }
            w->RJ[p + p * P] = sr * creal(w->dlam[p]);
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
         * columns only): RJ holds it, zero elsewhere */
        p = 0;
        for (size_t j = 0; j < w->v.M; j++) {
            size_t b = w->v.kind[j] == CR_MODE_PAIR ? 2 : 1;
            for (size_t t = p; t < p + b; t++) {
                double *col = w->J + t * nr;
                memset(col, 0, P * sizeof *col);
                for (size_t i = p; i < p + b; i++) col[i] = w->colsc[i] * w->RJ[i + t * P];
                cblas_dtrsv(CblasColMajor, CblasUpper, CblasTrans, CblasNonUnit, (int)P, w->Q,
                            (int)nr, col, 1);
            }
            p += b;
        }
    }
    if (LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)nr, (lapack_int)P, (lapack_int)P,
                       w->Q, (lapack_int)nr, w->tau, w->J, (lapack_int)nr) != 0)
        return -1;
    for (size_t i = 0; i < nr * P; i++) w->J[i] = -w->J[i];
    for (size_t i = 0; i < nr * P; i++)
        if (!isfinite(w->J[i])) return -1;
    return 0;
}

static void vq_free(vq_ws *w)
{
    free(w->Q); free(w->tau); free(w->colsc); free(w->qh); free(w->c); free(w->r);
    free(w->J); free(w->tauJ); free(w->qr); free(w->RJ); free(w->U); free(w->VT); free(w->sv);
    free(w->lam); free(w->dlam);
}

cr_status cr__refine_varpro_precise(const double *h, size_t L, double rho_max, int maxit,
                                    double f_stop, cr__modal *m)
{
    if (!h) return cr__fail(CR_EINVAL, "varpro: kernel is NULL");
    if (!(rho_max > 0.0 && rho_max < 2.0))
        return cr__fail(CR_EINVAL, "varpro: pole bound %g outside (0, 2)", rho_max);
    cr_status st = cr__refine_check_modal(m);
    if (st != CR_OK) return st;
    size_t P = cr__refine_ncols(m);
    if (P == 0 || L < 3 || L - 1 < 2 * P) /* too few rows: the Gram path handles it */
        return cr__refine_varpro_ex(h, L, CR_HORIZON_WINDOW, rho_max, maxit, m);
    for (size_t k = 0; k < L; k++)
        if (!isfinite(h[k])) return cr__fail(CR_ENONFINITE, "varpro: kernel has NaN/Inf at %zu", k);
    double e_in = model_err2(m, h, L, 0);
    for (size_t j = 0; j < m->n; j++)
        if (hypot(m->pole_re[j], m->kind[j] == CR_MODE_PAIR ? m->pole_im[j] : 0.0) > rho_max)
            e_in = INFINITY;
    if (isnan(e_in)) return cr__fail(CR_ENOMEM, "varpro: out of memory");

    vq_ws w;
    memset(&w, 0, sizeof w);
    w.nr = L - 1;
    w.P = P;
    w.v.M = m->n;
    w.v.kind = m->kind;
    w.v.rho_max = rho_max;
    size_t nA;
    if (!cr__mul_ok(w.nr, P, &nA) || nA > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "varpro: problem too large");
    w.Q = malloc(nA * sizeof *w.Q);
    w.J = malloc(nA * sizeof *w.J);
    w.tau = malloc(P * sizeof *w.tau);
    w.tauJ = malloc(P * sizeof *w.tauJ);
    w.colsc = malloc(P * sizeof *w.colsc);
    w.qh = malloc(w.nr * sizeof *w.qh);
    w.r = malloc(w.nr * sizeof *w.r);
    w.qr = malloc(w.nr * sizeof *w.qr);
    w.c = malloc(P * sizeof *w.c);
    w.RJ = malloc(P * P * sizeof *w.RJ);
    w.U = malloc(P * P * sizeof *w.U);
    w.VT = malloc(P * P * sizeof *w.VT);
    w.sv = malloc(P * sizeof *w.sv);
    w.lam = malloc(m->n * sizeof *w.lam);
    w.dlam = malloc(P * sizeof *w.dlam);
    double *th = malloc(P * sizeof *th), *th_new = malloc(P * sizeof *th_new);
    double *dsc = calloc(P, sizeof *dsc), *ut = malloc(P * sizeof *ut);
    double *step = malloc(P * sizeof *step), *qr_keep = malloc(P * sizeof *qr_keep);
    double *sv_keep = malloc(P * sizeof *sv_keep), *VT_keep = malloc(P * P * sizeof *VT_keep);
    cr__modal best = {0};
    st = modal_clone(m, &best);
    if (st != CR_OK || !w.Q || !w.J || !w.tau || !w.tauJ || !w.colsc || !w.qh || !w.r || !w.qr ||
        !w.c || !w.RJ || !w.U || !w.VT || !w.sv || !w.lam || !w.dlam || !th || !th_new || !dsc ||
        !ut || !step || !qr_keep || !sv_keep || !VT_keep) {
        st = cr__fail(CR_ENOMEM, "varpro: out of memory");
        goto done;
    }
    poles_to_theta(&w.v, m, th);
    const double *h1 = h + 1;
    double hn2 = 0.0;
    for (size_t k = 1; k < L; k++) hn2 += h[k] * h[k];
    const double ftiny = fmax(f_stop, 1e-30 * (hn2 > 0 ? hn2 : 1.0));
    if (maxit <= 0) maxit = VP_MAXIT;
    int have = vq_eval(&w, h1, th, 1) == 0;
    double f = have ? w.f : INFINITY, lm = -1.0, nu = 2.0;
    int rejects = 0, slow = 0, fresh = 1;
    for (int it = 0; have && it < maxit && f > ftiny; it++) {
        if (fresh) {
            /* More's scaling (running max of column norms), then
             * J~ = J diag(1/d) = Q_J R_J, R_J = U S V^T */
            for (size_t q = 0; q < P; q++) {
                double s = cblas_dnrm2((int)w.nr, w.J + q * w.nr, 1);
                dsc[q] = fmax(dsc[q], s);
            }
            double dm = 0.0;
            for (size_t q = 0; q < P; q++) dm = fmax(dm, dsc[q]);
            if (!(dm > 0.0)) break;
            for (size_t q = 0; q < P; q++) {
                double d = fmax(dsc[q], 1e-12 * dm);
                cblas_dscal((int)w.nr, 1.0 / d, w.J + q * w.nr, 1);
                ut[q] = d; /* the scaling of this factorisation */
            }
            if (LAPACKE_dgeqrf(LAPACK_COL_MAJOR, (lapack_int)w.nr, (lapack_int)P, w.J,
                               (lapack_int)w.nr, w.tauJ) != 0)
                break;
            memcpy(w.qr, w.r, w.nr * sizeof *w.qr);
            if (LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'T', (lapack_int)w.nr, 1, (lapack_int)P, w.J,
                               (lapack_int)w.nr, w.tauJ, w.qr, (lapack_int)w.nr) != 0)
                break;
            memset(w.RJ, 0, P * P * sizeof *w.RJ);
            for (size_t q = 0; q < P; q++)
                for (size_t i = 0; i <= q; i++) w.RJ[i + q * P] = w.J[i + q * w.nr];
            if (LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'A', (lapack_int)P, (lapack_int)P, w.RJ,
                               (lapack_int)P, w.sv, w.U, (lapack_int)P, w.VT, (lapack_int)P) != 0)
                break;
            /* u = U^T (Q_J^T r)[0:P] */
            cblas_dgemv(CblasColMajor, CblasTrans, (int)P, (int)P, 1.0, w.U, (int)P, w.qr, 1, 0.0,
                        qr_keep, 1);
            memcpy(sv_keep, w.sv, P * sizeof *sv_keep);
            memcpy(VT_keep, w.VT, P * P * sizeof *VT_keep);
            if (lm < 0.0) lm = 1e-3 * sv_keep[0] * sv_keep[0];
            fresh = 0;
        }
        /* s~ = -V diag(s/(s^2+lm)) u, s = s~ / d; predicted decrease of f */
        double pred = 0.0;
        for (size_t i = 0; i < P; i++) {
            double s2 = sv_keep[i] * sv_keep[i], fct = lm / (s2 + lm);
            pred += qr_keep[i] * qr_keep[i] * (1.0 - fct * fct);
            w.sv[i] = sv_keep[i] > 0.0 ? -qr_keep[i] * sv_keep[i] / (s2 + lm) : 0.0;
        }
        cblas_dgemv(CblasColMajor, CblasTrans, (int)P, (int)P, 1.0, VT_keep, (int)P, w.sv, 1, 0.0,
                    step, 1);
        for (size_t q = 0; q < P; q++) th_new[q] = th[q] + step[q] / ut[q];
        int ok = vq_eval(&w, h1, th_new, 1) == 0;
        double fn = ok ? w.f : INFINITY;
        if (ok && fn < f) {
            double rho = pred > 0.0 ? (f - fn) / pred : 1.0;
            double rel = (f - fn) / f;
            memcpy(th, th_new, P * sizeof *th);
            f = fn;
            double t = 2.0 * rho - 1.0;
            lm *= fmax(1.0 / 3.0, 1.0 - t * t * t);
            nu = 2.0;
            rejects = 0;
            fresh = 1;
            slow = rel < 1e-6 ? slow + 1 : 0;
            if (slow >= 5) break;
        } else {
            lm *= nu;
            nu *= 2.0;
            if (++rejects > 20) break;
            /* the kept factorisation (sv_keep, VT_keep, qr_keep, ut)
             * still describes th: only the damping changes */
        }
    }
    /* final: poles from theta, residues by the robust SVD solve */
    theta_to_poles(&w.v, th, w.lam, NULL);
    st = vp_finish(h, L, CR_HORIZON_WINDOW, w.lam, m->n, e_in, &best, m);
done:
    vq_free(&w);
    free(th); free(th_new); free(dsc); free(ut); free(step); free(qr_keep); free(sv_keep);
    free(VT_keep);
    modal_release(&best);
    return st;
}
