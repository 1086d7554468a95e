/* adapters/http.c - the `http` backend: POST each item to the function's URL
 * (Knative services, OpenFaaS gateways, any HTTP function).
 *
 *   {"type": "http", "url": "http://gateway:8080/function/{name}",
 *    "mode": "json" | "cloudevents", "headers": {"Authorization": "..."},
 *    "functions": {"wc": {"url": "https://wc.example/run", "mode": "json"}}}
 *
 * A function is one of `functions` (its own url, mode, headers) or any name
 * when `url` has a {name} placeholder (OpenFaaS: /function/{name}).
 *
 * json mode: the body is the item as JSON; a 2xx answer's body is the
 * output (empty: null). cloudevents mode (binary content mode, as Knative
 * Eventing delivers): the same body with ce-specversion 1.0, ce-id
 * "<tenant>/<job>/<task>/<attempt>/<item>", ce-source "/cbcore/<tenant>/<job>",
 * ce-type (default "dev.cbcore.invocation") and ce-subject = the function;
 * a reply event's data is the output. 429 and 503 are throttling (with
 * Retry-After), 404 an unknown function, anything else non-2xx a failure
 * with the status and the first line of the body.
 *
 * A shipped function (the job's function has "code"; an account with
 * "shipped": true, docs/toolkit.md): the body is the envelope
 * {"code": REF, "python": "3.11", "item": ITEM, "index": I} that a cbcore
 * function server (python3 -m cbcore.function_server) runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cb_alloc.h"
#include "remote.h"

typedef struct http_st {
    const json_t *conf; /* borrowed from the configuration */
    const char *url;    /* template or NULL */
} http_st;

static const char *mode_of(const json_t *v, const char *def)
{
    const char *m = json_string_value(v);
    return m ? m : def;
}

static cb_status http_configure(const json_t *conf, const char *account, void **state, char *err,
                                size_t errlen)
{
    http_st *st;
    const json_t *fns = json_object_get(conf, "functions"), *f;
    const char *name, *mode = mode_of(json_object_get(conf, "mode"), "json");
    const char *url = json_string_value(json_object_get(conf, "url"));

    if (strcmp(mode, "json") && strcmp(mode, "cloudevents")) {
        snprintf(err, errlen, "/backends/%s/mode: \"%s\" is neither \"json\" nor \"cloudevents\"",
                 account, mode);
        return CB_EINVAL;
    }
    if (fns && !json_is_object(fns)) {
        snprintf(err, errlen, "/backends/%s/functions: must be an object", account);
        return CB_EINVAL;
    }
    if (!url && !json_object_size(fns)) {
        snprintf(err, errlen, "/backends/%s: needs a \"url\" or \"functions\" with urls", account);
        return CB_EINVAL;
    }
    json_object_foreach((json_t *)fns, name, f)
    {
        const char *m = mode_of(json_object_get(f, "mode"), mode);
        if (!json_string_value(json_object_get(f, "url")) && (!url || !strstr(url, "{name}"))) {
            snprintf(err, errlen, "/backends/%s/functions/%s: needs a \"url\"", account, name);
            return CB_EINVAL;
        }
        if (strcmp(m, "json") && strcmp(m, "cloudevents")) {
            snprintf(err, errlen, "/backends/%s/functions/%s/mode: \"%s\" is not a mode", account,
                     name, m);
            return CB_EINVAL;
        }
    }
    if (!(st = cb_calloc(1, sizeof *st)))
        return CB_ENOMEM;
    st->conf = conf;
    st->url = url;
    *state = st;
    return CB_OK;
}

static void http_release(void *state)
{
    free(state);
}

/* url with every {name} replaced by name. */
static int expand(const char *tmpl, const char *name, char *out, size_t n)
{
    size_t o = 0, nl = strlen(name);
    for (const char *p = tmpl; *p; p++) {
        if (!strncmp(p, "{name}", 6)) {
            if (o + nl >= n)
                return -1;
            memcpy(out + o, name, nl);
            o += nl;
            p += 5;
        } else {
            if (o + 1 >= n)
                return -1;
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return 0;
}

static int has_header(const json_t *hdrs, const char *name)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)hdrs, k, v)
    {
        if (!strcasecmp(k, name))
            return 1;
    }
    return 0;
}

/* hdrs' headers but those `over1` or `over2` set (they take precedence). */
static cb_status add_headers(cb_remote_req *rq, const json_t *hdrs, const json_t *over1,
                             const json_t *over2)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)hdrs, k, v)
    {
        cb_status s;
        if (json_is_string(v) && !has_header(over1, k) && !has_header(over2, k) &&
            (s = cb_remote_req_header(rq, k, json_string_value(v))) != CB_OK)
            return s;
    }
    return CB_OK;
}

