/* The hand codecs against refcache.proto itself: each codec declares, for
 * every message it reads or writes by hand, which fields it handles and
 * which it knowingly leaves out (rc_wire_cover_t, beside its code); this
 * test walks the generated descriptors and fails, naming the codec, the
 * message and the field, for any field a codec does not account for. So a
 * field added to the .proto fails here until every codec that handles its
 * message has been taught it. The declarations are checked too: every field
 * they name exists, every submessage a codec handles is declared as well,
 * and the hand encoders write every field they claim (a view with every
 * member set, encoded and unpacked by protobuf-c, has each claimed field
 * set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rc_client_codec.h"
#include "rc_codec.h"
#include "rc_worker_codec.h"
#include "refcache.pb-c.h"

static const rc_wire_cover_t *const all_covers[] = {
    rc_codec_request_covers, rc_codec_reply_covers,  rc_codec_worker_covers, rc_codec_observe_covers,
    rc_client_codec_covers,  rc_client_observe_covers, rc_worker_codec_covers,
};
#define N_LISTS (sizeof all_covers / sizeof all_covers[0])

static bool listed(const uint32_t *list, uint32_t id)
{
    for (; list && *list; list++)
        if (*list == id)
            return true;
    return false;
}

static bool named(const char *const *names, const char *name)
{
    for (; names && *names; names++)
        if (!strcmp(*names, name))
            return true;
    return false;
}

static bool handles(const rc_wire_cover_t *c, const ProtobufCFieldDescriptor *f)
{
    return listed(c->fields, f->id) || named(c->names, f->name);
}

static const char *short_name(const ProtobufCMessageDescriptor *d)
{
    return d->short_name;
}

/* Every field of every message a codec covers is handled or left out. */
static void test_every_field_is_covered(void **state)
{
    (void) state;
    int missing = 0;
    for (size_t l = 0; l < N_LISTS; l++)
        for (const rc_wire_cover_t *c = all_covers[l]; c->codec; c++) {
            const ProtobufCMessageDescriptor *d = c->message;
            for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                if (handles(c, f) || listed(c->left_out, f->id))
                    continue;
                fprintf(stderr,
                        "DRIFT: %s (%s) does not handle %s.%s (field %u): teach the codec the field, "
                        "or list it in its cover's .left_out with the reason\n",
                        c->codec, c->file, short_name(d), f->name, f->id);
                missing++;
            }
        }
    if (missing)
        fail_msg("%d field(s) of refcache.proto that a hand codec does not handle (listed above)", missing);
}

/* Every field a cover names is a field of its message, named once. */
static void test_covers_name_real_fields(void **state)
{
    (void) state;
    int bad = 0;
    for (size_t l = 0; l < N_LISTS; l++)
        for (const rc_wire_cover_t *c = all_covers[l]; c->codec; c++) {
            const ProtobufCMessageDescriptor *d = c->message;
            assert_true(c->fields || c->names);
            for (const uint32_t *id = c->fields; id && *id; id++)
                if (!protobuf_c_message_descriptor_get_field(d, *id) || listed(id + 1, *id) ||
                    listed(c->left_out, *id)) {
                    fprintf(stderr, "%s (%s): field %u of %s is unknown or listed twice\n", c->codec, c->file,
                            *id, short_name(d));
                    bad++;
                }
            for (const uint32_t *id = c->left_out; id && *id; id++)
                if (!protobuf_c_message_descriptor_get_field(d, *id)) {
                    fprintf(stderr, "%s (%s): left-out field %u of %s is unknown\n", c->codec, c->file, *id,
                            short_name(d));
                    bad++;
                }
            for (const char *const *n = c->names; n && *n; n++)
                if (!protobuf_c_message_descriptor_get_field_by_name(d, *n)) {
                    fprintf(stderr, "%s (%s): %s has no field %s\n", c->codec, c->file, short_name(d), *n);
                    bad++;
                }
        }
    if (bad)
        fail_msg("%d cover entries name no field of their message (listed above)", bad);
}

static const rc_wire_cover_t *find_cover(const rc_wire_cover_t *list, const char *codec,
                                         const ProtobufCMessageDescriptor *d)
{
    for (const rc_wire_cover_t *c = list; c->codec; c++)
        if (c->message == d && (!codec || !strcmp(c->codec, codec)))
            return c;
    return NULL;
}

