/* The design matrix of a modal channel, linear least-squares residues for
 * given poles, and the closed-form tail rows of the infinite objective
 * (MATH.md "Variable projection", "Infinite objective").
 *
 * Every column of the design matrix is phi_p[i] = Re(alpha_p mu_p^i),
 * i = k - 1 >= 0, with (alpha, mu) = (1, lambda) for Re lambda^i and for a
 * real pole, and (-i, lambda) for Im lambda^i. Then for i >= L - 1
 *   sum_i phi_p phi_q = 1/2 Re(alpha_p alpha_q S(mu_p mu_q)
 *                            + alpha_p conj(alpha_q) S(mu_p conj mu_q)),
 *   S(mu) = sum_{i >= L-1} mu^i = mu^(L-1) / (1 - mu),
 * which gives the tail Gram matrix G without any truncated sum.
 *
 * d only enters hhat[0] = d, so d = h[0] is optimal for both horizons and
 * the residues are fitted on k = 1.. alone.
 */
#include "fit/fit.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cr_status cr__modal_check(const cr__modal *m)
{
    if (!m) return cr__fail(CR_EINVAL, "modal model is NULL");
    if (m->cap > 0 && m->n > m->cap)
        return cr__fail(CR_EINVAL, "modal model: %zu modes > capacity %zu", m->n, m->cap);
    if (m->n && (!m->kind || !m->pole_re || !m->pole_im || !m->res_re || !m->res_im))
        return cr__fail(CR_EINVAL, "modal model has NULL arrays");
    for (size_t j = 0; j < m->n; j++) {
        if (m->kind[j] != CR_MODE_REAL && m->kind[j] != CR_MODE_PAIR)
            return cr__fail(CR_EINVAL, "mode %zu has invalid kind %u", j, (unsigned)m->kind[j]);
        if (!isfinite(m->pole_re[j]) || !isfinite(m->pole_im[j]))
            return cr__fail(CR_ENONFINITE, "mode %zu has a non-finite pole", j);
    }
    return CR_OK;
}

size_t cr__design_ncols(const cr__modal *m)
{
    size_t p = 0;
    for (size_t j = 0; j < m->n; j++) p += (m->kind[j] == CR_MODE_PAIR) ? 2 : 1;
    return p;
}

void cr__design_desc(const unsigned char *kind, const double complex *lam, size_t M,
                     double complex *alpha, double complex *mu)
{
    size_t p = 0;
    for (size_t j = 0; j < M; j++) {
        int pair = kind[j] == CR_MODE_PAIR;
        alpha[p] = 1.0;
        mu[p++] = pair ? lam[j] : creal(lam[j]);
        if (pair) {
            alpha[p] = -I;
            mu[p++] = lam[j];
        }
    }
}

/* Powers x^i (re, im) for i < nr, and with d0 also i x^(i-1): the first
 * DB powers by the serial recurrence, then block by block, each block the
 * previous one times x^DB. The block products are independent (they
 * vectorise, where the serial recurrence is bound by its multiply
 * latency), and the rounding error grows like i / DB eps instead of
 * i eps. Real powers when im is NULL. */
#define DB 64
CR_CLONES static void powers(double xr, double xi, size_t nr, double *restrict re, double *restrict im,
                   double *restrict d0, double *restrict d1)
{
    size_t n0 = nr < DB ? nr : DB;
    if (im) {
        /* z = x^DB when nr > DB */
        const double complex z = cr__pow_table(xr, xi, n0, re, im);
        const double zr = creal(z), zi = cimag(z);
        for (size_t n = DB; n < nr; n++) {
            double ar = re[n - DB], ai = im[n - DB];
            re[n] = ar * zr - ai * zi;
            im[n] = ar * zi + ai * zr;
        }
    } else {
        double zr = 1.0;
        for (size_t n = 0; n < n0; n++) {
            re[n] = zr;
            zr *= xr;
        }
        for (size_t n = DB; n < nr; n++) re[n] = re[n - DB] * zr;
    }
    if (d0) {
        d0[0] = 0.0;
        for (size_t n = 1; n < nr; n++) d0[n] = (double)n * re[n - 1];
        if (im) {
            d1[0] = 0.0;
            for (size_t n = 1; n < nr; n++) d1[n] = (double)n * im[n - 1];
        }
    }
}

