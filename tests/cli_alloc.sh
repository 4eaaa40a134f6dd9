#!/bin/sh
# Every allocation of each convrec command failing in turn (tests/cli_alloc.py).
[ -n "$PYTHON" ] || { echo "no python with numpy: skipped"; exit 77; }
exec "$PYTHON" "$CONVREC_SRCDIR/tests/cli_alloc.py"
