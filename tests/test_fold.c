/* tests/test_fold.c - the pure fold: every transition, duplicates, late and
 * out-of-order events, and the canonical JSON. Table-driven. */
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_event.h"
#include "fold.h"

#define MAX_TASKS 8

typedef struct world {
    cb_job_state job;
    cb_task_state tasks[MAX_TASKS];
    cb_fold_tasks access;
    int64_t clock;
} world;

static cb_task_state *get_task(void *arg, uint32_t idx)
{
    world *w = arg;
    return idx < MAX_TASKS ? &w->tasks[idx] : NULL;
}

static void world_init(world *w)
{
    memset(w, 0, sizeof *w);
    w->access.get = get_task;
    w->access.arg = w;
    w->clock = 1795752142000000000LL;
}

static void world_cleanup(world *w)
{
    cb_job_state_cleanup(&w->job);
    for (int i = 0; i < MAX_TASKS; i++)
        cb_task_state_cleanup(&w->tasks[i]);
}

/* Fold one event from `source` given as type + data JSON; returns `applied`. */
static int apply_from(world *w, cb_event_type type, const char *source, const char *data_json)
{
    cb_event ev;
    json_error_t je;
    json_t *data = json_loads(data_json, 0, &je);
    int applied = -1;
    assert_non_null(data);
    w->clock += 1000000; /* events carry their own time: 1 ms apart */
    assert_int_equal(cb_event_init(&ev, type, "acme", "j1", "id", source, w->clock, data), CB_OK);
    assert_int_equal(cb_fold_apply(&w->job, &w->access, &ev, 0, &applied), CB_OK);
    cb_event_cleanup(&ev);
    return applied;
}

static int apply(world *w, cb_event_type type, const char *data_json)
{
    return apply_from(w, type, "test", data_json);
}

static void start_job(world *w, int tasks)
{
    char buf[64];
    assert_int_equal(apply(w, CB_EV_JOB_SUBMITTED,
                           "{\"job\":{\"tenant\":\"acme\",\"kind\":\"map\"},\"digest\":\"d\"}"),
                     1);
    snprintf(buf, sizeof buf, "{\"tasks\":%d}", tasks);
    assert_int_equal(apply(w, CB_EV_JOB_STARTED, buf), 1);
}

static int dispatch(world *w, int task, int attempt)
{
    char buf[96];
    snprintf(buf, sizeof buf, "{\"tasks\":[{\"task\":%d,\"attempt\":%d}]}", task, attempt);
    return apply(w, CB_EV_TASKS_DISPATCHED, buf);
}

static int task_event(world *w, cb_event_type type, int task, int attempt)
{
    char buf[160];
    switch (type) {
    case CB_EV_TASK_SUCCEEDED:
        snprintf(buf, sizeof buf, "{\"task\":%d,\"attempt\":%d,\"output\":%d}", task, attempt,
                 task * 10 + attempt);
        break;
    case CB_EV_TASK_FAILED:
        snprintf(buf, sizeof buf, "{\"task\":%d,\"attempt\":%d,\"error\":\"boom %d\"}", task,
                 attempt, attempt);
        break;
    case CB_EV_TASK_RETRY_SCHEDULED:
        snprintf(buf, sizeof buf, "{\"task\":%d,\"attempt\":%d,\"at\":\"2026-11-27T05:00:00Z\"}",
                 task, attempt);
        break;
    default:
        snprintf(buf, sizeof buf, "{\"task\":%d,\"attempt\":%d}", task, attempt);
        break;
    }
    return apply(w, type, buf);
}

/* The task's record text (cb_task_state_text) is rec, its canonical JSON. */
static void expect_text_of(const cb_task_state *t, const json_t *rec)
{
    cb_buf text = {0};
    char *canon = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    assert_int_equal(cb_task_state_text(t, &text), CB_OK);
    assert_int_equal(text.len, strlen(canon));
    assert_memory_equal(text.p, canon, text.len);
    free(canon);
    cb_buf_cleanup(&text);
}

/* A job's partition (docs/scale.md) is the one its submission recorded, kept
 * by its record; a repeat of the submission does not move it; a job
 * submitted without one is in partition 0, and its record says nothing. */
static void test_a_job_s_partition_is_recorded(void **state)
{
    world w;
    json_t *rec;
    cb_job_state back;
    (void)state;
    world_init(&w);
    assert_int_equal(apply(&w, CB_EV_JOB_SUBMITTED,
                           "{\"job\":{\"tenant\":\"acme\",\"kind\":\"map\"},\"digest\":\"d\","
                           "\"partition\":5}"),
                     1);
    assert_int_equal(w.job.log_partition, 5);
    assert_int_equal(apply(&w, CB_EV_JOB_SUBMITTED,
                           "{\"job\":{\"tenant\":\"acme\",\"kind\":\"map\"},\"digest\":\"d\","
                           "\"partition\":2}"),
                     0);
    assert_int_equal(w.job.log_partition, 5);
    rec = cb_job_state_to_json(&w.job);
    assert_int_equal(json_integer_value(json_object_get(rec, "log_partition")), 5);
    assert_int_equal(cb_job_state_from_json(rec, &back), CB_OK);
    assert_int_equal(back.log_partition, 5);
    cb_job_state_cleanup(&back);
    json_decref(rec);
    world_cleanup(&w);
    /* a partition no log has (the schema says 0..63) or not a number: the
     * submission is invalid and ignored, the job stays absent */
    {
        static const char *const bad[] = {"64", "-1", "\"2\"", "1.5", "4294967297"};
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            char data[160];
            cb_event ev;
            int applied = -1;
            world_init(&w);
            snprintf(data, sizeof data,
                     "{\"job\":{\"tenant\":\"acme\",\"kind\":\"map\"},\"digest\":\"d\","
                     "\"partition\":%s}",
                     bad[i]);
            assert_int_equal(cb_event_init(&ev, CB_EV_JOB_SUBMITTED, "acme", "j1", "id", "test", 1,
                                           json_loads(data, 0, NULL)),
                             CB_OK);
            assert_int_equal(cb_fold_apply(&w.job, &w.access, &ev, 0, &applied), CB_EINVAL);
            assert_int_equal(applied, 0);
            assert_int_equal(w.job.status, CB_JOB_ABSENT);
            assert_int_equal(w.job.log_partition, 0);
            cb_event_cleanup(&ev);
            world_cleanup(&w);
        }
    }
    world_init(&w);
    start_job(&w, 1);
    assert_int_equal(w.job.log_partition, 0);
    rec = cb_job_state_to_json(&w.job);
    assert_null(json_object_get(rec, "log_partition"));
    json_decref(rec);
    world_cleanup(&w);
}

/* A success the engine appended instead of an invocation (a memoized or
 * re-run task) is a success like any other, counted as memoized once;
 * the count survives the record. */
