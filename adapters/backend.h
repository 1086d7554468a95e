/* adapters/backend.h - the backend plugin interface: what the adapter worker
 * needs from a FaaS backend. One file per backend implements one
 * cb_backend_ops; the worker knows nothing else about it.
 *
 * An invocation runs the function once per item of `items` (a chunk of a map
 * job, or the one input of a call/reduce task) and reports one output per
 * item, in order. Failures are data (cb_inv_result), never a crash.
 *
 * Threading: a backend instance belongs to the worker's loop; every call and
 * callback happens on it. */
#ifndef CB_BACKEND_H
#define CB_BACKEND_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

struct event_base;
struct cb_config;

typedef struct cb_invocation {
    const char *tenant, *job;
    uint32_t task, attempt;
    const char *function; /* the function's name */
    const json_t *spec;   /* the job's function object (backend, name, timeout_ms, ...) */
    const json_t *items;  /* array, >= 1 item */
    int64_t timeout_ms;   /* the whole invocation; 0: the backend's default */
    int64_t first_item;   /* index of items[0] in the job's input; -1 (or 0): not a map */
} cb_invocation;

/* Why an invocation failed: the `reason` of cb.task.failed (event.json). */
typedef enum cb_fail_reason {
    CB_FAIL_NONE = 0,
    CB_FAIL_EXIT,           /* the function reported an error or exited non-zero */
    CB_FAIL_SIGNAL,         /* its process was killed by a signal */
    CB_FAIL_TIMEOUT,        /* it ran past the invocation timeout and was killed */
    CB_FAIL_INVALID_OUTPUT, /* its output is not the JSON the protocol asks for */
    CB_FAIL_OVERSIZE,       /* its output is over the limit */
    CB_FAIL_THROTTLED,      /* the backend refused for load (retry without counting) */
    CB_FAIL_BACKEND,        /* the backend itself failed (cannot start, unknown function) */
} cb_fail_reason;

const char *cb_fail_reason_name(cb_fail_reason r); /* "exit", "signal", ... */

typedef struct cb_inv_result {
    cb_fail_reason reason;   /* CB_FAIL_NONE: succeeded */
    json_t *outputs;         /* succeeded: array, one output per item; borrowed for the call */
    const char *error;       /* failed: one line saying why; borrowed */
    const char *stderr_tail; /* failed: the end of the function's stderr, or NULL; borrowed */
    int64_t retry_after_ms;  /* throttled: the backend's hint, 0 if none */
    uint32_t throttled;      /* throttling answers retried within this invocation */
} cb_inv_result;

/* Called exactly once per accepted invocation (also with CB_FAIL_BACKEND and
 * error "backend closing" when the backend is destroyed first). */
typedef void cb_inv_done_cb(const cb_inv_result *r, void *ctx);

typedef struct cb_backend_ops {
    const char *name; /* the `backend` of function objects: "local", "http", ... */
    /* Create an instance for `account` (the backend's name in the
     * configuration, whose "type" is this backend) from the configuration
     * (`reg` is borrowed and outlives the instance). On failure err says why. */
    cb_status (*create)(struct event_base *base, const struct cb_config *reg, const char *account,
                        void **out, char *err, size_t errlen);
    /* Start an invocation; `inv` is borrowed during the call only. Errors
     * (done is then never called): CB_ENOMEM, CB_ECLOSED. */
    cb_status (*invoke)(void *self, const cb_invocation *inv, cb_inv_done_cb *done, void *ctx);
    /* Fail what is in flight (done with "backend closing"), free. */
    void (*destroy)(void *self);
} cb_backend_ops;

/* The backend of type `name` ("local", "http", "lambda", "openwhisk"), or NULL. */
const cb_backend_ops *cb_backend_find(const char *name);

#endif /* CB_BACKEND_H */
