/* rc_list: an intrusive circular doubly linked list. Embed an rc_list_t in
 * an object; insert and remove are O(1) and allocate nothing. */
#ifndef RC_LIST_H
#define RC_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rc_list {
    struct rc_list *prev, *next;
} rc_list_t;

#define rc_container_of(ptr, type, member) ((type *) ((char *) (ptr) -offsetof(type, member)))

static inline void rc_list_init(rc_list_t *head)
{
    head->prev = head->next = head;
}

static inline bool rc_list_empty(const rc_list_t *head)
{
    return head->next == head;
}

/* True if node is linked into some list (nodes are kept self-linked when out). */
static inline bool rc_list_linked(const rc_list_t *node)
{
    return node->next && node->next != node;
}

static inline void rc_list_push_back(rc_list_t *head, rc_list_t *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void rc_list_remove(rc_list_t *node)
{
    if (!rc_list_linked(node))
        return;
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = node;
}

static inline rc_list_t *rc_list_front(rc_list_t *head)
{
    return rc_list_empty(head) ? NULL : head->next;
}

#endif
