/* rc_table: the open-addressing hash table of 16-byte-keyed objects that
 * holds the broker's records, handles and cache index (see rc_table.h). */
#include "rc_table.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A slot is 0 (empty) or an object's address with a 16-bit tag from its key
 * in the top bits. User-space addresses on x86-64 and aarch64 Linux fit in
 * 48 bits, so a slot stays 8 bytes, and a probe compares the tag before it
 * dereferences the object to compare the key: a probe that passes a
 * different key costs no cache miss, except once in 65536. The tag comes
 * from the key's second 8 bytes, which home() never reads, so keys that
 * share a home slot still differ in their tags.
 *
 * An address that does not fit (a 57-bit address space, a pointer with an
 * aarch64 top-byte or MTE tag) turns tagging off for the table: every slot
 * is rewritten to the bare address once, and from then on tag_mask is 0, so
 * every probe compares the key, as before tags. */
#ifndef RC_TABLE_ADDR_BITS
#define RC_TABLE_ADDR_BITS 48 /* the unit test lowers it to reach the fallback */
#endif
#define ADDR_BITS RC_TABLE_ADDR_BITS
#define ADDR_MASK ((UINT64_C(1) << ADDR_BITS) - 1)

/* Slots are uint64_t on every platform; a 32-bit address always fits. An
 * address wider than 64 bits (CHERI) has no room for a tag. */
static_assert(sizeof(uintptr_t) <= sizeof(uint64_t), "rc_table packs addresses into 64-bit slots");

/* The most the table holds is 7/8 of its slots; tags keep long probes
 * cheap, since they read consecutive slots without touching the objects. */
#define LOAD_NUM 7
#define LOAD_DEN 8

/* Growth is incremental, so that no single call stalls the broker for a
 * rehash of millions of entries (tens of milliseconds of cache misses):
 * the full array becomes `old`, a twice larger one takes new entries, and
 * each put, remove or replace moves at least MIGRATE_STEP old slots across,
 * on to the end of a probe cluster (about C/8 calls for an old array of C
 * slots, well before the new one fills). Until then a lookup tries the new
 * array, then the old one. The moved slots (emptied) are whole clusters,
 * starting at an empty slot, so every entry still in the old array has its
 * whole probe chain outside them, and a probe from a moved home stops at
 * once. A removal there leaves TOMB, passed over like an occupied slot, so
 * the chains stay intact without shifting anything in an array that is
 * going away. */
#define MIGRATE_STEP 8
#define TOMB         ((uint64_t) 1) /* never an object's slot: objects are aligned */

struct rc_table {
    uint64_t *slots;
    size_t mask; /* capacity - 1; capacity is a power of two */
    size_t size; /* entries in both arrays */
    size_t key_offset;
    uint64_t tag_mask;  /* ~ADDR_MASK while tagging, 0 once turned off */
    uint64_t addr_mask; /* ADDR_MASK while tagging, all ones once turned off */
    uint64_t *old;      /* the array being emptied into slots, or NULL */
    size_t old_mask;
    size_t old_start; /* where the move began (an empty slot) */
    size_t old_done;  /* slots moved so far, from old_start on (cyclically) */
};

rc_table_t *rc_table_new(size_t key_offset)
{
    rc_table_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->slots = calloc(64, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    self->mask = 63;
    self->key_offset = key_offset;
    self->tag_mask = ~ADDR_MASK;
    self->addr_mask = ADDR_MASK;
    return self;
}

void rc_table_destroy(rc_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free((*self_p)->old);
    free(*self_p);
    *self_p = NULL;
}

static const uint8_t *key_of(const rc_table_t *self, const void *obj)
{
    return (const uint8_t *) obj + self->key_offset;
}

static size_t home(const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t) (h ^ (h >> 29));
}

/* The key's tag, already in the slot's top bits (0 once tagging is off). */
static uint64_t tag(const rc_table_t *self, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key + 8, sizeof h);
    return h & self->tag_mask;
}

