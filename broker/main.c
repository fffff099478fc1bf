/* refcache-broker: runs the broker (and, with --workers N, an in-process
 * pool of N worker threads) until SIGINT or SIGTERM. */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_broker.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: refcache-broker [options]\n"
        "\n"
        "Runs the refcache broker. With --workers N it also runs N worker threads in\n"
        "this process (the embedded default: one command, a complete service).\n"
        "\n"
        "endpoints (environment variable in brackets):\n"
        "  --clients EP            client endpoint [REFCACHE_CLIENTS] (tcp://127.0.0.1:5570)\n"
        "  --workers-endpoint EP   worker endpoint [REFCACHE_WORKERS_ENDPOINT] (tcp://127.0.0.1:5571)\n"
        "  --control EP            control endpoint [REFCACHE_CONTROL] (tcp://127.0.0.1:5572)\n"
        "                          use port * for an ephemeral port; the bound endpoints are printed\n"
        "  --workers N             in-process worker threads [REFCACHE_WORKERS] (0; the\n"
        "                          embedded default of the README uses the number of cores)\n"
        "  --credit N              tasks an in-process worker may hold (256)\n"
        "  --dispatch-window-us US a busy worker is sent more tasks only while what it\n"
        "                          holds is expected to take at most this long (1000; 0: never)\n"
        "  --insecure              allow binding a non-loopback address without CURVE\n"
        "security (CURVE on every TCP socket; see README):\n"
        "  --curve-secret FILE     the broker's certificate (from 'refcache keygen FILE')\n"
        "                          [REFCACHE_CURVE_SECRET]\n"
        "  --clients-allowed DIR   public certificates of the clients allowed [REFCACHE_CLIENTS_ALLOWED]\n"
        "  --workers-allowed DIR   public certificates of the workers allowed [REFCACHE_WORKERS_ALLOWED]\n"
        "  --shared-namespaces L   comma-separated namespaces whose cache is shared across owners\n"
        "limits and defaults:\n"
        "  --ttl S                 default TTL of finished tasks, seconds (600)\n"
        "  --max-ttl S             cap on a submit's ttl_s (86400)\n"
        "  --retries N             default max_retries (0)\n"
        "  --inline-limit BYTES    results up to this come inline (65536)\n"
        "  --max-page BYTES        largest Fetch page (1048576)\n"
        "  --cache-bytes BYTES     result bytes kept before LRU eviction (268435456)\n"
        "  --max-records N         task records kept (2000000)\n"
        "  --max-pending N         pending tasks before RESOURCE_EXHAUSTED (1000000)\n"
        "  --max-waiters N         held Submit/Wait replies (100000)\n"
        "  --max-wait-ms MS        cap on Wait and async timeouts (300000)\n"
        "  --max-msg-bytes BYTES   largest message any peer may send (16777216)\n"
        "  --heartbeat-ms MS       heartbeat interval to workers (1000)\n"
        "  --liveness N            silent intervals before a worker is lost (5)\n"
        "  --retry-base-ms MS      first retry back-off (100), doubling up to\n"
        "  --retry-max-ms MS       (10000)\n"
        "  -v, --verbose           log to stderr\n"
        "  -h, --help              this help\n"
        "  -V, --version           print the version\n");
}

