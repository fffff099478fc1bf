/* refcache-broker: runs the broker (and, with --workers N, an in-process
 * pool of N worker threads) until SIGINT or SIGTERM, then stops gracefully
 * (running tasks finish up to --drain-timeout); SIGHUP reloads the CURVE
 * allow-lists. */
#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_broker.h"
#include "rc_http.h"
#include "rc_log.h"
#include "rc_opts.h"
#include "rc_store.h"

static rc_broker_config_t cfg;
static bool help, version;
static const char *log_level = "info", *log_format = "text";
static const char *http_addr;   /* --http HOST:PORT */
static const char *config_file; /* read by rc_opts itself; here for --help */
static const char *salvage_to;  /* --salvage-to: copy what is intact of --store there, and exit */

static rc_opt_t options[] = {
    RC_OPT_SECTION_("endpoints (use port * for an ephemeral port; the bound endpoints are printed):"),
    RC_OPT_STR_("clients", 0, cfg.clients_endpoint, "EP", "client endpoint (tcp://127.0.0.1:5570)"),
    RC_OPT_STR_("workers-endpoint", 0, cfg.workers_endpoint, "EP", "worker endpoint (tcp://127.0.0.1:5571)"),
    RC_OPT_STR_("control", 0, cfg.control_endpoint, "EP", "control endpoint (tcp://127.0.0.1:5572)"),
    RC_OPT_STR_("http", 0, http_addr, "HOST:PORT",
                "serve /metrics (Prometheus) and a status page at / over HTTP\n"
                "(loopback unless --insecure; PORT * picks a free one)"),
    RC_OPT_UINT_(
        "workers", 0, cfg.workers, 0, 1024, "N",
        "in-process worker threads (0; the embedded default of the\nREADME uses the number of cores)"),
    RC_OPT_UINT_("credit", 0, cfg.worker_credit, 0, 1024, "N", "tasks an in-process worker may hold (256)"),
    RC_OPT_UINT_("dispatch-window-us", 0, cfg.dispatch_window_us, 0, 60000000, "US",
                 "a busy worker is sent more tasks only while what it holds is\n"
                 "expected to take at most this long (1000; 0: never)"),
    RC_OPT_SECTION_("durable state:"),
    RC_OPT_STR_("store", 0, cfg.store_path, "PATH",
                "the broker's state on disk, recovered at start (default:\n"
                "$STATE_DIRECTORY/broker.db under systemd, else\n"
                "${XDG_STATE_HOME:-~/.local/state}/refcache/broker.db;\n"
                "'none': in memory only, lost at exit)"),
    RC_OPT_FLAG_("store-relaxed", 0, cfg.store_relaxed,
                 "replies do not wait for fsync: a crash of the machine (not\n"
                 "of the broker) may lose the last second (docs/store.md)"),
    RC_OPT_STR_("salvage-to", 0, salvage_to, "PATH",
                "do not serve: copy every intact record of the damaged --store\n"
                "into a new store at PATH, say what was kept and skipped, exit"),
    RC_OPT_SECTION_("network:"),
    RC_OPT_FLAG_("insecure", 0, cfg.insecure,
                 "allow binding a specific non-loopback address without CURVE\n"
                 "(never a wildcard such as 0.0.0.0)"),
    RC_OPT_SECTION_("security (CURVE on every TCP socket; see docs/security.md):"),
    RC_OPT_STR_("curve-secret", 0, cfg.curve_secret_file, "FILE",
                "the broker's certificate (from 'refcache keygen FILE')"),
    RC_OPT_STR_("clients-allowed", 0, cfg.clients_allowed_dir, "DIR",
                "public certificates of the clients allowed (needs --curve-secret)"),
    RC_OPT_STR_("workers-allowed", 0, cfg.workers_allowed_dir, "DIR",
                "public certificates of the workers allowed (needs --curve-secret)"),
    RC_OPT_STR_("admin-allowed", 0, cfg.admin_allowed_dir, "DIR",
                "public certificates of admin clients: they list and watch every\n"
                "task and see the workers (needs --curve-secret)"),
    RC_OPT_STR_("shared-namespaces", 0, cfg.shared_namespaces, "L",
                "comma-separated namespaces whose cache is shared across owners"),
    RC_OPT_SECTION_("limits and defaults:"),
    RC_OPT_UINT_("ttl", 0, cfg.default_ttl_s, 0, UINT32_MAX, "S",
                 "default TTL of finished tasks, seconds (600)"),
    RC_OPT_UINT_("max-ttl", 0, cfg.max_ttl_s, 0, UINT32_MAX, "S", "cap on a submit's ttl_s (86400)"),
    RC_OPT_UINT_("retries", 0, cfg.default_max_retries, 0, 100, "N", "default max_retries (0)"),
    RC_OPT_UINT_("inline-limit", 0, cfg.inline_limit, 1, 8u << 20, "BYTES",
                 "results up to this come inline (65536)"),
    RC_OPT_UINT_("max-page", 0, cfg.max_page, 1, 8u << 20, "BYTES", "largest Fetch page (1048576)"),
    RC_OPT_UINT_("cache-bytes", 0, cfg.cache_bytes, 0, UINT64_MAX, "BYTES",
                 "result bytes kept before LRU eviction (268435456)"),
    RC_OPT_UINT_("max-records", 0, cfg.max_records, 0, UINT64_MAX, "N", "task records kept (2000000)"),
    RC_OPT_UINT_("max-pending", 0, cfg.max_pending, 0, UINT64_MAX, "N",
                 "pending tasks before RESOURCE_EXHAUSTED (1000000)"),
    RC_OPT_UINT_("max-waiters", 0, cfg.max_waiters, 0, UINT64_MAX, "N", "held Submit/Wait replies (100000)"),
    RC_OPT_UINT_("max-wait-ms", 0, cfg.max_wait_ms, 0, UINT32_MAX, "MS",
                 "cap on Wait and async timeouts (300000)"),
    RC_OPT_UINT_("max-msg-bytes", 0, cfg.max_msg_bytes, 0, INT32_MAX, "BYTES",
                 "largest message any peer may send (16777216)"),
    RC_OPT_UINT_("heartbeat-ms", 0, cfg.heartbeat_ms, 1, 3600000, "MS",
                 "heartbeat interval to workers (1000)"),
    RC_OPT_UINT_("liveness", 0, cfg.liveness, 1, 1000, "N", "silent intervals before a worker is lost (5)"),
    RC_OPT_UINT_("retry-base-ms", 0, cfg.retry_base_ms, 0, 3600000, "MS",
                 "first retry back-off (100), doubling up to"),
    RC_OPT_UINT_("retry-max-ms", 0, cfg.retry_max_ms, 0, 3600000, "MS", "(10000)"),
    RC_OPT_UINT_("drain-timeout", 0, cfg.drain_timeout_ms, 0, 3600000, "MS",
                 "on SIGTERM, how long running tasks may finish before the broker\n"
                 "exits (5000); what is left is recovered at the next start"),
    RC_OPT_SECTION_("other:"),
    RC_OPT_STR_("config", 0, config_file, "FILE", "read options from FILE (see above)"),
    RC_OPT_STR_("log-level", 0, log_level, "LEVEL",
                "lowest level logged to stderr: debug, info, warn, error, off (info)"),
    RC_OPT_STR_("log-format", 0, log_format, "FMT", "text, or json: one object per line (text)"),
    RC_OPT_FLAG_("verbose", 'v', cfg.verbose, "the same as --log-level debug"),
    RC_OPT_FLAG_("help", 'h', help, "this help"),
    RC_OPT_FLAG_("version", 'V', version, "print the version"),
};

