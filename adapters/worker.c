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

typedef struct run run;

struct cb_worker {
    struct event_base *base;
    cb_broker *b;
    const cb_schema *schema;
    const cb_backend_ops *ops;
    void *be;
    struct cb_storage *storage; /* borrowed: where large outputs go, or NULL */
    cb_consumer *consumer;
    char id[128], source[192], subject[160];
    int64_t lease_ms, started_after_ms;
    run *runs; /* every run not yet settled */
    cb_worker_stats stats;
    int stopping, hard;
    struct event *grace;
    void (*stop_done)(void *ctx);
    void *stop_ctx;
};

struct run {
    cb_worker *w; /* NULL once orphaned by cb_worker_free */
    cb_work *work;
    json_t *cmd;              /* the command's document (owned) */
    cb_invoke_msg m;          /* borrows from cmd */
    const char *tenant, *job; /* borrowed from cmd */
    uint32_t task, attempt;
    int64_t t0;
    int64_t dispatched_ns; /* the command's publication (broker time), 0 if unknown */
    uint32_t throttled;    /* kept while the outputs go to storage */
    int64_t duration_ms;
    struct event *progress; /* first: record the start; then: extend the lease */
    int started, appending;
    run *prev, *next;
};

void cb_worker_opts_init(cb_worker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = "local";
    o->concurrency = 64;
    o->lease_ms = CB_WORKER_LEASE_MS;
    o->started_after_ms = 50;
}

const cb_worker_stats *cb_worker_stats_get(const cb_worker *w)
{
    return &w->stats;
}

static void maybe_stopped(cb_worker *w);

static void run_unlink(run *r)
{
    cb_worker *w = r->w;
    if (!w)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        w->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    w->stats.running--;
}

static void run_free(run *r)
{
    if (r->progress)
        event_free(r->progress);
    json_decref(r->cmd);
    free(r);
}

/* The run is settled (acked or given back): forget it. */
static void run_end(run *r)
{
    cb_worker *w = r->w;
    run_unlink(r);
    run_free(r);
    if (w)
        maybe_stopped(w);
}

static void event_id(const run *r, const char *what, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s/%u/%u/%s", r->tenant, r->job, r->task, r->attempt, what);
}

static void arm(run *r, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(r->progress, &tv);
}

/* The outcome fields every event of this run has. */
static cb_outcome_msg outcome_msg(const run *r)
{
    cb_outcome_msg m;
    memset(&m, 0, sizeof m);
    m.task = r->task;
    m.attempt = r->attempt;
    m.step = r->m.step;
    m.duration_ms = -1;
    return m;
}

static void record_started(run *r)
{
    char id[512];
    cb_status s;
    r->started = 1;
    event_id(r, "started", id, sizeof id);
    cb_outcome_msg m = outcome_msg(r);
    m.worker = r->w->id;
    s = cb_emit(r->w->b, CB_EV_TASK_STARTED, r->tenant, r->job, id, r->w->source,
                cb_outcome_started(&m), NULL, NULL);
    if (s != CB_OK)
        cb_log_job(CB_LOG_WARN, "worker", r->tenant, r->job, "cannot record task.started: %s",
                   cb_strerror(s));
}

/* The run's timer: the start once it has run started_after_ms, then the
 * lease every lease/3. */
static void progress_cb(evutil_socket_t fd, short what, void *arg)
{
    run *r = arg;
    int64_t every = r->w->lease_ms / 3 > 0 ? r->w->lease_ms / 3 : 1;
    (void)fd;
    (void)what;
    if (!r->started) {
        record_started(r);
        every -= r->w->started_after_ms; /* the lease runs from the delivery */
        arm(r, every > 0 ? every : 1);
        return;
    }
    if (r->work)
        cb_work_progress(r->work);
    arm(r, every);
}

/* ---- recording the outcome ------------------------------------------------- */

static void outcome_confirmed(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    run *r = ctx;
    (void)seq;
    (void)duplicate;
    if (!r->w) { /* the worker is gone; its consumer gave the command back */
        run_free(r);
        return;
    }
    if (s == CB_OK) {
        cb_work_ack(r->work);
    } else {
        cb_log_job(CB_LOG_WARN, "worker", r->tenant, r->job,
                   "task %u attempt %u: outcome not confirmed (%s); the command runs again",
                   r->task, r->attempt, cb_strerror(s));
        cb_work_nak(r->work, 1000);
    }
    r->work = NULL;
    run_end(r);
}

/* An outcome is appended: into the latency histograms. */
static void observe(run *r)
{
    cb_hist_observe(&r->w->stats.duration, (double)(cb_time_mono_ns() - r->t0) / 1e9);
    if (r->dispatched_ns > 0)
        cb_hist_observe(&r->w->stats.since_dispatch,
                        (double)(cb_time_now_ns() - r->dispatched_ns) / 1e9);
}

