/* tests/cb_test.c - loop helpers shared by the tests. */
#include "cb_test.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker.h"
#include "cb_loop.h"
#include "cb_schema.h"
#include "cb_time.h"

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg; /* only wakes the loop at the deadline */
}

bool cb_test_run_until(struct event_base *base, cb_test_pred *pred, void *arg, long timeout_ms)
{
    int64_t deadline = cb_time_mono_ns() + (int64_t)timeout_ms * 1000000;
    struct event *guard = evtimer_new(base, guard_cb, NULL);
    bool ok = true;

    while (!pred(arg)) {
        int64_t left = deadline - cb_time_mono_ns();
        struct timeval tv;
        if (left <= 0) {
            ok = false;
            break;
        }
        /* armed for what is left at every turn: a guard that fired a hair
         * before the deadline (libevent's clock is not ours) would leave
         * the next turn waiting for whatever event comes */
        left = (left + 999) / 1000; /* µs */
        tv.tv_sec = (time_t)(left / 1000000);
        tv.tv_usec = (suseconds_t)(left % 1000000);
        evtimer_add(guard, &tv);
        if (event_base_loop(base, EVLOOP_ONCE) < 0) {
            /* the loop cannot run: a failed assertion jumped out of one of
             * its callbacks and left it marked running. Each later turn
             * would fail at once with a warning, spinning to the deadline
             * (a run of such turns wrote 31 GB of warnings): give up now */
            fprintf(stderr, "cb_test_run_until: the event loop cannot run (a test failed "
                            "inside one of its callbacks)\n");
            ok = false;
            break;
        }
    }
    event_free(guard);
    return ok;
}

bool cb_test_poll_until(struct event_base *base, cb_test_pred *pred, void *arg, long timeout_ms,
                        long interval_ms)
{
    struct timeval tv = {interval_ms / 1000, (interval_ms % 1000) * 1000};
    struct event *tick = event_new(base, -1, EV_PERSIST, guard_cb, NULL);
    bool ok;
    event_add(tick, &tv);
    ok = cb_test_run_until(base, pred, arg, timeout_ms);
    event_free(tick);
    return ok;
}

struct event_base *cb_test_base(void)
{
    return cb_loop_new();
}

const char *cb_test_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "%s not set: skipping\n", name);
        skip();
    }
    return v;
}

unsigned cb_test_partitions(void)
{
    const char *v = getenv("CB_TEST_PARTITIONS");
    int n = v ? atoi(v) : 1;
    return n > 1 ? (unsigned)n : 1;
}

bool cb_test_two_engines(void)
{
    const char *v = getenv("CB_TEST_ENGINES");
    return cb_test_partitions() > 1 && v && atoi(v) == 2;
}

void cb_test_unique(char *buf, size_t size, const char *prefix)
{
    static unsigned counter;
    snprintf(buf, size, "%s%ld%lld%u", prefix, (long)getpid(),
             (long long)(cb_time_now_ns() / 1000 % 1000000000), ++counter);
}

void cb_test_confirm_cb(cb_status s, uint64_t seq, int dup, void *ctx)
{
    cb_test_confirms *c = ctx;
    (void)seq;
    (void)dup;
    c->n++;
    c->last = s;
    if (s != CB_OK)
        c->failed++;
}

bool cb_test_confirmed(void *confirms)
{
    return ((cb_test_confirms *)confirms)->n > 0;
}

void cb_test_expect_json(json_t *got, const char *want)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    bool same = w && got && json_equal(got, w);
    char msg[512];
    snprintf(msg, sizeof msg, "got %.240s, want %.240s", g ? g : "NULL", want);
    json_decref(w);
    json_decref(got);
    free(g);
    if (!same)
        fail_msg("%s", msg);
}

static cb_schema *schemas;

static void free_schemas(void)
{
    cb_schema_free(schemas);
}

const cb_schema *cb_test_schemas(void)
{
    char err[256];
    if (!schemas) {
        if (cb_schema_load_dir(cb_schema_default_dir(), &schemas, err, sizeof err) != CB_OK)
            fail_msg("schemas: %s", err);
        atexit(free_schemas);
    }
    return schemas;
}
