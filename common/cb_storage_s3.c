/* common/cb_storage_s3.c - the `s3` storage driver: the S3 REST API signed
 * with SigV4 (cb_sigv4) on the asynchronous HTTP client (cb_httpc).
 *
 *   list    GET  /?list-type=2&prefix=P&max-keys=N[&start-after=K]
 *   head    HEAD /KEY              Content-Length, ETag
 *   get     GET  /KEY  Range: bytes=S-E   206 Content-Range: bytes S-E/TOTAL
 *   put     PUT  /KEY  (x-amz-content-sha256 of the body)
 *   delete  DELETE /KEY            204
 *
 * (path-style: /BUCKET/KEY on the endpoint; virtual-host: /KEY on
 * BUCKET.HOST). Errors come as <Error><Code>..</Code><Message>..</Message>
 * (cb_s3xml); a HEAD error has no body, so its status names it. Statuses
 * 500, 502, 503, 504 and no response at all are tried again after 100 ms,
 * 400 ms, 1.6 s (or the server's Retry-After), signed anew each time.
 *
 * The same code reads http(s):// URLs of any web server (the "web" driver,
 * cb_storage_web_new): HEAD and GET with Range, nothing signed, the same
 * retries; errors are the HTTP status. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cb_alloc.h"
#include "cb_config.h"
#include "cb_digest.h"
#include "cb_httpc.h"
#include "cb_s3xml.h"
#include "cb_sigv4.h"
#include "cb_url.h"
#include "cb_storage_int.h"

#define ATTEMPTS     4
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct s3_call s3_call;

typedef struct s3_drv {
    struct event_base *base;
    cb_httpc *http;
    char scheme[8], host[300], region[64], key[256], secret[256], token[2048];
    int virtual_host;
    int web;        /* http(s) URLs (c->url), unsigned */
    s3_call *calls; /* in flight, for release */
} s3_drv;

struct s3_call {
    s3_drv *d;
    cb_storage_call *c;
    s3_call *prev, *next;
    cb_http_call *http;
    struct event *retry;
    int attempt;
    int empty;    /* a get of no bytes: a HEAD says whether the range is in the object */
    char sha[65]; /* of the body */
};

/* ---- a request ------------------------------------------------------------------- */

static void send_call(s3_call *sc);

static void call_end(s3_call *sc)
{
    s3_drv *d = sc->d;
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        d->calls = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    if (sc->retry)
        event_free(sc->retry);
    free(sc);
}

static void fail_call(s3_call *sc, cb_status s, const char *why)
{
    cb_storage_call *c = sc->c;
    call_end(sc);
    cb_storage_call_fail(c, s, "%s", why);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_call(arg);
}

/* 1 when the call was scheduled again. */
static int again(s3_call *sc, int64_t after_ms)
{
    struct timeval tv;
    int64_t ms = after_ms > 0 ? after_ms : 100LL << (2 * (sc->attempt - 1));
    if (sc->attempt >= ATTEMPTS)
        return 0;
    if (ms > 20000)
        ms = 20000;
    if (!sc->retry && !(sc->retry = evtimer_new(sc->d->base, retry_cb, sc)))
        return 0;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return evtimer_add(sc->retry, &tv) == 0;
}

static cb_status status_of(int http)
{
    switch (http) {
    case 404:
        return CB_ENOTFOUND;
    case 401:
    case 403:
        return CB_EDENIED;
    case 400:
    case 416:
        return CB_EINVAL;
    default:
        return CB_EIO;
    }
}

/* "Code: Message" of an error response (or its status when it has no body). */
static void error_of(const s3_drv *d, const cb_http_resp *r, char *out, size_t n)
{
    char code[128], msg[600];
    if (d->web)
        snprintf(out, n, "HTTP %d%s", r->status,
                 r->status == 404   ? " (not found)"
                 : r->status == 403 ? " (forbidden)"
                 : r->status == 416 ? " (the range is not in the object)"
                                    : "");
    else if (r->body_len &&
             cb_s3xml_error(r->body, r->body_len, code, sizeof code, msg, sizeof msg) == 0 && *code)
        snprintf(out, n, "%s: %s (HTTP %d)", code, *msg ? msg : "no message", r->status);
    else if (r->status == 404)
        snprintf(out, n, "NoSuchKey: not found (HTTP 404, no error document)");
    else if (r->status == 403)
        snprintf(out, n, "AccessDenied: forbidden (HTTP 403, no error document)");
    else
        snprintf(out, n, "HTTP %d", r->status);
}

