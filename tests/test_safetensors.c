/* The safetensors reader (src/io/safetensors.c) and the model loader on top
 * of it: small files built here byte by byte for every readable dtype (F16
 * and BF16 values against their exact binary expansions), every shape rule,
 * each kind of malformed container, the memory limit, and defect 4: a huge
 * sparse file with a bogus header must be refused at once, without reading
 * or allocating its size. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "convrec.h"
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <sys/resource.h>
#include <time.h>

static char *tpath(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tu_tmpdir(), name);
    return p;
}

/* A tensor for st_write: dtype, shape (ndim < 0: "shape" left out), raw
 * little-endian bytes. extra: more JSON for the entry (e.g. ",\"x\":1"). */
typedef struct tens {
    const char *name, *dtype;
    int ndim;
    size_t shape[4];
    const void *data;
    size_t nbytes;
    const char *extra;
} tens;

/* Write a safetensors file: header with the tensors back to back in the
 * given order; meta is the __metadata__ JSON object text or NULL. Returns
 * the file size. */
static size_t st_write(const char *path, const tens *t, int n, const char *meta)
{
    char hdr[8192];
    size_t len = 0, off = 0;
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "{");
    if (meta) len += (size_t)snprintf(hdr + len, sizeof hdr - len, "\"__metadata__\":%s", meta);
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(hdr + len, sizeof hdr - len, "%s\"%s\":{\"dtype\":\"%s\"",
                                (i || meta) ? "," : "", t[i].name, t[i].dtype);
        if (t[i].ndim >= 0) {
            len += (size_t)snprintf(hdr + len, sizeof hdr - len, ",\"shape\":[");
            for (int d = 0; d < t[i].ndim; d++)
                len += (size_t)snprintf(hdr + len, sizeof hdr - len, "%s%zu", d ? "," : "",
                                        t[i].shape[d]);
            len += (size_t)snprintf(hdr + len, sizeof hdr - len, "]");
        }
        len += (size_t)snprintf(hdr + len, sizeof hdr - len, ",\"data_offsets\":[%zu,%zu]%s}", off,
                                off + t[i].nbytes, t[i].extra ? t[i].extra : "");
        off += t[i].nbytes;
    }
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "}");
    while (len % 8) hdr[len++] = ' ';
    assert_true(len < sizeof hdr);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char pre[8];
    for (int i = 0; i < 8; i++) pre[i] = (unsigned char)((uint64_t)len >> (8 * i));
    assert_int_equal(fwrite(pre, 1, 8, f), 8);
    assert_int_equal(fwrite(hdr, 1, len, f), len);
    for (int i = 0; i < n; i++)
        if (t[i].nbytes) assert_int_equal(fwrite(t[i].data, 1, t[i].nbytes, f), t[i].nbytes);
    fclose(f);
    return 8 + len + off;
}

/* Raw bytes of a file, patched: the first occurrence of from becomes to
 * (same length); returns 1 when found. */
static int patch_file(const char *path, const char *from, const char *to)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf, f);
    size_t fl = strlen(from);
    assert_int_equal(fl, strlen(to));
    for (size_t i = 0; i + fl <= n; i++)
        if (memcmp(buf + i, from, fl) == 0) {
            fseek(f, (long)i, SEEK_SET);
            fwrite(to, 1, fl, f);
            fclose(f);
            return 1;
        }
    fclose(f);
    return 0;
}

static void expect_read(const char *path, const char *name, cr_dtype dt, cr_status want,
                        const char *part)
{
    cr_array a;
    cr_status s = cr_safetensors_read(path, name, dt, &a);
    if (s != want || (part && !strstr(cr_error_detail(), part)))
        fail_msg("read '%s': got %d (%s), want %d with '%s'", name, s, cr_error_detail(), want,
                 part ? part : "");
    if (s != CR_OK) assert_null(a.data);
    else cr_array_free(&a);
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A sparse file of `size` bytes starting with `head`; 0 if the file
 * system refuses. */
static int sparse_file(const char *path, const void *head, size_t n, off_t size)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) return 0;
    int ok = write(fd, head, n) == (ssize_t)n && ftruncate(fd, size) == 0;
    close(fd);
    if (!ok) unlink(path);
    return ok;
}

