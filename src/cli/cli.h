/* The convrec command: helpers shared by the subcommands. */
#ifndef CONVREC_CLI_H
#define CONVREC_CLI_H

#include "config.h"
#include "convrec.h"

#include <stddef.h>

/* Exit codes: 0 success, 1 failure (bad input, numerical failure), 2 usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Print "convrec CMD: message" to stderr; returns CLI_FAIL or CLI_USAGE. */
int cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int cli_usage(const char *cmd, const char *fmt, ...)
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

/* A (C, L) kernel bank read from a .npy file of shape (L,) or (C, L) as
 * float64 (float32 files are widened). */
int cli_load_kernels(const char *cmd, const char *path, double **h, size_t *C, size_t *L);
/* Widen / narrow an array's data to float64 / float32 in place. */
int cli_to_f64(cr_array *a);
int cli_to_f32(cr_array *a);

typedef int (*cli_cmd_fn)(int argc, char **argv);
int cmd_conv(int argc, char **argv);
int cmd_hsv(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_kernel(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_filter(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
