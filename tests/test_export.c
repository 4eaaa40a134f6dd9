/* Export: generated C compiled and run on the host (and cross-compiled for
 * Cortex-M4F when the toolchain exists), the fixed-point (Q31 / Q15) export
 * against the double model, its refusals, second-order sections, JSON.
 * The emulated-core runs are in tests/embedded/test_emu.c. */
#include "config.h" /* feature macros before any system header */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "convrec.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embedded/harness.h"

static char tmpdir[256];
static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double urand(void) /* uniform [0, 1) */
{
    return 0.5 * (tu_uniform(&rng) + 1.0);
}

/* C = 3: channel 0 two pairs + one real, channel 1 d only, channel 2 one
 * pair + two real; M = 4 (unused slots too). */
static cr_model *small_model(void)
{
    cr_model *m;
    assert_int_equal(cr_model_create(&m, 3, 4), CR_OK);
    unsigned char k0[3] = {CR_MODE_PAIR, CR_MODE_REAL, CR_MODE_PAIR};
    double p0r[3] = {0.9 * cos(0.3), -0.7, 0.95 * cos(2.0)}, p0i[3] = {0.9 * sin(0.3), 0, 0.95 * sin(2.0)};
    double r0r[3] = {0.5, 0.8, -0.25}, r0i[3] = {-0.3, 0, 0.4};
    assert_int_equal(cr_model_set_channel(m, 0, 3, k0, p0r, p0i, r0r, r0i, 0.3), CR_OK);
    assert_int_equal(cr_model_set_channel(m, 1, 0, NULL, NULL, NULL, NULL, NULL, -1.25), CR_OK);
    unsigned char k2[3] = {CR_MODE_REAL, CR_MODE_PAIR, CR_MODE_REAL};
    double p2r[3] = {0.5, 0.6, 0.99}, p2i[3] = {0, -0.7, 0};
    double r2r[3] = {1.0, 0.2, 0.05}, r2i[3] = {0, 0.1, 0};
    assert_int_equal(cr_model_set_channel(m, 2, 3, k2, p2r, p2i, r2r, r2i, 0.0), CR_OK);
    return m;
}

static int setup(void **st)
{
    (void)st;
    snprintf(tmpdir, sizeof tmpdir, "%s", tu_tmpdir());
    return strcmp(tmpdir, "/tmp") != 0 ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    return tu_rmtree(tmpdir);
}

