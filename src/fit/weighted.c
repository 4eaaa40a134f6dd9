/* The octave-weighted fit for audio (CR_WEIGHT_OCTAVE; docs/MATH.md
 * "Weighted fits"): every third-octave band from 20 Hz to rate/2 counts
 * equally, the way a third-octave analyser, and roughly the ear, judges a
 * response.
 *
 * Objective, on a frequency grid z_k = e^{i w_k} (points of the band-error
 * grid, cr__band_grid, at most WB_POINTS evenly spread per band):
 *
 *   f = (1/B) sum_{b=1..B} e_b^2
 *       + (MU/(B+1)) sum_{b=0..B} (1/|S_b|) sum_{k in S_b} |Hhat(z_k) - H(z_k)|^2 / P_b
 *
 *   e_b = 10 log10(max(Phat_b, F) / max(P_b, F))   (dB)
 *
 * with B the third-octave bands (cr_third_octave_bands), band 0 the range
 * below the first one (kept in the second term so that the model is not
 * free near DC), S_b the grid points of band b, P_b the kernel's band
 * level (mean |H|^2 over all grid points of the band, as the band error
 * measures it), Phat_b the model's (its exact mean power over the band,
 * in closed form: see "The level term"), F = 1e-20 max P_b.
 * The first term is the band error itself in least-squares form: the
 * level of each band in dB (log-magnitude error, as in Blommer &
 * Wakefield's log-error designs, on a log-frequency axis). The second is
 * the complex error relative to each band's level, the frequency-domain
 * l2 error with log-frequency weighting (every octave the same weight)
 * and level normalisation: it keeps the model's phase, and so its impulse
 * response, tied to the kernel wherever it can follow it. MU = 10 dB^2:
 * a relative complex error of 10 % in every band costs as much as 1 dB
 * of level error in every band.
 *
 * Parameters: the poles (the radial tanh map of varpro.c, every pole
 * within rmax = 1 - margin) and the real linear coefficients (d and the
 * residues), all refined together by the damped least-squares driver
 * (cr__lm, normal form) with the analytic Jacobian. The level term is not
 * linear in the residues, so variable projection does not apply; the
 * residues of every start are the least-squares optimum of the second
 * term for its poles (linear).
 *
 * Starts (the best refined one is kept, by f):
 *   1. the unweighted fit of the same order (the base method, e.g. auto);
 *   2. a vector-fitting style grid (Gustavsen): N/2 pairs at log-spaced
 *      frequencies from 25 Hz to 0.9 rate/2, constant Q = 3 (bandwidth
 *      f/3), the natural start of a log-frequency objective.
 */
#include "fit/fit.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WB_POINTS 128     /* fit points per band at most */
#define WB_MU 10.0        /* weight of the complex term (dB^2) */
#define WB_PFLOOR 1e-10   /* complex term: band levels floored at -100 dB re the loudest */
#define WB_LFLOOR 1e-20   /* level term floor, as the band error's */
#define WB_MAXIT 300      /* LM iterations per start */
#define WB_START_Q 3.0
#define WB_START_FMIN 25.0
#define LN10_10 4.342944819032518 /* 10 / ln 10 */

struct cr__wgrid {
    size_t K, nb, nlev;   /* points, bands (with band 0), level bands (nb - 1) */
    double complex *z, *H;
    double *sw;           /* sqrt of each point's complex-term weight */
    double *om1, *om2;    /* level bands 1..B: edges in radians (index b - 1) */
    double *Plev;         /* max(P_b, F) of each band */
    double floor_, lw;    /* F, and the level residuals' weight 1/sqrt(B) */
};

void cr__wgrid_free(struct cr__wgrid *g)
{
    if (!g) return;
    free(g->z);
    free(g->H);
    free(g->sw);
    free(g->om1);
    free(g->Plev);
    free(g);
}

