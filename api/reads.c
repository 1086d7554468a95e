/* api/reads.c - what cb-api reads from the store, on the helper thread
 * (docs/api.md): a job, a page of jobs, a page of a job's tasks, a job's
 * result (or what to stream of it), a job's first log position. Each sets
 * the pending's status and body (an answer or an error), or status 200 and
 * `then` for a next step on the loop. Reads only p->st, p->route and p->q. */
#include <stdio.h>
#include <string.h>

#include "assemble.h"
#include "cb_json.h"
#include "server_int.h"
#include "views.h"

/* The job's key, "tenant/job". */
static void key_of(const pending *p, char *key, size_t n)
{
    snprintf(key, n, "%s/%s", p->route.tenant, p->route.job);
}

static void set_error(pending *p, int status, const char *code, const char *message)
{
    p->status = status;
    p->body = cb_api_error_body(code, message, NULL);
}

/* The job's state into js, or the error set (404, 500). 0 when read. */
static int get_job(pending *p, cb_job_state *js)
{
    char key[CB_JOB_KEY_MAX];
    cb_status s;
    key_of(p, key, sizeof key);
    if ((s = cb_view_job(p->st, key, js)) == CB_OK)
        return 0;
    if (s == CB_ENOTFOUND)
        set_error(p, 404, "not_found", "no such job");
    else
        set_error(p, 500, "internal", "the store could not be read");
    return -1;
}

/* A pool's job: what each member account took, or NULL (none). */
static json_t *members_view(const cb_job_state *js)
{
    json_t *a = js->nmembers ? json_array() : NULL;
    for (uint32_t i = 0; a && i < js->nmembers; i++)
        json_array_append_new(a,
                              json_pack("{s:s, s:I, s:I, s:I}", "backend", js->members[i].backend,
                                        "dispatched", (json_int_t)js->members[i].dispatched,
                                        "running", (json_int_t)js->members[i].inflight, "throttled",
                                        (json_int_t)js->members[i].throttled));
    return a;
}

json_t *cb_api_job_view(const char *tenant, const char *job, const cb_job_state *js)
{
    json_t *labels = json_object_get(js->spec, "labels");
    return json_pack("{s:s, s:s, s:s, s:s*, s:O*, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:I}, s:{s:o, s:o, s:o}, s:s*, s:o, s:o*}",
                     "job_id", job, "tenant", tenant, "status", cb_job_status_name(js->status),
                     "kind", json_string_value(json_object_get(js->spec, "kind")), "labels", labels,
                     "cancel_requested", js->cancel_requested, "counts", "total",
                     (json_int_t)js->total, "succeeded", (json_int_t)js->succeeded, "failed",
                     (json_int_t)js->failed, "running", (json_int_t)js->inflight, "waiting",
                     (json_int_t)js->waiting, "skipped", (json_int_t)js->skipped, "retries",
                     (json_int_t)js->retries, "timeouts", (json_int_t)js->timeouts, "memoized",
                     (json_int_t)js->memoized, "timings", "submitted",
                     cb_json_time(js->submitted_ns), "started", cb_json_time(js->started_ns),
                     "finished", cb_json_time(js->finished_ns), "error", js->error, "cost",
                     cb_cost_json(&js->cost), "members", members_view(js));
}

/* ---- costs ---------------------------------------------------------------- */

void cb_api_read_tenant_cost(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    cb_cost total;
    if (cb_view_cost(p->st, "tenant", p->route.tenant, &total) != CB_OK) {
        set_error(p, 500, "internal", "the store could not be read");
        return;
    }
    p->status = 200;
    p->body = json_pack("{s:s, s:o}", "tenant", p->route.tenant, "cost", cb_cost_json(&total));
}

void cb_api_read_costs(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    json_t *tenants = json_object(), *backends = json_object();
    if (!tenants || !backends || cb_view_costs(p->st, "tenant", cb_cost_put, tenants) != CB_OK ||
        cb_view_costs(p->st, "backend", cb_cost_put, backends) != CB_OK) {
        json_decref(tenants);
        json_decref(backends);
        set_error(p, 500, "internal", "the store could not be read");
        return;
    }
    p->status = 200;
    p->body = json_pack("{s:o, s:o}", "tenants", tenants, "backends", backends);
}

void cb_api_read_job(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    cb_job_state js;
    if (get_job(p, &js) != 0)
        return;
    p->status = 200;
    p->body = cb_api_job_view(p->route.tenant, p->route.job, &js);
    cb_job_state_cleanup(&js);
}

/* ---- a page of jobs ------------------------------------------------------- */

static int list_one(const char *key, const cb_job_state *js, void *arg)
{
    pending *p = arg;
    const char *slash = strchr(key, '/');
    char tenant[CB_NAME_MAX + 1];
    json_t *view;
    if (!slash || (size_t)(slash - key) > CB_NAME_MAX)
        return 0;
    if (p->q.state >= 0 && (int)js->status != p->q.state)
        return 0;
    if (p->q.label[0]) {
        const char *v =
            json_string_value(json_object_get(json_object_get(js->spec, "labels"), p->q.label));
        if (!v || strcmp(v, p->q.value) != 0)
            return 0;
    }
    if ((long)json_array_size(json_object_get(p->body, "jobs")) >= p->q.limit) {
        p->more = 1;
        return 1;
    }
    snprintf(tenant, sizeof tenant, "%.*s", (int)(slash - key), key);
    if (!(view = cb_api_job_view(tenant, slash + 1, js)) ||
        json_array_append_new(json_object_get(p->body, "jobs"), view) != 0) {
        p->status = 500;
        return 1;
    }
    snprintf(p->last_key, sizeof p->last_key, "%s", key);
    return 0;
}

