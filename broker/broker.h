/* broker/broker.h - the one interface every cbcore part uses to reach the
 * message broker. Drivers: "nats" (NATS JetStream) and "amqp" (RabbitMQ).
 *
 * Subjects are the strings of DESIGN.md (cb.evt.<tenant>.<job>, cb.invoke.<backend>,
 * cb.done.<tenant>.<job>, ...); patterns use NATS wildcards ('*' one token,
 * '>' the rest) on both drivers. The topology each driver builds from them is
 * described in docs/broker.md.
 *
 * Threading: a cb_broker belongs to one libevent loop. Call every function on
 * that loop's thread (or before the loop runs); every callback runs on it.
 * The event_base must come from cb_loop_new() (cb_loop.h): the drivers' threads
 * wake it.
 *
 * Callback contract (as libuv): when a function that takes a callback returns
 * an error, the callback is never called; when it returns CB_OK, the callback
 * is called exactly once (for one-shot operations), also on close, with
 * CB_ECLOSED. */
#ifndef CB_BROKER_H
#define CB_BROKER_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

struct event_base;
typedef struct cb_broker cb_broker;
typedef struct cb_reader cb_reader;
typedef struct cb_consumer cb_consumer;
typedef struct cb_work cb_work;
typedef struct cb_sub cb_sub;
typedef struct cb_request cb_request;

typedef struct cb_broker_opts {
    /* "nats://host:port[,nats://host2:port]" or "amqp://user:pass@host:port[/vhost]".
     * Borrowed during cb_broker_open only. */
    const char *url;
    const char *name;           /* connection name shown in logs and health; may be NULL */
    int replicas;               /* replicas for streams/queues this driver creates; default 1 */
    int64_t op_timeout_ms;      /* how long an operation may wait for a (re)connect and its
                                 * confirm before failing with CB_ETIMEDOUT; default 10000 */
    size_t max_msg_bytes;       /* larger payloads fail with CB_ETOOBIG; default 1 MiB */
    int64_t dedup_window_ms;    /* how long a de-duplication id is remembered; default 120000 */
    int64_t connect_timeout_ms; /* for cb_broker_open; default 5000 */
    int client; /* 1: a client (the cb commands, a tenant): the streams and queues are the
                 * daemons' to make; nothing is created or checked at connect */
    /* TLS (tls://, amqps://): the PEM file of the CAs that verify the
     * broker's certificate (and the host name of the URL against it);
     * default $CB_BROKER_CA_FILE, NULL: the system's CAs. Borrowed during
     * cb_broker_open only. */
    const char *ca_file;
    /* The deployment's partitions (docs/scale.md), 1 .. CB_PARTITIONS_MAX;
     * default 1. A daemon makes the log of each (a client makes nothing). */
    int partitions;
} cb_broker_opts;

void cb_broker_opts_init(cb_broker_opts *o);

/* Whether a driver takes this URL's scheme (nats://, tls://, amqp://, amqps://). */
bool cb_broker_url_known(const char *url);

/* Connect and make sure the topology (streams, exchange, queues) exists.
 * Blocks for at most connect_timeout_ms: call it at start-up, before the loop
 * serves traffic. Later reconnects never block the loop. On CB_OK *out is owned
 * by the caller: release with cb_broker_close().
 * Errors: CB_EINVAL (bad url/opts), CB_ECONN (unreachable: worth trying
 * again), CB_EBROKER (the broker refused: credentials, stream settings; the
 * reason is logged). */
CB_NODISCARD cb_status cb_broker_open(struct event_base *base, const cb_broker_opts *o,
                                      cb_broker **out);
/* Fail every pending operation with CB_ECLOSED, close readers, consumers and
 * subscriptions the caller has not closed, and disconnect. Accepts NULL. */
void cb_broker_close(cb_broker *b);

/* The driver's name: "nats" or "amqp". Borrowed, static. */
const char *cb_broker_driver(const cb_broker *b);
/* Health and durability: {"driver","connected","reconnects","server",
 * "durability":{"storage","fsync","replicas","note"}}. New reference. */
json_t *cb_broker_health(cb_broker *b);
/* Drop the connection and connect again (to the next node of a cluster),
 * as if it were lost: what was not confirmed is sent again, readers resume
 * from their positions, consumers and subscriptions come back. For a
 * connection whose confirmations cannot be trusted (docs/broker.md, "Node
 * failure"); `why` is logged. CB_EUNSUPP where the driver cannot (NATS:
 * nats.c reconnects by itself). On the loop thread. */