static cr_status wgrid_build(const double *h, size_t L, double rate, struct cr__wgrid **out)
{
    *out = NULL;
    size_t B = cr_third_octave_bands(rate, NULL, NULL, NULL, 0);
    if (B == 0)
        return cr__fail(CR_EINVAL, "weighted fit: sample rate %g Hz has no band from 20 Hz to "
                        "rate/2", rate);
    size_t n = cr__band_grid(L, rate);
    if (n == 0) return cr__fail(CR_EOVERFLOW, "weighted fit: grid too large (L = %zu)", L);
    const size_t nf = n / 2 + 1, nb = B + 1;
    double *Hf = malloc(2 * nf * sizeof *Hf), *edges = malloc(3 * B * sizeof *edges);
    size_t *jb = malloc(2 * nb * sizeof *jb);
    struct cr__wgrid *g = calloc(1, sizeof *g);
    cr_status st = CR_OK;
    if (!Hf || !edges || !jb || !g) {
        st = cr__fail(CR_ENOMEM, "weighted fit: out of memory (grid of %zu)", n);
        goto done;
    }
    if ((st = cr_freqresp(h, 1, L, n, Hf)) != CR_OK) goto done;
    cr_third_octave_bands(rate, edges, edges + B, edges + 2 * B, B);
    /* bands 1..B: the band error's bins; band 0: below the first band */
    cr__band_bins(rate, n, B, edges + B, edges + 2 * B, jb + 1, jb + nb + 1);
    jb[0] = 0;
    jb[nb] = jb[1];
    size_t K = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t c = jb[nb + b] - jb[b];
        K += c < WB_POINTS ? c : WB_POINTS;
    }
    g->K = K;
    g->nb = nb;
    g->nlev = B;
    g->z = malloc(K * sizeof *g->z);
    g->H = malloc(K * sizeof *g->H);
    g->sw = malloc(K * sizeof *g->sw);
    g->om1 = malloc(2 * B * sizeof *g->om1);
    g->Plev = malloc(nb * sizeof *g->Plev);
    if (!g->z || !g->H || !g->sw || !g->om1 || !g->Plev) {
        st = cr__fail(CR_ENOMEM, "weighted fit: out of memory (%zu points)", K);
        goto done;
    }
    double *P = g->Plev, pmax = 0.0;
    for (size_t b = 0; b < nb; b++) {
        long double s = 0;
        for (size_t j = jb[b]; j < jb[nb + b]; j++)
            s += (long double)Hf[2 * j] * Hf[2 * j] + (long double)Hf[2 * j + 1] * Hf[2 * j + 1];
        size_t c = jb[nb + b] - jb[b];
        P[b] = c ? (double)(s / (long double)c) : 0.0;
        if (b > 0) pmax = fmax(pmax, P[b]);
    }
    if (!(pmax > 0.0) || !isfinite(pmax)) {
        st = cr__fail(CR_EINVAL, "weighted fit: the kernel has no energy from 20 Hz to rate/2");
        goto done;
    }
    g->floor_ = WB_LFLOOR * pmax;
    g->lw = 1.0 / sqrt((double)B);
    const double w = 2.0 * 3.14159265358979323846 / (double)n;
    size_t k = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t c = jb[nb + b] - jb[b], m = c < WB_POINTS ? c : WB_POINTS;
        double wb = WB_MU / (double)nb / ((double)m * fmax(P[b], WB_PFLOOR * pmax));
        for (size_t i = 0; i < m; i++, k++) {
            size_t j = jb[b] + (m > 1 ? (size_t)llround((double)i * (double)(c - 1) / (double)(m - 1)) : 0);
            g->z[k] = cexp(I * w * (double)j);
            g->H[k] = CMPLX(Hf[2 * j], Hf[2 * j + 1]);
            g->sw[k] = sqrt(wb);
        }
        P[b] = fmax(P[b], g->floor_);
    }
    g->om2 = g->om1 + B;
    for (size_t b = 0; b < B; b++) {
        g->om1[b] = 2.0 * 3.14159265358979323846 * edges[B + b] / rate;
        g->om2[b] = 2.0 * 3.14159265358979323846 * edges[2 * B + b] / rate;
    }
