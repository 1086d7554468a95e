/* tests/test_chaos.c - every allocation of the fold and of intake fails in
 * turn (first the 1st, then the 2nd, ... until a run needs no more), with
 * jansson's allocations routed through cb_alloc.h (and the event decoder the
 * projector runs on every log entry). Each run must either say
 * CB_ENOMEM or produce exactly what the run without failures produces: an
 * allocation failure is never swallowed into a wrong state or a wrong
 * verdict. Leaks on these paths are found by make asan (LeakSanitizer). */
#define _GNU_SOURCE
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_config.h"
#include "cb_event.h"
#include "cb_json.h"
#include "cb_schema.h"
#include "fold.h"
#include "intake.h"

#define NTASKS 4

typedef struct world {
    cb_job_state job;
    cb_task_state tasks[NTASKS];
    cb_fold_tasks access;
} world;

static cb_task_state *get_task(void *arg, uint32_t idx)
{
    world *w = arg;
    return idx < NTASKS ? &w->tasks[idx] : NULL;
}

static void world_cleanup(world *w)
{
    cb_job_state_cleanup(&w->job);
    for (int i = 0; i < NTASKS; i++)
        cb_task_state_cleanup(&w->tasks[i]);
}

/* The world as one JSON text (job and task records), for comparisons. */
static char *world_text(const world *w)
{
    json_t *a = json_array();
    char *text;
    if (!a || json_array_append_new(a, cb_job_state_to_json(&w->job))) {
        json_decref(a);
        return NULL;
    }
    for (int i = 0; i < NTASKS; i++)
        if (json_array_append_new(a, cb_task_state_to_json(&w->tasks[i]))) {
            json_decref(a);
            return NULL;
        }
    text = cb_json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(a);
    return text;
}

static const struct {
    cb_event_type type;
    const char *data;
} LOG[] = {
    {CB_EV_JOB_SUBMITTED,
     "{\"job\": {\"tenant\": \"acme\", \"kind\": \"map\"}, \"digest\": \"d\"}"},
    {CB_EV_JOB_STARTED, "{\"tasks\": 3}"},
    {CB_EV_TASKS_DISPATCHED, "{\"tasks\": [{\"task\": 0, \"attempt\": 1}, {\"task\": 1, "
                             "\"attempt\": 1}, {\"task\": 2, \"attempt\": 1}]}"},
    {CB_EV_TASK_STARTED, "{\"task\": 0, \"attempt\": 1, \"worker\": \"w\"}"},
    {CB_EV_TASK_SUCCEEDED, "{\"task\": 0, \"attempt\": 1, \"output\": [{\"big\": [1, 2, 3]}]}"},
    {CB_EV_TASK_FAILED, "{\"task\": 1, \"attempt\": 1, \"error\": \"boom\", \"reason\": \"exit\"}"},
    {CB_EV_TASK_RETRY_SCHEDULED, "{\"task\": 1, \"attempt\": 2, \"at\": \"2026-12-01T00:00:00Z\", "
                                 "\"delay_ms\": 5}"},
    {CB_EV_TASKS_DISPATCHED, "{\"tasks\": [{\"task\": 1, \"attempt\": 2}]}"},
    {CB_EV_TASK_TIMED_OUT, "{\"task\": 2, \"attempt\": 1}"},
    {CB_EV_TASK_SUCCEEDED, "{\"task\": 1, \"attempt\": 2, \"output\": [\"x\"]}"},
    {CB_EV_JOB_SUSPENDED, "{}"},
    {CB_EV_JOB_RESUMED, "{}"},
    {CB_EV_JOB_FAILED, "{\"error\": \"task 2 timed out\"}"},
};
#define NLOG (sizeof LOG / sizeof LOG[0])

