/* .npy reading and writing: round trips, every supported variant built by
 * hand byte by byte, and one test per kind of malformed file. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "convrec.h"
#include "testutil.h"

static char *tpath(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tu_tmpdir(), name);
    return p;
}

/* Write a .npy file by hand: version major, header dict text, payload. */
static void write_raw(const char *path, int major, const char *dict, const void *data, size_t nbytes,
                      size_t extra_junk)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t pre = major == 1 ? 10 : 12;
    size_t len = strlen(dict) + 1;
    size_t pad = (64 - (pre + len) % 64) % 64;
    size_t hlen = len + pad;
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f);
    fputc(0, f);
    fputc((int)(hlen & 0xff), f);
    fputc((int)((hlen >> 8) & 0xff), f);
    if (major != 1) {
        fputc(0, f);
        fputc(0, f);
    }
    fputs(dict, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    if (nbytes) fwrite(data, 1, nbytes, f);
    for (size_t i = 0; i < extra_junk; i++) fputc(0, f);
    fclose(f);
}

static void test_roundtrip(void **state)
{
    (void)state;
    uint64_t s = 1;
    const size_t shapes[][3] = {{1, 1, 1}, {7, 1, 1}, {3, 5, 1}, {2, 3, 4}};
    const int ndims[] = {1, 1, 2, 3};
    for (int dt = 0; dt < 2; dt++) {
        for (int k = 0; k < 4; k++) {
            cr_array a = {dt ? CR_FLOAT64 : CR_FLOAT32, ndims[k],
                          {shapes[k][0], shapes[k][1], shapes[k][2]}, NULL};
            size_t n = cr_array_count(&a);
            a.data = malloc(n * (size_t)a.dtype);
            for (size_t i = 0; i < n; i++) {
                double v = tu_uniform(&s) * 1e3;
                if (dt) ((double *)a.data)[i] = v;
                else ((float *)a.data)[i] = (float)v;
            }
            const char *p = tpath("rt.npy");
            assert_int_equal(cr_npy_write(p, &a), CR_OK);
            cr_array b;
            assert_int_equal(cr_npy_read(p, &b), CR_OK);
            assert_int_equal(b.dtype, a.dtype);
            assert_int_equal(b.ndim, a.ndim);
            for (int i = 0; i < 3; i++) assert_int_equal(b.shape[i], a.shape[i]);
            assert_memory_equal(a.data, b.data, n * (size_t)a.dtype);
            cr_array_free(&b);
            free(a.data);
        }
    }
}

