/* common/cb_httpc.c - the asynchronous HTTP client (see cb_httpc.h).
 *
 * evhttp does the protocol; this file adds what it lacks for a backend:
 * pools per origin, one request per connection at a time, TLS set-up, and
 * timers. A connection is never reconnected in place (evhttp would reuse a
 * spent SSL object): one that closed or failed is retired and freed from a
 * deferred event, never from inside evhttp's own callbacks. */
#include "cb_httpc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "cb_alloc.h"
#include "cb_time.h"

typedef struct conn conn;
typedef struct origin origin;

struct cb_http_call {
    cb_httpc *c;
    origin *o;
    conn *cn;                   /* while on a connection */
    struct evhttp_request *req; /* ours until made on a connection */
    enum evhttp_cmd_type type;
    char *uri; /* path and query */
    int64_t timeout_ms;
    struct event *timer;  /* the whole request */
    struct event *ctimer; /* the connect check */
    enum evhttp_request_error err;
    int have_err;
    cb_http_done_cb *done;
    void *ctx;
    cb_http_call *qnext; /* waiting for a connection */
};

struct conn {
    origin *o;
    struct evhttp_connection *evcon;
    struct bufferevent *bev; /* TLS: ours, freed with evcon */
    cb_http_call *call;      /* the request on it, or NULL when idle */
    int dead;                /* closed or failed: retire, never reuse */
    int retired;             /* out of the pool, waiting for the reaper */
    int used;                /* a response came on it */
    int64_t idle_ns;         /* when its last response came */
    evutil_socket_t nodelay_fd;
    int sock_err;               /* errno of a failed connect */
    bufferevent_event_cb ev_cb; /* evhttp's, while we listen in on connecting */
    void *ev_arg;
    conn *next;
};

struct origin {
    cb_httpc *c;
    char host[256];
    int port, tls, v6;
    conn *conns;
    int nconns;
    cb_http_call *qhead, *qtail;
    struct event *kick; /* pumps the queue from the loop */
    origin *next;
};

struct cb_httpc {
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *ssl;
    cb_httpc_opts o;
    origin *origins;
    conn *graveyard; /* retired connections, freed by `reaper` */
    struct event *reaper;
};

void cb_httpc_opts_init(cb_httpc_opts *o)
{
    memset(o, 0, sizeof *o);
    o->verify = 1;
    o->connect_timeout_ms = 5000;
    o->timeout_ms = 60000;
    o->max_conns = 64;
    o->max_body = 6u * 1024u * 1024u;
    o->idle_ms = 4000;
}

static void arm_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- connections ------------------------------------------------------------ */

static void conn_free_now(conn *cn)
{
    if (cn->evcon) {
        evhttp_connection_set_closecb(cn->evcon, NULL, NULL);
        evhttp_connection_free(cn->evcon); /* frees its bufferevent and SSL */
    }
    free(cn);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_httpc *c = arg;
    (void)fd;
    (void)what;
    while (c->graveyard) {
        conn *cn = c->graveyard;
        c->graveyard = cn->next;
        conn_free_now(cn);
    }
}

/* Take cn out of its origin's pool; freed from the reaper. */
static void conn_retire(conn *cn)
{
    origin *o = cn->o;
    cb_httpc *c = o->c;
    for (conn **p = &o->conns; *p; p = &(*p)->next)
        if (*p == cn) {
            *p = cn->next;
            o->nconns--;
            break;
        }
    cn->dead = 1;
    cn->retired = 1;
    cn->call = NULL;
    cn->next = c->graveyard;
    c->graveyard = cn;
    event_active(c->reaper, EV_TIMEOUT, 0);
}

static void closed_cb(struct evhttp_connection *evcon, void *arg)
{
    conn *cn = arg;
    (void)evcon;
    if (cn->retired)
        return;
    cn->dead = 1;
    if (!cn->call) /* idle: drop it now */
        conn_retire(cn);
}

