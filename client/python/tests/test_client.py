"""The Python client against a real broker with its built-in workers."""

import time

import pytest

import refcache


def sieve(n):
    if n < 3:
        return []
    flags = bytearray([1]) * n
    flags[0:2] = b"\x00\x00"
    for i in range(2, int(n ** 0.5) + 1):
        if flags[i]:
            flags[i * i::i] = bytearray(len(range(i * i, n, i)))
    return [i for i in range(n) if flags[i]]


def test_seed_scenario(client, capsys):
    """submit sleep (5 s) with a 100 ms async timeout -> PROCESSING -> cancel ->
    True -> CANCELLED -> cancel again -> False."""
    t0 = time.monotonic()
    task = client.submit("sleep", {"ms": 5000}, async_timeout_ms=100)
    held = time.monotonic() - t0
    assert task.state == "PROCESSING"
    assert len(task.ref_id) == 32 and all(c in "0123456789abcdef" for c in task.ref_id)
    assert 0.09 <= held < 2.0
    first = client.cancel(task.ref_id)
    assert first is True
    status = client.status(task.ref_id)
    assert status.state == "CANCELLED"
    assert status.error_code == "CANCELLED"
    assert status.result == b"" and status.result_size == 0
    second = client.cancel(task.ref_id)
    assert second is False
    assert client.status(task.ref_id).state == "CANCELLED"
    with capsys.disabled():
        print("\nseed scenario: submit -> %s %s (%.0f ms); cancel -> %s; status -> %s; "
              "cancel again -> %s" % (task.state, task.ref_id, held * 1000, first,
                                      status.state, second))


def test_cancelled_sleep_really_stops(client):
    task = client.submit("sleep", {"ms": 5000, "step_ms": 10}, async_timeout_ms=100)
    assert client.cancel(task.ref_id)
    stopped = client.wait(task.ref_id, 2000)
    assert stopped.state == "CANCELLED"
    deadline = time.monotonic() + 2
    while client.status(task.ref_id).stopped_at_us == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    s = client.status(task.ref_id)
    assert s.stopped_at_us > 0, "the worker never acknowledged the cancel"
    assert s.ever_started
    done = s.progress_done
    time.sleep(0.1)
    assert client.status(task.ref_id).progress_done == done


def test_echo_inline(client):
    task = client.submit("echo", payload=b"hello \x00 world", async_timeout_ms=2000)
    assert task.state == "COMPLETE"
    assert task.result == b"hello \x00 world"
    assert task.result_size == len(b"hello \x00 world")
    assert not task.result_truncated
    assert task.attempt == 1
    assert task.error_code == "OK"
    assert task.created_at_us > 0 and task.finished_at_us >= task.created_at_us


def test_cache_hit_and_no_cache(client):
    payload = b"cache me %f" % time.time()
    first = client.submit("echo", payload=payload, async_timeout_ms=2000)
    assert first.state == "COMPLETE" and not first.cache_hit
    again = client.submit("echo", payload=payload, async_timeout_ms=2000)
    assert again.state == "COMPLETE" and again.cache_hit
    assert again.ref_id != first.ref_id and again.result == payload  # a handle of its own
    fresh = client.submit("echo", payload=payload, async_timeout_ms=2000, no_cache=True)
    assert fresh.state == "COMPLETE" and not fresh.cache_hit
    assert fresh.ref_id != first.ref_id


def test_wait_and_status(client):
    task = client.submit("sleep", {"ms": 200})
    assert task.state in ("PENDING", "PROCESSING")
    short = client.wait(task.ref_id, 10)
    assert short.state in ("PENDING", "PROCESSING")
    done = client.wait(task.ref_id, 5000)
    assert done.state == "COMPLETE"
    assert done.progress_done == done.progress_total > 0
    assert client.status(task.ref_id).state == "COMPLETE"


def test_large_result_paged(client):
    n = 1000000
    task = client.submit("primes", {"n": n}, async_timeout_ms=20000)
    assert task.state == "COMPLETE", task
    expected = "".join("%d\n" % p for p in sieve(n)).encode()
    assert task.result_size == len(expected)
    assert task.result_truncated
    assert 0 < len(task.result) < len(expected)
    assert expected.startswith(task.result)          # the preview
    # One page at an offset, then everything page by page.
    page = client.fetch(task.ref_id, offset=1000, length=5000)
    assert page.offset == 1000 and page.total_size == len(expected)
    assert page.data == expected[1000:6000]
    assert client.fetch_all(task.ref_id, page_bytes=100000) == expected
    assert client.fetch_all(task.ref_id) == expected
    assert client.result(task) == expected


