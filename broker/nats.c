/* broker/nats.c - the NATS JetStream driver (the only includer of nats.h).
 *
 * One connection attached to the caller's libevent loop with the NATS client's
 * libevent adapter: socket reads and writes happen on the loop. The client
 * still calls message handlers on its own threads; they hand messages to the
 * loop through a cb_mailbox. JetStream API calls are request/replies that wait
 * for an answer the loop must read, so they run on a helper thread
 * (cb_offload) and never on the loop. Pull consumers fetch on a thread each.
 *
 * Topology (see docs/broker.md): streams CB_EVENTS (cb.evt.>, limits, file),
 * CB_INVOKE (cb.invoke.>, work queue), CB_SUBMIT (cb.enqueue.>, work queue),
 * CB_DONE (cb.done.>, one message per subject). */
#define _GNU_SOURCE
#include <nats/nats.h>
/* The adapter is a header of function definitions, without prototypes. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <nats/adapters/libevent.h>
#pragma GCC diagnostic pop

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "broker_int.h"
#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_mailbox.h"
#include "cb_map.h"
#include "cb_offload.h"
#include "cb_time.h"

#define MOD              "nats"
#define FETCH_BATCH_MAX  256
#define FETCH_EXPIRES_MS 500
#define READ_HIGH_WATER  8192 /* mails queued before message threads wait */

typedef struct stream_def {
    const char *name;
    const char *subject;
    jsRetentionPolicy retention;
    int64_t max_per_subject;
} stream_def;

static const stream_def streams[] = {
    {"CB_EVENTS", "cb.evt.>", js_LimitsPolicy, -1},
    {"CB_INVOKE", "cb.invoke.>", js_WorkQueuePolicy, -1},
    {"CB_SUBMIT", "cb.enqueue.>", js_WorkQueuePolicy, -1},
    {"CB_DONE", "cb.done.>", js_LimitsPolicy, 1},
};

typedef enum ep_kind { EP_READER, EP_SUB, EP_KEPT_SUB, EP_SERVE, EP_CONSUMER } ep_kind;

typedef struct nb nb;
typedef struct ep ep;
typedef struct work work;

/* A reader, subscription, service or consumer. Referenced by its user handle
 * (until closed), by its NATS subscription (until its on-complete callback or
 * its stop job), and by each mail in flight. Freed at zero. */
struct ep {
    union {
        struct cb_reader r;
        struct cb_sub s;
        struct cb_consumer c;
    } h;
    ep_kind kind;
    atomic_int refs;
    nb *b;
    bool closed;           /* loop only: no more user callbacks */
    bool finished;         /* loop only: a reader delivered its final callback */
    natsSubscription *sub; /* set on the loop once subscribed */
    ep *prev, *next;       /* the broker's list of open endpoints (loop only) */
    void *ctx;
    cb_read_cb *read_cb;
    cb_msg_cb *msg_cb;
    cb_serve_cb *serve_cb;
    cb_work_cb *work_cb;
    /* creation parameters, used by the subscribe job */
    char subject[256];
    cb_read_opts ropts;
    cb_consume_opts copts;
    char durable[256];
    /* consumers */
    pthread_t fetcher;
    bool fetcher_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight; /* guarded by mu */
    bool stop;    /* guarded by mu */
    work *works;  /* outstanding, loop only */
};

struct work {
    struct cb_work head;
    ep *e;
    natsMsg *msg;
    work *prev, *next;
};

typedef struct pub_op {
    cb_mail mail;
    cb_publish_cb *cb;
    void *ctx;
    cb_status st;
    uint64_t seq;
    int dup;
} pub_op;

typedef struct req_op {
    nb *b;
    uint64_t token;
    cb_reply_cb *cb;
    void *ctx;
    struct event *timer;
} req_op;

typedef struct request {
    struct cb_request head;
    natsMsg *msg;
} request;

struct nb {
    cb_broker base;
    struct event_base *evb;
    natsConnection *nc;
    jsCtx *js;
    cb_mailbox *mb;
    cb_offload *off;
    pthread_mutex_t pub_mu;
    cb_map pubs; /* (uintptr_t)natsMsg* -> pub_op, guarded by pub_mu */
    atomic_bool connected;
    atomic_ulong reconnects;
    char server_url[256];
    natsSubscription *inbox_sub;
    char inbox[128];
    cb_map reqs; /* token -> req_op, loop only */
    uint64_t next_token;
    ep *eps;
    atomic_bool closing; /* read by client threads to keep shutdown quiet */
    /* js_PublishAsyncGetPendingList crashes before the first async publish
     * (its pending map does not exist yet): only call it after one. */
    atomic_bool published;
};