cb_status cb_broker_reset(cb_broker *b, const char *why);
/* 1 if appends report the log position in their callback (NATS), 0 when the
 * broker does not tell it at publish time (RabbitMQ streams: seq = 0). */
int cb_broker_append_has_seq(const cb_broker *b);

/* ---- publishing: append, put, notify --------------------------------- */

/* Result of a confirmed publish. seq is the log position (0 when unknown);
 * duplicate is 1 when the broker had already stored this de-duplication id. */
typedef void cb_publish_cb(cb_status s, uint64_t seq, int duplicate, void *ctx);

/* Append an event to the log of a partition (subject cb.evt.<tenant>.<job>
 * for partition 0, cb.evp.<k>.<tenant>.<job> for k: cb_partition.h). `msg_id` is the
 * de-duplication id: the same id within the window is stored once. `data` is
 * copied. Many appends may be in flight; each callback reports the broker's
 * confirm (or CB_ETIMEDOUT, CB_EBROKER, CB_ECLOSED). While disconnected the
 * append waits up to op_timeout_ms and is re-sent with the same id.
 * Errors: CB_EINVAL, CB_ETOOBIG, CB_ENOMEM, CB_ECLOSED. */
CB_NODISCARD cb_status cb_broker_append(cb_broker *b, const char *subject, const char *msg_id,
                                        const void *data, size_t len, cb_publish_cb *cb, void *ctx);
/* Put a command on a work queue (cb.invoke.<backend>, cb.enqueue.<tenant>).
 * Same contract as cb_broker_append. */
CB_NODISCARD cb_status cb_broker_put(cb_broker *b, const char *subject, const char *msg_id,
                                     const void *data, size_t len, cb_publish_cb *cb, void *ctx);
/* Publish a notification. cb.done.* is kept (the last message per subject, so a
 * late subscriber still gets it) and confirmed like an append; any other subject
 * (cb.progress.*) is not persisted and `cb` may be NULL. */
CB_NODISCARD cb_status cb_broker_notify(cb_broker *b, const char *subject, const char *msg_id,
                                        const void *data, size_t len, cb_publish_cb *cb, void *ctx);

/* ---- messages delivered to callbacks --------------------------------- */

/* Everything borrowed: valid only during the callback. */
typedef struct cb_broker_msg {
    const char *subject;
    const void *data;
    size_t len;
    uint64_t seq;        /* log position (stream sequence / offset); 0 if none */
    int64_t time_ns;     /* broker timestamp, 0 if none */
    const char *msg_id;  /* de-duplication id if known, else NULL */
    uint64_t deliveries; /* work queues: 1 on first delivery */
} cb_broker_msg;

/* ---- reading the log ------------------------------------------------- */

typedef enum cb_read_from {
    CB_READ_FIRST = 0, /* from the first event kept */
    CB_READ_SEQ,       /* from position `seq` (inclusive) */
    CB_READ_TIME,      /* from the first event at or after `time_ns` */
    CB_READ_NEW,       /* only events appended from now on */
} cb_read_from;

typedef struct cb_read_opts {
    cb_read_from from;
    uint64_t seq;
    int64_t time_ns;
    /* subject pattern within the partition's log, e.g. cb.evt.acme.* (partition 0),
     * cb.evp.3.acme.> (partition 3); NULL = all of it */
    const char *filter;
    int stop_at_end;    /* 1: stop after the events that exist at the start */
    unsigned partition; /* whose log (docs/scale.md); positions are that log's; default 0 */
} cb_read_opts;

void cb_read_opts_init(cb_read_opts *o);

/* Called on the loop for each event in log order (m != NULL, s == CB_OK), then
 * with m == NULL: s == CB_OK each time the reader has caught up with the end of
 * the log (once, final, when stop_at_end), or an error (final). */
typedef void cb_read_cb(const cb_broker_msg *m, cb_status s, void *ctx);

/* Start reading. On CB_OK *out is owned: release with cb_reader_close(), which
 * may be called from inside the callback. */
CB_NODISCARD cb_status cb_broker_read(cb_broker *b, const cb_read_opts *o, cb_read_cb *cb,
                                      void *ctx, cb_reader **out);
