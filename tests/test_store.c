/* tests/test_store.c - the LMDB store and batched folding: records survive
 * reopening, applied_seq commits with the state, aborts leave nothing, the
 * digest is a function of the state only, and differences are found. */
#define _GNU_SOURCE
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "views.h"
#include "cb_time.h"
#include "store.h"

typedef struct fixture {
    char dir[64];
    char dir2[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cbstore.XXXXXX");
    snprintf(f->dir2, sizeof f->dir2, "/tmp/cbstore2.XXXXXX");
    if (!mkdtemp(f->dir) || !mkdtemp(f->dir2)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", f->dir, f->dir2);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static const char *ev_source = "test"; /* the events' source */

/* A small log: job j<n> of 3 tasks run to success, as raw event JSON. */
static char *event_json(const char *job, const char *type, const char *data, int n)
{
    char *s = NULL;
    char ts[40];
    int64_t t = 1795752142000000000LL + (int64_t)n * 1000000;
    if (asprintf(&s,
                 "{\"specversion\":\"1.0\",\"id\":\"acme/%s/%d\",\"source\":\"%s\","
                 "\"type\":\"%s\",\"subject\":\"%s\",\"time\":\"%s\",\"cbtenant\":\"acme\","
                 "\"cbjob\":\"%s\",\"datacontenttype\":\"application/json\",\"data\":%s}",
                 job, n, ev_source, type, job, cb_time_format(t, ts, sizeof ts), job, data) < 0)
        return NULL;
    return s;
}

static void fold_log(cb_store *st, const char *job, int upto, int batch_size, int *seq)
{
    static const char *const script[][2] = {
        {"cb.job.submitted", "{\"job\":{\"tenant\":\"acme\"},\"digest\":\"d\"}"},
        {"cb.job.started", "{\"tasks\":3}"},
        {"cb.tasks.dispatched", "{\"tasks\":[{\"task\":0,\"attempt\":1},{\"task\":1,\"attempt\":1},"
                                "{\"task\":2,\"attempt\":1}]}"},
        {"cb.task.succeeded", "{\"task\":1,\"attempt\":1,\"output\":\"b\"}"},
        {"cb.task.failed", "{\"task\":0,\"attempt\":1,\"error\":\"x\"}"},
        {"cb.task.succeeded", "{\"task\":1,\"attempt\":1,\"output\":\"b\"}"}, /* dup */
        {"cb.task.succeeded", "{\"task\":2,\"attempt\":1,\"output\":\"c\"}"},
        {"cb.task.retry_scheduled", "{\"task\":0,\"attempt\":2,\"at\":\"2026-11-27T05:00:00Z\"}"},
        {"cb.tasks.dispatched", "{\"tasks\":[{\"task\":0,\"attempt\":2}]}"},
        {"cb.task.succeeded", "{\"task\":0,\"attempt\":2,\"output\":\"a\"}"},
        {"cb.job.succeeded", "{\"result\":[\"a\",\"b\",\"c\"]}"},
    };
    int n = (int)(sizeof script / sizeof script[0]);
    cb_batch *b = NULL;
    if (upto > n)
        upto = n;
    for (int i = 0; i < upto; i++) {
        if (!b)
            assert_int_equal(cb_batch_begin(st, NULL, &b), CB_OK);
        char *ev = event_json(job, script[i][0], script[i][1], i);
        assert_int_equal(cb_batch_apply_raw(b, 0, ev, strlen(ev), (uint64_t)++ * seq), CB_OK);
        free(ev);
        if ((i + 1) % batch_size == 0 || i + 1 == upto) {
            assert_int_equal(cb_batch_commit(b, (uint64_t)*seq), CB_OK);
            b = NULL;
        }
    }
}

/* Fold `n` events of script (type, data) for job into one batch over keep,
 * from log position *seq + 1, and commit. */
static void fold_batch(cb_store *st, cb_batch_keep *keep, const char *job,
                       const char *const script[][2], int n, int *seq)
{
    cb_batch *b = NULL;
    assert_int_equal(cb_batch_begin(st, keep, &b), CB_OK);
    for (int i = 0; i < n; i++) {
        char *ev = event_json(job, script[i][0], script[i][1], *seq);
        assert_int_equal(cb_batch_apply_raw(b, 0, ev, strlen(ev), (uint64_t)++ * seq), CB_OK);
        free(ev);
    }
    assert_int_equal(cb_batch_commit(b, (uint64_t)*seq), CB_OK);
}

static size_t record_size(cb_store *st, const char *key)
{
    cb_txn *t = NULL;
    const void *v;
    size_t n = 0;
    assert_int_equal(cb_store_begin(st, 1, &t), CB_OK);
    assert_int_equal(cb_store_get(t, CB_DB_JOBS, key, strlen(key), &v, &n), CB_OK);
    cb_store_abort(t);
    return n;
}

/* The keep between batches holds the jobs not ended, with their open tasks
 * only (counted with their records against its bound), up to its number of
 * jobs (the oldest goes); an ended job leaves it; the store is the same as
 * folded without a keep. */
static void test_keep_holds_open_jobs_within_bounds(void **state)
{
    static const char *const start[][2] = {
        {"cb.job.submitted", "{\"job\":{\"tenant\":\"acme\"},\"digest\":\"d\"}"},
        {"cb.job.started", "{\"tasks\":3}"},
        {"cb.tasks.dispatched", "{\"tasks\":[{\"task\":0,\"attempt\":1},{\"task\":1,\"attempt\":1},"
                                "{\"task\":2,\"attempt\":1}]}"},
        {"cb.task.succeeded", "{\"task\":1,\"attempt\":1,\"output\":\"b\"}"},
    };
    static const char *const end[][2] = {
        {"cb.task.succeeded", "{\"task\":0,\"attempt\":1,\"output\":\"a\"}"},
        {"cb.task.succeeded", "{\"task\":2,\"attempt\":1,\"output\":\"c\"}"},
        {"cb.job.succeeded", "{\"result\":[\"a\",\"b\",\"c\"]}"},
    };
    fixture *f = *state;
    cb_store *st, *plain;
    cb_batch_keep *keep = cb_batch_keep_new(2, 1 << 20);
    char kept[65], without[65];
    int seq = 0, seq2 = 0;
    const char *jobs[] = {"ja", "jb", "jc"};
    assert_non_null(keep);
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    assert_int_equal(cb_store_open(f->dir2, 0, 0, &plain), CB_OK);
    fold_batch(st, keep, "ja", start, 4, &seq);
    assert_int_equal(cb_batch_keep_jobs(keep), 1);
    /* its record, and tasks 0 and 2 (open); task 1 succeeded: not kept */
    assert_int_equal(cb_batch_keep_bytes(keep),
                     record_size(st, "acme/ja") + 2 * CB_BATCH_KEEP_TASK_BYTES);
    fold_batch(st, keep, "jb", start, 4, &seq);
    fold_batch(st, keep, "jc", start, 4, &seq);
    assert_int_equal(cb_batch_keep_jobs(keep), 2); /* ja went first */
    fold_batch(st, keep, "jb", end, 3, &seq);      /* jb ends: it leaves */
    assert_int_equal(cb_batch_keep_jobs(keep), 1);
    assert_int_equal(cb_batch_keep_bytes(keep),
                     record_size(st, "acme/jc") + 2 * CB_BATCH_KEEP_TASK_BYTES);
    fold_batch(st, keep, "ja", end, 3, &seq); /* read from the store again */
    fold_batch(st, keep, "jc", end, 3, &seq); /* from the keep */
    assert_int_equal(cb_batch_keep_jobs(keep), 0);
    assert_int_equal(cb_batch_keep_bytes(keep), 0);
    for (int i = 0; i < 3; i++) /* the same log without a keep */
        fold_batch(plain, NULL, jobs[i], start, 4, &seq2);
    fold_batch(plain, NULL, "jb", end, 3, &seq2);
    fold_batch(plain, NULL, "ja", end, 3, &seq2);
    fold_batch(plain, NULL, "jc", end, 3, &seq2);
    assert_int_equal(cb_view_digest(st, kept, NULL), CB_OK);
    assert_int_equal(cb_view_digest(plain, without, NULL), CB_OK);
    assert_string_equal(kept, without);
    cb_batch_keep_free(keep);
    cb_store_close(st);
    cb_store_close(plain);
}

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

/* A success that carries a memo key (a cached job's task) names its task in
 * the memo database, single or in a batch; one the fold ignores does not;
 * the view gives the output from the task's record, per tenant, and not
 * when the entry is older than asked. */
static void test_memo_entries_name_the_successes_with_a_key(void **state)
{
    static const char *const script[][2] = {
        {"cb.job.submitted", "{\"job\":{\"tenant\":\"acme\"},\"digest\":\"d\"}"},
        {"cb.job.started", "{\"tasks\":3}"},
        {"cb.tasks.dispatched",
         "{\"tasks\":[{\"task\":0,\"attempt\":1},{\"task\":1,\"attempt\":1}]}"},
        {"cb.task.succeeded", "{\"task\":0,\"attempt\":1,\"output\":[\"x\"],\"memo\":\"" H1 "\"}"},
        {"cb.tasks.succeeded", "{\"tasks\":[{\"task\":1,\"attempt\":1,\"output\":[{\"y\":2}],"
                               "\"memo\":\"" H2 "\"}]}"},
        /* ignored: task 0 succeeded already; task 2's attempt 2 was never dispatched */
        {"cb.task.succeeded", "{\"task\":0,\"attempt\":1,\"output\":[\"z\"],\"memo\":\"" H3 "\"}"},
        {"cb.task.succeeded", "{\"task\":2,\"attempt\":2,\"output\":[\"z\"],\"memo\":\"" H3 "\"}"},
    };
    fixture *f = *state;
    cb_store *st;
    char job[CB_NAME_MAX + 1];
    uint32_t task = 99;
    json_t *out = NULL;
    int seq = 0;

    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    fold_batch(st, NULL, "m1", script, 7, &seq);
    cb_store_close(st);
    assert_int_equal(cb_store_open(f->dir, 0, CB_STORE_RDONLY, &st), CB_OK);
    assert_int_equal(cb_view_memo(st, "acme", H1, 0, job, &task, &out), CB_OK);
    assert_string_equal(job, "m1");
    assert_int_equal(task, 0);
    assert_string_equal(json_string_value(json_array_get(out, 0)), "x");
    json_decref(out);
    assert_int_equal(cb_view_memo(st, "acme", H2, 0, job, &task, &out), CB_OK);
    assert_int_equal(task, 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(out, 0), "y")), 2);
    json_decref(out);
    assert_int_equal(cb_view_memo(st, "acme", H3, 0, job, &task, &out), CB_ENOTFOUND);
    assert_null(out);
    assert_int_equal(cb_view_memo(st, "other", H1, 0, job, &task, &out), CB_ENOTFOUND);
    /* the success was at 1795752142.003 s: an entry older than asked is none */
    assert_int_equal(cb_view_memo(st, "acme", H1, 1795752142004000000LL, job, &task, &out),
                     CB_ENOTFOUND);
    assert_int_equal(cb_view_memo(st, "acme", H1, 1795752142003000000LL, job, &task, &out), CB_OK);
    json_decref(out);
    assert_int_equal(cb_view_memo(st, "acme", "not-hex", 0, job, &task, &out), CB_EINVAL);
    cb_store_close(st);
}

static int cost_of(const char *name, const cb_cost *total, void *arg)
{
    json_object_set_new(arg, name, json_integer((json_int_t)total->nanos));
    return 0;
}

/* Cost totals (layout.h, costs): what a job's tasks cost adds up to the
 * job's, the jobs' to their tenant's, and per account; over batches, a
 * batch of successes, a repeat (not counted twice) and a reopened store. */
static void test_cost_totals_add_up(void **state)
{
#define COST(n) ",\"cost\":[" #n "000," #n "]"
    static const char *const script[][2] = {
        {"cb.job.submitted", "{\"job\":{\"tenant\":\"acme\"},\"digest\":\"d\"}"},
        {"cb.job.started", "{\"tasks\":3}"},
        {"cb.tasks.dispatched", "{\"tasks\":[{\"task\":0,\"attempt\":1},{\"task\":1,"
                                "\"attempt\":1},{\"task\":2,\"attempt\":1}]}"},
        {"cb.task.failed", "{\"task\":0,\"attempt\":1,\"error\":\"x\"" COST(7) "}"},
        {"cb.tasks.succeeded", "{\"tasks\":[{\"task\":1,\"attempt\":1,\"output\":1" COST(
                                   11) "},{\"task\":2,\"attempt\":1,\"output\":2" COST(13) "}]}"},
        {"cb.task.succeeded", "{\"task\":2,\"attempt\":1,\"output\":2" COST(13) "}"},
    };
#undef COST
    fixture *f = *state;
    cb_store *st;
    cb_job_state js;
    cb_cost c;
    json_t *all = json_object();
    int seq = 0;

    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    for (int i = 0; i < 2; i++) { /* the failure on one account, the successes on another */
        ev_source = "cbcore/adapter/local/w1";
        fold_batch(st, NULL, i ? "k2" : "k1", script, 4, &seq);
        ev_source = "cbcore/adapter/lambda-eu/w2";
        fold_batch(st, NULL, i ? "k2" : "k1", script + 4, 2, &seq);
    }
    ev_source = "test";
    cb_store_close(st);
    assert_int_equal(cb_store_open(f->dir, 0, CB_STORE_RDONLY, &st), CB_OK);
    assert_int_equal(cb_view_job(st, "acme/k1", &js), CB_OK);
    assert_int_equal(js.cost.invocations, 3);
    assert_int_equal(js.cost.nanos, 7 + 11 + 13);
    assert_int_equal(js.cost.mb_ms, 31000);
    cb_job_state_cleanup(&js);
    assert_int_equal(cb_view_cost(st, "tenant", "acme", &c), CB_OK);
    assert_int_equal(c.invocations, 6);
    assert_int_equal(c.nanos, 2 * 31);
    assert_int_equal(c.mb_ms, 2 * 31000);
    assert_int_equal(cb_view_cost(st, "backend", "lambda-eu", &c), CB_OK);
    assert_int_equal(c.invocations, 4);
    assert_int_equal(c.nanos, 2 * 24);
    assert_int_equal(cb_view_cost(st, "backend", "local", &c), CB_OK);
    assert_int_equal(c.nanos, 2 * 7);
    assert_int_equal(cb_view_cost(st, "tenant", "nobody", &c), CB_OK);
    assert_true(cb_cost_none(&c));
    assert_int_equal(cb_view_costs(st, "backend", cost_of, all), CB_OK);
    assert_int_equal(json_object_size(all), 2);
    assert_int_equal(json_integer_value(json_object_get(all, "lambda-eu")), 48);
    cb_store_close(st);
    json_decref(all);
}

static void test_fold_commit_reopen(void **state)
{
    fixture *f = *state;
    cb_store *st;
    cb_job_state j;
    cb_task_state t;
    uint64_t applied;
    int seq = 0;

    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    fold_log(st, "j1", 100, 4, &seq);
    cb_store_close(st);

    assert_int_equal(cb_store_open(f->dir, 0, CB_STORE_RDONLY, &st), CB_OK);
    assert_int_equal(cb_view_applied_seq(st, 0, &applied), CB_OK);
    assert_int_equal(applied, 11);
    assert_int_equal(cb_view_job(st, "acme/j1", &j), CB_OK);
    assert_int_equal(j.status, CB_JOB_SUCCEEDED);
    assert_int_equal(j.succeeded, 3);
    assert_int_equal(j.retries, 1);
    assert_int_equal(j.ignored, 1);
    assert_int_equal(j.last_seq, 11);
    cb_job_state_cleanup(&j);
    assert_int_equal(cb_view_task(st, "acme/j1", 0, &t), CB_OK);
    assert_int_equal(t.status, CB_TASK_SUCCEEDED);
    assert_int_equal(t.attempt, 2);
    assert_string_equal(json_string_value(t.output), "a");
    cb_task_state_cleanup(&t);
    assert_int_equal(cb_view_task(st, "acme/j1", 7, &t), CB_OK); /* no record: pending */
    assert_int_equal(t.status, CB_TASK_PENDING);
    assert_int_equal(cb_view_job(st, "acme/nope", &j), CB_ENOTFOUND);
    cb_store_close(st);
}

static void test_abort_leaves_nothing(void **state)
{
    fixture *f = *state;
    cb_store *st;
    cb_batch *b;
    cb_job_state j;
    uint64_t applied = 9;
    char *ev = event_json("j2", "cb.job.submitted", "{\"job\":{},\"digest\":\"d\"}", 0);

    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    assert_int_equal(cb_batch_begin(st, NULL, &b), CB_OK);
    assert_int_equal(cb_batch_apply_raw(b, 0, ev, strlen(ev), 1), CB_OK);
    cb_batch_abort(b);
    assert_int_equal(cb_view_job(st, "acme/j2", &j), CB_ENOTFOUND);
    assert_int_equal(cb_view_applied_seq(st, 0, &applied), CB_OK);
    assert_int_equal(applied, 0);
    cb_store_close(st);
    free(ev);
}

static void test_bad_entries_are_skipped_and_counted(void **state)
{
    fixture *f = *state;
    cb_store *st;
    cb_batch *b;
    char *missing = event_json("j3", "cb.job.started", "{}", 1);

    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    assert_int_equal(cb_batch_begin(st, NULL, &b), CB_OK);
    assert_int_equal(cb_batch_apply_raw(b, 0, "not json", 8, 1), CB_OK);
    assert_int_equal(cb_batch_apply_raw(b, 0, "{\"specversion\":\"2\"}", 19, 2), CB_OK);
    char *sub = event_json("j3", "cb.job.submitted", "{\"job\":{},\"digest\":\"d\"}", 0);
    assert_int_equal(cb_batch_apply_raw(b, 0, sub, strlen(sub), 3), CB_OK);
    assert_int_equal(cb_batch_apply_raw(b, 0, missing, strlen(missing), 4), CB_OK);
    const cb_batch_stats *s = cb_batch_stats_get(b);
    assert_int_equal(s->events, 4);
    assert_int_equal(s->invalid, 3);
    assert_int_equal(s->applied, 1);
    json_t *changed = cb_batch_changed_jobs(b);
    assert_int_equal(json_array_size(changed), 1);
    assert_string_equal(json_string_value(json_array_get(changed, 0)), "acme/j3");
    json_decref(changed);
    assert_int_equal(cb_batch_commit(b, 4), CB_OK);
    cb_store_close(st);
    free(missing);
    free(sub);
}

static void test_digest_depends_on_state_not_batching(void **state)
{
    fixture *f = *state;
    cb_store *a, *b;
    char da[65], db[65], diff[512];
    uint64_t na, nb;
    int seq_a = 0, seq_b = 0;

    assert_int_equal(cb_store_open(f->dir, 0, 0, &a), CB_OK);
    assert_int_equal(cb_store_open(f->dir2, 0, 0, &b), CB_OK);
    fold_log(a, "j1", 100, 1, &seq_a);  /* one event per transaction */
    fold_log(b, "j1", 100, 50, &seq_b); /* all in one */
    assert_int_equal(cb_view_digest(a, da, &na), CB_OK);
    assert_int_equal(cb_view_digest(b, db, &nb), CB_OK);
    assert_string_equal(da, db);
    assert_int_equal(na, nb);
    assert_int_equal(na, 4); /* 1 job + 3 tasks; no active entry once succeeded */
    assert_int_equal(cb_view_first_difference(a, b, diff, sizeof diff), CB_OK);
    assert_string_equal(diff, "");

    /* One more event in b only: digests differ and the difference is named. */
    fold_log(b, "j9", 1, 1, &seq_b);
    assert_int_equal(cb_view_digest(b, db, NULL), CB_OK);
    assert_string_not_equal(da, db);
    assert_int_equal(cb_view_first_difference(a, b, diff, sizeof diff), CB_OK);
    assert_non_null(strstr(diff, "acme/j9"));
    cb_store_close(a);
    cb_store_close(b);
}

/* What a report that does not move its task costs is kept in the task's
 * record whether the next event comes in the same batch or a later one (a
 * pending task's record used to be left unwritten: a rebuild in one batch
 * had the cost, the live store folded event by event did not). */
static void test_a_pending_task_s_cost_survives_the_batch(void **state)
{
    static const char *const script[][2] = {
        {"cb.job.submitted", "{\"job\":{\"tenant\":\"acme\"},\"digest\":\"d\"}"},
        {"cb.job.started", "{\"tasks\":2}"},
        /* attempt 2 of a task never dispatched: ignored, its cost counted */
        {"cb.task.succeeded", "{\"task\":1,\"attempt\":2,\"output\":[\"z\"],\"cost\":[1000,0]}"},
        {"cb.tasks.dispatched", "{\"tasks\":[{\"task\":1,\"attempt\":1}]}"},
    };
    fixture *f = *state;
    cb_store *a, *b;
    char da[65], db[65], diff[512];
    int seq_a = 0, seq_b = 0;
    cb_task_state t;

    assert_int_equal(cb_store_open(f->dir, 0, 0, &a), CB_OK);
    assert_int_equal(cb_store_open(f->dir2, 0, 0, &b), CB_OK);
    for (int i = 0; i < 4; i++) /* one event per batch */
        fold_batch(a, NULL, "p1", script + i, 1, &seq_a);
    fold_batch(b, NULL, "p1", script, 4, &seq_b); /* all in one */
    assert_int_equal(cb_view_first_difference(a, b, diff, sizeof diff), CB_OK);
    assert_string_equal(diff, "");
    assert_int_equal(cb_view_digest(a, da, NULL), CB_OK);
    assert_int_equal(cb_view_digest(b, db, NULL), CB_OK);
    assert_string_equal(da, db);
    memset(&t, 0, sizeof t);
    assert_int_equal(cb_view_task(a, "acme/p1", 1, &t), CB_OK);
    assert_int_equal(t.status, CB_TASK_DISPATCHED);
    assert_int_equal(t.cost.invocations, 1);
    assert_int_equal(t.cost.mb_ms, 1000);
    cb_task_state_cleanup(&t);
    cb_store_close(a);
    cb_store_close(b);
}

static void test_partial_job_is_active(void **state)
{
    fixture *f = *state;
    cb_store *st;
    cb_txn *t;
    const void *v;
    size_t n;
    int seq = 0;
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    fold_log(st, "j5", 5, 2, &seq);
    assert_int_equal(cb_store_begin(st, 1, &t), CB_OK);
    assert_int_equal(cb_store_get(t, CB_DB_ACTIVE, "acme/j5", 7, &v, &n), CB_OK);
    /* no timeout_ms in its descriptor: no deadline */
    assert_int_equal(n, 1);
    assert_memory_equal(v, "0", 1);
    cb_store_abort(t);
    fold_log(st, "j5", 100, 100, &seq); /* replays the first five (ignored) then ends */
    assert_int_equal(cb_store_begin(st, 1, &t), CB_OK);
    assert_int_equal(cb_store_get(t, CB_DB_ACTIVE, "acme/j5", 7, &v, &n), CB_ENOTFOUND);
    cb_store_abort(t);
    cb_store_close(st);
}

typedef struct page {
    char keys[8][32];
    int n, limit;
} page;

static int take_job(const char *key, const cb_job_state *js, void *arg)
{
    page *p = arg;
    assert_int_not_equal(js->status, CB_JOB_ABSENT);
    snprintf(p->keys[p->n++], sizeof p->keys[0], "%s", key);
    return p->n >= p->limit;
}

static int take_task(uint32_t index, const cb_task_state *t, void *arg)
{
    page *p = arg;
    snprintf(p->keys[p->n++], sizeof p->keys[0], "%u:%s", index, cb_task_status_name(t->status));
    return p->n >= p->limit;
}

/* Listing pages: jobs in key order from after a key (a tenant's only, or
 * all), tasks from an index; a page ends where its reader stops. */
static void test_pages_of_jobs_and_tasks(void **state)
{
    fixture *f = *state;
    cb_store *st;
    page p = {.limit = 2};
    int seq = 0;
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    fold_log(st, "j1", 100, 100, &seq);
    fold_log(st, "j2", 3, 100, &seq);
    fold_log(st, "j10", 100, 100, &seq);
    assert_int_equal(cb_view_jobs(st, "acme", NULL, take_job, &p), CB_OK);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.keys[0], "acme/j1");
    assert_string_equal(p.keys[1], "acme/j10");
    p.n = 0;
    assert_int_equal(cb_view_jobs(st, "acme", "acme/j10", take_job, &p), CB_OK);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.keys[0], "acme/j2");
    p.n = 0;
    assert_int_equal(cb_view_jobs(st, NULL, "acme/j2", take_job, &p), CB_OK);
    assert_int_equal(p.n, 0);
    assert_int_equal(cb_view_jobs(st, "acm", NULL, take_job, &p), CB_OK); /* not a prefix match */
    assert_int_equal(p.n, 0);
    assert_int_equal(cb_view_jobs(st, NULL, "a", take_job, &p), CB_OK); /* after a key before all */
    assert_int_equal(p.n, 2);
    p.n = 0;
    p.limit = 8;
    assert_int_equal(cb_view_job_tasks_from(st, "acme/j1", 1, take_task, &p), CB_OK);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.keys[0], "1:succeeded");
    assert_string_equal(p.keys[1], "2:succeeded");
    p.n = 0;
    assert_int_equal(cb_view_job_tasks_from(st, "acme/j2", 0, take_task, &p), CB_OK);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.keys[0], "0:dispatched");
    p.n = 0;
    assert_int_equal(cb_view_job_tasks_from(st, "acme/j1", 3, take_task, &p), CB_OK);
    assert_int_equal(p.n, 0);
    cb_store_close(st);
}

