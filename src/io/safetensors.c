/* A generic reader of safetensors files (io.h): 8-byte little-endian header
 * length N, N bytes of JSON (an object: "__metadata__" -> object of strings,
 * every other key -> {"dtype", "shape", "data_offsets"}), then the data
 * section, which the tensors' byte ranges tile exactly.
 *
 * Everything claimed is checked against the real file before it is
 * trusted: the length before the header is read, every tensor's range
 * before any data is read, and an array's size against CR_MAX_ALLOC before
 * it is allocated. The public cr_safetensors_* calls read one tensor of a
 * checkpoint as float64/float32. */
#include "io/io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
    const char *name;
    cr__st_dtype dt;
    size_t size;
} dtypes[] = {
    {"BOOL", CR__ST_BOOL, 1}, {"U8", CR__ST_U8, 1},   {"I8", CR__ST_I8, 1},
    {"F8_E5M2", CR__ST_F8_E5M2, 1}, {"F8_E4M3", CR__ST_F8_E4M3, 1},
    {"F8_E8M0", CR__ST_F8_E8M0, 1}, {"I16", CR__ST_I16, 2}, {"U16", CR__ST_U16, 2},
    {"F16", CR__ST_F16, 2},   {"BF16", CR__ST_BF16, 2}, {"I32", CR__ST_I32, 4},
    {"U32", CR__ST_U32, 4},   {"F32", CR__ST_F32, 4},   {"I64", CR__ST_I64, 8},
    {"U64", CR__ST_U64, 8},   {"F64", CR__ST_F64, 8},   {"C64", CR__ST_C64, 8},
};

/* Strict UTF-8 (no overlong forms, no surrogates, <= U+10FFFF), as the
 * reference requires of the header. Returns the offset of the first bad
 * byte, or n. */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned min;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) { k = 1; min = 0x80; }
        else if (c >= 0xe0 && c <= 0xef) { k = 2; min = 0x800; }
        else if (c >= 0xf0 && c <= 0xf4) { k = 3; min = 0x10000; }
        else return i;
        if (n - i <= k) return i;
        unsigned cp = c & (0x3f >> k);
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += k + 1;
    }
    return n;
}

/* Strict JSON (RFC 8259) syntax: returns 1 and sets *end past the value,
 * or 0 and sets *end at the first bad byte. Allocates nothing; recursion
 * is replaced by a bounded stack. \u escapes must be well-formed (surrogates
 * in pairs), raw control characters are refused inside strings. */
#define JSON_DEPTH 256 /* a safetensors header needs 3 */
static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}
static int hex4(const unsigned char *s, size_t n, size_t i, unsigned *v)
{
    if (n - i < 4) return 0;
    *v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[i + (size_t)k]);
        if (h < 0) return 0;
        *v = *v << 4 | (unsigned)h;
    }
    return 1;
}
static int json_string(const unsigned char *s, size_t n, size_t *pi)
{
    size_t i = *pi + 1; /* past the quote */
    while (i < n && s[i] != '"') {
        if (s[i] < 0x20) break;
        if (s[i] != '\\') { i++; continue; }
        if (++i >= n) break;
        unsigned u, lo;
        switch (s[i]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            i++;
            continue;
        case 'u':
            if (!hex4(s, n, i + 1, &u)) { *pi = i; return 0; }
            i += 5;
            if (u >= 0xdc00 && u <= 0xdfff) { *pi = i; return 0; } /* lone low surrogate */
            if (u >= 0xd800 && u <= 0xdbff) { /* needs its low half */
                if (n - i < 6 || s[i] != '\\' || s[i + 1] != 'u' || !hex4(s, n, i + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff) { *pi = i; return 0; }
                i += 6;
            }
            continue;
        default:
            *pi = i;
            return 0;
        }
    }
    if (i >= n || s[i] != '"') { *pi = i; return 0; }
    *pi = i + 1;
    return 1;
}
static int json_number(const unsigned char *s, size_t n, size_t *pi)
{
    size_t i = *pi;
#define DIGITS(min)                                                        \
    do {                                                                   \
        size_t d0 = i;                                                     \
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;                   \
        if (i - d0 < (min)) { *pi = i; return 0; }                         \
    } while (0)
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else DIGITS(1);
    if (i < n && s[i] == '.') { i++; DIGITS(1); }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        DIGITS(1);
    }
#undef DIGITS
    *pi = i;
    return 1;
}
static int json_syntax(const unsigned char *s, size_t n, size_t *end)
{
    unsigned char stack[JSON_DEPTH];
    int depth = 0;
    size_t i = 0;
    enum { VALUE, ARR_FIRST, OBJ_FIRST, OBJ_KEY, AFTER } st = VALUE;
#define WS() while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++
#define BAD() do { *end = i; return 0; } while (0)
    for (;;) {
        WS();
        switch (st) {
        case ARR_FIRST:
            if (i < n && s[i] == ']') { i++; depth--; st = AFTER; continue; }
            st = VALUE;
            continue;
        case OBJ_FIRST:
            if (i < n && s[i] == '}') { i++; depth--; st = AFTER; continue; }
            /* fall through */
        case OBJ_KEY:
            if (i >= n || s[i] != '"' || !json_string(s, n, &i)) BAD();
            WS();
            if (i >= n || s[i] != ':') BAD();
            i++;
            st = VALUE;
            continue;
        case VALUE:
            if (i >= n) BAD();
            if (s[i] == '{' || s[i] == '[') {
                if (depth == JSON_DEPTH) BAD();
                stack[depth++] = s[i];
                st = s[i++] == '{' ? OBJ_FIRST : ARR_FIRST;
                continue;
            }
            if (s[i] == '"') { if (!json_string(s, n, &i)) BAD(); }
            else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) { if (!json_number(s, n, &i)) BAD(); }
            else if (n - i >= 4 && memcmp(s + i, "true", 4) == 0) i += 4;
            else if (n - i >= 5 && memcmp(s + i, "false", 5) == 0) i += 5;
            else if (n - i >= 4 && memcmp(s + i, "null", 4) == 0) i += 4;
            else BAD();
            st = AFTER;
            continue;
        case AFTER:
            if (depth == 0) { *end = i; return 1; }
            if (i >= n) BAD();
            if (s[i] == ',') { i++; st = stack[depth - 1] == '{' ? OBJ_KEY : VALUE; continue; }
            if (s[i] == (stack[depth - 1] == '{' ? '}' : ']')) { i++; depth--; continue; }
            BAD();
        }
    }
