"""refcache-broker --http: /metrics parsed by the Prometheus client's own
parser (Debian's python3-prometheus-client) and checked against Stats, the
JSON API, what it refuses, and where it may bind."""
import json
import re
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BROKER, Broker, wait_for


def submit(b, *args):
    return b.json("submit", *args)["ref_id"]


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fam, **labels):
    hits = [s.value for s in fam.samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (fam.name, labels, fam.samples)
    return hits[0]


def test_metrics_match_stats(http_broker):
    b = http_broker
    for i in range(10):
        submit(b, "echo", "--payload", f"m{i}", "--async-timeout", "2000")
    b.json("submit", "fail", "message=no", "--async-timeout", "2000")
    sleeper = submit(b, "sleep", "ms=20000")
    wait_for(lambda: b.json("status", sleeper)["state"] == "PROCESSING", what="the sleep to run")
    b.cli("cancel", sleeper, check=0)
    wait_for(lambda: b.json("status", sleeper)["stopped_at_us"], what="the stop to be confirmed")

    ctype, text = b.get("/metrics")
    assert ctype.startswith("text/plain; version=0.0.4")
    stats = b.json("stats")
    fams = families(text)
    # Every family has its type and help.
    for f in fams.values():
        assert f.type in ("counter", "gauge", "histogram") and f.documentation, f.name

    tasks = fams["refcache_tasks"]
    for state in ("pending", "processing", "complete", "failed", "cancelled"):
        assert value(tasks, state=state) == stats["tasks_" + state]
    same = {"queue_depth": "refcache_queue_depth", "workers": "refcache_workers",
            "workers_busy": "refcache_workers_busy", "cache_bytes": "refcache_cache_bytes",
            "cache_entries": "refcache_cache_entries", "waiters": "refcache_waiters"}
    counters = ["submitted", "completed", "failed", "cancelled", "cache_hits", "dedup", "expired", "evicted",
                "retries", "workers_lost", "bad_requests", "bad_worker_msgs", "stale_msgs", "dropped_replies",
                "resource_exhausted", "deadline_exceeded"]
    for key, name in same.items():
        assert fams[name].type == "gauge" and value(fams[name]) == stats[key], key
    for c in counters:
        # The parser names a counter family without its _total.
        fam = fams["refcache_" + c]
        assert fam.type == "counter" and value(fam) == stats[c + "_total"], c
    # These move by themselves: the CLI's Stats came after the page's.
    assert value(fams["refcache_requests"]) < stats["requests_total"]
    assert 0 < value(fams["refcache_uptime_seconds"]) * 1000 <= stats["uptime_ms"]
    assert value(fams["refcache_resident_memory_bytes"]) > 0
    assert value(fams["refcache_build_info"], version=stats["version"]) == 1
    assert stats["submitted_total"] == 12 and stats["completed_total"] == 10 and stats["cancelled_total"] == 1

    # Histograms per function: cumulative buckets ending at +Inf == count.
    queue = fams["refcache_task_queue_seconds"]
    assert queue.type == "histogram"
    assert value(queue, function="echo", le="+Inf") == 10
    assert [s for s in queue.samples if s.name.endswith("_count") and s.labels["function"] == "echo"][0].value == 10
    echo_buckets = [s.value for s in queue.samples if s.name.endswith("_bucket") and s.labels["function"] == "echo"]
    assert echo_buckets == sorted(echo_buckets) and len(echo_buckets) == 23
    run = fams["refcache_task_run_seconds"]
    assert value(run, function="echo", le="+Inf") == 10 and value(run, function="fail", le="+Inf") == 1
    stop = fams["refcache_task_cancel_stop_seconds"]
    assert value(stop, function="sleep", le="+Inf") == 1
    assert 0 <= [s for s in stop.samples if s.name.endswith("_sum") and s.labels["function"] == "sleep"][0].value < 5
    assert value(fams["refcache_function_queued"], function="echo") == 0
    held = fams["refcache_worker_tasks_held"]
    assert len(held.samples) == 2 and all(s.labels["host"] for s in held.samples)
    ended = fams["refcache_worker_tasks_ended"]
    assert sum(s.value for s in ended.samples) == 12  # 10 results, 1 failure, 1 stop


def test_api_and_refusals(http_broker):
    b = http_broker
    ref = submit(b, "echo", "--payload", "api", "--async-timeout", "2000")
    other = b.json("--namespace", "elsewhere", "submit", "echo", "--payload", "x",
                   "--async-timeout", "2000")["ref_id"]
    _, page = b.get("/")
    # One self-contained page: nothing fetched from anywhere but its own API.
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"\b(src|href)\s*=|https?://|url\(|@import", page), "the page loads something"
    assert set(re.findall(r'fetch\("(/[a-z/]*)', page)) == {"/api/status", "/api/events", "/api/task"}
    st = json.loads(b.get("/api/status")[1])
    assert st["stats"]["tasks_complete"] == 2 and len(st["workers"]) == 2
    assert {f["function"] for f in st["functions"]} >= {"echo"}
    found = json.loads(b.get("/api/task?ref=" + other)[1])
    assert found["found"] and found["task"]["namespace"] == "elsewhere"
    assert json.loads(b.get("/api/task?ref=" + "0" * 32)[1]) == {"found": False}
    assert "ref_id" in b.get("/api/task?ref=zz", expect=400)[1]
    ev = json.loads(b.get("/api/events")[1])
    assert ev["events"] == [] and ev["lost"] == 0
    b.cli("delete", ref, check=0)
    ev = wait_for(lambda: json.loads(b.get("/api/events")[1])["events"], what="an event")
    assert ev[0]["event"] == "delete" and ev[0]["ref_id"] == ref
    b.get("/nope", expect=404)


def test_where_it_binds():
    for addr, why in (("0.0.0.0:8080", "wildcard"), ("192.0.2.1:8080", "--insecure"), ("nohost", "HOST:PORT")):
        r = subprocess.run([BROKER, "--store", "none", "--clients", "tcp://127.0.0.1:*", "--workers-endpoint", "tcp://127.0.0.1:*",
                            "--control", "tcp://127.0.0.1:*", "--http", addr],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode != 0 and why in r.stderr, (addr, r.stderr)
