"""Client behaviour that needs no broker: a fake ROUTER server on loopback."""

import threading

import pytest
import zmq

import refcache
from refcache import pb


@pytest.fixture
def fake_server():
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, "tcp://127.0.0.1:%d" % port
    sock.close(0)


def test_timeout_and_late_reply_discarded(fake_server):
    server, endpoint = fake_server
    client = refcache.Client(endpoint, timeout_ms=200)
    try:
        with pytest.raises(refcache.Timeout) as e:
            client.status("a" * 32)
        assert e.value.code == "TIMEOUT"
        # The server now answers the first request late, then the second in time.
        ident, data = server.recv_multipart()
        first = pb.Request.FromString(data)
        assert first.WhichOneof("body") == "status"

        def serve():
            ident2, data2 = server.recv_multipart()
            second = pb.Request.FromString(data2)
            late = pb.Reply(id=first.id, code=pb.CODE_OK)
            late.task.ref_id = "late"
            late.task.state = pb.STATE_COMPLETE
            server.send_multipart([ident, late.SerializeToString()])
            ok = pb.Reply(id=second.id, code=pb.CODE_OK)
            ok.task.ref_id = second.status.ref_id
            ok.task.state = pb.STATE_PENDING
            server.send_multipart([ident2, ok.SerializeToString()])

        t = threading.Thread(target=serve)
        t.start()
        task = client.status("b" * 32)
        t.join(5)
        assert task.ref_id == "b" * 32 and task.state == "PENDING"
    finally:
        client.close()


def test_code_mapping():
    for code, cls in [(pb.CODE_NOT_FOUND, refcache.NotFound),
                      (pb.CODE_INVALID_ARGUMENT, refcache.InvalidArgument),
                      (pb.CODE_RESOURCE_EXHAUSTED, refcache.ResourceExhausted),
                      (pb.CODE_UNIMPLEMENTED, refcache.Unimplemented),
                      (pb.CODE_UNAVAILABLE, refcache.Unavailable),
                      (pb.CODE_DEADLINE_EXCEEDED, refcache.DeadlineExceeded),
                      (pb.CODE_FAILED_PRECONDITION, refcache.FailedPrecondition),
                      (pb.CODE_OUT_OF_RANGE, refcache.OutOfRange)]:
        err = refcache.errors.error_for(code, "msg")
        assert isinstance(err, cls) and isinstance(err, refcache.Error)
        assert err.code == pb.Code.Name(code)[len("CODE_"):]
        assert err.message == "msg"
    assert refcache.JobFailed("invalid_argument", "x").code == pb.CODE_INVALID_ARGUMENT
    with pytest.raises(ValueError):
        refcache.JobFailed("NOPE", "x")