#undef WS
#undef BAD
}

static int cmp_range(const void *a, const void *b)
{
    const cr__st_tensor *x = *(const cr__st_tensor *const *)a, *y = *(const cr__st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

void cr__st_shape_str(const cr__st_tensor *t, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap == 0) return;
    buf[0] = '\0';
#define PUT(...)                                                                  \
    do {                                                                          \
        int w_ = snprintf(buf + len, cap - len, __VA_ARGS__);                     \
        if (w_ < 0 || (size_t)w_ >= cap - len) return;                            \
        len += (size_t)w_;                                                        \
    } while (0)
    PUT("(");
    for (int i = 0; i < t->ndim; i++)
        PUT("%s%llu", i ? ", " : "", (unsigned long long)t->shape[i]);
    PUT(t->ndim == 1 ? ",)" : ")");
#undef PUT
}

/* ---------------------------------------------------------------------
 * The header's schema, read from the JSON text that json_syntax accepted:
 * so the parser relies on well-formed JSON and checks only the schema.
 * Strings are unescaped in place (never longer than their escaped form)
 * and NUL-terminated at or before their closing quote; names and values
 * point into the header buffer. A handful of allocations per file (cJSON
 * made one or two per JSON node, some ten times the header's size).
 * --------------------------------------------------------------------- */
typedef struct jcur {
    char *s;  /* the header, NUL-terminated */
    size_t n; /* its length */
    size_t i;
} jcur;

static void jws(jcur *c)
{
    while (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r') c->i++;
}

static void put_utf8(char **o, unsigned cp)
{
    unsigned char *u = (unsigned char *)*o;
    if (cp < 0x80) *u++ = (unsigned char)cp;
    else if (cp < 0x800) *u++ = (unsigned char)(0xc0 | cp >> 6), *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    else if (cp < 0x10000)
        *u++ = (unsigned char)(0xe0 | cp >> 12), *u++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f)),
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    else
        *u++ = (unsigned char)(0xf0 | cp >> 18), *u++ = (unsigned char)(0x80 | (cp >> 12 & 0x3f)),
        *u++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f)), *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    *o = (char *)u;
}

