"""The conformance kit's Python runner.

Runs every case of tests/conformance/cases/ (the schema is in
tests/conformance/README.md) against a live refcache-broker of its own (a
subprocess with in-process workers on ephemeral loopback ports, as the other
tests here start it), speaking raw ZeroMQ (pyzmq) and the generated
refcache_pb2, so that a case can send envelopes, wrong frame counts and bytes
that are not a Request. The C runner (tests/conformance/test_conformance.c)
reads the same cases and must agree with this one.

REFCACHE_KIT_CASE=GLOB runs only the matching cases; REFCACHE_KIT_TIME_SCALE=F
multiplies every time bound.
"""

import base64
import binascii
import fnmatch
import glob
import json
import os
import time

import pytest
import zmq
from google.protobuf import json_format

from conftest import REPO, Broker
from refcache._pb import pb

KIT_DIR = os.path.join(REPO, "tests", "conformance")
DEFAULT_WITHIN_MS = 10000  # a bound for failures only
DEFAULT_EVERY_MS = 10
DEFAULT_WORKERS = 2
FIRST_AUTO_ID = 1000       # ids the runner picks; cases pick below
SHOW = 1500                # longest request or reply shown in a message
CASE_KEYS = {"name", "note", "broker", "clients", "repeat", "steps", "fails_with"}
STEP_KEYS = {"note", "client", "send", "frames", "poll", "await", "as", "expect", "expect_any",
             "expect_each", "until", "within_ms", "every_ms", "envelope"}
TIME_SCALE = float(os.environ.get("REFCACHE_KIT_TIME_SCALE") or 1.0)


class CaseFailed(AssertionError):
    pass


def load_cases(paths):
    cases = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        area = os.path.basename(path)[:-5]
        for case in doc["cases"]:
            cases.append(("%s/%s" % (area, case.get("name", "(unnamed)")), case))
    pattern = os.environ.get("REFCACHE_KIT_CASE")
    return [c for c in cases if not pattern or fnmatch.fnmatchcase(c[0], pattern)]


# ---------------------------------------------------------------- replies as trees

def tree(msg):
    """The message as the kit compares it: field names as in the .proto; every
    field without presence (defaults too); message fields and oneof members only
    when set; enums by name; bytes as bytes; maps as dicts."""
    out = {}
    for f in msg.DESCRIPTOR.fields:
        value = getattr(msg, f.name)
        if f.label == f.LABEL_REPEATED:
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                vf = f.message_type.fields_by_name["value"]
                out[f.name] = {k: _scalar(vf, v) for k, v in value.items()}
            else:
                out[f.name] = [_scalar(f, v) for v in value]
            continue
        if f.containing_oneof is not None and msg.WhichOneof(f.containing_oneof.name) != f.name:
            continue
        if f.message_type is not None and not msg.HasField(f.name):
            continue
        out[f.name] = _scalar(f, value)
    return out


def _scalar(f, value):
    if f.message_type is not None:
        return tree(value)
    if f.enum_type is not None:
        v = f.enum_type.values_by_number.get(value)
        return v.name if v is not None else value
    return value


def show(value):
    def enc(v):
        if isinstance(v, bytes):
            return base64.b64encode(v).decode()
        raise TypeError(type(v))
    text = json.dumps(value, default=enc)
    return text if len(text) <= SHOW else text[:SHOW - 3] + "..."


# ---------------------------------------------------------------- matching

class Mismatch(Exception):
    pass


def _is_default(v):
    return v is None or v in ("", b"", 0, False, [], {})


def _b64(text):
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if ("-" in text or "_" in text)
                                else None, validate=True)
    except (binascii.Error, ValueError):
        return None


def _scalar_equal(want, got):
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and want == got
    if isinstance(want, int) or isinstance(got, int):
        try:
            return int(want) == int(got) and not isinstance(want, float) and not isinstance(got, float)
        except (TypeError, ValueError):
            return False
    if isinstance(got, bytes) and isinstance(want, str):
        return _b64(want) == got
    if isinstance(want, bytes) and isinstance(got, str):
        return _b64(got) == want
    return type(want) is type(got) and want == got


