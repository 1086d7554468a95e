/* tools/bench_adapter.c - the `adapter` workload: invocations per second
 * through one real cb-adapter process of the local backend, for the built-in
 * `noop` (the worker's own cost: consume, two appends, ack) and a warm
 * Python `noop` (plus the line protocol and the interpreter). N invocation
 * commands are put on cb.invoke.local; the clock runs from the first put to
 * the N-th cb.task.succeeded read back from the log. */
#define _GNU_SOURCE
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cb_event.h"
#include "broker.h"
#include "cb_loop.h"
#include "cb_time.h"
#include "cb_proc.h"

#define WINDOW 4096 /* puts in flight */

typedef struct run {
    struct event_base *base;
    cb_broker *b;
    char tenant[64], fn[32];
    long n, sent, put_ok, failed, succeeded, other;
    int adapter_up, reader_ready;
    int64_t t0, t1;
} run;

static void put_some(run *r);

static void put_cb(cb_status s, uint64_t seq, int dup, void *ctx)
{
    run *r = ctx;
    (void)seq;
    (void)dup;
    if (s == CB_OK)
        r->put_ok++;
    else
        r->failed++;
    put_some(r);
}

static void put_some(run *r)
{
    char id[128], body[512];
    while (r->sent < r->n && r->sent - r->put_ok - r->failed < WINDOW) {
        int len = snprintf(body, sizeof body,
                           "{\"job_id\":\"bench\",\"tenant\":\"%s\",\"task\":%ld,\"attempt\":1,"
                           "\"function\":{\"backend\":\"local\",\"name\":\"%s\"},\"items\":[%ld]}",
                           r->tenant, r->sent, r->fn, r->sent);
        snprintf(id, sizeof id, "%s/bench/%ld/1", r->tenant, r->sent);
        if (cb_broker_put(r->b, "cb.invoke.local", id, body, (size_t)len, put_cb, r) != CB_OK)
            r->failed++;
        r->sent++;
    }
}

static void log_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    run *r = ctx;
    if (!m) {
        r->reader_ready = s == CB_OK; /* caught up: nothing appended from now on is missed */
        return;
    }
    if (memmem(m->data, m->len, "\"cb.task.succeeded\"", 19) ||
        memmem(m->data, m->len, "\"cb.tasks.succeeded\"", 20)) {
        cb_event ev;
        long was = r->succeeded;
        if (cb_event_decode(m->data, m->len, &ev, NULL, 0) == CB_OK) {
            r->succeeded += (long)cb_event_outcomes(&ev); /* several of one command */
            cb_event_cleanup(&ev);
        }
        if (was < r->n && r->succeeded >= r->n)
            r->t1 = cb_time_mono_ns();
    } else if (memmem(m->data, m->len, "\"cb.task.failed\"", 16)) {
        r->other++;
    }
}

static void adapter_exit(cb_proc *p, int wstatus, cb_status s, void *ctx)
{
    (void)p;
    (void)wstatus;
    (void)s;
    ((run *)ctx)->adapter_up = 0;
}

/* Turn the loop until `want` invocations succeeded; give up after 60 s
 * without progress. */
static bool wait_for(run *r, long want)
{
    long last = -1;
    int64_t stall = 0;
    while (r->succeeded < want && !r->failed && !r->other && r->adapter_up) {
        if (r->succeeded != last) {
            last = r->succeeded;
            stall = cb_time_mono_ns() + 60 * 1000000000LL;
        } else if (cb_time_mono_ns() > stall) {
            break;
        }
        event_base_loop(r->base, EVLOOP_ONCE);
    }
    return r->succeeded >= want;
}

static bool wait_reader(run *r)
{
    int64_t deadline = cb_time_mono_ns() + 30 * 1000000000LL;
    while (!r->reader_ready && cb_time_mono_ns() < deadline)
        event_base_loop(r->base, EVLOOP_ONCE);
    return r->reader_ready;
}

