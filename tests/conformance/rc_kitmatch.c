/* rc_kitmatch: variables, request expansion and partial matching of
 * replies for the conformance kit's C runner. The Python runner
 * (client/python/tests/test_conformance.py) does the same; the two must
 * agree on every rule (tests/conformance/README.md). */
#include "rc_kitmatch.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const rc_kitmatch_var_t *var_find(const rc_kitmatch_vars_t *vars, const char *name)
{
    for (size_t i = 0; i < vars->n; i++)
        if (strcmp(vars->vars[i].name, name) == 0)
            return &vars->vars[i];
    return NULL;
}

void rc_kitmatch_vars_clear(rc_kitmatch_vars_t *vars)
{
    for (size_t i = 0; i < vars->n; i++)
        rc_jdoc_destroy(&vars->vars[i].value);
    vars->n = 0;
}

void rc_kitmatch_release(rc_kitmatch_t *m)
{
    for (size_t i = 0; i < m->n_staged; i++)
        rc_jdoc_destroy(&m->staged[i].value);
    m->n_staged = 0;
}

int rc_kitmatch_commit(rc_kitmatch_vars_t *vars, rc_kitmatch_t *m, char *err, size_t errlen)
{
    for (size_t i = 0; i < m->n_staged; i++) {
        rc_kitmatch_var_t *v = (rc_kitmatch_var_t *) var_find(vars, m->staged[i].name);
        if (!v) {
            if (vars->n == RC_KITMATCH_VARS) {
                snprintf(err, errlen, "more than %d variables", RC_KITMATCH_VARS);
                rc_kitmatch_release(m);
                return -1;
            }
            v = &vars->vars[vars->n++];
            snprintf(v->name, sizeof v->name, "%s", m->staged[i].name);
        }
        rc_jdoc_destroy(&v->value);
        v->value = m->staged[i].value;
        m->staged[i].value = NULL;
    }
    m->n_staged = 0;
    return 0;
}

/* ------------------------------------------------------------ requests */

