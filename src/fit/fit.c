/* The fit driver (fit.c): options, validation, per-channel method choice,
 * order selection for a tolerance, and assembly of the cr_model.
 *
 * Per channel:
 *   - the zero-padded (FIR) Hankel decomposition is always computed: its
 *     sigma_{N+1} and 2 sum_{i>N} sigma_i go into the record, and its right
 *     vectors drive balanced truncation;
 *   - the window Hankel decomposition drives the pencil;
 *   - auto = best of {bt, pencil} refined by variable projection for the
 *     horizon (never worse than plain bt: the better start is refined and
 *     refinement never makes a model worse; the other start is refined
 *     too when its raw error is within 1.5x of the refined one, or when
 *     the refined error is far above sigma_{N+1}); window horizon only:
 *     if the error is still > 1e3 sigma_{N+1} (and > 1e-8 ||h||), a
 *     vector-fitting style start (pairs evenly spread over the band of
 *     the pencil poles, fit_grid_window) and a continuation in the pole
 *     bound from the raw pencil model (fit_hard_window), both for poles
 *     crowded near 1, and a final long polish of the best of these;
 *   - with order == 0 the smallest order meeting tol is searched from the
 *     HSV estimate, verified by fitting. If even max_order misses tol, the
 *     max_order fit is returned (status OK; its record shows the error).
 * Channels run in parallel (OpenMP) with OpenBLAS single-threaded. */
#include "fit/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
#include <cblas.h>
#endif

/* Hankel decompositions in fits: converged once every wanted residual is
 * <= max(1e-12 sigma_1, 1e-2 sigma_{N+1}): vectors only need to be good
 * relative to the truncation level. */
#define FIT_RTOL 1e-12
#define FIT_TTOL 1e-2

cr_status cr__fit_with_svd(const double *h, size_t L, size_t N, double margin, cr_horizon horizon,
                           cr__fit_svd_fn fit, cr__modal *out)
{
    if (h == NULL || out == NULL) return cr__fail(CR_EINVAL, "fit: NULL argument");
    if (L < 2 || N == 0) { /* nothing to decompose: d only */
        out->n = 0;
        out->d = L > 0 ? h[0] : 0.0;
        return CR_OK;
    }
    cr__hsvd s;
    const cr__hsvd_req req = { N, N, 1, 1e-12, 1e-2, CR__HSVD_AUTO };
    cr_status st = cr__hankel_svd(h, L, horizon, &req, &s);
    if (st != CR_OK) return st;
    st = fit(h, L, N, margin, &s, out);
    cr__hsvd_free(&s);
    return st;
}

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

/* ||h - hhat||^2 for the horizon (absolute). */
static double sq_error(const double *h, size_t L, cr_horizon horizon, const cr__modal *m,
                       double *work)
{
    return cr__modal_err2(m, h, L, horizon, work);
}

/* Per-channel workspace: the decompositions (grown on demand), candidate
 * models and the materialised kernel. */
typedef struct fit_ws {
    const double *h;
    size_t L;
    const cr_fit_options *o;
    cr__hsvd sinf, swin;      /* k == 0: not computed */
    cr__modal cand, best;
    double *work;             /* L */
} fit_ws;

/* Make sure the decomposition `which` holds >= k triplets (with vectors). */
static cr_status ensure_svd(fit_ws *w, cr_horizon which, size_t k)
{
    cr__hsvd *s = which == CR_HORIZON_INFINITE ? &w->sinf : &w->swin;
    if (s->k >= k || (s->k > 0 && s->k >= s->r)) return CR_OK;
    size_t want = s->k > 0 ? (k > 2 * s->k ? k : 2 * s->k) : k;
    cr__hsvd_free(s);
    const cr__hsvd_req req = { want, k, 1, FIT_RTOL, FIT_TTOL, CR__HSVD_AUTO };
    return cr__hankel_svd(w->h, w->L, which, &req, s);
}

/* Crowded near-unit poles (window horizon). When many pole pairs sit
 * near 1 about one Rayleigh width 2 pi / L apart (trained S4D kernels),
 * each half of the window alone cannot separate them: the window Hankel
 * (whose rows and columns each see half the window) loses numerical rank,
 * its shift-invariant subspace puts poles outside the circle (|lambda| ~
 * 1.005-1.03; that model fits to ~1e-9), and clipping them costs 1e-2 ..
 * 1e-1, a point from which local refinement stalls. The full window does
 * resolve the poles (the true design matrix is well conditioned), so the
 * l2 fit is well posed; what is missing is a start in its basin. We get
 * there by continuation in the pole bound: start from the raw (unstable)
 * pencil model, padded to order N with slow pairs near 1, and refine with
 * the QR-based variable projection under |lambda| <= rho, lowering rho
 * step by step to 1 - margin. Costs ~1-2 s per channel at L = 1024,
 * N = 64, so it runs only when the cheap route ends far above what the
 * window Hankel singular values say is reachable. */
