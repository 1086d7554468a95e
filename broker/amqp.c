/* broker/amqp.c - the RabbitMQ driver (the only includer of amqp.h).
 *
 * librabbitmq-c is a blocking client; this driver uses it as a codec and
 * drives the socket from the caller's libevent loop: frames are read with
 * amqp_simple_wait_frame_noblock() when the socket is readable, methods are
 * sent with amqp_send_method()/amqp_basic_publish() without waiting for their
 * replies, and replies are handled as they arrive. Only connecting and
 * declaring the topology use blocking RPCs, on a helper thread (cb_offload),
 * after which the connection is handed to the loop.
 *
 * Topology (docs/broker.md): topic exchange `cb`; stream queues cb.events
 * (cb.evt.#) and cb.done (cb.done.#); quorum queues cb.submit (cb.submit.#,
 * cb.enqueue.#), cb.ctl (cb.ctl.#) and cb.invoke.<backend> (declared on first
 * use). Channel 1 publishes in confirm mode and receives direct replies;
 * every reader, consumer and subscription has a channel of its own. */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "broker_int.h"
#include "cb_alloc.h"
#include "cb_dedup.h"
#include "cb_log.h"
#include "cb_mailbox.h"
#include "cb_map.h"
#include "cb_offload.h"
#include "cb_time.h"

#define MOD            "amqp"
#define EXCHANGE       "cb"
#define PUB_CHANNEL    1
#define FRAME_MAX      131072
#define TICK_MS        50
#define READ_PREFETCH  2000
#define READ_IDLE_MS   250   /* live readers: no delivery for this long after the end: caught up */
#define DEDUP_IDS      65536 /* per reader; ~2.5 MB when full (docs/broker.md) */
#define REPLY_TO       "amq.rabbitmq.reply-to"
#define MAX_BACKOFF_MS 2000

typedef enum conn_state { ST_DOWN, ST_CONNECTING, ST_UP } conn_state;
typedef enum ep_kind { EP_READER, EP_SUB, EP_KEPT_SUB, EP_SERVE, EP_CONSUMER } ep_kind;

typedef struct ab ab;
typedef struct aep aep;

/* A message being assembled from method, header and body frames. */
typedef struct inbound {
    bool active;
    uint64_t tag;
    bool redelivered;
    char *rkey;
    char *body;
    size_t size, got;
    char *msg_id, *reply_to, *corr_id;
    int64_t offset;     /* x-stream-offset, -1 if absent */
    int64_t deliveries; /* x-delivery-count + 1, or 1/2 from the redelivered flag */
    int64_t time_ns;    /* our x-cb-time header, 0 if absent */
} inbound;

typedef struct awork {
    struct cb_work head;
    aep *e;
    uint64_t tag;
    uint64_t gen; /* connection generation the tag belongs to */
    struct event *nak_timer;
    struct awork *prev, *next;
} awork;

typedef struct areq {
    struct cb_request head;
    aep *e;
    uint64_t tag, gen;
    char *reply_to, *corr_id;
} areq;

struct aep {
    union {
        struct cb_reader r;
        struct cb_sub s;
        struct cb_consumer c;
    } h;
    ep_kind kind;
    ab *b;
    amqp_channel_t ch; /* 0 while not open on the current connection */
    bool closed, finished;
    aep *prev, *next;
    void *ctx;
    cb_read_cb *read_cb;
    cb_msg_cb *msg_cb;
    cb_serve_cb *serve_cb;
    cb_work_cb *work_cb;
    char queue[256];   /* what it consumes */
    char pattern[256]; /* client-side subject filter, NATS syntax; "" = all */
    inbound in;
    /* readers */
    cb_read_opts ropts;
    int64_t last_offset; /* -1: nothing delivered yet */
    int64_t last_activity_ns;
    bool caught_up_sent;
    /* The end of the log at start: the reader appends an end marker (subject
     * cb.evt.~end, never delivered) and has caught up when it reads it back.
     * A stream's message count lags its confirms, so it cannot tell. */
    char marker_id[64];
    bool reached_end;
    uint64_t unacked_tag, unacked;
    cb_dedup *dedup;
    int64_t since_ns;
    /* consumers */
    cb_consume_opts copts;
    awork *works;
    int users; /* works/requests outstanding: the ep is freed when 0 and closed */
};

typedef struct pub_op {
    struct pub_op *prev, *next;
    cb__pub_kind kind;
    char *subject, *msg_id;
    void *data;
    size_t len;
    cb_publish_cb *cb; /* NULL: internal (replies) */
    void *ctx;
    uint64_t tag; /* delivery tag on the current connection, 0 = not sent */
    int64_t deadline_ns;
    bool returned;  /* unroutable */
    bool direct;    /* default exchange, routing key = subject (responses) */
    bool mandatory; /* unroutable comes back as an error */
    char *reply_to, *corr_id;
    int64_t expiration_ms;
    uint64_t req_token; /* the request this publish carries, 0 if none */
} pub_op;

typedef struct req_op {
    uint64_t token;
    cb_reply_cb *cb;
    void *ctx;
    int64_t deadline_ns;
    pub_op *pub; /* while not yet confirmed */
} req_op;

struct ab {
    cb_broker base;
    struct event_base *evb;
    cb_mailbox *mb;
    cb_offload *off;
    char host[256], user[128], pass[128], vhost[128];
    int port;
    conn_state state;
    amqp_connection_state_t conn;
    uint64_t gen;
    struct event *rd_ev, *tick;
    int64_t next_connect_ns;
    int backoff_ms;
    unsigned long reconnects;
    bool ever_up, closing;
    inbound pub_in; /* deliveries on channel 1: direct replies */
    bool reply_consumer;
    /* publishes in submission order; unconfirmed ones carry a tag */
    pub_op *pubs_head, *pubs_tail;
    cb_map by_tag;
    uint64_t next_tag;
    cb_map declared; /* hash of work queue names declared on this connection */
    cb_map chans;    /* channel -> aep */
    amqp_channel_t next_ch;
    aep *eps;
    cb_map reqs; /* token -> req_op */
    uint64_t next_token;
    char server[64];
};

static void conn_lost(ab *b, const char *why);
static void open_ep_channel(ab *b, aep *e);

/* ---- small helpers --------------------------------------------------- */

static amqp_bytes_t bytes_of(const char *s)
{
    return amqp_cstring_bytes(s);
}

static char *dup_bytes(amqp_bytes_t bytes)
{
    return bytes.len || bytes.bytes ? cb_strndup(bytes.bytes, bytes.len) : NULL;
}

static int64_t field_int(const amqp_field_value_t *v, bool *ok)
{
    *ok = true;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        return v->value.i8;
    case AMQP_FIELD_KIND_U8:
        return v->value.u8;
    case AMQP_FIELD_KIND_I16:
        return v->value.i16;
    case AMQP_FIELD_KIND_U16:
        return v->value.u16;
    case AMQP_FIELD_KIND_I32:
        return v->value.i32;
    case AMQP_FIELD_KIND_U32:
        return v->value.u32;
    case AMQP_FIELD_KIND_I64:
        return v->value.i64;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        return (int64_t)v->value.u64;
    default:
        *ok = false;
        return 0;
    }
}