def test_delete(client):
    task = client.submit("echo", payload=b"x", async_timeout_ms=2000, no_cache=True)
    assert task.state == "COMPLETE"
    assert client.delete(task.ref_id) is True
    with pytest.raises(refcache.NotFound):
        client.status(task.ref_id)


def test_errors_mapped_to_exceptions(client):
    with pytest.raises(refcache.Unimplemented) as e:
        client.submit("no-such-function")
    assert e.value.code == "UNIMPLEMENTED" and e.value.message
    with pytest.raises(refcache.InvalidArgument) as e:
        client.submit("")
    assert e.value.code == "INVALID_ARGUMENT"
    unknown = "0" * 32
    with pytest.raises(refcache.NotFound) as e:
        client.status(unknown)
    assert e.value.code == "NOT_FOUND" and isinstance(e.value, refcache.Error)
    with pytest.raises(refcache.NotFound):
        client.wait(unknown, 10)
    with pytest.raises(refcache.NotFound):
        client.fetch(unknown)
    with pytest.raises(refcache.NotFound):
        client.delete(unknown)
    assert client.cancel(unknown) is False           # the contract: not an error

    running = client.submit("sleep", {"ms": 5000}, async_timeout_ms=50)
    try:
        with pytest.raises(refcache.FailedPrecondition):
            client.fetch(running.ref_id)              # not COMPLETE
        with pytest.raises(refcache.FailedPrecondition):
            client.delete(running.ref_id)             # not terminal
    finally:
        client.cancel(running.ref_id)

    done = client.submit("echo", payload=b"abc", async_timeout_ms=2000, no_cache=True)
    with pytest.raises(refcache.OutOfRange):
        client.fetch(done.ref_id, offset=100)


def test_failed_task(client):
    task = client.submit("fail", {"message": "boom", "retryable": 0}, async_timeout_ms=2000)
    assert task.state == "FAILED"
    assert "boom" in task.error
    assert task.error_code not in ("OK", "")
    with pytest.raises(refcache.FailedPrecondition):
        client.fetch(task.ref_id)


def test_deadline(client):
    task = client.submit("sleep", {"ms": 5000}, deadline_ms=100, async_timeout_ms=3000)
    assert task.state == "FAILED"
    assert task.error_code == "DEADLINE_EXCEEDED"


def test_stats(client):
    client.submit("echo", payload=b"s", async_timeout_ms=2000)
    s = client.stats()
    assert s["workers"] == 2
    assert s["submitted_total"] >= 1
    assert s["requests_total"] >= 2
    assert s["version"]


def _assert_invisible(c, ref):
    """From outside its namespace a task does not exist."""
    with pytest.raises(refcache.NotFound):
        c.status(ref)
    with pytest.raises(refcache.NotFound):
        c.wait(ref, 50)
    with pytest.raises(refcache.NotFound):
        c.fetch(ref)
    assert c.cancel(ref) is False
    with pytest.raises(refcache.NotFound):
        c.delete(ref)


def test_namespace_scoping(broker, client):
    with refcache.Client(broker.clients, namespace="team-a") as a, \
            refcache.Client(broker.clients, namespace="team-b") as b:
        task = a.submit("sleep", {"ms": 2000}, no_cache=True)   # the connection's namespace
        assert task.namespace == "team-a"
        _assert_invisible(client, task.ref_id)                   # no namespace
        _assert_invisible(b, task.ref_id)                        # another one
        st = a.status(task.ref_id)                               # still running
        assert st.namespace == "team-a" and st.state in ("PENDING", "PROCESSING")
        assert a.wait(task.ref_id, 10).state in ("PENDING", "PROCESSING")
        with pytest.raises(refcache.FailedPrecondition):
            a.fetch(task.ref_id)                                 # found, not COMPLETE
        assert a.cancel(task.ref_id) is True
        _assert_invisible(b, task.ref_id)
        assert a.delete(task.ref_id) is True
        with pytest.raises(refcache.NotFound):
            a.status(task.ref_id)

        # submit(namespace=...) wins over the connection's for that call.
        echo = b.submit("echo", payload=b"ns", async_timeout_ms=3000, no_cache=True,
                        namespace="team-a")
        assert echo.namespace == "team-a" and echo.state == "COMPLETE"
        with pytest.raises(refcache.NotFound):
            b.status(echo.ref_id)
        assert a.fetch_all(echo.ref_id) == b"ns"
