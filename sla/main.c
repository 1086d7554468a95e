/* sla/main.c - cb-sla: the SLA evaluator daemon (docs/sla.md). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "cb_alloc.h"
#include "cb_config.h"
#include "cb_daemon.h"
#include "cb_log.h"
#include "cb_loop.h"
#include "cb_schema.h"
#include "cb_url.h"
#include "report.h"
#include "evaluator.h"
#include "service.h"

static const char *usage =
    "usage: cb-sla --broker URL [--secrets FILE] [--prometheus URL] [--config FILE]\n"
    "Evaluates SLA agreements over the event log (docs/sla.md): a job's own\n"
    "sla.guarantees and the agreements managed on cb.slactl.<tenant> (`cb sla`).\n"
    "Appends each breach as cb.sla.violated (and a recovery as\n"
    "cb.sla.recovered), notifies it on cb.sla.<tenant>.<agreement> and posts\n"
    "it to the agreement's webhooks, signed with the secret the agreement\n"
    "names from FILE (a JSON object of name: value; default\n"
    "$CB_SLA_SECRETS, else $CB_DIR/sla-secrets.json when it exists).\n"
    "A guarantee on [query] asks its PromQL of the Prometheus server at\n"
    "--prometheus URL (default $CB_PROMETHEUS_URL).\n"
    "Reads the log of each of the configuration's partitions (--config FILE,\n"
    "default $CB_CONFIG: \"broker\": {\"partitions\": P}; docs/scale.md).\n"
    "Reads the log from its start at each start (a restart reports nothing\n"
    "twice and loses nothing). Logs JSON lines on stderr; stops on\n"
    "SIGINT/SIGTERM.\n";

/* The webhook secrets: FILE, or the default; NULL and *bad on an
 * unreadable or non-object file that was named. */
static json_t *load_secrets(const char *file, int *bad)
{
    char path[4096];
    const char *dir = getenv("CB_DIR");
    json_error_t je;
    json_t *j;
    *bad = 0;
    if (!file && (file = getenv("CB_SLA_SECRETS")) && !*file)
        file = NULL;
    if (!file && dir) {
        snprintf(path, sizeof path, "%s/sla-secrets.json", dir);
        if (access(path, F_OK) != 0)
            return json_object();
        file = path;
    }
    if (!file)
        return json_object();
    if (!(j = json_load_file(file, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(j)) {
        CB_LOG_ERR("sla", "secrets file %s: %s", file, j ? "not a JSON object" : je.text);
        json_decref(j);
        *bad = 1;
        return NULL;
    }
    CB_LOG_INF("sla", "webhook secrets from %s: %zu", file, json_object_size(j));
    return j;
}

#define REPORT_GUARANTEES 1000 /* the most the report's accounting lists */

/* Each guarantee's accounting, for /metrics (api/metrics_text.c). */
static void account(const cb_sla_agreement *a, void *ctx)
{
    json_t *list = ctx;
    if (a->is_template)
        return;
    for (size_t i = 0; i < a->n && json_array_size(list) < REPORT_GUARANTEES; i++) {
        const cb_sla_guarantee *g = &a->g[i];
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:b}", "tenant",
                                              a->tenant, "agreement", a->id, "guarantee", g->name,
                                              "state",
                                              a->terminated ? "terminated"
                                              : a->stopped  ? "stopped"
                                                            : "started",
                                              "evaluations", (json_int_t)g->evaluations,
                                              "violations", (json_int_t)g->violations, "breaches",
                                              (json_int_t)g->breaches, "compliant", !g->in_breach));
    }
}

static void report_fill(json_t *o, void *arg)
{
    json_t *list = json_array();
    const cb_sla_stats *st = cb_sla_service_stats(arg);
    const cb_sla_webhook_stats *wh = cb_sla_service_webhook_stats(arg);
    json_object_set_new(
        o, "sla",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:{s:I, s:I, s:I, s:I, s:I}}", "events",
                  (json_int_t)st->events, "passed", (json_int_t)st->passed, "breaches",
                  (json_int_t)st->breaches, "appended", (json_int_t)st->appended, "errors",
                  (json_int_t)st->errors, "caught_up", st->caught_up, "webhooks", "delivered",
                  (json_int_t)wh->delivered, "refused", (json_int_t)wh->refused, "given_up",
                  (json_int_t)wh->given_up, "retries", (json_int_t)wh->retries, "no_secret",
                  (json_int_t)wh->unsigned_refused));
    if (list) {
        cb_sla_evaluator_each(cb_sla_service_evaluator(arg), NULL, account, list);
        json_object_set_new(json_object_get(o, "sla"), "guarantees", list);
    }
}

int main(int argc, char **argv)
{
    const char *url = getenv("CB_BROKER_URL"), *secrets_file = NULL;
    const char *prometheus = getenv("CB_PROMETHEUS_URL"), *config = getenv("CB_CONFIG");
    cb_broker_opts bo;
    cb_schema *schema = NULL;
    json_t *secrets;
    char err[512];
    int bad;
    struct event_base *base;
    cb_broker *b = NULL;
    cb_sla_service *sv = NULL;
    cb_report *report = NULL;
    cb_status s;
    int rc = 1;

    cb_alloc_route_json();
    cb_broker_opts_init(&bo);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = cb_url_from_argv(argv[++i]);
        else if (!strcmp(argv[i], "--secrets") && i + 1 < argc)
            secrets_file = argv[++i];
        else if (!strcmp(argv[i], "--prometheus") && i + 1 < argc)
            prometheus = argv[++i];
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else {
            fputs(usage, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (!url) {
        fputs(usage, stderr);
        return 2;
    }
    if (cb_config_daemon_streams(config, "sla", &bo.replicas, &bo.dedup_window_ms,
                                 &bo.partitions) != 0)
        return 1;
    if (!(secrets = load_secrets(secrets_file, &bad)))
        return bad ? 2 : 1;
    if (cb_schema_load_dir(cb_schema_default_dir(), &schema, err, sizeof err) != CB_OK) {
        CB_LOG_ERR("sla", "cannot load the schemas from %s: %s", cb_schema_default_dir(), err);
        json_decref(secrets);
        return 1;
    }
    if (!(base = cb_loop_new())) {
        json_decref(secrets);
        cb_schema_free(schema);
        return 1;
    }
    bo.url = url;
    bo.name = "cb-sla";
    if ((s = cb_broker_open(base, &bo, &b)) != CB_OK) {
        char shown[1024];
        CB_LOG_ERR("sla", "cannot connect to %s: %s", cb_url_redact(url, shown, sizeof shown),
                   cb_strerror(s));
        goto out_base;
    }
    if (prometheus && !*prometheus)
        prometheus = NULL;
    if ((s = cb_sla_service_start(base, b, schema, secrets, prometheus, (unsigned)bo.partitions,
                                  &sv)) != CB_OK) {
        CB_LOG_ERR("sla", "cannot start: %s", cb_strerror(s));
        goto out_broker;
    }
    if (cb_report_start(base, b, "sla", NULL, report_fill, sv, &report) != CB_OK)
        CB_LOG_WRN("sla", "cannot report its figures on cb.stats");
    if (cb_daemon_run(base, "sla", NULL, NULL) != 0)
        CB_LOG_ERR("sla", "cannot watch for signals");
    rc = 0; /* (a failed read of the log is made again, not a reason to stop) */
    cb_report_free(report);
    cb_sla_service_stop(sv);
out_broker:
    cb_broker_close(b);
out_base:
    event_base_free(base);
    cb_schema_free(schema);
    json_decref(secrets);
    return rc;
}