/* The string at the cursor (a '"'), unescaped; *nul set if it holds U+0000. */
static char *jstr(jcur *c, int *nul)
{
    const unsigned char *us = (const unsigned char *)c->s;
    size_t i = c->i + 1;
    char *out = c->s + i, *o = out;
    while (c->s[i] != '"') {
        if (c->s[i] != '\\') {
            *o++ = c->s[i++];
            continue;
        }
        char e = c->s[++i];
        unsigned cp, lo;
        switch (e) {
        case 'b': *o++ = '\b'; i++; break;
        case 'f': *o++ = '\f'; i++; break;
        case 'n': *o++ = '\n'; i++; break;
        case 'r': *o++ = '\r'; i++; break;
        case 't': *o++ = '\t'; i++; break;
        case 'u':
            hex4(us, c->n, i + 1, &cp);
            i += 5;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* json_syntax checked the pair */
                hex4(us, c->n, i + 2, &lo);
                i += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0 && nul) *nul = 1;
            put_utf8(&o, cp);
            break;
        default: *o++ = e; i++; break; /* " \ / */
        }
    }
    *o = '\0';
    c->i = i + 1;
    return out;
}

/* Skip the value at the cursor. */
static void jskip(jcur *c)
{
    int depth = 0;
    do {
        char ch = c->s[c->i];
        if (ch == '"') {
            jstr(c, NULL);
        } else if (ch == '{' || ch == '[') {
            depth++;
            c->i++;
        } else if (ch == '}' || ch == ']') {
            depth--;
            c->i++;
        } else if (ch == ',' || ch == ':' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            c->i++;
        } else { /* number or literal */
            while (c->s[c->i] && !strchr(",:}] \t\n\r", c->s[c->i])) c->i++;
        }
    } while (depth > 0);
}

/* A plain non-negative integer (no sign, fraction or exponent) that fits in
 * 64 bits: 1 and the value, else 0 (the cursor is then undefined). */
static int juint(jcur *c, uint64_t *v)
{
    const char *s = c->s;
    size_t i = c->i;
    if (s[i] < '0' || s[i] > '9') return 0;
    uint64_t x = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return 0;
        x = x * 10 + d;
    }
    if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') return 0;
    c->i = i;
    *v = x;
    return 1;
}

/* An array of integers at the cursor into v[0..cap): returns the count, or
 * -1 when it is not such an array (or holds more than cap entries); *bad
 * receives the index of the first bad entry. */
static int juints(jcur *c, uint64_t *v, int cap, int *bad)
{
    *bad = -1;
    if (c->s[c->i] != '[') return -1;
    c->i++;
    jws(c);
    int k = 0;
    if (c->s[c->i] == ']') {
        c->i++;
        return 0;
    }
    for (;;) {
        jws(c);
        if (k == cap) return -1;
        if (!juint(c, &v[k])) {
            *bad = k;
            return -1;
        }
        k++;
        jws(c);
        if (c->s[c->i++] == ']') return k;
    }
}

/* One tensor entry: the value at the cursor, for the tensor named k. */
static cr_status parse_entry(const char *path, jcur *c, const char *k, unsigned flags,
                             cr__st_tensor *t)
{
    if (c->s[c->i] != '{')
        return cr__fail(CR_EFORMAT, "%s: tensor '%s': entry is not an object", path, k);
    c->i++;
    int seen_dt = 0, seen_sh = 0, seen_of = 0;
    jws(c);
    if (c->s[c->i] == '}') c->i++;
    else
        for (;;) {
            jws(c);
            const char *fk = jstr(c, NULL);
            jws(c);
            c->i++; /* ':' */
            jws(c);
            int *seen = strcmp(fk, "dtype") == 0          ? &seen_dt
                        : strcmp(fk, "shape") == 0        ? &seen_sh
                        : strcmp(fk, "data_offsets") == 0 ? &seen_of
                                                          : NULL;
            if (!seen) {
                if (flags & CR__ST_STRICT)
                    return cr__fail(CR_EFORMAT, "%s: tensor '%s': unexpected key '%s'", path, k, fk);
                jskip(c);
            } else {
                if (*seen)
                    return cr__fail(CR_EFORMAT, "%s: tensor '%s': duplicated key '%s'", path, k, fk);
                *seen = 1;
                int bad;
                if (seen == &seen_dt) {
                    if (c->s[c->i] != '"')
                        return cr__fail(CR_EFORMAT, "%s: tensor '%s': dtype is not a string", path, k);
                    t->dtype = jstr(c, NULL);
                } else if (seen == &seen_sh) {
                    int nd = juints(c, t->shape, CR__ST_MAX_DIMS, &bad);
                    if (nd < 0 && bad >= 0)
                        return cr__fail(CR_ESHAPE, "%s: tensor '%s': shape entry %d is not a size",
                                        path, k, bad);
                    if (nd < 0)
                        return cr__fail(CR_ESHAPE,
                                        "%s: tensor '%s': shape is not an array of at most %d sizes",
                                        path, k, CR__ST_MAX_DIMS);
                    t->ndim = nd;
                } else {
                    uint64_t of[2];
                    if (juints(c, of, 2, &bad) != 2)
                        return cr__fail(CR_EFORMAT, "%s: tensor '%s': data_offsets is not [begin, end]",
                                        path, k);
                    t->begin = of[0];
                    t->end = of[1];
                }
            }
            jws(c);
            if (c->s[c->i++] == '}') break;
        }
    if (!seen_dt || !seen_sh || !seen_of)
        return cr__fail(CR_EFORMAT, "%s: tensor '%s': missing '%s'", path, k,
                        !seen_dt ? "dtype" : !seen_sh ? "shape" : "data_offsets");
    t->name = k;
    t->dt = CR__ST_OTHER;
    t->elsize = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(t->dtype, dtypes[i].name) == 0) {
            t->dt = dtypes[i].dt;
            t->elsize = dtypes[i].size;
        }
    if (t->end < t->begin)
        return cr__fail(CR_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                        path, k, (unsigned long long)t->begin, (unsigned long long)t->end);
    /* the claimed byte count, with overflow checks */
    uint64_t count = 1;
    int overflow = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] != 0 && count > UINT64_MAX / t->shape[d]) overflow = 1;
        else count *= t->shape[d];
    }
    if (t->dt == CR__ST_OTHER) {
        t->count = 0; /* unknown element size: only the range is checked */
        return CR_OK;
    }
    if (overflow || count > UINT64_MAX / t->elsize) {
        char shs[160];
        cr__st_shape_str(t, shs, sizeof shs);
        return cr__fail(CR_EOVERFLOW, "%s: tensor '%s': shape %s is absurdly large", path, k, shs);
    }
    t->count = count;
    return CR_OK;
}

