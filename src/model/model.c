/* The public model object: creation, copies, channels, stability, kernels
 * and errors (through the modal core, modal.c), and the modal <->
 * polynomial conversion. */
#include "model/model.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------
 * Creation, copy, channels
 * --------------------------------------------------------------------- */

static void record_reset(cr_fit_record *r)
{
    r->order = 0;
    r->length = 0;
    r->err_window = NAN;
    r->err_infinite = NAN;
    r->err_hinf = NAN;
    r->h_norm = NAN;
    r->sigma_next = NAN;
    r->bt_bound = NAN;
    r->band_db_max = NAN;
    r->band_db_rms = NAN;
    r->band_worst_hz = NAN;
}

cr_status cr_model_create(cr_model **m, size_t C, size_t M)
{
    size_t CM;
    if (!m) return cr__fail(CR_EINVAL, "cr_model_create: NULL output pointer");
    *m = NULL;
    if (C == 0) return cr__fail(CR_EINVAL, "cr_model_create: zero channels");
    if (!cr__mul_ok(C, M, &CM) || CM > CR_MAX_ELEMS || C > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "cr_model_create: %zu channels x %zu modes is absurdly large",
                        C, M);
    cr_model *p = calloc(1, sizeof *p);
    if (!p) return cr__fail(CR_ENOMEM, "cr_model_create: out of memory");
    size_t na = CM ? CM : 1; /* calloc(0) may return NULL */
    p->C = C;
    p->M = M;
    p->kind = calloc(na, 1);
    p->pole_re = calloc(na, sizeof(double));
    p->pole_im = calloc(na, sizeof(double));
    p->res_re = calloc(na, sizeof(double));
    p->res_im = calloc(na, sizeof(double));
    p->d = calloc(C, sizeof(double));
    p->record = calloc(C, sizeof(cr_fit_record));
    if (!p->kind || !p->pole_re || !p->pole_im || !p->res_re || !p->res_im || !p->d ||
        !p->record) {
        cr_model_destroy(p);
        return cr__fail(CR_ENOMEM, "cr_model_create: out of memory (%zu x %zu)", C, M);
    }
    for (size_t c = 0; c < C; c++) record_reset(&p->record[c]);
    p->method = CR_METHOD_NONE;
    p->horizon = CR_HORIZON_WINDOW;
    *m = p;
    return CR_OK;
}

void cr_model_destroy(cr_model *m)
{
    if (!m) return;
    free(m->kind);
    free(m->pole_re);
    free(m->pole_im);
    free(m->res_re);
    free(m->res_im);
    free(m->d);
    free(m->record);
    free(m);
}

cr_status cr_model_copy(const cr_model *m, cr_model **out)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_model_copy: NULL output pointer");
    *out = NULL;
    if (!m) return cr__fail(CR_EINVAL, "cr_model_copy: NULL model");
    cr_model *p;
    cr_status s = cr_model_create(&p, m->C, m->M);
    if (s != CR_OK) return s;
    size_t CM = m->C * m->M;
    if (CM) {
        memcpy(p->kind, m->kind, CM);
        memcpy(p->pole_re, m->pole_re, CM * sizeof(double));
        memcpy(p->pole_im, m->pole_im, CM * sizeof(double));
        memcpy(p->res_re, m->res_re, CM * sizeof(double));
        memcpy(p->res_im, m->res_im, CM * sizeof(double));
    }
    memcpy(p->d, m->d, m->C * sizeof(double));
    memcpy(p->record, m->record, m->C * sizeof(cr_fit_record));
    p->method = m->method;
    p->horizon = m->horizon;
    p->rate = m->rate;
    *out = p;
    return CR_OK;
}

