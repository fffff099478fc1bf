/* rc_procs: refcache-broker and refcache-worker processes for tests — started
 * with the arguments a test gives, their bound endpoints read from what the
 * broker prints before "ready", waited for with a timeout, and every one
 * still alive killed by rc_procs_kill_all (the teardown's, also after a
 * failed check). Their stderr goes to /dev/null unless RC_TEST_VERBOSE is
 * set. Failures end the calling cmocka test. */
#ifndef RC_PROCS_H
#define RC_PROCS_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    char clients[256], workers[256], control[256];
} rc_procs_eps_t;

/* Starts refcache-broker (path) with args (NULL-terminated; the three
 * endpoints default to tcp://127.0.0.1:* unless args name them) and waits
 * for its "ready"; its endpoints in *eps. */
pid_t rc_procs_broker(const char *path, const char *const *args, rc_procs_eps_t *eps);

/* The same on three fixed ports below the kernel's ephemeral range (20000
 * to 29999, picked at random, others tried if taken), for a broker to be
 * restarted on the same endpoints: a port in the ephemeral range freed by a
 * stopped broker may be taken at once by another test's "*". args must not
 * name the endpoints. */
pid_t rc_procs_broker_fixed(const char *path, const char *const *args, rc_procs_eps_t *eps);

/* The same, for a restart on endpoints given in args: tried again for up
 * to ms while it cannot bind them (a socket of a reconnecting peer may hold
 * such a port for a moment as its own local port). */
pid_t rc_procs_broker_again(const char *path, const char *const *args, rc_procs_eps_t *eps, int ms);

/* Starts refcache-worker (path) against eps with args (NULL-terminated). */
pid_t rc_procs_worker(const char *path, const rc_procs_eps_t *eps, const char *const *args);

/* Starts argv (argv[0] a path) as the other processes here are started. */
pid_t rc_procs_spawn(const char *const *argv);

/* Waits up to ms for pid to exit: true with its exit status in *status (a
 * signal's number as 128 + it), false if it still runs. */
bool rc_procs_wait(pid_t pid, int ms, int *status);

/* Sends sig to pid. */
void rc_procs_signal(pid_t pid, int sig);

/* Kills (SIGKILL) and reaps pid now. */
void rc_procs_kill(pid_t pid);

/* Kills and reaps every process started here that still runs. */
void rc_procs_kill_all(void);

#endif
