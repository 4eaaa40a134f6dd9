/* Glover's optimal Hankel-norm approximation (Glover 1984, Theorem 6.3;
 * Zhou, Doyle & Glover, "Robust and Optimal Control", ch. 8) of an FIR
 * kernel, through an intermediate order-K projection in continuous time.
 *
 * 1. The FIR shift-register realization (A = Z, B = e_1, C = h[1:L],
 *    D = h[0]) is mapped to continuous time by the bilinear transform
 *    z = (1 + s) / (1 - s):
 *      A_c = (I + Z)^-1 (Z - I) = I - 2 (I + Z)^-1,  B_c = sqrt2 (I + Z)^-1 e_1,
 *      C_c = sqrt2 C (I + Z)^-1,  D_c = D - C (I + Z)^-1 e_1,
 *    with (I + Z)^-1 the alternating lower-triangular Toeplitz matrix.
 *    The Gramians are unchanged (controllability I, observability
 *    V S^2 V^T), so are the Hankel singular values and the H-inf norm.
 * 2. Galerkin projection on the K leading right Hankel singular vectors V
 *    (orthonormal): A = V^T A_c V, B = V^T B_c, C = C_c V. Because
 *    A_c + A_c^T + B_c B_c^T = 0 holds for the full system, the projected
 *    one keeps controllability Gramian I exactly, whatever the accuracy
 *    of V; its observability Gramian Q is solved for (Bartels-Stewart),
 *    Q = W S^2 W^T, and x_b = S^(1/2) W^T x balances it exactly. The
 *    projection error is that of balanced truncation at order K,
 *    <= 2 sum_{i>K} sigma_i in H-inf, negligible for K well beyond N.
 * 3. Glover's all-pass dilation at sigma = sigma_{N+1} (block of the
 *    values equal to it, u = +-1 with B_2 = -C_2^T u):
 *      Gam = S_1^2 - sigma^2 I,
 *      Ah = Gam^-1 (sigma^2 A_11^T + S_1 A_11 S_1 - sigma C_1^T u B_1^T)
 *      Bh = Gam^-1 (S_1 B_1 + sigma C_1^T u),  Ch = C_1 S_1 + sigma u B_1^T,
 *      Dh = D - sigma u;
 *    G - Gh is sigma times an all-pass, and the stable part of Gh has
 *    McMillan degree N when sigma_N > sigma_{N+1}.
 * 4. The stable modes p (residue rho) map back to discrete time:
 *    rho / (s - p) = rho / (1 - p) + r z^-1 / (1 - lambda z^-1) with
 *    lambda = (1 + p) / (1 - p), r = 2 rho / (1 - p)^2.
 */
#include "fit/fit.h"

#include <cblas.h>
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Intermediate order: K = min(L - 1, max(2N + 20, N + 30)). */
#define GL_EXTRA_MUL 2
#define GL_EXTRA_ADD 20
#define GL_EXTRA_MIN 30
/* Balanced states with sigma below this fraction of sigma_1 are rounding
 * noise: S^(-1/2) would amplify it. */
#define GL_RANK_TOL 1e-12
/* Hankel singular values within this relative distance of sigma_{N+1}
 * form one block (multiplicity): Gam would be nearly singular. */
#define GL_BLOCK_TOL 1e-7

size_t cr__hna_glover_order(size_t L, size_t N)
{
    size_t K = GL_EXTRA_MUL * N + GL_EXTRA_ADD;
    if (K < N + GL_EXTRA_MIN) K = N + GL_EXTRA_MIN;
    return K < L - 1 ? K : L - 1;
}

/* Lyapunov A^T Q + Q A + c^T c = 0 for stable A (K x K, column-major),
 * row vector c: Schur form, then LAPACK's triangular Sylvester solver.
 * A is overwritten. */