cr_status cr_model_set_channel(cr_model *m, size_t c, size_t n, const unsigned char *kind,
                               const double *pole_re, const double *pole_im,
                               const double *res_re, const double *res_im, double d)
{
    if (!m) return cr__fail(CR_EINVAL, "cr_model_set_channel: NULL model");
    if (c >= m->C)
        return cr__fail(CR_EINVAL, "cr_model_set_channel: channel %zu out of range (C = %zu)", c,
                        m->C);
    if (n > m->M)
        return cr__fail(CR_EINVAL, "cr_model_set_channel: %zu modes exceed the capacity M = %zu",
                        n, m->M);
    if (n > 0 && (!kind || !pole_re || !pole_im || !res_re || !res_im))
        return cr__fail(CR_EINVAL, "cr_model_set_channel: NULL mode array");
    if (!isfinite(d))
        return cr__fail(CR_ENONFINITE, "cr_model_set_channel: channel %zu: non-finite d", c);
    for (size_t j = 0; j < n; j++) {
        cr_status s = cr__modal_check_mode(kind[j], pole_re[j], pole_im[j], res_re[j],
                                           res_im[j], c, j);
        if (s != CR_OK) return s;
    }
    size_t o = c * m->M, order = 0;
    for (size_t j = 0; j < n; j++) {
        /* A pair is stored with pole_im > 0: conjugating both pole and
         * residue leaves 2 Re(r lambda^(k-1)) unchanged. */
        double sg = (kind[j] == CR_MODE_PAIR && pole_im[j] < 0) ? -1.0 : 1.0;
        m->kind[o + j] = kind[j];
        m->pole_re[o + j] = pole_re[j];
        m->pole_im[o + j] = sg * pole_im[j];
        m->res_re[o + j] = res_re[j];
        m->res_im[o + j] = sg * res_im[j] + 0.0; /* + 0.0: no -0 */
        order += kind[j];
    }
    for (size_t j = n; j < m->M; j++) {
        m->kind[o + j] = CR_MODE_UNUSED;
        m->pole_re[o + j] = m->pole_im[o + j] = m->res_re[o + j] = m->res_im[o + j] = 0.0;
    }
    m->d[c] = d;
    m->record[c].order = order;
    return CR_OK;
}

cr_status cr_model_get_view(const cr_model *m, cr_model_view *v)
{
    if (!m || !v) return cr__fail(CR_EINVAL, "cr_model_get_view: NULL argument");
    v->C = m->C;
    v->M = m->M;
    v->kind = m->kind;
    v->pole_re = m->pole_re;
    v->pole_im = m->pole_im;
    v->res_re = m->res_re;
    v->res_im = m->res_im;
    v->d = m->d;
    v->record = m->record;
    v->method = m->method;
    v->horizon = m->horizon;
    v->rate = m->rate;
    return CR_OK;
}

size_t cr_model_order(const cr_model *m, size_t c)
{
    if (!m || c >= m->C) return 0;
    cr__modal v = cr__model_channel(m, c);
    return cr__modal_order(&v);
}

double cr_model_spectral_radius(const cr_model *m, size_t c)
{
    if (!m || c >= m->C) return NAN;
    cr__modal v = cr__model_channel(m, c);
    return cr__modal_radius(&v);
}

cr_status cr_model_check_stable(const cr_model *m, double margin)
{
    if (!m) return cr__fail(CR_EINVAL, "cr_model_check_stable: NULL model");
    if (!(margin >= 0.0) || !(margin < 1.0))
        return cr__fail(CR_EINVAL, "cr_model_check_stable: margin %g not in [0, 1)", margin);
    /* |lambda| < 1 always (a pole on the circle never decays), and
     * |lambda| <= 1 - margin. */
    for (size_t c = 0; c < m->C; c++) {
        for (size_t j = 0; j < m->M; j++) {
            size_t i = c * m->M + j;
            if (m->kind[i] == CR_MODE_UNUSED) continue;
            double a = hypot(m->pole_re[i], m->pole_im[i]);
            if (!(a < 1.0) || a > 1.0 - margin)
                return cr__fail(CR_EUNSTABLE,
                                "channel %zu mode %zu: |lambda| = %.17g exceeds 1 - margin = %.17g",
                                c, j, a, 1.0 - margin);
        }
    }
    return CR_OK;
}

void cr_model_set_record(cr_model *m, size_t c, const cr_fit_record *r)
{
    if (!m || !r || c >= m->C) return;
    m->record[c] = *r;
}

void cr_model_set_info(cr_model *m, cr_method method, cr_horizon horizon)
{
    if (!m) return;
    m->method = method;
    m->horizon = horizon;
}

