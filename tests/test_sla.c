/* tests/test_sla.c - the SLA evaluator's pure parts: the constraint language
 * (common/cb_sla_expr.c: what parses, the errors with their positions,
 * levels, evaluation with three-valued logic; also fuzzed:
 * tests/fuzz/fuzz_sla_expr.c), the aggregation windows
 * (common/cb_sla_window.c), the observations folded from a job's
 * events (sla/observe.c), a guarantee's evaluation: repetitions,
 * periods, windows (sla/guarantee.c), agreements' scope and validity
 * (sla/agreement.c) and the evaluator over a log (sla/evaluator.c). */
#include "cb_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cb_event.h"
#include "cb_sla_expr.h"
#include "cb_sla_window.h"
#include "agreement.h"
#include "evaluator.h"
#include "prom.h"
#include "guarantee.h"
#include "observe.h"

/* Metric values for a lookup: name=value pairs; an aggregate is looked up
 * as "agg:name". */
typedef struct vals {
    const char *names[8];
    double v[8];
    int n;
} vals;

static int lookup(void *ctx, const char *metric, cb_sla_agg agg, double *out)
{
    const vals *x = ctx;
    char key[80];
    snprintf(key, sizeof key, "%s%s%s", cb_sla_agg_name(agg), agg ? ":" : "", metric);
    for (int i = 0; i < x->n; i++)
        if (!strcmp(x->names[i], key)) {
            *out = x->v[i];
            return 0;
        }
    return -1;
}

static cb_sla_verdict judge(const char *text, const vals *x, double *obs)
{
    cb_sla_expr *e = NULL;
    char err[300];
    cb_sla_verdict v;
    if (cb_sla_parse(text, &e, err, sizeof err) != CB_OK)
        fail_msg("%s: %s", text, err);
    v = cb_sla_eval(e, lookup, (void *)x, obs, NULL);
    cb_sla_expr_free(e);
    return v;
}

static void expect_error(const char *text, const char *want)
{
    cb_sla_expr *e = NULL;
    char err[300];
    if (cb_sla_parse(text, &e, err, sizeof err) != CB_EINVAL)
        fail_msg("%s parsed", text);
    assert_null(e);
    if (!strstr(err, want))
        fail_msg("%s: got \"%s\", want \"%s\"", text, err, want);
}

static void test_comparisons(void **state)
{
    vals x = {{"execution_time"}, {250.5}, 1};
    double obs = 0;
    (void)state;
    assert_int_equal(judge("[execution_time] < 100", &x, &obs), CB_SLA_VIOLATED);
    assert_true(obs == 250.5);
    assert_int_equal(judge("[execution_time]<=250.5", &x, &obs), CB_SLA_HOLDS);
    assert_int_equal(judge("[execution_time] > 250.5", &x, NULL), CB_SLA_VIOLATED);
    assert_int_equal(judge("[execution_time] >= 250.5", &x, NULL), CB_SLA_HOLDS);
    assert_int_equal(judge("[execution_time] == 250.5", &x, NULL), CB_SLA_HOLDS);
    assert_int_equal(judge("[execution_time] != 250.5", &x, NULL), CB_SLA_VIOLATED);
    /* the metric on the right: observed is still the metric */
    assert_int_equal(judge("100 > [execution_time]", &x, &obs), CB_SLA_VIOLATED);
    assert_true(obs == 250.5);
    assert_int_equal(judge("[execution_time] < 1e3", &x, NULL), CB_SLA_HOLDS);
    assert_int_equal(judge("[execution_time] > -5", &x, NULL), CB_SLA_HOLDS);
}

static void test_logic_and_unknowns(void **state)
{
    vals x = {{"makespan", "failure_rate", "p95:makespan"}, {1500, 0.2, 2500}, 3};
    double obs = 0;
    (void)state;
    assert_int_equal(judge("[makespan] < 2000 && [failure_rate] <= 0.1", &x, &obs),
                     CB_SLA_VIOLATED);
    assert_true(obs == 0.2); /* the side that decided */
    assert_int_equal(judge("[makespan] < 2000 || [failure_rate] <= 0.1", &x, NULL), CB_SLA_HOLDS);
    assert_int_equal(judge("!([makespan] < 2000)", &x, NULL), CB_SLA_VIOLATED);
    assert_int_equal(judge("p95([makespan]) < 2000", &x, &obs), CB_SLA_VIOLATED);
    assert_true(obs == 2500);
    /* && binds tighter than || */
    assert_int_equal(judge("[makespan] > 9 || [makespan] > 1 && [makespan] < 0", &x, NULL),
                     CB_SLA_HOLDS);
    assert_int_equal(judge("([makespan] > 9 || [makespan] > 1) && [makespan] < 0", &x, NULL),
                     CB_SLA_VIOLATED);
    /* no value yet: unknown, unless the other side decides */
    assert_int_equal(judge("[throughput] > 10", &x, NULL), CB_SLA_UNKNOWN);
    assert_int_equal(judge("[throughput] > 10 && [makespan] < 1000", &x, &obs), CB_SLA_VIOLATED);
    assert_true(obs == 1500);
    assert_int_equal(judge("[throughput] > 10 || [makespan] < 2000", &x, NULL), CB_SLA_HOLDS);
    assert_int_equal(judge("[throughput] > 10 && [makespan] < 2000", &x, NULL), CB_SLA_UNKNOWN);
    assert_int_equal(judge("avg([makespan]) < 2000", &x, NULL), CB_SLA_UNKNOWN);
}

static void test_levels(void **state)
{
    cb_sla_expr *e;
    char err[300];
    (void)state;
    assert_int_equal(cb_sla_parse("[execution_time] < 100", &e, err, sizeof err), CB_OK);
    assert_int_equal(cb_sla_expr_level(e), CB_SLA_LEVEL_TASK);
    assert_false(cb_sla_expr_aggregates(e));
    cb_sla_expr_free(e);
    assert_int_equal(cb_sla_parse("p95([makespan]) < 2000 && [retries] == 0", &e, err, sizeof err),
                     CB_OK);
    assert_int_equal(cb_sla_expr_level(e), CB_SLA_LEVEL_JOB);
    assert_true(cb_sla_expr_aggregates(e));
    cb_sla_expr_free(e);
    expect_error("[execution_time] < 100 && [makespan] < 5", "mixes metrics of different levels");
    expect_error("[query] < 1 || [makespan] < 5", "mixes metrics of different levels");
}

static double bound_of(const char *text)
{
    cb_sla_expr *e;
    char err[300];
    double b;
    assert_int_equal(cb_sla_parse(text, &e, err, sizeof err), CB_OK);
    b = cb_sla_expr_bound(e, "makespan");
    cb_sla_expr_free(e);
    return b;
}

