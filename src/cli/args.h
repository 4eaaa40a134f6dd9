/* A tiny strict option scanner: options are exact words, some take the next
 * argument as their value; everything not starting with '-' is positional. */
#ifndef CONVREC_CLI_ARGS_H
#define CONVREC_CLI_ARGS_H
#include "cli.h"

#define ARGS_MAX_POS 4

typedef struct args_opt {
    const char *name;      /* "--order"; NULL ends the table */
    const char **value;    /* receives the value, or NULL for a flag */
    int *flag;             /* set to 1 for a flag */
} args_opt;

typedef struct args {
    const char *cmd;
    const char *pos[ARGS_MAX_POS];
    int npos;
} args;

/* Returns CLI_OK, or the usage exit code after printing the problem. */
int args_scan(args *a, int argc, char **argv, const args_opt *opts);
#endif
