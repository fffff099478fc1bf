/* rc_observe_covers: the fields of the List, Workers, Watch and Metrics
 * messages, as the broker's codec and the client's both handle them whole
 * (rc_codec_observe.c, rc_client_observe.c), for test_wire_drift: one list,
 * expanded in each under the names of its request and reply codecs. */
#ifndef RC_OBSERVE_COVERS_H
#define RC_OBSERVE_COVERS_H

#include "rc_fields.h"
#include "rc_wire.h"
#include "refcache.pb-c.h"

#define RC_OBS_EVF(x) RC_FIELD_EVENT_##x

#define RC_OBSERVE_COVERS(REQ, REP)                                                                          \
    RC_COVER(REQ, refcache__v1__list_request__descriptor, RC_FIELD_LIST_REQUEST_STATES,                      \
             RC_FIELD_LIST_REQUEST_FUNCTION, RC_FIELD_LIST_REQUEST_NAMESPACE,                                \
             RC_FIELD_LIST_REQUEST_ALL_NAMESPACES, RC_FIELD_LIST_REQUEST_CREATED_AFTER_US,                   \
             RC_FIELD_LIST_REQUEST_CREATED_BEFORE_US, RC_FIELD_LIST_REQUEST_LIMIT,                           \
             RC_FIELD_LIST_REQUEST_CURSOR, RC_FIELD_LIST_REQUEST_REF_ID),                                    \
        RC_COVER_NONE(REQ, refcache__v1__workers_request__descriptor),                                       \
        RC_COVER(REQ, refcache__v1__watch_request__descriptor, RC_FIELD_WATCH_REQUEST_REF_ID,                \
                 RC_FIELD_WATCH_REQUEST_FUNCTION, RC_FIELD_WATCH_REQUEST_NAMESPACE,                          \
                 RC_FIELD_WATCH_REQUEST_ALL_NAMESPACES, RC_FIELD_WATCH_REQUEST_WINDOW,                       \
                 RC_FIELD_WATCH_REQUEST_WATCH_ID, RC_FIELD_WATCH_REQUEST_ACKED,                              \
                 RC_FIELD_WATCH_REQUEST_STOP),                                                               \
        RC_COVER_NONE(REQ, refcache__v1__metrics_request__descriptor),                                       \
        RC_COVER(REP, refcache__v1__list_reply__descriptor, RC_FIELD_LIST_REPLY_TASKS,                       \
                 RC_FIELD_LIST_REPLY_NEXT_CURSOR, RC_FIELD_LIST_REPLY_SCANNED),                              \
        RC_COVER(REP, refcache__v1__workers_reply__descriptor, RC_FIELD_WORKERS_REPLY_WORKERS),              \
        RC_COVER(REP, refcache__v1__worker_info__descriptor, RC_FIELD_WORKER_INFO_WORKER_ID,                 \
                 RC_FIELD_WORKER_INFO_HOST, RC_FIELD_WORKER_INFO_PID, RC_FIELD_WORKER_INFO_FUNCTIONS,        \
                 RC_FIELD_WORKER_INFO_CREDIT, RC_FIELD_WORKER_INFO_TASKS_HELD,                               \
                 RC_FIELD_WORKER_INFO_JOINED_AT_US, RC_FIELD_WORKER_INFO_LAST_HEARD_AT_US,                   \
                 RC_FIELD_WORKER_INFO_READY, RC_FIELD_WORKER_INFO_TASKS_ENDED),                              \
        RC_COVER(REP, refcache__v1__event__descriptor, RC_OBS_EVF(KIND), RC_OBS_EVF(REF_ID),                 \
                 RC_OBS_EVF(FUNCTION), RC_OBS_EVF(NAMESPACE), RC_OBS_EVF(OLD_STATE), RC_OBS_EVF(NEW_STATE),  \
                 RC_OBS_EVF(EVENT), RC_OBS_EVF(ATTEMPT), RC_OBS_EVF(WORKER_ID), RC_OBS_EVF(CODE),            \
                 RC_OBS_EVF(CLIENT), RC_OBS_EVF(STOP_CONFIRMED), RC_OBS_EVF(AT_US), RC_OBS_EVF(LOST),        \
                 RC_OBS_EVF(PROGRESS_DONE), RC_OBS_EVF(PROGRESS_TOTAL)),                                     \
        RC_COVER(REP, refcache__v1__metrics_reply__descriptor, RC_FIELD_METRICS_REPLY_BOUNDS_US,             \
                 RC_FIELD_METRICS_REPLY_FUNCTIONS),                                                          \
        RC_COVER(REP, refcache__v1__function_metrics__descriptor, RC_FIELD_FUNCTION_METRICS_FUNCTION,        \
                 RC_FIELD_FUNCTION_METRICS_QUEUED, RC_FIELD_FUNCTION_METRICS_QUEUE_TIME,                     \
                 RC_FIELD_FUNCTION_METRICS_RUN_TIME, RC_FIELD_FUNCTION_METRICS_CANCEL_STOP_TIME),            \
        RC_COVER(REP, refcache__v1__histogram__descriptor, RC_FIELD_HISTOGRAM_COUNTS,                        \
                 RC_FIELD_HISTOGRAM_SUM_US, RC_FIELD_HISTOGRAM_COUNT)

#endif
