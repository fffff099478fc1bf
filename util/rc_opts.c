/* rc_opts: the table-driven option parser (see rc_opts.h). The file, the
 * environment and the command line are applied in that order, each over
 * the one before, which gives the documented precedence. */
#include "rc_opts.h"
#include "rc_buf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int s_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return RC_OPTS_USAGE;
}

const char *rc_opts_env_name(const rc_opt_t *opt, char *buf, size_t len)
{
    size_t n = (size_t) snprintf(buf, len, "REFCACHE_%s", opt->name ? opt->name : "");
    for (size_t i = 9; i < n && i < len; i++)
        buf[i] = buf[i] == '-' ? '_' : (char) toupper((unsigned char) buf[i]);
    return buf;
}

static int s_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(text, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

int rc_opts_set(const rc_opt_t *opt, const char *text, char *err, size_t errlen)
{
    switch (opt->type) {
    case RC_OPT_STR:
        *(const char **) opt->target = text;
        return 0;
    case RC_OPT_FLAG: {
        bool v;
        if (s_bool(text, &v) != 0) {
            s_fail(err, errlen, "needs true or false, not '%s'", text);
            return -1;
        }
        *(bool *) opt->target = v;
        return 0;
    }
    case RC_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (errno || end == text || *end || !(v > 0) || !isfinite(v)) {
            s_fail(err, errlen, "needs a positive number, not '%s'", text);
            return -1;
        }
        *(double *) opt->target = v;
        return 0;
    }
    case RC_OPT_UINT: {
        bool digits = *text != '\0';
        for (const char *p = text; *p; p++)
            digits = digits && *p >= '0' && *p <= '9';
        char *end;
        errno = 0;
        unsigned long long v = digits ? strtoull(text, &end, 10) : 0;
        if (!digits || errno || v < opt->min || v > opt->max) {
            s_fail(err, errlen, "needs a number from %llu to %llu, not '%s'", (unsigned long long) opt->min,
                   (unsigned long long) opt->max, text);
            return -1;
        }
        if (opt->size == sizeof(uint32_t))
            *(uint32_t *) opt->target = (uint32_t) v;
        else
            *(uint64_t *) opt->target = (uint64_t) v;
        return 0;
    }
    case RC_OPT_SECTION:
        break;
    }
    s_fail(err, errlen, "is not an option");
    return -1;
}

/* The option named name (length len) that applies in scope, or NULL; *other
 * tells whether one of that name exists in another scope. */
static const rc_opt_t *s_find_long(const rc_opts_spec_t *spec, const char *name, size_t len, unsigned scope,
                                   bool *other)
{
    if (other)
        *other = false;
    for (size_t i = 0; i < spec->count; i++) {
        const rc_opt_t *o = &spec->opts[i];
        if (o->type == RC_OPT_SECTION || strlen(o->name) != len || strncmp(o->name, name, len) != 0)
            continue;
        if (o->scope == 0 || (o->scope & scope))
            return o;
        if (other)
            *other = true;
    }
    return NULL;
}

static const rc_opt_t *s_find_short(const rc_opts_spec_t *spec, char c, unsigned scope)
{
    for (size_t i = 0; i < spec->count; i++) {
        const rc_opt_t *o = &spec->opts[i];
        if (o->type != RC_OPT_SECTION && o->short_name == c && (o->scope == 0 || (o->scope & scope)))
            return o;
    }
    return NULL;
}