done:
    free(Hf);
    free(edges);
    free(jb);
    if (st != CR_OK) {
        cr__wgrid_free(g);
        return st;
    }
    *out = g;
    return CR_OK;
}

/* ---------------------------------------------------------------------
 * Parameters: theta = [pole parameters (np), linear coefficients (nc)]
 * --------------------------------------------------------------------- */
typedef struct wb_prob {
    const struct cr__wgrid *g;
    size_t M, np, nc, P;       /* modes, pole parameters, coefficients (1 + order), all */
    const unsigned char *kind;
    double rho;
    double complex *lam, *dlam;      /* M poles; np derivatives */
    double complex *Hh;              /* K model values */
    double complex *dH;              /* K x P derivatives of Hhat (when asked) */
    double *Phat;                    /* B model band levels */
    double *J, *r;                   /* R x P Jacobian (column-major), R residuals */
    size_t R;
    /* the level term (band_energy): Q = order complex poles mu_p, each the
     * pole of one mode (or its conjugate), coefficient rho_p */
    size_t Q;
    double complex *mu, *rh;         /* Q poles, Q + 1 coefficients (rh[0] = d) */
    double complex *bw;              /* band scratch: 7 Q */
} wb_prob;

/* The poles: cr__theta_to_poles / cr__poles_to_theta (lsq.c), the
 * parametrisation variable projection uses. */

/* Hhat at every point (and with deriv its derivatives by every
 * parameter, column q of dH at dH + q K). */
static void model_values(wb_prob *w, const double *th, int deriv)
{
    const struct cr__wgrid *g = w->g;
    const size_t K = g->K;
    const double *c = th + w->np;
    const cr__pole_param pp = { w->M, w->kind, w->rho };
    cr__theta_to_poles(&pp, th, w->lam, deriv ? w->dlam : NULL);
    for (size_t k = 0; k < K; k++) {
        double complex z = g->z[k], s = c[0];
        if (deriv) w->dH[(w->np) * K + k] = 1.0;
        size_t p = 0, ci = 1;
        for (size_t j = 0; j < w->M; j++) {
            double complex a = 1.0 / (z - w->lam[j]);
            if (w->kind[j] == CR_MODE_PAIR) {
                double complex b = 1.0 / (z - conj(w->lam[j]));
                double cr_ = c[ci], cim = c[ci + 1];
                s += cr_ * (a + b) + I * cim * (a - b);
                if (deriv) {
                    double complex a2 = a * a, b2 = b * b;
                    for (int t = 0; t < 2; t++) {
                        double complex dl = w->dlam[p + t];
                        double complex da = dl * a2, db = conj(dl) * b2;
                        w->dH[(p + t) * K + k] = cr_ * (da + db) + I * cim * (da - db);
                    }
                    w->dH[(w->np + ci) * K + k] = a + b;
                    w->dH[(w->np + ci + 1) * K + k] = I * (a - b);
                }
                p += 2;
                ci += 2;
            } else {
                s += c[ci] * a;
                if (deriv) {
                    w->dH[p * K + k] = c[ci] * w->dlam[p] * a * a;
                    w->dH[(w->np + ci) * K + k] = a;
                }
                p += 1;
                ci += 1;
            }
        }
        w->Hh[k] = s;
    }
}

