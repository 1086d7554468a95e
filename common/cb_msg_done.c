/* common/cb_msg_done.c - the done message codec (see cb_msg_done.h). */
#include "cb_msg_done.h"

#include <string.h>

#include "cb_json.h"
#include "cb_time.h"

void cb_done_msg_init(cb_done_msg *m, const char *tenant, const char *job_id, const char *status)
{
    memset(m, 0, sizeof *m);
    m->tenant = tenant;
    m->job_id = job_id;
    m->status = status;
    m->makespan_ms = -1;
    m->result_size = -1;
}

static int set_time(json_t *o, const char *key, int64_t ns)
{
    char buf[40];
    return ns ? json_object_set_new(o, key, json_string(cb_time_format(ns, buf, sizeof buf))) : 0;
}

static int set_borrowed(json_t *o, const char *key, const json_t *v)
{
    return v ? json_object_set(o, key, (json_t *)v) : 0;
}

static int set_str(json_t *o, const char *key, const char *v)
{
    return v ? json_object_set_new(o, key, json_string(v)) : 0;
}

json_t *cb_done_msg_build(const cb_done_msg *m)
{
    json_t *d =
        json_pack("{s:s, s:s, s:s}", "job_id", m->job_id, "tenant", m->tenant, "status", m->status);
    if (!d)
        return NULL;
    if (set_borrowed(d, "result", m->result) || set_str(d, "result_ref", m->result_ref) ||
        (m->result_size >= 0 &&
         json_object_set_new(d, "result_size", json_integer((json_int_t)m->result_size))) ||
        set_str(d, "result_sha256", m->result_sha256) || set_borrowed(d, "failed", m->failed) ||
        set_str(d, "error", m->error) || set_borrowed(d, "errors", m->errors))
        goto fail;
    if (m->has_counts &&
        json_object_set_new(d, "counts",
                            json_pack("{s:I, s:I, s:I, s:I}", "total", (json_int_t)m->counts.total,
                                      "succeeded", (json_int_t)m->counts.succeeded, "failed",
                                      (json_int_t)m->counts.failed, "retries",
                                      (json_int_t)m->counts.retries)))
        goto fail;
    if (m->has_counts && m->counts.memoized > 0 &&
        json_object_set_new(json_object_get(d, "counts"), "memoized",
                            json_integer((json_int_t)m->counts.memoized)))
        goto fail;
    if (m->has_cost && json_object_set_new(d, "cost", cb_cost_json(&m->cost)))
        goto fail;
    if (m->submitted_ns || m->started_ns || m->finished_ns || m->makespan_ms >= 0) {
        json_t *t = json_object();
        if (!t || json_object_set_new(d, "timings", t) ||
            set_time(t, "submitted", m->submitted_ns) || set_time(t, "started", m->started_ns) ||
            set_time(t, "finished", m->finished_ns) ||
            (m->makespan_ms >= 0 &&
             json_object_set_new(t, "makespan_ms", json_real(m->makespan_ms))))
            goto fail;
    }
    return d;
fail:
    json_decref(d);
    return NULL;
}

char *cb_done_msg_text(const cb_done_msg *m)
{
    json_t *d = cb_done_msg_build(m);
    char *text = d ? cb_json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(d);
    return text;
}

static int64_t time_of(const json_t *timings, const char *key)
{
    int64_t ns = 0;
    const char *s = json_string_value(json_object_get(timings, key));
    if (!s || cb_time_parse(s, &ns) != 0)
        return 0;
    return ns;
}

cb_status cb_done_msg_parse(const json_t *root, cb_done_msg *m)
{
    const json_t *counts = json_object_get(root, "counts"), *t = json_object_get(root, "timings");
    const json_t *ms = json_object_get(t, "makespan_ms");
    cb_done_msg_init(m, json_string_value(json_object_get(root, "tenant")),
                     json_string_value(json_object_get(root, "job_id")),
                     json_string_value(json_object_get(root, "status")));
    if (!m->tenant || !m->job_id || !m->status)
        return CB_EINVAL;
    m->result = json_object_get(root, "result");
    m->result_ref = json_string_value(json_object_get(root, "result_ref"));
    if (json_is_integer(json_object_get(root, "result_size")))
        m->result_size = json_integer_value(json_object_get(root, "result_size"));
    m->result_sha256 = json_string_value(json_object_get(root, "result_sha256"));
    m->failed = json_object_get(root, "failed");
    m->error = json_string_value(json_object_get(root, "error"));
    m->errors = json_object_get(root, "errors");
    if (json_is_object(counts)) {
        m->has_counts = 1;
        m->counts.total = json_integer_value(json_object_get(counts, "total"));
        m->counts.succeeded = json_integer_value(json_object_get(counts, "succeeded"));
        m->counts.failed = json_integer_value(json_object_get(counts, "failed"));
        m->counts.retries = json_integer_value(json_object_get(counts, "retries"));
        m->counts.memoized = json_integer_value(json_object_get(counts, "memoized"));
    }
    m->submitted_ns = time_of(t, "submitted");
    m->started_ns = time_of(t, "started");
    m->finished_ns = time_of(t, "finished");
    m->makespan_ms = json_is_number(ms) ? json_number_value(ms) : -1;
    m->has_cost = cb_cost_parse(json_object_get(root, "cost"), &m->cost) == CB_OK;
    return CB_OK;
}
