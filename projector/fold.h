/* projector/fold.h - the pure fold: state' = fold(state, event).
 *
 * No I/O, no clock, no randomness: time comes from the event, so folding the
 * same log always gives the same state (the live projector and `cb replay`
 * share this code). An event that repeats one already applied, or that does
 * not apply to the entity's current state, is ignored (and counted) and
 * leaves the state untouched.
 *
 * Entities: one cb_job_state per job, one cb_task_state per task that has
 * left PENDING (a task never dispatched needs no record, unless a report
 * it ignored cost something). An adapter's report of attempt 1 of a task
 * still PENDING stands for its dispatch, which the log lost (a broker can
 * lose a confirmed append when a node fails: docs/broker.md, "Node
 * failure"); the frontier stays until the engine's next dispatch of the
 * task, which moves it only. A job's task count
 * starts at cb.job.started and grows with each cb.task.expanded (a DAG
 * `foreach` step whose children take the next indices). The caller owns the
 * records and gives the fold access to a job's tasks through cb_fold_tasks.
 * Not thread-safe per record; distinct jobs may be folded concurrently. */
#ifndef CB_FOLD_H
#define CB_FOLD_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cb_event.h"
#include "cb_buf.h"
#include "cb_cost.h"
#include "cb_status.h"

typedef enum cb_job_status {
    CB_JOB_ABSENT = 0,
    CB_JOB_SUBMITTED,
    CB_JOB_RUNNING,
    CB_JOB_SUSPENDED,
    CB_JOB_SUCCEEDED,
    CB_JOB_FAILED,
    CB_JOB_CANCELLED,
    CB_JOB_REJECTED,
} cb_job_status;

typedef enum cb_task_status {
    CB_TASK_PENDING = 0,
    CB_TASK_DISPATCHED,
    CB_TASK_RUNNING,
    CB_TASK_SUCCEEDED,
    CB_TASK_FAILED,
    CB_TASK_TIMED_OUT,
    CB_TASK_RETRY_WAIT,
    CB_TASK_SKIPPED,  /* a DAG step whose `when` was false: never runs */
    CB_TASK_EXPANDED, /* a DAG `foreach` step: its children run; then it succeeds */
} cb_task_status;

/* Durations of a job's successes, for its backup policy's median
 * (docs/engine.md, "Straggler backups"): 3 buckets per octave of
 * milliseconds (cb_duration_bucket), the last one open-ended (~35 min). */
#define CB_DUR_BUCKETS 64
uint32_t cb_duration_bucket(int64_t ms);
/* A bucket's middle in ms (the geometric mean of its bounds). */
double cb_duration_bucket_ms(uint32_t b);
/* The median of the durations counted (ms), 0 when there are none. */
double cb_duration_median_ms(const uint32_t *buckets, uint64_t n);

/* A job on a pool (docs/engine.md, "Pools"): each member account its
 * tasks were dispatched to, in the order they first were. */
#define CB_MEMBERS_MAX     8
#define CB_MEMBER_NAME_MAX 40
typedef struct cb_member_use {
    char backend[CB_MEMBER_NAME_MAX];
    uint32_t inflight;   /* invocations in flight on it */
    uint32_t dispatched; /* invocations dispatched to it */
    uint32_t throttled;  /* throttling answers its outcomes reported */
} cb_member_use;

typedef struct cb_job_state {
    cb_job_status status;
    cb_job_status suspended_from; /* status to return to on resume */
    bool cancel_requested;
    uint32_t total;     /* tasks, from cb.job.started */
    uint32_t inflight;  /* invocations in flight: tasks DISPATCHED or RUNNING, and
                         * the backups of those that have one */
    uint32_t succeeded; /* tasks SUCCEEDED */
    uint32_t failed;    /* tasks FAILED or TIMED_OUT, awaiting the engine's decision */
    uint32_t waiting;   /* tasks RETRY_WAIT */
    uint32_t skipped;   /* DAG steps SKIPPED */
    uint32_t frontier;  /* highest index ever dispatched + 1 (new tasks go out in order) */
    uint32_t retries, timeouts, sla_violations;
    uint32_t memoized; /* tasks that took an earlier task's output (cb.task.succeeded "memoized") */
    cb_cost cost;      /* what its tasks' invocations cost (count_cost in fold.c) */
    uint32_t backups;  /* backup attempts dispatched (docs/engine.md, "Straggler backups") */
    uint32_t nmembers; /* a pool's job: the members it used (cb.tasks.dispatched "pool") */
    cb_member_use members[CB_MEMBERS_MAX];
    uint64_t ndurations;                /* successes timed, for a job with "backup" */
    uint32_t durations[CB_DUR_BUCKETS]; /* their durations (cb_duration_bucket) */
    uint64_t applied, ignored;          /* events applied to / ignored for this job */
    int64_t submitted_ns, started_ns, finished_ns, updated_ns;
    uint64_t first_seq;     /* log position of its first event (the submission), 0 if unknown:
                             * reading the job's events starts there (projector/joblog.h) */
    uint64_t last_seq;      /* log position of the last event applied, 0 if unknown */
    uint32_t log_partition; /* the partition whose log holds its events (docs/scale.md),
                             * from cb.job.submitted; first_seq and last_seq are its */
    json_t *spec;           /* owned: the job descriptor from cb.job.submitted */
    json_t *partition;      /* owned: an objects input's plan from its cb.job.partitioned
                             * pages, {"pages": n, "done": bool, "objects": [...]}, or NULL */
    char *digest;           /* owned */
    json_t *result;         /* owned: from cb.job.succeeded; a result kept as one object
                             * is a reference to it, {"$cb_ref", "size", "sha256"} */
    char *error;            /* owned: why it failed or was rejected */
} cb_job_state;