/* Defect 4: cr_model_load read the whole file before looking at its header:
 * a 1 GiB sparse file with a bogus header cost a second and 1 GiB of memory
 * (3 GiB: 18 s). Now it is refused from its first 8 bytes. This test runs
 * first, so that the peak resident size still measures only this. */
static void test_huge_bogus_file(void **st)
{
    (void)st;
    const off_t G = (off_t)1 << 30;
    const char *p = tpath("huge.safetensors");
    /* 1: header length beyond 100 MB */
    unsigned char head[64] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
    if (!sparse_file(p, head, 8, G)) skip();
    long rss0 = maxrss_kib();
    double t0 = now();
    cr_model *m = (cr_model *)1;
    assert_int_equal(cr_model_load(&m, p), CR_EFORMAT);
    assert_null(m);
    assert_non_null(strstr(cr_error_detail(), "header length"));
    cr_tensor_info *info = (cr_tensor_info *)1;
    size_t n = 7;
    assert_int_equal(cr_safetensors_list(p, &info, &n), CR_EFORMAT);
    assert_null(info);
    assert_int_equal(n, 0);
    expect_read(p, "x", CR_FLOAT64, CR_EFORMAT, "header length");
    /* 2: a plausible length (1 MB) whose bytes are zeros: not JSON */
    head[0] = 0x40, head[1] = 0x42, head[2] = 0x0f, head[3] = 0;
    assert_true(sparse_file(p, head, 8, G));
    assert_int_equal(cr_model_load(&m, p), CR_EFORMAT);
    /* 3: a valid header whose one tensor claims the whole sparse file */
    char js[128];
    int jl = snprintf(js, sizeof js,
                      "{\"w\":{\"dtype\":\"F64\",\"shape\":[%lld],\"data_offsets\":[0,%lld]}}",
                      (long long)((G - 128) / 8), (long long)(G - 128));
    assert_true(jl <= 120);
    unsigned char hdr[128];
    memset(hdr, ' ', sizeof hdr);
    memcpy(hdr + 8, js, (size_t)jl);
    for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)((uint64_t)120 >> (8 * i));
    assert_true(sparse_file(p, hdr, 128, G));
    assert_int_equal(cr_model_load(&m, p), CR_EFORMAT); /* not a model: refused by schema */
    assert_non_null(strstr(cr_error_detail(), "unexpected tensor 'w'"));
    assert_int_equal(cr_safetensors_list(p, &info, &n), CR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(info[0].shape[0], (size_t)((G - 128) / 8));
    free(info);
    double dt = now() - t0;
    long grew = maxrss_kib() - rss0;
    print_message("huge bogus files refused in %.3f s, peak RSS grew by %ld KiB\n", dt, grew);
    assert_true(dt < 1.0);
    assert_true(grew < 64 * 1024);
    unlink(p);
}