class Matcher:
    def __init__(self, variables):
        self.vars = variables
        self.staged = {}

    def fail(self, path, want, got, what=None):
        expected = what if what is not None else show(want)
        shown = "nothing (field not set)" if got is _MISSING else show(got)
        raise Mismatch("at %s: expected %s, got %s" % (path or "(reply)", expected, shown))

    def match(self, want, got, path=""):
        if want is None:
            if got is not _MISSING and not _is_default(got):
                self.fail(path, want, got, "the default (not set)")
        elif isinstance(want, dict):
            if not isinstance(got, dict):
                self.fail(path, want, got)
            for k, w in want.items():
                self.match(w, got.get(k, _MISSING), "%s.%s" % (path, k))
        elif isinstance(want, list):
            if not isinstance(got, list) or len(got) != len(want):
                self.fail(path, want, got)
            for i, (w, g) in enumerate(zip(want, got)):
                self.match(w, g, "%s[%d]" % (path, i))
        elif isinstance(want, str) and want.startswith("$"):
            self.special(want, got, path)
        elif got is _MISSING or not _scalar_equal(want, got):
            self.fail(path, want, got)

    def special(self, want, got, path):
        t = want[1:]
        if t.startswith("$"):
            if got is _MISSING or not _scalar_equal(t, got):
                self.fail(path, t, got)
        elif t == "any" or t.startswith("set:"):
            if got is _MISSING or _is_default(got):
                self.fail(path, want, got, "any value but the default")
            if t != "any":
                self.staged[t[4:]] = got
        elif t.startswith("len:"):
            if not isinstance(got, (str, bytes)) or len(got) != int(t[4:]):
                self.fail(path, want, got, "%s bytes" % t[4:])
        elif t.startswith("contains:"):
            if not isinstance(got, str) or t[9:] not in got:
                self.fail(path, want, got, 'text containing "%s"' % t[9:])
        elif t in self.vars:
            self.match(self.vars[t], got, path)
        else:
            raise Mismatch('at %s: "%s" is neither a matcher nor a variable set before' % (path, want))


_MISSING = object()


# ---------------------------------------------------------------- a session