#define HARD_STAGE_IT 40
#define HARD_FINAL_IT 400
/* Long refinements (the grid start, and a final polish of the best
 * far-route model): up to POLISH_IT LM iterations (~2.5 ms each at
 * L = 1024, N = 64), stopping once the relative error is below
 * sqrt(POLISH_REL2) or on stagnation. Trained S4D channels need 400 ..
 * 3000 from the grid start (flat valley: smallest singular values of the
 * scaled Jacobian ~1e-11 of the largest, convergence linear, but steady).
 * A grid fit that gets there makes the continuation runs unnecessary. */
#define POLISH_IT 3000
#define POLISH_REL2 1e-16
/* below this squared relative error (1e-7 relative, 10x under what the
 * S4D acceptance asks) the continuation runs are skipped and the polish
 * stops */
#define POLISH_GOOD2 1e-14

static void clip_radius(cr__modal *m, double rmax)
{
    for (size_t j = 0; j < m->n; j++) {
        double a = hypot(m->pole_re[j], m->pole_im[j]);
        if (a > rmax) {
            m->pole_re[j] *= rmax / a;
            m->pole_im[j] *= rmax / a;
        }
    }
}

/* Continuation fit into w->cand (see above); *e2 its squared error. */
static cr_status fit_hard_window(fit_ws *w, size_t N, double hn2, double shrink, double *e2)
{
    const double *h = w->h;
    size_t L = w->L;
    cr__modal *m = &w->cand;
    double rmax = 1.0 - w->o->margin;
    cr_status st;
    *e2 = INFINITY;
    /* margin < 0: the pencil leaves poles up to radius 2 where they are */
    if ((st = cr__fit_pencil_svd(h, L, N, 2.0, &w->swin, m)) != CR_OK) return st;
    size_t n = cr__modal_order(m);
    double th = 2.0 * 3.141592653589793 / (double)L;
    while (n + 2 <= N && m->n < m->cap) {
        size_t j = m->n++;
        m->kind[j] = CR_MODE_PAIR;
        m->pole_re[j] = 0.999 * cos(th);
        m->pole_im[j] = 0.999 * sin(th);
        m->res_re[j] = m->res_im[j] = 0;
        th *= 2.3;
        if (th > 3.0) th = 3.0;
        n += 2;
    }
    if ((st = cr__residues_ls(h, L, CR_HORIZON_WINDOW, m)) != CR_OK) return st;
    double rho = 0.0;
    for (size_t j = 0; j < m->n; j++) rho = fmax(rho, hypot(m->pole_re[j], m->pole_im[j]));
    rho = fmax(rho * 1.00001, rmax);
    if (rho >= 2.0) rho = 1.999;
    const double f_stop = 1e-18 * hn2;
    for (;;) {
        /* a pole exactly on the bound is frozen radially by the tanh map */
        clip_radius(m, rho * (1.0 - 1e-4));
        int last = rho <= rmax;
        st = cr__refine_varpro_precise(h, L, rho, last ? HARD_FINAL_IT : HARD_STAGE_IT, f_stop, m);
        if (st != CR_OK) return st;
        if (last) break;
        double ex = rho - 1.0;
        if (ex > 2e-4) rho = 1.0 + shrink * ex;
        else if (ex > 0) rho = 1.0 - 1e-4;
        else rho = 1.0 - 0.5 * (1.0 - rho);
        if (rho < rmax || (rho < 1.0 && 1.0 - rho < 2.0 * (1.0 - rmax))) rho = rmax;
    }
    *e2 = sq_error(h, L, CR_HORIZON_WINDOW, m, w->work);
    return CR_OK;
}

/* Vector-fitting style start (Gustavsen): N/2 lightly damped pairs evenly
 * spread in angle over the band the pencil poles occupy, refined by the
 * precise variable projection at the final bound. Where the poles of the
 * kernel are themselves nearly evenly spread (S4D's A_imag = pi n
 * initialisation survives training) this start is in the basin of the
 * l2 optimum, which the pencil-based continuation often misses. Result in
 * w->cand, *e2 its squared error. */
