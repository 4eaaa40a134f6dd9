/* The core module (src/core): status details, size checks, atomic files and
 * big allocations, shared by every other module of libconvrec. It includes
 * nothing but the public header. Not installed. */
#ifndef CONVREC_CORE_H
#define CONVREC_CORE_H

#include "config.h"
#include "convrec.h"
#include <stddef.h>
#include <stdint.h>

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