static conn *conn_new(origin *o)
{
    cb_httpc *c = o->c;
    conn *cn = cb_calloc(1, sizeof *cn);
    SSL *ssl = NULL;
    struct timeval big = {86400, 0}; /* our timers bound every request */

    if (!cn)
        return NULL;
    cn->o = o;
    cn->nodelay_fd = -1;
    if (o->tls) {
        if (!(ssl = SSL_new(c->ssl)))
            goto fail;
        SSL_set_tlsext_host_name(ssl, o->host);
        if (c->o.verify) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
            if (!X509_VERIFY_PARAM_set1_ip_asc(vp, o->host))
                SSL_set1_host(ssl, o->host);
        }
        cn->bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!cn->bev) {
            SSL_free(ssl);
            goto fail;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(cn->bev, 1);
    }
    cn->evcon = evhttp_connection_base_bufferevent_new(c->base, c->dns, cn->bev, o->host,
                                                       (unsigned short)o->port);
    if (!cn->evcon) {
        if (cn->bev)
            bufferevent_free(cn->bev);
        goto fail;
    }
    /* Binding makes evhttp create the socket before it connects, so
     * TCP_NODELAY is set before the first byte goes out. */
    evhttp_connection_set_family(cn->evcon, o->v6 ? AF_INET6 : AF_INET);
    evhttp_connection_set_local_address(cn->evcon, o->v6 ? "::" : "0.0.0.0");
    evhttp_connection_set_timeout_tv(cn->evcon, &big);
    evhttp_connection_set_max_body_size(cn->evcon, (ev_ssize_t)c->o.max_body);
    evhttp_connection_set_closecb(cn->evcon, closed_cb, cn);
    cn->next = o->conns;
    o->conns = cn;
    o->nconns++;
    return cn;
fail:
    free(cn);
    return NULL;
}

/* evhttp reports a failed connect without its errno: listen in on the
 * bufferevent's events while connecting, then hand them on. */
static void connect_event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn *cn = arg;
    /* A connect refused at once (loopback) reaches us without errno:
     * libevent fakes the error event, so 0 here means ECONNREFUSED. */
    if ((what & BEV_EVENT_ERROR) && !cn->sock_err) {
        int e = EVUTIL_SOCKET_ERROR();
        cn->sock_err = e ? e : ECONNREFUSED;
    }
    cn->ev_cb(bev, what, cn->ev_arg);
}

static void listen_in(conn *cn)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(cn->evcon);
    bufferevent_data_cb rd, wr;
    bufferevent_event_cb ev;
    void *arg;
    bufferevent_getcb(bev, &rd, &wr, &ev, &arg);
    if (!ev || ev == connect_event_cb)
        return;
    cn->ev_cb = ev;
    cn->ev_arg = arg;
    bufferevent_setcb(bev, rd, wr, connect_event_cb, cn);
}

static void set_nodelay(conn *cn)
{
    evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(cn->evcon));
    int one = 1;
    if (fd >= 0 && fd != cn->nodelay_fd) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cn->nodelay_fd = fd;
    }
}

/* ---- calls -------------------------------------------------------------------- */

static void call_free(cb_http_call *call)
{
    if (call->req)
        evhttp_request_free(call->req);
    if (call->timer)
        event_free(call->timer);
    if (call->ctimer)
        event_free(call->ctimer);
    free(call->uri);
    free(call);
}

static void origin_pump(origin *o);

/* Why a connection failed, as one line. */
static void describe_failure(cb_http_call *call, conn *cn, char *buf, size_t len)
{
    const char *what = "connection failed";
    unsigned long e;
    if (call->have_err) {
        switch (call->err) {
        case EVREQ_HTTP_TIMEOUT:
            what = "timed out";
            break;
        case EVREQ_HTTP_EOF:
            what = "connection closed before the response";
            break;
        case EVREQ_HTTP_INVALID_HEADER:
            what = "invalid response header";
            break;
        case EVREQ_HTTP_BUFFER_ERROR:
            what = "connection failed";
            break;
        case EVREQ_HTTP_DATA_TOO_LONG:
            what = "response body over the limit";
            break;
        default:
            break;
        }
    }
    if (cn && cn->bev) {
        SSL *ssl = bufferevent_openssl_get_ssl(cn->bev);
        long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (vr != X509_V_OK) {
            snprintf(buf, len, "TLS: certificate verification failed: %s",
                     X509_verify_cert_error_string(vr));
            return;
        }
        if ((e = bufferevent_get_openssl_error(cn->bev))) {
            char es[256];
            ERR_error_string_n(e, es, sizeof es);
            snprintf(buf, len, "TLS: %s", es);
            return;
        }
    }
    if (cn && !cn->used && cn->sock_err) {
        snprintf(buf, len, "cannot connect to %s:%d: %s", call->o->host, call->o->port,
                 strerror(cn->sock_err));
        return;
    }
    snprintf(buf, len, "%s:%d: %s", call->o->host, call->o->port, what);
}

