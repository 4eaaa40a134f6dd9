/* cr_fit: options, validation, dispatch to the methods, the order search
 * for a tolerance, and assembly of the cr_model. The methods (bt.c,
 * pencil.c, hna.c, auto.c) never call into this file.
 *
 * Per channel:
 *   - the kernel is scaled by a power of two to max |h| in [1, 2): the
 *     fit is then the same whatever the kernel's scale (a kernel times
 *     1e170 or 1e-170 would otherwise overflow or underflow in its
 *     squares), and power-of-two scaling is exact, so for kernels of
 *     ordinary size nothing changes but the exponent; residues, d and the
 *     absolute figures of the record are scaled back;
 *   - the zero-padded (FIR) Hankel decomposition gives the record's
 *     sigma_{N+1} and 2 sum_{i>N} sigma_i (an upper bound when not every
 *     value is computed);
 *   - with order == 0 the smallest order meeting tol is searched from the
 *     Hankel singular values, verified by fitting. If even max_order
 *     misses tol, the max_order fit is returned (status OK; its record
 *     shows the error).
 * Channels run in parallel (OpenMP). BLAS is called from inside those
 * threads; its own threading is the caller's business (include/convrec.h,
 * "Threading"). */
#include "fit/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void cr_fit_options_default(cr_fit_options *o)
{
    if (o == NULL) return;
    memset(o, 0, sizeof *o);
    o->method = CR_METHOD_AUTO;
    o->horizon = CR_HORIZON_WINDOW;
    o->order = 0;
    o->tol = 1e-4;
    o->max_order = 0;
    o->margin = 1e-6;
    o->nthreads = 0;
    o->progress = NULL;
    o->progress_ctx = NULL;
}

static cr__method_fn method_fn(cr_method m)
{
    switch (m) {
    case CR_METHOD_BT: return cr__fit_bt;
    case CR_METHOD_PENCIL: return cr__fit_pencil;
    case CR_METHOD_HNA: return cr__fit_hna;
    default: return cr__fit_auto;
    }
}

/* One fit of order N (N = 0: d only) into best; *e2 its squared error. */
static cr_status fit_order(cr__fitctx *c, cr__method_fn fit, size_t N, cr__modal *best,
                           double *e2)
{
    best->n = 0;
    best->d = c->h[0];
    cr_status st = N > 0 ? fit(c, N, best) : CR_OK;
    if (st == CR_OK) *e2 = cr__fitctx_err2(c, best);
    return st;
}

/* One fit of the order search: a fit meeting the target is kept in ok
 * (its order in *okN), so the chosen order need not be fitted again. */
static cr_status try_order(cr__fitctx *c, cr__method_fn fit, size_t N, cr__modal *best,
                           cr__modal *ok, size_t *okN, int *meets)
{
    double e2 = INFINITY;
    cr_status st = fit_order(c, fit, N, best, &e2);
    *meets = st == CR_OK && e2 <= c->f_goal;
    if (*meets && (st = cr__modal_copy(ok, best)) == CR_OK) *okN = N;
    return st;
}

/* Smallest order whose relative error meets tol (see the file comment).
 * The target is the context's goal meanwhile: a method may stop once it
 * meets it, and give up on a long refinement that cannot. */
