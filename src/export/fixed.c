/* Fixed-point (Q31 / Q15) C export: quantisation of the real 2x2 block
 * recurrence (MATH.md "Real 2x2 block recurrence"), scaling from l1 gains,
 * the error of what is written, and the generated code (docs/EMBEDDED.md
 * "Fixed point").
 *
 * F = 31 (Q31) or 15 (Q15) fraction bits: an integer x stands for x 2^-F.
 * Accumulators have W = 63 (int64_t) or 31 (int32_t) bits besides the
 * sign. Per mode, with the real state s of an input |u| <= 1:
 *   state   s~ = s 2^(F-e), e from the state's l1 gain (no overflow)
 *   update  s~' = (A s~ + u 2^(F-e)) 2^-F rounded to nearest (half up):
 *           unbiased errors, so their noise is predicted well; without
 *           input a state can stay in the deadband |s~| <= c / (1 - rho)
 *   output  P = gr s~_re - gi s~_im (exact), added as P >> osh
 * and per channel the accumulator holds y 2^(F-S+Z): y 2^-S is the output
 * in the Q format, Z extra bits below its last bit, rounded away at the
 * end. The generated NAME_process is exactly this arithmetic; the tests
 * run it against the double model. */
#include "export/export.h"

#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest sums for the l1 gains and the channel bound (the rest is bounded
 * by a geometric tail), and the longest error horizon. */
#define L1_KMAX ((size_t)1 << 16)
#define CH_KMAX ((size_t)1 << 17)
#define ERR_KMAX ((size_t)1 << 20)

typedef struct fx_fmt {
    int F, W;
    const char *tag;                   /* "Q31" */
    const char *smp, *acc, *uacc;      /* sample/state/coefficient, accumulator types */
    const char *smin, *smax;           /* sample limits */
} fx_fmt;

static const fx_fmt FMT_Q31 = {31, 63, "Q31", "int32_t", "int64_t", "uint64_t", "INT32_MIN",
                               "INT32_MAX"};
static const fx_fmt FMT_Q15 = {15, 31, "Q15", "int16_t", "int32_t", "uint32_t", "INT16_MIN",
                               "INT16_MAX"};

typedef struct fx_mode {
    size_t j;              /* mode index in its channel (for messages) */
    int pair;              /* 1: conjugate pair (2x2 block), 0: real mode */
    int64_t a, b;          /* quantised pole, |.| <= 2^F - 1 (b = 0 for real) */
    int64_t gr, gi;        /* output weight mantissas (gi = 0 for real) */
    int e;                 /* the mode's input is u 2^-e (state headroom) */
    int q;                 /* weight exponent: P 2^(q - 2F) is the output in real units */
    int osh;               /* P >> osh goes into the accumulator */
    double wr, wi;         /* exact weights 2 Re r, 2 Im r (r, 0 for real) */
    double complex lam, res; /* the model's pole and residue (unquantised) */
    double rho, rho_q;     /* |lambda| of the model, of the quantised pole */
    double omr_q;          /* 1 - rho_q, computed exactly from the integers */
    double l1;             /* l1 gain of the state (largest component), quantised pole */
    double bound;          /* bound on |mode output| for |u| <= 1, with rounding */
    double coef2, noise2;  /* squared shares of the channel error (relative) */
} fx_mode;

typedef struct fx_chan {
    size_t m0, m1;         /* its modes md[m0 .. m1-1] */
    int64_t dq;            /* feedthrough mantissa */
    int qd, dsh;           /* its exponent and shift */
    int Z;
    double L1;             /* bound on |y| for |u| <= 1 (the output clip test) */
    double B;              /* bound on any partial sum of the accumulator */
    double err, coef, noise, budget; /* total, coefficients, rounding noise */
    double rest2;          /* squared share of d and the output rounding */
    const char *budget_why;
} fx_chan;

/* Nearest integer to x 2^F, clamped to +-(2^F - 1). */
static int64_t quant(double x, int F)
{
    double v = nearbyint(ldexp(x, F)), m = ldexp(1.0, F) - 1.0;
    if (v > m) v = m;
    if (v < -m) v = -m;
    return (int64_t)v;
}

/* The exponent q for which round(mag 2^(F - q)) <= 2^F - 1 with the
 * mantissa as large as possible (mag > 0). */
static int mant_exp(double mag, int F)
{
    int q = (int)ceil(log2(mag));
    double m = ldexp(1.0, F) - 1.0;
    while (nearbyint(ldexp(mag, F - q)) > m) q++;
    while (nearbyint(ldexp(mag, F - q + 1)) <= m) q--;
    return q;
}

static int64_t mant(double x, int F, int q) { return quant(ldexp(x, -q), F); }

/* l1 norms of the impulse responses of Re / Im of z^k (k >= 0), and of
 * wr Re z^k - wi Im z^k when w != NULL, with the geometric tail beyond the
 * summed part as an upper bound. */
