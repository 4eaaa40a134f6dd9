/* The modal core: one channel in modal form and everything done to it
 * (model.h). The error function here is the only one in libconvrec: the
 * fits choose between candidates with it, refinements check "never worse
 * than the start" with it, and the fit records come from it.
 *
 * Kernel: hhat[k] = sum_j w_j Re(r_j lambda_j^(k-1)) is evaluated block
 * by block from a table of lambda^i (kernel_scaled), re-anchored by
 * binary powering every few blocks, so the error does not grow with k and
 * the inner loop has no serial multiply chain.
 *
 * Tail (MATH.md "Infinite objective"): for k >= L,
 *   sum_k hhat[k]^2 = sum_{a,b} 1/2 Re(beta_a beta_b S(l_a l_b)
 *                                     + beta_a conj(beta_b) S(l_a conj l_b)),
 *   beta = w r, S(mu) = mu^(L-1) / (1 - mu).
 *
 * H-inf (MATH.md "Frequency responses"): on the n-point grid the DTFT of
 * the infinite model response equals the DFT of its n-periodised response,
 * and periodising a mode in closed form rescales its residue by
 * 1 / (1 - lambda^n); so H - Hhat on the grid is one rfft of
 * (h zero-padded - periodised hhat), exact, with no rational function
 * evaluated point by point. */
#include "model/model.h"
#include "spectral/spectral.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

cr_status cr__modal_alloc(cr__modal *m, size_t cap)
{
    if (m == NULL) return cr__fail(CR_EINVAL, "modal: NULL channel");
    memset(m, 0, sizeof *m);
    size_t c = cap ? cap : 1, bytes;
    if (cap > CR_MAX_ELEMS || !cr__mul_ok(c, 4 * sizeof(double) + 1, &bytes))
        return cr__fail(CR_EOVERFLOW, "modal: %zu modes is absurd", cap);
    double *blk = calloc(1, bytes);
    if (blk == NULL) return cr__fail(CR_ENOMEM, "modal: out of memory (%zu modes)", cap);
    m->pole_re = blk;
    m->pole_im = blk + c;
    m->res_re = blk + 2 * c;
    m->res_im = blk + 3 * c;
    m->kind = (unsigned char *)(blk + 4 * c);
    m->cap = c;
    return CR_OK;
}

void cr__modal_free(cr__modal *m)
{
    if (m == NULL) return;
    if (m->cap > 0) free(m->pole_re); /* the block (cr__modal_alloc) */
    memset(m, 0, sizeof *m);
}

cr_status cr__modal_copy(cr__modal *dst, const cr__modal *src)
{
    if (dst == src) return CR_OK;
    if (dst->cap < src->n)
        return cr__fail(CR_EINVAL, "modal: copy of %zu modes into room for %zu", src->n, dst->cap);
    dst->n = src->n;
    dst->d = src->d;
    memcpy(dst->kind, src->kind, src->n);
    memcpy(dst->pole_re, src->pole_re, src->n * sizeof(double));
    memcpy(dst->pole_im, src->pole_im, src->n * sizeof(double));
    memcpy(dst->res_re, src->res_re, src->n * sizeof(double));
    memcpy(dst->res_im, src->res_im, src->n * sizeof(double));
    return CR_OK;
}

void cr__modal_swap(cr__modal *a, cr__modal *b)
{
    cr__modal t = *a;
    *a = *b;
    *b = t;
}

size_t cr__modal_order(const cr__modal *m)
{
    size_t N = 0;
    for (size_t j = 0; j < m->n; j++)
        N += m->kind[j] == CR_MODE_PAIR ? 2 : (m->kind[j] == CR_MODE_REAL);
    return N;
}

double cr__modal_radius(const cr__modal *m)
{
    double r = 0.0;
    for (size_t j = 0; j < m->n; j++) {
        if (m->kind[j] == CR_MODE_UNUSED) continue;
        double a = hypot(m->pole_re[j], m->pole_im[j]);
        if (!(a <= r)) r = a; /* NaN propagates */
    }
    return r;
}

