/* adapters/main.c - cb-adapter: the adapter worker daemon for one backend. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cb_loop.h"
#include "report.h"
#include "cb_alloc.h"
#include "cb_daemon.h"
#include "cb_url.h"
#include "cb_log.h"
#include "cb_schema.h"
#include "cb_config.h"
#include "cb_storage.h"
#include "worker.h"

static const char *usage =
    "usage: cb-adapter --broker URL [--backend NAME] [--config FILE] [--concurrency N]\n"
    "                  [--lease-ms MS] [--grace-ms MS] [--id NAME] [--started-after-ms MS]\n"
    "                  [--linger-ms MS] [--objects DIR] [--cache-dir DIR]\n"
    "Runs the invocations of cb.invoke.NAME (default: local) on that backend and\n"
    "records their outcome in the event log. NAME is local or an account of FILE,\n"
    "the backends configuration (docs/adapters.md: http, lambda, openwhisk);\n"
    "without it the local backend has only its built-ins. Object storage: FILE's\n"
    "\"storage\", else the file driver at DIR (docs/storage.md): the functions read\n"
    "their object ranges there, and outputs too large for the log are written there.\n"
    "--cache-dir: the read cache its functions' runtimes share (cached reads of\n"
    "whole objects; $CB_CACHE_MAX_BYTES bounds it, default 1 GiB).\n"
    "--linger-ms: how long a success waits for the other tasks of its command to\n"
    "share one outcome event (default 5; 0: each success is its own event).\n"
    "SIGTERM/SIGINT: stop taking work, let running invocations finish (grace),\n"
    "give back the rest, exit.\n";

typedef struct app {
    struct event_base *base;
    cb_worker *w;
    int64_t grace_ms;
    int stopping;
    const char *backend;
    cb_backend_limits limits;
} app;

/* The figures cb-api's /metrics shows (broker/report.h). */
static void report_fill(json_t *o, void *arg)
{
    app *a = arg;
    const cb_worker_stats *ws = cb_worker_stats_get(a->w);
    json_object_set_new(
        o, "adapter",
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o*, s:o*}", "backend",
                  a->backend, "received", (json_int_t)ws->received, "tasks", (json_int_t)ws->tasks,
                  "succeeded", (json_int_t)ws->succeeded, "failed", (json_int_t)ws->failed,
                  "throttled", (json_int_t)ws->throttled, "invalid", (json_int_t)ws->invalid,
                  "redelivered", (json_int_t)ws->redelivered, "running", (json_int_t)ws->running,
                  "max_concurrency", (json_int_t)a->limits.max_concurrency, "rate_per_s",
                  a->limits.rate_per_s, "duration", cb_hist_json(&ws->duration), "since_dispatch",
                  cb_hist_json(&ws->since_dispatch)));
}

static void stopped(void *ctx)
{
    app *a = ctx;
    event_base_loopbreak(a->base);
}

static void stop_cb(int sig, void *arg)
{
    app *a = arg;
    if (a->stopping++) {
        CB_LOG_WRN("adapter", "signal %d again: stopping now", (int)sig);
        event_base_loopbreak(a->base);
        return;
    }
    CB_LOG_INF("adapter", "signal %d: stopping (grace %lld ms)", (int)sig, (long long)a->grace_ms);
    cb_worker_stop(a->w, a->grace_ms, stopped, a);
}