static void l1_sums(double complex z0, double rho, double omr, const double *w, double *l1,
                    double *l1w)
{
    double sre = 0, sim = 0, sw = 0, gn = w ? hypot(w[0], w[1]) : 0;
    double complex z = 1.0;
    double zk = 1.0; /* rho^k */
    size_t k = 0;
    for (; k < L1_KMAX; k++) {
        if (k && k % 64 == 0) {
            z = cr__cpow(z0, k); /* re-anchor: no drift of repeated products */
            zk = pow(rho, (double)k);
        }
        sre += fabs(creal(z));
        sim += fabs(cimag(z));
        if (w) sw += fabs(w[0] * creal(z) - w[1] * cimag(z));
        if (zk / omr <= 1e-9 * fmax(sre, sim)) {
            k++;
            zk *= rho;
            break;
        }
        z *= z0;
        zk *= rho;
    }
    double tail = zk / omr;
    *l1 = (fmax(sre, sim) + tail) * (1 + 1e-9);
    if (l1w) *l1w = (sw + gn * tail) * (1 + 1e-9);
}

/* ---------------------------------------------------------------------
 * Planning: quantise, scale, check the pole margin
 * --------------------------------------------------------------------- */

static const char *fmt_tag(const fx_fmt *f) { return f->tag; }

/* Pole, state headroom e and natural weight exponent of one mode. */
static cr_status plan_mode(const fx_fmt *f, fx_mode *md, size_t c)
{
    const int F = f->F;
    md->rho = cabs(md->lam);
    md->a = quant(creal(md->lam), F);
    md->b = md->pair ? quant(cimag(md->lam), F) : 0;
    /* 1 - rho_q exactly: (2^2F - a^2 - b^2) / (2^2F (1 + rho_q)) */
    int64_t n2 = md->a * md->a + md->b * md->b; /* < 2^63 */
    double r2 = ldexp((double)n2, -2 * F);
    md->rho_q = sqrt(r2);
    double num = (double)(((int64_t)1 << (2 * F)) - n2); /* exact integer difference */
    md->omr_q = ldexp(num, -2 * F) / (1.0 + md->rho_q);
    double omr = 1.0 - md->rho;
    if (!(md->omr_q > 0) || md->omr_q < 0.5 * omr)
        return cr__fail(CR_EPRECISION,
                        "cr_export_c_ex: channel %zu, mode %zu: the %s pole |lambda| = %.10g "
                        "(model %.10g) keeps %.3g of its distance %.3g to the unit circle; "
                        "at least half is required: export in Q31 or float",
                        c, md->j, fmt_tag(f), md->rho_q, md->rho, md->omr_q, omr);
    double complex zq = ldexp((double)md->a, -F) + I * ldexp((double)md->b, -F);
    if (md->pair)
        l1_sums(zq, md->rho_q, md->omr_q, NULL, &md->l1, NULL);
    else
        md->l1 = (1.0 / md->omr_q) * (1 + 1e-12);
    /* |s~| <= 2^(F-e) l1 + c / (1 - rho_q) must stay <= 2^F - 1: the input
     * part plus the rounding errors (|eps| <= 1/2 per component, |eps| <=
     * c) through the same recurrence. */
    double cnoise = md->pair ? 0.7071067811865476 : 0.5;
    double avail = ldexp(1.0, F) - 1.0 - cnoise / md->omr_q * (1 + 1e-9);
    if (!(avail > 0))
        return cr__fail(CR_EPRECISION,
                        "cr_export_c_ex: channel %zu, mode %zu: |lambda| = %.10g is too close to "
                        "1 for %s (its rounding noise alone would fill the state): export in "
                        "Q31 or float",
                        c, md->j, md->rho_q, fmt_tag(f));
    int e = 0;
    while (e <= F && ldexp(md->l1, F - e) > avail) e++;
    if (e > F)
        return cr__fail(CR_EPRECISION,
                        "cr_export_c_ex: channel %zu, mode %zu: the state's l1 gain %.4g needs "
                        "more headroom than %s has (|lambda| = %.10g): export in Q31 or float",
                        c, md->j, md->l1, fmt_tag(f), md->rho_q);
    md->e = e;
    double mag = fmax(fabs(md->wr), fabs(md->wi));
    md->q = mag > 0 ? mant_exp(ldexp(mag, e), F) : INT32_MIN / 2; /* set with the shifts */
    return CR_OK;
}

/* Mantissas from the current exponents; the mode's output bound. */
static void mode_weights(const fx_fmt *f, fx_mode *md)
{
    const int F = f->F;
    if (md->q == INT32_MIN / 2) {
        md->gr = md->gi = 0;
    } else {
        md->gr = mant(ldexp(md->wr, md->e), F, md->q);
        md->gi = md->pair ? mant(ldexp(md->wi, md->e), F, md->q) : 0;
    }
    /* real weights acting on the real state: g 2^(q - F - e) */
    double w[2] = {0, 0};
    if (md->gr || md->gi) {
        w[0] = ldexp((double)md->gr, md->q - F - md->e);
        w[1] = ldexp((double)md->gi, md->q - F - md->e);
    }
    double complex zq = ldexp((double)md->a, -F) + I * ldexp((double)md->b, -F);
    double l1, l1w;
    if (md->pair) {
        l1_sums(zq, md->rho_q, md->omr_q, w, &l1, &l1w);
    } else {
        l1w = fabs(w[0]) / md->omr_q * (1 + 1e-12);
    }
    /* rounding errors of the state, |E| <= c / (1 - rho_q), through the weights */
    double gn = (md->gr || md->gi) ? ldexp(hypot((double)md->gr, (double)md->gi), md->q - 2 * F)
                                   : 0.0;
    double cnoise = md->pair ? 0.7071067811865476 : 0.5;
    md->bound = l1w + gn * cnoise / md->omr_q * (1 + 1e-9);
}