void cr__design(const unsigned char *kind, const double complex *lam, size_t M, size_t nr,
                double *Phi, size_t ld, double *dPhi)
{
    size_t p = 0;
    for (size_t j = 0; j < M; j++) {
        double *d0 = dPhi ? dPhi + p * ld : NULL;
        if (kind[j] == CR_MODE_PAIR) {
            powers(creal(lam[j]), cimag(lam[j]), nr, Phi + p * ld, Phi + (p + 1) * ld, d0,
                   dPhi ? dPhi + (p + 1) * ld : NULL);
            p += 2;
        } else {
            powers(creal(lam[j]), 0.0, nr, Phi + p * ld, NULL, d0, NULL);
            p += 1;
        }
    }
}

void cr__design_dot(const unsigned char *kind, const double complex *lam, size_t M, size_t nr,
                    double *Phi, size_t ld, const double *V, size_t nv, double *Y)
{
    size_t p = 0, P = 0;
    for (size_t j = 0; j < M; j++) P += kind[j] == CR_MODE_PAIR ? 2 : 1;
    for (size_t j = 0; j < M; j++) {
        int pair = kind[j] == CR_MODE_PAIR;
        powers(creal(lam[j]), pair ? cimag(lam[j]) : 0.0, nr, Phi + p * ld,
               pair ? Phi + (p + 1) * ld : NULL, NULL, NULL);
        /* the fresh columns are still in cache: their products now (BLAS
         * dots, vectorised for the machine at run time) */
        for (size_t q = p; q < p + (pair ? 2 : 1); q++)
            for (size_t v = 0; v < nv; v++)
                Y[q + v * P] = cblas_ddot((int)nr, Phi + q * ld, 1, V + v * nr, 1);
        p += pair ? 2 : 1;
    }
}

/* s0 = sum_{i<m} mu^i, s1 = sum i mu^i, s2 = sum i^2 mu^i and *pw = mu^m by
 * binary doubling (the sums over [0, 2k) from those over [0, k) and
 * mu^k): O(log m) steps, no cancellation when mu is near 1, where the
 * closed forms (1 - mu^m) / (1 - mu) and their derivatives lose digits. */
static inline __attribute__((always_inline)) void
geo_sums(double complex mu, size_t m, double complex *s0, double complex *s1, double complex *s2,
         double complex *pw)
{
    double complex a0 = 0.0, c1 = 0.0, c2 = 0.0, p = 1.0;
    double k = 0.0;
    int top = 0;
    while (top < 63 && (m >> (top + 1)) != 0) top++;
    for (int b = m ? top : -1; b >= 0; b--) {
        c2 += p * (c2 + 2.0 * k * c1 + k * k * a0);
        c1 += p * (c1 + k * a0);
        a0 += p * a0;
        p *= p;
        k *= 2.0;
        if ((m >> b) & 1u) {
            c2 += k * k * p;
            c1 += k * p;
            a0 += p;
            p *= mu;
            k += 1.0;
        }
    }
    *s0 = a0;
    *s1 = c1;
    *s2 = c2;
    *pw = p;
}

