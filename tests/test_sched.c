/* tests/test_sched.c - the scheduler driven in a loop with the real fold:
 * plan -> events -> fold -> plan, with simulated functions and a simulated
 * clock, until the job ends. Checks limits, retries, timeouts, reduce
 * ordering, tolerated failures, cancel and suspend. */
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_event.h"
#include "cb_time.h"
#include "flow.h"
#include "fold.h"
#include "policy.h"
#include "result.h"
#include "scheduler.h"

#define MAXT 64

typedef struct sim {
    cb_flow flow;
    cb_policy policy;
    cb_policy step_policy[MAXT];
    cb_policy reduce_policy;
    json_t *output[MAXT]; /* what task t returns (owned); NULL: its index */
    cb_job_state job;
    cb_task_state tasks[MAXT];
    bool has_record[MAXT];
    int64_t now;
    int fail_first[MAXT];  /* attempts that fail before one succeeds; -1 always */
    bool hang_first[MAXT]; /* the first attempt never answers */
    int dispatches[MAXT];
    uint32_t max_inflight_seen;
    uint32_t capacity;
    const uint32_t *lanes; /* lane_capacity, or NULL */
    int64_t retry_at[MAXT][8];
    int n;
    cb_sched_end end;
    char error[256];
    bool reduce_before_maps_done;
    bool skipped[MAXT];
    int64_t cost; /* nanos each invocation's outcome reports; 0: none */
} sim;

static cb_task_state *get_task(void *arg, uint32_t idx)
{
    sim *s = arg;
    if (idx >= MAXT)
        return NULL;
    s->has_record[idx] = true;
    return &s->tasks[idx];
}

static void fold(sim *s, cb_event_type type, json_t *data)
{
    cb_event ev;
    cb_fold_tasks access = {get_task, s};
    int applied;
    char id[64];
    snprintf(id, sizeof id, "e%d", s->n++);
    assert_int_equal(cb_event_init(&ev, type, "acme", "j1", id, "test", s->now, data), CB_OK);
    assert_int_equal(cb_fold_apply(&s->job, &access, &ev, 0, &applied), CB_OK);
    cb_event_cleanup(&ev);
}

static void sim_init(sim *s, const char *spec_json)
{
    json_error_t je;
    cb_policy_defaults d;
    char err[200];
    json_t *spec = json_loads(spec_json, 0, &je);
    assert_non_null(spec);
    memset(s, 0, sizeof *s);
    assert_int_equal(cb_flow_build(spec, MAXT, &s->flow, err, sizeof err), CB_OK);
    cb_policy_defaults_init(&d);
    d.task_timeout_ms = 1000;
    cb_policy_from_spec(spec, spec, &d, &s->policy);
    for (size_t i = 0; i < s->flow.nsteps; i++)
        cb_policy_from_spec(spec, s->flow.steps[i].spec, &d, &s->step_policy[i]);
    if (s->flow.kind == CB_FLOW_MAP_REDUCE)
        cb_policy_from_spec(spec, json_object_get(spec, "reduce"), &d, &s->reduce_policy);
    s->now = 1795752142000000000LL;
    s->capacity = 1000;
    fold(s, CB_EV_JOB_SUBMITTED, json_pack("{s:O, s:s}", "job", spec, "digest", "d"));
    json_decref(spec);
}

static void sim_cleanup(sim *s)
{
    cb_flow_cleanup(&s->flow);
    cb_job_state_cleanup(&s->job);
    for (int i = 0; i < MAXT; i++) {
        cb_task_state_cleanup(&s->tasks[i]);
        json_decref(s->output[i]);
    }
}

static cb_status plan(sim *s, cb_sched_plan *p)
{
    uint32_t idx[MAXT];
    cb_task_state recs[MAXT];
    size_t n = 0;
    /* As the controller: a DAG sees every record, other jobs their open ones. */
    bool all = s->flow.kind == CB_FLOW_DAG;
    for (uint32_t i = 0; i < MAXT; i++)
        if (s->has_record[i] && s->tasks[i].status != CB_TASK_PENDING &&
            (all || s->tasks[i].status != CB_TASK_SUCCEEDED)) {
            idx[n] = i;
            recs[n++] = s->tasks[i]; /* shallow copies: borrowed for the call */
        }
    cb_sched_in in = {&s->flow,
                      &s->policy,
                      &s->job,
                      {idx, recs, n},
                      s->capacity,
                      s->now,
                      "acme/j1",
                      s->flow.nsteps ? s->step_policy : NULL,
                      s->flow.kind == CB_FLOW_MAP_REDUCE ? &s->reduce_policy : NULL,
                      s->lanes};
    return cb_sched_plan_job(&in, p);
}

/* The simulated backend answers every dispatched attempt at once, unless it
 * hangs (no answer) for that task's first attempt. */
static void run_function(sim *s, uint32_t task, uint32_t attempt)
{
    s->dispatches[task]++;
    if (s->hang_first[task] && attempt == 1)
        return;
    bool fails = s->fail_first[task] < 0 || (int)attempt <= s->fail_first[task];
    json_t *d =
        fails ? json_pack("{s:i, s:i, s:s}", "task", task, "attempt", attempt, "error", "boom")
              : json_pack("{s:i, s:i, s:[o], s:i}", "task", task, "attempt", attempt, "output",
                          s->output[task] ? json_incref(s->output[task]) : json_integer(task),
                          "duration_ms", 100);
    if (s->cost)
        json_object_set_new(d, "cost", json_pack("[i, I]", 100, (json_int_t)s->cost));
    fold(s, fails ? CB_EV_TASK_FAILED : CB_EV_TASK_SUCCEEDED, d);
}

