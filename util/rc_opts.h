/* rc_opts: the one option parser of refcache's four programs. Each program
 * describes its options in one table; from it come the command-line flags,
 * the environment variables, the configuration file's keys and the --help
 * text, so they cannot drift apart.
 *
 * Names: the long flag --NAME, the config-file key NAME, and (for options
 * marked .env) the environment variable REFCACHE_NAME, upper case with '-'
 * as '_' (--workers-endpoint: key workers-endpoint, REFCACHE_WORKERS_ENDPOINT).
 * An option may also list an older variable name (.old_env) that still works
 * with a one-line deprecation note on stderr.
 *
 * Precedence: command line > environment > configuration file > the
 * default (whatever the target held before parsing).
 *
 * The configuration file (--config FILE, for programs that accept it) has one
 * `key = value` per line; blank lines and lines starting with '#' are
 * ignored; the value may be wrapped in double quotes; a flag option takes
 * true/false, yes/no, on/off or 1/0. An unknown key or a bad value is an
 * error naming the file and the line. */
#ifndef RC_OPTS_H
#define RC_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The exit status of a usage error, in every program. */
#define RC_OPTS_USAGE 2

typedef enum {
    RC_OPT_SECTION = 0, /* not an option: a heading in --help (help is its text) */
    RC_OPT_STR,         /* const char *: points into argv, the environment or kept text */
    RC_OPT_UINT,        /* an unsigned integer of .size bytes (4 or 8; int works as 4) */
    RC_OPT_DOUBLE,      /* double, > 0 */
    RC_OPT_FLAG         /* bool, set by the flag alone (no value on the command line) */
} rc_opt_type_t;

typedef struct {
    rc_opt_type_t type;
    const char *name; /* long flag without "--"; the config-file key */
    char short_name;  /* -X, or 0 */
    void *target;
    size_t size;         /* RC_OPT_UINT: sizeof *target */
    uint64_t min, max;   /* RC_OPT_UINT: the accepted range */
    bool env;            /* also read REFCACHE_<NAME> */
    const char *old_env; /* a former variable name, still read (deprecated), or NULL */
    const char *arg;     /* the value's name in --help ("EP", "N"); NULL for a flag */
    const char *help;    /* one line, or several separated by '\n' */
    /* Where the option applies, for programs with subcommands: 0 everywhere,
     * else a mask matched against the parser's current scope (see
     * rc_opts_spec_t.operand). Two entries may share a name in different
     * scopes. */
    unsigned scope;
    bool hidden; /* accepted but left out of --help (an alias kept for old scripts) */
} rc_opt_t;

/* Table entries. */
#define RC_OPT_SECTION_(text)                                                                                \
    {                                                                                                        \
        .type = RC_OPT_SECTION, .help = (text)                                                               \
    }
#define RC_OPT_STR_(nm, sh, field, argname, text)                                                            \
    {                                                                                                        \
        .type = RC_OPT_STR, .name = (nm), .short_name = (sh), .target = &(field), .arg = (argname),          \
        .help = (text)                                                                                       \
    }
#define RC_OPT_UINT_(nm, sh, field, lo, hi, argname, text)                                                   \
    {                                                                                                        \
        .type = RC_OPT_UINT, .name = (nm), .short_name = (sh), .target = &(field), .size = sizeof(field),    \
        .min = (lo), .max = (hi), .arg = (argname), .help = (text)                                           \
    }
#define RC_OPT_DOUBLE_(nm, sh, field, argname, text)                                                         \
    {                                                                                                        \
        .type = RC_OPT_DOUBLE, .name = (nm), .short_name = (sh), .target = &(field), .arg = (argname),       \
        .help = (text)                                                                                       \
    }
#define RC_OPT_FLAG_(nm, sh, field, text)                                                                    \
    {                                                                                                        \
        .type = RC_OPT_FLAG, .name = (nm), .short_name = (sh), .target = &(field), .help = (text)            \
    }

typedef struct {
    const char *program; /* for messages: "refcache-broker" */
    rc_opt_t *opts;
    size_t count;
    /* Accept --config FILE (read before the environment and the command
     * line; the path is kept in config_path). */
    bool config;
    const char *config_path;
    /* Called with each argument that is not an option, in order (after "--"
     * too); returns 0, or non-zero with a message in err. It may change
     * *scope (a subcommand selects its options). NULL: an operand is an
     * error. */
    int (*operand)(void *ctx, const char *arg, unsigned *scope, char *err, size_t errlen);
    void *ctx;
    unsigned scope; /* the scope before the first operand */
    /* --help leaves out the [REFCACHE_...] of each option (every option has
     * one and the program's usage text states the rule instead). */
    bool env_rule;
    /* Internal: text kept for string options read from the file. */
    char **kept_;
    size_t kept_n_, kept_cap_;
} rc_opts_spec_t;

/* Fills every target from the file, the environment and the command line
 * (argv[0] is the program). 0, or RC_OPTS_USAGE with a one-line message in
 * err (naming the flag, variable, or file and line). Deprecation notes go to
 * stderr. Call rc_opts_free afterwards, also after an error. */
int rc_opts_parse(rc_opts_spec_t *spec, int argc, char **argv, char *err, size_t errlen);

/* Frees the text kept for string options (their targets then dangle). */
void rc_opts_free(rc_opts_spec_t *spec);

/* Writes the options of scope (0: those for every scope) as --help lines:
 * flags, value, help text and [REFCACHE_...] where an environment variable
 * is read. */
void rc_opts_help(const rc_opts_spec_t *spec, unsigned scope, FILE *out);

/* The environment variable of an option: REFCACHE_ + NAME in upper case with
 * '_' for '-', in buf; returns buf. */
const char *rc_opts_env_name(const rc_opt_t *opt, char *buf, size_t len);

/* Reads one value for opt from text (what --NAME, the variable or the file
 * gave); 0, or -1 with why in err. For tests and special callers. */
int rc_opts_set(const rc_opt_t *opt, const char *text, char *err, size_t errlen);

#endif
