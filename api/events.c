/* api/events.c - GET /v1/jobs/T/J/events (docs/api.md): a page of the job's
 * events read from the log (projector/joblog.h: from the job's first
 * position, or after the previous page's last), and with ?until= the job's
 * state folded up to that point by the same fold as the projector's. On the
 * loop; the reader's callbacks come on it too. */
#include <stdio.h>
#include <string.h>

#include "cb_event.h"
#include "cb_json.h"
#include "cb_log.h"
#include "server_int.h"

/* The page is complete (or the read failed): answer and free p. Called
 * from inside the reader's callback (closing the log there is allowed). */
static void events_end(pending *p, cb_status s)
{
    struct evhttp_request *req = cb_api_pending_take(p);
    cb_joblog_close(p->jl);
    p->jl = NULL;
    if (req && s != CB_OK) {
        char why[200];
        snprintf(why, sizeof why, "reading the log failed: %s", cb_strerror(s));
        cb_api_send_error(req, 503, "unavailable", why, NULL);
    } else if (req) {
        json_t *body = p->body;
        p->body = NULL;
        json_object_set_new(body, "next",
                            p->more ? json_integer((json_int_t)p->next_n) : json_null());
        if (p->folding)
            json_object_set_new(body, "state",
                                p->fold.job.status == CB_JOB_ABSENT
                                    ? json_null()
                                    : cb_api_job_view(p->route.tenant, p->route.job, &p->fold.job));
        cb_api_send_json(req, 200, body);
    }
    cb_api_pending_free(p);
}

static void event_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    pending *p = ctx;
    json_t *events = json_object_get(p->body, "events"), *o;
    json_error_t je;
    cb_status ps;

    if (p->closed) { /* the client went: stop reading */
        events_end(p, CB_OK);
        return;
    }
    if (!m) {
        events_end(p, s);
        return;
    }
    if (p->folding) {
        cb_event ev;
        char err[256];
        if (p->q.until_seq && m->seq > p->q.until_seq) {
            events_end(p, CB_OK);
            return;
        }
        if (cb_event_decode(m->data, m->len, &ev, err, sizeof err) == CB_OK) {
            int past = p->q.until_ns && ev.time_ns > p->q.until_ns;
            cb_status fs = past ? CB_OK : cb_jobfold_apply(&p->fold, &ev, m->seq);
            cb_event_cleanup(&ev);
            if (past) {
                events_end(p, CB_OK);
                return;
            }
            if (fs != CB_OK) {
                events_end(p, fs);
                return;
            }
        }
    }
    if (p->q.has_after && m->seq <= p->q.after_n)
        return; /* before the page (read from the start to fold) */
    if ((long)json_array_size(events) >= p->q.limit) {
        p->more = 1;
        if (!p->folding)
            events_end(p, CB_OK);
        return;
    }
    if (!(o = cb_json_loadb(m->data, m->len, 0, &je, &ps))) {
        CB_LOG_WRN("api", "log position %llu is not JSON: %s", (unsigned long long)m->seq, je.text);
        return;
    }
    json_array_append_new(events, json_pack("{s:I, s:o}", "seq", (json_int_t)m->seq, "event", o));
    p->next_n = m->seq;
}

void cb_api_events_start(pending *p)
{
    cb_api *a = p->a;
    cb_status s;
    if (!(p->body = json_pack("{s:[]}", "events"))) {
        p->status = 500;
        cb_api_pending_answer(p);
        return;
    }
    if (p->q.has_until) {
        cb_jobfold_init(&p->fold);
        p->folding = 1;
    }
    if (p->q.has_until || !p->q.has_after)
        s = cb_joblog_read(a->b, p->log_partition, p->route.tenant, p->route.job, p->first_seq, 0,
                           event_cb, p, &p->jl);
    else
        s = cb_joblog_read_after(a->b, p->log_partition, p->route.tenant, p->route.job,
                                 p->q.after_n, event_cb, p, &p->jl);
    if (s != CB_OK) {
        p->jl = NULL;
        events_end(p, s);
    }
}

void cb_api_events_drop(pending *p)
{
    cb_joblog_close(p->jl);
    p->jl = NULL;
    cb_api_pending_free(p);
}
