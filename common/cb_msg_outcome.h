/* common/cb_msg_outcome.h - the data of an invocation's outcome events
 * (schemas/event.json): cb.task.started, cb.task.succeeded, cb.task.failed.
 * Built by the adapter worker, parsed by the projector's fold. The only code
 * that knows their fields.
 *
 *   started:   {"task", "attempt", "step"?, "worker"}
 *   succeeded: {"task", "attempt", "step"?, "output", "throttled"?, "duration_ms",
 *               "memo"?, "cost"?}; the engine's memoized success instead of an invocation:
 *              {"task", "attempt", "step"?, "output", "memoized": {"job", "task"}}
 *   several succeeded (cb.tasks.succeeded): {"tasks": [succeeded, ...]}, 2 to
 *   CB_OUTCOME_BATCH_MAX of one command
 *   failed:    {"task", "attempt", "step"?, "error", "reason", "stderr"?,
 *               "throttled"?, "duration_ms", "cost"?}
 *   "cost": what the invocation cost, [mb_ms, nanos] (cb_cost.h), on the
 *   account the event's source names (cb_event_source_backend)
 *
 * Text a function wrote (its error, its stderr) is cut to the schema's limits
 * (error: 4095 bytes; stderr: its last 8191) and scrubbed to UTF-8, so an
 * outcome is never lost to a byte a child printed.
 *
 * Ownership: a cb_outcome_msg borrows every pointer. Pure; thread-safe. */
#ifndef CB_MSG_OUTCOME_H
#define CB_MSG_OUTCOME_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cb_cost.h"
#include "cb_status.h"

#define CB_OUTCOME_MAX_ERROR  4096 /* bytes kept of an error, with the NUL */
#define CB_OUTCOME_MAX_STDERR 8192 /* bytes kept of stderr's tail, with the NUL */

typedef struct cb_outcome_msg {
    uint32_t task, attempt;
    const char *step;         /* a DAG step's name, or NULL */
    const char *worker;       /* started: the worker's id */
    const json_t *output;     /* succeeded: the outputs (array, one per item) */
    const char *error;        /* failed: one line */
    const char *reason;       /* failed: cb_fail_reason_name() */
    const char *stderr_tail;  /* failed: or NULL */
    uint32_t throttled;       /* throttling answers retried inside the invocation */
    int64_t duration_ms;      /* -1: absent */
    const char *memo;         /* succeeded: the command's memo key, or NULL */
    const char *memoized_job; /* succeeded by the engine: the task whose output it took */
    uint32_t memoized_task;
    bool billed;  /* an invocation was made: `cost` is what it cost */
    cb_cost cost; /* one invocation */
} cb_outcome_msg;

/* The event data as a new JSON object, or NULL (out of memory). */
json_t *cb_outcome_started(const cb_outcome_msg *m);
json_t *cb_outcome_succeeded(const cb_outcome_msg *m);
json_t *cb_outcome_failed(const cb_outcome_msg *m);

#define CB_OUTCOME_BATCH_MAX 64 /* successes in one cb.tasks.succeeded event */

/* The data of a cb.tasks.succeeded event holding each[0..n) (succeeded
 * data; referenced, not stolen), or NULL (out of memory, n out of 2..max). */
json_t *cb_outcome_batch(json_t *const *each, size_t n);

/* Read an outcome event's data (any of the three; fields a kind does not
 * have stay NULL/0/-1). CB_EINVAL when task or attempt is missing or out of
 * range. */
CB_NODISCARD cb_status cb_outcome_parse(const json_t *data, cb_outcome_msg *m);

#endif /* CB_MSG_OUTCOME_H */
