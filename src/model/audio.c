/* Audio measures of models and kernels: third-octave band errors
 * (include/convrec.h cr_model_band_errors, docs/MATH.md "Band errors")
 * and the trimming of measured impulse responses (cr_kernel_trim).
 *
 * Band errors compare band levels, the mean power of the frequency
 * response over each third-octave band, in dB: what a third-octave
 * analyser (IEC 61260-1) shows and roughly what the ear resolves. The
 * kernel's response is its DTFT (zero beyond L) by FFT on a grid of at
 * least 8 L points (the convention of the H-inf error) and at least 4
 * points per Hz (so that the narrowest band, 4.6 Hz wide at 20 Hz, has
 * 18 or more); the model's is its whole transfer function in closed form
 * on the same grid, so a model's tail beyond L counts. */
#include "model/model.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* IEC 61260-1 base ten: midband 1000 * 10^(x/10), edges at the odd
 * twentieths, computed from the same expression so that neighbouring
 * bands share their edge exactly. */
static double band_edge(int twentieths) { return 1000.0 * pow(10.0, (double)twentieths / 20.0); }
#define XMIN (-17) /* 19.95 Hz, the nominal 20 Hz band */

size_t cr_third_octave_bands(double rate, double *fm, double *lo, double *hi, size_t cap)
{
    if (!(rate > 0.0) || !isfinite(rate) || rate > 1e12) return 0;
    size_t nb = 0;
    for (int x = XMIN; 1000.0 * pow(10.0, (double)x / 10.0) <= 0.5 * rate; x++, nb++) {
        if (nb >= cap) continue;
        if (fm) fm[nb] = 1000.0 * pow(10.0, (double)x / 10.0);
        if (lo) lo[nb] = band_edge(2 * x - 1);
        if (hi) hi[nb] = fmin(band_edge(2 * x + 1), 0.5 * rate);
    }
    return nb;
}

size_t cr__band_grid(size_t L, double rate)
{
    if (!(rate > 0.0) || !isfinite(rate) || rate > 1e12 || L > CR_MAX_ELEMS) return 0;
    double r4 = ceil(4.0 * rate);
    size_t n = 8 * L;
    if (r4 > (double)n) n = (size_t)r4;
    n = cr_fft_good_size(n);
    return n % 2 ? n + 1 : n; /* even: the Nyquist point j = n/2 exists */
}

void cr__band_bins(double rate, size_t n, size_t nb, const double *lo, const double *hi,
                      size_t *j0, size_t *j1)
{
    for (size_t b = 0; b < nb; b++) {
        j0[b] = (size_t)ceil(lo[b] * (double)n / rate);
        /* a band cut at rate/2 includes it */
        j1[b] = hi[b] >= 0.5 * rate ? n / 2 + 1 : (size_t)ceil(hi[b] * (double)n / rate);
        if (j1[b] > n / 2 + 1) j1[b] = n / 2 + 1;
        if (j0[b] > j1[b]) j0[b] = j1[b];
    }
}

void cr__modal_freqresp(const cr__modal *m, size_t n, size_t j0, size_t j1, double *H)
{
    const double w = 2.0 * 3.14159265358979323846 / (double)n;
    for (size_t j = j0; j < j1; j++) {
        double complex z = cexp(I * w * (double)j), s = m->d;
        for (size_t q = 0; q < m->n; q++) {
            if (m->kind[q] == CR_MODE_UNUSED) continue;
            double complex lam = CMPLX(m->pole_re[q], m->pole_im[q]);
            double complex r = CMPLX(m->res_re[q], m->res_im[q]);
            s += r / (z - lam);
            if (m->kind[q] == CR_MODE_PAIR) s += conj(r) / (z - conj(lam));
        }
        H[2 * (j - j0)] = creal(s);
        H[2 * (j - j0) + 1] = cimag(s);
    }
}

