/* engine/main.c - cb-engine: intake, lifecycle commands and the controllers. */
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
#include "cb_partition.h"
#include "cb_schema.h"
#include "control.h"
#include "cb_config.h"
#include "cb_storage.h"
#include "fence.h"
#include "service.h"
#include "store.h"

static const char *usage =
    "usage: cb-engine --broker URL --store DIR [--config FILE] [--reconcile-ms MS]\n"
    "                 [--max-job-bytes N] [--aging-ms MS] [--memo-ttl-s S] [--objects DIR]\n"
    "                 [--partitions LIST | --name NAME [--beat-ms MS]]\n"
    "Takes jobs on cb.submit.<tenant> and cb.enqueue.<tenant>, lifecycle commands\n"
    "on cb.ctl.<tenant>.<job>, and drives every job to its end. DIR is the\n"
    "projector's store (read only here); FILE the backends configuration shared\n"
    "with the adapters (docs/adapters.md); object storage is FILE's \"storage\", else\n"
    "the file driver at DIR (docs/storage.md). LIST (\"0,1\", \"2-3\"): the\n"
    "partitions of the log it drives (docs/scale.md), default all of FILE's\n"
    "\"broker\": {\"partitions\"}; any engine takes submissions for any. NAME\n"
    "(1-64 of [A-Za-z0-9_-], unique): instead of a fixed LIST, the partitions are\n"
    "shared with failover among the live engines with a name (a beat every MS,\n"
    "default 1000; one not heard for three is gone), each claimed in its log\n"
    "(docs/scale.md, \"Ownership\"). Logs JSON\n"
    "lines on stderr; SIGINT/SIGTERM stop it.\n";

typedef struct figures {
    cb_control *ctl;
    cb_service *svc;
} figures;

/* The figures cb-api's /metrics shows (broker/report.h). */
static void report_fill(json_t *o, void *arg)
{
    figures *f = arg;
    const cb_control_stats *cs = cb_control_stats_get(f->ctl);
    const cb_service_stats *ss = cb_service_stats_get(f->svc);
    json_object_set_new(
        o, "engine",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "submitted",
                  (json_int_t)ss->submitted, "accepted", (json_int_t)ss->accepted, "rejected",
                  (json_int_t)ss->rejected, "commands", (json_int_t)ss->commands, "refused",
                  (json_int_t)ss->refused, "dispatched", (json_int_t)cs->dispatched, "events",
                  (json_int_t)cs->events, "jobs_done", (json_int_t)cs->done, "errors",
                  (json_int_t)cs->errors, "jobs_in_memory", (json_int_t)cs->jobs, "log_seq",
                  (json_int_t)cs->log_seq));
}

