/* engine/service.c - submissions and lifecycle commands (see service.h). */
#include "service.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cb_json.h"
#include "views.h"
#include "cb_alloc.h"
#include "cb_time.h"
#include "cb_log.h"
#include "cb_msg_done.h"
#include "cb_msg_reply.h"
#include "cb_map.h"
#include "cb_partition.h"
#include "emit.h"
#include "fold.h"
#include "memo.h"

#define SOURCE     "cbcore/engine"
#define RECENT_MAX 100000 /* submissions remembered until the projection has them */

typedef struct pend pend;
typedef struct rerun_wait rerun_wait;

struct cb_service {
    cb_broker *b;
    cb_store *st;
    cb_control *ctl;
    cb_intake_cfg cfg;
    cb_sub *submit, *cmds, *own; /* own: commands other engines pass on (ctl_forward) */
    struct fwd *fwds;            /* commands passed on, waiting for the owner's answer */
    cb_consumer *enqueued;
    cb_map recent;      /* hash of "tenant/job" -> digest (65 bytes, owned) */
    cb_map rates;       /* hash of a tenant -> its submission bucket (owned), when it has a rate */
    pend *pends;        /* answers waiting for a confirmation */
    rerun_wait *reruns; /* re-run requests waiting for the store (retry_job) */
    struct event_base *base;
    cb_service_stats stats;
};

/* Where a submission came from, and so where its verdict goes: a request
 * (cb.submit.*) gets a reply; a queued submission (cb.enqueue.*) gets a
 * progress message (accepted) or the done message (rejected) and is acked,
 * or given back when it could not be stored. */
typedef struct origin {
    cb_request *req;
    cb_work *work;
    int passed_on; /* another engine passed it on (its owner is this one): never again */
} origin;

/* One answer waiting for its event's confirmation. */
struct pend {
    cb_service *s; /* NULL once the service is gone */
    cb_request *req;
    cb_work *work;
    char key[2 * CB_NAME_MAX + 2], job[CB_NAME_MAX + 1];
    char digest[65];
    int resume;            /* lift the controller's hold once confirmed */
    unsigned part;         /* the job's partition (a submission's) */
    int fresh;             /* its id was made here: no other submission has it */
    int64_t received_ns;   /* when the submission came */
    int64_t until_ns;      /* confirm: how long to wait for the job's record */
    struct event *confirm; /* a submission of a job another engine drives: its verdict
                            * waits for the record (confirm_cb) */
    pend *prev, *next;
};

const cb_service_stats *cb_service_stats_get(const cb_service *s)
{
    return &s->stats;
}

static void answer_m(cb_request *req, const cb_reply_msg *m)
{
    char *text = cb_reply_msg_text(m);
    if (!text || cb_request_respond(req, text, strlen(text)) != CB_OK)
        CB_LOG_WRN("service", "could not answer a request about %s",
                   m->job_id ? m->job_id : "a job");
    if (!text)
        cb_request_drop(req);
    free(text);
}

static void answer(cb_request *req, const char *job_id, int accepted, json_t *errors)
{
    cb_reply_msg m = {.job_id = job_id, .accepted = accepted, .errors = errors};
    answer_m(req, &m);
}

static void answer_error(cb_request *req, const char *job_id, const char *msg)
{
    json_t *errors = json_pack("[s]", msg);
    answer(req, job_id, 0, errors);
    json_decref(errors);
}

/* The verdict on a queued submission, on its job's progress topic (not kept:
 * a rejection with a job_id is also kept on its done topic). */
static void announce_verdict(cb_service *s, const char *tenant, const char *job_id, int accepted,
                             json_t *errors)
{
    cb_reply_msg m = {.job_id = job_id, .tenant = tenant, .accepted = accepted, .errors = errors};
    char subject[320], *text = cb_verdict_msg_text(&m);
    if (!text)
        return;
    snprintf(subject, sizeof subject, "cb.progress.%s.%s", tenant, job_id);
    if (cb_broker_notify(s->b, subject, NULL, text, strlen(text), NULL, NULL) != CB_OK)
        CB_LOG_WRN("service", "cannot announce the verdict on %s/%s", tenant, job_id);
    free(text);
}

/* The verdict, to wherever the submission came from. */
static void verdict(cb_service *s, const origin *o, const char *tenant, const char *job_id,
                    int accepted, json_t *errors)
{
    if (o->req) {
        answer(o->req, job_id, accepted, errors);
        return;
    }
    announce_verdict(s, tenant, job_id, accepted, errors);
    cb_work_ack(o->work);
}

static void verdict_error(cb_service *s, const origin *o, const char *tenant, const char *job_id,
                          const char *msg)
{
    json_t *errors = json_pack("[s]", msg);
    verdict(s, o, tenant, job_id, 0, errors);
    json_decref(errors);
}

/* The submission could not be judged or stored now: a request is told so
 * (the client retries), a queued one goes back to its queue. */
static void not_now(cb_service *s, const origin *o, const char *tenant, const char *job_id,
                    const char *msg)
{
    if (o->req)
        answer_error(o->req, job_id, msg);
    else
        cb_work_nak(o->work, 1000);
    (void)s;
    (void)tenant;
}

/* ---- pending answers --------------------------------------------------------- */

static pend *pend_new(cb_service *s, const origin *o, const char *key, const char *job)
{
    pend *p = cb_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->s = s;
    p->req = o->req;
    p->work = o->work;
    snprintf(p->key, sizeof p->key, "%s", key);
    snprintf(p->job, sizeof p->job, "%s", job);
    p->received_ns = cb_time_now_ns();
    p->next = s->pends;
    if (s->pends)
        s->pends->prev = p;
    s->pends = p;
    return p;
}