static void test_memoized_successes_are_counted(void **state)
{
    world w;
    json_t *rec;
    cb_job_state back;
    (void)state;
    world_init(&w);
    start_job(&w, 2);
    assert_int_equal(dispatch(&w, 0, 1), 1);
    assert_int_equal(dispatch(&w, 1, 1), 1);
    assert_int_equal(apply(&w, CB_EV_TASK_SUCCEEDED,
                           "{\"task\":0,\"attempt\":1,\"output\":[8],"
                           "\"memoized\":{\"job\":\"j0\",\"task\":3}}"),
                     1);
    assert_int_equal(w.tasks[0].status, CB_TASK_SUCCEEDED);
    assert_int_equal(json_integer_value(json_array_get(w.tasks[0].output, 0)), 8);
    assert_int_equal(w.job.memoized, 1);
    /* the same again (a repeat), and the adapter's late success: not counted */
    assert_int_equal(apply(&w, CB_EV_TASK_SUCCEEDED,
                           "{\"task\":0,\"attempt\":1,\"output\":[8],"
                           "\"memoized\":{\"job\":\"j0\",\"task\":3}}"),
                     0);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1), 0);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 1, 1), 1); /* one that ran */
    assert_int_equal(w.job.memoized, 1);
    assert_int_equal(w.job.succeeded, 2);
    rec = cb_job_state_to_json(&w.job);
    assert_int_equal(cb_job_state_from_json(rec, &back), CB_OK);
    assert_int_equal(back.memoized, 1);
    cb_job_state_cleanup(&back);
    json_decref(rec);
    world_cleanup(&w);
}

/* An outcome's cost (cb_cost.h) is counted into its task and job once per
 * invocation report: the one that applies, the late report of an attempt
 * that timed out or lost to another, a report after the job ended (it was
 * paid for); not a repeat of the success already folded, not a memoized
 * success (no invocation). It survives the records. */
static void test_costs_count_every_invocation_once(void **state)
{
    world w;
    json_t *rec;
    cb_job_state back;
    cb_task_state tback;
    (void)state;
    world_init(&w);
    start_job(&w, 3);
    assert_true(cb_cost_none(&w.job.cost));
    assert_int_equal(dispatch(&w, 0, 1), 1);
    assert_int_equal(dispatch(&w, 1, 1), 1);
    assert_int_equal(dispatch(&w, 2, 1), 1);
    /* attempt 1 of task 0 fails (paid), attempt 2 succeeds (paid) */
    assert_int_equal(apply(&w, CB_EV_TASK_FAILED,
                           "{\"task\":0,\"attempt\":1,\"error\":\"x\","
                           "\"cost\":[1000,10]}"),
                     1);
    assert_int_equal(task_event(&w, CB_EV_TASK_RETRY_SCHEDULED, 0, 2), 1);
    assert_int_equal(dispatch(&w, 0, 2), 1);
    assert_int_equal(apply(&w, CB_EV_TASK_SUCCEEDED,
                           "{\"task\":0,\"attempt\":2,\"output\":[1],"
                           "\"cost\":[2000,20]}"),
                     1);
    /* the same success again: not paid twice */
    assert_int_equal(apply(&w, CB_EV_TASK_SUCCEEDED,
                           "{\"task\":0,\"attempt\":2,\"output\":[1],"
                           "\"cost\":[2000,20]}"),
                     0);
    /* attempt 1's late success after attempt 2 won: ignored, but it ran */
    assert_int_equal(apply(&w, CB_EV_TASK_SUCCEEDED,
                           "{\"task\":0,\"attempt\":1,\"output\":[1],"
                           "\"cost\":[4000,40]}"),
                     0);
    assert_int_equal(w.tasks[0].cost.invocations, 3);
    assert_int_equal(w.tasks[0].cost.mb_ms, 7000);
    assert_int_equal(w.tasks[0].cost.nanos, 70);
    /* a memoized success: no invocation, no cost */
    assert_int_equal(apply(&w, CB_EV_TASK_SUCCEEDED,
                           "{\"task\":1,\"attempt\":1,\"output\":[2],"
                           "\"memoized\":{\"job\":\"j0\",\"task\":1}}"),
                     1);
    assert_true(cb_cost_none(&w.tasks[1].cost));
    assert_int_equal(apply(&w, CB_EV_JOB_FAILED, "{\"error\":\"stopped\"}"), 1);
    /* task 2 was in flight when the job ended: its report still counts */
    assert_int_equal(apply(&w, CB_EV_TASK_SUCCEEDED,
                           "{\"task\":2,\"attempt\":1,\"output\":[3],"
                           "\"cost\":[500,5]}"),
                     0);
    assert_int_equal(w.tasks[2].cost.invocations, 1);
    assert_int_equal(w.tasks[2].status, CB_TASK_DISPATCHED); /* state stays as it ended */
    assert_int_equal(w.job.cost.invocations, 4);
    assert_int_equal(w.job.cost.mb_ms, 7500);
    assert_int_equal(w.job.cost.nanos, 75);
    /* the records keep it; the task's text is its canonical JSON */
    rec = cb_job_state_to_json(&w.job);
    assert_int_equal(cb_job_state_from_json(rec, &back), CB_OK);
    assert_memory_equal(&back.cost, &w.job.cost, sizeof back.cost);
    cb_job_state_cleanup(&back);
    json_decref(rec);
    rec = cb_task_state_to_json(&w.tasks[0]);
    assert_int_equal(cb_task_state_from_json(rec, &tback), CB_OK);
    assert_memory_equal(&tback.cost, &w.tasks[0].cost, sizeof tback.cost);
    cb_task_state_cleanup(&tback);
    expect_text_of(&w.tasks[0], rec);
    json_decref(rec);
    world_cleanup(&w);
}

/* A backup attempt (docs/engine.md, "Straggler backups") of a task in
 * flight: one more invocation in flight; the first success wins, whichever
 * attempt it is, and settles both; the original's failure does not end the
 * task while its backup runs; one backup at a time; the records keep it. */
