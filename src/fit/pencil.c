/* Matrix pencil / Kung / TLS-ESPRIT on the window Hankel (MATH.md, "Window
 * objective"). The window Hankel H_w = O R factors through the observability
 * matrix of any exact realization, so its leading left singular vectors
 * U_N span the rows C A^i and are shift invariant: U_N[1:] = U_N[:-1] Psi,
 * with eig(Psi) = the poles. TLS-ESPRIT solves the shift equation with
 * errors on both sides: from the SVD of [U1 U2] (rows (p-1), 2N columns)
 * with right vectors V = [[V11 V12], [V21 V22]], Psi = -V12 V22^-1.
 * Residues and d then come from linear least squares on the window. */
#include "fit/fit.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PENCIL_RANK_TOL 1e-13

/* Psi (N x N) from U (p x N, ld p). */
static cr_status pencil_psi(const double *U, size_t p, size_t N, double *Psi)
{
    size_t rows = p - 1;
    cr_status st = CR_OK;
    if (rows >= 2 * N) {
        /* TLS */
        size_t w = 2 * N;
        double *M = malloc(rows * w * sizeof *M);
        double *sv = malloc(w * sizeof *sv), *VT = malloc(w * w * sizeof *VT);
        double *V22 = malloc(N * N * sizeof *V22);
        lapack_int *ipiv = malloc(N * sizeof *ipiv);
        if (!M || !sv || !VT || !V22 || !ipiv) {
            st = cr__fail(CR_ENOMEM, "fit_pencil: out of memory");
            goto tls_done;
        }
        for (size_t c = 0; c < N; c++) {
            memcpy(M + c * rows, U + c * p, rows * sizeof *M);
            memcpy(M + (N + c) * rows, U + c * p + 1, rows * sizeof *M);
        }
        double dummy = 0;
        /* Only V is needed: reduce to the w x w triangle R of M = QR first
         * (dgesdd would also form the rows x w U), then R = U S V^T. */
        size_t lwork = 64 * (w + 1), svrows = rows;
        double *tau = malloc(w * sizeof *tau), *work = malloc(lwork * sizeof *work);
        lapack_int info = 0;
        if (!tau || !work) {
            free(tau);
            free(work);
            st = cr__fail(CR_ENOMEM, "fit_pencil: out of memory");
            goto tls_done;
        }
        if (rows >= 2 * w) {
            info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)rows, (lapack_int)w, M,
                                       (lapack_int)rows, tau, work, (lapack_int)lwork);
            for (size_t c = 0; c < w; c++)
                for (size_t i = c + 1; i < w; i++) M[i + c * rows] = 0.0;
            svrows = w;
        }
        free(tau);
        free(work);
        if (info == 0)
            info = cr__svd('O', (lapack_int)svrows, (lapack_int)w, M, (lapack_int)rows, sv, &dummy, 1,
                           VT, (lapack_int)w);
        if (info != 0) {
            st = cr__fail(cr__lapack_status(info), "fit_pencil: QR/SVD failed (info %d)", (int)info);
            goto tls_done;
        }
        /* V = VT^T; the last N columns of V: V12 = V[0:N, N:2N], V22 = V[N:2N, N:2N].
         * Psi = -V12 V22^-1  <=>  V22^T Psi^T = -V12^T. */
        for (size_t a = 0; a < N; a++)          /* column a of Psi^T problem */
            for (size_t b = 0; b < N; b++) {
                /* V22^T[b][a'] = V22[a'][b] = V[N+a'][N+b] = VT[(N+b) + (N+a') w] */
                V22[b + a * N] = VT[(N + b) + (N + a) * w];
                /* rhs (-V12^T)[b][a] = -V[a][N+b] = -VT[(N+b) + a w] */
                Psi[b + a * N] = -VT[(N + b) + a * w];
            }
        info = LAPACKE_dgesv(LAPACK_COL_MAJOR, (lapack_int)N, (lapack_int)N, V22, (lapack_int)N,
                             ipiv, Psi, (lapack_int)N);
        if (info < 0) {
            st = cr__fail(CR_ELAPACK, "fit_pencil: dgesv failed (info %d)", (int)info);
        } else if (info > 0) {
            st = CR_ESINGULAR; /* caller falls back to least squares */
        } else {
            /* Psi holds Psi^T: transpose in place */
            for (size_t a = 0; a < N; a++)
                for (size_t b = a + 1; b < N; b++) {
                    double t = Psi[a + b * N];
                    Psi[a + b * N] = Psi[b + a * N];
                    Psi[b + a * N] = t;
                }
        }
    tls_done:
        free(M); free(sv); free(VT); free(V22); free(ipiv);
        if (st != CR_ESINGULAR) return st;
        st = CR_OK;
    }
    /* Least-squares ESPRIT: Psi = pinv(U1) U2 (minimum norm). */
    size_t ldb = rows > N ? rows : N;
    double *U1 = malloc(rows * N * sizeof *U1), *U2 = malloc(ldb * N * sizeof *U2);
    double *sv = malloc(N * sizeof *sv);
    if (!U1 || !U2 || !sv) {
        st = cr__fail(CR_ENOMEM, "fit_pencil: out of memory");
        goto ls_done;
    }
    for (size_t c = 0; c < N; c++) {
        memcpy(U1 + c * rows, U + c * p, rows * sizeof *U1);
        memcpy(U2 + c * ldb, U + c * p + 1, rows * sizeof *U2);
    }
    lapack_int rank;
    lapack_int info = LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)rows, (lapack_int)N, (lapack_int)N,
                                     U1, (lapack_int)rows, U2, (lapack_int)ldb, sv, 1e-14, &rank);
    if (info != 0) {
        st = cr__fail(CR_ELAPACK, "fit_pencil: dgelsd failed (info %d)", (int)info);
        goto ls_done;
    }
    for (size_t c = 0; c < N; c++) memcpy(Psi + c * N, U2 + c * ldb, N * sizeof *Psi);
