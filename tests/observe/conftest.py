"""Fixtures of the observe tests: a real refcache-broker (the binary built
here, REFCACHE_BROKER) on ephemeral loopback ports with in-process workers,
and the refcache CLI (REFCACHE_CLI) pointed at it."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

BROKER = os.environ.get("REFCACHE_BROKER", "refcache-broker")
CLI = os.environ.get("REFCACHE_CLI", "refcache")


class Broker:
    def __init__(self, *extra):
        self.proc = subprocess.Popen(
            [BROKER, "--store", "none", "--workers", "2", "--clients", "tcp://127.0.0.1:*", "--workers-endpoint",
             "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.endpoints = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            words = line.split()
            if words and words[0] == "ready":
                break
            if len(words) == 2:
                self.endpoints[words[0]] = words[1]
        assert "clients" in self.endpoints, "the broker did not start: " + self.proc.stderr.read()
        self.clients = self.endpoints["clients"]
        self.http = self.endpoints.get("http")  # with --http: its URL, "http://127.0.0.1:PORT/"

    def cli(self, *args, check=None, timeout=20):
        """Runs the CLI against this broker; returns the CompletedProcess."""
        r = subprocess.run([CLI, "-e", self.clients, *args], capture_output=True, text=True, timeout=timeout)
        if check is not None:
            assert r.returncode == check, (args, r.returncode, r.stdout, r.stderr)
        return r

    def json(self, *args, check=0):
        r = self.cli("--json", *args, check=check)
        return json.loads(r.stdout)

    def get(self, path, expect=200):
        """GETs path from the broker's HTTP server: (content type, body text)."""
        try:
            with urllib.request.urlopen(self.http + path.lstrip("/"), timeout=10) as r:
                assert r.status == expect
                return r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            assert e.code == expect, (path, e.code)
            return e.headers.get("Content-Type"), e.read().decode()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.stop()


@pytest.fixture
def http_broker():
    b = Broker("--http", "127.0.0.1:*")
    yield b
    b.stop()


def wait_for(pred, timeout=10.0, what="condition"):
    """Polls pred() until it is true, up to timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)
