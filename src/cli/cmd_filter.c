/* convrec filter: run a model's recurrence over a signal. */
#include "args.h"

static const char help[] =
    "usage: convrec filter MODEL.safetensors IN.npy -o OUT.npy [--allow-unstable]\n"
    "\n"
    "Run the recurrence of a model over a signal (T,), (C, T) or (B, C, T),\n"
    "float32 or float64, from zero state; the output has the signal's shape\n"
    "and dtype. Streams and channel blocks of long signals are spread over\n"
    "OpenMP threads (OMP_NUM_THREADS, at most 4 per core).\n"
    "\n"
    "  -o OUT.npy             the file to write (never one of the inputs)\n"
    "  --allow-unstable       run a model that has poles with |lambda| >= 1\n"
    "                         (refused otherwise); each such channel is named\n"
    "                         on stderr: its output grows without bound\n"
    "  -h, --help             show this help\n";

/* Name the unstable channels loudly; the first few, then a count. */
static void warn_unstable(const char *cmd, const char *path, const cr_model *m, size_t C)
{
    size_t n = 0;
    for (size_t c = 0; c < C; c++) {
        double r = cr_model_spectral_radius(m, c);
        if (!(r >= 1)) continue;
        if (n++ < 8)
            cli_warn(cmd, "%s: channel %zu is UNSTABLE (|lambda| = %.9f): its output grows without bound", path, c, r);
    }
    if (n > 8) cli_warn(cmd, "%s: %zu more unstable channels", path, n - 8);
}

int cmd_filter(int argc, char **argv)
{
    const char *out = NULL;
    int unstable = 0;
    args a = {.cmd = "filter", .help = help};
    const args_opt opts[] = {{"-o", &out, NULL}, {"--allow-unstable", NULL, &unstable}, {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 2 || out == NULL) return cli_usage(a.cmd, "usage: convrec filter MODEL IN.npy -o OUT.npy");
    if ((rc = cli_check_output(a.cmd, out, a.pos, 2)) != CLI_OK) return rc;
    cr_model *m;
    cr_status st = cr_model_load_ex(&m, a.pos[0], unstable ? CR_LOAD_ALLOW_UNSTABLE : 0);
    if (st != CR_OK) return cli_status(a.cmd, st, "loading the model");
    cr_array u, y = {0};
    st = cr_npy_read(a.pos[1], &u);
    if (st != CR_OK) {
        cr_model_destroy(m);
        return cli_status(a.cmd, st, "reading the input");
    }
    cr_model_view v;
    cr_model_get_view(m, &v);
    size_t B, C, T;
    cli_signal_dims(&u, &B, &C, &T);
    rc = CLI_FAIL;
    if (C != v.C) {
        cli_error(a.cmd, "%s has %zu channels but the model has %zu", a.pos[1], C, v.C);
        goto done;
    }
    if ((st = cr_array_alloc(&y, u.dtype, u.ndim, u.shape)) != CR_OK) {
        cli_status(a.cmd, st, "allocating the output");
        goto done;
    }
    if (unstable) warn_unstable(a.cmd, a.pos[0], m, C);
    unsigned flags = unstable ? CR_STREAM_ALLOW_UNSTABLE : 0;
    if (u.dtype == CR_FLOAT64) {
        cr_stream_d *s;
        st = cr_stream_d_create(&s, m, B, flags);
        if (st == CR_OK) st = cr_stream_d_block(s, u.data, T, y.data);
        cr_stream_d_destroy(s);
    } else {
        cr_stream_f *s;
        st = cr_stream_f_create(&s, m, B, flags);
        if (st == CR_OK) st = cr_stream_f_block(s, u.data, T, y.data);
        cr_stream_f_destroy(s);
    }
    if (st != CR_OK) {
        cli_status(a.cmd, st, "running the recurrence");
        goto done;
    }
    st = cr_npy_write(out, &y);
    rc = st == CR_OK ? CLI_OK : cli_status(a.cmd, st, "writing the output");
done:
    cr_array_free(&y);
    cr_array_free(&u);
    cr_model_destroy(m);
    return rc;
}
