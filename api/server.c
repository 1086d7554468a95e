/* api/server.c - cb-api's HTTP server (see server.h, docs/api.md). */
#include "server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cb_alloc.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_mailbox.h"
#include "cb_msg_reply.h"
#include "cb_offload.h"
#include "route.h"
#include "views.h"

typedef struct pending pending;
typedef struct stream stream;

struct cb_api {
    struct event_base *base;
    cb_broker *b;
    cb_store *st;
    cb_api_opts o;
    struct evhttp *http;
    int port;
    cb_mailbox *mb;
    cb_offload *off;
    pending *waiting; /* requests waiting on the broker or the store */
    stream *streams;  /* SSE clients */
};

/* One HTTP request waiting for an answer from elsewhere. `req` is NULL once
 * its connection closed (or the server is being freed): the answer, when
 * it comes, is dropped. */
struct pending {
    cb_offload_job job; /* first: a store read runs as an offload job */
    cb_api *a;
    cb_store *st; /* a->st, for the helper thread (which never reads `a`) */
    struct evhttp_request *req;
    int closed; /* the client went: req is detached from its connection (below) */
    pending *prev, *next;
    cb_route route;
    /* a store read's result, made on the helper thread */
    int status;
    json_t *body;
};

/* ---- answers ----------------------------------------------------------- */

static void send_json(struct evhttp_request *req, int status, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    char *text = body ? cb_json_dumps(body, JSON_COMPACT) : NULL;
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

/* {"error": {"code", "message"}} (and `extra`'s members beside "error"). */
static void send_error(struct evhttp_request *req, int status, const char *code,
                       const char *message, json_t *extra)
{
    json_t *body = extra ? extra : json_object();
    if (body)
        json_object_set_new(body, "error",
                            json_pack("{s:s, s:s}", "code", code, "message", message));
    send_json(req, status, body);
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
}

/* Let go of a request nobody will answer (the server is going). */
static void drop_request(struct evhttp_request *req, int closed)
{
    if (closed)
        evhttp_request_free(req); /* detached: ours */
    else
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
}

static pending *pending_new(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    pending *p = cb_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->a = a;
    p->st = a->st;
    p->req = req;
    p->route = *r;
    p->next = a->waiting;
    if (a->waiting)
        a->waiting->prev = p;
    a->waiting = p;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), closed_cb, p);
    return p;
}

/* The request p waited for, to answer now (NULL: the server is gone); p
 * leaves the server's list. Answer it even when its client went: that
 * frees it. */
static struct evhttp_request *pending_take(pending *p)
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

static void pending_free(pending *p)
{
    json_decref(p->body);
    free(p);
}

/* ---- the broker: submissions and commands -------------------------------- */

/* The engine's reply to a submission or a command. */
static void replied(cb_status s, const void *data, size_t len, void *ctx)
{
    pending *p = ctx;
    struct evhttp_request *req = pending_take(p);
    cb_reply_msg m;
    json_error_t je;
    cb_status ps;
    json_t *reply;
    int control = p->route.id == CB_ROUTE_CONTROL;

    if (!req) {
        pending_free(p);
        return;
    }
    if (s == CB_ENORESP)
        send_error(req, 503, "no_engine", "no engine is serving requests (is cb-engine up?)", NULL);
    else if (s == CB_ETIMEDOUT)
        send_error(req, 503, "unavailable", "the engine did not answer in time", NULL);
    else if (s != CB_OK)
        send_error(req, 503, "unavailable", cb_strerror(s), NULL);
    else if (!(reply = cb_json_loadb(data, len, 0, &je, &ps)) ||
             cb_reply_msg_parse(reply, &m) != CB_OK) {
        json_decref(reply);
        send_error(req, 502, "internal", "the engine's reply is not understood", NULL);
    } else if (m.accepted) {
        send_json(req, control ? 202 : 201, reply);
    } else {
        const char *first = json_string_value(json_array_get(m.errors, 0));
        char msg[600];
        snprintf(msg, sizeof msg, "%s%s%s",
                 control ? "the command was refused" : "the job was rejected", first ? ": " : "",
                 first ? first : "");
        send_error(req, control ? 409 : 400, control ? "refused" : "invalid_job", msg, reply);
    }
    pending_free(p);
}