/* ---- status translation ---------------------------------------------- */

static cb_status from_nats(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return CB_OK;
    case NATS_TIMEOUT:
        return CB_ETIMEDOUT;
    case NATS_NO_MEMORY:
        return CB_ENOMEM;
    case NATS_NOT_FOUND:
        return CB_ENOTFOUND;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_IO_ERROR:
    case NATS_STALE_CONNECTION:
        return CB_ECONN;
    case NATS_NO_RESPONDERS:
        return CB_ENORESP;
    case NATS_MAX_PAYLOAD:
        return CB_ETOOBIG;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
        return CB_EINVAL;
    default:
        return CB_EBROKER;
    }
}

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
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK)
        m->msg_id = id;
}

static void reader_finish(ep *e, cb_status s)
{
    e->finished = true;
    e->read_cb(NULL, s, e->ctx);
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
        if (mm->kind == M_MSG)
            e->read_cb(&m, CB_OK, e->ctx);
        if (e->closed || e->finished)
            break;
        if (mm->kind == M_ERROR)
            reader_finish(e, mm->st);
        else if (mm->kind == M_CAUGHT_UP || mm->caught_up) {
            if (e->ropts.stop_at_end)
                reader_finish(e, CB_OK);
            else
                e->read_cb(NULL, CB_OK, e->ctx);
        }
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

typedef enum job_kind { J_SUBSCRIBE, J_STOP } job_kind;

typedef struct api_job {
    cb_offload_job job;
    job_kind kind;
    ep *e;
    natsSubscription *sub;
    cb_status st;
    char err[256];
} api_job;

static void *fetch_main(void *arg);

static void job_subscribe(api_job *j)
{
    ep *e = j->e;
    nb *b = e->b;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;

    jsSubOptions_Init(&so);
    if (e->kind == EP_READER) {
        so.Stream = "CB_EVENTS";
        so.Ordered = true;
        switch (e->ropts.from) {
        case CB_READ_FIRST:
            so.Config.DeliverPolicy = js_DeliverAll;
            break;
        case CB_READ_SEQ:
            so.Config.DeliverPolicy = js_DeliverByStartSequence;
            so.Config.OptStartSeq = e->ropts.seq;
            break;
        case CB_READ_TIME:
            so.Config.DeliverPolicy = js_DeliverByStartTime;
            so.Config.OptStartTime = e->ropts.time_ns;
            break;
        case CB_READ_NEW:
            so.Config.DeliverPolicy = js_DeliverNew;
            break;
        }
        s = js_Subscribe(&j->sub, b->js, e->subject, js_msg_cb, e, NULL, &so, &jerr);
    } else if (e->kind == EP_KEPT_SUB) {
        so.Stream = "CB_DONE";
        so.Ordered = true;
        so.Config.DeliverPolicy = js_DeliverLastPerSubject;
        s = js_Subscribe(&j->sub, b->js, e->subject, js_msg_cb, e, NULL, &so, &jerr);
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
        cc.Replicas = b->base.opts.replicas;
        s = js_AddConsumer(&ci, b->js, stream, &cc, NULL, &jerr);
        if (s != NATS_OK && jerr == JSConsumerNameExistErr)
            s = js_UpdateConsumer(&ci, b->js, stream, &cc, NULL, &jerr);
        jsConsumerInfo_Destroy(ci);
        if (s == NATS_OK) {
            so.Stream = stream;
            so.Consumer = e->durable;
            s = js_PullSubscribe(&j->sub, b->js, e->subject, e->durable, NULL, &so, &jerr);
        }
    }
    if (s != NATS_OK) {
        j->st = from_nats(s);
        snprintf(j->err, sizeof j->err, "%s (jetstream error %d)", natsStatus_GetText(s),
                 (int)jerr);
        return;
    }
    j->st = CB_OK;
    if (e->kind == EP_CONSUMER) {
        e->sub = j->sub; /* read by the fetcher, which starts below */
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
        /* Nothing pending at creation means we are at the end already. */
        jsConsumerInfo *ci = NULL;
        if (natsSubscription_GetConsumerInfo(&ci, j->sub, NULL, &jerr) == NATS_OK) {
            if (ci->NumPending == 0 && ci->Delivered.Consumer == 0)
                post_mail(e, M_CAUGHT_UP, NULL, CB_OK, false);
            jsConsumerInfo_Destroy(ci);
        }
    }
}

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
    if (e->kind == EP_CONSUMER)
        stop_fetcher(e);
    if (j->sub) {
        /* A bound durable is not deleted by unsubscribing: other workers share it. */
        if (e->kind != EP_CONSUMER || !e->b->closing)
            natsSubscription_Unsubscribe(j->sub);
        natsSubscription_Destroy(j->sub);
    }
}

