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
#include <ctype.h>
#include <nats/nats.h>
/* The adapter is a header of function definitions, without prototypes:
 * included here only. */
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

#include "cb_url.h"
#include "cb_json.h"
#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_partition.h"
#include "cb_time.h"
#include "nats_int.h"

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

/* ---- status translation ---------------------------------------------- */

cb_status cb__nats_status(natsStatus s)
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

natsStatus cb__nats_inbox(nb *b, char *out, size_t size)
{
    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox); /* "_INBOX.<nuid>" */
    if (s != NATS_OK)
        return s;
    if ((size_t)snprintf(out, size, "%s.%s", b->inbox_prefix, strrchr(inbox, '.') + 1) >= size)
        s = NATS_INSUFFICIENT_BUFFER;
    natsInbox_Destroy(inbox);
    return s;
}

/* The user of the first URL of a list ("nats://user[:pass]@host,...") into
 * out when it is a plain name ([A-Za-z0-9_-]: a subject token); else "". */
static void url_user(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://"), *end, *at;
    size_t n = 0;
    out[0] = '\0';
    if (!p)
        return;
    p += 3;
    end = p + strcspn(p, ",/");
    at = memchr(p, '@', (size_t)(end - p));
    if (!at)
        return;
    for (const char *c = p; c < at && *c != ':'; c++, n++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
            return;
    if (n > 0 && n < size)
        snprintf(out, size, "%.*s", (int)n, p);
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
        op->st = cb__nats_status(pae->Err);
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
            return cb__nats_status(s);
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
        return cb__nats_status(s);
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
        return cb__nats_status(s);
    }
    return CB_OK;
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
        char pattern[160];
        if ((s = cb__nats_inbox(b, b->inbox, sizeof b->inbox)) != NATS_OK)
            return cb__nats_status(s);
        snprintf(pattern, sizeof pattern, "%s.*", b->inbox);
        s = natsConnection_Subscribe(&b->inbox_sub, b->nc, pattern, inbox_msg_cb, b);
        if (s != NATS_OK) {
            b->inbox_sub = NULL;
            return cb__nats_status(s);
        }
    }
    if (!(r = cb_calloc(1, sizeof *r)))
        return CB_ENOMEM;
    r->b = b;
    r->token = ++b->next_token;
    snprintf(r->subject, sizeof r->subject, "%s", subject);
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
        return cb__nats_status(s);
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
    return cb__nats_status(s);
}

static void nats_request_drop(cb_request *creq)
{
    request *rq = (request *)creq;
    natsMsg_Destroy(rq->msg);
    cb_free(rq);
}

/* ---- what the broker denies ---------------------------------------------- */

typedef struct denied_mail {
    cb_mail mail;
    nb *b;
    char text[512];
} denied_mail;

typedef struct denied_match {
    const char *subject;
    req_op *found;
} denied_match;

static void find_req(uint64_t key, void *val, void *arg)
{
    denied_match *m = arg;
    req_op *r = val;
    (void)key;
    if (!m->found && !strcmp(r->subject, m->subject))
        m->found = r;
}

/* On the loop: say what was denied, and fail at once the requests to that
 * subject (they would wait for their timeout: the server drops a denied
 * message and tells only the sender). */
static void denied_mail_fn(cb_mail *mail, int cancelled)
{
    denied_mail *dm = (denied_mail *)mail;
    nb *b = dm->b;
    char subject[256];
    const char *q = strstr(dm->text, "Publish to \"");
    if (!cancelled) {
        CB_LOG_ERR(MOD, "the broker refused: %s", dm->text);
        if (q && sscanf(q + 12, "%255[^\"]", subject) == 1) {
            denied_match m = {subject, NULL};
            for (;;) {
                m.found = NULL;
                cb_map_each(&b->reqs, find_req, &m);
                if (!m.found)
                    break;
                cb_map_take(&b->reqs, m.found->token);
                req_finish(m.found, CB_EDENIED, NULL, 0);
            }
        }
    }
    cb_free(dm);
}

