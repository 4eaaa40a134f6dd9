/* convrec filter: run a model's recurrence over a signal (.npy or audio).
 * Audio in, audio out streams block by block in bounded memory. */
#include "args.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char help[] =
    "usage: convrec filter MODEL.safetensors IN -o OUT [options]\n"
    "\n"
    "Run the recurrence of a model over a signal from zero state. IN is a .npy\n"
    "signal (T,), (C, T) or (B, C, T), float32 or float64 (the output has its\n"
    "shape and dtype), or an audio file (WAV, FLAC, AIFF, ...: whatever\n"
    "libsndfile reads) whose channels are the model's channels; a one-channel\n"
    "model filters every channel of an audio file. OUT ending in .npy is\n"
    "written as .npy, anything else as audio of the input's sample rate and\n"
    "channel count (the container from the extension). Audio to audio streams\n"
    "block by block in bounded memory on one core, with a progress bar on a\n"
    "terminal, and reports the real-time factor.\n"
    "\n"
    "  -o OUT                 the file to write (never one of the inputs)\n"
    "  --subtype float|double|pcm16|pcm24|pcm32|pcm8\n"
    "                         sample format of an audio output (default float:\n"
    "                         32-bit IEEE; 24-bit PCM where the container has no\n"
    "                         float, e.g. FLAC). PCM samples beyond full scale\n"
    "                         are saturated, counted and reported, never wrapped\n"
    "  --force-rate           filter audio whose sample rate differs from the\n"
    "                         model's (an error otherwise)\n"
    "  --rate FS              sample rate of an audio output written from a .npy\n"
    "                         input (default: the model's)\n"
    "  --allow-unstable       run a model that has poles with |lambda| >= 1\n"
    "                         (refused otherwise); each such channel is named\n"
    "                         on stderr: its output grows without bound\n"
    "  -q, --quiet            no progress bar, no report\n"
    "  -h, --help             show this help\n";

/* frames per block of the streaming path */
#define BLOCK 65536

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

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The model's rate against the input's: a difference is an error unless
 * forced (then a warning). */
static int check_rate(const char *cmd, const char *in, double in_rate, double model_rate, int force)
{
    if (!(model_rate > 0) || !(in_rate > 0) || in_rate == model_rate) return CLI_OK;
    if (!force)
        return cli_error(cmd, "%s is sampled at %g Hz but the model was fitted at %g Hz (resample it, "
                         "or --force-rate to filter it anyway)", in, in_rate, model_rate);
    cli_warn(cmd, "%s is sampled at %g Hz, the model at %g Hz: filtering anyway (--force-rate); the "
             "response is scaled in frequency by %g", in, in_rate, model_rate, in_rate / model_rate);
    return CLI_OK;
}

static void report_clipped(const char *cmd, const char *out, size_t clipped, size_t total)
{
    if (clipped)
        cli_warn(cmd, "%s: %zu of %zu samples (%.3g%%) were beyond full scale and clipped (saturated) "
                 "in the PCM output: lower the level or write --subtype float", out, clipped, total,
                 100.0 * (double)clipped / (double)total);
}

