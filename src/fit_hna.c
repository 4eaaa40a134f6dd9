/* Hankel-norm fit for the infinite horizon: aim at an H-inf error near
 * sigma_{N+1} (AAK bound) rather than the l2 optimum.
 *
 * 1. Starts: exact balanced truncation (its own residues, the certificate
 *    model), and the stable part of Glover's optimal Hankel-norm
 *    approximant (fit_hna_glover.c) with the feedthrough d that minimises
 *    its H-inf error. Glover's stable part alone is not near sigma_{N+1}
 *    for FIR kernels whose Hankel singular values decay slowly (the anti-
 *    causal part it drops is large: measured 1.2-1.6 sigma_{N+1}), but its
 *    poles are a good start.
 * 2. From the better start, minimise the L_p norm of the error on the
 *    frequency grid over poles, residues and d jointly, p = 4 .. 256
 *    (continuation towards the max norm): damped Newton steps of IRLS
 *    form, weights |E_j|^(p-2), Hessian (p - 1) J^T W J (the IRLS matrix
 *    alone overshoots by p - 1), Levenberg-Marquardt damping with the
 *    step accepted only when the L_p norm falls. Poles are projected
 *    into |lambda| <= 1 - margin after every step. The iterate with the
 *    smallest max error is kept.
 * 3. The result is never worse on the grid than the balanced truncation.
 *
 * The grid is the one the fit record measures H-inf on (cr_fft_good_size
 * of 8L points on the circle, half of it by symmetry).
 */
#include "fit_refine.h"

#include <cblas.h>
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

/* L_p continuation: exponents and Newton steps per exponent */
static const double hna_p[] = {4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0};
#define HNA_NP (sizeof hna_p / sizeof hna_p[0])
#define HNA_STEPS 8
/* stop an exponent's steps when the L_p norm falls by less than this */
#define HNA_RTOL 1e-4
/* relative weight below which a grid point is left out of a step */
#define HNA_WMIN 1e-16

/* 1 / w without the C99 Annex G slow path (__divdc3): w = 1 - l z^-1
 * is bounded away from 0 for |l| < 1 on the unit circle. */
static inline double complex crecip(double complex w)
{
    double a = creal(w), b = cimag(w), n = a * a + b * b;
    return CMPLX(a / n, -b / n);
}
/* x / (2i) = -x i / 2 */
#define DIV2I(x) ((x) * CMPLX(0.0, -0.5))

static void modal_copy(cr__modal *dst, const cr__modal *src)
{
    dst->n = src->n;
    dst->d = src->d;
    memcpy(dst->kind, src->kind, src->n);
    memcpy(dst->pole_re, src->pole_re, src->n * sizeof *dst->pole_re);
    memcpy(dst->pole_im, src->pole_im, src->n * sizeof *dst->pole_im);
    memcpy(dst->res_re, src->res_re, src->n * sizeof *dst->res_re);
    memcpy(dst->res_im, src->res_im, src->n * sizeof *dst->res_im);
}

/* Kernel frequency response H_j = sum_k h[k] e^{-i w_j k}, j = 0..n/2. */
static cr_status kernel_fr(const double *h, size_t L, size_t n, double complex *H)
{
    size_t M = n / 2 + 1;
    double *buf = malloc(2 * M * sizeof *buf);
    if (!buf) return cr__fail(CR_ENOMEM, "hna: out of memory");
    cr_status st = cr_freqresp(h, 1, L, n, buf);
    if (st == CR_OK)
        for (size_t j = 0; j < M; j++) H[j] = CMPLX(buf[2 * j], buf[2 * j + 1]);
    free(buf);
    return st;
}

