/* libFuzzer harness: the .npy reader (cr_npy_read). Whatever the bytes, it
 * must return a status and, on success, a consistent finite array that
 * cr_npy_write writes back to a file read as the same array, bit for bit. */
#include "fuzzutil.h"

#include "convrec.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    cr_array a;
    cr_status s = cr_npy_read(fz_path(d, n), &a);
    if (s != CR_OK) {
        CHECK(a.data == NULL);
        CHECK(cr_error_detail()[0] != '\0');
        return 0;
    }
    CHECK(a.dtype == CR_FLOAT32 || a.dtype == CR_FLOAT64);
    CHECK(a.ndim >= 1 && a.ndim <= 3);
    size_t cnt = cr_array_count(&a);
    CHECK(cnt >= 1);
    for (size_t i = 0; i < cnt; i++)
        CHECK(a.dtype == CR_FLOAT64 ? isfinite(((double *)a.data)[i]) : isfinite(((float *)a.data)[i]));
    const char *p = fz_scratch(".npy");
    CHECK(cr_npy_write(p, &a) == CR_OK);
    cr_array b;
    CHECK(cr_npy_read(p, &b) == CR_OK);
    unlink(p);
    CHECK(b.dtype == a.dtype && b.ndim == a.ndim);
    CHECK(memcmp(a.shape, b.shape, sizeof a.shape) == 0);
    CHECK(memcmp(a.data, b.data, cnt * (size_t)a.dtype) == 0);
    cr_array_free(&b);
    cr_array_free(&a);
    return 0;
}
