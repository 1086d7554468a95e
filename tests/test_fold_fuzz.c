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
 * batched or how often the projector died.
 *
 * The engine's mirror (engine/mirror.h) folds the same logs in memory,
 * starting from a snapshot of a store cut at a random position as a
 * restarted engine does: every job it holds must equal the rebuilt store's,
 * record for record. CB_FOLD_FUZZ_SEED=N reproduces a run;
 * CB_FOLD_FUZZ_RUNS=N runs more. */
#define _GNU_SOURCE
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cb_event.h"
#include "migrate.h"
#include "mirror.h"
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
    if (!strcmp(kind, "map") && rnd(g, 2)) { /* an objects input: its plan's pages */
        uint32_t pages = 1 + rnd(g, 3);
        for (uint32_t p = 0; p < pages; p++)
            add(g, job, CB_EV_JOB_PARTITIONED,
                json_pack("{s:i, s:b, s:[{s:s, s:s, s:i, s:i}]}", "page", p, "last", p + 1 == pages,
                          "objects", "url", p ? "s3://b/k2" : "s3://b/k1", "etag", "e", "size",
                          (int)(100 * p), "chunk", 64));
    }
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
        cb_status s = cb_batch_apply(b, 0, &g->ev[i], i + 1, &applied);
        if (s != CB_OK && s != CB_EINVAL)
            fail_msg("event %zu (%s) : %s", i, cb_event_type_name(g->ev[i].type), cb_strerror(s));
    }
}

/* Live: random batches, random crashes, resume at applied_seq + 1; the
 * batches keep jobs between them in `keep` (NULL: none). *kept: the most
 * jobs keep held after a commit. */
static int fold_live(cb_store *st, cb_batch_keep *keep, gen *g, size_t *kept)
{
    size_t next = 0;
    int crashes = 0;
    while (next < g->n) {
        size_t len = 1 + rnd(g, 40), to = next + len > g->n ? g->n : next + len;
        cb_batch *b = NULL;
        uint64_t applied = 0;
        assert_int_equal(cb_batch_begin(st, keep, &b), CB_OK);
        fold_range(b, g, next, to);
        if (!rnd(g, 5)) { /* killed before the commit: nothing of it stays */
            cb_batch_abort(b);
            crashes++;
        } else {
            assert_int_equal(cb_batch_commit(b, to), CB_OK);
            if (cb_batch_keep_jobs(keep) > *kept)
                *kept = cb_batch_keep_jobs(keep);
        }
        assert_int_equal(cb_view_applied_seq(st, 0, &applied), CB_OK);
        next = (size_t)applied; /* events are numbered from 1 */
    }
    return crashes;
}

static void rebuild(cb_store *st, const gen *g)
{
    cb_batch *b = NULL;
    assert_int_equal(cb_batch_begin(st, NULL, &b), CB_OK);
    fold_range(b, g, 0, g->n);
    assert_int_equal(cb_batch_commit(b, g->n), CB_OK);
}

