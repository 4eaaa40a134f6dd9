"""Build hooks for the convrec package (metadata is in pyproject.toml).

One source of truth for the version: AC_INIT in ../configure.ac. The built
package gets convrec/_config.py with that version and the folder of the
libconvrec it should load (see convrec/_clib.py for the search order):
  $CONVREC_LIBDIR at build time (a folder, or the library file itself), else
  the libdir of an installed convrec.pc (pkg-config), else nothing (then the
  dynamic linker's search path is used at import).
"""
import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def version():
    path = os.path.join(HERE, "..", "configure.ac")
    try:
        with open(path) as f:
            m = re.search(r"AC_INIT\(\[[^]]*\],\s*\[([^]]+)\]", f.read())
    except OSError as e:
        raise SystemExit(f"convrec: cannot read the version from {path} ({e}); build the package "
                         "from a convrec source tree (or its release tarball)") from None
    if not m:
        raise SystemExit(f"convrec: no AC_INIT([convrec], [VERSION]) in {path}")
    return m.group(1)


def libdir():
    d = os.environ.get("CONVREC_LIBDIR")
    if d:
        d = os.path.abspath(d)
        return os.path.dirname(d) if os.path.isfile(d) else d
    if shutil.which("pkg-config"):
        p = subprocess.run(["pkg-config", "--variable=libdir", "convrec"], capture_output=True, text=True)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip()
    return None


class build_py_config(build_py):
    """build_py that also writes convrec/_config.py into the build tree."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "convrec", "_config.py")
        d = libdir()
        with open(target, "w") as f:
            f.write("# written by setup.py when the package was built\n")
            f.write(f"VERSION = {version()!r}\n")
            f.write(f"LIBDIR = {d!r}\n")
        print(f"convrec {version()}: library folder recorded: {d or '(none: the system search path)'}")


setup(version=version(), cmdclass={"build_py": build_py_config})
