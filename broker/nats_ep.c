/* broker/nats_ep.c - NATS driver: readers (ordered consumers), subscriptions,
 * services and pull consumers; messages from client threads to the loop.
 *
 * Threads. Three kinds touch an endpoint (ep):
 *   - the loop (the caller's libevent thread): creates and closes endpoints,
 *     runs every user callback (read_cb, msg_cb, serve_cb, work_cb), owns the
 *     ep's list links, `closed`, `finished`, `sub` and the works list;
 *   - the helper thread (cb_offload, one per connection): the blocking
 *     JetStream calls of subscribing and stopping (api_job), whose results
 *     come back to the loop as mails;
 *   - libnats' message threads, and a consumer's fetcher thread: they never
 *     call user code; they hand each message to the loop as a mail
 *     (post_mail). A consumer's fetcher and the loop share `inflight`, `stop`
 *     under e->mu / e->cv (the window of commands the user holds).
 *
 * References (e->refs, atomic). The ep is freed when the last one goes:
 *   - the user handle's: taken by ep_new, dropped by cb__nats_close_ep (or
 *     by drop_unstarted when creation fails);
 *   - a subscription's: taken before natsSubscription_SetOnCompleteCB,
 *     dropped by sub_complete_cb once libnats guarantees no more callbacks
 *     for it (so a message thread never sees a freed ep);
 *   - one per mail in flight (post_mail -> msg_mail_fn), one per api_job
 *     (submit_job -> api_job_done), one per work the user holds
 *     (deliver_work -> work_end).
 * After close, `closed` makes the loop drop what still arrives; references
 * held by mails and jobs keep the memory valid until they are delivered. */
#define _GNU_SOURCE
#include <nats/nats.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_partition.h"
#include "cb_time.h"
#include "nats_int.h"

/* ---- endpoints ------------------------------------------------------- */

static void ep_ref(ep *e)
{
    atomic_fetch_add(&e->refs, 1);
}

