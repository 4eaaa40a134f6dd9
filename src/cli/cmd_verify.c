/* convrec verify: stream through a model's recurrence and compare with FFT
 * convolution by the kernels it replaces. */
#include "args.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: convrec verify MODEL.safetensors KERNELS [options]\n"
    "\n"
    "Run a random signal and an impulse through the model's recurrence and\n"
    "through FFT convolution with the kernels (C, L) (.npy, an audio file, or a\n"
    "checkpoint's tensor with --tensor),\n"
    "chunk by chunk, and print the relative l2 difference of the outputs per\n"
    "channel and over all. When a sample rate is known (the model's, the audio\n"
    "file's or --rate), also the third-octave band errors of each channel\n"
    "against its kernel (largest and RMS over the bands from 20 Hz to rate/2,\n"
    "dB, and the worst band).\n"
    "\n"
    "  --tensor NAME          KERNELS is a safetensors checkpoint: the kernels are\n"
    "                         its tensor NAME, (L,), (C, L) or a conv1d weight\n"
    "                         (C, 1, L), F32, F64, F16 or BF16\n"
    "  --steps T              samples per run, 1 to 1000000000 (default 1000000)\n"
    "  --precision float|double\n"
    "                         the recurrence's precision (default double)\n"
    "  --seed S               seed of the random signal (default 1)\n"
    "  --threads T            threads of the convolution, 1 to 1024 (default:\n"
    "                         OMP_NUM_THREADS, else one per core)\n"
    "  --rate FS              sample rate in Hz for the band errors (when neither\n"
    "                         the model nor the kernel file has one)\n"
    "  --json                 print the figures as JSON\n"
    "  -h, --help             show this help\n";

