/* common/cb_msg_done.h - the done message (schemas/done.json), on
 * cb.done.<tenant>.<job_id>: the last word on a job. Built by the engine
 * (when a job ends, and when a submission is rejected), parsed by clients
 * (cb submit --wait, cb result, cb watch, cb bench). The only code that
 * knows its fields.
 *
 *   {"job_id", "tenant", "status": succeeded|failed|cancelled|rejected,
 *    "result" | "result_ref" ("result_size", "result_sha256"), "failed"?,
 *    "error"?, "errors"?, "counts"?, "timings"?, "cost"?}
 *
 * "cost" (cb_cost.h): what the job's invocations had cost when it ended (an
 * invocation still in flight then is added to the job's record later).
 *
 * A result_ref "s3://..." names one object holding the result's JSON text,
 * result_size bytes with that sha256; a "cb://..." one says the result is
 * assembled from the task records (docs/engine.md, "Completion").
 *
 * Ownership: a cb_done_msg borrows every pointer. Pure; thread-safe. */
#ifndef CB_MSG_DONE_H
#define CB_MSG_DONE_H
#include <jansson.h>
#include <stdint.h>

#include "cb_cost.h"
#include "cb_status.h"

typedef struct cb_done_counts {
    int64_t total, succeeded, failed, retries;
    int64_t memoized; /* succeeded tasks that took an earlier output; "memoized" when > 0 */
} cb_done_counts;

typedef struct cb_done_msg {
    const char *job_id, *tenant;
    const char *status;        /* "succeeded", "failed", "cancelled", "rejected" */
    const json_t *result;      /* succeeded: the result inline, or NULL */
    const char *result_ref;    /* succeeded: where a large result is, or NULL */
    int64_t result_size;       /* an s3:// result_ref's object: its bytes (< 0: absent) */
    const char *result_sha256; /* ... and their sha256 (hex), or NULL */
    const json_t *failed;      /* succeeded with tolerated losses: [{index, error}], or NULL */
    const char *error;         /* failed: why */
    const json_t *errors;      /* rejected: ["path: rule", ...] */
    int has_counts;
    cb_done_counts counts;
    int64_t submitted_ns, started_ns, finished_ns; /* 0: absent */
    double makespan_ms;                            /* < 0: absent */
    int has_cost;
    cb_cost cost;
} cb_done_msg;

/* A message with nothing but its identity and status (counts and timings
 * absent). */
void cb_done_msg_init(cb_done_msg *m, const char *tenant, const char *job_id, const char *status);

/* The message as a new JSON object, or NULL (out of memory). */
json_t *cb_done_msg_build(const cb_done_msg *m);
/* ... as compact text (malloc'd; free()), or NULL. */
char *cb_done_msg_text(const cb_done_msg *m);

/* Read a done message (m borrows from root). CB_EINVAL when job_id, tenant
 * or status is missing. */
CB_NODISCARD cb_status cb_done_msg_parse(const json_t *root, cb_done_msg *m);

#endif /* CB_MSG_DONE_H */