/* grow *arr (of *cap elements of size sz) to hold one more than n */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap) return 1;
    size_t nc = *cap ? 2 * *cap : 16;
    if (nc > SIZE_MAX / sz) return 0;
    void *p = realloc(*arr, nc * sz);
    if (!p) return 0;
    *arr = p;
    *cap = nc;
    return 1;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const cr__st_tensor *const *)a)->name, (*(const cr__st_tensor *const *)b)->name);
}

static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp(((const cr__st_meta *)a)->key, ((const cr__st_meta *)b)->key);
}

/* The header (sf->hdr, JSON already checked): entries and metadata; then
 * the ranges against the data section. */
static cr_status parse_header(cr__st_file *sf, unsigned flags)
{
    const char *path = sf->path;
    jcur c = {sf->hdr, strlen(sf->hdr), 0};
    size_t tcap = 0, mcap = 0;
    jws(&c);
    if (c.s[c.i] != '{') return cr__fail(CR_EFORMAT, "%s: header is not a JSON object", path);
    c.i++;
    jws(&c);
    if (c.s[c.i] == '}') c.i++;
    else
        for (;;) {
            jws(&c);
            int nul = 0;
            const char *k = jstr(&c, &nul);
            if (nul) return cr__fail(CR_EFORMAT, "%s: header: an entry name holds a NUL character", path);
            jws(&c);
            c.i++; /* ':' */
            jws(&c);
            if (strcmp(k, "__metadata__") == 0) {
                if (sf->has_meta)
                    return cr__fail(CR_EFORMAT, "%s: header: duplicated entry '__metadata__'", path);
                sf->has_meta = 1;
                if (c.s[c.i] != '{')
                    return cr__fail(CR_EFORMAT, "%s: __metadata__ is not an object", path);
                c.i++;
                jws(&c);
                if (c.s[c.i] == '}') c.i++;
                else
                    for (;;) {
                        jws(&c);
                        const char *mk = jstr(&c, NULL);
                        jws(&c);
                        c.i++;
                        jws(&c);
                        if (c.s[c.i] != '"')
                            return cr__fail(CR_EFORMAT, "%s: __metadata__['%s'] is not a string",
                                            path, mk);
                        if (!grow((void **)&sf->meta, &mcap, sf->nmeta, sizeof *sf->meta))
                            return cr__fail(CR_ENOMEM, "%s: out of memory reading __metadata__", path);
                        sf->meta[sf->nmeta].key = mk;
                        sf->meta[sf->nmeta++].value = jstr(&c, NULL);
                        jws(&c);
                        if (c.s[c.i++] == '}') break;
                    }
            } else {
                if (!grow((void **)&sf->t, &tcap, sf->n, sizeof *sf->t))
                    return cr__fail(CR_ENOMEM, "%s: out of memory for %zu tensors", path, sf->n + 1);
                cr__st_tensor *t = &sf->t[sf->n];
                memset(t, 0, sizeof *t);
                cr_status st = parse_entry(path, &c, k, flags, t);
                if (st != CR_OK) return st;
                sf->n++;
            }
            jws(&c);
            if (c.s[c.i++] == '}') break;
        }

    /* duplicated names (sorted copies: a 100 MB header may hold millions) */
    cr_status st = CR_OK;
    if (sf->n > 1) {
        const cr__st_tensor **ord = malloc(sf->n * sizeof *ord);
        if (!ord) return cr__fail(CR_ENOMEM, "%s: out of memory sorting %zu tensors", path, sf->n);
        for (size_t i = 0; i < sf->n; i++) ord[i] = &sf->t[i];
        qsort(ord, sf->n, sizeof *ord, cmp_tensor_name);
        for (size_t i = 1; i < sf->n && st == CR_OK; i++)
            if (strcmp(ord[i - 1]->name, ord[i]->name) == 0)
                st = cr__fail(CR_EFORMAT, "%s: header: duplicated entry '%s'", path, ord[i]->name);
        free(ord);
        if (st != CR_OK) return st;
    }
    if (sf->nmeta > 1) { /* the order of metadata does not matter: sort in place */
        qsort(sf->meta, sf->nmeta, sizeof *sf->meta, cmp_meta_key);
        for (size_t i = 1; i < sf->nmeta; i++)
            if (strcmp(sf->meta[i - 1].key, sf->meta[i].key) == 0)
                return cr__fail(CR_EFORMAT, "%s: __metadata__: duplicated key '%s'", path,
                                sf->meta[i].key);
    }
    return (flags & CR__ST_DEFER_RANGES) ? CR_OK : cr__st_check_ranges(sf);
}

