#!/bin/sh
# Bad input through every subcommand of the convrec binary (tests/cli_errors.py).
[ -n "$PYTHON" ] || { echo "no python with numpy: skipped"; exit 77; }
exec "$PYTHON" "$CONVREC_SRCDIR/tests/cli_errors.py"
