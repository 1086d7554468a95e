/* broker/amqp_ep.c - RabbitMQ driver: readers, subscriptions, services and
 * work consumers, each on a channel of its own, and their deliveries. */
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
#include "cb_dedup.h"
#include "cb_log.h"
#include "cb_partition.h"
#include "cb_time.h"

/* ---- channels for endpoints ------------------------------------------ */

static void ep_free(aep *e)
{
    cb__amqp_inbound_reset(&e->in);
    cb_dedup_destroy(e->dedup);
    cb_free(e);
}

void cb__amqp_ep_maybe_free(aep *e)
{
    if (e->closed && e->users == 0 && e->ch == 0)
        ep_free(e);
}

static void consume(ab *b, aep *e, const char *queue, bool no_ack, amqp_table_t args)
{
    amqp_basic_consume_t bc;
    memset(&bc, 0, sizeof bc);
    bc.queue = cb__amqp_bytes(queue);
    bc.no_ack = no_ack;
    bc.arguments = args;
    cb__amqp_send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_BASIC_CONSUME_METHOD, &bc),
                     "consume");
}

static void stream_offset_arg(aep *e, amqp_table_entry_t *en)
{
    en->key = cb__amqp_bytes("x-stream-offset");
    if (e->last_offset >= 0) { /* resuming after a reconnect */
        en->value.kind = AMQP_FIELD_KIND_I64;
        en->value.value.i64 = e->last_offset + 1;
        return;
    }
    if (e->kind == EP_KEPT_SUB) {
        /* From the first, also "since" a time: what comes before it is
         * skipped by its x-cb-time (deliver_stream). Attached at a timestamp,
         * a tenant's done stream made as the consumer attached missed a
         * message published then (1 to 2 in 300 on RabbitMQ 3.10), and the
         * second's granularity let earlier ones through (docs/broker.md). A
         * subscription with no time reads the tenant's stream from its
         * first message anyway. */
        en->value.kind = AMQP_FIELD_KIND_UTF8;
        en->value.value.bytes = cb__amqp_bytes("first");
        return;
    }
    switch (e->ropts.from) {
    case CB_READ_FIRST:
        en->value.kind = AMQP_FIELD_KIND_UTF8;
        en->value.value.bytes = cb__amqp_bytes("first");
        break;
    case CB_READ_SEQ: /* positions are offsets + 1, so that 0 means "none" */
        /* Start earlier and only record the ids before the position, so the
         * de-duplication set holds what a read from the first event would
         * hold there: a projector resuming after a crash drops the same
         * repeats as a rebuild does (docs/broker.md). */
        e->warm_until = e->ropts.seq > 0 ? (int64_t)e->ropts.seq - 1 : 0;
        en->value.kind = AMQP_FIELD_KIND_I64;
        en->value.value.i64 =
            e->warm_until > DEDUP_WARM_OFFSETS ? e->warm_until - DEDUP_WARM_OFFSETS : 0;
        break;
    case CB_READ_TIME: /* second granularity; refined by x-cb-time on delivery */
        en->value.kind = AMQP_FIELD_KIND_TIMESTAMP;
        en->value.value.u64 = (uint64_t)(e->ropts.time_ns / 1000000000);
        break;
    case CB_READ_NEW:
        if (e->opened > 1) {
            /* Opened again (a reconnect) before its first event: from the
             * second before it started, what came before its start skipped
             * by x-cb-time (deliver_stream); "next" would skip what was
             * appended while it was away. */
            en->value.kind = AMQP_FIELD_KIND_TIMESTAMP;
            en->value.value.u64 = (uint64_t)(e->ropts.time_ns / 1000000000) - 1;
            break;
        }
        en->value.kind = AMQP_FIELD_KIND_UTF8;
        en->value.value.bytes = cb__amqp_bytes("next");
        break;
    }
}

/* The tenant's done stream, as the publisher declares it (amqp_pub.c). */
static bool declare_done_stream(ab *b, aep *e)
{
    char key[300];
    snprintf(key, sizeof key, "%s.#", e->queue);
    return cb__amqp_declare_bound(b, e->ch, e->queue, "stream", key);
}