/* ---------------------------------------------------------------------
 * The level term: band energies in closed form
 *
 * Hhat(z) = sum_{p=0..Q} rho_p u_p(z), u_0 = 1 (rho_0 = d), u_p = 1/(z - mu_p)
 * (a pair gives mu = lambda with rho = r and mu = conj(lambda) with
 * rho = conj(r)). The energy over the arc w1..w2 of band b is
 *   E_b = sum_{p,q} rho_p conj(rho_q) G(p, q),  G(p, q) = int u_p conj(u_q) dw,
 * and with z = e^{iw}, dw = dz / (iz), conj(u_q) = z / (1 - conj(mu_q) z):
 *   G(p, q) = -i (A(mu_p) - T(mu_q)) / (1 - conj(mu_q) mu_p),       p, q >= 1,
 *   A(a) = [log(z - a)]_{z1}^{z2}   (arg unwrapped: it grows along the arc
 *                                    by the angle the arc subtends at a, in (0, 2 pi)),
 *   T(b) = [log(1 - conj(b) z)]     (Re > 0 on the circle: principal values),
 *   G(p, 0) = I1(mu_p) = int dw / (z - mu_p) = -i (A(mu_p) - i dw) / mu_p
 *             (a power series in mu_p when |mu_p| < 1/2), G(0, 0) = w2 - w1.
 * G(p, q) is holomorphic in mu_p and antiholomorphic in mu_q, so the
 * derivative of E by a pole parameter t needs only d G(p, q) / d mu_p:
 *   dE/dt = 2 Re sum_p rho_p (d mu_p / dt) sum_q conj(rho_q) dG(p, q)/d mu_p.
 * The model's band level is the exact mean power E_b / (w2 - w1): nothing
 * for a sharp resonance to hide in, or to exploit, between grid points.
 * --------------------------------------------------------------------- */
#define SERIES_R 0.5
#define SERIES_K 64

/* I1(mu) and its derivative over the arc z1 = e^{i w1} .. z2 (dw = w2 - w1),
 * with A = A(mu), dA = A'(mu) given. */
static void arc_i1(double complex mu, double complex z1, double complex z2, double dw,
                   double complex A, double complex dA, double complex *I1, double complex *dI1)
{
    if (cabs(mu) >= SERIES_R) {
        *I1 = -I * (A - I * dw) / mu;
        *dI1 = -*I1 / mu - I * dA / mu;
        return;
    }
    /* int z^-(k+1) dw = (z2^-(k+1) - z1^-(k+1)) / (-i (k+1)) */
    double complex s = 0, ds = 0, mk = 1, mk1 = 0, e1 = conj(z1), e2 = conj(z2);
    double complex p1 = e1, p2 = e2;
    for (int k = 0; k < SERIES_K; k++) {
        double complex t = (p2 - p1) / (-I * (double)(k + 1));
        s += mk * t;
        ds += (double)k * mk1 * t;
        mk1 = mk;
        mk *= mu;
        p1 *= e1;
        p2 *= e2;
    }
    *I1 = s;
    *dI1 = ds;
}

