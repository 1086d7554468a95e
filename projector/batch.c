/* projector/batch.c - folding events into the store, a write transaction per
 * batch (see batch.h). */
#define _GNU_SOURCE
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "cb_alloc.h"
#include "layout.h"
#include "cb_log.h"
#include "cb_map.h"
#include "cb_msg_outcome.h"
#include "cb_partition.h"
#include "cb_time.h"

#define MOD "projector"

typedef struct job_entry {
    struct job_entry *next_same_hash; /* 64-bit hash collisions chain here */
    struct job_entry *next_dirty;
    struct job_entry *older, *newer; /* while kept: the keep's age list */
    char key[CB_JOB_KEY_MAX];
    size_t klen;
    size_t record; /* its record's size when last written */
    size_t bytes;  /* while kept: what it counts against the keep's bound */
    cb_job_state js;
    cb_map tasks;       /* index -> cb_task_state* (loaded or created) */
    cb_map dirty_tasks; /* index -> (void *)1 */
    bool dirty;
    cb_batch *b; /* NULL while kept */
} job_entry;

struct cb_batch_keep {
    cb_map jobs; /* hash(key) -> job_entry (one per hash: a colliding job is not kept) */
    job_entry *oldest, *newest;
    size_t n, bytes, max_jobs, max_bytes;
};

/* What the batch's outcomes cost a tenant or an account, added to its
 * total at commit (layout.h, costs). */
typedef struct cost_delta {
    struct cost_delta *next;
    char key[CB_COST_KEY_MAX];
    size_t klen;
    cb_cost cost;
} cost_delta;

struct cb_batch {
    cb_txn *txn;
    cost_delta *costs;
    cb_batch_keep *keep;
    cb_map jobs; /* hash(key) -> job_entry chain */
    job_entry *dirty;
    cb_batch_stats stats;
    uint64_t last_seq;
    uint64_t pos[CB_PARTITIONS_MAX];   /* the positions to write, 0: unchanged */
    cb_fence fence[CB_PARTITIONS_MAX]; /* each partition's last claim (fence.h) */
    uint64_t fence_loaded, fence_new;  /* bits: read from the store; to write at commit */
    cb_buf text;                       /* a task record's text while the commit writes it */
};

static size_t task_key(const job_entry *e, uint32_t idx, unsigned char *buf)
{
    return cb_layout_task_key(e->key, e->klen, idx, buf);
}

static cb_task_state *get_task(void *arg, uint32_t idx)
{
    job_entry *e = arg;
    cb_task_state *t = cb_map_get(&e->tasks, idx);
    unsigned char key[CB_TASK_KEY_MAX];
    json_t *o = NULL;

    if (!t) {
        if (!(t = cb_calloc(1, sizeof *t)))
            return NULL;
        cb_status s = cb_layout_load_json(e->b->txn, CB_DB_TASKS, key, task_key(e, idx, key), &o);
        if (s == CB_OK) {
            s = cb_task_state_from_json(o, t);
            json_decref(o);
        } else if (s == CB_ENOTFOUND) {
            s = CB_OK; /* never left PENDING */
        }
        if (s != CB_OK || cb_map_put(&e->tasks, idx, t) != CB_OK) {
            cb_task_state_cleanup(t);
            cb_free(t);
            return NULL;
        }
    }
    /* Asked for means possibly changed: written back at commit. */
    if (cb_map_put(&e->dirty_tasks, idx, (void *)1) != CB_OK)
        return NULL;
    return t;
}

static void free_task(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    cb_task_state_cleanup(val);
    cb_free(val);
}

static void entry_free(job_entry *e)
{
    cb_map_each(&e->tasks, free_task, NULL);
    cb_map_cleanup(&e->tasks);
    cb_map_cleanup(&e->dirty_tasks);
    cb_job_state_cleanup(&e->js);
    cb_free(e);
}

static void free_chain(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    for (job_entry *e = val, *next; e; e = next) {
        next = e->next_same_hash;
        entry_free(e);
    }
}

/* ---- the keep ------------------------------------------------------------------ */

cb_batch_keep *cb_batch_keep_new(size_t max_jobs, size_t max_bytes)
{
    cb_batch_keep *k = cb_calloc(1, sizeof *k);
    if (!k)
        return NULL;
    cb_map_init(&k->jobs);
    k->max_jobs = max_jobs;
    k->max_bytes = max_bytes;
    return k;
}

