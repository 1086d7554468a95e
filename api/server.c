/* api/server.c - cb-api's HTTP server (see server.h, docs/api.md): the
 * answers, requests waiting elsewhere, who a request acts for, the query,
 * the routes, submissions and commands (broker requests), start and stop.
 * The store reads are in reads.c, a job's events in events.c, a result's
 * body in body.c, the pushes in sse.c. */
#include "server.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "cb_alloc.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_mailbox.h"
#include "cb_msg_reply.h"
#include "cb_time.h"
#include "server_int.h"
#include "ui.h"
#include "views.h"

/* ---- answers ----------------------------------------------------------- */

void cb_api_send_json(struct evhttp_request *req, int status, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    char *text = body ? cb_json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!out || !text) {
        free(text);
        if (out)
            evbuffer_free(out);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\n", 1);
    free(text);
    evhttp_send_reply(req, status, NULL, out);
    evbuffer_free(out);
}

json_t *cb_api_error_body(const char *code, const char *message, json_t *extra)
{
    json_t *body = extra ? extra : json_object();
    if (body)
        json_object_set_new(body, "error",
                            json_pack("{s:s, s:s}", "code", code, "message", message));
    return body;
}

void cb_api_send_error(struct evhttp_request *req, int status, const char *code,
                       const char *message, json_t *extra)
{
    cb_api_send_json(req, status, cb_api_error_body(code, message, extra));
}

/* ---- requests waiting elsewhere ------------------------------------------ */

/* When a client goes while its request waits for an answer, libevent
 * (2.1) detaches the request from the connection and leaves it to us: it
 * is freed by answering it (evhttp_send_reply and evhttp_send_reply_end
 * free a detached request) or by evhttp_request_free. A request still
 * attached is freed with its connection (evhttp_free). */
static void closed_cb(struct evhttp_connection *conn, void *arg)
{
    pending *p = arg;
    (void)conn;
    p->closed = 1; /* the answer, when it comes, frees the request */
    if (p->out)
        cb_api_body_closed(p);
}

void cb_api_drop_request(struct evhttp_request *req, int closed)
{
    if (closed)
        evhttp_request_free(req); /* detached: ours */
    else
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
}

pending *cb_api_pending_new(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    pending *p = cb_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->a = a;
    p->st = a->st;
    p->req = req;
    p->route = *r;
    p->q.state = -1;
    p->next = a->waiting;
    if (a->waiting)
        a->waiting->prev = p;
    a->waiting = p;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), closed_cb, p);
    return p;
}

struct evhttp_request *cb_api_pending_take(pending *p)
{
    struct evhttp_request *req = p->req;
    if (p->a) {
        if (p->prev)
            p->prev->next = p->next;
        else
            p->a->waiting = p->next;
        if (p->next)
            p->next->prev = p->prev;
    }
    if (req && !p->closed)
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
    p->prev = p->next = NULL;
    p->a = NULL;
    p->req = NULL;
    return req;
}

void cb_api_pending_free(pending *p)
{
    cb_sub_close(p->done_sub);
    if (p->wait_timer)
        event_free(p->wait_timer);
    json_decref(p->done_msg);
    json_decref(p->body);
    if (p->folding)
        cb_jobfold_cleanup(&p->fold);
    free(p);
}

void cb_api_pending_answer(pending *p)
{
    struct evhttp_request *req = cb_api_pending_take(p);
    if (req) {
        if (p->body) {
            cb_api_send_json(req, p->status, p->body);
            p->body = NULL;
        } else {
            cb_api_send_error(req, 500, "internal", "out of memory", NULL);
        }
    }
    cb_api_pending_free(p);
}

/* A store read's end, on the loop: its answer, or the next step. */
static void read_done(cb_mail *m, int cancelled)
{
    pending *p = (pending *)m;
    p->offloaded = 0;
    if (cancelled) { /* the server is gone */
        cb_api_pending_take(p);
        cb_api_pending_free(p);
    } else if (p->req && p->status == 200 && p->then) {
        p->then(p);
    } else {
        cb_api_pending_answer(p);
    }
}

