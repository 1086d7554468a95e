/* tests/test_fence.c - ownership of partitions (docs/scale.md, "Ownership
 * with failover"): the fence (projector/fence.h) that ignores a stale
 * owner's decisions after another engine's claim, the same in the
 * projector's batch and the engine's mirror and after a restart of either;
 * and the rendezvous of the live engines (engine/owners.h). */
#define _GNU_SOURCE
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cb_event.h"
#include "fence.h"
#include "mirror.h"
#include "owners.h"
#include "store.h"
#include "views.h"

#define PART 2 /* the partition the log below is of */

static cb_event make(cb_event_type type, const char *tenant, const char *job, const char *id,
                     const char *source, const char *data)
{
    cb_event ev;
    assert_int_equal(cb_event_init(&ev, type, tenant, job, id, source, 1795752142000000000LL,
                                   json_loads(data, 0, NULL)),
                     CB_OK);
    return ev;
}

static cb_event claim_of(const char *claim, const char *engine, int partition)
{
    char data[200], id[120];
    snprintf(data, sizeof data, "{\"claim\":\"%s\",\"engine\":\"%s\",\"partition\":%d}", claim,
             engine, partition);
    snprintf(id, sizeof id, "%s/claimed", claim);
    return make(CB_EV_PARTITION_CLAIMED, CB_CLAIM_TENANT, CB_CLAIM_JOB, id, "cbcore/engine", data);
}

static void test_tokens_and_sources(void **state)
{
    (void)state;
    assert_true(cb_fence_token_valid("engine-1.1796367571683"));
    assert_false(cb_fence_token_valid("engine"));
    assert_false(cb_fence_token_valid(".12"));
    assert_false(cb_fence_token_valid("a.b"));
    assert_false(cb_fence_token_valid("a b.1"));
    assert_false(cb_fence_token_valid(NULL));
    assert_string_equal(cb_fence_claim_of("cbcore/engine/e1.5"), "e1.5");
    assert_null(cb_fence_claim_of("cbcore/engine"));
    assert_null(cb_fence_claim_of("cbcore/engine/"));
    assert_null(cb_fence_claim_of("cbcore/adapter/local/w0"));
    assert_null(cb_fence_claim_of("cbcore/engineX/e1.5"));
    assert_null(cb_fence_claim_of(NULL));
}

/* Claims decide whose decisions count; intake, adapters and engines
 * without a claim always count. */
static void test_the_last_claim_decides(void **state)
{
    cb_fence f = {{0}};
    cb_event a = make(CB_EV_JOB_STARTED, "acme", "j1", "i1", "cbcore/engine/a.1", "{}");
    cb_event b = make(CB_EV_JOB_STARTED, "acme", "j1", "i2", "cbcore/engine/b.7", "{}");
    cb_event intake = make(CB_EV_JOB_STARTED, "acme", "j1", "i3", "cbcore/engine", "{}");
    cb_event adapter = make(CB_EV_JOB_STARTED, "acme", "j1", "i4", "cbcore/adapter/local/w", "{}");
    cb_event ca = claim_of("a.1", "a", PART), cb = claim_of("b.7", "b", PART);
    cb_event other = claim_of("b.8", "b", PART + 1), bad = claim_of("b", "b", PART);
    (void)state;
    assert_true(cb_fence_admits(&f, &a)); /* no claim yet: a log before claims */
    assert_true(cb_fence_admits(&f, &b));
    assert_int_equal(cb_fence_claim(&f, &ca, PART), CB_OK);
    assert_true(cb_fence_admits(&f, &a));
    assert_false(cb_fence_admits(&f, &b));
    assert_int_equal(cb_fence_claim(&f, &cb, PART), CB_OK);
    assert_false(cb_fence_admits(&f, &a)); /* the stale owner */
    assert_true(cb_fence_admits(&f, &b));
    assert_true(cb_fence_admits(&f, &intake));
    assert_true(cb_fence_admits(&f, &adapter));
    assert_int_equal(cb_fence_claim(&f, &other, PART), CB_EINVAL); /* another partition's */
    assert_int_equal(cb_fence_claim(&f, &bad, PART), CB_EINVAL);
    assert_int_equal(cb_fence_claim(&f, &a, PART), CB_EINVAL); /* not a claim */
    assert_string_equal(f.claim, "b.7");
    cb_event *all[] = {&a, &b, &intake, &adapter, &ca, &cb, &other, &bad};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        cb_event_cleanup(all[i]);
}

