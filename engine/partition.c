/* engine/partition.c - an objects input's partition plan (see
 * control_int.h, docs/storage.md): the objects are listed (a bucket and
 * prefix) or looked up one by one (a list of URLs) on the storage's
 * asynchronous calls, never blocking the loop, and appended page by page as
 * cb.job.partitioned (a listing page an event: at most the storage's
 * "list_page", 1,000 by default; ids
 * "<tenant>/<job>/partitioned/<page>") before the job starts.
 *
 * Deterministic across restarts: a listing page goes on after the last key
 * the plan already has (S3's start-after), a URL list after the URLs it
 * already has, so an engine killed in the middle of listing appends the same
 * pages again (the same ids: the broker drops what it has; the fold ignores
 * a page it has folded) and goes on from there.
 *
 * A run makes one page: it starts from what the mirror holds (the pages
 * folded, the last key or the number of URLs they have), lists or looks up
 * the next objects, appends the page and ends. The job's next visit, which
 * comes once the page is confirmed and folded (pending, behind() in
 * visit.c), starts the next run: so the pages reach the log in order, and a
 * page whose append failed is simply made again. One run per job at a time
 * (cjob.part); a run whose job went away while a storage call was in flight
 * is freed by that call's callback. */
#include "control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_storage.h"
#include "cb_time.h"

#define HEADS_AT_ONCE 16

struct part_run {
    cb_control *c;
    cjob *j; /* NULL once the job went away: the callback in flight frees the run */
    int busy;
    const json_t *spec; /* the input's "objects" (the job's descriptor outlives the run) */
    char bucket[CB_STORAGE_BUCKET_MAX];
    char prefix[CB_STORAGE_KEY_MAX + 1];
    char *after;     /* listing: the last key the plan has */
    size_t next_url; /* URL list: the first URL not in the plan */
    uint32_t page;   /* this page's number */
    /* the page being built */
    json_t *objects;
    uint64_t expect; /* the job's events folded when the run began */
    size_t heads_out, heads_next, heads_end;
    char failed[1600];
};

static void run_free(part_run *r)
{
    free(r->after);
    json_decref(r->objects);
    free(r);
}

void ctl_partition_forget(cjob *j)
{
    part_run *r = j->part;
    if (!r)
        return;
    j->part = NULL;
    if (r->busy)
        r->j = NULL; /* the call in flight frees it */
    else
        run_free(r);
}

/* The job fails with the reason (its done message and cb.job.failed). */
static void fail_job(cb_control *c, cjob *j, const char *why)
{
    cb_mirror_job *mj = cb_mirror_get(c->mirror, j->key);
    cb_sched_plan p;
    cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "cannot partition its input: %s", why);
    if (!mj)
        return;
    memset(&p, 0, sizeof p);
    p.end = CB_END_FAIL;
    snprintf(p.error, sizeof p.error, "%s", why);
    ctl_end_job(c, j, &mj->js, &mj->tasks, &p, cb_time_now_ns(), false);
}

/* Whether the callback's run still has its job (else the run is freed). */
static cjob *still_there(part_run *r)
{
    r->busy = 0;
    if (!r->j) {
        run_free(r);
        return NULL;
    }
    return r->j;
}

static int add_object(part_run *r, const char *url, uint64_t size, const char *etag)
{
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:I}", "url", url, "etag", etag ? etag : "", "size",
                  (json_int_t)size, "chunk", (json_int_t)cb_flow_object_chunk(r->spec, size));
    return o ? json_array_append_new(r->objects, o) : -1;
}

/* Append the page built and end the run: the confirmation wakes the job,
 * whose visit waits until the mirror has folded the page (behind()) and then
 * starts the next run or plans. */
