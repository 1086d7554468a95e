/* api/result.c - GET /v1/jobs/T/J/result when the store has not folded the
 * job's end (docs/api.md). The engine publishes the done message as soon as
 * it decides; the projector folds the end a few milliseconds later. A
 * client told "done" by the stream that asks for the result at once must
 * get it, not a 409: so a job the store shows running is looked up on its
 * done subject (which keeps the last message). When one is there it answers
 * by itself (a failure, an inline result, a result kept as an object);
 * a result too large for the message with no storage to keep it lives in the
 * task records only, so the store is read again until it has the end (up to
 * STORE_LAG_MS). Without a done message within DONE_WAIT_MS, the job is
 * running (409), or, when the store does not have it either, there is no
 * such job (404). On the loop. */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "cb_json.h"
#include "cb_msg_done.h"
#include "cb_time.h"
#include "server_int.h"

/* How far back a wait reads the done messages (see cb_api_result_wait). */
#define DONE_LOOKBACK_NS (300 * 1000000000LL)

#define DONE_WAIT_MS  300 /* a kept done message comes within this, or there is none */
#define STORE_LAG_MS  10000
#define STORE_POLL_MS 20

static void wait_cb(evutil_socket_t fd, short what, void *arg);

static void arm(pending *p, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (!p->wait_timer)
        p->wait_timer = evtimer_new(p->a->base, wait_cb, p);
    if (p->wait_timer)
        evtimer_add(p->wait_timer, &tv);
}

static void stop_waiting(pending *p)
{
    cb_sub_close(p->done_sub);
    p->done_sub = NULL;
    if (p->wait_timer)
        event_free(p->wait_timer);
    p->wait_timer = NULL;
}

static void got_done(const cb_broker_msg *m, void *ctx)
{
    pending *p = ctx;
    json_error_t je;
    cb_status s;
    if (p->done_msg)
        return;
    p->done_msg = cb_json_loadb(m->data, m->len, 0, &je, &s);
    arm(p, 0); /* go on outside the subscription's callback */
}

/* Answer from the done message. */
static void from_done(pending *p)
{
    cb_done_msg d;
    json_t *body = NULL;
    char why[600];
    if (!p->done_msg || cb_done_msg_parse(p->done_msg, &d) != CB_OK) {
        p->status = 502;
        p->body = cb_api_error_body("internal", "the job's done message is malformed", NULL);
        cb_api_pending_answer(p);
        return;
    }
    if (strcmp(d.status, "succeeded") != 0) {
        const char *e = d.error ? d.error : json_string_value(json_array_get(d.errors, 0));
        snprintf(why, sizeof why, "the job %s%s%s",
                 !strcmp(d.status, "failed")      ? "failed"
                 : !strcmp(d.status, "cancelled") ? "was cancelled"
                                                  : "was rejected",
                 e ? ": " : "", e ? e : "");
        p->status = 422;
        p->body = cb_api_error_body("not_succeeded", why, json_pack("{s:s}", "status", d.status));
        cb_api_pending_answer(p);
        return;
    }
    if (d.result)
        body = json_incref((json_t *)d.result);
    else if (d.result_ref && !strncmp(d.result_ref, "s3://", 5) && d.result_size >= 0)
        body = json_pack("{s:s, s:I, s:s*}", "$cb_ref", d.result_ref, "size",
                         (json_int_t)d.result_size, "sha256", d.result_sha256);
    if (body) {
        json_decref(p->body);
        p->body = body;
        cb_api_body_start(p);
        return;
    }
    /* only the task records hold it: read the store until it has the end */
    p->store_deadline_ns = cb_time_mono_ns() + (int64_t)STORE_LAG_MS * 1000000;
    json_decref(p->body);
    p->body = NULL;
    p->then = NULL;
    p->status = 0;
    p->job.mail.fn = NULL; /* set again by the re-read */
    cb_api_result_reread(p);
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    pending *p = arg;
    (void)fd;
    (void)what;
    if (!p->req || p->closed) { /* the client went: answering frees its request */
        stop_waiting(p);
        p->status = 410;
        cb_api_pending_answer(p);
        return;
    }
    if (p->store_deadline_ns) { /* polling the store: read it again */
        cb_api_result_reread(p);
        return;
    }
    stop_waiting(p);
    if (p->done_msg) {
        from_done(p);
        return;
    }
    /* no done message: running (the status read from the store is in
     * body), or no such job (the store does not have it: body is empty) */
    if (!json_object_get(p->body, "status")) {
        p->status = 404;
        json_decref(p->body);
        p->body = cb_api_error_body("not_found", "no such job", NULL);
    } else {
        p->status = 409;
        p->body = cb_api_error_body("not_finished", "the job has not finished", p->body);
    }
    cb_api_pending_answer(p);
}

void cb_api_result_wait(pending *p)
{
    char subject[320];
    if (p->store_deadline_ns) { /* a re-read found no end yet */
        json_decref(p->body);
        p->body = NULL;
        if (cb_time_mono_ns() > p->store_deadline_ns) {
            stop_waiting(p);
            p->status = 503;
            p->body = cb_api_error_body(
                "unavailable", "the store has not folded the job's end yet (is cb-projector up?)",
                NULL);
            cb_api_pending_answer(p);
            return;
        }
        arm(p, STORE_POLL_MS);
        return;
    }
    snprintf(subject, sizeof subject, "cb.done.%s.%s", p->route.tenant, p->route.job);
    /* The store said the job runs (or does not know it): its done message
     * is not older than the store's lag, so there is no need to read the
     * whole kept history (RabbitMQ reads a stream from a time). */
    if (cb_broker_subscribe(p->a->b, subject, cb_time_now_ns() - DONE_LOOKBACK_NS, got_done, p,
                            &p->done_sub) != CB_OK) {
        p->done_sub = NULL;
        p->status = 503;
        json_decref(p->body);
        p->body =
            cb_api_error_body("unavailable", "cannot subscribe to the job's done message", NULL);
        cb_api_pending_answer(p);
        return;
    }
    arm(p, DONE_WAIT_MS);
}
