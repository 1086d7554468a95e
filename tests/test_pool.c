/* tests/test_pool.c - pools (docs/engine.md, "Pools"): the configuration's
 * checks (common/cb_config.c), the split of a plan's invocations across
 * the members (engine/pool.c): every policy within each member's free
 * capacity, weights kept, the cheapest first; and what a member that
 * throttles is found to take. */
#include "cb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_config.h"
#include "pool.h"

static cb_status load(const char *text, cb_config **out, char *err, size_t n)
{
    char path[] = "/tmp/cbpool.XXXXXX";
    int fd = mkstemp(path);
    cb_status s;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    s = cb_config_load(path, out, err, n);
    unlink(path);
    return s;
}

#define BACKENDS                                                                                   \
    "\"backends\": {\"local\": {}, \"b\": {\"type\": \"local\", \"max_concurrency\": 4},"          \
    " \"c\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:9/{name}\"}}"

static void test_a_pool_in_the_configuration(void **state)
{
    cb_config *c = NULL;
    char err[300];
    const cb_pool *p;
    (void)state;
    assert_int_equal(load("{" BACKENDS ", \"pools\": {\"fast\": {\"members\": [\"b\", \"c\", "
                          "\"local\"], \"policy\": \"weighted\", \"weights\": {\"c\": 3}}}}",
                          &c, err, sizeof err),
                     CB_OK);
    assert_non_null(p = cb_config_pool(c, "fast"));
    assert_null(cb_config_pool(c, "b"));
    assert_null(cb_config_pool(c, "slow"));
    assert_int_equal(p->policy, CB_POOL_WEIGHTED);
    assert_int_equal(p->n, 3);
    assert_string_equal(p->members[1], "c");
    assert_true(p->weights[0] == 1 && p->weights[1] == 3 && p->weights[2] == 1);
    assert_string_equal(cb_pool_policy_name(p->policy), "weighted");
    cb_config_free(c);
}

static void test_a_wrong_pool_is_refused_naming_it(void **state)
{
    static const struct {
        const char *pools, *says;
    } bad[] = {
        {"{\"b\": {\"members\": [\"c\"]}}", "/pools/b: a backend has that name"},
        {"{\"p\": {\"members\": []}}", "/pools/p/members: 1 to 8 backends"},
        {"{\"p\": {\"members\": [\"c\", \"nope\"]}}", "/pools/p/members/1: \"nope\" is no backend"},
        {"{\"p\": {\"members\": [\"c\", \"c\"]}}", "/pools/p/members: \"c\" twice"},
        {"{\"p\": {\"members\": [\"c\"], \"policy\": \"random\"}}", "/pools/p/policy: \"random\""},
        {"{\"p\": {\"members\": [\"c\"], \"weights\": {\"b\": 1}}}",
         "/pools/p/weights/b: not a member"},
        {"{\"p\": {\"members\": [\"c\"], \"weights\": {\"c\": 0}}}",
         "/pools/p/weights/c: a number > 0"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[600], err[300] = "";
        cb_config *c = NULL;
        snprintf(text, sizeof text, "{" BACKENDS ", \"pools\": %s}", bad[i].pools);
        assert_int_equal(load(text, &c, err, sizeof err), CB_EINVAL);
        if (!strstr(err, bad[i].says))
            fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].pools, err, bad[i].says);
        assert_null(c);
    }
}

static void test_order_fills_then_spills_over(void **state)
{
    cb_pool_member_in m[3] = {{.free = 4}, {.free = 0}, {.free = 10}};
    uint64_t out[3];
    (void)state;
    assert_int_equal(cb_pool_split(CB_POOL_ORDER, m, 3, 3, out), 3);
    assert_true(out[0] == 3 && out[1] == 0 && out[2] == 0);
    assert_int_equal(cb_pool_split(CB_POOL_ORDER, m, 3, 9, out), 9);
    assert_true(out[0] == 4 && out[1] == 0 && out[2] == 5); /* the full one is skipped */
    assert_int_equal(cb_pool_split(CB_POOL_ORDER, m, 3, 100, out), 14); /* no more than free */
    assert_true(out[0] == 4 && out[1] == 0 && out[2] == 10);
}

