/* projector/replay.c - a fresh store from the log. */
#include "replay.h"

#include <event2/event.h>
#include <string.h>

#include "batch.h"
#include "views.h"
#include "migrate.h"
#include "cb_log.h"
#include "cb_partition.h"
#include "cb_time.h"
#include "store.h"

#define MOD   "replay"
#define BATCH 5000

typedef struct rebuild {
    cb_store *st;
    cb_batch_keep *keep;
    cb_batch *batch;
    unsigned k;                            /* the partition being read */
    uint64_t until, last_seq;              /* its */
    uint64_t batch_seq[CB_PARTITIONS_MAX]; /* the open batch's last position of each */
    cb_proj_stats stats;
    cb_status status;
    int done;
} rebuild;

static cb_status commit(rebuild *r)
{
    const cb_batch_stats *bs;
    cb_status s;
    if (!r->batch)
        return CB_OK;
    bs = cb_batch_stats_get(r->batch);
    r->stats.events += bs->events;
    r->stats.applied += bs->applied;
    r->stats.ignored += bs->ignored;
    r->stats.invalid += bs->invalid;
    for (unsigned k = 1; k < CB_PARTITIONS_MAX; k++)
        if (r->batch_seq[k])
            cb_batch_position(r->batch, k, r->batch_seq[k]);
    s = cb_batch_commit(r->batch, r->batch_seq[0]);
    r->batch = NULL;
    if (s == CB_OK) {
        r->stats.commits++;
        for (unsigned k = 0; k < CB_PARTITIONS_MAX; k++)
            if (r->batch_seq[k])
                r->stats.positions[k] = r->batch_seq[k];
        r->stats.applied_seq = r->stats.positions[0];
    }
    memset(r->batch_seq, 0, sizeof r->batch_seq);
    return s;
}

static void finish(rebuild *r, cb_status s)
{
    cb_status c = commit(r);
    r->status = s != CB_OK ? s : c;
    r->done = 1;
}

static void read_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    rebuild *r = ctx;
    if (r->done)
        return;
    if (!m) {
        finish(r, s);
        return;
    }
    if (r->until && m->seq > r->until) {
        finish(r, CB_OK);
        return;
    }
    if (!r->batch && (s = cb_batch_begin(r->st, r->keep, &r->batch)) != CB_OK) {
        finish(r, s);
        return;
    }
    if ((s = cb_batch_apply_raw(r->batch, r->k, m->data, m->len, m->seq)) != CB_OK) {
        cb_batch_abort(r->batch);
        r->batch = NULL;
        finish(r, s);
        return;
    }
    r->last_seq = m->seq ? m->seq : r->last_seq;
    r->batch_seq[r->k] = r->last_seq;
    if (cb_batch_stats_get(r->batch)->events >= BATCH && (s = commit(r)) != CB_OK)
        finish(r, s);
}

cb_status cb_replay_rebuild(struct event_base *base, cb_broker *b, const char *dir,
                            unsigned partitions, const uint64_t *until, int64_t timeout_ms,
                            cb_proj_stats *stats)
{
    rebuild r;
    uint64_t existing = 0;
    int64_t deadline = cb_time_mono_ns() + timeout_ms * 1000000;
    cb_status s;

    if (partitions < 1 || partitions > CB_PARTITIONS_MAX)
        return CB_EINVAL;
    memset(&r, 0, sizeof r);
    if (!(r.keep = cb_batch_keep_new(CB_BATCH_KEEP_JOBS, CB_BATCH_KEEP_BYTES)))
        return CB_ENOMEM;
    if ((s = cb_store_open(dir, 0, CB_STORE_NOSYNC, &r.st)) != CB_OK) {
        cb_batch_keep_free(r.keep);
        return s;
    }
    if ((s = cb_view_applied_seq(r.st, 0, &existing)) != CB_OK || existing) {
        CB_LOG_ERR(MOD, "%s already holds a store; rebuild into a fresh directory", dir);
        cb_store_close(r.st);
        cb_batch_keep_free(r.keep);
        return s != CB_OK ? s : CB_EINVAL;
    }
    if ((s = cb_store_migrate(r.st)) != CB_OK) {
        cb_store_close(r.st);
        cb_batch_keep_free(r.keep);
        return s;
    }
    /* one partition after the other: a job's events are all in one */
    for (r.k = 0; r.k < partitions && r.status == CB_OK; r.k++) {
        cb_read_opts ro;
        cb_reader *rd = NULL;
        cb_read_opts_init(&ro);
        ro.stop_at_end = 1;
        ro.partition = r.k;
        r.until = until ? until[r.k] : 0;
        r.last_seq = 0;
        r.done = 0;
        if ((s = cb_broker_read(b, &ro, read_cb, &r, &rd)) != CB_OK) {
            cb_batch_abort(r.batch);
            cb_store_close(r.st);
            cb_batch_keep_free(r.keep);
            return s;
        }
        while (!r.done && cb_time_mono_ns() < deadline)
            event_base_loop(base, EVLOOP_ONCE);
        cb_reader_close(rd);
        if (!r.done) {
            cb_batch_abort(r.batch);
            r.batch = NULL;
            r.status = CB_ETIMEDOUT;
        }
    }
    cb_store_close(r.st); /* NOSYNC: closing the environment flushes it */
    cb_batch_keep_free(r.keep);
    if (stats)
        *stats = r.stats;
    return r.status;
}
