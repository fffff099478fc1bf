/* The conformance kit's C runner: every case of tests/conformance/cases/
 * (the schema is in tests/conformance/README.md) as one cmocka test, each
 * against a live broker of its own, started in this process with real
 * in-process workers on ephemeral loopback ports, and spoken to with raw
 * ZeroMQ sockets and protobuf-c (through rc_pbjson), so that a case can
 * send envelopes, wrong frame counts and bytes that are not a Request.
 *
 * REFCACHE_KIT_CASE=GLOB runs only the cases whose name matches (cmocka's
 * filter); REFCACHE_KIT_TIME_SCALE=F multiplies every time bound (for slow
 * runs, e.g. valgrind). Every wait polls with a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "rc_broker.h"
#include "rc_common.h"
#include "rc_jdoc.h"
#include "rc_kitmatch.h"
#include "rc_pbjson.h"
#include "rc_testkit.h"
#include "refcache.pb-c.h"

#ifndef RC_KIT_DIR
#error "RC_KIT_DIR must name tests/conformance"
#endif

#define DEFAULT_WITHIN_MS 10000 /* a bound for failures only */
#define DEFAULT_EVERY_MS  10
#define DEFAULT_WORKERS   2
#define FIRST_AUTO_ID     1000 /* ids the runner picks; cases pick below */
#define MAX_CONNS         8
#define MAX_HELD          32
#define SHOW              1500 /* longest request or reply shown in a message */

typedef struct {
    char name[160];
    const rc_jdoc_t *json;
    bool selftest; /* from selftest.json: wrong on purpose */
} kase_t;

typedef struct {
    uint64_t id;
    bool envelope; /* came as ["", Reply] */
    bool claimed;
    rc_jdoc_t *tree;
} rx_t;

typedef struct {
    char name[32];
    void *sock;
    bool req;
    rx_t *rx;
    size_t n_rx, cap_rx;
} conn_t;

typedef struct {
    char name[64];
    conn_t *conn;
    uint64_t id;
} held_t;

typedef struct {
    const kase_t *kase;
    rc_broker_t *broker;
    void *ctx;
    conn_t conns[MAX_CONNS];
    size_t n_conns;
    rc_kitmatch_vars_t vars;
    held_t held[MAX_HELD];
    size_t n_held;
    uint64_t next_id;
    double time_scale;
    char where[200];
    char err[8192];
} session_t;

static int failf(session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(session_t *s, const char *fmt, ...)
{
    if (s->err[0])
        return -1;
    int n = snprintf(s->err, sizeof s->err, "%s: ", s->where);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t) n < sizeof s->err)
        vsnprintf(s->err + n, sizeof s->err - (size_t) n, fmt, ap);
    va_end(ap);
    return -1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* A step's or case's integer key, else def. */
static int64_t int_of(const rc_jdoc_t *obj, const char *key, int64_t def)
{
    bool neg;
    uint64_t mag;
    if (rc_jdoc_integer(rc_jdoc_get(obj, key), &neg, &mag) != 0)
        return def;
    return neg ? -(int64_t) mag : (int64_t) mag;
}

static const char *str_of(const rc_jdoc_t *obj, const char *key)
{
    const rc_jdoc_t *v = rc_jdoc_get(obj, key);
    return v && v->type == RC_JDOC_STRING ? v->text : NULL;
}

/* Checks that obj has only the keys listed (a typo in a case is an error,
 * not a silently skipped check). */
static int known_keys(session_t *s, const rc_jdoc_t *obj, const char *what, const char *const *keys)
{
    for (size_t i = 0; i < obj->n; i++) {
        bool ok = false;
        for (const char *const *k = keys; *k && !ok; k++)
            ok = strcmp(*k, obj->keys[i]) == 0;
        if (!ok)
            return failf(s, "%s has an unknown key \"%s\"", what, obj->keys[i]);
    }
    return 0;
}

/* ------------------------------------------------------------ requests */