/* The cover of d by codec in any list: a codec may declare its covers in
 * several files (the broker's requests and replies of rc_codec_observe). */
static const rc_wire_cover_t *find_cover_any(const char *codec, const ProtobufCMessageDescriptor *d)
{
    for (size_t l = 0; l < N_LISTS; l++) {
        const rc_wire_cover_t *c = find_cover(all_covers[l], codec, d);
        if (c)
            return c;
    }
    return NULL;
}

/* A codec that handles a field of message type covers that message too,
 * once: a new body or submessage cannot slip in uncovered. */
static void test_submessages_are_covered(void **state)
{
    (void) state;
    int bad = 0;
    for (size_t l = 0; l < N_LISTS; l++)
        for (const rc_wire_cover_t *c = all_covers[l]; c->codec; c++) {
            const ProtobufCMessageDescriptor *d = c->message;
            const rc_wire_cover_t *first = find_cover(all_covers[l], c->codec, d);
            if (first != c) {
                fprintf(stderr, "%s (%s): %s covered twice\n", c->codec, c->file, short_name(d));
                bad++;
            }
            for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                if (f->type != PROTOBUF_C_TYPE_MESSAGE || !handles(c, f) ||
                    find_cover_any(c->codec, f->descriptor))
                    continue;
                fprintf(stderr, "%s (%s) handles %s.%s but does not cover %s\n", c->codec, c->file,
                        short_name(d), f->name, short_name(f->descriptor));
                bad++;
            }
        }
    if (bad)
        fail_msg("%d submessage(s) handled but not covered (listed above)", bad);
}

/* ---------------------------------------------------------------- encoders keep their word */

/* Whether field f of m holds something other than its default. */
static bool is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const uint8_t *at = (const uint8_t *) m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *) ((const uint8_t *) m + f->quantifier_offset) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *) ((const uint8_t *) m + f->quantifier_offset) == f->id;
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *) at;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *) at != 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_INT64:
        return *(const uint64_t *) at != 0;
    case PROTOBUF_C_TYPE_STRING:
        return *(char *const *) at && **(char *const *) at;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *) at)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *) at != NULL;
    default:
        fail_msg("is_set: field type %d not handled by this test", (int) f->type);
        return false;
    }
}

/* Fails naming each field the codec claims to handle of m's message that m
 * (decoded from what the codec wrote, from a view with every member set)
 * leaves at its default. Members of a oneof are the caller's to check. */
static void assert_claims_kept(const rc_wire_cover_t *list, const char *codec, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const rc_wire_cover_t *c = find_cover(list, codec, d);
    assert_non_null(c);
    int unset = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!handles(c, f) || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || is_set(m, f))
            continue;
        fprintf(stderr, "%s (%s) claims %s.%s (field %u) but did not write it\n", c->codec, c->file,
                short_name(d), f->name, f->id);
        unset++;
    }
    if (unset)
        fail_msg("%d claimed field(s) not written (listed above)", unset);
}

static const char REF[] = "0123456789abcdef0123456789abcdef";
static const uint8_t DATA[] = {1, 2, 3};

static Refcache__V1__Reply *broker_reply(rc_buf_t *buf, const rc_reply_t *r)
{
    assert_int_equal(rc_codec_reply(buf, r), 0);
    Refcache__V1__Reply *pb = refcache__v1__reply__unpack(NULL, buf->len, buf->data);
    assert_non_null(pb);
    assert_true(pb->id && pb->code && pb->message && *pb->message);
    return pb;
}

