/* sla/prom.c - instant queries to a Prometheus server (see prom.h). */
#include "prom.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_buf.h"
#include "cb_httpc.h"
#include "cb_json.h"
#include "cb_url.h"

typedef struct call {
    struct cb_sla_prom *p;
    cb_sla_prom_cb *cb;
    void *ctx;
    cb_http_call *http;
    struct call *prev, *next;
} call;

struct cb_sla_prom {
    cb_httpc *http;
    char url[512];
    call *calls;
};

cb_status cb_sla_prom_new(struct event_base *base, const char *url, cb_sla_prom **out, char *err,
                          size_t errlen)
{
    cb_sla_prom *p;
    cb_httpc_opts o;
    cb_status s;
    size_t n = strlen(url);
    *out = NULL;
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        snprintf(err, errlen, "the Prometheus URL is http://HOST:PORT or https://...");
        return CB_EINVAL;
    }
    if (n >= sizeof p->url) {
        snprintf(err, errlen, "the Prometheus URL is too long");
        return CB_EINVAL;
    }
    if (!(p = cb_calloc(1, sizeof *p)))
        return CB_ENOMEM;
    snprintf(p->url, sizeof p->url, "%.*s", (int)(n && url[n - 1] == '/' ? n - 1 : n), url);
    cb_httpc_opts_init(&o);
    o.timeout_ms = 10000;
    o.max_conns = 4;
    if ((s = cb_httpc_new(base, &o, &p->http, err, errlen)) != CB_OK) {
        free(p);
        return s;
    }
    *out = p;
    return CB_OK;
}

static void call_free(call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->p->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

void cb_sla_prom_free(cb_sla_prom *p)
{
    if (!p)
        return;
    while (p->calls) {
        cb_http_cancel(p->calls->http);
        call_free(p->calls);
    }
    cb_httpc_free(p->http);
    free(p);
}

int cb_sla_prom_value(const char *body, size_t len, double *out, char *why, size_t whylen)
{
    json_error_t je;
    cb_status s;
    json_t *root = cb_json_loadb(body, len, 0, &je, &s), *data, *result, *sample, *v;
    const char *type, *text;
    char *end;
    int rc = -1;
    if (!root) {
        snprintf(why, whylen, "the answer is not JSON: %s", je.text);
        return -1;
    }
    data = json_object_get(root, "data");
    result = json_object_get(data, "result");
    type = json_string_value(json_object_get(data, "resultType"));
    if (!json_is_string(json_object_get(root, "status")) ||
        strcmp(json_string_value(json_object_get(root, "status")), "success")) {
        snprintf(why, whylen, "%s", json_string_value(json_object_get(root, "error")) ?: "failed");
        goto out;
    }
    if (type && !strcmp(type, "vector")) {
        if (!json_array_size(result)) {
            rc = 0;
            goto out;
        }
        sample = json_object_get(json_array_get(result, 0), "value");
    } else if (type && !strcmp(type, "scalar")) {
        sample = result;
    } else {
        snprintf(why, whylen, "a %s answer: the query must give a vector or a scalar",
                 type ? type : "shapeless");
        goto out;
    }
    v = json_array_get(sample, 1);
    if (!(text = json_string_value(v))) {
        snprintf(why, whylen, "no sample value in the answer");
        goto out;
    }
    *out = strtod(text, &end);
    if (end == text || *end) {
        snprintf(why, whylen, "the sample \"%.40s\" is no number", text);
        goto out;
    }
    rc = 1;
out:
    json_decref(root);
    return rc;
}

static void done(const cb_http_resp *r, void *ctx)
{
    call *c = ctx;
    char why[300];
    double v = 0;
    int ok;
    c->http = NULL;
    if (r->status == 0) {
        snprintf(why, sizeof why, "%s", r->error ? r->error : "no answer");
        ok = -1;
    } else {
        ok = cb_sla_prom_value(r->body ? r->body : "", r->body_len, &v, why, sizeof why);
        if (ok < 0 && r->status != 200) {
            char head[24];
            size_t n = (size_t)snprintf(head, sizeof head, "HTTP %d: ", r->status), w = strlen(why);
            if (w + n >= sizeof why)
                w = sizeof why - n - 1;
            memmove(why + n, why, w);
            memcpy(why, head, n);
            why[n + w] = '\0';
        }
    }
    c->cb(c->ctx, ok, v, ok < 0 ? why : NULL);
    call_free(c);
}

cb_status cb_sla_prom_query(cb_sla_prom *p, const char *promql, cb_sla_prom_cb *cb, void *ctx)
{
    cb_buf url = {0};
    cb_http_req req = {0};
    char err[256];
    call *c;
    cb_status s;
    cb_buf_adds(&url, p->url);
    cb_buf_adds(&url, "/api/v1/query?query=");
    cb_url_encode_buf(&url, promql, strlen(promql), 0);
    if (url.failed || !(c = cb_calloc(1, sizeof *c))) {
        cb_buf_cleanup(&url);
        return CB_ENOMEM;
    }
    c->p = p;
    c->cb = cb;
    c->ctx = ctx;
    req.method = "GET";
    req.url = url.p;
    if ((s = cb_httpc_request(p->http, &req, done, c, &c->http, err, sizeof err)) != CB_OK) {
        free(c);
        cb_buf_cleanup(&url);
        return s;
    }
    cb_buf_cleanup(&url);
    c->next = p->calls;
    if (p->calls)
        p->calls->prev = c;
    p->calls = c;
    return CB_OK;
}