/* A log where engine a drives job j1, then b claims the partition while a,
 * stale, still appends: a's later decisions count nowhere. */
typedef struct step {
    cb_event_type type;
    const char *source, *data;
    int claim; /* 1: a's claim, 2: b's */
} step;

static const step LOG[] = {
    {0, NULL, NULL, 1},
    {CB_EV_JOB_SUBMITTED, "cbcore/engine",
     "{\"job\":{\"tenant\":\"acme\",\"kind\":\"map\"},\"digest\":\"d\",\"partition\":2}", 0},
    {CB_EV_JOB_STARTED, "cbcore/engine/a.1", "{\"tasks\":2}", 0},
    {CB_EV_TASKS_DISPATCHED, "cbcore/engine/a.1", "{\"tasks\":[{\"task\":0,\"attempt\":1}]}", 0},
    {0, NULL, NULL, 2},
    /* a does not know yet: its dispatch and its end are ignored */
    {CB_EV_TASKS_DISPATCHED, "cbcore/engine/a.1", "{\"tasks\":[{\"task\":1,\"attempt\":1}]}", 0},
    {CB_EV_TASK_SUCCEEDED, "cbcore/adapter/local/w0", "{\"task\":0,\"attempt\":1,\"output\":1}", 0},
    {CB_EV_JOB_FAILED, "cbcore/engine/a.1", "{\"error\":\"stale\"}", 0},
    {CB_EV_TASKS_DISPATCHED, "cbcore/engine/b.7", "{\"tasks\":[{\"task\":1,\"attempt\":1}]}", 0},
    {CB_EV_TASK_SUCCEEDED, "cbcore/adapter/local/w0", "{\"task\":1,\"attempt\":1,\"output\":2}", 0},
};
#define NLOG (sizeof LOG / sizeof *LOG)

static cb_event log_event(size_t i)
{
    char id[40];
    if (LOG[i].claim)
        return claim_of(LOG[i].claim == 1 ? "a.1" : "b.7", LOG[i].claim == 1 ? "a" : "b", PART);
    snprintf(id, sizeof id, "acme/j1/%zu", i);
    return make(LOG[i].type, "acme", "j1", id, LOG[i].source, LOG[i].data);
}

static void check_state(const cb_job_state *js, const cb_task_state *t0, const cb_task_state *t1)
{
    assert_int_equal(js->status, CB_JOB_RUNNING); /* a's failure did not count */
    assert_int_equal(js->log_partition, PART);
    assert_int_equal(t0->status, CB_TASK_SUCCEEDED);
    assert_int_equal(t1->status, CB_TASK_SUCCEEDED);
}

typedef struct snap {
    cb_job_state js;
    cb_task_state t[2];
    int jobs;
} snap;

static int snap_job(const char *key, cb_job_state *js, void *arg)
{
    snap *s = arg;
    (void)key;
    s->js = *js;
    memset(js, 0, sizeof *js);
    s->jobs++;
    return 0;
}

static int snap_task(uint32_t index, const cb_task_state *t, void *arg)
{
    snap *s = arg;
    if (index < 2)
        s->t[index].status = t->status;
    return 0;
}

/* The projector's batch and the engine's mirror fold the log alike; the
 * store keeps the claim (the snapshot hands it to a mirror), so a batch
 * after a restart still fences a. */