/* Fold the log; CB_OK with *text the state, or the first error. */
static cb_status fold_log(const cb_event *evs, char **text)
{
    world w;
    cb_status s = CB_OK;
    memset(&w, 0, sizeof w);
    w.access.get = get_task;
    w.access.arg = &w;
    *text = NULL;
    for (size_t i = 0; i < NLOG && s == CB_OK; i++) {
        int applied;
        s = cb_fold_apply(&w.job, &w.access, &evs[i], i + 1, &applied);
    }
    if (s == CB_OK && !(*text = world_text(&w)))
        s = CB_ENOMEM;
    world_cleanup(&w);
    return s;
}

static void fold_under_failing_allocations(void **state)
{
    cb_event evs[NLOG];
    char *want = NULL;
    long n, failed_runs = 0;
    (void)state;
    for (size_t i = 0; i < NLOG; i++)
        assert_int_equal(cb_event_init(&evs[i], LOG[i].type, "acme", "j1", "id", "test",
                                       1795752142000000000LL + (int64_t)i * 1000000,
                                       json_loads(LOG[i].data, 0, NULL)),
                         CB_OK);
    assert_int_equal(fold_log(evs, &want), CB_OK);
    for (n = 0;; n++) {
        char *got = NULL;
        cb_status s;
        long left;
        cb_alloc_fail_after(n);
        s = fold_log(evs, &got);
        left = cb_alloc_fail_remaining();
        cb_alloc_fail_after(-1);
        if (s == CB_OK) {
            if (strcmp(got, want))
                fail_msg("allocation %ld failed silently: state %s, want %s", n, got, want);
        } else {
            assert_int_equal(s, CB_ENOMEM);
            failed_runs++;
        }
        free(got);
        if (left >= 0)
            break; /* this run needed fewer than n + 1 allocations: all were tried */
    }
    print_message("fold: %ld allocations, each failed once (%ld runs said CB_ENOMEM)\n", n,
                  failed_runs);
    assert_true(n > 20);
    assert_true(failed_runs > 0);
    free(want);
    for (size_t i = 0; i < NLOG; i++)
        cb_event_cleanup(&evs[i]);
}

/* Intake's verdict as text: status, then the digest or the errors. */
static cb_status judge(const cb_intake_cfg *cfg, const char *job, char **text)
{
    cb_intake in;
    cb_status s = cb_intake_check(cfg, "acme", job, strlen(job), "j-fresh", &in);
    char *errors = in.errors ? cb_json_dumps(in.errors, JSON_COMPACT) : NULL;
    *text = NULL;
    if (s != CB_ENOMEM && (!in.errors || errors) &&
        asprintf(text, "%d %s %s", (int)s, in.digest, errors ? errors : "") < 0)
        *text = NULL;
    if (s != CB_ENOMEM && !*text)
        s = CB_ENOMEM;
    free(errors);
    cb_intake_cleanup(&in);
    return s;
}

