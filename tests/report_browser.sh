#!/bin/sh
# convrec report / study pages opened in a real browser (tests/report_browser.py).
# Skipped (77) without chromium, matplotlib or a Python with numpy, and in
# the sanitizer build (an ASan library cannot be loaded into plain python).
[ -n "$CONVREC_SKIP_PYTHON" ] && { echo "python tests skipped in this build"; exit 77; }
[ -n "$PYTHON" ] || { echo "no python with numpy: skipped"; exit 77; }
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
    { echo "chromium not found: skipped (Debian: apt-get install chromium)"; exit 77; }
"$PYTHON" -c 'import matplotlib' 2>/dev/null || { echo "matplotlib missing: skipped (Debian: python3-matplotlib)"; exit 77; }
# the package from the source tree, over the library just built; the
# command's hand-over (convrec study|report) runs the same interpreter
export CONVREC_LIB="${CONVREC_LIB:-$CONVREC_BUILDDIR/.libs}"
export PYTHONPATH="$CONVREC_SRCDIR/python${PYTHONPATH:+:$PYTHONPATH}"
export CONVREC_PYTHON="$PYTHON"
exec "$PYTHON" "$CONVREC_SRCDIR/tests/report_browser.py"