int main(int argc, char **argv)
{
    const char *url = getenv("CB_BROKER_URL"), *config = getenv("CB_CONFIG");
    const char *objects = NULL;
    cb_storage *storage = NULL;
    cb_report *report = NULL;
    cb_worker_opts wo;
    cb_broker_opts bo;
    cb_config *reg = NULL;
    cb_schema *schema = NULL;
    cb_broker *b = NULL;
    app a = {.grace_ms = 10000};
    char err[512] = "";
    cb_status s;
    int rc = 1;

    cb_alloc_route_json(); /* JSON allocates through cb_alloc.h too */
    signal(SIGPIPE, SIG_IGN);
    cb_worker_opts_init(&wo);
    cb_broker_opts_init(&bo);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--broker") && val)
            url = cb_url_from_argv(argv[++i]);
        else if (!strcmp(arg, "--backend") && val)
            wo.backend = argv[++i];
        else if (!strcmp(arg, "--config") && val)
            config = argv[++i];
        else if (!strcmp(arg, "--concurrency") && val)
            wo.concurrency = atoi(argv[++i]);
        else if (!strcmp(arg, "--lease-ms") && val)
            wo.lease_ms = atol(argv[++i]);
        else if (!strcmp(arg, "--started-after-ms") && val)
            wo.started_after_ms = atol(argv[++i]);
        else if (!strcmp(arg, "--linger-ms") && val)
            wo.linger_ms = atol(argv[++i]);
        else if (!strcmp(arg, "--grace-ms") && val)
            a.grace_ms = atol(argv[++i]);
        else if (!strcmp(arg, "--id") && val)
            wo.id = argv[++i];
        else if (!strcmp(arg, "--objects") && val)
            objects = argv[++i];
        else if (!strcmp(arg, "--cache-dir") && val) /* the runtimes' read cache */
            setenv("CB_CACHE_DIR", argv[++i], 1);
        else {
            int help = !strcmp(arg, "--help");
            fputs(usage, help ? stdout : stderr);
            return help ? 0 : 2;
        }
    }
    if (!url) {
        fputs(usage, stderr);
        return 2;
    }
    if (cb_config_daemon_load(config, "adapter", &reg, &schema) != 0)
        return 1;
    { /* the functions' runtimes read objects from the same storage (inherited) */
        char *st = cb_storage_runtime_conf(cb_config_storage(reg), objects);
        if (st && setenv("CB_STORAGE", st, 1) != 0)
            CB_LOG_WRN("adapter", "cannot set CB_STORAGE for the runtimes");
        free(st);
    }
    if (!(a.base = cb_loop_new()))
        goto out;
    bo.url = url;
    bo.name = "cb-adapter";
    cb_config_stream_settings(reg, &bo.replicas, &bo.dedup_window_ms, &bo.partitions);
    if ((s = cb_broker_open(a.base, &bo, &b)) != CB_OK) {
        char shown[1024];
        CB_LOG_ERR("adapter", "cannot connect to %s: %s", cb_url_redact(url, shown, sizeof shown),
                   cb_strerror(s));
        goto out;
    }
    if (cb_config_storage(reg) || objects) { /* outputs too large for the log go there */
        if ((s = cb_storage_new(a.base, cb_config_storage(reg), objects, &storage, err,
                                sizeof err)) != CB_OK) {
            CB_LOG_ERR("adapter", "object storage: %s", err);
            goto out;
        }
        cb_storage_make_results_bucket(storage, "adapter");
        wo.storage = storage;
    }
    if ((s = cb_worker_start(a.base, b, reg, schema, &wo, &a.w, err, sizeof err)) != CB_OK) {
        CB_LOG_ERR("adapter", "cannot start: %s", *err ? err : cb_strerror(s));
        goto out;
    }
    CB_LOG_INF("adapter", "serving cb.invoke.%s (concurrency %d)", wo.backend, wo.concurrency);
    a.backend = wo.backend;
    cb_config_limits(reg, wo.backend, &a.limits);
    if (cb_report_start(a.base, b, "adapter", wo.id, report_fill, &a, &report) != CB_OK)
        CB_LOG_WRN("adapter", "cannot report its figures on cb.stats");
    if (cb_daemon_run(a.base, "adapter", stop_cb, &a) != 0)
        goto out;
    {
        const cb_worker_stats *ws = cb_worker_stats_get(a.w);
        CB_LOG_INF("adapter",
                   "stopped: %llu commands of %llu tasks received, %llu succeeded, %llu "
                   "failed, %llu throttled, %llu invalid, %llu redelivered",
                   (unsigned long long)ws->received, (unsigned long long)ws->tasks,
                   (unsigned long long)ws->succeeded, (unsigned long long)ws->failed,
                   (unsigned long long)ws->throttled, (unsigned long long)ws->invalid,
                   (unsigned long long)ws->redelivered);
    }
    rc = 0;
out:
    cb_report_free(report);
    cb_worker_free(a.w);
    cb_storage_free(storage); /* after the worker: a write in flight ends its run */
    cb_broker_close(b);
    if (a.base)
        event_base_free(a.base);
    cb_schema_free(schema);
    cb_config_free(reg);
    return rc;
}
