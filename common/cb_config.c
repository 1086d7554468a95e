/* common/cb_config.c - the backends configuration file (see cb_config.h). */
#include "cb_config.h"

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_schema.h"

static const char *const builtin_names[] = {"noop", "echo", "sleep_ms", "fail_n_times"};
#define NBUILTIN (sizeof builtin_names / sizeof builtin_names[0])

typedef struct fn_entry {
    cb_fn_conf conf;
    char **argv; /* owned strings */
    char *cwd;
    json_t *env; /* owned when the configuration adds variables */
} fn_entry;

struct cb_config {
    json_t *root; /* owned: the file, or {"backends":{"local":{}}} */
    fn_entry *fns;
    size_t nfns;
    cb_fn_conf builtins[NBUILTIN];
    /* "python": the runtime of shipped functions (docs/toolkit.md), a warm
     * pool of python_runtime.py --shipped */
    cb_fn_conf shipped;
    char shipped_script[600];
    const char *shipped_argv[5];
    cb_pool *pools; /* "pools" (names and members borrowed from root) */
    size_t npools;
};

const char *cb_config_python(void)
{
    const char *env = getenv("CB_PYTHON");
    return env && *env ? env : "python3";
}

const char *cb_config_runtime_dir(void)
{
    const char *env = getenv("CB_RUNTIME_DIR");
#ifdef CB_RUNTIME_DIR
    return env && *env ? env : CB_RUNTIME_DIR;
#else
    return env && *env ? env : "adapters/runtimes";
#endif
}

static char *join_path(const char *dir, const char *p)
{
    size_t n;
    char *out;
    if (p[0] == '/' || !dir)
        return cb_strdup(p);
    n = strlen(dir) + strlen(p) + 2;
    if ((out = cb_malloc(n)))
        snprintf(out, n, "%s/%s", dir, p);
    return out;
}