CR_CLONES static void design_gram(const unsigned char *kind, const double complex *lam, size_t M,
                                  size_t nr, double *G, size_t ldg)
{
    const size_t P = cr__design_ncols(&(cr__modal){ .n = M, .kind = (unsigned char *)kind });
    if (nr == 0) {
        for (size_t q = 0; q < 2 * P; q++)
            for (size_t i = 0; i < 2 * P; i++) G[i + q * ldg] = 0.0;
        return;
    }
    size_t pa = 0;
    for (size_t a = 0; a < M; a++) {
        const int ra = kind[a] == CR_MODE_PAIR ? 2 : 1;
        const double complex x = ra == 2 ? lam[a] : creal(lam[a]);
        size_t pb = pa;
        for (size_t b = a; b < M; b++) {
            const int rb = kind[b] == CR_MODE_PAIR ? 2 : 1;
            const double complex y = rb == 2 ? lam[b] : creal(lam[b]);
            /* F = sum_{i<nr} mu^i, G1 = sum i mu^(i-1), G2 = sum i^2 mu^(i-1),
             * at mu1 = x y and mu2 = x conj(y) */
            double complex F[2], G1[2], G2[2];
            const double complex mu[2] = { x * y, x * conj(y) };
            for (int t = 0; t < 2; t++) {
                double complex s0, s1, s2, pw;
                geo_sums(mu[t], nr - 1, &s0, &s1, &s2, &pw);
                F[t] = s0 + pw;
                G1[t] = s1 + s0;
                G2[t] = s2 + 2.0 * s1 + s0;
            }
            for (int u = 0; u < ra; u++) {
                const double complex ap = u ? -I : 1.0;
                for (int v = 0; v < rb; v++) {
                    const double complex aq = v ? -I : 1.0;
                    const double complex k1 = ap * aq, k2 = ap * conj(aq);
                    size_t i = pa + u, j = pb + v;
                    double ff = 0.5 * creal(k1 * F[0] + k2 * F[1]);
                    double fp = 0.5 * creal(k1 * x * G1[0] + k2 * x * G1[1]);
                    double pf = 0.5 * creal(k1 * y * G1[0] + k2 * conj(y) * G1[1]);
                    double pp = 0.5 * creal(k1 * G2[0] + k2 * G2[1]);
                    /* rows/cols: Phi i, j; Psi P + i, P + j */
                    G[i + j * ldg] = G[j + i * ldg] = ff;
                    G[i + (P + j) * ldg] = G[(P + j) + i * ldg] = fp;
                    G[(P + i) + j * ldg] = G[j + (P + i) * ldg] = pf;
                    G[(P + i) + (P + j) * ldg] = G[(P + j) + (P + i) * ldg] = pp;
                }
            }
            pb += rb;
        }
        pa += ra;
    }
}

void cr__design_gram(const unsigned char *kind, const double complex *lam, size_t M, size_t nr,
                     double *G, size_t ldg)
{
    design_gram(kind, lam, M, nr, G, ldg);
}

void cr__tail_gram(size_t P, const double complex *alpha, const double complex *mu, size_t L,
                   double *G, size_t ldg)
{
    size_t e = L ? L - 1 : 0;
    for (size_t p = 0; p < P; p++) {
        for (size_t q = p; q < P; q++) {
            double complex m1 = mu[p] * mu[q], m2 = mu[p] * conj(mu[q]);
            double complex s1 = cr__cpow(m1, e) / (1.0 - m1);
            double complex s2 = cr__cpow(m2, e) / (1.0 - m2);
            double g = 0.5 * creal(alpha[p] * alpha[q] * s1 + alpha[p] * conj(alpha[q]) * s2);
            G[p + q * ldg] = g;
            G[q + p * ldg] = g;
        }
    }
}

cr_status cr__tail_rows(double *G, size_t P, double *R, size_t ldr)
{
    /* Symmetric square root rows R with R^T R = G: eigen-decomposition
     * rather than Cholesky because G is only PSD (often numerically
     * singular when the tail is negligible). */
    double *w = malloc(P * sizeof *w);
    if (!w) return cr__fail(CR_ENOMEM, "tail Gram: out of memory");
    lapack_int info = LAPACKE_dsyev(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)P, G,
                                    (lapack_int)P, w);
    if (info != 0) {
        free(w);
        return cr__fail(CR_ELAPACK, "tail Gram eigen-decomposition failed (info %d)", (int)info);
    }
    for (size_t i = 0; i < P; i++) {
        double s = w[i] > 0.0 ? sqrt(w[i]) : 0.0;
        for (size_t q = 0; q < P; q++) R[i + q * ldr] = s * G[q + i * P];
    }
    free(w);
    return CR_OK;
}

