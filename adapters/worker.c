/* adapters/worker.c - the adapter worker (see worker.h). */
#include "worker.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_secret.h"
#include "cb_msg_invoke.h"
#include "cb_msg_outcome.h"
#include "cb_time.h"
#include "emit.h"
#include "spill.h"

typedef struct cmd cmd;
typedef struct run run;

struct cb_worker {
    struct event_base *base;
    cb_broker *b;
    const cb_schema *schema;
    const cb_backend_ops *ops;
    void *be;
    struct cb_storage *storage; /* borrowed: where large outputs go, or NULL */
    cb_price price;             /* the account's: what an invocation costs */
    cb_consumer *consumer;
    char id[128], source[192], subject[160];
    int64_t lease_ms, started_after_ms, linger_ms;
    int concurrency;         /* tasks invoking at once, at most */
    int active;              /* tasks invoking now (RUN_INVOKING) */
    run *queue, *queue_tail; /* tasks waiting for one of those (RUN_QUEUED), in order */
    struct event *pump;      /* starts queued tasks on the next loop turn */
    cmd *cmds;               /* every command not yet settled */
    cb_worker_stats stats;
    int stopping, hard;
    struct event *grace;
    void (*stop_done)(void *ctx);
    void *stop_ctx;
};

/* Where a task of a command is. */
enum run_state {
    RUN_QUEUED,    /* waits for a free slot (the worker's concurrency) */
    RUN_INVOKING,  /* the backend runs it: `invoked` is due */
    RUN_WAITING,   /* throttled: its timer invokes it again */
    RUN_STORING,   /* its large outputs go to storage: `spilled` is due */
    RUN_HELD,      /* succeeded: its outcome waits to share one event with others of the
                    * command (flush_held) */
    RUN_APPENDING, /* its outcome is appended: `outcome_confirmed` is due */
    RUN_SETTLED,   /* nothing more */
};

struct run {
    cmd *c;
    const cb_invoke_task *t; /* borrowed from c->m */
    enum run_state state;
    int started;
    uint32_t throttled;  /* throttling answers so far */
    int64_t duration_ms; /* kept while the outputs go to storage */
    int64_t invoke_ns;   /* when its last invocation began (monotonic); 0: none did */
    int64_t billed_ms;   /* how long that one ran; -1: not invoked (nothing billed) */
    json_t *held;        /* RUN_HELD and after: its cb.task.succeeded data (owned) */
    struct event *timer; /* the start record after started_after_ms; a throttled retry */
    run *queued_next;    /* RUN_QUEUED: the next in the worker's queue */
};

/* A command and its tasks; acked once every task's outcome is confirmed,
 * given back (all of it) if one could not be recorded. */
struct cmd {
    cb_worker *w; /* NULL once orphaned by cb_worker_free */
    cb_work *work;
    json_t *doc;           /* the command's document (owned) */
    cb_invoke_msg m;       /* borrows from doc */
    int64_t t0;            /* its delivery */
    int64_t dispatched_ns; /* its publication (broker time), 0 if unknown */
    struct event *lease;   /* extends the lease every lease/3 */
    struct event *linger;  /* flushes the held successes linger_ms after the first */
    size_t open;           /* runs not settled */
    int give_back;
    int64_t back_ms;
    cmd *prev, *next;
    run runs[]; /* m.ntasks */
};

void cb_worker_opts_init(cb_worker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = "local";
    o->concurrency = 64;
    o->linger_ms = CB_WORKER_LINGER_MS;
    o->lease_ms = CB_WORKER_LEASE_MS;
    o->started_after_ms = 50;
}

const cb_worker_stats *cb_worker_stats_get(const cb_worker *w)
{
    return &w->stats;
}

static void maybe_stopped(cb_worker *w);

/* Take r out of the worker's queue of tasks waiting for a slot. */
static void unqueue(cb_worker *w, run *r)
{
    run **p = &w->queue, *prev = NULL;
    while (*p && *p != r) {
        prev = *p;
        p = &(*p)->queued_next;
    }
    if (!*p)
        return;
    *p = r->queued_next;
    if (w->queue_tail == r)
        w->queue_tail = prev;
    r->queued_next = NULL;
}