static void finish(cb_http_call *call, const cb_http_resp *r)
{
    cb_http_done_cb *done = call->done;
    void *ctx = call->ctx;
    done(r, ctx);
    call_free(call);
}

static void req_cb(struct evhttp_request *req, void *arg)
{
    cb_http_call *call = arg;
    conn *cn = call->cn;
    origin *o = call->o;
    cb_http_resp r = {0};
    char why[384];
    char *body = NULL;

    call->req = NULL; /* evhttp frees it after this callback */
    if (call->timer)
        evtimer_del(call->timer);
    if (call->ctimer)
        evtimer_del(call->ctimer);
    if (req && evhttp_request_get_response_code(req) > 0) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        const char *conn_hdr;
        r.status = evhttp_request_get_response_code(req);
        r.headers = evhttp_request_get_input_headers(req);
        if ((body = malloc(n + 1))) {
            evbuffer_copyout(in, body, n);
            body[n] = '\0';
            r.body = body;
            r.body_len = n;
        } else {
            r.body = "";
        }
        conn_hdr = evhttp_find_header(r.headers, "Connection");
        if (conn_hdr && !strcasecmp(conn_hdr, "close"))
            cn->dead = 1;
        cn->used = 1;
        cn->idle_ns = cb_time_mono_ns();
        cn->call = NULL;
        if (cn->dead)
            conn_retire(cn);
    } else {
        describe_failure(call, cn, why, sizeof why);
        r.error = why;
        r.timed_out = call->have_err && call->err == EVREQ_HTTP_TIMEOUT;
        conn_retire(cn);
    }
    call->cn = NULL;
    finish(call, &r);
    free(body);
    origin_pump(o);
}

static void err_cb(enum evhttp_request_error e, void *arg)
{
    cb_http_call *call = arg;
    call->err = e;
    call->have_err = 1;
}

/* Take cn out of its pool and free it now: only from our own timers, never
 * from inside evhttp. Its request goes with it, without a callback. */
static void conn_drop_now(conn *cn)
{
    origin *o = cn->o;
    for (conn **p = &o->conns; *p; p = &(*p)->next)
        if (*p == cn) {
            *p = cn->next;
            o->nconns--;
            break;
        }
    conn_free_now(cn);
}

static void queue_remove(origin *o, cb_http_call *call)
{
    for (cb_http_call **p = &o->qhead, *prev = NULL; *p; prev = *p, p = &(*p)->qnext)
        if (*p == call) {
            *p = call->qnext;
            if (o->qtail == call)
                o->qtail = prev;
            return;
        }
}

/* A timer ended the call: fail it with `why`. */
static void expire(cb_http_call *call, const char *why)
{
    origin *o = call->o;
    cb_http_resp r = {0};
    if (call->cn) {
        conn_drop_now(call->cn);
        call->cn = NULL;
        call->req = NULL; /* freed with the connection */
    } else {
        queue_remove(o, call); /* still queued */
    }
    r.error = why;
    r.timed_out = 1;
    finish(call, &r);
    origin_pump(o);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_http_call *call = arg;
    char why[320];
    (void)fd;
    (void)what;
    snprintf(why, sizeof why, "%s:%d: no response within %lld ms", call->o->host, call->o->port,
             (long long)call->timeout_ms);
    expire(call, why);
}

