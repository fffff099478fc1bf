/* rc_idem: idempotency keys of Submits (see rc_idem.h). */
#include "rc_idem.h"

#include <stdlib.h>
#include <string.h>

#include "rc_core.h"
#include "rc_key.h"

/* Handles that go take their key with them: every note that ends one. */
static void on_note(void *arg, const rc_note_t *note)
{
    rc_core_t *core = arg;
    if (note->to != RC_GONE || !rc_table_size(core->idem))
        return;
    rc_idem_forget(core, note->handle ? note->handle->ref : note->task->ref);
}

int rc_idem_init(rc_core_t *core)
{
    core->idem = rc_table_new(offsetof(rc_idem_t, digest));
    core->idem_refs = rc_table_new(offsetof(rc_idem_t, ref));
    if (!core->idem || !core->idem_refs)
        return -1;
    /* Only the transitions where a handle goes. */
    return rc_runner_observe_some(core, on_note, core, RC_ACT_DROP | RC_ACT_FORGET);
}

void rc_idem_fini(rc_core_t *core)
{
    size_t n = 0;
    void **all = core->idem ? rc_table_snapshot(core->idem, &n) : NULL;
    for (size_t i = 0; all && i < n; i++)
        free(all[i]);
    free(all);
    rc_table_destroy(&core->idem);
    rc_table_destroy(&core->idem_refs);
}

void rc_idem_digest(rc_core_t *core, uint64_t owner, const rc_str_t *ns, const rc_str_t *key, uint8_t out[16])
{
    rc_key_state_t ks;
    rc_key_init(&ks, core->key_secret);
    rc_key_field(&ks, "request_key", 11);
    rc_key_field(&ks, &owner, sizeof owner);
    rc_key_field(&ks, ns->ptr, ns->len);
    rc_key_field(&ks, key->ptr, key->len);
    rc_key_final(&ks, out);
}

const uint8_t *rc_idem_ref(rc_core_t *core, const uint8_t digest[16])
{
    rc_idem_t *e = rc_table_get(core->idem, digest);
    return e ? e->ref : NULL;
}

const uint8_t *rc_idem_digest_of(rc_core_t *core, const uint8_t ref[16])
{
    if (!rc_table_size(core->idem_refs))
        return NULL;
    rc_idem_t *e = rc_table_get(core->idem_refs, ref);
    return e ? e->digest : NULL;
}

static void drop(rc_core_t *core, rc_idem_t *e)
{
    rc_table_remove(core->idem, e);
    rc_table_remove(core->idem_refs, e);
    free(e);
}

int rc_idem_add(rc_core_t *core, const uint8_t digest[16], const uint8_t ref[16])
{
    rc_idem_t *old = rc_table_get(core->idem, digest);
    if (old)
        drop(core, old);
    rc_idem_t *e = malloc(sizeof *e);
    if (!e)
        return -1;
    memcpy(e->digest, digest, 16);
    memcpy(e->ref, ref, 16);
    if (rc_table_put(core->idem, e) != 0) {
        free(e);
        return -1;
    }
    if (rc_table_put(core->idem_refs, e) != 0) {
        rc_table_remove(core->idem, e);
        free(e);
        return -1;
    }
    return 0;
}

void rc_idem_forget(rc_core_t *core, const uint8_t ref[16])
{
    rc_idem_t *e = rc_table_get(core->idem_refs, ref);
    if (e)
        drop(core, e);
}
