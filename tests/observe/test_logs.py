"""Logs a person can use: every line of the broker and the worker has a UTC
timestamp, a level, the program and a topic (or is one JSON object), from
--log-level up; and the events an operator needs are there — a worker
joining and lost, a CURVE key refused (on both sides, with the key on the
broker's), a limit hit."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from conftest import BROKER, CLI, Broker, wait_for

WORKER = os.path.join(os.path.dirname(os.path.dirname(BROKER)), "workers", "refcache-worker")
TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (DEBUG|INFO |WARN |ERROR) (refcache-broker|refcache-worker) "
                  r"[a-z]+: .+$")


class Lines:
    """Collects a process's stderr in a file; reads it as it grows."""

    def __init__(self):
        self.file = tempfile.TemporaryFile(mode="w+")

    def text(self):
        self.file.seek(0)
        return self.file.read()

    def wait(self, needle, timeout=10):
        return wait_for(lambda: needle in self.text(), timeout, "log line " + repr(needle))


def spawn(args, log):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log.file, text=True)


def endpoints(proc):
    eps = {}
    for line in proc.stdout:
        w = line.split()
        if w == ["ready"]:
            return eps
        eps[w[0]] = w[1]
    raise AssertionError("no ready line")


def stop(*procs):
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_worker_join_lost_and_limits():
    log, wlog = Lines(), Lines()
    broker = spawn([BROKER, "--store", "none", "--clients", "tcp://127.0.0.1:*", "--workers-endpoint", "tcp://127.0.0.1:*",
                    "--control", "tcp://127.0.0.1:*", "--heartbeat-ms", "100", "--liveness", "3",
                    "--max-pending", "1"], log)
    eps = endpoints(broker)
    worker = spawn([WORKER, "--workers-endpoint", eps["workers"], "--control", eps["control"], "--threads", "1",
                    "--credit", "1", "--heartbeat-ms", "100"], wlog)
    try:
        log.wait("joined")
        wlog.wait("started for the broker")
        cli = [CLI, "-e", eps["clients"], "--json"]
        # One running (credit 1), one pending (--max-pending 1), the third refused.
        codes = [json.loads(subprocess.run(cli + ["submit", "sleep", "ms=20000"], capture_output=True,
                                           text=True, timeout=10).stdout)["code"] for _ in range(4)]
        assert "RESOURCE_EXHAUSTED" in codes
        log.wait("refused RESOURCE_EXHAUSTED")
        # The worker freezes: the broker loses it.
        worker.send_signal(signal.SIGSTOP)
        log.wait("lost (silent for 3 heartbeats)")
        worker.send_signal(signal.SIGCONT)
    finally:
        stop(worker, broker)
    text, wtext = log.text(), wlog.text()
    for line in text.splitlines() + wtext.splitlines():
        assert TEXT.match(line), line
    assert re.search(r"WARN  refcache-broker worker: worker \S+ on \S+ lost", text)
    assert re.search(r"INFO  refcache-broker worker: worker \S+ joined from \S+ \(pid \d+\)", text)
    assert re.search(r"WARN  refcache-broker limits: \d+ request\(s\) refused RESOURCE_EXHAUSTED .*--max-pending 1", text)