static void test_a_backup_attempt_races_the_original(void **state)
{
    world w;
    json_t *rec;
    cb_task_state back;
    (void)state;
    world_init(&w);
    start_job(&w, 3);
    assert_int_equal(dispatch(&w, 0, 1), 1);
    assert_int_equal(dispatch(&w, 1, 1), 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_STARTED, 0, 1), 1);
    assert_int_equal(w.job.inflight, 2);
    /* a backup must follow the attempt in flight, once */
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"tasks\":[{\"task\":0,\"attempt\":3,\"backup\":true}]}"),
                     0);
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"tasks\":[{\"task\":2,\"attempt\":2,\"backup\":true}]}"),
                     0); /* never dispatched */
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"tasks\":[{\"task\":0,\"attempt\":2,\"backup\":true},"
                           "{\"task\":1,\"attempt\":2,\"backup\":true}]}"),
                     1);
    assert_true(w.tasks[0].backup && w.tasks[0].attempt == 2);
    assert_int_equal(w.tasks[0].status, CB_TASK_RUNNING);
    assert_int_equal(w.job.inflight, 4);
    assert_int_equal(w.job.backups, 2);
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"tasks\":[{\"task\":0,\"attempt\":3,\"backup\":true}]}"),
                     0); /* one at a time */
    /* the record and its text */
    rec = cb_task_state_to_json(&w.tasks[0]);
    assert_true(json_is_true(json_object_get(rec, "backup")));
    assert_int_equal(cb_task_state_from_json(rec, &back), CB_OK);
    assert_true(back.backup);
    cb_task_state_cleanup(&back);
    expect_text_of(&w.tasks[0], rec);
    json_decref(rec);
    /* task 0: the original answers first and wins; the backup's answer is late */
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1), 1);
    assert_int_equal(json_integer_value(w.tasks[0].output), 1);
    assert_false(w.tasks[0].backup);
    assert_int_equal(w.job.inflight, 2);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 2), 0);
    assert_int_equal(json_integer_value(w.tasks[0].output), 1);
    /* task 1: the original fails (its backup runs on), the backup succeeds */
    assert_int_equal(task_event(&w, CB_EV_TASK_FAILED, 1, 1), 0);
    assert_int_equal(w.tasks[1].status, CB_TASK_DISPATCHED);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 1, 2), 1);
    assert_int_equal(json_integer_value(w.tasks[1].output), 12);
    assert_int_equal(w.job.inflight, 0);
    assert_int_equal(w.job.succeeded, 2);
    rec = cb_job_state_to_json(&w.job);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rec, "tasks"), "backups")),
                     2);
    json_decref(rec);
    world_cleanup(&w);
}

/* A job over several accounts ("mixed") is counted per account like a
 * pool's members; a dispatch that names its backend alone is not. */
static void test_a_mixed_job_s_accounts_are_counted(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    start_job(&w, 4);
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"backend\":\"local\",\"tasks\":[{\"task\":0,\"attempt\":1}]}"),
                     1);
    assert_int_equal(w.job.nmembers, 0);
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"backend\":\"narrow\",\"mixed\":true,\"tasks\":[{\"task\":1,"
                           "\"attempt\":1},{\"task\":2,\"attempt\":1}]}"),
                     1);
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"backend\":\"wide\",\"mixed\":true,\"tasks\":[{\"task\":3,"
                           "\"attempt\":1}]}"),
                     1);
    assert_int_equal(w.job.nmembers, 2);
    assert_string_equal(w.job.members[0].backend, "narrow");
    assert_true(w.job.members[0].inflight == 2 && w.job.members[1].inflight == 1);
    assert_int_equal(w.tasks[3].member, 2);
    assert_int_equal(task_event(&w, CB_EV_TASK_TIMED_OUT, 1, 1), 1);
    assert_true(w.job.members[0].inflight == 1 && w.job.members[0].dispatched == 2);
    world_cleanup(&w);
}

/* A pool's job: each member's invocations in flight, dispatched and the
 * throttles its outcomes report, kept in the job's record; the task's member. */
static void test_a_pool_s_members_are_counted(void **state)
{
    world w;
    json_t *rec;
    cb_job_state back;
    cb_task_state tback;
    (void)state;
    world_init(&w);
    start_job(&w, 4);
    assert_int_equal(
        apply(&w, CB_EV_TASKS_DISPATCHED,
              "{\"backend\":\"b\",\"pool\":\"p\",\"tasks\":[{\"task\":0,\"attempt\":1},"
              "{\"task\":1,\"attempt\":1}]}"),
        1);
    assert_int_equal(
        apply(&w, CB_EV_TASKS_DISPATCHED,
              "{\"backend\":\"a\",\"pool\":\"p\",\"tasks\":[{\"task\":2,\"attempt\":1}]}"),
        1);
    assert_int_equal(w.job.nmembers, 2); /* in the order first dispatched to */
    assert_string_equal(w.job.members[0].backend, "b");
    assert_string_equal(w.job.members[1].backend, "a");
    assert_true(w.job.members[0].inflight == 2 && w.job.members[0].dispatched == 2);
    assert_true(w.job.members[1].inflight == 1 && w.job.members[1].dispatched == 1);
    assert_int_equal(w.tasks[2].member, 2);
    assert_int_equal(task_event(&w, CB_EV_TASK_STARTED, 0, 1), 1); /* still in flight on b */
    assert_int_equal(w.job.members[0].inflight, 2);
    /* b's adapter reports 3 throttles with its success; an engine's timeout has none */
    assert_int_equal(apply_from(&w, CB_EV_TASK_SUCCEEDED, "cbcore/adapter/b/w1",
                                "{\"task\":0,\"attempt\":1,\"output\":1,\"throttled\":3}"),
                     1);
    assert_int_equal(task_event(&w, CB_EV_TASK_TIMED_OUT, 2, 1), 1);
    assert_true(w.job.members[0].inflight == 1 && w.job.members[0].throttled == 3);
    assert_true(w.job.members[1].inflight == 0 && w.job.members[1].throttled == 0);
    /* a backup of task 1 (on b) on a: one more in flight on a until the task settles */
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"backend\":\"a\",\"pool\":\"p\",\"tasks\":[{\"task\":1,\"attempt\":2,"
                           "\"backup\":true}]}"),
                     1);
    assert_true(w.job.members[1].inflight == 1 && w.job.members[1].dispatched == 2);
    assert_true(w.tasks[1].member == 1 && w.tasks[1].backup_member == 2);
    rec = cb_task_state_to_json(&w.tasks[1]);
    assert_int_equal(json_integer_value(json_object_get(rec, "member")), 0);
    assert_int_equal(json_integer_value(json_object_get(rec, "backup_member")), 1);
    assert_int_equal(cb_task_state_from_json(rec, &tback), CB_OK);
    assert_true(tback.member == 1 && tback.backup_member == 2);
    expect_text_of(&w.tasks[1], rec);
    cb_task_state_cleanup(&tback);
    json_decref(rec);
    assert_int_equal(apply_from(&w, CB_EV_TASK_SUCCEEDED, "cbcore/adapter/a/w2",
                                "{\"task\":1,\"attempt\":2,\"output\":2,\"throttled\":1}"),
                     1);
    assert_true(w.job.members[0].inflight == 0 && w.job.members[1].inflight == 0);
    assert_int_equal(w.job.members[1].throttled, 1);
    /* the job's record keeps them */
    rec = cb_job_state_to_json(&w.job);
    assert_int_equal(json_array_size(json_object_get(rec, "members")), 2);
    assert_int_equal(cb_job_state_from_json(rec, &back), CB_OK);
    assert_int_equal(back.nmembers, 2);
    assert_memory_equal(back.members, w.job.members, sizeof back.members);
    cb_job_state_cleanup(&back);
    json_decref(rec);
    /* a job on one backend has none */
    world_cleanup(&w);
    world_init(&w);
    start_job(&w, 1);
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"backend\":\"a\",\"tasks\":[{\"task\":0,\"attempt\":1}]}"),
                     1);
    assert_int_equal(w.job.nmembers, 0);
    rec = cb_job_state_to_json(&w.job);
    assert_null(json_object_get(rec, "members"));
    json_decref(rec);
    world_cleanup(&w);
}