static double gauss(uint64_t *s)
{
    /* splitmix64 -> two uniforms -> Box-Muller; reproducible for a seed */
    uint64_t z[2];
    for (int i = 0; i < 2; i++) {
        uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        z[i] = x ^ (x >> 31);
    }
    double u1 = ((double)(z[0] >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(z[1] >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct verify_acc {
    double num, den; /* sum (y_rec - y_conv)^2, sum y_conv^2 */
} verify_acc;

/* Stream T samples of input (random or impulse) through the recurrence and
 * through FFT convolution with h, chunk by chunk so memory stays bounded,
 * and accumulate the squared differences per channel. */
static cr_status verify_run(const cr_model *m, const double *h, size_t C, size_t L, size_t T, int impulse,
                            int precision_float, uint64_t seed, int nthreads, verify_acc *acc)
{
    size_t Tc = ((size_t)1 << 22) / C;
    if (Tc < 256) Tc = 256;
    if (Tc > 65536) Tc = 65536;
    if (Tc > T) Tc = T;
    size_t H = L - 1, W = H + Tc; /* history + chunk */
    double *u = calloc(C * W, sizeof *u), *yc = malloc(C * W * sizeof *yc), *yr = malloc(C * Tc * sizeof *yr);
    float *uf = precision_float ? malloc(C * Tc * sizeof *uf) : NULL;
    float *yf = precision_float ? malloc(C * Tc * sizeof *yf) : NULL;
    cr_stream_d *sd = NULL;
    cr_stream_f *sf = NULL;
    cr_status st = (u && yc && yr && (!precision_float || (uf && yf))) ? CR_OK : CR_ENOMEM;
    if (st == CR_OK) st = precision_float ? cr_stream_f_create(&sf, m, 1, 0) : cr_stream_d_create(&sd, m, 1, 0);
    for (size_t t0 = 0; st == CR_OK && t0 < T; t0 += Tc) {
        size_t n = T - t0 < Tc ? T - t0 : Tc;
        for (size_t c = 0; c < C; c++) {
            double *row = u + c * W;
            memmove(row, row + Tc, H * sizeof *row); /* keep the last L-1 inputs as history */
            for (size_t t = 0; t < n; t++)
                row[H + t] = impulse ? (t0 + t == 0 ? 1.0 : 0.0) : gauss(&seed);
        }
        /* the convolution of the window [t0 - L + 1, t0 + n) gives exact outputs for t0..t0+n-1 */
        for (size_t c = 0; c < C && n < Tc; c++) memset(u + c * W + H + n, 0, (Tc - n) * sizeof *u);
        st = cr_conv_d(h, C, L, u, 1, W, yc, nthreads);
        if (st != CR_OK) break;
        /* the recurrence consumes the same n samples, channel-major (C, n) */
        if (precision_float) {
            for (size_t c = 0; c < C; c++)
                for (size_t t = 0; t < n; t++) uf[c * n + t] = (float)u[c * W + H + t];
            st = cr_stream_f_block(sf, uf, n, yf);
            for (size_t c = 0; c < C * n; c++) yr[c] = yf[c];
        } else {
            for (size_t c = 0; c < C; c++) memcpy(yr + c * n, u + c * W + H, n * sizeof *yr);
            st = cr_stream_d_block(sd, yr, n, yr);
        }
        for (size_t c = 0; st == CR_OK && c < C; c++)
            for (size_t t = 0; t < n; t++) {
                double ref = yc[c * W + H + t], e = yr[c * n + t] - ref;
                acc[c].num += e * e;
                acc[c].den += ref * ref;
            }
    }
    cr_stream_d_destroy(sd);
    cr_stream_f_destroy(sf);
    free(u);
    free(yc);
    free(yr);
    free(uf);
    free(yf);
    return st;
}

int cmd_verify(int argc, char **argv)
{
    const char *steps = NULL, *prec = NULL, *seed_s = NULL, *threads = NULL, *rate_s = NULL;
    const char *tensor = NULL;
    int json = 0;
    args a = {.cmd = "verify", .help = help};
    const args_opt opts[] = {{"--steps", &steps, NULL}, {"--precision", &prec, NULL}, {"--seed", &seed_s, NULL},
                             {"--json", NULL, &json},   {"--threads", &threads, NULL},
                             {"--rate", &rate_s, NULL}, {"--tensor", &tensor, NULL},
                             {NULL, NULL, NULL}};
    int rc = args_scan(&a, argc, argv, opts);
    if (rc != ARGS_GO) return rc;
    if (a.npos != 2)
        return cli_usage(a.cmd, "usage: convrec verify MODEL KERNELS.npy [--steps T] [--precision float|double]");
    size_t T = 1000000, seed = 1;
    if (steps && (cli_parse_size(steps, &T) || T == 0 || T > CLI_MAX_STEPS))
        return cli_usage(a.cmd, "--steps must be an integer from 1 to %u, not '%s'", CLI_MAX_STEPS, steps);
    if (seed_s && cli_parse_size(seed_s, &seed)) return cli_usage(a.cmd, "--seed must be a non-negative integer");
    int pf = 0;
    if (prec && strcmp(prec, "float") == 0) pf = 1;
    else if (prec && strcmp(prec, "double") != 0) return cli_usage(a.cmd, "--precision must be float or double");
    int nth;
    if ((rc = cli_parse_threads(a.cmd, threads, &nth)) != CLI_OK) return rc;
    double rate = 0, file_rate = 0;
    if ((rc = cli_parse_rate(a.cmd, rate_s, &rate)) != CLI_OK) return rc;
    cr_model *m;
    cr_status st = cr_model_load(&m, a.pos[0]);
    if (st != CR_OK) return cli_status(a.cmd, st, "loading the model");
    double *h;
    size_t C, L;
    if ((rc = cli_load_kernels(a.cmd, a.pos[1], tensor, &h, &C, &L, &file_rate)) != CLI_OK) {
        cr_model_destroy(m);
        return rc;
    }
    cr_model_view v;
    cr_model_get_view(m, &v);
    verify_acc *acc = calloc(2 * C, sizeof *acc);
    cr_band_errors *be = calloc(C, sizeof *be);
    /* the model's rate first: the kernels' file and --rate must agree with it */
    if (v.rate > 0 && rate > 0 && rate != v.rate) {
        rc = cli_error(a.cmd, "--rate %g Hz differs from the model's sample rate %g Hz", rate, v.rate);
        goto done;
    }
    if (v.rate > 0) rate = v.rate;
    if ((rc = cli_merge_rate(a.cmd, a.pos[1], file_rate, &rate)) != CLI_OK) goto done;
    int bands = rate > 0 && cr_third_octave_bands(rate, NULL, NULL, NULL, 0) > 0;
    if (C != v.C) {
        rc = cli_error(a.cmd, "%s has %zu kernels but the model has %zu channels", a.pos[1], C, v.C);
        goto done;
    }
    if (acc == NULL || be == NULL) {
        rc = cli_error(a.cmd, "out of memory");
        goto done;
    }
    st = verify_run(m, h, C, L, T, 0, pf, (uint64_t)seed, nth, acc);
    if (st == CR_OK) st = verify_run(m, h, C, L, T < L ? L : T, 1, pf, 0, nth, acc + C);
    for (size_t c = 0; bands && st == CR_OK && c < C; c++)
        st = cr_model_band_errors(m, c, h + c * L, L, rate, &be[c], NULL, 0);
    if (st != CR_OK) {
        rc = cli_status(a.cmd, st, "verification");
        goto done;
    }
    double worst = 0, tot_num = 0, tot_den = 0;
    size_t worst_c = 0;
    if (json) {
        printf("{\"steps\": %zu, \"precision\": \"%s\", ", T, pf ? "float" : "double");
        if (bands) printf("\"sample_rate\": %.17g, ", rate);
        printf("\"channel\": [");
    } else {
        printf("%7s %14s %14s %14s %14s", "channel", "random_rel_l2", "impulse_rel_l2", "err_window",
               "err_infinite");
        if (bands) printf(" %11s %11s %9s", "band_db_max", "band_db_rms", "worst_Hz");
        printf("\n");
    }
    for (size_t c = 0; c < C; c++) {
        double er = acc[c].den > 0 ? sqrt(acc[c].num / acc[c].den) : sqrt(acc[c].num);
        double ei = acc[C + c].den > 0 ? sqrt(acc[C + c].num / acc[C + c].den) : sqrt(acc[C + c].num);
        tot_num += acc[c].num;
        tot_den += acc[c].den;
        if (er > worst || c == 0) { worst = er; worst_c = c; }
        if (json) {
            printf("%s{\"random_rel_l2\": %.6e, \"impulse_rel_l2\": %.6e, \"err_window\": %.6e, "
                   "\"err_infinite\": %.6e", c ? ", " : "", er, ei, v.record[c].err_window, v.record[c].err_infinite);
            if (bands)
                printf(", \"band_db_max\": %.6f, \"band_db_rms\": %.6f, \"band_worst_hz\": %.6f", be[c].db_max,
                       be[c].db_rms, be[c].worst_hz);
            printf("}");
        } else if (C <= 64 || c < 8 || c == C - 1) {
            printf("%7zu %14.6e %14.6e %14.6e %14.6e", c, er, ei, v.record[c].err_window, v.record[c].err_infinite);
            if (bands) printf(" %11.3f %11.3f %9.0f", be[c].db_max, be[c].db_rms, be[c].worst_hz);
            printf("\n");
        } else if (c == 8)
            printf("%7s\n", "...");
    }
    double total = tot_den > 0 ? sqrt(tot_num / tot_den) : sqrt(tot_num);
    if (json)
        printf("], \"random_rel_l2\": %.6e, \"worst_channel\": %zu, \"worst_random_rel_l2\": %.6e}\n", total,
               worst_c, worst);
    else
        printf("%zu steps, %s: output rel l2 over all channels %.6e; worst channel %zu: %.6e\n", T,
               pf ? "float" : "double", total, worst_c, worst);
    rc = CLI_OK;
done:
    free(be);
    free(acc);
    free(h);
    cr_model_destroy(m);
    return rc;
}
