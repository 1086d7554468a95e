/* common/cb_event.c - CloudEvents envelope encode/decode. */
#include "cb_event.h"

#include <stdio.h>
#include <string.h>

#include "cb_json.h"
#include "cb_partition.h"
#include "cb_alloc.h"
#include "cb_time.h"

static const char *const type_names[CB_EV__COUNT] = {
    "cb.job.submitted",    "cb.job.rejected",         "cb.job.started",
    "cb.tasks.dispatched", "cb.task.started",         "cb.task.succeeded",
    "cb.task.failed",      "cb.task.retry_scheduled", "cb.task.timed_out",
    "cb.task.skipped",     "cb.task.expanded",        "cb.job.suspended",
    "cb.job.resumed",      "cb.job.cancel_requested", "cb.job.cancelled",
    "cb.job.succeeded",    "cb.job.failed",           "cb.sla.violated",
    "cb.job.partitioned",  "cb.sla.created",          "cb.sla.updated",
    "cb.sla.deleted",      "cb.sla.started",          "cb.sla.stopped",
    "cb.sla.terminated",   "cb.sla.recovered",        "cb.sla.at_risk",
    "cb.tasks.succeeded",  "cb.partition.claimed",
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

char *cb_name_from(const char *s, char *out, size_t size)
{
    size_t n = 0;
    if (!size)
        return out;
    if (!s || !*s)
        s = "host";
    for (; s[n] && n + 1 < size && n < CB_NAME_MAX; n++) {
        char c = s[n];
        out[n] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '_' || c == '-'
                     ? c
                     : '_';
    }
    out[n] = '\0';
    return out;
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

size_t cb_event_outcomes(const cb_event *ev)
{
    const json_t *a, *x;
    size_t i;
    if (ev->type != CB_EV_TASKS_SUCCEEDED)
        return 1;
    a = json_object_get(ev->data, "tasks");
    json_array_foreach(a, i, x)
    {
        if (!json_is_object(x))
            return 0;
    }
    return json_array_size(a);
}

const cb_event *cb_event_outcome(const cb_event *ev, size_t i, cb_event *one)
{
    if (ev->type != CB_EV_TASKS_SUCCEEDED)
        return ev;
    *one = *ev;
    one->type = CB_EV_TASK_SUCCEEDED;
    one->data = json_array_get(json_object_get(ev->data, "tasks"), i);
    return one;
}

static cb_status bad(char *err, size_t errlen, const char *what)
{
    if (err)
        snprintf(err, errlen, "%s", what);
    return CB_ESCHEMA;
}

/* The envelope's attributes as text (NULL: absent or not a string), and its
 * data (owned), from either decoder below; checked by one function. */
enum { F_SPEC, F_TYPE, F_ID, F_SOURCE, F_SUBJECT, F_TIME, F_DCT, F_TENANT, F_JOB, F__N };
static const char *const field_names[F__N] = {
    "specversion",     "type",     "id",    "source", "subject", "time",
    "datacontenttype", "cbtenant", "cbjob",
};

typedef struct fields {
    const char *v[F__N];
    size_t n[F__N]; /* byte lengths (a string may hold NULs) */
    json_t *data;   /* owned; NULL when absent or not an object */
} fields;

/* A required string attribute, 1..max bytes, without NULs. */
static const char *req_str(const fields *f, int k, size_t max)
{
    const char *s = f->v[k];
    if (!s || !*s || f->n[k] > max || strlen(s) != f->n[k])
        return NULL;
    return s;
}

/* The envelope's rules, in the order their errors are reported; on CB_OK
 * the event takes f->data. */
static cb_status check_fields(fields *f, cb_event *ev, char *err, size_t errlen)
{
    const char *type, *id, *source, *subject, *s;
    int64_t t;
    cb_status st;

    s = f->v[F_SPEC];
    if (!s || strcmp(s, "1.0") != 0)
        return bad(err, errlen, "/specversion: must be \"1.0\"");
    if (!(type = req_str(f, F_TYPE, 64)) || cb_event_type_parse(type) == CB_EV_UNKNOWN)
        return bad(err, errlen, "/type: not a cbcore event type");
    if (!(id = req_str(f, F_ID, 512)))
        return bad(err, errlen, "/id: required, 1-512 characters");
    if (!(source = req_str(f, F_SOURCE, 512)))
        return bad(err, errlen, "/source: required, 1-512 characters");
    if (!(subject = req_str(f, F_SUBJECT, 512)))
        return bad(err, errlen, "/subject: required, 1-512 characters");
    s = f->v[F_TIME];
    if (!s || cb_time_parse(s, &t) != 0)
        return bad(err, errlen, "/time: must be an RFC 3339 date-time");
    s = f->v[F_DCT];
    if (!s || strcmp(s, "application/json") != 0)
        return bad(err, errlen, "/datacontenttype: must be \"application/json\"");
    if (!cb_name_valid(f->v[F_TENANT]))
        return bad(err, errlen, "/cbtenant: must match ^[A-Za-z0-9_-]{1,128}$");
    if (!cb_name_valid(f->v[F_JOB]))
        return bad(err, errlen, "/cbjob: must match ^[A-Za-z0-9_-]{1,128}$");
    if (!f->data)
        return bad(err, errlen, "/data: expected an object");
    st = cb_event_init(ev, cb_event_type_parse(type), f->v[F_TENANT], f->v[F_JOB], id, source, t,
                       f->data);
    f->data = NULL; /* cb_event_init took it, or freed it */
    if (st == CB_OK) {
        cb_free(ev->subject);
        if (!(ev->subject = cb_strdup(subject))) {
            cb_event_cleanup(ev);
            st = CB_ENOMEM;
        }
    }
    return st;
}

cb_status cb_event_decode_full(const void *buf, size_t len, cb_event *ev, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o, *d;
    fields f = {0};
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
        json_decref(o);
        return bad(err, errlen, "/: expected an object");
    }
    for (int k = 0; k < F__N; k++) {
        json_t *v = json_object_get(o, field_names[k]);
        f.v[k] = json_string_value(v);
        f.n[k] = f.v[k] ? json_string_length(v) : 0;
    }
    if (json_is_object(d = json_object_get(o, "data")))
        f.data = json_incref(d);
    st = check_fields(&f, ev, err, errlen);
    json_decref(f.data);
    json_decref(o);
    return st;
}

/* ---- the fast path ------------------------------------------------------
 * What the engine's writers produce: one object whose members are the
 * envelope's attributes, each once, as strings of printable ASCII without
 * escapes, and "data" (an object). Those are read by a scan and only "data"
 * is parsed; anything else (escapes, other bytes, other or repeated members,
 * malformed text) goes to the full decoder, which gives the same answers
 * and the precise error. test_event.c compares the two. */
#define FAST_SCRATCH 2048

/* The plain string at b[i] == '"': its end (after the quote), 0 if it has
 * an escape, a byte outside 0x20..0x7e, or no end. */
static size_t plain_string(const char *b, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char)b[i];
        if (c == '"')
            return i + 1;
        if (c == '\\' || c < 0x20 || c > 0x7e)
            return 0;
    }
    return 0;
}

