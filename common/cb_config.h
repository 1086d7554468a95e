/* common/cb_config.h - the backends configuration file that the adapter
 * workers and the engine share: which backends exist, their traffic limits,
 * and (for the local backend) which functions are registered.
 *
 *   {"backends": {
 *      "local": {"max_concurrency": 64, "rate_per_s": 0,
 *                "functions": {
 *                   "add7": {"runtime": "python", "module": "fns/demo.py",
 *                            "handler": "add7", "mode": "warm", "pool": 2},
 *                   "wc":   {"command": ["wc", "-c"], "mode": "cold",
 *                            "timeout_ms": 5000, "env": {"LC_ALL": "C"}}}}}}
 *
 * Relative paths (module, cwd) are relative to the file's directory. The local
 * backend always has the built-in functions noop, echo, sleep_ms and
 * fail_n_times, and "python", the runtime of shipped functions
 * (docs/toolkit.md: a warm pool of python_runtime.py --shipped; a function
 * of the file with that name takes its place). Immutable after loading:
 * readable from any thread. */
#ifndef CB_CONFIG_H
#define CB_CONFIG_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

struct cb_schema;

/* The local runtime that runs shipped functions (a job's function with
 * "code"). */
#define CB_SHIPPED_RUNTIME "python"

typedef enum cb_fn_kind {
    CB_FN_BUILTIN = 0,
    CB_FN_COMMAND, /* any executable; warm ones speak the line protocol */
} cb_fn_kind;

typedef struct cb_fn_conf {
    const char *name;
    cb_fn_kind kind;
    const char *const *argv; /* NULL-terminated; NULL for built-ins */
    int warm;                /* 1: a pool of long-lived runtimes (line protocol) */
    int pool;                /* warm runtimes kept; default 2 */
    int64_t timeout_ms;      /* per invocation, 0: the job's or the backend's */
    const json_t *env;       /* extra environment, or NULL */
    const char *cwd;         /* or NULL */
} cb_fn_conf;

typedef struct cb_backend_limits {
    uint32_t max_concurrency; /* invocations in flight on the account; 0: unlimited */
    double rate_per_s;        /* invocations started per second; 0: unlimited */
} cb_backend_limits;

typedef struct cb_config cb_config;

/* Load `path` (NULL: only the local backend with its built-ins). On failure
 * err says where. Errors: CB_ENOTFOUND, CB_EINVAL, CB_ENOMEM. */
CB_NODISCARD cb_status cb_config_load(const char *path, cb_config **out, char *err, size_t errlen);
void cb_config_free(cb_config *r); /* accepts NULL */

/* The "storage" object (cb_storage.h; a relative "root" already made
 * relative to the file's directory), or NULL: the default. Borrowed. */
const json_t *cb_config_storage(const cb_config *r);
/* The "api" object (cb-api's tokens, docs/api.md), or NULL. Borrowed. */
const json_t *cb_config_api(const cb_config *r);
/* A tenant's weight in the fair share of a backend between tenants
 * ("tenants": {"acme": {"weight": 3}}; docs/engine.md): 1 when not given. */
double cb_config_tenant_weight(const cb_config *r, const char *tenant);
/* A tenant's quota `key` ("max_tasks_per_job", "submissions_per_s";
 * docs/engine.md, "Quotas"): 0 when not given (no limit). */
double cb_config_tenant_limit(const cb_config *r, const char *tenant, const char *key);
/* A setting into dst: conf's string `key` when non-empty, else the first
 * non-empty of the environment variables env1, env2 (either may be NULL),
 * else "". For credentials and regions: the file wins over the environment. */
void cb_config_pick(char *dst, size_t n, const json_t *conf, const char *key, const char *env1,
                    const char *env2);

/* 1 if `backend` is configured (local always is). */
int cb_config_has_backend(const cb_config *r, const char *backend);
/* The backend's object in the file (borrowed), or NULL. */
const json_t *cb_config_backend(const cb_config *r, const char *backend);
/* The backend's type: its "type" in the file, else its name (so "local",
 * "http", "lambda" and "openwhisk" need no type; "lambda-eu" does). */
const char *cb_config_backend_type(const cb_config *r, const char *backend);
void cb_config_limits(const cb_config *r, const char *backend, cb_backend_limits *out);
/* The deployment's stream settings ("broker": {"replicas", "dedup_window_ms",
 * "partitions"}): each is written only when the file sets it. */
