/* broker/broker_int.h - what broker.c shares with its drivers (nats.c, amqp.c).
 * Not part of the public interface. */
#ifndef CB_BROKER_INT_H
#define CB_BROKER_INT_H
#include "broker.h"

/* What a publish is for; decides stream/queue and persistence. */
typedef enum cb__pub_kind {
    CB__PUB_LOG,       /* cb.evt.*: the event log */
    CB__PUB_WORK,      /* cb.invoke.*, cb.enqueue.*: work queues */
    CB__PUB_KEPT,      /* cb.done.*: last per subject kept */
    CB__PUB_EPHEMERAL, /* anything else: not persisted */
} cb__pub_kind;

typedef struct cb__broker_vt {
    const char *name;
    int append_has_seq;
    cb_status (*open)(struct event_base *base, const cb_broker_opts *o, cb_broker **out);
    void (*close)(cb_broker *b);
    json_t *(*health)(cb_broker *b);
    cb_status (*publish)(cb_broker *b, cb__pub_kind kind, const char *subject, const char *msg_id,
                         const void *data, size_t len, cb_publish_cb *cb, void *ctx);
    cb_status (*read)(cb_broker *b, const cb_read_opts *o, cb_read_cb *cb, void *ctx,
                      cb_reader **out);
    void (*reader_close)(cb_reader *r);
    cb_status (*consume)(cb_broker *b, const char *subject, const cb_consume_opts *o,
                         cb_work_cb *cb, void *ctx, cb_consumer **out);
    void (*consumer_close)(cb_consumer *c);
    void (*work_ack)(cb_work *w);
    void (*work_nak)(cb_work *w, int64_t delay_ms);
    void (*work_progress)(cb_work *w);
    cb_status (*subscribe)(cb_broker *b, const char *pattern, int64_t since_ns, cb_msg_cb *cb,
                           void *ctx, cb_sub **out);
    cb_status (*serve)(cb_broker *b, const char *pattern, cb_serve_cb *cb, void *ctx, cb_sub **out);
    void (*sub_close)(cb_sub *s);
    cb_status (*request)(cb_broker *b, const char *subject, const void *data, size_t len,
                         int64_t timeout_ms, cb_reply_cb *cb, void *ctx);
    cb_status (*respond)(cb_request *req, const void *data, size_t len);
    void (*request_drop)(cb_request *req);
    void (*reset)(cb_broker *b, const char *why); /* NULL: cb_broker_reset is CB_EUNSUPP */
} cb__broker_vt;

/* Drivers embed these as the first member of their own structs. */
struct cb_broker {
    const cb__broker_vt *vt;
    cb_broker_opts opts; /* copied; opts.url points to url below */
    char *url;
};
struct cb_reader {
    cb_broker *b;
};
struct cb_consumer {
    cb_broker *b;
};
struct cb_work {
    cb_broker *b;
};
struct cb_sub {
    cb_broker *b;
};
struct cb_request {
    cb_broker *b;
};

extern const cb__broker_vt cb__nats_vt;
extern const cb__broker_vt cb__amqp_vt;

/* Fill the common part of a driver's broker (copies opts and url).
 * Errors: CB_ENOMEM. */
CB_NODISCARD cb_status cb__broker_base_init(cb_broker *b, const cb__broker_vt *vt,
                                            const cb_broker_opts *o);
void cb__broker_base_cleanup(cb_broker *b);

/* 1 if `s` is a subject of dot-separated tokens of [A-Za-z0-9_-]; with
 * allow_wild, '*' tokens and a final '>' are allowed too. */
int cb__subject_valid(const char *s, int allow_wild);
/* 1 if `subject` matches the NATS-style `pattern`. */
int cb__subject_match(const char *pattern, const char *subject);

#endif /* CB_BROKER_INT_H */
