/* broker/broker.c - argument checks and dispatch to the driver. */
#include "broker_int.h"

#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_partition.h"
#include "cb_url.h"

void cb_broker_opts_init(cb_broker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->replicas = 1;
    o->op_timeout_ms = 10000;
    o->max_msg_bytes = 1 << 20;
    o->dedup_window_ms = 120000;
    o->connect_timeout_ms = 5000;
    o->partitions = 1;
    o->ca_file = getenv("CB_BROKER_CA_FILE");
    if (o->ca_file && !*o->ca_file)
        o->ca_file = NULL;
}

void cb_read_opts_init(cb_read_opts *o)
{
    memset(o, 0, sizeof *o);
    o->from = CB_READ_FIRST;
}

void cb_consume_opts_init(cb_consume_opts *o)
{
    o->max_inflight = 64;
    o->lease_ms = 30000;
}

cb_status cb__broker_base_init(cb_broker *b, const cb__broker_vt *vt, const cb_broker_opts *o)
{
    b->vt = vt;
    b->opts = *o;
    b->url = cb_strdup(o->url);
    if (!b->url)
        return CB_ENOMEM;
    b->opts.url = b->url;
    b->opts.name = NULL; /* not kept: drivers copy what they need at open */
    return CB_OK;
}

void cb__broker_base_cleanup(cb_broker *b)
{
    cb_free(b->url);
    b->url = NULL;
}

static int token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int cb__subject_valid(const char *s, int allow_wild)
{
    const char *p = s;
    if (!s || !*s || strlen(s) > 512)
        return 0;
    for (;;) {
        const char *start = p;
        if (allow_wild && *p == '>' && (p[1] == '\0'))
            return 1;
        if (allow_wild && *p == '*' && (p[1] == '.' || p[1] == '\0')) {
            p++;
        } else {
            while (token_char(*p))
                p++;
            if (p == start)
                return 0;
        }
        if (*p == '\0')
            return 1;
        if (*p != '.')
            return 0;
        p++;
    }
}

int cb__subject_match(const char *pattern, const char *subject)
{
    const char *p = pattern, *s = subject;
    for (;;) {
        size_t pl = strcspn(p, "."), sl = strcspn(s, ".");
        if (pl == 1 && *p == '>')
            return sl > 0;
        if (sl == 0 || (!(pl == 1 && *p == '*') && (pl != sl || memcmp(p, s, pl) != 0)))
            return 0;
        p += pl;
        s += sl;
        if (*p == '\0' || *s == '\0')
            return *p == '\0' && *s == '\0';
        p++;
        s++;
    }
}

static const cb__broker_vt *driver_for(const char *url)
{
    if (!url)
        return NULL;
    if (strncmp(url, "nats://", 7) == 0 || strncmp(url, "tls://", 6) == 0)
        return &cb__nats_vt;
    if (strncmp(url, "amqp://", 7) == 0 || strncmp(url, "amqps://", 8) == 0)
        return &cb__amqp_vt;
    return NULL;
}

bool cb_broker_url_known(const char *url)
{
    return driver_for(url) != NULL;
}

cb_status cb_broker_open(struct event_base *base, const cb_broker_opts *o, cb_broker **out)
{
    const cb__broker_vt *vt = driver_for(o ? o->url : NULL);
    char url[2048];
    cb_broker_opts with = o ? *o : (cb_broker_opts){0};
    cb_status s;
    if (!base || !vt || o->op_timeout_ms <= 0 || o->max_msg_bytes == 0 || o->replicas < 1 ||
        o->partitions < 1 || o->partitions > CB_PARTITIONS_MAX)
        return CB_EINVAL;
    /* the password may come from the environment rather than the URL */
    if ((s = cb_url_with_password(o->url, url, sizeof url)) != CB_OK) {
        CB_LOG_ERR("broker", "the broker password: cannot read $CB_BROKER_PASSWORD_FILE (%s)",
                   getenv("CB_BROKER_PASSWORD_FILE"));
        return s;
    }
    with.url = url;
    return vt->open(base, &with, out);
}

void cb_broker_close(cb_broker *b)
{
    if (b)
        b->vt->close(b);
}

const char *cb_broker_driver(const cb_broker *b)
{
    return b->vt->name;
}

json_t *cb_broker_health(cb_broker *b)
{
    return b->vt->health(b);
}

cb_status cb_broker_reset(cb_broker *b, const char *why)
{
    if (!b->vt->reset)
        return CB_EUNSUPP;
    b->vt->reset(b, why ? why : "reset");
    return CB_OK;
}

int cb_broker_append_has_seq(const cb_broker *b)
{
    return b->vt->append_has_seq;
}

static cb_status check_publish(cb_broker *b, const char *subject, const char *prefix,
                               const void *data, size_t len)
{
    if (!cb__subject_valid(subject, 0) || (prefix && strncmp(subject, prefix, strlen(prefix))) ||
        (!data && len))
        return CB_EINVAL;
    if (len > b->opts.max_msg_bytes)
        return CB_ETOOBIG;
    return CB_OK;
}

cb_status cb_broker_append(cb_broker *b, const char *subject, const char *msg_id, const void *data,
                           size_t len, cb_publish_cb *cb, void *ctx)
{
    cb_status s = check_publish(b, subject, NULL, data, len);
    if (s != CB_OK)
        return s;
    if (!cb_partition_rest(subject))
        return CB_EINVAL;
    if (!msg_id || !*msg_id || !cb)
        return CB_EINVAL;
    return b->vt->publish(b, CB__PUB_LOG, subject, msg_id, data, len, cb, ctx);
}

