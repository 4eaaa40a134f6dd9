/* Hankel singular values and vectors (hankel.c).
 *
 * Two matrices of a kernel h (length L), both H[i,j] = h[i+j+1]:
 *   infinite horizon: zero-padded, i, j < L-1 (the FIR system's Hankel);
 *   window horizon:   i < p = ceil((L-1)/2), j < q = L - p, no padding.
 * Small matrices are formed and decomposed by dense LAPACK. Larger ones go
 * through Lanczos with thick restarts, fully reorthogonalised or, when the
 * caller's tolerance is loose (fits), partially (semi-orthogonal): on H
 * itself when it is square (H = H^T: one mat-vec per step), on the
 * augmented [0 H; H^T 0] (Golub-Kahan) when it is not; the mat-vecs use
 * the FFT Hankel operator of the spectral module, so no m x n matrix is
 * ever formed. Zero-padded decompositions up to HK_EXACT_MAX also get all
 * their values from dense LAPACK (they are the fit certificates). (A
 * two-sided randomized subspace iteration was measured against Lanczos and
 * dropped: at L = 2048 it took 5x longer and stalled on flat spectra, with
 * 2.5e-5 sigma_1 value errors.) */
#include "hankel/hankel.h"
#include "spectral/spectral.h"

#include <float.h>
#include <lapacke.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Up to this rank bound r = min(m, n) the dense SVD is about as cheap as
 * Lanczos for ~17 triplets (bench/bench_fit.c "bench=hsv" lines, one
 * thread: equal near r = 95, Lanczos 1.5x faster at r = 127 (with the
 * exact values) and 25x at 511). */
#define HK_DENSE_MAX 96
/* Lanczos reports this many values beyond the wanted ones (extra Ritz
 * values converge alongside and make the restarts cheaper). */
#define HK_OVERSAMPLE 10
/* Zero-padded (certificate) decompositions up to this rank bound get all
 * their values from dense LAPACK on top of the iterative vectors. */
#define HK_EXACT_MAX 256
#define HK_MAXIT 40
#define HK_MAXIT_FIT 12     /* sweeps when only a fit needs the vectors */
/* Partial reorthogonalisation once the residual tolerance is at least
 * this fraction of ||A||: a semi-orthogonal basis leaves residuals of
 * Ritz pairs a floor of ~1e-10 ||A|| (measured), harmless for fits that
 * want 1e-2 sigma_{N+1}, not for tight decompositions (1e-12 sigma_1),
 * which keep full reorthogonalisation at every step. */
#define HK_PRO_TOL 1e-6
/* rows per block of the in-place restart product (scratch 512 x keep) */
#define HK_RESTART_ROWS 512


static void hk_dims(size_t L, cr_horizon which, size_t *m, size_t *n)
{
    if (L < 2) { *m = *n = 0; return; }
    if (which == CR_HORIZON_INFINITE) { *m = *n = L - 1; return; }
    *m = L / 2;          /* ceil((L-1)/2) */
    *n = L - *m;
}

/* ||H||_F^2 = sum_s mult(s) h[s]^2, with mult(s) the number of (i, j) with
 * i + j + 1 = s. Long double because the tail bound subtracts from it. */
static double hk_fro2(const double *h, size_t L, size_t m, size_t n)
{
    long double acc = 0;
    for (size_t s = 1; s < L && s <= m + n - 1; s++) {
        size_t hi = (m - 1 < s - 1) ? m - 1 : s - 1;
        size_t lo = (s > n) ? s - n : 0;
        if (hi < lo) continue;
        acc += (long double)(hi - lo + 1) * h[s] * h[s];
    }
    return (double)acc;
}

void cr__hsvd_free(cr__hsvd *s)
{
    if (s == NULL) return;
    free(s->sigma);
    free(s->err);
    free(s->U);
    free(s->V);
    memset(s, 0, sizeof *s);
}

double cr__hsvd_value(const cr__hsvd *s, size_t i)
{
    if (i >= s->r) return 0.0;
    if (i < s->nsigma) return s->sigma[i];
    if (s->nsigma == 0) return sqrt(s->fro2);
    return s->sigma[s->nsigma - 1] + s->err[s->nsigma - 1];
}

double cr__hsvd_tail(const cr__hsvd *s, size_t N)
{
    if (N >= s->r) return 0.0;
    if (s->dense) {
        double t = 0;
        for (size_t i = s->nsigma; i-- > N;) t += s->sigma[i];
        return t;
    }
    size_t K = s->nconv;
    if (K < N) K = N;
    if (K > s->nsigma) K = s->nsigma;
    double t = 0;
    long double sq = 0;
    for (size_t i = 0; i < K; i++) {
        sq += (long double)s->sigma[i] * s->sigma[i];
        if (i >= N) t += s->sigma[i] + s->err[i];
    }
    /* Ritz values never exceed the true ones, so fro2 - sq bounds the
     * remaining energy from above. */
    double rest = (double)((long double)s->fro2 - sq);
    if (rest < 0) rest = 0;
    return t + sqrt((double)(s->r - K) * rest);
}