static int have(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s --version >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Driver: runs an impulse and a random input through NAME_process (in two
 * chunks, the second in place) and prints the outputs. */
static const char *driver_src =
    "#include HDR\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#define CAT2(a, b) a##b\n"
    "#define CAT(a, b) CAT2(a, b)\n"
    "#define F(x) CAT(NAME, x)\n"
    "#define CH CAT(UP, _CHANNELS)\n"
    "#define N 400\n#define SPLIT 137\n"
    "static T in[CH * N], out[CH * N], a[CH * N], b[CH * N];\n"
    "static void run(const T *x, T *y)\n"
    "{\n"
    "    F(_state) s;\n"
    "    size_t c, t;\n"
    "    F(_init)(&s);\n"
    "    for (c = 0; c < CH; c++)\n"
    "        for (t = 0; t < SPLIT; t++) a[c * SPLIT + t] = x[c * N + t];\n"
    "    F(_process)(&s, a, a, SPLIT); /* in place */\n"
    "    for (c = 0; c < CH; c++)\n"
    "        for (t = 0; t < SPLIT; t++) y[c * N + t] = a[c * SPLIT + t];\n"
    "    for (c = 0; c < CH; c++)\n"
    "        for (t = SPLIT; t < N; t++) a[c * (N - SPLIT) + t - SPLIT] = x[c * N + t];\n"
    "    F(_process)(&s, a, b, 0);\n"
    "    F(_process)(&s, a, b, N - SPLIT);\n"
    "    for (c = 0; c < CH; c++)\n"
    "        for (t = SPLIT; t < N; t++) y[c * N + t] = b[c * (N - SPLIT) + t - SPLIT];\n"
    "}\n"
    "int main(void)\n"
    "{\n"
    "    size_t i;\n"
    "    for (i = 0; i < CH; i++) in[i * N] = 1;\n"
    "    run(in, out);\n"
    "    for (i = 0; i < CH * N; i++) printf(\"%.17g\\n\", (double)out[i]);\n"
    "    srand(7);\n"
    "    for (i = 0; i < CH * N; i++) in[i] = (T)(rand() / (double)RAND_MAX - 0.5);\n"
    "    run(in, out);\n"
    "    for (i = 0; i < CH * N; i++) printf(\"%.17g %.17g\\n\", (double)in[i], (double)out[i]);\n"
    "    return 0;\n"
    "}\n";

static void check_export_c(cr_export_precision prec)
{
    if (!have("cc")) skip();
    const int dbl = prec == CR_EXPORT_DOUBLE;
    const char *name = dbl ? "filt64" : "filt32";
    const int N = 400; /* as in the driver */
    cr_model *m = small_model();
    assert_int_equal(cr_export_c(m, tmpdir, name, prec), CR_OK);
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/driver.c", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(driver_src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cc -std=c99 -Wall -Wextra -Werror -pedantic %s -O2 -DHDR='\"%s.h\"' "
             "-DNAME=%s -DUP=%s -DT=%s -o %s_prog %s.c driver.c 2> %s_cc.log",
             tmpdir, dbl ? "" : "-Wdouble-promotion", name, name, dbl ? "FILT64" : "FILT32",
             dbl ? "double" : "float", name, name, name);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/%s_cc.log'", tmpdir, name);
        (void)system(cmd);
        fail_msg("generated C does not compile cleanly");
    }
    snprintf(cmd, sizeof cmd, "'%s/%s_prog'", tmpdir, name);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    const size_t C = 3;
    double *imp = malloc(C * N * sizeof(double)), *u = malloc(C * N * sizeof(double));
    double *y = malloc(C * N * sizeof(double)), *h = malloc(C * N * sizeof(double));
    for (size_t i = 0; i < C * N; i++) assert_int_equal(fscanf(p, "%lf", &imp[i]), 1);
    for (size_t i = 0; i < C * N; i++) assert_int_equal(fscanf(p, "%lf %lf", &u[i], &y[i]), 2);
    assert_int_equal(pclose(p), 0);
    assert_int_equal(cr_model_kernel(m, (size_t)N, h), CR_OK);
    const double tol = dbl ? 1e-12 : 1e-5;
    for (size_t c = 0; c < C; c++) {
        /* impulse response */
        double e2 = 0, n2 = 0;
        for (int k = 0; k < N; k++) {
            double e = imp[c * N + k] - h[c * N + k];
            e2 += e * e;
            n2 += h[c * N + k] * h[c * N + k];
        }
        if (!(sqrt(e2 / n2) <= tol)) fail_msg("channel %zu impulse: rel %g", c, sqrt(e2 / n2));
        /* random input vs direct convolution with the model kernel */
        e2 = n2 = 0;
        for (int t = 0; t < N; t++) {
            double r = 0;
            for (int k = 0; k <= t; k++) r += h[c * N + k] * u[c * N + t - k];
            e2 += (y[c * N + t] - r) * (y[c * N + t] - r);
            n2 += r * r;
        }
        if (!(sqrt(e2 / n2) <= tol)) fail_msg("channel %zu random: rel %g", c, sqrt(e2 / n2));
    }
    free(imp);
    free(u);
    free(y);
    free(h);

    /* Cortex-M4F */
    if (have("arm-none-eabi-gcc")) {
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && arm-none-eabi-gcc -std=c99 -Wall -Wextra -Werror -pedantic %s "
                 "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2 -c %s.c -o "
                 "%s_m4.o 2> %s_arm.log",
                 tmpdir, dbl ? "" : "-Wdouble-promotion", name, name, name);
        if (system(cmd) != 0) {
            snprintf(cmd, sizeof cmd, "cat '%s/%s_arm.log'", tmpdir, name);
            (void)system(cmd);
            fail_msg("generated C does not cross-compile cleanly for Cortex-M4F");
        }
        /* no libm: only memset/memcpy and libgcc's soft-double helpers */
        snprintf(cmd, sizeof cmd,
                 "arm-none-eabi-nm -u '%s/%s_m4.o' | grep -v -w -e memset -e memcpy | grep -v __aeabi_ | grep -q .",
                 tmpdir, name);
        assert_int_not_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd,
                 "printf 'cortex-m4f %s (C=3, N=5,0,4): '; arm-none-eabi-size '%s/%s_m4.o' | "
                 "tail -n 1",
                 dbl ? "double" : "float", tmpdir, name);
        (void)system(cmd);
    } else {
        printf("arm-none-eabi-gcc not found: Cortex-M4F build skipped\n");
    }
    cr_model_destroy(m);
}

static void test_export_c_float(void **st)
{
    (void)st;
    check_export_c(CR_EXPORT_FLOAT);
}

static void test_export_c_double(void **st)
{
    (void)st;
    check_export_c(CR_EXPORT_DOUBLE);
}

static void test_export_c_args(void **st)
{
    (void)st;
    cr_model *m = small_model();
    assert_int_equal(cr_export_c(NULL, tmpdir, "x", CR_EXPORT_FLOAT), CR_EINVAL);
    assert_int_equal(cr_export_c(m, NULL, "x", CR_EXPORT_FLOAT), CR_EINVAL);
    assert_int_equal(cr_export_c(m, tmpdir, "9x", CR_EXPORT_FLOAT), CR_EINVAL);
    assert_int_equal(cr_export_c(m, tmpdir, "a-b", CR_EXPORT_FLOAT), CR_EINVAL);
    assert_int_equal(cr_export_c(m, tmpdir, "ok", (cr_export_precision)7), CR_EINVAL);
    char nd[300];
    snprintf(nd, sizeof nd, "%s/missing", tmpdir);
    assert_int_equal(cr_export_c(m, nd, "ok", CR_EXPORT_FLOAT), CR_EIO);
    /* unstable model refused */
    unsigned char k = CR_MODE_REAL;
    double pr = 1.01, z = 0, r = 1;
    assert_int_equal(cr_model_set_channel(m, 1, 1, &k, &pr, &z, &r, &z, 0), CR_OK);
    assert_int_equal(cr_export_c(m, tmpdir, "bad", CR_EXPORT_FLOAT), CR_EUNSTABLE);
    snprintf(nd, sizeof nd, "%s/bad.c", tmpdir);
    assert_int_equal(access(nd, F_OK), -1);
    cr_model_destroy(m);
}

