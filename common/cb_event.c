/* common/cb_event.c - CloudEvents envelope encode/decode. */
#include "cb_event.h"

#include <stdio.h>
#include <string.h>

#include "cb_json.h"
#include "cb_alloc.h"
#include "cb_time.h"

static const char *const type_names[CB_EV__COUNT] = {
    "cb.job.submitted",  "cb.job.rejected",         "cb.job.started",     "cb.tasks.dispatched",
    "cb.task.started",   "cb.task.succeeded",       "cb.task.failed",     "cb.task.retry_scheduled",
    "cb.task.timed_out", "cb.task.skipped",         "cb.task.expanded",   "cb.job.suspended",
    "cb.job.resumed",    "cb.job.cancel_requested", "cb.job.cancelled",   "cb.job.succeeded",
    "cb.job.failed",     "cb.sla.violated",         "cb.job.partitioned", "cb.sla.created",
    "cb.sla.updated",    "cb.sla.deleted",          "cb.sla.started",     "cb.sla.stopped",
    "cb.sla.terminated", "cb.sla.recovered",        "cb.sla.at_risk",
};

const char *cb_event_type_name(cb_event_type t)
{
    return t >= 0 && t < CB_EV__COUNT ? type_names[t] : "?";
}

cb_event_type cb_event_type_parse(const char *s)
{
    for (int i = 0; s && i < CB_EV__COUNT; i++)
        if (strcmp(s, type_names[i]) == 0)
            return (cb_event_type)i;
    return CB_EV_UNKNOWN;
}

int cb_name_valid(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= CB_NAME_MAX;
}

void cb_event_cleanup(cb_event *ev)
{
    cb_free(ev->id);
    cb_free(ev->source);
    cb_free(ev->subject);
    json_decref(ev->data);
    memset(ev, 0, sizeof *ev);
    ev->type = CB_EV_UNKNOWN;
}

cb_status cb_event_init(cb_event *ev, cb_event_type type, const char *tenant, const char *job,
                        const char *id, const char *source, int64_t time_ns, json_t *data)
{
    memset(ev, 0, sizeof *ev);
    ev->type = CB_EV_UNKNOWN;
    if (!data)
        data = json_object();
    if (!data)
        return CB_ENOMEM;
    if (type < 0 || type >= CB_EV__COUNT || !cb_name_valid(tenant) || !cb_name_valid(job) || !id ||
        !*id || !json_is_object(data)) {
        json_decref(data);
        return CB_EINVAL;
    }
    ev->type = type;
    ev->time_ns = time_ns;
    ev->data = data;
    strcpy(ev->tenant, tenant); /* lengths checked by cb_name_valid */
    strcpy(ev->job, job);
    ev->id = cb_strdup(id);
    ev->source = cb_strdup(source ? source : "cbcore");
    ev->subject = cb_strdup(job);
    if (!ev->id || !ev->source || !ev->subject) {
        cb_event_cleanup(ev);
        return CB_ENOMEM;
    }
    return CB_OK;
}

static cb_status bad(char *err, size_t errlen, const char *what)
{
    if (err)
        snprintf(err, errlen, "%s", what);
    return CB_ESCHEMA;
}

/* A required string attribute, 1..max bytes. */
static const char *get_str(json_t *o, const char *key, size_t max)
{
    json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);
    if (!s || !*s || json_string_length(v) > max || strlen(s) != json_string_length(v))
        return NULL;
    return s;
}

cb_status cb_event_decode(const void *buf, size_t len, cb_event *ev, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o;
    const char *s, *tenant, *job, *id, *source, *subject, *type;
    int64_t t;
    cb_status st;

    memset(ev, 0, sizeof *ev);
    ev->type = CB_EV_UNKNOWN;
    o = cb_json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je, &st);
    if (!o) {
        if (err)
            snprintf(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column,
                     st == CB_ENOMEM ? "out of memory" : je.text);
        return st;
    }
    if (!json_is_object(o)) {
        st = bad(err, errlen, "/: expected an object");
        goto out;
    }
    s = json_string_value(json_object_get(o, "specversion"));
    if (!s || strcmp(s, "1.0") != 0) {
        st = bad(err, errlen, "/specversion: must be \"1.0\"");
        goto out;
    }
    if (!(type = get_str(o, "type", 64)) || cb_event_type_parse(type) == CB_EV_UNKNOWN) {
        st = bad(err, errlen, "/type: not a cbcore event type");
        goto out;
    }
    if (!(id = get_str(o, "id", 512))) {
        st = bad(err, errlen, "/id: required, 1-512 characters");
        goto out;
    }
    if (!(source = get_str(o, "source", 512))) {
        st = bad(err, errlen, "/source: required, 1-512 characters");
        goto out;
    }
    if (!(subject = get_str(o, "subject", 512))) {
        st = bad(err, errlen, "/subject: required, 1-512 characters");
        goto out;
    }
    s = json_string_value(json_object_get(o, "time"));
    if (!s || cb_time_parse(s, &t) != 0) {
        st = bad(err, errlen, "/time: must be an RFC 3339 date-time");
        goto out;
    }
    s = json_string_value(json_object_get(o, "datacontenttype"));
    if (!s || strcmp(s, "application/json") != 0) {
        st = bad(err, errlen, "/datacontenttype: must be \"application/json\"");
        goto out;
    }
    tenant = json_string_value(json_object_get(o, "cbtenant"));
    if (!cb_name_valid(tenant)) {
        st = bad(err, errlen, "/cbtenant: must match ^[A-Za-z0-9_-]{1,128}$");
        goto out;
    }
    job = json_string_value(json_object_get(o, "cbjob"));
    if (!cb_name_valid(job)) {
        st = bad(err, errlen, "/cbjob: must match ^[A-Za-z0-9_-]{1,128}$");
        goto out;
    }
    if (!json_is_object(json_object_get(o, "data"))) {
        st = bad(err, errlen, "/data: expected an object");
        goto out;
    }
    st = cb_event_init(ev, cb_event_type_parse(type), tenant, job, id, source, t,
                       json_incref(json_object_get(o, "data")));
    if (st == CB_OK) {
        cb_free(ev->subject);
        if (!(ev->subject = cb_strdup(subject))) {
            cb_event_cleanup(ev);
            st = CB_ENOMEM;
        }
    }
out:
    json_decref(o);
    return st;
}

cb_status cb_event_encode(const cb_event *ev, char **out, size_t *len)
{
    char ts[40];
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "specversion", "1.0", "id",
                  ev->id, "source", ev->source, "type", cb_event_type_name(ev->type), "subject",
                  ev->subject, "time", cb_time_format(ev->time_ns, ts, sizeof ts), "cbtenant",
                  ev->tenant, "cbjob", ev->job, "datacontenttype", "application/json");
    char *s;
    if (!o)
        return CB_ENOMEM;
    if (json_object_set(o, "data", ev->data) != 0) {
        json_decref(o);
        return CB_ENOMEM;
    }
    s = cb_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return CB_ENOMEM;
    *out = s;
    *len = strlen(s);
    return CB_OK;
}

int cb_event_log_subject(const cb_event *ev, char *buf, size_t size)
{
    int n = snprintf(buf, size, "cb.evt.%s.%s", ev->tenant, ev->job);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int cb_job_key(const char *tenant, const char *job, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", tenant, job);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}