/* A DAG plan's skips, expansions and collections, folded as the controller
 * appends them (a collected step succeeds with its children's outputs). */
static void dag_decisions(sim *s, const cb_sched_plan *p)
{
    uint32_t idx[MAXT];
    cb_task_state recs[MAXT];
    size_t n = 0;
    for (size_t i = 0; i < p->nskip; i++) {
        s->skipped[p->skip[i].task] = true;
        fold(s, CB_EV_TASK_SKIPPED,
             json_pack("{s:i, s:s}", "task", p->skip[i].task, "reason", p->skip[i].reason));
    }
    for (size_t i = 0; i < p->nexpand; i++)
        fold(s, CB_EV_TASK_EXPANDED,
             json_pack("{s:i, s:i, s:i}", "task", p->expand[i].task, "first", p->expand[i].first,
                       "count", p->expand[i].count));
    for (uint32_t i = 0; i < MAXT; i++)
        if (s->has_record[i] && s->tasks[i].status != CB_TASK_PENDING) {
            idx[n] = i;
            recs[n++] = s->tasks[i];
        }
    cb_task_view v = {idx, recs, n};
    for (size_t i = 0; i < p->ncollect; i++) {
        json_t *outs = cb_sched_children_outputs(&v, &s->tasks[p->collect[i]]);
        assert_non_null(outs);
        fold(s, CB_EV_TASK_SUCCEEDED,
             json_pack("{s:i, s:i, s:[o]}", "task", p->collect[i], "attempt", 1, "output", outs));
    }
}

/* Plan, apply, repeat until the job ends (or 500 rounds). */
static void run(sim *s)
{
    for (int round = 0; round < 500 && s->end == CB_END_NONE; round++) {
        cb_sched_plan p;
        assert_int_equal(plan(s, &p), CB_OK);
        if (p.start)
            fold(s, CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", s->flow.tasks));
        for (size_t i = 0; i < p.ntimeout; i++)
            fold(s, CB_EV_TASK_TIMED_OUT,
                 json_pack("{s:i, s:i}", "task", p.timeout[i].task, "attempt",
                           p.timeout[i].attempt));
        for (size_t i = 0; i < p.nretry; i++) {
            char at[40];
            cb_time_format(p.retry[i].at_ns, at, sizeof at);
            s->retry_at[p.retry[i].task][p.retry[i].attempt] = p.retry[i].at_ns;
            fold(s, CB_EV_TASK_RETRY_SCHEDULED,
                 json_pack("{s:i, s:i, s:s}", "task", p.retry[i].task, "attempt",
                           p.retry[i].attempt, "at", at));
        }
        dag_decisions(s, &p);
        assert_true(p.ndispatch <= s->capacity);
        if (p.ndispatch) {
            json_t *list = json_array();
            for (size_t i = 0; i < p.ndispatch; i++) {
                json_array_append_new(list, json_pack("{s:i, s:i, s:b}", "task", p.dispatch[i].task,
                                                      "attempt", p.dispatch[i].attempt, "backup",
                                                      p.dispatch[i].backup));
                if (s->flow.kind == CB_FLOW_MAP_REDUCE &&
                    p.dispatch[i].task == cb_flow_reduce_task(&s->flow) &&
                    s->job.succeeded < s->flow.map_tasks)
                    s->reduce_before_maps_done = true;
            }
            fold(s, CB_EV_TASKS_DISPATCHED, json_pack("{s:o}", "tasks", list));
            if (s->job.inflight > s->max_inflight_seen)
                s->max_inflight_seen = s->job.inflight;
            for (size_t i = 0; i < p.ndispatch; i++)
                run_function(s, p.dispatch[i].task, p.dispatch[i].attempt);
        }
        if (p.end != CB_END_NONE) {
            s->end = p.end;
            snprintf(s->error, sizeof s->error, "%s", p.error);
            fold(s,
                 p.end == CB_END_SUCCEED  ? CB_EV_JOB_SUCCEEDED
                 : p.end == CB_END_CANCEL ? CB_EV_JOB_CANCELLED
                                          : CB_EV_JOB_FAILED,
                 p.end == CB_END_FAIL ? json_pack("{s:s}", "error", p.error) : json_object());
        } else if (!p.start && !p.ndispatch && !p.nretry && !p.ntimeout && !p.nskip && !p.nexpand &&
                   !p.ncollect) {
            assert_true(p.wake_ns > s->now); /* nothing to do now: it must say when */
            s->now = p.wake_ns;
        }
        cb_sched_plan_cleanup(&p);
        s->now += 1000000; /* 1 ms per round */
    }
}

static void test_map_respects_parallelism_and_runs_each_task_once(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"map\",\"parallelism\":3,\"function\":{\"backend\":\"local\","
                 "\"name\":\"f\"},\"input\":{\"items\":[0,1,2,3,4,5,6,7,8,9]}}");
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_int_equal(s.job.status, CB_JOB_SUCCEEDED);
    assert_true(s.max_inflight_seen <= 3);
    for (int t = 0; t < 10; t++)
        assert_int_equal(s.dispatches[t], 1);
    sim_cleanup(&s);
}

/* A job's budget (docs/engine.md, Cost): once its invocations cost more,
 * nothing more is dispatched; it fails with the reason once what was in
 * flight has ended; a job whose last tasks go over it is done all the same. */
