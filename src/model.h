/* Internal interfaces of the model module (model.c, io_safetensors.c,
 * export.c). Not installed. */
#ifndef CONVREC_MODEL_H
#define CONVREC_MODEL_H

#include "internal.h"

/* A non-owning view of one channel in modal form (modes of kind 0 are
 * skipped), so that cr_model channels and cr__modal fits share one code
 * path. */
typedef struct cr__modal_view {
    size_t n;
    const unsigned char *kind;
    const double *pole_re, *pole_im, *res_re, *res_im;
    double d;
} cr__modal_view;

cr__modal_view cr__model_channel_view(const cr_model *m, size_t c);
/* hhat[0..L-1] of the view, closed form (L >= 1). */
void cr__modal_kernel_view(const cr__modal_view *v, size_t L, double *out);
/* Validates one mode of channel c (kinds 1/2, finite, im-part conventions). */
cr_status cr__model_check_mode(unsigned char kind, double pr, double pi, double rr, double ri,
                               size_t c, size_t j);


#endif
