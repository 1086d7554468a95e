/* tests/test_pace.c - an account's request pace (adapters/pace.c): slots
 * one interval apart, and starts never less than an interval apart however
 * late the requests' timers fire (a late timer followed by an on-time one
 * used to start two requests 10 ms apart at 20/s). */
#include "cb_test.h"

#include <stdint.h>
#include <stdlib.h>

#include "pace.h"

#define MS 1000000LL

static void test_no_pace_starts_at_once(void **state)
{
    cb_pace p = {0};
    (void)state;
    assert_int_equal(cb_pace_slot(&p, 5 * MS), 5 * MS);
    assert_int_equal(cb_pace_slot(&p, 5 * MS), 5 * MS);
    assert_int_equal(cb_pace_start(&p, 5 * MS), 0);
    assert_int_equal(cb_pace_start(&p, 5 * MS), 0);
}

static void test_slots_are_one_interval_apart(void **state)
{
    cb_pace p = {.interval_ns = 50 * MS};
    (void)state;
    assert_int_equal(cb_pace_slot(&p, 1000 * MS), 1000 * MS);
    assert_int_equal(cb_pace_slot(&p, 1000 * MS), 1050 * MS);
    assert_int_equal(cb_pace_slot(&p, 1010 * MS), 1100 * MS);
    /* a request that wants to start later than the next slot (a retry's delay) */
    assert_int_equal(cb_pace_slot(&p, 2000 * MS), 2000 * MS);
    assert_int_equal(cb_pace_slot(&p, 2000 * MS), 2050 * MS);
}

static void test_a_late_timer_holds_the_next_start_back(void **state)
{
    cb_pace p = {.interval_ns = 50 * MS};
    (void)state;
    int64_t a = cb_pace_slot(&p, 1000 * MS), b = cb_pace_slot(&p, 1000 * MS);
    assert_int_equal(b - a, 50 * MS);
    /* a's timer fires 40 ms late, b's on time: b waits until 50 ms after a */
    assert_int_equal(cb_pace_start(&p, a + 40 * MS), 0);
    assert_int_equal(cb_pace_start(&p, b), 40 * MS);
    assert_int_equal(cb_pace_start(&p, b + 39 * MS), 1 * MS);
    assert_int_equal(cb_pace_start(&p, b + 40 * MS), 0);
}

/* 300 requests queued at once at 20/s, each timer (and each re-armed one)
 * firing 0-120 ms late: no two starts less than 50 ms apart, so no
 * one-second window holds more than 20, and every request starts. */
static void test_random_lateness_keeps_the_rate(void **state)
{
    enum { N = 300 };
    cb_pace p = {.interval_ns = 50 * MS};
    int64_t fire[N], started[N];
    int nstarted = 0;
    unsigned seed = 7;
    (void)state;
    for (int i = 0; i < N; i++) {
        fire[i] = cb_pace_slot(&p, 1000 * MS) + (int64_t)(rand_r(&seed) % 121) * MS;
        started[i] = -1;
    }
    while (nstarted < N) {
        int next = -1;
        for (int i = 0; i < N; i++)
            if (started[i] < 0 && (next < 0 || fire[i] < fire[next]))
                next = i;
        if (next < 0)
            break; /* (never: one is left while nstarted < N) */
        int64_t wait = cb_pace_start(&p, fire[next]);
        if (wait == 0)
            started[next] = fire[next], nstarted++;
        else
            fire[next] += wait + (int64_t)(rand_r(&seed) % 121) * MS;
    }
    int64_t *t = malloc(sizeof started);
    assert_non_null(t);
    for (int i = 0; i < N; i++)
        t[i] = started[i];
    for (int i = 1; i < N; i++) /* insertion sort: the starts in time order */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            int64_t x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    for (int i = 1; i < N; i++)
        assert_true(t[i] - t[i - 1] >= 50 * MS);
    for (int i = 20; i < N; i++) /* the 21st start after any is a second or more later */
        assert_true(t[i] - t[i - 20] >= 1000 * MS);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_pace_starts_at_once),
        cmocka_unit_test(test_slots_are_one_interval_apart),
        cmocka_unit_test(test_a_late_timer_holds_the_next_start_back),
        cmocka_unit_test(test_random_lateness_keeps_the_rate),
    };
    return cmocka_run_group_tests_name("pace", tests, NULL, NULL);
}