static cb_status fail(char *err, size_t errlen, cb_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cb_status fail(char *err, size_t errlen, cb_status s, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* Fill one configured function from its object. */
static cb_status parse_fn(const char *name, const json_t *o, const char *dir, fn_entry *e,
                          char *err, size_t errlen)
{
    const json_t *cmd = json_object_get(o, "command");
    const char *runtime = json_string_value(json_object_get(o, "runtime"));
    const char *mode = json_string_value(json_object_get(o, "mode"));
    const char *cwd = json_string_value(json_object_get(o, "cwd"));
    const json_t *env = json_object_get(o, "env");
    size_t n = 0;

    if (!json_is_object(o))
        return fail(err, errlen, CB_EINVAL, "/backends/local/functions/%s: not an object", name);
    e->conf.name = name;
    e->conf.kind = CB_FN_COMMAND;
    if (runtime && !strcmp(runtime, "python")) {
        const char *module = json_string_value(json_object_get(o, "module"));
        const char *handler = json_string_value(json_object_get(o, "handler"));
        char script[4096];
        if (!module)
            return fail(err, errlen, CB_EINVAL, "/backends/local/functions/%s: %s", name,
                        "a python function needs \"module\"");
        snprintf(script, sizeof script, "%s/python_runtime.py", cb_config_runtime_dir());
        if (!(e->argv = cb_calloc(6, sizeof *e->argv)) ||
            !(e->argv[0] = cb_strdup(cb_config_python())) || !(e->argv[1] = cb_strdup("-u")) ||
            !(e->argv[2] = cb_strdup(script)) || !(e->argv[3] = join_path(dir, module)) ||
            !(e->argv[4] = cb_strdup(handler ? handler : name)))
            return CB_ENOMEM;
        n = 5;
    } else if (json_is_array(cmd) && json_array_size(cmd) > 0) {
        n = json_array_size(cmd);
        if (!(e->argv = cb_calloc(n + 1, sizeof *e->argv)))
            return CB_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            const char *a = json_string_value(json_array_get(cmd, i));
            if (!a)
                return fail(err, errlen, CB_EINVAL, "/backends/local/functions/%s/command: %s",
                            name, "every element must be a string");
            if (!(e->argv[i] = cb_strdup(a)))
                return CB_ENOMEM;
        }
    } else {
        return fail(err, errlen, CB_EINVAL, "/backends/local/functions/%s: %s", name,
                    "needs \"command\" (an array) or \"runtime\": \"python\"");
    }
    if (mode && strcmp(mode, "warm") && strcmp(mode, "cold"))
        return fail(err, errlen, CB_EINVAL, "/backends/local/functions/%s/mode: %s", name,
                    "must be \"warm\" or \"cold\"");
    /* Python functions are warm unless told otherwise; other programs cold. */
    e->conf.warm = mode ? !strcmp(mode, "warm") : runtime != NULL;
    e->conf.pool = (int)json_integer_value(json_object_get(o, "pool"));
    if (e->conf.pool <= 0)
        e->conf.pool = 2;
    e->conf.timeout_ms = json_integer_value(json_object_get(o, "timeout_ms"));
    if (env && !json_is_object(env))
        return fail(err, errlen, CB_EINVAL, "/backends/local/functions/%s/env: %s", name,
                    "must be an object of strings");
    e->conf.env = env;
    if (runtime && !e->conf.warm) { /* the Python runtime's cold mode */
        if (!(e->env = env ? json_deep_copy(env) : json_object()) ||
            json_object_set_new(e->env, "CB_COLD", json_string("1")))
            return CB_ENOMEM;
        e->conf.env = e->env;
    }
    if (cwd && !(e->cwd = join_path(dir, cwd)))
        return CB_ENOMEM;
    e->conf.cwd = e->cwd;
    e->conf.argv = (const char *const *)e->argv;
    return CB_OK;
}

static const char *const policies[] = {"order", "weighted", "cheapest"};

const char *cb_pool_policy_name(cb_pool_policy p)
{
    return (size_t)p < sizeof policies / sizeof policies[0] ? policies[p] : "?";
}

/* One pool: its members configured backends, distinct, weights positive. */
static cb_status parse_pool(const cb_config *r, const char *name, const json_t *o, cb_pool *p,
                            char *err, size_t errlen)
{
    const json_t *members = json_object_get(o, "members"), *m, *weights;
    const char *policy = json_string_value(json_object_get(o, "policy")), *k;
    size_t i;
    json_t *w;
    p->name = name;
    if (cb_config_backend(r, name) || !strcmp(name, "local"))
        return fail(err, errlen, CB_EINVAL, "/pools/%s: a backend has that name", name);
    if (!json_is_array(members) || json_array_size(members) == 0 ||
        json_array_size(members) > CB_POOL_MAX)
        return fail(err, errlen, CB_EINVAL, "/pools/%s/members: 1 to %d backends", name,
                    CB_POOL_MAX);
    json_array_foreach(members, i, m)
    {
        const char *b = json_string_value(m);
        if (!b || !cb_config_has_backend(r, b))
            return fail(err, errlen, CB_EINVAL, "/pools/%s/members/%zu: \"%s\" is no backend", name,
                        i, b ? b : "?");
        for (size_t j = 0; j < p->n; j++)
            if (!strcmp(p->members[j], b))
                return fail(err, errlen, CB_EINVAL, "/pools/%s/members: \"%s\" twice", name, b);
        p->members[p->n] = b;
        p->weights[p->n++] = 1;
    }
    p->policy = CB_POOL_ORDER;
    if (policy) {
        size_t n = sizeof policies / sizeof policies[0];
        for (i = 0; i < n && strcmp(policies[i], policy); i++)
            ;
        if (i == n)
            return fail(err, errlen, CB_EINVAL,
                        "/pools/%s/policy: \"%s\" (order, weighted or cheapest)", name, policy);
        p->policy = (cb_pool_policy)i;
    }
    weights = json_object_get(o, "weights");
    json_object_foreach((json_t *)weights, k, w)
    {
        for (i = 0; i < p->n && strcmp(p->members[i], k); i++)
            ;
        if (i == p->n)
            return fail(err, errlen, CB_EINVAL, "/pools/%s/weights/%s: not a member", name, k);
        if (!json_is_number(w) || json_number_value(w) <= 0)
            return fail(err, errlen, CB_EINVAL, "/pools/%s/weights/%s: a number > 0", name, k);
        p->weights[i] = json_number_value(w);
    }
    return CB_OK;
}

static cb_status parse_pools(cb_config *r, char *err, size_t errlen)
{
    const json_t *pools = json_object_get(r->root, "pools");
    const char *name;
    json_t *o;
    cb_status s;
    if (!pools)
        return CB_OK;
    if (!json_is_object(pools))
        return fail(err, errlen, CB_EINVAL, "/pools: must be an object");
    if (json_object_size(pools) &&
        !(r->pools = cb_calloc(json_object_size(pools), sizeof *r->pools)))
        return CB_ENOMEM;
    json_object_foreach((json_t *)pools, name, o)
    {
        if ((s = parse_pool(r, name, o, &r->pools[r->npools], err, errlen)) != CB_OK)
            return s;
        r->npools++;
    }
    return CB_OK;
}

const cb_pool *cb_config_pool(const cb_config *r, const char *name)
{
    for (size_t i = 0; r && name && i < r->npools; i++)
        if (!strcmp(r->pools[i].name, name))
            return &r->pools[i];
    return NULL;
}

cb_status cb_config_load(const char *path, cb_config **out, char *err, size_t errlen)
{
    cb_config *r = cb_calloc(1, sizeof *r);
    json_error_t je;
    const json_t *fns;
    char *dircopy = NULL;
    const char *dir = NULL;
    cb_status s = CB_OK;

    if (!r)
        return CB_ENOMEM;
    for (size_t i = 0; i < NBUILTIN; i++) {
        r->builtins[i].name = builtin_names[i];
        r->builtins[i].kind = CB_FN_BUILTIN;
    }
    snprintf(r->shipped_script, sizeof r->shipped_script, "%s/python_runtime.py",
             cb_config_runtime_dir());
    r->shipped_argv[0] = cb_config_python();
    r->shipped_argv[1] = "-u";
    r->shipped_argv[2] = r->shipped_script;
    r->shipped_argv[3] = "--shipped";
    r->shipped_argv[4] = NULL;
    r->shipped.name = CB_SHIPPED_RUNTIME;
    r->shipped.kind = CB_FN_COMMAND;
    r->shipped.argv = r->shipped_argv;
    r->shipped.warm = 1;
    r->shipped.pool = 2;
    if (!path) {
        r->root = json_pack("{s:{s:{}}}", "backends", "local");
    } else if (!(r->root = json_load_file(path, 0, &je))) {
        s = fail(err, errlen, CB_EINVAL, "%s: %s", path, je.text);
        if (strstr(je.text, "unable to open"))
            s = CB_ENOTFOUND;
        goto out;
    }
    if (!r->root) {
        s = CB_ENOMEM;
        goto out;
    }
    if (!json_is_object(json_object_get(r->root, "backends"))) {
        s = fail(err, errlen, CB_EINVAL, "%s: %s", path ? path : "config",
                 "needs an object \"backends\"");
        goto out;
    }
    if (path) {
        if (!(dircopy = cb_strdup(path))) {
            s = CB_ENOMEM;
            goto out;
        }
        dir = dirname(dircopy);
    }
    {
        /* the file storage's root, like the functions' paths, is relative to
         * the file's directory */
        json_t *st = json_object_get(r->root, "storage");
        const char *root = json_string_value(json_object_get(st, "root"));
        if (root && dir && root[0] != '/') {
            char *abs = join_path(dir, root);
            if (!abs || json_object_set_new(st, "root", json_string(abs)) != 0) {
                free(abs);
                s = CB_ENOMEM;
                goto out;
            }
            free(abs);
        }
    }
    fns = json_object_get(cb_config_backend(r, "local"), "functions");
    if (fns && !json_is_object(fns)) {
        s = fail(err, errlen, CB_EINVAL, "/backends/local/functions: must be an object");
        goto out;
    }
    if (fns && json_object_size(fns) > 0) {
        const char *name;
        json_t *o;
        if (!(r->fns = cb_calloc(json_object_size(fns), sizeof *r->fns))) {
            s = CB_ENOMEM;
            goto out;
        }
        json_object_foreach((json_t *)fns, name, o)
        {
            if ((s = parse_fn(name, o, dir, &r->fns[r->nfns++], err, errlen)) != CB_OK)
                goto out;
        }
    }
    if ((s = parse_pools(r, err, errlen)) != CB_OK)
        goto out;
out:
    free(dircopy);
    if (s != CB_OK) {
        cb_config_free(r);
        return s;
    }
    *out = r;
    return CB_OK;
}

void cb_config_free(cb_config *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nfns; i++) {
        for (size_t k = 0; r->fns[i].argv && r->fns[i].argv[k]; k++)
            free(r->fns[i].argv[k]);
        free(r->fns[i].argv);
        free(r->fns[i].cwd);
        json_decref(r->fns[i].env);
    }
    free(r->fns);
    free(r->pools);
    json_decref(r->root);
    free(r);
}