size_t cr__modal_stabilize(cr__modal *m, double rmax, double reflect)
{
    size_t moved = 0;
    for (size_t j = 0; j < m->n; j++) {
        if (m->kind[j] == CR_MODE_UNUSED) continue;
        double re = m->pole_re[j], im = m->pole_im[j];
        double a = hypot(re, im);
        if (a <= rmax) continue;
        moved++;
        double na = a > reflect ? 1.0 / a : rmax;
        if (na > rmax) na = rmax;
        m->pole_re[j] = re / a * na;
        m->pole_im[j] = im / a * na;
    }
    return moved;
}

cr_status cr__modal_check_mode(unsigned char kind, double pr, double pi, double rr, double ri,
                               size_t c, size_t j)
{
    if (kind != CR_MODE_REAL && kind != CR_MODE_PAIR)
        return cr__fail(CR_EINVAL, "channel %zu mode %zu: kind %u is not 1 (real) or 2 (pair)", c,
                        j, (unsigned)kind);
    if (!isfinite(pr) || !isfinite(pi) || !isfinite(rr) || !isfinite(ri))
        return cr__fail(CR_ENONFINITE, "channel %zu mode %zu: non-finite pole or residue", c, j);
    if (kind == CR_MODE_REAL && (pi != 0.0 || ri != 0.0))
        return cr__fail(CR_EINVAL,
                        "channel %zu mode %zu: real mode with nonzero imaginary part "
                        "(pole im %g, residue im %g)",
                        c, j, pi, ri);
    if (kind == CR_MODE_PAIR && pi == 0.0)
        return cr__fail(CR_EINVAL, "channel %zu mode %zu: conjugate pair with a real pole", c, j);
    return CR_OK;
}

/* ---------------------------------------------------------------------
 * Kernel, tail, errors
 * --------------------------------------------------------------------- */

/* hhat[0..L-1] of m with residue r_j replaced by scale_j r_j when scale is
 * given (the periodised response of the H-inf error). Mode by mode, a
 * block of KV_BLOCK samples at a time: out[k0 + i] += Re(p lambda^i) with
 * the table lambda^i (i < KV_BLOCK) made once per mode and p = r
 * lambda^(k0 - 1), so the inner loop has no recurrence and vectorises
 * over i. p moves on by lambda^KV_BLOCK and is recomputed by binary
 * powering every KV_RESET blocks: the rounding error of a sample stays
 * below ~ (KV_RESET + 1) KV_BLOCK eps of its mode's term. */
#define KV_BLOCK 64
#define KV_RESET 4
CR_CLONES static void kernel_scaled(const cr__modal *m, const double complex *scale, size_t L,
                                    double *restrict out)
{
    memset(out, 0, L * sizeof(double));
    out[0] = m->d;
    double tr[KV_BLOCK], ti[KV_BLOCK];
    for (size_t j = 0; j < m->n; j++) {
        if (m->kind[j] == CR_MODE_UNUSED) continue;
        double w = m->kind[j] == CR_MODE_PAIR ? 2.0 : 1.0;
        const double lr = m->pole_re[j], li = m->pole_im[j];
        double complex r = w * CMPLX(m->res_re[j], m->res_im[j]);
        if (scale) r *= scale[j];
        const double complex lam = CMPLX(lr, li), lamb = cr__pow_table(lr, li, KV_BLOCK, tr, ti);
        double complex p = r;
        for (size_t k0 = 1, blk = 0; k0 < L; k0 += KV_BLOCK, blk++) {
            if (blk > 0 && blk % KV_RESET == 0) p = r * cr__cpow(lam, k0 - 1);
            const size_t nb = L - k0 < KV_BLOCK ? L - k0 : KV_BLOCK;
            const double a = creal(p), b = cimag(p);
            double *restrict o = out + k0;
#pragma omp simd
            for (size_t i = 0; i < nb; i++) o[i] += a * tr[i] - b * ti[i];
            p *= lamb;
        }
    }
}