typedef struct cb_task_state {
    cb_task_status status;
    uint32_t attempt; /* 1-based; the attempt dispatched, running or scheduled */
    int64_t updated_ns;
    int64_t due_ns;        /* RETRY_WAIT: when the retry is due */
    uint32_t first, count; /* EXPANDED (and after): the children's indices */
    bool backup;           /* DISPATCHED/RUNNING: `attempt` is a backup of the attempt
                            * before it, which may still answer (the first success wins) */
    uint8_t member;        /* a pool's job: 1 + the job's members index of the account
                            * `attempt` was dispatched to; 0: none */
    uint8_t backup_member; /* ... of the backup's, while `backup` */
    json_t *output;        /* owned: SUCCEEDED */
    char *error;           /* owned: last failure */
    cb_cost cost;          /* what its attempts' invocations cost */
} cb_task_state;

/* The caller's task records of the job being folded. get() returns the
 * mutable record of task `index` (a PENDING one if it had none), or NULL
 * when out of memory. Records stay valid for the whole cb_fold_apply call. */
typedef struct cb_fold_tasks {
    cb_task_state *(*get)(void *arg, uint32_t index);
    void *arg;
} cb_fold_tasks;

/* Fold `ev` (at log position `seq`, 0 if unknown) into `job` and its tasks.
 * *applied = 1 if the state changed, 0 if the event was ignored. The job's
 * applied/ignored counters count either way (an ignored event for an ABSENT
 * job leaves it ABSENT and uncounted). Errors: CB_ENOMEM (state may be
 * partially updated: abort the batch), CB_EINVAL (data fields missing where
 * the schema requires them: the event is ignored, *applied = 0).
 *
 * A cb.tasks.succeeded event folds as its outcomes (cb_event_outcome), one
 * after another, each counted as an event: its state and counters are those
 * of the same successes come one by one. *applied = 1 if any applied;
 * CB_EINVAL if any part lacks required data (the other parts apply).
 *
 * Cost (cb_cost.h) is a counter: an outcome's "cost" is added to its task
 * and job whether or not the outcome applies (a late report of an attempt
 * that timed out, of an invocation in flight when the job ended: they were
 * paid for), except a repeat of the success already folded for that
 * attempt. */
CB_NODISCARD cb_status cb_fold_apply(cb_job_state *job, const cb_fold_tasks *tasks,
                                     const cb_event *ev, uint64_t seq, int *applied);

/* Whether ev belongs in the log of `partition`: true unless it is a
 * submission that records another partition (or none a log can have; its
 * fold is CB_EINVAL): a job's events are all in the partition its
 * submission records (docs/scale.md), so one appended elsewhere is ignored
 * by every reader alike. */
bool cb_fold_in_partition(const cb_event *ev, unsigned partition);

/* Is the job finished (no more events change it except counters)? */
bool cb_job_terminal(cb_job_status s);
const char *cb_job_status_name(cb_job_status s);
const char *cb_task_status_name(cb_task_status s);

void cb_job_state_cleanup(cb_job_state *j);   /* frees owned fields, zeroes */
void cb_task_state_cleanup(cb_task_state *t); /* frees owned fields, zeroes */

/* Canonical JSON (sorted keys) of a record: the stored form, the digest input
 * and what `cb inspect` prints. New reference, NULL on ENOMEM. */
json_t *cb_job_state_to_json(const cb_job_state *j);
json_t *cb_task_state_to_json(const cb_task_state *t);
/* The same record's canonical text, written straight into `out` (the
 * projector's commit writes every changed task: no JSON tree, no sorting).
 * Byte for byte what cb_json_dumps(cb_task_state_to_json(t), JSON_COMPACT |
 * JSON_SORT_KEYS) gives (test_fold.c compares). Errors: CB_ENOMEM. */
CB_NODISCARD cb_status cb_task_state_text(const cb_task_state *t, cb_buf *out);
/* Parse the stored form. On CB_OK *out owns its fields. Errors: CB_EINVAL. */
CB_NODISCARD cb_status cb_job_state_from_json(const json_t *o, cb_job_state *out);
CB_NODISCARD cb_status cb_task_state_from_json(const json_t *o, cb_task_state *out);

#endif /* CB_FOLD_H */