static void pend_free(pend *p)
{
    if (p->s) {
        if (p->prev)
            p->prev->next = p->next;
        else
            p->s->pends = p->next;
        if (p->next)
            p->next->prev = p->prev;
    }
    if (p->confirm)
        event_free(p->confirm);
    free(p);
}

static void free_digest(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    free(val);
}

static void remember(cb_service *s, const char *key, const char *digest)
{
    uint64_t h = cb_hash64(key, strlen(key));
    char *d;
    if (s->recent.len >= RECENT_MAX) { /* the projection has long caught up with these */
        cb_map_each(&s->recent, free_digest, NULL);
        cb_map_cleanup(&s->recent);
        cb_map_init(&s->recent);
    }
    if (!(d = cb_strdup(digest)))
        return;
    free(cb_map_take(&s->recent, h));
    if (cb_map_put(&s->recent, h, d) != CB_OK)
        free(d);
}

/* ---- submissions ---------------------------------------------------------------- */

#define CONFIRM_POLL_MS 20
#define CONFIRM_MS      10000

/* A submission of a job whose partition another engine drives, appended:
 * a submission of the same job id may have reached the log first through
 * that engine (or another), which this engine's memory of recent
 * submissions cannot know, and the log keeps the first of the two. The
 * verdict waits for the job's record in the store: the same body is
 * accepted (a repeat when the record is older than this submission), a
 * different one is a conflict. */
static void confirm_cb(evutil_socket_t fd, short what, void *arg)
{
    pend *p = arg;
    cb_service *s = p->s;
    origin o = {p->req, p->work, 0};
    char tenant[CB_NAME_MAX + 1];
    cb_job_state js;
    (void)fd;
    (void)what;
    snprintf(tenant, sizeof tenant, "%.*s", (int)strcspn(p->key, "/"), p->key);
    memset(&js, 0, sizeof js);
    if (cb_view_job(s->st, p->key, &js) != CB_OK) {
        struct timeval tv = {0, CONFIRM_POLL_MS * 1000};
        if (cb_time_now_ns() < p->until_ns) {
            evtimer_add(p->confirm, &tv);
            return;
        }
        CB_LOG_WRN("service", "job %s: its record did not appear within %d ms", p->key, CONFIRM_MS);
        not_now(s, &o, tenant, p->job,
                "/: the job was stored but its record did not appear in time; submit it again "
                "(a repeat is recognised)");
    } else if (js.digest && !strcmp(js.digest, p->digest) && js.status != CB_JOB_REJECTED) {
        s->stats.accepted++;
        remember(s, p->key, p->digest);
        if (o.req && js.submitted_ns && js.submitted_ns < p->received_ns) {
            cb_reply_msg again = {.job_id = p->job, .accepted = 1, .repeated = 1};
            s->stats.repeated++;
            answer_m(o.req, &again);
        } else {
            verdict(s, &o, tenant, p->job, 1, NULL);
        }
    } else {
        char msg[400];
        s->stats.rejected++;
        snprintf(msg, sizeof msg, "/job_id: job \"%s\" exists with a different body (conflict)",
                 p->job);
        cb_log_job(CB_LOG_WARN, "service", tenant, p->job, "%s", msg);
        verdict_error(s, &o, tenant, p->job, msg);
    }
    cb_job_state_cleanup(&js);
    pend_free(p);
}

static void submitted_cb(cb_status st, uint64_t seq, int duplicate, void *ctx)
{
    pend *p = ctx;
    cb_service *s = p->s;
    origin o = {p->req, p->work, 0};
    char tenant[CB_NAME_MAX + 1];
    (void)seq;
    (void)duplicate;
    if (!s) {
        pend_free(p);
        return;
    }
    snprintf(tenant, sizeof tenant, "%.*s", (int)strcspn(p->key, "/"), p->key);
    if (st == CB_OK && !p->fresh && !cb_control_drives(s->ctl, p->part)) {
        if ((p->confirm = evtimer_new(s->base, confirm_cb, p))) {
            p->until_ns = cb_time_now_ns() + (int64_t)CONFIRM_MS * 1000000;
            confirm_cb(-1, 0, p);
            return;
        }
        st = CB_ENOMEM;
    }
    if (st == CB_OK) {
        s->stats.accepted++;
        remember(s, p->key, p->digest);
        verdict(s, &o, tenant, p->job, 1, NULL);
        cb_control_touch(s->ctl, p->key);
    } else {
        char msg[256];
        snprintf(msg, sizeof msg, "/: the job could not be stored (%s); submit it again",
                 cb_strerror(st));
        CB_LOG_WRN("service", "job %s not stored: %s", p->key, cb_strerror(st));
        not_now(s, &o, tenant, p->job, msg);
    }
    pend_free(p);
}

static void fresh_id(char *buf, size_t size)
{
    unsigned char r[12];
    static const char hex[] = "0123456789abcdef";
    size_t i;
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        memset(r, 0, sizeof r);
    snprintf(buf, size, "j-");
    for (i = 0; i < sizeof r && 2 + 2 * i + 2 < size; i++) {
        buf[2 + 2 * i] = hex[r[i] >> 4];
        buf[3 + 2 * i] = hex[r[i] & 15];
    }
    buf[2 + 2 * i] = '\0';
}

static void announced(cb_status st, uint64_t seq, int duplicate, void *ctx)
{
    (void)seq;
    (void)duplicate;
    (void)ctx;
    if (st != CB_OK)
        CB_LOG_WRN("service", "a rejection's done message was not confirmed: %s", cb_strerror(st));
}

