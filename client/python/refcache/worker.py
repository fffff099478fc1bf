"""A refcache worker in Python: serves job functions to a broker exactly as the
C workers do (docs/protocol.md, "Workers").

One Worker is one worker thread in the protocol's sense: two DEALER sockets
with the same routing id (its worker_id) -- the control socket sends
ControlHello and receives CancelNotice, the work socket sends Ready and the
task messages and receives Dispatch, Heartbeat and Reannounce. Jobs run one at
a time on the thread that calls run(); up to ``credit`` tasks are held.
"""

from __future__ import annotations

import collections
import itertools
import os
import socket
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Optional, Union

import zmq

from . import _curve
from ._pb import pb
from .errors import JobFailed

_counter = itertools.count(1)

# What a job function returns: the result (str is UTF-8 encoded).
JobResult = Union[bytes, bytearray, memoryview, str]
JobFunction = Callable[["Job"], JobResult]

# As the C worker (workers/rc_wpoll.c): bounded queues, a send that cannot
# proceed for a second (broker away, queue full) is dropped, quick reconnects,
# and progress rate-limited so that a fast-stepping job cannot flood the broker.
WORKER_HWM = 1000
WORKER_SNDTIMEO_MS = 1000
WORKER_RECONNECT_IVL_MS = 100
WORKER_RECONNECT_IVL_MAX_MS = 2000
PROGRESS_MIN_INTERVAL_S = 0.005

# Tasks the broker may hand a Worker at once (running + held). Above one, the
# next short task is already here when a job ends instead of a round trip
# away (a few times the throughput of credit 1 for short jobs); the broker
# sends a busy worker more only while what it holds is expected to end within
# its dispatch window (1 ms by default), so a long task never waits behind
# another and a function of unknown length is never sent ahead.
DEFAULT_CREDIT = 16


class Job:
    """What a job function receives."""

    def __init__(self, worker: Worker, dispatch: Any) -> None:
        self._worker = worker
        self.ref_id: str = dispatch.ref_id
        self.attempt: int = dispatch.attempt
        self.function: str = dispatch.function
        self.params: dict[str, str] = dict(dispatch.params)
        self.payload: bytes = bytes(dispatch.payload)
        self.cancel_reason: Optional[str] = None   # "CANCELLED" or "DEADLINE_EXCEEDED" once cancelled
        self._cancelled = False     # the broker sent a CancelNotice for this attempt
        self._stop_seen = False     # the worker is stopping and the job was told so
        self._last_progress = 0.0

    def cancelled(self) -> bool:
        """True once the broker asked this task to stop (or the worker is
        stopping). Non-blocking: polls the control socket; also keeps the
        worker's heartbeat going, so call it at least once per heartbeat."""
        self._worker._poll_during_job()
        if self._cancelled:
            return True
        if self._worker._stop.is_set():
            self._stop_seen = True
            return True
        return False

    def progress(self, done: int, total: int) -> None:
        """Reports progress (done out of total) to the broker (at most one
        message per 5 ms, and always the final done == total)."""
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_MIN_INTERVAL_S and done < total:
            self._worker._poll_during_job()
            return
        self._last_progress = now
        msg = pb.WorkerMessage()
        msg.progress.ref_id = self.ref_id
        msg.progress.attempt = self.attempt
        msg.progress.done = int(done)
        msg.progress.total = int(total)
        self._worker._send_work(msg)
        self._worker._poll_during_job()


