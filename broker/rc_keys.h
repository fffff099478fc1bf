/* rc_keys: the broker's CURVE allow-lists — the public keys (Z85) of the
 * certificates in the clients, workers and admin directories, each mapped to
 * its certificate file's name (what the event stream and the logs show of a
 * key) — loaded at start and again on SIGHUP (rc_broker_reload), and the
 * broker's own secret certificate. */
#ifndef RC_KEYS_H
#define RC_KEYS_H

#include <czmq.h>
#include <stddef.h>

typedef struct {
    zhashx_t *client; /* every key that may send requests: the clients' and the admins' */
    zhashx_t *worker;
    zhashx_t *admin; /* among client: those that see every task; NULL without an admin directory */
} rc_keys_t;

/* Loads the three directories (admin_dir may be NULL) into keys. 0, or -1
 * with a message in err and nothing loaded. */
int rc_keys_load(rc_keys_t *keys, const char *clients_dir, const char *workers_dir, const char *admin_dir,
                 char *err, size_t errlen);

/* Frees what rc_keys_load loaded (the maps the caller has not taken). */
void rc_keys_free(rc_keys_t *keys);

/* The broker's certificate from either name zcert_save writes (PATH, or
 * PATH_secret); NULL if it cannot be read or has no secret key. */
zcert_t *rc_keys_secret_cert(const char *file);

#endif