void cb_reader_close(cb_reader *r); /* accepts NULL; no callback after it returns */

/* ---- consuming a work queue ------------------------------------------ */

typedef struct cb_consume_opts {
    int max_inflight; /* most unfinished commands held by this consumer; default 64 */
    int64_t lease_ms; /* redelivered to another consumer if not acked/progressed in
                       * this time (NATS); RabbitMQ redelivers when the connection
                       * dies (see docs/broker.md); default 30000 */
} cb_consume_opts;

void cb_consume_opts_init(cb_consume_opts *o);

/* One delivered command. `w` is owned by the driver and stays valid until
 * cb_work_ack/cb_work_nak/cb_work_term, or until its consumer is closed. */
typedef void cb_work_cb(cb_work *w, const cb_broker_msg *m, void *ctx);

/* Competing consumer of the work queue `subject` (cb.invoke.<backend>, or
 * cb.enqueue.> for every tenant's queued submissions; on RabbitMQ any
 * cb.enqueue subject consumes the one cb.enqueue queue).
 * On CB_OK *out is owned: release with cb_consumer_close(); commands not
 * acked by then are given back for redelivery. */
CB_NODISCARD cb_status cb_broker_consume(cb_broker *b, const char *subject,
                                         const cb_consume_opts *o, cb_work_cb *cb, void *ctx,
                                         cb_consumer **out);
void cb_consumer_close(cb_consumer *c); /* accepts NULL */
/* Done: never delivered again. Frees w. */
void cb_work_ack(cb_work *w);
/* Give back for redelivery after delay_ms (0 = now). Frees w. */
void cb_work_nak(cb_work *w, int64_t delay_ms);
/* Still working: extend the lease. w stays valid. */
void cb_work_progress(cb_work *w);

/* ---- subscriptions --------------------------------------------------- */

typedef void cb_msg_cb(const cb_broker_msg *m, void *ctx);

/* Subscribe to notifications matching `pattern` (cb.done.acme.*, cb.progress.>).
 * For cb.done.* the kept message of each matching subject is delivered first
 * (on RabbitMQ: those published at or after since_ns by their publisher's
 * clock; 0 = all kept; a caller that must not see older ones compares
 * m->time_ns itself, as NATS delivers the last of each subject).
 * On CB_OK *out is owned: release with cb_sub_close(). */
CB_NODISCARD cb_status cb_broker_subscribe(cb_broker *b, const char *pattern, int64_t since_ns,
                                           cb_msg_cb *cb, void *ctx, cb_sub **out);
void cb_sub_close(cb_sub *s); /* accepts NULL; no callback after it returns */

/* ---- request / reply ------------------------------------------------- */

/* s == CB_OK with the reply (borrowed during the call), or CB_ENORESP (nobody
 * serves the subject), CB_ETIMEDOUT, CB_ECLOSED with data NULL. */
typedef void cb_reply_cb(cb_status s, const void *data, size_t len, void *ctx);

/* Send a request (cb.submit.<tenant>, cb.ctl.<tenant>.<job>) and wait up to
 * timeout_ms on the loop for its reply. */
CB_NODISCARD cb_status cb_broker_request(cb_broker *b, const char *subject, const void *data,
                                         size_t len, int64_t timeout_ms, cb_reply_cb *cb,
                                         void *ctx);

/* One received request; owned by the driver until cb_request_respond() or
 * cb_request_drop(). */
typedef void cb_serve_cb(cb_request *req, const cb_broker_msg *m, void *ctx);

/* Serve requests matching `pattern` as one of the competing members of the
 * service (one member answers each request). On CB_OK *out is owned: release
 * with cb_sub_close(); requests not answered by then are given back. */
CB_NODISCARD cb_status cb_broker_serve(cb_broker *b, const char *pattern, cb_serve_cb *cb,
                                       void *ctx, cb_sub **out);
/* Answer and release `req` (`data` is copied). Errors: CB_ECONN, CB_ETOOBIG;
 * req is released either way. */
CB_NODISCARD cb_status cb_request_respond(cb_request *req, const void *data, size_t len);
/* Release `req` without an answer; the request is taken as handled. */
void cb_request_drop(cb_request *req);

#endif /* CB_BROKER_H */