static cb_status append_failed(run *r, const char *reason, const char *error, const char *tail,
                               uint32_t throttled)
{
    char id[512];
    cb_outcome_msg m = outcome_msg(r);
    json_t *d;
    m.reason = reason;
    m.error = error;
    m.stderr_tail = tail;
    m.throttled = throttled;
    m.duration_ms = (cb_time_mono_ns() - r->t0) / 1000000;
    if (!(d = cb_secret_redact_json(cb_outcome_failed(&m)))) /* an echoed credential: blanked */
        return CB_ENOMEM;
    event_id(r, "failed", id, sizeof id);
    r->w->stats.failed++;
    observe(r);
    return cb_emit(r->w->b, CB_EV_TASK_FAILED, r->tenant, r->job, id, r->w->source, d,
                   outcome_confirmed, r);
}

/* The outcome could not be recorded: the command goes back. */
static void give_back(run *r, cb_status s)
{
    cb_log_job(CB_LOG_WARN, "worker", r->tenant, r->job,
               "task %u attempt %u: cannot record the outcome (%s); given back", r->task,
               r->attempt, cb_strerror(s));
    cb_work_nak(r->work, 1000);
    r->work = NULL;
    run_end(r);
}

static cb_status record_succeeded(run *r, const json_t *outputs, uint32_t throttled,
                                  int64_t duration_ms)
{
    cb_worker *w = r->w;
    cb_outcome_msg m = outcome_msg(r);
    char id[512];
    json_t *d;
    cb_status s;
    m.output = outputs;
    m.throttled = throttled;
    m.duration_ms = duration_ms;
    d = cb_secret_redact_json(cb_outcome_succeeded(&m));
    event_id(r, "succeeded", id, sizeof id);
    s = d ? cb_emit(w->b, CB_EV_TASK_SUCCEEDED, r->tenant, r->job, id, w->source, d,
                    outcome_confirmed, r)
          : CB_ENOMEM;
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
                          NULL, throttled);
    return s;
}

/* The large outputs are in storage (or could not be stored). */
static void spilled(cb_status st, json_t *outputs, const char *error, void *ctx)
{
    run *r = ctx;
    cb_status s;
    if (!r->w) { /* the worker is gone; its consumer gave the command back */
        json_decref(outputs);
        run_free(r);
        return;
    }
    if (r->progress)
        evtimer_del(r->progress);
    s = st == CB_OK ? record_succeeded(r, outputs, r->throttled, r->duration_ms)
                    : append_failed(r, "output_store", error, NULL, r->throttled);
    json_decref(outputs);
    if (s != CB_OK)
        give_back(r, s);
}

