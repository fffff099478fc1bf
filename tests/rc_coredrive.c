/* rc_coredrive: a broker core driven by hand (see rc_coredrive.h). */
#include "rc_coredrive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_journal.h"

static void die(const char *what)
{
    fprintf(stderr, "core driver: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static void *sock(void *ctx, int type, const char *name, const char *channel, const char *id)
{
    char ep[128];
    snprintf(ep, sizeof ep, "inproc://%s-%s", name, channel);
    void *s = zmq_socket(ctx, type);
    int on = 1, zero = 0;
    if (!s)
        die("socket");
    if (type == ZMQ_ROUTER && zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &on, sizeof on) != 0)
        die("setsockopt");
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
    if (id)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
    if ((type == ZMQ_ROUTER ? zmq_bind(s, ep) : zmq_connect(s, ep)) != 0)
        die(ep);
    return s;
}

void rc_coredrive_open(rc_coredrive_t *d, const char *name, const rc_broker_config_t *cfg)
{
    d->ctx = zmq_ctx_new();
    if (!d->ctx)
        die("context");
    d->clients = sock(d->ctx, ZMQ_ROUTER, name, "clients", NULL);
    d->workers = sock(d->ctx, ZMQ_ROUTER, name, "workers", NULL);
    d->control = sock(d->ctx, ZMQ_ROUTER, name, "control", NULL);
    d->client = sock(d->ctx, ZMQ_DEALER, name, "clients", "c");
    d->work = sock(d->ctx, ZMQ_DEALER, name, "workers", "w");
    d->ctl = sock(d->ctx, ZMQ_DEALER, name, "control", "w");
    d->core = calloc(1, sizeof *d->core);
    if (!d->core || rc_core_init(d->core, cfg) != 0)
        die("core");
    char err[256];
    if (cfg->store_path && rc_journal_open(d->core, err, sizeof err) != 0) {
        fprintf(stderr, "core driver: %s\n", err);
        exit(1);
    }
    d->core->clients = d->clients;
    d->core->workers = d->workers;
    d->core->control = d->control;
}

void rc_coredrive_close(rc_coredrive_t *d)
{
    rc_journal_close(d->core);
    rc_core_fini(d->core);
    free(d->core);
    void *socks[] = {d->clients, d->workers, d->control, d->client, d->work, d->ctl};
    for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++)
        zmq_close(socks[i]);
    zmq_ctx_term(d->ctx);
    memset(d, 0, sizeof *d);
}

uint8_t *rc_coredrive_pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (!buf)
        die("out of memory");
    protobuf_c_message_pack(m, buf);
    return buf;
}

void rc_coredrive_frames(zmq_msg_t f[2], const char *rid, const void *body, size_t len)
{
    zmq_msg_init_size(&f[0], strlen(rid));
    memcpy(zmq_msg_data(&f[0]), rid, strlen(rid));
    zmq_msg_init_size(&f[1], len);
    memcpy(zmq_msg_data(&f[1]), body, len);
}

static void feed(rc_coredrive_t *d, int (*entry)(rc_core_t *, zmq_msg_t *, int), const ProtobufCMessage *m)
{
    size_t len;
    uint8_t *buf = rc_coredrive_pack(m, &len);
    zmq_msg_t f[2];
    rc_coredrive_frames(f, "w", buf, len);
    entry(d->core, f, 2);
    zmq_msg_close(&f[0]);
    zmq_msg_close(&f[1]);
    free(buf);
}

void rc_coredrive_join(rc_coredrive_t *d, char **fns, size_t n_fns, size_t n_cacheable, uint32_t credit)
{
    Refcache__V1__ControlHello hello = REFCACHE__V1__CONTROL_HELLO__INIT;
    hello.worker_id = "w";
    feed(d, rc_core_control_msg, &hello.base);
    Refcache__V1__Ready ready = REFCACHE__V1__READY__INIT;
    ready.worker_id = "w";
    ready.n_functions = n_fns;
    ready.functions = fns;
    ready.n_cacheable = n_cacheable;
    ready.cacheable = fns;
    ready.credit = credit;
    ready.max_batch = 64;
    Refcache__V1__WorkerMessage wready = REFCACHE__V1__WORKER_MESSAGE__INIT;
    wready.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_READY;
    wready.ready = &ready;
    feed(d, rc_core_worker_msg, &wready.base);
}

int rc_coredrive_take(void *s, zmq_msg_t *last)
{
    int n = 0;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return n;
        }
        if (zmq_msg_more(&m) || !last) {
            n += !zmq_msg_more(&m);
            zmq_msg_close(&m);
            continue;
        }
        if (n++)
            zmq_msg_close(last);
        *last = m;
    }
}

void rc_coredrive_round_init(rc_coredrive_round_t *r)
{
    memset(r, 0, sizeof *r);
    refcache__v1__request_batch__init(&r->batch);
    refcache__v1__request__init(&r->outer);
    r->outer.body_case = REFCACHE__V1__REQUEST__BODY_BATCH;
    r->outer.batch = &r->batch;
    r->batch.requests = r->reqp;
    refcache__v1__result_batch__init(&r->rbatch);
    refcache__v1__worker_message__init(&r->wres);
    r->wres.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULTS;
    r->wres.results = &r->rbatch;
    r->rbatch.results = r->resp;
}

const ProtobufCMessage *rc_coredrive_submits(rc_coredrive_round_t *r, size_t k, const char *fn, uint64_t *id,
                                             bool same, uint32_t async_ms)
{
    r->batch.n_requests = k;
    for (size_t i = 0; i < k; i++) {
        refcache__v1__submit_request__init(&r->sub[i]);
        refcache__v1__request__init(&r->req[i]);
        memset(r->payload[i], 'p', sizeof r->payload[i]);
        if (!same)
            memcpy(r->payload[i], id, sizeof *id);
        r->sub[i].function = (char *) fn;
        r->sub[i].payload = (ProtobufCBinaryData){sizeof r->payload[i], r->payload[i]};
        r->sub[i].async_timeout_ms = async_ms;
        r->req[i].id = (*id)++;
        r->req[i].body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
        r->req[i].submit = &r->sub[i];
        r->reqp[i] = &r->req[i];
    }
    return &r->outer.base;
}

Refcache__V1__Dispatch **rc_coredrive_dispatches(Refcache__V1__BrokerMessage *bm, size_t *n)
{
    *n = 0;
    if (bm && bm->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES) {
        *n = bm->dispatches->n_dispatches;
        return bm->dispatches->dispatches;
    }
    if (bm && bm->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH) {
        *n = 1;
        return &bm->dispatch;
    }
    return NULL;
}

const ProtobufCMessage *rc_coredrive_results(rc_coredrive_round_t *r, Refcache__V1__Dispatch **d, size_t n)
{
    r->rbatch.n_results = n;
    for (size_t i = 0; i < n; i++) {
        refcache__v1__result__init(&r->res[i]);
        r->res[i].ref_id = d[i]->ref_id;
        r->res[i].attempt = d[i]->attempt;
        r->res[i].data = d[i]->payload;
        r->resp[i] = &r->res[i];
    }
    return &r->wres.base;
}