static cb_status one_run(const cb_bench_env *env, const char *fn, const char *config, long n,
                         int idx, double *per_s)
{
    run r;
    cb_broker_opts o;
    cb_read_opts ro;
    cb_reader *rd = NULL;
    cb_proc *adapter = NULL;
    int undo = -1; /* its cb_bench_cleanup slot */
    cb_proc_opts po = {0};
    char filter[128], exe[600], self[512];
    const char *argv[] = {exe,    "--broker",      env->url, "--config",
                          config, "--concurrency", "64",     NULL};
    cb_status st;
    ssize_t len;

    memset(&r, 0, sizeof r);
    snprintf(r.fn, sizeof r.fn, "%s", fn);
    snprintf(r.tenant, sizeof r.tenant, "bench-%d-%d-%s", (int)getpid(), idx, fn);
    if ((len = readlink("/proc/self/exe", self, sizeof self - 1)) <= 0)
        return CB_ENOTFOUND;
    self[len] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(exe, sizeof exe, "%s/cb-adapter", self);
    if (!(r.base = cb_loop_new()))
        return CB_ENOMEM;
    cb_broker_opts_init(&o);
    o.url = env->url;
    o.op_timeout_ms = 60000;
    if ((st = cb_broker_open(r.base, &o, &r.b)) != CB_OK)
        goto out;
    cb_read_opts_init(&ro);
    ro.from = CB_READ_NEW;
    snprintf(filter, sizeof filter, "cb.evt.%s.>", r.tenant);
    ro.filter = filter;
    if ((st = cb_broker_read(r.b, &ro, log_cb, &r, &rd)) != CB_OK)
        goto out;
    if (!wait_reader(&r)) {
        st = CB_ETIMEDOUT;
        goto out;
    }
    po.argv = argv;
    po.on_exit = adapter_exit;
    po.ctx = &r;
    if ((st = cb_proc_spawn(r.base, &po, &adapter)) != CB_OK)
        goto out;
    r.adapter_up = 1;
    undo = cb_bench_cleanup_push("kill %d 2>/dev/null", (int)cb_proc_pid(adapter));
    /* Warm up: the worker is consuming and its runtimes answer. */
    r.n = 64;
    put_some(&r);
    if (!wait_for(&r, 64)) {
        st = CB_ETIMEDOUT;
        goto out;
    }
    r.sent = r.put_ok = r.failed = r.succeeded = r.other = 0;
    snprintf(r.tenant + strlen(r.tenant), sizeof r.tenant - strlen(r.tenant), "-m");
    cb_reader_close(rd);
    rd = NULL;
    snprintf(filter, sizeof filter, "cb.evt.%s.>", r.tenant);
    r.reader_ready = 0;
    if ((st = cb_broker_read(r.b, &ro, log_cb, &r, &rd)) != CB_OK)
        goto out;
    if (!wait_reader(&r)) {
        st = CB_ETIMEDOUT;
        goto out;
    }
    r.n = n;
    r.t0 = cb_time_mono_ns();
    put_some(&r);
    if (!wait_for(&r, n)) {
        fprintf(stderr, "cb bench adapter: %ld of %ld succeeded (%ld put failures, %ld failed)\n",
                r.succeeded, n, r.failed, r.other);
        st = CB_ETIMEDOUT;
        goto out;
    }
    *per_s = (double)n / ((double)(r.t1 - r.t0) / 1e9);
out:
    if (adapter) {
        cb_proc_kill(adapter, SIGTERM);
        while (r.adapter_up)
            event_base_loop(r.base, EVLOOP_ONCE);
    }
    cb_proc_free(adapter);
    cb_bench_cleanup_pop(undo);
    cb_reader_close(rd);
    cb_broker_close(r.b);
    event_base_free(r.base);
    return st;
}

cb_status cb_bench_adapter(const cb_bench_env *env, long n, int runs, json_t **report)
{
    static const char *const fns[] = {"noop", "pynoop"};
    char dir[] = "/tmp/cbbench.XXXXXX", config[300], module[300];
    json_t *figures = json_object();
    cb_status st = CB_OK;
    FILE *f;

    if (!mkdtemp(dir))
        return CB_EIO;
    snprintf(module, sizeof module, "%s/fns.py", dir);
    snprintf(config, sizeof config, "%s/cb.json", dir);
    if (!(f = fopen(module, "w")))
        return CB_EIO;
    fputs("def noop(x):\n    return None\n", f);
    fclose(f);
    if (!(f = fopen(config, "w")))
        return CB_EIO;
    fprintf(f,
            "{\"backends\": {\"local\": {\"functions\": {\"pynoop\": {\"runtime\": \"python\", "
            "\"module\": \"%s\", \"handler\": \"noop\", \"mode\": \"warm\", \"pool\": 2}}}}}\n",
            module);
    fclose(f);
    for (size_t k = 0; k < sizeof fns / sizeof fns[0] && st == CB_OK; k++) {
        double *v = calloc((size_t)runs, sizeof *v);
        json_t *per_run = json_array();
        for (int i = 0; i < runs && st == CB_OK; i++) {
            st = one_run(env, fns[k], config, n, i, &v[i]);
            json_array_append_new(per_run, json_real(v[i]));
        }
        if (st == CB_OK)
            json_object_set_new(figures, fns[k],
                                json_pack("{s:f, s:o}", "invocations_per_s",
                                          cb_bench_median(v, runs), "per_run", per_run));
        else
            json_decref(per_run);
        free(v);
    }
    unlink(module);
    unlink(config);
    rmdir(dir);
    if (st != CB_OK) {
        json_decref(figures);
        return st;
    }
    *report = json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:o, s:o}", "workload", "adapter",
                        "backend", "local", "broker", env->driver, "n", (json_int_t)n, "runs", runs,
                        "concurrency", 64, "machine", cb_bench_machine(), "functions", figures);
    return *report ? CB_OK : CB_ENOMEM;
}
