/* convrec fit: a stable modal model for each kernel of a bank. */
#include "args.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char help[] =
    "usage: convrec fit KERNELS -o MODEL.safetensors [options]\n"
    "\n"
    "Fit a stable modal (state-space) model to each kernel of a bank: a .npy\n"
    "array of shape (L,) or (C, L), float32 or float64, or an audio file (WAV,\n"
    "FLAC, AIFF, ... whose channels are the kernels; its sample rate is\n"
    "recorded in the model), or a tensor of a safetensors checkpoint (--tensor).\n"
    "Prints a summary of the errors.\n"
    "\n"
    "  -o MODEL.safetensors   the model file to write (never one of the inputs)\n"
    "  --tensor NAME          KERNELS is a safetensors checkpoint: the kernels are\n"
    "                         its tensor NAME, (L,), (C, L) or a conv1d weight\n"
    "                         (C, 1, L), F32, F64, F16 or BF16\n"
    "  --order N              fixed order N (real state dimension) per channel\n"
    "  --tol EPS              smallest order whose relative l2 error is <= EPS\n"
    "                         (the default is --tol 1e-3, or --tol-db 1 with\n"
    "                         --weight octave; give one of --order, --tol and\n"
    "                         --tol-db)\n"
    "  --tol-db X             smallest order whose largest third-octave band\n"
    "                         error is <= X dB (needs a sample rate)\n"
    "  --rate FS              the sample rate in Hz (audio files carry theirs):\n"
    "                         recorded in the model, and every channel's record\n"
    "                         gets its third-octave band errors (20 Hz .. FS/2)\n"
    "  --weight none|octave   octave: every third-octave band from 20 Hz to FS/2\n"
    "                         counts equally (band levels in dB and the band-\n"
    "                         relative complex error; docs/MATH.md \"Weighted\n"
    "                         fits\"); needs a sample rate. none (default): the\n"
    "                         l2 error of the horizon\n"
    "  --trim DB              cut the leading silence and the noise tail of a\n"
    "                         measured response: keep from the first sample that\n"
    "                         reaches DB below the peak (60 and -60 alike) to the\n"
    "                         last where the 1 ms RMS envelope (64 samples without\n"
    "                         a rate) still does, the same range for every\n"
    "                         channel; says what it cut\n"
    "  --horizon window|infinite\n"
    "                         window (default): error on k < L only, the model\n"
    "                         beyond L only has to be stable; infinite: the\n"
    "                         kernel ends at L and the model's tail is error\n"
    "  --method auto|bt|hna|pencil\n"
    "                         auto (default): best of balanced truncation and\n"
    "                         matrix pencil, refined by variable projection\n"
    "  --margin M             every pole has |lambda| <= 1 - M, 0 <= M < 1\n"
    "                         (default 1e-6)\n"
    "  --max-order N          cap of the order chosen by --tol\n"
    "                         (default min(L - 1, 256))\n"
    "  --threads T            threads across channels, 1 to 1024 (default:\n"
    "                         OMP_NUM_THREADS, else one per core; at most 4 per\n"
    "                         core and one per channel are used)\n"
    "  -q, --quiet            no summary on stdout, no progress bar on stderr\n"
    "                         (the bar is shown only when stderr is a terminal)\n"
    "  -h, --help             show this help\n";

/* ---- progress on stderr ---- */
/* A bar redrawn every half second by a thread of its own, so that a single
 * long channel (cr_fit reports whole channels only) still shows that the
 * work goes on, with the time spent. Shown only when stderr is a terminal:
 * scripts get a stderr that holds errors only. */
typedef struct progress {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int stop;
    size_t done, total;
    struct timespec t0;
} progress;

static void progress_draw(progress *p, int final)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs = (double)(now.tv_sec - p->t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - p->t0.tv_nsec);
    int pct = p->total ? (int)(100.0 * (double)p->done / (double)p->total) : 100;
    int w = 30, fill = pct * w / 100;
    fprintf(stderr, "\rfitting [%.*s%*s] %3d%%  %zu/%zu channels  %.0f s", fill,
            "##############################", w - fill, "", pct, p->done, p->total, secs);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static void *progress_main(void *arg)
{
    progress *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        progress_draw(p, 0);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 500000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->wake, &p->lock, &until);
    }
    progress_draw(p, 1);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void progress_update(void *ctx, size_t done, size_t total)
{
    progress *p = ctx;
    pthread_mutex_lock(&p->lock);
    p->done = done;
    p->total = total;
    pthread_mutex_unlock(&p->lock);
}