static void cmd_free(cmd *c)
{
    for (size_t i = 0; i < c->m.ntasks; i++) {
        if (c->runs[i].timer)
            event_free(c->runs[i].timer);
        json_decref(c->runs[i].held);
    }
    if (c->lease)
        event_free(c->lease);
    if (c->linger)
        event_free(c->linger);
    json_decref(c->doc);
    free(c);
}

/* A run has nothing more to do; ok 0: its outcome is not recorded, so the
 * command goes back after back_ms. The last one settles the command: acked
 * or given back, forgotten. Returns 1 if the command is freed. */
static int run_settle(run *r, int ok, int64_t back_ms)
{
    cmd *c = r->c;
    cb_worker *w = c->w;
    if (r->state == RUN_QUEUED && w)
        unqueue(w, r);
    r->state = RUN_SETTLED;
    if (r->timer)
        evtimer_del(r->timer);
    if (!ok) {
        c->give_back = 1;
        c->back_ms = back_ms > c->back_ms ? back_ms : c->back_ms;
    }
    if (w)
        w->stats.running--;
    if (--c->open > 0)
        return 0;
    if (w) {
        if (c->give_back)
            cb_work_nak(c->work, c->back_ms);
        else
            cb_work_ack(c->work);
        if (c->prev)
            c->prev->next = c->next;
        else
            w->cmds = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    cmd_free(c);
    if (w)
        maybe_stopped(w);
    return 1;
}

static void event_id(const run *r, const char *what, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s/%u/%u/%s", r->c->m.tenant, r->c->m.job_id, r->t->task, r->t->attempt,
             what);
}

static void arm(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* The outcome fields every event of this run has. */
static cb_outcome_msg outcome_msg(const run *r)
{
    cb_outcome_msg m;
    memset(&m, 0, sizeof m);
    m.task = r->t->task;
    m.attempt = r->t->attempt;
    m.step = r->c->m.step;
    m.duration_ms = -1;
    return m;
}

static void record_started(run *r)
{
    char id[512];
    cb_status s;
    cb_worker *w = r->c->w;
    r->started = 1;
    event_id(r, "started", id, sizeof id);
    cb_outcome_msg m = outcome_msg(r);
    m.worker = w->id;
    s = cb_emit(w->b, r->c->m.partition, CB_EV_TASK_STARTED, r->c->m.tenant, r->c->m.job_id, id,
                w->source, cb_outcome_started(&m), NULL, NULL);
    if (s != CB_OK)
        cb_log_job(CB_LOG_WARN, "worker", r->c->m.tenant, r->c->m.job_id,
                   "cannot record task.started: %s", cb_strerror(s));
}

/* The command's lease, renewed every lease/3 while any of its tasks runs. */
static void lease_cb(evutil_socket_t fd, short what, void *arg)
{
    cmd *c = arg;
    (void)fd;
    (void)what;
    if (c->work)
        cb_work_progress(c->work);
    arm(c->lease, c->w->lease_ms / 3 > 0 ? c->w->lease_ms / 3 : 1);
}

static void run_invoke(run *r);

/* A run's timer: invoke again after a throttle, or record the start. */
static void run_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    run *r = arg;
    (void)fd;
    (void)what;
    if (r->state == RUN_WAITING)
        run_invoke(r);
    else if (r->state == RUN_INVOKING && !r->started)
        record_started(r);
}

/* ---- recording the outcome ------------------------------------------------- */

static void outcome_confirmed(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    run *r = ctx;
    (void)seq;
    (void)duplicate;
    if (r->c->w && s != CB_OK)
        cb_log_job(CB_LOG_WARN, "worker", r->c->m.tenant, r->c->m.job_id,
                   "task %u attempt %u: outcome not confirmed (%s); the command runs again",
                   r->t->task, r->t->attempt, cb_strerror(s));
    run_settle(r, s == CB_OK, 1000); /* orphaned: the consumer gave the command back */
}

/* An outcome is appended: into the latency histograms. */
static void observe(run *r)
{
    cb_worker *w = r->c->w;
    cb_hist_observe(&w->stats.duration, (double)(cb_time_mono_ns() - r->c->t0) / 1e9);
    if (r->c->dispatched_ns > 0)
        cb_hist_observe(&w->stats.since_dispatch,
                        (double)(cb_time_now_ns() - r->c->dispatched_ns) / 1e9);
}

