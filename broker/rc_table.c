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

struct rc_table {
    uint64_t *slots;
    size_t mask; /* capacity - 1; capacity is a power of two */
    size_t size;
    size_t key_offset;
    uint64_t tag_mask;  /* ~ADDR_MASK while tagging, 0 once turned off */
    uint64_t addr_mask; /* ADDR_MASK while tagging, all ones once turned off */
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

void *rc_table_get(rc_table_t *self, const uint8_t key[RC_KEY_LEN])
{
    uint64_t want = tag(self, key);
    for (size_t i = home(key) & self->mask;; i = (i + 1) & self->mask) {
        uint64_t slot = self->slots[i];
        if (!slot)
            return NULL;
        if ((slot & self->tag_mask) == want) {
            void *obj = obj_of(self, slot);
            if (memcmp(key_of(self, obj), key, RC_KEY_LEN) == 0)
                return obj;
        }
    }
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

static int grow(rc_table_t *self)
{
    size_t capacity = (self->mask + 1) * 2;
    uint64_t *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return -1;
    /* Slots move whole, tags and all; only the home needs the key. */
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i])
            insert_slot(slots, capacity - 1, key_of(self, obj_of(self, self->slots[i])), self->slots[i]);
    free(self->slots);
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
    self->tag_mask = 0;
    self->addr_mask = UINT64_MAX;
}

int rc_table_put(rc_table_t *self, void *obj)
{
    if (((uint64_t) (uintptr_t) obj & self->tag_mask) != 0)
        untag(self);
    if ((self->size + 1) * LOAD_DEN > (self->mask + 1) * LOAD_NUM && grow(self) != 0)
        return -1;
    insert_slot(self->slots, self->mask, key_of(self, obj), slot_of(self, obj));
    self->size++;
    return 0;
}

/* The index of obj's slot, or SIZE_MAX. The slot value identifies the
 * object, so finding it compares slots, not keys. */
static size_t find_slot(const rc_table_t *self, const void *obj)
{
    /* An address with high bits set while tagging is on was never put. */
    if (((uint64_t) (uintptr_t) obj & self->tag_mask) != 0)
        return SIZE_MAX;
    uint64_t target = slot_of(self, obj);
    size_t i = home(key_of(self, obj)) & self->mask;
    while (self->slots[i] != target) {
        if (!self->slots[i])
            return SIZE_MAX;
        i = (i + 1) & self->mask;
    }
    return i;
}

int rc_table_replace(rc_table_t *self, void *old, void *obj)
{
    size_t i = find_slot(self, old);
    if (i == SIZE_MAX)
        return -1;
    if (((uint64_t) (uintptr_t) obj & self->tag_mask) != 0)
        untag(self);
    self->slots[i] = slot_of(self, obj);
    return 0;
}

int rc_table_remove(rc_table_t *self, void *obj)
{
    size_t i = find_slot(self, obj);
    if (i == SIZE_MAX)
        return -1;
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
    self->size--;
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
    return all;
}

size_t rc_table_bytes(rc_table_t *self)
{
    return (self->mask + 1) * sizeof *self->slots;
}
