/* sla/evaluator.h - the SLA evaluator's state (docs/sla.md): agreements,
 * the jobs they watch, and the evaluation of the log's events in order.
 * Pure: fed events and ticks, it calls back with breaches; the daemon
 * appends them (cb.sla.violated) and notifies.
 *
 * A job is watched from its cb.job.submitted: the agreements of its tenant
 * whose scope and validity take it, and the implicit agreement of its own
 * `sla.guarantees`. Its task outcomes and its end become observations
 * (sla/observe.c) judged by those agreements' guarantees; the job is
 * forgotten after its end (its implicit agreement with it).
 *
 * Agreements come from the log too: cb.sla.created/updated put one (a
 * version not newer than the one held is a repeat), deleted removes it,
 * started/stopped/terminated change its state. A cb.sla.violated or
 * recovered of a periodic guarantee sets its breach count and state (its
 * ticks follow the clock, not the log).
 *
 * Ownership: the evaluator owns what it is given (agreements). Not
 * thread-safe: one loop. */
#ifndef CB_SLA_EVALUATOR_H
#define CB_SLA_EVALUATOR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agreement.h"
#include "cb_event.h"
#include "guarantee.h"

typedef struct cb_sla_evaluator cb_sla_evaluator;

/* A breach (kind CB_SLA_BREACHED) of agreement a's guarantee, or its
 * recovery (CB_SLA_RECOVERED), found at an observation of `job` of a's
 * tenant, or by a periodic evaluation (job NULL); or a warning
 * (CB_SLA_AT_RISK): the running job's makespan, predicted from its
 * progress (b->observed), exceeds the guarantee's makespan bound
 * (b->bound) before the bound has passed (once per job and guarantee); or
 * (CB_SLA_REFUSED) a job whose sla.template cannot be filled in (no such
 * template, a placeholder without a value: b->constraint says which; a is
 * a stand-in with the job's agreement id), which is then not evaluated. */
typedef void cb_sla_breach_fn(void *ctx, const cb_sla_agreement *a, const cb_sla_breach *b,
                              int kind, const char *job);

cb_sla_evaluator *cb_sla_evaluator_new(cb_sla_breach_fn *fn, void *ctx); /* NULL: ENOMEM */
void cb_sla_evaluator_free(cb_sla_evaluator *e);

/* Take an agreement (moved in: *a is zeroed). One with the same tenant and
 * id replaces the old one (its counts start again). CB_ENOMEM. */
CB_NODISCARD cb_status cb_sla_evaluator_put(cb_sla_evaluator *e, cb_sla_agreement *a);
/* Remove (deleted or terminated): 1 if it was there. */
int cb_sla_evaluator_remove(cb_sla_evaluator *e, const char *tenant, const char *id);
/* Stop or start evaluating it; 1 if it was there. */
int cb_sla_evaluator_set_stopped(cb_sla_evaluator *e, const char *tenant, const char *id,
                                 int stopped);
const cb_sla_agreement *cb_sla_evaluator_get(const cb_sla_evaluator *e, const char *tenant,
                                             const char *id);
size_t cb_sla_evaluator_count(const cb_sla_evaluator *e);
size_t cb_sla_evaluator_jobs(const cb_sla_evaluator *e); /* jobs being watched */
/* Whether an event of `type` about tenant/job may matter here: a
 * submission, an agreement's event or a breach's always may (and an
 * unknown type: decode it to know); any other event only while its job is
 * watched. A reader passes over the others without decoding them. */
bool cb_sla_evaluator_needs(const cb_sla_evaluator *e, cb_event_type type, const char *tenant,
                            const char *job);

/* One event of the log, in order. CB_ENOMEM; a job's own guarantees that do
 * not parse are skipped (the intake refused them already). */
CB_NODISCARD cb_status cb_sla_evaluator_apply(cb_sla_evaluator *e, const cb_event *ev);
/* Time passes: periodic guarantees evaluate. */
void cb_sla_evaluator_tick(cb_sla_evaluator *e, int64_t now_ns);
/* The answer of a guarantee's Prometheus query (sla/prom.h): an
 * observation of [query], evaluated at once (a breach or recovery belongs
 * to no job). Ignored when the agreement or guarantee is gone or not
 * evaluated. */
void cb_sla_evaluator_query(cb_sla_evaluator *e, const char *tenant, const char *agreement,
                            const char *guarantee, double value, int64_t now_ns);
/* Every agreement (and template) of `tenant` (NULL: all), in the order they came. */
void cb_sla_evaluator_each(const cb_sla_evaluator *e, const char *tenant,
                           void (*fn)(const cb_sla_agreement *a, void *ctx), void *ctx);

#endif /* CB_SLA_EVALUATOR_H */
