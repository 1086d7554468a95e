/* broker/amqp_pub.c - RabbitMQ driver: publishing with confirms, work-queue
 * declarations, requests and responses (see amqp.c for the whole). */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_int.h"
#include "cb_alloc.h"
#include "cb_map.h"
#include "cb_log.h"
#include "cb_time.h"

/* ---- publishing ------------------------------------------------------ */

static void pub_free(pub_op *p)
{
    cb_free(p->subject);
    cb_free(p->msg_id);
    cb_free(p->data);
    cb_free(p->reply_to);
    cb_free(p->corr_id);
    cb_free(p);
}

static void pub_unlink(ab *b, pub_op *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        b->pubs_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        b->pubs_tail = p->prev;
    if (p->tag)
        cb_map_take(&b->by_tag, p->tag);
}

void cb__amqp_pub_finish(ab *b, pub_op *p, cb_status s)
{
    pub_unlink(b, p);
    if (p->req_token) {
        /* A request whose publish was refused or unroutable ends now. */
        req_op *r = cb_map_get(&b->reqs, p->req_token);
        if (r) {
            r->pub = NULL;
            if (s != CB_OK) {
                cb_map_take(&b->reqs, r->token);
                r->cb(s == CB_ENOTFOUND ? CB_ENORESP : s, NULL, 0, r->ctx);
                cb_free(r);
            }
        }
    }
    if (p->cb)
        p->cb(s, 0, 0, p->ctx);
    pub_free(p);
}

static bool ensure_work_queue(ab *b, const char *subject);
static bool ensure_done_stream(ab *b, const char *subject);

bool cb__amqp_pub_send(ab *b, pub_op *p)
{
    amqp_basic_properties_t props;
    amqp_table_entry_t hdr[1];
    char exp[32];
    amqp_bytes_t body = {p->len, p->data};
    int rc;

    if (p->kind == CB__PUB_WORK && !ensure_work_queue(b, p->subject))
        return false;
    if (p->kind == CB__PUB_KEPT && !ensure_done_stream(b, p->subject))
        return false;
    memset(&props, 0, sizeof props);
    props._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = cb__amqp_bytes("application/json");
    props.delivery_mode = p->kind == CB__PUB_EPHEMERAL ? 1 : 2; /* 2 = persistent */
    hdr[0].key = cb__amqp_bytes("x-cb-time");
    hdr[0].value.kind = AMQP_FIELD_KIND_I64;
    hdr[0].value.value.i64 = cb_time_now_ns();
    props.headers.num_entries = 1;
    props.headers.entries = hdr;
    if (p->msg_id) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = cb__amqp_bytes(p->msg_id);
    }
    if (p->reply_to) {
        props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        props.reply_to = cb__amqp_bytes(p->reply_to);
    }
    if (p->corr_id) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = cb__amqp_bytes(p->corr_id);
    }
    if (p->expiration_ms > 0) {
        snprintf(exp, sizeof exp, "%lld", (long long)p->expiration_ms);
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        props.expiration = cb__amqp_bytes(exp);
    }
    p->tag = ++b->next_tag;
    if (cb_map_put(&b->by_tag, p->tag, p) != CB_OK) {
        p->tag = 0;
        return false;
    }
    rc = amqp_basic_publish(b->conn, PUB_CHANNEL, cb__amqp_bytes(p->direct ? "" : EXCHANGE),
                            cb__amqp_bytes(p->subject), p->mandatory, 0, &props, body);
    return cb__amqp_send_ok(b, rc, "publish");
}

/* Queue a publish (copies everything) in submission order. The caller sets
 * request fields on *out, then calls cb__amqp_pub_kick(). */