/* E_b and (when dE != NULL) dE_b / d theta for the P parameters. */
static double band_energy(wb_prob *w, size_t b, double *dE)
{
    const struct cr__wgrid *g = w->g;
    const size_t Q = w->Q;
    const double w1 = g->om1[b], w2 = g->om2[b], dw = w2 - w1;
    const double complex z1 = cexp(I * w1), z2 = cexp(I * w2);
    double complex *A = w->bw, *dA = A + Q, *T = dA + Q, *I1 = T + Q, *dI1 = I1 + Q;
    double complex *s = dI1 + Q, *t = s + Q; /* s_p = sum_q conj(rho_q) G(p, q), t_p likewise dG */
    for (size_t p = 0; p < Q; p++) {
        double complex a = w->mu[p];
        double dar = carg((z2 - a) * conj(z1 - a));
        if (dar < 0) dar += 2.0 * 3.14159265358979323846;
        A[p] = log(cabs(z2 - a) / cabs(z1 - a)) + I * dar;
        dA[p] = 1.0 / (z1 - a) - 1.0 / (z2 - a);
        T[p] = clog((1.0 - conj(a) * z2) / (1.0 - conj(a) * z1));
        arc_i1(a, z1, z2, dw, A[p], dA[p], &I1[p], &dI1[p]);
    }
    const double complex d = w->rh[0];
    /* row 0: s_0 = d dw + sum_q conj(rho_q) conj(I1_q) */
    double complex s0 = d * dw;
    for (size_t q = 0; q < Q; q++) s0 += conj(w->rh[q + 1]) * conj(I1[q]);
    double E = creal(d * s0);
    for (size_t p = 0; p < Q; p++) {
        const double complex a = w->mu[p];
        double complex sp = conj(d) * I1[p], tp = conj(d) * dI1[p];
        for (size_t q = 0; q < Q; q++) {
            double complex bc = conj(w->mu[q]), den = 1.0 / (1.0 - bc * a);
            double complex Gd = A[p] - T[q];
            double complex rq = conj(w->rh[q + 1]);
            sp += rq * (-I) * Gd * den;
            if (dE) tp += rq * (-I) * (dA[p] * den + Gd * bc * den * den);
        }
        s[p] = sp;
        t[p] = tp;
        E += creal(w->rh[p + 1] * sp);
    }
    if (!dE) return E;
    /* coefficients: dE/dc_i = 2 Re sum_p T(p, i) s_p */
    double *dc = dE + w->np;
    dc[0] = 2.0 * creal(s0);
    size_t p = 0, ci = 1, pt = 0;
    for (size_t j = 0; j < w->M; j++) {
        if (w->kind[j] == CR_MODE_PAIR) {
            /* modes p (lambda, rho = c_re + i c_im), p + 1 (conj) */
            dc[ci] = 2.0 * creal(s[p] + s[p + 1]);
            dc[ci + 1] = 2.0 * creal(I * s[p] - I * s[p + 1]);
            for (int u = 0; u < 2; u++) {
                double complex dl = w->dlam[pt + u];
                dE[pt + u] = 2.0 * creal(w->rh[p + 1] * dl * t[p] +
                                         w->rh[p + 2] * conj(dl) * t[p + 1]);
            }
            p += 2;
            ci += 2;
            pt += 2;
        } else {
            dc[ci] = 2.0 * creal(s[p]);
            dE[pt] = 2.0 * creal(w->rh[p + 1] * w->dlam[pt] * t[p]);
            p += 1;
            ci += 1;
            pt += 1;
        }
    }
    return E;
}

/* The complex poles mu_p and coefficients rho_p of theta (lam set). */
static void level_setup(wb_prob *w, const double *th)
{
    const double *c = th + w->np;
    size_t p = 0, ci = 1;
    w->rh[0] = c[0];
    for (size_t j = 0; j < w->M; j++) {
        if (w->kind[j] == CR_MODE_PAIR) {
            double complex r = CMPLX(c[ci], c[ci + 1]);
            w->mu[p] = w->lam[j];
            w->rh[p + 1] = r;
            w->mu[p + 1] = conj(w->lam[j]);
            w->rh[p + 2] = conj(r);
            p += 2;
            ci += 2;
        } else {
            w->mu[p] = w->lam[j];
            w->rh[p + 1] = c[ci];
            p += 1;
            ci += 1;
        }
    }
}

/* Residuals: level rows 0..nlev-1, then (re, im) of each point. */
static int wb_eval(void *ctx, double *th, int want, double *fout, double *A, double *gv)
{
    wb_prob *w = ctx;
    const struct cr__wgrid *g = w->g;
    const size_t K = g->K, B = g->nlev, P = w->P, R = w->R;
    model_values(w, th, want);
    level_setup(w, th);
    double f = 0.0;
    for (size_t b = 0; b < B; b++) {
        double *Jb = want ? w->r + R : NULL; /* scratch row after the residuals */
        double E = band_energy(w, b, Jb);
        double ph = E / (g->om2[b] - g->om1[b]);
        w->Phat[b] = ph;
        double e = g->lw * LN10_10 * log(fmax(ph, g->floor_) / g->Plev[b + 1]);
        w->r[b] = e;
        f += e * e;
        if (want) {
            double sc = ph > g->floor_ ? g->lw * LN10_10 / E : 0.0;
            for (size_t q = 0; q < P; q++) w->J[q * R + b] = sc * Jb[q];
        }
    }
    for (size_t k = 0; k < K; k++) {
        double complex e = g->sw[k] * (w->Hh[k] - g->H[k]);
        w->r[B + 2 * k] = creal(e);
        w->r[B + 2 * k + 1] = cimag(e);
        f += creal(e) * creal(e) + cimag(e) * cimag(e);
    }
    if (!isfinite(f)) return -1;
    *fout = f;
    if (!want) return 0;
    for (size_t q = 0; q < P; q++) {
        double *Jq = w->J + q * R;
        const double complex *d = w->dH + q * K;
        for (size_t k = 0; k < K; k++) {
            double complex v = g->sw[k] * d[k];
            Jq[B + 2 * k] = creal(v);
            Jq[B + 2 * k + 1] = cimag(v);
        }
    }
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (int)P, (int)R, 1.0, w->J, (int)R, 0.0, A,
                (int)P);
    cblas_dgemv(CblasColMajor, CblasTrans, (int)R, (int)P, 1.0, w->J, (int)R, w->r, 1, 0.0, gv, 1);
    return 0;
}