/* Error without feedthrough, E_j = H_j - (Hhat_j - d), on the grid zi. */
static void err_nod(const cr__modal *m, const double complex *H, const double complex *zi,
                    size_t M, double complex *E)
{
    for (size_t j = 0; j < M; j++) E[j] = H[j];
    for (size_t q = 0; q < m->n; q++) {
        double complex l = CMPLX(m->pole_re[q], m->pole_im[q]);
        double complex r = CMPLX(m->res_re[q], m->res_im[q]);
        if (m->kind[q] == CR_MODE_PAIR) {
            for (size_t j = 0; j < M; j++)
                E[j] -= 2.0 * creal(r * zi[j] * crecip(1.0 - l * zi[j]));
        } else {
            double lr = creal(l), rr = creal(r);
            for (size_t j = 0; j < M; j++) E[j] -= rr * zi[j] * crecip(1.0 - lr * zi[j]);
        }
    }
}

static double max_abs_shift(const double complex *E, size_t M, double d)
{
    double mx = 0.0;
    for (size_t j = 0; j < M; j++) {
        double a = cabs(E[j] - d);
        if (a > mx) mx = a;
    }
    return mx;
}

/* The d minimising max_j |E_j - d|: convex in d, golden section between
 * the extremes of Re E. */
static double best_d(const double complex *E, size_t M)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < M; j++) {
        lo = fmin(lo, creal(E[j]));
        hi = fmax(hi, creal(E[j]));
    }
    const double g = 0.5 * (sqrt(5.0) - 1.0);
    double a = lo, b = hi, x1 = b - g * (b - a), x2 = a + g * (b - a);
    double f1 = max_abs_shift(E, M, x1), f2 = max_abs_shift(E, M, x2);
    for (int it = 0; it < 100 && b - a > 1e-14 * (fabs(a) + fabs(b)); it++) {
        if (f1 <= f2) {
            b = x2; x2 = x1; f2 = f1; x1 = b - g * (b - a);
            f1 = max_abs_shift(E, M, x1);
        } else {
            a = x1; x1 = x2; f1 = f2; x2 = a + g * (b - a);
            f2 = max_abs_shift(E, M, x2);
        }
    }
    return f1 <= f2 ? x1 : x2;
}

/* H-inf error of m on the grid (E is scratch). */
static double hinf_grid(const cr__modal *m, const double complex *H, const double complex *zi,
                        size_t M, double complex *E)
{
    err_nod(m, H, zi, M, E);
    return max_abs_shift(E, M, m->d);
}

/* ---------------------------------------------------------------------- */
/* Parameters theta: per mode the pole (re, im) of a pair or re of a real
 * mode, then the linear coefficients: d, and per pair (c_re, c_im) with
 * mode term c_re (g1 + g2)/2 + c_im (g1 - g2)/(2i), g1 = z^-1/(1 - l z^-1),
 * g2 the same with conj(l) (so r = (c_re - i c_im)/2), per real mode c. */
typedef struct lp_ws {
    size_t M, nx, nc, np;
    const double complex *H, *zi;
    const double *om;            /* grid weights: 1 at 0 and pi, else 2 */
    double complex *E;           /* M */
    double complex *U;           /* M: scaled conj unit errors */
    size_t *idx;                 /* M: grid points in the step */
    double *J, *r;               /* 2M x np, 2M */
    double *A, *As, *g, *dt;     /* np x np, np x np, np, np */
} lp_ws;

static void theta_get(const cr__modal *m, size_t nx, double *t)
{
    size_t p = 0, c = nx;
    t[c++] = m->d;
    for (size_t q = 0; q < m->n; q++) {
        t[p++] = m->pole_re[q];
        if (m->kind[q] == CR_MODE_PAIR) {
            t[p++] = m->pole_im[q];
            t[c++] = 2.0 * m->res_re[q];
            t[c++] = -2.0 * m->res_im[q];
        } else {
            t[c++] = m->res_re[q];
        }
    }
}

