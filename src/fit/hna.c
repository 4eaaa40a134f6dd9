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
 *    (continuation towards the max norm): Gauss-Newton steps for
 *    sum |E_j|^p, weights |E_j|^(p-2), curvature p - 1 along the error's
 *    direction and 1 across it (plain IRLS overshoots by p - 1), by the
 *    damped least-squares driver of lm.c, a step accepted only when the
 *    L_p norm falls. Poles are projected into |lambda| <= 1 - margin
 *    after every step. The iterate with the smallest max error is kept.
 * 3. The result is never worse on the grid than the balanced truncation.
 *
 * The grid is the one the fit record measures H-inf on (cr_fft_good_size
 * of 8L points on the circle, half of it by symmetry), plus points around
 * every pole closer to the circle than a few grid spacings: without them
 * the optimiser parks error peaks between grid points (measured: 8L-grid
 * ratio 1.9 hiding 2.5 on a 32L grid). With them the 8L and 32L figures
 * agree to ~0.5% in the median.
 */
#include "fit/fit.h"

#include <cblas.h>
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* L_p continuation: exponents and Gauss-Newton steps per exponent */
static const double hna_p[] = {4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0};
#define HNA_NP (sizeof hna_p / sizeof hna_p[0])
#define HNA_STEPS 16
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
                E[j] -= zi[j] * (r * crecip(1.0 - l * zi[j]) + conj(r) * crecip(1.0 - conj(l) * zi[j]));
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
    size_t M0, Mcap;             /* uniform points; capacity with extras */
    double complex *H, *zi;      /* kernel response, z^-1 on the grid */
    double *om;                  /* grid weights: 1 at 0 and pi, else 2 */
    size_t nf;                   /* uniform grid size */
    const double *h;
    size_t L;
    double complex *E;           /* M */
    double complex *U;           /* M: scaled conj unit errors */
    size_t *idx;                 /* M: grid points in the step */
    double *J, *r;               /* 2M x np, 2M */
    double rho_max;              /* poles within |lambda| <= rho_max */
    double p, a;                 /* the level: exponent and error scale */
    double mx, best;             /* max error of the last evaluation; of the best iterate */
    double *tb;                  /* np: the best iterate */
    cr__modal *trial;            /* the model being evaluated */
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

/* Gauss-Newton model of phi = sum_j om_j |e_j|^p / (p a^(p-2)), e_j =
 * E_j - d, a = the level's scale w->a, at the current model (E already
 * holds the error without d). With w_j = om_j (|e_j| / a)^(p-2) and
 * u_j = e_j / |e_j|:
 *   gradient  sum_j w_j |e_j| Re(conj(u_j) de_j),
 *   Hessian   sum_j w_j ((p - 1) Re(conj(u_j) de_j)^2 + Im(conj(u_j) de_j)^2)
 * (exact but for the second derivatives of e). J holds the rows
 * sqrt((p-1) w_j) Re(conj(u_j) de_j) (0..M-1) and sqrt(w_j) Im(..)
 * (M..2M-1); r the radial values sqrt(w_j) |e_j| / sqrt(p-1), so that
 * J^T r is the gradient. The scale a keeps the weights finite. */
static size_t lp_jacobian(lp_ws *w, const cr__modal *m, const double *t, double p)
{
    const size_t M = w->M, nx = w->nx;
    const double a = w->a;
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

/* A pole within a few grid spacings of the unit circle makes a peak
 * narrower than the uniform grid resolves; sample E around it: offsets
 * 0, +-delta/2, +-delta, +-2 delta from the pole's angle, delta = 1 - |l|
 * (the half-width). Without these points the optimiser would park error
 * peaks between grid points. The kernel response there is summed
 * directly (O(L) per point). Appends to the grid while there is room. */
#define HNA_PTS 7
static void add_pole_points(lp_ws *w, const cr__modal *m)
{
    static const double off[HNA_PTS] = {0.0, -0.5, 0.5, -1.0, 1.0, -2.0, 2.0};
    const double dw = 2.0 * M_PI / (double)w->nf;
    for (size_t q = 0; q < m->n; q++) {
        double rho = hypot(m->pole_re[q], m->pole_im[q]), del = 1.0 - rho;
        if (!(del < 4.0 * dw) || w->M + HNA_PTS > w->Mcap) continue;
        double th = fabs(atan2(m->pole_im[q], m->pole_re[q]));
        for (size_t k = 0; k < HNA_PTS; k++) {
            double om = fmin(M_PI, fmax(0.0, th + off[k] * fmax(del, 1e-9)));
            double complex z = cexp(-I * om), zk = 1.0, acc = 0.0;
            for (size_t i = 0; i < w->L; i++) {
                acc += w->h[i] * zk;
                zk *= z;
            }
            w->zi[w->M] = z;
            w->H[w->M] = acc;
            w->om[w->M] = 1.0;
            w->M++;
        }
    }
}

/* The evaluate callback (lm.c): f = 2 phi (lp_jacobian) at theta, with
 * the poles projected into the disk; with want, H = J^T J and g = J^T r. */
static int lp_eval(void *ctx, double *t, int want, double *f, double *A, double *g)
{
    lp_ws *w = ctx;
    theta_set(w->trial, w->nx, t, w->rho_max);
    err_nod(w->trial, w->H, w->zi, w->M, w->E);
    const double d = w->trial->d, a = w->a, p = w->p;
    double s = 0.0, mx = 0.0;
    for (size_t j = 0; j < w->M; j++) {
        double e = cabs(w->E[j] - d);
        mx = fmax(mx, e);
        s += w->om[j] * pow2k(e / a, p);
    }
    w->mx = mx;
    *f = 2.0 * a * a / p * s;
    if (!isfinite(*f)) return -1;
    if (!want) return 0;
    size_t R = lp_jacobian(w, w->trial, t, p);
    const int np = (int)w->np;
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, np, (int)R, 1.0, w->J, (int)R, 0.0, A, np);
    cblas_dgemv(CblasColMajor, CblasTrans, (int)R, np, 1.0, w->J, (int)R, w->r, 1, 0.0, g, 1);
    return 0;
}

