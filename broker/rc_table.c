#include "rc_table.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct rc_table {
    void **slots;
    size_t mask; /* capacity - 1; capacity is a power of two */
    size_t size;
    size_t key_offset;
};

rc_table_t *rc_table_new(size_t key_offset)
{
    rc_table_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->slots = calloc(64, sizeof(void *));
    if (!self->slots) {
        free(self);
        return NULL;
    }
    self->mask = 63;
    self->key_offset = key_offset;
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

void *rc_table_get(rc_table_t *self, const uint8_t key[RC_KEY_LEN])
{
    for (size_t i = home(key) & self->mask;; i = (i + 1) & self->mask) {
        void *obj = self->slots[i];
        if (!obj)
            return NULL;
        if (memcmp(key_of(self, obj), key, RC_KEY_LEN) == 0)
            return obj;
    }
}

static void insert_slot(void **slots, size_t mask, const uint8_t *key, void *obj)
{
    size_t i = home(key) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = obj;
}

static int grow(rc_table_t *self)
{
    size_t capacity = (self->mask + 1) * 2;
    void **slots = calloc(capacity, sizeof(void *));
    if (!slots)
        return -1;
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i])
            insert_slot(slots, capacity - 1, key_of(self, self->slots[i]), self->slots[i]);
    free(self->slots);
    self->slots = slots;
    self->mask = capacity - 1;
    return 0;
}

int rc_table_put(rc_table_t *self, void *obj)
{
    /* Keep the load under 3/4 so probe chains stay short. */
    if ((self->size + 1) * 4 > (self->mask + 1) * 3 && grow(self) != 0)
        return -1;
    insert_slot(self->slots, self->mask, key_of(self, obj), obj);
    self->size++;
    return 0;
}

int rc_table_remove(rc_table_t *self, void *obj)
{
    size_t i = home(key_of(self, obj)) & self->mask;
    while (self->slots[i] != obj) {
        if (!self->slots[i])
            return -1;
        i = (i + 1) & self->mask;
    }
    /* Backward-shift deletion: move later members of the probe chain into
     * the hole when their home position allows it. */
    size_t hole = i;
    for (size_t j = (i + 1) & self->mask; self->slots[j]; j = (j + 1) & self->mask) {
        size_t h = home(key_of(self, self->slots[j])) & self->mask;
        /* The entry at j may move to hole if hole lies cyclically in [h, j). */
        if (((j - h) & self->mask) >= ((j - hole) & self->mask)) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole] = NULL;
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
            all[(*count)++] = self->slots[i];
    return all;
}

size_t rc_table_bytes(rc_table_t *self)
{
    return (self->mask + 1) * sizeof(void *);
}