static void api_job_work(cb_offload_job *job)
{
    api_job *j = (api_job *)job;
    if (j->kind == J_SUBSCRIBE)
        job_subscribe(j);
    else
        job_stop(j);
}

static void submit_stop(ep *e, natsSubscription *sub);

static void api_job_done(cb_mail *mail, int cancelled)
{
    api_job *j = (api_job *)mail;
    ep *e = j->e;

    if (j->kind == J_SUBSCRIBE && !cancelled) {
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
        }
    } else if (j->kind == J_SUBSCRIBE && j->sub) {
        natsSubscription_Destroy(j->sub);
    }
    ep_unref(e); /* the job's reference */
    cb_free(j);
}

static void submit_job(ep *e, job_kind kind, natsSubscription *sub)
{
    api_job *j = cb_calloc(1, sizeof *j);
    if (!j) {
        CB_LOG_ERR(MOD, "out of memory queueing a %s job for %s",
                   kind == J_SUBSCRIBE ? "subscribe" : "stop", e->subject);
        return;
    }
    j->job.mail.fn = api_job_done;
    j->job.work = api_job_work;
    j->kind = kind;
    j->e = e;
    j->sub = sub;
    ep_ref(e);
    cb_offload_submit(e->b->off, &j->job);
}

static void submit_stop(ep *e, natsSubscription *sub)
{
    submit_job(e, J_STOP, sub);
}

/* ---- pull consumers -------------------------------------------------- */