/* Each range spans its tensor's bytes, and the ranges tile the data
 * section: sorted by begin, each starts where the previous ended, the last
 * ends at the end of the file. */
cr_status cr__st_check_ranges(cr__st_file *sf)
{
    const char *path = sf->path;
    const size_t n = sf->n;
    for (size_t i = 0; i < n; i++) {
        const cr__st_tensor *t = &sf->t[i];
        if (t->dt == CR__ST_OTHER || t->count * t->elsize == t->end - t->begin) continue;
        char shs[160];
        cr__st_shape_str(t, shs, sizeof shs);
        return cr__fail(CR_EFORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] do not span its %llu bytes "
                        "(%s %s)",
                        path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)(t->count * t->elsize), t->dtype, shs);
    }
    uint64_t dlen = sf->size - sf->data_start;
    const cr__st_tensor **ord = malloc((n ? n : 1) * sizeof *ord);
    if (!ord) return cr__fail(CR_ENOMEM, "%s: out of memory sorting %zu tensors", path, n);
    for (size_t i = 0; i < n; i++) ord[i] = &sf->t[i];
    qsort(ord, n, sizeof *ord, cmp_range);
    uint64_t pos = 0;
    cr_status s = CR_OK;
    for (size_t i = 0; i < n && s == CR_OK; i++) {
        if (ord[i]->begin != pos)
            s = cr__fail(CR_EFORMAT,
                         "%s: data_offsets %s at byte %llu (tensor '%s', expected %llu): tensors "
                         "overlap or leave a gap",
                         path, ord[i]->begin < pos ? "overlap" : "leave a gap",
                         (unsigned long long)ord[i]->begin, ord[i]->name, (unsigned long long)pos);
        pos = ord[i]->end;
    }
    free(ord);
    if (s == CR_OK && pos != dlen)
        s = cr__fail(CR_EFORMAT,
                     "%s: tensors cover %llu bytes but the data section has %llu (truncated or "
                     "trailing bytes)",
                     path, (unsigned long long)pos, (unsigned long long)dlen);
    if (s == CR_OK) sf->ranges_ok = 1;
    return s;
}

void cr__st_close(cr__st_file *sf)
{
    if (!sf) return;
    if (sf->f) fclose(sf->f);
    free(sf->hdr);
    free(sf->t);
    free(sf->meta);
    memset(sf, 0, sizeof *sf);
}

