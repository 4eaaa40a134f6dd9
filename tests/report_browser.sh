#!/bin/sh
# convrec report / study pages opened in a real browser (tests/report_browser.py).
# Skipped (77) without chromium, matplotlib or a Python with numpy, and in
# the sanitizer build (an ASan library cannot be loaded into plain python).
[ -n "$CONVREC_SKIP_PYTHON" ] && { echo "python tests skipped in this build"; exit 77; }
[ -n "$PYTHON" ] || { echo "no python with numpy: skipped"; exit 77; }
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
    { echo "chromium not found: skipped (Debian: apt-get install chromium)"; exit 77; }
"$PYTHON" -c 'import matplotlib' 2>/dev/null || { echo "matplotlib missing: skipped (Debian: python3-matplotlib)"; exit 77; }
# The package as installed by tests/python.sh (which runs first, mk/cli.am):
# the virtual environment in the build folder, where the library's folder
# was recorded at install time. Without it (no pip), the package from the
# source tree over the library just built. The command's hand-over
# (convrec study|report) runs the same interpreter.
venv="$CONVREC_BUILDDIR/python-venv"
if [ -x "$venv/bin/python" ] && (cd / && env -u PYTHONPATH -u CONVREC_LIB "$venv/bin/python" -c 'import convrec.report') 2>/dev/null; then
    unset PYTHONPATH CONVREC_LIB
    py="$venv/bin/python"
    echo "the installed package in $venv"
else
    export CONVREC_LIB="${CONVREC_LIB:-$CONVREC_BUILDDIR/.libs}"
    export PYTHONPATH="$CONVREC_SRCDIR/python${PYTHONPATH:+:$PYTHONPATH}"
    py="$PYTHON"
    echo "the package from the source tree ($CONVREC_SRCDIR/python)"
fi
export CONVREC_PYTHON="$py"
exec "$py" "$CONVREC_SRCDIR/tests/report_browser.py"