void cb_api_store_read(cb_api *a, struct evhttp_request *req, const cb_route *r,
                       const cb_api_who *who, const query *q, void (*work)(cb_offload_job *))
{
    pending *p;
    if (!a->st) {
        cb_api_send_error(
            req, 503, "unavailable",
            "the store is not there yet (the projector makes it: is cb-projector up?)", NULL);
        return;
    }
    if (!(p = cb_api_pending_new(a, req, r))) {
        cb_api_send_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    if (who)
        p->who = *who;
    if (q)
        p->q = *q;
    p->job.mail.fn = read_done;
    p->job.work = work;
    p->offloaded = 1;
    cb_offload_submit(a->off, &p->job);
}

void cb_api_result_reread(pending *p)
{
    p->job.mail.fn = read_done;
    p->job.work = cb_api_read_result;
    p->offloaded = 1;
    cb_offload_submit(p->a->off, &p->job);
}

/* ---- the broker: submissions and commands -------------------------------- */

/* The engine's reply to a submission or a command. */
static void replied(cb_status s, const void *data, size_t len, void *ctx)
{
    pending *p = ctx;
    struct evhttp_request *req = cb_api_pending_take(p);
    cb_reply_msg m;
    json_error_t je;
    cb_status ps;
    json_t *reply;
    int control = p->route.id == CB_ROUTE_CONTROL;

    if (!req) {
        cb_api_pending_free(p);
        return;
    }
    if (s == CB_ENORESP)
        cb_api_send_error(req, 503, "no_engine", "no engine is serving requests (is cb-engine up?)",
                          NULL);
    else if (s == CB_ETIMEDOUT)
        cb_api_send_error(req, 503, "unavailable", "the engine did not answer in time", NULL);
    else if (s != CB_OK)
        cb_api_send_error(req, 503, "unavailable", cb_strerror(s), NULL);
    else if (!(reply = cb_json_loadb(data, len, 0, &je, &ps)) ||
             cb_reply_msg_parse(reply, &m) != CB_OK) {
        json_decref(reply);
        cb_api_send_error(req, 502, "internal", "the engine's reply is not understood", NULL);
    } else if (m.accepted) {
        /* a re-run is a new job */
        cb_api_send_json(req, control && strcmp(p->route.action, "retry") ? 202 : 201, reply);
    } else {
        const char *first = json_string_value(json_array_get(m.errors, 0));
        char msg[600];
        snprintf(msg, sizeof msg, "%s%s%s",
                 control ? "the command was refused" : "the job was rejected", first ? ": " : "",
                 first ? first : "");
        cb_api_send_error(req, control ? 409 : 400, control ? "refused" : "invalid_job", msg,
                          reply);
    }
    cb_api_pending_free(p);
}

static void ask_engine(cb_api *a, struct evhttp_request *req, const cb_route *r,
                       const char *subject, const char *text, size_t len)
{
    pending *p = cb_api_pending_new(a, req, r);
    cb_status s;
    if (!p) {
        cb_api_send_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    if ((s = cb_broker_request(a->b, subject, text, len, a->o.request_timeout_ms, replied, p)) !=
        CB_OK) {
        cb_api_pending_take(p);
        cb_api_pending_free(p);
        cb_api_send_error(req, 503, "unavailable", cb_strerror(s), NULL);
    }
}

/* The request's body as text (NUL-terminated, malloc'd) or NULL with the
 * error sent. */
char *cb_api_body_text(cb_api *a, struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *text;
    if (n > a->o.max_body) { /* evhttp refuses larger ones itself; be sure */
        cb_api_send_error(req, 413, "too_large", "the body is over the limit", NULL);
        return NULL;
    }
    if (!(text = cb_malloc(n + 1))) {
        cb_api_send_error(req, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    evbuffer_copyout(in, text, n);
    text[n] = '\0';
    *len = n;
    return text;
}

static void control(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    char subject[320], text[300];
    snprintf(subject, sizeof subject, "cb.ctl.%s.%s", r->tenant, r->job);
    snprintf(text, sizeof text, "{\"command\":\"%s\"}", r->action);
    if (!strcmp(r->action, "retry")) { /* an optional body: {"job_id"} of the new job */
        size_t len = 0;
        char *body = cb_api_body_text(a, req, &len);
        json_t *o = NULL, *id;
        cb_status ps;
        if (!body)
            return;
        if (len && (!(o = cb_json_loadb(body, len, 0, NULL, &ps)) || !json_is_object(o))) {
            cb_api_send_error(req, 400, "bad_json", "the body is not a JSON object", NULL);
            json_decref(o);
            free(body);
            return;
        }
        if ((id = json_object_get(o, "job_id")) && json_is_string(id) &&
            cb_name_valid(json_string_value(id)))
            snprintf(text, sizeof text, "{\"command\":\"retry\",\"job_id\":\"%s\"}",
                     json_string_value(id));
        else if (id) { /* the engine names the rule */
            cb_api_send_error(req, 400, "bad_json", "/job_id: not a job id ([A-Za-z0-9_-]{1,128})",
                              NULL);
            json_decref(o);
            free(body);
            return;
        }
        json_decref(o);
        free(body);
    }
    ask_engine(a, req, r, subject, text, strlen(text));
}

static void submit(cb_api *a, struct evhttp_request *req, const cb_route *r, const cb_api_who *who)
{
    size_t len = 0;
    char *text = cb_api_body_text(a, req, &len), subject[200], msg[300], *again = NULL;
    const char *tenant;
    json_error_t je;
    cb_status ps;
    json_t *job;
    if (!text)
        return;
    if (!(job = cb_json_loadb(text, len, 0, &je, &ps)) || !json_is_object(job)) {
        snprintf(msg, sizeof msg, "the body is not a JSON object%s%s (line %d, column %d)",
                 job ? "" : ": ", job ? "" : je.text, je.line, je.column);
        cb_api_send_error(req, 400, "bad_json", msg, NULL);
        goto out;
    }
    if (!json_object_get(job, "tenant") && who->scope == CB_SCOPE_TENANT) {
        /* the token's tenant is the job's */
        if (json_object_set_new(job, "tenant", json_string(who->tenant)) != 0 ||
            !(again = cb_json_dumps(job, JSON_COMPACT))) {
            cb_api_send_error(req, 500, "internal", "out of memory", NULL);
            goto out;
        }
        free(text);
        text = again;
        len = strlen(text);
    }
    if (!(tenant = json_string_value(json_object_get(job, "tenant"))) || !cb_name_valid(tenant)) {
        cb_api_send_error(req, 400, "invalid_job",
                          "/tenant: the job names no tenant, or not as [A-Za-z0-9_-]{1,128}", NULL);
    } else if (!cb_api_may(who, tenant)) {
        cb_api_send_error(req, 403, "forbidden", "the token may not submit for this tenant", NULL);
    } else {
        snprintf(subject, sizeof subject, "cb.submit.%s", tenant);
        ask_engine(a, req, r, subject, text, len);
    }
out:
    json_decref(job);
    free(text);
}

/* ---- the query ------------------------------------------------------------- */

static int status_of(const char *name, int job)
{
    int first = job ? CB_JOB_SUBMITTED : CB_TASK_PENDING;
    for (int i = first; i < 32; i++) {
        const char *n =
            job ? cb_job_status_name((cb_job_status)i) : cb_task_status_name((cb_task_status)i);
        if (!strcmp(n, "?"))
            break;
        if (!strcmp(n, name))
            return i;
    }
    return -1;
}

static int number(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    v = strtoull(s, &end, 10);
    if (*end || v > max)
        return -1;
    *out = v;
    return 0;
}

/* The query of a list, tasks or events request into q. 0, or the HTTP
 * status with why (400; 403: a tenant the token may not see). */
static int parse_query(struct evhttp_request *req, const cb_route *r, const cb_api_who *who,
                       query *q, char *why, size_t n)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL, *v;
    struct evkeyvalq kv;
    struct evkeyval *e;
    uint64_t x;
    int rc = 0;

    memset(q, 0, sizeof *q);
    q->limit = 100;
    q->state = -1;
    TAILQ_INIT(&kv);
    if (qs && evhttp_parse_query_str(qs, &kv) != 0) {
        snprintf(why, n, "the query does not parse");
        return 400;
    }
    TAILQ_FOREACH(e, &kv, next)
    {
        const char *k = e->key;
        v = e->value;
        if (!strcmp(k, "limit")) {
            if (number(v, 1000, &x) != 0 || x == 0) {
                snprintf(why, n, "limit: 1 to 1000");
                rc = 400;
            } else {
                q->limit = (long)x;
            }
        } else if (!strcmp(k, "state") && r->id != CB_ROUTE_EVENTS) {
            if ((q->state = status_of(v, r->id == CB_ROUTE_JOBS)) < 0) {
                snprintf(why, n, "state: \"%.40s\" is not a %s state", v,
                         r->id == CB_ROUTE_JOBS ? "job" : "task");
                rc = 400;
            }
        } else if (!strcmp(k, "after") && r->id == CB_ROUTE_JOBS) {
            const char *slash = strchr(v, '/');
            if (!slash || strlen(v) >= sizeof q->after) {
                snprintf(why, n, "after: the last job of the previous page, TENANT/JOB");
                rc = 400;
            } else {
                snprintf(q->after, sizeof q->after, "%s", v);
            }
        } else if (!strcmp(k, "after")) {
            if (number(v, UINT64_MAX, &q->after_n) != 0) {
                snprintf(why, n, "after: the \"next\" of the previous page (a number)");
                rc = 400;
            }
            q->has_after = 1;
        } else if (!strcmp(k, "tenant") && r->id == CB_ROUTE_JOBS) {
            if (!cb_name_valid(v)) {
                snprintf(why, n, "tenant: [A-Za-z0-9_-]{1,128}");
                rc = 400;
            } else {
                snprintf(q->tenant, sizeof q->tenant, "%s", v);
            }
        } else if (!strcmp(k, "label") && r->id == CB_ROUTE_JOBS) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || (size_t)(eq - v) >= sizeof q->label ||
                strlen(eq + 1) >= sizeof q->value) {
                snprintf(why, n, "label: NAME=VALUE");
                rc = 400;
            } else {
                snprintf(q->label, sizeof q->label, "%.*s", (int)(eq - v), v);
                snprintf(q->value, sizeof q->value, "%s", eq + 1);
            }
        } else if (!strcmp(k, "until") && r->id == CB_ROUTE_EVENTS) {
            q->has_until = 1;
            if (cb_time_parse(v, &q->until_ns) != 0 &&
                (number(v, UINT64_MAX, &q->until_seq) != 0 || q->until_seq == 0)) {
                snprintf(why, n, "until: an RFC 3339 time or a log position");
                rc = 400;
            }
        } else {
            snprintf(why, n, "%.40s: not a parameter of this route (docs/api.md)", k);
            rc = 400;
        }
        if (rc)
            break;
    }
    evhttp_clear_headers(&kv);
    if (rc)
        return rc;
    if (r->id == CB_ROUTE_JOBS && who->scope == CB_SCOPE_TENANT) {
        if (q->tenant[0] && strcmp(q->tenant, who->tenant) != 0) {
            snprintf(why, n, "the token may not list this tenant's jobs");
            return 403;
        }
        snprintf(q->tenant, sizeof q->tenant, "%s", who->tenant);
    }
    return 0;
}

/* ---- routing --------------------------------------------------------------- */

static void ready_read(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    p->more = cb_view_applied_seq(p->st, 0, &p->first_seq) == CB_OK;
    p->status = 200;
}

/* On the loop: the broker's state with the store's. */
static void ready_answer(pending *p)
{
    json_t *health = cb_broker_health(p->a->b);
    int broker_ok = json_is_true(json_object_get(health, "connected")), ok = broker_ok && p->more;
    p->status = ok ? 200 : 503;
    p->body = json_pack("{s:s, s:O, s:b, s:I}", "status", ok ? "ready" : "not ready", "broker",
                        health ? health : json_null(), "store", p->more, "store_position",
                        (json_int_t)p->first_seq);
    json_decref(health);
    cb_api_pending_answer(p);
}

static void ready(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    pending *p;
    if (!a->st) { /* the projector has not made it yet */
        json_t *health = cb_broker_health(a->b);
        cb_api_send_json(req, 503,
                         json_pack("{s:s, s:O, s:b, s:I}", "status", "not ready", "broker",
                                   health ? health : json_null(), "store", 0, "store_position",
                                   (json_int_t)0));
        json_decref(health);
        return;
    }
    cb_api_store_read(a, req, r, NULL, NULL, ready_read);
    if ((p = a->waiting) && p->req == req)
        p->then = ready_answer;
}

/* A file of the dashboard (api/ui.h), or 404. */
static void ui_file(struct evhttp_request *req, const char *name)
{
    const cb_ui_file *f = cb_ui_find(name);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *out;
    if (!f || !(out = evbuffer_new())) {
        cb_api_send_error(req, 404, "not_found", "no such file of the dashboard", NULL);
        return;
    }
    evbuffer_add_reference(out, f->data, f->len, NULL, NULL);
    evhttp_add_header(h, "Content-Type", f->type);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    /* nothing but this server: no script, style or connection elsewhere */
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                      "base-uri 'none'; frame-ancestors 'none'");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static const char *method_name(struct evhttp_request *req)
{
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "OTHER";
    }
}

