/* sla/webhook.c - signed POSTs with retries (see webhook.h). */
#include "webhook.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_digest.h"
#include "cb_httpc.h"
#include "cb_log.h"

#define ATTEMPTS       6
#define FIRST_DELAY_MS 500

typedef struct delivery {
    struct cb_sla_webhooks *w;
    char *url, *body;
    size_t len;
    char id[512], kind[16], signature[80];
    int attempt; /* attempts made */
    struct event *timer;
    cb_http_call *call;
    struct delivery *prev, *next;
} delivery;

struct cb_sla_webhooks {
    struct event_base *base;
    cb_httpc *http;
    json_t *secrets;
    delivery *list;
    cb_sla_webhook_stats stats;
};

cb_status cb_sla_webhooks_new(struct event_base *base, const json_t *secrets, cb_sla_webhooks **out,
                              char *err, size_t errlen)
{
    cb_sla_webhooks *w = cb_calloc(1, sizeof *w);
    cb_httpc_opts o;
    cb_status s;
    *out = NULL;
    if (!w)
        return CB_ENOMEM;
    w->base = base;
    cb_httpc_opts_init(&o);
    o.timeout_ms = 10000;
    o.max_conns = 4;
    if (!(w->secrets = secrets ? json_deep_copy(secrets) : json_object())) {
        free(w);
        return CB_ENOMEM;
    }
    if ((s = cb_httpc_new(base, &o, &w->http, err, errlen)) != CB_OK) {
        json_decref(w->secrets);
        free(w);
        return s;
    }
    *out = w;
    return CB_OK;
}

static void delivery_free(delivery *d)
{
    cb_sla_webhooks *w = d->w;
    if (d->prev)
        d->prev->next = d->next;
    else
        w->list = d->next;
    if (d->next)
        d->next->prev = d->prev;
    if (d->call)
        cb_http_cancel(d->call);
    if (d->timer)
        event_free(d->timer);
    free(d->url);
    free(d->body);
    free(d);
}

void cb_sla_webhooks_free(cb_sla_webhooks *w)
{
    if (!w)
        return;
    while (w->list)
        delivery_free(w->list);
    cb_httpc_free(w->http);
    json_decref(w->secrets);
    free(w);
}

static void attempt(delivery *d);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attempt(arg);
}

/* Try again later, or give up. */
static void again(delivery *d, const char *why)
{
    cb_sla_webhooks *w = d->w;
    struct timeval tv;
    int64_t ms = (int64_t)FIRST_DELAY_MS << (d->attempt - 1);
    if (d->attempt >= ATTEMPTS) {
        w->stats.given_up++;
        CB_LOG_ERR("sla", "webhook %s: gave %s up after %d attempts: %s", d->url, d->id, d->attempt,
                   why);
        delivery_free(d);
        return;
    }
    w->stats.retries++;
    CB_LOG_WRN("sla", "webhook %s: %s (attempt %d); trying again in %lld ms", d->url, why,
               d->attempt, (long long)ms);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (!d->timer && !(d->timer = evtimer_new(w->base, on_timer, d))) {
        delivery_free(d);
        return;
    }
    evtimer_add(d->timer, &tv);
}

static void on_done(const cb_http_resp *r, void *ctx)
{
    delivery *d = ctx;
    char why[300];
    d->call = NULL;
    if (r->status >= 200 && r->status < 300) {
        d->w->stats.delivered++;
        CB_LOG_INF("sla", "webhook %s: delivered %s", d->url, d->id);
        delivery_free(d);
        return;
    }
    if (r->status == 0 || r->status == 408 || r->status == 429 || r->status >= 500) {
        if (r->status)
            snprintf(why, sizeof why, "answered %d", r->status);
        else
            snprintf(why, sizeof why, "%s", r->error ? r->error : "no answer");
        again(d, why);
        return;
    }
    d->w->stats.refused++;
    CB_LOG_ERR("sla", "webhook %s: refused %s with %d", d->url, d->id, r->status);
    delivery_free(d);
}

static void attempt(delivery *d)
{
    cb_http_header h[4] = {{"Content-Type", "application/json"},
                           {"X-Cb-Delivery", d->id},
                           {"X-Cb-Event", d->kind},
                           {"X-Cb-Signature", d->signature}};
    cb_http_req req = {"POST", d->url, h, *d->signature ? 4 : 3, d->body, d->len, 0};
    char err[256];
    d->attempt++;
    if (cb_httpc_request(d->w->http, &req, on_done, d, &d->call, err, sizeof err) != CB_OK) {
        d->w->stats.refused++;
        CB_LOG_ERR("sla", "webhook %s: cannot post: %s", d->url, err);
        delivery_free(d);
    }
}

void cb_sla_webhooks_post(cb_sla_webhooks *w, const char *url, const char *secret, const char *id,
                          const char *kind, const char *body, size_t len)
{
    delivery *d;
    char hex[65];
    const char *key = NULL;
    if (secret && !(key = json_string_value(json_object_get(w->secrets, secret)))) {
        w->stats.unsigned_refused++;
        CB_LOG_ERR("sla",
                   "webhook %s: no secret named \"%s\" in cb-sla's secrets file; %s not sent", url,
                   secret, id);
        return;
    }
    if (!(d = cb_calloc(1, sizeof *d)) || !(d->url = cb_strdup(url)) ||
        !(d->body = cb_malloc(len + 1))) {
        if (d)
            free(d->url);
        free(d);
        return;
    }
    memcpy(d->body, body, len);
    d->body[len] = '\0';
    d->len = len;
    d->w = w;
    snprintf(d->id, sizeof d->id, "%s", id);
    snprintf(d->kind, sizeof d->kind, "%s", kind);
    if (key && cb_hmac_sha256_hex(key, strlen(key), body, len, hex) == CB_OK)
        snprintf(d->signature, sizeof d->signature, "sha256=%s", hex);
    d->next = w->list;
    if (w->list)
        w->list->prev = d;
    w->list = d;
    attempt(d);
}

const cb_sla_webhook_stats *cb_sla_webhooks_stats(const cb_sla_webhooks *w)
{
    return &w->stats;
}