/* The request JSON with the case's variables put in, or NULL (s->err). */
static rc_jdoc_t *expand(session_t *s, const rc_jdoc_t *v)
{
    char why[512] = "";
    rc_jdoc_t *x = rc_kitmatch_expand(&s->vars, v, why, sizeof why);
    if (!x)
        failf(s, "%s", why[0] ? why : "out of memory");
    return x;
}

/* Keeps what a successful match captured; 0, or -1 (s->err). */
static int commit(session_t *s, rc_kitmatch_t *m)
{
    char why[200] = "";
    return rc_kitmatch_commit(&s->vars, m, why, sizeof why) == 0 ? 0 : failf(s, "%s", why);
}

/* Packs request JSON into a Request frame; 0, or -1 (s->err). */
static int pack_request(session_t *s, const rc_jdoc_t *req, uint8_t **out, size_t *len)
{
    char why[512];
    if (rc_pbjson_pack(req, &refcache__v1__request__descriptor, out, len, why, sizeof why) != 0)
        return failf(s, "the request is not a refcache.v1.Request: %s", why);
    return 0;
}

/* ------------------------------------------------------------ sockets */

static conn_t *conn_for(session_t *s, const char *name)
{
    if (!name)
        name = "main";
    for (size_t i = 0; i < s->n_conns; i++)
        if (strcmp(s->conns[i].name, name) == 0)
            return &s->conns[i];
    if (s->n_conns == MAX_CONNS) {
        failf(s, "more than %d clients", MAX_CONNS);
        return NULL;
    }
    const char *type = str_of(rc_jdoc_get(s->kase->json, "clients"), name);
    if (type && strcmp(type, "req") != 0 && strcmp(type, "dealer") != 0) {
        failf(s, "client \"%s\" is a \"%s\": only \"dealer\" and \"req\" exist", name, type);
        return NULL;
    }
    conn_t *c = &s->conns[s->n_conns];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->req = type && strcmp(type, "req") == 0;
    c->sock = zmq_socket(s->ctx, c->req ? ZMQ_REQ : ZMQ_DEALER);
    int zero = 0;
    if (!c->sock || zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(c->sock, rc_broker_endpoint(s->broker, RC_EP_CLIENTS)) != 0) {
        failf(s, "client \"%s\": %s", name, zmq_strerror(zmq_errno()));
        if (c->sock)
            zmq_close(c->sock);
        return NULL;
    }
    s->n_conns++;
    return c;
}

static void conn_close(conn_t *c)
{
    for (size_t i = 0; i < c->n_rx; i++)
        rc_jdoc_destroy(&c->rx[i].tree);
    free(c->rx);
    zmq_close(c->sock);
}

static int send_frames(session_t *s, conn_t *c, uint8_t **frames, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (zmq_send(c->sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) != (int) lens[i])
            return failf(s, "send on client \"%s\": %s", c->name, zmq_strerror(zmq_errno()));
    return 0;
}

static int rx_push(session_t *s, conn_t *c, const Refcache__V1__Reply *r, bool envelope)
{
    if (c->n_rx == c->cap_rx) {
        size_t cap = c->cap_rx ? c->cap_rx * 2 : 16;
        rx_t *rx = realloc(c->rx, cap * sizeof *rx);
        if (!rx)
            return failf(s, "out of memory");
        c->rx = rx;
        c->cap_rx = cap;
    }
    rx_t *x = &c->rx[c->n_rx];
    memset(x, 0, sizeof *x);
    x->id = r->id;
    x->envelope = envelope;
    if (!(x->tree = rc_pbjson_tree(&r->base)))
        return failf(s, "out of memory");
    c->n_rx++;
    return 0;
}

/* Receives one message if one comes within ms: its replies (those of a
 * ReplyBatch one by one) join the client's inbox. 1, 0 (nothing), -1. */
