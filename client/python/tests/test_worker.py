"""Python job functions served by refcache.Worker, submitted, watched and
cancelled like the C built-ins."""

import threading
import time

import pytest

import refcache
from conftest import Broker, wait_for

STEPS = 200
STEP_S = 0.010


class Slow:
    """pyslow: STEPS x 10 ms, progress and cancelled() at every step."""

    def __init__(self):
        self.calls = []            # ref_ids the function was called for
        self.step = 0              # steps completed by the current call
        self.seen_cancel_at = None # step at which cancelled() returned True
        self.returned = threading.Event()

    def __call__(self, job):
        self.calls.append(job.ref_id)
        self.step = 0
        steps = int(job.params.get("steps", STEPS))
        for i in range(steps):
            if job.cancelled():
                self.seen_cancel_at = i
                self.seen_reason = job.cancel_reason
                self.returned.set()
                return b"partial"   # ignored: a cancelled job is acked, never completed
            time.sleep(STEP_S)
            self.step = i + 1
            job.progress(i + 1, steps)
        self.returned.set()
        return b"done"


def upper(job):
    assert isinstance(job.params, dict) and isinstance(job.payload, bytes)
    return job.payload.upper() + job.params.get("suffix", "").encode()


def boom(job):
    raise ValueError("bad input %s" % job.params.get("x"))


def picky(job):
    raise refcache.JobFailed("INVALID_ARGUMENT", "picky says no", retryable=False)


def test_python_function_result(bare_broker, start_worker):
    start_worker(bare_broker, {"pyupper": upper}, cacheable=["pyupper"])
    with refcache.Client(bare_broker.clients, timeout_ms=5000) as c:
        t = c.submit("pyupper", {"suffix": "!"}, payload=b"abc", async_timeout_ms=3000)
        assert t.state == "COMPLETE" and t.result == b"ABC!" and t.attempt == 1
        again = c.submit("pyupper", {"suffix": "!"}, payload=b"abc", async_timeout_ms=3000)
        assert again.cache_hit and again.result == b"ABC!"


def test_python_function_failures(bare_broker, start_worker):
    start_worker(bare_broker, {"pyboom": boom, "pypicky": picky})
    with refcache.Client(bare_broker.clients, timeout_ms=5000) as c:
        t = c.submit("pyboom", {"x": "42"}, async_timeout_ms=3000)
        assert t.state == "FAILED"
        assert t.error_code == "UNKNOWN"
        assert "ValueError" in t.error and "bad input 42" in t.error
        t = c.submit("pypicky", async_timeout_ms=3000)
        assert t.state == "FAILED"
        assert t.error_code == "INVALID_ARGUMENT" and "picky says no" in t.error


def test_python_function_cancelled_midway(bare_broker, start_worker):
    slow = Slow()
    start_worker(bare_broker, {"pyslow": slow}, heartbeat_ms=200)
    with refcache.Client(bare_broker.clients, timeout_ms=5000) as c:
        t = c.submit("pyslow", async_timeout_ms=300)
        assert t.state == "PROCESSING"
        wait_for(lambda: c.status(t.ref_id).progress_done >= 10, what="progress")
        step_at_cancel = slow.step
        t0 = time.monotonic()
        assert c.cancel(t.ref_id) is True
        assert slow.returned.wait(2), "the job never returned after cancel"
        elapsed = time.monotonic() - t0
        # It stopped at the next step boundary: at most one step (plus the one
        # in progress while the notice travelled) after the cancel.
        assert slow.seen_cancel_at is not None
        # (a margin for a loaded CI machine: the notice itself is a network hop)
        assert slow.seen_cancel_at - step_at_cancel <= 5, (step_at_cancel, slow.seen_cancel_at)
        assert slow.seen_reason == "CANCELLED"
        assert elapsed < 1.0
        wait_for(lambda: c.status(t.ref_id).stopped_at_us > 0, timeout=3,
                 what="the broker to record the CancelAck")
        s = c.status(t.ref_id)
        assert s.state == "CANCELLED" and s.ever_started
        assert s.result == b"" and s.result_size == 0
        done = s.progress_done
        assert done < STEPS
        time.sleep(0.1)
        assert c.status(t.ref_id).progress_done == done
        assert c.cancel(t.ref_id) is False
        # The worker is free again: its credit slot came back with the ack.
        slow.returned.clear()
        t2 = c.submit("pyslow", async_timeout_ms=100)
        assert t2.state == "PROCESSING"
        assert c.cancel(t2.ref_id) is True
        assert slow.returned.wait(2)


