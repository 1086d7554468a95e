/* broker/nats_int.h - what the NATS driver's files (nats.c, nats_ep.c) share.
 * The only other includer of nats.h besides them: none. */
#ifndef CB_NATS_INT_H
#define CB_NATS_INT_H
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "broker_int.h"
#include "cb_mailbox.h"
#include "cb_map.h"
#include "cb_offload.h"

#define MOD              "nats"
#define FETCH_BATCH_MAX  256
#define FETCH_EXPIRES_MS 500  /* a pull request's life on the server */
#define FETCH_GRACE_MS   500  /* and how much longer the fetcher waits for its end */
#define READ_HIGH_WATER  8192 /* mails queued before message threads wait */
/* A reader's idle heartbeat: an ordered consumer that misses two is made
 * again from where it stood. Its consumer lives on the stream's leader, so
 * when that node dies the read resumes within 2-4 s of the new leader
 * instead of nats.c's default 10-15 s (docs/broker.md "Node failure"). */
#define READ_HEARTBEAT_MS 1000

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
    char stream[32]; /* a reader's: its partition's log stream */
    char whole[32];  /* a reader's: the pattern of its whole partition (cb.evt.>) */
    cb_read_opts ropts;
    cb_consume_opts copts;
    char durable[256];
    /* consumers: pull requests to pull_subject, answers on inbox.<n> */
    char pull_subject[320];
    char inbox[128];
    natsSubscription *pull_sub; /* the fetcher's: set before it starts, never cleared */
    pthread_t fetcher;
    bool fetcher_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight; /* guarded by mu */
    bool stop;    /* guarded by mu */
    /* readers: where the log ended when the read started (end_seq) and the
     * first position the read could deliver then (first_seq), both set by
     * the subscribe job before its mail; the rest is the loop's */
    uint64_t end_seq, first_seq;
    uint64_t last_seq;  /* the last position delivered */
    uint64_t idle_mark; /* last_seq when the idle timer last fired */
    bool at_end;        /* delivered everything up to end_seq */
    bool probing;       /* a probe job is in flight */
    struct event *idle; /* checks a read that went quiet before end_seq */
    work *works;        /* outstanding, loop only */
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
    char subject[256]; /* to fail it at once when the broker denies it */
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
    /* what the server says of the streams (set by the stream set-up, before
     * nats_open returns): the fewest replicas and peers any stream has */
    int stream_replicas, stream_peers;
    natsSubscription *inbox_sub;
    char inbox[128];
    /* "_INBOX.<user>" when the URL names a user, else "_INBOX": every reply
     * subject of this connection starts so, so that a broker can let each
     * identity read only its own replies (docs/security.md) */
    char inbox_prefix[96];
    cb_map reqs; /* token -> req_op, loop only */
    uint64_t next_token;
    ep *eps;
    atomic_bool closing; /* read by client threads to keep shutdown quiet */
    /* js_PublishAsyncGetPendingList crashes before the first async publish
     * (its pending map does not exist yet): only call it after one. */
    atomic_bool published;
    /* The library runs connection callbacks on its own thread, also after
     * natsConnection_Close returns: close waits for the last one (closed). */
    pthread_mutex_t close_mu;
    pthread_cond_t close_cv;
    bool closed_seen;
};

/* nats.c: natsStatus to cb_status */
cb_status cb__nats_status(natsStatus s);
/* nats.c: a new reply subject under the connection's inbox prefix into out
 * ("<prefix>.<nuid>"). Any thread. */
natsStatus cb__nats_inbox(nb *b, char *out, size_t size);
/* The name of a partition's log stream: CB_EVENTS, CB_EVENTS_<k> (docs/scale.md). */
void cb__nats_log_stream(unsigned partition, char *buf, size_t size);

/* nats_ep.c: the endpoint operations of the vtable */
cb_status cb__nats_read(cb_broker *cb, const cb_read_opts *o, cb_read_cb *fn, void *ctx,
                        cb_reader **out);
void cb__nats_reader_close(cb_reader *r);
cb_status cb__nats_subscribe(cb_broker *cb, const char *pattern, int64_t since_ns, cb_msg_cb *fn,
                             void *ctx, cb_sub **out);
cb_status cb__nats_serve(cb_broker *cb, const char *pattern, cb_serve_cb *fn, void *ctx,
                         cb_sub **out);
void cb__nats_sub_close(cb_sub *s);
cb_status cb__nats_consume(cb_broker *cb, const char *subject, const cb_consume_opts *o,
                           cb_work_cb *fn, void *ctx, cb_consumer **out);
void cb__nats_consumer_close(cb_consumer *c);
void cb__nats_work_ack(cb_work *cw);
void cb__nats_work_nak(cb_work *cw, int64_t delay_ms);
void cb__nats_work_progress(cb_work *cw);
/* Close an endpoint the user did not (used when the broker closes). */
void cb__nats_close_ep(ep *e);

#endif /* CB_NATS_INT_H */