static void test_versions_and_orders(void **state)
{
    (void)state;
    const double v[6] = {1, 2, 3, 4, 5, 6}; /* logical (2, 3) array [[1,2,3],[4,5,6]] */
    const char *p = tpath("v.npy");
    for (int major = 1; major <= 3; major++) {
        write_raw(p, major, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", v, sizeof v, 0);
        cr_array a;
        assert_int_equal(cr_npy_read(p, &a), CR_OK);
        assert_int_equal(a.ndim, 2);
        assert_memory_equal(a.data, v, sizeof v);
        cr_array_free(&a);
    }
    /* Fortran order: stored column by column */
    const double fv[6] = {1, 4, 2, 5, 3, 6};
    write_raw(p, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", fv, sizeof fv, 0);
    cr_array a;
    assert_int_equal(cr_npy_read(p, &a), CR_OK);
    assert_memory_equal(a.data, v, sizeof v);
    cr_array_free(&a);
    /* big-endian float64 and float32 */
    unsigned char be[6 * 8];
    for (int i = 0; i < 6; i++) {
        unsigned char b[8];
        memcpy(b, &v[i], 8);
        for (int k = 0; k < 8; k++) be[i * 8 + k] = b[7 - k];
    }
    write_raw(p, 1, "{'descr': '>f8', 'fortran_order': False, 'shape': (6,), }", be, sizeof be, 0);
    assert_int_equal(cr_npy_read(p, &a), CR_OK);
    assert_memory_equal(a.data, v, sizeof v);
    cr_array_free(&a);
    float fl[3] = {1.5f, -2.25f, 3e-3f};
    unsigned char bef[12];
    for (int i = 0; i < 3; i++) {
        unsigned char b[4];
        memcpy(b, &fl[i], 4);
        for (int k = 0; k < 4; k++) bef[i * 4 + k] = b[3 - k];
    }
    write_raw(p, 2, "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 3), }", bef, sizeof bef, 0);
    assert_int_equal(cr_npy_read(p, &a), CR_OK);
    assert_int_equal(a.dtype, CR_FLOAT32);
    assert_memory_equal(a.data, fl, sizeof fl);
    cr_array_free(&a);
    /* 3-D Fortran order */
    double f3[24], c3[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                c3[(i * 3 + j) * 4 + k] = 100 * i + 10 * j + k;
                f3[i + 2 * (j + 3 * k)] = 100 * i + 10 * j + k;
            }
    write_raw(p, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3, 4), }", f3, sizeof f3, 0);
    assert_int_equal(cr_npy_read(p, &a), CR_OK);
    assert_memory_equal(a.data, c3, sizeof c3);
    cr_array_free(&a);
}

static void expect_fail(const char *name, cr_status want)
{
    cr_array a;
    cr_status st = cr_npy_read(tpath(name), &a);
    if (st != want) fail_msg("%s: got %d (%s), want %d", name, st, cr_error_detail(), want);
    assert_null(a.data);
    /* the detail names the file */
    assert_non_null(strstr(cr_error_detail(), name));
}

static void test_malformed(void **state)
{
    (void)state;
    double v[4] = {1, 2, 3, 4};
    const char *ok = "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }";
    FILE *f = fopen(tpath("magic.npy"), "wb");
    fputs("NOTNUMPYATALL", f);
    fclose(f);
    expect_fail("magic.npy", CR_EFORMAT);
    f = fopen(tpath("empty.npy"), "wb");
    fclose(f);
    expect_fail("empty.npy", CR_EFORMAT);
    write_raw(tpath("trunc.npy"), 1, ok, v, 3 * 8, 0);
    expect_fail("trunc.npy", CR_EFORMAT);
    write_raw(tpath("extra.npy"), 1, ok, v, sizeof v, 5);
    expect_fail("extra.npy", CR_EFORMAT);
    write_raw(tpath("ver.npy"), 9, ok, v, sizeof v, 0);
    expect_fail("ver.npy", CR_EFORMAT);
    write_raw(tpath("int.npy"), 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", v,
              sizeof v, 0);
    expect_fail("int.npy", CR_EDTYPE);
    write_raw(tpath("cplx.npy"), 1, "{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", v,
              sizeof v, 0);
    expect_fail("cplx.npy", CR_EDTYPE);
    write_raw(tpath("noshape.npy"), 1, "{'descr': '<f8', 'fortran_order': False, }", v, sizeof v, 0);
    expect_fail("noshape.npy", CR_EFORMAT);
    write_raw(tpath("nodict.npy"), 1, "[1, 2]", v, sizeof v, 0);
    expect_fail("nodict.npy", CR_EFORMAT);
    write_raw(tpath("badkey.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), 'x': 1}",
              v, sizeof v, 0);
    expect_fail("badkey.npy", CR_EFORMAT);
    write_raw(tpath("badtuple.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4;), }", v,
              sizeof v, 0);
    expect_fail("badtuple.npy", CR_EFORMAT);
    write_raw(tpath("huge.npy"), 1,
              "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
              v, sizeof v, 0);
    expect_fail("huge.npy", CR_EOVERFLOW);
    write_raw(tpath("ovf.npy"), 1,
              "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }", v,
              sizeof v, 0);
    expect_fail("ovf.npy", CR_EOVERFLOW);
    write_raw(tpath("claim.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000,), }",
              v, sizeof v, 0);
    expect_fail("claim.npy", CR_EFORMAT);
    write_raw(tpath("zero.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0,), }", v, 0, 0);
    expect_fail("zero.npy", CR_ESHAPE);
    write_raw(tpath("scalar.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", v, 8, 0);
    expect_fail("scalar.npy", CR_ESHAPE);
    write_raw(tpath("4d.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 2, 2), }",
              v, sizeof v, 0);
    expect_fail("4d.npy", CR_ESHAPE);
    double nanv[4] = {1, NAN, 3, 4}, infv[4] = {1, 2, -INFINITY, 4};
    write_raw(tpath("nan.npy"), 1, ok, nanv, sizeof nanv, 0);
    expect_fail("nan.npy", CR_ENONFINITE);
    write_raw(tpath("inf.npy"), 1, ok, infv, sizeof infv, 0);
    expect_fail("inf.npy", CR_ENONFINITE);
    /* header length pointing past the end of the file */
    f = fopen(tpath("hlen.npy"), "wb");
    fwrite("\x93NUMPY\x01\x00\xff\xff{}", 1, 12, f);
    fclose(f);
    expect_fail("hlen.npy", CR_EFORMAT);
    cr_array a;
    assert_int_equal(cr_npy_read(tpath("missing.npy"), &a), CR_EIO);
    assert_int_equal(cr_npy_read(tu_tmpdir(), &a), CR_EIO); /* a folder */
}

static void test_args_and_atomic_write(void **state)
{
    (void)state;
    cr_array a;
    assert_int_equal(cr_npy_read(NULL, &a), CR_EINVAL);
    assert_int_equal(cr_npy_read("x", NULL), CR_EINVAL);
    assert_int_equal(cr_npy_write(NULL, &a), CR_EINVAL);
    double v[2] = {1, 2};
    cr_array b = {CR_FLOAT64, 4, {2, 1, 1}, v};
    assert_int_equal(cr_npy_write(tpath("bad.npy"), &b), CR_ESHAPE);
    b.ndim = 1;
    b.dtype = (cr_dtype)3;
    assert_int_equal(cr_npy_write(tpath("bad.npy"), &b), CR_EDTYPE);
    b.dtype = CR_FLOAT64;
    /* a folder that does not exist: clear I/O error, nothing written */
    assert_int_equal(cr_npy_write("/nonexistent-dir/x.npy", &b), CR_EIO);
    /* overwriting keeps the old file until the new one is complete */
    assert_int_equal(cr_npy_write(tpath("keep.npy"), &b), CR_OK);
    if (geteuid() != 0) { /* root ignores permissions */
        chmod(tu_tmpdir(), 0500);
        assert_int_equal(cr_npy_write(tpath("keep.npy"), &b), CR_EIO);
        chmod(tu_tmpdir(), 0700);
    }
    assert_int_equal(cr_npy_read(tpath("keep.npy"), &a), CR_OK);
    cr_array_free(&a);
    assert_string_not_equal(cr_strerror(CR_EFORMAT), cr_strerror(CR_EIO));
}

/* cr_array_alloc: shapes, the huge-page path (>= 2 MiB, 2 MiB-aligned),
 * a written and read-back array, and every refusal with *a zeroed. */
static void test_array_alloc(void **state)
{
    (void)state;
    cr_array a;
    const size_t small[3] = {3, 5, 9}, big[3] = {512, 1024, 7};
    assert_int_equal(cr_array_alloc(&a, CR_FLOAT32, 2, small), CR_OK);
    assert_int_equal(a.dtype, CR_FLOAT32);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[2], 1); /* entries from ndim on are 1 */
    assert_int_equal(cr_array_count(&a), 15);
    cr_array_free(&a);
    assert_null(a.data);
    assert_int_equal(cr_array_alloc(&a, CR_FLOAT64, 2, big), CR_OK); /* 4 MiB */
    assert_int_equal((uintptr_t)a.data % ((uintptr_t)2 << 20), 0);
    double *d = a.data;
    for (size_t i = 0; i < cr_array_count(&a); i++) d[i] = (double)i;
    assert_int_equal(cr_npy_write(tpath("alloc.npy"), &a), CR_OK);
    cr_array b;
    assert_int_equal(cr_npy_read(tpath("alloc.npy"), &b), CR_OK);
    assert_int_equal(b.shape[0], 512);
    assert_int_equal(b.shape[1], 1024);
    assert_memory_equal(a.data, b.data, cr_array_count(&a) * sizeof(double));
    cr_array_free(&a);
    cr_array_free(&b);
    const size_t zero[3] = {4, 0, 1}, huge[3] = {(size_t)1 << 30, (size_t)1 << 30, 1};
    const struct { cr_dtype dt; int nd; const size_t *sh; cr_status want; } bad[] = {
        {(cr_dtype)2, 1, small, CR_EINVAL}, {CR_FLOAT64, 0, small, CR_EINVAL}, {CR_FLOAT64, 4, small, CR_EINVAL},
        {CR_FLOAT64, 1, NULL, CR_EINVAL},   {CR_FLOAT64, 2, zero, CR_ESHAPE},  {CR_FLOAT64, 2, huge, CR_EOVERFLOW},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&a, 0x55, sizeof a);
        assert_int_equal(cr_array_alloc(&a, bad[i].dt, bad[i].nd, bad[i].sh), bad[i].want);
        assert_null(a.data);
        assert_int_equal(a.ndim, 0);
    }
    assert_int_equal(cr_array_alloc(NULL, CR_FLOAT64, 1, small), CR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_versions_and_orders),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_args_and_atomic_write),
        cmocka_unit_test(test_array_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
