/* engine/scheduler.h - the pure scheduler: given a job's flow, policy, projected
 * state, the backend's free capacity and the time, say what to do next.
 * The controller turns the plan into events (job.started, tasks.dispatched,
 * task.retry_scheduled, task.timed_out, job.succeeded/failed/cancelled) and
 * appends them; the projector folds them; the next plan sees the result.
 * A plan is therefore idempotent over the same state: asking twice gives the
 * same plan, and its events are de-duplicated by their ids.
 *
 * Pure: no I/O, no clock (time is an argument), no randomness. DAG steps
 * run once all their dependencies succeeded, in topological order; a step
 * that is lost fails the job (unless tolerated). DAGs with `when` or
 * `foreach` steps are not planned yet (CB_EUNSUPP). */
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
} cb_task_ref;

typedef struct cb_retry {
    uint32_t task, attempt; /* the attempt to run next */
    int64_t at_ns;
} cb_retry;

typedef struct cb_sched_in {
    const cb_flow *flow;
    const cb_policy *policy;
    const cb_job_state *job;
    /* The job's task records in ascending index order; tasks that were never
     * dispatched have none (they are pending). Borrowed. */
    const uint32_t *index;
    const cb_task_state *tasks;
    size_t ntasks;
    uint32_t capacity; /* invocations the backend may take now (traffic shaping) */
    int64_t now_ns;
    const char *job_key; /* "tenant/job", for deterministic jitter */
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
    cb_sched_end end;
    char error[256]; /* why, for CB_END_FAIL */
    int64_t wake_ns; /* look again at this time even without events; 0: no need */
} cb_sched_plan;

/* Whether this version can plan the flow; if not, err says which step. */
bool cb_sched_dag_runnable(const cb_flow *f, char *err, size_t errlen);

/* Plan the next step of one job. On CB_OK *out owns its arrays: release with
 * cb_sched_plan_cleanup(). Errors: CB_EUNSUPP (dag), CB_ENOMEM. */
CB_NODISCARD cb_status cb_sched_plan_job(const cb_sched_in *in, cb_sched_plan *out);
void cb_sched_plan_cleanup(cb_sched_plan *p);

#endif /* CB_SCHEDULER_H */