static void emit_page(part_run *r, int last)
{
    cjob *j = r->j;
    char what[64];
    json_t *data = json_pack("{s:I, s:b, s:O}", "page", (json_int_t)r->page, "last", last,
                             "objects", r->objects);
    snprintf(what, sizeof what, "partitioned/%u", r->page);
    j->expect = r->expect;
    j->await_until_ns = cb_time_now_ns() + r->c->o.await_ms * 1000000;
    ctl_partition_forget(j);
    if (!data || ctl_emit(j->c, j, CB_EV_JOB_PARTITIONED, what, data, NULL) != CB_OK)
        ctl_job_wake(j, 500); /* the same page again */
}

static void step(part_run *r);

/* ---- a bucket and prefix --------------------------------------------------- */

static void listed(const cb_storage_res *res, void *ctx)
{
    part_run *r = ctx;
    cjob *j = still_there(r);
    char url[CB_STORAGE_URL_MAX];
    if (!j)
        return;
    if (res->status != CB_OK) {
        snprintf(r->failed, sizeof r->failed, "cannot list: %s", res->error);
        step(r);
        return;
    }
    for (size_t i = 0; i < res->nobjects; i++) {
        snprintf(url, sizeof url, "s3://%s/%s", r->bucket, res->objects[i].key);
        if (add_object(r, url, res->objects[i].size, res->objects[i].etag) != 0) {
            snprintf(r->failed, sizeof r->failed, "out of memory");
            break;
        }
    }
    if (!*r->failed && r->page == 0 && json_array_size(r->objects) == 0 && !res->next)
        snprintf(r->failed, sizeof r->failed, "no objects under s3://%s/%s", r->bucket, r->prefix);
    if (*r->failed) {
        step(r);
        return;
    }
    emit_page(r, !res->next || res->nobjects == 0);
}

/* ---- a list of URLs ----------------------------------------------------------------- */

typedef struct head_ctx {
    part_run *r;
    size_t index; /* in the page */
} head_ctx;

static void headed(const cb_storage_res *res, void *ctx)
{
    head_ctx *h = ctx;
    part_run *r = h->r;
    json_t *o = json_array_get(r->objects, h->index);
    free(h);
    r->heads_out--;
    if (!r->j) { /* the job went away: free once the last head is back */
        if (r->heads_out == 0)
            still_there(r);
        return;
    }
    if (res->status != CB_OK) {
        if (!*r->failed)
            snprintf(r->failed, sizeof r->failed, "%s", res->error);
    } else if (json_object_set_new(o, "size", json_integer((json_int_t)res->size)) != 0 ||
               json_object_set_new(o, "etag", json_string(res->etag ? res->etag : "")) != 0 ||
               json_object_set_new(
                   o, "chunk",
                   json_integer((json_int_t)cb_flow_object_chunk(r->spec, res->size))) != 0) {
        snprintf(r->failed, sizeof r->failed, "out of memory");
    }
    if (r->heads_out == 0 && r->heads_next == r->heads_end) {
        r->busy = 0;
        if (!*r->failed) {
            const json_t *urls = json_object_get(r->spec, "urls");
            emit_page(r, r->next_url + json_array_size(r->objects) >= json_array_size(urls));
            return;
        }
    }
    step(r);
}

/* Start heads up to HEADS_AT_ONCE; a new page when none is under way. */
static void heads(part_run *r)
{
    const json_t *urls = json_object_get(r->spec, "urls");
    char err[600];
    if (r->heads_end == 0) { /* the page's URLs */
        size_t n = json_array_size(urls) - r->next_url;
        r->heads_next = 0;
        size_t page = cb_storage_list_page(r->c->o.storage);
        r->heads_end = n < page ? n : page;
        for (size_t i = 0; i < r->heads_end; i++) {
            const char *u = json_string_value(json_array_get(urls, r->next_url + i));
            if (json_array_append_new(r->objects, json_pack("{s:s}", "url", u ? u : "")) != 0) {
                snprintf(r->failed, sizeof r->failed, "out of memory");
                return;
            }
        }
    }
    while (!*r->failed && r->heads_out < HEADS_AT_ONCE && r->heads_next < r->heads_end) {
        head_ctx *h = cb_calloc(1, sizeof *h);
        const char *u =
            json_string_value(json_object_get(json_array_get(r->objects, r->heads_next), "url"));
        if (!h) {
            snprintf(r->failed, sizeof r->failed, "out of memory");
            break;
        }
        h->r = r;
        h->index = r->heads_next;
        if (cb_storage_head(r->c->o.storage, u, headed, h, err, sizeof err) != CB_OK) {
            free(h);
            snprintf(r->failed, sizeof r->failed, "%s", err);
            break;
        }
        r->heads_out++;
        r->heads_next++;
        r->busy = 1;
    }
    if (*r->failed && r->heads_out > 0)
        r->heads_next = r->heads_end; /* no more: wait for those out, then fail */
}