void cr__modal_kernel(const cr__modal *m, size_t L, double *out)
{
    if (L > 0) kernel_scaled(m, NULL, L, out);
}

/* lambda and w r of mode j as complex numbers */
static inline double complex mode_pole(const cr__modal *m, size_t j)
{
    return CMPLX(m->pole_re[j], m->kind[j] == CR_MODE_PAIR ? m->pole_im[j] : 0.0);
}
static inline double complex mode_beta(const cr__modal *m, size_t j)
{
    double w = m->kind[j] == CR_MODE_PAIR ? 2.0 : 1.0;
    return w * CMPLX(m->res_re[j], m->kind[j] == CR_MODE_PAIR ? m->res_im[j] : 0.0);
}

/* For z = lambda: s0 = sum_{k<n} |z|^(2k) = sum (Re z^k)^2 + (Im z^k)^2, and
 * si = sum_{k<n} (Im z^k)^2 = Re(S(a) - S(b)) / 2 with a = |z|^2, b = z^2,
 * S(x) = sum_{k<n} x^k. Both by binary doubling (O(log n) products, no
 * loss near |z| = 1), si through the difference itself so that nothing
 * cancels when z is nearly real (si ~ Im(z)^2):
 *   D_2m = D_m (1 + a^m) + S_m(b) E_m,  E_2m = E_m (a^m + b^m),
 *   D_m+1 = D_m + E_m,  E_m+1 = a E_m + (a - b) b^m,
 * with D_m = S_m(a) - S_m(b), E_m = a^m - b^m and a - b = -2i Im(z) z. */
static void square_sums(double complex z, size_t n, double *s0, double *si)
{
    const double a = creal(z) * creal(z) + cimag(z) * cimag(z);
    const double complex b = z * z, amb = -2.0 * I * cimag(z) * z;
    double sa = 0.0, pa = 1.0;                 /* S_m(a), a^m */
    double complex sb = 0.0, pb = 1.0, D = 0.0, E = 0.0; /* S_m(b), b^m, D_m, E_m */
    int top = 0;
    while (top < 63 && (n >> (top + 1)) != 0) top++;
    for (int bit = n ? top : -1; bit >= 0; bit--) {
        D = D * (1.0 + pa) + sb * E;
        E = E * (pa + pb);
        sa += pa * sa;
        sb += pb * sb;
        pa *= pa;
        pb *= pb;
        if ((n >> bit) & 1u) {
            D += E;
            E = a * E + amb * pb;
            sa += pa;
            sb += pb;
            pa *= a;
            pb *= b;
        }
    }
    *s0 = sa;
    *si = 0.5 * creal(D);
}

double cr__modal_cancellation(const cr__modal *m, size_t L, double *work)
{
    if (L < 2) return 1.0;
    double l1 = 0.0;
    for (size_t j = 0; j < m->n; j++) {
        if (m->kind[j] == CR_MODE_UNUSED) continue;
        double complex la = mode_pole(m, j), be = mode_beta(m, j);
        /* ||Re lambda^k||^2 and ||Im lambda^k||^2 over k < L - 1 */
        double s0, si;
        square_sums(la, L - 1, &s0, &si);
        if (!isfinite(s0) || !isfinite(si)) return INFINITY;
        si = fmin(fmax(si, 0.0), s0);
        l1 += fabs(creal(be)) * sqrt(s0 - si) + fabs(cimag(be)) * sqrt(si);
    }
    kernel_scaled(m, NULL, L, work);
    double n2 = 0.0;
    for (size_t k = 1; k < L; k++) n2 += work[k] * work[k];
    if (!(l1 > 0.0)) return 1.0;
    return n2 > 0.0 ? l1 / sqrt(n2) : INFINITY;
}