static int64_t run_ms(const run *r)
{
    return (cb_time_mono_ns() - r->c->t0) / 1000000;
}

/* What r's invocation cost (cb_cost.h): its function's memory, else the
 * account's billed size, for as long as it ran. */
static void bill(const run *r, cb_outcome_msg *m)
{
    const cb_worker *w = r->c->w;
    json_int_t mb = json_integer_value(json_object_get(r->c->m.function, "memory_mb"));
    if (r->billed_ms < 0)
        return;
    m->billed = true;
    m->cost = cb_cost_of(&w->price, mb > 0 && mb <= UINT32_MAX ? (uint32_t)mb : 0, r->billed_ms);
}

static cb_status append_failed(run *r, const char *reason, const char *error, const char *tail)
{
    char id[512];
    cb_worker *w = r->c->w;
    cb_outcome_msg m = outcome_msg(r);
    json_t *d;
    bill(r, &m);
    m.reason = reason;
    m.error = error;
    m.stderr_tail = tail;
    m.throttled = r->throttled;
    m.duration_ms = run_ms(r);
    if (!(d = cb_secret_redact_json(cb_outcome_failed(&m)))) /* an echoed credential: blanked */
        return CB_ENOMEM;
    event_id(r, "failed", id, sizeof id);
    w->stats.failed++;
    observe(r);
    r->state = RUN_APPENDING;
    return cb_emit(w->b, r->c->m.partition, CB_EV_TASK_FAILED, r->c->m.tenant, r->c->m.job_id, id,
                   w->source, d, outcome_confirmed, r);
}

/* The outcome could not be recorded: the command goes back. */
static void give_back(run *r, cb_status s)
{
    cb_log_job(CB_LOG_WARN, "worker", r->c->m.tenant, r->c->m.job_id,
               "task %u attempt %u: cannot record the outcome (%s); given back", r->t->task,
               r->t->attempt, cb_strerror(s));
    run_settle(r, 0, 1000);
}

/* Append r's success alone (its held data). */
static cb_status emit_one(run *r)
{
    cb_worker *w = r->c->w;
    char id[512];
    json_t *d = r->held;
    cb_status s;
    r->held = NULL;
    event_id(r, "succeeded", id, sizeof id);
    r->state = RUN_APPENDING;
    s = cb_emit(w->b, r->c->m.partition, CB_EV_TASK_SUCCEEDED, r->c->m.tenant, r->c->m.job_id, id,
                w->source, d, outcome_confirmed, r);
    if (s == CB_OK) {
        w->stats.succeeded++;
        observe(r);
        return CB_OK;
    }
    if (s == CB_ETOOBIG)
        s = append_failed(r, "oversize_output",
                          w->storage ? "the output is larger than the broker's message limit"
                                     : "the output is larger than the broker's message limit "
                                       "(with object storage configured, large outputs go there)",
                          NULL);
    return s;
}

/* The successes of one command appended together (cb.tasks.succeeded). */
typedef struct batch {
    size_t n;
    run *parts[];
} batch;

static void batch_confirmed(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    batch *bt = ctx;
    for (size_t i = 0; i < bt->n; i++) /* the last one may free the command */
        outcome_confirmed(s, seq, duplicate, bt->parts[i]);
    free(bt);
}

/* Append parts[0..n) (n > 1, held) as one event, id "<first's>/succeeded+n". */
static cb_status emit_batch(cmd *c, run *const *parts, json_t *const *datas, size_t n)
{
    cb_worker *w = c->w;
    char id[512];
    batch *bt = malloc(sizeof *bt + n * sizeof(run *));
    json_t *d = bt ? cb_outcome_batch(datas, n) : NULL;
    cb_status s;
    if (!d) {
        free(bt);
        return CB_ENOMEM;
    }
    bt->n = n;
    memcpy(bt->parts, parts, n * sizeof(run *));
    snprintf(id, sizeof id, "%s/%s/%u/%u/succeeded+%zu", c->m.tenant, c->m.job_id,
             parts[0]->t->task, parts[0]->t->attempt, n);
    for (size_t i = 0; i < n; i++)
        parts[i]->state = RUN_APPENDING;
    if ((s = cb_emit(w->b, c->m.partition, CB_EV_TASKS_SUCCEEDED, c->m.tenant, c->m.job_id, id,
                     w->source, d, batch_confirmed, bt)) != CB_OK) {
        for (size_t i = 0; i < n; i++)
            parts[i]->state = RUN_HELD;
        free(bt);
        return s;
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(parts[i]->held);
        parts[i]->held = NULL;
        w->stats.succeeded++;
        observe(parts[i]);
    }
    return CB_OK;
}