void cb_batch_keep_free(cb_batch_keep *k)
{
    if (!k)
        return;
    cb_map_each(&k->jobs, free_chain, NULL);
    cb_map_cleanup(&k->jobs);
    cb_free(k);
}

size_t cb_batch_keep_jobs(const cb_batch_keep *k)
{
    return k ? k->n : 0;
}

size_t cb_batch_keep_bytes(const cb_batch_keep *k)
{
    return k ? k->bytes : 0;
}

/* Unlink e (kept, hashed to h) from k. */
static void keep_unlink(cb_batch_keep *k, job_entry *e, uint64_t h)
{
    (void)cb_map_take(&k->jobs, h);
    if (e->older)
        e->older->newer = e->newer;
    else
        k->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        k->newest = e->older;
    e->older = e->newer = NULL;
    k->n--;
    k->bytes -= e->bytes;
}

/* The kept job `key` (hash h), taken out of k; NULL if not kept. */
static job_entry *keep_take(cb_batch_keep *k, const char *key, size_t klen, uint64_t h)
{
    job_entry *e = k ? cb_map_get(&k->jobs, h) : NULL;
    if (!e || e->klen != klen || memcmp(e->key, key, klen) != 0)
        return NULL;
    keep_unlink(k, e, h);
    return e;
}

typedef struct trim_ctx {
    job_entry *e;
    cb_map open; /* the tasks that stay */
} trim_ctx;

/* Keep an open task, free a closed one (or one the map cannot take: its
 * record is stored, a later batch reads it again). */
static void trim_task(uint64_t idx, void *val, void *arg)
{
    trim_ctx *t = arg;
    cb_task_state *ts = val;
    if (cb_layout_task_open(ts->status) && cb_map_put(&t->open, idx, ts) == CB_OK)
        t->e->bytes += CB_BATCH_KEEP_TASK_BYTES;
    else
        free_task(idx, ts, NULL);
}

/* Leave e with its open tasks only. */
static void trim_tasks(job_entry *e)
{
    trim_ctx t = {.e = e};
    cb_map_init(&t.open);
    cb_map_each(&e->tasks, trim_task, &t);
    cb_map_cleanup(&e->tasks);
    e->tasks = t.open;
}

/* Give e (committed, out of its batch) to k as its newest job, or free it
 * when it ended or k cannot take it; the oldest go when k is over bounds. */
static void keep_put(cb_batch_keep *k, job_entry *e)
{
    uint64_t h = cb_hash64(e->key, e->klen);
    job_entry *old;
    if (!k || cb_job_terminal(e->js.status) || e->js.status == CB_JOB_ABSENT) {
        entry_free(e);
        return;
    }
    e->b = NULL;
    e->dirty = false;
    e->next_dirty = NULL;
    cb_map_cleanup(&e->dirty_tasks);
    cb_map_init(&e->dirty_tasks);
    e->bytes = e->record;
    trim_tasks(e);
    if (e->bytes > k->max_bytes) {
        entry_free(e);
        return;
    }
    if ((old = cb_map_get(&k->jobs, h))) { /* another job of the same hash: the newer stays */
        keep_unlink(k, old, h);
        entry_free(old);
    }
    e->next_same_hash = NULL;
    if (cb_map_put(&k->jobs, h, e) != CB_OK) {
        entry_free(e);
        return;
    }
    e->older = k->newest;
    e->newer = NULL;
    if (k->newest)
        k->newest->newer = e;
    else
        k->oldest = e;
    k->newest = e;
    k->n++;
    k->bytes += e->bytes;
    while (k->n > k->max_jobs || k->bytes > k->max_bytes) {
        old = k->oldest;
        keep_unlink(k, old, cb_hash64(old->key, old->klen));
        entry_free(old);
    }
}

static void keep_chain(uint64_t key, void *val, void *arg)
{
    (void)key;
    for (job_entry *e = val, *next; e; e = next) {
        next = e->next_same_hash;
        keep_put(arg, e);
    }
}

/* ---- a batch ---------------------------------------------------------------- */

