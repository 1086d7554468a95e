/* broker/emit.c - append one cbcore event (see emit.h). */
#include "emit.h"

#include <stdlib.h>

#include "cb_log.h"
#include "cb_time.h"

static void log_failure(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    (void)seq;
    (void)duplicate;
    (void)ctx;
    if (s != CB_OK)
        CB_LOG_WRN("emit", "an event append failed: %s", cb_strerror(s));
}

cb_status cb_emit(cb_broker *b, unsigned partition, cb_event_type type, const char *tenant,
                  const char *job, const char *id, const char *source, json_t *data,
                  cb_publish_cb *cb, void *ctx)
{
    cb_event ev;
    char subject[320], *buf = NULL;
    size_t len;
    cb_status s;

    if ((s = cb_event_init(&ev, type, tenant, job, id, source, cb_time_now_ns(), data)) != CB_OK)
        return s;
    if (cb_event_log_subject(&ev, partition, subject, sizeof subject) != 0)
        s = CB_EINVAL;
    else if ((s = cb_event_encode(&ev, &buf, &len)) == CB_OK)
        s = cb_broker_append(b, subject, id, buf, len, cb ? cb : log_failure, ctx);
    free(buf);
    cb_event_cleanup(&ev);
    return s;
}
