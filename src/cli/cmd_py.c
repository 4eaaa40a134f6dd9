/* convrec study, convrec report: drawn with matplotlib, so they live in the
 * Python package (python3 -m convrec study|report); the command hands over
 * to it with execv. The interpreter: $CONVREC_PYTHON, else the one configure
 * found (PYTHON), else /usr/bin/python3. The help texts are here, so that
 * --help (and the man page) work without Python. */
#include "args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char study_help[] =
    "usage: convrec study KERNELS... -o DIR [options]\n"
    "\n"
    "Fit every selected channel of each kernel file at every order, with every\n"
    "method and horizon, and compare the errors with the Hankel-singular-value\n"
    "bounds (sigma_N+1 floor, 2 sum sigma_i>N ceiling). Writes DIR/study.json\n"
    "(every number: errors in each norm, sigma_N+1, sum and 2 sum of sigma_i>N,\n"
    "time per fit, stability margin) and DIR/index.html (errors against order,\n"
    "figures embedded), and prints a table of medians. A progress bar is shown\n"
    "on stderr when it is a terminal; Ctrl-C stops after the fits in progress\n"
    "and keeps what is finished (study.json and the page; exit status 130).\n"
    "Runs python3 -m convrec study (needs the convrec Python package and\n"
    "matplotlib: Debian python3-matplotlib).\n"
    "\n"
    "  KERNELS                .npy (L,) or (C, L) float32/float64, or .wav; one\n"
    "                         family per file, named by the file (or NAME=FILE)\n"
    "  -o DIR                 output folder (made if missing)\n"
    "  --orders LIST          orders N: 2,4,8 or 2..64 (every order from 2 to 64)\n"
    "                         or 2..64:2 (default 2,4,8,16,32,64)\n"
    "  --horizon H            window, infinite, or window,infinite = both\n"
    "                         (default both)\n"
    "  --methods LIST         among auto,bt,hna,pencil (default all four)\n"
    "  --channels SPEC        channels of each file (default all): N, A..B,\n"
    "                         A..B:S, Python slices such as ::16, all; comma lists\n"
    "  --rate FS              sample rate in Hz, recorded (.wav files carry theirs)\n"
    "  --margin M             pole margin of the fits, |lambda| <= 1 - M\n"
    "                         (default: the library's, 1e-6)\n"
    "  --jobs J               channels fitted at once, one thread each (default:\n"
    "                         one per core, at most 2)\n"
    "  --format FMT           also write the figures as DIR/figures/*.FMT: png,\n"
    "                         pdf or svg (comma list)\n"
    "  -q, --quiet            no table on stdout, no progress bar\n"
    "  -h, --help             show this help\n"
    "\n"
    "Environment: CONVREC_PYTHON, the Python 3 to run (default: the one configure\n"
    "found, else /usr/bin/python3).\n";

static const char report_help[] =
    "usage: convrec report MODEL [KERNELS] -o DIR [options]\n"
    "       convrec report DIR/study.json -o DIR2 [options]\n"
    "\n"
    "Write DIR/index.html, one self-contained page (images embedded) for a\n"
    "fitted model and, when given, the kernels it came from: the numbers of\n"
    "`convrec info --json`, one row per channel, and for the chosen channels the\n"
    "kernel and the model's impulse response (linear, and in dB on a log lag\n"
    "axis) with the error, the magnitude responses in dB on a log-frequency axis\n"
    "(Hz when the rate is known) with the error curve, the poles in the unit\n"
    "disk with the margin circle, and the error against the Hankel singular\n"
    "values: sigma_N+1 floor, 2 sum sigma_i>N ceiling. Given a study.json, the\n"
    "page of that study. A model and kernels that do not match (channels,\n"
    "length) are refused before anything is written. Runs python3 -m convrec\n"
    "report (needs the convrec Python package and matplotlib).\n"
    "\n"
    "  MODEL                  a model file (.safetensors), or a study.json\n"
    "  KERNELS                the kernels the model was fitted to (.npy or .wav)\n"
    "  -o DIR                 output folder (made if missing)\n"
    "  --channels SPEC        channels drawn in full (default worst,median): N,\n"
    "                         A..B, A..B:S, Python slices such as ::16, all, and\n"
    "                         worst, median, best (by the relative l2 error of\n"
    "                         the model's horizon); comma lists\n"
    "  --rate FS              sample rate in Hz: time in ms, frequency in Hz\n"
    "  --margin M             the fit's pole margin, drawn as |z| = 1 - M\n"
    "                         (default 1e-6, the fit's default)\n"
    "  --panels auto|channel|family\n"
    "                         study pages: one panel per channel or per family\n"
    "                         (auto: per channel up to 9 channels)\n"
    "  --format FMT           also write the figures as DIR/figures/*.FMT: png,\n"
    "                         pdf or svg (comma list)\n"
    "  -q, --quiet            print nothing on success\n"
    "  -h, --help             show this help\n"
    "\n"
    "Environment: CONVREC_PYTHON, the Python 3 to run (default: the one configure\n"
    "found, else /usr/bin/python3).\n";

/* Run by the interpreter as -c: a clear message when the package (or numpy,
 * or libconvrec under it) cannot be imported, else the package's main. */
static const char bootstrap[] =
    "import sys\n"
    "cmd = sys.argv[1]\n"
    "try:\n"
    "    import convrec.__main__ as m\n"
    "except (ImportError, OSError) as e:\n"
    "    sys.stderr.write('convrec %s: the convrec Python package cannot be imported by %s (%s); '\n"
    "                     'install it (make install) or set CONVREC_PYTHON to a Python that has it\\n'\n"
    "                     % (cmd, sys.executable, e))\n"
    "    sys.exit(1)\n"
    "sys.exit(m.main(sys.argv[1:]))\n";

static int hand_over(const char *cmd, const char *help, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(help, stdout);
            return CLI_OK;
        }
    }
    const char *py = getenv("CONVREC_PYTHON");
    const char *from = "CONVREC_PYTHON";
    if (py == NULL || *py == '\0') {
        py = CONVREC_PYTHON;
        from = "configure's PYTHON";
    }
    if (*py == '\0') {
        py = "/usr/bin/python3";
        from = "the default";
    }
    if (strchr(py, '/') != NULL && access(py, X_OK) != 0)
        return cli_error(cmd, "no Python 3 at %s (%s): %s; install python3 (Debian: python3-numpy "
                         "python3-matplotlib) or set CONVREC_PYTHON", py, from, strerror(errno));
    if ((size_t)argc > ((size_t)-1) / sizeof(char *) - 8) return cli_error(cmd, "too many arguments");
    char **av = malloc(((size_t)argc + 4) * sizeof *av);
    if (av == NULL) return cli_error(cmd, "out of memory");
    av[0] = (char *)py;
    av[1] = (char *)"-c";
    av[2] = (char *)bootstrap;
    av[3] = (char *)cmd;
    for (int i = 1; i < argc; i++) av[3 + i] = argv[i];
    av[argc + 3] = NULL;
    /* the fits want a single-threaded BLAS (convrec.h, "Threading"); numpy
     * loads OpenBLAS before the package could set it */
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
    fflush(NULL);
    if (strchr(py, '/') != NULL) execv(py, av);
    else execvp(py, av);
    int e = errno;
    free(av);
    return cli_error(cmd, "cannot run %s (%s): %s; set CONVREC_PYTHON to a Python 3 that has the convrec "
                     "package", py, from, strerror(e));
}

int cmd_study(int argc, char **argv) { return hand_over("study", study_help, argc, argv); }

int cmd_report(int argc, char **argv) { return hand_over("report", report_help, argc, argv); }