/* The client's thread: an asynchronous error of the server ("-ERR"). */
static void error_cb(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    nb *b = closure;
    denied_mail *dm;
    const char *text = NULL;
    (void)sub;
    if (err != NATS_NOT_PERMITTED || atomic_load(&b->closing) || !(dm = cb_calloc(1, sizeof *dm)))
        return;
    natsConnection_GetLastError(nc, &text);
    snprintf(dm->text, sizeof dm->text, "%s", text && *text ? text : "permissions violation");
    dm->mail.fn = denied_mail_fn;
    dm->b = b;
    cb_mailbox_post(b->mb, &dm->mail);
}

/* ---- connection ------------------------------------------------------ */

static void disconnected_cb(natsConnection *nc, void *closure)
{
    nb *b = closure;
    (void)nc;
    if (atomic_exchange(&b->connected, false) && !atomic_load(&b->closing))
        CB_LOG_WRN(MOD, "disconnected from %s; reconnecting", b->server_url);
}

static void closed_cb(natsConnection *nc, void *closure)
{
    nb *b = closure;
    (void)nc;
    pthread_mutex_lock(&b->close_mu);
    b->closed_seen = true;
    pthread_cond_signal(&b->close_cv);
    pthread_mutex_unlock(&b->close_mu);
}

/* After natsConnection_Close: wait (at most 5 s) until the library has run
 * its last callback for the connection, so none runs on freed memory. */
static void wait_closed(nb *b)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&b->close_mu);
    while (!b->closed_seen)
        if (pthread_cond_timedwait(&b->close_cv, &b->close_mu, &until) != 0)
            break;
    pthread_mutex_unlock(&b->close_mu);
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
            op->st = cb__nats_status(s);
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

/* Whether the stream already has the settings we would write: then a
 * client's connect changes nothing on the servers (on a cluster, an update
 * is a replicated write through the meta leader). */
static bool same_settings(const jsStreamConfig *have, const jsStreamConfig *want)
{
    return have && have->Replicas == want->Replicas && have->Duplicates == want->Duplicates &&
           have->MaxMsgsPerSubject == want->MaxMsgsPerSubject &&
           have->MaxMsgSize == want->MaxMsgSize && have->Retention == want->Retention &&
           have->Storage == want->Storage && have->SubjectsLen == 1 && have->Subjects &&
           !strcmp(have->Subjects[0], want->Subjects[0]);
}

/* Keep the fewest replicas (configured) and peers (placed and current: the
 * leader and the followers that are caught up; during an election a list
 * can name the leader twice, so it is counted once) over the streams. */
static void note_stream(nb *b, const jsStreamInfo *si)
{
    int replicas = si->Config ? (int)si->Config->Replicas : 1;
    int peers = 1;
    for (int i = 0; si->Cluster && i < si->Cluster->ReplicasLen; i++) {
        const jsPeerInfo *p = si->Cluster->Replicas[i];
        if (p && p->Current && !p->Offline &&
            !(si->Cluster->Leader && p->Name && !strcmp(p->Name, si->Cluster->Leader)))
            peers++;
    }
    if (b->stream_replicas == 0 || replicas < b->stream_replicas)
        b->stream_replicas = replicas;
    if (b->stream_peers == 0 || peers < b->stream_peers)
        b->stream_peers = peers;
}

/* Make stream `name` over `subject` with the deployment's settings, or
 * bring an existing one to them (never lowering its replicas). 0, or -1
 * with j->st and j->err set. */
static int ensure_stream(setup_job *j, const char *name, const char *subject,
                         jsRetentionPolicy retention, int64_t max_per_subject)
{
    nb *b = j->b;
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[1] = {subject};
    natsStatus s;

    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Retention = retention;
    sc.Storage = js_FileStorage;
    sc.Replicas = b->base.opts.replicas;
    sc.Duplicates = b->base.opts.dedup_window_ms * 1000000;
    sc.MaxMsgsPerSubject = max_per_subject;
    sc.MaxMsgSize = (int32_t)b->base.opts.max_msg_bytes;
    s = js_GetStreamInfo(&si, b->js, name, NULL, &jerr);
    if (s == NATS_OK) {
        /* Never lower what a deployment set: a process started with
         * fewer replicas (the default 1) keeps the stream's. */
        int64_t have = si->Config ? si->Config->Replicas : 1;
        if (have > sc.Replicas) {
            CB_LOG_WRN(MOD, "stream %s has %lld replicas, more than the %lld asked for: kept", name,
                       (long long)have, (long long)sc.Replicas);
            sc.Replicas = have;
        }
        if (!same_settings(si->Config, &sc)) { /* else nothing to write */
            jsStreamInfo_Destroy(si);
            si = NULL;
            s = js_UpdateStream(&si, b->js, &sc, NULL, &jerr);
        }
    } else if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        s = js_AddStream(&si, b->js, &sc, NULL, &jerr);
    }
    if (s == NATS_OK && si) /* what the server holds now */
        note_stream(b, si);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK)
        return 0;
    j->st = s == NATS_TIMEOUT ? CB_ETIMEDOUT : CB_EBROKER;
    snprintf(j->err, sizeof j->err, "stream %s: %s (jetstream error %d)", name,
             natsStatus_GetText(s), (int)jerr);
    return -1;
}