/* Returns 0 when the bar runs (progress_stop must follow). */
static int progress_start(progress *p, size_t total)
{
    memset(p, 0, sizeof *p);
    p->total = total;
    clock_gettime(CLOCK_MONOTONIC, &p->t0);
    if (pthread_mutex_init(&p->lock, NULL) != 0) return -1;
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        return -1;
    }
    if (pthread_create(&p->thread, NULL, progress_main, p) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        return -1;
    }
    return 0;
}

static void progress_stop(progress *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
}

/* --trim: keep [first, end) of every channel (cr_kernel_trim), in place;
 * says what it cut on stdout (unless quiet). */
static int trim_bank(const char *cmd, const char *path, double *h, size_t C, size_t *L, double rate,
                     double db, int quiet)
{
    size_t first, end, L0 = *L;
    size_t win = rate > 0 ? (size_t)llround(rate / 1000.0) : 64;
    if (win < 1) win = 1;
    cr_status st = cr_kernel_trim(h, C, L0, db, win, &first, &end);
    if (st != CR_OK) return cli_status(cmd, st, path);
    size_t L1 = end - first;
    if (L1 < 2) return cli_error(cmd, "%s: --trim %g leaves %zu sample(s): nothing to fit", path, db, L1);
    for (size_t c = 0; c < C; c++) memmove(h + c * L1, h + c * L0 + first, L1 * sizeof *h);
    *L = L1;
    if (!quiet) {
        if (rate > 0)
            printf("trim %g dB: cut %zu leading samples (%.2f ms) and %zu tail samples (%.3f s); "
                   "length %zu -> %zu\n", db, first, 1e3 * (double)first / rate, L0 - end,
                   (double)(L0 - end) / rate, L0, L1);
        else
            printf("trim %g dB: cut %zu leading and %zu tail samples; length %zu -> %zu\n", db, first,
                   L0 - end, L0, L1);
    }
    return CLI_OK;
}