static void ctimer_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_http_call *call = arg;
    conn *cn = call->cn;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t s;
    char why[320];
    (void)fd;
    (void)what;
    if (!cn)
        return;
    s = bufferevent_getfd(evhttp_connection_get_bufferevent(cn->evcon));
    if (s >= 0 && !getpeername(s, (struct sockaddr *)&ss, &sl))
        return; /* connected in time */
    snprintf(why, sizeof why, "cannot connect to %s:%d within %lld ms", call->o->host,
             call->o->port, (long long)call->c->o.connect_timeout_ms);
    expire(call, why);
}

/* Put call on connection cn. On failure the call ends with an error. */
static void dispatch(cb_http_call *call, conn *cn)
{
    struct evhttp_request *req = call->req;
    call->cn = cn;
    cn->call = call;
    if (evhttp_make_request(cn->evcon, req, call->type, call->uri) != 0) {
        /* The socket could not be made; the request is still ours. */
        cb_http_resp r = {0};
        conn_retire(cn);
        call->cn = NULL;
        r.error = "cannot send the request";
        finish(call, &r);
        return;
    }
    call->req = NULL; /* the connection owns it now */
    /* TLS writes a request as several records: without TCP_NODELAY each
     * one after the first waits for a delayed ACK (cb bench http: 363 -> 12,400
     * requests/s). A plain request goes out in one write, and Nagle helps
     * there (31,000 vs 21,700 requests/s with TCP_NODELAY). */
    if (cn->o->tls)
        set_nodelay(cn);
    if (!cn->used)
        listen_in(cn);
    if (!cn->used && call->ctimer)
        arm_ms(call->ctimer, call->c->o.connect_timeout_ms);
}

static void origin_pump(origin *o)
{
    while (o->qhead) {
        conn *cn;
        cb_http_call *call;
        conn *next;
        int64_t now = cb_time_mono_ns();
        for (cn = o->conns; cn; cn = next) {
            next = cn->next;
            if (cn->call || cn->dead)
                continue;
            /* Idle too long: the server may be closing it right now (a
             * request written into that close would fail); open a new one. */
            if (now - cn->idle_ns > o->c->o.idle_ms * 1000000) {
                conn_retire(cn);
                continue;
            }
            break;
        }
        if (!cn) {
            if (o->nconns >= o->c->o.max_conns || !(cn = conn_new(o)))
                return;
        }
        call = o->qhead;
        o->qhead = call->qnext;
        if (!o->qhead)
            o->qtail = NULL;
        call->qnext = NULL;
        dispatch(call, cn);
    }
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    origin_pump(arg);
}

static origin *origin_get(cb_httpc *c, const char *host, int port, int tls)
{
    origin *o;
    for (o = c->origins; o; o = o->next)
        if (o->port == port && o->tls == tls && !strcmp(o->host, host))
            return o;
    if (!(o = cb_calloc(1, sizeof *o)))
        return NULL;
    o->c = c;
    snprintf(o->host, sizeof o->host, "%s", host);
    o->port = port;
    o->tls = tls;
    o->v6 = strchr(host, ':') != NULL;
    if (!(o->kick = event_new(c->base, -1, 0, kick_cb, o))) {
        free(o);
        return NULL;
    }
    o->next = c->origins;
    c->origins = o;
    return o;
}

static int method_of(const char *m, enum evhttp_cmd_type *out)
{
    static const struct {
        const char *name;
        enum evhttp_cmd_type t;
    } ms[] = {{"GET", EVHTTP_REQ_GET},
              {"POST", EVHTTP_REQ_POST},
              {"PUT", EVHTTP_REQ_PUT},
              {"DELETE", EVHTTP_REQ_DELETE},
              {"HEAD", EVHTTP_REQ_HEAD}};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        if (!strcmp(m, ms[i].name)) {
            *out = ms[i].t;
            return 0;
        }
    return -1;
}

