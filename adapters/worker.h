/* adapters/worker.h - the adapter worker: a competing consumer of
 * cb.invoke.<backend> that runs each invocation on its backend and records
 * the outcome in the log.
 *
 * A command carries one task or several of one job (cb_msg_invoke.h); each
 * runs as its own invocation with its own outcome, and the command is acked
 * once every one of them is confirmed (given back whole if one is not: the
 * others' outcomes are absorbed as repeats when it runs again). A throttled
 * task runs again in place after the backend's delay.
 *
 * Per task: invoke; if it is still running after started_after_ms,
 * append cb.task.started (a quick invocation goes from dispatched straight to
 * its outcome: one event less per task); then append cb.task.succeeded or
 * cb.task.failed (ids "<tenant>/<job>/<task>/<attempt>/<what>", so a repeat
 * is absorbed) — successes of one command that come together (linger_ms)
 * share one cb.tasks.succeeded event ("<first's>/succeeded+<n>") —, and
 * ack the command only once that append is confirmed; if
 * it is not, the command is given back and runs again (at least once; the
 * fold applies one outcome per attempt). While a command's tasks run its
 * lease is extended, so it is not redelivered. Throttling answers record no
 * failure.
 *
 * Threading: the caller's loop; not thread-safe. */
#ifndef CB_WORKER_H
#define CB_WORKER_H
#include <stdint.h>

#include "broker.h"
#include "cb_hist.h"
#include "cb_schema.h"
#include "cb_status.h"
#include "cb_config.h"

struct event_base;
typedef struct cb_worker cb_worker;

/* The lease of a command: a running invocation renews it every third of it
 * (NATS: an in-progress ack, the worker's heartbeat per command), so a worker
 * that dies holding commands costs at most this long before the broker
 * gives them to another (RabbitMQ: at once, when the connection drops). */
#define CB_WORKER_LEASE_MS 5000

/* How long a success waits for the other tasks of its command before its
 * outcome is appended: successes that come together share one event
 * (cb.tasks.succeeded), appended once the command has no task left that
 * may still succeed, or this long after the first of them. */
#define CB_WORKER_LINGER_MS 5

typedef struct cb_worker_opts {
    const char *backend;        /* "local", ... */
    const char *id;             /* this worker's name in events; default "<host>-<pid>" */
    int concurrency;            /* tasks invoking at once (the rest of the commands'
                                 * tasks wait in the worker, in order), and commands
                                 * held at once; default 64 */
    int64_t lease_ms;           /* default CB_WORKER_LEASE_MS */
    int64_t started_after_ms;   /* record cb.task.started only for invocations still
                                 * running after this long; default 50 (0: always) */
    int64_t linger_ms;          /* default CB_WORKER_LINGER_MS; 0: every success alone */
    struct cb_storage *storage; /* borrowed, outlives the worker: outputs over its inline
                                 * limit go there (spill.h); NULL: they fail as oversize */
} cb_worker_opts;

typedef struct cb_worker_stats {
    uint64_t received, succeeded, failed, throttled, invalid, redelivered;
    uint64_t tasks;         /* the tasks of the commands received (a command carries one or more) */
    int running;            /* tasks not settled */
    cb_hist duration;       /* from a command's delivery to its outcome appended (seconds) */
    cb_hist since_dispatch; /* from the command's publication (the dispatch) to its outcome
                             * appended, when the broker gives its time */
} cb_worker_stats;

void cb_worker_opts_init(cb_worker_opts *o);
/* Start consuming. `b`, `reg` and `schema` are borrowed and outlive the
 * worker. On failure err says why. On CB_OK *out is owned: cb_worker_free().
 * Errors: CB_ENOTFOUND (no such backend), broker errors. */
CB_NODISCARD cb_status cb_worker_start(struct event_base *base, cb_broker *b, const cb_config *reg,
                                       const cb_schema *schema, const cb_worker_opts *o,
                                       cb_worker **out, char *err, size_t errlen);
/* Graceful stop: take no new command (those delivered now are given back at
 * once), let running invocations and the tasks waiting for a slot finish
 * for up to grace_ms, then give back the rest and call done(ctx) on the
 * loop. Call once. */
void cb_worker_stop(cb_worker *w, int64_t grace_ms, void (*done)(void *ctx), void *ctx);
const cb_worker_stats *cb_worker_stats_get(const cb_worker *w);
/* Close the consumer (unfinished commands are given back), stop the backend,
 * free. Accepts NULL. */
void cb_worker_free(cb_worker *w);

#endif /* CB_WORKER_H */
