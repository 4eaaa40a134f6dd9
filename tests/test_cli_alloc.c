/* Every allocation of each convrec command failing in turn, in process: the
 * command's own main (src/cli/main.c, compiled here as convrec_main) is run
 * once per allocation k with the k-th one failing (allocfail.h), until a
 * run makes no more than k allocations (that run must succeed). A run whose
 * k-th allocation failed must return 1 with a message on stderr saying it
 * ran out of memory, free every block it allocated (the wrappers count
 * them; in the ASan build LeakSanitizer checks again at exit), and leave
 * no file behind (temporaries included).
 *
 * `test_cli_alloc [-v] [NAME...]`: only the cases whose names start with
 * one of the NAMEs; -v prints each case's allocation count and the known
 * defects. */
#include "config.h"

#include "convrec.h"
#include "allocfail.h"
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>

/* this target compiles the command's files with -Dmain=convrec_main; this
 * file's own main stays main */
#undef main
int convrec_main(int argc, char **argv);

static int verbose, failures, strict, nknown;
static char base[256], out[300], errfile[300];

static char *in(const char *name)
{
    static char p[32][300];
    static int i;
    i = (i + 1) % 32;
    snprintf(p[i], sizeof p[i], "%s/%s", base, name);
    return p[i];
}

static char *o(const char *name)
{
    static char p[32][400];
    static int i;
    i = (i + 1) % 32;
    snprintf(p[i], sizeof p[i], "%s/%s", out, name);
    return p[i];
}