static void test_happy_path_counts(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    start_job(&w, 3);
    assert_int_equal(w.job.status, CB_JOB_RUNNING);
    assert_int_equal(w.job.total, 3);
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"tasks\":[{\"task\":0,\"attempt\":1},{\"task\":1,\"attempt\":1},"
                           "{\"task\":2,\"attempt\":1}]}"),
                     1);
    assert_int_equal(w.job.inflight, 3);
    assert_int_equal(task_event(&w, CB_EV_TASK_STARTED, 0, 1), 1);
    assert_int_equal(w.tasks[0].status, CB_TASK_RUNNING);
    /* out of order: 2, then 0, then 1 */
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 2, 1), 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1), 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 1, 1), 1);
    assert_int_equal(w.job.succeeded, 3);
    assert_int_equal(w.job.inflight, 0);
    assert_int_equal(json_integer_value(w.tasks[2].output), 21);
    assert_int_equal(apply(&w, CB_EV_JOB_SUCCEEDED, "{\"result\":[10,11,12]}"), 1);
    assert_int_equal(w.job.status, CB_JOB_SUCCEEDED);
    assert_true(w.job.finished_ns > w.job.started_ns);
    assert_int_equal(w.job.applied, 8);
    assert_int_equal(w.job.ignored, 0);
    world_cleanup(&w);
}

/* Fold data_json as an event of `type` at time `at`; *applied out, the status returned. */
static cb_status apply_at(world *w, cb_event_type type, const char *data_json, int64_t at,
                          int *applied)
{
    cb_event ev;
    json_error_t je;
    json_t *data = json_loads(data_json, 0, &je);
    cb_status s;
    assert_non_null(data);
    assert_int_equal(cb_event_init(&ev, type, "acme", "j1", "id", "test", at, data), CB_OK);
    s = cb_fold_apply(&w->job, &w->access, &ev, 7, applied);
    cb_event_cleanup(&ev);
    return s;
}

/* A cb.tasks.succeeded event folds as its parts one by one: the same job and
 * task states, counters included, as the same successes come alone; a part
 * that repeats an earlier success is ignored; a part without its output is
 * reported (CB_EINVAL) and the others still apply. */
static void test_a_batch_of_successes_folds_as_its_parts(void **state)
{
    static const char *const part[] = {
        "{\"task\":2,\"attempt\":1,\"output\":[\"two\"],\"duration_ms\":3}",
        "{\"task\":0,\"attempt\":1,\"output\":[\"zero\"]}",
        "{\"task\":2,\"attempt\":1,\"output\":[\"again\"]}",
        "{\"task\":3,\"attempt\":1,\"output\":null}",
    };
    world one, all;
    int64_t at = 1795752142999000000LL;
    int applied = 0;
    char batch[512];
    (void)state;
    world_init(&one);
    world_init(&all);
    start_job(&one, 4);
    start_job(&all, 4);
    for (int t = 0; t < 4; t++) {
        assert_int_equal(dispatch(&one, t, 1), 1);
        assert_int_equal(dispatch(&all, t, 1), 1);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(apply_at(&one, CB_EV_TASK_SUCCEEDED, part[i], at, &applied), CB_OK);
        assert_int_equal(applied, i != 2); /* the third repeats task 2 */
    }
    snprintf(batch, sizeof batch, "{\"tasks\":[%s,%s,%s,%s]}", part[0], part[1], part[2], part[3]);
    assert_int_equal(apply_at(&all, CB_EV_TASKS_SUCCEEDED, batch, at, &applied), CB_OK);
    assert_int_equal(applied, 1);
    json_t *a = cb_job_state_to_json(&one.job), *b = cb_job_state_to_json(&all.job);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    assert_int_equal(all.job.succeeded, 3);
    assert_int_equal(all.job.ignored, one.job.ignored);
    assert_int_equal(all.job.applied, one.job.applied);
    for (int t = 0; t < 4; t++) {
        assert_int_equal(all.tasks[t].status, one.tasks[t].status);
        assert_true(all.tasks[t].output == one.tasks[t].output /* none */ ||
                    json_equal(all.tasks[t].output, one.tasks[t].output));
    }
    assert_string_equal(json_string_value(json_array_get(all.tasks[2].output, 0)), "two");
    assert_int_equal(all.tasks[1].status, CB_TASK_DISPATCHED);

    /* all repeats: nothing applies */
    assert_int_equal(apply_at(&all, CB_EV_TASKS_SUCCEEDED, batch, at, &applied), CB_OK);
    assert_int_equal(applied, 0);
    /* a part without output: reported, the other applies */
    assert_int_equal(
        apply_at(&all, CB_EV_TASKS_SUCCEEDED,
                 "{\"tasks\":[{\"task\":1,\"attempt\":1},{\"task\":1,\"attempt\":1,\"output\":1}]}",
                 at, &applied),
        CB_EINVAL);
    assert_int_equal(applied, 1);
    assert_int_equal(all.tasks[1].status, CB_TASK_SUCCEEDED);
    /* not an array of parts */
    assert_int_equal(apply_at(&all, CB_EV_TASKS_SUCCEEDED, "{\"tasks\":7}", at, &applied),
                     CB_EINVAL);
    assert_int_equal(applied, 0);
    world_cleanup(&one);
    world_cleanup(&all);
}

/* The log lost a dispatch the broker had confirmed (a failover; fold.h):
 * the adapter's reports of attempt 1 come with no dispatch before them.
 * They stand for it: the tasks succeed (or fail) and the job goes on; the
 * dispatch appended again later finds them settled and changes nothing. A
 * report of a later attempt, or after a cancellation, still needs its
 * dispatch. */
static void test_reports_of_a_lost_dispatch_stand_for_it(void **state)
{
    world w;
    int64_t at = 1795752142999000000LL;
    int applied = 0;
    (void)state;
    world_init(&w);
    start_job(&w, 5);
    assert_int_equal(dispatch(&w, 0, 1), 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1), 1);
    /* tasks 1..3 were dispatched, but that event is not in the log */
    assert_int_equal(task_event(&w, CB_EV_TASK_STARTED, 3, 1), 1);
    assert_int_equal(w.tasks[3].status, CB_TASK_RUNNING);
    assert_int_equal(w.job.inflight, 1);
    assert_int_equal(apply_at(&w, CB_EV_TASKS_SUCCEEDED,
                              "{\"tasks\":[{\"task\":1,\"attempt\":1,\"output\":1},"
                              "{\"task\":3,\"attempt\":1,\"output\":3}]}",
                              at, &applied),
                     CB_OK);
    assert_int_equal(applied, 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_FAILED, 2, 1), 1);
    assert_int_equal(w.tasks[1].status, CB_TASK_SUCCEEDED);
    assert_int_equal(w.tasks[2].status, CB_TASK_FAILED);
    assert_int_equal(w.tasks[3].status, CB_TASK_SUCCEEDED);
    assert_int_equal(w.tasks[1].attempt, 1);
    assert_int_equal(json_integer_value(w.tasks[3].output), 3);
    assert_int_equal(w.job.succeeded, 3);
    assert_int_equal(w.job.failed, 1);
    assert_int_equal(w.job.inflight, 0);
    assert_int_equal(w.job.frontier, 1); /* what is below it was all dispatched */
    /* the engine's next dispatch of them: settled, they move the frontier only */
    assert_int_equal(apply(&w, CB_EV_TASKS_DISPATCHED,
                           "{\"tasks\":[{\"task\":1,\"attempt\":1},{\"task\":2,\"attempt\":1},"
                           "{\"task\":3,\"attempt\":1}]}"),
                     1);
    assert_int_equal(w.job.frontier, 4);
    assert_int_equal(w.job.succeeded, 3);
    assert_int_equal(w.job.failed, 1);
    assert_int_equal(w.job.inflight, 0);
    assert_int_equal(w.tasks[3].status, CB_TASK_SUCCEEDED);
    /* once more: nothing changes */
    assert_int_equal(dispatch(&w, 3, 1), 0);
    /* a later attempt of a task never dispatched: not this job's history */
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 4, 2), 0);
    assert_int_equal(w.tasks[4].status, CB_TASK_PENDING);
    /* once a cancellation is asked for, nothing new starts */
    assert_int_equal(apply(&w, CB_EV_JOB_CANCEL_REQUESTED, "{}"), 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 4, 1), 0);
    assert_int_equal(w.tasks[4].status, CB_TASK_PENDING);
    world_cleanup(&w);
}