static void ep_unref(ep *e)
{
    if (atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    if (e->kind == EP_CONSUMER) {
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
    }
    cb_free(e);
}

static void sub_complete_cb(void *closure)
{
    ep_unref(closure); /* the subscription's reference */
}

static ep *ep_new(nb *b, ep_kind kind, void *ctx)
{
    ep *e = cb_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->h.r.b = &b->base;
    e->kind = kind;
    e->b = b;
    e->ctx = ctx;
    atomic_init(&e->refs, 1); /* the user handle's */
    if (kind == EP_CONSUMER) {
        pthread_mutex_init(&e->mu, NULL);
        pthread_cond_init(&e->cv, NULL);
    }
    e->next = b->eps;
    if (b->eps)
        b->eps->prev = e;
    b->eps = e;
    return e;
}

static void ep_unlink(ep *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else if (e->b->eps == e)
        e->b->eps = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

/* A core subscription could not be made: destroy what libnats made (its
 * completion callback was never set, so it will not run), then drop the two
 * references taken for it: the subscription's and the user handle's. */
static void drop_unstarted(ep *e, natsSubscription *sub)
{
    natsSubscription_Destroy(sub);
    ep_unlink(e);
    ep_unref(e); /* the subscription's (sub_complete_cb will not run) */
    ep_unref(e); /* the user handle's: frees e */
}

/* ---- mails from message threads -------------------------------------- */

typedef enum mail_kind { M_MSG, M_CAUGHT_UP, M_ERROR } mail_kind;

typedef struct msg_mail {
    cb_mail mail;
    ep *e;
    mail_kind kind;
    natsMsg *msg;
    cb_status st;
    uint64_t seq;
    uint64_t deliveries;
    int64_t time_ns;
    bool caught_up; /* M_MSG: this message was the last one pending */
} msg_mail;

static void deliver_work(ep *e, natsMsg *msg, const cb_broker_msg *m);

static void fill_msg(cb_broker_msg *m, natsMsg *msg, const msg_mail *mm)
{
    const char *id = NULL;
    memset(m, 0, sizeof *m);
    m->subject = natsMsg_GetSubject(msg);
    m->data = natsMsg_GetData(msg);
    m->len = (size_t)natsMsg_GetDataLength(msg);
    m->seq = mm->seq;
    m->time_ns = mm->time_ns;
    m->deliveries = mm->deliveries;
    /* Readers leave it out: nobody reads it there, and asking parses every
     * message's headers into a map (5 % of a replay's time). */
    if (mm->e->kind != EP_READER && natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK)
        m->msg_id = id;
}

static void reader_finish(ep *e, cb_status s)
{
    e->finished = true;
    if (e->idle)
        evtimer_del(e->idle);
    e->read_cb(NULL, s, e->ctx);
}

/* ---- the end of the log ------------------------------------------------
 * A reader has caught up when it delivered the log's last position at the
 * start of the read (end_seq, from the stream's state), or when the server
 * says that no event its filter matches lies between what it delivered and
 * end_seq (a probe: STREAM.MSG.GET with next_by_subj). The pending count
 * that JetStream puts on each message is only a hint for when to probe:
 * nats-server 2.9's count for a filtered consumer over a file store can be
 * wrong either way (0 thousands of events before the end, seen with a 26k
 * event stream: a projector reported caught up having folded part of the
 * log, a replay would have stopped early). After the first time, a live
 * reader reports "caught up" again whenever the hint says so. */
#define IDLE_PROBE_MS 50

static bool reader_filtered(const ep *e)
{
    return strcmp(e->subject, e->whole) != 0;
}

static void reader_at_end(ep *e)
{
    e->at_end = true;
    if (e->ropts.stop_at_end) {
        reader_finish(e, CB_OK); /* stops the idle timer */
        return;
    }
    if (e->idle)
        evtimer_del(e->idle);
    e->read_cb(NULL, CB_OK, e->ctx);
}

static void arm_idle(ep *e)
{
    struct timeval tv = {0, IDLE_PROBE_MS * 1000};
    if (e->idle)
        evtimer_add(e->idle, &tv);
}

static void start_probe(ep *e);

/* A message the reader delivered before it reached the end. */
static void reader_progress(ep *e, uint64_t seq, bool hint)
{
    if (seq >= e->end_seq)
        reader_at_end(e);
    else if (hint && !e->probing && reader_filtered(e))
        start_probe(e); /* maybe the last event the filter matches */
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    ep *e = arg;
    (void)fd;
    (void)what;
    if (e->closed || e->finished || e->at_end)
        return;
    if (e->last_seq != e->idle_mark || e->probing) { /* still moving */
        e->idle_mark = e->last_seq;
        arm_idle(e);
        return;
    }
    start_probe(e);
}

static void msg_mail_fn(cb_mail *mail, int cancelled)
{
    msg_mail *mm = (msg_mail *)mail;
    ep *e = mm->e;
    cb_broker_msg m;

    if (cancelled || (e->closed && e->kind != EP_CONSUMER)) {
        natsMsg_Destroy(mm->msg);
        goto out;
    }
    if (mm->msg)
        fill_msg(&m, mm->msg, mm);
    switch (e->kind) {
    case EP_READER:
        if (e->finished)
            break;
        if (mm->kind == M_MSG) {
            if (mm->seq > e->last_seq)
                e->last_seq = mm->seq;
            e->read_cb(&m, CB_OK, e->ctx);
        }
        if (e->closed || e->finished)
            break;
        if (mm->kind == M_ERROR)
            reader_finish(e, mm->st);
        else if (mm->kind == M_CAUGHT_UP && !e->at_end)
            reader_at_end(e);
        else if (mm->kind == M_MSG && !e->at_end)
            reader_progress(e, mm->seq, mm->caught_up);
        else if (mm->kind == M_MSG && mm->caught_up) /* live: the server's hint */
            e->read_cb(NULL, CB_OK, e->ctx);
        break;
    case EP_SUB:
    case EP_KEPT_SUB:
        if (mm->kind == M_MSG)
            e->msg_cb(&m, e->ctx);
        else if (mm->kind == M_ERROR)
            CB_LOG_WRN(MOD, "subscription %s: %s", e->subject, cb_strerror(mm->st));
        break;
    case EP_SERVE:
        if (mm->kind == M_MSG) {
            request *rq = cb_calloc(1, sizeof *rq);
            if (!rq) {
                CB_LOG_ERR(MOD, "request on %s dropped: out of memory", m.subject);
                break;
            }
            rq->head.b = &e->b->base;
            rq->msg = mm->msg;
            mm->msg = NULL;
            e->serve_cb(&rq->head, &m, e->ctx);
        }
        break;
    case EP_CONSUMER:
        if (mm->kind == M_MSG) {
            natsMsg *msg = mm->msg;
            mm->msg = NULL;
            deliver_work(e, msg, &m);
        }
        break;
    }
    natsMsg_Destroy(mm->msg);
out:
    ep_unref(e);
    cb_free(mm);
}

/* Message thread side: hand one message (or a signal) to the loop. */
static void post_mail(ep *e, mail_kind kind, natsMsg *msg, cb_status st, bool wait)
{
    msg_mail *mm = cb_calloc(1, sizeof *mm);
    if (!mm) {
        CB_LOG_ERR(MOD, "out of memory handing a message to the loop; it will be redelivered");
        natsMsg_Destroy(msg);
        return;
    }
    mm->mail.fn = msg_mail_fn;
    mm->e = e;
    mm->kind = kind;
    mm->msg = msg;
    mm->st = st;
    if (msg && kind == M_MSG && e->kind != EP_SUB && e->kind != EP_SERVE) {
        jsMsgMetaData *md = NULL;
        if (natsMsg_GetMetaData(&md, msg) == NATS_OK) {
            mm->seq = md->Sequence.Stream;
            mm->deliveries = md->NumDelivered;
            mm->time_ns = md->Timestamp;
            mm->caught_up = md->NumPending == 0;
            jsMsgMetaData_Destroy(md);
        }
    }
    ep_ref(e);
    if (wait)
        cb_mailbox_post_wait(e->b->mb, &mm->mail);
    else
        cb_mailbox_post(e->b->mb, &mm->mail);
}

static void js_msg_cb(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    post_mail(closure, M_MSG, msg, CB_OK, true);
}

static void core_msg_cb(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    post_mail(closure, M_MSG, msg, CB_OK, false);
}

/* ---- jobs on the helper thread ---------------------------------------- */

typedef enum job_kind { J_SUBSCRIBE, J_STOP, J_PROBE } job_kind;

typedef struct api_job {
    cb_offload_job job;
    job_kind kind;
    ep *e;
    natsSubscription *sub;
    cb_status st;
    char err[256];
    uint64_t from;  /* J_PROBE: look from this position */
    uint64_t seen;  /* J_PROBE: the reader's last_seq when it was asked */
    uint64_t found; /* J_PROBE: the next match's position, 0 when none */
} api_job;

/* The log's last position now (0 when it is empty). */
static natsStatus log_end(nb *b, const char *stream, uint64_t *end, jsErrCode *jerr)
{
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, b->js, stream, NULL, jerr);
    if (s == NATS_OK)
        *end = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return s;
}

/* The position of the first event at or after `from` that `filter` matches,
 * asked of the stream (not of a consumer's count); 0 when there is none. */
static natsStatus next_match(nb *b, const char *stream, const char *filter, uint64_t from,
                             uint64_t *found)
{
    char api[80];
    json_t *req = json_pack("{s:I, s:s}", "seq", (json_int_t)from, "next_by_subj", filter);
    char *body = req ? cb_json_dumps(req, JSON_COMPACT) : NULL;
    natsMsg *reply = NULL;
    json_t *ans = NULL, *msg, *err;
    natsStatus s = NATS_NO_MEMORY;
    cb_status st;

    json_decref(req);
    if (!body)
        return s;
    snprintf(api, sizeof api, "$JS.API.STREAM.MSG.GET.%s", stream);
    s = natsConnection_RequestString(&reply, b->nc, api, body, b->base.opts.op_timeout_ms);
    free(body);
    if (s != NATS_OK)
        return s;
    ans = cb_json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL, &st);
    natsMsg_Destroy(reply);
    if ((msg = json_object_get(ans, "message")) && json_is_integer(json_object_get(msg, "seq"))) {
        *found = (uint64_t)json_integer_value(json_object_get(msg, "seq"));
        s = NATS_OK;
    } else if ((err = json_object_get(ans, "error")) &&
               json_integer_value(json_object_get(err, "code")) == 404) {
        *found = 0; /* no message found */
        s = NATS_OK;
    } else {
        s = NATS_ERR;
    }
    json_decref(ans);
    return s;
}