static void test_broker_encoders_write_what_they_claim(void **state)
{
    (void) state;
    const rc_wire_cover_t *list = rc_codec_reply_covers;
    const char *codec = "rc_codec: Reply encoder";
    rc_taskview_t v = {.ref_hex = REF,
                       .state = 4,
                       .result = {DATA, sizeof DATA},
                       .result_size = 9,
                       .result_truncated = true,
                       .progress_done = 1,
                       .progress_total = 2,
                       .attempt = 3,
                       .max_retries = 4,
                       .error_code = 13,
                       .error = "e",
                       .function = "f",
                       .ns = "n",
                       .created_at_us = 5,
                       .started_at_us = 6,
                       .finished_at_us = 7,
                       .stopped_at_us = 8,
                       .expires_at_us = 9,
                       .ever_started = true};
    rc_buf_t buf = {0};
    static const rc_clamp_t clamp = {.field = "ttl_s", .requested = 9, .used = 8};
    rc_reply_t r = {.id = 1,
                    .code = 1,
                    .message = "m",
                    .clamped = &clamp,
                    .n_clamped = 1,
                    .kind = RC_REPLY_SUBMIT,
                    .task = &v,
                    .cache_hit = true,
                    .deduplicated = true,
                    .replayed = true};
    Refcache__V1__Reply *pb = broker_reply(&buf, &r);
    assert_int_equal(pb->body_case, REFCACHE__V1__REPLY__BODY_SUBMIT);
    assert_claims_kept(list, codec, &pb->base);
    assert_int_equal(pb->n_clamped, 1);
    assert_claims_kept(list, codec, &pb->clamped[0]->base);
    assert_claims_kept(list, codec, &pb->submit->base);
    assert_claims_kept(list, codec, &pb->submit->task->base);
    refcache__v1__reply__free_unpacked(pb, NULL);

    r = (rc_reply_t){.id = 1,
                     .code = 1,
                     .message = "m",
                     .kind = RC_REPLY_FETCH,
                     .data = {DATA, sizeof DATA},
                     .total_size = 7,
                     .offset = 2};
    pb = broker_reply(&buf, &r);
    assert_claims_kept(list, codec, &pb->fetch->base);
    refcache__v1__reply__free_unpacked(pb, NULL);

    r = (rc_reply_t){.id = 1, .code = 1, .message = "m", .kind = RC_REPLY_CANCEL, .flag = true, .state = 5};
    pb = broker_reply(&buf, &r);
    assert_claims_kept(list, codec, &pb->cancel->base);
    refcache__v1__reply__free_unpacked(pb, NULL);

    r = (rc_reply_t){.id = 1, .code = 1, .message = "m", .kind = RC_REPLY_DELETE, .flag = true};
    pb = broker_reply(&buf, &r);
    assert_claims_kept(list, codec, &pb->delete_->base);
    refcache__v1__reply__free_unpacked(pb, NULL);

    rc_statsview_t s = {.version = "v", .draining = true, .store_path = "p", .store_error = "e"};
    uint64_t k = 0;
#define SET(name) s.name = ++k;
    RC_STATS_FIELDS(SET)
#undef SET
    r = (rc_reply_t){.id = 1, .code = 1, .message = "m", .kind = RC_REPLY_STATS, .stats = &s};
    pb = broker_reply(&buf, &r);
    assert_claims_kept(list, codec, &pb->stats->base);
    refcache__v1__reply__free_unpacked(pb, NULL);

    /* The dispatch spec, from a submit with every field set. */
    Refcache__V1__SubmitRequest__ParamsEntry e = REFCACHE__V1__SUBMIT_REQUEST__PARAMS_ENTRY__INIT;
    Refcache__V1__SubmitRequest__ParamsEntry *params[] = {&e};
    e.key = "k";
    e.value = "v";
    Refcache__V1__SubmitRequest sub = REFCACHE__V1__SUBMIT_REQUEST__INIT;
    sub.function = "f";
    sub.n_params = 1;
    sub.params = params;
    sub.payload = (ProtobufCBinaryData){sizeof DATA, (uint8_t *) DATA};
    Refcache__V1__Request req = REFCACHE__V1__REQUEST__INIT;
    req.body_case = REFCACHE__V1__REQUEST__BODY_SUBMIT;
    req.submit = &sub;
    uint8_t frame[256], room[256], *spec;
    size_t len = refcache__v1__request__pack(&req, frame), spec_len;
    rc_request_t view;
    const char *why;
    assert_int_equal(rc_codec_request(frame, len, &view, &why), 0);
    assert_int_equal(rc_codec_dispatch_spec(&view, REF, room, sizeof room, &spec, &spec_len), 0);
    rc_codec_dispatch_set_attempt(spec, spec_len, 1);
    rc_codec_request_release(&view);
    Refcache__V1__BrokerMessage *bm = refcache__v1__broker_message__unpack(NULL, spec_len, spec);
    assert_non_null(bm);
    assert_int_equal(bm->body_case, REFCACHE__V1__BROKER_MESSAGE__BODY_DISPATCH);
    codec = "rc_codec: BrokerMessage and control encoder";
    assert_claims_kept(rc_codec_worker_covers, codec, &bm->dispatch->base);
    assert_claims_kept(rc_codec_worker_covers, codec, &bm->dispatch->params[0]->base);
    refcache__v1__broker_message__free_unpacked(bm, NULL);

    assert_int_equal(rc_codec_cancel_notice(&buf, REF, 1, 1), 0);
    Refcache__V1__ControlMessage *cm = refcache__v1__control_message__unpack(NULL, buf.len, buf.data);
    assert_non_null(cm);
    assert_claims_kept(rc_codec_worker_covers, codec, &cm->cancel->base);
    refcache__v1__control_message__free_unpacked(cm, NULL);
    rc_buf_free(&buf);
}

