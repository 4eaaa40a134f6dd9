/* Precision template of the spectral module, included by spectral.c once
 * per precision with these macros defined:
 *   R       real type (double, float)
 *   CPX     FFTW complex type (fftw_complex, fftwf_complex)
 *   FPLAN   FFTW plan type
 *   FFTW(x) FFTW function name (fftw_x, fftwf_x)
 *   SFX     name suffix (d, f); NAME(base) expands to base_SFX
 *   PLAN    cached planner (cr__plan_d, cr__plan_f)
 *   ALLOC_R, ALLOC_C  aligned allocators
 * Not a standalone header. */

/* ---------------------------------------------------------------------
 * Small kernels
 * --------------------------------------------------------------------- */
/* x *= k, complex, nc entries. */
CR_CLONES static void NAME(cmul)(CPX *restrict X, const CPX *restrict K, size_t nc)
{
    R *restrict x = (R *)X;
    const R *restrict k = (const R *)K;
#pragma omp simd
    for (size_t q = 0; q < nc; q++) {
        R a = x[2 * q], b = x[2 * q + 1], c = k[2 * q], d = k[2 * q + 1];
        x[2 * q] = a * c - b * d;
        x[2 * q + 1] = a * d + b * c;
    }
}

/* acc (+)= x * k, complex, nc entries; first call assigns. */
CR_CLONES static void NAME(cmac)(CPX *restrict ACC, const CPX *restrict X, const CPX *restrict K, size_t nc,
                       int first)
{
    R *restrict acc = (R *)ACC;
    const R *restrict x = (const R *)X;
    const R *restrict k = (const R *)K;
    if (first) {
#pragma omp simd
        for (size_t q = 0; q < nc; q++) {
            R a = x[2 * q], b = x[2 * q + 1], c = k[2 * q], d = k[2 * q + 1];
            acc[2 * q] = a * c - b * d;
            acc[2 * q + 1] = a * d + b * c;
        }
    } else {
#pragma omp simd
        for (size_t q = 0; q < nc; q++) {
            R a = x[2 * q], b = x[2 * q + 1], c = k[2 * q], d = k[2 * q + 1];
            acc[2 * q] += a * c - b * d;
            acc[2 * q + 1] += a * d + b * c;
        }
    }
}

/* 0 when every x is finite, NaN otherwise (x * 0 is NaN for NaN and Inf). */
static R NAME(nonfinite)(const R *restrict x, size_t n)
{
    R acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) acc += x[i] * (R)0;
    return acc;
}

/* dst = scale * src, returning the non-finite probe of src (one pass over
 * the input instead of a copy plus a check). */
CR_CLONES static R NAME(copy_check)(R *restrict dst, const R *restrict src, size_t n, R scale)
{
    R acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[i] * scale;
        acc += src[i] * (R)0;
    }
    return acc;
}

/* Spectrum of the first Le taps of h zero-padded to N, scaled by 1/N so the
 * inverse transforms come out normalised (the scale is applied to the taps:
 * the transform is linear). Returns the non-finite probe of the taps. */
static R NAME(kernel_spectrum)(FPLAN fwd, const R *h, size_t Le, size_t N, R *buf, CPX *K)
{
    R bad = NAME(copy_check)(buf, h, Le, (R)(1.0 / (double)N));
    memset(buf + Le, 0, (N - Le) * sizeof(R));
    FFTW(execute_dft_r2c)(fwd, buf, K);
    return bad;
}

/* Overlap-save segments [seg0, seg1) of one stream u (length T) with the
 * kernel spectrum K: segment j gives y[jS .. jS+S), from the input window
 * u[jS - (Le-1) .. jS + S) (zeros outside [0, T)). Returns the non-finite
 * probe of the inputs read (0 when all finite). */