cr_status cr__residues_ls(const double *h, size_t L, cr_horizon horizon,
                          cr__modal *m)
{
    if (!h) return cr__fail(CR_EINVAL, "residues_ls: kernel is NULL");
    if (L == 0) return cr__fail(CR_EINVAL, "residues_ls: kernel length is 0");
    if (horizon != CR_HORIZON_WINDOW && horizon != CR_HORIZON_INFINITE)
        return cr__fail(CR_EINVAL, "residues_ls: invalid horizon %d", (int)horizon);
    cr_status st = cr__modal_check(m);
    if (st != CR_OK) return st;
    for (size_t k = 0; k < L; k++)
        if (!isfinite(h[k])) return cr__fail(CR_ENONFINITE, "residues_ls: kernel has NaN/Inf at %zu", k);
    int inf = horizon == CR_HORIZON_INFINITE;
    if (inf)
        for (size_t j = 0; j < m->n; j++)
            if (hypot(m->pole_re[j], m->kind[j] == CR_MODE_PAIR ? m->pole_im[j] : 0.0) >= 1.0)
                return cr__fail(CR_EUNSTABLE, "residues_ls: pole %zu outside the unit disk, infinite tail", j);

    m->d = h[0];
    for (size_t j = 0; j < m->n; j++) {
        m->res_re[j] = 0.0;
        m->res_im[j] = 0.0;
        if (m->kind[j] == CR_MODE_REAL) m->pole_im[j] = 0.0;
    }
    size_t P = cr__design_ncols(m);
    size_t nw = L - 1;                 /* window rows, k = 1..L-1 */
    size_t rows = nw + (inf ? P : 0);
    if (P == 0 || rows == 0) return CR_OK;
    size_t ld = rows > P ? rows : P;
    size_t nA;
    if (!cr__mul_ok(ld, P, &nA) || nA > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "residues_ls: design matrix too large");

    double *A = calloc(nA, sizeof *A);
    double *b = calloc(ld, sizeof *b);
    double *scale = malloc(P * sizeof *scale);
    double *sv = malloc(P * sizeof *sv);
    double complex *alpha = malloc(P * sizeof *alpha);
    double complex *mu = malloc(P * sizeof *mu);
    double complex *lam = malloc(m->n * sizeof *lam);
    double *G = inf ? malloc(P * P * sizeof *G) : NULL;
    if (!A || !b || !scale || !sv || !alpha || !mu || !lam || (inf && !G)) {
        st = cr__fail(CR_ENOMEM, "residues_ls: out of memory");
        goto done;
    }
    for (size_t j = 0; j < m->n; j++) lam[j] = CMPLX(m->pole_re[j], m->pole_im[j]);
    cr__design_desc(m->kind, lam, m->n, alpha, mu);
    cr__design(m->kind, lam, m->n, nw, A, ld, NULL);
    memcpy(b, h + 1, nw * sizeof *b);
    if (inf) {
        cr__tail_gram(P, alpha, mu, L, G, P);
        st = cr__tail_rows(G, P, A + nw, ld);
        if (st != CR_OK) goto done;
    }
    /* column equilibration, then a rank-revealing SVD solve: nearby poles
     * make the columns nearly dependent */
    for (size_t p = 0; p < P; p++) {
        double s = 0.0;
        const double *col = A + p * ld;
        for (size_t i = 0; i < rows; i++) s += col[i] * col[i];
        s = sqrt(s);
        scale[p] = s > 0.0 ? 1.0 / s : 0.0;
        double *cw = A + p * ld;
        for (size_t i = 0; i < rows; i++) cw[i] *= scale[p];
    }
    lapack_int rank, info = 0;
    size_t nsolve = rows;
    int tri = 0; /* A holds the triangular factor R of a QR */
    if (rows >= 2 * P) {
        /* Tall: QR first, then the SVD solve on R (what dgelsd does for
         * tall matrices anyway), which skips dgelsd's element-by-element
         * NaN-checked norm of the whole design matrix. Same solution. */
        size_t lwork = 64 * (P + 1);
        double *tau = malloc(P * sizeof *tau), *work = malloc(lwork * sizeof *work);
        if (!tau || !work) {
            free(tau);
            free(work);
            st = cr__fail(CR_ENOMEM, "residues_ls: out of memory");
            goto done;
        }
        info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)rows, (lapack_int)P, A,
                                   (lapack_int)ld, tau, work, (lapack_int)lwork);
        if (info == 0)
            info = LAPACKE_dormqr_work(LAPACK_COL_MAJOR, 'L', 'T', (lapack_int)rows, 1,
                                       (lapack_int)P, A, (lapack_int)ld, tau, b, (lapack_int)ld,
                                       work, (lapack_int)lwork);
        free(tau);
        free(work);
        if (info != 0) {
            st = cr__fail(CR_ELAPACK, "residues_ls: QR failed (info %d)", (int)info);
            goto done;
        }
        for (size_t q = 0; q < P; q++)
            for (size_t i = q + 1; i < P; i++) A[i + q * ld] = 0.0;
        nsolve = P;
        tri = 1;
    }
    /* A well-conditioned triangular factor (estimated condition below
     * 1e10, far from dgelsd's rank cut at 1e14) has full numerical rank,
     * and the SVD solve would return its back substitution to rounding:
     * then back substitution, at a small fraction of the cost. */
    double rcond = 0.0;
    int back = tri &&
               LAPACKE_dtrcon(LAPACK_COL_MAJOR, '1', 'U', 'N', (lapack_int)P, A, (lapack_int)ld,
                              &rcond) == 0 &&
               rcond > 1e-10;
    if (back)
        info = LAPACKE_dtrtrs(LAPACK_COL_MAJOR, 'U', 'N', 'N', (lapack_int)P, 1, A, (lapack_int)ld, b,
                              (lapack_int)ld);
    else
        info = LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)nsolve, (lapack_int)P, 1, A,
                              (lapack_int)ld, b, (lapack_int)ld, sv, 1e-14, &rank);
    if (info != 0) {
        st = cr__fail(info < 0 ? CR_ELAPACK : CR_ENOCONV, "residues_ls: %s failed (info %d)",
                      back ? "dtrtrs" : "dgelsd", (int)info);
        goto done;
    }
    size_t p = 0;
    for (size_t j = 0; j < m->n; j++) {
        if (m->kind[j] == CR_MODE_PAIR) {
            /* 2 Re(r z) = (2 r_re) Re z + (-2 r_im) Im z */
            m->res_re[j] = 0.5 * b[p] * scale[p];
            m->res_im[j] = -0.5 * b[p + 1] * scale[p + 1];
            p += 2;
        } else {
            m->res_re[j] = b[p] * scale[p];
            p += 1;
        }
    }
    for (size_t j = 0; j < m->n; j++)
        if (!isfinite(m->res_re[j]) || !isfinite(m->res_im[j])) {
            st = cr__fail(CR_ESINGULAR, "residues_ls: non-finite residues");
            for (size_t i = 0; i < m->n; i++) m->res_re[i] = m->res_im[i] = 0.0;
            break;
        }