static int pump(session_t *s, conn_t *c, int ms)
{
    zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0)
        return 0;
    zmq_msg_t parts[3];
    size_t n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, 0) < 0) {
            zmq_msg_close(&m);
            for (size_t i = 0; i < n; i++)
                zmq_msg_close(&parts[i]);
            return failf(s, "receive on client \"%s\": %s", c->name, zmq_strerror(zmq_errno()));
        }
        more = zmq_msg_more(&m);
        if (n < 3)
            parts[n] = m;
        else
            zmq_msg_close(&m);
        n++;
    }
    int rc = 0;
    bool envelope = n == 2 && zmq_msg_size(&parts[0]) == 0;
    zmq_msg_t *body = &parts[n == 2 ? 1 : 0];
    Refcache__V1__Reply *r = NULL;
    if (n > 2 || (n == 2 && !envelope))
        rc = failf(s, "client \"%s\" got a message of %zu frames: a reply is [Reply] or [\"\", Reply]",
                   c->name, n);
    else if (!(r = refcache__v1__reply__unpack(NULL, zmq_msg_size(body), zmq_msg_data(body))))
        rc = failf(s, "client \"%s\" got %zu bytes that are not a refcache.v1.Reply", c->name,
                   zmq_msg_size(body));
    else if (r->body_case == REFCACHE__V1__REPLY__BODY_BATCH) {
        for (size_t i = 0; rc == 0 && i < r->batch->n_replies; i++)
            rc = rx_push(s, c, r->batch->replies[i], envelope);
    } else
        rc = rx_push(s, c, r, envelope);
    if (r)
        refcache__v1__reply__free_unpacked(r, NULL);
    for (size_t i = 0; i < n && i < 3; i++)
        zmq_msg_close(&parts[i]);
    return rc < 0 ? -1 : 1;
}

#define ANY_ID UINT64_MAX

/* The first unclaimed reply with id (or any, ANY_ID) on c, waiting up to
 * within_ms for it; NULL (s->err) if none came. */
static rx_t *await_reply(session_t *s, conn_t *c, uint64_t id, int64_t within_ms)
{
    uint64_t deadline = now_ms() + (uint64_t) within_ms;
    /* Replies before `seen` were looked at and are not the one: they stay
     * unclaimed for later steps. */
    size_t seen = 0;
    for (;;) {
        for (; seen < c->n_rx; seen++) {
            rx_t *x = &c->rx[seen];
            if (!x->claimed && (id == ANY_ID || x->id == id)) {
                x->claimed = true;
                return x;
            }
        }
        uint64_t now = now_ms();
        if (now >= deadline)
            break;
        if (pump(s, c, (int) (deadline - now)) < 0)
            return NULL;
    }
    if (id == ANY_ID)
        failf(s, "no reply on client \"%s\" within %lld ms", c->name, (long long) within_ms);
    else
        failf(s, "no reply with id %llu on client \"%s\" within %lld ms", (unsigned long long) id, c->name,
              (long long) within_ms);
    return NULL;
}

/* Matches a reply against pattern, else the step's "expect" (one pattern)
 * or "expect_any" (the first of several that matches), and its
 * "envelope". sent: the request, shown on a mismatch. */
static int check_reply(session_t *s, const rc_jdoc_t *step, const rc_jdoc_t *pattern, const rx_t *x,
                       const char *sent)
{
    const rc_jdoc_t *env = rc_jdoc_get(step, "envelope");
    bool want_env = env && env->type == RC_JDOC_BOOL && env->b;
    char *shown = rc_jdoc_print(x->tree, SHOW);
    int rc = 0;
    if (x->envelope != want_env) {
        rc = failf(s, "the reply came %s an empty delimiter frame, expected %s\n  reply: %s",
                   x->envelope ? "after" : "without", want_env ? "one" : "none", shown ? shown : "?");
        free(shown);
        return rc;
    }
    const rc_jdoc_t *one = pattern ? pattern : rc_jdoc_get(step, "expect");
    const rc_jdoc_t *any = pattern ? NULL : rc_jdoc_get(step, "expect_any");
    if (!one && (!any || any->type != RC_JDOC_ARRAY || !any->n)) {
        free(shown);
        return failf(s, "the step says what reply to expect with neither expect nor expect_any");
    }
    size_t n = any ? any->n : 1;
    char whys[2048] = "";
    for (size_t i = 0; i < n; i++) {
        rc_kitmatch_t m = {0};
        const rc_jdoc_t *pat = any ? any->items[i] : one;
        if (!pat)
            break;
        if (rc_kitmatch_match(&s->vars, &m, pat, x->tree)) {
            rc = commit(s, &m);
            rc_kitmatch_release(&m);
            free(shown);
            return rc;
        }
        rc_kitmatch_release(&m);
        size_t used = strlen(whys);
        snprintf(whys + used, sizeof whys - used, "%s%s", used ? "\n  or " : "", m.why);
    }
    rc = failf(s, "the reply does not match%s: %s\n  sent:  %s\n  reply: %s", any ? " any alternative" : "",
               whys, sent ? sent : "(frames)", shown ? shown : "?");
    free(shown);
    return rc;
}