static uint64_t header_u64(const cb_http_resp *r, const char *name, uint64_t dflt)
{
    const char *v = cb_http_header_get(r, name);
    char *end;
    unsigned long long x;
    if (!v)
        return dflt;
    x = strtoull(v, &end, 10);
    return end == v ? dflt : (uint64_t)x;
}

/* The quotes off an ETag header into out (a web server's Last-Modified
 * when it sends no ETag). */
static const char *etag_of(const cb_http_resp *r, char *out, size_t n)
{
    const char *v = cb_http_header_get(r, "ETag");
    size_t l;
    if (!v && !(v = cb_http_header_get(r, "Last-Modified")))
        return "";
    if (strncmp(v, "W/", 2) == 0) /* a weak one: the same bytes as far as we can tell */
        v += 2;
    if (*v == '"')
        v++;
    l = strcspn(v, "\"");
    snprintf(out, n, "%.*s", (int)l, v);
    return out;
}

static void finish_list(s3_call *sc, const cb_http_resp *r)
{
    cb_s3_list l;
    cb_storage_res res;
    cb_storage_object *objs;
    char err[256];
    cb_status s = cb_s3xml_list(r->body, r->body_len, &l, err, sizeof err);
    if (s != CB_OK) {
        char why[300];
        snprintf(why, sizeof why, "the listing is not understood: %s", err);
        fail_call(sc, s, why);
        return;
    }
    if (!(objs = cb_calloc(l.n ? l.n : 1, sizeof *objs))) {
        cb_s3_list_cleanup(&l);
        fail_call(sc, CB_ENOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < l.n; i++)
        objs[i] = (cb_storage_object){l.v[i].key, l.v[i].size, l.v[i].etag};
    memset(&res, 0, sizeof res);
    res.objects = objs;
    res.nobjects = l.n;
    /* the next page starts after this page's last key (start-after): the
     * same token as the file driver's, and one a restarted reader can make
     * from what it already has */
    res.next = l.truncated && l.n > 0 ? l.v[l.n - 1].key : NULL;
    {
        cb_storage_call *c = sc->c;
        call_end(sc);
        cb_storage_call_done(c, &res);
    }
    free(objs);
    cb_s3_list_cleanup(&l);
}

static void finish_get(s3_call *sc, const cb_http_resp *r)
{
    cb_storage_res res;
    char tag[128];
    cb_storage_call *c = sc->c;
    memset(&res, 0, sizeof res);
    res.data = r->body;
    res.len = r->body_len;
    res.size = r->body_len;
    res.etag = etag_of(r, tag, sizeof tag);
    if (r->status == 206) { /* Content-Range: bytes S-E/TOTAL */
        const char *cr = cb_http_header_get(r, "Content-Range");
        const char *slash = cr ? strrchr(cr, '/') : NULL;
        if (slash && slash[1] != '*')
            res.size = strtoull(slash + 1, NULL, 10);
    } else if (r->status == 416) { /* a range of an empty object: nothing */
        const char *cr = cb_http_header_get(r, "Content-Range");
        if (c->start != 0 || !cr || strcmp(cr, "bytes */0") != 0) {
            char why[700];
            error_of(sc->d, r, why, sizeof why);
            fail_call(sc, CB_EINVAL, why);
            return;
        }
        res.data = "";
        res.len = res.size = 0;
    } else if (c->start > 0) { /* a server that ignored the range */
        fail_call(sc, CB_EPROTO, "the server answered a ranged get with the whole object");
        return;
    } else if (c->end != CB_STORAGE_RANGE_END && res.len > c->end) {
        res.len = c->end; /* the whole object from a server that ignored the range */
    }
    call_end(sc);
    cb_storage_call_done(c, &res);
}

static void http_done(const cb_http_resp *r, void *ctx)
{
    s3_call *sc = ctx;
    cb_storage_call *c = sc->c;
    cb_storage_res res;
    char why[800], tag[128];
    sc->http = NULL;
    if (r->status == 0 || r->status == 500 || r->status == 502 || r->status == 503 ||
        r->status == 504) {
        if (again(sc, r->status ? cb_http_retry_after_ms(r) : 0))
            return;
        if (r->status == 0)
            snprintf(why, sizeof why, "no answer after %d attempts: %s", sc->attempt,
                     r->error ? r->error : "no response");
        else {
            error_of(sc->d, r, why, sizeof why);
            snprintf(why + strlen(why), sizeof why - strlen(why), " after %d attempts",
                     sc->attempt);
        }
        fail_call(sc, r->timed_out ? CB_ETIMEDOUT : CB_EIO, why);
        return;
    }
    if (c->op == CB_ST_GET && !sc->empty &&
        (r->status == 206 || r->status == 416 || r->status == 200)) {
        finish_get(sc, r);
        return;
    }
    if (r->status == 404 && c->op == CB_ST_DELETE)
        ; /* deleting what is not there is done */
    else if (r->status == 409 && c->op == CB_ST_MKBUCKET && r->body_len &&
             strstr(r->body, "BucketAlreadyOwnedByYou"))
        ; /* ours already */
    else if (r->status < 200 || r->status > 299) {
        error_of(sc->d, r, why, sizeof why);
        fail_call(sc, status_of(r->status), why);
        return;
    }
    if (c->op == CB_ST_LIST) {
        finish_list(sc, r);
        return;
    }
    memset(&res, 0, sizeof res);
    res.etag = etag_of(r, tag, sizeof tag);
    if ((c->op == CB_ST_HEAD || sc->empty) && !cb_http_header_get(r, "Content-Length")) {
        fail_call(sc, CB_EPROTO, "the server does not say the object's size (no Content-Length)");
        return;
    }
    if (c->op == CB_ST_HEAD || sc->empty)
        res.size = header_u64(r, "Content-Length", 0);
    if (sc->empty) {
        if (c->start > res.size || (c->start == res.size && res.size > 0)) {
            snprintf(why, sizeof why,
                     "InvalidRange: the range starts at byte %llu (the object has %llu bytes)",
                     (unsigned long long)c->start, (unsigned long long)res.size);
            fail_call(sc, CB_EINVAL, why);
            return;
        }
        res.data = "";
    } else if (c->op == CB_ST_PUT)
        res.size = c->len;
    call_end(sc);
    cb_storage_call_done(c, &res);
}

static const char *method_of(cb_storage_op op)
{
    switch (op) {
    case CB_ST_HEAD:
        return "HEAD";
    case CB_ST_PUT:
    case CB_ST_MKBUCKET:
        return "PUT";
    case CB_ST_DELETE:
        return "DELETE";
    default:
        return "GET";
    }
}

/* "k=v&..." percent-encoded, for a list. */
static int list_query(const cb_storage_call *c, char *q, size_t n)
{
    char pfx[3 * CB_STORAGE_KEY_MAX + 1], tok[3 * CB_STORAGE_KEY_MAX + 1] = "";
    size_t used;
    if (cb_url_encode(c->key, 0, pfx, sizeof pfx) >= sizeof pfx)
        return -1;
    if (c->token && cb_url_encode(c->token, 0, tok, sizeof tok) >= sizeof tok)
        return -1;
    used = (size_t)snprintf(q, n, "list-type=2&max-keys=%zu&prefix=%s%s%s", c->max_keys, pfx,
                            *tok ? "&start-after=" : "", tok);
    return used < n ? 0 : -1;
}

/* The Range header's value of a get, or "" for the whole object. */
static const char *range_of(const cb_storage_call *c, int empty, char *range, size_t n)
{
    *range = '\0';
    if (c->op != CB_ST_GET || empty || (c->start == 0 && c->end == CB_STORAGE_RANGE_END))
        return range;
    if (c->end == CB_STORAGE_RANGE_END)
        snprintf(range, n, "bytes=%llu-", (unsigned long long)c->start);
    else
        snprintf(range, n, "bytes=%llu-%llu", (unsigned long long)c->start,
                 (unsigned long long)(c->end - 1));
    return range;
}

/* An http(s) URL: nothing to sign. */
static void send_web(s3_call *sc)
{
    cb_storage_call *c = sc->c;
    cb_http_header h[1];
    cb_http_req rq;
    char range[64], err[300];
    cb_status s;
    memset(&rq, 0, sizeof rq);
    rq.method = sc->empty || c->op == CB_ST_HEAD ? "HEAD" : "GET";
    rq.url = c->url;
    if (*range_of(c, sc->empty, range, sizeof range)) {
        h[0] = (cb_http_header){"Range", range};
        rq.headers = h;
        rq.nheaders = 1;
    }
    if ((s = cb_httpc_request(sc->d->http, &rq, http_done, sc, &sc->http, err, sizeof err)) !=
        CB_OK)
        fail_call(sc, s, err);
}

static void send_call(s3_call *sc)
{
    s3_drv *d = sc->d;
    cb_storage_call *c = sc->c;
    char path[CB_STORAGE_BUCKET_MAX + CB_STORAGE_KEY_MAX + 4], *epath = NULL, *query = NULL;
    char host[400], url[16384], date[32], auth[600], range[64];
    cb_sigv4_header h[7];
    cb_http_header hh[8];
    size_t nh = 0, plen;
    cb_sigv4_req sr;
    cb_http_req rq;
    time_t now = time(NULL);
    struct tm tm;
    char err[300];
    cb_status s;

    sc->attempt++;
    if (d->web) {
        send_web(sc);
        return;
    }
    if (d->virtual_host) {
        snprintf(host, sizeof host, "%s.%s", c->bucket, d->host);
        snprintf(path, sizeof path, "/%s",
                 c->op == CB_ST_LIST || c->op == CB_ST_MKBUCKET ? "" : c->key);
    } else {
        snprintf(host, sizeof host, "%s", d->host);
        int whole = c->op == CB_ST_LIST || c->op == CB_ST_MKBUCKET; /* the bucket itself */
        snprintf(path, sizeof path, "/%s%s%s", c->bucket, whole ? "" : "/", whole ? "" : c->key);
    }
    plen = cb_url_encode(path, 1, NULL, 0) + 1;
    if (!(epath = cb_malloc(plen)) || !(query = cb_malloc(8192))) {
        free(epath);
        fail_call(sc, CB_ENOMEM, "out of memory");
        return;
    }
    (void)cb_url_encode(path, 1, epath, plen);
    *query = '\0';
    if (c->op == CB_ST_LIST && list_query(c, query, 8192) != 0) {
        free(epath);
        free(query);
        fail_call(sc, CB_EINVAL, "the prefix and token are too long for one request");
        return;
    }
    snprintf(url, sizeof url, "%s://%s%s%s%s", d->scheme, host, epath, *query ? "?" : "", query);
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);

    h[nh++] = (cb_sigv4_header){"host", host};
    h[nh++] = (cb_sigv4_header){"x-amz-date", date};
    h[nh++] = (cb_sigv4_header){"x-amz-content-sha256", c->data ? sc->sha : EMPTY_SHA256};
    if (*range_of(c, sc->empty, range, sizeof range))
        h[nh++] = (cb_sigv4_header){"range", range};
    if (*d->token)
        h[nh++] = (cb_sigv4_header){"x-amz-security-token", d->token};
    memset(&sr, 0, sizeof sr);
    sr.method = sc->empty ? "HEAD" : method_of(c->op);
    sr.path = path;
    sr.query = *query ? query : NULL;
    sr.query_encoded = 1;
    sr.headers = h;
    sr.nheaders = nh;
    sr.body = c->data;
    sr.body_len = c->data ? c->len : 0;
    sr.access_key = d->key;
    sr.secret_key = d->secret;
    sr.region = d->region;
    sr.service = "s3";
    sr.amz_date = date;
    s = cb_sigv4_authorization(&sr, auth, sizeof auth);
    free(epath);
    free(query);
    if (s != CB_OK) {
        fail_call(sc, s, "cannot sign the request");
        return;
    }
    for (size_t i = 0; i < nh; i++)
        hh[i] = (cb_http_header){h[i].name, h[i].value};
    hh[nh] = (cb_http_header){"Authorization", auth};
    memset(&rq, 0, sizeof rq);
    rq.method = sr.method;
    rq.url = url;
    rq.headers = hh;
    rq.nheaders = nh + 1;
    rq.body = sr.body;
    rq.body_len = sr.body_len;
    if ((s = cb_httpc_request(d->http, &rq, http_done, sc, &sc->http, err, sizeof err)) != CB_OK)
        fail_call(sc, s, err);
}

