/* engine/policy.h - a job's execution policy from its descriptor: retries
 * with exponential backoff and deterministic jitter, timeouts, parallelism and
 * tolerated failures. Pure: the scheduler asks, nothing here reads a clock or
 * draws random numbers (jitter is a hash of job, task and attempt, so a
 * restarted engine computes the same retry time). */
#ifndef CB_POLICY_H
#define CB_POLICY_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cb_status.h"

typedef struct cb_policy {
    uint32_t parallelism;     /* most tasks in flight for the job */
    uint32_t retry_limit;     /* retries after the first attempt */
    int64_t backoff_ms;       /* before the first retry */
    double factor;            /* growth per retry */
    int64_t max_backoff_ms;   /* cap on one wait */
    bool jitter;              /* spread retries over [backoff/2, backoff] */
    int64_t task_timeout_ms;  /* one attempt, 0 = none */
    int64_t job_timeout_ms;   /* the whole job, 0 = none */
    uint64_t tolerated_count; /* failed tasks tolerated... */
    double tolerated_pct;     /* ...or this percentage of the tasks (< 0: not set) */
    uint64_t budget_nanos;    /* what the job's invocations may cost (cb_cost.h), 0: no bound */
    double budget;            /* the same as given ("budget") */
    double backup_after;      /* "backup": once this share of the map tasks succeeded... */
    double backup_factor;     /* ...a task in flight this many times the median... */
    int64_t backup_min_ms;    /* ...and at least this long gets a backup; factor 0: never */
} cb_policy;

/* Defaults for what a descriptor leaves out (engine configuration). */
typedef struct cb_policy_defaults {
    uint32_t parallelism;    /* 1000 */
    uint32_t retry_limit;    /* 0 */
    int64_t backoff_ms;      /* 200 */
    double factor;           /* 2.0 */
    int64_t max_backoff_ms;  /* 60000 */
    int64_t task_timeout_ms; /* 300000 */
} cb_policy_defaults;

void cb_policy_defaults_init(cb_policy_defaults *d);

/* The policy of `spec` (a schema-valid job descriptor, or one DAG step, whose
 * retry/timeout_ms override the job's: pass the job as `job`, the step as
 * `spec`; for the job itself pass it twice). Never fails on a valid spec. */
void cb_policy_from_spec(const json_t *job, const json_t *spec, const cb_policy_defaults *d,
                         cb_policy *out);

/* Whether a task that has failed `attempt` times may run again. */
bool cb_policy_may_retry(const cb_policy *p, uint32_t attempt);
/* How long to wait before attempt `next` (>= 2) of task `task` of `job_key`. */
int64_t cb_policy_backoff_ms(const cb_policy *p, const char *job_key, uint32_t task, uint32_t next);
/* Whether `failed` definitively failed tasks out of `total` exceed what the
 * job tolerates (default: none tolerated). */
bool cb_policy_too_many_failures(const cb_policy *p, uint64_t failed, uint64_t total);

#endif /* CB_POLICY_H */
