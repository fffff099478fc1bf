"""AsyncClient: the refcache client on asyncio, many calls in flight on one
DEALER socket, replies matched to their calls by request id."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import Any, Mapping, Optional, Union

import zmq
import zmq.asyncio

from . import _curve
from . import _retry
from . import _messages as m
from ._pb import pb
from ._messages import Page, Task
from .client import DEFAULT_ENDPOINT
from .errors import Timeout


class AsyncClient:
    """Like Client, with coroutine methods. Create and use it inside a running
    event loop; ``await client.close()`` (or ``async with``) when done.
    ``namespace`` works as in Client: sent on every request, a non-empty
    ``submit(namespace=...)`` wins for that submit. Idempotent calls in flight
    are sent again when the broker comes back, as in Client (``retry``)."""

    def __init__(self, endpoint: Optional[str] = None, timeout_ms: int = 5000,
                 context: Optional[zmq.asyncio.Context] = None, namespace: str = "",
                 curve_secret_file: Optional[str] = None, broker_public_file: Optional[str] = None,
                 retry: bool = True) -> None:
        self.endpoint = endpoint or os.environ.get("REFCACHE_ENDPOINT") or DEFAULT_ENDPOINT
        self.timeout_ms = timeout_ms
        # Sent on every request: a task is found only in its own namespace.
        self.namespace = namespace or ""
        self._ctx = context or zmq.asyncio.Context.instance()
        self._sock: Optional[zmq.asyncio.Socket] = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, 0)
        self._sock.setsockopt(zmq.RCVHWM, 0)
        try:
            _curve.apply(self._sock, *_curve.from_env(curve_secret_file, broker_public_file))
        except ValueError:
            self._sock.close(0)
            raise
        self._sock.connect(self.endpoint)
        self._comebacks = _retry.Comebacks(self._sock) if retry else None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        # The idempotent requests in flight, to send again: id -> (request, hold_ms, start).
        self._sent: dict[int, tuple[Any, int, float]] = {}
        self._reader: Optional[asyncio.Future[None]] = None
        self._watcher: Optional[asyncio.Future[None]] = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for task in (self._reader, self._watcher):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._reader = self._watcher = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(RuntimeError("client closed"))
        self._pending.clear()
        if self._sock is not None:
            if self._comebacks is not None:
                self._comebacks.close(self._sock)
                self._comebacks = None
            self._sock.close(0)
            self._sock = None

    async def _read_loop(self) -> None:
        while True:
            frames = await self._sock.recv_multipart()
            reply = pb.Reply()
            try:
                reply.ParseFromString(frames[-1])
            except Exception:
                continue
            fut = self._pending.pop(reply.id, None)
            if fut is not None and not fut.done():
                fut.set_result(reply)
            # else: late reply to a call that timed out -- discard

    async def _watch_loop(self) -> None:
        """Sends the idempotent requests in flight again when the broker
        comes back."""
        while True:
            frames = await self._comebacks.socket.recv_multipart()
            if self._comebacks.feed(frames):
                for req, hold_ms, start in list(self._sent.values()):
                    await self._sock.send(_retry.again(req, hold_ms, start))

    async def _call(self, req: Any, hold_ms: int = 0, timeout_ms: Optional[int] = None) -> Any:
        if self._sock is None:
            raise RuntimeError("client is closed")
        if self._reader is None or self._reader.done():
            self._reader = asyncio.ensure_future(self._read_loop())
        if self._comebacks is not None and (self._watcher is None or self._watcher.done()):
            self._watcher = asyncio.ensure_future(self._watch_loop())
        if timeout_ms is None:
            timeout_ms = self.timeout_ms
        req.id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[req.id] = fut
        if self._comebacks is not None and _retry.idempotent(req):
            self._sent[req.id] = (req, hold_ms, time.monotonic())
        try:
            await self._sock.send(req.SerializeToString())
            return await asyncio.wait_for(fut, (hold_ms + timeout_ms) / 1000.0)
        except asyncio.TimeoutError:
            raise Timeout("no reply from %s within %d ms"
                          % (self.endpoint, hold_ms + timeout_ms)) from None
        finally:
            self._pending.pop(req.id, None)
            self._sent.pop(req.id, None)

    async def submit(self, function: str, params: Optional[Mapping[str, object]] = None,
                     payload: Union[bytes, str] = b"", async_timeout_ms: int = 0, deadline_ms: int = 0,
                     max_retries: int = 0, ttl_s: int = 0, namespace: str = "", no_cache: bool = False,
                     request_key: str = "",
                     timeout_ms: Optional[int] = None) -> Task:
        req = m.submit_request(function, params, payload, async_timeout_ms, deadline_ms,
                               max_retries, ttl_s, namespace or self.namespace, no_cache, request_key)
        return m.parse_submit(await self._call(req, async_timeout_ms, timeout_ms))

    async def status(self, ref_id: str, timeout_ms: Optional[int] = None) -> Task:
        req = m.status_request(ref_id, self.namespace)
        return m.parse_task(await self._call(req, 0, timeout_ms))

    async def wait(self, ref_id: str, timeout_ms: int, call_timeout_ms: Optional[int] = None) -> Task:
        req = m.wait_request(ref_id, timeout_ms, self.namespace)
        return m.parse_task(await self._call(req, timeout_ms, call_timeout_ms))

    async def fetch(self, ref_id: str, offset: int = 0, length: Optional[int] = None,
                    timeout_ms: Optional[int] = None) -> Page:
        req = m.fetch_request(ref_id, offset, length, self.namespace)
        return m.parse_fetch(await self._call(req, 0, timeout_ms))

    async def fetch_all(self, ref_id: str, page_bytes: Optional[int] = None) -> bytes:
        chunks, offset, total = [], 0, None
        while total is None or offset < total:
            page = await self.fetch(ref_id, offset, page_bytes)
            total = page.total_size
            if not page.data and offset < total:
                raise m.ProtocolError("empty page at offset %d of %d" % (offset, total),
                                      code="PROTOCOL")
            chunks.append(page.data)
            offset += len(page.data)
        return b"".join(chunks)

    async def cancel(self, ref_id: str, timeout_ms: Optional[int] = None) -> bool:
        req = m.cancel_request(ref_id, self.namespace)
        return m.parse_cancel(await self._call(req, 0, timeout_ms))

    async def delete(self, ref_id: str, timeout_ms: Optional[int] = None) -> bool:
        req = m.delete_request(ref_id, self.namespace)
        return m.parse_delete(await self._call(req, 0, timeout_ms))

    async def stats(self, timeout_ms: Optional[int] = None) -> dict[str, Union[int, str]]:
        return m.parse_stats(await self._call(m.stats_request(), 0, timeout_ms))