cr_status cr_model_set_rate(cr_model *m, double rate)
{
    if (!m) return cr__fail(CR_EINVAL, "cr_model_set_rate: NULL model");
    if (!(rate == 0.0 || (rate > 0.0 && isfinite(rate))))
        return cr__fail(CR_EINVAL, "cr_model_set_rate: sample rate %g must be positive and finite "
                        "(or 0: unknown)", rate);
    m->rate = rate;
    return CR_OK;
}

double cr_model_rate(const cr_model *m) { return m ? m->rate : 0.0; }

/* ---------------------------------------------------------------------
 * Kernel
 * --------------------------------------------------------------------- */

cr__modal cr__model_channel(const cr_model *m, size_t c)
{
    size_t o = c * m->M;
    cr__modal v = { m->M, 0, m->kind + o, m->pole_re + o, m->pole_im + o,
                    m->res_re + o, m->res_im + o, m->d[c] };
    return v;
}

cr_status cr__model_set_modal(cr_model *m, size_t c, const cr__modal *x)
{
    return cr_model_set_channel(m, c, x->n, x->kind, x->pole_re, x->pole_im, x->res_re,
                                x->res_im, x->d);
}

cr_status cr_model_kernel(const cr_model *m, size_t L, double *out)
{
    size_t CL;
    if (!m || !out) return cr__fail(CR_EINVAL, "cr_model_kernel: NULL argument");
    if (L == 0) return cr__fail(CR_EINVAL, "cr_model_kernel: zero length");
    if (!cr__mul_ok(m->C, L, &CL) || CL > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "cr_model_kernel: %zu x %zu is absurdly large", m->C, L);
    long C = (long)m->C;
#pragma omp parallel for schedule(static) if (m->C > 1 && CL > 65536)
    for (long c = 0; c < C; c++) {
        cr__modal v = cr__model_channel(m, (size_t)c);
        cr__modal_kernel(&v, L, out + (size_t)c * L);
    }
    return CR_OK;
}

/* ---------------------------------------------------------------------
 * Errors
 * --------------------------------------------------------------------- */

cr_status cr_model_errors(const cr_model *m, size_t c, const double *h, size_t L,
                          cr_fit_record *rec)
{
    if (!m) return cr__fail(CR_EINVAL, "cr_model_errors: NULL model");
    if (c >= m->C)
        return cr__fail(CR_EINVAL, "cr_model_errors: channel %zu out of range (C = %zu)", c, m->C);
    cr__modal v = cr__model_channel(m, c);
    return cr__modal_errors(&v, h, L, rec);
}

/* ---------------------------------------------------------------------
 * Modal <-> polynomial
 * --------------------------------------------------------------------- */

/* p (degree dp, dp+1 coefficients) *= q (degree dq), in place; p has room
 * for dp + dq + 1 entries. */
static void poly_mul(double *p, size_t dp, const double *q, size_t dq)
{
    for (size_t i = dp + dq + 1; i-- > 0;) {
        double s = 0.0;
        for (size_t j = 0; j <= dq; j++)
            if (i >= j && i - j <= dp) s += q[j] * p[i - j];
        p[i] = s;
    }
}

/* Impulse response g[0..K-1] of B(z^-1)/A(z^-1) (b has N entries, a has N+1
 * with a[0] = 1), i.e. hhat[k+1] of the polynomial form. */
static void poly_impulse(size_t N, const double *b, const double *a, size_t K, double *g)
{
    for (size_t k = 0; k < K; k++) {
        double s = k < N ? b[k] : 0.0;
        for (size_t i = 1; i <= N && i <= k; i++) s -= a[i] * g[k - i];
        g[k] = s;
    }
}

/* Relative l2 distance of the modal and polynomial impulse responses over
 * K samples. */
static double poly_modal_mismatch(const cr__modal *v, size_t N, const double *b,
                                  const double *a, size_t K, double *work)
{
    double *g = work, *hh = work + K;
    poly_impulse(N, b, a, K, g);
    cr__modal v0 = *v;
    v0.d = 0.0;
    cr__modal_kernel(&v0, K + 1, hh);
    double e2 = 0.0, n2 = 0.0;
    for (size_t k = 0; k < K; k++) {
        double e = g[k] - hh[k + 1];
        e2 += e * e;
        n2 += g[k] * g[k];
    }
    if (!isfinite(e2)) return INFINITY;
    return n2 > 0.0 ? sqrt(e2 / n2) : sqrt(e2);
}

