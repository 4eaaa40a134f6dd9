/* The damped least-squares driver (fit.h "The damped least-squares
 * driver"): Levenberg-Marquardt with More's scaling and Nielsen's damping
 * update, shared by every refinement in the fit layer.
 *
 * In scaled variables t = D theta (D = diag(d), d_q the running maximum of
 * the curvature sqrt(H_qq) of parameter q, floored at floor * max d), the
 * Gauss-Newton model of f = ||r||^2 around theta is
 *   f(theta + s) ~ f + 2 g~^T t + t^T H~ t,  H~ = D^-1 H D^-1, g~ = D^-1 g,
 * and a damped step is t = -(H~ + lambda I)^-1 g~, with the predicted
 * decrease -(2 g~^T t + t^T H~ t). In the normal form each trial solves by
 * Cholesky (P is small); in the factored form R D^-1 = U S V^T is
 * decomposed once per accepted point (H~ = V S^2 V^T, V^T g~ = S U^T b
 * without forming H, which keeps the QR evaluation's accuracy), so that
 *   t = -V diag(1 / (e + lambda)) c,  e = S^2, c = V^T g~,
 *   predicted decrease = sum_i c_i^2 (e_i + 2 lambda) / (e_i + lambda)^2,
 * and every retry with another lambda costs O(P^2). Nielsen's update:
 * lambda *= max(1/3, 1 - (2 rho - 1)^3) on acceptance (rho = actual /
 * predicted decrease), lambda *= nu, nu *= 2 on rejection. The running
 * maximum keeps the damping a direction once had when its curvature
 * vanishes (a pair's imaginary part near the real axis), so it cannot
 * absorb huge steps that stall every other direction. */
#include "fit/fit.h"

/* accepted steps between the progress checks of an f_goal, and steps
 * before the first (a refinement from a poor start is slow at first) */