/* Keeps a copy of text for as long as the spec (file values). */
static const char *s_keep(rc_opts_spec_t *spec, const char *text, size_t len)
{
    if (rc_buf_grow_array(&spec->kept_, &spec->kept_cap_, spec->kept_n_ + 1, sizeof *spec->kept_) != 0)
        return NULL;
    char *copy = strndup(text, len);
    if (copy)
        spec->kept_[spec->kept_n_++] = copy;
    return copy;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char) *s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char) s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int s_load_file(rc_opts_spec_t *spec, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return s_fail(err, errlen, "cannot read the configuration file %s: %s", path, strerror(errno));
    char line[4096];
    int rc = 0;
    for (unsigned no = 1; rc == 0 && fgets(line, sizeof line, f); no++) {
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            rc = s_fail(err, errlen, "%s:%u: line longer than %zu characters", path, no, sizeof line - 2);
            break;
        }
        char *s = s_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = s_fail(err, errlen, "%s:%u: expected 'key = value', not '%s'", path, no, s);
            break;
        }
        *eq = '\0';
        char *key = s_trim(s), *value = s_trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        const rc_opt_t *o = s_find_long(spec, key, strlen(key), spec->scope, NULL);
        if (!o || strcmp(key, "config") == 0 || strcmp(key, "help") == 0 || strcmp(key, "version") == 0) {
            rc = s_fail(err, errlen, "%s:%u: unknown key '%s' (the keys are the long option names)", path, no,
                        key);
            break;
        }
        const char *text = o->type == RC_OPT_STR ? s_keep(spec, value, strlen(value)) : value;
        if (!text) {
            rc = s_fail(err, errlen, "out of memory");
            break;
        }
        char why[256];
        if (rc_opts_set(o, text, why, sizeof why) != 0)
            rc = s_fail(err, errlen, "%s:%u: %s %s", path, no, key, why);
    }
    if (rc == 0 && ferror(f))
        rc = s_fail(err, errlen, "cannot read the configuration file %s: %s", path, strerror(errno));
    fclose(f);
    return rc;
}

static int s_load_env(rc_opts_spec_t *spec, char *err, size_t errlen)
{
    for (size_t i = 0; i < spec->count; i++) {
        const rc_opt_t *o = &spec->opts[i];
        if (o->type == RC_OPT_SECTION || (!o->env && !o->old_env))
            continue;
        char name[96];
        rc_opts_env_name(o, name, sizeof name);
        const char *value = o->env ? getenv(name) : NULL, *from = name;
        if ((!value || !*value) && o->old_env && (value = getenv(o->old_env)) && *value) {
            from = o->old_env;
            fprintf(stderr, "%s: %s is deprecated, use %s\n", spec->program, o->old_env, name);
        }
        if (!value || !*value)
            continue;
        char why[256];
        if (rc_opts_set(o, value, why, sizeof why) != 0)
            return s_fail(err, errlen, "%s %s", from, why);
    }
    return 0;
}

/* Does the option take a value on the command line? */
static bool s_takes_value(const rc_opt_t *o)
{
    return o->type != RC_OPT_FLAG;
}

/* Finds --config FILE before anything is applied (the file comes first). */
static int s_find_config(rc_opts_spec_t *spec, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return s_fail(err, errlen, "--config needs a value");
            spec->config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            spec->config_path = a + 9;
        } else if (a[0] == '-' && a[1] == '-' && !strchr(a, '=')) {
            const rc_opt_t *o = s_find_long(spec, a + 2, strlen(a + 2), spec->scope, NULL);
            if (o && s_takes_value(o))
                i++;
        } else if (a[0] == '-' && a[1] && a[1] != '-' && !a[2]) {
            const rc_opt_t *o = s_find_short(spec, a[1], spec->scope);
            if (o && s_takes_value(o))
                i++;
        }
    }
    return 0;
}

static int s_apply(const rc_opt_t *o, const char *flag, const char *value, char *err, size_t errlen)
{
    char why[256];
    if (rc_opts_set(o, value, why, sizeof why) != 0)
        return s_fail(err, errlen, "%s %s", flag, why);
    return 0;
}

static int s_long(rc_opts_spec_t *spec, int argc, char **argv, int *i, unsigned scope, char *err,
                  size_t errlen)
{
    const char *a = argv[*i], *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t) (eq - name) : strlen(name);
    if (spec->config && len == 6 && strncmp(name, "config", 6) == 0) {
        if (!eq)
            ++*i; /* read already, by s_find_config */
        return 0;
    }
    bool other;
    const rc_opt_t *o = s_find_long(spec, name, len, scope, &other);
    if (!o)
        return s_fail(err, errlen, other ? "option --%.*s does not apply here" : "unknown option --%.*s",
                      (int) len, name);
    char flag[128];
    snprintf(flag, sizeof flag, "--%s", o->name);
    if (!s_takes_value(o)) {
        if (eq)
            return s_apply(o, flag, eq + 1, err, errlen);
        *(bool *) o->target = true;
        return 0;
    }
    if (eq)
        return s_apply(o, flag, eq + 1, err, errlen);
    if (*i + 1 >= argc)
        return s_fail(err, errlen, "%s needs a value", flag);
    return s_apply(o, flag, argv[++*i], err, errlen);
}