static cr_status fit_tol(cr__fitctx *c, cr__method_fn fit, double tol, size_t maxN,
                         cr__modal *best)
{
    const double level = tol * sqrt(c->hn2);
    cr_status st;
    /* HSV guide: the smallest N with sigma_{N+1} <= tol ||h|| on the Hankel
     * matrix of the horizon (window rank = exact order on the window). */
    size_t N0 = 0;
    for (;;) {
        size_t k = N0 + 16 < maxN + 1 ? N0 + 16 : maxN + 1;
        const cr__hsvd *s;
        if ((st = cr__fitctx_svd(c, c->horizon, k, &s)) != CR_OK) return st;
        size_t lim = s->k < maxN + 1 ? s->k : maxN + 1;
        while (N0 < lim && cr__hsvd_value(s, N0) > level) N0++;
        if (N0 < lim || lim >= maxN + 1 || s->k >= s->r) break;
    }
    if (N0 > maxN) N0 = maxN;
    cr__modal ok;
    if ((st = cr__modal_alloc(&ok, best->cap)) != CR_OK) return st;
    c->f_goal = tol * tol * c->hn2;
    size_t okN = SIZE_MAX, lo_fail = 0, hi_ok = 0;
    int meets;
    /* verify, then walk: down while it still meets tol, else up by
     * doubling steps and bisect back */
    if ((st = try_order(c, fit, N0, best, &ok, &okN, &meets)) != CR_OK) goto done;
    if (meets) {
        hi_ok = N0;
        while (hi_ok > 0) {
            if ((st = try_order(c, fit, hi_ok - 1, best, &ok, &okN, &meets)) != CR_OK) goto done;
            if (!meets) break;
            hi_ok--;
        }
    } else {
        lo_fail = N0;
        size_t step = 1;
        for (;;) {
            size_t N = lo_fail + step > maxN ? maxN : lo_fail + step;
            if (N <= lo_fail) break; /* nothing meets tol: the max_order fit is in best */
            if ((st = try_order(c, fit, N, best, &ok, &okN, &meets)) != CR_OK) goto done;
            if (meets) {
                hi_ok = N;
                break;
            }
            lo_fail = N;
            if (N == maxN) break; /* best effort: the max_order fit */
            step *= 2;
        }
        while (okN != SIZE_MAX && hi_ok - lo_fail > 1) {
            size_t mid = lo_fail + (hi_ok - lo_fail) / 2;
            if ((st = try_order(c, fit, mid, best, &ok, &okN, &meets)) != CR_OK) goto done;
            if (meets) hi_ok = mid;
            else lo_fail = mid;
        }
    }
    if (okN == SIZE_MAX) { /* nothing met tol: best holds the largest order tried */
        if (lo_fail != maxN) st = try_order(c, fit, maxN, best, &ok, &okN, &meets);
    } else if (okN == hi_ok) {
        st = cr__modal_copy(best, &ok);
    } else {
        st = try_order(c, fit, hi_ok, best, &ok, &okN, &meets);
    }
done:
    c->f_goal = 0.0;
    cr__modal_free(&ok);
    return st;
}

/* A record figure scaled back to the kernel's scale must stay finite. */
static cr_status unscale(double *x, double inv, const char *what)
{
    double v = *x * inv;
    if (!isfinite(v) && isfinite(*x))
        return cr__fail(CR_EOVERFLOW, "fit: the %s (%g at scale 2^%d) overflows at the kernel's "
                        "scale", what, *x, ilogb(inv));
    *x = v;
    return CR_OK;
}