static void test_bounds(void **state)
{
    (void)state;
    assert_true(bound_of("[makespan] < 1500") == 1500);
    assert_true(bound_of("[makespan] <= 1500") == 1500);
    assert_true(bound_of("3000 > [makespan]") == 3000);
    assert_true(bound_of("[makespan] < 3000 && [failure_rate] <= 0 && [makespan] < 2000") == 2000);
    assert_true(bound_of("[makespan] < 3000 || [makespan] < 1000") == 3000);
    assert_true(isinf(bound_of("[makespan] < 3000 || [retries] == 0"))); /* either may hold */
    assert_true(isinf(bound_of("[makespan] > 3000")));
    assert_true(isinf(bound_of("p95([makespan]) < 3000"))); /* over many jobs, not this one */
    assert_true(isinf(bound_of("!([makespan] >= 3000)")));
    assert_true(isinf(bound_of("[failure_rate] < 1")));
}

static void test_errors_say_where(void **state)
{
    char big[CB_SLA_EXPR_MAX + 10];
    (void)state;
    expect_error("[exec_time] < 100", "at 1: unknown metric \"exec_time\" (known: execution_time");
    expect_error("", "at 0: expected an operand, found the end");
    expect_error("[makespan] <", "at 12: expected an operand, found the end");
    expect_error("[makespan] 100", "at 11: expected a comparison");
    expect_error("[makespan] < 100)", "at 16: unexpected \")\"");
    expect_error("([makespan] < 100", "at 17: expected \")\" to close the \"(\" at 0");
    expect_error("makespan < 100", "at 0: unknown function \"makespan\"");
    expect_error("p42([makespan]) < 1", "unknown function \"p42\"");
    expect_error("p95[makespan] < 1", "at 3: expected \"(\" after p95");
    expect_error("[makespan] < 100ms", "at 13: expected a number");
    expect_error("1 < 2", "a comparison needs a metric on one side");
    expect_error("[makespan] < 1 &&", "expected an operand, found the end");
    expect_error("[makespan] < 1 & [makespan] > 0", "at 15: unexpected \"& [makespan] > 0\"");
    expect_error("[] < 1", "at 1: expected a metric name");
    expect_error("[makespan < 1", "at 10: expected \"]\" after the metric");
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    expect_error(big, "longer than 512 bytes");
    {
        char deep[200] = "";
        for (int i = 0; i < 40; i++)
            strcat(deep, "(");
        expect_error(deep, "nested deeper than 32");
    }
}

static double agg(const cb_sla_window *w, cb_sla_agg a)
{
    double v = -1;
    assert_int_equal(cb_sla_window_agg(w, a, &v), 0);
    return v;
}

static void test_count_window(void **state)
{
    cb_sla_window w;
    double v;
    (void)state;
    cb_sla_window_init(&w, 0, 3);
    assert_int_equal(cb_sla_window_agg(&w, CB_SLA_AGG_AVG, &v), -1); /* empty */
    assert_true(agg(&w, CB_SLA_AGG_COUNT) == 0);
    for (int i = 1; i <= 5; i++) /* 1..5: the last 3 stay */
        assert_int_equal(cb_sla_window_add(&w, i * 1000000LL, i * 10.0), CB_OK);
    assert_int_equal(cb_sla_window_size(&w), 3);
    assert_true(agg(&w, CB_SLA_AGG_AVG) == 40);
    assert_true(agg(&w, CB_SLA_AGG_MIN) == 30);
    assert_true(agg(&w, CB_SLA_AGG_MAX) == 50);
    assert_true(agg(&w, CB_SLA_AGG_SUM) == 120);
    assert_true(agg(&w, CB_SLA_AGG_COUNT) == 3);
    assert_true(agg(&w, CB_SLA_AGG_NONE) == 50); /* the newest */
    cb_sla_window_trim(&w, 1LL << 60);           /* a count window ignores time */
    assert_int_equal(cb_sla_window_size(&w), 3);
    cb_sla_window_cleanup(&w);
}

static void test_time_window_and_percentiles(void **state)
{
    cb_sla_window w;
    (void)state;
    cb_sla_window_init(&w, 1000, 0); /* the last second */
    for (int i = 1; i <= 100; i++)   /* one value per 10 ms: 1..100 */
        assert_int_equal(cb_sla_window_add(&w, i * 10000000LL, (double)i), CB_OK);
    /* at 1.0 s: values from 0.0 s on, all 100 */
    assert_int_equal(cb_sla_window_size(&w), 100);
    assert_true(agg(&w, CB_SLA_AGG_P50) == 50);
    assert_true(agg(&w, CB_SLA_AGG_P90) == 90);
    assert_true(agg(&w, CB_SLA_AGG_P95) == 95);
    assert_true(agg(&w, CB_SLA_AGG_P99) == 99);
    /* a value 0.5 s later pushes out what is older than 0.5 s */
    assert_int_equal(cb_sla_window_add(&w, 1500000000LL, 1000.0), CB_OK);
    assert_int_equal(cb_sla_window_size(&w), 52); /* 50..100 at 0.5..1.0 s, and 1000 */
    assert_true(agg(&w, CB_SLA_AGG_MIN) == 50);
    assert_true(agg(&w, CB_SLA_AGG_P95) == 99);   /* rank 50 of 52 */
    assert_true(agg(&w, CB_SLA_AGG_P99) == 1000); /* rank 52 of 52 */
    assert_true(agg(&w, CB_SLA_AGG_MAX) == 1000);
    /* time passes without values: the window empties */
    cb_sla_window_trim(&w, 3000000000LL);
    assert_int_equal(cb_sla_window_size(&w), 0);
    /* a value older than the newest counts as of the newest */
    assert_int_equal(cb_sla_window_add(&w, 5000000000LL, 1.0), CB_OK);
    assert_int_equal(cb_sla_window_add(&w, 1000000000LL, 2.0), CB_OK);
    assert_int_equal(cb_sla_window_size(&w), 2);
    cb_sla_window_cleanup(&w);
    /* one value: every percentile is it */
    cb_sla_window_init(&w, 0, 10);
    assert_int_equal(cb_sla_window_add(&w, 0, 7.0), CB_OK);
    assert_true(agg(&w, CB_SLA_AGG_P50) == 7 && agg(&w, CB_SLA_AGG_P99) == 7);
    cb_sla_window_cleanup(&w);
}

/* Fold an event of job j1 at ms milliseconds; the observation's return. */
static int feed(cb_sla_watch *w, cb_event_type type, int64_t at_ms, json_t *data, cb_sla_obs *o)
{
    cb_event ev;
    char id[64];
    int r;
    snprintf(id, sizeof id, "t/j1/%d/%lld", (int)type, (long long)at_ms);
    assert_int_equal(cb_event_init(&ev, type, "t", "j1", id, "test", at_ms * 1000000, data), CB_OK);
    r = cb_sla_watch_apply(w, &ev, o);
    cb_event_cleanup(&ev);
    return r;
}

static double metric(const cb_sla_obs *o, const char *name)
{
    return o->v[cb_sla_metric_index(name)];
}