/* ---- the run ----------------------------------------------------------------- */

/* The next call, or the job's failure. */
static void step(part_run *r)
{
    char err[600];
    if (*r->failed) {
        if (r->heads_out > 0)
            return; /* the last head back fails it */
        cjob *j = r->j;
        char why[sizeof r->failed];
        snprintf(why, sizeof why, "%s", r->failed);
        ctl_partition_forget(j);
        fail_job(j->c, j, why);
        return;
    }
    if (json_object_get(r->spec, "urls")) {
        heads(r);
        if (*r->failed && r->heads_out == 0)
            step(r);
        return;
    }
    if (cb_storage_list(r->c->o.storage, r->bucket, r->prefix, r->after,
                        cb_storage_list_page(r->c->o.storage), listed, r, err,
                        sizeof err) != CB_OK) {
        snprintf(r->failed, sizeof r->failed, "cannot list: %s", err);
        step(r);
        return;
    }
    r->busy = 1;
}

bool ctl_partition(cb_control *c, cjob *j, const cb_job_state *js)
{
    const json_t *plan = js->partition, *objs;
    const json_t *spec = json_object_get(json_object_get(js->spec, "input"), "objects");
    char err[300];
    part_run *r;
    if (plan && json_is_true(json_object_get(plan, "done"))) {
        cb_status s =
            cb_flow_set_partition(&j->flow, json_object_get(plan, "objects"), 0, err, sizeof err);
        ctl_partition_forget(j);
        if (s == CB_OK)
            return true;
        fail_job(c, j, err);
        return false;
    }
    if (j->part) /* a page under way */
        return false;
    if (!c->o.storage) {
        fail_job(c, j,
                 "no object storage is configured for the engine (a \"storage\" object in the "
                 "configuration, or cb-engine --objects DIR)");
        return false;
    }
    if (!(r = cb_calloc(1, sizeof *r)) || !(r->objects = json_array())) {
        free(r);
        ctl_job_wake(j, 500);
        return false;
    }
    r->c = c;
    r->j = j;
    r->spec = spec;
    objs = json_object_get(plan, "objects");
    r->page = (uint32_t)json_integer_value(json_object_get(plan, "pages"));
    if (json_object_get(spec, "urls")) {
        r->next_url = json_array_size(objs);
    } else {
        char bucket[CB_STORAGE_BUCKET_MAX], key[CB_STORAGE_KEY_MAX + 1];
        const char *last = json_string_value(
            json_object_get(json_array_get(objs, json_array_size(objs) - 1), "url"));
        snprintf(r->bucket, sizeof r->bucket, "%s",
                 json_string_value(json_object_get(spec, "bucket")));
        snprintf(r->prefix, sizeof r->prefix, "%s",
                 json_string_value(json_object_get(spec, "prefix")) ?: "");
        if (last && cb_storage_parse_url(last, 0, bucket, key, err, sizeof err) == 0 &&
            !(r->after = cb_strdup(key))) {
            run_free(r);
            ctl_job_wake(j, 500);
            return false;
        }
    }
    j->part = r;
    r->expect = js->applied + js->ignored; /* the page's confirmation adds one */
    step(r);
    return false;
}
