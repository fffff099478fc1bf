/* The public headers (client/refcache.h, workers/refcache_worker.h) compile
 * together with every internal header of the broker and of the three codecs
 * in one translation unit: a public name never reuses an internal one. And
 * the public state and code constants are the .proto's, name for name, read
 * from the generated descriptors (a value added to the .proto and not to the
 * public header fails here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "refcache.h"
#include "refcache_worker.h"

#include "rc_broker.h"
#include "rc_core.h"
#include "rc_builtins.h"
#include "rc_client_codec.h"
#include "rc_codec.h"
#include "rc_common.h"
#include "rc_wire.h"
#include "rc_worker_codec.h"
#include "refcache.pb-c.h"

typedef struct {
    const char *name;
    int value;
} named_t;

#define N(prefix, x)                                                                                         \
    {                                                                                                        \
#x, prefix##x                                                                                        \
    }

static const named_t states[] = {
    N(REFCACHE_STATE_, UNSPECIFIED), N(REFCACHE_STATE_, PENDING), N(REFCACHE_STATE_, PROCESSING),
    N(REFCACHE_STATE_, COMPLETE),    N(REFCACHE_STATE_, FAILED),  N(REFCACHE_STATE_, CANCELLED),
};

static const named_t codes[] = {
    N(REFCACHE_CODE_, OK),
    N(REFCACHE_CODE_, CANCELLED),
    N(REFCACHE_CODE_, UNKNOWN),
    N(REFCACHE_CODE_, INVALID_ARGUMENT),
    N(REFCACHE_CODE_, DEADLINE_EXCEEDED),
    N(REFCACHE_CODE_, NOT_FOUND),
    N(REFCACHE_CODE_, ALREADY_EXISTS),
    N(REFCACHE_CODE_, PERMISSION_DENIED),
    N(REFCACHE_CODE_, RESOURCE_EXHAUSTED),
    N(REFCACHE_CODE_, FAILED_PRECONDITION),
    N(REFCACHE_CODE_, ABORTED),
    N(REFCACHE_CODE_, OUT_OF_RANGE),
    N(REFCACHE_CODE_, UNIMPLEMENTED),
    N(REFCACHE_CODE_, INTERNAL),
    N(REFCACHE_CODE_, UNAVAILABLE),
    N(REFCACHE_CODE_, DATA_LOSS),
    N(REFCACHE_CODE_, UNAUTHENTICATED),
};

/* Each value of the .proto's enum (named PREFIX_X there) has a public
 * constant REFCACHE_..._X of the same value, and no public one is extra. */
static void s_same_enum(const ProtobufCEnumDescriptor *d, const char *prefix, const named_t *pub, size_t n)
{
    assert_int_equal(d->n_values, n);
    for (unsigned i = 0; i < d->n_values; i++) {
        const char *name = d->values[i].name;
        assert_int_equal(strncmp(name, prefix, strlen(prefix)), 0);
        name += strlen(prefix);
        size_t j = 0;
        while (j < n && strcmp(pub[j].name, name) != 0)
            j++;
        if (j == n)
            fail_msg("%s%s has no public constant", prefix, name);
        assert_int_equal(pub[j].value, d->values[i].value);
    }
}

static void test_states_match_proto(void **state)
{
    (void) state;
    s_same_enum(&refcache__v1__state__descriptor, "STATE_", states, sizeof states / sizeof states[0]);
}

static void test_codes_match_proto(void **state)
{
    (void) state;
    s_same_enum(&refcache__v1__code__descriptor, "CODE_", codes, sizeof codes / sizeof codes[0]);
    assert_string_equal(refcache_strerror(REFCACHE_CODE_NOT_FOUND), "NOT_FOUND");
}

/* The broker's internal reply and the client's public one are two types
 * that live side by side. */
static void test_reply_types_apart(void **state)
{
    (void) state;
    rc_reply_t internal = {.kind = RC_REPLY_TASK};
    refcache_reply_t public = {.kind = REFCACHE_REPLY_TASK};
    assert_int_equal(internal.kind, RC_REPLY_TASK);
    assert_int_equal(public.kind, REFCACHE_REPLY_TASK);
}

/* The owned objects: _destroy accepts NULL and clears the pointer; a copy
 * keeps its bytes after the view's memory is gone. */
static void test_owned_copies(void **state)
{
    (void) state;
    refcache_task_destroy(NULL);
    refcache_page_destroy(NULL);
    char result[] = "forty-two", fn[] = "echo";
    refcache_task_view_t view = {.state = REFCACHE_STATE_COMPLETE,
                                 .result = (const uint8_t *) result,
                                 .result_len = sizeof result - 1,
                                 .error = "",
                                 .function = fn,
                                 .namespace_name = ""};
    strcpy(view.ref_id, "abc");
    refcache_task_t *task = refcache_task_dup(&view);
    assert_non_null(task);
    memset(result, 'x', sizeof result - 1);
    fn[0] = 'X';
    assert_memory_equal(task->info.result, "forty-two", 9);
    assert_string_equal(task->info.function, "echo");
    assert_string_equal(task->info.ref_id, "abc");
    assert_int_equal(task->info.state, REFCACHE_STATE_COMPLETE);
    refcache_task_destroy(&task);
    assert_null(task);
    refcache_task_destroy(&task);

    refcache_page_view_t pv = {.data = (const uint8_t *) "page", .len = 4, .offset = 8, .total_size = 12};
    refcache_page_t *page = refcache_page_dup(&pv);
    assert_non_null(page);
    assert_memory_equal(page->info.data, "page", 4);
    assert_int_equal(page->info.offset, 8);
    assert_int_equal(page->info.total_size, 12);
    refcache_page_destroy(&page);
    assert_null(page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_match_proto),
        cmocka_unit_test(test_codes_match_proto),
        cmocka_unit_test(test_reply_types_apart),
        cmocka_unit_test(test_owned_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