/* Record and announce a rejection of a job id not used before. */
static void record_rejection(cb_service *s, const cb_intake *in)
{
    char key[2 * CB_NAME_MAX + 2], subject[320], id[320], *text;
    cb_job_state js;
    cb_done_msg done;
    cb_status st;

    if (!in->job_id[0] || cb_job_key(in->tenant, in->job_id, key, sizeof key) != 0)
        return;
    memset(&js, 0, sizeof js);
    if (cb_view_job(s->st, key, &js) == CB_OK) { /* never overwrite another job's verdict */
        cb_job_state_cleanup(&js);
        return;
    }
    if (cb_map_get(&s->recent, cb_hash64(key, strlen(key))))
        return;
    snprintf(id, sizeof id, "%s/%s/rejected", in->tenant, in->job_id);
    st = cb_emit(s->b, cb_partition_of(in->tenant, in->job_id, s->cfg.partitions),
                 CB_EV_JOB_REJECTED, in->tenant, in->job_id, id, SOURCE,
                 json_pack("{s:O}", "errors", in->errors), NULL, NULL);
    if (st != CB_OK)
        CB_LOG_WRN("service", "cannot record the rejection of %s: %s", key, cb_strerror(st));
    cb_done_msg_init(&done, in->tenant, in->job_id, "rejected");
    done.errors = in->errors;
    if ((text = cb_done_msg_text(&done))) {
        snprintf(subject, sizeof subject, "cb.done.%s.%s", in->tenant, in->job_id);
        snprintf(id, sizeof id, "%s/%s/done", in->tenant, in->job_id);
        if (cb_broker_notify(s->b, subject, id, text, strlen(text), announced, NULL) != CB_OK)
            CB_LOG_WRN("service", "cannot announce the rejection of %s", key);
        free(text);
    }
}

/* A tenant's submissions_per_s (docs/engine.md, "Quotas"): a token bucket
 * with a one-second burst. */
typedef struct bucket {
    double tokens;
    int64_t refilled_ns;
} bucket;

/* 1 when the tenant may submit now (a token taken), 0 when over its rate. */
static int within_rate(cb_service *s, const char *tenant, double *rate)
{
    uint64_t key = cb_hash64(tenant, strlen(tenant));
    bucket *b = cb_map_get(&s->rates, key);
    int64_t now = cb_time_mono_ns();
    *rate = cb_config_tenant_limit(s->cfg.reg, tenant, "submissions_per_s");
    if (*rate <= 0)
        return 1;
    if (!b) {
        if (!(b = cb_calloc(1, sizeof *b)) || cb_map_put(&s->rates, key, b) != CB_OK) {
            free(b);
            return 1; /* out of memory: not the tenant's fault */
        }
        b->tokens = *rate;
        b->refilled_ns = now;
    }
    b->tokens += *rate * (double)(now - b->refilled_ns) / 1e9;
    b->refilled_ns = now;
    if (b->tokens > *rate)
        b->tokens = *rate;
    if (b->tokens < 1)
        return 0;
    b->tokens -= 1;
    return 1;
}

/* Judge one submission for `tenant` and append it, or reject it. */
/* A tenant with "max_open_jobs" (docs/engine.md, "Quotas") that has that
 * many jobs not ended (driven by the controller, or accepted and on their
 * way to the log): the submission is refused for now, naming the limit
 * (no verdict: the same job may come again; a queued one waits). 1 when
 * refused. */
static int over_open_jobs(cb_service *s, const origin *o, const char *tenant, const char *job)
{
    double most = cb_config_tenant_limit(s->cfg.reg, tenant, "max_open_jobs");
    size_t tlen = strlen(tenant);
    unsigned open;
    char msg[400];
    if (most <= 0)
        return 0;
    open = cb_control_open_jobs(s->ctl, tenant);
    for (const pend *p = s->pends; p; p = p->next)
        open += p->digest[0] && !strncmp(p->key, tenant, tlen) && p->key[tlen] == '/';
    if (open < most)
        return 0;
    s->stats.rejected++;
    snprintf(msg, sizeof msg,
             "/: tenant \"%s\" has %u jobs not ended, its limit (tenants.%s.max_open_jobs); "
             "submit again once one has ended",
             tenant, open, tenant);
    cb_log_job(CB_LOG_WARN, "service", tenant, job, "%s", msg);
    not_now(s, o, tenant, job, msg);
    return 1;
}

/* What a re-run (retry_of, `retry`) may name. */
#define RERUN_WHAT                                                                                 \
    "only a failed or cancelled job, or one that succeeded with lost tasks, is re-run"

/* Whether a job that ended with status, failed of its tasks lost, may be
 * re-run (RERUN_WHAT). */
static bool rerunnable(cb_job_status status, uint32_t failed)
{
    return status == CB_JOB_FAILED || status == CB_JOB_CANCELLED ||
           (status == CB_JOB_SUCCEEDED && failed > 0);
}

/* A re-run (retry_of, docs/engine.md): the job it names is the tenant's,
 * failed or was cancelled, is in the store (whose task records the re-run
 * takes its outputs from) and has the same work. 1 when so; else the
 * submission is answered here: rejected with the reason, or, while that
 * job has not ended in the store yet, refused for now. */