static void test_a_budget_stops_dispatching(void **state)
{
    sim s;
    cb_sched_plan p;
    (void)state;
    /* each invocation 100 nanos, a budget of 350: 2 + 2 run, then no more */
    sim_init(&s, "{\"kind\":\"map\",\"parallelism\":2,\"budget\":0.00000035,"
                 "\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input\":{\"range\":{\"start\":0,\"stop\":10}}}");
    s.cost = 100;
    run(&s);
    assert_int_equal(s.end, CB_END_FAIL);
    assert_int_equal(s.job.cost.nanos, 400);
    assert_int_equal(s.job.succeeded, 4);
    for (int t = 0; t < 10; t++)
        assert_int_equal(s.dispatches[t], t < 4);
    assert_non_null(strstr(s.error, "over budget: its invocations cost 4e-07, its budget is "
                                    "3.5e-07; 4 of 10 tasks succeeded"));
    sim_cleanup(&s);

    /* the same budget, 4 tasks: the last two go over it, and the job is done */
    sim_init(&s, "{\"kind\":\"map\",\"parallelism\":2,\"budget\":0.00000035,"
                 "\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input\":{\"range\":{\"start\":0,\"stop\":4}}}");
    s.cost = 100;
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_int_equal(s.job.cost.nanos, 400);
    sim_cleanup(&s);

    /* over it with a task in flight: no dispatch, no end, until it ends */
    sim_init(&s, "{\"kind\":\"map\",\"parallelism\":2,\"budget\":0.00000015,"
                 "\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input\":{\"range\":{\"start\":0,\"stop\":4}}}");
    s.cost = 100;
    s.hang_first[1] = true;
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_true(p.start);
    cb_sched_plan_cleanup(&p);
    fold(&s, CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", 4));
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 2);
    fold(&s, CB_EV_TASKS_DISPATCHED,
         json_pack("{s:[{s:i, s:i}, {s:i, s:i}]}", "tasks", "task", 0, "attempt", 1, "task", 1,
                   "attempt", 1));
    run_function(&s, 0, 1); /* 100 */
    run_function(&s, 1, 1); /* hangs */
    cb_sched_plan_cleanup(&p);
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 1); /* within the budget still */
    fold(&s, CB_EV_TASKS_DISPATCHED,
         json_pack("{s:[{s:i, s:i}]}", "tasks", "task", 2, "attempt", 1));
    run_function(&s, 2, 1); /* 200: over */
    cb_sched_plan_cleanup(&p);
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 0);
    assert_int_equal(p.end, CB_END_NONE); /* task 1 is in flight */
    assert_int_equal(p.want, 0);          /* and wants no capacity */
    cb_sched_plan_cleanup(&p);
    fold(&s, CB_EV_TASK_SUCCEEDED,
         json_pack("{s:i, s:i, s:[i], s:[i, i]}", "task", 1, "attempt", 1, "output", 1, "cost", 100,
                   100));
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.end, CB_END_FAIL);
    assert_non_null(strstr(p.error, "3 of 4 tasks succeeded"));
    cb_sched_plan_cleanup(&p);
    sim_cleanup(&s);
}

/* Straggler backups (docs/engine.md): once 90% of the map's tasks have
 * succeeded, a task in flight for 3x their median gets a backup attempt,
 * which ends the job long before the hung original would time out; below
 * that share, none. */
static void test_a_straggler_gets_a_backup(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"map\",\"backup\":{\"after\":0.9,\"factor\":3,\"min_ms\":0},"
                 "\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input\":{\"range\":{\"start\":0,\"stop\":10}}}");
    s.hang_first[7] = true; /* its first attempt never answers */
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_int_equal(s.dispatches[7], 2);
    assert_int_equal(s.job.backups, 1);
    assert_int_equal(s.job.timeouts, 0);
    assert_true(s.job.ndurations == 10);
    /* the backup went out 3 x the median (100 ms, in its bucket ~90 ms) after
     * the dispatch, not at the 1 s timeout */
    assert_true(s.job.finished_ns - s.job.started_ns < 400 * 1000000LL);
    assert_true(s.job.finished_ns - s.job.started_ns > 250 * 1000000LL);
    for (int t = 0; t < 10; t++)
        if (t != 7)
            assert_int_equal(s.dispatches[t], 1);
    sim_cleanup(&s);

    /* two of ten hung: 80% never reaches 90%; they time out */
    sim_init(&s, "{\"kind\":\"map\",\"backup\":{\"min_ms\":0},"
                 "\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input\":{\"range\":{\"start\":0,\"stop\":10}}}");
    s.hang_first[3] = s.hang_first[7] = true;
    run(&s);
    assert_int_equal(s.end, CB_END_FAIL);
    assert_int_equal(s.job.backups, 0);
    assert_int_equal(s.dispatches[3], 1);
    sim_cleanup(&s);

    /* no policy: no backup */
    sim_init(&s, "{\"kind\":\"map\",\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input\":{\"range\":{\"start\":0,\"stop\":10}}}");
    s.hang_first[7] = true;
    run(&s);
    assert_int_equal(s.end, CB_END_FAIL);
    assert_int_equal(s.job.backups, 0);
    assert_int_equal(s.job.ndurations, 0); /* not timed without a policy */
    sim_cleanup(&s);
}

static void test_capacity_bounds_each_plan(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"map\",\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input\":{\"range\":{\"start\":0,\"stop\":20}}}");
    s.capacity = 2; /* run() asserts each plan dispatches at most this */
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    sim_cleanup(&s);
}

