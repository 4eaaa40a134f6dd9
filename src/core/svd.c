/* A singular value decomposition that does not give up (svd.c).
 *
 * dgesdd (divide and conquer) is the fast SVD, but its bidiagonal solver
 * DBDSDC can fail to converge (info > 0) on some matrices; whether it does
 * can even depend on the BLAS's thread count, which changes the rounding of
 * the blocked bidiagonal reduction (seen on trained Hyena filters, fit with
 * OpenBLAS on 2 threads). dgesvd's QR iteration is slower and converges in
 * those cases, so cr__svd keeps a copy of A and falls back to it. */
#include "core/core.h"

#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

lapack_int cr__svd_qr(char jobz, lapack_int m, lapack_int n, double *A, lapack_int lda, double *s,
                      double *U, lapack_int ldu, double *VT, lapack_int ldvt)
{
    /* dgesdd's jobz in dgesvd's terms; 'O' overwrites A with U when m >= n
     * (V^T returned whole), with V^T when m < n (U returned whole) */
    char ju = jobz, jv = jobz;
    if (jobz == 'O') {
        ju = m >= n ? 'O' : 'A';
        jv = m >= n ? 'A' : 'O';
    }
    lapack_int k = m < n ? m : n;
    double *superb = malloc((size_t)(k > 1 ? k - 1 : 1) * sizeof *superb);
    if (!superb) return LAPACK_WORK_MEMORY_ERROR;
    lapack_int info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, ju, jv, m, n, A, lda, s, U, ldu, VT, ldvt, superb);
    free(superb);
    return info;
}

lapack_int cr__svd(char jobz, lapack_int m, lapack_int n, double *A, lapack_int lda, double *s,
                   double *U, lapack_int ldu, double *VT, lapack_int ldvt)
{
    size_t bytes = (size_t)lda * (size_t)n * sizeof(double);
    double *keep = malloc(bytes);           /* the second try starts from it */
    if (!keep) return LAPACK_WORK_MEMORY_ERROR;
    memcpy(keep, A, bytes);
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, jobz, m, n, A, lda, s, U, ldu, VT, ldvt);
    if (info > 0) {
        memcpy(A, keep, bytes);
        info = cr__svd_qr(jobz, m, n, A, lda, s, U, ldu, VT, ldvt);
    }
    free(keep);
    return info;
}
