/* The convrec command: shared helpers of the subcommands. */
#ifndef CONVREC_CLI_H
#define CONVREC_CLI_H
#include "convrec.h"
#endif