void cb__amqp_open_channel(ab *b, aep *e)
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
    e->opened++;
    if (cb_map_put(&b->chans, e->ch, e) != CB_OK) {
        e->ch = 0;
        return;
    }
    if (!cb__amqp_send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_CHANNEL_OPEN_METHOD, &co),
                          "channel"))
        return;
    memset(&qos, 0, sizeof qos);
    switch (e->kind) {
    case EP_READER:
    case EP_KEPT_SUB:
        qos.prefetch_count = READ_PREFETCH;
        cb__amqp_send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_BASIC_QOS_METHOD, &qos), "qos");
        stream_offset_arg(e, &en[0]);
        e->last_activity_ns = cb_time_mono_ns();
        if (e->kind == EP_KEPT_SUB && e->declare_done && !declare_done_stream(b, e))
            return;
        e->unacked = 0;
        consume(b, e, e->queue, false, args);
        break;
    case EP_CONSUMER: {
        if (!cb__amqp_declare_bound(b, e->ch, e->queue, "quorum", e->queue))
            return;
        qos.prefetch_count =
            (uint16_t)(e->copts.max_inflight > 65535 ? 65535 : e->copts.max_inflight);
        cb__amqp_send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_BASIC_QOS_METHOD, &qos), "qos");
        consume(b, e, e->queue, false, amqp_empty_table);
        break;
    }
    case EP_SERVE: {
        amqp_queue_bind_t qb;
        if (e->own_queue) {
            amqp_queue_declare_t qd;
            memset(&qd, 0, sizeof qd);
            qd.queue = cb__amqp_bytes(e->queue);
            qd.exclusive = 1;
            qd.auto_delete = 1;
            qd.arguments = amqp_empty_table;
            if (!cb__amqp_send_ok(
                    b, amqp_send_method(b->conn, e->ch, AMQP_QUEUE_DECLARE_METHOD, &qd), "queue"))
                return;
        }
        memset(&qb, 0, sizeof qb);
        cb__amqp_binding_key(e->pattern, key, sizeof key);
        qb.queue = cb__amqp_bytes(e->queue);
        qb.exchange = cb__amqp_bytes(EXCHANGE);
        qb.routing_key = cb__amqp_bytes(key);
        qb.arguments = amqp_empty_table;
        cb__amqp_send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_QUEUE_BIND_METHOD, &qb), "bind");
        qos.prefetch_count = 256;
        cb__amqp_send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_BASIC_QOS_METHOD, &qos), "qos");
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
        cb__amqp_binding_key(e->pattern, key, sizeof key);
        qb.exchange = cb__amqp_bytes(EXCHANGE);
        qb.routing_key = cb__amqp_bytes(key);
        qb.arguments = amqp_empty_table;
        if (!cb__amqp_send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_QUEUE_DECLARE_METHOD, &qd),
                              "q") ||
            !cb__amqp_send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_QUEUE_BIND_METHOD, &qb),
                              "bind"))
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
        cc.reply_text = cb__amqp_bytes("closed");
        /* Unacked deliveries on it are requeued by the server. */
        cb__amqp_send_ok(b, amqp_send_method(b->conn, e->ch, AMQP_CHANNEL_CLOSE_METHOD, &cc),
                         "close");
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

void cb__amqp_reader_ack(ab *b, aep *e)
{
    if (e->unacked == 0 || e->ch == 0 || b->state != ST_UP)
        return;
    e->unacked = 0;
    cb__amqp_send_ok(b, amqp_basic_ack(b->conn, e->ch, e->unacked_tag, 1), "ack");
}

void cb__amqp_reader_finish(aep *e, cb_status s)
{
    e->finished = true;
    e->read_cb(NULL, s, e->ctx);
}

void cb__amqp_reader_caught_up(aep *e)
{
    e->reached_end = true;
    e->caught_up_sent = true;
    if (e->ropts.stop_at_end)
        cb__amqp_reader_finish(e, CB_OK);
    else
        e->read_cb(NULL, CB_OK, e->ctx);
}