/* Whether nothing the read's filter matches lies in [from, end_seq]. */
static bool nothing_left(ep *e, uint64_t from)
{
    uint64_t found = 0;
    if (from > e->end_seq)
        return true;
    if (!reader_filtered(e))
        return false; /* every position up to end_seq holds an event */
    return next_match(e->b, e->stream, e->subject, from, &found) == NATS_OK &&
           (found == 0 || found > e->end_seq);
}

static void *fetch_main(void *arg);
static natsStatus pull_subscribe(ep *e, const char *stream, natsSubscription **sub);

/* A kept subscription (cb.done.*): the last message per subject, then the
 * new ones, from a consumer of CB_DONE made for it. The consumer has a name,
 * so that its filter is part of the API subject
 * ($JS.API.CONSUMER.CREATE.CB_DONE.<name>.<filter>) and a broker can allow
 * a tenant to read only its own subjects (docs/security.md). It is deleted
 * by the server once nobody listens (KEPT_INACTIVE_NS), not by us: a tenant
 * may create such consumers, not delete them. */
#define KEPT_INACTIVE_NS (10 * 1000000000LL)
static natsStatus kept_subscribe(ep *e, natsSubscription **sub, jsErrCode *jerr)
{
    nb *b = e->b;
    char deliver[160], name[64];
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    natsStatus s;
    if ((s = cb__nats_inbox(b, deliver, sizeof deliver)) != NATS_OK)
        return s;
    snprintf(name, sizeof name, "kept_%s", strrchr(deliver, '.') + 1);
    /* listening before the consumer exists: nothing it sends is missed */
    if ((s = natsConnection_Subscribe(sub, b->nc, deliver, js_msg_cb, e)) != NATS_OK)
        return s;
    jsConsumerConfig_Init(&cc);
    cc.Name = name;
    cc.FilterSubject = e->subject;
    cc.DeliverSubject = deliver;
    cc.DeliverPolicy = js_DeliverLastPerSubject;
    cc.AckPolicy = js_AckNone;
    cc.MaxDeliver = 1;
    cc.InactiveThreshold = KEPT_INACTIVE_NS;
    cc.MemoryStorage = true;
    cc.Replicas = 1;
    s = js_AddConsumer(&ci, b->js, "CB_DONE", &cc, NULL, jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        natsSubscription_Unsubscribe(*sub);
        natsSubscription_Destroy(*sub);
        *sub = NULL;
    }
    return s;
}