static cr_status fit_grid_window(fit_ws *w, size_t N, double hn2, double *e2)
{
    const double *h = w->h;
    size_t L = w->L;
    cr__modal *m = &w->cand;
    double rmax = 1.0 - w->o->margin;
    cr_status st;
    *e2 = INFINITY;
    if ((st = cr__fit_pencil_svd(h, L, N, 2.0, &w->swin, m)) != CR_OK) return st;
    double amax = 0.0;
    double *rad = w->work; /* scratch: radii, L >= 2N + 1 > m->n */
    size_t nr = 0;
    for (size_t j = 0; j < m->n; j++) {
        double a = fabs(atan2(m->pole_im[j], m->pole_re[j]));
        /* poles carrying no weight say nothing about the band */
        if (a > amax && a < 3.0) amax = a;
        rad[nr++] = hypot(m->pole_re[j], m->pole_im[j]);
    }
    double r0 = 0.999;
    if (nr > 0) {
        /* median radius (insertion sort: m->n <= N is small) */
        for (size_t i = 1; i < nr; i++)
            for (size_t k = i; k > 0 && rad[k - 1] > rad[k]; k--) {
                double t = rad[k];
                rad[k] = rad[k - 1];
                rad[k - 1] = t;
            }
        r0 = fmin(rad[nr / 2], 0.999);
        if (r0 < 0.5) r0 = 0.5;
    }
    r0 = fmin(r0, rmax * (1.0 - 1e-4));
    /* Angle 0 gets real poles, not a pair: a pair at angle ~0 whose
     * second column carries no weight (S4D's A_imag = 0 mode) makes the
     * objective quartic in that angle, and Gauss-Newton crawls. Two reals
     * (one with nothing to do has a zero Jacobian column, harmless), the
     * rest pairs evenly spread over (0, amax]. */
    if (N < 2 || !(amax > 0.0)) return CR_OK;
    size_t nreal = N % 2 == 1 ? 1 : 2;
    size_t np = (N - nreal) / 2;
    double da = np > 0 ? amax / (double)np : amax;
    m->n = 0;
    for (size_t k = 0; k < nreal; k++) {
        m->kind[m->n] = CR_MODE_REAL;
        m->pole_re[m->n] = k == 0 ? r0 : 0.0;
        m->pole_im[m->n] = m->res_re[m->n] = m->res_im[m->n] = 0;
        m->n++;
    }
    for (size_t k = 1; k <= np; k++) {
        double a = (double)k * da;
        m->kind[m->n] = CR_MODE_PAIR;
        m->pole_re[m->n] = r0 * cos(a);
        m->pole_im[m->n] = r0 * sin(a);
        m->res_re[m->n] = m->res_im[m->n] = 0;
        m->n++;
    }
    if ((st = cr__residues_ls(h, L, CR_HORIZON_WINDOW, m)) != CR_OK) return st;
    st = cr__refine_varpro_precise(h, L, rmax, POLISH_IT, POLISH_REL2 * hn2, m);
    if (st != CR_OK) return st;
    *e2 = sq_error(h, L, CR_HORIZON_WINDOW, m, w->work);
    return CR_OK;
}

/* One fit of order N with the chosen method into w->best; *e2 = squared
 * l2 error for the horizon. */
