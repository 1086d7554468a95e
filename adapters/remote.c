/* adapters/remote.c - the shared part of the remote backends (see remote.h). */
#include "remote.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_time.h"
#include "cb_config.h"
#include "cb_secret.h"
#include "pace.h"

#define DEFAULT_TIMEOUT_MS 300000
#define BACKOFF_FIRST_MS   100
#define BACKOFF_MAX_MS     10000

typedef struct rinv rinv;

typedef struct remote {
    const cb_remote_kind *k;
    void *st;
    struct event_base *base;
    cb_httpc *http;
    char account[64];
    int64_t timeout_ms;
    cb_pace pace; /* the requests' pace (pace.h) */
    uint64_t rng;
    rinv *all;
    json_t *conf; /* the account's configuration, its secrets read (cb_secret_resolve) */
} remote;

struct rinv {
    remote *be;
    char tenant[160], job[160], function[260];
    uint32_t task, attempt;
    int64_t first_item; /* the job's index of items[0]; -1: not a map */
    json_t *spec, *items, *outputs;
    size_t next;
    uint32_t throttled, streak;
    int polling;
    char ref[512];
    int64_t deadline_ns, timeout_ms;
    cb_http_call *call;
    struct event *deadline, *wait;
    cb_inv_done_cb *done;
    void *ctx;
    rinv *prev, *nxt;
};

/* ---- requests and verdicts ------------------------------------------------------ */

cb_status cb_remote_req_header(cb_remote_req *r, const char *name, const char *value)
{
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    if (r->nheaders >= CB_REMOTE_MAX_HEADERS || r->hused + nl + vl > sizeof r->hstore)
        return CB_ETOOBIG;
    r->headers[r->nheaders].name = memcpy(r->hstore + r->hused, name, nl);
    r->hused += nl;
    r->headers[r->nheaders].value = memcpy(r->hstore + r->hused, value, vl);
    r->hused += vl;
    r->nheaders++;
    return CB_OK;
}

cb_status cb_remote_req_json(cb_remote_req *r, const json_t *item)
{
    free(r->body);
    if (!(r->body = cb_json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY)))
        return CB_ENOMEM;
    r->body_len = strlen(r->body);
    return CB_OK;
}

void cb_remote_excerpt(const char *body, size_t len, char *out, size_t n)
{
    size_t k = 0;
    if (!n)
        return;
    while (len && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')) {
        body++;
        len--;
    }
    while (k < len && k + 1 < n && body[k] != '\n' && body[k] != '\r' && body[k] != '\0')
        k++;
    memcpy(out, body, k);
    out[k] = '\0';
}

void cb_remote_fail(cb_remote_verdict *v, cb_fail_reason reason, const char *fmt, ...)
{
    va_list ap;
    v->kind = CB_RV_FAIL;
    v->reason = reason;
    va_start(ap, fmt);
    vsnprintf(v->error, sizeof v->error, fmt, ap);
    va_end(ap);
}

void cb_remote_output(const char *body, size_t len, cb_remote_verdict *v)
{
    json_error_t je;
    cb_status st;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i == len) {
        v->kind = CB_RV_OUTPUT;
        v->output = json_null();
        return;
    }
    if (!(v->output = cb_json_loadb(body, len, JSON_DECODE_ANY, &je, &st))) {
        char ex[120];
        if (st == CB_ENOMEM) {
            cb_remote_fail(v, CB_FAIL_BACKEND, "out of memory reading the response");
            return;
        }
        cb_remote_excerpt(body, len, ex, sizeof ex);
        cb_remote_fail(v, CB_FAIL_INVALID_OUTPUT, "the response is not JSON: %s (\"%s\")", je.text,
                       ex);
        return;
    }
    v->kind = CB_RV_OUTPUT;
}

/* ---- invocations ------------------------------------------------------------------ */

