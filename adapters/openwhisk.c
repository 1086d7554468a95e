/* adapters/openwhisk.c - the `openwhisk` backend: Apache OpenWhisk's REST
 * API (IBM Cloud Functions is a configuration of it).
 *
 *   {"type": "openwhisk", "api_host": "https://openwhisk.example:443",
 *    "namespace": "_", "api_key": "UUID:KEY",     (or $__OW_API_KEY)
 *    "poll_ms": 500,
 *    "functions": {"long": {"action": "pkg/long", "blocking": false}}}
 *
 * Blocking (the default): POST /api/v1/namespaces/NS/actions/ACTION
 * ?blocking=true&result=true, Basic auth with the API key. 200: the body is
 * the action's result; 502 with {"error": ...}: the action failed; 202 with
 * {"activationId"}: the blocking wait ran out on the server (long actions),
 * so the result is polled. Non-blocking functions ("blocking": false) always
 * take that way: POST ?blocking=false -> 202 {"activationId": ID}, then
 * GET /api/v1/namespaces/NS/activations/ID every poll_ms (loop timers, never
 * a blocking wait) until it is there (404 meanwhile); its response.success
 * and response.result say how it ended. 429 is throttling; 404 on the POST
 * an unknown action; 401/403 a refused key.
 *
 * Parameters are a JSON object: an item that is an object is passed as is,
 * any other item as {"value": item}. The output is the result object. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_secret.h"
#include "cb_json.h"
#include "remote.h"

#define DEFAULT_POLL_MS 500

typedef struct ow_st {
    const json_t *fns;
    char api[512], ns[256], auth[512];
    int64_t poll_ms;
} ow_st;

static cb_status ow_configure(const json_t *conf, const char *account, void **state, char *err,
                              size_t errlen)
{
    ow_st *st = cb_calloc(1, sizeof *st);
    const char *api = json_string_value(json_object_get(conf, "api_host"));
    const char *ns = json_string_value(json_object_get(conf, "namespace"));
    const char *key = json_string_value(json_object_get(conf, "api_key"));
    json_int_t poll = json_integer_value(json_object_get(conf, "poll_ms"));
    unsigned char b64[400];
    size_t kl;

    if (!st)
        return CB_ENOMEM;
    if (!key)
        key = getenv("__OW_API_KEY");
    if (!api || strncmp(api, "http", 4)) {
        snprintf(err, errlen, "/backends/%s/api_host: needs an http(s) URL", account);
        goto bad;
    }
    if (!key || !strchr(key, ':') || (kl = strlen(key)) > 290) {
        snprintf(err, errlen, "/backends/%s/api_key: needs \"UUID:KEY\" (or $__OW_API_KEY)",
                 account);
        goto bad;
    }
    snprintf(st->api, sizeof st->api, "%s", api);
    while (*st->api && st->api[strlen(st->api) - 1] == '/')
        st->api[strlen(st->api) - 1] = '\0';
    snprintf(st->ns, sizeof st->ns, "%s", ns && *ns ? ns : "_");
    EVP_EncodeBlock(b64, (const unsigned char *)key, (int)kl);
    snprintf(st->auth, sizeof st->auth, "Basic %s", b64);
    cb_secret_remember(key); /* from the file or the environment: kept out of outputs */
    cb_secret_remember(st->auth);
    st->fns = json_object_get(conf, "functions");
    st->poll_ms = poll > 0 ? (int64_t)poll : DEFAULT_POLL_MS;
    *state = st;
    return CB_OK;
bad:
    free(st);
    return CB_EINVAL;
}

static void ow_release(void *state)
{
    free(state);
}

static cb_status common_headers(ow_st *st, cb_remote_req *rq)
{
    cb_status s = cb_remote_req_header(rq, "Authorization", st->auth);
    return s == CB_OK ? cb_remote_req_header(rq, "Content-Type", "application/json") : s;
}

static cb_status ow_build(void *state, const cb_invocation *inv, const json_t *item, size_t index,
                          cb_remote_req *rq, char *err, size_t errlen)
{
    ow_st *st = state;
    const json_t *fn = json_object_get(st->fns, inv->function);
    const char *action = json_string_value(json_object_get(fn, "action"));
    int blocking = !json_is_false(json_object_get(fn, "blocking"));
    cb_status s;
    (void)index;
    (void)err;
    (void)errlen;

    if (!action)
        action = inv->function;
    rq->method = "POST";
    snprintf(rq->url, sizeof rq->url, "%s/api/v1/namespaces/%s/actions/%s?%s", st->api, st->ns,
             action, blocking ? "blocking=true&result=true" : "blocking=false");
    if (json_is_object(item)) {
        s = cb_remote_req_json(rq, item);
    } else {
        json_t *p = json_pack("{s:O}", "value", (json_t *)item);
        s = p ? cb_remote_req_json(rq, p) : CB_ENOMEM;
        json_decref(p);
    }
    return s == CB_OK ? common_headers(st, rq) : s;
}

