"""Loads refcache_pb2, the Python code protoc generates from proto/refcache.proto.

Generated code is never committed. It is found, in this order:

1. ``$REFCACHE_PB2_DIR/refcache_pb2.py`` -- the CMake build generates it there
   (target ``refcache_python``) and ctest sets the variable;
2. otherwise ``protoc --python_out`` is run here on ``$REFCACHE_PROTO`` or, in a
   source checkout, ``<repo>/proto/refcache.proto``, into a per-user cache
   directory keyed by the .proto's hash (so an edited contract regenerates).
"""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

_MODULE = "refcache_pb2"


class ContractError(ImportError):
    """The generated protobuf module could not be found or generated."""


def _proto_path():
    path = os.environ.get("REFCACHE_PROTO")
    if path:
        return path
    here = os.path.dirname(os.path.abspath(__file__))
    # client/python/refcache/_pb.py -> <repo>/proto/refcache.proto
    return os.path.normpath(os.path.join(here, "..", "..", "..", "proto", "refcache.proto"))


def _cache_root():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    try:
        os.makedirs(base, exist_ok=True)
        if os.access(base, os.W_OK):
            return os.path.join(base, "refcache")
    except OSError:
        pass
    return os.path.join(tempfile.gettempdir(), "refcache-%d" % os.getuid())


def _generate(proto):
    with open(proto, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    out = os.path.join(_cache_root(), "pb2-" + digest)
    if os.path.exists(os.path.join(out, _MODULE + ".py")):
        return out
    protoc = os.environ.get("PROTOC") or shutil.which("protoc")
    if not protoc:
        raise ContractError("refcache: protoc not found (install protobuf-compiler, or set "
                            "REFCACHE_PB2_DIR to a directory holding refcache_pb2.py)")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="pb2-tmp-", dir=os.path.dirname(out))
    try:
        proc = subprocess.run(
            [protoc, "--python_out=" + tmp, "-I" + os.path.dirname(proto), proto],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if proc.returncode != 0:
            raise ContractError("refcache: protoc failed on %s: %s"
                                % (proto, proc.stdout.decode(errors="replace").strip()))
        try:
            os.rename(tmp, out)  # atomic; a concurrent generator may have won
        except OSError:
            if not os.path.exists(os.path.join(out, _MODULE + ".py")):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load():
    """Returns the refcache_pb2 module (imported once per process)."""
    mod = sys.modules.get(_MODULE)
    if mod is not None:
        return mod
    directory = os.environ.get("REFCACHE_PB2_DIR")
    if directory:
        if not os.path.exists(os.path.join(directory, _MODULE + ".py")):
            raise ContractError("refcache: REFCACHE_PB2_DIR=%s holds no %s.py (build the "
                                "refcache_python target)" % (directory, _MODULE))
    else:
        proto = _proto_path()
        if not os.path.exists(proto):
            raise ContractError("refcache: %s not found; set REFCACHE_PB2_DIR or REFCACHE_PROTO"
                                % proto)
        directory = _generate(proto)
    spec = importlib.util.spec_from_file_location(_MODULE, os.path.join(directory, _MODULE + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[_MODULE]
        raise
    return mod


pb = load()