static void test_client_and_worker_encoders_write_what_they_claim(void **state)
{
    (void) state;
    const char *codec = "rc_client_codec: Request encoder";
    const refcache_param_t params[] = {{"k", "v"}};
    refcache_submit_options_t o = {.params = params,
                                   .param_count = 1,
                                   .payload = DATA,
                                   .payload_len = sizeof DATA,
                                   .async_timeout_ms = 1,
                                   .deadline_ms = 2,
                                   .max_retries = 3,
                                   .ttl_s = 4,
                                   .no_cache = true,
                                   .request_key = "k"};
    rc_client_codec_submit_t s = {.id = 1, .function = "f", .options = &o, .ns = "n"};
    uint8_t out[512];
    size_t n = rc_client_codec_submit_size(&s);
    assert_true(n <= sizeof out);
    rc_client_codec_submit_put(&s, out);
    Refcache__V1__Request *rq = refcache__v1__request__unpack(NULL, n, out);
    assert_non_null(rq);
    assert_claims_kept(rc_client_codec_covers, codec, &rq->base);
    assert_claims_kept(rc_client_codec_covers, codec, &rq->submit->base);
    assert_claims_kept(rc_client_codec_covers, codec, &rq->submit->params[0]->base);
    refcache__v1__request__free_unpacked(rq, NULL);

    static const rc_client_codec_body_t bodies[] = {RC_CLIENT_CODEC_STATUS, RC_CLIENT_CODEC_WAIT,
                                                    RC_CLIENT_CODEC_FETCH, RC_CLIENT_CODEC_CANCEL,
                                                    RC_CLIENT_CODEC_DELETE};
    static const unsigned n_nums[] = {0, 1, 2, 0, 0};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        rc_client_codec_ref_t r = {
            .id = 1, .body = bodies[i], .ref_id = REF, .num = {5, 6}, .n_num = n_nums[i], .ns = "n"};
        n = rc_client_codec_ref_size(&r);
        rc_client_codec_ref_put(&r, out);
        rq = refcache__v1__request__unpack(NULL, n, out);
        assert_non_null(rq);
        assert_int_equal(rq->body_case, bodies[i]);
        /* The body, whichever it is: the members of the oneof share a place. */
        assert_claims_kept(rc_client_codec_covers, codec, (const ProtobufCMessage *) rq->status);
        refcache__v1__request__free_unpacked(rq, NULL);
    }

    codec = "rc_worker_codec: WorkerMessage encoder";
    n = rc_worker_codec_result_size(REF, 1, sizeof DATA);
    rc_worker_codec_result_put(out, REF, 1, DATA, sizeof DATA);
    Refcache__V1__WorkerMessage *wm = refcache__v1__worker_message__unpack(NULL, n, out);
    assert_non_null(wm);
    assert_claims_kept(rc_worker_codec_covers, codec, &wm->result->base);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
    n = rc_worker_codec_started_size(REF, 1);
    rc_worker_codec_started_put(out, REF, 1);
    wm = refcache__v1__worker_message__unpack(NULL, n, out);
    assert_non_null(wm);
    assert_claims_kept(rc_worker_codec_covers, codec, &wm->started->base);
    refcache__v1__worker_message__free_unpacked(wm, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field_is_covered),
        cmocka_unit_test(test_covers_name_real_fields),
        cmocka_unit_test(test_submessages_are_covered),
        cmocka_unit_test(test_broker_encoders_write_what_they_claim),
        cmocka_unit_test(test_client_and_worker_encoders_write_what_they_claim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