static int s_short(rc_opts_spec_t *spec, int argc, char **argv, int *i, unsigned scope, char *err,
                   size_t errlen)
{
    const char *a = argv[*i];
    for (size_t k = 1; a[k]; k++) {
        const rc_opt_t *o = s_find_short(spec, a[k], scope);
        if (!o)
            return s_fail(err, errlen, "unknown option -%c", a[k]);
        char flag[8];
        snprintf(flag, sizeof flag, "-%c", a[k]);
        if (!s_takes_value(o)) {
            *(bool *) o->target = true;
            continue;
        }
        if (a[k + 1])
            return s_apply(o, flag, a + k + 1, err, errlen);
        if (*i + 1 >= argc)
            return s_fail(err, errlen, "%s needs a value", flag);
        return s_apply(o, flag, argv[++*i], err, errlen);
    }
    return 0;
}

int rc_opts_parse(rc_opts_spec_t *spec, int argc, char **argv, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    spec->config_path = NULL;
    int rc = spec->config ? s_find_config(spec, argc, argv, err, errlen) : 0;
    if (rc == 0 && spec->config_path)
        rc = s_load_file(spec, spec->config_path, err, errlen);
    if (rc == 0)
        rc = s_load_env(spec, err, errlen);
    unsigned scope = spec->scope;
    bool operands_only = false;
    for (int i = 1; rc == 0 && i < argc; i++) {
        const char *a = argv[i];
        if (!operands_only && strcmp(a, "--") == 0) {
            operands_only = true;
        } else if (!operands_only && a[0] == '-' && a[1] == '-') {
            rc = s_long(spec, argc, argv, &i, scope, err, errlen);
        } else if (!operands_only && a[0] == '-' && a[1]) {
            rc = s_short(spec, argc, argv, &i, scope, err, errlen);
        } else if (spec->operand) {
            rc = spec->operand(spec->ctx, a, &scope, err, errlen) ? RC_OPTS_USAGE : 0;
        } else {
            rc = s_fail(err, errlen, "unexpected argument '%s'", a);
        }
    }
    return rc;
}

void rc_opts_free(rc_opts_spec_t *spec)
{
    if (!spec)
        return;
    for (size_t i = 0; i < spec->kept_n_; i++)
        free(spec->kept_[i]);
    free(spec->kept_);
    spec->kept_ = NULL;
    spec->kept_n_ = spec->kept_cap_ = 0;
}

void rc_opts_help(const rc_opts_spec_t *spec, unsigned scope, FILE *out)
{
    for (size_t i = 0; i < spec->count; i++) {
        const rc_opt_t *o = &spec->opts[i];
        if (o->hidden || (scope ? !(o->scope & scope) : o->scope != 0))
            continue;
        if (o->type == RC_OPT_SECTION) {
            fprintf(out, "%s\n", o->help);
            continue;
        }
        char left[96];
        int n = snprintf(left, sizeof left, "  %c%c%c --%s%s%s", o->short_name ? '-' : ' ',
                         o->short_name ? o->short_name : ' ', o->short_name ? ',' : ' ', o->name,
                         o->arg ? " " : "", o->arg ? o->arg : "");
        const char *help = o->help ? o->help : "";
        char env[96] = "";
        if (o->env && !spec->env_rule) {
            char name[80];
            snprintf(env, sizeof env, " [%s]", rc_opts_env_name(o, name, sizeof name));
        }
        /* The help text, one line at a time, aligned after the flag; the
         * variable goes at the end of the last line. */
        const char *line = help;
        bool first = true;
        do {
            const char *nl = strchr(line, '\n');
            int len = nl ? (int) (nl - line) : (int) strlen(line);
            if (first && n >= 26)
                fprintf(out, "%s\n%-26s", left, "");
            else
                fprintf(out, "%-26s", first ? left : "");
            fprintf(out, "%.*s%s\n", len, line, nl ? "" : env);
            first = false;
            line = nl ? nl + 1 : NULL;
        } while (line);
    }
}