static void test_retries_with_backoff_then_success(void **state)
{
    sim s;
    (void)state;
    sim_init(&s,
             "{\"kind\":\"map\",\"retry\":{\"limit\":3,\"backoff_ms\":200,\"factor\":2},"
             "\"function\":{\"backend\":\"local\",\"name\":\"f\"},\"input\":{\"items\":[1,2,3]}}");
    s.fail_first[1] = 2; /* fails attempts 1 and 2 */
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_int_equal(s.dispatches[1], 3);
    assert_int_equal(s.dispatches[0], 1);
    assert_int_equal(s.job.retries, 2);
    /* retry 2 waits twice as long as retry 1 after its failure */
    assert_true(s.retry_at[1][2] > 0 && s.retry_at[1][3] > s.retry_at[1][2]);
    sim_cleanup(&s);
}

static void test_exhausted_retries_fail_the_job(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"map\",\"retry\":{\"limit\":2},\"function\":{\"backend\":\"local\","
                 "\"name\":\"f\"},\"input\":{\"items\":[1,2,3]}}");
    s.fail_first[2] = -1;
    run(&s);
    assert_int_equal(s.end, CB_END_FAIL);
    assert_int_equal(s.dispatches[2], 3); /* 1 + 2 retries */
    assert_string_equal(s.error, "1 of 3 tasks failed; task 2: boom");
    assert_int_equal(s.job.status, CB_JOB_FAILED);
    sim_cleanup(&s);
}

static void test_tolerated_failure_lets_the_job_succeed(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"map\",\"tolerated_failures\":1,\"function\":{\"backend\":"
                 "\"local\",\"name\":\"f\"},\"input\":{\"items\":[1,2,3]}}");
    s.fail_first[0] = -1;
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    sim_cleanup(&s);
}

/* Every record of the simulated job, as `cb result` reads them. */
static cb_task_view all_records(const sim *s, uint32_t *idx, cb_task_state *recs)
{
    size_t n = 0;
    for (uint32_t i = 0; i < MAXT; i++)
        if (s->has_record[i] && s->tasks[i].status != CB_TASK_PENDING) {
            idx[n] = i;
            recs[n++] = s->tasks[i];
        }
    cb_task_view v = {idx, recs, n};
    return v;
}

static void test_tolerated_loss_keeps_the_other_outputs_and_the_reduce_runs(void **state)
{
    sim s;
    uint32_t idx[MAXT];
    cb_task_state recs[MAXT];
    json_t *failed = NULL;
    (void)state;
    sim_init(&s, "{\"kind\":\"map_reduce\",\"tolerated_failures\":1,\"function\":{"
                 "\"backend\":\"local\",\"name\":\"f\"},\"input\":{\"items\":[1,2,3,4]},"
                 "\"reduce\":{\"function\":{\"backend\":\"local\",\"name\":\"sum\"}}}");
    s.fail_first[1] = -1;
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_int_equal(s.dispatches[4], 1);
    cb_task_view v = all_records(&s, idx, recs);
    cb_test_expect_json(cb_result_reduce_input(&s.flow, &v), "[0, 2, 3]");
    cb_test_expect_json(cb_result_map_outputs(&s.flow, &v, &failed), "[0, null, 2, 3]");
    cb_test_expect_json(failed, "[{\"index\": 1, \"error\": \"boom\"}]");
    cb_test_expect_json(cb_result_of(&s.flow, &v, &failed),
                        "4"); /* the sim's reduce returns its index */
    cb_test_expect_json(failed, "[{\"index\": 1, \"error\": \"boom\"}]");
    sim_cleanup(&s);
}

static void test_a_lost_reduce_fails_the_job_whatever_is_tolerated(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"map_reduce\",\"tolerated_failures\":5,\"function\":{"
                 "\"backend\":\"local\",\"name\":\"f\"},\"input\":{\"items\":[1,2]},"
                 "\"reduce\":{\"function\":{\"backend\":\"local\",\"name\":\"sum\"}}}");
    s.fail_first[2] = -1;
    run(&s);
    assert_int_equal(s.end, CB_END_FAIL);
    assert_string_equal(s.error, "1 of 3 tasks failed; task 2: boom");
    sim_cleanup(&s);
}

static void test_tolerated_share_counts_the_map_tasks(void **state)
{
    sim s;
    (void)state;
    /* 1 of 3 map tasks is 33.3%: over 33% (the reduce is not a map task) */
    sim_init(&s, "{\"kind\":\"map_reduce\",\"tolerated_failures\":\"33%\",\"function\":{"
                 "\"backend\":\"local\",\"name\":\"f\"},\"input\":{\"items\":[1,2,3]},"
                 "\"reduce\":{\"function\":{\"backend\":\"local\",\"name\":\"sum\"}}}");
    s.fail_first[0] = -1;
    run(&s);
    assert_int_equal(s.end, CB_END_FAIL);
    sim_cleanup(&s);
}

static void test_reduce_attempts_have_the_reduce_functions_timeout(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"map_reduce\",\"retry\":{\"limit\":1},\"function\":{"
                 "\"backend\":\"local\",\"name\":\"f\",\"timeout_ms\":100},\"input\":"
                 "{\"items\":[1]},\"reduce\":{\"function\":{\"backend\":\"local\",\"name\":"
                 "\"sum\",\"timeout_ms\":5000}}}");
    s.hang_first[1] = true;
    int64_t t0 = s.now;
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_int_equal(s.job.timeouts, 1);
    assert_int_equal(s.dispatches[1], 2);
    assert_true(s.now - t0 >= 5000 * 1000000LL); /* not the map function's 100 ms */
    sim_cleanup(&s);
}

static void test_hung_attempt_times_out_and_is_retried(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"call\",\"retry\":{\"limit\":1},\"function\":{\"backend\":"
                 "\"local\",\"name\":\"f\",\"timeout_ms\":5000},\"input\":1}");
    s.hang_first[0] = true;
    int64_t t0 = s.now;
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_int_equal(s.job.timeouts, 1);
    assert_int_equal(s.dispatches[0], 2);
    assert_true(s.now - t0 >= 5000 * 1000000LL); /* the clock moved to the timeout */
    sim_cleanup(&s);
}

