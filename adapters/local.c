/* adapters/local.c - the `local` backend: functions run as processes on this
 * machine, or built in.
 *
 *   built-in  noop, echo, sleep_ms, fail_n_times: run in the worker itself
 *             (a timer, no process), so benchmarks measure the engine.
 *   cold      one process per item: the item as JSON on stdin, its output
 *             as JSON on stdout, exit status 0.
 *   warm      a pool of long-lived runtimes per function, each serving one
 *             invocation at a time over the line protocol:
 *               -> {"id":N,"items":[...],"first":I}\n   (I: the job's index of
 *                  items[0] in a map; shipped functions add "code", "python")
 *               <- {"id":N,"outputs":[...]}\n   or   {"id":N,"error":"..."}\n
 *             A runtime that dies fails its invocation with the reason and
 *             is replaced on demand.
 *
 * Every invocation has a timeout (the function's, the job's, or 300 s); on
 * expiry its process is killed and the invocation fails with "timeout".
 * A function's memory_mb limits the data memory (RLIMIT_DATA) of the
 * process that runs it: a cold process, or a warm runtime of a pool kept per
 * function and memory size; a failure that says memory ran out (or a
 * signal) names the limit. Built-ins run in the worker: the engine refuses
 * memory_mb for them. */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cb_json.h"
#include "cb_alloc.h"
#include "cb_log.h"
#include "cb_proc.h"
#include "cb_config.h"

#define DEFAULT_TIMEOUT_MS 300000
/* One invocation's output: below the event limit, unless the adapter writes
 * outputs too large for the log to object storage (adapters/spill.h; its
 * main sets $CB_STORAGE for the runtimes then): up to 256 MiB. */
#define MAX_OUTPUT_INLINE  (512u * 1024u)
#define MAX_OUTPUT_STORAGE (256u * 1024u * 1024u)

static unsigned max_output(void)
{
    const char *st = getenv("CB_STORAGE");
    return st && *st ? MAX_OUTPUT_STORAGE : MAX_OUTPUT_INLINE;
}

typedef struct local_be local_be;
typedef struct runtime runtime;
typedef struct pool pool;

typedef struct inv {
    local_be *be;
    pool *pool;           /* warm */
    runtime *rt;          /* warm: the runtime serving it */
    cb_proc *proc;        /* cold: the process of the current item */
    const cb_fn_conf *fn; /* NULL for built-ins */
    char name[64];
    json_t *items;   /* owned reference */
    json_t *code;    /* a shipped function: its reference and Python, or NULL (owned) */
    json_t *outputs; /* owned */
    size_t next;     /* cold / sleep: the item being run */
    uint32_t attempt;
    int64_t first; /* the job's index of items[0], -1: not a map */
    int64_t timeout_ms;
    uint32_t memory_mb;  /* the function's memory_mb: its process's data limit (0: none) */
    struct event *timer; /* timeout; built-ins also use it to finish */
    struct event *step;  /* built-ins: the next step */
    cb_inv_done_cb *done;
    void *ctx;
    struct inv *prev, *next_inv; /* in be->all */
    struct inv *qnext;           /* warm: waiting for a runtime */
    uint64_t id;
} inv;

struct runtime {
    pool *pool;
    cb_proc *proc;
    inv *cur;
    runtime *next;
};

struct pool {
    const cb_fn_conf *fn;
    uint32_t memory_mb; /* its runtimes' data limit: a pool per function and memory size */
    runtime *rts;
    int nrts;
    inv *qhead, *qtail;
    pool *next;
};

struct local_be {
    struct event_base *base;
    const cb_config *reg;
    pool *pools;
    inv *all;
    uint64_t next_id;
};

/* ---- finishing ----------------------------------------------------------- */

static void inv_unlink(inv *v)
{
    if (v->prev)
        v->prev->next_inv = v->next_inv;
    else
        v->be->all = v->next_inv;
    if (v->next_inv)
        v->next_inv->prev = v->prev;
}

static void inv_free(inv *v)
{
    if (v->timer)
        event_free(v->timer);
    if (v->step)
        event_free(v->step);
    cb_proc_free(v->proc);
    json_decref(v->items);
    json_decref(v->code);
    json_decref(v->outputs);
    free(v);
}

/* Report and free. */
/* Whether a failure's text says memory ran out (Python, C, C++, the kernel). */
static bool memory_error(const char *error)
{
    static const char *const says[] = {"MemoryError", "Cannot allocate memory", "out of memory",
                                       "std::bad_alloc"};
    for (size_t i = 0; error && i < sizeof says / sizeof says[0]; i++)
        if (strstr(error, says[i]))
            return true;
    return false;
}

