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