/* ---------------------------------------------------------------------
 * Fixed point
 * --------------------------------------------------------------------- */

/* Poles within 0.95 of the origin: Q15 holds them to the default budget. */
static cr_model *q15_model(void)
{
    cr_model *m;
    assert_int_equal(cr_model_create(&m, 2, 3), CR_OK);
    unsigned char k0[3] = {CR_MODE_PAIR, CR_MODE_REAL, CR_MODE_PAIR};
    double pr[3] = {0.8 * cos(0.4), 0.5, 0.7 * cos(2.5)}, pi[3] = {0.8 * sin(0.4), 0, 0.7 * sin(2.5)};
    double rr[3] = {0.05, 0.1, -0.04}, ri[3] = {0.03, 0, 0.02};
    assert_int_equal(cr_model_set_channel(m, 0, 3, k0, pr, pi, rr, ri, 0.2), CR_OK);
    unsigned char k1[1] = {CR_MODE_PAIR};
    double qr = 0.95 * cos(0.1), qi = 0.95 * sin(0.1), sr = 0.01, si = -0.004;
    assert_int_equal(cr_model_set_channel(m, 1, 1, k1, &qr, &qi, &sr, &si, -0.1), CR_OK);
    return m;
}

static int fixed_bits(cr_export_numeric n) { return n == CR_NUMERIC_Q31 ? 31 : 15; }

/* Export m in fixed point as NAME under tmpdir, build it for the host
 * (under UBSan when the compiler has it: a signed overflow then stops the
 * run), filter x (C, T) integer samples held in doubles, and return the
 * outputs in y (C, T) and the final state (raw bytes) in st. */
static int have_ubsan = -1;
static void run_fixed(cr_export_numeric num, const char *name, const double *x,
                      size_t C, size_t T, double *y, void *st, size_t stn)
{
    const char *src = getenv("CONVREC_SRCDIR");
    if (!src || !have("cc")) skip();
    if (have_ubsan < 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && echo 'int main(void){return 0;}' > ub.c && cc -fsanitize=undefined "
                 "-fno-sanitize-recover ub.c -o ub >/dev/null 2>&1 && ./ub",
                 tmpdir);
        have_ubsan = system(cmd) == 0;
    }
    const int q31 = num == CR_NUMERIC_Q31;
    const size_t es = q31 ? 4 : 2, B = 61; /* odd blocks: in place and not */
    char up[80], prog[100];
    size_t k = 0;
    for (; name[k]; k++) up[k] = (char)(name[k] >= 'a' && name[k] <= 'z' ? name[k] - 32 : name[k]);
    up[k] = 0;
    void *buf = malloc(C * T * es);
    for (size_t i = 0; i < C * T; i++) {
        if (q31)
            ((int32_t *)buf)[i] = (int32_t)x[i];
        else
            ((int16_t *)buf)[i] = (int16_t)x[i];
    }
    assert_int_equal(hx_write_input(tmpdir, buf, es, C, T, B), 0);
    snprintf(prog, sizeof prog, "%s_host", name);
    assert_int_equal(hx_build_host(src, tmpdir, name, up, q31 ? "int32_t" : "int16_t",
                                   have_ubsan ? "-fsanitize=undefined -fno-sanitize-recover" : "",
                                   prog),
                     0);
    assert_int_equal(hx_run_host(tmpdir, prog), 0);
    assert_int_equal(hx_read_output(tmpdir, buf, es, C, T, B), 0);
    for (size_t i = 0; i < C * T; i++) y[i] = q31 ? ((int32_t *)buf)[i] : ((int16_t *)buf)[i];
    if (st) assert_int_equal(hx_read_file(tmpdir, "state.bin", st, stn), 0);
    free(buf);
}

/* The double model on the same samples, in output units of the format:
 * ref = (model applied to x 2^-F) 2^(F - S). */
static void ref_fixed(const cr_model *m, int F, int S, const double *x, size_t C, size_t T,
                      double *ref)
{
    cr_stream_d *sd;
    double *u = malloc(C * T * sizeof(double));
    for (size_t i = 0; i < C * T; i++) u[i] = ldexp(x[i], -F);
    assert_int_equal(cr_stream_d_create(&sd, m, 1, 0), CR_OK);
    assert_int_equal(cr_stream_d_block(sd, u, T, ref), CR_OK);
    for (size_t i = 0; i < C * T; i++) ref[i] = ldexp(ref[i], F - S);
    cr_stream_d_destroy(sd);
    free(u);
}

