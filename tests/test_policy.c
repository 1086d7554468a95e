/* tests/test_policy.c - retries, backoff (deterministic jitter), timeouts and
 * tolerated failures from job descriptors. */
#include "cb_test.h"

#include <jansson.h>

#include "policy.h"

static void from(const char *json, cb_policy *p)
{
    json_error_t je;
    cb_policy_defaults d;
    json_t *spec = json_loads(json, 0, &je);
    assert_non_null(spec);
    cb_policy_defaults_init(&d);
    cb_policy_from_spec(spec, spec, &d, p);
    json_decref(spec);
}

static void test_defaults(void **state)
{
    cb_policy p;
    (void)state;
    from("{\"kind\":\"map\",\"function\":{\"backend\":\"local\",\"name\":\"f\"}}", &p);
    assert_int_equal(p.parallelism, 1000);
    assert_int_equal(p.retry_limit, 0);
    assert_false(cb_policy_may_retry(&p, 1));
    assert_int_equal(p.task_timeout_ms, 300000);
    assert_int_equal(p.job_timeout_ms, 0);
    assert_false(cb_policy_too_many_failures(&p, 0, 10));
    assert_true(cb_policy_too_many_failures(&p, 1, 10)); /* none tolerated */
}

static void test_design_example(void **state)
{
    cb_policy p;
    (void)state;
    from("{\"function\":{\"timeout_ms\":60000},\"retry\":{\"limit\":3,\"backoff_ms\":200,"
         "\"factor\":2.0},\"parallelism\":256,\"timeout_ms\":600000}",
         &p);
    assert_int_equal(p.parallelism, 256);
    assert_int_equal(p.task_timeout_ms, 60000);
    assert_int_equal(p.job_timeout_ms, 600000);
    assert_true(cb_policy_may_retry(&p, 1));
    assert_true(cb_policy_may_retry(&p, 3));
    assert_false(cb_policy_may_retry(&p, 4)); /* 1 attempt + 3 retries */
    assert_int_equal(cb_policy_backoff_ms(&p, "acme/j", 0, 2), 200);
    assert_int_equal(cb_policy_backoff_ms(&p, "acme/j", 0, 3), 400);
    assert_int_equal(cb_policy_backoff_ms(&p, "acme/j", 0, 4), 800);
}

static void test_backoff_is_capped_and_jitter_deterministic(void **state)
{
    cb_policy p;
    (void)state;
    from("{\"retry\":{\"limit\":50,\"backoff_ms\":1000,\"factor\":3,\"max_backoff_ms\":5000,"
         "\"jitter\":true}}",
         &p);
    for (uint32_t next = 2; next < 20; next++) {
        int64_t a = cb_policy_backoff_ms(&p, "acme/j", 7, next);
        int64_t b = cb_policy_backoff_ms(&p, "acme/j", 7, next);
        assert_int_equal(a, b); /* a restarted engine computes the same */
        assert_true(a <= 5000);
        int64_t full = next == 2 ? 1000 : next == 3 ? 3000 : 5000;
        assert_true(a >= full / 2 && a <= full);
    }
    /* different tasks spread out */
    int distinct = 0;
    int64_t first = cb_policy_backoff_ms(&p, "acme/j", 0, 5);
    for (uint32_t t = 1; t < 20; t++)
        distinct += cb_policy_backoff_ms(&p, "acme/j", t, 5) != first;
    assert_true(distinct >= 15);
}

static void test_tolerated_failures(void **state)
{
    cb_policy p;
    (void)state;
    from("{\"tolerated_failures\":2}", &p);
    assert_false(cb_policy_too_many_failures(&p, 2, 100));
    assert_true(cb_policy_too_many_failures(&p, 3, 100));
    from("{\"tolerated_failures\":\"2.5%\"}", &p);
    assert_false(cb_policy_too_many_failures(&p, 25, 1000));
    assert_true(cb_policy_too_many_failures(&p, 26, 1000));
    assert_false(cb_policy_too_many_failures(&p, 0, 0));
}

static void test_dag_step_overrides(void **state)
{
    json_error_t je;
    json_t *job = json_loads("{\"retry\":{\"limit\":1},\"timeout_ms\":9000,\"tasks\":{"
                             "\"A\":{\"function\":{\"timeout_ms\":700}},"
                             "\"B\":{\"timeout_ms\":300,\"retry\":{\"limit\":5},"
                             "\"function\":{\"timeout_ms\":700}}}}",
                             0, &je);
    cb_policy_defaults d;
    cb_policy a, b;
    (void)state;
    cb_policy_defaults_init(&d);
    cb_policy_from_spec(job, json_object_get(json_object_get(job, "tasks"), "A"), &d, &a);
    cb_policy_from_spec(job, json_object_get(json_object_get(job, "tasks"), "B"), &d, &b);
    assert_int_equal(a.retry_limit, 1);       /* the job's */
    assert_int_equal(a.task_timeout_ms, 700); /* its function's */
    assert_int_equal(b.retry_limit, 5);       /* its own */
    assert_int_equal(b.task_timeout_ms, 300);
    assert_int_equal(a.job_timeout_ms, 9000);
    json_decref(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_design_example),
        cmocka_unit_test(test_backoff_is_capped_and_jitter_deterministic),
        cmocka_unit_test(test_tolerated_failures),
        cmocka_unit_test(test_dag_step_overrides),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