static R NAME(conv_segments)(FPLAN fwd, FPLAN inv, const CPX *K, const R *u, size_t T, size_t Le,
                             size_t N, size_t S, size_t seg0, size_t seg1, R *buf, CPX *X, R *y)
{
    R bad = 0;
    size_t nc = N / 2 + 1;
    for (size_t j = seg0; j < seg1; j++) {
        size_t t0 = j * S;
        size_t lead = t0 < Le - 1 ? Le - 1 - t0 : 0;   /* zeros before u[0] */
        size_t src = t0 + lead - (Le - 1);             /* first u index read */
        size_t want = S + Le - 1 - lead;               /* window samples after the zeros */
        size_t cnt = T - src < want ? T - src : want;
        memset(buf, 0, lead * sizeof(R));
        bad += NAME(copy_check)(buf + lead, u + src, cnt, 1);
        memset(buf + lead + cnt, 0, (N - lead - cnt) * sizeof(R));
        FFTW(execute_dft_r2c)(fwd, buf, X);
        NAME(cmul)(X, K, nc);
        FFTW(execute_dft_c2r)(inv, X, buf);
        size_t nout = T - t0 < S ? T - t0 : S;
        memcpy(y + t0, buf + Le - 1, nout * sizeof(R));
    }
    return bad;
}

/* ---------------------------------------------------------------------
 * Batched causal convolution
 * --------------------------------------------------------------------- */
cr_status NAME(cr_conv)(const R *h, size_t C, size_t L, const R *u, size_t B, size_t T, R *y,
                        int nthreads)
{
    size_t CL, CT, BCT, N, S;
    if (h == NULL || u == NULL || y == NULL) return cr__fail(CR_EINVAL, "conv: NULL argument");
    if (C == 0 || L == 0 || B == 0 || T == 0)
        return cr__fail(CR_EINVAL, "conv: zero size (C=%zu, L=%zu, B=%zu, T=%zu)", C, L, B, T);
    if (!cr__mul_ok(C, L, &CL) || CL > CR_MAX_ELEMS || !cr__mul_ok(C, T, &CT) ||
        !cr__mul_ok(B, CT, &BCT) || BCT > CR_MAX_ELEMS || !cr__conv_sizes(L, T, B, &N, &S))
        return cr__fail(CR_EOVERFLOW, "conv: sizes too large (C=%zu, L=%zu, B=%zu, T=%zu)", C, L, B, T);
    if (ranges_overlap(y, BCT * sizeof(R), h, CL * sizeof(R)) ||
        ranges_overlap(y, BCT * sizeof(R), u, BCT * sizeof(R)))
        return cr__fail(CR_EINVAL, "conv: output overlaps an input");
    size_t Le = L < T ? L : T;
    /* Taps up to Le are checked while they are loaded; the unused rest here. */
    if (L > T)
        for (size_t c = 0; c < C; c++)
            if (NAME(nonfinite)(h + c * L + Le, L - Le) != 0)
                return cr__fail(CR_ENONFINITE, "conv: NaN or Inf in kernel %zu", c);

    size_t nc = N / 2 + 1, nseg = (T + S - 1) / S;
    /* at most one work item per (stream, channel, segment) */
    size_t BC = B * C, items = nseg > SIZE_MAX / BC ? SIZE_MAX : BC * nseg;
    int nt = resolve_threads(nthreads, items);
    /* With fewer channels than threads, spectra of the whole bank are made
     * first, and the (stream, channel, segment-chunk) items are shared out. */
    int bank_mode = (size_t)nt > C && nt > 1 && (B > 1 || nseg > 1);
    size_t nchunk = 1;
    if (bank_mode && B * C < (size_t)nt * 4) {
        nchunk = ((size_t)nt * 4 + B * C - 1) / (B * C);
        if (nchunk > nseg) nchunk = nseg;
    }
    size_t bank_n, ncs = round_up(nc, 8); /* aligned rows for the FFT output */
    CPX *bank = NULL;
    if (bank_mode) {
        if (!cr__mul_ok(C, ncs, &bank_n) || bank_n > CR_MAX_ELEMS)
            return cr__fail(CR_EOVERFLOW, "conv: kernel spectra too large");
        bank = ALLOC_C(bank_n);
        if (bank == NULL) return cr__fail(CR_ENOMEM, "conv: out of memory for kernel spectra");
    }
    int failed = 0;
    R bad = 0;
#pragma omp parallel num_threads(nt) reduction(+ : bad)
    {
        R *buf = ALLOC_R(N);
        CPX *X = ALLOC_C(nc);
        CPX *K = bank_mode ? NULL : ALLOC_C(nc);
        FPLAN fwd = NULL, inv = NULL;
        int ok = buf != NULL && X != NULL && (bank_mode || K != NULL);
        if (ok) {
            fwd = PLAN(CR__FFT_R2C, N, buf, X);
            inv = PLAN(CR__FFT_C2R, N, X, buf);
            ok = fwd != NULL && inv != NULL;
        }
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
        if (!bank_mode) {
#pragma omp for schedule(dynamic, 1)
            for (size_t c = 0; c < C; c++) {
                if (!ok) continue;
                bad += NAME(kernel_spectrum)(fwd, h + c * L, Le, N, buf, K);
                for (size_t b = 0; b < B; b++) {
                    size_t off = (b * C + c) * T;
                    bad += NAME(conv_segments)(fwd, inv, K, u + off, T, Le, N, S, 0, nseg, buf, X, y + off);
                }
            }
        } else {
#pragma omp for schedule(static)
            for (size_t c = 0; c < C; c++)
                if (ok) bad += NAME(kernel_spectrum)(fwd, h + c * L, Le, N, buf, bank + c * ncs);
            /* implicit barrier: the bank is complete below */
            size_t nitems = B * C * nchunk;
#pragma omp for schedule(dynamic, 1)
            for (size_t it = 0; it < nitems; it++) {
                if (!ok) continue;
                size_t pair = it / nchunk, ch = it % nchunk, c = pair % C;
                size_t s0 = nseg * ch / nchunk, s1 = nseg * (ch + 1) / nchunk;
                size_t off = pair * T;
                bad += NAME(conv_segments)(fwd, inv, bank + c * ncs, u + off, T, Le, N, S, s0, s1, buf, X,
                                           y + off);
            }
        }
        cr__fft_free(buf);
        cr__fft_free(X);
        cr__fft_free(K);
    }
    cr__fft_free(bank);
    if (failed) return cr__fail(CR_ENOMEM, "conv: out of memory or FFT plan failure (n=%zu)", N);
    if (bad != 0) {
        for (size_t c = 0; c < C; c++)
            if (NAME(nonfinite)(h + c * L, L) != 0)
                return cr__fail(CR_ENONFINITE, "conv: NaN or Inf in kernel %zu", c);
        for (size_t i = 0; i < BCT; i++)
            if (!isfinite(u[i]))
                return cr__fail(CR_ENONFINITE, "conv: NaN or Inf in signal (stream %zu, channel %zu, t=%zu)",
                                i / CT, i / T % C, i % T);
        return cr__fail(CR_ENONFINITE, "conv: NaN or Inf in signal");
    }
    return CR_OK;
}