/* The channel's l1 bound: sum_k |hq[k]| of the quantised filter (summed
 * over K samples, geometric tail beyond) plus the rounding terms. work:
 * K doubles. */
static double channel_l1(const fx_fmt *f, const fx_mode *md, size_t n, double d, size_t K,
                         double *work)
{
    const int F = f->F;
    memset(work, 0, K * sizeof(double));
    double tail = 0, noise = 0;
    for (size_t i = 0; i < n; i++) {
        const fx_mode *x = &md[i];
        if (!x->gr && !x->gi) continue;
        double w0 = ldexp((double)x->gr, x->q - F - x->e), w1 = ldexp((double)x->gi, x->q - F - x->e);
        double complex z0 = ldexp((double)x->a, -F) + I * ldexp((double)x->b, -F), z = 1.0;
        for (size_t k = 1; k < K; k++) {
            if (k > 1 && (k - 1) % 64 == 0) z = cr__cpow(z0, k - 1);
            work[k] += w0 * creal(z) - w1 * cimag(z);
            z *= z0;
        }
        tail += hypot(w0, w1) * pow(x->rho_q, (double)(K - 1)) / x->omr_q;
        double gn = ldexp(hypot((double)x->gr, (double)x->gi), x->q - 2 * F);
        noise += gn * (x->pair ? 0.7071067811865476 : 0.5) / x->omr_q;
    }
    double s = fabs(d);
    for (size_t k = 1; k < K; k++) s += fabs(work[k]);
    return (s + tail + noise) * (1 + 1e-9);
}

/* ---------------------------------------------------------------------
 * Error of the quantised filter
 * --------------------------------------------------------------------- */

/* The quantised mode's impulse response (coefficients as written, exact
 * arithmetic) and the model's, added into hq[1..K-1] and h[1..K-1];
 * returns their squared difference. */
static double coef_mode(const fx_fmt *f, const fx_mode *md, size_t K, double *hq, double *h)
{
    const int F = f->F;
    double w0 = 0, w1 = 0;
    if (md->gr || md->gi) {
        w0 = ldexp((double)md->gr, md->q - F - md->e);
        w1 = ldexp((double)md->gi, md->q - F - md->e);
    }
    const double wm = md->pair ? 2.0 : 1.0;
    const double complex zq0 = ldexp((double)md->a, -F) + I * ldexp((double)md->b, -F);
    double complex zq = 1.0, z = 1.0; /* powers k - 1 */
    double e2 = 0;
    for (size_t k = 1; k < K; k++) {
        if (k > 1 && (k - 1) % 64 == 0) {
            zq = cr__cpow(zq0, k - 1);
            z = cr__cpow(md->lam, k - 1);
        }
        double yq = w0 * creal(zq) - w1 * cimag(zq), y = wm * creal(md->res * z);
        hq[k] += yq;
        h[k] += y;
        e2 += (yq - y) * (yq - y);
        zq *= zq0;
        z *= md->lam;
    }
    return e2;
}

/* Mean square of the state rounding errors (to nearest: |eps| <= 1/2,
 * uniform, E eps^2 = 1/12 per component, independent from step to step),
 * through the mode's output: the errors of both components pass the
 * scaled rotation, sum_k |A^k' g|^2 = |g|^2 / (1 - rho^2). Real units. */
static double noise_mode(const fx_fmt *f, const fx_mode *md)
{
    if (!md->gr && !md->gi) return 0;
    double gn = ldexp(hypot((double)md->gr, (double)md->gi), md->q - 2 * f->F);
    return gn * gn / 12.0 / (md->omr_q * (1.0 + md->rho_q)); /* 1 - rho^2, exactly */
}

/* ---------------------------------------------------------------------
 * Code generation
 * --------------------------------------------------------------------- */

static void sb_ints(cr__sbuf *b, const char *type, const char *name, const int64_t *v, size_t n)
{
    cr__sb_printf(b, "static const %s %s[%zu] = {", type, name, n ? n : 1);
    if (n == 0) cr__sb_printf(b, "0");
    for (size_t i = 0; i < n; i++)
        cr__sb_printf(b, "%s%lld", i ? (i % 6 ? ", " : ",\n    ") : "\n    ", (long long)v[i]);
    cr__sb_printf(b, "%s};\n", n ? "\n" : "");
}