static void test_reduce_waits_for_every_map_task(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"map_reduce\",\"parallelism\":2,\"retry\":{\"limit\":1},"
                 "\"function\":{\"backend\":\"local\",\"name\":\"f\"},\"input\":{\"items\":"
                 "[1,2,3,4]},\"reduce\":{\"function\":{\"backend\":\"local\",\"name\":\"sum\"}}}");
    s.fail_first[3] = 1;
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_false(s.reduce_before_maps_done);
    assert_int_equal(s.dispatches[4], 1); /* the reduce, once */
    sim_cleanup(&s);
}

static void test_empty_map_succeeds_at_once(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"map\",\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input\":{\"items\":[]}}");
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    sim_cleanup(&s);
}

static void test_cancel_and_suspend(void **state)
{
    sim s;
    cb_sched_plan p;
    (void)state;
    sim_init(&s, "{\"kind\":\"map\",\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input\":{\"items\":[1,2]}}");
    fold(&s, CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", 2));
    fold(&s, CB_EV_JOB_SUSPENDED, json_object());
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 0);
    assert_int_equal(p.end, CB_END_NONE);
    cb_sched_plan_cleanup(&p);
    fold(&s, CB_EV_JOB_RESUMED, json_object());
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 2);
    cb_sched_plan_cleanup(&p);
    fold(&s, CB_EV_JOB_CANCEL_REQUESTED, json_object());
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.end, CB_END_CANCEL);
    assert_int_equal(p.ndispatch, 0);
    cb_sched_plan_cleanup(&p);
    sim_cleanup(&s);
}

static void test_job_timeout(void **state)
{
    sim s;
    cb_sched_plan p;
    (void)state;
    sim_init(&s, "{\"kind\":\"call\",\"timeout_ms\":1000,\"function\":{\"backend\":\"local\","
                 "\"name\":\"f\"},\"input\":1}");
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_true(p.start);
    assert_true(p.wake_ns > s.now); /* it will look again at the deadline */
    cb_sched_plan_cleanup(&p);
    s.now += 2000 * 1000000LL;
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.end, CB_END_FAIL);
    assert_string_equal(p.error, "job timed out after 1000 ms");
    cb_sched_plan_cleanup(&p);
    sim_cleanup(&s);
}

static void test_plan_is_idempotent(void **state)
{
    sim s;
    cb_sched_plan a, b;
    (void)state;
    sim_init(&s, "{\"kind\":\"map\",\"retry\":{\"limit\":2,\"jitter\":true},\"function\":{"
                 "\"backend\":\"local\",\"name\":\"f\"},\"input\":{\"items\":[1,2,3]}}");
    fold(&s, CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", 3));
    fold(&s, CB_EV_TASKS_DISPATCHED,
         json_pack("{s:[{s:i,s:i}]}", "tasks", "task", 0, "attempt", 1));
    fold(&s, CB_EV_TASK_FAILED,
         json_pack("{s:i, s:i, s:s}", "task", 0, "attempt", 1, "error", "x"));
    assert_int_equal(plan(&s, &a), CB_OK);
    assert_int_equal(plan(&s, &b), CB_OK);
    assert_int_equal(a.nretry, 1);
    assert_int_equal(b.nretry, 1);
    assert_true(a.retry[0].at_ns == b.retry[0].at_ns);
    assert_int_equal(a.ndispatch, b.ndispatch);
    assert_int_equal(a.dispatch[0].task, 1); /* the new tasks after 0 */
    cb_sched_plan_cleanup(&a);
    cb_sched_plan_cleanup(&b);
    sim_cleanup(&s);
}

/* a -> b, a -> c, (b, c) -> d: a first, then b and c together, d last. */
static void test_dag_runs_steps_after_their_dependencies(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"dag\",\"tasks\":{"
                 "\"a\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"}},"
                 "\"b\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"},\"input_from\":\"a\"},"
                 "\"c\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"},\"depends\":[\"a\"]},"
                 "\"d\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"input_from\":[\"b\",\"c\"]}}}");
    /* step by step, checking what each plan dispatches */
    cb_sched_plan p;
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_true(p.start);
    cb_sched_plan_cleanup(&p);
    fold(&s, CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", 4));
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 1);
    assert_int_equal(p.dispatch[0].task, 0); /* a */
    cb_sched_plan_cleanup(&p);
    fold(&s, CB_EV_TASKS_DISPATCHED,
         json_pack("{s:[{s:i,s:i}]}", "tasks", "task", 0, "attempt", 1));
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 0); /* nothing else is ready while a runs */
    cb_sched_plan_cleanup(&p);
    run_function(&s, 0, 1);
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 2); /* b and c */
    assert_int_equal(p.dispatch[0].task + p.dispatch[1].task, 1 + 2);
    cb_sched_plan_cleanup(&p);
    run(&s); /* the rest */
    assert_int_equal(s.end, CB_END_SUCCEED);
    for (int t = 0; t < 4; t++)
        assert_int_equal(s.dispatches[t], 1);
    sim_cleanup(&s);
}

static void test_dag_lost_step_fails_the_job(void **state)
{
    sim s;
    (void)state;
    sim_init(&s,
             "{\"kind\":\"dag\",\"tolerated_failures\":5,\"tasks\":{"
             "\"a\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"}},"
             "\"b\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"},\"depends\":[\"a\"]}}}");
    s.fail_first[0] = -1;
    run(&s);
    assert_int_equal(s.end, CB_END_FAIL);
    assert_int_equal(s.dispatches[1], 0); /* b never ran */
    sim_cleanup(&s);
}

