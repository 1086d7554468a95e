/* common/cb_httpc.h - an asynchronous HTTP/1.1 client for the remote
 * backends, on libevent's evhttp: keep-alive connection pools per origin,
 * TLS through OpenSSL bufferevents (peer verification on by default),
 * TCP_NODELAY on TLS connections, a connect timeout and a timeout on the
 * whole request.
 *
 * A pool holds at most max_conns connections per origin (scheme, host,
 * port); each carries one request at a time (no pipelining), so requests
 * beyond that wait in the origin's queue, in order. A connection the server
 * closed, that failed, or that sat idle past idle_ms (so a request does not
 * race the server's own keep-alive close) is dropped and a new one opened on
 * demand.
 * Hostnames are resolved asynchronously (evdns); connections are IPv4 unless
 * the URL names an IPv6 literal.
 *
 * Threading: one loop; every callback runs on it and never from inside
 * cb_httpc_request(). */
#ifndef CB_HTTPC_H
#define CB_HTTPC_H
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

struct event_base;
struct evkeyvalq;
typedef struct cb_httpc cb_httpc;
typedef struct cb_http_call cb_http_call;

typedef struct cb_httpc_opts {
    const char *ca_file;        /* PEM bundle to verify servers; NULL: the system's */
    int verify;                 /* 1 (default): refuse a server that fails verification */
    int64_t connect_timeout_ms; /* default 5000 */
    int64_t timeout_ms;         /* whole request (connect to last byte), default 60000 */
    int max_conns;              /* per origin, default 64 */
    size_t max_body;            /* largest response body, default 6 MiB */
    int64_t idle_ms;            /* a connection idle longer is not reused, default 4000
                                 * (below common keep-alive timeouts: Node.js 5 s) */
} cb_httpc_opts;

typedef struct cb_http_header {
    const char *name, *value;
} cb_http_header;

typedef struct cb_http_req {
    const char *method; /* "GET", "POST", "PUT", "DELETE" */
    const char *url;    /* http[s]://host[:port]/path[?query] */
    const cb_http_header *headers;
    size_t nheaders;
    const void *body; /* copied; may be NULL */
    size_t body_len;
    int64_t timeout_ms; /* 0: the client's */
} cb_http_req;

typedef struct cb_http_resp {
    int status;        /* HTTP status; 0 when no response came (see error) */
    const char *error; /* no response: why (connect refused, timeout, TLS, ...) */
    int timed_out;     /* 1: the connect or the whole-request timeout struck */
    const char *body;  /* NUL-terminated (the body may also hold NULs) */
    size_t body_len;
    const struct evkeyvalq *headers; /* NULL without a response */
} cb_http_resp;

/* Called exactly once per started request, unless it is cancelled first.
 * Everything in `r` is borrowed for the call. */
typedef void cb_http_done_cb(const cb_http_resp *r, void *ctx);

void cb_httpc_opts_init(cb_httpc_opts *o);
/* A client on `base`. On failure err says why (e.g. an unreadable CA file).
 * Errors: CB_EINVAL, CB_ENOMEM. Free with cb_httpc_free(). */
CB_NODISCARD cb_status cb_httpc_new(struct event_base *base, const cb_httpc_opts *o, cb_httpc **out,
                                    char *err, size_t errlen);
/* Drop every connection; calls in flight end without their callback. */
void cb_httpc_free(cb_httpc *c); /* accepts NULL */

/* Start a request; `req` is borrowed during the call only. *out (may be
 * NULL) is a handle for cb_http_cancel(), valid until done is called.
 * Errors (done is then never called): CB_EINVAL (a bad URL or method; err
 * says why), CB_ENOMEM. */
CB_NODISCARD cb_status cb_httpc_request(cb_httpc *c, const cb_http_req *req, cb_http_done_cb *done,
                                        void *ctx, cb_http_call **out, char *err, size_t errlen);
/* End a call now; its callback is not called. */
void cb_http_cancel(cb_http_call *call);

/* A response header (case-insensitive), or NULL. */
const char *cb_http_header_get(const cb_http_resp *r, const char *name);
/* Retry-After in milliseconds (delta-seconds form), 0 when absent or not a
 * number. */
int64_t cb_http_retry_after_ms(const cb_http_resp *r);

#endif /* CB_HTTPC_H */
