/* adapters/remote.h - what the remote backends (http, lambda, openwhisk)
 * share: one HTTP request per item, the items of an invocation in order,
 * pacing to the account's rate, throttling answers retried with backoff,
 * polling for results that are not ready, and the invocation's deadline.
 *
 * A backend file describes only its protocol in a cb_remote_kind: how to
 * read its configuration, build the request for one item (or for a poll),
 * and judge a response. cb_remote_ops() makes the cb_backend_ops from it.
 *
 * Throttling (429/503, TooManyRequestsException, ...) is retried inside the
 * invocation after Retry-After, else after an exponential backoff (100 ms
 * doubling to 10 s, with jitter), as long as the invocation's deadline
 * allows; each retry counts in cb_inv_result.throttled, not as a failure.
 * Past the deadline the invocation ends as CB_FAIL_THROTTLED and the worker
 * gives the command back without recording a failure.
 *
 * Pacing: each worker spaces the requests it starts (not polls) by
 * 1/(rate_per_s / workers) seconds, where `workers` (default 1) is how many
 * workers serve the account; the engine's token bucket bounds dispatches,
 * this bounds the retries the engine does not see. The spacing is between
 * the requests' actual starts (pace.h): a timer that fired late never lets
 * the next request start early. A task's items are paced as well.
 *
 * Threading: the worker's loop. */
#ifndef CB_REMOTE_H
#define CB_REMOTE_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cb_status.h"
#include "cb_httpc.h"

#define CB_REMOTE_MAX_HEADERS 16

/* One request to make. Header strings live in hstore. */
typedef struct cb_remote_req {
    const char *method;
    char url[2048];
    cb_http_header headers[CB_REMOTE_MAX_HEADERS];
    size_t nheaders;
    char hstore[4096];
    size_t hused;
    char *body; /* owned (malloc), or NULL */
    size_t body_len;
} cb_remote_req;

/* Add a header (copied). Errors: CB_ETOOBIG (no room). */
CB_NODISCARD cb_status cb_remote_req_header(cb_remote_req *r, const char *name, const char *value);
/* Set the body to item as compact JSON. Errors: CB_ENOMEM. */
CB_NODISCARD cb_status cb_remote_req_json(cb_remote_req *r, const json_t *item);

typedef enum cb_remote_verdict_kind {
    CB_RV_OUTPUT = 0, /* the item's output */
    CB_RV_FAIL,       /* the invocation fails */
    CB_RV_THROTTLE,   /* ask again later (does not count as a failure) */
    CB_RV_POLL,       /* not ready: poll `ref` after delay_ms */
} cb_remote_verdict_kind;

typedef struct cb_remote_verdict {
    cb_remote_verdict_kind kind;
    json_t *output;        /* OUTPUT: new reference (json null for an empty body) */
    cb_fail_reason reason; /* FAIL */
    char error[1024];      /* FAIL: one line */
    char *detail;          /* FAIL: longer text (a trace, a body), malloc'd, or NULL */
    int64_t delay_ms;      /* THROTTLE: the server's hint (0: back off); POLL: the wait */
    char ref[512];         /* POLL: what build_poll needs (an activation id) */
} cb_remote_verdict;

/* Fill v from a response body that should be JSON: OUTPUT, or FAIL with
 * CB_FAIL_INVALID_OUTPUT. An empty body is null. */
void cb_remote_output(const char *body, size_t len, cb_remote_verdict *v);
/* FAIL with reason and a printf-style one-line error. */
void cb_remote_fail(cb_remote_verdict *v, cb_fail_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The first line of a body, at most n bytes, for error messages. */
void cb_remote_excerpt(const char *body, size_t len, char *out, size_t n);

typedef struct cb_remote_kind {
    const char *type; /* "http", "lambda", "openwhisk" */
    /* Read the account's configuration object. *state is freed by release.
     * On failure err says what is wrong, with its path. */
    cb_status (*configure)(const json_t *conf, const char *account, void **state, char *err,
                           size_t errlen);
    void (*release)(void *state);
    /* The request running inv's function on item number `index`. */
    cb_status (*build)(void *state, const cb_invocation *inv, const json_t *item, size_t index,
                       cb_remote_req *out, char *err, size_t errlen);
    /* The request fetching a pending result (after CB_RV_POLL); NULL if the
     * protocol never polls. */
    cb_status (*build_poll)(void *state, const char *ref, cb_remote_req *out, char *err,
                            size_t errlen);
    /* Judge a response (r->status > 0). `polling`: it answers build_poll. */
    void (*judge)(void *state, const cb_http_resp *r, int polling, cb_remote_verdict *v);
} cb_remote_kind;

/* The kinds of this build (pure: their functions do no I/O; for tests). */
extern const cb_remote_kind cb_remote_http, cb_remote_lambda, cb_remote_openwhisk;
/* The kind whose type is `type`, or NULL. */
const cb_remote_kind *cb_remote_kind_find(const char *type);

/* The three operations every remote backend shares; `create` stays with the
 * backend file (it names its kind): */
CB_NODISCARD cb_status cb_remote_create(const cb_remote_kind *k, struct event_base *base,
                                        const struct cb_config *reg, const char *account,
                                        void **out, char *err, size_t errlen);
cb_status cb_remote_invoke(void *self, const cb_invocation *inv, cb_inv_done_cb *done, void *ctx);
void cb_remote_destroy(void *self);

/* The kind's state (for tests). */
void *cb_remote_state(void *self);

#endif /* CB_REMOTE_H */