static void test_observations_of_a_job(void **state)
{
    cb_sla_watch *w = cb_sla_watch_new();
    cb_sla_obs o;
    double v;
    (void)state;
    assert_non_null(w);
    assert_int_equal(feed(w, CB_EV_JOB_SUBMITTED, 1000, NULL, &o), 0);
    assert_int_equal(feed(w, CB_EV_JOB_STARTED, 1002, NULL, &o), 0);
    assert_int_equal(feed(w, CB_EV_TASKS_DISPATCHED, 1005,
                          json_pack("{s:s, s:[{s:i, s:i}, {s:i, s:i}]}", "backend", "local",
                                    "tasks", "task", 0, "attempt", 1, "task", 1, "attempt", 1),
                          &o),
                     0);
    assert_int_equal(
        feed(w, CB_EV_TASK_STARTED, 1010, json_pack("{s:i, s:i}", "task", 0, "attempt", 1), &o), 0);
    assert_int_equal(
        feed(w, CB_EV_TASK_STARTED, 1012, json_pack("{s:i, s:i}", "task", 1, "attempt", 1), &o), 0);
    /* task 0 succeeds: its execution time is the adapter's duration_ms */
    assert_int_equal(feed(w, CB_EV_TASK_SUCCEEDED, 1360,
                          json_pack("{s:i, s:i, s:i, s:i}", "task", 0, "attempt", 1, "output", 8,
                                    "duration_ms", 349),
                          &o),
                     1);
    assert_int_equal(o.level, CB_SLA_LEVEL_TASK);
    assert_int_equal(o.task, 0);
    assert_true(metric(&o, "execution_time") == 349);
    assert_true(metric(&o, "queue_time") == 10);      /* submitted 1000 -> started 1010 */
    assert_true(metric(&o, "dispatch_latency") == 5); /* dispatched 1005 -> started 1010 */
    assert_true(metric(&o, "task_retries") == 0);
    assert_true(isnan(metric(&o, "makespan")));
    assert_int_equal(cb_sla_obs_lookup(&o, "execution_time", CB_SLA_AGG_NONE, &v), 0);
    assert_true(v == 349);
    assert_int_equal(cb_sla_obs_lookup(&o, "makespan", CB_SLA_AGG_NONE, &v), -1);
    /* the same outcome again (a redelivery): observed once */
    assert_int_equal(
        feed(w, CB_EV_TASK_SUCCEEDED, 1361, json_pack("{s:i, s:i}", "task", 0, "attempt", 1), &o),
        0);
    /* task 1 fails, is retried and succeeds: no duration: started -> outcome */
    assert_int_equal(feed(w, CB_EV_TASK_FAILED, 1100,
                          json_pack("{s:i, s:i, s:s, s:s}", "task", 1, "attempt", 1, "error", "x",
                                    "reason", "exit"),
                          &o),
                     1);
    assert_true(metric(&o, "execution_time") == 88);
    assert_int_equal(feed(w, CB_EV_TASK_RETRY_SCHEDULED, 1101,
                          json_pack("{s:i, s:i}", "task", 1, "attempt", 2), &o),
                     0);
    assert_int_equal(feed(w, CB_EV_TASKS_DISPATCHED, 1200,
                          json_pack("{s:s, s:[{s:i, s:i}]}", "backend", "local", "tasks", "task", 1,
                                    "attempt", 2),
                          &o),
                     0);
    assert_int_equal(
        feed(w, CB_EV_TASK_STARTED, 1203, json_pack("{s:i, s:i}", "task", 1, "attempt", 2), &o), 0);
    assert_int_equal(
        feed(w, CB_EV_TASK_SUCCEEDED, 1250,
             json_pack("{s:i, s:i, s:[i, i]}", "task", 1, "attempt", 2, "cost", 100, 1500), &o),
        1);
    assert_true(metric(&o, "task_cost") == 1.5e-6);
    assert_true(metric(&o, "execution_time") == 47);
    assert_true(metric(&o, "queue_time") == 12); /* the first start counts */
    assert_true(metric(&o, "dispatch_latency") == 3);
    assert_true(metric(&o, "task_retries") == 1);
    /* a late outcome of the older attempt: not observed */
    assert_int_equal(feed(w, CB_EV_TASK_FAILED, 1260,
                          json_pack("{s:i, s:i, s:s, s:s}", "task", 1, "attempt", 1, "error", "x",
                                    "reason", "exit"),
                          &o),
                     0);
    /* the end */
    assert_int_equal(feed(w, CB_EV_JOB_SUCCEEDED, 2000, json_pack("{s:i}", "result", 1), &o), 1);
    assert_int_equal(o.level, CB_SLA_LEVEL_JOB);
    assert_true(metric(&o, "makespan") == 1000);
    assert_true(metric(&o, "job_queue_time") == 2);
    assert_true(metric(&o, "failure_rate") == 0); /* the retry succeeded */
    assert_true(metric(&o, "retries") == 1);
    assert_true(metric(&o, "throughput") == 2); /* 2 tasks in 1 s */
    assert_true(metric(&o, "cost") == 1.5e-6);  /* the attempts' costs observed */
    assert_true(isnan(metric(&o, "execution_time")));
    assert_int_equal(feed(w, CB_EV_JOB_SUCCEEDED, 2001, NULL, &o), 0); /* once */
    cb_sla_watch_free(w);
}

static void test_a_guarantee_on_observations(void **state)
{
    /* [execution_time] < 100 over the observation of a 349 ms task: violated, 349 observed */
    cb_sla_watch *w = cb_sla_watch_new();
    cb_sla_expr *e;
    cb_sla_obs o;
    char err[200];
    double obs = 0, thr = 0;
    (void)state;
    assert_int_equal(cb_sla_parse("[execution_time] < 100", &e, err, sizeof err), CB_OK);
    assert_int_equal(feed(w, CB_EV_JOB_SUBMITTED, 0, NULL, &o), 0);
    assert_int_equal(feed(w, CB_EV_TASK_SUCCEEDED, 400,
                          json_pack("{s:i, s:i, s:i}", "task", 0, "attempt", 1, "duration_ms", 349),
                          &o),
                     1);
    assert_int_equal(cb_sla_eval(e, cb_sla_obs_lookup, &o, &obs, &thr), CB_SLA_VIOLATED);
    assert_true(thr == 100);
    assert_true(obs == 349);
    /* a job metric of a task observation: unknown, not a verdict */
    cb_sla_expr_free(e);
    assert_int_equal(cb_sla_parse("[makespan] < 100", &e, err, sizeof err), CB_OK);
    assert_int_equal(cb_sla_eval(e, cb_sla_obs_lookup, &o, &obs, NULL), CB_SLA_UNKNOWN);
    cb_sla_expr_free(e);
    cb_sla_watch_free(w);
}

static void guarantee(cb_sla_guarantee *g, const char *json)
{
    json_t *spec = json_loads(json, 0, NULL);
    char err[300];
    assert_non_null(spec);
    if (cb_sla_guarantee_init(g, spec, err, sizeof err) != CB_OK)
        fail_msg("%s: %s", json, err);
    json_decref(spec);
}