static cb_status get_job(cb_batch *b, const char *key, job_entry **out)
{
    size_t klen = strlen(key);
    uint64_t h = cb_hash64(key, klen);
    job_entry *head = cb_map_get(&b->jobs, h), *e;
    json_t *o = NULL;
    cb_status s;

    for (e = head; e; e = e->next_same_hash)
        if (e->klen == klen && memcmp(e->key, key, klen) == 0) {
            *out = e;
            return CB_OK;
        }
    if ((e = keep_take(b->keep, key, klen, h))) {
        e->b = b;
        e->next_same_hash = head;
        if ((s = cb_map_put(&b->jobs, h, e)) != CB_OK) {
            entry_free(e);
            return s;
        }
        *out = e;
        return CB_OK;
    }
    if (klen >= CB_JOB_KEY_MAX || !(e = cb_calloc(1, sizeof *e)))
        return klen >= CB_JOB_KEY_MAX ? CB_EINVAL : CB_ENOMEM;
    memcpy(e->key, key, klen + 1);
    e->klen = klen;
    e->b = b;
    cb_map_init(&e->tasks);
    cb_map_init(&e->dirty_tasks);
    s = cb_layout_load_json(b->txn, CB_DB_JOBS, key, klen, &o);
    if (s == CB_OK) {
        s = cb_job_state_from_json(o, &e->js);
        json_decref(o);
    } else if (s == CB_ENOTFOUND) {
        s = CB_OK;
    }
    if (s == CB_OK) {
        e->next_same_hash = head;
        s = cb_map_put(&b->jobs, h, e);
    }
    if (s != CB_OK) {
        entry_free(e);
        return s;
    }
    *out = e;
    return CB_OK;
}

cb_status cb_batch_begin(cb_store *st, cb_batch_keep *keep, cb_batch **out)
{
    cb_batch *b = cb_calloc(1, sizeof *b);
    cb_status s;
    if (!b)
        return CB_ENOMEM;
    cb_map_init(&b->jobs);
    b->keep = keep;
    if ((s = cb_store_begin(st, 0, &b->txn)) != CB_OK) {
        cb_free(b);
        return s;
    }
    *out = b;
    return CB_OK;
}

/* The memo entries of ev's successes that carry a memo key (a cached job's
 * tasks, layout.h): the task that now holds that output, and when. */
static cb_status remember_memos(cb_batch *b, job_entry *e, const cb_event *ev)
{
    for (size_t i = 0, n = cb_event_outcomes(ev); i < n; i++) {
        cb_event one;
        const cb_event *p = cb_event_outcome(ev, i, &one);
        cb_outcome_msg m;
        const cb_task_state *t;
        char key[CB_MEMO_KEY_MAX], val[CB_JOB_KEY_MAX + 96], at[40];
        size_t klen;
        int vlen;
        if (!json_object_get(p->data, "memo") || cb_outcome_parse(p->data, &m) != CB_OK ||
            !(t = cb_map_get(&e->tasks, m.task)) || t->status != CB_TASK_SUCCEEDED ||
            t->attempt != m.attempt || !(klen = cb_layout_memo_key(ev->tenant, m.memo, key)))
            continue;
        vlen = snprintf(val, sizeof val, "{\"at\":\"%s\",\"job\":\"%s\",\"task\":%u}",
                        cb_time_format(ev->time_ns, at, sizeof at), ev->job, m.task);
        if (vlen > 0 && (size_t)vlen < sizeof val) {
            cb_status s = cb_store_put(b->txn, CB_DB_MEMO, key, klen, val, (size_t)vlen);
            if (s != CB_OK)
                return s;
        }
    }
    return CB_OK;
}

/* Add c to the batch's delta for key kind/name. */
static cb_status cost_into(cb_batch *b, const char *kind, const char *name, const cb_cost *c)
{
    char key[CB_COST_KEY_MAX];
    size_t klen = cb_layout_cost_key(kind, name, key);
    cost_delta *d;
    if (!klen)
        return CB_OK; /* a name too long for a key: no total (the schema forbids it) */
    for (d = b->costs; d; d = d->next)
        if (d->klen == klen && !memcmp(d->key, key, klen))
            break;
    if (!d) {
        if (!(d = cb_calloc(1, sizeof *d)))
            return CB_ENOMEM;
        memcpy(d->key, key, klen);
        d->klen = klen;
        d->next = b->costs;
        b->costs = d;
    }
    cb_cost_add(&d->cost, c);
    return CB_OK;
}

/* The cost the fold counted for ev (the job's total before it: was), to
 * the tenant's and the account's totals: the adapter's that reported it
 * (the event's source). */