static void *fetch_main(void *arg)
{
    ep *e = arg;
    for (;;) {
        natsMsgList list = {0};
        jsErrCode jerr = 0;
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
        natsStatus s = natsSubscription_Fetch(&list, e->sub, n, FETCH_EXPIRES_MS, &jerr);
        if (s == NATS_OK) {
            pthread_mutex_lock(&e->mu);
            e->inflight += list.Count;
            pthread_mutex_unlock(&e->mu);
            for (int i = 0; i < list.Count; i++) {
                post_mail(e, M_MSG, list.Msgs[i], CB_OK, false);
                list.Msgs[i] = NULL;
            }
            natsMsgList_Destroy(&list);
        } else if (s != NATS_TIMEOUT) {
            /* Disconnected or closing: back off a little, stop if asked. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_mutex_lock(&e->mu);
            if (!e->stop)
                pthread_cond_timedwait(&e->cv, &e->mu, &ts);
            pthread_mutex_unlock(&e->mu);
        }
    }
    return NULL;
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
        natsMsg_Nak(msg, NULL); /* give it back */
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

static void nats_work_ack(cb_work *cw)
{
    work *w = (work *)cw;
    natsStatus s = natsMsg_Ack(w->msg, NULL);
    if (s != NATS_OK)
        CB_LOG_WRN(MOD, "ack %s: %s; the command will be redelivered", w->e->subject,
                   natsStatus_GetText(s));
    work_end(w);
}

static void nats_work_nak(cb_work *cw, int64_t delay_ms)
{
    work *w = (work *)cw;
    natsStatus s =
        delay_ms > 0 ? natsMsg_NakWithDelay(w->msg, delay_ms, NULL) : natsMsg_Nak(w->msg, NULL);
    if (s != NATS_OK)
        CB_LOG_WRN(MOD, "nak %s: %s", w->e->subject, natsStatus_GetText(s));
    work_end(w);
}

static void nats_work_progress(cb_work *cw)
{
    work *w = (work *)cw;
    natsStatus s = natsMsg_InProgress(w->msg, NULL);
    if (s != NATS_OK)
        CB_LOG_WRN(MOD, "in-progress %s: %s", w->e->subject, natsStatus_GetText(s));
}

/* ---- publishing ------------------------------------------------------ */

static void pub_mail_fn(cb_mail *mail, int cancelled)
{
    pub_op *op = (pub_op *)mail;
    if (!cancelled)
        op->cb(op->st, op->seq, op->dup, op->ctx);
    cb_free(op);
}

static void pub_ack_cb(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    nb *b = closure;
    pub_op *op;

    (void)js;
    pthread_mutex_lock(&b->pub_mu);
    op = cb_map_take(&b->pubs, (uintptr_t)msg);
    pthread_mutex_unlock(&b->pub_mu);
    natsMsg_Destroy(msg); /* the handler owns the published message */
    if (!op)
        return;
    if (pae) {
        op->st = from_nats(pae->Err);
        if (pae->ErrCode)
            op->st = CB_EBROKER;
        CB_LOG_DBG(MOD, "append not confirmed: %s", pae->ErrText ? pae->ErrText : "");
    } else if (pa) {
        op->st = CB_OK;
        op->seq = pa->Sequence;
        op->dup = pa->Duplicate;
    } else {
        op->st = CB_EPROTO;
    }
    cb_mailbox_post(b->mb, &op->mail);
}

static cb_status nats_publish(cb_broker *cb, cb__pub_kind kind, const char *subject,
                              const char *msg_id, const void *data, size_t len, cb_publish_cb *fn,
                              void *ctx)
{
    nb *b = (nb *)cb;
    natsMsg *msg = NULL;
    natsStatus s;
    jsPubOptions po;
    pub_op *op;
    uintptr_t key;

    if (b->closing)
        return CB_ECLOSED;
    if (kind == CB__PUB_EPHEMERAL) {
        s = natsConnection_Publish(b->nc, subject, data, (int)len);
        if (s != NATS_OK)
            return from_nats(s);
        if (fn) {
            op = cb_calloc(1, sizeof *op);
            if (!op)
                return CB_ENOMEM;
            op->mail.fn = pub_mail_fn;
            op->cb = fn;
            op->ctx = ctx;
            cb_mailbox_post(b->mb, &op->mail); /* "written", reported on a later turn */
        }
        return CB_OK;
    }
    op = cb_calloc(1, sizeof *op);
    if (!op)
        return CB_ENOMEM;
    op->mail.fn = pub_mail_fn;
    op->cb = fn;
    op->ctx = ctx;
    s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    if (s != NATS_OK) {
        cb_free(op);
        return from_nats(s);
    }
    key = (uintptr_t)msg;
    pthread_mutex_lock(&b->pub_mu);
    cb_status st = cb_map_put(&b->pubs, key, op);
    pthread_mutex_unlock(&b->pub_mu);
    if (st != CB_OK) {
        natsMsg_Destroy(msg);
        cb_free(op);
        return st;
    }
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = b->base.opts.op_timeout_ms;
    atomic_store(&b->published, true);
    s = js_PublishMsgAsync(b->js, &msg, &po);
    if (s != NATS_OK) {
        pthread_mutex_lock(&b->pub_mu);
        op = cb_map_take(&b->pubs, key);
        pthread_mutex_unlock(&b->pub_mu);
        natsMsg_Destroy(msg);
        cb_free(op);
        return from_nats(s);
    }
    return CB_OK;
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

static cb_status nats_read(cb_broker *cb, const cb_read_opts *o, cb_read_cb *fn, void *ctx,
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
    snprintf(e->subject, sizeof e->subject, "%s", o->filter ? o->filter : "cb.evt.>");
    return start_ep(b, e, out, NULL, NULL);
}

static void close_ep(ep *e)
{
    natsSubscription *sub = e->sub;
    if (e->closed)
        return;
    e->closed = true;
    e->sub = NULL;
    ep_unlink(e);
    if (e->kind == EP_CONSUMER) {
        /* Give back what the user still holds; the fetcher stops on the helper thread. */
        while (e->works)
            nats_work_nak(&e->works->head, 0);
        submit_stop(e, sub);
    } else if (sub) {
        submit_stop(e, sub);
    }
    ep_unref(e); /* the user handle's reference */
}

static void nats_reader_close(cb_reader *r)
{
    close_ep((ep *)r);
}

static cb_status nats_subscribe(cb_broker *cb, const char *pattern, int64_t since_ns, cb_msg_cb *fn,
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
        natsSubscription_Destroy(sub);
        ep_unlink(e);
        ep_unref(e);
        ep_unref(e);
        return from_nats(s);
    }
    e->sub = sub;
    *out = &e->h.s;
    return CB_OK;
}

static cb_status nats_serve(cb_broker *cb, const char *pattern, cb_serve_cb *fn, void *ctx,
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
        natsSubscription_Destroy(sub);
        ep_unlink(e);
        ep_unref(e);
        ep_unref(e);
        return from_nats(s);
    }
    e->sub = sub;
    *out = &e->h.s;
    return CB_OK;
}

static void nats_sub_close(cb_sub *s)
{
    close_ep((ep *)s);
}

static cb_status nats_consume(cb_broker *cb, const char *subject, const cb_consume_opts *o,
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
    /* Durable names cannot contain '.': cb.invoke.local -> cb_invoke_local. */
    snprintf(e->durable, sizeof e->durable, "%s", subject);
    for (char *p = e->durable; *p; p++)
        if (*p == '.')
            *p = '_';
    return start_ep(b, e, NULL, NULL, out);
}

static void nats_consumer_close(cb_consumer *c)
{
    close_ep((ep *)c);
}

/* ---- requests -------------------------------------------------------- */

static void req_finish(req_op *r, cb_status s, const void *data, size_t len)
{
    if (r->timer)
        event_free(r->timer);
    r->cb(s, data, len, r->ctx);
    cb_free(r);
}

static void req_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    req_op *r = arg;
    (void)fd;
    (void)what;
    cb_map_take(&r->b->reqs, r->token);
    req_finish(r, CB_ETIMEDOUT, NULL, 0);
}

typedef struct reply_mail {
    cb_mail mail;
    nb *b;
    natsMsg *msg;
} reply_mail;

static void reply_mail_fn(cb_mail *mail, int cancelled)
{
    reply_mail *rm = (reply_mail *)mail;
    const char *subj = natsMsg_GetSubject(rm->msg);
    const char *dot = strrchr(subj, '.');
    req_op *r;

    if (!cancelled && dot && (r = cb_map_take(&rm->b->reqs, strtoull(dot + 1, NULL, 10)))) {
        if (natsMsg_IsNoResponders(rm->msg))
            req_finish(r, CB_ENORESP, NULL, 0);
        else
            req_finish(r, CB_OK, natsMsg_GetData(rm->msg), (size_t)natsMsg_GetDataLength(rm->msg));
    }
    natsMsg_Destroy(rm->msg);
    cb_free(rm);
}

static void inbox_msg_cb(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    nb *b = closure;
    reply_mail *rm = cb_calloc(1, sizeof *rm);
    (void)nc;
    (void)sub;
    if (!rm) {
        natsMsg_Destroy(msg); /* the request will time out */
        return;
    }
    rm->mail.fn = reply_mail_fn;
    rm->b = b;
    rm->msg = msg;
    cb_mailbox_post(b->mb, &rm->mail);
}

static cb_status nats_request(cb_broker *cb, const char *subject, const void *data, size_t len,
                              int64_t timeout_ms, cb_reply_cb *fn, void *ctx)
{
    nb *b = (nb *)cb;
    char reply[160];
    req_op *r;
    natsStatus s;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};

    if (b->closing)
        return CB_ECLOSED;
    if (!b->inbox_sub) {
        natsInbox *inbox = NULL;
        char pattern[160];
        if ((s = natsInbox_Create(&inbox)) != NATS_OK)
            return from_nats(s);
        snprintf(b->inbox, sizeof b->inbox, "%s", (const char *)inbox);
        natsInbox_Destroy(inbox);
        snprintf(pattern, sizeof pattern, "%s.*", b->inbox);
        s = natsConnection_Subscribe(&b->inbox_sub, b->nc, pattern, inbox_msg_cb, b);
        if (s != NATS_OK) {
            b->inbox_sub = NULL;
            return from_nats(s);
        }
    }
    if (!(r = cb_calloc(1, sizeof *r)))
        return CB_ENOMEM;
    r->b = b;
    r->token = ++b->next_token;
    r->cb = fn;
    r->ctx = ctx;
    r->timer = evtimer_new(b->evb, req_timeout_cb, r);
    if (!r->timer || cb_map_put(&b->reqs, r->token, r) != CB_OK) {
        if (r->timer)
            event_free(r->timer);
        cb_free(r);
        return CB_ENOMEM;
    }
    snprintf(reply, sizeof reply, "%s.%llu", b->inbox, (unsigned long long)r->token);
    s = natsConnection_PublishRequest(b->nc, subject, reply, data, (int)len);
    if (s != NATS_OK) {
        cb_map_take(&b->reqs, r->token);
        event_free(r->timer);
        cb_free(r);
        return from_nats(s);
    }
    evtimer_add(r->timer, &tv);
    return CB_OK;
}