static int retry_allowed(cb_service *s, const origin *o, cb_intake *in)
{
    const char *of = json_string_value(json_object_get(in->job, "retry_of"));
    char key[2 * CB_NAME_MAX + 2], msg[512], mine[65], theirs[65];
    cb_job_state js;
    cb_control_brief br;
    int transient = 0;
    memset(&js, 0, sizeof js);
    msg[0] = '\0';
    if (!of || cb_job_key(in->tenant, of, key, sizeof key) != 0)
        return 1; /* the schema says what it may be */
    if (!strcmp(of, in->job_id)) {
        snprintf(msg, sizeof msg, "/retry_of: job \"%s\" cannot re-run itself", of);
    } else if (cb_view_job(s->st, key, &js) != CB_OK) {
        transient = cb_control_brief_of(s->ctl, key, &br);
        snprintf(msg, sizeof msg,
                 transient ? "/retry_of: job \"%s\" is not in the store yet (it has not ended, or "
                             "its end is not folded yet); submit again in a moment"
                           : "/retry_of: no job \"%s\" of tenant \"%s\"",
                 of, in->tenant);
    } else if (!cb_job_terminal(js.status)) {
        transient = 1;
        snprintf(msg, sizeof msg,
                 "/retry_of: job \"%s\" has not ended yet (%s); re-run it once it has failed or "
                 "was cancelled",
                 of, cb_job_status_name(js.status));
    } else if (!rerunnable(js.status, js.failed)) {
        snprintf(msg, sizeof msg, "/retry_of: job \"%s\" %s: " RERUN_WHAT, of,
                 cb_job_status_name(js.status));
    } else if (cb_memo_work_digest(in->job, mine) != CB_OK ||
               cb_memo_work_digest(js.spec, theirs) != CB_OK) {
        transient = 1;
        snprintf(msg, sizeof msg, "%s", "/: the engine is out of memory; submit again");
    } else if (strcmp(mine, theirs) != 0) {
        snprintf(msg, sizeof msg,
                 "/retry_of: the job's work differs from job \"%s\"'s: its kind, functions, "
                 "inputs and steps must be the same (only its policies may change)",
                 of);
    }
    cb_job_state_cleanup(&js);
    if (!msg[0])
        return 1;
    s->stats.rejected++;
    cb_log_job(CB_LOG_WARN, "service", in->tenant, in->job_id, "job %s: %s",
               transient ? "refused for now" : "rejected", msg);
    if (transient) {
        not_now(s, o, in->tenant, in->job_id, msg);
    } else {
        json_decref(in->errors);
        in->errors = json_pack("[s]", msg);
        record_rejection(s, in);
        verdict(s, o, in->tenant, in->job_id, 0, in->errors);
    }
    return 0;
}

static void judge(cb_service *s, const origin *o, const char *tenant, const cb_broker_msg *m);

/* ---- requests for a job another engine drives ------------------------- */

/* With names (docs/scale.md, "Ownership"), the engine that drives a job's
 * partition judges its requests from its mirror and its memory of recent
 * submissions, which are ahead of the store: a lifecycle command, or a
 * submission with a job_id, for a job this engine does not drive is passed
 * on to the owner as the live engines agree (cb.engine.req.<owner>.<the
 * request's subject without "cb.">), and its answer relayed. No answer from
 * there (it is gone, or the view is stale) and the request is judged here,
 * as before: a command from the store, a submission by waiting for its
 * record. */
#define FORWARD_TIMEOUT_MS 10000
#define OWN_PREFIX         "cb.engine.req."

typedef struct fwd {
    cb_service *s; /* NULL once the service is gone */
    cb_request *req;
    char *subject, *data; /* the original's, for judging here after all */
    size_t len;
    struct fwd *prev, *next;
} fwd;

/* What a lifecycle command's subject "cb.ctl.<tenant>.<job>" names. */
typedef struct ctl_target {
    char tenant[CB_NAME_MAX + 1];
    char key[2 * CB_NAME_MAX + 2];
    const char *job; /* in the subject */
} ctl_target;

static bool ctl_target_of(const char *rest, ctl_target *t);
static void ctl_judge(cb_service *s, cb_request *req, const cb_broker_msg *m, const ctl_target *t,
                      const cb_control_brief *brief, int known);

static void fwd_free(fwd *f)
{
    if (f->s) {
        if (f->prev)
            f->prev->next = f->next;
        else
            f->s->fwds = f->next;
        if (f->next)
            f->next->prev = f->prev;
    }
    free(f->subject);
    free(f->data);
    free(f);
}

/* Judge here a request of subject m->subject ("cb.ctl...", "cb.submit...");
 * passed_on: never pass it on (again). */
static void judge_here(cb_service *s, cb_request *req, const cb_broker_msg *m, int passed_on)
{
    if (!strncmp(m->subject, "cb.ctl.", 7)) {
        ctl_target t;
        ctl_judge(s, req, m, ctl_target_of(m->subject + 7, &t) ? &t : NULL, NULL, 0);
    } else {
        origin o = {req, NULL, passed_on};
        judge(s, &o, m->subject + strlen("cb.submit."), m);
    }
}

static void fwd_reply_cb(cb_status st, const void *data, size_t len, void *ctx)
{
    fwd *f = ctx;
    cb_service *s = f->s;
    if (!s) {
        fwd_free(f);
        return;
    }
    if (st == CB_OK) {
        if (cb_request_respond(f->req, data, len) != CB_OK)
            CB_LOG_WRN("service", "cannot relay the answer to %s", f->subject);
    } else {
        cb_broker_msg m = {.subject = f->subject, .data = f->data, .len = f->len};
        CB_LOG_WRN("service", "the owner did not answer %s (%s): judged here", f->subject,
                   cb_strerror(st));
        judge_here(s, f->req, &m, 1); /* counted when it came in */
    }
    fwd_free(f);
}

/* Pass request m (its job in partition k) on to k's owner when that is
 * another engine: true when it is on its way (the answer is relayed). */
