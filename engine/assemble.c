/* engine/assemble.c - a result from the store's task records (see assemble.h). */
#include "assemble.h"

#include <stdio.h>

#include "flow.h"
#include "result.h"
#include "tasklist.h"
#include "views.h"

json_t *cb_result_assemble(cb_store *st, const char *key, const cb_job_state *js, char *err,
                           size_t errlen)
{
    cb_flow flow = {0};
    cb_task_list tl = {0};
    char why[256];
    json_t *r = NULL;
    cb_status s;
    if (cb_flow_build(js->spec, 0, &flow, why, sizeof why) != CB_OK) {
        snprintf(err, errlen, "%s", why);
        return NULL;
    }
    if ((s = cb_view_job_tasks(st, key, cb_task_list_add, &tl)) != CB_OK)
        snprintf(err, errlen, "the task records cannot be read: %s", cb_strerror(s));
    else if (tl.oom)
        snprintf(err, errlen, "out of memory");
    else {
        cb_task_view v = cb_task_list_view(&tl);
        if (!(r = cb_result_of(&flow, &v, NULL)))
            snprintf(err, errlen, "the result cannot be put together from the task records");
    }
    cb_task_list_cleanup(&tl);
    cb_flow_cleanup(&flow);
    return r;
}
