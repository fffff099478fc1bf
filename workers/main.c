/* refcache-worker: runs a pool of worker threads against a broker until
 * SIGINT or SIGTERM. */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refcache_worker.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: refcache-worker [options]\n"
                 "Runs a pool of refcache worker threads connected to a broker.\n"
                 "\n"
                 "  --broker EP          broker work channel (env REFCACHE_WORKER_ENDPOINT,\n"
                 "                       default tcp://127.0.0.1:5571)\n"
                 "  --control EP         broker control channel (env REFCACHE_CONTROL_ENDPOINT,\n"
                 "                       default tcp://127.0.0.1:5572)\n"
                 "  --threads N          worker threads (default: number of cores)\n"
                 "  --credit N           tasks a thread may hold at once (default 256)\n"
                 "  --heartbeat-ms N     heartbeat interval (default 1000)\n"
                 "  --curve-secret FILE  this worker's CURVE certificate (FILE and FILE_secret)\n"
                 "  --broker-public FILE the broker's public CURVE certificate\n"
                 "  --help               show this help\n"
                 "  --version            show the version\n");
}

/* Parses a positive int flag value; exits with a one-line error if bad. */
static int parse_count(const char *flag, const char *text, int max)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "refcache-worker: %s must be an integer in [1, %d], got \"%s\"\n", flag, max, text);
        exit(2);
    }
    return (int) v;
}

int main(int argc, char **argv)
{
    refcache_pool_config_t cfg = {0};
    cfg.work_endpoint = getenv("REFCACHE_WORKER_ENDPOINT");
    cfg.control_endpoint = getenv("REFCACHE_CONTROL_ENDPOINT");
    if (!cfg.work_endpoint || !*cfg.work_endpoint)
        cfg.work_endpoint = "tcp://127.0.0.1:5571";
    if (!cfg.control_endpoint || !*cfg.control_endpoint)
        cfg.control_endpoint = "tcp://127.0.0.1:5572";

    enum { OPT_BROKER = 256, OPT_CONTROL, OPT_THREADS, OPT_CREDIT, OPT_HB, OPT_SECRET, OPT_PUBLIC };
    static const struct option options[] = {
        {"broker", required_argument, NULL, OPT_BROKER},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"credit", required_argument, NULL, OPT_CREDIT},
        {"heartbeat-ms", required_argument, NULL, OPT_HB},
        {"curve-secret", required_argument, NULL, OPT_SECRET},
        {"broker-public", required_argument, NULL, OPT_PUBLIC},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0; /* we print our own one-line errors */
    int opt;
    while ((opt = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
        switch (opt) {
        case OPT_BROKER:
            cfg.work_endpoint = optarg;
            break;
        case OPT_CONTROL:
            cfg.control_endpoint = optarg;
            break;
        case OPT_THREADS:
            cfg.threads = parse_count("--threads", optarg, 1024);
            break;
        case OPT_CREDIT:
            cfg.credit = parse_count("--credit", optarg, 1024);
            break;
        case OPT_HB:
            cfg.heartbeat_ms = parse_count("--heartbeat-ms", optarg, 3600 * 1000);
            break;
        case OPT_SECRET:
            cfg.curve_secret_file = optarg;
            break;
        case OPT_PUBLIC:
            cfg.broker_public_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("refcache-worker %s\n", RC_VERSION);
            return 0;
        default:
            if (optopt && optopt < 256)
                fprintf(stderr, "refcache-worker: unknown option -%c (try --help)\n", optopt);
            else if (optopt)
                fprintf(stderr, "refcache-worker: option %s needs a value (try --help)\n", argv[optind - 1]);
            else
                fprintf(stderr, "refcache-worker: unknown option %s (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "refcache-worker: unexpected argument \"%s\" (try --help)\n", argv[optind]);
        return 2;
    }
    if (!cfg.curve_secret_file != !cfg.broker_public_file) {
        fprintf(stderr, "refcache-worker: --curve-secret and --broker-public go together\n");
        return 2;
    }

    /* We wait for the signals ourselves: block them before any thread
     * starts (threads inherit the mask) and keep CZMQ from catching them. */
    zsys_handler_set(NULL);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    char err[256];
    refcache_pool_t *pool = refcache_pool_new(&cfg, err, sizeof err);
    if (!pool) {
        fprintf(stderr, "refcache-worker: %s\n", err);
        return 1;
    }
    fprintf(stderr, "refcache-worker: %d threads connected to %s (control %s)\n",
            cfg.threads > 0 ? cfg.threads : (int) sysconf(_SC_NPROCESSORS_ONLN), cfg.work_endpoint,
            cfg.control_endpoint);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "refcache-worker: %s, stopping after %llu tasks\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            (unsigned long long) refcache_pool_tasks_done(pool));
    refcache_pool_destroy(&pool);
    return 0;
}
