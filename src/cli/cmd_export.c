/* convrec export: a model as embedded C, second-order sections or JSON. */
#include "args.h"

#include <errno.h>
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
    args a = {.cmd = "export", .help = help};
    const args_opt opts[] = {{"--format", &format, NULL}, {"--name", &name, NULL}, {"--precision", &prec, NULL},
                             {"-o", &out, NULL},          {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 1 || format == NULL)
        return cli_usage(a.cmd, "usage: convrec export MODEL --format c|sos|json [--name NAME] [-o PATH]");
    int is_c = strcmp(format, "c") == 0, is_sos = strcmp(format, "sos") == 0, is_json = strcmp(format, "json") == 0;
    if (!is_c && !is_sos && !is_json) return cli_usage(a.cmd, "--format must be c, sos or json, not '%s'", format);
    cr_export_precision p = CR_EXPORT_FLOAT;
    if (prec && strcmp(prec, "double") == 0) p = CR_EXPORT_DOUBLE;
    else if (prec && strcmp(prec, "float") != 0) return cli_usage(a.cmd, "--precision must be float or double");
    if (prec && !is_c) return cli_usage(a.cmd, "--precision applies to --format c only");
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
            st = cr_export_c(m, dir, name, p);
            rc = st == CR_OK ? CLI_OK : cli_status(a.cmd, st, "C export");
            if (rc == CLI_OK) printf("wrote %s/%s.h and %s/%s.c\n", dir, name, dir, name);
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