static void random_logs_fold_to_one_state(void **state)
{
    const char *seed_env = getenv("CB_FOLD_FUZZ_SEED"), *runs_env = getenv("CB_FOLD_FUZZ_RUNS");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 0x5eedcb01ULL;
    int runs = runs_env ? atoi(runs_env) : 150, crashes = 0;
    size_t events = 0, kept = 0;
    (void)state;
    for (int r = 0; r < runs; r++) {
        gen g = {.rng = seed + (uint64_t)r * 0x9e3779b97f4a7c15ULL, .clock = 1795752142000000000LL};
        char da[64], db[64], live_hex[65], rebuilt_hex[65], diff[600];
        cb_store *a, *b;
        /* kept between batches, or not; few jobs or small records: the oldest go */
        cb_batch_keep *keep =
            r % 4 == 3 ? NULL : cb_batch_keep_new(1 + (size_t)r % 3, r % 4 == 2 ? 2048 : 1 << 20);
        if (!g.rng)
            g.rng = 1;
        generate(&g);
        events += g.n;
        a = fresh_store(da, sizeof da);
        b = fresh_store(db, sizeof db);
        crashes += fold_live(a, keep, &g, &kept);
        cb_batch_keep_free(keep);
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
    assert_true(kept > 1);    /* and the keep */
}

/* ---- the mirror -------------------------------------------------------- */

static int snap_job(const char *key, cb_job_state *js, void *arg)
{
    void **a = arg;
    snprintf(a[1], CB_MIRROR_KEY_MAX, "%s", key);
    return cb_mirror_load_job(a[0], key, js) != CB_OK;
}

static int snap_task(uint32_t index, const cb_task_state *t, void *arg)
{
    void **a = arg;
    return cb_mirror_load_task(a[0], a[1], index, t) != CB_OK;
}

typedef struct cmp_ctx {
    cb_store *st;
    const cb_mirror_job *mj;
    size_t i;
    const char *why;
} cmp_ctx;

static int cmp_task(uint32_t index, const cb_task_state *t, void *arg)
{
    cmp_ctx *c = arg;
    json_t *a, *b;
    int same;
    if (c->i >= c->mj->tasks.n || c->mj->tasks.index[c->i] != index) {
        c->why = "a record the store has is missing";
        return 1;
    }
    a = cb_task_state_to_json(t);
    b = cb_task_state_to_json(&c->mj->tasks.tasks[c->i++]);
    same = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    if (!same)
        c->why = "a record differs";
    return !same;
}

static void cmp_job(cb_mirror_job *mj, void *arg)
{
    cmp_ctx *c = arg;
    cb_job_state js;
    json_t *a, *b;
    cb_task_view v;
    if (c->why)
        return;
    memset(&js, 0, sizeof js);
    if (cb_view_job(c->st, mj->key, &js) != CB_OK) {
        c->why = "a job the store does not have";
        return;
    }
    a = cb_job_state_to_json(&js);
    b = cb_job_state_to_json(&mj->js);
    if (!json_equal(a, b)) {
        c->why = "a job's state differs";
        if (getenv("CB_FOLD_FUZZ_SHOW")) { /* what differs, to debug a failure */
            char *ta = json_dumps(a, JSON_SORT_KEYS), *tb = json_dumps(b, JSON_SORT_KEYS);
            fprintf(stderr, "store:  %s\nmirror: %s\n", ta, tb);
            free(ta);
            free(tb);
        }
    }
    json_decref(a);
    json_decref(b);
    cb_job_state_cleanup(&js);
    c->mj = mj;
    c->i = 0;
    if (!c->why && cb_view_job_tasks(c->st, mj->key, cmp_task, c) != CB_OK)
        c->why = "cannot read the store's records";
    if (!c->why && c->i != mj->tasks.n)
        c->why = "a record the store does not have";
    /* the open view leaves out only records that ended well */
    v = cb_mirror_open_view(mj);
    for (size_t k = 0; !c->why && k < mj->tasks.n - v.n; k++)
        if (mj->tasks.tasks[k].status != CB_TASK_SUCCEEDED &&
            mj->tasks.tasks[k].status != CB_TASK_SKIPPED)
            c->why = "the open view leaves out an open record";
}

/* As the engine answers it: the store (cut at the snapshot) knows the job
 * from an earlier position. */
static bool seen_in(const char *key, uint64_t seq, void *arg)
{
    cb_job_state js;
    bool seen;
    memset(&js, 0, sizeof js);
    if (cb_view_job(arg, key, &js) != CB_OK)
        return false;
    seen = js.first_seq && js.first_seq < seq;
    cb_job_state_cleanup(&js);
    return seen;
}

static int count_unfinished(const char *key, int64_t deadline_ns, void *arg)
{
    (void)key;
    (void)deadline_ns;
    (*(size_t *)arg)++;
    return 0;
}

static void mirror_from_a_snapshot_equals_the_store(void **state)
{
    const char *seed_env = getenv("CB_FOLD_FUZZ_SEED"), *runs_env = getenv("CB_FOLD_FUZZ_RUNS");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 0x5eedcb02ULL;
    int runs = runs_env ? atoi(runs_env) : 150;
    size_t held = 0;
    (void)state;
    for (int r = 0; r < runs; r++) {
        gen g = {.rng = seed + (uint64_t)r * 0x9e3779b97f4a7c15ULL, .clock = 1795752142000000000LL};
        char da[64], db[64], loading[CB_MIRROR_KEY_MAX];
        cb_store *a, *b;
        cb_batch *bt = NULL;
        cb_mirror *m = cb_mirror_new();
        void *arg[2] = {m, loading};
        uint64_t seq = 0;
        size_t cut, unfinished = 0;
        cmp_ctx c = {0};
        if (!g.rng)
            g.rng = 1;
        generate(&g);
        cut = rnd(&g, (uint32_t)g.n + 1);
        a = fresh_store(da, sizeof da);
        b = fresh_store(db, sizeof db);
        assert_int_equal(cb_batch_begin(a, NULL, &bt), CB_OK);
        fold_range(bt, &g, 0, cut);
        assert_int_equal(cb_batch_commit(bt, cut), CB_OK);
        assert_non_null(m);
        assert_int_equal(cb_view_active_snapshot(a, 0, snap_job, snap_task, arg, &seq, NULL),
                         CB_OK);
        assert_int_equal(seq, cut);
        cb_mirror_set_seq(m, 0, seq);
        cb_mirror_set_seen(m, seen_in, a);
        for (size_t i = cut; i < g.n; i++) {
            cb_mirror_job *mj;
            int applied;
            assert_int_equal(cb_mirror_apply(m, 0, &g.ev[i], i + 1, &mj, &applied), CB_OK);
        }
        assert_int_equal(cb_mirror_seq(m, 0), g.n);
        rebuild(b, &g);
        c.st = b;
        cb_mirror_each(m, cmp_job, &c);
        if (c.why)
            fail_msg("seed %llu run %d (cut at %zu of %zu): %s", (unsigned long long)seed, r, cut,
                     g.n, c.why);
        /* every job the store has unfinished, the mirror holds */
        assert_int_equal(cb_view_active(b, count_unfinished, &unfinished), CB_OK);
        assert_true(cb_mirror_count(m) >= unfinished);
        held += cb_mirror_count(m);
        cb_mirror_free(m);
        drop_store(a, da);
        drop_store(b, db);
        gen_cleanup(&g);
    }
    print_message("mirror: %d logs, %zu jobs held, each equal to the store's\n", runs, held);
    assert_true(held > 0);
}

/* A job the controller dropped stays dropped: its later events and a
 * repeat of its submission are not a new job; it is known as it ended. */
static void mirror_forgets_a_dropped_job_for_good(void **state)
{
    gen g = {.rng = 7, .clock = 1795752142000000000LL};
    cb_mirror *m = cb_mirror_new();
    cb_mirror_job *mj = NULL;
    int applied;
    (void)state;
    assert_non_null(m);
    add(&g, "j1", CB_EV_JOB_SUBMITTED,
        json_pack("{s:{s:s, s:s, s:{s:s}, s:{s:[i]}}, s:s}", "job", "job_id", "j1", "kind", "call",
                  "function", "name", "noop", "input", "items", 1, "digest", "d1"));
    add(&g, "other", CB_EV_JOB_STARTED, json_pack("{s:i}", "tasks", 1));
    assert_int_equal(cb_mirror_apply(m, 0, &g.ev[0], 1, &mj, &applied), CB_OK);
    assert_non_null(mj);
    assert_int_equal(applied, 1);
    assert_int_equal(cb_mirror_status(m, "acme/j1"), CB_JOB_SUBMITTED);
    assert_int_equal(cb_mirror_apply(m, 0, &g.ev[1], 2, &mj, &applied), CB_OK);
    assert_null(mj); /* not a job it holds */
    cb_mirror_drop(m, "acme/j1");
    assert_null(cb_mirror_get(m, "acme/j1"));
    assert_int_equal(cb_mirror_status(m, "acme/j1"), CB_JOB_SUBMITTED);
    assert_int_equal(cb_mirror_apply(m, 0, &g.ev[0], 3, &mj, &applied), CB_OK);
    assert_null(mj);
    assert_int_equal(cb_mirror_count(m), 0);
    assert_int_equal(cb_mirror_seq(m, 0), 3);
    cb_mirror_free(m);
    gen_cleanup(&g);
}

/* A submission is folded from the log of the partition it records, and only
 * there: one that names another partition would be a job nobody drives. */
static void mirror_takes_a_submission_from_its_own_partition_only(void **state)
{
    gen g = {.rng = 9, .clock = 1795752142000000000LL};
    cb_mirror *m = cb_mirror_new();
    cb_mirror_job *mj = NULL;
    int applied;
    (void)state;
    assert_non_null(m);
    add(&g, "j1", CB_EV_JOB_SUBMITTED,
        json_pack("{s:{s:s, s:s, s:{s:s}, s:{s:[i]}}, s:s, s:i}", "job", "job_id", "j1", "kind",
                  "call", "function", "name", "noop", "input", "items", 1, "digest", "d1",
                  "partition", 2));
    assert_int_equal(cb_mirror_apply(m, 0, &g.ev[0], 1, &mj, &applied), CB_OK);
    assert_null(mj);
    assert_int_equal(applied, 0);
    assert_int_equal(cb_mirror_status(m, "acme/j1"), CB_JOB_ABSENT);
    assert_int_equal(cb_mirror_apply(m, 1, &g.ev[0], 1, &mj, &applied), CB_OK);
    assert_null(mj);
    assert_int_equal(cb_mirror_apply(m, 2, &g.ev[0], 1, &mj, &applied), CB_OK);
    assert_non_null(mj);
    assert_int_equal(applied, 1);
    assert_int_equal(mj->js.log_partition, 2);
    assert_false(cb_fold_in_partition(&g.ev[0], 0));
    assert_true(cb_fold_in_partition(&g.ev[0], 2));
    cb_mirror_free(m);
    gen_cleanup(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_logs_fold_to_one_state),
        cmocka_unit_test(mirror_from_a_snapshot_equals_the_store),
        cmocka_unit_test(mirror_forgets_a_dropped_job_for_good),
        cmocka_unit_test(mirror_takes_a_submission_from_its_own_partition_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