/* ---------------------------------------------------------------------
 * Uniformly partitioned overlap-save streamer
 * --------------------------------------------------------------------- */
struct NAME(cr_ols) {
    size_t C, L, P, Q;       /* channels, kernel length, block size, partitions */
    size_t cap;              /* output ring capacity per channel */
    size_t fill;             /* samples in the current input block, < P */
    size_t head;             /* delay-line slot of the newest input spectrum */
    size_t rd, avail;        /* output ring read position and count */
    size_t ws, cs;           /* row strides: window (2P reals), spectrum (P+1 complex) */
    FPLAN fwd, inv;
    R *win;                  /* (C, ws): [previous block | current block] */
    CPX *H;                  /* (C, Q, cs): kernel partition spectra, scaled 1/(2P) */
    CPX *fdl;                /* (C, Q, cs): spectra of the last Q input windows */
    CPX *acc;                /* (cs) */
    R *tmp;                  /* (ws) */
    R *out;                  /* (C, cap) */
};

void FN(cr_ols, destroy)(NAME(cr_ols) *s)
{
    if (s == NULL) return;
    cr__fft_free(s->win);
    cr__fft_free(s->H);
    cr__fft_free(s->fdl);
    cr__fft_free(s->acc);
    cr__fft_free(s->tmp);
    cr__fft_free(s->out);
    free(s);
}

cr_status FN(cr_ols, reset)(NAME(cr_ols) *s)
{
    if (s == NULL) return cr__fail(CR_EINVAL, "cr_ols_reset: NULL streamer");
    memset(s->win, 0, s->C * s->ws * sizeof(R));
    memset(s->fdl, 0, s->C * s->Q * s->cs * sizeof(CPX));
    memset(s->out, 0, s->C * s->cap * sizeof(R));
    s->fill = s->head = s->rd = s->avail = 0;
    return CR_OK;
}

