"""CURVE from Python: the client and the worker use the certificate files of
`refcache keygen`, against a real broker with CURVE on."""

import os
import subprocess
import time

import pytest

import refcache
from conftest import Broker, WorkerThread, cli_binary, wait_for


@pytest.fixture
def keys(tmp_path):
    cli = cli_binary()
    if not cli or not os.path.isfile(cli):
        pytest.fail("the refcache CLI (for keygen) was not found: build it or set REFCACHE_CLI", pytrace=False)
    for d in ("callow", "wallow"):
        (tmp_path / d).mkdir()
    for name in ("broker", "alice", "bob", "worker", "mallory"):
        subprocess.run([cli, "keygen", str(tmp_path / name)], check=True, capture_output=True, timeout=30)
    for name, d in (("alice", "callow"), ("bob", "callow"), ("worker", "wallow")):
        (tmp_path / d / name).write_bytes((tmp_path / name).read_bytes())
    return tmp_path


@pytest.fixture
def curve_broker(request, keys):
    b = Broker(workers=0, extra=("--curve-secret", str(keys / "broker"), "--clients-allowed",
                                 str(keys / "callow"), "--workers-allowed", str(keys / "wallow")))
    request.addfinalizer(b.stop)
    return b


def slow(job):
    for i in range(200):
        if job.cancelled():
            return b""
        job.progress(i, 200)
        time.sleep(0.01)
    return b"done"


def client(broker, keys, who, timeout_ms=5000):
    return refcache.Client(broker.clients, timeout_ms=timeout_ms,
                           curve_secret_file=str(keys / who) if who else None,
                           broker_public_file=str(keys / "broker") if who else None)


def test_seed_scenario_with_curve_and_owners(curve_broker, keys):
    w = WorkerThread(curve_broker, {"pyslow": slow}, curve_secret_file=str(keys / "worker"),
                     broker_public_file=str(keys / "broker"))
    with client(curve_broker, keys, "alice") as alice, client(curve_broker, keys, "bob") as bob:
        try:
            wait_for(lambda: alice.stats()["workers"] == 1, what="the CURVE worker to join")
            t = alice.submit("pyslow", async_timeout_ms=100)
            assert t.state == "PROCESSING"
            # Another owner cannot see or cancel it.
            with pytest.raises(refcache.NotFound):
                bob.status(t.ref_id)
            assert bob.cancel(t.ref_id) is False
            assert alice.cancel(t.ref_id) is True
            assert alice.status(t.ref_id).state == "CANCELLED"
            assert alice.cancel(t.ref_id) is False
        finally:
            w.stop()


def test_unknown_or_missing_key_gets_no_answer(curve_broker, keys):
    with client(curve_broker, keys, "alice") as alice:
        before = alice.stats()["requests_total"]
        for who in (None, "mallory"):
            with client(curve_broker, keys, who, timeout_ms=300) as c:
                with pytest.raises(refcache.Timeout):
                    c.submit("pyslow")
        # The broker never saw those requests (only alice's two stats calls).
        assert alice.stats()["requests_total"] == before + 1


def test_worker_key_cannot_submit(curve_broker, keys):
    with client(curve_broker, keys, "worker") as c:
        with pytest.raises(refcache.PermissionDenied):
            c.stats()


def test_bad_certificate_files_are_named(keys, tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        refcache.Client("tcp://127.0.0.1:1", curve_secret_file=str(tmp_path / "nowhere"),
                        broker_public_file=str(keys / "broker"))
    with pytest.raises(ValueError, match="go together"):
        refcache.Client("tcp://127.0.0.1:1", curve_secret_file=str(keys / "alice"))
    with pytest.raises(ValueError, match="nowhere"):
        refcache.Worker("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", {"f": slow},
                        curve_secret_file=str(keys / "worker"), broker_public_file=str(tmp_path / "nowhere"))