cr_status cr__modal_band_errors(const cr__modal *m, const double *h, size_t L, double rate,
                                cr_band_errors *out, double *band_db, size_t cap)
{
    if (!m || !h || !out) return cr__fail(CR_EINVAL, "band errors: NULL argument");
    out->db_max = out->db_rms = out->worst_hz = NAN;
    out->nbands = 0;
    if (L == 0) return cr__fail(CR_EINVAL, "band errors: zero kernel length");
    size_t nb = cr_third_octave_bands(rate, NULL, NULL, NULL, 0);
    if (nb == 0)
        return cr__fail(CR_EINVAL, "band errors: sample rate %g Hz has no third-octave band from "
                        "20 Hz to rate/2", rate);
    size_t n = cr__band_grid(L, rate);
    if (n == 0 || n / 2 + 1 > CR_MAX_ELEMS / 4)
        return cr__fail(CR_EOVERFLOW, "band errors: grid for L = %zu is absurdly large", L);
    size_t nf = n / 2 + 1;
    double *fm = malloc(3 * nb * sizeof *fm), *P = malloc(2 * nb * sizeof *P);
    size_t *jb = malloc(2 * nb * sizeof *jb);
    double *hs = malloc(L * sizeof *hs), *H = malloc(2 * nf * sizeof *H);
    cr__modal ms = {0};
    cr_status st = CR_OK;
    if (!fm || !P || !jb || !hs || !H || cr__modal_alloc(&ms, m->n ? m->n : 1) != CR_OK) {
        st = cr__fail(CR_ENOMEM, "band errors: out of memory (L = %zu)", L);
        goto done;
    }
    cr_third_octave_bands(rate, fm, fm + nb, fm + 2 * nb, nb);
    cr__band_bins(rate, n, nb, fm + nb, fm + 2 * nb, jb, jb + nb);
    /* scale kernel and model by the same power of two (exact): levels
     * are ratios, and squares of tiny or huge kernels must not underflow
     * or overflow */
    double big = 0.0;
    for (size_t k = 0; k < L; k++) {
        if (!isfinite(h[k])) {
            st = cr__fail(CR_ENONFINITE, "band errors: kernel sample %zu is not finite", k);
            goto done;
        }
        big = fmax(big, fabs(h[k]));
    }
    if (!(big > 0.0)) {
        big = fabs(m->d);
        for (size_t q = 0; q < m->n; q++)
            if (m->kind[q] != CR_MODE_UNUSED) big = fmax(big, hypot(m->res_re[q], m->res_im[q]));
    }
    int ex = big > 0.0 ? ilogb(big) : 0;
    for (size_t k = 0; k < L; k++) hs[k] = ldexp(h[k], -ex);
    ms.n = m->n;
    ms.d = ldexp(m->d, -ex);
    for (size_t q = 0; q < m->n; q++) {
        ms.kind[q] = m->kind[q];
        ms.pole_re[q] = m->pole_re[q];
        ms.pole_im[q] = m->pole_im[q];
        ms.res_re[q] = ldexp(m->res_re[q], -ex);
        ms.res_im[q] = ldexp(m->res_im[q], -ex);
    }
    /* the kernel's band levels, then the model's in the same buffer */
    if ((st = cr_freqresp(hs, 1, L, n, H)) != CR_OK) goto done;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) cr__modal_freqresp(&ms, n, 0, nf, H);
        for (size_t b = 0; b < nb; b++) {
            long double s = 0;
            for (size_t j = jb[b]; j < jb[nb + b]; j++)
                s += (long double)H[2 * j] * H[2 * j] + (long double)H[2 * j + 1] * H[2 * j + 1];
            size_t cnt = jb[nb + b] - jb[b];
            P[pass * nb + b] = cnt ? (double)(s / (long double)cnt) : 0.0;
        }
    }
    double top = 0.0;
    for (size_t b = 0; b < 2 * nb; b++) top = fmax(top, P[b]);
    if (!isfinite(top)) {
        st = cr__fail(CR_ENONFINITE, "band errors: the model's response is not finite (unstable?)");
        goto done;
    }
    double floor_ = 1e-20 * top, e2 = 0.0, emax = -1.0;
    size_t worst = 0;
    for (size_t b = 0; b < nb; b++) {
        double e = top > 0.0 ? 10.0 * log10(fmax(P[nb + b], floor_) / fmax(P[b], floor_)) : 0.0;
        if (band_db && cap >= nb) band_db[b] = e;
        e2 += e * e;
        if (fabs(e) > emax) {
            emax = fabs(e);
            worst = b;
        }
    }
    out->db_max = emax;
    out->db_rms = sqrt(e2 / (double)nb);
    out->worst_hz = fm[worst];
    out->nbands = nb;
