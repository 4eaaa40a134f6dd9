/* The io module (src/io): .npy arrays (npy.c) and a generic reader of
 * safetensors files (safetensors.c), used by the model file and by the
 * public checkpoint API. Uses core only. Not installed.
 *
 * The safetensors reader validates in the order that bounds its cost by the
 * real file, never by what the file claims: the 8-byte header length first
 * (at most CR__ST_MAX_HEADER and within the file), then the JSON header
 * (read whole, checked as strict JSON, then read entry by entry without a
 * JSON tree), then every tensor's dtype,
 * shape and byte range against each other and against the real data
 * section, which they must tile exactly (as the reference implementation
 * requires). Only then is tensor data read, and only the bytes asked for.
 * Nothing but the header is allocated by cr__st_open. */
#ifndef CONVREC_IO_H
#define CONVREC_IO_H

#include "core/core.h"

#include <stdint.h>
#include <stdio.h>

/* The reference implementation (huggingface/safetensors) refuses headers
 * above 100 MB. */
#define CR__ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* Most dimensions a tensor may have here. */
#define CR__ST_MAX_DIMS 8

/* The dtypes of the safetensors format with a whole-byte element size.
 * Others (sub-byte types of newer writers) are CR__ST_OTHER: their byte
 * ranges are still checked for the tiling, not against the shape. */
typedef enum cr__st_dtype {
    CR__ST_OTHER = 0,
    CR__ST_BOOL, CR__ST_U8, CR__ST_I8, CR__ST_F8_E5M2, CR__ST_F8_E4M3, CR__ST_F8_E8M0,
    CR__ST_I16, CR__ST_U16, CR__ST_F16, CR__ST_BF16,
    CR__ST_I32, CR__ST_U32, CR__ST_F32,
    CR__ST_I64, CR__ST_U64, CR__ST_F64, CR__ST_C64
} cr__st_dtype;

typedef struct cr__st_tensor {
    const char *name;   /* the header's key (valid while the file is open) */
    const char *dtype;  /* the dtype string as written */
    cr__st_dtype dt;
    size_t elsize;      /* bytes per element; 0 for CR__ST_OTHER */
    int ndim;           /* 0 .. CR__ST_MAX_DIMS */
    uint64_t shape[CR__ST_MAX_DIMS];
    uint64_t count;     /* product of the shape (0 for CR__ST_OTHER) */
    uint64_t begin, end;/* byte range in the data section, end exclusive */
} cr__st_tensor;

/* One __metadata__ entry (strings unescaped, in the header buffer). */
typedef struct cr__st_meta {
    const char *key, *value;
} cr__st_meta;

typedef struct cr__st_file {
    const char *path;       /* as given to open (not copied) */
    FILE *f;
    uint64_t size;          /* file size */
    uint64_t data_start;    /* 8 + header length */
    char *hdr;              /* the header; names and strings point into it */
    int has_meta;           /* __metadata__ present */
    size_t nmeta;           /* its entries, sorted by key */
    cr__st_meta *meta;
    size_t n;               /* tensors, in header order */
    cr__st_tensor *t;
    int ranges_ok;          /* cr__st_check_ranges passed: data may be read */
} cr__st_file;

/* Open flags. CR__ST_STRICT also refuses keys other than dtype, shape and
 * data_offsets in a tensor entry (the reference ignores them).
 * CR__ST_DEFER_RANGES leaves the byte ranges unchecked, so that a caller
 * with a schema (the model file) can first report a wrong shape as such;
 * it must then call cr__st_check_ranges, and cr__st_read refuses to read
 * until it has passed. */
#define CR__ST_STRICT 1u
#define CR__ST_DEFER_RANGES 2u

/* Open and validate path (above); on failure *sf is zeroed, nothing is
 * left open, and the detail names the file and the problem. */
cr_status cr__st_open(cr__st_file *sf, const char *path, unsigned flags);
/* Every tensor's range spans its dtype and shape, and the ranges tile the
 * data section exactly (open does this unless CR__ST_DEFER_RANGES). */
cr_status cr__st_check_ranges(cr__st_file *sf);
/* Closes and zeroes; takes a zeroed struct too. */
void cr__st_close(cr__st_file *sf);
/* The tensor called name, or NULL. */
const cr__st_tensor *cr__st_find(const cr__st_file *sf, const char *name);
/* Read n bytes at byte off of the data section into buf (off + n within the
 * data section: CR_EINVAL otherwise). */
cr_status cr__st_read(const cr__st_file *sf, uint64_t off, size_t n, void *buf);
/* "a, b, c" (the tensor names in header order) into buf, shortened with
 * "... (N more)" to fit cap; for error messages. */
void cr__st_names(const cr__st_file *sf, char *buf, size_t cap);
/* "(2, 3, 4)" into buf. */
void cr__st_shape_str(const cr__st_tensor *t, char *buf, size_t cap);

/* Little-endian decoding, independent of the host's byte order. */
static inline uint64_t cr__le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static inline uint32_t cr__le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t cr__le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

#endif
