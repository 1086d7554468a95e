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
#include "scheduler.h"

#define MAXT 64

typedef struct sim {
    cb_flow flow;
    cb_policy policy;
    cb_job_state job;
    cb_task_state tasks[MAXT];
    bool has_record[MAXT];
    int64_t now;
    int fail_first[MAXT];  /* attempts that fail before one succeeds; -1 always */
    bool hang_first[MAXT]; /* the first attempt never answers */
    int dispatches[MAXT];
    uint32_t max_inflight_seen;
    uint32_t capacity;
    int64_t retry_at[MAXT][8];
    int n;
    cb_sched_end end;
    char error[256];
    bool reduce_before_maps_done;
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
    s->now = 1795752142000000000LL;
    s->capacity = 1000;
    fold(s, CB_EV_JOB_SUBMITTED, json_pack("{s:O, s:s}", "job", spec, "digest", "d"));
    json_decref(spec);
}

static void sim_cleanup(sim *s)
{
    cb_flow_cleanup(&s->flow);
    cb_job_state_cleanup(&s->job);
    for (int i = 0; i < MAXT; i++)
        cb_task_state_cleanup(&s->tasks[i]);
}

static cb_status plan(sim *s, cb_sched_plan *p)
{
    uint32_t idx[MAXT];
    cb_task_state recs[MAXT];
    size_t n = 0;
    for (uint32_t i = 0; i < MAXT; i++)
        if (s->has_record[i] && s->tasks[i].status != CB_TASK_PENDING) {
            idx[n] = i;
            recs[n++] = s->tasks[i]; /* shallow copies: borrowed for the call */
        }
    cb_sched_in in = {&s->flow, &s->policy, &s->job, idx, recs, n, s->capacity, s->now, "acme/j1"};
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
    if (fails)
        fold(s, CB_EV_TASK_FAILED,
             json_pack("{s:i, s:i, s:s}", "task", task, "attempt", attempt, "error", "boom"));
    else
        fold(s, CB_EV_TASK_SUCCEEDED,
             json_pack("{s:i, s:i, s:i}", "task", task, "attempt", attempt, "output", task));
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
        assert_true(p.ndispatch <= s->capacity);
        if (p.ndispatch) {
            json_t *list = json_array();
            for (size_t i = 0; i < p.ndispatch; i++) {
                json_array_append_new(list, json_pack("{s:i, s:i}", "task", p.dispatch[i].task,
                                                      "attempt", p.dispatch[i].attempt));
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
        } else if (!p.start && !p.ndispatch && !p.nretry && !p.ntimeout) {
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

static void test_dag_when_and_foreach_not_planned_yet(void **state)
{
    sim s;
    cb_sched_plan p;
    char err[200];
    (void)state;
    sim_init(&s, "{\"kind\":\"dag\",\"tasks\":{\"A\":{\"function\":{\"backend\":\"local\","
                 "\"name\":\"f\"}},\"B\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
                 "\"foreach\":\"A\"}}}");
    assert_int_equal(plan(&s, &p), CB_EUNSUPP);
    assert_false(cb_sched_dag_runnable(&s.flow, err, sizeof err));
    assert_string_equal(err, "/tasks/B/foreach: not run by this engine version yet");
    sim_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_respects_parallelism_and_runs_each_task_once),
        cmocka_unit_test(test_capacity_bounds_each_plan),
        cmocka_unit_test(test_retries_with_backoff_then_success),
        cmocka_unit_test(test_exhausted_retries_fail_the_job),
        cmocka_unit_test(test_tolerated_failure_lets_the_job_succeed),
        cmocka_unit_test(test_hung_attempt_times_out_and_is_retried),
        cmocka_unit_test(test_reduce_waits_for_every_map_task),
        cmocka_unit_test(test_empty_map_succeeds_at_once),
        cmocka_unit_test(test_cancel_and_suspend),
        cmocka_unit_test(test_job_timeout),
        cmocka_unit_test(test_plan_is_idempotent),
        cmocka_unit_test(test_dag_runs_steps_after_their_dependencies),
        cmocka_unit_test(test_dag_lost_step_fails_the_job),
        cmocka_unit_test(test_dag_when_and_foreach_not_planned_yet),
    };
    return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