static cb_sla_obs task_obs(int64_t at_ms, uint32_t task, double exec_ms)
{
    cb_sla_obs o;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < CB_SLA_NMETRICS; i++)
        o.v[i] = NAN;
    o.level = CB_SLA_LEVEL_TASK;
    o.task = task;
    o.time_ns = at_ms * 1000000;
    o.v[cb_sla_metric_index("execution_time")] = exec_ms;
    return o;
}

static cb_sla_obs job_obs(int64_t at_ms, double makespan_ms)
{
    cb_sla_obs o = task_obs(at_ms, 0, NAN);
    o.level = CB_SLA_LEVEL_JOB;
    o.v[cb_sla_metric_index("makespan")] = makespan_ms;
    return o;
}

static void test_repetitions(void **state)
{
    cb_sla_guarantee g;
    cb_sla_breach b;
    cb_sla_obs o;
    (void)state;
    guarantee(&g, "{\"name\": \"fast\", \"constraint\": \"[execution_time] < 100\", "
                  "\"repetitions\": 3}");
    o = task_obs(1, 0, 300);
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0); /* 1st violation */
    o = task_obs(2, 1, 310);
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0); /* 2nd: no breach yet */
    o = task_obs(3, 2, 320);
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 1); /* the 3rd in a row */
    assert_string_equal(b.guarantee, "fast");
    assert_string_equal(b.constraint, "[execution_time] < 100");
    assert_true(b.observed == 320);
    assert_int_equal(b.ordinal, 1);
    assert_int_equal(b.task, 2);
    assert_true(b.time_ns == 3000000);
    /* two more violations, one that holds: the streak ends, no breach; the
     * first evaluation that holds after the breach is its recovery */
    o = task_obs(4, 3, 300);
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0);
    o = task_obs(5, 4, 300);
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0);
    o = task_obs(6, 5, 50);
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), CB_SLA_RECOVERED);
    assert_int_equal(b.ordinal, 1);
    assert_true(b.observed == 50);
    assert_int_equal(b.task, 5);
    o = task_obs(6, 5, 40); /* in compliance already: nothing to report */
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0);
    g.evaluations--; /* the counts below are of the six before it */
    /* a job observation is not this guarantee's level; no value is no evaluation */
    o = job_obs(7, 10);
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0);
    o = task_obs(8, 6, NAN);
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0);
    assert_int_equal(g.evaluations, 6);
    assert_int_equal(g.violations, 5);
    assert_int_equal(g.breaches, 1);
    assert_int_equal(g.streak, 0);
    for (int i = 0; i < 3; i++) { /* three more in a row: the second breach */
        o = task_obs(10 + i, 7 + (uint32_t)i, 200);
        assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), i == 2);
    }
    assert_int_equal(b.ordinal, 2);
    cb_sla_guarantee_cleanup(&g);
    /* default: one violation is a breach */
    guarantee(&g, "{\"name\": \"g\", \"constraint\": \"[execution_time] < 100\"}");
    o = task_obs(1, 0, 349);
    assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 1);
    assert_true(b.observed == 349);
    cb_sla_guarantee_cleanup(&g);
}

static void test_periodic_window(void **state)
{
    /* p95 of the makespans of the last 10 s, every second */
    cb_sla_guarantee g;
    cb_sla_breach b;
    cb_sla_obs o;
    int64_t t = 0;
    (void)state;
    guarantee(&g, "{\"name\": \"p95\", \"constraint\": \"p95([makespan]) < 2000\", "
                  "\"window\": {\"ms\": 10000}, \"period_ms\": 1000}");
    assert_int_equal(cb_sla_guarantee_tick(&g, 5000000000LL, &b), 0); /* nothing observed */
    for (int i = 0; i < 20; i++) {                                    /* fast jobs */
        o = job_obs(t += 100, 500);
        assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0); /* periodic: no verdict */
    }
    assert_int_equal(g.evaluations, 0);
    assert_int_equal(cb_sla_guarantee_tick(&g, 2000 * 1000000LL, &b), 0); /* holds */
    assert_int_equal(g.evaluations, 1);
    assert_int_equal(cb_sla_guarantee_tick(&g, 2500 * 1000000LL, &b), 0); /* not a period yet */
    assert_int_equal(g.evaluations, 1);
    for (int i = 0; i < 5; i++) { /* slow ones: 5 of 25 over 2 s, p95 over */
        o = job_obs(t += 100, 5000);
        assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0);
    }
    assert_int_equal(cb_sla_guarantee_tick(&g, 3100 * 1000000LL, &b), 1);
    assert_true(b.observed == 5000);
    assert_int_equal(b.ordinal, 1);
    /* 15 s later the slow ones left the window; new fast jobs: back in compliance */
    for (int i = 0; i < 10; i++) {
        o = job_obs(18000 + i * 100, 400);
        assert_int_equal(cb_sla_guarantee_observe(&g, &o, &b), 0);
    }
    assert_int_equal(cb_sla_guarantee_tick(&g, 19000 * 1000000LL, &b), CB_SLA_RECOVERED);
    assert_true(b.observed == 400);
    assert_int_equal(b.ordinal, 1);
    assert_int_equal(g.streak, 0);
    assert_int_equal(g.evaluations, 3);
    assert_int_equal(g.breaches, 1);
    cb_sla_guarantee_cleanup(&g);
}

static void test_guarantee_errors(void **state)
{
    cb_sla_guarantee g;
    char err[300];
    json_t *spec = json_pack("{s:s, s:s}", "name", "g", "constraint", "[exec_time] < 100");
    (void)state;
    assert_int_equal(cb_sla_guarantee_init(&g, spec, err, sizeof err), CB_EINVAL);
    assert_non_null(strstr(err, "/constraint: at 1: unknown metric \"exec_time\""));
    cb_sla_guarantee_cleanup(&g);
    json_decref(spec);
}