static rc_opts_spec_t spec = {.program = "refcache-broker",
                              .opts = options,
                              .count = sizeof options / sizeof options[0],
                              .config = true,
                              .env_rule = true};

static void usage(FILE *out)
{
    fprintf(out, "usage: refcache-broker [--config FILE] [options]\n"
                 "\n"
                 "Runs the refcache broker. With --workers N it also runs N worker threads in\n"
                 "this process (the embedded default: one command, a complete service).\n"
                 "\n"
                 "Every option --NAME can also come from the environment variable\n"
                 "REFCACHE_NAME (upper case, '_' for '-': --workers-endpoint is\n"
                 "REFCACHE_WORKERS_ENDPOINT), or from --config FILE: 'NAME = value' lines,\n"
                 "# comments. The command line wins over the environment, which wins over\n"
                 "the file.\n"
                 "\n");
    rc_opts_help(&spec, 0, out);
}

/* --salvage-to: what is intact of the store at from, into a new store at
 * to (the damaged file is not modified). 0, or 1 with why. */
static int s_salvage(const char *from, const char *to)
{
    if (!from) {
        fprintf(stderr, "refcache-broker: --salvage-to needs the damaged store's --store PATH\n");
        return 2;
    }
    char why[512];
    int code = rc_store_salvage(from, to, why, sizeof why);
    if (code != 0) {
        fprintf(stderr, "refcache-broker: cannot salvage %s into %s: %s\n", from, to, why);
        return 1;
    }
    printf("refcache-broker: %s\n", why);
    return 0;
}

