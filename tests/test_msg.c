/* tests/test_msg.c - the message codecs (common/cb_msg_*.c) against the
 * examples of schemas/examples/: every valid example parses and builds back
 * to a message the schema accepts with the same content; invalid ones are
 * refused where the codec checks; text a function wrote never loses an
 * outcome. */
#include "cb_test.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_msg_done.h"
#include "cb_msg_invoke.h"
#include "cb_msg_outcome.h"
#include "cb_msg_reply.h"
#include "cb_schema.h"

#define EXAMPLES CB_SCHEMA_DIR "/examples"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Call fn on every example matching pattern; returns how many. */
static size_t each(const char *pattern, void (*fn)(const char *path, const char *text, size_t len))
{
    glob_t g;
    size_t n = 0;
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    for (size_t i = 0; i < g.gl_pathc; i++, n++) {
        size_t len;
        char *text = slurp(g.gl_pathv[i], &len);
        fn(g.gl_pathv[i], text, len);
        free(text);
    }
    globfree(&g);
    return n;
}

static void assert_valid(const char *ref, const json_t *msg, const char *what)
{
    json_t *errors = NULL;
    if (cb_schema_validate(cb_test_schemas(), ref, msg, 4, &errors) != CB_OK) {
        char *e = json_dumps(errors, JSON_COMPACT);
        fail_msg("%s: built message is not valid %s: %s", what, ref, e);
    }
    json_decref(errors);
}

/* ---- invocation command ---------------------------------------------------- */

static void invoke_valid(const char *path, const char *text, size_t len)
{
    json_t *root = NULL, *orig = json_loadb(text, len, 0, NULL), *built;
    cb_invoke_msg m;
    char why[256];
    assert_int_equal(cb_invoke_msg_parse(cb_test_schemas(), text, len, &root, &m, why, sizeof why),
                     CB_OK);
    built = cb_invoke_msg_build(&m);
    if (!json_equal(built, orig))
        fail_msg("%s: does not build back to itself", path);
    assert_valid("invoke.json", built, path);
    json_decref(built);
    json_decref(orig);
    json_decref(root);
}

static void invoke_invalid(const char *path, const char *text, size_t len)
{
    json_t *root = NULL;
    cb_invoke_msg m;
    char why[256] = "";
    cb_status s = cb_invoke_msg_parse(cb_test_schemas(), text, len, &root, &m, why, sizeof why);
    if (s != CB_ESCHEMA && s != CB_EINVAL)
        fail_msg("%s: accepted", path);
    assert_null(root);
    assert_true(why[0] != '\0');
}