/* ---------------------------------------------------------------------- */
/* The operator: y = H x or H^T x for blocks of columns. */
typedef struct hk_op {
    size_t m, n;
    const double *h;
    size_t L;
    double *dense;          /* formed m x n column-major, or NULL */
    cr_hankel_op *fft;      /* spectral module's FFT operator, or NULL */
} hk_op;

static double *hk_form(const double *h, size_t L, size_t m, size_t n)
{
    size_t mn;
    if (!cr__mul_ok(m, n, &mn)) return NULL;
    double *H = malloc((mn ? mn : 1) * sizeof *H);
    if (H == NULL) return NULL;
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < m; i++) {
            size_t s = i + j + 1;
            H[i + j * m] = s < L ? h[s] : 0.0;
        }
    return H;
}

static cr_status hk_apply(const hk_op *op, int trans, size_t k,
                          const double *X, size_t ldx, double *Y, size_t ldy)
{
    if (op->dense != NULL) {
        size_t rows = trans ? op->n : op->m, inner = trans ? op->m : op->n;
        cblas_dgemm(CblasColMajor, trans ? CblasTrans : CblasNoTrans,
                    CblasNoTrans, (int)rows, (int)k, (int)inner, 1.0,
                    op->dense, (int)op->m, X, (int)ldx, 0.0, Y, (int)ldy);
        return CR_OK;
    }
    return trans ? cr_hankel_op_apply_t(op->fft, k, X, ldx, Y, ldy)
                 : cr_hankel_op_apply(op->fft, k, X, ldx, Y, ldy);
}

/* ---------------------------------------------------------------------- */
/* Dense path: form H, all singular values by LAPACK. Square Hankel
 * matrices are symmetric: an eigen-decomposition (dsyevd) gives sigma =
 * |lambda|, u = z, v = sign(lambda) z, and is cheaper than dgesdd. */
typedef struct hk_pair { double a; size_t i; } hk_pair;
static int hk_cmp_desc(const void *x, const void *y)
{
    double a = ((const hk_pair *)x)->a, b = ((const hk_pair *)y)->a;
    return (a < b) - (a > b);
}

static int hk_cmp_dbl_desc(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a < b) - (a > b);
}

static cr_status hk_dense(const double *h, size_t L, size_t m, size_t n,
                          size_t k, int vectors, cr__hsvd *out)
{
    size_t r = out->r;
    cr_status st = CR_OK;
    double *H = hk_form(h, L, m, n);
    double *w = malloc(r * sizeof *w);
    hk_pair *ord = malloc(r * sizeof *ord);
    double *Us = NULL, *VT = NULL;
    out->sigma = calloc(r, sizeof *out->sigma);
    out->err = calloc(r, sizeof *out->err);
    if (vectors && k > 0) {
        out->U = malloc(m * k * sizeof *out->U);
        out->V = malloc(n * k * sizeof *out->V);
    }
    if (H == NULL || w == NULL || ord == NULL || out->sigma == NULL ||
        out->err == NULL || (vectors && k > 0 && (out->U == NULL || out->V == NULL))) {
        st = cr__fail(CR_ENOMEM, "hankel: out of memory for a %zu x %zu SVD", m, n);
        goto done;
    }
    if (m == n) {
        lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, vectors ? 'V' : 'N',
                                         'U', (lapack_int)n, H, (lapack_int)n, w);
        if (info != 0) {
            st = cr__fail(CR_ELAPACK, "hankel: dsyevd failed (info %d)", (int)info);
            goto done;
        }
        for (size_t i = 0; i < r; i++) { ord[i].a = fabs(w[i]); ord[i].i = i; }
        qsort(ord, r, sizeof *ord, hk_cmp_desc);
        for (size_t i = 0; i < r; i++) out->sigma[i] = ord[i].a;
        if (vectors)
            for (size_t c = 0; c < k; c++) {
                const double *z = H + ord[c].i * n;
                double sg = w[ord[c].i] < 0 ? -1.0 : 1.0;
                for (size_t i = 0; i < n; i++) {
                    out->U[i + c * m] = z[i];
                    out->V[i + c * n] = sg * z[i];
                }
            }
    } else {
        if (vectors) {
            Us = malloc(m * r * sizeof *Us);
            VT = malloc(r * n * sizeof *VT);
            if (Us == NULL || VT == NULL) {
                st = cr__fail(CR_ENOMEM, "hankel: out of memory for a %zu x %zu SVD", m, n);
                goto done;
            }
        }
        double dummy = 0;
        lapack_int info = cr__svd(vectors ? 'S' : 'N', (lapack_int)m, (lapack_int)n, H, (lapack_int)m,
                                  out->sigma, vectors ? Us : &dummy, (lapack_int)m,
                                  vectors ? VT : &dummy, (lapack_int)r);
        if (info != 0) {
            st = cr__fail(cr__lapack_status(info), "hankel: SVD failed (info %d)", (int)info);
            goto done;
        }
        if (vectors)
            for (size_t c = 0; c < k; c++) {
                memcpy(out->U + c * m, Us + c * m, m * sizeof *Us);
                for (size_t i = 0; i < n; i++) out->V[i + c * n] = VT[c + i * r];
            }
    }
    out->nsigma = r;
    out->nconv = r;
    out->k = k;
    out->dense = 1;
done:
    free(H); free(w); free(ord); free(Us); free(VT);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Deterministic start vectors (splitmix64, Box-Muller). */