#define SHA64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A result kept as one object is recorded as a reference to it; a cb://
 * one (assembled from the records) leaves no result. */
static void test_a_stored_result_is_recorded_as_a_reference(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    start_job(&w, 1);
    assert_int_equal(apply(&w, CB_EV_JOB_SUCCEEDED,
                           "{\"result_ref\":\"s3://cbcore/results/t/j/result-0123456789abcdef."
                           "json\",\"result_size\":300000,\"result_sha256\":\"" SHA64 "\"}"),
                     1);
    assert_int_equal(w.job.status, CB_JOB_SUCCEEDED);
    cb_test_expect_json(json_incref(w.job.result),
                        "{\"$cb_ref\": \"s3://cbcore/results/t/j/result-0123456789abcdef.json\","
                        " \"size\": 300000, \"sha256\": \"" SHA64 "\"}");
    world_cleanup(&w);
    world_init(&w);
    start_job(&w, 1);
    assert_int_equal(apply(&w, CB_EV_JOB_SUCCEEDED, "{\"result_ref\":\"cb://t/j/result\"}"), 1);
    assert_null(w.job.result);
    world_cleanup(&w);
}

static void test_duplicates_are_ignored_and_counted(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    start_job(&w, 2);
    assert_int_equal(apply(&w, CB_EV_JOB_SUBMITTED, "{\"job\":{},\"digest\":\"x\"}"), 0);
    assert_string_equal(w.job.digest, "d"); /* untouched */
    assert_int_equal(apply(&w, CB_EV_JOB_STARTED, "{\"tasks\":5}"), 0);
    assert_int_equal(w.job.total, 2);
    assert_int_equal(dispatch(&w, 0, 1), 1);
    assert_int_equal(dispatch(&w, 0, 1), 0);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1), 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1), 0);
    assert_int_equal(w.job.succeeded, 1);
    assert_int_equal(w.job.inflight, 0);
    assert_int_equal(w.job.ignored, 4);
    world_cleanup(&w);
}

static void test_events_before_submission_leave_job_absent(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    assert_int_equal(apply(&w, CB_EV_JOB_STARTED, "{\"tasks\":3}"), 0);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1), 0);
    assert_int_equal(w.job.status, CB_JOB_ABSENT);
    assert_int_equal(w.job.ignored, 0);
    world_cleanup(&w);
}

static void test_retry_cycle_and_late_reports(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    start_job(&w, 1);
    assert_int_equal(dispatch(&w, 0, 1), 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_FAILED, 0, 1), 1);
    assert_int_equal(w.job.failed, 1);
    assert_string_equal(w.tasks[0].error, "boom 1");
    /* retry must name the next attempt */
    assert_int_equal(task_event(&w, CB_EV_TASK_RETRY_SCHEDULED, 0, 3), 0);
    assert_int_equal(task_event(&w, CB_EV_TASK_RETRY_SCHEDULED, 0, 2), 1);
    assert_int_equal(w.tasks[0].status, CB_TASK_RETRY_WAIT);
    assert_true(w.tasks[0].due_ns > 0);
    assert_int_equal(w.job.failed, 0);
    assert_int_equal(w.job.waiting, 1);
    assert_int_equal(w.job.retries, 1);
    /* attempt 1 cannot be dispatched again; attempt 2 can */
    assert_int_equal(dispatch(&w, 0, 1), 0);
    assert_int_equal(dispatch(&w, 0, 2), 1);
    /* a late failure of attempt 1 is ignored */
    assert_int_equal(task_event(&w, CB_EV_TASK_FAILED, 0, 1), 0);
    assert_int_equal(w.tasks[0].status, CB_TASK_DISPATCHED);
    /* a late success of attempt 1 wins: the function did produce it */
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1), 1);
    assert_int_equal(json_integer_value(w.tasks[0].output), 1);
    /* and attempt 2's own success is then a repeat */
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 2), 0);
    assert_int_equal(w.job.succeeded, 1);
    assert_int_equal(w.job.inflight, 0);
    world_cleanup(&w);
}

static void test_timeout_then_retry(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    start_job(&w, 1);
    assert_int_equal(dispatch(&w, 0, 1), 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_TIMED_OUT, 0, 1), 1);
    assert_int_equal(w.tasks[0].status, CB_TASK_TIMED_OUT);
    assert_int_equal(w.job.timeouts, 1);
    assert_int_equal(task_event(&w, CB_EV_TASK_TIMED_OUT, 0, 1), 0);
    assert_int_equal(task_event(&w, CB_EV_TASK_RETRY_SCHEDULED, 0, 2), 1);
    world_cleanup(&w);
}

static void test_suspend_resume_cancel(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    start_job(&w, 3);
    assert_int_equal(dispatch(&w, 0, 1), 1);
    assert_int_equal(apply(&w, CB_EV_JOB_SUSPENDED, "{}"), 1);
    assert_int_equal(w.job.status, CB_JOB_SUSPENDED);
    assert_int_equal(apply(&w, CB_EV_JOB_SUSPENDED, "{}"), 0);
    /* results of running tasks still count while suspended */
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1), 1);
    assert_int_equal(apply(&w, CB_EV_JOB_RESUMED, "{}"), 1);
    assert_int_equal(w.job.status, CB_JOB_RUNNING);
    assert_int_equal(apply(&w, CB_EV_JOB_RESUMED, "{}"), 0);
    assert_int_equal(dispatch(&w, 1, 1), 1);
    assert_int_equal(apply(&w, CB_EV_JOB_CANCEL_REQUESTED, "{\"reason\":\"user\"}"), 1);
    assert_true(w.job.cancel_requested);
    assert_int_equal(dispatch(&w, 2, 1), 0); /* no new dispatch after cancel */
    assert_int_equal(apply(&w, CB_EV_JOB_CANCELLED, "{}"), 1);
    assert_int_equal(w.job.status, CB_JOB_CANCELLED);
    /* running tasks' results are ignored once cancelled */
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 1, 1), 0);
    assert_int_equal(apply(&w, CB_EV_JOB_SUCCEEDED, "{\"result\":1}"), 0);
    assert_int_equal(w.job.status, CB_JOB_CANCELLED);
    world_cleanup(&w);
}