/* Coefficients minimising the complex term for the poles of th: linear
 * least squares over the 2K rows (dgels), into th + np. */
static cr_status wb_linear(wb_prob *w, double *th)
{
    const struct cr__wgrid *g = w->g;
    const size_t K = g->K, nc = w->nc, R2 = 2 * K;
    double *A = malloc(R2 * nc * sizeof *A), *y = malloc(R2 * sizeof *y);
    if (!A || !y) {
        free(A);
        free(y);
        return cr__fail(CR_ENOMEM, "weighted fit: out of memory");
    }
    /* the derivative columns of the coefficients are the basis itself */
    model_values(w, th, 1);
    for (size_t q = 0; q < nc; q++)
        for (size_t k = 0; k < K; k++) {
            double complex v = g->sw[k] * w->dH[(w->np + q) * K + k];
            A[q * R2 + 2 * k] = creal(v);
            A[q * R2 + 2 * k + 1] = cimag(v);
        }
    for (size_t k = 0; k < K; k++) {
        double complex v = g->sw[k] * g->H[k];
        y[2 * k] = creal(v);
        y[2 * k + 1] = cimag(v);
    }
    double *sv = malloc(nc * sizeof *sv);
    lapack_int rank = 0, info = -1;
    if (sv)
        info = LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)R2, (lapack_int)nc, 1, A,
                              (lapack_int)R2, y, (lapack_int)R2, sv, 1e-13, &rank);
    if (info == 0) memcpy(th + w->np, y, nc * sizeof *y);
    free(sv);
    free(A);
    free(y);
    return info == 0 ? CR_OK : cr__fail(CR_ELAPACK, "weighted fit: least squares failed (%d)",
                                        (int)info);
}

static void wb_free(wb_prob *w, double *th)
{
    free(th);
    free(w->lam);
    free(w->dlam);
    free(w->Hh);
    free(w->dH);
    free(w->Phat);
    free(w->J);
    free(w->r);
    free(w->mu);
    free(w->rh);
    free(w->bw);
}

/* The problem for the poles (and kinds) of m, *th its parameters with the
 * least-squares coefficients of the complex term. */