static void arm_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void rinv_free(rinv *ri)
{
    remote *be = ri->be;
    if (ri->prev)
        ri->prev->nxt = ri->nxt;
    else
        be->all = ri->nxt;
    if (ri->nxt)
        ri->nxt->prev = ri->prev;
    if (ri->call)
        cb_http_cancel(ri->call);
    if (ri->deadline)
        event_free(ri->deadline);
    if (ri->wait)
        event_free(ri->wait);
    json_decref(ri->spec);
    json_decref(ri->items);
    json_decref(ri->outputs);
    free(ri);
}

/* Report and free. */
static void end(rinv *ri, cb_fail_reason reason, const char *error, const char *detail,
                int64_t retry_after_ms)
{
    cb_inv_result r = {0};
    cb_inv_done_cb *done = ri->done;
    void *ctx = ri->ctx;
    json_t *outputs = json_incref(ri->outputs);
    r.reason = reason;
    r.outputs = reason == CB_FAIL_NONE ? outputs : NULL;
    r.error = error;
    r.stderr_tail = detail;
    r.retry_after_ms = retry_after_ms;
    r.throttled = ri->throttled;
    rinv_free(ri);
    done(&r, ctx);
    json_decref(outputs);
}

static void send_now(rinv *ri);

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_now(arg);
}

/* Send the next request now, or when the account's pace allows. Polls are
 * not paced: they start no invocation. */
static void send_paced(rinv *ri, int64_t delay_ms)
{
    remote *be = ri->be;
    int64_t now = cb_time_mono_ns(), at = now + delay_ms * 1000000;
    if (!ri->polling)
        at = cb_pace_slot(&be->pace, at);
    arm_ms(ri->wait, at > now ? (at - now + 999999) / 1000000 : 0);
}

static void http_done(const cb_http_resp *r, void *ctx);

static void send_now(rinv *ri)
{
    remote *be = ri->be;
    cb_remote_req rq;
    cb_http_req hr;
    cb_invocation inv;
    char err[512] = "";
    int64_t left_ms = (ri->deadline_ns - cb_time_mono_ns()) / 1000000;
    cb_status s;

    if (ri->next >= json_array_size(ri->items)) {
        end(ri, CB_FAIL_NONE, NULL, NULL, 0);
        return;
    }
    if (!ri->polling) { /* its timer may have fired after the next one's slot */
        int64_t wait_ns = cb_pace_start(&be->pace, cb_time_mono_ns());
        if (wait_ns > 0) {
            arm_ms(ri->wait, (wait_ns + 999999) / 1000000);
            return;
        }
    }
    memset(&rq, 0, sizeof rq);
    if (ri->polling) {
        s = be->k->build_poll ? be->k->build_poll(be->st, ri->ref, &rq, err, sizeof err)
                              : CB_EINVAL;
    } else {
        memset(&inv, 0, sizeof inv);
        inv.tenant = ri->tenant;
        inv.job = ri->job;
        inv.task = ri->task;
        inv.attempt = ri->attempt;
        inv.function = ri->function;
        inv.spec = ri->spec;
        inv.items = ri->items;
        inv.first_item = ri->first_item;
        s = be->k->build(be->st, &inv, json_array_get(ri->items, ri->next), ri->next, &rq, err,
                         sizeof err);
    }
    if (s == CB_OK) {
        memset(&hr, 0, sizeof hr);
        hr.method = rq.method;
        hr.url = rq.url;
        hr.headers = rq.headers;
        hr.nheaders = rq.nheaders;
        hr.body = rq.body;
        hr.body_len = rq.body_len;
        /* the invocation's deadline speaks first; this only bounds a stray request */
        hr.timeout_ms = (left_ms > 0 ? left_ms : 1) + 1000;
        s = cb_httpc_request(be->http, &hr, http_done, ri, &ri->call, err, sizeof err);
    }
    free(rq.body);
    if (s != CB_OK) {
        char why[640];
        snprintf(why, sizeof why, "cannot make the request: %s", *err ? err : cb_strerror(s));
        end(ri, CB_FAIL_BACKEND, why, NULL, 0);
    }
}

