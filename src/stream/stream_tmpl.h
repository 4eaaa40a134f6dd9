/* Template of the stream API for one precision; included by recurrence.c
 * with CR__TYPE (float or double), CR__SFX (f or d) and CR__IS_FLOAT. */

#define R CR__TYPE
#define CR__VL (CR__IS_FLOAT ? CR__VL_F : CR__VL_D)
#define CR__CAT2(a, b) a##b
#define CR__CAT(a, b) CR__CAT2(a, b)
#define ST CR__CAT(CR__CAT(cr_stream_, CR__SFX), _s)
#define FN(name) CR__CAT(CR__CAT(CR__CAT(cr_stream_, CR__SFX), _), name)
#define LOC(name) CR__CAT(CR__CAT(name, _), CR__SFX)

struct CR__CAT(cr_stream_, CR__SFX) {
    cr__rec_plan p;
    int heap;                 /* memory from malloc (destroy frees it) */
    void *mem;                /* the block holding everything (unaligned) */
    size_t bytes;             /* its size */
    R *lr, *li;               /* poles, hi part (S) */
    R *lor, *loi;             /* poles, lo part (S), NULL unless p.comp */
    R *rr, *ri;               /* w * residues (S) */
    R *d;                     /* feedthrough (C) */
    R *xr, *xi;               /* state (B, S) */
    size_t *slot;             /* (C, M): slot of model mode, SIZE_MAX if unused */
};
typedef struct CR__CAT(cr_stream_, CR__SFX) ST;

/* Layout of the memory block after the (aligned) header. Returns 0 on
 * overflow. If s != NULL, also assigns the pointers from base (aligned). */
static int LOC(lay_out)(const cr__rec_plan *p, ST *s, char *base, size_t *total)
{
    size_t t = round_up(sizeof(ST), CR__ALIGN);
    size_t off[10];
    size_t n[10] = { p->S, p->S, p->comp ? p->S : 0, p->comp ? p->S : 0, p->S, p->S,
                     p->C, p->B * p->S, p->B * p->S, 0 };
    for (int i = 0; i < 9; i++) {
        off[i] = t;
        if (!add_array(&t, n[i], sizeof(R))) return 0;
    }
    off[9] = t;
    if (!add_array(&t, p->C * p->M, sizeof(size_t))) return 0;
    if (t > SIZE_MAX - CR__ALIGN) return 0;
    *total = t + CR__ALIGN;   /* slack to align an arbitrary pointer */
    if (s) {
        s->lr = (R *)(base + off[0]);
        s->li = (R *)(base + off[1]);
        s->lor = p->comp ? (R *)(base + off[2]) : NULL;
        s->loi = p->comp ? (R *)(base + off[3]) : NULL;
        s->rr = (R *)(base + off[4]);
        s->ri = (R *)(base + off[5]);
        s->d = (R *)(base + off[6]);
        s->xr = (R *)(base + off[7]);
        s->xi = (R *)(base + off[8]);
        s->slot = (size_t *)(base + off[9]);
    }
    return 1;
}

cr_status FN(mem_size)(const cr_model *m, size_t B, unsigned flags, size_t *bytes)
{
    const char *fn = "cr_stream_mem_size";
    if (!bytes) return cr__fail(CR_EINVAL, "%s: NULL output pointer", fn);
    *bytes = 0;
    cr__rec_plan p;
    cr_status st = plan_layout(fn, m, B, flags, CR__IS_FLOAT, &p);
    if (st != CR_OK) return st;
    if (!LOC(lay_out)(&p, NULL, NULL, bytes))
        return cr__fail(CR_EOVERFLOW, "%s: stream size overflows", fn);
    return CR_OK;
}

