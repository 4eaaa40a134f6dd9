#!/bin/sh
# The Python tests (pytest), run against the *installed* package, as a user
# would have it: a virtual environment in the build folder that sees Debian's
# numpy/scipy/pytest/torch, the package pip-installed into it offline (no
# build isolation) with the built library's folder recorded at install time,
# and pytest run from a temporary folder with neither PYTHONPATH nor
# CONVREC_LIB, so only the installed copy can be imported.
# When configure enabled it, `make install-python` into a DESTDIR is checked
# too (tests/python/test_package.py).
# Skipped (77) without a Python that has numpy, pytest, scipy and pip, or in
# the sanitizer build (an ASan library cannot be loaded into plain python).
[ -n "$CONVREC_SKIP_PYTHON" ] && { echo "python tests skipped in this build"; exit 77; }
[ -n "$PYTHON" ] || { echo "no python with numpy: skipped"; exit 77; }
"$PYTHON" -c 'import setuptools, pytest, scipy, venv' 2>/dev/null && "$PYTHON" -m pip --version >/dev/null 2>&1 ||
    { echo "pytest/scipy/pip/setuptools missing: skipped (Debian: python3-pytest python3-scipy python3-pip python3-setuptools python3-venv)"; exit 77; }
set -e
venv="$CONVREC_BUILDDIR/python-venv"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/convrec-python.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if ! [ -x "$venv/bin/python" ]; then
    # --without-pip: the venv uses the system pip module (it sees the system site)
    "$PYTHON" -m venv --system-site-packages --without-pip "$venv"
fi
# pip builds in the source folder it is given: build from a copy, so that the
# source tree stays clean (and may be read-only)
mkdir "$tmp/stage"
cp -R "$CONVREC_SRCDIR/python" "$CONVREC_SRCDIR/configure.ac" "$tmp/stage/"
chmod -R u+w "$tmp/stage"
rm -rf "$tmp/stage/python/build" "$tmp/stage/python/"*.egg-info
CONVREC_LIBDIR="$CONVREC_BUILDDIR/.libs" "$venv/bin/python" -m pip install --quiet --no-build-isolation \
    --no-deps --no-index --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
    --force-reinstall "$tmp/stage/python" > "$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; exit 1; }
if [ -n "$CONVREC_INSTALL_LIBDIR" ]; then
    make -s -C "$CONVREC_BUILDDIR" install-python DESTDIR="$tmp/dest" > "$tmp/make.log" 2>&1 ||
        { cat "$tmp/make.log"; exit 1; }
    export CONVREC_TEST_DESTDIR="$tmp/dest"
fi
mkdir "$tmp/run"
cd "$tmp/run"
unset CONVREC_LIB PYTHONPATH
export CONVREC_EXPECT_INSTALLED="$venv"
set +e
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$CONVREC_SRCDIR/tests/python"
