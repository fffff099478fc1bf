/* codec_loop's client group (see codec_loop.c). */
#include <string.h>

#include "codec_loop.h"
#include "rc_client_codec.h"
#include "refcache.pb-c.h"

static const char REF[] = "0123456789abcdef0123456789abcdef";

void loop_client(long n)
{
    static uint8_t payload[32];
    static const refcache_param_t params[] = {{"n", "1000"}, {"mode", "fast"}};
    refcache_submit_options_t o = {.params = params,
                                   .param_count = 2,
                                   .payload = payload,
                                   .payload_len = sizeof payload,
                                   .async_timeout_ms = 1000};

    Refcache__V1__TaskInfo pending = REFCACHE__V1__TASK_INFO__INIT;
    pending.ref_id = (char *) REF;
    pending.state = REFCACHE__V1__STATE__STATE_PENDING;
    pending.function = "echo";
    pending.created_at_us = 1700000000000000ULL;
    Refcache__V1__TaskInfo done = pending;
    done.state = REFCACHE__V1__STATE__STATE_COMPLETE;
    done.result = (ProtobufCBinaryData){sizeof payload, payload};
    done.result_size = sizeof payload;
    done.attempt = 1;
    done.finished_at_us = done.created_at_us + 20;
    Refcache__V1__SubmitReply sr = REFCACHE__V1__SUBMIT_REPLY__INIT;
    sr.task = &pending;
    Refcache__V1__Reply r1 = REFCACHE__V1__REPLY__INIT, r2 = REFCACHE__V1__REPLY__INIT;
    r1.id = 5;
    r1.body_case = REFCACHE__V1__REPLY__BODY_SUBMIT;
    r1.submit = &sr;
    r2.id = 6;
    r2.body_case = REFCACHE__V1__REPLY__BODY_TASK;
    r2.task = &done;
    uint8_t f1[256], f2[256], out[512];
    size_t l1 = refcache__v1__reply__pack(&r1, f1), l2 = refcache__v1__reply__pack(&r2, f2);

    for (long i = 0; i < n; i++) {
        rc_client_codec_submit_t s = {.id = (uint64_t) i + 1, .function = "echo", .options = &o};
        rc_client_codec_ref_t w = {
            .id = (uint64_t) i + 2, .body = RC_CLIENT_CODEC_WAIT, .ref_id = REF, .num = {1000}, .n_num = 1};
        if (rc_client_codec_submit_size(&s) + rc_client_codec_ref_size(&w) > sizeof out)
            loop_fail("client sizes");
        rc_client_codec_ref_put(&w, rc_client_codec_submit_put(&s, out));
        loop_alloc_reset();
        refcache_reply_t a, b;
        if (rc_client_codec_reply(f1, l1, &loop_alloc, &a) != 0 || a.kind != REFCACHE_REPLY_SUBMIT ||
            rc_client_codec_reply(f2, l2, &loop_alloc, &b) != 0 || b.kind != REFCACHE_REPLY_TASK)
            loop_fail("client replies");
    }
}