/* Fill coefficients and the slot map from the model; state zero. */
static void LOC(fill)(ST *s, const cr_model *m)
{
    const cr__rec_plan *p = &s->p;
    memset(s->lr, 0, p->S * sizeof(R));
    memset(s->li, 0, p->S * sizeof(R));
    memset(s->rr, 0, p->S * sizeof(R));
    memset(s->ri, 0, p->S * sizeof(R));
    if (p->comp) {
        memset(s->lor, 0, p->S * sizeof(R));
        memset(s->loi, 0, p->S * sizeof(R));
    }
    memset(s->xr, 0, p->B * p->S * sizeof(R));
    memset(s->xi, 0, p->B * p->S * sizeof(R));
    for (size_t c = 0; c < p->C; c++) {
        s->d[c] = (R)m->d[c];
        size_t q = 0;
        for (size_t j = 0; j < p->M; j++) {
            size_t i = c * p->M + j;
            if (m->kind[i] == CR_MODE_UNUSED) {
                s->slot[i] = SIZE_MAX;
                continue;
            }
            size_t k = slot_index(p, c, q++);
            double w = m->kind[i] == CR_MODE_PAIR ? 2.0 : 1.0;
            s->slot[i] = k;
            s->lr[k] = (R)m->pole_re[i];
            s->li[k] = (R)m->pole_im[i];
            if (p->comp) {
                s->lor[k] = (R)(m->pole_re[i] - (double)s->lr[k]);
                s->loi[k] = (R)(m->pole_im[i] - (double)s->li[k]);
            }
            s->rr[k] = (R)(w * m->res_re[i]);
            s->ri[k] = (R)(w * m->res_im[i]);
        }
    }
}

cr_status FN(init)(ST **out, const cr_model *m, size_t B, unsigned flags, void *mem,
                   size_t bytes)
{
    const char *fn = "cr_stream_init";
    if (!out) return cr__fail(CR_EINVAL, "%s: NULL output pointer", fn);
    *out = NULL;
    if (!mem) return cr__fail(CR_EINVAL, "%s: NULL memory", fn);
    cr__rec_plan p;
    cr_status st = plan_layout(fn, m, B, flags, CR__IS_FLOAT, &p);
    if (st != CR_OK) return st;
    size_t need;
    if (!LOC(lay_out)(&p, NULL, NULL, &need))
        return cr__fail(CR_EOVERFLOW, "%s: stream size overflows", fn);
    if (bytes < need)
        return cr__fail(CR_EINVAL, "%s: %zu bytes given, %zu needed (see mem_size)", fn, bytes,
                        need);
    char *base = align_ptr(mem);
    ST *s = (ST *)base;
    memset(s, 0, sizeof *s);
    s->p = p;
    s->mem = mem;
    s->bytes = need;
    LOC(lay_out)(&p, s, base, &need);
    LOC(fill)(s, m);
    *out = s;
    return CR_OK;
}

cr_status FN(create)(ST **out, const cr_model *m, size_t B, unsigned flags)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_stream_create: NULL output pointer");
    *out = NULL;
    size_t bytes;
    cr_status st = FN(mem_size)(m, B, flags, &bytes);
    if (st != CR_OK) return st;
    void *mem = malloc(bytes);
    if (!mem) return cr__fail(CR_ENOMEM, "cr_stream_create: out of memory (%zu bytes)", bytes);
    st = FN(init)(out, m, B, flags, mem, bytes);
    if (st != CR_OK) {
        free(mem);
        return st;
    }
    (*out)->heap = 1;
    return CR_OK;
}

void FN(destroy)(ST *s)
{
    if (s && s->heap) free(s->mem);
}

cr_status FN(reset)(ST *s)
{
    if (!s) return cr__fail(CR_EINVAL, "cr_stream_reset: NULL stream");
    memset(s->xr, 0, s->p.B * s->p.S * sizeof(R));
    memset(s->xi, 0, s->p.B * s->p.S * sizeof(R));
    return CR_OK;
}

cr_status FN(copy)(const ST *s, ST **out)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_stream_copy: NULL output pointer");
    *out = NULL;
    if (!s) return cr__fail(CR_EINVAL, "cr_stream_copy: NULL stream");
    void *mem = malloc(s->bytes);
    if (!mem) return cr__fail(CR_ENOMEM, "cr_stream_copy: out of memory (%zu bytes)", s->bytes);
    /* Everything lives at fixed offsets from the aligned base. */
    char *base = align_ptr(mem);
    memcpy(base, (const void *)s, s->bytes - CR__ALIGN);
    ST *c = (ST *)base;
    size_t need;
    LOC(lay_out)(&c->p, c, base, &need);
    c->mem = mem;
    c->heap = 1;
    *out = c;
    return CR_OK;
}

