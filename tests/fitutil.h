/* Test adapters for the fit layer's internal entry points: one method or
 * one refinement on one kernel, without cr_fit around it. */
#ifndef CONVREC_FITUTIL_H
#define CONVREC_FITUTIL_H

#include "fit/fit.h"

/* Method fn at order N on kernel h for the horizon, poles within
 * 1 - margin. */
static inline cr_status tf_fit(cr__method_fn fn, const double *h, size_t L, size_t N,
                               cr_horizon horizon, double margin, cr__modal *out)
{
    cr__fitctx c;
    cr_status st = cr__fitctx_init(&c, h, L, horizon, margin);
    if (st == CR_OK) st = fn(&c, N, out);
    cr__fitctx_free(&c);
    return st;
}

/* Gram variable projection with poles within rho_max, maxit LM steps
 * (0: the default). */
static inline cr_status tf_varpro(const double *h, size_t L, cr_horizon horizon, double rho_max,
                                  int maxit, cr__modal *m)
{
    const cr__vp_opts o = { CR__VP_GRAM, rho_max, maxit, 0.0, NULL, 0.0, 0.0, 0.0 };
    return cr__varpro(h, L, horizon, &o, m, NULL);
}

/* The same, run to the exact minimum (stop at a step gaining < 1e-12). */
static inline cr_status tf_varpro_exact(const double *h, size_t L, cr_horizon horizon,
                                        double rho_max, int maxit, cr__modal *m)
{
    const cr__vp_opts o = { CR__VP_GRAM, rho_max, maxit, 0.0, NULL, 0.0, 0.0, 1e-12 };
    return cr__varpro(h, L, horizon, &o, m, NULL);
}

#endif
