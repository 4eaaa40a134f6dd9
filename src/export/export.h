/* The export module (src/export): generated C filters (float, double and
 * fixed point), second-order sections, JSON. Uses core and model. Not
 * installed. This header holds what export.c (float C, SOS, JSON) and
 * fixed.c (Q31 / Q15 C) share. */
#ifndef CONVREC_EXPORT_H
#define CONVREC_EXPORT_H

#include "core/core.h"
#include "model/model.h"

#include <stddef.h>

/* A growable text buffer: generated files are built in memory, then
 * written atomically. oom latches the first allocation failure; every
 * later printf is a no-op, so callers check once at the end. */
typedef struct cr__sbuf {
    char *p;
    size_t n, cap;
    int oom;
} cr__sbuf;

void cr__sb_printf(cr__sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* NAME must be a C identifier of at most 64 characters. */
int cr__export_valid_name(const char *s);
/* NULL model or non-finite pole / residue: CR_EINVAL / CR_ENONFINITE. */
cr_status cr__export_check_model(const cr_model *m, const char *who);
/* NAME in upper case into up (>= 65 bytes; name already validated). */
void cr__export_upper(const char *name, char *up);
/* Write DIR/NAME.h = h and DIR/NAME.c = c, each atomically; when the
 * second write fails the first file is removed (no half export). Frees
 * both buffers; an out-of-memory buffer gives CR_ENOMEM. */
cr_status cr__export_write_pair(const char *dir, const char *name, cr__sbuf *h, cr__sbuf *c,
                                const char *who);

/* The fixed-point C export (fixed.c): cr_export_c_ex for CR_NUMERIC_Q31
 * and CR_NUMERIC_Q15; the arguments are already validated. */
cr_status cr__export_c_fixed(const cr_model *m, const char *dir, const char *name,
                             const cr_export_options *o, cr_export_report *rep);

#endif