static void test_cheapest_first(void **state)
{
    cb_pool_member_in m[3] = {{.free = 5, .per_gb_s = 2},
                              {.free = 5, .per_gb_s = 1, .per_request = 2},
                              {.free = 5, .per_gb_s = 1, .per_request = 1}};
    uint64_t out[3];
    (void)state;
    assert_int_equal(cb_pool_split(CB_POOL_CHEAPEST, m, 3, 7, out), 7);
    assert_true(out[2] == 5 && out[1] == 2 && out[0] == 0);
    m[2].per_request = 2; /* a tie: the pool's order */
    assert_int_equal(cb_pool_split(CB_POOL_CHEAPEST, m, 3, 7, out), 7);
    assert_true(out[1] == 5 && out[2] == 2 && out[0] == 0);
}

static void test_weighted_keeps_the_shares(void **state)
{
    cb_pool_member_in m[3] = {
        {.free = 1000, .weight = 1}, {.free = 1000, .weight = 3}, {.free = 1000, .weight = 1}};
    uint64_t out[3];
    (void)state;
    assert_int_equal(cb_pool_split(CB_POOL_WEIGHTED, m, 3, 100, out), 100);
    assert_true(out[0] == 20 && out[1] == 60 && out[2] == 20);
    m[1].free = 30; /* a full member's share goes to the others, equally here */
    assert_int_equal(cb_pool_split(CB_POOL_WEIGHTED, m, 3, 100, out), 100);
    assert_true(out[0] == 35 && out[1] == 30 && out[2] == 35);
    m[0].free = m[2].free = 0; /* nothing more than free */
    assert_int_equal(cb_pool_split(CB_POOL_WEIGHTED, m, 3, 100, out), 30);
}

#define MS 1000000LL

/* A member that throttles takes half what it had in flight; a burst of
 * reports within a second is one; it recovers by a quarter (at least 1)
 * every half second without one, until its own limit holds again. */
static void test_a_throttling_member_gets_less_until_it_recovers(void **state)
{
    cb_learned l = {0};
    (void)state;
    cb_learn_throttled(&l, 6, 1000 * MS);
    assert_int_equal(l.limit, 3);
    cb_learn_throttled(&l, 6, 1500 * MS); /* the same burst */
    assert_int_equal(l.limit, 3);
    cb_learn_throttled(&l, 3, 2000 * MS); /* still throttles at 3 */
    assert_int_equal(l.limit, 1);
    cb_learn_throttled(&l, 0, 3000 * MS); /* never below 1 */
    assert_int_equal(l.limit, 1);
    cb_learn_recover(&l, 6, 3400 * MS); /* not a step yet */
    assert_int_equal(l.limit, 1);
    cb_learn_recover(&l, 6, 3500 * MS);
    assert_int_equal(l.limit, 2);
    cb_learn_recover(&l, 6, 4600 * MS); /* two steps: 2 -> 3 -> 4 */
    assert_int_equal(l.limit, 4);
    cb_learn_throttled(&l, 9, 4700 * MS); /* what it learned caps what it had */
    assert_int_equal(l.limit, 2);
    cb_learn_recover(&l, 6, 9700 * MS); /* back to its own limit: nothing learned */
    assert_int_equal(l.limit, 0);
    cb_learn_throttled(&l, 40, 9800 * MS); /* learned afresh from what it had */
    assert_int_equal(l.limit, 20);
    cb_learn_recover(&l, 0, 60000 * MS); /* no limit of its own: up to CB_LEARN_MAX */
    assert_int_equal(l.limit, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_pool_in_the_configuration),
        cmocka_unit_test(test_a_wrong_pool_is_refused_naming_it),
        cmocka_unit_test(test_order_fills_then_spills_over),
        cmocka_unit_test(test_cheapest_first),
        cmocka_unit_test(test_weighted_keeps_the_shares),
        cmocka_unit_test(test_a_throttling_member_gets_less_until_it_recovers),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
