/* tests/test_fold_fuzz.c - the fold under random but valid event sequences:
 * several jobs, every event type the engine and the adapters append,
 * duplicates (at-least-once delivery), reorderings within a job (events of
 * different writers race), late reports of old attempts. For each sequence:
 *
 *   - "live": folded through the store in batches of random sizes, with
 *     random crashes (a batch aborted, as kill -9 of the projector leaves
 *     it) after which folding resumes at applied_seq + 1, as a restart does;
 *   - "rebuild": the same log folded in one batch into a fresh store.
 *
 * The fold must never crash or fail (only CB_OK), and the two stores' digests
 * must be equal: the state is a function of the log, not of how it was
 * batched or how often the projector died. CB_FOLD_FUZZ_SEED=N reproduces a
 * run; CB_FOLD_FUZZ_RUNS=N runs more. */
#define _GNU_SOURCE
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cb_event.h"
#include "migrate.h"
#include "store.h"
#include "views.h"

#define MAX_EVENTS 400

typedef struct gen {
    uint64_t rng;
    cb_event ev[MAX_EVENTS];
    size_t n;
    int64_t clock;
} gen;

static uint32_t rnd(gen *g, uint32_t n)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return n ? (uint32_t)(g->rng % n) : 0;
}

static void add(gen *g, const char *job, cb_event_type type, json_t *data)
{
    char id[96];
    if (g->n >= MAX_EVENTS || !data) {
        json_decref(data);
        return;
    }
    g->clock += 1000000;
    snprintf(id, sizeof id, "acme/%s/%zu", job, g->n);
    assert_int_equal(cb_event_init(&g->ev[g->n], type, "acme", job, id, "fuzz", g->clock, data),
                     CB_OK);
    g->n++;
}

/* One job's life: submitted, started, dispatches, outcomes of several
 * attempts, retries, timeouts, suspensions, perhaps a cancel, an end. */