static void test_suspend_before_start(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    assert_int_equal(apply(&w, CB_EV_JOB_SUBMITTED, "{\"job\":{},\"digest\":\"d\"}"), 1);
    assert_int_equal(apply(&w, CB_EV_JOB_SUSPENDED, "{}"), 1);
    assert_int_equal(apply(&w, CB_EV_JOB_STARTED, "{\"tasks\":2}"), 1);
    assert_int_equal(w.job.status, CB_JOB_SUSPENDED);
    assert_int_equal(apply(&w, CB_EV_JOB_RESUMED, "{}"), 1);
    assert_int_equal(w.job.status, CB_JOB_RUNNING);
    assert_int_equal(w.job.total, 2);
    world_cleanup(&w);
}

static void test_rejected_and_failed(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    assert_int_equal(apply(&w, CB_EV_JOB_REJECTED, "{\"errors\":[\"/kind: bad\",\"/x: worse\"]}"),
                     1);
    assert_int_equal(w.job.status, CB_JOB_REJECTED);
    assert_string_equal(w.job.error, "/kind: bad; /x: worse");
    assert_int_equal(apply(&w, CB_EV_JOB_SUBMITTED, "{\"job\":{},\"digest\":\"d\"}"), 0);
    world_cleanup(&w);

    world_init(&w);
    start_job(&w, 1);
    assert_int_equal(apply(&w, CB_EV_JOB_FAILED, "{\"error\":\"task 0 failed 4 times\"}"), 1);
    assert_int_equal(w.job.status, CB_JOB_FAILED);
    assert_string_equal(w.job.error, "task 0 failed 4 times");
    assert_int_equal(apply(&w, CB_EV_JOB_CANCELLED, "{}"), 0);
    world_cleanup(&w);
}

/* Every task event against every task state: the resulting state. */
static void test_task_transition_table(void **state)
{
    static const struct {
        cb_task_status from;
        cb_event_type ev;
        int attempt; /* the event's attempt; the task is at attempt 1 (2 for RETRY_WAIT) */
        cb_task_status to;
    } rows[] = {
        /* an adapter's report of attempt 1 stands for a dispatch the log
         * lost (fold.h); of a later attempt it cannot */
        {CB_TASK_PENDING, CB_EV_TASK_STARTED, 1, CB_TASK_RUNNING},
        {CB_TASK_PENDING, CB_EV_TASK_SUCCEEDED, 1, CB_TASK_SUCCEEDED},
        {CB_TASK_PENDING, CB_EV_TASK_FAILED, 1, CB_TASK_FAILED},
        {CB_TASK_PENDING, CB_EV_TASK_SUCCEEDED, 2, CB_TASK_PENDING},
        {CB_TASK_PENDING, CB_EV_TASK_FAILED, 2, CB_TASK_PENDING},
        {CB_TASK_PENDING, CB_EV_TASK_TIMED_OUT, 1, CB_TASK_PENDING},
        {CB_TASK_DISPATCHED, CB_EV_TASK_STARTED, 1, CB_TASK_RUNNING},
        {CB_TASK_DISPATCHED, CB_EV_TASK_STARTED, 2, CB_TASK_DISPATCHED},
        {CB_TASK_DISPATCHED, CB_EV_TASK_SUCCEEDED, 1, CB_TASK_SUCCEEDED},
        {CB_TASK_DISPATCHED, CB_EV_TASK_SUCCEEDED, 2, CB_TASK_DISPATCHED},
        {CB_TASK_DISPATCHED, CB_EV_TASK_FAILED, 1, CB_TASK_FAILED},
        {CB_TASK_DISPATCHED, CB_EV_TASK_TIMED_OUT, 1, CB_TASK_TIMED_OUT},
        {CB_TASK_DISPATCHED, CB_EV_TASK_RETRY_SCHEDULED, 2, CB_TASK_DISPATCHED},
        {CB_TASK_RUNNING, CB_EV_TASK_STARTED, 1, CB_TASK_RUNNING},
        {CB_TASK_RUNNING, CB_EV_TASK_SUCCEEDED, 1, CB_TASK_SUCCEEDED},
        {CB_TASK_RUNNING, CB_EV_TASK_FAILED, 1, CB_TASK_FAILED},
        {CB_TASK_RUNNING, CB_EV_TASK_TIMED_OUT, 1, CB_TASK_TIMED_OUT},
        {CB_TASK_SUCCEEDED, CB_EV_TASK_SUCCEEDED, 1, CB_TASK_SUCCEEDED},
        {CB_TASK_SUCCEEDED, CB_EV_TASK_FAILED, 1, CB_TASK_SUCCEEDED},
        {CB_TASK_SUCCEEDED, CB_EV_TASK_TIMED_OUT, 1, CB_TASK_SUCCEEDED},
        {CB_TASK_SUCCEEDED, CB_EV_TASK_RETRY_SCHEDULED, 2, CB_TASK_SUCCEEDED},
        {CB_TASK_FAILED, CB_EV_TASK_RETRY_SCHEDULED, 2, CB_TASK_RETRY_WAIT},
        {CB_TASK_FAILED, CB_EV_TASK_RETRY_SCHEDULED, 1, CB_TASK_FAILED},
        {CB_TASK_FAILED, CB_EV_TASK_SUCCEEDED, 1, CB_TASK_SUCCEEDED},
        {CB_TASK_FAILED, CB_EV_TASK_FAILED, 1, CB_TASK_FAILED},
        {CB_TASK_TIMED_OUT, CB_EV_TASK_SUCCEEDED, 1, CB_TASK_SUCCEEDED},
        {CB_TASK_TIMED_OUT, CB_EV_TASK_RETRY_SCHEDULED, 2, CB_TASK_RETRY_WAIT},
        {CB_TASK_RETRY_WAIT, CB_EV_TASK_STARTED, 2, CB_TASK_RETRY_WAIT},
        {CB_TASK_RETRY_WAIT, CB_EV_TASK_SUCCEEDED, 1, CB_TASK_SUCCEEDED},
        {CB_TASK_RETRY_WAIT, CB_EV_TASK_FAILED, 2, CB_TASK_RETRY_WAIT},
        {CB_TASK_RETRY_WAIT, CB_EV_TASK_RETRY_SCHEDULED, 3, CB_TASK_RETRY_WAIT},
    };
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        world w;
        world_init(&w);
        start_job(&w, 1);
        /* drive the task to `from` */
        switch (rows[i].from) {
        case CB_TASK_PENDING:
            break;
        case CB_TASK_RETRY_WAIT:
            dispatch(&w, 0, 1);
            task_event(&w, CB_EV_TASK_FAILED, 0, 1);
            task_event(&w, CB_EV_TASK_RETRY_SCHEDULED, 0, 2);
            break;
        default:
            dispatch(&w, 0, 1);
            if (rows[i].from == CB_TASK_RUNNING)
                task_event(&w, CB_EV_TASK_STARTED, 0, 1);
            else if (rows[i].from == CB_TASK_SUCCEEDED)
                task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1);
            else if (rows[i].from == CB_TASK_FAILED)
                task_event(&w, CB_EV_TASK_FAILED, 0, 1);
            else if (rows[i].from == CB_TASK_TIMED_OUT)
                task_event(&w, CB_EV_TASK_TIMED_OUT, 0, 1);
            break;
        }
        assert_int_equal(w.tasks[0].status, rows[i].from);
        task_event(&w, rows[i].ev, 0, rows[i].attempt);
        if (w.tasks[0].status != rows[i].to)
            fprintf(stderr, "row %zu: %s + %s(attempt %d) -> %s, expected %s\n", i,
                    cb_task_status_name(rows[i].from), cb_event_type_name(rows[i].ev),
                    rows[i].attempt, cb_task_status_name(w.tasks[0].status),
                    cb_task_status_name(rows[i].to));
        assert_int_equal(w.tasks[0].status, rows[i].to);
        /* counters always add up */
        assert_int_equal(w.job.inflight + w.job.succeeded + w.job.failed + w.job.waiting,
                         w.tasks[0].status == CB_TASK_PENDING ? 0 : 1);
        world_cleanup(&w);
    }
}

