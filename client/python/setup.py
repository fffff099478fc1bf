"""Builds the refcache Python package (pyproject.toml has its metadata).

Two modules of the package are made at build time, never committed:

* ``refcache/refcache_pb2.py``: protoc's Python code for the wire contract,
  proto/refcache.proto (protoc runs here, never when the package is imported);
* ``refcache/_version.py``: the project's version, read from the
  ``project(refcache VERSION x.y.z)`` line of the top-level CMakeLists.txt --
  the one place every part of refcache (the programs' --version, the shared
  library's soname, the .deb) takes its version from.

Both are read from the source checkout this file sits in (client/python ->
../..), or from ``$REFCACHE_SOURCE_DIR`` when the package is built from a copy
(as the CMake build does, to keep the checkout free of build output).
"""

import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def source_root():
    return os.environ.get("REFCACHE_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))


def project_version():
    path = os.path.join(source_root(), "CMakeLists.txt")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SystemExit("refcache: cannot read the project's version from %s: %s "
                         "(set REFCACHE_SOURCE_DIR to the refcache checkout)" % (path, e.strerror))
    m = re.search(r"project\(\s*refcache\s+VERSION\s+([0-9]+(?:\.[0-9]+)*)", text)
    if not m:
        raise SystemExit("refcache: no 'project(refcache VERSION x.y.z' line in %s" % path)
    return m.group(1)


class BuildWithContract(build_py):
    """build_py, then the generated modules beside the copied sources."""

    def run(self):
        super().run()
        out = os.path.join(self.build_lib, "refcache")
        self.mkpath(out)
        proto = os.path.join(source_root(), "proto", "refcache.proto")
        if not os.path.isfile(proto):
            raise SystemExit("refcache: the contract %s is missing (set REFCACHE_SOURCE_DIR to the "
                             "refcache checkout)" % proto)
        protoc = os.environ.get("PROTOC") or shutil.which("protoc")
        if not protoc:
            raise SystemExit("refcache: protoc is needed to build the package (Debian: protobuf-compiler)")
        subprocess.run([protoc, "--python_out=" + out, "-I" + os.path.dirname(proto), proto], check=True)
        with open(os.path.join(out, "_version.py"), "w", encoding="utf-8") as f:
            f.write('"""Generated at build time from CMakeLists.txt."""\n\n__version__ = "%s"\n'
                    % project_version())


setup(version=project_version(), cmdclass={"build_py": BuildWithContract})