/* Every readable dtype, converted exactly. */
static void test_dtypes(void **st)
{
    (void)st;
    const char *p = tpath("dtypes.safetensors");
    /* F16 bit patterns and their exact values */
    static const uint16_t h16[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00,
                                   0x3c01, 0xc000, 0x7bff, 0x3555, 0xfbff, 0x8001};
    const double h16v[] = {0.0,    -0.0,          0x1p-24,  1023 * 0x1p-24,
                           0x1p-14, 1.0,          1.0 + 0x1p-10, -2.0,
                           65504.0, 0.333251953125, -65504.0, -0x1p-24};
    /* BF16: the top halves of binary32 values */
    static const uint16_t b16[] = {0x3f80, 0xc040, 0x3eaa, 0x0001, 0x7f7f, 0x8000};
    const double b16v[] = {1.0, -3.0, 0.33203125, 0x1p-133, 0x1.fep127, -0.0};
    const float f32v[] = {0.1f, -1e-30f, 3.5f, 16777217.0f, 1e38f, -0.0f};
    const double f64v[] = {0.1, -1e-300, 1.0 / 3.0, 1e38, -2.5, 0x1.fffffffffffffp-1};
    unsigned char bh[sizeof h16], bb[sizeof b16], bf[sizeof f32v], bd[sizeof f64v];
    for (size_t i = 0; i < 12; i++) bh[2 * i] = (unsigned char)h16[i], bh[2 * i + 1] = (unsigned char)(h16[i] >> 8);
    for (size_t i = 0; i < 6; i++) bb[2 * i] = (unsigned char)b16[i], bb[2 * i + 1] = (unsigned char)(b16[i] >> 8);
    for (size_t i = 0; i < 6; i++) {
        uint32_t u;
        memcpy(&u, &f32v[i], 4);
        for (int k = 0; k < 4; k++) bf[4 * i + k] = (unsigned char)(u >> (8 * k));
        uint64_t v;
        memcpy(&v, &f64v[i], 8);
        for (int k = 0; k < 8; k++) bd[8 * i + k] = (unsigned char)(v >> (8 * k));
    }
    tens t[] = {
        {"half", "F16", 2, {3, 4}, bh, sizeof bh, NULL},
        {"bf", "BF16", 1, {6}, bb, sizeof bb, NULL},
        {"single", "F32", 3, {2, 1, 3}, bf, sizeof bf, NULL},
        {"double", "F64", 2, {6, 1}, bd, sizeof bd, NULL},
    };
    st_write(p, t, 4, "{\"format\":\"pt\"}");
    cr_array a;
    /* F16 -> float64 and float32: exact */
    assert_int_equal(cr_safetensors_read(p, "half", CR_FLOAT64, &a), CR_OK);
    assert_int_equal(a.dtype, CR_FLOAT64);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 3);
    assert_int_equal(a.shape[1], 4);
    for (int i = 0; i < 12; i++) {
        double v = ((double *)a.data)[i];
        assert_true(v == h16v[i] && !signbit(v) == !signbit(h16v[i]));
    }
    cr_array_free(&a);
    assert_int_equal(cr_safetensors_read(p, "half", CR_FLOAT32, &a), CR_OK);
    for (int i = 0; i < 12; i++) {
        float v = ((float *)a.data)[i];
        assert_true((double)v == h16v[i] && !signbit(v) == !signbit(h16v[i]));
    }
    cr_array_free(&a);
    /* BF16 */
    assert_int_equal(cr_safetensors_read(p, "bf", CR_FLOAT64, &a), CR_OK);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 6);
    for (int i = 0; i < 6; i++) {
        double v = ((double *)a.data)[i];
        assert_true(v == b16v[i] && !signbit(v) == !signbit(b16v[i]));
    }
    cr_array_free(&a);
    assert_int_equal(cr_safetensors_read(p, "bf", CR_FLOAT32, &a), CR_OK);
    for (int i = 0; i < 6; i++) assert_true((double)((float *)a.data)[i] == b16v[i]);
    cr_array_free(&a);
    /* F32: (C, 1, L) is a conv1d weight, read as (C, L) */
    assert_int_equal(cr_safetensors_read(p, "single", CR_FLOAT64, &a), CR_OK);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 2);
    assert_int_equal(a.shape[1], 3);
    for (int i = 0; i < 6; i++) assert_true(((double *)a.data)[i] == (double)f32v[i]);
    cr_array_free(&a);
    assert_int_equal(cr_safetensors_read(p, "single", CR_FLOAT32, &a), CR_OK);
    assert_memory_equal(a.data, f32v, sizeof f32v);
    cr_array_free(&a);
    /* F64 to float64 bit for bit, to float32 rounded to nearest */
    assert_int_equal(cr_safetensors_read(p, "double", CR_FLOAT64, &a), CR_OK);
    assert_int_equal(a.shape[0], 6);
    assert_int_equal(a.shape[1], 1);
    assert_memory_equal(a.data, f64v, sizeof f64v);
    cr_array_free(&a);
    assert_int_equal(cr_safetensors_read(p, "double", CR_FLOAT32, &a), CR_OK);
    for (int i = 0; i < 6; i++) assert_true(((float *)a.data)[i] == (float)f64v[i]);
    cr_array_free(&a);

    /* the listing: sorted by name, dtypes and shapes as written */
    cr_tensor_info *info;
    size_t n;
    assert_int_equal(cr_safetensors_list(p, &info, &n), CR_OK);
    assert_int_equal(n, 4);
    const char *names[] = {"bf", "double", "half", "single"};
    const char *dts[] = {"BF16", "F64", "F16", "F32"};
    const int nds[] = {1, 2, 2, 3};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(info[i].name, names[i]);
        assert_string_equal(info[i].dtype, dts[i]);
        assert_int_equal(info[i].ndim, nds[i]);
    }
    assert_int_equal(info[3].shape[0], 2);
    assert_int_equal(info[3].shape[1], 1);
    assert_int_equal(info[3].shape[2], 3);
    assert_int_equal(info[3].shape[3], 1);
    free(info);

    /* a missing name lists the tensors present */
    expect_read(p, "weight", CR_FLOAT64, CR_EINVAL, "no tensor 'weight'");
    expect_read(p, "weight", CR_FLOAT64, CR_EINVAL, "bf, double, half, single");
    expect_read(p, "half", CR_FLOAT64 + 1, CR_EINVAL, "dtype");
    expect_read(p, NULL, CR_FLOAT64, CR_EINVAL, NULL);
    expect_read(NULL, "half", CR_FLOAT64, CR_EINVAL, NULL);
    assert_int_equal(cr_safetensors_read(p, "half", CR_FLOAT64, NULL), CR_EINVAL);
    assert_int_equal(cr_safetensors_list(p, NULL, &n), CR_EINVAL);
    expect_read(tpath("nonexistent.safetensors"), "x", CR_FLOAT64, CR_EIO, "nonexistent");
}