static cr_status fit_order(fit_ws *w, size_t N, double *e2)
{
    const cr_fit_options *o = w->o;
    const double *h = w->h;
    size_t L = w->L;
    cr_status st;
    cr__modal *best = &w->best, *cand = &w->cand;
    best->n = 0;
    best->d = h[0];
    if (N == 0) {
        *e2 = sq_error(h, L, o->horizon, best, w->work);
        return CR_OK;
    }
    switch (o->method) {
    case CR_METHOD_BT:
        if ((st = ensure_svd(w, CR_HORIZON_INFINITE, N + 1)) != CR_OK) return st;
        st = cr__fit_bt_svd(h, L, N, o->margin, &w->sinf, best);
        break;
    case CR_METHOD_PENCIL:
        if ((st = ensure_svd(w, CR_HORIZON_WINDOW, N)) != CR_OK) return st;
        st = cr__fit_pencil_svd(h, L, N, 1.0 - o->margin, &w->swin, best);
        break;
    case CR_METHOD_HNA:
        st = cr__fit_hna(h, L, N, o->margin, best);
        break;
    default: {
        /* Both starts, then variable projection. Refinement is the costly
         * part, so the better start is refined first and the other only
         * when its raw error is within 1.5x of that refined error (it then
         * has a real chance to end lower). */
        if ((st = ensure_svd(w, CR_HORIZON_INFINITE, N + 1)) != CR_OK) return st;
        /* N + 1 window triplets: sigma_{N+1} judges the refined error */
        if ((st = ensure_svd(w, CR_HORIZON_WINDOW, N + 1)) != CR_OK) return st;
        if ((st = cr__fit_bt_svd(h, L, N, o->margin, &w->sinf, best)) != CR_OK) return st;
        if ((st = cr__fit_pencil_svd(h, L, N, 1.0 - o->margin, &w->swin, cand)) != CR_OK) return st;
        double eb = sq_error(h, L, o->horizon, best, w->work);
        double ec = sq_error(h, L, o->horizon, cand, w->work);
        if (ec < eb) {   /* swap: best holds the better start */
            cr__modal_swap(best, cand);
            double te = eb;
            eb = ec;
            ec = te;
        }
        if ((st = cr__refine_varpro(h, L, o->horizon, o->margin, best)) != CR_OK) return st;
        eb = sq_error(h, L, o->horizon, best, w->work);
        /* far: the refined error is way above the level the Hankel
         * singular values promise (sigma_{N+1} of the horizon's Hankel,
         * here an upper bound when not all values are known) */
        double hn2 = 0.0;
        for (size_t k = 0; k < L; k++) hn2 += h[k] * h[k];
        const cr__hsvd *sh = o->horizon == CR_HORIZON_WINDOW ? &w->swin : &w->sinf;
        double reach = cr__hsvd_value(sh, N);
        int far = eb > 1e-16 * hn2 && eb > 1e6 * reach * reach;
        if (ec <= 2.25 * eb || far) {
            /* stops early once it heads for best's minimum */
            if ((st = cr__refine_varpro_vs(h, L, o->horizon, o->margin, best, eb, cand)) != CR_OK)
                return st;
            ec = sq_error(h, L, o->horizon, cand, w->work);
            if (ec < eb) {
                cr__modal_copy(best, cand);
                eb = ec;
            }
        }
        if (far && o->horizon == CR_HORIZON_WINDOW && N >= 2 && L - 1 >= 2 * N &&
            eb > 1e6 * reach * reach) {
            /* two schedules: the path matters in this nonconvex regime */
            static const double shrink[2] = { 0.5, 0.3 };
            double eg;
            if ((st = fit_grid_window(w, N, hn2, &eg)) != CR_OK) return st;
            if (eg < eb) {
                cr__modal_copy(best, cand);
                eb = eg;
            }
            for (int a = 0; a < 2 && eb > 1e6 * reach * reach && eb > POLISH_GOOD2 * hn2; a++) {
                double eh;
                if ((st = fit_hard_window(w, N, hn2, shrink[a], &eh)) != CR_OK) return st;
                if (eh < eb) {
                    cr__modal_copy(best, cand);
                    eb = eh;
                }
            }
            if (eb > POLISH_GOOD2 * hn2 && eb > 1e6 * reach * reach) {
                /* polish: the best of these ends in a flat valley where
                 * LM still makes steady (linear) progress when the stage
                 * budgets run out */
                double rmax = 1.0 - o->margin;
                st = cr__refine_varpro_precise(h, L, rmax, POLISH_IT, POLISH_GOOD2 * hn2, best);
                if (st != CR_OK) return st;
                eb = sq_error(h, L, o->horizon, best, w->work);
            }
        }
        *e2 = eb;
        return CR_OK;
    }
    }
    if (st != CR_OK) return st;
    *e2 = sq_error(h, L, o->horizon, best, w->work);
    return CR_OK;
}

