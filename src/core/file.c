/* Atomic file writing shared by every writer in convrec: the data goes to
 * a temporary file in the target's folder, which is renamed over the
 * target only when everything was written. A failing or killed process
 * therefore never leaves a partial file. (Files are not fsync'ed, like
 * numpy.save: durability across power loss is the file system's business.) */
#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open a temporary file beside path; its name is written to tmp. */
FILE *cr__tmpfile_beside(const char *path, char *tmp, size_t cap)
{
    if (snprintf(tmp, cap, "%s.tmp.XXXXXX", path) >= (int)cap) return NULL;
    int fd = mkstemp(tmp);
    if (fd < 0) return NULL;
    mode_t um = umask(0);
    umask(um);
    (void)fchmod(fd, 0666 & ~um);
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        close(fd);
        unlink(tmp);
    }
    return f;
}

/* Flush and close f, then rename tmp over path (atomic against a failing
 * or killed process; not synced to disk, like numpy.save); on any failure the
 * temporary file is removed and the target is left untouched. */
cr_status cr__commit_tmpfile(FILE *f, const char *tmp, const char *path, int ok)
{
    if (ok && fflush(f) != 0) ok = 0;
    if (fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) {
        int e = errno;
        unlink(tmp);
        return cr__fail(CR_EIO, "%s: write failed: %s", path, strerror(e));
    }
    return CR_OK;
}

cr_status cr__write_atomic(const char *path, const void *buf, size_t n)
{
    size_t cap = strlen(path) + 16;
    char *tmp = malloc(cap);
    if (tmp == NULL) return cr__fail(CR_ENOMEM, "%s: out of memory", path);
    FILE *f = cr__tmpfile_beside(path, tmp, cap);
    cr_status st;
    if (f == NULL)
        st = cr__fail(CR_EIO, "%s: cannot create a temporary file in its folder: %s", path, strerror(errno));
    else
        st = cr__commit_tmpfile(f, tmp, path, fwrite(buf, 1, n, f) == n);
    free(tmp);
    return st;
}

/* Big arrays (a 16 MiB bank is 4096 small pages) are mostly page-fault and
 * TLB cost on first touch; with transparent huge pages in madvise mode, a
 * 2 MiB-aligned block advised MADV_HUGEPAGE faults in 2 MiB at a time.
 * posix_memalign keeps the block free()-compatible; the size is rounded up
 * to whole huge pages so the advice covers only memory we own. */
#define CR__HUGE ((size_t)2 << 20)
void *cr__alloc_big(size_t bytes)
{
    if (bytes < CR__HUGE) return malloc(bytes ? bytes : 1);
    if (bytes > SIZE_MAX - CR__HUGE) return NULL;
    size_t n = (bytes + CR__HUGE - 1) & ~(CR__HUGE - 1);
    void *p = NULL;
    if (posix_memalign(&p, CR__HUGE, n) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, n, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    return p;
}