cb_status cb_httpc_request(cb_httpc *c, const cb_http_req *rq, cb_http_done_cb *done, void *ctx,
                           cb_http_call **out, char *err, size_t errlen)
{
    struct evhttp_uri *u = NULL;
    const char *scheme, *host, *path, *query;
    char hostbuf[256], hosthdr[300];
    int port, tls;
    cb_http_call *call = NULL;
    struct evkeyvalq *hdrs;
    origin *o;
    int have_host = 0;
    size_t n;

    if (out)
        *out = NULL;
    if (!c || !rq || !rq->url || !rq->method || !done)
        return CB_EINVAL;
    if (!(u = evhttp_uri_parse(rq->url))) {
        snprintf(err, errlen, "not a URL: %s", rq->url);
        return CB_EINVAL;
    }
    scheme = evhttp_uri_get_scheme(u);
    host = evhttp_uri_get_host(u);
    if (!scheme || !host || !*host || (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
        snprintf(err, errlen, "not an http(s) URL: %s", rq->url);
        evhttp_uri_free(u);
        return CB_EINVAL;
    }
    tls = !strcmp(scheme, "https");
    port = evhttp_uri_get_port(u);
    if (port < 0)
        port = tls ? 443 : 80;
    n = strlen(host);
    if (host[0] == '[' && n > 2 && n - 2 < sizeof hostbuf) /* an IPv6 literal */
        snprintf(hostbuf, sizeof hostbuf, "%.*s", (int)(n - 2), host + 1);
    else
        snprintf(hostbuf, sizeof hostbuf, "%s", host);
    if ((port == 80 && !tls) || (port == 443 && tls))
        snprintf(hosthdr, sizeof hosthdr, "%s", host);
    else
        snprintf(hosthdr, sizeof hosthdr, "%s:%d", host, port);
    path = evhttp_uri_get_path(u);
    query = evhttp_uri_get_query(u);

    if (!(call = cb_calloc(1, sizeof *call)))
        goto nomem;
    if (method_of(rq->method, &call->type)) {
        snprintf(err, errlen, "unsupported method %s", rq->method);
        evhttp_uri_free(u);
        free(call);
        return CB_EINVAL;
    }
    call->c = c;
    call->done = done;
    call->ctx = ctx;
    call->timeout_ms = rq->timeout_ms > 0 ? rq->timeout_ms : c->o.timeout_ms;
    n = strlen(path && *path ? path : "/") + (query ? strlen(query) + 1 : 0) + 1;
    if (!(call->uri = malloc(n)))
        goto nomem;
    snprintf(call->uri, n, "%s%s%s", path && *path ? path : "/", query ? "?" : "",
             query ? query : "");
    if (!(o = origin_get(c, hostbuf, port, tls)))
        goto nomem;
    call->o = o;
    if (!(call->req = evhttp_request_new(req_cb, call)))
        goto nomem;
    evhttp_request_set_error_cb(call->req, err_cb);
    hdrs = evhttp_request_get_output_headers(call->req);
    for (size_t i = 0; i < rq->nheaders; i++) {
        if (!strcasecmp(rq->headers[i].name, "Host"))
            have_host = 1;
        if (evhttp_add_header(hdrs, rq->headers[i].name, rq->headers[i].value)) {
            snprintf(err, errlen, "invalid header %s", rq->headers[i].name);
            evhttp_uri_free(u);
            call_free(call);
            return CB_EINVAL;
        }
    }
    if (!have_host)
        evhttp_add_header(hdrs, "Host", hosthdr);
    if (rq->body && rq->body_len &&
        evbuffer_add(evhttp_request_get_output_buffer(call->req), rq->body, rq->body_len))
        goto nomem;
    if (!(call->timer = evtimer_new(c->base, timer_cb, call)) ||
        !(call->ctimer = evtimer_new(c->base, ctimer_cb, call)))
        goto nomem;
    evhttp_uri_free(u);
    arm_ms(call->timer, call->timeout_ms);
    if (o->qtail)
        o->qtail->qnext = call;
    else
        o->qhead = call;
    o->qtail = call;
    if (out)
        *out = call;
    /* Not from inside this call: the pump may fail the request at once. */
    event_active(o->kick, EV_TIMEOUT, 0);
    return CB_OK;
nomem:
    evhttp_uri_free(u);
    if (call)
        call_free(call);
    return CB_ENOMEM;
}

void cb_http_cancel(cb_http_call *call)
{
    origin *o;
    if (!call)
        return;
    o = call->o;
    if (call->cn) {
        conn_drop_now(call->cn);
        call->req = NULL;
    } else {
        queue_remove(o, call);
    }
    call_free(call);
    event_active(o->kick, EV_TIMEOUT, 0);
}

cb_status cb_httpc_new(struct event_base *base, const cb_httpc_opts *o, cb_httpc **out, char *err,
                       size_t errlen)
{
    cb_httpc *c;
    cb_httpc_opts def;
    if (!base || !out)
        return CB_EINVAL;
    if (!o) {
        cb_httpc_opts_init(&def);
        o = &def;
    }
    if (!(c = cb_calloc(1, sizeof *c)))
        return CB_ENOMEM;
    c->base = base;
    c->o = *o;
    if (c->o.connect_timeout_ms <= 0)
        c->o.connect_timeout_ms = 5000;
    if (c->o.timeout_ms <= 0)
        c->o.timeout_ms = 60000;
    if (c->o.max_conns <= 0)
        c->o.max_conns = 64;
    if (!c->o.max_body)
        c->o.max_body = 6u * 1024u * 1024u;
    if (c->o.idle_ms <= 0)
        c->o.idle_ms = 4000;
    c->o.ca_file = NULL; /* not kept: loaded below */
    if (!(c->reaper = event_new(base, -1, 0, reap_cb, c)))
        goto nomem;
    if (!(c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                            EVDNS_BASE_DISABLE_WHEN_INACTIVE))) {
        /* No resolv.conf: numeric hosts and /etc/hosts still work. */
        if (!(c->dns = evdns_base_new(base, 0)))
            goto nomem;
    }
    evdns_base_load_hosts(c->dns, NULL);
    if (!(c->ssl = SSL_CTX_new(TLS_client_method())))
        goto nomem;
    SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ssl, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (o->ca_file && *o->ca_file) {
        if (SSL_CTX_load_verify_locations(c->ssl, o->ca_file, NULL) != 1) {
            char es[256];
            ERR_error_string_n(ERR_get_error(), es, sizeof es);
            snprintf(err, errlen, "CA file %s: %s", o->ca_file, es);
            cb_httpc_free(c);
            return CB_EINVAL;
        }
    } else {
        SSL_CTX_set_default_verify_paths(c->ssl);
    }
    *out = c;
    return CB_OK;
nomem:
    cb_httpc_free(c);
    return CB_ENOMEM;
}