/* Smallest order whose relative error meets tol (see the file comment). */
static cr_status fit_tol(fit_ws *w, size_t maxN, double hn2)
{
    const cr_fit_options *o = w->o;
    double target = o->tol * o->tol * hn2;
    cr_status st;
    double e2;
    /* HSV guide: the smallest N with sigma_{N+1} <= tol ||h|| on the Hankel
     * matrix of the horizon (window rank = exact order on the window). */
    cr_horizon gw = o->horizon;
    size_t N0 = 0;
    for (;;) {
        size_t k = N0 + 16 < maxN + 1 ? N0 + 16 : maxN + 1;
        if ((st = ensure_svd(w, gw, k)) != CR_OK) return st;
        cr__hsvd *s = gw == CR_HORIZON_INFINITE ? &w->sinf : &w->swin;
        size_t lim = s->k < maxN + 1 ? s->k : maxN + 1;
        while (N0 < lim && cr__hsvd_value(s, N0) > o->tol * sqrt(hn2)) N0++;
        if (N0 < lim || lim >= maxN + 1 || s->k >= s->r) break;
    }
    if (N0 > maxN) N0 = maxN;
    /* verify, then walk: down while it still meets tol, else up by
     * doubling steps and bisect back. */
    size_t lo_fail = 0, hi_ok = 0;   /* hi_ok == 0: none found yet */
    int have_lo = 0;
    if ((st = fit_order(w, N0, &e2)) != CR_OK) return st;
    if (e2 <= target) {
        hi_ok = N0;
        while (hi_ok > 0) {
            if ((st = fit_order(w, hi_ok - 1, &e2)) != CR_OK) return st;
            if (e2 > target) { lo_fail = hi_ok - 1; have_lo = 1; break; }
            hi_ok--;
        }
        if (!have_lo) return fit_order(w, hi_ok, &e2);
    } else {
        lo_fail = N0;
        have_lo = 1;
        size_t step = 1;
        for (;;) {
            size_t N = lo_fail + step;
            if (N > maxN) N = maxN;
            if (N <= lo_fail) return fit_order(w, maxN, &e2); /* nothing meets tol */
            if ((st = fit_order(w, N, &e2)) != CR_OK) return st;
            if (e2 <= target) { hi_ok = N; break; }
            lo_fail = N;
            if (N == maxN) return CR_OK; /* best effort: the max_order fit */
            step *= 2;
        }
        while (hi_ok - lo_fail > 1) {
            size_t mid = lo_fail + (hi_ok - lo_fail) / 2;
            if ((st = fit_order(w, mid, &e2)) != CR_OK) return st;
            if (e2 <= target) hi_ok = mid;
            else lo_fail = mid;
        }
    }
    return fit_order(w, hi_ok, &e2);
}

static cr_status fit_channel(const double *h, size_t L, const cr_fit_options *o, size_t maxN,
                             cr__modal *out, cr_fit_record *rec)
{
    fit_ws w;
    memset(&w, 0, sizeof w);
    w.h = h;
    w.L = L;
    w.o = o;
    cr_status st;
    size_t cap = o->order > 0 ? o->order : maxN;
    if (cap == 0) cap = 1;
    w.work = malloc(L * sizeof *w.work);
    if (w.work == NULL) return cr__fail(CR_ENOMEM, "fit: out of memory");
    if ((st = cr__modal_alloc(&w.best, cap)) != CR_OK) goto done;
    if ((st = cr__modal_alloc(&w.cand, cap)) != CR_OK) goto done;
    long double n2 = 0;
    for (size_t k = 0; k < L; k++) n2 += (long double)h[k] * h[k];
    double hn2 = (double)n2, htail2 = hn2 - h[0] * h[0];
    if (L == 1 || !(htail2 > 0)) {
        /* L = 1, or h[k] = 0 for k >= 1 (all-zero kernels included): d only */
        w.best.n = 0;
        w.best.d = h[0];
    } else if (o->order > 0) {
        double e2;
        size_t N = o->order < L - 1 ? o->order : L - 1;
        st = fit_order(&w, N, &e2);
    } else {
        st = fit_tol(&w, maxN, hn2);
    }
    if (st != CR_OK) goto done;
    if (out->cap < w.best.n) {
        st = cr__fail(CR_EINVAL, "fit: internal capacity error");
        goto done;
    }
    cr__modal_copy(out, &w.best);
    if ((st = cr__modal_errors(out, h, L, rec)) != CR_OK) goto done;
    size_t Nact = cr__modal_order(out);
    if (L < 2 || !(htail2 > 0)) {
        rec->sigma_next = 0;
        rec->bt_bound = 0;
    } else {
        /* the FIR Hankel with >= Nact+1 values for the bounds */
        if ((st = ensure_svd(&w, CR_HORIZON_INFINITE, Nact + 1)) != CR_OK) goto done;
        rec->sigma_next = cr__hsvd_value(&w.sinf, Nact);
        rec->bt_bound = 2.0 * cr__hsvd_tail(&w.sinf, Nact);
    }
    rec->order = Nact;
    rec->length = L;
done:
    cr__hsvd_free(&w.sinf);
    cr__hsvd_free(&w.swin);
    cr__modal_free(&w.best);
    cr__modal_free(&w.cand);
    free(w.work);
    return st;
}

