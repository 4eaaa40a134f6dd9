/* libFuzzer harness: the convrec command's argument handling, through the
 * real entry point (src/cli/main.c's main, compiled here as convrec_main):
 * the option scanner (args.c), the number and name parsers (cli.c) and each
 * command's checks of its options, down to running it on tiny inputs.
 *
 * Input: byte 0 picks the command (or none: main's own words), the rest is
 * split at NUL bytes into at most 16 arguments. Every command must return
 * an exit status (0, 1 or 2), never crash or leak; -o/--name values are
 * plain names in a scratch folder (the harness skips arguments holding '/'
 * or "..", so nothing outside it can be written), and the inputs there are
 * written anew for every run (h.npy (2, 16) kernels, u.npy (2, 32) and
 * u3.npy (1, 2, 32) signals, m.safetensors a model fitted to h.npy). Numbers
 * between 1e5 and 1e12 are skipped: a valid request that big (--length,
 * --steps) is honoured with a big allocation or a long run, not a bug. */
#include "fuzzutil.h"

#include "convrec.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>

int convrec_main(int argc, char **argv);

#define MAXARG 16
static char dir[128];
static unsigned char *h_npy, *u_npy, *u3_npy, *model_st;
static size_t h_n, u_n, u3_n, model_n;

static unsigned char *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    CHECK(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    CHECK(b && fread(b, 1, *n, f) == *n);
    fclose(f);
    return b;
}

static void spit(const char *name, const unsigned char *b, size_t n)
{
    FILE *f = fopen(name, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* the inputs, made once with the library, kept as bytes */
static void setup(void)
{
    snprintf(dir, sizeof dir, "%s", fz_scratch("-cli"));
    CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
    CHECK(chdir(dir) == 0);
    double h[2 * 16], u[2 * 32];
    for (int k = 0; k < 16; k++) {
        h[k] = pow(0.8, k) * cos(0.5 * k);
        h[16 + k] = pow(0.6, k);
    }
    for (int i = 0; i < 64; i++) u[i] = sin(0.3 * i) + 0.1 * (i % 3);
    cr_array a = {CR_FLOAT64, 2, {2, 16, 1}, h};
    CHECK(cr_npy_write("h.npy", &a) == CR_OK);
    cr_array b = {CR_FLOAT64, 2, {2, 32, 1}, u};
    CHECK(cr_npy_write("u.npy", &b) == CR_OK);
    cr_array c = {CR_FLOAT64, 3, {1, 2, 32}, u};
    CHECK(cr_npy_write("u3.npy", &c) == CR_OK);
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.order = 4;
    o.nthreads = 1;
    cr_model *m = NULL;
    CHECK(cr_fit(h, 2, 16, &o, &m) == CR_OK);
    CHECK(cr_model_save(m, "m.safetensors") == CR_OK);
    cr_model_destroy(m);
    h_npy = slurp("h.npy", &h_n);
    u_npy = slurp("u.npy", &u_n);
    u3_npy = slurp("u3.npy", &u3_n);
    model_st = slurp("m.safetensors", &model_n);
}

static int skip_arg(const char *s)
{
    if (strchr(s, '/') || strstr(s, "..")) return 1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s && *end == '\0' && fabs(v) >= 1e5 && fabs(v) < 1e12) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static const char *const cmds[] = {"fit", "kernel", "filter", "conv", "hsv",
                                       "info", "export", "verify", NULL};
    if (!h_npy) setup();
    if (n == 0 || n > 1024) return 0;
    char buf[1100];
    memcpy(buf, d + 1, n - 1);
    buf[n - 1] = '\0';
    char *argv[MAXARG + 3];
    int argc = 0;
    argv[argc++] = (char *)"convrec";
    const char *cmd = cmds[d[0] % 9];
    if (cmd) argv[argc++] = (char *)cmd;
    for (size_t i = 0; i < n - 1 && argc < MAXARG + 2;) {
        char *s = buf + i;
        size_t l = strlen(s);
        if (skip_arg(s)) return 0;
        argv[argc++] = s;
        i += l + 1;
    }
    argv[argc] = NULL;
    /* study and report hand the process over to Python (execv): not the C
     * parser's business, and the harness would end with them */
    if (argc >= 2 && (strcmp(argv[1], "study") == 0 || strcmp(argv[1], "report") == 0)) return 0;
    /* fresh inputs, and nothing else in the folder */
    spit("h.npy", h_npy, h_n);
    spit("u.npy", u_npy, u_n);
    spit("u3.npy", u3_npy, u3_n);
    spit("m.safetensors", model_st, model_n);
    int rc = convrec_main(argc, argv);
    CHECK(rc == 0 || rc == 1 || rc == 2);
    fflush(stdout);
    return 0;
}