static double snr_db(const double *y, const double *ref, size_t n)
{
    double e2 = 0, r2 = 0;
    for (size_t i = 0; i < n; i++) {
        e2 += (y[i] - ref[i]) * (y[i] - ref[i]);
        r2 += ref[i] * ref[i];
    }
    return 10.0 * log10(r2 / e2);
}

/* White noise at -6 dBFS (uniform, peak 1/2) against the double model:
 * the measured SNR of the worst channel must match what the export
 * predicted (coefficient error plus rounding noise, the noise 6 dB up at
 * half scale) within 3 dB, and every channel must be at least min_db. */
static void check_fixed_white(cr_model *m, cr_export_numeric num, const char *name,
                              double min_db)
{
    const int F = fixed_bits(num);
    cr_model_view v;
    cr_model_get_view(m, &v);
    const size_t C = v.C, T = 20000;
    cr_export_options o;
    cr_export_options_default(&o);
    o.numeric = num;
    cr_export_report r;
    assert_int_equal(cr_export_c_ex(m, tmpdir, name, &o, &r), CR_OK);
    assert_true(r.error == hypot(r.coef_error, r.noise) && r.error <= r.budget);
    assert_true(r.output_shift >= 0 && r.horizon > 0);
    double *x = malloc(C * T * sizeof(double)), *y = malloc(C * T * sizeof(double));
    double *ref = malloc(C * T * sizeof(double));
    uint64_t g = 42;
    for (size_t i = 0; i < C * T; i++) x[i] = nearbyint(ldexp(tu_uniform(&g) * 0.5, F));
    run_fixed(num, name, x, C, T, y, NULL, 0);
    ref_fixed(m, F, r.output_shift, x, C, T, ref);
    double pred = -20.0 * log10(hypot(r.coef_error, 2.0 * r.noise));
    for (size_t c = 0; c < C; c++) {
        double snr = snr_db(y + c * T, ref + c * T, T);
        printf("%s channel %zu: SNR %.1f dB at -6 dBFS white noise", name, c, snr);
        if (c == r.channel) printf(" (predicted %.1f dB)", pred);
        printf("\n");
        if (!(snr >= min_db)) fail_msg("%s channel %zu: SNR %.1f dB < %.1f", name, c, snr, min_db);
        if (c == r.channel && !(fabs(snr - pred) <= 3.0))
            fail_msg("%s channel %zu: SNR %.1f dB, predicted %.1f", name, c, snr, pred);
    }
    free(x);
    free(y);
    free(ref);
}

static void test_fixed_q31(void **st)
{
    (void)st;
    cr_model *m = small_model();
    check_fixed_white(m, CR_NUMERIC_Q31, "fq31", 120.0);
    cr_model_destroy(m);
}

static void test_fixed_q15(void **st)
{
    (void)st;
    cr_model *m = q15_model();
    check_fixed_white(m, CR_NUMERIC_Q15, "fq15", 55.0);
    cr_model_destroy(m);
}

/* The input that drives one state to its largest value: full scale with
 * the signs of that state's impulse response, reversed in time. No
 * overflow (UBSan, and the output still matching the double model), and
 * the scaling is tight: the state reaches more than a quarter of its
 * range. Then the same for the output of channel 0 (largest |y|: no
 * clipping at the automatic shift, and within a factor 2 of full scale). */
static void check_fixed_worst(cr_export_numeric num)
{
    const int F = fixed_bits(num);
    cr_model *m = num == CR_NUMERIC_Q31 ? small_model() : q15_model();
    cr_model_view v;
    cr_model_get_view(m, &v);
    const size_t C = v.C, T = 4000;
    const char *name = num == CR_NUMERIC_Q31 ? "wq31" : "wq15";
    cr_export_options o;
    cr_export_options_default(&o);
    o.numeric = num;
    o.max_error = INFINITY;
    cr_export_report r;
    assert_int_equal(cr_export_c_ex(m, tmpdir, name, &o, &r), CR_OK);
    double *x = malloc(C * T * sizeof(double)), *y = malloc(C * T * sizeof(double));
    double *ref = malloc(C * T * sizeof(double)), *h = malloc(C * T * sizeof(double));
    const double fs = ldexp(1.0, F);
    /* the first pair of channel 0 (mode 0, pair[0..1] of the state) */
    double complex lam = v.pole_re[0] + I * v.pole_im[0], z = 1.0;
    uint64_t g = 7;
    for (size_t i = 0; i < C * T; i++) x[i] = nearbyint(tu_uniform(&g) * (fs - 1));
    for (size_t k = 0; k < T; k++, z *= lam) x[T - 1 - k] = creal(z) >= 0 ? fs - 1 : -fs;
    union {
        int32_t w[64];
        int16_t s[128];
    } stt;
    size_t stn = (num == CR_NUMERIC_Q31 ? 4 : 2) * (2 * 3 + 3); /* pairs 3 or 2, reals 3 or 1 */
    if (num == CR_NUMERIC_Q15) stn = 2 * (2 * 3 + 1);
    run_fixed(num, name, x, C, T, y, &stt, stn);
    ref_fixed(m, F, r.output_shift, x, C, T, ref);
    double s0 = num == CR_NUMERIC_Q31 ? stt.w[0] : stt.s[0];
    printf("%s: worst-case state %.0f of %.0f\n", name, s0, fs - 1);
    assert_true(fabs(s0) > fs / 4 && fabs(s0) <= fs - 1);
    for (size_t c = 0; c < C; c++) assert_true(snr_db(y + c * T, ref + c * T, T) > 40.0);

    /* largest output of channel 0 */
    assert_int_equal(cr_model_kernel(m, T, h), CR_OK);
    for (size_t k = 0; k < T; k++) x[T - 1 - k] = h[k] >= 0 ? fs - 1 : -fs;
    run_fixed(num, name, x, C, T, y, NULL, 0);
    ref_fixed(m, F, r.output_shift, x, C, T, ref);
    double ymax = fabs(y[T - 1]);
    printf("%s: worst-case output %.0f of %.0f (shift %d)\n", name, ymax, fs - 1, r.output_shift);
    assert_true(ymax < fs - 1 && ymax > fs / 2);
    assert_true(fabs(y[T - 1] - ref[T - 1]) < 1e-3 * fs);
    free(x);
    free(y);
    free(ref);
    free(h);
    cr_model_destroy(m);
}