/* Audio file to audio file, block by block. */
static int stream_audio(const char *cmd, const cr_model *m, const char *in, const char *out,
                        cr_audio_subtype sub, unsigned flags, int force, int quiet)
{
    cr_model_view v;
    cr_model_get_view(m, &v);
    cr_audio_reader *r = NULL;
    cr_audio_writer *w = NULL;
    cr_stream_d *s = NULL;
    cr_audio_info info;
    double *u = NULL, *y = NULL;
    int rc = CLI_FAIL;
    cr_status st = cr_audio_reader_open(&r, in, &info);
    if (st != CR_OK) return cli_status(cmd, st, "reading the input");
    const size_t Cf = info.channels;
    size_t B = 1;
    if (Cf != v.C) {
        if (v.C != 1) {
            cli_error(cmd, "%s has %zu channels but the model has %zu", in, Cf, v.C);
            goto done;
        }
        B = Cf; /* a mono model on every channel: one stream each */
    }
    if ((rc = check_rate(cmd, in, info.rate, v.rate, force)) != CLI_OK) goto done;
    rc = CLI_FAIL;
    u = malloc(Cf * BLOCK * sizeof *u);
    y = malloc(Cf * BLOCK * sizeof *y);
    if (!u || !y) {
        cli_error(cmd, "out of memory");
        goto done;
    }
    /* one core: the real-time factor means what it says */
    if ((st = cr_stream_d_create(&s, m, B, flags | CR_STREAM_NO_THREADS)) != CR_OK) {
        cli_status(cmd, st, "the recurrence");
        goto done;
    }
    if ((st = cr_audio_writer_open(&w, out, info.rate, Cf, sub)) != CR_OK) {
        cli_status(cmd, st, "writing the output");
        goto done;
    }
    const int bar = !quiet && isatty(STDERR_FILENO);
    const double t0 = now_s();
    double t_rec = 0.0, t_draw = t0;
    size_t done_frames = 0;
    for (;;) {
        size_t got;
        if ((st = cr_audio_reader_read(r, u, BLOCK, BLOCK, &got)) != CR_OK) {
            cli_status(cmd, st, "reading the input");
            goto done;
        }
        if (got == 0) break;
        /* rows of a short block packed at stride got: (B, C, got) */
        for (size_t c = 1; got < BLOCK && c < Cf; c++) memmove(u + c * got, u + c * BLOCK, got * sizeof *u);
        double ta = now_s();
        st = cr_stream_d_block(s, u, got, y);
        t_rec += now_s() - ta;
        if (st != CR_OK) {
            cli_status(cmd, st, "running the recurrence");
            goto done;
        }
        if ((st = cr_audio_writer_write(w, y, got, got)) != CR_OK) {
            cli_status(cmd, st, "writing the output");
            goto done;
        }
        done_frames += got;
        double tn = now_s();
        if (bar && (tn - t_draw > 0.25 || done_frames == info.frames)) {
            t_draw = tn;
            int pct = (int)(100.0 * (double)done_frames / (double)info.frames);
            int fill = pct * 30 / 100;
            fprintf(stderr, "\rfiltering [%.*s%*s] %3d%%  %.1f of %.1f s of audio  %.1f s", fill,
                    "##############################", 30 - fill, "", pct, (double)done_frames / info.rate,
                    (double)info.frames / info.rate, tn - t0);
            fflush(stderr);
        }
    }
    if (bar) fputc('\n', stderr);
    size_t clipped = cr_audio_writer_clipped(w);
    st = cr_audio_writer_close(w, 1);
    w = NULL;
    if (st != CR_OK) {
        cli_status(cmd, st, "writing the output");
        goto done;
    }
    double wall = now_s() - t0, dur = (double)done_frames / info.rate;
    report_clipped(cmd, out, clipped, done_frames * Cf);
    if (!quiet)
        printf("filtered %.2f s of audio (%zu frames x %zu channels at %g Hz) in %.2f s; the recurrence "
               "took %.2f s on one core: %.0fx real time (%.0fx with file I/O)\n",
               dur, done_frames, Cf, info.rate, wall, t_rec, t_rec > 0 ? dur / t_rec : INFINITY,
               wall > 0 ? dur / wall : INFINITY);
    rc = CLI_OK;
done:
    cr_audio_writer_close(w, 0); /* nothing left behind on failure */
    cr_audio_reader_close(r);
    cr_stream_d_destroy(s);
    free(u);
    free(y);
    return rc;
}

