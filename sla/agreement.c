/* sla/agreement.c - agreements: their guarantees, scope and validity (see
 * agreement.h). */
#include "agreement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_buf.h"
#include "cb_map.h"
#include "cb_time.h"

void cb_sla_agreement_cleanup(cb_sla_agreement *a)
{
    for (size_t i = 0; i < a->n; i++)
        cb_sla_guarantee_cleanup(&a->g[i]);
    free(a->g);
    json_decref(a->spec);
    json_decref(a->recent);
    memset(a, 0, sizeof *a);
}

static cb_status guarantees(cb_sla_agreement *a, const json_t *list, const char *path, char *err,
                            size_t errlen)
{
    size_t n = json_array_size(list);
    char why[400];
    if (!n) {
        snprintf(err, errlen, "%s: no guarantees", path);
        return CB_EINVAL;
    }
    if (!(a->g = cb_calloc(n, sizeof *a->g)))
        return CB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cb_status s = cb_sla_guarantee_init(&a->g[i], json_array_get(list, i), why, sizeof why);
        if (s != CB_OK) {
            cb_sla_guarantee_cleanup(&a->g[i]);
            snprintf(err, errlen, "%s/%zu%s", path, i, why);
            return s;
        }
        a->n = i + 1;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(a->g[k].name, a->g[i].name)) {
                snprintf(err, errlen, "%s/%zu/name: \"%s\" is the name of guarantee %zu too", path,
                         i, a->g[i].name, k);
                return CB_EINVAL;
            }
    }
    return CB_OK;
}

cb_status cb_sla_agreement_init(cb_sla_agreement *a, const json_t *spec, const char *tenant,
                                char *err, size_t errlen)
{
    const json_t *details = json_object_get(spec, "details"),
                 *scope = json_object_get(spec, "scope");
    const char *id = json_string_value(json_object_get(spec, "id"));
    const char *own = json_string_value(json_object_get(spec, "tenant"));
    const char *s;
    cb_status st;

    memset(a, 0, sizeof *a);
    if (!id || !cb_name_valid(id) || !tenant || !cb_name_valid(tenant)) {
        snprintf(err, errlen, "/id: an agreement needs an id and a tenant");
        return CB_EINVAL;
    }
    if (own && strcmp(own, tenant)) {
        snprintf(err, errlen, "/tenant: \"%s\" is not the submitter's tenant \"%s\"", own, tenant);
        return CB_EINVAL;
    }
    snprintf(a->id, sizeof a->id, "%s", id);
    snprintf(a->tenant, sizeof a->tenant, "%s", tenant);
    a->stopped = (s = json_string_value(json_object_get(spec, "state"))) && !strcmp(s, "stopped");
    if ((s = json_string_value(json_object_get(details, "creation"))) &&
        cb_time_parse(s, &a->creation_ns) != 0) {
        snprintf(err, errlen, "/details/creation: not an RFC 3339 time");
        return CB_EINVAL;
    }
    if ((s = json_string_value(json_object_get(details, "expiration"))) &&
        cb_time_parse(s, &a->expiration_ns) != 0) {
        snprintf(err, errlen, "/details/expiration: not an RFC 3339 time");
        return CB_EINVAL;
    }
    if (a->creation_ns && a->expiration_ns && a->expiration_ns <= a->creation_ns) {
        snprintf(err, errlen, "/details/expiration: not after the creation");
        return CB_EINVAL;
    }
    snprintf(a->job, sizeof a->job, "%s", json_string_value(json_object_get(scope, "job")) ?: "");
    snprintf(a->function, sizeof a->function, "%s",
             json_string_value(json_object_get(scope, "function")) ?: "");
    snprintf(a->backend, sizeof a->backend, "%s",
             json_string_value(json_object_get(scope, "backend")) ?: "");
    a->spec = json_incref((json_t *)spec);
    a->labels = json_object_get(scope, "labels");
    if ((s = json_string_value(json_object_get(details, "type"))) && !strcmp(s, "template")) {
        a->is_template = 1;
        return CB_OK;
    }
    if ((st = guarantees(a, json_object_get(details, "guarantees"), "/details/guarantees", err,
                         errlen)) != CB_OK)
        return st;
    return CB_OK;
}

cb_status cb_sla_agreement_of_job(cb_sla_agreement *a, const char *tenant, const char *job,
                                  const json_t *sla, char *err, size_t errlen)
{
    char id[CB_NAME_MAX + 8];
    json_t *spec;
    cb_status s;
    memset(a, 0, sizeof *a);
    if (snprintf(id, sizeof id, "job-%s", job) > CB_NAME_MAX) /* a job id of 125+ characters */
        snprintf(id, sizeof id, "job-%016llx", (unsigned long long)cb_hash64(job, strlen(job)));
    spec = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:s, s:O}}", "id", id, "name", id, "scope",
                     "job", job, "details", "id", id, "type", "agreement", "name", id, "guarantees",
                     json_object_get(sla, "guarantees"));
    if (!spec)
        return CB_ENOMEM;
    s = cb_sla_agreement_init(a, spec, tenant, err, errlen);
    json_decref(spec);
    if (s != CB_OK && !strncmp(err, "/details/guarantees", 19)) { /* the job's path */
        char why[400];
        snprintf(why, sizeof why, "/sla/guarantees%s", err + 19);
        snprintf(err, errlen, "%s", why);
    }
    return s;
}

