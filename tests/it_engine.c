/* tests/it_engine.c - end to end against a real broker (run once per driver):
 * cb-projector, cb-engine and two cb-adapter workers as real processes; jobs
 * submitted as a client in any language would (a request on cb.submit.<t>),
 * outcomes read from the completion topic cb.done.<t>.<job> and from the
 * event log. Needs CB_TEST_BROKER_URL and CB_TEST_BIN. */
#include "cb_test.h"

#include <event2/event.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "cb_partition.h"
#include "emit.h"
#include "cb_event.h"
#include "cb_stack.h"
#include "owners.h"
#include "store.h"
#include "views.h"
#include "cb_time.h"

#define CONFIG  CB_TESTS_DIR "/fixtures/functions.json"
#define WAIT_MS 90000 /* the first job waits for the projector to catch up with the log */

typedef struct fixture {
    struct event_base *base;
    cb_broker *b;
    cb_stack *stack;
    const char *url;
    char gate[64];
} fixture;

static fixture F;

/* ---- a client ----------------------------------------------------------------- */

typedef struct call {
    int replied, done_count;
    cb_status status;
    json_t *reply, *done;
    cb_sub *sub;
    char tenant[64], job[160];
} call;

static void done_cb(const cb_broker_msg *m, void *ctx)
{
    call *c = ctx;
    json_decref(c->done);
    c->done = json_loadb(m->data, m->len, 0, NULL);
    c->done_count++;
}

static void listen_done(call *c)
{
    char subject[300];
    snprintf(subject, sizeof subject, "cb.done.%s.%s", c->tenant, c->job);
    assert_int_equal(cb_broker_subscribe(F.b, subject, 0, done_cb, c, &c->sub), CB_OK);
}

static void reply_cb(cb_status s, const void *data, size_t len, void *ctx)
{
    call *c = ctx;
    c->status = s;
    c->replied = 1;
    if (s == CB_OK)
        c->reply = json_loadb(data, len, 0, NULL);
    const char *id = json_string_value(json_object_get(c->reply, "job_id"));
    if (id && c->tenant[0] && !c->sub) { /* a submission: listen for its end */
        snprintf(c->job, sizeof c->job, "%s", id);
        listen_done(c);
    }
}

static bool replied(void *arg)
{
    return ((call *)arg)->replied;
}

static bool has_done(void *arg)
{
    return ((call *)arg)->done_count > 0;
}

static void call_cleanup(call *c)
{
    cb_sub_close(c->sub);
    json_decref(c->reply);
    json_decref(c->done);
    memset(c, 0, sizeof *c);
}

/* Submit `text` (a job for tenant `tenant`) and wait for the engine's answer.
 * The engine may still be starting: "no responders" is retried. */
static void submit_raw(call *c, const char *tenant, const char *text)
{
    char subject[200];
    snprintf(c->tenant, sizeof c->tenant, "%s", tenant);
    snprintf(subject, sizeof subject, "cb.submit.%s", tenant);
    for (int attempt = 0; attempt < 100; attempt++) {
        c->replied = 0;
        assert_int_equal(cb_broker_request(F.b, subject, text, strlen(text), 30000, reply_cb, c),
                         CB_OK);
        assert_true(cb_test_run_until(F.base, replied, c, 40000));
        if (c->status != CB_ENORESP && c->status != CB_ETIMEDOUT)
            break;
        struct timeval tv = {0, 200000}; /* wait on the loop for the engine to come up */
        event_base_loopexit(F.base, &tv);
        event_base_dispatch(F.base);
    }
    assert_int_equal(c->status, CB_OK);
    assert_non_null(c->reply);
}

/* A job from a JSON template; "%T" in it is replaced by the tenant. */
static void submit(call *c, const char *tenant, json_t *job)
{
    char *text;
    json_object_set_new(job, "tenant", json_string(tenant));
    text = json_dumps(job, JSON_COMPACT);
    json_decref(job);
    submit_raw(c, tenant, text);
    free(text);
}

static void expect_accepted(const call *c)
{
    if (!json_is_true(json_object_get(c->reply, "accepted"))) {
        char *r = json_dumps(c->reply, JSON_COMPACT);
        cb_stack_dump(F.stack);
        fail_msg("not accepted: %s", r);
    }
}

static void wait_done(call *c, long timeout_ms)
{
    if (!cb_test_run_until(F.base, has_done, c, timeout_ms)) {
        cb_stack_dump(F.stack);
        fail_msg("no done message for %s/%s within %ld ms", c->tenant, c->job, timeout_ms);
    }
}

static const char *done_status(const call *c)
{
    return json_string_value(json_object_get(c->done, "status"));
}

static void expect_status(const call *c, const char *want)
{
    if (!done_status(c) || strcmp(done_status(c), want)) {
        char *d = json_dumps(c->done, JSON_COMPACT);
        cb_stack_dump(F.stack);
        fail_msg("status %s, want %s: %s", done_status(c) ? done_status(c) : "?", want, d);
    }
}

/* The done message's result equals the JSON text `want`. */
static void expect_result(const call *c, const char *want)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    if (!w || !json_equal(json_object_get(c->done, "result"), w))
        fail_msg("result %s, want %s", json_dumps(json_object_get(c->done, "result"), JSON_COMPACT),
                 want);
    json_decref(w);
}

static json_int_t count(const call *c, const char *name)
{
    return json_integer_value(json_object_get(json_object_get(c->done, "counts"), name));
}

static json_t *job_of(const char *fmt);

/* Submit `job` for a fresh tenant (its name into t) and wait until it ends
 * with status `want`. */
static void run_job(call *c, char *t, size_t tsize, const char *job, const char *want)
{
    cb_test_unique(t, tsize, "e");
    submit(c, t, job_of(job));
    expect_accepted(c);
    wait_done(c, WAIT_MS);
    expect_status(c, want);
}

static json_t *job_of(const char *fmt)
{
    json_error_t je;
    json_t *j = json_loads(fmt, 0, &je);
    if (!j)
        fail_msg("bad test job: %s", je.text);
    return j;
}

/* ---- reading the log of one job ------------------------------------------------ */

typedef struct log_scan {
    int done;
    cb_status status;
    json_t *events; /* array of decoded events (type, data) */
} log_scan;

static void log_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    log_scan *ls = ctx;
    if (!m) {
        ls->status = s;
        ls->done = 1;
        return;
    }
    json_array_append_new(ls->events, json_loadb(m->data, m->len, 0, NULL));
}

static bool scanned(void *arg)
{
    return ((log_scan *)arg)->done;
}

/* The events of partition's log matching `filter` (cb.evt.<tenant>.<job>,
 * cb.evp.<k>.<tenant>.>), in log order. */
static json_t *read_log(unsigned partition, const char *filter)
{
    cb_read_opts o;
    cb_reader *r = NULL;
    log_scan ls = {0, CB_OK, json_array()};
    cb_read_opts_init(&o);
    o.partition = partition;
    o.filter = filter;
    o.stop_at_end = 1;
    assert_int_equal(cb_broker_read(F.b, &o, log_cb, &ls, &r), CB_OK);
    assert_true(cb_test_run_until(F.base, scanned, &ls, 120000));
    cb_reader_close(r);
    assert_int_equal(ls.status, CB_OK);
    return ls.events;
}

/* One job's events, from its partition's log (docs/scale.md). */
static json_t *read_job_log(const char *tenant, const char *job)
{
    char filter[300];
    unsigned k = cb_partition_of(tenant, job, cb_test_partitions());
    assert_int_equal(cb_partition_subject(k, tenant, job, filter, sizeof filter), 0);
    return read_log(k, filter);
}

/* A tenant's events over every partition. One log's order is its own; the
 * logs together are put in the order of the events' times (the engine's
 * clock for its decisions). */
static json_t *read_tenant_log(const char *tenant)
{
    json_t *all = json_array(), *e, *sorted;
    json_t **v;
    size_t i, n;
    for (unsigned k = 0; k < cb_test_partitions(); k++) {
        char filter[200], rest[100];
        json_t *part;
        snprintf(rest, sizeof rest, "%s.>", tenant);
        assert_int_equal(cb_partition_pattern(k, rest, filter, sizeof filter), 0);
        part = read_log(k, filter);
        json_array_extend(all, part);
        json_decref(part);
    }
    n = json_array_size(all);
    if (cb_test_partitions() == 1 || n < 2)
        return all;
    v = calloc(n, sizeof *v);
    json_array_foreach(all, i, e) v[i] = e;
    for (size_t a = 1; a < n; a++) { /* insertion sort: stable (ties keep their log's order) */
        json_t *x = v[a];
        size_t b = a;
        while (b > 0 && strcmp(json_string_value(json_object_get(v[b - 1], "time")) ?: "",
                               json_string_value(json_object_get(x, "time")) ?: "") > 0) {
            v[b] = v[b - 1];
            b--;
        }
        v[b] = x;
    }
    sorted = json_array();
    for (i = 0; i < n; i++)
        json_array_append(sorted, v[i]);
    free(v);
    json_decref(all);
    return sorted;
}

static size_t count_type(const json_t *events, const char *type)
{
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "type")) ?: "", type))
            n++;
    }
    return n;
}

/* The successes an event reports, as an array of cb.task.succeeded data
 * (new reference): its own data, a cb.tasks.succeeded event's parts, or
 * none. */
static json_t *successes_of(const json_t *e)
{
    const char *type = json_string_value(json_object_get(e, "type")) ?: "";
    json_t *d = json_object_get(e, "data");
    if (!strcmp(type, "cb.task.succeeded"))
        return json_pack("[O]", d);
    if (!strcmp(type, "cb.tasks.succeeded"))
        return json_copy(json_object_get(d, "tasks"));
    return json_array();
}

/* ---- setup ------------------------------------------------------------------------ */

static int stack_setup(const char *config, int adapters, const char *adapter_args)
{
    cb_broker_opts o;
    F.url = getenv("CB_TEST_BROKER_URL");
    if (!F.url || !getenv("CB_TEST_BIN"))
        return -1;
    F.base = cb_test_base();
    cb_broker_opts_init(&o);
    o.url = F.url;
    o.op_timeout_ms = 60000;
    if (cb_broker_open(F.base, &o, &F.b) != CB_OK)
        return -1;
    F.stack = cb_stack_start(F.base, F.url, config, adapters, adapter_args);
    return F.stack ? 0 : -1;
}

/* The run's marker files (group_setup; fixtures/fns.py adds ".slow"), at
 * the end of the run: they were left in /tmp by every run. */
static void remove_markers(void)
{
    const char *marker = getenv("CB_TEST_MARKER");
    char path[300];
    if (!marker)
        return;
    unlink(marker);
    snprintf(path, sizeof path, "%s.slow", marker);
    unlink(path);
    snprintf(path, sizeof path, "%s.gate", marker);
    unlink(path);
}

static int group_setup(void **state)
{
    (void)state;
    {
        /* die_once kills its runtime the first time in this run (a marker file) */
        static char marker[] = "/tmp/cb-die-once-XXXXXX";
        int fd = mkstemp(marker);
        if (fd < 0)
            return -1;
        close(fd);
        unlink(marker);
        setenv("CB_TEST_MARKER", marker, 1);
        /* the gate function fails until this file exists (the re-run test) */
        snprintf(F.gate, sizeof F.gate, "%s.gate", marker);
        setenv("CB_TEST_GATE", F.gate, 1);
    }
    /* The victim of the kill test holds its invocations on a short lease;
     * every start is recorded, so the restart test can count re-runs. */
    return stack_setup(CONFIG, 2, "--lease-ms 3000 --started-after-ms 0");
}

/* One adapter running at most 2 tasks at once, every start recorded. */
static int capped_setup(void **state)
{
    (void)state;
    return stack_setup(CONFIG, 1, "--concurrency 2 --started-after-ms 0");
}

