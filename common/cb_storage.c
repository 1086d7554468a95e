/* common/cb_storage.c - the storage front: names, calls, drivers
 * (cb_storage.h, cb_storage_int.h). */
#define _GNU_SOURCE /* realpath */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_storage_int.h"

struct cb_storage {
    const cb_storage_driver *drv;
    void *state;
    struct event_base *base;
    json_t *conf; /* a copy, for the web driver's TLS settings */
    void *web;    /* http(s) reads: made on first use */
    size_t list_page, inline_max;
    char results_bucket[CB_STORAGE_BUCKET_MAX];
};

static int bucket_ok(const char *b, size_t n);

cb_status cb_storage_new(struct event_base *base, const json_t *conf, const char *default_root,
                         cb_storage **out, char *err, size_t errlen)
{
    const char *driver = json_string_value(json_object_get(conf, "driver"));
    cb_storage *st;
    cb_status s;
    *out = NULL;
    if (conf && !json_is_object(conf)) {
        snprintf(err, errlen, "/storage: not an object");
        return CB_EINVAL;
    }
    if (!driver)
        driver = conf && json_object_get(conf, "endpoint") ? "s3" : "file";
    {
        const json_t *lp = json_object_get(conf, "list_page");
        if (lp &&
            (!json_is_integer(lp) || json_integer_value(lp) < 1 || json_integer_value(lp) > 1000)) {
            snprintf(err, errlen, "/storage/list_page: an integer from 1 to 1000");
            return CB_EINVAL;
        }
    }
    if (!(st = cb_calloc(1, sizeof *st)))
        return CB_ENOMEM;
    st->base = base;
    if (conf && !(st->conf = json_deep_copy(conf))) {
        free(st);
        return CB_ENOMEM;
    }
    st->list_page = json_is_integer(json_object_get(conf, "list_page"))
                        ? (size_t)json_integer_value(json_object_get(conf, "list_page"))
                        : 1000;
    st->inline_max = json_is_integer(json_object_get(conf, "inline_output_max"))
                         ? (size_t)json_integer_value(json_object_get(conf, "inline_output_max"))
                         : 65536;
    snprintf(st->results_bucket, sizeof st->results_bucket, "%s",
             json_string_value(json_object_get(conf, "results_bucket")) ?: "cbcore");
    if (strcmp(driver, "file") == 0) {
        const char *root = json_string_value(json_object_get(conf, "root"));
        st->drv = &cb_storage_file_driver;
        s = cb_storage_file_new(base, root ? root : default_root, &st->state, err, errlen);
    } else if (strcmp(driver, "s3") == 0) {
        st->drv = &cb_storage_s3_driver;
        s = cb_storage_s3_new(base, conf, &st->state, err, errlen);
    } else {
        snprintf(err, errlen, "/storage/driver: \"%s\" is not a storage driver (file, s3)", driver);
        s = CB_EINVAL;
    }
    if (s != CB_OK) {
        json_decref(st->conf);
        free(st);
        return s;
    }
    *out = st;
    return CB_OK;
}

char *cb_storage_runtime_conf(const json_t *conf, const char *default_root)
{
    json_t *c = conf ? json_deep_copy(conf) : NULL;
    const char *root;
    char abs[PATH_MAX], *text = NULL;
    if (!c && default_root)
        c = json_pack("{s:s, s:s}", "driver", "file", "root", default_root);
    if (!c)
        return NULL;
    if (!json_object_get(c, "endpoint") && !json_object_get(c, "root") && default_root &&
        strcmp(json_string_value(json_object_get(c, "driver")) ?: "file", "file") == 0 &&
        json_object_set_new(c, "root", json_string(default_root)) != 0) {
        json_decref(c);
        return NULL;
    }
    root = json_string_value(json_object_get(c, "root"));
    if (root && realpath(root, abs) && json_object_set_new(c, "root", json_string(abs)) != 0) {
        json_decref(c);
        return NULL;
    }
    text = cb_json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return text;
}

void cb_storage_free(cb_storage *st)
{
    if (!st)
        return;
    st->drv->release(st->state);
    if (st->web)
        cb_storage_web_driver.release(st->web);
    json_decref(st->conf);
    free(st);
}

size_t cb_storage_list_page(const cb_storage *st)
{
    return st->list_page;
}

const char *cb_storage_results_bucket(const cb_storage *st)
{
    return st->results_bucket;
}

/* One that exists already is fine: S3 says so in two ways. */
static void results_bucket_made(const cb_storage_res *r, void *ctx)
{
    if (r->status != CB_OK && r->status != CB_ECLOSED && !strstr(r->error, "BucketAlreadyExists"))
        CB_LOG_WRN((const char *)ctx,
                   "results bucket: %s (results too large for the log will fail)", r->error);
}

void cb_storage_make_results_bucket(cb_storage *st, const char *who)
{
    char err[600];
    if (cb_storage_make_bucket(st, st->results_bucket, results_bucket_made, (void *)who, err,
                               sizeof err) != CB_OK)
        CB_LOG_WRN(who, "results bucket: %s", err);
}