static void sb_offs(cr__sbuf *b, const char *name, const size_t *v, size_t n)
{
    cr__sb_printf(b, "static const unsigned long %s[%zu] = {", name, n);
    for (size_t i = 0; i < n; i++) cr__sb_printf(b, "%s%zuUL", i ? ", " : "", v[i]);
    cr__sb_printf(b, "};\n");
}

static cr_status generate(const fx_fmt *f, const cr_model *m, const fx_mode *md,
                          const fx_chan *ch, int S, int auto_shift, double maxL1, size_t K,
                          const char *dir, const char *name)
{
    const size_t C = m->C;
    size_t np = 0, nr = 0, nm = ch[C - 1].m1;
    for (size_t i = 0; i < nm; i++) np += md[i].pair, nr += !md[i].pair;
    int64_t *v = malloc((8 * (np + nr) + 3 * C + 8) * sizeof(int64_t));
    size_t *off = malloc(2 * (C + 1) * sizeof(size_t));
    cr__sbuf h = {0}, c = {0};
    if (!v || !off) {
        free(v);
        free(off);
        return cr__fail(CR_ENOMEM, "cr_export_c_ex: out of memory");
    }
    int64_t *pa = v, *pb = pa + np, *pgr = pb + np, *pgi = pgr + np, *pish = pgi + np,
            *posh = pish + np;
    int64_t *rl = posh + np, *rg = rl + nr, *rish = rg + nr, *rosh = rish + nr;
    int64_t *fd = rosh + nr, *fsh = fd + C, *oz = fsh + C;
    size_t *poff = off, *roff = off + C + 1, ip = 0, ir = 0;
    double worst = 0, dbmax = 0;
    size_t dbc = 0;
    for (size_t q = 0; q < C; q++) {
        double db = 0;
        for (size_t i = ch[q].m0; i < ch[q].m1; i++)
            if (md[i].gr || md[i].gi)
                db += ldexp(hypot((double)md[i].gr, (double)md[i].gi), md[i].q - 2 * f->F) *
                      (md[i].pair ? 0.7071067811865476 : 0.5) / md[i].omr_q;
        if (ldexp(db, -S) > dbmax) dbmax = ldexp(db, -S), dbc = q;
    }
    for (size_t q = 0; q < C; q++) {
        poff[q] = ip;
        roff[q] = ir;
        for (size_t i = ch[q].m0; i < ch[q].m1; i++)
            if (md[i].pair) {
                pa[ip] = md[i].a, pb[ip] = md[i].b, pgr[ip] = md[i].gr, pgi[ip] = md[i].gi;
                pish[ip] = f->F - md[i].e, posh[ip] = md[i].osh;
                ip++;
            }
        for (size_t i = ch[q].m0; i < ch[q].m1; i++)
            if (!md[i].pair) {
                rl[ir] = md[i].a, rg[ir] = md[i].gr;
                rish[ir] = f->F - md[i].e, rosh[ir] = md[i].osh;
                ir++;
            }
        fd[q] = ch[q].dq, fsh[q] = ch[q].dsh, oz[q] = ch[q].Z;
        if (ch[q].err > worst) worst = ch[q].err;
    }
    poff[C] = ip;
    roff[C] = ir;
    char up[80];
    cr__export_upper(name, up);
    const char *T = f->smp, *A = f->acc;

    /* ---- header ---- */
    cr__sb_printf(&h,
                  "/* %s: a %zu-channel IIR filter exported by convrec %s, %s fixed point.\n"
                  " * Modal state-space recurrence in integer arithmetic: per channel,\n"
                  " * y[t] = d u[t] + sum of the mode outputs (zero latency), one 2x2\n"
                  " * rotation block per conjugate pair, one scalar per real mode.\n"
                  " *\n"
                  " * Samples are %s: %s x stands for x / 2^%d, full scale [-1, 1).\n"
                  " * The output is y 2^-%s_OUT_SHIFT (= 2^-%d), saturated to full scale.\n"
                  " *\n"
                  " * Guarantee (checked by convrec at export): for every input whose\n"
                  " * samples are within full scale (any %s), no state and no\n"
                  " * accumulator can overflow. Each mode's input is scaled by 2^-e, e\n"
                  " * chosen from the l1 gain of its state (sum_k |lambda^k| per\n"
                  " * component, quantised pole) plus the bound on its rounding errors.\n",
                  name, C, cr_version(), f->tag, f->tag, T, f->F, up, S, T);
    if (auto_shift)
        cr__sb_printf(&h,
                      " * The output shift was chosen from the l1 gain of each channel\n"
                      " * (sum_k |h[k]| of the quantised filter plus its rounding), so the\n"
                      " * output never saturates either.\n");
    else
        cr__sb_printf(&h,
                      " * The output shift was set by the caller: outputs beyond full scale\n"
                      " * saturate (largest l1 gain of a channel, rounding included: %.6g,\n"
                      " * i.e. %.6g of full scale after the shift).\n",
                      maxL1, ldexp(maxL1, -S));
    cr__sb_printf(&h,
                  " *\n"
                  " * Rounding: each state update is rounded to nearest (add half,\n"
                  " * shift), an unbiased error of at most half a state's last bit. Mode\n"
                  " * outputs are summed exactly down to 2^-z below the output's last bit\n"
                  " * (z per channel, out_z) and rounded to nearest once. Coefficients\n"
                  " * are the model's rounded to nearest %s. Needs C99 <stdint.h> and >>\n"
                  " * of a negative integer to be an arithmetic shift (GCC, Clang, Arm\n"
                  " * Compiler and IAR all do).\n"
                  " * Limit: after the input stops, a state may hang in the deadband of\n"
                  " * rounding (up to 1 / (2 (1 - |lambda|)) of its last bit) instead of\n"
                  " * decaying to 0; the largest output this can leave is %.3g of full\n"
                  " * scale (channel %zu). Reset with %s_init when silence matters.\n"
                  " *\n",
                  f->tag, dbmax, dbc, name);
    cr__sb_printf(&h,
                  " * Measured at export, per channel: the relative l2 error of the\n"
                  " * impulse response of these coefficients against the double model over\n"
                  " * %zu samples, the rounding noise relative to the output of a\n"
                  " * full-scale white input (as SNR), and their root sum of squares,\n"
                  " * which must stay within the budget:\n",
                  K);
    for (size_t q = 0; q < C; q++)
        cr__sb_printf(&h,
                      " *   channel %zu: coefficients %.3g, noise %.3g (SNR %.1f dB), total %.3g"
                      " (budget %.3g, %s)\n",
                      q, ch[q].coef, ch[q].noise, -20.0 * log10(ch[q].noise), ch[q].err,
                      ch[q].budget, ch[q].budget_why);
    cr__sb_printf(&h,
                  " * C99, no allocation, no libm, no dependency on convrec. */\n"
                  "#ifndef %s_H\n#define %s_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n",
                  up, up);
    cr__sb_printf(&h,
                  "#define %s_CHANNELS %zu\n#define %s_PAIRS %zu /* conjugate pairs, all channels */\n"
                  "#define %s_REALS %zu /* real modes, all channels */\n"
                  "#define %s_FRAC_BITS %d /* samples are %s */\n"
                  "#define %s_OUT_SHIFT %d /* out = y 2^-%s_OUT_SHIFT */\n"
                  "#define %s_MAX_ERROR %.3g /* worst channel's measured error */\n\n",
                  up, C, up, np, up, nr, up, f->F, f->tag, up, S, up, up, worst);
    cr__sb_printf(&h,
                  "/* Filter state: zero it with %s_init; place it anywhere (static,\n"
                  " * stack, a DMA-safe region). pair[2j], pair[2j+1] are the scaled\n"
                  " * (Re, Im) of pair j's state, real[j] that of real mode j. */\n"
                  "typedef struct %s_state {\n    %s pair[%zu];\n    %s real[%zu];\n} %s_state;\n\n",
                  name, name, T, np ? 2 * np : 1, T, nr ? nr : 1, name);
    cr__sb_printf(&h,
                  "/* Reset the state (no input yet). */\n"
                  "void %s_init(%s_state *s);\n"
                  "/* Filter n samples of every channel. in and out are channel-major\n"
                  " * (%s_CHANNELS, n) buffers of %s samples: sample t of channel c at\n"
                  " * [c * n + t]. Successive calls continue the stream. in and out may\n"
                  " * be the same buffer. */\n"
                  "void %s_process(%s_state *s, const %s *in, %s *out, size_t n);\n\n"
                  "#endif\n",
                  name, name, up, f->tag, name, name, T, T);

    /* ---- source ---- */
    cr__sb_printf(&c, "/* %s: generated by convrec %s (%s); see %s.h. */\n#include \"%s.h\"\n\n",
                  name, cr_version(), f->tag, name, name);
    cr__sb_printf(&c,
                  "/* Pair j: pole (a + ib) 2^-%d; output weights (gr, gi) 2^-%d act on the\n"
                  " * scaled state and are added >> osh; the input enters as x << ish.\n"
                  " * Real mode j: pole l, weight g, likewise. Channel c: feedthrough d\n"
                  " * (added >> dsh), z bits below the output's last bit. */\n",
                  f->F, f->F);
    sb_ints(&c, T, "pair_a", pa, np);
    sb_ints(&c, T, "pair_b", pb, np);
    sb_ints(&c, T, "pair_gr", pgr, np);
    sb_ints(&c, T, "pair_gi", pgi, np);
    sb_ints(&c, "unsigned char", "pair_ish", pish, np);
    sb_ints(&c, "unsigned char", "pair_osh", posh, np);
    sb_ints(&c, T, "real_l", rl, nr);
    sb_ints(&c, T, "real_g", rg, nr);
    sb_ints(&c, "unsigned char", "real_ish", rish, nr);
    sb_ints(&c, "unsigned char", "real_osh", rosh, nr);
    sb_ints(&c, T, "feed_d", fd, C);
    sb_ints(&c, "unsigned char", "feed_dsh", fsh, C);
    sb_ints(&c, "unsigned char", "out_z", oz, C);
    sb_offs(&c, "pair_off", poff, C + 1);
    sb_offs(&c, "real_off", roff, C + 1);
    cr__sb_printf(&c,
                  "\n/* x 2^n for either sign of x: << of a negative value is undefined in\n"
                  " * C99, the unsigned shift is the same instruction. */\n"
                  "#define SHL(x, n) ((%s)((%s)(%s)(x) << (n)))\n"
                  "#define RND ((%s)1 << %d) /* half of a state's last bit */\n",
                  A, f->uacc, A, A, f->F - 1);
    cr__sb_printf(&c,
                  "\nvoid %s_init(%s_state *s)\n{\n    size_t j;\n"
                  "    for (j = 0; j < sizeof s->pair / sizeof s->pair[0]; j++) s->pair[j] = 0;\n"
                  "    for (j = 0; j < sizeof s->real / sizeof s->real[0]; j++) s->real[j] = 0;\n}\n\n",
                  name, name);
    cr__sb_printf(&c,
                  "void %s_process(%s_state *s, const %s *in, %s *out, size_t n)\n{\n"
                  "    size_t c, t, j;\n"
                  "    for (c = 0; c < %s_CHANNELS; c++) {\n"
                  "        const %s *u = in + c * n;\n"
                  "        %s *y = out + c * n;\n"
                  "        const unsigned z = out_z[c];\n"
                  "        const %s half = z ? (%s)1 << (z - 1) : 0;\n"
                  "        for (t = 0; t < n; t++) {\n"
                  "            const %s x = u[t];\n"
                  "            %s acc = ((%s)feed_d[c] * x) >> feed_dsh[c];\n"
                  "            /* outputs from the states before the update (zero latency:\n"
                  "             * x reaches the modes one sample later, through d now) */\n"
                  "            for (j = pair_off[c]; j < pair_off[c + 1]; j++) {\n"
                  "                const %s sr = s->pair[2 * j], si = s->pair[2 * j + 1];\n"
                  "                const %s a = pair_a[j], b = pair_b[j];\n"
                  "                acc += ((%s)pair_gr[j] * sr - (%s)pair_gi[j] * si) >> pair_osh[j];\n"
                  "                s->pair[2 * j] = (%s)(((%s)a * sr - (%s)b * si + SHL(x, pair_ish[j]) + RND) >> %d);\n"
                  "                s->pair[2 * j + 1] = (%s)(((%s)b * sr + (%s)a * si + RND) >> %d);\n"
                  "            }\n"
                  "            for (j = real_off[c]; j < real_off[c + 1]; j++) {\n"
                  "                const %s sr = s->real[j];\n"
                  "                acc += ((%s)real_g[j] * sr) >> real_osh[j];\n"
                  "                s->real[j] = (%s)(((%s)real_l[j] * sr + SHL(x, real_ish[j]) + RND) >> %d);\n"
                  "            }\n"
                  "            acc = (acc + half) >> z;\n"
                  "            y[t] = acc > %s ? %s : acc < %s ? %s : (%s)acc;\n"
                  "        }\n"
                  "    }\n}\n",
                  name, name, T, T, up, T, T, A, A, T, A, A, T, T, A, A, T, A, A, f->F, T, A, A,
                  f->F, T, A, T, A, f->F, f->smax, f->smax, f->smin, f->smin, T);
    free(v);
    free(off);
    return cr__export_write_pair(dir, name, &h, &c, "cr_export_c_ex");
}