_Static_assert(CB_INVOKE_TASKS_MAX <= CB_OUTCOME_BATCH_MAX, "a command's successes fit one event");

/* Append the command's held successes: one event for several, the single
 * form for one; each alone when the batch cannot go (larger than a message,
 * say: then an oversize output fails alone, as it would have). */
static void flush_held(cmd *c)
{
    run *parts[CB_OUTCOME_BATCH_MAX];
    json_t *datas[CB_OUTCOME_BATCH_MAX];
    size_t n = 0;
    cb_status s;
    if (c->linger)
        evtimer_del(c->linger);
    for (size_t i = 0; i < c->m.ntasks; i++)
        if (c->runs[i].state == RUN_HELD) {
            parts[n] = &c->runs[i];
            datas[n++] = c->runs[i].held;
        }
    if (n > 1 && emit_batch(c, parts, datas, n) == CB_OK)
        return;
    /* the command stays while any part is unsettled: only the last may free it */
    for (size_t i = 0; i < n; i++)
        if ((s = emit_one(parts[i])) != CB_OK)
            give_back(parts[i], s);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_held(arg);
}

/* Whether a task of c may still succeed (so that its held ones wait). */
static bool more_to_come(const cmd *c)
{
    for (size_t i = 0; i < c->m.ntasks; i++)
        switch (c->runs[i].state) {
        case RUN_QUEUED:
        case RUN_INVOKING:
        case RUN_WAITING:
        case RUN_STORING:
            return true;
        default:
            break;
        }
    return false;
}

static cb_status record_succeeded(run *r, const json_t *outputs, int64_t duration_ms)
{
    cb_worker *w = r->c->w;
    cmd *c = r->c;
    cb_outcome_msg m = outcome_msg(r);
    m.output = outputs;
    m.throttled = r->throttled;
    m.duration_ms = duration_ms;
    m.memo = r->t->memo; /* a cached job's: later tasks with this key may take the output */
    bill(r, &m);
    if (!(r->held = cb_secret_redact_json(cb_outcome_succeeded(&m))))
        return CB_ENOMEM;
    if (c->m.ntasks == 1 || w->stopping || w->linger_ms <= 0)
        return emit_one(r);
    /* Several tasks of the command: their successes share an event when
     * they come together, within linger_ms of the first. */
    r->state = RUN_HELD;
    if (!more_to_come(c)) {
        flush_held(c);
        return CB_OK;
    }
    if (!c->linger && !(c->linger = evtimer_new(w->base, linger_cb, c)))
        return emit_one(r);
    if (!evtimer_pending(c->linger, NULL))
        arm(c->linger, w->linger_ms);
    return CB_OK;
}

/* The large outputs are in storage (or could not be stored). */
static void spilled(cb_status st, json_t *outputs, const char *error, void *ctx)
{
    run *r = ctx;
    cb_status s;
    if (!r->c->w) { /* the worker is gone; its consumer gave the command back */
        json_decref(outputs);
        run_settle(r, 0, 0);
        return;
    }
    s = st == CB_OK ? record_succeeded(r, outputs, r->duration_ms)
                    : append_failed(r, "output_store", error, NULL);
    json_decref(outputs);
    if (s != CB_OK)
        give_back(r, s);
}