/* theta -> m, poles projected into |lambda| <= rho_max (theta too). */
static void theta_set(cr__modal *m, size_t nx, double *t, double rho_max)
{
    size_t p = 0, c = nx;
    m->d = t[c++];
    for (size_t q = 0; q < m->n; q++) {
        if (m->kind[q] == CR_MODE_PAIR) {
            double re = t[p], im = t[p + 1], a = hypot(re, im);
            if (a > rho_max) {
                re *= rho_max / a;
                im *= rho_max / a;
            }
            /* a pair must stay a pair: keep Im away from 0 */
            if (fabs(im) < 1e-12) im = im < 0.0 ? -1e-12 : 1e-12;
            t[p] = re;
            t[p + 1] = im;
            p += 2;
            double cr = t[c++], ci = t[c++];
            /* representative with Im > 0: conj pole, conj residue */
            m->pole_re[q] = re;
            m->pole_im[q] = fabs(im);
            m->res_re[q] = 0.5 * cr;
            m->res_im[q] = im > 0.0 ? -0.5 * ci : 0.5 * ci;
        } else {
            double re = fmax(-rho_max, fmin(rho_max, t[p]));
            t[p++] = re;
            m->pole_re[q] = re;
            m->pole_im[q] = 0.0;
            m->res_re[q] = t[c++];
            m->res_im[q] = 0.0;
        }
    }
}

/* x^p for p a power of two (the exponents used here), by squaring:
 * pow() dominated the cost. */
static inline double pow2k(double x, double p)
{
    double y = x;
    for (double q = p; q > 1.0; q *= 0.5) y *= y;
    return y;
}
/* x^(p - 2) for 0 < x <= 1 */
static inline double pow2k_m2(double x, double p)
{
    return p == 2.0 ? 1.0 : pow2k(x, p) / (x * x);
}

/* L_p norm (normalised by the grid weights' sum) of E - d and its max. */
static double lp_norm(const lp_ws *w, double d, double p, double *mx)
{
    double a = max_abs_shift(w->E, w->M, d), s = 0.0, ws = 0.0;
    *mx = a;
    if (!(a > 0.0)) return 0.0;
    for (size_t j = 0; j < w->M; j++) {
        s += w->om[j] * pow2k(cabs(w->E[j] - d) / a, p);
        ws += w->om[j];
    }
    return a * pow(s / ws, 1.0 / p);
}

/* Gauss-Newton model of phi = sum_j om_j |e_j|^p / p, e_j = E_j - d, at
 * the current model (E already holds the error without d). With
 * w_j = om_j |e_j|^(p-2) and u_j = e_j / |e_j|:
 *   gradient  sum_j w_j |e_j| Re(conj(u_j) de_j),
 *   Hessian   sum_j w_j ((p - 1) Re(conj(u_j) de_j)^2 + Im(conj(u_j) de_j)^2)
 * (exact but for the second derivatives of e). J holds the rows
 * sqrt((p-1) w_j) Re(conj(u_j) de_j) (0..M-1) and sqrt(w_j) Im(..)
 * (M..2M-1); r the radial values sqrt(w_j) |e_j| / sqrt(p-1), so that
 * J^T r is the gradient. Weights are scaled by max |e| to stay finite. */