static void finish(inv *v, cb_fail_reason reason, const char *error, const char *tail)
{
    char hinted[1200];
    cb_inv_result r = {.reason = reason, .outputs = v->outputs, .error = error};
    /* a process limited to its memory_mb that died or ran out: say so */
    if (v->memory_mb && error &&
        (reason == CB_FAIL_SIGNAL || memory_error(error) || memory_error(tail))) {
        /* "Type: message" stays so: "MemoryError" alone gets the limit as its message */
        snprintf(hinted, sizeof hinted, "%s%s its memory is limited to %u MiB (function.memory_mb)",
                 error, strchr(error, ':') ? ";" : ":", v->memory_mb);
        r.error = hinted;
    }
    r.stderr_tail = tail && *tail ? tail : NULL;
    inv_unlink(v);
    v->done(&r, v->ctx);
    inv_free(v);
}

static void fail_fmt(inv *v, cb_fail_reason reason, const char *tail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_fmt(inv *v, cb_fail_reason reason, const char *tail, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    finish(v, reason, msg, tail);
}

/* The last non-empty line of a stderr tail: for a Python traceback, the
 * exception. */
static void last_line(const char *s, char *out, size_t size)
{
    const char *end = s + strlen(s), *start;
    while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    start = end;
    while (start > s && start[-1] != '\n')
        start--;
    snprintf(out, size, "%.*s", (int)(end - start), start);
}

static cb_fail_reason exit_reason(int wstatus, cb_status s)
{
    if (s == CB_ETOOBIG)
        return CB_FAIL_OVERSIZE;
    return WIFSIGNALED(wstatus) ? CB_FAIL_SIGNAL : CB_FAIL_EXIT;
}

/* ---- warm runtimes --------------------------------------------------------- */

static void pool_pump(pool *pl);

static void runtime_remove(runtime *rt)
{
    pool *pl = rt->pool;
    for (runtime **pp = &pl->rts; *pp; pp = &(*pp)->next)
        if (*pp == rt) {
            *pp = rt->next;
            break;
        }
    pl->nrts--;
    cb_proc_free(rt->proc);
    free(rt);
}

static void rt_line(cb_proc *p, const char *line, size_t len, void *ctx)
{
    runtime *rt = ctx;
    inv *v = rt->cur;
    json_error_t je;
    cb_status st;
    json_t *msg;
    (void)p;
    if (!v)
        return; /* after a timeout: the runtime is being killed */
    msg = cb_json_loadb(line, len, 0, &je, &st);
    const json_t *outs = json_object_get(msg, "outputs");
    const char *error = json_string_value(json_object_get(msg, "error"));
    json_int_t id = json_integer_value(json_object_get(msg, "id"));
    rt->cur = NULL;
    v->rt = NULL;
    if (!msg || (uint64_t)id != v->id || (!error && !json_is_array(outs))) {
        fail_fmt(v, CB_FAIL_INVALID_OUTPUT, cb_proc_stderr(rt->proc),
                 "runtime of %s answered something else than the line protocol: %.200s", v->name,
                 line);
        cb_proc_kill(rt->proc, SIGKILL); /* out of step: replace it */
    } else if (error) {
        fail_fmt(v, CB_FAIL_EXIT, json_string_value(json_object_get(msg, "traceback")), "%s",
                 error);
    } else if (json_array_size(outs) != json_array_size(v->items)) {
        fail_fmt(v, CB_FAIL_INVALID_OUTPUT, NULL, "%s returned %zu outputs for %zu items", v->name,
                 json_array_size(outs), json_array_size(v->items));
    } else {
        json_decref(v->outputs);
        v->outputs = json_incref((json_t *)outs);
        finish(v, CB_FAIL_NONE, NULL, NULL);
    }
    json_decref(msg);
    pool_pump(rt->pool);
}

static void rt_exit(cb_proc *p, int wstatus, cb_status s, void *ctx)
{
    runtime *rt = ctx;
    pool *pl = rt->pool;
    inv *v = rt->cur;
    char how[128], last[512];
    (void)p;
    cb_proc_describe(wstatus, how, sizeof how);
    if (v) {
        const char *tail = cb_proc_stderr(rt->proc);
        last_line(tail, last, sizeof last);
        v->rt = NULL;
        rt->cur = NULL;
        if (s == CB_ETOOBIG)
            fail_fmt(v, CB_FAIL_OVERSIZE, tail, "%s wrote more than %u bytes of output", v->name,
                     max_output());
        else
            fail_fmt(v, exit_reason(wstatus, s), tail, "runtime of %s died (%s)%s%s", v->name, how,
                     *last ? ": " : "", last);
    } else {
        CB_LOG_WRN("local", "runtime of %s ended (%s)", pl->fn->name, how);
    }
    runtime_remove(rt);
    pool_pump(pl);
}

static runtime *runtime_start(local_be *be, pool *pl, char *err, size_t errlen)
{
    runtime *rt = cb_calloc(1, sizeof *rt);
    cb_proc_opts o = {0};
    cb_status s;
    if (!rt)
        return NULL;
    rt->pool = pl;
    o.argv = pl->fn->argv;
    o.env = pl->fn->env;
    o.cwd = pl->fn->cwd;
    o.data_limit = (size_t)pl->memory_mb << 20;
    o.max_out = max_output();
    o.line_mode = 1;
    o.on_line = rt_line;
    o.on_exit = rt_exit;
    o.ctx = rt;
    if ((s = cb_proc_spawn(be->base, &o, &rt->proc)) != CB_OK) {
        snprintf(err, errlen, "cannot start %s: %s", pl->fn->argv[0], cb_strerror(s));
        free(rt);
        return NULL;
    }
    rt->next = pl->rts;
    pl->rts = rt;
    pl->nrts++;
    return rt;
}

static int send_request(runtime *rt, inv *v)
{
    json_t *req = json_pack("{s:I, s:O, s:O*, s:O*, s:o*}", "id", (json_int_t)v->id, "items",
                            v->items, "code", json_object_get(v->code, "code"), "python",
                            json_object_get(v->code, "python"), "first",
                            v->first >= 0 ? json_integer((json_int_t)v->first) : NULL);
    char *line = req ? cb_json_dumps(req, JSON_COMPACT) : NULL;
    int rc = -1;
    json_decref(req);
    if (line) {
        size_t n = strlen(line);
        line[n] = '\n'; /* replaces the NUL: the length is known */
        rc = cb_proc_write(rt->proc, line, n + 1) == CB_OK ? 0 : -1;
        free(line);
    }
    return rc;
}

/* Give waiting invocations to idle runtimes, starting runtimes up to the
 * pool size. */
static void pool_pump(pool *pl)
{
    local_be *be = NULL;
    while (pl->qhead) {
        inv *v = pl->qhead;
        runtime *rt = NULL;
        char err[512];
        be = v->be;
        for (runtime *r = pl->rts; r; r = r->next)
            if (!r->cur) {
                rt = r;
                break;
            }
        if (!rt && pl->nrts >= pl->fn->pool)
            return;
        pl->qhead = v->qnext;
        if (!pl->qhead)
            pl->qtail = NULL;
        v->qnext = NULL;
        if (!rt && !(rt = runtime_start(be, pl, err, sizeof err))) {
            fail_fmt(v, CB_FAIL_BACKEND, NULL, "%s", err);
            continue;
        }
        rt->cur = v;
        v->rt = rt;
        if (send_request(rt, v) != 0) {
            rt->cur = NULL;
            v->rt = NULL;
            fail_fmt(v, CB_FAIL_BACKEND, NULL, "cannot write to the runtime of %s", v->name);
        }
    }
}

static pool *pool_of(local_be *be, const cb_fn_conf *fn, uint32_t memory_mb)
{
    pool *pl;
    for (pl = be->pools; pl; pl = pl->next)
        if (pl->fn == fn && pl->memory_mb == memory_mb)
            return pl;
    if (!(pl = cb_calloc(1, sizeof *pl)))
        return NULL;
    pl->fn = fn;
    pl->memory_mb = memory_mb;
    pl->next = be->pools;
    be->pools = pl;
    return pl;
}

static void queue_remove(pool *pl, inv *v)
{
    inv *prev = NULL;
    for (inv *q = pl->qhead; q; prev = q, q = q->qnext)
        if (q == v) {
            if (prev)
                prev->qnext = q->qnext;
            else
                pl->qhead = q->qnext;
            if (pl->qtail == q)
                pl->qtail = prev;
            return;
        }
}

/* ---- cold processes -------------------------------------------------------- */

static void cold_next(inv *v);

static void cold_exit(cb_proc *p, int wstatus, cb_status s, void *ctx)
{
    inv *v = ctx;
    char how[128], last[512];
    const char *tail = cb_proc_stderr(p);
    size_t len;
    const char *out = cb_proc_output(p, &len);
    json_error_t je;
    cb_status st;
    json_t *o;

    if (s != CB_OK || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        cb_proc_describe(wstatus, how, sizeof how);
        last_line(tail, last, sizeof last);
        if (s == CB_ETOOBIG)
            fail_fmt(v, CB_FAIL_OVERSIZE, tail, "%s wrote more than %u bytes of output", v->name,
                     max_output());
        else
            fail_fmt(v, exit_reason(wstatus, s), tail, "%s %s%s%s", v->name, how, *last ? ": " : "",
                     last);
        return;
    }
    if (!out || !(o = cb_json_loadb(out, len, JSON_DECODE_ANY, &je, &st))) {
        if (!out || st == CB_ENOMEM)
            fail_fmt(v, CB_FAIL_BACKEND, tail, "%s: out of memory reading its output", v->name);
        else
            fail_fmt(v, CB_FAIL_INVALID_OUTPUT, tail, "%s: output is not JSON: %s", v->name,
                     je.text);
        return;
    }
    json_array_append_new(v->outputs, o);
    cb_proc_free(v->proc);
    v->proc = NULL;
    v->next++;
    cold_next(v);
}

static void cold_next(inv *v)
{
    cb_proc_opts o = {0};
    cb_status s;
    char *in;
    if (v->next == json_array_size(v->items)) {
        finish(v, CB_FAIL_NONE, NULL, NULL);
        return;
    }
    o.argv = v->fn->argv;
    o.env = v->fn->env;
    o.cwd = v->fn->cwd;
    o.data_limit = (size_t)v->memory_mb << 20;
    o.max_out = max_output();
    o.on_exit = cold_exit;
    o.ctx = v;
    if ((s = cb_proc_spawn(v->be->base, &o, &v->proc)) != CB_OK) {
        fail_fmt(v, CB_FAIL_BACKEND, NULL, "cannot start %s: %s", v->fn->argv[0], cb_strerror(s));
        return;
    }
    in = cb_json_dumps(json_array_get(v->items, v->next), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!in || cb_proc_write(v->proc, in, strlen(in)) != CB_OK ||
        cb_proc_write(v->proc, "\n", 1) != CB_OK) {
        free(in);
        fail_fmt(v, CB_FAIL_BACKEND, NULL, "cannot write the input of %s", v->name);
        return;
    }
    free(in);
    cb_proc_close_stdin(v->proc);
}

/* ---- built-ins ------------------------------------------------------------- */

static int64_t item_number(const json_t *item, const char *key)
{
    if (json_is_object(item))
        item = json_object_get(item, key);
    return json_is_number(item) ? (int64_t)json_number_value(item) : 0;
}

static void builtin_run(inv *v)
{
    if (!strcmp(v->name, "noop")) {
        for (size_t i = 0; i < json_array_size(v->items); i++)
            json_array_append_new(v->outputs, json_null());
    } else if (!strcmp(v->name, "echo")) {
        json_array_extend(v->outputs, v->items);
    } else if (!strcmp(v->name, "fail_n_times")) {
        /* Fails attempts 1..n (item: n, or {"n": n}); later attempts echo. */
        int64_t n = item_number(json_array_get(v->items, 0), "n");
        if ((int64_t)v->attempt <= n) {
            fail_fmt(v, CB_FAIL_EXIT, NULL, "fail_n_times: planned failure %u of %lld", v->attempt,
                     (long long)n);
            return;
        }
        json_array_extend(v->outputs, v->items);
    } else if (!strcmp(v->name, "sleep_ms")) { /* item: ms, or {"ms": ms}; in turn */
        if (v->next < json_array_size(v->items)) {
            const json_t *item = json_array_get(v->items, v->next++);
            int64_t ms = item_number(item, "ms");
            struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
            json_array_append(v->outputs, (json_t *)item);
            evtimer_add(v->step, &tv);
            return;
        }
    } else { /* the engine checks names at intake; a stale configuration gets here */
        fail_fmt(v, CB_FAIL_BACKEND, NULL, "no local function named \"%s\"", v->name);
        return;
    }
    finish(v, CB_FAIL_NONE, NULL, NULL);
}

/* Invocations start on the next loop turn, never inside invoke(), so done is
 * never called from within invoke(). */
static void step_cb(evutil_socket_t fd, short what, void *arg)
{
    inv *v = arg;
    (void)fd;
    (void)what;
    if (!v->fn) {
        builtin_run(v);
    } else if (v->fn->warm) {
        if (v->pool->qtail)
            v->pool->qtail->qnext = v;
        else
            v->pool->qhead = v;
        v->pool->qtail = v;
        pool_pump(v->pool);
    } else {
        cold_next(v);
    }
}

/* ---- the backend ----------------------------------------------------------- */

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    inv *v = arg;
    (void)fd;
    (void)what;
    if (v->rt) { /* warm: the runtime is killed and replaced */
        runtime *rt = v->rt;
        rt->cur = NULL;
        v->rt = NULL;
        cb_proc_kill(rt->proc, SIGKILL);
    } else if (v->pool) {
        queue_remove(v->pool, v);
    }
    fail_fmt(v, CB_FAIL_TIMEOUT, v->proc ? cb_proc_stderr(v->proc) : NULL,
             "%s did not finish within %lld ms", v->name, (long long)v->timeout_ms);
}

