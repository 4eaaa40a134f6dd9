/* Subcommands whose library modules are still being integrated. */
#include "cli.h"

int cmd_filter(int argc, char **argv) { (void)argc; (void)argv; return cli_error("filter", "not available yet"); }
int cmd_verify(int argc, char **argv) { (void)argc; (void)argv; return cli_error("verify", "not available yet"); }
int cmd_export(int argc, char **argv) { (void)argc; (void)argv; return cli_error("export", "not available yet"); }
