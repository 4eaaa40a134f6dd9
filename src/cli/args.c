/* A tiny strict option scanner shared by the subcommands. */
#include "args.h"

#include <string.h>

int args_scan(args *a, int argc, char **argv, const args_opt *opts)
{
    a->npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(a->help, stdout);
            return CLI_OK;
        }
        if (s[0] != '-' || s[1] == '\0') {
            if (a->npos >= ARGS_MAX_POS) return cli_usage(a->cmd, "too many arguments ('%s')", s);
            a->pos[a->npos++] = s;
            continue;
        }
        const args_opt *o = opts;
        while (o->name != NULL && strcmp(o->name, s) != 0) o++;
        if (o->name == NULL) return cli_usage(a->cmd, "unknown option '%s'", s);
        if (o->value == NULL) {
            *o->flag = 1;
        } else {
            if (i + 1 >= argc) return cli_usage(a->cmd, "option '%s' needs a value", s);
            *o->value = argv[++i];
        }
    }
    return ARGS_GO;
}