static inline uint64_t hk_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* x[0..n-1] standard normal, by Box-Muller: both values of each pair
 * (the logarithm and the sine and cosine cost most of a start vector) */
static void hk_gauss(uint64_t *seed, double *x, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = ((double)(hk_next(seed) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double u2 = (double)(hk_next(seed) >> 11) * (1.0 / 9007199254740992.0);
        double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        x[i] = r * cos(a);
        if (i + 1 < n) x[i + 1] = r * sin(a);
    }
}

/* ---------------------------------------------------------------------- */
/* Square case (m == n: H = H^T): symmetric Lanczos, one mat-vec per step
 * instead of the two of a two-sided method, converging at both ends of
 * the spectrum at once (singular values are the |eigenvalues|; u = z,
 * v = sign(lambda) z). Full reorthogonalisation (classical Gram-Schmidt,
 * repeated when it cancels, "twice is enough"), kept in Arnoldi form: the
 * reorthogonalisation coefficients are the projected matrix T = Q^T H Q,
 * so a thick restart (keep the best Ritz vectors, continue from the
 * residual direction) needs no special bookkeeping. When the residual
 * tolerance is at least HK_PRO_TOL ||A||, the full pass runs only when
 * the estimated loss of orthogonality (hk_omega) exceeds sqrt(eps), and
 * every step is kept orthogonal to the kept Ritz vectors that converged
 * to rounding level: a quarter of the Gram-Schmidt memory traffic at
 * L = 65536 (the same steps, the same values to 1e-14). Residual of a Ritz
 * pair (theta, Q s): |beta| |s_last|, an absolute bound on the distance
 * from theta to an eigenvalue; Ritz values never exceed the true ones in
 * magnitude (Cauchy interlacing on each sign). */

/* 2-norm as sqrt(dot): OpenBLAS's scaled dnrm2 is several times slower
 * and took a visible share of the Lanczos time; the scaled routine is
 * only needed near over/underflow. */
static double hk_nrm2(size_t n, const double *x)
{
    double s = cblas_ddot((int)n, x, 1, x, 1);
    return s > 1e-280 && s < 1e280 ? sqrt(s) : cblas_dnrm2((int)n, x, 1);
}

/* w -= Q c with c = Q^T w, against the columns from..j-1 of Q, by
 * classical Gram-Schmidt repeated while a pass still shrinks the norm
 * below 1/sqrt(2) of its value (DGKS, "twice is enough"). full = 0: only
 * against the columns lo..j-1 (the Lanczos recurrence: w = A q has its
 * large components there). full = 1: first that local pass, then against
 * all j columns: after the local pass a full one removes only
 * rounding-level components, so one full pass is usually enough, half
 * the memory traffic of two. Adds the coefficients to c (zeroed, or
 * holding earlier coefficients). Returns ||w||. */
static void hk_cgs_pass(const double *Q, size_t n, size_t lo, size_t j, double *w, double *c,
                        double *tmp)
{
    size_t nc = j - lo;
    const double *Ql = Q + lo * n;
    cblas_dgemv(CblasColMajor, CblasTrans, (int)n, (int)nc, 1.0, Ql, (int)n, w, 1, 0.0, tmp, 1);
    cblas_dgemv(CblasColMajor, CblasNoTrans, (int)n, (int)nc, -1.0, Ql, (int)n, tmp, 1, 1.0, w, 1);
    for (size_t i = 0; i < nc; i++) c[lo + i] += tmp[i];
}

static double hk_cgs(const double *Q, size_t n, size_t j, size_t lo, int full, double *w,
                     double *c, double *tmp)
{
    if (j == 0) return hk_nrm2(n, w);
    if (lo >= j) lo = 0;
    if (full && lo > 0) hk_cgs_pass(Q, n, lo, j, w, c, tmp);
    size_t from = full ? 0 : lo;
    double nrm = hk_nrm2(n, w);
    for (int pass = 0; pass < 3; pass++) {
        hk_cgs_pass(Q, n, from, j, w, c, tmp);
        double prev = nrm;
        nrm = hk_nrm2(n, w);
        if (nrm > 0.7071 * prev) break;
    }
    return nrm;
}

/* Partial reorthogonalisation (Simon 1984; Larsen's PROPACK): estimates
 * om[k + i ldt] of q_k^T q_i for the basis built so far, from the
 * Arnoldi relation A q_k = sum_{i<=k} T[i,k] q_i + (lower entry) that
 * holds to rounding whatever the orthogonality. Writing q_k^T A q_j both
 * ways gives, for the new vector q_{j+1} = w / beta,
 *   beta om[k, j+1] = sum_{i<=k} T[i,k] om[i,j] + t_k om[l_k, j]
 *                     - sum_{i<=j} T[i,j] om[k,i]  +- eps1 ||A||,
 * where the lower entry of column k is t_k = beta_k at l_k = k + 1 for a
 * Lanczos vector and t_k = T[k,p] at l_k = p for a Ritz vector kept by
 * the last thick restart (kept vectors k < p couple only to q_p), and the
 * rounding term is added with the sign that increases the magnitude.
 * Estimates for k in lo..j (the local pass) are eps1. Writes the
 * estimates for k < lo into om column j+1 and returns their largest
 * magnitude. A full pass is needed once it exceeds sqrt(eps): with every
 * |q_k^T q_i| <= sqrt(eps) (semi-orthogonality) the Ritz values of T are
 * those of an exactly orthonormal basis of the same space to O(eps ||A||)
 * (Simon 1984), which is all full reorthogonalisation buys. */
static double hk_omega(double *om, const double *T, const double *bet, size_t ldt, size_t j,
                       size_t sel, size_t lo, size_t p, double beta, double eps1an)
{
    double wmax = 0.0;
    const double *Tj = T + j * ldt, *omj = om + j * ldt;
    for (size_t k = sel; k < lo; k++) {
        const double *Tk = T + k * ldt, *omk = om + k * ldt;
        double s = 0.0;
        for (size_t i = 0; i <= k; i++) s += Tk[i] * omj[i];
        s += k < p ? T[k + p * ldt] * omj[p] : bet[k] * omj[k + 1];
        for (size_t i = 0; i <= j; i++) s -= Tj[i] * omk[i];
        double v = (s + copysign(eps1an, s)) / beta;
        om[k + (j + 1) * ldt] = om[(j + 1) + k * ldt] = v;
        if (fabs(v) > wmax) wmax = fabs(v);
    }
    return wmax;
}

/* the estimates of a vector made orthogonal to q_0..q_j by full passes */
static void hk_omega_reset(double *om, size_t ldt, size_t j, double eps1)
{
    for (size_t k = 0; k <= j; k++) om[k + (j + 1) * ldt] = om[(j + 1) + k * ldt] = eps1;
    om[(j + 1) * (ldt + 1)] = 1.0;
}

/* Eigen-decomposition of the leading J x J block of T (upper triangle,
 * leading dimension ldt) into theta/S (S is J x J), order by |theta|
 * descending in ord. */
static cr_status hk_pair_solve(const double *T, size_t ldt, size_t J, double *S, double *theta,
                               hk_pair *ord, int aug)
{
    for (size_t c = 0; c < J; c++)
        for (size_t i = 0; i <= c; i++) S[i + c * J] = T[i + c * ldt];
    lapack_int info = LAPACKE_dsyev(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)J, S, (lapack_int)J, theta);
    if (info != 0) return cr__fail(CR_ELAPACK, "hankel: dsyev failed (info %d)", (int)info);
    /* augmented: sigma = the positive eigenvalues; the negative mirror
     * images sort last */
    for (size_t i = 0; i < J; i++) { ord[i].a = aug ? theta[i] : fabs(theta[i]); ord[i].i = i; }
    qsort(ord, J, sizeof *ord, hk_cmp_desc);
    return CR_OK;
}