size_t cb_storage_inline_max(const cb_storage *st)
{
    return st->inline_max;
}

const char *cb_storage_driver_name(const cb_storage *st)
{
    return st->drv->name;
}

/* S3's rules: 3 to 63 of a-z 0-9 . -, starting and ending with a letter or
 * a digit. */
static int bucket_ok(const char *b, size_t n)
{
    if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '.' ||
              b[i] == '-'))
            return 0;
    return 1;
}

int cb_storage_parse_url(const char *url, int allow_empty_key, char bucket[CB_STORAGE_BUCKET_MAX],
                         char key[CB_STORAGE_KEY_MAX + 1], char *err, size_t errlen)
{
    const char *b, *slash;
    size_t bn, kn;
    if (!url || strncmp(url, "s3://", 5) != 0) {
        snprintf(err, errlen, "\"%.200s\" is not an object URL (s3://bucket/key)", url ? url : "");
        return -1;
    }
    b = url + 5;
    slash = strchr(b, '/');
    bn = slash ? (size_t)(slash - b) : strlen(b);
    if (!bucket_ok(b, bn)) {
        snprintf(err, errlen,
                 "\"%.200s\": \"%.*s\" is not a bucket name (3 to 63 of a-z 0-9 . -, starting "
                 "and ending with a letter or a digit)",
                 url, (int)(bn > 80 ? 80 : bn), b);
        return -1;
    }
    kn = slash ? strlen(slash + 1) : 0;
    if (kn > CB_STORAGE_KEY_MAX) {
        snprintf(err, errlen, "\"%.200s...\": the key is longer than %d bytes", url,
                 CB_STORAGE_KEY_MAX);
        return -1;
    }
    if (!kn && !allow_empty_key) {
        snprintf(err, errlen, "\"%.200s\" names no object (s3://bucket/key)", url);
        return -1;
    }
    memcpy(bucket, b, bn);
    bucket[bn] = '\0';
    memcpy(key, kn ? slash + 1 : "", kn + 1);
    return 0;
}

static cb_storage_call *new_call(cb_storage_op op, cb_storage_cb *cb, void *ctx)
{
    cb_storage_call *c = cb_calloc(1, sizeof *c);
    if (c) {
        c->op = op;
        c->cb = cb;
        c->ctx = ctx;
    }
    return c;
}

int cb_storage_is_web_url(const char *url)
{
    return url && (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0);
}

/* Hand the call to its driver: the web one for an http(s) URL. */
static void start_call(cb_storage *st, cb_storage_call *c)
{
    char err[600];
    if (!c->url) {
        st->drv->start(st->state, c);
        return;
    }
    if (!st->web && cb_storage_web_new(st->base, st->conf, &st->web, err, sizeof err) != CB_OK) {
        cb_storage_call_fail(c, CB_EINVAL, "%s", err);
        return;
    }
    cb_storage_web_driver.start(st->web, c);
}

/* An http(s) URL's call: only reads. */
static cb_status web_call(cb_storage_call *c, const char *url, char *err, size_t errlen)
{
    if (c->op != CB_ST_HEAD && c->op != CB_ST_GET) {
        snprintf(err, errlen, "\"%.200s\": an http(s) object can be read, not written or deleted",
                 url);
        return CB_EINVAL;
    }
    if (strlen(url) > CB_STORAGE_URL_MAX + 1024 || strchr(url, ' ') || strchr(url, '\n') ||
        strchr(url, '\r')) {
        snprintf(err, errlen, "\"%.200s\": not a URL this storage can read", url);
        return CB_EINVAL;
    }
    return (c->url = cb_strdup(url)) ? CB_OK : CB_ENOMEM;
}

static cb_status start_url(cb_storage *st, cb_storage_op op, const char *url, cb_storage_cb *cb,
                           void *ctx, cb_storage_call **keep, char *err, size_t errlen)
{
    cb_storage_call *c = new_call(op, cb, ctx);
    cb_status s;
    if (!c)
        return CB_ENOMEM;
    if (cb_storage_is_web_url(url)) {
        if ((s = web_call(c, url, err, errlen)) != CB_OK) {
            free(c);
            return s;
        }
    } else if (cb_storage_parse_url(url, 0, c->bucket, c->key, err, errlen) != 0) {
        free(c);
        return CB_EINVAL;
    }
    if (keep) { /* the caller fills more in and starts it */
        *keep = c;
        return CB_OK;
    }
    start_call(st, c);
    return CB_OK;
}