static void invoked(const cb_inv_result *res, void *ctx)
{
    run *r = ctx;
    cb_worker *w = r->c->w;
    char why[1300];
    cb_status s;

    if (!w) { /* the worker is being freed: nothing to record */
        run_settle(r, 0, 0);
        return;
    }
    r->billed_ms = r->invoke_ns ? (cb_time_mono_ns() - r->invoke_ns) / 1000000 : -1;
    if (r->timer)
        evtimer_del(r->timer);
    w->active--; /* its slot is free: a queued task takes it on the next turn */
    if (w->queue && w->pump)
        event_active(w->pump, 0, 0);
    w->stats.throttled += res->throttled;
    r->throttled += res->throttled;
    if (w->hard) { /* stopping past the grace period: this attempt did not happen */
        run_settle(r, 0, 0);
        return;
    }
    if (res->reason == CB_FAIL_THROTTLED) {
        /* The backend asked to slow down: this task runs again after its
         * delay, in place (the command's other tasks go on), or goes back
         * with the command if the worker is stopping. */
        int64_t delay = res->retry_after_ms > 0 ? res->retry_after_ms : 1000;
        w->stats.throttled++;
        r->throttled++;
        if (w->stopping || !r->timer) {
            run_settle(r, 0, delay);
            return;
        }
        r->state = RUN_WAITING;
        arm(r->timer, delay);
        return;
    }
    if (res->reason == CB_FAIL_NONE && cb_spill_needed(w->storage, res->outputs)) {
        /* outputs too large for the log: to storage first (spill.h) */
        r->duration_ms = run_ms(r);
        r->state = RUN_STORING;
        if (cb_spill(w->storage, r->c->m.tenant, r->c->m.job_id, r->t->task, r->t->attempt,
                     res->outputs, spilled, r, why, sizeof why) == CB_OK)
            return; /* the command's lease runs on while they are written */
        s = append_failed(r, "output_store", why, NULL);
    } else if (res->reason == CB_FAIL_NONE) {
        s = record_succeeded(r, res->outputs, run_ms(r));
    } else {
        s = append_failed(r, cb_fail_reason_name(res->reason), res->error, res->stderr_tail);
    }
    if (s != CB_OK)
        give_back(r, s);
}

static void run_invoke(run *r)
{
    cb_worker *w = r->c->w;
    const cb_invoke_msg *im = &r->c->m;
    cb_invocation inv;
    cb_status s;
    if (w->active >= w->concurrency) { /* every slot taken: wait in line */
        r->state = RUN_QUEUED;
        r->queued_next = NULL;
        if (w->queue_tail)
            w->queue_tail->queued_next = r;
        else
            w->queue = r;
        w->queue_tail = r;
        return;
    }
    w->active++;
    if (!r->started && w->started_after_ms <= 0)
        record_started(r); /* it runs from now */
    memset(&inv, 0, sizeof inv);
    inv.tenant = im->tenant;
    inv.job = im->job_id;
    inv.task = r->t->task;
    inv.attempt = r->t->attempt;
    inv.function = cb_invoke_msg_function_name(im);
    inv.spec = im->function;
    inv.items = r->t->items;
    inv.timeout_ms = cb_invoke_msg_timeout_ms(im);
    inv.first_item = r->t->first_item;
    r->state = RUN_INVOKING;
    if (!r->started && r->timer && w->started_after_ms > 0)
        arm(r->timer, w->started_after_ms);
    r->invoke_ns = cb_time_mono_ns();
    if ((s = w->ops->invoke(w->be, &inv, invoked, r)) != CB_OK) {
        r->invoke_ns = 0; /* it did not run: nothing to bill */
        cb_inv_result res = {.reason = CB_FAIL_BACKEND, .error = cb_strerror(s)};
        invoked(&res, r);
    }
}

/* Start queued tasks while slots are free. */
static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_worker *w = arg;
    (void)fd;
    (void)what;
    while (w->queue && w->active < w->concurrency && !w->hard) {
        run *r = w->queue;
        w->queue = r->queued_next;
        if (!w->queue)
            w->queue_tail = NULL;
        r->queued_next = NULL;
        run_invoke(r);
    }
}

/* ---- taking commands ------------------------------------------------------- */

static void drop_invalid(cb_worker *w, cb_work *work, const char *why)
{
    w->stats.invalid++;
    CB_LOG_ERR("worker", "invalid invocation command dropped: %s", why);
    cb_work_ack(work);
}