cr_status cr__st_open(cr__st_file *sf, const char *path, unsigned flags)
{
    if (!sf) return cr__fail(CR_EINVAL, "safetensors: NULL file");
    memset(sf, 0, sizeof *sf);
    if (!path) return cr__fail(CR_EINVAL, "safetensors: NULL path");
    sf->path = path;
    sf->f = fopen(path, "rb");
    if (!sf->f) return cr__fail(CR_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    cr_status s = CR_OK;
    char *hdr = NULL;
    if (fstat(fileno(sf->f), &st) != 0 || !S_ISREG(st.st_mode)) {
        s = cr__fail(CR_EIO, "%s: not a regular file", path);
        goto fail;
    }
    sf->size = (uint64_t)st.st_size;
    unsigned char pre[8];
    if (sf->size < 8 || fread(pre, 1, 8, sf->f) != 8) {
        s = cr__fail(CR_EFORMAT, "%s: %llu bytes, too short for a safetensors file", path,
                     (unsigned long long)sf->size);
        goto fail;
    }
    uint64_t hl = cr__le64(pre);
    if (hl < 2 || hl > CR__ST_MAX_HEADER || hl > sf->size - 8) {
        s = cr__fail(CR_EFORMAT,
                     "%s: header length %llu is absurd (2 to %llu bytes) or beyond the file size "
                     "%llu",
                     path, (unsigned long long)hl, (unsigned long long)CR__ST_MAX_HEADER,
                     (unsigned long long)sf->size);
        goto fail;
    }
    sf->data_start = 8 + hl;
    hdr = malloc((size_t)hl + 1);
    if (!hdr) {
        s = cr__fail(CR_ENOMEM, "%s: out of memory for the %llu-byte header", path,
                     (unsigned long long)hl);
        goto fail;
    }
    if (fread(hdr, 1, (size_t)hl, sf->f) != (size_t)hl) {
        s = cr__fail(CR_EIO, "%s: read error in the header", path);
        goto fail;
    }
    hdr[hl] = '\0';
    if (hdr[0] != '{') {
        s = cr__fail(CR_EFORMAT, "%s: header is not valid JSON (it must start with '{')", path);
        goto fail;
    }
    size_t bad = utf8_valid((const unsigned char *)hdr, (size_t)hl);
    if (bad != (size_t)hl) {
        s = cr__fail(CR_EFORMAT, "%s: header is not valid UTF-8 (byte %zu)", path, 8 + bad);
        goto fail;
    }
    size_t jend;
    if (!json_syntax((const unsigned char *)hdr, (size_t)hl, &jend)) {
        s = cr__fail(CR_EFORMAT, "%s: header is not valid JSON (at byte %zu)", path, 8 + jend);
        goto fail;
    }
    /* after the JSON only padding (writers pad with spaces to 8 bytes) */
    for (const char *p = hdr + jend; p < hdr + hl; p++)
        if (*p != ' ' && *p != '\0' && *p != '\n' && *p != '\t' && *p != '\r') {
            s = cr__fail(CR_EFORMAT, "%s: trailing garbage after the JSON header (byte %td)", path,
                         8 + (p - hdr));
            goto fail;
        }
    hdr[jend] = '\0';
    sf->hdr = hdr; /* names and values point into it */
    hdr = NULL;
    s = parse_header(sf, flags);
    if (s != CR_OK) goto fail;
    return CR_OK;
fail:
    free(hdr);
    cr__st_close(sf);
    return s;
}

const cr__st_tensor *cr__st_find(const cr__st_file *sf, const char *name)
{
    for (size_t i = 0; sf && name && i < sf->n; i++)
        if (strcmp(sf->t[i].name, name) == 0) return &sf->t[i];
    return NULL;
}

cr_status cr__st_read(const cr__st_file *sf, uint64_t off, size_t n, void *buf)
{
    if (!sf->ranges_ok) /* a programming error: CR__ST_DEFER_RANGES without the check */
        return cr__fail(CR_EINVAL, "%s: tensor ranges not checked before reading", sf->path);
    uint64_t dlen = sf->size - sf->data_start;
    if (off > dlen || n > dlen - off)
        return cr__fail(CR_EINVAL, "%s: read of %zu bytes at %llu beyond the data section", sf->path,
                        n, (unsigned long long)off);
    if (n == 0) return CR_OK;
    uint64_t at = sf->data_start + off;
    if (at > (uint64_t)INT64_MAX || fseeko(sf->f, (off_t)at, SEEK_SET) != 0)
        return cr__fail(CR_EIO, "%s: cannot seek to byte %llu: %s", sf->path,
                        (unsigned long long)at, strerror(errno));
    if (fread(buf, 1, n, sf->f) != n)
        return cr__fail(ferror(sf->f) ? CR_EIO : CR_EFORMAT,
                        "%s: read error at byte %llu (the file shrank while being read?)", sf->path,
                        (unsigned long long)at);
    return CR_OK;
}

/* names sorted for listings and messages */
static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const cr__st_tensor *const *)a)->name, (*(const cr__st_tensor *const *)b)->name);
}