void cb_config_stream_settings(const cb_config *r, int *replicas, int64_t *dedup_window_ms,
                               int *partitions);
/* A pool (docs/engine.md, "Pools"): several accounts a job may name as
 * its function's "backend"; the engine splits its tasks across them.
 *   "pools": {"fast": {"members": ["lambda-eu", "lambda-us", "knative"],
 *                      "policy": "order", "weights": {"knative": 2}}}
 * Pool names are not backend names; members are configured backends (not
 * pools), distinct, at most CB_POOL_MAX. */
#define CB_POOL_MAX 8
typedef enum cb_pool_policy {
    CB_POOL_ORDER = 0, /* fill the first, spill over to the next when it is full or throttles */
    CB_POOL_WEIGHTED,  /* by "weights" (default 1 each), within each one's free capacity */
    CB_POOL_CHEAPEST,  /* fill in order of price ("price": per_gb_s, then per_request) */
} cb_pool_policy;

typedef struct cb_pool {
    const char *name;
    cb_pool_policy policy;
    size_t n;
    const char *members[CB_POOL_MAX];
    double weights[CB_POOL_MAX]; /* > 0 */
} cb_pool;

/* The pool `name`, or NULL when it is none. Borrowed. */
const cb_pool *cb_config_pool(const cb_config *r, const char *name);
const char *cb_pool_policy_name(cb_pool_policy p);

/* The backend types this build has ("local", "http", "lambda", "openwhisk"):
 * i in [0, count). adapters/backend.c has a backend for each (a unit test
 * checks they agree). */
size_t cb_config_type_count(void);
const char *cb_config_type_at(size_t i);
/* Does `account` (configured) run function `fn`? Read from the
 * configuration alone, so the engine's intake needs no backend code:
 *   local:            a configured function or a built-in;
 *   http:             a key of its "functions", or any name when its "url"
 *                     has a {name} placeholder;
 *   lambda/openwhisk: any name (the platform knows its functions; an entry
 *                     in "functions" only renames or qualifies one).
 * CB_OK, or CB_ENOTFOUND with `why` (no such function; a type this build
 * does not have; an account that is not configured). */
CB_NODISCARD cb_status cb_config_runs(const cb_config *c, const char *account, const char *fn,
                                      char *why, size_t n);
/* A local function (built-in or configured), or NULL. Borrowed. */
const cb_fn_conf *cb_config_local_fn(const cb_config *r, const char *name);
/* Is `name` of `backend` the runtime of shipped functions (it takes a
 * job's function "code"; docs/toolkit.md)? The local backend's "python";
 * "python" of an http account with "shipped": true (a function server). */
int cb_config_runs_shipped(const cb_config *r, const char *backend, const char *name);
/* The configured (non built-in) local functions: i in [0, count). */
size_t cb_config_local_count(const cb_config *r);
const cb_fn_conf *cb_config_local_at(const cb_config *r, size_t i);
/* What a daemon needs at start: the configuration (`path`, or NULL for the
 * built-ins only), checked against schemas/config.json, and the message
 * schemas. Logs the reason under `mod` and returns non-zero on failure
 * (nothing to free then). */
int cb_config_daemon_load(const char *path, const char *mod, cb_config **reg,
                          struct cb_schema **schema);
/* The stream settings of the configuration `path` (loaded and checked as
 * cb_config_daemon_load does; NULL or "": nothing is written) for a daemon
 * that needs only them (cb-projector, cb-sla). 0, or non-zero (logged). */
int cb_config_daemon_streams(const char *path, const char *mod, int *replicas,
                             int64_t *dedup_window_ms, int *partitions);
/* Check the loaded file against schemas/config.json (unknown keys, wrong
 * types: "max_concurrency": "lots"). CB_OK, or CB_ESCHEMA with err listing
 * the errors ("/backends/local/max_concurrency: expected integer, got
 * string"; "; " between them). */
CB_NODISCARD cb_status cb_config_check(const cb_config *r, const struct cb_schema *schema,
                                       char *err, size_t errlen);
/* The interpreter of the Python runtimes: $CB_PYTHON, else "python3" (from
 * PATH). Shipped functions need cloudpickle in it and the client's
 * major.minor. */
const char *cb_config_python(void);
/* The directory holding the bundled runtimes (python_runtime.py). */
const char *cb_config_runtime_dir(void);

#endif /* CB_CONFIG_H */
