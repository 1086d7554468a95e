/* tools/bench_http.c - the `http` workload: the remote backends' HTTP client
 * (common/cb_httpc.c) against an evhttp server on loopback in a second
 * thread, plain and TLS (a certificate made with the openssl command, verified
 * by the client as in production). N POST requests of a small JSON body,
 * `CONC` at once over the keep-alive pool; the server echoes the body.
 * Measures requests/s, latency p50/p99 and the connections the pool opened:
 * what one adapter worker can push to a fast function endpoint. */
#define _GNU_SOURCE
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "cb_loop.h"
#include "cb_time.h"
#include "cb_httpc.h"

#define CONC 16

typedef struct server {
    struct event_base *base;
    struct evhttp *http;
    SSL_CTX *ssl;
    int port;
    long conns;
    pthread_t thread;
} server;

static void nodelay(struct evhttp_request *req);

static void echo_cb(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evbuffer_new();
    (void)arg;
    nodelay(req);
    evbuffer_add_buffer(out, evhttp_request_get_input_buffer(req));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* Both ends set TCP_NODELAY, as a production server would; else each TLS
 * reply waits for a delayed ACK between its records. */
static void nodelay(struct evhttp_request *req)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    int one = 1, fd = (int)bufferevent_getfd(bev);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    server *s = arg;
    s->conns++;
    return bufferevent_openssl_socket_new(base, -1, SSL_new(s->ssl), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static struct bufferevent *plain_bev(struct event_base *base, void *arg)
{
    server *s = arg;
    s->conns++;
    return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void *serve(void *arg)
{
    server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static int server_start(server *s, const char *dir, int tls)
{
    struct evhttp_bound_socket *bs;
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    char cert[300], key[300];
    memset(s, 0, sizeof *s);
    if (!(s->base = cb_loop_new()) || !(s->http = evhttp_new(s->base)))
        return -1;
    evhttp_set_gencb(s->http, echo_cb, s);
    if (tls) {
        snprintf(cert, sizeof cert, "%s/cert.pem", dir);
        snprintf(key, sizeof key, "%s/key.pem", dir);
        if (!(s->ssl = SSL_CTX_new(TLS_server_method())) ||
            SSL_CTX_use_certificate_file(s->ssl, cert, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_use_PrivateKey_file(s->ssl, key, SSL_FILETYPE_PEM) != 1)
            return -1;
        evhttp_set_bevcb(s->http, tls_bev, s);
    } else {
        evhttp_set_bevcb(s->http, plain_bev, s);
    }
    if (!(bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0)) ||
        getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a, &l))
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, serve, s) ? -1 : 0;
}

static void server_stop(server *s)
{
    event_base_loopbreak(s->base);
    pthread_join(s->thread, NULL);
    evhttp_free(s->http);
    event_base_free(s->base);
    if (s->ssl)
        SSL_CTX_free(s->ssl);
}

typedef struct client {
    struct event_base *base;
    cb_httpc *c;
    char url[128];
    long n, sent, done, bad;
    double *lat_us;
    int64_t *t_start;
} client;

static void send_one(client *cl);

typedef struct slot {
    client *cl;
    long i;
} slot;

static void slot_done(const cb_http_resp *r, void *ctx)
{
    slot *s = ctx;
    client *cl = s->cl;
    cl->lat_us[s->i] = (double)(cb_time_mono_ns() - cl->t_start[s->i]) / 1000.0;
    free(s);
    cl->done++;
    if (r->status != 200 || r->body_len != 13)
        cl->bad++;
    if (cl->done == cl->n)
        event_base_loopbreak(cl->base);
    else
        send_one(cl);
}

static void send_one(client *cl)
{
    static const char body[] = "{\"item\":1234}";
    cb_http_header h = {"Content-Type", "application/json"};
    cb_http_req rq = {.method = "POST",
                      .url = cl->url,
                      .headers = &h,
                      .nheaders = 1,
                      .body = body,
                      .body_len = sizeof body - 1};
    char err[256];
    slot *s;
    if (cl->sent >= cl->n || !(s = malloc(sizeof *s)))
        return;
    s->cl = cl;
    s->i = cl->sent++;
    cl->t_start[s->i] = cb_time_mono_ns();
    if (cb_httpc_request(cl->c, &rq, slot_done, s, NULL, err, sizeof err) != CB_OK) {
        free(s);
        cl->done++;
        cl->bad++;
    }
}

/* One run: n requests, CONC at once. */
static json_t *run_once(const char *dir, int tls, long n)
{
    server srv;
    client cl = {0};
    cb_httpc_opts o;
    char err[256], ca[300];
    int64_t t0, t1;
    json_t *out = NULL;

    if (server_start(&srv, dir, tls) != 0)
        return NULL;
    cb_httpc_opts_init(&o);
    snprintf(ca, sizeof ca, "%s/cert.pem", dir);
    if (tls)
        o.ca_file = ca;
    cl.base = cb_loop_new();
    cl.n = n;
    cl.lat_us = calloc((size_t)n, sizeof *cl.lat_us);
    cl.t_start = calloc((size_t)n, sizeof *cl.t_start);
    snprintf(cl.url, sizeof cl.url, "%s://127.0.0.1:%d/fn", tls ? "https" : "http", srv.port);
    if (cl.base && cl.lat_us && cl.t_start &&
        cb_httpc_new(cl.base, &o, &cl.c, err, sizeof err) == CB_OK) {
        t0 = cb_time_mono_ns();
        for (int i = 0; i < CONC; i++)
            send_one(&cl);
        event_base_dispatch(cl.base);
        t1 = cb_time_mono_ns();
        out =
            json_pack("{s:f, s:f, s:f, s:i, s:i}", "req_per_s", (double)n * 1e9 / (double)(t1 - t0),
                      "p50_us", cb_bench_median(cl.lat_us, (int)n), "p99_us", 0.0, "connections",
                      (json_int_t)srv.conns, "errors", (json_int_t)cl.bad);
        /* cb_bench_median sorted lat_us: the 99th percentile is an index */
        json_object_set_new(out, "p99_us", json_real(cl.lat_us[(size_t)((double)n * 0.99)]));
        cb_httpc_free(cl.c);
    }
    server_stop(&srv);
    if (cl.base)
        event_base_free(cl.base);
    free(cl.lat_us);
    free(cl.t_start);
    return out;
}

cb_status cb_bench_http(const cb_bench_env *env, long n, int runs, json_t **report)
{
    char dir[] = "/tmp/cbbench-http.XXXXXX", cmd[900];
    json_t *rep = json_object(), *modes = json_object();
    (void)env;
    if (!mkdtemp(dir) || !rep || !modes)
        return CB_ENOMEM;
    int undo = cb_bench_cleanup_push("rm -rf '%s'", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout '%s/key.pem' -out '%s/cert.pem' "
             ">/dev/null 2>&1",
             dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cb bench http: cannot make a certificate (openssl)\n");
        json_decref(rep);
        json_decref(modes);
        return CB_EINVAL;
    }
    for (int tls = 0; tls <= 1; tls++) {
        json_t *per = json_array();
        double *rates = calloc((size_t)runs, sizeof *rates);
        for (int r = 0; r < runs; r++) {
            json_t *one = run_once(dir, tls, n);
            if (!one)
                break;
            rates[r] = json_real_value(json_object_get(one, "req_per_s"));
            json_array_append_new(per, one);
        }
        json_object_set_new(
            modes, tls ? "tls" : "plain",
            json_pack("{s:o, s:f}", "runs", per, "median_req_per_s",
                      json_array_size(per) == (size_t)runs ? cb_bench_median(rates, runs) : 0.0));
        free(rates);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cb bench http: cannot remove %s\n", dir);
    cb_bench_cleanup_pop(undo);
    json_object_set_new(rep, "workload", json_string("http"));
    json_object_set_new(rep, "params",
                        json_pack("{s:i, s:i, s:i, s:s}", "n", (json_int_t)n, "runs",
                                  (json_int_t)runs, "concurrency", (json_int_t)CONC, "server",
                                  "evhttp on loopback, another thread, echoing a 13-byte body"));
    json_object_set_new(rep, "modes", modes);
    json_object_set_new(rep, "machine", cb_bench_machine());
    *report = rep;
    return CB_OK;
}