/* The literal id a pattern names, or ANY_ID. */
static uint64_t pattern_id(const rc_jdoc_t *pat)
{
    bool neg;
    uint64_t id;
    const rc_jdoc_t *v = rc_jdoc_get(pat, "id");
    if (!v || v->type != RC_JDOC_NUMBER || rc_jdoc_integer(v, &neg, &id) != 0 || neg)
        return ANY_ID;
    return id;
}

/* ------------------------------------------------------------ steps */

static int64_t within(session_t *s, const rc_jdoc_t *step)
{
    return (int64_t) ((double) int_of(step, "within_ms", DEFAULT_WITHIN_MS) * s->time_scale);
}

/* Expands a request, gives it the next automatic id unless it names one,
 * packs it and sends it on c. The id in *id, the JSON sent in *shown. */
static int send_request(session_t *s, conn_t *c, const rc_jdoc_t *json, uint64_t *id, char **shown)
{
    rc_jdoc_t *req = expand(s, json);
    if (!req)
        return failf(s, "could not expand the request");
    if (req->type == RC_JDOC_OBJECT && !rc_jdoc_get(req, "id") &&
        rc_jdoc_set(req, "id", rc_jdoc_u64(s->next_id++)) != 0) {
        rc_jdoc_destroy(&req);
        return failf(s, "out of memory");
    }
    bool neg;
    int rc = rc_jdoc_integer(rc_jdoc_get(req, "id"), &neg, id);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (rc != 0 || neg)
        rc = failf(s, "the request's id is not an unsigned integer");
    else
        rc = pack_request(s, req, &buf, &len);
    if (rc == 0)
        rc = send_frames(s, c, &buf, &len, 1);
    *shown = rc_jdoc_print(req, SHOW);
    free(buf);
    rc_jdoc_destroy(&req);
    return rc;
}

static int step_send(session_t *s, conn_t *c, const rc_jdoc_t *step)
{
    uint64_t id;
    char *sent = NULL;
    int rc = send_request(s, c, rc_jdoc_get(step, "send"), &id, &sent);
    const char *as = str_of(step, "as");
    const rc_jdoc_t *each = rc_jdoc_get(step, "expect_each");
    if (rc != 0) {
        /* failed */
    } else if (as) {
        if (c->req)
            rc = failf(s, "a REQ client cannot leave a reply for later (\"as\")");
        else if (s->n_held == MAX_HELD)
            rc = failf(s, "more than %d replies left for later", MAX_HELD);
        else {
            held_t *h = &s->held[s->n_held++];
            snprintf(h->name, sizeof h->name, "%s", as);
            h->conn = c;
            h->id = id;
        }
    } else if (each) {
        /* One reply per pattern, found by the id each names. */
        for (size_t i = 0; rc == 0 && i < each->n; i++) {
            uint64_t want = pattern_id(each->items[i]);
            if (want == ANY_ID) {
                rc = failf(s, "every pattern of expect_each names the id of its reply");
                break;
            }
            rx_t *x = await_reply(s, c, want, within(s, step));
            rc = x ? check_reply(s, step, each->items[i], x, sent) : -1;
        }
    } else {
        rx_t *x = await_reply(s, c, id, within(s, step));
        rc = x ? check_reply(s, step, NULL, x, sent) : -1;
    }
    free(sent);
    return rc;
}

