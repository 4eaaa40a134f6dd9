/* A singular value decomposition that does not give up (svd.c).
 *
 * dgesdd (divide and conquer) is the fast SVD, but its bidiagonal solver
 * DBDSDC can fail to converge (info > 0) on some matrices; whether it does
 * can even depend on the BLAS's thread count, which changes the rounding of
 * the blocked bidiagonal reduction (seen on trained Hyena filters, fit with
 * OpenBLAS on 2 threads). dgesdd can also report success (info 0) with
 * NaN in the vectors: Debian's OpenBLAS 0.3.21 does so for the 62 x 62
 * triangular factor in tests/data/dgesdd_nan_62x62.f64 (from the matrix
 * pencil of a trained Hyena filter at order 31), all singular values
 * finite. dgesvd's QR iteration is slower and gets both cases right, so
 * cr__svd keeps a copy of A and falls back to it when dgesdd fails or
 * returns anything non-finite. */
#include "core/core.h"

#include <lapacke.h>
#include <math.h>
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

/* every entry of the rows x cols block at X (leading dimension ld) finite */
static int block_finite(const double *X, lapack_int rows, lapack_int cols, lapack_int ld)
{
    for (lapack_int c = 0; c < cols; c++)
        for (lapack_int i = 0; i < rows; i++)
            if (!isfinite(X[i + (size_t)c * (size_t)ld])) return 0;
    return 1;
}

/* what dgesdd wrote for jobz is finite */
static int outputs_finite(char jobz, lapack_int m, lapack_int n, const double *A, lapack_int lda,
                          const double *s, const double *U, lapack_int ldu, const double *VT,
                          lapack_int ldvt)
{
    lapack_int k = m < n ? m : n;
    if (!block_finite(s, k, 1, k)) return 0;
    switch (jobz) {
    case 'A': return block_finite(U, m, m, ldu) && block_finite(VT, n, n, ldvt);
    case 'S': return block_finite(U, m, k, ldu) && block_finite(VT, k, n, ldvt);
    case 'O':
        return m >= n ? block_finite(A, m, n, lda) && block_finite(VT, n, n, ldvt)
                      : block_finite(U, m, m, ldu) && block_finite(A, m, n, lda);
    default: return 1;
    }
}

lapack_int cr__svd(char jobz, lapack_int m, lapack_int n, double *A, lapack_int lda, double *s,
                   double *U, lapack_int ldu, double *VT, lapack_int ldvt)
{
    size_t bytes = (size_t)lda * (size_t)n * sizeof(double);
    double *keep = malloc(bytes);           /* the second try starts from it */
    if (!keep) return LAPACK_WORK_MEMORY_ERROR;
    memcpy(keep, A, bytes);
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, jobz, m, n, A, lda, s, U, ldu, VT, ldvt);
    if (info > 0 || (info == 0 && !outputs_finite(jobz, m, n, A, lda, s, U, ldu, VT, ldvt))) {
        memcpy(A, keep, bytes);
        info = cr__svd_qr(jobz, m, n, A, lda, s, U, ldu, VT, ldvt);
    }
    free(keep);
    return info;
}
