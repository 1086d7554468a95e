/* tests/test_local.c - the local backend and its process driver, without a
 * broker: built-ins, cold programs, warm Python runtimes, and every way a
 * function can fail (error, exit status, crash, timeout, garbage, oversize). */
#include "cb_test.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cb_config.h"

#define FIXTURES CB_TESTS_DIR "/fixtures"

typedef struct outcome {
    int done;
    cb_fail_reason reason;
    json_t *outputs;
    char error[2048];
    char tail[8192];
} outcome;

typedef struct fixture {
    struct event_base *base;
    cb_config *reg;
    const cb_backend_ops *ops;
    void *be;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256] = "";
    f->base = cb_test_base();
    if (cb_config_load(FIXTURES "/functions.json", &f->reg, err, sizeof err) != CB_OK) {
        fprintf(stderr, "configuration: %s\n", err);
        return -1;
    }
    f->ops = cb_backend_find("local");
    if (!f->ops || f->ops->create(f->base, f->reg, "local", &f->be, err, sizeof err) != CB_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    f->ops->destroy(f->be);
    cb_config_free(f->reg);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void done_cb(const cb_inv_result *r, void *ctx)
{
    outcome *o = ctx;
    o->done++;
    o->reason = r->reason;
    o->outputs = json_incref(r->outputs);
    snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "");
    snprintf(o->tail, sizeof o->tail, "%s", r->stderr_tail ? r->stderr_tail : "");
}

static bool is_done(void *arg)
{
    return ((outcome *)arg)->done > 0;
}

/* Invoke `fn` (its function object: spec, or NULL) on the items of
 * `items_json` and wait for the outcome. */
static void run_spec(fixture *f, const char *fn, const json_t *spec, const char *items_json,
                     uint32_t attempt, int64_t timeout_ms, outcome *o)
{
    json_t *items = json_loads(items_json, 0, NULL);
    cb_invocation inv = {.tenant = "t",
                         .job = "j",
                         .task = 0,
                         .attempt = attempt,
                         .function = fn,
                         .spec = spec,
                         .items = items,
                         .timeout_ms = timeout_ms};
    memset(o, 0, sizeof *o);
    assert_non_null(items);
    assert_int_equal(f->ops->invoke(f->be, &inv, done_cb, o), CB_OK);
    assert_int_equal(o->done, 0); /* never called back from inside invoke */
    assert_true(cb_test_run_until(f->base, is_done, o, 20000));
    assert_int_equal(o->done, 1);
    json_decref(items);
}

static void run(fixture *f, const char *fn, const char *items_json, uint32_t attempt,
                int64_t timeout_ms, outcome *o)
{
    run_spec(f, fn, NULL, items_json, attempt, timeout_ms, o);
}

/* fn with memory_mb (0: none). */
static void run_mb(fixture *f, const char *fn, int memory_mb, const char *items_json, outcome *o)
{
    json_t *spec = json_pack("{s:s, s:s}", "backend", "local", "name", fn);
    if (memory_mb)
        json_object_set_new(spec, "memory_mb", json_integer(memory_mb));
    run_spec(f, fn, spec, items_json, 1, 0, o);
    json_decref(spec);
}

static void assert_outputs(const outcome *o, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    char *got = json_dumps(o->outputs, JSON_COMPACT);
    if (!json_equal(w, o->outputs))
        fail_msg("outputs %s, want %s (error: %s)", got ? got : "NULL", want, o->error);
    free(got);
    json_decref(w);
}

static void cleanup(outcome *o)
{
    json_decref(o->outputs);
    o->outputs = NULL;
}