/* Raw frames: {"hex": "..."}, {"text": "..."} or {"request": {...}}. */
static int step_frames(session_t *s, conn_t *c, const rc_jdoc_t *step)
{
    const rc_jdoc_t *fr = rc_jdoc_get(step, "frames");
    if (fr->type != RC_JDOC_ARRAY || fr->n == 0 || fr->n > 8)
        return failf(s, "\"frames\" is a list of 1 to 8 frames");
    uint8_t *bufs[8] = {0};
    size_t lens[8] = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < fr->n; i++) {
        const rc_jdoc_t *f = fr->items[i];
        const char *hex = str_of(f, "hex"), *text = str_of(f, "text");
        const rc_jdoc_t *req = rc_jdoc_get(f, "request");
        if (hex) {
            size_t n = strlen(hex);
            bufs[i] = malloc(n / 2 + 1);
            lens[i] = n / 2;
            if (!bufs[i] || rc_hex_decode(hex, n, bufs[i], n / 2) != 0)
                rc = failf(s, "frame %zu: \"%s\" is not an even number of hex digits", i, hex);
        } else if (text) {
            bufs[i] = (uint8_t *) strdup(text);
            lens[i] = strlen(text);
        } else if (req) {
            rc_jdoc_t *x = expand(s, req);
            rc = x ? pack_request(s, x, &bufs[i], &lens[i]) : failf(s, "could not expand frame %zu", i);
            rc_jdoc_destroy(&x);
        } else
            rc = failf(s, "frame %zu is none of {\"hex\"}, {\"text\"}, {\"request\"}", i);
    }
    if (rc == 0)
        rc = send_frames(s, c, bufs, lens, fr->n);
    for (size_t i = 0; i < fr->n; i++)
        free(bufs[i]);
    if (rc != 0)
        return rc;
    const rc_jdoc_t *pat = rc_jdoc_get(step, "expect");
    rx_t *x = await_reply(s, c, pat ? pattern_id(pat) : ANY_ID, within(s, step));
    return x ? check_reply(s, step, NULL, x, NULL) : -1;
}

/* Sends a request again and again (each with a new id) until its reply
 * matches "until", or within_ms passes. */
static int step_poll(session_t *s, conn_t *c, const rc_jdoc_t *step)
{
    const rc_jdoc_t *until = rc_jdoc_get(step, "until");
    if (!until)
        return failf(s, "a poll step needs \"until\"");
    int64_t every = int_of(step, "every_ms", DEFAULT_EVERY_MS);
    uint64_t deadline = now_ms() + (uint64_t) within(s, step);
    char last[2048] = "";
    for (;;) {
        uint64_t id;
        char *sent = NULL;
        if (send_request(s, c, rc_jdoc_get(step, "poll"), &id, &sent) != 0) {
            free(sent);
            return -1;
        }
        rx_t *x = await_reply(s, c, id, within(s, step));
        if (!x) {
            free(sent);
            return -1;
        }
        rc_kitmatch_t m = {0};
        if (rc_kitmatch_match(&s->vars, &m, until, x->tree)) {
            free(sent);
            int rc = commit(s, &m);
            rc_kitmatch_release(&m);
            return rc;
        }
        rc_kitmatch_release(&m);
        char *shown = rc_jdoc_print(x->tree, SHOW);
        snprintf(last, sizeof last, "%s\n  sent:  %s\n  last reply: %s", m.why, sent ? sent : "?",
                 shown ? shown : "?");
        free(shown);
        free(sent);
        if (now_ms() + (uint64_t) every > deadline)
            return failf(s, "no reply matched within %lld ms; the last: %s", (long long) within(s, step),
                         last);
        zmq_poll(NULL, 0, (long) every);
    }
}

static int step_await(session_t *s, const rc_jdoc_t *step)
{
    const char *name = str_of(step, "await");
    for (size_t i = 0; name && i < s->n_held; i++) {
        if (strcmp(s->held[i].name, name) != 0)
            continue;
        held_t h = s->held[i];
        s->held[i] = s->held[--s->n_held];
        rx_t *x = await_reply(s, h.conn, h.id, within(s, step));
        char sent[64];
        snprintf(sent, sizeof sent, "(the request kept as \"%s\", id %llu)", name, (unsigned long long) h.id);
        return x ? check_reply(s, step, NULL, x, sent) : -1;
    }
    return failf(s, "no request was sent \"as\": \"%s\"", name ? name : "?");
}