static void work_cb(cb_work *work, const cb_broker_msg *m, void *ctx)
{
    cb_worker *w = ctx;
    char why[512];
    json_t *doc;
    cb_invoke_msg im;
    cmd *c;
    cb_status s;

    w->stats.received++;
    if (m->deliveries > 1)
        w->stats.redelivered++;
    if (w->stopping) {
        cb_work_nak(work, 0);
        return;
    }
    if ((s = cb_invoke_msg_parse(w->schema, m->data, m->len, &doc, &im, why, sizeof why)) !=
        CB_OK) {
        if (s == CB_ENOMEM)
            cb_work_nak(work, 1000);
        else
            drop_invalid(w, work, why);
        return;
    }
    if (!(c = cb_calloc(1, sizeof *c + im.ntasks * sizeof(run)))) {
        json_decref(doc);
        cb_work_nak(work, 1000);
        return;
    }
    c->m = im;
    c->w = w;
    c->work = work;
    c->doc = doc;
    c->t0 = cb_time_mono_ns();
    c->dispatched_ns = m->time_ns;
    c->open = c->m.ntasks;
    c->next = w->cmds;
    if (w->cmds)
        w->cmds->prev = c;
    w->cmds = c;
    w->stats.tasks += c->m.ntasks;
    w->stats.running += (int)c->m.ntasks;
    if ((c->lease = evtimer_new(w->base, lease_cb, c)))
        arm(c->lease, w->lease_ms / 3 > 0 ? w->lease_ms / 3 : 1);
    for (size_t i = 0; i < c->m.ntasks; i++) {
        run *r = &c->runs[i];
        r->c = c;
        r->t = &c->m.tasks[i];
        r->billed_ms = -1;
        r->timer = evtimer_new(w->base, run_timer_cb, r);
    }
    /* The last run may settle (and free) the command within run_invoke. */
    for (size_t i = 0, n = c->m.ntasks; i < n; i++)
        run_invoke(&c->runs[i]);
}

cb_status cb_worker_start(struct event_base *base, cb_broker *b, const cb_config *reg,
                          const cb_schema *schema, const cb_worker_opts *o, cb_worker **out,
                          char *err, size_t errlen)
{
    cb_worker *w;
    cb_consume_opts co;
    cb_status s;
    char host[64] = "host";

    if (!base || !b || !reg || !schema || !o || !o->backend || !out)
        return CB_EINVAL;
    if (!(w = cb_calloc(1, sizeof *w)))
        return CB_ENOMEM;
    w->base = base;
    w->b = b;
    w->schema = schema;
    w->lease_ms = o->lease_ms > 0 ? o->lease_ms : CB_WORKER_LEASE_MS;
    w->concurrency = o->concurrency > 0 ? o->concurrency : 64;
    w->started_after_ms = o->started_after_ms;
    w->linger_ms = o->linger_ms;
    w->storage = o->storage;
    cb_price_of(reg, o->backend, &w->price);
    if (!cb_config_has_backend(reg, o->backend)) {
        snprintf(err, errlen, "backend \"%s\" is not in the configuration", o->backend);
        free(w);
        return CB_ENOTFOUND;
    }
    if (!(w->ops = cb_backend_find(cb_config_backend_type(reg, o->backend)))) {
        snprintf(err, errlen, "backend \"%s\": no backend type \"%s\" in this build", o->backend,
                 cb_config_backend_type(reg, o->backend));
        free(w);
        return CB_ENOTFOUND;
    }
    gethostname(host, sizeof host - 1);
    if (o->id)
        snprintf(w->id, sizeof w->id, "%s", o->id);
    else
        snprintf(w->id, sizeof w->id, "%s-%d", host, (int)getpid());
    if (cb_event_adapter_source(o->backend, w->id, w->source, sizeof w->source) != 0) {
        snprintf(err, errlen, "backend \"%s\", worker \"%s\": names too long", o->backend, w->id);
        cb_free(w);
        return CB_EINVAL;
    }
    snprintf(w->subject, sizeof w->subject, "cb.invoke.%s", o->backend);
    if (!(w->pump = event_new(base, -1, 0, pump_cb, w))) {
        free(w);
        return CB_ENOMEM;
    }
    if ((s = w->ops->create(base, reg, o->backend, &w->be, err, errlen)) != CB_OK) {
        event_free(w->pump);
        free(w);
        return s;
    }
    cb_consume_opts_init(&co);
    co.max_inflight = o->concurrency > 0 ? o->concurrency : 64;
    co.lease_ms = w->lease_ms;
    if ((s = cb_broker_consume(b, w->subject, &co, work_cb, w, &w->consumer)) != CB_OK) {
        snprintf(err, errlen, "cannot consume %s: %s", w->subject, cb_strerror(s));
        w->ops->destroy(w->be);
        event_free(w->pump);
        free(w);
        return s;
    }
    *out = w;
    return CB_OK;
}