/* A backend two invocations wide, for jobs that compete for it. */
static int narrow_setup(void **state)
{
    (void)state;
    return stack_setup(CB_TESTS_DIR "/fixtures/narrow.json", 1, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    cb_stack_stop(F.stack);
    cb_broker_close(F.b);
    if (F.base)
        event_base_free(F.base);
    memset(&F, 0, sizeof F);
    return 0;
}

/* Every engine of the stack (cb_stack.h: two with $CB_TEST_ENGINES = 2). */
static bool engines_kill(int sig)
{
    return cb_stack_kill(F.stack, "engine", sig) &&
           (!cb_test_two_engines() || cb_stack_kill(F.stack, "engine1", sig));
}

static bool engines_restart(void)
{
    return cb_stack_restart(F.stack, "engine") &&
           (!cb_test_two_engines() || cb_stack_restart(F.stack, "engine1"));
}

static void tenant_name(char *buf, size_t size)
{
    cb_test_unique(buf, size, "e");
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_map_reduce_python_add7_sum(void **state)
{
    call c = {0};
    char t[32];
    (void)state;
    tenant_name(t, sizeof t);
    submit(&c, t,
           job_of("{\"kind\": \"map_reduce\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"add7\"}, \"input\": {\"items\": [2, 3, 4, 5]}, \"reduce\": {\"function\": "
                  "{\"backend\": \"local\", \"name\": \"sum\"}}}"));
    expect_accepted(&c);
    assert_int_equal(json_array_size(json_object_get(c.reply, "errors")), 0);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    assert_int_equal(json_integer_value(json_object_get(c.done, "result")), 42);
    assert_int_equal(count(&c, "total"), 5);
    assert_int_equal(count(&c, "succeeded"), 5);
    assert_non_null(json_object_get(json_object_get(c.done, "timings"), "makespan_ms"));
    call_cleanup(&c);
}

static void test_call_and_map_over_a_range_keep_item_order(void **state)
{
    call c = {0}, m = {0};
    char t[32];
    json_t *result;
    (void)state;
    tenant_name(t, sizeof t);
    submit(&c, t,
           job_of("{\"kind\": \"call\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"echo\"}, \"input\": {\"x\": [1, \"two\"]}}"));
    expect_accepted(&c);
    submit(&m, t,
           job_of("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"echo\"}, \"input\": {\"range\": {\"start\": 5, \"stop\": 2005, \"step\": "
                  "2}}, \"chunksize\": 7, \"parallelism\": 50}"));
    expect_accepted(&m);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    {
        json_t *want = json_loads("{\"x\": [1, \"two\"]}", 0, NULL);
        assert_true(json_equal(json_object_get(c.done, "result"), want));
        json_decref(want);
    }
    wait_done(&m, WAIT_MS);
    expect_status(&m, "succeeded");
    result = json_object_get(m.done, "result");
    assert_int_equal(json_array_size(result), 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(json_integer_value(json_array_get(result, i)), 5 + 2 * (json_int_t)i);
    assert_int_equal(count(&m, "total"), 143); /* ceil(1000 / 7) invocations */
    call_cleanup(&c);
    call_cleanup(&m);
}

/* A diamond: a -> (b, c) -> d, each step getting the outputs it names. */
static void test_dag_passes_outputs_along_its_edges(void **state)
{
    call c = {0};
    char t[32];
    (void)state;
    tenant_name(t, sizeof t);
    submit(
        &c, t,
        job_of("{\"kind\": \"dag\", \"tasks\": {"
               "\"a\": {\"function\": {\"backend\": \"local\", \"name\": \"add7\"}, \"input\": 1},"
               "\"b\": {\"function\": {\"backend\": \"local\", \"name\": \"add7\"}, "
               "\"input_from\": \"a\"},"
               "\"c\": {\"function\": {\"backend\": \"local\", \"name\": \"echo\"}, "
               "\"input_from\": \"a\"},"
               "\"d\": {\"function\": {\"backend\": \"local\", \"name\": \"echo\"}, "
               "\"input_from\": [\"b\", \"c\"]}}}"));
    expect_accepted(&c);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    expect_result(&c, "{\"d\": [15, 8]}"); /* the sink's output: b = a+7, c = a = 8 */
    assert_int_equal(count(&c, "total"), 4);
    call_cleanup(&c);
}

/* foreach fans a step out over another's output, one invocation per value;
 * `when` runs one branch and skips the other. */
static void test_dag_foreach_and_when(void **state)
{
    call c = {0};
    char t[32];
    (void)state;
    tenant_name(t, sizeof t);
    submit(&c, t,
           job_of("{\"kind\": \"dag\", \"parallelism\": 3, \"tasks\": {"
                  "\"a\": {\"function\": {\"backend\": \"local\", \"name\": \"echo\"}, "
                  "\"input\": [1, 2, 3, 4]},"
                  "\"each\": {\"function\": {\"backend\": \"local\", \"name\": \"add7\"}, "
                  "\"foreach\": \"a\"},"
                  "\"total\": {\"function\": {\"backend\": \"local\", \"name\": \"sum\"}, "
                  "\"input_from\": \"each\"},"
                  "\"big\": {\"function\": {\"backend\": \"local\", \"name\": \"echo\"}, "
                  "\"input_from\": \"total\", \"when\": {\"step\": \"total\", \"op\": \"gt\", "
                  "\"value\": 30}},"
                  "\"small\": {\"function\": {\"backend\": \"local\", \"name\": \"echo\"}, "
                  "\"input\": \"small\", \"when\": {\"step\": \"total\", \"op\": \"le\", "
                  "\"value\": 30}}}}"));
    expect_accepted(&c);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    /* each = [8, 9, 10, 11], total = 38 > 30: big runs, small is skipped */
    expect_result(&c, "{\"big\": 38, \"small\": null}");
    assert_int_equal(count(&c, "total"), 9);     /* 5 steps + 4 children */
    assert_int_equal(count(&c, "succeeded"), 8); /* all but the skipped step */
    call_cleanup(&c);
}

/* Run `job` (a JSON text) for tenant t and expect it to succeed with
 * `result`; its done message stays in *c. */
static void run_for(call *c, const char *t, const char *job, const char *result)
{
    submit(c, t, job_of(job));
    expect_accepted(c);
    wait_done(c, WAIT_MS);
    expect_status(c, "succeeded");
    expect_result(c, result);
}

/* Each success in `events` was memoized from job `from`, none was invoked
 * (no cb.task.started); returns how many there are. */
static size_t all_memoized_from(const json_t *events, const char *from)
{
    size_t i, n = 0;
    json_t *e;
    assert_int_equal(count_type(events, "cb.task.started"), 0);
    json_array_foreach(events, i, e)
    {
        json_t *parts = successes_of(e), *p;
        size_t k;
        json_array_foreach(parts, k, p)
        {
            json_t *m = json_object_get(p, "memoized");
            if (!m || strcmp(json_string_value(json_object_get(m, "job")) ?: "", from))
                fail_msg("a success not memoized from %s: %s", from, json_dumps(p, JSON_COMPACT));
            n++;
        }
        json_decref(parts);
    }
    return n;
}

typedef struct stored_end {
    char key[300];
} stored_end;

/* The projector's store shows the job ended (stored_end.key). */
static bool store_shows_end(void *arg)
{
    stored_end *e = arg;
    char dir[400];
    cb_store *st = NULL;
    cb_job_state js;
    bool ended = false;
    snprintf(dir, sizeof dir, "%s/store", cb_stack_dir(F.stack));
    if (cb_store_open(dir, 0, CB_STORE_RDONLY, &st) != CB_OK)
        return false;
    if (cb_view_job(st, e->key, &js) == CB_OK) {
        ended = cb_job_terminal(js.status);
        cb_job_state_cleanup(&js);
    }
    cb_store_close(st);
    return ended;
}

/* The store shows the job ended, and equals a rebuild of the log up to
 * its positions (cb replay --verify). */
static void expect_store_equals_the_log(const char *tenant, const char *job)
{
    stored_end end;
    char cmd[1200], line[600];
    FILE *p;
    int status;
    snprintf(end.key, sizeof end.key, "%s/%s", tenant, job);
    if (!cb_test_poll_until(F.base, store_shows_end, &end, WAIT_MS, 50))
        fail_msg("the store does not show %s ended", end.key);
    snprintf(cmd, sizeof cmd, "'%s' replay --broker '%s' --verify --store '%s/store' 2>&1",
             cb_test_env("CB_TEST_CB"), F.url, cb_stack_dir(F.stack));
    assert_non_null(p = popen(cmd, "r"));
    while (fgets(line, sizeof line, p))
        fputs(line, stderr);
    status = pclose(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the live store differs from a rebuild of the log");
}

/* A cached job's tasks take the outputs of an identical earlier job of the
 * tenant instead of running; another tenant's, a changed item's and an
 * uncached job's run. */
#define CACHED_ADD7                                                                                \
    "{\"kind\": \"map\", \"cache\": true, \"function\": {\"backend\": \"local\", \"name\": "       \
    "\"add7\"}, \"input\": {\"items\": [%s]}}"
static void test_a_cached_job_reuses_earlier_outputs(void **state)
{
    call a = {0}, b = {0}, other = {0}, changed = {0}, plain = {0};
    char t[32], u[32], text[300];
    json_t *events;
    (void)state;
    tenant_name(t, sizeof t);
    tenant_name(u, sizeof u);
    snprintf(text, sizeof text, CACHED_ADD7, "1, 2, 3, 4");
    run_for(&a, t, text, "[8, 9, 10, 11]");
    assert_null(json_object_get(json_object_get(a.done, "counts"), "memoized"));
    events = read_job_log(t, a.job);
    assert_int_equal(count_type(events, "cb.task.started"), 4); /* it ran */
    json_decref(events);

    if (cb_test_two_engines()) {
        /* b may be driven by the other engine, which finds a's outputs in
         * the store once the projector has them (docs/scale.md) */
        stored_end end;
        snprintf(end.key, sizeof end.key, "%s/%s", t, a.job);
        if (!cb_test_poll_until(F.base, store_shows_end, &end, WAIT_MS, 50))
            fail_msg("the store does not show %s ended", end.key);
    }
    run_for(&b, t, text, "[8, 9, 10, 11]"); /* the same job again: nothing runs */
    assert_int_equal(count(&b, "memoized"), 4);
    events = read_job_log(t, b.job);
    assert_int_equal(all_memoized_from(events, a.job), 4);
    json_decref(events);

    run_for(&other, u, text, "[8, 9, 10, 11]"); /* another tenant's job runs */
    assert_null(json_object_get(json_object_get(other.done, "counts"), "memoized"));

    snprintf(text, sizeof text, CACHED_ADD7, "1, 2, 3, 5"); /* one item differs: it alone runs */
    run_for(&changed, t, text, "[8, 9, 10, 12]");
    assert_int_equal(count(&changed, "memoized"), 3);
    events = read_job_log(t, changed.job);
    assert_int_equal(count_type(events, "cb.task.started"), 1);
    json_decref(events);

    run_for(&plain, t, /* not cached: runs although the outputs exist */
            "{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": \"add7\"}, "
            "\"input\": {\"items\": [1, 2, 3, 4]}}",
            "[8, 9, 10, 11]");
    assert_null(json_object_get(json_object_get(plain.done, "counts"), "memoized"));
    call_cleanup(&a);
    call_cleanup(&b);
    call_cleanup(&other);
    call_cleanup(&changed);
    call_cleanup(&plain);
}

/* A DAG step's own `cache` (its foreach children's too) in a job without
 * one: after an engine restart, with the first job in the store only, the
 * cached steps take their outputs from there; the step that is not cached
 * runs again. */
static void test_cached_steps_are_found_in_the_store_after_a_restart(void **state)
{
    static const char *dag =
        "{\"kind\": \"dag\", \"tasks\": {"
        "\"a\": {\"function\": {\"backend\": \"local\", \"name\": \"echo\"}, "
        "\"input\": [1, 2], \"cache\": true},"
        "\"each\": {\"function\": {\"backend\": \"local\", \"name\": \"add7\"}, "
        "\"foreach\": \"a\", \"cache\": true},"
        "\"total\": {\"function\": {\"backend\": \"local\", \"name\": \"sum\"}, "
        "\"input_from\": \"each\"}}}";
    call first = {0}, again = {0};
    stored_end end;
    char t[32];
    json_t *events;
    size_t started = 0, i;
    json_t *e;
    (void)state;
    tenant_name(t, sizeof t);
    run_for(&first, t, dag, "{\"total\": 17}");
    snprintf(end.key, sizeof end.key, "%s/%s", t, first.job);
    if (!cb_test_poll_until(F.base, store_shows_end, &end, WAIT_MS, 50))
        fail_msg("the store does not show %s ended", end.key);
    assert_true(engines_kill(SIGKILL));
    assert_true(engines_restart());

    run_for(&again, t, dag, "{\"total\": 17}");
    assert_int_equal(count(&again, "memoized"), 3); /* a and its two children */
    events = read_job_log(t, again.job);
    json_array_foreach(events, i, e)
    {
        json_t *d = json_object_get(e, "data");
        if (!strcmp(json_string_value(json_object_get(e, "type")) ?: "", "cb.task.started"))
            started++;
        if (json_object_get(d, "memoized"))
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(d, "memoized"), "job")),
                first.job);
    }
    assert_int_equal(started, 1); /* total alone ran */
    json_decref(events);
    call_cleanup(&first);
    call_cleanup(&again);
}

/* Straggler backups (docs/engine.md): one item whose first run takes 12 s;
 * once 90% of the map has succeeded, its task gets a backup attempt that
 * answers at once: the job ends near the others' time, with the backup's
 * output, and the log shows the backup dispatch; the late original is
 * ignored. */
static void test_a_straggler_s_backup_ends_the_job_early(void **state)
{
    call c = {0};
    char t[32];
    json_t *events, *e;
    size_t i, backups = 0;
    (void)state;
    tenant_name(t, sizeof t);
    submit(&c, t,
           job_of("{\"kind\": \"map\", \"backup\": {\"after\": 0.9, \"factor\": 3, \"min_ms\": "
                  "500}, \"function\": {\"backend\": \"local\", \"name\": \"slow_once\"}, "
                  "\"input\": {\"items\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", "
                  "\"h\", \"i\", \"slow\"]}}"));
    expect_accepted(&c);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    expect_result(&c, "[\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\", "
                      "\"slow\"]");
    /* the original takes 12 s: the job ended well before it would have */
    if (json_real_value(json_object_get(json_object_get(c.done, "timings"), "makespan_ms")) >= 8000)
        fail_msg("the job took %s ms: no backup beat the straggler",
                 json_dumps(json_object_get(c.done, "timings"), JSON_COMPACT));
    events = read_job_log(t, c.job);
    json_array_foreach(events, i, e)
    {
        json_t *tasks = json_object_get(json_object_get(e, "data"), "tasks"), *one;
        size_t k;
        if (strcmp(json_string_value(json_object_get(e, "type")) ?: "", "cb.tasks.dispatched"))
            continue;
        json_array_foreach(tasks, k, one)
        {
            if (!json_is_true(json_object_get(one, "backup")))
                continue;
            backups++; /* the straggler's, attempt 2 */
            assert_int_equal(json_integer_value(json_object_get(one, "task")), 9);
            assert_int_equal(json_integer_value(json_object_get(one, "attempt")), 2);
        }
    }
    assert_int_equal(backups, 1);
    json_decref(events);
    call_cleanup(&c);
}

/* ---- cost (docs/engine.md, Cost) ---------------------------------------------- */

/* The local account's prices in tests/fixtures/functions.json. */
#define PER_GB_S    0.0000166667
#define PER_REQUEST 0.0000002

typedef struct billed {
    json_int_t invocations, mb_ms, nanos;
} billed;

/* What the outcomes in `events` report they cost, each checked against the
 * account's prices and the function's memory (mb: 0, any). */
static billed billed_in(const json_t *events, json_int_t mb)
{
    billed b = {0};
    size_t i, k;
    json_t *e, *p;
    json_array_foreach(events, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type")) ?: "";
        json_t *parts = !strcmp(type, "cb.task.failed")
                            ? json_pack("[O]", json_object_get(e, "data"))
                            : successes_of(e);
        json_array_foreach(parts, k, p)
        {
            json_t *c = json_object_get(p, "cost");
            json_int_t mb_ms = json_integer_value(json_array_get(c, 0));
            json_int_t nanos = json_integer_value(json_array_get(c, 1));
            if (json_object_get(p, "memoized"))
                continue; /* no invocation */
            if (!c || strncmp(json_string_value(json_object_get(e, "source")) ?: "",
                              "cbcore/adapter/local/", 21) != 0)
                fail_msg("an outcome without its cost on the local account: %s",
                         json_dumps(e, JSON_COMPACT));
            if (mb && mb_ms % mb)
                fail_msg("%lld MB-ms is not a multiple of %lld MB", (long long)mb_ms,
                         (long long)mb);
            /* rounded once, as the adapter does */
            assert_int_equal(nanos, llround((double)mb_ms / 1024000.0 * PER_GB_S * 1e9) +
                                        llround(PER_REQUEST * 1e9));
            b.invocations++;
            b.mb_ms += mb_ms;
            b.nanos += nanos;
        }
        json_decref(parts);
    }
    return b;
}

/* A job's cost in its done message is what its outcomes report. */
static billed expect_cost_of_log(const call *c, const char *t, json_int_t mb)
{
    json_t *events = read_job_log(t, c->job), *cost = json_object_get(c->done, "cost");
    billed b = billed_in(events, mb);
    json_decref(events);
    assert_int_equal(json_integer_value(json_object_get(cost, "invocations")), b.invocations);
    assert_int_equal(json_integer_value(json_object_get(cost, "mb_ms")), b.mb_ms);
    assert_int_equal(json_integer_value(json_object_get(cost, "nanos")), b.nanos);
    return b;
}

/* The store's figures: the job's record and its tasks' add up to the
 * done message's; the tenant's total to its jobs'. */
static void expect_stored_cost(const char *t, const char *const *jobs, const billed *each, size_t n)
{
    char dir[400], key[300];
    cb_store *st = NULL;
    billed tenant = {0};
    cb_cost total;
    snprintf(dir, sizeof dir, "%s/store", cb_stack_dir(F.stack));
    assert_int_equal(cb_store_open(dir, 0, CB_STORE_RDONLY, &st), CB_OK);
    for (size_t i = 0; i < n; i++) {
        cb_job_state js;
        billed tasks = {0};
        snprintf(key, sizeof key, "%s/%s", t, jobs[i]);
        assert_int_equal(cb_view_job(st, key, &js), CB_OK);
        assert_int_equal(js.cost.invocations, each[i].invocations);
        assert_int_equal(js.cost.mb_ms, each[i].mb_ms);
        assert_int_equal(js.cost.nanos, each[i].nanos);
        for (uint32_t k = 0; k < js.total; k++) {
            cb_task_state ts;
            if (cb_view_task(st, key, k, &ts) != CB_OK)
                continue;
            tasks.invocations += ts.cost.invocations;
            tasks.nanos += ts.cost.nanos;
            cb_task_state_cleanup(&ts);
        }
        assert_int_equal(tasks.invocations, each[i].invocations);
        assert_int_equal(tasks.nanos, each[i].nanos);
        cb_job_state_cleanup(&js);
        tenant.invocations += each[i].invocations;
        tenant.nanos += each[i].nanos;
    }
    assert_int_equal(cb_view_cost(st, "tenant", t, &total), CB_OK);
    assert_int_equal(total.invocations, tenant.invocations);
    assert_int_equal(total.nanos, tenant.nanos);
    assert_int_equal(cb_view_cost(st, "backend", "local", &total), CB_OK);
    assert_true(total.nanos >= (uint64_t)tenant.nanos); /* other tests' too */
    cb_store_close(st);
}

/* Every invocation is billed at the account's price for the function's
 * memory (failed ones too); task, job (done message, record) and tenant
 * figures add up exactly; another tenant's are its own. */
static void test_costs_add_up_across_tasks_jobs_and_tenants(void **state)
{
    call a = {0}, b = {0}, c = {0};
    char t[32], u[32];
    stored_end end;
    billed each[2], other;
    const char *jobs[2];
    (void)state;
    tenant_name(t, sizeof t);
    tenant_name(u, sizeof u);
    run_for(&a, t,
            "{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": \"add7\", "
            "\"memory_mb\": 256}, \"input\": {\"items\": [1, 2, 3, 4]}}",
            "[8, 9, 10, 11]");
    each[0] = expect_cost_of_log(&a, t, 256);
    assert_int_equal(each[0].invocations, 4);
    assert_true(each[0].nanos > 4 * 200); /* memory-time as well as the requests */
    run_for(&b, t,                        /* two of three fail: paid all the same */
            "{\"kind\": \"map\", \"tolerated_failures\": \"100%\", \"function\": {\"backend\": "
            "\"local\", \"name\": \"fail_odd\"}, \"input\": {\"items\": [1, 2, 3]}}",
            "[null, 20, null]");
    each[1] = expect_cost_of_log(&b, t, CB_COST_MEMORY_MB);
    assert_int_equal(each[1].invocations, 3);
    run_for(&c, u,
            "{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": \"add7\"}, "
            "\"input\": {\"items\": [5, 6]}}",
            "[12, 13]");
    other = expect_cost_of_log(&c, u, CB_COST_MEMORY_MB);
    snprintf(end.key, sizeof end.key, "%s/%s", u, c.job);
    if (!cb_test_poll_until(F.base, store_shows_end, &end, WAIT_MS, 50))
        fail_msg("the store does not show %s ended", end.key);
    jobs[0] = a.job;
    jobs[1] = b.job;
    expect_stored_cost(t, jobs, each, 2);
    jobs[0] = c.job;
    expect_stored_cost(u, jobs, &other, 1);
    call_cleanup(&a);
    call_cleanup(&b);
    call_cleanup(&c);
}

/* A budget stops dispatching once the job's invocations cost more: no
 * dispatch happens after the log shows the budget exceeded; the job fails
 * with the reason once what was in flight has ended; its re-run with a
 * larger budget runs only what was not run. */
static void test_a_budget_stops_dispatching(void **state)
{
    /* sleep_ms 200 at 128 MB: ~620 nanos each; a budget of 2000 */
#define BUDGET_JOB                                                                                 \
    "{\"kind\": \"map\", \"parallelism\": 2, \"budget\": %s, \"function\": {\"backend\": "         \
    "\"local\", \"name\": \"sleep_ms\"}, \"input\": {\"range\": {\"start\": 200, \"stop\": 210}}}"
    call c = {0}, again = {0};
    char t[32], text[400];
    json_t *events, *e, *spec;
    json_int_t spent = 0, dispatched = 0, nbilled = 0;
    json_int_t before = -1; /* the billed outcomes before the crossing one */
    size_t i;
    (void)state;
    tenant_name(t, sizeof t);
    snprintf(text, sizeof text, BUDGET_JOB, "0.000002");
    submit(&c, t, job_of(text));
    expect_accepted(&c);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "failed");
    assert_non_null(strstr(json_string_value(json_object_get(c.done, "error")) ?: "",
                           "over budget: its invocations cost "));
    assert_true(count(&c, "succeeded") >= 3 && count(&c, "succeeded") < 10);
    assert_true(json_integer_value(json_object_get(json_object_get(c.done, "cost"), "nanos")) >
                2000);
    events = read_job_log(t, c.job);
    json_array_foreach(events, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type")) ?: "";
        json_t *one = json_pack("[O]", e);
        billed b;
        if (!strcmp(type, "cb.tasks.dispatched"))
            dispatched +=
                (json_int_t)json_array_size(json_object_get(json_object_get(e, "data"), "tasks"));
        b = billed_in(one, 0);
        if (before < 0 && b.invocations && spent + b.nanos > 2000)
            before = nbilled; /* the billed outcomes before the crossing one */
        spent += b.nanos;
        nbilled += b.invocations;
        json_decref(one);
    }
    /* every dispatch was decided while the job's cost was within the budget:
     * with at most `before` outcomes folded and 2 (the parallelism) in flight
     * (a dispatch decided then may reach the log after the crossing outcome) */
    assert_true(before >= 0);
    if (dispatched > before + 2)
        fail_msg("%lld dispatched: more than the %lld outcomes within the budget + 2 in flight",
                 (long long)dispatched, (long long)before);
    assert_int_equal(dispatched, expect_cost_of_log(&c, t, 0).invocations); /* each one ran */
    json_decref(events);

    /* the same work with a larger budget, as a re-run: the rest runs */
    snprintf(text, sizeof text, BUDGET_JOB, "1");
    spec = job_of(text);
    json_object_set_new(spec, "retry_of", json_string(c.job));
    submit(&again, t, spec);
    expect_accepted(&again);
    wait_done(&again, WAIT_MS);
    expect_status(&again, "succeeded");
    assert_int_equal(count(&again, "memoized"), count(&c, "succeeded"));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(again.done, "cost"), "invocations")),
        10 - count(&c, "succeeded"));
    call_cleanup(&c);
    call_cleanup(&again);
}