static int run_step(session_t *s, const rc_jdoc_t *step)
{
    static const char *const keys[] = {"note",  "client",    "send",     "frames",     "poll",
                                       "await", "as",        "expect",   "expect_any", "expect_each",
                                       "until", "within_ms", "every_ms", "envelope",   NULL};
    if (step->type != RC_JDOC_OBJECT)
        return failf(s, "a step is an object");
    if (known_keys(s, step, "the step", keys) != 0)
        return -1;
    conn_t *c = conn_for(s, str_of(step, "client"));
    if (!c)
        return -1;
    if (rc_jdoc_get(step, "send"))
        return step_send(s, c, step);
    if (rc_jdoc_get(step, "frames"))
        return step_frames(s, c, step);
    if (rc_jdoc_get(step, "poll"))
        return step_poll(s, c, step);
    if (rc_jdoc_get(step, "await"))
        return step_await(s, step);
    return failf(s, "the step has none of send, frames, poll, await");
}

/* ------------------------------------------------------------ cases */

/* The broker's flags, as refcache-broker takes them, onto its config. */
static int configure(session_t *s, rc_broker_config_t *cfg, const rc_jdoc_t *flags)
{
    enum { I, U32, U64, I64 };
    static const struct {
        const char *flag;
        size_t off;
        int kind;
    } map[] = {
        {"--workers", offsetof(rc_broker_config_t, workers), I},
        {"--credit", offsetof(rc_broker_config_t, worker_credit), I},
        {"--dispatch-window-us", offsetof(rc_broker_config_t, dispatch_window_us), U32},
        {"--ttl", offsetof(rc_broker_config_t, default_ttl_s), U32},
        {"--max-ttl", offsetof(rc_broker_config_t, max_ttl_s), U32},
        {"--retries", offsetof(rc_broker_config_t, default_max_retries), U32},
        {"--inline-limit", offsetof(rc_broker_config_t, inline_limit), U32},
        {"--max-page", offsetof(rc_broker_config_t, max_page), U32},
        {"--cache-bytes", offsetof(rc_broker_config_t, cache_bytes), U64},
        {"--max-records", offsetof(rc_broker_config_t, max_records), U64},
        {"--max-pending", offsetof(rc_broker_config_t, max_pending), U64},
        {"--max-waiters", offsetof(rc_broker_config_t, max_waiters), U64},
        {"--max-wait-ms", offsetof(rc_broker_config_t, max_wait_ms), U32},
        {"--max-msg-bytes", offsetof(rc_broker_config_t, max_msg_bytes), I64},
        {"--heartbeat-ms", offsetof(rc_broker_config_t, heartbeat_ms), U32},
        {"--liveness", offsetof(rc_broker_config_t, liveness), U32},
        {"--retry-base-ms", offsetof(rc_broker_config_t, retry_base_ms), U32},
        {"--retry-max-ms", offsetof(rc_broker_config_t, retry_max_ms), U32},
    };
    rc_testkit_config(cfg);
    cfg->workers = DEFAULT_WORKERS;
    for (size_t i = 0; flags && i < flags->n; i++) {
        size_t k = 0;
        while (k < sizeof map / sizeof map[0] && strcmp(map[k].flag, flags->keys[i]) != 0)
            k++;
        bool neg;
        uint64_t v;
        if (k == sizeof map / sizeof map[0])
            return failf(s, "broker flag %s is not one this runner knows", flags->keys[i]);
        if (rc_jdoc_integer(flags->items[i], &neg, &v) != 0 || neg)
            return failf(s, "broker flag %s needs a number", flags->keys[i]);
        char *at = (char *) cfg + map[k].off;
        if (map[k].kind == I)
            *(int *) at = (int) v;
        else if (map[k].kind == U32)
            *(uint32_t *) at = (uint32_t) v;
        else if (map[k].kind == U64)
            *(uint64_t *) at = v;
        else
            *(int64_t *) at = (int64_t) v;
    }
    return 0;
}

