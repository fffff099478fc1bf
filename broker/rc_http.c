/* rc_http: the broker's HTTP server on libmicrohttpd (see rc_http.h). Every
 * request is handled in libmicrohttpd's one thread, which alone uses the
 * two broker clients (one for calls, one for the status page's watch). */
#include "rc_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rc_buf.h"
#include "rc_common.h"
#include "rc_http_metrics.h"
#include "rc_json.h"
#include "rc_json_info.h"
#include "rc_log.h"
#include "refcache.h"

#define CALL_MS     2000              /* a call to the broker (over inproc: at once, unless it is stuck) */
#define EVENTS_KEPT 100               /* the latest transitions the page shows */
#define EVENTS_IDLE (30 * 1000000ull) /* the watch ends this long after the page stopped asking */

extern const char rc_http_page_html[]; /* status.html (rc_http_page.c, generated) */
extern const size_t rc_http_page_html_len;

typedef struct {
    char ref_id[REFCACHE_REF_MAX + 1], event[24], function[129], worker[64], client[80];
    int old_state, new_state, code;
    uint32_t attempt;
    uint64_t at_us;
    bool stop_confirmed;
} kept_event_t;

struct rc_http {
    struct MHD_Daemon *daemon;
    char endpoint[128]; /* the broker's clients channel */
    char url[160];
    refcache_client_t *client;  /* calls: made in the server's thread at its first use */
    refcache_client_t *watcher; /* the page's watch, while it asks */
    uint64_t events_asked_us;
    uint64_t lost;
    kept_event_t events[EVENTS_KEPT]; /* a ring */
    size_t n_events, next_event;
};

/* ------------------------------------------------------------ clients */

static refcache_client_t *client_new(rc_http_t *self)
{
    char err[256];
    refcache_client_options_t o;
    refcache_client_options_init(&o);
    o.endpoint = self->endpoint;
    refcache_client_t *c = refcache_client_new(&o, err, sizeof err);
    if (!c)
        rc_log(RC_LOG_ERROR, "http", "cannot connect to the broker: %s", err);
    return c;
}

static refcache_client_t *client(rc_http_t *self)
{
    if (!self->client)
        self->client = client_new(self);
    return self->client;
}

static void watch_end(rc_http_t *self)
{
    if (self->watcher)
        (void) refcache_client_unwatch(self->watcher, CALL_MS);
    refcache_client_destroy(&self->watcher);
}

/* The page asks for events: the watch starts (or goes on), and what came
 * since the last time joins the ring. */
static int events_pull(rc_http_t *self)
{
    self->events_asked_us = rc_mono_us();
    if (!self->watcher) {
        self->watcher = client_new(self);
        refcache_watch_options_t o = {.all_namespaces = true};
        int rc = self->watcher ? refcache_client_watch(self->watcher, &o, CALL_MS) : REFCACHE_ENOMEM;
        if (rc) {
            refcache_client_destroy(&self->watcher);
            return rc;
        }
    }
    for (int budget = 4096; budget > 0; budget--) {
        refcache_event_t e;
        int rc = refcache_client_watch_next(self->watcher, &e, 0);
        if (rc == REFCACHE_ETIMEOUT)
            break;
        if (rc != 0 || e.kind == REFCACHE_EVENT_END) {
            refcache_client_destroy(&self->watcher); /* ended: the next ask starts again */
            break;
        }
        if (e.kind == REFCACHE_EVENT_LOST)
            self->lost += e.lost;
        /* Progress steps would crowd out everything else: the page shows a
         * task's progress in its lookup, and the workers' load. */
        if (e.kind != REFCACHE_EVENT_TRANSITION || strcmp(e.event, "progress") == 0)
            continue;
        kept_event_t *k = &self->events[self->next_event];
        self->next_event = (self->next_event + 1) % EVENTS_KEPT;
        if (self->n_events < EVENTS_KEPT)
            self->n_events++;
        snprintf(k->ref_id, sizeof k->ref_id, "%s", e.ref_id);
        snprintf(k->event, sizeof k->event, "%s", e.event);
        snprintf(k->function, sizeof k->function, "%s", e.function);
        snprintf(k->worker, sizeof k->worker, "%s", e.worker_id);
        snprintf(k->client, sizeof k->client, "%s", e.client);
        k->old_state = e.old_state;
        k->new_state = e.new_state;
        k->code = e.code;
        k->attempt = e.attempt;
        k->at_us = e.at_us;
        k->stop_confirmed = e.stop_confirmed;
    }
    return 0;
}

/* ------------------------------------------------------------ JSON */

static const char *state_or_empty(int s)
{
    return s ? rc_state_name(s) : "";
}