static void handle(struct evhttp_request *req, void *arg)
{
    cb_api *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    cb_api_who who;
    cb_route r;
    query q;
    char why[200];
    int rc;

    rc = cb_route_match(method_name(req), path ? path : "", &r);
    if (rc == CB_ROUTE_NO_SUCH) {
        cb_api_send_error(req, 404, "not_found", "no such route (docs/api.md)", NULL);
        return;
    }
    if (rc == CB_ROUTE_BAD_METHOD) {
        cb_api_send_error(req, 405, "method_not_allowed", "not with this method (docs/api.md)",
                          NULL);
        return;
    }
    if (r.id == CB_ROUTE_HEALTH) {
        cb_api_send_json(req, 200, json_pack("{s:s}", "status", "ok"));
        return;
    }
    if (r.id == CB_ROUTE_READY) {
        ready(a, req, &r);
        return;
    }
    if (r.id == CB_ROUTE_UI) { /* the dashboard's files: the data behind them needs a token */
        ui_file(req, r.file);
        return;
    }
    /* who the request acts for: every other route needs a token when some
     * are configured */
    cb_api_auth_check(a->o.auth,
                      evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"),
                      &who);
    if (who.scope == CB_SCOPE_NONE) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"cbcore\"");
        cb_api_send_error(req, 401, "unauthorized",
                          "a bearer token is needed (Authorization: Bearer TOKEN)", NULL);
        return;
    }
    if ((r.id == CB_ROUTE_TENANT_STREAM || r.id == CB_ROUTE_SLAS || r.id == CB_ROUTE_SLA ||
         r.id == CB_ROUTE_SLA_STATE || r.id == CB_ROUTE_TENANT_COST) &&
        !cb_api_may(&who, r.tenant)) {
        cb_api_send_error(req, 403, "forbidden", "the token may not see this tenant", NULL);
        return;
    }
    if (r.id == CB_ROUTE_METRICS && who.scope != CB_SCOPE_ALL) {
        cb_api_send_error(req, 403, "forbidden", "the metrics need an operator token", NULL);
        return;
    }
    if (r.id == CB_ROUTE_COSTS && who.scope != CB_SCOPE_ALL) {
        cb_api_send_error(req, 403, "forbidden",
                          "every tenant's and account's costs need an operator token (a "
                          "tenant's own: /v1/tenants/T/cost)",
                          NULL);
        return;
    }
    if (r.job[0] && !cb_api_may(&who, r.tenant)) { /* another tenant's job: not told it exists */
        cb_api_send_error(req, 404, "not_found", "no such job", NULL);
        return;
    }
    if ((r.id == CB_ROUTE_JOBS && !r.post) || r.id == CB_ROUTE_TASKS || r.id == CB_ROUTE_EVENTS) {
        if ((rc = parse_query(req, &r, &who, &q, why, sizeof why)) != 0) {
            cb_api_send_error(req, rc, rc == 403 ? "forbidden" : "bad_request", why, NULL);
            return;
        }
    }
    switch (r.id) {
    case CB_ROUTE_JOBS:
        if (r.post)
            submit(a, req, &r, &who);
        else
            cb_api_store_read(a, req, &r, &who, &q, cb_api_read_jobs);
        return;
    case CB_ROUTE_JOB:
        cb_api_store_read(a, req, &r, &who, NULL, cb_api_read_job);
        return;
    case CB_ROUTE_TASKS:
        cb_api_store_read(a, req, &r, &who, &q, cb_api_read_tasks);
        return;
    case CB_ROUTE_EVENTS:
        cb_api_store_read(a, req, &r, &who, &q, cb_api_read_first_seq);
        return;
    case CB_ROUTE_RESULT:
        cb_api_store_read(a, req, &r, &who, NULL, cb_api_read_result);
        return;
    case CB_ROUTE_CONTROL:
        control(a, req, &r);
        return;
    case CB_ROUTE_JOB_STREAM:
        cb_api_job_stream(a, req, &r);
        return;
    case CB_ROUTE_TENANT_STREAM:
        cb_api_tenant_stream(a, req, r.tenant);
        return;
    case CB_ROUTE_METRICS:
        cb_api_metrics(a, req, &r);
        return;
    case CB_ROUTE_DAEMONS:
        cb_api_daemons(a, req);
        return;
    case CB_ROUTE_TENANT_COST:
        cb_api_store_read(a, req, &r, &who, NULL, cb_api_read_tenant_cost);
        return;
    case CB_ROUTE_COSTS:
        cb_api_store_read(a, req, &r, &who, NULL, cb_api_read_costs);
        return;
    case CB_ROUTE_DAEMONS_STREAM:
        cb_api_daemons_stream(a, req);
        return;
    case CB_ROUTE_SLAS:
    case CB_ROUTE_SLA:
    case CB_ROUTE_SLA_STATE:
        cb_api_sla(a, req, &r);
        return;
    default:
        break;
    }
    cb_api_send_error(req, 501, "not_implemented", "this route is not served yet (docs/api.md)",
                      NULL);
}

