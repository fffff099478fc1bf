"""AsyncClient: many calls in flight on one socket, matched by request id."""

import asyncio

import refcache


def test_pipelined_echo(broker):
    async def main():
        async with refcache.AsyncClient(broker.clients, timeout_ms=20000) as c:
            n = 1000
            tasks = await asyncio.gather(*[
                c.submit("echo", payload=b"msg-%d" % i, async_timeout_ms=10000)
                for i in range(n)])
            assert [t.result for t in tasks] == [b"msg-%d" % i for i in range(n)]
            assert all(t.state == "COMPLETE" for t in tasks)
            # Mixed calls in flight: replies come back in any order.
            slow = await c.submit("sleep", {"ms": 300})
            waited, statuses = await asyncio.gather(
                c.wait(slow.ref_id, 5000),
                asyncio.gather(*[c.status(t.ref_id) for t in tasks[:100]]))
            assert waited.state == "COMPLETE"
            assert [s.ref_id for s in statuses] == [t.ref_id for t in tasks[:100]]
            try:
                await c.status("0" * 32)
            except refcache.NotFound as e:
                assert e.code == "NOT_FOUND"
            else:
                raise AssertionError("expected NotFound")
            assert await c.cancel("0" * 32) is False
            assert (await c.stats())["submitted_total"] >= 1
    asyncio.run(asyncio.wait_for(main(), 60))


def test_namespace_scoping(broker):
    async def invisible(c, ref):
        for call in (c.status(ref), c.wait(ref, 50), c.fetch(ref), c.delete(ref)):
            try:
                await call
            except refcache.NotFound:
                pass
            else:
                raise AssertionError("expected NotFound")
        assert await c.cancel(ref) is False

    async def main():
        async with refcache.AsyncClient(broker.clients, namespace="team-a") as a, \
                refcache.AsyncClient(broker.clients, namespace="team-b") as b, \
                refcache.AsyncClient(broker.clients) as none:
            task = await a.submit("sleep", {"ms": 2000}, no_cache=True)
            assert task.namespace == "team-a"
            await invisible(none, task.ref_id)
            await invisible(b, task.ref_id)
            st = await a.status(task.ref_id)
            assert st.state in ("PENDING", "PROCESSING")
            assert (await a.wait(task.ref_id, 10)).state in ("PENDING", "PROCESSING")
            assert await a.cancel(task.ref_id) is True
            assert await a.delete(task.ref_id) is True
            echo = await b.submit("echo", payload=b"x", async_timeout_ms=3000, no_cache=True,
                                  namespace="team-a")
            assert echo.namespace == "team-a"
            assert await a.fetch_all(echo.ref_id) == b"x"
            await invisible(b, echo.ref_id)
    asyncio.run(asyncio.wait_for(main(), 60))