static void test_active_holds_the_job_deadline(void **state)
{
    fixture *f = *state;
    cb_store *st;
    cb_batch *b;
    cb_txn *t;
    const void *v;
    size_t n;
    char buf[32];
    /* submitted at n = 0: 1795752142000000000 ns; timeout 60 s */
    char *ev = event_json("j6", "cb.job.submitted",
                          "{\"job\":{\"timeout_ms\":60000},\"digest\":\"d\"}", 0);
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    assert_int_equal(cb_batch_begin(st, NULL, &b), CB_OK);
    assert_int_equal(cb_batch_apply_raw(b, 0, ev, strlen(ev), 1), CB_OK);
    assert_int_equal(cb_batch_commit(b, 1), CB_OK);
    assert_int_equal(cb_store_begin(st, 1, &t), CB_OK);
    assert_int_equal(cb_store_get(t, CB_DB_ACTIVE, "acme/j6", 7, &v, &n), CB_OK);
    snprintf(buf, sizeof buf, "%.*s", (int)n, (const char *)v);
    assert_string_equal(buf, "1795752202000000000");
    cb_store_abort(t);
    cb_store_close(st);
    free(ev);
}

/* A truncated data.mdb is refused with CB_ECORRUPT by every kind of open,
 * before a page of the map is touched (reading one would be SIGBUS). */