static void test_failures_are_retried_then_succeed(void **state)
{
    call c = {0};
    char t[32];
    (void)state;
    run_job(&c, t, sizeof t,
            "{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
            "\"fail_n_times\"}, \"input\": {\"items\": [{\"n\": 2}, {\"n\": 0}]}, "
            "\"retry\": {\"limit\": 2, \"backoff_ms\": 50}}",
            "succeeded");
    assert_int_equal(count(&c, "retries"), 2);
    assert_int_equal(json_array_size(json_object_get(c.done, "result")), 2);
    call_cleanup(&c);
}

/* The done message's `failed` list names these items (JSON array of indices),
 * each with the function's exception. */
static void expect_failed_items(const call *c, const char *indices, const char *why)
{
    json_t *want = json_loads(indices, 0, NULL), *got = json_array(), *e;
    size_t i;
    json_array_foreach(json_object_get(c->done, "failed"), i, e)
    {
        json_array_append(got, json_object_get(e, "index"));
        if (!strstr(json_string_value(json_object_get(e, "error")) ?: "", why))
            fail_msg("item %zu's error does not say %s", i, why);
    }
    if (!json_equal(got, want)) {
        char *d = json_dumps(c->done, JSON_COMPACT);
        fail_msg("failed items are not %s: %s", indices, d);
    }
    json_decref(want);
    json_decref(got);
}

static void test_tolerated_losses_keep_the_outputs_that_exist(void **state)
{
    call c = {0};
    char t[32];
    (void)state;
    /* fail_odd raises on odd numbers: items 0 and 2 are lost, and tolerated */
    run_job(&c, t, sizeof t,
            "{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
            "\"fail_odd\"}, \"input\": {\"items\": [1, 2, 3, 4]}, \"tolerated_failures\": 2}",
            "succeeded");
    expect_result(&c, "[null, 20, null, 40]");
    expect_failed_items(&c, "[0, 2]", "ValueError: odd");
    assert_int_equal(count(&c, "failed"), 2);
    call_cleanup(&c);

    /* the reduce runs over the outputs that exist */
    run_job(&c, t, sizeof t,
            "{\"kind\": \"map_reduce\", \"function\": {\"backend\": \"local\", \"name\": "
            "\"fail_odd\"}, \"input\": {\"items\": [1, 2, 3, 4]}, \"tolerated_failures\": "
            "\"50%\", \"reduce\": {\"function\": {\"backend\": \"local\", \"name\": \"sum\"}}}",
            "succeeded");
    expect_result(&c, "60");
    expect_failed_items(&c, "[0, 2]", "ValueError: odd");
    call_cleanup(&c);
}