static void marker_cb(cb_status s, uint64_t seq, int dup, void *ctx)
{
    aep *e = ctx;
    (void)seq;
    (void)dup;
    /* (the marker's hold on e is let go after the callback, which may close it) */
    if (s != CB_OK && !e->closed && !e->finished && !e->reached_end)
        cb__amqp_reader_finish(e, s); /* without its marker the reader cannot know the end */
    e->users--;
    cb__amqp_ep_maybe_free(e);
}

/* Append the reader's end marker (see aep.marker_id). */
static cb_status reader_mark_end(ab *b, aep *e)
{
    static const char body[] = "{}";
    char key[32];
    pub_op *p;
    cb_status st;
    snprintf(e->marker_id, sizeof e->marker_id, "~end/%llx/%p",
             (unsigned long long)cb_time_now_ns(), (void *)e);
    /* on the partition's own log: "cb.evt.~end", "cb.evp.<k>.~end" */
    cb_partition_pattern(e->ropts.partition, "~end", key, sizeof key);
    st = cb__amqp_pub_new(b, CB__PUB_LOG, key, e->marker_id, body, sizeof body - 1, marker_cb, e,
                          &p);
    if (st != CB_OK)
        return st;
    e->users++;
    cb__amqp_pub_kick(b, p);
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
    const char *marker;
    bool dup = false;

    e->last_activity_ns = cb_time_mono_ns();
    e->caught_up_sent = false;
    e->unacked_tag = in->tag;
    if (++e->unacked >= READ_PREFETCH / 2)
        cb__amqp_reader_ack(b, e);
    if (in->offset >= 0) {
        if (in->offset <= e->last_offset)
            return; /* already delivered before a reconnect */
        e->last_offset = in->offset;
    }
    if (in->rkey && (marker = cb_partition_rest(in->rkey)) && *marker == '~') { /* an end marker */
        if (e->kind == EP_READER && !e->reached_end && !e->finished && in->msg_id &&
            strcmp(in->msg_id, e->marker_id) == 0)
            cb__amqp_reader_caught_up(e);
        return;
    }
    if (e->pattern[0] && !cb__subject_match(e->pattern, in->rkey ? in->rkey : ""))
        return;
    if (e->kind == EP_READER && (e->ropts.from == CB_READ_TIME || e->ropts.from == CB_READ_NEW) &&
        in->time_ns && in->time_ns < e->ropts.time_ns)
        return; /* NEW: time_ns is when it started */
    if (e->kind == EP_KEPT_SUB && e->since_ns > 0 && in->time_ns && in->time_ns < e->since_ns)
        return; /* a done message from before the subscription */
    if (in->msg_id && e->dedup)
        dup = cb_dedup_check(e->dedup, in->msg_id, strlen(in->msg_id)) == 1;
    if (dup || (in->offset >= 0 && in->offset < e->warm_until))
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

void cb__amqp_deliver(ab *b, amqp_channel_t ch, inbound *in)
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
        return;     /* closing: the server requeues what we do not ack */
    e->reopens = 0; /* its channel works */
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
        w->opened = e->opened;
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
        rq->opened = e->opened;
        rq->reply_to = in->reply_to;
        rq->corr_id = in->corr_id;
        in->reply_to = in->corr_id = NULL; /* moved */
        e->users++;
        e->serve_cb(&rq->head, &m, e->ctx);
    }
}

