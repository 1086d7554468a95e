/* engine/scheduler.h - the pure scheduler: given a job's flow, policy, projected
 * state, the backend's free capacity and the time, say what to do next.
 * The controller turns the plan into events (job.started, tasks.dispatched,
 * task.retry_scheduled, task.timed_out, job.succeeded/failed/cancelled) and
 * appends them; the projector folds them; the next plan sees the result.
 * A plan is therefore idempotent over the same state: asking twice gives the
 * same plan, and its events are de-duplicated by their ids.
 *
 * Pure: no I/O, no clock (time is an argument), no randomness.
 *
 * DAGs (docs/engine.md): a step is ready once each step it depends on has
 * succeeded or been skipped; ready steps run in topological order. A ready
 * step whose `when` is false is skipped (cb.task.skipped); its output is null
 * and the steps after it still run. A ready `foreach` step over an array of
 * n values is expanded (cb.task.expanded) into n child tasks that take the
 * job's next task indices and run like map tasks, each with one value; once
 * all have succeeded the step is collected: it succeeds with the array of
 * their outputs. A lost step or child fails the job (no tolerance in DAGs).
 * Retry and timeout come from the step (cb_sched_in.step_policy).
 *
 * Traffic shaping: capacity bounds what one plan dispatches; a plan that
 * could have dispatched more says how many more (want), so the controller
 * can share a backend between jobs by rank (cb_sched_rank_before). */
#ifndef CB_SCHEDULER_H
#define CB_SCHEDULER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"
#include "flow.h"
#include "fold.h"
#include "policy.h"

typedef struct cb_task_ref {
    uint32_t task, attempt;
    bool backup; /* a backup attempt of a task in flight (docs/engine.md, "Straggler backups") */
} cb_task_ref;

typedef struct cb_retry {
    uint32_t task, attempt; /* the attempt to run next */
    int64_t at_ns;
} cb_retry;

typedef struct cb_skip {
    uint32_t task;
    char reason[256];
} cb_skip;

typedef struct cb_expand {
    uint32_t task, first, count; /* children: first .. first + count - 1 */
} cb_expand;

/* A job's task records in ascending index order; tasks never dispatched have
 * none (they are pending). For call, map and map_reduce jobs the open records
 * are enough (tasks not yet succeeded: cb_view_job_open_tasks): the rest is
 * in the job's counters (succeeded, frontier). A DAG needs them all. Borrowed. */
typedef struct cb_task_view {
    const uint32_t *index;
    const cb_task_state *tasks;
    size_t n;
} cb_task_view;

/* The record of task `idx`, or NULL (pending). O(log n). */
const cb_task_state *cb_task_view_get(const cb_task_view *v, uint32_t idx);

typedef struct cb_sched_in {
    const cb_flow *flow;
    const cb_policy *policy; /* the job's */
    const cb_job_state *job;
    cb_task_view view;
    uint32_t capacity; /* invocations the backend may take now (traffic shaping) */
    int64_t now_ns;
    const char *job_key;            /* "tenant/job", for deterministic jitter */
    const cb_policy *step_policy;   /* DAG: one per step (retry, timeout); NULL: the job's */
    const cb_policy *reduce_policy; /* map_reduce: the reduce task's (its function's
                                       timeout_ms); NULL: the job's */
    /* A job whose functions are on several accounts (flow->nlanes > 1):
     * what each lane's account may take now, [flow->nlanes]; a task takes
     * from its lane (cb_flow_lane) and from `capacity`. NULL: `capacity`
     * alone bounds every task. */
    const uint32_t *lane_capacity;
} cb_sched_in;

typedef enum cb_sched_end {
    CB_END_NONE = 0,
    CB_END_SUCCEED,
    CB_END_FAIL,
    CB_END_CANCEL,
} cb_sched_end;

typedef struct cb_sched_plan {
    bool start;            /* append cb.job.started with flow->tasks */
    cb_task_ref *dispatch; /* owned; in this order */
    size_t ndispatch;
    cb_retry *retry; /* owned */
    size_t nretry;
    cb_task_ref *timeout; /* owned */
    size_t ntimeout;
    cb_skip *skip; /* owned: DAG steps to skip */
    size_t nskip;
    cb_expand *expand; /* owned: foreach steps to expand, in index order */
    size_t nexpand;
    uint32_t *collect; /* owned: foreach steps whose children all succeeded */
    size_t ncollect;
    uint64_t want; /* more tasks it would have dispatched had capacity allowed */
    cb_sched_end end;
    char error[256]; /* why, for CB_END_FAIL */
    int64_t wake_ns; /* look again at this time even without events; 0: no need */
} cb_sched_plan;

/* Plan the next step of one job. On CB_OK *out owns its arrays: release with
 * cb_sched_plan_cleanup(). Errors: CB_ENOMEM. */
CB_NODISCARD cb_status cb_sched_plan_job(const cb_sched_in *in, cb_sched_plan *out);
void cb_sched_plan_cleanup(cb_sched_plan *p);

/* ---- DAG helpers the controller shares ---------------------------------- */

/* The output of DAG step `step`: the first of its outputs, null when it has
 * none (skipped, not run). New reference (NULL on ENOMEM). */
json_t *cb_sched_step_output(const cb_flow *f, const cb_task_view *v, uint32_t step);
/* The step a task belongs to: itself for a step, the foreach step for a
 * child; -1 if none. */
int32_t cb_sched_step_of(const cb_flow *f, const cb_task_view *v, uint32_t task);
/* The outputs of a foreach step's children in order (new array), NULL when
 * one has not succeeded or on ENOMEM. */
json_t *cb_sched_children_outputs(const cb_task_view *v, const cb_task_state *step);
/* The lane of a task's function (cb_flow_lane; a foreach child: its step's). */
uint8_t cb_sched_lane_of(const cb_flow *f, const cb_task_view *v, uint32_t task);
/* Whether a `when` condition ({step, op, value}) holds for `value`. */
bool cb_sched_when_holds(const json_t *when, const json_t *value);

/* ---- ranking jobs on a shared backend ------------------------------------- */

typedef struct cb_rank {
    int priority;         /* higher first */
    int64_t deadline_ns;  /* earlier first; 0: none (after any deadline) */
    int64_t submitted_ns; /* earlier first */
    int64_t waiting_ns;   /* how long it has wanted capacity and not had it */
} cb_rank;

/* Whether `a` goes before `b`: priority (raised by one for each aging_ms of
 * waiting, so no job starves), then deadline, then submission order. Jobs
 * of one tenant; between tenants the fair share decides first. */
bool cb_sched_rank_before(const cb_rank *a, const cb_rank *b, int64_t aging_ms);

/* One tenant competing for a backend's free slots. */
typedef struct cb_share_in {
    uint64_t inflight; /* its invocations in flight on the backend */
    double weight;     /* > 0 */
    uint64_t demand;   /* slots its waiting jobs want (ignored for `mine`) */
    cb_rank best;      /* its best-ranked waiting job (ties between tenants) */
    bool mine;         /* the tenant asking: its demand has no bound */
} cb_share_in;

/* The fair share between tenants (docs/engine.md, "Fair share"): `free`
 * slots handed out one at a time, each to the tenant with the least
 * (inflight + slots so far) / weight that still wants one (weighted
 * max-min fairness; on a tie, the tenant whose best job ranks first, the
 * asking one when equal). Returns the slots of the tenant with `mine`. */
uint64_t cb_sched_fair_share(const cb_share_in *t, size_t n, uint64_t free, int64_t aging_ms);

#endif /* CB_SCHEDULER_H */
