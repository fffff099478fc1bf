"""Request building and reply decoding shared by Client and AsyncClient."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._pb import pb
from .errors import ProtocolError, code_name, error_for, STATE_NAMES

OK = 0
NOT_FOUND = pb.CODE_NOT_FOUND


@dataclass
class Task:
    """A task's state as the broker last reported it."""

    ref_id: str
    state: str                      # "PENDING", "PROCESSING", "COMPLETE", "FAILED", "CANCELLED"
    result: bytes = b""             # the whole result, or a preview when result_truncated
    result_size: int = 0
    result_truncated: bool = False
    progress_done: int = 0
    progress_total: int = 0
    attempt: int = 0
    error: str = ""
    error_code: str = "OK"
    function: str = ""
    namespace: str = ""
    max_retries: int = 0
    ever_started: bool = False
    created_at_us: int = 0
    started_at_us: int = 0
    finished_at_us: int = 0
    stopped_at_us: int = 0
    expires_at_us: int = 0
    cache_hit: bool = False         # Submit only: an earlier result was returned
    deduplicated: bool = False      # Submit only: joined an identical task in flight
    replayed: bool = False          # Submit only: its request_key named an earlier Submit, whose handle this is

    @property
    def terminal(self) -> bool:
        return self.state in ("COMPLETE", "FAILED", "CANCELLED")


@dataclass
class Page:
    """One Fetch page: ``data`` read at ``offset`` of a ``total_size`` result."""

    data: bytes
    total_size: int
    offset: int


def task_from_pb(info, **extra):
    return Task(
        ref_id=info.ref_id,
        state=STATE_NAMES.get(info.state, str(info.state)),
        result=bytes(info.result),
        result_size=info.result_size,
        result_truncated=info.result_truncated,
        progress_done=info.progress_done,
        progress_total=info.progress_total,
        attempt=info.attempt,
        error=info.error,
        error_code=code_name(info.error_code),
        function=info.function,
        namespace=getattr(info, "namespace"),
        max_retries=info.max_retries,
        ever_started=info.ever_started,
        created_at_us=info.created_at_us,
        started_at_us=info.started_at_us,
        finished_at_us=info.finished_at_us,
        stopped_at_us=info.stopped_at_us,
        expires_at_us=info.expires_at_us,
        **extra)


def submit_request(function, params=None, payload=b"", async_timeout_ms=0, deadline_ms=0,
                   max_retries=0, ttl_s=0, namespace="", no_cache=False, request_key=""):
    req = pb.Request()
    s = req.submit
    s.function = function
    for k, v in (params or {}).items():
        s.params[str(k)] = str(v)
    if isinstance(payload, str):
        payload = payload.encode()
    s.payload = bytes(payload)
    s.async_timeout_ms = int(async_timeout_ms)
    s.deadline_ms = int(deadline_ms)
    s.max_retries = int(max_retries)
    s.ttl_s = int(ttl_s)
    setattr(s, "namespace", namespace or "")
    s.no_cache = bool(no_cache)
    s.request_key = request_key or ""
    return req


def status_request(ref_id, namespace=""):
    req = pb.Request()
    req.status.ref_id = ref_id
    setattr(req.status, "namespace", namespace or "")
    return req


def wait_request(ref_id, timeout_ms, namespace=""):
    req = pb.Request()
    req.wait.ref_id = ref_id
    setattr(req.wait, "namespace", namespace or "")
    req.wait.timeout_ms = int(timeout_ms)
    return req


def fetch_request(ref_id, offset=0, length=None, namespace=""):
    req = pb.Request()
    req.fetch.ref_id = ref_id
    setattr(req.fetch, "namespace", namespace or "")
    req.fetch.offset = int(offset)
    req.fetch.length = int(length or 0)
    return req


def cancel_request(ref_id, namespace=""):
    req = pb.Request()
    req.cancel.ref_id = ref_id
    setattr(req.cancel, "namespace", namespace or "")
    return req


def delete_request(ref_id, namespace=""):
    req = pb.Request()
    req.delete.ref_id = ref_id
    setattr(req.delete, "namespace", namespace or "")
    return req


def stats_request():
    req = pb.Request()
    req.stats.SetInParent()
    return req


def _body(reply, name):
    if reply.WhichOneof("body") != name:
        raise ProtocolError("reply %d has body %r, expected %r"
                            % (reply.id, reply.WhichOneof("body"), name), code="PROTOCOL")
    return getattr(reply, name)


def check(reply):
    if reply.code != OK:
        raise error_for(reply.code, reply.message)


def parse_submit(reply):
    check(reply)
    body = _body(reply, "submit")
    return task_from_pb(body.task, cache_hit=body.cache_hit, deduplicated=body.deduplicated,
                        replayed=body.replayed)


def parse_task(reply):
    check(reply)
    return task_from_pb(_body(reply, "task"))


def parse_fetch(reply):
    check(reply)
    body = _body(reply, "fetch")
    return Page(data=bytes(body.data), total_size=body.total_size, offset=body.offset)


def parse_cancel(reply):
    # The contract: unknown ref -> NOT_FOUND with cancelled = false.
    if reply.code == NOT_FOUND:
        return False
    check(reply)
    return bool(_body(reply, "cancel").cancelled)


def parse_delete(reply):
    check(reply)
    return bool(_body(reply, "delete").found)


def parse_stats(reply):
    check(reply)
    body = _body(reply, "stats")
    return {f.name: getattr(body, f.name) for f in body.DESCRIPTOR.fields}


def fetch_all_pages(fetch, ref_id, page_bytes=None):
    """Reads a whole result with ``fetch(ref_id, offset, length)`` calls."""
    chunks = []
    offset = 0
    total = None
    while total is None or offset < total:
        page = fetch(ref_id, offset, page_bytes)
        total = page.total_size
        if not page.data and offset < total:
            raise ProtocolError("empty page at offset %d of %d" % (offset, total), code="PROTOCOL")
        chunks.append(page.data)
        offset += len(page.data)
    return b"".join(chunks)