static void test_the_reduce_has_its_own_timeout(void **state)
{
    call c = {0};
    char t[32];
    (void)state;
    /* the map function's 1 s limit is not the reduce's: it takes 2 s of its 20 */
    run_job(&c, t, sizeof t,
            "{\"kind\": \"map_reduce\", \"function\": {\"backend\": \"local\", \"name\": "
            "\"add7\", \"timeout_ms\": 1000}, \"input\": {\"items\": [1, 2]}, \"reduce\": "
            "{\"function\": {\"backend\": \"local\", \"name\": \"sleepy_sum\", \"timeout_ms\": "
            "20000}}}",
            "succeeded");
    expect_result(&c, "17");
    call_cleanup(&c);
}

static void test_retries_exhausted_fail_the_job_with_the_reason(void **state)
{
    call c = {0};
    char t[32];
    const char *err;
    (void)state;
    run_job(&c, t, sizeof t,
            "{\"kind\": \"call\", \"function\": {\"backend\": \"local\", \"name\": "
            "\"boom\"}, \"input\": 3, \"retry\": {\"limit\": 1, \"backoff_ms\": 10}}",
            "failed");
    err = json_string_value(json_object_get(c.done, "error"));
    assert_non_null(err);
    if (!strstr(err, "ValueError: cannot take 3"))
        fail_msg("error without the exception: %s", err);
    assert_int_equal(count(&c, "retries"), 1);
    call_cleanup(&c);
}

static void test_runtime_killed_mid_invocation_is_retried(void **state)
{
    call c = {0};
    char t[32];
    (void)state;
    /* die_once kills its Python runtime on the first call of the whole run */
    run_job(&c, t, sizeof t,
            "{\"kind\": \"call\", \"function\": {\"backend\": \"local\", \"name\": "
            "\"die_once\"}, \"input\": 9, \"retry\": {\"limit\": 2, \"backoff_ms\": 10}}",
            "succeeded");
    assert_int_equal(json_integer_value(json_object_get(c.done, "result")), 9);
    json_t *events = read_job_log(t, c.job);
    assert_int_equal(count_type(events, "cb.task.failed"), 1); /* the run's first die_once */
    {
        size_t i;
        json_t *e;
        json_array_foreach(events, i, e)
        {
            if (!strcmp(json_string_value(json_object_get(e, "type")), "cb.task.failed")) {
                json_t *d = json_object_get(e, "data");
                assert_string_equal(json_string_value(json_object_get(d, "reason")), "signal");
                assert_non_null(
                    strstr(json_string_value(json_object_get(d, "error")), "killed by signal 9"));
            }
        }
        assert_int_equal(count(&c, "retries"), 1);
    }
    json_decref(events);
    call_cleanup(&c);
}

static void test_timeout_kills_the_function_and_fails_the_job(void **state)
{
    call c = {0};
    char t[32];
    (void)state;
    run_job(&c, t, sizeof t,
            "{\"kind\": \"call\", \"function\": {\"backend\": \"local\", \"name\": "
            "\"slow\"}, \"input\": 0}",
            "failed");
    assert_non_null(strstr(json_string_value(json_object_get(c.done, "error")),
                           "did not finish within 300 ms"));
    call_cleanup(&c);
}

static void test_bad_jobs_are_rejected_with_reasons_and_a_done_message(void **state)
{
    call c = {0};
    char t[32], text[512];
    const char *e0;
    (void)state;
    tenant_name(t, sizeof t);
    snprintf(text, sizeof text,
             "{\"job_id\": \"bad1\", \"tenant\": \"%s\", \"kind\": \"map\", \"function\": "
             "{\"backend\": \"local\", \"name\": \"nope\"}, \"input\": {\"items\": [1]}}",
             t);
    submit_raw(&c, t, text);
    assert_false(json_is_true(json_object_get(c.reply, "accepted")));
    assert_string_equal(json_string_value(json_object_get(c.reply, "job_id")), "bad1");
    e0 = json_string_value(json_array_get(json_object_get(c.reply, "errors"), 0));
    assert_string_equal(e0, "/function/name: no local function named \"nope\"");
    wait_done(&c, WAIT_MS);
    expect_status(&c, "rejected");
    assert_string_equal(json_string_value(json_array_get(json_object_get(c.done, "errors"), 0)),
                        e0);
    call_cleanup(&c);

    submit_raw(&c, t, "{\"kind\": \"map\", \"tenant\": ");
    assert_false(json_is_true(json_object_get(c.reply, "accepted")));
    e0 = json_string_value(json_array_get(json_object_get(c.reply, "errors"), 0));
    assert_non_null(e0);
    assert_true(!strncmp(e0, "/: not JSON", 11));
    call_cleanup(&c);

    snprintf(text, sizeof text,
             "{\"tenant\": \"%s\", \"kind\": \"map\", \"function\": {\"backend\": \"lambda\", "
             "\"name\": \"f\"}, \"input\": {\"items\": [1]}, \"parallelism\": 0}",
             t);
    submit_raw(&c, t, text);
    assert_false(json_is_true(json_object_get(c.reply, "accepted")));
    {
        char *errs = json_dumps(json_object_get(c.reply, "errors"), 0);
        assert_non_null(strstr(errs, "/parallelism"));
        free(errs);
    }
    call_cleanup(&c);

    snprintf(text, sizeof text,
             "{\"tenant\": \"%s\", \"kind\": \"dag\", \"tasks\": {\"a\": {\"function\": "
             "{\"backend\": \"local\", \"name\": \"echo\"}, \"depends\": [\"b\"]}, \"b\": "
             "{\"function\": {\"backend\": \"local\", \"name\": \"echo\"}, \"depends\": "
             "[\"a\"]}}}",
             t);
    submit_raw(&c, t, text);
    assert_false(json_is_true(json_object_get(c.reply, "accepted")));
    assert_non_null(
        strstr(json_string_value(json_array_get(json_object_get(c.reply, "errors"), 0)), "cycle"));
    call_cleanup(&c);

    /* a tenant that differs from the subject's */
    submit_raw(&c, t,
               "{\"tenant\": \"someone-else\", \"kind\": \"call\", \"function\": {\"backend\": "
               "\"local\", \"name\": \"echo\"}, \"input\": 1}");
    assert_false(json_is_true(json_object_get(c.reply, "accepted")));
    assert_non_null(strstr(json_string_value(json_array_get(json_object_get(c.reply, "errors"), 0)),
                           "/tenant"));
    call_cleanup(&c);

    /* and the engine still works */
    submit(&c, t,
           job_of("{\"kind\": \"call\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"echo\"}, \"input\": 1}"));
    expect_accepted(&c);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    call_cleanup(&c);
}

static void test_same_job_id_is_idempotent_and_a_different_body_conflicts(void **state)
{
    call a = {0}, b = {0}, x = {0};
    char t[32], text[512];
    (void)state;
    tenant_name(t, sizeof t);
    snprintf(text, sizeof text,
             "{\"job_id\": \"once\", \"tenant\": \"%s\", \"kind\": \"call\", \"function\": "
             "{\"backend\": \"local\", \"name\": \"echo\"}, \"input\": 1}",
             t);
    submit_raw(&a, t, text);
    expect_accepted(&a);
    assert_null(json_object_get(a.reply, "repeated"));
    submit_raw(&b, t, text); /* at once: before the projection has it */
    expect_accepted(&b);
    assert_true(json_is_true(json_object_get(b.reply, "repeated"))); /* its done may be old */
    assert_string_equal(json_string_value(json_object_get(b.reply, "job_id")), "once");
    wait_done(&a, WAIT_MS);
    expect_status(&a, "succeeded");
    submit_raw(&x, t, text); /* after it finished */
    expect_accepted(&x);
    assert_true(json_is_true(json_object_get(x.reply, "repeated")));
    call_cleanup(&x);
    snprintf(text, sizeof text,
             "{\"job_id\": \"once\", \"tenant\": \"%s\", \"kind\": \"call\", \"function\": "
             "{\"backend\": \"local\", \"name\": \"echo\"}, \"input\": 2}",
             t);
    submit_raw(&x, t, text);
    assert_false(json_is_true(json_object_get(x.reply, "accepted")));
    assert_non_null(strstr(json_string_value(json_array_get(json_object_get(x.reply, "errors"), 0)),
                           "conflict"));
    json_t *events = read_job_log(t, "once");
    assert_int_equal(count_type(events, "cb.job.submitted"), 1);
    assert_int_equal(count_type(events, "cb.task.succeeded"), 1);
    json_decref(events);
    call_cleanup(&a);
    call_cleanup(&b);
    call_cleanup(&x);
}

static void ctl(const char *tenant, const char *job, const char *command, call *c)
{
    char subject[300], text[100];
    snprintf(subject, sizeof subject, "cb.ctl.%s.%s", tenant, job);
    snprintf(text, sizeof text, "{\"command\": \"%s\"}", command);
    c->replied = 0;
    assert_int_equal(cb_broker_request(F.b, subject, text, strlen(text), 30000, reply_cb, c),
                     CB_OK);
    assert_true(cb_test_run_until(F.base, replied, c, 40000));
    assert_int_equal(c->status, CB_OK);
}

/* A DAG that failed in its third step, re-run with `retry` once the cause
 * is gone: the first two steps are not run again (their outputs come from
 * the failed job), the third runs; the re-run records where it came from.
 * A succeeded job is not re-run, and a job that claims to re-run one with
 * other work is rejected. */
static void test_retry_runs_again_only_what_did_not_succeed(void **state)
{
    static const char *dag =
        "{\"kind\": \"dag\", \"tasks\": {"
        "\"a\": {\"function\": {\"backend\": \"local\", \"name\": \"add7\"}, \"input\": 1},"
        "\"b\": {\"function\": {\"backend\": \"local\", \"name\": \"add7\"}, "
        "\"input_from\": \"a\"},"
        "\"c\": {\"function\": {\"backend\": \"local\", \"name\": \"gate\"}, "
        "\"input_from\": \"b\"}}}";
    call failed = {0}, rerun = {0}, again = {0}, other = {0};
    char t[32], text[600];
    json_t *events, *e, *spec;
    size_t i, started = 0, reused = 0;
    FILE *f;
    (void)state;
    tenant_name(t, sizeof t);
    unlink(F.gate);
    submit(&failed, t, job_of(dag));
    expect_accepted(&failed);
    wait_done(&failed, WAIT_MS);
    expect_status(&failed, "failed");
    assert_non_null(strstr(json_string_value(json_object_get(failed.done, "error")) ?: "",
                           "the gate is closed"));

    assert_non_null(f = fopen(F.gate, "w")); /* the cause is gone */
    fclose(f);
    snprintf(rerun.tenant, sizeof rerun.tenant, "%s", t);
    ctl(t, failed.job, "retry", &rerun);
    expect_accepted(&rerun);
    assert_string_not_equal(rerun.job, failed.job);
    wait_done(&rerun, WAIT_MS);
    expect_status(&rerun, "succeeded");
    expect_result(&rerun, "{\"c\": 16}");
    assert_int_equal(count(&rerun, "memoized"), 2);
    events = read_job_log(t, rerun.job);
    json_array_foreach(events, i, e)
    {
        json_t *d = json_object_get(e, "data"), *from = json_object_get(d, "memoized");
        const char *type = json_string_value(json_object_get(e, "type")) ?: "";
        if (!strcmp(type, "cb.task.started"))
            started++;
        if (!strcmp(type, "cb.job.submitted"))
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(d, "job"), "retry_of")),
                failed.job);
        if (from) {
            assert_string_equal(json_string_value(json_object_get(from, "job")), failed.job);
            assert_int_equal(json_integer_value(json_object_get(from, "task")),
                             json_integer_value(json_object_get(d, "task")));
            reused++;
        }
    }
    assert_int_equal(started, 1); /* c alone ran */
    assert_int_equal(reused, 2);
    json_decref(events);

    snprintf(again.tenant, sizeof again.tenant, "%s", t);
    ctl(t, rerun.job, "retry", &again); /* it succeeded: nothing to run again */
    assert_false(json_is_true(json_object_get(again.reply, "accepted")));
    assert_non_null(
        strstr(json_string_value(json_array_get(json_object_get(again.reply, "errors"), 0)) ?: "",
               "only a failed or cancelled job"));

    spec = job_of(dag); /* other work under the failed job's name */
    json_object_set_new(spec, "retry_of", json_string(failed.job));
    json_object_set_new(
        json_object_get(json_object_get(json_object_get(spec, "tasks"), "a"), "function"), "name",
        json_string("echo"));
    submit(&other, t, spec);
    assert_false(json_is_true(json_object_get(other.reply, "accepted")));
    snprintf(text, sizeof text, "%s",
             json_string_value(json_array_get(json_object_get(other.reply, "errors"), 0)) ?: "");
    assert_non_null(strstr(text, "/retry_of: the job's work differs"));
    unlink(F.gate);
    call_cleanup(&failed);
    call_cleanup(&rerun);
    call_cleanup(&again);
    call_cleanup(&other);
}

typedef struct started_watch {
    int n;
} started_watch;