static json_t *load_example(const char *name)
{
    char path[512];
    json_t *j;
    snprintf(path, sizeof path, "%s/examples/valid/%s", CB_SCHEMA_DIR, name);
    j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_agreement_scope_and_validity(void **state)
{
    cb_sla_agreement a;
    char err[300];
    json_t *spec = load_example("agreement-job-execution-time.json"), *d;
    int64_t now = 1796083200LL * 1000000000LL; /* 2026-12-01T00:00:00Z + a little below */
    (void)state;
    assert_int_equal(cb_sla_agreement_init(&a, spec, "acme", err, sizeof err), CB_OK);
    assert_string_equal(a.id, "fast-tasks");
    assert_int_equal(a.n, 1);
    assert_int_equal(a.g[0].repetitions, 3);
    d = json_pack("{s:{s:s, s:s}}", "function", "backend", "local", "name", "f");
    assert_true(cb_sla_agreement_watches(&a, "acme", "nightly", d, now + 1000));
    assert_false(cb_sla_agreement_watches(&a, "acme", "daily", d, now + 1000));
    assert_false(cb_sla_agreement_watches(&a, "bob", "nightly", d, now + 1000));
    assert_false(cb_sla_agreement_watches(&a, "acme", "nightly", d, now - 1)); /* before */
    assert_false(cb_sla_agreement_watches(&a, "acme", "nightly", d,
                                          now + 366LL * 86400 * 1000000000LL)); /* expired */
    a.stopped = 1;
    assert_false(cb_sla_agreement_watches(&a, "acme", "nightly", d, now + 1000));
    cb_sla_agreement_cleanup(&a);
    /* the submitter's tenant must be the agreement's */
    assert_int_equal(cb_sla_agreement_init(&a, spec, "bob", err, sizeof err), CB_EINVAL);
    assert_string_equal(err, "/tenant: \"acme\" is not the submitter's tenant \"bob\"");
    cb_sla_agreement_cleanup(&a);
    json_decref(spec);
    json_decref(d);

    spec = load_example("agreement-tenant-window.json");
    assert_int_equal(cb_sla_agreement_init(&a, spec, "acme", err, sizeof err), CB_OK);
    d = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "function", "backend", "local", "name",
                  "wordcount", "labels", "team", "data", "env", "prod");
    assert_true(cb_sla_agreement_watches(&a, "acme", "any", d, 1));
    json_object_set_new(json_object_get(d, "labels"), "team", json_string("web"));
    assert_false(cb_sla_agreement_watches(&a, "acme", "any", d, 1));
    json_object_set_new(json_object_get(d, "labels"), "team", json_string("data"));
    json_object_set_new(json_object_get(d, "function"), "name", json_string("other"));
    assert_false(cb_sla_agreement_watches(&a, "acme", "any", d, 1));
    cb_sla_agreement_cleanup(&a);
    json_decref(spec);
    json_decref(d);
}

static void test_agreement_errors(void **state)
{
    cb_sla_agreement a;
    char err[300];
    json_t *spec =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}}", "id", "x", "name",
                  "x", "details", "id", "x", "type", "agreement", "name", "x", "guarantees", "name",
                  "g", "constraint", "[makespan] < 1", "name", "g", "constraint", "[makespan] < 2");
    json_t *sla = json_pack("{s:[{s:s, s:s}]}", "guarantees", "name", "fast", "constraint",
                            "[exec_time] < 100");
    (void)state;
    assert_int_equal(cb_sla_agreement_init(&a, spec, "t", err, sizeof err), CB_EINVAL);
    assert_string_equal(err, "/details/guarantees/1/name: \"g\" is the name of guarantee 0 too");
    cb_sla_agreement_cleanup(&a);
    json_object_set_new(
        json_array_get(json_object_get(json_object_get(spec, "details"), "guarantees"), 1),
        "constraint", json_string("[makespan] <"));
    json_object_set_new(
        json_array_get(json_object_get(json_object_get(spec, "details"), "guarantees"), 1), "name",
        json_string("h"));
    assert_int_equal(cb_sla_agreement_init(&a, spec, "t", err, sizeof err), CB_EINVAL);
    assert_string_equal(err, "/details/guarantees/1/constraint: at 12: expected an operand, "
                             "found the end");
    cb_sla_agreement_cleanup(&a);
    /* a job's own guarantees: the job's path */
    assert_int_equal(cb_sla_agreement_of_job(&a, "t", "j1", sla, err, sizeof err), CB_EINVAL);
    assert_non_null(strstr(err, "/sla/guarantees/0/constraint: at 1: unknown metric"));
    cb_sla_agreement_cleanup(&a);
    json_decref(spec);
    json_decref(sla);
}

typedef struct seen {
    char agreement[64][160], job[64][160], guarantee[64][160];
    double observed[64];
    uint64_t ordinal[64];
    int n;
    int recovered; /* recoveries, counted apart */
    int at_risk;   /* warnings, with the last one's figures */
    int refused;   /* jobs whose template could not be filled in */
    char why[400];
    double predicted, bound;
} seen;

static void on_breach(void *ctx, const cb_sla_agreement *a, const cb_sla_breach *b, int kind,
                      const char *job)
{
    seen *x = ctx;
    if (kind == CB_SLA_RECOVERED) {
        x->recovered++;
        return;
    }
    if (kind == CB_SLA_REFUSED) {
        x->refused++;
        snprintf(x->why, sizeof x->why, "%s", b->constraint);
        return;
    }
    if (kind == CB_SLA_AT_RISK) {
        x->at_risk++;
        x->predicted = b->observed;
        x->bound = b->bound;
        return;
    }
    assert_int_equal(kind, CB_SLA_BREACHED);
    assert_true(x->n < 64);
    snprintf(x->agreement[x->n], 160, "%s", a->id);
    snprintf(x->job[x->n], 160, "%s", job ? job : "");
    snprintf(x->guarantee[x->n], 160, "%s", b->guarantee);
    x->observed[x->n] = b->observed;
    x->ordinal[x->n] = b->ordinal;
    x->n++;
}

/* An event of `job` (tenant t) at ms milliseconds into the evaluator. */
static void log_event(cb_sla_evaluator *e, const char *job, cb_event_type type, int64_t at_ms,
                      json_t *data)
{
    cb_event ev;
    char id[96];
    snprintf(id, sizeof id, "t/%s/%d/%lld", job, (int)type, (long long)at_ms);
    assert_int_equal(cb_event_init(&ev, type, "t", job, id, "test", at_ms * 1000000, data), CB_OK);
    assert_int_equal(cb_sla_evaluator_apply(e, &ev), CB_OK);
    cb_event_cleanup(&ev);
}

/* Log the submission of tenant t's map `job` (of f on local) at t0, with
 * its own agreement sla (taken) if not NULL. */
static void submit_map(cb_sla_evaluator *e, const char *job, int64_t t0, json_t *sla)
{
    json_t *desc = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "tenant", "t", "job_id", job, "kind",
                             "map", "function", "backend", "local", "name", "f");
    if (sla)
        json_object_set_new(desc, "sla", sla);
    log_event(e, job, CB_EV_JOB_SUBMITTED, t0, json_pack("{s:o}", "job", desc));
}

static void run_job(cb_sla_evaluator *e, const char *job, int64_t t0, json_t *sla, int ntasks,
                    int task_ms)
{
    submit_map(e, job, t0, sla);
    for (int i = 0; i < ntasks; i++)
        log_event(e, job, CB_EV_TASK_SUCCEEDED, t0 + (i + 1) * task_ms,
                  json_pack("{s:i, s:i, s:i}", "task", i, "attempt", 1, "duration_ms", task_ms));
    log_event(e, job, CB_EV_JOB_SUCCEEDED, t0 + (ntasks + 1) * task_ms, NULL);
}