/* The accepted callback: keep the iterate with the smallest max error. */
static int lp_accepted(void *ctx, const double *t, double f)
{
    (void)f;
    lp_ws *w = ctx;
    if (w->mx < w->best) {
        w->best = w->mx;
        memcpy(w->tb, t, w->np * sizeof *t);
    }
    return 0;
}

/* Minimise the L_p norms over theta; m holds the best iterate by max
 * error on return, w->best its max error. */
static cr_status lp_refine(lp_ws *w, cr__modal *m, cr__modal *trial, cr__fit_stats *stats)
{
    const size_t np = w->np;
    double *t = malloc(np * sizeof *t);
    w->tb = malloc(np * sizeof *w->tb);
    if (!t || !w->tb) {
        free(t);
        free(w->tb);
        w->tb = NULL;
        return cr__fail(CR_ENOMEM, "hna: out of memory");
    }
    w->trial = trial;
    theta_get(m, w->nx, t);
    memcpy(w->tb, t, np * sizeof *t);
    cr__modal_copy(trial, m);
    cr__lm_problem pb = { np, 0, w, lp_eval, lp_accepted };
    cr_status st = CR_OK;
    for (size_t ip = 0; ip < HNA_NP && st == CR_OK; ip++) {
        w->p = hna_p[ip];
        size_t M0 = w->M;
        theta_set(m, w->nx, t, w->rho_max);
        add_pole_points(w, m);
        if (ip == 0 || w->M != M0) { /* the best iterate on the grown grid */
            theta_set(trial, w->nx, w->tb, w->rho_max);
            err_nod(trial, w->H, w->zi, w->M, w->E);
            w->best = max_abs_shift(w->E, w->M, trial->d);
        }
        err_nod(m, w->H, w->zi, w->M, w->E);
        w->a = max_abs_shift(w->E, w->M, m->d);
        if (!(w->a > 0.0)) break;
        /* stop a level once the L_p norm falls by less than HNA_RTOL */
        const cr__lm_opts lo = { HNA_STEPS, 12, 0.0, 1.0 - pow(1.0 - HNA_RTOL, w->p), 1, 0.0, 0.0 };
        cr__lm_result res;
        st = cr__lm(&pb, &lo, t, &res);
        if (stats) {
            stats->lm_iter += (size_t)res.iter;
            stats->lm_eval += (size_t)res.evals;
        }
        if (st == CR_ENOCONV) st = CR_OK; /* the start cannot be evaluated: keep it */
    }
    theta_set(m, w->nx, w->tb, w->rho_max);
    free(t);
    free(w->tb);
    w->tb = NULL;
    return st;
}