static void progress_cb(const cb_broker_msg *m, void *ctx)
{
    started_watch *w = ctx;
    json_t *p = json_loadb(m->data, m->len, 0, NULL);
    if (json_integer_value(json_object_get(p, "running")) > 0 ||
        json_integer_value(json_object_get(p, "succeeded")) > 0)
        w->n++;
    json_decref(p);
}

static bool running(void *arg)
{
    return ((started_watch *)arg)->n > 0;
}

/* Submit job (c, tenant t) and wait until it runs (its progress says so). */
static void submit_running(call *c, const char *t, json_t *job)
{
    char subject[300];
    started_watch w = {0};
    cb_sub *ps = NULL;
    snprintf(subject, sizeof subject, "cb.progress.%s.>", t);
    assert_int_equal(cb_broker_subscribe(F.b, subject, 0, progress_cb, &w, &ps), CB_OK);
    submit(c, t, job);
    expect_accepted(c);
    assert_true(cb_test_run_until(F.base, running, &w, WAIT_MS));
    cb_sub_close(ps);
}

static void test_cancel_ends_a_running_job(void **state)
{
    call c = {0}, k = {0};
    char t[32];
    (void)state;
    tenant_name(t, sizeof t);
    submit_running(
        &c, t,
        job_of("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
               "\"sleep_ms\"}, \"input\": {\"items\": [400, 400, 400, 400, 400, 400, 400, "
               "400, 400, 400, 400, 400]}, \"parallelism\": 1}"));
    ctl(t, c.job, "cancel", &k);
    if (!json_is_true(json_object_get(k.reply, "accepted")))
        fail_msg("cancel refused: %s", json_dumps(k.reply, JSON_COMPACT));
    wait_done(&c, 30000);
    expect_status(&c, "cancelled");
    assert_true(count(&c, "succeeded") < 12);
    call_cleanup(&k);
    /* a command for a finished job is refused with the reason */
    ctl(t, c.job, "resume", &k);
    assert_false(json_is_true(json_object_get(k.reply, "accepted")));
    assert_non_null(strstr(json_string_value(json_array_get(json_object_get(k.reply, "errors"), 0)),
                           "cancel")); /* "already cancelled", or "being cancelled" */
    call_cleanup(&k);
    call_cleanup(&c);
}

static void test_suspend_stops_dispatch_until_resumed(void **state)
{
    call c = {0}, k = {0};
    char t[32];
    json_t *events, *e;
    size_t i;
    int suspended = 0, resumed = 0, dispatched_while_suspended = 0;
    (void)state;
    tenant_name(t, sizeof t);
    submit_running(&c, t,
                   job_of("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
                          "\"sleep_ms\"}, \"input\": {\"items\": [300, 300, 300, 300, 300, 300]}, "
                          "\"parallelism\": 1}"));
    ctl(t, c.job, "suspend", &k);
    assert_true(json_is_true(json_object_get(k.reply, "accepted")));
    call_cleanup(&k);
    ctl(t, c.job, "resume", &k);
    assert_true(json_is_true(json_object_get(k.reply, "accepted")));
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    events = read_job_log(t, c.job);
    json_array_foreach(events, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        if (!strcmp(type, "cb.job.suspended"))
            suspended = 1;
        else if (!strcmp(type, "cb.job.resumed"))
            resumed = 1;
        else if (!strcmp(type, "cb.tasks.dispatched") && suspended && !resumed)
            dispatched_while_suspended = 1;
    }
    assert_true(suspended && resumed);
    assert_false(dispatched_while_suspended);
    json_decref(events);
    call_cleanup(&k);
    call_cleanup(&c);
}

typedef struct appended {
    int done;
    cb_status s;
} appended;

static void appended_cb(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    appended *a = ctx;
    (void)seq;
    (void)duplicate;
    a->s = s;
    a->done = 1;
}

static bool is_appended(void *arg)
{
    return ((appended *)arg)->done;
}

/* A broker can confirm a cb.tasks.dispatched and lose it in a node failure
 * (docs/broker.md, "Node failure"): the adapter that ran the task reports
 * with no dispatch of it in the log. The report stands for its dispatch
 * (fold.c): here it comes for the last task of a map run one at a time,
 * before the engine dispatched that task. The task never runs (the
 * engine's dispatch of it sends no command), the job ends with the
 * reported output, and the store equals a rebuild of the log. */
static void test_a_report_without_its_dispatch_stands_for_it(void **state)
{
    call c = {0};
    char t[32], id[300];
    appended a = {0};
    json_t *events, *e, *result, *reported = json_pack("[s]", "reported");
    size_t i;
    (void)state;
    tenant_name(t, sizeof t);
    submit_running(&c, t,
                   job_of("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
                          "\"sleep_ms\"}, \"input\": {\"items\": [300, 300, 300, 300]}, "
                          "\"parallelism\": 1}"));
    snprintf(id, sizeof id, "%s/%s/3/1/succeeded", t, c.job);
    assert_int_equal(
        cb_emit(F.b, cb_partition_of(t, c.job, cb_test_partitions()), CB_EV_TASK_SUCCEEDED, t,
                c.job, id, "cbcore/adapter/local/it-engine",
                json_pack("{s:i, s:i, s:[s]}", "task", 3, "attempt", 1, "output", "reported"),
                appended_cb, &a),
        CB_OK);
    assert_true(cb_test_run_until(F.base, is_appended, &a, WAIT_MS));
    assert_int_equal(a.s, CB_OK);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    result = json_object_get(c.done, "result");
    assert_int_equal(json_array_size(result), 4);
    assert_string_equal(json_string_value(json_array_get(result, 3)) ?: "", "reported");
    assert_int_equal(json_integer_value(json_array_get(result, 2)), 300);
    events = read_job_log(t, c.job);
    json_array_foreach(events, i, e)
    {
        json_t *parts = successes_of(e), *x;
        size_t k;
        if (!strcmp(json_string_value(json_object_get(e, "type")), "cb.task.started") &&
            json_integer_value(json_object_get(json_object_get(e, "data"), "task")) == 3)
            fail_msg("task 3 ran after its report: %s", json_dumps(e, JSON_COMPACT));
        json_array_foreach(parts, k, x) if (json_integer_value(json_object_get(x, "task")) == 3 &&
                                            !json_equal(json_object_get(x, "output"), reported))
            fail_msg("task 3 succeeded again: %s", json_dumps(e, JSON_COMPACT));
        json_decref(parts);
    }
    assert_int_equal(count_type(events, "cb.task.started"), 3); /* tasks 0..2 ran */
    json_decref(events);
    json_decref(reported);
    expect_store_equals_the_log(t, c.job);
    call_cleanup(&c);
}

static void test_late_subscriber_gets_the_done_message(void **state)
{
    call c = {0}, late = {0};
    char t[32];
    (void)state;
    tenant_name(t, sizeof t);
    submit(&c, t,
           job_of("{\"kind\": \"call\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"echo\"}, \"input\": \"hello\"}"));
    expect_accepted(&c);
    wait_done(&c, WAIT_MS);
    snprintf(late.tenant, sizeof late.tenant, "%s", t);
    snprintf(late.job, sizeof late.job, "%s", c.job);
    listen_done(&late);
    wait_done(&late, 30000);
    expect_status(&late, "succeeded");
    assert_string_equal(json_string_value(json_object_get(late.done, "result")), "hello");
    call_cleanup(&c);
    call_cleanup(&late);
}

/* The commands a test takes off cb.invoke.unreachable (no adapter serves it). */
typedef struct taken {
    json_t *cmds; /* the commands, in arrival order */
    size_t tasks; /* over all of them */
    size_t want;  /* tasks to wait for */
} taken;

static void taken_cb(cb_work *w, const cb_broker_msg *m, void *ctx)
{
    taken *t = ctx;
    json_t *cmd = json_loadb(m->data, m->len, 0, NULL), *tasks = json_object_get(cmd, "tasks");
    t->tasks += tasks ? json_array_size(tasks) : 1;
    json_array_append_new(t->cmds, cmd);
    cb_work_ack(w);
}

static bool taken_enough(void *arg)
{
    const taken *t = arg;
    return t->tasks >= t->want;
}

/* Start taking the commands of cb.invoke.unreachable into got. */
static cb_consumer *take_unreachable(taken *got)
{
    cb_consume_opts co;
    cb_consumer *cons = NULL;
    cb_consume_opts_init(&co);
    co.max_inflight = 1000;
    assert_int_equal(cb_broker_consume(F.b, "cb.invoke.unreachable", &co, taken_cb, got, &cons),
                     CB_OK);
    return cons;
}

/* Stop taking commands and forget those taken. */
static void stop_taking(cb_consumer *cons, taken *got)
{
    cb_consumer_close(cons);
    json_decref(got->cmds);
    got->cmds = NULL;
}

/* Submit a map of range(n) on the unreachable backend (with `parallelism`
 * when > 0) and wait until got holds its n tasks (got counted from 0). */
static void submit_unreachable(call *c, const char *t, const char *id, int n, int parallelism,
                               taken *got)
{
    json_t *job =
        json_pack("{s:s, s:{s:s, s:s}, s:{s:{s:i, s:i}}}", "kind", "map", "function", "backend",
                  "unreachable", "name", "f", "input", "range", "start", 0, "stop", n);
    if (parallelism > 0)
        json_object_set_new(job, "parallelism", json_integer(parallelism));
    if (id)
        json_object_set_new(job, "job_id", json_string(id));
    json_array_clear(got->cmds);
    got->tasks = 0;
    got->want = (size_t)n;
    submit(c, t, job);
    expect_accepted(c);
    if (!cb_test_run_until(F.base, taken_enough, got, WAIT_MS))
        fail_msg("%zu of %d tasks in the commands taken", got->tasks, n);
    assert_int_equal(got->tasks, n);
}

/* Cancel c's job and wait for its end. */
static void cancel_and_wait(call *c, const char *t)
{
    call k = {0};
    ctl(t, c->job, "cancel", &k);
    wait_done(c, 30000);
    call_cleanup(&k);
}

/* A plan of many tasks shares its invocation commands (several tasks of one
 * function in a row per command); a small plan's tasks go one per command. */
static void test_a_big_plan_shares_invocation_commands(void **state)
{
    taken got = {json_array(), 0, 0};
    cb_consumer *cons = take_unreachable(&got);
    call c = {0}, small = {0};
    char t[32];
    unsigned char seen[40] = {0};
    size_t i;
    json_t *cmd;
    (void)state;
    tenant_name(t, sizeof t);
    submit_unreachable(&c, t, NULL, 40, 40, &got);
    /* 40 / CTL_BATCH_SPREAD (8) = 5 tasks per command */
    assert_int_equal(json_array_size(got.cmds), 8);
    json_array_foreach(got.cmds, i, cmd)
    {
        json_t *tasks = json_object_get(cmd, "tasks"), *one;
        size_t j;
        assert_int_equal(json_array_size(tasks), 5);
        assert_string_equal(json_string_value(json_object_get(cmd, "job_id")), c.job);
        json_array_foreach(tasks, j, one)
        {
            json_int_t task = json_integer_value(json_object_get(one, "task"));
            assert_true(task >= 0 && task < 40);
            assert_int_equal(seen[task]++, 0); /* each task in one command */
            /* its own item and index; tasks in a row */
            assert_int_equal(json_integer_value(json_array_get(json_object_get(one, "items"), 0)),
                             task);
            assert_int_equal(json_integer_value(json_object_get(one, "first_item")), task);
            assert_int_equal(json_integer_value(json_object_get(one, "attempt")), 1);
            if (j > 0)
                assert_int_equal(
                    json_integer_value(json_object_get(json_array_get(tasks, j - 1), "task")),
                    task - 1);
        }
    }
    cancel_and_wait(&c, t);
    expect_status(&c, "cancelled");

    /* three tasks: three one-task commands */
    submit_unreachable(&small, t, NULL, 3, 0, &got);
    assert_int_equal(json_array_size(got.cmds), 3);
    json_array_foreach(got.cmds, i, cmd)
    {
        assert_null(json_object_get(cmd, "tasks"));
        assert_int_equal(json_array_size(json_object_get(cmd, "items")), 1);
    }
    cancel_and_wait(&small, t);
    stop_taking(cons, &got);
    call_cleanup(&small);
    call_cleanup(&c);
}

/* Tasks that fail and tasks that succeed share commands, and so do the
 * retries of several tasks: each task's outcomes are its own. */
static void test_shared_commands_keep_each_tasks_outcome(void **state)
{
    call c = {0};
    char t[32];
    json_t *job = json_pack("{s:s, s:{s:s, s:s}, s:{s:[]}, s:i, s:{s:i, s:i}}", "kind", "map",
                            "function", "backend", "local", "name", "fail_n_times", "input",
                            "items", "parallelism", 32, "retry", "limit", 2, "backoff_ms", 50);
    json_t *items = json_object_get(json_object_get(job, "input"), "items");
    (void)state;
    for (int i = 0; i < 32; i++) /* item i fails i % 3 times: 31 failures in all */
        json_array_append_new(items, json_pack("{s:i}", "n", i % 3));
    tenant_name(t, sizeof t);
    submit(&c, t, job);
    expect_accepted(&c);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    assert_int_equal(count(&c, "retries"), 31);
    assert_int_equal(json_array_size(json_object_get(c.done, "result")), 32);
    call_cleanup(&c);
}

