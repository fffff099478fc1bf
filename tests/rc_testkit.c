#include "rc_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <czmq.h>
#include <zmq.h>

#include "rc_common.h"

void rc_testkit_config(rc_broker_config_t *config)
{
    rc_broker_config_defaults(config);
    config->clients_endpoint = "tcp://127.0.0.1:*";
    config->workers_endpoint = "tcp://127.0.0.1:*";
    config->control_endpoint = "tcp://127.0.0.1:*";
}

rc_broker_t *rc_testkit_broker(const rc_broker_config_t *config)
{
    char err[256] = "";
    rc_broker_t *broker = rc_broker_new(config, err, sizeof err);
    if (!broker)
        fail_msg("rc_broker_new: %s", err);
    return broker;
}

refcache_client_t *rc_testkit_client(rc_broker_t *broker)
{
    char err[256] = "";
    refcache_client_options_t opts;
    refcache_client_options_init(&opts);
    opts.endpoint = rc_broker_endpoint(broker, RC_EP_CLIENTS);
    refcache_client_t *client = refcache_client_new(&opts, err, sizeof err);
    if (!client)
        fail_msg("refcache_client_new: %s", err);
    return client;
}

Refcache__V1__BrokerMessage *rc_testkit_take_dispatches(void *work, int ms, Refcache__V1__Dispatch ***d,
                                                        size_t *n)
{
    *d = NULL;
    *n = 0;
    zmq_pollitem_t it = {work, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    assert_true(zmq_msg_recv(&msg, work, 0) >= 0);
    Refcache__V1__BrokerMessage *bm =
        refcache__v1__broker_message__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    assert_non_null(bm);
    if (bm->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH) {
        *d = &bm->dispatch;
        *n = 1;
    } else if (bm->body_case == REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCHES) {
        *d = bm->dispatches->dispatches;
        *n = bm->dispatches->n_dispatches;
    }
    return bm;
}

void *rc_testkit_socket(void *ctx, int type, const char *id, const char *endpoint)
{
    void *s = zmq_socket(ctx, type);
    assert_non_null(s);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (id)
        assert_int_equal(zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id)), 0);
    assert_int_equal(zmq_connect(s, endpoint), 0);
    return s;
}

void rc_testkit_send_pb(void *sock, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    assert_int_equal(zmq_send(sock, buf, n, 0), (int) n);
    free(buf);
}

void rc_testkit_stats(refcache_client_t *client, refcache_stats_t *s)
{
    int rc = refcache_client_stats(client, s, 5000);
    if (rc != REFCACHE_CODE_OK)
        fail_msg("stats: %s", refcache_strerror(rc));
}

void rc_testkit_wait_workers(refcache_client_t *client, uint64_t n, int ms)
{
    uint64_t deadline = rc_mono_us() + (uint64_t) ms * 1000;
    refcache_stats_t s;
    for (;;) {
        rc_testkit_stats(client, &s);
        if (s.workers == n)
            return;
        if (rc_mono_us() > deadline)
            fail_msg("the broker has %llu workers, not %llu, after %d ms", (unsigned long long) s.workers,
                     (unsigned long long) n, ms);
        zclock_sleep(10); /* a poll interval, not a synchronisation */
    }
}

uint64_t rc_testkit_rnd(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}
