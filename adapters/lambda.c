/* adapters/lambda.c - the `lambda` backend: AWS Lambda's Invoke API,
 * request-response, signed with Signature Version 4 (sigv4.h).
 *
 *   {"type": "lambda", "region": "eu-west-1",
 *    "endpoint": "http://127.0.0.1:3002",          (default https://lambda.REGION.amazonaws.com)
 *    "access_key_id": "...", "secret_access_key": "...", "session_token": "...",
 *    "functions": {"add7": {"name": "svc-prod-add7", "qualifier": "live"}}}
 *
 * Credentials and region not in the file come from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_REGION (or
 * AWS_DEFAULT_REGION), read once at start. Any function name is invoked as
 * is unless `functions` maps it to a Lambda name (and qualifier).
 *
 *   POST /2015-03-31/functions/NAME/invocations[?Qualifier=Q]
 *   200                      output = the body (JSON)
 *   200 X-Amz-Function-Error the handler failed: "ErrorType: message", trace
 *   429 TooManyRequests...   throttling (Retry-After if given)
 *   404 ResourceNotFound...  unknown function (backend failure)
 *   other                    backend failure: status, error type, message */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cb_alloc.h"
#include "cb_config.h"
#include "cb_secret.h"
#include "cb_json.h"
#include "remote.h"
#include "cb_sigv4.h"

typedef struct lambda_st {
    const json_t *fns;
    char region[64], endpoint[512], host[300], key[256], secret[256], token[2048];
} lambda_st;

static cb_status lambda_configure(const json_t *conf, const char *account, void **state, char *err,
                                  size_t errlen)
{
    lambda_st *st = cb_calloc(1, sizeof *st);
    const char *p;
    if (!st)
        return CB_ENOMEM;
    st->fns = json_object_get(conf, "functions");
    cb_config_pick(st->region, sizeof st->region, conf, "region", "AWS_REGION",
                   "AWS_DEFAULT_REGION");
    if (!*st->region)
        snprintf(st->region, sizeof st->region, "us-east-1");
    cb_config_pick(st->key, sizeof st->key, conf, "access_key_id", "AWS_ACCESS_KEY_ID", NULL);
    cb_config_pick(st->secret, sizeof st->secret, conf, "secret_access_key",
                   "AWS_SECRET_ACCESS_KEY", NULL);
    cb_config_pick(st->token, sizeof st->token, conf, "session_token", "AWS_SESSION_TOKEN", NULL);
    cb_secret_remember(st->secret); /* from the file or the environment: kept out of outputs */
    cb_secret_remember(st->token);
    cb_config_pick(st->endpoint, sizeof st->endpoint, conf, "endpoint", NULL, NULL);
    if (!*st->endpoint)
        snprintf(st->endpoint, sizeof st->endpoint, "https://lambda.%s.amazonaws.com", st->region);
    while (*st->endpoint && st->endpoint[strlen(st->endpoint) - 1] == '/')
        st->endpoint[strlen(st->endpoint) - 1] = '\0';
    if (!*st->key || !*st->secret) {
        snprintf(err, errlen,
                 "/backends/%s: no credentials (access_key_id and secret_access_key, or "
                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                 account);
        free(st);
        return CB_EINVAL;
    }
    /* The Host header is signed: the endpoint's authority, as sent. */
    p = strstr(st->endpoint, "://");
    if (!p || strncmp(st->endpoint, "http", 4)) {
        snprintf(err, errlen, "/backends/%s/endpoint: \"%s\" is not an http(s) URL", account,
                 st->endpoint);
        free(st);
        return CB_EINVAL;
    }
    snprintf(st->host, sizeof st->host, "%.*s", (int)strcspn(p + 3, "/"), p + 3);
    *state = st;
    return CB_OK;
}

static void lambda_release(void *state)
{
    free(state);
}