/* ---------------------------------------------------------------------
 * The export
 * --------------------------------------------------------------------- */

/* Exponent q -> shift F + S - Z - q, raising q (coarser mantissa) where
 * the shift would pass W - 1; returns 1 if a mantissa changed. */
static int set_shift(const fx_fmt *f, int S, int Z, int *q, int *sh)
{
    int s = f->F + S - Z - *q, changed = 0;
    if (s > f->W - 1) {
        *q += s - (f->W - 1);
        s = f->W - 1;
        changed = 1;
    }
    *sh = s;
    return changed;
}

cr_status cr__export_c_fixed(const cr_model *m, const char *dir, const char *name,
                             const cr_export_options *o, cr_export_report *rep)
{
    const fx_fmt *f = o->numeric == CR_NUMERIC_Q31 ? &FMT_Q31 : &FMT_Q15;
    const int F = f->F, W = f->W;
    const size_t C = m->C, M = m->M;
    cr_status st = CR_OK;
    fx_mode *md = malloc((C * M + 1) * sizeof(fx_mode));
    fx_chan *ch = malloc(C * sizeof(fx_chan));
    double *work = NULL, *ref = NULL;
    if (!md || !ch) {
        st = cr__fail(CR_ENOMEM, "cr_export_c_ex: out of memory");
        goto done;
    }

    /* horizons: the channel bound sums until every quantised mode has
     * decayed (1e-9), at most CH_KMAX; errors over the record's length */
    size_t nm = 0, Kc = 64, Ke = 0;
    for (size_t c = 0; c < C; c++) {
        ch[c].m0 = nm;
        for (size_t j = 0; j < M; j++) {
            size_t i = c * M + j;
            if (m->kind[i] == CR_MODE_UNUSED) continue;
            fx_mode *x = &md[nm++];
            memset(x, 0, sizeof *x);
            x->j = j;
            x->pair = m->kind[i] == CR_MODE_PAIR;
            x->lam = m->pole_re[i] + I * m->pole_im[i];
            x->res = m->res_re[i] + I * m->res_im[i];
            x->wr = x->pair ? 2.0 * m->res_re[i] : m->res_re[i];
            x->wi = x->pair ? 2.0 * m->res_im[i] : 0.0;
            if ((st = plan_mode(f, x, c)) != CR_OK) goto done;
            if (x->rho_q > 0) {
                double k = ceil(log(1e-9) / log(x->rho_q)) + 1;
                if (k > (double)Kc) Kc = k < (double)CH_KMAX ? (size_t)k : CH_KMAX;
            }
        }
        ch[c].m1 = nm;
        if (m->record[c].length > Ke) Ke = m->record[c].length;
        double d = m->d[c];
        ch[c].qd = d != 0 ? mant_exp(fabs(d), F) : INT32_MIN / 2;
    }
    if (Ke == 0) Ke = Kc;
    if (Ke > ERR_KMAX) Ke = ERR_KMAX;
    work = malloc((Kc > Ke ? Kc : Ke) * sizeof(double));
    ref = malloc(Ke * sizeof(double));
    if (!work || !ref) {
        st = cr__fail(CR_ENOMEM, "cr_export_c_ex: out of memory");
        goto done;
    }

    /* Bounds, output shift S, accumulator bits Z; a mantissa coarsened by
     * the shift cap changes the bounds, so repeat until nothing moves. */
    const int auto_shift = o->output_shift == CR_EXPORT_SHIFT_AUTO;
    int S = auto_shift ? 0 : o->output_shift;
    for (int round = 0;; round++) {
        if (round == 8) {
            st = cr__fail(CR_EPRECISION, "cr_export_c_ex: the %s scaling did not settle", f->tag);
            goto done;
        }
        for (size_t c = 0; c < C; c++) {
            ch[c].dq = ch[c].qd == INT32_MIN / 2 ? 0 : mant(m->d[c], F, ch[c].qd);
            double dr = ch[c].dq ? ldexp((double)ch[c].dq, ch[c].qd - F) : 0.0, B = fabs(dr);
            for (size_t i = ch[c].m0; i < ch[c].m1; i++) {
                mode_weights(f, &md[i]);
                B += md[i].bound;
            }
            ch[c].B = B * (1 + 1e-9);
            ch[c].L1 = channel_l1(f, md + ch[c].m0, ch[c].m1 - ch[c].m0, dr, Kc, work);
        }
        int S0 = S;
        if (auto_shift) /* |out| <= L1 2^(F-S) + 1/2 + slack of the summed shifts */
            for (size_t c = 0; c < C; c++) {
                double slack = 2.0 + (double)(ch[c].m1 - ch[c].m0 + 1);
                while (S < 40 && ldexp(ch[c].L1, F - S) + slack > ldexp(1.0, F) - 1) S++;
            }
        int moved = S != S0;
        for (size_t c = 0; c < C; c++) {
            /* |acc| <= 2^(F-S+Z) B + (number of terms) + 2^(Z-1) < 2^W */
            double bits = W - F + S - log2(ch[c].B > 0 ? ch[c].B : 1e-300);
            int Z = (int)floor(bits) - 1;
            if (Z > F + 8) Z = F + 8; /* more is useless and would overflow the shifts */
            for (size_t i = ch[c].m0; i < ch[c].m1; i++)
                if (md[i].q != INT32_MIN / 2 && F + S - md[i].q < Z) Z = F + S - md[i].q;
            if (ch[c].qd != INT32_MIN / 2 && F + S - ch[c].qd < Z) Z = F + S - ch[c].qd;
            if (Z < 0) {
                st = cr__fail(CR_EPRECISION,
                              "cr_export_c_ex: channel %zu: the range of its weights exceeds the "
                              "%s accumulator at output shift %d: export in Q31 or float",
                              c, f->tag, S);
                goto done;
            }
            ch[c].Z = Z;
            for (size_t i = ch[c].m0; i < ch[c].m1; i++) {
                fx_mode *x = &md[i];
                if (x->q == INT32_MIN / 2) /* zero weights: nothing to add */
                    x->osh = 0;
                else
                    moved |= set_shift(f, S, Z, &x->q, &x->osh);
            }
            if (ch[c].qd == INT32_MIN / 2)
                ch[c].dsh = 0;
            else
                moved |= set_shift(f, S, Z, &ch[c].qd, &ch[c].dsh);
        }
        if (!moved) break;
    }
    double maxL1 = 0;
    for (size_t c = 0; c < C; c++) maxL1 = fmax(maxL1, ch[c].L1);
    if (auto_shift && S >= 40) {
        st = cr__fail(CR_EPRECISION, "cr_export_c_ex: the l1 gain %.3g is too large for %s",
                      maxL1, f->tag);
        goto done;
    }

    /* The error of each channel: the impulse response of the quantised
     * coefficients against the model (relative l2 over Ke samples), and
     * the rounding noise relative to the output of a full-scale white
     * input (uniform, variance 1/3); total = their root sum of squares. */
    double worst_ratio = -1;
    size_t wc = 0;
    double *hq = work;
    for (size_t c = 0; c < C; c++) {
        fx_chan *q = &ch[c];
        memset(hq, 0, Ke * sizeof(double));
        memset(ref, 0, Ke * sizeof(double));
        hq[0] = q->dq ? ldexp((double)q->dq, q->qd - F) : 0.0;
        ref[0] = m->d[c];
        double ed2 = (hq[0] - ref[0]) * (hq[0] - ref[0]), nv = 0;
        for (size_t i = q->m0; i < q->m1; i++) {
            md[i].coef2 = coef_mode(f, &md[i], Ke, hq, ref);
            md[i].noise2 = noise_mode(f, &md[i]);
            nv += md[i].noise2;
        }
        double e2 = 0, h2 = 0;
        for (size_t k = 0; k < Ke; k++) {
            e2 += (hq[k] - ref[k]) * (hq[k] - ref[k]);
            h2 += ref[k] * ref[k];
        }
        /* output rounding (1/12 of its last bit squared) and the floors of
         * the summed terms (< 1 unit 2^-Z each, taken as correlated) */
        double lsb = ldexp(1.0, S - F), nt = (double)(q->m1 - q->m0 + 1);
        double nout = lsb * lsb / 12.0 + nt * nt * ldexp(lsb, -q->Z) * ldexp(lsb, -q->Z) / 3.0;
        nv += nout;
        double sig = (h2 > 0 ? h2 : 1.0) / 3.0;
        q->coef = h2 > 0 ? sqrt(e2 / h2) : sqrt(e2);
        q->noise = sqrt(nv / sig);
        q->err = hypot(q->coef, q->noise);
        for (size_t i = q->m0; i < q->m1; i++) {
            md[i].coef2 /= h2 > 0 ? h2 : 1.0;
            md[i].noise2 /= sig;
        }
        q->rest2 = ed2 / (h2 > 0 ? h2 : 1.0) + nout / sig;
        /* the budget */
        double fit = m->record[c].err_window;
        if (o->max_error > 0) {
            q->budget = o->max_error;
            q->budget_why = "max_error";
        } else if (isfinite(fit) && fit > 0) {
            /* ten times the fit's own error, but never a default above 10 %:
             * a poor fit is no licence for a much worse filter */
            q->budget = fmin(10.0 * fit, 0.1);
            q->budget_why = 10.0 * fit > 0.1 ? "10 x err_window, capped at 0.1" : "10 x err_window";
        } else {
            q->budget = 1e-3;
            q->budget_why = "default, no fit error known";
        }
        double ratio = q->err / q->budget;
        if (ratio > worst_ratio) worst_ratio = ratio, wc = c;
    }

    /* the worst channel's largest share */
    fx_chan *w = &ch[wc];
    size_t wm = SIZE_MAX;
    double we2 = w->rest2;
    for (size_t i = w->m0; i < w->m1; i++)
        if (md[i].coef2 + md[i].noise2 > we2) we2 = md[i].coef2 + md[i].noise2, wm = i;
    if (rep) {
        rep->error = w->err;
        rep->coef_error = w->coef;
        rep->noise = w->noise;
        rep->budget = w->budget;
        rep->channel = wc;
        rep->mode = wm == SIZE_MAX ? SIZE_MAX : md[wm].j;
        rep->mode_error = sqrt(we2);
        rep->horizon = Ke;
        rep->output_shift = S;
    }
    if (!(w->err <= w->budget)) {
        if (wm == SIZE_MAX)
            st = cr__fail(CR_EPRECISION,
                          "cr_export_c_ex: channel %zu: the %s filter's error %.3g "
                          "(coefficients %.3g, rounding noise %.3g) exceeds the budget %.3g (%s); "
                          "the largest share (%.3g) is the feedthrough and output rounding at "
                          "output shift %d",
                          wc, f->tag, w->err, w->coef, w->noise, w->budget, w->budget_why,
                          sqrt(we2), S);
        else
            st = cr__fail(CR_EPRECISION,
                          "cr_export_c_ex: channel %zu: the %s filter's error %.3g "
                          "(coefficients %.3g, rounding noise %.3g) exceeds the budget %.3g (%s); "
                          "the largest share (%.3g) is mode %zu (pole %.8g%+.8gi, |lambda| = "
                          "%.10g, input scaled by 2^-%d)",
                          wc, f->tag, w->err, w->coef, w->noise, w->budget, w->budget_why,
                          sqrt(we2), md[wm].j, creal(md[wm].lam), cimag(md[wm].lam), md[wm].rho,
                          md[wm].e);
        goto done;
    }
    st = generate(f, m, md, ch, S, auto_shift, maxL1, Ke, dir, name);

done:
    free(md);
    free(ch);
    free(work);
    free(ref);
    return st;
}