done:
    free(fm);
    free(P);
    free(jb);
    free(hs);
    free(H);
    cr__modal_free(&ms);
    return st;
}

cr_status cr_model_band_errors(const cr_model *m, size_t c, const double *h, size_t L,
                               double rate, cr_band_errors *out, double *band_db, size_t cap)
{
    if (!m || !h || !out) return cr__fail(CR_EINVAL, "cr_model_band_errors: NULL argument");
    if (c >= m->C)
        return cr__fail(CR_EINVAL, "cr_model_band_errors: channel %zu out of range (C = %zu)", c,
                        m->C);
    cr__modal v = cr__model_channel(m, c);
    return cr__modal_band_errors(&v, h, L, rate, out, band_db, cap);
}

/* ---------------------------------------------------------------------
 * Trimming
 * --------------------------------------------------------------------- */

cr_status cr_kernel_trim(const double *h, size_t C, size_t L, double db, size_t window,
                         size_t *first, size_t *end)
{
    if (!h || !first || !end) return cr__fail(CR_EINVAL, "cr_kernel_trim: NULL argument");
    size_t CL;
    if (C == 0 || L == 0) return cr__fail(CR_EINVAL, "cr_kernel_trim: empty bank");
    if (!cr__mul_ok(C, L, &CL) || CL > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "cr_kernel_trim: %zu x %zu is absurdly large", C, L);
    if (!(db < 0.0) || !isfinite(db))
        return cr__fail(CR_EINVAL, "cr_kernel_trim: threshold %g dB must be negative (re the "
                        "peak)", db);
    if (window == 0) return cr__fail(CR_EINVAL, "cr_kernel_trim: window must be >= 1 sample");
    double peak = 0.0;
    size_t kpeak = 0;
    for (size_t i = 0; i < CL; i++) {
        if (!isfinite(h[i]))
            return cr__fail(CR_ENONFINITE, "cr_kernel_trim: channel %zu sample %zu is not finite",
                            i / L, i % L);
        if (fabs(h[i]) > peak) {
            peak = fabs(h[i]);
            kpeak = i % L;
        }
    }
    if (!(peak > 0.0)) return cr__fail(CR_EINVAL, "cr_kernel_trim: the kernels are all zero");
    const double thr = peak * pow(10.0, db / 20.0);
    /* squares relative to the peak: no overflow for huge kernels */
    long double *cs = malloc((L + 1) * sizeof *cs);
    if (!cs) return cr__fail(CR_ENOMEM, "cr_kernel_trim: out of memory (L = %zu)", L);
    const long double t2 = (long double)(thr / peak) * (thr / peak);
    /* Both ends by the RMS envelope: single samples of a noise floor a
     * little below the threshold cross it now and then (a 4 sigma sample
     * is 12 dB above the rms), the envelope does not. The start is then
     * up to half a window before the onset, which keeps the rise. */
    size_t f = L, e = kpeak + 1, hw = window / 2;
    for (size_t c = 0; c < C; c++) {
        const double *x = h + c * L;
        /* RMS envelope over [k - hw, k - hw + window) by prefix sums */
        cs[0] = 0;
        for (size_t k = 0; k < L; k++) {
            long double v = x[k] / peak;
            cs[k + 1] = cs[k] + v * v;
        }
        for (size_t k = 0; k < f; k++) {
            size_t a = k > hw ? k - hw : 0, b = a + window < L ? a + window : L;
            if ((cs[b] - cs[a]) >= t2 * (long double)(b - a)) {
                f = k;
                break;
            }
        }
        for (size_t k = L; k-- > e;) {
            size_t a = k > hw ? k - hw : 0, b = a + window < L ? a + window : L;
            if ((cs[b] - cs[a]) >= t2 * (long double)(b - a)) {
                e = k + 1;
                break;
            }
        }
    }
    free(cs);
    if (e <= f) e = f + 1;
    *first = f;
    *end = e;
    return CR_OK;
}