void cb_api_read_jobs(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    cb_status s;
    p->status = 200;
    if (!(p->body = json_pack("{s:[]}", "jobs"))) {
        p->status = 500;
        return;
    }
    s = cb_view_jobs(p->st, p->q.tenant[0] ? p->q.tenant : NULL, p->q.after[0] ? p->q.after : NULL,
                     list_one, p);
    if (s != CB_OK || p->status != 200) {
        json_decref(p->body);
        set_error(p, 500, "internal", "the store could not be read");
        return;
    }
    json_object_set_new(p->body, "next", p->more ? json_string(p->last_key) : json_null());
}

/* ---- a page of a job's tasks ------------------------------------------------ */

static json_t *task_view(uint32_t index, const cb_task_state *t)
{
    return json_pack("{s:I, s:s, s:I, s:o, s:o*, s:O*, s:s*, s:o*}", "index", (json_int_t)index,
                     "status", cb_task_status_name(t->status), "attempt", (json_int_t)t->attempt,
                     "updated", cb_json_time(t->updated_ns), "due",
                     t->due_ns ? cb_json_time(t->due_ns) : NULL, "output", t->output, "error",
                     t->error, "cost", cb_cost_none(&t->cost) ? NULL : cb_cost_json(&t->cost));
}

static int task_one(uint32_t index, const cb_task_state *t, void *arg)
{
    pending *p = arg;
    json_t *view;
    if (p->q.state >= 0 && (int)t->status != p->q.state)
        return 0;
    if ((long)json_array_size(json_object_get(p->body, "tasks")) >= p->q.limit) {
        p->more = 1;
        return 1;
    }
    if (!(view = task_view(index, t)) ||
        json_array_append_new(json_object_get(p->body, "tasks"), view) != 0) {
        p->status = 500;
        return 1;
    }
    p->next_n = index;
    return 0;
}

void cb_api_read_tasks(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    char key[CB_JOB_KEY_MAX];
    cb_job_state js;
    cb_status s;
    if (get_job(p, &js) != 0)
        return;
    cb_job_state_cleanup(&js);
    key_of(p, key, sizeof key);
    p->status = 200;
    if (!(p->body = json_pack("{s:[]}", "tasks"))) {
        p->status = 500;
        return;
    }
    if (p->q.has_after && p->q.after_n >= UINT32_MAX)
        s = CB_OK; /* nothing comes after the last index */
    else
        s = cb_view_job_tasks_from(p->st, key, p->q.has_after ? (uint32_t)p->q.after_n + 1 : 0,
                                   task_one, p);
    if (s != CB_OK || p->status != 200) {
        json_decref(p->body);
        set_error(p, 500, "internal", "the store could not be read");
        return;
    }
    json_object_set_new(p->body, "next",
                        p->more ? json_integer((json_int_t)p->next_n) : json_null());
}

/* ---- the result ------------------------------------------------------------------ */

void cb_api_read_result(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    char key[CB_JOB_KEY_MAX], why[600];
    cb_job_state js;
    cb_status s;
    key_of(p, key, sizeof key);
    if ((s = cb_view_job(p->st, key, &js)) == CB_ENOTFOUND) {
        /* the store may not have folded even the submission yet (result.c) */
        p->status = 200;
        p->body = json_object();
        p->then = cb_api_result_wait;
        return;
    }
    if (s != CB_OK) {
        set_error(p, 500, "internal", "the store could not be read");
        return;
    }
    if (!cb_job_terminal(js.status)) {
        /* maybe the store is behind the done message (result.c) */
        p->status = 200;
        p->body = json_pack("{s:s}", "status", cb_job_status_name(js.status));
        p->then = cb_api_result_wait;
    } else if (js.status != CB_JOB_SUCCEEDED) {
        snprintf(why, sizeof why, "the job %s%s%s",
                 js.status == CB_JOB_FAILED      ? "failed"
                 : js.status == CB_JOB_CANCELLED ? "was cancelled"
                                                 : "was rejected",
                 js.error ? ": " : "", js.error ? js.error : "");
        p->status = 422;
        p->body = cb_api_error_body("not_succeeded", why,
                                    json_pack("{s:s}", "status", cb_job_status_name(js.status)));
    } else {
        /* the result as the store has it (a reference when kept as an
         * object), else assembled from the task records (a result too large
         * for the done message, with no storage to keep it) */
        if (js.result && !json_is_null(js.result))
            p->body = json_incref(js.result);
        else if (!(p->body = cb_result_assemble(p->st, key, &js, why, sizeof why))) {
            set_error(p, 500, "internal", why);
            cb_job_state_cleanup(&js);
            return;
        }
        p->status = 200;
        p->then = cb_api_body_start;
    }
    cb_job_state_cleanup(&js);
}

void cb_api_read_first_seq(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    cb_job_state js;
    if (get_job(p, &js) != 0)
        return;
    p->first_seq = js.first_seq;
    p->log_partition = js.log_partition;
    cb_job_state_cleanup(&js);
    p->status = 200;
    p->then = cb_api_events_start;
}