static cr_status lyap_obs(double *A, const double *c, size_t K, double *Q, double *U,
                          double *wr, double *wi, double *tmp)
{
    lapack_int sdim = 0;
    lapack_int info = LAPACKE_dgees(LAPACK_COL_MAJOR, 'V', 'N', NULL, (lapack_int)K, A,
                                    (lapack_int)K, &sdim, wr, wi, U, (lapack_int)K);
    if (info != 0) return cr__fail(CR_ELAPACK, "hna: dgees failed (info %d)", (int)info);
    /* ct = c U; RHS -ct^T ct */
    for (size_t j = 0; j < K; j++) tmp[j] = cblas_ddot((int)K, c, 1, U + j * K, 1);
    for (size_t j = 0; j < K; j++)
        for (size_t i = 0; i < K; i++) Q[i + j * K] = -tmp[i] * tmp[j];
    double scale = 1.0;
    info = LAPACKE_dtrsyl(LAPACK_COL_MAJOR, 'T', 'N', 1, (lapack_int)K, (lapack_int)K, A,
                          (lapack_int)K, A, (lapack_int)K, Q, (lapack_int)K, &scale);
    if (info < 0) return cr__fail(CR_ELAPACK, "hna: dtrsyl failed (info %d)", (int)info);
    if (!(scale > 0.0)) return cr__fail(CR_ESINGULAR, "hna: Lyapunov equation is singular");
    /* Q = U X U^T / scale, reusing A as workspace */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)K, (int)K, (int)K, 1.0 / scale,
                U, (int)K, Q, (int)K, 0.0, A, (int)K);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)K, (int)K, (int)K, 1.0, A, (int)K,
                U, (int)K, 0.0, Q, (int)K);
    for (size_t j = 0; j < K; j++)
        for (size_t i = j + 1; i < K; i++) {
            double a = 0.5 * (Q[i + j * K] + Q[j + i * K]);
            Q[i + j * K] = Q[j + i * K] = a;
        }
    return CR_OK;
}