static bool pass_on(cb_service *s, cb_request *req, const cb_broker_msg *m, unsigned k)
{
    const char *name = cb_control_name(s->ctl), *owner;
    char subject[400];
    fwd *f;
    if (!name || cb_control_drives(s->ctl, k) || !(owner = cb_control_owner(s->ctl, k)) ||
        !strcmp(owner, name))
        return false;
    snprintf(subject, sizeof subject, OWN_PREFIX "%s.%s", owner, m->subject + 3);
    if (!(f = cb_calloc(1, sizeof *f)) || !(f->subject = cb_strdup(m->subject)) ||
        !(f->data = cb_malloc(m->len + 1))) {
        if (f)
            free(f->subject);
        free(f);
        return false;
    }
    memcpy(f->data, m->data, m->len);
    f->len = m->len;
    f->s = s;
    f->req = req;
    if (cb_broker_request(s->b, subject, m->data, m->len, FORWARD_TIMEOUT_MS, fwd_reply_cb, f) !=
        CB_OK) {
        f->s = NULL; /* not in the list yet */
        fwd_free(f);
        return false;
    }
    f->next = s->fwds;
    if (s->fwds)
        s->fwds->prev = f;
    s->fwds = f;
    return true;
}

/* A request another engine passed on: judged here, never passed on again. */
static void own_cb(cb_request *req, const cb_broker_msg *m, void *ctx)
{
    cb_service *s = ctx;
    const char *name = cb_control_name(s->ctl), *rest = m->subject + strlen(OWN_PREFIX);
    size_t n = name ? strlen(name) : 0;
    char subject[400];
    if (!name || strncmp(rest, name, n) != 0 || rest[n] != '.' ||
        (strncmp(rest + n + 1, "ctl.", 4) && strncmp(rest + n + 1, "submit.", 7))) {
        answer_error(req, NULL, "/: not a request for this engine");
        return;
    }
    snprintf(subject, sizeof subject, "cb.%s", rest + n + 1);
    cb_broker_msg orig = {.subject = subject, .data = m->data, .len = m->len};
    judge_here(s, req, &orig, 1);
}

static void judge(cb_service *s, const origin *o, const char *tenant, const cb_broker_msg *m)
{
    char id[CB_NAME_MAX + 1], key[2 * CB_NAME_MAX + 2], evid[320];
    const char *known = NULL;
    json_t *data;
    unsigned part;
    cb_job_state js;
    cb_intake in;
    cb_status st;
    pend *p;

    if (!o->passed_on)
        s->stats.submitted++;
    if (!cb_name_valid(tenant)) {
        s->stats.rejected++;
        CB_LOG_WRN("service", "submission on %s refused: the tenant is not a valid name",
                   m->subject);
        verdict_error(s, o, NULL, NULL, "/tenant: the subject's tenant is not a valid name");
        return;
    }
    if (!o->passed_on) { /* counted once, where it came in */
        double rate;
        if (!within_rate(s, tenant, &rate)) {
            char msg[400];
            s->stats.rejected++;
            snprintf(msg, sizeof msg,
                     "/: tenant \"%s\" is over its limit of %g submissions per second "
                     "(tenants.%s.submissions_per_s); submit again later",
                     tenant, rate, tenant);
            CB_LOG_WRN("service", "%s", msg);
            not_now(s, o, tenant, NULL, msg); /* no verdict: the same job may come again */
            return;
        }
    }
    fresh_id(id, sizeof id);
    st = cb_intake_check(&s->cfg, tenant, m->data, m->len, id, &in);
    if (st != CB_OK) {
        const char *first = json_string_value(json_array_get(in.errors, 0));
        const char *job = in.job_id[0] ? in.job_id : NULL;
        s->stats.rejected++;
        cb_log_job(CB_LOG_WARN, "service", tenant, job, "job rejected: %s%s",
                   first ? first : cb_strerror(st),
                   json_array_size(in.errors) > 1 ? " (and more)" : "");
        if (st == CB_ENOMEM) { /* not a verdict on the job: judged again */
            not_now(s, o, tenant, job, cb_strerror(st));
        } else if (in.errors) {
            record_rejection(s, &in);
            verdict(s, o, tenant, job, 0, in.errors);
        } else {
            verdict_error(s, o, tenant, job, cb_strerror(st));
        }
        cb_intake_cleanup(&in);
        return;
    }
    if (cb_job_key(in.tenant, in.job_id, key, sizeof key) != 0) {
        verdict_error(s, o, tenant, in.job_id, "/job_id: too long");
        cb_intake_cleanup(&in);
        return;
    }
    part = cb_partition_of(in.tenant, in.job_id, s->cfg.partitions); /* fixed from here on */
    if (o->req && !o->passed_on && strcmp(in.job_id, id) != 0 && pass_on(s, o->req, m, part)) {
        cb_intake_cleanup(&in); /* its id was given: the owner knows whether it is a repeat */
        return;
    }
    /* Idempotency: the projection knows older jobs, `recent` the newest. */
    memset(&js, 0, sizeof js);
    if (cb_view_job(s->st, key, &js) == CB_OK)
        known = js.digest ? js.digest : "";
    else
        known = cb_map_get(&s->recent, cb_hash64(key, strlen(key)));
    if (known) {
        if (!strcmp(known, in.digest) && js.status != CB_JOB_REJECTED) {
            s->stats.repeated++;
            if (o->req) { /* its client may wait for a done message sent long ago */
                cb_reply_msg again = {.job_id = in.job_id, .accepted = 1, .repeated = 1};
                answer_m(o->req, &again);
            } else {
                verdict(s, o, tenant, in.job_id, 1, NULL);
            }
        } else {
            char msg[400];
            s->stats.rejected++;
            snprintf(msg, sizeof msg,
                     js.status == CB_JOB_REJECTED
                         ? "/job_id: job \"%s\" was rejected before; submit with a new job_id"
                         : "/job_id: job \"%s\" exists with a different body (conflict)",
                     in.job_id);
            cb_log_job(CB_LOG_WARN, "service", in.tenant, in.job_id, "%s", msg);
            verdict_error(s, o, tenant, in.job_id, msg);
        }
        cb_job_state_cleanup(&js);
        cb_intake_cleanup(&in);
        return;
    }
    if (!retry_allowed(s, o, &in) || over_open_jobs(s, o, in.tenant, in.job_id)) {
        cb_intake_cleanup(&in);
        return;
    }
    if (!(p = pend_new(s, o, key, in.job_id))) {
        not_now(s, o, tenant, in.job_id, "/: the engine is out of memory; submit again");
        cb_intake_cleanup(&in);
        return;
    }
    memcpy(p->digest, in.digest, sizeof p->digest);
    snprintf(evid, sizeof evid, "%s/%s/submitted", in.tenant, in.job_id);
    p->part = part;
    p->fresh = !strcmp(in.job_id, id);
    data = json_pack("{s:O, s:s}", "job", in.job, "digest", in.digest);
    if (data && part && json_object_set_new(data, "partition", json_integer(part))) {
        json_decref(data);
        data = NULL;
    }
    st = data ? cb_emit(s->b, part, CB_EV_JOB_SUBMITTED, in.tenant, in.job_id, evid, SOURCE, data,
                        submitted_cb, p)
              : CB_ENOMEM;
    if (st != CB_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "/: the job could not be stored (%s)", cb_strerror(st));
        not_now(s, o, tenant, in.job_id, msg);
        pend_free(p);
    } else {
        cb_log_job(CB_LOG_INFO, "service", in.tenant, in.job_id, "job submitted");
    }
    cb_intake_cleanup(&in);
}

