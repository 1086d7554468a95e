/* api/sse.c - cb-api's server-sent events (docs/api.md): a job's progress
 * and done messages (GET /v1/jobs/T/J/stream), a tenant's
 * (GET /v1/tenants/T/stream), pushed from broker subscriptions. On the
 * loop. And the daemons' reports as they come (GET /v1/daemons/stream). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_time.h"
#include "server_int.h"

/* ---- server-sent events ------------------------------------------------------ */

#define STREAM_BUFFER_MAX (64 * 1024) /* a client this far behind misses progress events */

/* A job's SSE stream: its progress messages as `progress` events, then its
 * done message as a `done` event, which ends the stream. The done subject
 * keeps its last message, so a client that connects after the end gets
 * the done event at once. A tenant's stream: the progress and done events
 * of all its jobs from the moment it opened, without end (the done
 * messages kept from before are not sent: the job list has those). */
struct stream {
    cb_api *a;
    int tenant;                 /* a tenant's stream: done does not end it */
    const char *event;          /* the name of the first subscription's events ("progress") */
    int64_t since_ns;           /* tenant: done messages published before are skipped */
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
    stream *x = ctx;
    stream_send(x, x->event, m->data, m->len, 0);
}

static void stream_done(const cb_broker_msg *m, void *ctx)
{
    stream *x = ctx;
    if (!x->req || x->closed)
        return;
    if (x->tenant) {
        if (!m->time_ns || m->time_ns >= x->since_ns)
            stream_send(x, "done", m->data, m->len, 1);
        return;
    }
    stream_send(x, "done", m->data, m->len, 1);
    stream_end(x);
}

/* Subscribe a new stream to `first` (its messages sent as `event` events)
 * then, unless NULL, to `done` (so that nothing between the two is missed),
 * and start the reply. A tenant's stream (or one without done) has no end. */
static void stream_open(cb_api *a, struct evhttp_request *req, const char *first, const char *event,
                        const char *done, int tenant)
{
    stream *x = cb_calloc(1, sizeof *x);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (!x || !(x->end = evtimer_new(a->base, stream_end_cb, x))) {
        free(x);
        cb_api_send_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    x->a = a;
    x->req = req;
    x->tenant = tenant;
    x->event = event;
    x->since_ns = cb_time_now_ns();
    if (cb_broker_subscribe(a->b, first, 0, stream_progress, x, &x->progress) != CB_OK) {
        x->req = NULL;
        x->a = NULL;
        stream_free(x);
        cb_api_send_error(req, 503, "unavailable", "cannot subscribe to the messages", NULL);
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
    if (done && cb_broker_subscribe(a->b, done, tenant ? x->since_ns : 0, stream_done, x,
                                    &x->done) != CB_OK) {
        static const char why[] = "{\"error\":{\"code\":\"unavailable\",\"message\":"
                                  "\"cannot subscribe to the done messages\"}}";
        stream_send(x, "error", why, sizeof why - 1, 1);
        stream_end(x);
    }
}

void cb_api_job_stream(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    char progress[2 * CB_NAME_MAX + 20], done[2 * CB_NAME_MAX + 20];
    snprintf(progress, sizeof progress, "cb.progress.%s.%s", r->tenant, r->job);
    snprintf(done, sizeof done, "cb.done.%s.%s", r->tenant, r->job);
    stream_open(a, req, progress, "progress", done, 0);
}

void cb_api_tenant_stream(cb_api *a, struct evhttp_request *req, const char *tenant)
{
    char progress[CB_NAME_MAX + 20], done[CB_NAME_MAX + 20];
    snprintf(progress, sizeof progress, "cb.progress.%s.*", tenant);
    snprintf(done, sizeof done, "cb.done.%s.*", tenant);
    stream_open(a, req, progress, "progress", done, 1);
}

void cb_api_daemons_stream(cb_api *a, struct evhttp_request *req)
{
    stream_open(a, req, "cb.stats.>", "report", NULL, 1);
}

void cb_api_streams_drop(cb_api *a)
{
    while (a->streams) { /* their subscriptions close now, before the broker */
        stream *x = a->streams;
        if (x->req)
            cb_api_drop_request(x->req, x->closed);
        x->req = NULL;
        a->streams = x->next;
        x->a = NULL;
        stream_free(x);
    }
}
