/* projector/main.c - cb-projector: the projector daemon. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_loop.h"
#include "migrate.h"
#include "cb_alloc.h"
#include "cb_daemon.h"
#include "broker.h"
#include "cb_url.h"
#include "cb_log.h"
#include "cb_schema.h"
#include "proj.h"
#include "report.h"
#include "cb_config.h"
#include "store.h"

static const char *usage =
    "usage: cb-projector --broker URL --store DIR [--batch N] [--batch-ms MS] [--replicas R]\n"
    "                    [--config FILE]\n"
    "Folds the event log into the LMDB store in DIR, from where it left off.\n"
    "FILE (or $CB_CONFIG): the shared configuration, for its stream settings\n"
    "(\"broker\": {\"replicas\", \"dedup_window_ms\", \"partitions\"}); --replicas\n"
    "overrides. The log of every partition is folded into DIR (docs/scale.md).\n"
    "Logs JSON lines on stderr; stops cleanly (committing) on SIGINT/SIGTERM.\n";

typedef struct figures {
    cb_proj *p;
    unsigned partitions;
} figures;

/* The figures cb-api's /metrics shows (broker/report.h); with several
 * partitions, each one's position too. */
static void report_fill(json_t *o, void *arg)
{
    const figures *f = arg;
    const cb_proj_stats *ps = cb_proj_stats_get(f->p);
    json_t *fig =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "applied_seq", (json_int_t)ps->applied_seq,
                  "events", (json_int_t)ps->events, "applied", (json_int_t)ps->applied, "ignored",
                  (json_int_t)ps->ignored, "invalid", (json_int_t)ps->invalid, "commits",
                  (json_int_t)ps->commits, "fenced", (json_int_t)ps->fenced);
    json_t *pos = f->partitions > 1 ? json_array() : NULL;
    for (unsigned k = 0; pos && k < f->partitions; k++)
        json_array_append_new(pos, json_integer((json_int_t)ps->positions[k]));
    if (fig && pos)
        json_object_set_new(fig, "positions", pos);
    else
        json_decref(pos);
    json_object_set_new(o, "projector", fig);
}

int main(int argc, char **argv)
{
    const char *url = getenv("CB_BROKER_URL"), *dir = NULL, *config = getenv("CB_CONFIG");
    int replicas = 0;
    cb_proj_opts po;
    cb_broker_opts bo;
    struct event_base *base;
    cb_broker *b = NULL;
    cb_store *st = NULL;
    cb_proj *p = NULL;
    cb_report *report = NULL;
    figures fig;
    cb_status s;
    int rc = 1;

    cb_alloc_route_json(); /* JSON allocates through cb_alloc.h too */
    cb_proj_opts_init(&po);
    cb_broker_opts_init(&bo);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = cb_url_from_argv(argv[++i]);
        else if (!strcmp(argv[i], "--store") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            po.batch_max = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--batch-ms") && i + 1 < argc)
            po.batch_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--replicas") && i + 1 < argc)
            replicas = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else {
            fputs(usage, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (!url || !dir) {
        fputs(usage, stderr);
        return 2;
    }
    if (cb_config_daemon_streams(config, "projector", &bo.replicas, &bo.dedup_window_ms,
                                 &bo.partitions) != 0)
        return 1;
    if (replicas > 0)
        bo.replicas = replicas;
    po.partitions = (unsigned)bo.partitions;
    if (!(base = cb_loop_new()))
        return 1;
    bo.url = url;
    bo.name = "cb-projector";
    if ((s = cb_store_open(dir, 0, 0, &st)) != CB_OK) {
        char why[1200];
        CB_LOG_ERR("projector", "%s", cb_store_open_error(dir, s, why, sizeof why));
        goto out_base;
    }
    if ((s = cb_store_migrate(st)) != CB_OK) {
        CB_LOG_ERR("projector", "cannot prepare store %s: %s", dir, cb_strerror(s));
        goto out_store;
    }
    if ((s = cb_broker_open(base, &bo, &b)) != CB_OK) {
        char shown[1024];
        CB_LOG_ERR("projector", "cannot connect to %s: %s", cb_url_redact(url, shown, sizeof shown),
                   cb_strerror(s));
        goto out_store;
    }
    if ((s = cb_proj_start(base, b, st, &po, &p)) != CB_OK) {
        CB_LOG_ERR("projector", "cannot start: %s", cb_strerror(s));
        goto out_broker;
    }
    fig.p = p;
    fig.partitions = po.partitions;
    if (cb_report_start(base, b, "projector", NULL, report_fill, &fig, &report) != CB_OK)
        CB_LOG_WRN("projector", "cannot report its figures on cb.stats");
    if (cb_daemon_run(base, "projector", NULL, NULL) != 0)
        CB_LOG_ERR("projector", "cannot watch for signals");
    cb_report_free(report);
    {
        const cb_proj_stats *ps = cb_proj_stats_get(p);
        CB_LOG_INF("projector",
                   "stopped at %llu: %llu events, %llu applied, %llu ignored, "
                   "%llu invalid, %llu commits",
                   (unsigned long long)ps->applied_seq, (unsigned long long)ps->events,
                   (unsigned long long)ps->applied, (unsigned long long)ps->ignored,
                   (unsigned long long)ps->invalid, (unsigned long long)ps->commits);
    }
    cb_proj_stop(p);
    rc = 0;
out_broker:
    cb_broker_close(b);
out_store:
    cb_store_close(st);
out_base:
    event_base_free(base);
    return rc;
}
