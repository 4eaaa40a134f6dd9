/* Allocation-failure injection (allocfail.h): the --wrap targets. The real
 * functions stay reachable as __real_*, so the sanitizers' allocator (and
 * LeakSanitizer) still see every block that is handed out. */
#include "config.h"

#include "allocfail.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <execinfo.h>
#include <fftw3.h>
#include <lapacke.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Live blocks handed out through the wrappers, by address, so that a test
 * can tell that an operation freed everything it allocated (in any build;
 * LeakSanitizer adds its own check at exit in the ASan build). A fixed
 * open-addressing table: no allocation of its own. */
#define SLOTS ((size_t)1 << 20)
/* addresses are stored XORed with a mask, so that LeakSanitizer does not
 * take the table for references that keep leaked blocks alive */
static uintptr_t table[SLOTS];
#define MASK ((uintptr_t)0xa5a5a5a5a5a5a5a5ULL)
static size_t used; /* slots ever filled (tombstones included) */
static long live;
static int overflow; /* the table filled up: live counts are unknown */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
#define TOMB ((uintptr_t)1)

static size_t slot_of(const void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ULL) & (SLOTS - 1); }

static void track(void *p)
{
    if (!p) return;
    uintptr_t key = (uintptr_t)p ^ MASK;
    pthread_mutex_lock(&table_lock);
    if (used >= SLOTS / 4 * 3) {
        overflow = 1;
    } else {
        size_t i = slot_of(p);
        while (table[i] != 0 && table[i] != TOMB) i = (i + 1) & (SLOTS - 1);
        if (table[i] == 0) used++;
        table[i] = key;
        live++;
    }
    pthread_mutex_unlock(&table_lock);
}

static void untrack(void *p)
{
    if (!p) return;
    uintptr_t key = (uintptr_t)p ^ MASK;
    pthread_mutex_lock(&table_lock);
    for (size_t i = slot_of(p); table[i] != 0; i = (i + 1) & (SLOTS - 1))
        if (table[i] == key) {
            table[i] = TOMB;
            live--;
            break;
        }
    pthread_mutex_unlock(&table_lock);
}

long allocfail_live(void)
{
    pthread_mutex_lock(&table_lock);
    long n = overflow ? -1 : live;
    pthread_mutex_unlock(&table_lock);
    return n;
}

static atomic_long counter;
static atomic_long fail_at = -1;
static atomic_int fired;
static int show_where; /* print where the failure is injected */

void allocfail_arm(long k)
{
    atomic_store(&fail_at, -1);
    atomic_store(&counter, 0);
    atomic_store(&fired, 0);
    atomic_store(&fail_at, k);
}

long allocfail_count(void) { return atomic_load(&counter); }
void allocfail_backtrace(int on) { show_where = on; }
int allocfail_fired(void) { return atomic_load(&fired); }

/* 1 when this call is the one to fail */
static int hit(void)
{
    long i = atomic_fetch_add(&counter, 1);
    if (i != atomic_load(&fail_at)) return 0;
    atomic_store(&fired, 1);
    if (show_where) {
        void *bt[24];
        int n = backtrace(bt, 24);
        fprintf(stderr, "allocfail: allocation %ld fails here:\n", i);
        backtrace_symbols_fd(bt, n, 2);
    }
    return 1;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t m, size_t n);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__real_fftw_malloc(size_t n);
