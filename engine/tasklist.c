/* engine/tasklist.c - task records collected from the store (see tasklist.h). */
#include "tasklist.h"

#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"

cb_status cb_task_list_reserve(cb_task_list *l, size_t n)
{
    size_t cap = l->cap ? l->cap : 64;
    uint32_t *ix;
    cb_task_state *ts;
    if (n <= l->cap)
        return CB_OK;
    while (cap < n)
        cap *= 2;
    if (!(ix = cb_realloc(l->index, cap * sizeof *ix)))
        return CB_ENOMEM;
    l->index = ix;
    if (!(ts = cb_realloc(l->tasks, cap * sizeof *ts)))
        return CB_ENOMEM;
    l->tasks = ts;
    l->cap = cap;
    return CB_OK;
}

int cb_task_list_add(uint32_t index, const cb_task_state *t, void *arg)
{
    cb_task_list *l = arg;
    if (cb_task_list_reserve(l, l->n + 1) != CB_OK) {
        l->oom = 1;
        return 1;
    }
    l->index[l->n] = index;
    l->tasks[l->n] = *t;
    l->tasks[l->n].output = json_incref(t->output);
    l->tasks[l->n].error = t->error ? cb_strdup(t->error) : NULL;
    l->n++;
    return 0;
}

cb_task_view cb_task_list_view(const cb_task_list *l)
{
    cb_task_view v = {l->index, l->tasks, l->n};
    return v;
}

const cb_task_state *cb_task_list_get(const cb_task_list *l, uint32_t index)
{
    cb_task_view v = cb_task_list_view(l);
    return cb_task_view_get(&v, index);
}

void cb_task_list_cleanup(cb_task_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        cb_task_state_cleanup(&l->tasks[i]);
    free(l->index);
    free(l->tasks);
    memset(l, 0, sizeof *l);
}