#define MEMO_KEY "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void invocation_command(void **state)
{
    json_t *root = NULL,
           *fn =
               json_pack("{s:s, s:s, s:i}", "backend", "local", "name", "add7", "timeout_ms", 250),
           *items = json_pack("[i, i]", 1, 2), *cmd;
    cb_invoke_msg m = {.job_id = "j", .tenant = "t", .step = "s1", .function = fn, .ntasks = 1},
                  back;
    char *text, why[128];
    (void)state;
    m.tasks[0] = (cb_invoke_task){
        .task = 7, .attempt = 2, .items = items, .first_item = 14, .memo = MEMO_KEY};
    assert_true(each(EXAMPLES "/valid/invoke-*.json", invoke_valid) >= 2);
    assert_true(each(EXAMPLES "/invalid/invoke-*.json", invoke_invalid) >= 6);
    cmd = cb_invoke_msg_build(&m);
    assert_valid("invoke.json", cmd, "built");
    assert_null(json_object_get(cmd, "tasks")); /* one task: the one-task form */
    text = json_dumps(cmd, JSON_COMPACT);
    assert_int_equal(
        cb_invoke_msg_parse(cb_test_schemas(), text, strlen(text), &root, &back, why, sizeof why),
        CB_OK);
    assert_string_equal(back.step, "s1");
    assert_int_equal(back.ntasks, 1);
    assert_int_equal(back.tasks[0].first_item, 14);
    assert_string_equal(back.tasks[0].memo, MEMO_KEY);
    assert_int_equal(back.tasks[0].task, 7);
    assert_int_equal(back.tasks[0].attempt, 2);
    assert_string_equal(cb_invoke_msg_function_name(&back), "add7");
    assert_int_equal(cb_invoke_msg_timeout_ms(&back), 250);
    assert_true(json_equal(back.tasks[0].items, items));
    json_decref(root);
    free(text);
    m.step = NULL;
    m.tasks[0].first_item = -1;
    json_decref(cmd);
    cmd = cb_invoke_msg_build(&m);
    assert_null(json_object_get(cmd, "step"));
    assert_null(json_object_get(cmd, "first_item"));
    assert_int_equal(
        cb_invoke_msg_parse(cb_test_schemas(), "{\"job_id\": ", 11, &root, &back, why, sizeof why),
        CB_EINVAL);
    assert_true(!strncmp(why, "not JSON: ", 10));
    json_decref(cmd);

    /* Several tasks: each keeps its own task, attempt, items and first item. */
    m.ntasks = CB_INVOKE_TASKS_MAX;
    for (size_t i = 0; i < m.ntasks; i++)
        m.tasks[i] = (cb_invoke_task){.task = (uint32_t)(100 + i),
                                      .attempt = (uint32_t)(1 + i % 3),
                                      .items = items,
                                      .first_item = i % 2 ? -1 : (int64_t)(200 * i),
                                      .memo = i % 2 ? MEMO_KEY : NULL};
    cmd = cb_invoke_msg_build(&m);
    assert_valid("invoke.json", cmd, "built batch");
    assert_null(json_object_get(cmd, "task"));
    assert_int_equal(json_array_size(json_object_get(cmd, "tasks")), CB_INVOKE_TASKS_MAX);
    text = json_dumps(cmd, JSON_COMPACT);
    assert_int_equal(
        cb_invoke_msg_parse(cb_test_schemas(), text, strlen(text), &root, &back, why, sizeof why),
        CB_OK);
    assert_int_equal(back.ntasks, CB_INVOKE_TASKS_MAX);
    for (size_t i = 0; i < back.ntasks; i++) {
        assert_int_equal(back.tasks[i].task, 100 + i);
        assert_int_equal(back.tasks[i].attempt, 1 + i % 3);
        assert_int_equal(back.tasks[i].first_item, i % 2 ? -1 : (int64_t)(200 * i));
        assert_true(json_equal(back.tasks[i].items, items));
        if (i % 2)
            assert_string_equal(back.tasks[i].memo, MEMO_KEY);
        else
            assert_null(back.tasks[i].memo);
    }
    assert_string_equal(back.job_id, "j");
    assert_string_equal(back.tenant, "t");
    json_decref(root);
    free(text);
    json_decref(cmd);
    m.ntasks = CB_INVOKE_TASKS_MAX + 1; /* more than a command takes, or none */
    assert_null(cb_invoke_msg_build(&m));
    m.ntasks = 0;
    assert_null(cb_invoke_msg_build(&m));
    json_decref(fn);
    json_decref(items);
}

/* ---- outcome events ---------------------------------------------------------- */

static void outcome_valid(const char *path, const char *text, size_t len)
{
    json_t *ev = json_loadb(text, len, 0, NULL), *data = json_object_get(ev, "data"), *built;
    const char *type = json_string_value(json_object_get(ev, "type"));
    cb_outcome_msg m;
    assert_int_equal(cb_outcome_parse(data, &m), CB_OK);
    if (!strcmp(type, "cb.task.started"))
        built = cb_outcome_started(&m);
    else if (!strcmp(type, "cb.task.succeeded"))
        built = cb_outcome_succeeded(&m);
    else
        built = cb_outcome_failed(&m);
    if (!json_equal(built, data))
        fail_msg("%s: does not build back to itself", path);
    json_object_set_new(ev, "data", built);
    assert_valid("event.json", ev, path);
    json_decref(ev);
}

/* A batch of successes: each part parses as a success and builds back, and
 * the batch built from them is the example's data and valid. */