const json_t *cb_config_backend(const cb_config *r, const char *backend)
{
    return json_object_get(json_object_get(r->root, "backends"), backend);
}

const json_t *cb_config_api(const cb_config *r)
{
    return r ? json_object_get(r->root, "api") : NULL;
}

double cb_config_tenant_weight(const cb_config *r, const char *tenant)
{
    const json_t *w =
        r ? json_object_get(json_object_get(json_object_get(r->root, "tenants"), tenant), "weight")
          : NULL;
    return json_is_number(w) && json_number_value(w) > 0 ? json_number_value(w) : 1.0;
}

double cb_config_tenant_limit(const cb_config *r, const char *tenant, const char *key)
{
    const json_t *v =
        r ? json_object_get(json_object_get(json_object_get(r->root, "tenants"), tenant), key)
          : NULL;
    return json_is_number(v) && json_number_value(v) > 0 ? json_number_value(v) : 0;
}

const json_t *cb_config_storage(const cb_config *r)
{
    return r ? json_object_get(r->root, "storage") : NULL;
}

void cb_config_pick(char *dst, size_t n, const json_t *conf, const char *key, const char *env1,
                    const char *env2)
{
    const char *v = json_string_value(json_object_get(conf, key));
    if ((!v || !*v) && env1)
        v = getenv(env1);
    if ((!v || !*v) && env2)
        v = getenv(env2);
    snprintf(dst, n, "%s", v ? v : "");
}

