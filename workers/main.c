/* refcache-worker: runs a pool of worker threads against a broker until
 * SIGINT or SIGTERM, then stops gracefully: each thread gives back the
 * tasks it holds and lets its running job finish (up to --drain-timeout). */
#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_log.h"
#include "rc_opts.h"
#include "refcache_worker.h"

static refcache_pool_config_t cfg;
static bool help, version;
static const char *log_level = "info", *log_format = "text";
static const char *config_file; /* read by rc_opts itself; here for --help */

static rc_opt_t options[] = {
    RC_OPT_STR_("workers-endpoint", 0, cfg.work_endpoint, "EP",
                "the broker's work channel (tcp://127.0.0.1:5571)"),
    {.type = RC_OPT_STR,
     .name = "broker",
     .target = &cfg.work_endpoint,
     .arg = "EP",
     .help = "the same as --workers-endpoint"},
    RC_OPT_STR_("control", 0, cfg.control_endpoint, "EP",
                "the broker's control channel (tcp://127.0.0.1:5572)"),
    RC_OPT_UINT_("threads", 0, cfg.threads, 1, 1024, "N", "worker threads (default: number of cores)"),
    RC_OPT_UINT_("credit", 0, cfg.credit, 1, 1024, "N", "tasks a thread may hold at once (256)"),
    RC_OPT_UINT_("heartbeat-ms", 0, cfg.heartbeat_ms, 1, 3600 * 1000, "MS", "heartbeat interval (1000)"),
    RC_OPT_UINT_("drain-timeout", 0, cfg.drain_ms, 0, 24 * 3600 * 1000, "MS",
                 "on SIGTERM, how long running jobs may go on before they are\n"
                 "told to stop (5000); held tasks go back to the broker at once"),
    RC_OPT_STR_("curve-secret", 0, cfg.curve_secret_file, "FILE",
                "this worker's CURVE certificate (FILE and FILE_secret)"),
    RC_OPT_STR_("broker-public", 0, cfg.broker_public_file, "FILE", "the broker's public CURVE certificate"),
    RC_OPT_STR_("log-level", 0, log_level, "LEVEL",
                "lowest level logged to stderr: debug, info, warn, error, off (info)"),
    RC_OPT_STR_("log-format", 0, log_format, "FMT", "text, or json: one object per line (text)"),
    RC_OPT_STR_("config", 0, config_file, "FILE", "read options from FILE (see above)"),
    RC_OPT_FLAG_("help", 'h', help, "show this help"),
    RC_OPT_FLAG_("version", 'V', version, "show the version"),
};

static rc_opts_spec_t spec = {.program = "refcache-worker",
                              .opts = options,
                              .count = sizeof options / sizeof options[0],
                              .config = true,
                              .env_rule = true};

static void usage(FILE *out)
{
    fprintf(out, "usage: refcache-worker [--config FILE] [options]\n"
                 "Runs a pool of refcache worker threads connected to a broker.\n"
                 "\n"
                 "Every option --NAME can also come from the environment variable\n"
                 "REFCACHE_NAME (upper case, '_' for '-'; the same names as the broker's:\n"
                 "REFCACHE_WORKERS_ENDPOINT, REFCACHE_CONTROL), or from --config FILE:\n"
                 "'NAME = value' lines, # comments. The command line wins over the\n"
                 "environment, which wins over the file.\n"
                 "\n");
    rc_opts_help(&spec, 0, out);
}

int main(int argc, char **argv)
{
    cfg.work_endpoint = "tcp://127.0.0.1:5571";
    cfg.drain_ms = 5000;
    cfg.control_endpoint = "tcp://127.0.0.1:5572";
    /* Every option but --broker (an alias), --help, --version and --config
     * can come from REFCACHE_<NAME>; the worker's former variable names
     * still work, with a note. */
    for (size_t i = 0; i < spec.count; i++) {
        rc_opt_t *o = &options[i];
        o->env = strcmp(o->name, "broker") != 0 && strcmp(o->name, "help") != 0 &&
                 strcmp(o->name, "version") != 0 && strcmp(o->name, "config") != 0;
        if (strcmp(o->name, "workers-endpoint") == 0)
            o->old_env = "REFCACHE_WORKER_ENDPOINT";
        else if (strcmp(o->name, "control") == 0)
            o->old_env = "REFCACHE_CONTROL_ENDPOINT";
    }
    char err[512];
    int rc = rc_opts_parse(&spec, argc, argv, err, sizeof err);
    if (rc) {
        fprintf(stderr, "refcache-worker: %s (try --help)\n", err);
        rc_opts_free(&spec);
        return rc;
    }
    if (help || version) {
        if (help)
            usage(stdout);
        else
            printf("refcache-worker %s\n", RC_VERSION);
        rc_opts_free(&spec);
        return 0;
    }
    if (!cfg.curve_secret_file != !cfg.broker_public_file) {
        fprintf(stderr, "refcache-worker: --curve-secret and --broker-public go together\n");
        rc_opts_free(&spec);
        return 2;
    }
    int level = rc_log_level_parse(log_level);
    if (level < 0 || (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0)) {
        fprintf(stderr,
                "refcache-worker: --log-level takes debug, info, warn, error or off, and --log-format "
                "text or json (try --help)\n");
        rc_opts_free(&spec);
        return 2;
    }
    rc_log_setup("refcache-worker", (rc_log_level_t) level, strcmp(log_format, "json") == 0);

    /* We wait for the signals ourselves: block them before any thread
     * starts (threads inherit the mask) and keep CZMQ from catching them. */
    zsys_handler_set(NULL);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    refcache_pool_t *pool = refcache_pool_new(&cfg, err, sizeof err);
    if (!pool) {
        fprintf(stderr, "refcache-worker: %s\n", err);
        rc_opts_free(&spec);
        return 1;
    }
    /* Started; whether the broker lets them in is said when it answers
     * (or refuses). */
    rc_log(RC_LOG_INFO, "worker", "%d thread(s) started for the broker at %s (control %s)%s",
           cfg.threads > 0 ? cfg.threads : (int) sysconf(_SC_NPROCESSORS_ONLN), cfg.work_endpoint,
           cfg.control_endpoint, cfg.curve_secret_file ? ", with CURVE" : "");
    int sig = 0;
    sigwait(&stop, &sig);
    rc_log(RC_LOG_INFO, "worker", "%s: stopping after %llu task(s); running jobs get up to %d ms",
           sig == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long) refcache_pool_tasks_done(pool), cfg.drain_ms);
    refcache_pool_destroy(&pool);
    rc_opts_free(&spec);
    return 0;
}