static void test_fixed_worst(void **st)
{
    (void)st;
    check_fixed_worst(CR_NUMERIC_Q31);
    check_fixed_worst(CR_NUMERIC_Q15);
}

/* A forced output shift of 0 on a model of gain > 1: the output saturates
 * at full scale (never wraps), and equals the model where it does not. */
static void test_fixed_saturation(void **st)
{
    (void)st;
    cr_model *m;
    assert_int_equal(cr_model_create(&m, 1, 1), CR_OK);
    unsigned char k = CR_MODE_REAL;
    double p = 0.9, z = 0, r = 0.5, d = 0.5; /* dc gain 0.5 + 0.5 / 0.1 = 5.5 */
    assert_int_equal(cr_model_set_channel(m, 0, 1, &k, &p, &z, &r, &z, d), CR_OK);
    for (int q = 0; q < 2; q++) {
        cr_export_numeric num = q ? CR_NUMERIC_Q15 : CR_NUMERIC_Q31;
        const int F = fixed_bits(num);
        cr_export_options o;
        cr_export_options_default(&o);
        o.numeric = num;
        o.output_shift = 0;
        o.max_error = INFINITY;
        cr_export_report rep;
        assert_int_equal(cr_export_c_ex(m, tmpdir, "sat", &o, &rep), CR_OK);
        assert_int_equal(rep.output_shift, 0);
        const size_t T = 600;
        double x[600], y[600], ref[600];
        for (size_t t = 0; t < T; t++) x[t] = t < 200 ? nearbyint(ldexp(0.5, F)) : t < 400 ? -ldexp(0.5, F) : 0;
        run_fixed(num, "sat", x, 1, T, y, NULL, 0);
        ref_fixed(m, F, 0, x, 1, T, ref);
        size_t nsat = 0;
        for (size_t t = 0; t < T; t++) {
            double lo = -ldexp(1.0, F), hi = ldexp(1.0, F) - 1;
            double want = ref[t] > hi ? hi : ref[t] < lo ? lo : ref[t];
            nsat += y[t] == hi || y[t] == lo;
            if (!(fabs(y[t] - want) <= 1e-3 * ldexp(1.0, F)))
                fail_msg("Q%d t = %zu: %g, want %g", F, t, y[t], want);
        }
        assert_true(nsat > 100);
    }
    cr_model_destroy(m);
}

/* The generated code builds for Cortex-M0 (no 64-bit multiply in
 * hardware) and M3 with nothing but libgcc's helpers. */
static void test_fixed_cortex_m0(void **st)
{
    (void)st;
    if (!have("arm-none-eabi-gcc")) skip();
    cr_model *m = small_model();
    cr_export_options o;
    cr_export_options_default(&o);
    char cmd[1024];
    const char *cpu[2] = {"cortex-m0", "cortex-m3"};
    for (int q = 0; q < 2; q++) {
        o.numeric = q ? CR_NUMERIC_Q15 : CR_NUMERIC_Q31;
        o.max_error = INFINITY;
        assert_int_equal(cr_export_c_ex(m, tmpdir, "mfix", &o, NULL), CR_OK);
        for (int k = 0; k < 2; k++) {
            snprintf(cmd, sizeof cmd,
                     "cd '%s' && arm-none-eabi-gcc -std=c99 -Wall -Wextra -Werror -pedantic "
                     "-mcpu=%s -mthumb -O2 -c mfix.c -o mfix.o && arm-none-eabi-nm -u mfix.o | "
                     "grep -v __aeabi_ | grep -q .",
                     tmpdir, cpu[k]);
            assert_int_equal(hx_sh(cmd), 1); /* compiled, and no other undefined symbol */
            snprintf(cmd, sizeof cmd, "printf '%s Q%d (C=3): '; arm-none-eabi-size '%s/mfix.o' | tail -n 1",
                     cpu[k], q ? 15 : 31, tmpdir);
            (void)hx_sh(cmd);
        }
    }
    cr_model_destroy(m);
}