static void json_task(rc_json_t *j, const refcache_task_view_t *t)
{
    rc_json_str(j, "ref_id", t->ref_id);
    rc_json_str(j, "state", rc_state_name(t->state));
    rc_json_str(j, "function", t->function);
    rc_json_str(j, "namespace", t->namespace_name);
    rc_json_uint(j, "attempt", t->attempt);
    rc_json_uint(j, "progress_done", t->progress_done);
    rc_json_uint(j, "progress_total", t->progress_total);
    rc_json_uint(j, "result_size", t->result_size);
    rc_json_str(j, "error", t->error);
    rc_json_uint(j, "created_at_us", t->created_at_us);
    rc_json_uint(j, "started_at_us", t->started_at_us);
    rc_json_uint(j, "finished_at_us", t->finished_at_us);
    rc_json_uint(j, "stopped_at_us", t->stopped_at_us);
    rc_json_uint(j, "expires_at_us", t->expires_at_us);
}

static int api_status(rc_http_t *self, rc_json_t *j)
{
    refcache_client_t *c = client(self);
    if (!c)
        return REFCACHE_ETRANSPORT;
    refcache_stats_t s;
    refcache_metrics_t *m = NULL;
    refcache_worker_list_t *w = NULL;
    int rc = refcache_client_stats(c, &s, CALL_MS);
    if (rc == 0)
        rc = refcache_client_metrics(c, &m, CALL_MS);
    if (rc == 0)
        rc = refcache_client_workers(c, &w, CALL_MS);
    if (rc == 0) {
        rc_json_uint(j, "now_us", rc_wall_us());
        rc_json_begin(j, "stats");
        rc_json_stats(j, &s);
        rc_json_end(j);
        rc_json_array(j, "workers");
        for (size_t i = 0; i < w->count; i++)
            rc_json_worker(j, &w->workers[i]);
        rc_json_end(j);
        rc_json_array(j, "functions");
        for (size_t i = 0; i < m->function_count; i++) {
            const refcache_function_metrics_t *f = &m->functions[i];
            rc_json_element(j);
            rc_json_str(j, "function", f->function);
            rc_json_uint(j, "queued", f->queued);
            rc_json_uint(j, "runs", f->run_time.count);
            rc_json_uint(j, "run_us_sum", f->run_time.sum_us);
            rc_json_uint(j, "dispatched", f->queue_time.count);
            rc_json_uint(j, "queue_us_sum", f->queue_time.sum_us);
            rc_json_uint(j, "stops", f->cancel_stop_time.count);
            rc_json_uint(j, "stop_us_sum", f->cancel_stop_time.sum_us);
            rc_json_end(j);
        }
        rc_json_end(j);
    }
    refcache_metrics_destroy(&m);
    refcache_worker_list_destroy(&w);
    return rc;
}

static int api_events(rc_http_t *self, rc_json_t *j)
{
    int rc = events_pull(self);
    if (rc)
        return rc;
    rc_json_uint(j, "lost", self->lost);
    rc_json_array(j, "events"); /* newest first */
    for (size_t i = 0; i < self->n_events; i++) {
        const kept_event_t *k = &self->events[(self->next_event + EVENTS_KEPT - 1 - i) % EVENTS_KEPT];
        rc_json_element(j);
        rc_json_uint(j, "at_us", k->at_us);
        rc_json_str(j, "ref_id", k->ref_id);
        rc_json_str(j, "event", k->event);
        rc_json_str(j, "function", k->function);
        rc_json_str(j, "old_state", state_or_empty(k->old_state));
        rc_json_str(j, "new_state", state_or_empty(k->new_state));
        rc_json_uint(j, "attempt", k->attempt);
        rc_json_str(j, "worker_id", k->worker);
        rc_json_str(j, "client", k->client);
        rc_json_str(j, "code", k->code ? rc_code_name(k->code) : "");
        rc_json_bool(j, "stop_confirmed", k->stop_confirmed);
        rc_json_end(j);
    }
    rc_json_end(j);
    return 0;
}

static int api_task(rc_http_t *self, const char *ref, rc_json_t *j)
{
    refcache_client_t *c = client(self);
    if (!c)
        return REFCACHE_ETRANSPORT;
    refcache_list_options_t o;
    refcache_list_options_init(&o);
    o.ref_id = ref;
    o.all_namespaces = true;
    refcache_task_list_t *l = NULL;
    int rc = refcache_client_list(c, &o, &l, CALL_MS);
    if (rc == 0) {
        rc_json_bool(j, "found", l->count > 0);
        if (l->count) {
            rc_json_begin(j, "task");
            json_task(j, &l->tasks[0]);
            rc_json_end(j);
        }
    }
    refcache_task_list_destroy(&l);
    return rc;
}

