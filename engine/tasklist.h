/* engine/tasklist.h - a job's task records collected from the store (a
 * cb_view_job_tasks / cb_view_job_open_tasks callback) and the view the
 * scheduler and the result assembly read over them.
 *
 * Owns copies of the records (outputs referenced, errors duplicated); the
 * view borrows them until cb_task_list_cleanup(). Records must be added in
 * ascending index order (the store's order). Not thread-safe. */
#ifndef CB_TASKLIST_H
#define CB_TASKLIST_H
#include <stddef.h>
#include <stdint.h>

#include "fold.h"
#include "scheduler.h"

typedef struct cb_task_list {
    uint32_t *index;
    cb_task_state *tasks;
    size_t n, cap;
    int oom; /* an add ran out of memory: the list is incomplete */
} cb_task_list;

/* A cb_view_task_fn: copy record `t` of task `index` into the list (arg).
 * Returns 1 (stop) when out of memory, with list->oom set. */
int cb_task_list_add(uint32_t index, const cb_task_state *t, void *arg);
/* Room for at least n records (n > 0). Errors: CB_ENOMEM (the list is
 * unchanged). */
CB_NODISCARD cb_status cb_task_list_reserve(cb_task_list *l, size_t n);
cb_task_view cb_task_list_view(const cb_task_list *l);
const cb_task_state *cb_task_list_get(const cb_task_list *l, uint32_t index);
/* Release the records; the list is empty (and reusable) afterwards. */
void cb_task_list_cleanup(cb_task_list *l);

#endif /* CB_TASKLIST_H */
