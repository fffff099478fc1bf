"""Test harness: a real refcache-broker as a subprocess on ephemeral loopback ports.

The tests import the INSTALLED refcache package (ctest installs it into a
venv first: tests/python.cmake; by hand, client/python/README.md "Tests"),
never the source tree, which lacks the modules made at build time.

Where the programs come from (ctest sets the variables; otherwise they are
looked for in a build dir of the checkout):

* REFCACHE_BROKER  the broker binary; else <repo>/build*/broker/refcache-broker (newest)
* REFCACHE_CLI     the C CLI; else `refcache` next to the broker's build dir (client/refcache)
"""

import glob
import os
import selectors
import signal
import subprocess
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)                       # client/python
REPO = os.path.normpath(os.path.join(PKG_ROOT, "..", ".."))

import refcache  # noqa: E402


def _newest(paths):
    paths = [p for p in paths if os.path.isfile(p) and os.access(p, os.X_OK)]
    return max(paths, key=os.path.getmtime) if paths else None


def broker_binary():
    path = os.environ.get("REFCACHE_BROKER")
    if path:
        return path
    return _newest(glob.glob(os.path.join(REPO, "build*", "broker", "refcache-broker")))


def cli_binary():
    path = os.environ.get("REFCACHE_CLI")
    if path:
        return path
    broker = broker_binary()
    if broker:
        cand = os.path.join(os.path.dirname(os.path.dirname(broker)), "client", "refcache")
        if os.path.isfile(cand):
            return cand
    return _newest(glob.glob(os.path.join(REPO, "build*", "client", "refcache")))


class Broker:
    """A refcache-broker subprocess; endpoints read from its stdout."""

    def __init__(self, workers=2, extra=(), start_timeout=15.0, workers_endpoint="tcp://127.0.0.1:*",
                 control_endpoint="tcp://127.0.0.1:*", clients_endpoint="tcp://127.0.0.1:*"):
        path = broker_binary()
        if not path or not os.path.isfile(path):
            pytest.fail("refcache-broker not found (%s): build it (cmake --build BUILD --target "
                        "refcache-broker) or set REFCACHE_BROKER" % (path or "searched %s/build*/broker"
                                                                     % REPO), pytrace=False)
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [path, "--clients", clients_endpoint, "--workers-endpoint", workers_endpoint,
             "--control", control_endpoint, "--workers", str(workers), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr)
        self.endpoints = {}
        try:
            self._read_banner(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _read_banner(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buf = b""
        lines = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("broker not ready in %.0f s; stdout %r; stderr %r"
                                     % (timeout, lines, self.stderr_text()))
            if not sel.select(left):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                self.proc.wait(5)
                raise AssertionError("broker exited (%s) before ready; stdout %r; stderr %r"
                                     % (self.proc.returncode, lines, self.stderr_text()))
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.decode(errors="replace").strip()
                lines.append(line)
                if line == "ready":
                    for name in ("clients", "workers", "control"):
                        assert name in self.endpoints, "no %r line in %r" % (name, lines)
                    return
                parts = line.split()
                if len(parts) == 2 and parts[0] in ("clients", "workers", "control"):
                    self.endpoints[parts[0]] = parts[1]

    @property
    def clients(self):
        return self.endpoints["clients"]

    @property
    def workers(self):
        return self.endpoints["workers"]

    @property
    def control(self):
        return self.endpoints["control"]

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        return self.proc.returncode


@pytest.fixture
def broker(request):
    """A broker with 2 in-process workers (built-in functions)."""
    b = Broker(workers=2)
    request.addfinalizer(b.stop)
    return b


@pytest.fixture
def bare_broker(request):
    """A broker with no in-process workers."""
    b = Broker(workers=0)
    request.addfinalizer(b.stop)
    return b


@pytest.fixture
def client(broker):
    c = refcache.Client(broker.clients, timeout_ms=5000)
    yield c
    c.close()


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


class WorkerThread:
    """A refcache.Worker serving in a background thread."""

    def __init__(self, broker, functions, **kwargs):
        self.worker = refcache.Worker(broker.workers, broker.control, functions, **kwargs)
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.worker.announced.wait(5), "worker did not announce itself"

    def _run(self):
        try:
            self.worker.run()
        except BaseException as e:  # surfaced by stop()
            self.error = e

    def stop(self):
        self.worker.stop()
        self.thread.join(5)
        assert not self.thread.is_alive(), "Worker.run() did not return after stop()"
        if self.error:
            raise self.error


@pytest.fixture
def start_worker(request):
    """start_worker(broker, functions, **kwargs) -> WorkerThread, stopped at teardown;
    returns once the broker counts the extra worker."""
    started = []

    def start(broker, functions, **kwargs):
        c = refcache.Client(broker.clients, timeout_ms=5000)
        try:
            before = c.stats()["workers"]
            w = WorkerThread(broker, functions, **kwargs)
            started.append(w)
            wait_for(lambda: c.stats()["workers"] > before, what="broker to count the worker")
        finally:
            c.close()
        return w

    yield start
    for w in started:
        w.stop()
