/* Exact balanced truncation of the FIR shift-register realization
 * (MATH.md, "Balanced truncation of an FIR kernel, exactly").
 *
 * The realization (A = down-shift Z, B = e_1, C = h[1:L], D = h[0]) has
 * controllability Gramian I and observability Gramian H^T H = V S^2 V^T,
 * H the zero-padded Hankel. In balanced coordinates x~ = S^(1/2) V^T x:
 *   A_r = S^(1/2) V_N^T Z V_N S^(-1/2),  V_N^T Z V_N = V_N[1:]^T V_N[:-1]
 *   B_r = S^(1/2) V_N[0, :]^T,  C_r = h[1:L] V_N S^(-1/2),  D_r = h[0].
 * A_r is diagonalised (dgeev, left and right vectors); mode m gets residue
 * (C_r w_m)(y_m^H B_r) / (y_m^H w_m). A_r is real N x N, so its modes have
 * real dimension exactly N: a conjugate pair can never be split. */
#include "fit/fit.h"

#include <cblas.h>
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Singular values below this fraction of sigma_1 carry rounding noise
 * only; S^(-1/2) would amplify it. */
#define BT_RANK_TOL 1e-13

cr_status cr__bt_from_svd(const double *h, size_t L, size_t N, double rmax, const cr__hsvd *s,
                          cr__modal *out)
{
    if (h == NULL || s == NULL || out == NULL) return cr__fail(CR_EINVAL, "fit_bt: NULL argument");
    if (s->V == NULL || s->m != L - 1 || s->n != L - 1)
        return cr__fail(CR_EINVAL, "fit_bt: needs the zero-padded Hankel with right vectors");
    if (N > s->k) N = s->k;
    /* numerical rank */
    size_t Ne = 0;
    while (Ne < N && s->sigma[Ne] > BT_RANK_TOL * s->sigma[0]) Ne++;
    N = Ne;
    out->n = 0;
    out->d = h[0];
    if (N == 0) return CR_OK;
    if (out->cap < N) return cr__fail(CR_EINVAL, "fit_bt: modal capacity %zu < order %zu", out->cap, N);

    size_t n = s->n;
    const double *V = s->V;
    cr_status st = CR_OK;
    double *A = malloc(N * N * sizeof *A);
    double *VL = malloc(N * N * sizeof *VL);
    double *VR = malloc(N * N * sizeof *VR);
    double *B = malloc(N * sizeof *B), *C = malloc(N * sizeof *C);
    double *wr = malloc(N * sizeof *wr), *wi = malloc(N * sizeof *wi);
    double *sq = malloc(N * sizeof *sq);
    if (!A || !VL || !VR || !B || !C || !wr || !wi || !sq) {
        st = cr__fail(CR_ENOMEM, "fit_bt: out of memory (order %zu)", N);
        goto done;
    }
    for (size_t a = 0; a < N; a++) sq[a] = sqrt(s->sigma[a]);
    /* A = V[1:]^T V[:-1]  (N x N, column-major) */
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)N, (int)N, (int)(n - 1), 1.0,
                V + 1, (int)n, V, (int)n, 0.0, A, (int)N);
    for (size_t b = 0; b < N; b++)
        for (size_t a = 0; a < N; a++) A[a + b * N] *= sq[a] / sq[b];
    for (size_t a = 0; a < N; a++) {
        B[a] = sq[a] * V[a * n];
        C[a] = cblas_ddot((int)n, h + 1, 1, V + a * n, 1) / sq[a];
    }
    lapack_int info = LAPACKE_dgeev(LAPACK_COL_MAJOR, 'V', 'V', (lapack_int)N, A, (lapack_int)N,
                                    wr, wi, VL, (lapack_int)N, VR, (lapack_int)N);
    if (info != 0) {
        st = cr__fail(CR_ELAPACK, "fit_bt: dgeev failed (info %d)", (int)info);
        goto done;
    }
    int refit = 0;
    size_t nm = 0;
    for (size_t j = 0; j < N; j++) {
        double complex cw = 0, yb = 0, yw = 0;
        double ny = 0, nw = 0;
        if (wi[j] == 0) {
            for (size_t i = 0; i < N; i++) {
                double w = VR[i + j * N], y = VL[i + j * N];
                cw += C[i] * w; yb += y * B[i]; yw += y * w;
                ny += y * y; nw += w * w;
            }
            out->kind[nm] = CR_MODE_REAL;
            out->pole_re[nm] = wr[j];
            out->pole_im[nm] = 0;
        } else {
            /* columns j, j+1 hold re and im of the vectors of wr + i wi */
            for (size_t i = 0; i < N; i++) {
                double complex w = VR[i + j * N] + I * VR[i + (j + 1) * N];
                double complex y = VL[i + j * N] + I * VL[i + (j + 1) * N];
                cw += C[i] * w; yb += conj(y) * B[i]; yw += conj(y) * w;
                ny += creal(y * conj(y)); nw += creal(w * conj(w));
            }
            out->kind[nm] = CR_MODE_PAIR;
            out->pole_re[nm] = wr[j];
            out->pole_im[nm] = wi[j];
            if (wi[j] < 0) { /* keep the representative with pole_im > 0 */
                out->pole_im[nm] = -wi[j];
                cw = conj(cw); yb = conj(yb); yw = conj(yw);
            }
            j++;
        }
        /* a nearly defective A_r makes y^H w tiny: residues would be noise */
        if (cabs(yw) < 1e-10 * sqrt(ny * nw)) refit = 1;
        double complex r = cabs(yw) > 0 ? cw * yb / yw : 0;
        out->res_re[nm] = creal(r);
        out->res_im[nm] = out->kind[nm] == CR_MODE_PAIR ? cimag(r) : 0.0;
        if (!isfinite(out->res_re[nm]) || !isfinite(out->res_im[nm])) refit = 1;
        nm++;
    }
    out->n = nm;
    if (cr__modal_stabilize(out, rmax, 1.0) > 0) refit = 1;
    if (refit) st = cr__residues_ls(h, L, CR_HORIZON_INFINITE, out);
done:
    free(A); free(VL); free(VR); free(B); free(C); free(wr); free(wi); free(sq);
    return st;
}

cr_status cr__fit_bt(cr__fitctx *c, size_t N, cr__modal *out)
{
    const cr__hsvd *s;
    /* N + 1 triplets: the record's sigma_{N+1} comes from the same one */
    cr_status st = cr__fitctx_svd(c, CR_HORIZON_INFINITE, N + 1, &s);
    if (st != CR_OK) return st;
    double t0 = c->stats ? cr__fit_clock() : 0.0;
    st = cr__bt_from_svd(c->h, c->L, N, c->rmax, s, out);
    if (c->stats) c->stats->t_start += cr__fit_clock() - t0;
    return st;
}
