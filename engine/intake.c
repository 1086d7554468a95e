/* engine/intake.c - the verdict on one job submission (see intake.h). */
#include "intake.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cb_json.h"
#include "cb_sla_expr.h"
#include "cb_alloc.h"
#include "cb_digest.h"
#include "cb_text.h"
#include "flow.h"
#include "scheduler.h"

/* Fields the schema admits whose effect this engine does not have yet: a
 * job that names them is refused, so nothing is silently ignored. */
#define NOT_YET "not supported by this engine yet"

static cb_status reject(cb_intake *out, cb_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cb_status reject(cb_intake *out, cb_status s, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cb_utf8_scrub(msg); /* it may quote the sender's bytes */
    if (!out->errors && !(out->errors = json_array()))
        return CB_ENOMEM;
    json_array_append_new(out->errors, json_string(msg));
    return s;
}

/* Does account `backend` run the function object at `path`? `pool`: the
 * pool it is a member of, or NULL. */
static void check_on(const cb_intake_cfg *cfg, const json_t *fn, const char *path,
                     const char *backend, const char *pool, cb_intake *out)
{
    const char *name = json_string_value(json_object_get(fn, "name"));
    char why[300], on[CB_NAME_MAX + 80] = "";
    int shipped = cb_config_runs_shipped(cfg->reg, backend, name);
    if (pool) /* "on lambda-us of pool fast: " */
        snprintf(on, sizeof on, "on \"%s\" of pool \"%s\": ", backend, pool);
    if (cb_config_runs(cfg->reg, backend, name, why, sizeof why) != CB_OK)
        reject(out, CB_ESCHEMA, "%s/name: %s%s", path, on, why);
    else if (json_object_get(fn, "code") && !shipped)
        reject(out, CB_ESCHEMA,
               "%s/code: %sshipped functions run on the local backend's \"" CB_SHIPPED_RUNTIME
               "\" runtime or an http account with \"shipped\": true, not on %s's \"%s\" "
               "(docs/toolkit.md)",
               path, on, backend, name);
    else if (!json_object_get(fn, "code") && shipped)
        reject(out, CB_ESCHEMA,
               "%s/code: %sthe \"" CB_SHIPPED_RUNTIME
               "\" runtime runs shipped functions: the function needs its code "
               "(docs/toolkit.md)",
               path, on);
}

/* Is the function object at `path` runnable here? A pool's function must
 * run on every member (any of them may get its tasks). */
static void check_function(const cb_intake_cfg *cfg, const json_t *fn, const char *path,
                           cb_intake *out)
{
    const char *backend = json_string_value(json_object_get(fn, "backend"));
    const char *name = json_string_value(json_object_get(fn, "name"));
    const cb_pool *pool;
    if (!backend || !name)
        return; /* the schema said so already */
    if ((pool = cb_config_pool(cfg->reg, backend))) {
        for (size_t i = 0; i < pool->n; i++)
            check_on(cfg, fn, path, pool->members[i], backend, out);
    } else if (!cb_config_has_backend(cfg->reg, backend)) {
        reject(out, CB_ESCHEMA, "%s/backend: unknown backend \"%s\" (not configured)", path,
               backend);
    } else {
        check_on(cfg, fn, path, backend, NULL, out);
    }
}

static void check_functions(const cb_intake_cfg *cfg, const json_t *job, cb_intake *out)
{
    const json_t *tasks = json_object_get(job, "tasks");
    const char *step;
    json_t *spec;
    if (json_object_get(job, "function"))
        check_function(cfg, json_object_get(job, "function"), "/function", out);
    if (json_object_get(json_object_get(job, "reduce"), "function"))
        check_function(cfg, json_object_get(json_object_get(job, "reduce"), "function"),
                       "/reduce/function", out);
    json_object_foreach((json_t *)tasks, step, spec)
    {
        char path[CB_NAME_MAX + 32];
        snprintf(path, sizeof path, "/tasks/%s/function", step);
        if (json_object_get(spec, "function"))
            check_function(cfg, json_object_get(spec, "function"), path, out);
    }
}

/* The accounts a flow's lanes run on, a pool's members each once
 * (docs/engine.md, "Jobs over several accounts"). */
static size_t accounts_of(const cb_intake_cfg *cfg, const cb_flow *f)
{
    const char *seen[CB_FLOW_LANES_MAX * CB_POOL_MAX];
    size_t n = 0;
    for (uint8_t k = 0; k < f->nlanes; k++) {
        const cb_pool *p = cb_config_pool(cfg->reg, f->lanes[k]);
        for (size_t i = 0; i < (p ? p->n : 1); i++) {
            const char *a = p ? p->members[i] : f->lanes[k];
            size_t s = 0;
            while (s < n && strcmp(seen[s], a))
                s++;
            if (s == n)
                seen[n++] = a;
        }
    }
    return n;
}

/* A function's memory_mb (docs/engine.md, "Function memory"): the local
 * backend limits the process that runs it; a built-in has no process of
 * its own, and the remote backends' invocation APIs take no memory size
 * (it is the deployed function's configuration). */
static void check_memory_on(const cb_intake_cfg *cfg, const json_t *fn, const char *path,
                            const char *backend, cb_intake *out)
{
    const char *name = json_string_value(json_object_get(fn, "name"));
    const char *type;
    const cb_fn_conf *local;
    if (!cb_config_has_backend(cfg->reg, backend))
        return; /* check_function says what is wrong */
    type = cb_config_backend_type(cfg->reg, backend);
    if (!type || strcmp(type, "local") != 0)
        reject(out, CB_EUNSUPP,
               "%s/memory_mb: backend \"%s\" (%s) takes no memory size with an invocation: the "
               "memory is the deployed function's own setting%s; set it there and leave "
               "memory_mb out",
               path, backend, type ? type : "?",
               type && !strcmp(type, "lambda")      ? " (Lambda: MemorySize)"
               : type && !strcmp(type, "openwhisk") ? " (OpenWhisk: the action's limits.memory)"
                                                    : "");
    else if ((local = cb_config_local_fn(cfg->reg, name)) && local->kind == CB_FN_BUILTIN)
        reject(out, CB_EUNSUPP,
               "%s/memory_mb: \"%s\" is built into the adapter and runs in no process of its "
               "own: there is nothing to limit",
               path, name);
}

/* ... on its backend, or on each member of its pool */
static void check_memory(const cb_intake_cfg *cfg, const json_t *fn, const char *path,
                         cb_intake *out)
{
    const char *backend = json_string_value(json_object_get(fn, "backend"));
    const cb_pool *pool = cb_config_pool(cfg->reg, backend);
    if (!json_object_get(fn, "memory_mb") || !backend || !json_object_get(fn, "name"))
        return; /* check_function says what is wrong with the rest */
    if (!pool)
        check_memory_on(cfg, fn, path, backend, out);
    for (size_t i = 0; pool && i < pool->n; i++)
        check_memory_on(cfg, fn, path, pool->members[i], out);
}

static void check_unsupported(const cb_intake_cfg *cfg, const json_t *job, cb_intake *out)
{
    const json_t *reduce = json_object_get(job, "reduce");
    const char *step;
    json_t *spec;
    check_memory(cfg, json_object_get(job, "function"), "/function", out);
    check_memory(cfg, json_object_get(reduce, "function"), "/reduce/function", out);
    json_object_foreach((json_t *)json_object_get(job, "tasks"), step, spec)
    {
        char path[CB_NAME_MAX + 32];
        snprintf(path, sizeof path, "/tasks/%s/function", step);
        check_memory(cfg, json_object_get(spec, "function"), path, out);
    }
    if (json_is_true(json_object_get(reduce, "early")))
        reject(out, CB_EUNSUPP,
               "/reduce/early: an early reduce is " NOT_YET " (the reduce runs once every map "
               "task has ended; leave it out or set false)");
}

/* A job's own SLA guarantees (evaluated by cb-sla, docs/sla.md): their
 * constraints parse, their names differ. */
static void check_sla(const json_t *job, cb_intake *out)
{
    const json_t *g = json_object_get(json_object_get(job, "sla"), "guarantees");
    for (size_t i = 0; i < json_array_size(g); i++) {
        const json_t *gi = json_array_get(g, i);
        cb_sla_expr *e = NULL;
        char why[300];
        if (cb_sla_parse(json_string_value(json_object_get(gi, "constraint")), &e, why,
                         sizeof why) != CB_OK)
            reject(out, CB_ESCHEMA, "/sla/guarantees/%zu/constraint: %s", i, why);
        cb_sla_expr_free(e);
        for (size_t k = 0; k < i; k++)
            if (json_equal(json_object_get(gi, "name"),
                           json_object_get(json_array_get(g, k), "name")))
                reject(out, CB_ESCHEMA, "/sla/guarantees/%zu/name: \"%s\" is guarantee %zu's too",
                       i, json_string_value(json_object_get(gi, "name")), k);
    }
}

static cb_status check(const cb_intake_cfg *cfg, const char *tenant, const void *data, size_t len,
                       const char *fresh_id, cb_intake *out)
{
    json_error_t je;
    json_t *job, *errors = NULL;
    const char *id, *jt;
    char err[512];
    cb_flow flow;
    cb_status s;

    memset(out, 0, sizeof *out);
    if (cfg->max_bytes && len > cfg->max_bytes)
        return reject(out, CB_ETOOBIG, "/: the job is %zu bytes, over the limit of %zu", len,
                      cfg->max_bytes);
    if (!(job = cb_json_loadb(data, len, JSON_REJECT_DUPLICATES, &je, &s))) {
        if (s == CB_ENOMEM)
            return CB_ENOMEM; /* not the sender's fault: the job is judged again */
        return reject(out, CB_EINVAL, "/: not JSON: %s (line %d, column %d)", je.text, je.line,
                      je.column);
    }
    out->job = job;
    /* What the reply and the done message can name, even for a bad job. */
    id = json_string_value(json_object_get(job, "job_id"));
    if (id && cb_name_valid(id))
        snprintf(out->job_id, sizeof out->job_id, "%s", id);
    snprintf(out->tenant, sizeof out->tenant, "%s", tenant);
    if (!json_is_object(job))
        return reject(out, CB_ESCHEMA, "/: a job must be a JSON object");
    if ((s = cb_schema_validate(cfg->schema, "job.json", job, 16, &errors)) != CB_OK) {
        if (s == CB_ENOMEM || !errors)
            return CB_ENOMEM;
        out->errors = errors;
        return CB_ESCHEMA;
    }
    json_decref(errors);
    jt = json_string_value(json_object_get(job, "tenant"));
    if (strcmp(jt, tenant))
        return reject(out, CB_ESCHEMA,
                      "/tenant: \"%s\" does not match the tenant of the subject (\"%s\")", jt,
                      tenant);
    if (!id) {
        if (json_object_set_new(job, "job_id", json_string(fresh_id)))
            return CB_ENOMEM;
        snprintf(out->job_id, sizeof out->job_id, "%s", fresh_id);
    }
    check_unsupported(cfg, job, out);
    if (out->errors)
        return CB_EUNSUPP;
    check_functions(cfg, job, out);
    check_sla(job, out);
    if (out->errors)
        return CB_ESCHEMA;
    memset(&flow, 0, sizeof flow);
    if ((s = cb_flow_build(job, cfg->max_tasks, &flow, err, sizeof err)) != CB_OK) {
        if (s == CB_ENOMEM)
            return s;
        return reject(out, s == CB_EUNSUPP ? CB_EUNSUPP : CB_ESCHEMA, "%s", err);
    }
    {
        double most = cb_config_tenant_limit(cfg->reg, tenant, "max_tasks_per_job");
        uint32_t n = flow.tasks;
        size_t accts = accounts_of(cfg, &flow);
        cb_flow_cleanup(&flow);
        if (accts > CB_POOL_MAX)
            return reject(out, CB_EUNSUPP,
                          "/: the job's functions run on %zu accounts (a pool's members "
                          "counted), more than the %d one job may use",
                          accts, CB_POOL_MAX);
        if (most > 0 && n > most)
            return reject(out, CB_ETOOBIG,
                          "/: the job has %u tasks, over tenant \"%s\"'s limit of %.0f "
                          "(tenants.%s.max_tasks_per_job)",
                          n, tenant, most, tenant);
    }
    if ((s = cb_digest_json(job, out->digest)) != CB_OK)
        return s;
    return CB_OK;
}

cb_status cb_intake_check(const cb_intake_cfg *cfg, const char *tenant, const void *data,
                          size_t len, const char *fresh_id, cb_intake *out)
{
    /* A verdict reached while an allocation failed is not trusted (a lost
     * error message would accept a bad job): the job is judged again. */
    unsigned long failures = cb_alloc_failures();
    cb_status s = check(cfg, tenant, data, len, fresh_id, out);
    return cb_alloc_failures() != failures ? CB_ENOMEM : s;
}

void cb_intake_cleanup(cb_intake *in)
{
    json_decref(in->job);
    json_decref(in->errors);
    memset(in, 0, sizeof *in);
}