static int parse_u64(const char *flag, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        fprintf(stderr, "refcache-broker: %s needs a number up to %llu, not '%s'\n", flag,
                (unsigned long long) max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    rc_broker_config_t cfg;
    rc_broker_config_defaults(&cfg);
    const char *env;
    if ((env = getenv("REFCACHE_CLIENTS")))
        cfg.clients_endpoint = env;
    if ((env = getenv("REFCACHE_WORKERS_ENDPOINT")))
        cfg.workers_endpoint = env;
    if ((env = getenv("REFCACHE_CONTROL")))
        cfg.control_endpoint = env;
    cfg.curve_secret_file = getenv("REFCACHE_CURVE_SECRET");
    cfg.clients_allowed_dir = getenv("REFCACHE_CLIENTS_ALLOWED");
    cfg.workers_allowed_dir = getenv("REFCACHE_WORKERS_ALLOWED");
    uint64_t v;
    if ((env = getenv("REFCACHE_WORKERS"))) {
        if (parse_u64("REFCACHE_WORKERS", env, 1024, &v) != 0)
            return 2;
        cfg.workers = (int) v;
    }

    enum {
        O_CLIENTS = 256,
        O_WORKERS_EP,
        O_CONTROL,
        O_WORKERS,
        O_CREDIT,
        O_WINDOW,
        O_INSECURE,
        O_TTL,
        O_MAX_TTL,
        O_RETRIES,
        O_INLINE,
        O_PAGE,
        O_CACHE,
        O_RECORDS,
        O_PENDING,
        O_WAITERS,
        O_MAXWAIT,
        O_MSG,
        O_HB,
        O_LIVENESS,
        O_RBASE,
        O_RMAX,
        O_CURVE,
        O_CALLOW,
        O_WALLOW,
        O_SHARED,
    };
    static const struct option opts[] = {
        {"clients", required_argument, 0, O_CLIENTS},
        {"workers-endpoint", required_argument, 0, O_WORKERS_EP},
        {"control", required_argument, 0, O_CONTROL},
        {"workers", required_argument, 0, O_WORKERS},
        {"credit", required_argument, 0, O_CREDIT},
        {"dispatch-window-us", required_argument, 0, O_WINDOW},
        {"insecure", no_argument, 0, O_INSECURE},
        {"ttl", required_argument, 0, O_TTL},
        {"max-ttl", required_argument, 0, O_MAX_TTL},
        {"retries", required_argument, 0, O_RETRIES},
        {"inline-limit", required_argument, 0, O_INLINE},
        {"max-page", required_argument, 0, O_PAGE},
        {"cache-bytes", required_argument, 0, O_CACHE},
        {"max-records", required_argument, 0, O_RECORDS},
        {"max-pending", required_argument, 0, O_PENDING},
        {"max-waiters", required_argument, 0, O_WAITERS},
        {"max-wait-ms", required_argument, 0, O_MAXWAIT},
        {"max-msg-bytes", required_argument, 0, O_MSG},
        {"heartbeat-ms", required_argument, 0, O_HB},
        {"liveness", required_argument, 0, O_LIVENESS},
        {"retry-base-ms", required_argument, 0, O_RBASE},
        {"retry-max-ms", required_argument, 0, O_RMAX},
        {"curve-secret", required_argument, 0, O_CURVE},
        {"clients-allowed", required_argument, 0, O_CALLOW},
        {"workers-allowed", required_argument, 0, O_WALLOW},
        {"shared-namespaces", required_argument, 0, O_SHARED},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "vhV", opts, NULL)) != -1) {
        const char *flag = optind > 1 ? argv[optind - 1] : "option";
        int bad = 0;
        switch (c) {
        case O_CLIENTS:
            cfg.clients_endpoint = optarg;
            break;
        case O_WORKERS_EP:
            cfg.workers_endpoint = optarg;
            break;
        case O_CONTROL:
            cfg.control_endpoint = optarg;
            break;
        case O_INSECURE:
            cfg.insecure = true;
            break;
        case O_WORKERS:
            bad = parse_u64(flag, optarg, 1024, &v);
            cfg.workers = (int) v;
            break;
        case O_CREDIT:
            bad = parse_u64(flag, optarg, 1024, &v);
            cfg.worker_credit = (int) v;
            break;
        case O_WINDOW:
            bad = parse_u64(flag, optarg, 60000000, &v);
            cfg.dispatch_window_us = (uint32_t) v;
            break;
        case O_TTL:
            bad = parse_u64(flag, optarg, UINT32_MAX, &v);
            cfg.default_ttl_s = (uint32_t) v;
            break;
        case O_MAX_TTL:
            bad = parse_u64(flag, optarg, UINT32_MAX, &v);
            cfg.max_ttl_s = (uint32_t) v;
            break;
        case O_RETRIES:
            bad = parse_u64(flag, optarg, 100, &v);
            cfg.default_max_retries = (uint32_t) v;
            break;
        case O_INLINE:
            bad = parse_u64(flag, optarg, 8u << 20, &v);
            cfg.inline_limit = (uint32_t) v;
            break;
        case O_PAGE:
            bad = parse_u64(flag, optarg, 8u << 20, &v);
            cfg.max_page = (uint32_t) v;
            break;
        case O_CACHE:
            bad = parse_u64(flag, optarg, UINT64_MAX, &v);
            cfg.cache_bytes = v;
            break;
        case O_RECORDS:
            bad = parse_u64(flag, optarg, UINT64_MAX, &v);
            cfg.max_records = v;
            break;
        case O_PENDING:
            bad = parse_u64(flag, optarg, UINT64_MAX, &v);
            cfg.max_pending = v;
            break;
        case O_WAITERS:
            bad = parse_u64(flag, optarg, UINT64_MAX, &v);
            cfg.max_waiters = v;
            break;
        case O_MAXWAIT:
            bad = parse_u64(flag, optarg, UINT32_MAX, &v);
            cfg.max_wait_ms = (uint32_t) v;
            break;
        case O_MSG:
            bad = parse_u64(flag, optarg, INT32_MAX, &v);
            cfg.max_msg_bytes = (int64_t) v;
            break;
        case O_HB:
            bad = parse_u64(flag, optarg, 3600000, &v);
            cfg.heartbeat_ms = (uint32_t) v;
            break;
        case O_LIVENESS:
            bad = parse_u64(flag, optarg, 1000, &v);
            cfg.liveness = (uint32_t) v;
            break;
        case O_RBASE:
            bad = parse_u64(flag, optarg, 3600000, &v);
            cfg.retry_base_ms = (uint32_t) v;
            break;
        case O_RMAX:
            bad = parse_u64(flag, optarg, 3600000, &v);
            cfg.retry_max_ms = (uint32_t) v;
            break;
        case O_CURVE:
            cfg.curve_secret_file = optarg;
            break;
        case O_CALLOW:
            cfg.clients_allowed_dir = optarg;
            break;
        case O_WALLOW:
            cfg.workers_allowed_dir = optarg;
            break;
        case O_SHARED:
            cfg.shared_namespaces = optarg;
            break;
        case 'v':
            cfg.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("refcache-broker %s\n", RC_VERSION);
            return 0;
        default:
            fprintf(stderr, "refcache-broker: try --help\n");
            return 2;
        }
        if (bad)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "refcache-broker: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    if (cfg.heartbeat_ms == 0 || cfg.liveness == 0 || cfg.inline_limit == 0 || cfg.max_page == 0) {
        fprintf(stderr,
                "refcache-broker: --heartbeat-ms, --liveness, --inline-limit and --max-page must be > 0\n");
        return 2;
    }

    /* Signals are taken by sigwait() in this thread only: block them before
     * any thread starts, so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    zsys_handler_set(NULL);

    char err[512] = "";
    rc_broker_t *broker = rc_broker_new(&cfg, err, sizeof err);
    if (!broker) {
        fprintf(stderr, "refcache-broker: %s\n", err);
        return 1;
    }
    printf("clients %s\nworkers %s\ncontrol %s\nready\n", rc_broker_endpoint(broker, RC_EP_CLIENTS),
           rc_broker_endpoint(broker, RC_EP_WORKERS), rc_broker_endpoint(broker, RC_EP_CONTROL));
    fflush(stdout);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "refcache-broker: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc_broker_destroy(&broker);
    return 0;
}