static cb_status nats_respond(cb_request *creq, const void *data, size_t len)
{
    request *rq = (request *)creq;
    nb *b = (nb *)creq->b;
    const char *reply = natsMsg_GetReply(rq->msg);
    natsStatus s = NATS_OK;

    if (b->closing)
        s = NATS_CONNECTION_CLOSED;
    else if (reply && *reply)
        s = natsConnection_Publish(b->nc, reply, data, (int)len);
    natsMsg_Destroy(rq->msg);
    cb_free(rq);
    return from_nats(s);
}

static void nats_request_drop(cb_request *creq)
{
    request *rq = (request *)creq;
    natsMsg_Destroy(rq->msg);
    cb_free(rq);
}

/* ---- connection ------------------------------------------------------ */

static void disconnected_cb(natsConnection *nc, void *closure)
{
    nb *b = closure;
    (void)nc;
    if (atomic_exchange(&b->connected, false) && !atomic_load(&b->closing))
        CB_LOG_WRN(MOD, "disconnected from %s; reconnecting", b->server_url);
}

/* Publishes written before a disconnect may never be answered: send them again
 * with the same de-duplication id (the stream stores each once). Any thread. */
static int resend_pending(nb *b)
{
    natsMsgList list = {0};
    jsPubOptions po;
    int n = 0;

    if (!atomic_load(&b->published) || js_PublishAsyncGetPendingList(&list, b->js) != NATS_OK)
        return 0;
    jsPubOptions_Init(&po);
    po.MaxWait = b->base.opts.op_timeout_ms;
    for (int i = 0; i < list.Count; i++) {
        natsMsg *msg = list.Msgs[i];
        uintptr_t key = (uintptr_t)msg;
        list.Msgs[i] = NULL;
        natsStatus s = js_PublishMsgAsync(b->js, &msg, &po);
        if (s == NATS_OK) {
            n++;
            continue;
        }
        pthread_mutex_lock(&b->pub_mu);
        pub_op *op = cb_map_take(&b->pubs, key);
        pthread_mutex_unlock(&b->pub_mu);
        natsMsg_Destroy(msg);
        if (op) {
            op->st = from_nats(s);
            cb_mailbox_post(b->mb, &op->mail);
        }
    }
    natsMsgList_Destroy(&list);
    return n;
}