static void setup_streams_work(cb_offload_job *job)
{
    setup_job *j = (setup_job *)job;
    nb *b = j->b;
    int parts = b->base.opts.partitions;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    char name[32], subject[32];

    j->st = CB_OK;
    b->stream_replicas = b->stream_peers = 0;
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++)
        if (ensure_stream(j, streams[i].name, streams[i].subject, streams[i].retention,
                          streams[i].max_per_subject) != 0)
            return;
    for (int k = 1; k < parts; k++) { /* the log of each partition but 0's */
        cb__nats_log_stream((unsigned)k, name, sizeof name);
        cb_partition_pattern((unsigned)k, ">", subject, sizeof subject);
        if (ensure_stream(j, name, subject, js_LimitsPolicy, -1) != 0)
            return;
    }
    /* A partition beyond this process's count: P was lowered, or this
     * process has not been given the deployment's configuration. */
    cb__nats_log_stream((unsigned)parts, name, sizeof name);
    if (parts < CB_PARTITIONS_MAX && js_GetStreamInfo(&si, b->js, name, NULL, &jerr) == NATS_OK)
        CB_LOG_WRN(MOD,
                   "stream %s exists: the log has more partitions than the %d this process was "
                   "given (\"broker\": {\"partitions\"} in its configuration); their jobs are "
                   "not read here",
                   name, parts);
    jsStreamInfo_Destroy(si);
}

void cb__nats_log_stream(unsigned partition, char *buf, size_t size)
{
    if (partition)
        snprintf(buf, size, "CB_EVENTS_%u", partition);
    else
        snprintf(buf, size, "CB_EVENTS");
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
        cb__nats_close_ep(b->eps);
    /* Close the connection before joining the helper: a JetStream API call in
     * progress there waits for a reply only this (now busy) loop could read;
     * with the connection closed it fails at once instead. */
    if (b->nc) {
        natsConnection_Close(b->nc); /* ends message threads; completes subscriptions */
        wait_closed(b);
    }
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
    pthread_mutex_destroy(&b->close_mu);
    pthread_cond_destroy(&b->close_cv);
    cb__broker_base_cleanup(&b->base);
    cb_free(b);
}