/* Waits until the broker counts every in-process worker thread (seen on
 * both channels), so that a case starts with idle workers. */
static int await_workers(session_t *s, int workers)
{
    char text[160];
    snprintf(text, sizeof text,
             "{\"client\": \"kit\", \"poll\": {\"stats\": {}}, \"until\": {\"stats\": {\"workers\": %d}}}",
             workers);
    char why[200];
    rc_jdoc_t *step = rc_jdoc_parse(text, strlen(text), why, sizeof why);
    int rc = step ? run_step(s, step) : failf(s, "%s", why);
    rc_jdoc_destroy(&step);
    return rc;
}

/* After the steps: every reply kept for later was awaited, and no reply
 * came that no step asked for. */
static int check_leftovers(session_t *s)
{
    if (s->n_held)
        return failf(s, "the reply kept as \"%s\" was never awaited", s->held[0].name);
    for (size_t i = 0; i < s->n_conns; i++) {
        conn_t *c = &s->conns[i];
        if (!c->req)
            while (pump(s, c, 0) > 0)
                ;
        for (size_t k = 0; k < c->n_rx; k++)
            if (!c->rx[k].claimed) {
                char *shown = rc_jdoc_print(c->rx[k].tree, SHOW);
                failf(s, "client \"%s\" got a reply no step expected: %s", c->name, shown ? shown : "?");
                free(shown);
                return -1;
            }
    }
    return 0;
}

static int run_steps(session_t *s, const rc_jdoc_t *steps, int64_t rep, int64_t reps)
{
    for (size_t i = 0; i < steps->n; i++) {
        const char *note = str_of(steps->items[i], "note");
        if (reps > 1)
            snprintf(s->where, sizeof s->where, "round %lld of %lld, step %zu%s%.120s%s", (long long) rep + 1,
                     (long long) reps, i + 1, note ? " (" : "", note ? note : "", note ? ")" : "");
        else
            snprintf(s->where, sizeof s->where, "step %zu%s%.150s%s", i + 1, note ? " (" : "",
                     note ? note : "", note ? ")" : "");
        if (run_step(s, steps->items[i]) != 0)
            return -1;
    }
    snprintf(s->where, sizeof s->where, "after the last step");
    return check_leftovers(s);
}

/* Runs case k against a broker of its own; 0, or -1 with why in err. */
static int run_kase(const kase_t *k, char *err, size_t errlen)
{
    static const char *const keys[] = {"name",   "note",  "broker",     "clients",
                                       "repeat", "steps", "fails_with", NULL};
    session_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->kase = k;
    s->next_id = FIRST_AUTO_ID;
    const char *scale = getenv("REFCACHE_KIT_TIME_SCALE");
    s->time_scale = scale && atof(scale) > 0 ? atof(scale) : 1.0;
    snprintf(s->where, sizeof s->where, "the case");

    const rc_jdoc_t *steps = rc_jdoc_get(k->json, "steps");
    int64_t reps = int_of(k->json, "repeat", 1);
    rc_broker_config_t cfg;
    int rc = known_keys(s, k->json, "the case", keys);
    if (rc == 0 && (!steps || steps->type != RC_JDOC_ARRAY))
        rc = failf(s, "the case has no list of steps");
    if (rc == 0 && rc_jdoc_get(k->json, "fails_with") && !k->selftest)
        rc = failf(s, "only a case of selftest.json says how it fails");
    if (rc == 0)
        rc = configure(s, &cfg, rc_jdoc_get(k->json, "broker"));
    if (rc == 0) {
        s->broker = rc_testkit_broker(&cfg);
        s->ctx = zmq_ctx_new();
        assert_non_null(s->ctx);
        snprintf(s->where, sizeof s->where, "starting");
        if (cfg.workers > 0)
            rc = await_workers(s, cfg.workers);
    }
    for (int64_t r = 0; rc == 0 && r < reps; r++) {
        rc_kitmatch_vars_clear(&s->vars);
        rc = run_steps(s, steps, r, reps);
    }
    rc_kitmatch_vars_clear(&s->vars);
    for (size_t i = 0; i < s->n_conns; i++)
        conn_close(&s->conns[i]);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    rc_broker_destroy(&s->broker);
    snprintf(err, errlen, "%s", s->err);
    free(s);
    return rc;
}