def test_json_format_and_level():
    log = Lines()
    broker = spawn([BROKER, "--store", "none", "--workers", "1", "--clients", "tcp://127.0.0.1:*", "--workers-endpoint",
                    "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*", "--log-format", "json"], log)
    endpoints(broker)
    log.wait('"topic":"broker"')
    stop(broker)
    lines = [json.loads(line) for line in log.text().splitlines()]
    assert lines and all(set(x) == {"ts", "level", "program", "topic", "msg"} for x in lines)
    assert all(x["program"] == "refcache-broker" and x["ts"].endswith("Z") for x in lines)
    assert any(x["topic"] == "worker" and "joined" in x["msg"] for x in lines)
    assert lines[-1]["msg"] == "SIGTERM: stopping"

    quiet = Lines()
    broker = spawn([BROKER, "--store", "none", "--workers", "1", "--clients", "tcp://127.0.0.1:*", "--workers-endpoint",
                    "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*", "--log-level", "warn"], quiet)
    endpoints(broker)
    stop(broker)
    assert quiet.text() == ""
    r = subprocess.run([BROKER, "--log-level", "loud"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "--log-level" in r.stderr


def test_refused_worker_key_said_on_both_sides(tmp_path):
    keys = tmp_path / "keys"
    for d in ("keys", "clients", "workers"):
        (tmp_path / d).mkdir()
    for name in ("broker", "good", "stranger"):
        subprocess.run([CLI, "keygen", str(keys / name)], check=True, capture_output=True, timeout=10)
    (tmp_path / "workers" / "good").write_text((keys / "good").read_text())
    stranger = re.search(r'public-key = "(.{40})"', (keys / "stranger").read_text()).group(1)
    log, wlog = Lines(), Lines()
    broker = spawn([BROKER, "--store", "none", "--clients", "tcp://127.0.0.1:*", "--workers-endpoint", "tcp://127.0.0.1:*",
                    "--control", "tcp://127.0.0.1:*", "--curve-secret", str(keys / "broker"),
                    "--clients-allowed", str(tmp_path / "clients"), "--workers-allowed", str(tmp_path / "workers")],
                   log)
    eps = endpoints(broker)
    worker = spawn([WORKER, "--workers-endpoint", eps["workers"], "--control", eps["control"], "--threads", "2",
                    "--curve-secret", str(keys / "stranger"), "--broker-public", str(keys / "broker")], wlog)
    try:
        wlog.wait("refused this worker's CURVE key")
        log.wait("refused the CURVE key " + stranger)
    finally:
        stop(worker, broker)
    assert re.search(r"ERROR refcache-worker connection: the broker at tcp://127\.0\.0\.1:\d+ refused this worker's "
                     r"CURVE key \(ZAP status 400\)", wlog.text())
    assert "connected to the broker" not in wlog.text()
    assert wlog.text().count("refused this worker's CURVE key") == 1  # repeats are counted, not written
    assert re.search(r"WARN  refcache-broker security: refused the CURVE key .{40} \(in no allow-list\) from "
                     r"127\.0\.0\.1 on the worker channels", log.text())


def test_failed_handshakes_said_by_the_broker(tmp_path):
    """Handshakes that fail before any key is checked never reach the ZAP
    handler: the broker says them from its sockets' monitors, once a minute
    per cause, naming the endpoint and what to check."""
    keys = tmp_path / "keys"
    for d in ("keys", "clients", "workers"):
        (tmp_path / d).mkdir()
    for name in ("broker", "alice", "impostor"):
        subprocess.run([CLI, "keygen", str(keys / name)], check=True, capture_output=True, timeout=10)
    (tmp_path / "clients" / "alice").write_text((keys / "alice").read_text())
    log = Lines()
    broker = spawn([BROKER, "--store", "none", "--clients", "tcp://127.0.0.1:*", "--workers-endpoint", "tcp://127.0.0.1:*",
                    "--control", "tcp://127.0.0.1:*", "--curve-secret", str(keys / "broker"),
                    "--clients-allowed", str(tmp_path / "clients"), "--workers-allowed", str(tmp_path / "workers")],
                   log)
    eps = endpoints(broker)
    try:
        # An allowed key, but the wrong broker certificate: its HELLO cannot be decrypted.
        for _ in range(3):
            r = subprocess.run([CLI, "-e", eps["clients"], "--timeout", "300", "--curve-secret", str(keys / "alice"),
                                "--broker-public", str(keys / "impostor"), "stats"], capture_output=True, text=True,
                               timeout=10)
            assert r.returncode == 1
        log.wait("did not decrypt")
        # No CURVE at all on a CURVE endpoint: both ends see the mismatch in the
        # greetings, and whichever acts first closes; the broker says one or the other.
        r = subprocess.run([CLI, "-e", eps["clients"], "--timeout", "1000", "stats"], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 1
        wait_for(lambda: "another security mechanism" in log.text() or "closed during the handshake" in log.text(),
                 10, "a handshake of a client without CURVE")
        # The right certificates still work.
        r = subprocess.run([CLI, "-e", eps["clients"], "--curve-secret", str(keys / "alice"), "--broker-public",
                            str(keys / "broker"), "stats"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
    finally:
        stop(broker)
    text = log.text()
    assert re.search(r"WARN  refcache-broker security: a handshake failed on the clients endpoint tcp://127\.0\.0\.1:\d+: "
                     r"its CURVE handshake did not decrypt", text), text
    assert text.count("did not decrypt") == 1  # the next failures within the minute are counted, not written
    assert "refused the CURVE key" not in text  # they never reached the key check