int cb_config_has_backend(const cb_config *r, const char *backend)
{
    return !strcmp(backend, "local") || cb_config_backend(r, backend) != NULL;
}

const char *cb_config_backend_type(const cb_config *r, const char *backend)
{
    const char *t = json_string_value(json_object_get(cb_config_backend(r, backend), "type"));
    return t && *t ? t : backend;
}

void cb_config_limits(const cb_config *r, const char *backend, cb_backend_limits *out)
{
    const json_t *b = cb_config_backend(r, backend);
    json_int_t mc = json_integer_value(json_object_get(b, "max_concurrency"));
    out->max_concurrency = mc > 0 && mc < UINT32_MAX ? (uint32_t)mc : 0;
    out->rate_per_s = json_number_value(json_object_get(b, "rate_per_s"));
    if (out->rate_per_s < 0)
        out->rate_per_s = 0;
}

static const char *const types[] = {"local", "http", "lambda", "openwhisk"};

size_t cb_config_type_count(void)
{
    return sizeof types / sizeof types[0];
}

const char *cb_config_type_at(size_t i)
{
    return i < cb_config_type_count() ? types[i] : NULL;
}

cb_status cb_config_runs(const cb_config *c, const char *account, const char *fn, char *why,
                         size_t n)
{
    const char *type = cb_config_backend_type(c, account);
    const json_t *conf = cb_config_backend(c, account);
    const char *url = json_string_value(json_object_get(conf, "url"));
    if (!cb_config_has_backend(c, account))
        return fail(why, n, CB_ENOTFOUND, "backend \"%s\" is not configured", account);
    if (!strcmp(type, "local")) {
        if (cb_config_local_fn(c, fn))
            return CB_OK;
        return fail(why, n, CB_ENOTFOUND, "no local function named \"%s\"", fn);
    }
    if (!strcmp(type, "http")) {
        if (json_object_get(json_object_get(conf, "functions"), fn) ||
            (url && strstr(url, "{name}")) || cb_config_runs_shipped(c, account, fn))
            return CB_OK;
        return fail(why, n, CB_ENOTFOUND, "backend \"%s\" has no function \"%s\"", account, fn);
    }
    if (!strcmp(type, "lambda") || !strcmp(type, "openwhisk"))
        return *fn ? CB_OK
                   : fail(why, n, CB_ENOTFOUND, "backend \"%s\" has no function \"\"", account);
    return fail(why, n, CB_ENOTFOUND,
                "backend \"%s\" is of type \"%s\", which this build does not have", account, type);
}