static cb_status bucket_call(cb_storage *st, cb_storage_op op, const char *bucket,
                             cb_storage_cb *cb, void *ctx, cb_storage_call **out, char *err,
                             size_t errlen)
{
    cb_storage_call *c;
    if (!bucket || !bucket_ok(bucket, strlen(bucket))) {
        snprintf(err, errlen,
                 "\"%.80s\" is not a bucket name (3 to 63 of a-z 0-9 . -, starting and ending "
                 "with a letter or a digit)",
                 bucket ? bucket : "");
        return CB_EINVAL;
    }
    if (!(c = new_call(op, cb, ctx)))
        return CB_ENOMEM;
    snprintf(c->bucket, sizeof c->bucket, "%s", bucket);
    if (out) {
        *out = c;
        return CB_OK;
    }
    st->drv->start(st->state, c);
    return CB_OK;
}

cb_status cb_storage_make_bucket(cb_storage *st, const char *bucket, cb_storage_cb *cb, void *ctx,
                                 char *err, size_t errlen)
{
    return bucket_call(st, CB_ST_MKBUCKET, bucket, cb, ctx, NULL, err, errlen);
}

cb_status cb_storage_list(cb_storage *st, const char *bucket, const char *prefix, const char *token,
                          size_t max_keys, cb_storage_cb *cb, void *ctx, char *err, size_t errlen)
{
    cb_storage_call *c;
    cb_status s;
    if (prefix && strlen(prefix) > CB_STORAGE_KEY_MAX) {
        snprintf(err, errlen, "the prefix is longer than %d bytes", CB_STORAGE_KEY_MAX);
        return CB_EINVAL;
    }
    if ((s = bucket_call(st, CB_ST_LIST, bucket, cb, ctx, &c, err, errlen)) != CB_OK)
        return s;
    snprintf(c->key, sizeof c->key, "%s", prefix ? prefix : "");
    c->max_keys = max_keys && max_keys < 1000 ? max_keys : 1000;
    if (token && *token && !(c->token = cb_strdup(token))) {
        free(c);
        return CB_ENOMEM;
    }
    st->drv->start(st->state, c);
    return CB_OK;
}

cb_status cb_storage_head(cb_storage *st, const char *url, cb_storage_cb *cb, void *ctx, char *err,
                          size_t errlen)
{
    return start_url(st, CB_ST_HEAD, url, cb, ctx, NULL, err, errlen);
}

cb_status cb_storage_get(cb_storage *st, const char *url, uint64_t start, uint64_t end,
                         cb_storage_cb *cb, void *ctx, char *err, size_t errlen)
{
    cb_storage_call *c;
    cb_status s = start_url(st, CB_ST_GET, url, cb, ctx, &c, err, errlen);
    if (s != CB_OK)
        return s;
    if (end < start) {
        snprintf(err, errlen, "%s: the range [%llu, %llu) ends before it starts", url,
                 (unsigned long long)start, (unsigned long long)end);
        cb_storage_call_drop(c);
        return CB_EINVAL;
    }
    c->start = start;
    c->end = end;
    start_call(st, c);
    return CB_OK;
}

cb_status cb_storage_put(cb_storage *st, const char *url, const void *data, size_t len,
                         cb_storage_cb *cb, void *ctx, char *err, size_t errlen)
{
    cb_storage_call *c;
    cb_status s;
    if (len > CB_STORAGE_IO_MAX) {
        snprintf(err, errlen, "%s: %zu bytes is over the %zu bytes one put may write", url, len,
                 CB_STORAGE_IO_MAX);
        return CB_ETOOBIG;
    }
    if ((s = start_url(st, CB_ST_PUT, url, cb, ctx, &c, err, errlen)) != CB_OK)
        return s;
    if (!(c->data = cb_malloc(len ? len : 1))) {
        free(c);
        return CB_ENOMEM;
    }
    if (len)
        memcpy(c->data, data, len);
    c->len = len;
    st->drv->start(st->state, c);
    return CB_OK;
}

cb_status cb_storage_delete(cb_storage *st, const char *url, cb_storage_cb *cb, void *ctx,
                            char *err, size_t errlen)
{
    return start_url(st, CB_ST_DELETE, url, cb, ctx, NULL, err, errlen);
}

void cb_storage_call_drop(cb_storage_call *c)
{
    if (!c)
        return;
    free(c->token);
    free(c->url);
    free(c->data);
    free(c);
}

void cb_storage_call_done(cb_storage_call *c, cb_storage_res *r)
{
    char msg[1400];
    if (r->status != CB_OK) {
        const char *why = r->error && *r->error ? r->error : cb_strerror(r->status);
        if (c->url)
            snprintf(msg, sizeof msg, "%.600s: %s", c->url, why);
        else
            snprintf(msg, sizeof msg, "s3://%s%s%s: %s", c->bucket, *c->key ? "/" : "", c->key,
                     why);
        r->error = msg;
    } else {
        r->error = NULL;
    }
    c->cb(r, c->ctx);
    cb_storage_call_drop(c);
}

void cb_storage_call_fail(cb_storage_call *c, cb_status s, const char *fmt, ...)
{
    char why[1024];
    cb_storage_res r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    memset(&r, 0, sizeof r);
    r.status = s;
    r.error = why;
    cb_storage_call_done(c, &r);
}