cb_status cb__amqp_pub_new(ab *b, cb__pub_kind kind, const char *subject, const char *msg_id,
                           const void *data, size_t len, cb_publish_cb *cb, void *ctx, pub_op **out)
{
    pub_op *p = cb_calloc(1, sizeof *p);
    if (!p)
        return CB_ENOMEM;
    p->kind = kind;
    p->mandatory = kind != CB__PUB_EPHEMERAL;
    p->subject = cb_strdup(subject);
    p->msg_id = msg_id ? cb_strdup(msg_id) : NULL;
    p->data = cb_malloc(len);
    if (!p->subject || (msg_id && !p->msg_id) || !p->data) {
        pub_free(p);
        return CB_ENOMEM;
    }
    memcpy(p->data, data, len);
    p->len = len;
    p->cb = cb;
    p->ctx = ctx;
    p->deadline_ns = cb_time_mono_ns() + b->base.opts.op_timeout_ms * 1000000;
    p->prev = b->pubs_tail;
    if (b->pubs_tail)
        b->pubs_tail->next = p;
    else
        b->pubs_head = p;
    b->pubs_tail = p;
    *out = p;
    return CB_OK;
}

void cb__amqp_pub_kick(ab *b, pub_op *p)
{
    if (b->state == ST_UP)
        cb__amqp_pub_send(b, p); /* on failure the connection is down; p waits for the next one */
}

cb_status cb__amqp_publish(cb_broker *cb, cb__pub_kind kind, const char *subject,
                           const char *msg_id, const void *data, size_t len, cb_publish_cb *fn,
                           void *ctx)
{
    ab *b = (ab *)cb;
    if (b->closing)
        return CB_ECLOSED;
    pub_op *p;
    cb_status s;
    if (kind == CB__PUB_EPHEMERAL && b->state != ST_UP)
        return CB_ECONN; /* not persisted: nothing to wait for */
    if ((s = cb__amqp_pub_new(b, kind, subject, msg_id, data, len, fn, ctx, &p)) != CB_OK)
        return s;
    cb__amqp_pub_kick(b, p);
    return CB_OK;
}

void cb__amqp_on_confirm(ab *b, uint64_t tag, bool multiple, cb_status s)
{
    if (!multiple) {
        pub_op *p = cb_map_get(&b->by_tag, tag);
        if (p)
            cb__amqp_pub_finish(b, p, p->returned ? CB_ENOTFOUND : s);
        return;
    }
    for (pub_op *p = b->pubs_head, *next; p; p = next) {
        next = p->next;
        if (p->tag && p->tag <= tag)
            cb__amqp_pub_finish(b, p, p->returned ? CB_ENOTFOUND : s);
    }
}

void cb__amqp_on_return(ab *b, const char *msg_id, const char *corr_id)
{
    /* The return precedes the confirm of the same message: mark the oldest
     * sent publish with the same ids. */
    for (pub_op *p = b->pubs_head; p; p = p->next) {
        if (!p->tag || p->returned)
            continue;
        bool same_id = msg_id ? (p->msg_id && strcmp(p->msg_id, msg_id) == 0) : !p->msg_id;
        bool same_corr = corr_id ? (p->corr_id && strcmp(p->corr_id, corr_id) == 0) : !p->corr_id;
        if (same_id && same_corr) {
            p->returned = true;
            return;
        }
    }
}

/* The name quoted after `what` in the server's words ("... access to
 * topic 'cb.evt.x' in exchange 'cb' ..."), or false. */
static bool quoted_after(const char *why, const char *what, char *out, size_t size)
{
    const char *s = strstr(why, what), *end;
    if (!s || !(end = strchr(s += strlen(what), '\'')) || (size_t)(end - s) >= size)
        return false;
    snprintf(out, size, "%.*s", (int)(end - s), s);
    return true;
}

void cb__amqp_pub_refused(ab *b, const char *why)
{
    char topic[256] = "", exchange[256] = "";
    bool by_topic = quoted_after(why, "access to topic '", topic, sizeof topic);
    if (!by_topic && !quoted_after(why, "access to exchange '", exchange, sizeof exchange))
        return;
    CB_LOG_ERR(MOD, "the broker refused: %s", why);
    for (pub_op *p = b->pubs_head, *next; p; p = next) {
        next = p->next;
        if (by_topic ? !p->direct && !strcmp(p->subject, topic)
                     : p->direct == !strcmp(exchange, "amq.default"))
            cb__amqp_pub_finish(b, p, CB_EDENIED);
    }
}

/* ---- topology -------------------------------------------------------- */