#define FN "{\"backend\":\"local\",\"name\":\"f\"}"

/* A -> (big when A > 10, small when A <= 10) -> join: one branch runs. */
static void test_dag_when_skips_a_branch_and_the_join_still_runs(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"dag\",\"tasks\":{\"a\":{\"function\":" FN "},"
                 "\"big\":{\"function\":" FN ",\"input_from\":\"a\",\"when\":{\"step\":\"a\","
                 "\"op\":\"gt\",\"value\":10}},"
                 "\"small\":{\"function\":" FN ",\"input_from\":\"a\",\"when\":{\"step\":\"a\","
                 "\"op\":\"le\",\"value\":10}},"
                 "\"z_join\":{\"function\":" FN ",\"input_from\":[\"big\",\"small\"]}}}");
    s.output[0] = json_integer(3); /* a (steps are indexed by name: a, big, small, z_join) */
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_true(s.skipped[1]); /* big */
    assert_int_equal(s.dispatches[1], 0);
    assert_false(s.skipped[2]);
    assert_int_equal(s.dispatches[2], 1); /* small */
    assert_int_equal(s.dispatches[3], 1); /* the join ran after the skipped branch */
    assert_int_equal(s.job.skipped, 1);
    assert_string_equal(s.tasks[1].error, "/tasks/big/when: gt of step a's output 3");
    sim_cleanup(&s);
}

static void test_when_operators(void **state)
{
    (void)state;
    struct {
        const char *when, *value;
        bool holds;
    } cases[] = {
        {"{\"op\":\"eq\",\"value\":2}", "2.0", true},
        {"{\"op\":\"eq\",\"value\":\"x\"}", "\"x\"", true},
        {"{\"op\":\"ne\",\"value\":[1]}", "[1]", false},
        {"{\"op\":\"gt\",\"value\":1}", "1.5", true},
        {"{\"op\":\"ge\",\"value\":2}", "2", true},
        {"{\"op\":\"lt\",\"value\":\"b\"}", "\"a\"", true},
        {"{\"op\":\"le\",\"value\":1}", "\"1\"", false}, /* no order across types */
        {"{\"op\":\"gt\",\"value\":1}", "null", false},
        {"{\"op\":\"truthy\"}", "[]", false},
        {"{\"op\":\"truthy\"}", "{\"a\":1}", true},
        {"{\"op\":\"falsy\"}", "0", true},
        {"{\"op\":\"falsy\"}", "\"\"", true},
        {"{\"op\":\"falsy\"}", "null", true},
        {"{\"op\":\"falsy\"}", "\"no\"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *w = json_loads(cases[i].when, 0, NULL);
        json_t *v = json_loads(cases[i].value, JSON_DECODE_ANY, NULL);
        assert_non_null(w);
        assert_non_null(v);
        if (cb_sched_when_holds(w, v) != cases[i].holds)
            fail_msg("case %zu: %s on %s", i, cases[i].when, cases[i].value);
        json_decref(w);
        json_decref(v);
    }
}

/* a -> each (foreach a: 3 children) -> z_sum: children take the next indices,
 * run within parallelism, and the step's output is theirs in order. */
static void test_dag_foreach_fans_out_and_collects(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"dag\",\"parallelism\":2,\"retry\":{\"limit\":1},\"tasks\":{"
                 "\"a\":{\"function\":" FN "},"
                 "\"each\":{\"function\":" FN ",\"foreach\":\"a\"},"
                 "\"z_sum\":{\"function\":" FN ",\"input_from\":\"each\"}}}");
    s.output[0] = json_pack("[i,i,i]", 10, 20, 30); /* a */
    s.output[3] = json_integer(11);                 /* the children: tasks 3, 4, 5 */
    s.output[4] = json_integer(21);
    s.output[5] = json_integer(31);
    s.fail_first[4] = 1; /* one child fails once: retried like any task */
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_int_equal(s.job.total, 6);
    assert_int_equal(s.tasks[1].status, CB_TASK_SUCCEEDED);
    assert_int_equal(s.tasks[1].first, 3);
    assert_int_equal(s.tasks[1].count, 3);
    json_t *want = json_pack("[[i,i,i]]", 11, 21, 31);
    assert_true(json_equal(s.tasks[1].output, want));
    json_decref(want);
    assert_int_equal(s.dispatches[1], 0); /* the foreach step itself never runs */
    assert_int_equal(s.dispatches[3], 1);
    assert_int_equal(s.dispatches[4], 2);
    assert_int_equal(s.dispatches[5], 1);
    assert_int_equal(s.dispatches[2], 1); /* z_sum, after the collection */
    assert_true(s.max_inflight_seen <= 2);
    sim_cleanup(&s);
}

static void test_dag_foreach_over_a_non_array_fails_the_job(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"dag\",\"tasks\":{\"a\":{\"function\":" FN "},"
                 "\"b\":{\"function\":" FN ",\"foreach\":\"a\"}}}");
    s.output[0] = json_string("not a list");
    run(&s);
    assert_int_equal(s.end, CB_END_FAIL);
    assert_string_equal(s.error, "/tasks/b/foreach: the output of step a is not an array");
    sim_cleanup(&s);
}

static void test_dag_foreach_over_an_empty_array_succeeds(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"dag\",\"tasks\":{\"a\":{\"function\":" FN "},"
                 "\"b\":{\"function\":" FN ",\"foreach\":\"a\"}}}");
    s.output[0] = json_array();
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    json_t *want = json_pack("[[]]");
    assert_true(json_equal(s.tasks[1].output, want));
    json_decref(want);
    sim_cleanup(&s);
}

