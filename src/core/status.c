/* Status codes and the per-thread failure detail. */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char detail[512];

const char *cr_strerror(cr_status s)
{
    switch (s) {
    case CR_OK: return "success";
    case CR_EINVAL: return "invalid argument";
    case CR_ESHAPE: return "mismatched or unsupported shape";
    case CR_EOVERFLOW: return "size overflow or absurd size";
    case CR_ENONFINITE: return "NaN or Inf in input";
    case CR_ENOMEM: return "out of memory";
    case CR_EIO: return "input/output error";
    case CR_EFORMAT: return "malformed file";
    case CR_EDTYPE: return "unsupported data type";
    case CR_EUNSUPPORTED: return "unsupported request";
    case CR_EUNSTABLE: return "unstable model";
    case CR_ENOCONV: return "iteration did not converge";
    case CR_ESINGULAR: return "singular system";
    case CR_ELAPACK: return "LAPACK failure";
    case CR_EPRECISION: return "number format too coarse for the model";
    }
    return "unknown status";
}

const char *cr_error_detail(void) { return detail; }

const char *cr_version(void) { return PACKAGE_VERSION; }

void cr__clear_error(void) { detail[0] = '\0'; }

cr_status cr__fail(cr_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    /* details may quote bytes from a corrupt file: keep them printable */
    for (char *p = detail; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) *p = '?';
    return s;
}