static size_t lp_jacobian(lp_ws *w, const cr__modal *m, const double *t, double p)
{
    const size_t M = w->M, nx = w->nx;
    double a = max_abs_shift(w->E, M, m->d);
    double *J = w->J, *r = w->r, sp = sqrt(p - 1.0);
    double complex *U = w->U;
    /* rows whose weight is negligible at this exponent carry nothing:
     * at high p only the near-maximal errors are kept */
    size_t Ma = 0;
    for (size_t j = 0; j < M; j++) {
        double complex e = w->E[j] - m->d;
        double ae = cabs(e);
        double wj = ae > 0.0 ? w->om[j] * pow2k_m2(ae / a, p) : 0.0;
        if (!(wj > HNA_WMIN)) continue;
        double s = sqrt(wj);
        w->idx[Ma] = j;
        U[Ma] = (s / ae) * conj(e); /* sqrt(w) conj(u) */
        r[Ma] = s * ae / sp;
        Ma++;
    }
    const size_t R = 2 * Ma;
    for (size_t i = 0; i < Ma; i++) {
        r[Ma + i] = 0.0;
        J[i + nx * R] = -sp * creal(U[i]); /* de/dd = -1 */
        J[Ma + i + nx * R] = -cimag(U[i]);
    }
    size_t px = 0, pc = nx + 1;
    for (size_t q = 0; q < m->n; q++) {
        int pair = m->kind[q] == CR_MODE_PAIR;
        double complex l = CMPLX(t[px], pair ? t[px + 1] : 0.0);
        double cre = t[pc], cim = pair ? t[pc + 1] : 0.0;
        double *Ja = J + px * R, *Jb = J + (px + 1) * R, *Jc = J + pc * R, *Jd = J + (pc + 1) * R;
        for (size_t i = 0; i < Ma; i++) {
            double complex zi = w->zi[w->idx[i]], ui = U[i];
            double complex g1 = zi * crecip(1.0 - l * zi);
            /* e = E - sum(...): derivatives carry a minus sign */
            if (pair) {
                double complex g2 = zi * crecip(1.0 - conj(l) * zi);
                double complex b1 = 0.5 * (g1 + g2), b2 = DIV2I(g1 - g2);
                double complex q1 = g1 * g1, q2 = g2 * g2;
                double complex da = -ui * (cre * 0.5 * (q1 + q2) + cim * DIV2I(q1 - q2));
                double complex db = -ui * (cre * 0.5 * I * (q1 - q2) + cim * 0.5 * (q1 + q2));
                double complex dc = -ui * b1, dd = -ui * b2;
                Ja[i] = sp * creal(da);
                Ja[Ma + i] = cimag(da);
                Jb[i] = sp * creal(db);
                Jb[Ma + i] = cimag(db);
                Jc[i] = sp * creal(dc);
                Jc[Ma + i] = cimag(dc);
                Jd[i] = sp * creal(dd);
                Jd[Ma + i] = cimag(dd);
            } else {
                double complex da = -ui * (cre * g1 * g1), dc = -ui * g1;
                Ja[i] = sp * creal(da);
                Ja[Ma + i] = cimag(da);
                Jc[i] = sp * creal(dc);
                Jc[Ma + i] = cimag(dc);
            }
        }
        px += pair ? 2 : 1;
        pc += pair ? 2 : 1;
    }
    return R;
}

/* Minimise the L_p norms over theta; m holds the best iterate by max
 * error on return, *best its max error. */