static void test_truncated_store_is_refused_not_a_crash(void **state)
{
    fixture *f = *state;
    cb_store *st;
    char path[128];
    int seq = 0;
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    for (int j = 0; j < 200; j++) { /* enough jobs for many pages */
        char job[16];
        snprintf(job, sizeof job, "j%d", j);
        fold_log(st, job, 100, 11, &seq);
    }
    cb_store_close(st);
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    assert_int_equal(truncate(path, 3 * 4096), 0); /* the meta pages and one more */
    assert_int_equal(cb_store_open(f->dir, 0, CB_STORE_RDONLY, &st), CB_ECORRUPT);
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_ECORRUPT);
}

static void test_open_rdonly_missing_dir(void **state)
{
    cb_store *st;
    (void)state;
    assert_int_equal(cb_store_open("/tmp/cb-no-such-store-dir", 0, CB_STORE_RDONLY, &st),
                     CB_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fold_commit_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memo_entries_name_the_successes_with_a_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keep_holds_open_jobs_within_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cost_totals_add_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_entries_are_skipped_and_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_depends_on_state_not_batching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_pending_task_s_cost_survives_the_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partial_job_is_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_holds_the_job_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pages_of_jobs_and_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_store_is_refused_not_a_crash, setup,
                                        teardown),
        cmocka_unit_test(test_open_rdonly_missing_dir),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