static void *obj_of(const rc_table_t *self, uint64_t slot)
{
    return (void *) (uintptr_t) (slot & self->addr_mask);
}

static uint64_t slot_of(const rc_table_t *self, const void *obj)
{
    return (uint64_t) (uintptr_t) obj | tag(self, key_of(self, obj));
}

/* The object with key in one array, or NULL. A TOMB is passed over. */
static void *lookup(const rc_table_t *self, const uint64_t *slots, size_t mask, const uint8_t *key)
{
    uint64_t want = tag(self, key);
    for (size_t i = home(key) & mask;; i = (i + 1) & mask) {
        uint64_t slot = slots[i];
        if (!slot)
            return NULL;
        if (slot != TOMB && (slot & self->tag_mask) == want) {
            void *obj = obj_of(self, slot);
            if (memcmp(key_of(self, obj), key, RC_KEY_LEN) == 0)
                return obj;
        }
    }
}

void *rc_table_get(rc_table_t *self, const uint8_t key[RC_KEY_LEN])
{
    void *obj = lookup(self, self->slots, self->mask, key);
    if (!obj && self->old)
        obj = lookup(self, self->old, self->old_mask, key);
    return obj;
}

/* Places a slot value in the first free slot from its home; the key is
 * known absent, so no key is compared. */
static void insert_slot(uint64_t *slots, size_t mask, const uint8_t *key, uint64_t slot)
{
    size_t i = home(key) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = slot;
}

/* Moves at least n old slots into the new array, and on to the end of a
 * probe cluster (so the moved slots stay whole clusters); frees the old
 * array once every slot has moved. Slots move whole, tags and all; only the
 * home needs the key. */
static void migrate(rc_table_t *self, size_t n)
{
    size_t capacity = self->old_mask + 1;
    for (size_t k = 0; self->old_done < capacity; k++) {
        size_t i = (self->old_start + self->old_done) & self->old_mask;
        if (k >= n && !self->old[i]) {
            /* The next call reads the keys of the objects in the next
             * slots (their homes): have them fetched meanwhile. */
            for (size_t j = 1; j <= 2 * MIGRATE_STEP; j++) {
                uint64_t next = self->old[(i + j) & self->old_mask];
                if (next && next != TOMB)
                    __builtin_prefetch(key_of(self, obj_of(self, next)));
            }
            return;
        }
        uint64_t slot = self->old[i];
        if (slot && slot != TOMB)
            insert_slot(self->slots, self->mask, key_of(self, obj_of(self, slot)), slot);
        self->old[i] = 0;
        self->old_done++;
    }
    free(self->old);
    self->old = NULL;
}

/* Starts moving into an array twice as large; what is still moving from a
 * previous growth moves first. */
static int grow(rc_table_t *self)
{
    if (self->old)
        migrate(self, SIZE_MAX);
    size_t capacity = (self->mask + 1) * 2;
    uint64_t *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return -1;
    /* The move begins at an empty slot (at most 7/8 are full), so that the
     * moved slots are always whole clusters. */
    size_t start = 0;
    while (self->slots[start])
        start++;
    self->old = self->slots;
    self->old_mask = self->mask;
    self->old_start = start;
    self->old_done = 0;
    self->slots = slots;
    self->mask = capacity - 1;
    return 0;
}

/* Strips every tag, for good: positions do not depend on tags, so entries
 * stay where they are. Runs at most once per table. */
static void untag(rc_table_t *self)
{
    for (size_t i = 0; i <= self->mask; i++)
        self->slots[i] &= ADDR_MASK;
    for (size_t i = 0; self->old && i <= self->old_mask; i++)
        self->old[i] &= ADDR_MASK; /* TOMB stays TOMB */
    self->tag_mask = 0;
    self->addr_mask = UINT64_MAX;
}

