/* Small helpers shared by the cmocka tests. Header-only, static. */
#ifndef CONVREC_TESTUTIL_H
#define CONVREC_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deterministic generator (splitmix64) so failures reproduce. */
static inline uint64_t tu_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
/* uniform in [-1, 1) */
static inline double tu_uniform(uint64_t *s)
{
    return (double)(tu_next(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}
static inline double tu_normal(uint64_t *s)
{
    double u1 = (tu_uniform(s) + 1.0) * 0.5, u2 = (tu_uniform(s) + 1.0) * 0.5;
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static inline void tu_fill(double *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) x[i] = tu_uniform(s);
}

/* ||a - b|| / ||b|| (absolute when ||b|| == 0) */
static inline double tu_rel_l2(const double *a, const double *b, size_t n)
{
    long double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        long double d = (long double)a[i] - b[i];
        num += d * d;
        den += (long double)b[i] * b[i];
    }
    return den > 0 ? (double)sqrtl(num / den) : (double)sqrtl(num);
}
static inline double tu_rel_l2f(const float *a, const double *b, size_t n)
{
    long double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        long double d = (long double)a[i] - b[i];
        num += d * d;
        den += (long double)b[i] * b[i];
    }
    return den > 0 ? (double)sqrtl(num / den) : (double)sqrtl(num);
}

/* A fresh scratch folder for files written by a test. */
static inline const char *tu_tmpdir(void)
{
    static char dir[256];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/convrec-test-XXXXXX");
        if (mkdtemp(dir) == NULL) return "/tmp";
    }
    return dir;
}

/* Remove a folder and everything in it (a test's scratch folder; the path
 * is one of tu_tmpdir's, without quotes). 0 on success. */
static inline int tu_rmtree(const char *dir)
{
    char cmd[512];
    if (strchr(dir, '\'') != NULL || snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= (int)sizeof cmd)
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

/* Path of a shared data file, or NULL when the data folder is absent. */
static inline const char *tu_data(const char *rel)
{
    static char path[1024];
#ifdef CR_TEST_DATA_DIR
    const char *dir = getenv("CONVREC_DATA");
    if (dir == NULL) dir = CR_TEST_DATA_DIR;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (access(path, R_OK) == 0) return path;
#else
    (void)rel;
#endif
    return NULL;
}

#endif