void cb__amqp_channel_closed(ab *b, amqp_channel_t ch, amqp_channel_close_t *cc)
{
    amqp_channel_close_ok_t ok = {0};
    aep *e = cb_map_take(&b->chans, ch);

    cb__amqp_send_ok(b, amqp_send_method(b->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
                     "close-ok");
    if (ch == PUB_CHANNEL) {
        char why[256];
        snprintf(why, sizeof why, "publish channel closed by the server: %u %.*s", cc->reply_code,
                 (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
        if (cc->reply_code == AMQP_ACCESS_REFUSED) /* never re-sent: failed */
            cb__amqp_pub_refused(b, why);
        cb__amqp_conn_lost(b, why); /* reconnect; pending publishes are re-sent */
        return;
    }
    if (!e)
        return;
    if (cc->reply_code == AMQP_ACCESS_REFUSED)
        CB_LOG_ERR(MOD, "the broker refused: %.*s", (int)cc->reply_text.len,
                   (const char *)cc->reply_text.bytes);
    else
        CB_LOG_WRN(MOD, "channel for %s closed by the server: %u %.*s", e->queue, cc->reply_code,
                   (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
    e->ch = 0;
    if (e->kind == EP_READER && !e->finished && !e->closed) {
        e->users++; /* its callback may close it: freed below, not under the callback */
        cb__amqp_reader_finish(e, CB_EBROKER);
        e->users--;
    }
    if (e->kind == EP_KEPT_SUB && cc->reply_code == AMQP_NOT_FOUND && !e->declare_done &&
        !e->closed && strcmp(e->queue, "cb.done") != 0) {
        /* no done message of the tenant yet: declare its stream, then read */
        e->declare_done = true;
        cb__amqp_open_channel(b, e);
        return;
    }
    if (e->kind != EP_READER && !e->closed && cc->reply_code != AMQP_ACCESS_REFUSED) {
        /* Open it again in a moment: a stream just declared may not be
         * readable at once ("406 ... does not have a replica on the local
         * node"); a consumer's channel is closed when a delivery was held
         * past the server's consumer_timeout (406: the server requeued what
         * the channel held; the holder's ack is then a no-op, see
         * aep.opened), or when the server's channel process failed. A
         * channel the server keeps closing (a queue declared with other
         * arguments, say) is tried every REOPEN_MS ten times, then less and
         * less often, up to REOPEN_MAX_MS. */
        unsigned over = e->reopens > REOPEN_QUICK ? e->reopens - REOPEN_QUICK : 0;
        int64_t ms = (int64_t)REOPEN_MS << (over < 8 ? over : 8);
        e->reopens++;
        e->reopen_at_ns = cb_time_mono_ns() + (ms < REOPEN_MAX_MS ? ms : REOPEN_MAX_MS) * 1000000;
        return;
    }
    cb__amqp_ep_maybe_free(e);
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

void cb__amqp_close_ep(aep *e)
{
    ab *b = e->b;
    if (e->closed)
        return;
    e->closed = true;
    ep_unlink(b, e);
    if (e->kind == EP_READER || e->kind == EP_KEPT_SUB)
        cb__amqp_reader_ack(b, e);
    /* Closing the channel hands unacked commands and requests back. */
    close_ep_channel(b, e);
    e->users++; /* e stays while its works end (the last would free it) */
    for (awork *w = e->works, *next; w; w = next) {
        next = w->next;
        w->gen = 0; /* acks after this are no-ops */
        if (w->nak_timer || b->closing)
            cb__amqp_work_end(w); /* a held nak, or nobody left to ack: release now */
    }
    e->users--;
    cb__amqp_ep_maybe_free(e);
}

cb_status cb__amqp_read(cb_broker *cb, const cb_read_opts *o, cb_read_cb *fn, void *ctx,
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
    if (o->from == CB_READ_NEW)
        e->ropts.time_ns = cb_time_now_ns(); /* its start (stream_offset_arg) */
    e->ropts.filter = NULL;
    cb__amqp_log_queue(o->partition, e->queue, sizeof e->queue);
    snprintf(e->pattern, sizeof e->pattern, "%s", o->filter ? o->filter : "");
    if (cb_dedup_create(DEDUP_IDS, &e->dedup) != CB_OK) {
        ep_unlink(b, e);
        ep_free(e);
        return CB_ENOMEM;
    }
    cb__amqp_open_channel(b, e);
    /* Reading only new events: at the end from the start (reported on the
     * first tick, never from inside this call). Otherwise mark the end. */
    if (o->from == CB_READ_NEW)
        e->reached_end = true;
    else if (reader_mark_end(b, e) != CB_OK)
        e->reached_end = true; /* no marker: fall back to idle detection */
    *out = &e->h.r;
    return CB_OK;
}

void cb__amqp_reader_close(cb_reader *r)
{
    cb__amqp_close_ep((aep *)r);
}

cb_status cb__amqp_subscribe(cb_broker *cb, const char *pattern, int64_t since_ns, cb_msg_cb *fn,
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
    /* one tenant's done messages from its own stream (docs/broker.md); a
     * daemon declares it first, a client (which may not) only when it is
     * not there yet */
    if (!kept || !cb__amqp_tenant_done_queue(pattern, e->queue, sizeof e->queue))
        snprintf(e->queue, sizeof e->queue, "%s", kept ? "cb.done" : "");
    else
        e->declare_done = !b->base.opts.client;
    if (kept && cb_dedup_create(DEDUP_IDS / 16, &e->dedup) != CB_OK) {
        ep_unlink(b, e);
        ep_free(e);
        return CB_ENOMEM;
    }
    cb__amqp_open_channel(b, e);
    *out = &e->h.s;
    return CB_OK;
}

cb_status cb__amqp_serve(cb_broker *cb, const char *pattern, cb_serve_cb *fn, void *ctx,
                         cb_sub **out)
{
    ab *b = (ab *)cb;
    aep *e;
    const char *dot;
    if (b->closing)
        return CB_ECLOSED;
    /* The service queue is named by the first two tokens: cb.submit, cb.ctl,
     * cb.slactl; one engine's own requests (cb.engine.req.<name>.>) by the
     * first four, a queue that lives with its connection. */
    bool own = !strncmp(pattern, "cb.engine.req.", 14);
    if (strncmp(pattern, "cb.", 3) != 0 || !(dot = strchr(pattern + 3, '.')) ||
        (own && (!(dot = strchr(dot + 1, '.')) || !(dot = strchr(dot + 1, '.')))) ||
        (!own && strncmp(pattern, "cb.submit.", 10) && strncmp(pattern, "cb.ctl.", 7) &&
         strncmp(pattern, "cb.slactl.", 10)))
        return CB_EINVAL;
    if (!(e = ep_new(b, EP_SERVE, ctx)))
        return CB_ENOMEM;
    e->own_queue = own;
    e->serve_cb = fn;
    snprintf(e->pattern, sizeof e->pattern, "%s", pattern);
    snprintf(e->queue, sizeof e->queue, "%.*s", (int)(dot - pattern), pattern);
    cb__amqp_open_channel(b, e);
    *out = &e->h.s;
    return CB_OK;
}

void cb__amqp_sub_close(cb_sub *s)
{
    cb__amqp_close_ep((aep *)s);
}

cb_status cb__amqp_consume(cb_broker *cb, const char *subject, const cb_consume_opts *o,
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
             strncmp(subject, "cb.enqueue.", 11) == 0 ? "cb.enqueue" : subject);
    cb__amqp_open_channel(b, e);
    *out = &e->h.c;
    return CB_OK;
}

void cb__amqp_consumer_close(cb_consumer *c)
{
    cb__amqp_close_ep((aep *)c);
}

void cb__amqp_work_end(awork *w)
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
    cb__amqp_ep_maybe_free(e);
}

static bool work_live(awork *w)
{
    ab *b = w->e->b;
    return w->gen == b->gen && w->opened == w->e->opened && b->state == ST_UP && w->e->ch &&
           !w->e->closed;
}

void cb__amqp_work_ack(cb_work *cw)
{
    awork *w = (awork *)cw;
    if (work_live(w))
        cb__amqp_send_ok(w->e->b, amqp_basic_ack(w->e->b->conn, w->e->ch, w->tag, 0), "ack");
    cb__amqp_work_end(w);
}

static void nak_now(awork *w)
{
    if (work_live(w))
        cb__amqp_send_ok(w->e->b, amqp_basic_nack(w->e->b->conn, w->e->ch, w->tag, 0, 1), "nack");
}

static void nak_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    awork *w = arg;
    (void)fd;
    (void)what;
    nak_now(w);
    cb__amqp_work_end(w);
}

void cb__amqp_work_nak(cb_work *cw, int64_t delay_ms)
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
    cb__amqp_work_end(w);
}

void cb__amqp_work_progress(cb_work *cw)
{
    (void)cw; /* RabbitMQ leases last as long as the connection (docs/broker.md) */
}