/* w = A x for the symmetric A = H (square) or [0 H; H^T 0] (aug). */
static cr_status hk_sym_apply(const hk_op *op, int aug, const double *x, double *w, double *work)
{
    size_t m = op->m;
    if (!aug) {
        if (op->fft) { cr__hankel_op_apply_raw(op->fft, 0, 1, x, m, w, m, work); return CR_OK; }
        return hk_apply(op, 0, 1, x, m, w, m);
    }
    if (op->fft) {
        cr__hankel_op_apply_raw(op->fft, 0, 1, x + m, op->n, w, m, work);
        cr__hankel_op_apply_raw(op->fft, 1, 1, x, m, w + m, op->n, work);
        return CR_OK;
    }
    cr_status st = hk_apply(op, 0, 1, x + m, op->n, w, m);
    return st != CR_OK ? st : hk_apply(op, 1, 1, x, m, w + m, op->n);
}

/* Converged when the leading `need` Ritz pairs have residuals <= thr
 * (vectors good enough for the caller) and their values are accurate to
 * vtol: a Ritz value is within r^2 / gap of an eigenvalue when the gap to
 * the rest of the spectrum is gap (Kato-Temple; the gap is estimated by
 * the other Ritz values), and always within r. Values are the
 * certificates (sigma_{N+1}), so they are held to the strict tolerance
 * even when the caller accepts rough vectors. */
static int hk_lz_done(const double *S, const double *theta, const hk_pair *ord, size_t j,
                      size_t need, double beta, double dropped, double thr, double vtol)
{
    for (size_t c = 0; c < need; c++) {
        double r = fabs(beta * S[(j - 1) + ord[c].i * j]) + dropped;
        if (r > thr) return 0;
        if (r <= vtol) continue;
        double th = theta[ord[c].i], gap = INFINITY;
        for (size_t i = 0; i < j; i++)
            if (i != ord[c].i) gap = fmin(gap, fabs(theta[i] - th));
        if (!(r * r <= vtol * gap)) return 0;
    }
    return 1;
}