def test_held_task_cancelled_never_starts(request, start_worker):
    # The broker sends a task to a busy worker only while what the worker
    # holds is expected to end within its dispatch window: a wide window, and
    # one quick call so that pyslow's service time is known and short.
    broker = Broker(workers=0, extra=["--dispatch-window-us", "60000000"])
    request.addfinalizer(broker.stop)
    slow = Slow()
    start_worker(broker, {"pyslow": slow}, credit=2)
    with refcache.Client(broker.clients, timeout_ms=5000) as c:
        assert c.submit("pyslow", params={"steps": "0"}, no_cache=True,
                        async_timeout_ms=2000).state == "COMPLETE"
        slow.calls.clear()
        a = c.submit("pyslow", async_timeout_ms=200)
        b = c.submit("pyslow")
        assert a.state == "PROCESSING"
        wait_for(lambda: c.stats()["queue_depth"] == 0, what="b dispatched (held)")
        assert c.cancel(b.ref_id) is True
        wait_for(lambda: c.status(b.ref_id).stopped_at_us > 0, timeout=3,
                 what="CancelAck for the held task")
        assert not c.status(b.ref_id).ever_started
        assert c.cancel(a.ref_id) is True
        assert slow.returned.wait(2)
        time.sleep(0.1)
        assert slow.calls == [a.ref_id], "the cancelled held task was started"


def test_stop_while_idle_and_busy(bare_broker, start_worker):
    slow = Slow()
    w = start_worker(bare_broker, {"pyslow": slow})
    with refcache.Client(bare_broker.clients, timeout_ms=5000) as c:
        t = c.submit("pyslow", {"x": 1}, async_timeout_ms=100, max_retries=0)
        assert t.state == "PROCESSING"
        t0 = time.monotonic()
        w.stop()
        assert time.monotonic() - t0 < 1.0
        s = c.wait(t.ref_id, 3000)
        assert s.state == "FAILED" and s.error_code == "UNAVAILABLE"


def test_python_job_deadline(bare_broker, start_worker):
    slow = Slow()
    start_worker(bare_broker, {"pyslow": slow})
    with refcache.Client(bare_broker.clients, timeout_ms=5000) as c:
        t = c.submit("pyslow", deadline_ms=150, async_timeout_ms=3000)
        assert t.state == "FAILED" and t.error_code == "DEADLINE_EXCEEDED"
        assert slow.returned.wait(2)
        assert slow.seen_reason == "DEADLINE_EXCEEDED"
        assert slow.seen_cancel_at < STEPS


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_worker_rejoins_restarted_broker(request):
    from conftest import Broker, WorkerThread
    eps = dict(workers_endpoint="tcp://127.0.0.1:%d" % _free_port(),
               control_endpoint="tcp://127.0.0.1:%d" % _free_port())
    first = Broker(workers=0, **eps)
    request.addfinalizer(first.stop)
    w = WorkerThread(first, {"pyupper": upper}, heartbeat_ms=100, liveness=3)
    request.addfinalizer(w.stop)
    with refcache.Client(first.clients, timeout_ms=5000) as c:
        wait_for(lambda: c.stats()["workers"] == 1, what="worker joined")
        assert c.submit("pyupper", payload=b"a", async_timeout_ms=3000).result == b"A"
    first.stop()
    second = Broker(workers=0, **eps)
    request.addfinalizer(second.stop)
    with refcache.Client(second.clients, timeout_ms=5000) as c:
        wait_for(lambda: c.stats()["workers"] == 1, timeout=10, what="worker rejoined")
        assert c.submit("pyupper", payload=b"b", async_timeout_ms=3000).result == b"B"


def test_python_worker_shows_its_host_and_pid(bare_broker, start_worker):
    """Ready carries the host and pid, which the broker's Workers shows."""
    import json
    import os
    import socket
    import subprocess

    from conftest import cli_binary

    start_worker(bare_broker, {"pyupper": upper})
    out = subprocess.run([cli_binary(), "-e", bare_broker.clients, "--json", "workers"],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    workers = json.loads(out)["workers"]
    mine = [w for w in workers if "pyupper" in w["functions"]]
    assert mine and all(w["pid"] == os.getpid() for w in mine)
    assert all(w["host"] == socket.gethostname()[:63] for w in mine)