const cb_fn_conf *cb_config_local_fn(const cb_config *r, const char *name)
{
    for (size_t i = 0; i < r->nfns; i++)
        if (!strcmp(r->fns[i].conf.name, name))
            return &r->fns[i].conf;
    for (size_t i = 0; i < NBUILTIN; i++)
        if (!strcmp(r->builtins[i].name, name))
            return &r->builtins[i];
    if (!strcmp(name, CB_SHIPPED_RUNTIME))
        return &r->shipped;
    return NULL;
}

int cb_config_runs_shipped(const cb_config *r, const char *backend, const char *name)
{
    const char *type;
    if (!r || !backend || !name || !cb_config_has_backend(r, backend))
        return 0;
    type = cb_config_backend_type(r, backend);
    if (!strcmp(type, "http")) /* a cbcore function server (docs/toolkit.md) */
        return !strcmp(name, CB_SHIPPED_RUNTIME) &&
               json_is_true(json_object_get(cb_config_backend(r, backend), "shipped")) &&
               json_string_value(json_object_get(cb_config_backend(r, backend), "url"));
    return !strcmp(type, "local") && cb_config_local_fn(r, name) == &r->shipped;
}

size_t cb_config_local_count(const cb_config *r)
{
    return r->nfns;
}

const cb_fn_conf *cb_config_local_at(const cb_config *r, size_t i)
{
    return i < r->nfns ? &r->fns[i].conf : NULL;
}

void cb_config_stream_settings(const cb_config *r, int *replicas, int64_t *dedup_window_ms,
                               int *partitions)
{
    const json_t *bk = json_object_get(r->root, "broker");
    const json_t *v = json_object_get(bk, "partitions");
    if (json_is_integer(v))
        *partitions = (int)json_integer_value(v);
    v = json_object_get(bk, "replicas");
    if (json_is_integer(v))
        *replicas = (int)json_integer_value(v);
    v = json_object_get(bk, "dedup_window_ms");
    if (json_is_integer(v))
        *dedup_window_ms = json_integer_value(v);
}

int cb_config_daemon_load(const char *path, const char *mod, cb_config **reg, cb_schema **schema)
{
    char err[512] = "";
    cb_status s;
    if ((s = cb_config_load(path && *path ? path : NULL, reg, err, sizeof err)) != CB_OK) {
        cb_log(CB_LOG_ERROR, mod, "configuration: %s", *err ? err : cb_strerror(s));
        return -1;
    }
    if ((s = cb_schema_load_dir(cb_schema_default_dir(), schema, err, sizeof err)) != CB_OK) {
        cb_log(CB_LOG_ERROR, mod, "schemas: %s", *err ? err : cb_strerror(s));
        cb_config_free(*reg);
        *reg = NULL;
        return -1;
    }
    if (path && *path && cb_config_check(*reg, *schema, err, sizeof err) != CB_OK) {
        cb_log(CB_LOG_ERROR, mod, "configuration: %s: %s", path, err);
        cb_config_free(*reg);
        cb_schema_free(*schema);
        *reg = NULL;
        *schema = NULL;
        return -1;
    }
    return 0;
}

int cb_config_daemon_streams(const char *path, const char *mod, int *replicas,
                             int64_t *dedup_window_ms, int *partitions)
{
    cb_config *reg = NULL;
    cb_schema *schema = NULL;
    if (!path || !*path)
        return 0;
    if (cb_config_daemon_load(path, mod, &reg, &schema) != 0)
        return -1;
    cb_config_stream_settings(reg, replicas, dedup_window_ms, partitions);
    cb_config_free(reg);
    cb_schema_free(schema);
    return 0;
}

cb_status cb_config_check(const cb_config *r, const cb_schema *schema, char *err, size_t errlen)
{
    json_t *errors = NULL, *e;
    size_t i, used = 0;
    cb_status s = cb_schema_validate(schema, "config.json", r->root, 8, &errors);
    err[0] = '\0';
    json_array_foreach(errors, i, e)
    {
        int n = snprintf(err + used, errlen - used, "%s%s", i ? "; " : "", json_string_value(e));
        if (n < 0 || (size_t)n >= errlen - used)
            break;
        used += (size_t)n;
    }
    json_decref(errors);
    return s;
}