double cr__modal_tail2(const cr__modal *m, size_t L)
{
    if (L == 0) L = 1; /* hhat[0] = d is not part of any tail */
    double acc = 0.0;
    for (size_t a = 0; a < m->n; a++) {
        if (m->kind[a] == CR_MODE_UNUSED) continue;
        double complex la = mode_pole(m, a), ba = mode_beta(m, a);
        if (ba == 0.0) continue;
        if (!(cabs(la) < 1.0)) return INFINITY;
        for (size_t b = a; b < m->n; b++) {
            if (m->kind[b] == CR_MODE_UNUSED) continue;
            double complex lb = mode_pole(m, b), bb = mode_beta(m, b);
            if (bb == 0.0) continue;
            if (!(cabs(lb) < 1.0)) return INFINITY;
            double complex m1 = la * lb, m2 = la * conj(lb);
            double t = 0.5 * creal(ba * bb * cr__cpow(m1, L - 1) / (1.0 - m1) +
                                   ba * conj(bb) * cr__cpow(m2, L - 1) / (1.0 - m2));
            acc += a == b ? t : 2.0 * t;
        }
    }
    return acc > 0.0 ? acc : 0.0; /* rounding may push an exact 0 below */
}

double cr__modal_err2(const cr__modal *m, const double *h, size_t L, cr_horizon horizon,
                      double *work)
{
    cr__modal_kernel(m, L, work);
    double e2 = 0;
#pragma omp simd reduction(+ : e2)
    for (size_t k = 0; k < L; k++) {
        double e = h[k] - work[k];
        e2 += e * e;
    }
    if (horizon == CR_HORIZON_INFINITE) e2 += cr__modal_tail2(m, L);
    return isfinite(e2) ? e2 : INFINITY;
}

/* max_w |H(e^iw) - Hhat(e^iw)| on the n-point grid, n >= 8L (see the file
 * comment). An unstable mode has no DTFT: the error is +Inf. */
static cr_status hinf_error(const cr__modal *m, const double *h, size_t L, double *out)
{
    size_t n8;
    if (!cr__mul_ok(L, 8, &n8) || n8 > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "H-inf grid for L = %zu is absurdly large", L);
    size_t n = cr_fft_good_size(n8 < 16 ? 16 : n8), nh = n / 2 + 1;
    for (size_t j = 0; j < m->n; j++)
        if (m->kind[j] != CR_MODE_UNUSED && (m->res_re[j] != 0.0 || m->res_im[j] != 0.0) &&
            !(hypot(m->pole_re[j], m->pole_im[j]) < 1.0)) {
            *out = INFINITY;
            return CR_OK;
        }
    double *x = cr__fft_alloc_d(n + 1);
    fftw_complex *X = cr__fft_alloc_cd(nh);
    double complex *q = malloc((m->n + 1) * sizeof *q);
    if (!x || !X || !q) {
        cr__fft_free(x);
        cr__fft_free(X);
        free(q);
        return cr__fail(CR_ENOMEM, "H-inf: out of memory (n = %zu)", n);
    }
    for (size_t j = 0; j < m->n; j++)
        q[j] = m->kind[j] == CR_MODE_UNUSED ? 0.0 : 1.0 / (1.0 - cr__cpow(mode_pole(m, j), n));
    kernel_scaled(m, q, n + 1, x);
    free(q);
    x[0] += x[n];
    for (size_t k = 0; k < n; k++) x[k] = (k < L ? h[k] : 0.0) - x[k];
    cr_status s = cr__rfft_d(n, x, X);
    double worst = 0.0;
    for (size_t f = 0; s == CR_OK && f < nh; f++) {
        const double *xf = (const double *)&X[f]; /* fftw_complex is double[2] or _Complex */
        double e = xf[0] * xf[0] + xf[1] * xf[1];  /* squares: hypot is slow */
        if (isnan(e)) {
            worst = NAN; /* no H-inf error to report */
            break;
        }
        if (e > worst) worst = e;
    }
    /* the scaled kernel keeps the squares finite; hypot where they are not */
    if (isinf(worst)) {
        worst = 0.0;
        for (size_t f = 0; s == CR_OK && f < nh; f++) {
            const double *xf = (const double *)&X[f];
            double e = hypot(xf[0], xf[1]);
            if (e > worst) worst = e;
        }
    } else {
        worst = sqrt(worst);
    }
    cr__fft_free(x);
    cr__fft_free(X);
    *out = worst;
    return s;
}