#define LM_WINDOW 25
#define LM_PATIENCE 100

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cr_status cr__lm(const cr__lm_problem *pb, const cr__lm_opts *o, double *theta,
                 cr__lm_result *res)
{
    const size_t P = pb->P;
    res->f = INFINITY;
    res->iter = res->evals = 0;
    if (P == 0) {
        double f;
        if (pb->eval(pb->ctx, theta, 0, &f, NULL, NULL) != 0) return CR_ENOCONV;
        res->f = f;
        res->evals = 1;
        return CR_OK;
    }
    /* one block: A, V, U (P x P); b, d, dn, e, c, step, tnew (P) */
    double *blk = malloc((3 * P * P + 7 * P) * sizeof *blk);
    if (!blk) return cr__fail(CR_ENOMEM, "refinement: out of memory (%zu parameters)", P);
    double *A = blk, *V = A + P * P, *U = V + P * P, *b = U + P * P, *d = b + P, *dn = d + P;
    double *e = dn + P;
    double *c = e + P, *step = c + P, *tnew = step + P;
    memset(d, 0, P * sizeof *d);

    double f;
    res->evals = 1;
    if (pb->eval(pb->ctx, theta, 1, &f, A, b) != 0 || !isfinite(f)) {
        free(blk);
        return CR_ENOCONV;
    }
    double lambda = 1e-3, nu = 2.0, f_window = f;
    int fresh = 1, rejects = 0, stall = 0;
    for (int it = 0; it < o->maxit && f > o->f_stop; it++) {
        if (fresh) {
            /* curvature of each parameter: sqrt(H_qq) = ||column q of J|| */
            double dmax = 0.0;
            for (size_t q = 0; q < P; q++) {
                double s = 0.0;
                if (pb->factored)
                    for (size_t i = 0; i <= q; i++) s += A[i + q * P] * A[i + q * P];
                else
                    s = A[q + q * P] > 0.0 ? A[q + q * P] : 0.0;
                d[q] = fmax(d[q], sqrt(s));
                dmax = fmax(dmax, d[q]);
            }
            if (!(dmax > 0.0) || !isfinite(dmax)) break;
            for (size_t q = 0; q < P; q++) dn[q] = fmax(d[q], o->floor * dmax);
            lapack_int info;
            if (pb->factored) {
                /* R D^-1 = U S V^T; e = S^2, c = V^T g~ = S U^T b */
                for (size_t q = 0; q < P; q++)
                    for (size_t i = 0; i < P; i++)
                        A[i + q * P] = i <= q ? A[i + q * P] / dn[q] : 0.0;
                info = cr__svd('A', (lapack_int)P, (lapack_int)P, A, (lapack_int)P, e, U, (lapack_int)P,
                               V, (lapack_int)P);
                if (info == 0) {
                    /* V holds V^T: transpose it; c = S (U^T b) */
                    for (size_t q = 0; q < P; q++)
                        for (size_t i = q + 1; i < P; i++) {
                            double t = V[i + q * P];
                            V[i + q * P] = V[q + i * P];
                            V[q + i * P] = t;
                        }
                    cblas_dgemv(CblasColMajor, CblasTrans, (int)P, (int)P, 1.0, U, (int)P, b, 1,
                                0.0, c, 1);
                    for (size_t i = 0; i < P; i++) {
                        c[i] *= e[i];
                        e[i] *= e[i];
                    }
                }
            } else {
                /* V = H~ (upper), c = g~: each trial solves (H~ + lambda I) t = -g~
                 * by Cholesky, cheaper for the small P of these problems than
                 * one eigen-decomposition per point */
                for (size_t q = 0; q < P; q++) {
                    for (size_t i = 0; i <= q; i++) V[i + q * P] = A[i + q * P] / (dn[i] * dn[q]);
                    c[q] = b[q] / dn[q];
                }
                info = 0;
            }
            if (info != 0) break;
            fresh = 0;
        }
        double pred = 0.0;
        if (pb->factored) {
            /* t = -V diag(1 / (e + lambda)) c */
            for (size_t i = 0; i < P; i++) {
                double den = e[i] + lambda;
                pred += c[i] * c[i] * (e[i] + 2.0 * lambda) / (den * den);
                tnew[i] = -c[i] / den;
            }
            cblas_dgemv(CblasColMajor, CblasNoTrans, (int)P, (int)P, 1.0, V, (int)P, tnew, 1, 0.0,
                        step, 1);
        } else {
            for (size_t q = 0; q < P; q++) {
                for (size_t i = 0; i <= q; i++) U[i + q * P] = V[i + q * P];
                U[q + q * P] += lambda;
                step[q] = -c[q];
            }
            if (LAPACKE_dposv(LAPACK_COL_MAJOR, 'U', (lapack_int)P, 1, U, (lapack_int)P, step,
                              (lapack_int)P) != 0) {
                lambda *= nu; /* not positive definite at this damping */
                nu *= 2.0;
                if (++rejects > o->max_rejects) break;
                continue;
            }
            /* decrease of the model: -(2 g~^T t + t^T H~ t) */
            cblas_dsymv(CblasColMajor, CblasUpper, (int)P, 1.0, V, (int)P, step, 1, 0.0, tnew, 1);
            for (size_t i = 0; i < P; i++) pred -= step[i] * (2.0 * c[i] + tnew[i]);
        }
        for (size_t q = 0; q < P; q++) tnew[q] = theta[q] + step[q] / dn[q];
        double fn;
        res->evals++;
        int ok = pb->eval(pb->ctx, tnew, 1, &fn, A, b) == 0 && isfinite(fn);
        if (ok && fn < f) {
            double rho = pred > 0.0 ? (f - fn) / pred : 1.0;
            double rel = (f - fn) / f;
            memcpy(theta, tnew, P * sizeof *theta);
            f = fn;
            res->iter++;
            double t = 2.0 * rho - 1.0;
            lambda *= fmax(1.0 / 3.0, 1.0 - t * t * t);
            nu = 2.0;
            rejects = 0;
            fresh = 1;
            stall = rel < o->rtol ? stall + 1 : 0;
            if (pb->accepted && pb->accepted(pb->ctx, theta, f)) break;
            if (stall >= o->nstall) break;
            if (o->f_goal > 0.0 && res->iter % LM_WINDOW == 0 && res->iter >= LM_PATIENCE) {
                /* out of reach: the last window's rate, continued (f_window
                 * is the f of the previous check) */
                double q = f / f_window, left = (double)(o->maxit - it - 1) / LM_WINDOW;
                if (f > o->f_goal && (!(q < 1.0) || f * pow(q, left) > 4.0 * o->f_goal)) break;
                f_window = f;
            }
        } else {
            /* A and b now describe the rejected point; the kept
             * decomposition (V, e, c, dn) still describes theta */
            lambda *= nu;
            nu *= 2.0;
            if (++rejects > o->max_rejects) break;
        }
    }
    res->f = f;
    free(blk);
    return CR_OK;
}
