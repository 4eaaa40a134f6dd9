/* Hankel-norm style fit for the infinite horizon: aim at an H-inf error
 * near sigma_{N+1} (AAK bound) rather than the l2 optimum.
 *
 * Route (MATH.md "What was measured about H-inf-oriented fits"): poles
 * from balanced truncation, then residues and d by a Lawson iteration
 * (iteratively reweighted least squares on a frequency grid, weights
 * multiplied by |error| each step), which drives the weighted l2 solution
 * towards the minimax (Chebyshev) one. The best iterate by its max error
 * on the grid is kept. Between Lawson rounds the poles move too: a few
 * Levenberg-Marquardt steps on the Lawson-weighted l2 objective (variable
 * projection, forward-difference Jacobian), projected back inside
 * |lambda| <= 1 - margin. The result is compared on a finer (8L) grid
 * with the BT poles + l2 residues start and never returned worse.
 */
#include "fit_refine.h"

#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Lawson cycles: HNA_LAWSON reweightings, then HNA_GN pole steps on the
 * weighted l2 objective, HNA_CYCLES times. */
#define HNA_CYCLES 4
#define HNA_LAWSON 12
#define HNA_GN 3

/* Frequency-domain basis of the modal model at z^-1 = e^{-i w_j}:
 * col 0: d; pair: B_re = (g(l) + g(conj l))/2, B_im = (g(l) - g(conj l))/(2i)
 * with g(l) = z^-1/(1 - l z^-1); real: g(l). */
static void basis(const cr__modal *m, size_t M, const double complex *zi, double complex *B)
{
    for (size_t j = 0; j < M; j++) B[j] = 1.0;
    size_t p = 1;
    for (size_t q = 0; q < m->n; q++) {
        double complex l = CMPLX(m->pole_re[q], m->pole_im[q]);
        if (m->kind[q] == CR_MODE_PAIR) {
            for (size_t j = 0; j < M; j++) {
                double complex g1 = zi[j] / (1.0 - l * zi[j]);
                double complex g2 = zi[j] / (1.0 - conj(l) * zi[j]);
                B[j + p * M] = 0.5 * (g1 + g2);
                B[j + (p + 1) * M] = (g1 - g2) / (2.0 * I);
            }
            p += 2;
        } else {
            for (size_t j = 0; j < M; j++) B[j + p * M] = zi[j] / (1.0 - creal(l) * zi[j]);
            p += 1;
        }
    }
}

static void coef_to_modal(const double *c, cr__modal *m)
{
    m->d = c[0];
    size_t p = 1;
    for (size_t q = 0; q < m->n; q++) {
        if (m->kind[q] == CR_MODE_PAIR) {
            m->res_re[q] = 0.5 * c[p];
            m->res_im[q] = -0.5 * c[p + 1];
            p += 2;
        } else {
            m->res_re[q] = c[p];
            m->res_im[q] = 0.0;
            p += 1;
        }
    }
}
static void modal_to_coef(const cr__modal *m, double *c)
{
    c[0] = m->d;
    size_t p = 1;
    for (size_t q = 0; q < m->n; q++) {
        if (m->kind[q] == CR_MODE_PAIR) {
            c[p] = 2.0 * m->res_re[q];
            c[p + 1] = -2.0 * m->res_im[q];
            p += 2;
        } else {
            c[p] = m->res_re[q];
            p += 1;
        }
    }
}

/* max_j |H_j - (B c)_j| and the error vector */
static double max_err(const double complex *H, const double complex *B, const double *c, size_t M,
                      size_t P1, double *absE)
{
    double mx = 0.0;
    for (size_t j = 0; j < M; j++) {
        double complex e = H[j];
        for (size_t p = 0; p < P1; p++) e -= B[j + p * M] * c[p];
        absE[j] = cabs(e);
        if (absE[j] > mx) mx = absE[j];
    }
    return mx;
}


/* Weighted least squares on the grid for the poles of m: coefficients c,
 * weighted residual vector r (2M; optional) and the max error. */
typedef struct hna_ws {
    size_t M, R, P1;
    const double complex *H, *zi;
    const double *w;
    double complex *B;
    double *A, *b, *sv, *cs, *absE;
} hna_ws;

