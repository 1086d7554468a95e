/* broker/amqp_int.h - what the RabbitMQ driver's files (amqp.c, amqp_pub.c,
 * amqp_ep.c) share. Everything here runs on the broker's loop thread. */
#ifndef CB_AMQP_INT_H
#define CB_AMQP_INT_H
#include <amqp.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker_int.h"
#include "cb_dedup.h"
#include "cb_mailbox.h"
#include "cb_map.h"
#include "cb_offload.h"

#define MOD                "amqp"
#define EXCHANGE           "cb"
#define PUB_CHANNEL        1
#define FRAME_MAX          131072
#define TICK_MS            50
#define REOPEN_MS          200   /* a channel closed by the server: opened again after, */
#define REOPEN_QUICK       10    /* times; then doubling while it keeps being closed */
#define REOPEN_MAX_MS      30000 /* without a delivery in between, up to this */
#define READ_PREFETCH      2000
#define RELEASE_EVERY      64  /* frames decoded between releases of librabbitmq's pool */
#define READ_IDLE_MS       250 /* live readers: no delivery for this long after the end: caught up */
#define DEDUP_IDS          65536           /* per reader; ~2.5 MB when full (docs/broker.md) */
#define DEDUP_WARM_OFFSETS (2 * DEDUP_IDS) /* read before a start position (CB_READ_SEQ) */
#define REPLY_TO           "amq.rabbitmq.reply-to"
#define MAX_BACKOFF_MS     2000

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
    uint64_t gen;    /* connection generation the tag belongs to */
    uint64_t opened; /* and the endpoint's channel (aep.opened) */
    struct event *nak_timer;
    struct awork *prev, *next;
} awork;