ls_done:
    free(U1); free(U2); free(sv);
    return st;
}

cr_status cr__pencil_from_svd(const double *h, size_t L, size_t N, double rmax,
                              const cr__hsvd *s, cr__modal *out)
{
    if (h == NULL || s == NULL || out == NULL) return cr__fail(CR_EINVAL, "fit_pencil: NULL argument");
    if (s->U == NULL || s->m != L / 2 || s->n != L - L / 2)
        return cr__fail(CR_EINVAL, "fit_pencil: needs the window Hankel with left vectors");
    if (N > s->k) N = s->k;
    size_t Ne = 0;
    while (Ne < N && s->sigma[Ne] > PENCIL_RANK_TOL * s->sigma[0]) Ne++;
    N = Ne;
    out->n = 0;
    out->d = h[0];
    if (N == 0) return CR_OK;
    if (out->cap < N) return cr__fail(CR_EINVAL, "fit_pencil: modal capacity %zu < order %zu", out->cap, N);
    size_t p = s->m;
    if (p < 2) {
        /* a 1 x q window (L <= 3): a single real mode fits h[1], h[2] */
        out->kind[0] = CR_MODE_REAL;
        out->pole_re[0] = (L == 3 && h[1] != 0) ? h[2] / h[1] : 0.0;
        out->pole_im[0] = out->res_re[0] = out->res_im[0] = 0;
        out->n = 1;
        cr__modal_stabilize(out, rmax, 1.01);
        return cr__residues_ls(h, L, CR_HORIZON_WINDOW, out);
    }
    cr_status st = CR_OK;
    double *Psi = malloc(N * N * sizeof *Psi);
    double *wr = malloc(N * sizeof *wr), *wi = malloc(N * sizeof *wi);
    if (!Psi || !wr || !wi) {
        st = cr__fail(CR_ENOMEM, "fit_pencil: out of memory");
        goto done;
    }
    if ((st = pencil_psi(s->U, p, N, Psi)) != CR_OK) goto done;
    double dummy = 0;
    lapack_int info = LAPACKE_dgeev(LAPACK_COL_MAJOR, 'N', 'N', (lapack_int)N, Psi, (lapack_int)N,
                                    wr, wi, &dummy, 1, &dummy, 1);
    if (info != 0) {
        st = cr__fail(CR_ELAPACK, "fit_pencil: dgeev failed (info %d)", (int)info);
        goto done;
    }
    size_t nm = 0;
    for (size_t j = 0; j < N; j++) {
        out->pole_re[nm] = wr[j];
        out->res_re[nm] = out->res_im[nm] = 0;
        if (wi[j] == 0) {
            out->kind[nm] = CR_MODE_REAL;
            out->pole_im[nm] = 0;
        } else {
            out->kind[nm] = CR_MODE_PAIR;
            out->pole_im[nm] = fabs(wi[j]);
            j++;
        }
        nm++;
    }
    out->n = nm;
    cr__modal_stabilize(out, rmax, 1.01);
    st = cr__residues_ls(h, L, CR_HORIZON_WINDOW, out);
done:
    free(Psi); free(wr); free(wi);
    return st;
}

cr_status cr__fit_pencil(cr__fitctx *c, size_t N, cr__modal *out)
{
    const cr__hsvd *s;
    cr_status st = cr__fitctx_svd(c, CR_HORIZON_WINDOW, N, &s);
    if (st != CR_OK) return st;
    double t0 = c->stats ? cr__fit_clock() : 0.0;
    st = cr__pencil_from_svd(c->h, c->L, N, c->rmax, s, out);
    if (c->stats) c->stats->t_start += cr__fit_clock() - t0;
    return st;
}