/* Values and shapes that are refused, and dtypes that are not read. */
static void test_refusals(void **st)
{
    (void)st;
    const char *p = tpath("refuse.safetensors");
    unsigned char inf16[4] = {0x00, 0x3c, 0x00, 0x7c}, nan16[2] = {0x00, 0x7e};
    unsigned char nanbf[2] = {0xc0, 0x7f};
    double big = 1e300;
    int64_t i64[2] = {1, 2};
    float f6[6] = {1, 2, 3, 4, 5, 6};
    unsigned char four[3] = {0x12, 0x34, 0x56};
    tens t[] = {
        {"inf16", "F16", 1, {2}, inf16, 4, NULL},
        {"nan16", "F16", 1, {1}, nan16, 2, NULL},
        {"nanbf", "BF16", 1, {1}, nanbf, 2, NULL},
        {"big", "F64", 1, {1}, &big, 8, NULL},
        {"ints", "I64", 1, {2}, i64, 16, NULL},
        {"c2", "F32", 3, {1, 2, 3}, f6, 24, NULL},
        {"rank4", "F32", 4, {1, 1, 2, 3}, f6, 24, NULL},
        {"scalar", "F32", 0, {0}, f6, 4, NULL},
        {"empty", "F32", 2, {0, 5}, NULL, 0, NULL},
        {"fp4", "F4", 1, {6}, four, 3, NULL}, /* sub-byte: range only */
        {"extra", "F32", 1, {2}, f6, 8, ",\"note\":\"kept\""},
    };
    st_write(p, t, 11, NULL);
    expect_read(p, "inf16", CR_FLOAT64, CR_ENONFINITE, "element 1 is Inf");
    expect_read(p, "nan16", CR_FLOAT32, CR_ENONFINITE, "NaN");
    expect_read(p, "nanbf", CR_FLOAT64, CR_ENONFINITE, "NaN");
    expect_read(p, "big", CR_FLOAT64, CR_OK, NULL);
    expect_read(p, "big", CR_FLOAT32, CR_EOVERFLOW, "beyond float32");
    expect_read(p, "ints", CR_FLOAT64, CR_EDTYPE, "I64");
    expect_read(p, "fp4", CR_FLOAT64, CR_EDTYPE, "F4");
    expect_read(p, "c2", CR_FLOAT64, CR_ESHAPE, "(1, 2, 3)");
    expect_read(p, "rank4", CR_FLOAT64, CR_ESHAPE, "expected (L,), (C, L) or (C, 1, L)");
    expect_read(p, "scalar", CR_FLOAT64, CR_ESHAPE, "()");
    expect_read(p, "empty", CR_FLOAT64, CR_ESHAPE, "empty");
    /* unknown keys in an entry are ignored, as by the reference reader */
    expect_read(p, "extra", CR_FLOAT32, CR_OK, NULL);
}