static void test_batch_and_mirror_fence_alike(void **state)
{
    char dir[64];
    cb_store *st = NULL;
    cb_batch *b = NULL;
    cb_mirror *m = cb_mirror_new();
    cb_mirror_job *mj = NULL;
    snap sn;
    cb_fence fence;
    uint64_t seq = 0;
    int applied;
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/cbfence.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_non_null(m);
    assert_int_equal(cb_store_open(dir, 0, 0, &st), CB_OK);
    assert_int_equal(cb_batch_begin(st, NULL, &b), CB_OK);
    for (size_t i = 0; i < NLOG; i++) {
        cb_event ev = log_event(i);
        assert_int_equal(cb_batch_apply(b, PART, &ev, i + 1, &applied), CB_OK);
        assert_int_equal(cb_mirror_apply(m, PART, &ev, i + 1, &mj, &applied), CB_OK);
        cb_event_cleanup(&ev);
        if (i == 4) { /* b's claim commits on its own: the rest in a new batch */
            cb_batch_position(b, PART, i + 1);
            assert_int_equal(cb_batch_commit(b, 0), CB_OK);
            assert_int_equal(cb_batch_begin(st, NULL, &b), CB_OK);
        }
    }
    assert_int_equal(cb_batch_stats_get(b)->fenced, 2); /* a's dispatch and failure */
    cb_batch_position(b, PART, NLOG);
    assert_int_equal(cb_batch_commit(b, 0), CB_OK);
    /* the mirror */
    mj = cb_mirror_get(m, "acme/j1");
    assert_non_null(mj);
    assert_string_equal(cb_mirror_fence(m, PART)->claim, "b.7");
    check_state(&mj->js, cb_task_list_get(&mj->tasks, 0), cb_task_list_get(&mj->tasks, 1));
    /* the store, and its snapshot with the claim */
    memset(&sn, 0, sizeof sn);
    assert_int_equal(cb_view_active_snapshot(st, PART, snap_job, snap_task, &sn, &seq, &fence),
                     CB_OK);
    assert_int_equal(sn.jobs, 1);
    assert_int_equal(seq, NLOG);
    assert_string_equal(fence.claim, "b.7");
    check_state(&sn.js, &sn.t[0], &sn.t[1]);
    cb_job_state_cleanup(&sn.js);
    /* after a restart: a's late append is still ignored by both */
    {
        cb_event late = make(CB_EV_JOB_FAILED, "acme", "j1", "late", "cbcore/engine/a.1",
                             "{\"error\":\"stale\"}");
        cb_job_state js;
        memset(&js, 0, sizeof js);
        assert_int_equal(cb_batch_begin(st, NULL, &b), CB_OK);
        assert_int_equal(cb_batch_apply(b, PART, &late, NLOG + 1, &applied), CB_OK);
        assert_int_equal(applied, 0);
        assert_int_equal(cb_batch_stats_get(b)->fenced, 1);
        assert_int_equal(cb_batch_commit(b, 0), CB_OK);
        assert_int_equal(cb_view_job(st, "acme/j1", &js), CB_OK);
        assert_int_equal(js.status, CB_JOB_RUNNING);
        cb_job_state_cleanup(&js);
        assert_int_equal(cb_mirror_apply(m, PART, &late, NLOG + 1, &mj, &applied), CB_OK);
        assert_int_equal(applied, 0);
        assert_int_equal(cb_mirror_status(m, "acme/j1"), CB_JOB_RUNNING);
        cb_event_cleanup(&late);
    }
    /* a partition given up: its jobs, position and claim go */
    cb_mirror_forget_partition(m, PART);
    assert_null(cb_mirror_get(m, "acme/j1"));
    assert_int_equal(cb_mirror_seq(m, PART), 0);
    assert_string_equal(cb_mirror_fence(m, PART)->claim, "");
    cb_mirror_free(m);
    cb_store_close(st);
    {
        char cmd[100];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
    }
}

/* Engines with the same live set agree on every partition's owner, and the
 * shares are even (at most ceil(P/E) each; with P = E one each); one
 * engine's death moves its partitions to the others and few besides;
 * beats keep engines live. */