static cb_status count_costs(cb_batch *b, const cb_event *ev, const cb_cost *was,
                             const cb_cost *now)
{
    cb_cost d = {now->invocations - was->invocations, now->mb_ms - was->mb_ms,
                 now->nanos - was->nanos};
    char backend[CB_NAME_MAX + 1];
    cb_status s;
    if (cb_cost_none(&d))
        return CB_OK;
    if ((s = cost_into(b, "tenant", ev->tenant, &d)) != CB_OK)
        return s;
    return cb_event_source_backend(ev->source, backend, sizeof backend)
               ? cost_into(b, "backend", backend, &d)
               : CB_OK;
}

/* The batch's cost deltas onto the stored totals. */
static cb_status write_costs(cb_batch *b)
{
    for (cost_delta *d = b->costs; d; d = d->next) {
        cb_cost total = {0};
        json_t *o = NULL;
        char *text;
        cb_status s = cb_layout_load_json(b->txn, CB_DB_COSTS, d->key, d->klen, &o);
        if (s == CB_OK && cb_cost_parse(o, &total) != CB_OK)
            memset(&total, 0, sizeof total); /* unreadable: it starts again */
        json_decref(o);
        if (s != CB_OK && s != CB_ENOTFOUND && s != CB_EIO)
            return s;
        cb_cost_add(&total, &d->cost);
        if (!(text =
                  cb_json_dumps(o = cb_cost_record_json(&total), JSON_COMPACT | JSON_SORT_KEYS))) {
            json_decref(o);
            return CB_ENOMEM;
        }
        json_decref(o);
        s = cb_store_put(b->txn, CB_DB_COSTS, d->key, d->klen, text, strlen(text));
        free(text);
        if (s != CB_OK)
            return s;
    }
    return CB_OK;
}

/* Partition k's fence as this batch sees it (read once from the store). */
static cb_status fence_of(cb_batch *b, unsigned k, cb_fence **out)
{
    cb_status s = CB_OK;
    if (!(b->fence_loaded >> k & 1) && (s = cb_layout_load_fence(b->txn, k, &b->fence[k])) == CB_OK)
        b->fence_loaded |= 1ULL << k;
    *out = &b->fence[k];
    return s;
}

/* A claim (folded into the partition's fence), or an event the fence does
 * not admit: counted and skipped (*done); CB_EINVAL for a claim that is not
 * one of this partition. */
static cb_status fence_event(cb_batch *b, unsigned partition, const cb_event *ev, uint64_t seq,
                             bool *done)
{
    cb_fence *f;
    cb_status s;
    *done = false;
    if (ev->type != CB_EV_PARTITION_CLAIMED && !cb_fence_claim_of(ev->source))
        return CB_OK; /* nothing to fence: the common case costs a compare */
    if ((s = fence_of(b, partition, &f)) != CB_OK)
        return s;
    if (ev->type == CB_EV_PARTITION_CLAIMED) {
        *done = true;
        b->stats.events++;
        if (seq)
            b->last_seq = seq;
        if ((s = cb_fence_claim(f, ev, partition)) != CB_OK) {
            if (++b->stats.invalid <= 3)
                CB_LOG_WRN(MOD, "claim %s is not one of partition %u", ev->id, partition);
            return CB_EINVAL;
        }
        b->fence_new |= 1ULL << partition;
        b->stats.applied++;
        CB_LOG_INF(MOD, "partition %u claimed by %s", partition, f->claim);
        return CB_OK;
    }
    if (cb_fence_admits(f, ev))
        return CB_OK;
    *done = true;
    b->stats.events++;
    b->stats.fenced++;
    if (seq)
        b->last_seq = seq;
    if (b->stats.fenced <= 3)
        cb_log_job(CB_LOG_WARN, MOD, ev->tenant, ev->job,
                   "%s (%s) ignored: from %s, partition %u is %s's since its claim", ev->id,
                   cb_event_type_name(ev->type), ev->source, partition, f->claim);
    return CB_OK;
}

