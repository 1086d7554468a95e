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
 * (cb.evt.#) and cb.done (cb.done.#); quorum queues cb.submit (cb.submit.#),
 * cb.enqueue (cb.enqueue.#), cb.ctl (cb.ctl.#), cb.slactl (cb.slactl.#) and cb.invoke.<backend>
 * (declared on first use). Channel 1 publishes in confirm mode and receives direct replies;
 * every reader, consumer and subscription has a channel of its own. */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "amqp_int.h"
#include "cb_json.h"
#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_partition.h"
#include "cb_time.h"

/* ---- small helpers --------------------------------------------------- */

amqp_bytes_t cb__amqp_bytes(const char *s)
{
    return amqp_cstring_bytes(s);
}

char *cb__amqp_dup_bytes(amqp_bytes_t bytes)
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

bool cb__amqp_tenant_done_queue(const char *subject, char *out, size_t size)
{
    const char *t = subject + 8, *end;
    size_t n;
    if (strncmp(subject, "cb.done.", 8) != 0)
        return false;
    end = strchr(t, '.');
    n = end ? (size_t)(end - t) : strlen(t);
    if (n == 0 || memchr(t, '*', n) || memchr(t, '>', n) || n + 9 > size)
        return false;
    snprintf(out, size, "cb.done.%.*s", (int)n, t);
    return true;
}

/* NATS-style pattern ('*', '>') to an AMQP topic binding key ('*', '#'). */
void cb__amqp_binding_key(const char *pattern, char *out, size_t size)
{
    snprintf(out, size, "%s", pattern);
    size_t n = strlen(out);
    if (n && out[n - 1] == '>')
        out[n - 1] = '#';
}

void cb__amqp_inbound_reset(inbound *in)
{
    cb_free(in->rkey);
    cb_free(in->body);
    cb_free(in->msg_id);
    cb_free(in->reply_to);
    cb_free(in->corr_id);
    memset(in, 0, sizeof *in);
}

bool cb__amqp_send_ok(ab *b, int rc, const char *what)
{
    if (rc == AMQP_STATUS_OK)
        return true;
    char why[160];
    snprintf(why, sizeof why, "%s: %s", what, amqp_error_string2(rc));
    cb__amqp_conn_lost(b, why);
    return false;
}

typedef struct connect_job {
    cb_offload_job job;
    ab *b;
    amqp_connection_state_t conn;
    char err[640];
    char server[64];
    bool done;
    bool owned_by_open; /* the first connect: amqp_open frees the job */
    bool refused;       /* the server refused the login: trying again will not help */
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
        {"cb.events", "cb.evt.#"},      {"cb.done", "cb.done.#"}, {"cb.submit", "cb.submit.#"},
        {"cb.enqueue", "cb.enqueue.#"}, {"cb.ctl", "cb.ctl.#"},   {"cb.slactl", "cb.slactl.#"},
    };
    static const char *const queues[][2] = {{"cb.events", "stream"}, {"cb.done", "stream"},
                                            {"cb.submit", "quorum"}, {"cb.enqueue", "quorum"},
                                            {"cb.ctl", "quorum"},    {"cb.slactl", "quorum"}};

    j->conn = amqp_new_connection();
    if (!j->conn ||
        !(sock = b->tls ? amqp_ssl_socket_new(j->conn) : amqp_tcp_socket_new(j->conn))) {
        snprintf(j->err, sizeof j->err, "out of memory");
        goto fail;
    }
    if (b->tls) { /* amqps: the broker's certificate verified, and its name */
        amqp_ssl_socket_set_verify_peer(sock, 1);
        amqp_ssl_socket_set_verify_hostname(sock, 1);
        if (b->ca_file[0] && amqp_ssl_socket_set_cacert(sock, b->ca_file) != AMQP_STATUS_OK) {
            snprintf(j->err, sizeof j->err, "TLS: cannot read the CA file %s", b->ca_file);
            goto fail;
        }
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
        j->refused = true;
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
    if (b->base.opts.client) /* a tenant may not declare; the stack has */
        goto confirm;
    amqp_exchange_declare(j->conn, PUB_CHANNEL, cb__amqp_bytes(EXCHANGE), cb__amqp_bytes("topic"),
                          0, 1, 0, 0, amqp_empty_table);
    if (!rpc_ok(j, "exchange.declare cb"))
        goto fail;
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++) {
        amqp_queue_declare(j->conn, PUB_CHANNEL, cb__amqp_bytes(queues[i][0]), 0, 1, 0, 0,
                           cb__amqp_queue_args(e, queues[i][1]));
        if (!rpc_ok(j, queues[i][0]))
            goto fail;
    }
    for (size_t i = 0; i < sizeof bindings / sizeof bindings[0]; i++) {
        amqp_queue_bind(j->conn, PUB_CHANNEL, cb__amqp_bytes(bindings[i][0]),
                        cb__amqp_bytes(EXCHANGE), cb__amqp_bytes(bindings[i][1]), amqp_empty_table);
        if (!rpc_ok(j, "queue.bind"))
            goto fail;
    }
    for (int k = 1; k < b->base.opts.partitions; k++) { /* each partition's log but 0's */
        char queue[32], key[32];
        cb__amqp_log_queue((unsigned)k, queue, sizeof queue);
        cb_partition_pattern((unsigned)k, "#", key, sizeof key);
        amqp_queue_declare(j->conn, PUB_CHANNEL, cb__amqp_bytes(queue), 0, 1, 0, 0,
                           cb__amqp_queue_args(e, "stream"));
        if (!rpc_ok(j, queue))
            goto fail;
        amqp_queue_bind(j->conn, PUB_CHANNEL, cb__amqp_bytes(queue), cb__amqp_bytes(EXCHANGE),
                        cb__amqp_bytes(key), amqp_empty_table);
        if (!rpc_ok(j, "queue.bind"))
            goto fail;
    }
confirm:
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

static inbound *inbound_for(ab *b, amqp_channel_t ch)
{
    aep *e;
    if (ch == PUB_CHANNEL)
        return &b->pub_in;
    e = cb_map_get(&b->chans, ch);
    return e ? &e->in : NULL;
}

static void handle_frame(ab *b, amqp_frame_t *f)
{
    inbound *in;

    if (f->frame_type == AMQP_FRAME_METHOD) {
        amqp_method_t *mt = &f->payload.method;
        switch (mt->id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = mt->decoded;
            cb__amqp_on_confirm(b, a->delivery_tag, a->multiple, CB_OK);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *n = mt->decoded;
            cb__amqp_on_confirm(b, n->delivery_tag, n->multiple, CB_EBROKER);
            break;
        }
        case AMQP_BASIC_DELIVER_METHOD:
        case AMQP_BASIC_RETURN_METHOD: {
            if (!(in = inbound_for(b, f->channel)))
                break;
            cb__amqp_inbound_reset(in);
            in->active = true;
            in->offset = -1;
            in->deliveries = 1;
            if (mt->id == AMQP_BASIC_DELIVER_METHOD) {
                amqp_basic_deliver_t *d = mt->decoded;
                in->tag = d->delivery_tag;
                in->redelivered = d->redelivered;
                in->deliveries = d->redelivered ? 2 : 1;
                in->rkey = cb__amqp_dup_bytes(d->routing_key);
            } else {
                in->tag = 0; /* returned: tag 0 marks it */
                in->redelivered = true;
            }
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
            cb__amqp_channel_closed(b, f->channel, mt->decoded);
            break;
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_connection_close_t *cc = mt->decoded;
            char why[256];
            snprintf(why, sizeof why, "server closed the connection: %u %.*s", cc->reply_code,
                     (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
            cb__amqp_conn_lost(b, why);
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
            in->msg_id = cb__amqp_dup_bytes(p->message_id);
        if (p->_flags & AMQP_BASIC_REPLY_TO_FLAG)
            in->reply_to = cb__amqp_dup_bytes(p->reply_to);
        if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
            in->corr_id = cb__amqp_dup_bytes(p->correlation_id);
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
            cb__amqp_on_return(b, in->msg_id, in->corr_id);
        else if (in->body || in->size == 0)
            cb__amqp_deliver(b, ch, in);
        /* cb__amqp_deliver() may have closed things; the inbound may be gone with its ep */
        in = inbound_for(b, ch);
        if (in && !in->active)
            cb__amqp_inbound_reset(in);
    }
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    ab *b = arg; /* borrowed: the broker owns this event */
    struct timeval zero = {0, 0};
    uint64_t gen = b->gen;

    (void)fd;
    (void)what;
    for (unsigned n = 1; b->state == ST_UP && b->gen == gen; n++) {
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(b->conn, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            cb__amqp_conn_lost(b, amqp_error_string2(rc));
            return;
        }
        handle_frame(b, &f);
        /* Frames are decoded into the connection's pool, freed only by a
         * release: while a backlog keeps the socket readable this loop may
         * not end for minutes, so release as it goes (handle_frame copied
         * what it keeps). */
        if (n % RELEASE_EVERY == 0 && b->state == ST_UP && b->gen == gen)
            amqp_maybe_release_buffers(b->conn);
    }
    if (b->state == ST_UP && b->gen == gen)
        amqp_maybe_release_buffers(b->conn);
}

/* ---- connection management ------------------------------------------- */

static void start_connect(ab *b);

/* Connect to node i of the list next. */
static void use_node(ab *b, int i)
{
    b->node = i;
    snprintf(b->host, sizeof b->host, "%s", b->nodes[i].host);
    b->port = b->nodes[i].port;
}

/* The node a failed connect tried (the driver has moved on to the next). */
static const struct amqp_node *tried_node(const ab *b)
{
    return &b->nodes[(b->node + b->nnodes - 1) % b->nnodes];
}

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
        use_node(b, (b->node + 1) % b->nnodes);
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
        cb__amqp_open_channel(b, e);
    for (pub_op *p = b->pubs_head; p && b->state == ST_UP; p = p->next) {
        p->tag = 0;
        p->returned = false;
        if (p->reply_to && !b->reply_consumer) {
            amqp_basic_consume_t bc;
            memset(&bc, 0, sizeof bc);
            bc.queue = cb__amqp_bytes(REPLY_TO);
            bc.no_ack = 1;
            bc.arguments = amqp_empty_table;
            cb__amqp_send_ok(b,
                             amqp_send_method(b->conn, PUB_CHANNEL, AMQP_BASIC_CONSUME_METHOD, &bc),
                             "consume");
            b->reply_consumer = true;
        }
        if (b->state == ST_UP)
            cb__amqp_pub_send(b, p);
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

void cb__amqp_conn_lost(ab *b, const char *why)
{
    if (b->state != ST_UP)
        return;
    if (!b->closing)
        CB_LOG_WRN(MOD, "connection to %s:%d lost (%s); reconnecting%s", b->host, b->port, why,
                   b->nnodes > 1 ? " to the next node" : "");
    use_node(b, (b->node + 1) % b->nnodes); /* the lost node is likely down */
    event_free(b->rd_ev);
    b->rd_ev = NULL;
    amqp_destroy_connection(b->conn); /* closes the socket; no blocking close handshake */
    b->conn = NULL;
    b->state = ST_DOWN;
    b->gen++;
    cb__amqp_inbound_reset(&b->pub_in);
    /* Channels die with the connection; deliveries not acked are requeued by
     * the server. Unconfirmed publishes stay queued for the next connection. */
    for (aep *e = b->eps; e; e = e->next) {
        if (e->ch)
            cb_map_take(&b->chans, e->ch);
        e->ch = 0;
        cb__amqp_inbound_reset(&e->in);
    }
    for (pub_op *p = b->pubs_head; p; p = p->next) {
        if (p->tag)
            cb_map_take(&b->by_tag, p->tag);
        p->tag = 0;
    }
    b->next_connect_ns = cb_time_mono_ns();
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    ab *b = arg;
    int64_t now = cb_time_mono_ns();

    (void)fd;
    (void)what;
    if (b->state == ST_DOWN && now >= b->next_connect_ns)
        start_connect(b);
    /* Publishes past their deadline fail, and say so once per tick. */
    size_t expired = 0;
    for (pub_op *p = b->pubs_head, *next; p; p = next) {
        next = p->next;
        if (now >= p->deadline_ns) {
            cb__amqp_pub_finish(b, p, CB_ETIMEDOUT);
            expired++;
        }
    }
    if (expired)
        CB_LOG_WRN(MOD, "%zu publishes not confirmed within %lld ms (%s): failed", expired,
                   (long long)b->base.opts.op_timeout_ms,
                   b->state == ST_UP ? "connected" : "disconnected");
    cb__amqp_expire_requests(b, now);
    for (aep *e = b->eps, *next; e; e = next) {
        next = e->next;
        if (e->kind != EP_READER && !e->ch && e->reopen_at_ns && now >= e->reopen_at_ns &&
            b->state == ST_UP && !e->closed) {
            e->reopen_at_ns = 0;
            cb__amqp_open_channel(b, e);
        }
        if ((e->kind == EP_READER || e->kind == EP_KEPT_SUB) && e->ch && b->state == ST_UP) {
            cb__amqp_reader_ack(b, e);
            /* After its marker, a live reader is caught up again when idle. */
            if (e->kind == EP_READER && !e->finished && !e->caught_up_sent && e->reached_end &&
                now - e->last_activity_ns >= (int64_t)READ_IDLE_MS * 1000000) {
                e->caught_up_sent = true;
                if (e->ropts.stop_at_end)
                    cb__amqp_reader_finish(e, CB_OK);
                else
                    e->read_cb(NULL, CB_OK, e->ctx);
            }
        }
    }
}

/* ---- open / close / health ------------------------------------------- */

static void amqp_reset(cb_broker *cb, const char *why)
{
    ab *b = (ab *)cb;
    if (b->state == ST_UP && !b->closing) /* else a connect is under way already */
        cb__amqp_conn_lost(b, why);
}

static json_t *amqp_health(cb_broker *cb)
{
    ab *b = (ab *)cb;
    return json_pack("{s:s, s:b, s:I, s:s, s:{s:s, s:s, s:i, s:s}}", "driver", "amqp", "connected",
                     b->state == ST_UP, "reconnects", (json_int_t)b->reconnects, "server",
                     b->server, "durability", "storage", "stream and quorum queues on disk",
                     "fsync",
                     "quorum queues (work, submissions) fsync before confirming; the stream "
                     "queues (event log, done) do not",
                     "replicas", 0, "note",
                     "replicas are the cluster's (quorum and stream queues: up to 3 members), "
                     "which AMQP 0-9-1 does not tell a client; a confirmed event survives a "
                     "killed broker process; against power loss run a 3-node cluster");
}

/* One URL of the list, [url, end): the first sets the scheme, user,
 * password and vhost, and the others must name the same (one cluster). */
static bool parse_one(ab *b, const char *url, size_t len)
{
    struct amqp_connection_info ci;
    char *copy = cb_malloc(len + 1);
    const char *vhost;
    bool ok;
    if (!copy)
        return false;
    memcpy(copy, url, len);
    copy[len] = '\0';
    amqp_default_connection_info(&ci);
    ok = amqp_parse_url(copy, &ci) == AMQP_STATUS_OK && b->nnodes < CB_AMQP_MAX_NODES &&
         strlen(ci.host) < sizeof b->nodes[0].host;
    vhost = ok && ci.vhost && *ci.vhost ? ci.vhost : "/";
    if (ok && b->nnodes == 0) {
        b->tls = ci.ssl;
        snprintf(b->user, sizeof b->user, "%s", ci.user);
        snprintf(b->pass, sizeof b->pass, "%s", ci.password);
        snprintf(b->vhost, sizeof b->vhost, "%s", vhost);
    } else if (ok && (b->tls != (bool)ci.ssl || strcmp(b->user, ci.user) ||
                      strcmp(b->pass, ci.password) || strcmp(b->vhost, vhost))) {
        CB_LOG_ERR(MOD, "the URLs of a list name one cluster: the same scheme, user, password and "
                        "vhost in each");
        ok = false;
    }
    if (ok) {
        snprintf(b->nodes[b->nnodes].host, sizeof b->nodes[0].host, "%s", ci.host);
        b->nodes[b->nnodes++].port = ci.port;
    }
    cb_free(copy);
    return ok;
}

/* "amqp://u:p@h1:5672/v" or a list of such URLs, separated by commas: the
 * nodes of one cluster, tried in turn. */
static bool parse_url(ab *b, const char *url)
{
    for (const char *p = url;;) {
        size_t n = strcspn(p, ",");
        if (!parse_one(b, p, n))
            return false;
        if (!p[n])
            break;
        p += n + 1;
    }
    use_node(b, 0);
    return true;
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
        cb__amqp_close_ep(b->eps);
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
        cb__amqp_pub_finish(b, p, CB_ECLOSED);
    }
    reqs = b->reqs;
    cb_map_init(&b->reqs);
    cb_map_each(&reqs, drop_req, NULL);
    cb_map_cleanup(&reqs);
    event_free(b->tick);
    cb_mailbox_close(b->mb);
    cb__amqp_inbound_reset(&b->pub_in);
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
    snprintf(b->ca_file, sizeof b->ca_file, "%s", o->ca_file ? o->ca_file : "");
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
     * it is done, so both paths are the same code; each node of a list in
     * turn until one takes it (a refused login is not tried elsewhere). */
    deadline = cb_time_mono_ns() + (o->connect_timeout_ms + 1000) * 1000000;
    for (int tried = 1;; tried++) {
        if (!(j = cb_calloc(1, sizeof *j)))
            goto out_free_tick;
        j->job.mail.fn = connect_done;
        j->job.work = connect_work;
        j->b = b;
        j->owned_by_open = true;
        b->state = ST_CONNECTING;
        cb_offload_submit(b->off, &j->job);
        while (!j->done && cb_time_mono_ns() < deadline)
            event_base_loop(base, EVLOOP_ONCE);
        if (!j->done || b->state == ST_UP || j->refused || tried >= b->nnodes)
            break;
        CB_LOG_WRN(MOD, "connect %s:%d: %s; trying the next node", tried_node(b)->host,
                   tried_node(b)->port, j->err);
        cb_free(j);
    }
    if (!j->done || b->state != ST_UP) {
        const struct amqp_node *n = j->done ? tried_node(b) : &b->nodes[b->node];
        CB_LOG_ERR(MOD, "connect %s:%d: %s", n->host, n->port, j->done ? j->err : "timed out");
        st = j->done && j->refused ? CB_EBROKER : CB_ECONN;
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
        char *hs = cb_json_dumps(h, JSON_COMPACT);
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
    .publish = cb__amqp_publish,
    .read = cb__amqp_read,
    .reader_close = cb__amqp_reader_close,
    .consume = cb__amqp_consume,
    .consumer_close = cb__amqp_consumer_close,
    .work_ack = cb__amqp_work_ack,
    .work_nak = cb__amqp_work_nak,
    .work_progress = cb__amqp_work_progress,
    .subscribe = cb__amqp_subscribe,
    .serve = cb__amqp_serve,
    .sub_close = cb__amqp_sub_close,
    .request = cb__amqp_request,
    .respond = cb__amqp_respond,
    .request_drop = cb__amqp_request_drop,
    .reset = amqp_reset,
};