static cb_status http_build(void *state, const cb_invocation *inv, const json_t *item, size_t index,
                            cb_remote_req *rq, char *err, size_t errlen)
{
    http_st *st = state;
    const json_t *fn = json_object_get(json_object_get(st->conf, "functions"), inv->function);
    const char *url = json_string_value(json_object_get(fn, "url"));
    const char *mode =
        mode_of(json_object_get(fn, "mode"), mode_of(json_object_get(st->conf, "mode"), "json"));
    int shipped = json_object_get(inv->spec, "code") != NULL;
    /* the tenant's own headers (its credentials) before the function's and
     * the account's */
    const json_t *mine = json_object_get(
        json_object_get(json_object_get(st->conf, "tenants"), inv->tenant), "headers");
    cb_status s;

    if (!url && shipped) /* a function server: the account's url (cb_config_runs_shipped) */
        url = st->url;
    if (!url && !(st->url && strstr(st->url, "{name}"))) {
        snprintf(err, errlen, "unknown function \"%s\" (not in functions, no {name} url)",
                 inv->function);
        return CB_ENOTFOUND;
    }
    if (expand(url ? url : st->url, inv->function, rq->url, sizeof rq->url)) {
        snprintf(err, errlen, "the URL for \"%s\" is too long", inv->function);
        return CB_ETOOBIG;
    }
    rq->method = "POST";
    if (shipped) { /* a function server: the envelope */
        json_t *env = json_pack(
            "{s:O, s:O*, s:O, s:o*}", "code", json_object_get(inv->spec, "code"), "python",
            json_object_get(inv->spec, "python"), "item", item, "index",
            inv->first_item >= 0 ? json_integer((json_int_t)(inv->first_item + (int64_t)index))
                                 : NULL);
        s = env ? cb_remote_req_json(rq, env) : CB_ENOMEM;
        json_decref(env);
        if (s != CB_OK)
            return s;
        item = NULL;
    }
    if ((item && (s = cb_remote_req_json(rq, item)) != CB_OK) ||
        (s = cb_remote_req_header(rq, "Content-Type", "application/json")) != CB_OK ||
        (s = add_headers(rq, mine, NULL, NULL)) != CB_OK ||
        (s = add_headers(rq, json_object_get(fn, "headers"), mine, NULL)) != CB_OK ||
        (s = add_headers(rq, json_object_get(st->conf, "headers"), mine,
                         json_object_get(fn, "headers"))) != CB_OK)
        return s;
    if (!strcmp(mode, "cloudevents")) {
        char id[512], src[400];
        const char *type = json_string_value(json_object_get(fn, "ce_type"));
        if (!type)
            type = json_string_value(json_object_get(st->conf, "ce_type"));
        snprintf(id, sizeof id, "%s/%s/%u/%u/%zu", inv->tenant, inv->job, inv->task, inv->attempt,
                 index);
        snprintf(src, sizeof src, "/cbcore/%s/%s", inv->tenant, inv->job);
        if ((s = cb_remote_req_header(rq, "ce-specversion", "1.0")) != CB_OK ||
            (s = cb_remote_req_header(rq, "ce-id", id)) != CB_OK ||
            (s = cb_remote_req_header(rq, "ce-source", src)) != CB_OK ||
            (s = cb_remote_req_header(rq, "ce-type", type ? type : "dev.cbcore.invocation")) !=
                CB_OK ||
            (s = cb_remote_req_header(rq, "ce-subject", inv->function)) != CB_OK)
            return s;
    }
    return CB_OK;
}

/* What the status says beyond success, shared with no one: HTTP functions
 * have no error protocol but the status line. */
static void http_judge(void *state, const cb_http_resp *r, int polling, cb_remote_verdict *v)
{
    char ex[200];
    (void)state;
    (void)polling;
    if (r->status >= 200 && r->status < 300) {
        cb_remote_output(r->body, r->body_len, v);
        return;
    }
    if (r->status == 429 || r->status == 503) {
        v->kind = CB_RV_THROTTLE;
        v->delay_ms = cb_http_retry_after_ms(r);
        return;
    }
    cb_remote_excerpt(r->body, r->body_len, ex, sizeof ex);
    if (r->status == 404) {
        cb_remote_fail(v, CB_FAIL_BACKEND, "unknown function: HTTP 404%s%s", *ex ? ": " : "", ex);
        return;
    }
    cb_remote_fail(v, CB_FAIL_EXIT, "HTTP %d%s%s", r->status, *ex ? ": " : "", ex);
    if (r->body_len)
        v->detail = cb_strndup(r->body, r->body_len);
}

const cb_remote_kind cb_remote_http = {
    .type = "http",
    .configure = http_configure,
    .release = http_release,
    .build = http_build,
    .judge = http_judge,
};

static cb_status http_create(struct event_base *base, const struct cb_config *reg,
                             const char *account, void **out, char *err, size_t errlen)
{
    return cb_remote_create(&cb_remote_http, base, reg, account, out, err, errlen);
}

const cb_backend_ops cb_backend_http = {
    .name = "http",
    .create = http_create,
    .invoke = cb_remote_invoke,
    .destroy = cb_remote_destroy,
};
