/* engine/completion.c - the end of a job (see control_int.h): the result
 * (result.h), the done message (cb_msg_done.h) published first, the
 * terminal event appended once it is confirmed.
 *
 * A result whose JSON text is over the inline limit (256 KiB) is written,
 * when the engine has object storage, as one object
 *
 *     s3://RESULTS_BUCKET/results/TENANT/JOB/result-SHA16.json
 *
 * (SHA16: the first 16 hex digits of its sha256, so a re-planned end that
 * writes other bytes never changes an object a published done message
 * names) before the done message goes out with result_ref, result_size and
 * result_sha256. The write runs on the storage's asynchronous calls: the job
 * counts it as pending, so nothing is planned meanwhile. Without storage,
 * or when the write fails, the done message says cb://TENANT/JOB/result and
 * `cb result` assembles the result from the task records. */
#include "control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_digest.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_msg_done.h"
#include "cb_storage.h"
#include "result.h"

/* A result being written to storage; the done message waits for it. */
typedef struct result_put {
    op *o; /* OP_RESULT: the controller and the job's key */
    cb_done_msg done;
    char tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1];
    json_t *failed; /* owned: done.failed */
    json_t *data;   /* owned: the terminal event's data */
    char url[CB_STORAGE_URL_MAX], sha[65];
    size_t size;
} result_put;

cb_status ctl_emit_terminal(cb_control *c, cjob *j, json_t *terminal)
{
    cb_event_type type = (cb_event_type)json_integer_value(json_object_get(terminal, "type"));
    json_t *data = json_incref(json_object_get(terminal, "data"));
    return ctl_emit(c, j, type, cb_event_type_name(type) + 3, data, NULL);
}

/* Publish the done message; its confirmation (ctl_op_done) appends the
 * terminal event {type, data} (data stolen). */
static void publish_done(cb_control *c, cjob *j, const cb_done_msg *done, cb_event_type type,
                         json_t *data)
{
    char subject[320], id[320], *text = cb_done_msg_text(done);
    op *o = ctl_op_new(c, j, OP_DONE);
    cb_status s;

    j->ending = 0;
    if (!o || !text || !data) {
        free(text);
        json_decref(data);
        if (o)
            ctl_op_free(o);
        ctl_job_wake(j, 500);
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
    cb_log_job(CB_LOG_INFO, "control", j->tenant, j->job, "job %s", done->status);
    j->ending = 1;
    j->end_status = done->status;
    j->pending++;
}

/* The result is referenced as assembled from the task records. */
static json_t *ref_to_records(const cjob *j, cb_done_msg *done, char *ref, size_t n)
{
    snprintf(ref, n, "cb://%s/%s/result", j->tenant, j->job);
    done->result_ref = ref;
    return json_pack("{s:s}", "result_ref", ref);
}

static void result_stored(const cb_storage_res *r, void *ctx)
{
    result_put *rp = ctx;
    cb_control *c = rp->o->c;
    cjob *j = ctl_op_job(rp->o);
    char ref[300];
    if (j) {
        json_t *data = rp->data;
        rp->data = NULL;
        j->pending--;
        if (r->status == CB_OK) {
            rp->done.result_ref = rp->url;
            rp->done.result_size = (int64_t)rp->size;
            rp->done.result_sha256 = rp->sha;
            if (json_object_set_new(data, "result_ref", json_string(rp->url)) ||
                json_object_set_new(data, "result_size", json_integer((json_int_t)rp->size)) ||
                json_object_set_new(data, "result_sha256", json_string(rp->sha))) {
                json_decref(data);
                data = NULL; /* publish_done retries the end */
            }
        } else {
            c->stats.errors++;
            cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job,
                       "cannot store the result (%zu bytes): %s; it is referenced as assembled "
                       "from the task records",
                       rp->size, r->error);
            json_decref(data);
            if ((data = ref_to_records(j, &rp->done, ref, sizeof ref)) && rp->failed)
                json_object_set(data, "failed", rp->failed);
        }
        publish_done(c, j, &rp->done, CB_EV_JOB_SUCCEEDED, data);
    }
    json_decref(rp->failed);
    json_decref(rp->data);
    ctl_op_free(rp->o); /* last: it may release a stopped controller */
    free(rp);
}