void cr__st_names(const cr__st_file *sf, char *buf, size_t cap)
{
    if (cap == 0) return;
    buf[0] = '\0';
    if (sf->n == 0) {
        snprintf(buf, cap, "(none)");
        return;
    }
    const cr__st_tensor **ord = malloc(sf->n * sizeof *ord);
    size_t len = 0, i = 0;
    for (size_t k = 0; ord && k < sf->n; k++) ord[k] = &sf->t[k];
    if (ord) qsort(ord, sf->n, sizeof *ord, cmp_name);
    const size_t more = 24; /* room kept for ", ... (N more)" */
    for (; i < sf->n; i++) {
        const char *nm = ord ? ord[i]->name : sf->t[i].name;
        size_t need = strlen(nm) + (i ? 2 : 0);
        if (len + need + (i + 1 < sf->n ? more : 0) >= cap) break;
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", nm);
    }
    if (i < sf->n) snprintf(buf + len, cap - len, "%s... (%zu more)", i ? ", " : "", sf->n - i);
    free(ord);
}

/* ---------------------------------------------------------------------
 * Public API: list and read checkpoint tensors
 * --------------------------------------------------------------------- */

size_t cr_max_alloc(void) { return CR_MAX_ALLOC; }

cr_status cr_safetensors_list(const char *path, cr_tensor_info **out, size_t *n)
{
    if (out) *out = NULL;
    if (n) *n = 0;
    if (!path || !out || !n) return cr__fail(CR_EINVAL, "cr_safetensors_list: NULL argument");
    cr__st_file sf;
    cr_status s = cr__st_open(&sf, path, 0);
    if (s != CR_OK) return s;
    /* one block: the entries, then the names (bounded by the header size) */
    size_t names = 0;
    for (size_t i = 0; i < sf.n; i++) names += strlen(sf.t[i].name) + 1;
    size_t bytes = sf.n * sizeof(cr_tensor_info) + names;
    cr_tensor_info *info = malloc(bytes ? bytes : 1);
    const cr__st_tensor **ord = malloc((sf.n ? sf.n : 1) * sizeof *ord);
    if (!info || !ord) {
        free(info);
        free(ord);
        cr__st_close(&sf);
        return cr__fail(CR_ENOMEM, "%s: out of memory listing %zu tensors (%zu bytes)", path, sf.n,
                        bytes);
    }
    for (size_t i = 0; i < sf.n; i++) ord[i] = &sf.t[i];
    qsort(ord, sf.n, sizeof *ord, cmp_name);
    char *str = (char *)(info + sf.n);
    for (size_t i = 0; i < sf.n; i++) {
        const cr__st_tensor *t = ord[i];
        cr_tensor_info *e = &info[i];
        memset(e, 0, sizeof *e);
        size_t l = strlen(t->name) + 1;
        memcpy(str, t->name, l);
        e->name = str;
        str += l;
        snprintf(e->dtype, sizeof e->dtype, "%s", t->dtype);
        e->ndim = t->ndim;
        for (int d = 0; d < CR__ST_MAX_DIMS; d++)
            e->shape[d] = d < t->ndim ? (size_t)t->shape[d] : 1; /* shapes are <= 2^53 */
    }
    free(ord);
    *out = info;
    *n = sf.n;
    cr__st_close(&sf);
    return CR_OK;
}

/* IEEE binary16 -> double, exactly (every half is a double). */
static double half_to_double(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 0x1f;
    unsigned f = h & 0x3ff;
    double v;
    if (e == 0) v = ldexp((double)f, -24); /* zero and subnormals: f 2^-24 */
    else if (e == 31) v = f ? NAN : INFINITY;
    else v = ldexp((double)(f | 0x400), e - 25);
    return sign ? -v : v;
}