static void run_case(void **state)
{
    const kase_t *k = *state;
    static char err[sizeof((session_t *) 0)->err];
    if (run_kase(k, err, sizeof err) != 0)
        fail_msg("case %s, %s", k->name, err);
}

/* A case of selftest.json is wrong on purpose: the runner must fail it,
 * and for the reason its "fails_with" names. */
static void run_selftest(void **state)
{
    const kase_t *k = *state;
    static char err[sizeof((session_t *) 0)->err];
    const char *want = str_of(k->json, "fails_with");
    if (!want)
        fail_msg("self-test %s says nothing of how it fails (\"fails_with\")", k->name);
    if (run_kase(k, err, sizeof err) == 0)
        fail_msg("self-test %s is wrong on purpose, yet it passed", k->name);
    if (!strstr(err, want))
        fail_msg("self-test %s failed, but not with \"%s\": %s", k->name, want, err);
}

/* Adds the cases of one file to tests/kases (an area named after it). */
static void add_cases(const char *path, const rc_jdoc_t *file, bool selftest, kase_t *kases,
                      struct CMUnitTest *tests, size_t *n)
{
    const rc_jdoc_t *cases = rc_jdoc_get(file, "cases");
    const char *base = strrchr(path, '/') + 1;
    for (size_t c = 0; c < cases->n; c++, (*n)++) {
        const char *name = str_of(cases->items[c], "name");
        snprintf(kases[*n].name, sizeof kases[*n].name, "%.*s/%s", (int) (strlen(base) - 5), base,
                 name ? name : "(unnamed)");
        kases[*n].json = cases->items[c];
        kases[*n].selftest = selftest;
        tests[*n].name = kases[*n].name;
        tests[*n].test_func = selftest ? run_selftest : run_case;
        tests[*n].initial_state = &kases[*n];
    }
}

int main(void)
{
    glob_t g;
    if (glob(RC_KIT_DIR "/cases/*.json", 0, NULL, &g) != 0 ||
        glob(RC_KIT_DIR "/selftest.json", GLOB_APPEND, NULL, &g) != 0) {
        fprintf(stderr, "no case files in %s/cases, or no %s/selftest.json\n", RC_KIT_DIR, RC_KIT_DIR);
        return 1;
    }
    rc_jdoc_t **files = calloc(g.gl_pathc, sizeof *files);
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
        char err[512];
        const rc_jdoc_t *cases = NULL;
        if (!(files[i] = rc_jdoc_load(g.gl_pathv[i], err, sizeof err)))
            fprintf(stderr, "%s\n", err);
        else if (!(cases = rc_jdoc_get(files[i], "cases")) || cases->type != RC_JDOC_ARRAY)
            fprintf(stderr, "%s: no \"cases\" list\n", g.gl_pathv[i]);
        rc = cases && cases->type == RC_JDOC_ARRAY ? 0 : 1;
        total += rc == 0 ? cases->n : 0;
    }
    kase_t *kases = calloc(total ? total : 1, sizeof *kases);
    struct CMUnitTest *tests = calloc(total ? total : 1, sizeof *tests);
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++)
        add_cases(g.gl_pathv[i], files[i], i + 1 == g.gl_pathc, kases, tests, &n);
    const char *filter = getenv("REFCACHE_KIT_CASE");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    if (rc == 0)
        rc = _cmocka_run_group_tests("conformance", tests, n, NULL, NULL);
    for (size_t i = 0; i < g.gl_pathc; i++)
        rc_jdoc_destroy(&files[i]);
    free(files);
    free(kases);
    free(tests);
    globfree(&g);
    return rc;
}