/* 1: *f filled (data parsed, owned); 0: take the full decoder; -1: out of
 * memory. */
static int fast_fields(const char *b, size_t len, fields *f, char *scratch)
{
    size_t i = cb_json_skip_ws(b, len, 0), used = 0, dat = 0, datend = 0;
    unsigned seen = 0;
    json_error_t je;
    cb_status st;

    if (i >= len || b[i] != '{')
        return 0;
    i = cb_json_skip_ws(b, len, i + 1);
    for (;;) {
        size_t kend, vend;
        int k;
        if (i >= len || b[i] != '"' || !(kend = plain_string(b, len, i)))
            return 0;
        for (k = 0; k < F__N; k++)
            if (strlen(field_names[k]) == kend - i - 2 &&
                memcmp(field_names[k], b + i + 1, kend - i - 2) == 0)
                break;
        if (k == F__N && !(kend - i - 2 == 4 && memcmp(b + i + 1, "data", 4) == 0))
            return 0; /* another attribute: the full decoder */
        if (seen & (1u << k))
            return 0; /* repeated */
        seen |= 1u << k;
        i = cb_json_skip_ws(b, len, kend);
        if (i >= len || b[i] != ':')
            return 0;
        i = cb_json_skip_ws(b, len, i + 1);
        if (k == F__N) { /* data */
            if (i >= len || b[i] != '{' || !(vend = cb_json_value_end(b, len, i)))
                return 0;
            dat = i;
            datend = vend;
        } else {
            size_t n;
            if (i >= len || b[i] != '"' || !(vend = plain_string(b, len, i)))
                return 0;
            n = vend - i - 2;
            if (used + n + 1 > FAST_SCRATCH)
                return 0;
            memcpy(scratch + used, b + i + 1, n);
            scratch[used + n] = '\0';
            f->v[k] = scratch + used;
            f->n[k] = n;
            used += n + 1;
        }
        i = cb_json_skip_ws(b, len, vend);
        if (i < len && b[i] == ',') {
            i = cb_json_skip_ws(b, len, i + 1);
            continue;
        }
        if (i < len && b[i] == '}')
            break;
        return 0;
    }
    if (cb_json_skip_ws(b, len, i + 1) != len)
        return 0;
    if (datend) {
        json_t *d = cb_json_loadb(b + dat, datend - dat, JSON_REJECT_DUPLICATES, &je, &st);
        if (!d)
            return st == CB_ENOMEM ? -1 : 0;
        f->data = d; /* an object: it starts with '{' and parsed */
    }
    return 1;
}

