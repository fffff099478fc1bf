"""The status page (refcache-broker --http, GET /) as a person sees it:
Debian's Chromium, headless, loads it, runs its scripts for a few seconds of
virtual time and dumps the DOM, in which the counts, the workers, the
events of a cancelled task and the lookup of that task must be shown."""
import html.parser
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(args, timeout=90):
    """Runs headless Chromium with a fresh profile; returns its stdout."""
    with tempfile.TemporaryDirectory(prefix="rc-chromium-") as profile:
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-background-networking", "--disable-component-update", "--no-first-run",
                            "--user-data-dir=" + profile, *args],
                           capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


class Dom(html.parser.HTMLParser):
    """The text of every element with an id, and the classes of table rows."""

    def __init__(self):
        super().__init__()
        self.stack, self.text, self.rows = [], {}, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and self.stack and self.stack[-1][1]:
            self.rows.setdefault(self.stack[-1][1], []).append(a.get("class", ""))
        self.stack.append((tag, a.get("id")))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        for _, ident in self.stack:
            if ident:
                self.text[ident] = self.text.get(ident, "") + data


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (scripts/setup.sh --test)")
def test_status_page(http_broker):
    b = http_broker
    for i in range(3):
        b.json("submit", "echo", "--payload", f"page{i}", "--async-timeout", "2000")
    # The page's events come from a watch its first look starts: look once
    # (as a browser would), then make a task's life to show.
    b.get("/api/events")
    ref = b.json("submit", "sleep", "ms=20000")["ref_id"]
    wait_for(lambda: b.json("status", ref)["state"] == "PROCESSING", what="the sleep to run")
    b.cli("cancel", ref, check=0)
    wait_for(lambda: b.json("status", ref)["stopped_at_us"], what="the stop")

    dom = Dom()
    dom.feed(chromium(["--virtual-time-budget=5000", "--dump-dom", b.http + "?ref=" + ref]))
    t = {k: v.strip() for k, v in dom.text.items()}
    stats = b.json("stats")
    assert t["conn"] == "live"
    assert t["count-complete"] == str(stats["tasks_complete"]) == "3"
    assert t["count-cancelled"] == "1" and t["count-pending"] == "0"
    assert t["count-workers"] == "0 / 2"
    assert t["version"] == "version " + stats["version"]
    assert dom.rows["workers"] == ["worker", "worker"]
    assert "echo" in t["functions"] and "sleep" in t["functions"]
    assert dom.rows["events"] and set(dom.rows["events"]) == {"event"}
    assert "cancel" in t["events"] and "stop confirmed" in t["events"] and ref[:10] in t["events"]
    assert "submit" in t["events"] and "progress" not in t["events"]
    assert "PROCESSING \u2192 CANCELLED" in t["events"]
    # The lookup of ?ref=: the task's details.
    assert ref in t["lookup-task"] and "CANCELLED" in t["lookup-task"] and "sleep" in t["lookup-task"]
    assert t["rate-submitted"] != ""
