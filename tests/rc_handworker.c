/* rc_handworker: a hand-driven worker for tests (see rc_handworker.h). */
#include "rc_handworker.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <zmq.h>

#include "rc_common.h"
#include "rc_testkit.h"

void rc_hw_open(rc_hw_t *hw, rc_broker_t *broker, const char *id)
{
    memset(hw, 0, sizeof *hw);
    snprintf(hw->id, sizeof hw->id, "%s", id);
    hw->ctx = zmq_ctx_new();
    assert_non_null(hw->ctx);
    hw->control = rc_testkit_socket(hw->ctx, ZMQ_DEALER, id, rc_broker_endpoint(broker, RC_EP_CONTROL));
    hw->work = rc_testkit_socket(hw->ctx, ZMQ_DEALER, id, rc_broker_endpoint(broker, RC_EP_WORKERS));
}

void rc_hw_close(rc_hw_t *hw)
{
    if (!hw->ctx)
        return;
    zmq_close(hw->work);
    zmq_close(hw->control);
    zmq_ctx_term(hw->ctx);
    hw->ctx = NULL;
}

static void send_wmsg(rc_hw_t *hw, Refcache__V1__WorkerMessage *m)
{
    rc_testkit_send_pb(hw->work, &m->base);
}

/* TaskRef messages for n attempts, in refs (pointers in ptrs). */
static void task_refs(const rc_hw_ref_t *t, size_t n, Refcache__V1__TaskRef *refs,
                      Refcache__V1__TaskRef **ptrs)
{
    for (size_t i = 0; i < n; i++) {
        refcache__v1__task_ref__init(&refs[i]);
        refs[i].ref_id = (char *) t[i].ref;
        refs[i].attempt = t[i].attempt;
        ptrs[i] = &refs[i];
    }
}

void rc_hw_ready(rc_hw_t *hw, const char *fn, uint32_t credit, uint32_t heartbeat_ms, uint64_t prev_session,
                 const char *prev_id, const rc_hw_ref_t *started, size_t n)
{
    Refcache__V1__ControlHello hello = REFCACHE__V1__CONTROL_HELLO__INIT;
    hello.worker_id = hw->id;
    rc_testkit_send_pb(hw->control, &hello.base);
    char *fns[] = {(char *) fn};
    Refcache__V1__TaskRef refs[64], *ptrs[64];
    assert_true(n <= 64);
    task_refs(started, n, refs, ptrs);
    Refcache__V1__Ready ready = REFCACHE__V1__READY__INIT;
    ready.worker_id = hw->id;
    ready.functions = fns;
    ready.n_functions = 1;
    ready.credit = credit;
    ready.max_batch = credit;
    ready.heartbeat_ms = heartbeat_ms;
    ready.session = hw->session;
    ready.previous_session = prev_session;
    ready.previous_worker_id = (char *) (prev_id ? prev_id : "");
    ready.previous_started = ptrs;
    ready.n_previous_started = n;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_READY;
    m.ready = &ready;
    send_wmsg(hw, &m);
}

void rc_hw_heartbeat(rc_hw_t *hw)
{
    Refcache__V1__Heartbeat h = REFCACHE__V1__HEARTBEAT__INIT;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &h;
    send_wmsg(hw, &m);
}

void rc_hw_started(rc_hw_t *hw, const rc_hw_ref_t *t)
{
    Refcache__V1__Started s = REFCACHE__V1__STARTED__INIT;
    s.ref_id = (char *) t->ref;
    s.attempt = t->attempt;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_STARTED;
    m.started = &s;
    send_wmsg(hw, &m);
}

void rc_hw_result(rc_hw_t *hw, const rc_hw_ref_t *t, const char *data)
{
    Refcache__V1__Result r = REFCACHE__V1__RESULT__INIT;
    r.ref_id = (char *) t->ref;
    r.attempt = t->attempt;
    r.data.data = (uint8_t *) data;
    r.data.len = strlen(data);
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_RESULT;
    m.result = &r;
    send_wmsg(hw, &m);
}

void rc_hw_hand_back(rc_hw_t *hw, const rc_hw_ref_t *tasks, size_t n, bool leaving)
{
    Refcache__V1__TaskRef refs[64], *ptrs[64];
    assert_true(n <= 64);
    task_refs(tasks, n, refs, ptrs);
    Refcache__V1__HandBack hb = REFCACHE__V1__HAND_BACK__INIT;
    hb.tasks = ptrs;
    hb.n_tasks = n;
    hb.leaving = leaving;
    Refcache__V1__WorkerMessage m = REFCACHE__V1__WORKER_MESSAGE__INIT;
    m.body_case = REFCACHE__V1__WORKER_MESSAGE__BODY_HAND_BACK;
    m.hand_back = &hb;
    send_wmsg(hw, &m);
}

size_t rc_hw_take(rc_hw_t *hw, int ms, rc_hw_ref_t *out, size_t *n, size_t max)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    size_t got = 0;
    for (;;) {
        uint64_t now = rc_mono_us();
        if (now >= deadline)
            return got;
        Refcache__V1__Dispatch **d;
        size_t nd;
        Refcache__V1__BrokerMessage *bm =
            rc_testkit_take_dispatches(hw->work, (int) ((deadline - now + 999) / 1000), &d, &nd);
        if (!bm)
            return got;
        if (bm->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_REANNOUNCE)
            hw->reannounces++;
        else if (bm->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_HEARTBEAT)
            hw->heartbeats++;
        else if (bm->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_STOPPING)
            hw->stoppings++;
        for (size_t i = 0; i < nd; i++) {
            if (out && *n < max) {
                snprintf(out[*n].ref, sizeof out[*n].ref, "%s", d[i]->ref_id);
                out[*n].attempt = d[i]->attempt;
                (*n)++;
            }
            got++;
        }
        refcache__v1__broker_message__free_unpacked(bm, NULL);
        if (got && out)
            return got;
    }
}

size_t rc_hw_drain(rc_hw_t *hw, int ms)
{
    size_t n = 0;
    return rc_hw_take(hw, ms, NULL, &n, 0); /* without `out`, it reads until ms passed */
}