static cr_status hk_lanczos(const hk_op *op, size_t k, size_t need, int vectors, double rtol,
                            double ttol, double vrel, cr__hsvd *out)
{
    /* Rectangular H (m != n): the same on the symmetric augmented matrix
     * [0 H; H^T 0] (eigenvalues +-sigma), started from [u; 0]: that is
     * Golub-Kahan bidiagonalisation (one H and one H^T product per two
     * steps), without squaring the values as H H^T would. */
    int aug = op->m != op->n;
    size_t m = op->m, n = aug ? op->m + op->n : op->n;
    size_t b = k + HK_OVERSAMPLE;            /* values reported */
    if (b > op->m || b > op->n) b = op->m < op->n ? op->m : op->n;
    size_t J = (aug ? 2 : 1) * (2 * b + 16); /* basis size before a restart */
    if (J > n) J = n;
    size_t ldt = J + 1;
    cr_status st = CR_OK;
    size_t nq;
    double *Q = NULL, *T = NULL, *S = NULL, *theta = NULL, *tmp = NULL, *work = NULL;
    double *om = NULL, *bet = NULL, *omw = NULL, *Y = NULL;
    hk_pair *ord = NULL;
    if (!cr__mul_ok(n, J + 1, &nq))
        return cr__fail(CR_EOVERFLOW, "hankel: Lanczos basis %zu x %zu too large", n, J + 1);
    Q = malloc(nq * sizeof *Q);
    T = calloc(ldt * ldt, sizeof *T);
    S = malloc(J * J * sizeof *S);
    theta = malloc(J * sizeof *theta);
    tmp = malloc(2 * (J + 1) * sizeof *tmp);
    ord = malloc(J * sizeof *ord);
    om = malloc(ldt * ldt * sizeof *om);
    bet = malloc(ldt * sizeof *bet);
    omw = malloc(J * J * sizeof *omw);
    work = op->fft ? cr__fft_alloc_d(cr__hankel_op_work(op->fft)) : NULL;
    if (!Q || !T || !S || !theta || !tmp || !ord || !om || !bet || !omw || (op->fft && !work)) {
        st = cr__fail(CR_ENOMEM, "hankel: out of memory (Lanczos, n = %zu, basis %zu)", n, J + 1);
        goto done;
    }
    uint64_t seed = 0x5eed0000ULL ^ (uint64_t)n * 0x9e37ULL;
    hk_gauss(&seed, Q, aug ? m : n);
    if (aug) memset(Q + m, 0, (n - m) * sizeof *Q);
    double nr = cblas_dnrm2((int)n, Q, 1);
    cblas_dscal((int)n, 1.0 / nr, Q, 1);
    om[0] = 1.0;
    /* rounding level of an inner product of two orthogonal unit vectors,
     * and the semi-orthogonality bound that triggers a full pass */
    const double eps1 = 0.5 * sqrt((double)n) * DBL_EPSILON, omega_max = sqrt(DBL_EPSILON);
    int reorth_next = 0;       /* a full pass for the next vector too */
    int pro = -1, pro_used = 0; /* partial reorthogonalisation: undecided, off, on */
    size_t nsel = 0;           /* leading kept Ritz vectors converged to rounding level */

    size_t p = 0;              /* columns kept by the last restart */
    size_t j = 0;              /* columns of Q with their T column done */
    double beta = 0, anorm = 0, dropped = 0;
    size_t total = 0;          /* mat-vecs, for the iteration cap */
    size_t maxmv = 20 * n > 50 * J ? 50 * J : 20 * n;
    if (maxmv < n) maxmv = n;
    int finished = 0;
    double thr = 0;
    while (!finished) {
        /* expand the basis up to J columns */
        while (j < J) {
            double *w = Q + (j + 1) * n, *c = T + j * ldt;
            if ((st = hk_sym_apply(op, aug, Q + j * n, w, work)) != CR_OK) goto done;
            total++;
            double hn = hk_nrm2(n, w);
            if (hn > anorm) anorm = hn;
            memset(c, 0, (j + 1) * sizeof *c);
            /* the recurrence couples q_j to q_{j-1}, and after a restart to
             * every kept Ritz vector; a full pass only when the estimated
             * loss of orthogonality asks for it (for this vector and the
             * next: the three-term recurrence carries it over) */
            size_t lo = j > p ? j - 1 : 0;
            int full = lo == 0 || pro <= 0;
            beta = hk_cgs(Q, n, j + 1, lo, full, w, c, tmp);
            size_t sel = nsel < lo ? nsel : lo;
            if (!full && sel > 0) {
                memset(tmp + J + 1, 0, (J + 1) * sizeof *tmp);
                hk_cgs_pass(Q, n, 0, sel, w, tmp + J + 1, tmp);
                beta = hk_nrm2(n, w);
                for (size_t i = 0; i < sel; i++) om[i + (j + 1) * ldt] = om[(j + 1) + i * ldt] = eps1;
            }
            if (!full && (reorth_next || (beta > 0 && hk_omega(om, T, bet, ldt, j, sel, lo, p, beta,
                                                                eps1 * anorm) > omega_max))) {
                /* the coefficients of this pass are rounding errors of
                 * the basis, not entries of T: they are dropped (keeping
                 * them would break the Arnoldi relation of T's columns
                 * by O(sqrt(eps)) and the estimates with it) */
                memset(tmp + J + 1, 0, (J + 1) * sizeof *tmp);
                beta = hk_cgs(Q, n, j + 1, 0, 1, w, tmp + J + 1, tmp);
                reorth_next = !reorth_next;
                full = 1;
            } else {
                reorth_next = 0;
            }
            if (full) hk_omega_reset(om, ldt, j, eps1);
            for (size_t i = lo; i <= j; i++) om[i + (j + 1) * ldt] = om[(j + 1) + i * ldt] = eps1;
            om[(j + 1) * (ldt + 1)] = 1.0;
            bet[j] = beta;
            j++;
            if (j == n) { dropped = fmax(dropped, beta); beta = 0; break; }
            if (beta <= 1e-13 * anorm) {
                /* invariant subspace: continue from a random direction
                 * orthogonal to it; the dropped coupling joins the error */
                dropped = fmax(dropped, beta);
                hk_gauss(&seed, w, n);
                memset(tmp + J + 1, 0, (J + 1) * sizeof *tmp);
                double tn = hk_cgs(Q, n, j, 0, 1, w, tmp + J + 1, tmp); /* coefficients discarded */
                if (!(tn > 0)) { beta = 0; break; }
                cblas_dscal((int)n, 1.0 / tn, w, 1);
                beta = 0;
                bet[j - 1] = 0.0;
                hk_omega_reset(om, ldt, j - 1, eps1);
            } else {
                cblas_dscal((int)n, 1.0 / beta, w, 1);
            }
            if (j >= (aug ? 2 : 1) * b + 4 && ((j - p) % 4 == 0 || j == J)) {
                if ((st = hk_pair_solve(T, ldt, j, S, theta, ord, aug)) != CR_OK) goto done;
                thr = fmax(rtol * fabs(ord[0].a), ttol * fabs(ord[need - 1].a));
                if (pro != 0) pro = thr >= HK_PRO_TOL * anorm;
                pro_used |= pro > 0;
                if (hk_lz_done(S, theta, ord, j, need, beta, dropped, thr,
                               fmax(rtol * fabs(ord[0].a), vrel * fabs(ord[need - 1].a))) ||
                    total >= maxmv) {
                    finished = 1;
                    break;
                }
            }
        }
        if (finished) break;
        if ((st = hk_pair_solve(T, ldt, j, S, theta, ord, aug)) != CR_OK) goto done;
        thr = fmax(rtol * fabs(ord[0].a), ttol * fabs(ord[need - 1].a));
        if (j == n || j < J || total >= maxmv) break;   /* whole space, exhausted, or capped */
        /* thick restart: keep the leading Ritz vectors, continue from the
         * residual direction q_J (already orthonormal to them) */
        size_t keep = b + (J - b) / 2;
        if (keep >= J) keep = J - 1;
        if (Y == NULL && (Y = malloc(HK_RESTART_ROWS * keep * sizeof *Y)) == NULL) {
            st = cr__fail(CR_ENOMEM, "hankel: out of memory (Lanczos restart)");
            goto done;
        }
        double *Sk = S;        /* the kept Ritz vectors of T, in place */
        for (size_t c2 = 0; c2 < keep; c2++) memcpy(omw + c2 * J, S + ord[c2].i * J, J * sizeof *S);
        memcpy(Sk, omw, J * keep * sizeof *S);
        /* Q[:, :keep] = Q[:, :J] Sk in place, a block of rows at a time
         * (the rows are independent): a cache-sized scratch block instead
         * of an n x keep copy of the basis */
        for (size_t r0 = 0; r0 < n; r0 += HK_RESTART_ROWS) {
            size_t nr = n - r0 < HK_RESTART_ROWS ? n - r0 : HK_RESTART_ROWS;
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)keep, (int)J, 1.0,
                        Q + r0, (int)n, Sk, (int)J, 0.0, Y, (int)nr);
            for (size_t c2 = 0; c2 < keep; c2++)
                memcpy(Q + r0 + c2 * n, Y + c2 * nr, nr * sizeof *Q);
        }
        memmove(Q + keep * n, Q + J * n, n * sizeof *Q);
        /* the estimates follow the basis: Y^T Y = Sk^T om Sk, Y^T q_J =
         * Sk^T om[:, J] */
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)J, (int)keep, (int)J, 1.0, om,
                    (int)ldt, Sk, (int)J, 0.0, omw, (int)J);
        double *omJ = tmp;
        cblas_dgemv(CblasColMajor, CblasTrans, (int)J, (int)keep, 1.0, Sk, (int)J, om + J * ldt, 1,
                    0.0, omJ, 1);
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)keep, (int)keep, (int)J, 1.0, Sk,
                    (int)J, omw, (int)J, 0.0, om, (int)ldt);
        for (size_t c2 = 0; c2 < keep; c2++) {
            om[c2 + keep * ldt] = om[keep + c2 * ldt] = omJ[c2];
            om[c2 * (ldt + 1)] = 1.0;
        }
        om[keep * (ldt + 1)] = 1.0;
        /* the continuation vector made orthogonal to the kept ones again
         * (coefficients dropped), and the kept Ritz vectors converged to
         * rounding level counted: Lanczos vectors lose orthogonality
         * towards those first (Paige), so every later step is kept
         * orthogonal to them (selective orthogonalisation, Parlett and
         * Scott 1979) */
        if (pro > 0) {
            double *qp = Q + keep * n;
            memset(tmp + J + 1, 0, (J + 1) * sizeof *tmp);
            double qn = hk_cgs(Q, n, keep, 0, 1, qp, tmp + J + 1, tmp);
            if (qn > 0) cblas_dscal((int)n, 1.0 / qn, qp, 1);
            for (size_t c2 = 0; c2 < keep; c2++) om[c2 + keep * ldt] = om[keep + c2 * ldt] = eps1;
            nsel = 0;
            while (nsel < keep && fabs(beta * Sk[(J - 1) + nsel * J]) <= omega_max * anorm) nsel++;
        }
        memset(T, 0, ldt * ldt * sizeof *T);
        for (size_t c2 = 0; c2 < keep; c2++) T[c2 + c2 * ldt] = theta[ord[c2].i];
        p = keep;
        j = keep;
    }

    /* j columns: Ritz values/vectors of T_j (S, theta, ord are current) */
    size_t nv = b < j ? b : j;
    if (aug) {      /* only positive Ritz values are singular values */
        size_t npos = 0;
        while (npos < nv && ord[npos].a > 0) npos++;
        nv = npos > 0 ? npos : 1;
    }
    if (k > nv) k = nv;
    out->sigma = malloc(nv * sizeof *out->sigma);
    out->err = malloc(nv * sizeof *out->err);
    if (!out->sigma || !out->err) { st = cr__fail(CR_ENOMEM, "hankel: out of memory"); goto done; }
    for (size_t c2 = 0; c2 < nv; c2++) {
        out->sigma[c2] = fabs(ord[c2].a);
        out->err[c2] = fabs(beta * S[(j - 1) + ord[c2].i * j]) + dropped;
    }
    out->nsigma = nv;
    out->nconv = 0;
    while (out->nconv < nv && out->err[out->nconv] <= thr) out->nconv++;
    out->k = k;
    if (vectors && k > 0) {
        double *Sk = malloc(j * k * sizeof *Sk);
        double *Y = malloc(n * k * sizeof *Y);
        out->U = malloc(m * k * sizeof *out->U);
        out->V = malloc((n - (aug ? m : 0)) * k * sizeof *out->V);
        if (!Sk || !Y || !out->U || !out->V) {
            free(Sk);
            free(Y);
            st = cr__fail(CR_ENOMEM, "hankel: out of memory");
            goto done;
        }
        for (size_t c2 = 0; c2 < k; c2++) memcpy(Sk + c2 * j, S + ord[c2].i * j, j * sizeof *S);
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)j, 1.0, Q,
                    (int)n, Sk, (int)j, 0.0, Y, (int)n);
        free(Sk);
        for (size_t c2 = 0; c2 < k; c2++) {
            const double *y = Y + c2 * n;
            if (aug) {   /* y = [u; v] / sqrt(2): renormalise each half */
                size_t nn = n - m;
                double nu = cblas_dnrm2((int)m, y, 1), nw = cblas_dnrm2((int)nn, y + m, 1);
                nu = nu > 0 ? 1.0 / nu : 0.0;
                nw = nw > 0 ? 1.0 / nw : 0.0;
                for (size_t i = 0; i < m; i++) out->U[i + c2 * m] = nu * y[i];
                for (size_t i = 0; i < nn; i++) out->V[i + c2 * nn] = nw * y[m + i];
            } else {   /* unit norm (a semi-orthogonal basis gives 1 + O(sqrt(eps))) */
                double ny = pro_used ? hk_nrm2(n, y) : 1.0;
                ny = ny > 0 ? 1.0 / ny : 0.0;
                double sg = theta[ord[c2].i] < 0 ? -ny : ny;
                for (size_t i = 0; i < n; i++) {
                    out->U[i + c2 * n] = ny * y[i];
                    out->V[i + c2 * n] = sg * y[i];
                }
            }
        }
        free(Y);
    }