static void job_subscribe(api_job *j)
{
    ep *e = j->e;
    nb *b = e->b;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;

    jsSubOptions_Init(&so);
    if (e->kind == EP_READER && (s = log_end(b, e->stream, &e->end_seq, &jerr)) != NATS_OK) {
        j->st = cb__nats_status(s);
        snprintf(j->err, sizeof j->err, "the log's end: %s (jetstream error %d)",
                 natsStatus_GetText(s), (int)jerr);
        return;
    }
    if (e->kind == EP_READER) {
        so.Stream = e->stream;
        so.Ordered = true;
        so.Config.Heartbeat = (int64_t)READ_HEARTBEAT_MS * 1000000;
        e->first_seq = 1; /* where a probe looks before anything came */
        switch (e->ropts.from) {
        case CB_READ_FIRST:
            so.Config.DeliverPolicy = js_DeliverAll;
            break;
        case CB_READ_SEQ:
            so.Config.DeliverPolicy = js_DeliverByStartSequence;
            so.Config.OptStartSeq = e->ropts.seq;
            e->first_seq = e->ropts.seq ? e->ropts.seq : 1;
            break;
        case CB_READ_TIME:
            so.Config.DeliverPolicy = js_DeliverByStartTime;
            so.Config.OptStartTime = e->ropts.time_ns;
            break;
        case CB_READ_NEW:
            so.Config.DeliverPolicy = js_DeliverNew;
            e->first_seq = e->end_seq + 1;
            break;
        }
        /* The whole log is read with the filter ">" (the stream holds only
         * its partition), not with the stream's own wildcard: nats-server 2.9.10
         * counts a wildcard consumer's pending events over the subjects of
         * the block for each event it sends, now and then, and such a read
         * crawled (~80 events/s, the server's CPU busy) over a log where a
         * thousand jobs took turns; ">" is counted from the stream's state
         * (docs/broker.md "Reading the whole log"). */
        s = js_Subscribe(&j->sub, b->js, reader_filtered(e) ? e->subject : ">", js_msg_cb, e, NULL,
                         &so, &jerr);
    } else if (e->kind == EP_KEPT_SUB) {
        s = kept_subscribe(e, &j->sub, &jerr);
    } else { /* EP_CONSUMER */
        jsConsumerConfig cc;
        jsConsumerInfo *ci = NULL;
        const char *stream = strncmp(e->subject, "cb.invoke.", 10) == 0 ? "CB_INVOKE" : "CB_SUBMIT";
        jsConsumerConfig_Init(&cc);
        cc.Durable = e->durable;
        cc.AckPolicy = js_AckExplicit;
        cc.AckWait = e->copts.lease_ms * 1000000;
        cc.FilterSubject = e->subject;
        cc.MaxAckPending = 65536;
        cc.MaxDeliver = -1;
        cc.MaxWaiting = 512;
        cc.Replicas = 0; /* as many as the stream has: never fewer than the deployment set */
        s = js_AddConsumer(&ci, b->js, stream, &cc, NULL, &jerr);
        if (s != NATS_OK && jerr == JSConsumerNameExistErr)
            s = js_UpdateConsumer(&ci, b->js, stream, &cc, NULL, &jerr);
        jsConsumerInfo_Destroy(ci);
        if (s == NATS_OK)
            s = pull_subscribe(e, stream, &j->sub);
    }
    if (s != NATS_OK) {
        j->st = cb__nats_status(s);
        snprintf(j->err, sizeof j->err, "%s (jetstream error %d)", natsStatus_GetText(s),
                 (int)jerr);
        return;
    }
    j->st = CB_OK;
    if (e->kind == EP_CONSUMER) {
        e->pull_sub = j->sub; /* the fetcher's; e->sub is the loop's (api_job_done) */
        if (pthread_create(&e->fetcher, NULL, fetch_main, e) == 0)
            e->fetcher_started = true;
        else
            j->st = CB_ENOMEM;
        return;
    }
    ep_ref(e); /* released by sub_complete_cb */
    if (natsSubscription_SetOnCompleteCB(j->sub, sub_complete_cb, e) != NATS_OK)
        ep_unref(e);
    if (e->kind == EP_READER) {
        /* Nothing delivered yet: where the read starts, and whether the end
         * is there already (else the messages, or the idle probe, say it). */
        jsConsumerInfo *ci = NULL;
        if (natsSubscription_GetConsumerInfo(&ci, j->sub, NULL, &jerr) == NATS_OK) {
            if (ci->Delivered.Consumer == 0) {
                e->first_seq = ci->Delivered.Stream + 1;
                if (nothing_left(e, e->first_seq))
                    post_mail(e, M_CAUGHT_UP, NULL, CB_OK, false);
            }
            jsConsumerInfo_Destroy(ci);
        }
    }
}