static cr_status fit_channel(const double *h0, size_t L, const cr_fit_options *o, size_t maxN,
                             cr__modal *out, cr_fit_record *rec, cr__fit_stats *stats)
{
    cr__fitctx c;
    cr__modal best = {0};
    double *h = malloc(L * sizeof *h);
    if (h == NULL) return cr__fail(CR_ENOMEM, "fit: out of memory (L = %zu)", L);
    /* scale by a power of two (exact) to max |h| in [1, 2) */
    double hmax = 0.0;
    for (size_t k = 0; k < L; k++) hmax = fmax(hmax, fabs(h0[k]));
    int ex = hmax > 0.0 ? ilogb(hmax) : 0;
    for (size_t k = 0; k < L; k++) h[k] = ldexp(h0[k], -ex);
    const double inv = ldexp(1.0, ex);

    cr_status st = cr__fitctx_init(&c, h, L, o->horizon, o->margin);
    c.stats = stats;
    size_t cap = o->order > 0 ? o->order : maxN;
    if (st == CR_OK) st = cr__modal_alloc(&best, cap ? cap : 1);
    if (st != CR_OK) goto done;
    double htail2 = c.hn2 - h[0] * h[0];
    if (L == 1 || !(htail2 > 0)) {
        /* L = 1, or h[k] = 0 for k >= 1 (all-zero kernels included): d only */
        best.n = 0;
        best.d = h[0];
    } else {
        cr__method_fn fit = method_fn(o->method);
        double e2;
        if (o->order > 0) st = fit_order(&c, fit, o->order < L - 1 ? o->order : L - 1, &best, &e2);
        else st = fit_tol(&c, fit, o->tol, maxN, &best);
    }
    if (st != CR_OK) goto done;
    if ((st = cr__modal_errors(&best, h, L, rec)) != CR_OK) goto done;
    size_t Nact = cr__modal_order(&best);
    rec->sigma_next = rec->bt_bound = 0.0;
    if (L >= 2 && htail2 > 0) {
        /* the FIR Hankel with >= Nact + 1 values for the bounds */
        const cr__hsvd *s;
        if ((st = cr__fitctx_svd(&c, CR_HORIZON_INFINITE, Nact + 1, &s)) != CR_OK) goto done;
        rec->sigma_next = cr__hsvd_value(s, Nact);
        rec->bt_bound = 2.0 * cr__hsvd_tail(s, Nact);
    }
    if (!isfinite(rec->err_window) || !isfinite(rec->err_infinite) || isnan(rec->err_hinf) ||
        !isfinite(rec->sigma_next) || !isfinite(rec->bt_bound)) {
        st = cr__fail(CR_ENOCONV, "fit: the fitted model's error is not finite (window %g, "
                      "infinite %g)", rec->err_window, rec->err_infinite);
        goto done;
    }
    /* back to the kernel's scale */
    best.d *= inv;
    for (size_t j = 0; j < best.n; j++) {
        best.res_re[j] *= inv;
        best.res_im[j] *= inv;
    }
    if ((st = unscale(&rec->h_norm, inv, "kernel norm")) != CR_OK ||
        (st = unscale(&rec->err_hinf, inv, "H-inf error")) != CR_OK ||
        (st = unscale(&rec->sigma_next, inv, "Hankel singular value")) != CR_OK ||
        (st = unscale(&rec->bt_bound, inv, "Hankel bound")) != CR_OK)
        goto done;
    for (size_t j = 0; j < best.n; j++)
        if (!isfinite(best.res_re[j]) || !isfinite(best.res_im[j]) || !isfinite(best.d)) {
            st = cr__fail(CR_EOVERFLOW, "fit: a residue overflows at the kernel's scale");
            goto done;
        }
    rec->order = Nact;
    rec->length = L;
    st = cr__modal_copy(out, &best);
done:
    cr__fitctx_free(&c);
    cr__modal_free(&best);
    free(h);
    return st;
}

static cr_status check_options(const cr_fit_options *o, size_t C, size_t L)
{
    if (C == 0 || L == 0)
        return cr__fail(CR_EINVAL, "cr_fit: empty kernel bank (C = %zu, L = %zu)", C, L);
    size_t CL;
    if (!cr__mul_ok(C, L, &CL) || CL > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "cr_fit: %zu x %zu kernels is absurdly large", C, L);
    if (o->method != CR_METHOD_AUTO && o->method != CR_METHOD_BT && o->method != CR_METHOD_HNA &&
        o->method != CR_METHOD_PENCIL)
        return cr__fail(CR_EINVAL, "cr_fit: unknown method %d", (int)o->method);
    if (o->horizon != CR_HORIZON_WINDOW && o->horizon != CR_HORIZON_INFINITE)
        return cr__fail(CR_EINVAL, "cr_fit: unknown horizon %d", (int)o->horizon);
    if (!(o->margin > 0 && o->margin < 1))
        return cr__fail(CR_EINVAL, "cr_fit: stability margin %g must be in (0, 1)", o->margin);
    if (o->order > 0 && o->order >= L)
        return cr__fail(CR_EINVAL, "cr_fit: order %zu must be below the kernel length %zu%s",
                        o->order, L, o->order > CR_MAX_ELEMS ? " (negative or absurd order?)" : "");
    if (o->order == 0 && !(o->tol > 0 && isfinite(o->tol)))
        return cr__fail(CR_EINVAL, "cr_fit: tolerance %g must be positive and finite", o->tol);
    if (o->max_order > CR_MAX_ELEMS)
        return cr__fail(CR_EINVAL, "cr_fit: max_order %zu is absurd", o->max_order);
    return CR_OK;
}

/* Threads for C channels: nthreads <= 0 is the OpenMP default; never more
 * than the channels or 4 per processor. */
static int fit_threads(int nthreads, size_t C)
{
#ifdef _OPENMP
    int n = nthreads > 0 ? nthreads : omp_get_max_threads();
    int cap = CR_THREADS_PER_PROC * omp_get_num_procs();
    if (n > cap) n = cap;
    if ((size_t)n > C) n = (int)C;
    return n > 0 ? n : 1;
#else
    (void)nthreads;
    (void)C;
    return 1;
#endif
}