/* An adapter runs at most --concurrency tasks at once, however many its
 * commands carry (the capped group: one adapter, --concurrency 2, every
 * start recorded): 16 tasks of 300 ms in 8 commands of 2. In the log, the
 * tasks running at once (started, not yet ended, in log order) never exceed
 * 2, and the job takes about 16 x 300 / 2 ms. */
static void test_an_adapter_runs_at_most_its_concurrency(void **state)
{
    call c = {0};
    char t[32];
    json_t *events, *e;
    size_t i;
    int running = 0, most = 0, started = 0;
    (void)state;
    run_job(&c, t, sizeof t,
            "{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": \"sleep_ms\"}, "
            "\"input\": {\"items\": [300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, "
            "300, 300, 300, 300]}, \"parallelism\": 16}",
            "succeeded");
    assert_int_equal(json_array_size(json_object_get(c.done, "result")), 16);
    events = read_job_log(t, c.job);
    json_array_foreach(events, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type")) ?: "";
        if (!strcmp(type, "cb.task.started")) {
            started++;
            if (++running > most)
                most = running;
        } else if (!strcmp(type, "cb.task.failed")) {
            running--;
        } else { /* the successes of a command may share an event */
            json_t *ok = successes_of(e);
            running -= (int)json_array_size(ok);
            json_decref(ok);
        }
    }
    assert_int_equal(started, 16);
    if (most > 2)
        fail_msg("%d tasks ran at once on an adapter of --concurrency 2", most);
    assert_int_equal(most, 2);
    json_decref(events);
    call_cleanup(&c);
}

/* A backend whose adapters have work anyway (64 or more invocations of other
 * jobs in flight) takes a small plan in one command: with 70 tasks of a job
 * held on cb.invoke.unreachable, a job of 10 tasks makes one command of 10
 * (on an idle backend it makes 10 one-task commands, as the test above
 * shows for 3). */
static void test_a_busy_backend_takes_a_small_plan_in_one_command(void **state)
{
    taken got = {json_array(), 0, 0};
    cb_consumer *cons = take_unreachable(&got);
    call big = {0}, small = {0};
    char t[32];
    json_t *cmd;
    (void)state;
    char small_id[32];
    tenant_name(t, sizeof t);
    /* how busy a backend is, is what one engine has in flight on it: on a
     * partitioned run (docs/scale.md) the two jobs are named into one
     * partition */
    for (int n = 0;; n++) {
        snprintf(small_id, sizeof small_id, "small%d", n);
        if (cb_partition_of(t, small_id, cb_test_partitions()) ==
            cb_partition_of(t, "big", cb_test_partitions()))
            break;
    }
    submit_unreachable(&big, t, "big", 70, 70, &got);
    assert_true(json_array_size(got.cmds) >= 8); /* spread: the backend was idle */
    submit_unreachable(&small, t, small_id, 10, 0, &got);
    assert_int_equal(json_array_size(got.cmds), 1);
    cmd = json_array_get(got.cmds, 0);
    assert_string_equal(json_string_value(json_object_get(cmd, "job_id")), small.job);
    assert_int_equal(json_array_size(json_object_get(cmd, "tasks")), 10);
    cancel_and_wait(&small, t);
    cancel_and_wait(&big, t);
    stop_taking(cons, &got);
    call_cleanup(&small);
    call_cleanup(&big);
}

/* The successes of a command's tasks that end together share one event
 * (cb.tasks.succeeded, id "<tenant>/<job>/<first task>/<attempt>/succeeded+n"):
 * 40 tasks in 8 commands of 5, with outputs long enough that the engine keeps
 * them as text until the end. Every task succeeds once, a shared event holds
 * tasks of one command only, and the result has each task's own output. */
static void test_successes_of_a_command_share_an_event(void **state)
{
    call c = {0};
    char t[32], want[64];
    json_t *events, *e, *items = json_array(), *result;
    size_t i, batches = 0, parts = 0;
    int seen[40] = {0};
    (void)state;
    for (i = 0; i < 40; i++) {
        snprintf(want, sizeof want, "an item of the map, number %02zu", i);
        json_array_append_new(items, json_string(want));
    }
    cb_test_unique(t, sizeof t, "e");
    submit(&c, t,
           json_pack("{s:s, s:{s:s, s:s}, s:{s:o}, s:i}", "kind", "map", "function", "backend",
                     "local", "name", "echo", "input", "items", items, "parallelism", 40));
    expect_accepted(&c);
    wait_done(&c, WAIT_MS);
    expect_status(&c, "succeeded");
    result = json_object_get(c.done, "result");
    assert_int_equal(json_array_size(result), 40);
    for (i = 0; i < 40; i++) {
        snprintf(want, sizeof want, "an item of the map, number %02zu", i);
        assert_string_equal(json_string_value(json_array_get(result, i)), want);
    }
    events = read_job_log(t, c.job);
    json_array_foreach(events, i, e)
    {
        json_t *ok = successes_of(e), *one;
        json_int_t first = json_integer_value(json_object_get(json_array_get(ok, 0), "task"));
        size_t k;
        if (!strcmp(json_string_value(json_object_get(e, "type")) ?: "", "cb.tasks.succeeded")) {
            char id[300];
            snprintf(id, sizeof id, "%s/%s/%lld/1/succeeded+%zu", t, c.job, (long long)first,
                     json_array_size(ok));
            assert_string_equal(json_string_value(json_object_get(e, "id")), id);
            batches++;
        }
        json_array_foreach(ok, k, one)
        {
            json_int_t task = json_integer_value(json_object_get(one, "task"));
            assert_true(task >= 0 && task < 40);
            assert_int_equal(seen[task]++, 0);
            /* of one command, in its order: tasks in a row from the first
             * (commands of 5 with the account's whole limit; an engine
             * that drives some of the partitions has its share of it, and
             * makes other commands: docs/scale.md) */
            assert_int_equal(task, first + (json_int_t)k);
            if (!cb_test_two_engines())
                assert_int_equal(task / 5, first / 5);
            parts++;
        }
        json_decref(ok);
    }
    assert_int_equal(parts, 40);
    if (batches == 0)
        fail_msg("40 successes in commands of 5, none shared an event");
    assert_true(count_type(events, "cb.task.succeeded") + batches < 40);
    json_decref(events);
    call_cleanup(&c);
}

/* 10,000 invocations through the 2 workers: every task completes exactly once. */
static void test_ten_thousand_invocations_complete_exactly_once(void **state)
{
    call c = {0};
    char t[32];
    json_t *events, *e, *result;
    size_t i;
    unsigned char *seen = calloc(10000, 1);
    size_t succeeded = 0;
    (void)state;
    tenant_name(t, sizeof t);
    submit(&c, t,
           job_of("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"echo\"}, \"input\": {\"range\": {\"start\": 0, \"stop\": 10000}}, "
                  "\"parallelism\": 1000}"));
    expect_accepted(&c);
    wait_done(&c, 300000);
    expect_status(&c, "succeeded");
    result = json_object_get(c.done, "result");
    assert_int_equal(json_array_size(result), 10000);
    for (i = 0; i < 10000; i++)
        assert_int_equal(json_integer_value(json_array_get(result, i)), (json_int_t)i);
    events = read_job_log(t, c.job);
    json_array_foreach(events, i, e)
    {
        json_t *ok = successes_of(e), *one;
        size_t k;
        json_array_foreach(ok, k, one)
        {
            json_int_t task = json_integer_value(json_object_get(one, "task"));
            assert_true(task >= 0 && task < 10000);
            assert_int_equal(seen[task], 0); /* a second completion would be a duplicate */
            seen[task] = 1;
            succeeded++;
        }
        json_decref(ok);
    }
    assert_int_equal(succeeded, 10000);
    /* the tasks of a command that succeed together share an event */
    if (count_type(events, "cb.tasks.succeeded") == 0)
        fail_msg("10,000 successes, none shared an event");
    free(seen);
    json_decref(events);
    call_cleanup(&c);
}

typedef struct victim_watch {
    char tenant[64];
    int started_on_victim; /* cb.task.started events of adapter0 */
} victim_watch;

static void victim_log_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    victim_watch *v = ctx;
    json_t *e;
    (void)s;
    if (!m || !(e = json_loadb(m->data, m->len, 0, NULL)))
        return;
    if (!strcmp(json_string_value(json_object_get(e, "type")) ?: "", "cb.task.started")) {
        json_t *d = json_object_get(e, "data");
        const char *worker = json_string_value(json_object_get(d, "worker")) ?: "";
        if (!strcmp(worker, "adapter0"))
            v->started_on_victim++;
    }
    json_decref(e);
}

typedef struct victim_wait {
    victim_watch *v;
    int want;
} victim_wait;

static bool victim_busy(void *arg)
{
    victim_wait *w = arg;
    return w->v->started_on_victim >= w->want;
}

/* Submit `job` (for a fresh tenant) while watching which worker starts which
 * task, and wait until adapter0 has started `want` invocations. */
static void run_on_victim(const char *job, int want, call *c, victim_watch *v, cb_reader **r)
{
    char t[32], filter[200], rest[64];
    cb_read_opts o;
    victim_wait w = {v, want};
    tenant_name(t, sizeof t);
    snprintf(rest, sizeof rest, "%s.>", t);
    for (unsigned k = 0; k < cb_test_partitions(); k++) { /* the job's is one of them */
        assert_int_equal(cb_partition_pattern(k, rest, filter, sizeof filter), 0);
        cb_read_opts_init(&o);
        /* From a second ago, not "new": the server may make the reader's
         * consumer after the job's first events (seen under ASan on NATS: a
         * wildcard consumer over a long log); the tenant is fresh, so nothing
         * before is its. */
        o.from = CB_READ_TIME;
        o.time_ns = cb_time_now_ns() - 1000000000LL;
        o.partition = k;
        o.filter = filter;
        assert_int_equal(cb_broker_read(F.b, &o, victim_log_cb, v, &r[k]), CB_OK);
    }
    submit(c, t, job_of(job));
    expect_accepted(c);
    if (!cb_test_run_until(F.base, victim_busy, &w, WAIT_MS)) {
        cb_stack_dump(F.stack);
        fail_msg("adapter0 started %d invocations, not %d", v->started_on_victim, want);
    }
}

/* A worker's figures (cb.stats.adapter.<id>): how many deliveries it was
 * given again. The log cannot tell: a re-run of the same attempt appends the
 * same cb.task.started event id, which the log de-duplicates. */
static void redelivered_cb(const cb_broker_msg *m, void *ctx)
{
    json_int_t *most = ctx;
    json_t *r = json_loadb(m->data, m->len, 0, NULL);
    json_int_t n =
        json_integer_value(json_object_get(json_object_get(r, "adapter"), "redelivered"));
    if (n > *most)
        *most = n;
    json_decref(r);
}

static bool moved(void *arg)
{
    return *(json_int_t *)arg > 0;
}

/* A worker killed with -9 holding invocations: they are redelivered to the
 * other worker and the job completes, each task once in its state. (adapter0
 * alone takes the work at first: with both serving, one worker may take a
 * whole small plan; adapter1 is started again once adapter0 runs tasks.) */
static void test_worker_killed_mid_batch_work_moves_to_the_other(void **state)
{
    call c = {0};
    victim_watch v = {0};
    cb_reader *r[CB_PARTITIONS_MAX] = {0};
    cb_sub *stats = NULL;
    json_int_t redelivered = 0;
    (void)state;
    assert_true(cb_stack_kill(F.stack, "adapter1", SIGTERM));
    run_on_victim("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"sleep_ms\"}, \"input\": {\"items\": [1500, 1500, 1500, 1500, 1500, 1500, "
                  "1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, "
                  "1500, 1500]}, \"parallelism\": 20}",
                  3, &c, &v, r);
    assert_int_equal(cb_broker_subscribe(F.b, "cb.stats.adapter.adapter1", 0, redelivered_cb,
                                         &redelivered, &stats),
                     CB_OK);
    assert_true(cb_stack_restart(F.stack, "adapter1"));
    assert_true(cb_stack_kill(F.stack, "adapter0", SIGKILL));
    wait_done(&c, 120000);
    expect_status(&c, "succeeded");
    assert_int_equal(count(&c, "succeeded"), 20);
    assert_int_equal(json_array_size(json_object_get(c.done, "result")), 20);
    /* what adapter0 held (1.5 s each) was delivered again, to adapter1 */
    if (!cb_test_run_until(F.base, moved, &redelivered, WAIT_MS))
        fail_msg("adapter1 was given none of adapter0's invocations again");
    cb_sub_close(stats);
    for (unsigned k = 0; k < CB_PARTITIONS_MAX; k++)
        cb_reader_close(r[k]);
    assert_true(cb_stack_restart(F.stack, "adapter0"));
    call_cleanup(&c);
}

/* The invocations a worker says it ran to success in its last "stopped:"
 * log line; -1 without one. */
static long long succeeded_at_stop(const char *worker)
{
    FILE *f = fopen(cb_stack_log(F.stack, worker), "r");
    char line[2048];
    long long n = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, "tasks received, ");
        long long v;
        if (strstr(line, "stopped: ") && at &&
            sscanf(at, "tasks received, %lld succeeded", &v) == 1)
            n = v;
    }
    fclose(f);
    return n;
}