/* The fetcher ends its open request before it stops (within FETCH_EXPIRES_MS
 * + FETCH_GRACE_MS): what the server sends for it still reaches the loop, which
 * gives it back at once. Unsubscribing first would drop those messages on the
 * floor, and the server would hold them for the whole lease. */
static void stop_fetcher(ep *e)
{
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->fetcher_started) {
        pthread_join(e->fetcher, NULL);
        e->fetcher_started = false;
    }
}

static void job_stop(api_job *j)
{
    ep *e = j->e;
    if (e->kind == EP_CONSUMER) /* its durable stays: other workers share it */
        stop_fetcher(e);
    if (j->sub) {
        natsSubscription_Unsubscribe(j->sub);
        natsSubscription_Destroy(j->sub);
    }
}

static void job_probe(api_job *j)
{
    natsStatus s = next_match(j->e->b, j->e->stream, j->e->subject, j->from, &j->found);
    j->st = s == NATS_OK ? CB_OK : cb__nats_status(s);
}

static void api_job_work(cb_offload_job *job)
{
    api_job *j = (api_job *)job;
    if (j->kind == J_SUBSCRIBE)
        job_subscribe(j);
    else if (j->kind == J_PROBE)
        job_probe(j);
    else
        job_stop(j);
}

static void submit_stop(ep *e, natsSubscription *sub);

static void api_job_done(cb_mail *mail, int cancelled)
{
    api_job *j = (api_job *)mail;
    ep *e = j->e;

    if (j->kind == J_PROBE) {
        e->probing = false;
        if (!cancelled && !e->closed && !e->finished && !e->at_end) {
            if (j->st == CB_OK && e->last_seq == j->seen && (!j->found || j->found > e->end_seq))
                reader_at_end(e); /* nothing left up to the end, and nothing came meanwhile */
            else
                arm_idle(e); /* events are on their way, or ask again */
        }
    } else if (j->kind == J_SUBSCRIBE && !cancelled) {
        if (j->st != CB_OK) {
            if (!e->b->closing)
                CB_LOG_WRN(MOD, "subscribe %s: %s", e->subject, j->err);
            if (e->kind == EP_READER && !e->closed && !e->finished)
                reader_finish(e, j->st);
        } else if (e->closed || e->b->closing) {
            if (e->b->off)
                submit_stop(e, j->sub);
            else /* closing: the connection is closed, destroying cannot block */
                natsSubscription_Destroy(j->sub);
        } else {
            e->sub = j->sub;
            if (e->kind == EP_READER && !e->at_end)
                arm_idle(e);
        }
    } else if (j->kind == J_SUBSCRIBE && j->sub) {
        natsSubscription_Destroy(j->sub);
    }
    ep_unref(e); /* the job's reference */
    cb_free(j);
}

/* A job for the helper thread, answered on the loop by api_job_done; NULL
 * when out of memory. Hand it over with cb_offload_submit. */
static api_job *job_new(ep *e, job_kind kind)
{
    api_job *j = cb_calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->job.mail.fn = api_job_done;
    j->job.work = api_job_work;
    j->kind = kind;
    j->e = e;
    ep_ref(e);
    return j;
}