static cb_status ow_build_poll(void *state, const char *ref, cb_remote_req *rq, char *err,
                               size_t errlen)
{
    ow_st *st = state;
    (void)err;
    (void)errlen;
    rq->method = "GET";
    snprintf(rq->url, sizeof rq->url, "%s/api/v1/namespaces/%s/activations/%s", st->api, st->ns,
             ref);
    return common_headers(st, rq);
}

/* The error of a failed action's result: its "error" (a string, or JSON). */
static void action_failed(cb_remote_verdict *v, const json_t *result, const char *status)
{
    const json_t *e = json_object_get(result, "error");
    if (json_is_string(e) && json_string_length(e)) {
        cb_remote_fail(v, CB_FAIL_EXIT, "%s", json_string_value(e));
    } else {
        char *t = e ? cb_json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        cb_remote_fail(v, CB_FAIL_EXIT, "action %s%s%s", status ? status : "failed", t ? ": " : "",
                       t ? t : "");
        free(t);
    }
}

static void ow_judge(void *state, const cb_http_resp *r, int polling, cb_remote_verdict *v)
{
    ow_st *st = state;
    json_error_t je;
    cb_status jst;
    json_t *body = cb_json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &je, &jst);
    char ex[200];

    cb_remote_excerpt(r->body, r->body_len, ex, sizeof ex);
    if (r->status == 429) {
        v->kind = CB_RV_THROTTLE;
        v->delay_ms = cb_http_retry_after_ms(r);
    } else if (polling && r->status == 404) { /* the activation is not recorded yet */
        v->kind = CB_RV_POLL;
        v->delay_ms = st->poll_ms;
    } else if (polling && r->status == 200) {
        const json_t *resp = json_object_get(body, "response");
        const json_t *result = json_object_get(resp, "result");
        if (json_is_true(json_object_get(resp, "success"))) {
            v->kind = CB_RV_OUTPUT;
            v->output = json_incref(result ? (json_t *)result : json_null());
        } else if (resp) {
            action_failed(v, result, json_string_value(json_object_get(resp, "status")));
        } else {
            cb_remote_fail(v, CB_FAIL_BACKEND, "activation record without a response: %s", ex);
        }
    } else if (!polling && r->status == 200) {
        json_decref(body);
        cb_remote_output(r->body, r->body_len, v);
        return;
    } else if (!polling && r->status == 202) {
        const char *id = json_string_value(json_object_get(body, "activationId"));
        if (id && strlen(id) < sizeof v->ref && !strpbrk(id, "/?#")) {
            v->kind = CB_RV_POLL;
            v->delay_ms = st->poll_ms;
            snprintf(v->ref, sizeof v->ref, "%s", id);
        } else {
            cb_remote_fail(v, CB_FAIL_BACKEND, "202 without a usable activationId: %s", ex);
        }
    } else if (!polling && r->status == 502 && json_is_object(body)) {
        action_failed(v, body, "application error");
    } else if (r->status == 404) {
        cb_remote_fail(v, CB_FAIL_BACKEND, "unknown action: %s", ex);
    } else if (r->status == 401 || r->status == 403) {
        cb_remote_fail(v, CB_FAIL_BACKEND, "refused the API key (HTTP %d): %s", r->status, ex);
    } else {
        cb_remote_fail(v, CB_FAIL_BACKEND, "HTTP %d: %s", r->status, ex);
    }
    json_decref(body);
}

const cb_remote_kind cb_remote_openwhisk = {
    .type = "openwhisk",
    .configure = ow_configure,
    .release = ow_release,
    .build = ow_build,
    .build_poll = ow_build_poll,
    .judge = ow_judge,
};

static cb_status ow_create(struct event_base *base, const struct cb_config *reg,
                           const char *account, void **out, char *err, size_t errlen)
{
    return cb_remote_create(&cb_remote_openwhisk, base, reg, account, out, err, errlen);
}

const cb_backend_ops cb_backend_openwhisk = {
    .name = "openwhisk",
    .create = ow_create,
    .invoke = cb_remote_invoke,
    .destroy = cb_remote_destroy,
};