int rc_table_put(rc_table_t *self, void *obj)
{
    if (((uint64_t) (uintptr_t) obj & self->tag_mask) != 0)
        untag(self);
    if (self->old)
        migrate(self, MIGRATE_STEP);
    /* The new array alone must stay within the load, as every entry ends
     * up there. */
    if ((self->size + 1) * LOAD_DEN > (self->mask + 1) * LOAD_NUM && grow(self) != 0)
        return -1;
    insert_slot(self->slots, self->mask, key_of(self, obj), slot_of(self, obj));
    self->size++;
    return 0;
}

/* The index of obj's slot in one array, or SIZE_MAX. The slot value
 * identifies the object, so finding it compares slots, not keys. */
static size_t find_in(const rc_table_t *self, const uint64_t *slots, size_t mask, const void *obj)
{
    uint64_t target = slot_of(self, obj);
    size_t i = home(key_of(self, obj)) & mask;
    while (slots[i] != target) {
        if (!slots[i])
            return SIZE_MAX;
        i = (i + 1) & mask;
    }
    return i;
}

/* Where obj is: its array (new or old) and index; false if not stored. */
static bool find_slot(const rc_table_t *self, const void *obj, uint64_t **slots, size_t *index)
{
    /* An address with high bits set while tagging is on was never put. */
    if (((uint64_t) (uintptr_t) obj & self->tag_mask) != 0)
        return false;
    size_t i = find_in(self, self->slots, self->mask, obj);
    if (i != SIZE_MAX) {
        *slots = self->slots;
        *index = i;
        return true;
    }
    if (!self->old)
        return false;
    i = find_in(self, self->old, self->old_mask, obj);
    if (i == SIZE_MAX)
        return false;
    *slots = self->old;
    *index = i;
    return true;
}

int rc_table_replace(rc_table_t *self, void *old, void *obj)
{
    uint64_t *slots;
    size_t i;
    if (!find_slot(self, old, &slots, &i))
        return -1;
    if (((uint64_t) (uintptr_t) obj & self->tag_mask) != 0)
        untag(self);
    slots[i] = slot_of(self, obj);
    if (self->old)
        migrate(self, MIGRATE_STEP);
    return 0;
}

int rc_table_remove(rc_table_t *self, void *obj)
{
    uint64_t *slots;
    size_t i;
    if (!find_slot(self, obj, &slots, &i))
        return -1;
    self->size--;
    if (slots == self->old) {
        /* The old array only empties: mark the slot and move on. */
        slots[i] = TOMB;
        migrate(self, MIGRATE_STEP);
        return 0;
    }
    /* Backward-shift deletion: move later members of the probe chain into
     * the hole when their home position allows it. */
    size_t hole = i;
    for (size_t j = (i + 1) & self->mask; self->slots[j]; j = (j + 1) & self->mask) {
        size_t h = home(key_of(self, obj_of(self, self->slots[j]))) & self->mask;
        /* The entry at j may move to hole if hole lies cyclically in [h, j). */
        if (((j - h) & self->mask) >= ((j - hole) & self->mask)) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole] = 0;
    if (self->old)
        migrate(self, MIGRATE_STEP);
    return 0;
}

size_t rc_table_size(rc_table_t *self)
{
    return self->size;
}

void **rc_table_snapshot(rc_table_t *self, size_t *count)
{
    *count = 0;
    void **all = malloc((self->size ? self->size : 1) * sizeof(void *));
    if (!all)
        return NULL;
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i])
            all[(*count)++] = obj_of(self, self->slots[i]);
    for (size_t i = 0; self->old && i <= self->old_mask; i++)
        if (self->old[i] && self->old[i] != TOMB)
            all[(*count)++] = obj_of(self, self->old[i]);
    return all;
}

size_t rc_table_bytes(rc_table_t *self)
{
    size_t slots = self->mask + 1 + (self->old ? self->old_mask + 1 : 0);
    return slots * sizeof *self->slots;
}