static size_t mismatch_len(size_t N) { return N * 4 > 64 ? N * 4 : 64; }

cr_status cr_model_to_poly(const cr_model *m, size_t c, double *b, double *a, double *d,
                           double *rel_err)
{
    if (!m || !b || !a) return cr__fail(CR_EINVAL, "cr_model_to_poly: NULL argument");
    if (c >= m->C)
        return cr__fail(CR_EINVAL, "cr_model_to_poly: channel %zu out of range (C = %zu)", c,
                        m->C);
    size_t N = cr_model_order(m, c), K = mismatch_len(N);
    double *num = calloc(N + 2, sizeof(double));
    double *work = malloc((2 * K + 2) * sizeof(double));
    if (!num || !work) {
        free(num);
        free(work);
        return cr__fail(CR_ENOMEM, "cr_model_to_poly: out of memory");
    }
    /* Running sum b/a over sections: b <- b * den_m + num_m * a. */
    memset(a, 0, (N + 1) * sizeof(double));
    a[0] = 1.0;
    size_t da = 0; /* degree of a so far; b has degree <= da - 1 */
    if (N) memset(b, 0, N * sizeof(double));
    cr__modal v = cr__model_channel(m, c);
    for (size_t j = 0; j < v.n; j++) {
        double den[3], nm[2];
        size_t dd;
        if (v.kind[j] == CR_MODE_UNUSED) continue;
        if (v.kind[j] == CR_MODE_REAL) {
            den[0] = 1.0;
            den[1] = -v.pole_re[j];
            nm[0] = v.res_re[j];
            dd = 1;
        } else {
            double lr = v.pole_re[j], li = v.pole_im[j];
            den[0] = 1.0;
            den[1] = -2.0 * lr;
            den[2] = lr * lr + li * li;
            nm[0] = 2.0 * v.res_re[j];
            nm[1] = -2.0 * (v.res_re[j] * lr + v.res_im[j] * li); /* -2 Re(r conj lambda) */
            dd = 2;
        }
        /* num = b * den  (degree da - 1 + dd) */
        memset(num, 0, (N + 2) * sizeof(double));
        if (da > 0) {
            memcpy(num, b, da * sizeof(double));
            poly_mul(num, da - 1, den, dd);
        }
        /* num += nm * a (degree dd - 1 + da) */
        for (size_t i = 0; i <= da; i++)
            for (size_t t = 0; t < dd; t++) num[i + t] += nm[t] * a[i];
        memcpy(b, num, (da + dd) * sizeof(double));
        poly_mul(a, da, den, dd);
        da += dd;
    }
    free(num);
    if (d) *d = m->d[c];
    double e = poly_modal_mismatch(&v, N, b, a, K, work);
    free(work);
    if (rel_err) *rel_err = e;
    if (!(e <= CR_POLY_ACCURACY))
        return cr__fail(CR_ESINGULAR,
                        "cr_model_to_poly: channel %zu (order %zu): polynomial form lost "
                        "accuracy, impulse responses differ by %.3g relative",
                        c, N, e);
    return CR_OK;
}

