/* api/server_int.h - what the parts of cb-api's server share (server.c:
 * answers, waiting requests, routing; reads.c: store reads; events.c: a
 * job's timeline; body.c: a result's body from storage; sse.c: pushes).
 * Not a contract for anyone else. Everything runs on the loop thread except
 * a pending's `job.work`, on the helper thread. */
#ifndef CB_API_SERVER_INT_H
#define CB_API_SERVER_INT_H
#include <event2/http.h>
#include <jansson.h>
#include <stdint.h>

#include "auth.h"
#include "cb_offload.h"
#include "jobfold.h"
#include "joblog.h"
#include "layout.h"
#include "route.h"
#include "server.h"

typedef struct pending pending;
typedef struct stream stream;
struct cb_storage;

struct cb_api {
    struct event_base *base;
    cb_broker *b;
    cb_store *st; /* NULL until the store exists (the projector makes it) */
    cb_api_opts o;
    struct evhttp *http;
    struct ssl_ctx_st *tls; /* HTTPS; NULL: HTTP */
    int port;
    cb_mailbox *mb;
    cb_offload *off;
    pending *waiting; /* requests waiting on the broker, the store or storage */
    stream *streams;  /* SSE clients */
    /* metrics.c */
    cb_sub *stats_sub;
    json_t *reports;       /* "daemon/id" -> {"report", "at": mono ns} */
    json_t *store_summary; /* the last summary of the store, or NULL */
    int64_t summary_ns;    /* when it was read (mono) */
};

/* A request's query (docs/api.md), checked before anything is read. */
typedef struct query {
    long limit;                   /* 1..1000, default 100 */
    char tenant[CB_NAME_MAX + 1]; /* list: "" every tenant the caller may see */
    char after[CB_JOB_KEY_MAX];   /* list: the previous page's last job, or "" */
    int has_after;                /* tasks, events: after_n was given */
    uint64_t after_n;             /* tasks: an index; events: a log position */
    int state;                    /* -1: any; else a cb_job_status or cb_task_status */
    char label[64], value[257];   /* list: label=NAME=VALUE */
    int has_until;                /* events: the state at a point */
    uint64_t until_seq;           /* ... a log position, or */
    int64_t until_ns;             /* ... a time */
} query;

typedef enum pending_phase {
    PHASE_WAIT = 0, /* on the broker or the helper thread: an answer will come */
    PHASE_READ,     /* a storage read in flight: its callback will come */
    PHASE_WRITE,    /* a body chunk being written to the client */
} pending_phase;

/* One HTTP request waiting for an answer from elsewhere. `req` is NULL once
 * the server let go of it (it is being freed): the answer, when it comes,
 * is dropped. `closed`: the client went, and libevent detached req from its
 * connection; answering it (or ending its reply) frees it. */
struct pending {
    cb_offload_job job; /* first: a store read runs as an offload job */
    cb_api *a;
    cb_store *st; /* a->st, for the helper thread (which never reads `a`) */
    struct evhttp_request *req;
    int closed;
    pending_phase phase;
    pending *prev, *next;
    cb_route route;
    cb_api_who who;
    query q;
    /* made by the read on the helper thread: the answer, or the next step */
    int status;
    json_t *body;
    void (*then)(pending *p);      /* on the loop once a read succeeded (status 200) */
    char last_key[CB_JOB_KEY_MAX]; /* list: the page's last job */
    int more;
    uint64_t first_seq, next_n;
    unsigned log_partition; /* the job's (docs/scale.md): its events' log */
    /* events.c */
    cb_joblog *jl;
    cb_jobfold fold;
    int folding;
    /* body.c */
    struct body *out;
    struct event *later;
    /* result.c */
    cb_sub *done_sub;
    json_t *done_msg;
    struct event *wait_timer;
    int64_t store_deadline_ns;
    int offloaded; /* queued on the helper thread (its mail frees it if the server goes) */
};

/* answers */
void cb_api_send_json(struct evhttp_request *req, int status, json_t *body);
/* The request's body as text (NUL-terminated, malloc'd) or NULL with the
 * error sent. */
char *cb_api_body_text(cb_api *a, struct evhttp_request *req, size_t *len);
/* sla.c: the agreements' routes, asked of cb-sla */
void cb_api_sla(cb_api *a, struct evhttp_request *req, const cb_route *r);
/* {"error": {"code", "message"}} (and `extra`'s members beside it). */
json_t *cb_api_error_body(const char *code, const char *message, json_t *extra);
void cb_api_send_error(struct evhttp_request *req, int status, const char *code,
                       const char *message, json_t *extra);

/* Let go of a request nobody will answer (the server is going): a detached
 * one (its client went) is freed, an attached one goes with its
 * connection. */
void cb_api_drop_request(struct evhttp_request *req, int closed);

/* waiting requests */
pending *cb_api_pending_new(cb_api *a, struct evhttp_request *req, const cb_route *r);
/* The request p waited for, to answer now (NULL: the server let go); p
 * leaves the server's list. Answer it even when its client went: that
 * frees it. */
struct evhttp_request *cb_api_pending_take(pending *p);
void cb_api_pending_free(pending *p);
/* Answer p with its status and body (or a 500) and free it. */
void cb_api_pending_answer(pending *p);
/* Run `work` on the helper thread, then answer (or p->then). */
void cb_api_store_read(cb_api *a, struct evhttp_request *req, const cb_route *r,
                       const cb_api_who *who, const query *q, void (*work)(cb_offload_job *));

/* reads.c (helper thread) */
json_t *cb_api_job_view(const char *tenant, const char *job, const cb_job_state *js);
void cb_api_read_job(cb_offload_job *oj);
void cb_api_read_jobs(cb_offload_job *oj);
void cb_api_read_tasks(cb_offload_job *oj);
void cb_api_read_result(cb_offload_job *oj); /* then: body or wait */
void cb_api_read_first_seq(cb_offload_job *oj);
void cb_api_read_tenant_cost(cb_offload_job *oj); /* {"tenant", "cost"} */
void cb_api_read_costs(cb_offload_job *oj);       /* {"tenants": {T: cost}, "backends": {...}} */

/* events.c (loop) */
void cb_api_events_start(pending *p);
void cb_api_events_drop(pending *p); /* the server is going */

/* result.c (loop): a result the store does not show yet */
void cb_api_result_wait(pending *p);
/* server.c: read the result from the store again (helper thread) */
void cb_api_result_reread(pending *p);

/* body.c (loop): a result streamed from storage */
void cb_api_body_start(pending *p);
void cb_api_body_closed(pending *p); /* the client went */
void cb_api_body_drop(pending *p);   /* the server is going */

/* metrics.c (loop) */
cb_status cb_api_metrics_start(cb_api *a);
void cb_api_metrics_stop(cb_api *a);
void cb_api_metrics(cb_api *a, struct evhttp_request *req, const cb_route *r);
void cb_api_daemons(cb_api *a, struct evhttp_request *req);

/* sse.c (loop) */
void cb_api_job_stream(cb_api *a, struct evhttp_request *req, const cb_route *r);
void cb_api_tenant_stream(cb_api *a, struct evhttp_request *req, const char *tenant);
void cb_api_daemons_stream(cb_api *a, struct evhttp_request *req);
void cb_api_streams_drop(cb_api *a);

#endif /* CB_API_SERVER_INT_H */