static void test_out_of_range_task_is_ignored(void **state)
{
    world w;
    (void)state;
    world_init(&w);
    start_job(&w, 2);
    assert_int_equal(dispatch(&w, 2, 1), 0);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 5, 1), 0);
    assert_int_equal(w.job.succeeded, 0);
    world_cleanup(&w);
}

static void test_missing_data_field_is_einval_and_ignored(void **state)
{
    world w;
    cb_event ev;
    int applied = 7;
    (void)state;
    world_init(&w);
    start_job(&w, 1);
    assert_int_equal(cb_event_init(&ev, CB_EV_TASK_SUCCEEDED, "acme", "j1", "id", "t", 1,
                                   json_pack("{s:i}", "task", 0)),
                     CB_OK);
    assert_int_equal(cb_fold_apply(&w.job, &w.access, &ev, 9, &applied), CB_EINVAL);
    assert_int_equal(applied, 0);
    assert_int_equal(w.job.last_seq, 0);
    cb_event_cleanup(&ev);
    world_cleanup(&w);
}

/* DAG decisions: a skip, an expansion (children take the next indices) and
 * the step's success once collected; both survive the stored form. */
static void test_skip_and_expand(void **state)
{
    world w;
    cb_task_state back;
    json_t *o;
    (void)state;
    world_init(&w);
    start_job(&w, 2);
    assert_int_equal(apply(&w, CB_EV_TASK_SKIPPED, "{\"task\":0,\"reason\":\"when\"}"), 1);
    assert_int_equal(w.tasks[0].status, CB_TASK_SKIPPED);
    assert_int_equal(w.job.skipped, 1);
    assert_int_equal(apply(&w, CB_EV_TASK_SKIPPED, "{\"task\":0,\"reason\":\"when\"}"), 0);
    /* an expansion must start at the job's next index */
    assert_int_equal(apply(&w, CB_EV_TASK_EXPANDED, "{\"task\":1,\"first\":5,\"count\":3}"), 0);
    assert_int_equal(apply(&w, CB_EV_TASK_EXPANDED, "{\"task\":1,\"first\":2,\"count\":3}"), 1);
    assert_int_equal(w.job.total, 5);
    assert_int_equal(w.tasks[1].status, CB_TASK_EXPANDED);
    assert_int_equal(dispatch(&w, 4, 1), 1); /* a child is a task like any other */
    assert_int_equal(apply(&w, CB_EV_TASK_EXPANDED, "{\"task\":1,\"first\":5,\"count\":1}"), 0);
    o = cb_task_state_to_json(&w.tasks[1]);
    assert_non_null(o);
    assert_int_equal(cb_task_state_from_json(o, &back), CB_OK);
    assert_int_equal(back.status, CB_TASK_EXPANDED);
    assert_int_equal(back.first, 2);
    assert_int_equal(back.count, 3);
    cb_task_state_cleanup(&back);
    json_decref(o);
    assert_int_equal(task_event(&w, CB_EV_TASK_SUCCEEDED, 1, 1), 1); /* collected */
    assert_int_equal(w.tasks[1].status, CB_TASK_SUCCEEDED);
    assert_int_equal(w.job.succeeded, 1);
    world_cleanup(&w);
}

static char *fold_script_to_json(void)
{
    world w;
    json_t *o = json_object();
    char *s;
    world_init(&w);
    start_job(&w, 2);
    dispatch(&w, 0, 1);
    dispatch(&w, 1, 1);
    task_event(&w, CB_EV_TASK_FAILED, 1, 1);
    task_event(&w, CB_EV_TASK_RETRY_SCHEDULED, 1, 2);
    task_event(&w, CB_EV_TASK_SUCCEEDED, 0, 1);
    json_object_set_new(o, "job", cb_job_state_to_json(&w.job));
    json_object_set_new(o, "t0", cb_task_state_to_json(&w.tasks[0]));
    json_object_set_new(o, "t1", cb_task_state_to_json(&w.tasks[1]));
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    world_cleanup(&w);
    return s;
}

static void test_fold_is_deterministic_and_json_round_trips(void **state)
{
    char *a = fold_script_to_json(), *b = fold_script_to_json();
    json_error_t je;
    json_t *o;
    cb_job_state j;
    cb_task_state t;
    (void)state;
    assert_string_equal(a, b);
    o = json_loads(a, 0, &je);
    assert_int_equal(cb_job_state_from_json(json_object_get(o, "job"), &j), CB_OK);
    assert_int_equal(cb_task_state_from_json(json_object_get(o, "t1"), &t), CB_OK);
    json_t *j2 = cb_job_state_to_json(&j), *t2 = cb_task_state_to_json(&t);
    assert_true(json_equal(j2, json_object_get(o, "job")));
    assert_true(json_equal(t2, json_object_get(o, "t1")));
    assert_int_equal(j.waiting, 1);
    assert_int_equal(t.status, CB_TASK_RETRY_WAIT);
    assert_int_equal(t.attempt, 2);
    json_decref(j2);
    json_decref(t2);
    cb_job_state_cleanup(&j);
    cb_task_state_cleanup(&t);
    assert_int_equal(cb_job_state_from_json(json_object_get(o, "t0"), &j), CB_EINVAL);
    json_decref(o);
    free(a);
    free(b);
}

/* The partition plan: pages taken in order before the start, a repeat or a
 * page out of order ignored, nothing after the last page or the start; it
 * survives the JSON round trip, and a shared plan is copied, not changed. */
