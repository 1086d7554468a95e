/* tests/test_memo.c - memoized tasks (engine/memo.c): which tasks are
 * cached, what their memo key depends on, and the controller's table of
 * recent successes (bounds, tenants, age). */
#include "cb_test.h"

#include <jansson.h>
#include <string.h>

#include "memo.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

static json_t *js(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

static void key_of(const char *fn, const char *items, char hex[65])
{
    json_t *f = js(fn), *i = js(items);
    assert_int_equal(cb_memo_key(f, i, hex), CB_OK);
    assert_int_equal(strlen(hex), 64);
    json_decref(f);
    json_decref(i);
}

static void test_the_key_is_the_function_and_the_input(void **state)
{
    char a[65], b[65];
    (void)state;
    key_of("{\"backend\": \"local\", \"name\": \"add7\"}", "[1, {\"x\": 1, \"y\": 2}]", a);
    /* key order and what does not change a success (timeout, memory) */
    key_of("{\"name\": \"add7\", \"timeout_ms\": 5, \"memory_mb\": 512, \"backend\": \"local\"}",
           "[1, {\"y\": 2, \"x\": 1}]", b);
    assert_string_equal(a, b);
    key_of("{\"backend\": \"local\", \"name\": \"add8\"}", "[1, {\"x\": 1, \"y\": 2}]", b);
    assert_string_not_equal(a, b);
    key_of("{\"backend\": \"lambda\", \"name\": \"add7\"}", "[1, {\"x\": 1, \"y\": 2}]", b);
    assert_string_not_equal(a, b);
    key_of("{\"backend\": \"local\", \"name\": \"add7\"}", "[1, {\"x\": 1, \"y\": 3}]", b);
    assert_string_not_equal(a, b);
    key_of("{\"backend\": \"local\", \"name\": \"add7\"}", "[{\"x\": 1, \"y\": 2}, 1]", b);
    assert_string_not_equal(a, b); /* items in another order are another input */
    /* shipped code: its bytes' digest, not where they are stored */
    key_of("{\"backend\": \"local\", \"name\": \"python\", \"code\": {\"$cb_ref\": \"s3://a/x\", "
           "\"size\": 3, \"sha256\": \"" H1 "\"}}",
           "[1]", a);
    key_of("{\"backend\": \"local\", \"name\": \"python\", \"code\": {\"$cb_ref\": \"s3://b/y\", "
           "\"size\": 3, \"sha256\": \"" H1 "\"}}",
           "[1]", b);
    assert_string_equal(a, b);
    key_of("{\"backend\": \"local\", \"name\": \"python\", \"code\": {\"$cb_ref\": \"s3://a/x\", "
           "\"size\": 3, \"sha256\": \"" H2 "\"}}",
           "[1]", b);
    assert_string_not_equal(a, b);
    key_of("{\"backend\": \"local\", \"name\": \"python\", \"python\": \"3.12\", \"code\": "
           "{\"$cb_ref\": \"s3://a/x\", \"size\": 3, \"sha256\": \"" H1 "\"}}",
           "[1]", b);
    assert_string_not_equal(a, b);
}

static void test_a_step_s_cache_overrides_the_job_s(void **state)
{
    json_t *on = js("{\"cache\": true}"), *off = js("{\"cache\": false}"), *none = js("{}");
    (void)state;
    assert_true(cb_memo_wanted(on, NULL));
    assert_false(cb_memo_wanted(off, NULL));
    assert_false(cb_memo_wanted(none, NULL));
    assert_true(cb_memo_wanted(none, on));
    assert_false(cb_memo_wanted(on, off));
    assert_true(cb_memo_wanted(on, none)); /* a step that does not say: the job's */
    json_decref(on);
    json_decref(off);
    json_decref(none);
}

static void test_recent_successes_by_tenant_and_age(void **state)
{
    cb_memo *m = cb_memo_new(8, 1024);
    const char *job = NULL, *text;
    uint32_t task = 0;
    size_t n = 0;
    (void)state;
    assert_non_null(m);
    assert_int_equal(cb_memo_put(m, "acme", H1, "j1", 3, 1000, "[8]", 3), CB_OK);
    text = cb_memo_get(m, "acme", H1, 0, &job, &task, &n);
    assert_non_null(text);
    assert_int_equal(n, 3);
    assert_memory_equal(text, "[8]", 3);
    assert_string_equal(job, "j1");
    assert_int_equal(task, 3);
    assert_null(cb_memo_get(m, "other", H1, 0, &job, &task, &n)); /* per tenant */
    assert_null(cb_memo_get(m, "acme", H2, 0, &job, &task, &n));
    assert_null(cb_memo_get(m, "acme", H1, 1001, &job, &task, &n)); /* older than asked */
    assert_non_null(cb_memo_get(m, "acme", H1, 1000, &job, &task, &n));
    /* a later success with the key replaces it */
    assert_int_equal(cb_memo_put(m, "acme", H1, "j2", 0, 2000, "[9]", 3), CB_OK);
    assert_int_equal(cb_memo_count(m), 1);
    text = cb_memo_get(m, "acme", H1, 0, &job, &task, &n);
    assert_memory_equal(text, "[9]", 3);
    assert_string_equal(job, "j2");
    assert_int_equal(cb_memo_put(m, "acme", "xyz", "j", 0, 1, "1", 1), CB_EINVAL);
    cb_memo_free(m);
}

static void test_recent_successes_are_bounded(void **state)
{
    cb_memo *m = cb_memo_new(2, 10);
    const char *job;
    uint32_t task;
    size_t n;
    (void)state;
    assert_int_equal(cb_memo_put(m, "t", H1, "j", 1, 1, "[1]", 3), CB_OK);
    assert_int_equal(cb_memo_put(m, "t", H2, "j", 2, 2, "[2]", 3), CB_OK);
    assert_int_equal(cb_memo_put(m, "t", H3, "j", 3, 3, "[3]", 3), CB_OK); /* H1 goes */
    assert_int_equal(cb_memo_count(m), 2);
    assert_null(cb_memo_get(m, "t", H1, 0, &job, &task, &n));
    assert_non_null(cb_memo_get(m, "t", H2, 0, &job, &task, &n));
    assert_non_null(cb_memo_get(m, "t", H3, 0, &job, &task, &n));
    /* 8 bytes more: both others go to stay within 10 bytes */
    assert_int_equal(cb_memo_put(m, "t", H1, "j", 1, 4, "[1234567]", 9), CB_OK);
    assert_int_equal(cb_memo_count(m), 1);
    assert_null(cb_memo_get(m, "t", H2, 0, &job, &task, &n));
    /* larger than the bound: not kept, nothing else goes */
    assert_int_equal(cb_memo_put(m, "t", H2, "j", 2, 5, "[123456789]", 11), CB_OK);
    assert_null(cb_memo_get(m, "t", H2, 0, &job, &task, &n));
    assert_non_null(cb_memo_get(m, "t", H1, 0, &job, &task, &n));
    cb_memo_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_key_is_the_function_and_the_input),
        cmocka_unit_test(test_a_step_s_cache_overrides_the_job_s),
        cmocka_unit_test(test_recent_successes_by_tenant_and_age),
        cmocka_unit_test(test_recent_successes_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