cr_status cr_model_set_channel_poly(cr_model *m, size_t c, size_t N, const double *b,
                                    const double *a, double d, double *rel_err)
{
    if (!m) return cr__fail(CR_EINVAL, "cr_model_set_channel_poly: NULL model");
    if (c >= m->C)
        return cr__fail(CR_EINVAL, "cr_model_set_channel_poly: channel %zu out of range (C = %zu)",
                        c, m->C);
    if (N > 0 && (!b || !a)) return cr__fail(CR_EINVAL, "cr_model_set_channel_poly: NULL b or a");
    if (N > m->M)
        return cr__fail(CR_EINVAL, "cr_model_set_channel_poly: order %zu exceeds capacity M = %zu",
                        N, m->M);
    if (N > 0 && a[0] != 1.0)
        return cr__fail(CR_EINVAL, "cr_model_set_channel_poly: a[0] = %g, must be 1 (monic)",
                        a[0]);
    if (!isfinite(d)) return cr__fail(CR_ENONFINITE, "cr_model_set_channel_poly: non-finite d");
    for (size_t i = 0; i < N; i++)
        if (!isfinite(b[i]) || !isfinite(a[i + 1]))
            return cr__fail(CR_ENONFINITE, "cr_model_set_channel_poly: non-finite coefficient %zu",
                            i);
    if (N == 0) {
        if (rel_err) *rel_err = 0.0;
        return cr_model_set_channel(m, c, 0, NULL, NULL, NULL, NULL, NULL, d);
    }
    if (N > 65536) return cr__fail(CR_EOVERFLOW, "cr_model_set_channel_poly: order %zu too large", N);
    if (a[N] == 0.0)
        return cr__fail(CR_EINVAL, "cr_model_set_channel_poly: a[N] = 0, the order is below %zu",
                        N);
    size_t K = mismatch_len(N);
    double *comp = calloc(N * N, sizeof(double));
    double *wr = malloc(N * sizeof(double)), *wi = malloc(N * sizeof(double));
    double *pr = malloc(5 * N * sizeof(double) + 2 * K * sizeof(double) + 2 * sizeof(double));
    unsigned char *kind = malloc(N);
    if (!comp || !wr || !wi || !pr || !kind) {
        free(comp);
        free(wr);
        free(wi);
        free(pr);
        free(kind);
        return cr__fail(CR_ENOMEM, "cr_model_set_channel_poly: out of memory (N = %zu)", N);
    }
    double *pi = pr + N, *rr = pr + 2 * N, *ri = pr + 3 * N, *work = pr + 5 * N;
    /* Companion matrix of z^N + a1 z^(N-1) + ... + aN (row-major): first row
     * -a, sub-diagonal ones. */
    for (size_t j = 0; j < N; j++) comp[j] = -a[j + 1];
    for (size_t i = 1; i < N; i++) comp[i * N + i - 1] = 1.0;
    lapack_int info = LAPACKE_dgeev(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)N, comp,
                                    (lapack_int)N, wr, wi, NULL, 1, NULL, 1);
    cr_status st = CR_OK;
    if (info != 0) {
        st = cr__fail(cr__lapack_status(info), "cr_model_set_channel_poly: dgeev failed (info %d)",
                      (int)info);
        goto done;
    }
    /* Residues rho_m = Bz(lambda_m) / prod_{j != m} (lambda_m - lambda_j),
     * Bz(z) = b0 z^(N-1) + ... + b_{N-1}. dgeev returns pairs as
     * consecutive (wi > 0, wi < 0) entries and real roots with wi = 0. */
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        if (wi[i] < 0.0) continue; /* the conjugate of the previous one */
        double complex lam = CMPLX(wr[i], wi[i]);
        double complex num = 0.0, den = 1.0;
        for (size_t t = 0; t < N; t++) num = num * lam + b[t];
        for (size_t t = 0; t < N; t++)
            if (t != i) den *= lam - CMPLX(wr[t], wi[t]);
        double complex rho = num / den;
        kind[n] = wi[i] > 0.0 ? CR_MODE_PAIR : CR_MODE_REAL;
        pr[n] = wr[i];
        pi[n] = wi[i];
        rr[n] = creal(rho);
        ri[n] = kind[n] == CR_MODE_PAIR ? cimag(rho) : 0.0;
        if (!isfinite(rr[n]) || !isfinite(ri[n])) {
            st = cr__fail(CR_ESINGULAR,
                          "cr_model_set_channel_poly: repeated roots, residues are not finite");
            goto done;
        }
        n++;
    }
    {
        cr__modal v = {n, 0, kind, pr, pi, rr, ri, d};
        double e = poly_modal_mismatch(&v, N, b, a, K, work);
        if (rel_err) *rel_err = e;
        st = cr_model_set_channel(m, c, n, kind, pr, pi, rr, ri, d);
        if (st == CR_OK && !(e <= CR_POLY_ACCURACY))
            st = cr__fail(CR_ESINGULAR,
                          "cr_model_set_channel_poly: channel %zu (order %zu): modal form lost "
                          "accuracy, impulse responses differ by %.3g relative",
                          c, N, e);
    }
done:
    free(comp);
    free(wr);
    free(wi);
    free(pr);
    free(kind);
    return st;
}
