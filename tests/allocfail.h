/* Allocation-failure injection for tests (allocfail.c).
 *
 * A binary linked with allocfail.c and $(ALLOCFAIL_WRAP) (-Wl,--wrap=...)
 * routes every allocation that convrec's own code makes (malloc, calloc,
 * realloc, posix_memalign, aligned_alloc, fftw_malloc, fftwf_malloc, and
 * cJSON's, through its hooks) through a counter, and the LAPACKE drivers
 * that allocate their workspace too (an injected failure there returns
 * LAPACK_WORK_MEMORY_ERROR, as a failed malloc inside LAPACKE does).
 * allocfail_arm(k) makes the k-th such call from then on fail (k = 0 the
 * first); the others succeed. Frees are wrapped too (free, fftw_free,
 * fftwf_free), so live blocks are counted. Allocations inside other libraries (FFTW's
 * planner, OpenBLAS, the C library) are not counted.
 *
 * Thread-safe (atomic counter); with several threads the k-th call is
 * whichever comes k-th, so tests run single-threaded for reproducible k.
 *
 * In a command-line binary the environment arms it: CR_ALLOCFAIL_AT=k, and
 * CR_ALLOCFAIL_REPORT=FILE receives the number of calls made at exit.
 * CR_ALLOCFAIL_BACKTRACE=1 prints a backtrace where the failure is injected
 * (resolve it with addr2line -e BINARY). */
#ifndef CONVREC_TESTS_ALLOCFAIL_H
#define CONVREC_TESTS_ALLOCFAIL_H

/* The k-th counted call from now fails (k >= 0); k < 0 disarms. Resets the
 * count. */
void allocfail_arm(long k);
/* Counted calls since the last arm. */
long allocfail_count(void);
/* Whether the armed failure has happened since the last arm. */
int allocfail_fired(void);
/* Blocks allocated through the wrappers and not yet freed (-1: too many to
 * track). An operation that returns with the same count leaked nothing. */
long allocfail_live(void);
/* Print a backtrace where the failure is injected (on != 0). */
void allocfail_backtrace(int on);

/* The output folder of an allocation test: how many entries it holds
 * besides . and .. (the first one's name into first, when given), and
 * emptying it between runs. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static inline int allocfail_dir_entries(const char *dir, char *first, size_t cap)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            if (n++ == 0 && first) snprintf(first, cap, "%s", e->d_name);
    if (d) closedir(d);
    return n;
}
static inline void allocfail_dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
}

#endif