cb_status cb_event_decode(const void *buf, size_t len, cb_event *ev, char *err, size_t errlen)
{
    fields f = {0};
    char scratch[FAST_SCRATCH];
    cb_status st;
    int r = fast_fields(buf, len, &f, scratch);

    if (r == 0)
        return cb_event_decode_full(buf, len, ev, err, errlen);
    memset(ev, 0, sizeof *ev);
    ev->type = CB_EV_UNKNOWN;
    if (r < 0) {
        if (err)
            snprintf(err, errlen, "out of memory");
        return CB_ENOMEM;
    }
    st = check_fields(&f, ev, err, errlen);
    json_decref(f.data);
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

int cb_event_log_subject(const cb_event *ev, unsigned partition, char *buf, size_t size)
{
    return cb_partition_subject(partition, ev->tenant, ev->job, buf, size);
}

cb_event_type cb_event_peek_type(const char *buf, size_t len)
{
    char name[40];
    size_t at, n;
    if (!cb_json_member_span(buf, len, "type", NULL, &at, &n) || n < 2 || n - 2 >= sizeof name ||
        buf[at] != '"')
        return CB_EV_UNKNOWN;
    memcpy(name, buf + at + 1, n - 2);
    name[n - 2] = '\0';
    return cb_event_type_parse(name);
}

int cb_job_key(const char *tenant, const char *job, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", tenant, job);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

#define ADAPTER_SOURCE "cbcore/adapter/"

int cb_event_adapter_source(const char *backend, const char *worker, char *buf, size_t size)
{
    int n = snprintf(buf, size, ADAPTER_SOURCE "%s/%s", backend, worker);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

bool cb_event_source_backend(const char *source, char *buf, size_t size)
{
    const char *b, *slash;
    size_t plen = sizeof ADAPTER_SOURCE - 1;
    if (!source || strncmp(source, ADAPTER_SOURCE, plen) != 0)
        return false;
    b = source + plen;
    slash = strchr(b, '/');
    if (!slash || slash == b || (size_t)(slash - b) >= size)
        return false;
    memcpy(buf, b, (size_t)(slash - b));
    buf[slash - b] = '\0';
    return true;
}