static void reconnected_cb(natsConnection *nc, void *closure)
{
    nb *b = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    atomic_store(&b->connected, true);
    atomic_fetch_add(&b->reconnects, 1);
    CB_LOG_INF(MOD, "reconnected to %s; re-sending %d unconfirmed publishes", url,
               resend_pending(b));
}

static void setup_streams_work(cb_offload_job *job);

typedef struct setup_job {
    cb_offload_job job;
    nb *b;
    cb_status st;
    char err[256];
    bool done;
} setup_job;

static void setup_streams_work(cb_offload_job *job)
{
    setup_job *j = (setup_job *)job;
    nb *b = j->b;
    int64_t dupe_ns = b->base.opts.dedup_window_ms * 1000000;

    j->st = CB_OK;
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        jsStreamConfig sc;
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        const char *subjects[1] = {streams[i].subject};
        natsStatus s;

        jsStreamConfig_Init(&sc);
        sc.Name = streams[i].name;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Retention = streams[i].retention;
        sc.Storage = js_FileStorage;
        sc.Replicas = b->base.opts.replicas;
        sc.Duplicates = dupe_ns;
        sc.MaxMsgsPerSubject = streams[i].max_per_subject;
        sc.MaxMsgSize = (int32_t)b->base.opts.max_msg_bytes;
        s = js_GetStreamInfo(&si, b->js, streams[i].name, NULL, &jerr);
        if (s == NATS_OK) {
            jsStreamInfo_Destroy(si);
            si = NULL;
            s = js_UpdateStream(&si, b->js, &sc, NULL, &jerr);
        } else if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
            s = js_AddStream(&si, b->js, &sc, NULL, &jerr);
        }
        jsStreamInfo_Destroy(si);
        if (s != NATS_OK) {
            j->st = s == NATS_TIMEOUT ? CB_ETIMEDOUT : CB_EBROKER;
            snprintf(j->err, sizeof j->err, "stream %s: %s (jetstream error %d)", streams[i].name,
                     natsStatus_GetText(s), (int)jerr);
            return;
        }
    }
}