static int detail_has(const char *a, const char *b)
{
    const char *d = cr_error_detail();
    return strstr(d, a) != NULL && (b == NULL || strstr(d, b) != NULL);
}

/* Refusals: a pole too close to 1 for Q15, an error budget too small (given
 * or from the fit record), bad arguments; nothing is written. */
static void test_fixed_refusals(void **st)
{
    (void)st;
    cr_model *m = q15_model();
    cr_export_options o;
    cr_export_options_default(&o);
    cr_export_report r;
    char path[400];
    snprintf(path, sizeof path, "%s/never.h", tmpdir);

    /* a pole 2e-6 from the unit circle: Q15 steps are 3e-5 */
    unsigned char k[2] = {CR_MODE_REAL, CR_MODE_PAIR};
    double pr[2] = {0.3, (1 - 2e-6) * cos(0.01)}, pi[2] = {0, (1 - 2e-6) * sin(0.01)};
    double rr[2] = {0.1, 1e-4}, ri[2] = {0, 0};
    assert_int_equal(cr_model_set_channel(m, 1, 2, k, pr, pi, rr, ri, 0.0), CR_OK);
    o.numeric = CR_NUMERIC_Q15;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "never", &o, &r), CR_EPRECISION);
    printf("refused: %s\n", cr_error_detail());
    assert_true(detail_has("channel 1, mode 1", "Q15"));
    assert_int_equal(access(path, F_OK), -1);
    /* a pair whose a and b both round up: it keeps less than half of its
     * distance to the unit circle (the search finds the worst on the grid) */
    {
        const double one = 32768.0;
        double best = 1, ba = 0, bb = 0;
        for (double A = 23000; A < 23300; A++) {
            double Bq = floor(sqrt(one * one - (A + 1) * (A + 1) - 1e-6));
            double a = A + 0.51, b = Bq - 1 + 0.51; /* both round up */
            double d0 = one - hypot(a, b), d1 = one - hypot(A + 1, Bq);
            if (d0 > 0 && d1 > 0 && d1 / d0 < best) best = d1 / d0, ba = a / one, bb = b / one;
        }
        assert_true(best < 0.5);
        unsigned char kp = CR_MODE_PAIR;
        double r1 = 1e-4, r0 = 0;
        cr_model *m2;
        assert_int_equal(cr_model_create(&m2, 1, 1), CR_OK);
        assert_int_equal(cr_model_set_channel(m2, 0, 1, &kp, &ba, &bb, &r1, &r0, 0.0), CR_OK);
        assert_int_equal(cr_export_c_ex(m2, tmpdir, "never", &o, &r), CR_EPRECISION);
        printf("refused: %s\n", cr_error_detail());
        assert_true(detail_has("channel 0, mode 0", "at least half"));
        cr_model_destroy(m2);
    }
    /* Q31 holds it (steps of 5e-10), with the budget opened */
    o.numeric = CR_NUMERIC_Q31;
    o.max_error = INFINITY;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "nearone", &o, &r), CR_OK);
    cr_model_destroy(m);

    /* an error budget too small */
    m = q15_model();
    o.numeric = CR_NUMERIC_Q15;
    o.max_error = 1e-6;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "never", &o, &r), CR_EPRECISION);
    printf("refused: %s\n", cr_error_detail());
    assert_true(detail_has("exceeds the budget", "channel"));
    assert_true(r.error > 1e-6 && r.budget == 1e-6 && r.channel < 2);
    assert_true(r.mode == SIZE_MAX || r.mode < 3);
    assert_int_equal(access(path, F_OK), -1);
    /* the default budget comes from the record: 10 x err_window */
    o.max_error = 0;
    cr_fit_record rec = {6, 1000, 1e-12, 1e-12, 1e-12, 1.0, NAN, NAN};
    cr_model_set_record(m, 0, &rec);
    assert_int_equal(cr_export_c_ex(m, tmpdir, "never", &o, &r), CR_EPRECISION);
    assert_true(detail_has("channel 0", "10 x err_window"));
    assert_true(r.budget == 1e-11 && r.horizon == 1000);
    o.numeric = CR_NUMERIC_Q31; /* Q31 too: its rounding noise is above 1e-11 */
    assert_int_equal(cr_export_c_ex(m, tmpdir, "never", &o, &r), CR_EPRECISION);
    assert_int_equal(access(path, F_OK), -1);
    o.max_error = 1e-6;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "okq31", &o, &r), CR_OK);
    assert_true(r.error <= 1e-6);

    /* bad arguments */
    cr_export_options_default(&o);
    o.numeric = CR_NUMERIC_Q31;
    assert_int_equal(cr_export_c_ex(NULL, tmpdir, "x", &o, &r), CR_EINVAL);
    assert_int_equal(cr_export_c_ex(m, NULL, "x", &o, &r), CR_EINVAL);
    assert_int_equal(cr_export_c_ex(m, tmpdir, "1x", &o, &r), CR_EINVAL);
    o.max_error = -1;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "x", &o, &r), CR_EINVAL);
    o.max_error = NAN;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "x", &o, &r), CR_EINVAL);
    o.max_error = 0;
    o.output_shift = 41;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "x", &o, &r), CR_EINVAL);
    o.output_shift = -2;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "x", &o, &r), CR_EINVAL);
    o.output_shift = CR_EXPORT_SHIFT_AUTO;
    o.numeric = (cr_export_numeric)9;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "x", &o, &r), CR_EINVAL);
    assert_true(isnan(r.error));
    /* NULL options: the float export */
    assert_int_equal(cr_export_c_ex(m, tmpdir, "deffloat", NULL, NULL), CR_OK);
    snprintf(path, sizeof path, "%s/deffloat.h", tmpdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[200] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "float precision") ? line : strstr(line, "IIR"));
    /* an unstable model stays CR_EUNSTABLE */
    unsigned char kr = CR_MODE_REAL;
    double p = 1.001, zz = 0, rr1 = 1;
    assert_int_equal(cr_model_set_channel(m, 1, 1, &kr, &p, &zz, &rr1, &zz, 0), CR_OK);
    o.numeric = CR_NUMERIC_Q15;
    assert_int_equal(cr_export_c_ex(m, tmpdir, "x", &o, &r), CR_EUNSTABLE);
    assert_true(strcmp(cr_strerror(CR_EPRECISION), "unknown status") != 0);
    cr_model_destroy(m);
}