cr_status cr__fit_hna(cr__fitctx *c, size_t N, cr__modal *out)
{
    const double *h = c->h;
    const size_t L = c->L;
    if (L < 2) return cr__fail(CR_EINVAL, "hna: kernel length %zu < 2", L);
    if (N == 0 || N >= L) return cr__fail(CR_EINVAL, "hna: order %zu outside [1, L-1]", N);

    /* balanced truncation: the certificate start, never returned worse */
    cr_status st = cr__fit_bt(c, N, out);
    if (st != CR_OK) return st;
    if (out->n == 0 || N + 1 >= L) return CR_OK; /* d only, or exact */

    size_t nf = cr_fft_good_size(8 * L), M = nf / 2 + 1;
    /* extra points: around the poles of BT, Glover, each L_p level and
     * the result */
    size_t Mcap = M + HNA_PTS * out->cap * (HNA_NP + 3);
    cr__modal g, t, gl;
    memset(&g, 0, sizeof g);
    memset(&t, 0, sizeof t);
    memset(&gl, 0, sizeof gl);
    lp_ws w;
    memset(&w, 0, sizeof w);
    size_t nx = 0;
    for (size_t q = 0; q < out->n; q++) nx += out->kind[q] == CR_MODE_PAIR ? 2 : 1;
    w.nx = nx;
    w.nc = nx + 1;
    w.np = nx + w.nc; /* Glover's stable part has the same real order (checked below) */
    size_t nJ;
    if (!cr__mul_ok(2 * Mcap, w.np, &nJ) || nJ > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "hna: problem too large (L %zu, N %zu)", L, N);
    w.H = malloc(Mcap * sizeof *w.H);
    w.zi = malloc(Mcap * sizeof *w.zi);
    w.E = malloc(Mcap * sizeof *w.E);
    w.U = malloc(Mcap * sizeof *w.U);
    w.om = malloc(Mcap * sizeof *w.om);
    w.idx = malloc(Mcap * sizeof *w.idx);
    w.J = malloc(nJ * sizeof *w.J);
    w.r = malloc(2 * Mcap * sizeof *w.r);
    if (!w.H || !w.zi || !w.E || !w.U || !w.om || !w.idx || !w.J || !w.r) {
        st = cr__fail(CR_ENOMEM, "hna: out of memory");
        goto done;
    }
    if ((st = cr__modal_alloc(&g, out->cap)) != CR_OK || (st = cr__modal_alloc(&t, out->cap)) != CR_OK ||
        (st = cr__modal_alloc(&gl, out->cap)) != CR_OK)
        goto done;
    w.M = w.M0 = M;
    w.Mcap = Mcap;
    w.nf = nf;
    w.h = h;
    w.L = L;
    w.rho_max = c->rmax;
    if ((st = kernel_fr(h, L, nf, w.H)) != CR_OK) goto done;
    for (size_t j = 0; j < M; j++) {
        w.zi[j] = cexp(-I * (2.0 * M_PI * (double)j / (double)nf));
        w.om[j] = (j == 0 || 2 * j == nf) ? 1.0 : 2.0;
    }

    /* Glover's stable part (same real order when sigma_N > sigma_{N+1};
     * otherwise it is not used as a start) */
    size_t moved = 0;
    double t0 = c->stats ? cr__fit_clock() : 0.0;
    st = cr__hna_glover(h, L, N, c->rmax, &gl, &moved);
    if (st == CR_OK && moved) st = cr__residues_ls(h, L, CR_HORIZON_INFINITE, &gl);
    if (st == CR_ENOMEM) goto done;
    int have_gl = st == CR_OK && cr__modal_order(&gl) == nx;
    st = CR_OK;

    add_pole_points(&w, out);
    if (have_gl) add_pole_points(&w, &gl);
    /* BT with the best constant d is the first start */
    err_nod(out, w.H, w.zi, w.M, w.E);
    cr__modal_copy(&g, out);
    g.d = best_d(w.E, w.M);
    double e_start = max_abs_shift(w.E, w.M, g.d);
    if (have_gl) {
        err_nod(&gl, w.H, w.zi, w.M, w.E);
        gl.d = best_d(w.E, w.M);
        if (max_abs_shift(w.E, w.M, gl.d) < e_start) cr__modal_copy(&g, &gl);
    }

    if (c->stats) c->stats->t_start += cr__fit_clock() - t0;

    /* joint L_p refinement from the better start */
    t0 = c->stats ? cr__fit_clock() : 0.0;
    st = lp_refine(&w, &g, &t, c->stats);
    if (c->stats) c->stats->t_refine += cr__fit_clock() - t0;
    if (st != CR_OK) goto done;
    /* never worse than balanced truncation, on the grid with the points
     * around both models' poles */
    add_pole_points(&w, &g);
    double e_ref = hinf_grid(&g, w.H, w.zi, w.M, w.E);
    double e_bt = hinf_grid(out, w.H, w.zi, w.M, w.E);
    if (e_ref < e_bt) cr__modal_copy(out, &g);
done:
    free(w.H); free(w.zi); free(w.E); free(w.om);
    free(w.J); free(w.r); free(w.U); free(w.idx);
    cr__modal_free(&g);
    cr__modal_free(&t);
    cr__modal_free(&gl);
    return st;
}