static void invoked(const cb_inv_result *res, void *ctx)
{
    run *r = ctx;
    cb_worker *w = r->w;
    char why[1300];
    cb_status s;

    if (!w) { /* the worker is being freed: nothing to record */
        run_free(r);
        return;
    }
    if (r->progress)
        evtimer_del(r->progress);
    w->stats.throttled += res->throttled;
    if (w->hard || res->reason == CB_FAIL_THROTTLED) {
        /* Stopping past the grace period, or the backend asked to slow down:
         * give the command back; this attempt did not happen. */
        int64_t delay = res->reason == CB_FAIL_THROTTLED
                            ? (res->retry_after_ms > 0 ? res->retry_after_ms : 1000)
                            : 0;
        if (res->reason == CB_FAIL_THROTTLED)
            w->stats.throttled++;
        cb_work_nak(r->work, delay);
        r->work = NULL;
        run_end(r);
        return;
    }
    r->appending = 1;
    if (res->reason == CB_FAIL_NONE && cb_spill_needed(w->storage, res->outputs)) {
        /* outputs too large for the log: to storage first (spill.h) */
        r->throttled = res->throttled;
        r->duration_ms = (cb_time_mono_ns() - r->t0) / 1000000;
        if (cb_spill(w->storage, r->tenant, r->job, r->task, r->attempt, res->outputs, spilled, r,
                     why, sizeof why) == CB_OK) {
            if (r->progress) /* the lease runs on while they are written */
                arm(r, w->lease_ms / 3 > 0 ? w->lease_ms / 3 : 1);
            return;
        }
        s = append_failed(r, "output_store", why, NULL, res->throttled);
    } else if (res->reason == CB_FAIL_NONE) {
        s = record_succeeded(r, res->outputs, res->throttled,
                             (cb_time_mono_ns() - r->t0) / 1000000);
    } else {
        s = append_failed(r, cb_fail_reason_name(res->reason), res->error, res->stderr_tail,
                          res->throttled);
    }
    if (s != CB_OK)
        give_back(r, s);
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
    json_t *cmd;
    cb_invoke_msg im;
    cb_invocation inv;
    run *r;
    cb_status s;

    w->stats.received++;
    if (m->deliveries > 1)
        w->stats.redelivered++;
    if (w->stopping) {
        cb_work_nak(work, 0);
        return;
    }
    if ((s = cb_invoke_msg_parse(w->schema, m->data, m->len, &cmd, &im, why, sizeof why)) !=
        CB_OK) {
        if (s == CB_ENOMEM)
            cb_work_nak(work, 1000);
        else
            drop_invalid(w, work, why);
        return;
    }
    if (!(r = cb_calloc(1, sizeof *r))) {
        json_decref(cmd);
        cb_work_nak(work, 1000);
        return;
    }
    r->w = w;
    r->work = work;
    r->cmd = cmd;
    r->m = im;
    r->tenant = im.tenant;
    r->job = im.job_id;
    r->task = im.task;
    r->attempt = im.attempt;
    r->t0 = cb_time_mono_ns();
    r->dispatched_ns = m->time_ns;
    r->next = w->runs;
    if (w->runs)
        w->runs->prev = r;
    w->runs = r;
    w->stats.running++;
    if (w->started_after_ms <= 0)
        record_started(r);
    if ((r->progress = evtimer_new(w->base, progress_cb, r))) {
        int64_t every = w->lease_ms / 3 > 0 ? w->lease_ms / 3 : 1;
        arm(r, r->started ? every : w->started_after_ms);
    }

    memset(&inv, 0, sizeof inv);
    inv.tenant = r->tenant;
    inv.job = r->job;
    inv.task = r->task;
    inv.attempt = r->attempt;
    inv.function = cb_invoke_msg_function_name(&im);
    inv.spec = im.function;
    inv.items = im.items;
    inv.timeout_ms = cb_invoke_msg_timeout_ms(&im);
    inv.first_item = im.first_item;
    if ((s = w->ops->invoke(w->be, &inv, invoked, r)) != CB_OK) {
        cb_inv_result res = {.reason = CB_FAIL_BACKEND, .error = cb_strerror(s)};
        invoked(&res, r);
    }
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
    w->started_after_ms = o->started_after_ms;
    w->storage = o->storage;
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
    snprintf(w->source, sizeof w->source, "cbcore/adapter/%s/%s", o->backend, w->id);
    snprintf(w->subject, sizeof w->subject, "cb.invoke.%s", o->backend);
    if ((s = w->ops->create(base, reg, o->backend, &w->be, err, errlen)) != CB_OK) {
        free(w);
        return s;
    }
    cb_consume_opts_init(&co);
    co.max_inflight = o->concurrency > 0 ? o->concurrency : 64;
    co.lease_ms = w->lease_ms;
    if ((s = cb_broker_consume(b, w->subject, &co, work_cb, w, &w->consumer)) != CB_OK) {
        snprintf(err, errlen, "cannot consume %s: %s", w->subject, cb_strerror(s));
        w->ops->destroy(w->be);
        free(w);
        return s;
    }
    *out = w;
    return CB_OK;
}

static void maybe_stopped(cb_worker *w)
{
    void (*done)(void *) = w->stop_done;
    if (!w->stopping || w->runs || !done)
        return;
    w->stop_done = NULL;
    cb_consumer_close(w->consumer);
    w->consumer = NULL;
    if (w->grace)
        evtimer_del(w->grace);
    done(w->stop_ctx);
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
    maybe_stopped(w);
}

void cb_worker_stop(cb_worker *w, int64_t grace_ms, void (*done)(void *ctx), void *ctx)
{
    struct timeval tv = {(time_t)(grace_ms / 1000), (suseconds_t)(grace_ms % 1000) * 1000};
    w->stopping = 1;
    w->stop_done = done;
    w->stop_ctx = ctx;
    if ((w->grace = evtimer_new(w->base, grace_cb, w)))
        evtimer_add(w->grace, &tv);
    maybe_stopped(w);
}

void cb_worker_free(cb_worker *w)
{
    if (!w)
        return;
    /* Orphan every run: callbacks still due (backend results, append
     * confirms) free them without touching the worker or their command. */
    for (run *r = w->runs; r; r = r->next) {
        r->w = NULL;
        r->work = NULL;
    }
    for (run *r = w->runs, *next; r; r = next) {
        next = r->next;
        if (!r->appending && !w->be)
            run_free(r); /* no callback will come for it */
    }
    w->runs = NULL;
    cb_consumer_close(w->consumer);
    if (w->be)
        w->ops->destroy(w->be); /* calls `invoked` for each: they free themselves */
    if (w->grace)
        event_free(w->grace);
    free(w);
}
