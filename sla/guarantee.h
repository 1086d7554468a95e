/* sla/guarantee.h - one guarantee of an agreement under evaluation
 * (docs/sla.md): its parsed constraint, repetitions, evaluation mode and
 * windows, and the counts it accounts for. Pure: observations and ticks
 * bring their own times.
 *
 *   punctual (no period_ms): each observation of the guarantee's level is
 *     an evaluation (aggregates over the window the observation joined);
 *   periodic (period_ms): observations only join the windows; each tick is
 *     an evaluation over them (a plain [metric] is the newest value; the
 *     window is the guarantee's, else the period).
 *
 * An evaluation whose verdict is unknown (no value yet) counts for
 * nothing. A violated one extends the streak; at `repetitions` in a row it
 * is a breach, and the streak starts again (a violation that goes on
 * breaches again after as many more). One that holds ends the streak; the
 * first that holds after a breach is a recovery (back in compliance).
 *
 * A guarantee on [query] (level CB_SLA_LEVEL_QUERY) has a `query`
 * (PromQL): the daemon asks a Prometheus server every `period_ms` (default
 * CB_SLA_QUERY_PERIOD_MS) and each answer is an observation, evaluated at
 * once (sla/prom.h).
 *
 * Ownership: the caller owns the struct (init/cleanup). Not thread-safe. */
#ifndef CB_SLA_GUARANTEE_H
#define CB_SLA_GUARANTEE_H
#include <jansson.h>
#include <stdint.h>

#include "cb_event.h"
#include "cb_sla_expr.h"
#include "cb_sla_window.h"
#include "observe.h"

typedef struct cb_sla_guarantee {
    char name[CB_NAME_MAX + 1];
    char constraint[CB_SLA_EXPR_MAX + 1];
    cb_sla_expr *expr;
    cb_sla_level level;
    uint32_t repetitions; /* >= 1 */
    int64_t period_ms;    /* 0: punctual */
    int windowed;         /* observations join the windows */
    cb_sla_window win[CB_SLA_NMETRICS];
    int64_t next_tick_ns;  /* periodic: the next evaluation (0: on the first observation) */
    uint32_t streak;       /* violating evaluations in a row */
    int in_breach;         /* breached, and no evaluation has held since */
    double makespan_bound; /* job level: the [makespan] it allows for certain, else INFINITY */
    char *query;           /* level query: its PromQL (owned), asked every query_period_ms */
    int64_t query_period_ms;
    int64_t next_query_ns; /* the daemon's: when to ask next */
    uint64_t evaluations, violations, breaches;
} cb_sla_guarantee;

/* What an evaluation found (the return value of observe and tick). */
#define CB_SLA_QUERY_PERIOD_MS 10000

#define CB_SLA_BREACHED  1
#define CB_SLA_RECOVERED 2
#define CB_SLA_AT_RISK   3 /* the evaluator's prediction (sla/evaluator.h), never a guarantee's */
#define CB_SLA_REFUSED   4 /* the evaluator's: a job's sla.template cannot be filled in */

/* A breach, or a recovery from breach `ordinal`: what cb.sla.violated and
 * cb.sla.recovered record. */
typedef struct cb_sla_breach {
    const char *guarantee, *constraint; /* borrowed from the guarantee */
    double observed;
    uint64_t ordinal; /* the guarantee's breach number, 1.. (its event's id) */
    cb_sla_level level;
    uint32_t task; /* a task observation's */
    double bound;  /* the threshold of the deciding comparison (the other side of
                    * `observed`); at risk: the makespan bound the prediction exceeds */
    int64_t time_ns;
} cb_sla_breach;

/* From a guarantee object of schemas/agreement.json (already schema-valid;
 * the constraint is parsed here). CB_EINVAL with the reason
 * ("/constraint: at 1: unknown metric ..."), CB_ENOMEM. */
CB_NODISCARD cb_status cb_sla_guarantee_init(cb_sla_guarantee *g, const json_t *spec, char *err,
                                             size_t errlen);
void cb_sla_guarantee_cleanup(cb_sla_guarantee *g);

/* An observation: CB_SLA_BREACHED or CB_SLA_RECOVERED and *b, 0 when
 * neither, -1 out of memory. Observations of the other level are ignored. */
int cb_sla_guarantee_observe(cb_sla_guarantee *g, const cb_sla_obs *o, cb_sla_breach *b);

/* Periodic: time passes (now_ns: an event's time or the evaluator's
 * clock, the caller decides). Evaluates once when a period has ended
 * since the last evaluation: CB_SLA_BREACHED or CB_SLA_RECOVERED and *b,
 * else 0. Punctual: 0. */
int cb_sla_guarantee_tick(cb_sla_guarantee *g, int64_t now_ns, cb_sla_breach *b);

#endif /* CB_SLA_GUARANTEE_H */