/* bfloat16 is the top half of a binary32 */
static float bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static double f32_at(const unsigned char *p)
{
    uint32_t u = cr__le32(p);
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static double f64_at(const unsigned char *p)
{
    uint64_t u = cr__le64(p);
    double x;
    memcpy(&x, &u, 8);
    return x;
}

#define CHUNK ((size_t)1 << 16) /* bytes read per step */

cr_status cr_safetensors_read(const char *path, const char *name, cr_dtype dtype, cr_array *out)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_safetensors_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path || !name) return cr__fail(CR_EINVAL, "cr_safetensors_read: NULL path or name");
    if (dtype != CR_FLOAT64 && dtype != CR_FLOAT32)
        return cr__fail(CR_EINVAL, "cr_safetensors_read: output dtype must be CR_FLOAT64 or CR_FLOAT32");
    cr__st_file sf;
    cr_status s = cr__st_open(&sf, path, 0);
    if (s != CR_OK) return s;
    unsigned char *chunk = NULL;
    const cr__st_tensor *t = cr__st_find(&sf, name);
    if (!t) {
        char list[384];
        cr__st_names(&sf, list, sizeof list);
        s = cr__fail(CR_EINVAL, "%s: no tensor '%s'; the file has %zu: %s", path, name, sf.n, list);
        goto done;
    }
    if (t->dt != CR__ST_F64 && t->dt != CR__ST_F32 && t->dt != CR__ST_F16 && t->dt != CR__ST_BF16) {
        s = cr__fail(CR_EDTYPE, "%s: tensor '%s' has dtype %s; only F64, F32, F16 and BF16 can be read",
                     path, name, t->dtype);
        goto done;
    }
    char shs[160];
    cr__st_shape_str(t, shs, sizeof shs);
    uint64_t C, L;
    if (t->ndim == 1) C = 1, L = t->shape[0];
    else if (t->ndim == 2) C = t->shape[0], L = t->shape[1];
    else if (t->ndim == 3 && t->shape[1] == 1) C = t->shape[0], L = t->shape[2];
    else {
        s = cr__fail(CR_ESHAPE, "%s: tensor '%s' has shape %s; expected (L,), (C, L) or (C, 1, L)",
                     path, name, shs);
        goto done;
    }
    if (C == 0 || L == 0) {
        s = cr__fail(CR_ESHAPE, "%s: tensor '%s' is empty (shape %s)", path, name, shs);
        goto done;
    }
    /* t->count * elsize is the tensor's byte range, already within the file */
    size_t n = (size_t)t->count, osz = (size_t)dtype;
    if (t->count > CR_MAX_ELEMS || n > CR_MAX_ALLOC / osz) {
        s = cr__fail(CR_EOVERFLOW,
                     "%s: tensor '%s' %s would need %llu bytes as %s, above the limit of %zu bytes "
                     "(CR_MAX_ALLOC)",
                     path, name, shs, (unsigned long long)t->count * osz,
                     dtype == CR_FLOAT64 ? "float64" : "float32", (size_t)CR_MAX_ALLOC);
        goto done;
    }
    out->data = cr__alloc_big(n * osz);
    chunk = malloc(CHUNK);
    if (!out->data || !chunk) {
        s = cr__fail(CR_ENOMEM, "%s: out of memory for tensor '%s' (%zu bytes)", path, name, n * osz);
        goto done;
    }
    double *o64 = out->data;
    float *o32 = out->data;
    const size_t es = t->elsize, per = CHUNK / es;
    for (size_t i0 = 0; i0 < n; i0 += per) {
        size_t m = n - i0 < per ? n - i0 : per;
        s = cr__st_read(&sf, t->begin + (uint64_t)i0 * es, m * es, chunk);
        if (s != CR_OK) goto done;
        for (size_t i = 0; i < m; i++) {
            const unsigned char *p = chunk + i * es;
            double v;
            switch (t->dt) {
            case CR__ST_F64: v = f64_at(p); break;
            case CR__ST_F32: v = f32_at(p); break;
            case CR__ST_F16: v = half_to_double(cr__le16(p)); break;
            default: v = bf16_to_float(cr__le16(p)); break;
            }
            if (!isfinite(v)) {
                s = cr__fail(CR_ENONFINITE, "%s: tensor '%s' element %zu is %s", path, name, i0 + i,
                             isnan(v) ? "NaN" : "Inf");
                goto done;
            }
            if (dtype == CR_FLOAT64) {
                o64[i0 + i] = v;
            } else {
                float f = (float)v; /* exact but for F64, rounded to nearest */
                if (!isfinite(f)) {
                    s = cr__fail(CR_EOVERFLOW, "%s: tensor '%s' element %zu = %g is beyond float32",
                                 path, name, i0 + i, v);
                    goto done;
                }
                o32[i0 + i] = f;
            }
        }
    }
    out->dtype = dtype;
    out->ndim = t->ndim == 1 ? 1 : 2;
    out->shape[0] = t->ndim == 1 ? (size_t)L : (size_t)C;
    out->shape[1] = t->ndim == 1 ? 1 : (size_t)L;
    out->shape[2] = 1;
done:
    free(chunk);
    if (s != CR_OK) cr_array_free(out);
    cr__st_close(&sf);
    return s;
}