int cmd_fit(int argc, char **argv)
{
    const char *out = NULL, *order = NULL, *tol = NULL, *horizon = NULL, *method = NULL;
    const char *margin = NULL, *maxo = NULL, *threads = NULL, *tol_db = NULL, *rate_s = NULL;
    const char *weight = NULL, *trim = NULL, *tensor = NULL;
    int quiet = 0;
    args a = {.cmd = "fit", .help = help};
    const args_opt opts[] = {{"-o", &out, NULL},           {"--order", &order, NULL},
                             {"--tol", &tol, NULL},        {"--horizon", &horizon, NULL},
                             {"--method", &method, NULL},  {"--margin", &margin, NULL},
                             {"--max-order", &maxo, NULL}, {"--threads", &threads, NULL},
                             {"--quiet", NULL, &quiet},    {"-q", NULL, &quiet},
                             {"--tol-db", &tol_db, NULL},  {"--rate", &rate_s, NULL},
                             {"--weight", &weight, NULL},  {"--trim", &trim, NULL},
                             {"--tensor", &tensor, NULL},
                             {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 1 || out == NULL)
        return cli_usage(a.cmd, "usage: convrec fit KERNELS -o MODEL.safetensors [--order N | --tol EPS | --tol-db X]");
    cr_fit_options o;
    cr_fit_options_default(&o);
    if ((order != NULL) + (tol != NULL) + (tol_db != NULL) > 1)
        return cli_usage(a.cmd, "give one of --order, --tol and --tol-db");
    if (tol_db && (cli_parse_double(tol_db, &o.tol_db) || !(o.tol_db > 0)))
        return cli_usage(a.cmd, "--tol-db must be a positive number of dB, not '%s'", tol_db);
    if ((rc = cli_parse_rate(a.cmd, rate_s, &o.rate)) != CLI_OK) return rc;
    if (weight) {
        if (strcmp(weight, "none") == 0) o.weight = CR_WEIGHT_NONE;
        else if (strcmp(weight, "octave") == 0) o.weight = CR_WEIGHT_OCTAVE;
        else return cli_usage(a.cmd, "--weight must be none or octave, not '%s'", weight);
    }
    double trim_db = 0;
    if (trim && (cli_parse_double(trim, &trim_db) || trim_db == 0 || fabs(trim_db) > 400))
        return cli_usage(a.cmd, "--trim must be a level in dB below the peak (e.g. 60), not '%s'", trim);
    if (order && (cli_parse_size(order, &o.order) || o.order == 0))
        return cli_usage(a.cmd, "--order must be a positive integer, not '%s'", order);
    if (tol && (cli_parse_double(tol, &o.tol) || !(o.tol > 0)))
        return cli_usage(a.cmd, "--tol must be a positive number, not '%s'", tol);
    /* the default criterion: l2 1e-3, or 1 dB per band for a weighted fit
     * (whose l2 error is not what it minimises) */
    if (!order && !tol && !tol_db) {
        if (o.weight == CR_WEIGHT_OCTAVE) o.tol_db = 1.0;
        else o.tol = 1e-3;
    }
    if (order) o.tol = 0;
    if ((rc = cli_parse_horizon(a.cmd, horizon, &o.horizon)) != CLI_OK) return rc;
    if (method) {
        if (strcmp(method, "auto") == 0) o.method = CR_METHOD_AUTO;
        else if (strcmp(method, "bt") == 0) o.method = CR_METHOD_BT;
        else if (strcmp(method, "hna") == 0) o.method = CR_METHOD_HNA;
        else if (strcmp(method, "pencil") == 0) o.method = CR_METHOD_PENCIL;
        else return cli_usage(a.cmd, "--method must be auto, bt, hna or pencil, not '%s'", method);
    }
    if (margin && (cli_parse_double(margin, &o.margin) || !(o.margin >= 0) || !(o.margin < 1)))
        return cli_usage(a.cmd, "--margin must be in [0, 1), not '%s'", margin);
    if (maxo && (cli_parse_size(maxo, &o.max_order) || o.max_order == 0))
        return cli_usage(a.cmd, "--max-order must be a positive integer");
    if ((rc = cli_parse_threads(a.cmd, threads, &o.nthreads)) != CLI_OK) return rc;
    if ((rc = cli_check_output(a.cmd, out, &a.pos[0], 1)) != CLI_OK) return rc;

    double *h, file_rate;
    size_t C, L;
    if ((rc = cli_load_kernels(a.cmd, a.pos[0], tensor, &h, &C, &L, &file_rate)) != CLI_OK) return rc;
    if ((rc = cli_merge_rate(a.cmd, a.pos[0], file_rate, &o.rate)) != CLI_OK) {
        free(h);
        return rc;
    }
    if (!(o.rate > 0) && (o.weight == CR_WEIGHT_OCTAVE || o.tol_db > 0)) {
        free(h);
        return cli_usage(a.cmd, "%s needs a sample rate: give --rate FS or an audio file",
                         tol_db ? "--tol-db" : "--weight octave");
    }
    if (trim && (rc = trim_bank(a.cmd, a.pos[0], h, C, &L, o.rate, -fabs(trim_db), quiet)) != CLI_OK) {
        free(h);
        return rc;
    }
    progress pr;
    int bar = !quiet && isatty(STDERR_FILENO) && progress_start(&pr, C) == 0;
    if (bar) {
        o.progress = progress_update;
        o.progress_ctx = &pr;
    }
    cr_model *m = NULL;
    cr_status st = cr_fit(h, C, L, &o, &m);
    if (bar) progress_stop(&pr);
    free(h);
    if (st != CR_OK) return cli_status(a.cmd, st, a.pos[0]);
    st = cr_model_save(m, out);
    if (st != CR_OK) {
        cr_model_destroy(m);
        return cli_status(a.cmd, st, "saving the model");
    }
    if (!quiet && cli_print_summary(stdout, m) != 0) /* the model is saved: say so, exit 0 */
        cli_warn(a.cmd, "out of memory: the summary is not printed (%s is written)", out);
    cr_model_destroy(m);
    return CLI_OK;
}