static void job_life(gen *g, const char *job)
{
    uint32_t tasks = 1 + rnd(g, 6);
    const char *kind = rnd(g, 2) ? "map" : "call";
    add(g, job, CB_EV_JOB_SUBMITTED,
        json_pack("{s:{s:s, s:s, s:i}, s:s}", "job", "tenant", "acme", "kind", kind, "timeout_ms",
                  60000, "digest", "d"));
    add(g, job, CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", tasks));
    for (uint32_t t = 0; t < tasks; t++) {
        uint32_t attempts = 1 + rnd(g, 3);
        for (uint32_t a = 1; a <= attempts; a++) {
            add(g, job, CB_EV_TASKS_DISPATCHED,
                json_pack("{s:[{s:i, s:i}]}", "tasks", "task", t, "attempt", a));
            if (rnd(g, 3))
                add(g, job, CB_EV_TASK_STARTED,
                    json_pack("{s:i, s:i, s:s}", "task", t, "attempt", a, "worker", "w1"));
            if (a < attempts) {
                if (rnd(g, 2))
                    add(g, job, CB_EV_TASK_FAILED,
                        json_pack("{s:i, s:i, s:s, s:s}", "task", t, "attempt", a, "error", "boom",
                                  "reason", "exit"));
                else
                    add(g, job, CB_EV_TASK_TIMED_OUT,
                        json_pack("{s:i, s:i}", "task", t, "attempt", a));
                add(g, job, CB_EV_TASK_RETRY_SCHEDULED,
                    json_pack("{s:i, s:i, s:s, s:i}", "task", t, "attempt", a + 1, "at",
                              "2026-12-01T00:00:00Z", "delay_ms", 10));
            } else if (rnd(g, 5)) {
                add(g, job, CB_EV_TASK_SUCCEEDED,
                    json_pack("{s:i, s:i, s:[i]}", "task", t, "attempt", a, "output", t * 10 + a));
            } else {
                add(g, job, CB_EV_TASK_FAILED,
                    json_pack("{s:i, s:i, s:s, s:s}", "task", t, "attempt", a, "error", "last",
                              "reason", "exit"));
            }
            if (!rnd(g, 8)) /* a late report of an earlier attempt */
                add(g, job, CB_EV_TASK_SUCCEEDED,
                    json_pack("{s:i, s:i, s:[s]}", "task", t, "attempt", a > 1 ? a - 1 : a,
                              "output", "late"));
        }
        if (!rnd(g, 10)) {
            add(g, job, CB_EV_JOB_SUSPENDED, json_object());
            add(g, job, CB_EV_JOB_RESUMED, json_object());
        }
    }
    switch (rnd(g, 4)) {
    case 0:
        add(g, job, CB_EV_JOB_CANCEL_REQUESTED, json_object());
        add(g, job, CB_EV_JOB_CANCELLED, json_object());
        break;
    case 1:
        add(g, job, CB_EV_JOB_FAILED, json_pack("{s:s}", "error", "task 0 failed"));
        break;
    case 2:
        add(g, job, CB_EV_JOB_SUCCEEDED, json_pack("{s:[i]}", "result", 1));
        break;
    default: /* still running */
        break;
    }
}

static void swap(gen *g, size_t a, size_t b)
{
    cb_event t = g->ev[a];
    g->ev[a] = g->ev[b];
    g->ev[b] = t;
}

/* Interleave the jobs' lives, reorder neighbours of one job, duplicate some. */
static void generate(gen *g)
{
    size_t base = 0;
    int jobs = 1 + (int)rnd(g, 4);
    for (int k = 0; k < jobs; k++) {
        char job[16];
        snprintf(job, sizeof job, "j%d", k);
        job_life(g, job);
    }
    for (size_t i = 0; i + 1 < g->n; i++) /* a job's events racing each other */
        if (!rnd(g, 6) && !strcmp(g->ev[i].job, g->ev[i + 1].job))
            swap(g, i, i + 1);
    for (size_t i = 0; i + 1 < g->n; i++) /* jobs interleaved */
        if (!rnd(g, 3) && strcmp(g->ev[i].job, g->ev[i + 1].job))
            swap(g, i, i + 1);
    for (size_t d = rnd(g, 8); d > 0 && g->n < MAX_EVENTS; d--) { /* redeliveries */
        size_t i = base + rnd(g, (uint32_t)(g->n - base));
        json_t *data = json_deep_copy(g->ev[i].data);
        char id[96];
        snprintf(id, sizeof id, "%s", g->ev[i].id);
        g->clock += 1000000;
        assert_int_equal(cb_event_init(&g->ev[g->n], g->ev[i].type, "acme", g->ev[i].job, id,
                                       "fuzz", g->ev[i].time_ns, data),
                         CB_OK);
        g->n++;
    }
}

static void gen_cleanup(gen *g)
{
    for (size_t i = 0; i < g->n; i++)
        cb_event_cleanup(&g->ev[i]);
    g->n = 0;
}

static cb_store *fresh_store(char *dir, size_t n)
{
    cb_store *st = NULL;
    snprintf(dir, n, "/tmp/cbfoldfuzz.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(cb_store_open(dir, 0, CB_STORE_NOSYNC, &st), CB_OK);
    assert_int_equal(cb_store_migrate(st), CB_OK);
    return st;
}

static void drop_store(cb_store *st, const char *dir)
{
    char cmd[128];
    cb_store_close(st);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void fold_range(cb_batch *b, const gen *g, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        int applied;
        cb_status s = cb_batch_apply(b, &g->ev[i], i + 1, &applied);
        if (s != CB_OK && s != CB_EINVAL)
            fail_msg("event %zu (%s) : %s", i, cb_event_type_name(g->ev[i].type), cb_strerror(s));
    }
}

/* Live: random batches, random crashes, resume at applied_seq + 1. */
static int fold_live(cb_store *st, gen *g)
{
    size_t next = 0;
    int crashes = 0;
    while (next < g->n) {
        size_t len = 1 + rnd(g, 40), to = next + len > g->n ? g->n : next + len;
        cb_batch *b = NULL;
        uint64_t applied = 0;
        assert_int_equal(cb_batch_begin(st, &b), CB_OK);
        fold_range(b, g, next, to);
        if (!rnd(g, 5)) { /* killed before the commit: nothing of it stays */
            cb_batch_abort(b);
            crashes++;
        } else {
            assert_int_equal(cb_batch_commit(b, to), CB_OK);
        }
        assert_int_equal(cb_view_applied_seq(st, &applied), CB_OK);
        next = (size_t)applied; /* events are numbered from 1 */
    }
    return crashes;
}

static void rebuild(cb_store *st, const gen *g)
{
    cb_batch *b = NULL;
    assert_int_equal(cb_batch_begin(st, &b), CB_OK);
    fold_range(b, g, 0, g->n);
    assert_int_equal(cb_batch_commit(b, g->n), CB_OK);
}

static void random_logs_fold_to_one_state(void **state)
{
    const char *seed_env = getenv("CB_FOLD_FUZZ_SEED"), *runs_env = getenv("CB_FOLD_FUZZ_RUNS");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 0x5eedcb01ULL;
    int runs = runs_env ? atoi(runs_env) : 150, crashes = 0;
    size_t events = 0;
    (void)state;
    for (int r = 0; r < runs; r++) {
        gen g = {.rng = seed + (uint64_t)r * 0x9e3779b97f4a7c15ULL, .clock = 1795752142000000000LL};
        char da[64], db[64], live_hex[65], rebuilt_hex[65], diff[600];
        cb_store *a, *b;
        if (!g.rng)
            g.rng = 1;
        generate(&g);
        events += g.n;
        a = fresh_store(da, sizeof da);
        b = fresh_store(db, sizeof db);
        crashes += fold_live(a, &g);
        rebuild(b, &g);
        assert_int_equal(cb_view_digest(a, live_hex, NULL), CB_OK);
        assert_int_equal(cb_view_digest(b, rebuilt_hex, NULL), CB_OK);
        if (strcmp(live_hex, rebuilt_hex)) {
            assert_int_equal(cb_view_first_difference(a, b, diff, sizeof diff), CB_OK);
            fail_msg("seed %llu run %d: live and rebuilt stores differ: %s",
                     (unsigned long long)seed, r, diff);
        }
        drop_store(a, da);
        drop_store(b, db);
        gen_cleanup(&g);
    }
    print_message("fold fuzz: %d logs, %zu events, %d crashes, one state each\n", runs, events,
                  crashes);
    assert_true(crashes > 0); /* the crash path was exercised */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_logs_fold_to_one_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