static bool table_int(const amqp_table_t *t, const char *key, int64_t *out)
{
    size_t klen = strlen(key);
    for (int i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *en = &t->entries[i];
        bool ok;
        if (en->key.len == klen && memcmp(en->key.bytes, key, klen) == 0) {
            *out = field_int(&en->value, &ok);
            return ok;
        }
    }
    return false;
}

/* NATS-style pattern ('*', '>') to an AMQP topic binding key ('*', '#'). */
static void binding_key(const char *pattern, char *out, size_t size)
{
    snprintf(out, size, "%s", pattern);
    size_t n = strlen(out);
    if (n && out[n - 1] == '>')
        out[n - 1] = '#';
}

static void inbound_reset(inbound *in)
{
    cb_free(in->rkey);
    cb_free(in->body);
    cb_free(in->msg_id);
    cb_free(in->reply_to);
    cb_free(in->corr_id);
    memset(in, 0, sizeof *in);
}

static bool send_ok(ab *b, int rc, const char *what)
{
    if (rc == AMQP_STATUS_OK)
        return true;
    char why[160];
    snprintf(why, sizeof why, "%s: %s", what, amqp_error_string2(rc));
    conn_lost(b, why);
    return false;
}

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

static void pub_finish(ab *b, pub_op *p, cb_status s)
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

static bool pub_send(ab *b, pub_op *p)
{
    amqp_basic_properties_t props;
    amqp_table_entry_t hdr[1];
    char exp[32];
    amqp_bytes_t body = {p->len, p->data};
    int rc;

    if (p->kind == CB__PUB_WORK && !ensure_work_queue(b, p->subject))
        return false;
    memset(&props, 0, sizeof props);
    props._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = bytes_of("application/json");
    props.delivery_mode = p->kind == CB__PUB_EPHEMERAL ? 1 : 2; /* 2 = persistent */
    hdr[0].key = bytes_of("x-cb-time");
    hdr[0].value.kind = AMQP_FIELD_KIND_I64;
    hdr[0].value.value.i64 = cb_time_now_ns();
    props.headers.num_entries = 1;
    props.headers.entries = hdr;
    if (p->msg_id) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = bytes_of(p->msg_id);
    }
    if (p->reply_to) {
        props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        props.reply_to = bytes_of(p->reply_to);
    }
    if (p->corr_id) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = bytes_of(p->corr_id);
    }
    if (p->expiration_ms > 0) {
        snprintf(exp, sizeof exp, "%lld", (long long)p->expiration_ms);
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        props.expiration = bytes_of(exp);
    }
    p->tag = ++b->next_tag;
    if (cb_map_put(&b->by_tag, p->tag, p) != CB_OK) {
        p->tag = 0;
        return false;
    }
    rc = amqp_basic_publish(b->conn, PUB_CHANNEL, bytes_of(p->direct ? "" : EXCHANGE),
                            bytes_of(p->subject), p->mandatory, 0, &props, body);
    return send_ok(b, rc, "publish");
}

/* Queue a publish (copies everything) in submission order. The caller sets
 * request fields on *out, then calls pub_kick(). */