static int wls(hna_ws *ws, const cr__modal *m, double *c, double *r, double *mx)
{
    const size_t M = ws->M, R = ws->R, P1 = ws->P1;
    basis(m, M, ws->zi, ws->B);
    for (size_t j = 0; j < M; j++) {
        double s = sqrt(ws->w[j]);
        for (size_t p = 0; p < P1; p++) {
            ws->A[j + p * R] = s * creal(ws->B[j + p * M]);
            ws->A[M + j + p * R] = s * cimag(ws->B[j + p * M]);
        }
        ws->b[j] = s * creal(ws->H[j]);
        ws->b[M + j] = s * cimag(ws->H[j]);
    }
    for (size_t p = 0; p < P1; p++) { /* column equilibration */
        double nn = 0.0;
        for (size_t i = 0; i < R; i++) nn += ws->A[i + p * R] * ws->A[i + p * R];
        ws->cs[p] = nn > 0.0 ? 1.0 / sqrt(nn) : 0.0;
        for (size_t i = 0; i < R; i++) ws->A[i + p * R] *= ws->cs[p];
    }
    lapack_int rank;
    if (LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)R, (lapack_int)P1, 1, ws->A, (lapack_int)R,
                       ws->b, (lapack_int)R, ws->sv, 1e-13, &rank) != 0)
        return -1;
    for (size_t p = 0; p < P1; p++) c[p] = ws->b[p] * ws->cs[p];
    *mx = max_err(ws->H, ws->B, c, M, P1, ws->absE);
    if (r)
        for (size_t j = 0; j < M; j++) {
            double complex e = ws->H[j];
            for (size_t p = 0; p < P1; p++) e -= ws->B[j + p * M] * c[p];
            double s = sqrt(ws->w[j]);
            r[j] = s * creal(e);
            r[M + j] = s * cimag(e);
        }
    return isfinite(*mx) ? 0 : -1;
}

/* pole parameters: (re, im) per pair, re per real mode */
static void get_par(const cr__modal *m, double *x)
{
    size_t p = 0;
    for (size_t q = 0; q < m->n; q++) {
        x[p++] = m->pole_re[q];
        if (m->kind[q] == CR_MODE_PAIR) x[p++] = m->pole_im[q];
    }
}
static void set_par(cr__modal *m, const double *x, double rho_max)
{
    size_t p = 0;
    for (size_t q = 0; q < m->n; q++) {
        double re = x[p++], im = m->kind[q] == CR_MODE_PAIR ? x[p++] : 0.0;
        double a = hypot(re, im);
        if (a > rho_max) { /* project back inside the margin */
            re *= rho_max / a;
            im *= rho_max / a;
        }
        m->pole_re[q] = re;
        m->pole_im[q] = im;
    }
}

/* Kernel frequency response on the n-point grid (j = 0..n/2) by direct
 * evaluation through cr_freqresp. */
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

/* H-inf error of the modal model m on the n-point grid. */
static double hinf_on_grid(const cr__modal *m, const double complex *H, size_t n)
{
    size_t M = n / 2 + 1;
    double mx = 0.0;
    for (size_t j = 0; j < M; j++) {
        double w = 2.0 * M_PI * (double)j / (double)n;
        double complex zi = cexp(-I * w), e = H[j] - m->d;
        for (size_t q = 0; q < m->n; q++) {
            double complex l = CMPLX(m->pole_re[q], m->pole_im[q]);
            double complex r = CMPLX(m->res_re[q], m->res_im[q]);
            if (m->kind[q] == CR_MODE_PAIR)
                e -= r * zi / (1.0 - l * zi) + conj(r) * zi / (1.0 - conj(l) * zi);
            else
                e -= creal(r) * zi / (1.0 - creal(l) * zi);
        }
        double a = cabs(e);
        if (a > mx) mx = a;
    }
    return mx;
}