/* ------------------------------------------------------------ HTTP */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const void *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *) body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return respond(conn, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* A broker call that failed: 400 for a bad argument, else 503. */
static enum MHD_Result respond_error(struct MHD_Connection *conn, rc_http_t *self, int rc)
{
    char text[512];
    const char *msg = self->client ? refcache_client_message(self->client) : "";
    snprintf(text, sizeof text, "%s%s%s\n", refcache_strerror(rc), *msg ? ": " : "", msg);
    return respond_text(
        conn, rc == REFCACHE_CODE_INVALID_ARGUMENT ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE,
        text);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    rc_http_t *self = cls;
    (void) version;
    (void) upload_data;
    if (!*con_cls) { /* the headers: the answer comes with the next call */
        *con_cls = self;
        return MHD_YES;
    }
    if (*upload_data_size)
        return respond_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "read-only: no request bodies\n");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only: GET or HEAD\n");
    if (self->watcher && rc_mono_us() - self->events_asked_us > EVENTS_IDLE)
        watch_end(self); /* nobody looks at the page's events any more */
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
        return respond(conn, MHD_HTTP_OK, "text/html; charset=utf-8", rc_http_page_html,
                       rc_http_page_html_len);
    if (strcmp(url, "/metrics") == 0) {
        rc_buf_t out = {0};
        refcache_client_t *c = client(self);
        int rc = c ? rc_http_metrics_text(c, CALL_MS, &out) : REFCACHE_ETRANSPORT;
        enum MHD_Result r =
            rc ? respond_error(conn, self, rc)
               : respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
        rc_buf_free(&out);
        return r;
    }
    bool status = strcmp(url, "/api/status") == 0, events = strcmp(url, "/api/events") == 0,
         task = strcmp(url, "/api/task") == 0;
    if (!status && !events && !task)
        return respond_text(conn, MHD_HTTP_NOT_FOUND,
                            "not found: /, /metrics, /api/status, /api/events, "
                            "/api/task?ref=REF\n");
    rc_json_t *j = rc_json_new();
    if (!j)
        return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    int rc;
    if (status)
        rc = api_status(self, j);
    else if (events)
        rc = api_events(self, j);
    else {
        const char *ref = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ref");
        rc = api_task(self, ref ? ref : "", j);
    }
    const char *text = rc ? NULL : rc_json_finish(j);
    enum MHD_Result r = rc     ? respond_error(conn, self, rc)
                        : text ? respond(conn, MHD_HTTP_OK, "application/json", text, strlen(text))
                               : respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    rc_json_destroy(&j);
    return r;
}

/* ------------------------------------------------------------ life cycle */

/* HOST:PORT into an address (the first getaddrinfo gives); -1 with err. */
static int parse_addr(const char *addr, bool insecure, struct sockaddr_storage *sa, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1]) {
        snprintf(err, errlen, "--http takes HOST:PORT (PORT * for any), not '%s'", addr);
        return -1;
    }
    size_t n = (size_t) (colon - addr);
    if (addr[0] == '[' && n >= 2 && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    if (n >= sizeof host) {
        snprintf(err, errlen, "--http: host name too long");
        return -1;
    }
    memcpy(host, addr, n);
    host[n] = '\0';
    const char *port = strcmp(colon + 1, "*") == 0 ? "0" : colon + 1;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "--http: cannot resolve '%s' port '%s': %s", host, port, gai_strerror(gai));
        return -1;
    }
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    bool loopback = false, wildcard = false;
    if (sa->ss_family == AF_INET) {
        uint32_t a = ntohl(((struct sockaddr_in *) sa)->sin_addr.s_addr);
        loopback = (a >> 24) == 127;
        wildcard = a == INADDR_ANY;
    } else {
        const struct in6_addr *a = &((struct sockaddr_in6 *) sa)->sin6_addr;
        loopback = IN6_IS_ADDR_LOOPBACK(a);
        wildcard = IN6_IS_ADDR_UNSPECIFIED(a);
    }
    if (wildcard) {
        snprintf(err, errlen,
                 "refusing --http on the wildcard address %s: it shows every task to every network of this "
                 "machine (bind a specific address)",
                 host);
        return -1;
    }
    if (!loopback && !insecure) {
        snprintf(err, errlen,
                 "refusing --http on %s without --insecure: the page and /metrics show every task, "
                 "unauthenticated, to anyone who can reach it",
                 host);
        return -1;
    }
    return 0;
}

rc_http_t *rc_http_new(const char *addr, bool insecure, const char *clients_endpoint, char *err,
                       size_t errlen)
{
    struct sockaddr_storage sa;
    if (parse_addr(addr, insecure, &sa, err, errlen) != 0)
        return NULL;
    rc_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(self->endpoint, sizeof self->endpoint, "%s", clients_endpoint);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, self, MHD_OPTION_SOCK_ADDR,
                                    (struct sockaddr *) &sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30, MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "cannot serve HTTP on %s (in use, or not an address of this machine)", addr);
        free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    char host[INET6_ADDRSTRLEN] = "";
    if (sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *) &sa)->sin_addr, host, sizeof host);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &sa)->sin6_addr, host, sizeof host);
    snprintf(self->url, sizeof self->url, sa.ss_family == AF_INET6 ? "http://[%s]:%u/" : "http://%s:%u/",
             host, info ? (unsigned) info->port : 0);
    return self;
}

const char *rc_http_url(const rc_http_t *self)
{
    return self->url;
}

void rc_http_destroy(rc_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rc_http_t *self = *self_p;
    /* The server's thread ends here; the clients it made are ours now. */
    MHD_stop_daemon(self->daemon);
    watch_end(self);
    refcache_client_destroy(&self->client);
    free(self);
    *self_p = NULL;
}