cb_status cb_broker_put(cb_broker *b, const char *subject, const char *msg_id, const void *data,
                        size_t len, cb_publish_cb *cb, void *ctx)
{
    cb_status s = check_publish(b, subject, NULL, data, len);
    if (s != CB_OK)
        return s;
    if ((strncmp(subject, "cb.invoke.", 10) && strncmp(subject, "cb.enqueue.", 11)) || !msg_id ||
        !*msg_id || !cb)
        return CB_EINVAL;
    return b->vt->publish(b, CB__PUB_WORK, subject, msg_id, data, len, cb, ctx);
}

cb_status cb_broker_notify(cb_broker *b, const char *subject, const char *msg_id, const void *data,
                           size_t len, cb_publish_cb *cb, void *ctx)
{
    cb_status s = check_publish(b, subject, NULL, data, len);
    int kept = strncmp(subject, "cb.done.", 8) == 0;
    if (s != CB_OK)
        return s;
    if (cb_partition_rest(subject) || strncmp(subject, "cb.invoke.", 10) == 0 ||
        strncmp(subject, "cb.enqueue.", 11) == 0)
        return CB_EINVAL; /* those have their own calls */
    if (kept && (!msg_id || !*msg_id || !cb))
        return CB_EINVAL;
    return b->vt->publish(b, kept ? CB__PUB_KEPT : CB__PUB_EPHEMERAL, subject, msg_id, data, len,
                          cb, ctx);
}

cb_status cb_broker_read(cb_broker *b, const cb_read_opts *o, cb_read_cb *cb, void *ctx,
                         cb_reader **out)
{
    if (!o || !cb || !out)
        return CB_EINVAL;
    if (o->partition >= CB_PARTITIONS_MAX ||
        (o->filter && (!cb__subject_valid(o->filter, 1) ||
                       cb_partition_of_pattern(o->filter) != (int)o->partition)))
        return CB_EINVAL;
    if (o->from == CB_READ_SEQ && o->seq == 0)
        return CB_EINVAL;
    return b->vt->read(b, o, cb, ctx, out);
}

void cb_reader_close(cb_reader *r)
{
    if (r)
        r->b->vt->reader_close(r);
}

cb_status cb_broker_consume(cb_broker *b, const char *subject, const cb_consume_opts *o,
                            cb_work_cb *cb, void *ctx, cb_consumer **out)
{
    cb_consume_opts def;
    if (!o) {
        cb_consume_opts_init(&def);
        o = &def;
    }
    /* invocation queues one by one; submissions may be taken for all tenants (cb.enqueue.>) */
    int enqueue = strncmp(subject, "cb.enqueue.", 11) == 0;
    if (!cb__subject_valid(subject, enqueue) || (strncmp(subject, "cb.invoke.", 10) && !enqueue) ||
        !cb || !out || o->max_inflight <= 0 || o->lease_ms <= 0)
        return CB_EINVAL;
    return b->vt->consume(b, subject, o, cb, ctx, out);
}

void cb_consumer_close(cb_consumer *c)
{
    if (c)
        c->b->vt->consumer_close(c);
}

void cb_work_ack(cb_work *w)
{
    w->b->vt->work_ack(w);
}

void cb_work_nak(cb_work *w, int64_t delay_ms)
{
    w->b->vt->work_nak(w, delay_ms < 0 ? 0 : delay_ms);
}

void cb_work_progress(cb_work *w)
{
    w->b->vt->work_progress(w);
}

cb_status cb_broker_subscribe(cb_broker *b, const char *pattern, int64_t since_ns, cb_msg_cb *cb,
                              void *ctx, cb_sub **out)
{
    if (!cb__subject_valid(pattern, 1) || !cb || !out)
        return CB_EINVAL;
    return b->vt->subscribe(b, pattern, since_ns, cb, ctx, out);
}

void cb_sub_close(cb_sub *s)
{
    if (s)
        s->b->vt->sub_close(s);
}

cb_status cb_broker_request(cb_broker *b, const char *subject, const void *data, size_t len,
                            int64_t timeout_ms, cb_reply_cb *cb, void *ctx)
{
    cb_status s = check_publish(b, subject, NULL, data, len);
    if (s != CB_OK)
        return s;
    if (!cb || timeout_ms <= 0)
        return CB_EINVAL;
    return b->vt->request(b, subject, data, len, timeout_ms, cb, ctx);
}

cb_status cb_broker_serve(cb_broker *b, const char *pattern, cb_serve_cb *cb, void *ctx,
                          cb_sub **out)
{
    if (!cb__subject_valid(pattern, 1) || !cb || !out)
        return CB_EINVAL;
    return b->vt->serve(b, pattern, cb, ctx, out);
}

cb_status cb_request_respond(cb_request *req, const void *data, size_t len)
{
    if (len > req->b->opts.max_msg_bytes) {
        req->b->vt->request_drop(req);
        return CB_ETOOBIG;
    }
    return req->b->vt->respond(req, data, len);
}

void cb_request_drop(cb_request *req)
{
    if (req)
        req->b->vt->request_drop(req);
}