/* The store's default path (see --help), its directory made; NULL with a
 * message when there is no place for it. */
static const char *s_default_store(char *path, size_t len, char *err, size_t errlen)
{
    const char *state = getenv("STATE_DIRECTORY"), *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char dir[PATH_MAX - 16];
    if (state && *state) {
        /* systemd may list several directories, separated by ':'. */
        snprintf(dir, sizeof dir, "%.*s", (int) strcspn(state, ":"), state);
    } else if (xdg && *xdg) {
        snprintf(dir, sizeof dir, "%s/refcache", xdg);
    } else if (home && *home) {
        snprintf(dir, sizeof dir, "%s/.local/state/refcache", home);
    } else {
        snprintf(err, errlen,
                 "no place for the store (no STATE_DIRECTORY, XDG_STATE_HOME or HOME): "
                 "give --store PATH, or --store none");
        return NULL;
    }
    if (zsys_dir_create("%s", dir) != 0) {
        snprintf(err, errlen, "cannot create %.200s for the store: %s (give --store PATH, or --store none)",
                 dir, strerror(errno));
        return NULL;
    }
    snprintf(path, len, "%s/broker.db", dir);
    return path;
}

/* A wildcard address, reachable from every network of the machine. */
static bool s_wildcard(const char *ep)
{
    const char *host = strstr(ep, "://");
    host = host ? host + 3 : ep;
    return strncmp(host, "*:", 2) == 0 || strncmp(host, "0.0.0.0:", 8) == 0 ||
           strncmp(host, "[::]:", 5) == 0 || strncmp(host, "::", 2) == 0;
}

static bool s_loopback(const char *ep)
{
    const char *host = strstr(ep, "://");
    if (!host || strncmp(ep, "tcp://", 6) != 0)
        return true; /* inproc, ipc: not on the network */
    host += 3;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 ||
           strncmp(host, "[::1]:", 6) == 0;
}

/* Combinations that would leave the broker open while looking secured. */
static int s_check_security(void)
{
    if ((cfg.clients_allowed_dir || cfg.workers_allowed_dir || cfg.admin_allowed_dir) &&
        !cfg.curve_secret_file) {
        fprintf(stderr, "refcache-broker: --clients-allowed, --workers-allowed and --admin-allowed need "
                        "--curve-secret: without CURVE no key is checked and anyone could connect\n");
        return 2;
    }
    if (!cfg.insecure || cfg.curve_secret_file)
        return 0;
    const char *eps[] = {cfg.clients_endpoint, cfg.workers_endpoint, cfg.control_endpoint};
    for (int i = 0; i < 3; i++) {
        if (s_wildcard(eps[i])) {
            fprintf(stderr,
                    "refcache-broker: refusing --insecure on the wildcard address %s: it would open the "
                    "broker, unencrypted and unauthenticated, on every network of this machine (bind a "
                    "specific interface address, or use --curve-secret)\n",
                    eps[i]);
            return 2;
        }
        if (!s_loopback(eps[i]))
            fprintf(stderr,
                    "refcache-broker: warning: --insecure: %s is open, unencrypted, to anyone who can "
                    "reach it\n",
                    eps[i]);
    }
    return 0;
}

/* Serves until SIGTERM or SIGINT (returned); SIGHUP reloads the CURVE
 * allow-lists. */