static cr_status lp_refine(lp_ws *w, cr__modal *m, cr__modal *trial, double rho_max, double *best)
{
    const size_t M = w->M, np = w->np;
    double *t = malloc(np * sizeof *t), *tt = malloc(np * sizeof *tt);
    double *tb = malloc(np * sizeof *tb);
    if (!t || !tt || !tb) {
        free(t); free(tt); free(tb);
        return cr__fail(CR_ENOMEM, "hna: out of memory");
    }
    theta_get(m, w->nx, t);
    memcpy(tb, t, np * sizeof *t);
    modal_copy(trial, m);
    err_nod(m, w->H, w->zi, M, w->E);
    *best = max_abs_shift(w->E, M, m->d);
    double mu = 1e-3;
    for (size_t ip = 0; ip < HNA_NP; ip++) {
        double p = hna_p[ip], mx;
        theta_set(m, w->nx, t, rho_max);
        err_nod(m, w->H, w->zi, M, w->E);
        double f = lp_norm(w, m->d, p, &mx);
        mu = 1e-3;
        for (int step = 0; step < HNA_STEPS; step++) {
            size_t R = lp_jacobian(w, m, t, p);
            /* A = J^T J, g = J^T r */
            cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (int)np, (int)R, 1.0, w->J,
                        (int)R, 0.0, w->A, (int)np);
            cblas_dgemv(CblasColMajor, CblasTrans, (int)R, (int)np, 1.0, w->J, (int)R, w->r, 1,
                        0.0, w->g, 1);
            int accepted = 0;
            double ft = f;
            for (int tr = 0; tr < 12 && !accepted; tr++) {
                memcpy(w->As, w->A, np * np * sizeof *w->A);
                for (size_t i = 0; i < np; i++) {
                    w->As[i + i * np] += mu * fmax(w->A[i + i * np], 1e-300) + 1e-300;
                    w->dt[i] = -w->g[i];
                }
                if (LAPACKE_dposv(LAPACK_COL_MAJOR, 'U', (lapack_int)np, 1, w->As, (lapack_int)np,
                                  w->dt, (lapack_int)np) != 0) {
                    mu *= 10.0;
                    continue;
                }
                for (size_t i = 0; i < np; i++) tt[i] = t[i] + w->dt[i];
                theta_set(trial, w->nx, tt, rho_max);
                err_nod(trial, w->H, w->zi, M, w->E);
                double mxt;
                ft = lp_norm(w, trial->d, p, &mxt);
                if (isfinite(ft) && ft < f) {
                    accepted = 1;
                    mu = fmax(mu / 3.0, 1e-9);
                    if (mxt < *best) {
                        *best = mxt;
                        memcpy(tb, tt, np * sizeof *t);
                    }
                } else {
                    mu *= 6.0;
                }
            }
            if (!accepted) {
                if (getenv("HNA_DBG")) fprintf(stderr, "p %g step %d rejected mu %.3g\n", p, step, mu);
                err_nod(m, w->H, w->zi, M, w->E); /* restore E of the current model */
                break;
            }
            if (getenv("HNA_DBG")) fprintf(stderr, "p %g step %d f %.6g -> %.6g best %.6g mu %.3g\n", p, step, f, ft, *best, mu);
            memcpy(t, tt, np * sizeof *t);
            modal_copy(m, trial);
            double rel = (f - ft) / f;
            f = ft;
            if (rel < HNA_RTOL && mu < 1e-2) break;
        }
    }
    theta_set(m, w->nx, tb, rho_max);
    free(t); free(tt); free(tb);
    return CR_OK;
}