cr_status FN(cr_ols, create)(NAME(cr_ols) **sp, const R *h, size_t C, size_t L, size_t P,
                              size_t max_chunk)
{
    size_t CL, tw, tq, tout;
    if (sp == NULL) return cr__fail(CR_EINVAL, "ols_create: NULL handle");
    *sp = NULL;
    if (h == NULL) return cr__fail(CR_EINVAL, "ols_create: NULL kernel");
    if (C == 0 || L == 0 || P == 0)
        return cr__fail(CR_EINVAL, "ols_create: zero size (C=%zu, L=%zu, P=%zu)", C, L, P);
    if (max_chunk == 0) max_chunk = P;
    if (P > (size_t)INT_MAX / 8 || max_chunk > CR_MAX_ELEMS || !cr__mul_ok(C, L, &CL) || CL > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "ols_create: sizes too large (C=%zu, L=%zu, P=%zu)", C, L, P);
    size_t Q = (L + P - 1) / P;
    size_t ws = round_up(2 * P, 16), cs = round_up(P + 1, 8), cap = max_chunk + P - 1;
    if (!cr__mul_ok(C, ws, &tw) || !cr__mul_ok(C * Q, cs, &tq) || tq > CR_MAX_ELEMS ||
        !cr__mul_ok(C, cap, &tout) || tout > CR_MAX_ELEMS || tw > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "ols_create: buffers too large (C=%zu, L=%zu, P=%zu)", C, L, P);
    for (size_t c = 0; c < C; c++)
        if (NAME(nonfinite)(h + c * L, L) != 0)
            return cr__fail(CR_ENONFINITE, "ols_create: NaN or Inf in kernel %zu", c);
    NAME(cr_ols) *s = calloc(1, sizeof *s);
    if (s == NULL) return cr__fail(CR_ENOMEM, "ols_create: out of memory");
    s->C = C;
    s->L = L;
    s->P = P;
    s->Q = Q;
    s->cap = cap;
    s->ws = ws;
    s->cs = cs;
    s->win = ALLOC_R(tw);
    s->H = ALLOC_C(tq);
    s->fdl = ALLOC_C(tq);
    s->acc = ALLOC_C(cs);
    s->tmp = ALLOC_R(ws);
    s->out = ALLOC_R(tout);
    if (s->win == NULL || s->H == NULL || s->fdl == NULL || s->acc == NULL || s->tmp == NULL ||
        s->out == NULL) {
        FN(cr_ols, destroy)(s);
        return cr__fail(CR_ENOMEM, "ols_create: out of memory");
    }
    s->fwd = PLAN(CR__FFT_R2C, 2 * P, s->win, s->fdl);
    s->inv = PLAN(CR__FFT_C2R, 2 * P, s->acc, s->tmp);
    if (s->fwd == NULL || s->inv == NULL) {
        FN(cr_ols, destroy)(s);
        return cr__fail(CR_ENOMEM, "ols_create: FFT plan failure (size %zu)", 2 * P);
    }
    /* Partition q holds taps [qP, qP + P) in the first half of a 2P window. */
    for (size_t c = 0; c < C; c++)
        for (size_t q = 0; q < Q; q++) {
            size_t k0 = q * P, cnt = L - k0 < P ? L - k0 : P;
            NAME(kernel_spectrum)(s->fwd, h + c * L + k0, cnt, 2 * P, s->tmp, s->H + (c * Q + q) * cs);
        }
    (void)FN(cr_ols, reset)(s);
    *sp = s;
    return CR_OK;
}

size_t FN(cr_ols, available)(const NAME(cr_ols) *s) { return s == NULL ? 0 : s->avail; }
size_t FN(cr_ols, room)(const NAME(cr_ols) *s) { return s == NULL ? 0 : s->cap - s->avail - s->fill; }

/* One full block: transform each channel's window into the delay line,
 * sum the partition products, and append the last P outputs to the ring. */
