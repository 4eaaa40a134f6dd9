/* Subcommands whose library modules are still being integrated. */
#include "cli.h"

int cmd_export(int argc, char **argv) { (void)argc; (void)argv; return cli_error("export", "not available yet"); }