static cb_status pub_new(ab *b, cb__pub_kind kind, const char *subject, const char *msg_id,
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

static void pub_kick(ab *b, pub_op *p)
{
    if (b->state == ST_UP)
        pub_send(b, p); /* on failure the connection is down; p waits for the next one */
}

static cb_status amqp_publish_op(cb_broker *cb, cb__pub_kind kind, const char *subject,
                                 const char *msg_id, const void *data, size_t len,
                                 cb_publish_cb *fn, void *ctx)
{
    ab *b = (ab *)cb;
    if (b->closing)
        return CB_ECLOSED;
    pub_op *p;
    cb_status s;
    if (kind == CB__PUB_EPHEMERAL && b->state != ST_UP)
        return CB_ECONN; /* not persisted: nothing to wait for */
    if ((s = pub_new(b, kind, subject, msg_id, data, len, fn, ctx, &p)) != CB_OK)
        return s;
    pub_kick(b, p);
    return CB_OK;
}

static void on_confirm(ab *b, uint64_t tag, bool multiple, cb_status s)
{
    if (!multiple) {
        pub_op *p = cb_map_get(&b->by_tag, tag);
        if (p)
            pub_finish(b, p, p->returned ? CB_ENOTFOUND : s);
        return;
    }
    for (pub_op *p = b->pubs_head, *next; p; p = next) {
        next = p->next;
        if (p->tag && p->tag <= tag)
            pub_finish(b, p, p->returned ? CB_ENOTFOUND : s);
    }
}

static void on_return(ab *b, const char *msg_id, const char *corr_id)
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

/* ---- topology -------------------------------------------------------- */

static amqp_table_t queue_args(amqp_table_entry_t *e, const char *type)
{
    amqp_table_t t;
    e[0].key = bytes_of("x-queue-type");
    e[0].value.kind = AMQP_FIELD_KIND_UTF8;
    e[0].value.value.bytes = bytes_of(type);
    t.num_entries = 1;
    t.entries = e;
    return t;
}

static bool ensure_work_queue(ab *b, const char *subject)
{
    uint64_t h = cb_hash64(subject, strlen(subject));
    amqp_queue_declare_t qd;
    amqp_queue_bind_t qb;
    amqp_table_entry_t e[1];

    if (strncmp(subject, "cb.invoke.", 10) != 0 || cb_map_get(&b->declared, h))
        return true; /* cb.enqueue.* goes to cb.submit, declared at connect */
    memset(&qd, 0, sizeof qd);
    qd.queue = bytes_of(subject);
    qd.durable = 1;
    qd.arguments = queue_args(e, "quorum");
    memset(&qb, 0, sizeof qb);
    qb.queue = bytes_of(subject);
    qb.exchange = bytes_of(EXCHANGE);
    qb.routing_key = bytes_of(subject);
    qb.arguments = amqp_empty_table;
    /* Pipelined before the publish on the same channel, so it is in place
     * when the message is routed; the -ok replies are ignored. */
    if (!send_ok(b, amqp_send_method(b->conn, PUB_CHANNEL, AMQP_QUEUE_DECLARE_METHOD, &qd),
                 "declare") ||
        !send_ok(b, amqp_send_method(b->conn, PUB_CHANNEL, AMQP_QUEUE_BIND_METHOD, &qb), "bind"))
        return false;
    return cb_map_put(&b->declared, h, (void *)1) == CB_OK;
}

/* Blocking, on the helper thread: connect, log in, declare the fixed topology,
 * open channel 1 in confirm mode. */
typedef struct connect_job {
    cb_offload_job job;
    ab *b;
    amqp_connection_state_t conn;
    char err[640];
    char server[64];
    bool done;
    bool owned_by_open; /* the first connect: amqp_open frees the job */
} connect_job;

static bool rpc_ok(connect_job *j, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(j->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        snprintf(j->err, sizeof j->err, "%s: %s", what, amqp_error_string2(r.library_error));
    else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD ||
             r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_channel_close_t *c = r.reply.decoded;
        snprintf(j->err, sizeof j->err, "%s: server said %u %.*s", what, c->reply_code,
                 (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    } else
        snprintf(j->err, sizeof j->err, "%s: unexpected reply", what);
    return false;
}

static void connect_work(cb_offload_job *job)
{
    connect_job *j = (connect_job *)job;
    ab *b = j->b;
    amqp_socket_t *sock;
    struct timeval tv = {(time_t)(b->base.opts.connect_timeout_ms / 1000),
                         (suseconds_t)(b->base.opts.connect_timeout_ms % 1000) * 1000};
    amqp_table_entry_t e[1];
    amqp_rpc_reply_t r;
    static const char *const bindings[][2] = {
        {"cb.events", "cb.evt.#"},     {"cb.done", "cb.done.#"}, {"cb.submit", "cb.submit.#"},
        {"cb.submit", "cb.enqueue.#"}, {"cb.ctl", "cb.ctl.#"},
    };
    static const char *const queues[][2] = {{"cb.events", "stream"},
                                            {"cb.done", "stream"},
                                            {"cb.submit", "quorum"},
                                            {"cb.ctl", "quorum"}};

    j->conn = amqp_new_connection();
    if (!j->conn || !(sock = amqp_tcp_socket_new(j->conn))) {
        snprintf(j->err, sizeof j->err, "out of memory");
        goto fail;
    }
    int rc = amqp_socket_open_noblock(sock, b->host, b->port, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(j->err, sizeof j->err, "connect %s:%d: %s", b->host, b->port,
                 amqp_error_string2(rc));
        goto fail;
    }
    /* No AMQP heartbeats: nobody would answer them while the loop is busy in
     * user code; TCP keepalive detects a dead peer instead. */
    int one = 1;
    setsockopt(amqp_get_sockfd(j->conn), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    r = amqp_login(j->conn, b->vhost, 0, FRAME_MAX, 0, AMQP_SASL_METHOD_PLAIN, b->user, b->pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(j->err, sizeof j->err, "login as %s on vhost %s refused", b->user, b->vhost);
        goto fail;
    }
    {
        const amqp_table_t *sp = amqp_get_server_properties(j->conn);
        for (int i = 0; sp && i < sp->num_entries; i++)
            if (sp->entries[i].key.len == 7 && !memcmp(sp->entries[i].key.bytes, "version", 7) &&
                sp->entries[i].value.kind == AMQP_FIELD_KIND_UTF8)
                snprintf(j->server, sizeof j->server, "RabbitMQ %.*s",
                         (int)sp->entries[i].value.value.bytes.len,
                         (const char *)sp->entries[i].value.value.bytes.bytes);
    }
    amqp_channel_open(j->conn, PUB_CHANNEL);
    if (!rpc_ok(j, "channel.open"))
        goto fail;
    amqp_exchange_declare(j->conn, PUB_CHANNEL, bytes_of(EXCHANGE), bytes_of("topic"), 0, 1, 0, 0,
                          amqp_empty_table);
    if (!rpc_ok(j, "exchange.declare cb"))
        goto fail;
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++) {
        amqp_queue_declare(j->conn, PUB_CHANNEL, bytes_of(queues[i][0]), 0, 1, 0, 0,
                           queue_args(e, queues[i][1]));
        if (!rpc_ok(j, queues[i][0]))
            goto fail;
    }
    for (size_t i = 0; i < sizeof bindings / sizeof bindings[0]; i++) {
        amqp_queue_bind(j->conn, PUB_CHANNEL, bytes_of(bindings[i][0]), bytes_of(EXCHANGE),
                        bytes_of(bindings[i][1]), amqp_empty_table);
        if (!rpc_ok(j, "queue.bind"))
            goto fail;
    }
    amqp_confirm_select(j->conn, PUB_CHANNEL);
    if (!rpc_ok(j, "confirm.select"))
        goto fail;
    amqp_maybe_release_buffers(j->conn);
    return;
fail:
    if (j->conn)
        amqp_destroy_connection(j->conn);
    j->conn = NULL;
}

/* ---- channels for endpoints ------------------------------------------ */

static void ep_free(aep *e)
{
    inbound_reset(&e->in);
    cb_dedup_destroy(e->dedup);
    cb_free(e);
}

static void ep_maybe_free(aep *e)
{
    if (e->closed && e->users == 0 && e->ch == 0)
        ep_free(e);
}

static void consume(ab *b, aep *e, const char *queue, bool no_ack, amqp_table_t args)
{
    amqp_basic_consume_t bc;
    memset(&bc, 0, sizeof bc);
    bc.queue = bytes_of(queue);
    bc.no_ack = no_ack;
    bc.arguments = args;
    send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_BASIC_CONSUME_METHOD, &bc), "consume");
}

static void stream_offset_arg(aep *e, amqp_table_entry_t *en)
{
    en->key = bytes_of("x-stream-offset");
    if (e->last_offset >= 0) { /* resuming after a reconnect */
        en->value.kind = AMQP_FIELD_KIND_I64;
        en->value.value.i64 = e->last_offset + 1;
        return;
    }
    if (e->kind == EP_KEPT_SUB) {
        if (e->since_ns > 0) {
            en->value.kind = AMQP_FIELD_KIND_TIMESTAMP;
            en->value.value.u64 = (uint64_t)(e->since_ns / 1000000000);
        } else {
            en->value.kind = AMQP_FIELD_KIND_UTF8;
            en->value.value.bytes = bytes_of("first");
        }
        return;
    }
    switch (e->ropts.from) {
    case CB_READ_FIRST:
        en->value.kind = AMQP_FIELD_KIND_UTF8;
        en->value.value.bytes = bytes_of("first");
        break;
    case CB_READ_SEQ: /* positions are offsets + 1, so that 0 means "none" */
        en->value.kind = AMQP_FIELD_KIND_I64;
        en->value.value.i64 = (int64_t)e->ropts.seq - 1;
        break;
    case CB_READ_TIME: /* second granularity; refined by x-cb-time on delivery */
        en->value.kind = AMQP_FIELD_KIND_TIMESTAMP;
        en->value.value.u64 = (uint64_t)(e->ropts.time_ns / 1000000000);
        break;
    case CB_READ_NEW:
        en->value.kind = AMQP_FIELD_KIND_UTF8;
        en->value.value.bytes = bytes_of("next");
        break;
    }
}

static void open_ep_channel(ab *b, aep *e)
{
    amqp_channel_open_t co = {amqp_empty_bytes};
    amqp_basic_qos_t qos;
    amqp_table_entry_t en[1];
    amqp_table_t args = {1, en};
    char key[300];

    if (b->state != ST_UP || e->closed)
        return;
    if (b->next_ch == 0 || b->next_ch >= 65000)
        b->next_ch = PUB_CHANNEL + 1;
    e->ch = b->next_ch++;
    if (cb_map_put(&b->chans, e->ch, e) != CB_OK) {
        e->ch = 0;
        return;
    }
    if (!send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_CHANNEL_OPEN_METHOD, &co), "channel"))
        return;
    memset(&qos, 0, sizeof qos);
    switch (e->kind) {
    case EP_READER:
    case EP_KEPT_SUB:
        qos.prefetch_count = READ_PREFETCH;
        send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_BASIC_QOS_METHOD, &qos), "qos");
        stream_offset_arg(e, &en[0]);
        e->last_activity_ns = cb_time_mono_ns();
        e->unacked = 0;
        consume(b, e, e->queue, false, args);
        break;
    case EP_CONSUMER: {
        amqp_queue_declare_t qd;
        amqp_queue_bind_t qb;
        memset(&qd, 0, sizeof qd);
        qd.queue = bytes_of(e->queue);
        qd.durable = 1;
        qd.arguments = queue_args(en, "quorum");
        memset(&qb, 0, sizeof qb);
        qb.queue = bytes_of(e->queue);
        qb.exchange = bytes_of(EXCHANGE);
        qb.routing_key = bytes_of(e->queue);
        qb.arguments = amqp_empty_table;
        if (!send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_QUEUE_DECLARE_METHOD, &qd), "q") ||
            !send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_QUEUE_BIND_METHOD, &qb), "bind"))
            return;
        qos.prefetch_count =
            (uint16_t)(e->copts.max_inflight > 65535 ? 65535 : e->copts.max_inflight);
        send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_BASIC_QOS_METHOD, &qos), "qos");
        consume(b, e, e->queue, false, amqp_empty_table);
        break;
    }
    case EP_SERVE: {
        amqp_queue_bind_t qb;
        memset(&qb, 0, sizeof qb);
        binding_key(e->pattern, key, sizeof key);
        qb.queue = bytes_of(e->queue);
        qb.exchange = bytes_of(EXCHANGE);
        qb.routing_key = bytes_of(key);
        qb.arguments = amqp_empty_table;
        send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_QUEUE_BIND_METHOD, &qb), "bind");
        qos.prefetch_count = 256;
        send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_BASIC_QOS_METHOD, &qos), "qos");
        consume(b, e, e->queue, false, amqp_empty_table);
        break;
    }
    case EP_SUB: {
        /* A private queue; "" names the channel's last declared queue. */
        amqp_queue_declare_t qd;
        amqp_queue_bind_t qb;
        memset(&qd, 0, sizeof qd);
        qd.exclusive = 1;
        qd.auto_delete = 1;
        qd.arguments = amqp_empty_table;
        memset(&qb, 0, sizeof qb);
        binding_key(e->pattern, key, sizeof key);
        qb.exchange = bytes_of(EXCHANGE);
        qb.routing_key = bytes_of(key);
        qb.arguments = amqp_empty_table;
        if (!send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_QUEUE_DECLARE_METHOD, &qd), "q") ||
            !send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_QUEUE_BIND_METHOD, &qb), "bind"))
            return;
        consume(b, e, "", true, amqp_empty_table);
        break;
    }
    }
}