done:
    free(A);
    free(b);
    free(scale);
    free(sv);
    free(alpha);
    free(mu);
    free(lam);
    free(G);
    return st;
}

/* ---------------------------------------------------------------------
 * The poles' parametrisation of the refinements (fit.h)
 * --------------------------------------------------------------------- */

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

void cr__theta_to_poles(const cr__pole_param *w, const double *th, double complex *lam,
                           double complex *dl)
{
    size_t p = 0;
    for (size_t j = 0; j < w->M; j++) {
        if (w->kind[j] == CR_MODE_PAIR) {
            double x = th[p], y = th[p + 1], sabs = hypot(x, y), q, dq;
            tanh_ratio(sabs, &q, &dq);
            double complex u = CMPLX(x, y);
            lam[j] = w->rho * q * u;
            if (dl) {
                double ux = sabs > 0 ? x / sabs : 0.0, uy = sabs > 0 ? y / sabs : 0.0;
                dl[p] = w->rho * (q + dq * ux * u);
                dl[p + 1] = w->rho * (I * q + dq * uy * u);
            }
            p += 2;
        } else {
            double t = tanh(th[p]);
            lam[j] = w->rho * t;
            if (dl) dl[p] = w->rho * (1.0 - t * t);
            p += 1;
        }
    }
}

void cr__poles_to_theta(const cr__pole_param *w, const cr__modal *m, double *th)
{
    const double smax = 1.0 - 1e-13;
    size_t p = 0;
    for (size_t j = 0; j < w->M; j++) {
        if (w->kind[j] == CR_MODE_PAIR) {
            double s = hypot(m->pole_re[j], m->pole_im[j]) / w->rho;
            if (s > smax) s = smax;
            double a = atanh(s), phi = atan2(m->pole_im[j], m->pole_re[j]);
            th[p] = a * cos(phi);
            th[p + 1] = a * sin(phi);
            p += 2;
        } else {
            double s = m->pole_re[j] / w->rho;
            if (s > smax) s = smax;
            if (s < -smax) s = -smax;
            th[p] = atanh(s);
            p += 1;
        }
    }
}