/* A kept output's text (cb_result_text_fn over the job's mirror). */
static const char *kept_text(uint32_t task, size_t *n, void *arg)
{
    return cb_mirror_kept_output(arg, task, n);
}

/* Start writing the result (text, or a by_ref map's assembled here) to
 * storage; done and failed are copied. False when it cannot start (the
 * caller references the records instead). */
static bool store_result(cb_control *c, cjob *j, const cb_task_list *tb, const cb_done_msg *done,
                         json_t *failed, const char *text, size_t len)
{
    char *built = NULL, err[600];
    result_put *rp;
    if (!c->o.storage)
        return false;
    if (!text) { /* a map's outputs, from the text the mirror kept */
        cb_mirror_job *mj = cb_mirror_get(c->mirror, j->key);
        cb_task_view v = cb_task_list_view(tb);
        if (!mj || !(built = cb_result_map_text(&j->flow, &v, kept_text, mj, &len)))
            return false;
        text = built;
    }
    if (!(rp = cb_calloc(1, sizeof *rp)) || !(rp->o = ctl_op_new(c, j, OP_RESULT)) ||
        cb_digest_hex(text, len, rp->sha) != CB_OK) {
        if (rp && rp->o)
            ctl_op_free(rp->o);
        free(rp);
        free(built);
        return false;
    }
    rp->done = *done;
    snprintf(rp->tenant, sizeof rp->tenant, "%s", j->tenant);
    snprintf(rp->job, sizeof rp->job, "%s", j->job);
    rp->done.tenant = rp->tenant;
    rp->done.job_id = rp->job;
    rp->failed = json_incref(failed);
    rp->done.failed = rp->failed;
    rp->data = rp->failed ? json_pack("{s:O}", "failed", rp->failed) : json_object();
    rp->size = len;
    snprintf(rp->url, sizeof rp->url, "s3://%s/results/%s/%s/result-%.16s.json",
             cb_storage_results_bucket(c->o.storage), j->tenant, j->job, rp->sha);
    if (!rp->data || cb_storage_put(c->o.storage, rp->url, text, len, result_stored, rp, err,
                                    sizeof err) != CB_OK) {
        if (rp->data)
            cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "cannot store the result: %s",
                       err);
        json_decref(rp->failed);
        json_decref(rp->data);
        ctl_op_free(rp->o);
        free(rp);
        free(built);
        return false;
    }
    free(built); /* the put has its copy */
    j->ending = 1;
    j->end_status = done->status;
    j->pending++;
    return true;
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
    char ref[300];

    cb_done_msg_init(&done, j->tenant, j->job, status[p->end]);
    done.has_counts = 1;
    done.counts.total = js->total;
    done.counts.succeeded = js->succeeded;
    done.counts.retries = js->retries;
    done.counts.memoized = js->memoized;
    done.has_cost = 1;
    done.cost = js->cost;
    for (size_t i = 0; i < tb->n; i++)
        if (tb->tasks[i].status == CB_TASK_FAILED || tb->tasks[i].status == CB_TASK_TIMED_OUT)
            done.counts.failed++;
    done.submitted_ns = js->submitted_ns;
    done.started_ns = js->started_ns;
    done.finished_ns = now;
    done.makespan_ms = (double)(now - js->submitted_ns) / 1e6;
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
        } else if ((rtext || by_ref) &&
                   store_result(c, j, tb, &done, failed, rtext, rtext ? strlen(rtext) : 0)) {
            free(rtext);
            json_decref(result);
            json_decref(failed);
            return; /* result_stored publishes the done message */
        } else {
            data = ref_to_records(j, &done, ref, sizeof ref);
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
    publish_done(c, j, &done, type, data);
    json_decref(result);
    json_decref(failed);
}