void cb__amqp_log_queue(unsigned partition, char *buf, size_t size)
{
    if (partition)
        snprintf(buf, size, "cb.events.%u", partition);
    else
        snprintf(buf, size, "cb.events");
}

amqp_table_t cb__amqp_queue_args(amqp_table_entry_t *e, const char *type)
{
    amqp_table_t t;
    e[0].key = cb__amqp_bytes("x-queue-type");
    e[0].value.kind = AMQP_FIELD_KIND_UTF8;
    e[0].value.value.bytes = cb__amqp_bytes(type);
    t.num_entries = 1;
    t.entries = e;
    return t;
}

bool cb__amqp_declare_bound(ab *b, amqp_channel_t ch, const char *queue, const char *type,
                            const char *key)
{
    amqp_queue_declare_t qd;
    amqp_queue_bind_t qb;
    amqp_table_entry_t e[1];
    memset(&qd, 0, sizeof qd);
    qd.queue = cb__amqp_bytes(queue);
    qd.durable = 1;
    qd.arguments = cb__amqp_queue_args(e, type);
    memset(&qb, 0, sizeof qb);
    qb.queue = cb__amqp_bytes(queue);
    qb.exchange = cb__amqp_bytes(EXCHANGE);
    qb.routing_key = cb__amqp_bytes(key);
    qb.arguments = amqp_empty_table;
    return cb__amqp_send_ok(b, amqp_send_method(b->conn, ch, AMQP_QUEUE_DECLARE_METHOD, &qd),
                            "declare") &&
           cb__amqp_send_ok(b, amqp_send_method(b->conn, ch, AMQP_QUEUE_BIND_METHOD, &qb), "bind");
}

/* `queue` (of type, bound to key) once per connection, pipelined on channel
 * 1 before the publish, so it is in place when the message is routed; the
 * -ok replies are ignored. */
static bool ensure_queue(ab *b, const char *queue, const char *type, const char *key)
{
    uint64_t h = cb_hash64(queue, strlen(queue));
    if (cb_map_get(&b->declared, h))
        return true;
    return cb__amqp_declare_bound(b, PUB_CHANNEL, queue, type, key) &&
           cb_map_put(&b->declared, h, (void *)1) == CB_OK;
}

static bool ensure_work_queue(ab *b, const char *subject)
{
    if (strncmp(subject, "cb.invoke.", 10) != 0)
        return true; /* cb.enqueue.* goes to cb.enqueue, declared at connect */
    return ensure_queue(b, subject, "quorum", subject);
}

/* A done message also goes to its tenant's own stream, cb.done.<tenant>
 * (docs/broker.md), which a tenant identity may read when the shared
 * cb.done is not its to read: declared and bound before the first done
 * message of the tenant on each connection. */
static bool ensure_done_stream(ab *b, const char *subject)
{
    char queue[200], key[220];
    if (!cb__amqp_tenant_done_queue(subject, queue, sizeof queue))
        return true;
    snprintf(key, sizeof key, "%s.#", queue);
    return ensure_queue(b, queue, "stream", key);
}

/* Blocking, on the helper thread: connect, log in, declare the fixed topology,
 * open channel 1 in confirm mode. */

typedef struct expired {
    int64_t now;
    uint64_t tokens[64];
    int n;
} expired;

static void req_sweep(uint64_t key, void *val, void *arg)
{
    req_op *r = val;
    expired *x = arg;
    if (x->now >= r->deadline_ns && x->n < 64)
        x->tokens[x->n++] = key;
}

/* Fail requests past their deadline (at most 64 a tick). */
void cb__amqp_expire_requests(ab *b, int64_t now)
{
    expired x = {.now = now};
    cb_map_each(&b->reqs, req_sweep, &x);
    for (int i = 0; i < x.n; i++) {
        req_op *r = cb_map_take(&b->reqs, x.tokens[i]);
        if (r->pub)
            r->pub->req_token = 0;
        r->cb(CB_ETIMEDOUT, NULL, 0, r->ctx);
        cb_free(r);
    }
}

/* ---- requests -------------------------------------------------------- */