int cb_sla_agreement_watches(const cb_sla_agreement *a, const char *tenant, const char *job,
                             const json_t *descriptor, int64_t t_ns)
{
    const json_t *fn = json_object_get(descriptor, "function"), *labels, *v;
    const char *k;
    if (a->stopped || a->terminated || a->is_template || strcmp(a->tenant, tenant))
        return 0;
    if ((a->creation_ns && t_ns < a->creation_ns) || (a->expiration_ns && t_ns >= a->expiration_ns))
        return 0;
    if (*a->job)
        return !strcmp(a->job, job);
    if (*a->function && !(json_is_string(json_object_get(fn, "name")) &&
                          !strcmp(json_string_value(json_object_get(fn, "name")), a->function)))
        return 0;
    if (*a->backend && !(json_is_string(json_object_get(fn, "backend")) &&
                         !strcmp(json_string_value(json_object_get(fn, "backend")), a->backend)))
        return 0;
    labels = json_object_get(descriptor, "labels");
    json_object_foreach((json_t *)a->labels, k, v)
    {
        const json_t *have = json_object_get(labels, k);
        if (!json_is_string(have) || !json_equal(have, (json_t *)v))
            return 0;
    }
    return 1;
}

/* ---- templates ------------------------------------------------------- */

typedef struct filling {
    const json_t *values;
    const char *tpl;
    char *err;
    size_t errlen;
} filling;

/* s with its placeholders filled in, or NULL (err set). */
static json_t *fill_string(filling *f, const char *s)
{
    cb_buf out = {0};
    json_t *r;
    while (*s) {
        const char *open = strstr(s, "{{"), *close;
        char name[129], num[64];
        const json_t *v;
        if (!open || !(close = strstr(open + 2, "}}"))) {
            cb_buf_adds(&out, s);
            break;
        }
        cb_buf_add(&out, s, (size_t)(open - s));
        snprintf(name, sizeof name, "%.*s", (int)(close - open - 2), open + 2);
        v = json_object_get(f->values, name);
        if (json_is_string(v)) {
            cb_buf_adds(&out, json_string_value(v));
        } else if (json_is_integer(v)) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            cb_buf_adds(&out, num);
        } else if (json_is_real(v)) {
            snprintf(num, sizeof num, "%.17g", json_real_value(v));
            cb_buf_adds(&out, num);
        } else {
            snprintf(f->err, f->errlen,
                     v ? "template \"%s\": the value of {{%s}} is not a string or a number"
                       : "template \"%s\": no value for {{%s}}",
                     f->tpl, name);
            cb_buf_cleanup(&out);
            return NULL;
        }
        s = close + 2;
    }
    if (out.failed) {
        cb_buf_cleanup(&out);
        snprintf(f->err, f->errlen, "out of memory");
        return NULL;
    }
    r = json_stringn(out.p ? out.p : "", out.len);
    cb_buf_cleanup(&out);
    return r;
}

static json_t *fill(filling *f, const json_t *v)
{
    json_t *r;
    if (json_is_string(v))
        return fill_string(f, json_string_value(v));
    if (json_is_array(v)) {
        if (!(r = json_array()))
            return NULL;
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *x = fill(f, json_array_get(v, i));
            if (!x || json_array_append_new(r, x) != 0) {
                json_decref(r);
                return NULL;
            }
        }
        return r;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        if (!(r = json_object()))
            return NULL;
        json_object_foreach((json_t *)v, k, x)
        {
            json_t *y = fill(f, x);
            if (!y || json_object_set_new(r, k, y) != 0) {
                json_decref(r);
                return NULL;
            }
        }
        return r;
    }
    return json_copy((json_t *)v);
}

json_t *cb_sla_template_fill(const json_t *tpl, const char *id, const json_t *values, char *err,
                             size_t errlen)
{
    filling f = {values, json_string_value(json_object_get(tpl, "id")), err, errlen};
    json_t *r, *details;
    if (!f.tpl)
        f.tpl = "?";
    snprintf(err, errlen, "out of memory");
    if (!(r = fill(&f, tpl)))
        return NULL;
    details = json_object_get(r, "details");
    if (json_object_set_new(r, "id", json_string(id)) != 0 || !json_is_object(details) ||
        json_object_set_new(details, "id", json_string(id)) != 0 ||
        json_object_set_new(details, "type", json_string("agreement")) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}