static cr_status wb_init(cr__fitctx *c, const cr__modal *m, wb_prob *w, double **thp)
{
    const struct cr__wgrid *g = c->wgrid;
    memset(w, 0, sizeof *w);
    *thp = NULL;
    w->g = g;
    w->M = m->n;
    w->kind = m->kind;
    w->rho = c->rmax;
    w->np = cr__design_ncols(m);
    w->nc = 1 + w->np;
    w->P = w->np + w->nc;
    w->R = g->nlev + 2 * g->K;
    w->Q = w->np;
    size_t nJ, nd;
    if (!cr__mul_ok(w->R, w->P, &nJ) || nJ > CR_MAX_ELEMS || !cr__mul_ok(g->K, w->P, &nd))
        return cr__fail(CR_EOVERFLOW, "weighted fit: problem too large");
    double *th = malloc(w->P * sizeof *th);
    w->lam = malloc((w->M ? w->M : 1) * sizeof *w->lam);
    w->dlam = malloc((w->np ? w->np : 1) * sizeof *w->dlam);
    w->Hh = malloc(g->K * sizeof *w->Hh);
    w->dH = malloc(nd * sizeof *w->dH);
    w->Phat = malloc(g->nb * sizeof *w->Phat);
    w->J = malloc(nJ * sizeof *w->J);
    w->r = malloc((w->R + w->P) * sizeof *w->r); /* + a scratch row */
    w->mu = malloc((w->Q ? w->Q : 1) * sizeof *w->mu);
    w->rh = malloc((w->Q + 1) * sizeof *w->rh);
    w->bw = malloc((7 * w->Q + 1) * sizeof *w->bw);
    cr_status st = CR_OK;
    if (!th || !w->lam || !w->dlam || !w->Hh || !w->dH || !w->Phat || !w->J || !w->r || !w->mu ||
        !w->rh || !w->bw)
        st = cr__fail(CR_ENOMEM, "weighted fit: out of memory (%zu x %zu)", w->R, w->P);
    if (st == CR_OK) {
        const cr__pole_param pp = { w->M, w->kind, w->rho };
        cr__poles_to_theta(&pp, m, th);
        st = wb_linear(w, th);
    }
    if (st != CR_OK) {
        wb_free(w, th);
        return st;
    }
    *thp = th;
    return CR_OK;
}

/* Refine m (poles and kinds as given) in place; *f the objective. */
static cr_status wb_refine(cr__fitctx *c, cr__modal *m, double *f)
{
    wb_prob w;
    double *th;
    cr_status st = wb_init(c, m, &w, &th);
    if (st != CR_OK) return st;
    cr__lm_problem pb = { w.P, 0, &w, wb_eval, NULL };
    const cr__lm_opts lo = { WB_MAXIT, 20, 0.0, 1e-7, 5, 1e-9, 0.0 }; /* no goal */
    cr__lm_result res;
    double t0 = c->stats ? cr__fit_clock() : 0.0;
    st = cr__lm(&pb, &lo, th, &res);
    if (c->stats) {
        c->stats->t_refine += cr__fit_clock() - t0;
        c->stats->lm_iter += (size_t)res.iter;
        c->stats->lm_eval += (size_t)res.evals;
    }
    if (st != CR_OK) goto done;
    *f = res.f;
    const cr__pole_param pp = { w.M, w.kind, w.rho };
    cr__theta_to_poles(&pp, th, w.lam, NULL);
    const double *cf = th + w.np;
    m->d = cf[0];
    for (size_t j = 0, ci = 1; j < w.M; j++) {
        m->pole_re[j] = creal(w.lam[j]);
        if (m->kind[j] == CR_MODE_PAIR) {
            double im = cimag(w.lam[j]);
            /* a pair stays a pair (cr__modal_check_mode) */
            m->pole_im[j] = im != 0.0 ? im : 1e-300;
            m->res_re[j] = cf[ci];
            m->res_im[j] = cf[ci + 1];
            ci += 2;
        } else {
            m->pole_im[j] = 0.0;
            m->res_re[j] = cf[ci];
            m->res_im[j] = 0.0;
            ci += 1;
        }
    }
done:
    wb_free(&w, th);
    return st;
}