static json_t *nats_health(cb_broker *cb)
{
    nb *b = (nb *)cb;
    int r = b->stream_replicas > 0 ? b->stream_replicas : (int)b->base.opts.replicas;
    return json_pack(
        "{s:s, s:b, s:I, s:s, s:{s:s, s:s, s:i, s:i, s:s}}", "driver", "nats", "connected",
        atomic_load(&b->connected), "reconnects", (json_int_t)atomic_load(&b->reconnects), "server",
        b->server_url, "durability", "storage", "file", "fsync",
        "none before acknowledging (nats-server 2.9 has no sync_interval)", "replicas", r, "peers",
        b->stream_peers, "note",
        r >= 3 ? "an acknowledged event is on a quorum of replicas (read from the server)"
               : "an acknowledged event can be lost: it survives a killed server process, not a "
                 "power loss of this node (R1, no fsync); use replicas=3 on a cluster for that");
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
    pthread_mutex_init(&b->close_mu, NULL);
    pthread_cond_init(&b->close_cv, NULL);
    cb_map_init(&b->pubs);
    cb_map_init(&b->reqs);
    if (cb_mailbox_create(base, READ_HIGH_WATER, &b->mb) != CB_OK)
        goto out_free_base;
    if (cb_offload_create(b->mb, &b->off) != CB_OK)
        goto out_close_mb;
    if (!(urls = cb_strdup(o->url)))
        goto out_stop_off;
    {
        char user[64];
        url_user(o->url, user, sizeof user);
        snprintf(b->inbox_prefix, sizeof b->inbox_prefix, "_INBOX%s%s", *user ? "." : "", user);
    }
    for (char *tok = strtok_r(urls, ",", &save); tok && nservers < 16;
         tok = strtok_r(NULL, ",", &save))
        servers[nservers++] = tok;
    st = CB_EINVAL;
    natsLibevent_Init();
    if (natsOptions_Create(&no) != NATS_OK)
        goto out_free_urls;
    s = natsOptions_SetServers(no, servers, nservers);
    if (s == NATS_OK && !strncmp(o->url, "tls://", 6)) {
        /* the server's certificate is verified, and its name against the
         * URL's host */
        char host[256];
        const char *h = strrchr(servers[0], '@') ? strrchr(servers[0], '@') + 1 : servers[0] + 6;
        snprintf(host, sizeof host, "%.*s", (int)strcspn(h, ":/"), h);
        s = natsOptions_SetSecure(no, true);
        if (s == NATS_OK && o->ca_file)
            s = natsOptions_LoadCATrustedCertificates(no, o->ca_file);
        if (s == NATS_OK)
            s = natsOptions_SetExpectedHostname(no, host);
        if (s != NATS_OK)
            CB_LOG_ERR(MOD, "TLS: %s (CA file %s)", nats_GetLastError(NULL),
                       o->ca_file ? o->ca_file : "none: the system's");
    }
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
        s = natsOptions_SetClosedCB(no, closed_cb, b);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(no, error_cb, b);
    if (s == NATS_OK)
        s = natsOptions_SetCustomInboxPrefix(no, b->inbox_prefix);
    if (s == NATS_OK) /* write on the loop's next turn, not after the flusher thread's 1 ms
                       * wait: a turn's publishes still leave in one write */
        s = natsOptions_SetSendAsap(no, true);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(no, base, natsLibevent_Attach, natsLibevent_Read,
                                     natsLibevent_Write, natsLibevent_Detach);
    if (s != NATS_OK)
        goto out_free_opts;
    s = natsConnection_Connect(&b->nc, no);
    if (s != NATS_OK) {
        char shown[1024];
        CB_LOG_ERR(MOD, "connect %s: %s%s%s", cb_url_redact(o->url, shown, sizeof shown),
                   natsStatus_GetText(s), s == NATS_SSL_ERROR ? ": " : "",
                   s == NATS_SSL_ERROR ? nats_GetLastError(NULL) : "");
        st = s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED ? CB_EBROKER : CB_ECONN;
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
     * thread and turn the loop here until it is done. A client leaves the
     * streams to the daemons (it may not be allowed to look at them). */
    memset(&setup, 0, sizeof setup);
    if (o->client)
        setup.done = true;
    else {
        setup.job.mail.fn = setup_done;
        setup.job.work = setup_streams_work;
        setup.b = b;
        cb_offload_submit(b->off, &setup.job);
        deadline = cb_time_mono_ns() + (o->connect_timeout_ms + o->op_timeout_ms) * 1000000;
        while (!setup.done && cb_time_mono_ns() < deadline)
            event_base_loop(base, EVLOOP_ONCE);
    }
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
        char *hs = cb_json_dumps(h, JSON_COMPACT);
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
    wait_closed(b);
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
    pthread_mutex_destroy(&b->close_mu);
    pthread_cond_destroy(&b->close_cv);
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
    .read = cb__nats_read,
    .reader_close = cb__nats_reader_close,
    .consume = cb__nats_consume,
    .consumer_close = cb__nats_consumer_close,
    .work_ack = cb__nats_work_ack,
    .work_nak = cb__nats_work_nak,
    .work_progress = cb__nats_work_progress,
    .subscribe = cb__nats_subscribe,
    .serve = cb__nats_serve,
    .sub_close = cb__nats_sub_close,
    .request = nats_request,
    .respond = nats_respond,
    .request_drop = nats_request_drop,
};