static void s3_start(void *drv, cb_storage_call *c)
{
    s3_drv *d = drv;
    s3_call *sc = cb_calloc(1, sizeof *sc);
    if (!sc) {
        cb_storage_call_fail(c, CB_ENOMEM, "out of memory");
        return;
    }
    sc->d = d;
    sc->c = c;
    sc->next = d->calls;
    if (d->calls)
        d->calls->prev = sc;
    d->calls = sc;
    if (c->op == CB_ST_MKBUCKET && strcmp(d->region, "us-east-1") != 0) {
        char xml[300];
        int n =
            snprintf(xml, sizeof xml,
                     "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                     "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
                     d->region);
        if (!(c->data = cb_strdup(xml))) {
            fail_call(sc, CB_ENOMEM, "out of memory");
            return;
        }
        c->len = (size_t)n;
    }
    if (c->data && cb_digest_hex(c->data, c->len, sc->sha) != CB_OK) {
        fail_call(sc, CB_ENOMEM, "out of memory");
        return;
    }
    sc->empty = c->op == CB_ST_GET && c->end == c->start;
    send_call(sc);
}

static void s3_release(void *drv)
{
    s3_drv *d = drv;
    while (d->calls) {
        s3_call *sc = d->calls;
        if (sc->http)
            cb_http_cancel(sc->http);
        fail_call(sc, CB_ECLOSED, "the storage was closed");
    }
    cb_httpc_free(d->http);
    free(d);
}

