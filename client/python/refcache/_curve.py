"""CURVE for the Python client and worker, with the certificate files CZMQ
writes (``refcache keygen PATH`` writes PATH, the public part, and
PATH_secret): the same files the C client, the CLI and refcache-worker use."""

import os

import zmq
import zmq.auth


def _load(path, need_secret):
    if not os.path.isfile(path):
        raise ValueError("cannot read the certificate %s" % path)
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise ValueError("cannot load the certificate %s: %s" % (path, e)) from None
    if need_secret and not secret:
        raise ValueError("%s holds no secret key (give PATH_secret, or PATH with PATH_secret beside it)"
                         % path)
    return public, secret


def apply(sock, secret_file, broker_public_file):
    """Makes ``sock`` a CURVE client: its own key pair from ``secret_file``
    (PATH or PATH_secret) and the broker's public key from
    ``broker_public_file``. Both None: nothing to do. Raises ValueError with
    the file's name when a file cannot be used."""
    if not secret_file and not broker_public_file:
        return
    if not (secret_file and broker_public_file):
        raise ValueError("curve_secret_file and broker_public_file go together")
    if not zmq.has("curve"):
        raise ValueError("this libzmq has no CURVE support")
    secret_path = secret_file if secret_file.endswith("_secret") else secret_file + "_secret"
    public, secret = _load(secret_path, True)
    server_public, _ = _load(broker_public_file, False)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = server_public


def from_env(secret_file, broker_public_file):
    """The pair given, else REFCACHE_CURVE_SECRET / REFCACHE_CURVE_SERVER (as
    the CLI reads them)."""
    return (secret_file or os.environ.get("REFCACHE_CURVE_SECRET"),
            broker_public_file or os.environ.get("REFCACHE_CURVE_SERVER"))