class Worker:
    """Serves ``functions`` ({"name": fn(job) -> bytes}) to the broker at
    ``endpoint`` (work channel) / ``control_endpoint`` (control channel).

    A function returns the result bytes (str is UTF-8 encoded; anything else,
    None included, fails the task with INTERNAL, as a C job that sets no result).
    Raising ``refcache.JobFailed(code, message, retryable)`` fails the task with
    that code; any other exception fails it with UNKNOWN and the exception
    text. A function should call ``job.cancelled()`` between steps and return
    when it is true; the task is then acknowledged as cancelled, never
    completed. ``run()`` serves until ``stop()`` (thread- and signal-safe).
    """

    def __init__(self, endpoint: str, control_endpoint: str, functions: Mapping[str, JobFunction],
                 cacheable: Iterable[str] = (), credit: int = DEFAULT_CREDIT, heartbeat_ms: int = 1000,
                 liveness: int = 5, worker_id: Optional[str] = None, context: Optional[zmq.Context] = None,
                 curve_secret_file: Optional[str] = None, broker_public_file: Optional[str] = None) -> None:
        if not functions:
            raise ValueError("a worker needs at least one function")
        cacheable = list(cacheable)
        unknown = set(cacheable) - set(functions)
        if unknown:
            raise ValueError("cacheable functions not served: %s" % sorted(unknown))
        self.endpoint = endpoint
        self.control_endpoint = control_endpoint
        self.functions = dict(functions)
        self.cacheable = list(cacheable)
        self.credit = max(1, int(credit))
        self.heartbeat_ms = max(10, int(heartbeat_ms))
        self.liveness = max(1, int(liveness))
        self._base_id = worker_id or "%s-py%d" % (os.urandom(8).hex(), next(_counter))
        self.worker_id = self._base_id
        self._generation = 0
        self._ctx = context or zmq.Context.instance()
        self._curve = (curve_secret_file, broker_public_file)
        # Fail now, with the file's name, rather than on the worker thread.
        probe = self._ctx.socket(zmq.DEALER)
        try:
            _curve.apply(probe, *self._curve)
        finally:
            probe.close(0)
        self._stop = threading.Event()
        self._work = self._control = None
        self._held = collections.deque()
        # Cancel notices for tasks not (yet) held: the notice travels on the
        # control connection and may overtake its Dispatch on the work
        # connection, so it is remembered and applied when the Dispatch comes.
        self._early_cancels = collections.OrderedDict()
        self._running: Optional[Job] = None
        self._last_sent = self._last_heard = 0.0
        self.tasks_done = 0          # results, failures and cancel acks sent
        self.reconnects = 0
        self.announced = threading.Event()  # set once ControlHello and Ready were sent

    # ------------------------------------------------------------ public

    def stop(self) -> None:
        """Asks run() to return; a running job sees cancelled() true."""
        self._stop.set()

    def run(self) -> None:
        """Connects, announces and serves jobs until stop()."""
        self._connect()
        try:
            while not self._stop.is_set():
                self._drain()
                if time.monotonic() - self._last_heard > self.liveness * self.heartbeat_ms / 1000.0:
                    self._reconnect()
                    continue
                if self._held:
                    # The control socket was drained just above: a task
                    # cancelled while held never starts.
                    self._run_job(self._held.popleft())
                    continue
                self._heartbeat_if_due()
                wait_ms = self.heartbeat_ms - (time.monotonic() - self._last_sent) * 1000.0
                poller = zmq.Poller()
                poller.register(self._work, zmq.POLLIN)
                poller.register(self._control, zmq.POLLIN)
                poller.poll(max(1, min(100, int(wait_ms))))
        finally:
            self._shutdown()

    # ------------------------------------------------------------ sockets

    def _connect(self):
        self._control = self._ctx.socket(zmq.DEALER)
        self._work = self._ctx.socket(zmq.DEALER)
        for sock, ep in ((self._control, self.control_endpoint), (self._work, self.endpoint)):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, WORKER_HWM)
            sock.setsockopt(zmq.RCVHWM, WORKER_HWM)
            sock.setsockopt(zmq.SNDTIMEO, WORKER_SNDTIMEO_MS)
            sock.setsockopt(zmq.RECONNECT_IVL, WORKER_RECONNECT_IVL_MS)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, WORKER_RECONNECT_IVL_MAX_MS)
            sock.setsockopt(zmq.ROUTING_ID, self.worker_id.encode())
            _curve.apply(sock, *self._curve)
            sock.connect(ep)
        self._last_heard = time.monotonic()
        self._announce()

    def _close(self, linger=0):
        for sock in (self._work, self._control):
            if sock is not None:
                sock.close(linger)
        self._work = self._control = None

    def _reconnect(self):
        # The broker has been silent for liveness x heartbeat: new sockets and
        # a new id (the broker may still hold the old routing id), announce again.
        self._close()
        self._held.clear()
        self._early_cancels.clear()
        self._generation += 1
        self.reconnects += 1
        self.worker_id = "%s.%d" % (self._base_id, self._generation)
        self._connect()

    def _announce(self):
        hello = pb.ControlHello(worker_id=self.worker_id)
        try:
            self._control.send(hello.SerializeToString())
        except zmq.Again:
            pass  # liveness will reconnect
        msg = pb.WorkerMessage()
        r = msg.ready
        r.worker_id = self.worker_id
        r.functions.extend(self.functions)
        r.cacheable.extend(self.cacheable)
        r.credit = self.credit
        r.heartbeat_ms = self.heartbeat_ms
        # Where it runs, for the broker's Workers list (`refcache workers`).
        r.host = socket.gethostname()[:63]
        r.pid = os.getpid()
        self._send_work(msg)
        self.announced.set()

    def _send_work(self, msg):
        try:
            self._work.send(msg.SerializeToString())
        except zmq.Again:
            pass  # broker away and queue full for SNDTIMEO: it will declare us lost
        self._last_sent = time.monotonic()

    def _heartbeat_if_due(self):
        if (time.monotonic() - self._last_sent) * 1000.0 >= self.heartbeat_ms:
            msg = pb.WorkerMessage()
            msg.heartbeat.SetInParent()
            self._send_work(msg)

    def _drain(self):
        """Handles everything waiting on both sockets, without blocking."""
        # Work first: a Dispatch already here is held before its notice is read.
        for sock, handler in ((self._work, self._on_work), (self._control, self._on_control)):
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._last_heard = time.monotonic()
                handler(frames[-1])

    def _poll_during_job(self):
        self._drain()
        self._heartbeat_if_due()

    # ------------------------------------------------------------ events

    def _on_control(self, data):
        msg = pb.ControlMessage()
        try:
            msg.ParseFromString(data)
        except Exception:
            return
        if msg.WhichOneof("body") != "cancel":
            return
        c = msg.cancel
        job = self._running
        if job is not None and job.ref_id == c.ref_id and job.attempt == c.attempt:
            job._cancelled = True
            job.cancel_reason = pb.Code.Name(c.reason)[len("CODE_"):] if c.reason else "CANCELLED"
            return
        for d in list(self._held):
            if d.ref_id == c.ref_id and d.attempt == c.attempt:
                self._held.remove(d)
                self._send_cancel_ack(d.ref_id, d.attempt, started=False)
                return
        # A notice for a task this worker does not hold: either finished (then
        # nothing to do) or its Dispatch is still in flight; remember it.
        self._early_cancels[(c.ref_id, c.attempt)] = True
        while len(self._early_cancels) > 4096:
            self._early_cancels.popitem(last=False)

    def _on_work(self, data):
        msg = pb.BrokerMessage()
        try:
            msg.ParseFromString(data)
        except Exception:
            return
        kind = msg.WhichOneof("body")
        if kind == "dispatch":
            d = msg.dispatch
            if self._early_cancels.pop((d.ref_id, d.attempt), None):
                self._send_cancel_ack(d.ref_id, d.attempt, started=False)
                return
            held = pb.Dispatch()
            held.CopyFrom(d)
            self._held.append(held)
        elif kind == "reannounce":
            # The broker does not know us: drop held tasks without acking, announce again.
            self._held.clear()
            self._early_cancels.clear()
            self._announce()
        # heartbeat: _last_heard was updated by _drain

    def _send_cancel_ack(self, ref_id, attempt, started):
        msg = pb.WorkerMessage()
        msg.cancel_ack.ref_id = ref_id
        msg.cancel_ack.attempt = attempt
        msg.cancel_ack.started = started
        self._send_work(msg)
        self.tasks_done += 1

    def _send_failure(self, ref_id, attempt, code, message, retryable):
        msg = pb.WorkerMessage()
        f = msg.failure
        f.ref_id = ref_id
        f.attempt = attempt
        f.code = code
        f.message = message
        f.retryable = retryable
        self._send_work(msg)
        self.tasks_done += 1

    # ------------------------------------------------------------ jobs

    def _run_job(self, d):
        job = Job(self, d)
        self._running = job
        msg = pb.WorkerMessage()
        msg.started.ref_id = job.ref_id
        msg.started.attempt = job.attempt
        self._send_work(msg)
        fn = self.functions.get(job.function)
        outcome = None
        try:
            if fn is None:
                outcome = ("fail", pb.CODE_UNIMPLEMENTED, 'unknown function "%s"' % job.function,
                           False)
            else:
                out = fn(job)
                if isinstance(out, str):
                    out = out.encode()
                if isinstance(out, (bytes, bytearray, memoryview)):
                    outcome = ("result", bytes(out))
                else:
                    outcome = ("fail", pb.CODE_INTERNAL, 'function "%s" returned %s, not bytes'
                               % (job.function, type(out).__name__), False)
        except JobFailed as e:
            outcome = ("fail", e.code, e.message, e.retryable)
        except Exception as e:
            outcome = ("fail", pb.CODE_UNKNOWN, "%s: %s" % (type(e).__name__, e), False)
        finally:
            # A notice that came while the job was finishing still wins: the
            # broker has already moved the task to CANCELLED.
            self._drain()
            self._running: Optional[Job] = None
        if job._cancelled:
            self._send_cancel_ack(job.ref_id, job.attempt, started=True)
        elif job._stop_seen:
            self._send_failure(job.ref_id, job.attempt, pb.CODE_UNAVAILABLE,
                               "worker shutting down", True)
        elif outcome[0] == "result":
            msg = pb.WorkerMessage()
            msg.result.ref_id = job.ref_id
            msg.result.attempt = job.attempt
            msg.result.data = outcome[1]
            self._send_work(msg)
            self.tasks_done += 1
        else:
            self._send_failure(job.ref_id, job.attempt, outcome[1], outcome[2], outcome[3])

    def _shutdown(self):
        # Held tasks never started: hand them back (retryable) so the broker
        # need not wait for the worker to be declared lost.
        if self._work is not None:
            while self._held:
                d = self._held.popleft()
                self._send_failure(d.ref_id, d.attempt, pb.CODE_UNAVAILABLE,
                                   "worker shutting down", True)
        self._close(linger=500)