static void test_evaluator_over_a_log(void **state)
{
    seen x = {0};
    cb_sla_evaluator *e = cb_sla_evaluator_new(on_breach, &x);
    cb_sla_agreement a;
    char err[300];
    json_t *spec =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:[{s:s, s:s}]}}", "id", "quick-jobs", "name",
                  "quick jobs", "details", "id", "quick-jobs", "type", "agreement", "name", "q",
                  "guarantees", "name", "makespan", "constraint", "[makespan] < 1000");
    (void)state;
    assert_non_null(e);
    assert_int_equal(cb_sla_agreement_init(&a, spec, "t", err, sizeof err), CB_OK);
    assert_int_equal(cb_sla_evaluator_put(e, &a), CB_OK);
    assert_int_equal(cb_sla_evaluator_count(e), 1);
    /* j1: its own [execution_time] < 100 and the tenant's makespan; tasks of 349 ms */
    run_job(e, "j1", 100,
            json_pack("{s:[{s:s, s:s}]}", "guarantees", "name", "fast", "constraint",
                      "[execution_time] < 100"),
            2, 349);
    assert_int_equal(x.n, 3); /* two slow tasks, a slow job */
    assert_string_equal(x.agreement[0], "job-j1");
    assert_string_equal(x.guarantee[0], "fast");
    assert_string_equal(x.job[0], "j1");
    assert_true(x.observed[0] == 349);
    assert_int_equal(x.ordinal[1], 2);
    assert_string_equal(x.agreement[2], "quick-jobs");
    assert_true(x.observed[2] == 1047);
    assert_int_equal(cb_sla_evaluator_jobs(e), 0); /* forgotten at its end */
    /* j2: quick; no breach, the tenant's agreement back in compliance */
    assert_int_equal(x.recovered, 0);
    run_job(e, "j2", 5000, NULL, 1, 10);
    assert_int_equal(x.n, 3);
    assert_int_equal(x.recovered, 1);
    /* stopped: not evaluated; started again: evaluated */
    assert_int_equal(cb_sla_evaluator_set_stopped(e, "t", "quick-jobs", 1), 1);
    run_job(e, "j3", 9000, NULL, 1, 2000);
    assert_int_equal(x.n, 3);
    assert_int_equal(cb_sla_evaluator_set_stopped(e, "t", "quick-jobs", 0), 1);
    run_job(e, "j4", 20000, NULL, 1, 2000);
    assert_int_equal(x.n, 4);
    assert_int_equal(x.ordinal[3], 2); /* the agreement's second breach */
    /* removed: nothing more */
    assert_int_equal(cb_sla_evaluator_remove(e, "t", "quick-jobs"), 1);
    assert_int_equal(cb_sla_evaluator_remove(e, "t", "quick-jobs"), 0);
    run_job(e, "j5", 30000, NULL, 1, 2000);
    assert_int_equal(x.n, 4);
    /* events of a job it never saw submitted: ignored */
    log_event(e, "ghost", CB_EV_TASK_SUCCEEDED, 40000,
              json_pack("{s:i, s:i, s:i}", "task", 0, "attempt", 1, "duration_ms", 5000));
    assert_int_equal(x.n, 4);
    assert_int_equal(cb_sla_evaluator_jobs(e), 0);
    cb_sla_evaluator_free(e);
    json_decref(spec);
}

/* A batch of successes (cb.tasks.succeeded) is observed part by part: each
 * slow task of the batch is its own breach, with its own task's figure. */
static void test_a_batch_is_observed_part_by_part(void **state)
{
    seen x = {0};
    cb_sla_evaluator *e = cb_sla_evaluator_new(on_breach, &x);
    (void)state;
    assert_non_null(e);
    submit_map(e, "b1", 0,
               json_pack("{s:[{s:s, s:s}]}", "guarantees", "name", "fast", "constraint",
                         "[execution_time] < 100"));
    log_event(e, "b1", CB_EV_TASKS_SUCCEEDED, 500,
              json_pack("{s:[{s:i, s:i, s:i}, {s:i, s:i, s:i}, {s:i, s:i, s:i}]}", "tasks", "task",
                        0, "attempt", 1, "duration_ms", 300, "task", 1, "attempt", 1, "duration_ms",
                        20, "task", 2, "attempt", 1, "duration_ms", 400));
    assert_int_equal(x.n, 2); /* tasks 0 and 2 */
    assert_true(x.observed[0] == 300);
    assert_true(x.observed[1] == 400);
    assert_int_equal(x.ordinal[1], 2);
    /* a repeat of the batch: seen already, no breach again */
    log_event(e, "b1", CB_EV_TASKS_SUCCEEDED, 600,
              json_pack("{s:[{s:i, s:i, s:i}, {s:i, s:i, s:i}]}", "tasks", "task", 0, "attempt", 1,
                        "duration_ms", 300, "task", 2, "attempt", 1, "duration_ms", 400));
    assert_int_equal(x.n, 2);
    log_event(e, "b1", CB_EV_JOB_SUCCEEDED, 700, NULL);
    assert_int_equal(cb_sla_evaluator_jobs(e), 0);
    cb_sla_evaluator_free(e);
}

/* What a reader may pass over undecoded: the events of a job nothing
 * watches, from its submission on; never a submission or an agreement's or
 * a breach's event; a watched job's events until its end. */
static void test_what_may_be_passed_over(void **state)
{
    seen x = {0};
    cb_sla_evaluator *e = cb_sla_evaluator_new(on_breach, &x);
    (void)state;
    assert_non_null(e);
    for (int t = 0; t < CB_EV__COUNT; t++) {
        bool always = t == CB_EV_JOB_SUBMITTED || t == CB_EV_SLA_VIOLATED ||
                      (t >= CB_EV_SLA_CREATED && t <= CB_EV_SLA_AT_RISK);
        assert_int_equal(cb_sla_evaluator_needs(e, (cb_event_type)t, "t", "w1"), always);
    }
    assert_true(cb_sla_evaluator_needs(e, CB_EV_UNKNOWN, "t", "w1"));
    submit_map(e, "plain", 0, NULL); /* nothing watches it */
    assert_false(cb_sla_evaluator_needs(e, CB_EV_TASKS_SUCCEEDED, "t", "plain"));
    submit_map(e, "w1", 0,
               json_pack("{s:[{s:s, s:s}]}", "guarantees", "name", "fast", "constraint",
                         "[execution_time] < 100"));
    assert_true(cb_sla_evaluator_needs(e, CB_EV_TASK_SUCCEEDED, "t", "w1"));
    assert_true(cb_sla_evaluator_needs(e, CB_EV_TASKS_SUCCEEDED, "t", "w1"));
    assert_false(cb_sla_evaluator_needs(e, CB_EV_TASK_SUCCEEDED, "u", "w1")); /* another tenant */
    log_event(e, "w1", CB_EV_JOB_SUCCEEDED, 100, NULL);
    assert_false(cb_sla_evaluator_needs(e, CB_EV_TASK_SUCCEEDED, "t", "w1"));
    cb_sla_evaluator_free(e);
}

static json_t *agreement_spec(const char *id, const char *constraint, const char *type)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:[{s:s, s:s}]}}", "id", id, "name", id,
                     "details", "id", id, "type", type, "name", id, "guarantees", "name", "g",
                     "constraint", constraint);
}

/* cb.sla.created/updated (with a spec) of agreement `id` at version, in the
 * log at at_ms: the agreement it makes (NULL if none). */