void cb_httpc_free(cb_httpc *c)
{
    if (!c)
        return;
    for (origin *o = c->origins, *next; o; o = next) {
        next = o->next;
        while (o->conns) {
            conn *cn = o->conns;
            cb_http_call *call = cn->call;
            o->conns = cn->next;
            conn_free_now(cn);
            if (call) {
                call->req = NULL;
                call_free(call);
            }
        }
        while (o->qhead) {
            cb_http_call *call = o->qhead;
            o->qhead = call->qnext;
            call_free(call);
        }
        if (o->kick)
            event_free(o->kick);
        free(o);
    }
    if (c->reaper)
        reap_cb(-1, 0, c);
    if (c->reaper)
        event_free(c->reaper);
    if (c->dns)
        evdns_base_free(c->dns, 0);
    if (c->ssl)
        SSL_CTX_free(c->ssl);
    free(c);
}

const char *cb_http_header_get(const cb_http_resp *r, const char *name)
{
    return r->headers ? evhttp_find_header(r->headers, name) : NULL;
}

int64_t cb_http_retry_after_ms(const cb_http_resp *r)
{
    const char *v = cb_http_header_get(r, "Retry-After");
    char *end;
    double s;
    if (!v)
        return 0;
    s = strtod(v, &end);
    if (end == v || s < 0 || s > 86400)
        return 0;
    return (int64_t)(s * 1000.0);
}