static cb_status local_create(struct event_base *base, const cb_config *reg, const char *account,
                              void **out, char *err, size_t errlen)
{
    local_be *be = cb_calloc(1, sizeof *be);
    (void)account;
    (void)err;
    (void)errlen;
    if (!be)
        return CB_ENOMEM;
    be->base = base;
    be->reg = reg;
    /* Warm means warm from the start: the first invocation should not pay
     * for an interpreter's start-up. A runtime that cannot start is logged
     * here and reported by the invocations that need it. */
    for (size_t i = 0; i < cb_config_local_count(reg); i++) {
        const cb_fn_conf *fn = cb_config_local_at(reg, i);
        pool *pl = fn->warm ? pool_of(be, fn, 0) : NULL;
        while (pl && pl->nrts < fn->pool) {
            char why[512];
            if (!runtime_start(be, pl, why, sizeof why)) {
                CB_LOG_WRN("local", "%s", why);
                break;
            }
        }
    }
    *out = be;
    return CB_OK;
}

static cb_status local_invoke(void *self, const cb_invocation *in, cb_inv_done_cb *done, void *ctx)
{
    local_be *be = self;
    const cb_fn_conf *fn = cb_config_local_fn(be->reg, in->function);
    inv *v = cb_calloc(1, sizeof *v);
    struct timeval tv;

    if (!v)
        return CB_ENOMEM;
    v->be = be;
    v->done = done;
    v->ctx = ctx;
    v->id = ++be->next_id;
    v->attempt = in->attempt;
    v->first = in->first_item;
    snprintf(v->name, sizeof v->name, "%s", in->function);
    v->items = json_incref((json_t *)in->items);
    if (json_object_get(in->spec, "code")) /* a shipped function (docs/toolkit.md) */
        v->code = json_pack("{s:O, s:O*}", "code", json_object_get(in->spec, "code"), "python",
                            json_object_get(in->spec, "python"));
    v->outputs = json_array();
    v->memory_mb = (uint32_t)json_integer_value(json_object_get(in->spec, "memory_mb"));
    v->timeout_ms = fn && fn->timeout_ms > 0 ? fn->timeout_ms
                    : in->timeout_ms > 0     ? in->timeout_ms
                                             : DEFAULT_TIMEOUT_MS;
    v->timer = evtimer_new(be->base, timeout_cb, v);
    v->step = evtimer_new(be->base, step_cb, v);
    v->fn = fn && fn->kind == CB_FN_COMMAND ? fn : NULL;
    if (!v->outputs || !v->timer || !v->step ||
        (v->fn && v->fn->warm && !(v->pool = pool_of(be, fn, v->memory_mb)))) {
        inv_free(v);
        return CB_ENOMEM;
    }
    v->next_inv = be->all;
    if (be->all)
        be->all->prev = v;
    be->all = v;
    tv.tv_sec = (time_t)(v->timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)(v->timeout_ms % 1000) * 1000;
    evtimer_add(v->timer, &tv);
    tv.tv_sec = tv.tv_usec = 0;
    evtimer_add(v->step, &tv);
    return CB_OK;
}

static void local_destroy(void *self)
{
    local_be *be = self;
    while (be->all) {
        inv *v = be->all;
        if (v->rt)
            v->rt->cur = NULL;
        if (v->pool)
            queue_remove(v->pool, v);
        finish(v, CB_FAIL_BACKEND, "backend closing", NULL);
    }
    while (be->pools) {
        pool *pl = be->pools;
        be->pools = pl->next;
        while (pl->rts)
            runtime_remove(pl->rts);
        free(pl);
    }
    free(be);
}

const cb_backend_ops cb_backend_local = {
    .name = "local",
    .create = local_create,
    .invoke = local_invoke,
    .destroy = local_destroy,
};
