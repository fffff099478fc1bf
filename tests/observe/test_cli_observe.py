"""The CLI's `list`, `workers` and `events` against a real broker: human and
JSON output, filters, paging, exit statuses, and the event stream of a
cancel (who asked, the worker's confirmation)."""
import json
import signal
import subprocess

from conftest import CLI, wait_for


def submit(b, *args):
    return b.json("submit", *args)["ref_id"]


def test_list(broker):
    echo = [submit(broker, "echo", "--payload", f"p{i}", "--async-timeout", "2000") for i in range(5)]
    sleeper = submit(broker, "sleep", "ms=20000")
    wait_for(lambda: broker.json("status", sleeper)["state"] == "PROCESSING", what="the sleep to run")

    out = broker.json("list")
    assert out["code"] == "OK" and out["count"] == 6 and out["next_cursor"] == ""
    assert [t["ref_id"] for t in out["tasks"]] == [sleeper] + echo[::-1]

    out = broker.json("list", "--state", "processing")
    assert [t["ref_id"] for t in out["tasks"]] == [sleeper]
    out = broker.json("list", "--state", "COMPLETE,CANCELLED", "--function", "echo", "--limit", "2")
    assert out["count"] == 2 and [t["ref_id"] for t in out["tasks"]] == echo[:2:-1][:2]
    assert out["next_cursor"] != ""
    rest = broker.json("list", "--state", "COMPLETE", "--cursor", out["next_cursor"])
    assert [t["ref_id"] for t in rest["tasks"]] == echo[2::-1]
    assert broker.json("list", "--older-than", "3600")["count"] == 0
    assert broker.json("list", "--newer-than", "3600")["count"] == 6

    human = broker.cli("list", "--limit", "3", check=0).stdout.splitlines()
    assert human[0].split()[:3] == ["REF_ID", "STATE", "FUNCTION"]
    assert human[1].split()[:3] == [sleeper, "PROCESSING", "sleep"]
    assert "more with: refcache list --cursor" in human[-1]

    # Bad input: a usage error, or the broker's INVALID_ARGUMENT (exit 13).
    assert broker.cli("list", "--state", "DONE", check=2).stderr.startswith("refcache: list: --state")
    r = broker.cli("list", "--cursor", "zzz", check=13)
    assert "cursor" in r.stderr
    assert broker.json("list", "--cursor", "zzz", check=13)["code"] == "INVALID_ARGUMENT"
    broker.cli("cancel", sleeper, check=0)


def test_list_namespaces(broker):
    mine = submit(broker, "echo", "--payload", "a", "--async-timeout", "2000")
    other = broker.json("--namespace", "other", "submit", "echo", "--payload", "b",
                        "--async-timeout", "2000")["ref_id"]
    assert [t["ref_id"] for t in broker.json("list")["tasks"]] == [mine]
    assert [t["ref_id"] for t in broker.json("--namespace", "other", "list")["tasks"]] == [other]
    both = broker.json("list", "-A")["tasks"]
    assert [t["ref_id"] for t in both] == [other, mine]
    assert both[0]["namespace"] == "other"


def test_workers(broker):
    out = broker.json("workers")
    assert out["code"] == "OK" and len(out["workers"]) == 2
    for w in out["workers"]:
        assert w["ready"] and w["pid"] > 0 and w["host"] and "echo" in w["functions"]
        assert w["credit"] > 0 and w["last_heard_at_us"] >= w["joined_at_us"] > 0
    human = broker.cli("workers", check=0).stdout.splitlines()
    assert human[0].split()[0] == "WORKER_ID" and len(human) == 3


def watch(broker, args, act, last):
    """Runs `refcache events ARGS`, once it watches calls act(), reads lines
    until last(line) is true, then ends it with Ctrl-C (a clean exit, 0)."""
    ev = subprocess.Popen([CLI, "-e", broker.clients, "events", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        assert "watching" in ev.stderr.readline()  # the watch is on
        result = act()
        for line in ev.stdout:
            lines.append(line)
            if last(line):
                break
        ev.send_signal(signal.SIGINT)
        assert ev.wait(10) == 0
    finally:
        ev.kill()
        ev.stdout.close()
        ev.stderr.close()
    return result, lines


def test_events(broker):
    def act():
        ref = submit(broker, "sleep", "ms=20000", "--async-timeout", "100")
        assert broker.json("cancel", ref)["cancelled"] is True
        return ref

    # Until the worker's confirmation.
    ref, lines = watch(broker, ["--json"], act, lambda line: json.loads(line)["event"] == "cancel_ack")
    events = [json.loads(line) for line in lines]
    names = [e["event"] for e in events]
    assert names[:2] == ["submit", "dispatch"]
    assert all(e["ref_id"] == ref for e in events)
    cancel = next(e for e in events if e["event"] == "cancel")
    assert cancel["old_state"] == "PROCESSING" and cancel["new_state"] == "CANCELLED"
    assert cancel["code"] == "CANCELLED" and cancel["stop_confirmed"] is False
    assert cancel["client"].startswith("conn:") and cancel["worker_id"]
    ack = events[-1]
    assert ack["stop_confirmed"] is True and ack["worker_id"] == cancel["worker_id"]


def test_events_of_one_ref(broker):
    ref = submit(broker, "sleep", "ms=20000")

    def act():
        submit(broker, "echo", "--payload", "noise", "--async-timeout", "2000")
        broker.cli("cancel", ref, check=0)

    _, lines = watch(broker, ["--ref", ref], act, lambda line: " cancel_ack " in line)
    assert lines and all(ref in line for line in lines)
    assert any(" cancel " in line and "PROCESSING -> CANCELLED" in line and " by conn:" in line for line in lines)
    assert "stop confirmed" in lines[-1]
    assert broker.cli("events", "--ref", "xyz", check=13).stderr.startswith("refcache: INVALID_ARGUMENT")


def test_list_after_a_restart(tmp_path):
    """Tasks the broker recovers from its store are listed, in the order they
    were accepted, before and beside new ones."""
    from conftest import Broker

    store = str(tmp_path / "broker.db")
    b = Broker("--store", store)
    try:
        old = [submit(b, "echo", "--payload", f"r{i}", "--async-timeout", "2000") for i in range(3)]
    finally:
        b.stop()
    b = Broker("--store", store)
    try:
        assert [t["ref_id"] for t in b.json("list")["tasks"]] == old[::-1]
        new = submit(b, "echo", "--payload", "after", "--async-timeout", "2000")
        assert [t["ref_id"] for t in b.json("list")["tasks"]] == [new] + old[::-1]
    finally:
        b.stop()