cr_status FN(dims)(const ST *s, size_t *B, size_t *C, size_t *M)
{
    if (!s) return cr__fail(CR_EINVAL, "cr_stream_dims: NULL stream");
    if (B) *B = s->p.B;
    if (C) *C = s->p.C;
    if (M) *M = s->p.M;
    return CR_OK;
}

size_t FN(state_len)(const ST *s)
{
    return s ? s->p.B * s->p.C * s->p.M * 2 : 0;
}

cr_status FN(get_state)(const ST *s, R *buf, size_t n)
{
    if (!s || !buf) return cr__fail(CR_EINVAL, "cr_stream_get_state: NULL argument");
    if (n != FN(state_len)(s))
        return cr__fail(CR_ESHAPE, "cr_stream_get_state: buffer of %zu values, state has %zu", n,
                        FN(state_len)(s));
    const cr__rec_plan *p = &s->p;
    for (size_t b = 0; b < p->B; b++)
        for (size_t i = 0; i < p->C * p->M; i++) {
            size_t k = s->slot[i];
            R *o = buf + 2 * (b * p->C * p->M + i);
            o[0] = k == SIZE_MAX ? (R)0 : s->xr[b * p->S + k];
            o[1] = k == SIZE_MAX ? (R)0 : s->xi[b * p->S + k];
        }
    return CR_OK;
}

cr_status FN(set_state)(ST *s, const R *buf, size_t n)
{
    if (!s || !buf) return cr__fail(CR_EINVAL, "cr_stream_set_state: NULL argument");
    if (n != FN(state_len)(s))
        return cr__fail(CR_ESHAPE, "cr_stream_set_state: buffer of %zu values, state has %zu", n,
                        FN(state_len)(s));
    const cr__rec_plan *p = &s->p;
    const size_t CM = p->C * p->M;
    /* Validate everything before touching the state. */
    for (size_t b = 0; b < p->B; b++)
        for (size_t i = 0; i < CM; i++) {
            const R *v = buf + 2 * (b * CM + i);
            if (!isfinite(v[0]) || !isfinite(v[1]))
                return cr__fail(CR_ENONFINITE,
                                "cr_stream_set_state: stream %zu channel %zu mode %zu: not finite", b,
                                i / p->M, i % p->M);
            if (s->slot[i] == SIZE_MAX && (v[0] != 0 || v[1] != 0))
                return cr__fail(CR_EINVAL,
                                "cr_stream_set_state: stream %zu channel %zu mode %zu is unused "
                                "but its state is nonzero", b, i / p->M, i % p->M);
        }
    /* Padding slots hold u of the last step in a live stream; they never
     * reach the output (zero residues), so zero is as good as any value. */
    memset(s->xr, 0, p->B * p->S * sizeof(R));
    memset(s->xi, 0, p->B * p->S * sizeof(R));
    for (size_t b = 0; b < p->B; b++)
        for (size_t i = 0; i < CM; i++) {
            size_t k = s->slot[i];
            if (k == SIZE_MAX) continue;
            s->xr[b * p->S + k] = buf[2 * (b * CM + i)];
            s->xi[b * p->S + k] = buf[2 * (b * CM + i) + 1];
        }
    return CR_OK;
}

/* ---- hot kernels ------------------------------------------------------- */

/* One mode row of a channel block (channels-as-lanes): n lanes, each its own
 * channel with input ub[l] and output accumulator acc[l] (acc may be NULL:
 * state only). The output reads the state before the update. */
