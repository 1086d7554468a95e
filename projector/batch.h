/* projector/batch.h - fold events into the store, a batch per write
 * transaction: the records a batch touches are loaded once into a working
 * set, folded in memory (fold.h), and written back with `applied_seq` in the
 * same transaction, so a crash never applies an event twice or skips one.
 * Also the read side every other process uses (views of the store).
 * Not thread-safe: one batch at a time per store, on one thread. */
#ifndef CB_BATCH_H
#define CB_BATCH_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_event.h"
#include "cb_status.h"
#include "fold.h"
#include "store.h"

typedef struct cb_batch cb_batch;

typedef struct cb_batch_stats {
    uint64_t events;  /* folded into this batch */
    uint64_t applied; /* changed state */
    uint64_t ignored; /* duplicates, or not applicable to the state */
    uint64_t invalid; /* undecodable or schema-breaking: logged and skipped */
} cb_batch_stats;

/* Begin a batch (a write transaction). On CB_OK *out is owned: end it with
 * cb_batch_commit() or cb_batch_abort(). */
CB_NODISCARD cb_status cb_batch_begin(cb_store *st, cb_batch **out);
/* Decode and fold one log message at position seq (0: unknown). A message
 * that does not decode, or whose data breaks the rules, is counted invalid,
 * logged, and skipped: CB_OK. Errors: CB_ENOMEM, CB_EIO (abort the batch). */
CB_NODISCARD cb_status cb_batch_apply_raw(cb_batch *b, const void *data, size_t len, uint64_t seq);
/* Fold a decoded event. *applied as in cb_fold_apply. */
CB_NODISCARD cb_status cb_batch_apply(cb_batch *b, const cb_event *ev, uint64_t seq, int *applied);
const cb_batch_stats *cb_batch_stats_get(const cb_batch *b);
/* The "tenant/job" keys changed in this batch, as a new JSON array. */
json_t *cb_batch_changed_jobs(const cb_batch *b);
/* Write the working set and applied_seq (if not 0), commit, free b (also on
 * failure). Errors: CB_EIO, CB_ENOMEM. */
CB_NODISCARD cb_status cb_batch_commit(cb_batch *b, uint64_t applied_seq);
void cb_batch_abort(cb_batch *b); /* accepts NULL */

/* ---- views: read transactions (any process) --------------------------- */

/* The last log position folded into the store, 0 if none. */
CB_NODISCARD cb_status cb_view_applied_seq(cb_store *st, uint64_t *seq);
/* Job "tenant/job": CB_OK with *out owned (cb_job_state_cleanup), or CB_ENOTFOUND. */
CB_NODISCARD cb_status cb_view_job(cb_store *st, const char *key, cb_job_state *out);
CB_NODISCARD cb_status cb_view_task(cb_store *st, const char *key, uint32_t index,
                                    cb_task_state *out);
/* The task records of job "tenant/job" in index order: fn(index, task, arg)
 * for each (the record is borrowed for the call); fn returns non-zero to
 * stop. Tasks never dispatched have no record. One read transaction. */
typedef int cb_view_task_fn(uint32_t index, const cb_task_state *t, void *arg);
CB_NODISCARD cb_status cb_view_job_tasks(cb_store *st, const char *key, cb_view_task_fn *fn,
                                         void *arg);
/* The same for the job's open tasks only (not yet succeeded or skipped). */
CB_NODISCARD cb_status cb_view_job_open_tasks(cb_store *st, const char *key, cb_view_task_fn *fn,
                                              void *arg);
/* Make a store opened for writing current: record its format, and derive
 * what an older format lacks (the open database). The projector calls it at
 * start. Errors: CB_EIO. */
CB_NODISCARD cb_status cb_batch_prepare_store(cb_store *st);
/* The jobs not yet finished: fn("tenant/job", deadline_ns or 0, arg). */
typedef int cb_view_active_fn(const char *key, int64_t deadline_ns, void *arg);
CB_NODISCARD cb_status cb_view_active(cb_store *st, cb_view_active_fn *fn, void *arg);
/* SHA-256 (hex, 65 bytes with NUL) over the jobs, tasks and active databases
 * in key order: equal digests mean equal entity state. `entities` (if not
 * NULL) gets the number of entries hashed. */
CB_NODISCARD cb_status cb_view_digest(cb_store *st, char hex[65], uint64_t *entities);
/* First entity that differs between a and b, as "db key: a-value | b-value"
 * (or "" when equal), into out. */
CB_NODISCARD cb_status cb_view_first_difference(cb_store *a, cb_store *b, char *out, size_t size);

/* "tenant/job" into buf. Returns 0, -1 if it does not fit. */
int cb_job_key(const char *tenant, const char *job, char *buf, size_t size);

#endif /* CB_BATCH_H */
