/* tests/test_decide.c - the controller's decisions as events (engine/decide.c),
 * without a broker: which events a plan appends, in which order, with which
 * deterministic ids and data, and that each is valid for schemas/event.json. */
#include "cb_test.h"

#include <jansson.h>
#include <string.h>

#include "cb_schema.h"
#include "decide.h"
#include "flow.h"
#include "scheduler.h"

#define NOW 1795752142000000000LL

static void build(const char *spec_text, cb_flow *f)
{
    json_t *spec = json_loads(spec_text, 0, NULL);
    char err[256];
    assert_non_null(spec);
    if (cb_flow_build(spec, 0, f, err, sizeof err) != CB_OK)
        fail_msg("flow: %s", err);
    json_decref(spec);
}

/* Each decision as an event must be valid for event.json. */
static void assert_events_valid(const cb_decisions *d)
{
    for (size_t i = 0; i < d->n; i++) {
        cb_event ev;
        char id[128], *text;
        size_t len;
        json_t *o, *errors = NULL;
        snprintf(id, sizeof id, "acme/j1/%s", d->v[i].what);
        assert_int_equal(cb_event_init(&ev, d->v[i].type, "acme", "j1", id, "cbcore/engine", NOW,
                                       json_incref(d->v[i].data)),
                         CB_OK);
        assert_int_equal(cb_event_encode(&ev, &text, &len), CB_OK);
        o = json_loadb(text, len, 0, NULL);
        if (cb_schema_validate(cb_test_schemas(), "event.json", o, 4, &errors) != CB_OK)
            fail_msg("%s: %s", d->v[i].what, json_string_value(json_array_get(errors, 0)));
        json_decref(o);
        free(text);
        cb_event_cleanup(&ev);
    }
}

/* A map plan: started, a timeout, a retry later: in that order, with ids that
 * name task and attempt (so the same plan made twice appends nothing twice). */
static void map_plan_becomes_events(void **state)
{
    cb_flow f;
    cb_task_view v = {0};
    cb_task_ref timeout = {2, 1, false};
    cb_retry retry = {4, 3, NOW + 250000000};
    cb_sched_plan p;
    cb_decisions d;
    (void)state;
    build("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": \"noop\"}, "
          "\"input\": {\"range\": {\"start\": 0, \"stop\": 7}}}",
          &f);
    memset(&p, 0, sizeof p);
    p.start = true;
    p.timeout = &timeout;
    p.ntimeout = 1;
    p.retry = &retry;
    p.nretry = 1;
    assert_int_equal(cb_decide(&f, &v, &p, NOW, &d), CB_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.v[0].type, CB_EV_JOB_STARTED);
    assert_string_equal(d.v[0].what, "started");
    cb_test_expect_json(json_incref(d.v[0].data), "{\"tasks\": 7}");
    assert_int_equal(d.v[1].type, CB_EV_TASK_TIMED_OUT);
    assert_string_equal(d.v[1].what, "2/1/timed_out");
    cb_test_expect_json(json_incref(d.v[1].data), "{\"task\": 2, \"attempt\": 1}");
    assert_int_equal(d.v[2].type, CB_EV_TASK_RETRY_SCHEDULED);
    assert_string_equal(d.v[2].what, "4/3/retry");
    cb_test_expect_json(json_incref(d.v[2].data),
                        "{\"task\": 4, \"attempt\": 3, \"at\": "
                        "\"2026-11-27T04:02:22.250000Z\", \"delay_ms\": 250}");
    assert_events_valid(&d);
    cb_decisions_cleanup(&d);
    /* a plan with nothing to say says nothing */
    memset(&p, 0, sizeof p);
    assert_int_equal(cb_decide(&f, &v, &p, NOW, &d), CB_OK);
    assert_int_equal(d.n, 0);
    cb_decisions_cleanup(&d);
    cb_flow_cleanup(&f);
}

/* A DAG plan: a skipped step, an expanded foreach and a collection whose
 * output is the children's outputs in order; a collection whose children are
 * not all done is left for a later plan. */
static void dag_plan_becomes_events(void **state)
{
    cb_flow f;
    uint32_t idx[4] = {1, 3, 4, 5};
    cb_task_state recs[4];
    cb_task_view v = {idx, recs, 4};
    cb_skip skip = {.task = 2};
    cb_expand expand = {1, 3, 3};
    uint32_t collect = 1;
    cb_sched_plan p;
    cb_decisions d;
    (void)state;
    build("{\"kind\": \"dag\", \"tasks\": {\"a\": {\"function\": {\"backend\": \"local\", "
          "\"name\": \"echo\"}}, \"each\": {\"function\": {\"backend\": \"local\", \"name\": "
          "\"echo\"}, \"foreach\": \"a\"}, \"late\": {\"function\": {\"backend\": \"local\", "
          "\"name\": \"echo\"}, \"depends\": [\"a\"], \"when\": {\"step\": \"a\", \"op\": \"==\", "
          "\"value\": 0}}}}",
          &f);
    memset(recs, 0, sizeof recs);
    recs[0].status = CB_TASK_EXPANDED;
    recs[0].first = 3;
    recs[0].count = 3;
    for (int i = 1; i < 4; i++) {
        recs[i].status = CB_TASK_SUCCEEDED;
        recs[i].attempt = 1;
        recs[i].output = json_pack("[i]", 10 * i);
    }
    snprintf(skip.reason, sizeof skip.reason, "%s", "when a == 0 is false");
    memset(&p, 0, sizeof p);
    p.skip = &skip;
    p.nskip = 1;
    p.expand = &expand;
    p.nexpand = 1;
    p.collect = &collect;
    p.ncollect = 1;
    assert_int_equal(cb_decide(&f, &v, &p, NOW, &d), CB_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.v[0].type, CB_EV_TASK_SKIPPED);
    assert_string_equal(d.v[0].what, "2/skipped");
    cb_test_expect_json(json_incref(d.v[0].data),
                        "{\"task\": 2, \"step\": \"late\", \"reason\": \"when a == 0 is false\"}");
    assert_int_equal(d.v[1].type, CB_EV_TASK_EXPANDED);
    assert_string_equal(d.v[1].what, "1/expanded");
    cb_test_expect_json(json_incref(d.v[1].data),
                        "{\"task\": 1, \"step\": \"each\", \"first\": 3, \"count\": 3}");
    assert_int_equal(d.v[2].type, CB_EV_TASK_SUCCEEDED);
    assert_string_equal(d.v[2].what, "1/1/succeeded"); /* the id attempt 1's report would have */
    cb_test_expect_json(json_incref(d.v[2].data),
                        "{\"task\": 1, \"attempt\": 1, \"step\": \"each\", \"output\": "
                        "[[10, 20, 30]]}");
    assert_events_valid(&d);
    cb_decisions_cleanup(&d);
    /* one child still running: no collection yet */
    recs[2].status = CB_TASK_RUNNING;
    memset(&p, 0, sizeof p);
    p.collect = &collect;
    p.ncollect = 1;
    assert_int_equal(cb_decide(&f, &v, &p, NOW, &d), CB_OK);
    assert_int_equal(d.n, 0);
    cb_decisions_cleanup(&d);
    for (int i = 0; i < 4; i++)
        json_decref(recs[i].output);
    cb_flow_cleanup(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_plan_becomes_events),
        cmocka_unit_test(dag_plan_becomes_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