static void setup_done(cb_mail *mail, int cancelled)
{
    setup_job *j = (setup_job *)mail;
    if (cancelled)
        j->st = CB_ECLOSED;
    j->done = true; /* the job is owned by nats_open's stack frame */
}

static void drop_pub(uint64_t key, void *val, void *arg)
{
    pub_op *op = val;
    (void)key;
    (void)arg;
    op->cb(CB_ECLOSED, 0, 0, op->ctx);
    cb_free(op);
}

static void drop_req(uint64_t key, void *val, void *arg)
{
    (void)key;
    (void)arg;
    req_finish(val, CB_ECLOSED, NULL, 0);
}

static void nats_close(cb_broker *cb)
{
    nb *b = (nb *)cb;
    cb_map pubs;

    b->closing = true;
    /* Reader/subscription/consumer handles the user did not close. */
    while (b->eps)
        close_ep(b->eps);
    /* Close the connection before joining the helper: a JetStream API call in
     * progress there waits for a reply only this (now busy) loop could read;
     * with the connection closed it fails at once instead. */
    if (b->nc)
        natsConnection_Close(b->nc); /* ends message threads; completes subscriptions */
    cb_offload_destroy(b->off);
    b->off = NULL;
    if (b->inbox_sub)
        natsSubscription_Destroy(b->inbox_sub);
    /* Settle what the threads handed over, then fail what is still pending. */
    cb_mailbox_drain(b->mb);
    pthread_mutex_lock(&b->pub_mu);
    pubs = b->pubs;
    cb_map_init(&b->pubs);
    pthread_mutex_unlock(&b->pub_mu);
    cb_map_each(&pubs, drop_pub, NULL);
    cb_map_cleanup(&pubs);
    cb_map_each(&b->reqs, drop_req, NULL);
    cb_map_cleanup(&b->reqs);
    {
        natsMsgList pending = {0}; /* never answered: the library leaves them to us */
        if (atomic_load(&b->published) && js_PublishAsyncGetPendingList(&pending, b->js) == NATS_OK)
            natsMsgList_Destroy(&pending);
    }
    jsCtx_Destroy(b->js);
    natsConnection_Destroy(b->nc);
    cb_mailbox_close(b->mb);
    pthread_mutex_destroy(&b->pub_mu);
    cb__broker_base_cleanup(&b->base);
    cb_free(b);
}

static json_t *nats_health(cb_broker *cb)
{
    nb *b = (nb *)cb;
    int r = (int)b->base.opts.replicas;
    return json_pack(
        "{s:s, s:b, s:I, s:s, s:{s:s, s:s, s:i, s:s}}", "driver", "nats", "connected",
        atomic_load(&b->connected), "reconnects", (json_int_t)atomic_load(&b->reconnects), "server",
        b->server_url, "durability", "storage", "file", "fsync",
        "none before acknowledging (nats-server 2.9 has no sync_interval)", "replicas", r, "note",
        r >= 3 ? "an acknowledged event is on a quorum of replicas"
               : "an acknowledged event survives a killed server process, not a power loss of "
                 "this node; use replicas=3 on a cluster for that");
}