done:
    free(Q); free(T); free(S); free(theta); free(tmp); free(ord);
    free(om); free(bet); free(omw); free(Y);
    cr__fft_free(work);
    return st;
}

/* All singular values by dense LAPACK (no vectors) in place of the
 * iterative ones: the zero-padded decomposition's values are the fit
 * record's certificates (sigma_{N+1}, 2 sum_{i>N} sigma_i), and for small
 * matrices knowing every one exactly costs little (values only are ~2x
 * cheaper than with vectors; r = 255: 1.7 ms). The vectors stay the
 * iterative ones. */
static cr_status hk_exact_values(const double *h, size_t L, size_t m, size_t n, cr__hsvd *out)
{
    size_t r = out->r;
    cr_status st = CR_OK;
    double *H = hk_form(h, L, m, n);
    double *w = malloc(r * sizeof *w);
    double *err = calloc(r, sizeof *err);
    if (H == NULL || w == NULL || err == NULL) {
        st = cr__fail(CR_ENOMEM, "hankel: out of memory for a %zu x %zu SVD", m, n);
        goto done;
    }
    lapack_int info;
    double dummy = 0;
    if (m == n)
        info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'U', (lapack_int)n, H, (lapack_int)n, w);
    else
        info = cr__svd('N', (lapack_int)m, (lapack_int)n, H, (lapack_int)m, w, &dummy, 1, &dummy, 1);
    if (info != 0) {
        st = cr__fail(cr__lapack_status(info), "hankel: %s failed (info %d)", m == n ? "dsyevd" : "SVD",
                      (int)info);
        goto done;
    }
    if (m == n) {
        for (size_t i = 0; i < r; i++) w[i] = fabs(w[i]);
        qsort(w, r, sizeof *w, hk_cmp_dbl_desc);
    }
    free(out->sigma);
    free(out->err);
    out->sigma = w;
    out->err = err;
    w = err = NULL;
    out->nsigma = r;
    out->nconv = r;
    out->dense = 1;
