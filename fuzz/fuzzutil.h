/* Shared by the libFuzzer harnesses: the input as a file path (the readers
 * take paths), without touching the disk: a memfd, reopened through
 * /proc/self/fd. And a CHECK that crashes (what libFuzzer reports). */
#ifndef CONVREC_FUZZUTIL_H
#define CONVREC_FUZZUTIL_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                               \
        }                                                                          \
    } while (0)

/* The path of a file holding d[0..n) (the same memfd every call). */
static inline const char *fz_path(const uint8_t *d, size_t n)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("convrec-fuzz", 0);
        CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    CHECK(ftruncate(fd, 0) == 0);
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, d + done, n - done, (off_t)done);
        CHECK(w > 0);
        done += (size_t)w;
    }
    return path;
}

/* A scratch file for round trips, in tmpfs when there is one. */
static inline const char *fz_scratch(const char *ext)
{
    static char p[128];
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(p, sizeof p, "%s/convrec-fuzz-%ld%s", dir, (long)getpid(), ext);
    return p;
}

#endif