/* ---- start and stop --------------------------------------------------------- */

void cb_api_opts_init(cb_api_opts *o)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:8080";
    o->max_body = 1 << 20;
    o->request_timeout_ms = 30000;
    o->timeout_s = 30;
}

void cb_api_set_store(cb_api *a, cb_store *st)
{
    a->st = st;
}

void cb_api_set_auth(cb_api *a, const cb_api_auth *auth)
{
    a->o.auth = auth;
}

int cb_api_port(const cb_api *a)
{
    return a->port;
}

/* HTTPS: each connection a TLS bufferevent of the server's context. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new((SSL_CTX *)arg);
    return ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE)
               : NULL;
}

static SSL_CTX *tls_ctx(const cb_api_opts *o, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "TLS: the certificate %s or the key %s: %s", o->tls_cert, o->tls_key,
                 ERR_error_string(ERR_get_error(), NULL));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

cb_status cb_api_start(struct event_base *base, cb_broker *b, cb_store *st, const cb_api_opts *o,
                       cb_api **out, char *err, size_t errlen)
{
    cb_api *a = cb_calloc(1, sizeof *a);
    char host[256];
    const char *colon = o->listen ? strrchr(o->listen, ':') : NULL;
    struct evhttp_bound_socket *sock;
    long port;
    cb_status s;

    *out = NULL;
    if (!a)
        return CB_ENOMEM;
    if (!colon || (size_t)(colon - o->listen) >= sizeof host ||
        (port = strtol(colon + 1, NULL, 10)) < 0 || port > 65535) {
        snprintf(err, errlen, "--listen \"%s\" is not HOST:PORT", o->listen ? o->listen : "");
        free(a);
        return CB_EINVAL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - o->listen), o->listen);
    a->base = base;
    a->b = b;
    a->st = st;
    a->o = *o;
    if ((s = cb_mailbox_create(base, 0, &a->mb)) != CB_OK ||
        (s = cb_offload_create(a->mb, &a->off)) != CB_OK || !(a->http = evhttp_new(base)) ||
        (s = cb_api_metrics_start(a)) != CB_OK) {
        snprintf(err, errlen, "cannot start: %s", cb_strerror(s != CB_OK ? s : CB_ENOMEM));
        cb_api_free(a);
        return s != CB_OK ? s : CB_ENOMEM;
    }
    evhttp_set_max_body_size(a->http, o->max_body);
    evhttp_set_timeout(a->http, o->timeout_s);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(a->http, handle, a);
    if (o->tls_cert || o->tls_key) {
        if (!o->tls_cert || !o->tls_key) {
            snprintf(err, errlen, "TLS needs both a certificate and its key");
            cb_api_free(a);
            return CB_EINVAL;
        }
        if (!(a->tls = tls_ctx(o, err, errlen))) {
            cb_api_free(a);
            return CB_EINVAL;
        }
        evhttp_set_bevcb(a->http, tls_bev, a->tls);
    }
    if (!(sock = evhttp_bind_socket_with_handle(a->http, host, (uint16_t)port))) {
        snprintf(err, errlen, "cannot listen on %s (in use, or not an address of this host)",
                 o->listen);
        cb_api_free(a);
        return CB_EIO;
    }
    {
        struct sockaddr_storage ss;
        ev_socklen_t sl = sizeof ss;
        evutil_socket_t fd = evhttp_bound_socket_get_fd(sock);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
            a->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    }
    *out = a;
    return CB_OK;
}

void cb_api_free(cb_api *a)
{
    if (!a)
        return;
    /* requests waiting: their answers go nowhere (the broker's come later
     * as CB_ECLOSED, the store's are cancelled below, storage reads end
     * with the storage) */
    while (a->waiting) {
        pending *p = a->waiting;
        int closed = p->closed;
        struct evhttp_request *req = cb_api_pending_take(p);
        if (req)
            cb_api_drop_request(req, closed);
        if (p->offloaded)
            continue; /* its mail comes cancelled and frees it */
        if (p->jl)
            cb_api_events_drop(p);
        else if (p->out)
            cb_api_body_drop(p);
        else if (p->done_sub || p->wait_timer)
            cb_api_pending_free(p); /* waiting for the done message or to read again */
    }
    cb_api_streams_drop(a);
    cb_api_metrics_stop(a);
    if (a->http)
        evhttp_free(a->http); /* closes the connections */
    SSL_CTX_free(a->tls);
    cb_offload_destroy(a->off);
    cb_mailbox_close(a->mb);
    free(a);
}
