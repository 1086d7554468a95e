/* projector/joblog.c - one job's events (see joblog.h). */
#include "joblog.h"

#include <stdio.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_event.h"
#include "cb_json.h"
#include "cb_partition.h"
#include "fold.h"
#include "views.h"

struct cb_joblog {
    cb_broker *b;
    cb_reader *r;
    cb_read_cb *fn;
    void *ctx;
    char filter[300];
    unsigned partition;
    uint64_t from_seq; /* where the current read started; 0: the first event kept */
    int to_end, seen, finished;
    int in_fn, closed; /* inside fn; closed from inside it (freed when fn returns) */
};

uint64_t cb_joblog_first_seq(cb_store *st, const char *tenant, const char *job, unsigned partitions,
                             unsigned *partition)
{
    char key[2 * CB_NAME_MAX + 2];
    cb_job_state js;
    uint64_t seq;
    *partition = cb_partition_of(tenant, job, partitions);
    if (!st || cb_job_key(tenant, job, key, sizeof key) != 0)
        return 0;
    memset(&js, 0, sizeof js);
    if (cb_view_job(st, key, &js) != CB_OK)
        return 0;
    seq = js.first_seq;
    *partition = js.log_partition;
    cb_job_state_cleanup(&js);
    return seq;
}

/* A log entry's event type (by its "type" alone), CB_EV_UNKNOWN if none. */
static cb_event_type type_of(const cb_broker_msg *m)
{
    json_error_t je;
    cb_status s;
    json_t *o = cb_json_loadb(m->data, m->len, 0, &je, &s);
    cb_event_type t = cb_event_type_parse(json_string_value(json_object_get(o, "type")) ?: "");
    json_decref(o);
    return t;
}

static cb_status start(cb_joblog *l, uint64_t from_seq);

/* fn(m, s) unless the reader closed this log (the caller frees it then). */
static void call(cb_joblog *l, const cb_broker_msg *m, cb_status s)
{
    if (l->closed)
        return;
    l->in_fn = 1;
    l->fn(m, s, l->ctx);
    l->in_fn = 0;
}

static void read_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    cb_joblog *l = ctx;
    cb_event_type t;
    int last;

    if (l->finished)
        return;
    if (!m) {
        if (s == CB_OK && !l->seen && l->from_seq) { /* the position was wrong: from the start */
            if ((s = start(l, 0)) == CB_OK)
                return;
        }
        l->finished = 1;
        call(l, NULL, s);
    } else {
        t = type_of(m);
        if (!l->seen && l->from_seq && t != CB_EV_JOB_SUBMITTED && t != CB_EV_JOB_REJECTED) {
            /* A store's position that does not start the job (another
             * deployment's store, a log cut since): read it all rather than
             * miss events. */
            if ((s = start(l, 0)) != CB_OK) {
                l->finished = 1;
                call(l, NULL, s);
            }
        } else {
            l->seen = 1;
            last = !l->to_end && (t == CB_EV_JOB_SUCCEEDED || t == CB_EV_JOB_FAILED ||
                                  t == CB_EV_JOB_CANCELLED || t == CB_EV_JOB_REJECTED);
            if (last)
                l->finished = 1;
            call(l, m, CB_OK);
            if (last)
                call(l, NULL, CB_OK);
        }
    }
    if (l->closed) { /* closed by fn: the reader may be closed from its own callback */
        cb_reader_close(l->r);
        cb_free(l);
    }
}

/* (Re)start the read at from_seq. Closing a reader from its own callback is
 * allowed (broker.h). */
static cb_status start(cb_joblog *l, uint64_t from_seq)
{
    cb_read_opts o;
    cb_reader_close(l->r);
    l->r = NULL;
    l->from_seq = from_seq;
    cb_read_opts_init(&o);
    o.partition = l->partition;
    o.filter = l->filter;
    o.stop_at_end = 1;
    if (from_seq) {
        o.from = CB_READ_SEQ;
        o.seq = from_seq;
    }
    return cb_broker_read(l->b, &o, read_cb, l, &l->r);
}

/* A reader from from_seq; `seen`: a continuation that need not start the job. */
static cb_status open_log(cb_broker *b, unsigned partition, const char *tenant, const char *job,
                          uint64_t from_seq, int to_end, int seen, cb_read_cb *fn, void *ctx,
                          cb_joblog **out)
{
    cb_joblog *l;
    cb_status s;
    if (!cb_name_valid(tenant) || !cb_name_valid(job) || partition >= CB_PARTITIONS_MAX)
        return CB_EINVAL;
    if (!(l = cb_calloc(1, sizeof *l)))
        return CB_ENOMEM;
    l->b = b;
    l->fn = fn;
    l->ctx = ctx;
    l->to_end = to_end;
    l->seen = seen;
    l->partition = partition;
    if (cb_partition_subject(partition, tenant, job, l->filter, sizeof l->filter) != 0) {
        cb_free(l);
        return CB_EINVAL;
    }
    if ((s = start(l, from_seq)) != CB_OK) {
        cb_free(l);
        return s;
    }
    *out = l;
    return CB_OK;
}

cb_status cb_joblog_read(cb_broker *b, unsigned partition, const char *tenant, const char *job,
                         uint64_t from_seq, int to_end, cb_read_cb *fn, void *ctx, cb_joblog **out)
{
    return open_log(b, partition, tenant, job, from_seq, to_end, 0, fn, ctx, out);
}

cb_status cb_joblog_read_after(cb_broker *b, unsigned partition, const char *tenant,
                               const char *job, uint64_t after_seq, cb_read_cb *fn, void *ctx,
                               cb_joblog **out)
{
    return open_log(b, partition, tenant, job, after_seq + 1, 0, 1, fn, ctx, out);
}

void cb_joblog_close(cb_joblog *l)
{
    if (!l)
        return;
    if (l->in_fn) { /* from inside fn: read_cb frees it when fn returns */
        l->closed = 1;
        return;
    }
    cb_reader_close(l->r);
    cb_free(l);
}
