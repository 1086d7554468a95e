/* projector/proj.c - log reader -> batches -> commits -> announcements. */
#include "proj.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "batch.h"
#include "views.h"
#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_partition.h"
#include "cb_time.h"

#define MOD           "projector"
#define RETRY_READ_MS 1000

/* One partition's log (docs/scale.md): its reader and positions. */
typedef struct part {
    cb_proj *p;
    unsigned k;
    cb_reader *reader;  /* NULL while a failed read waits for the retry */
    uint64_t batch_seq; /* its last position in the open batch, 0: none */
    int caught_up;      /* its reader reached the end once */
} part;

struct cb_proj {
    struct event_base *base;
    cb_broker *b;
    cb_store *st;
    cb_proj_opts o;
    part parts[CB_PARTITIONS_MAX];
    cb_batch_keep *keep; /* the jobs not ended, between batches */
    cb_batch *batch;
    struct event *flush_timer, *retry_timer;
    cb_proj_stats stats;
    int caught_up;          /* every partition's reader reached the end once */
    int failed;             /* a commit failed: stop folding until restarted */
    int64_t last_commit_ns; /* monotonic */
    int64_t window_ns;      /* start of the rate window (monotonic) */
    uint64_t window_events; /* events read in it */
    int busy;               /* the last window's rate was over busy_rate */
};

void cb_proj_opts_init(cb_proj_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch_max = 2000;
    o->batch_ms = 20;
    o->gap_ms = 10;
    o->busy_rate = 2000;
    o->announce = 1;
    o->partitions = 1;
}

const cb_proj_stats *cb_proj_stats_get(const cb_proj *p)
{
    return &p->stats;
}

static void announce(cb_proj *p, json_t *jobs)
{
    json_t *msg = json_pack("{s:I, s:o}", "seq", (json_int_t)p->stats.applied_seq, "jobs", jobs);
    char *s = msg ? cb_json_dumps(msg, JSON_COMPACT) : NULL;
    if (s) {
        cb_status st = cb_broker_notify(p->b, CB_PROJ_CHANGED, NULL, s, strlen(s), NULL, NULL);
        if (st != CB_OK)
            CB_LOG_DBG(MOD, "announce: %s", cb_strerror(st)); /* the long loop covers it */
    }
    free(s);
    json_decref(msg);
}

/* Commit the open batch. Returns 0, or -1 when the commit failed. */
static int flush(cb_proj *p)
{
    const cb_batch_stats *bs;
    json_t *jobs;
    cb_status s;

    evtimer_del(p->flush_timer);
    if (!p->batch)
        return 0;
    bs = cb_batch_stats_get(p->batch);
    p->stats.events += bs->events;
    p->stats.applied += bs->applied;
    p->stats.ignored += bs->ignored;
    p->stats.invalid += bs->invalid;
    p->stats.fenced += bs->fenced;
    jobs = p->o.announce ? cb_batch_changed_jobs(p->batch) : NULL;
    for (unsigned k = 1; k < p->o.partitions; k++)
        if (p->parts[k].batch_seq)
            cb_batch_position(p->batch, k, p->parts[k].batch_seq);
    s = cb_batch_commit(p->batch, p->parts[0].batch_seq);
    p->batch = NULL;
    if (s != CB_OK) {
        /* Nothing of the batch is stored; restarting re-reads it. */
        CB_LOG_ERR(MOD, "commit up to %llu failed: %s; folding stops",
                   (unsigned long long)p->parts[0].batch_seq, cb_strerror(s));
        json_decref(jobs);
        p->failed = 1;
        return -1;
    }
    p->stats.commits++;
    p->last_commit_ns = cb_time_mono_ns();
    for (unsigned k = 0; k < p->o.partitions; k++) {
        if (p->parts[k].batch_seq)
            p->stats.positions[k] = p->parts[k].batch_seq;
        p->parts[k].batch_seq = 0;
    }
    p->stats.applied_seq = p->stats.positions[0];
    if (jobs && json_array_size(jobs))
        announce(p, jobs);
    else
        json_decref(jobs);
    if (p->o.on_commit)
        p->o.on_commit(p->stats.applied_seq, p->caught_up, p->o.ctx);
    return 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

static void start_reading(part *pt);

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_proj *p = arg;
    (void)fd;
    (void)what;
    for (unsigned k = 0; k < p->o.partitions; k++)
        if (!p->parts[k].reader)
            start_reading(&p->parts[k]);
}

static int all_caught_up(const cb_proj *p)
{
    for (unsigned k = 0; k < p->o.partitions; k++)
        if (!p->parts[k].caught_up)
            return 0;
    return 1;
}