static void test_owners_agree_share_evenly_and_take_over_the_dead_s(void **state)
{
    static const char *const names[] = {"e0", "e1", "e2", "e3"};
    cb_owners o[4];
    unsigned owner[64], count[3] = {0}, moved = 0;
    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cb_owners_init(&o[i], names[i], 600), 0);
        for (int j = 0; j < 3; j++)
            assert_int_equal(cb_owners_heard(&o[i], names[j], 0), i == j ? 0 : 1);
        assert_int_equal(cb_owners_live(&o[i]), 3);
    }
    assert_int_equal(cb_owners_heard(&o[0], "e1", 1), 0); /* known: not news */
    for (unsigned k = 0; k < 64; k++) {
        int mine = 0;
        for (int i = 0; i < 3; i++)
            if (cb_owners_mine(&o[i], k, 64)) {
                owner[k] = (unsigned)i;
                mine++;
            }
        assert_int_equal(mine, 1);
        for (int i = 0; i < 3; i++)
            assert_string_equal(cb_owners_owner(&o[i], k, 64), names[owner[k]]);
        count[owner[k]]++;
    }
    for (int i = 0; i < 3; i++) /* even: at most ceil(64/3) = 22, so at least 20 */
        assert_true(count[i] >= 20 && count[i] <= 22);
    assert_null(cb_owners_owner(&o[0], 64, 64));
    /* e2 stops beating: after the dead time it is gone for e0 and e1 */
    assert_int_equal(cb_owners_heard(&o[0], "e1", 500), 0);
    assert_int_equal(cb_owners_heard(&o[1], "e0", 500), 0);
    assert_int_equal(cb_owners_expire(&o[0], 1000), 1);
    assert_int_equal(cb_owners_expire(&o[1], 1000), 1);
    assert_int_equal(cb_owners_live(&o[0]), 2);
    count[0] = count[1] = 0; /* (count[2]: e2's, kept for the message) */
    for (unsigned k = 0; k < 64; k++) {
        bool m0 = cb_owners_mine(&o[0], k, 64), m1 = cb_owners_mine(&o[1], k, 64);
        assert_true(m0 != m1);
        count[m0 ? 0 : 1]++;
        if (owner[k] != 2 && (owner[k] == 0 ? !m0 : !m1))
            moved++; /* a survivor's partition moved to even the shares */
    }
    assert_int_equal(count[0], 32);
    assert_int_equal(count[1], 32);
    print_message("a death moved e2's %u partitions and %u of the survivors'\n", count[2], moved);
    assert_true(moved <= 4);
    /* as many partitions as engines: one each (plain rendezvous hashing
     * could give two to one and none to another) */
    for (unsigned parts = 2; parts <= 4; parts++) {
        unsigned per[4] = {0};
        for (int i = 0; i < (int)parts; i++) {
            assert_int_equal(cb_owners_init(&o[i], names[i], 600), 0);
            for (int j = 0; j < (int)parts; j++)
                cb_owners_heard(&o[i], names[j], 0);
        }
        for (unsigned k = 0; k < parts; k++) {
            const char *who = cb_owners_owner(&o[0], k, parts);
            for (int i = 0; i < (int)parts; i++) {
                assert_string_equal(cb_owners_owner(&o[i], k, parts), who);
                if (!strcmp(who, names[i]))
                    per[i]++;
            }
        }
        for (unsigned i = 0; i < parts; i++)
            assert_int_equal(per[i], 1);
    }
    assert_int_equal(cb_owners_heard(&o[0], "not a name!", 0), -1);
    assert_int_equal(cb_owners_init(&o[0], "", 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens_and_sources),
        cmocka_unit_test(test_the_last_claim_decides),
        cmocka_unit_test(test_batch_and_mirror_fence_alike),
        cmocka_unit_test(test_owners_agree_share_evenly_and_take_over_the_dead_s),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