done:
    free(H); free(w); free(err);
    return st;
}

/* ---------------------------------------------------------------------- */
cr_status cr__hankel_svd(const double *h, size_t L, cr_horizon which, const cr__hsvd_req *req,
                         cr__hsvd *out)
{
    if (out == NULL) return cr__fail(CR_EINVAL, "hankel: output is NULL");
    memset(out, 0, sizeof *out);
    if (h == NULL || req == NULL) return cr__fail(CR_EINVAL, "hankel: kernel or request is NULL");
    size_t k = req->k, need = req->need;
    int vectors = req->vectors;
    double rtol = req->rtol, ttol = req->ttol;
    if (L == 0) return cr__fail(CR_EINVAL, "hankel: kernel length is 0");
    if (which != CR_HORIZON_WINDOW && which != CR_HORIZON_INFINITE)
        return cr__fail(CR_EINVAL, "hankel: unknown horizon %d", (int)which);
    if (L > CR_MAX_ELEMS) return cr__fail(CR_EOVERFLOW, "hankel: kernel length %zu is absurd", L);
    size_t m, n;
    hk_dims(L, which, &m, &n);
    out->m = m; out->n = n;
    out->r = m < n ? m : n;
    if (k > out->r) k = out->r;
    if (k == 0 && out->r > 0) k = 1;
    if (need == 0 || need > k) need = k;
    if (!(rtol > 0)) rtol = 1e-12;
    if (out->r == 0) { out->dense = 1; return CR_OK; }
    out->fro2 = hk_fro2(h, L, m, n);

    int dense = out->r <= HK_DENSE_MAX || k + HK_OVERSAMPLE >= out->r / 2;
    if (req->how == CR__HSVD_DENSE) dense = 1;
    if (req->how == CR__HSVD_LANCZOS && k + HK_OVERSAMPLE <= out->r) dense = 0;
    cr_status st;
    if (dense) {
        size_t mn;
        if (!cr__mul_ok(m, n, &mn) || mn > ((size_t)1 << 27))
            return cr__fail(CR_EUNSUPPORTED,
                            "hankel: %zu leading values of a %zu x %zu Hankel matrix need a "
                            "dense SVD that is too large; ask for fewer", k, m, n);
        st = hk_dense(h, L, m, n, k, vectors, out);
    } else {
        /* ~8 blocks of max(m, n) x (k + oversampling) doubles */
        size_t blk, bytes;
        if (!cr__mul_ok(k + HK_OVERSAMPLE, m > n ? m : n, &blk) || !cr__mul_ok(blk, 64, &bytes) ||
            bytes > ((size_t)1 << 32))
            return cr__fail(CR_EUNSUPPORTED,
                            "hankel: %zu leading values of a %zu x %zu Hankel matrix need more "
                            "than 4 GiB of work space; ask for fewer", k, m, n);
        hk_op op = { m, n, h, L, NULL, NULL };
        st = cr_hankel_op_create(&op.fft, h, L, m, n);
        if (st == CR_OK)
            st = hk_lanczos(&op, k, need, vectors, rtol, ttol > 0 ? ttol : 0.0,
                            req->vrel > 0 ? req->vrel : 0.0, out);
        cr_hankel_op_destroy(op.fft);
        if (st == CR_OK && which == CR_HORIZON_INFINITE && out->r <= HK_EXACT_MAX)
            st = hk_exact_values(h, L, m, n, out);
    }
    if (st != CR_OK) cr__hsvd_free(out);
    return st;
}