class Session:
    def __init__(self, name, case):
        self.name = name
        self.case = case
        self.vars = {}
        self.held = {}
        self.next_id = FIRST_AUTO_ID
        self.conns = {}
        self.where = "the case"
        unknown = set(case) - CASE_KEYS
        if unknown:
            self.fail("the case has unknown keys %s" % sorted(unknown))
        flags = dict(case.get("broker", {}))
        self.workers = int(flags.pop("--workers", DEFAULT_WORKERS))
        extra = []
        for flag, value in flags.items():
            extra += [flag, str(value)]
        self.ctx = zmq.Context()
        self.broker = Broker(workers=self.workers, extra=extra)

    def close(self):
        for c in self.conns.values():
            c["sock"].close(0)
        self.ctx.term()
        self.broker.stop()

    def fail(self, message):
        raise CaseFailed("case %s, %s: %s" % (self.name, self.where, message))

    # sockets

    def conn(self, name):
        name = name or "main"
        c = self.conns.get(name)
        if c is None:
            kind = self.case.get("clients", {}).get(name, "dealer")
            if kind not in ("dealer", "req"):
                self.fail('client "%s" is a "%s": only "dealer" and "req" exist' % (name, kind))
            sock = self.ctx.socket(zmq.REQ if kind == "req" else zmq.DEALER)
            sock.linger = 0
            sock.connect(self.broker.clients)
            c = self.conns[name] = {"name": name, "sock": sock, "req": kind == "req", "rx": []}
        return c

    def pump(self, c, ms):
        if not c["sock"].poll(max(0, int(ms))):
            return False
        frames = c["sock"].recv_multipart()
        envelope = len(frames) == 2 and frames[0] == b""
        if len(frames) > 2 or (len(frames) == 2 and not envelope):
            self.fail('client "%s" got a message of %d frames: a reply is [Reply] or ["", Reply]'
                      % (c["name"], len(frames)))
        r = pb.Reply()
        try:
            r.ParseFromString(frames[-1])
        except Exception:
            self.fail('client "%s" got %d bytes that are not a refcache.v1.Reply'
                      % (c["name"], len(frames[-1])))
        replies = r.batch.replies if r.WhichOneof("body") == "batch" else [r]
        for one in replies:
            c["rx"].append({"id": one.id, "envelope": envelope, "claimed": False, "tree": tree(one)})
        return True

    def await_reply(self, c, want_id, within_ms):
        deadline = time.monotonic() + within_ms / 1000.0
        seen = 0
        while True:
            while seen < len(c["rx"]):
                x = c["rx"][seen]
                if not x["claimed"] and (want_id is None or x["id"] == want_id):
                    x["claimed"] = True
                    return x
                seen += 1
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.pump(c, left * 1000)
        if want_id is None:
            self.fail('no reply on client "%s" within %d ms' % (c["name"], within_ms))
        self.fail('no reply with id %d on client "%s" within %d ms' % (want_id, c["name"], within_ms))

    # requests

    def expand(self, v):
        if isinstance(v, str) and v.startswith("$"):
            t = v[1:]
            if t.startswith("$"):
                return t
            upper = t.startswith("upper:")
            name = t[6:] if upper else t
            if name not in self.vars:
                self.fail('no variable "%s" set before this step' % name)
            value = self.vars[name]
            if isinstance(value, bytes):
                value = base64.b64encode(value).decode()
            if upper:
                if not isinstance(value, str):
                    self.fail('variable "%s" is not text' % name)
                value = value.upper()
            return value
        if isinstance(v, list):
            out = []
            for item in v:
                if isinstance(item, dict) and "$repeat" in item:
                    out += [self.expand(item["item"]) for _ in range(int(item["$repeat"]))]
                else:
                    out.append(self.expand(item))
            return out
        if isinstance(v, dict):
            return {k: self.expand(x) for k, x in v.items()}
        return v

    def pack(self, req):
        try:
            return json_format.ParseDict(req, pb.Request()).SerializeToString()
        except json_format.ParseError as e:
            self.fail("the request is not a refcache.v1.Request: %s" % e)

    def send_request(self, c, json_req):
        req = self.expand(json_req)
        if "id" not in req:
            req["id"] = self.next_id
            self.next_id += 1
        c["sock"].send(self.pack(req))
        return int(req["id"]), req

    # checking

    def check(self, step, x, sent, pattern=None):
        want_env = step.get("envelope", False) is True
        if x["envelope"] != want_env:
            self.fail("the reply came %s an empty delimiter frame, expected %s\n  reply: %s"
                      % ("after" if x["envelope"] else "without", "one" if want_env else "none", show(x["tree"])))
        if pattern is not None:
            alternatives, many = [pattern], False
        elif "expect" in step:
            alternatives, many = [step["expect"]], False
        elif step.get("expect_any"):
            alternatives, many = step["expect_any"], True
        else:
            self.fail("the step says what reply to expect with neither expect nor expect_any")
        whys = []
        for pat in alternatives:
            m = Matcher(self.vars)
            try:
                m.match(pat, x["tree"])
            except Mismatch as e:
                whys.append(str(e))
                continue
            self.vars.update(m.staged)
            return
        self.fail("the reply does not match%s: %s\n  sent:  %s\n  reply: %s"
                  % (" any alternative" if many else "", "\n  or ".join(whys),
                     show(sent) if sent is not None else "(frames)", show(x["tree"])))

    def within(self, step):
        return int(step.get("within_ms", DEFAULT_WITHIN_MS) * TIME_SCALE)

    # steps

    def run_step(self, step):
        unknown = set(step) - STEP_KEYS
        if unknown:
            self.fail("the step has unknown keys %s" % sorted(unknown))
        c = self.conn(step.get("client"))
        if "send" in step:
            self.step_send(c, step)
        elif "frames" in step:
            self.step_frames(c, step)
        elif "poll" in step:
            self.step_poll(c, step)
        elif "await" in step:
            self.step_await(step)
        else:
            self.fail("the step has none of send, frames, poll, await")

    def step_send(self, c, step):
        rid, sent = self.send_request(c, step["send"])
        if "as" in step:
            if c["req"]:
                self.fail('a REQ client cannot leave a reply for later ("as")')
            self.held[step["as"]] = (c, rid)
        elif "expect_each" in step:
            for pat in step["expect_each"]:
                want = pat.get("id")
                if not isinstance(want, int) or isinstance(want, bool):
                    self.fail("every pattern of expect_each names the id of its reply")
                self.check(step, self.await_reply(c, want, self.within(step)), sent, pattern=pat)
        else:
            self.check(step, self.await_reply(c, rid, self.within(step)), sent)

    def step_frames(self, c, step):
        frames = []
        for i, f in enumerate(step["frames"]):
            if "hex" in f:
                try:
                    frames.append(bytes.fromhex(f["hex"]))
                except ValueError:
                    self.fail('frame %d: "%s" is not an even number of hex digits' % (i, f["hex"]))
            elif "text" in f:
                frames.append(f["text"].encode())
            elif "request" in f:
                frames.append(self.pack(self.expand(f["request"])))
            else:
                self.fail('frame %d is none of {"hex"}, {"text"}, {"request"}' % i)
        c["sock"].send_multipart(frames)
        want = step.get("expect", {}).get("id")
        want = want if isinstance(want, int) and not isinstance(want, bool) else None
        self.check(step, self.await_reply(c, want, self.within(step)), None)

    def step_poll(self, c, step):
        if "until" not in step:
            self.fail('a poll step needs "until"')
        every = step.get("every_ms", DEFAULT_EVERY_MS) / 1000.0
        deadline = time.monotonic() + self.within(step) / 1000.0
        while True:
            rid, sent = self.send_request(c, step["poll"])
            x = self.await_reply(c, rid, self.within(step))
            m = Matcher(self.vars)
            try:
                m.match(step["until"], x["tree"])
            except Mismatch as e:
                last = "%s\n  sent:  %s\n  last reply: %s" % (e, show(sent), show(x["tree"]))
            else:
                self.vars.update(m.staged)
                return
            if time.monotonic() + every > deadline:
                self.fail("no reply matched within %d ms; the last: %s" % (self.within(step), last))
            time.sleep(every)

    def step_await(self, step):
        name = step["await"]
        if name not in self.held:
            self.fail('no request was sent "as": "%s"' % name)
        c, rid = self.held.pop(name)
        self.check(step, self.await_reply(c, rid, self.within(step)),
                   '(the request kept as "%s", id %d)' % (name, rid))

    def check_leftovers(self):
        if self.held:
            self.fail('the reply kept as "%s" was never awaited' % next(iter(self.held)))
        for c in self.conns.values():
            if not c["req"]:
                while self.pump(c, 0):
                    pass
            for x in c["rx"]:
                if not x["claimed"]:
                    self.fail('client "%s" got a reply no step expected: %s' % (c["name"], show(x["tree"])))

    def run(self):
        self.where = "starting"
        if self.workers > 0:
            self.run_step({"client": "kit", "poll": {"stats": {}},
                           "until": {"stats": {"workers": self.workers}}})
        reps = int(self.case.get("repeat", 1))
        for r in range(reps):
            self.vars = {}
            for i, step in enumerate(self.case["steps"]):
                note = " (%s)" % step["note"] if "note" in step else ""
                self.where = ("round %d of %d, step %d%s" % (r + 1, reps, i + 1, note) if reps > 1
                              else "step %d%s" % (i + 1, note))
                self.run_step(step)
            self.where = "after the last step"
            self.check_leftovers()


def run_case(name, case):
    s = Session(name, case)
    try:
        s.run()
    finally:
        s.close()


CASES = load_cases(sorted(glob.glob(os.path.join(KIT_DIR, "cases", "*.json"))))
SELFTESTS = load_cases([os.path.join(KIT_DIR, "selftest.json")])


@pytest.mark.parametrize("name,case", CASES, ids=[c[0] for c in CASES])
def test_case(name, case):
    if "fails_with" in case:
        pytest.fail("case %s: only a case of selftest.json says how it fails" % name, pytrace=False)
    try:
        run_case(name, case)
    except CaseFailed as e:
        pytest.fail(str(e), pytrace=False)


@pytest.mark.parametrize("name,case", SELFTESTS, ids=[c[0] for c in SELFTESTS])
def test_selftest(name, case):
    """A case of selftest.json is wrong on purpose: the runner must fail it, and
    for the reason its "fails_with" names."""
    want = case["fails_with"]
    try:
        run_case(name, case)
    except CaseFailed as e:
        if want not in str(e):
            pytest.fail("self-test %s failed, but not with %r: %s" % (name, want, e), pytrace=False)
    else:
        pytest.fail("self-test %s is wrong on purpose, yet it passed" % name, pytrace=False)