static void submit_cb(cb_request *req, const cb_broker_msg *m, void *ctx)
{
    origin o = {req, NULL, 0};
    judge(ctx, &o, m->subject + strlen("cb.submit."), m);
}

static void enqueue_cb(cb_work *w, const cb_broker_msg *m, void *ctx)
{
    origin o = {NULL, w, 0};
    judge(ctx, &o, m->subject + strlen("cb.enqueue."), m);
}

/* ---- lifecycle commands ------------------------------------------------------- */

/* A job as the controller knows it (its mirror is often ahead of the store)
 * and as the store has it: whichever is further along. 0: neither knows it. */
static int job_brief(cb_service *s, const char *key, cb_control_brief *out)
{
    cb_job_state js;
    int known = cb_control_brief_of(s->ctl, key, out);
    memset(&js, 0, sizeof js);
    if (cb_view_job(s->st, key, &js) != CB_OK)
        return known;
    if (!known || (cb_job_terminal(js.status) && !cb_job_terminal(out->status))) {
        out->status = js.status;
        out->cancel_requested |= js.cancel_requested;
    }
    if (js.applied > out->applied)
        out->applied = js.applied;
    out->log_partition = js.log_partition;
    out->has_partition = true;
    cb_job_state_cleanup(&js);
    return 1;
}

static void command_cb(cb_status st, uint64_t seq, int duplicate, void *ctx)
{
    pend *p = ctx;
    (void)seq;
    (void)duplicate;
    if (!p->s) {
        pend_free(p);
        return;
    }
    if (st == CB_OK) {
        answer(p->req, p->job, 1, NULL);
        if (p->resume)
            cb_control_hold(p->s->ctl, p->key, 0);
        cb_control_touch(p->s->ctl, p->key);
    } else {
        answer_error(p->req, p->job, cb_strerror(st));
    }
    pend_free(p);
}

/* `retry` on cb.ctl.<tenant>.<job>: a new job with the descriptor of the
 * job in the store, `retry_of` it and the id asked for (or a new one),
 * judged and answered as a submission. The job's end may be decided (its
 * done message out) before the store shows it, and the re-run reads the
 * store: such a request waits for it, up to RERUN_WAIT_MS; so does one for a
 * job another engine drives that the store shows running (docs/scale.md). */
#define RERUN_WAIT_MS 10000
#define RERUN_POLL_MS 100

struct rerun_wait {
    cb_service *s;
    cb_request *req;
    char tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1], key[2 * CB_NAME_MAX + 2];
    json_t *cmd;
    int64_t until_ns; /* monotonic */
    struct event *timer;
    rerun_wait *prev, *next;
};

static void rerun_wait_free(rerun_wait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        w->s->reruns = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->timer)
        event_free(w->timer);
    json_decref(w->cmd);
    free(w);
}