static inline void LOC(lanes)(size_t n, R *restrict xr, R *restrict xi,
                              const R *restrict lr, const R *restrict li,
                              const R *restrict lor, const R *restrict loi,
                              const R *restrict rr, const R *restrict ri,
                              const R *restrict ub, R *restrict acc)
{
    if (acc && lor) {
#pragma omp simd
        for (size_t l = 0; l < n; l++) {
            R a = xr[l], b = xi[l];
            acc[l] += rr[l] * a - ri[l] * b;
            R cr = lor[l] * a - loi[l] * b, ci = lor[l] * b + loi[l] * a;
            xr[l] = (lr[l] * a - li[l] * b) + (cr + ub[l]);
            xi[l] = (lr[l] * b + li[l] * a) + ci;
        }
    } else if (acc) {
#pragma omp simd
        for (size_t l = 0; l < n; l++) {
            R a = xr[l], b = xi[l];
            acc[l] += rr[l] * a - ri[l] * b;
            xr[l] = (lr[l] * a - li[l] * b) + ub[l];
            xi[l] = lr[l] * b + li[l] * a;
        }
    } else if (lor) {
#pragma omp simd
        for (size_t l = 0; l < n; l++) {
            R a = xr[l], b = xi[l];
            R cr = lor[l] * a - loi[l] * b, ci = lor[l] * b + loi[l] * a;
            xr[l] = (lr[l] * a - li[l] * b) + (cr + ub[l]);
            xi[l] = (lr[l] * b + li[l] * a) + ci;
        }
    } else {
#pragma omp simd
        for (size_t l = 0; l < n; l++) {
            R a = xr[l], b = xi[l];
            xr[l] = (lr[l] * a - li[l] * b) + ub[l];
            xi[l] = lr[l] * b + li[l] * a;
        }
    }
}

/* One time step of a whole channel block (channels-as-lanes), CB lanes
 * (a multiple of CR__VL), all J mode rows. Lanes are taken CR__VL at a time
 * so that the accumulators and inputs stay in registers across the rows.
 * Same per-lane operation order as lanes(), so results are identical. */
static inline void LOC(block_step)(size_t CB, size_t J, R *restrict xr, R *restrict xi,
                                   const R *restrict lr, const R *restrict li,
                                   const R *restrict lor, const R *restrict loi,
                                   const R *restrict rr, const R *restrict ri,
                                   const R *restrict ub, R *restrict at)
{
    for (size_t l0 = 0; l0 < CB; l0 += CR__VL) {
        R acc[CR__VL], uv[CR__VL];
        for (size_t i = 0; i < CR__VL; i++) {
            uv[i] = ub[l0 + i];
            acc[i] = at[l0 + i];
        }
        for (size_t j = 0; j < J; j++) {
            size_t o = j * CB + l0;
            if (lor) {
#pragma omp simd
                for (size_t i = 0; i < CR__VL; i++) {
                    R a = xr[o + i], b = xi[o + i];
                    acc[i] += rr[o + i] * a - ri[o + i] * b;
                    R cr = lor[o + i] * a - loi[o + i] * b, ci = lor[o + i] * b + loi[o + i] * a;
                    xr[o + i] = (lr[o + i] * a - li[o + i] * b) + (cr + uv[i]);
                    xi[o + i] = (lr[o + i] * b + li[o + i] * a) + ci;
                }
            } else {
#pragma omp simd
                for (size_t i = 0; i < CR__VL; i++) {
                    R a = xr[o + i], b = xi[o + i];
                    acc[i] += rr[o + i] * a - ri[o + i] * b;
                    xr[o + i] = (lr[o + i] * a - li[o + i] * b) + uv[i];
                    xi[o + i] = lr[o + i] * b + li[o + i] * a;
                }
            }
        }
        for (size_t i = 0; i < CR__VL; i++) at[l0 + i] = acc[i];
    }
}

/* One channel (modes-as-lanes): J modes, input uc; returns the sum of
 * w Re(r x) over the modes (0 when want == 0). Not inlined so that step and
 * block run the very same reduction order (bit-identical outputs). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static R LOC(chan)(size_t J, R *restrict xr, R *restrict xi, const R *restrict lr,
                   const R *restrict li, const R *restrict lor, const R *restrict loi,
                   const R *restrict rr, const R *restrict ri, R uc, int want)
{
    R acc = 0;
    if (want) {
#pragma omp simd reduction(+ : acc)
        for (size_t q = 0; q < J; q++)
            acc += rr[q] * xr[q] - ri[q] * xi[q];
    }
    if (lor) {
#pragma omp simd
        for (size_t q = 0; q < J; q++) {
            R a = xr[q], b = xi[q];
            R cr = lor[q] * a - loi[q] * b, ci = lor[q] * b + loi[q] * a;
            xr[q] = (lr[q] * a - li[q] * b) + (cr + uc);
            xi[q] = (lr[q] * b + li[q] * a) + ci;
        }
    } else {
#pragma omp simd
        for (size_t q = 0; q < J; q++) {
            R a = xr[q], b = xi[q];
            xr[q] = (lr[q] * a - li[q] * b) + uc;
            xi[q] = lr[q] * b + li[q] * a;
        }
    }
    return acc;
}

/* T samples of channel block `blk` (or channel, modes-as-lanes) of stream b.
 * u and y point at the stream's (C, T) rows with row stride ldt (T for
 * block, 1 for step with T = 1); y may be NULL (state only). */