/* Section by section, as scipy.signal.lfilter(b, a) runs it (direct form),
 * and as arm_biquad_cascade_df2T_f32 runs one stage (in double here). */
static void test_sos(void **st)
{
    (void)st;
    cr_model *m = small_model();
    const size_t L = 300;
    double *h = malloc(3 * L * sizeof(double));
    assert_int_equal(cr_model_kernel(m, L, h), CR_OK);
    double sc[4 * 6], cm[4 * 5];
    for (size_t c = 0; c < 3; c++) {
        size_t ns, ns2;
        double d;
        assert_int_equal(cr_export_sos(m, c, CR_SOS_SCIPY, sc, 4, &ns, &d), CR_OK);
        assert_int_equal(cr_export_sos(m, c, CR_SOS_CMSIS_DF2T, cm, 4, &ns2, NULL), CR_OK);
        assert_int_equal(ns, ns2);
        assert_int_equal(ns, cr_export_sos_count(m, c));
        double e2 = 0, n2 = 0, e2c = 0;
        double sy[4][3] = {{0}}, sx[4][3] = {{0}}, dz[4][2] = {{0}};
        for (size_t t = 0; t < L; t++) {
            double x = t == 0 ? 1.0 : 0.0, y = d * x, yc = d * x;
            for (size_t s = 0; s < ns; s++) {
                const double *r = sc + 6 * s;
                assert_true(r[3] == 1.0 && r[0] == 0.0);
                double v = r[0] * x + r[1] * sx[s][0] + r[2] * sx[s][1] - r[4] * sy[s][0] -
                           r[5] * sy[s][1];
                sx[s][1] = sx[s][0];
                sx[s][0] = x;
                sy[s][1] = sy[s][0];
                sy[s][0] = v;
                y += v;
                /* CMSIS df2T: y = b0 x + d1; d1 = b1 x + a1 y + d2; d2 = b2 x + a2 y */
                const double *q = cm + 5 * s;
                double w = q[0] * x + dz[s][0];
                dz[s][0] = q[1] * x + q[3] * w + dz[s][1];
                dz[s][1] = q[2] * x + q[4] * w;
                yc += w;
            }
            e2 += (y - h[c * L + t]) * (y - h[c * L + t]);
            e2c += (yc - h[c * L + t]) * (yc - h[c * L + t]);
            n2 += h[c * L + t] * h[c * L + t];
        }
        assert_true(sqrt(e2 / n2) < 1e-12);
        assert_true(sqrt(e2c / n2) < 1e-12);
    }
    /* closed form of the first pair of channel 0 (MATH.md) */
    assert_int_equal(cr_export_sos(m, 0, CR_SOS_SCIPY, sc, 4, NULL, NULL), CR_OK);
    double lr = 0.9 * cos(0.3), li = 0.9 * sin(0.3);
    assert_true(fabs(sc[1] - 1.0) < 1e-15);                         /* 2 Re r */
    assert_true(fabs(sc[2] + 2 * (0.5 * lr + -0.3 * li)) < 1e-15);   /* -2 Re(r conj lambda) */
    assert_true(fabs(sc[4] + 2 * lr) < 1e-15 && fabs(sc[5] - 0.81) < 1e-15);
    assert_int_equal(cr_export_sos(m, 0, CR_SOS_CMSIS_DF2T, cm, 4, NULL, NULL), CR_OK);
    assert_true(cm[3] == -sc[4] && cm[4] == -sc[5]);
    /* bad arguments */
    assert_int_equal(cr_export_sos(m, 0, CR_SOS_SCIPY, sc, 2, NULL, NULL), CR_EINVAL);
    assert_int_equal(cr_export_sos(m, 3, CR_SOS_SCIPY, sc, 4, NULL, NULL), CR_EINVAL);
    assert_int_equal(cr_export_sos(m, 0, (cr_sos_format)9, sc, 4, NULL, NULL), CR_EINVAL);
    assert_int_equal(cr_export_sos(m, 1, CR_SOS_SCIPY, NULL, 0, NULL, NULL), CR_OK);

    /* the JSON file holds the same numbers */
    char path[300];
    snprintf(path, sizeof path, "%s/sos.json", tmpdir);
    assert_int_equal(cr_export_sos_file(m, path), CR_OK);
    FILE *f = fopen(path, "rb");
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *root = cJSON_Parse(buf);
    assert_non_null(root);
    cJSON *ch = cJSON_GetObjectItem(root, "channels");
    assert_int_equal(cJSON_GetArraySize(ch), 3);
    cJSON *c0 = cJSON_GetArrayItem(ch, 0);
    cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(c0, "sos"), 0);
    for (int i = 0; i < 6; i++)
        if (cJSON_GetArrayItem(row, i)->valuedouble != sc[i])
            fail_msg("sos json [0][%d]: %.17g vs %.17g", i, cJSON_GetArrayItem(row, i)->valuedouble,
                     sc[i]);
    assert_true(cJSON_GetObjectItem(c0, "d")->valuedouble == 0.3);
    cJSON_Delete(root);

    /* optional: scipy.signal.lfilter section by section (python test) */
    const char *src = getenv("CONVREC_SRCDIR"), *py = getenv("PYTHON");
    char cmd[1200];
    if (py == NULL || py[0] == '\0') py = "/usr/bin/python3";
    snprintf(cmd, sizeof cmd, "'%s' -c 'import scipy.signal' >/dev/null 2>&1", py);
    if (src && system(cmd) == 0) {
        char kp[300];
        snprintf(kp, sizeof kp, "%s/kernel.txt", tmpdir);
        f = fopen(kp, "w");
        for (size_t i = 0; i < 3 * L; i++) fprintf(f, "%.17g\n", h[i]);
        fclose(f);
        snprintf(cmd, sizeof cmd, "'%s' '%s/tests/test_export_sos.py' '%s' '%s' 3", py, src, path, kp);
        assert_int_equal(system(cmd), 0);
    }
    free(h);
    cr_model_destroy(m);
}

