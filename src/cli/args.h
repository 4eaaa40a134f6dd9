/* A tiny strict option scanner: options are exact words, some take the next
 * argument as their value; everything not starting with '-' is positional.
 * Every command answers -h and --help with its own usage text. */
#ifndef CONVREC_CLI_ARGS_H
#define CONVREC_CLI_ARGS_H
#include "cli.h"

#define ARGS_MAX_POS 4
#define ARGS_GO (-1) /* args_scan: go on and run the command */

typedef struct args_opt {
    const char *name;      /* "--order"; NULL ends the table */
    const char **value;    /* receives the value, or NULL for a flag */
    int *flag;             /* set to 1 for a flag */
} args_opt;

typedef struct args {
    const char *cmd;       /* the command's name, for messages */
    const char *help;      /* its usage text, printed for -h / --help */
    const char *pos[ARGS_MAX_POS];
    int npos;
} args;

/* Scan argv[1..argc-1]. Returns ARGS_GO when the command should run, or the
 * exit status to return at once: CLI_OK after printing the help on stdout,
 * CLI_USAGE after printing the problem on stderr. */
int args_scan(args *a, int argc, char **argv, const args_opt *opts);
#endif
