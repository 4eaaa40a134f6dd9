/* Exported filters on emulated microcontrollers (qemu-system-arm):
 * the float export on a Cortex-M4F (mps2-an386) against the double model
 * and against the host build of the same C, to 1e-5 over 10^5 samples;
 * the Q31 and Q15 exports on a Cortex-M3 (mps2-an385) against the host
 * build of the same C, bit for bit. Signals go in and out through
 * semihosting files (tests/embedded/driver.c). Exits 77 (skip) without
 * gcc-arm-none-eabi, libnewlib-arm-none-eabi or qemu-system-arm. */
#include "config.h" /* feature macros before any system header */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "convrec.h"
#include "../testutil.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[256];
static const char *src;

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/cr_test_emu_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* C = 2, 8 pairs each (N = 16), poles 0.5 .. 0.995 */
static cr_model *synth_model(void)
{
    cr_model *m;
    assert_int_equal(cr_model_create(&m, 2, 8), CR_OK);
    uint64_t g = 11;
    for (size_t c = 0; c < 2; c++) {
        unsigned char k[8];
        double pr[8], pi[8], rr[8], ri[8];
        for (int j = 0; j < 8; j++) {
            double rad = 0.5 + 0.495 * (j + 1) / 8.0, th = 0.05 + 3.0 * (tu_uniform(&g) + 1) / 2;
            k[j] = CR_MODE_PAIR;
            pr[j] = rad * cos(th), pi[j] = rad * sin(th);
            rr[j] = 0.02 * tu_uniform(&g), ri[j] = 0.02 * tu_uniform(&g);
        }
        assert_int_equal(cr_model_set_channel(m, c, 8, k, pr, pi, rr, ri, 0.25 * tu_uniform(&g)),
                         CR_OK);
    }
    return m;
}

/* examples/cabinet_ir.npy fitted at order 32 with the infinite horizon
 * (a realistic model: poles up to |lambda| = 0.9993), or NULL. */
static cr_model *cabinet_model(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/examples/cabinet_ir.npy", src);
    cr_array a;
    if (cr_npy_read(p, &a) != CR_OK) return NULL;
    assert_int_equal(a.dtype, CR_FLOAT64);
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.order = 32;
    o.horizon = CR_HORIZON_INFINITE;
    cr_model *m = NULL;
    assert_int_equal(cr_fit(a.data, 1, cr_array_count(&a), &o, &m), CR_OK);
    cr_array_free(&a);
    return m;
}

static size_t channels(const cr_model *m)
{
    cr_model_view v;
    cr_model_get_view(m, &v);
    return v.C;
}

/* Float: 10^5 samples of white noise (uniform, peak 1/2) per channel. */
static void check_float_m4f(cr_model *m, const char *name, const char *up, int vs_double)
{
    const size_t C = channels(m), T = 100000, B = 1000;
    assert_int_equal(cr_export_c(m, dir, name, CR_EXPORT_FLOAT), CR_OK);
    float *x = malloc(C * T * sizeof(float)), *yh = malloc(C * T * sizeof(float));
    float *ye = malloc(C * T * sizeof(float));
    double *u = malloc(C * T * sizeof(double)), *yd = malloc(C * T * sizeof(double));
    uint64_t g = 3;
    for (size_t i = 0; i < C * T; i++) x[i] = (float)(0.5 * tu_uniform(&g)), u[i] = x[i];
    assert_int_equal(hx_write_input(dir, x, 4, C, T, B), 0);
    assert_int_equal(hx_build_host(src, dir, name, up, "float", "-Wdouble-promotion", "host"), 0);
    assert_int_equal(hx_run_host(dir, "host"), 0);
    assert_int_equal(hx_read_output(dir, yh, 4, C, T, B), 0);
    assert_int_equal(hx_build_target(src, dir, name, up, "float", HX_M4F, "m4f.elf"), 0);
    assert_int_equal(hx_run_qemu(dir, HX_M4F_MACHINE, "m4f.elf"), 0);
    assert_int_equal(hx_read_output(dir, ye, 4, C, T, B), 0);
    cr_stream_d *sd;
    assert_int_equal(cr_stream_d_create(&sd, m, 1, 0), CR_OK);
    assert_int_equal(cr_stream_d_block(sd, u, T, yd), CR_OK);
    cr_stream_d_destroy(sd);
    for (size_t c = 0; c < C; c++) {
        double *a = malloc(T * sizeof(double));
        for (size_t t = 0; t < T; t++) a[t] = yh[c * T + t];
        double eh = tu_rel_l2f(ye + c * T, a, T), ed = tu_rel_l2f(ye + c * T, yd + c * T, T);
        double hd = tu_rel_l2f(yh + c * T, yd + c * T, T);
        size_t same = 0;
        for (size_t t = 0; t < T; t++) same += memcmp(&ye[c * T + t], &yh[c * T + t], 4) == 0;
        printf("%s channel %zu, Cortex-M4F float over %zu samples: vs host build %.3g (%zu of %zu "
               "bit-identical), vs double %.3g (host build vs double %.3g)\n",
               name, c, T, eh, same, T, ed, hd);
        if (!(eh <= 1e-5)) fail_msg("%s channel %zu: M4F vs host %g", name, c, eh);
        if (vs_double && !(ed <= 1e-5)) fail_msg("%s channel %zu: M4F vs double %g", name, c, ed);
        free(a);
    }
    free(x);
    free(yh);
    free(ye);
    free(u);
    free(yd);
}