static int s_serve(rc_broker_t *broker, const sigset_t *sigs)
{
    for (;;) {
        int sig = 0;
        if (sigwait(sigs, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            return sig;
        char err[512];
        if (rc_broker_reload(broker, err, sizeof err) != 0)
            rc_log(RC_LOG_ERROR, "security", "SIGHUP: the allow-lists were not reloaded: %s", err);
    }
}

/* The graceful stop: no new task, the running ones finish up to
 * --drain-timeout (a second SIGTERM or SIGINT cuts it short), what is left
 * is recovered at the next start. */
static void s_drain(rc_broker_t *broker, const sigset_t *sigs, int sig)
{
    const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    rc_log(RC_LOG_INFO, "broker", "%s: draining: new tasks refused, running ones get up to %u ms", name,
           cfg.drain_timeout_ms);
    if (rc_broker_drain_start(broker, cfg.drain_timeout_ms) != 0)
        return;
    int processing = 0, pending = 0, done;
    static const struct timespec now = {0, 0};
    while ((done = rc_broker_drain_wait(broker, 100, &processing, &pending)) == 0) {
        int again = sigtimedwait(sigs, NULL, &now);
        if (again == SIGTERM || again == SIGINT) {
            rc_log(RC_LOG_WARN, "broker", "%s again: stopping without waiting for the running tasks",
                   again == SIGINT ? "SIGINT" : "SIGTERM");
            return;
        }
    }
    if (done > 0 && (processing || pending))
        rc_log(RC_LOG_INFO, "broker", "drained: %d task(s) still running, %d pending: %s", processing,
               pending, cfg.store_path ? "recovered at the next start" : "lost (no --store)");
}

int main(int argc, char **argv)
{
    rc_broker_config_defaults(&cfg);
    /* Every option but --help, --version and --config can come from
     * REFCACHE_<NAME>. */
    for (size_t i = 0; i < spec.count; i++)
        options[i].env = options[i].type != RC_OPT_SECTION && strcmp(options[i].name, "help") != 0 &&
                         strcmp(options[i].name, "version") != 0 && strcmp(options[i].name, "config") != 0;
    char err[512];
    int rc = rc_opts_parse(&spec, argc, argv, err, sizeof err);
    if (rc) {
        fprintf(stderr, "refcache-broker: %s (try --help)\n", err);
        rc_opts_free(&spec);
        return rc;
    }
    if (help || version) {
        if (help)
            usage(stdout);
        else
            printf("refcache-broker %s\n", RC_VERSION);
        rc_opts_free(&spec);
        return 0;
    }
    if ((rc = s_check_security()) != 0) {
        rc_opts_free(&spec);
        return rc;
    }
    int level = cfg.verbose ? RC_LOG_DEBUG : rc_log_level_parse(log_level);
    if (level < 0 || (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0)) {
        fprintf(stderr,
                "refcache-broker: --log-level takes debug, info, warn, error or off, and --log-format "
                "text or json (try --help)\n");
        rc_opts_free(&spec);
        return 2;
    }
    rc_log_setup("refcache-broker", (rc_log_level_t) level, strcmp(log_format, "json") == 0);
    char store[PATH_MAX];
    if (!cfg.store_path && !(cfg.store_path = s_default_store(store, sizeof store, err, sizeof err))) {
        fprintf(stderr, "refcache-broker: %s\n", err);
        rc_opts_free(&spec);
        return 1;
    }
    if (strcmp(cfg.store_path, "none") == 0)
        cfg.store_path = NULL;
    if (salvage_to) {
        rc = s_salvage(cfg.store_path, salvage_to);
        rc_opts_free(&spec);
        return rc;
    }

    /* Signals are taken by sigwait() in this thread only: block them before
     * any thread starts, so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    zsys_handler_set(NULL);

    rc_broker_t *broker = rc_broker_new(&cfg, err, sizeof err);
    if (!broker) {
        fprintf(stderr, "refcache-broker: %s\n", err);
        rc_opts_free(&spec);
        return 1;
    }
    rc_http_t *http = NULL;
    if (http_addr) {
        http = rc_http_new(http_addr, cfg.insecure, rc_broker_endpoint(broker, RC_EP_CLIENTS_INPROC), err,
                           sizeof err);
        if (!http) {
            fprintf(stderr, "refcache-broker: %s\n", err);
            rc_broker_destroy(&broker);
            rc_opts_free(&spec);
            return 1;
        }
    }
    printf("clients %s\nworkers %s\ncontrol %s\nstore %s\n", rc_broker_endpoint(broker, RC_EP_CLIENTS),
           rc_broker_endpoint(broker, RC_EP_WORKERS), rc_broker_endpoint(broker, RC_EP_CONTROL),
           cfg.store_path ? cfg.store_path : "none (memory only)");
    if (http)
        printf("http %s\n", rc_http_url(http));
    printf("ready\n");
    fflush(stdout);
    rc_log(RC_LOG_INFO, "broker", "ready: clients %s, workers %s, control %s%s%s%s",
           rc_broker_endpoint(broker, RC_EP_CLIENTS), rc_broker_endpoint(broker, RC_EP_WORKERS),
           rc_broker_endpoint(broker, RC_EP_CONTROL), http ? ", http " : "", http ? rc_http_url(http) : "",
           cfg.curve_secret_file ? " (CURVE)" : "");
    int sig = s_serve(broker, &sigs);
    s_drain(broker, &sigs, sig);
    rc_log(RC_LOG_INFO, "broker", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc_http_destroy(&http); /* a client of the broker: before it */
    rc_broker_destroy(&broker);
    rc_opts_free(&spec);
    return 0;
}
