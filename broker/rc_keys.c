/* rc_keys: loading the CURVE allow-lists and the broker's certificate (see
 * rc_keys.h). */
#include "rc_keys.h"

#include <stdio.h>
#include <string.h>

/* The public keys of every certificate in dir, to the certificate file's
 * name; NULL with a message in err. */
static zhashx_t *load_dir(const char *dir, char *err, size_t errlen)
{
    zhashx_t *keys = zhashx_new();
    if (keys) {
        zhashx_set_duplicator(keys, (zhashx_duplicator_fn *) strdup);
        zhashx_set_destructor(keys, (zhashx_destructor_fn *) zstr_free);
    }
    zdir_t *d = zdir_new(dir, "-");
    if (!keys || !d) {
        snprintf(err, errlen, "cannot read the allow-list directory %s", dir);
        zhashx_destroy(&keys);
        zdir_destroy(&d);
        return NULL;
    }
    zfile_t **files = zdir_flatten(d);
    for (size_t i = 0; files && files[i]; i++) {
        const char *path = zfile_filename(files[i], NULL);
        size_t len = strlen(path);
        if (len > 7 && strcmp(path + len - 7, "_secret") == 0)
            continue; /* a secret file has no place in an allow-list: skip it */
        zcert_t *cert = zcert_load(path);
        if (!cert)
            continue;
        const char *slash = strrchr(path, '/');
        zhashx_insert(keys, zcert_public_txt(cert), (void *) (slash ? slash + 1 : path));
        zcert_destroy(&cert);
    }
    zdir_flatten_free(&files);
    zdir_destroy(&d);
    return keys;
}

int rc_keys_load(rc_keys_t *k, const char *clients_dir, const char *workers_dir, const char *admin_dir,
                 char *err, size_t errlen)
{
    memset(k, 0, sizeof *k);
    if (!(k->client = load_dir(clients_dir, err, errlen)) || !(k->worker = load_dir(workers_dir, err, errlen)) ||
        (admin_dir && !(k->admin = load_dir(admin_dir, err, errlen)))) {
        rc_keys_free(k);
        return -1;
    }
    /* Admin keys act as clients that see every task, and the workers. */
    for (const char *name = k->admin ? zhashx_first(k->admin) : NULL; name; name = zhashx_next(k->admin))
        zhashx_update(k->client, zhashx_cursor(k->admin), (void *) name);
    return 0;
}

void rc_keys_free(rc_keys_t *k)
{
    zhashx_destroy(&k->client);
    zhashx_destroy(&k->worker);
    zhashx_destroy(&k->admin);
}

zcert_t *rc_keys_secret_cert(const char *file)
{
    char base[512];
    snprintf(base, sizeof base, "%s", file);
    size_t len = strlen(base);
    if (len > 7 && strcmp(base + len - 7, "_secret") == 0)
        base[len - 7] = '\0';
    zcert_t *cert = zcert_load(base);
    if (!cert)
        return NULL;
    static const char zeros[41] = "0000000000000000000000000000000000000000";
    if (strcmp(zcert_secret_txt(cert), zeros) == 0) {
        zcert_destroy(&cert);
        return NULL;
    }
    return cert;
}