int main(int argc, char **argv)
{
    const char *url = getenv("CB_BROKER_URL"), *dir = NULL, *config = getenv("CB_CONFIG");
    const char *objects = NULL, *owned = NULL;
    cb_storage *storage = NULL;
    cb_control_opts co;
    cb_broker_opts bo;
    cb_intake_cfg ic = {0};
    struct event_base *base = NULL;
    cb_config *reg = NULL;
    cb_schema *schema = NULL;
    cb_store *st = NULL;
    cb_broker *b = NULL;
    cb_control *ctl = NULL;
    cb_service *svc = NULL;
    cb_report *report = NULL;
    figures fig;
    cb_status s;
    int rc = 1;

    cb_alloc_route_json(); /* JSON allocates through cb_alloc.h too */
    cb_control_opts_init(&co);
    cb_broker_opts_init(&bo);
    ic.max_bytes = 900 * 1024; /* the event that records it must fit the broker's 1 MiB */
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--broker") && val)
            url = cb_url_from_argv(argv[++i]);
        else if (!strcmp(arg, "--store") && val)
            dir = argv[++i];
        else if (!strcmp(arg, "--config") && val)
            config = argv[++i];
        else if (!strcmp(arg, "--objects") && val)
            objects = argv[++i];
        else if (!strcmp(arg, "--partitions") && val)
            owned = argv[++i];
        else if (!strcmp(arg, "--name") && val)
            co.name = argv[++i];
        else if (!strcmp(arg, "--beat-ms") && val)
            co.beat_ms = atol(argv[++i]);
        else if (!strcmp(arg, "--reconcile-ms") && val)
            co.reconcile_ms = atol(argv[++i]);
        else if (!strcmp(arg, "--aging-ms") && val)
            co.aging_ms = atol(argv[++i]);
        else if (!strcmp(arg, "--memo-ttl-s") && val)
            co.memo_ttl_s = atol(argv[++i]);
        else if (!strcmp(arg, "--max-job-bytes") && val)
            ic.max_bytes = (size_t)atol(argv[++i]);
        else {
            int help = !strcmp(arg, "--help");
            fputs(usage, help ? stdout : stderr);
            return help ? 0 : 2;
        }
    }
    if (!url || !dir) {
        fputs(usage, stderr);
        return 2;
    }
    if (cb_config_daemon_load(config, "engine", &reg, &schema) != 0)
        return 1;
    if ((s = cb_store_open(dir, 0, 0, &st)) != CB_OK) {
        char why[1200];
        CB_LOG_ERR("engine", "%s", cb_store_open_error(dir, s, why, sizeof why));
        goto out;
    }
    if (!(base = cb_loop_new()))
        goto out;
    bo.url = url;
    bo.name = "cb-engine";
    cb_config_stream_settings(reg, &bo.replicas, &bo.dedup_window_ms, &bo.partitions);
    if ((s = cb_broker_open(base, &bo, &b)) != CB_OK) {
        char shown[1024];
        CB_LOG_ERR("engine", "cannot connect to %s: %s", cb_url_redact(url, shown, sizeof shown),
                   cb_strerror(s));
        goto out;
    }
    if (cb_config_storage(reg) || objects) {
        char why[600];
        if ((s = cb_storage_new(base, cb_config_storage(reg), objects, &storage, why,
                                sizeof why)) != CB_OK) {
            CB_LOG_ERR("engine", "object storage: %s", why);
            goto out;
        }
        cb_storage_make_results_bucket(storage, "engine"); /* where large results go */
        co.storage = storage;
    }
    ic.schema = schema;
    ic.reg = reg;
    ic.partitions = (unsigned)bo.partitions;
    co.partitions = (unsigned)bo.partitions;
    if (owned && cb_partition_set_parse(owned, co.partitions, &co.owned) != 0) {
        CB_LOG_ERR("engine",
                   "--partitions %s: not a list of partitions below %u (\"broker\": "
                   "{\"partitions\"} of the configuration), such as 0,2 or 1-3",
                   owned, co.partitions);
        goto out;
    }
    if (co.name && (owned || strlen(co.name) > CB_CLAIM_ENGINE_MAX || !cb_name_valid(co.name))) {
        CB_LOG_ERR("engine",
                   owned ? "--name and --partitions: the partitions of an engine with a name are "
                           "claimed, not given"
                         : "--name %s: not a name (1 to 64 of A-Z, a-z, 0-9, _ and -)",
                   co.name);
        goto out;
    }
    if (co.partitions > 1 && !co.name) {
        char set[200];
        CB_LOG_INF("engine", "driving partitions %s of %u",
                   cb_partition_set_text(co.owned ? co.owned : cb_partition_set_all(co.partitions),
                                         set, sizeof set),
                   co.partitions);
    }
    if ((s = cb_control_start(base, b, st, reg, &co, &ctl)) != CB_OK ||
        (s = cb_service_start(base, b, st, ctl, &ic, &svc)) != CB_OK) {
        CB_LOG_ERR("engine", "cannot start: %s", cb_strerror(s));
        goto out;
    }
    CB_LOG_INF("engine", "serving cb.submit.* and cb.ctl.*.* on %s", cb_broker_driver(b));
    fig.ctl = ctl;
    fig.svc = svc;
    if (cb_report_start(base, b, "engine", NULL, report_fill, &fig, &report) != CB_OK)
        CB_LOG_WRN("engine", "cannot report its figures on cb.stats");
    if (cb_daemon_run(base, "engine", NULL, NULL) != 0)
        goto out;
    {
        const cb_control_stats *cs = cb_control_stats_get(ctl);
        const cb_service_stats *ss = cb_service_stats_get(svc);
        CB_LOG_INF("engine",
                   "stopped: %llu submitted, %llu accepted, %llu rejected; %llu plans, "
                   "%llu events, %llu tasks dispatched, %llu jobs done, %llu errors, "
                   "%llu broker resets",
                   (unsigned long long)ss->submitted, (unsigned long long)ss->accepted,
                   (unsigned long long)ss->rejected, (unsigned long long)cs->plans,
                   (unsigned long long)cs->events, (unsigned long long)cs->dispatched,
                   (unsigned long long)cs->done, (unsigned long long)cs->errors,
                   (unsigned long long)cs->resets);
    }
    rc = 0;
out:
    cb_report_free(report);
    cb_service_free(svc);
    cb_control_free(ctl);
    cb_storage_free(storage); /* after the controller: its calls in flight end unanswered */
    cb_broker_close(b);       /* confirmations still due arrive now, as CB_ECLOSED */
    if (base)
        event_base_free(base);
    cb_store_close(st);
    cb_schema_free(schema);
    cb_config_free(reg);
    return rc;
}