/* Malformed containers: each refused with its own message. */
static void test_container(void **st)
{
    (void)st;
    const char *p = tpath("bad.safetensors");
    double d3[3] = {1, 2, 3}, d2[2] = {4, 5};
    tens good[] = {{"a", "F64", 1, {3}, d3, 24, NULL}, {"b", "F64", 1, {2}, d2, 16, NULL}};
#define FRESH() st_write(p, good, 2, "{\"k\":\"v\"}")
    size_t n = FRESH();
    expect_read(p, "b", CR_FLOAT64, CR_OK, NULL);
    /* truncated, trailing bytes, too short */
    assert_int_equal(truncate(p, (off_t)n - 1), 0);
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "truncated or trailing");
    FRESH();
    FILE *f = fopen(p, "ab");
    fputc(0, f);
    fclose(f);
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "truncated or trailing");
    assert_int_equal(truncate(p, 7), 0);
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "too short");
    /* header length 1, and beyond the file */
    FRESH();
    f = fopen(p, "r+b");
    fputc(1, f);
    fclose(f);
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "header length 1 ");
    FRESH();
    f = fopen(p, "r+b");
    fseek(f, 1, SEEK_SET);
    fputc(0x10, f);
    fclose(f);
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "beyond the file size");
    /* JSON: not starting with '{', broken, not UTF-8, trailing garbage */
    FRESH();
    assert_true(patch_file(p, "{\"__metadata__\"", "[\"__metadata__\""));
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "must start with '{'");
    FRESH();
    assert_true(patch_file(p, "\"dtype\":\"F64\",", "\"dtype\":\"F64\";"));
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "not valid JSON");
    FRESH();
    assert_true(patch_file(p, "\"k\":\"v\"", "\"k\":\"\xc0\""));
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "UTF-8");
    FRESH();
    assert_true(patch_file(p, "}}  ", "}}x ") || patch_file(p, "}}", "}x"));
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, NULL);
    /* metadata values must be strings */
    FRESH();
    assert_true(patch_file(p, "\"k\":\"v\"", "\"k\":12 "));
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "__metadata__['k'] is not a string");
    /* duplicated tensor names */
    FRESH();
    assert_true(patch_file(p, "\"b\":", "\"a\":"));
    expect_read(p, "a", CR_FLOAT64, CR_EFORMAT, "duplicated entry 'a'");
    /* entries: missing keys, bad shapes and offsets */
    FRESH();
    assert_true(patch_file(p, "\"shape\"", "\"shapf\""));
    expect_read(p, "b", CR_FLOAT64, CR_EFORMAT, "missing 'shape'");
    FRESH();
    assert_true(patch_file(p, "\"shape\":[3]", "\"shape\":[4]"));
    expect_read(p, "b", CR_FLOAT64, CR_EFORMAT, "do not span its 32 bytes");
    FRESH();
    assert_true(patch_file(p, "[0,24]", "[8,24]"));
    expect_read(p, "b", CR_FLOAT64, CR_EFORMAT, "do not span");
    FRESH();
    assert_true(patch_file(p, "[24,40]", "[16,32]"));
    assert_true(patch_file(p, "[0,24]", "[0,16]"));
    assert_true(patch_file(p, "\"shape\":[3]", "\"shape\":[2]"));
    expect_read(p, "b", CR_FLOAT64, CR_EFORMAT, "truncated or trailing");
    FRESH();
    assert_true(patch_file(p, "[24,40]", "[16,32]"));
    expect_read(p, "b", CR_FLOAT64, CR_EFORMAT, "overlap");
    FRESH();
    assert_true(patch_file(p, "[0,24]", "[24,0]"));
    expect_read(p, "b", CR_FLOAT64, CR_EFORMAT, "end before");
    FRESH();
    assert_true(patch_file(p, "\"shape\":[3]", "\"shape\":\"3\""));
    expect_read(p, "b", CR_FLOAT64, CR_ESHAPE, "shape is not an array");
    FRESH();
    assert_true(patch_file(p, "[0,24]", "[0,-4]"));
    expect_read(p, "b", CR_FLOAT64, CR_EFORMAT, "data_offsets is not [begin, end]");
    /* shapes whose byte count overflows 64 bits */
    double one = 1;
    tens huge[] = {{"h", "F64", 4, {1u << 20, 1u << 20, 1u << 20, 1u << 20}, &one, 8, NULL}};
    st_write(p, huge, 1, NULL);
    expect_read(p, "h", CR_FLOAT64, CR_EOVERFLOW, "absurdly large");
    /* a file without tensors is valid and lists nothing */
    st_write(p, NULL, 0, "{\"k\":\"v\"}");
    cr_tensor_info *info;
    assert_int_equal(cr_safetensors_list(p, &info, &n), CR_OK);
    assert_int_equal(n, 0);
    free(info);
    expect_read(p, "a", CR_FLOAT64, CR_EINVAL, "the file has 0");