static void submit_job(ep *e, job_kind kind, natsSubscription *sub)
{
    api_job *j = job_new(e, kind);
    if (!j) {
        CB_LOG_ERR(MOD, "out of memory queueing a %s job for %s",
                   kind == J_SUBSCRIBE ? "subscribe" : "stop", e->subject);
        return;
    }
    j->sub = sub;
    cb_offload_submit(e->b->off, &j->job);
}

static void submit_stop(ep *e, natsSubscription *sub)
{
    submit_job(e, J_STOP, sub);
}

/* Ask the stream whether an event the reader's filter matches lies after
 * what it delivered (answered by api_job_done). */
static void start_probe(ep *e)
{
    api_job *j = job_new(e, J_PROBE);
    if (!j) {
        arm_idle(e); /* ask again later */
        return;
    }
    j->seen = e->last_seq;
    j->from = e->last_seq ? e->last_seq + 1 : e->first_seq;
    e->probing = true;
    cb_offload_submit(e->b->off, &j->job);
}

/* ---- pull consumers -------------------------------------------------- */

/* Pull consumers speak JetStream's pull protocol over a core subscription of
 * their own: libnats 3.4's natsSubscription_Fetch can return more messages
 * than the batch it allocated for (a heap overflow under load, seen with
 * `cb bench broker`), so the fetcher asks and counts itself. One request at a
 * time: {"batch": n, "expires": ...} with the reply subject inbox.<id>; the
 * server answers with up to n messages on it, and ends a request it cannot fill
 * with a status message (404 nothing now, 408 expired, 409 ...). */
static natsStatus pull_subscribe(ep *e, const char *stream, natsSubscription **sub)
{
    char pattern[180];
    natsStatus s = cb__nats_inbox(e->b, e->inbox, sizeof e->inbox);
    if (s != NATS_OK)
        return s;
    snprintf(e->pull_subject, sizeof e->pull_subject, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream,
             e->durable);
    snprintf(pattern, sizeof pattern, "%s.*", e->inbox);
    return natsConnection_SubscribeSync(sub, e->b->nc, pattern);
}

/* The code of a status message ("404", "408", "100" for a heartbeat, ...);
 * NULL for a delivery. */
static const char *pull_status(natsMsg *msg)
{
    const char *code = NULL;
    if (natsMsg_GetDataLength(msg) > 0 || natsMsgHeader_Get(msg, "Status", &code) != NATS_OK)
        return NULL;
    return code;
}

static void fetcher_pause(ep *e, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&e->mu);
    if (!e->stop)
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    pthread_mutex_unlock(&e->mu);
}

/* One pull request: ask for n, hand what comes to the loop until n came, the
 * server ended the request, or it is overdue. Messages of an earlier, overdue
 * request are delivered too (and counted against this one). Returns false when the
 * fetcher should pause (no connection, an error status). */
static bool pull_once(ep *e, uint64_t id, int n)
{
    char reply[160], body[96];
    int got = 0;
    int64_t deadline = cb_time_mono_ns() + (int64_t)(FETCH_EXPIRES_MS + FETCH_GRACE_MS) * 1000000;

    snprintf(reply, sizeof reply, "%s.%llu", e->inbox, (unsigned long long)id);
    int len = snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld}", n,
                       (long long)FETCH_EXPIRES_MS * 1000000);
    if (natsConnection_PublishRequest(e->b->nc, e->pull_subject, reply, body, len) != NATS_OK)
        return false;
    while (got < n) {
        int64_t left_ms = (deadline - cb_time_mono_ns()) / 1000000;
        natsMsg *msg = NULL;
        const char *code;
        if (left_ms <= 0)
            return true;
        natsStatus s = natsSubscription_NextMsg(&msg, e->pull_sub, left_ms);
        if (s == NATS_TIMEOUT)
            return true;
        if (s != NATS_OK)
            return false;                /* closed or unsubscribed */
        if ((code = pull_status(msg))) { /* on the reply subject of its request */
            bool ours = strcmp(natsMsg_GetSubject(msg), reply) == 0 && strcmp(code, "100") != 0;
            bool fine = !strcmp(code, "404") || !strcmp(code, "408");
            natsMsg_Destroy(msg);
            if (ours)
                return fine;
            continue; /* a heartbeat, or the end of an earlier request */
        }
        pthread_mutex_lock(&e->mu);
        e->inflight++;
        pthread_mutex_unlock(&e->mu);
        post_mail(e, M_MSG, msg, CB_OK, false);
        got++; /* (messages keep their own subject: counted against this request) */
    }
    return true;
}