static void read_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    part *pt = ctx;
    cb_proj *p = pt->p;
    struct timeval tv = {p->o.batch_ms / 1000, (p->o.batch_ms % 1000) * 1000};

    if (p->failed)
        return;
    if (!m) {
        if (s == CB_OK) { /* caught up with the log: commit now, or soon when busy */
            int had_batch = p->batch != NULL;
            int64_t next = p->last_commit_ns + (int64_t)p->o.gap_ms * 1000000;
            int64_t now = cb_time_mono_ns();
            pt->caught_up = 1;
            p->caught_up = all_caught_up(p);
            if (had_batch && p->busy && now < next) { /* group commit: one fsync, more events */
                struct timeval gt = {0, (suseconds_t)((next - now) / 1000)};
                evtimer_add(p->flush_timer, &gt);
                return;
            }
            if (flush(p) == 0 && !had_batch && p->o.on_commit)
                p->o.on_commit(p->stats.applied_seq, 1, p->o.ctx); /* nothing new to commit */
            return;
        }
        CB_LOG_WRN(MOD, "reading the log of partition %u failed: %s; retrying", pt->k,
                   cb_strerror(s));
        flush(p);
        cb_reader_close(pt->reader);
        pt->reader = NULL;
        struct timeval rt = {RETRY_READ_MS / 1000, 0};
        evtimer_add(p->retry_timer, &rt);
        return;
    }
    if (m->seq && m->seq <= (pt->batch_seq ? pt->batch_seq : p->stats.positions[pt->k]))
        return; /* already folded (a resumed read can repeat the edge) */
    {
        int64_t now = cb_time_mono_ns(), span = now - p->window_ns;
        p->window_events++;
        if (span >= 100000000) { /* 100 ms windows */
            p->busy = (double)p->window_events * 1e9 / (double)span > p->o.busy_rate;
            p->window_ns = now;
            p->window_events = 0;
        }
    }
    if (!p->batch) {
        cb_status bs = cb_batch_begin(p->st, p->keep, &p->batch);
        if (bs != CB_OK) {
            CB_LOG_ERR(MOD, "begin a batch: %s; folding stops", cb_strerror(bs));
            p->failed = 1;
            return;
        }
        evtimer_add(p->flush_timer, &tv);
    }
    s = cb_batch_apply_raw(p->batch, pt->k, m->data, m->len, m->seq);
    if (s != CB_OK) {
        CB_LOG_ERR(MOD, "folding entry %llu: %s; folding stops", (unsigned long long)m->seq,
                   cb_strerror(s));
        cb_batch_abort(p->batch);
        p->batch = NULL;
        p->failed = 1;
        return;
    }
    if (m->seq)
        pt->batch_seq = m->seq;
    if (cb_batch_stats_get(p->batch)->events >= p->o.batch_max)
        flush(p);
}

static void start_reading(part *pt)
{
    cb_proj *p = pt->p;
    cb_read_opts ro;
    cb_status s;
    uint64_t from = p->stats.positions[pt->k];

    cb_read_opts_init(&ro);
    ro.partition = pt->k;
    if (from) {
        ro.from = CB_READ_SEQ;
        ro.seq = from + 1;
    }
    s = cb_broker_read(p->b, &ro, read_cb, pt, &pt->reader);
    if (s != CB_OK) {
        struct timeval rt = {RETRY_READ_MS / 1000, 0};
        CB_LOG_WRN(MOD, "cannot read the log of partition %u: %s; retrying", pt->k, cb_strerror(s));
        pt->reader = NULL;
        evtimer_add(p->retry_timer, &rt);
    }
}

cb_status cb_proj_start(struct event_base *base, cb_broker *b, cb_store *st, const cb_proj_opts *o,
                        cb_proj **out)
{
    cb_proj *p = cb_calloc(1, sizeof *p);
    cb_status s;

    if (!p)
        return CB_ENOMEM;
    p->base = base;
    p->b = b;
    p->st = st;
    if (o)
        p->o = *o;
    else
        cb_proj_opts_init(&p->o);
    if (!p->o.batch_max)
        p->o.batch_max = 2000;
    if (p->o.batch_ms <= 0)
        p->o.batch_ms = 20;
    if (p->o.partitions < 1 || p->o.partitions > CB_PARTITIONS_MAX)
        p->o.partitions = 1;
    for (unsigned k = 0; k < p->o.partitions; k++) {
        p->parts[k].p = p;
        p->parts[k].k = k;
        if ((s = cb_view_applied_seq(st, k, &p->stats.positions[k])) != CB_OK) {
            cb_free(p);
            return s;
        }
    }
    p->stats.applied_seq = p->stats.positions[0];
    p->flush_timer = evtimer_new(base, flush_cb, p);
    p->retry_timer = evtimer_new(base, retry_cb, p);
    p->keep = cb_batch_keep_new(CB_BATCH_KEEP_JOBS, CB_BATCH_KEEP_BYTES);
    if (!p->flush_timer || !p->retry_timer || !p->keep) {
        cb_proj_stop(p);
        return CB_ENOMEM;
    }
    for (unsigned k = 0; k < p->o.partitions; k++) {
        if (p->o.partitions > 1)
            CB_LOG_INF(MOD, "folding the log of partition %u from position %llu", k,
                       (unsigned long long)p->stats.positions[k] + 1);
        else
            CB_LOG_INF(MOD, "folding the log from position %llu",
                       (unsigned long long)p->stats.positions[k] + 1);
        start_reading(&p->parts[k]);
    }
    *out = p;
    return CB_OK;
}

void cb_proj_stop(cb_proj *p)
{
    if (!p)
        return;
    if (!p->failed)
        flush(p);
    cb_batch_abort(p->batch);
    for (unsigned k = 0; k < p->o.partitions; k++)
        cb_reader_close(p->parts[k].reader);
    if (p->flush_timer)
        event_free(p->flush_timer);
    if (p->retry_timer)
        event_free(p->retry_timer);
    cb_batch_keep_free(p->keep);
    cb_free(p);
}