/* 1: answered; 0: the store does not show the job's end yet (try again). */
static int retry_job(cb_service *s, cb_request *req, const char *tenant, const char *job,
                     const char *key, const json_t *cmd, bool last)
{
    cb_job_state js;
    cb_control_brief br;
    const char *ending = cb_control_ending(s->ctl, key);
    const json_t *id = json_object_get(cmd, "job_id");
    json_t *spec = NULL;
    char *text = NULL, msg[400], subject[200];
    origin from = {req, NULL, 0};
    int known = job_brief(s, key, &br);
    memset(&js, 0, sizeof js);
    msg[0] = '\0';
    /* what the controller knows first: the store may not show the end yet */
    if (known && !cb_job_terminal(br.status) && ending)
        br.status = !strcmp(ending, "succeeded") ? CB_JOB_SUCCEEDED
                    : !strcmp(ending, "failed")  ? CB_JOB_FAILED
                                                 : CB_JOB_CANCELLED;
    if (known && !cb_job_terminal(br.status) && !cb_control_drives(s->ctl, br.log_partition) &&
        !last)
        return 0; /* another engine drives it: the store shows its end a little later */
    if (!known)
        snprintf(msg, sizeof msg, "/: no job \"%s\" for tenant \"%s\"", job, tenant);
    else if (!cb_job_terminal(br.status))
        snprintf(msg, sizeof msg,
                 "/: job \"%s\" has not ended yet; re-run it once it has failed or was cancelled",
                 job);
    else if (!rerunnable(br.status, 1)) /* whether it lost tasks: the store says, below */
        snprintf(msg, sizeof msg, "/: job \"%s\" %s: " RERUN_WHAT, job,
                 cb_job_status_name(br.status));
    else if (cb_view_job(s->st, key, &js) != CB_OK || !cb_job_terminal(js.status)) {
        cb_job_state_cleanup(&js);
        if (!last)
            return 0;
        snprintf(msg, sizeof msg,
                 "/: job \"%s\" has ended but the store does not show it yet (is cb-projector "
                 "running?): send it again later",
                 job);
    } else if (!rerunnable(js.status, js.failed))
        snprintf(msg, sizeof msg, "/: job \"%s\" %s: " RERUN_WHAT, job,
                 cb_job_status_name(js.status));
    if (msg[0]) {
        answer_error(req, job, msg);
        s->stats.refused++;
        cb_job_state_cleanup(&js);
        return 1;
    }
    spec = json_deep_copy(js.spec);
    cb_job_state_cleanup(&js);
    if (spec && !id)
        json_object_del(spec, "job_id");
    if (!spec || json_object_set_new(spec, "retry_of", json_string(job)) ||
        (id && json_object_set(spec, "job_id", (json_t *)id)) ||
        !(text = cb_json_dumps(spec, JSON_COMPACT))) {
        answer_error(req, job, "out of memory: send it again");
        json_decref(spec);
        return 1;
    }
    snprintf(subject, sizeof subject, "cb.submit.%s", tenant);
    cb_broker_msg sub = {.subject = subject, .data = text, .len = strlen(text)};
    cb_log_job(CB_LOG_INFO, "service", tenant, job, "re-run requested");
    judge(s, &from, tenant, &sub);
    free(text);
    json_decref(spec);
    return 1;
}

static void rerun_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    rerun_wait *w = arg;
    struct timeval tv = {0, RERUN_POLL_MS * 1000};
    (void)fd;
    (void)what;
    if (!retry_job(w->s, w->req, w->tenant, w->job, w->key, w->cmd,
                   cb_time_mono_ns() >= w->until_ns)) {
        evtimer_add(w->timer, &tv);
        return;
    }
    w->req = NULL;
    rerun_wait_free(w);
}

static void rerun(cb_service *s, cb_request *req, const char *tenant, const char *job,
                  const char *key, json_t *cmd)
{
    rerun_wait *w;
    struct timeval tv = {0, RERUN_POLL_MS * 1000};
    if (retry_job(s, req, tenant, job, key, cmd, false))
        return;
    if (!(w = cb_calloc(1, sizeof *w)) || !(w->timer = evtimer_new(s->base, rerun_poll_cb, w))) {
        free(w);
        (void)retry_job(s, req, tenant, job, key, cmd, true);
        return;
    }
    w->s = s;
    w->req = req;
    snprintf(w->tenant, sizeof w->tenant, "%s", tenant);
    snprintf(w->job, sizeof w->job, "%s", job);
    snprintf(w->key, sizeof w->key, "%s", key);
    w->cmd = json_incref(cmd);
    w->until_ns = cb_time_mono_ns() + RERUN_WAIT_MS * 1000000LL;
    w->next = s->reruns;
    if (s->reruns)
        s->reruns->prev = w;
    s->reruns = w;
    evtimer_add(w->timer, &tv);
}

/* The job "<tenant>.<job>" (rest of the subject) names; false: none. */
static bool ctl_target_of(const char *rest, ctl_target *t)
{
    const char *dot = strchr(rest, '.');
    if (!dot || (size_t)(dot - rest) > CB_NAME_MAX)
        return false;
    snprintf(t->tenant, sizeof t->tenant, "%.*s", (int)(dot - rest), rest);
    t->job = dot + 1;
    return cb_name_valid(t->tenant) && cb_name_valid(t->job) &&
           cb_job_key(t->tenant, t->job, t->key, sizeof t->key) == 0;
}

/* A lifecycle command on job t (NULL: the subject names none), judged here;
 * brief: what job_brief() said of it (known), or NULL to ask now. */