static void maybe_stopped(cb_worker *w)
{
    void (*done)(void *) = w->stop_done;
    if (!w->stopping || w->cmds || !done)
        return;
    w->stop_done = NULL;
    cb_consumer_close(w->consumer);
    w->consumer = NULL;
    if (w->grace)
        evtimer_del(w->grace);
    done(w->stop_ctx);
}

/* Settle every run of `c` in `state` as not done (the command goes back).
 * Returns 1 if that freed the command. */
static int settle_in_state(cmd *c, enum run_state state)
{
    for (size_t i = 0, n = c->m.ntasks; i < n; i++)
        if (c->runs[i].state == state && run_settle(&c->runs[i], 0, 0))
            return 1;
    return 0;
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_worker *w = arg;
    (void)fd;
    (void)what;
    CB_LOG_WRN("worker", "grace period over: giving back %d running invocations", w->stats.running);
    w->hard = 1;
    /* Ends every invocation now; `invoked` gives their commands back. */
    w->ops->destroy(w->be);
    w->be = NULL;
    /* and the tasks still waiting for a slot, which never ran */
    for (cmd *c = w->cmds, *next; c; c = next) {
        next = c->next;
        (void)settle_in_state(c, RUN_QUEUED);
    }
    maybe_stopped(w);
}

void cb_worker_stop(cb_worker *w, int64_t grace_ms, void (*done)(void *ctx), void *ctx)
{
    struct timeval tv = {(time_t)(grace_ms / 1000), (suseconds_t)(grace_ms % 1000) * 1000};
    w->stopping = 1;
    w->stop_done = done;
    w->stop_ctx = ctx;
    /* A throttled task does not wait to run again: its command goes back
     * once its other tasks are settled. Tasks waiting for a slot still run
     * within the grace period (their command was taken). */
    for (cmd *c = w->cmds, *next; c; c = next) {
        next = c->next;
        if (settle_in_state(c, RUN_WAITING))
            continue;
        if (c->linger && evtimer_pending(c->linger, NULL))
            flush_held(c); /* no more waiting for the others */
    }
    if ((w->grace = evtimer_new(w->base, grace_cb, w)))
        evtimer_add(w->grace, &tv);
    maybe_stopped(w);
}

void cb_worker_free(cb_worker *w)
{
    if (!w)
        return;
    /* Orphan every command: callbacks still due (backend results, storage,
     * append confirms) settle their runs without touching the worker or the
     * broker's work; the last one frees the command. */
    for (cmd *c = w->cmds, *next; c; c = next) {
        next = c->next;
        c->w = NULL;
        c->work = NULL;
        if (c->lease)
            event_free(c->lease);
        c->lease = NULL;
        if (c->linger)
            event_free(c->linger);
        c->linger = NULL;
        for (size_t i = 0; i < c->m.ntasks; i++)
            if (c->runs[i].timer) {
                event_free(c->runs[i].timer);
                c->runs[i].timer = NULL;
            }
        /* no callback will come for these */
        if (!settle_in_state(c, RUN_HELD) && !settle_in_state(c, RUN_WAITING) &&
            !settle_in_state(c, RUN_QUEUED) && !w->be)
            (void)settle_in_state(c, RUN_INVOKING);
    }
    w->cmds = NULL;
    w->queue = w->queue_tail = NULL;
    cb_consumer_close(w->consumer);
    if (w->be)
        w->ops->destroy(w->be); /* calls `invoked` for each: they settle themselves */
    if (w->grace)
        event_free(w->grace);
    event_free(w->pump);
    free(w);
}