CR_API cr_status cr_hsv(const double *h, size_t L, cr_horizon horizon,
                        size_t k, double *sigma, size_t *k_out, double *err_est)
{
    if (k_out) *k_out = 0;
    if (h == NULL || sigma == NULL)
        return cr__fail(CR_EINVAL, "cr_hsv: %s is NULL", h == NULL ? "kernel" : "sigma");
    if (L == 0) return cr__fail(CR_EINVAL, "cr_hsv: kernel length is 0");
    if (k == 0) return cr__fail(CR_EINVAL, "cr_hsv: k is 0");
    if (L > CR_MAX_ELEMS) return cr__fail(CR_EOVERFLOW, "cr_hsv: kernel length %zu is absurd", L);
    for (size_t i = 0; i < L; i++)
        if (!isfinite(h[i]))
            return cr__fail(CR_ENONFINITE, "cr_hsv: kernel value h[%zu] is not finite", i);
    cr__hsvd s;
    const cr__hsvd_req req = { k, k, 0, 1e-13, 0.0, CR__HSVD_AUTO, 0.0 };
    cr_status st = cr__hankel_svd(h, L, horizon, &req, &s);
    if (st != CR_OK) return st;
    size_t kk = k < s.r ? k : s.r;
    for (size_t i = 0; i < kk; i++) {
        sigma[i] = s.sigma[i];
        if (err_est) err_est[i] = s.err[i];
    }
    if (k_out) *k_out = kk;
    cr__hsvd_free(&s);
    return CR_OK;
}