static rc_jdoc_t *expand_failed(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rc_jdoc_t *expand_failed(char *err, size_t errlen, const char *fmt, ...)
{
    if (err[0])
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return NULL;
}

/* A variable's value as request JSON: a captured bytes value goes back as
 * base64 text, protobuf's JSON form of bytes; upper: its text in upper
 * case (for ref_ids). */
static rc_jdoc_t *var_value(const rc_kitmatch_var_t *var, bool upper, char *err, size_t errlen)
{
    if (!var->value->bytes && !upper)
        return rc_jdoc_copy(var->value);
    if (var->value->type != RC_JDOC_STRING)
        return expand_failed(err, errlen, "variable \"%s\" is not text", var->name);
    char *text = rc_jdoc_print(var->value, 0);
    rc_jdoc_t *r = text ? rc_jdoc_string(text + 1, strlen(text) - 2, false) : NULL;
    free(text);
    for (size_t i = 0; r && upper && i < r->len; i++)
        r->text[i] = (char) toupper((unsigned char) r->text[i]);
    return r;
}

rc_jdoc_t *rc_kitmatch_expand(const rc_kitmatch_vars_t *vars, const rc_jdoc_t *v, char *err, size_t errlen)
{
    if (v->type == RC_JDOC_STRING && v->text[0] == '$') {
        const char *t = v->text + 1;
        if (*t == '$')
            return rc_jdoc_string(t, v->len - 1, false);
        bool upper = strncmp(t, "upper:", 6) == 0;
        const rc_kitmatch_var_t *var = var_find(vars, upper ? t + 6 : t);
        if (!var)
            return expand_failed(err, errlen, "no variable \"%s\" set before this step", upper ? t + 6 : t);
        return var_value(var, upper, err, errlen);
    }
    if (v->type != RC_JDOC_ARRAY && v->type != RC_JDOC_OBJECT)
        return rc_jdoc_copy(v);
    rc_jdoc_t *out = rc_jdoc_new(v->type);
    for (size_t i = 0; out && i < v->n; i++) {
        const rc_jdoc_t *item = v->items[i];
        uint64_t times = 1;
        bool neg = false;
        if (v->type == RC_JDOC_ARRAY && rc_jdoc_get(item, "$repeat")) {
            if (rc_jdoc_integer(rc_jdoc_get(item, "$repeat"), &neg, &times) != 0 || neg ||
                !(item = rc_jdoc_get(item, "item"))) {
                rc_jdoc_destroy(&out);
                return expand_failed(err, errlen, "{\"$repeat\": N, \"item\": X} needs a count and an item");
            }
        }
        for (uint64_t k = 0; out && k < times; k++) {
            rc_jdoc_t *x = rc_kitmatch_expand(vars, item, err, errlen);
            int rc = !x                          ? -1
                     : v->type == RC_JDOC_OBJECT ? rc_jdoc_set(out, v->keys[i], x)
                                                 : rc_jdoc_push(out, x);
            if (rc != 0)
                rc_jdoc_destroy(&out);
        }
    }
    return out;
}

/* ------------------------------------------------------------ matching */

static bool is_default(const rc_jdoc_t *v)
{
    bool neg;
    uint64_t mag;
    if (!v || v->type == RC_JDOC_NULL)
        return true;
    switch (v->type) {
    case RC_JDOC_STRING:
        return v->len == 0;
    case RC_JDOC_NUMBER:
        return rc_jdoc_integer(v, &neg, &mag) == 0 && mag == 0;
    case RC_JDOC_BOOL:
        return !v->b;
    default:
        return v->n == 0;
    }
}

/* Scalars equal as protobuf's JSON means them: numbers by value (also
 * against a decimal string, as 64-bit integers are written), bytes against
 * base64 text, else exactly. */
static bool scalar_equal(const rc_jdoc_t *want, const rc_jdoc_t *got)
{
    bool n1, n2;
    uint64_t m1, m2;
    if (want->type == RC_JDOC_NUMBER || got->type == RC_JDOC_NUMBER)
        return rc_jdoc_integer(want, &n1, &m1) == 0 && rc_jdoc_integer(got, &n2, &m2) == 0 && n1 == n2 &&
               m1 == m2;
    if (want->type != got->type)
        return false;
    if (want->type == RC_JDOC_BOOL)
        return want->b == got->b;
    if (want->type != RC_JDOC_STRING)
        return false;
    if (want->bytes == got->bytes)
        return want->len == got->len && memcmp(want->text, got->text, want->len) == 0;
    const rc_jdoc_t *text = want->bytes ? got : want, *raw = want->bytes ? want : got;
    uint8_t *dec;
    size_t len;
    if (rc_base64_decode(text->text, text->len, &dec, &len) != 0)
        return false;
    bool eq = len == raw->len && memcmp(dec, raw->text, len) == 0;
    free(dec);
    return eq;
}

/* Records why a match failed; returns false. what: a description of the
 * expected value, else want is printed. */
static bool mismatch(rc_kitmatch_t *m, const char *path, const rc_jdoc_t *want, const rc_jdoc_t *got,
                     const char *what)
{
    char *w = want ? rc_jdoc_print(want, 200) : NULL, *g = got ? rc_jdoc_print(got, 200) : NULL;
    snprintf(m->why, sizeof m->why, "at %s: expected %s, got %s", path[0] ? path : "(reply)",
             what ? what : (w ? w : "?"), got ? (g ? g : "?") : "nothing (field not set)");
    free(w);
    free(g);
    return false;
}

static bool match_at(const rc_kitmatch_vars_t *vars, rc_kitmatch_t *m, const rc_jdoc_t *want,
                     const rc_jdoc_t *got, const char *path);

/* A "$..." string in a pattern: a matcher, or a variable's value. */
static bool match_special(const rc_kitmatch_vars_t *vars, rc_kitmatch_t *m, const rc_jdoc_t *want,
                          const rc_jdoc_t *got, const char *path)
{
    const char *t = want->text + 1;
    char what[200];
    if (*t == '$') { /* "$$x": the literal text "$x" */
        rc_jdoc_t lit = {.type = RC_JDOC_STRING, .text = (char *) t, .len = want->len - 1};
        return got && scalar_equal(&lit, got) ? true : mismatch(m, path, &lit, got, NULL);
    }
    if (strcmp(t, "any") == 0 || strncmp(t, "set:", 4) == 0) {
        if (is_default(got))
            return mismatch(m, path, NULL, got, "any value but the default");
        if (*t == 'a')
            return true;
        if (m->n_staged == RC_KITMATCH_STAGED) {
            snprintf(m->why, sizeof m->why, "at %s: more than %d captures in one reply", path,
                     RC_KITMATCH_STAGED);
            return false;
        }
        rc_kitmatch_var_t *v = &m->staged[m->n_staged];
        snprintf(v->name, sizeof v->name, "%s", t + 4);
        if (!(v->value = rc_jdoc_copy(got)))
            return mismatch(m, path, NULL, got, "(out of memory)");
        m->n_staged++;
        return true;
    }
    if (strncmp(t, "len:", 4) == 0) {
        long long n = atoll(t + 4);
        snprintf(what, sizeof what, "%lld bytes", n);
        bool ok = got && got->type == RC_JDOC_STRING && (long long) got->len == n;
        return ok ? true : mismatch(m, path, NULL, got, what);
    }
    if (strncmp(t, "contains:", 9) == 0) {
        snprintf(what, sizeof what, "text containing \"%.150s\"", t + 9);
        bool ok = got && got->type == RC_JDOC_STRING && !got->bytes && strstr(got->text, t + 9);
        return ok ? true : mismatch(m, path, NULL, got, what);
    }
    const rc_kitmatch_var_t *v = var_find(vars, t);
    if (!v) {
        snprintf(m->why, sizeof m->why, "at %s: \"%s\" is neither a matcher nor a variable set before", path,
                 want->text);
        return false;
    }
    if (v->value->type == RC_JDOC_OBJECT || v->value->type == RC_JDOC_ARRAY)
        return match_at(vars, m, v->value, got, path);
    return got && scalar_equal(v->value, got) ? true : mismatch(m, path, v->value, got, NULL);
}

static bool match_at(const rc_kitmatch_vars_t *vars, rc_kitmatch_t *m, const rc_jdoc_t *want,
                     const rc_jdoc_t *got, const char *path)
{
    char sub[512];
    switch (want->type) {
    case RC_JDOC_NULL:
        return is_default(got) ? true : mismatch(m, path, NULL, got, "the default (not set)");
    case RC_JDOC_OBJECT:
        if (!got || got->type != RC_JDOC_OBJECT)
            return mismatch(m, path, want, got, NULL);
        for (size_t i = 0; i < want->n; i++) {
            snprintf(sub, sizeof sub, "%.400s.%.60s", path, want->keys[i]);
            if (!match_at(vars, m, want->items[i], rc_jdoc_get(got, want->keys[i]), sub))
                return false;
        }
        return true;
    case RC_JDOC_ARRAY:
        if (!got || got->type != RC_JDOC_ARRAY || got->n != want->n)
            return mismatch(m, path, want, got, NULL);
        for (size_t i = 0; i < want->n; i++) {
            snprintf(sub, sizeof sub, "%.400s[%zu]", path, i);
            if (!match_at(vars, m, want->items[i], got->items[i], sub))
                return false;
        }
        return true;
    case RC_JDOC_STRING:
        if (want->text[0] == '$' && !want->bytes)
            return match_special(vars, m, want, got, path);
        /* fall through */
    default:
        return got && scalar_equal(want, got) ? true : mismatch(m, path, want, got, NULL);
    }
}

bool rc_kitmatch_match(const rc_kitmatch_vars_t *vars, rc_kitmatch_t *m, const rc_jdoc_t *want,
                       const rc_jdoc_t *got)
{
    return match_at(vars, m, want, got, "");
}
