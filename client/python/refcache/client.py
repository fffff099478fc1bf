"""The synchronous refcache client: one DEALER socket, requests matched by id."""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any, Mapping, Optional, Union

import zmq

from . import _curve
from . import _retry

from . import _messages as m
from ._pb import pb
from ._messages import Page, Task
from .errors import Timeout

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5570"


class Client:
    """Talks to a refcache broker's client channel.

    ``timeout_ms`` bounds how long a call waits for its reply (beyond the time
    the call itself asks the broker to hold it: a Submit's async timeout, a
    Wait's timeout); no reply in time raises ``refcache.Timeout``. A reply that
    arrives after its call gave up is discarded. One Client may be shared by
    threads (calls are serialised); use AsyncClient for many calls in flight.

    If the broker goes away and comes back (a restart) before a call's reply,
    the call sends its request again, with the same id, within its timeout --
    Status, Wait, Fetch, Cancel, Delete, Stats, and a Submit with a
    ``request_key``; never a Submit without one. ``retry=False``: it only waits.

    ``namespace`` is the connection's namespace, sent on every request: a task
    is found only in the namespace it was submitted in (from any other one,
    status/wait/fetch/delete raise NotFound and cancel returns False).
    ``submit(namespace=...)`` overrides it for that submit.
    """

    def __init__(self, endpoint: Optional[str] = None, timeout_ms: int = 5000,
                 context: Optional[zmq.Context] = None, namespace: str = "",
                 curve_secret_file: Optional[str] = None, broker_public_file: Optional[str] = None,
                 retry: bool = True) -> None:
        self.endpoint = endpoint or os.environ.get("REFCACHE_ENDPOINT") or DEFAULT_ENDPOINT
        self.timeout_ms = timeout_ms
        # Sent on every request: a task is found only in its own namespace.
        self.namespace = namespace or ""
        self._ctx = context or zmq.Context.instance()
        self._sock: Optional[zmq.Socket] = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        try:
            _curve.apply(self._sock, *_curve.from_env(curve_secret_file, broker_public_file))
        except ValueError:
            self._sock.close(0)
            raise
        self._sock.connect(self.endpoint)
        self._comebacks = _retry.Comebacks(self._sock) if retry else None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._sock is not None:
            if self._comebacks is not None:
                self._comebacks.close(self._sock)
                self._comebacks = None
            self._sock.close(0)
            self._sock = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _call(self, req: Any, hold_ms: int = 0, timeout_ms: Optional[int] = None) -> Any:
        if timeout_ms is None:
            timeout_ms = self.timeout_ms
        with self._lock:
            if self._sock is None:
                raise RuntimeError("client is closed")
            req.id = next(self._ids)
            start = time.monotonic()
            self._sock.send(req.SerializeToString())
            deadline = start + (hold_ms + timeout_ms) / 1000.0
            resend = self._comebacks is not None and _retry.idempotent(req)
            while True:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    raise Timeout("no reply from %s within %d ms"
                                  % (self.endpoint, hold_ms + timeout_ms))
                ready = self._wait(left_ms)
                if ready is None:  # the broker came back: it may never have had the request
                    if resend:
                        self._sock.send(_retry.again(req, hold_ms, start))
                    continue
                if not ready:
                    continue
                frames = self._sock.recv_multipart()
                reply = pb.Reply()
                try:
                    # A DEALER gets [Reply]; tolerate a stray empty delimiter.
                    reply.ParseFromString(frames[-1])
                except Exception:
                    continue
                if reply.id == req.id:
                    return reply
                # else: a late reply to a call that timed out -- discard

    def _wait(self, left_ms: int) -> Optional[bool]:
        """Waits up to left_ms for a reply: True when one waits, False when
        none came, None when the broker came back meanwhile."""
        if self._comebacks is None:
            return bool(self._sock.poll(max(1, left_ms), zmq.POLLIN))
        # A reply on its way comes first: the monitor is not looked at.
        if self._sock.poll(max(1, min(left_ms, _retry.LOOK_MS)), zmq.POLLIN):
            return True
        if left_ms <= _retry.LOOK_MS:
            return False
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._comebacks.socket, zmq.POLLIN)
        events = dict(poller.poll(left_ms - _retry.LOOK_MS))
        if self._comebacks.socket in events and self._comebacks.read():
            return None
        return self._sock in events

    def submit(self, function: str, params: Optional[Mapping[str, object]] = None,
               payload: Union[bytes, str] = b"", async_timeout_ms: int = 0, deadline_ms: int = 0,
               max_retries: int = 0, ttl_s: int = 0, namespace: str = "", no_cache: bool = False,
               request_key: str = "",
               timeout_ms: Optional[int] = None) -> Task:
        """Submits ``function(params, payload)``; returns a Task (COMPLETE with
        its result if it finished within ``async_timeout_ms``)."""
        req = m.submit_request(function, params, payload, async_timeout_ms, deadline_ms,
                               max_retries, ttl_s, namespace or self.namespace, no_cache, request_key)
        return m.parse_submit(self._call(req, async_timeout_ms, timeout_ms))

    def status(self, ref_id: str, timeout_ms: Optional[int] = None) -> Task:
        return m.parse_task(self._call(m.status_request(ref_id, self.namespace), 0, timeout_ms))

    def wait(self, ref_id: str, timeout_ms: int, call_timeout_ms: Optional[int] = None) -> Task:
        """Waits up to ``timeout_ms`` for the task to be terminal; returns its Task
        (still non-terminal if the time ran out)."""
        req = m.wait_request(ref_id, timeout_ms, self.namespace)
        return m.parse_task(self._call(req, timeout_ms, call_timeout_ms))

    def fetch(self, ref_id: str, offset: int = 0, length: Optional[int] = None,
              timeout_ms: Optional[int] = None) -> Page:
        """Reads one page of a COMPLETE task's result: a Page(data, total_size, offset)."""
        req = m.fetch_request(ref_id, offset, length, self.namespace)
        return m.parse_fetch(self._call(req, 0, timeout_ms))

    def fetch_all(self, ref_id: str, page_bytes: Optional[int] = None) -> bytes:
        """Reads the whole result page by page."""
        return m.fetch_all_pages(lambda r, o, n: self.fetch(r, o, n), ref_id, page_bytes)

    def result(self, task: Task) -> bytes:
        """The whole result of a COMPLETE Task (inline, or fetched if truncated)."""
        if not task.result_truncated and len(task.result) == task.result_size:
            return task.result
        return self.fetch_all(task.ref_id)

    def cancel(self, ref_id: str, timeout_ms: Optional[int] = None) -> bool:
        """True only if this call moved the task to CANCELLED; False if it was
        already terminal or is unknown."""
        return m.parse_cancel(self._call(m.cancel_request(ref_id, self.namespace), 0, timeout_ms))

    def delete(self, ref_id: str, timeout_ms: Optional[int] = None) -> bool:
        """Drops a terminal task now; raises NotFound / FailedPrecondition."""
        return m.parse_delete(self._call(m.delete_request(ref_id, self.namespace), 0, timeout_ms))

    def stats(self, timeout_ms: Optional[int] = None) -> dict[str, Union[int, str]]:
        """The broker's counters as a dict (StatsReply field -> value)."""
        return m.parse_stats(self._call(m.stats_request(), 0, timeout_ms))