CR_API cr_status cr_fit(const double *h, size_t C, size_t L, const cr_fit_options *opt,
                        cr_model **out)
{
    if (out == NULL) return cr__fail(CR_EINVAL, "cr_fit: output model pointer is NULL");
    *out = NULL;
    if (h == NULL) return cr__fail(CR_EINVAL, "cr_fit: kernels are NULL");
    cr_fit_options o;
    if (opt == NULL) cr_fit_options_default(&o);
    else o = *opt;
    if (C == 0 || L == 0)
        return cr__fail(CR_EINVAL, "cr_fit: empty kernel bank (C = %zu, L = %zu)", C, L);
    size_t CL;
    if (!cr__mul_ok(C, L, &CL) || CL > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "cr_fit: %zu x %zu kernels is absurdly large", C, L);
    if (o.method != CR_METHOD_AUTO && o.method != CR_METHOD_BT && o.method != CR_METHOD_HNA &&
        o.method != CR_METHOD_PENCIL)
        return cr__fail(CR_EINVAL, "cr_fit: unknown method %d", (int)o.method);
    if (o.horizon != CR_HORIZON_WINDOW && o.horizon != CR_HORIZON_INFINITE)
        return cr__fail(CR_EINVAL, "cr_fit: unknown horizon %d", (int)o.horizon);
    if (!(o.margin > 0 && o.margin < 1))
        return cr__fail(CR_EINVAL, "cr_fit: stability margin %g must be in (0, 1)", o.margin);
    if (o.order > 0 && o.order >= L)
        return cr__fail(CR_EINVAL, "cr_fit: order %zu must be below the kernel length %zu%s",
                        o.order, L, o.order > CR_MAX_ELEMS ? " (negative or absurd order?)" : "");
    if (o.order == 0 && !(o.tol > 0 && isfinite(o.tol)))
        return cr__fail(CR_EINVAL, "cr_fit: tolerance %g must be positive and finite", o.tol);
    if (o.max_order > CR_MAX_ELEMS)
        return cr__fail(CR_EINVAL, "cr_fit: max_order %zu is absurd", o.max_order);
    for (size_t i = 0; i < CL; i++)
        if (!isfinite(h[i]))
            return cr__fail(CR_ENONFINITE, "cr_fit: kernel %zu has a non-finite value at k = %zu",
                            i / L, i % L);
    size_t maxN = o.max_order > 0 ? o.max_order : 256;
    if (maxN > L - 1) maxN = L - 1;
    size_t cap = o.order > 0 ? o.order : maxN;
    if (cap == 0) cap = 1;

    cr__modal *mods = calloc(C, sizeof *mods);
    cr_fit_record *recs = calloc(C, sizeof *recs);
    if (mods == NULL || recs == NULL) {
        free(mods);
        free(recs);
        return cr__fail(CR_ENOMEM, "cr_fit: out of memory (%zu channels)", C);
    }
    cr_status st = CR_OK;
    for (size_t c = 0; c < C && st == CR_OK; c++) st = cr__modal_alloc(&mods[c], cap);

    int fail = CR_OK;
    size_t fail_c = 0;
    char fail_msg[256] = "";
    size_t done = 0;
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#endif
    if (st == CR_OK) {
        int nth = o.nthreads;
#ifdef _OPENMP
        if (nth <= 0) nth = omp_get_max_threads();
        if ((size_t)nth > C) nth = (int)C;
#else
        nth = 1;
#endif
        #pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
        for (size_t c = 0; c < C; c++) {
            int skip;
            #pragma omp atomic read
            skip = fail;
            if (skip != CR_OK) continue;
            cr_status s = fit_channel(h + c * L, L, &o, maxN, &mods[c], &recs[c]);
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
    }
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(blas_threads);
#endif
    if (st == CR_OK && fail != CR_OK)
        st = cr__fail((cr_status)fail, "cr_fit: channel %zu: %s", fail_c, fail_msg);

    cr_model *model = NULL;
    if (st == CR_OK) {
        size_t M = 0;
        for (size_t c = 0; c < C; c++)
            if (mods[c].n > M) M = mods[c].n;
        st = cr_model_create(&model, C, M);
        for (size_t c = 0; c < C && st == CR_OK; c++) {
            st = cr_model_set_channel(model, c, mods[c].n, mods[c].kind, mods[c].pole_re,
                                      mods[c].pole_im, mods[c].res_re, mods[c].res_im, mods[c].d);
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