/* SIGTERM to a worker running invocations: it takes no more, finishes what
 * it runs within the grace period, exits 0; the job completes. (adapter0
 * alone holds the work: adapter1 is stopped first and started again after.) */
static void test_worker_sigterm_finishes_running_work(void **state)
{
    call c = {0};
    victim_watch v = {0};
    cb_reader *r[CB_PARTITIONS_MAX] = {0};
    (void)state;
    assert_true(cb_stack_kill(F.stack, "adapter1", SIGTERM));
    run_on_victim("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"sleep_ms\"}, \"input\": {\"items\": [1000, 1000, 1000, 1000, 1000, 1000, "
                  "1000, 1000]}, \"parallelism\": 8}",
                  1, &c, &v, r);
    assert_true(cb_stack_kill(F.stack, "adapter0", SIGTERM)); /* ended within 20 s */
    assert_int_equal(cb_stack_exit_status(F.stack, "adapter0"), 0);
    assert_true(cb_stack_restart(F.stack, "adapter1")); /* takes what adapter0 gave back */
    wait_done(&c, 120000);
    expect_status(&c, "succeeded");
    assert_int_equal(count(&c, "succeeded"), 8);
    /* what adapter0 started, it finished (the log cannot show a re-run on
     * adapter1: the same attempt's start has the same event id) */
    if (succeeded_at_stop("adapter0") < v.started_on_victim)
        fail_msg("adapter0 started %d invocations, finished %lld", v.started_on_victim,
                 succeeded_at_stop("adapter0"));
    for (unsigned k = 0; k < CB_PARTITIONS_MAX; k++)
        cb_reader_close(r[k]);
    assert_true(cb_stack_restart(F.stack, "adapter0"));
    call_cleanup(&c);
}

/* The engine killed with -9 mid-job and restarted: the job completes, no
 * task runs to success twice in the state. */
static void test_engine_killed_and_restarted_finishes_the_job(void **state)
{
    call c = {0};
    char t[32];
    (void)state;
    tenant_name(t, sizeof t);
    submit_running(
        &c, t,
        job_of("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
               "\"sleep_ms\"}, \"input\": {\"items\": [200, 200, 200, 200, 200, 200, 200, "
               "200, 200, 200]}, \"parallelism\": 2}"));
    assert_true(engines_kill(SIGKILL));
    assert_true(engines_restart());
    wait_done(&c, 120000);
    expect_status(&c, "succeeded");
    assert_int_equal(count(&c, "succeeded"), 10);
    assert_int_equal(json_array_size(json_object_get(c.done, "result")), 10);
    call_cleanup(&c);
}

/* The projection is no gate on a step: with the projector down, a DAG and a
 * map run to their end (the engine folds the log itself), and the projector,
 * started again, catches up. (Before the engine planned from its own fold,
 * a job the store did not have was never started.) */
static void test_jobs_run_while_the_projector_is_down(void **state)
{
    call c = {0}, m = {0};
    char t[32];
    (void)state;
    tenant_name(t, sizeof t);
    assert_true(cb_stack_kill(F.stack, "projector", SIGKILL));
    submit(&c, t,
           job_of("{\"kind\": \"dag\", \"tasks\": {"
                  "\"a\": {\"function\": {\"backend\": \"local\", \"name\": \"echo\"}, "
                  "\"input\": 5},"
                  "\"b\": {\"function\": {\"backend\": \"local\", \"name\": \"echo\"}, "
                  "\"input_from\": \"a\"}}}"));
    submit(&m, t,
           job_of("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"echo\"}, \"input\": {\"items\": [1, 2, 3, 4, 5, 6]}, \"chunksize\": 2}"));
    expect_accepted(&c);
    expect_accepted(&m);
    wait_done(&c, 30000);
    wait_done(&m, 30000);
    expect_status(&c, "succeeded");
    expect_result(&c, "{\"b\": 5}");
    expect_status(&m, "succeeded");
    expect_result(&m, "[1, 2, 3, 4, 5, 6]");
    assert_int_equal(cb_stack_exit_status(F.stack, "projector") != -1, 1); /* it was down */
    call_cleanup(&c);
    call_cleanup(&m);
}

/* After it, pass or fail, the projector runs again for the tests that follow. */
static int projector_back(void **state)
{
    (void)state;
    if (cb_stack_exit_status(F.stack, "projector") != -1 && !cb_stack_restart(F.stack, "projector"))
        return -1;
    return 0;
}

typedef struct progress_watch {
    json_int_t succeeded, goal;
} progress_watch;

static void succeeded_cb(const cb_broker_msg *m, void *ctx)
{
    progress_watch *w = ctx;
    json_t *p = json_loadb(m->data, m->len, 0, NULL);
    json_int_t n = json_integer_value(json_object_get(p, "succeeded"));
    if (n > w->succeeded)
        w->succeeded = n;
    json_decref(p);
}

static bool reached(void *arg)
{
    progress_watch *w = arg;
    return w->succeeded >= w->goal;
}

/* kill -9 the engine three times during a 10,000-task map: the job completes
 * with every output once and in order; each task ran one attempt, and the
 * invocations run again are bounded by what was in flight at the kills (the
 * stack's workers record every start: --started-after-ms 0). */
static void test_engine_killed_repeatedly_during_a_big_map(void **state)
{
    const int kills = 3, parallelism = 500, n = 10000;
    call c = {0};
    progress_watch w = {0, 0};
    cb_sub *ps = NULL;
    char t[32], subject[300];
    json_t *events, *e, *result;
    size_t i, started = 0;
    unsigned char *attempts = calloc((size_t)n, 1);
    (void)state;
    assert_non_null(attempts);
    tenant_name(t, sizeof t);
    submit(&c, t,
           job_of("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"echo\"}, \"input\": {\"range\": {\"start\": 0, \"stop\": 10000}}, "
                  "\"parallelism\": 500}"));
    expect_accepted(&c);
    snprintf(subject, sizeof subject, "cb.progress.%s.%s", t, c.job);
    assert_int_equal(cb_broker_subscribe(F.b, subject, 0, succeeded_cb, &w, &ps), CB_OK);
    for (int k = 1; k <= kills; k++) {
        w.goal = (json_int_t)n * k / (kills + 1);
        if (!cb_test_run_until(F.base, reached, &w, WAIT_MS)) {
            cb_stack_dump(F.stack);
            fail_msg("no progress to %lld before kill %d (%lld succeeded)", (long long)w.goal, k,
                     (long long)w.succeeded);
        }
        assert_true(engines_kill(SIGKILL));
        assert_true(engines_restart());
    }
    wait_done(&c, 300000);
    expect_status(&c, "succeeded");
    result = json_object_get(c.done, "result");
    assert_int_equal(json_array_size(result), (size_t)n);
    for (i = 0; i < (size_t)n; i++)
        assert_int_equal(json_integer_value(json_array_get(result, i)), (json_int_t)i);
    events = read_job_log(t, c.job);
    json_array_foreach(events, i, e)
    {
        json_t *d = json_object_get(e, "data");
        json_int_t task = json_integer_value(json_object_get(d, "task"));
        if (strcmp(json_string_value(json_object_get(e, "type")), "cb.task.started"))
            continue;
        assert_true(task >= 0 && task < n);
        assert_int_equal(json_integer_value(json_object_get(d, "attempt")), 1); /* no retries */
        attempts[task] = 1;
        started++;
    }
    for (i = 0; i < (size_t)n; i++)
        if (!attempts[i])
            fail_msg("task %zu never started", i);
    if (started > (size_t)n + (size_t)kills * parallelism)
        fail_msg("%zu starts for %d tasks: more than the %d in flight at each of %d kills", started,
                 n, parallelism, kills);
    fprintf(stderr, "engine killed %d times: %zu starts for %d tasks\n", kills, started, n);
    free(attempts);
    json_decref(events);
    cb_sub_close(ps);
    call_cleanup(&c);
}

/* Submit a map of n sleep_ms tasks of 25 ms (outputs {"ms", "i": index}),
 * 8 at a time, with an id (into job) in a partition that "engine" owns
 * while both engines live, as both work it out; returns the partition. */
static unsigned submit_slow_map_of_engine(call *c, const char *t, int n, char *job, size_t size)
{
    cb_owners o;
    json_t *items = json_array(), *spec;
    unsigned k;
    assert_int_equal(cb_owners_init(&o, "engine", 1), 0);
    assert_int_equal(cb_owners_heard(&o, "engine1", 0), 1);
    for (int x = 0;; x++) {
        snprintf(job, size, "slow%d", x);
        k = cb_partition_of(t, job, cb_test_partitions());
        if (cb_owners_mine(&o, k, cb_test_partitions()))
            break;
    }
    for (int x = 0; x < n; x++)
        json_array_append_new(items, json_pack("{s:i, s:i}", "ms", 25, "i", x));
    spec = job_of("{\"kind\": \"map\", \"function\": {\"backend\": \"local\", \"name\": "
                  "\"sleep_ms\"}, \"parallelism\": 8}");
    json_object_set_new(spec, "job_id", json_string(job));
    json_object_set_new(spec, "input", json_pack("{s:o}", "items", items));
    submit(c, t, spec);
    expect_accepted(c);
    return k;
}

/* Each output of a map of slow_map_of_engine once, in order. */
static void expect_slow_map_result(const call *c, int n)
{
    const json_t *result = json_object_get(c->done, "result");
    expect_status(c, "succeeded");
    assert_int_equal(json_array_size(result), (size_t)n);
    for (size_t i = 0; i < (size_t)n; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(result, i), "i")),
                         (json_int_t)i);
}

/* Two engines with names: SIGSTOP the one that drives a running map, so
 * that the other takes its partition (the map goes on: progress), then
 * SIGCONT it: it wakes up believing it still drives the job, and whatever
 * it appends before it reads the other's claim is ignored (docs/scale.md,
 * "Fencing"). The job ends once with every output once, and the store the
 * projector folded live equals a rebuild of the log (`cb replay --verify`):
 * the fence ignored the same events in both. One engine alone: skipped. */
static void test_a_paused_owner_s_late_decisions_are_ignored(void **state)
{
    const int n = 400;
    call c = {0};
    progress_watch w = {0, 60};
    cb_sub *ps = NULL;
    char t[32], job[64], subject[300];
    (void)state;
    if (!cb_test_two_engines())
        skip();
    tenant_name(t, sizeof t);
    submit_slow_map_of_engine(&c, t, n, job, sizeof job);
    snprintf(subject, sizeof subject, "cb.progress.%s.%s", t, c.job);
    assert_int_equal(cb_broker_subscribe(F.b, subject, 0, succeeded_cb, &w, &ps), CB_OK);
    assert_true(cb_test_run_until(F.base, reached, &w, WAIT_MS));
    assert_true(cb_stack_signal(F.stack, "engine", SIGSTOP));
    w.goal = w.succeeded + 80; /* only the other engine can make this progress */
    if (!cb_test_run_until(F.base, reached, &w, WAIT_MS)) {
        cb_stack_signal(F.stack, "engine", SIGCONT);
        cb_stack_dump(F.stack);
        fail_msg("no progress with the owner paused: its partition was not taken over");
    }
    assert_true(cb_stack_signal(F.stack, "engine", SIGCONT));
    wait_done(&c, WAIT_MS);
    expect_slow_map_result(&c, n);
    expect_store_equals_the_log(t, c.job);
    cb_sub_close(ps);
    call_cleanup(&c);
}

/* Two engines with names (CB_TEST_ENGINES=2): kill -9 the one that drives
 * a running map's partition; the other claims that partition within
 * seconds and finishes the job from the store and the log, with every
 * output exactly once and in order. The log shows the survivor's claim,
 * and the job's end is the survivor's decision. One engine alone: skipped. */
static void test_a_killed_engine_s_partitions_are_taken_over(void **state)
{
    const int n = 400;
    call c = {0};
    progress_watch w = {0, 80};
    cb_sub *ps = NULL;
    char t[32], job[64], subject[300], filter[200];
    json_t *events, *e;
    unsigned k = 0;
    size_t i, claims = 0;
    const char *end_source = NULL;
    (void)state;
    if (!cb_test_two_engines())
        skip();
    tenant_name(t, sizeof t);
    k = submit_slow_map_of_engine(&c, t, n, job, sizeof job);
    snprintf(subject, sizeof subject, "cb.progress.%s.%s", t, c.job);
    assert_int_equal(cb_broker_subscribe(F.b, subject, 0, succeeded_cb, &w, &ps), CB_OK);
    if (!cb_test_run_until(F.base, reached, &w, WAIT_MS)) {
        cb_stack_dump(F.stack);
        fail_msg("no progress to %lld (%lld succeeded)", (long long)w.goal, (long long)w.succeeded);
    }
    int64_t killed = cb_time_mono_ns();
    long before = (long)w.succeeded;
    assert_true(cb_stack_kill(F.stack, "engine", SIGKILL));
    wait_done(&c, WAIT_MS);
    expect_slow_map_result(&c, n);
    fprintf(stderr, "kill -9 of the owner after %ld of %d: the job ended %.1f s later\n", before, n,
            (double)(cb_time_mono_ns() - killed) / 1e9);
    /* the survivor's claim of the partition, in its log */
    assert_int_equal(cb_partition_subject(k, "_cb", "claims", filter, sizeof filter), 0);
    events = read_log(k, filter);
    json_array_foreach(events, i, e)
    {
        const char *who = json_string_value(json_object_get(json_object_get(e, "data"), "engine"));
        if (who && !strcmp(who, "engine1"))
            claims++;
    }
    json_decref(events);
    if (!claims)
        fail_msg("no claim of partition %u by engine1 in its log", k);
    /* the job's end was decided under that claim */
    events = read_job_log(t, c.job);
    json_array_foreach(events, i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "type")) ?: "", "cb.job.succeeded"))
            end_source = json_string_value(json_object_get(e, "source"));
    }
    if (!end_source || strncmp(end_source, "cbcore/engine/engine1.", 22) != 0)
        fail_msg("the job's end came from %s, not from engine1's claim",
                 end_source ? end_source : "nowhere");
    json_decref(events);
    assert_true(cb_stack_restart(F.stack, "engine")); /* it takes its partitions back */
    cb_sub_close(ps);
    call_cleanup(&c);
}

