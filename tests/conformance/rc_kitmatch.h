/* rc_kitmatch: the variables of a conformance case and the two things done
 * with them (tests/conformance/README.md): putting them into a request
 * ("$name", "$upper:name", {"$repeat": N, "item": X}) and matching a reply
 * against a partial pattern whose "$set:name" strings capture them. */
#ifndef RC_KITMATCH_H
#define RC_KITMATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "rc_jdoc.h"

#define RC_KITMATCH_VARS   64
#define RC_KITMATCH_STAGED 16

typedef struct {
    char name[64];
    rc_jdoc_t *value;
} rc_kitmatch_var_t;

/* A case's variables (zero-initialise; rc_kitmatch_vars_clear frees). */
typedef struct {
    rc_kitmatch_var_t vars[RC_KITMATCH_VARS];
    size_t n;
} rc_kitmatch_vars_t;

/* One match: what it captured (kept until commit), or why it failed. */
typedef struct {
    rc_kitmatch_var_t staged[RC_KITMATCH_STAGED];
    size_t n_staged;
    char why[1024];
} rc_kitmatch_t;

/* A copy of v with the variables put in; NULL with the reason in err. */
rc_jdoc_t *rc_kitmatch_expand(const rc_kitmatch_vars_t *vars, const rc_jdoc_t *v, char *err, size_t errlen);

/* Whether got matches the pattern want: only the fields want names, its
 * "$..." matchers, null for "not set or the default". On a mismatch m->why
 * says where and what; either way release m (or commit it). */
bool rc_kitmatch_match(const rc_kitmatch_vars_t *vars, rc_kitmatch_t *m, const rc_jdoc_t *want,
                       const rc_jdoc_t *got);

/* Moves what m captured into vars (a name set again is replaced). 0, or -1
 * with the reason in err if there is no room. */
int rc_kitmatch_commit(rc_kitmatch_vars_t *vars, rc_kitmatch_t *m, char *err, size_t errlen);

/* Frees what m captured and did not commit. */
void rc_kitmatch_release(rc_kitmatch_t *m);

/* Frees every variable. */
void rc_kitmatch_vars_clear(rc_kitmatch_vars_t *vars);

#endif