static int64_t backoff_ms(remote *be, uint32_t streak)
{
    be->rng ^= be->rng << 13; /* xorshift64: jitter, not secrets */
    be->rng ^= be->rng >> 7;
    be->rng ^= be->rng << 17;
    int64_t d = BACKOFF_FIRST_MS;
    for (uint32_t i = 1; i < streak && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    return d / 2 + (int64_t)(be->rng % (uint64_t)(d / 2 + 1)); /* full jitter in the upper half */
}

static void http_done(const cb_http_resp *r, void *ctx)
{
    rinv *ri = ctx;
    remote *be = ri->be;
    cb_remote_verdict v;
    int64_t delay;

    ri->call = NULL;
    if (r->status == 0) {
        end(ri, r->timed_out ? CB_FAIL_TIMEOUT : CB_FAIL_BACKEND, r->error, NULL, 0);
        return;
    }
    memset(&v, 0, sizeof v);
    be->k->judge(be->st, r, ri->polling, &v);
    switch (v.kind) {
    case CB_RV_OUTPUT:
        json_array_append_new(ri->outputs, v.output ? v.output : json_null());
        ri->next++;
        ri->streak = 0;
        ri->polling = 0;
        if (be->pace.interval_ns)
            send_paced(ri, 0); /* the next item's request keeps the pace too */
        else
            send_now(ri);
        return;
    case CB_RV_FAIL:
        end(ri, v.reason, v.error, v.detail, 0);
        free(v.detail);
        return;
    case CB_RV_POLL:
        ri->polling = 1;
        if (*v.ref) /* a new reference; a "not yet" keeps the one we have */
            snprintf(ri->ref, sizeof ri->ref, "%s", v.ref);
        send_paced(ri, v.delay_ms);
        return;
    case CB_RV_THROTTLE:
        ri->throttled++;
        ri->streak++;
        delay = v.delay_ms > 0 ? v.delay_ms : backoff_ms(be, ri->streak);
        if (cb_time_mono_ns() + delay * 1000000 >= ri->deadline_ns) {
            char why[256];
            snprintf(why, sizeof why, "throttled by %s %d times; no time left to ask again",
                     be->account, (int)ri->throttled);
            end(ri, CB_FAIL_THROTTLED, why, NULL, delay);
            return;
        }
        send_paced(ri, delay);
        return;
    }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    rinv *ri = arg;
    char why[256];
    (void)fd;
    (void)what;
    snprintf(why, sizeof why, "no result within %lld ms (item %zu of %zu)",
             (long long)ri->timeout_ms, ri->next + 1, json_array_size(ri->items));
    end(ri, CB_FAIL_TIMEOUT, why, NULL, 0);
}

cb_status cb_remote_invoke(void *self, const cb_invocation *inv, cb_inv_done_cb *done, void *ctx)
{
    remote *be = self;
    rinv *ri;
    int64_t timeout;

    if (!be)
        return CB_ECLOSED;
    timeout = inv->timeout_ms > 0 ? inv->timeout_ms : be->timeout_ms;
    if (!(ri = cb_calloc(1, sizeof *ri)))
        return CB_ENOMEM;
    ri->be = be;
    snprintf(ri->tenant, sizeof ri->tenant, "%s", inv->tenant ? inv->tenant : "");
    snprintf(ri->job, sizeof ri->job, "%s", inv->job ? inv->job : "");
    snprintf(ri->function, sizeof ri->function, "%s", inv->function ? inv->function : "");
    ri->task = inv->task;
    ri->attempt = inv->attempt;
    ri->first_item = inv->first_item;
    ri->spec = json_incref((json_t *)inv->spec);
    ri->items = json_incref((json_t *)inv->items);
    ri->done = done;
    ri->ctx = ctx;
    ri->timeout_ms = timeout;
    ri->deadline_ns = cb_time_mono_ns() + timeout * 1000000;
    ri->nxt = be->all;
    if (be->all)
        be->all->prev = ri;
    be->all = ri;
    if (!(ri->outputs = json_array()) || !(ri->deadline = evtimer_new(be->base, deadline_cb, ri)) ||
        !(ri->wait = evtimer_new(be->base, wait_cb, ri))) {
        ri->done = NULL;
        rinv_free(ri);
        return CB_ENOMEM;
    }
    arm_ms(ri->deadline, timeout);
    send_paced(ri, 0); /* from the loop, never from inside invoke */
    return CB_OK;
}

/* ---- the backend ---------------------------------------------------------------- */

static int64_t conf_ms(const json_t *conf, const char *key, int64_t def)
{
    json_int_t v = json_integer_value(json_object_get(conf, key));
    return v > 0 ? (int64_t)v : def;
}

cb_status cb_remote_create(const cb_remote_kind *k, struct event_base *base, const cb_config *reg,
                           const char *account, void **out, char *err, size_t errlen)
{
    const json_t *given = cb_config_backend(reg, account);
    json_t *conf;
    remote *be;
    cb_httpc_opts ho;
    cb_backend_limits lim;
    json_int_t workers;
    cb_status s;

    if (!given) {
        snprintf(err, errlen, "backend \"%s\" is not configured", account);
        return CB_ENOTFOUND;
    }
    {
        char why[1024];
        if (!(conf = cb_secret_resolve(given, why, sizeof why))) {
            snprintf(err, errlen, "/backends/%s%s", account, why);
            return CB_EINVAL;
        }
    }
    if (!(be = cb_calloc(1, sizeof *be))) {
        json_decref(conf);
        return CB_ENOMEM;
    }
    be->conf = conf;
    be->k = k;
    be->base = base;
    be->rng = (uint64_t)cb_time_now_ns() | 1;
    snprintf(be->account, sizeof be->account, "%s", account);
    be->timeout_ms = conf_ms(conf, "timeout_ms", DEFAULT_TIMEOUT_MS);
    cb_config_limits(reg, account, &lim);
    workers = json_integer_value(json_object_get(conf, "workers"));
    if (lim.rate_per_s > 0)
        be->pace.interval_ns =
            (int64_t)(1e9 * (double)(workers > 1 ? workers : 1) / lim.rate_per_s);
    cb_httpc_opts_init(&ho);
    ho.ca_file = json_string_value(json_object_get(conf, "ca_file"));
    if (json_is_false(json_object_get(conf, "verify")))
        ho.verify = 0;
    ho.connect_timeout_ms = conf_ms(conf, "connect_timeout_ms", ho.connect_timeout_ms);
    ho.timeout_ms = be->timeout_ms;
    ho.max_conns = (int)conf_ms(conf, "max_conns", ho.max_conns);
    ho.idle_ms = conf_ms(conf, "idle_ms", ho.idle_ms);
    if ((s = cb_httpc_new(base, &ho, &be->http, err, errlen)) != CB_OK) {
        json_decref(conf);
        free(be);
        return s;
    }
    if ((s = k->configure(conf, account, &be->st, err, errlen)) != CB_OK) {
        cb_httpc_free(be->http);
        json_decref(conf);
        free(be);
        return s;
    }
    if (!ho.verify)
        CB_LOG_WRN("adapter", "%s: TLS certificate verification is off (\"verify\": false)",
                   account);
    *out = be;
    return CB_OK;
}

const cb_remote_kind *cb_remote_kind_find(const char *type)
{
    static const cb_remote_kind *const kinds[] = {&cb_remote_http, &cb_remote_lambda,
                                                  &cb_remote_openwhisk};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i]->type, type))
            return kinds[i];
    return NULL;
}

void *cb_remote_state(void *self)
{
    return ((remote *)self)->st;
}

void cb_remote_destroy(void *self)
{
    remote *be = self;
    if (!be)
        return;
    while (be->all)
        end(be->all, CB_FAIL_BACKEND, "backend closing", NULL, 0);
    cb_httpc_free(be->http);
    be->k->release(be->st);
    json_decref(be->conf);
    free(be);
}
