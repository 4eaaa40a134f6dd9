/* libFuzzer harness: the generic safetensors reader (cr_safetensors_list,
 * cr_safetensors_read). The listing and every tensor read must agree: a
 * readable tensor has the listed shape ((L,) -> (L); (C, L), (C, 1, L) ->
 * (C, L)) and finite values, equal in float64 and float32 up to rounding;
 * a name that is not there is CR_EINVAL whenever the file is valid. */
#include "fuzzutil.h"

#include "convrec.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *p = fz_path(d, n);
    cr_tensor_info *info = NULL;
    size_t nt = 0;
    cr_status s = cr_safetensors_list(p, &info, &nt);
    cr_array a, b;
    if (s != CR_OK) {
        CHECK(info == NULL && nt == 0);
        /* reading from a file the listing refuses fails the same way */
        CHECK(cr_safetensors_read(p, "x", CR_FLOAT64, &a) == s && a.data == NULL);
        return 0;
    }
    for (size_t i = 1; i < nt; i++) CHECK(strcmp(info[i - 1].name, info[i].name) < 0);
    for (size_t i = 0; i < nt && i < 16; i++) {
        const cr_tensor_info *t = &info[i];
        cr_status s64 = cr_safetensors_read(p, t->name, CR_FLOAT64, &a);
        cr_status s32 = cr_safetensors_read(p, t->name, CR_FLOAT32, &b);
        if (s64 != CR_OK) {
            CHECK(a.data == NULL);
            CHECK(s32 == s64 || s32 == CR_EOVERFLOW);
            if (s32 == CR_OK) cr_array_free(&b);
            continue;
        }
        CHECK(a.ndim == (t->ndim == 1 ? 1 : 2));
        size_t C = t->ndim == 1 ? 1 : t->shape[0], L = t->shape[t->ndim - 1];
        CHECK(t->ndim != 3 || t->shape[1] == 1);
        CHECK(a.ndim == 1 ? a.shape[0] == L : a.shape[0] == C && a.shape[1] == L);
        size_t cnt = cr_array_count(&a);
        for (size_t k = 0; k < cnt; k++) CHECK(isfinite(((double *)a.data)[k]));
        if (s32 == CR_OK) {
            for (size_t k = 0; k < cnt; k++)
                CHECK(((float *)b.data)[k] == (float)((double *)a.data)[k]);
            cr_array_free(&b);
        } else {
            CHECK(s32 == CR_EOVERFLOW && strcmp(t->dtype, "F64") == 0);
        }
        cr_array_free(&a);
    }
    /* no tensor name holds a byte 0x01 that the listing does not show */
    int has = 0;
    for (size_t i = 0; i < nt; i++) has |= strcmp(info[i].name, "\x01missing") == 0;
    if (!has) CHECK(cr_safetensors_read(p, "\x01missing", CR_FLOAT64, &a) == CR_EINVAL);
    free(info);
    return 0;
}