int cmd_filter(int argc, char **argv)
{
    const char *out = NULL, *subtype = NULL, *rate_s = NULL;
    int unstable = 0, force = 0, quiet = 0;
    args a = {.cmd = "filter", .help = help};
    const args_opt opts[] = {{"-o", &out, NULL},           {"--allow-unstable", NULL, &unstable},
                             {"--subtype", &subtype, NULL}, {"--force-rate", NULL, &force},
                             {"--rate", &rate_s, NULL},     {"--quiet", NULL, &quiet},
                             {"-q", NULL, &quiet},          {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 2 || out == NULL) return cli_usage(a.cmd, "usage: convrec filter MODEL IN -o OUT");
    cr_audio_subtype sub = CR_AUDIO_DEFAULT;
    if (subtype && cr_audio_subtype_parse(subtype, &sub) != CR_OK)
        return cli_usage(a.cmd, "--subtype must be float, double, pcm16, pcm24, pcm32 or pcm8, not '%s'", subtype);
    const int npy_out = cli_is_npy_out(out), npy_in = cli_is_npy(a.pos[1]);
    if (subtype && npy_out) return cli_usage(a.cmd, "--subtype is for audio outputs, and %s is .npy", out);
    double out_rate = 0;
    if ((rc = cli_parse_rate(a.cmd, rate_s, &out_rate)) != CLI_OK) return rc;
    if (rate_s && !(npy_in && !npy_out))
        return cli_usage(a.cmd, "--rate is for a .npy input written as audio (audio inputs carry their rate)");
    if ((rc = cli_check_output(a.cmd, out, a.pos, 2)) != CLI_OK) return rc;
    cr_model *m;
    cr_status st = cr_model_load_ex(&m, a.pos[0], unstable ? CR_LOAD_ALLOW_UNSTABLE : 0);
    if (st != CR_OK) return cli_status(a.cmd, st, "loading the model");
    cr_model_view v;
    cr_model_get_view(m, &v);
    unsigned flags = unstable ? CR_STREAM_ALLOW_UNSTABLE : 0;
    if (unstable) warn_unstable(a.cmd, a.pos[0], m, v.C);
    if (!npy_in && !npy_out) {
        rc = stream_audio(a.cmd, m, a.pos[1], out, sub, flags, force, quiet);
        cr_model_destroy(m);
        return rc;
    }
    /* the whole signal in memory */
    cr_array u, y = {0};
    double in_rate;
    if ((rc = cli_read_array(a.cmd, a.pos[1], "reading the input", &u, &in_rate)) != CLI_OK) {
        cr_model_destroy(m);
        return rc;
    }
    size_t B, C, T;
    cli_signal_dims(&u, &B, &C, &T);
    rc = CLI_FAIL;
    if (!npy_in) {
        if ((rc = check_rate(a.cmd, a.pos[1], in_rate, v.rate, force)) != CLI_OK) goto done;
        rc = CLI_FAIL;
        if (C != v.C && v.C == 1) { /* a mono model on every channel */
            B = C;
            C = 1;
        }
    } else if (!npy_out) {
        if (!(out_rate > 0)) out_rate = v.rate;
        if (!(out_rate > 0)) {
            cli_error(a.cmd, "%s: an audio output needs a sample rate, and neither the model nor --rate "
                      "gives one", out);
            goto done;
        }
        if ((rc = check_rate(a.cmd, a.pos[1], out_rate, v.rate, force)) != CLI_OK) goto done;
        rc = CLI_FAIL;
        if (B > 1) {
            cli_error(a.cmd, "%s: a (B, C, T) signal of %zu streams cannot be one audio file", a.pos[1], B);
            goto done;
        }
    }
    if (C != v.C) {
        cli_error(a.cmd, "%s has %zu channels but the model has %zu", a.pos[1], C, v.C);
        goto done;
    }
    if ((st = cr_array_alloc(&y, u.dtype, u.ndim, u.shape)) != CR_OK) {
        cli_status(a.cmd, st, "allocating the output");
        goto done;
    }
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
    if (npy_out) {
        st = cr_npy_write(out, &y);
    } else {
        size_t clipped = 0;
        cr_array yv = cli_one_batch(&y);
        st = cr_audio_write(out, &yv, npy_in ? out_rate : in_rate, sub, &clipped);
        if (st == CR_OK) report_clipped(a.cmd, out, clipped, cr_array_count(&y));
    }
    rc = st == CR_OK ? CLI_OK : cli_status(a.cmd, st, "writing the output");
done:
    cr_array_free(&y);
    cr_array_free(&u);
    cr_model_destroy(m);
    return rc;
}
