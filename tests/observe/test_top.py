"""`refcache top` under a pseudo-terminal, as over SSH: it draws on the
alternate screen with the cursor hidden, shows counts, rates, functions and
workers, quits on q (or after -n refreshes, or on Ctrl-C) with exit 0, and
leaves the terminal exactly as it found it (its settings, the screen, the
cursor). Without a terminal it prints plain frames."""
import os
import pty
import select
import signal
import subprocess
import termios
import time

from conftest import CLI


def run_in_pty(args, keys=b"", send_after=None, sig=None, timeout=20):
    """Runs the CLI on a new pty; returns (exit status, output, the pty's
    settings before, after)."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    p = subprocess.Popen([CLI, *args], stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                         start_new_session=True)
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while p.poll() is None and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
            if send_after and not sent and send_after in out:
                sent = True
                if keys:
                    os.write(master, keys)
                if sig:
                    p.send_signal(sig)
        p.wait(5)
        while True:  # what is left
            r, _, _ = select.select([master], [], [], 0.05)
            if not r:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        after = termios.tcgetattr(slave)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(slave)
        os.close(master)
    return p.returncode, out.decode(errors="replace"), before, after


def check_clean(out, before, after):
    assert out.index("\x1b[?1049h") < out.index("\x1b[?25l")       # alternate screen, cursor hidden
    assert out.rstrip().endswith("\x1b[?25h\x1b[?1049l")            # and both back, last
    assert before == after                                          # echo and line mode restored


def test_top_quits_on_q(broker):
    for i in range(5):
        broker.json("submit", "echo", "--payload", f"t{i}", "--async-timeout", "2000")
    # Two frames drawn (the second has rates), then q.
    rc, out, before, after = run_in_pty(["-e", broker.clients, "top", "--interval", "200"], keys=b"q",
                                        send_after=b"FUNCTION")
    assert rc == 0, out
    check_clean(out, before, after)
    assert "refcache top" in out and "5 complete" in out and "2 ready" in out
    assert "FUNCTION" in out and "echo" in out and "WORKER" in out


def test_top_iterations_and_ctrl_c(broker):
    rc, out, before, after = run_in_pty(["-e", broker.clients, "top", "--interval", "100", "-n", "3"])
    assert rc == 0 and out.count("refcache top") == 3 and "rates/s 0.0 submitted" in out
    check_clean(out, before, after)
    rc, out, before, after = run_in_pty(["-e", broker.clients, "top"], send_after=b"WORKER", sig=signal.SIGINT)
    assert rc == 0, out
    check_clean(out, before, after)


def test_top_without_a_terminal(broker):
    r = broker.cli("top", "-n", "2", "--interval", "100", check=0)
    assert "\x1b" not in r.stdout and r.stdout.count("refcache top") == 2


def test_top_without_a_broker():
    # A broker that is not there is said on the normal screen, not drawn.
    rc, out, before, after = run_in_pty(["-e", "tcp://127.0.0.1:1", "--timeout", "300", "top"])
    assert rc == 1 and "\x1b[?1049h" not in out and before == after