static void intake_under_failing_allocations(void **state)
{
    static const char *const jobs[] = {
        "{\"tenant\": \"acme\", \"kind\": \"map_reduce\", \"function\": {\"backend\": \"local\", "
        "\"name\": \"add7\"}, \"input\": {\"items\": [1, 2, 3]}, \"reduce\": {\"function\": "
        "{\"backend\": \"local\", \"name\": \"sum\"}}, \"retry\": {\"limit\": 2}}",
        "{\"tenant\": \"acme\", \"kind\": \"dag\", \"tasks\": {\"a\": {\"function\": {\"backend\": "
        "\"local\", \"name\": \"add7\"}, \"input\": 1}, \"b\": {\"function\": {\"backend\": "
        "\"local\", \"name\": \"add7\"}, \"depends\": [\"a\"], \"input_from\": \"a\"}}}",
        "{\"tenant\": \"acme\", \"kind\": \"map\", \"function\": {\"backend\": \"local\", "
        "\"name\": \"nope\"}, \"input\": {\"range\": {\"start\": 0, \"stop\": 9}}}",
        "{\"tenant\": \"acme\", \"kind\": \"dag\", \"tasks\": {\"a\": {\"function\": {\"backend\": "
        "\"local\", \"name\": \"add7\"}, \"depends\": [\"b\"]}, \"b\": {\"function\": "
        "{\"backend\": \"local\", \"name\": \"add7\"}, \"depends\": [\"a\"]}}}",
        "{\"tenant\": 7}",
        "not json",
    };
    cb_config *reg = NULL;
    cb_schema *schema = NULL;
    cb_intake_cfg cfg;
    char err[256];
    long total = 0;
    (void)state;
    assert_int_equal(cb_config_load(CB_TESTS_DIR "/fixtures/functions.json", &reg, err, sizeof err),
                     CB_OK);
    assert_int_equal(cb_schema_load_dir(cb_schema_default_dir(), &schema, err, sizeof err), CB_OK);
    memset(&cfg, 0, sizeof cfg);
    cfg.schema = schema;
    cfg.reg = reg;
    cfg.max_bytes = 1 << 20;
    for (size_t k = 0; k < sizeof jobs / sizeof jobs[0]; k++) {
        char *want = NULL;
        long n;
        assert_int_not_equal(judge(&cfg, jobs[k], &want), CB_ENOMEM);
        for (n = 0;; n++) {
            char *got = NULL;
            cb_status s;
            long left;
            cb_alloc_fail_after(n);
            s = judge(&cfg, jobs[k], &got);
            left = cb_alloc_fail_remaining();
            cb_alloc_fail_after(-1);
            if (s != CB_ENOMEM && strcmp(got, want))
                fail_msg("job %zu: allocation %ld failed silently: %s, want %s", k, n, got, want);
            free(got);
            if (left >= 0)
                break;
        }
        total += n;
        free(want);
    }
    print_message("intake: %ld allocations over %zu jobs, each failed once\n", total,
                  sizeof jobs / sizeof jobs[0]);
    assert_true(total > 100);
    cb_schema_free(schema);
    cb_config_free(reg);
}

/* The projector skips an event that does not decode (it is invalid for
 * good): out of memory must never look like that. */
static void event_decode_under_failing_allocations(void **state)
{
    const char *raw =
        "{\"specversion\":\"1.0\",\"id\":\"acme/j1/0/1/succeeded\",\"source\":\"w\","
        "\"type\":\"cb.task.succeeded\",\"subject\":\"j1\",\"time\":\"2026-12-01T00:00:00Z\","
        "\"cbtenant\":\"acme\",\"cbjob\":\"j1\",\"datacontenttype\":\"application/json\","
        "\"data\":{\"task\":0,\"attempt\":1,\"output\":[{\"k\":[1,2,3]}]}}";
    long n, nomem = 0;
    cb_event want;
    (void)state;
    assert_int_equal(cb_event_decode(raw, strlen(raw), &want, NULL, 0), CB_OK);
    for (n = 0;; n++) {
        cb_event ev;
        char err[256];
        cb_status s;
        long left;
        cb_alloc_fail_after(n);
        s = cb_event_decode(raw, strlen(raw), &ev, err, sizeof err);
        left = cb_alloc_fail_remaining();
        cb_alloc_fail_after(-1);
        if (s == CB_OK) { /* a failure absorbed: then the event must be whole */
            assert_int_equal(ev.type, want.type);
            assert_string_equal(ev.id, want.id);
            assert_string_equal(ev.subject, want.subject);
            assert_int_equal(ev.time_ns, want.time_ns);
            assert_true(json_equal(ev.data, want.data));
            cb_event_cleanup(&ev);
        } else if (s == CB_ENOMEM) {
            nomem++;
        } else {
            fail_msg("allocation %ld: a valid event judged invalid (%s): %s", n, cb_strerror(s),
                     err);
        }
        if (left >= 0)
            break;
    }
    print_message("event decode: %ld allocations, %ld said CB_ENOMEM\n", n, nomem);
    assert_true(n > 5);
    assert_true(nomem > 0);
    cb_event_cleanup(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fold_under_failing_allocations),
        cmocka_unit_test(intake_under_failing_allocations),
        cmocka_unit_test(event_decode_under_failing_allocations),
    };
    cb_alloc_route_json();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