static void ctl_judge(cb_service *s, cb_request *req, const cb_broker_msg *m, const ctl_target *t,
                      const cb_control_brief *brief, int known)
{
    char evid[400], msg[400];
    const char *tenant, *job, *key, *cmd;
    json_t *o = NULL, *errors = NULL;
    json_error_t je;
    cb_event_type type;
    cb_control_brief js;
    pend *p;
    cb_status st;

    s->stats.commands++;
    memset(&js, 0, sizeof js);
    if (!t) {
        answer_error(req, NULL, "/: the subject must be cb.ctl.<tenant>.<job_id>");
        goto refused;
    }
    tenant = t->tenant;
    job = t->job;
    key = t->key;
    if (!(o = cb_json_loadb(m->data, m->len, 0, &je, &st))) {
        answer_error(req, job, st == CB_ENOMEM ? "out of memory: send it again" : "/: not JSON");
        goto refused;
    }
    if (cb_schema_validate(s->cfg.schema, "ctl.json", o, 8, &errors) != CB_OK) {
        answer(req, job, 0, errors);
        goto refused;
    }
    cmd = json_string_value(json_object_get(o, "command"));
    if (!strcmp(cmd, "retry")) {
        rerun(s, req, tenant, job, key, o);
        goto out;
    }
    if (brief)
        js = *brief;
    else
        known = job_brief(s, key, &js);
    if (!known) {
        snprintf(msg, sizeof msg, "/: no job \"%s\" for tenant \"%s\"", job, tenant);
        answer_error(req, job, msg);
        goto refused;
    }
    if (!cb_job_terminal(js.status) && cb_control_ending(s->ctl, key)) {
        snprintf(msg, sizeof msg, "/: job \"%s\" has already %s", job,
                 cb_control_ending(s->ctl, key));
        answer_error(req, job, msg);
        goto refused;
    }
    if (cb_job_terminal(js.status)) {
        snprintf(msg, sizeof msg, "/: job \"%s\" has already %s", job,
                 cb_job_status_name(js.status));
        answer_error(req, job, msg);
        goto refused;
    }
    if (js.cancel_requested && strcmp(cmd, "cancel")) {
        snprintf(msg, sizeof msg, "/: job \"%s\" is being cancelled", job);
        answer_error(req, job, msg);
        goto refused;
    }
    if (!strcmp(cmd, "cancel")) {
        type = CB_EV_JOB_CANCEL_REQUESTED;
        snprintf(evid, sizeof evid, "%s/%s/cancel", tenant, job);
    } else {
        /* suspend and resume may alternate: the id carries the job's state */
        type = !strcmp(cmd, "suspend") ? CB_EV_JOB_SUSPENDED : CB_EV_JOB_RESUMED;
        snprintf(evid, sizeof evid, "%s/%s/%s/%llu", tenant, job, cmd,
                 (unsigned long long)js.applied);
    }
    origin from = {req, NULL, 0};
    if (!(p = pend_new(s, &from, key, job))) {
        answer_error(req, job, "out of memory");
        goto refused;
    }
    if (type == CB_EV_JOB_SUSPENDED)
        cb_control_hold(s->ctl, key, 1);
    p->resume = type == CB_EV_JOB_RESUMED;
    st = cb_emit(s->b, js.log_partition, type, tenant, job, evid, SOURCE,
                 json_pack("{s:s}", "reason",
                           json_string_value(json_object_get(o, "reason")) ?: "requested"),
                 command_cb, p);
    if (st != CB_OK) {
        answer_error(req, job, cb_strerror(st));
        pend_free(p);
        goto refused;
    }
    cb_log_job(CB_LOG_INFO, "service", tenant, job, "%s requested", cmd);
    goto out;
refused:
    s->stats.refused++;
out:
    json_decref(errors);
    json_decref(o);
}

/* A lifecycle command: judged here, or, by an engine with a name, passed on
 * to the owner of the job's partition (its record's, else its hash's). The
 * subject is parsed and the job looked up once, for both. */
static void ctl_cb(cb_request *req, const cb_broker_msg *m, void *ctx)
{
    cb_service *s = ctx;
    ctl_target t;
    cb_control_brief br;
    int known;
    if (!ctl_target_of(m->subject + strlen("cb.ctl."), &t)) {
        ctl_judge(s, req, m, NULL, NULL, 0);
        return;
    }
    memset(&br, 0, sizeof br);
    known = job_brief(s, t.key, &br);
    if (cb_control_name(s->ctl) &&
        pass_on(s, req, m,
                br.has_partition ? br.log_partition
                                 : cb_partition_of(t.tenant, t.job, s->cfg.partitions)))
        return;
    ctl_judge(s, req, m, &t, &br, known);
}

cb_status cb_service_start(struct event_base *base, cb_broker *b, cb_store *st, cb_control *ctl,
                           const cb_intake_cfg *cfg, cb_service **out)
{
    cb_service *s = cb_calloc(1, sizeof *s);
    cb_status rc;
    if (!s)
        return CB_ENOMEM;
    s->base = base;
    s->b = b;
    s->st = st;
    s->ctl = ctl;
    s->cfg = *cfg;
    cb_map_init(&s->recent);
    cb_map_init(&s->rates);
    cb_consume_opts co;
    cb_consume_opts_init(&co);
    if ((rc = cb_broker_serve(b, "cb.submit.*", submit_cb, s, &s->submit)) != CB_OK ||
        (rc = cb_broker_serve(b, "cb.ctl.*.*", ctl_cb, s, &s->cmds)) != CB_OK ||
        (rc = cb_broker_consume(b, "cb.enqueue.>", &co, enqueue_cb, s, &s->enqueued)) != CB_OK) {
        cb_service_free(s);
        return rc;
    }
    if (cb_control_name(ctl)) {
        char pattern[200];
        snprintf(pattern, sizeof pattern, OWN_PREFIX "%s.>", cb_control_name(ctl));
        if ((rc = cb_broker_serve(b, pattern, own_cb, s, &s->own)) != CB_OK) {
            cb_service_free(s);
            return rc;
        }
    }
    *out = s;
    return CB_OK;
}

void cb_service_free(cb_service *s)
{
    if (!s)
        return;
    cb_sub_close(s->submit);
    cb_sub_close(s->cmds);
    cb_sub_close(s->own);
    while (s->fwds) { /* their clients get no answer: the request times out */
        fwd *f = s->fwds;
        s->fwds = f->next;
        cb_request_drop(f->req);
        f->s = NULL; /* the reply callback frees it */
    }
    cb_consumer_close(s->enqueued);                /* unacked submissions go back to the queue */
    for (pend *p = s->pends, *next; p; p = next) { /* their callbacks free them */
        next = p->next;
        if (p->confirm) { /* waiting for a record, not a callback: the request times out */
            cb_request_drop(p->req);
            p->s = NULL;
            pend_free(p);
            continue;
        }
        p->s = NULL;
        p->req = NULL;
        p->work = NULL;
    }
    while (s->reruns) { /* their clients get no answer: the request times out */
        cb_request_drop(s->reruns->req);
        rerun_wait_free(s->reruns);
    }
    cb_map_each(&s->recent, free_digest, NULL);
    cb_map_cleanup(&s->recent);
    cb_map_each(&s->rates, free_digest, NULL); /* buckets: plain allocations too */
    cb_map_cleanup(&s->rates);
    free(s);
}