static cr_status lawson_route(const double *h, size_t L, size_t N, double margin, cr__modal *out)
{
    const double rho_max = margin > 0.0 ? 1.0 - margin : 1.0 - 1e-15;

    cr_status st = cr__fit_bt(h, L, N, margin, out);
    if (st != CR_OK) return st;
    st = cr__residues_ls(h, L, CR_HORIZON_INFINITE, out);
    if (st != CR_OK) return st;
    const size_t P = cr__refine_ncols(out), P1 = P + 1;
    if (P == 0) return CR_OK; /* d only */

    size_t n = cr_fft_good_size(4 * L), nf = cr_fft_good_size(8 * L);
    size_t M = n / 2 + 1, Mf = nf / 2 + 1, R = 2 * M;
    size_t nB;
    if (!cr__mul_ok(R, P1 > P ? P1 : P, &nB) || nB > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "hna: too large");
    hna_ws ws = {M, R, P1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    double complex *H = malloc(M * sizeof *H), *Hf = malloc(Mf * sizeof *Hf);
    double complex *zi = malloc(M * sizeof *zi);
    double *w = malloc(M * sizeof *w), *c = malloc(P1 * sizeof *c), *cbest = malloc(P1 * sizeof *c);
    double *c0 = malloc(P1 * sizeof *c0), *x = malloc(P * sizeof *x), *xbest = malloc(P * sizeof *x);
    double *x0 = malloc(P * sizeof *x0), *xt = malloc(P * sizeof *xt), *dx = malloc(P * sizeof *dx);
    double *r0 = malloc(R * sizeof *r0), *rt = malloc(R * sizeof *rt), *J = malloc(nB * sizeof *J);
    double *JJ = malloc(P * P * sizeof *JJ), *Js = malloc(P * P * sizeof *Js), *g = malloc(P * sizeof *g);
    ws.B = malloc(M * P1 * sizeof *ws.B);
    ws.A = malloc(R * P1 * sizeof *ws.A);
    ws.b = malloc(R * sizeof *ws.b);
    ws.sv = malloc(P1 * sizeof *ws.sv);
    ws.cs = malloc(P1 * sizeof *ws.cs);
    ws.absE = malloc(M * sizeof *ws.absE);
    if (!H || !Hf || !zi || !w || !c || !cbest || !c0 || !x || !xbest || !x0 || !xt || !dx || !r0 ||
        !rt || !J || !JJ || !Js || !g || !ws.B || !ws.A || !ws.b || !ws.sv || !ws.cs || !ws.absE) {
        st = cr__fail(CR_ENOMEM, "hna: out of memory");
        goto done;
    }
    if ((st = kernel_fr(h, L, n, H)) != CR_OK || (st = kernel_fr(h, L, nf, Hf)) != CR_OK) goto done;
    for (size_t j = 0; j < M; j++) zi[j] = cexp(-I * (2.0 * M_PI * (double)j / (double)n));
    ws.H = H;
    ws.zi = zi;
    ws.w = w;
    get_par(out, x0);
    modal_to_coef(out, c0);
    memcpy(x, x0, P * sizeof *x);
    memcpy(xbest, x0, P * sizeof *x);
    memcpy(cbest, c0, P1 * sizeof *c);
    basis(out, M, zi, ws.B);
    double best = max_err(H, ws.B, c0, M, P1, ws.absE);
    /* Lawson weights start from l2 (interior points count twice: the grid
     * covers half the circle) */
    double wsum = 0.0;
    for (size_t j = 0; j < M; j++) {
        w[j] = (j == 0 || j == M - 1) ? 1.0 : 2.0;
        wsum += w[j];
    }
    for (size_t j = 0; j < M; j++) w[j] /= wsum;
    double mu = 1e-2;
    for (int cyc = 0; cyc < HNA_CYCLES; cyc++) {
        /* Lawson on the residues for the current poles */
        set_par(out, x, rho_max);
        for (int it = 0; it < HNA_LAWSON; it++) {
            double mx;
            if (wls(&ws, out, c, NULL, &mx) != 0) break;
            if (mx < best) {
                best = mx;
                memcpy(cbest, c, P1 * sizeof *c);
                memcpy(xbest, x, P * sizeof *x);
            }
            wsum = 0.0;
            for (size_t j = 0; j < M; j++) {
                w[j] *= ws.absE[j];
                wsum += w[j];
            }
            if (!(wsum > 0.0)) goto finish;
            for (size_t j = 0; j < M; j++) w[j] /= wsum;
        }
        if (cyc == HNA_CYCLES - 1) break;
        /* Gauss-Newton (LM) steps on the poles for the weighted l2
         * objective of the current weights: variable projection with a
         * forward-difference Jacobian (P small, each column one solve) */
        for (int gn = 0; gn < HNA_GN; gn++) {
            double mx0, F0 = 0.0;
            set_par(out, x, rho_max);
            if (wls(&ws, out, c, r0, &mx0) != 0) goto finish;
            for (size_t i = 0; i < R; i++) F0 += r0[i] * r0[i];
            for (size_t p = 0; p < P; p++) {
                double mxp, del = 1e-7 * fmax(1e-3, fabs(x[p]));
                memcpy(xt, x, P * sizeof *x);
                xt[p] += del;
                set_par(out, xt, 1.0); /* no projection inside the difference */
                if (wls(&ws, out, c, rt, &mxp) != 0) goto finish;
                for (size_t i = 0; i < R; i++) J[i + p * R] = (rt[i] - r0[i]) / del;
            }
            for (size_t p = 0; p < P; p++) {
                g[p] = 0.0;
                for (size_t i = 0; i < R; i++) g[p] += J[i + p * R] * r0[i];
                for (size_t q = 0; q <= p; q++) {
                    double v = 0.0;
                    for (size_t i = 0; i < R; i++) v += J[i + p * R] * J[i + q * R];
                    JJ[p + q * P] = v;
                    JJ[q + p * P] = v;
                }
            }
            int accepted = 0;
            for (int tr = 0; tr < 6 && !accepted; tr++) {
                memcpy(Js, JJ, P * P * sizeof *Js);
                for (size_t p = 0; p < P; p++) {
                    Js[p + p * P] += mu * fmax(JJ[p + p * P], 1e-14);
                    dx[p] = -g[p];
                }
                if (LAPACKE_dposv(LAPACK_COL_MAJOR, 'U', (lapack_int)P, 1, Js, (lapack_int)P, dx,
                                  (lapack_int)P) != 0) {
                    mu *= 10.0;
                    continue;
                }
                for (size_t p = 0; p < P; p++) xt[p] = x[p] + dx[p];
                set_par(out, xt, rho_max);
                get_par(out, xt); /* projected */
                double mxt, Ft = 0.0;
                if (wls(&ws, out, c, rt, &mxt) != 0) {
                    mu *= 10.0;
                    continue;
                }
                for (size_t i = 0; i < R; i++) Ft += rt[i] * rt[i];
                if (Ft < F0) {
                    accepted = 1;
                    memcpy(x, xt, P * sizeof *x);
                    mu = fmax(mu / 3.0, 1e-8);
                    if (mxt < best) {
                        best = mxt;
                        memcpy(cbest, c, P1 * sizeof *c);
                        memcpy(xbest, x, P * sizeof *x);
                    }
                } else {
                    mu *= 4.0;
                }
            }
            if (!accepted) break;
        }
    }
finish:
    /* keep the refined model only if it beats the l2 start on the fine grid */
    {
        set_par(out, x0, rho_max);
        coef_to_modal(c0, out);
        double e0 = hinf_on_grid(out, Hf, nf);
        set_par(out, xbest, rho_max);
        coef_to_modal(cbest, out);
        double e1 = hinf_on_grid(out, Hf, nf);
        if (!(e1 <= e0)) {
            set_par(out, x0, rho_max);
            coef_to_modal(c0, out);
        }
    }
    st = CR_OK;
done:
    free(H);
    free(Hf);
    free(zi);
    free(w);
    free(c);
    free(cbest);
    free(c0);
    free(x);
    free(xbest);
    free(x0);
    free(xt);
    free(dx);
    free(r0);
    free(rt);
    free(J);
    free(JJ);
    free(Js);
    free(g);
    free(ws.B);
    free(ws.A);
    free(ws.b);
    free(ws.sv);
    free(ws.cs);
    free(ws.absE);
    return st;
}

/* The d minimising max_j |E_j - d| for the error E of the model without
 * its feedthrough (E = H - (Hhat - d)); convex in d: golden section. */
static double best_d(const cr__modal *m, const double complex *H, size_t n, double complex *E)
{
    size_t M = n / 2 + 1;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < M; j++) {
        double w = 2.0 * M_PI * (double)j / (double)n;
        double complex zi = cexp(-I * w), e = H[j];
        for (size_t q = 0; q < m->n; q++) {
            double complex l = CMPLX(m->pole_re[q], m->pole_im[q]);
            double complex r = CMPLX(m->res_re[q], m->res_im[q]);
            if (m->kind[q] == CR_MODE_PAIR)
                e -= r * zi / (1.0 - l * zi) + conj(r) * zi / (1.0 - conj(l) * zi);
            else
                e -= creal(r) * zi / (1.0 - creal(l) * zi);
        }
        E[j] = e;
        if (creal(e) < lo) lo = creal(e);
        if (creal(e) > hi) hi = creal(e);
    }
    if (!(lo <= hi)) return m->d;
    const double g = 0.5 * (sqrt(5.0) - 1.0);
    double a = lo, b = hi, x1 = b - g * (b - a), x2 = a + g * (b - a), f1 = 0.0, f2 = 0.0;
    for (int pass = 0; pass < 2; pass++) {
        double x = pass ? x2 : x1, f = 0.0;
        for (size_t j = 0; j < M; j++) f = fmax(f, cabs(E[j] - x));
        if (pass) f2 = f; else f1 = f;
    }
    for (int it = 0; it < 80 && b - a > 1e-15 * (fabs(a) + fabs(b)); it++) {
        if (f1 <= f2) {
            b = x2; x2 = x1; f2 = f1; x1 = b - g * (b - a);
            f1 = 0.0;
            for (size_t j = 0; j < M; j++) f1 = fmax(f1, cabs(E[j] - x1));
        } else {
            a = x1; x1 = x2; f1 = f2; x2 = a + g * (b - a);
            f2 = 0.0;
            for (size_t j = 0; j < M; j++) f2 = fmax(f2, cabs(E[j] - x2));
        }
    }
    return f1 <= f2 ? x1 : x2;
}

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

