/* convrec: the command-line tool. Picks the subcommand (one file each,
 * cmd_NAME.c) and sets up the process: BLAS single-threaded. */
#include "cli.h"

#include <string.h>

#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
#include <cblas.h>
/* Exported by OpenBLAS (its fork handler uses it) but in no header. Weak, so
 * that a BLAS without it still links and the call is skipped. */
extern int blas_thread_shutdown_(void) __attribute__((weak));
#endif

static const char usage_text[] =
    "Usage: convrec COMMAND [ARGS]\n"
    "  or:  convrec COMMAND --help\n"
    "  or:  convrec --version | --help\n"
    "\n"
    "Long convolution kernels to small stable recurrences: fit state-space\n"
    "(modal) models to kernel banks, run them, check them, export them.\n"
    "Every command answers -h and --help with all of its options.\n"
    "\n"
    "Commands:\n"
    "  fit KERNELS -o MODEL.safetensors [--order N | --tol EPS | --tol-db X]\n"
    "                        fit a stable modal model to each kernel (default\n"
    "                        --tol 1e-3); options --horizon window|infinite,\n"
    "                        --method auto|bt|hna|pencil, --margin M,\n"
    "                        --max-order N, --threads T, --quiet; audio:\n"
    "                        --rate FS, --weight octave, --trim DB\n"
    "  kernel MODEL --length L -o OUT.npy\n"
    "                        (C, L) float64 impulse responses of a model\n"
    "  filter MODEL IN -o OUT [--allow-unstable] [--subtype S] [--force-rate]\n"
    "                        run the recurrence over (T,), (C, T) or (B, C, T),\n"
    "                        or stream an audio file through it\n"
    "  conv KERNELS IN -o OUT [--threads T] [--subtype S]\n"
    "                        reference FFT convolution, same shapes\n"
    "  hsv KERNELS [-n K] [--horizon window|infinite] [-o OUT.npy] [--json]\n"
    "                        Hankel singular values per channel\n"
    "  info MODEL [--json]\n"
    "                        orders, poles, errors, bounds, stability\n"
    "  export MODEL --format c|sos|json [--name NAME] [-o PATH] [options]\n"
    "                        export for embedded targets (options: --precision\n"
    "                        float|double, --numeric float|q31|q15, --max-error E)\n"
    "  verify MODEL KERNELS [--steps T] [--precision float|double] [options]\n"
    "                        stream through the recurrence and compare with FFT\n"
    "                        convolution by the kernels, and the third-octave band\n"
    "                        errors when the rate is known (options: --seed S,\n"
    "                        --threads T, --rate FS, --json)\n"
    "  study KERNELS... -o DIR [--orders 2,4,8 | 2..64] [options]\n"
    "                        error against order for every method and horizon,\n"
    "                        against the Hankel bounds: DIR/study.json and a page\n"
    "                        (options --horizon, --methods, --channels SPEC)\n"
    "  report MODEL [KERNELS] -o DIR [--channels SPEC] [--format png|pdf|svg]\n"
    "                        one self-contained page of tables and figures for a\n"
    "                        model (or a study.json)\n"
    "                        (study and report run python3 -m convrec: they need\n"
    "                        the Python package and matplotlib)\n"
    "\n"
    "KERNELS and IN are .npy arrays or audio files (WAV, FLAC, AIFF, ...: what\n"
    "libsndfile reads; the channels of a file are the kernels or the signal's\n"
    "channels); an OUT not ending in .npy is written as audio.\n"
    "\n"
    "Exit status: 0 success, 1 bad input or numerical failure, 2 usage error.\n"
    "No output file is ever half-written, and no command writes over one of\n"
    "its inputs. --threads takes 1 to 1024; at most 4 threads per core are used.\n";

static const struct {
    const char *name;
    cli_cmd_fn fn;
} commands[] = {
    {"fit", cmd_fit},       {"kernel", cmd_kernel}, {"filter", cmd_filter},
    {"conv", cmd_conv},     {"hsv", cmd_hsv},       {"info", cmd_info},
    {"export", cmd_export}, {"verify", cmd_verify}, {"study", cmd_study},
    {"report", cmd_report},
};

/* libconvrec calls LAPACK only inside its own per-channel OpenMP loops and
 * wants it single-threaded there (convrec.h, "Threading"); setting that is
 * the caller's job, and this process is the caller. A pthreads OpenBLAS
 * also starts an idle pool at load time whose threads spin on sched_yield
 * for about 0.1 s, stealing cores from the OpenMP threads doing the work:
 * setting one thread does not stop them, shutting the pool down does (it is
 * only restarted for a multi-threaded BLAS call, which no longer happens).
 * Measured on 2 cores (docs/RESULTS.md): `convrec conv` 256 x 8192 system
 * time 39 -> 12 ms; `convrec fit` of 16 kernels x 2048 without a single-
 * threaded BLAS 480 ms, with it 90 ms. An OpenMP OpenBLAS needs nothing:
 * it runs single-threaded inside OpenMP regions and has no pool. */
static void single_threaded_blas(void)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    if (openblas_get_parallel() != 1) return; /* 0: sequential, 2: OpenMP */
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_ != NULL) blas_thread_shutdown_();
#endif
}

int main(int argc, char **argv)
{
    single_threaded_blas();
    if (argc < 2) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("convrec %s\n", cr_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "convrec: unknown command '%s'\n\n%s", argv[1], usage_text);
    return CLI_USAGE;
}