cr_status cr__weighted_gradcheck(cr__fitctx *c, const cr__modal *m, double *maxrel)
{
    cr_status st;
    *maxrel = INFINITY;
    if (!c->wgrid && (st = wgrid_build(c->h, c->L, c->rate, &c->wgrid)) != CR_OK) return st;
    wb_prob w;
    double *th;
    if ((st = wb_init(c, m, &w, &th)) != CR_OK) return st;
    double *A = malloc(w.P * w.P * sizeof *A), *g = malloc(2 * w.P * sizeof *g);
    double f, fp, fm, worst = 0.0, gmax = 0.0;
    if (!A || !g) {
        st = cr__fail(CR_ENOMEM, "gradcheck: out of memory");
        goto done;
    }
    /* the model's gradient is 2 J^T r; central differences of f */
    if (wb_eval(&w, th, 1, &f, A, g) != 0) {
        st = cr__fail(CR_ENOCONV, "gradcheck: cannot evaluate");
        goto done;
    }
    for (size_t q = 0; q < w.P; q++) gmax = fmax(gmax, fabs(2.0 * g[q]));
    for (size_t q = 0; q < w.P; q++) {
        double t = th[q], hq = 1e-6 * fmax(1.0, fabs(t));
        th[q] = t + hq;
        int e1 = wb_eval(&w, th, 0, &fp, NULL, NULL);
        th[q] = t - hq;
        int e2 = wb_eval(&w, th, 0, &fm, NULL, NULL);
        th[q] = t;
        if (e1 || e2) {
            st = cr__fail(CR_ENOCONV, "gradcheck: cannot evaluate");
            goto done;
        }
        worst = fmax(worst, fabs((fp - fm) / (2.0 * hq) - 2.0 * g[q]));
    }
    *maxrel = worst / gmax;
done:
    free(A);
    free(g);
    wb_free(&w, th);
    return st;
}

/* The log-spaced constant-Q start of order N. */
static void grid_start(double rate, size_t N, double rmax, cr__modal *m)
{
    const size_t np = N / 2;
    const double f0 = WB_START_FMIN, f1 = 0.9 * 0.5 * rate;
    m->n = 0;
    m->d = 0.0;
    for (size_t i = 0; i < np; i++) {
        double f = np > 1 ? f0 * pow(f1 / f0, (double)i / (double)(np - 1)) : sqrt(f0 * f1);
        double rad = fmin(exp(-3.14159265358979323846 * f / WB_START_Q / rate), rmax * (1 - 1e-6));
        double a = 2.0 * 3.14159265358979323846 * f / rate;
        m->kind[m->n] = CR_MODE_PAIR;
        m->pole_re[m->n] = rad * cos(a);
        m->pole_im[m->n] = rad * sin(a);
        m->res_re[m->n] = m->res_im[m->n] = 0.0;
        m->n++;
    }
    if (N % 2) {
        m->kind[m->n] = CR_MODE_REAL;
        m->pole_re[m->n] = 0.5 * rmax;
        m->pole_im[m->n] = m->res_re[m->n] = m->res_im[m->n] = 0.0;
        m->n++;
    }
}

cr_status cr__fit_weighted(cr__fitctx *c, size_t N, cr__modal *out)
{
    if (c->weight != CR_WEIGHT_OCTAVE || !(c->rate > 0.0))
        return cr__fail(CR_EINVAL, "weighted fit: needs CR_WEIGHT_OCTAVE and a sample rate");
    cr_status st;
    if (!c->wgrid && (st = wgrid_build(c->h, c->L, c->rate, &c->wgrid)) != CR_OK) return st;
    cr__modal cand;
    if ((st = cr__modal_alloc(&cand, out->cap)) != CR_OK) return st;
    double fb = INFINITY, fc = INFINITY;
    /* 1. the unweighted fit of the same order */
    cr__method_fn base = c->base ? c->base : cr__fit_auto;
    if ((st = base(c, N, out)) != CR_OK) goto done;
    /* a start that cannot be evaluated (CR_ENOCONV) is left as it is: out
     * then keeps the unweighted fit */
    if (out->n > 0 && (st = wb_refine(c, out, &fb)) != CR_OK && st != CR_ENOCONV) goto done;
    st = CR_OK;
    /* 2. the log-frequency grid */
    if (N >= 2) {
        grid_start(c->rate, N, c->rmax, &cand);
        if ((st = wb_refine(c, &cand, &fc)) != CR_OK && st != CR_ENOCONV) goto done;
        if (st == CR_OK && (fc < fb || out->n == 0)) {
            cr__modal_swap(out, &cand);
            fb = fc;
        }
        st = CR_OK;
    }
done:
    cr__modal_free(&cand);
    return st;
}
