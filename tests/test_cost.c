/* tests/test_cost.c - what invocations cost (common/cb_cost.c): GB-seconds
 * and amounts as FaaS platforms bill them, rounded once per invocation,
 * totals that add up exactly, the two JSON forms, and budgets. */
#include "cb_test.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "cb_cost.h"

/* AWS Lambda's x86 prices (USD): 1 GB-s and 1 request. */
static const cb_price lambda = {0.0000166667, 0.0000002, 128};

static void test_an_invocation_is_memory_times_duration_and_a_request(void **state)
{
    (void)state;
    /* 1024 MB for 1 s: 1 GB-s = 16,666.7 nanos + 200 for the request */
    cb_cost c = cb_cost_of(&lambda, 1024, 1000);
    assert_int_equal(c.invocations, 1);
    assert_int_equal(c.mb_ms, 1024000);
    assert_int_equal(c.nanos, 16667 + 200);
    assert_true(fabs(cb_cost_gb_s(&c) - 1.0) < 1e-12);
    assert_true(fabs(cb_cost_amount(&c) - 0.000016867) < 1e-15);
    /* no memory given: the account's billed size */
    c = cb_cost_of(&lambda, 0, 100);
    assert_int_equal(c.mb_ms, 128 * 100);
    assert_int_equal(c.nanos, 208 + 200); /* 0.0125 GB-s x 16666.7 = 208.3 */
    /* a negative duration (a clock step) costs the request only */
    c = cb_cost_of(&lambda, 512, -5);
    assert_int_equal(c.mb_ms, 0);
    assert_int_equal(c.nanos, 200);
    /* free: counted, costs nothing */
    cb_price free_ = {0, 0, 0};
    c = cb_cost_of(&free_, 0, 1000);
    assert_int_equal(c.mb_ms, CB_COST_MEMORY_MB * 1000);
    assert_int_equal(c.nanos, 0);
}

static void test_totals_are_exact_sums(void **state)
{
    cb_cost total = {0}, again = {0};
    (void)state;
    assert_true(cb_cost_none(&total));
    /* 1000 invocations of 3 ms at 128 MB: each rounded once */
    for (int i = 0; i < 1000; i++) {
        cb_cost c = cb_cost_of(&lambda, 128, 3);
        cb_cost_add(&total, &c);
    }
    assert_false(cb_cost_none(&total));
    assert_int_equal(total.invocations, 1000);
    assert_int_equal(total.mb_ms, 384000);
    assert_int_equal(total.nanos, 1000 * (6 + 200)); /* 0.000375 GB-s -> 6.25 -> 6 */
    /* in any order, in any grouping: the same integers */
    for (int g = 0; g < 10; g++) {
        cb_cost part = {0};
        for (int i = 0; i < 100; i++) {
            cb_cost c = cb_cost_of(&lambda, 128, 3);
            cb_cost_add(&part, &c);
        }
        cb_cost_add(&again, &part);
    }
    assert_memory_equal(&total, &again, sizeof total);
}

static void test_the_json_forms_go_and_come_back(void **state)
{
    cb_cost c = cb_cost_of(&lambda, 256, 1234), back;
    json_t *t, *inv;
    (void)state;
    c.invocations = 3;
    t = cb_cost_json(&c);
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "invocations")), 3);
    assert_true(fabs(json_real_value(json_object_get(t, "gb_s")) - cb_cost_gb_s(&c)) < 1e-15);
    assert_true(fabs(json_real_value(json_object_get(t, "amount")) - cb_cost_amount(&c)) < 1e-18);
    assert_int_equal(cb_cost_parse(t, &back), CB_OK);
    assert_memory_equal(&c, &back, sizeof c);
    json_object_del(t, "nanos");
    assert_int_equal(cb_cost_parse(t, &back), CB_EINVAL);
    assert_true(cb_cost_none(&back));
    assert_int_equal(cb_cost_parse(NULL, &back), CB_EINVAL);
    json_decref(t);

    inv = cb_cost_invocation_json(&c);
    assert_non_null(inv);
    /* two numbers: one invocation, on the account the event's source names */
    assert_int_equal(json_array_size(inv), 2);
    assert_int_equal(cb_cost_invocation_parse(inv, &back), CB_OK);
    assert_int_equal(back.invocations, 1);
    assert_int_equal(back.mb_ms, c.mb_ms);
    assert_int_equal(back.nanos, c.nanos);
    json_array_set_new(inv, 1, json_integer(-1));
    assert_int_equal(cb_cost_invocation_parse(inv, &back), CB_EINVAL);
    json_array_remove(inv, 1);
    assert_int_equal(cb_cost_invocation_parse(inv, &back), CB_EINVAL);
    json_decref(inv);
}

static void test_a_budget_in_nanos_is_never_below_what_was_given(void **state)
{
    (void)state;
    assert_int_equal(cb_cost_nanos_of(0.000002), 2000);
    assert_int_equal(cb_cost_nanos_of(1.5), 1500000000ULL);
    assert_int_equal(cb_cost_nanos_of(1e-10), 1); /* rounded up, not to nothing */
    assert_int_equal(cb_cost_nanos_of(0), 0);
    assert_int_equal(cb_cost_nanos_of(-3), 0);
    assert_int_equal(cb_cost_nanos_of(NAN), 0);
    assert_int_equal(cb_cost_nanos_of(1e30), UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_invocation_is_memory_times_duration_and_a_request),
        cmocka_unit_test(test_totals_are_exact_sums),
        cmocka_unit_test(test_the_json_forms_go_and_come_back),
        cmocka_unit_test(test_a_budget_in_nanos_is_never_below_what_was_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