static void LOC(run_unit)(ST *s, size_t b, size_t blk, const R *u, R *y, size_t T, size_t ldt)
{
    const cr__rec_plan *p = &s->p;
    const size_t J = p->J, S = p->S;
    R *xr = s->xr + b * S, *xi = s->xi + b * S;
    const int comp = p->comp;
    if (p->layout == CR__LAYOUT_LANES_MODE) {
        size_t c = blk, o = c * J;
        R dc = s->d[c];
        for (size_t t = 0; t < T; t++) {
            R uc = u[c * ldt + t];
            R acc = LOC(chan)(J, xr + o, xi + o, s->lr + o, s->li + o,
                              comp ? s->lor + o : NULL, comp ? s->loi + o : NULL,
                              s->rr + o, s->ri + o, uc, y != NULL);
            if (y) y[c * ldt + t] = dc * uc + acc;
        }
        return;
    }
    const size_t CB = p->CB, c0 = blk * CB;
    const size_t n = p->C - c0 < CB ? p->C - c0 : CB;
    const size_t rows = blk * J;
    R ut[CR__TILE * CR__CB_MAX], at[CR__TILE * CR__CB_MAX];
    if (T == 1 && y && n == CB) {
        /* One step of a full block: u and y rows are already contiguous. */
        const size_t o = rows * CB;
#pragma omp simd
        for (size_t l = 0; l < CB; l++) at[l] = s->d[c0 + l] * u[c0 + l];
        LOC(block_step)(CB, J, xr + o, xi + o, s->lr + o, s->li + o, comp ? s->lor + o : NULL,
                        comp ? s->loi + o : NULL, s->rr + o, s->ri + o, u + c0, at);
        memcpy(y + c0, at, CB * sizeof(R));
        return;
    }
    for (size_t t0 = 0; t0 < T; t0 += CR__TILE) {
        size_t tt = T - t0 < CR__TILE ? T - t0 : CR__TILE;
        /* Transpose the tile: time-major, lanes contiguous. */
        for (size_t l = 0; l < n; l++)
            for (size_t k = 0; k < tt; k++)
                ut[k * CB + l] = u[(c0 + l) * ldt + t0 + k];
        /* Lanes past the last channel run on zero input and coefficients. */
        for (size_t k = 0; k < tt; k++)
            for (size_t l = n; l < CB; l++) ut[k * CB + l] = 0;
        if (y)
            for (size_t k = 0; k < tt; k++)
                for (size_t l = 0; l < CB; l++)
                    at[k * CB + l] = s->d[c0 + (l < n ? l : 0)] * ut[k * CB + l];
        if (y) {
            const size_t o = rows * CB;
            for (size_t k = 0; k < tt; k++)
                LOC(block_step)(CB, J, xr + o, xi + o, s->lr + o, s->li + o,
                                comp ? s->lor + o : NULL, comp ? s->loi + o : NULL, s->rr + o,
                                s->ri + o, ut + k * CB, at + k * CB);
        } else for (size_t j = 0; j < J; j++) {
            size_t o = (rows + j) * CB;
            for (size_t k = 0; k < tt; k++)
                LOC(lanes)(n, xr + o, xi + o, s->lr + o, s->li + o, comp ? s->lor + o : NULL,
                           comp ? s->loi + o : NULL, s->rr + o, s->ri + o, ut + k * CB,
                           y ? at + k * CB : NULL);
        }
        if (y)
            for (size_t l = 0; l < n; l++)
                for (size_t k = 0; k < tt; k++) y[(c0 + l) * ldt + t0 + k] = at[k * CB + l];
    }
}