static const cb_sla_agreement *put(cb_sla_evaluator *e, cb_event_type t, int64_t at_ms,
                                   const char *id, int version, const char *constraint,
                                   const char *type)
{
    log_event(e, CB_SLA_SUBJECT, t, at_ms,
              json_pack("{s:s, s:i, s:o}", "agreement", id, "version", version, "spec",
                        agreement_spec(id, constraint, type)));
    return cb_sla_evaluator_get(e, "t", id);
}

/* A change of state of agreement `id` (started, stopped, deleted) at version. */
static void change(cb_sla_evaluator *e, cb_event_type t, int64_t at_ms, const char *id, int version)
{
    log_event(e, CB_SLA_SUBJECT, t, at_ms,
              json_pack("{s:s, s:i}", "agreement", id, "version", version));
}

static void test_agreements_from_the_log(void **state)
{
    seen x = {0};
    cb_sla_evaluator *e = cb_sla_evaluator_new(on_breach, &x);
    const cb_sla_agreement *a;
    (void)state;
    assert_non_null(a = put(e, CB_EV_SLA_CREATED, 10, "mk", 1, "[makespan] < 1000", "agreement"));
    assert_int_equal(a->version, 1);
    run_job(e, "j1", 100, NULL, 1, 2000);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.job[0], "j1");
    assert_int_equal(json_array_size(a->recent), 1);
    /* stopped: not evaluated; a repeated version changes nothing */
    change(e, CB_EV_SLA_STOPPED, 20, "mk", 2);
    change(e, CB_EV_SLA_STARTED, 21, "mk", 2);
    assert_int_equal(a->stopped, 1);
    run_job(e, "j2", 5000, NULL, 1, 2000);
    assert_int_equal(x.n, 1);
    change(e, CB_EV_SLA_STARTED, 22, "mk", 3);
    assert_int_equal(a->stopped, 0);
    /* updated: a looser threshold; its counts start again */
    assert_non_null(a = put(e, CB_EV_SLA_UPDATED, 30, "mk", 4, "[makespan] < 10000", "agreement"));
    assert_int_equal(a->version, 4);
    assert_int_equal(a->g[0].breaches, 0);
    run_job(e, "j3", 9000, NULL, 1, 2000);
    assert_int_equal(x.n, 1);
    assert_int_equal(a->g[0].evaluations, 1);
    /* terminated: kept, not evaluated */
    log_event(e, CB_SLA_SUBJECT, CB_EV_SLA_TERMINATED, 40,
              json_pack("{s:s, s:i, s:s}", "agreement", "mk", "version", 5, "reason", "expired"));
    assert_int_equal(a->terminated, 1);
    run_job(e, "j4", 20000, NULL, 1, 20000);
    assert_int_equal(x.n, 1);
    assert_int_equal(cb_sla_evaluator_count(e), 1);
    /* a template is kept, never evaluated */
    assert_non_null(a = put(e, CB_EV_SLA_CREATED, 50, "tpl", 1, "[makespan] < {{ms}}", "template"));
    assert_int_equal(a->is_template, 1);
    run_job(e, "j5", 30000, NULL, 1, 20000);
    assert_int_equal(x.n, 1);
    /* a job that names the template: its own guarantees filled in */
    run_job(e, "tj", 31000,
            json_pack("{s:{s:s, s:{s:i}}}", "template", "id", "tpl", "values", "ms", 5), 1, 2000);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.agreement[1], "job-tj");
    assert_true(x.observed[1] >= 2000);
    run_job(e, "tk", 32000, json_pack("{s:{s:s, s:{}}}", "template", "id", "tpl", "values"), 1, 10);
    assert_int_equal(x.refused, 1);
    assert_string_equal(x.why, "template \"tpl\": no value for {{ms}}");
    run_job(e, "tl", 33000, json_pack("{s:{s:s}}", "template", "id", "nope"), 1, 10);
    assert_int_equal(x.refused, 2);
    assert_string_equal(x.why, "/sla/template/id: tenant \"t\" has no template \"nope\"");
    assert_int_equal(x.n, 2);
    /* deleted */
    change(e, CB_EV_SLA_DELETED, 60, "mk", 6);
    assert_null(cb_sla_evaluator_get(e, "t", "mk"));
    assert_int_equal(cb_sla_evaluator_count(e), 1);
    /* a periodic guarantee takes its breach count from the log */
    {
        json_t *spec = agreement_spec("per", "[makespan] < 10", "agreement");
        json_object_set_new(
            json_array_get(json_object_get(json_object_get(spec, "details"), "guarantees"), 0),
            "period_ms", json_integer(1000));
        log_event(e, CB_SLA_SUBJECT, CB_EV_SLA_CREATED, 70,
                  json_pack("{s:s, s:i, s:o}", "agreement", "per", "version", 1, "spec", spec));
        log_event(e, CB_SLA_SUBJECT, CB_EV_SLA_VIOLATED, 80,
                  json_pack("{s:s, s:s, s:s, s:i}", "agreement", "per", "guarantee", "g",
                            "constraint", "[makespan] < 10", "ordinal", 3));
        assert_non_null(a = cb_sla_evaluator_get(e, "t", "per"));
        assert_int_equal(a->g[0].breaches, 3);
        assert_int_equal(a->g[0].in_breach, 1);
        log_event(e, CB_SLA_SUBJECT, CB_EV_SLA_RECOVERED, 90,
                  json_pack("{s:s, s:s, s:s, s:i}", "agreement", "per", "guarantee", "g",
                            "constraint", "[makespan] < 10", "ordinal", 3));
        assert_int_equal(a->g[0].in_breach, 0);
    }
    cb_sla_evaluator_free(e);
}

static void test_at_risk(void **state)
{
    seen x = {0};
    cb_sla_evaluator *e = cb_sla_evaluator_new(on_breach, &x);
    json_t *desc =
        json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s, s:s}]}}", "tenant", "t", "job_id",
                  "j1", "kind", "map", "function", "backend", "local", "name", "f", "sla",
                  "guarantees", "name", "quick", "constraint", "[makespan] < 1500");
    (void)state;
    /* 8 tasks of 300 ms one after the other: 2.4 s for a bound of 1.5 s */
    log_event(e, "j1", CB_EV_JOB_SUBMITTED, 0, json_pack("{s:o}", "job", desc));
    log_event(e, "j1", CB_EV_JOB_STARTED, 5, json_pack("{s:i}", "tasks", 8));
    log_event(e, "j1", CB_EV_TASK_SUCCEEDED, 300,
              json_pack("{s:i, s:i, s:i}", "task", 0, "attempt", 1, "duration_ms", 300));
    assert_int_equal(x.at_risk, 0); /* one outcome is too little to predict from */
    log_event(e, "j1", CB_EV_TASK_SUCCEEDED, 600,
              json_pack("{s:i, s:i, s:i}", "task", 1, "attempt", 1, "duration_ms", 300));
    assert_int_equal(x.at_risk, 1); /* 600 ms for 2 of 8: 2400 ms predicted, before 1500 */
    assert_true(x.predicted == 2400);
    assert_true(x.bound == 1500);
    log_event(e, "j1", CB_EV_TASK_SUCCEEDED, 900,
              json_pack("{s:i, s:i, s:i}", "task", 2, "attempt", 1, "duration_ms", 300));
    assert_int_equal(x.at_risk, 1); /* once per job and guarantee */
    /* a job on pace gets no warning */
    desc = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s, s:s}]}}", "tenant", "t", "job_id",
                     "j2", "kind", "map", "function", "backend", "local", "name", "f", "sla",
                     "guarantees", "name", "quick", "constraint", "[makespan] < 1500");
    log_event(e, "j2", CB_EV_JOB_SUBMITTED, 10000, json_pack("{s:o}", "job", desc));
    log_event(e, "j2", CB_EV_JOB_STARTED, 10005, json_pack("{s:i}", "tasks", 8));
    for (int i = 0; i < 8; i++)
        log_event(e, "j2", CB_EV_TASK_SUCCEEDED, 10000 + (i + 1) * 100,
                  json_pack("{s:i, s:i, s:i}", "task", i, "attempt", 1, "duration_ms", 100));
    assert_int_equal(x.at_risk, 1);
    cb_sla_evaluator_free(e);
}

