/* api/server.h - cb-api's HTTP server (docs/api.md): the /v1 routes on
 * libevent's evhttp, answered from the broker (submissions and lifecycle
 * commands as requests on cb.submit / cb.ctl, like every client) and the
 * store (read on a helper thread, never on the loop). It owns no state.
 *
 * Every /v1 route of docs/api.md is served; /metrics and the dashboard
 * answer 501 until they land.
 *
 * Ownership: the server borrows the broker, the store, the storage and the
 * tokens (all outlive it). Threading: the loop's, except the store reads
 * (views.h is thread-safe). */
#ifndef CB_API_SERVER_H
#define CB_API_SERVER_H
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "broker.h"
#include "cb_status.h"
#include "store.h"

struct event_base;
struct cb_storage;
typedef struct cb_api cb_api;

typedef struct cb_api_opts {
    const char *listen;         /* "HOST:PORT" (PORT 0: any free one) */
    size_t max_body;            /* largest request body, default 1 MiB (413 above) */
    int64_t request_timeout_ms; /* a submission or command's wait for the engine, default 30 s */
    int timeout_s;              /* a connection's read/write timeout, default 30 */
    const cb_api_auth *auth;    /* the tokens; NULL: an open API */
    struct cb_storage *storage; /* where results and outputs kept as objects are; NULL: none */
    const char *tls_cert;       /* PEM certificate (chain) and key: serve HTTPS; NULL: HTTP */
    const char *tls_key;
} cb_api_opts;

void cb_api_opts_init(cb_api_opts *o);

/* Listen and serve. `st` may be NULL until the store exists
 * (cb_api_set_store): store routes answer 503 until then. On failure err says why (an address in
 * use, ...). Errors: CB_EINVAL, CB_EIO, CB_ENOMEM. */
CB_NODISCARD cb_status cb_api_start(struct event_base *base, cb_broker *b, cb_store *st,
                                    const cb_api_opts *o, cb_api **out, char *err, size_t errlen);
void cb_api_set_store(cb_api *a, cb_store *st);
/* Serve with other tokens from now on (the loop's thread; requests check
 * the token when they arrive, so `auth` may replace one the caller frees
 * after this call). */
void cb_api_set_auth(cb_api *a, const cb_api_auth *auth);
/* The port it listens on (the one picked for PORT 0). */
int cb_api_port(const cb_api *a);
/* Stop listening and free; requests waiting on the broker are dropped
 * (their connections closed). Accepts NULL. */
void cb_api_free(cb_api *a);

#endif /* CB_API_SERVER_H */