/* A step's own retry limit, not the job's. */
static void test_dag_step_retry_overrides_the_job(void **state)
{
    sim s;
    (void)state;
    sim_init(&s, "{\"kind\":\"dag\",\"retry\":{\"limit\":0},\"tasks\":{"
                 "\"a\":{\"function\":" FN ",\"retry\":{\"limit\":2,\"backoff_ms\":10}}}}");
    s.fail_first[0] = 2;
    run(&s);
    assert_int_equal(s.end, CB_END_SUCCEED);
    assert_int_equal(s.dispatches[0], 3);
    sim_cleanup(&s);
}

/* A plan held back by capacity says how much more it wanted. */
static void test_plan_reports_what_capacity_held_back(void **state)
{
    sim s;
    cb_sched_plan p;
    (void)state;
    sim_init(&s, "{\"kind\":\"map\",\"parallelism\":5,\"function\":" FN ","
                 "\"input\":{\"range\":{\"start\":0,\"stop\":20}}}");
    s.capacity = 2;
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_true(p.start);
    assert_int_equal(p.want, 3); /* a starting job claims its first wave at once */
    cb_sched_plan_cleanup(&p);
    fold(&s, CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", 20));
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 2);
    assert_int_equal(p.want, 3); /* parallelism allowed 5 */
    cb_sched_plan_cleanup(&p);
    s.capacity = 100;
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 5);
    assert_int_equal(p.want, 0); /* parallelism, not capacity, was the limit */
    cb_sched_plan_cleanup(&p);
    sim_cleanup(&s);
}

/* Fold a plan's dispatches (as the controller appends them). */
static void fold_dispatches(sim *s, const cb_sched_plan *p)
{
    json_t *list = json_array();
    for (size_t i = 0; i < p->ndispatch; i++)
        json_array_append_new(list, json_pack("{s:i, s:i}", "task", p->dispatch[i].task, "attempt",
                                              p->dispatch[i].attempt));
    fold(s, CB_EV_TASKS_DISPATCHED, json_pack("{s:o}", "tasks", list));
}

/* A DAG whose steps are on three accounts: each task takes from its
 * step's account's capacity; what one cannot take waits (wanted) while the
 * others go on. */
static void test_a_dag_s_steps_take_their_own_account_s_capacity(void **state)
{
    sim s;
    cb_sched_plan p;
    uint32_t lanes[3] = {10, 2, 0}; /* local, narrow, wide */
    (void)state;
    sim_init(&s, "{\"kind\":\"dag\",\"parallelism\":10,\"tasks\":{"
                 "\"a\":{\"function\":" FN "},"
                 "\"each\":{\"function\":{\"backend\":\"narrow\",\"name\":\"f\"},"
                 "\"foreach\":\"a\"},"
                 "\"side\":{\"function\":{\"backend\":\"wide\",\"name\":\"f\"}}}}");
    assert_int_equal(s.flow.nlanes, 3);
    s.lanes = lanes;
    fold(&s, CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", s.flow.tasks));
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 1); /* a; side's account is full */
    assert_int_equal(p.dispatch[0].task, 0);
    assert_int_equal(p.want, 1);
    fold_dispatches(&s, &p);
    cb_sched_plan_cleanup(&p);
    s.output[0] = json_pack("[i,i,i,i,i,i]", 1, 2, 3, 4, 5, 6);
    run_function(&s, 0, 1);
    assert_int_equal(plan(&s, &p), CB_OK); /* each is expanded: children 3..8 */
    assert_int_equal(p.nexpand, 1);
    assert_int_equal(p.ndispatch, 0);
    dag_decisions(&s, &p);
    cb_sched_plan_cleanup(&p);
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 2); /* narrow takes 2 of the 6 children */
    assert_true(p.dispatch[0].task >= 3 && p.dispatch[1].task >= 3);
    assert_int_equal(p.want, 5); /* 4 children and side */
    cb_sched_plan_cleanup(&p);
    lanes[1] = 0;
    lanes[2] = 1;
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 1); /* now side alone */
    assert_int_equal(p.dispatch[0].task, 2);
    assert_int_equal(p.want, 6);
    cb_sched_plan_cleanup(&p);
    s.lanes = NULL; /* one account: capacity alone */
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 7);
    cb_sched_plan_cleanup(&p);
    sim_cleanup(&s);
}

/* A map_reduce whose reduce is on another account waits for that one. */
static void test_a_reduce_on_another_account_takes_that_one_s_capacity(void **state)
{
    sim s;
    cb_sched_plan p;
    uint32_t lanes[2] = {10, 0};
    (void)state;
    sim_init(&s, "{\"kind\":\"map_reduce\",\"function\":" FN ","
                 "\"input\":{\"items\":[1,2,3]},"
                 "\"reduce\":{\"function\":{\"backend\":\"wide\",\"name\":\"f\"}}}");
    s.lanes = lanes;
    fold(&s, CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", s.flow.tasks));
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 3);
    fold_dispatches(&s, &p);
    cb_sched_plan_cleanup(&p);
    for (uint32_t t = 0; t < 3; t++)
        run_function(&s, t, 1);
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 0); /* the reduce's account is full */
    assert_int_equal(p.want, 1);
    cb_sched_plan_cleanup(&p);
    lanes[1] = 1;
    assert_int_equal(plan(&s, &p), CB_OK);
    assert_int_equal(p.ndispatch, 1);
    assert_int_equal(p.dispatch[0].task, 3);
    cb_sched_plan_cleanup(&p);
    sim_cleanup(&s);
}