typedef struct areq {
    struct cb_request head;
    aep *e;
    uint64_t tag, gen, opened; /* as in awork */
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
    uint64_t opened;   /* channels opened so far: a delivery's tag is good on its own only */
    bool closed, finished;
    aep *prev, *next;
    void *ctx;
    cb_read_cb *read_cb;
    cb_msg_cb *msg_cb;
    cb_serve_cb *serve_cb;
    bool own_queue; /* EP_SERVE of one daemon's requests: a queue of its own */
    cb_work_cb *work_cb;
    char queue[256];   /* what it consumes */
    char pattern[256]; /* client-side subject filter, NATS syntax; "" = all */
    inbound in;
    /* readers */
    cb_read_opts ropts;
    int64_t last_offset; /* -1: nothing delivered yet */
    int64_t warm_until;  /* offsets below only fill the de-duplication set */
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
    bool declare_done;    /* kept: declare and bind the tenant's done stream first */
    int64_t reopen_at_ns; /* the server closed its channel: open again then (0: no) */
    unsigned reopens;     /* closed by the server since its last delivery */
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

#define CB_AMQP_MAX_NODES 16 /* URLs in a broker URL list */

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
    bool tls;          /* amqps:// */
    char ca_file[512]; /* "": the system's CAs */
    int port;
    /* The cluster's nodes from the URL list (one for a single URL); host
     * and port above are the one connected to, or tried next. Each failed
     * connect and each lost connection moves on to the next node. */
    struct amqp_node {
        char host[256];
        int port;
    } nodes[CB_AMQP_MAX_NODES];
    int nnodes, node;
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

/* amqp.c: helpers and the connection */
amqp_bytes_t cb__amqp_bytes(const char *s);
char *cb__amqp_dup_bytes(amqp_bytes_t bytes);
void cb__amqp_binding_key(const char *pattern, char *out, size_t size);
/* The tenant's own done stream for a cb.done.<tenant>... subject or pattern
 * naming one tenant: "cb.done.<tenant>" into out; false otherwise. */
bool cb__amqp_tenant_done_queue(const char *subject, char *out, size_t size);
void cb__amqp_inbound_reset(inbound *in);
bool cb__amqp_send_ok(ab *b, int rc, const char *what);
void cb__amqp_conn_lost(ab *b, const char *why);

/* amqp_pub.c: publishing, confirms, requests. A publish is queued in
 * submission order (pub_new), sent when connected (pub_kick), and ended once
 * (pub_finish: calls its callback and frees it). */
void cb__amqp_pub_finish(ab *b, pub_op *p, cb_status s);
bool cb__amqp_pub_send(ab *b, pub_op *p);
cb_status cb__amqp_pub_new(ab *b, cb__pub_kind kind, const char *subject, const char *msg_id,
                           const void *data, size_t len, cb_publish_cb *cb, void *ctx,
                           pub_op **out);
void cb__amqp_pub_kick(ab *b, pub_op *p);
cb_status cb__amqp_publish(cb_broker *cb, cb__pub_kind kind, const char *subject,
                           const char *msg_id, const void *data, size_t len, cb_publish_cb *fn,
                           void *ctx);
void cb__amqp_on_confirm(ab *b, uint64_t tag, bool multiple, cb_status s);
void cb__amqp_on_return(ab *b, const char *msg_id, const char *corr_id);
/* The server refused a publish (403 on channel 1, `why` its words): every
 * pending publish to the topic or exchange it names fails with CB_EDENIED
 * (a request at once), so the reconnect does not send them again. */
void cb__amqp_pub_refused(ab *b, const char *why);
amqp_table_t cb__amqp_queue_args(amqp_table_entry_t *e, const char *type);
/* The name of a partition's log queue: cb.events, cb.events.<k> (docs/scale.md). */
void cb__amqp_log_queue(unsigned partition, char *buf, size_t size);
/* Declare a durable queue of `type` ("quorum", "stream") and bind it to the
 * exchange with `key`, pipelined on channel ch (replies ignored). */
bool cb__amqp_declare_bound(ab *b, amqp_channel_t ch, const char *queue, const char *type,
                            const char *key);
void cb__amqp_expire_requests(ab *b, int64_t now);
cb_status cb__amqp_request(cb_broker *cb, const char *subject, const void *data, size_t len,
                           int64_t timeout_ms, cb_reply_cb *fn, void *ctx);
cb_status cb__amqp_respond(cb_request *creq, const void *data, size_t len);
void cb__amqp_request_drop(cb_request *creq);

/* amqp_ep.c: readers, subscriptions, services, consumers */
void cb__amqp_ep_maybe_free(aep *e);
void cb__amqp_open_channel(ab *b, aep *e);
void cb__amqp_reader_ack(ab *b, aep *e);
void cb__amqp_reader_finish(aep *e, cb_status s);
void cb__amqp_reader_caught_up(aep *e);
void cb__amqp_deliver(ab *b, amqp_channel_t ch, inbound *in);
void cb__amqp_channel_closed(ab *b, amqp_channel_t ch, amqp_channel_close_t *cc);
void cb__amqp_close_ep(aep *e);
cb_status cb__amqp_read(cb_broker *cb, const cb_read_opts *o, cb_read_cb *fn, void *ctx,
                        cb_reader **out);
void cb__amqp_reader_close(cb_reader *r);
cb_status cb__amqp_subscribe(cb_broker *cb, const char *pattern, int64_t since_ns, cb_msg_cb *fn,
                             void *ctx, cb_sub **out);
cb_status cb__amqp_serve(cb_broker *cb, const char *pattern, cb_serve_cb *fn, void *ctx,
                         cb_sub **out);
void cb__amqp_sub_close(cb_sub *s);
cb_status cb__amqp_consume(cb_broker *cb, const char *subject, const cb_consume_opts *o,
                           cb_work_cb *fn, void *ctx, cb_consumer **out);
void cb__amqp_consumer_close(cb_consumer *c);
void cb__amqp_work_end(awork *w);
void cb__amqp_work_ack(cb_work *cw);
void cb__amqp_work_nak(cb_work *cw, int64_t delay_ms);
void cb__amqp_work_progress(cb_work *cw);

#endif /* CB_AMQP_INT_H */