static cb_status nats_open(struct event_base *base, const cb_broker_opts *o, cb_broker **out)
{
    nb *b = cb_calloc(1, sizeof *b);
    natsOptions *no = NULL;
    jsOptions jo;
    natsStatus s;
    cb_status st = CB_ENOMEM;
    char *urls = NULL, *save = NULL;
    const char *servers[16];
    int nservers = 0;
    setup_job setup;
    int64_t deadline;

    if (!b)
        return CB_ENOMEM;
    if (cb__broker_base_init(&b->base, &cb__nats_vt, o) != CB_OK)
        goto out_free_b;
    b->evb = base;
    pthread_mutex_init(&b->pub_mu, NULL);
    cb_map_init(&b->pubs);
    cb_map_init(&b->reqs);
    if (cb_mailbox_create(base, READ_HIGH_WATER, &b->mb) != CB_OK)
        goto out_free_base;
    if (cb_offload_create(b->mb, &b->off) != CB_OK)
        goto out_close_mb;
    if (!(urls = cb_strdup(o->url)))
        goto out_stop_off;
    for (char *tok = strtok_r(urls, ",", &save); tok && nservers < 16;
         tok = strtok_r(NULL, ",", &save))
        servers[nservers++] = tok;
    st = CB_EINVAL;
    natsLibevent_Init();
    if (natsOptions_Create(&no) != NATS_OK)
        goto out_free_urls;
    s = natsOptions_SetServers(no, servers, nservers);
    if (s == NATS_OK)
        s = natsOptions_SetName(no, o->name ? o->name : "cbcore");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(no, o->connect_timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(no, -1); /* forever: callers bound their own waits */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, 100);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(no, 64 * 1024 * 1024);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(no, disconnected_cb, b);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(no, reconnected_cb, b);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(no, base, natsLibevent_Attach, natsLibevent_Read,
                                     natsLibevent_Write, natsLibevent_Detach);
    if (s != NATS_OK)
        goto out_free_opts;
    s = natsConnection_Connect(&b->nc, no);
    if (s != NATS_OK) {
        CB_LOG_ERR(MOD, "connect %s: %s", o->url, natsStatus_GetText(s));
        st = CB_ECONN;
        goto out_free_opts;
    }
    atomic_store(&b->connected, true);
    natsConnection_GetConnectedUrl(b->nc, b->server_url, sizeof b->server_url);
    jsOptions_Init(&jo);
    jo.Wait = o->op_timeout_ms;
    jo.PublishAsync.AckHandler = pub_ack_cb;
    jo.PublishAsync.AckHandlerClosure = b;
    if (natsConnection_JetStream(&b->js, b->nc, &jo) != NATS_OK) {
        st = CB_ENOMEM;
        goto out_close_nc;
    }
    /* Stream set-up waits on replies the loop reads: run it on the helper
     * thread and turn the loop here until it is done. */
    memset(&setup, 0, sizeof setup);
    setup.job.mail.fn = setup_done;
    setup.job.work = setup_streams_work;
    setup.b = b;
    cb_offload_submit(b->off, &setup.job);
    deadline = cb_time_mono_ns() + (o->connect_timeout_ms + o->op_timeout_ms) * 1000000;
    while (!setup.done && cb_time_mono_ns() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    if (!setup.done || setup.st != CB_OK) {
        CB_LOG_ERR(MOD, "set up streams on %s: %s", b->server_url,
                   setup.done ? setup.err : "timed out");
        st = setup.done ? setup.st : CB_ETIMEDOUT;
        goto out_close_nc;
    }
    natsOptions_Destroy(no);
    cb_free(urls);
    {
        json_t *h = nats_health(&b->base);
        char *hs = json_dumps(h, JSON_COMPACT);
        CB_LOG_INF(MOD, "connected to %s; durability %s", b->server_url, hs ? hs : "?");
        free(hs);
        json_decref(h);
    }
    *out = &b->base;
    return CB_OK;

out_close_nc:
    if (!setup.done && setup.b) {
        /* The job still references the stack: wait for the helper to finish it. */
        cb_offload_destroy(b->off);
        b->off = NULL;
    }
    natsConnection_Close(b->nc);
    jsCtx_Destroy(b->js);
    natsConnection_Destroy(b->nc);
out_free_opts:
    natsOptions_Destroy(no);
out_free_urls:
    cb_free(urls);
out_stop_off:
    cb_offload_destroy(b->off);
out_close_mb:
    cb_mailbox_close(b->mb);
out_free_base:
    cb__broker_base_cleanup(&b->base);
    pthread_mutex_destroy(&b->pub_mu);
out_free_b:
    cb_free(b);
    return st;
}

const cb__broker_vt cb__nats_vt = {
    .name = "nats",
    .append_has_seq = 1,
    .open = nats_open,
    .close = nats_close,
    .health = nats_health,
    .publish = nats_publish,
    .read = nats_read,
    .reader_close = nats_reader_close,
    .consume = nats_consume,
    .consumer_close = nats_consumer_close,
    .work_ack = nats_work_ack,
    .work_nak = nats_work_nak,
    .work_progress = nats_work_progress,
    .subscribe = nats_subscribe,
    .serve = nats_serve,
    .sub_close = nats_sub_close,
    .request = nats_request,
    .respond = nats_respond,
    .request_drop = nats_request_drop,
};