#undef FRESH
}

/* A claim the file can back (a sparse file) but that is above CR_MAX_ALLOC
 * once converted is refused before allocating, with the bytes it needs. */
static void test_memory_limit(void **st)
{
    (void)st;
    assert_int_equal(cr_max_alloc(), CR_MAX_ALLOC);
    /* F16 elements needing 2x the limit as float64: 1/2 the limit on disk */
    uint64_t count = (uint64_t)CR_MAX_ALLOC / 4;
    char js[160];
    int jl = snprintf(js, sizeof js,
                      "{\"w\":{\"dtype\":\"F16\",\"shape\":[%llu],\"data_offsets\":[0,%llu]}}",
                      (unsigned long long)count, (unsigned long long)(2 * count));
    unsigned char hdr[136];
    memset(hdr, ' ', sizeof hdr);
    assert_true(jl <= 128);
    memcpy(hdr + 8, js, (size_t)jl);
    for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)((uint64_t)128 >> (8 * i));
    const char *p = tpath("limit.safetensors");
    if (!sparse_file(p, hdr, sizeof hdr, (off_t)(136 + 2 * count))) skip();
    char need[64];
    snprintf(need, sizeof need, "%llu bytes as float64", (unsigned long long)(8 * count));
    expect_read(p, "w", CR_FLOAT64, CR_EOVERFLOW, need);
    expect_read(p, "w", CR_FLOAT64, CR_EOVERFLOW, "CR_MAX_ALLOC");
    unlink(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_bogus_file), /* first: it measures peak memory */
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_container),
        cmocka_unit_test(test_memory_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