static void close_ep_channel(ab *b, aep *e)
{
    if (e->ch == 0)
        return;
    cb_map_take(&b->chans, e->ch);
    if (b->state == ST_UP) {
        amqp_channel_close_t cc;
        memset(&cc, 0, sizeof cc);
        cc.reply_code = AMQP_REPLY_SUCCESS;
        cc.reply_text = bytes_of("closed");
        /* Unacked deliveries on it are requeued by the server. */
        send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_CHANNEL_CLOSE_METHOD, &cc), "close");
    }
    e->ch = 0;
}

/* ---- deliveries ------------------------------------------------------ */

static void ep_unlink(ab *b, aep *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else if (b->eps == e)
        b->eps = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static void reader_ack(ab *b, aep *e)
{
    if (e->unacked == 0 || e->ch == 0 || b->state != ST_UP)
        return;
    e->unacked = 0;
    send_ok(b, amqp_basic_ack(b->conn, e->ch, e->unacked_tag, 1), "ack");
}

static void reader_finish(aep *e, cb_status s)
{
    e->finished = true;
    e->read_cb(NULL, s, e->ctx);
}

static void reader_caught_up(aep *e)
{
    e->reached_end = true;
    e->caught_up_sent = true;
    if (e->ropts.stop_at_end)
        reader_finish(e, CB_OK);
    else
        e->read_cb(NULL, CB_OK, e->ctx);
}

static void marker_cb(cb_status s, uint64_t seq, int dup, void *ctx)
{
    aep *e = ctx;
    (void)seq;
    (void)dup;
    e->users--;
    if (s != CB_OK && !e->closed && !e->finished && !e->reached_end)
        reader_finish(e, s); /* without its marker the reader cannot know the end */
    ep_maybe_free(e);
}

/* Append the reader's end marker (see aep.marker_id). */
static cb_status reader_mark_end(ab *b, aep *e)
{
    static const char body[] = "{}";
    pub_op *p;
    cb_status st;
    snprintf(e->marker_id, sizeof e->marker_id, "~end/%llx/%p",
             (unsigned long long)cb_time_now_ns(), (void *)e);
    st = pub_new(b, CB__PUB_LOG, "cb.evt.~end", e->marker_id, body, sizeof body - 1, marker_cb, e,
                 &p);
    if (st != CB_OK)
        return st;
    e->users++;
    pub_kick(b, p);
    return CB_OK;
}

static void deliver_stream_msg(ab *b, aep *e, inbound *in);

static void deliver_stream(ab *b, aep *e, inbound *in)
{
    deliver_stream_msg(b, e, in);
}

static void deliver_stream_msg(ab *b, aep *e, inbound *in)
{
    cb_broker_msg m;
    bool dup = false;

    e->last_activity_ns = cb_time_mono_ns();
    e->caught_up_sent = false;
    e->unacked_tag = in->tag;
    if (++e->unacked >= READ_PREFETCH / 2)
        reader_ack(b, e);
    if (in->offset >= 0) {
        if (in->offset <= e->last_offset)
            return; /* already delivered before a reconnect */
        e->last_offset = in->offset;
    }
    if (in->rkey && strncmp(in->rkey, "cb.evt.~", 8) == 0) { /* a reader's end marker */
        if (e->kind == EP_READER && !e->reached_end && !e->finished && in->msg_id &&
            strcmp(in->msg_id, e->marker_id) == 0)
            reader_caught_up(e);
        return;
    }
    if (e->pattern[0] && !cb__subject_match(e->pattern, in->rkey ? in->rkey : ""))
        return;
    if (e->kind == EP_READER && e->ropts.from == CB_READ_TIME && in->time_ns &&
        in->time_ns < e->ropts.time_ns)
        return;
    if (in->msg_id && e->dedup)
        dup = cb_dedup_check(e->dedup, in->msg_id, strlen(in->msg_id)) == 1;
    if (dup)
        return;
    memset(&m, 0, sizeof m);
    m.subject = in->rkey ? in->rkey : "";
    m.data = in->body ? in->body : "";
    m.len = in->size;
    m.seq = in->offset >= 0 ? (uint64_t)in->offset + 1 : 0;
    m.time_ns = in->time_ns;
    m.msg_id = in->msg_id;
    m.deliveries = 1;
    if (e->kind == EP_READER) {
        if (!e->finished)
            e->read_cb(&m, CB_OK, e->ctx);
    } else {
        e->msg_cb(&m, e->ctx);
    }
}

static void deliver(ab *b, amqp_channel_t ch, inbound *in)
{
    cb_broker_msg m;
    aep *e;

    if (ch == PUB_CHANNEL) { /* a direct reply */
        req_op *r = in->corr_id ? cb_map_take(&b->reqs, strtoull(in->corr_id, NULL, 10)) : NULL;
        if (r) {
            if (r->pub)
                r->pub->req_token = 0; /* its confirm no longer matters */
            r->cb(CB_OK, in->body ? in->body : "", in->size, r->ctx);
            cb_free(r);
        }
        return;
    }
    e = cb_map_get(&b->chans, ch);
    if (!e || e->closed)
        return; /* closing: the server requeues what we do not ack */
    if (e->kind == EP_READER || e->kind == EP_KEPT_SUB) {
        deliver_stream(b, e, in);
        return;
    }
    memset(&m, 0, sizeof m);
    m.subject = in->rkey ? in->rkey : "";
    m.data = in->body ? in->body : "";
    m.len = in->size;
    m.msg_id = in->msg_id;
    m.deliveries = (uint64_t)in->deliveries;
    m.time_ns = in->time_ns;
    if (e->kind == EP_SUB) {
        e->msg_cb(&m, e->ctx);
    } else if (e->kind == EP_CONSUMER) {
        awork *w = cb_calloc(1, sizeof *w);
        if (!w) {
            amqp_basic_nack(b->conn, ch, in->tag, 0, 1);
            return;
        }
        w->head.b = &b->base;
        w->e = e;
        w->tag = in->tag;
        w->gen = b->gen;
        w->next = e->works;
        if (e->works)
            e->works->prev = w;
        e->works = w;
        e->users++;
        e->work_cb(&w->head, &m, e->ctx);
    } else if (e->kind == EP_SERVE) {
        areq *rq = cb_calloc(1, sizeof *rq);
        if (!rq) {
            amqp_basic_nack(b->conn, ch, in->tag, 0, 1);
            return;
        }
        rq->head.b = &b->base;
        rq->e = e;
        rq->tag = in->tag;
        rq->gen = b->gen;
        rq->reply_to = in->reply_to;
        rq->corr_id = in->corr_id;
        in->reply_to = in->corr_id = NULL; /* moved */
        e->users++;
        e->serve_cb(&rq->head, &m, e->ctx);
    }
}

static inbound *inbound_for(ab *b, amqp_channel_t ch)
{
    aep *e;
    if (ch == PUB_CHANNEL)
        return &b->pub_in;
    e = cb_map_get(&b->chans, ch);
    return e ? &e->in : NULL;
}

static void handle_channel_close(ab *b, amqp_channel_t ch, amqp_channel_close_t *cc)
{
    amqp_channel_close_ok_t ok = {0};
    aep *e = cb_map_take(&b->chans, ch);

    send_ok(b, amqp_send_method(b->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok), "close-ok");
    if (ch == PUB_CHANNEL) {
        char why[256];
        snprintf(why, sizeof why, "publish channel closed by the server: %u %.*s", cc->reply_code,
                 (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
        conn_lost(b, why); /* reconnect; pending publishes are re-sent */
        return;
    }
    if (!e)
        return;
    CB_LOG_WRN(MOD, "channel for %s closed by the server: %u %.*s", e->queue, cc->reply_code,
               (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
    e->ch = 0;
    if (e->kind == EP_READER && !e->finished && !e->closed)
        reader_finish(e, CB_EBROKER);
    ep_maybe_free(e);
}

static void handle_frame(ab *b, amqp_frame_t *f)
{
    inbound *in;

    if (f->frame_type == AMQP_FRAME_METHOD) {
        amqp_method_t *mt = &f->payload.method;
        switch (mt->id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = mt->decoded;
            on_confirm(b, a->delivery_tag, a->multiple, CB_OK);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *n = mt->decoded;
            on_confirm(b, n->delivery_tag, n->multiple, CB_EBROKER);
            break;
        }
        case AMQP_BASIC_DELIVER_METHOD:
        case AMQP_BASIC_RETURN_METHOD: {
            if (!(in = inbound_for(b, f->channel)))
                break;
            inbound_reset(in);
            in->active = true;
            in->offset = -1;
            in->deliveries = 1;
            if (mt->id == AMQP_BASIC_DELIVER_METHOD) {
                amqp_basic_deliver_t *d = mt->decoded;
                in->tag = d->delivery_tag;
                in->redelivered = d->redelivered;
                in->deliveries = d->redelivered ? 2 : 1;
                in->rkey = dup_bytes(d->routing_key);
            } else {
                in->tag = 0; /* returned: tag 0 marks it */
                in->redelivered = true;
            }
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
            handle_channel_close(b, f->channel, mt->decoded);
            break;
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_connection_close_t *cc = mt->decoded;
            char why[256];
            snprintf(why, sizeof why, "server closed the connection: %u %.*s", cc->reply_code,
                     (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
            conn_lost(b, why);
            break;
        }
        case AMQP_BASIC_CANCEL_METHOD: {
            aep *e = cb_map_get(&b->chans, f->channel);
            CB_LOG_WRN(MOD, "server cancelled the consumer of %s", e ? e->queue : "?");
            break;
        }
        default:
            break; /* *-ok replies of pipelined methods */
        }
        return;
    }
    if (!(in = inbound_for(b, f->channel)) || !in->active)
        return;
    if (f->frame_type == AMQP_FRAME_HEADER) {
        amqp_basic_properties_t *p = f->payload.properties.decoded;
        int64_t v;
        in->size = (size_t)f->payload.properties.body_size;
        in->body = cb_malloc(in->size + 1);
        if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
            in->msg_id = dup_bytes(p->message_id);
        if (p->_flags & AMQP_BASIC_REPLY_TO_FLAG)
            in->reply_to = dup_bytes(p->reply_to);
        if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
            in->corr_id = dup_bytes(p->correlation_id);
        if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
            if (table_int(&p->headers, "x-stream-offset", &v))
                in->offset = v;
            if (table_int(&p->headers, "x-delivery-count", &v))
                in->deliveries = v + 1;
            if (table_int(&p->headers, "x-cb-time", &v))
                in->time_ns = v;
        }
    } else if (f->frame_type == AMQP_FRAME_BODY) {
        size_t n = f->payload.body_fragment.len;
        if (in->body && in->got + n <= in->size)
            memcpy(in->body + in->got, f->payload.body_fragment.bytes, n);
        in->got += n;
    } else {
        return;
    }
    if (in->got >= in->size) {
        amqp_channel_t ch = f->channel;
        in->active = false;
        if (in->body)
            in->body[in->size] = '\0';
        if (in->tag == 0 && ch == PUB_CHANNEL) /* a basic.return */
            on_return(b, in->msg_id, in->corr_id);
        else if (in->body || in->size == 0)
            deliver(b, ch, in);
        /* deliver() may have closed things; the inbound may be gone with its ep */
        in = inbound_for(b, ch);
        if (in && !in->active)
            inbound_reset(in);
    }
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    ab *b = arg; /* borrowed: the broker owns this event */
    struct timeval zero = {0, 0};
    uint64_t gen = b->gen;

    (void)fd;
    (void)what;
    while (b->state == ST_UP && b->gen == gen) {
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(b->conn, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            conn_lost(b, amqp_error_string2(rc));
            return;
        }
        handle_frame(b, &f);
    }
    if (b->state == ST_UP && b->gen == gen)
        amqp_maybe_release_buffers(b->conn);
}

/* ---- connection management ------------------------------------------- */

static void start_connect(ab *b);

static void connect_done(cb_mail *mail, int cancelled)
{
    connect_job *j = (connect_job *)mail;
    ab *b = j->b;

    j->done = true;
    if (cancelled || b->closing) {
        if (j->conn)
            amqp_destroy_connection(j->conn);
        j->conn = NULL;
        if (!j->owned_by_open)
            cb_free(j);
        return;
    }
    if (!j->conn) {
        b->state = ST_DOWN;
        if (b->ever_up)
            CB_LOG_WRN(MOD, "reconnect to %s:%d failed: %s", b->host, b->port, j->err);
        b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : 100;
        if (b->backoff_ms > MAX_BACKOFF_MS)
            b->backoff_ms = MAX_BACKOFF_MS;
        b->next_connect_ns = cb_time_mono_ns() + (int64_t)b->backoff_ms * 1000000;
        if (!j->owned_by_open)
            cb_free(j);
        return;
    }
    b->conn = j->conn;
    j->conn = NULL;
    snprintf(b->server, sizeof b->server, "%s", j->server);
    b->state = ST_UP;
    b->gen++;
    b->backoff_ms = 0;
    b->next_tag = 0;
    b->reply_consumer = false;
    b->next_ch = PUB_CHANNEL + 1;
    cb_map_cleanup(&b->declared);
    b->rd_ev = event_new(b->evb, amqp_get_sockfd(b->conn), EV_READ | EV_PERSIST, read_cb, b);
    event_add(b->rd_ev, NULL);
    if (b->ever_up) {
        b->reconnects++;
        CB_LOG_INF(MOD, "reconnected to %s:%d", b->host, b->port);
    }
    if (!j->owned_by_open)
        cb_free(j);
    b->ever_up = true;
    /* Re-open every endpoint (readers resume after their last offset), then
     * re-send what was not confirmed, in order. */
    for (aep *e = b->eps; e && b->state == ST_UP; e = e->next)
        open_ep_channel(b, e);
    for (pub_op *p = b->pubs_head; p && b->state == ST_UP; p = p->next) {
        p->tag = 0;
        p->returned = false;
        if (p->reply_to && !b->reply_consumer) {
            amqp_basic_consume_t bc;
            memset(&bc, 0, sizeof bc);
            bc.queue = bytes_of(REPLY_TO);
            bc.no_ack = 1;
            bc.arguments = amqp_empty_table;
            send_ok(b, amqp_send_method(b->conn, PUB_CHANNEL, AMQP_BASIC_CONSUME_METHOD, &bc),
                    "consume");
            b->reply_consumer = true;
        }
        if (b->state == ST_UP)
            pub_send(b, p);
    }
}

static void start_connect(ab *b)
{
    connect_job *j = cb_calloc(1, sizeof *j);
    if (!j)
        return; /* the tick retries */
    j->job.mail.fn = connect_done;
    j->job.work = connect_work;
    j->b = b;
    b->state = ST_CONNECTING;
    cb_offload_submit(b->off, &j->job);
}

static void conn_lost(ab *b, const char *why)
{
    if (b->state != ST_UP)
        return;
    if (!b->closing)
        CB_LOG_WRN(MOD, "connection to %s:%d lost (%s); reconnecting", b->host, b->port, why);
    event_free(b->rd_ev);
    b->rd_ev = NULL;
    amqp_destroy_connection(b->conn); /* closes the socket; no blocking close handshake */
    b->conn = NULL;
    b->state = ST_DOWN;
    b->gen++;
    inbound_reset(&b->pub_in);
    /* Channels die with the connection; deliveries not acked are requeued by
     * the server. Unconfirmed publishes stay queued for the next connection. */
    for (aep *e = b->eps; e; e = e->next) {
        if (e->ch)
            cb_map_take(&b->chans, e->ch);
        e->ch = 0;
        inbound_reset(&e->in);
    }
    for (pub_op *p = b->pubs_head; p; p = p->next) {
        if (p->tag)
            cb_map_take(&b->by_tag, p->tag);
        p->tag = 0;
    }
    b->next_connect_ns = cb_time_mono_ns();
}

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
static void expire_requests(ab *b, int64_t now)
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

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    ab *b = arg;
    int64_t now = cb_time_mono_ns();

    (void)fd;
    (void)what;
    if (b->state == ST_DOWN && now >= b->next_connect_ns)
        start_connect(b);
    /* Publishes past their deadline fail. */
    for (pub_op *p = b->pubs_head, *next; p; p = next) {
        next = p->next;
        if (now >= p->deadline_ns)
            pub_finish(b, p, CB_ETIMEDOUT);
    }
    expire_requests(b, now);
    for (aep *e = b->eps, *next; e; e = next) {
        next = e->next;
        if ((e->kind == EP_READER || e->kind == EP_KEPT_SUB) && e->ch && b->state == ST_UP) {
            reader_ack(b, e);
            /* After its marker, a live reader is caught up again when idle. */
            if (e->kind == EP_READER && !e->finished && !e->caught_up_sent && e->reached_end &&
                now - e->last_activity_ns >= (int64_t)READ_IDLE_MS * 1000000) {
                e->caught_up_sent = true;
                if (e->ropts.stop_at_end)
                    reader_finish(e, CB_OK);
                else
                    e->read_cb(NULL, CB_OK, e->ctx);
            }
        }
    }
}

/* ---- endpoints: public operations ------------------------------------ */

static aep *ep_new(ab *b, ep_kind kind, void *ctx)
{
    aep *e = cb_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->h.r.b = &b->base;
    e->kind = kind;
    e->b = b;
    e->ctx = ctx;
    e->last_offset = -1;
    e->next = b->eps;
    if (b->eps)
        b->eps->prev = e;
    b->eps = e;
    return e;
}

static void work_end(awork *w);

static void close_ep(aep *e)
{
    ab *b = e->b;
    if (e->closed)
        return;
    e->closed = true;
    ep_unlink(b, e);
    if (e->kind == EP_READER || e->kind == EP_KEPT_SUB)
        reader_ack(b, e);
    /* Closing the channel hands unacked commands and requests back. */
    close_ep_channel(b, e);
    for (awork *w = e->works, *next; w; w = next) {
        next = w->next;
        w->gen = 0; /* acks after this are no-ops */
        if (w->nak_timer || b->closing)
            work_end(w); /* a held nak, or nobody left to ack: release now */
    }
    ep_maybe_free(e);
}

static cb_status amqp_read(cb_broker *cb, const cb_read_opts *o, cb_read_cb *fn, void *ctx,
                           cb_reader **out)
{
    ab *b = (ab *)cb;
    aep *e;
    if (b->closing)
        return CB_ECLOSED;
    if (!(e = ep_new(b, EP_READER, ctx)))
        return CB_ENOMEM;
    e->read_cb = fn;
    e->ropts = *o;
    e->ropts.filter = NULL;
    snprintf(e->queue, sizeof e->queue, "cb.events");
    snprintf(e->pattern, sizeof e->pattern, "%s", o->filter ? o->filter : "");
    if (cb_dedup_create(DEDUP_IDS, &e->dedup) != CB_OK) {
        ep_unlink(b, e);
        ep_free(e);
        return CB_ENOMEM;
    }
    open_ep_channel(b, e);
    /* Reading only new events: at the end from the start (reported on the
     * first tick, never from inside this call). Otherwise mark the end. */
    if (o->from == CB_READ_NEW)
        e->reached_end = true;
    else if (reader_mark_end(b, e) != CB_OK)
        e->reached_end = true; /* no marker: fall back to idle detection */
    *out = &e->h.r;
    return CB_OK;
}

static void amqp_reader_close(cb_reader *r)
{
    close_ep((aep *)r);
}

static cb_status amqp_subscribe(cb_broker *cb, const char *pattern, int64_t since_ns, cb_msg_cb *fn,
                                void *ctx, cb_sub **out)
{
    ab *b = (ab *)cb;
    bool kept = strncmp(pattern, "cb.done.", 8) == 0;
    aep *e;
    if (b->closing)
        return CB_ECLOSED;
    if (!(e = ep_new(b, kept ? EP_KEPT_SUB : EP_SUB, ctx)))
        return CB_ENOMEM;
    e->msg_cb = fn;
    e->since_ns = since_ns;
    snprintf(e->pattern, sizeof e->pattern, "%s", pattern);
    snprintf(e->queue, sizeof e->queue, "%s", kept ? "cb.done" : "");
    if (kept && cb_dedup_create(DEDUP_IDS / 16, &e->dedup) != CB_OK) {
        ep_unlink(b, e);
        ep_free(e);
        return CB_ENOMEM;
    }
    open_ep_channel(b, e);
    *out = &e->h.s;
    return CB_OK;
}

static cb_status amqp_serve(cb_broker *cb, const char *pattern, cb_serve_cb *fn, void *ctx,
                            cb_sub **out)
{
    ab *b = (ab *)cb;
    aep *e;
    const char *dot;
    if (b->closing)
        return CB_ECLOSED;
    /* The service queue is named by the first two tokens: cb.submit, cb.ctl. */
    if (strncmp(pattern, "cb.", 3) != 0 || !(dot = strchr(pattern + 3, '.')) ||
        (strncmp(pattern, "cb.submit.", 10) && strncmp(pattern, "cb.ctl.", 7)))
        return CB_EINVAL;
    if (!(e = ep_new(b, EP_SERVE, ctx)))
        return CB_ENOMEM;
    e->serve_cb = fn;
    snprintf(e->pattern, sizeof e->pattern, "%s", pattern);
    snprintf(e->queue, sizeof e->queue, "%.*s", (int)(dot - pattern), pattern);
    open_ep_channel(b, e);
    *out = &e->h.s;
    return CB_OK;
}

static void amqp_sub_close(cb_sub *s)
{
    close_ep((aep *)s);
}

static cb_status amqp_consume(cb_broker *cb, const char *subject, const cb_consume_opts *o,
                              cb_work_cb *fn, void *ctx, cb_consumer **out)
{
    ab *b = (ab *)cb;
    aep *e;
    if (b->closing)
        return CB_ECLOSED;
    if (!(e = ep_new(b, EP_CONSUMER, ctx)))
        return CB_ENOMEM;
    e->work_cb = fn;
    e->copts = *o;
    snprintf(e->queue, sizeof e->queue, "%s",
             strncmp(subject, "cb.enqueue.", 11) == 0 ? "cb.submit" : subject);
    open_ep_channel(b, e);
    *out = &e->h.c;
    return CB_OK;
}

static void amqp_consumer_close(cb_consumer *c)
{
    close_ep((aep *)c);
}

static void work_end(awork *w)
{
    aep *e = w->e;
    if (w->prev)
        w->prev->next = w->next;
    else
        e->works = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->nak_timer)
        event_free(w->nak_timer);
    cb_free(w);
    e->users--;
    ep_maybe_free(e);
}

static bool work_live(awork *w)
{
    ab *b = w->e->b;
    return w->gen == b->gen && b->state == ST_UP && w->e->ch && !w->e->closed;
}

static void amqp_work_ack(cb_work *cw)
{
    awork *w = (awork *)cw;
    if (work_live(w))
        send_ok(w->e->b, amqp_basic_ack(w->e->b->conn, w->e->ch, w->tag, 0), "ack");
    work_end(w);
}

static void nak_now(awork *w)
{
    if (work_live(w))
        send_ok(w->e->b, amqp_basic_nack(w->e->b->conn, w->e->ch, w->tag, 0, 1), "nack");
}

static void nak_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    awork *w = arg;
    (void)fd;
    (void)what;
    nak_now(w);
    work_end(w);
}

static void amqp_work_nak(cb_work *cw, int64_t delay_ms)
{
    awork *w = (awork *)cw;
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
    /* RabbitMQ has no delayed requeue: keep holding the command (it stays
     * leased to us, and is requeued if we die) and give it back later. */
    if (delay_ms > 0 && work_live(w) &&
        (w->nak_timer = evtimer_new(w->e->b->evb, nak_timer_cb, w))) {
        evtimer_add(w->nak_timer, &tv);
        /* w stays on the list; the user must not touch it again */
        return;
    }
    nak_now(w);
    work_end(w);
}

static void amqp_work_progress(cb_work *cw)
{
    (void)cw; /* RabbitMQ leases last as long as the connection (docs/broker.md) */
}

/* ---- requests -------------------------------------------------------- */

static cb_status amqp_request(cb_broker *cb, const char *subject, const void *data, size_t len,
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
        bc.queue = bytes_of(REPLY_TO);
        bc.no_ack = 1;
        bc.arguments = amqp_empty_table;
        if (!send_ok(b, amqp_send_method(b->conn, PUB_CHANNEL, AMQP_BASIC_CONSUME_METHOD, &bc),
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
    s = pub_new(b, CB__PUB_KEPT, subject, NULL, data, len, NULL, NULL, &p);
    if (s == CB_OK && (!(p->reply_to = cb_strdup(REPLY_TO)) || !(p->corr_id = cb_strdup(corr)))) {
        pub_finish(b, p, CB_ENOMEM);
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
    pub_kick(b, p);
    return CB_OK;
}

static cb_status amqp_respond(cb_request *creq, const void *data, size_t len)
{
    areq *rq = (areq *)creq;
    aep *e = rq->e;
    ab *b = e->b;
    cb_status s = CB_OK;

    if (b->state != ST_UP) {
        s = CB_ECONN; /* the request is requeued with the connection */
    } else if (rq->reply_to && *rq->reply_to) {
        pub_op *p = NULL;
        s = pub_new(b, CB__PUB_EPHEMERAL, rq->reply_to, NULL, data, len, NULL, NULL, &p);
        if (s == CB_OK) {
            p->direct = true;
            p->mandatory = false;
            if (rq->corr_id && !(p->corr_id = cb_strdup(rq->corr_id))) {
                pub_finish(b, p, CB_ENOMEM);
                s = CB_ENOMEM;
            } else {
                pub_kick(b, p);
            }
        }
    }
    if (rq->gen == b->gen && b->state == ST_UP && e->ch)
        amqp_basic_ack(b->conn, e->ch, rq->tag, 0);
    cb_free(rq->reply_to);
    cb_free(rq->corr_id);
    cb_free(rq);
    e->users--;
    ep_maybe_free(e);
    return s;
}

static void amqp_request_drop(cb_request *creq)
{
    areq *rq = (areq *)creq;
    aep *e = rq->e;
    ab *b = e->b;
    if (rq->gen == b->gen && b->state == ST_UP && e->ch)
        amqp_basic_ack(b->conn, e->ch, rq->tag, 0);
    cb_free(rq->reply_to);
    cb_free(rq->corr_id);
    cb_free(rq);
    e->users--;
    ep_maybe_free(e);
}

/* ---- open / close / health ------------------------------------------- */

static json_t *amqp_health(cb_broker *cb)
{
    ab *b = (ab *)cb;
    return json_pack("{s:s, s:b, s:I, s:s, s:{s:s, s:s, s:i, s:s}}", "driver", "amqp", "connected",
                     b->state == ST_UP, "reconnects", (json_int_t)b->reconnects, "server",
                     b->server, "durability", "storage", "stream and quorum queues on disk",
                     "fsync",
                     "quorum queues (work, submissions) fsync before confirming; the stream "
                     "queues (event log, done) do not",
                     "replicas", (int)b->base.opts.replicas, "note",
                     "a confirmed event survives a killed broker process; against power loss "
                     "run a 3-node cluster (streams replicate)");
}

static bool parse_url(ab *b, const char *url)
{
    struct amqp_connection_info ci;
    char *copy = cb_strdup(url);
    bool ok;
    if (!copy)
        return false;
    amqp_default_connection_info(&ci);
    ok = amqp_parse_url(copy, &ci) == AMQP_STATUS_OK && !ci.ssl;
    if (ok) {
        snprintf(b->host, sizeof b->host, "%s", ci.host);
        snprintf(b->user, sizeof b->user, "%s", ci.user);
        snprintf(b->pass, sizeof b->pass, "%s", ci.password);
        snprintf(b->vhost, sizeof b->vhost, "%s", ci.vhost && *ci.vhost ? ci.vhost : "/");
        b->port = ci.port;
    }
    cb_free(copy);
    return ok;
}

static void drop_req(uint64_t key, void *val, void *arg)
{
    req_op *r = val;
    (void)key;
    (void)arg;
    r->cb(CB_ECLOSED, NULL, 0, r->ctx);
    cb_free(r);
}

static void amqp_close(cb_broker *cb)
{
    ab *b = (ab *)cb;
    cb_map reqs;

    b->closing = true;
    while (b->eps)
        close_ep(b->eps);
    /* Give the server a moment's chance to confirm what is in flight? No:
     * callers wanting that wait for their callbacks before closing. */
    if (b->state == ST_UP) {
        event_free(b->rd_ev);
        b->rd_ev = NULL;
        amqp_destroy_connection(b->conn);
        b->conn = NULL;
        b->state = ST_DOWN;
    }
    cb_offload_destroy(b->off); /* a connect in progress finishes and is dropped */
    cb_mailbox_drain(b->mb);
    while (b->pubs_head) {
        pub_op *p = b->pubs_head;
        p->tag = 0;
        pub_finish(b, p, CB_ECLOSED);
    }
    reqs = b->reqs;
    cb_map_init(&b->reqs);
    cb_map_each(&reqs, drop_req, NULL);
    cb_map_cleanup(&reqs);
    event_free(b->tick);
    cb_mailbox_close(b->mb);
    inbound_reset(&b->pub_in);
    cb_map_cleanup(&b->by_tag);
    cb_map_cleanup(&b->declared);
    cb_map_cleanup(&b->chans);
    cb__broker_base_cleanup(&b->base);
    cb_free(b);
}

static cb_status amqp_open(struct event_base *base, const cb_broker_opts *o, cb_broker **out)
{
    ab *b = cb_calloc(1, sizeof *b);
    struct timeval tick = {0, TICK_MS * 1000};
    connect_job *j = NULL;
    cb_status st = CB_ENOMEM;
    int64_t deadline;

    if (!b)
        return CB_ENOMEM;
    if (cb__broker_base_init(&b->base, &cb__amqp_vt, o) != CB_OK)
        goto out_free_b;
    st = CB_EINVAL;
    if (!parse_url(b, o->url))
        goto out_free_base;
    st = CB_ENOMEM;
    b->evb = base;
    cb_map_init(&b->by_tag);
    cb_map_init(&b->declared);
    cb_map_init(&b->chans);
    cb_map_init(&b->reqs);
    if (cb_mailbox_create(base, 0, &b->mb) != CB_OK)
        goto out_free_base;
    if (cb_offload_create(b->mb, &b->off) != CB_OK)
        goto out_close_mb;
    b->tick = event_new(base, -1, EV_PERSIST, tick_cb, b);
    if (!b->tick)
        goto out_stop_off;
    /* The first connect: on the helper thread too, turning the loop here until
     * it is done, so both paths are the same code. */
    if (!(j = cb_calloc(1, sizeof *j)))
        goto out_free_tick;
    j->job.mail.fn = connect_done;
    j->job.work = connect_work;
    j->b = b;
    j->owned_by_open = true;
    b->state = ST_CONNECTING;
    cb_offload_submit(b->off, &j->job);
    deadline = cb_time_mono_ns() + (o->connect_timeout_ms + 1000) * 1000000;
    while (!j->done && cb_time_mono_ns() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    if (!j->done || b->state != ST_UP) {
        CB_LOG_ERR(MOD, "connect %s:%d: %s", b->host, b->port, j->done ? j->err : "timed out");
        st = CB_ECONN;
        if (!j->done) {
            b->closing = true; /* connect_done drops the late connection */
            cb_offload_destroy(b->off);
            cb_mailbox_drain(b->mb);
            b->off = NULL;
        }
        cb_free(j);
        goto out_free_tick;
    }
    cb_free(j);
    event_add(b->tick, &tick);
    {
        json_t *h = amqp_health(&b->base);
        char *hs = json_dumps(h, JSON_COMPACT);
        CB_LOG_INF(MOD, "connected to %s:%d; durability %s", b->host, b->port, hs ? hs : "?");
        free(hs);
        json_decref(h);
    }
    *out = &b->base;
    return CB_OK;

out_free_tick:
    event_free(b->tick);
out_stop_off:
    cb_offload_destroy(b->off);
out_close_mb:
    cb_mailbox_close(b->mb);
out_free_base:
    cb__broker_base_cleanup(&b->base);
out_free_b:
    cb_free(b);
    return st;
}

const cb__broker_vt cb__amqp_vt = {
    .name = "amqp",
    .append_has_seq = 0,
    .open = amqp_open,
    .close = amqp_close,
    .health = amqp_health,
    .publish = amqp_publish_op,
    .read = amqp_read,
    .reader_close = amqp_reader_close,
    .consume = amqp_consume,
    .consumer_close = amqp_consumer_close,
    .work_ack = amqp_work_ack,
    .work_nak = amqp_work_nak,
    .work_progress = amqp_work_progress,
    .subscribe = amqp_subscribe,
    .serve = amqp_serve,
    .sub_close = amqp_sub_close,
    .request = amqp_request,
    .respond = amqp_respond,
    .request_drop = amqp_request_drop,
};