static void test_json(void **st)
{
    (void)st;
    cr_model *m = small_model();
    cr_fit_record r = {4, 512, 0.01, 0.02, 0.5, 2.0, NAN, 0.125};
    cr_model_set_record(m, 2, &r);
    cr_model_set_info(m, CR_METHOD_HNA, CR_HORIZON_INFINITE);
    char path[300];
    snprintf(path, sizeof path, "%s/m.json", tmpdir);
    assert_int_equal(cr_export_json(m, path), CR_OK);
    FILE *f = fopen(path, "rb");
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *root = cJSON_Parse(buf);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "method")->valuestring, "hna");
    assert_string_equal(cJSON_GetObjectItem(root, "horizon")->valuestring, "infinite");
    cJSON *ch = cJSON_GetObjectItem(root, "channel");
    assert_int_equal(cJSON_GetArraySize(ch), 3);
    cJSON *c2 = cJSON_GetArrayItem(ch, 2);
    assert_int_equal((int)cJSON_GetObjectItem(c2, "order")->valuedouble, 4);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(c2, "sigma_next")));
    assert_true(cJSON_GetObjectItem(c2, "bt_bound")->valuedouble == 0.125);
    cJSON *modes = cJSON_GetObjectItem(c2, "modes");
    assert_int_equal(cJSON_GetArraySize(modes), 3);
    cJSON *md = cJSON_GetArrayItem(modes, 1);
    assert_string_equal(cJSON_GetObjectItem(md, "kind")->valuestring, "pair");
    /* stored with pole im > 0: the residue was conjugated too */
    assert_true(cJSON_GetArrayItem(cJSON_GetObjectItem(md, "pole"), 1)->valuedouble == 0.7);
    assert_true(cJSON_GetArrayItem(cJSON_GetObjectItem(md, "residue"), 1)->valuedouble == -0.1);
    cJSON_Delete(root);
    char *s = NULL;
    assert_int_equal(cr_export_json_string(m, &s), CR_OK);
    assert_non_null(strstr(s, "\"channel\""));
    free(s);
    assert_int_equal(cr_export_json(m, NULL), CR_EINVAL);
    cr_model_destroy(m);
}

int main(void)
{
    (void)urand;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_c_float), cmocka_unit_test(test_export_c_double),
        cmocka_unit_test(test_export_c_args),  cmocka_unit_test(test_fixed_q31),
        cmocka_unit_test(test_fixed_q15),      cmocka_unit_test(test_fixed_worst),
        cmocka_unit_test(test_fixed_saturation), cmocka_unit_test(test_fixed_cortex_m0),
        cmocka_unit_test(test_fixed_refusals), cmocka_unit_test(test_sos),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