/* Returns the index of the first non-finite value of u[0..n), or n. */
static size_t LOC(first_nonfinite)(const R *restrict u, size_t n)
{
    R z = 0;
#pragma omp simd reduction(+ : z)
    for (size_t i = 0; i < n; i++) z += u[i] * (R)0;   /* NaN iff some u is NaN/Inf */
    if (z == 0) return n;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(u[i])) return i;
    return n;
}

/* Size and NaN/Inf checks of an input block u (B, C, T), done before the
 * state is touched. */
static cr_status LOC(check_input)(const char *fn, const cr__rec_plan *p, const R *u, size_t T)
{
    size_t CT, BCT;
    if (!cr__mul_ok(p->C, T, &CT) || !cr__mul_ok(CT, p->B, &BCT) || BCT > CR_MAX_ELEMS)
        return cr__fail(CR_EOVERFLOW, "%s: %zu x %zu x %zu samples is absurd", fn, p->B, p->C, T);
    if (!(p->flags & CR_STREAM_NO_CHECK)) {
        size_t i = LOC(first_nonfinite)(u, BCT);
        if (i < BCT)
            return cr__fail(CR_ENONFINITE,
                            "%s: input sample is NaN or Inf (stream %zu, channel %zu, t = %zu); "
                            "state left unchanged", fn, i / CT, i % CT / T, i % T);
    }
    return CR_OK;
}

/* All streams and units over T samples. u, y are (B, C, T). */
static cr_status LOC(run)(const char *fn, ST *s, const R *u, size_t T, R *y)
{
    const cr__rec_plan *p = &s->p;
    cr_status st = LOC(check_input)(fn, p, u, T);
    if (st != CR_OK) return st;
    const size_t CT = p->C * T; /* no overflow: checked above */
    const size_t units = p->nblk, jobs = p->B * units;
    size_t work;
    int par = !(p->flags & CR_STREAM_NO_THREADS) && jobs > 1 &&
              cr__mul_ok(p->B * (p->S + p->C), T, &work) && work >= CR__PAR_MIN;
    if (!par) {   /* no OpenMP runtime call at all on the small path */
        for (size_t b = 0; b < p->B; b++)
            for (size_t blk = 0; blk < units; blk++)
                LOC(run_unit)(s, b, blk, u + b * CT, y ? y + b * CT : NULL, T, T);
        return CR_OK;
    }
    long long nj = (long long)jobs;
    int nt = stream_threads(jobs);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (long long jb = 0; jb < nj; jb++) {
        size_t b = (size_t)jb / units, blk = (size_t)jb % units;
        LOC(run_unit)(s, b, blk, u + b * CT, y ? y + b * CT : NULL, T, T);
    }
    return CR_OK;
}

cr_status FN(step)(ST *s, const R *u, R *y)
{
    if (!s || !u || !y) return cr__fail(CR_EINVAL, "cr_stream_step: NULL argument");
    return LOC(run)("cr_stream_step", s, u, 1, y);
}

cr_status FN(block)(ST *s, const R *u, size_t T, R *y)
{
    if (!s || !u || !y) return cr__fail(CR_EINVAL, "cr_stream_block: NULL argument");
    if (T == 0) return cr__fail(CR_EINVAL, "cr_stream_block: T = 0");
    return LOC(run)("cr_stream_block", s, u, T, y);
}

/* Prefill by FFT: new state = lambda^T x0 + sum_j lambda^(T-1-j) u_j per mode,
 * the sum by one rfft per (stream, channel) and a Cauchy sum per mode. All
 * arithmetic in double. Validation is done by the caller. */
