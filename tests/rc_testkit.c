#include "rc_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

void rc_testkit_config(rc_broker_config_t *config)
{
    rc_broker_config_defaults(config);
    config->clients_endpoint = "tcp://127.0.0.1:*";
    config->workers_endpoint = "tcp://127.0.0.1:*";
    config->control_endpoint = "tcp://127.0.0.1:*";
}

rc_broker_t *rc_testkit_broker(const rc_broker_config_t *config)
{
    char err[256] = "";
    rc_broker_t *broker = rc_broker_new(config, err, sizeof err);
    if (!broker)
        fail_msg("rc_broker_new: %s", err);
    return broker;
}

rc_client_t *rc_testkit_client(rc_broker_t *broker)
{
    char err[256] = "";
    rc_client_options_t opts;
    rc_client_options_init(&opts);
    opts.endpoint = rc_broker_endpoint(broker, RC_EP_CLIENTS);
    rc_client_t *client = rc_client_new(&opts, err, sizeof err);
    if (!client)
        fail_msg("rc_client_new: %s", err);
    return client;
}
