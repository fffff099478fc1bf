/* rc_journal_int: what the journal's two files share — rc_journal.c (the
 * loop's side: marking, writing groups, holding replies) and rc_recover.c
 * (rebuilding the core from the store at start). */
#ifndef RC_JOURNAL_INT_H
#define RC_JOURNAL_INT_H

#include "rc_buf.h"
#include "rc_core.h"
#include "rc_journal.h"
#include "rc_jrecord.h"
#include "rc_store.h"

/* jflags */
enum {
    J_DIRTY = 1u << 0,   /* marked since the last group */
    J_WRITTEN = 1u << 1, /* a task's record went into a group: jgroup, while the record is full */
    J_DURABLE = 1u << 2, /* a task's record is known to be on disk */
};

/* The key of the broker's secret (cache keys and owner ids hash with it,
 * so they must stay the same across restarts). */
#define RC_JKEY_SECRET "Ksecret"

typedef struct {
    uint64_t seq; /* the group the replies before `end` wait for */
    size_t end;   /* offset in held */
} rc_jmark_t;

struct rc_journal {
    rc_store_t *store;
    rc_buf_t dirty; /* marked records: a kind byte and a ref_id each */
    rc_buf_t blob;  /* a record being encoded */
    /* Held replies, oldest first: [rid_len][rid][envelope][batched][len:4][body]
     * from held_head; marks say which group each run waits for. */
    rc_buf_t held;
    size_t held_head, unmarked; /* unmarked: where the replies of this pass begin */
    uint64_t held_n;
    rc_jmark_t *marks;
    size_t n_marks, marks_cap;
    uint64_t durable;    /* the highest group known to be on disk */
    uint64_t last_group; /* the last group ended: the one being built is the next */
    bool stuck;          /* a write was refused: the marked records wait for the next pass */
    char why[200];       /* why facts are refused now */
    char error[200];     /* Stats' store_error, valid until the next rc_journal_stats */
};

/* Encodes task t (or extra handle h) into j->blob; 0 or -1. */
int rc_journal_encode_task(rc_core_t *core, rc_journal_t *j, const rc_task_t *t);
int rc_journal_encode_handle(rc_core_t *core, rc_journal_t *j, const rc_handle_t *h);

/* Rebuilds the core from the store (rc_recover.c). 0, or -1 with err. */
int rc_journal_recover(rc_core_t *core, rc_journal_t *j, char *err, size_t errlen);

#endif