cr_status cr__hna_glover(const double *h, size_t L, size_t N, double rho_max, cr__modal *out,
                         size_t *moved)
{
    if (!h || !out || !moved) return cr__fail(CR_EINVAL, "hna: NULL argument");
    if (L < 3 || N == 0 || N >= L - 1)
        return cr__fail(CR_EINVAL, "hna: Glover needs 1 <= N < L - 1 (N %zu, L %zu)", N, L);
    *moved = 0;
    size_t K = cr__hna_glover_order(L, N);
    const size_t n = L - 1;
    cr__hsvd s;
    /* Vectors need only span a good subspace (the projected system is
     * rebalanced exactly), so the convergence test is loose. */
    size_t need = N + 1 < K ? N + 1 : K;
    const cr__hsvd_req req = { K, need, 1, 1e-12, 1e-3, CR__HSVD_AUTO, 0.0 };
    cr_status st = cr__hankel_svd(h, L, CR_HORIZON_INFINITE, &req, &s);
    if (st != CR_OK) return st;
    if (s.k < K) K = s.k;

    size_t K2 = K * K;
    double *Y = malloc(n * K * sizeof *Y);
    double *A = malloc(K2 * sizeof *A), *A2 = malloc(K2 * sizeof *A2);
    double *Q = malloc(K2 * sizeof *Q), *U = malloc(K2 * sizeof *U);
    double *T = malloc(K2 * sizeof *T);
    double *B = malloc(K * sizeof *B), *C = malloc(K * sizeof *C);
    double *Bb = malloc(K * sizeof *Bb), *Cb = malloc(K * sizeof *Cb);
    double *wr = malloc(K * sizeof *wr), *wi = malloc(K * sizeof *wi);
    double *sg = malloc(K * sizeof *sg), *tmp = malloc((n > K ? n : K) * sizeof *tmp);
    size_t *idx = malloc(K * sizeof *idx);
    if (!Y || !A || !A2 || !Q || !U || !T || !B || !C || !Bb || !Cb || !wr || !wi || !sg ||
        !tmp || !idx) {
        st = cr__fail(CR_ENOMEM, "hna: out of memory (intermediate order %zu)", K);
        goto done;
    }

    /* Y = (I + Z)^-1 V: alternating running sums */
    for (size_t j = 0; j < K; j++) {
        const double *v = s.V + j * n;
        double *y = Y + j * n;
        double acc = 0.0;
        for (size_t i = 0; i < n; i++) {
            acc = v[i] - acc;
            y[i] = acc;
        }
    }
    /* A = I - 2 V^T Y; B = sqrt2 V^T a, a_i = (-1)^i; C = sqrt2 h[1:]^T Y */
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)K, (int)K, (int)n, -2.0, s.V,
                (int)n, Y, (int)n, 0.0, A, (int)K);
    for (size_t j = 0; j < K; j++) A[j + j * K] += 1.0;
    double Dc = h[0];
    for (size_t i = 0; i < n; i++) {
        tmp[i] = (i & 1u) ? -1.0 : 1.0;
        Dc -= tmp[i] * h[i + 1];
    }
    cblas_dgemv(CblasColMajor, CblasTrans, (int)n, (int)K, M_SQRT2, s.V, (int)n, tmp, 1, 0.0, B, 1);
    cblas_dgemv(CblasColMajor, CblasTrans, (int)n, (int)K, M_SQRT2, Y, (int)n, h + 1, 1, 0.0, C, 1);

    /* exact observability Gramian of the projection, then balance */
    memcpy(A2, A, K2 * sizeof *A);
    if ((st = lyap_obs(A2, C, K, Q, U, wr, wi, tmp)) != CR_OK) goto done;
    lapack_int info = LAPACKE_dsyev(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)K, Q, (lapack_int)K, wr);
    if (info != 0) {
        st = cr__fail(CR_ELAPACK, "hna: dsyev failed (info %d)", (int)info);
        goto done;
    }
    /* descending: W column j = Q column K-1-j; sigma = sqrt(eigenvalue) */
    size_t Kr = 0;
    double s1 = sqrt(fmax(wr[K - 1], 0.0));
    for (size_t j = 0; j < K; j++) {
        sg[j] = sqrt(fmax(wr[K - 1 - j], 0.0));
        if (sg[j] > GL_RANK_TOL * s1) Kr = j + 1;
    }
    if (Kr <= N) {
        /* numerically of order <= N: truncation is already exact */
        st = cr__bt_from_svd(h, L, N, rho_max, &s, out);
        goto done;
    }
    /* W_r (K x Kr) in U; AW = A W_r (K x Kr) in A2 */
    for (size_t j = 0; j < Kr; j++) memcpy(U + j * K, Q + (K - 1 - j) * K, K * sizeof *U);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)K, (int)Kr, (int)K, 1.0, A,
                (int)K, U, (int)K, 0.0, A2, (int)K);
    /* T = S^(1/2) W^T A W S^(-1/2) (Kr x Kr, ld Kr) */
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)Kr, (int)Kr, (int)K, 1.0, U,
                (int)K, A2, (int)K, 0.0, T, (int)Kr);
    for (size_t j = 0; j < Kr; j++) {
        double sj = sqrt(sg[j]);
        Bb[j] = sj * cblas_ddot((int)K, U + j * K, 1, B, 1);
        Cb[j] = cblas_ddot((int)K, U + j * K, 1, C, 1) / sj;
        for (size_t i = 0; i < Kr; i++) T[i + j * Kr] *= sqrt(sg[i]) / sj;
    }

    /* Glover at sigma = sigma_{N+1}: the block of values equal to it */
    double sig = sg[N];
    size_t k = N;
    while (k > 0 && sg[k - 1] - sig <= GL_BLOCK_TOL * sig) k--;
    size_t e = N + 1;
    while (e < Kr && sig - sg[e] <= GL_BLOCK_TOL * sig) e++;
    size_t r = e - k, n1 = Kr - r;
    /* u = +-1 from B_2 = -C_2^T u (least squares over the block) */
    double cb = 0.0;
    for (size_t i = k; i < e; i++) cb += Cb[i] * Bb[i];
    double u = cb > 0.0 ? -1.0 : 1.0;
    /* index map of block 1 (every state outside the block, in order) */
    for (size_t i = 0, q = 0; i < Kr; i++)
        if (i < k || i >= e) idx[q++] = i;
    /* Ah in A (n1 x n1, ld n1), Bh in B, Ch in C */
    for (size_t jj = 0; jj < n1; jj++) {
        size_t j = idx[jj];
        for (size_t ii = 0; ii < n1; ii++) {
            size_t i = idx[ii];
            double gam = sg[i] * sg[i] - sig * sig;
            double v = sig * sig * T[j + i * Kr] + sg[i] * T[i + j * Kr] * sg[j] -
                       sig * Cb[i] * u * Bb[j];
            A[ii + jj * n1] = v / gam;
        }
    }
    double Dh = Dc - sig * u;
    for (size_t ii = 0; ii < n1; ii++) {
        size_t i = idx[ii];
        double gam = sg[i] * sg[i] - sig * sig;
        B[ii] = (sg[i] * Bb[i] + sig * Cb[i] * u) / gam;
        C[ii] = Cb[i] * sg[i] + sig * u * Bb[i];
    }
    /* modes of Ah: left and right eigenvectors (VL in Q, VR in U) */
    info = LAPACKE_dgeev(LAPACK_COL_MAJOR, 'V', 'V', (lapack_int)n1, A, (lapack_int)n1, wr, wi,
                         Q, (lapack_int)n1, U, (lapack_int)n1);
    if (info != 0) {
        st = cr__fail(CR_ELAPACK, "hna: dgeev failed (info %d)", (int)info);
        goto done;
    }
    size_t nm = 0, dim = 0;
    double dd = Dh;
    for (size_t j = 0; j < n1; j++) {
        int pair = wi[j] != 0.0;
        double complex p = CMPLX(wr[j], pair ? fabs(wi[j]) : 0.0);
        if (!(wr[j] < 0.0)) {
            if (pair) j++;
            continue; /* anti-stable part */
        }
        double complex cw = 0, yb = 0, yw = 0;
        for (size_t i = 0; i < n1; i++) {
            double complex w = pair ? CMPLX(U[i + j * n1], U[i + (j + 1) * n1]) : U[i + j * n1];
            double complex y = pair ? CMPLX(Q[i + j * n1], Q[i + (j + 1) * n1]) : Q[i + j * n1];
            if (pair && wi[j] < 0.0) { /* representative with Im p > 0 */
                w = conj(w);
                y = conj(y);
            }
            cw += C[i] * w;
            yb += conj(y) * B[i];
            yw += conj(y) * w;
        }
        double complex rho = cabs(yw) > 0.0 ? cw * yb / yw : 0.0;
        double complex lam = (1.0 + p) / (1.0 - p), rd = 2.0 * rho / ((1.0 - p) * (1.0 - p));
        double complex dc = rho / (1.0 - p);
        if (dim + (pair ? 2u : 1u) > N || nm >= out->cap) {
            st = cr__fail(CR_ENOCONV, "hna: Glover stable part exceeds order %zu", N);
            goto done;
        }
        out->kind[nm] = pair ? CR_MODE_PAIR : CR_MODE_REAL;
        out->pole_re[nm] = creal(lam);
        out->pole_im[nm] = pair ? cimag(lam) : 0.0;
        out->res_re[nm] = creal(rd);
        out->res_im[nm] = pair ? cimag(rd) : 0.0;
        dd += pair ? 2.0 * creal(dc) : creal(dc);
        if (!isfinite(out->res_re[nm]) || !isfinite(out->res_im[nm]) || !isfinite(dd)) {
            st = cr__fail(CR_ENOCONV, "hna: non-finite Glover residue");
            goto done;
        }
        double a = hypot(out->pole_re[nm], out->pole_im[nm]);
        if (a > rho_max) { /* keep the frequency, clip the radius */
            out->pole_re[nm] *= rho_max / a;
            out->pole_im[nm] *= rho_max / a;
            ++*moved;
        }
        nm++;
        dim += pair ? 2 : 1;
        if (pair) j++;
    }
    out->n = nm;
    out->d = dd;
    st = CR_OK;
done:
    cr__hsvd_free(&s);
    free(Y); free(A); free(A2); free(Q); free(U); free(T); free(B); free(C); free(Bb); free(Cb);
    free(wr); free(wi); free(sg); free(tmp); free(idx);
    return st;
}