static void *fetch_main(void *arg)
{
    ep *e = arg;
    uint64_t id = 0;
    for (;;) {
        bool stop;
        int n;

        pthread_mutex_lock(&e->mu);
        while (!e->stop && e->inflight >= e->copts.max_inflight)
            pthread_cond_wait(&e->cv, &e->mu);
        n = e->copts.max_inflight - e->inflight;
        stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (stop)
            break;
        if (n > FETCH_BATCH_MAX)
            n = FETCH_BATCH_MAX;
        if (!pull_once(e, ++id, n)) /* disconnected, closing or refused: a little later */
            fetcher_pause(e, 200);
    }
    return NULL;
}

/* JetStream's acknowledgements are messages to the delivery's reply subject;
 * sent here, not with natsMsg_Ack, which needs a JetStream subscription. */
static natsStatus js_reply(ep *e, natsMsg *msg, const char *body)
{
    const char *to = natsMsg_GetReply(msg);
    if (!to || !*to)
        return NATS_INVALID_ARG;
    return natsConnection_PublishString(e->b->nc, to, body);
}

static natsStatus js_nak(ep *e, natsMsg *msg, int64_t delay_ms)
{
    char body[64];
    if (delay_ms <= 0)
        return js_reply(e, msg, "-NAK");
    snprintf(body, sizeof body, "-NAK {\"delay\":%lld}", (long long)delay_ms * 1000000);
    return js_reply(e, msg, body);
}

static void work_release_slot(ep *e)
{
    pthread_mutex_lock(&e->mu);
    e->inflight--;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

static void deliver_work(ep *e, natsMsg *msg, const cb_broker_msg *m)
{
    work *w;
    if (e->closed || !(w = cb_calloc(1, sizeof *w))) {
        js_nak(e, msg, 0); /* give it back */
        natsMsg_Destroy(msg);
        work_release_slot(e);
        return;
    }
    w->head.b = &e->b->base;
    w->e = e;
    w->msg = msg;
    w->next = e->works;
    if (e->works)
        e->works->prev = w;
    e->works = w;
    ep_ref(e);
    e->work_cb(&w->head, m, e->ctx);
}

static void work_end(work *w)
{
    ep *e = w->e;
    if (w->prev)
        w->prev->next = w->next;
    else
        e->works = w->next;
    if (w->next)
        w->next->prev = w->prev;
    natsMsg_Destroy(w->msg);
    cb_free(w);
    work_release_slot(e);
    ep_unref(e);
}

void cb__nats_work_ack(cb_work *cw)
{
    work *w = (work *)cw;
    natsStatus s = js_reply(w->e, w->msg, "+ACK");
    if (s != NATS_OK)
        CB_LOG_WRN(MOD, "ack %s: %s; the command will be redelivered", w->e->subject,
                   natsStatus_GetText(s));
    work_end(w);
}

void cb__nats_work_nak(cb_work *cw, int64_t delay_ms)
{
    work *w = (work *)cw;
    natsStatus s = js_nak(w->e, w->msg, delay_ms);
    if (s != NATS_OK)
        CB_LOG_WRN(MOD, "nak %s: %s", w->e->subject, natsStatus_GetText(s));
    work_end(w);
}

void cb__nats_work_progress(cb_work *cw)
{
    work *w = (work *)cw;
    natsStatus s = js_reply(w->e, w->msg, "+WPI");
    if (s != NATS_OK)
        CB_LOG_WRN(MOD, "in-progress %s: %s", w->e->subject, natsStatus_GetText(s));
}

/* ---- reading, subscribing, serving ----------------------------------- */

static cb_status start_ep(nb *b, ep *e, cb_reader **out_r, cb_sub **out_s, cb_consumer **out_c)
{
    (void)b;
    submit_job(e, J_SUBSCRIBE, NULL);
    if (out_r)
        *out_r = &e->h.r;
    if (out_s)
        *out_s = &e->h.s;
    if (out_c)
        *out_c = &e->h.c;
    return CB_OK;
}

cb_status cb__nats_read(cb_broker *cb, const cb_read_opts *o, cb_read_cb *fn, void *ctx,
                        cb_reader **out)
{
    nb *b = (nb *)cb;
    ep *e;
    if (b->closing)
        return CB_ECLOSED;
    if (!(e = ep_new(b, EP_READER, ctx)))
        return CB_ENOMEM;
    e->read_cb = fn;
    e->ropts = *o;
    e->ropts.filter = NULL;
    cb__nats_log_stream(o->partition, e->stream, sizeof e->stream);
    cb_partition_pattern(o->partition, ">", e->whole, sizeof e->whole);
    snprintf(e->subject, sizeof e->subject, "%s", o->filter ? o->filter : e->whole);
    if (!(e->idle = evtimer_new(b->evb, idle_cb, e))) {
        ep_unlink(e);
        ep_unref(e);
        return CB_ENOMEM;
    }
    return start_ep(b, e, out, NULL, NULL);
}

void cb__nats_close_ep(ep *e)
{
    natsSubscription *sub = e->sub;
    if (e->closed)
        return;
    e->closed = true;
    e->sub = NULL;
    if (e->idle) {
        event_free(e->idle);
        e->idle = NULL;
    }
    ep_unlink(e);
    if (e->kind == EP_CONSUMER) {
        /* Give back what the user still holds; the fetcher stops on the helper thread. */
        while (e->works)
            cb__nats_work_nak(&e->works->head, 0);
        submit_stop(e, sub);
    } else if (sub) {
        submit_stop(e, sub);
    }
    ep_unref(e); /* the user handle's reference */
}

void cb__nats_reader_close(cb_reader *r)
{
    cb__nats_close_ep((ep *)r);
}

cb_status cb__nats_subscribe(cb_broker *cb, const char *pattern, int64_t since_ns, cb_msg_cb *fn,
                             void *ctx, cb_sub **out)
{
    nb *b = (nb *)cb;
    bool kept = strncmp(pattern, "cb.done.", 8) == 0;
    ep *e;
    natsSubscription *sub = NULL;
    natsStatus s;

    (void)since_ns; /* JetStream keeps the last message per subject: nothing to bound */
    if (b->closing)
        return CB_ECLOSED;
    if (!(e = ep_new(b, kept ? EP_KEPT_SUB : EP_SUB, ctx)))
        return CB_ENOMEM;
    e->msg_cb = fn;
    snprintf(e->subject, sizeof e->subject, "%s", pattern);
    if (kept)
        return start_ep(b, e, NULL, out, NULL);
    ep_ref(e); /* the subscription's, released by sub_complete_cb */
    s = natsConnection_Subscribe(&sub, b->nc, pattern, core_msg_cb, e);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub, sub_complete_cb, e);
    if (s != NATS_OK) {
        drop_unstarted(e, sub);
        return cb__nats_status(s);
    }
    e->sub = sub;
    *out = &e->h.s;
    return CB_OK;
}

