/* convrec export: a model as embedded C, second-order sections or JSON. */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "usage: convrec export MODEL.safetensors --format c|sos|json [options]\n"
    "\n"
    "Export a stable model for embedded targets or other tools.\n"
    "\n"
    "  --format c             DIR/NAME.h and DIR/NAME.c: a self-contained C99\n"
    "                         filter (no malloc, no libm, no convrec)\n"
    "  --format sos           second-order sections per channel, in the scipy\n"
    "                         and CMSIS-DSP (df2T) layouts, as JSON\n"
    "  --format json          everything in the model, as JSON\n"
    "  --name NAME            C identifier of the filter (default convrec_filter)\n"
    "  --precision float|double\n"
    "                         coefficients and samples of the C filter (default\n"
    "                         float)\n"
    "  --numeric float|q31|q15\n"
    "                         number format of the C filter: float (default), or\n"
    "                         fixed point for cores without an FPU\n"
    "  --max-error E          error budget of a q31 or q15 filter, a number > 0\n"
    "                         or inf (docs/EMBEDDED.md)\n"
    "  -o PATH                the folder (c; created if missing, default .) or\n"
    "                         the file (sos, json; default: stdout); never the\n"
    "                         model itself\n"
    "  -h, --help             show this help\n";

/* The C export writes DIR/NAME.h and DIR/NAME.c: neither may be the model. */
static int check_c_outputs(const char *cmd, const char *dir, const char *name, const char *model)
{
    static const char *const ext[] = {"h", "c"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(dir) + strlen(name) + 4;
        char *p = malloc(n);
        if (p == NULL) return cli_error(cmd, "out of memory");
        snprintf(p, n, "%s/%s.%s", dir, name, ext[i]);
        int rc = cli_check_output(cmd, p, &model, 1);
        free(p);
        if (rc != CLI_OK) return rc;
    }
    return CLI_OK;
}

int cmd_export(int argc, char **argv)
{
    const char *format = NULL, *name = "convrec_filter", *prec = NULL, *out = NULL;
    const char *numeric = NULL, *maxerr = NULL;
    args a = {.cmd = "export", .help = help};
    const args_opt opts[] = {{"--format", &format, NULL},   {"--name", &name, NULL},
                             {"--precision", &prec, NULL},  {"--numeric", &numeric, NULL},
                             {"--max-error", &maxerr, NULL}, {"-o", &out, NULL},
                             {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 1 || format == NULL)
        return cli_usage(a.cmd, "usage: convrec export MODEL --format c|sos|json [--name NAME] "
                                "[--precision float|double] [--numeric float|q31|q15] [--max-error E] [-o PATH]");
    int is_c = strcmp(format, "c") == 0, is_sos = strcmp(format, "sos") == 0, is_json = strcmp(format, "json") == 0;
    if (!is_c && !is_sos && !is_json) return cli_usage(a.cmd, "--format must be c, sos or json, not '%s'", format);
    cr_export_precision p = CR_EXPORT_FLOAT;
    if (prec && strcmp(prec, "double") == 0) p = CR_EXPORT_DOUBLE;
    else if (prec && strcmp(prec, "float") != 0) return cli_usage(a.cmd, "--precision must be float or double");
    if (prec && !is_c) return cli_usage(a.cmd, "--precision applies to --format c only");
    /* --numeric: the number format of the C filter (fixed point for cores
     * without an FPU); --max-error: its error budget (cr_export_c_ex) */
    cr_export_options xo;
    cr_export_options_default(&xo);
    xo.numeric = p == CR_EXPORT_DOUBLE ? CR_NUMERIC_DOUBLE : CR_NUMERIC_FLOAT;
    if (numeric) {
        if (!is_c) return cli_usage(a.cmd, "--numeric applies to --format c only");
        if (strcmp(numeric, "q31") == 0) xo.numeric = CR_NUMERIC_Q31;
        else if (strcmp(numeric, "q15") == 0) xo.numeric = CR_NUMERIC_Q15;
        else if (strcmp(numeric, "float") != 0)
            return cli_usage(a.cmd, "--numeric must be float, q31 or q15, not '%s'", numeric);
        if (prec && xo.numeric != CR_NUMERIC_FLOAT)
            return cli_usage(a.cmd, "--precision applies to --numeric float only");
    }
    if (maxerr) {
        if (xo.numeric != CR_NUMERIC_Q31 && xo.numeric != CR_NUMERIC_Q15)
            return cli_usage(a.cmd, "--max-error applies to --numeric q31 or q15 only");
        if (strcmp(maxerr, "inf") == 0) xo.max_error = INFINITY; /* accept any error */
        else if (cli_parse_double(maxerr, &xo.max_error) != 0 || !(xo.max_error > 0))
            return cli_usage(a.cmd, "--max-error must be a number > 0 or inf, not '%s'", maxerr);
    }

    const char *dir = out ? out : ".";
    rc = is_c ? check_c_outputs(a.cmd, dir, name, a.pos[0]) : cli_check_output(a.cmd, out, &a.pos[0], 1);
    if (rc != CLI_OK) return rc;

    cr_model *m;
    cr_status st = cr_model_load(&m, a.pos[0]);
    if (st != CR_OK) return cli_status(a.cmd, st, "loading the model");
    if (is_c) {
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            rc = cli_error(a.cmd, "%s: cannot create the folder: %s", dir, strerror(errno));
        } else {
            cr_export_report rep;
            st = cr_export_c_ex(m, dir, name, &xo, &rep);
            rc = st == CR_OK ? CLI_OK : cli_status(a.cmd, st, "C export");
            if (rc == CLI_OK) printf("wrote %s/%s.h and %s/%s.c\n", dir, name, dir, name);
            if (rc == CLI_OK && xo.numeric >= CR_NUMERIC_Q31)
                printf("%s: error %.3g (coefficients %.3g, rounding noise %.3g = SNR %.1f dB at full "
                       "scale) in channel %zu, budget %.3g; output shift %d\n",
                       numeric, rep.error, rep.coef_error, rep.noise, -20.0 * log10(rep.noise),
                       rep.channel, rep.budget, rep.output_shift);
        }
    } else if (out) {
        st = is_sos ? cr_export_sos_file(m, out) : cr_export_json(m, out);
        rc = st == CR_OK ? CLI_OK : cli_status(a.cmd, st, "export");
    } else {
        char *s = NULL;
        st = is_sos ? cr_export_sos_string(m, &s) : cr_export_json_string(m, &s);
        rc = st == CR_OK ? CLI_OK : cli_status(a.cmd, st, "export");
        if (s) puts(s);
        free(s);
    }
    cr_model_destroy(m);
    return rc;
}