cb_status cb_batch_apply(cb_batch *b, unsigned partition, const cb_event *ev, uint64_t seq,
                         int *applied)
{
    char key[CB_JOB_KEY_MAX];
    job_entry *e = NULL;
    cb_fold_tasks tasks;
    cb_status s;
    bool fenced = false;

    *applied = 0;
    if (partition >= CB_PARTITIONS_MAX)
        return CB_EINVAL;
    if ((s = fence_event(b, partition, ev, seq, &fenced)) != CB_OK || fenced)
        return s;
    if (cb_job_key(ev->tenant, ev->job, key, sizeof key) != 0)
        return CB_EINVAL;
    if (!cb_fold_in_partition(ev, partition)) {
        b->stats.events++;
        if (++b->stats.invalid <= 3)
            cb_log_job(CB_LOG_WARN, MOD, ev->tenant, ev->job,
                       "submission %s is in the log of partition %u, not the one it records",
                       ev->id, partition);
        if (seq)
            b->last_seq = seq;
        return CB_EINVAL;
    }
    if ((s = get_job(b, key, &e)) != CB_OK)
        return s;
    tasks.get = get_task;
    tasks.arg = e;
    cb_cost was = e->js.cost;
    s = cb_fold_apply(&e->js, &tasks, ev, seq, applied);
    if (s == CB_ENOMEM)
        return s;
    if (count_costs(b, ev, &was, &e->js.cost) != CB_OK)
        return CB_ENOMEM;
    b->stats.events++;
    if (s == CB_EINVAL) {
        if (++b->stats.invalid <= 3)
            cb_log_job(CB_LOG_WARN, MOD, ev->tenant, ev->job, "event %s (%s) lacks required data",
                       ev->id, cb_event_type_name(ev->type));
    } else if (*applied) {
        b->stats.applied++;
        if ((ev->type == CB_EV_TASK_SUCCEEDED || ev->type == CB_EV_TASKS_SUCCEEDED) &&
            (s = remember_memos(b, e, ev)) != CB_OK)
            return s;
    } else {
        b->stats.ignored++;
    }
    if (!e->dirty && (*applied || e->js.status != CB_JOB_ABSENT)) {
        e->dirty = true; /* counters moved even when ignored */
        e->next_dirty = b->dirty;
        b->dirty = e;
    }
    if (seq)
        b->last_seq = seq;
    return CB_OK;
}

cb_status cb_batch_apply_raw(cb_batch *b, unsigned partition, const void *data, size_t len,
                             uint64_t seq)
{
    cb_event ev;
    char err[256];
    int applied;
    cb_status s = cb_event_decode(data, len, &ev, err, sizeof err);

    if (s == CB_ENOMEM)
        return s;
    if (s != CB_OK) {
        b->stats.events++;
        /* A flood of garbage must not flood the log: the first few per batch. */
        if (++b->stats.invalid <= 3)
            CB_LOG_WRN(MOD, "skipping log entry %llu: %s", (unsigned long long)seq, err);
        if (seq)
            b->last_seq = seq;
        return CB_OK;
    }
    s = cb_batch_apply(b, partition, &ev, seq, &applied);
    cb_event_cleanup(&ev);
    return s == CB_EINVAL ? CB_OK : s;
}

const cb_batch_stats *cb_batch_stats_get(const cb_batch *b)
{
    return &b->stats;
}

json_t *cb_batch_changed_jobs(const cb_batch *b)
{
    json_t *a = json_array();
    for (job_entry *e = b->dirty; a && e; e = e->next_dirty)
        json_array_append_new(a, json_stringn(e->key, e->klen));
    return a;
}

/* Store o (taken) as text; its length in *size. */
static cb_status put_json(cb_txn *t, cb_db db, const void *key, size_t klen, json_t *o,
                          size_t *size)
{
    char *s;
    cb_status st;
    if (!o)
        return CB_ENOMEM;
    s = cb_json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!s)
        return CB_ENOMEM;
    *size = strlen(s);
    st = cb_store_put(t, db, key, klen, s, *size);
    free(s);
    return st;
}

/* The record into tasks, and into open while the task is open. */
/* The open database is an index (empty values): written only when a task
 * opens or closes, so a batch dirties few of its pages. */
static cb_status index_open(cb_txn *txn, const void *key, size_t klen, bool open)
{
    const void *v;
    size_t vlen;
    cb_status g = cb_store_get(txn, CB_DB_OPEN, key, klen, &v, &vlen);
    if (g != CB_OK && g != CB_ENOTFOUND)
        return g;
    if (open)
        return g == CB_OK ? CB_OK : cb_store_put(txn, CB_DB_OPEN, key, klen, "", 0);
    return g == CB_OK ? cb_store_del(txn, CB_DB_OPEN, key, klen) : CB_OK;
}

static cb_status put_task(cb_batch *b, const unsigned char *key, size_t klen,
                          const cb_task_state *t)
{
    cb_status st;
    b->text.len = 0; /* one buffer for the whole commit */
    b->text.failed = 0;
    st = cb_task_state_text(t, &b->text);
    if (st == CB_OK)
        st = cb_store_put(b->txn, CB_DB_TASKS, key, klen, b->text.p, b->text.len);
    return st == CB_OK ? index_open(b->txn, key, klen, cb_layout_task_open(t->status)) : st;
}