/* The errors of m against h, both scaled by the same power of two
 * (exact) so that squares neither overflow nor underflow: relative
 * errors are unchanged, the absolute ones scaled back by the caller. */
static cr_status errors_scaled(const cr__modal *m, const double *h, size_t L, int ex,
                               cr_fit_record *rec)
{
    double *hs = malloc(2 * L * sizeof *hs);
    cr__modal ms = {0};
    size_t nm = m->n ? m->n : 1;
    if (!hs || cr__modal_alloc(&ms, nm) != CR_OK) {
        free(hs);
        return cr__fail(CR_ENOMEM, "model errors: out of memory (L = %zu)", L);
    }
    double *work = hs + L;
    ms.n = m->n;
    ms.d = ldexp(m->d, -ex);
    for (size_t j = 0; j < m->n; j++) {
        ms.kind[j] = m->kind[j];
        ms.pole_re[j] = m->pole_re[j];
        ms.pole_im[j] = m->pole_im[j];
        ms.res_re[j] = ldexp(m->res_re[j], -ex);
        ms.res_im[j] = ldexp(m->res_im[j], -ex);
    }
    double hn2 = 0.0;
    for (size_t k = 0; k < L; k++) {
        hs[k] = ldexp(h[k], -ex);
        hn2 += hs[k] * hs[k];
    }
    double e2 = cr__modal_err2(&ms, hs, L, CR_HORIZON_WINDOW, work);
    double tail = cr__modal_tail2(&ms, L), hinf = NAN;
    cr_status s = hinf_error(&ms, hs, L, &hinf);
    free(hs);
    cr__modal_free(&ms);
    if (s != CR_OK) return s;
    double hn = sqrt(hn2);
    /* A zero kernel has no relative error: report absolute norms then. */
    double scale = hn > 0.0 ? hn : ldexp(1.0, -ex);
    rec->order = cr__modal_order(m);
    rec->length = L;
    rec->h_norm = ldexp(hn, ex);
    rec->err_window = sqrt(e2) / scale;
    rec->err_infinite = sqrt(e2 + tail) / scale;
    rec->err_hinf = ldexp(hinf, ex);
    return CR_OK;
}

cr_status cr__modal_errors(const cr__modal *m, const double *h, size_t L, cr_fit_record *rec)
{
    if (!m || !h || !rec) return cr__fail(CR_EINVAL, "model errors: NULL argument");
    if (m->n > 0 && (!m->kind || !m->pole_re || !m->pole_im || !m->res_re || !m->res_im))
        return cr__fail(CR_EINVAL, "model errors: NULL mode arrays");
    if (L == 0) return cr__fail(CR_EINVAL, "model errors: zero kernel length");
    if (L > CR_MAX_ELEMS) return cr__fail(CR_EOVERFLOW, "model errors: absurd length %zu", L);
    double big = 0.0;
    for (size_t k = 0; k < L; k++) {
        if (!isfinite(h[k]))
            return cr__fail(CR_ENONFINITE, "model errors: kernel sample %zu is not finite", k);
        big = fmax(big, fabs(h[k]));
    }
    if (!(big > 0.0)) { /* a zero kernel: scale by the model */
        big = fabs(m->d);
        for (size_t j = 0; j < m->n; j++)
            if (m->kind[j] != CR_MODE_UNUSED) big = fmax(big, hypot(m->res_re[j], m->res_im[j]));
    }
    return errors_scaled(m, h, L, big > 0.0 ? ilogb(big) : 0, rec);
}
