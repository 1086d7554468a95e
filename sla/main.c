/* sla/main.c - cb-sla: the SLA evaluator daemon (docs/sla.md). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cb_alloc.h"
#include "cb_daemon.h"
#include "cb_log.h"
#include "cb_url.h"
#include "report.h"
#include "service.h"

static const char *usage =
    "usage: cb-sla --broker URL\n"
    "Evaluates the SLA guarantees of the jobs in the event log (a job's own\n"
    "sla.guarantees; docs/sla.md) and appends each breach as cb.sla.violated,\n"
    "notified on cb.sla.<tenant>.<agreement>. Reads the log from its start at\n"
    "each start (a restart reports nothing twice and loses nothing).\n"
    "Logs JSON lines on stderr; stops on SIGINT/SIGTERM.\n";

static void report_fill(json_t *o, void *arg)
{
    const cb_sla_stats *st = cb_sla_service_stats(arg);
    json_object_set_new(o, "sla",
                        json_pack("{s:I, s:I, s:I, s:I, s:b}", "events", (json_int_t)st->events,
                                  "breaches", (json_int_t)st->breaches, "appended",
                                  (json_int_t)st->appended, "errors", (json_int_t)st->errors,
                                  "caught_up", st->caught_up));
}

int main(int argc, char **argv)
{
    const char *url = getenv("CB_BROKER_URL");
    cb_broker_opts bo;
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
        else {
            fputs(usage, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (!url) {
        fputs(usage, stderr);
        return 2;
    }
    if (cb_broker_global_init() != CB_OK || !(base = event_base_new()))
        return 1;
    bo.url = url;
    bo.name = "cb-sla";
    if ((s = cb_broker_open(base, &bo, &b)) != CB_OK) {
        char shown[1024];
        CB_LOG_ERR("sla", "cannot connect to %s: %s", cb_url_redact(url, shown, sizeof shown),
                   cb_strerror(s));
        goto out_base;
    }
    if ((s = cb_sla_service_start(base, b, &sv)) != CB_OK) {
        CB_LOG_ERR("sla", "cannot start: %s", cb_strerror(s));
        goto out_broker;
    }
    if (cb_report_start(base, b, "sla", NULL, report_fill, sv, &report) != CB_OK)
        CB_LOG_WRN("sla", "cannot report its figures on cb.stats");
    if (cb_daemon_run(base, "sla", NULL, NULL) != 0)
        CB_LOG_ERR("sla", "cannot watch for signals");
    rc = cb_sla_service_stats(sv)->failed ? 1 : 0; /* a read error: the supervisor restarts it */
    cb_report_free(report);
    cb_sla_service_stop(sv);
out_broker:
    cb_broker_close(b);
out_base:
    event_base_free(base);
    return rc;
}