typedef struct write_ctx {
    job_entry *e;
    cb_status s;
} write_ctx;

static void write_task(uint64_t idx, void *val, void *arg)
{
    write_ctx *w = arg;
    cb_task_state *t = cb_map_get(&w->e->tasks, idx);
    unsigned char key[CB_TASK_KEY_MAX];
    (void)val;
    /* a pending task has no record, unless a report it ignored cost something */
    if (w->s != CB_OK || !t || (t->status == CB_TASK_PENDING && cb_cost_none(&t->cost)))
        return;
    w->s = put_task(w->e->b, key, task_key(w->e, (uint32_t)idx, key), t);
}

/* The job's deadline (submission + timeout_ms), 0 if none: stored in
 * `active` so the long loop finds late jobs without reading every job. */
static int64_t job_deadline(const cb_job_state *js)
{
    json_t *t = json_object_get(js->spec, "timeout_ms");
    if (!json_is_integer(t) || !js->submitted_ns)
        return 0;
    return js->submitted_ns + json_integer_value(t) * 1000000;
}

static cb_status write_entry(cb_batch *b, job_entry *e)
{
    write_ctx w = {e, CB_OK};
    cb_status s =
        put_json(b->txn, CB_DB_JOBS, e->key, e->klen, cb_job_state_to_json(&e->js), &e->record);
    if (s != CB_OK)
        return s;
    if (cb_job_terminal(e->js.status)) {
        s = cb_store_del(b->txn, CB_DB_ACTIVE, e->key, e->klen);
    } else {
        char when[32];
        int n = snprintf(when, sizeof when, "%lld", (long long)job_deadline(&e->js));
        s = cb_store_put(b->txn, CB_DB_ACTIVE, e->key, e->klen, when, (size_t)n);
    }
    if (s != CB_OK)
        return s;
    cb_map_each(&e->dirty_tasks, write_task, &w);
    return w.s;
}

static void batch_free(cb_batch *b)
{
    while (b->costs) {
        cost_delta *d = b->costs;
        b->costs = d->next;
        cb_free(d);
    }
    cb_map_each(&b->jobs, free_chain, NULL);
    cb_map_cleanup(&b->jobs);
    cb_buf_cleanup(&b->text);
    cb_free(b);
}

cb_status cb_batch_commit(cb_batch *b, uint64_t applied_seq)
{
    cb_status s = CB_OK;
    for (job_entry *e = b->dirty; e && s == CB_OK; e = e->next_dirty)
        s = write_entry(b, e);
    if (s == CB_OK)
        s = write_costs(b);
    b->pos[0] = applied_seq;
    for (unsigned k = 0; k < CB_PARTITIONS_MAX && s == CB_OK; k++) {
        char key[CB_LAYOUT_POSITION_KEY_MAX];
        if (b->fence_new >> k & 1)
            s = cb_store_put(b->txn, CB_DB_META, key, cb_layout_claim_key(k, key),
                             b->fence[k].claim, strlen(b->fence[k].claim));
    }
    for (unsigned k = 0; k < CB_PARTITIONS_MAX && s == CB_OK; k++) {
        char buf[32], key[CB_LAYOUT_POSITION_KEY_MAX];
        size_t klen;
        int n;
        if (!b->pos[k])
            continue;
        n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)b->pos[k]);
        klen = cb_layout_position_key(k, key);
        s = cb_store_put(b->txn, CB_DB_META, key, klen, buf, (size_t)n);
    }
    if (s == CB_OK)
        s = cb_store_commit(b->txn);
    else
        cb_store_abort(b->txn);
    if (s == CB_OK && b->keep) { /* stored: the jobs go to the keep as they are */
        cb_map_each(&b->jobs, keep_chain, b->keep);
        cb_map_cleanup(&b->jobs);
        cb_map_init(&b->jobs);
    }
    batch_free(b);
    return s;
}

void cb_batch_position(cb_batch *b, unsigned partition, uint64_t seq)
{
    if (partition && partition < CB_PARTITIONS_MAX)
        b->pos[partition] = seq;
}

void cb_batch_abort(cb_batch *b)
{
    if (!b)
        return;
    cb_store_abort(b->txn);
    batch_free(b);
}
