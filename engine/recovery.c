/* engine/recovery.c - after a restart (see control_int.h): the commands of
 * tasks dispatched before may never have been put, or were taken by an
 * adapter that died; they are put again, grouped as ctl_invoke_cmds groups
 * them (the queue's de-duplication absorbs a command with the same id, and
 * the fold's attempt check a task run twice). */
#include "control_int.h"

#include <stdlib.h>

#include "cb_log.h"

/* After a restart: the commands of tasks dispatched before may not have been
 * put (or were taken by an adapter that died): put them again. */
void ctl_recover(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb)
{
    json_t *invokes = json_array();
    cb_task_ref *refs = tb->n ? calloc(tb->n, sizeof *refs) : NULL;
    const cb_pool *pool = j->backend ? j->backend->pool : NULL;
    /* a pool's job: each member's commands to it (one pass per member) */
    for (size_t k = 0; k < (pool ? pool->n : 1); k++) {
        int member = pool ? (int)k : -1;
        size_t n = 0;
        for (size_t i = 0; refs && i < tb->n; i++) {
            const cb_task_state *t = &tb->tasks[i];
            if (t->status == CB_TASK_DISPATCHED && ctl_task_member(j, js, t, t->backup) == member)
                refs[n++] = (cb_task_ref){.task = tb->index[i], .attempt = t->attempt};
        }
        if (invokes && n > 0)
            ctl_invoke_cmds(c, j, js, tb, refs, n, member, invokes);
    }
    free(refs);
    if (invokes && json_array_size(invokes) > 0) {
        cb_log_job(CB_LOG_INFO, "control", j->tenant, j->job,
                   "re-sending %zu invocation commands of dispatched tasks",
                   json_array_size(invokes));
        ctl_put_invokes(c, j, invokes);
    }
    json_decref(invokes);
    j->recovered = 1;
}