static void test_builtins(void **state)
{
    fixture *f = *state;
    outcome o;
    run(f, "noop", "[1, 2, 3]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_NONE);
    assert_outputs(&o, "[null, null, null]");
    cleanup(&o);
    run(f, "echo", "[{\"a\": 1}, \"b\"]", 1, 0, &o);
    assert_outputs(&o, "[{\"a\": 1}, \"b\"]");
    cleanup(&o);
    run(f, "sleep_ms", "[20, {\"ms\": 10}]", 1, 0, &o);
    assert_outputs(&o, "[20, {\"ms\": 10}]");
    cleanup(&o);
    /* fail_n_times fails attempts 1..n, then succeeds */
    run(f, "fail_n_times", "[2]", 2, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_EXIT);
    assert_non_null(strstr(o.error, "planned failure 2 of 2"));
    cleanup(&o);
    run(f, "fail_n_times", "[2]", 3, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_NONE);
    assert_outputs(&o, "[2]");
    cleanup(&o);
    run(f, "no_such_function", "[1]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_BACKEND);
    assert_non_null(strstr(o.error, "no local function named \"no_such_function\""));
    cleanup(&o);
}

static void test_python_warm_add7_and_sum(void **state)
{
    fixture *f = *state;
    outcome o;
    run(f, "add7", "[1, 2, 3, 4]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_NONE);
    assert_outputs(&o, "[8, 9, 10, 11]");
    cleanup(&o);
    /* the runtime is warm: a second invocation is served by it again */
    run(f, "add7", "[35]", 1, 0, &o);
    assert_outputs(&o, "[42]");
    cleanup(&o);
    run(f, "sum", "[[8, 9, 10, 11]]", 1, 0, &o);
    assert_outputs(&o, "[38]");
    cleanup(&o);
}

static void test_python_cold(void **state)
{
    fixture *f = *state;
    outcome o;
    run(f, "add7_cold", "[1, 2]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_NONE);
    assert_outputs(&o, "[8, 9]");
    cleanup(&o);
}

static void test_python_exception_is_the_reason(void **state)
{
    fixture *f = *state;
    outcome o;
    run(f, "boom", "[5]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_EXIT);
    assert_string_equal(o.error, "ValueError: cannot take 5");
    assert_non_null(strstr(o.tail, "Traceback"));
    cleanup(&o);
    /* the runtime survived the exception */
    run(f, "boom", "[6]", 1, 0, &o);
    assert_string_equal(o.error, "ValueError: cannot take 6");
    cleanup(&o);
}

static void test_runtime_killed_mid_invocation_then_replaced(void **state)
{
    fixture *f = *state;
    outcome o;
    const char *marker = getenv("CB_TEST_MARKER"); /* set before the runtimes start */
    run(f, "die_once", "[7]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_SIGNAL);
    assert_non_null(strstr(o.error, "killed by signal 9"));
    cleanup(&o);
    run(f, "die_once", "[7]", 2, 0, &o); /* a fresh runtime serves the retry */
    assert_int_equal(o.reason, CB_FAIL_NONE);
    assert_outputs(&o, "[7]");
    cleanup(&o);
    unlink(marker);
}

/* A function's memory_mb limits its process's data memory: over it, the
 * invocation fails and the reason names the limit; within it, it runs; the
 * same function without a limit runs in a process of its own. */
static void test_memory_mb_limits_the_function_s_process(void **state)
{
    fixture *f = *state;
    outcome o;
    static const char *hint = "its memory is limited to 64 MiB (function.memory_mb)";
    run_mb(f, "hog", 64, "[200]", &o); /* warm: Python raises MemoryError */
    assert_int_equal(o.reason, CB_FAIL_EXIT);
    if (strcmp(o.error, "MemoryError: its memory is limited to 64 MiB (function.memory_mb)"))
        fail_msg("error: %s", o.error); /* still "Type: message": the toolkit raises the type */
    cleanup(&o);
    run_mb(f, "hog", 64, "[8]", &o); /* the limited runtime survived */
    assert_int_equal(o.reason, CB_FAIL_NONE);
    assert_outputs(&o, "[8]");
    cleanup(&o);
    run_mb(f, "hog", 0, "[200]", &o); /* no limit: another runtime */
    assert_int_equal(o.reason, CB_FAIL_NONE);
    assert_outputs(&o, "[200]");
    cleanup(&o);
    run_mb(f, "hog_cold", 64, "[200]", &o); /* a cold program */
    assert_int_not_equal(o.reason, CB_FAIL_NONE);
    if (!strstr(o.error, hint))
        fail_msg("error: %s (stderr: %s)", o.error, o.tail);
    cleanup(&o);
    run_mb(f, "hog_cold", 64, "[8]", &o);
    assert_int_equal(o.reason, CB_FAIL_NONE);
    assert_outputs(&o, "[8]");
    cleanup(&o);
    run(f, "boom", "[5]", 1, 0, &o); /* no limit: no word of one */
    assert_string_equal(o.error, "ValueError: cannot take 5");
    cleanup(&o);
}

static void test_cold_programs(void **state)
{
    fixture *f = *state;
    outcome o;
    run(f, "cat", "[{\"k\": [1, 2]}, 3]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_NONE);
    assert_outputs(&o, "[{\"k\": [1, 2]}, 3]");
    cleanup(&o);
    run(f, "env", "[0]", 1, 0, &o);
    assert_outputs(&o, "[\"hello\"]");
    cleanup(&o);
    run(f, "exit3", "[0]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_EXIT);
    assert_non_null(strstr(o.error, "exit status 3"));
    assert_non_null(strstr(o.error, "boom on stderr"));
    assert_non_null(strstr(o.tail, "boom on stderr"));
    cleanup(&o);
    run(f, "notjson", "[0]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_INVALID_OUTPUT);
    assert_non_null(strstr(o.error, "output is not JSON"));
    cleanup(&o);
    run(f, "nosuchprogram", "[0]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_BACKEND);
    assert_non_null(strstr(o.error, "cannot start /nonexistent/program"));
    cleanup(&o);
}

static void test_timeout_kills_the_child(void **state)
{
    fixture *f = *state;
    outcome o;
    run(f, "slow", "[0]", 1, 0, &o); /* the function's own timeout: 300 ms */
    assert_int_equal(o.reason, CB_FAIL_TIMEOUT);
    assert_non_null(strstr(o.error, "did not finish within 300 ms"));
    cleanup(&o);
    run(f, "sleep_ms", "[5000]", 1, 100, &o); /* the job's timeout for a built-in */
    assert_int_equal(o.reason, CB_FAIL_TIMEOUT);
    cleanup(&o);
}

static void test_oversize_output_fails_cleanly(void **state)
{
    fixture *f = *state;
    outcome o;
    run(f, "garbage", "[0]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_OVERSIZE);
    cleanup(&o);
    run(f, "py_garbage", "[0]", 1, 0, &o);
    assert_int_equal(o.reason, CB_FAIL_OVERSIZE);
    cleanup(&o);
    /* and the backend still works */
    run(f, "add7", "[1]", 1, 0, &o);
    assert_outputs(&o, "[8]");
    cleanup(&o);
}

int main(void)
{
    static char marker[] = "/tmp/cb-test-marker-XXXXXX";
    int fd = mkstemp(marker);
    if (fd < 0)
        return 1;
    close(fd);
    unlink(marker);
    setenv("CB_TEST_MARKER", marker, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_builtins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_warm_add7_and_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_cold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_exception_is_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_killed_mid_invocation_then_replaced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cold_programs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_mb_limits_the_function_s_process, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_the_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_output_fails_cleanly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
