/* engine/decide.h - the events a plan appends besides its dispatches and its
 * end: cb.job.started, cb.task.timed_out, cb.task.retry_scheduled, and for a
 * DAG cb.task.skipped, cb.task.expanded and the collected output of a
 * foreach step (cb.task.succeeded, attempt 1). Each with its deterministic
 * id suffix ("what": the event id is "<tenant>/<job>/<what>"), so a plan
 * made twice appends nothing twice.
 *
 * Pure: a function of the flow, the task records, the plan and the time.
 * The controller (visit.c) appends what it returns. Thread-safe over
 * distinct outputs. */
#ifndef CB_DECIDE_H
#define CB_DECIDE_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_event.h"
#include "cb_status.h"
#include "flow.h"
#include "scheduler.h"

typedef struct cb_decision {
    cb_event_type type;
    char what[64];
    json_t *data; /* owned until taken (set to NULL by whoever steals it) */
} cb_decision;

typedef struct cb_decisions {
    cb_decision *v;
    size_t n;
} cb_decisions;

/* The decisions of plan p, in append order. On CB_OK *out is owned: release
 * with cb_decisions_cleanup(). A collection whose children's outputs are not
 * all there is left out (the next plan makes it again). Errors: CB_ENOMEM
 * (*out is then empty). */
CB_NODISCARD cb_status cb_decide(const cb_flow *f, const cb_task_view *v, const cb_sched_plan *p,
                                 int64_t now_ns, cb_decisions *out);
void cb_decisions_cleanup(cb_decisions *d);

#endif /* CB_DECIDE_H */
