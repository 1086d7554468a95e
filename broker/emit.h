/* broker/emit.h - append one cbcore event to the log: build the CloudEvents
 * envelope (time = now), encode it and append it on the job's subject
 * with its id as the de-duplication id. What the engine and the adapter
 * workers use to record what they did. Same threading as broker.h. */
#ifndef CB_EMIT_H
#define CB_EMIT_H
#include <jansson.h>

#include "broker.h"
#include "cb_event.h"

/* Appends to the log of `partition` (the job's: docs/scale.md; 0 when the
 * deployment has one). Steals `data` (also on failure; NULL = {}). `cb` may
 * be NULL (the result is then only logged when it is an error). Errors as
 * cb_broker_append, and CB_EINVAL for a bad tenant/job/id. */
CB_NODISCARD cb_status cb_emit(cb_broker *b, unsigned partition, cb_event_type type,
                               const char *tenant, const char *job, const char *id,
                               const char *source, json_t *data, cb_publish_cb *cb, void *ctx);

#endif /* CB_EMIT_H */
