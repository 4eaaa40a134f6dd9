/* The channel context (fit.h): one kernel, its objective, and the Hankel
 * decompositions that its methods share. Decompositions are computed on
 * first use and grown by doubling, so the order search of a tolerance fit
 * and the record's sigma_{N+1} reuse them. */
#include "fit/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Decompositions in fits are converged once every wanted residual is
 * <= max(1e-12 sigma_1, 1e-2 sigma_{N+1}): vectors only need to be good
 * relative to the truncation level. */
#define FIT_RTOL 1e-12
#define FIT_TTOL 1e-2
/* ... and values to 1e-8 of sigma_{N+1} (never overstated either way):
 * eight digits are plenty for the record's certificates, and holding
 * them to 1e-12 sigma_1 cost a quarter of the Lanczos steps on flat
 * spectra (decaying noise, L = 65536). */
#define FIT_VREL 1e-8

double cr__fit_clock(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

cr_status cr__fitctx_init(cr__fitctx *c, const double *h, size_t L, cr_horizon horizon,
                          double margin)
{
    memset(c, 0, sizeof *c);
    if (h == NULL) return cr__fail(CR_EINVAL, "fit: kernel is NULL");
    if (L == 0 || L > CR_MAX_ELEMS) return cr__fail(CR_EINVAL, "fit: kernel length %zu", L);
    if (horizon != CR_HORIZON_WINDOW && horizon != CR_HORIZON_INFINITE)
        return cr__fail(CR_EINVAL, "fit: unknown horizon %d", (int)horizon);
    if (!(margin >= 0.0 && margin < 1.0))
        return cr__fail(CR_EINVAL, "fit: margin %g outside [0, 1)", margin);
    for (size_t k = 0; k < L; k++)
        if (!isfinite(h[k])) return cr__fail(CR_ENONFINITE, "fit: kernel has NaN/Inf at %zu", k);
    c->h = h;
    c->L = L;
    c->horizon = horizon;
    c->rmax = cr__pole_bound(margin);
    long double n2 = 0;
    for (size_t k = 0; k < L; k++) n2 += (long double)h[k] * h[k];
    c->hn2 = (double)n2;
    c->work = malloc((L ? L : 1) * sizeof *c->work);
    if (c->work == NULL) return cr__fail(CR_ENOMEM, "fit: out of memory (L = %zu)", L);
    return CR_OK;
}

void cr__fitctx_free(cr__fitctx *c)
{
    if (c == NULL) return;
    cr__hsvd_free(&c->svd[0]);
    cr__hsvd_free(&c->svd[1]);
    cr__wgrid_free(c->wgrid);
    free(c->work);
    memset(c, 0, sizeof *c);
}

cr_status cr__fitctx_svd(cr__fitctx *c, cr_horizon which, size_t k, const cr__hsvd **out)
{
    cr__hsvd *s = &c->svd[which];
    *out = s;
    if (s->k >= k || (s->k > 0 && s->k >= s->r)) return CR_OK;
    size_t want = s->k > 0 ? (k > 2 * s->k ? k : 2 * s->k) : k;
    cr__hsvd_free(s);
    const cr__hsvd_req req = { want, k, 1, FIT_RTOL, FIT_TTOL, CR__HSVD_AUTO, FIT_VREL };
    double t0 = c->stats ? cr__fit_clock() : 0.0;
    cr_status st = cr__hankel_svd(c->h, c->L, which, &req, s);
    if (c->stats) c->stats->t_hsv += cr__fit_clock() - t0;
    return st;
}

double cr__fitctx_err2(cr__fitctx *c, const cr__modal *m)
{
    return cr__modal_err2(m, c->h, c->L, c->horizon, c->work);
}
