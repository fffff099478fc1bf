"""The wire contract's Python code: refcache_pb2, which protoc generates from
proto/refcache.proto when the package is built (setup.py), never at import.
Importing reads only the package's own files: no protoc, no cache directory."""

try:
    from . import refcache_pb2 as pb
except ImportError as e:  # a source checkout that was not built
    raise ImportError("refcache: refcache_pb2 is missing from %s: it is generated when the package is "
                      "built; install the package (client/python/README.md) instead of importing "
                      "the source tree" % __name__.rsplit(".", 1)[0]) from e

__all__ = ["pb"]