/* run the command with stdout to /dev/null and stderr to errfile */
static int run(int argc, const char *const *args, char *err, size_t cap)
{
    char *argv[24];
    char copy[24][400];
    for (int i = 0; i < argc; i++) {
        snprintf(copy[i], sizeof copy[i], "%s", args[i]);
        argv[i] = copy[i];
    }
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int dn = open("/dev/null", O_WRONLY), ef = open(errfile, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(dn, 1);
    dup2(ef, 2);
    close(dn);
    close(ef);
    int rc = convrec_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    err[0] = '\0';
    FILE *f = fopen(errfile, "r");
    if (f) {
        size_t n = fread(err, 1, cap - 1, f);
        err[n] = '\0';
        fclose(f);
    }
    return rc;
}

static int has_memory(const char *s)
{
    for (; *s; s++)
        if (strncasecmp(s, "memory", 6) == 0) return 1;
    return 0;
}

/* Known defects in code the author of this test does not own, reported to
 * the owners; they print as KNOWN and do not fail (CR_ALLOCFAIL_STRICT=1
 * counts them):
 *   lapack: LAPACKE's workspace malloc failed and fit/hsv report a "LAPACK
 *           failure" (src/fit, src/hankel: CR_ELAPACK, not CR_ENOMEM).
 * And one accepted case: fit's summary, printed after the model is saved,
 * fails with a warning and exit 0 (the model file is whole). */
static int known(const char *name, int rc, const char *err, long leaked)
{
    const char *why = NULL;
    if (strncmp(name, "fit_summary", 11) == 0 && rc == 0 && leaked == 0 && has_memory(err) &&
        allocfail_dir_entries(out, NULL, 0) == 1)
        return 1; /* accepted, not a defect */
    if (strict) return 0;
    if (rc == 1 && strstr(err, "(info -1010)") && leaked == 0) why = "lapack";
    if (!why) return 0;
    nknown++;
    if (verbose) {
        char e[128];
        snprintf(e, sizeof e, "%.127s", err);
        for (char *p = e; *p; p++)
            if (*p == '\n') *p = ' ';
        printf("KNOWN %s (%s): rc %d: %s\n", name, why, rc, e);
    }
    return 1;
}

static void sweep(const char *name, int argc, const char *const *args)
{
    char err[4096], first[256];
    long k = 0;
    allocfail_arm(-1);
    if (run(argc, args, err, sizeof err) != 0) {
        fprintf(stderr, "test_cli_alloc: convrec %s fails without an injected failure: %s\n", name,
                err);
        failures++;
        return;
    }
    for (;; k++) {
        allocfail_dir_empty(out);
        long live0 = allocfail_live();
        allocfail_arm(k);
        int rc = run(argc, args, err, sizeof err);
        int fired = allocfail_fired();
        allocfail_arm(-1);
        long now = allocfail_live(), leaked = live0 >= 0 && now >= 0 ? now - live0 : 0;
        if (!fired) {
            if (rc != 0) {
                fprintf(stderr, "test_cli_alloc: convrec %s: exit %d with no failure injected\n",
                        name, rc);
                failures++;
            }
            break;
        }
        char why[512] = "";
        size_t wl = 0;
#define WHY(...) (wl += (size_t)snprintf(why + wl, sizeof why - wl, __VA_ARGS__))
        if (rc != 1) WHY("exit %d, want 1; ", rc);
        if (!has_memory(err)) WHY("the message does not say it ran out of memory; ");
        if (leaked) WHY("%ld blocks leaked; ", leaked);
        if (allocfail_dir_entries(out, first, sizeof first)) WHY("left %s behind; ", first);
        if (wl && !known(name, rc, err, leaked)) {
            fprintf(stderr, "test_cli_alloc: convrec %s, allocation %ld failing: %s(stderr: %.300s)\n",
                    name, k, why, err);
            failures++;
        }
    }
    allocfail_dir_empty(out);
    if (verbose) printf("convrec %-12s %4ld allocations, each failed once\n", name, k);
}

int main(int argc, char **argv)
{
    int first = 1;
    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "-v") == 0) verbose = 1;
        first++;
    }
    strict = getenv("CR_ALLOCFAIL_STRICT") != NULL;
    snprintf(base, sizeof base, "%s", tu_tmpdir());
    snprintf(out, sizeof out, "%s/out", base);
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", base);
    mkdir(out, 0755);
    /* inputs: two kernels of 40 taps, a (2, 50) float32 signal, a model */
    double h[2 * 40];
    float u[2 * 50];
    for (int k = 0; k < 40; k++) {
        h[k] = pow(0.9, k) * cos(0.3 * k);
        h[40 + k] = pow(0.7, k);
    }
    for (int i = 0; i < 100; i++) u[i] = (float)sin(0.37 * i);
    cr_array ha = {CR_FLOAT64, 2, {2, 40, 1}, h}, ua = {CR_FLOAT32, 2, {2, 50, 1}, u};
    cr_fit_options fo;
    cr_fit_options_default(&fo);
    fo.order = 4;
    fo.nthreads = 1;
    cr_model *m = NULL;
    if (cr_npy_write(in("h.npy"), &ha) != CR_OK || cr_npy_write(in("u.npy"), &ua) != CR_OK ||
        cr_fit(h, 2, 40, &fo, &m) != CR_OK || cr_model_save(m, in("m.safetensors")) != CR_OK) {
        fprintf(stderr, "test_cli_alloc: setup failed: %s\n", cr_error_detail());
        return 1;
    }
    cr_model_destroy(m);
    const char *model = in("m.safetensors"), *hk = in("h.npy"), *us = in("u.npy");
    struct {
        const char *name;
        const char *args[16];
    } cases[] = {
        {"fit", {"convrec", "fit", hk, "-o", o("m.safetensors"), "--order", "2", "--method", "bt",
                 "--quiet", "--threads", "1"}},
        {"fit_summary", {"convrec", "fit", hk, "-o", o("m.safetensors"), "--order", "2",
                         "--method", "bt", "--threads", "1"}},
        {"kernel", {"convrec", "kernel", model, "--length", "64", "-o", o("k.npy")}},
        {"filter", {"convrec", "filter", model, us, "-o", o("y.npy")}},
        {"conv", {"convrec", "conv", hk, us, "-o", o("y.npy"), "--threads", "1"}},
        {"hsv", {"convrec", "hsv", hk, "-n", "4", "-o", o("s.npy")}},
        {"info", {"convrec", "info", model}},
        {"info_json", {"convrec", "info", model, "--json"}},
        {"export_c", {"convrec", "export", model, "--format", "c", "--name", "flt", "-o", out}},
        {"export_sos", {"convrec", "export", model, "--format", "sos", "-o", o("sos.json")}},
        {"export_json", {"convrec", "export", model, "--format", "json", "-o", o("m.json")}},
        {"verify", {"convrec", "verify", model, hk, "--steps", "200"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int want = argc <= first;
        for (int j = first; j < argc; j++)
            if (strncmp(cases[i].name, argv[j], strlen(argv[j])) == 0) want = 1;
        if (!want) continue;
        int n = 0;
        while (n < 16 && cases[i].args[n]) n++;
        sweep(cases[i].name, n, cases[i].args);
    }
    unlink(errfile);
    unlink(in("h.npy"));
    unlink(in("u.npy"));
    unlink(in("m.safetensors"));
    rmdir(out);
    rmdir(base);
    if (nknown)
        printf("test_cli_alloc: %d injected failures mishandled by known defects (not counted; "
               "-v lists them, CR_ALLOCFAIL_STRICT=1 counts them)\n", nknown);
    if (failures) fprintf(stderr, "test_cli_alloc: %d failures\n", failures);
    return failures ? 1 : 0;
}