static void test_rank_priority_deadline_submission_and_aging(void **state)
{
    (void)state;
    const int64_t S = 1000000000LL;
    cb_rank hi = {5, 0, 100 * S, 0}, lo = {0, 0, 50 * S, 0};
    assert_true(cb_sched_rank_before(&hi, &lo, 0));
    assert_false(cb_sched_rank_before(&lo, &hi, 0));
    /* equal priority: a deadline first, the earlier deadline first */
    cb_rank d1 = {0, 90 * S, 100 * S, 0}, d2 = {0, 80 * S, 200 * S, 0}, none = {0, 0, 1 * S, 0};
    assert_true(cb_sched_rank_before(&d2, &d1, 0));
    assert_true(cb_sched_rank_before(&d1, &none, 0));
    assert_false(cb_sched_rank_before(&none, &d1, 0));
    /* then submission order */
    cb_rank e1 = {0, 0, 1 * S, 0}, e2 = {0, 0, 2 * S, 0};
    assert_true(cb_sched_rank_before(&e1, &e2, 0));
    /* aging: 6 aging periods of waiting lift priority 0 above priority 5 */
    lo.waiting_ns = 60 * S;
    assert_true(cb_sched_rank_before(&lo, &hi, 10000));
    assert_false(cb_sched_rank_before(&lo, &hi, 0)); /* no aging configured */
}

static void test_fair_share_between_tenants(void **state)
{
    (void)state;
    const int64_t S = 1000000000LL;
    cb_rank early = {0, 0, 1 * S, 0}, late = {0, 0, 9 * S, 0};
    /* B (weight 3) asks while A (weight 1) holds 4 of a free 4... once
     * 4 slots are free: B's share rises 1/3 a slot, A's 1 */
    cb_share_in t[2] = {{0, 3.0, 0, late, true}, {0, 1.0, 100, early, false}};
    assert_int_equal(cb_sched_fair_share(t, 2, 4, 0), 3);
    /* A already has 3 in flight, B 0: the next 4 all go to B (3/3 = 1
     * then, A's 3 stay above) */
    t[1].inflight = 3;
    assert_int_equal(cb_sched_fair_share(t, 2, 4, 0), 4);
    /* equal weights and use: one each, the tie to the best-ranked job (A's
     * submitted first), so B gets 1 of 2 and 2 of 3 only when A wants no more */
    t[0].weight = 1;
    t[1].inflight = 0;
    assert_int_equal(cb_sched_fair_share(t, 2, 2, 0), 1);
    t[1].demand = 1;
    assert_int_equal(cb_sched_fair_share(t, 2, 3, 0), 2);
    /* alone: everything */
    assert_int_equal(cb_sched_fair_share(t, 1, 7, 0), 7);
    /* three tenants, weights 1, 1, 2: 8 slots as 2, 2, 4 */
    cb_share_in u[3] = {
        {0, 1.0, 0, late, true}, {0, 1.0, 100, early, false}, {0, 2.0, 100, early, false}};
    assert_int_equal(cb_sched_fair_share(u, 3, 8, 0), 2);
    u[0].weight = 2;
    u[2].weight = 1;
    assert_int_equal(cb_sched_fair_share(u, 3, 8, 0), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_respects_parallelism_and_runs_each_task_once),
        cmocka_unit_test(test_fair_share_between_tenants),
        cmocka_unit_test(test_capacity_bounds_each_plan),
        cmocka_unit_test(test_a_budget_stops_dispatching),
        cmocka_unit_test(test_a_straggler_gets_a_backup),
        cmocka_unit_test(test_retries_with_backoff_then_success),
        cmocka_unit_test(test_exhausted_retries_fail_the_job),
        cmocka_unit_test(test_tolerated_failure_lets_the_job_succeed),
        cmocka_unit_test(test_tolerated_loss_keeps_the_other_outputs_and_the_reduce_runs),
        cmocka_unit_test(test_a_lost_reduce_fails_the_job_whatever_is_tolerated),
        cmocka_unit_test(test_tolerated_share_counts_the_map_tasks),
        cmocka_unit_test(test_reduce_attempts_have_the_reduce_functions_timeout),
        cmocka_unit_test(test_hung_attempt_times_out_and_is_retried),
        cmocka_unit_test(test_reduce_waits_for_every_map_task),
        cmocka_unit_test(test_empty_map_succeeds_at_once),
        cmocka_unit_test(test_cancel_and_suspend),
        cmocka_unit_test(test_job_timeout),
        cmocka_unit_test(test_plan_is_idempotent),
        cmocka_unit_test(test_dag_runs_steps_after_their_dependencies),
        cmocka_unit_test(test_dag_lost_step_fails_the_job),
        cmocka_unit_test(test_dag_when_skips_a_branch_and_the_join_still_runs),
        cmocka_unit_test(test_when_operators),
        cmocka_unit_test(test_dag_foreach_fans_out_and_collects),
        cmocka_unit_test(test_dag_foreach_over_a_non_array_fails_the_job),
        cmocka_unit_test(test_dag_foreach_over_an_empty_array_succeeds),
        cmocka_unit_test(test_dag_step_retry_overrides_the_job),
        cmocka_unit_test(test_plan_reports_what_capacity_held_back),
        cmocka_unit_test(test_a_dag_s_steps_take_their_own_account_s_capacity),
        cmocka_unit_test(test_a_reduce_on_another_account_takes_that_one_s_capacity),
        cmocka_unit_test(test_rank_priority_deadline_submission_and_aging),
    };
    return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
