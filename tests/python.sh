#!/bin/sh
# Run the Python tests (pytest) against the freshly built library.
# Skipped (77) without a Python that has numpy and pytest, or in the
# sanitizer build (an ASan library cannot be loaded into plain python).
[ -n "$CONVREC_SKIP_PYTHON" ] && { echo "python tests skipped in this build"; exit 77; }
[ -n "$PYTHON" ] || { echo "no python with numpy: skipped"; exit 77; }
"$PYTHON" -c 'import pytest, scipy' 2>/dev/null || { echo "pytest/scipy missing: skipped"; exit 77; }
export CONVREC_LIB="${CONVREC_LIB:-$CONVREC_BUILDDIR/.libs}"
export PYTHONPATH="$CONVREC_SRCDIR/python${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m pytest -q -p no:cacheprovider "$CONVREC_SRCDIR/tests/python"