static void test_float_m4f(void **st)
{
    (void)st;
    cr_model *m = synth_model();
    check_float_m4f(m, "synth", "SYNTH", 1);
    cr_model_destroy(m);
    /* the cabinet's poles near 1 make float32 pole rounding itself visible
     * against double (about 3e-5, docs/EMBEDDED.md): compared with the host
     * build of the same C */
    m = cabinet_model();
    if (m) check_float_m4f(m, "cab", "CAB", 0);
    cr_model_destroy(m);
}

/* Fixed point on the M3: 2 x 10^4 samples of full-scale white noise,
 * outputs and final state bit for bit equal to the host build. */
static void check_fixed_m3(cr_model *m, cr_export_numeric num, const char *name, const char *up)
{
    const size_t C = channels(m), T = 20000, B = 250;
    const int q31 = num == CR_NUMERIC_Q31;
    const size_t es = q31 ? 4 : 2;
    cr_export_options o;
    cr_export_options_default(&o);
    o.numeric = num;
    cr_export_report r;
    assert_int_equal(cr_export_c_ex(m, dir, name, &o, &r), CR_OK);
    char *x = malloc(C * T * es), *yh = malloc(C * T * es), *ye = malloc(C * T * es);
    uint64_t g = 5;
    for (size_t i = 0; i < C * T; i++) {
        uint64_t v = tu_next(&g);
        if (q31)
            ((int32_t *)(void *)x)[i] = (int32_t)(uint32_t)v;
        else
            ((int16_t *)(void *)x)[i] = (int16_t)(uint16_t)v;
    }
    const char *T_ = q31 ? "int32_t" : "int16_t";
    assert_int_equal(hx_write_input(dir, x, es, C, T, B), 0);
    assert_int_equal(hx_build_host(src, dir, name, up, T_, "", "host"), 0);
    assert_int_equal(hx_run_host(dir, "host"), 0);
    assert_int_equal(hx_read_output(dir, yh, es, C, T, B), 0);
    char sh[4096], se[4096];
    char p[300];
    snprintf(p, sizeof p, "%s/state.bin", dir);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t ns = fread(sh, 1, sizeof sh, f);
    fclose(f);
    assert_int_equal(hx_build_target(src, dir, name, up, T_, HX_M3, "m3.elf"), 0);
    assert_int_equal(hx_run_qemu(dir, HX_M3_MACHINE, "m3.elf"), 0);
    assert_int_equal(hx_read_output(dir, ye, es, C, T, B), 0);
    assert_int_equal(hx_read_file(dir, "state.bin", se, ns), 0);
    size_t diff = 0;
    for (size_t i = 0; i < C * T; i++) diff += memcmp(yh + i * es, ye + i * es, es) != 0;
    printf("%s: Cortex-M3 %s over %zu samples x %zu channels: %zu outputs differ from the host "
           "build, final state %s (export error %.3g, SNR %.1f dB)\n",
           name, q31 ? "Q31" : "Q15", T, C, diff, memcmp(sh, se, ns) ? "differs" : "identical",
           r.error, -20 * log10(r.noise));
    assert_int_equal(diff, 0);
    assert_int_equal(memcmp(sh, se, ns), 0);
    free(x);
    free(yh);
    free(ye);
}

