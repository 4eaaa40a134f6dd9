/* Export: generated C compiled and run on the host (and cross-compiled for
 * Cortex-M4F when the toolchain exists), second-order sections, JSON. */
#include "config.h" /* feature macros before any system header */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "convrec.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];
static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cr_test_export_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
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
        cmocka_unit_test(test_export_c_args),  cmocka_unit_test(test_sos),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