static void ask_engine(cb_api *a, struct evhttp_request *req, const cb_route *r,
                       const char *subject, const char *text, size_t len)
{
    pending *p = pending_new(a, req, r);
    cb_status s;
    if (!p) {
        send_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    if ((s = cb_broker_request(a->b, subject, text, len, a->o.request_timeout_ms, replied, p)) !=
        CB_OK) {
        pending_take(p);
        pending_free(p);
        send_error(req, 503, "unavailable", cb_strerror(s), NULL);
    }
}

/* The request's body as text (NUL-terminated, malloc'd) or NULL with the
 * error sent. */
static char *body_of(cb_api *a, struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *text;
    if (n > a->o.max_body) { /* evhttp refuses larger ones itself; be sure */
        send_error(req, 413, "too_large", "the body is over the limit", NULL);
        return NULL;
    }
    if (!(text = cb_malloc(n + 1))) {
        send_error(req, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    evbuffer_copyout(in, text, n);
    text[n] = '\0';
    *len = n;
    return text;
}

static void submit(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    size_t len = 0;
    char *text = body_of(a, req, &len), subject[200], msg[300];
    const char *tenant;
    json_error_t je;
    cb_status ps;
    json_t *job;
    if (!text)
        return;
    if (!(job = cb_json_loadb(text, len, 0, &je, &ps)) || !json_is_object(job)) {
        snprintf(msg, sizeof msg, "the body is not a JSON object%s%s (line %d, column %d)",
                 job ? "" : ": ", job ? "" : je.text, je.line, je.column);
        send_error(req, 400, "bad_json", msg, NULL);
    } else if (!(tenant = json_string_value(json_object_get(job, "tenant"))) ||
               !cb_name_valid(tenant)) {
        send_error(req, 400, "invalid_job",
                   "/tenant: the job names no tenant, or not as [A-Za-z0-9_-]{1,128}", NULL);
    } else {
        snprintf(subject, sizeof subject, "cb.submit.%s", tenant);
        ask_engine(a, req, r, subject, text, len);
    }
    json_decref(job);
    free(text);
}

static void control(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    char subject[320], text[64];
    snprintf(subject, sizeof subject, "cb.ctl.%s.%s", r->tenant, r->job);
    snprintf(text, sizeof text, "{\"command\":\"%s\"}", r->action);
    ask_engine(a, req, r, subject, text, strlen(text));
}

/* ---- the store: reads on the helper thread -------------------------------- */

/* A job as the API shows it (docs/api.md): what a client asks about, not
 * the store's record (schemas/openapi.json, "Job"). */
static json_t *job_view(const cb_route *r, const cb_job_state *js)
{
    return json_pack("{s:s, s:s, s:s, s:s?, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
                     "s:{s:o, s:o, s:o}, s:s?}",
                     "job_id", r->job, "tenant", r->tenant, "status",
                     cb_job_status_name(js->status), "kind",
                     json_string_value(json_object_get(js->spec, "kind")), "cancel_requested",
                     js->cancel_requested, "counts", "total", (json_int_t)js->total, "succeeded",
                     (json_int_t)js->succeeded, "failed", (json_int_t)js->failed, "running",
                     (json_int_t)js->inflight, "waiting", (json_int_t)js->waiting, "skipped",
                     (json_int_t)js->skipped, "retries", (json_int_t)js->retries, "timeouts",
                     (json_int_t)js->timeouts, "timings", "submitted",
                     cb_json_time(js->submitted_ns), "started", cb_json_time(js->started_ns),
                     "finished", cb_json_time(js->finished_ns), "error", js->error);
}

static void read_job(cb_offload_job *oj)
{
    pending *p = (pending *)oj;
    char key[2 * CB_NAME_MAX + 2];
    cb_job_state js;
    cb_status s;
    snprintf(key, sizeof key, "%s/%s", p->route.tenant, p->route.job);
    if ((s = cb_view_job(p->st, key, &js)) == CB_OK) {
        p->status = 200;
        p->body = job_view(&p->route, &js);
        cb_job_state_cleanup(&js);
    } else {
        p->status = s == CB_ENOTFOUND ? 404 : 500;
    }
}

static void read_done(cb_mail *m, int cancelled)
{
    pending *p = (pending *)m;
    struct evhttp_request *req = cancelled ? NULL : pending_take(p);
    if (req) {
        if (p->status == 200 && p->body) {
            send_json(req, 200, p->body);
            p->body = NULL;
        } else if (p->status == 404) {
            send_error(req, 404, "not_found", "no such job", NULL);
        } else {
            send_error(req, 500, "internal", "the store could not be read", NULL);
        }
    }
    pending_free(p);
}

static void store_read(cb_api *a, struct evhttp_request *req, const cb_route *r,
                       void (*work)(cb_offload_job *))
{
    pending *p = pending_new(a, req, r);
    if (!p) {
        send_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    p->job.mail.fn = read_done;
    p->job.work = work;
    cb_offload_submit(a->off, &p->job);
}

/* ---- server-sent events ------------------------------------------------------ */

#define STREAM_BUFFER_MAX (64 * 1024) /* a client this far behind misses progress events */

/* A job's SSE stream: its progress messages as `progress` events, then its
 * done message as a `done` event, which ends the stream. The done subject
 * keeps its last message, so a client that connects after the end gets
 * the done event at once. */
struct stream {
    cb_api *a;
    struct evhttp_request *req; /* NULL once the stream ended */
    int closed;                 /* the client went: req is detached (see closed_cb) */
    cb_sub *progress, *done;
    struct event *end;
    stream *prev, *next;
};

static void stream_free(stream *x)
{
    if (x->req) /* the client went: the end frees the detached request */
        evhttp_send_reply_end(x->req);
    cb_sub_close(x->progress);
    cb_sub_close(x->done);
    if (x->end)
        event_free(x->end);
    if (x->a) {
        if (x->prev)
            x->prev->next = x->next;
        else
            x->a->streams = x->next;
        if (x->next)
            x->next->prev = x->prev;
    }
    free(x);
}

static void stream_end_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stream_free(arg);
}

/* Free the stream on the next loop turn (not from inside a subscription's
 * or the connection's callback). */
static void stream_later(stream *x)
{
    struct timeval now = {0, 0};
    if (x->end)
        evtimer_add(x->end, &now);
}

static void stream_closed(struct evhttp_connection *conn, void *arg)
{
    stream *x = arg;
    (void)conn;
    x->closed = 1;
    stream_later(x);
}

/* The last event is out: end the reply (the connection stays for the
 * client's next request). */
static void stream_end(stream *x)
{
    if (!x->closed) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(x->req), NULL, NULL);
        evhttp_send_reply_end(x->req);
        x->req = NULL;
    }
    stream_later(x);
}

/* One event: "event: NAME\ndata: TEXT\n\n" (TEXT is one line of JSON). */
static void stream_send(stream *x, const char *name, const void *data, size_t len, int always)
{
    struct evhttp_connection *conn;
    struct bufferevent *bev;
    struct evbuffer *out;
    if (!x->req || x->closed)
        return;
    conn = evhttp_request_get_connection(x->req);
    bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    if (!always && bev && evbuffer_get_length(bufferevent_get_output(bev)) > STREAM_BUFFER_MAX)
        return; /* a slow reader: progress is dropped, never queued without end */
    if (!(out = evbuffer_new()))
        return;
    evbuffer_add_printf(out, "event: %s\ndata: ", name);
    evbuffer_add(out, data, len);
    evbuffer_add(out, "\n\n", 2);
    evhttp_send_reply_chunk(x->req, out);
    evbuffer_free(out);
}

static void stream_progress(const cb_broker_msg *m, void *ctx)
{
    stream_send(ctx, "progress", m->data, m->len, 0);
}

static void stream_done(const cb_broker_msg *m, void *ctx)
{
    stream *x = ctx;
    if (!x->req || x->closed)
        return;
    stream_send(x, "done", m->data, m->len, 1);
    stream_end(x);
}

static void job_stream(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    stream *x = cb_calloc(1, sizeof *x);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char subject[320];
    if (!x || !(x->end = evtimer_new(a->base, stream_end_cb, x))) {
        free(x);
        send_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    x->a = a;
    x->req = req;
    /* progress first, so that nothing between the two subscriptions is missed */
    snprintf(subject, sizeof subject, "cb.progress.%s.%s", r->tenant, r->job);
    if (cb_broker_subscribe(a->b, subject, 0, stream_progress, x, &x->progress) != CB_OK) {
        x->req = NULL;
        x->a = NULL;
        stream_free(x);
        send_error(req, 503, "unavailable", "cannot subscribe to the job's progress", NULL);
        return;
    }
    x->next = a->streams;
    if (a->streams)
        a->streams->prev = x;
    a->streams = x;
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), stream_closed, x);
    snprintf(subject, sizeof subject, "cb.done.%s.%s", r->tenant, r->job);
    if (cb_broker_subscribe(a->b, subject, 0, stream_done, x, &x->done) != CB_OK) {
        static const char why[] = "{\"error\":{\"code\":\"unavailable\",\"message\":"
                                  "\"cannot subscribe to the job's done message\"}}";
        stream_send(x, "error", why, sizeof why - 1, 1);
        stream_end(x);
    }
}