static void test_prometheus(void **state)
{
    seen x = {0};
    cb_sla_evaluator *e = cb_sla_evaluator_new(on_breach, &x);
    cb_sla_guarantee g;
    cb_sla_agreement a;
    json_t *spec;
    char err[300];
    double v = 0;
    (void)state;
    /* the answers of the query API */
    const char *vec = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
                      "[{\"metric\":{},\"value\":[1733130000.5,\"42.5\"]}]}}";
    assert_int_equal(cb_sla_prom_value(vec, strlen(vec), &v, err, sizeof err), 1);
    assert_true(v == 42.5);
    const char *scalar =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"7\"]}}";
    assert_int_equal(cb_sla_prom_value(scalar, strlen(scalar), &v, err, sizeof err), 1);
    assert_true(v == 7);
    const char *empty =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}";
    assert_int_equal(cb_sla_prom_value(empty, strlen(empty), &v, err, sizeof err), 0);
    const char *bad = "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}";
    assert_int_equal(cb_sla_prom_value(bad, strlen(bad), &v, err, sizeof err), -1);
    assert_string_equal(err, "parse error");
    const char *matrix =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}";
    assert_int_equal(cb_sla_prom_value(matrix, strlen(matrix), &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "a matrix answer"));
    assert_int_equal(cb_sla_prom_value("<html>", 6, &v, err, sizeof err), -1);
    /* a query and [query] go together */
    spec = json_pack("{s:s, s:s}", "name", "g", "constraint", "[query] < 5");
    assert_int_equal(cb_sla_guarantee_init(&g, spec, err, sizeof err), CB_EINVAL);
    assert_non_null(strstr(err, "/query: [query] is the value of the guarantee's query"));
    cb_sla_guarantee_cleanup(&g);
    json_decref(spec);
    spec = json_pack("{s:s, s:s, s:s}", "name", "g", "constraint", "[makespan] < 5", "query", "up");
    assert_int_equal(cb_sla_guarantee_init(&g, spec, err, sizeof err), CB_EINVAL);
    assert_string_equal(err, "/query: only a constraint on [query] uses a query");
    cb_sla_guarantee_cleanup(&g);
    json_decref(spec);
    /* its answers are evaluated at once, and belong to no job */
    spec =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:i}]}}", "id", "pq", "name",
                  "pq", "details", "id", "pq", "type", "agreement", "name", "pq", "guarantees",
                  "name", "g", "constraint", "[query] < 5", "query", "sum(up)", "period_ms", 500);
    assert_int_equal(cb_sla_agreement_init(&a, spec, "t", err, sizeof err), CB_OK);
    assert_int_equal(a.g[0].query_period_ms, 500);
    assert_int_equal(a.g[0].period_ms, 0);
    assert_int_equal(cb_sla_evaluator_put(e, &a), CB_OK);
    cb_sla_evaluator_query(e, "t", "pq", "g", 3, 1000);
    assert_int_equal(x.n, 0);
    cb_sla_evaluator_query(e, "t", "pq", "g", 9, 2000);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.job[0], "");
    assert_true(x.observed[0] == 9);
    cb_sla_evaluator_query(e, "t", "pq", "g", 1, 3000);
    assert_int_equal(x.recovered, 1);
    cb_sla_evaluator_query(e, "t", "nothing", "g", 9, 4000); /* gone: ignored */
    assert_int_equal(x.n, 1);
    cb_sla_evaluator_free(e);
    json_decref(spec);
}

static void test_templates(void **state)
{
    json_t *tpl =
        agreement_spec("tpl", "p95([makespan]) < {{ms}} && [failure_rate] <= {{rate}}", "template");
    json_t *values = json_pack("{s:i, s:s}", "ms", 2000, "rate", "0.01"), *a;
    cb_sla_agreement ag;
    char err[300];
    (void)state;
    json_object_set_new(tpl, "name", json_string("for {{client}}"));
    assert_null(cb_sla_template_fill(tpl, "a1", values, err, sizeof err));
    assert_string_equal(err, "template \"tpl\": no value for {{client}}");
    json_object_set_new(values, "client", json_pack("[]"));
    assert_null(cb_sla_template_fill(tpl, "a1", values, err, sizeof err));
    assert_string_equal(err, "template \"tpl\": the value of {{client}} is not a string or a "
                             "number");
    json_object_set_new(values, "client", json_string("acme"));
    assert_non_null(a = cb_sla_template_fill(tpl, "a1", values, err, sizeof err));
    assert_string_equal(json_string_value(json_object_get(a, "id")), "a1");
    assert_string_equal(json_string_value(json_object_get(a, "name")), "for acme");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "details"), "type")),
                        "agreement");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(a, "details"), "guarantees"), 0),
            "constraint")),
        "p95([makespan]) < 2000 && [failure_rate] <= 0.01");
    assert_int_equal(cb_sla_agreement_init(&ag, a, "t", err, sizeof err), CB_OK);
    assert_int_equal(ag.is_template, 0);
    assert_int_equal(ag.n, 1);
    cb_sla_agreement_cleanup(&ag);
    json_decref(a);
    json_decref(values);
    json_decref(tpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_comparisons),
        cmocka_unit_test(test_logic_and_unknowns),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_errors_say_where),
        cmocka_unit_test(test_count_window),
        cmocka_unit_test(test_time_window_and_percentiles),
        cmocka_unit_test(test_observations_of_a_job),
        cmocka_unit_test(test_a_guarantee_on_observations),
        cmocka_unit_test(test_repetitions),
        cmocka_unit_test(test_periodic_window),
        cmocka_unit_test(test_guarantee_errors),
        cmocka_unit_test(test_agreement_scope_and_validity),
        cmocka_unit_test(test_agreement_errors),
        cmocka_unit_test(test_evaluator_over_a_log),
        cmocka_unit_test(test_a_batch_is_observed_part_by_part),
        cmocka_unit_test(test_agreements_from_the_log),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_at_risk),
        cmocka_unit_test(test_what_may_be_passed_over),
        cmocka_unit_test(test_prometheus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
