/* convrec conv: the reference FFT convolution of signals with kernels. */
#include "args.h"

static const char help[] =
    "usage: convrec conv KERNELS IN -o OUT [--threads T]\n"
    "\n"
    "Causal convolution y[t] = sum_k h[k] u[t-k] of each channel of a signal\n"
    "(T,), (C, T) or (B, C, T) with its kernel of a bank (L,) or (C, L), by FFT.\n"
    "The output has the shape and dtype (float32 or float64) of the signal.\n"
    "Kernels and signal may also be audio files (WAV, FLAC, AIFF, ...; the\n"
    "channels of a file are the kernels or the signal's channels; one kernel\n"
    "filters every channel of an audio signal); OUT ending\n"
    "in .npy is written as .npy, anything else as audio at the signal's rate\n"
    "(or the kernels', or --rate).\n"
    "\n"
    "  -o OUT                 the file to write (never one of the inputs)\n"
    "  --subtype float|double|pcm16|pcm24|pcm32|pcm8\n"
    "                         sample format of an audio output (default float;\n"
    "                         PCM samples beyond full scale are saturated and\n"
    "                         counted)\n"
    "  --rate FS              sample rate of an audio output when no input has one\n"
    "  --threads T            threads, 1 to 1024 (default: OMP_NUM_THREADS, else\n"
    "                         one per core; at most 4 per core are used)\n"
    "  -h, --help             show this help\n";

int cmd_conv(int argc, char **argv)
{
    const char *out = NULL, *threads = NULL, *subtype = NULL, *rate_s = NULL;
    args a = {.cmd = "conv", .help = help};
    const args_opt opts[] = {{"-o", &out, NULL},           {"--threads", &threads, NULL},
                             {"--subtype", &subtype, NULL}, {"--rate", &rate_s, NULL},
                             {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 2 || out == NULL) return cli_usage(a.cmd, "usage: convrec conv KERNELS IN -o OUT");
    cr_audio_subtype sub = CR_AUDIO_DEFAULT;
    if (subtype && cr_audio_subtype_parse(subtype, &sub) != CR_OK)
        return cli_usage(a.cmd, "--subtype must be float, double, pcm16, pcm24, pcm32 or pcm8, not '%s'", subtype);
    if (subtype && cli_is_npy_out(out)) return cli_usage(a.cmd, "--subtype is for audio outputs, and %s is .npy", out);
    double rate = 0, hrate, urate;
    if ((rc = cli_parse_rate(a.cmd, rate_s, &rate)) != CLI_OK) return rc;
    int nth;
    if ((rc = cli_parse_threads(a.cmd, threads, &nth)) != CLI_OK) return rc;
    if ((rc = cli_check_output(a.cmd, out, a.pos, 2)) != CLI_OK) return rc;

    cr_array h, u, y = {0};
    cr_status st;
    if ((rc = cli_read_array(a.cmd, a.pos[0], "reading kernels", &h, &hrate)) != CLI_OK) return rc;
    if ((rc = cli_read_array(a.cmd, a.pos[1], "reading input", &u, &urate)) != CLI_OK) {
        cr_array_free(&h);
        return rc;
    }
    rc = CLI_FAIL;
    size_t C = h.ndim == 1 ? 1 : h.shape[0], L = h.ndim == 1 ? h.shape[0] : h.shape[1];
    size_t B, Cu, T;
    cli_signal_dims(&u, &B, &Cu, &T);
    if (h.ndim > 2) {
        cli_error(a.cmd, "%s: kernels must have shape (L,) or (C, L)", a.pos[0]);
        goto done;
    }
    if (!cli_is_npy(a.pos[1]) && C == 1 && Cu > 1) { /* one kernel for every channel of an audio file */
        B = Cu;
        Cu = 1;
    }
    if (Cu != C) {
        cli_error(a.cmd, "%s has %zu channels but %s has %zu kernels", a.pos[1], Cu, a.pos[0], C);
        goto done;
    }
    /* a fresh 16 MiB output faults in far faster on huge pages */
    st = cr_array_alloc(&y, u.dtype, u.ndim, u.shape);
    if (st != CR_OK) {
        cli_status(a.cmd, st, "allocating the output");
        goto done;
    }
    if (u.dtype == CR_FLOAT64) {
        if (cli_to_f64(&h) == 0) st = cr_conv_d(h.data, C, L, u.data, B, T, y.data, nth);
        else st = CR_ENOMEM;
    } else {
        if (cli_to_f32(&h) == 0) st = cr_conv_f(h.data, C, L, u.data, B, T, y.data, nth);
        else st = CR_ENOMEM;
    }
    if (st != CR_OK) {
        cli_status(a.cmd, st, "convolution");
        goto done;
    }
    if (cli_is_npy_out(out)) {
        st = cr_npy_write(out, &y);
    } else {
        if (urate > 0 && hrate > 0 && urate != hrate)
            cli_warn(a.cmd, "%s is sampled at %g Hz and %s at %g Hz: the output takes the signal's rate",
                     a.pos[1], urate, a.pos[0], hrate);
        double r = urate > 0 ? urate : hrate > 0 ? hrate : rate;
        if (!(r > 0)) {
            cli_error(a.cmd, "%s: an audio output needs a sample rate: give --rate FS", out);
            goto done;
        }
        if (u.ndim == 3 && B > 1) {
            cli_error(a.cmd, "%s: a (B, C, T) signal of %zu streams cannot be one audio file", a.pos[1], B);
            goto done;
        }
        cr_array yv = cli_one_batch(&y);
        size_t clipped = 0;
        st = cr_audio_write(out, &yv, r, sub, &clipped);
        if (st == CR_OK && clipped)
            cli_warn(a.cmd, "%s: %zu samples were beyond full scale and clipped (saturated) in the PCM output",
                     out, clipped);
    }
    rc = st == CR_OK ? CLI_OK : cli_status(a.cmd, st, "writing the output");
done:
    cr_array_free(&y);
    cr_array_free(&h);
    cr_array_free(&u);
    return rc;
}
