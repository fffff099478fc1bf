/* test_observe_curve: who sees what of List, Workers and Watch under CURVE.
 * Two client keys (alice, bob) and an admin key (root) on a broker with
 * in-process workers: a client lists and watches only its own tasks and is
 * refused Workers; the admin sees every task, the workers, and in events
 * who asked by the name of its key's certificate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <czmq.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rc_broker.h"
#include "rc_testkit.h"
#include "refcache.h"

typedef struct {
    char root[64], keys[96], clients[96], workers[96], admins[96];
    rc_broker_t *broker;
    refcache_client_t *alice, *bob, *root_c;
} fixture_t;

static void s_cert(const char *keys, const char *name, const char *allow)
{
    char path[256];
    zcert_t *cert = zcert_new();
    assert_non_null(cert);
    snprintf(path, sizeof path, "%s/%s", keys, name);
    assert_int_equal(zcert_save(cert, path), 0);
    if (allow) {
        snprintf(path, sizeof path, "%s/%s", allow, name);
        assert_int_equal(zcert_save_public(cert, path), 0);
    }
    zcert_destroy(&cert);
}

static refcache_client_t *s_client(fixture_t *f, const char *name)
{
    char secret[256], broker[256], err[256];
    snprintf(secret, sizeof secret, "%s/%s", f->keys, name);
    snprintf(broker, sizeof broker, "%s/broker", f->keys);
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = rc_broker_endpoint(f->broker, RC_EP_CLIENTS);
    o.curve_secret_file = secret;
    o.broker_public_file = broker;
    refcache_client_t *c = refcache_client_new(&o, err, sizeof err);
    if (!c)
        fail_msg("client %s: %s", name, err);
    return c;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/rc-obs-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    const char *sub[] = {"keys", "clients", "workers", "admins"};
    char *dirs[] = {f->keys, f->clients, f->workers, f->admins};
    for (int i = 0; i < 4; i++) {
        snprintf(dirs[i], 96, "%s/%s", f->root, sub[i]);
        assert_int_equal(mkdir(dirs[i], 0700), 0);
    }
    s_cert(f->keys, "broker", NULL);
    s_cert(f->keys, "alice", f->clients);
    s_cert(f->keys, "bob", f->clients);
    s_cert(f->keys, "root", f->admins);
    s_cert(f->keys, "worker", f->workers);
    char secret[256];
    snprintf(secret, sizeof secret, "%s/broker", f->keys);
    rc_broker_config_t config;
    rc_testkit_config(&config);
    config.workers = 1; /* in-process: over inproc, no key */
    config.curve_secret_file = secret;
    config.clients_allowed_dir = f->clients;
    config.workers_allowed_dir = f->workers;
    config.admin_allowed_dir = f->admins;
    f->broker = rc_testkit_broker(&config);
    f->alice = s_client(f, "alice");
    f->bob = s_client(f, "bob");
    f->root_c = s_client(f, "root");
    *state = f;
    return 0;
}

static int s_unlink(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    refcache_client_destroy(&f->alice);
    refcache_client_destroy(&f->bob);
    refcache_client_destroy(&f->root_c);
    rc_broker_destroy(&f->broker);
    nftw(f->root, s_unlink, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void submit_sleep(refcache_client_t *c, char ref[REFCACHE_REF_MAX + 1])
{
    refcache_submit_options_t o;
    refcache_submit_options_init(&o);
    refcache_param_t p = {"ms", "20000"};
    o.params = &p;
    o.param_count = 1;
    refcache_task_t *t = NULL;
    assert_int_equal(refcache_client_submit(c, "sleep", &o, &t, 5000), 0);
    snprintf(ref, REFCACHE_REF_MAX + 1, "%s", t->info.ref_id);
    refcache_task_destroy(&t);
}

static size_t list_count(refcache_client_t *c, const char *want_ref)
{
    refcache_task_list_t *l = NULL;
    assert_int_equal(refcache_client_list(c, NULL, &l, 5000), 0);
    size_t n = l->count;
    if (want_ref) {
        bool found = false;
        for (size_t i = 0; i < l->count; i++)
            found |= strcmp(l->tasks[i].ref_id, want_ref) == 0;
        assert_true(found);
    }
    refcache_task_list_destroy(&l);
    return n;
}

static void test_list_and_workers(void **state)
{
    fixture_t *f = *state;
    char a[REFCACHE_REF_MAX + 1], b[REFCACHE_REF_MAX + 1];
    submit_sleep(f->alice, a);
    submit_sleep(f->bob, b);
    assert_int_equal(list_count(f->alice, a), 1);
    assert_int_equal(list_count(f->bob, b), 1);
    assert_int_equal(list_count(f->root_c, a), 2);
    list_count(f->root_c, b);

    refcache_worker_list_t *w = NULL;
    assert_int_equal(refcache_client_workers(f->alice, &w, 5000), REFCACHE_CODE_PERMISSION_DENIED);
    assert_null(w);
    assert_int_equal(refcache_client_workers(f->root_c, &w, 5000), 0);
    assert_int_equal(w->count, 1);
    refcache_worker_list_destroy(&w);
    assert_int_equal(refcache_client_cancel(f->alice, a, NULL, NULL, 5000), 0);
    assert_int_equal(refcache_client_cancel(f->bob, b, NULL, NULL, 5000), 0);
}

/* The next transition of a watch. */
static void next_transition(refcache_client_t *c, refcache_event_t *e)
{
    do
        assert_int_equal(refcache_client_watch_next(c, e, 5000), 0);
    while (e->kind != REFCACHE_EVENT_TRANSITION);
}

static void test_watch(void **state)
{
    fixture_t *f = *state;
    refcache_client_t *alice_w = s_client(f, "alice");
    assert_int_equal(refcache_client_watch(alice_w, NULL, 5000), 0);
    assert_int_equal(refcache_client_watch(f->root_c, NULL, 5000), 0);
    char b[REFCACHE_REF_MAX + 1], a[REFCACHE_REF_MAX + 1];
    submit_sleep(f->bob, b);
    submit_sleep(f->alice, a);
    assert_int_equal(refcache_client_cancel(f->alice, a, NULL, NULL, 5000), 0);
    /* alice's watcher: her task only, from the first event on. */
    refcache_event_t e;
    next_transition(alice_w, &e);
    assert_string_equal(e.ref_id, a);
    assert_string_equal(e.event, "submit");
    assert_string_equal(e.client, "alice");
    do
        next_transition(alice_w, &e);
    while (strcmp(e.event, "cancel") != 0);
    assert_string_equal(e.ref_id, a);
    assert_string_equal(e.client, "alice");
    /* The admin sees bob's submit too, named by his certificate. */
    next_transition(f->root_c, &e);
    assert_string_equal(e.ref_id, b);
    assert_string_equal(e.client, "bob");
    bool saw_alice_cancel = false;
    while (!saw_alice_cancel) {
        next_transition(f->root_c, &e);
        saw_alice_cancel = strcmp(e.event, "cancel") == 0 && strcmp(e.ref_id, a) == 0;
    }
    assert_string_equal(e.client, "alice");
    assert_int_equal(refcache_client_unwatch(alice_w, 5000), 0);
    assert_int_equal(refcache_client_unwatch(f->root_c, 5000), 0);
    assert_int_equal(refcache_client_cancel(f->bob, b, NULL, NULL, 5000), 0);
    refcache_client_destroy(&alice_w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_and_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
