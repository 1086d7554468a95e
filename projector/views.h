/* projector/views.h - the read side of the store, for every process (the
 * engine, the CLI, the tests): each view is one read transaction, so it sees
 * one consistent state while the projector writes. Thread-safe (LMDB read
 * transactions); results are owned by the caller as each function says. */
#ifndef CB_VIEWS_H
#define CB_VIEWS_H
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"
#include "fence.h"
#include "fold.h"
#include "store.h"

/* How many partitions' logs the store has folded (docs/scale.md): the
 * highest partition with a position, plus one; 1 for an empty store. */
CB_NODISCARD cb_status cb_view_partitions(cb_store *st, unsigned *n);
/* The last position of partition's log folded into the store, 0 if none. */
CB_NODISCARD cb_status cb_view_applied_seq(cb_store *st, unsigned partition, uint64_t *seq);
/* Job "tenant/job": CB_OK with *out owned (cb_job_state_cleanup), or CB_ENOTFOUND. */
CB_NODISCARD cb_status cb_view_job(cb_store *st, const char *key, cb_job_state *out);
CB_NODISCARD cb_status cb_view_task(cb_store *st, const char *key, uint32_t index,
                                    cb_task_state *out);
/* The task records of job "tenant/job" in index order: fn(index, task, arg)
 * for each (the record is borrowed for the call); fn returns non-zero to
 * stop. Tasks never dispatched have no record (unless a report the fold
 * ignored cost something: then a pending one). One read transaction. */
typedef int cb_view_task_fn(uint32_t index, const cb_task_state *t, void *arg);
CB_NODISCARD cb_status cb_view_job_tasks(cb_store *st, const char *key, cb_view_task_fn *fn,
                                         void *arg);
/* The same for the job's open tasks only (not yet succeeded or skipped). */
CB_NODISCARD cb_status cb_view_job_open_tasks(cb_store *st, const char *key, cb_view_task_fn *fn,
                                              void *arg);
/* A page of the tasks of job "tenant/job": as cb_view_job_tasks, from
 * index `from` on (the records of lower indices are not read). */
CB_NODISCARD cb_status cb_view_job_tasks_from(cb_store *st, const char *key, uint32_t from,
                                              cb_view_task_fn *fn, void *arg);
/* A page of the jobs, in key order ("tenant/job"): those of `tenant`
 * (NULL: every tenant) whose key is after `after` (NULL: from the first).
 * fn(key, state, arg) for each (both borrowed for the call) returns
 * non-zero to stop. A record that does not parse is skipped. One read
 * transaction. */
typedef int cb_view_job_fn(const char *key, const cb_job_state *js, void *arg);
CB_NODISCARD cb_status cb_view_jobs(cb_store *st, const char *tenant, const char *after,
                                    cb_view_job_fn *fn, void *arg);
/* The jobs not yet finished: fn("tenant/job", deadline_ns or 0, arg). */
typedef int cb_view_active_fn(const char *key, int64_t deadline_ns, void *arg);
CB_NODISCARD cb_status cb_view_active(cb_store *st, cb_view_active_fn *fn, void *arg);
/* One consistent snapshot of the unfinished jobs of a partition, for a
 * controller that keeps them in memory: in one read transaction,
 * *applied_seq (the partition's position the snapshot reflects), then for
 * each of its active jobs job_fn(key,
 * state, arg), which takes the state (it owns its fields afterwards) and
 * returns non-zero when out of memory, followed by task_fn for each of the
 * job's records in index order (the record is borrowed, as above).
 * The partition's last claim at that position into *fence (fence.h; may be
 * NULL).
 * Errors: CB_ENOMEM, CB_EIO (a damaged record), the store's. */
typedef int cb_view_snap_job_fn(const char *key, cb_job_state *js, void *arg);
CB_NODISCARD cb_status cb_view_active_snapshot(cb_store *st, unsigned partition,
                                               cb_view_snap_job_fn *job_fn,
                                               cb_view_task_fn *task_fn, void *arg,
                                               uint64_t *applied_seq, cb_fence *fence);
/* The output of the tenant's task that succeeded with memo key `hex` (a
 * cached job's, layout.h) no earlier than not_before_ns: CB_OK with *output
 * (owned) and that task's job (into job, CB_NAME_MAX + 1 bytes) and index;
 * CB_ENOTFOUND when there is none, it is older, or its record no longer
 * holds a success. One read transaction. */
CB_NODISCARD cb_status cb_view_memo(cb_store *st, const char *tenant, const char *hex,
                                    int64_t not_before_ns, char *job, uint32_t *task,
                                    json_t **output);
/* Cost totals (layout.h, costs; cb_cost.h): kind "tenant" or "backend".
 * cb_view_cost: the total of one (zero when it has none: CB_OK). cb_view_costs:
 * fn for each of the kind in name order (fn returns non-zero to stop), in one
 * read transaction. Errors: the store's. */
CB_NODISCARD cb_status cb_view_cost(cb_store *st, const char *kind, const char *name, cb_cost *out);
typedef int cb_view_cost_fn(const char *name, const cb_cost *total, void *arg);
CB_NODISCARD cb_status cb_view_costs(cb_store *st, const char *kind, cb_view_cost_fn *fn,
                                     void *arg);
/* SHA-256 (hex, 65 bytes with NUL) over the jobs, tasks and active databases
 * in key order: equal digests mean equal entity state. `entities` (if not
 * NULL) gets the number of entries hashed. */
CB_NODISCARD cb_status cb_view_digest(cb_store *st, char hex[65], uint64_t *entities);
/* First entity that differs between a and b, as "db key: a-value | b-value"
 * (or "" when equal), into out. */
CB_NODISCARD cb_status cb_view_first_difference(cb_store *a, cb_store *b, char *out, size_t size);

#endif /* CB_VIEWS_H */
