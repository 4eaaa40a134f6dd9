/* The core module (src/core): status details, size checks, atomic files and
 * big allocations, shared by every other module of libconvrec. It includes
 * nothing but the public header. Not installed. */
#ifndef CONVREC_CORE_H
#define CONVREC_CORE_H

#include "config.h"
#include "convrec.h"
#include <complex.h>
#include <stddef.h>
#include <stdint.h>

/* Hot loops get an AVX2+FMA clone picked at load time (ifunc), unless the
 * whole build already targets such a CPU (--enable-native) or runs under
 * a sanitizer. The clones round differently (FMA): results agree to the
 * last bits, not bitwise, across CPUs. Static functions only: GCC gives
 * the resolver of an external clone default visibility despite
 * -fvisibility=hidden (an internal symbol in the ABI); an external entry
 * point calls a cloned static body. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(__AVX2__) && !defined(__SANITIZE_ADDRESS__)
#define CR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CR_CLONES
#endif

/* C11's CMPLX(x, y) builds x + iy from its parts without arithmetic, so
 * that a signed zero or an infinity in either part survives (x + I * y does
 * not: I * inf is NaN + i inf, and 0.0 + I * -0.0 loses the sign). glibc
 * defines CMPLX and CMPLXF only for GCC >= 4.7 (__GNUC_PREREQ), which clang
 * (reporting __GNUC__ 4.2) is not, so under clang every CMPLX call became an
 * undefined reference. Define them for every compiler here, the one place
 * every module includes: from the compiler builtin when there is one (clang,
 * and what glibc uses under GCC), else through a union, which stores the
 * two parts as they are (C11 6.2.5p13: a complex is laid out as double[2]). */
#if !defined(CMPLX) || !defined(CMPLXF)
#if defined(__has_builtin)
#if __has_builtin(__builtin_complex)
#define CR__HAVE_BUILTIN_COMPLEX 1
#endif
#endif
#if !defined(CR__HAVE_BUILTIN_COMPLEX) && defined(__GNUC__) && !defined(__clang__) && \
    (__GNUC__ > 4 || (__GNUC__ == 4 && __GNUC_MINOR__ >= 7))
#define CR__HAVE_BUILTIN_COMPLEX 1
#endif
#ifdef CR__HAVE_BUILTIN_COMPLEX
#ifndef CMPLX
#define CMPLX(x, y) __builtin_complex((double)(x), (double)(y))
#endif
#ifndef CMPLXF
#define CMPLXF(x, y) __builtin_complex((float)(x), (float)(y))
#endif
#else
static inline double complex cr__cmplx(double x, double y)
{
    union { double complex z; double part[2]; } u = {.part = {x, y}};
    return u.z;
}
static inline float complex cr__cmplxf(float x, float y)
{
    union { float complex z; float part[2]; } u = {.part = {x, y}};
    return u.z;
}
#ifndef CMPLX
#define CMPLX(x, y) cr__cmplx((double)(x), (double)(y))
#endif
#ifndef CMPLXF
#define CMPLXF(x, y) cr__cmplxf((float)(x), (float)(y))
#endif
#endif
#endif

/* Record a failure: sets the thread's detail message (printf-style) and
 * returns s, so that call sites read `return cr__fail(CR_EINVAL, "...")`. */
cr_status cr__fail(cr_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Clear the thread's detail message. */
void cr__clear_error(void);

/* Largest element count a single array may have (2^40 doubles = 8 TiB):
 * anything above is rejected as absurd before any allocation. */
#define CR_MAX_ELEMS ((size_t)1 << 40)

/* a * b with overflow check; returns 0 on overflow. */
static inline int cr__mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* The status of a failed LAPACKE call: LAPACKE returns -1010 / -1011
 * (LAPACK_WORK_MEMORY_ERROR, LAPACK_TRANSPOSE_MEMORY_ERROR) when its own
 * workspace malloc fails, which is CR_ENOMEM, not a LAPACK failure. */
static inline cr_status cr__lapack_status(long info)
{
    return info == -1010 || info == -1011 ? CR_ENOMEM : CR_ELAPACK;
}

/* The SVD of the m x n column-major A (svd.c), with dgesdd's arguments
 * (jobz 'N', 'S', 'A' or 'O'; A is destroyed or overwritten as dgesdd does):
 * dgesdd, and when it does not converge (info > 0), dgesvd's QR iteration
 * on a copy of A kept for that. Returns the LAPACK info. cr__svd_qr is the
 * QR-iteration path alone, with the same arguments. */
#include <lapacke.h>
lapack_int cr__svd(char jobz, lapack_int m, lapack_int n, double *A, lapack_int lda, double *s,
                   double *U, lapack_int ldu, double *VT, lapack_int ldvt);
lapack_int cr__svd_qr(char jobz, lapack_int m, lapack_int n, double *A, lapack_int lda, double *s,
                      double *U, lapack_int ldu, double *VT, lapack_int ldvt);

/* Atomic file writing (file.c): open a temporary file beside path (its
 * name goes to tmp), write, then cr__commit_tmpfile(f, tmp, path, ok) syncs,
 * closes and renames it over path, or removes it when ok == 0 or anything
 * failed. Returns NULL / CR_EIO with errno-based detail on failure. */
#include <stdio.h>
FILE *cr__tmpfile_beside(const char *path, char *tmp, size_t cap);
cr_status cr__commit_tmpfile(FILE *f, const char *tmp, const char *path, int ok);
/* Write n bytes of buf to path atomically, in one go. */
cr_status cr__write_atomic(const char *path, const void *buf, size_t n);
/* malloc for big arrays (file.c): free()-compatible; blocks of 2 MiB and
 * more are 2 MiB-aligned and asked to use transparent huge pages. */
void *cr__alloc_big(size_t bytes);

#endif