static cb_status lambda_build(void *state, const cb_invocation *inv, const json_t *item,
                              size_t index, cb_remote_req *rq, char *err, size_t errlen)
{
    lambda_st *st = state;
    const json_t *fn = json_object_get(st->fns, inv->function);
    const char *name = json_string_value(json_object_get(fn, "name"));
    const char *qual = json_string_value(json_object_get(fn, "qualifier"));
    char path[600], query[300] = "", date[32], auth[512];
    cb_sigv4_header h[5];
    size_t nh = 0;
    cb_sigv4_req sr;
    time_t now = time(NULL);
    struct tm tm;
    cb_status s;
    (void)index;

    if (!name)
        name = inv->function;
    snprintf(path, sizeof path, "/2015-03-31/functions/%s/invocations", name);
    if (qual)
        snprintf(query, sizeof query, "Qualifier=%s", qual);
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
    if ((s = cb_remote_req_json(rq, item)) != CB_OK)
        return s;
    rq->method = "POST";
    snprintf(rq->url, sizeof rq->url, "%s%s%s%s", st->endpoint, path, *query ? "?" : "", query);

    h[nh++] = (cb_sigv4_header){"host", st->host};
    h[nh++] = (cb_sigv4_header){"content-type", "application/json"};
    h[nh++] = (cb_sigv4_header){"x-amz-date", date};
    h[nh++] = (cb_sigv4_header){"x-amz-invocation-type", "RequestResponse"};
    if (*st->token)
        h[nh++] = (cb_sigv4_header){"x-amz-security-token", st->token};
    memset(&sr, 0, sizeof sr);
    sr.method = "POST";
    sr.path = path;
    sr.query = *query ? query : NULL;
    sr.headers = h;
    sr.nheaders = nh;
    sr.body = rq->body;
    sr.body_len = rq->body_len;
    sr.access_key = st->key;
    sr.secret_key = st->secret;
    sr.region = st->region;
    sr.service = "lambda";
    sr.amz_date = date;
    if ((s = cb_sigv4_authorization(&sr, auth, sizeof auth)) != CB_OK) {
        snprintf(err, errlen, "cannot sign the request: %s", cb_strerror(s));
        return s;
    }
    for (size_t i = 0; i < nh; i++)
        if ((s = cb_remote_req_header(rq, h[i].name, h[i].value)) != CB_OK)
            return s;
    return cb_remote_req_header(rq, "Authorization", auth);
}

/* "Type: message" from an error body ({"Type","Message"} or {"errorType",
 * "errorMessage"}) and the x-amzn-ErrorType header. */
static void error_text(const cb_http_resp *r, json_t *body, char *out, size_t n)
{
    const char *type = json_string_value(json_object_get(body, "errorType"));
    const char *msg = json_string_value(json_object_get(body, "errorMessage"));
    if (!type)
        type = cb_http_header_get(r, "x-amzn-ErrorType");
    if (!type)
        type = json_string_value(json_object_get(body, "Type"));
    if (!msg)
        msg = json_string_value(json_object_get(body, "Message"));
    if (!msg)
        msg = json_string_value(json_object_get(body, "message"));
    if (type && msg)
        snprintf(out, n, "%s: %s", type, msg);
    else if (msg || type)
        snprintf(out, n, "%s", msg ? msg : type);
    else
        cb_remote_excerpt(r->body, r->body_len, out, n);
    if (!*out)
        snprintf(out, n, "(no error message)");
}

static const char *str_or_empty(const json_t *s)
{
    const char *v = json_string_value(s);
    return v ? v : "";
}

static void lambda_judge(void *state, const cb_http_resp *r, int polling, cb_remote_verdict *v)
{
    json_error_t je;
    cb_status st;
    json_t *body = cb_json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &je, &st);
    const char *etype = cb_http_header_get(r, "x-amzn-ErrorType");
    char text[700];
    (void)state;
    (void)polling;

    if (r->status == 200 && !cb_http_header_get(r, "X-Amz-Function-Error")) {
        json_decref(body);
        cb_remote_output(r->body, r->body_len, v);
        return;
    }
    error_text(r, body, text, sizeof text);
    if (r->status == 200) { /* the handler failed */
        const json_t *trace = json_object_get(body, "trace"), *line;
        size_t i;
        cb_remote_fail(v, CB_FAIL_EXIT, "%s", text);
        if (json_array_size(trace)) {
            size_t len = 0;
            json_array_foreach(trace, i, line) len += strlen(str_or_empty(line)) + 1;
            if ((v->detail = malloc(len + 1))) {
                char *p = v->detail;
                *p = '\0';
                json_array_foreach(trace, i, line) p += sprintf(p, "%s\n", str_or_empty(line));
            }
        }
    } else if (r->status == 429 || (etype && strstr(etype, "TooManyRequests"))) {
        v->kind = CB_RV_THROTTLE;
        v->delay_ms = cb_http_retry_after_ms(r);
    } else if (r->status == 404) {
        cb_remote_fail(v, CB_FAIL_BACKEND, "unknown function: %s", text);
    } else {
        cb_remote_fail(v, CB_FAIL_BACKEND, "HTTP %d: %s", r->status, text);
    }
    json_decref(body);
}

const cb_remote_kind cb_remote_lambda = {
    .type = "lambda",
    .configure = lambda_configure,
    .release = lambda_release,
    .build = lambda_build,
    .judge = lambda_judge,
};

static cb_status lambda_create(struct event_base *base, const struct cb_config *reg,
                               const char *account, void **out, char *err, size_t errlen)
{
    return cb_remote_create(&cb_remote_lambda, base, reg, account, out, err, errlen);
}

const cb_backend_ops cb_backend_lambda = {
    .name = "lambda",
    .create = lambda_create,
    .invoke = cb_remote_invoke,
    .destroy = cb_remote_destroy,
};