cb_status cb__amqp_request(cb_broker *cb, const char *subject, const void *data, size_t len,
                           int64_t timeout_ms, cb_reply_cb *fn, void *ctx)
{
    ab *b = (ab *)cb;
    req_op *r;
    pub_op *p = NULL;
    char corr[32];
    cb_status s;

    if (b->closing)
        return CB_ECLOSED;
    if (b->state != ST_UP)
        return CB_ECONN;
    if (!b->reply_consumer) {
        amqp_basic_consume_t bc;
        memset(&bc, 0, sizeof bc);
        bc.queue = cb__amqp_bytes(REPLY_TO);
        bc.no_ack = 1;
        bc.arguments = amqp_empty_table;
        if (!cb__amqp_send_ok(
                b, amqp_send_method(b->conn, PUB_CHANNEL, AMQP_BASIC_CONSUME_METHOD, &bc),
                "consume"))
            return CB_ECONN;
        b->reply_consumer = true;
    }
    if (!(r = cb_calloc(1, sizeof *r)))
        return CB_ENOMEM;
    r->token = ++b->next_token;
    r->cb = fn;
    r->ctx = ctx;
    r->deadline_ns = cb_time_mono_ns() + timeout_ms * 1000000;
    snprintf(corr, sizeof corr, "%llu", (unsigned long long)r->token);
    if (cb_map_put(&b->reqs, r->token, r) != CB_OK) {
        cb_free(r);
        return CB_ENOMEM;
    }
    /* The request carries reply_to, a correlation id and a TTL, so a request
     * nobody took in time expires instead of being served late. */
    s = cb__amqp_pub_new(b, CB__PUB_KEPT, subject, NULL, data, len, NULL, NULL, &p);
    if (s == CB_OK && (!(p->reply_to = cb_strdup(REPLY_TO)) || !(p->corr_id = cb_strdup(corr)))) {
        cb__amqp_pub_finish(b, p, CB_ENOMEM);
        s = CB_ENOMEM;
    }
    if (s != CB_OK) {
        cb_map_take(&b->reqs, r->token);
        cb_free(r);
        return s;
    }
    p->expiration_ms = timeout_ms;
    p->req_token = r->token;
    r->pub = p;
    cb__amqp_pub_kick(b, p);
    return CB_OK;
}

cb_status cb__amqp_respond(cb_request *creq, const void *data, size_t len)
{
    areq *rq = (areq *)creq;
    aep *e = rq->e;
    ab *b = e->b;
    cb_status s = CB_OK;

    if (b->state != ST_UP) {
        s = CB_ECONN; /* the request is requeued with the connection */
    } else if (rq->reply_to && *rq->reply_to) {
        pub_op *p = NULL;
        s = cb__amqp_pub_new(b, CB__PUB_EPHEMERAL, rq->reply_to, NULL, data, len, NULL, NULL, &p);
        if (s == CB_OK) {
            p->direct = true;
            p->mandatory = false;
            if (rq->corr_id && !(p->corr_id = cb_strdup(rq->corr_id))) {
                cb__amqp_pub_finish(b, p, CB_ENOMEM);
                s = CB_ENOMEM;
            } else {
                cb__amqp_pub_kick(b, p);
            }
        }
    }
    if (rq->gen == b->gen && rq->opened == e->opened && b->state == ST_UP && e->ch)
        amqp_basic_ack(b->conn, e->ch, rq->tag, 0);
    cb_free(rq->reply_to);
    cb_free(rq->corr_id);
    cb_free(rq);
    e->users--;
    cb__amqp_ep_maybe_free(e);
    return s;
}

void cb__amqp_request_drop(cb_request *creq)
{
    areq *rq = (areq *)creq;
    aep *e = rq->e;
    ab *b = e->b;
    if (rq->gen == b->gen && rq->opened == e->opened && b->state == ST_UP && e->ch)
        amqp_basic_ack(b->conn, e->ch, rq->tag, 0);
    cb_free(rq->reply_to);
    cb_free(rq->corr_id);
    cb_free(rq);
    e->users--;
    cb__amqp_ep_maybe_free(e);
}