static void NAME(ols_block)(NAME(cr_ols) *s)
{
    size_t P = s->P, Q = s->Q, cs = s->cs, nc = P + 1;
    s->head = s->head + 1 == Q ? 0 : s->head + 1;
    size_t wpos = s->rd + s->avail;
    if (wpos >= s->cap) wpos -= s->cap;
    size_t first = s->cap - wpos < P ? s->cap - wpos : P;
    for (size_t c = 0; c < s->C; c++) {
        R *w = s->win + c * s->ws;
        CPX *F = s->fdl + c * Q * cs;
        const CPX *Hc = s->H + c * Q * cs;
        FFTW(execute_dft_r2c)(s->fwd, w, F + s->head * cs);
        size_t slot = s->head;
        for (size_t q = 0; q < Q; q++) {
            NAME(cmac)(s->acc, F + slot * cs, Hc + q * cs, nc, q == 0);
            slot = slot == 0 ? Q - 1 : slot - 1;
        }
        FFTW(execute_dft_c2r)(s->inv, s->acc, s->tmp);
        R *o = s->out + c * s->cap;
        memcpy(o + wpos, s->tmp + P, first * sizeof(R));
        memcpy(o, s->tmp + P + first, (P - first) * sizeof(R));
        memcpy(w, w + P, P * sizeof(R));
    }
    s->avail += P;
}

cr_status FN(cr_ols, push)(NAME(cr_ols) *s, const R *u, size_t ldu, size_t n)
{
    if (s == NULL) return cr__fail(CR_EINVAL, "ols_push: NULL handle");
    if (n == 0) return CR_OK;
    if (u == NULL) return cr__fail(CR_EINVAL, "ols_push: NULL input");
    if (s->C > 1 && ldu < n) return cr__fail(CR_EINVAL, "ols_push: ldu=%zu < n=%zu", ldu, n);
    size_t room = s->cap - s->avail - s->fill;
    if (n > room)
        return cr__fail(CR_EINVAL, "ols_push: %zu samples exceed the room of %zu (pull first)", n, room);
    for (size_t c = 0; c < s->C; c++)
        if (NAME(nonfinite)(u + c * ldu, n) != 0)
            return cr__fail(CR_ENONFINITE, "ols_push: NaN or Inf in channel %zu", c);
    size_t P = s->P, done = 0;
    while (done < n) {
        size_t k = n - done < P - s->fill ? n - done : P - s->fill;
        for (size_t c = 0; c < s->C; c++)
            memcpy(s->win + c * s->ws + P + s->fill, u + c * ldu + done, k * sizeof(R));
        s->fill += k;
        done += k;
        if (s->fill == P) {
            NAME(ols_block)(s);
            s->fill = 0;
        }
    }
    return CR_OK;
}

cr_status FN(cr_ols, pull)(NAME(cr_ols) *s, R *y, size_t ldy, size_t nmax, size_t *got)
{
    if (got != NULL) *got = 0;
    if (s == NULL) return cr__fail(CR_EINVAL, "ols_pull: NULL handle");
    size_t n = nmax < s->avail ? nmax : s->avail;
    if (n == 0) return CR_OK;
    if (y == NULL) return cr__fail(CR_EINVAL, "ols_pull: NULL output");
    if (s->C > 1 && ldy < n) return cr__fail(CR_EINVAL, "ols_pull: ldy=%zu < n=%zu", ldy, n);
    size_t first = s->cap - s->rd < n ? s->cap - s->rd : n;
    for (size_t c = 0; c < s->C; c++) {
        const R *o = s->out + c * s->cap;
        memcpy(y + c * ldy, o + s->rd, first * sizeof(R));
        memcpy(y + c * ldy + first, o, (n - first) * sizeof(R));
    }
    s->rd += n;
    if (s->rd >= s->cap) s->rd -= s->cap;
    s->avail -= n;
    if (got != NULL) *got = n;
    return CR_OK;
}

/* ---------------------------------------------------------------------
 * Direct-form FIR streamer
 * --------------------------------------------------------------------- */
struct NAME(cr_fir) {
    size_t C, L;
    size_t hs, ds;           /* row strides of hr and dl */
    size_t w;                /* next write slot, 0 <= w < L */
    R *hr;                   /* (C, hs): reversed kernels, hr[j] = h[L-1-j] */
    R *dl;                   /* (C, ds): each sample stored at w and w + L, so the
                                last L samples are always dl[w+1 .. w+L], oldest first */
};

void FN(cr_fir, destroy)(NAME(cr_fir) *s)
{
    if (s == NULL) return;
    cr__fft_free(s->hr);
    cr__fft_free(s->dl);
    free(s);
}

