/* The layout table of the public structs (cr_abi_entry): bindings that mirror
 * these structs compare their copy with what this library was compiled with. */
#include "core/core.h"

#include <stddef.h>

typedef struct abi_row {
    const char *type, *field;
    size_t offset, size;
} abi_row;

#define CR__STRUCT(T) {#T, "", 0, sizeof(T)}
#define CR__FIELD(T, f) {#T, #f, offsetof(T, f), sizeof(((T *)0)->f)}

static const abi_row rows[] = {
    CR__STRUCT(cr_array),
    CR__FIELD(cr_array, dtype),
    CR__FIELD(cr_array, ndim),
    CR__FIELD(cr_array, shape),
    CR__FIELD(cr_array, data),

    CR__STRUCT(cr_fit_record),
    CR__FIELD(cr_fit_record, order),
    CR__FIELD(cr_fit_record, length),
    CR__FIELD(cr_fit_record, err_window),
    CR__FIELD(cr_fit_record, err_infinite),
    CR__FIELD(cr_fit_record, err_hinf),
    CR__FIELD(cr_fit_record, h_norm),
    CR__FIELD(cr_fit_record, sigma_next),
    CR__FIELD(cr_fit_record, bt_bound),

    CR__STRUCT(cr_model_view),
    CR__FIELD(cr_model_view, C),
    CR__FIELD(cr_model_view, M),
    CR__FIELD(cr_model_view, kind),
    CR__FIELD(cr_model_view, pole_re),
    CR__FIELD(cr_model_view, pole_im),
    CR__FIELD(cr_model_view, res_re),
    CR__FIELD(cr_model_view, res_im),
    CR__FIELD(cr_model_view, d),
    CR__FIELD(cr_model_view, record),
    CR__FIELD(cr_model_view, method),
    CR__FIELD(cr_model_view, horizon),

    CR__STRUCT(cr_fit_options),
    CR__FIELD(cr_fit_options, method),
    CR__FIELD(cr_fit_options, horizon),
    CR__FIELD(cr_fit_options, order),
    CR__FIELD(cr_fit_options, tol),
    CR__FIELD(cr_fit_options, max_order),
    CR__FIELD(cr_fit_options, margin),
    CR__FIELD(cr_fit_options, nthreads),
    CR__FIELD(cr_fit_options, progress),
    CR__FIELD(cr_fit_options, progress_ctx),
};

size_t cr_abi_entries(void) { return sizeof rows / sizeof rows[0]; }

cr_status cr_abi_entry(size_t i, const char **type, const char **field,
                       size_t *offset, size_t *size)
{
    if (!type || !field || !offset || !size)
        return cr__fail(CR_EINVAL, "abi: NULL output pointer");
    if (i >= cr_abi_entries())
        return cr__fail(CR_EINVAL, "abi: entry %zu out of range (%zu entries)", i, cr_abi_entries());
    *type = rows[i].type;
    *field = rows[i].field;
    *offset = rows[i].offset;
    *size = rows[i].size;
    return CR_OK;
}