/* ---- fire-and-forget submissions ------------------------------------------------ */

static bool two_put(void *arg)
{
    return ((cb_test_confirms *)arg)->n == 2;
}

typedef struct verdict_watch {
    json_t *last;
} verdict_watch;

static void verdict_cb(const cb_broker_msg *m, void *ctx)
{
    verdict_watch *v = ctx;
    json_t *o = json_loadb(m->data, m->len, 0, NULL);
    if (json_object_get(o, "accepted")) { /* the verdict, not task progress */
        json_decref(v->last);
        v->last = o;
    } else {
        json_decref(o);
    }
}

static bool has_verdict(void *arg)
{
    return ((verdict_watch *)arg)->last != NULL;
}

/* Jobs published on cb.enqueue.<tenant> while no engine runs are kept; the
 * engine takes them when it comes back: the good one runs (its verdict on the
 * progress topic, its result on the done topic), the bad one is rejected on
 * its done topic with the reason. */
static void test_enqueued_jobs_wait_for_the_engine(void **state)
{
    call good = {0}, bad = {0};
    cb_test_confirms pw = {0};
    verdict_watch v = {0};
    cb_sub *vs = NULL;
    char t[32], subject[300], *text;
    json_t *job;
    (void)state;
    tenant_name(t, sizeof t);
    snprintf(good.tenant, sizeof good.tenant, "%s", t);
    snprintf(good.job, sizeof good.job, "q-good");
    snprintf(bad.tenant, sizeof bad.tenant, "%s", t);
    snprintf(bad.job, sizeof bad.job, "q-bad");
    listen_done(&good);
    listen_done(&bad);
    snprintf(subject, sizeof subject, "cb.progress.%s.q-good", t);
    assert_int_equal(cb_broker_subscribe(F.b, subject, 0, verdict_cb, &v, &vs), CB_OK);
    assert_true(engines_kill(SIGTERM));

    snprintf(subject, sizeof subject, "cb.enqueue.%s", t);
    job = job_of("{\"job_id\": \"q-good\", \"kind\": \"map\", \"function\": {\"backend\": "
                 "\"local\", \"name\": \"add7\"}, \"input\": {\"items\": [1, 2, 3]}}");
    json_object_set_new(job, "tenant", json_string(t));
    text = json_dumps(job, JSON_COMPACT);
    assert_int_equal(
        cb_broker_put(F.b, subject, "q-good", text, strlen(text), cb_test_confirm_cb, &pw), CB_OK);
    free(text);
    json_decref(job);
    job = job_of("{\"job_id\": \"q-bad\", \"kind\": \"call\", \"function\": {\"backend\": "
                 "\"local\", \"name\": \"no_such_function\"}, \"input\": 1}");
    json_object_set_new(job, "tenant", json_string(t));
    text = json_dumps(job, JSON_COMPACT);
    assert_int_equal(
        cb_broker_put(F.b, subject, "q-bad", text, strlen(text), cb_test_confirm_cb, &pw), CB_OK);
    free(text);
    json_decref(job);
    assert_true(cb_test_run_until(F.base, two_put, &pw, 30000));
    assert_int_equal(pw.failed, 0); /* stored by the broker: nobody has taken them yet */

    assert_true(engines_restart());
    wait_done(&good, WAIT_MS);
    expect_status(&good, "succeeded");
    json_t *want = json_pack("[i,i,i]", 8, 9, 10);
    assert_true(json_equal(json_object_get(good.done, "result"), want));
    json_decref(want);
    assert_true(cb_test_run_until(F.base, has_verdict, &v, 30000));
    assert_string_equal(json_string_value(json_object_get(v.last, "status")), "accepted");
    wait_done(&bad, WAIT_MS);
    expect_status(&bad, "rejected");
    assert_non_null(
        strstr(json_string_value(json_array_get(json_object_get(bad.done, "errors"), 0)),
               "no_such_function"));
    json_decref(v.last);
    cb_sub_close(vs);
    call_cleanup(&good);
    call_cleanup(&bad);
}

/* ---- jobs competing for a narrow backend ------------------------------------------ */

static const char *job_of_event(const json_t *e)
{
    return json_string_value(json_object_get(e, "cbjob"));
}

/* A low-priority job holds the backend; a high-priority job arrives: every
 * slot that frees goes to it until it has dispatched all its tasks, then the
 * first job gets the backend back and finishes too. */
static void test_priority_takes_the_backend_first_and_nobody_starves(void **state)
{
    call lo = {0}, hi = {0};
    json_t *lo_job, *hi_job;
    char hi_id[32];
    started_watch w = {0};
    cb_sub *ps = NULL;
    char t[32], subject[300];
    json_t *events, *e;
    size_t i;
    long hi_started = -1, last_hi = -1, first_lo = -1, lo_between = 0;
    (void)state;
    tenant_name(t, sizeof t);
    /* listening before the submission: the first "running" notice is not
     * kept, and came before a subscription made after it now and then */
    snprintf(subject, sizeof subject, "cb.progress.%s.>", t);
    assert_int_equal(cb_broker_subscribe(F.b, subject, 0, progress_cb, &w, &ps), CB_OK);
    /* Ranks are kept between the jobs one engine drives: on a partitioned
     * run (docs/scale.md) the two jobs are named into one partition */
    lo_job = job_of("{\"job_id\": \"lo\", \"kind\": \"map\", \"priority\": 0, \"function\": "
                    "{\"backend\": \"local\", \"name\": \"sleep_ms\"}, \"input\": {\"items\": "
                    "[400, 400, 400, 400, 400, 400, 400, 400]}}");
    for (int n = 0;; n++) {
        snprintf(hi_id, sizeof hi_id, "hi%d", n);
        if (cb_partition_of(t, hi_id, cb_test_partitions()) ==
            cb_partition_of(t, "lo", cb_test_partitions()))
            break;
    }
    submit(&lo, t, lo_job);
    expect_accepted(&lo);
    assert_true(cb_test_run_until(F.base, running, &w, WAIT_MS));
    cb_sub_close(ps);
    hi_job =
        job_of("{\"kind\": \"map\", \"priority\": 5, \"function\": {\"backend\": \"local\", "
               "\"name\": \"sleep_ms\"}, \"input\": {\"items\": [100, 100, 100, 100, 100, 100]}}");
    json_object_set_new(hi_job, "job_id", json_string(hi_id));
    submit(&hi, t, hi_job);
    expect_accepted(&hi);
    wait_done(&hi, WAIT_MS);
    expect_status(&hi, "succeeded");
    wait_done(&lo, WAIT_MS);
    expect_status(&lo, "succeeded");
    assert_int_equal(json_array_size(json_object_get(lo.done, "result")), 8);

    events = read_tenant_log(t);
    json_array_foreach(events, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type")) ?: "";
        bool is_hi = !strcmp(job_of_event(e), hi.job);
        if (is_hi && !strcmp(type, "cb.job.started"))
            hi_started = (long)i;
        if (strcmp(type, "cb.tasks.dispatched"))
            continue;
        if (is_hi)
            last_hi = (long)i;
        else if (first_lo < 0)
            first_lo = (long)i;
    }
    /* The low job's tasks run 400 ms, the high one plans within a few: every
     * slot that frees after the high job started must go to it. */
    json_array_foreach(events, i, e)
    {
        if ((long)i > hi_started && (long)i < last_hi && !strcmp(job_of_event(e), lo.job) &&
            !strcmp(json_string_value(json_object_get(e, "type")) ?: "", "cb.tasks.dispatched"))
            lo_between++;
    }
    if (getenv("CB_TEST_VERBOSE"))
        json_array_foreach(events, i, e)
            fprintf(stderr, "%s %s %s\n", !strcmp(job_of_event(e), hi.job) ? "HI" : "lo",
                    json_string_value(json_object_get(e, "type")),
                    json_dumps(json_object_get(json_object_get(e, "data"), "tasks"), JSON_COMPACT));
    assert_true(first_lo >= 0 && first_lo < hi_started); /* the low one held the backend first */
    assert_true(hi_started < last_hi);
    if (lo_between)
        fail_msg("the low-priority job dispatched %ld times while the high one waited", lo_between);
    json_decref(events);
    call_cleanup(&lo);
    call_cleanup(&hi);
}

int main(void)
{
    const char *driver = getenv("CB_TEST_DRIVER");
    char name[64];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_reduce_python_add7_sum),
        cmocka_unit_test(test_call_and_map_over_a_range_keep_item_order),
        cmocka_unit_test(test_dag_passes_outputs_along_its_edges),
        cmocka_unit_test(test_dag_foreach_and_when),
        cmocka_unit_test(test_a_cached_job_reuses_earlier_outputs),
        cmocka_unit_test(test_cached_steps_are_found_in_the_store_after_a_restart),
        cmocka_unit_test(test_retry_runs_again_only_what_did_not_succeed),
        cmocka_unit_test(test_costs_add_up_across_tasks_jobs_and_tenants),
        cmocka_unit_test(test_a_budget_stops_dispatching),
        cmocka_unit_test(test_a_straggler_s_backup_ends_the_job_early),
        cmocka_unit_test(test_failures_are_retried_then_succeed),
        cmocka_unit_test(test_tolerated_losses_keep_the_outputs_that_exist),
        cmocka_unit_test(test_the_reduce_has_its_own_timeout),
        cmocka_unit_test(test_retries_exhausted_fail_the_job_with_the_reason),
        cmocka_unit_test(test_runtime_killed_mid_invocation_is_retried),
        cmocka_unit_test(test_timeout_kills_the_function_and_fails_the_job),
        cmocka_unit_test(test_bad_jobs_are_rejected_with_reasons_and_a_done_message),
        cmocka_unit_test(test_same_job_id_is_idempotent_and_a_different_body_conflicts),
        cmocka_unit_test(test_cancel_ends_a_running_job),
        cmocka_unit_test(test_suspend_stops_dispatch_until_resumed),
        cmocka_unit_test(test_a_report_without_its_dispatch_stands_for_it),
        cmocka_unit_test(test_late_subscriber_gets_the_done_message),
        cmocka_unit_test(test_a_big_plan_shares_invocation_commands),
        cmocka_unit_test(test_shared_commands_keep_each_tasks_outcome),
        cmocka_unit_test(test_a_busy_backend_takes_a_small_plan_in_one_command),
        cmocka_unit_test(test_successes_of_a_command_share_an_event),
        cmocka_unit_test(test_ten_thousand_invocations_complete_exactly_once),
        cmocka_unit_test(test_worker_killed_mid_batch_work_moves_to_the_other),
        cmocka_unit_test(test_worker_sigterm_finishes_running_work),
        cmocka_unit_test(test_engine_killed_and_restarted_finishes_the_job),
        cmocka_unit_test_teardown(test_jobs_run_while_the_projector_is_down, projector_back),
        cmocka_unit_test(test_engine_killed_repeatedly_during_a_big_map),
        cmocka_unit_test(test_a_killed_engine_s_partitions_are_taken_over),
        cmocka_unit_test(test_a_paused_owner_s_late_decisions_are_ignored),
        cmocka_unit_test(test_enqueued_jobs_wait_for_the_engine),
    };
    if (getenv("CB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CB_TEST_FILTER"));
    const struct CMUnitTest narrow[] = {
        cmocka_unit_test(test_priority_takes_the_backend_first_and_nobody_starves),
    };
    const struct CMUnitTest capped[] = {
        cmocka_unit_test(test_an_adapter_runs_at_most_its_concurrency),
    };
    int failed;
    snprintf(name, sizeof name, "engine[%s]", driver ? driver : "?");
    failed = cmocka_run_group_tests_name(name, tests, group_setup, group_teardown);
    snprintf(name, sizeof name, "engine-narrow-backend[%s]", driver ? driver : "?");
    failed += cmocka_run_group_tests_name(name, narrow, narrow_setup, group_teardown);
    snprintf(name, sizeof name, "engine-capped-adapter[%s]", driver ? driver : "?");
    failed += cmocka_run_group_tests_name(name, capped, capped_setup, group_teardown);
    remove_markers();
    return failed;
}