static void test_partition_pages(void **state)
{
    world w;
    json_t *o, *objs, *shared;
    cb_job_state back;
    (void)state;
    world_init(&w);
    assert_int_equal(apply(&w, CB_EV_JOB_PARTITIONED, "{\"page\":0,\"last\":false,\"objects\":[]}"),
                     0); /* before the submission */
    assert_int_equal(apply(&w, CB_EV_JOB_SUBMITTED,
                           "{\"job\":{\"tenant\":\"acme\",\"kind\":\"map\"},\"digest\":\"d\"}"),
                     1);
    assert_int_equal(apply(&w, CB_EV_JOB_PARTITIONED,
                           "{\"page\":1,\"last\":true,\"objects\":[{\"url\":\"s3://b/z\"}]}"),
                     0); /* out of order */
    assert_null(w.job.partition);
    assert_int_equal(apply(&w, CB_EV_JOB_PARTITIONED,
                           "{\"page\":0,\"last\":false,\"objects\":[{\"url\":\"s3://b/a\"},"
                           "{\"url\":\"s3://b/b\"}]}"),
                     1);
    assert_int_equal(apply(&w, CB_EV_JOB_PARTITIONED,
                           "{\"page\":0,\"last\":false,\"objects\":[{\"url\":\"s3://b/a\"}]}"),
                     0);                   /* a repeat */
    shared = json_incref(w.job.partition); /* a reader holds the plan */
    assert_int_equal(apply(&w, CB_EV_JOB_PARTITIONED,
                           "{\"page\":1,\"last\":true,\"objects\":[{\"url\":\"s3://b/c\"}]}"),
                     1);
    assert_int_equal(json_array_size(json_object_get(shared, "objects")), 2); /* unchanged */
    json_decref(shared);
    objs = json_object_get(w.job.partition, "objects");
    assert_int_equal(json_array_size(objs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(objs, 2), "url")),
                        "s3://b/c");
    assert_true(json_is_true(json_object_get(w.job.partition, "done")));
    assert_int_equal(json_integer_value(json_object_get(w.job.partition, "pages")), 2);
    assert_int_equal(apply(&w, CB_EV_JOB_PARTITIONED,
                           "{\"page\":2,\"last\":true,\"objects\":[{\"url\":\"s3://b/d\"}]}"),
                     0); /* after the last */
    assert_int_equal(apply(&w, CB_EV_JOB_PARTITIONED, "{\"last\":true,\"objects\":[]}"),
                     0); /* malformed: counted as ignored, nothing changes */
    o = cb_job_state_to_json(&w.job);
    assert_int_equal(cb_job_state_from_json(o, &back), CB_OK);
    assert_true(json_equal(back.partition, w.job.partition));
    cb_job_state_cleanup(&back);
    json_decref(o);
    assert_int_equal(apply(&w, CB_EV_JOB_STARTED, "{\"tasks\":3}"), 1);
    world_cleanup(&w);
    /* a job that never had objects has no "partition" in its record */
    world_init(&w);
    start_job(&w, 1);
    o = cb_job_state_to_json(&w.job);
    assert_null(json_object_get(o, "partition"));
    json_decref(o);
    world_cleanup(&w);
}

/* The commit's task text is the canonical JSON, byte for byte. */
static void test_task_text_is_the_canonical_json(void **state)
{
    static const char *const outputs[] = {
        NULL,
        "10",
        "-7",
        "2.5",
        "1e300",
        "\"a \\\"quoted\\\" \\n line\"",
        "\"caf\u00e9 \\u0001\"",
        "{\"b\":1,\"a\":{\"z\":[3,{\"y\":null,\"x\":true}],\"c\":false}}",
        "[]",
        "{}",
        "true",
        "null",
    };
    static const char *const errors[] = {NULL, "boom", "a \"quote\", a \\ and\na newline\t\x01",
                                         "\xc3\xa9t\xc3\xa9"};
    unsigned seed = 7;
    (void)state;
    for (int i = 0; i < 2000; i++) {
        cb_task_state t;
        json_t *o;
        char *want;
        cb_buf got = {0};
        memset(&t, 0, sizeof t);
        t.status = (cb_task_status)(rand_r(&seed) % 9);
        t.attempt = rand_r(&seed) % 3 ? (uint32_t)(rand_r(&seed) % 5) : 4000000000u;
        t.updated_ns = rand_r(&seed) % 2 ? 1795752142123456000LL + rand_r(&seed) : 0;
        t.due_ns = rand_r(&seed) % 2 ? 1795752142000000000LL : 0;
        if (rand_r(&seed) % 4 == 0) {
            t.first = rand_r(&seed) % 100;
            t.count = rand_r(&seed) % 3;
        }
        const char *out = outputs[rand_r(&seed) % (sizeof outputs / sizeof outputs[0])];
        const char *err = errors[rand_r(&seed) % (sizeof errors / sizeof errors[0])];
        t.output = out ? json_loads(out, JSON_DECODE_ANY, NULL) : NULL;
        assert_true(!out || t.output);
        t.error = err ? strdup(err) : NULL;
        o = cb_task_state_to_json(&t);
        assert_non_null(o);
        want = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        assert_int_equal(cb_task_state_text(&t, &got), CB_OK);
        assert_string_equal(got.p, want);
        free(want);
        json_decref(o);
        cb_buf_cleanup(&got);
        json_decref(t.output);
        free(t.error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path_counts),
        cmocka_unit_test(test_a_job_s_partition_is_recorded),
        cmocka_unit_test(test_memoized_successes_are_counted),
        cmocka_unit_test(test_costs_count_every_invocation_once),
        cmocka_unit_test(test_a_backup_attempt_races_the_original),
        cmocka_unit_test(test_a_pool_s_members_are_counted),
        cmocka_unit_test(test_a_mixed_job_s_accounts_are_counted),
        cmocka_unit_test(test_a_stored_result_is_recorded_as_a_reference),
        cmocka_unit_test(test_duplicates_are_ignored_and_counted),
        cmocka_unit_test(test_events_before_submission_leave_job_absent),
        cmocka_unit_test(test_retry_cycle_and_late_reports),
        cmocka_unit_test(test_timeout_then_retry),
        cmocka_unit_test(test_suspend_resume_cancel),
        cmocka_unit_test(test_suspend_before_start),
        cmocka_unit_test(test_rejected_and_failed),
        cmocka_unit_test(test_task_transition_table),
        cmocka_unit_test(test_out_of_range_task_is_ignored),
        cmocka_unit_test(test_missing_data_field_is_einval_and_ignored),
        cmocka_unit_test(test_fold_is_deterministic_and_json_round_trips),
        cmocka_unit_test(test_skip_and_expand),
        cmocka_unit_test(test_partition_pages),
        cmocka_unit_test(test_task_text_is_the_canonical_json),
        cmocka_unit_test(test_a_batch_of_successes_folds_as_its_parts),
        cmocka_unit_test(test_reports_of_a_lost_dispatch_stand_for_it),
    };
    return cmocka_run_group_tests_name("fold", tests, NULL, NULL);
}