static void test_q31_m3(void **st)
{
    (void)st;
    cr_model *m = synth_model();
    check_fixed_m3(m, CR_NUMERIC_Q31, "sq31", "SQ31");
    cr_model_destroy(m);
    m = cabinet_model();
    if (m) check_fixed_m3(m, CR_NUMERIC_Q31, "cq31", "CQ31");
    cr_model_destroy(m);
}

/* The shared room response (rir_clap.wav, 44.1 kHz) fitted as an audio
 * user does (convrec fit rir_clap.wav --order 32 --horizon infinite
 * --weight octave), or NULL without the shared data. */
static cr_model *room_model(void)
{
    const char *p = tu_data("rir/rir_clap.wav");
    if (p == NULL) return NULL;
    cr_array a;
    cr_audio_info info;
    assert_int_equal(cr_audio_read(p, &a, &info), CR_OK);
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.order = 32;
    o.horizon = CR_HORIZON_INFINITE;
    o.weight = CR_WEIGHT_OCTAVE;
    o.rate = info.rate;
    cr_model *m = NULL;
    assert_int_equal(cr_fit(a.data, 1, info.frames, &o, &m), CR_OK);
    cr_array_free(&a);
    return m;
}

/* The exported float and Q31 filters of the weighted room model on the
 * emulated cores (against the host build of the same C). */
static void test_room_m4f_m3(void **st)
{
    (void)st;
    cr_model *m = room_model();
    if (m == NULL) {
        printf("shared data absent: room model skipped\n");
        return;
    }
    check_float_m4f(m, "room", "ROOM", 0);
    check_fixed_m3(m, CR_NUMERIC_Q31, "rq31", "RQ31");
    cr_model_destroy(m);
}

static void test_q15_m3(void **st)
{
    (void)st;
    cr_model *m;
    assert_int_equal(cr_model_create(&m, 1, 2), CR_OK);
    unsigned char k[2] = {CR_MODE_PAIR, CR_MODE_REAL};
    double pr[2] = {0.8 * cos(0.7), 0.6}, pi[2] = {0.8 * sin(0.7), 0}, rr[2] = {0.1, 0.2},
           ri[2] = {0.05, 0};
    assert_int_equal(cr_model_set_channel(m, 0, 2, k, pr, pi, rr, ri, 0.3), CR_OK);
    check_fixed_m3(m, CR_NUMERIC_Q15, "sq15", "SQ15");
    cr_model_destroy(m);
}

int main(void)
{
    src = getenv("CONVREC_SRCDIR");
    if (!src) {
        printf("CONVREC_SRCDIR not set: skipped\n");
        return 77;
    }
    /* the cross compiler, newlib's semihosting library and the emulator */
    if (hx_sh("arm-none-eabi-gcc --version >/dev/null 2>&1") != 0 ||
        hx_sh("qemu-system-arm -M help 2>/dev/null | grep -q mps2-an386") != 0 ||
        hx_sh("echo 'int main(void){return 0;}' | arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb "
              "--specs=nano.specs --specs=rdimon.specs -x c - -o /dev/null >/dev/null 2>&1") != 0) {
        printf("gcc-arm-none-eabi, libnewlib-arm-none-eabi or qemu-system-arm missing: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_m4f),
        cmocka_unit_test(test_q31_m3),
        cmocka_unit_test(test_q15_m3),
        cmocka_unit_test(test_room_m4f_m3),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
