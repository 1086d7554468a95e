/* sla/observe.h - what the SLA evaluator measures (docs/sla.md): a pure fold
 * of one job's events, in log order, into observations: one per task
 * outcome (the task metrics of cb_sla_expr.h) and one at the job's end (the
 * job metrics). Times are the events' own, so a replay measures what the
 * live run did. No I/O, no clock.
 *
 * Ownership: cb_sla_watch_new/free; observations are values. Not
 * thread-safe (one evaluator loop). */
#ifndef CB_SLA_OBSERVE_H
#define CB_SLA_OBSERVE_H
#include <stdint.h>

#include "cb_event.h"
#include "cb_sla_expr.h"

typedef struct cb_sla_obs {
    cb_sla_level level;        /* CB_SLA_LEVEL_TASK or CB_SLA_LEVEL_JOB */
    uint32_t task, attempt;    /* a task's */
    int64_t time_ns;           /* the event that completed it */
    double v[CB_SLA_NMETRICS]; /* by cb_sla_metric_index; NAN: no value */
} cb_sla_obs;

typedef struct cb_sla_watch cb_sla_watch; /* one job's timings */

cb_sla_watch *cb_sla_watch_new(void); /* NULL: out of memory */
void cb_sla_watch_free(cb_sla_watch *w);

/* Fold one event of the job. Returns 1 and fills *obs when the event
 * completes an observation (a task's outcome: cb.task.succeeded or
 * cb.task.failed or cb.task.timed_out; the job's end: succeeded, failed or
 * cancelled), 0 when it does not, -1 out of memory. Repeated events (the
 * same task attempt's outcome twice) observe once. */
int cb_sla_watch_apply(cb_sla_watch *w, const cb_event *ev, cb_sla_obs *obs);

/* The metric's value in an observation: 0 and *out, or -1 (none). A
 * cb_sla_lookup for cb_sla_eval with ctx = the observation (agg NONE only). */
int cb_sla_obs_lookup(void *obs, const char *metric, cb_sla_agg agg, double *out);

#endif /* CB_SLA_OBSERVE_H */