void *__real_fftwf_malloc(size_t n);
void __real_free(void *p);
void __real_fftw_free(void *p);
void __real_fftwf_free(void *p);
void __wrap_free(void *p);
void __wrap_fftw_free(void *p);
void __wrap_fftwf_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t m, size_t n);
void *__wrap_realloc(void *p, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
void *__wrap_fftw_malloc(size_t n);
void *__wrap_fftwf_malloc(size_t n);

void *__wrap_malloc(size_t n)
{
    if (hit()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_malloc(n);
    track(p);
    return p;
}

void *__wrap_calloc(size_t m, size_t n)
{
    if (hit()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_calloc(m, n);
    track(p);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (hit()) {
        errno = ENOMEM;
        return NULL; /* p stays valid: the caller must free it */
    }
    void *q = __real_realloc(p, n);
    if (q || n == 0) untrack(p);
    track(q);
    return q;
}

int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    if (hit()) return ENOMEM;
    int r = __real_posix_memalign(p, a, n);
    if (r == 0) track(*p);
    return r;
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
    if (hit()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_aligned_alloc(a, n);
    track(p);
    return p;
}

void __wrap_free(void *p)
{
    untrack(p);
    __real_free(p);
}

void *__wrap_fftw_malloc(size_t n)
{
    if (hit()) return NULL;
    void *p = __real_fftw_malloc(n);
    track(p);
    return p;
}
void *__wrap_fftwf_malloc(size_t n)
{
    if (hit()) return NULL;
    void *p = __real_fftwf_malloc(n);
    track(p);
    return p;
}
void __wrap_fftw_free(void *p)
{
    untrack(p);
    __real_fftw_free(p);
}
void __wrap_fftwf_free(void *p)
{
    untrack(p);
    __real_fftwf_free(p);
}

/* The LAPACKE drivers convrec calls that allocate a workspace: a failure
 * returns what LAPACKE returns when its malloc fails. */
#define WRAP_LAPACKE(name, params, args)                                       \
    lapack_int __real_LAPACKE_##name params;                                   \
    lapack_int __wrap_LAPACKE_##name params;                                   \
    lapack_int __wrap_LAPACKE_##name params                                    \
    {                                                                          \
        return hit() ? LAPACK_WORK_MEMORY_ERROR : __real_LAPACKE_##name args;  \
    }
WRAP_LAPACKE(dgesdd,
             (int ly, char jobz, lapack_int m, lapack_int n, double *a, lapack_int lda, double *s,
              double *u, lapack_int ldu, double *vt, lapack_int ldvt),
             (ly, jobz, m, n, a, lda, s, u, ldu, vt, ldvt))
WRAP_LAPACKE(dgeev,
             (int ly, char jvl, char jvr, lapack_int n, double *a, lapack_int lda, double *wr,
              double *wi, double *vl, lapack_int ldvl, double *vr, lapack_int ldvr),
             (ly, jvl, jvr, n, a, lda, wr, wi, vl, ldvl, vr, ldvr))
WRAP_LAPACKE(dsyev, (int ly, char jobz, char uplo, lapack_int n, double *a, lapack_int lda, double *w),
             (ly, jobz, uplo, n, a, lda, w))
WRAP_LAPACKE(dsyevd, (int ly, char jobz, char uplo, lapack_int n, double *a, lapack_int lda, double *w),
             (ly, jobz, uplo, n, a, lda, w))
WRAP_LAPACKE(dgelsd,
             (int ly, lapack_int m, lapack_int n, lapack_int nrhs, double *a, lapack_int lda,
              double *b, lapack_int ldb, double *s, double rcond, lapack_int *rank),
             (ly, m, n, nrhs, a, lda, b, ldb, s, rcond, rank))
WRAP_LAPACKE(dgees,
             (int ly, char jobvs, char sort, LAPACK_D_SELECT2 sel, lapack_int n, double *a,
              lapack_int lda, lapack_int *sdim, double *wr, double *wi, double *vs, lapack_int ldvs),
             (ly, jobvs, sort, sel, n, a, lda, sdim, wr, wi, vs, ldvs))
WRAP_LAPACKE(dormqr,
             (int ly, char side, char trans, lapack_int m, lapack_int n, lapack_int k,
              const double *a, lapack_int lda, const double *tau, double *c, lapack_int ldc),
             (ly, side, trans, m, n, k, a, lda, tau, c, ldc))
WRAP_LAPACKE(dgeqrf, (int ly, lapack_int m, lapack_int n, double *a, lapack_int lda, double *tau),
             (ly, m, n, a, lda, tau))

/* cJSON allocates through its hooks, not through convrec's malloc calls */
static void *json_malloc(size_t n) { return __wrap_malloc(n); }
static void json_free(void *p) { __wrap_free(p); }

/* Installed before main: cJSON's allocations are counted, and a binary run
 * with CR_ALLOCFAIL_AT=k in its environment is armed from the start. */
static const char *report_path;
static void report(void)
{
    FILE *f = report_path ? fopen(report_path, "w") : NULL;
    if (f) {
        fprintf(f, "%ld %d\n", allocfail_count(), allocfail_fired());
        fclose(f);
    }
}

__attribute__((constructor)) static void allocfail_init(void)
{
    cJSON_Hooks h = {json_malloc, json_free};
    cJSON_InitHooks(&h);
    const char *at = getenv("CR_ALLOCFAIL_AT");
    report_path = getenv("CR_ALLOCFAIL_REPORT");
    show_where = getenv("CR_ALLOCFAIL_BACKTRACE") != NULL;
    if (at) allocfail_arm(strtol(at, NULL, 10));
    if (report_path) atexit(report);
}
