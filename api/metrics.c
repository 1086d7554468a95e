/* api/metrics.c - GET /metrics (docs/api.md, "Metrics"): the daemons'
 * reports (cb.stats.>, the last of each kept with when it came) and a
 * summary of the store (jobs and tasks by tenant and state, read on the
 * helper thread at most once a second), as text (metrics_text.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "cb_json.h"
#include "cb_log.h"
#include "cb_time.h"
#include "metrics_text.h"
#include "server_int.h"
#include "views.h"

#define STORE_EVERY_NS (1000LL * 1000 * 1000) /* the store summary is read at most this often */
#define FORGET_NS      (600LL * 1000 * 1000 * 1000) /* a daemon silent this long is forgotten */

static void got_report(const cb_broker_msg *m, void *ctx)
{
    cb_api *a = ctx;
    json_error_t je;
    cb_status s;
    json_t *rep = cb_json_loadb(m->data, m->len, 0, &je, &s), *e;
    const char *daemon = json_string_value(json_object_get(rep, "daemon"));
    const char *id = json_string_value(json_object_get(rep, "id"));
    char key[2 * CB_NAME_MAX + 2];
    if (!daemon || !id || !cb_name_valid(daemon) || !cb_name_valid(id)) {
        json_decref(rep);
        return;
    }
    snprintf(key, sizeof key, "%s/%s", daemon, id);
    if ((e = json_pack("{s:o, s:I}", "report", rep, "at", (json_int_t)cb_time_mono_ns())))
        json_object_set_new(a->reports, key, e);
}

cb_status cb_api_metrics_start(cb_api *a)
{
    if (!(a->reports = json_object()))
        return CB_ENOMEM;
    return cb_broker_subscribe(a->b, "cb.stats.>", 0, got_report, a, &a->stats_sub);
}

void cb_api_metrics_stop(cb_api *a)
{
    cb_sub_close(a->stats_sub);
    a->stats_sub = NULL;
    json_decref(a->reports);
    a->reports = NULL;
    json_decref(a->store_summary);
    a->store_summary = NULL;
}

/* ---- the store's summary (helper thread) -------------------------------- */

static void add(json_t *o, const char *key, json_int_t n)
{
    json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + n));
}

static json_t *child(json_t *o, const char *key)
{
    json_t *c = json_object_get(o, key);
    if (!c && (c = json_object()) && json_object_set_new(o, key, c) != 0)
        c = NULL;
    return c;
}

static int sum_job(const char *key, const cb_job_state *js, void *arg)
{
    pending *p = arg;
    char tenant[CB_NAME_MAX + 1];
    const char *slash = strchr(key, '/');
    json_t *jobs, *tasks;
    if (!slash || (size_t)(slash - key) > CB_NAME_MAX)
        return 0;
    snprintf(tenant, sizeof tenant, "%.*s", (int)(slash - key), key);
    if (!(jobs = child(child(p->body, "jobs"), tenant)) ||
        !(tasks = child(child(p->body, "tasks"), tenant))) {
        p->status = 500;
        return 1;
    }
    add(jobs, cb_job_status_name(js->status), 1);
    add(tasks, "succeeded", js->succeeded);
    add(tasks, "failed", js->failed);
    add(tasks, "running", js->inflight);
    add(tasks, "waiting", js->waiting);
    add(tasks, "skipped", js->skipped);
    add(tasks, "retries", js->retries);
    add(tasks, "timeouts", js->timeouts);
    return 0;
}

static void read_summary(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    uint64_t seq = 0;
    p->status = 200;
    if (!(p->body = json_pack("{s:{}, s:{}, s:{s:{}, s:{}}}", "jobs", "tasks", "costs", "tenants",
                              "backends")) ||
        cb_view_applied_seq(p->st, 0, &seq) != CB_OK ||
        cb_view_jobs(p->st, NULL, NULL, sum_job, p) != CB_OK || p->status != 200 ||
        cb_view_costs(p->st, "tenant", cb_cost_put,
                      json_object_get(json_object_get(p->body, "costs"), "tenants")) != CB_OK ||
        cb_view_costs(p->st, "backend", cb_cost_put,
                      json_object_get(json_object_get(p->body, "costs"), "backends")) != CB_OK) {
        json_decref(p->body);
        p->body = NULL;
        p->status = 500;
        return;
    }
    json_object_set_new(p->body, "position", json_integer((json_int_t)seq));
}

/* ---- the answer (loop) ----------------------------------------------------- */

/* The reports with their age ({"DAEMON/ID": {"report", "age_s"}}), those
 * too old forgotten. New reference, NULL on ENOMEM. */
static json_t *aged_reports(cb_api *a)
{
    int64_t now = cb_time_mono_ns();
    json_t *reports = json_object(), *e;
    const char *key;
    void *tmp;
    json_object_foreach_safe(a->reports, tmp, key, e)
    {
        int64_t at = (int64_t)json_integer_value(json_object_get(e, "at"));
        if (now - at > FORGET_NS) {
            json_object_del(a->reports, key);
            continue;
        }
        json_object_set_new(reports, key,
                            json_pack("{s:O, s:f}", "report", json_object_get(e, "report"), "age_s",
                                      (double)(now - at) / 1e9));
    }
    return reports;
}

void cb_api_daemons(cb_api *a, struct evhttp_request *req)
{
    json_t *reports = aged_reports(a), *list = json_array(), *e;
    const char *key;
    json_object_foreach(reports, key, e)
    {
        const json_t *rep = json_object_get(e, "report");
        double period = json_number_value(json_object_get(rep, "period_ms")) / 1000.0;
        double age = json_number_value(json_object_get(e, "age_s"));
        json_array_append_new(list, json_pack("{s:O, s:f, s:b}", "report", rep, "age_s", age, "up",
                                              age <= CB_METRICS_DOWN_PERIODS * period));
    }
    json_decref(reports);
    cb_api_send_json(req, list ? 200 : 500, list ? json_pack("{s:o}", "daemons", list) : NULL);
}

static void answer(cb_api *a, struct evhttp_request *req)
{
    json_t *reports = aged_reports(a);
    struct evbuffer *out;
    char *text;
    text = reports ? cb_metrics_text(reports, a->store_summary) : NULL;
    json_decref(reports);
    if (!text || !(out = evbuffer_new())) {
        free(text);
        cb_api_send_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    evbuffer_add(out, text, strlen(text));
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void summary_done(pending *p)
{
    cb_api *a = p->a;
    struct evhttp_request *req = cb_api_pending_take(p);
    json_decref(a->store_summary);
    a->store_summary = p->body;
    a->summary_ns = cb_time_mono_ns();
    p->body = NULL;
    if (req)
        answer(a, req);
    cb_api_pending_free(p);
}

static void summary_read(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    read_summary(oj);
    if (p->status == 200)
        p->then = summary_done;
}

void cb_api_metrics(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    if (!a->st || cb_time_mono_ns() - a->summary_ns < STORE_EVERY_NS) {
        answer(a, req); /* no store yet (no store families), or a recent summary */
        return;
    }
    cb_api_store_read(a, req, r, NULL, NULL, summary_read);
}
