/* projector/jobfold.c - a job folded in memory (see jobfold.h). */
#include "jobfold.h"

#include <stdio.h>
#include <string.h>

#include "cb_alloc.h"

void cb_jobfold_init(cb_jobfold *f)
{
    memset(f, 0, sizeof *f);
    cb_map_init(&f->tasks);
}

static void free_task(uint64_t idx, void *val, void *arg)
{
    (void)idx;
    (void)arg;
    cb_task_state_cleanup(val);
    cb_free(val);
}

void cb_jobfold_cleanup(cb_jobfold *f)
{
    cb_map_each(&f->tasks, free_task, NULL);
    cb_map_cleanup(&f->tasks);
    cb_job_state_cleanup(&f->job);
}

static cb_task_state *get_task(void *arg, uint32_t idx)
{
    cb_jobfold *f = arg;
    cb_task_state *ts = cb_map_get(&f->tasks, idx);
    if (!ts && (ts = cb_calloc(1, sizeof *ts)) && cb_map_put(&f->tasks, idx, ts) != CB_OK) {
        cb_free(ts);
        ts = NULL;
    }
    return ts;
}

cb_status cb_jobfold_apply(cb_jobfold *f, const cb_event *ev, uint64_t seq)
{
    cb_fold_tasks access = {get_task, f};
    int applied;
    cb_status s = cb_fold_apply(&f->job, &access, ev, seq, &applied);
    return s == CB_ENOMEM ? CB_ENOMEM : CB_OK;
}

typedef struct put_ctx {
    json_t *o;
    int failed;
} put_ctx;

static void put_task(uint64_t idx, void *val, void *arg)
{
    put_ctx *c = arg;
    char key[24];
    json_t *t = cb_task_state_to_json(val);
    snprintf(key, sizeof key, "%llu", (unsigned long long)idx);
    if (!t || json_object_set_new(c->o, key, t) != 0)
        c->failed = 1;
}

json_t *cb_jobfold_tasks_json(const cb_jobfold *f)
{
    put_ctx c = {json_object(), 0};
    if (!c.o)
        return NULL;
    cb_map_each(&f->tasks, put_task, &c);
    if (c.failed) {
        json_decref(c.o);
        return NULL;
    }
    return c.o;
}
