/* The convrec command: helpers shared by the subcommands (cli.c). The
 * command uses only the public API of libconvrec ("convrec.h"). */
#ifndef CONVREC_CLI_H
#define CONVREC_CLI_H

#include "config.h"
#include "convrec.h"

#include <stddef.h>
#include <stdio.h>

/* Exit codes: 0 success, 1 failure (bad input, numerical failure), 2 usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Limits of the command line, stated in the help texts and the README. */
#define CLI_MAX_THREADS 1024             /* --threads T: 1 <= T <= 1024 */
#define CLI_MAX_STEPS 1000000000u        /* verify --steps: at most 10^9 */
#define CLI_MAX_OUTPUT_BYTES ((size_t)16 << 30) /* one output array: 16 GiB */

/* Print "convrec CMD: message" to stderr; returns CLI_FAIL. */
int cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The same, followed by a pointer to the command's help; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "convrec CMD: warning: message" on stderr. */
void cli_warn(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Report a failed library call: status text and the library's detail. */
int cli_status(const char *cmd, cr_status st, const char *what);

/* Argument parsing: strict, whole-string numbers. Return 0 on success. */
int cli_parse_size(const char *s, size_t *out);
int cli_parse_double(const char *s, double *out);
int cli_parse_int(const char *s, int *out);
/* --threads: NULL leaves *n at 0 (the OpenMP default); otherwise an integer
 * in 1..CLI_MAX_THREADS. Returns CLI_OK or a usage error. */
int cli_parse_threads(const char *cmd, const char *s, int *n);

/* Refuse to write `out` when it is the same file as one of the n inputs
 * (same device and inode, so hard links and symlinks are caught): an
 * atomic write would replace the input. A missing output is fine; inputs
 * that cannot be examined are left to the reader's error. Returns CLI_OK,
 * or CLI_FAIL after printing which input the output would destroy. */
int cli_check_output(const char *cmd, const char *out, const char *const *inputs, int n);

/* Inputs are .npy arrays or audio files (anything libsndfile reads; the
 * channels of the file are the channels of the bank or signal): a file
 * that starts with the .npy magic is .npy, anything else audio. */
int cli_is_npy(const char *path);
/* Outputs: a path ending in .npy is written as .npy, anything else as
 * audio (the container from the extension). */
int cli_is_npy_out(const char *path);
/* Read path (.npy or audio; audio is (C, T) float64 with *rate its sample
 * rate, .npy gives *rate = 0). Reports errors itself ("what: detail"). */
int cli_read_array(const char *cmd, const char *path, const char *what, cr_array *a, double *rate);
/* --rate FS: NULL leaves *rate alone; else a positive number (Hz). */
int cli_parse_rate(const char *cmd, const char *s, double *rate);
/* The rate of an input (0: none) against a given one (0: none): a
 * conflict is an error; *rate becomes the file's when it has one. */
int cli_merge_rate(const char *cmd, const char *path, double file_rate, double *rate);
/* A (C, L) kernel bank read as float64 from a .npy file of shape (L,) or
 * (C, L), an audio file, or with tensor != NULL the named tensor of a
 * safetensors checkpoint ((L,), (C, L) or (C, 1, L); F64, F32, F16, BF16).
 * A .safetensors path without a tensor is a usage error that lists the
 * tensors present. *rate (may be NULL) receives the audio file's sample
 * rate (0 otherwise). */
int cli_load_kernels(const char *cmd, const char *path, const char *tensor, double **h, size_t *C,
                     size_t *L, double *rate);
/* path ends in .safetensors (case-insensitive) */
int cli_is_safetensors(const char *path);
/* A view of a (1, C, T) signal as (C, T) (other shapes as they are):
 * what an audio file holds. Shares a's data. */
cr_array cli_one_batch(const cr_array *a);
/* Channels and samples of a signal of shape (T,), (C, T) or (B, C, T). */
void cli_signal_dims(const cr_array *u, size_t *B, size_t *C, size_t *T);
/* Widen / narrow an array's data to float64 / float32 in place. */
int cli_to_f64(cr_array *a);
int cli_to_f32(cr_array *a);

/* Model descriptions shared by fit and info (cmd_info.c). */
const char *cli_method_name(cr_method m);
const char *cli_horizon_name(cr_horizon h);
int cli_parse_horizon(const char *cmd, const char *s, cr_horizon *h);
int cli_print_summary(FILE *f, const cr_model *m); /* 0, or -1: out of memory */

/* The subcommands: argv[0] is the command's name. */
typedef int (*cli_cmd_fn)(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_kernel(int argc, char **argv);
int cmd_filter(int argc, char **argv);
int cmd_conv(int argc, char **argv);
int cmd_hsv(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_verify(int argc, char **argv);
/* study and report hand over to the Python package (cmd_py.c) */
int cmd_study(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif
