"""Safe retries across a broker restart: a refcache-broker with a store is
killed (kill -9) while a call waits for its reply, and started again on the
same endpoints and store; the call sends its idempotent request again when
the connection comes back and returns the right answer within its timeout.
A Submit without a request_key is never sent twice."""

import asyncio
import random
import threading
import time

import pytest

import refcache
from conftest import Broker


def _start_fixed(store):
    """A broker with a store on three fixed ports below the ephemeral range
    (a restart must find them free), trying other ports if taken."""
    for _ in range(20):
        base = random.randrange(20000, 29990)
        eps = ["tcp://127.0.0.1:%d" % (base + i) for i in range(3)]
        try:
            return Broker(workers=1, clients_endpoint=eps[0], workers_endpoint=eps[1], control_endpoint=eps[2],
                          extra=("--store", str(store), "--retry-base-ms", "20", "--retry-max-ms", "40")), eps
        except AssertionError:
            continue
    pytest.fail("no free fixed ports for the broker")


class Restarter:
    """Kills the broker once it holds a reply (a waiter) whose task is on disk, then starts it
    again on the same endpoints and store after a short outage. Every broker
    it starts joins `started` (the test stops them all)."""

    def __init__(self, started, eps, store):
        self.started, self.eps, self.store = started, eps, store
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error = None

    def _run(self):
        try:
            with refcache.Client(self.eps[0], timeout_ms=1000, retry=False) as watcher:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        if watcher.stats()["waiters"] >= 1:
                            break
                    except refcache.Timeout:
                        pass
                    time.sleep(0.01)  # a poll interval, not a synchronisation
                # The held call's task is on disk once a later Stats finds
                # nothing queued for the store's writer: before that no reply
                # had promised it, and a restarted broker may rightly lack it.
                while time.monotonic() < deadline:
                    time.sleep(0.01)
                    try:
                        if watcher.stats()["store_queued_bytes"] == 0:
                            break
                    except refcache.Timeout:
                        pass
            old = self.started[-1]
            old.proc.kill()
            old.proc.wait(5)
            time.sleep(0.3)  # the outage
            for _ in range(100):
                try:
                    self.started.append(Broker(
                        workers=1, clients_endpoint=self.eps[0], workers_endpoint=self.eps[1],
                        control_endpoint=self.eps[2],
                        extra=("--store", str(self.store), "--retry-base-ms", "20", "--retry-max-ms", "40")))
                    return
                except AssertionError:
                    time.sleep(0.05)  # a poll interval: the port may be held a moment
            raise AssertionError("the broker did not start again")
        except Exception as e:  # reported by the test
            self.error = e

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join(20)
        assert self.error is None, self.error


@pytest.fixture
def fixed(tmp_path):
    store = tmp_path / "broker.db"
    broker, eps = _start_fixed(store)
    started = [broker]
    yield started, eps, store
    for b in started:
        b.stop()


def test_keyed_submit_and_wait_across_restarts(fixed):
    started, eps, store = fixed
    with refcache.Client(eps[0], timeout_ms=15000) as c:
        with Restarter(started, eps, store):
            t = c.submit("sleep", {"ms": 1500}, async_timeout_ms=10000, max_retries=1, request_key="py-order-1")
        assert t.replayed and t.state == "COMPLETE" and t.attempt == 2
        assert c.submit("sleep", {"ms": 1500}, max_retries=1, request_key="py-order-1").ref_id == t.ref_id

        w = c.submit("sleep", {"ms": 1000}, max_retries=1)
        with Restarter(started, eps, store):
            done = c.wait(w.ref_id, 10000)
        assert done.state == "COMPLETE" and done.ref_id == w.ref_id

        # Without a key the Submit is never sent again: the call times out.
        with Restarter(started, eps, store):
            with pytest.raises(refcache.Timeout):
                c.submit("sleep", {"ms": 3000}, async_timeout_ms=3000, timeout_ms=2000)
        s = c.stats()
        assert s["tasks_pending"] + s["tasks_processing"] + s["tasks_complete"] + s["tasks_failed"] == 3


def test_async_wait_across_restart(fixed):
    started, eps, store = fixed

    async def main():
        async with refcache.AsyncClient(eps[0], timeout_ms=15000) as c:
            t = await c.submit("sleep", {"ms": 1000}, max_retries=1)
            with Restarter(started, eps, store):
                done = await c.wait(t.ref_id, 10000)
            return t, done

    t, done = asyncio.run(main())
    assert done.state == "COMPLETE" and done.ref_id == t.ref_id