/* The HTTP client of the configuration's ca_file, verify and timeout_ms. */
static cb_status make_client(struct event_base *base, const json_t *conf, s3_drv *d, char *err,
                             size_t errlen)
{
    const json_t *verify = json_object_get(conf, "verify");
    const json_t *timeout = json_object_get(conf, "timeout_ms");
    cb_httpc_opts o;
    cb_httpc_opts_init(&o);
    o.ca_file = json_string_value(json_object_get(conf, "ca_file"));
    o.verify = verify ? json_is_true(verify) : 1;
    o.max_body = CB_STORAGE_IO_MAX + 1;
    o.timeout_ms = json_is_integer(timeout) && json_integer_value(timeout) > 0
                       ? json_integer_value(timeout)
                       : 300000;
    o.max_conns = 16;
    return cb_httpc_new(base, &o, &d->http, err, errlen);
}

cb_status cb_storage_s3_new(struct event_base *base, const json_t *conf, void **drv, char *err,
                            size_t errlen)
{
    s3_drv *d = cb_calloc(1, sizeof *d);
    char endpoint[512];
    const char *addressing = json_string_value(json_object_get(conf, "addressing"));
    const char *p;
    cb_status s;
    if (!d)
        return CB_ENOMEM;
    d->base = base;
    cb_config_pick(d->region, sizeof d->region, conf, "region", "AWS_REGION", "AWS_DEFAULT_REGION");
    if (!*d->region)
        snprintf(d->region, sizeof d->region, "us-east-1");
    cb_config_pick(d->key, sizeof d->key, conf, "access_key_id", "AWS_ACCESS_KEY_ID", NULL);
    cb_config_pick(d->secret, sizeof d->secret, conf, "secret_access_key", "AWS_SECRET_ACCESS_KEY",
                   NULL);
    cb_config_pick(d->token, sizeof d->token, conf, "session_token", "AWS_SESSION_TOKEN", NULL);
    cb_config_pick(endpoint, sizeof endpoint, conf, "endpoint", NULL, NULL);
    if (!*d->key || !*d->secret) {
        snprintf(err, errlen,
                 "/storage: no credentials (access_key_id and secret_access_key, or "
                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
        free(d);
        return CB_EINVAL;
    }
    d->virtual_host = addressing ? strcmp(addressing, "virtual") == 0 : !*endpoint;
    if (addressing && strcmp(addressing, "virtual") != 0 && strcmp(addressing, "path") != 0) {
        snprintf(err, errlen, "/storage/addressing: \"%s\" is neither \"path\" nor \"virtual\"",
                 addressing);
        free(d);
        return CB_EINVAL;
    }
    if (!*endpoint)
        snprintf(endpoint, sizeof endpoint, "https://s3.%s.amazonaws.com", d->region);
    p = strstr(endpoint, "://");
    if (!p || (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)) {
        snprintf(err, errlen, "/storage/endpoint: \"%s\" is not an http(s) URL", endpoint);
        free(d);
        return CB_EINVAL;
    }
    snprintf(d->scheme, sizeof d->scheme, "%.*s", (int)(p - endpoint), endpoint);
    snprintf(d->host, sizeof d->host, "%.*s", (int)strcspn(p + 3, "/"), p + 3);
    if (p[3 + strcspn(p + 3, "/")] == '/' && p[4 + strcspn(p + 3, "/")] != '\0') {
        snprintf(err, errlen, "/storage/endpoint: \"%s\" has a path; give the server only",
                 endpoint);
        free(d);
        return CB_EINVAL;
    }
    if ((s = make_client(base, conf, d, err, errlen)) != CB_OK) {
        free(d);
        return s;
    }
    *drv = d;
    return CB_OK;
}

cb_status cb_storage_web_new(struct event_base *base, const json_t *conf, void **drv, char *err,
                             size_t errlen)
{
    s3_drv *d = cb_calloc(1, sizeof *d);
    cb_status s;
    if (!d)
        return CB_ENOMEM;
    d->base = base;
    d->web = 1;
    if ((s = make_client(base, conf, d, err, errlen)) != CB_OK) {
        free(d);
        return s;
    }
    *drv = d;
    return CB_OK;
}

const cb_storage_driver cb_storage_s3_driver = {"s3", s3_start, s3_release};
const cb_storage_driver cb_storage_web_driver = {"web", s3_start, s3_release};
