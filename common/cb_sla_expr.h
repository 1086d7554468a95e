/* common/cb_sla_expr.h - the constraint language of SLA guarantees
 * (docs/sla.md): parse once, evaluate many times. Pure: no I/O, no clock.
 *
 *   constraint := or
 *   or         := and { "||" and }
 *   and        := not { "&&" not }
 *   not        := "!" not | "(" or ")" | compare
 *   compare    := operand OP operand          OP: < <= > >= == !=
 *   operand    := NUMBER | "[" METRIC "]" | AGG "(" "[" METRIC "]" ")"
 *   AGG        := avg | min | max | sum | count | p50 | p90 | p95 | p99
 *
 * e.g. "[execution_time] < 100", "p95([makespan]) < 2000 && [failure_rate] <= 0.01".
 * Metrics are names the caller knows (cb_sla_metric_known); each is of one
 * level, a task's or a job's, and a constraint mixes no levels. A plain
 * [metric] is the value of one task or job; AGG([metric]) aggregates it
 * over the evaluation's window (the caller's lookup provides both).
 *
 * Ownership: cb_sla_parse returns a tree the caller frees with
 * cb_sla_expr_free. Thread-safe: a parsed tree is read-only. */
#ifndef CB_SLA_EXPR_H
#define CB_SLA_EXPR_H
#include <stddef.h>

#include "cb_status.h"

#define CB_SLA_EXPR_MAX 512 /* the schema's bound on a constraint's length */

typedef enum cb_sla_level {
    CB_SLA_LEVEL_NONE = 0, /* constants only */
    CB_SLA_LEVEL_TASK,
    CB_SLA_LEVEL_JOB,
    CB_SLA_LEVEL_QUERY, /* the guarantee's own Prometheus query (docs/sla.md) */
} cb_sla_level;

typedef enum cb_sla_agg {
    CB_SLA_AGG_NONE = 0, /* the one value */
    CB_SLA_AGG_AVG,
    CB_SLA_AGG_MIN,
    CB_SLA_AGG_MAX,
    CB_SLA_AGG_SUM,
    CB_SLA_AGG_COUNT,
    CB_SLA_AGG_P50,
    CB_SLA_AGG_P90,
    CB_SLA_AGG_P95,
    CB_SLA_AGG_P99,
} cb_sla_agg;

typedef struct cb_sla_expr cb_sla_expr;

/* The metrics, with their level and unit, for errors and docs. */
typedef struct cb_sla_metric_info {
    const char *name;
    cb_sla_level level;
    const char *unit; /* "ms", "ratio", "count", "tasks/s" */
} cb_sla_metric_info;

#define CB_SLA_NMETRICS 12 /* the number of metrics below */

/* The metric called name, or NULL. */
const cb_sla_metric_info *cb_sla_metric_known(const char *name);
/* Its index in cb_sla_metrics() (0..CB_SLA_NMETRICS-1), or -1. */
int cb_sla_metric_index(const char *name);
/* All of them (n set to their number). */
const cb_sla_metric_info *cb_sla_metrics(size_t *n);
const char *cb_sla_agg_name(cb_sla_agg a); /* "" for NONE */

/* Parse text (NUL-terminated, at most CB_SLA_EXPR_MAX bytes). Errors
 * (CB_EINVAL) say what and where: "at 15: unknown metric \"exec_time\"
 * (known: ...)", "at 0: expected an operand", "at 21: unexpected \")\"". */
CB_NODISCARD cb_status cb_sla_parse(const char *text, cb_sla_expr **out, char *err, size_t errlen);
void cb_sla_expr_free(cb_sla_expr *e);

/* The level of the metrics it names. */
cb_sla_level cb_sla_expr_level(const cb_sla_expr *e);
/* Does it aggregate over a window (any AGG)? */
int cb_sla_expr_aggregates(const cb_sla_expr *e);
/* The largest value of the plain [metric] (no AGG) the constraint allows
 * for certain: N of `[metric] < N` or `<= N` (or `N > [metric]`), the
 * smaller of both sides of &&, the larger of both sides of ||; INFINITY
 * when it sets none. What a job's `[makespan] < 2000` means as a deadline
 * (the scheduler's ranking, at-risk warnings; docs/sla.md). */
double cb_sla_expr_bound(const cb_sla_expr *e, const char *metric);

/* The value of a metric: return 0 and set *out, or -1 when it has no value
 * yet (a job not finished, an empty window). */
typedef int (*cb_sla_lookup)(void *ctx, const char *metric, cb_sla_agg agg, double *out);

typedef enum cb_sla_verdict {
    CB_SLA_UNKNOWN = -1, /* a metric it needs has no value yet */
    CB_SLA_VIOLATED = 0,
    CB_SLA_HOLDS = 1,
} cb_sla_verdict;

/* Evaluate. observed and threshold (may be NULL): the metric side and the
 * other side of the first comparison that decided the verdict (what a
 * breach reports: [makespan] < 2000 observed 2350, threshold 2000). */
cb_sla_verdict cb_sla_eval(const cb_sla_expr *e, cb_sla_lookup lookup, void *ctx, double *observed,
                           double *threshold);

#endif /* CB_SLA_EXPR_H */