cr_status FN(cr_fir, reset)(NAME(cr_fir) *s)
{
    if (s == NULL) return cr__fail(CR_EINVAL, "cr_fir_reset: NULL streamer");
    memset(s->dl, 0, s->C * s->ds * sizeof(R));
    s->w = 0;
    return CR_OK;
}

cr_status FN(cr_fir, create)(NAME(cr_fir) **sp, const R *h, size_t C, size_t L)
{
    size_t CL, th, td;
    if (sp == NULL) return cr__fail(CR_EINVAL, "fir_create: NULL handle");
    *sp = NULL;
    if (h == NULL) return cr__fail(CR_EINVAL, "fir_create: NULL kernel");
    if (C == 0 || L == 0) return cr__fail(CR_EINVAL, "fir_create: zero size (C=%zu, L=%zu)", C, L);
    if (L > CR_MAX_ELEMS || !cr__mul_ok(C, L, &CL) || CL > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "fir_create: sizes too large (C=%zu, L=%zu)", C, L);
    size_t hs = round_up(L, 16), ds = round_up(2 * L, 16);
    if (!cr__mul_ok(C, hs, &th) || !cr__mul_ok(C, ds, &td) || td > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "fir_create: sizes too large (C=%zu, L=%zu)", C, L);
    for (size_t c = 0; c < C; c++)
        if (NAME(nonfinite)(h + c * L, L) != 0)
            return cr__fail(CR_ENONFINITE, "fir_create: NaN or Inf in kernel %zu", c);
    NAME(cr_fir) *s = calloc(1, sizeof *s);
    if (s == NULL) return cr__fail(CR_ENOMEM, "fir_create: out of memory");
    s->C = C;
    s->L = L;
    s->hs = hs;
    s->ds = ds;
    s->hr = ALLOC_R(th);
    s->dl = ALLOC_R(td);
    if (s->hr == NULL || s->dl == NULL) {
        FN(cr_fir, destroy)(s);
        return cr__fail(CR_ENOMEM, "fir_create: out of memory");
    }
    for (size_t c = 0; c < C; c++)
        for (size_t j = 0; j < L; j++) s->hr[c * hs + j] = h[c * L + L - 1 - j];
    (void)FN(cr_fir, reset)(s);
    *sp = s;
    return CR_OK;
}

/* One channel, n samples; returns the next write slot. uc may equal yc. */
CR_CLONES static size_t NAME(fir_run)(const R *restrict hr, R *restrict dl, size_t L, size_t w,
                                      const R *uc, R *yc, size_t n)
{
    for (size_t t = 0; t < n; t++) {
        R x = uc[t];
        dl[w] = x;
        dl[w + L] = x;
        const R *win = dl + w + 1; /* based on dl: no restrict */
        R acc = 0;
#pragma omp simd reduction(+ : acc)
        for (size_t j = 0; j < L; j++) acc += hr[j] * win[j];
        yc[t] = acc;
        w = w + 1 == L ? 0 : w + 1;
    }
    return w;
}

cr_status FN(cr_fir, process)(NAME(cr_fir) *s, const R *u, size_t ldu, R *y, size_t ldy, size_t n)
{
    if (s == NULL) return cr__fail(CR_EINVAL, "fir_process: NULL handle");
    if (n == 0) return CR_OK;
    if (u == NULL || y == NULL) return cr__fail(CR_EINVAL, "fir_process: NULL buffer");
    size_t C = s->C, L = s->L;
    if (C > 1 && (ldu < n || ldy < n))
        return cr__fail(CR_EINVAL, "fir_process: leading dimension below n=%zu", n);
    if (u == y ? ldu != ldy
               : ranges_overlap(u, ((C - 1) * ldu + n) * sizeof(R), y, ((C - 1) * ldy + n) * sizeof(R)))
        return cr__fail(CR_EINVAL, "fir_process: y overlaps u (only y == u with ldy == ldu is allowed)");
    for (size_t c = 0; c < C; c++)
        if (NAME(nonfinite)(u + c * ldu, n) != 0)
            return cr__fail(CR_ENONFINITE, "fir_process: NaN or Inf in channel %zu", c);
    size_t w = s->w;
    for (size_t c = 0; c < C; c++)
        w = NAME(fir_run)(s->hr + c * s->hs, s->dl + c * s->ds, L, s->w, u + c * ldu, y + c * ldy, n);
    s->w = w;
    return CR_OK;
}
