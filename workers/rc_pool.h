/* rc_pool: the internal side of the worker pool (rc_pool.c) — the
 * constructor through which the broker starts its own pool with a cancel
 * board per thread. Internal: not part of the public worker API. */
#ifndef RC_POOL_H
#define RC_POOL_H

#include <stddef.h>

#include "rc_board.h"
#include "refcache_worker.h"

/* refcache_pool_new, and with boards (NULL: none, as refcache_pool_new)
 * each thread gets a cancel board from the registry, registered under its
 * routing id before its Ready goes out. The broker then posts every cancel
 * notice for the thread on its board before sending it, and the thread
 * reads its board instead of its control socket before each held task.
 * Only for a pool in the broker's process (the board is shared memory);
 * the registry must outlive the pool. */
refcache_pool_t *rc_pool_new(const refcache_pool_config_t *config, rc_board_registry_t *boards, char *errbuf,
                             size_t errlen);

#endif