cb_status cb__nats_serve(cb_broker *cb, const char *pattern, cb_serve_cb *fn, void *ctx,
                         cb_sub **out)
{
    nb *b = (nb *)cb;
    ep *e;
    natsSubscription *sub = NULL;
    natsStatus s;

    if (b->closing)
        return CB_ECLOSED;
    if (!(e = ep_new(b, EP_SERVE, ctx)))
        return CB_ENOMEM;
    e->serve_cb = fn;
    snprintf(e->subject, sizeof e->subject, "%s", pattern);
    ep_ref(e);
    s = natsConnection_QueueSubscribe(&sub, b->nc, pattern, "cb-serve", core_msg_cb, e);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub, sub_complete_cb, e);
    if (s != NATS_OK) {
        drop_unstarted(e, sub);
        return cb__nats_status(s);
    }
    e->sub = sub;
    *out = &e->h.s;
    return CB_OK;
}

void cb__nats_sub_close(cb_sub *s)
{
    cb__nats_close_ep((ep *)s);
}

cb_status cb__nats_consume(cb_broker *cb, const char *subject, const cb_consume_opts *o,
                           cb_work_cb *fn, void *ctx, cb_consumer **out)
{
    nb *b = (nb *)cb;
    ep *e;
    if (b->closing)
        return CB_ECLOSED;
    if (!(e = ep_new(b, EP_CONSUMER, ctx)))
        return CB_ENOMEM;
    e->work_cb = fn;
    e->copts = *o;
    snprintf(e->subject, sizeof e->subject, "%s", subject);
    /* Durable names take no '.', '*' or '>': cb.invoke.local -> cb_invoke_local,
     * cb.enqueue.> -> cb_enqueue_all. */
    size_t n = 0;
    for (const char *p = subject; *p && n + 4 < sizeof e->durable; p++) {
        const char *rep = *p == '.' ? "_" : *p == '*' ? "any" : *p == '>' ? "all" : NULL;
        if (rep)
            n += (size_t)snprintf(e->durable + n, sizeof e->durable - n, "%s", rep);
        else
            e->durable[n++] = *p;
    }
    e->durable[n] = '\0';
    return start_ep(b, e, NULL, NULL, out);
}

void cb__nats_consumer_close(cb_consumer *c)
{
    cb__nats_close_ep((ep *)c);
}