static void batch_valid(const char *path, const char *text, size_t len)
{
    json_t *ev = json_loadb(text, len, 0, NULL),
           *parts = json_object_get(json_object_get(ev, "data"), "tasks");
    json_t *each[CB_OUTCOME_BATCH_MAX], *part, *built;
    size_t i, n = json_array_size(parts); /* parts goes with ev's data below */
    json_array_foreach(parts, i, part)
    {
        cb_outcome_msg m;
        assert_int_equal(cb_outcome_parse(part, &m), CB_OK);
        each[i] = cb_outcome_succeeded(&m);
        if (!json_equal(each[i], part))
            fail_msg("%s: part %zu does not build back to itself", path, i);
    }
    built = cb_outcome_batch(each, n);
    assert_true(json_equal(built, json_object_get(ev, "data")));
    json_object_set_new(ev, "data", built);
    assert_valid("event.json", ev, path);
    assert_null(cb_outcome_batch(each, 1)); /* one success has its own form */
    for (i = 0; i < n; i++)
        json_decref(each[i]);
    json_decref(ev);
}

static void outcome_events(void **state)
{
    (void)state;
    assert_int_equal(each(EXAMPLES "/valid/event-task-started.json", outcome_valid) +
                         each(EXAMPLES "/valid/event-task-succeeded*.json", outcome_valid) +
                         each(EXAMPLES "/valid/event-task-failed*.json", outcome_valid) +
                         each(EXAMPLES "/valid/event-tasks-succeeded.json", batch_valid),
                     7);
}

/* A function's error and stderr may hold any bytes and be of any length:
 * the outcome keeps what fits, as UTF-8 (json_string() refused such text and
 * the error was silently missing from the event). */
static void outcome_text_is_cut_and_scrubbed(void **state)
{
    char *big = malloc(20000);
    cb_outcome_msg m = {.task = 1, .attempt = 1, .reason = "exit", .duration_ms = 5};
    json_t *d;
    const char *err, *tail;
    (void)state;
    assert_non_null(big);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    big[19999 - 8191] = (char)0xE2; /* the stderr cut starts inside a 3-byte character */
    big[19999 - 8190] = (char)0x82;
    big[19999 - 8189] = (char)0xAC;
    m.error = "bad byte \xff here";
    m.stderr_tail = big;
    d = cb_outcome_failed(&m);
    assert_non_null(d);
    err = json_string_value(json_object_get(d, "error"));
    tail = json_string_value(json_object_get(d, "stderr"));
    assert_non_null(err);
    assert_string_equal(err, "bad byte ? here");
    assert_non_null(tail);
    assert_true(strlen(tail) <= CB_OUTCOME_MAX_STDERR - 1);
    assert_true(strlen(tail) >= CB_OUTCOME_MAX_STDERR - 4);
    assert_int_equal(json_integer_value(json_object_get(d, "duration_ms")), 5);
    json_decref(d);
    m.stderr_tail = NULL;
    m.error = big; /* long errors are cut */
    d = cb_outcome_failed(&m);
    assert_int_equal(strlen(json_string_value(json_object_get(d, "error"))),
                     CB_OUTCOME_MAX_ERROR - 1);
    json_decref(d);
    free(big);
}

/* ---- done message -------------------------------------------------------------- */

static void done_same(const cb_done_msg *a, const cb_done_msg *b)
{
    assert_string_equal(a->job_id, b->job_id);
    assert_string_equal(a->tenant, b->tenant);
    assert_string_equal(a->status, b->status);
    assert_true(json_equal(a->result, b->result) || (!a->result && !b->result));
    assert_true(json_equal(a->failed, b->failed) || (!a->failed && !b->failed));
    assert_true(json_equal(a->errors, b->errors) || (!a->errors && !b->errors));
    assert_true((!a->error && !b->error) || !strcmp(a->error, b->error));
    assert_int_equal(a->has_counts, b->has_counts);
    assert_int_equal(a->counts.total, b->counts.total);
    assert_int_equal(a->counts.succeeded, b->counts.succeeded);
    assert_int_equal(a->counts.failed, b->counts.failed);
    assert_int_equal(a->has_cost, b->has_cost);
    assert_memory_equal(&a->cost, &b->cost, sizeof a->cost);
    assert_int_equal(a->submitted_ns / 1000, b->submitted_ns / 1000); /* microseconds on the wire */
    assert_int_equal(a->finished_ns / 1000, b->finished_ns / 1000);
}

