"""The C CLI and the Python client see the same tasks."""

import json
import os
import subprocess

import pytest

import refcache
from conftest import cli_binary


def run_cli(broker, *args, check_code=0):
    path = cli_binary()
    if not path or not os.path.isfile(path):
        pytest.fail("the refcache CLI was not found: build target `refcache` or set REFCACHE_CLI",
                    pytrace=False)
    proc = subprocess.run([path, "--endpoint", broker.clients, "--json", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert proc.returncode == check_code, (args, proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def test_cli_and_python_share_tasks(broker, client):
    # Python submits, the CLI reads it.
    t = client.submit("sleep", {"ms": 5000}, async_timeout_ms=100)
    assert t.state == "PROCESSING"
    out = run_cli(broker, "status", t.ref_id)
    assert out["ref_id"] == t.ref_id and out["state"] == "PROCESSING"
    # The CLI cancels it, Python sees that.
    out = run_cli(broker, "cancel", t.ref_id)
    assert out["cancelled"] is True
    assert client.status(t.ref_id).state == "CANCELLED"
    assert client.cancel(t.ref_id) is False
    out = run_cli(broker, "cancel", t.ref_id)
    assert out["cancelled"] is False and out["state"] == "CANCELLED"

    # The CLI submits, Python reads and fetches it.
    out = run_cli(broker, "submit", "primes", "n=100000", "--async-timeout", "10000")
    assert out["state"] == "COMPLETE"
    task = client.status(out["ref_id"])
    assert task.state == "COMPLETE" and task.result_size == out["result_size"]
    data = client.fetch_all(out["ref_id"])
    assert data.startswith(b"2\n3\n5\n") and data.endswith(b"99991\n")

    # Errors: the CLI's exit status is 10 + code; Python raises.
    run_cli(broker, "status", "0" * 32, check_code=15)
    with pytest.raises(refcache.NotFound):
        client.status("0" * 32)