static cr_status LOC(prefill_fft)(ST *s, const R *u, size_t T)
{
    const cr__rec_plan *p = &s->p;
    size_t n = cr_fft_good_size(T);
    if (n < T) return cr__fail(CR_EOVERFLOW, "cr_stream_prefill: T = %zu too large for FFT", T);
    size_t half = n / 2;
    double *buf = cr__fft_alloc_d(n);
    fftw_complex *U = cr__fft_alloc_cd(half + 1);
    double *tw = malloc(2 * (half + 1) * sizeof(double));
    double *pl = malloc(6 * (p->J ? p->J : 1) * sizeof(double));
    cr_status st = CR_OK;
    if (!buf || !U || !tw || !pl) {
        st = cr__fail(CR_ENOMEM, "cr_stream_prefill: out of memory (FFT size %zu)", n);
        goto out;
    }
    double *twr = tw, *twi = tw + half + 1;
    for (size_t k = 0; k <= half; k++) {
        double a = 6.283185307179586476925286766559 * (double)k / (double)n;
        twr[k] = cos(a);
        twi[k] = sin(a);
    }
    double *plr = pl, *pli = pl + p->J, *psr = pl + 2 * p->J, *psi = pl + 3 * p->J;
    size_t *sl = (size_t *)(void *)(pl + 4 * p->J); /* J slot indices fit in 2 J doubles */
    for (size_t c = 0; c < p->C; c++) {
        /* The channel's used modes, in slot order; poles exact in double. */
        size_t nm = 0;
        for (size_t q = 0; q < p->J; q++) {
            size_t k = slot_index(p, c, q);
            if (s->lr[k] == 0 && s->li[k] == 0 && s->rr[k] == 0 && s->ri[k] == 0) continue;
            sl[nm] = k;
            plr[nm] = (double)s->lr[k] + (p->comp ? (double)s->lor[k] : 0.0);
            pli[nm] = (double)s->li[k] + (p->comp ? (double)s->loi[k] : 0.0);
            nm++;
        }
        for (size_t b = 0; b < p->B; b++) {
            const R *row = u + (b * p->C + c) * T;
            /* Front padding keeps sum_j lambda^(T-1-j) u_j unchanged. */
            for (size_t i = 0; i < n - T; i++) buf[i] = 0;
            for (size_t i = 0; i < T; i++) buf[n - T + i] = (double)row[i];
            st = cr__rfft_d(n, buf, U);
            if (st != CR_OK) goto out;
            cauchy_state(n, (const fftw_complex *)U, twr, twi, nm, plr, pli, psr, psi);
            R *xr = s->xr + b * p->S, *xi = s->xi + b * p->S;
            for (size_t q = 0; q < nm; q++) {
                size_t k = sl[q];
                double complex lt = cr__cpow(CMPLX(plr[q], pli[q]), T);
                double complex x = lt * CMPLX((double)xr[k], (double)xi[k]) + CMPLX(psr[q], psi[q]);
                xr[k] = (R)creal(x);
                xi[k] = (R)cimag(x);
            }
        }
    }
    /* Padding slots: as after a recurrence run, they hold the last input. */
    for (size_t b = 0; b < p->B; b++)
            for (size_t c = 0; c < p->C; c++)
                for (size_t q = 0; q < p->J; q++) {
                    size_t k = slot_index(p, c, q);
                    if (s->lr[k] == 0 && s->li[k] == 0 && s->rr[k] == 0 && s->ri[k] == 0) {
                        s->xr[b * p->S + k] = u[(b * p->C + c) * T + T - 1];
                        s->xi[b * p->S + k] = 0;
                    }
                }
out:
    cr__fft_free(buf);
    cr__fft_free(U);
    free(tw);
    free(pl);
    return st;
}

cr_status FN(prefill)(ST *s, const R *u, size_t T, R *y, cr_prefill_method how)
{
    const char *fn = "cr_stream_prefill";
    if (!s || !u) return cr__fail(CR_EINVAL, "%s: NULL argument", fn);
    if (T == 0) return cr__fail(CR_EINVAL, "%s: T = 0", fn);
    if (how != CR_PREFILL_AUTO && how != CR_PREFILL_RECURRENCE && how != CR_PREFILL_FFT)
        return cr__fail(CR_EINVAL, "%s: unknown method %d", fn, (int)how);
    int fft = !y && (how == CR_PREFILL_FFT || (how == CR_PREFILL_AUTO && prefill_use_fft(&s->p, T)));
    if (!fft) return LOC(run)(fn, s, u, T, y);
    const cr__rec_plan *p = &s->p;
    cr_status st = LOC(check_input)(fn, p, u, T);
    if (st != CR_OK) return st;
    return LOC(prefill_fft)(s, u, T);
}

#undef R
#undef CR__VL
#undef ST
#undef FN
#undef LOC
#undef CR__CAT
#undef CR__CAT2