static void done_valid(const char *path, const char *text, size_t len)
{
    json_t *orig = json_loadb(text, len, 0, NULL), *built, *again;
    cb_done_msg m, back;
    assert_int_equal(cb_done_msg_parse(orig, &m), CB_OK);
    built = cb_done_msg_build(&m);
    assert_valid("done.json", built, path);
    assert_int_equal(cb_done_msg_parse(built, &back), CB_OK);
    done_same(&m, &back);
    again = cb_done_msg_build(&back);
    if (!json_equal(again, built))
        fail_msg("%s: a second round trip differs", path);
    json_decref(again);
    json_decref(built);
    json_decref(orig);
}

static void done_message(void **state)
{
    cb_done_msg m;
    json_t *errors = json_pack("[s]", "/kind: nope"), *d;
    (void)state;
    assert_true(each(EXAMPLES "/valid/done-*.json", done_valid) >= 3);
    cb_done_msg_init(&m, "acme", "j9", "rejected");
    m.errors = errors;
    d = cb_done_msg_build(&m);
    assert_valid("done.json", d, "rejected");
    cb_test_expect_json(d, "{\"job_id\": \"j9\", \"tenant\": \"acme\", \"status\": \"rejected\", "
                           "\"errors\": [\"/kind: nope\"]}");
    cb_done_msg_init(&m, "acme", "j9", "failed");
    m.error = "task 3: exit status 1";
    m.has_counts = 1;
    m.counts.total = 4;
    m.counts.failed = 1;
    m.submitted_ns = 1800000000000000000;
    m.finished_ns = 1800000000250000000;
    m.makespan_ms = 250;
    d = cb_done_msg_build(&m);
    assert_valid("done.json", d, "failed");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d, "timings"), "finished")),
        "2027-01-15T08:00:00.250000Z");
    assert_null(json_object_get(json_object_get(d, "timings"), "started"));
    json_decref(d);
    d = json_object();
    assert_int_equal(cb_done_msg_parse(d, &m), CB_EINVAL);
    json_decref(d);
    json_decref(errors);
}

/* ---- reply and verdict ------------------------------------------------------------ */

static void reply_valid(const char *path, const char *text, size_t len)
{
    json_t *orig = json_loadb(text, len, 0, NULL), *built;
    cb_reply_msg m;
    char *out;
    assert_int_equal(cb_reply_msg_parse(orig, &m), CB_OK);
    out = cb_reply_msg_text(&m);
    built = json_loads(out, 0, NULL);
    if (!json_equal(built, orig))
        fail_msg("%s: builds back as %s", path, out);
    assert_valid("reply.json", built, path);
    json_decref(built);
    json_decref(orig);
    free(out);
}

static void reply_and_verdict(void **state)
{
    json_t *errors = json_pack("[s, s]", "/a: x", "/b: y"), *v;
    cb_reply_msg m = {.job_id = "j1", .tenant = "acme", .accepted = 0, .errors = errors}, back;
    char *text;
    (void)state;
    assert_true(each(EXAMPLES "/valid/reply-*.json", reply_valid) >= 2);
    v = json_loads("{\"accepted\": \"yes\", \"errors\": []}", 0, NULL);
    assert_int_equal(cb_reply_msg_parse(v, &back), CB_EINVAL);
    json_decref(v);
    text = cb_verdict_msg_text(&m);
    v = json_loads(text, 0, NULL);
    assert_int_equal(cb_reply_msg_parse(v, &back), CB_OK);
    assert_false(back.accepted);
    assert_string_equal(back.tenant, "acme");
    assert_string_equal(json_string_value(json_array_get(back.errors, 0)), "/a: x");
    assert_string_equal(json_string_value(json_object_get(v, "status")), "refused");
    json_decref(v);
    free(text);
    m.tenant = NULL; /* a verdict needs the tenant (its topic) */
    assert_null(cb_verdict_msg_text(&m));
    json_decref(errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(invocation_command),
        cmocka_unit_test(outcome_events),
        cmocka_unit_test(outcome_text_is_cut_and_scrubbed),
        cmocka_unit_test(done_message),
        cmocka_unit_test(reply_and_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