cr_status cr__fit_hna(const double *h, size_t L, size_t N, double margin, cr__modal *out)
{
    if (!h || !out) return cr__fail(CR_EINVAL, "hna: NULL argument");
    if (L < 2) return cr__fail(CR_EINVAL, "hna: kernel length %zu < 2", L);
    if (N == 0 || N >= L) return cr__fail(CR_EINVAL, "hna: order %zu outside [1, L-1]", N);
    if (!(margin >= 0.0 && margin < 1.0)) return cr__fail(CR_EINVAL, "hna: margin %g outside [0, 1)", margin);
    for (size_t k = 0; k < L; k++)
        if (!isfinite(h[k])) return cr__fail(CR_ENONFINITE, "hna: kernel has NaN/Inf at %zu", k);
    if (getenv("HNA_OLD")) return lawson_route(h, L, N, margin, out);

    /* the balanced-truncation start, never returned worse */
    cr_status st = cr__fit_bt(h, L, N, margin, out);
    if (st == CR_OK) st = cr__residues_ls(h, L, CR_HORIZON_INFINITE, out);
    if (st != CR_OK) return st;
    if (out->n == 0 || N + 1 >= L) return CR_OK; /* exact or d only */

    size_t nf = cr_fft_good_size(8 * L), Mf = nf / 2 + 1;
    cr__modal g;
    memset(&g, 0, sizeof g);
    double complex *Hf = malloc(Mf * sizeof *Hf), *E = malloc(Mf * sizeof *E);
    if (!Hf || !E || (st = cr__modal_alloc(&g, out->cap)) != CR_OK) {
        st = cr__fail(CR_ENOMEM, "hna: out of memory");
        goto done;
    }
    if ((st = kernel_fr(h, L, nf, Hf)) != CR_OK) goto done;
    double e_bt = hinf_on_grid(out, Hf, nf);
    size_t moved = 0;
    st = cr__hna_glover(h, L, N, margin, &g, &moved);
    if (st == CR_ENOMEM) goto done;
    if (st == CR_OK && moved) st = cr__residues_ls(h, L, CR_HORIZON_INFINITE, &g);
    if (st != CR_OK) { /* Glover failed numerically: the Lawson route */
        st = lawson_route(h, L, N, margin, out);
        goto done;
    }
    g.d = best_d(&g, Hf, nf, E);
    double e_g = hinf_on_grid(&g, Hf, nf);
    if (e_g < e_bt) modal_copy(out, &g);
    st = CR_OK;
done:
    free(Hf);
    free(E);
    cr__modal_free(&g);
    return st;
}