/* ---- routing --------------------------------------------------------------- */

static void ready(cb_api *a, struct evhttp_request *req)
{
    json_t *health = cb_broker_health(a->b);
    uint64_t seq = 0;
    int broker_ok = json_is_true(json_object_get(health, "connected"));
    int store_ok = cb_view_applied_seq(a->st, &seq) == CB_OK;
    json_t *body = json_pack(
        "{s:s, s:O, s:b, s:I}", "status", broker_ok && store_ok ? "ready" : "not ready", "broker",
        health ? health : json_null(), "store", store_ok, "store_position", (json_int_t)seq);
    json_decref(health);
    send_json(req, broker_ok && store_ok ? 200 : 503, body);
}

static void handle(struct evhttp_request *req, void *arg)
{
    cb_api *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *method;
    cb_route r;
    int rc;

    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
        method = "GET";
        break;
    case EVHTTP_REQ_HEAD:
        method = "HEAD";
        break;
    case EVHTTP_REQ_POST:
        method = "POST";
        break;
    default:
        method = "OTHER";
    }
    rc = cb_route_match(method, path ? path : "", &r);
    if (rc == CB_ROUTE_NO_SUCH) {
        send_error(req, 404, "not_found", "no such route (docs/api.md)", NULL);
        return;
    }
    if (rc == CB_ROUTE_BAD_METHOD) {
        send_error(req, 405, "method_not_allowed", "not with this method (docs/api.md)", NULL);
        return;
    }
    switch (r.id) {
    case CB_ROUTE_HEALTH:
        send_json(req, 200, json_pack("{s:s}", "status", "ok"));
        return;
    case CB_ROUTE_READY:
        ready(a, req);
        return;
    case CB_ROUTE_JOBS:
        if (r.post) {
            submit(a, req, &r);
            return;
        }
        break;
    case CB_ROUTE_JOB:
        store_read(a, req, &r, read_job);
        return;
    case CB_ROUTE_CONTROL:
        control(a, req, &r);
        return;
    case CB_ROUTE_JOB_STREAM:
        job_stream(a, req, &r);
        return;
    default:
        break;
    }
    send_error(req, 501, "not_implemented", "this route is not served yet (docs/api.md)", NULL);
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

int cb_api_port(const cb_api *a)
{
    return a->port;
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
        (s = cb_offload_create(a->mb, &a->off)) != CB_OK || !(a->http = evhttp_new(base))) {
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
     * as CB_ECLOSED, the store's are cancelled below) */
    while (a->waiting) {
        int closed = a->waiting->closed;
        struct evhttp_request *req = pending_take(a->waiting);
        if (req)
            drop_request(req, closed);
    }
    while (a->streams) { /* their subscriptions close now, before the broker */
        stream *x = a->streams;
        if (x->req)
            drop_request(x->req, x->closed);
        x->req = NULL;
        a->streams = x->next;
        x->a = NULL;
        stream_free(x);
    }
    if (a->http)
        evhttp_free(a->http); /* closes the connections */
    cb_offload_destroy(a->off);
    cb_mailbox_close(a->mb);
    free(a);
}
