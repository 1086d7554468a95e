/* engine/completion.c - the end of a job (see control_int.h): the result
 * (result.h), the done message (cb_msg_done.h) published first, the
 * terminal event appended once it is confirmed. */
#include "control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "cb_log.h"
#include "cb_msg_done.h"
#include "result.h"

cb_status ctl_emit_terminal(cb_control *c, cjob *j, json_t *terminal)
{
    cb_event_type type = (cb_event_type)json_integer_value(json_object_get(terminal, "type"));
    json_t *data = json_incref(json_object_get(terminal, "data"));
    return ctl_emit(c, j, type, cb_event_type_name(type) + 3, data, NULL);
}

/* Publish the done message, then (ctl_op_done) append the terminal event. */
void ctl_end_job(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                 const cb_sched_plan *p, int64_t now, bool by_ref)
{
    static const char *const status[] = {
        [CB_END_SUCCEED] = "succeeded", [CB_END_FAIL] = "failed", [CB_END_CANCEL] = "cancelled"};
    json_t *data, *result = NULL, *failed = NULL;
    cb_done_msg done;
    cb_event_type type;
    char subject[320], id[320], ref[300], *text;
    op *o;
    cb_status s;

    cb_done_msg_init(&done, j->tenant, j->job, status[p->end]);
    if (p->end == CB_END_SUCCEED) {
        char *rtext = NULL;
        type = CB_EV_JOB_SUCCEEDED;
        cb_task_view v = cb_task_list_view(tb);
        if (by_ref) {
            failed = cb_result_map_lost(&j->flow, &v);
        } else {
            result = cb_result_of(&j->flow, &v, &failed);
            rtext = result ? cb_json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        }
        if (rtext && strlen(rtext) <= c->o.inline_result_max) {
            done.result = result;
            data = json_pack("{s:O}", "result", result);
        } else {
            /* too large to inline: the outputs stay in the task records */
            snprintf(ref, sizeof ref, "cb://%s/%s/result", j->tenant, j->job);
            done.result_ref = ref;
            data = json_pack("{s:s}", "result_ref", ref);
        }
        free(rtext);
        if (failed && data) { /* tolerated losses: which items have no output, and why */
            done.failed = failed;
            json_object_set(data, "failed", failed);
        }
    } else if (p->end == CB_END_FAIL) {
        type = CB_EV_JOB_FAILED;
        done.error = p->error[0] ? p->error : "failed";
        data = json_pack("{s:s}", "error", done.error);
    } else {
        type = CB_EV_JOB_CANCELLED;
        data = json_object();
    }
    done.has_counts = 1;
    done.counts.total = js->total;
    done.counts.succeeded = js->succeeded;
    done.counts.retries = js->retries;
    for (size_t i = 0; i < tb->n; i++)
        if (tb->tasks[i].status == CB_TASK_FAILED || tb->tasks[i].status == CB_TASK_TIMED_OUT)
            done.counts.failed++;
    done.submitted_ns = js->submitted_ns;
    done.started_ns = js->started_ns;
    done.finished_ns = now;
    done.makespan_ms = (double)(now - js->submitted_ns) / 1e6;
    text = cb_done_msg_text(&done);
    json_decref(result);
    json_decref(failed);
    o = ctl_op_new(c, j, OP_DONE);
    if (!o || !text || !data) {
        free(text);
        json_decref(data);
        if (o)
            ctl_op_free(o);
        return;
    }
    o->terminal = json_pack("{s:i, s:o}", "type", (json_int_t)type, "data", data);
    snprintf(subject, sizeof subject, "cb.done.%s.%s", j->tenant, j->job);
    snprintf(id, sizeof id, "%s/%s/done", j->tenant, j->job);
    s = cb_broker_notify(c->b, subject, id, text, strlen(text), ctl_op_done, o);
    free(text);
    if (s != CB_OK) {
        c->stats.errors++;
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "cannot publish done: %s",
                   cb_strerror(s));
        ctl_op_free(o);
        ctl_job_wake(j, 500);
        return;
    }
    cb_log_job(CB_LOG_INFO, "control", j->tenant, j->job, "job %s", status[p->end]);
    j->ending = 1;
    j->end_status = status[p->end];
    j->pending++;
}