cr_status cr__fit_hna(const double *h, size_t L, size_t N, double margin, cr__modal *out)
{
    if (!h || !out) return cr__fail(CR_EINVAL, "hna: NULL argument");
    if (L < 2) return cr__fail(CR_EINVAL, "hna: kernel length %zu < 2", L);
    if (N == 0 || N >= L) return cr__fail(CR_EINVAL, "hna: order %zu outside [1, L-1]", N);
    if (!(margin >= 0.0 && margin < 1.0)) return cr__fail(CR_EINVAL, "hna: margin %g outside [0, 1)", margin);
    for (size_t k = 0; k < L; k++)
        if (!isfinite(h[k])) return cr__fail(CR_ENONFINITE, "hna: kernel has NaN/Inf at %zu", k);
    const double rho_max = margin > 0.0 ? 1.0 - margin : 1.0 - 1e-15;

    /* balanced truncation: the certificate start, never returned worse */
    cr_status st = cr__fit_bt(h, L, N, margin, out);
    if (st != CR_OK) return st;
    if (out->n == 0 || N + 1 >= L) return CR_OK; /* d only, or exact */

    size_t nf = cr_fft_good_size(8 * L), M = nf / 2 + 1;
    size_t nx = 0, nc = 1;
    cr__modal g, t;
    memset(&g, 0, sizeof g);
    memset(&t, 0, sizeof t);
    lp_ws w;
    memset(&w, 0, sizeof w);
    double complex *H = malloc(M * sizeof *H), *zi = malloc(M * sizeof *zi);
    double complex *E = malloc(M * sizeof *E);
    double *om = malloc(M * sizeof *om);
    if (!H || !zi || !E || !om) {
        st = cr__fail(CR_ENOMEM, "hna: out of memory");
        goto done;
    }
    if ((st = cr__modal_alloc(&g, out->cap)) != CR_OK || (st = cr__modal_alloc(&t, out->cap)) != CR_OK)
        goto done;
    if ((st = kernel_fr(h, L, nf, H)) != CR_OK) goto done;
    for (size_t j = 0; j < M; j++) {
        zi[j] = cexp(-I * (2.0 * M_PI * (double)j / (double)nf));
        om[j] = (j == 0 || 2 * j == nf) ? 1.0 : 2.0;
    }
    /* BT with its own d improved: the best constant is free */
    err_nod(out, H, zi, M, E);
    double e_bt = max_abs_shift(E, M, out->d);
    modal_copy(&t, out);
    t.d = best_d(E, M);
    double e_start = max_abs_shift(E, M, t.d);
    modal_copy(&g, &t);

    /* Glover's stable part, with its best d */
    size_t moved = 0;
    cr__modal gl;
    memset(&gl, 0, sizeof gl);
    if ((st = cr__modal_alloc(&gl, out->cap)) != CR_OK) goto done;
    st = cr__hna_glover(h, L, N, margin, &gl, &moved);
    if (st == CR_OK && moved) st = cr__residues_ls(h, L, CR_HORIZON_INFINITE, &gl);
    if (st == CR_OK && gl.n > 0) {
        err_nod(&gl, H, zi, M, E);
        gl.d = best_d(E, M);
        double e_gl = max_abs_shift(E, M, gl.d);
        if (e_gl < e_start) {
            modal_copy(&g, &gl);
            e_start = e_gl;
        }
    } else if (st == CR_ENOMEM) {
        cr__modal_free(&gl);
        goto done;
    }
    cr__modal_free(&gl);
    st = CR_OK;

    /* joint L_p refinement from the better start */
    for (size_t q = 0; q < g.n; q++) nx += g.kind[q] == CR_MODE_PAIR ? 2 : 1;
    nc = nx + 1;
    w.M = M;
    w.nx = nx;
    w.nc = nc;
    w.np = nx + nc;
    w.H = H;
    w.zi = zi;
    w.om = om;
    w.E = E;
    size_t nJ;
    if (!cr__mul_ok(2 * M, w.np, &nJ) || nJ > CR_MAX_ELEMS) {
        st = cr__fail(CR_EOVERFLOW, "hna: problem too large");
        goto done;
    }
    w.J = malloc(nJ * sizeof *w.J);
    w.r = malloc(2 * M * sizeof *w.r);
    w.A = malloc(w.np * w.np * sizeof *w.A);
    w.As = malloc(w.np * w.np * sizeof *w.As);
    w.g = malloc(w.np * sizeof *w.g);
    w.dt = malloc(w.np * sizeof *w.dt);
    w.U = malloc(M * sizeof *w.U);
    w.idx = malloc(M * sizeof *w.idx);
    if (!w.idx || !w.U || !w.J || !w.r || !w.A || !w.As || !w.g || !w.dt) {
        st = cr__fail(CR_ENOMEM, "hna: out of memory");
        goto done;
    }
    double e_ref;
    if ((st = lp_refine(&w, &g, &t, rho_max, &e_ref)) != CR_OK) goto done;
    e_ref = hinf_grid(&g, H, zi, M, E);
    if (e_ref < e_bt) modal_copy(out, &g);
done:
    free(H); free(zi); free(E); free(om);
    free(w.J); free(w.r); free(w.A); free(w.As); free(w.g); free(w.dt); free(w.U); free(w.idx);
    cr__modal_free(&g);
    cr__modal_free(&t);
    return st;
}