cr_status cr__fit_bank(const double *h, size_t C, size_t L, const cr_fit_options *opt,
                       cr_model **out, cr__fit_stats *stats)
{
    if (out == NULL) return cr__fail(CR_EINVAL, "cr_fit: output model pointer is NULL");
    *out = NULL;
    if (h == NULL) return cr__fail(CR_EINVAL, "cr_fit: kernels are NULL");
    cr_fit_options o;
    if (opt == NULL) cr_fit_options_default(&o);
    else o = *opt;
    cr_status st = check_options(&o, C, L);
    if (st != CR_OK) return st;
    for (size_t i = 0; i < C * L; i++)
        if (!isfinite(h[i]))
            return cr__fail(CR_ENONFINITE, "cr_fit: kernel %zu has a non-finite value at k = %zu",
                            i / L, i % L);
    size_t maxN = o.max_order > 0 ? o.max_order : 256;
    if (maxN > L - 1) maxN = L - 1;
    size_t cap = o.order > 0 ? o.order : maxN;

    cr__modal *mods = calloc(C, sizeof *mods);
    cr_fit_record *recs = calloc(C, sizeof *recs);
    if (mods == NULL || recs == NULL) {
        free(mods);
        free(recs);
        return cr__fail(CR_ENOMEM, "cr_fit: out of memory (%zu channels)", C);
    }
    for (size_t c = 0; c < C && st == CR_OK; c++) st = cr__modal_alloc(&mods[c], cap ? cap : 1);

    int fail = CR_OK;
    size_t fail_c = 0, done = 0;
    char fail_msg[256] = "";
    if (st == CR_OK) {
        #pragma omp parallel num_threads(fit_threads(o.nthreads, C))
        {
            cr__fit_stats mine = {0};
            #pragma omp for schedule(dynamic, 1)
            for (size_t c = 0; c < C; c++) {
                int skip;
                #pragma omp atomic read
                skip = fail;
                if (skip != CR_OK) continue;
                cr_status s = fit_channel(h + c * L, L, &o, maxN, &mods[c], &recs[c],
                                          stats ? &mine : NULL);
                if (s != CR_OK) {
                    #pragma omp critical(cr_fit_fail)
                    if (fail == CR_OK) {
                        fail = s;
                        fail_c = c;
                        strncpy(fail_msg, cr_error_detail(), sizeof fail_msg - 1);
                    }
                }
                size_t dn;
                #pragma omp atomic capture
                dn = ++done;
                int me = 0;
#ifdef _OPENMP
                me = omp_get_thread_num();
#endif
                if (me == 0 && o.progress != NULL) o.progress(o.progress_ctx, dn, C);
            }
            if (stats) {
                #pragma omp critical(cr_fit_stats)
                {
                    stats->t_hsv += mine.t_hsv;
                    stats->t_start += mine.t_start;
                    stats->t_refine += mine.t_refine;
                    stats->lm_iter += mine.lm_iter;
                    stats->lm_eval += mine.lm_eval;
                    stats->n_far += mine.n_far;
                }
            }
        }
    }
    if (st == CR_OK && fail != CR_OK)
        st = cr__fail((cr_status)fail, "cr_fit: channel %zu: %s", fail_c, fail_msg);

    cr_model *model = NULL;
    if (st == CR_OK) {
        size_t M = 0;
        for (size_t c = 0; c < C; c++)
            if (mods[c].n > M) M = mods[c].n;
        st = cr_model_create(&model, C, M);
        for (size_t c = 0; c < C && st == CR_OK; c++) {
            st = cr__model_set_modal(model, c, &mods[c]);
            if (st == CR_OK) cr_model_set_record(model, c, &recs[c]);
        }
        if (st == CR_OK) {
            cr_model_set_info(model, o.method, o.horizon);
            if (o.progress != NULL) o.progress(o.progress_ctx, C, C);
            *out = model;
        } else {
            cr_model_destroy(model);
        }
    }
    for (size_t c = 0; c < C; c++) cr__modal_free(&mods[c]);
    free(mods);
    free(recs);
    return st;
}

CR_API cr_status cr_fit(const double *h, size_t C, size_t L, const cr_fit_options *opt,
                        cr_model **out)
{
    return cr__fit_bank(h, C, L, opt, out, NULL);
}
